# shellcheck shell=bash
# Sourced by run-tests.sh: the fail-closed promise and the daemon's limits
# tried as an attacker and a bad day would (defence in depth).
#
#   harden-files   charon holds no descriptor of the daemon's; another
#                  process cannot bind the probe port; `grgw down` cleans
#                  nothing up behind a process holding the site lock
#   harden-block   with the tunnel down, a foreign rule before grgw's,
#                  `ip rule flush`, `ip route flush table` and `nft flush
#                  ruleset`: nothing in clear on the WAN, the block back
#                  at once (HARDEN_TRIES times each), counted and said
#   harden-boot    `grgw block` on a gateway with forwarding on and nothing
#                  of grgw's: fail closed before and through `grgw up`
#   harden-full-run  `grgw up` with a full run directory: a clear error,
#                  the fail-closed layer kept, nothing in clear; with room
#                  again up adopts it and down --purge removes all

# shared_sockets PID1 PID2: socket inodes both processes hold
shared_sockets() {
	comm -12 <(socket_inodes "$1" | sort -u) <(socket_inodes "$2" | sort -u)
}

# charon_fds_own NODE: charon shares no socket with the daemon or the
# network process, and holds nothing beyond its own files and sockets
charon_fds_own() {
	local st cp dp np shared
	st=$(status_json a)
	cp=$(jq .charon.pid <<<"$st"); dp=$(jq .daemon.pid <<<"$st"); np=$(jq .netproc.pid <<<"$st")
	shared=$(shared_sockets "$cp" "$dp"; shared_sockets "$cp" "$np")
	echo "charon pid $cp: $(find "/proc/$cp/fd" -mindepth 1 | wc -l) descriptors; shared with the daemon or the network process: ${shared:-none}"
	find "/proc/$cp/fd" -mindepth 1 -printf '     %f -> %l\n' 2>/dev/null | head -30
	[ -z "$shared" ] && ! find "/proc/$cp/fd" -mindepth 1 -lname '*grgw.log' | grep -q .
}

# squat NODE ADDRESS: bind UDP 4211 on ADDRESS as nobody, with
# SO_REUSEADDR; prints the errno name (or "bound")
squat() {
	on "$1" setpriv --reuid=nobody --regid=nogroup --clear-groups /usr/bin/python3 - "$2" <<-'PY'
	import errno, socket, sys
	a = sys.argv[1]
	s = socket.socket(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_DGRAM)
	s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
	try:
	    s.bind((a, 4211))
	    print("bound")
	except OSError as e:
	    print(errno.errorcode.get(e.errno, str(e.errno)))
	PY
}

t_harden_files() {
	local dir out holder
	need_tunnel || return 0
	check "charon's descriptors are only its own" charon_fds_own
	out=$(squat gw-a "$GW_A_WAN")
	check "an unprivileged process binding UDP 4211 on the WAN address gets EADDRINUSE ($out)" test "$out" = EADDRINUSE
	out=$(squat gw-a "$GW_A_LAN4")
	check "... and on the LAN address ($out)" test "$out" = EADDRINUSE
	check "the link stays up" link_is a '.state == "up"'

	# A process holds the site lock and no daemon answers: down removes
	# nothing (and says why).
	down_one a unlocked-down
	check "grgw down (the fail-closed layer stays)" test "$RC" -eq 0
	dir=$LAB_RUN_DIR/$(conf_value "$CONF_A" site name)
	/usr/bin/python3 -c 'import fcntl, sys, time
f = open(sys.argv[1], "a"); fcntl.flock(f, fcntl.LOCK_EX); time.sleep(60)' "$dir/grgw.pid" &
	holder=$!
	wait_until 5 test -s "$dir/grgw.pid" -o -e "/proc/$holder" || true
	sleep 0.3
	down_one a locked-down --purge
	check "grgw down --purge refuses while another process holds the site lock (exit $RC)" test "$RC" -ne 0
	check "... and says so" grep -q "is running" "$WORK/locked-down-a.log"
	show_file "$WORK/locked-down-a.log" 3
	check "... and the fail-closed objects stay" status_has a '.kernel.block_objects > 0'
	kill "$holder" 2>/dev/null
	wait "$holder" 2>/dev/null
	down_one a locked-down-2 --purge
	check "grgw down --purge once the lock is free (exit $RC)" test "$RC" -eq 0
	check "... removes everything" status_has a '.kernel.block_objects == 0 and .kernel.run_objects == 0'
}

# ---- the fail-closed layer, attacked -----------------------------------------

# grgw_table CONF: grgw's routing table number (T) in a rendered config
grgw_table() { local t; t=$(conf_value "$1" dataplane table 2>/dev/null); echo "${t:-4210}"; }

# The pieces of gw-a's fail-closed layer, each checked on its own.
unreachable_routes_a() {
	local t=$(( $(grgw_table "$CONF_A") + 1 ))
	gw_a ip route show table "$t" | grep -q "^unreachable $SITE_B_PREFIX4" &&
		gw_a ip -6 route show table "$t" | grep -q "^unreachable $SITE_B_PREFIX6"
}
block_rules_a() {
	local t; t=$(grgw_table "$CONF_A")
	gw_a ip rule show | grep -q "^$((t + 1)):.*lookup $((t + 1))" &&
		gw_a ip rule show | grep -q "^$((t - 10)):.*from $SITE_B_PREFIX4 iif $GW_WAN_IF blackhole"
}
wanblock_a() { gw_a nft list table inet grgw-block 2>/dev/null | grep -q "oifname \"$GW_WAN_IF\""; }
# guard_below PREF: a guard rule (lookup T+1) with a preference below PREF
guard_below() {
	local t; t=$(grgw_table "$CONF_A")
	gw_a ip rule show | awk -F: -v p="$1" -v l="lookup $((t + 1))" '$1 + 0 < p && index($0, l) { f = 1 } END { exit !f }'
}
peer_not_via_main() { ! gw_a ip route get "$VELLUM_B4" 2>&1 | grep -q "via $ROUTER_A"; }
repairs_a() { status_json a | jq -r '.kernel.block_repairs // -1'; }

# restored_ms CMD...: poll CMD every 10 ms (bounded: 10 s); prints the
# milliseconds it took, or "never"
restored_ms() {
	local t0 t
	t0=$(now_ms)
	while :; do
		"$@" >/dev/null 2>&1 && { echo $(( $(now_ms) - t0 )); return 0; }
		t=$(now_ms)
		[ $((t - t0)) -gt 10000 ] && { echo never; return 1; }
		sleep 0.01
	done
}

# leak_traffic_start: vellum-a keeps sending to vellum-b (ICMP and TCP,
# IPv4 and IPv6) in the background, so that any gap in the block would
# show in the WAN capture
leak_traffic_start() {
	( while :; do
		on vellum-a ping -n -c 5 -i 0.05 -W 1 "$VELLUM_B4" >/dev/null 2>&1
		on vellum-a ping -n -c 2 -i 0.05 -W 1 "$VELLUM_B6" >/dev/null 2>&1
		on vellum-a timeout 1 nc -z -w 1 "$VELLUM_B4" "$SINK_PORT" >/dev/null 2>&1
	done ) &
	LEAK_PID=$!
}
leak_traffic_stop() {
	[ -n "${LEAK_PID:-}" ] || return 0
	kill "$LEAK_PID" 2>/dev/null
	wait "$LEAK_PID" 2>/dev/null
	LEAK_PID=
	return 0
}

# median and max of numbers on stdin ("never" counts as missing)
p50_max() { grep -v never | sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "none"; else printf "p50 %d ms, max %d ms over %d\n", v[int((NR + 1) / 2)], v[NR], NR }'; }

# remove_once KIND I: one removal of the kind (I numbers the tries)
remove_once() {
	local t; t=$(grgw_table "$CONF_A")
	case $1 in
	rule-override)
		# a foreign rule before grgw's sends the peer prefixes to main
		gw_a ip rule add pref $((100 - 4 * $2)) to "$SITE_B_PREFIX4" lookup main ;;
	rule-flush)
		gw_a ip rule flush; gw_a ip -6 rule flush
		gw_a ip rule add pref 32766 lookup main; gw_a ip rule add pref 32767 lookup default
		gw_a ip -6 rule add pref 32766 lookup main ;;
	route-flush)
		gw_a ip route flush table $((t + 1)); gw_a ip -6 route flush table $((t + 1)) ;;
	nft-flush)
		gw_a nft flush ruleset ;;
	esac
}

# restored KIND I: what must be true again after remove_once KIND I
restored() {
	case $1 in
	rule-override) guard_below $((100 - 4 * $2)) && peer_not_via_main ;;
	rule-flush) block_rules_a ;;
	route-flush) unreachable_routes_a ;;
	nft-flush) wanblock_a && gw_a nft list table inet grgw-failfast >/dev/null 2>&1 ;;
	esac
}

t_harden_block() {
	local kind i n ms before after times
	need_tunnel || return 0
	need_sinks || return 0
	check "gw-a: the WAN block table is installed" wanblock_a
	check "gw-a: the block rules and unreachable routes are installed" eval 'block_rules_a && unreachable_routes_a'
	# The tunnel down (B stopped): only the fail-closed layer stands
	# between site A's traffic and the WAN.
	down_one b block-down
	expect_rc "grgw down on gw-b" "$RC" 0 "$WORK/block-down-b.log"
	wait_until 30 status_is a '.peers[0].tunnel != "up"' || true
	check "gw-a status: tunnel not up" status_has a '.peers[0].tunnel != "up"'
	capture_start harden-block || { fail "WAN capture"; return 0; }
	leak_traffic_start
	n=${HARDEN_TRIES:-3}
	for kind in rule-override rule-flush route-flush nft-flush; do
		before=$(repairs_a)
		times=()
		for ((i = 0; i < n; i++)); do
			remove_once "$kind" "$i"
			ms=$(restored_ms restored "$kind" "$i") || true
			times+=("$ms")
			sleep 0.2	# traffic meets whatever is left
		done
		after=$(repairs_a)
		note "$kind: back after ${times[*]} ms ($(printf '%s\n' "${times[@]}" | p50_max))"
		check "$kind: the block is back every time (${times[*]} ms)" \
			test "$(printf '%s\n' "${times[@]}" | grep -c never)" -eq 0
		check "$kind: grgw counted the repairs ($before -> $after)" test "$after" -ge $((before + 1))
		case $kind in
		rule-override) for ((i = 0; i < n; i++)); do gw_a ip rule del pref $((100 - 4 * i)) 2>/dev/null; done ;;
		esac
	done
	leak_traffic_stop
	sleep 3		# the gateway's ICMP error budget, spent by the traffic
	check "gw-a status says what was repaired" status_has a '.kernel.last_repair != null and .kernel.block_overridden == false'
	check "gw-a log says what was repaired" grep -q "fail-closed layer repaired" "$LAB_RUN_DIR/$(conf_value "$CONF_A" site name)/grgw.log"
	check "grgw_block_repairs_total in the metrics" eval "http_get a /metrics | grep -q '^grgw_block_repairs_total{.*} [1-9]'"
	capture_stop harden-block
	check_no_cleartext harden-block
	check_fails_closed

	up_one b block-up
	expect_rc "grgw up on gw-b again" "$RC" 0 "$WORK/block-up-b.log"
	wait_until 60 ping_ok vellum-a "$VELLUM_B4" || true
	check_traffic_flows
}

# ---- from boot ------------------------------------------------------------------

t_harden_boot() {
	local out
	need_tunnel || return 0
	need_sinks || return 0
	# A gateway as it boots: nothing of grgw's in the kernel, forwarding
	# on, a default route to the WAN.
	down_one a boot-purge --purge
	expect_rc "grgw down --purge on gw-a" "$RC" 0 "$WORK/boot-purge-a.log"
	gw_a sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
	check_not "nothing of grgw's is left in gw-a" wanblock_a
	out=$(gw_a "$GRGW" block -c "$CONF_A" 2>&1) && RC=0 || RC=$?
	note "grgw block: $out"
	expect_rc "grgw block on gw-a" "$RC" 0 /dev/null
	check "... installs the WAN block" wanblock_a
	check "... and the block rules and unreachable routes" eval 'block_rules_a && unreachable_routes_a'
	check "grgw status (no daemon) counts the fail-closed objects" status_has a '.kernel.block_objects > 0'
	out=$(gw_a "$GRGW" block -c "$CONF_A" 2>&1) && RC=0 || RC=$?
	expect_rc "grgw block again: nothing twice" "$RC" 0 /dev/null
	capture_start harden-boot || { fail "WAN capture"; return 0; }
	leak_traffic_start
	sleep 1
	leak_traffic_stop
	sleep 3		# the gateway's ICMP error budget, spent by the traffic
	check_fails_closed
	leak_traffic_start
	up_one a boot-up
	expect_rc "grgw up on gw-a after grgw block" "$RC" 0 "$WORK/boot-up-a.log"
	leak_traffic_stop
	wait_until 60 ping_ok vellum-a "$VELLUM_B4" || true
	check_traffic_flows
	capture_stop harden-boot
	check_no_cleartext harden-boot
}

# ---- a full run directory ---------------------------------------------------------

FULL_RUN=/run/grgw-full-test${LAB_ID:-}

full_run_cleanup() {
	umount "$FULL_RUN" 2>/dev/null
	rmdir "$FULL_RUN" 2>/dev/null
	return 0
}

t_harden_full_run() {
	local conf site dir out
	need_tunnel || return 0
	need_sinks || return 0
	down_one a full-purge --purge
	expect_rc "grgw down --purge on gw-a" "$RC" 0 "$WORK/full-purge-a.log"
	# A run directory of its own on a small tmpfs, filled up once the
	# files that exist before the record (lock, log) have their page.
	full_run_cleanup
	if ! { mkdir -m 0755 "$FULL_RUN" && mount -t tmpfs -o size=256k,mode=0755 grgw-full "$FULL_RUN"; }; then
		fail "a small tmpfs at $FULL_RUN"
		return 0
	fi
	conf=$WORK/full-run.conf
	# (the configuration ends with its [daemon] section)
	{ grep -v '^run_dir' "$CONF_A"; echo "run_dir = $FULL_RUN"; } >"$conf"
	grep -q "^run_dir = $FULL_RUN" "$conf" || { fail "run_dir in $conf"; full_run_cleanup; return 0; }
	site=$(conf_value "$CONF_A" site name)
	dir=$FULL_RUN/$site
	mkdir -m 0700 "$dir"
	echo 1 >"$dir/grgw.pid"
	echo "$(date '+%F %T') test: the run directory is about to fill up" >"$dir/grgw.log"
	dd if=/dev/zero of="$FULL_RUN/filler" bs=4k 2>/dev/null || true
	note "$(df -h "$FULL_RUN" | tail -n 1)"
	RC=0
	timeout $((UP_TIMEOUT + 30)) ip netns exec "${NS_PREFIX}gw-a" "$GRGW" up -c "$conf" \
		--timeout "$UP_TIMEOUT" >"$WORK/full-up-a.log" 2>&1 </dev/null || RC=$?
	show_file "$WORK/full-up-a.log" 5
	check "grgw up with a full run directory fails (exit $RC)" test "$RC" -ne 0
	check "... and says which file and why" grep -q "kernel.record.*No space left on device" "$WORK/full-up-a.log"
	check "... the WAN block stays installed" wanblock_a
	check "... the block rules and unreachable routes stay installed" eval 'block_rules_a && unreachable_routes_a'
	check_fails_closed
	capture_start harden-full || { fail "WAN capture"; full_run_cleanup; return 0; }
	leak_traffic_start
	sleep 2
	leak_traffic_stop
	capture_stop harden-full
	check_no_cleartext harden-full

	# Room again: up adopts what is in the kernel, down --purge removes
	# all of it.
	rm -f "$FULL_RUN/filler"
	RC=0
	timeout $((UP_TIMEOUT + 30)) ip netns exec "${NS_PREFIX}gw-a" "$GRGW" up -c "$conf" \
		--timeout "$UP_TIMEOUT" >"$WORK/full-up2-a.log" 2>&1 </dev/null || RC=$?
	expect_rc "grgw up once there is room" "$RC" 0 "$WORK/full-up2-a.log"
	RC=0
	timeout 60 ip netns exec "${NS_PREFIX}gw-a" "$GRGW" down -c "$conf" --purge \
		>"$WORK/full-down-a.log" 2>&1 </dev/null || RC=$?
	expect_rc "grgw down --purge" "$RC" 0 "$WORK/full-down-a.log"
	check_not "... leaves no WAN block" wanblock_a
	check_not "... no block rules" block_rules_a
	check_not "... no unreachable routes" unreachable_routes_a
	full_run_cleanup
	# The suite's own configuration again.
	up_one a full-up3
	expect_rc "grgw up on gw-a with the lab's configuration" "$RC" 0 "$WORK/full-up3-a.log"
}
