# frozen_string_literal: true

# Cluster mode: the app (and its X509Source) is loaded once in the master.
workers Integer(ENV.fetch("WORKERS", 2))
threads 2, 4
preload_app!
bind ENV.fetch("BIND", "tcp://127.0.0.1:9292")
rackup File.expand_path("config.ru", __dir__)
