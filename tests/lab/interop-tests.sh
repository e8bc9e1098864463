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
#   interop-libreswan  gw-b runs Debian's libreswan (pluto) with the
#                    ipsec.conf and ipsec.secrets printed in README.md,
#                    taken from there; gw-a runs grgw with `probes = icmp`
#                    and the kernel data plane.  The same assertions, plus
#                    no clear text on the WAN, refusal while the WAN is cut,
#                    and the detection time of a few cuts.  libreswan has no
#                    userspace data plane: skipped without kernel ESP (the
#                    kernel VM lab, tests/kernel-lab, has it and libreswan).
#
#   vellum-a -- [gw-a: grgw, probes = icmp] -- router -- [gw-b: charon + swanctl | pluto] -- vellum-b
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
status_text_says_icmp() {
	local st
	st=$(grgw_at a status)
	grep -E 'link: +up .*probes icmp' <<<"$st" || { grep -E 'link:' <<<"$st"; return 1; }
}
metrics_down_icmp() {
	local m
	m=$(http_get a /metrics) || return 1
	grep -E '^grgw_link_up\{[^}]*\} 0$' <<<"$m" &&
		grep -E '^grgw_link_method\{[^}]*method="icmp"[^}]*\} 1$' <<<"$m"
}

# link_a_says STATE REASON: gw-a's link, measured by ICMP
link_a_says() { link_is a ".state == \"$1\" and .reason == \"$2\" and .method == \"icmp\""; }

# iop_child_spis: the inbound SPIs of B's CHILD_SAs, one line
iop_child_spis() { iop_swanctl --list-sas | awk '$1 == "in" { sub(/,$/, "", $2); print $2 }' | sort | tr '\n' ' '; }
# A rekeyed CHILD_SA names its key exchange: PFS with Curve25519.
child_rekeyed_with_pfs() { iop_swanctl --list-sas | grep -E 'INSTALLED.*ESP:.*CURVE_25519'; }

# The interop tests run gw-a from a configuration of their own (probes =
# icmp, and the kernel data plane for libreswan): the lab's stays as it
# is for the tests after them, and no gateway is left running with it.
interop_with_own_conf() {
	local saved=$CONF_A mode=$LAB_MODE
	# Whatever runs from the lab's file goes first.
	stop_grgw
	CONF_A=$WORK/interop-site-a.conf
	"$@"
	stop_grgw
	CONF_A=$saved
	# A lab brought up again in another mode meanwhile: the lab's
	# configuration for that mode.
	[ "$LAB_MODE" = "$mode" ] || [ "$LAB_MODE" = none ] ||
		render_conf "$HERE/site-a.conf" "$CONF_A" "$LABCONF" "$LAB_MODE"
}
t_interop_swanctl() { interop_with_own_conf interop_swanctl_run; }
t_interop_libreswan() { interop_with_own_conf interop_libreswan_run; }

interop_swanctl_run() {
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
	before=$(iop_child_spis)
	on vellum-a ping -n -q -i 0.2 -c 100 -W 2 "$VELLUM_B4" >"$WORK/interop-rekey-ping.log" 2>&1 &
	local ping_pid=$!
	sleep 2
	check "swanctl --rekey --child at gw-b" iop_swanctl --rekey --child site-a
	sleep 3
	check "swanctl --rekey --ike at gw-b" iop_swanctl --rekey --ike site-a
	wait "$ping_pid" || true
	after=$(iop_child_spis)
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

# ---- libreswan at gw-b ----------------------------------------------------------
#
# pluto runs in gw-b's namespace with every path of its own under $LSW_DIR
# (configuration, secrets, NSS database, control socket, log), so it never
# meets a system-wide libreswan.  Its programs are where Debian's package
# puts them (the kernel lab unpacks the package there, see
# tests/kernel-lab/guest.sh); LIBRESWAN_LIBEXEC says otherwise.

LSW_LIBEXEC=${LIBRESWAN_LIBEXEC:-/usr/libexec/ipsec}
LSW_PID=
LSW_DIR=
LSW_V6_ROUTE=0

# readme_block NAME: the fenced block of README.md between the markers
# "<!-- interop: NAME begin -->" and "... end -->"
readme_block() {
	awk -v b="<!-- interop: $1 begin -->" -v e="<!-- interop: $1 end -->" \
		'$0 == b { on = 1; next } $0 == e { on = 0 } on && !/^```/' "$HERE/../../README.md"
}

# ipsec.conf: the README's config setup with this test's paths, then its
# connections
lsw_conf() {
	readme_block "libreswan config setup"
	printf '\tlogfile=%s/pluto.log\n\tlogappend=no\n\tdumpdir=%s/run\n\tplutodebug=none\n\n' \
		"$LSW_DIR" "$LSW_DIR"
	readme_block "libreswan ipsec.conf"
}

lsw_secrets() {
	local key
	key=$(tr -d '\n' <"$LABCONF/psk")
	readme_block "libreswan ipsec.secrets" | sed "s|0sPASTE-THE-LINE-OF-THE-PSK-FILE-HERE|0s$key|"
}

whack_b() { on gw-b timeout 30 "$LSW_LIBEXEC/whack" --ctlsocket "$LSW_DIR/run/pluto.ctl" "$@"; }
lsw_ready() { [ -S "$LSW_DIR/run/pluto.ctl" ] && whack_b --status >/dev/null; }

# lsw_missing: why libreswan cannot run here (nothing when it can)
lsw_missing() {
	if [ ! -d /sys/module/esp4 ] || [ ! -d /sys/module/esp6 ]; then
		echo "libreswan has no userspace data plane and this kernel has no ESP (esp4, esp6): it runs in the kernel VM lab (make check-kernel)"
	elif [ ! -x "$LSW_LIBEXEC/pluto" ] || [ ! -x "$LSW_LIBEXEC/whack" ] || [ ! -x "$LSW_LIBEXEC/addconn" ]; then
		echo "libreswan's pluto, whack and addconn are not in $LSW_LIBEXEC (Debian's libreswan; make check-kernel unpacks it in the VM)"
	elif ! ipsec --version 2>/dev/null | grep -q '^Libreswan'; then
		echo "the ipsec command in PATH is not libreswan's, and pluto runs \"ipsec _updown\" (the kernel lab puts libreswan's in /usr/local/sbin)"
	elif ! command -v certutil >/dev/null; then
		echo "no certutil for pluto's NSS database (package libnss3-tools)"
	fi
}

# lsw_stop: pluto at gw-b gone with its IPsec state, routes and forwarding
# as before (also on exit)
lsw_stop() {
	# The kernel lab keeps pluto's log with its results.
	if [ -n "${LAB_KEEP_DIR:-}" ] && [ -f "${LSW_DIR:-/nonexistent}/pluto.log" ]; then
		mkdir -p "$LAB_KEEP_DIR" && cp "$LSW_DIR/pluto.log" "$LAB_KEEP_DIR/pluto-gw-b.log"
		cp "$LAB_RUN_DIR/site-a/grgw.log" "$LAB_KEEP_DIR/grgw-gw-a.log" 2>/dev/null
		cp "$LAB_RUN_DIR/site-a/charon.log" "$LAB_KEEP_DIR/charon-gw-a.log" 2>/dev/null
	fi
	if [ -n "$LSW_PID" ]; then
		whack_b --shutdown >/dev/null 2>&1
		wait_until 20 pid_gone "$LSW_PID" || kill -9 "$LSW_PID" 2>/dev/null
		wait "$LSW_PID" 2>/dev/null
		LSW_PID=
		on gw-b ip xfrm policy flush 2>/dev/null
		on gw-b ip xfrm state flush 2>/dev/null
	fi
	if [ "$LSW_V6_ROUTE" = 1 ]; then
		on gw-b ip -6 route del "$SITE_A_PREFIX6" dev "$GW_WAN_IF" 2>/dev/null
		LSW_V6_ROUTE=0
	fi
	on gw-b sysctl -qw net.ipv4.ip_forward=0 2>/dev/null
	on gw-b sysctl -qw net.ipv6.conf.all.forwarding=0 2>/dev/null
	return 0
}

lsw_start() {
	LSW_DIR=$WORK/libreswan-b
	mkdir -p "$LSW_DIR/run" "$LSW_DIR/nss" "$LSW_DIR/ipsec.d"
	lsw_conf >"$LSW_DIR/ipsec.conf"
	(umask 077 && lsw_secrets >"$LSW_DIR/ipsec.secrets")
	grep -q '^config setup$' "$LSW_DIR/ipsec.conf" || { echo "no config setup in the README"; return 1; }
	grep -q '^conn site-a$' "$LSW_DIR/ipsec.conf" || { echo "no conn site-a in the README's ipsec.conf"; return 1; }
	grep -q ': PSK 0s[A-Za-z0-9+/]' "$LSW_DIR/ipsec.secrets" || { echo "no PSK in the README's ipsec.secrets"; return 1; }
	# What `ipsec initnss` does, in a directory of the test's own.
	certutil -N -d "sql:$LSW_DIR/nss" --empty-password || return 1
	"$LSW_LIBEXEC/addconn" --config "$LSW_DIR/ipsec.conf" --checkconfig || return 1
	on gw-b sysctl -qw net.ipv4.ip_forward=1
	on gw-b sysctl -qw net.ipv6.conf.all.forwarding=1
	# The README's route: the lab's WAN has no IPv6 default route.
	on gw-b ip -6 route add "$SITE_A_PREFIX6" dev "$GW_WAN_IF" && LSW_V6_ROUTE=1
	# Not through on(): $! must be pluto itself (ip execs it).
	ip netns exec "${NS_PREFIX}gw-b" "$LSW_LIBEXEC/pluto" --nofork --config "$LSW_DIR/ipsec.conf" \
		--rundir "$LSW_DIR/run" --nssdir "$LSW_DIR/nss" --ipsecdir "$LSW_DIR/ipsec.d" \
		--secretsfile "$LSW_DIR/ipsec.secrets" >"$LSW_DIR/pluto.out" 2>&1 </dev/null &
	LSW_PID=$!
	wait_until 30 lsw_ready || { echo "pluto at gw-b did not answer on its control socket"; tail -n 20 "$LSW_DIR/pluto.out"; return 1; }
}

# lsw_child_up NAME: pluto has an established CHILD_SA of that connection
lsw_child_up() { whack_b --trafficstatus | grep -q "\"$1\"\\[\\{0,1\\}[0-9]*\\]\\{0,1\\}.*type=ESP"; }
lsw_children_up() { lsw_child_up site-a && lsw_child_up site-a-v6; }
# lsw_ipsec_states: pluto's CHILD_SA serial numbers ("#3 #4"), one line
lsw_ipsec_states() { whack_b --trafficstatus | grep -oE '#[0-9]+:' | sort | tr '\n' ' '; }
# lsw_no_stale_ike: no IKE SA at pluto waits for answers (one left from a
# charon that grgw restarted is dropped only when pluto's liveness check
# gives up, and then every connection to the peer is restarted)
lsw_no_stale_ike() { ! whack_b --showstates | grep -E 'ESTABLISHED_IKE_SA.*RETRANSMIT'; }
lsw_ike_states() { whack_b --showstates | grep -E 'ESTABLISHED_IKE_SA' | grep -oE '#[0-9]+:' | sort | tr '\n' ' '; }
# lsw_show: pluto's SAs, the policies at gw-b and the end of pluto's log,
# into the report
lsw_show() {
	whack_b --trafficstatus 2>&1 | sed 's/^/     | /'
	whack_b --showstates 2>&1 | cut -c 1-160 | sed 's/^/     | /'
	on gw-b ip xfrm policy 2>&1 | grep -E '^src|dir' | sed 's/^/     | /'
	show_file "$LSW_DIR/pluto.log" 40
}

# lsw_rekeyed_with_pfs LINE: a CHILD_SA established or rekeyed after that line of
# pluto's log names the DH group of its PFS exchange (IKE_AUTH's has none)
lsw_rekeyed_with_pfs() {
	tail -n "+$(($1 + 1))" "$LSW_DIR/pluto.log" |
		grep -E '(established|rekeyed) Child SA.*xfrm=AES_GCM_16_(256|128)-NONE-DH31 '
}

# wan_only_ike_esp TAG: every IP packet on both WAN sides is IKE or ESP
# between the gateways, or ICMP between them (grgw's underlay probes with
# `probes = icmp`, and port unreachable while a charon restarts); ARP and
# IPv6 link-local chatter aside
wan_only_ike_esp() {
	local ifc n other="not arp and not $LINK_LOCAL6 and not (host $GW_A_WAN and host $GW_B_WAN and ($IKE_OR_ESP or icmp))"
	for ifc in "${WAN_IFS[@]}"; do
		n=$(pcap_count "$WORK/$1-$ifc.pcap" "$other") || true
		if [ "$n" = 0 ]; then
			pass "$ifc carried only IKE, ESP and ICMP between the gateways"
		else
			fail "$ifc carried only IKE, ESP and ICMP between the gateways ($n other packets)"
			tcpdump -nn -r "$WORK/$1-$ifc.pcap" "$other" 2>&1 | head -n 5 | sed 's/^/     | /'
		fi
	done
}

# lsw_cut N: one WAN cut on the router, seen by gw-a (icmp) and refused;
# appends the detection time to LSW_DETECT; then healed
lsw_cut() {
	local n=$1 t0 t1
	t0=$(now_ms)
	router nft -f - <<<"table inet grgwlab-cut { chain cut { type filter hook forward priority 0; drop; }; }"
	if wait_until 30 link_a_says down underlay-unreachable; then
		t1=$(now_ms)
		pass "WAN cut $n: gw-a says down (underlay-unreachable, icmp) after $((t1 - t0)) ms"
		LSW_DETECT+=("$((t1 - t0))")
	else
		fail "WAN cut $n: gw-a says down (underlay-unreachable, icmp)"
		note "$(status_json a | jq -c .peers[0].link)"
	fi
	check "WAN cut $n: gw-a status says it refuses traffic to the peer" status_has a '.peers[0].refusing == true'
	check "WAN cut $n: TCP connect vellum-a -> vellum-b refused by gw-a (not a timeout)" \
		connect_refused vellum-a "$VELLUM_B4"
	check "WAN cut $n: TCP connect vellum-a -> vellum-b IPv6 refused by gw-a (not a timeout)" \
		connect_refused vellum-a "$VELLUM_B6"
	check "WAN cut $n: /metrics grgw_link_up 0 and grgw_link_method icmp" metrics_down_icmp
	check "WAN cut $n: state file says down, method icmp" \
		jq -e '.state == "down" and .reason == "underlay-unreachable" and .method == "icmp"' "$(state_file_a)"
	router nft delete table inet grgwlab-cut
	check "WAN cut $n healed: gw-a link up again (icmp)" wait_until 120 link_a_says up none
	check "WAN cut $n healed: gw-a no longer refuses" status_has a '.peers[0].refusing == false'
	check "WAN cut $n healed: TCP vellum-a -> vellum-b, source kept" \
		wait_until 60 tcp_peer_is vellum-a "$VELLUM_B4" "$VELLUM_A4"
}

interop_libreswan_run() {
	local why before after ike_before ike_after ping_pid i log_lines
	# shellcheck disable=SC2034  # read by run-tests.sh
	WANT_MODE=plain
	why=$(lsw_missing)
	if [ -n "$why" ]; then
		skip "$why"
		return 0
	fi
	need_lab plain || return 0
	need_grgw || return 0
	stop_grgw
	render_conf "$HERE/site-a.conf" "$CONF_A" "$LABCONF" plain
	sed -i -e '/^\[peer\]/a probes = icmp' -e 's/^mode[[:space:]]*=.*/mode = kernel/' "$CONF_A"
	check "grgw check-config accepts probes = icmp, mode = kernel" grgw_at a check-config
	capture_start interop-libreswan || { fail "WAN capture"; return 0; }
	if ! lsw_start >"$WORK/lsw-start.log" 2>&1; then
		fail "libreswan started at gw-b with the README's ipsec.conf and ipsec.secrets"
		show_file "$WORK/lsw-start.log" 20
		lsw_stop
		return 0
	fi
	pass "libreswan started at gw-b with the README's ipsec.conf and ipsec.secrets"
	up_one a lsw-up
	expect_rc "grgw up at gw-a against libreswan" "$RC" 0 "$WORK/lsw-up-a.log"
	check "gw-a status: tunnel up" wait_until 60 status_is a "$TUNNEL_UP_JQ"
	if wait_until 60 lsw_children_up; then
		pass "gw-b (pluto): CHILD_SAs of site-a and site-a-v6 established"
	else
		fail "gw-b (pluto): CHILD_SAs of site-a and site-a-v6 established"
		lsw_show
	fi
	check "gw-a link: up, none, method icmp" wait_until 60 link_a_says up none
	check "gw-a: tunnel path measured by ICMP (RTT > 0)" link_is a '.paths.tunnel.up and .paths.tunnel.rtt_ms.smoothed > 0'
	# The text a moment later than the JSON above: on an emulated CPU the
	# link may be degraded for a moment in between (a limit, not a measure).
	check "grgw status (text): link up, probes icmp" wait_until 10 status_text_says_icmp
	check "gw-a: kernel data plane" status_has a '.dataplane == "kernel"'
	need_sinks || { lsw_stop; return 0; }
	sink_start vellum-a || { fail "TCP sink in vellum-a"; lsw_stop; return 0; }
	check "TCP vellum-a -> vellum-b IPv4, source 198.18.1.11 kept" wait_until 30 tcp_peer_is vellum-a "$VELLUM_B4" "$VELLUM_A4"
	check "TCP vellum-a -> vellum-b IPv6, source kept" wait_until 30 tcp_peer_is vellum-a "$VELLUM_B6" "$VELLUM_A6"
	check "TCP vellum-b -> vellum-a IPv4, source 198.18.2.11 kept" wait_until 30 tcp_peer_is vellum-b "$VELLUM_A4" "$VELLUM_B4"
	check "TCP vellum-b -> vellum-a IPv6, source kept" wait_until 30 tcp_peer_is vellum-b "$VELLUM_A6" "$VELLUM_B6"
	check "ping vellum-a -> vellum-b IPv6" ping_ok vellum-a "$VELLUM_B6"

	# Rekeying at B (CHILD_SA with PFS, then IKE_SA) keeps traffic flowing.
	if ! wait_until 150 lsw_no_stale_ike; then
		note "pluto still holds an IKE SA that gets no answers:"
		lsw_show
	fi
	check "before the rekeys: gw-a link up (icmp)" wait_until 60 link_a_says up none
	before=$(lsw_ipsec_states)
	ike_before=$(lsw_ike_states)
	log_lines=$(wc -l <"$LSW_DIR/pluto.log")
	on vellum-a ping -n -q -i 0.2 -c 100 -W 2 "$VELLUM_B4" >"$WORK/lsw-rekey-ping.log" 2>&1 &
	ping_pid=$!
	sleep 2
	check "whack --rekey-ipsec site-a at gw-b" whack_b --name site-a --rekey-ipsec
	check "whack --rekey-ipsec site-a-v6 at gw-b" whack_b --name site-a-v6 --rekey-ipsec
	sleep 3
	check "whack --rekey-ike site-a at gw-b" whack_b --name site-a --rekey-ike
	wait "$ping_pid" || true
	wait_until 30 lsw_children_up || true
	after=$(lsw_ipsec_states)
	ike_after=$(lsw_ike_states)
	note "CHILD_SAs at B before: $before; after: $after; IKE SAs before: $ike_before; after: $ike_after"
	[ -n "$after" ] || lsw_show
	check "the CHILD_SAs were rekeyed (new states)" test "$before" != "$after"
	check "the IKE SA was rekeyed (new state)" test "$ike_before" != "$ike_after"
	check "the rekeyed CHILD_SAs used PFS with Curve25519 (DH 31)" lsw_rekeyed_with_pfs "$log_lines"
	note "pings during the rekeys: $(grep -oE '[0-9]+ packets transmitted, [0-9]+ received' "$WORK/lsw-rekey-ping.log")"
	check "pings during the rekeys: at most a few lost" sh -c \
		"grep -oE '[0-9]+ received' '$WORK/lsw-rekey-ping.log' | awk '{ exit !(\$1 >= 90) }'"
	check "after the rekeys: TCP vellum-a -> vellum-b IPv4, source kept" tcp_peer_is vellum-a "$VELLUM_B4" "$VELLUM_A4"
	check "after the rekeys: TCP vellum-b -> vellum-a IPv6, source kept" tcp_peer_is vellum-b "$VELLUM_A6" "$VELLUM_B6"
	check "after the rekeys: gw-a link up (icmp)" wait_until 30 link_a_says up none
	capture_stop interop-libreswan
	check_no_cleartext interop-libreswan
	check_ike_esp interop-libreswan plain
	wan_only_ike_esp interop-libreswan

	# WAN cuts: detected, reported, refused, healed; the detection times
	# are printed (measured, never asserted).
	LSW_DETECT=()
	for i in $(seq "${LSW_CUTS:-3}"); do
		lsw_cut "$i"
	done
	note "link-down detection with icmp probes against libreswan (ms): ${LSW_DETECT[*]:-none}"

	down_one a lsw-down
	expect_rc "grgw down at gw-a" "$RC" 0 "$WORK/lsw-down-a.log"
	lsw_stop
	check "pluto at gw-b stopped" test -z "$(node_pids_named gw-b pluto)"
	check "gw-b: no IPsec state left" test -z "$(on gw-b ip xfrm state)"
}
