#!/usr/bin/env python3
"""TCP sink for the grgw lab.

Listens on every address (IPv4 and IPv6), reads each connection to its end
and answers with one line saying what it saw:

    peer <source address> bytes <count> sha256 <hex digest>

The same line is appended to the log file, so a test can check the source
address of a connection (no NAT between the sites) and the integrity of a
transfer.  Bounded: each connection times out after 60 s of silence and the
server exits after --lifetime seconds.
"""

import argparse
import hashlib
import socket
import threading
import time

LOCK = threading.Lock()


def serve(conn, peer, log):
    conn.settimeout(60)
    digest = hashlib.sha256()
    count = 0
    try:
        while True:
            data = conn.recv(65536)
            if not data:
                break
            digest.update(data)
            count += len(data)
        addr = peer[0]
        if addr.startswith("::ffff:"):
            addr = addr[len("::ffff:"):]
        line = f"peer {addr} bytes {count} sha256 {digest.hexdigest()}\n"
        conn.sendall(line.encode())
        with LOCK:
            log.write(line)
            log.flush()
    except OSError:
        pass
    finally:
        conn.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--lifetime", type=int, default=1800)
    args = ap.parse_args()

    srv = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    srv.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("::", args.port))
    srv.listen(16)
    srv.settimeout(1.0)

    deadline = time.monotonic() + args.lifetime
    with open(args.log, "a", encoding="ascii") as log:
        while time.monotonic() < deadline:
            try:
                conn, peer = srv.accept()
            except socket.timeout:
                continue
            threading.Thread(target=serve, args=(conn, peer, log),
                             daemon=True).start()


if __name__ == "__main__":
    main()
