# frozen_string_literal: true

require "time"
require "fileutils"
require "spiffe/cli/command"
require "spiffe/cli/reload"

module Spiffe
  class CLI
    # `spiffe x509`: print the X.509-SVIDs, write them as files, and in
    # `--daemon` mode keep the files fresh and reload a process on rotation
    # (what spiffe-helper does for nginx, Postgres or ghostunnel).
    class X509 < Command
      # The command's --help text.
      HELP = <<~TEXT
        Usage: spiffe x509 [--hint H] [--json]
               spiffe x509 --write DIR [--federated] [--daemon [--exec CMD] [--signal PID:SIG]]

        Prints this process's X.509-SVIDs: SPIFFE ID, hint, expiry and chain
        (never the private key). With --write DIR, writes
          DIR/svid.pem      the certificate chain, leaf first
          DIR/svid_key.pem  the private key, PKCS#8, mode 0600
          DIR/bundle.pem    the trust domain's roots (+ federated ones with --federated)
        each atomically (temporary file, fsync, rename). With --daemon it keeps
        running, rewrites the files on every rotation, then runs --exec CMD
        (through sh) and/or sends --signal PID:SIG (PID may be a pid file),
        until SIGINT or SIGTERM.

        Options:
      TEXT

      private

      def waits_for_signal?
        @daemon
      end

      def options(opts)
        workload_api_options(opts)
        opts.on("--hint HINT", "the SVID with this hint (default: the first)") { |v| @hint = v }
        opts.on("--json", "print JSON") { @json = true }
        opts.on("--write DIR", "write svid.pem, svid_key.pem and bundle.pem into DIR") { |v| @dir = v }
        opts.on("--federated", "with --write: add federated trust domains' roots to bundle.pem") { @federated = true }
        opts.on("--daemon", "with --write: keep the files fresh until interrupted") { @daemon = true }
        opts.on("--exec CMD", "with --daemon: run CMD after each write (e.g. 'nginx -s reload')") { |v| @exec = v }
        opts.on("--signal PID:SIG", "with --daemon: signal a process after each write (e.g. 1234:HUP, /run/x.pid:HUP)") do |v|
          @signal = v
        end
      end

      def execute(arguments)
        usage!("unexpected argument #{arguments.first.inspect}") unless arguments.empty?
        usage!("--federated, --daemon, --exec and --signal need --write DIR") if !@dir && (@federated || @daemon || @exec || @signal)
        usage!("--exec and --signal need --daemon") if (@exec || @signal) && !@daemon
        reload = Reload.new(exec: @exec, signal: @signal, log: method(:log)) if @daemon
        return daemon(reload) if @daemon

        context = client.x509_context
        return write(pick(context.svids), context.bundles) || EXIT_OK if @dir

        svids = @hint ? [pick(context.svids)] : context.svids
        @json ? json(svids.map { |svid| describe(svid) }) : print_svids(svids, context.bundles)
      end

      def pick(svids)
        return svids.first unless @hint

        svids.find { |svid| svid.hint == @hint } ||
          raise(Failure.new("no X.509-SVID with hint #{@hint.inspect} (hints: #{svids.map(&:hint).inspect})", EXIT_NO_IDENTITY))
      end

      def describe(svid)
        {
          spiffe_id: svid.spiffe_id.to_s, hint: svid.hint, expires_at: time(svid.expires_at),
          chain: svid.cert_chain.map do |cert|
            { subject: cert.subject.to_s, issuer: cert.issuer.to_s, serial: cert.serial.to_s(16), not_after: time(cert.not_after) }
          end
        }
      end

      def print_svids(svids, bundles)
        svids.each do |svid|
          leaf = svid.leaf_certificate
          @out.puts(svid.spiffe_id.to_s)
          @out.puts("  hint        #{svid.hint.empty? ? '(none)' : svid.hint}")
          @out.puts("  expires     #{time(svid.expires_at)} (#{remaining(svid.expires_at)})")
          @out.puts("  serial      #{leaf.serial.to_s(16)}")
          svid.cert_chain.each_with_index do |cert, index|
            @out.puts("  chain[#{index}]    #{cert.subject} (issuer #{cert.issuer})")
          end
        end
        @out.puts("trust domains #{bundles.trust_domains.map(&:name).join(', ')}")
        EXIT_OK
      end

      # Writes the three files; key before the chain so a reader that sees the
      # new certificate finds its key.
      def write(svid, bundles)
        FileUtils.mkdir_p(@dir)
        roots = @federated ? bundles.to_a : [bundles[svid.spiffe_id.trust_domain]].compact
        Files.write(File.join(@dir, "svid_key.pem"), svid.private_key.private_to_pem, mode: 0o600, error: Failure)
        Files.write(File.join(@dir, "svid.pem"), svid.cert_chain.map(&:to_pem).join, error: Failure)
        Files.write(File.join(@dir, "bundle.pem"), roots.map(&:marshal).join, error: Failure)
        log("wrote #{@dir}: #{svid.spiffe_id}, expires #{time(svid.expires_at)}")
      end

      def daemon(reload)
        source = client.x509_source(hint: @hint, on_error: ->(e) { log("#{e.class.name.split('::').last}: #{e.message}") })
        lock = Mutex.new
        update = lambda do
          lock.synchronize do
            write(source.x509_svid, source.x509_bundles)
            reload&.call
          end
        end
        # Follow first, then write: a rotation in between is not missed.
        source.on_update { update.call }
        update.call
        log("#{wait_for_signal} received, stopping")
        EXIT_OK
      ensure
        source&.close
      end
    end
  end
end
