#!/bin/bash
#
# Checks only the kernel data plane has, in the two-site namespace lab
# (tests/lab/lab.sh) on a kernel with ESP and xfrm interfaces.  Runs inside
# the kernel-lab VM (tests/kernel-lab/run.sh); elsewhere it says why not.
#
#   vellum-a -- lan0 [gw-a: grgw0 xfrm if_id T] wan0 -- [router] -- wan0 [gw-b] lan0 -- vellum-b
#                      SAs + policies bound to if_id              ESP (raw, or in UDP under NAT)
#
# Tests (all by default, in this order; name some to run only those):
#   objects   the xfrm interface, routes, rules, SAs and policies are what
#             grgw's configuration and record say
#   esp       raw ESP (IP protocol 50) on the WAN without NAT; nothing else
#   dscp      the outer ESP header carries the inner DSCP of each class,
#             IPv4 and IPv6 inside, both directions; and, where grgw's QoS
#             classification is active (status .qos), the DSCP grgw gives
#             each built-in class (Rogers, Chronos, Cassandra ports)
#   counters  bulk TCP and prioritised (EF) traffic share a rate-limited,
#             DSCP-prioritising WAN link; no XFRM error counter
#             (/proc/net/xfrm_stat) moves on either gateway meanwhile
#   dpd       the WAN goes black: dead peer detection takes the tunnel down,
#             traffic is refused at once; WAN back: the tunnel heals alone
#   charon    kill -9 of gw-a's charon: once the tunnel is back, the kernel
#             holds the new SAs and policies only, none of the dead charon's
#   down      grgw down: no SA, policy, xfrm interface or tunnel route left,
#             the fail-closed layer stays; down --purge: nothing at all
#   nat       the router does 1:1 NAT: the kernel SAs use UDP encapsulation
#             (port 4500), traffic crosses, no raw ESP on the WAN
#
# Environment: GRGW, UP_TIMEOUT (s, 90).  Last line: "N passed, N failed".

set -eu

HERE=$(dirname "$(readlink -f "$0")")
LABDIR=$(cd "$HERE/../lab" && pwd)
export LAB_DATAPLANE=kernel
# shellcheck source-path=SCRIPTDIR source=../lab/lib.sh
. "$LABDIR/lib.sh"
LAB=$LABDIR/lab.sh
TEST=kernel
ALL_TESTS=(objects esp dscp counters dpd charon down nat)
UP_TIMEOUT=${UP_TIMEOUT:-90}

cleanup() {
	set +e
	capture_stop_all
	[ -n "${CONF_A:-}" ] && [ -f "$CONF_A" ] && timeout 60 ip netns exec "${NS_PREFIX}gw-a" "$GRGW" down -c "$CONF_A" --purge >/dev/null 2>&1
	[ -n "${CONF_B:-}" ] && [ -f "$CONF_B" ] && timeout 60 ip netns exec "${NS_PREFIX}gw-b" "$GRGW" down -c "$CONF_B" --purge >/dev/null 2>&1
	"$LAB" down >/dev/null 2>&1
	[ -n "${WORK:-}" ] && rm -rf "$WORK"
}

[ "$(id -u)" -eq 0 ] || { echo "kernel-tests.sh: needs root" >&2; exit 1; }
for t in "$@"; do
	[[ " ${ALL_TESTS[*]} " == *" $t "* ]] || { echo "unknown test: $t (${ALL_TESTS[*]})" >&2; exit 2; }
done
if ! modprobe -q esp4 || ! modprobe -q xfrm_interface; then
	echo "kernel-tests.sh: this kernel has no ESP or xfrm interfaces (run it through tests/kernel-lab/run.sh)"
	echo "0 passed, 1 failed"
	exit 1
fi

WORK=$(mktemp -d /tmp/grgw-kernel-tests.XXXXXX)
trap cleanup EXIT
trap 'exit 130' INT TERM
CONF_A=$WORK/site-a.conf
CONF_B=$WORK/site-b.conf

# The gateways' kernel settings, from the configuration grgw reads.
IFNAME=grgw0
IF_ID=4210
TABLE=4210
MTU=1400

# ---- helpers ------------------------------------------------------------------

# lab_build plain|nat
lab_build() {
	local args=(up)
	[ "$1" = nat ] && args+=(--nat)
	"$LAB" "${args[@]}" >"$WORK/lab-up.log" 2>&1 || { show_file "$WORK/lab-up.log"; return 1; }
	[ -s "$WORK/psk" ] || new_psk "$WORK/psk"
	render_conf "$LABDIR/site-a.conf" "$CONF_A" "$WORK" "$1"
	render_conf "$LABDIR/site-b.conf" "$CONF_B" "$WORK" "$1"
	grep -q '^mode = kernel' "$CONF_A"
}

# down_at a|b [ARGS...]: grgw down on one gateway; its exit status
down_at() {
	local site=$1
	shift
	timeout 60 ip netns exec "${NS_PREFIX}gw-$site" "$GRGW" down -c "$(site_conf "$site")" "$@" </dev/null
}

tunnel_up_both() { status_is a "$TUNNEL_UP_JQ" && status_is b "$TUNNEL_UP_JQ"; }

# need_tunnel [plain|nat]: the lab with grgw up on both gateways
LAB_BUILT=none
need_tunnel() {
	local mode=${1:-plain}
	if [ "$LAB_BUILT" != "$mode" ]; then
		down_at a --purge >/dev/null 2>&1 || true
		down_at b --purge >/dev/null 2>&1 || true
		lab_build "$mode" || { fail "lab.sh up ($mode)"; return 1; }
		LAB_BUILT=$mode
	fi
	tunnel_up_both && return 0
	down_at a --purge >/dev/null 2>&1 || true
	down_at b --purge >/dev/null 2>&1 || true
	up_both need-tunnel
	cat "$WORK/need-tunnel-a.log" "$WORK/need-tunnel-b.log" >"$WORK/need-tunnel.log"
	if [ "$RC_A" -ne 0 ] || [ "$RC_B" -ne 0 ] || ! wait_until 20 tunnel_up_both; then
		fail "tunnel up as a precondition"
		show_file "$WORK/need-tunnel.log"
		show_file "$LAB_RUN_DIR/site-a/grgw.log"
		return 1
	fi
}

# ---- objects --------------------------------------------------------------------

# xfrmi_is NODE: NAME exists, is an xfrm interface with IF_ID, up, with MTU
xfrmi_is() {
	local out
	out=$(on "$1" ip -d link show dev "$IFNAME") || return 1
	echo "$out"
	grep -q "xfrm if_id $(printf '0x%x' "$IF_ID") " <<<"$out" &&
		grep -q "mtu $MTU " <<<"$out" &&
		grep -Eq '<[^>]*\bUP\b' <<<"$out"
}

# route_via_xfrmi NODE SRC DST IIF: the kernel sends SRC -> DST (arriving on
# IIF) into the xfrm interface
route_via_xfrmi() {
	local out
	out=$(on "$1" ip route get "$3" from "$2" iif "$4") || return 1
	echo "$out"
	grep -q " dev $IFNAME " <<<"$out"
}

# table_routes NODE FAMILY: the routes in table T, one per line
table_routes() { on "$1" ip "-$2" route show table "$TABLE" | sed 's/ *$//'; }

# tunnel_routes_are NODE: table T holds exactly the peer prefixes via the
# xfrm interface, and the record lists exactly those
tunnel_routes_are() {
	local node=$1 p4=$2 p6=$3 rec
	table_routes "$node" 4; table_routes "$node" 6
	[ "$(table_routes "$node" 4)" = "$p4 dev $IFNAME proto static scope link" ] || return 1
	[ "$(table_routes "$node" 6 | sed 's/ metric [0-9]*//; s/ pref medium//')" = "$p6 dev $IFNAME proto static" ] || return 1
	rec=/run/grgw/site-${node#gw-}/kernel.record
	grep "dev $IFNAME" "$rec"
	[ "$(grep -c "route.* table $TABLE .* dev $IFNAME" "$rec")" -eq 2 ] &&
		grep -q "route4 table $TABLE $p4 dev $IFNAME" "$rec" &&
		grep -q "route6 table $TABLE $p6 dev $IFNAME" "$rec" &&
		grep -q "link $IFNAME xfrm if_id $IF_ID" "$rec"
}

rule_is() {
	on "$1" ip "-$2" rule show pref "$3" | tee /dev/stderr | grep -q "$4"
}

# The lab's sites have an IPv4 and an IPv6 prefix each: two pairs of
# prefixes, a CHILD_SA each, so an inbound and an outbound SA each.
LAB_SAS=4

# sas_are NODE: LAB_SAS ESP SAs (in and out per pair of prefixes) bound to
# IF_ID, AES-GCM, tunnel mode, between the gateways' WAN addresses
sas_are() {
	local out n
	out=$(on "$1" ip xfrm state)
	echo "$out"
	n=$(grep -c '^src ' <<<"$out" || true)
	[ "$n" -eq "$LAB_SAS" ] || { echo "want $LAB_SAS SAs, have $n"; return 1; }
	[ "$(grep -c 'proto esp' <<<"$out")" -eq "$LAB_SAS" ] &&
		[ "$(grep -c 'mode tunnel' <<<"$out")" -eq "$LAB_SAS" ] &&
		[ "$(grep -c "if_id $(printf '0x%x' "$IF_ID")" <<<"$out")" -eq "$LAB_SAS" ] &&
		[ "$(grep -c 'aead rfc4106(gcm(aes))' <<<"$out")" -eq "$LAB_SAS" ] &&
		grep -q "^src $GW_A_WAN dst $GW_B_WAN" <<<"$out" &&
		grep -q "^src $GW_B_WAN dst $GW_A_WAN" <<<"$out"
}

# xfrm_policies NODE: the policies of the SPD, one line each (charon's
# per-socket bypass policies, which have no direction, left out)
xfrm_policies() {
	on "$1" ip xfrm policy | awk '
		/^src / { if (e != "") print e; e = $0; next }
		{ sub(/^[ \t]+/, " "); e = e $0 }
		END { if (e != "") print e }' | grep -E ' dir (in|out|fwd) '
}

# sa_spis NODE: the SPIs of the node's SAs, sorted, on one line
sa_spis() { on "$1" ip xfrm state | awk '/proto esp spi/ { print $4 }' | sort | tr '\n' ' '; }

# sas_renewed NODE OLD-SPIS: one or more in/out pairs of SAs, none of them
# with an SPI from OLD-SPIS (the SAs of before are all gone)
sas_renewed() {
	local now spi n
	now=$(sa_spis "$1")
	echo "SAs before: $2"
	echo "SAs now:    $now"
	n=$(wc -w <<<"$now")
	[ "$n" -ge 2 ] && [ $((n % 2)) -eq 0 ] || return 1
	for spi in $2; do
		[[ " $now " == *" $spi "* ]] && { echo "SA $spi is still there"; return 1; }
	done
	return 0
}

# policies_are NODE LOCAL4 REMOTE4 LOCAL6 REMOTE6: out, in and fwd policies for
# both families, every one bound to IF_ID
policies_are() {
	local node=$1 out dir sel n
	out=$(xfrm_policies "$node")
	echo "$out"
	n=$(grep -c . <<<"$out" || true)
	[ "$n" -eq 6 ] || { echo "want 6 policies, have $n"; return 1; }
	[ "$(grep -c "if_id $(printf '0x%x' "$IF_ID")" <<<"$out")" -eq 6 ] || return 1
	for dir in "out:$2 dst $3" "in:$3 dst $2" "fwd:$3 dst $2" "out:$4 dst $5" "in:$5 dst $4" "fwd:$5 dst $4"; do
		sel="src ${dir#*:} "
		grep -F "$sel" <<<"$out" | grep -q " dir ${dir%%:*} " ||
			{ echo "no policy '$sel' dir ${dir%%:*}"; return 1; }
	done
}

t_objects() {
	need_tunnel || return 0
	check "gw-a: $IFNAME is an xfrm interface, if_id $IF_ID, mtu $MTU, up" xfrmi_is gw-a
	check "gw-b: $IFNAME is an xfrm interface, if_id $IF_ID, mtu $MTU, up" xfrmi_is gw-b
	check "gw-a: table $TABLE routes site B's prefixes into $IFNAME, as recorded" \
		tunnel_routes_are gw-a 198.18.2.0/24 2001:db8:b::/64
	check "gw-b: table $TABLE routes site A's prefixes into $IFNAME, as recorded" \
		tunnel_routes_are gw-b 198.18.1.0/24 2001:db8:a::/64
	check "gw-a: rule $TABLE looks up table $TABLE (IPv4)" rule_is gw-a 4 "$TABLE" "lookup $TABLE"
	check "gw-a: rule $TABLE looks up table $TABLE (IPv6)" rule_is gw-a 6 "$TABLE" "lookup $TABLE"
	check "gw-a: fail-closed rule $((TABLE - 10)) and table $((TABLE + 1)) stay under the tunnel" \
		rule_is gw-a 4 "$((TABLE - 10))" "iif wan0 blackhole"
	check "gw-a: vellum-a -> vellum-b IPv4 is routed into $IFNAME" \
		route_via_xfrmi gw-a "$VELLUM_A4" "$VELLUM_B4" lan0
	check "gw-a: vellum-a -> vellum-b IPv6 is routed into $IFNAME" \
		route_via_xfrmi gw-a "$VELLUM_A6" "$VELLUM_B6" lan0
	check "gw-a: an in and an out ESP SA per pair of prefixes ($LAB_SAS), AES-GCM, tunnel mode, bound to if_id $IF_ID" \
		wait_until 20 sas_are gw-a
	check "gw-b: an in and an out ESP SA per pair of prefixes ($LAB_SAS), AES-GCM, tunnel mode, bound to if_id $IF_ID" \
		wait_until 20 sas_are gw-b
	check "gw-a: out/in/fwd policies for both families, all bound to if_id $IF_ID" \
		wait_until 20 policies_are gw-a 198.18.1.0/24 198.18.2.0/24 2001:db8:a::/64 2001:db8:b::/64
	check "gw-b: out/in/fwd policies for both families, all bound to if_id $IF_ID" \
		wait_until 20 policies_are gw-b 198.18.2.0/24 198.18.1.0/24 2001:db8:b::/64 2001:db8:a::/64
	check "gw-a status: kernel data plane" status_is a '.dataplane == "kernel"'
	check "gw-a: no TUN device (no libipsec)" test -z "$(on gw-a ip -d link show type tun)"
}

# ---- esp --------------------------------------------------------------------------

# grgw's authenticated link probes on the underlay: UDP between the two
# gateways' WAN addresses on the [probe] port (default 4211).
PROBE_PORT=$(conf_value "$LABDIR/site-a.conf" probe port)
PROBE_PORT=${PROBE_PORT:-4211}
UNDERLAY_PROBES="(udp port $PROBE_PORT and host $GW_A_WAN and host $GW_B_WAN)"

t_esp() {
	need_tunnel || return 0
	capture_start esp || { fail "WAN capture"; return 0; }
	check "ping vellum-a -> vellum-b IPv4 through the kernel SAs" ping_ok vellum-a "$VELLUM_B4"
	check "ping vellum-a -> vellum-b IPv6 through the kernel SAs" ping_ok vellum-a "$VELLUM_B6"
	capture_stop esp
	check "wan-a: raw ESP (protocol 50) between the gateways" \
		pcap_has_n "$WORK/esp-wan-a.pcap" "ip proto 50 and src $GW_A_WAN and dst $GW_B_WAN"
	check "wan-b: raw ESP (protocol 50) back" \
		pcap_has_n "$WORK/esp-wan-b.pcap" "ip proto 50 and src $GW_B_WAN and dst $GW_A_WAN"
	check "wan-a: no UDP-encapsulated ESP without NAT" \
		pcap_none "$WORK/esp-wan-a.pcap" "udp port 4500"
	# A WAN link that went down and up in an earlier test solicits
	# routers and checks its address: link-local IPv6, which can carry no
	# site address.
	check "wan-a: nothing but ESP, IKE, ARP, link-local IPv6 and grgw's probes between the gateways" \
		pcap_none "$WORK/esp-wan-a.pcap" "not ($IKE_OR_ESP or arp or $UNDERLAY_PROBES or $LINK_LOCAL6)"
	check_no_cleartext esp
}
pcap_has_n() { local n; n=$(pcap_count "$1" "$2"); echo "$n packets"; [ "$n" -gt 0 ]; }
pcap_none() { local n; n=$(pcap_count "$1" "$2"); echo "$n packets"; tcpdump -nn -r "$1" "$2" 2>/dev/null | head -n 5; [ "$n" = 0 ]; }

# ---- dscp -------------------------------------------------------------------------

# Classes as the sender marks them: name:DSCP.
DSCP_CLASSES="EF:46 AF41:34 AF21:18 CS1:8 BE:0"

# The test traffic is sent in packets of more than BIG bytes, so that its ESP
# packets stand apart from anything else in the tunnel (grgw's own probes
# travel in it too, with their own DSCP).
BIG=1000

# outer_dscp_is PCAP SRC DSCP: the large ESP packets from SRC in PCAP all
# carry DSCP
outer_dscp_is() {
	local pcap=$1 src=$2 want=$3 all match sel
	sel="ip proto 50 and src $src and greater $BIG"
	all=$(pcap_count "$pcap" "$sel")
	match=$(pcap_count "$pcap" "$sel and (ip[1] & 0xfc) == $((want << 2))")
	echo "ESP from $src longer than $BIG bytes: $all packets, $match with DSCP $want"
	tcpdump -nn -v -r "$pcap" "$sel" 2>/dev/null | grep -o 'tos 0x[0-9a-f]*' | sort | uniq -c
	[ "$all" -gt 0 ] && [ "$all" = "$match" ]
}

# tcp_with_dscp NODE ADDR PORT DSCP: a TCP exchange with a sink, DSCP set on
# the socket
tcp_with_dscp() {
	on "$1" "$PYTHON" - "$2" "$3" "$4" <<-'EOF'
	import socket, sys
	addr, port, dscp = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
	fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
	s = socket.socket(fam, socket.SOCK_STREAM)
	if fam == socket.AF_INET:
	    s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, dscp << 2)
	else:
	    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, dscp << 2)
	s.settimeout(20)
	s.connect((addr, port))
	s.sendall(b"dscp %d\n" % dscp + b"x" * 8000)
	s.shutdown(socket.SHUT_WR)
	print(s.recv(200).decode().strip())
	EOF
}

# sink_on NODE PORT: a TCP sink (tcp-sink.py) on PORT in NODE, for 5 minutes
sink_on() {
	ip netns exec "$NS_PREFIX$1" "$PYTHON" "$LAB_HERE/tcp-sink.py" --port "$2" \
		--log "$WORK/sink-$2.log" --lifetime 300 >"$WORK/sink-$2.err" 2>&1 </dev/null &
	wait_until 10 sh -c "ip netns exec $NS_PREFIX$1 ss -Hltn 'sport = :$2' | grep -q LISTEN" || true
}

# A port no QoS class matches, so the sender's DSCP is the one that counts.
PLAIN_PORT=7111

# Ports of the built-in QoS classes (policy/policy.h), one to try each.
QOS_PORTS="rogers:11311 chronos:7253 cassandra:7000"

# qos_class_dscp NAME: the DSCP value gw-a's status gives class NAME, if
# QoS classification is active and the class marks; else nothing
qos_class_dscp() {
	status_json a | jq -r --arg n "$1" '
		select(.qos.enabled == true) | .qos.classes[]? |
		select(.name == $n and .dscp_value != null) | .dscp_value'
}

# The classes grgw marks: TCP from vellum-a to that port of vellum-b, sent
# with DSCP 0, leaves gw-a in ESP whose outer header has the class's DSCP.
t_dscp_qos() {
	local c name port want n=0
	for c in $QOS_PORTS; do
		name=${c%%:*}
		port=${c#*:}
		want=$(qos_class_dscp "$name")
		[ -n "$want" ] || continue
		n=$((n + 1))
		sink_on vellum-b "$port"
		capture_start "qos-$name" || { fail "WAN capture"; return 0; }
		tcp_with_dscp vellum-a "$VELLUM_B4" "$port" 0 >"$WORK/qos-$name.out" 2>&1 || true
		capture_stop "qos-$name"
		check "QoS class $name (TCP port $port, sent unmarked): outer ESP header from gw-a carries DSCP $want" \
			outer_dscp_is "$WORK/qos-$name-wan-a.pcap" "$GW_A_WAN" "$want"
	done
	[ "$n" -gt 0 ] || note "grgw's QoS classification is not active here (no .qos classes in the status): class checks not run"
}

t_dscp() {
	local c name dscp
	need_tunnel || return 0
	sink_on vellum-b "$PLAIN_PORT"
	for c in $DSCP_CLASSES; do
		name=${c%%:*}
		dscp=${c#*:}
		capture_start "dscp-$name" || { fail "WAN capture"; return 0; }
		on vellum-a ping -n -c 3 -i 0.2 -W 2 -s 1200 -Q $((dscp << 2)) "$VELLUM_B4" >/dev/null 2>&1 || true
		capture_stop "dscp-$name"
		check "$name (DSCP $dscp): ICMP IPv4 inside -> outer ESP header from gw-a carries DSCP $dscp" \
			outer_dscp_is "$WORK/dscp-$name-wan-a.pcap" "$GW_A_WAN" "$dscp"
		check "$name (DSCP $dscp): replies -> outer ESP header from gw-b carries DSCP $dscp" \
			outer_dscp_is "$WORK/dscp-$name-wan-b.pcap" "$GW_B_WAN" "$dscp"
		capture_start "dscp6-$name" || { fail "WAN capture"; return 0; }
		tcp_with_dscp vellum-a "$VELLUM_B6" "$PLAIN_PORT" "$dscp" >"$WORK/dscp6-$name.out" 2>&1 || true
		capture_stop "dscp6-$name"
		check "$name (DSCP $dscp): TCP over IPv6 inside -> outer ESP header from gw-a carries DSCP $dscp" \
			outer_dscp_is "$WORK/dscp6-$name-wan-a.pcap" "$GW_A_WAN" "$dscp"
	done
	t_dscp_qos
}

# ---- counters ---------------------------------------------------------------------

# xfrm_errors NODE: every non-zero counter of /proc/net/xfrm_stat ("Name N")
# shellcheck disable=SC2016  # an awk program
xfrm_errors() { on "$1" awk '$2 != 0' /proc/net/xfrm_stat; }

# xfrm_unchanged NODE BEFORE: no counter of /proc/net/xfrm_stat differs
# from BEFORE (an earlier xfrm_errors listing)
xfrm_unchanged() {
	local now
	now=$(xfrm_errors "$1")
	echo "gw-${1#gw-} non-zero XFRM counters before: ${2:-none}"
	echo "gw-${1#gw-} non-zero XFRM counters now:    ${now:-none}"
	[ "$now" = "$2" ]
}

# A WAN link that prioritises EF the way a DSCP-aware egress does: HTB at a
# rate even an emulated CPU fills (so the bulk queue, 1000 packets as the
# interface's txqueuelen, stays full), EF in a class of its own served
# first; packets go into the classes by their outer DSCP (nftables sets the
# skb priority).  EF packets then overtake up to a queue's worth of older
# ESP packets of the same SA.
wan_prioritise() {
	local node=$1
	on "$node" tc qdisc add dev wan0 root handle 1: htb default 20
	on "$node" tc class add dev wan0 parent 1: classid 1:1 htb rate 8mbit
	on "$node" tc class add dev wan0 parent 1:1 classid 1:10 htb rate 2mbit ceil 8mbit prio 0
	on "$node" tc class add dev wan0 parent 1:1 classid 1:20 htb rate 6mbit ceil 8mbit prio 1
	on "$node" nft -f - <<-'EOF'
	table inet grgwlab_prio {
		chain out {
			type filter hook postrouting priority 0; policy accept;
			oifname "wan0" ip dscp ef meta priority set 1:10
		}
	}
	EOF
}
wan_unprioritise() {
	on "$1" tc qdisc del dev wan0 root 2>/dev/null || true
	on "$1" nft delete table inet grgwlab_prio 2>/dev/null || true
}

t_counters() {
	local srv bulk ef before_a before_b
	need_tunnel || return 0
	before_a=$(xfrm_errors gw-a)
	before_b=$(xfrm_errors gw-b)
	# Bringing the tunnel up may leave a trace (a packet that met a policy
	# before its SA); what counts is what the shared link adds.
	[ -z "$before_a$before_b" ] ||
		note "XFRM counters before: gw-a: $(tr -s '\t\n' '  ' <<<"${before_a:-none}"); gw-b: $(tr -s '\t\n' '  ' <<<"${before_b:-none}")"
	wan_prioritise gw-a
	on vellum-b iperf3 -s -1 -B "$VELLUM_B4" >"$WORK/iperf-srv.log" 2>&1 &
	srv=$!
	wait_until 10 sh -c "ip netns exec ${NS_PREFIX}vellum-b ss -Hltn 'sport = :5201' | grep -q LISTEN" || true
	# Bulk: four TCP streams fill the link; prioritised: EF pings every
	# 10 ms overtake them in the HTB, so ESP leaves gw-a out of sequence.
	on vellum-a iperf3 -c "$VELLUM_B4" -t 15 -P 4 -J >"$WORK/iperf-bulk.json" 2>&1 &
	bulk=$!
	sleep 1
	on vellum-a ping -n -q -c 1000 -i 0.01 -W 1 -Q 0xb8 "$VELLUM_B4" >"$WORK/ping-ef.log" 2>&1 &
	ef=$!
	wait "$bulk" || true
	wait "$ef" || true
	wait "$srv" 2>/dev/null || true
	note "bulk: $(jq -r '.end.sum_received.bits_per_second / 1e6 | floor' "$WORK/iperf-bulk.json" 2>/dev/null) Mbit/s; EF: $(grep -E 'packets transmitted|rtt' "$WORK/ping-ef.log" | tr '\n' ' ')"
	note "gw-a wan0 classes: $(on gw-a tc -s class show dev wan0 | awk '/^class/ { c = $3 } /Sent/ { printf "%s %s pkts", c, $4 } /backlog/ { printf " (backlog %s); ", $3 }')"
	note "gw-b's replay windows: $(on gw-b ip xfrm state | grep -Eo 'replay[-_]window [0-9]+' | sort | uniq -c | tr -s ' \n' ' ')"
	check "EF pings kept getting through while bulk filled the link" ef_answered "$WORK/ping-ef.log"
	check "gw-a: no XFRM error counter moved (no replay-window or sequence errors)" xfrm_unchanged gw-a "$before_a"
	check "gw-b: no XFRM error counter moved (no replay-window or sequence errors)" xfrm_unchanged gw-b "$before_b"
	wan_unprioritise gw-a
}
ef_answered() {
	local rx
	rx=$(awk '/packets transmitted/ { print $4 }' "$1")
	cat "$1"
	[ -n "$rx" ] && [ "$rx" -ge 900 ]
}

# ---- dpd --------------------------------------------------------------------------

wan_black() {
	router nft -f - <<-'EOF'
	table inet grgwlab_black {
		chain forward {
			type filter hook forward priority 0; policy drop;
		}
	}
	EOF
}
wan_light() { router nft delete table inet grgwlab_black; }

t_dpd() {
	local t0 secs old_a old_b
	need_tunnel || return 0
	old_a=$(sa_spis gw-a)
	old_b=$(sa_spis gw-b)
	wan_black
	t0=$(now_ms)
	# charon's DPD: a liveness check after 10 s of silence, then its
	# retransmissions; then grgw removes the routes into the interface.
	sleep 1
	on vellum-a ping -n -q -c 2 -W 1 "$VELLUM_B4" >/dev/null 2>&1 || true	# traffic makes DPD start
	wait_until 90 status_is a '.peers[0].tunnel != "up"' || true
	secs=$(( ($(now_ms) - t0) / 1000 ))
	check "WAN black: gw-a finds the peer dead (DPD) and says tunnel not up (after ${secs}s)" \
		status_is a '.peers[0].tunnel != "up"'
	check "WAN black: gw-a has no route into $IFNAME any more" no_tunnel_route gw-a
	check "WAN black: TCP connect vellum-a -> vellum-b refused by the gateway (not a timeout)" \
		connect_refused vellum-a "$VELLUM_B4"
	wan_light
	wait_until 120 tunnel_up_both || true
	check "WAN back: the tunnel is up again on both gateways" tunnel_up_both
	check "WAN back: ping vellum-a -> vellum-b" ping_ok vellum-a "$VELLUM_B4"
	# Both gateways may re-initiate at once: two IKE_SAs, each with its
	# pair of SAs, are fine; SAs from before the blackout are not.
	check "WAN back: gw-a holds new SAs only, none from before" wait_until 20 sas_renewed gw-a "$old_a"
	check "WAN back: gw-b holds new SAs only, none from before" wait_until 20 sas_renewed gw-b "$old_b"
}
no_tunnel_route() { ! on "$1" ip route show table "$TABLE" | grep "dev $IFNAME"; }

# ---- charon -----------------------------------------------------------------------

charon_replaced() {
	local now
	now=$(node_pids_named gw-a charon)
	[ -n "$now" ] && [ "$now" != "$1" ]
}

t_charon() {
	local old old_a
	need_tunnel || return 0
	old_a=$(sa_spis gw-a)
	old=$(node_pids_named gw-a charon)
	check "one charon in gw-a" test "$(wc -w <<<"$old")" -eq 1
	[ -n "$old" ] || return 0
	kill -KILL "$old"
	wait_until 30 charon_replaced "$old" || true
	check "gw-a: grgw started a new charon" charon_replaced "$old"
	wait_until 90 tunnel_up_both || true
	check "the tunnel is up again on both gateways" tunnel_up_both
	check "ping vellum-a -> vellum-b" ping_ok vellum-a "$VELLUM_B4"
	check "gw-a: the dead charon's SAs are gone" wait_until 20 sas_renewed gw-a "$old_a"
	check "gw-a: exactly the new charon's $LAB_SAS SAs" wait_until 20 sas_are gw-a
	check "gw-a: exactly six policies, all bound to if_id $IF_ID" \
		wait_until 20 policies_are gw-a 198.18.1.0/24 198.18.2.0/24 2001:db8:a::/64 2001:db8:b::/64
	check "gw-b: exactly $LAB_SAS SAs" wait_until 20 sas_are gw-b
}

# ---- down -------------------------------------------------------------------------

xfrm_empty() {
	local st po
	st=$(on "$1" ip xfrm state)
	po=$(on "$1" ip xfrm policy)
	echo "state: ${st:-none}"
	echo "policy: ${po:-none}"
	[ -z "$st" ] && [ -z "$po" ]
}
no_xfrmi() { ! on "$1" ip -d link show | grep -E -B1 ' xfrm '; }
no_tunnel_routes_at_all() {
	! on "$1" ip route show table all | grep "dev $IFNAME" &&
		! on "$1" ip -6 route show table all | grep "dev $IFNAME"
}
block_stays() {
	on "$1" ip rule show | grep -E "^$((TABLE - 10)):.*blackhole" &&
		on "$1" ip route show table $((TABLE + 1)) | grep -q unreachable
}
nothing_of_grgw() {
	local out
	out=$(on "$1" ip rule show; on "$1" ip -6 rule show; on "$1" ip route show table all; on "$1" ip -6 route show table all)
	echo "$out"
	! grep -Eq "($TABLE|$((TABLE - 10))|$((TABLE + 1))|unreachable|blackhole|$IFNAME)" <<<"$out"
}

t_down() {
	local s
	need_tunnel || return 0
	check "grgw down on gw-a" down_at a
	check "grgw down on gw-b" down_at b
	for s in a b; do
		check "after down, gw-$s: no XFRM state or policy" xfrm_empty "gw-$s"
		check "after down, gw-$s: no xfrm interface" no_xfrmi "gw-$s"
		check "after down, gw-$s: no route into $IFNAME" no_tunnel_routes_at_all "gw-$s"
		check "after down, gw-$s: the fail-closed rule and routes stay" block_stays "gw-$s"
	done
	check "after down: vellum-a -> vellum-b refused by the gateway (not a timeout)" \
		connect_refused vellum-a "$VELLUM_B4"
	check "grgw down --purge on gw-a" down_at a --purge
	check "grgw down --purge on gw-b" down_at b --purge
	for s in a b; do
		check "after purge, gw-$s: no XFRM state or policy" xfrm_empty "gw-$s"
		check "after purge, gw-$s: no rule, route or interface of grgw's" nothing_of_grgw "gw-$s"
		check "after purge, gw-$s: no nftables table" test -z "$(on "gw-$s" nft list tables)"
	done
}

# ---- nat --------------------------------------------------------------------------

# sas_udp_encap NODE: every SA is UDP-encapsulated (espinudp, port 4500)
# (one line per SA is shown: the check's report keeps the last lines only)
sas_udp_encap() {
	local out n e
	out=$(on "$1" ip xfrm state)
	awk '/^src / { if (sa != "") print sa; sa = $2 " > " $4 }
	    /proto esp spi/ { sa = sa " spi " $4 " reqid " $6 }
	    /encap type/ { sa = sa " encap " $3 " " $5 "/" $7 }
	    END { if (sa != "") print sa }' <<<"$out"
	n=$(grep -c '^src ' <<<"$out" || true)
	e=$(grep -c 'encap type espinudp sport 4500 dport 4500' <<<"$out" || true)
	echo "$1: $n SAs (want $LAB_SAS), $e of them in UDP on 4500"
	[ "$n" -eq "$LAB_SAS" ] && [ "$e" -eq "$n" ]
}

# nat_diag: what both ends' charon holds, when the SAs are not as expected
nat_diag() {
	local s
	for s in a b; do
		note "gw-$s: grgw status"
		grgw_at "$s" status 2>&1 | sed 's/^/     | /' | tail -n 25
		show_file "$LAB_RUN_DIR/site-$s/grgw.log" 20
	done
}

t_nat() {
	need_tunnel nat || return 0
	local before=$FAILED
	check "[nat] gw-a: the $LAB_SAS SAs are UDP-encapsulated (NAT detected)" wait_until 20 sas_udp_encap gw-a
	check "[nat] gw-b: the $LAB_SAS SAs are UDP-encapsulated (NAT detected)" wait_until 20 sas_udp_encap gw-b
	[ "$FAILED" -eq "$before" ] || nat_diag
	capture_start nat || { fail "WAN capture"; return 0; }
	check "[nat] ping vellum-a -> vellum-b IPv4" ping_ok vellum-a "$VELLUM_B4"
	check "[nat] ping vellum-a -> vellum-b IPv6" ping_ok vellum-a "$VELLUM_B6"
	capture_stop nat
	check "[nat] wan-a: ESP in UDP to gw-b's public address" \
		pcap_has_n "$WORK/nat-wan-a.pcap" "src $GW_A_WAN and dst $GW_B_PUBLIC and $ESP_ONLY"
	check "[nat] wan-b: ESP in UDP from gw-a's public address" \
		pcap_has_n "$WORK/nat-wan-b.pcap" "src $GW_A_PUBLIC and dst $GW_B_WAN and $ESP_ONLY"
	check "[nat] wan-a: no raw ESP" pcap_none "$WORK/nat-wan-a.pcap" "ip proto 50"
	check_no_cleartext nat
	check "[nat] grgw down --purge on gw-a" down_at a --purge
	check "[nat] grgw down --purge on gw-b" down_at b --purge
	check "[nat] gw-a: no XFRM state or policy left" xfrm_empty gw-a
}

# ---- main -------------------------------------------------------------------------

lab_main "$@"
