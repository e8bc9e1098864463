# shellcheck shell=bash
#
# Link-state tests, sourced by run-tests.sh (they use its helpers):
#
#   link-feeds   probes up on both paths; /status, /metrics, the state file,
#                the hooks and etcd all say "up"
#   link-cuts    the WAN cut three ways (WAN interface down on gw-a, 100 %
#                loss on the router, a blackhole route on the router): down
#                with the right reason in every feed, up again once repaired
#   link-loss    1 % random loss on the WAN for a while: never down
#   link-forged  forged, tampered, replayed and random probe packets, and
#                probes of another pair sharing the secret, from the
#                router's namespace: rejected, counted, nothing changes
#   link-etcd    the gateway dies (kill -9): its etcd key expires with the lease
#   link-reestablish  ESP dropped on the router, IKE and probes let through:
#                gw-a deletes the SAs and initiates again on its own
#   link-stopped grgw down at A: the state file, the hooks, the alarm and etcd
#                say down (stopped) before the daemon is gone
#
# Every cut also shows that down means refused: a TCP connect from vellum-a
# to vellum-b is refused by gw-a (not a timeout) while the link is down,
# nothing crosses the WAN in clear, and it stops once the link is up.
#
# gw-a runs two hooks all along: one that never ends (it must be killed after
# the hook timeout and delay nothing) and one that records each transition.

LINK_HTTP=127.0.0.1:9421
ETCD_PORT=4000
ETCD_KEY=/clearwater/site-a/gr-gateway/site-b
HOOK_TIMEOUT=2
INJECT=${INJECT:-$(cd "$HERE/../.." && pwd)/build/probe-inject}
LINK_READY=0

# http_get a|b PATH: the daemon's HTTP feed, from inside the gateway
http_get() {
	on "gw-$1" timeout 5 "$PYTHON" -c '
import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1], timeout=3).read().decode(), end="")
' "http://$LINK_HTTP$2"
}

# link_is a|b JQ: the link object of the status satisfies JQ
link_is() { status_is "$1" "(.peers[0].link // {}) | $2"; }

state_file_a() { echo "$LAB_RUN_DIR/$(conf_value "$CONF_A" site name)/linkstate.json"; }

etcd_get() {
	on gw-a env ETCDCTL_API=3 timeout 5 etcdctl --endpoints "http://127.0.0.1:$ETCD_PORT" \
		get "$ETCD_KEY" --print-value-only
}

link_etcd_start() {
	local dir=$WORK/etcd
	rm -rf "$dir"
	mkdir -p "$dir"
	ip netns exec "${NS_PREFIX}gw-a" etcd --name gw-a --data-dir "$dir/data" \
		--listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
		--advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
		--listen-peer-urls http://127.0.0.1:4380 \
		--initial-advertise-peer-urls http://127.0.0.1:4380 \
		--initial-cluster gw-a=http://127.0.0.1:4380 \
		>"$dir/etcd.log" 2>&1 </dev/null &
	wait_until 20 on gw-a env ETCDCTL_API=3 etcdctl \
		--endpoints "http://127.0.0.1:$ETCD_PORT" endpoint health
}

# The lab configs plus what the link tests need: hooks at both sites (the
# hanging one and the recorder at gw-a), etcd at site A.
link_conf() {
	local site dir
	for site in a b; do
		dir=$WORK/hooks-$site
		mkdir -p "$dir"
		chmod 0755 "$dir"
		cat >>"$(site_conf "$site")" <<-EOF

		[hooks]
		dir = $dir
		timeout = $HOOK_TIMEOUT
		EOF
	done
	cat >"$WORK/hooks-a/10-hang" <<-'EOF'
	#!/bin/sh
	exec sleep 3600
	EOF
	cat >"$WORK/hooks-a/20-record" <<-EOF
	#!/bin/sh
	echo "\$GRGW_PEER \$GRGW_OLD_STATE \$GRGW_NEW_STATE \$GRGW_REASON" >>"$WORK/hook-a.log"
	EOF
	cat >"$WORK/hooks-a/30-fail" <<-'EOF'
	#!/bin/sh
	exit 3
	EOF
	# The shipped alarm hook, with a stand-in for Clearwater's tool.
	cat >"$WORK/fake-issue-alarm" <<-EOF
	#!/bin/sh
	echo "\$*" >>"$WORK/alarm-a.log"
	EOF
	cat >"$WORK/hooks-a/40-alarm" <<-EOF
	#!/bin/sh
	GRGW_ISSUE_ALARM=$WORK/fake-issue-alarm exec /bin/sh $HERE/../../gw/hooks/clearwater-alarm
	EOF
	chmod 0755 "$WORK/fake-issue-alarm"
	chmod 0755 "$WORK"/hooks-a/*
	cat >>"$CONF_A" <<-EOF

	[etcd]
	endpoint = http://127.0.0.1:$ETCD_PORT
	lease_ttl = 4
	EOF
}

both_links_up() { link_is a '.state == "up"' && link_is b '.state == "up"'; }

# need_link: the lab with link configs, etcd at A, grgw up on both, links up
need_link() {
	if [ "$LINK_READY" = 1 ] && [ "$LAB_MODE" = plain ] && both_links_up; then
		return 0
	fi
	LINK_READY=0
	# shellcheck disable=SC2034  # read by run-tests.sh
	WANT_MODE=plain
	need_lab plain || return 1
	need_grgw || return 1
	stop_grgw
	render_conf "$HERE/site-a.conf" "$CONF_A" "$LABCONF" plain
	render_conf "$HERE/site-b.conf" "$CONF_B" "$LABCONF" plain
	link_conf
	: >"$WORK/hook-a.log"
	link_etcd_start || { fail "etcd started in gw-a"; show_file "$WORK/etcd/etcd.log" 10; return 1; }
	up_both link-up
	if [ "$RC_A" -ne 0 ] || [ "$RC_B" -ne 0 ] || ! wait_until 20 both_links_up; then
		fail "links up as a precondition (grgw up: gw-a $RC_A, gw-b $RC_B)"
		diag
		return 1
	fi
	LINK_READY=1
}

http_status_says() { http_get a /status | jq -e ".peers[0].link | .state == \"$1\" and .reason == \"$2\""; }
http_metrics_link_up() { http_get a /metrics | grep -E "^grgw_link_up\\{[^}]*\\} $1\$"; }
etcd_says() { etcd_get | jq -e ".state == \"$1\" and .reason == \"$2\""; }
etcd_key_gone() { [ -z "$(etcd_get)" ]; }
etcd_has_lease() {
	on gw-a env ETCDCTL_API=3 timeout 5 etcdctl --endpoints "http://127.0.0.1:$ETCD_PORT" \
		get "$ETCD_KEY" -w json | jq -e '.kvs[0].lease > 0'
}

# feeds_say STATE REASON: every feed at gw-a agrees
feeds_say() {
	local state=$1 reason=$2 up=0 file
	[ "$state" = up ] && up=1
	check "status: link $state ($reason)" \
		link_is a ".state == \"$state\" and .reason == \"$reason\""
	check "HTTP /status: link $state ($reason)" http_status_says "$state" "$reason"
	check "HTTP /metrics: grgw_link_up $up" http_metrics_link_up "$up"
	file=$(state_file_a)
	check "state file: link $state ($reason)" \
		jq -e ".state == \"$state\" and .reason == \"$reason\"" "$file"
	check "hook saw: site-b -> $state ($reason)" \
		wait_until 5 grep -q "^site-b [a-z]* $state $reason\$" "$WORK/hook-a.log"
	check "etcd $ETCD_KEY: $state ($reason)" wait_until 10 etcd_says "$state" "$reason"
}

t_link_feeds() {
	need_link || return 0
	check "tunnel probes up on gw-a" link_is a '.paths.tunnel.up'
	check "underlay probes up on gw-a" link_is a '.paths.underlay.up'
	check "probe RTT measured on gw-a" link_is a '.paths.tunnel.rtt_ms.smoothed > 0'
	feeds_say up none
	check_not "HTTP: an unknown path is refused" http_get a /nope
	check "etcd key has a lease" etcd_has_lease
}

# cut_check NAME CUT REPAIR REASON_A REASON_B
cut_check() {
	local name=$1 cut=$2 repair=$3 ra=$4 rb=$5 t0 t1
	need_link || return 0
	t0=$(now_ms)
	eval "$cut"
	if wait_until 10 link_is a ".state == \"down\" and .reason == \"$ra\""; then
		t1=$(now_ms)
		pass "$name: gw-a says down ($ra) after $((t1 - t0)) ms"
	else
		fail "$name: gw-a says down ($ra)"
		note "$(status_json a | jq -c .peers[0].link)"
	fi
	check "$name: gw-b says down ($rb)" \
		wait_until 10 link_is b ".state == \"down\" and .reason == \"$rb\""
	feeds_say down "$ra"
	# Down means refused, whatever the routes still say.
	check "$name: gw-a status says it refuses traffic to the peer" \
		status_has a '.peers[0].refusing == true'
	check "$name: TCP connect vellum-a -> vellum-b refused by gw-a (not a timeout)" \
		connect_refused vellum-a "$VELLUM_B4"
	check "$name: TCP connect vellum-a -> vellum-b IPv6 refused by gw-a (not a timeout)" \
		connect_refused vellum-a "$VELLUM_B6"
	eval "$repair"
	check "$name repaired: both links up again" wait_until 90 both_links_up
	check "$name repaired: gw-a no longer refuses" status_has a '.peers[0].refusing == false'
	check "$name repaired: traffic flows" ping_ok vellum-a "$VELLUM_B4"
	check "$name repaired: TCP vellum-a -> vellum-b, source kept" tcp_peer_is vellum-a "$VELLUM_B4" "$VELLUM_A4"
	feeds_say up none
}

t_link_cuts() {
	need_link || return 0
	need_sinks || return 0
	capture_start link-cuts || { fail "WAN capture"; return 0; }
	cut_check "WAN interface down" \
		'on gw-a ip link set wan0 down' 'on gw-a ip link set wan0 up; on gw-a ip route replace default via 192.0.2.1' \
		wan-link-down underlay-unreachable
	cut_check "100 % loss on the router" \
		'router nft -f - <<<"table inet grgwlab-cut { chain cut { type filter hook forward priority 0; drop; }; }"' \
		'router nft delete table inet grgwlab-cut' \
		underlay-unreachable underlay-unreachable
	cut_check "blackhole route on the router" \
		'router ip route add blackhole 198.51.100.10/32' \
		'router ip route del blackhole 198.51.100.10/32' \
		underlay-unreachable underlay-unreachable
	check "the hanging hook was killed after its timeout" \
		grep -q "10-hang.*killed" "$LAB_RUN_DIR/$(conf_value "$CONF_A" site name)/grgw.log"
	capture_stop link-cuts
	check_no_cleartext link-cuts
}

t_link_loss() {
	local before after secs=${LOSS_SECONDS:-40} downs
	need_link || return 0
	before=$(status_json a | jq .peers[0].link.changes)
	: >"$WORK/hook-a.log"
	router nft -f - <<<"table inet grgwlab-loss { chain loss { type filter hook forward priority 0; numgen random mod 100 < 1 drop; }; }"
	note "1 % random loss on the WAN for $secs s"
	sleep "$secs"
	after=$(status_json a | jq .peers[0].link.changes)
	router nft delete table inet grgwlab-loss
	downs=$(grep -c " down " "$WORK/hook-a.log" || true)
	check "no transition under 1 % loss (changes $before -> $after)" test "$before" = "$after"
	check "no down reported to the hooks" test "$downs" = 0
	check "loss was seen by the probes" link_is a '.paths.underlay.sent > 0'
	check "link still up" link_is a '.state == "up"'
}

# counter a PATH FIELD: a probe counter of gw-a
counter() { status_json a | jq ".peers[0].link.paths.$1.$2"; }

t_link_forged() {
	local changes auth replay malformed
	need_link || return 0
	if [ ! -x "$INJECT" ]; then
		fail "probe injector at $INJECT (make build/probe-inject)"
		return 0
	fi
	changes=$(status_json a | jq .peers[0].link.changes)
	auth=$(counter underlay rejected.auth)
	replay=$(counter underlay rejected.replay)
	malformed=$(counter underlay rejected.malformed)
	# A capture of real probes to replay later.
	router timeout 3 tcpdump -i wan-a -U -w "$WORK/probes.pcap" -c 20 "udp dst port 4211 and dst host $GW_A_WAN" \
		>/dev/null 2>&1 || true
	printf 'not the key %s\n' "$RANDOM$RANDOM" >"$WORK/wrong.key"
	check "forged probes sent" router "$INJECT" forged --to "$GW_A_WAN" --count 20
	check "tampered probes sent" router "$INJECT" tampered --key "$LABCONF/psk" --sites site-a,site-b --to "$GW_A_WAN" --count 20
	# The right secret, but the key of another pair sharing it.
	check "probes of another pair with the same secret sent" \
		router "$INJECT" valid --key "$LABCONF/psk" --sites site-a,site-c --to "$GW_A_WAN" --count 20
	check "captured probes replayed" router "$INJECT" replay --pcap "$WORK/probes.pcap" --to "$GW_A_WAN"
	check "random datagrams sent" router "$INJECT" garbage --to "$GW_A_WAN" --count 500 --interval 1
	sleep 1
	check "forged, tampered and relayed from another pair: rejected as unauthentic" \
		test "$(counter underlay rejected.auth)" -ge $((auth + 60))
	check "replayed: rejected as replays" test "$(counter underlay rejected.replay)" -gt "$replay"
	check "random bytes: rejected as malformed" \
		test "$(counter underlay rejected.malformed)" -ge $((malformed + 400))
	check "nothing changed: no transition" \
		test "$(status_json a | jq .peers[0].link.changes)" = "$changes"
	check "nothing changed: link up" link_is a '.state == "up"'
	check "the daemon still answers fast" timeout 2 ip netns exec "${NS_PREFIX}gw-a" "$GRGW" status -c "$CONF_A"
}

t_link_etcd() {
	local pid
	need_link || return 0
	check "etcd holds the link state" etcd_says up none
	pid=$(status_json a | jq .daemon.pid)
	kill -9 "$pid"
	check "gw-a's key expires with its lease once the daemon is dead" \
		wait_until 15 etcd_key_gone
	LINK_READY=0
	stop_grgw
}

t_link_stopped() {
	local file
	need_link || return 0
	: >"$WORK/hook-a.log"
	: >"$WORK/alarm-a.log"
	file=$(state_file_a)
	down_one a link-stopped
	expect_rc "grgw down on gw-a" "$RC" 0 "$WORK/link-stopped-a.log"
	check "state file: link down (stopped)" jq -e '.state == "down" and .reason == "stopped"' "$file"
	check "hook saw: site-b -> down (stopped)" grep -q "^site-b up down stopped$" "$WORK/hook-a.log"
	check "the alarm hook raised the alarm (14000.4, major)" grep -qx "grgw 14000.4" "$WORK/alarm-a.log"
	check "etcd $ETCD_KEY: down (stopped)" wait_until 10 etcd_says down stopped
	check "the daemon is gone" sh -c "! ip netns exec '${NS_PREFIX}gw-a' '$GRGW' status -c '$CONF_A' --json | jq -e '.daemon.running'"
	LINK_READY=0
	stop_grgw
}

# The tunnel dies while the WAN answers (ESP dropped on the router, IKE and
# the probes let through): gw-a deletes the SAs and initiates again on its
# own, without waiting for dead-peer detection; once ESP passes again the
# tunnel is back.
t_link_reestablish() {
	local log log_b
	need_link || return 0
	log=$LAB_RUN_DIR/$(conf_value "$CONF_A" site name)/grgw.log
	log_b=$LAB_RUN_DIR/$(conf_value "$CONF_B" site name)/grgw.log
	router nft -f - <<<"table inet grgwlab-esp { chain f { type filter hook forward priority 0; meta l4proto esp drop; udp dport 4500 @th,64,32 != 0 drop; udp sport 4500 @th,64,32 != 0 drop; }; }"
	check "gw-a says down (tunnel-down) while the WAN answers" \
		wait_until 15 link_is a '.state == "down" and .reason == "tunnel-down"'
	check "gw-a refuses traffic to the peer meanwhile" connect_refused vellum-a "$VELLUM_B4"
	check "a gateway deletes the SAs and initiates again on its own" \
		wait_until 30 grep -q "deleting the SAs and initiating again" "$log" "$log_b"
	router nft delete table inet grgwlab-esp
	check "ESP through again: both links up" wait_until 60 both_links_up
	check "traffic flows" ping_ok vellum-a "$VELLUM_B4"
}
