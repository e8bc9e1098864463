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
#   harden-limits  1,000 idle TCP connections and a slowloris client on the
#                  HTTP listener, 100 idle ones on the control socket, each
#                  reopened 0.2 s after it is closed: `grgw status` and
#                  /metrics still answer, the link stays up, RSS, CPU and
#                  the log stay bounded (figures printed, idle vs loaded)
#   harden-charon-stop
#                  kill -STOP of gw-a's charon (it accepts VICI requests and
#                  answers none): grgw notices a missed deadline, says
#                  charon-down, kills and restarts charon; tunnel, link and
#                  traffic come back with no operator, nothing crosses the
#                  WAN in clear text; prints the time from STOP to traffic
#   harden-etcd-stop
#                  kill -STOP of site A's etcd (see link-tests.sh): grgw's
#                  status says the etcd request went unanswered, grgw keeps
#                  answering and the link stays up; after SIGCONT the link
#                  state is published again with no operator
#
# Processes a test stops (SIGSTOP) are listed in STOPPED_PIDS and resumed
# by resume_stopped, which the suite's cleanup runs too.

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
	if status_has a '.kernel.block_repairs == 0 and .kernel.block_overridden == false' >/dev/null 2>&1; then
		pass "gw-a status: nothing repaired or overridden while nobody touched it"
	else
		fail "gw-a status: nothing repaired or overridden while nobody touched it"
		status_json a | jq -c .kernel | sed 's/^/     | /'
		gw_a ip rule show | sed 's/^/     | rule /'
		gw_a ip route get fibmatch "$SITE_B_PREFIX4" 2>&1 | sed 's/^/     | fibmatch /'
		gw_a ip route show table all | grep -v "^local\|^broadcast\|^multicast\|^fe80\|^ff00" | sed 's/^/     | route /'
	fi
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
	check "grgw_block_repairs_total in the metrics" \
		wait_until 30 eval "http_get a /metrics | grep -q '^grgw_block_repairs_total{.*} [1-9]'"
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
	# Forwarding on, as on a gateway that boots with it: only grgw's
	# layer stands between the nodes and the WAN.
	gw_a sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
	# A run directory of its own on a small tmpfs, filled up once the
	# files that exist before the record (lock, log) have their page.
	full_run_cleanup
	if ! { mkdir -m 0755 "$FULL_RUN" && mount -t tmpfs -o size=256k,mode=0755 grgw-full "$FULL_RUN"; }; then
		fail "a small tmpfs at $FULL_RUN"
		return 0
	fi
	conf=$WORK/full-run.conf
	grep -v '^run_dir' "$CONF_A" | sed "/^\[daemon\]/a run_dir = $FULL_RUN" >"$conf"
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
	check "grgw up with a full run directory fails as a start-up failure (exit $RC, want 2)" test "$RC" -eq 2
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

# ---- harden-limits ------------------------------------------------------------

LIMITS_IDLE=${LIMITS_IDLE:-1000}	# idle TCP connections to the HTTP listener
LIMITS_SLOW=${LIMITS_SLOW:-200}		# slowloris connections, one byte a second
LIMITS_CTL=${LIMITS_CTL:-100}		# idle connections to the control socket
LIMITS_SECS=${LIMITS_SECS:-30}		# how long the load is held
LIMITS_REOPEN=${LIMITS_REOPEN:-0.2}	# seconds before a closed one is reopened
LIMITS_RSS_KB=$((16 * 1024))		# RSS growth allowed per process
LIMITS_LOG_BYTES=$((1024 * 1024))	# log growth allowed over the load
FLOOD=$HERE/conn-flood.py
FLOOD_PID=

proc_rss_kb() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
# proc_ticks PID: user + system clock ticks so far (comm has no space here)
proc_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
# cpu_pct TICKS MS: share of one core
cpu_pct() { awk -v t="$1" -v ms="$2" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", (ms > 0 ? 100 * t / hz / (ms / 1000) : 0) }'; }
file_size() { stat -c %s "$1" 2>/dev/null || echo 0; }

# http_fetch PATH: the document from gw-a's HTTP listener, the way a
# scraper gets it (10 s to connect and answer: under a flood its SYN may
# have to be sent again)
http_fetch() {
	on gw-a timeout 15 "$PYTHON" -c '
import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode(), end="")
' "http://$LIMITS_HTTP$1"
}

# timed_status: `grgw status` at gw-a; prints how long it took; fails if
# it did not answer within the 10 s timeout
timed_status() {
	local t0 rc=0
	t0=$(now_ms)
	timeout 10 ip netns exec "${NS_PREFIX}gw-a" "$GRGW" status -c "$CONF_A" \
		>"$WORK/limits-status.out" 2>&1 </dev/null || rc=$?
	STATUS_MS=$(( $(now_ms) - t0 ))
	return "$rc"
}

# flood_stop: the flood ended, now if not yet (also from the suite's cleanup)
flood_stop() {
	[ -n "$FLOOD_PID" ] || return 0
	kill -TERM "$FLOOD_PID" 2>/dev/null || true
	wait "$FLOOD_PID" 2>/dev/null || true
	FLOOD_PID=
}

# no_flood_left: no client of the flood runs in gw-a any more
no_flood_left() {
	local pid
	for pid in $(ip netns pids "${NS_PREFIX}gw-a" 2>/dev/null); do
		grep -qa conn-flood "/proc/$pid/cmdline" 2>/dev/null && return 1
	done
	return 0
}

# flood_field KIND FIELD: a figure of the flood's report
flood_field() { jq -r ".$1.$2 // 0" "$WORK/limits-flood.json" 2>/dev/null || echo 0; }

t_harden_limits() {
	local st dp np dir log ctl changes restarts rss_d0 rss_n0 rss_d rss_n
	local max_d=0 max_n=0 log0 log1 t0 ms d0 n0 d1 n1 idle_d idle_n round
	local status_ok=0 status_all=0 metrics_ok=0 link_ok=0 status_max=0 rounds=0
	need_tunnel || return 0
	check "the link is up before the load" wait_until 20 link_is a '.state == "up"'
	st=$(status_json a)
	dp=$(jq .daemon.pid <<<"$st"); np=$(jq .netproc.pid <<<"$st")
	changes=$(jq '.peers[0].link.changes' <<<"$st"); restarts=$(jq '.netproc.restarts' <<<"$st")
	dir=$LAB_RUN_DIR/$(conf_value "$CONF_A" site name)
	log=$dir/grgw.log
	ctl=$dir/control.sock
	LIMITS_HTTP=$(conf_value "$CONF_A" http listen)
	LIMITS_HTTP=${LIMITS_HTTP:-127.0.0.1:9421}
	note "gw-a: daemon pid $dp, network process pid $np, HTTP $LIMITS_HTTP, control $ctl"

	# The same figures without the load first, over as long.
	d0=$(proc_ticks "$dp"); n0=$(proc_ticks "$np"); t0=$(now_ms)
	sleep "$LIMITS_SECS"
	ms=$(( $(now_ms) - t0 ))
	idle_d=$(cpu_pct $(( $(proc_ticks "$dp") - d0 )) "$ms")
	idle_n=$(cpu_pct $(( $(proc_ticks "$np") - n0 )) "$ms")
	rss_d0=$(proc_rss_kb "$dp"); rss_n0=$(proc_rss_kb "$np")
	timed_status || true
	note "idle, ${ms} ms: daemon CPU $idle_d %, RSS $rss_d0 kB; network process CPU $idle_n %, RSS $rss_n0 kB; grgw status in $STATUS_MS ms"

	log0=$(file_size "$log")
	# ip execs timeout, which passes a TERM on: FLOOD_PID is the client's.
	ip netns exec "${NS_PREFIX}gw-a" timeout $((LIMITS_SECS + 20)) "$PYTHON" "$FLOOD" --tcp "$LIMITS_HTTP" \
		--idle "$LIMITS_IDLE" --slow "$LIMITS_SLOW" --unix "$ctl" --unix-idle "$LIMITS_CTL" \
		--reopen "$LIMITS_REOPEN" --seconds "$LIMITS_SECS" --report "$WORK/limits-flood.json" \
		>"$WORK/limits-flood.out" 2>&1 </dev/null &
	FLOOD_PID=$!
	if ! wait_until 10 grep -q ready "$WORK/limits-flood.out"; then
		fail "the flood started"
		show_file "$WORK/limits-flood.out"
		flood_stop
		return 0
	fi
	note "flood: $LIMITS_IDLE idle + $LIMITS_SLOW slowloris TCP connections to $LIMITS_HTTP, $LIMITS_CTL idle to the control socket, for $LIMITS_SECS s, each reopened $LIMITS_REOPEN s after it is closed"
	d0=$(proc_ticks "$dp"); n0=$(proc_ticks "$np"); t0=$(now_ms)

	# Look every few seconds while it is held.
	sleep 3
	while [ $(( $(now_ms) - t0 )) -lt $(( (LIMITS_SECS - 6) * 1000 )) ]; do
		rounds=$((rounds + 1))
		status_all=$((status_all + 1))
		if timed_status; then
			status_ok=$((status_ok + 1))
			[ "$STATUS_MS" -gt "$status_max" ] && status_max=$STATUS_MS
		fi
		round="round $rounds: grgw status $([ "$status_ok" = "$status_all" ] && echo answered || echo FAILED) in $STATUS_MS ms"
		if http_fetch /metrics >"$WORK/limits-metrics.out" 2>&1 &&
		    grep -qE '^grgw_link_up\{[^}]*\} 1$' "$WORK/limits-metrics.out"; then
			metrics_ok=$((metrics_ok + 1))
			round="$round, /metrics answered"
		else
			round="$round, /metrics did NOT answer"
		fi
		if link_is a '.state == "up"'; then
			link_ok=$((link_ok + 1))
			round="$round, link up"
		else
			round="$round, link NOT up"
		fi
		rss_d=$(proc_rss_kb "$dp"); rss_n=$(proc_rss_kb "$np")
		[ "$rss_d" -gt "$max_d" ] && max_d=$rss_d
		[ "$rss_n" -gt "$max_n" ] && max_n=$rss_n
		note "$round; RSS daemon $rss_d kB, network process $rss_n kB"
		sleep 3
	done
	d1=$(proc_ticks "$dp"); n1=$(proc_ticks "$np")
	wait "$FLOOD_PID" 2>/dev/null || true
	FLOOD_PID=
	ms=$(( $(now_ms) - t0 ))
	log1=$(file_size "$log")
	note "loaded, ${ms} ms: daemon CPU $(cpu_pct $((d1 - d0)) "$ms") % (idle $idle_d %), RSS $rss_d0 -> max $max_d kB; network process CPU $(cpu_pct $((n1 - n0)) "$ms") % (idle $idle_n %), RSS $rss_n0 -> max $max_n kB"
	note "flood report: $(cat "$WORK/limits-flood.json" 2>/dev/null)"
	note "log $log: $log0 -> $log1 bytes"

	check "the flood held its connections (idle: $(flood_field idle opened) opened, at most $(flood_field idle open_max) at once)" \
		test "$(flood_field idle opened)" -ge "$LIMITS_IDLE"
	check "grgw status answered every time under the load ($status_ok of $status_all, slowest $status_max ms)" \
		test "$status_ok" -eq "$status_all" -a "$status_all" -gt 0
	check "/metrics answered every time under the load ($metrics_ok of $rounds)" \
		test "$metrics_ok" -eq "$rounds" -a "$rounds" -gt 0
	check "the link stayed up ($link_ok of $rounds looks)" test "$link_ok" -eq "$rounds"
	check "... and never moved (link changes $changes -> $(status_json a | jq '.peers[0].link.changes'))" \
		status_is a ".peers[0].link.changes == $changes and .peers[0].link.state == \"up\""
	check "the network process never restarted (restarts $restarts)" \
		status_is a ".netproc.restarts == $restarts and .netproc.pid == $np"
	check "HTTP: idle connections were closed by the server ($(flood_field idle closed))" \
		test "$(flood_field idle closed)" -gt 0
	check "HTTP: slowloris connections were closed by the server ($(flood_field slow closed), longest lived $(flood_field slow life_max_s) s)" \
		test "$(flood_field slow closed)" -gt 0
	check "control socket: idle connections were closed by the daemon ($(flood_field unix_idle closed), longest lived $(flood_field unix_idle life_max_s) s)" \
		test "$(flood_field unix_idle closed)" -gt 0
	check "daemon RSS grew by less than $((LIMITS_RSS_KB / 1024)) MB ($rss_d0 -> $max_d kB)" \
		test $((max_d - rss_d0)) -lt "$LIMITS_RSS_KB"
	check "network process RSS grew by less than $((LIMITS_RSS_KB / 1024)) MB ($rss_n0 -> $max_n kB)" \
		test $((max_n - rss_n0)) -lt "$LIMITS_RSS_KB"
	check "the log grew by less than 1 MB ($((log1 - log0)) bytes)" test $((log1 - log0)) -lt "$LIMITS_LOG_BYTES"
	check "no client of the flood is left" wait_until 10 no_flood_left

	# Alone (nothing to make room for), slow clients meet the deadlines:
	# 10 s for an HTTP connection, 5 s for a control request line.
	ip netns exec "${NS_PREFIX}gw-a" timeout 60 "$PYTHON" "$FLOOD" --tcp "$LIMITS_HTTP" \
		--slow 10 --unix "$ctl" --unix-idle 10 --once --seconds 40 \
		--report "$WORK/limits-flood.json" >"$WORK/limits-flood.out" 2>&1 </dev/null &
	FLOOD_PID=$!
	wait "$FLOOD_PID" 2>/dev/null || true
	FLOOD_PID=
	note "slow clients alone: $(cat "$WORK/limits-flood.json" 2>/dev/null)"
	check "HTTP: every slowloris connection was closed by the server (10 s deadline; $(flood_field slow closed) of 10, after at most $(flood_field slow life_max_s) s)" \
		test "$(flood_field slow closed)" -eq 10
	check "control socket: every silent connection was closed by the daemon (5 s deadline; $(flood_field unix_idle closed) of 10, after at most $(flood_field unix_idle life_max_s) s)" \
		test "$(flood_field unix_idle closed)" -eq 10
	check "after the load: grgw status answers" timed_status
	check "after the load: /metrics answers" http_fetch /metrics
	check "after the load: link up" link_is a '.state == "up"'
}

# ---- hung processes -----------------------------------------------------------

STOPPED_PIDS=()

# stop_pid PID: SIGSTOP it, remembered so that it is never left stopped
stop_pid() {
	STOPPED_PIDS+=("$1")
	kill -STOP "$1"
}

# resume_stopped: SIGCONT whatever a test stopped (gone ones are skipped)
resume_stopped() {
	local pid
	for pid in "${STOPPED_PIDS[@]}"; do
		kill -CONT "$pid" 2>/dev/null || true
	done
	STOPPED_PIDS=()
	return 0
}

# log_grep_after FILE LINE REGEX: REGEX in FILE after its first LINE lines
log_grep_after() { tail -n "+$(($2 + 1))" "$1" | grep -E "$3"; }

# charon_restarted_after OLD BEFORE: a charon other than OLD runs and the
# daemon counts more than BEFORE restarts
charon_restarted_after() {
	status_is a ".charon.running == true and .charon.pid != $1 and .charon.restarts > $2"
}

t_harden_charon_stop() {
	local pids old before dir log lines t0 t1
	need_tunnel || return 0
	need_sinks || return 0
	pids=$(node_pids_named gw-a charon)
	check "exactly one charon in gw-a" test "$(wc -w <<<"$pids")" -eq 1
	old=${pids%%[[:space:]]*}
	[ -n "$old" ] || return 0
	before=$(status_json a | jq -r '.charon.restarts // 0')
	dir=$LAB_RUN_DIR/$(conf_value "$CONF_A" site name)
	log=$dir/grgw.log
	lines=$(wc -l <"$log")
	capture_start charon-stop || { fail "WAN capture"; return 0; }

	t0=$(now_ms)
	stop_pid "$old"
	# The periodic list-sas (every 2 s, 5 s to answer) finds it out.
	wait_until 60 charon_restarted_after "$old" "$before" || true
	check "the missed deadline is in the daemon's log (request and time)" \
		log_grep_after "$log" "$lines" "charon did not answer [a-z-]+ within [0-9.]+ s"
	check "... and the kill" log_grep_after "$log" "$lines" "killing charon \\(pid $old\\)"
	check "the link said charon-down meanwhile" \
		log_grep_after "$log" "$lines" "link to .*: down \\(charon-down[,)]"
	check "the tunnel was no longer said up meanwhile" \
		log_grep_after "$log" "$lines" "tunnel to .*: up -> "
	check "the stopped charon is gone (SIGKILL)" wait_until 10 proc_dead "$old"
	check "a new charon runs in gw-a" new_charon_in gw-a "$old"

	wait_until 60 tcp_peer_is vellum-a "$VELLUM_B4" "$VELLUM_A4" || true
	t1=$(now_ms)
	note "from SIGSTOP to traffic through the tunnel again: $(( (t1 - t0) / 1000 )).$(( (t1 - t0) % 1000 / 100 )) s"
	check_traffic_flows
	wait_until 20 status_is a "$TUNNEL_UP_JQ" || true
	check "gw-a status: charon restarted (restarts > $before), tunnel up, no operator action" \
		status_has a ".charon.running == true and .charon.restarts >= $((before + 1)) and .peers[0].tunnel == \"up\""
	wait_until 30 status_is a '(.peers[0].link // {}).state == "up"' || true
	check "gw-a status: link up again" status_has a '.peers[0].link.state == "up"'
	resume_stopped
	capture_stop charon-stop
	check_no_cleartext charon-stop
}

etcd_failing_unanswered() {
	status_is a '.etcd.healthy == false and ((.etcd.error // "") | test("no answer within|no response"))'
}

t_harden_etcd_stop() {
	local pid
	need_link || return 0
	wait_until 20 status_is a '.etcd.healthy == true' || true
	check "gw-a status: etcd published" status_has a '.etcd.healthy == true and .etcd.error == null'
	pid=$(node_pids_named gw-a etcd)
	check "exactly one etcd in gw-a" test "$(wc -w <<<"$pid")" -eq 1
	pid=${pid%%[[:space:]]*}
	[ -n "$pid" ] || return 0

	stop_pid "$pid"
	wait_until 30 etcd_failing_unanswered || true
	check "gw-a status: etcd failing, a request unanswered" \
		status_has a '.etcd.healthy == false and ((.etcd.error // "") | test("no answer within|no response"))'
	check "grgw status (text) says it on the etcd line" \
		sh -c "ip netns exec '${NS_PREFIX}gw-a' '$GRGW' status -c '$CONF_A' | grep -E '^  etcd: .*failing \\(.*(no answer within|no response)'"
	check "the daemon still answers fast" timeout 2 ip netns exec "${NS_PREFIX}gw-a" "$GRGW" status -c "$CONF_A"
	check "the link stays up" link_is a '.state == "up"'

	resume_stopped
	wait_until 60 status_is a '.etcd.healthy == true' || true
	check "gw-a status: etcd published again, no error" status_has a '.etcd.healthy == true and .etcd.error == null'
	grep etcd "$LAB_RUN_DIR/$(conf_value "$CONF_A" site name)/grgw.log" | tail -n 8 | sed 's/^/     | /'
	check "etcd holds the link state again" wait_until 10 etcd_says up none
}
