#!/bin/bash
# QoS benchmark in the two-site namespace lab: round-trip times of small
# Rogers requests through the tunnel, with the WAN idle, with the WAN
# filled by bulk traffic and QoS on, and filled with QoS off, in one run.
#
#   Rogers      a real memcached at vellum-b on 11311, driven from sprout-a
#               by tests/bench/memc-rtt.py (python3-pymemcache): one
#               connection, a small set or get every GAP seconds
#   twin        a second memcached at vellum-b on 11312, a port no class
#               matches, driven the same way at the same time
#   bulk        iperf3 TCP sprout-a -> vellum-b, filling the shaper; the
#               nodes send MTU-sized frames as on a wire (lab.sh), and grgw
#               turns GRO off where gw-a receives them while it shapes; a
#               third period per round turns it on again (what
#               [qos] lan_gro = keep leaves), so the bulk reaches the
#               shaper merged into packets of several segments
#   shaper      [qos] wan_rate = WAN_RATE on the tunnel interface
#
# QoS on is the Rogers flow (classified: its own HTB class, served first);
# QoS off is the twin flow (unclassified: it waits in the default class
# with the bulk, as every flow does once classification is off).  Both run
# at the same moments, through the same shaper, leaf queues (pfifo holding
# 100 ms at the ceiling: this kernel has no fq_codel) and bulk flow, so the
# only difference between them is classification, and the noise of a busy
# machine hits both alike.  ROUNDS rounds alternate idle and loaded periods;
# the percentiles pool every round.  A last period re-measures Rogers with
# the daemons restarted with every class disabled, as a cross-check.
# Prints figures and ratios loaded/idle; never fails on a time.
#
# Environment: WAN_RATE (4mbit), ROUNDS (3), COUNT requests per client and
# period (400), GAP seconds between requests (0.02).
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lab/lib.sh
. "$HERE/../lab/lib.sh"
LAB=$HERE/../lab/lab.sh
WAN_RATE=${WAN_RATE:-4mbit}
ROUNDS=${ROUNDS:-3}
COUNT=${COUNT:-400}
GAP=${GAP:-0.02}
ROGERS_PORT=11311
TWIN_PORT=11312
PY=/usr/bin/python3		# Debian's, with python3-pymemcache
WORK=$(mktemp -d)
# shellcheck source-path=SCRIPTDIR source=plot.sh
. "$HERE/plot.sh"
bench_out_init qos-bench
chmod 0755 "$WORK"
CONF_A=$WORK/site-a.conf
CONF_B=$WORK/site-b.conf

trap lab_teardown EXIT
trap 'exit 130' INT TERM

for tool in iperf3 jq memcached ethtool; do
	command -v "$tool" >/dev/null || { echo "qos-bench: $tool missing (run tests/deps.sh)" >&2; exit 1; }
done
"$PY" -c 'import pymemcache' 2>/dev/null ||
	{ echo "qos-bench: python3-pymemcache missing (run tests/deps.sh)" >&2; exit 1; }

# confs QOS-TAIL: both sites' configurations with that tail appended
confs() {
	local s
	for s in a b; do
		render_conf "$LAB_HERE/site-$s.conf" "$WORK/site-$s.conf" "$WORK" plain
		printf '\n%s\n' "$1" >>"$WORK/site-$s.conf"
	done
}

up() {
	local pa
	grgw_at a up --timeout 60 >"$WORK/up-a" 2>&1 &
	pa=$!
	grgw_at b up --timeout 60 >"$WORK/up-b" 2>&1 || { cat "$WORK/up-b"; exit 1; }
	wait "$pa" || { cat "$WORK/up-a"; exit 1; }
}

down() {
	grgw_at a down --purge >/dev/null 2>&1 || true
	grgw_at b down --purge >/dev/null 2>&1 || true
}

listening() { vellum_b ss -Hltn "sport = :$1" | grep -q LISTEN; }

# clients TAG PORT...: one client per port at once; samples in TAG-PORT.raw
clients() {
	local tag=$1 port pids=()
	shift
	for port in "$@"; do
		sprout_a "$PY" "$HERE/memc-rtt.py" --server "$VELLUM_B4:$port" \
			--count "$COUNT" --gap "$GAP" --raw "$WORK/$tag-$port.raw" \
			>>"$WORK/$tag-$port.sum" 2>&1 </dev/null &
		pids+=($!)
	done
	wait "${pids[@]}" || true
}

# loaded TAG PORT...: clients while iperf3 fills the shaper
loaded() {
	local tag=$1 secs client
	secs=$(awk -v c="$COUNT" -v g="$GAP" 'BEGIN { printf "%d", c * (g + 0.003) + 6 }')
	vellum_b iperf3 -s -1 -B "$VELLUM_B4" >/dev/null 2>&1 </dev/null &
	for _ in $(seq 1 50); do listening 5201 && break; sleep 0.1; done
	sprout_a iperf3 -c "$VELLUM_B4" -t "$secs" -J >"$WORK/iperf.json" 2>/dev/null </dev/null &
	client=$!
	sleep 3		# the bulk flow fills the queue first
	clients "$@"
	wait "$client" || true
	jq -r '.end.sum_received.bits_per_second // 0 | floor' "$WORK/iperf.json" \
		>>"$WORK/$tag.bits" 2>/dev/null || true
}

# stats FILE -> "p50 p99 max n" of the samples in FILE
stats() {
	sort -n "$1" | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "nan nan nan 0"; exit }
		i50 = int(NR * 0.50 + 0.999999); i99 = int(NR * 0.99 + 0.999999)
		printf "%.3f %.3f %.3f %d\n", v[i50], v[i99], v[NR], NR }'
}
failed() { awk '{ for (i = 1; i < NF; i++) if ($i == "failed") s += $(i + 1) } END { print s + 0 }' "$1" 2>/dev/null || echo "?"; }
mean_kbit() { awk '{ s += $1; n++ } END { if (n) printf "%d", s / n / 1000; else print "-" }' "$1" 2>/dev/null || echo -; }

"$LAB" up >/dev/null
new_psk "$WORK/psk"
for port in "$ROGERS_PORT" "$TWIN_PORT"; do
	vellum_b memcached -u root -p "$port" -U 0 -t 2 -l "$VELLUM_B4" >/dev/null 2>&1 </dev/null &
	for _ in $(seq 1 50); do listening "$port" && break; sleep 0.1; done
done

echo "== QoS: small Rogers (memcached) requests through the tunnel"
echo "   shaper $WAN_RATE on the tunnel interface; $ROUNDS rounds of $COUNT requests per client and period, one every ${GAP}s"
confs "$(printf '[qos]\nwan_rate = %s' "$WAN_RATE")"
up
status_json a | jq -r '"   gw-a: " + .qos.status'
for round in $(seq 1 "$ROUNDS"); do
	echo "   round $round/$ROUNDS: idle, then loaded"
	clients idle "$ROGERS_PORT" "$TWIN_PORT"
	loaded bulk "$ROGERS_PORT" "$TWIN_PORT"
	# The same with GRO left on where gw-a receives sprout-a's packets,
	# as [qos] lan_gro = keep leaves it: the bulk reaches the shaper merged.
	gw_a ethtool -K sprout gro on
	loaded bulk-gro "$ROGERS_PORT"
	gw_a ethtool -K sprout gro off
done
status_json a | jq -r '.qos.classes[] | "   gw-a class \(.name): \(.packets) packets classified, \(.sent_bytes) bytes sent, \(.drops) dropped"'
down

echo "   cross-check: daemons restarted with every class disabled"
confs "$(printf '[qos]\nwan_rate = %s\n[class rogers]\nenable = no\n[class oam]\nenable = no\n[class chronos]\nenable = no\n[class cassandra]\nenable = no' "$WAN_RATE")"
up
status_json a | jq -r '"   gw-a: " + .qos.status'
clients idle-nocls "$ROGERS_PORT"
loaded bulk-nocls "$ROGERS_PORT"
down

printf '\n%-44s %9s %9s %9s %7s %7s %12s\n' case p50_ms p99_ms max_ms samples failed bulk_kbit/s
row() {
	local s
	read -r -a s <<<"$(stats "$WORK/$2.raw")"
	printf '%-44s %9s %9s %9s %7s %7s %12s\n' "$1" "${s[0]}" "${s[1]}" "${s[2]}" \
		"${s[3]}" "$(failed "$WORK/$2.sum")" "$3"
	echo "${s[0]} ${s[1]}" >"$WORK/$2.pct"
}
row "idle, Rogers (11311, classified)" "idle-$ROGERS_PORT" -
row "idle, twin (11312, unclassified)" "idle-$TWIN_PORT" -
row "bulk, QoS on: Rogers in its class" "bulk-$ROGERS_PORT" "$(mean_kbit "$WORK/bulk.bits")"
row "bulk, QoS off: twin with the bulk" "bulk-$TWIN_PORT" "$(mean_kbit "$WORK/bulk.bits")"
row "bulk, QoS on, GRO left on: Rogers" "bulk-gro-$ROGERS_PORT" "$(mean_kbit "$WORK/bulk-gro.bits")"
row "cross-check, idle: no class enabled" "idle-nocls-$ROGERS_PORT" -
row "cross-check, bulk: no class enabled" "bulk-nocls-$ROGERS_PORT" "$(mean_kbit "$WORK/bulk-nocls.bits")"
echo
read -r i50 i99 <"$WORK/idle-$ROGERS_PORT.pct"
read -r t50 t99 <"$WORK/idle-$TWIN_PORT.pct"
read -r n50 n99 <"$WORK/bulk-$ROGERS_PORT.pct"
read -r f50 f99 <"$WORK/bulk-$TWIN_PORT.pct"
read -r g50 g99 <"$WORK/bulk-gro-$ROGERS_PORT.pct"
read -r c50 c99 <"$WORK/idle-nocls-$ROGERS_PORT.pct"
read -r x50 x99 <"$WORK/bulk-nocls-$ROGERS_PORT.pct"
awk -v i50="$i50" -v i99="$i99" -v t50="$t50" -v t99="$t99" \
    -v n50="$n50" -v n99="$n99" -v f50="$f50" -v f99="$f99" \
    -v g50="$g50" -v g99="$g99" \
    -v c50="$c50" -v c99="$c99" -v x50="$x50" -v x99="$x99" 'BEGIN {
	printf "ratio loaded/idle, QoS on  (Rogers): p50 %.2f  p99 %.2f\n", n50 / i50, n99 / i99
	printf "ratio loaded/idle, QoS off (twin):   p50 %.2f  p99 %.2f\n", f50 / t50, f99 / t99
	printf "ratio loaded/idle, QoS on, GRO left on:  p50 %.2f  p99 %.2f\n", g50 / i50, g99 / i99
	printf "ratio loaded/idle, no class enabled: p50 %.2f  p99 %.2f\n", x50 / c50, x99 / c99
	printf "aim (QoS on: p99 within 1.5 x idle): %s\n", n99 / i99 <= 1.5 ? "met" : "not met"
}'

for f in "idle-$ROGERS_PORT" "bulk-$ROGERS_PORT" "bulk-$TWIN_PORT" "bulk-gro-$ROGERS_PORT"; do
	[ -f "$WORK/$f.raw" ] && awk '{ print $1 }' "$WORK/$f.raw" >"$BENCH_OUT/qos-rtt-$f.dat"
done
plot_cdf "$BENCH_OUT/qos-memcached-cdf.png" "memcached (Rogers) round trips through the tunnel, shaper $WAN_RATE" \
	"round trip, ms" \
	"idle" "$BENCH_OUT/qos-rtt-idle-$ROGERS_PORT.dat" \
	"bulk, QoS on (Rogers class)" "$BENCH_OUT/qos-rtt-bulk-$ROGERS_PORT.dat" \
	"bulk, QoS off (unclassified twin)" "$BENCH_OUT/qos-rtt-bulk-$TWIN_PORT.dat" \
	"bulk, QoS on, GRO left on" "$BENCH_OUT/qos-rtt-bulk-gro-$ROGERS_PORT.dat"
report_add qos-bench "memcached latency with and without QoS (qos-bench.sh)" qos-memcached-cdf.png
