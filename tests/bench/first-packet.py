#!/usr/bin/env python3
"""Prints when the first ICMP echo to an address is answered.

    first-packet.py ADDR [--every MS] [--timeout S] [--source ADDR]
                    [--ready FILE]

Sends an echo request every --every ms (5) from a raw socket (needs root or
CAP_NET_RAW) and prints the wall-clock time, in ms since the epoch, of the
first echo reply from ADDR; exits 1 with nothing printed after --timeout
seconds (60).  A finer clock than a ping(8) loop, whose processes take
longer to start than the step being measured.  Python itself can take
hundreds of ms to start on a busy machine: a benchmark waits for --ready
before it starts what it times.
"""

import argparse
import os
import select
import socket
import struct
import time


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("addr")
    ap.add_argument("--every", type=float, default=5)
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--source", help="bind to this address")
    ap.add_argument("--ready", help="create this file once sending")
    args = ap.parse_args()

    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    if args.source:
        s.bind((args.source, 0))
    ident = os.getpid() & 0xFFFF
    deadline = time.monotonic() + args.timeout
    seq = 0
    if args.ready:
        open(args.ready, "w", encoding="ascii").close()
    while time.monotonic() < deadline:
        seq = (seq + 1) & 0xFFFF
        hdr = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + b"first-packet"
        pkt = struct.pack("!BBHHH", 8, 0, checksum(hdr), ident, seq) + \
            b"first-packet"
        try:
            s.sendto(pkt, (args.addr, 0))
        except OSError:
            pass	# no route yet, or refused: try again
        until = time.monotonic() + args.every / 1000
        while True:
            left = until - time.monotonic()
            if left <= 0:
                break
            r, _, _ = select.select([s], [], [], left)
            if not r:
                break
            data, src = s.recvfrom(2048)
            ihl = (data[0] & 0x0F) * 4
            icmp = data[ihl:ihl + 8]
            if len(icmp) < 8 or src[0] != args.addr:
                continue
            typ, _, _, rid, _ = struct.unpack("!BBHHH", icmp)
            if typ == 0 and rid == ident:
                print(time.time_ns() // 1000000)
                return 0
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
