# shellcheck shell=bash
#
# Interoperation with a peer that is not grgw, sourced by run-tests.sh:
#
#   interop-swanctl  gw-b runs Debian's plain strongSwan (charon + swanctl)
#                    with the swanctl.conf printed in README.md, taken from
#                    there; gw-a runs grgw with `probes = icmp`.  The tunnel
#                    comes up, node addresses cross unchanged both ways,
#                    the link says up (icmp), a WAN cut is reported with its
#                    reason and heals, and rekeying at B keeps traffic going.
#
#   vellum-a -- [gw-a: grgw, probes = icmp] -- router -- [gw-b: charon + swanctl] -- vellum-b
#
# gw-b's charon runs in a mount namespace of its own with a private /run
# (charon's pid file is fixed at /run/charon.pid), so it never meets grgw's
# charon or any other; its VICI socket and log are in $IOP_DIR.

CHARON=${CHARON:-/usr/lib/ipsec/charon}
IOP_PID=
IOP_DIR=

# The swanctl.conf block of README.md, with the key filled in.
interop_swanctl_conf() {
	local readme=$HERE/../../README.md key
	key=$(tr -d '\n' <"$LABCONF/psk")
	awk '/<!-- interop: swanctl.conf begin -->/ { on = 1; next }
	     /<!-- interop: swanctl.conf end -->/ { on = 0 }
	     on && !/^```/' "$readme" |
		sed "s|^\([[:space:]]*secret = 0s\).*|\1$key|"
}

interop_strongswan_conf() {
	cat <<-EOF
	charon {
		load = random nonce kdf hmac sha1 sha2 aes gcm openssl curve25519 pem pkcs1 pkcs8 x509 pubkey constraints kernel-libipsec kernel-netlink socket-default vici
		install_routes = yes
		routing_table = 220
		routing_table_prio = 220
		plugins {
			vici {
				socket = unix://$IOP_DIR/charon.vici
			}
		}
		filelog {
			iop {
				path = $IOP_DIR/charon.log
				time_format = %F %T
				default = 1
			}
		}
	}
	swanctl {
		socket = unix://$IOP_DIR/charon.vici
	}
	EOF
}

iop_swanctl() {
	on gw-b env STRONGSWAN_CONF="$IOP_DIR/strongswan.conf" timeout 30 swanctl "$@" \
		--uri "unix://$IOP_DIR/charon.vici"
}

# interop_stop: charon at gw-b gone, forwarding off again (also on exit)
interop_stop() {
	if [ -n "$IOP_PID" ]; then
		kill "$IOP_PID" 2>/dev/null
		wait_until 10 pid_gone "$IOP_PID" || kill -9 "$IOP_PID" 2>/dev/null
		IOP_PID=
	fi
	on gw-b sysctl -qw net.ipv4.ip_forward=0 2>/dev/null
	on gw-b sysctl -qw net.ipv6.conf.all.forwarding=0 2>/dev/null
	return 0
}

iop_vici_ready() { [ -S "$IOP_DIR/charon.vici" ] && iop_swanctl --stats >/dev/null; }

interop_start() {
	IOP_DIR=$WORK/interop-b
	mkdir -p "$IOP_DIR"
	interop_strongswan_conf >"$IOP_DIR/strongswan.conf"
	(umask 077 && interop_swanctl_conf >"$IOP_DIR/swanctl.conf")
	grep -q 'secret = 0s[A-Za-z0-9+/]' "$IOP_DIR/swanctl.conf" || { echo "no secret in the README's swanctl.conf"; return 1; }
	on gw-b sysctl -qw net.ipv4.ip_forward=1
	on gw-b sysctl -qw net.ipv6.conf.all.forwarding=1
	# A private /run: charon's pid file is /run/charon.pid.
	# shellcheck disable=SC2016  # expanded by that sh
	ip netns exec "${NS_PREFIX}gw-b" unshare -m sh -c \
		'mount --make-rprivate / && mount -t tmpfs -o mode=0755 tmpfs /run && exec env STRONGSWAN_CONF="$1" "$2"' \
		sh "$IOP_DIR/strongswan.conf" "$CHARON" >"$IOP_DIR/charon.out" 2>&1 </dev/null &
	IOP_PID=$!
	wait_until 20 iop_vici_ready || { echo "charon at gw-b did not answer on VICI"; tail -n 20 "$IOP_DIR/charon.out"; return 1; }
	iop_swanctl --load-all --file "$IOP_DIR/swanctl.conf"
}

iop_child_installed() { iop_swanctl --list-sas | grep -q INSTALLED; }
status_text_says_icmp() { grgw_at a status | grep -E 'link: +up .*probes icmp'; }
metrics_down_icmp() {
	local m
	m=$(http_get a /metrics) || return 1
	grep -E '^grgw_link_up\{[^}]*\} 0$' <<<"$m" &&
		grep -E '^grgw_link_method\{[^}]*method="icmp"[^}]*\} 1$' <<<"$m"
}

# link_a_says STATE REASON: gw-a's link, measured by ICMP
link_a_says() { link_is a ".state == \"$1\" and .reason == \"$2\" and .method == \"icmp\""; }

# child_spis: the inbound SPIs of B's CHILD_SAs, one line
child_spis() { iop_swanctl --list-sas | awk '$1 == "in" { sub(/,$/, "", $2); print $2 }' | sort | tr '\n' ' '; }
# A rekeyed CHILD_SA names its key exchange: PFS with Curve25519.
child_rekeyed_with_pfs() { iop_swanctl --list-sas | grep -E 'INSTALLED.*ESP:.*CURVE_25519'; }

t_interop_swanctl() {
	local t0 t1 before after
	# shellcheck disable=SC2034  # read by run-tests.sh
	WANT_MODE=plain
	need_lab plain || return 0
	need_grgw || return 0
	stop_grgw
	render_conf "$HERE/site-a.conf" "$CONF_A" "$LABCONF" plain
	sed -i '/^\[peer\]/a probes = icmp' "$CONF_A"
	check "grgw check-config accepts probes = icmp" grgw_at a check-config
	if ! interop_start >"$WORK/interop-start.log" 2>&1; then
		fail "plain strongSwan started at gw-b with the README's swanctl.conf"
		show_file "$WORK/interop-start.log" 20
		interop_stop
		return 0
	fi
	pass "plain strongSwan started at gw-b with the README's swanctl.conf"
	up_one a interop-up
	expect_rc "grgw up at gw-a against plain strongSwan" "$RC" 0 "$WORK/interop-up-a.log"
	check "gw-a status: tunnel up" status_is a "$TUNNEL_UP_JQ"
	check "gw-b (swanctl): CHILD_SA installed" iop_child_installed
	check "gw-a link: up, none, method icmp" wait_until 30 link_a_says up none
	check "gw-a: tunnel path measured by ICMP (RTT > 0)" link_is a '.paths.tunnel.up and .paths.tunnel.rtt_ms.smoothed > 0'
	check "gw-a: underlay path measured by ICMP" link_is a '.paths.underlay.up'
	check "grgw status (text) names the method" status_text_says_icmp
	need_sinks || return 0
	sink_start vellum-a || { fail "TCP sink in vellum-a"; return 0; }
	check "TCP vellum-a -> vellum-b IPv4, source 198.18.1.11 kept" tcp_peer_is vellum-a "$VELLUM_B4" "$VELLUM_A4"
	check "TCP vellum-a -> vellum-b IPv6, source kept" tcp_peer_is vellum-a "$VELLUM_B6" "$VELLUM_A6"
	check "TCP vellum-b -> vellum-a IPv4, source 198.18.2.11 kept" tcp_peer_is vellum-b "$VELLUM_A4" "$VELLUM_B4"
	check "TCP vellum-b -> vellum-a IPv6, source kept" tcp_peer_is vellum-b "$VELLUM_A6" "$VELLUM_B6"

	# A WAN cut on the router: both ICMP paths go silent.
	t0=$(now_ms)
	router nft -f - <<<"table inet grgwlab-cut { chain cut { type filter hook forward priority 0; drop; }; }"
	if wait_until 20 link_a_says down underlay-unreachable; then
		t1=$(now_ms)
		pass "WAN cut: gw-a says down (underlay-unreachable, icmp) after $((t1 - t0)) ms"
	else
		fail "WAN cut: gw-a says down (underlay-unreachable, icmp)"
		note "$(status_json a | jq -c .peers[0].link)"
	fi
	check "WAN cut: /metrics grgw_link_up 0 and grgw_link_method icmp" metrics_down_icmp
	check "WAN cut: state file says down, method icmp" \
		jq -e '.state == "down" and .method == "icmp"' "$(state_file_a)"
	router nft delete table inet grgwlab-cut
	check "WAN healed: gw-a link up again (icmp)" wait_until 120 link_a_says up none
	check "WAN healed: traffic flows" ping_ok vellum-a "$VELLUM_B4"

	# Rekeying at B (CHILD_SA with PFS, then IKE_SA) keeps traffic flowing.
	before=$(child_spis)
	on vellum-a ping -n -q -i 0.2 -c 100 -W 2 "$VELLUM_B4" >"$WORK/interop-rekey-ping.log" 2>&1 &
	local ping_pid=$!
	sleep 2
	check "swanctl --rekey --child at gw-b" iop_swanctl --rekey --child site-a
	sleep 3
	check "swanctl --rekey --ike at gw-b" iop_swanctl --rekey --ike site-a
	wait "$ping_pid" || true
	after=$(child_spis)
	note "CHILD_SA SPIs at B before: $before; after: $after"
	check "the CHILD_SA was rekeyed (new SPIs)" test "$before" != "$after"
	check "the rekeyed CHILD_SA used PFS with Curve25519 (DH 31)" child_rekeyed_with_pfs
	note "pings during the rekeys: $(grep -oE '[0-9]+ packets transmitted, [0-9]+ received' "$WORK/interop-rekey-ping.log")"
	check "pings during the rekeys: at most a few lost" sh -c \
		"grep -oE '[0-9]+ received' '$WORK/interop-rekey-ping.log' | awk '{ exit !(\$1 >= 90) }'"
	check "after the rekeys: TCP vellum-a -> vellum-b, source kept" tcp_peer_is vellum-a "$VELLUM_B4" "$VELLUM_A4"
	check "after the rekeys: gw-a link up (icmp)" wait_until 30 link_a_says up none
	check "after the rekeys: gw-a tunnel up" status_is a "$TUNNEL_UP_JQ"

	down_one a interop-down
	interop_stop
	check "charon at gw-b stopped" test -z "$(node_pids_named gw-b charon)"
}
