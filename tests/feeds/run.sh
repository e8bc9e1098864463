#!/bin/bash
# Feeds of the link state, outside the unit tests:
#
#   clearwater-alarm hook     run with a fake issue-alarm that records its
#   + grgw_alarms.json        arguments, for every transition; the alarm
#                             definition checked against the rules of
#                             Clearwater's alarm agent (check-alarms.py)
#
#   etcd publisher            a real etcd on loopback, free ports, temp dir
#                             (gw/etcd.c via tests/feeds/etcdtest) checked
#                             with etcd's own client:
#
#      etcdtest ──HTTP/JSON v3──▶ etcd 127.0.0.1:C ◀── etcdctl get / lease
#      (started before etcd: it must back off and catch up)
#
#   pair fence                a second etcd, of its own (gw/fence.c via
#                             tests/feeds/fencetest): read, claim, a stale
#                             claim, two claimants racing, round trips,
#                             etcd hung (SIGSTOP), stopped and restarted
#
#      fencetest ─┬─ fence A ──range/txn──▶ etcd 127.0.0.1:F ◀── etcdctl
#                 └─ fence B ──(races A)──▶
#
# Needs no root.  usage: run.sh [BUILD_DIR]   (default: build)
set -u

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
b=${1:-build}
case $b in /*) ;; *) b=$top/$b ;; esac
hook=$top/gw/hooks/clearwater-alarm
alarms=$top/gw/hooks/grgw_alarms.json
driver=$b/feeds/etcdtest
fencer=$b/feeds/fencetest

passed=0
failed=0
tmp=$(mktemp -d /tmp/grgw-feeds.XXXXXX)
etcd_pid=
fence_etcd_pid=
drv_pid=

cleanup() {
	if [ -n "$drv_pid" ]; then kill "$drv_pid" 2>/dev/null; wait "$drv_pid" 2>/dev/null; fi
	if [ -n "$etcd_pid" ]; then kill "$etcd_pid" 2>/dev/null; wait "$etcd_pid" 2>/dev/null; fi
	# A stopped etcd (the fence's hang test) must run to hear SIGTERM.
	if [ -n "$fence_etcd_pid" ]; then
		kill -CONT "$fence_etcd_pid" 2>/dev/null
		kill "$fence_etcd_pid" 2>/dev/null
		wait "$fence_etcd_pid" 2>/dev/null
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

ok() { echo "ok   $*"; passed=$((passed + 1)); }
nok() { echo "FAIL $*"; failed=$((failed + 1)); }
check() {	# check "what" command...
	local what=$1
	shift
	if "$@"; then ok "$what"; else nok "$what"; fi
}

# ---- the Clearwater alarm hook --------------------------------------------

fake=$tmp/issue-alarm
record=$tmp/issued
cat > "$fake" <<EOF
#!/bin/sh
echo "\$*" >> "$record"
exit \${FAKE_ALARM_RC:-0}
EOF
chmod 755 "$fake"

# run_hook NEW_STATE REASON [extra env...]: the hook's environment is what
# grgw gives it, plus the path of the tool.
run_hook() {
	local state=$1 reason=$2
	shift 2
	rm -f "$record"
	env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin GRGW_SITE=site-a \
	    GRGW_PEER=site-b GRGW_OLD_STATE=up GRGW_NEW_STATE="$state" \
	    GRGW_REASON="$reason" GRGW_SINCE=2024-01-01T00:00:00Z \
	    GRGW_ISSUE_ALARM="$fake" "$@" "$hook" 2> "$tmp/hook.err"
}

issued() { [ -f "$record" ] && cat "$record"; }

expect_alarm() {	# expect_alarm STATE REASON "ARGS"
	local rc
	run_hook "$1" "$2"
	rc=$?
	if [ $rc -eq 0 ] && [ "$(issued)" = "$3" ]; then
		ok "hook: $1 ($2) issues $3"
	else
		nok "hook: $1 ($2) issued '$(issued)' (exit $rc), expected '$3'"
	fi
}

expect_alarm up none "grgw 14000.1"
expect_alarm degraded loss "grgw 14000.5"
expect_alarm degraded rtt "grgw 14000.5"
expect_alarm down underlay-unreachable "grgw 14000.4"
expect_alarm down wan-link-down "grgw 14000.4"
expect_alarm down tunnel-down "grgw 14000.4"
expect_alarm down charon-down "grgw 14000.4"
expect_alarm down ike-auth-failed "grgw 14000.3"

# The pair's redundancy alarm.
expect_event() {	# expect_event DETAIL "ARGS"
	local rc
	run_hook up none GRGW_EVENT=redundancy GRGW_DETAIL="$1"
	rc=$?
	if [ $rc -eq 0 ] && [ "$(issued)" = "$2" ]; then
		ok "hook: redundancy $1 issues $2"
	else
		nok "hook: redundancy $1 issued '$(issued)' (exit $rc), expected '$2'"
	fi
}
expect_event lost "grgw 14001.4"
expect_event restored "grgw 14001.1"
run_hook up none GRGW_EVENT=redundancy GRGW_DETAIL=sideways
check "hook: an unknown redundancy detail issues nothing and exits 0" \
    test "$?" -eq 0 -a ! -f "$record"
run_hook up none GRGW_EVENT=pair GRGW_DETAIL=active
check "hook: a role change (GRGW_EVENT=pair) moves no alarm" \
    test "$?" -eq 0 -a ! -f "$record"

run_hook down starting
check "hook: down (starting) leaves the alarm alone" \
    test "$?" -eq 0 -a ! -f "$record"
run_hook sideways none
check "hook: an unknown state issues nothing and exits 0" \
    test "$?" -eq 0 -a ! -f "$record"
run_hook down tunnel-down GRGW_ISSUE_ALARM="$tmp/no-such-tool"
check "hook: without issue-alarm it logs and exits 0" \
    test "$?" -eq 0 -a ! -f "$record"
check "hook: ... saying what was not issued" \
    grep -q "14000.4.*not issued" "$tmp/hook.err"
run_hook up none FAKE_ALARM_RC=1
check "hook: a failing issue-alarm makes the hook fail" test "$?" -eq 1
if command -v shellcheck > /dev/null; then
	check "hook: shellcheck-clean" shellcheck -s sh "$hook"
fi

# ---- the alarm definition -----------------------------------------------------

# jq programs are single-quoted on purpose: jq expands them, not the shell.
# shellcheck disable=SC2016
jqc() { jq -e "$@" "$alarms" > /dev/null; }
# Clearwater's rules for a definition file and its index blocks.
check "alarms: grgw_alarms.json follows Clearwater's rules (check-alarms.py)" \
    python3 "$here/check-alarms.py" "$alarms"
# ... and the checker refuses what the alarm agent would: an index in a
# reserved block, two CLEARED levels, a description over 255 characters.
jq --arg long "$(printf '%0300d' 0)" \
    '.alarms[0].index = 10420 | .alarms[0].levels += [.alarms[0].levels[0]] |
     .alarms[0].levels[1].description = $long' "$alarms" > "$tmp/bad-alarms.json"
python3 "$here/check-alarms.py" "$tmp/bad-alarms.json" > "$tmp/bad-alarms.out"
check "alarms: the checker refuses a bad definition" test "$?" -eq 1
for why in "index outside every block" "exactly one CLEARED level" "description present, at most 255"; do
	check "alarms: ... saying: $why" grep -q "^FAIL .*$why" "$tmp/bad-alarms.out"
done
# The hook and the definition agree: every code it issues is defined.
for sev in 1:CLEARED 3:CRITICAL 4:MAJOR 5:MINOR; do
	# shellcheck disable=SC2016
	check "alarms: 14000.${sev%%:*} (${sev#*:}) used by the hook is defined" \
	    jqc --arg s "${sev#*:}" '.alarms[] | select(.index == 14000) | [.levels[].severity] | index($s) != null'
	grep -q "severity=${sev%%:*}" "$hook" || nok "hook does not issue .${sev%%:*}"
done
for sev in 1:CLEARED 4:MAJOR; do
	# shellcheck disable=SC2016
	check "alarms: 14001.${sev%%:*} (${sev#*:}) used by the hook is defined" \
	    jqc --arg s "${sev#*:}" '.alarms[] | select(.index == 14001) | [.levels[].severity] | index($s) != null'
done

# ---- etcd ---------------------------------------------------------------------------

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

need_etcd() {
	local t
	for t in etcd etcdctl jq python3; do
		if ! command -v "$t" > /dev/null; then
			nok "etcd: $t not found (tests/deps.sh installs etcd-server, etcd-client)"
			return 1
		fi
	done
	if [ ! -x "$driver" ]; then
		nok "etcd: $driver missing (make $b/feeds/etcdtest)"
		return 1
	fi
}

# Read the driver's next line into $reply, waiting at most $1 seconds.
drv_read() {
	reply=
	IFS= read -r -t "$1" reply <&"${DRV[0]}"
}
drv_send() { echo "$*" >&"${DRV[1]}"; }

# Wait for "published VALUE lease ID"; sets $lease.
drv_published() {
	local value=$1 limit=$2 end=$((SECONDS + $2))
	lease=
	while [ $SECONDS -le $end ]; do
		drv_read "$limit" || return 1
		case $reply in
		"published $value lease "*) lease=${reply##* }; return 0 ;;
		esac
	done
	return 1
}

# etcd_start NAME DATA_DIR CLIENT_PORT PEER_PORT LOG: one member on
# loopback, in the background; its pid in $started_pid.
etcd_start() {
	local url=http://127.0.0.1:$3 peer=http://127.0.0.1:$4
	etcd --name "$1" --data-dir "$2" \
	    --listen-client-urls "$url" --advertise-client-urls "$url" \
	    --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
	    --initial-cluster "$1=$peer" \
	    --initial-cluster-state new >> "$5" 2>&1 &
	started_pid=$!
}

ctl() { ETCDCTL_API=3 etcdctl --endpoints="$endpoint" --dial-timeout=2s "$@"; }
value_of() { ctl get "$key" --print-value-only 2> /dev/null; }
# The lease as etcd prints it: 64-bit, too wide for jq's doubles.
lease_of() {
	ctl get "$key" -w json 2> /dev/null |
	    grep -o '"lease":[0-9]*' | head -1 | cut -d: -f2
}
ttl_of() { ctl lease timetolive "$(printf %x "$1")"; }
status_says() { [[ $reply == "status healthy=0 "*"no response"* ]]; }

# Poll until `value_of` is $1 (or, for "", until the key is gone).
wait_value() {
	local want=$1 limit=$2 end=$((SECONDS + $2))
	while [ $SECONDS -le $end ]; do
		[ "$(value_of)" = "$want" ] && return 0
		sleep 0.2
	done
	return 1
}

etcd_tests() {
	local cport pport ttl=3 v1 v2 lease1 lease2 t0 gone

	cport=$(free_port)
	pport=$(free_port)
	endpoint=http://127.0.0.1:$cport
	key=/clearwater/site-a/gr-gateway/site-b
	v1='{"site":"site-a","peer":"site-b","state":"up","reason":"none"}'
	v2='{"site":"site-a","peer":"site-b","state":"degraded","reason":"loss"}'

	# The publisher first, with etcd not there yet: it must back off.
	coproc DRV { exec "$driver" "$endpoint" "$key" "$ttl" 2> "$tmp/driver.log"; }
	drv_pid=${DRV_PID:?}
	drv_read 5
	check "etcd: driver started" test "$reply" = ready
	drv_send "set $v1"
	sleep 1.5
	drv_send status
	drv_read 5
	check "etcd: unhealthy while etcd is down, with the error in words" \
	    status_says

	etcd_start grgw-feeds "$tmp/etcd" "$cport" "$pport" "$tmp/etcd.log"
	etcd_pid=$started_pid

	# Backoff is at most 30 s; it is at 4 s by now.
	if drv_published "$v1" 30; then
		ok "etcd: published once etcd came up (lease $lease)"
	else
		nok "etcd: never published v1: $reply"
		return
	fi
	lease1=$lease
	check "etcd: etcdctl reads the value" test "$(value_of)" = "$v1"
	check "etcd: the key carries the publisher's lease" \
	    test "$(lease_of)" = "$lease1"
	ttl_of "$lease1" > "$tmp/ttl"
	check "etcd: the lease has the configured TTL" \
	    grep -q "granted with TTL(${ttl}s)" "$tmp/ttl"

	# Keepalives: after 2 TTLs the key is still there, same lease.
	sleep $((2 * ttl))
	check "etcd: kept alive past 2 x TTL" test "$(value_of)" = "$v1"
	check "etcd: ... on the same lease" test "$(lease_of)" = "$lease1"

	drv_send "set $v2"
	if drv_published "$v2" 10; then ok "etcd: update published"; else nok "etcd: update: $reply"; fi
	check "etcd: etcdctl reads the update" test "$(value_of)" = "$v2"
	check "etcd: the update kept the lease" test "$(lease_of)" = "$lease1"

	# The lease revoked under it: the key goes, then comes back on a new
	# lease once the publisher's keepalive notices (within TTL/3).
	ctl lease revoke "$(printf %x "$lease1")" > /dev/null
	check "etcd: key back after its lease was revoked" wait_value "$v2" 10
	lease2=$(lease_of)
	check "etcd: ... on a new lease" test "$lease2" != "$lease1" -a "$lease2" != 0

	# The publisher dies without revoking: the key outlives it for at
	# most the TTL.
	drv_send quit
	wait "$drv_pid" 2> /dev/null
	drv_pid=
	t0=$SECONDS
	check "etcd: the key is still there right after the publisher exits" \
	    test "$(value_of)" = "$v2"
	if wait_value "" $((ttl + 3)); then
		gone=$((SECONDS - t0))
		ok "etcd: the key expired with its lease (${gone}s, TTL ${ttl}s)"
	else
		nok "etcd: the key outlived the publisher by more than TTL + 3 s"
	fi
}

# ---- the pair's fence -------------------------------------------------------------

# The value of NAME=VALUE in $reply (the driver's last line); reason= is
# last and may hold spaces.
field() {
	case $1 in
	reason) echo "${reply#* reason=}" ;;
	*) local v=" ${reply#* }"; v=${v#* "$1="}; echo "${v%% *}" ;;
	esac
}
# fields_are "k=v k=v ...": every one as in $reply.
fields_are() {
	local kv
	for kv in "$@"; do
		[ "$(field "${kv%%=*}")" = "${kv#*=}" ] || return 1
	done
}
# Send a command and read its one line within $1 s (a hang fails it).
fence_do() {
	local limit=$1
	shift
	drv_send "$@"
	drv_read "$limit"
}
mod_revision_of() {
	ctl get "$fkey" -w json 2> /dev/null | jq -r '.kvs[0].mod_revision'
}
fence_value_of() { ctl get "$fkey" --print-value-only 2> /dev/null; }

# Wait until etcd answers etcdctl (a fresh member elects itself).
wait_etcd() {
	local end=$((SECONDS + $1))
	while [ $SECONDS -le $end ]; do
		ctl endpoint health > /dev/null 2>&1 && return 0
		sleep 0.2
	done
	return 1
}

fence_tests() {
	local cport pport r1 r2 epoch

	if [ ! -x "$fencer" ]; then
		nok "fence: $fencer missing (make $b/feeds/fencetest)"
		return
	fi
	if [ -n "$drv_pid" ]; then
		kill "$drv_pid" 2> /dev/null
		wait "$drv_pid" 2> /dev/null
		drv_pid=
	fi
	cport=$(free_port)
	pport=$(free_port)
	endpoint=http://127.0.0.1:$cport
	fkey=/grgw/site-a/pair
	etcd_start grgw-fence "$tmp/etcd-fence" "$cport" "$pport" \
	    "$tmp/etcd-fence.log"
	fence_etcd_pid=$started_pid
	if ! wait_etcd 20; then
		nok "fence: etcd did not come up"
		return
	fi
	coproc DRV { exec "$fencer" "$endpoint" "$fkey" 2> "$tmp/fencetest.log"; }
	drv_pid=${DRV_PID:?}
	drv_read 5
	check "fence: driver started" test "$reply" = ready

	fence_do 15 read 10000
	check "fence: a read of the absent key completes: found 0, mod_revision 0" \
	    fields_are completed=1 found=0 mod_revision=0 value_ok=0

	fence_do 15 claim 0 1 198.18.1.2 10000
	r1=$(field mod_revision)
	check "fence: a claim expecting 0 (absent) wins, at mod_revision $r1" \
	    fields_are completed=1 won=1 epoch=1 holder=198.18.1.2
	check "fence: ... etcdctl reads the value it wrote" \
	    test "$(fence_value_of)" = '{"epoch":1,"holder":"198.18.1.2"}'
	check "fence: ... at that mod_revision" test "$(mod_revision_of)" = "$r1"

	fence_do 15 claim 0 1 198.18.1.3 10000
	check "fence: a second claim with the stale 0 loses" \
	    fields_are completed=1 won=0
	check "fence: ... and returns the holder, epoch and revision there" \
	    fields_are found=1 value_ok=1 epoch=1 holder=198.18.1.2 \
	    mod_revision="$r1"
	check "fence: ... etcd unchanged" \
	    test "$(fence_value_of)" = '{"epoch":1,"holder":"198.18.1.2"}'

	fence_do 15 read 10000
	check "fence: a read returns holder, epoch and mod_revision" \
	    fields_are completed=1 found=1 value_ok=1 epoch=1 \
	    holder=198.18.1.2 mod_revision="$r1"

	fence_do 15 claim "$r1" 2 2001:db8:a::3 10000
	r2=$(field mod_revision)
	check "fence: a claim with the revision read wins (IPv6 holder)" \
	    fields_are completed=1 won=1 epoch=2 holder=2001:db8:a::3
	check "fence: ... etcdctl reads it, at mod_revision $r2" \
	    test "$(fence_value_of)" = '{"epoch":2,"holder":"2001:db8:a::3"}' \
	    -a "$(mod_revision_of)" = "$r2"

	fence_do 15 busy
	check "fence: one request at a time: the others get EBUSY, no callback" \
	    fields_are second=-1/EBUSY third=-1/EBUSY first_completed=1 calls=1

	# Two fences, two connections, the same expected revision, every
	# round: exactly one wins, and the loser is told who.
	fence_do 120 race 200 198.18.1.2 198.18.1.3
	if fields_are one_winner=200 both_won=0 none_won=0 failed=0; then
		ok "fence: 200 races of two claimants: exactly one winner each ($(field a_won) A, $(field b_won) B)"
	else
		nok "fence: race: $reply"
	fi
	check "fence: ... each loser returned the winner's holder, epoch, revision" \
	    fields_are loser_saw_winner=200
	epoch=$(field epoch)
	check "fence: ... etcd holds the last epoch ($epoch)" \
	    test "$(fence_value_of | jq -r .epoch)" = "$epoch"

	# Something else on the key: read, said, and claimed over.
	ctl put "$fkey" 'not a fence' > /dev/null
	fence_do 15 read 10000
	r1=$(field mod_revision)
	check "fence: a value that is not a fence value: read, value_ok 0, said" \
	    fields_are completed=1 found=1 value_ok=0
	check "fence: ... in words" grep -q "not a fence value" <<< "$(field reason)"
	fence_do 15 claim "$r1" "$((epoch + 1))" 198.18.1.2 10000
	check "fence: ... and a claim at its revision replaces it" \
	    fields_are completed=1 won=1

	fence_do 120 rtt 200 198.18.1.2
	if fields_are failed=0 && [ "$(field connections)" -le 1 ]; then
		ok "fence: round trips on loopback: read median $(field read_median_us) us (p90 $(field read_p90_us)), claim median $(field claim_median_us) us (p90 $(field claim_p90_us)); $(field connections) new connection(s) for 400 requests"
	else
		nok "fence: rtt: $reply"
	fi

	# etcd hung: the kept connection accepts and nothing answers.
	kill -STOP "$fence_etcd_pid"
	fence_do 15 read 300
	check "fence: etcd hung: the read completes 0 at its deadline" \
	    fields_are completed=0
	check "fence: ... saying 'timed out after 300 ms' ($(field us) us)" \
	    test "$(field reason)" = "timed out after 300 ms"
	fence_do 15 claim "$r1" "$((epoch + 9))" 198.18.1.3 300
	check "fence: ... a claim too" test "$(field reason)" = "timed out after 300 ms"
	kill -CONT "$fence_etcd_pid"
	fence_do 15 read 10000
	check "fence: etcd back: the next read completes, on a new connection" \
	    fields_are completed=1 found=1
	# The claim that timed out may have been applied meanwhile: the
	# read tells (it was sent with a stale revision: it lost).
	check "fence: ... and the timed-out stale claim did not win" \
	    fields_are holder=198.18.1.2

	# etcd stopped: the port is closed.
	kill "$fence_etcd_pid"
	wait "$fence_etcd_pid" 2> /dev/null
	fence_do 15 read 500
	check "fence: etcd stopped: a read completes 0 with a reason ($(field reason); $(field us) us)" \
	    test "$(field completed)" = 0 -a -n "$(field reason)"
	fence_do 15 read 500
	check "fence: ... again, refused at once, not at the deadline ($(field reason))" \
	    grep -q "^cannot connect" <<< "$(field reason)"

	# Started again on its data: the fence is where it was.
	etcd_start grgw-fence "$tmp/etcd-fence" "$cport" "$pport" \
	    "$tmp/etcd-fence.log"
	fence_etcd_pid=$started_pid
	wait_etcd 20
	fence_do 15 read 10000
	check "fence: etcd restarted: the read reconnects and finds the holder" \
	    fields_are completed=1 found=1 value_ok=1 holder=198.18.1.2
	fence_do 5 stats
	echo "     $reply"
	drv_send quit
	wait "$drv_pid" 2> /dev/null
	drv_pid=
}

if need_etcd; then
	etcd_tests
	fence_tests
fi
if [ "$failed" -ne 0 ]; then
	for f in "$tmp/driver.log" "$tmp/etcd.log" "$tmp/fencetest.log" \
	    "$tmp/etcd-fence.log"; do
		[ -f "$f" ] && { echo "--- $f"; tail -20 "$f"; }
	done
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
