# frozen_string_literal: true

# SPIFFE_ENDPOINT_SOCKET=unix:///run/spire/agent.sock puma examples/sinatra/config.ru
require_relative "app"
run BillingApp
