#!/bin/bash
# Link-down detection against a peer that is not grgw, in the two-site lab.
# Prints figures and ratios against a baseline measured in the same run;
# never fails on a time.
#
#   vellum-a -- [gw-a: grgw] -- router (WAN cut) -- [gw-b: grgw | charon + swanctl | pluto] -- vellum-b
#
# Usage: interop-bench.sh [swanctl|libreswan]
#
#   grgw       the baseline: grgw at both gateways, `probes = grgw`
#   swanctl    (default) gw-b runs Debian's plain strongSwan with the
#              README's swanctl.conf, started as the interop-swanctl lab
#              test starts it (tests/lab/interop-tests.sh); gw-a runs grgw
#              with `probes = icmp`
#   libreswan  gw-b runs libreswan's pluto with the README's ipsec.conf, as
#              interop-libreswan starts it; gw-a runs grgw with `probes =
#              icmp` and the kernel data plane.  libreswan has no userspace
#              data plane: "skipped: why" and exit 77 without kernel ESP
#              (tests/kernel-lab/bench.sh runs it in the VM)
#
# Each of the two setups gets CUTS WAN cuts (100 % loss on the router,
# default 20), in blocks of BLOCK (default 5) that alternate between the
# baseline and the peer, so that the machine's load weighs on both alike.
# Detection time: from the cut to the change of gw-a's link state to down,
# taken from the daemon's own change time (link.since_epoch_ms), as
# tests/bench/link-bench.sh takes it; p50/p99/max of each setup, the
# reasons and methods `grgw status` gave, and the ratios peer / baseline.
# The cut is written to an nft already running in the router (nft -i), and
# timed just before, from bash's own clock: starting nft and date for each
# cut would take long enough under emulation (the kernel VM lab) to hide a
# good part of the detection time.
# Both setups probe at the same setting (PROBE_INTERVAL_MS, default 50, x
# PROBE_MULTIPLIER, default 5).  LAB_ID=N runs it in a lab of its own.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lab/lib.sh
. "$HERE/../lab/lib.sh"
# The peers' setup, shared with the lab tests interop-swanctl and
# interop-libreswan (interop_start/interop_stop, lsw_start/lsw_stop).
# shellcheck source-path=SCRIPTDIR source=../lab/interop-tests.sh
. "$HERE/../lab/interop-tests.sh"
LAB=$HERE/../lab/lab.sh
# shellcheck source-path=SCRIPTDIR source=plot.sh
. "$HERE/plot.sh"

PEER=${1:-swanctl}
case $PEER in
swanctl|libreswan) ;;
*) echo "usage: interop-bench.sh [swanctl|libreswan]" >&2; exit 2 ;;
esac
CUTS=${CUTS:-20}
BLOCK=${BLOCK:-5}
PROBE_INTERVAL_MS=${PROBE_INTERVAL_MS:-50}
PROBE_MULTIPLIER=${PROBE_MULTIPLIER:-5}
UP_TIMEOUT=${UP_TIMEOUT:-45}
CUT_RULE="table inet grgwlab-cut { chain cut { type filter hook forward priority 0; drop; }; }"

cleanup() {
	set +e
	cutter_stop
	router nft delete table inet grgwlab-cut >/dev/null 2>&1
	grgw_at a down --purge >/dev/null 2>&1
	grgw_at b down --purge >/dev/null 2>&1
	interop_stop
	lsw_stop
	"$LAB" down >/dev/null 2>&1
	rm -rf "$WORK"
}

[ "$(id -u)" -eq 0 ] || { echo "interop-bench.sh: needs root" >&2; exit 1; }
for tool in jq nft; do
	command -v "$tool" >/dev/null || { echo "bench: $tool missing (run tests/deps.sh)" >&2; exit 1; }
done
if [ "$PEER" = swanctl ]; then
	command -v swanctl >/dev/null || { echo "bench: swanctl missing (run tests/deps.sh)" >&2; exit 1; }
	[ -x "$CHARON" ] || { echo "bench: no charon at $CHARON" >&2; exit 1; }
else
	why=$(lsw_missing)
	if [ -n "$why" ]; then
		echo "skipped: interop-bench libreswan: $why"
		exit 77
	fi
fi
WORK=$(mktemp -d /tmp/grgw-interop-bench.XXXXXX)
# interop-tests.sh reads the key from $LABCONF/psk.
LABCONF=$WORK
CONF_A=$WORK/site-a.conf
CONF_B=$WORK/site-b.conf
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the two setups -------------------------------------------------------------

link_of() { status_json "$1" | jq -c '.peers[0].link // {}'; }
# link_says a|b STATE METHOD: that gateway's link is in STATE, measured by METHOD
link_says() { link_of "$1" | jq -e ".state == \"$2\" and .method == \"$3\"" >/dev/null; }
grgw_up_both() { link_says a up grgw && link_says b up grgw; }
peer_up() { link_says a up icmp; }
link_down_a() { [ "$(link_of a | jq -r .state)" = down ]; }

# render a|b [icmp]: that site's configuration at the common probe setting;
# with icmp, `probes = icmp` (and the kernel data plane against libreswan)
render() {
	local conf
	conf=$(site_conf "$1")
	render_conf "$LAB_HERE/site-$1.conf" "$conf" "$WORK" plain
	if [ "${2:-}" = icmp ]; then
		sed -i '/^\[peer\]/a probes = icmp' "$conf"
		[ "$PEER" = libreswan ] && sed -i 's/^mode[[:space:]]*=.*/mode = kernel/' "$conf"
	fi
	printf '\n[probe]\ninterval_ms = %s\nmultiplier = %s\n' "$PROBE_INTERVAL_MS" "$PROBE_MULTIPLIER" >>"$conf"
}

# all_down: no grgw, charon or pluto of the bench left at either gateway
all_down() {
	grgw_at a down --purge >/dev/null 2>&1 || true
	grgw_at b down --purge >/dev/null 2>&1 || true
	interop_stop
	lsw_stop
}

# setup_grgw: grgw at both ends; false (with why) if the link does not come up
setup_grgw() {
	all_down
	render a
	render b
	up_both grgw-up
	if [ "$RC_A" -ne 0 ] || [ "$RC_B" -ne 0 ] || ! wait_until 60 grgw_up_both; then
		echo "grgw at both ends did not come up (grgw up: gw-a $RC_A, gw-b $RC_B)"
		show_file "$WORK/grgw-up-a.log" 5
		show_file "$WORK/grgw-up-b.log" 5
		echo "gw-a link: $(link_of a)"
		return 1
	fi
}

# setup_peer: strongSwan or libreswan at gw-b, grgw with probes = icmp at gw-a
setup_peer() {
	local started
	all_down
	render a icmp
	if [ "$PEER" = swanctl ]; then
		rm -rf "$WORK/interop-b"
		interop_start >"$WORK/peer-start.log" 2>&1 && started=1 || started=0
	else
		rm -rf "$WORK/libreswan-b"
		lsw_start >"$WORK/peer-start.log" 2>&1 && started=1 || started=0
	fi
	if [ "$started" = 0 ]; then
		echo "$PEER did not start at gw-b"
		show_file "$WORK/peer-start.log" 10
		return 1
	fi
	up_one a peer-up
	if [ "$RC" -ne 0 ] || ! wait_until 60 peer_up; then
		echo "grgw (probes = icmp) against $PEER did not come up (grgw up: gw-a $RC)"
		show_file "$WORK/peer-up-a.log" 5
		echo "gw-a link: $(link_of a)"
		return 1
	fi
}

# ---- cuts -------------------------------------------------------------------------

# The cutter: one nft in the router, reading commands from a pipe (bash
# unsets CUTTER and CUTTER_PID once it has gone).
cutter_start() {
	coproc CUTTER { exec ip netns exec "${NS_PREFIX}router" nft -i >>"$WORK/cutter.log" 2>&1; }
}

cutter_stop() {
	local pid=${CUTTER_PID:-} fd=${CUTTER[1]:-}
	[ -n "$pid" ] || return 0
	[ -n "$fd" ] && exec {fd}>&-
	wait_until 5 pid_gone "$pid" || kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}

# cutter CMD: an nft command, to the running nft (started again if it died)
cutter() {
	if [ -z "${CUTTER_PID:-}" ] || pid_gone "$CUTTER_PID"; then
		cutter_stop
		cutter_start
	fi
	printf '%s\n' "$1" >&"${CUTTER[1]}"
}

# cut_block NAME N UP-CHECK: N WAN cuts; each cut's detection time (ms) is
# appended to $WORK/det-NAME, "state/reason (method)" to $WORK/why-NAME.
# Each cut comes 0.3 to 0.7 s after the link is seen up (UP-CHECK), so that
# it falls anywhere in the probe interval; it is healed once gw-a says down.
cut_block() {
	local name=$1 n=$2 up=$3 i t0 link since
	for i in $(seq 1 "$n"); do
		if ! wait_until 120 "$up"; then
			echo "  $name: the link did not come up again; $(link_of a)"
			return 1
		fi
		sleep 0.$((RANDOM % 5 + 3))
		# The wall clock in ms, without a subshell or a process.
		t0=${EPOCHREALTIME//[!0-9]/}
		t0=$((t0 / 1000))
		cutter "add $CUT_RULE"
		if wait_until 10 link_down_a; then
			link=$(link_of a)
			since=$(jq .since_epoch_ms <<<"$link")
			if [ "$since" -lt "$t0" ]; then
				echo "  $name: down before the cut, not counted; $link"
			else
				echo $((since - t0)) >>"$WORK/det-$name"
				jq -r '"\(.state)/\(.reason) (\(.method))"' <<<"$link" >>"$WORK/why-$name"
			fi
		else
			echo "  $name: a cut not seen within 10 s; $(link_of a)"
			show_file "$WORK/cutter.log" 3
		fi
		cutter "delete table inet grgwlab-cut"
	done
}

# figures FILE: "N p50 p99 max" of FILE's numbers ("0" when it has none)
figures() {
	sort -n "$1" | awk '{ a[NR] = $1 } END {
		if (NR == 0) { print 0; exit }
		print NR, a[int((NR * 50 + 99) / 100)], a[int((NR * 99 + 99) / 100)], a[NR] }'
}

# report LABEL NAME: the figures of one setup, its reasons and its samples
report() {
	local n p50 p99 max
	read -r n p50 p99 max < <(figures "$WORK/det-$2")
	if [ "$n" = 0 ]; then
		echo "$1: no detection measured"
		return 0
	fi
	printf '%s: %d cuts, detection p50 %d ms, p99 %d ms, max %d ms\n' "$1" "$n" "$p50" "$p99" "$max"
	echo "  reported as: $(sort "$WORK/why-$2" | uniq -c | awk '{ printf "%s%s x %d", sep, $2 " " $3, $1; sep = ", " }')"
	echo "  samples (ms): $(tr '\n' ' ' <"$WORK/det-$2")"
}

# ratios NAME BASE-NAME: p50, p99 and max of NAME over those of BASE-NAME
ratios() {
	local a b
	a=$(figures "$WORK/det-$1")
	b=$(figures "$WORK/det-$2")
	awk -v a="$a" -v b="$b" -v peer="$PEER" 'BEGIN {
		split(a, x, " "); split(b, y, " ")
		if (x[1] == 0 || y[1] == 0) { print "ratio: not measured"; exit }
		printf "ratio %s / grgw: p50 %s, p99 %s, max %s\n", peer, r(x[2], y[2]), r(x[3], y[3]), r(x[4], y[4]) }
	function r(p, q) { return q > 0 ? sprintf("x %.2f", p / q) : "n/a" }'
}

# ---- main -------------------------------------------------------------------------

if [ "$PEER" = swanctl ]; then
	bench_out_init interop-bench
	PEER_LABEL="grgw (probes = icmp) against plain strongSwan (swanctl)"
else
	bench_out_init interop-bench-libreswan
	PEER_LABEL="grgw (probes = icmp, kernel) against libreswan (pluto)"
fi
BASE_LABEL="grgw at both ends (probes = grgw)"
echo "== link-down detection, $PEER at gw-b against grgw at both ends: $CUTS WAN cuts each, in blocks of $BLOCK," \
	"probes ${PROBE_INTERVAL_MS} ms x $PROBE_MULTIPLIER, data plane at gw-a: $(
		[ "$PEER" = libreswan ] && echo kernel || echo "$LAB_EXPECT_DP")"
"$LAB" up >/dev/null
new_psk "$WORK/psk"
: >"$WORK/det-grgw"
: >"$WORK/why-grgw"
: >"$WORK/det-peer"
: >"$WORK/why-peer"
done_grgw=0
done_peer=0
round=0
while [ "$done_grgw" -lt "$CUTS" ] || [ "$done_peer" -lt "$CUTS" ]; do
	round=$((round + 1))
	n=$((CUTS - done_grgw < BLOCK ? CUTS - done_grgw : BLOCK))
	if [ "$n" -gt 0 ]; then
		setup_grgw || break
		cut_block grgw "$n" grgw_up_both || break
		done_grgw=$((done_grgw + n))
	fi
	n=$((CUTS - done_peer < BLOCK ? CUTS - done_peer : BLOCK))
	if [ "$n" -gt 0 ]; then
		setup_peer || break
		cut_block peer "$n" peer_up || break
		done_peer=$((done_peer + n))
	fi
	echo "  round $round: $done_grgw cuts with grgw at both ends, $done_peer against $PEER"
done
all_down

report "$BASE_LABEL" grgw
report "$PEER_LABEL" peer
ratios peer grgw

cp "$WORK/det-grgw" "$BENCH_OUT/interop-detection-$PEER-baseline.dat"
cp "$WORK/det-peer" "$BENCH_OUT/interop-detection-$PEER.dat"
plot_cdf "$BENCH_OUT/interop-detection-$PEER.png" \
	"Link-down detection after a WAN cut, icmp probes against $PEER ($CUTS cuts each)" \
	"ms from the cut to the state change" \
	"$BASE_LABEL" "$BENCH_OUT/interop-detection-$PEER-baseline.dat" \
	"$PEER_LABEL" "$BENCH_OUT/interop-detection-$PEER.dat"
report_add "interop-bench-$PEER" "Link-down detection with icmp probes against $PEER (interop-bench.sh)" \
	"interop-detection-$PEER.png"
# Measured at all, in both setups (however long it took).
[ -s "$WORK/det-grgw" ] && [ -s "$WORK/det-peer" ]
