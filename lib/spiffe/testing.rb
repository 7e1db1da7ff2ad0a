# frozen_string_literal: true

require "spiffe"
require "spiffe/testing/agent"

module Spiffe
  # Tools for testing code that uses SPIFFE, without a SPIRE installation.
  module Testing
  end
end
