#!/usr/bin/python3
"""A numbered UDP stream across the tunnel, to count what a change loses.

  udp-stream.py recv PORT SECONDS [--stop FILE]
                                       (IPv4 and IPv6 on PORT)
                                       prints "received N highest H", then
                                       "gaps FIRST-LAST ..." (missing numbers),
                                       "silences AT:MS ..." (one per gap, by
                                       the receiver's clock: when the packet
                                       before it arrived, wall clock ms, "-"
                                       for none, and how long until the one
                                       after it), "last-at MS" (when packet H
                                       arrived)
  udp-stream.py send ADDR PORT RATE SECONDS [--stop FILE] [--t0 FILE]
                                       (ADDR IPv4 or IPv6)
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
import array
import os
import socket
import struct
import sys
import time

IDLE_S = 3.0
# the most gaps listed; the highest sequence number taken (14 hours at
# 1,000 packets/s), and the furthest a packet may jump ahead (1,000 s):
# anything else is not the stream's
MAX_GAPS = 200
MAX_SEQ = 5 * 10 ** 7
MAX_JUMP = 10 ** 6


def listener(port):
    """A socket on port for both families, or IPv4 alone without IPv6."""
    s = None
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.bind(("::", port))
        return s
    except OSError:
        if s is not None:
            s.close()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))
    return s


def recv(port, seconds, stop=None):
    s = listener(port)
    s.settimeout(0.5)
    # arrival[n]: when packet n arrived (wall clock, s), 0 for not yet
    arrival, high, end = array.array("d"), -1, time.monotonic() + seconds
    last = None
    while time.monotonic() < end:
        if last is not None and time.monotonic() - last > IDLE_S and \
                (stop is None or os.path.exists(stop)):
            break
        try:
            data = s.recv(64)
        except socket.timeout:
            continue
        if len(data) < 8:
            continue
        (n,) = struct.unpack("!Q", data[:8])
        if n >= MAX_SEQ or n > high + MAX_JUMP:
            continue
        last = time.monotonic()
        if n >= len(arrival):
            grow = max(n + 1, 2 * len(arrival)) - len(arrival)
            arrival.frombytes(bytes(8 * grow))
        if not arrival[n]:
            arrival[n] = time.time()
        high = max(high, n)
    got = sum(1 for t in arrival if t)
    print("received %d highest %d" % (got, high), flush=True)
    # Where the holes are (packet n left n / rate s after the start), and
    # how long each left the receiver without a packet.
    gaps, silences, n = [], [], 0
    while n <= high and len(gaps) < MAX_GAPS:
        if arrival[n]:
            n += 1
            continue
        first = n
        while n <= high and not arrival[n]:
            n += 1
        gaps.append("%d-%d" % (first, n - 1))
        if first == 0:
            silences.append("-:-")
        else:
            silences.append("%d:%d" % (arrival[first - 1] * 1000,
                                       (arrival[n] - arrival[first - 1]) * 1000))
    print("gaps %s" % (" ".join(gaps) if gaps else "none"), flush=True)
    print("silences %s" % (" ".join(silences) if silences else "none"), flush=True)
    print("last-at %s" % ("%d" % (arrival[high] * 1000) if high >= 0 else "-"), flush=True)


def send(addr, port, rate, seconds, stop=None, t0=None):
    s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET,
                      socket.SOCK_DGRAM)
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
