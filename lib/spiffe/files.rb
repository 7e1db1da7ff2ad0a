# frozen_string_literal: true

module Spiffe
  # Reading and atomically writing the files that hold SVIDs and bundles.
  # @api private
  module Files
    module_function

    # @param path [String]
    # @param what [String] what the file holds, for the message
    # @param error [Class] the exception class to raise
    # @return [String] the file's bytes
    def read(path, what, error)
      File.binread(path)
    rescue SystemCallError => e
      raise error, "cannot read #{what} #{path}: #{e.message}"
    end

    # Writes `data` so that a reader sees the old file or the new one, never a
    # part: a temporary file in the same directory, fsync, rename.
    # @param path [String]
    # @param data [String]
    # @param mode [Integer] the new file's permissions (the temporary file is created with them)
    # @param error [Class] the exception class to raise
    # @return [void]
    def write(path, data, error:, mode: 0o644)
      temp = File.join(File.dirname(path), ".#{File.basename(path)}.#{Process.pid}.#{rand(1 << 32).to_s(16)}.tmp")
      File.open(temp, File::WRONLY | File::CREAT | File::EXCL, mode) do |file|
        file.chmod(mode) # exact, whatever the umask
        file.write(data)
        file.fsync
      end
      File.rename(temp, path)
    rescue SystemCallError => e
      File.unlink(temp) if temp && File.exist?(temp)
      raise error, "cannot write #{path}: #{e.message}"
    end
  end
end
