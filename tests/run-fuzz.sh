#!/bin/sh
# Short fuzzing run of every harness over its seed corpus (a smoke test;
# longer campaigns: build/fuzz/fuzz_NAME -max_total_time=3600 CORPUS).
# usage: run-fuzz.sh BUILD_DIR SECONDS
set -u
b=$1
secs=$2
here=$(dirname "$0")
rc=0
for f in "$b"/fuzz/fuzz_*; do
	[ -x "$f" ] || continue
	name=${f##*/fuzz_}
	corpus="$here/fuzz/corpus/$name"
	work=$(mktemp -d)
	[ -d "$corpus" ] && cp -r "$corpus"/. "$work"/
	echo "== fuzz $name (${secs}s)"
	if ! "$f" -max_total_time="$secs" -print_final_stats=0 \
	    -artifact_prefix="$work/" "$work" >"$work/log" 2>&1; then
		echo "FAIL: fuzz $name"; tail -30 "$work/log"
		rc=1
	else
		grep -E "^#[0-9]+ +DONE" "$work/log" | tail -1
	fi
	rm -rf "$work"
done
exit $rc
