#!/usr/bin/env python3
"""Check Clearwater alarm definition files against the rules of
Clearwater's alarm tooling, and the index against Clearwater's blocks.

What the alarm agent and its build-time parser require of a definition
(cpp-common src/json_alarms.cpp, python-common alarms_parser.py):
  - a top-level "alarms" list; each alarm has "name", "index" (an integer),
    "cause" (software_error, database_inconsistency or
    underlying_resource_unavailable, any case) and "levels";
  - each level has "severity" (cleared, indeterminate, critical, major,
    minor, warning), "details" and "description" (at most 255 characters),
    "cause", "effect" and "action" (at most 4096 characters);
  - exactly one CLEARED level and at least one raised level, and no
    severity twice (an index.severity pair names one alarm state);
  - an index defined twice, in one file or across the installed files,
    makes the agent exit.
The index blocks Clearwater hands out (cpp-common alarmdefinition.h):
components from 1000 up to Rogers' 13000-13499, with the blocks in
between reserved; an index of ours must lie outside all of them.

usage: check-alarms.py FILE...   prints "ok ..." / "FAIL ..." lines and
"N passed, N failed"; exit status 1 on any failure.
"""
import json
import sys

SEVERITIES = {"cleared", "indeterminate", "critical", "major", "minor",
              "warning"}
CAUSES = {"software_error", "database_inconsistency",
          "underlying_resource_unavailable"}
SHORT_TEXTS = ("details", "description")     # at most 255 characters
LONG_TEXTS = ("cause", "effect", "action")   # at most 4096 characters

# (first, last, owner): every block Clearwater uses or reserves.
BLOCKS = [
    (1000, 1499, "Sprout"), (1500, 1999, "Homestead"), (2000, 2499, "Ralf"),
    (2500, 2999, "Bono"), (3000, 3499, "Chronos"), (4000, 4499, "Cassandra"),
    (5000, 5499, "Memento"), (5500, 5999, "Astaire"), (6500, 6999, "etcd"),
    (7000, 7999, "reserved"), (8000, 8499, "cluster manager"),
    (8500, 8999, "config manager"), (9000, 9499, "queue manager"),
    (9500, 12999, "reserved"), (13000, 13499, "Rogers"),
]


class Checker:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok, what):
        if ok:
            self.passed += 1
            print("ok   " + what)
        else:
            self.failed += 1
            print("FAIL " + what)


def text_ok(level, key, limit):
    v = level.get(key)
    return isinstance(v, str) and 0 < len(v) <= limit


def check_alarm(c, where, alarm):
    name = alarm.get("name")
    index = alarm.get("index")
    tag = "%s: alarm %s (%s)" % (where, index, name)
    c.check(isinstance(name, str) and name != "", tag + ": has a name")
    c.check(isinstance(index, int) and not isinstance(index, bool),
            tag + ": index is an integer")
    if isinstance(index, int):
        owner = ["%d-%d, %s" % b for b in BLOCKS if b[0] <= index <= b[1]]
        c.check(not owner and index >= 1000,
                tag + ": index outside every block Clearwater uses or "
                "reserves" + (" (it is in %s)" % owner[0] if owner else ""))
    cause = alarm.get("cause")
    c.check(isinstance(cause, str) and cause.lower() in CAUSES,
            tag + ": cause %r is one the agent knows" % cause)
    levels = alarm.get("levels")
    if not isinstance(levels, list) or not levels:
        c.check(False, tag + ": has levels")
        return
    sev = [str(lv.get("severity", "")).lower() for lv in levels]
    c.check(all(s in SEVERITIES for s in sev),
            tag + ": severities known (%s)" % ", ".join(sev))
    c.check(sev.count("cleared") == 1, tag + ": exactly one CLEARED level")
    c.check(any(s != "cleared" for s in sev), tag + ": a raised level")
    c.check(len(sev) == len(set(sev)), tag + ": no severity twice")
    for lv, s in zip(levels, sev):
        for key in SHORT_TEXTS:
            c.check(text_ok(lv, key, 255),
                    "%s %s: %s present, at most 255 characters (%d)" %
                    (tag, s, key, len(lv.get(key) or "")))
        for key in LONG_TEXTS:
            c.check(text_ok(lv, key, 4096),
                    "%s %s: %s present, at most 4096 characters" %
                    (tag, s, key))


def main(paths):
    c = Checker()
    seen = {}
    for path in paths:
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
        except (OSError, ValueError) as e:
            c.check(False, "%s: readable JSON (%s)" % (path, e))
            continue
        alarms = doc.get("alarms") if isinstance(doc, dict) else None
        c.check(isinstance(alarms, list) and len(alarms) > 0,
                path + ": an alarms list")
        for alarm in alarms or []:
            if not isinstance(alarm, dict):
                c.check(False, path + ": each alarm is an object")
                continue
            check_alarm(c, path, alarm)
            index = alarm.get("index")
            c.check(index not in seen,
                    "%s: index %s defined once" % (path, index) +
                    (" (also in %s)" % seen[index] if index in seen else ""))
            seen.setdefault(index, path)
    print("%d passed, %d failed" % (c.passed, c.failed))
    return 1 if c.failed else 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print(__doc__.strip().splitlines()[-3], file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1:]))
