#!/bin/bash
# QoS benchmark in the two-site namespace lab: round-trip times of small
# Rogers requests (a real memcached at vellum-b on 11311, driven from
# sprout-a by tests/bench/memc-rtt.py through the tunnel), measured in one
# run:
#
#   idle         the WAN idle
#   qos on       a bulk TCP flow (iperf3 sprout-a -> vellum-b) fills the
#                shaped WAN; classification on (Rogers in its class)
#   qos off      the same bulk flow, the same shaper; no traffic class
#                enabled, so Rogers waits in the default class with the bulk
#
# Fair comparison: both loaded runs shape the tunnel interface at the same
# WAN_RATE with the same htb tree root, the same leaf queues (pfifo sized
# for 100 ms at the ceiling; this kernel has no fq_codel) and the same bulk
# flow; the only difference is whether packets are classified.  Prints
# p50 / p99 per case and the ratios loaded/idle.  Never fails on a time.
#
# Environment: WAN_RATE (default 4mbit), COUNT requests per case (500),
# GAP between requests in seconds (0.02).
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/lab/lib.sh
. "$HERE/../lab/lib.sh"
LAB=$HERE/../lab/lab.sh
WAN_RATE=${WAN_RATE:-4mbit}
COUNT=${COUNT:-500}
GAP=${GAP:-0.02}
MEMC_PORT=11311
PY=/usr/bin/python3		# Debian's, with python3-pymemcache
WORK=$(mktemp -d)
chmod 0755 "$WORK"
CONF_A=$WORK/site-a.conf
CONF_B=$WORK/site-b.conf

cleanup() {
	set +e
	timeout 30 grgw_at a down --purge >/dev/null 2>&1
	timeout 30 grgw_at b down --purge >/dev/null 2>&1
	"$LAB" down >/dev/null 2>&1
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for tool in iperf3 jq memcached; do
	command -v "$tool" >/dev/null || { echo "qos-bench: $tool missing (run tests/deps.sh)" >&2; exit 1; }
done
"$PY" -c 'import pymemcache' 2>/dev/null ||
	{ echo "qos-bench: python3-pymemcache missing (run tests/deps.sh)" >&2; exit 1; }

# confs QOS-SECTION: both sites' configurations with that [qos] tail
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

rtt() { # -> "requests N ok N failed N p50_ms X p99_ms Y max_ms Z"
	sprout_a "$PY" "$HERE/memc-rtt.py" --server "$VELLUM_B4:$MEMC_PORT" \
		--count "$COUNT" --gap "$GAP"
}
field() { awk -v k="$2" '{ for (i = 1; i < NF; i++) if ($i == k) print $(i + 1) }' <<<"$1"; }

# loaded: memc-rtt while iperf3 fills the WAN; prints the rtt line, and the
# bulk rate on fd 3
loaded() {
	local secs client line bits
	secs=$(awk -v c="$COUNT" -v g="$GAP" 'BEGIN { printf "%d", c * (g + 0.002) + 8 }')
	vellum_b iperf3 -s -1 -B "$VELLUM_B4" >/dev/null 2>&1 </dev/null &
	for _ in $(seq 1 50); do vellum_b ss -Hltn 'sport = :5201' | grep -q LISTEN && break; sleep 0.1; done
	sprout_a iperf3 -c "$VELLUM_B4" -t "$secs" -J >"$WORK/iperf.json" 2>/dev/null </dev/null &
	client=$!
	sleep 3		# let the bulk flow fill the queue
	line=$(rtt)
	wait "$client" || true
	wait 2>/dev/null || true
	bits=$(jq -r '.end.sum_received.bits_per_second // 0 | floor' "$WORK/iperf.json" 2>/dev/null)
	echo "$line"
	echo "${bits:-0}" >&3
}

"$LAB" up >/dev/null
new_psk "$WORK/psk"
vellum_b memcached -u root -p "$MEMC_PORT" -U 0 -t 2 -l "$VELLUM_B4" >/dev/null 2>&1 </dev/null &
for _ in $(seq 1 50); do vellum_b ss -Hltn "sport = :$MEMC_PORT" | grep -q LISTEN && break; sleep 0.1; done

echo "== QoS: Rogers (memcached) request round trips through the tunnel"
echo "   $COUNT requests per case, one every ${GAP}s, shaper at $WAN_RATE on the tunnel interface"

confs "$(printf '[qos]\nwan_rate = %s' "$WAN_RATE")"
up
status_json a | jq -r '"   gw-a: " + .qos.status'
idle=$(rtt)
on_line=$(loaded 3>"$WORK/bits-on")
down

# Same shaper, no class: everything shares the default class.
confs "$(printf '[qos]\nwan_rate = %s\n[class rogers]\nenable = no\n[class oam]\nenable = no\n[class chronos]\nenable = no\n[class cassandra]\nenable = no' "$WAN_RATE")"
up
status_json a | jq -r '"   gw-a (QoS off): " + .qos.status'
idle_off=$(rtt)
off_line=$(loaded 3>"$WORK/bits-off")
down

printf '\n%-26s %10s %10s %10s %8s %14s\n' case p50_ms p99_ms max_ms failed bulk_kbit/s
row() {
	printf '%-26s %10s %10s %10s %8s %14s\n' "$1" "$(field "$2" p50_ms)" \
		"$(field "$2" p99_ms)" "$(field "$2" max_ms)" "$(field "$2" failed)" "$3"
}
row "idle" "$idle" -
row "idle (classes off)" "$idle_off" -
row "bulk, QoS on" "$on_line" "$(( $(cat "$WORK/bits-on") / 1000 ))"
row "bulk, QoS off" "$off_line" "$(( $(cat "$WORK/bits-off") / 1000 ))"
echo
awk -v i50="$(field "$idle" p50_ms)" -v i99="$(field "$idle" p99_ms)" \
    -v n50="$(field "$on_line" p50_ms)" -v n99="$(field "$on_line" p99_ms)" \
    -v f50="$(field "$off_line" p50_ms)" -v f99="$(field "$off_line" p99_ms)" 'BEGIN {
	printf "ratio loaded/idle, QoS on:  p50 %.2f  p99 %.2f\n", n50 / i50, n99 / i99
	printf "ratio loaded/idle, QoS off: p50 %.2f  p99 %.2f\n", f50 / i50, f99 / i99
	printf "aim (QoS on, p99 within 1.5 x idle): %s\n", n99 / i99 <= 1.5 ? "met" : "not met"
}'
