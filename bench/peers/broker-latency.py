#!/usr/bin/env python3
"""The broker's own share of a run's latency, from Sluice's /metrics.

Sluice times every request from its frame read off the connection to its
response ready (`sluice_request_latency_seconds`, a histogram per protocol
and API). Two scrapes, one when the measured part of a run starts and one
when it ends, give the requests of that part alone:

    broker-latency.py scrape 127.0.0.1:19644 before.txt
    ... the run ...
    broker-latency.py scrape 127.0.0.1:19644 after.txt
    broker-latency.py diff before.txt after.txt

A cluster's nodes are scraped together (`scrape 127.0.0.1:19644,127.0.0.1:19654`)
and their requests summed. `diff` prints, per protocol and API, the
requests served and the bucket bound at or under which p50, p99, p99.9 and
all of them were served: an upper bound, as a histogram's buckets give (`<= 1.5 ms` means the quantile
is over the bucket below, at most 1.5 ms).
"""

import re
import sys
import urllib.request

FAMILY = "sluice_request_latency_seconds"
LINE = re.compile(r'^' + FAMILY + r'_bucket\{protocol="([^"]*)",api="([^"]*)",le="([^"]*)"\} (\d+)$')


def scrape(addresses, out):
    """Every node's /metrics (a comma-separated list), one after the other."""
    with open(out, "w") as file:
        for address in addresses.split(","):
            with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as answer:
                file.write(answer.read().decode())


def buckets(path):
    """{(protocol, api): {le: cumulative count}} of a saved scrape, summed
    over the nodes scraped."""
    found = {}
    for line in open(path):
        match = LINE.match(line.strip())
        if match:
            protocol, api, le, count = match.groups()
            bound = float("inf") if le == "+Inf" else float(le)
            counts = found.setdefault((protocol, api), {})
            counts[bound] = counts.get(bound, 0) + int(count)
    return found


def quantile_bound(cumulative, q):
    """The smallest bucket bound under which a share q of the requests fall."""
    total = cumulative[-1][1]
    for bound, count in cumulative:
        if count >= q * total:
            return bound
    return float("inf")


def shown(bound):
    return "> 10 s" if bound == float("inf") else f"<= {bound * 1000:g} ms"


def diff(before_path, after_path):
    before, after = buckets(before_path), buckets(after_path)
    print(f"{'protocol':8} {'api':16} {'requests':>9}  {'p50':>12} {'p99':>12} {'p99.9':>12} {'all':>12}")
    for kind in sorted(after):
        earlier = before.get(kind, {})
        cumulative = sorted((bound, count - earlier.get(bound, 0)) for bound, count in after[kind].items())
        total = cumulative[-1][1]
        if total == 0:
            continue
        figures = [shown(quantile_bound(cumulative, q)) for q in (0.5, 0.99, 0.999, 1.0)]
        print(f"{kind[0]:8} {kind[1]:16} {total:9d}  " + " ".join(f"{f:>12}" for f in figures))


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "scrape":
        scrape(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == "diff":
        diff(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
