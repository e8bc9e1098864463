#!/bin/bash
#
# netlink/ against a real kernel, inside an anonymous network namespace
# (unshare --net: it goes away with this script, nothing can leak).
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
cleanup() { rm -rf "$tmp"; }
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
# Run the driver; its log goes to $log (shown on failure, or with V=1).
nl() {
	"$nltest" "$rec" "$@" >"$tmp/out" 2>"$log"
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
