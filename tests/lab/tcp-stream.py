#!/usr/bin/env python3
"""A long-lived TCP stream for the grgw lab: does a connection survive?

    tcp-stream.py server --port P --report FILE [--lifetime S]
    tcp-stream.py client --addr A --port P --stop FILE --report FILE
                         [--interval S]

The client sends a numbered line ("1\\n", "2\\n", ...) every --interval
seconds (0.05) until the file --stop exists, then closes its side, waits
for the server's verdict and writes one line to its --report:

    client sent N error NONE|<errno name>

The server takes one connection, checks that the lines arrive complete and
in order, and when the client closes answers and writes to its --report:

    server lines N in-order yes|no

and the client's source address, as the server saw it, to REPORT.peer.

A reset (ECONNRESET), a broken pipe (EPIPE) or any other error ends the
client with that error named in its report.  Both are bounded: the server
exits after --lifetime seconds (600), the client after 60 s of no progress.
"""

import argparse
import errno
import os
import socket
import time


def serve(args):
    srv = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    srv.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("::", args.port))
    srv.listen(1)
    srv.settimeout(args.lifetime)
    conn, peer = srv.accept()
    with open(args.report + ".peer", "w", encoding="ascii") as f:
        f.write(peer[0].removeprefix("::ffff:") + "\n")
    conn.settimeout(args.lifetime)
    buf = b""
    lines = 0
    in_order = True
    while True:
        data = conn.recv(65536)
        if not data:
            break
        buf += data
        *complete, buf = buf.split(b"\n")
        for line in complete:
            lines += 1
            if line != str(lines).encode():
                in_order = False
    if buf:
        in_order = False
    verdict = f"server lines {lines} in-order {'yes' if in_order else 'no'}\n"
    conn.sendall(verdict.encode())
    conn.close()
    with open(args.report, "w", encoding="ascii") as f:
        f.write(verdict)


def client(args):
    sent = 0
    err = "NONE"
    try:
        s = socket.create_connection((args.addr, args.port), timeout=60)
        while not os.path.exists(args.stop):
            sent += 1
            s.sendall(f"{sent}\n".encode())
            time.sleep(args.interval)
        s.shutdown(socket.SHUT_WR)
        s.recv(256)
        s.close()
    except OSError as e:
        err = errno.errorcode.get(e.errno, str(e)) if e.errno else str(e)
    with open(args.report, "w", encoding="ascii") as f:
        f.write(f"client sent {sent} error {err}\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=("server", "client"))
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--report", required=True)
    ap.add_argument("--addr")
    ap.add_argument("--stop")
    ap.add_argument("--interval", type=float, default=0.05)
    ap.add_argument("--lifetime", type=float, default=600)
    args = ap.parse_args()
    if args.mode == "server":
        serve(args)
    else:
        client(args)


if __name__ == "__main__":
    main()
