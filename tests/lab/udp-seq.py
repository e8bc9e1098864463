#!/usr/bin/python3
"""A paced UDP stream with sequence numbers, and its receiver, to count the
packets a tunnel loses (rekeying must lose none).

  udp-seq.py send ADDR PORT RATE SECONDS   prints "sent N in T s", then
                                           "start EPOCH" (the wall clock
                                           of packet 0)
  udp-seq.py recv PORT IDLE_S MAX_S        prints "received N lost L
                                           duplicates D reordered R max M",
                                           then, if any were lost, "gaps
                                           FIRST-LAST ..." (at most 20)

The sender keeps to the rate on average: when the machine held it up, it
catches up at once (the count is what matters, not the spacing).  The
receiver ends IDLE_S seconds after the last packet (or MAX_S after start);
"lost" counts the sequence numbers below the highest one received that
never arrived, plus none above it: the sender's own total says the rest.
"""
import socket
import struct
import sys
import time

HDR = struct.Struct("!Q")
PAD = b"\0" * 92  # 100-byte payloads


def send(addr, port, rate, seconds):
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(family, socket.SOCK_DGRAM)
    total = int(rate * seconds)
    start = time.monotonic()
    wall = time.time()
    sent = 0
    while sent < total:
        due = start + sent / rate
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        try:
            s.sendto(HDR.pack(sent) + PAD, (addr, port))
        except OSError as e:  # counted as sent: the tunnel refused it
            print("send error at %d: %s" % (sent, e), file=sys.stderr)
        sent += 1
    print("sent %d in %.1f s" % (sent, time.monotonic() - start), flush=True)
    print("start %.3f" % wall, flush=True)


def recv(port, idle, limit):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind(("::", port))
    seen = set()
    dup = reordered = 0
    highest = -1
    start = time.monotonic()
    last = None
    while True:
        now = time.monotonic()
        if now - start > limit or (last is not None and now - last > idle):
            break
        s.settimeout(0.5)
        try:
            data, _ = s.recvfrom(2048)
        except socket.timeout:
            continue
        if len(data) < HDR.size:
            continue
        last = time.monotonic()
        (seq,) = HDR.unpack_from(data)
        if seq in seen:
            dup += 1
            continue
        seen.add(seq)
        if seq < highest:
            reordered += 1
        highest = max(highest, seq)
    lost = highest + 1 - len(seen)
    print("received %d lost %d duplicates %d reordered %d max %d"
          % (len(seen), lost, dup, reordered, highest), flush=True)
    if lost > 0:
        print("gaps " + " ".join(gaps(seen, highest, 20)), flush=True)


def gaps(seen, highest, most):
    """The runs of missing sequence numbers, as "FIRST-LAST" strings: when
    they were lost says why (seq / rate is the time after the start)."""
    out = []
    first = None
    for seq in range(highest + 2):
        missing = seq <= highest and seq not in seen
        if missing and first is None:
            first = seq
        elif not missing and first is not None:
            out.append("%d-%d" % (first, seq - 1))
            first = None
            if len(out) == most:
                break
    return out


def main():
    if len(sys.argv) == 6 and sys.argv[1] == "send":
        send(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]),
             float(sys.argv[5]))
    elif len(sys.argv) == 5 and sys.argv[1] == "recv":
        recv(int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
