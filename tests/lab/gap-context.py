#!/usr/bin/env python3
"""Where the stream's silences fell: for each one, the move before it and
what the gateways logged around it.

    gap-context.py --moves MOVES --stream RECV [--before MS] [--after MS]
                   [--lines N] [--per-packet MS] [--offset MS] NAME=LOG...

MOVES is the pair tests' moves.log ("0 stream start, HH:MM:SS.mmm", then
"MS LABEL" a line, MS counted from the stream's start); RECV is
udp-seq.py's summary (its "gaps A-B ..." line, A and B the first and last
missing sequence numbers, one a millisecond from the start; --per-packet:
one every MS instead, for a slower stream that began --offset MS after
the one MOVES counts from).  Each LOG is
a grgw or charon log ("YYYY-MM-DD HH:MM:SS.mmm ..." lines), shown as NAME.
Prints, for each silence, the last move before it and the log lines from
MS before it to MS after it (hook lines left out), at most N per silence;
nothing when there was no silence.  Exit 0, 2 on bad arguments or files.
"""
import argparse
import re
import sys

STAMP = re.compile(r"^\S+ (\d\d):(\d\d):(\d\d\.\d+) (.*)$")


def clock_ms(h, m, s):
    return (int(h) * 3600 + int(m) * 60 + float(s)) * 1000.0


def read_moves(path):
    start, moves = None, []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            m = re.match(r"^0 stream start, (\d\d):(\d\d):(\d\d\.\d+)$", line)
            if m:
                start = clock_ms(*m.groups())
                continue
            m = re.match(r"^(\d+) (.+)$", line)
            if m:
                moves.append((int(m.group(1)), m.group(2)))
    return start, moves


def read_gaps(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("gaps "):
                out = []
                for g in line.split()[1:]:
                    a, _, b = g.partition("-")
                    if a.isdigit() and b.isdigit():
                        out.append((int(a), int(b)))
                return out
    return []


def read_log(name, path, start):
    out = []
    try:
        f = open(path, encoding="utf-8", errors="replace")
    except OSError:
        return out
    with f:
        for line in f:
            m = STAMP.match(line.rstrip("\n"))
            if not m or "hook " in m.group(4):
                continue
            t = clock_ms(m.group(1), m.group(2), m.group(3)) - start
            out.append((int(t), name, m.group(4)[:160]))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--moves", required=True)
    ap.add_argument("--stream", required=True)
    ap.add_argument("--before", type=int, default=300)
    ap.add_argument("--after", type=int, default=100)
    ap.add_argument("--lines", type=int, default=40)
    ap.add_argument("--per-packet", type=int, default=1)
    ap.add_argument("--offset", type=int, default=0)
    ap.add_argument("logs", nargs="*")
    a = ap.parse_args()
    try:
        start, moves = read_moves(a.moves)
        gaps = read_gaps(a.stream)
    except OSError as e:
        print(f"gap-context: {e}", file=sys.stderr)
        return 2
    if start is None:
        print(f"gap-context: {a.moves}: no stream start", file=sys.stderr)
        return 2
    events = []
    for spec in a.logs:
        name, sep, path = spec.partition("=")
        if not sep:
            print(f"gap-context: {spec}: expected NAME=LOG", file=sys.stderr)
            return 2
        events += read_log(name, path, start)
    events.sort(key=lambda e: e[0])
    gaps = [(a.offset + lo * a.per_packet,
             a.offset + (hi + 1) * a.per_packet - 1) for lo, hi in gaps]
    for lo, hi in gaps:
        before = [mv for mv in moves if mv[0] <= lo]
        where = (f'{lo - before[-1][0]} ms after "{before[-1][1]}"'
                 if before else "before the first move")
        print(f"silence {lo}-{hi} ({hi - lo + 1} ms), {where}:")
        near = [e for e in events if lo - a.before <= e[0] <= hi + a.after]
        for t, name, text in near[:a.lines]:
            print(f"  {t:8d} {name:<14} {text}")
        if len(near) > a.lines:
            print(f"  ... {len(near) - a.lines} more lines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
