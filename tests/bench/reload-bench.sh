#!/bin/bash
# Reload benchmark: how long `grgw reload` takes over RUNS reloads of an
# unchanged file and of a file that changes a class's DSCP each time,
# p50 and p99 in ms: in the daemon (from the request to everything in
# place, the file read and checked included, as `grgw reload` reports
# it), and the CLI's wall time, next to the wall time of `grgw status`
# in the same run as the baseline (the cost of starting the CLI in the
# gateway's namespace and one round trip on the control socket).
# Nothing fails on a time.  LAB_ID=N runs it in lab N.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/lab/lib.sh
. "$HERE/../lab/lib.sh"
LAB=$HERE/../lab/lab.sh
RUNS=${RUNS:-100}
WORK=$(mktemp -d)
CONF_A=$WORK/site-a.conf
CONF_B=$WORK/site-b.conf

trap lab_teardown EXIT

pct() { sort -n | awk -v p="$1" '{a[NR]=$1} END {i=int(NR*p/100+0.999); if (i<1) i=1; print a[i]}'; }

"$LAB" up >/dev/null
new_psk "$WORK/psk"
render_conf "$LAB_HERE/site-a.conf" "$CONF_A" "$WORK" plain
render_conf "$LAB_HERE/site-b.conf" "$CONF_B" "$WORK" plain
grgw_at a up >/dev/null &
grgw_at b up >/dev/null
wait

# run_status: RUNS times `grgw status`, the baseline
run_status() {
	local i t0 t1 f=$WORK/times-status
	: >"$f"
	for i in $(seq 1 "$RUNS"); do
		t0=$(now_ms)
		on gw-a "$GRGW" status -c "$CONF_A" >/dev/null
		t1=$(now_ms)
		echo $((t1 - t0)) >>"$f"
	done
	BASE50=$(pct 50 <"$f")
	BASE99=$(pct 99 <"$f")
	printf 'grgw status (baseline) %d runs: wall p50 %s ms, p99 %s ms\n' \
		"$RUNS" "$BASE50" "$BASE99"
}

# ratio A B: A/B with two decimals
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

# run_reloads NAME: RUNS reloads; changed=1 alternates the oam DSCP
run_reloads() {
	local name=$1 changed=$2 i t0 t1 f=$WORK/times-$1 d=$WORK/daemon-$1 conf w50 w99
	: >"$f"
	: >"$d"
	for i in $(seq 1 "$RUNS"); do
		conf=$CONF_A
		if [ "$changed" = 1 ]; then
			conf=$WORK/changed.conf
			{ cat "$CONF_A"; printf '[class oam]\ndscp = %s\n' \
				"$([ $((i % 2)) = 0 ] && echo AF41 || echo AF31)"; } >"$conf"
		fi
		t0=$(now_ms)
		on gw-a "$GRGW" reload -c "$conf" >"$WORK/out"
		t1=$(now_ms)
		echo $((t1 - t0)) >>"$f"
		grep -oE 'applied in [0-9.]+ ms' "$WORK/out" | awk '{ print $3 }' >>"$d"
	done
	w50=$(pct 50 <"$f")
	w99=$(pct 99 <"$f")
	printf 'reload %-9s %d runs: in the daemon p50 %s ms, p99 %s ms; wall p50 %s ms (x%s status), p99 %s ms (x%s status)\n' \
		"$name" "$RUNS" "$(pct 50 <"$d")" "$(pct 99 <"$d")" \
		"$w50" "$(ratio "$w50" "$BASE50")" "$w99" "$(ratio "$w99" "$BASE99")"
}

run_status
run_reloads unchanged 0
run_reloads changed 1
