#!/bin/bash
#
# grgw lab test suite: two sites in network namespaces (topology in lab.sh),
# grgw on both gateways, assertions on what a user sees and on what crossed
# the WAN (tcpdump on the router's wan-a and wan-b).
#
#   vellum-a, sprout-a -- lan0 [gw-a] wan0 -- wan-a [router] wan-b -- wan0 [gw-b] lan0 -- vellum-b, sprout-b
#     198.18.1.0/24             192.0.2.10          (NAT)        198.51.100.10             198.18.2.0/24
#     2001:db8:a::/64                                                                      2001:db8:b::/64
#
# Usage: run-tests.sh [TEST...]     run the named tests (default: all), in
#                                   the order below, whatever order given
#        run-tests.sh --list
#
# Tests:
#   lab          the topology itself, without grgw (also --nat)
#   configs      grgw check-config on tests/configs fixtures and the lab configs
#   up           grgw up on both gateways; status says tunnel up, and the
#                data plane (libipsec here; kernel with LAB_DATAPLANE=kernel)
#   reach        ping and TCP, IPv4 and IPv6, site A -> site B, sources kept
#   bulk         20 MiB over TCP, sha256 checked at the far end
#   wan          what crossed the WAN during reach/bulk: no clear text, IKE/ESP
#   peer-down    grgw down at B: A fails closed and fast; B up again heals
#   charon-kill  kill -9 of gw-a's charon: fail closed, then self-healing
#   charon-crashes  five kill -9 of charon at A, then five at B, within a
#                minute each: every restart is immediate (no crash loop),
#                traffic flows again each time, one IKE_SA at each end, and
#                an established TCP stream survives all ten
#   charon-loop  charon killed as soon as it is back, again and again at A:
#                a crash loop, which status shows and restarts wait for;
#                healed once it stops
#   local-down   grgw down at A: fail closed; up heals; down --purge leaves nothing
#   privsep      the network process (probes, HTTP, etcd) runs unprivileged;
#                the daemon listens on no port; kill -9 of it is healed
#   harden-*     defence in depth (see harden-tests.sh)
#   wrong-psk    different keys: up fails on both with "authentication failed"
#   nat          up, reach, wan again with the router doing 1:1 NAT
#   link-*       link state: probes, feeds, WAN cuts, loss, forged probes,
#                etcd (see link-tests.sh)
#   interop-swanctl  plain strongSwan (swanctl, the README's configuration)
#                at gw-b, grgw with probes = icmp at gw-a (see interop-tests.sh)
#   interop-libreswan  the same with libreswan (pluto, the README's
#                configuration) at gw-b and the kernel data plane at gw-a;
#                skipped ("skipped: why") without kernel ESP: it runs in the
#                kernel VM lab (make check-kernel)
#   link-prometheus  a real Prometheus in gw-a with the shipped rules and
#                dashboard: a WAN cut fires the link-down alert, the repair
#                resolves it (see monitor-tests.sh)
#   reload-*     grgw reload under a 1000 packets/s UDP stream and a TCP
#                connection (no reset, every line, same source): the same
#                file, a broken one, a new data plane (refused), a new DSCP
#                and shaping changed in place, a prefix added at both sites
#                and removed again (see reload-tests.sh)
#   x509         certificate authentication: a lab CA, tunnel up, traffic,
#                another CA's and an expired certificate refused (see
#                x509-tests.sh)
#   reload-rotate  the three-step pre-shared key rotation, one reload per site
#                and step under a 1000 packets/s UDP stream: nothing lost, the
#                link state never leaves up, the old key refused at the end
#                (see rotate-tests.sh)
#   x509-rotate  a new certificate and a CA bundle reloaded in certificate
#                mode under the stream: nothing lost, no flap, the new expiry
#                in status and /metrics (see rotate-tests.sh)
#   rekey        CHILD_SAs rekeyed every 10 s, IKE_SAs every 30 s under a
#                1000 packets/s UDP stream: no packet lost, rekeys counted
#                (see rekey-tests.sh)
#
# Needs root, iproute2, nftables, tcpdump, jq, netcat-openbsd, python3.
# Environment: GRGW (grgw binary, default ../../grgw), UP_TIMEOUT (s, 45),
# LAB_DATAPLANE (auto, kernel or libipsec: the gateways' `mode`; default auto).
# Every check prints "ok" or "FAIL"; the last line is "N passed, N failed"
# (", N skipped" when a test could not run here; exit 77 when no test ran).

set -eu

HERE=$(dirname "$(readlink -f "$0")")
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$HERE/lib.sh"
LAB=$HERE/lab.sh
CONFIGS=$(cd "$HERE/../configs" 2>/dev/null && pwd || echo "$HERE/../configs")

ALL_TESTS=(lab configs up reach bulk wan peer-down charon-kill charon-crashes charon-loop privsep harden-files harden-limits
	harden-charon-stop harden-etcd-stop harden-block harden-boot harden-full-run local-down wrong-psk nat
	link-feeds link-cuts link-reestablish link-loss link-forged link-stopped link-etcd link-prometheus
	interop-swanctl interop-libreswan reload-same reload-broken reload-dataplane reload-dscp reload-prefix reload-rotate x509 x509-rotate rekey
	pair-up pair-handover pair-handover-given-up pair-kill pair-partition pair-crash pair-freeze pair-etcd-stall pair-down pair-reload)
UP_TIMEOUT=${UP_TIMEOUT:-45}
BLOB_BYTES=$((20 * 1024 * 1024))

# Fixture secret files (named as tests/configs/README.md says).
FIXTURE_PSK=psk
FIXTURE_PSK_OPEN=psk-0644

# ---- setup ------------------------------------------------------------------

# keep_pair_logs: with LAB_KEEP_DIR, the pair gateways' logs, grgw's and
# charon's, go there (grgw-gw-a1.log, charon-gw-a1.log, ..., each start
# after the other), with the last stream's gaps and the moves, before the
# lab is taken down
keep_pair_logs() {
	local f gw
	[ -n "${LAB_KEEP_DIR:-}" ] || return 0
	for gw in gw-a1 gw-a2 gw-b1 gw-b2; do
		keep_node_logs "$gw"
	done
	for f in moves.log stream-recv.out; do
		[ -f "$WORK/$f" ] && mkdir -p "$LAB_KEEP_DIR" && cp "$WORK/$f" "$LAB_KEEP_DIR/"
	done
}

cleanup() {
	set +e
	declare -F flood_stop >/dev/null && flood_stop
	declare -F interop_stop >/dev/null && interop_stop
	declare -F lsw_stop >/dev/null && lsw_stop
	declare -F prom_stop >/dev/null && prom_stop
	resume_stopped
	capture_stop_all
	keep_pair_logs
	"$LAB" down >/dev/null 2>&1
	[ -n "${WORK:-}" ] && rm -rf "$WORK"
}

[ "$(id -u)" -eq 0 ] || { echo "run-tests.sh: needs root" >&2; exit 1; }
case ${1:-} in
--list) printf '%s\n' "${ALL_TESTS[@]}"; exit 0 ;;
-h|--help) sed -n '2,/^# Every check/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac
for t in "$@"; do
	[[ " ${ALL_TESTS[*]} " == *" $t "* ]] || { echo "unknown test: $t (try --list)" >&2; exit 2; }
done

WORK=$(mktemp -d /tmp/grgwlab-tests.XXXXXX)
trap cleanup EXIT
trap 'exit 130' INT TERM

LABCONF=$WORK/conf		# key and rendered configs for the current lab
CONF_A=$LABCONF/site-a.conf
CONF_B=$LABCONF/site-b.conf
LAB_MODE=none			# none, plain or nat: what lab.sh last built
WANT_MODE=plain			# what the running test wants
SINKS_UP=0
BULK_IN_CAPTURE=0

# ---- preconditions (each test brings what it needs) -------------------------

need_lab() {
	local mode=$1
	[ "$LAB_MODE" = "$mode" ] && return 0
	capture_stop_all
	LAB_MODE=none
	SINKS_UP=0
	local args=(up)
	[ "$mode" = nat ] && args+=(--nat)
	[ "$mode" = pair ] && args+=(--pair)
	if ! "$LAB" "${args[@]}" >"$WORK/lab-up.log" 2>&1; then
		fail "lab.sh up ($mode)"
		show_file "$WORK/lab-up.log"
		return 1
	fi
	LAB_MODE=$mode
	mkdir -p "$LABCONF"
	if [ "$mode" = pair ]; then
		# Four gateways, site-a1.conf ... site-b2.conf (pair-tests.sh)
		"$LAB" conf "$LABCONF" --pair >/dev/null
		pair_hooks_setup
		return 0
	fi
	render_conf "$HERE/site-a.conf" "$CONF_A" "$LABCONF" "$mode"
	render_conf "$HERE/site-b.conf" "$CONF_B" "$LABCONF" "$mode"
}

need_grgw() {
	if [ ! -x "$GRGW" ]; then
		fail "grgw binary at $GRGW (build it, or set GRGW)"
		return 1
	fi
	[ -s "$LABCONF/psk" ] && return 0
	mkdir -p "$LABCONF"
	new_psk "$LABCONF/psk" || { fail "grgw keygen"; return 1; }
}

need_sinks() {
	[ "$SINKS_UP" = 1 ] && return 0
	sink_start vellum-b sprout-b || { fail "TCP sinks in vellum-b and sprout-b"; return 1; }
	SINKS_UP=1
}

# stop_grgw: both gateways down and purged (quietly; for a clean start)
stop_grgw() {
	down_one a stop --purge
	down_one b stop --purge
	return 0
}

tunnel_is_up() {
	status_is a "$TUNNEL_UP_JQ" && status_is b "$TUNNEL_UP_JQ"
}

need_tunnel() {
	need_lab "$WANT_MODE" || return 1
	need_grgw || return 1
	tunnel_is_up && return 0
	stop_grgw
	up_both need-tunnel
	if [ "$RC_A" -ne 0 ] || [ "$RC_B" -ne 0 ] || ! wait_until 20 tunnel_is_up; then
		fail "tunnel up as a precondition (grgw up: gw-a $RC_A, gw-b $RC_B)"
		show_file "$WORK/need-tunnel-a.log" 5
		show_file "$WORK/need-tunnel-b.log" 5
		diag
		return 1
	fi
}

# diag: what the daemons say, for a failing precondition
diag() {
	local site dir
	for site in a b; do
		note "gw-$site status: $(status_json "$site" | jq -c . 2>/dev/null)"
		dir=$LAB_RUN_DIR/$(conf_value "$(site_conf "$site")" site name)
		[ -f "$dir/grgw.log" ] && { note "gw-$site $dir/grgw.log:"; show_file "$dir/grgw.log" 10; }
	done
	return 0
}

# ---- small assertions -------------------------------------------------------

# expect_rc NAME GOT WANT [LOG]: exit code as wanted (log shown if not)
expect_rc() {
	if [ "$2" -eq "$3" ]; then
		pass "$1"
	else
		fail "$1 (exit $2, want $3)"
		[ -n "${4:-}" ] && show_file "$4"
	fi
	return 0
}

# status_has a|b JQ: the status JSON (printed) satisfies JQ
status_has() {
	local json
	json=$(status_json "$1")
	printf 'gw-%s status: %s\n' "$1" "$(jq -c . <<<"$json")"
	jq -e "$2" >/dev/null <<<"$json"
}

# tcp_reply_field REPLY NAME: a field of the sink's answer line
tcp_reply_field() { awk -v k="$2" '{ for (i = 1; i < NF; i++) if ($i == k) print $(i + 1) }' <<<"$1"; }

# proc_dead PID: gone, or a zombie nobody reaped yet
proc_dead() {
	[ ! -e "/proc/$1" ] || [ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" = Z ]
}

# Fail closed, as vellum-a sees it: a TCP connect that fails within 1 s (the
# gateway answers with a reset; a hang shows as 3 s) and ICMP unreachable
# from its own gateway for other traffic.  Connects go first and each ping
# probe is single: the gateway's ICMP errors are rate-limited per sender.
check_fails_closed() {
	check "TCP connect vellum-a -> vellum-b IPv4 refused by the gateway (not a timeout)" \
		connect_refused vellum-a "$VELLUM_B4"
	check "TCP connect vellum-a -> vellum-b IPv6 refused by the gateway (not a timeout)" \
		connect_refused vellum-a "$VELLUM_B6"
	check "ping vellum-a -> vellum-b IPv4 answered by gw-a with ICMP unreachable" \
		ping_unreachable_from vellum-a "$VELLUM_B4" "$GW_A_LAN4"
	check "ping vellum-a -> vellum-b IPv6 answered by gw-a with ICMPv6 unreachable" \
		ping_unreachable_from vellum-a "$VELLUM_B6" "$GW_A_LAN6"
}

# A service retrying its requests: every one of N connects in a row is
# refused (errors must not be rate-limited into silent drops).
connects_keep_failing_fast() {
	local node=$1 addr=$2 n=$3 i r ms
	for ((i = 1; i <= n; i++)); do
		read -r r ms < <(connect_result "$node" "$addr")
		echo "connect $i: $r after $ms ms"
		[ "$r" = refused ] || [ "$r" = unreachable ] || return 1
	done
}

check_traffic_flows() {
	check "ping vellum-a -> vellum-b IPv4" ping_ok vellum-a "$VELLUM_B4"
	check "ping vellum-a -> vellum-b IPv6" ping_ok vellum-a "$VELLUM_B6"
	check "TCP vellum-a -> vellum-b IPv4, source 198.18.1.11" \
		tcp_peer_is vellum-a "$VELLUM_B4" "$VELLUM_A4"
}

pings_both() { ping_ok "$1" "$2" && ping_ok "$1" "$3"; }
forwarding_only_in_router() {
	local node v
	for node in "${LAB_NODES[@]}"; do
		v=$(on "$node" sysctl -n net.ipv4.ip_forward)
		echo "$node: ip_forward=$v"
		if [ "$node" = router ]; then [ "$v" = 1 ] || return 1; else [ "$v" = 0 ] || return 1; fi
	done
}
# pcap_has FILE FILTER / pcap_lacks FILE FILTER
pcap_has() { [ "$(pcap_count "$1" "$2")" -gt 0 ]; }
pcap_lacks() { [ "$(pcap_count "$1" "$2")" = 0 ]; }

t_lab() {
	local mode cap
	for mode in plain nat; do
		need_lab "$mode" || return 0
		check "[$mode] vellum-a pings its gateway (IPv4, IPv6)" \
			pings_both vellum-a "$GW_A_LAN4" "$GW_A_LAN6"
		check "[$mode] sprout-b pings vellum-b on its LAN (IPv4, IPv6)" \
			pings_both sprout-b "$VELLUM_B4" "$VELLUM_B6"
		check "[$mode] gw-a reaches the router" ping_ok gw-a "$ROUTER_A"
		check_not "[$mode] without grgw, vellum-a cannot reach vellum-b" ping_ok vellum-a "$VELLUM_B4"
		check "[$mode] IPv4 forwarding is on in the router only" forwarding_only_in_router
		capture_start "lab-$mode" || { fail "[$mode] capture"; return 0; }
		cap=$WORK/lab-$mode
		if [ "$mode" = plain ]; then
			check "[plain] gw-a reaches gw-b over the WAN" ping_ok gw-a "$GW_B_WAN"
			capture_stop "lab-$mode"
			check "[plain] on wan-b: gw-a arrives with its own address" \
				pcap_has "$cap-wan-b.pcap" "icmp and src $GW_A_WAN and dst $GW_B_WAN"
		else
			check "[nat] gw-a reaches gw-b at its public address" ping_ok gw-a "$GW_B_PUBLIC"
			check_not "[nat] gw-a cannot reach gw-b's own address" ping_ok gw-a "$GW_B_WAN"
			capture_stop "lab-$mode"
			check "[nat] on wan-a: gw-a talks to gw-b's public address" \
				pcap_has "$cap-wan-a.pcap" "icmp and src $GW_A_WAN and dst $GW_B_PUBLIC"
			check "[nat] on wan-b: gw-a arrives as its public address" \
				pcap_has "$cap-wan-b.pcap" "icmp and src $GW_A_PUBLIC and dst $GW_B_WAN"
			check "[nat] on wan-b: gw-a's own address never shows" \
				pcap_lacks "$cap-wan-b.pcap" "host $GW_A_WAN"
		fi
	done
}

# check-config on the fixtures: each *.conf with a *.expect must be refused
# (exit 1) with every line of the .expect on stderr; one without is valid.
t_configs() {
	local dir=$WORK/configs conf name expect rc n=0 line missing
	[ -x "$GRGW" ] || { fail "grgw binary at $GRGW"; return 0; }
	mkdir -p "$dir"
	head -c 32 /dev/urandom | base64 >"$dir/$FIXTURE_PSK"
	chmod 0600 "$dir/$FIXTURE_PSK"
	cp "$dir/$FIXTURE_PSK" "$dir/$FIXTURE_PSK_OPEN"
	chmod 0644 "$dir/$FIXTURE_PSK_OPEN"

	for conf in "$CONFIGS"/*.conf; do
		[ -e "$conf" ] || continue
		n=$((n + 1))
		name=$(basename "$conf" .conf)
		sed "s|@TESTDIR@|$dir|g" "$conf" >"$dir/$name.conf"
		rc=0
		"$GRGW" check-config -c "$dir/$name.conf" \
			>"$dir/$name.out" 2>"$dir/$name.err" </dev/null || rc=$?
		expect=$CONFIGS/$name.expect
		if [ -f "$expect" ]; then
			expect_rc "$name: check-config refuses it" "$rc" 1 "$dir/$name.err"
			missing=0
			while IFS= read -r line; do
				[ -z "$line" ] && continue
				line=${line//@TESTDIR@/$dir}
				if ! grep -qF -- "$line" "$dir/$name.err"; then
					missing=1
					fail "$name: stderr has: $line"
				fi
			done <"$expect"
			if [ "$missing" = 0 ]; then
				pass "$name: stderr has every expected line"
			else
				show_file "$dir/$name.err"
			fi
		else
			expect_rc "$name: check-config accepts it" "$rc" 0 "$dir/$name.err"
			check "$name: prints \"configuration OK\"" grep -qx "configuration OK" "$dir/$name.out"
		fi
	done
	if [ "$n" -eq 0 ]; then
		fail "fixtures in $CONFIGS"
	fi

	# The lab's own configs, rendered for both variants.
	need_lab plain || return 0
	need_grgw || return 0
	check "lab site-a.conf: \"configuration OK\"" says_config_ok a
	check "lab site-b.conf: \"configuration OK\"" says_config_ok b
}

says_config_ok() {
	local out
	out=$(grgw_at "$1" check-config) || return 1
	echo "$out"
	[ "$out" = "configuration OK" ]
}

t_up() {
	local s
	need_lab "$WANT_MODE" || return 0
	need_grgw || return 0
	stop_grgw
	up_both up
	expect_rc "grgw up on gw-a" "$RC_A" 0 "$WORK/up-a.log"
	expect_rc "grgw up on gw-b" "$RC_B" 0 "$WORK/up-b.log"
	for s in a b; do
		check "gw-$s status: daemon and charon running" \
			status_has "$s" '.daemon.running == true and .charon.running == true'
		check "gw-$s status: tunnel up" status_has "$s" '.peers[0].tunnel == "up"'
		check "gw-$s status: dataplane $LAB_EXPECT_DP" status_has "$s" ".dataplane == \"$LAB_EXPECT_DP\""
	done
	check "gw-a status names both sites" status_has a '.site == "site-a" and .peers[0].name == "site-b"'
	check "grgw status (text) on gw-a" grgw_at a status
	# Both ends initiate at once; a duplicate IKE_SA does not stay.
	check "exactly one IKE_SA at each end" wait_until 150 one_ike_sa_each
}

t_reach() {
	local dst a4 a6
	need_tunnel || return 0
	need_sinks || return 0
	capture_running traffic || capture_start traffic || { fail "WAN capture"; return 0; }
	for dst in "vellum-b $VELLUM_B4 $VELLUM_B6" "sprout-b $SPROUT_B4 $SPROUT_B6"; do
		read -r dst a4 a6 <<<"$dst"
		check "ping vellum-a -> $dst IPv4" ping_ok vellum-a "$a4"
		check "ping vellum-a -> $dst IPv6" ping_ok vellum-a "$a6"
		check "TCP vellum-a -> $dst IPv4 arrives from 198.18.1.11 (no NAT)" \
			tcp_peer_is vellum-a "$a4" "$VELLUM_A4"
		check "TCP vellum-a -> $dst IPv6 arrives from 2001:db8:a::11 (no NAT)" \
			tcp_peer_is vellum-a "$a6" "$VELLUM_A6"
	done
	check "ping sprout-b -> sprout-a IPv4 (the other way)" ping_ok sprout-b "$SPROUT_A4"
	check "ping sprout-b -> sprout-a IPv6 (the other way)" ping_ok sprout-b "$SPROUT_A6"
}

t_bulk() {
	local blob=$WORK/blob want reply t0 ms
	need_tunnel || return 0
	need_sinks || return 0
	capture_running traffic || capture_start traffic || { fail "WAN capture"; return 0; }
	[ -f "$blob" ] || head -c "$BLOB_BYTES" /dev/urandom >"$blob"
	want=$(sha256sum <"$blob" | awk '{ print $1 }')
	t0=$(now_ms)
	reply=$(tcp_send vellum-a "$VELLUM_B4" "$blob") || reply=
	ms=$(( $(now_ms) - t0 ))
	if [ -z "$reply" ]; then
		fail "20 MiB vellum-a -> vellum-b: no answer from the sink within 120 s"
		return 0
	fi
	BULK_IN_CAPTURE=1
	check "20 MiB vellum-a -> vellum-b: every byte arrived" \
		test "$(tcp_reply_field "$reply" bytes)" = "$BLOB_BYTES"
	check "20 MiB vellum-a -> vellum-b: sha256 matches" \
		test "$(tcp_reply_field "$reply" sha256)" = "$want"
	check "20 MiB vellum-a -> vellum-b: source 198.18.1.11" \
		test "$(tcp_reply_field "$reply" peer)" = "$VELLUM_A4"
	note "sink: $reply"
	note "$BLOB_BYTES bytes in $ms ms: $(( BLOB_BYTES * 8 / (ms > 0 ? ms : 1) / 1000 )) Mbit/s"
}

t_wan() {
	local n
	if ! capture_running traffic; then
		# Run on its own: make some tunnel traffic to look at.
		need_tunnel || return 0
		need_sinks || return 0
		capture_start traffic || { fail "WAN capture"; return 0; }
		ping_ok vellum-a "$VELLUM_B4" >/dev/null 2>&1 || true
		ping_ok vellum-a "$VELLUM_B6" >/dev/null 2>&1 || true
		tcp_peer_is vellum-a "$VELLUM_B4" "$VELLUM_A4" >/dev/null 2>&1 || true
		tcp_peer_is vellum-a "$VELLUM_B6" "$VELLUM_A6" >/dev/null 2>&1 || true
	fi
	capture_stop traffic
	check_no_cleartext traffic
	check_ike_esp traffic "$LAB_MODE"
	n=$(pcap_count "$WORK/traffic-wan-a.pcap" "$ESP_ONLY") || true
	check "ESP packets carried the traffic ($n on wan-a)" test "$n" -gt 0
	if [ "$BULK_IN_CAPTURE" = 1 ]; then
		n=$(pcap_bytes "$WORK/traffic-wan-a.pcap" "src $GW_A_WAN and $ESP_ONLY")
		check "ESP from gw-a carried at least the 20 MiB transfer ($n bytes)" \
			test "$n" -ge "$BLOB_BYTES"
	fi
	if [ "$LAB_MODE" = nat ]; then
		check "gw-a's own address never reached site B's side" \
			pcap_lacks "$WORK/traffic-wan-b.pcap" "host $GW_A_WAN"
		check "gw-b's own address never reached site A's side" \
			pcap_lacks "$WORK/traffic-wan-a.pcap" "host $GW_B_WAN"
	fi
	BULK_IN_CAPTURE=0
}

t_peer_down() {
	need_tunnel || return 0
	need_sinks || return 0
	capture_start peer-down || { fail "WAN capture"; return 0; }

	down_one b peer-down
	expect_rc "grgw down on gw-b" "$RC" 0 "$WORK/peer-down-b.log"
	# A learns it from the IKE delete (or dead peer detection); wait on
	# the status, not on probes that would spend gw-a's ICMP budget.
	wait_until 30 status_is a '.peers[0].tunnel != "up"' || true
	check "gw-a status: tunnel not up" status_has a '.peers[0].tunnel != "up"'
	sleep 1
	check_fails_closed
	check "5 TCP connects in a row vellum-a -> vellum-b IPv4 each refused, none timing out" \
		connects_keep_failing_fast vellum-a "$VELLUM_B4" 5
	capture_stop peer-down
	check_no_cleartext peer-down

	up_one b peer-up
	expect_rc "grgw up on gw-b again" "$RC" 0 "$WORK/peer-up-b.log"
	wait_until 60 ping_ok vellum-a "$VELLUM_B4" || true
	check_traffic_flows
	wait_until 20 status_is a "$TUNNEL_UP_JQ" || true
	check "gw-a status: tunnel up again, nothing done at A" status_has a '.peers[0].tunnel == "up"'
}

t_charon_kill() {
	local pids old before
	need_tunnel || return 0
	need_sinks || return 0
	pids=$(node_pids_named gw-a charon)
	check "exactly one charon in gw-a" test "$(wc -w <<<"$pids")" -eq 1
	old=${pids%%[[:space:]]*}
	[ -n "$old" ] || return 0
	before=$(status_json a | jq -r '.charon.restarts // 0')
	capture_start charon-kill || { fail "WAN capture"; return 0; }

	kill -KILL "$old"
	wait_until 5 proc_dead "$old" || true
	# charon is restarted at once and may have the tunnel back within
	# one connect (kernel SAs even outlive it until grgw removes them):
	# whichever way the connect ends, it must not hang.
	check "right after the kill: TCP connect vellum-a -> vellum-b IPv4 fails fast or crosses" \
		connect_no_hang vellum-a "$VELLUM_B4"

	wait_until 60 tcp_peer_is vellum-a "$VELLUM_B4" "$VELLUM_A4" || true
	check_traffic_flows
	check "a new charon runs in gw-a" new_charon_in gw-a "$old"
	check "gw-a status: charon restarted (restarts > $before), tunnel up" \
		status_has a ".charon.running == true and .charon.restarts >= $((before + 1)) and .peers[0].tunnel == \"up\""
	capture_stop charon-kill
	check_no_cleartext charon-kill
}

# ---- repeated charon crashes ------------------------------------------------------

STREAM_PORT=7002
CRASH_KILLS=5

# ms_until_ping_crosses T0: polls vellum-a -> vellum-b (IPv4) and prints the
# ms from T0 to the first echo answered; false after 30 s.
ms_until_ping_crosses() {
	local t0=$1
	while [ $(( $(now_ms) - t0 )) -lt 30000 ]; do
		if vellum_a ping -n -c 1 -W 0.1 "$VELLUM_B4" >/dev/null 2>&1; then
			echo $(( $(now_ms) - t0 ))
			return 0
		fi
	done
	return 1
}

# ike_sas_at a|b: how many ESTABLISHED IKE_SAs that gateway's charon holds
ike_sas_at() {
	local dir
	dir=$LAB_RUN_DIR/$(conf_value "$(site_conf "$1")" site name)
	timeout 30 swanctl --list-sas --uri "unix://$dir/charon.vici" 2>/dev/null |
		grep -c ', ESTABLISHED,' || true
}
one_ike_sa_each() {
	local a b
	a=$(ike_sas_at a); b=$(ike_sas_at b)
	echo "ESTABLISHED IKE_SAs: gw-a $a, gw-b $b"
	[ "$a" = 1 ] && [ "$b" = 1 ]
}

stream_listening() { on vellum-b ss -Hltn "sport = :$STREAM_PORT" | grep -q LISTEN; }
stream_connected() { on vellum-a ss -Htn state established "dport = :$STREAM_PORT" | grep -q .; }

# crash_charon_at a|b N: kill -9 of that site's charon (the Nth kill there);
# checks traffic flows again (printing how soon) and what status says
crash_charon_at() {
	local site=$1 n=$2 pids old t0 ms before
	before=$(status_json "$site" | jq -r '.charon.restarts // 0')
	pids=$(node_pids_named "gw-$site" charon)
	old=${pids%%[[:space:]]*}
	[ -n "$old" ] || { fail "kill $n at $site: no charon in gw-$site"; return 0; }
	t0=$(now_ms)
	kill -KILL "$old"
	if ms=$(ms_until_ping_crosses "$t0"); then
		pass "kill $n at $site: traffic flows again, after $ms ms"
	else
		fail "kill $n at $site: traffic flows again (none within 30 s)"
		diag
	fi
	check "kill $n at $site: a new charon runs in gw-$site" new_charon_in "gw-$site" "$old"
	wait_until 20 status_is "$site" "$TUNNEL_UP_JQ" || true
	check "kill $n at $site: gw-$site status: restarts $((before + 1)), no crash loop, tunnel up" \
		status_has "$site" ".charon.running == true and .charon.restarts == $((before + 1)) and .charon.crash_loop == false and .charon.restart_delay_ms == 0 and .peers[0].tunnel == \"up\""
}

t_charon_crashes() {
	local site n t_site
	need_tunnel || return 0
	rm -f "$WORK/stream-stop" "$WORK/stream-server" "$WORK/stream-client"
	vellum_b "$PYTHON" "$HERE/tcp-stream.py" server --port "$STREAM_PORT" \
		--report "$WORK/stream-server" --lifetime 600 \
		>"$WORK/stream-server.err" 2>&1 </dev/null &
	local server=$!
	wait_until 10 stream_listening || { fail "TCP stream server in vellum-b"; return 0; }
	vellum_a "$PYTHON" "$HERE/tcp-stream.py" client --addr "$VELLUM_B4" --port "$STREAM_PORT" \
		--stop "$WORK/stream-stop" --report "$WORK/stream-client" \
		>"$WORK/stream-client.err" 2>&1 </dev/null &
	local client=$!
	check "a TCP stream vellum-a -> vellum-b is established" wait_until 10 stream_connected
	capture_start charon-crashes || { fail "WAN capture"; return 0; }

	for site in a b; do
		t_site=$(now_ms)
		for n in $(seq 1 "$CRASH_KILLS"); do
			crash_charon_at "$site" "$n"
			sleep 1
		done
		note "$CRASH_KILLS kills at $site took $(( ($(now_ms) - t_site) / 1000 )) s"
	done
	check "grgw status (text) at gw-a counts the restarts, no crash loop" status_text_no_loop a
	check "exactly one IKE_SA at each end" wait_until 150 one_ike_sa_each

	sleep 0.5	# a few more lines after the last kill
	touch "$WORK/stream-stop"
	wait_until 30 test -s "$WORK/stream-client" || kill "$client" 2>/dev/null || true
	wait "$client" 2>/dev/null || true
	wait_until 10 test -s "$WORK/stream-server" || kill "$server" 2>/dev/null || true
	wait "$server" 2>/dev/null || true
	note "$(cat "$WORK/stream-client" 2>/dev/null || echo 'client: no report')"
	note "$(cat "$WORK/stream-server" 2>/dev/null || echo 'server: no report')"
	check "the TCP stream saw no reset or broken pipe through all ten kills" \
		grep -q ' error NONE$' "$WORK/stream-client"
	check "the server got every line, in order" stream_complete
	capture_stop charon-crashes
	check_no_cleartext charon-crashes
}

# status_text_no_loop a|b: the text status counts charon's restarts and
# speaks of no crash loop
status_text_no_loop() {
	local text
	text=$(grgw_at "$1" status 2>&1) || true
	grep charon <<<"$text"
	grep -Eq 'charon: +running \(pid [0-9]+, [0-9]+ restarts\)$' <<<"$text" &&
		! grep -q 'crash loop' <<<"$text"
}

# kill_charon_when_back a|b OLD-PID: waits (bounded) for a charon other
# than OLD-PID in that gateway, kills it and prints its pid
kill_charon_when_back() {
	local i pids pid
	for i in $(seq 1 500); do
		pids=$(node_pids_named "gw-$1" charon)
		pid=${pids%%[[:space:]]*}
		if [ -n "$pid" ] && [ "$pid" != "$2" ]; then
			kill -KILL "$pid" 2>/dev/null || true
			echo "$pid"
			return 0
		fi
		sleep 0.01
	done
	return 1
}

t_charon_loop() {
	local i pid="" next ms t0 kills=13
	need_tunnel || return 0
	# Ten deaths within ten seconds make a loop; three more double the
	# wait (250, 500, 1000, 2000 ms), long enough to be seen.
	for i in $(seq 1 "$kills"); do
		next=$(kill_charon_when_back a "$pid") || { fail "kill $i: no new charon in gw-a"; return 0; }
		pid=$next
	done
	# (the last kill may not be reaped yet: wait a moment for it)
	check "gw-a status: a crash loop, the restart waits" \
		wait_until 2 status_is a '.charon.crash_loop == true and .charon.running == false and .charon.restart_delay_ms > 0'
	check "grgw status (text) at gw-a speaks of the crash loop" \
		eval 'grgw_at a status | grep -E "crash loop: (restarting in [0-9]+ ms|the next restart waits)"'
	t0=$(now_ms)
	if ms=$(ms_until_ping_crosses "$t0"); then
		pass "the loop ends: traffic flows again, $ms ms after the last kill"
	else
		fail "the loop ends: traffic flows again (none within 30 s)"
		diag
	fi
	check "gw-a status: no longer a crash loop once charon stays up ten seconds" \
		wait_until 20 status_is a '.charon.crash_loop == false and .charon.running == true'
	check "gw-a status: tunnel up" wait_until 20 status_is a "$TUNNEL_UP_JQ"
}

# stream_complete: the server got as many lines as the client sent, in order
stream_complete() {
	local sent got
	sent=$(awk '{ print $3 }' "$WORK/stream-client")
	got=$(awk '{ print $3 }' "$WORK/stream-server")
	cat "$WORK/stream-client" "$WORK/stream-server"
	[ -n "$sent" ] && [ "$sent" = "$got" ] && grep -q ' in-order yes$' "$WORK/stream-server"
}

# new_charon_in NODE OLD-PID: a charon runs in NODE, and it is not OLD-PID
new_charon_in() {
	local pids
	pids=$(node_pids_named "$1" charon)
	echo "charon now: ${pids:-none} (killed: $2)"
	[ -n "$pids" ] && ! grep -qx "$2" <<<"$pids"
}

# ---- privilege separation -----------------------------------------------------

# socket_owner NODE tcp|udp PORT: pid of the process with a socket bound
# to PORT (a TCP listener, or any UDP socket)
socket_owner() {
	local flags=-Hlnp
	[ "$2" = udp ] && flags=-Hanp
	on "$1" ss "$flags" --"$2" "sport = :$3" | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2
}

# proc_field PID FIELD: a line's value in /proc/PID/status
proc_field() { awk -v f="$2:" '$1 == f { $1 = ""; print substr($0, 2) }' "/proc/$1/status"; }

proc_unprivileged() {
	local uids gids
	uids=$(proc_field "$1" Uid)
	gids=$(proc_field "$1" Gid)
	echo "pid $1: Uid $uids, Gid $gids, Groups '$(proc_field "$1" Groups)'"
	! grep -qw 0 <<<"$uids $gids" && [ -z "$(proc_field "$1" Groups)" ]
}

proc_no_caps() {
	local f v ok=0
	for f in CapInh CapPrm CapEff CapAmb; do
		v=$(proc_field "$1" "$f")
		echo "pid $1: $f $v (CapBnd $(proc_field "$1" CapBnd))"
		[ "$v" = 0000000000000000 ] || ok=1
	done
	return $ok
}

proc_sandboxed() {
	echo "pid $1: NoNewPrivs $(proc_field "$1" NoNewPrivs), Seccomp $(proc_field "$1" Seccomp)"
	[ "$(proc_field "$1" NoNewPrivs)" = 1 ] && [ "$(proc_field "$1" Seccomp)" = 2 ]
}

# root_empty PID: the process's root is an empty directory, not /
root_empty() {
	local root entries
	root=$(readlink "/proc/$1/root")
	entries=$(find "/proc/$1/root/" -mindepth 1 -maxdepth 1 2>&1 | head -5)
	echo "pid $1: root $root: ${entries:-nothing in it}"
	[ "$root" != / ] && [ -z "$entries" ]
}

# inet_sockets NODE PID: the TCP and UDP sockets PID has, one a line
inet_sockets() { on "$1" ss -Htuanp | grep "pid=$2," || true; }

# socket_inodes PID: inodes of PID's sockets
socket_inodes() {
	find "/proc/$1/fd" -lname 'socket:*' -printf '%l\n' 2>/dev/null | tr -dc '0-9\n'
}

# holds_netlink_and_vici NODE PID VICI-PATH: PID has a netlink socket and
# the client end of the connection to charon's VICI socket
holds_netlink_and_vici() {
	local inodes peer nl
	inodes=$(socket_inodes "$2")
	peer=$(on "$1" ss -Hxpn | awk -v p="$3" '$5 == p { print $8 }' | head -n 1)
	nl=$(netlink_inodes "$1" | grep -cxF "$inodes")
	echo "pid $2: $nl netlink sockets, VICI peer inode ${peer:-none}"
	[ "$nl" -gt 0 ] && [ -n "$peer" ] && grep -qx "$peer" <<<"$inodes"
}

# netlink_inodes NODE: inodes of the netlink sockets in NODE's namespace
# shellcheck disable=SC2016
netlink_inodes() { on "$1" awk 'NR > 1 { print $NF }' /proc/net/netlink; }

t_privsep() {
	local parent child new dir t0 t1 before
	need_tunnel || return 0
	need_sinks || return 0
	dir=$LAB_RUN_DIR/$(conf_value "$CONF_A" site name)
	parent=$(status_json a | jq -r .daemon.pid)
	child=$(socket_owner gw-a udp 4211)
	note "gw-a: daemon pid $parent, probe socket held by pid ${child:-none}"
	check "the probe socket (UDP 4211) is held by a process other than the daemon" \
		test -n "$child" -a "$child" != "$parent"
	[ -n "$child" ] || return 0
	check "that process also holds the HTTP listener (TCP 9421)" \
		test "$(socket_owner gw-a tcp 9421)" = "$child"
	check "it runs as a user and group other than root" proc_unprivileged "$child"
	check "its capability sets are empty" proc_no_caps "$child"
	check "it has no_new_privs and a seccomp filter" proc_sandboxed "$child"
	check "its root is an empty directory" root_empty "$child"
	check "the daemon has no TCP or UDP socket at all" test -z "$(inet_sockets gw-a "$parent")"
	check "the daemon holds the netlink sockets and the VICI connection" \
		holds_netlink_and_vici gw-a "$parent" "$dir/charon.vici"
	check "the network process has no netlink socket" \
		test "$(netlink_inodes gw-a | grep -cxF "$(socket_inodes "$child")")" = 0

	before=$(status_json a | jq -r '.netproc.restarts')
	capture_start privsep || { fail "WAN capture"; return 0; }
	t0=$(now_ms)
	kill -KILL "$child"
	wait_until 10 new_socket_owner gw-a "$child" || true
	t1=$(now_ms)
	new=$(socket_owner gw-a udp 4211)
	note "network process back after $((t1 - t0)) ms (pid ${new:-none}; polled every 0.2 s)"
	check "a new network process holds the probe socket" test -n "$new" -a "$new" != "$child"
	check "the kill is in the daemon's log" grep -q "network process killed by signal 9" "$dir/grgw.log"
	check "status: the network process restarted once, and runs" \
		status_has a ".netproc.running == true and .netproc.restarts == $((before + 1)) and .netproc.pid == $new"
	check "the link is up again" wait_until 10 status_is a '.peers[0].link.state == "up"'
	check "the new process is as unprivileged" proc_no_caps "$new"
	check_traffic_flows
	capture_stop privsep
	check_no_cleartext privsep
}

new_socket_owner() {
	local pid
	pid=$(socket_owner "$1" udp 4211)
	[ -n "$pid" ] && [ "$pid" != "$2" ]
}

# after down --purge: nothing of grgw's left in a gateway namespace
rules_are_defaults() {
	local fam=$1 allowed=$2 prefs
	on "gw-$3" ip "-$fam" rule show
	prefs=$(on "gw-$3" ip "-$fam" rule show | awk -F: '{ print $1 }' | tr '\n' ' ')
	for p in $prefs; do
		[[ " $allowed " == *" $p "* ]] || return 1
	done
}
routes_main_local_only() {
	local out
	out=$(on "gw-$1" ip -4 route show table all; on "gw-$1" ip -6 route show table all)
	echo "$out"
	! grep -E ' table ' <<<"$out" | grep -Evq ' table (local|main)( |$)'
}
no_routes_to() {
	! on "gw-$1" ip route show table all | grep -E "$2|unreachable|prohibit|blackhole" &&
	! on "gw-$1" ip -6 route show table all | grep -E "$3|unreachable|prohibit|blackhole"
}
no_daemons_in() {
	local procs
	procs=$(for p in $(ip netns pids "$NS_PREFIX$1"); do cat "/proc/$p/comm" 2>/dev/null; done)
	echo "processes in gw-$1: ${procs:-none}"
	! grep -Eqx 'grgw|charon' <<<"$procs"
}
no_tunnel_links() {
	! on "gw-$1" ip -d link show | grep -E -B1 ' (tun|xfrm) '
}
nft_empty() {
	[ -z "$(on "gw-$1" nft list ruleset)" ]
}
no_shaping() {
	! on "gw-$1" tc qdisc show | grep -E 'htb|tbf|clsact|ingress|prio'
}

t_local_down() {
	local s
	need_tunnel || return 0
	need_sinks || return 0
	capture_start local-down || { fail "WAN capture"; return 0; }

	down_one a local-down
	expect_rc "grgw down on gw-a" "$RC" 0 "$WORK/local-down-a.log"
	check_fails_closed
	check "gw-a status: daemon not running, tunnel not up" \
		status_has a '.daemon.running == false and ((.peers // []) | all(.tunnel != "up"))'
	check "no grgw or charon left in gw-a" no_daemons_in a
	capture_stop local-down
	check_no_cleartext local-down

	up_one a local-up
	expect_rc "grgw up on gw-a again" "$RC" 0 "$WORK/local-up-a.log"
	wait_until 60 ping_ok vellum-a "$VELLUM_B4" || true
	check_traffic_flows

	down_one a purge --purge
	expect_rc "grgw down --purge on gw-a" "$RC" 0 "$WORK/purge-a.log"
	down_one b purge --purge
	expect_rc "grgw down --purge on gw-b" "$RC" 0 "$WORK/purge-b.log"
	for s in a b; do
		check "gw-$s: only the kernel's IPv4 rules left" rules_are_defaults 4 "0 32766 32767" "$s"
		check "gw-$s: only the kernel's IPv6 rules left" rules_are_defaults 6 "0 32766" "$s"
		check "gw-$s: routes only in tables main and local" routes_main_local_only "$s"
		check "gw-$s: no grgw or charon process" no_daemons_in "$s"
		check "gw-$s: no tunnel device" no_tunnel_links "$s"
		check "gw-$s: no nftables rules" nft_empty "$s"
		check "gw-$s: no traffic shaping" no_shaping "$s"
	done
	check "gw-a: no route at all to site B's prefixes" no_routes_to a '198\.18\.2\.' '2001:db8:b:'
	check "gw-b: no route at all to site A's prefixes" no_routes_to b '198\.18\.1\.' '2001:db8:a:'
}

t_wrong_psk() {
	local dir=$WORK/wrong-key conf_b=$CONF_B s log rc
	need_lab "$WANT_MODE" || return 0
	need_grgw || return 0
	stop_grgw
	mkdir -p "$dir"
	new_psk "$dir/psk" || { fail "grgw keygen"; return 0; }
	check "site B's key differs from site A's" check_not_same "$LABCONF/psk" "$dir/psk"
	render_conf "$HERE/site-b.conf" "$dir/site-b.conf" "$dir" "$LAB_MODE"
	CONF_B=$dir/site-b.conf

	up_both wrong-psk
	for s in a b; do
		log=$WORK/wrong-psk-$s.log
		rc=$([ "$s" = a ] && echo "$RC_A" || echo "$RC_B")
		check "grgw up on gw-$s fails (exit $rc)" test "$rc" -ne 0
		check "gw-$s says \"authentication failed\"" grep -qi 'authentication failed' "$log"
		check_not "gw-$s does not blame a timeout" grep -Eqi 'timeout|timed out' "$log"
		note "gw-$s: $(tr '\n' ' ' <"$log" | cut -c1-200)"
	done
	down_one a wrong-psk-down --purge
	expect_rc "grgw down --purge on gw-a" "$RC" 0 "$WORK/wrong-psk-down-a.log"
	down_one b wrong-psk-down --purge
	expect_rc "grgw down --purge on gw-b" "$RC" 0 "$WORK/wrong-psk-down-b.log"
	CONF_B=$conf_b
}
check_not_same() { ! cmp -s "$1" "$2"; }

t_nat() {
	local outer=$TEST
	WANT_MODE=nat
	need_lab nat || { WANT_MODE=plain; return 0; }
	TEST="$outer/up"; t_up
	TEST="$outer/reach"; t_reach
	TEST="$outer/wan"; t_wan
	TEST=$outer
	stop_grgw
	WANT_MODE=plain
}

# shellcheck source-path=SCRIPTDIR source=link-tests.sh
. "$HERE/link-tests.sh"
# shellcheck source-path=SCRIPTDIR source=harden-tests.sh
. "$HERE/harden-tests.sh"
# shellcheck source-path=SCRIPTDIR source=interop-tests.sh
. "$HERE/interop-tests.sh"
# shellcheck source-path=SCRIPTDIR source=monitor-tests.sh
. "$HERE/monitor-tests.sh"
# shellcheck source-path=SCRIPTDIR source=reload-tests.sh
. "$HERE/reload-tests.sh"
# shellcheck source-path=SCRIPTDIR source=x509-tests.sh
. "$HERE/x509-tests.sh"
# shellcheck source-path=SCRIPTDIR source=rekey-tests.sh
. "$HERE/rekey-tests.sh"
# shellcheck source-path=SCRIPTDIR source=rotate-tests.sh
. "$HERE/rotate-tests.sh"
# shellcheck source-path=SCRIPTDIR source=pair-tests.sh
. "$HERE/pair-tests.sh"

# ---- main -------------------------------------------------------------------

lab_main "$@"
