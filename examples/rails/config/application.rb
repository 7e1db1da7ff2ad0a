# frozen_string_literal: true

require "rails"
require "action_controller/railtie"
require "securerandom"

module BillingApi
  # An API-only application: no views, no database.
  class Application < Rails::Application
    config.load_defaults 6.1
    config.root = File.expand_path("..", __dir__)
    config.api_only = true
    config.eager_load = false
    config.hosts.clear
    config.secret_key_base = ENV.fetch("SECRET_KEY_BASE") { SecureRandom.hex(64) }
    config.logger = ActiveSupport::Logger.new($stdout, level: :warn)
    config.cache_store = :null_store
  end
end
