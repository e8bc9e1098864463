#!/bin/bash
# Link-state benchmark in the namespace lab.  Prints figures, never fails
# on a time.
#
#   detection  time from a WAN cut (100 % loss on the router) to the
#              daemon's state change, taken from the daemon's own change
#              time (link.since_epoch_ms); p50/p99 over CUTS cuts, at the
#              default probe setting and at an aggressive one; and from
#              the cut to the first TCP connect from vellum-a to vellum-b
#              that gw-a refuses (a sink listens at vellum-b, so only
#              the gateway refuses; a client started before the cut
#              tries a connect every 20 ms, each given 100 ms)
#   cost       CPU (user+system, % of one core) and RSS of the daemon and
#              of its network process over IDLE seconds of probing, then
#              over as long with 1,000 idle and 200 slowloris connections
#              held on the HTTP listener and 100 on the control socket
#              (tests/lab/conn-flood.py), with the ratio to the idle run
#   restarts   kill -9 of the network process, ten times: how long until a
#              new one holds the probe socket, and whether the link moved
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lab/lib.sh
. "$HERE/../lab/lib.sh"
LAB=$HERE/../lab/lab.sh
# shellcheck source-path=SCRIPTDIR source=plot.sh
. "$HERE/plot.sh"
CUTS=${CUTS:-50}
IDLE=${IDLE:-20}
WORK=$(mktemp -d)
CONF_A=$WORK/site-a.conf
CONF_B=$WORK/site-b.conf

cleanup() {
	set +e
	pkill -f "tcp-sink.py --port $SINK_PORT --log $WORK" 2>/dev/null
	[ -n "${FLOOD:-}" ] && kill "$FLOOD" 2>/dev/null && wait "$FLOOD"
	router nft delete table inet grgwlab-cut >/dev/null 2>&1
	lab_teardown
}
trap cleanup EXIT

link_of() { status_json "$1" | jq -c '.peers[0].link // {}'; }
link_up() { [ "$(link_of a | jq -r .state)" = up ] && [ "$(link_of b | jq -r .state)" = up ]; }
link_down_a() { [ "$(link_of a | jq -r .state)" = down ]; }

# start INTERVAL MULTIPLIER: both gateways with that probe setting
start() {
	local site pid
	grgw_at a down --purge >/dev/null 2>&1 || true
	grgw_at b down --purge >/dev/null 2>&1 || true
	new_psk "$WORK/psk"
	for site in a b; do
		render_conf "$LAB_HERE/site-$site.conf" "$(site_conf $site)" "$WORK" plain
		printf '\n[probe]\ninterval_ms = %s\nmultiplier = %s\n' "$1" "$2" >>"$(site_conf $site)"
	done
	grgw_at a up --timeout 60 >/dev/null &
	pid=$!
	grgw_at b up --timeout 60 >/dev/null
	wait "$pid"
	wait_until 30 link_up
}

# refuse_watch OUT: in the background, connects vellum-a -> vellum-b
# (where the sink listens: only the gateway refuses) every 20 ms, each
# given 100 ms; the wall-clock ms of the first refusal goes to OUT.  Started
# before the cut, so that the client's own start-up is not measured.
refuse_watch() {
	on vellum-a "$PYTHON" - "$VELLUM_B4" "$1" <<-'PY' &
	import socket, sys, time
	t0 = time.monotonic()
	while time.monotonic() - t0 < 30:
	    s = socket.socket()
	    s.settimeout(0.1)
	    try:
	        s.connect((sys.argv[1], 7001))
	    except socket.timeout:
	        pass
	    except ConnectionRefusedError:
	        with open(sys.argv[2], "w") as f:
	            f.write("%d\n" % int(time.time() * 1000))
	        sys.exit(0)
	    except OSError:
	        pass
	    finally:
	        s.close()
	    time.sleep(0.02)
	PY
	WATCH=$!
}

# p50_p99 LABEL WHAT FILE: the figures of FILE's numbers
p50_p99() {
	sort -n "$3" | awk -v label="$1" -v what="$2" '
		{ a[NR] = $1 }
		END {
			if (NR == 0) { print label ": no " what " measured"; exit }
			p50 = a[int((NR * 50 + 99) / 100)]; p99 = a[int((NR * 99 + 99) / 100)]
			printf "%s: %d cuts, %s p50 %d ms, p99 %d ms, max %d ms\n", label, NR, what, p50, p99, a[NR]
		}'
}

# cuts LABEL NAME: CUTS cuts, detection time of each from the daemon's
# clock, and the time until a connect to the other site is refused; the
# samples kept in BENCH_OUT/link-detection-NAME.dat
cuts() {
	local i t0 since ms file=$WORK/det-$1 ref=$WORK/ref-$1
	: >"$file"
	: >"$ref"
	for i in $(seq 1 "$CUTS"); do
		wait_until 60 link_up || { echo "run $i: link not up again, stopping"; break; }
		rm -f "$WORK/refused"
		refuse_watch "$WORK/refused"
		sleep 0.$((RANDOM % 5 + 3))
		router nft -f - <<<"table inet grgwlab-cut { chain cut { type filter hook forward priority 0; drop; }; }"
		t0=$(now_ms)
		wait "$WATCH" 2>/dev/null || true
		[ -s "$WORK/refused" ] && echo $(( $(cat "$WORK/refused") - t0 )) >>"$ref"
		if wait_until 10 link_down_a; then
			since=$(link_of a | jq .since_epoch_ms)
			ms=$((since - t0))
			echo "$ms" >>"$file"
		fi
		router nft delete table inet grgwlab-cut
	done
	p50_p99 "$1" "connect refused" "$ref"
	cp "$file" "$BENCH_OUT/link-detection-$2.dat"
	sort -n "$file" | awk -v label="$1" '
		{ a[NR] = $1 }
		END {
			if (NR == 0) { print label ": no detection measured"; exit }
			p50 = a[int((NR * 50 + 99) / 100)]; p99 = a[int((NR * 99 + 99) / 100)]
			printf "%s: %d cuts, detection p50 %d ms, p99 %d ms, max %d ms\n", label, NR, p50, p99, a[NR]
		}'
}

# cpu_ticks PID: user+system clock ticks so far
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
rss_kb() { awk '/VmRSS/ { print $2 }' "/proc/$1/status"; }

# cost LABEL [flood]: CPU and RSS over IDLE seconds; with "flood", under
# the connection flood, and as a ratio to the last run without it
COST_BASE=
FLOOD=
cost() {
	local pid npid d0 d1 n0 n1 hz
	hz=$(getconf CLK_TCK)
	pid=$(status_json a | jq .daemon.pid)
	npid=$(status_json a | jq .netproc.pid)
	if [ "${2:-}" = flood ]; then
		ip netns exec "${NS_PREFIX}gw-a" timeout $((IDLE + 20)) "$PYTHON" "$LAB_HERE/conn-flood.py" \
			--tcp 127.0.0.1:9421 --idle 1000 --slow 200 \
			--unix "$LAB_RUN_DIR/site-a/control.sock" --unix-idle 100 --reopen 0.2 \
			--seconds $((IDLE + 2)) --report "$WORK/flood.json" >"$WORK/flood.out" 2>&1 </dev/null &
		FLOOD=$!
		wait_until 10 grep -q ready "$WORK/flood.out" || true
		sleep 1
	fi
	d0=$(cpu_ticks "$pid")
	n0=$(cpu_ticks "$npid")
	sleep "$IDLE"
	d1=$(cpu_ticks "$pid")
	n1=$(cpu_ticks "$npid")
	set -- "$1" $((d1 - d0)) $((n1 - n0)) "$(rss_kb "$pid")" "$(rss_kb "$npid")"
	if [ -n "$FLOOD" ]; then
		wait "$FLOOD" || true
	fi
	awk -v d="$2" -v n="$3" -v hz="$hz" -v s="$IDLE" -v dr="$4" -v nr="$5" -v label="$1" \
	    -v base="$COST_BASE" -v flood="$FLOOD" \
	    'BEGIN { printf "%s: daemon CPU %.2f %%, RSS %d kB; network process CPU %.2f %%, RSS %d kB (together %d kB)\n",
	        label, 100 * d / hz / s, dr, 100 * n / hz / s, nr, dr + nr
	        if (flood != "" && base != "") {
	            split(base, b, " ")
	            printf "  vs idle: daemon CPU %s, RSS %+d kB; network process CPU %s, RSS %+d kB\n",
	                ratio(d, b[1]), dr - b[3], ratio(n, b[2]), nr - b[4]
	        } }
	    function ratio(x, y) { return y > 0 ? sprintf("x %.1f", x / y) : sprintf("%d ticks (idle: none)", x) }'
	if [ -n "$FLOOD" ]; then
		FLOOD=
		echo "  flood: $(cat "$WORK/flood.json" 2>/dev/null)"
	else
		COST_BASE="$2 $3 $4 $5"
	fi
}

# probe_owner: pid of the process holding gw-a's probe socket
probe_owner() { on gw-a ss -Hanp --udp "sport = :4211" | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2; }
new_owner() { local p; p=$(probe_owner); [ -n "$p" ] && [ "$p" != "$1" ]; }

# restarts N: kill -9 the network process N times; time until a new one
# holds the probe socket (polled every 20 ms), and link changes meanwhile
restarts() {
	local i old t0 t1 before after file=$WORK/restart
	: >"$file"
	before=$(link_of a | jq .changes)
	for i in $(seq 1 "$1"); do
		wait_until 30 link_up || break
		old=$(probe_owner)
		t0=$(date +%s%N)
		kill -KILL "$old"
		while ! new_owner "$old"; do sleep 0.02; done
		t1=$(date +%s%N)
		echo $(( (t1 - t0) / 1000000 )) >>"$file"
		sleep 1
	done
	after=$(link_of a | jq .changes)
	sort -n "$file" | awk -v n="$1" -v ch=$((after - before)) '{ a[NR] = $1 } END {
		printf "network process kill -9 x %d: back after p50 %d ms, max %d ms; link changes meanwhile: %d\n",
		    n, a[int((NR + 1) / 2)], a[NR], ch }'
}

bench_out_init link-bench
"$LAB" up >/dev/null
sink_start vellum-b >/dev/null
echo "== default probes (50 ms x 5)"
start 50 5
cost "default, tunnel up, idle"
cost "default, tunnel up, 1,000 connections held" flood
restarts 10
cuts "default 50 ms x 5" default
echo "== aggressive probes (20 ms x 5)"
start 20 5
cost "aggressive, tunnel up, idle"
cuts "aggressive 20 ms x 5" aggressive

plot_cdf "$BENCH_OUT/link-detection.png" "Link-down detection after a WAN cut ($CUTS cuts each)" \
	"ms from the cut to the state change" \
	"default 50 ms x 5" "$BENCH_OUT/link-detection-default.dat" \
	"aggressive 20 ms x 5" "$BENCH_OUT/link-detection-aggressive.dat"
report_add link-bench "Link-down detection and cost (link-bench.sh)" link-detection.png
