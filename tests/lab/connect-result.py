#!/usr/bin/python3
# connect-result.py ADDR PORT: one TCP connect with an 8 s timeout; prints
# "<result> <ms>", result one of connected, refused (a reset), unreachable
# (an ICMP error), timeout, or an errno name.  Used by the namespace lab
# (tests/lab/lib.sh) and, sent over ssh, by the Vagrant lab.
import errno
import socket
import sys
import time

addr, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET)
s.settimeout(8)
t0 = time.monotonic()
try:
    s.connect((addr, port))
    r = "connected"
except socket.timeout:
    r = "timeout"
except OSError as e:
    r = {errno.ECONNREFUSED: "refused", errno.EHOSTUNREACH: "unreachable",
         errno.ENETUNREACH: "unreachable", errno.EACCES: "unreachable"}.get(
        e.errno, errno.errorcode.get(e.errno, str(e.errno)))
print(r, int((time.monotonic() - t0) * 1000))
