#!/bin/bash
# grgw benchmarks in the two-site namespace lab.  Prints figures and ratios
# against baselines measured in the same run; never fails on a time.
#
#   start-up   time from `grgw up` on both gateways to the first packet
#              crossing end to end (vellum-a -> vellum-b), and to `grgw up`
#              returning; best and median of RUNS runs
#   throughput TCP through the tunnel (vellum-a -> vellum-b) against the bare
#              WAN path (gw-a -> gw-b WAN addresses), iperf3, SECS seconds
#   memory     RSS of the grgw daemon, its network process and its charon,
#              tunnel up and idle
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lab/lib.sh
. "$HERE/../lab/lib.sh"
LAB=$HERE/../lab/lab.sh
RUNS=${RUNS:-5}
SECS=${SECS:-5}
WORK=$(mktemp -d)
# shellcheck source-path=SCRIPTDIR source=plot.sh
. "$HERE/plot.sh"
bench_out_init bench
CONF_A=$WORK/site-a.conf
CONF_B=$WORK/site-b.conf

trap lab_teardown EXIT

for tool in iperf3 jq ping; do
	command -v "$tool" >/dev/null || { echo "bench: $tool missing (run tests/deps.sh)" >&2; exit 1; }
done
"$LAB" up >/dev/null
new_psk "$WORK/psk"
render_conf "$LAB_HERE/site-a.conf" "$CONF_A" "$WORK" plain
render_conf "$LAB_HERE/site-b.conf" "$CONF_B" "$WORK" plain

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "== start-up: grgw up on both gateways -> first packet across ($RUNS runs)"
: >"$WORK/first"; : >"$WORK/ret"
for run in $(seq 1 "$RUNS"); do
	t0=$(now_ms)
	grgw_at a up --timeout 60 >"$WORK/up-a" 2>&1 &
	pa=$!
	grgw_at b up --timeout 60 >"$WORK/up-b" 2>&1 &
	pb=$!
	first=""
	for _ in $(seq 1 3000); do
		if vellum_a ping -n -c 1 -W 0.05 "$VELLUM_B4" >/dev/null 2>&1; then
			first=$(( $(now_ms) - t0 )); break
		fi
	done
	wait "$pa" "$pb"
	ret=$(( $(now_ms) - t0 ))
	echo "run $run: first packet after ${first:-none} ms, both \`grgw up\` returned after $ret ms"
	[ -n "$first" ] && echo "$first" >>"$WORK/first"
	echo "$ret" >>"$WORK/ret"
	if [ "$run" -lt "$RUNS" ]; then
		grgw_at a down --purge >/dev/null; grgw_at b down --purge >/dev/null
	fi
done
echo "first packet: best $(sort -n "$WORK/first" | head -1) ms, median $(median <"$WORK/first") ms"
echo "grgw up returned: best $(sort -n "$WORK/ret" | head -1) ms, median $(median <"$WORK/ret") ms"

echo
echo "== throughput: TCP, ${SECS}s each, same run"
iperf() { # iperf NODE_SERVER BIND_ADDR NODE_CLIENT -> Mbit/s
	on "$1" iperf3 -s -1 -B "$2" >/dev/null 2>&1 &
	local srv=$!
	for _ in $(seq 1 50); do on "$1" ss -Hltn 'sport = :5201' | grep -q LISTEN && break; sleep 0.1; done
	on "$3" iperf3 -c "$2" -t "$SECS" -J 2>/dev/null |
		jq '.end.sum_received.bits_per_second / 1e6 | floor'
	wait "$srv" 2>/dev/null || true
}
bare=$(iperf gw-b "$GW_B_WAN" gw-a)
tunnel=$(iperf vellum-b "$VELLUM_B4" vellum-a)
echo "bare WAN path (gw-a -> gw-b):       $bare Mbit/s"
echo "through the tunnel (vellum-a -> b): $tunnel Mbit/s ($(status_json a | jq -r .dataplane) data plane)"
awk -v t="$tunnel" -v b="$bare" 'BEGIN { if (b > 0) printf "ratio tunnel/bare: %.4f\n", t / b }'
printf '"bare WAN" %s\n"tunnel (%s)" %s\n' "${bare:-0}" "$(status_json a | jq -r .dataplane)" "${tunnel:-0}" \
	>"$BENCH_OUT/throughput.dat"
plot_bars "$BENCH_OUT/throughput.png" "TCP throughput per data plane, ${SECS} s each" "Mbit/s" \
	"$BENCH_OUT/throughput.dat"
report_add bench "Start-up and throughput (bench.sh)" throughput.png

echo
echo "== memory (tunnel up, after the transfers)"
for s in a b; do
	st=$(status_json "$s")
	dp=$(echo "$st" | jq .daemon.pid); cp=$(echo "$st" | jq .charon.pid)
	np=$(echo "$st" | jq .netproc.pid)
	echo "site $s: grgw daemon RSS $(awk '/VmRSS/ {print $2, $3}' "/proc/$dp/status"), network process RSS $(awk '/VmRSS/ {print $2, $3}' "/proc/$np/status"), charon RSS $(awk '/VmRSS/ {print $2, $3}' "/proc/$cp/status")"
done
