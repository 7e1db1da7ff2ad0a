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
    Timeout.timeout(60) { example.run }
  end
end
