# frozen_string_literal: true

require "spiffe"
require "spiffe/testing"
require "base64"
require "json"
require "etc"
require "timeout"
require "tmpdir"
require "tempfile"

Dir[File.join(__dir__, "support", "**", "*.rb")].sort.each { |f| require f }

RSpec.configure do |config|
  config.disable_monkey_patching!
  config.order = :random
  config.expect_with(:rspec) { |c| c.syntax = :expect }
  # A hung call must fail the suite, not hang CI.
  config.around do |example|
    Timeout.timeout(ENV["GC_STRESS"] == "1" ? 600 : 60) { example.run }
  end
  # GC_STRESS=1: a full GC on every allocation during each example, to catch
  # native references that Ruby's GC could move or free. Very slow: script/test
  # runs the examples tagged :gc_stress (every native path) this way.
  if ENV["GC_STRESS"] == "1"
    config.around do |example|
      GC.stress = true
      example.run
    ensure
      GC.stress = false
    end
  end
end
