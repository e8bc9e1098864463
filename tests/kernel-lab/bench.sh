#!/bin/bash
# Benchmarks of the kernel data plane, inside the kernel-lab VM (run it
# with `tests/kernel-lab/run.sh bench` or `make bench-kernel`).  Everything
# is measured in the same VM in the same run, so the ratios hold even
# though an emulated CPU makes every absolute figure small:
#
#   throughput  iperf3 TCP, SECS seconds each: the bare WAN path (gw-a ->
#               gw-b WAN addresses), through the tunnel (vellum-a -> vellum-b)
#               with the kernel data plane, and with the libipsec one
#   start-up    time from `grgw up` on both gateways to the first packet
#               across (vellum-a -> vellum-b), and to `grgw up` returning;
#               best and median of RUNS runs, for each data plane
#   QoS         tests/bench/qos-bench.sh in kernel mode: Rogers request
#               round trips idle and with a full shaper, QoS on and off
#   interop-libreswan
#               tests/bench/interop-bench.sh libreswan: link-down detection
#               with `probes = icmp` against libreswan's pluto at gw-b,
#               beside grgw at both ends, CUTS WAN cuts each (default 10),
#               kernel data plane; skipped without libreswan (run.sh
#               fetches it)
#   pair        tests/bench/pair-bench.sh on the kernel data plane: the
#               gateway pair's takeovers over PAIR_BENCH_KILLS hard kills
#               of the active gateway (default 6), the packets lost by
#               PAIR_BENCH_HANDOVERS handovers (4), the partitions
#               PAIR_BENCH_PARTITIONS times each (1), never two holders;
#               with the pair's timers guest.sh sets for an emulated CPU.
#               The 200 kills of the host's lab take hours here: with
#               `run.sh exec env PAIR_BENCH_KILLS=200
#               PAIR_BENCH_BASELINE_SECS=600 ... bench.sh pair` (and a
#               KERNEL_LAB_TIMEOUT to match) the baseline is 10 minutes
#               of the same streams instead of all of them again
#
# Usage: bench.sh [PART...]   the parts named above (default: all but pair),
#                             in that order: throughput startup qos
#                             interop-libreswan pair
#
# Prints figures and ratios; fails only when something could not be
# measured at all, never on a time.
set -eu

HERE=$(dirname "$(readlink -f "$0")")
LABDIR=$(cd "$HERE/../lab" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lab/lib.sh
. "$LABDIR/lib.sh"
LAB=$LABDIR/lab.sh
RUNS=${RUNS:-3}
SECS=${SECS:-10}
# Fewer cuts than on the host: each setup comes up twice, under emulation.
CUTS=${CUTS:-10}
# Fewer moves than on the host: under emulation each kill takes a gateway
# through a boot and `grgw up`.
PAIR_BENCH_KILLS=${PAIR_BENCH_KILLS:-6}
PAIR_BENCH_HANDOVERS=${PAIR_BENCH_HANDOVERS:-4}
PAIR_BENCH_PARTITIONS=${PAIR_BENCH_PARTITIONS:-1}
ALL_PARTS=(throughput startup qos interop-libreswan pair)
# pair only when named: with the others it would outlast the VM's time.
DEFAULT_PARTS=(throughput startup qos interop-libreswan)
PARTS=("$@")
[ $# -gt 0 ] || PARTS=("${DEFAULT_PARTS[@]}")
for part in "${PARTS[@]}"; do
	[[ " ${ALL_PARTS[*]} " == *" $part "* ]] ||
		{ echo "bench.sh: unknown part $part (${ALL_PARTS[*]})" >&2; exit 2; }
done
# wants PART: was it asked for?
wants() { [[ " ${PARTS[*]} " == *" $1 "* ]]; }
WORK=$(mktemp -d /tmp/grgw-kernel-bench.XXXXXX)
CONF_A=$WORK/site-a.conf
CONF_B=$WORK/site-b.conf

cleanup() {
	set +e
	timeout 60 ip netns exec "${NS_PREFIX}gw-a" "$GRGW" down -c "$CONF_A" --purge >/dev/null 2>&1
	timeout 60 ip netns exec "${NS_PREFIX}gw-b" "$GRGW" down -c "$CONF_B" --purge >/dev/null 2>&1
	"$LAB" down >/dev/null 2>&1
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for tool in iperf3 jq ping; do
	command -v "$tool" >/dev/null || { echo "bench: $tool missing (run tests/deps.sh)" >&2; exit 1; }
done

median() { sort -n | awk '{ a[NR] = $1 } END { print (NR ? a[int((NR + 1) / 2)] : "none") }'; }
best() { sort -n | head -n 1; }

# configure DATAPLANE: render both sites' configs for it
configure() {
	LAB_DATAPLANE=$1
	render_conf "$LAB_HERE/site-a.conf" "$CONF_A" "$WORK" plain
	render_conf "$LAB_HERE/site-b.conf" "$CONF_B" "$WORK" plain
}

down_both() {
	grgw_at a down --purge >/dev/null 2>&1 || true
	grgw_at b down --purge >/dev/null 2>&1 || true
}

# startup DATAPLANE: RUNS times grgw up on both -> first packet; appends
# "DATAPLANE first-best first-median return-best return-median" to $WORK/startup
startup() {
	local dp=$1 run t0 pa pb first ret
	: >"$WORK/first-$dp"
	: >"$WORK/ret-$dp"
	for run in $(seq 1 "$RUNS"); do
		down_both
		t0=$(now_ms)
		grgw_at a up --timeout 120 >"$WORK/up-a" 2>&1 &
		pa=$!
		grgw_at b up --timeout 120 >"$WORK/up-b" 2>&1 &
		pb=$!
		first=""
		while [ $(( $(now_ms) - t0 )) -lt 120000 ]; do
			if vellum_a ping -n -c 1 -W 0.1 "$VELLUM_B4" >/dev/null 2>&1; then
				first=$(( $(now_ms) - t0 ))
				break
			fi
		done
		wait "$pa" "$pb" || true
		ret=$(( $(now_ms) - t0 ))
		echo "  $dp run $run: first packet after ${first:-none} ms, both \`grgw up\` returned after $ret ms"
		[ -n "$first" ] && echo "$first" >>"$WORK/first-$dp"
		echo "$ret" >>"$WORK/ret-$dp"
	done
	echo "$dp $(best <"$WORK/first-$dp") $(median <"$WORK/first-$dp") $(best <"$WORK/ret-$dp") $(median <"$WORK/ret-$dp")" >>"$WORK/startup"
}

# iperf SERVER-NODE ADDRESS CLIENT-NODE: Mbit/s of a SECS-second TCP run
iperf() {
	local srv
	on "$1" iperf3 -s -1 -B "$2" >/dev/null 2>&1 &
	srv=$!
	wait_until 10 sh -c "ip netns exec $NS_PREFIX$1 ss -Hltn 'sport = :5201' | grep -q LISTEN" || true
	on "$3" iperf3 -c "$2" -t "$SECS" -J 2>/dev/null |
		jq '.end.sum_received.bits_per_second / 1e6 | . * 10 | floor / 10' || echo 0
	wait "$srv" 2>/dev/null || true
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "n/a" }'; }

echo "== kernel lab benchmark: $(uname -r), $(nproc) CPUs$(grep -q hypervisor /proc/cpuinfo && echo ', virtual'), RUNS=$RUNS, SECS=$SECS, CUTS=$CUTS, PAIR_BENCH_KILLS=$PAIR_BENCH_KILLS; ${PARTS[*]}"
ok=1

if wants throughput || wants startup; then
	"$LAB" up >/dev/null
	new_psk "$WORK/psk"
	: >"$WORK/startup"
fi

if wants throughput; then
	echo "== throughput (iperf3 TCP, ${SECS}s each)"
	bare=$(iperf gw-b "$GW_B_WAN" gw-a)
	echo "  bare WAN path (gw-a -> gw-b):                  $bare Mbit/s"

	declare -A tput
	for dp in kernel libipsec; do
		configure "$dp"
		down_both
		grgw_at a up --timeout 120 >"$WORK/up-a" 2>&1 &
		grgw_at b up --timeout 120 >"$WORK/up-b" 2>&1 || echo "  $dp: grgw up on gw-b: $(cat "$WORK/up-b")"
		wait $! || echo "  $dp: grgw up on gw-a: $(cat "$WORK/up-a")"
		wait_until 60 ping_ok vellum-a "$VELLUM_B4" || true
		got=$(status_json a | jq -r .dataplane)
		tput[$dp]=$(iperf vellum-b "$VELLUM_B4" vellum-a)
		printf '  through the tunnel, %-8s (status: %-8s) %s Mbit/s\n' "$dp" "$got" "${tput[$dp]}"
	done
	echo "  ratio kernel / bare:      $(ratio "${tput[kernel]}" "$bare")"
	echo "  ratio libipsec / bare:    $(ratio "${tput[libipsec]}" "$bare")"
	echo "  ratio kernel / libipsec:  $(ratio "${tput[kernel]}" "${tput[libipsec]}")"
	{ [ "${tput[kernel]%.*}" -gt 0 ] && [ "$bare" != 0 ]; } || ok=0
fi

if wants startup; then
	echo
	echo "== start-up: grgw up on both gateways -> first packet across ($RUNS runs each)"
	for dp in kernel libipsec; do
		configure "$dp"
		startup "$dp"
	done
	while read -r dp fb fm rb rm; do
		printf '  %-8s first packet: best %s ms, median %s ms; grgw up returned: best %s ms, median %s ms\n' \
			"$dp" "$fb" "$fm" "$rb" "$rm"
	done <"$WORK/startup"
fi

if wants throughput || wants startup; then
	down_both
	"$LAB" down >/dev/null 2>&1
fi

# Rogers round trips idle and under bulk load, QoS on and off, with the
# kernel data plane (fq_codel inside the classes where this kernel has it).
if wants qos; then
	echo
	echo "== QoS on the kernel data plane (tests/bench/qos-bench.sh)"
	LAB_DATAPLANE=kernel "$HERE/../bench/qos-bench.sh" || ok=0
fi

# Link-down detection with ICMP probes against libreswan, which only runs
# here (it needs kernel ESP); grgw at both ends is the baseline.
if wants interop-libreswan; then
	echo
	echo "== link-down detection, probes = icmp against libreswan (tests/bench/interop-bench.sh libreswan)"
	iop_rc=0
	LAB_DATAPLANE=kernel CUTS=$CUTS "$HERE/../bench/interop-bench.sh" libreswan || iop_rc=$?
	# 77: libreswan could not be had here (said above); not a failure.
	[ "$iop_rc" -eq 0 ] || [ "$iop_rc" -eq 77 ] || ok=0
fi

# The gateway pair (two gateways per site, an etcd per site) with the
# kernel data plane.
if wants pair; then
	echo
	echo "== the gateway pair: takeovers, handovers, partitions (tests/bench/pair-bench.sh)"
	LAB_DATAPLANE=kernel PAIR_BENCH_KILLS=$PAIR_BENCH_KILLS PAIR_BENCH_HANDOVERS=$PAIR_BENCH_HANDOVERS \
		PAIR_BENCH_PARTITIONS=$PAIR_BENCH_PARTITIONS "$HERE/../bench/pair-bench.sh" || ok=0
fi

[ "$ok" = 1 ]
