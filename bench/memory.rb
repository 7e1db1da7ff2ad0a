# frozen_string_literal: true

# Run by bench/run.rb in a fresh process: RSS and native threads before and
# after `require "spiffe"`, after the first fetch, and after COUNT fetches
# (growth measured from a warmed-up point), then COUNT more (a leak keeps
# growing; warm-up does not). Prints JSON.
#   ruby -Ilib bench/memory.rb SOCKET COUNT
require "json"

def rss_kb = File.read("/proc/self/status")[/VmRSS:\s+(\d+)/, 1].to_i
def threads = File.read("/proc/self/status")[/Threads:\s+(\d+)/, 1].to_i

socket, count = ARGV[0], Integer(ARGV[1])
result = { before_require: { rss_kb: rss_kb, threads: threads } }
require "spiffe"
result[:after_require] = { rss_kb: rss_kb, threads: threads }
client = Spiffe.workload_api_client(socket_path: socket)
client.x509_svid
result[:after_first_fetch] = { rss_kb: rss_kb, threads: threads }
1000.times { client.x509_svid; client.jwt_svid(audience: "bench") }
GC.start
warm = rss_kb
count.times { client.x509_svid }
GC.start
result[:after_fetches] = { rss_kb: rss_kb, threads: threads, fetches: count }
result[:growth_kb] = rss_kb - warm
# The same again: a leak keeps growing, warm-up (malloc arenas, buffers) does not.
steady = rss_kb
count.times { client.x509_svid }
GC.start
result[:steady_growth_kb] = rss_kb - steady
puts JSON.generate(result)
