# frozen_string_literal: true

# The gem is named spiffe-workload; the library is `require "spiffe"`.
require "spiffe"
