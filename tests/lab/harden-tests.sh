# shellcheck shell=bash
# Sourced by run-tests.sh: the fail-closed promise and the daemon's limits
# tried as an attacker and a bad day would (defence in depth).
#
#   harden-files   charon holds no descriptor of the daemon's; another
#                  process cannot bind the probe port; `grgw down` cleans
#                  nothing up behind a process holding the site lock
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

# log_since FILE LINE REGEX: REGEX in FILE after its first LINE lines
log_since() { tail -n "+$(($2 + 1))" "$1" | grep -E "$3"; }

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
		log_since "$log" "$lines" "charon did not answer [a-z-]+ within [0-9.]+ s"
	check "... and the kill" log_since "$log" "$lines" "killing charon \\(pid $old\\)"
	check "the link said charon-down meanwhile" \
		log_since "$log" "$lines" "link to .*: down \\(charon-down\\)"
	check "the tunnel was no longer said up meanwhile" \
		log_since "$log" "$lines" "tunnel to .*: up -> "
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
