"""The official Python client (py-spiffe) timed against a Workload API, for
`rake bench`'s side-by-side table. Prints JSON.

  py_spiffe_bench.py SOCKET ITERATIONS
"""
import json
import sys
import time

from spiffe import WorkloadApiClient


def percentiles(samples):
    samples = sorted(samples)
    at = lambda q: samples[min(int(len(samples) * q), len(samples) - 1)]
    return {"p50_us": round(at(0.50), 1), "p99_us": round(at(0.99), 1), "max_us": round(at(1.0), 1)}


def timed(count, call):
    samples = []
    for _ in range(count):
        start = time.perf_counter_ns()
        call()
        samples.append((time.perf_counter_ns() - start) / 1000)
    return percentiles(samples)


def main():
    socket, iterations = "unix://" + sys.argv[1], int(sys.argv[2])
    with WorkloadApiClient(socket_path=socket) as client:
        for _ in range(200):
            client.fetch_x509_svid()
            client.fetch_jwt_svid(audience={"bench"})
        x509 = timed(iterations, client.fetch_x509_svid)
        jwt = timed(iterations, lambda: client.fetch_jwt_svid(audience={"bench"}))

    def cold():
        with WorkloadApiClient(socket_path=socket) as fresh:
            fresh.fetch_x509_svid()

    result = {"client": "py-spiffe", "x509_svid": x509, "jwt_svid": jwt, "cold_client_x509_svid": timed(200, cold)}
    print(json.dumps(result))


main()
