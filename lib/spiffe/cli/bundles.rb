# frozen_string_literal: true

require "fileutils"
require "time"
require "spiffe/cli/command"

module Spiffe
  class CLI
    # `spiffe bundles`: the trust bundles this process gets, own and federated.
    class Bundles < Command
      # The command's --help text.
      HELP = <<~TEXT
        Usage: spiffe bundles [--jwt] [--json | --write DIR]

        Prints the X.509 bundles (or the JWT bundles with --jwt) of this
        process's trust domain and the federated ones. --write DIR writes one
        file per trust domain, atomically: DIR/<trust domain>.pem (X.509) or
        DIR/<trust domain>.jwks (JWT). --json prints them: PEM strings or JWKS.

        Options:
      TEXT

      private

      def options(opts)
        workload_api_options(opts)
        opts.on("--jwt", "JWT bundles instead of X.509") { @jwt = true }
        opts.on("--json", "print JSON") { @json = true }
        opts.on("--write DIR", "write one file per trust domain into DIR") { |v| @dir = v }
      end

      def execute(arguments)
        usage!("unexpected argument #{arguments.first.inspect}") unless arguments.empty?
        usage!("--write and --json do not go together") if @dir && @json

        bundles = @jwt ? client.jwt_bundles : client.x509_bundles
        return write(bundles) if @dir
        return json(bundles.map { |bundle| [bundle.trust_domain.name, @jwt ? JSON.parse(bundle.marshal) : bundle.marshal] }.to_h) if @json

        bundles.each { |bundle| @out.puts(@jwt ? jwt_line(bundle) : x509_line(bundle)) }
        EXIT_OK
      end

      def x509_line(bundle)
        roots = bundle.x509_authorities.map { |cert| "#{cert.subject} (until #{time(cert.not_after)})" }
        "#{bundle.trust_domain.name}: #{roots.size} X.509 #{roots.size == 1 ? 'authority' : 'authorities'}: #{roots.join('; ')}"
      end

      def jwt_line(bundle)
        "#{bundle.trust_domain.name}: #{bundle.key_ids.size} JWT #{bundle.key_ids.size == 1 ? 'key' : 'keys'}: #{bundle.key_ids.join(', ')}"
      end

      def write(bundles)
        FileUtils.mkdir_p(@dir)
        bundles.each do |bundle|
          path = File.join(@dir, "#{bundle.trust_domain.name}.#{@jwt ? 'jwks' : 'pem'}")
          Files.write(path, bundle.marshal, error: Failure)
          log("wrote #{path}")
        end
        EXIT_OK
      end
    end
  end
end
