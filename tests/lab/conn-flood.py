#!/usr/bin/env python3
"""Connection flood for the grgw lab: what a careless or hostile client
can make a gateway's listeners hold.

Keeps, for --seconds (or until SIGTERM/SIGINT), up to:

  --idle N       TCP connections to --tcp HOST:PORT that never send a byte
  --slow N       TCP connections to the same address sending a request head
                 one byte a second, never finishing it (slowloris)
  --unix-idle N  connections to the unix socket --unix PATH that never send
                 a byte

A connection the server closes is opened again --reopen seconds later, as
a client that insists would; with --once it is not, and the run ends when
the server has closed them all.  When it ends, it writes one JSON object to
--report (or stdout) per kind:

  opened       connects that succeeded
  failed       connects that failed (refused, timed out, no port left)
  closed       connections the server closed
  open_max     most connections open at once
  life_max_s   longest a connection the server closed had lived
  sent         bytes sent (slow only)

and prints "ready" on stdout once every connection has been started.
Bounded: nothing outlives --seconds plus one.
"""

import argparse
import errno
import json
import resource
import selectors
import signal
import socket
import sys
import time

HEAD = b"GET /metrics HTTP/1.1\r\nHost: gw\r\nUser-Agent: slow\r\nX-Pad: " + b"a" * 4096


class Kind:
    def __init__(self, name):
        self.name = name
        self.opened = 0
        self.failed = 0
        self.closed = 0
        self.open = 0
        self.open_max = 0
        self.life_max = 0.0
        self.sent = 0

    def report(self):
        return {"opened": self.opened, "failed": self.failed, "closed": self.closed,
                "open_max": self.open_max, "life_max_s": round(self.life_max, 2),
                "sent": self.sent}


class Slot:
    """One connection, opened again after the server closes it."""

    def __init__(self, flood, kind, family, addr, slow):
        self.flood, self.kind, self.family, self.addr, self.slow = flood, kind, family, addr, slow
        self.sock = None
        self.connected = False
        self.since = 0.0
        self.pos = 0
        self.next_at = 0.0      # when to (re)open, or send the next byte

    def start(self, now):
        try:
            s = socket.socket(self.family, socket.SOCK_STREAM)
        except OSError:
            self.kind.failed += 1
            self.next_at = now + self.flood.reopen
            return
        s.setblocking(False)
        self.sock = s
        self.connected = False
        err = s.connect_ex(self.addr)
        if err in (0, errno.EINPROGRESS, errno.EAGAIN):
            self.flood.sel.register(s, selectors.EVENT_WRITE, self)
            if err == 0:
                self.on_connected(now)
        else:
            self.drop(now, failed=True)

    def on_connected(self, now):
        self.connected = True
        self.since = now
        self.pos = 0
        self.kind.opened += 1
        self.kind.open += 1
        self.kind.open_max = max(self.kind.open_max, self.kind.open)
        self.flood.sel.modify(self.sock, selectors.EVENT_READ, self)
        self.next_at = now + 1.0 if self.slow else 0.0

    def event(self, now):
        if not self.connected:
            err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err != 0:
                self.drop(now, failed=True)
            else:
                self.on_connected(now)
            return
        try:
            data = self.sock.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.drop(now, failed=False)

    def tick(self, now):
        if self.sock is None:
            if not self.flood.once and now >= self.next_at:
                self.start(now)
            return
        if self.slow and self.connected and now >= self.next_at:
            try:
                self.kind.sent += self.sock.send(HEAD[self.pos % len(HEAD):][:1])
                self.pos += 1
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                self.drop(now, failed=False)
                return
            self.next_at = now + 1.0

    def drop(self, now, failed):
        if failed:
            self.kind.failed += 1
        elif self.connected:
            self.kind.closed += 1
            self.kind.open -= 1
            self.kind.life_max = max(self.kind.life_max, now - self.since)
        try:
            self.flood.sel.unregister(self.sock)
        except (KeyError, ValueError):
            pass
        self.sock.close()
        self.sock = None
        self.connected = False
        self.next_at = now + self.flood.reopen

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None


class Flood:
    def __init__(self, reopen, once):
        self.sel = selectors.DefaultSelector()
        self.reopen = reopen
        self.once = once
        self.slots = []
        self.kinds = {}

    def add(self, name, n, family, addr, slow=False):
        kind = self.kinds.setdefault(name, Kind(name))
        self.slots += [Slot(self, kind, family, addr, slow) for _ in range(n)]

    def run(self, seconds):
        stop = [False]

        def on_signal(signum, frame):
            stop[0] = True
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        end = time.monotonic() + seconds
        now = time.monotonic()
        for slot in self.slots:
            slot.start(now)
        print("ready", flush=True)
        while not stop[0]:
            now = time.monotonic()
            if now >= end:
                break
            if self.once and all(slot.sock is None for slot in self.slots):
                break
            for key, _ in self.sel.select(timeout=0.05):
                key.data.event(time.monotonic())
            now = time.monotonic()
            for slot in self.slots:
                slot.tick(now)
        for slot in self.slots:
            slot.close()
        return {name: k.report() for name, k in self.kinds.items()}


def tcp_target(text):
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return family, (host, int(port))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tcp", help="HOST:PORT or [V6]:PORT")
    ap.add_argument("--idle", type=int, default=0)
    ap.add_argument("--slow", type=int, default=0)
    ap.add_argument("--unix", help="path of a unix stream socket")
    ap.add_argument("--unix-idle", type=int, default=0)
    ap.add_argument("--reopen", type=float, default=1.0,
                    help="seconds before a closed connection is opened again")
    ap.add_argument("--once", action="store_true",
                    help="open each connection once; end when all are closed")
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--report")
    a = ap.parse_args()

    want = a.idle + a.slow + a.unix_idle + 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    flood = Flood(a.reopen, a.once)
    if a.idle or a.slow:
        if not a.tcp:
            ap.error("--idle and --slow need --tcp")
        family, addr = tcp_target(a.tcp)
        flood.add("idle", a.idle, family, addr)
        flood.add("slow", a.slow, family, addr, slow=True)
    if a.unix_idle:
        if not a.unix:
            ap.error("--unix-idle needs --unix")
        flood.add("unix_idle", a.unix_idle, socket.AF_UNIX, a.unix)
    out = json.dumps(flood.run(a.seconds), sort_keys=True)
    if a.report:
        with open(a.report, "w") as f:
            f.write(out + "\n")
    else:
        print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
