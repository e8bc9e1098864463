#!/usr/bin/env python3
"""A memcached client on one TCP connection: does it survive a takeover?

    memc-client.py --server ADDR --port P [--rate R] [--timeout S]
                   [--lifetime S] [--connect-tries N]

Connects once to memcached at ADDR:P and says so on stdout:

    connected local ADDR:PORT

A connect that fails is tried again a second later, up to --connect-tries
times in all (1), each failure said on a line of its own ("connect N
failed, again in 1 s: ..."): a set-up before the test, as the gateways'
tunnel may be refusing for a moment on an emulated host.

then, --rate times a second (50), stores a numbered value under one key
("set") and reads it back ("get"), one request at a time, on that
connection.  Each answer must come within --timeout seconds (10: long
enough for TCP to retransmit across a gateway takeover) and be exactly the
one expected.  The client never connects again: a reset, an end of file,
a timeout or a wrong answer is an error, and ends the run.

On SIGTERM (or after --lifetime seconds, 900), or after the error, it
prints one line and exits (0, or 1 after an error; a failed connect is
such an error, with local "-"):

    memc ops N errors E reconnects 0 local ADDR:PORT longest_wait_ms W [error TEXT]

ops counts the rounds (a set and a get) answered as expected, longest_wait_ms
the longest time from a request to its whole answer.  reconnects is
always 0, as the client never makes a second connection; it is printed so
that the line says so.  The protocol is memcached's text protocol, written
out here: no library between the test and the socket.
"""

import argparse
import signal
import socket
import sys
import time

KEY = b"grgwlab-memc"


class MemcError(Exception):
    """An answer that is not the one expected."""


class Connection:
    """One TCP connection to memcached and what was read past an answer."""

    def __init__(self, sock, timeout):
        self.sock = sock
        self.timeout = timeout
        self.buf = b""
        self.longest_ms = 0.0

    def request(self, data, last_line):
        """Send DATA; return the answer, up to and including LAST_LINE
        (or the first line, if that is a memcached error)."""
        late = f"no whole answer within {self.timeout:g} s to {data[:3].decode()}"
        t0 = time.monotonic()
        deadline = t0 + self.timeout
        self.sock.settimeout(self.timeout)
        self.sock.sendall(data)
        while True:
            answer = self.complete_answer(last_line)
            if answer is not None:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(late)
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                raise TimeoutError(late) from None
            if not chunk:
                raise MemcError("end of file from the server")
            self.buf += chunk
        self.longest_ms = max(self.longest_ms, (time.monotonic() - t0) * 1000)
        return answer

    def complete_answer(self, last_line):
        """The answer at the head of the buffer, taken out; None if it is
        not all there yet."""
        first_end = self.buf.find(b"\r\n")
        if first_end < 0:
            return None
        first = self.buf[:first_end]
        if first in (b"ERROR", b"END") or first.startswith((b"CLIENT_ERROR", b"SERVER_ERROR")):
            end = first_end + 2
        else:
            at = self.buf.find(last_line)
            if at < 0:
                return None
            end = at + len(last_line)
        answer, self.buf = self.buf[:end], self.buf[end:]
        return answer


def round_trip(conn, n):
    """Set the key to value N, then get it back; MemcError if either
    answer is not the one expected."""
    value = b"value-%d" % n
    stored = conn.request(b"set %s 0 0 %d\r\n%s\r\n" % (KEY, len(value), value), b"\r\n")
    if stored != b"STORED\r\n":
        raise MemcError(f"set {n}: {stored!r}")
    want = b"VALUE %s 0 %d\r\n%s\r\nEND\r\n" % (KEY, len(value), value)
    got = conn.request(b"get %s\r\n" % KEY, b"END\r\n")
    if got != want:
        raise MemcError(f"get {n}: {got!r}, expected {want!r}")


def run(args):
    stop = []
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.append(signum))
    tries = 0
    while True:
        tries += 1
        try:
            sock = socket.create_connection((args.server, args.port), timeout=args.timeout)
            break
        except OSError as e:
            if tries < args.connect_tries and not stop:
                print(f"connect {tries} failed, again in 1 s: {type(e).__name__}: {e}",
                      flush=True)
                time.sleep(1)
                continue
            print(f"memc ops 0 errors 1 reconnects 0 local - longest_wait_ms 0"
                  f" error connect: {type(e).__name__}: {e}", flush=True)
            return 1
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    local = "%s:%d" % sock.getsockname()[:2]
    print(f"connected local {local}", flush=True)
    conn = Connection(sock, args.timeout)
    ops = 0
    error = None
    interval = 1.0 / args.rate
    end = time.monotonic() + args.lifetime
    next_at = time.monotonic()
    while not stop and time.monotonic() < end:
        try:
            round_trip(conn, ops + 1)
        except (OSError, MemcError) as e:
            error = f"{type(e).__name__}: {e}"
            break
        ops += 1
        # Keep the rate, without a burst after a wait.
        next_at = max(next_at + interval, time.monotonic())
        time.sleep(max(0.0, next_at - time.monotonic()))
    summary = (f"memc ops {ops} errors {0 if error is None else 1} reconnects 0"
               f" local {local} longest_wait_ms {conn.longest_ms:.0f}")
    if error is not None:
        summary += f" error {error}"
    print(summary, flush=True)
    sock.close()
    return 0 if error is None else 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--rate", type=float, default=50)
    ap.add_argument("--timeout", type=float, default=10)
    ap.add_argument("--lifetime", type=float, default=900)
    ap.add_argument("--connect-tries", type=int, default=1)
    return run(ap.parse_args())


if __name__ == "__main__":
    sys.exit(main())
