# frozen_string_literal: true

# Summarises valgrind XML files (one per process). An error is the
# extension's when its innermost frame, past the allocator and libc, is in
# spiffe_workload.so: memory errors (invalid reads or writes, uninitialised
# values) anywhere, and definite leaks in the main process. Leaks whose
# innermost frame is Ruby's (method tables it keeps for the process's life)
# or OpenSSL's (per-thread random generators), and leaks of forked children
# (they end with exit!, which frees nothing, by design), are listed apart.
# Exits 1 if the extension has any.
require "rexml/document"

EXTENSION = "spiffe_workload"
PASS_THROUGH = %w[vgpreload libc.so].freeze

def innermost(error)
  objects = error.get_elements("stack/frame").map { |f| File.basename(f.elements["obj"]&.text.to_s) }
  [objects.find { |obj| PASS_THROUGH.none? { |p| obj.include?(p) } }.to_s, objects]
end

ours = Hash.new(0)
others = Hash.new(0)
examples = []
files = ARGV.sort_by { |path| File.read(path)[%r{<ppid>(\d+)</ppid>}, 1].to_i } # the main process's parent is oldest
main_pid = files.filter_map { |path| File.read(path)[%r{<pid>(\d+)</pid>}, 1] }.min_by(&:to_i)
files.each do |path|
  doc = REXML::Document.new(File.read(path))
  child = doc.elements["valgrindoutput/pid"].text != main_pid
  doc.elements.each("valgrindoutput/error") do |error|
    kind = error.elements["kind"].text
    first, objects = innermost(error)
    leak = kind.start_with?("Leak_")
    mine = first.include?(EXTENSION) && !(leak && child)
    label = leak && child && objects.any? { |o| o.include?(EXTENSION) } ? "#{kind} (forked child at exit!)" : kind
    if mine
      ours[kind] += 1
      examples << "#{kind} (#{error.elements['xwhat/text']&.text || error.elements['what']&.text}): #{objects.first(8).join(' < ')}"
    else
      others[label] += 1
    end
  end
end
puts "valgrind memcheck over #{files.size} process(es)"
puts "  the extension's: #{ours.empty? ? 'none' : ours.map { |k, v| "#{k} #{v}" }.join(', ')}"
puts "  elsewhere (Ruby, libc, OpenSSL; forked children's exit): " +
     (others.empty? ? "none" : others.sort.map { |k, v| "#{k} #{v}" }.join(", "))
examples.first(10).each { |e| puts "  #{e}" }
exit(ours.empty? ? 0 : 1)
