# frozen_string_literal: true

# rake bench: latency and throughput of the Workload API client against the
# embedded agent, and how much a busy Ruby thread slows down meanwhile.
# A benchmark, not a test: it prints a table and writes bench/results/*.json.
require "spiffe"
require "spiffe/testing"
require "json"
require "etc"
require "fileutils"
require "tmpdir"
require "rbconfig"

ITERATIONS = Integer(ENV.fetch("BENCH_ITERATIONS", 5000))
MEMORY_FETCHES = Integer(ENV.fetch("BENCH_MEMORY_FETCHES", 100_000))
ROOT = File.expand_path("..", __dir__)

def now = Process.clock_gettime(Process::CLOCK_MONOTONIC)

def percentiles(samples)
  sorted = samples.sort
  pick = ->(q) { sorted[[(q * sorted.size).ceil - 1, 0].max] * 1e6 }
  { p50_us: pick.(0.50).round(1), p99_us: pick.(0.99).round(1), max_us: (sorted.last * 1e6).round(1) }
end

def latency(iterations)
  iterations.times.map do
    start = now
    yield
    now - start
  end
end

def cpu_per_call(iterations)
  start = Process.clock_gettime(Process::CLOCK_PROCESS_CPUTIME_ID)
  iterations.times { yield }
  (Process.clock_gettime(Process::CLOCK_PROCESS_CPUTIME_ID) - start) / iterations * 1e6
end

# Calls per second with `threads` Ruby threads sharing one client for `seconds`.
def throughput(client, threads, seconds)
  stop = now + seconds
  counts = Array.new(threads) { Thread.new { n = 0; (client.x509_svid; n += 1) while now < stop; n } }.map(&:value)
  (counts.sum / seconds).round
end

# Iterations a pure-Ruby loop manages per second, alone and while `fetchers` threads fetch.
def busy_loop_rate(seconds)
  stop = now + seconds
  n = 0
  n += 1 while now < stop
  n / seconds
end

def busy_thread_slowdown(client, fetchers, seconds)
  alone = busy_loop_rate(seconds)
  running = true
  fetched = Array.new(fetchers, 0)
  workers = Array.new(fetchers) { |i| Thread.new { (client.x509_svid; fetched[i] += 1) while running } }
  sleep 0.05
  fetched.fill(0)
  shared = busy_loop_rate(seconds)
  done = fetched.sum
  running = false
  workers.each(&:join)
  { alone_per_s: alone.round, with_fetchers_per_s: shared.round, kept_pct: (100.0 * shared / alone).round(1),
    fetches_meanwhile_per_s: (done / seconds).round }
end

# The agent runs in a child process so client CPU time is the client's alone.
def with_agent_process(entries: [{ spiffe_id: "spiffe://example.org/bench", selectors: ["unix:uid:#{Process.uid}"] }])
  dir = Dir.mktmpdir("spiffe-bench")
  socket = File.join(dir, "agent.sock")
  reader, writer = IO.pipe
  pid = fork do
    reader.close
    agent = Spiffe::Testing::Agent.new(entries: entries, socket_path: socket)
    writer.puts(agent.jwks.size)
    writer.close
    sleep
  end
  writer.close
  reader.gets
  yield socket
ensure
  Process.kill("TERM", pid) if pid
  Process.wait(pid) if pid
  FileUtils.rm_rf(dir) if dir
end

results = { ruby: RUBY_DESCRIPTION, cpus: Etc.nprocessors, iterations: ITERATIONS, at: Time.now.utc.iso8601 }
with_agent_process do |socket|
  client = Spiffe.workload_api_client(socket_path: socket)
  200.times { client.x509_svid; client.jwt_svid(audience: "bench") }

  results[:x509_svid] = percentiles(latency(ITERATIONS) { client.x509_svid })
  results[:x509_svid][:client_cpu_us] = cpu_per_call(ITERATIONS) { client.x509_svid }.round(1)
  results[:x509_svid_with_key] = percentiles(latency(ITERATIONS) { client.x509_svid.private_key })
  results[:jwt_svid] = percentiles(latency(ITERATIONS) { client.jwt_svid(audience: "bench") })
  results[:jwt_svid][:client_cpu_us] = cpu_per_call(ITERATIONS) { client.jwt_svid(audience: "bench") }.round(1)
  results[:cold_client_x509_svid] = percentiles(latency(200) do
    c = Spiffe.workload_api_client(socket_path: socket)
    c.x509_svid
    c.shutdown
  end)
  results[:throughput_per_s] = [1, 4, 16].to_h { |t| ["#{t}_threads", throughput(client, t, 1.0)] }
  results[:busy_thread] = busy_thread_slowdown(client, 4, 1.0)
  client.shutdown

  # The official clients, same agent, same run.
  results[:peers] = {}
  rust = File.join(ROOT, "target", "release", "examples", "rust_spiffe_bench")
  if system("cargo", "build", "--quiet", "--release", "--locked", "-p", "spiffe_core", "--example", "rust_spiffe_bench",
            chdir: ROOT)
    results[:peers][:rust_spiffe] = JSON.parse(`#{rust} #{socket} #{ITERATIONS}`, symbolize_names: true)
  else
    warn "bench: could not build the Rust peer (cargo build --example rust_spiffe_bench)"
  end
  py = `python3 #{File.join(__dir__, 'peers', 'py_spiffe_bench.py')} #{socket} #{ITERATIONS} 2>&1`
  if $?.success? # rubocop:disable Style/SpecialGlobalVars
    results[:peers][:py_spiffe] = JSON.parse(py, symbolize_names: true)
  else
    warn "bench: py-spiffe did not run (pip install spiffe): #{py.lines.last}"
  end

  # Memory and threads in a fresh process: after require, first use, 100 000 fetches.
  results[:memory] = JSON.parse(`#{RbConfig.ruby} -I#{File.join(ROOT, 'lib')} #{File.join(__dir__, 'memory.rb')} #{socket} #{MEMORY_FETCHES}`,
                                symbolize_names: true)
end

# `require "spiffe"` in a fresh process (median of 7).
require_times = Array.new(7) do
  `#{RbConfig.ruby} -I#{File.join(ROOT, 'lib')} -e 't = Process.clock_gettime(Process::CLOCK_MONOTONIC); require "spiffe"; print Process.clock_gettime(Process::CLOCK_MONOTONIC) - t'`.to_f
end
results[:require_ms] = (require_times.sort[3] * 1000).round(1)
results[:so_size_kb] = (File.size(File.join(ROOT, "lib", "spiffe", "spiffe_workload.so")) / 1024.0).round

# A clean release build of the extension, in its own target directory (BENCH_BUILD=0 skips it: minutes).
unless ENV["BENCH_BUILD"] == "0"
  build_dir = File.join(ROOT, "tmp", "bench-clean-build")
  FileUtils.rm_rf(build_dir)
  start = now
  built = system({ "RUBY" => RbConfig.ruby }, "cargo", "build", "--quiet", "--release", "--locked", "-p", "spiffe_workload",
                 "--target-dir", build_dir, chdir: ROOT)
  results[:clean_build_s] = (now - start).round(1) if built
  FileUtils.rm_rf(build_dir)
end

# The agent's own costs: minting, and serving attested callers.
def mint_time_us(key_type, count)
  Spiffe::Testing::Agent.start(entries: Array.new(count) { |i| "spiffe://example.org/w#{i}" },
                               svid_key_type: key_type, rotation: false) do |agent|
    start = now
    agent.rotate!
    ((now - start) / count * 1e6).round
  end
end

results[:agent] = {
  mint_us_per_svid: { ec_p256: mint_time_us(:ec_p256, 200), ec_p384: mint_time_us(:ec_p384, 100),
                      ed25519: mint_time_us(:ed25519, 200), rsa_2048: mint_time_us(:rsa_2048, 10) }
}
path_entry = [{ spiffe_id: "spiffe://example.org/bench", selectors: ["unix:path:#{File.realpath(RbConfig.ruby)}"] }]
with_agent_process(entries: path_entry) do |socket|
  client = Spiffe.workload_api_client(socket_path: socket)
  200.times { client.x509_svid }
  results[:agent][:path_attested_x509_svid] = percentiles(latency(ITERATIONS / 5) { client.x509_svid })
  results[:agent][:served_per_s_16_threads] = throughput(client, 16, 1.0)
end

# Rotation: push (agent.rotate!) to Ruby callback, cached reads, resources per source.
Spiffe::Testing::Agent.start(entries: ["spiffe://example.org/bench"], rotation: false) do |agent|
  client = agent.client
  latencies = Queue.new
  started = nil
  client.on_x509_svid_update { latencies << (now - started) if started }
  Thread.new { client.watch_x509_svids }
  sleep 0.2
  samples = Array.new(300) do
    started = now
    agent.rotate!
    latencies.pop
  end
  results[:rotation_to_callback] = percentiles(samples)

  source = client.x509_source
  reads = 200_000
  start = now
  reads.times { source.x509_svid }
  results[:cached_read_ns] = ((now - start) / reads * 1e9).round

  threads = Thread.list.size
  fds = Dir.children("/proc/self/fd").size
  sources = Array.new(10) { agent.client.x509_source }
  results[:per_source] = { threads: (Thread.list.size - threads) / 10.0,
                           fds: (Dir.children("/proc/self/fd").size - fds) / 10.0 }
  sources.each(&:close)
  shutdown_client = agent.client
  3.times { shutdown_client.x509_source }
  Array.new(3) { Thread.new { shutdown_client.watch_x509_svids } }
  sleep 0.2
  start = now
  shutdown_client.shutdown
  results[:shutdown_ms_with_6_watches] = ((now - start) * 1000).round(2)
end

# TLS and offline JWT validation.
require "socket"
Spiffe::Testing::Agent.start(entries: ["spiffe://example.org/bench"]) do |agent|
  client = agent.client
  svid = client.x509_svid
  svid.private_key # parsed once, as a source holds it
  authorize = Spiffe::Authorize.any
  builds = 2000
  start = now
  builds.times { Spiffe::TLS.mtls_client_context(svid, authorize: authorize) }
  results[:tls_context_build_us] = ((now - start) / builds * 1e6).round(1)
  # What the cache saves: a fresh context each time (OpenSSL 3's SSL_CTX_new dominates).
  start = now
  (builds / 4).times { Spiffe::TLS.build(svid, authorize: authorize, present: true, verify: :peer) }
  results[:tls_context_fresh_build_us] = ((now - start) / (builds / 4) * 1e6).round(1)

  tcp = TCPServer.new("127.0.0.1", 0)
  server = Spiffe::TLS::Server.new(tcp, svid, authorize: authorize)
  acceptor = Thread.new do
    loop { server.accept.close }
  rescue IOError, OpenSSL::SSL::SSLError, SystemCallError
    nil
  end
  context = Spiffe::TLS.mtls_client_context(svid, authorize: authorize)
  count = 0
  stop = now + 2.0
  while now < stop
    ssl = OpenSSL::SSL::SSLSocket.new(TCPSocket.new("127.0.0.1", tcp.addr[1]), context)
    ssl.connect
    ssl.close
    count += 1
  end
  results[:mtls_handshakes_per_s] = (count / 2.0).round
  server.close
  acceptor.kill
end

results[:jwt_offline_validations_per_s] = %w[ES256 ES384 RS256 PS256].to_h do |alg|
  Spiffe::Testing::Agent.start(entries: ["spiffe://example.org/bench"], jwt_algorithm: alg) do |agent|
    client = agent.client
    token = client.jwt_svid(audience: "bench").token
    bundles = client.jwt_bundles
    n = 3000
    start = now
    n.times { Spiffe::JWTSVID.parse_and_validate(token, bundles, audience: "bench") }
    [alg, (n / (now - start)).round]
  end
end

rows = [
  ["x509_svid (reused client)", results[:x509_svid]],
  ["x509_svid + private_key", results[:x509_svid_with_key]],
  ["jwt_svid (reused client)", results[:jwt_svid]],
  ["x509_svid (new client each)", results[:cold_client_x509_svid]]
]
puts format("%-30s %10s %10s %10s %12s", "call", "p50 µs", "p99 µs", "max µs", "client CPU µs")
rows.each do |name, r|
  puts format("%-30s %10.1f %10.1f %10.1f %12s", name, r[:p50_us], r[:p99_us], r[:max_us], r[:client_cpu_us] || "-")
end
puts

# Side by side with the official clients (ratio: theirs / ours at p50; > 1 means we are faster).
peers = { "spiffe-workload (Ruby)" => results.slice(:x509_svid, :jwt_svid, :cold_client_x509_svid) }
peers["rust spiffe crate"] = results[:peers][:rust_spiffe] if results[:peers][:rust_spiffe]
peers["py-spiffe"] = results[:peers][:py_spiffe] if results[:peers][:py_spiffe]
puts format("%-24s %22s %22s %22s", "client: p50 / p99 µs", "x509_svid", "jwt_svid", "new client + x509_svid")
peers.each do |name, r|
  cells = %i[x509_svid jwt_svid cold_client_x509_svid].map { |k| format("%9.1f / %-9.1f", r[k][:p50_us], r[k][:p99_us]) }
  puts format("%-24s %22s %22s %22s", name, *cells)
end
peers.each do |name, r|
  next if name.start_with?("spiffe-workload")

  ratios = %i[x509_svid jwt_svid cold_client_x509_svid].map { |k| (r[k][:p50_us] / results[k][:p50_us]).round(2) }
  results[:peers][:"#{name.split.first}_over_ours_p50"] = ratios
  puts format("  %-22s p50 theirs/ours: x509 %.2fx, jwt %.2fx, new client %.2fx", name, *ratios)
end
puts
puts "throughput, x509_svid calls/s: " + results[:throughput_per_s].map { |k, v| "#{k.sub('_', ' ')}: #{v}" }.join(", ")
b = results[:busy_thread]
puts "busy Ruby thread alongside 4 fetching threads: #{b[:kept_pct]}% of its solo speed " \
     "(#{b[:with_fetchers_per_s]} vs #{b[:alone_per_s]} loop iterations/s); " \
     "the fetchers still completed #{b[:fetches_meanwhile_per_s]} calls/s"

r = results[:rotation_to_callback]
puts "rotation push -> Ruby callback: p50 #{r[:p50_us]} µs, p99 #{r[:p99_us]} µs; cached source read " \
     "#{results[:cached_read_ns]} ns; per source #{results[:per_source][:threads]} threads, " \
     "#{results[:per_source][:fds]} fds; shutdown with 6 watches #{results[:shutdown_ms_with_6_watches]} ms"
puts "TLS: mTLS context from a cached SVID #{results[:tls_context_build_us]} µs " \
     "(a fresh one #{results[:tls_context_fresh_build_us]} µs); " \
     "#{results[:mtls_handshakes_per_s]} mTLS handshakes/s (Ruby client and server in one process)"
puts "offline JWT-SVID validations/s: " + results[:jwt_offline_validations_per_s].map { |k, v| "#{k} #{v}" }.join(", ")
a = results[:agent]
puts "agent: mint time per SVID (µs): " + a[:mint_us_per_svid].map { |k, v| "#{k} #{v}" }.join(", ")
puts "agent: x509_svid with a unix:path selector p50 #{a[:path_attested_x509_svid][:p50_us]} µs, " \
     "p99 #{a[:path_attested_x509_svid][:p99_us]} µs; #{a[:served_per_s_16_threads]} attested fetches/s from 16 threads"

m = results[:memory]
puts "memory: RSS #{m[:before_require][:rss_kb]} KB before require, #{m[:after_require][:rss_kb]} KB after, " \
     "#{m[:after_first_fetch][:rss_kb]} KB after the first fetch; growth over #{m[:after_fetches][:fetches]} fetches " \
     "#{m[:growth_kb]} KB, over the next #{m[:after_fetches][:fetches]} #{m[:steady_growth_kb]} KB; native threads #{m[:before_require][:threads]} -> #{m[:after_require][:threads]} -> " \
     "#{m[:after_first_fetch][:threads]} -> #{m[:after_fetches][:threads]}"
puts "require \"spiffe\": #{results[:require_ms]} ms; extension #{results[:so_size_kb]} KB; " \
     "clean release build #{results[:clean_build_s] ? "#{results[:clean_build_s]} s" : '(skipped)'}"

# The targets of issue 7: reported, never failed on.
rust = results.dig(:peers, :rust_spiffe, :x509_svid, :p50_us)
targets = [
  ["x509_svid p50 < 300 µs", results[:x509_svid][:p50_us], results[:x509_svid][:p50_us] < 300],
  ["x509_svid p50 <= 1.5x the Rust crate", rust && (results[:x509_svid][:p50_us] / rust).round(2), rust && results[:x509_svid][:p50_us] <= 1.5 * rust],
  ["cached source read <= 2 µs", results[:cached_read_ns] / 1000.0, results[:cached_read_ns] <= 2000],
  ["tls_context from cache <= 50 µs", results[:tls_context_build_us], results[:tls_context_build_us] <= 50],
  ["rotation callback p99 <= 5 ms", results[:rotation_to_callback][:p99_us] / 1000.0, results[:rotation_to_callback][:p99_us] <= 5000],
  ["RSS growth <= 2 MB / 100k fetches", m[:growth_kb] / 1024.0, m[:growth_kb] <= 2048],
  ["RSS growth <= 2 MB / next 100k (steady)", m[:steady_growth_kb] / 1024.0, m[:steady_growth_kb] <= 2048],
  ["busy thread keeps >= 90 %", results[:busy_thread][:kept_pct], results[:busy_thread][:kept_pct] >= 90]
]
results[:targets] = targets.to_h { |name, value, met| [name, { value: value, met: met }] }
puts "\ntargets:"
targets.each { |name, value, met| puts format("  %-40s %-10s %s", name, value.nil? ? "-" : value.round(2), met.nil? ? "not measured" : (met ? "met" : "MISSED")) }

path = File.join(__dir__, "results", "bench-#{Time.now.utc.strftime('%Y%m%dT%H%M%SZ')}.json")
File.write(path, JSON.pretty_generate(results))
puts "\nwrote #{path}"
plot = path.sub(/\.json\z/, ".png")
if system("python3", File.join(__dir__, "plot.py"), path, plot, out: File::NULL, err: File::NULL)
  puts "plotted #{plot}"
else
  puts "no plot (bench/plot.py needs matplotlib: pip install matplotlib)"
end
