#!/bin/bash
#
# grgw QoS lab tests: the two-site lab (topology in lab.sh), grgw up on both
# gateways with QoS, real traffic, and assertions on what arrives at the
# other site (tcpdump on vellum-b's and sprout-a's LAN interface) and on what
# `grgw status` and the kernel say.
#
#   sprout-a -- lan0 [gw-a] wan0 -- [router] -- wan0 [gw-b] lan0 -- vellum-b
#   memcached client      nftables marks,              memcached on 11311
#   (libmemcached-tools)  htb on ipsec0/grgw0          (Rogers stand-in)
#
# Usage: run-qos-tests.sh [TEST...]   (default: all, in the order below)
#        run-qos-tests.sh --list
#
# Tests:
#   mark      no wan_rate: classification only.  memcached (11311), Cassandra
#             (7000, 7001) and Chronos (7253) TCP arrive with their DSCP, both
#             ways, IPv4 and IPv6; other traffic keeps the DSCP it was sent
#             with; per-class counters in `grgw status`
#   shape     wan_rate = 4mbit: htb on the tunnel interface (ipsec0, or
#             grgw0 in kernel mode) with the best queue the kernel has
#             inside the classes (fq_codel, sfq or pfifo, found by the test
#             itself), said in the status; GRO off on lan0 and on the
#             bridge ports below it, where packets are received (ethtool,
#             the status, the record); bulk iperf3 fills it while
#             memcached requests keep working; counters show bulk in the
#             default class and Rogers in its own
#   restart   charon killed: ipsec0 comes back and is shaped again (kernel
#             mode: grgw0 stays, and so does its shaper)
#   repeat    `up` again installs nothing twice; a bad class definition is
#             refused with FILE:LINE and leaves the running policy untouched
#   down      `down` removes the table and the qdisc, and turns GRO on again
#   degrade   shaping an interface that has a root qdisc of someone else's:
#             the tunnel comes up, the status says why there is no shaping,
#             the other qdisc is left alone; gw-b (shaping its wan0) with
#             lan_gro = keep leaves GRO on
#
# Needs root, iproute2, nftables, tcpdump, jq, netcat-openbsd, iperf3, ethtool,
# memcached, libmemcached-tools.  The last line is "N passed, N failed".
# Environment: GRGW (the binary), UP_TIMEOUT (s, 45), KEEP=1 keeps the
# work directory (captures, logs) for a look afterwards.

set -eu

HERE=$(dirname "$(readlink -f "$0")")
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$HERE/lib.sh"
LAB=$HERE/lab.sh

ALL_TESTS=(mark shape restart repeat down degrade)
UP_TIMEOUT=${UP_TIMEOUT:-45}
MEMC_PORT=11311
WAN_RATE=4mbit
QOS_TABLE=grgw-qos

# DSCP values as RFC 4594 names them, and as the built-in classes use them.
DSCP_AF21=18	# rogers
DSCP_AF22=20	# chronos
DSCP_AF11=10	# cassandra
DSCP_AF41=34	# what an unclassified sender asks for itself

cleanup() {
	set +e
	local p
	for p in "${BG_PIDS[@]+"${BG_PIDS[@]}"}"; do kill "$p" 2>/dev/null; done
	capture_stop_all
	if [ -n "${KEEP:-}" ]; then
		for p in a b; do
			cp "$LAB_RUN_DIR/site-$p/grgw.log" "$WORK/grgw-gw-$p.log" 2>/dev/null
			cp "$LAB_RUN_DIR/site-$p/charon.log" "$WORK/charon-gw-$p.log" 2>/dev/null
		done
	fi
	if [ -n "${CONF_A:-}" ]; then
		down_one a cleanup --purge
		down_one b cleanup --purge
	fi
	"$LAB" down >/dev/null 2>&1
	if [ -n "${KEEP:-}" ]; then
		echo "kept $WORK"
	elif [ -n "${WORK:-}" ]; then
		rm -rf "$WORK"
	fi
}

[ "$(id -u)" -eq 0 ] || { echo "run-qos-tests.sh: needs root" >&2; exit 1; }
case ${1:-} in
--list) printf '%s\n' "${ALL_TESTS[@]}"; exit 0 ;;
-h|--help) sed -n '2,/^# memcached, lib/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac
for t in "$@"; do
	[[ " ${ALL_TESTS[*]} " == *" $t "* ]] || { echo "unknown test: $t (try --list)" >&2; exit 2; }
done
for tool in memcached memccp memccat iperf3 tcpdump jq nft tc nc ethtool; do
	command -v "$tool" >/dev/null || { echo "run-qos-tests.sh: $tool missing (run tests/deps.sh)" >&2; exit 1; }
done

# The queue grgw should put inside the classes: the best this kernel has,
# found here independently of grgw, in a namespace of our own.
LEAF=pfifo
for k in fq_codel sfq; do
	if unshare -n sh -c "ip link set lo up && tc qdisc add dev lo root $k" 2>/dev/null; then
		LEAF=$k
		break
	fi
done

WORK=$(mktemp -d /tmp/grgwlab-qos.XXXXXX)
chmod 0755 "$WORK"
trap cleanup EXIT
trap 'exit 130' INT TERM
CONF_A=$WORK/site-a.conf
CONF_B=$WORK/site-b.conf
BG_PIDS=()
LAB_UP=0
QOS_MODE=none		# what the running daemons were started with

# ---- preconditions -------------------------------------------------------------

# status_has a|b JQ: the status JSON (printed) satisfies JQ
status_has() {
	local json
	json=$(status_json "$1")
	printf 'gw-%s status: %s\n' "$1" "$(jq -c .qos <<<"$json")"
	jq -e "$2" >/dev/null <<<"$json"
}

need_lab() {
	local dev
	[ "$LAB_UP" = 1 ] && return 0
	if ! "$LAB" up >"$WORK/lab-up.log" 2>&1; then
		fail "lab.sh up"
		show_file "$WORK/lab-up.log"
		return 1
	fi
	new_psk "$WORK/psk" || { fail "grgw keygen"; return 1; }
	# GRO on, as NICs come, on lan0 (a bridge) and its ports, where
	# packets are received: grgw turns it off while shaping, and back on.
	GRO_BEFORE=on
	for dev in "$GW_LAN_IF" vellum sprout; do
		gw_a ethtool -K "$dev" gro on
		gw_b ethtool -K "$dev" gro on
	done
	LAB_UP=1
	# The Rogers stand-in: a real memcached at vellum-b, TCP only.
	vellum_b memcached -u root -p "$MEMC_PORT" -U 0 -t 2 \
		-l "$VELLUM_B4,[$VELLUM_B6]" >"$WORK/memcached.log" 2>&1 </dev/null &
	BG_PIDS+=($!)
	wait_until 10 memcached_listening || { fail "memcached listens at vellum-b"; show_file "$WORK/memcached.log"; return 1; }
}
memcached_listening() { vellum_b ss -Hltn "sport = :$MEMC_PORT" | grep -q LISTEN; }

# write_confs MODE EXTRA: both sites' configs with a QoS section appended
write_confs() {
	local s
	for s in a b; do
		render_conf "$HERE/site-$s.conf" "$WORK/site-$s.conf" "$WORK" plain
		printf '\n%s\n' "$2" >>"$WORK/site-$s.conf"
	done
}

# need_qos MODE: grgw up on both sites with MODE (mark: no wan_rate;
# shape: wan_rate = $WAN_RATE), restarting them if they run another mode.
need_qos() {
	local mode=$1 extra
	need_lab || return 1
	if [ "$QOS_MODE" = "$mode" ] && status_is a "$TUNNEL_UP_JQ" && status_is b "$TUNNEL_UP_JQ"; then
		return 0
	fi
	down_one a restart --purge
	down_one b restart --purge
	case $mode in
	mark) extra='[qos]' ;;
	shape) extra=$(printf '[qos]\nwan_rate = %s' "$WAN_RATE") ;;
	esac
	write_confs "$mode" "$extra"
	up_both "up-$mode"
	QOS_MODE=$mode
	if [ "$RC_A" -ne 0 ] || [ "$RC_B" -ne 0 ]; then
		fail "grgw up on both sites ($mode) (gw-a $RC_A, gw-b $RC_B)"
		show_file "$WORK/up-$mode-a.log" 5
		show_file "$WORK/up-$mode-b.log" 5
		QOS_MODE=none
		return 1
	fi
}

# ---- captures on a node's interface ------------------------------------------

declare -gA NCAP=()

# ncap_start TAG NODE...: tcpdump on each NODE's $NODE_IF into $WORK/TAG-NODE.pcap
ncap_start() {
	local tag=$1 node
	shift
	for node in "$@"; do
		rm -f "$WORK/$tag-$node.pcap" "$WORK/$tag-$node.log"
		ip netns exec "$NS_PREFIX$node" tcpdump -i "$NODE_IF" -n -s 128 -U \
			--immediate-mode -Z root -w "$WORK/$tag-$node.pcap" \
			'tcp or udp' >"$WORK/$tag-$node.log" 2>&1 </dev/null &
		NCAP[$tag-$node]=$!
	done
	for node in "$@"; do
		wait_until 60 grep -q 'listening on' "$WORK/$tag-$node.log" || {
			echo "tcpdump in $node did not start" >&2
			return 1
		}
	done
}

ncap_stop_all() {
	local key pid
	sleep 0.3
	for key in "${!NCAP[@]}"; do kill -INT "${NCAP[$key]}" 2>/dev/null || true; done
	for key in "${!NCAP[@]}"; do
		pid=${NCAP[$key]}
		wait_until 5 pid_gone "$pid" || kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		unset "NCAP[$key]"
	done
	return 0
}

# BPF for "DSCP is D": IPv4 ToS bits 7..2; IPv6 traffic class bits.
dscp4() { printf '(ip[1] & 0xfc) == %d' $(($1 << 2)); }
dscp6() { printf '(ip6[0:2] & 0x0fc0) == %d' $(($1 << 6)); }

# expect_all_dscp NAME PCAP FILTER FAMILY DSCP: FILTER matched packets, all
# of them with DSCP (and none without).
expect_all_dscp() {
	local name=$1 pcap=$2 filter=$3 fam=$4 d=$5 with without mark
	if [ "$fam" = 4 ]; then mark=$(dscp4 "$d"); else mark=$(dscp6 "$d"); fi
	with=$(pcap_count "$pcap" "$filter and $mark") || true
	without=$(pcap_count "$pcap" "$filter and not ($mark)") || true
	if [ "$with" -gt 0 ] && [ "$without" = 0 ]; then
		pass "$name: $with packets, all with DSCP $d"
	else
		fail "$name: $with packets with DSCP $d, $without without"
		tcpdump -nn -v -r "$pcap" "$filter" 2>/dev/null | grep -E 'tos|class' | head -n 4 | sed 's/^/     | /'
	fi
}

# ---- traffic ---------------------------------------------------------------------

# A sink per port at vellum-b (Cassandra, Chronos, an unclassified one).
SINK_PORTS=(7000 7001 7253 9000)
start_sinks() {
	local port
	for port in "${SINK_PORTS[@]}"; do
		vellum_b "$PYTHON" "$HERE/tcp-sink.py" --port "$port" --log "$WORK/sink-$port.log" \
			--lifetime 900 >"$WORK/sink-$port.err" 2>&1 </dev/null &
		BG_PIDS+=($!)
	done
	for port in "${SINK_PORTS[@]}"; do
		wait_until 60 port_listening vellum-b "$port" || { echo "sink on $port did not start" >&2; return 1; }
	done
}
port_listening() { on "$1" ss -Hltn "sport = :$2" | grep -q LISTEN; }

# send_to NODE ADDR PORT [NC-ARGS...]: a few lines over TCP, the sink's answer
send_to() {
	local node=$1 addr=$2 port=$3
	shift 3
	printf 'qos test to %s port %s\n' "$addr" "$port" |
		timeout 20 ip netns exec "$NS_PREFIX$node" nc -N -w 5 "$@" "$addr" "$port"
}

# memc_roundtrip KEY: store a value at vellum-b from sprout-a and read it back
memc_roundtrip() {
	local f=$WORK/$1 got
	printf 'value-of-%s\n' "$1" >"$f"
	sprout_a memccp --servers="$VELLUM_B4:$MEMC_PORT" "$f" || { rejects_seen; return 1; }
	got=$(timeout 10 ip netns exec "${NS_PREFIX}sprout-a" memccat --servers="$VELLUM_B4:$MEMC_PORT" "$1") || return 1
	[ "$got" = "value-of-$1" ]
}

# rejects_seen: which of the gateways' reject rules have counted packets
# (who answered a refused connection), and their link and tunnel
rejects_seen() {
	local s
	for s in a b; do
		on "gw-$s" nft list ruleset 2>/dev/null | grep -E 'reject' | grep -v 'packets 0 ' | sed "s/^[[:space:]]*/gw-$s: /"
		status_json "$s" | jq -c '{link: .peers[0].link.state, reason: .peers[0].link.reason, tunnel: .peers[0].tunnel, refusing: .peers[0].refusing}' 2>/dev/null | sed "s/^/gw-$s: /"
	done
}

# memcached's text protocol over IPv6, answered by the server itself
memc_version6() {
	printf 'version\r\nquit\r\n' |
		timeout 10 ip netns exec "${NS_PREFIX}sprout-a" nc -w 5 "$VELLUM_B6" "$MEMC_PORT" | grep -q '^VERSION '
}

# class_field SITE CLASS FIELD: a per-class number from `grgw status --json`
class_field() {
	status_json "$1" | jq -r --arg c "$2" --arg f "$3" \
		'(.qos.classes // [])[] | select(.name == $c) | .[$f]'
}

# ---- tests -------------------------------------------------------------------------

t_mark() {
	local cap
	need_qos mark || return 0
	check "gw-a status: classification on, no shaping (said so)" status_has a \
		'.qos.enabled and .qos.classification == "on" and .qos.shaping == "off" and (.qos.status | test("no shaping \\(no \\[qos\\] wan_rate"))'
	check "gw-a: table inet $QOS_TABLE installed" gw_a nft list table inet "$QOS_TABLE"
	start_sinks || { fail "TCP sinks at vellum-b"; return 0; }
	ncap_start mark vellum-b sprout-a || { fail "captures"; return 0; }

	check "memcached set and get, sprout-a -> vellum-b:11311 (IPv4)" memc_roundtrip rogers-key
	check "memcached answers over IPv6" memc_version6
	check "TCP to Cassandra port 7000 (IPv4)" send_to sprout-a "$VELLUM_B4" 7000
	check "TCP to Cassandra port 7001 (IPv6)" send_to sprout-a "$VELLUM_B6" 7001
	check "TCP to Chronos port 7253 (IPv4)" send_to sprout-a "$VELLUM_B4" 7253
	check "TCP to port 9000, unclassified" send_to sprout-a "$VELLUM_B4" 9000
	check "TCP to port 9000 (IPv6), sent with DSCP AF41" send_to sprout-a "$VELLUM_B6" 9000 -T af41
	ncap_stop_all

	cap=$WORK/mark-vellum-b.pcap
	expect_all_dscp "at vellum-b: memcached requests (IPv4)" "$cap" \
		"src host $SPROUT_A4 and tcp dst port $MEMC_PORT" 4 "$DSCP_AF21"
	expect_all_dscp "at vellum-b: memcached requests (IPv6)" "$cap" \
		"src host $SPROUT_A6 and tcp dst port $MEMC_PORT" 6 "$DSCP_AF21"
	expect_all_dscp "at vellum-b: Cassandra 7000" "$cap" \
		"src host $SPROUT_A4 and tcp dst port 7000" 4 "$DSCP_AF11"
	expect_all_dscp "at vellum-b: Cassandra 7001 (IPv6)" "$cap" \
		"src host $SPROUT_A6 and tcp dst port 7001" 6 "$DSCP_AF11"
	expect_all_dscp "at vellum-b: Chronos 7253" "$cap" \
		"src host $SPROUT_A4 and tcp dst port 7253" 4 "$DSCP_AF22"
	expect_all_dscp "at vellum-b: unclassified TCP keeps DSCP 0" "$cap" \
		"src host $SPROUT_A4 and tcp dst port 9000" 4 0
	expect_all_dscp "at vellum-b: unclassified TCP keeps its own AF41" "$cap" \
		"src host $SPROUT_A6 and tcp dst port 9000" 6 "$DSCP_AF41"
	cap=$WORK/mark-sprout-a.pcap
	expect_all_dscp "at sprout-a: memcached answers (marked by gw-b)" "$cap" \
		"src host $VELLUM_B4 and tcp src port $MEMC_PORT" 4 "$DSCP_AF21"
	expect_all_dscp "at sprout-a: Chronos answers (marked by gw-b)" "$cap" \
		"src host $VELLUM_B4 and tcp src port 7253" 4 "$DSCP_AF22"
	expect_all_dscp "at sprout-a: unclassified answers stay DSCP 0" "$cap" \
		"src host $VELLUM_B4 and tcp src port 9000" 4 0

	check "gw-a status: rogers, cassandra, chronos and default counted" status_has a \
		'[.qos.classes[] | select(.name == "rogers" or .name == "cassandra" or .name == "chronos" or .name == "default") | .packets > 0] | length == 4 and all'
	check "gw-b status: rogers answers counted" status_has b \
		'.qos.classes[] | select(.name == "rogers") | .packets > 0'
	check "grgw status (text) shows the classes" grep_status_text a 'rogers +AF21'
}
grep_status_text() { grgw_at "$1" status | tee "$WORK/status.txt" | grep -Eq "$2"; }

t_shape() {
	local i ok=0 fails=0 bits def_b rog_b client dev
	need_qos shape || return 0
	check "gw-a status: shaping $WAN_RATE on $TUN_IF with htb" status_has a \
		".qos.shaping == \"on\" and .qos.interface == \"$TUN_IF\" and .qos.wan_rate == 4000000"
	if [ "$LEAF" = pfifo ]; then
		check "gw-a status: says no fair queuing here, pfifo used" status_has a \
			'.qos.leaf_qdisc == "pfifo" and (.qos.status | test("fair queuing inside classes: not available \\(no fq_codel or sfq in this kernel\\), using pfifo"))'
	else
		check "gw-a status: $LEAF inside the classes, as this kernel has it" status_has a \
			".qos.leaf_qdisc == \"$LEAF\" and (.qos.status | test(\"fair queuing inside classes: $LEAF\"))"
	fi
	check "gw-a: $LEAF queues in the classes" leaves_are gw-a "$LEAF" 5
	check "gw-a: htb 4210: is the root qdisc of $TUN_IF" tc_has gw-a 'qdisc htb 4210: root'
	check "gw-b: htb 4210: is the root qdisc of $TUN_IF" tc_has gw-b 'qdisc htb 4210: root'
	check "gw-a: one htb class per traffic class (+ root and default)" htb_classes_are gw-a 6
	check "gw-a status: GRO off on lan0 and its ports while shaping" status_has a \
		'.qos.lan_gro == "off" and (.qos.status | test("; GRO off on lan0, (vellum, sprout|sprout, vellum)$"))'
	for dev in "$GW_LAN_IF" vellum sprout; do
		check "gw-a: ethtool says GRO is off on $dev" gro_is gw-a "$dev" off
		check "gw-a: recorded, to be turned on again" record_count a "run offload $dev gro on" 1
	done

	vellum_b iperf3 -s -1 -B "$VELLUM_B4" >"$WORK/iperf-s.log" 2>&1 </dev/null &
	BG_PIDS+=($!)
	wait_until 10 port_listening vellum-b 5201 || { fail "iperf3 server"; return 0; }
	sprout_a iperf3 -c "$VELLUM_B4" -t 14 -J >"$WORK/iperf.json" 2>"$WORK/iperf.err" </dev/null &
	client=$!
	BG_PIDS+=("$client")
	sleep 3
	for ((i = 1; i <= 20; i++)); do
		if memc_roundtrip "bulk-$i" >/dev/null 2>&1; then ok=$((ok + 1)); else fails=$((fails + 1)); fi
		sleep 0.3
	done
	check "while bulk fills $WAN_RATE: 20 memcached set+get from sprout-a all work ($ok ok, $fails failed)" \
		test "$fails" -eq 0
	wait_until 30 pid_gone "$client" || true
	wait "$client" 2>/dev/null || true
	bits=$(jq -r '.end.sum_received.bits_per_second // 0 | floor' "$WORK/iperf.json" 2>/dev/null)
	[ -n "$bits" ] || bits=0
	note "bulk TCP through the shaper: $((bits / 1000)) kbit/s"
	if [ "$bits" -eq 0 ]; then
		note "iperf3: $(jq -r '.error // empty' "$WORK/iperf.json" 2>/dev/null) $(tail -n 2 "$WORK/iperf.err" 2>/dev/null)"
	fi
	check "the bulk flow was shaped to at most ~$WAN_RATE ($((bits / 1000)) kbit/s)" \
		test "$bits" -gt 1000000 -a "$bits" -lt 4600000

	def_b=$(class_field a default sent_bytes)
	rog_b=$(class_field a rogers sent_bytes)
	note "gw-a shaper: default class sent ${def_b:-?} bytes, rogers ${rog_b:-?} bytes"
	check "gw-a status: the bulk went through the default class (> 2 MB)" test "${def_b:-0}" -gt 2000000
	check "gw-a status: Rogers went through its own class" test "${rog_b:-0}" -gt 0
	check "gw-a status: the rogers class dropped nothing" status_has a \
		'.qos.classes[] | select(.name == "rogers") | .drops == 0 and .packets > 0'
	check "gw-a status: bulk not counted as rogers (rogers < 1% of default)" \
		test "$(( ${rog_b:-0} * 100 ))" -lt "${def_b:-0}"
}
# gro_is NODE IF on|off: what ethtool says of IF's generic receive offload
gro_is() { on "$1" ethtool -k "$2" | tee "$WORK/ethtool.out" | grep -q "^generic-receive-offload: $3"; }
tc_has() { on "$1" tc qdisc show dev "$TUN_IF" | tee "$WORK/tc.out" | grep -q "$2"; }
# leaves_are NODE KIND N: N leaf qdiscs of KIND below htb 4210:
leaves_are() {
	local n
	n=$(on "$1" tc qdisc show dev "$TUN_IF" | grep -c "^qdisc $2 [0-9a-f]*: parent 4210:")
	echo "$2 leaves: $n (want $3)"
	[ "$n" -eq "$3" ]
}
htb_classes_are() {
	local n
	n=$(on "$1" tc class show dev "$TUN_IF" | grep -c '^class htb 4210:')
	echo "htb classes: $n (want $2)"
	[ "$n" -eq "$2" ]
}

t_restart() {
	local old before ifindex
	need_qos shape || return 0
	old=$(node_pids_named gw-a charon | head -n 1)
	[ -n "$old" ] || { fail "a charon runs in gw-a"; return 0; }
	before=$(status_json a | jq -r '.charon.restarts // 0')
	ifindex=$(gw_a cat "/sys/class/net/$TUN_IF/ifindex" 2>/dev/null || echo none)
	kill -KILL "$old"
	wait_until 5 proc_gone "$old" || true
	wait_until 60 status_is a ".charon.running == true and .charon.restarts > $before and .peers[0].tunnel == \"up\"" || true
	wait_until 20 status_is a '.qos.shaping == "on"' || true
	if [ "$TUN_IF" = ipsec0 ]; then
		check "gw-a: charon restarted (restarts > $before), a new ipsec0" new_tun_if "$ifindex"
	else
		check "gw-a: charon restarted (restarts > $before), $TUN_IF is grgw's and stays" same_tun_if "$ifindex"
	fi
	check "gw-a after charon restart: shaping on again" status_has a ".qos.shaping == \"on\" and .charon.restarts > $before"
	check "gw-a: $TUN_IF has htb 4210: (again)" tc_has gw-a 'qdisc htb 4210: root'
	check "gw-a: memcached works after the restart" memc_roundtrip after-restart
	check "gw-a: one qdisc line in the record" record_count a "qdisc $TUN_IF htb 4210:" 1
}

proc_gone() { [ ! -e "/proc/$1" ] || [ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" = Z ]; }
tun_ifindex() { gw_a cat "/sys/class/net/$TUN_IF/ifindex" 2>/dev/null || echo none; }
new_tun_if() {
	local now
	now=$(tun_ifindex)
	echo "$TUN_IF ifindex before $1, now $now"
	[ "$now" != none ] && [ "$now" != "$1" ]
}
same_tun_if() {
	local now
	now=$(tun_ifindex)
	echo "$TUN_IF ifindex before $1, now $now"
	[ "$now" != none ] && [ "$now" = "$1" ]
}

# record_count SITE TEXT N: the site's kernel record holds TEXT N times
record_count() {
	local rec n
	rec=$LAB_RUN_DIR/$(conf_value "$(site_conf "$1")" site name)/kernel.record
	n=$(grep -c -- "$2" "$rec" || true)
	echo "$rec: $n line(s) with '$2'"
	[ "$n" -eq "$3" ]
}

# policy_snapshot SITE: the classification table without its counters, and
# the tree of qdiscs and classes on the tunnel interface
policy_snapshot() {
	on "gw-$1" nft list table inet "$QOS_TABLE" | grep -v -E 'packets [0-9]+ bytes'
	on "gw-$1" tc qdisc show dev "$TUN_IF"
	on "gw-$1" tc class show dev "$TUN_IF"
}

t_repeat() {
	local pid bad=$WORK/bad-class.conf rc=0
	need_qos shape || return 0
	pid=$(status_json a | jq -r .daemon.pid)
	policy_snapshot a >"$WORK/policy-before"
	RC=0
	timeout 60 ip netns exec "${NS_PREFIX}gw-a" "$GRGW" up -c "$CONF_A" --timeout 30 \
		>"$WORK/up-again.log" 2>&1 </dev/null || RC=$?
	check "grgw up again on gw-a: ok" test "$RC" -eq 0
	check "gw-a: one table inet $QOS_TABLE" test "$(gw_a nft list tables | grep -c "inet $QOS_TABLE\$")" -eq 1
	check "gw-a: one htb root on $TUN_IF" test "$(gw_a tc qdisc show dev "$TUN_IF" | grep -c 'htb 4210: root')" -eq 1
	check "gw-a: one nft line for $QOS_TABLE in the record" record_count a "nft inet $QOS_TABLE" 1

	# A class nftables would never see: refused before anything changes.
	cp "$CONF_A" "$bad"
	printf '[class rogers]\ndscp = AF99\nport = 70000\n' >>"$bad"
	timeout 30 ip netns exec "${NS_PREFIX}gw-a" "$GRGW" up -c "$bad" --timeout 10 \
		>"$WORK/up-bad.log" 2>&1 </dev/null || rc=$?
	check "grgw up with a bad class: exit 1" test "$rc" -eq 1
	check "... each mistake named with its line" grep -Eq "$bad:[0-9]+: dscp \"AF99\" is not a DSCP name" "$WORK/up-bad.log"
	check "... and the port too" grep -Eq "$bad:[0-9]+: port \"70000\" is out of range" "$WORK/up-bad.log"
	policy_snapshot a >"$WORK/policy-after"
	check "the running policy is untouched (table, qdiscs, classes)" \
		diff -u "$WORK/policy-before" "$WORK/policy-after"
	check "the same daemon still runs (pid $pid)" status_has a ".daemon.pid == $pid and .qos.shaping == \"on\""
}

no_qos_left() {
	local s=$1
	if on "gw-$s" nft list tables | grep -q "$QOS_TABLE"; then echo "table left"; return 1; fi
	if on "gw-$s" tc qdisc show | grep -q 'htb 4210:'; then echo "qdisc left"; return 1; fi
	! grep -Eq "qdisc|offload|$QOS_TABLE" "$LAB_RUN_DIR/site-$s/kernel.record" 2>/dev/null
}

t_down() {
	local s dev
	need_qos shape || return 0
	for s in a b; do
		down_one "$s" down
		check "grgw down on gw-$s" test "$RC" -eq 0
		check "gw-$s: no $QOS_TABLE table, no htb, nothing of it in the record" no_qos_left "$s"
		for dev in "$GW_LAN_IF" vellum sprout; do
			check "gw-$s: GRO on $dev as before grgw ($GRO_BEFORE)" gro_is "gw-$s" "$dev" "$GRO_BEFORE"
		done
	done
	QOS_MODE=none
}

t_degrade() {
	need_lab || return 0
	down_one a pre --purge
	down_one b pre --purge
	# Someone else's shaper on gw-a's WAN interface.
	gw_a tc qdisc replace dev wan0 root handle 1: htb default 1
	write_confs degrade "$(printf '[qos]\nwan_rate = 10mbit\ninterface = wan0\nlan_gro = keep')"
	up_both degrade
	QOS_MODE=degrade
	check "grgw up on both, although gw-a cannot shape (gw-a $RC_A, gw-b $RC_B)" \
		test "$RC_A" -eq 0 -a "$RC_B" -eq 0
	check "gw-a status: shaping failed, with the reason; classification on" status_has a \
		'.qos.shaping == "failed" and .qos.classification == "on" and (.qos.status | test("wan0 already has a root qdisc htb 1: that grgw did not install; not replacing it"))'
	check "gw-a: memcached works" memc_roundtrip degraded
	check "gw-b status: shaping wan0, GRO left alone (lan_gro = keep)" status_has b \
		'.qos.shaping == "on" and .qos.lan_gro == "kept" and (.qos.status | test("GRO on lan0 left as it is \\(lan_gro = keep\\)"))'
	check "gw-b: GRO still on on its LAN port" gro_is gw-b sprout on
	down_one a degrade-down
	check "gw-a: the other root qdisc is left alone by down" sh -c \
		"ip netns exec ${NS_PREFIX}gw-a tc qdisc show dev wan0 | grep -q 'htb 1: root'"
	gw_a tc qdisc del dev wan0 root 2>/dev/null || true
	down_one b degrade-down
	QOS_MODE=none
}

# ---- main ------------------------------------------------------------------------

lab_main "$@"
