"""Plots a bench/results/*.json as a PNG: x509_svid, jwt_svid and new-client
latency at p50 and p99 for spiffe-workload and the official clients.

  python3 bench/plot.py RESULTS.json OUT.png      (needs matplotlib)
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402

results = json.load(open(sys.argv[1]))
clients = {"spiffe-workload (Ruby)": results}
for key, name in (("rust_spiffe", "rust spiffe crate"), ("py_spiffe", "py-spiffe")):
    if key in results.get("peers", {}):
        clients[name] = results["peers"][key]
calls = [("x509_svid", "x509_svid"), ("jwt_svid", "jwt_svid"), ("cold_client_x509_svid", "new client + x509_svid")]

fig, axes = plt.subplots(1, len(calls), figsize=(13, 4.2))
for ax, (key, title) in zip(axes, calls):
    names = list(clients)
    p50 = [clients[n][key]["p50_us"] for n in names]
    p99 = [clients[n][key]["p99_us"] for n in names]
    y = range(len(names))
    ax.barh([i + 0.2 for i in y], p99, height=0.4, label="p99", color="#f4a259")
    ax.barh([i - 0.2 for i in y], p50, height=0.4, label="p50", color="#2a6f97")
    ax.set_yticks(list(y))
    ax.set_yticklabels(names)
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("µs (log scale)")
    ax.set_title(title)
    ax.invert_yaxis()
axes[0].legend(loc="lower right")
fig.suptitle(f"Workload API latency, same agent, same run ({results['at']}, {results['cpus']} CPUs)")
fig.tight_layout()
fig.savefig(sys.argv[2], dpi=110)
