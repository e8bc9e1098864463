# shellcheck shell=bash
# Sourced by run-tests.sh: the fail-closed promise and the daemon's limits
# tried as an attacker and a bad day would (defence in depth).
#
#   harden-files   charon holds no descriptor of the daemon's; another
#                  process cannot bind the probe port; `grgw down` cleans
#                  nothing up behind a process holding the site lock
#   harden-limits  1,000 idle TCP connections and a slowloris client on the
#                  HTTP listener, 100 idle ones on the control socket, each
#                  reopened 0.2 s after it is closed: `grgw status` and
#                  /metrics still answer, the link stays up, RSS, CPU and
#                  the log stay bounded (figures printed, idle vs loaded)

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
