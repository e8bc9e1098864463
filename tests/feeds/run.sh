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
# Needs no root.  usage: run.sh [BUILD_DIR]   (default: build)
set -u

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
b=${1:-build}
case $b in /*) ;; *) b=$top/$b ;; esac
hook=$top/gw/hooks/clearwater-alarm
alarms=$top/gw/hooks/grgw_alarms.json
driver=$b/feeds/etcdtest

passed=0
failed=0
tmp=$(mktemp -d /tmp/grgw-feeds.XXXXXX)
etcd_pid=
drv_pid=

cleanup() {
	if [ -n "$drv_pid" ]; then kill "$drv_pid" 2>/dev/null; wait "$drv_pid" 2>/dev/null; fi
	if [ -n "$etcd_pid" ]; then kill "$etcd_pid" 2>/dev/null; wait "$etcd_pid" 2>/dev/null; fi
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

	etcd --name grgw-feeds --data-dir "$tmp/etcd" \
	    --listen-client-urls "$endpoint" --advertise-client-urls "$endpoint" \
	    --listen-peer-urls "http://127.0.0.1:$pport" \
	    --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
	    --initial-cluster "grgw-feeds=http://127.0.0.1:$pport" \
	    --initial-cluster-state new > "$tmp/etcd.log" 2>&1 &
	etcd_pid=$!

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

if need_etcd; then
	etcd_tests
fi
if [ "$failed" -ne 0 ]; then
	for f in "$tmp/driver.log" "$tmp/etcd.log"; do
		[ -f "$f" ] && { echo "--- $f"; tail -20 "$f"; }
	done
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
