# frozen_string_literal: true

# A minimal Rails 6.1 API using Spiffe::Rack::JWTAuth:
#   SPIFFE_ENDPOINT_SOCKET=unix:///run/spire/agent.sock puma examples/rails/config.ru
require_relative "config/environment"
run Rails.application
