# shellcheck shell=bash
# Sourced by run-tests.sh: the fail-closed promise and the daemon's limits
# tried as an attacker and a bad day would (defence in depth).
#
#   harden-files   charon holds no descriptor of the daemon's; another
#                  process cannot bind the probe port; `grgw down` cleans
#                  nothing up behind a process holding the site lock

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
