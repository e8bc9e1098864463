# shellcheck shell=bash
# Gateway pair tests, sourced by run-tests.sh: two gateways per site, one
# active (it holds the site's floating addresses: the LAN ones the nodes
# route through, the WAN one the other site talks to), fenced through the
# site's etcd (lab.sh up --pair).
#
#   vellum-a --- sw-a --+-- gw-a1 --+-- router --+-- gw-b1 --+-- sw-b --- vellum-b
#   etcd-a ------/      +-- gw-a2 --+            +-- gw-b2 --+      \---- etcd-b
#
#   pair-up        the four gateways started at once: one active per site,
#                  the floating addresses on it alone, the tunnel up,
#                  traffic from the nodes' own addresses, the fence in etcd,
#                  the role in status and /metrics
#   pair-handover  `grgw handover` PAIR_HANDOVERS times, alternating sites,
#                  under a 1,000 packets/s UDP stream, a TCP connection and
#                  a memcached client on one connection (vellum-a ->
#                  memcached at vellum-b): each made before it breaks (the
#                  incoming gateway's own SAs in first), not one packet
#                  lost, no reset, the same source address at the server
#   pair-handover-given-up  `grgw handover` with the standby's etcd
#                  traffic dropped: the active closes its SAs, gives the
#                  handover up and starts the tunnel again; same epoch,
#                  nothing lost
#   pair-kill      the active gateway powered off (kill -9, links down)
#                  PAIR_KILLS times, alternating sites, under the same
#                  stream; it comes back as the standby each time
#   pair-partition each case of the README's table, at site A: one of
#                  the pair's two heartbeat paths cut (nothing moves), both
#                  cut, etcd cut, both cut at the active, both cut for
#                  both (dark, fail closed), the active's WAN down
#   pair-crash     grgw's daemon on the active gateway killed (kill -9),
#                  the host fine: its addresses leave the host at once,
#                  the partner takes over, never two holders
#   pair-freeze    every grgw process of the active gateway stopped
#                  (SIGSTOP), charon and the kernel running: past the
#                  kernel's hold it answers for none of the addresses it
#                  still has, the partner takes them over; thawed, it is
#                  the standby
#   pair-etcd-stall the active alone (its partner off), site A's etcd
#                  stopped (SIGSTOP) for longer than the hold one read
#                  gives: the active lets go, and holds the same epoch
#                  again on etcd's first fresh answer (rule R8): no claim,
#                  no new IKE exchange (the SAs kept across the lapse),
#                  the stream goes on
#   pair-down      grgw down on the active gateway under the stream: it
#                  hands the role over first (the partner takes it by a
#                  handover, not after a silence), then stops
#   pair-reload    a reload that restarts the network process on the
#                  active gateway (new [probe] settings, then the old
#                  ones back) under the stream: its new role engine
#                  resumes the holding: the role and epoch stay, the
#                  partner never claims, no packet lost
#
# All but pair-down and pair-freeze record which gateway holds each floating address
# (addr-trace.py, from the kernel's own address and link events) and
# fails if two ever did at once.

PAIR_KILLS=${PAIR_KILLS:-20}
PAIR_HANDOVERS=${PAIR_HANDOVERS:-20}
# Beside the 1,000 packets/s IPv4 stream, one of IPv6 (a handover's drain
# must carry both families): fast enough that a move losing what it sends
# for a few ms loses some of it
PAIR_PORT6=5998
PAIR_RATE6=250
PAIR_GWS=(gw-a1 gw-a2 gw-b1 gw-b2)

# pair_conf GW: its configuration (lab.sh conf --pair renders them)
pair_conf() { echo "$LABCONF/site-${1#gw-}.conf"; }

# pair_grgw GW CMD [ARG...]: grgw CMD -c its configuration, in it
pair_grgw() {
	local gw=$1 sub=$2
	shift 2
	on "$gw" "$GRGW" "$sub" -c "$(pair_conf "$gw")" "$@"
}

# pair_json GW: its status as JSON ("{}" when it does not answer)
pair_json() {
	local out=$WORK/pair-status-$1.json
	pair_grgw "$1" status --json >"$out" 2>/dev/null </dev/null || echo '{}' >"$out"
	cat "$out"
}

# pair_role GW: "active", "standby", ... or "none"
pair_role() { pair_json "$1" | jq -r '.pair.role // "none"' 2>/dev/null; }

# floating SITE: the site's floating addresses (LAN IPv4, IPv6, WAN)
floating() {
	local S=${1^^}
	plan "GW_${S}_LAN4"
	plan "GW_${S}_LAN6"
	plan "GW_${S}_WAN"
}

# active_of SITE: the one gateway of the site that says active ("" if
# none or both)
active_of() {
	local gw found=()
	for gw in $(pair_gws "$1"); do
		[ "$(pair_role "$gw")" = active ] && found+=("$gw")
	done
	[ ${#found[@]} -eq 1 ] && echo "${found[0]}"
	return 0
}

# pair_settled SITE [GW [alone]]: one gateway active (GW if given), the
# other standby (or, alone, gone), the active one holds every floating
# address and the other none
pair_settled() {
	local site=$1 want=${2:-} alone=${3:-} act other a
	act=$(active_of "$site")
	echo "site $site: active '$act'"
	[ -n "$act" ] || return 1
	[ -z "$want" ] || [ "$act" = "$want" ] || return 1
	other=$(pair_partner "$act")
	[ -n "$alone" ] || [ "$(pair_role "$other")" = standby ] || { echo "$other: $(pair_role "$other")"; return 1; }
	for a in $(floating "$site"); do
		[ "$(holder_of "$a" "$site")" = "$act" ] || { echo "$a: held by '$(holder_of "$a" "$site")'"; return 1; }
	done
	pair_json "$act" | jq -e '.peers[0].tunnel == "up"' >/dev/null || { echo "$act: tunnel not up"; return 1; }
}

# pair_start GW...: grgw up on each, at once; PAIR_RC[GW] its exit code
declare -A PAIR_RC
pair_start() {
	local gw pids=() i=0
	for gw in "$@"; do
		timeout $((UP_TIMEOUT + 30)) ip netns exec "$NS_PREFIX$gw" "$GRGW" up -c "$(pair_conf "$gw")" \
			--timeout "$UP_TIMEOUT" >"$WORK/pair-up-$gw.log" 2>&1 </dev/null &
		pids+=($!)
	done
	for gw in "$@"; do
		PAIR_RC[$gw]=0
		wait "${pids[$i]}" || PAIR_RC[$gw]=$?
		i=$((i + 1))
	done
}

# need_pair: the pair lab with grgw on all four gateways, both sites
# settled
need_pair() {
	need_grgw || return 1
	need_lab pair || return 1
	if pair_settled a >/dev/null 2>&1 && pair_settled b >/dev/null 2>&1; then
		return 0
	fi
	pair_start "${PAIR_GWS[@]}"
	if ! wait_until 30 pair_settled a || ! wait_until 30 pair_settled b; then
		fail "the pairs settled as a precondition"
		pair_diag
		return 1
	fi
}

# pair_diag: each gateway's role and the pair's lines of its log
pair_diag() {
	local gw
	for gw in "${PAIR_GWS[@]}"; do
		note "$gw: $(pair_json "$gw" | jq -c '.pair' 2>/dev/null)"
		# The role's story first: on a slow host the hooks' lines
		# alone fill the log's last lines.
		grep -E 'pair:|handover|float:' "$(pair_log "$gw")" 2>/dev/null |
			tail -n 12 | sed 's/^/     | /'
		show_file "$(pair_log "$gw")" 4
	done
	return 0
}

pair_site_name() { echo "site-$(pair_site "$1")"; }
# pair_log GW: GW's daemon log
pair_log() { echo "$(pair_run_dir "$1")/$(pair_site_name "$1")/grgw.log"; }

# pair_hooks_setup: each gateway gets a hooks directory with one hook that
# records its events (EVENTS-GW: "EVENT DETAIL"), [hooks] in its file
pair_hooks_setup() {
	local gw dir
	for gw in "${PAIR_GWS[@]}"; do
		dir=$LABCONF/hooks-$gw
		mkdir -p "$dir"
		chmod 755 "$dir"
		# The hook expands them, not us.
		# shellcheck disable=SC2016
		printf '#!/bin/sh\necho "${GRGW_EVENT:-link} ${GRGW_DETAIL:-$GRGW_NEW_STATE}" >>%s\n' \
			"$LABCONF/events-$gw" >"$dir/record"
		chmod 755 "$dir/record"
		printf '\n[hooks]\ndir = %s\n' "$dir" >>"$(pair_conf "$gw")"
	done
}

# hook_said GW "EVENT DETAIL": its hook was run with that event
hook_said() { grep -qx "$2" "$LABCONF/events-$1" 2>/dev/null || { cat "$LABCONF/events-$1" 2>/dev/null; return 1; }; }
# hook_count GW LINE: how many times GW's hook was told LINE
hook_count() {
	local n
	n=$(grep -cx "$2" "$LABCONF/events-$1" 2>/dev/null)
	echo "${n:-0}"
}

# ---- the address trace -------------------------------------------------------

# trace_start: addr-trace.py on the four gateways, for every floating address
trace_start() {
	local args=() a
	for a in $(floating a) $(floating b); do
		args+=(--addr "$a")
	done
	rm -f "$WORK/trace.out" "$WORK/trace.ready"
	python3 "$HERE/addr-trace.py" --out "$WORK/trace.out" --ready "$WORK/trace.ready" \
		--marks "$WORK/trace.marks" "${args[@]}" \
		"${PAIR_GWS[@]/#/$NS_PREFIX}" >"$WORK/trace.err" 2>&1 </dev/null &
	TRACE_PID=$!
	wait_until 10 test -e "$WORK/trace.ready" || note "the address trace is not ready: $(cat "$WORK/trace.err")"
}

# trace_stop: the trace written out
trace_stop() {
	kill -TERM "$TRACE_PID" 2>/dev/null
	wait "$TRACE_PID" 2>/dev/null
	return 0
}

# trace_never_two: no floating address was ever held by two gateways
trace_never_two() {
	local bad
	[ -s "$WORK/trace.out" ] || { echo "no trace"; cat "$WORK/trace.err"; return 1; }
	grep '^summary' "$WORK/trace.out"
	grep -q '^overrun' "$WORK/trace.out" && { echo "the kernel dropped address events: the trace proves nothing"; return 1; }
	# summary ADDR changes N max_holders M overlap_ms X longest_none_ms Y
	bad=$(awk '$1 == "summary" && $6 > 1' "$WORK/trace.out")
	# phase NAME ADDR changes N max_holders M ...: in which case
	[ -z "$bad" ] || { grep '^overlap' "$WORK/trace.out" | head -n 5
		awk '$1 == "phase" && $7 > 1' "$WORK/trace.out"; return 1; }
	grep -q '^summary' "$WORK/trace.out"
}

# ---- the stream --------------------------------------------------------------

# stream_gaps: the stream's holes, in packets (at 1,000/s, ms), one a line
stream_gaps() {
	awk '/^gaps/ { for (i = 2; i <= NF; i++) { split($i, r, "-"); if (r[2] != "") print r[2] - r[1] + 1 } }' \
		"$WORK/stream-recv.out"
}

# gaps_summary: "n N p50 X max Y" of stream_gaps
gaps_summary() {
	stream_gaps | sort -n | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "n 0"; exit }
		p50 = v[int((NR + 1) / 2)]; p99 = v[int(NR * 0.99) > 0 ? int(NR * 0.99) : 1]
		printf "n %d p50 %d p99 %d max %d\n", NR, p50, p99, v[NR] }'
}

# ---- the memcached client ----------------------------------------------------

PAIR_MEMC_PORT=11311

# memc_start: memcached in vellum-b on its own IPv4 address (TCP only, as
# the QoS tests' Rogers stand-in), then memc-client.py in vellum-a: one
# connection to it, a set and a get 50 times a second, until memc_stop.
# Both started with ip netns exec itself, which execs them: $! is the
# process memc_stop signals.
memc_start() {
	memc_stop
	rm -f "$WORK/memc-client.out" "$WORK/memc-conns.out"
	ip netns exec "${NS_PREFIX}vellum-b" memcached -u root -p "$PAIR_MEMC_PORT" -U 0 -t 2 \
		-l "$VELLUM_B4" >"$WORK/memcached.log" 2>&1 </dev/null &
	PAIR_MEMC_SERVER=$!
	if ! wait_until 10 memc_listening; then
		note "memcached does not listen at vellum-b"
		show_file "$WORK/memcached.log"
		return 1
	fi
	ip netns exec "${NS_PREFIX}vellum-a" /usr/bin/python3 "$HERE/memc-client.py" \
		--server "$VELLUM_B4" --port "$PAIR_MEMC_PORT" --timeout $((10 * ${LAB_WAIT_SCALE:-1})) \
		--connect-tries "$(emulated && echo 5 || echo 1)" \
		>"$WORK/memc-client.out" 2>&1 </dev/null &
	PAIR_MEMC_CLIENT=$!
	if ! wait_until 10 grep -q '^connected ' "$WORK/memc-client.out"; then
		note "the memcached client did not connect"
		show_file "$WORK/memc-client.out"
		return 1
	fi
}

memc_listening() { vellum_b ss -Hltn "sport = :$PAIR_MEMC_PORT" | grep -q LISTEN; }

# memc_stop: the client told to stop (SIGTERM: it prints its summary),
# then memcached; each killed if it has not ended in 15 s.  Does nothing
# for what is not running.
memc_stop() {
	local pid
	for pid in "${PAIR_MEMC_CLIENT:-}" "${PAIR_MEMC_SERVER:-}"; do
		[ -n "$pid" ] || continue
		kill -TERM "$pid" 2>/dev/null
		wait_until 15 proc_dead "$pid" >/dev/null || kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	PAIR_MEMC_CLIENT=
	PAIR_MEMC_SERVER=
	return 0
}

# memc_conns: memcached's own list of its connections ("stats conns":
# "STAT FD:addr tcp:ADDR:PORT" for each), asked from inside vellum-b on a
# short connection of its own
memc_conns() {
	printf 'stats conns\r\nquit\r\n' |
		vellum_b timeout 10 nc -w 5 "$VELLUM_B4" "$PAIR_MEMC_PORT" | tr -d '\r'
}

# memc_field NAME: a field of the client's summary line ("" if none)
memc_field() {
	awk -v k="$1" '$1 == "memc" { for (i = 2; i < NF; i++) if ($i == k) { print $(i + 1); exit } }' \
		"$WORK/memc-client.out" 2>/dev/null
}

# memc_local: the client's ADDR:PORT, as it said when it connected
memc_local() { awk '$1 == "connected" { print $3; exit }' "$WORK/memc-client.out" 2>/dev/null; }

# memc_kept: the client ran until told to stop, on the connection it began
# with, and every answer was the one expected
memc_kept() {
	local ops
	cat "$WORK/memc-client.out" 2>/dev/null
	ops=$(memc_field ops)
	[ -n "$(memc_local)" ] && [ "$(memc_field local)" = "$(memc_local)" ] &&
		[ "$(memc_field errors)" = 0 ] && [ "$(memc_field reconnects)" = 0 ] &&
		[ "${ops:-0}" -gt 0 ]
}

# memc_served ADDR:PORT: the client is at ADDR:PORT, and memcached listed a
# connection from ADDR:PORT after the moves (memc-conns.out)
memc_served() {
	echo "client: $(memc_local); memcached's connections:"
	grep ':addr ' "$WORK/memc-conns.out" 2>/dev/null
	[ "$(memc_local)" = "$1" ] &&
		grep -qxF "addr tcp:$1" <(sed -n 's/^STAT [0-9]*://p' "$WORK/memc-conns.out" 2>/dev/null)
}

# check_memc_kept NAME: memc_kept and memc_served, as checks
check_memc_kept() {
	local port ops
	port=$(memc_local)
	port=${port##*:}
	ops=$(memc_field ops)
	check "$1: memcached client: one connection throughout, 0 errors, ${ops:-no} operations (longest wait $(memc_field longest_wait_ms) ms)" \
		memc_kept
	check "$1: memcached on vellum-b still serves the client's connection from $VELLUM_A4:${port:-?}" \
		memc_served "$VELLUM_A4:$port"
}

# ---- tests -------------------------------------------------------------------

t_pair_up() {
	local gw site act a
	need_grgw || return 0
	need_lab pair || return 0
	trace_start
	pair_start "${PAIR_GWS[@]}"
	for gw in "${PAIR_GWS[@]}"; do
		expect_rc "grgw up on $gw" "${PAIR_RC[$gw]}" 0 "$WORK/pair-up-$gw.log"
	done
	for site in a b; do
		check "site $site: one gateway active, the other standby, the floating addresses on the active one only" \
			wait_until 30 pair_settled "$site"
		act=$(active_of "$site")
		[ -n "$act" ] || { pair_diag; continue; }
		check "site $site: the standby's grgw up said so" \
			grep -q "^standby for site site-$site: partner" "$WORK/pair-up-$(pair_partner "$act").log"
		check "site $site: status JSON of $act: active, holds the addresses, partner standby and seen" \
			status_pair_is "$act" '.pair.role == "active" and .pair.holds_addresses and .pair.partner.seen and .pair.partner.role == "standby"'
		check "site $site: status JSON of $(pair_partner "$act"): standby, holds nothing, partner active" \
			status_pair_is "$(pair_partner "$act")" '.pair.role == "standby" and (.pair.holds_addresses | not) and .pair.partner.role == "active"'
		check "site $site: the fence in etcd names $act's address" \
			fence_names "$site" "$(plan "GW_$(pair_id "$act")_LAN4")"
		check "site $site: /metrics of $act: grgw_ha_role active 1, partner up" \
			metrics_have "$act" 'grgw_ha_role{site="site-'"$site"'",role="active"} 1' 'grgw_ha_partner_up{site="site-'"$site"'"} 1'
		check "site $site: the text status says the role" \
			eval "pair_grgw $act status | grep -q 'pair:       active'"
	done
	for gw in "${PAIR_GWS[@]}"; do
		check "$gw's role engine runs with the configured timers" engine_timers_are "$gw"
		check "$gw: both heartbeat paths up (status JSON and /metrics)" \
			eval "status_pair_is $gw '[.pair.paths[].up] == [true, true]' &&
				metrics_have $gw 'grgw_ha_path_up{site=\"$(pair_site_name "$gw")\",path=\"2\"} 1'"
	done
	capture_start pair-up || { fail "WAN capture"; return 0; }
	check "ping vellum-a -> vellum-b IPv4" ping_ok vellum-a "$VELLUM_B4"
	check "ping vellum-a -> vellum-b IPv6" ping_ok vellum-a "$VELLUM_B6"
	capture_stop pair-up
	check "wan-a: the tunnel runs between the floating WAN addresses" \
		pcap_has "$WORK/pair-up-wan-a.pcap" "src $GW_A_WAN and dst $GW_B_WAN and $ESP_ONLY"
	for a in "$GW_A1_WAN" "$GW_A2_WAN"; do
		check "wan-a: no ESP from a gateway's own address $a" \
			pcap_lacks "$WORK/pair-up-wan-a.pcap" "src $a and ip proto 50"
	done
	check_no_cleartext pair-up
	trace_stop
	check "no floating address was ever on two gateways" trace_never_two
}

# engine_timers_are GW: the network process of GW logged the [pair]
# timers of its configuration (what the role engine got, not what the
# file says)
engine_timers_are() {
	local want c
	c=$(pair_conf "$1")
	want="every $(conf_value "$c" pair interval_ms) ms; dead $(conf_value "$c" pair dead_ms) ms, guard $(conf_value "$c" pair guard_ms) ms, margin $(conf_value "$c" pair margin_ms) ms"
	# [pair] handover_wait_ms, where the lab sets it
	# (LAB_PAIR_HANDOVER_WAIT_MS)
	[ -z "$(conf_value "$c" pair handover_wait_ms)" ] ||
		want="$want; priority $(conf_value "$c" pair priority); a handover waits up to $(conf_value "$c" pair handover_wait_ms) ms"
	echo "want: $want"
	# The network process's start line ("pair: heartbeats from A to B
	# ..."), not a path's news ("pair: heartbeats arrive on path N").
	grep -F "grgw-net" "$(pair_log "$1")" | grep -F "pair: heartbeats from" | tail -n 1
	grep -F "grgw-net" "$(pair_log "$1")" | grep -F "pair: heartbeats from" | tail -n 1 | grep -qF "$want"
}

# status_pair_is GW JQ: its status JSON satisfies JQ
status_pair_is() { pair_json "$1" | jq -e "$2"; }

# fence_names SITE ADDR: the site's fence key holds ADDR as the holder
fence_names() {
	local v
	v=$(etcd_at "$1" get --print-value-only "/grgw/site-$1/pair") || return 1
	echo "$v"
	jq -e --arg a "$2" '.holder == $a and .epoch >= 1' <<<"$v"
}

# metrics_have GW LINE...: its /metrics has each LINE
metrics_have() {
	local gw=$1 out
	shift
	out=$(on "$gw" curl -sf --max-time 5 http://127.0.0.1:9421/metrics) || return 1
	for l in "$@"; do
		grep -qF "$l" <<<"$out" || { echo "missing: $l"; grep grgw_ha <<<"$out"; return 1; }
	done
}

# pair_moves WHAT N: the udp stream, while move_WHAT is run N times,
# alternating sites; PAIR_DONE counts the moves that
# happened (the other gateway active and holding everything).  The
# memcached client runs through all of them; memcached's list of its
# connections is taken at the end, before the client stops.
pair_moves() {
	local what=$1 n=$2 i site act other
	PAIR_DONE=0
	PAIR_STALE=0
	# Long enough for the moves however slow the host (it is stopped
	# after the last one): under emulation 4 handovers outlasted the
	# 78 s the stream used to be given, and then the 234 s of 12 s a
	# move (270 s; one move there takes up to a minute).
	udp_stream_start $(((n * 30 + 30) * ${LAB_WAIT_SCALE:-1}))
	stream6_start $(((n * 30 + 30) * ${LAB_WAIT_SCALE:-1}))
	capture_start "$what" || { fail "WAN capture"; stream6_stop; return 1; }
	memc_start || true
	sleep 2
	for ((i = 1; i <= n; i++)); do
		site=$([ $((i % 2)) -eq 1 ] && echo a || echo b)
		act=$(active_of "$site")
		[ -n "$act" ] || { note "move $i: site $site has no single active gateway"; pair_diag; break; }
		other=$(pair_partner "$act")
		"move_$what" "$act" || { note "move $i: $what of $act failed"
			show_file "$WORK/$what.log" 4; pair_diag; break; }
		if wait_until 15 pair_settled "$site" "$other" "$("settled_how_$what")"; then
			PAIR_DONE=$((PAIR_DONE + 1))
			move_at "$other settled"
			[ "$i" -eq 1 ] && [ "$what" = kill ] && alone_checks "$other"
		else
			note "move $i: $other did not take site $site over"
			pair_diag
			break
		fi
		"after_$what" "$act" || { note "move $i: $act did not come back as the standby"; pair_diag; break; }
		sleep 1
	done
	sleep 2
	# Asked while the client still holds its connection.
	memc_conns >"$WORK/memc-conns.out" 2>&1
	memc_stop
	capture_stop "$what"
	stream6_stop
	udp_stream_stop
}

# stream6_start SECONDS: the IPv6 stream, vellum-a -> vellum-b's IPv6
# address, until stream6_stop
stream6_start() {
	rm -f "$WORK/stream6.stop"
	vellum_b /usr/bin/python3 "$HERE/udp-stream.py" recv "$PAIR_PORT6" "$(($1 + 13))" \
		--stop "$WORK/stream6.stop" >"$WORK/stream6-recv.out" 2>&1 &
	PAIR_RECV6=$!
	wait_until 10 stream6_listening || true
	move_at "stream6 start"
	vellum_a /usr/bin/python3 "$HERE/udp-stream.py" send "$VELLUM_B6" "$PAIR_PORT6" \
		"$PAIR_RATE6" "$1" --stop "$WORK/stream6.stop" >"$WORK/stream6-send.out" 2>&1 &
	PAIR_SEND6=$!
}

stream6_listening() { vellum_b ss -Hlun "sport = :$PAIR_PORT6" | grep -q .; }

stream6_stop() {
	touch "$WORK/stream6.stop"
	wait "$PAIR_SEND6" "$PAIR_RECV6" 2>/dev/null || true
}

settled_how_handover() { echo ""; }
settled_how_kill() { echo alone; }
# move_handover GW: grgw handover on GW.  Under a scaled wait (an emulated
# host, whose processes stall for a second or more now and then), a
# refusal because GW did not hear its standby at that moment is noted and
# asked again, up to 5 times, a second apart; natively it fails the move.
move_handover() {
	local tries=0 most=0
	emulated && most=5
	move_at "handover $1"
	while ! pair_grgw "$1" handover --timeout $((10 * ${LAB_WAIT_SCALE:-1})) >"$WORK/handover.last" 2>&1; do
		cat "$WORK/handover.last" >>"$WORK/handover.log"
		grep -q "no standby to hand over to" "$WORK/handover.last" &&
			[ $((tries += 1)) -le "$most" ] || return 1
		note "handover of $1 refused, asked again: $(head -n 1 "$WORK/handover.last")"
		sleep 1
	done
	cat "$WORK/handover.last" >>"$WORK/handover.log"
}
after_handover() {
	stale_sas_after "$1"
	wait_until 15 eval "[ \"\$(pair_role $1)\" = standby ]"
}

# ike_remotes GW: the remote address of each IKE_SA GW's charon holds
ike_remotes() {
	on "$1" swanctl --list-sas --uri "unix://$(echo "$(pair_run_dir "$1")"/site-*/charon.vici)" 2>/dev/null |
		awk '$1 == "remote" { a = $NF; sub(/\[[0-9]+\]$/, "", a); print a }'
}

# stale_sas_after GW: GW has just handed its site's role over.  The
# other site's active gateway holds no IKE_SA with the floating WAN
# address any more (GW deleted its SAs while that address was still its
# own; the partner's own SAs carry the tunnel): PAIR_STALE counts those
# it still held, which it would have kept until dead-peer detection.
stale_sas_after() {
	local site far flt
	site=$(pair_site "$1")
	far=$(active_of "$([ "$site" = a ] && echo b || echo a)")
	flt=$([ "$site" = a ] && echo "$GW_A_WAN" || echo "$GW_B_WAN")
	[ -n "$far" ] || return 0
	if ike_remotes "$far" | grep -qxF "$flt"; then
		PAIR_STALE=$((PAIR_STALE + 1))
		note "after $1's handover, $far still holds an IKE_SA with $flt:"
		ike_remotes "$far" | sed 's/^/       /'
	fi
}

# moves.log: when each step of a move came, in ms of the stream (its
# sequence numbers), to place the stream's silences (LAB_KEEP_DIR keeps it)
move_at() { echo "$(( $(now_ms) - $(cat "$WORK/stream.t0" 2>/dev/null || echo 0) )) $*" >>"$WORK/moves.log"; }

move_kill() { move_at "power off $1"; power_off "$1" >>"$WORK/kill.log" 2>&1; }
after_kill() {
	move_at "power on $1"
	power_on "$1" >>"$WORK/kill.log" 2>&1 || return 1
	move_at "grgw up $1"
	pair_start "$1"
	[ "${PAIR_RC[$1]}" -eq 0 ] || { show_file "$WORK/pair-up-$1.log" 5; return 1; }
	wait_until 15 eval "[ \"\$(pair_role $1)\" = standby ]"
	move_at "$1 standby"
}

# made_ready SINCE...: how many times, in the gateways' logs after the
# offsets SINCE (one per gateway of PAIR_GWS), a gateway took the role
# with the SAs it had made ready for the handover carrying the tunnel
made_ready() {
	local gw i=0 n=0
	for gw in "${PAIR_GWS[@]}"; do
		i=$((i + 1))
		n=$((n + $(log_since "$(pair_log "$gw")" "${!i}" |
			grep -c "handover: the SAs made ready carry the tunnel")))
	done
	echo "$n"
}

# xfrm_policy_drops GW COUNTER: what GW's kernel dropped after decrypting
# it, because no inbound policy took the SA it came through, as COUNTER
# of /proc/net/xfrm_stat says (XfrmInTmplMismatch: the policy names
# another SA's tunnel; XfrmInNoPols: none); "" off the kernel data plane
xfrm_policy_drops() {
	[ "$LAB_EXPECT_DP" = kernel ] || return 0
	on "$1" cat /proc/net/xfrm_stat | awk -v c="$2" '$1 == c { n += $2 } END { print n + 0 }'
}

# no_policy_drops COUNTER BEFORE...: every gateway's xfrm_policy_drops
# COUNTER is what it was (BEFORE in PAIR_GWS' order)
no_policy_drops() {
	local gw i=1 now bad=0 c=$1
	for gw in "${PAIR_GWS[@]}"; do
		i=$((i + 1))
		now=$(xfrm_policy_drops "$gw" "$c")
		echo "$gw: ${!i} -> $now"
		[ "$now" = "${!i}" ] || bad=1
	done
	return "$bad"
}

# dev_drops NODE: "DEV rx_dropped|tx_dropped N " for each of NODE's
# devices that dropped any
dev_drops() {
	local d k v
	for d in $(on "$1" ls /sys/class/net 2>/dev/null); do
		for k in rx_dropped tx_dropped; do
			v=$(on "$1" cat "/sys/class/net/$d/statistics/$k" 2>/dev/null)
			[ "${v:-0}" = 0 ] || printf '%s %s %s ' "$d" "$k" "$v"
		done
	done
}

# hold_drops GW: what GW's kernel hold (netlink/floatguard.c, tables
# grgw-pair) dropped, per chain, as "hold CHAIN N " ("" when nothing):
# traffic of a floating address while this gateway held it no more, or
# while the hold's deadline had passed before the next one was written
hold_drops() {
	local fam
	for fam in inet arp; do
		on "$1" nft list table "$fam" grgw-pair 2>/dev/null |
			awk -v fam="$fam" '/^[ \t]*chain / { chain = $2 }
				/counter packets/ { for (i = 1; i < NF; i++) if ($i == "packets" && $(i + 1) > 0)
					printf "hold %s/%s %s ", fam, chain, $(i + 1) }'
	done
}

# lost_none LOST [NAME]: LOST is 0; if not, where each of the stream's
# silences fell among the moves, with what the four gateways (grgw and
# charon) logged around it (NAME stream6: the IPv6 stream's)
lost_none() {
	local gw logs=() how=()
	[ "$1" -eq 0 ] && return 0
	for gw in "${PAIR_GWS[@]}"; do
		logs+=("$gw=$(pair_log "$gw")")
		logs+=("charon-$gw=$(echo "$(pair_run_dir "$gw")"/site-*/charon.log)")
	done
	[ "${2:-}" = stream6 ] &&
		how=(--per-packet $((1000 / PAIR_RATE6)) --offset "$(awk '$2 == "stream6" { print $1; exit }' "$WORK/moves.log")")
	"$PYTHON" "$LAB_HERE/gap-context.py" --moves "$WORK/moves.log" \
		--stream "$WORK/${2:-stream}-recv.out" --lines 60 "${how[@]}" "${logs[@]}"
	# Where else a packet can go: a socket's buffer (charon's UDP 4500
	# on the libipsec data plane, the receiver's), a device's queue, a
	# gateway's kernel hold.
	for gw in vellum-a "${PAIR_GWS[@]}" vellum-b; do
		echo "$gw: $(on "$gw" nstat -asz 2>/dev/null |
			awk '$1 ~ /^Udp6?(InErrors|RcvbufErrors|SndbufErrors)$/ && $2 > 0 { printf "%s %s ", $1, $2 }')$(dev_drops "$gw")$(hold_drops "$gw")"
	done
	return 1
}

t_pair_handover() {
	local lost lost6 gw since=() ready tmpl=() nopols=()
	need_pair || return 0
	for gw in "${PAIR_GWS[@]}"; do
		since+=("$(log_size "$(pair_log "$gw")")")
		tmpl+=("$(xfrm_policy_drops "$gw" XfrmInTmplMismatch)")
		nopols+=("$(xfrm_policy_drops "$gw" XfrmInNoPols)")
	done
	trace_start
	pair_moves handover "$PAIR_HANDOVERS"
	trace_stop
	check "$PAIR_HANDOVERS handovers, alternating sites, each one done by grgw handover" \
		test "$PAIR_DONE" -eq "$PAIR_HANDOVERS"
	lost=$(udp_stream_lost)
	note "stream: $(head -n 1 "$WORK/stream-recv.out"), $lost lost; silences (packets, 1 ms each): $(gaps_summary)"
	# Made before it breaks (README, "Planned handover"): the incoming
	# gateway's own SAs, which the other site added, carry the tunnel
	# before the role moves; the outgoing one drains to it.
	ready=$(made_ready "${since[@]}")
	check "every handover made before it broke: the incoming gateway took the role with its own SAs carrying the tunnel ($ready of $PAIR_HANDOVERS)" \
		test "$ready" -eq "$PAIR_HANDOVERS"
	check "... and the outgoing one's SAs were gone at the other site (their DELETE left before the floating address; stale after $PAIR_STALE)" \
		test "$PAIR_STALE" -eq 0
	# Under software emulation the emulator loses packets of its own,
	# handover or not (the stream's silences show it): there the loss is
	# shown, not counted.
	check_native "$PAIR_HANDOVERS handovers under the 1,000 packets/s stream: not one packet lost ($lost)" \
		lost_none "$lost"
	lost6=$(udp_stream_lost stream6)
	note "IPv6 stream ($PAIR_RATE6 packets/s): $(head -n 1 "$WORK/stream6-recv.out"), $lost6 lost; $(grep '^gaps' "$WORK/stream6-recv.out")"
	check_native "... and under the IPv6 stream beside it (the drain carries both families): not one lost ($lost6)" \
		lost_none "$lost6" stream6
	# XFRM: the incoming gateway's SAs stand beside the outgoing one's at
	# the other site, of the same selectors; what comes through either
	# must pass the kernel's inbound policy check (a policy per SA: one
	# shared took only the newest SA's, hundreds of drops a run).  A
	# packet that arrives on an SA in the instant charon deletes it (its
	# policies go first, then the SA) finds none: the outgoing gateway
	# sends nothing on its SAs for margin_ms before they go, but the
	# emulated VM's backlog can outlast that, and it happens when both
	# sites start at once too (the duplicate IKE_SA deleted); there it
	# is shown, not counted.
	if [ "$LAB_EXPECT_DP" = kernel ]; then
		check "XFRM: no decrypted packet taken to another SA's inbound policy on any gateway (XfrmInTmplMismatch)" \
			no_policy_drops XfrmInTmplMismatch "${tmpl[@]}"
		no_policy_drops XfrmInNoPols "${nopols[@]}" | sed 's/^/     | /'
		check_native "XFRM: no decrypted packet without an inbound policy on any gateway (XfrmInNoPols)" \
			no_policy_drops XfrmInNoPols "${nopols[@]}"
	fi
	check "the stream went on after the last handover" stream_after_last
	check_tcp_kept "handovers"
	check_memc_kept "handovers"
	check_no_cleartext handover
	check "no floating address was ever on two gateways" trace_never_two
}

t_pair_kill() {
	local lost
	need_pair || return 0
	trace_start
	pair_moves kill "$PAIR_KILLS"
	trace_stop
	check "$PAIR_KILLS hard kills of the active gateway, alternating sites: the standby took over each time" \
		test "$PAIR_DONE" -eq "$PAIR_KILLS"
	[ -n "${ALONE_GW:-}" ] && check "[partner back] the hook of $ALONE_GW was told: redundancy restored" \
		hook_said "$ALONE_GW" "redundancy restored"
	lost=$(udp_stream_lost)
	note "stream: $(head -n 1 "$WORK/stream-recv.out"), $lost lost; silences (packets, 1 ms each): $(gaps_summary)"
	note "IPv6 stream ($PAIR_RATE6 packets/s): $(head -n 1 "$WORK/stream6-recv.out"), $(udp_stream_lost stream6) lost"
	check "the stream went on after the last takeover" stream_after_last
	check_tcp_kept "kills"
	check_memc_kept "kills"
	check_no_cleartext kill
	check "no floating address was ever on two gateways" trace_never_two
}

# alone_checks GW: GW is active and its partner is down: every feed says
# the site has no redundancy
alone_checks() {
	check "[partner down] status of $1: partner not seen" \
		wait_until 5 status_pair_is "$1" '.pair.role == "active" and (.pair.partner.seen | not)'
	check "[partner down] /metrics of $1: grgw_ha_partner_up 0" \
		metrics_have "$1" "grgw_ha_partner_up{site=\"site-$(pair_site "$1")\"} 0"
	check "[partner down] the hook of $1 was told: redundancy lost" \
		wait_until 5 hook_said "$1" "redundancy lost"
	ALONE_GW=$1
}

# stream_after_last: packets arrived up to the end of the stream: the
# highest received is within 50 of the last sent, or (under emulation,
# where a silence of tens of ms can fall on the stream's very end) was
# sent a second or more after the last move settled (packet n leaves n ms
# after the stream's start or later)
stream_after_last() {
	local sent high settled
	sent=$(awk '/^sent/ { print $2 }' "$WORK/stream-send.out")
	high=$(awk '/^received/ { print $4 }' "$WORK/stream-recv.out")
	settled=$(awk '$NF == "settled" { ms = $1 } END { print ms }' "$WORK/moves.log" 2>/dev/null)
	echo "sent $sent, highest received $high, the last move settled at ${settled:-?} ms"
	[ -n "$sent" ] && [ -n "$high" ] || return 1
	[ "$high" -ge $((sent - 50)) ] && return 0
	emulated && [ -n "$settled" ] && [ "$high" -ge $((settled + 1000)) ]
}

# ---- partitions --------------------------------------------------------------

# block_in NODE WHAT...: drop, in NODE, what WHAT names (nftables, a table of
# the lab's own): hb (the pair's heartbeats, both ways, on both paths),
# hb-lan (only those on the LAN, the first path), etcd (TCP to or from the
# etcd client port)
block_in() {
	local node=$1 w rules=""
	shift
	for w in "$@"; do
		case $w in
		hb) rules+="add rule inet grgwlab_cut in udp dport $PAIR_PORT drop
add rule inet grgwlab_cut out udp dport $PAIR_PORT drop
" ;;
		hb-lan) rules+="add rule inet grgwlab_cut in iifname $GW_LAN_IF udp dport $PAIR_PORT drop
add rule inet grgwlab_cut out oifname $GW_LAN_IF udp dport $PAIR_PORT drop
" ;;
		etcd) rules+="add rule inet grgwlab_cut in tcp dport $ETCD_CLIENT_PORT drop
add rule inet grgwlab_cut in tcp sport $ETCD_CLIENT_PORT drop
add rule inet grgwlab_cut out tcp dport $ETCD_CLIENT_PORT drop
" ;;
		esac
	done
	on "$node" nft -f - <<NFT
add table inet grgwlab_cut
add chain inet grgwlab_cut in { type filter hook input priority -300; }
add chain inet grgwlab_cut out { type filter hook output priority -300; }
$rules
NFT
}

# unblock NODE: block_in's table gone
unblock() { on "$1" nft delete table inet grgwlab_cut 2>/dev/null || true; }

PAIR_PORT=4212

# trace_mark NAME: a mark in the address trace
trace_mark() { printf '%s %s\n' "$(date +%s.%N)" "$1" >>"$WORK/trace.marks"; }

# held_by_none SITE: no gateway of SITE holds any floating address
held_by_none() {
	local a h
	for a in $(floating "$1"); do
		h=$(holder_of "$a" "$1")
		[ -z "$h" ] || { echo "$a held by $h"; return 1; }
	done
}

t_pair_partition() {
	local act other epoch t0 ms
	need_pair || return 0
	rm -f "$WORK/trace.marks"
	trace_start
	: >"$WORK/partition.times"

	# 0. The pair's first path cut (the LAN), the second (the WAN) fine:
	# nothing moves, and both gateways say which path is down.
	act=$(active_of a)
	other=$(pair_partner "$act")
	epoch=$(pair_json "$act" | jq -r '.pair.epoch')
	trace_mark lan-path-cut
	block_in "$other" hb-lan
	check "[first path cut] both say heartbeat path 1 down, path 2 up" \
		wait_until 5 eval "status_pair_is $act '.pair.paths[0].up == false and .pair.paths[1].up' &&
			status_pair_is $other '.pair.paths[0].up == false and .pair.paths[1].up'"
	sleep 2
	check "[first path cut] nothing moved: $act still active under epoch $epoch, partner seen" \
		eval "pair_settled a $act && status_pair_is $act '.pair.epoch == $epoch and .pair.partner.seen'"
	check "[first path cut] /metrics of $act: grgw_ha_path_up 0 for path 1, 1 for path 2" \
		metrics_have "$act" 'grgw_ha_path_up{site="site-a",path="1"} 0' 'grgw_ha_path_up{site="site-a",path="2"} 1'
	check "[first path cut] the text status says so" \
		eval "pair_grgw $act status | grep -q 'heartbeat paths: 1 DOWN, 2 up'"
	check "[first path cut] $act's log says which path went quiet" \
		grep -q "no heartbeat on path 1 ($(plan "GW_$(pair_id "$act")_LAN4") -> $(plan "GW_$(pair_id "$other")_LAN4"))" \
		"$(pair_log "$act")"
	unblock "$other"
	trace_mark lan-path-mended
	check "[first path cut] mended: both paths up again" \
		wait_until 5 status_pair_is "$act" '.pair.paths[0].up and .pair.paths[1].up'

	# 1. Both heartbeat paths cut, etcd reachable from both.
	act=$(active_of a)
	other=$(pair_partner "$act")
	trace_mark link-cut
	t0=$(now_ms)
	block_in "$other" hb
	# The two may take the role from each other a few times, each time
	# after twice as long (README): a limit with room, not a measure.
	check "[both paths cut] the standby claims and the active lets go: $other active alone" \
		wait_until 20 pair_settled a "$other" alone
	echo "link-cut $(( $(now_ms) - t0 ))" >>"$WORK/partition.times"
	unblock "$other"
	trace_mark link-mended
	check "[both paths cut] mended: one active, one standby" wait_until 30 pair_settled a

	# 2. etcd cut from both, the pair's link fine: nothing moves.
	act=$(active_of a)
	epoch=$(pair_json "$act" | jq -r '.pair.epoch')
	trace_mark etcd-cut
	block_in etcd-a etcd
	sleep 3
	check "[etcd cut] nothing moved: $act still active with epoch $epoch" \
		pair_settled a "$act"
	check "[etcd cut] the status says etcd does not answer" \
		status_pair_is "$act" ".pair.etcd_ok == false and .pair.epoch == $epoch"
	unblock etcd-a
	trace_mark etcd-mended
	check "[etcd cut] mended: etcd answers again" wait_until 10 status_pair_is "$act" '.pair.etcd_ok'

	# 3. Both cut at the active: it lets go, the standby takes over.
	act=$(active_of a)
	other=$(pair_partner "$act")
	trace_mark both-cut-at-active
	t0=$(now_ms)
	block_in "$act" hb etcd
	check "[both cut at the active] $other took over, $act holds nothing" \
		wait_until 10 pair_settled a "$other" alone
	echo "both-cut-at-active $(( $(now_ms) - t0 ))" >>"$WORK/partition.times"
	check "[both cut at the active] $act says it is not active" \
		eval "[ \"\$(pair_role $act)\" != active ]"
	unblock "$act"
	trace_mark both-mended
	check "[both cut at the active] mended: one active, one standby" wait_until 30 pair_settled a

	# 4. etcd and the pair's link both cut: the active lets go, nobody
	# may claim, the site is dark and fails closed.
	act=$(active_of a)
	other=$(pair_partner "$act")
	trace_mark all-cut
	capture_start dark || { fail "WAN capture"; return 0; }
	block_in etcd-a etcd
	block_in "$other" hb
	check "[etcd and link cut] nobody holds the site's addresses" wait_until 10 held_by_none a
	sleep 1
	check "[etcd and link cut] still nobody a second later" held_by_none a
	check_not "[etcd and link cut] vellum-a cannot reach vellum-b" ping_ok vellum-a "$VELLUM_B4"
	capture_stop dark
	check_no_cleartext dark
	unblock etcd-a
	unblock "$other"
	trace_mark all-mended
	check "[etcd and link cut] mended: one active, one standby" wait_until 30 pair_settled a

	# 5. The active's WAN link goes down: it hands over.
	act=$(active_of a)
	other=$(pair_partner "$act")
	trace_mark wan-cut
	t0=$(now_ms)
	on "$act" ip link set "$GW_WAN_IF" down
	check "[active's WAN down] it handed the role to $other" \
		wait_until 10 pair_settled a "$other" alone
	echo "wan-cut $(( $(now_ms) - t0 ))" >>"$WORK/partition.times"
	pair_wan_up "$act"
	trace_mark wan-mended
	check "[active's WAN down] mended: one active, one standby" wait_until 30 pair_settled a
	check "traffic crosses again" ping_ok vellum-a "$VELLUM_B4"

	trace_stop
	while read -r what ms; do
		note "$what: settled in $ms ms (the test's polling included)"
	done <"$WORK/partition.times"
	check "no floating address was ever on two gateways, in any case" trace_never_two
}

# t_pair_down: `grgw down` on the active gateway of a site whose standby is
# healthy hands the role over first: the partner takes it by a handover,
# not after the silence of a death
t_pair_down() {
	local act other lost
	need_pair || return 0
	act=$(active_of a)
	other=$(pair_partner "$act")
	udp_stream_start 20
	sleep 2
	check "grgw down on the active $act" pair_grgw "$act" down
	check "$other took site a over" wait_until 15 pair_settled a "$other" alone
	check "$other took it by a handover, not after a silence" \
		status_pair_is "$other" '.pair.reason | test("handover asked by")'
	check "$act said it handed the role over before stopping" \
		grep -q "handing the role over to partner" "$(pair_log "$act")"
	sleep 2
	udp_stream_stop
	lost=$(udp_stream_lost)
	note "stream: $(head -n 1 "$WORK/stream-recv.out"), $lost lost; silences (packets, 1 ms each): $(gaps_summary)"
	check "the stream went on after the handover" stream_after_last
	pair_start "$act"
	check "$act is back as the standby" wait_until 15 eval "[ \"\$(pair_role $act)\" = standby ]"
}

# comm_pid GW NAME: the pid of the process called NAME in GW
comm_pid() {
	local p
	for p in $(ip netns pids "$NS_PREFIX$1" 2>/dev/null); do
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$2" ] && { echo "$p"; return 0; }
	done
	return 1
}

# daemon_pid GW: the pid of grgw's daemon (not grgw-net, not charon) in GW
daemon_pid() { comm_pid "$1" grgw; }

# said_in FILE TEXT: FILE has TEXT (else it is shown)
said_in() { grep -qF "$2" "$1" || { cat "$1"; return 1; }; }

# t_pair_reload: a reload that restarts the network process (where the
# role engine runs) on the active gateway, under the stream: first new
# [probe] settings, then the old ones back.  Each time the new engine
# resumes the holding the parent still has: the same gateway active
# under the same epoch, the partner never claiming, no packet lost, never
# two holders
t_pair_reload() {
	local act other conf epoch n0 f i=0
	need_pair || return 0
	act=$(active_of a)
	[ -n "$act" ] || { fail "site a has one active gateway"; pair_diag; return 0; }
	other=$(pair_partner "$act")
	epoch=$(pair_json "$act" | jq -r '.pair.epoch')
	conf=$WORK/reload-$act.conf
	{ cat "$(pair_conf "$act")"; printf '\n[probe]\ninterval_ms = 40\n'; } >"$conf"
	trace_start
	udp_stream_start 16
	sleep 2
	for f in "$conf" "$(pair_conf "$act")"; do
		i=$((i + 1))
		n0=$(comm_pid "$act" grgw-net) || n0=none
		on "$act" "$GRGW" reload -c "$f" >"$WORK/pair-reload-$i.out" 2>&1
		check "reload $i of the active $act says it keeps the role" \
			said_in "$WORK/pair-reload-$i.out" "restarts with the new settings and keeps the role"
		check "reload $i: a new network process" \
			wait_until 10 eval "[ \"\$(comm_pid $act grgw-net)\" != $n0 ]"
		sleep 3
		check "reload $i: $act still active under epoch $epoch, $other standby" \
			eval "pair_settled a $act && status_pair_is $act '.pair.epoch == $epoch and (.pair.reason | test(\"resumed\"))'"
	done
	sleep 2
	udp_stream_stop
	trace_stop
	check "$act's new role engine said it resumed the holding" \
		grep -q "resuming epoch $epoch" "$(pair_log "$act")"
	check "$other never claimed: epoch $epoch in its status too" \
		status_pair_is "$other" ".pair.epoch == $epoch and .pair.role == \"standby\""
	note "stream: $(head -n 1 "$WORK/stream-recv.out"); silences (packets, 1 ms each): $(gaps_summary)"
	check "no packet lost over both reloads (lost $(udp_stream_lost))" \
		eval "[ \"\$(udp_stream_lost)\" -eq 0 ]"
	check "no floating address was ever on two gateways" trace_never_two
}

# charon_gone GW: no charon left in GW (it follows its daemon on its own)
charon_gone() {
	local p
	for p in $(ip netns pids "$NS_PREFIX$1" 2>/dev/null); do
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" = charon ] && return 1
	done
	return 0
}

# t_pair_crash: the daemon of the active gateway killed (kill -9), its
# host and links fine: the floating addresses leave that host at once (a
# child of the daemon's takes them off when it is gone), the partner takes
# them over, and never do both hold them
t_pair_crash() {
	local act other pid
	need_pair || return 0
	trace_start
	act=$(active_of a)
	other=$(pair_partner "$act")
	udp_stream_start 20
	sleep 2
	pid=$(daemon_pid "$act") || { fail "no grgw daemon found in $act"; trace_stop; udp_stream_stop; return 0; }
	check "kill -9 of grgw's daemon on the active $act (pid $pid)" kill -KILL "$pid"
	check "$other took site a over, and $act holds no floating address" \
		wait_until 15 pair_settled a "$other" alone
	sleep 2
	udp_stream_stop
	note "stream: $(head -n 1 "$WORK/stream-recv.out"), $(udp_stream_lost) lost; silences (packets, 1 ms each): $(gaps_summary)"
	check "the stream went on after the takeover" stream_after_last
	trace_stop
	check "no floating address was ever on two gateways" trace_never_two
	# What an operator does after a crash: down (from the kernel record),
	# then up, as the standby now.  Had the daemon been killed with its
	# child, the addresses would still be there: one is put back by hand
	# (the trace has ended) for down to find.
	wait_until 10 charon_gone "$act" >/dev/null
	on "$act" ip addr add "$GW_A_WAN/32" dev "$GW_WAN_IF"
	pair_grgw "$act" down >"$WORK/crash-down.log" 2>&1
	check "grgw down after the crash removes a floating address left on $act" \
		eval "grep -q '1 floating address(es) removed' '$WORK/crash-down.log' && [ -z \"\$(on $act ip -o addr show to $GW_A_WAN)\" ]"
	pair_start "$act"
	check "$act is back as the standby" wait_until 15 eval "[ \"\$(pair_role $act)\" = standby ]"
}

# ---- a frozen active ---------------------------------------------------------

# grgw_pids GW: grgw's processes in GW (the daemon, its network process,
# its janitor; not charon)
grgw_pids() {
	local p
	for p in $(ip netns pids "$NS_PREFIX$1" 2>/dev/null); do
		case "$(cat "/proc/$p/comm" 2>/dev/null)" in grgw*) echo "$p" ;; esac
	done
}

# answers_for NODE IFACE ADDR GW GWIF: on NODE's link IFACE, only GW (by
# the MAC of its GWIF) answers ARP or neighbour solicitation for ADDR
answers_for() {
	local macs want
	want=$(on "$4" cat "/sys/class/net/$5/address")
	macs=$(on "$1" python3 "$HERE/float-who.py" --iface "$2" --addr "$3" | sort -u)
	echo "$3 answered by: ${macs:-nobody} (want $4, $want)"
	[ "$macs" = "$want" ]
}

# kernel_holds GW ADDR...: GW's kernel hold sets (table grgw-pair, inet
# and, for IPv4, arp) have each ADDR, and nothing else
kernel_holds() {
	local gw=$1 a sets got want
	shift
	sets=$(on "$gw" nft list set inet grgw-pair held4; on "$gw" nft list set inet grgw-pair held6)
	got=$(grep -oE '[0-9a-f.:]+ timeout' <<<"$sets" | awk '{ print $1 }' | sort | tr '\n' ' ')
	want=$(printf '%s\n' "$@" | sed '/^$/d' | sort | tr '\n' ' ')
	echo "$gw holds in the kernel: ${got:-nothing} (want ${want:-nothing})"
	[ "$got" = "$want" ] || return 1
	for a in "$@"; do
		[[ $a == *:* ]] && continue
		on "$gw" nft list set arp grgw-pair held4 | grep -qF "$a timeout" || { echo "$a: not in arp held4"; return 1; }
	done
}

# hold_rules GW: GW's kernel hold tables have all their drop rules (from
# and to the addresses, IPv4 and IPv6; ARP for the IPv4 ones)
hold_rules() {
	local n4 na
	n4=$(on "$1" nft list table inet grgw-pair | grep -c ' drop$')
	na=$(on "$1" nft list table arp grgw-pair | grep -c ' drop$')
	echo "$1's hold tables: $n4 inet drops (want 4), $na ARP (want 1)"
	[ "$n4" = 4 ] && [ "$na" = 1 ]
}

# cpu_ms PID: the CPU time PID has used, in ms (user + system)
cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{ print int(($14 + $15) * 1000 / hz) }' "/proc/$1/stat"; }

# t_pair_etcd_stall: the active gateway alone holds the role on etcd's
# answers (R4b); etcd stops answering for a moment (a pause of its own, a
# host too busy to run it), longer than an answer holds, so the active
# lets go.  etcd back, its first fresh answer shows the epoch still the
# active's, which holds it again at once under that epoch (R8) and goes on
# with the SAs it kept across the lapse: no claim, no IKE exchange.
t_pair_etcd_stall() {
	local act other epoch takes log off pid guard ms text told
	need_pair || return 0
	act=$(active_of a)
	[ -n "$act" ] || { fail "site a has one active gateway"; pair_diag; return 0; }
	other=$(pair_partner "$act")
	read -r _ _ guard _ <<<"${LAB_PAIR_TIMERS:-20 100 100 40}"
	check "$other powered off: $act alone" power_off "$other"
	check "$act holds site a alone" wait_until 10 pair_settled a "$act" alone
	epoch=$(pair_json "$act" | jq -r '.pair.epoch')
	takes=$(pair_json "$act" | jq -r '.pair.takeovers')
	pid=$(node_pids_named etcd-a etcd)
	check "exactly one etcd in etcd-a" test "$(wc -w <<<"$pid")" -eq 1
	log=$(pair_log "$act")
	check "the hook of $act was told: redundancy lost" wait_until 5 hook_said "$act" "redundancy lost"
	trace_start
	udp_stream_start 12
	capture_start stall || { fail "WAN capture"; udp_stream_stop; trace_stop; return 0; }
	sleep 2
	off=$(log_size "$log")
	told=$(hook_count "$act" "redundancy restored")
	# Stopped for four guards: the hold a read gives (guard - margin)
	# runs out long before.
	ms=$((4 * guard))
	check "etcd of site a stopped for $ms ms" kill -STOP "$pid"
	sleep "$(awk -v ms="$ms" 'BEGIN { printf "%.3f", ms / 1000 }')"
	kill -CONT "$pid"
	check "$act holds site a again" wait_until 10 pair_settled a "$act" alone
	sleep 2
	capture_stop stall
	udp_stream_stop
	trace_stop
	text=$(log_since "$log" "$off")
	grep -E "pair:|initiating" <<<"$text" | sed 's/^/     | /' | head -n 12
	check "$act let go while etcd was stopped" \
		eval "grep -q 'floating addresses released' <<<\"\$text\""
	check "... and held epoch $epoch again on etcd's answer, without a claim" \
		eval "grep -q 'epoch $epoch held again' <<<\"\$text\""
	check "$act's status: active under epoch $epoch, takeovers still $takes" \
		eval "pair_json $act | jq -c '.pair | {role, epoch, takeovers}'; status_pair_is $act '.pair.role == \"active\" and .pair.epoch == $epoch and .pair.takeovers == $takes'"
	check "the SAs kept across the lapse went on: no new IKE exchange" \
		eval "grep -q 'the SAs kept go on' <<<\"\$text\" && ! grep -q 'initiating tunnel' <<<\"\$text\""
	note "stream: $(head -n 1 "$WORK/stream-recv.out"), $(udp_stream_lost) lost; silences (packets, 1 ms each): $(gaps_summary)"
	check "the stream went on after etcd came back" stream_after_last
	check_no_cleartext stall
	check "no floating address was ever on two gateways" trace_never_two
	# The partner off all along: the site never had two gateways.
	check "the hook of $act was not told 'redundancy restored' across the lapse (its partner still off)" \
		test "$(hook_count "$act" "redundancy restored")" -eq "$told"
	check "$other back as the standby" after_kill "$other"
	check "... and now the hook of $act was told: redundancy restored" \
		wait_until 5 eval "[ \"\$(hook_count $act 'redundancy restored')\" -gt $told ]"
}

# t_pair_handover_given_up: a handover the standby cannot follow.  Its
# etcd traffic is dropped just before `grgw handover`: its SAs are made
# ready (the other site's etcd plays no part) and the active closes its
# own, but the standby's claim never reaches etcd.  The active gives the
# handover up after dead_ms + guard_ms and starts the tunnel again itself:
# under the stream, it stays active under the same epoch and its tunnel
# carries the traffic again.  The drain to the partner's SAs carries the
# stream until then; its new IKE_SA's INITIAL_CONTACT deletes them at the
# other site one exchange before its own CHILD_SA is in, and that is the
# stream's one silence (17 ms in the lab; before the drain waited for
# the CHILD_SA, 1,083 ms).
t_pair_handover_given_up() {
	local act other epoch log off text rc dead guard
	need_pair || return 0
	act=$(active_of a)
	[ -n "$act" ] || { fail "site a has one active gateway"; pair_diag; return 0; }
	other=$(pair_partner "$act")
	epoch=$(pair_json "$act" | jq -r '.pair.epoch')
	log=$(pair_log "$act")
	off=$(log_size "$log")
	trace_start
	udp_stream_start 10
	sleep 1
	block_in "$other" etcd
	rc=0
	pair_grgw "$act" handover --timeout 3 >"$WORK/given-up.out" 2>&1 || rc=$?
	sed 's/^/     | /' "$WORK/given-up.out"
	# Long enough for the standby's etcd client to have given its
	# requests up: a claim let through late must not win.
	sleep $((3 * ${LAB_WAIT_SCALE:-1}))
	unblock "$other"
	sleep 2
	udp_stream_stop
	trace_stop
	text=$(log_since "$log" "$off")
	grep -E "handover|pair: " <<<"$text" | sed 's/^/     | /' | head -n 12
	check "grgw handover says the partner did not take the role (exit $rc)" test "$rc" -ne 0
	check "$act closed its SAs for the handover, then gave it up and started the tunnel again" \
		eval "grep -q \"this gateway's go\" <<<\"\$text\" && grep -q 'given up; the tunnel starts again' <<<\"\$text\""
	check "$act is still active under epoch $epoch, $other standby" \
		eval "status_pair_is $act '.pair.role == \"active\" and .pair.epoch == $epoch' && [ \"\$(pair_role $other)\" = standby ]"
	check "$act's tunnel is up again" wait_until 10 eval "pair_json $act | jq -e '.peers[0].tunnel == \"up\"'"
	check "ping vellum-a -> vellum-b IPv4 through $act" ping_ok vellum-a "$VELLUM_B4"
	note "stream: $(head -n 1 "$WORK/stream-recv.out"), $(udp_stream_lost) lost; $(grep '^gaps' "$WORK/stream-recv.out")"
	# The drain left on its own timer instead loses a second of it; one
	# IKE exchange is a few dozen packets here.
	read -r _ dead guard _ <<<"${LAB_PAIR_TIMERS:-20 100 100 40}"
	check_native "the stream had one silence at most, of fewer packets than dead_ms + guard_ms: the drain carried it until $act's CHILD_SA was in" \
		eval "[ \"\$(awk '/^gaps/ { print NF - 1 }' \"\$WORK/stream-recv.out\")\" -le 1 ] && [ \"\$(udp_stream_lost)\" -lt $((dead + guard)) ]"
	check "no floating address was ever on two gateways" trace_never_two
}

# t_pair_freeze: every grgw process of the active gateway stopped
# (SIGSTOP: a host starved of CPU, as far as grgw can tell), charon and the
# kernel still running, under the stream.  Nothing of grgw there can take
# the floating addresses off any more; the kernel's hold does the rest:
# once it has run out, the frozen gateway answers for none of them (ARP,
# neighbour solicitation) and sends and receives nothing through them,
# while the partner takes them over.  Thawed, it gives them up, standby
# under the partner's epoch.
t_pair_freeze() {
	local act other pids lan4 lan6 wan t0 t1 t2 a b a0 b0
	need_pair || return 0
	act=$(active_of a)
	[ -n "$act" ] || { fail "site a has one active gateway"; pair_diag; return 0; }
	other=$(pair_partner "$act")
	read -r lan4 lan6 wan <<<"$(floating a | tr '\n' ' ')"
	check "the kernel holds site a's addresses for the active $act" \
		status_pair_is "$act" '.pair.kernel_hold_ms > 0'
	check "and not for the standby $other" status_pair_is "$other" '.pair.kernel_hold_ms == 0'
	check "$act's kernel hold sets have site a's three addresses" kernel_holds "$act" "$lan4" "$lan6" "$wan"
	check "$other's have none" kernel_holds "$other"
	on "$act" nft delete table arp grgw-pair
	check "$act's ARP hold table deleted behind its back: put back, the hold set again" \
		wait_until 5 kernel_holds "$act" "$lan4" "$lan6" "$wan"
	# Changed, not deleted: its drop rules flushed.  The fail-closed
	# layer's watch puts the table back at the nftables event (the rules,
	# then the hold at once), on the active and on the standby alike.
	on "$act" nft flush chain inet grgw-pair output
	check "$act's inet hold table changed behind its back (output drops flushed): its rules back" \
		wait_until 5 hold_rules "$act"
	check "... and the hold set again" wait_until 5 kernel_holds "$act" "$lan4" "$lan6" "$wan"
	check "... $act logged the change" \
		grep -q "table inet grgw-pair was changed behind grgw's back" "$(pair_log "$act")"
	on "$other" nft flush chain arp grgw-pair output
	check "the standby $other's ARP hold table changed: its rule back" \
		wait_until 5 hold_rules "$other"
	check "... and $other still holds nothing" kernel_holds "$other"
	# What keeping the kernel's hold costs: the active's daemon against
	# the standby's, over the same 5 s (shown, not counted).
	a=$(daemon_pid "$act") && b=$(daemon_pid "$other") && {
		a0=$(cpu_ms "$a"); b0=$(cpu_ms "$b"); sleep 5
		note "CPU of grgw's daemon over 5 s: active $act $(($(cpu_ms "$a") - a0)) ms, standby $other $(($(cpu_ms "$b") - b0)) ms"
	}
	udp_stream_start 40
	t0=$(now_ms)
	capture_start freeze || { fail "WAN capture"; udp_stream_stop; return 0; }
	memc_start || true
	sleep 2
	pids=$(grgw_pids "$act")
	# shellcheck disable=SC2086 # one pid a word
	check "every grgw process of $act stopped (${pids//$'\n'/ })" kill -STOP $pids
	t1=$(now_ms)
	check "$other took site a over while $act is frozen" \
		wait_until 15 eval "[ \"\$(pair_role $other)\" = active ]"
	sleep 1
	note "the frozen $act still has them configured: $(on "$act" ip -o addr show | awk '{ print $4 }' | grep -cE "^($lan4|$lan6|$wan)/") of 3"
	check "only $other answers for the LAN address $lan4" answers_for vellum-a "$NODE_IF" "$lan4" "$other" "$GW_LAN_IF"
	check "only $other answers for the LAN address $lan6" answers_for vellum-a "$NODE_IF" "$lan6" "$other" "$GW_LAN_IF"
	check "only $other answers for the WAN address $wan" answers_for router "$ROUTER_IF_A" "$wan" "$other" "$GW_WAN_IF"
	# shellcheck disable=SC2086
	kill -CONT $pids
	t2=$(now_ms)
	check "$act, thawed, gave the addresses up: $other active, $act standby" \
		wait_until 15 pair_settled a "$other"
	sleep 2
	memc_conns >"$WORK/memc-conns.out" 2>&1
	memc_stop
	capture_stop freeze
	udp_stream_stop
	note "stream: $(head -n 1 "$WORK/stream-recv.out"), $(udp_stream_lost) lost; silences (packets, 1 ms each): $(gaps_summary)"
	note "stopped at $((t1 - t0)) ms of the stream, thawed at $((t2 - t0)) ms; $(grep '^gaps' "$WORK/stream-recv.out")"
	check "the stream went on after the takeover" stream_after_last
	check_memc_kept "freeze"
	check_no_cleartext freeze
	check "$act's log says why it let go" \
		grep -q "floating addresses released" "$(pair_log "$act")"
}
