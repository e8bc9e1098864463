#!/bin/bash
#
# netlink/ against a real kernel, inside an anonymous network namespace
# (unshare --net: it goes away with this script, nothing can leak).  The
# floating address checks add three named namespaces around it (drawn
# there), which the exit trap removes whatever happens.
#
#   +------------------ anonymous netns --------------------------------+
#   |                                                                   |
#   |   lan0 198.18.1.1/24 2001:db8:a::1/64  ---- lanp   (site A LAN)   |
#   |   wan0 192.0.2.10/24 2001:db8:ffff::10/64 -- wanp  (WAN; default  |
#   |                      routes via .1 / ::1, i.e. out in clear text) |
#   |   tun0 ------------------------------------- tunp  (stands in for |
#   |                      the xfrm interface this kernel cannot make)  |
#   +-------------------------------------------------------------------+
#
# tests/netlink/nltest (the driver) plays `grgw up` / `grgw down` steps;
# the assertions look at what a packet would meet: `ip rule`, `ip route`,
# `ip route get` and the sysctls.  Site B (198.18.2.0/24, 2001:db8:b::/64)
# is the peer.
#
# Usage (as root, from the top of the tree):  tests/netlink/run.sh
#   B=build       where to put the driver binary
#   CC=cc         compiler
#   V=1           show the driver's log on success too
set -u

top=$(cd "$(dirname "$0")/../.." && pwd)
B=${B:-build}
CC=${CC:-cc}

if [ "${1:-}" != "--inside" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "tests/netlink/run.sh: needs root (network namespaces)" >&2
		exit 1
	fi
	cd "$top" || exit 1
	mkdir -p "$B/netlink-test"
	nltest=$B/netlink-test/nltest
	# Built from sources (not libgrgw.a) so that this test does not depend
	# on the state of unrelated modules.
	# shellcheck disable=SC2046
	if ! $CC -std=gnu11 -D_GNU_SOURCE -iquote . -iquote gw -O1 -g \
	    -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes \
	    -Wmissing-prototypes -Wcast-qual -Wno-unused-parameter \
	    $(pkg-config --cflags libnl-3.0 libnl-route-3.0 libnftables libevent) \
	    -o "$nltest" tests/netlink/nltest.c netlink/*.c gw/addr.c gw/err.c gw/log.c \
	    $(pkg-config --libs libnl-3.0 libnl-route-3.0 libnftables libevent); then
		echo "tests/netlink/run.sh: cannot build the driver" >&2
		exit 1
	fi
	exec unshare --net -- "$0" --inside "$top/$nltest"
fi

nltest=$2
tmp=$(mktemp -d /tmp/grgw-netlink-test.XXXXXX) || exit 1
# Named namespaces (the floating address checks) and a capture outlive
# this one unless removed: the trap removes them, whatever happened.
fl_ns=()
cap_pid=
cleanup() {
	local ns
	if [ -n "$cap_pid" ]; then kill "$cap_pid" 2>/dev/null; fi
	for ns in "${fl_ns[@]}"; do ip netns del "$ns" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT

# The record lives in directories that do not exist yet.
rec=$tmp/run/grgw/site-a/kernel.record
log=$tmp/log
pass=0
fail=0

ok()  { pass=$((pass + 1)); echo "ok   $*"; }
nok() { fail=$((fail + 1)); echo "FAIL $*"; }
check() {			# check "what" command...
	local what=$1
	shift
	if "$@"; then ok "$what"; else nok "$what"; fi
}
# Run the driver (inside namespace $NL_IN when set); its log goes to $log
# (shown on failure, or with V=1).
nl() {
	if [ -n "${NL_IN:-}" ]; then
		ip netns exec "$NL_IN" "$nltest" "$rec" "$@" >"$tmp/out" 2>"$log"
	else
		"$nltest" "$rec" "$@" >"$tmp/out" 2>"$log"
	fi
	local rc=$?
	if [ "${V:-0}" = 1 ] || { [ $rc != 0 ] && [ "${NL_EXPECT_FAIL:-0}" = 0 ]; }; then
		sed 's/^/    | /' "$log"
	fi
	return $rc
}
nl_fails() { NL_EXPECT_FAIL=1 nl "$@" && return 1; return 0; }
matches() { grep -Eq -- "$2" <<<"$1"; }	# matches "$text" regex
count() { grep -Ec -- "$2" <<<"$1"; }	# count "$text" regex
sysctl_get() { cat "/proc/sys/$1"; }
# Everything routing-related that a test could leave behind or double.
# The kernel adds IPv6 subnet-router anycast routes while forwarding is on;
# they follow the sysctl, not grgw's objects, so they are left out.
snapshot() {
	ip -4 rule show; ip -6 rule show
	ip -4 route show table all
	ip -6 route show table all | grep -v '^anycast .* proto kernel'
}
# same_as "$expected": the current snapshot equals it (diff shown if not).
same_as() {
	local now
	now=$(snapshot)
	[ "$now" = "$1" ] && return 0
	diff <(echo "$1") <(echo "$now") | sed 's/^/    | /'
	return 1
}
route_get() { ip "$@" 2>&1; }
blocked() {			# blocked "ip args": lookup says unreachable
	local out
	out=$(route_get "$@")
	matches "$out" "No route to host|unreachable"
}

# ---- topology -------------------------------------------------------------
# No duplicate address detection: link-local addresses (and their routes)
# then exist as soon as a link is up, so snapshots do not race with it.
echo 0 >/proc/sys/net/ipv6/conf/default/accept_dad
echo 0 >/proc/sys/net/ipv6/conf/all/accept_dad
ip link set lo up
ip link add wan0 type veth peer name wanp
ip link add lan0 type veth peer name lanp
ip link add tun0 type veth peer name tunp
for l in wan0 wanp lan0 lanp tun0 tunp; do ip link set "$l" up; done
ip addr add 192.0.2.10/24 dev wan0
ip addr add 198.18.1.1/24 dev lan0
ip -6 addr add 2001:db8:ffff::10/64 dev wan0 nodad
ip -6 addr add 2001:db8:a::1/64 dev lan0 nodad
ip route add default via 192.0.2.1 dev wan0
ip -6 route add default via 2001:db8:ffff::1 dev wan0

fwd4=net/ipv4/ip_forward
fwd6=net/ipv6/conf/all/forwarding
rpf=net/ipv4/conf/wan0/rp_filter
init_fwd4=$(sysctl_get $fwd4)
init_fwd6=$(sysctl_get $fwd6)
init_rpf=$(sysctl_get $rpf)
initial=$(snapshot)

# ---- data plane detection and the xfrm interface --------------------------
check "probe runs" nl probe
check "probe: this kernel has no kernel IPsec data plane" \
	matches "$(cat "$tmp/out")" '^0$'
check "probe leaves no interface behind" \
	test "$(ip -o link show | grep -c grgwp)" = 0

check "xfrm interface creation fails" nl_fails xfrmi
check "... and says what the kernel lacks" \
	grep -q "kernel has no xfrm interface support (xfrm_interface module)" "$log"
check "... leaves no grgw0 behind" bash -c '! ip link show grgw0 2>/dev/null'
check "... records nothing" test ! -e "$rec"

# ---- refusing a layout that would not fail closed ------------------------
NL_EXPECT_FAIL=1 "$nltest" -t 100 "$rec" block >/dev/null 2>"$log"
check "table 100 (rules before charon's pref 220) is refused" test $? != 0
check "... with a message naming the table" grep -q "table 100" "$log"
check "... and nothing is installed" same_as "$initial"
NL_EXPECT_FAIL=1 "$nltest" -t 40000 "$rec" block >/dev/null 2>"$log"
check "table 40000 (rules after main) is refused" test $? != 0

# ---- forwarding --------------------------------------------------------------
# Sites with IPv4 prefixes only: the gateway is not made an IPv6 router.
rec4=$tmp/v4only/kernel.record
check "forwarding enable, IPv4-only sites" "$nltest" -4 "$rec4" forward
check "IPv4-only: ip_forward = 1" test "$(sysctl_get $fwd4)" = 1
check "IPv4-only: ipv6 forwarding left at 0" test "$(sysctl_get $fwd6)" = 0
check "IPv4-only: purge puts ip_forward back" "$nltest" -4 "$rec4" cleanup 1
check "IPv4-only: ip_forward = 0 again" test "$(sysctl_get $fwd4)" = 0
check "forwarding enable" nl forward
check "ip_forward = 1" test "$(sysctl_get $fwd4)" = 1
check "ipv6 forwarding = 1" test "$(sysctl_get $fwd6)" = 1
check "wan0 rp_filter = 1" test "$(sysctl_get $rpf)" = 1
check "record directory is 0700" test "$(stat -c %a "$(dirname "$rec")")" = 700
check "record file is 0600" test "$(stat -c %a "$rec")" = 600
check "old values recorded (fail-closed layer)" \
	grep -qx "block sysctl $fwd4 $init_fwd4" "$rec"

# Without the block layer, traffic for site B would leave the WAN in clear.
check "before block: 198.18.2.11 goes out wan0" \
	matches "$(route_get -4 route get 198.18.2.11 from 198.18.1.11 iif lan0)" \
	'via 192\.0\.2\.1 dev wan0'
check "before block: 2001:db8:b::11 goes out wan0" \
	matches "$(route_get -6 route get 2001:db8:b::11 from 2001:db8:a::11 iif lan0)" \
	'via 2001:db8:ffff::1 dev wan0'
check "before block: clear text from site B on wan0 is delivered" \
	matches "$(route_get -4 route get 198.18.1.11 from 198.18.2.11 iif wan0)" \
	'dev lan0'

# ---- block layer ---------------------------------------------------------------
check "block install" nl block
check "rule 4200 blackholes IPv4 from site B on wan0" \
	matches "$(ip -4 rule show pref 4200)" 'from 198\.18\.2\.0/24 iif wan0 blackhole'
check "rule 4200 blackholes IPv6 from site B on wan0" \
	matches "$(ip -6 rule show pref 4200)" 'from 2001:db8:b::/64 iif wan0 blackhole'
check "rule 4211 looks up table 4211 (IPv4)" \
	matches "$(ip -4 rule show pref 4211)" 'from all lookup 4211'
check "rule 4211 looks up table 4211 (IPv6)" \
	matches "$(ip -6 rule show pref 4211)" 'from all lookup 4211'
check "table 4211: unreachable 198.18.2.0/24" \
	matches "$(ip -4 route show table 4211)" '^unreachable 198\.18\.2\.0/24'
check "table 4211: unreachable 2001:db8:b::/64" \
	matches "$(ip -6 route show table 4211)" '^unreachable 2001:db8:b::/64'
check "record holds 6 block rules and routes" \
	test "$(grep -cE '^block (rule|route)' "$rec")" = 6
check "blocked: 198.18.2.11 from lan0 is unreachable" \
	blocked -4 route get 198.18.2.11 from 198.18.1.11 iif lan0
check "blocked: 198.18.2.11 from the gateway itself is unreachable" \
	blocked -4 route get 198.18.2.11
check "blocked: 2001:db8:b::11 from lan0 is unreachable" \
	blocked -6 route get 2001:db8:b::11 from 2001:db8:a::11 iif lan0
check "blocked: 2001:db8:b::11 from the gateway itself is unreachable" \
	blocked -6 route get 2001:db8:b::11
check "blocked: clear text from site B on wan0 is dropped" \
	bash -c '! ip -4 route get 198.18.1.11 from 198.18.2.11 iif wan0 >/dev/null 2>&1'
check "not blocked: other WAN destinations still go out wan0" \
	matches "$(route_get -4 route get 203.0.113.9 from 198.18.1.11 iif lan0)" \
	'via 192\.0\.2\.1 dev wan0'

blocked_snap=$(snapshot)
cp "$rec" "$tmp/rec.blocked"

# ---- idempotency ---------------------------------------------------------------
check "block + forward again" nl block forward
check "second run: ip rule / ip route unchanged" same_as "$blocked_snap"
check "second run: record unchanged" cmp -s "$rec" "$tmp/rec.blocked"
check "second run: still one IPv4 rule at 4200" \
	test "$(count "$(ip -4 rule show)" '^4200:')" = 1

# Someone removes pieces of the block layer: the next run puts them back.
ip -4 route del unreachable 198.18.2.0/24 table 4211
ip -6 rule del pref 4200 iif wan0 from 2001:db8:b::/64 blackhole
check "removed by hand: not blocked any more" \
	bash -c '! ip -6 rule show pref 4200 | grep -q blackhole'
check "block repairs" nl block
check "repaired: ip rule / ip route as before" same_as "$blocked_snap"
check "repaired: record unchanged" cmp -s "$rec" "$tmp/rec.blocked"
check "repair is logged" grep -q "was missing from the kernel, added again" "$log"

# ---- tunnel routes (kernel data plane layout, tun0 standing in) ---------
check "tunnel routes install" nl tunnel-up tun0
check "rule 4210 looks up table 4210 (IPv4)" \
	matches "$(ip -4 rule show pref 4210)" 'from all lookup 4210'
check "rule 4210 looks up table 4210 (IPv6)" \
	matches "$(ip -6 rule show pref 4210)" 'from all lookup 4210'
check "table 4210: 198.18.2.0/24 dev tun0" \
	matches "$(ip -4 route show table 4210)" '^198\.18\.2\.0/24 dev tun0'
check "table 4210: 2001:db8:b::/64 dev tun0" \
	matches "$(ip -6 route show table 4210)" '^2001:db8:b::/64 dev tun0'
check "tunnel up: 198.18.2.11 from lan0 goes into the tunnel" \
	matches "$(route_get -4 route get 198.18.2.11 from 198.18.1.11 iif lan0)" 'dev tun0'
check "tunnel up: 2001:db8:b::11 from lan0 goes into the tunnel" \
	matches "$(route_get -6 route get 2001:db8:b::11 from 2001:db8:a::11 iif lan0)" 'dev tun0'
tunnel_snap=$(snapshot)
cp "$rec" "$tmp/rec.tunnel"
check "tunnel routes install again" nl tunnel-up tun0
check "tunnel routes twice: ip rule / ip route unchanged" same_as "$tunnel_snap"
check "tunnel routes twice: record unchanged" cmp -s "$rec" "$tmp/rec.tunnel"
check "tunnel routes remove" nl tunnel-down tun0
check "tunnel down: table 4210 empty" test -z "$(ip -4 route show table 4210; ip -6 route show table 4210)"
check "tunnel down: 198.18.2.11 unreachable again" \
	blocked -4 route get 198.18.2.11 from 198.18.1.11 iif lan0
check "tunnel down: record lost the routes" \
	bash -c "! grep -q '^run route' '$rec'"
check "tunnel routes install (for cleanup)" nl tunnel-up tun0

# ---- cleanup without purge: the block layer stays -----------------------
check "cleanup 0" nl cleanup 0
# Forwarding stays on: without it blocked packets would be dropped
# silently instead of answered with ICMP unreachable.
check "sysctl ip_forward kept on (fail fast)" test "$(sysctl_get $fwd4)" = 1
check "sysctl ipv6 forwarding kept on" test "$(sysctl_get $fwd6)" = 1
check "sysctl wan0 rp_filter kept strict" test "$(sysctl_get $rpf)" = 1
check "run objects gone: no rule 4210" \
	test -z "$(ip -4 rule show pref 4210; ip -6 rule show pref 4210)"
check "run objects gone: table 4210 empty" \
	test -z "$(ip -4 route show table 4210; ip -6 route show table 4210)"
check "block layer kept: ip rule / ip route as when blocked" \
	same_as "$blocked_snap"
check "record holds only the block layer" \
	test "$(grep -v '^#' "$rec")" = "$(grep '^block ' "$tmp/rec.blocked")"
check "after down: 198.18.2.11 still unreachable" \
	blocked -4 route get 198.18.2.11
check "cleanup 0 again changes nothing" nl cleanup 0
check "... still blocked" same_as "$blocked_snap"

# ---- adoption of leftovers and of a wrong route in our slot ------------
check "cleanup 1 (purge)" nl cleanup 1
ip -4 rule add pref 4200 iif wan0 from 198.18.2.0/24 blackhole
ip -4 route add 198.18.2.0/24 dev lan0 table 4211
check "block over leftovers" nl block
check "leftover rule adopted (logged)" grep -q "already in the kernel, adopted" "$log"
check "foreign route in our slot replaced (logged)" grep -q "replaced by this route and adopted" "$log"
check "adopted: ip rule / ip route exactly as when blocked" \
	same_as "$blocked_snap"
check "adopted: record as when blocked" \
	test "$(grep -E '^block (rule|route)' "$rec")" = "$(grep -E '^block (rule|route)' "$tmp/rec.blocked")"

# ---- a record line we cannot read is kept and makes down fail -----------
echo "block rule4 pref 4200 iif wan0 frm 198.18.2.0/24 blackhole" >>"$rec"
check "unreadable line: cleanup 1 reports failure" nl_fails cleanup 1
check "... naming the line" grep -Eq "kernel.record:[0-9]+: .*'frm'" "$log"
check "... the rest is removed" \
	test -z "$(ip -4 rule show pref 4200; ip -6 rule show pref 4211; ip -4 route show table 4211)"
check "... the line is kept in the record" grep -q " frm " "$rec"
check "count reports it in the total only" nl count
check "... 1 0 0" test "$(cat "$tmp/out")" = "1 0 0"
sed -i '/ frm /d' "$rec"
check "cleanup 1 after fixing the record by hand" nl cleanup 1

# ---- GRO on a LAN interface (switched off while shaping) -----------------
gro_is() { ethtool -k "$1" | grep -q "^generic-receive-offload: $2"; }
ethtool -K lan0 gro on
ethtool -K lanp gro off
check "gro-off lan0" nl gro-off lan0
check "... ethtool says GRO is off on lan0" gro_is lan0 off
check "... recorded as on, to restore" grep -qx "run offload lan0 gro on" "$rec"
check "gro-off lan0 again" nl gro-off lan0
check "... still one record line, still 'on' to restore" \
	test "$(grep -c "offload lan0" "$rec")" = 1 -a "$(grep -c "offload lan0 gro on" "$rec")" = 1
check "gro-off lanp (off already): nothing recorded" nl gro-off lanp
check "... no line for lanp" test "$(grep -c "offload lanp" "$rec")" = 0
check "gro-off on a missing interface fails" nl_fails gro-off nosuch0
check "... saying why" grep -q "gro-off: cannot read its GRO setting: No such device" "$log"
check "cleanup 0 turns GRO on again" nl cleanup 0
check "... ethtool says GRO is on on lan0" gro_is lan0 on
check "... lanp still off" gro_is lanp off
check "... the line is gone" test ! -e "$rec" -o "$(grep -c offload "$rec" 2>/dev/null)" = 0
ip link add gro0 type veth peer name grop	# left down: no routes
ethtool -K gro0 gro on
nl gro-off gro0 >/dev/null 2>&1
check "... recorded for gro0" grep -qx "run offload gro0 gro on" "$rec"
ip link del gro0
check "cleanup 0 with the interface gone: fine" nl cleanup 0
check "... the line is gone" test ! -e "$rec" -o "$(grep -c offload "$rec" 2>/dev/null)" = 0

# The devices below a LAN interface, where GRO really runs.  All left
# down: no routes appear.
ip link add brg type bridge
ip link add p1 type veth peer name p1peer
ip link add p2 type veth peer name p2peer
ip link set p1 master brg
ip link set p2 master brg
# VLANs and bonds where the kernel has them; macvlan stacks the same way.
ip link add mv1 link p2peer type macvlan
ip link add v100 link p2peer type vlan id 100 2>/dev/null
ip link add bond9 type bond 2>/dev/null && ip link set p1peer master bond9
check "gro-devs of a plain veth: itself only (not its peer)" nl gro-devs lanp
check "... lanp" test "$(cat "$tmp/out")" = "lanp"
check "gro-devs of a bridge" nl gro-devs brg
check "... the bridge, then its ports" test "$(cat "$tmp/out")" = "brg p1 p2"
check "gro-devs of a macvlan" nl gro-devs mv1
check "... the macvlan, then the device below it" test "$(cat "$tmp/out")" = "mv1 p2peer"
if ip link show v100 >/dev/null 2>&1; then
	check "gro-devs of a VLAN" nl gro-devs v100
	check "... the VLAN, then the device below it" test "$(cat "$tmp/out")" = "v100 p2peer"
fi
if ip link show bond9 >/dev/null 2>&1; then
	check "gro-devs of a bond" nl gro-devs bond9
	check "... the bond, then its port" test "$(cat "$tmp/out")" = "bond9 p1peer"
fi
check "gro-devs of a missing interface fails" nl_fails gro-devs nosuch0
ip link del brg
ip link del p1
ip link del p2
ip link del bond9 2>/dev/null

# ---- floating addresses (a gateway pair's) ---------------------------------
#
#   ns obs                  ns h1                  ns h2
#   eth0 198.18.0.100       eth0 (a plain          br0 (a bridge) over
#        2001:db8:f::100    interface)             eth0 (its port)
#     |                       |                      |
#    fo --------------------- f1 ------------------- f2   ports of fsw, a
#                                                         bridge here
#
# 198.18.0.10/24 and 2001:db8:f::10/64 float between h1 and h2; obs is a
# node of the site that talked to the holder and has it in its neighbour
# cache.  Each move (del on the old holder, add and announce on the new)
# must repoint obs's entry at the new holder's MAC without obs sending
# anything, and the capture on obs's port must hold exactly the
# announcement.
ns_o=grgw-fl$$-obs ns_1=grgw-fl$$-h1 ns_2=grgw-fl$$-h2
fl_ns=("$ns_o" "$ns_1" "$ns_2")
mac_o=02:47:00:00:00:01 mac_1=02:47:00:00:01:01
mac_2=02:47:00:00:02:01 mac_br=02:47:00:00:02:b0
fv4=198.18.0.10 fv6=2001:db8:f::10
o()  { ip netns exec "$ns_o" "$@"; }
h1() { ip netns exec "$ns_1" "$@"; }
h2() { ip netns exec "$ns_2" "$@"; }
in_ns() { local ns=$1; shift; NL_IN=$ns nl "$@"; }
in_ns_fails() { local ns=$1; shift; NL_IN=$ns NL_EXPECT_FAIL=1 nl "$@" && return 1; return 0; }
reaches() { o ping -q -c 1 -W 5 "$1" >/dev/null; }	# obs reaches ADDR
out_is() { [ "$(tr '\n' ' ' <"$tmp/out")" = "$1" ]; }
wait_for() {			# wait_for command...: up to 10 s for it to pass
	local _
	for _ in $(seq 100); do "$@" && return 0; sleep 0.1; done
	return 1
}
# An address line of `ip addr` as is (IPv6: "... nodad", never "tentative").
addr_line() { "$1" ip -o addr show dev "$2" | grep -F " $3/"; }
v6_usable() {			# v6_usable HOLDER ADDR: once, nodad, not tentative
	local l
	l=$(addr_line "$1" eth0 "$2")
	[ "$(grep -c . <<<"$l")" = 1 ] && grep -q nodad <<<"$l" &&
		! grep -q tentative <<<"$l"
}
neigh_mac() { o ip neigh show "$1" dev eth0 | grep -o 'lladdr [0-9a-f:]*' | cut -d' ' -f2; }
# What obs would send to find a MAC (ARP, neighbour solicitations) and
# what announces one (ARP, neighbour advertisements), seen on obs's port.
nd_filter='arp or (icmp6 and (ip6[40] == 135 or ip6[40] == 136))'
cap_start() {			# cap_start NAME: capture into $tmp/NAME.pcap
	tcpdump -i fo -n -U --immediate-mode -Z root -w "$tmp/$1.pcap" \
		"$nd_filter" >"$tmp/$1.log" 2>&1 </dev/null &
	cap_pid=$!
	wait_for grep -q 'listening on' "$tmp/$1.log"
}
cap_frames() { tcpdump -r "$tmp/$1.pcap" -nn 2>/dev/null | grep -c .; }
cap_at_least() { [ "$(cap_frames "$1")" -ge "$2" ]; }
cap_stop() {			# cap_stop NAME N: once N frames are in, stop
	wait_for cap_at_least "$1" "$2"
	sleep 0.3		# room for a frame too many, for "exactly"
	kill -INT "$cap_pid" 2>/dev/null
	wait "$cap_pid" 2>/dev/null
	cap_pid=
}
cap_text() { tcpdump -r "$tmp/$1.pcap" -nn -e -vv 2>/dev/null; }
cap_hex() {			# the bytes of the frames, as one hex string
	tcpdump -r "$tmp/$1.pcap" -nn -xx 2>/dev/null |
		sed -n 's/^[[:space:]]*0x[0-9a-f]*:[[:space:]]*//p' | tr -d ' \n'
}
cap_show() { cap_text "$1" | sed 's/^/    | /'; }
# The one frame expected: a gratuitous ARP request from MAC for $fv4
# (sender = target = the address, target MAC zero), to the broadcast MAC.
garp_hex() {
	local m=${1//:/}
	echo "ffffffffffff${m}0806""0001080006040001${m}c612000a""000000000000c612000a"
}

ok_frames() {			# ok_frames NAME N what: exactly N frames
	if [ "$(cap_frames "$1")" = "$2" ]; then ok "$3"; else nok "$3"; cap_show "$1"; fi
}

for ns in "${fl_ns[@]}"; do
	ip netns add "$ns"
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 \
		net.ipv6.conf.default.accept_dad=0
	ip -n "$ns" link set lo up
done
ip link add fsw type bridge mcast_snooping 0
ip link set fsw up
ip link add fo type veth peer name eth0 netns "$ns_o"
ip link add f1 type veth peer name eth0 netns "$ns_1"
ip link add f2 type veth peer name eth0 netns "$ns_2"
for l in fo f1 f2; do ip link set "$l" master fsw up; done
ip -n "$ns_o" link set eth0 address $mac_o up
ip -n "$ns_1" link set eth0 address $mac_1 up
ip -n "$ns_2" link set eth0 address $mac_2
ip -n "$ns_2" link add br0 address $mac_br type bridge mcast_snooping 0
ip -n "$ns_2" link set eth0 master br0 up
ip -n "$ns_2" link set br0 up
ip -n "$ns_2" link add down0 type veth peer name down0p	# left down
ip -n "$ns_o" addr add 198.18.0.100/24 dev eth0
ip -n "$ns_o" addr add 2001:db8:f::100/64 dev eth0 nodad

# Add, has, del: each twice, the second time a no-op.
check "float-add IPv4 on h1" in_ns "$ns_1" float-add eth0 $fv4/24 float-add eth0 $fv4/24
check "... 1 (added), then 0 (there already)" out_is "1 0 "
check "... ip addr shows it once" \
	test "$(addr_line h1 eth0 $fv4 | grep -c "inet $fv4/24 scope global")" = 1
check "float-add IPv6 on h1" in_ns "$ns_1" float-add eth0 $fv6/64 float-add eth0 $fv6/64
check "... 1, then 0" out_is "1 0 "
check "... ip addr shows it once, nodad, not tentative" v6_usable h1 $fv6
check "float-has both" in_ns "$ns_1" float-has eth0 $fv4 float-has eth0 $fv6
check "... 1 1" out_is "1 1 "
check "float-add with another prefix length: kept" in_ns "$ns_1" float-add eth0 $fv4/32
check "... 0" out_is "0 "
check "... still only the /24" test "$(addr_line h1 eth0 $fv4 | grep -c .)" = 1
check "... and says so" grep -q "is there with prefix length 24: kept" "$log"
check "float-del both, twice" in_ns "$ns_1" float-del eth0 $fv4 float-del eth0 $fv4 \
	float-del eth0 $fv6 float-del eth0 $fv6
check "... 1 0 1 0" out_is "1 0 1 0 "
check "... ip addr shows neither" test -z "$(addr_line h1 eth0 $fv4; addr_line h1 eth0 $fv6)"
check "float-has both: 0 0" in_ns "$ns_1" float-has eth0 $fv4 float-has eth0 $fv6
check "... 0 0" out_is "0 0 "
check "float-del on a missing interface: nothing to remove" \
	in_ns "$ns_1" float-del nosuch0 $fv4
check "... 0" out_is "0 "
check "float-add on a missing interface fails" in_ns_fails "$ns_1" float-add nosuch0 $fv4/24
check "... saying so" grep -q "float-add: nosuch0: no such interface" "$log"
check "float-has on a missing interface fails" in_ns_fails "$ns_1" float-has nosuch0 $fv4

# An IPv6 address someone added with duplicate address detection, still
# tentative: not announced, and float-add makes it usable.
h1 sysctl -qw net.ipv6.conf.eth0.accept_dad=1 net.ipv6.conf.eth0.dad_transmits=100
h1 ip addr add 2001:db8:f::20/64 dev eth0
check "a tentative address (set up)" \
	grep -q tentative <<<"$(addr_line h1 eth0 2001:db8:f::20)"
check "announce of a tentative address fails" \
	in_ns_fails "$ns_1" announce eth0 2001:db8:f::20
check "... saying so" grep -q "2001:db8:f::20 is still tentative: not announced" "$log"
check "float-add over it" in_ns "$ns_1" float-add eth0 2001:db8:f::20/64
check "... 1 (added anew)" out_is "1 "
check "... nodad, not tentative" v6_usable h1 2001:db8:f::20
check "... and gone again" in_ns "$ns_1" float-del eth0 2001:db8:f::20
h1 sysctl -qw net.ipv6.conf.eth0.accept_dad=0 net.ipv6.conf.eth0.dad_transmits=1

# Announcements that cannot be made.
check "announce on a missing interface fails" in_ns_fails "$ns_2" announce nosuch0 $fv4
check "... saying so" grep -q "announce: nosuch0: no such interface" "$log"
check "announce on lo fails" in_ns_fails "$ns_2" announce lo $fv4
check "... no MAC address" grep -q "announce: lo: no Ethernet MAC address to announce" "$log"
h2 ip addr add $fv4/24 dev down0
check "announce on an interface that is down fails" in_ns_fails "$ns_2" announce down0 $fv4
check "... saying so" grep -q "announce: down0: interface is down" "$log"
h2 ip addr del $fv4/24 dev down0
check "announce of an address this host does not hold fails (IPv4)" \
	in_ns_fails "$ns_2" announce br0 $fv4
check "... saying so" grep -q "announce: br0: $fv4 is not an address of this host" "$log"
check "announce of an address this host does not hold fails (IPv6)" \
	in_ns_fails "$ns_2" announce br0 $fv6

# h1 holds the addresses; obs talks to it.
check "h1 takes the addresses" in_ns "$ns_1" float-add eth0 $fv4/24 float-add eth0 $fv6/64
check "obs reaches $fv4" reaches $fv4
check "obs reaches $fv6" reaches $fv6
check "obs: $fv4 is at h1's MAC" test "$(neigh_mac $fv4)" = $mac_1
check "obs: $fv6 is at h1's MAC" test "$(neigh_mac $fv6)" = $mac_1

# IPv4 to h2 (a bridge).
cap_start v4 || nok "tcpdump starts on fo"
check "move IPv4: del on h1" in_ns "$ns_1" float-del eth0 $fv4
check "move IPv4: add and announce on h2's br0" \
	in_ns "$ns_2" float-add br0 $fv4/24 announce br0 $fv4
cap_stop v4 1
check "obs: $fv4 is now at h2's br0 MAC" test "$(neigh_mac $fv4)" = $mac_br
ok_frames v4 1 "capture: exactly one frame (obs sent nothing)"
check "... the gratuitous ARP: from br0's MAC to broadcast, who-has $fv4 tell $fv4" \
	matches "$(cap_text v4)" "^[0-9:.]+ $mac_br > ff:ff:ff:ff:ff:ff, ethertype ARP .* Request who-has $fv4 tell $fv4,"
check "... byte for byte (sender MAC br0's, target MAC zero)" \
	test "$(cap_hex v4)" = "$(garp_hex $mac_br)"

# IPv6 to h2.
cap_start v6 || nok "tcpdump starts on fo"
check "move IPv6: del on h1" in_ns "$ns_1" float-del eth0 $fv6
check "move IPv6: add and announce on h2's br0" \
	in_ns "$ns_2" float-add br0 $fv6/64 announce br0 $fv6
cap_stop v6 1
check "obs: $fv6 is now at h2's br0 MAC" test "$(neigh_mac $fv6)" = $mac_br
ok_frames v6 1 "capture: exactly one frame (obs sent nothing)"
na=$(cap_text v6)
check "... from br0's MAC to 33:33:00:00:00:01, hop limit 255" \
	matches "$na" "^[0-9:.]+ $mac_br > 33:33:00:00:00:01, ethertype IPv6 .*hlim 255,"
check "... from $fv6 to ff02::1, a neighbour advertisement for $fv6" \
	matches "$na" "\) $fv6 > ff02::1: \[icmp6 sum ok\] ICMP6, neighbor advertisement, length 32, tgt is $fv6, Flags \[override\]$"
check "... target link-layer address: br0's MAC" \
	matches "$na" "destination link-address option \(2\), length 8 \(1\): $mac_br$"

# Both back to h1 (a plain interface), which now routes IPv6: the
# advertisement says so (router flag).
h1 sysctl -qw net.ipv6.conf.eth0.forwarding=1
cap_start back || nok "tcpdump starts on fo"
check "move back: del on h2" in_ns "$ns_2" float-del br0 $fv4 float-del br0 $fv6
check "move back: add and announce on h1" in_ns "$ns_1" float-add eth0 $fv4/24 \
	float-add eth0 $fv6/64 announce eth0 $fv4 announce eth0 $fv6
cap_stop back 2
check "obs: $fv4 is at h1's MAC again" test "$(neigh_mac $fv4)" = $mac_1
check "obs: $fv6 is at h1's MAC again" test "$(neigh_mac $fv6)" = $mac_1
ok_frames back 2 "capture: exactly two frames"
back=$(cap_text back)
check "... the gratuitous ARP from h1's MAC" \
	matches "$back" "^[0-9:.]+ $mac_1 > ff:ff:ff:ff:ff:ff, ethertype ARP .* Request who-has $fv4 tell $fv4,"
check "... the advertisement from h1's MAC, router and override flags" \
	matches "$back" "^[0-9:.]+ $mac_1 > 33:33:00:00:00:01, .* $fv6 > ff02::1: .* tgt is $fv6, Flags \[router, override\]$"
h1 sysctl -qw net.ipv6.conf.eth0.forwarding=0

# To h2 again, announced on the bridge's port (the address stays on br0):
# the frames leave from the port, with its MAC.
cap_start port || nok "tcpdump starts on fo"
check "move to a bridge port: del on h1" in_ns "$ns_1" float-del eth0 $fv4 float-del eth0 $fv6
check "move to a bridge port: add on h2's br0, announce on its port eth0" \
	in_ns "$ns_2" float-add br0 $fv4/24 float-add br0 $fv6/64 \
	announce eth0 $fv4 announce eth0 $fv6
cap_stop port 2
check "obs: $fv4 is at h2's eth0 MAC" test "$(neigh_mac $fv4)" = $mac_2
check "obs: $fv6 is at h2's eth0 MAC" test "$(neigh_mac $fv6)" = $mac_2
ok_frames port 2 "capture: exactly two frames"
check "... both from eth0's MAC" \
	test "$(cap_text port | grep -cE "^[0-9:.]+ $mac_2 > ")" = 2
check "obs reaches $fv4 at h2" reaches $fv4
check "obs reaches $fv6 at h2" reaches $fv6

# The pair's hold kept by the kernel (floatguard.c), on h2, which has both
# addresses: nothing in the hold set, and h2 answers for neither; held,
# it does; let go, or run out, and it does not any more.  Its own record.
grec=$tmp/guard/kernel.record
g2() { NL_IN=$ns_2 nl_rec "$grec" "$@"; }
nl_rec() { local r=$1; shift; rec=$r nl "$@"; }
silent() { o ip neigh flush dev eth0; ! o ping -q -c 1 -W 1 "$1" >/dev/null; }
answers() { o ip neigh flush dev eth0; reaches "$1"; }
held_sets() { h2 nft list set inet grgw-pair "$1" | grep -oE '[0-9a-f.:]+ timeout' | awk '{ print $1 }' | sort | tr '\n' ' '; }
NL_EXPECT_FAIL=1 g2 guard-hold 1000 2 $fv4 $fv6
check "a hold without the tables fails, saying why" grep -q "guard-hold: No such file or directory" "$log"
check "hold tables installed on h2 (inet and arp grgw-pair)" g2 guard-install 2 $fv4 $fv6
check "... recorded as run objects" \
	grep -qx "run nft arp grgw-pair" "$grec"
check "nothing held: h2 does not answer for $fv4" silent $fv4
check "... nor for $fv6" silent $fv6
check "held for a minute, and a check of the tables right after: no change" \
	g2 guard-install 2 $fv4 $fv6 guard-hold 60000 2 $fv4 $fv6 nft-verify-all
check "... 0 tables put back" out_is "0 "
check "the hold sets name both" test "$(held_sets held4)$(held_sets held6)" = "$fv4 $fv6 "
check "held: obs reaches $fv4 at h2" answers $fv4
check "held: obs reaches $fv6 at h2" answers $fv6
# Changed behind grgw's back (its drop rules flushed, so h2 would answer
# unheld): a check after routing events alone leaves it (listing it at
# every route event costs a slow host too much); one after an nftables
# event puts the rules back, with the hold sets empty, as the daemon
# then holds again.
check "a hold table changed behind grgw's back: left by a routing-only check" \
	g2 guard-install 2 $fv4 $fv6 guard-hold 60000 2 $fv4 $fv6 \
	nft "flush chain inet grgw-pair prerouting" nft-verify
check "... 0 tables put back" out_is "0 "
check "... put back by a check after an nftables change" \
	g2 guard-install 2 $fv4 $fv6 guard-hold 60000 2 $fv4 $fv6 \
	nft "flush chain inet grgw-pair prerouting" \
	nft "flush chain arp grgw-pair output" \
	nft-verify-all
check "... both tables put back" out_is "2 "
check "... the prerouting drops are back (IPv4 and IPv6)" \
	test "$(h2 nft list chain inet grgw-pair prerouting | grep -c 'counter.* drop')" = 2
check "... the ARP drop is back" \
	test "$(h2 nft list chain arp grgw-pair output | grep -c 'counter.* drop')" = 1
check "... the hold sets empty: h2 does not answer for $fv4" silent $fv4
check "... nor for $fv6" silent $fv6
check "held again" g2 guard-hold 60000 2 $fv4 $fv6
check "... obs reaches $fv4 at h2" answers $fv4
check "let go (hold 0)" g2 guard-hold 0 2 $fv4 $fv6
check "let go: no answer for $fv4" silent $fv4
check "let go: no answer for $fv6" silent $fv6
check "held for 300 ms" g2 guard-hold 300 2 $fv4 $fv6
sleep 1
check "run out (the kernel's own timeout): no answer for $fv4" silent $fv4
check "run out: no answer for $fv6" silent $fv6
check "cleanup removes both tables" g2 cleanup 0
check "... none left on h2" bash -c "! ip netns exec $ns_2 nft list tables | grep -q grgw-pair"

# ---- a handover's drain ------------------------------------------------------
# h1 has let the addresses go; obs still sends it what is for the peer
# prefixes 198.18.2.0/24 and 2001:db8:b::/64.  Draining, h1 sends that
# straight back out to h2 (the partner, 198.18.0.2 on the segment), both
# families, by h2's MAC address and with its own as the source; not
# draining, it does not.
h1 ip addr add 198.18.0.1/24 dev eth0
h1 ip addr add 2001:db8:f::1/64 dev eth0 nodad
h2 ip addr add 198.18.0.2/24 dev br0
o ip route add 198.18.2.0/24 via 198.18.0.1
o ip -6 route add 2001:db8:b::/64 via 2001:db8:f::1
h2 nft -f - <<NFT
table inet grgwtest_seen {
	chain pre {
		type filter hook prerouting priority -400; policy accept;
		ether saddr $mac_1 ip daddr 198.18.2.5 udp dport 9 counter
		ether saddr $mac_1 ip6 daddr 2001:db8:b::5 udp dport 9 counter
	}
}
NFT
# seen_at_h2 4|6: what reached h2 from h1's MAC address for the peer
seen_at_h2() {
	h2 nft list chain inet grgwtest_seen pre |
		sed -n "/$([ "$1" = 4 ] && echo 'ip daddr' || echo 'ip6 daddr')/s/.*packets \([0-9]*\).*/\1/p"
}
seen_is() { [ "$(seen_at_h2 "$1")" = "$2" ]; }	# seen_is 4|6 N
drec=$tmp/drain.rec
d1() { NL_IN=$ns_1 nl_rec "$drec" "$@"; }
send_udp() {
	o python3 -c 'import socket
for a, f in (("198.18.2.5", socket.AF_INET), ("2001:db8:b::5", socket.AF_INET6)):
    s = socket.socket(f, socket.SOCK_DGRAM)
    [s.sendto(b"x", (a, 9)) for _ in range(5)]'
}
check "drain table installed on h1's eth0" d1 drain-install eth0
check "... its rules send both peer prefixes back out of eth0, by the maps' MAC addresses" \
	test "$(h1 nft list chain netdev grgw-drain ingress | grep -cE '(ip daddr 198.18.2.0/24|ip6 daddr 2001:db8:b::/64) ether daddr set iifname map @partner_mac ether saddr set iifname map @own_mac .*fwd to "eth0"')" = 2
check "... recorded as a run object" grep -qx "run nft netdev grgw-drain" "$drec"
send_udp
sleep 0.5
check "not draining: nothing of obs's reaches h2" test "$(seen_at_h2 4)/$(seen_at_h2 6)" = 0/0
check "drain-on towards an address h1 has no neighbour entry for fails" \
	in_ns_fails "$ns_1" drain-on eth0 198.18.0.77
check "... saying so" grep -q "drain-on: eth0: no neighbour entry for 198.18.0.77" "$log"
h1 ping -c 1 -W 2 198.18.0.2 >/dev/null	# as the heartbeats would
check "drain on, towards h2" d1 drain-on eth0 198.18.0.2
check "... the maps hold h2's MAC address and h1's" \
	bash -c "ip netns exec $ns_1 nft list table netdev grgw-drain | grep -q '\"eth0\" : $mac_br' &&
		ip netns exec $ns_1 nft list table netdev grgw-drain | grep -q '\"eth0\" : $mac_1'"
send_udp
check "draining: obs's 5 IPv4 packets for the peer prefix reach h2, from h1's MAC address" \
	wait_for seen_is 4 5
check "... and its 5 IPv6 packets" wait_for seen_is 6 5
check "drain off" d1 drain-off eth0
check "... the maps empty" \
	bash -c "! ip netns exec $ns_1 nft list table netdev grgw-drain | grep -q '\"eth0\" :'"
send_udp
sleep 0.5
check "off again: no more reach h2" test "$(seen_at_h2 4)/$(seen_at_h2 6)" = 5/5
check "cleanup removes the drain table" d1 cleanup 0
check "... none left on h1" bash -c "! ip netns exec $ns_1 nft list tables | grep -q grgw-drain"

# The veths first, from here: a namespace goes away in the background.
for l in fo f1 f2 fsw; do ip link del "$l"; done
for ns in "${fl_ns[@]}"; do ip netns del "$ns"; done
fl_ns=()
check "floating: no namespace left" \
	bash -c "! ip netns list | grep -q grgw-fl$$-"
check "floating: no interface left here" \
	test -z "$(ip -o link show | grep -E ': (fo|f1|f2|fsw)[@:]')"

# ---- refusing while the link is down ---------------------------------------
# The table's rules stay from the start; refusing starts and stops by its
# set's elements (no ruleset read), and what a changed table loses is
# what the daemon sets again.
refusing_set() { nft list set inet grgw-refuse refusing 2>/dev/null | tr -d '\n\t ' | sed -n 's/.*elements={\([^}]*\)}.*/\1/p'; }
check "refuse table installed, refusing nothing" nl refuse-install
check "... its rules match the LAN interfaces in its set, per peer prefix" \
	test "$(nft list chain inet grgw-refuse prerouting | grep -c 'iifname @refusing .*daddr .* reject')" = 4
check "... the set is empty" test -z "$(refusing_set)"
check "... recorded as a run object" grep -qx "run nft inet grgw-refuse" "$rec"
check "refusing on" nl refuse-on
check "... the set holds lan0" test "$(refusing_set)" = '"lan0"'
check "... on again: still just lan0" nl refuse-on
check "... (once)" test "$(refusing_set)" = '"lan0"'
check "refusing off" nl refuse-off
set_listed() { nft list set inet grgw-refuse refusing >"$tmp/set" && ! grep -q elements "$tmp/set"; }
check "... the set is empty, the table stays" set_listed
nft delete table inet grgw-refuse
check "table deleted behind grgw's back: refusing on puts it back" nl refuse-on
check "... with lan0 in its set" test "$(refusing_set)" = '"lan0"'
check "... and its rules" \
	test "$(nft list chain inet grgw-refuse prerouting | grep -c 'iifname @refusing')" = 4
check "cleanup 1 removes it" nl cleanup 1
check "... no refuse table left" bash -c '! nft list tables | grep -q grgw-refuse'

# ---- nothing left ----------------------------------------------------------
check "purged: no grgw rules" \
	test -z "$(ip -4 rule show | grep -E '^42(00|10|11):'; ip -6 rule show | grep -E '^42(00|10|11):')"
check "purged: no routes in tables 4210/4211" \
	test -z "$(ip route show table all | grep -E 'table 421[01]'; ip -6 route show table all | grep -E 'table 421[01]')"
check "purged: ip rule / ip route exactly as at the start" same_as "$initial"
check "purged: sysctls as at the start" \
	test "$(sysctl_get $fwd4)/$(sysctl_get $fwd6)/$(sysctl_get $rpf)" = "$init_fwd4/$init_fwd6/$init_rpf"
check "purged: record file removed" test ! -e "$rec"
check "purged: no temporary files next to it" \
	test -z "$(ls -A "$(dirname "$rec")")"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
