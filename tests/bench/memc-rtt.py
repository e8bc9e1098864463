#!/usr/bin/python3
"""Round-trip times of small memcached requests (Rogers stand-in).

A real memcached client (Debian's python3-pymemcache) keeps one TCP
connection to the server, as Sprout keeps its connections to Rogers, and
issues COUNT requests (alternately a set and a get of a 100-byte value),
GAP seconds apart.  Each request is timed from send to answer.  Prints one
line:

    requests N ok N failed N p50_ms X p99_ms Y max_ms Z

A request that gets no answer within TIMEOUT seconds counts as failed (and
the connection is opened again).  --raw FILE appends every round trip (ms,
one per line) to FILE, so several runs can be pooled.  Bounded: COUNT * (GAP + TIMEOUT) seconds
at most.
"""

import argparse
import sys
import time

from pymemcache.client.base import Client


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1,
                   int(round(p / 100.0 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True, help="host:port")
    ap.add_argument("--count", type=int, default=500)
    ap.add_argument("--gap", type=float, default=0.02)
    ap.add_argument("--timeout", type=float, default=2.0)
    ap.add_argument("--raw", help="append each round trip (ms) to this file")
    args = ap.parse_args()

    host, port = args.server.rsplit(":", 1)
    client = Client((host.strip("[]"), int(port)), connect_timeout=args.timeout,
                    timeout=args.timeout, no_delay=True)
    value = b"r" * 100
    rtts = []
    failed = 0
    for i in range(args.count):
        key = "rogers-%d" % (i % 50)
        t0 = time.perf_counter()
        try:
            if i % 2 == 0:
                ok = client.set(key, value, noreply=False)
            else:
                ok = client.get(key) is not None or True
            if not ok:
                raise OSError("not stored")
            rtts.append((time.perf_counter() - t0) * 1000.0)
        except Exception:  # timeouts, resets: a failed request
            failed += 1
            client.close()
        time.sleep(args.gap)
    client.close()
    if args.raw:
        with open(args.raw, "a", encoding="ascii") as raw:
            raw.writelines("%.3f\n" % r for r in rtts)
    rtts.sort()
    print("requests %d ok %d failed %d p50_ms %.3f p99_ms %.3f max_ms %.3f"
          % (args.count, len(rtts), failed, percentile(rtts, 50),
             percentile(rtts, 99), rtts[-1] if rtts else float("nan")))
    return 0 if rtts else 1


if __name__ == "__main__":
    sys.exit(main())
