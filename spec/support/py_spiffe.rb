# frozen_string_literal: true

require "json"
require "open3"

# Runs spec/interop/py_spiffe_fetch.py (the official Python client) and
# returns its JSON output.
module PySpiffe
  SCRIPT = File.expand_path("../interop/py_spiffe_fetch.py", __dir__)

  def py_spiffe(*args, via_shell: false)
    python = ENV.fetch("PYTHON", "python3")
    command = via_shell ? ["sh", "-c", "exec #{python} \"$@\"", "sh", SCRIPT, *args] : [python, SCRIPT, *args]
    out, err, status = Open3.capture3(*command)
    raise "py-spiffe failed (is it installed? `pip install spiffe`):\n#{err}" unless status.success?

    JSON.parse(out)
  end
end

RSpec.configure { |c| c.include PySpiffe }
