# shellcheck shell=bash
#
# Rekeying without loss (sourced by run-tests.sh; the helpers also serve
# tests/bench/rekey-bench.sh).
#
#   rekey  CHILD_SAs rekeyed every 10 s, IKE_SAs every 30 s ([ipsec]); a UDP
#          stream of 1000 packets/s with sequence numbers from vellum-a to
#          vellum-b for REKEY_SECONDS (75): not one packet lost, as many
#          rekeys as the lifetimes imply (counted in charon's logs), and
#          the data plane's packet counters (the tunnel interface's) in
#          line with the stream.  Runs of lost packets are shown with the
#          time each began, to be read next to charon's logs.

REKEY_SECONDS=${REKEY_SECONDS:-75}
REKEY_RATE=${REKEY_RATE:-1000}
REKEY_PORT=7009

# rekey_conf SRC DEST CHILD_REKEY IKE_REKEY: the lab config with [ipsec]
# lifetimes (inserted before [daemon], which render_conf extends).  The
# CHILD_SA's lifetime is 1.4 times its rekey time: with the default 10%
# (1 s at 10 s) the margin is too short to split between the two ends
# (conn_rekey_timers()), both start rekeying at once, and each collision
# makes a CHILD_SA more (32 instead of about 16 for two pairs in 75 s,
# under emulation).
rekey_conf() {
	local src=$1 dest=$2 child=$3 ike=$4
	render_conf "$src" "$dest.tmp" "$LABCONF" "$LAB_MODE" &&
		awk -v child="$child" -v ike="$ike" '
			/^\[daemon\]/ {
				print "[ipsec]"
				print "child_rekey_time = " child
				n = child + 0; u = substr(child, length(child))
				m = u == "m" ? 60 : u == "h" ? 3600 : u == "d" ? 86400 : 1
				print "child_lifetime = " int(n * m * 1.4) "s"
				print "ike_rekey_time = " ike
				print ""
			}
			{ print }' "$dest.tmp" >"$dest" && rm -f "$dest.tmp"
}

# charon_log a|b: the path of that gateway's charon log
charon_log() {
	echo "$LAB_RUN_DIR/$(conf_value "$(site_conf "$1")" site name)/charon.log"
}

# log_size FILE: bytes (0 if none), to read what is appended later
log_size() { stat -c %s "$1" 2>/dev/null || echo 0; }

# log_since FILE OFFSET: what was appended after OFFSET bytes
log_since() { tail -c +"$(($2 + 1))" "$1" 2>/dev/null || true; }

# rekey_counts a|b OFFSET: "CHILD IKE" rekeys charon logged since OFFSET
# (the IKE_SA rekey is logged by the end that started it)
rekey_counts() {
	local text child ike
	text=$(log_since "$(charon_log "$1")" "$2")
	# With make-before-break charon logs "inbound" and then "outbound
	# CHILD_SA grgw{N} established": count the distinct N.
	child=$(grep -o 'CHILD_SA [^ ]*{[0-9]*} established with SPIs' <<<"$text" | sort -u | wc -l)
	ike=$(grep -c 'IKE_SA .* rekeyed between' <<<"$text" || true)
	echo "${child:-0} ${ike:-0}"
}

# rekey_stream SECONDS RATE: the UDP stream vellum-a -> vellum-b; sets
# STREAM_SENT, STREAM_RECEIVED, STREAM_LOST, STREAM_LINE and STREAM_GAPS
# (the runs of lost packets with the wall-clock time each began, to be
# read next to charon's logs)
rekey_stream() {
	local secs=$1 rate=$2 rx=$WORK/udp-recv.out tx=$WORK/udp-send.out pid
	: >"$rx"
	on vellum-b /usr/bin/python3 "$LAB_HERE/udp-seq.py" recv "$REKEY_PORT" 5 "$((secs * 3 + 60))" >"$rx" 2>&1 &
	pid=$!
	wait_until 10 udp_listening || true
	on vellum-a /usr/bin/python3 "$LAB_HERE/udp-seq.py" send "$VELLUM_B4" "$REKEY_PORT" "$rate" "$secs" >"$tx" 2>&1 || true
	wait "$pid" || true
	STREAM_SENT=$(awk '$1 == "sent" { print $2 }' "$tx")
	STREAM_RECEIVED=$(awk '$1 == "received" { print $2 }' "$rx")
	STREAM_SENT=${STREAM_SENT:-0}
	STREAM_RECEIVED=${STREAM_RECEIVED:-0}
	STREAM_LOST=$((STREAM_SENT - STREAM_RECEIVED))
	STREAM_LINE="$(head -1 "$tx") / $(head -1 "$rx")"
	STREAM_GAPS=$(stream_gap_times "$tx" "$rx" "$rate")
}

# stream_gap_times SEND_OUT RECV_OUT RATE: "FIRST-LAST@HH:MM:SS.mmm ..."
stream_gap_times() {
	local start
	start=$(awk '$1 == "start" { print $2 }' "$1")
	[ -n "$start" ] || return 0
	awk -v start="$start" -v rate="$3" '
		$1 == "gaps" {
			for (i = 2; i <= NF; i++) {
				split($i, r, "-")
				t = start + r[1] / rate
				printf "%s%s@%s.%03d", (i > 2 ? " " : ""), $i,
				    strftime("%H:%M:%S", int(t), 1), (t - int(t)) * 1000
			}
		}' "$2"
}

# tun_packets a|b rx|tx: the packets the data plane of that gateway
# delivered (rx) or took to encrypt (tx) on the tunnel's interface
# (libipsec's TUN device, or the xfrm interface), over every SA; -1
# without one
tun_packets() {
	on "gw-$1" ip -s -j link show dev "$TUN_IF" 2>/dev/null |
		jq -r ".[0].stats64.$2.packets // -1" 2>/dev/null || echo -1
}

# Packets besides the stream's (probes, pings) in the data plane while
# it runs: the probes, 20 a second each way, and their answers.
OTHER_PACKETS_PER_S=60

# counters_agree TX_A RX_B: the data plane's packet counters since TX_A
# and RX_B agree with the stream: gw-a's took at least every packet sent,
# gw-b's delivered at least every packet received, and little else
counters_agree() {
	local tx rx other=$(( REKEY_SECONDS * OTHER_PACKETS_PER_S ))
	tx=$(( $(tun_packets a tx) - $1 ))
	rx=$(( $(tun_packets b rx) - $2 ))
	echo "gw-a's data plane took $tx packets, gw-b's delivered $rx (lost between: $(( tx - rx ))); the stream sent $STREAM_SENT, received $STREAM_RECEIVED"
	[ "$tx" -ge "$STREAM_SENT" ] && [ "$tx" -le $(( STREAM_SENT + other )) ] &&
		[ "$rx" -ge "$STREAM_RECEIVED" ] && [ "$rx" -le $(( STREAM_RECEIVED + other )) ]
}

udp_listening() { on vellum-b ss -Hlun "sport = :$REKEY_PORT" | grep -q .; }

# rekey_setup CHILD IKE: both gateways up with those rekey times
rekey_setup() {
	local dir=$WORK/rekey
	mkdir -p "$dir"
	stop_grgw
	CONF_A=$dir/site-a.conf
	CONF_B=$dir/site-b.conf
	rekey_conf "$LAB_HERE/site-a.conf" "$CONF_A" "$1" "$2" &&
		rekey_conf "$LAB_HERE/site-b.conf" "$CONF_B" "$1" "$2" || return 1
	up_both rekey-up
	[ "$RC_A" -eq 0 ] && [ "$RC_B" -eq 0 ] && wait_until 30 tunnel_is_up
}

t_rekey() {
	local conf_a=$CONF_A conf_b=$CONF_B
	rekey_run
	stop_grgw
	CONF_A=$conf_a
	CONF_B=$conf_b
}

rekey_run() {
	local off_a off_b tx_a rx_b ca cb ia ib child ike lo_c hi_c lo_i hi_i pairs secs=$REKEY_SECONDS
	need_lab "$WANT_MODE" || return 0
	need_grgw || return 0
	if ! rekey_setup 10s 30s; then
		fail "tunnel up with child_rekey_time = 10s, ike_rekey_time = 30s"
		diag
		return 0
	fi
	pass "tunnel up with child_rekey_time = 10s, ike_rekey_time = 30s"
	check "ping vellum-a -> vellum-b IPv4" ping_ok vellum-a "$VELLUM_B4"
	off_a=$(log_size "$(charon_log a)")
	off_b=$(log_size "$(charon_log b)")
	tx_a=$(tun_packets a tx)
	rx_b=$(tun_packets b rx)
	rekey_stream "$secs" "$REKEY_RATE"
	note "$STREAM_LINE"
	[ -z "$STREAM_GAPS" ] || note "lost (UTC): $STREAM_GAPS"
	check "$STREAM_SENT packets sent at $REKEY_RATE/s for $secs s" \
		test "$STREAM_SENT" -eq $((secs * REKEY_RATE))
	check "not one packet lost across the rekeys ($STREAM_LOST of $STREAM_SENT)" \
		test "$STREAM_LOST" -eq 0
	# For a look afterwards (the run directories go with grgw down).
	log_since "$(charon_log a)" "$off_a" >"$WORK/rekey-charon-a.log"
	log_since "$(charon_log b)" "$off_b" >"$WORK/rekey-charon-b.log"
	[ -n "${REKEY_KEEP_LOGS:-}" ] && cp "$WORK"/rekey-charon-?.log "$REKEY_KEEP_LOGS/"
	if [ "$tx_a" -ge 0 ] && [ "$rx_b" -ge 0 ]; then
		note "$(counters_agree "$tx_a" "$rx_b" | head -1)"
		check "the data plane's packet counters across the rekeys agree with the stream" \
			counters_agree "$tx_a" "$rx_b"
	fi
	read -r ca ia <<<"$(rekey_counts a "$off_a")"
	read -r cb ib <<<"$(rekey_counts b "$off_b")"
	# CHILD_SAs are logged at both ends; an IKE_SA rekey where it started.
	child=$(( ca > cb ? ca : cb ))
	ike=$(( ia + ib ))
	note "CHILD_SAs established: gw-a $ca, gw-b $cb; IKE_SA rekeys: gw-a $ia, gw-b $ib"
	# Rekeying starts up to the margin (2 s, 3 s) early; a busy machine
	# may delay an exchange: generous bounds on either side.  Each pair
	# of prefixes has a CHILD_SA of its own, rekeyed on its own timer.
	pairs=$(status_json a | jq -r '.peers[0].pairs // 1')
	lo_c=$(( (secs / 10 - 2) * pairs )); hi_c=$(( (secs / 8 + 4) * pairs ))
	# Under emulation an exchange takes long enough for the other end's
	# timer to fire too: a collision makes one CHILD_SA more (24 for two
	# pairs in 75 s in the kernel VM).
	emulated && hi_c=$(( (secs / 6 + 4) * pairs ))
	lo_i=$(( secs / 30 - 1 )); hi_i=$(( secs / 27 + 2 ))
	check "CHILD_SA rekeys as 10 s implies over $secs s for $pairs pairs of prefixes ($child, expected $lo_c..$hi_c)" \
		test "$child" -ge "$lo_c" -a "$child" -le "$hi_c"
	check "IKE_SA rekeys as 30 s implies over $secs s ($ike, expected $lo_i..$hi_i)" \
		test "$ike" -ge "$lo_i" -a "$ike" -le "$hi_i"
	check "tunnel still up at both ends" tunnel_is_up
	check "exactly one IKE_SA at each end" wait_until 15 one_ike_sa_each
}
