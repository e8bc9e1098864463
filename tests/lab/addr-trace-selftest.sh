#!/bin/bash
#
# Self-test of addr-trace.py, without the lab: two namespaces of its own
# (grgwtrace-1, grgwtrace-2), each with a veth pair of its own (both ends
# inside, so one's link going down leaves the other's carrier alone), and
# 198.18.9.1 moved between them by hand:
#
#   add     added in 1                          1 holds
#   move    deleted in 1, then added in 2       no overlap
#   both    added in 1 too, for ~200 ms         overlap ~200 ms
#   down    2's link down (address kept)        2 releases
#   delete  namespace 1 deleted                 1 releases (gone)
#   again   namespace 1 made again, address     1 holds after re-attach
#
# Usage: addr-trace-selftest.sh     (root; prints ok/FAIL lines and
#                                    "N passed, N failed"; exits 1 on a
#                                    failure, 77 when it cannot run)
# The namespaces are removed on exit, whatever happened.
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PYTHON=${PYTHON:-$(command -v python3 || echo /usr/bin/python3)}
NS1=grgwtrace-1
NS2=grgwtrace-2
ADDR=198.18.9.1
PASSED=0
FAILED=0
TRACER=

if [ "$(id -u)" -ne 0 ]; then
	echo "addr-trace-selftest: needs root (skipped)"
	exit 77
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/grgwtrace.XXXXXX") || exit 1
OUT=$WORK/trace
MARKS=$WORK/marks

cleanup() {
	if [ -n "$TRACER" ] && kill -0 "$TRACER" 2>/dev/null; then
		kill "$TRACER" 2>/dev/null
		wait "$TRACER" 2>/dev/null
	fi
	ip netns del "$NS1" 2>/dev/null
	ip netns del "$NS2" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ok() { echo "ok - $1"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL - $1"; FAILED=$((FAILED + 1)); }
# check DESCRIPTION COMMAND...: ok when the command succeeds
check() {
	local what=$1
	shift
	if "$@"; then ok "$what"; else fail "$what"; fi
}

now() { date +%s.%N; }
mark() { printf '%s %s\n' "$(now)" "$1" >>"$MARKS"; }

# ns_make NS: a namespace with lo and a veth pair t0-t1, all up
ns_make() {
	ip netns add "$1" &&
	ip -n "$1" link set lo up &&
	ip -n "$1" link add t0 type veth peer name t1 &&
	ip -n "$1" link set t1 up &&
	ip -n "$1" link set t0 up
}

# Time of the first record "TYPE T ARGS..." at or after T0 (all of ARGS
# matching fields 3...), or nothing
first_after() {
	local t0=$1 type=$2
	shift 2
	awk -v t0="$t0" -v type="$type" -v want="$*" '
		BEGIN { n = split(want, w, " ") }
		$1 == type && $2 + 0 >= t0 + 0 {
			for (i = 1; i <= n; i++) if ($(i + 2) != w[i]) next
			print $2; exit
		}' "$OUT"
}
# Time of mark NAME
mark_time() { awk -v m="$1" '$1 == "mark" && $3 == m { print $2; exit }' "$OUT"; }
# Field NAME's value on the phase line of PHASE ("" for the summary)
figure() {
	local phase=$1 name=$2
	awk -v p="$phase" -v a="$ADDR" -v name="$name" '
		(p == "" && $1 == "summary" && $2 == a) ||
		(p != "" && $1 == "phase" && $2 == p && $3 == a) {
			for (i = 1; i < NF; i++) if ($i == name) { print $(i + 1); exit }
		}' "$OUT"
}
# le A B: A <= B, as numbers (times, milliseconds)
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "" && b != "" && a + 0 <= b + 0) }'; }
is() { [ "$1" = "$2" ]; }

for ns in "$NS1" "$NS2"; do
	ip netns del "$ns" 2>/dev/null
	if ! ns_make "$ns"; then
		echo "addr-trace-selftest: cannot make namespace $ns (skipped)"
		exit 77
	fi
done

"$PYTHON" "$HERE/addr-trace.py" --out "$OUT" --addr "$ADDR" --marks "$MARKS" \
	--ready "$WORK/ready" "$NS1" "$NS2" 2>"$WORK/trace.err" &
TRACER=$!
for _ in $(seq 100); do
	[ -e "$WORK/ready" ] && break
	kill -0 "$TRACER" 2>/dev/null || break
	sleep 0.05
done
check "tracer ready" test -e "$WORK/ready"
check "tracer in neither namespace" test -z "$(ip netns pids "$NS1")$(ip netns pids "$NS2")"

mark add
T_BEFORE=$(now)
ip -n "$NS1" addr add "$ADDR/32" dev t0
T_AFTER=$(now)
sleep 0.2

mark move
ip -n "$NS1" addr del "$ADDR/32" dev t0
ip -n "$NS2" addr add "$ADDR/24" dev t0
sleep 0.2

mark both
ip -n "$NS1" addr add "$ADDR/32" dev t0
sleep 0.2

mark down
ip -n "$NS2" link set t0 down
sleep 0.2
check "address still on $NS2's downed link" \
	test -n "$(ip -n "$NS2" -o addr show dev t0 to "$ADDR")"

mark delete
ip netns del "$NS1"
sleep 0.2

mark again
ns_make "$NS1"
ip -n "$NS1" addr add "$ADDR/32" dev t0
sleep 0.2
mark end

kill -TERM "$TRACER"
wait "$TRACER"
RC=$?
TRACER=
check "tracer exits 0 on SIGTERM" is "$RC" 0
check "output written" test -s "$OUT"
if [ -s "$WORK/trace.err" ]; then
	echo "# tracer's stderr:"
	sed 's/^/#   /' "$WORK/trace.err"
fi
[ -s "$OUT" ] || { echo "$PASSED passed, $((FAILED + 1)) failed"; exit 1; }
check "start and stop records" test -n "$(first_after 0 start)" -a -n "$(first_after 0 stop)"

# add
T_ADD=$(mark_time add)
T_HELD1=$(first_after "$T_ADD" event "$NS1" "$ADDR" held)
check "add: $NS1 holds" test -n "$T_HELD1"
check "add: its event between the command's start and end (+50 ms)" \
	le "$T_BEFORE" "$T_HELD1"
check "add: ... not later than 50 ms after the command returned" \
	le "$T_HELD1" "$(awk -v t="$T_AFTER" 'BEGIN { printf "%.3f", t + 0.05 }')"
check "add: one holder" is "$(figure add max_holders)" 1
awk -v b="$T_BEFORE" -v a="$T_AFTER" -v e="$T_HELD1" 'BEGIN {
	printf "# latency: ip addr add started %.1f ms before its event, returned %.1f ms after it\n",
		(e - b) * 1000, (a - e) * 1000 }'

# move
T_MOVE=$(mark_time move)
T_REL1=$(first_after "$T_MOVE" event "$NS1" "$ADDR" released)
T_HELD2=$(first_after "$T_MOVE" event "$NS2" "$ADDR" held)
check "move: $NS1 releases" test -n "$T_REL1"
check "move: $NS2 holds" test -n "$T_HELD2"
check "move: release before hold" le "$T_REL1" "$T_HELD2"
check "move: never two holders" is "$(figure move max_holders)" 1
check "move: no overlap" is "$(figure move overlap_ms)" 0
check "move: two changes" is "$(figure move changes)" 2

# both
T_BOTH=$(mark_time both)
check "both: $NS1 holds too" test -n "$(first_after "$T_BOTH" event "$NS1" "$ADDR" held)"
check "both: two holders" is "$(figure both max_holders)" 2
OVER=$(figure both overlap_ms)
check "both: overlap ~200 ms ($OVER)" le 150 "$OVER"
check "both: ... not much more" le "$OVER" 600
check "overlap record names both" \
	test "$(awk -v a="$ADDR" '$1 == "overlap" && $2 == a { print $5 }' "$OUT")" = "$NS1,$NS2"

# down
T_DOWN=$(mark_time down)
check "down: $NS2 releases" test -n "$(first_after "$T_DOWN" event "$NS2" "$ADDR" released)"
check "down: $NS1 still holds (no release)" \
	test -z "$(awk -v t="$T_DOWN" -v n="$NS1" -v m="$(mark_time delete)" '
		$1 == "event" && $3 == n && $2 >= t && $2 < m' "$OUT")"
check "down: one change" is "$(figure down changes)" 1

# delete
T_DEL=$(mark_time delete)
T_REL1B=$(first_after "$T_DEL" event "$NS1" "$ADDR" released)
T_GONE=$(first_after "$T_DEL" netns "$NS1" gone)
check "delete: $NS1 releases" test -n "$T_REL1B"
check "delete: $NS1 gone" test -n "$T_GONE"
check "delete: released when gone" is "$T_REL1B" "$T_GONE"

# again
T_AGAIN=$(mark_time again)
T_ATT=$(first_after "$T_AGAIN" netns "$NS1" attached)
T_HELD1B=$(first_after "$T_AGAIN" event "$NS1" "$ADDR" held)
check "again: $NS1 re-attached" test -n "$T_ATT"
check "again: $NS1 holds" test -n "$T_HELD1B"
check "again: holds after the re-attach" le "$T_ATT" "$T_HELD1B"
check "again: one holder" is "$(figure again max_holders)" 1

# summary
check "summary: 7 changes" is "$(figure "" changes)" 7
check "summary: two holders at most" is "$(figure "" max_holders)" 2
check "summary: one overlap" \
	is "$(awk -v a="$ADDR" '$1 == "overlap" && $2 == a' "$OUT" | wc -l)" 1
# (the overlap ends in the down phase: after its mark, with the link)
check "summary: overlap is the both and down phases'" \
	awk -v s="$(figure "" overlap_ms)" -v b="$OVER" -v d="$(figure down overlap_ms)" \
	'BEGIN { exit !(s != "" && s >= b + d - 2 && s <= b + d) }'
check "summary: longest time without holder ~200 ms (delete to again)" \
	le 150 "$(figure "" longest_none_ms)"
check "end: one holder, no change" is "$(figure end changes) $(figure end max_holders)" "0 1"

if [ "$FAILED" -gt 0 ]; then
	echo "# the trace:"
	sed 's/^/#   /' "$OUT"
fi
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
