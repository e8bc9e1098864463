# shellcheck shell=bash
# Reload tests, sourced by run-tests.sh: `grgw reload` applies an edited
# file to a running gateway while a numbered UDP stream (1,000 packets/s,
# vellum-a -> vellum-b) crosses the tunnel; nothing may be lost.
#
#   vellum-a --- gw-a ==== router ==== gw-b --- vellum-b
#                 ^ grgw reload -c EDITED

RELOAD_PORT=5999
RELOAD_RATE=1000

# udp_stream_start SECONDS: the receiver in vellum-b, then the sender
udp_stream_start() {
	vellum_b /usr/bin/python3 "$HERE/udp-stream.py" recv "$RELOAD_PORT" "$(($1 + 3))" \
		>"$WORK/stream-recv.out" 2>&1 &
	RELOAD_RECV=$!
	# Not a packet before the receiver listens.
	wait_until 10 udp_stream_listening || true
	vellum_a /usr/bin/python3 "$HERE/udp-stream.py" send "$VELLUM_B4" "$RELOAD_PORT" \
		"$RELOAD_RATE" "$1" >"$WORK/stream-send.out" 2>&1 &
	RELOAD_SEND=$!
}

udp_stream_listening() { vellum_b ss -Hlun "sport = :$RELOAD_PORT" | grep -q .; }

# udp_stream_wait: both ends done (not in a subshell: they are our children)
udp_stream_wait() {
	wait "$RELOAD_SEND" "$RELOAD_RECV" 2>/dev/null || true
}

# udp_stream_lost: packets sent and not received; -1 if nothing was sent
udp_stream_lost() {
	local sent got
	sent=$(awk '/^sent/ { print $2 }' "$WORK/stream-send.out")
	got=$(awk '/^received/ { print $2 }' "$WORK/stream-recv.out")
	[ "${sent:-0}" -gt 0 ] || { echo -1; return; }
	echo $(( sent - ${got:-0} ))
}

# child_spis a|b: the CHILD_SAs' ids and SPIs as one line
child_spis() {
	status_json "$1" | jq -c '[.peers[0].child_sas[]? | [.spi_in, .spi_out]]'
}

# reload_with a|b FILE: grgw reload with that file; output in $WORK/reload.out
reload_with() {
	on "gw-$1" "$GRGW" reload -c "$2" >"$WORK/reload.out" 2>&1
}

lost_is_zero() { [ "$1" -eq 0 ]; }

t_reload_same() {
	local before after lost rc=0
	need_tunnel || return 0
	before=$(child_spis a)
	udp_stream_start 4
	sleep 1
	reload_with a "$CONF_A" || rc=$?
	udp_stream_wait
	lost=$(udp_stream_lost)
	after=$(child_spis a)
	check "grgw reload of the same file exits 0" test "$rc" -eq 0
	check "it says nothing changed" grep -q "0 change(s) applied" "$WORK/reload.out"
	check "the CHILD_SA SPIs stay the same ($before)" test "$before" = "$after"
	check "no UDP packet lost ($(cat "$WORK/stream-send.out"), lost $lost)" lost_is_zero "$lost"
}

t_reload_broken() {
	local conf=$WORK/broken-a.conf before after lost rc=0
	need_tunnel || return 0
	{ cat "$CONF_A"; printf '[probe]\ninterval_ms = banana\n'; } >"$conf"
	before=$(child_spis a)
	udp_stream_start 3
	reload_with a "$conf" || rc=$?
	udp_stream_wait
	lost=$(udp_stream_lost)
	after=$(child_spis a)
	check "a broken file is refused with exit 1" test "$rc" -eq 1
	check "the error names file:line" grep -q "broken-a.conf:[0-9]*: " "$WORK/reload.out"
	check "the CHILD_SA SPIs stay the same" test "$before" = "$after"
	check "no UDP packet lost ($(cat "$WORK/stream-send.out"), lost $lost)" lost_is_zero "$lost"
	note "$(head -2 "$WORK/reload.out")"
}

t_reload_dataplane() {
	local conf=$WORK/dp-a.conf other before after lost rc=0
	need_tunnel || return 0
	other=kernel
	[ "$LAB_EXPECT_DP" = kernel ] && other=libipsec
	sed "s/^mode[[:space:]]*=.*/mode = $other/" "$CONF_A" >"$conf"
	before=$(child_spis a)
	udp_stream_start 3
	reload_with a "$conf" || rc=$?
	udp_stream_wait
	lost=$(udp_stream_lost)
	after=$(child_spis a)
	check "a new data plane is refused with exit 3" test "$rc" -eq 3
	check "the reason names [dataplane] mode and down/up" \
		grep -q "\[dataplane\] mode.*grgw down. then .grgw up" "$WORK/reload.out"
	check "the CHILD_SA SPIs stay the same" test "$before" = "$after"
	check "no UDP packet lost ($(cat "$WORK/stream-send.out"), lost $lost)" lost_is_zero "$lost"
}

t_reload_dscp() {
	local conf=$WORK/dscp-a.conf before after lost rc=0
	need_tunnel || return 0
	{ cat "$CONF_A"; printf '[class oam]\ndscp = AF41\n'; } >"$conf"
	before=$(child_spis a)
	udp_stream_start 3
	reload_with a "$conf" || rc=$?
	udp_stream_wait
	lost=$(udp_stream_lost)
	after=$(child_spis a)
	check "a new DSCP for class oam is applied (exit 0)" test "$rc" -eq 0
	check "it says so" grep -q "\[class oam\] dscp 16 -> 34" "$WORK/reload.out"
	check "the nftables table marks with the new DSCP" \
		gw_a nft list table inet grgw-qos
	check "the status shows AF41 for oam" \
		status_is a '[.qos.classes[]? | select(.name == "oam") | .dscp] == ["AF41"]'
	check "the CHILD_SA SPIs stay the same" test "$before" = "$after"
	check "no UDP packet lost ($(cat "$WORK/stream-send.out"), lost $lost)" lost_is_zero "$lost"
	reload_with a "$CONF_A" || true
}
