#!/usr/bin/python3
"""A numbered UDP stream across the tunnel, to count what a change loses.

  udp-stream.py recv PORT SECONDS [--stop FILE]
                                       prints "received N highest H", then
                                       "gaps FIRST-LAST ..." (missing numbers)
  udp-stream.py send ADDR PORT RATE SECONDS [--stop FILE] [--t0 FILE]
                                       prints "sent N"; ends early once FILE
                                       exists (looked for every 0.1 s), and
                                       makes it when done; --t0: writes there
                                       when packet 0 left (wall clock, ms):
                                       packet n leaves n / RATE s after it,
                                       or later when the host falls behind

The receiver ends IDLE_S seconds after the last packet, or at SECONDS
(a deadline, for a sender that never came): under emulation a sender may
start and end late, and its last packets must still be counted.  With
--stop, a silence ends it only once FILE exists (the sender was told to
stop): a takeover on an emulated CPU can be silent for longer than IDLE_S,
and the packets after it count too.
"""
import os
import socket
import struct
import sys
import time

IDLE_S = 3.0


def recv(port, seconds, stop=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))
    s.settimeout(0.5)
    seen, high, end = set(), -1, time.monotonic() + seconds
    last = None
    while time.monotonic() < end:
        if last is not None and time.monotonic() - last > IDLE_S and \
                (stop is None or os.path.exists(stop)):
            break
        try:
            data = s.recv(64)
        except socket.timeout:
            continue
        last = time.monotonic()
        (n,) = struct.unpack("!Q", data[:8])
        seen.add(n)
        high = max(high, n)
    print("received %d highest %d" % (len(seen), high), flush=True)
    # Where the holes are (packet n left n / rate s after the start).
    gaps, n = [], 0
    while n <= high and len(gaps) < 200:
        if n in seen:
            n += 1
            continue
        first = n
        while n <= high and n not in seen:
            n += 1
        gaps.append("%d-%d" % (first, n - 1))
    print("gaps %s" % (" ".join(gaps) if gaps else "none"), flush=True)


def send(addr, port, rate, seconds, stop=None, t0=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if t0:
        with open(t0, "w") as f:
            f.write("%d\n" % int(time.time() * 1000))
    gap, n, start = 1.0 / rate, 0, time.monotonic()
    every = max(1, rate // 10)
    while n < rate * seconds:
        if stop and n % every == 0 and os.path.exists(stop):
            break
        s.sendto(struct.pack("!Q", n) + b"x" * 56, (addr, port))
        n += 1
        delay = start + n * gap - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    # Over: the receiver may now end on a silence (recv --stop).
    if stop:
        open(stop, "a").close()
    print("sent %d" % n, flush=True)


def option(i, name):
    """FILE of "NAME FILE" among sys.argv[i:], or None."""
    args = sys.argv[i:]
    for k in range(0, len(args) - 1, 2):
        if args[k] == name:
            return args[k + 1]
    return None


if __name__ == "__main__":
    if sys.argv[1] == "recv":
        recv(int(sys.argv[2]), float(sys.argv[3]), option(4, "--stop"))
    else:
        send(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]),
             option(6, "--stop"), option(6, "--t0"))
