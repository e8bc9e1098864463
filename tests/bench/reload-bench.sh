#!/bin/bash
# Reload benchmark: how long `grgw reload` takes (the CLI's wall time,
# which includes parsing and checking the file twice) over RUNS reloads
# of an unchanged file and of a file that changes a class's DSCP each
# time.  Prints p50 and p99 in ms.  Nothing fails on a time.  LAB_ID=N
# runs it in lab N.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/lab/lib.sh
. "$HERE/../lab/lib.sh"
LAB=$HERE/../lab/lab.sh
RUNS=${RUNS:-100}
WORK=$(mktemp -d)
CONF_A=$WORK/site-a.conf
CONF_B=$WORK/site-b.conf

cleanup() {
	set +e
	grgw_at a down --purge >/dev/null 2>&1
	grgw_at b down --purge >/dev/null 2>&1
	"$LAB" down >/dev/null 2>&1
	rm -rf "$WORK"
}
trap cleanup EXIT

pct() { sort -n | awk -v p="$1" '{a[NR]=$1} END {i=int(NR*p/100+0.999); if (i<1) i=1; print a[i]}'; }

"$LAB" up >/dev/null
new_psk "$WORK/psk"
render_conf "$LAB_HERE/site-a.conf" "$CONF_A" "$WORK" plain
render_conf "$LAB_HERE/site-b.conf" "$CONF_B" "$WORK" plain
grgw_at a up >/dev/null &
grgw_at b up >/dev/null
wait

# run_reloads NAME: RUNS reloads; changed=1 alternates the oam DSCP
run_reloads() {
	local name=$1 changed=$2 i t0 t1 f=$WORK/times-$1 conf
	: >"$f"
	for i in $(seq 1 "$RUNS"); do
		conf=$CONF_A
		if [ "$changed" = 1 ]; then
			conf=$WORK/changed.conf
			{ cat "$CONF_A"; printf '[class oam]\ndscp = %s\n' \
				"$([ $((i % 2)) = 0 ] && echo AF41 || echo AF31)"; } >"$conf"
		fi
		t0=$(now_ms)
		on gw-a "$GRGW" reload -c "$conf" >/dev/null
		t1=$(now_ms)
		echo $((t1 - t0)) >>"$f"
	done
	printf 'reload %-9s %d runs: p50 %s ms, p99 %s ms\n' "$name" "$RUNS" \
		"$(pct 50 <"$f")" "$(pct 99 <"$f")"
}

run_reloads unchanged 0
run_reloads changed 1
