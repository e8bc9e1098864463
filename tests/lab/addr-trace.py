#!/usr/bin/python3
"""Which network namespaces hold which addresses, and when: a recorder, to
prove that two gateways of a pair never held a floating address at once.

  addr-trace.py --out FILE --addr ADDR [--addr ADDR...] [--marks FILE]
                [--ready FILE] [--retry-ms MS] NS [NS...]

NS are namespace names as in /run/netns (grgwlab-gw-a1, not gw-a1).  It runs
until SIGTERM or SIGINT, then writes --out (through a temporary file and a
rename, so it appears whole) and exits 0.  SIGUSR1 writes --out as it stands
and goes on (its "stop" is then the time of writing).  --ready FILE is created once every NS that exists is attached
(its first state recorded): start changing things after that.  Exit 1 (and
no --out) when it cannot start, e.g. not root; 2 for bad usage.

A namespace holds ADDR when ADDR (any prefix length; IPv6 neither tentative
nor dadfailed) is on one of its interfaces and that interface is UP with
carrier (LOWER_UP).  A namespace that does not exist holds nothing.

How: event-driven, nothing polls the addresses.  One rtnetlink socket in
the tracer's own namespace listens to the link and address groups of every
namespace at once (NETLINK_LISTEN_ALL_NSID): the kernel serialises these
changes (RTNL) and queues them on the one socket in the order they
happened, so a release in one namespace and an add in another are never
seen swapped.  That needs each traced namespace to have an id in ours: the
tracer gives it one (`ip netns list` then shows "(id: N)"), as
`ip netns set NS auto` would.  When a namespace appears (inotify on
/run/netns, and every --retry-ms, default 20, while its name is there but
not yet mounted) it is attached: its links and addresses are dumped from a
socket opened in it by a short-lived thread, and the events queued
meanwhile are applied before anything is recorded.  The tracer keeps no
reference to a traced namespace (no socket, no open file, no process or
main thread in it: `ip netns pids` never lists it, power_off never kills
it, and `ip netns del` really frees the namespace): a namespace stops
holding when the kernel destroys it (RTM_DELNSID), which for a namespace
no process keeps alive is right after `ip netns del`.  Times are when the
event was read (the kernel stamps no time on these), unix seconds with
three decimals, from one monotonic clock; reading lags the change by well
under a millisecond on an idle machine.  Addresses an attach finds are
recorded at the attach's time.

Output, one record a line, fields separated by single spaces, first the
chronological records (by time, ties in the order seen):

  start T
  event T NS ADDR held|released     a change of whether NS holds ADDR
  netns T NS attached|unmounted|gone
                                    attached: traced from then on;
                                    unmounted: its name left /run/netns
                                    (ip netns del), informational (may
                                    come just after gone); gone: the
                                    kernel destroyed it (holds nothing)
  mark T NAME                       from --marks (below)
  overrun T                         the kernel dropped events (socket
                                    buffer full): the trace is no proof;
                                    every namespace was dropped (gone,
                                    released) and attached again
  stop T

then, for each ADDR (in --addr order):

  summary ADDR changes N max_holders M overlap_ms X longest_none_ms Y
  overlap ADDR T_START T_END NS1,NS2    (one per overlap: a time with two
                                         or more holders, all of its holders)
  phase NAME ADDR changes N max_holders M overlap_ms X longest_none_ms Y
                                        (one per mark, below)

changes counts the event records of ADDR; max_holders is the most
namespaces holding it at one moment, however short (two holders for no
measurable time still count: max_holders is the proof, overlap_ms the
size); overlap_ms is the total time with two or more holders, rounded up
(any overlap that lasted a measurable time is at least 1);
longest_none_ms is the longest time
with no holder after the first holder appeared (a stretch still open at
stop counts up to stop), rounded up.

Marks: the test appends lines "EPOCH NAME" to the --marks file whenever it
likes (printf '%s %s\\n' "$(date +%s.%N)" failover >>"$MARKS"); the file is
read only when --out is written, so it need not exist before.  Each mark
becomes a "mark" record, and a "phase" line per address gives the same
figures as the summary for the time from that mark to the next (by time),
or to stop; longest_none_ms there counts only after the first holder of the
whole trace, and a phase starting with two holders counts its max_holders
as 2.  Whitespace in NAME becomes "_".

Example: awk '$1 == "summary" && $5 > 1' FILE finds a double holder.
"""
import argparse
import ctypes
import errno
import ipaddress
import math
import os
import selectors
import signal
import socket
import struct
import sys
import threading
import time

NETNS_DIR = "/run/netns"
CLONE_NEWNET = 0x40000000

SOL_NETLINK = 270
NETLINK_LISTEN_ALL_NSID = 8
SO_RCVBUFFORCE = 33

NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 0x1, 0x4, 0x300
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
RTM_NEWNSID, RTM_DELNSID, RTM_GETNSID = 88, 89, 90
# multicast groups as bind() bits: RTNLGRP_LINK, _IPV4_IFADDR, _IPV6_IFADDR,
# _NSID (groups 1, 5, 9, 28)
GROUPS = (1 << 0) | (1 << 4) | (1 << 8) | (1 << 27)

IFA_ADDRESS, IFA_LOCAL, IFA_FLAGS = 1, 2, 8
NETNSA_NSID, NETNSA_FD = 1, 3
IFF_UP, IFF_LOWER_UP = 0x1, 0x10000
IFA_F_DADFAILED, IFA_F_TENTATIVE = 0x08, 0x40

IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE, IN_DELETE = 0x40, 0x80, 0x100, 0x200
IN_Q_OVERFLOW = 0x4000
IN_NONBLOCK, IN_CLOEXEC = 0o4000, 0o2000000

NLMSGHDR = struct.Struct("=IHHII")
RTATTR = struct.Struct("=HH")
IFINFOMSG = struct.Struct("=BxHiII")
IFADDRMSG = struct.Struct("=BBBBi")
RTGENMSG = b"\0\0\0\0"  # family AF_UNSPEC, padded
INOTIFY_EVENT = struct.Struct("=iIII")

LIBC = ctypes.CDLL(None, use_errno=True)


def libc_call(name, *args):
    ret = getattr(LIBC, name)(*args)
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, "%s: %s" % (name, os.strerror(err)))
    return ret


# ---- netlink ------------------------------------------------------------

def nl_messages(data):
    """(type, flags, body) of each message in a datagram"""
    off = 0
    while off + NLMSGHDR.size <= len(data):
        length, typ, flags, _seq, _pid = NLMSGHDR.unpack_from(data, off)
        if length < NLMSGHDR.size or off + length > len(data):
            break
        yield typ, flags, data[off + NLMSGHDR.size:off + length]
        off += (length + 3) & ~3


def nl_attrs(data, off):
    attrs = {}
    while off + RTATTR.size <= len(data):
        alen, atype = RTATTR.unpack_from(data, off)
        if alen < RTATTR.size:
            break
        attrs[atype & 0x3fff] = data[off + RTATTR.size:off + alen]
        off += (alen + 3) & ~3
    return attrs


def rtattr(atype, value):
    alen = RTATTR.size + len(value)
    return RTATTR.pack(alen, atype) + value + b"\0" * (-alen & 3)


class Netlink:
    """A NETLINK_ROUTE socket for requests (not events)."""

    def __init__(self, sock=None):
        self.sock = sock or socket.socket(socket.AF_NETLINK,
                                          socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                          socket.NETLINK_ROUTE)
        self.seq = 0

    def close(self):
        self.sock.close()

    def request(self, typ, flags, payload):
        """Send one request; yield the bodies of its replies' messages
        until the dump's end or the ack.  OSError for a netlink error."""
        self.seq += 1
        self.sock.send(NLMSGHDR.pack(NLMSGHDR.size + len(payload), typ,
                                     NLM_F_REQUEST | flags, self.seq, 0)
                       + payload)
        while True:
            data = self.sock.recv(1 << 18)
            for mtyp, _mflags, body in nl_messages(data):
                if mtyp == NLMSG_DONE:
                    return
                if mtyp == NLMSG_ERROR:
                    (err,) = struct.unpack_from("=i", body)
                    if err:
                        raise OSError(-err, os.strerror(-err))
                    return
                yield mtyp, body
            if not flags & (NLM_F_DUMP | NLM_F_ACK):
                return

    def nsid_of(self, fd):
        """The id our namespace has for the namespace of fd (-1: none)"""
        for mtyp, body in self.request(RTM_GETNSID, 0,
                                       RTGENMSG + rtattr(NETNSA_FD,
                                                         struct.pack("=i", fd))):
            if mtyp == RTM_NEWNSID:
                attrs = nl_attrs(body, len(RTGENMSG))
                if NETNSA_NSID in attrs:
                    return struct.unpack("=i", attrs[NETNSA_NSID])[0]
        return -1

    def ensure_nsid(self, fd):
        nsid = self.nsid_of(fd)
        if nsid >= 0:
            return nsid
        try:
            list(self.request(RTM_NEWNSID, NLM_F_ACK,
                              RTGENMSG + rtattr(NETNSA_FD, struct.pack("=i", fd))
                              + rtattr(NETNSA_NSID, struct.pack("=i", -1))))
        except OSError as e:
            if e.errno != errno.EEXIST:  # someone else just gave it one
                raise
        nsid = self.nsid_of(fd)
        if nsid < 0:
            raise OSError(errno.ENOENT, "no namespace id after RTM_NEWNSID")
        return nsid


def socket_in(fd):
    """A NETLINK_ROUTE socket in the namespace of fd, made by a thread of
    its own (setns moves that thread only; the process stays where it is)"""
    result = {}

    def run():
        try:
            libc_call("setns", fd, CLONE_NEWNET)
            result["sock"] = socket.socket(
                socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                socket.NETLINK_ROUTE)
        except OSError as e:
            result["err"] = e

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "err" in result:
        raise result["err"]
    return result["sock"]


# ---- state --------------------------------------------------------------

class Instance:
    """One namespace (by its id in ours) and what it has: a name can have
    two for a while (a new one mounted while the old lives on)."""

    def __init__(self, name, nsid, ino):
        self.name, self.nsid, self.ino = name, nsid, ino
        self.links = {}  # ifindex -> ifi_flags
        self.addrs = {}  # (ifindex, addr, prefixlen) -> ifa flags
        self.syncing = True  # events being applied silently

    def apply(self, typ, body, traced):
        if typ in (RTM_NEWLINK, RTM_DELLINK):
            family, _type, index, flags, _change = IFINFOMSG.unpack_from(body)
            if family != socket.AF_UNSPEC:  # AF_BRIDGE: bridge port news
                return
            if typ == RTM_NEWLINK:
                self.links[index] = flags
            else:
                self.links.pop(index, None)
                for key in [k for k in self.addrs if k[0] == index]:
                    del self.addrs[key]
        elif typ in (RTM_NEWADDR, RTM_DELADDR):
            _family, plen, flags, _scope, index = IFADDRMSG.unpack_from(body)
            attrs = nl_attrs(body, IFADDRMSG.size)
            raw = attrs.get(IFA_LOCAL, attrs.get(IFA_ADDRESS))
            if raw is None or len(raw) not in (4, 16):
                return
            addr = str(ipaddress.ip_address(raw))
            if addr not in traced:
                return
            if IFA_FLAGS in attrs:
                (flags,) = struct.unpack("=I", attrs[IFA_FLAGS])
            if typ == RTM_NEWADDR:
                self.addrs[(index, addr, plen)] = flags
            else:
                self.addrs.pop((index, addr, plen), None)

    def held(self):
        up = IFF_UP | IFF_LOWER_UP
        return {addr for (index, addr, _plen), flags in self.addrs.items()
                if not flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED)
                and self.links.get(index, 0) & up == up}


class Tracer:
    def __init__(self, names, addrs, retry):
        self.names = names
        self.addrs = addrs
        self.traced = set(addrs)
        self.retry = retry
        self.mono0 = time.monotonic()
        self.wall0 = time.time()
        self.start = self.wall0
        self.instances = {}  # nsid -> Instance
        self.holders = {a: set() for a in addrs}
        # per address: (t, frozenset of holders) at start and after each event
        self.timeline = {a: [(self.start, frozenset())] for a in addrs}
        self.records = []  # (t, text): the chronological part
        self.pending = {}  # name -> time of the next attach try
        self.nsfs_dev = os.stat("/proc/self/ns/net").st_dev
        self.ctl = Netlink()

        self.mon = socket.socket(socket.AF_NETLINK,
                                 socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                 socket.NETLINK_ROUTE)
        try:
            self.mon.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 32 << 20)
        except OSError:
            self.mon.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 << 20)
        self.mon.setsockopt(SOL_NETLINK, NETLINK_LISTEN_ALL_NSID, 1)
        self.mon.bind((0, GROUPS))
        self.mon.setblocking(False)

        os.makedirs(NETNS_DIR, mode=0o755, exist_ok=True)
        self.ino_fd = libc_call("inotify_init1", IN_NONBLOCK | IN_CLOEXEC)
        libc_call("inotify_add_watch", self.ino_fd, NETNS_DIR.encode(),
                  IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM)

    def now(self):
        return self.wall0 + (time.monotonic() - self.mono0)

    def record(self, t, text):
        self.records.append((t, text))

    # -- holders ----------------------------------------------------------

    def recompute(self, t):
        held = {name: set() for name in self.names}
        for inst in self.instances.values():
            if not inst.syncing:
                held[inst.name] |= inst.held()
        gained, lost = [], []
        for addr in self.addrs:
            for name in self.names:
                has = addr in held[name]
                if has and name not in self.holders[addr]:
                    gained.append((name, addr))
                elif not has and name in self.holders[addr]:
                    lost.append((name, addr))
        # Several changes at once only after an attach or a resync, whose
        # order is unknown: gains first, so that none can hide an overlap.
        for (name, addr), how in ([(c, "held") for c in gained]
                                  + [(c, "released") for c in lost]):
            if how == "held":
                self.holders[addr].add(name)
            else:
                self.holders[addr].discard(name)
            self.timeline[addr].append((t, frozenset(self.holders[addr])))
            self.record(t, "event %.3f %s %s %s" % (t, name, addr, how))

    # -- namespaces -------------------------------------------------------

    def drop(self, nsid, t):
        inst = self.instances.pop(nsid)
        self.record(t, "netns %.3f %s gone" % (t, inst.name))
        self.recompute(t)

    def attach(self, name):
        """True when done with name for now (attached, already traced or
        absent); False to try again later (there but not mounted yet)."""
        path = os.path.join(NETNS_DIR, name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return True
        try:
            st = os.fstat(fd)
            if st.st_dev != self.nsfs_dev:  # the file, not yet its mount
                return False
            # Anything queued first: a namespace gone whose id is reused.
            self.drain()
            nsid = self.ctl.ensure_nsid(fd)
            old = self.instances.get(nsid)
            if old is not None and old.ino == st.st_ino:
                return True
            self.drain()  # its RTM_DELNSID is queued by now
            if nsid in self.instances:
                self.drop(nsid, self.now())
            nl = Netlink(socket_in(fd))
            # Its events are handled from now on (applied silently until
            # the dump is in): none after the dump's start is missed.
            inst = Instance(name, nsid, st.st_ino)
            self.instances[nsid] = inst
        except OSError as e:
            print("addr-trace: %s: %s" % (name, e), file=sys.stderr)
            return False
        finally:
            os.close(fd)
        try:
            self.dump(inst, nl)
        except OSError as e:
            print("addr-trace: %s: dump: %s" % (name, e), file=sys.stderr)
            del self.instances[inst.nsid]
            return False
        finally:
            nl.close()
        # Apply what was queued meanwhile (older or newer than the dump: the
        # last word on each link and address is the kernel's latest), then
        # record.
        self.drain()
        inst.syncing = False
        t = self.now()
        self.record(t, "netns %.3f %s attached" % (t, name))
        self.recompute(t)
        return True

    def dump(self, inst, nl):
        for mtyp, body in nl.request(RTM_GETLINK, NLM_F_DUMP,
                                     IFINFOMSG.pack(0, 0, 0, 0, 0)):
            inst.apply(mtyp, body, self.traced)
        for mtyp, body in nl.request(RTM_GETADDR, NLM_F_DUMP,
                                     IFADDRMSG.pack(0, 0, 0, 0, 0)):
            inst.apply(mtyp, body, self.traced)

    def try_pending(self):
        now = time.monotonic()
        for name, due in list(self.pending.items()):
            if due <= now:
                if self.attach(name):
                    del self.pending[name]
                else:
                    self.pending[name] = time.monotonic() + self.retry

    def check_names(self):
        """Every name mounted but not traced becomes pending (safety net
        for a missed inotify event)."""
        for name in self.names:
            try:
                st = os.stat(os.path.join(NETNS_DIR, name))
            except OSError:
                continue
            if st.st_dev == self.nsfs_dev and not any(
                    i.name == name and i.ino == st.st_ino
                    for i in self.instances.values()):
                self.pending.setdefault(name, 0)

    def on_inotify(self):
        try:
            data = os.read(self.ino_fd, 1 << 16)
        except BlockingIOError:
            return
        t = self.now()
        off = 0
        while off + INOTIFY_EVENT.size <= len(data):
            _wd, mask, _cookie, nlen = INOTIFY_EVENT.unpack_from(data, off)
            name = data[off + INOTIFY_EVENT.size:
                        off + INOTIFY_EVENT.size + nlen].rstrip(b"\0").decode(
                            errors="replace")
            off += INOTIFY_EVENT.size + nlen
            if mask & IN_Q_OVERFLOW:
                self.check_names()
            if name not in self.names:
                continue
            if mask & (IN_CREATE | IN_MOVED_TO):
                self.pending[name] = 0
            if mask & (IN_DELETE | IN_MOVED_FROM):
                self.record(t, "netns %.3f %s unmounted" % (t, name))
        self.try_pending()

    # -- events -----------------------------------------------------------

    def drain(self):
        """Handle every event queued on the monitor socket."""
        cmsg_len = socket.CMSG_SPACE(4)
        while True:
            try:
                data, anc, _flags, _addr = self.mon.recvmsg(1 << 16, cmsg_len)
            except BlockingIOError:
                return
            except OSError as e:
                if e.errno != errno.ENOBUFS:
                    raise
                self.overrun()
                continue
            t = self.now()
            nsid = None
            for level, typ, value in anc:
                if level == SOL_NETLINK and typ == NETLINK_LISTEN_ALL_NSID:
                    (nsid,) = struct.unpack("=i", value[:4])
            for mtyp, _mflags, body in nl_messages(data):
                self.on_event(mtyp, body, nsid, t)

    def on_event(self, typ, body, nsid, t):
        if nsid is None:  # our own namespace: only its namespace ids matter
            if typ == RTM_DELNSID:
                attrs = nl_attrs(body, len(RTGENMSG))
                if NETNSA_NSID in attrs:
                    (gone,) = struct.unpack("=i", attrs[NETNSA_NSID])
                    if gone in self.instances:
                        self.drop(gone, t)
            return
        inst = self.instances.get(nsid)
        if inst is None:
            return
        inst.apply(typ, body, self.traced)
        if not inst.syncing:
            self.recompute(t)

    def overrun(self):
        """Events were lost: say so, forget everything and attach again
        (a namespace destroyed meanwhile is not found again: gone)."""
        t = self.now()
        self.record(t, "overrun %.3f" % t)
        for nsid in list(self.instances):
            self.drop(nsid, t)
        for name in self.names:
            self.pending[name] = 0

    # -- output -----------------------------------------------------------

    def write(self, out, marks_file, stop):
        marks = read_marks(marks_file)
        start = self.start
        lines = ["start %.3f" % start]
        chrono = list(self.records)
        chrono += [(t, "mark %.3f %s" % (t, name)) for t, name in marks]
        chrono.sort(key=lambda r: r[0])  # stable: ties stay in order seen
        lines += [text for _t, text in chrono]
        lines.append("stop %.3f" % stop)
        phases = sorted(marks, key=lambda m: m[0])
        for addr in self.addrs:
            tl = self.timeline[addr]
            first = next((t for t, h in tl if h), None)
            n, most, over, none, runs = stats(tl, start, stop, first, True)
            lines.append("summary %s changes %d max_holders %d overlap_ms %d"
                         " longest_none_ms %d" % (addr, n, most, over, none))
            for t0, t1, who in runs:
                lines.append("overlap %s %.3f %.3f %s"
                             % (addr, t0, t1, ",".join(sorted(who))))
            for i, (t0, name) in enumerate(phases):
                t1 = phases[i + 1][0] if i + 1 < len(phases) else stop
                n, most, over, none, _ = stats(
                    tl, min(max(t0, start), stop), min(max(t1, t0), stop),
                    first, i + 1 == len(phases))
                lines.append("phase %s %s changes %d max_holders %d"
                             " overlap_ms %d longest_none_ms %d"
                             % (name, addr, n, most, over, none))
        tmp = "%s.tmp.%d" % (out, os.getpid())
        with open(tmp, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(tmp, out)


def read_marks(path):
    marks = []
    if not path:
        return marks
    try:
        with open(path) as f:
            for line in f:
                parts = line.split(None, 1)
                if not parts:
                    continue
                try:
                    t = float(parts[0])
                except ValueError:
                    continue
                name = "_".join(parts[1].split()) if len(parts) > 1 else "-"
                marks.append((t, name))
    except FileNotFoundError:
        pass
    return marks


def ms_up(seconds):
    return int(math.ceil(round(seconds * 1000, 6)))


def stats(tl, a, b, first_hold, closed):
    """For the timeline tl from a to b: (changes, max holders, overlap ms,
    longest none ms, overlap runs as (start, end, holders)).  A state
    counts when it lasts into [a, b], or lasts no time at a moment in it;
    changes at b count only when closed."""
    changes = most = 0
    over = none_best = 0.0
    none_from = None  # start of the current stretch without holder
    runs = []
    run = None  # [start, end, holders] of the current overlap
    for i, (t, h) in enumerate(tl):
        end = tl[i + 1][0] if i + 1 < len(tl) else max(b, t)
        if not ((t < b and end > a) or (a <= t <= b and t == end)):
            continue
        if i > 0 and a <= t and (t < b or closed):
            changes += 1
        s, e = max(t, a), min(end, b)
        most = max(most, len(h))
        if len(h) >= 2:
            over += e - s
            if run is None:
                run = [s, e, set(h)]
            else:
                run[1] = e
                run[2] |= h
        elif run is not None:
            runs.append(tuple(run))
            run = None
        if not h and first_hold is not None and t >= first_hold:
            if none_from is None:
                none_from = s
            none_best = max(none_best, e - none_from)
        else:
            none_from = None
    if run is not None:
        runs.append(tuple(run))
    return changes, most, ms_up(over), ms_up(none_best), runs


def main():
    ap = argparse.ArgumentParser(
        description="Records which namespaces hold which addresses.",
        epilog="See the docstring at the top of this file.")
    ap.add_argument("--out", required=True)
    ap.add_argument("--addr", action="append", required=True)
    ap.add_argument("--marks")
    ap.add_argument("--ready")
    ap.add_argument("--retry-ms", type=float, default=20.0)
    ap.add_argument("ns", nargs="+")
    args = ap.parse_args()
    addrs = []
    for a in args.addr:
        try:
            a = str(ipaddress.ip_address(a))
        except ValueError:
            ap.error("not an address: %s" % a)
        if a not in addrs:
            addrs.append(a)
    names = list(dict.fromkeys(args.ns))

    stop = {"now": False, "dump": False}
    rsig, wsig = socket.socketpair()
    rsig.setblocking(False)
    wsig.setblocking(False)
    signal.set_wakeup_fd(wsig.fileno(), warn_on_full_buffer=False)

    def on_signal(signum, _frame):
        if signum == signal.SIGUSR1:
            stop["dump"] = True
        else:
            stop["now"] = True

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
        signal.signal(s, on_signal)

    try:
        tracer = Tracer(names, addrs, args.retry_ms / 1000.0)
    except OSError as e:
        sys.exit("addr-trace: cannot start: %s" % e)
    for name in names:
        tracer.pending[name] = 0
    tracer.try_pending()
    if args.ready:
        open(args.ready, "w").close()

    sel = selectors.DefaultSelector()
    sel.register(tracer.mon, selectors.EVENT_READ, "mon")
    sel.register(tracer.ino_fd, selectors.EVENT_READ, "ino")
    sel.register(rsig, selectors.EVENT_READ, "sig")
    next_check = time.monotonic() + 1.0
    while not stop["now"]:
        due = min([next_check] + list(tracer.pending.values()))
        timeout = max(0.0, due - time.monotonic())
        for key, _ev in sel.select(timeout):
            if key.data == "mon":
                tracer.drain()
            elif key.data == "ino":
                tracer.on_inotify()
            else:
                try:
                    while rsig.recv(256):
                        pass
                except BlockingIOError:
                    pass
        if tracer.pending:
            tracer.try_pending()
        if time.monotonic() >= next_check:
            tracer.check_names()
            next_check = time.monotonic() + 1.0
        if stop["dump"] and not stop["now"]:
            stop["dump"] = False
            tracer.write(args.out, args.marks, tracer.now())
    tracer.drain()
    tracer.write(args.out, args.marks, tracer.now())
    sys.exit(0)


if __name__ == "__main__":
    main()
