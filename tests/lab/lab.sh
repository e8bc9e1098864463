#!/bin/bash
#
# Two sites and a WAN in network namespaces (all named grgwlab-*).
#
#   site A: 198.18.1.0/24, 2001:db8:a::/64          site B: 198.18.2.0/24, 2001:db8:b::/64
#
#   vellum-a                                                                  vellum-b
#   lan0 .11 ::11 --+                                                    +-- lan0 .11 ::11
#                   |   gw-a                 router                gw-b  |
#                   |  +--------+        +------------+        +--------+|
#                   +--| lan0   |  wan0  |wan-a  wan-b|  wan0  |   lan0 |+
#                   |  | .1 ::1 |--------|.1        .1|--------| .1 ::1 ||
#                   |  | grgw   |        | forwards,  |        |   grgw ||
#   sprout-a        |  +--------+        | (1:1 NAT)  |        +--------+|  sprout-b
#   lan0 .12 ::12 --+  192.0.2.10        +------------+     198.51.100.10+-- lan0 .12 ::12
#
#   lan0 is a bridge in the gateway's namespace; the nodes' lan0 are veths
#   plugged into it, with default routes (IPv4 and IPv6) via the gateway.
#   Names and addresses come from plan.env, which the VM lab (vagrant/)
#   reads as well.
#   WAN is IPv4 only: 192.0.2.0/24 (A side) and 198.51.100.0/24 (B side),
#   the gateways' default route is the router.  The router knows no site
#   prefix: whatever reaches it from a LAN is either tunnelled or a leak.
#
#   --nat: the router presents gw-a as 203.0.113.10 and gw-b as 203.0.113.20
#   (DNAT in prerouting, SNAT in postrouting) and drops anything sent to a
#   gateway's own address from the other side, so the gateways must use the
#   public ones.
#
# --pair: a gateway pair per site instead of gw-a and gw-b (the lab above
# stays as it is without --pair).  Site A; site B mirrors it (gw-b1, gw-b2,
# sw-b, etcd-b; 198.18.2.x, 2001:db8:b::x, 198.51.100.x, the router's wan-b):
#
#                  sw-a: bridge lan     gw-a1      sw-a: bridge wan
#   vellum-a             |          +----------+         |
#   lan0 .11 ::11 -------+----------| lan0 wan0|---------+
#                        |          | .2   .11 |         |         router
#   sprout-a             |          | ::2      |         |       +--------+
#   lan0 .12 ::12 -------+          +----------+         +-------| wan-a  |
#                        |              gw-a2            |       | .1     |
#   etcd-a               |          +----------+         |       +--------+
#   lan0 .5 -------------+----------| lan0 wan0|---------+
#   etcd on :4000 (peer :2380)      | .3   .12 |
#                                   | ::3      |
#                                   +----------+
#
#   Each gateway has its own addresses only (LAN .2 ::2 or .3 ::3, WAN .11
#   or .12) and a default route via the router from its own WAN address.
#   The floating ones, the single gateway's LAN .1 ::1 and WAN 192.0.2.10,
#   the lab never configures: the active grgw adds them.  The nodes' default
#   routes (etcd's too) go via .1 and ::1, as above.  Both bridges are in
#   one switch namespace per site (sw-a), with IPv6 off; the router routes
#   as above, knowing the WAN segments only.  An etcd per site runs in a
#   namespace of its own (etcd-a) on the site LAN, its data and log in
#   /tmp/grgwlab-etcd.XXXXXX; up --pair starts it, down ends it (with every
#   lab process) and removes the directory.  --pair --nat: the router's NAT
#   as above, which maps the floating WAN addresses, the only ones the other
#   site knows.  lib.sh has the pair tests' helpers (pair_gws, holder_of,
#   etcd_at, power_off, power_on).  LAB_PAIR_TIMERS="interval dead guard
#   margin" (ms, default "20 100 100 40") sets the pair's timers in the
#   rendered files (the kernel VM's emulated CPUs need wider ones), and
#   LAB_PAIR_HANDOVER_WAIT_MS their [pair] handover_wait_ms (unset: the
#   timers' default).
#
# Usage:
#   lab.sh up [--nat] [--pair]        build the lab (removes leftovers first)
#   lab.sh down                       remove every grgwlab-* namespace and its
#                                     processes (etcd's data too)
#   lab.sh exec NODE CMD...           run CMD in NODE (gw-a, vellum-a, router,
#                                     gw-a1, etcd-a, sw-a, ...)
#   lab.sh conf DIR [--nat] [--pair]  render site-a.conf/site-b.conf (and a
#                                     key) into DIR; --pair: site-a1.conf,
#                                     site-a2.conf, site-b1.conf, site-b2.conf
#   lab.sh demo                       up, grgw on both sites, traffic,
#                                     capture, down
#
# Environment: GRGW (path to the grgw binary, default ../../grgw);
# LAB_NODE_OFFLOADS=on leaves TSO and GSO on in the nodes, so that their
# TCP reaches the gateways in super-packets (off by default, as on a wire).

set -eu

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$(readlink -f "$0")")/lib.sh"

# ---- topology ---------------------------------------------------------------

lab_up() {
	local mode=${1:-plain} node site S host role gw

	lab_down
	for node in "${LAB_NODES[@]}"; do
		lab_ns_add "$node"
	done
	router sysctl -qw net.ipv4.ip_forward=1

	for site in a b; do
		S=${site^^}
		gw=gw-$site
		on "$gw" ip link add "$GW_LAN_IF" type bridge forward_delay 0 stp_state 0 mcast_snooping 0
		on "$gw" ip addr add "$(plan "GW_${S}_LAN4")/$(prefix_len "$(plan "SITE_${S}_PREFIX4")")" dev "$GW_LAN_IF"
		on "$gw" ip addr add "$(plan "GW_${S}_LAN6")/$(prefix_len "$(plan "SITE_${S}_PREFIX6")")" dev "$GW_LAN_IF" nodad
		on "$gw" ip link set "$GW_LAN_IF" up
		for role in vellum sprout; do
			node=$role-$site
			host=${role^^}_$S
			ip -n "$NS_PREFIX$node" link add "$NODE_IF" type veth peer name "$role" netns "$NS_PREFIX$gw"
			on "$gw" ip link set "$role" master "$GW_LAN_IF" up
			on "$node" ip addr add "$(plan "${host}4")/$(prefix_len "$(plan "SITE_${S}_PREFIX4")")" dev "$NODE_IF"
			on "$node" ip addr add "$(plan "${host}6")/$(prefix_len "$(plan "SITE_${S}_PREFIX6")")" dev "$NODE_IF" nodad
			on "$node" ip link set "$NODE_IF" up
			# A wire carries frames of at most the MTU: a node on
			# its own machine segments in its NIC.  A veth would
			# hand the gateway TCP super-packets of up to 64 KB.
			[ "$LAB_NODE_OFFLOADS" = on ] ||
				on "$node" ethtool -K "$NODE_IF" tso off gso off
			on "$node" ip route add default via "$(plan "GW_${S}_LAN4")"
			on "$node" ip -6 route add default via "$(plan "GW_${S}_LAN6")"
		done
	done

	ip -n "${NS_PREFIX}gw-a" link add "$GW_WAN_IF" type veth peer name "$ROUTER_IF_A" netns "${NS_PREFIX}router"
	ip -n "${NS_PREFIX}gw-b" link add "$GW_WAN_IF" type veth peer name "$ROUTER_IF_B" netns "${NS_PREFIX}router"
	router ip addr add "$ROUTER_A/$(prefix_len "$WAN_A_PREFIX")" dev "$ROUTER_IF_A"
	router ip addr add "$ROUTER_B/$(prefix_len "$WAN_B_PREFIX")" dev "$ROUTER_IF_B"
	router ip link set "$ROUTER_IF_A" up
	router ip link set "$ROUTER_IF_B" up
	gw_a ip addr add "$GW_A_WAN/$(prefix_len "$WAN_A_PREFIX")" dev "$GW_WAN_IF"
	gw_b ip addr add "$GW_B_WAN/$(prefix_len "$WAN_B_PREFIX")" dev "$GW_WAN_IF"
	gw_a ip link set "$GW_WAN_IF" up
	gw_b ip link set "$GW_WAN_IF" up
	gw_a ip route add default via "$ROUTER_A"
	gw_b ip route add default via "$ROUTER_B"

	if [ "$mode" = nat ]; then
		nat_ruleset | router nft -f -
	fi
}

# lab_up_pair [plain|nat]: the pair lab (see the drawing): switches, then
# the nodes plugged into them (pair_node_up, which power_on uses too), the
# router's WAN links, then an etcd per site.  Under nat the router's 1:1
# NAT is the single lab's: it maps the floating WAN addresses, the only
# ones the other site knows.
lab_up_pair() {
	local mode=${1:-plain} node site S

	lab_down
	for site in a b; do
		pair_switch_up "$site"
	done
	lab_ns_add "$ROUTER_NODE"
	router sysctl -qw net.ipv4.ip_forward=1
	for node in "${LAB_PAIR_NODES[@]}"; do
		[ "$node" != "$ROUTER_NODE" ] || continue
		pair_node_up "$node"
	done
	for site in a b; do
		S=${site^^}
		ip -n "${NS_PREFIX}router" link add "$(plan "ROUTER_IF_$S")" type veth peer name router \
			netns "$NS_PREFIX$(plan "SITE_${S}_SWITCH_NODE")"
		on "$(plan "SITE_${S}_SWITCH_NODE")" ip link set router master "$SW_WAN_BR" up
		router ip addr add "$(plan "ROUTER_$S")/$(prefix_len "$(plan "WAN_${S}_PREFIX")")" dev "$(plan "ROUTER_IF_$S")"
		router ip link set "$(plan "ROUTER_IF_$S")" up
	done
	if [ "$mode" = nat ]; then
		nat_ruleset | router nft -f -
	fi
	mktemp -d "${LAB_ETCD_DIR_PREFIX}XXXXXX" >/dev/null
	for site in a b; do
		etcd_start "$site"
	done
}

# lab_down: end every process in a lab namespace (TERM, then KILL, each
# bounded; the pair lab's etcds are among them), delete the namespaces, the
# runtime directories of the lab's sites (and of the pair's gateways) and
# the pair lab's etcd directory.  Touches nothing outside grgwlab-* (and
# the lab's directories).
lab_down() {
	local pids site node d

	pids=$(lab_processes | awk '{ print $1 }')
	if [ -n "$pids" ]; then
		# shellcheck disable=SC2086
		kill -TERM $pids 2>/dev/null || true
		if ! wait_until 10 lab_no_processes; then
			pids=$(lab_processes | awk '{ print $1 }')
			if [ -n "$pids" ]; then
				# shellcheck disable=SC2086
				kill -KILL $pids 2>/dev/null || true
			fi
			wait_until 5 lab_no_processes || {
				echo "lab.sh: processes still in the lab namespaces:" >&2
				lab_processes >&2
			}
		fi
	fi
	for ns in $(lab_namespaces); do
		ip netns del "$ns"
	done
	for site in site-a site-b; do
		site=$(conf_value "$LAB_HERE/$site.conf" site name)
		[ -n "$site" ] && rm -rf "${LAB_RUN_DIR:?}/$site"
	done
	rmdir "$LAB_RUN_DIR" 2>/dev/null || true	# if nothing else is in it
	for node in "${LAB_PAIR_NODES[@]}"; do
		if [[ $node == gw-* ]]; then rm -rf "$(pair_run_dir "$node")"; fi
	done
	for d in "$LAB_ETCD_DIR_PREFIX"*; do
		[ -e "$d" ] && rm -rf "$d"
	done
	return 0
}
lab_no_processes() { [ -z "$(lab_processes)" ]; }

# lab_conf DIR [plain|nat]: rendered configs and a key, ready for grgw
lab_conf() {
	local dir=$1 mode=${2:-plain}
	mkdir -p "$dir"
	[ -s "$dir/psk" ] || new_psk "$dir/psk"
	render_conf "$LAB_HERE/site-a.conf" "$dir/site-a.conf" "$dir" "$mode"
	render_conf "$LAB_HERE/site-b.conf" "$dir/site-b.conf" "$dir" "$mode"
}

# lab_conf_pair DIR [plain|nat]: a key and, for every gateway of the pairs,
# DIR/site-X1.conf (site-a1.conf ... site-b2.conf): its site's configuration
# as lab_conf renders it (the floating addresses, run_dir of its own: see
# pair_run_dir), then pair.conf.in with its [pair] and [etcd] values filled
# in (the template's '#' lines dropped).  X1 has the higher priority.
lab_conf_pair() {
	local dir=$1 mode=${2:-plain} site gw id dest prio timers other
	read -r -a timers <<<"${LAB_PAIR_TIMERS:-20 100 100 40}"
	[ ${#timers[@]} -eq 4 ] || { echo "LAB_PAIR_TIMERS: expected \"interval dead guard margin\" (ms), got '${LAB_PAIR_TIMERS:-}'" >&2; return 1; }
	mkdir -p "$dir"
	[ -s "$dir/psk" ] || new_psk "$dir/psk"
	for site in a b; do
		prio=200
		for gw in $(pair_gws "$site"); do
			id=$(pair_id "$gw")
			dest=$dir/site-${id,,}.conf
			render_conf "$LAB_HERE/site-$site.conf" "$dest" "$dir" "$mode" "$(pair_run_dir "$gw")"
			# The other site's gateways' own WAN addresses: its
			# incoming gateway makes its SAs from there before a
			# handover.
			other=$([ "$site" = a ] && echo B || echo A)
			sed -i -e "/^\[peer\]/a gateway = $(plan "GW_${other}1_WAN")" \
			    -e "/^\[peer\]/a gateway = $(plan "GW_${other}2_WAN")" "$dest"
			sed -e '/^#/d' \
			    -e "s|@ADDRESS@|$(plan "GW_${id}_LAN4")|" \
			    -e "s|@PARTNER@|$(plan "GW_$(pair_id "$(pair_partner "$gw")")_LAN4")|" \
			    -e "s|@WAN_ADDRESS@|$(plan "GW_${id}_WAN")|" \
			    -e "s|@WAN_PARTNER@|$(plan "GW_$(pair_id "$(pair_partner "$gw")")_WAN")|" \
			    -e "s|@PRIORITY@|$prio|" \
			    -e "s|@ETCD@|$(etcd_endpoint "$site")|" \
			    -e "s|@INTERVAL@|${timers[0]}|" -e "s|@DEAD@|${timers[1]}|" \
			    -e "s|@GUARD@|${timers[2]}|" -e "s|@MARGIN@|${timers[3]}|" \
			    "$LAB_HERE/pair.conf.in" >>"$dest"
			[ -z "${LAB_PAIR_HANDOVER_WAIT_MS:-}" ] ||
				sed -i "/^margin_ms = /a handover_wait_ms = $LAB_PAIR_HANDOVER_WAIT_MS" "$dest"
			echo "$dest"
			prio=100
		done
	done
}

# ---- demo -------------------------------------------------------------------

demo_cleanup() {
	set +e
	capture_stop_all
	if [ -n "${CONF_A:-}" ] && [ -x "$GRGW" ]; then
		timeout 30 ip netns exec "${NS_PREFIX}gw-a" "$GRGW" down -c "$CONF_A" --purge >/dev/null 2>&1
		timeout 30 ip netns exec "${NS_PREFIX}gw-b" "$GRGW" down -c "$CONF_B" --purge >/dev/null 2>&1
	fi
	lab_down
	[ -n "${WORK:-}" ] && rm -rf "$WORK"
}

say() { printf '\n=== %s\n' "$*"; }

demo() {
	local pid_a rc_a=0 rc_b=0 reply ifc

	[ -x "$GRGW" ] || { echo "grgw not found at $GRGW (build it, or set GRGW)" >&2; exit 1; }
	WORK=$(mktemp -d /tmp/grgwlab.XXXXXX)
	trap demo_cleanup EXIT
	trap 'exit 130' INT TERM
	CONF_A=$WORK/site-a.conf
	CONF_B=$WORK/site-b.conf

	say "building the lab"
	lab_up plain
	lab_conf "$WORK" plain
	echo "key: $WORK/psk ($(stat -c %a "$WORK/psk")), configs: $CONF_A $CONF_B"

	say "grgw up on both gateways"
	grgw_at a up >"$WORK/up-a.log" 2>&1 &
	pid_a=$!
	grgw_at b up || rc_b=$?
	wait "$pid_a" || rc_a=$?
	sed 's/^/gw-a: /' "$WORK/up-a.log"
	if [ "$rc_a" -ne 0 ] || [ "$rc_b" -ne 0 ]; then
		echo "grgw up failed (gw-a: $rc_a, gw-b: $rc_b)" >&2
		exit 1
	fi

	say "grgw status on gw-a"
	grgw_at a status
	say "grgw status on gw-b"
	grgw_at b status

	capture_start demo
	sink_start vellum-b

	say "vellum-a -> vellum-b: ping"
	vellum_a ping -n -c 3 -i 0.2 "$VELLUM_B4"
	vellum_a ping -n -c 3 -i 0.2 "$VELLUM_B6"

	say "vellum-a -> vellum-b: TCP (the sink answers with the source it saw)"
	printf 'hello from vellum-a\n' >"$WORK/hello"
	reply=$(tcp_send vellum-a "$VELLUM_B4" "$WORK/hello") || reply="no answer"
	echo "IPv4: $reply"
	reply=$(tcp_send vellum-a "$VELLUM_B6" "$WORK/hello") || reply="no answer"
	echo "IPv6: $reply"

	capture_stop demo
	say "what crossed the WAN"
	for ifc in "${WAN_IFS[@]}"; do
		echo "$ifc: $(pcap_count "$WORK/demo-$ifc.pcap" '') packets," \
			"$(pcap_count "$WORK/demo-$ifc.pcap" "$IKE_OR_ESP") IKE/ESP," \
			"$(pcap_count "$WORK/demo-$ifc.pcap" "$SITE_TRAFFIC") clear-text site packets"
		tcpdump -nn -r "$WORK/demo-$ifc.pcap" 2>/dev/null | head -n 4 | sed 's/^/    /'
	done

	say "grgw down --purge on both gateways"
	grgw_at a down --purge
	grgw_at b down --purge
}

# ---- main -------------------------------------------------------------------

usage() {
	sed -n '/^# Usage:/,/^# Environment/p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

[ "$(id -u)" -eq 0 ] || { echo "lab.sh: needs root" >&2; exit 1; }
WORK=${WORK:-/tmp}

# lab_flags ARGS...: sets MODE (plain, nat) and PAIR (0, 1) from --nat and
# --pair, in any order
lab_flags() {
	MODE=plain
	PAIR=0
	for a in "$@"; do
		case $a in
		--nat) MODE=nat ;;
		--pair) PAIR=1 ;;
		*) usage ;;
		esac
	done
}

case ${1:-} in
up)
	shift
	lab_flags "$@"
	if [ "$PAIR" = 1 ]; then
		lab_up_pair "$MODE"
		echo "lab up: $(lab_namespaces | tr '\n' ' ')"
		echo "etcd: site-a $(etcd_endpoint a), site-b $(etcd_endpoint b), data in $(lab_etcd_dir)"
	else
		lab_up "$MODE"
		echo "lab up: $(lab_namespaces | tr '\n' ' ')"
	fi
	;;
down)
	lab_down
	;;
exec)
	[ $# -ge 3 ] || usage
	node=$2
	shift 2
	exec ip netns exec "$NS_PREFIX$node" "$@"
	;;
conf)
	[ $# -ge 2 ] || usage
	dir=$2
	shift 2
	lab_flags "$@"
	if [ "$PAIR" = 1 ]; then
		files=$(lab_conf_pair "$dir" "$MODE")
		echo "${files//$'\n'/ }"
	else
		lab_conf "$dir" "$MODE"
		echo "$dir/site-a.conf $dir/site-b.conf"
	fi
	;;
demo)
	demo
	;;
*)
	usage
	;;
esac
