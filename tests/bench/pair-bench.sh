#!/bin/bash
# Gateway pair benchmark in the pair lab (lab.sh up --pair: two gateways
# per site, an etcd per site), under the pair tests' stream: 1,000 UDP
# packets/s with sequence numbers vellum-a -> vellum-b, a TCP connection
# beside it.  Prints figures, and ratios against a baseline measured in
# the same run; never fails on a time.
#
#   vellum-a --- sw-a --+-- gw-a1 --+-- router --+-- gw-b1 --+-- sw-b --- vellum-b
#   etcd-a ------/      +-- gw-a2 --+            +-- gw-b2 --+      \---- etcd-b
#
#   kills       PAIR_BENCH_KILLS (200) hard kills of the active gateway,
#               alternating sites, as pair-kill makes them (power_off:
#               links down, then kill -9; power_on and `grgw up` as the
#               standby after each): the takeover as the traffic saw it,
#               the longest silence of the stream after each kill (0 when
#               nothing was lost), n, p50, p99 and max in ms; then the same
#               streams, as long, with no kill: their longest silence is
#               the baseline (PAIR_BENCH_BASELINE_SECS: only as many of
#               them as make up that many seconds, for a long run in the
#               emulated VM)
#   handovers   PAIR_BENCH_HANDOVERS (50) `grgw handover`, alternating
#               sites: packets lost, in all and per handover (p50, max);
#               and in all by an IPv6 stream beside it (as pair-handover's)
#   partitions  the cases of pair-partition that move the role, at site A,
#               PAIR_BENCH_PARTITIONS (5) times each, each from a healthy
#               pair (settled, both gateways reaching etcd): the pair's
#               link cut, both cut at the active, the active's WAN down
#               (and up again with its default route back); the time to
#               settle as pair-partition waits for it (polled every 0.2 s),
#               p50 and max
#   never two   whether two gateways ever held a floating address at once
#               over the whole run (addr-trace.py, as the pair tests read
#               it): a correctness figure, not a time
#
# Beside kills, handovers and partitions, from the address trace (the
# kernel's own events): when the new active held every floating address
# of the site, which says how much of the time is the pair's and how much
# the IKE exchange's; and how often the site's WAN address changed hands
# (once, for a move that went as it should).
#
# A silence is a run of lost packets, timed by the receiver's clock: from
# the packet before it to the packet after it (a run at the stream's end:
# its packets, 1 ms each).  It is attributed to the move (kill or
# handover) whose time it began in, each move owning the time from 0.5 s
# before it to 0.5 s before the next.  The sender's clock would not do:
# under emulation it falls behind at times, and packet n leaves later
# than n ms after the first.
# The receiver lists at most 200 runs of lost packets per stream, so the
# moves run in streams of PAIR_BENCH_PER_STREAM (20) moves each; a move
# that its stream's list does not cover is counted as not measured.
#
# The pair's timers: LAB_PAIR_TIMERS (lab.sh).  LAB_ID=N runs it in a lab
# of its own.  The defaults take about half an hour on two idle CPUs
# (some 7 s a kill, its share of the baseline included).
set -eu

BENCH_HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lab/lib.sh
. "$BENCH_HERE/../lab/lib.sh"
# The stream (udp_stream_start and the rest) and the pair's helpers, as
# the pair tests use them; they find their tools in HERE, the lab's.
HERE=$LAB_HERE
# shellcheck source-path=SCRIPTDIR source=../lab/reload-tests.sh
. "$LAB_HERE/reload-tests.sh"
# shellcheck source-path=SCRIPTDIR source=../lab/pair-tests.sh
. "$LAB_HERE/pair-tests.sh"
LAB=$LAB_HERE/lab.sh
KILLS=${PAIR_BENCH_KILLS:-200}
HANDOVERS=${PAIR_BENCH_HANDOVERS:-50}
PARTITIONS=${PAIR_BENCH_PARTITIONS:-5}
PER_STREAM=${PAIR_BENCH_PER_STREAM:-20}
BASELINE_SECS=${PAIR_BENCH_BASELINE_SECS:-}
case $BASELINE_SECS in
*[!0-9]*) echo "pair-bench.sh: PAIR_BENCH_BASELINE_SECS: expected a number of seconds, got '$BASELINE_SECS'" >&2; exit 2 ;;
esac
UP_TIMEOUT=${UP_TIMEOUT:-45}
# udp-stream.py: the most runs of lost packets it lists, and the silence
# after which its receiver stops
STREAM_MAX_GAPS=200
STREAM_IDLE_MS=3000
# a move owns the stream from this long before it (the stream's start is
# known within about 0.1 s)
SLACK_MS=500

cleanup() {
	set +e
	[ -n "${TRACE_PID:-}" ] && trace_stop
	[ -n "${RELOAD_SEND:-}" ] && touch "$WORK/stream.stop"
	[ -n "${PAIR_SEND6:-}" ] && touch "$WORK/stream6.stop"
	# LAB_KEEP_DIR: the gateways' logs and each move's figures
	if [ -n "${LAB_KEEP_DIR:-}" ]; then
		for gw in "${PAIR_GWS[@]}"; do keep_node_logs "$gw"; done
		cp "$WORK"/*.figures "$LAB_KEEP_DIR/" 2>/dev/null
	fi
	for gw in "${PAIR_GWS[@]}"; do
		timeout 30 ip netns exec "$NS_PREFIX$gw" "$GRGW" down -c "$(pair_conf "$gw")" --purge \
			>/dev/null 2>&1 </dev/null
	done
	"$LAB" down >/dev/null 2>&1
	rm -rf "$WORK"
}

[ "$(id -u)" -eq 0 ] || { echo "pair-bench.sh: needs root" >&2; exit 1; }
for tool in etcd etcdctl jq nft python3; do
	command -v "$tool" >/dev/null || { echo "bench: $tool missing (run tests/deps.sh)" >&2; exit 1; }
done
[ -x "$GRGW" ] || { echo "bench: no grgw at $GRGW (build it, or set GRGW)" >&2; exit 1; }
WORK=$(mktemp -d /tmp/grgw-pair-bench.XXXXXX)
LABCONF=$WORK/conf
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- figures --------------------------------------------------------------------

# stats_of FILE: "N P50 P99 MAX" of the numbers in FILE, one a line
# (nearest rank); "0 - - -" when there are none
stats_of() {
	sort -n "$1" | awk '{ v[NR] = $1 }
		function at(p,  i) { i = int(NR * p / 100 + 0.999); return v[i < 1 ? 1 : i] }
		END { if (NR == 0) print "0 - - -"; else print NR, at(50), at(99), v[NR] }'
}

# ratio A B: A/B with two decimals, "-" when B is 0 or either is no number
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN {
		if (a ~ /^[0-9]+$/ && b ~ /^[0-9]+$/ && b > 0) printf "%.2f", a / b; else print "-" }'
}

# ms PACKETS: a run of lost packets of the stream, as a time
ms() { echo $(( $1 * 1000 / RELOAD_RATE )); }

# stream_tail: the packets sent after the last one received, as a run
# "FIRST-LAST" ("" when none): the receiver lists only runs below its
# highest packet, and stops after STREAM_IDLE_MS of silence
stream_tail() {
	local sent high
	sent=$(awk '/^sent/ { print $2 }' "$WORK/stream-send.out")
	high=$(awk '/^received/ { print $4 }' "$WORK/stream-recv.out")
	[ -n "$sent" ] && [ -n "$high" ] && [ $((sent - 1)) -gt "$high" ] || return 0
	echo "$((high + 1))-$((sent - 1))"
}

# stream_runs START: the stream's runs of lost packets, "FIRST LAST AT MS"
# a line, the tail's included: AT when the silence began (ms since the
# epoch; the packet before it arrived), MS how long (until the packet
# after it arrived), by the receiver's clock; for a run the receiver did
# not time, AT from its first packet (packet n left n / RELOAD_RATE s
# after START) and MS from its length.  The last line "covered AT": up to
# when the list is whole (the end, -1; or the last listed run when the
# receiver listed all it may; or the tail's start when it is longer than
# the receiver waits).
stream_runs() {
	local start=$1 tail n tail_at
	awk -v rate="$RELOAD_RATE" -v start="$start" '
		$1 == "gaps" { for (i = 2; i <= NF; i++) { split($i, r, "-"); if (r[2] != "") { k++; a[k] = r[1]; b[k] = r[2] } } }
		$1 == "silences" { for (i = 2; i <= NF; i++) { split($i, t, ":"); at[i - 1] = t[1]; len[i - 1] = t[2] } }
		END {
			for (i = 1; i <= k; i++)
				if (at[i] ~ /^[0-9]+$/ && len[i] ~ /^[0-9]+$/) print a[i], b[i], at[i], len[i]
				else printf "%s %s %d %d\n", a[i], b[i], start + a[i] * 1000 / rate, (b[i] - a[i] + 1) * 1000 / rate
		}' "$WORK/stream-recv.out" >"$WORK/runs"
	n=$(wc -l <"$WORK/runs")
	tail=$(stream_tail)
	cat "$WORK/runs"
	if [ -n "$tail" ]; then
		tail_at=$(awk '$1 == "last-at" && $2 ~ /^[0-9]+$/ { print $2 }' "$WORK/stream-recv.out")
		[ -n "$tail_at" ] || tail_at=$((start + $(ms "${tail%-*}")))
		echo "${tail%-*} ${tail#*-} $tail_at $(ms $((${tail#*-} - ${tail%-*} + 1)))"
	fi
	if [ "$n" -ge "$STREAM_MAX_GAPS" ]; then
		echo "covered $(tail -n 1 "$WORK/runs" | awk '{ print $3 }')"
	elif [ -n "$tail" ] && [ "$(ms $((${tail#*-} - ${tail%-*} + 1)))" -ge "$STREAM_IDLE_MS" ]; then
		echo "covered $tail_at"
	else
		echo "covered -1"
	fi
}

# sent_t0 [FALLBACK]: when the stream's first packet left (ms since the
# epoch), as the sender wrote it down; FALLBACK when it could not
sent_t0() {
	local t
	t=$(cat "$WORK/stream.sent-t0" 2>/dev/null || true)
	[[ "$t" =~ ^[0-9]+$ ]] && echo "$t" || echo "${1:-}"
}

# attribute MOVES: for each move of MOVES ("I MS": the move's number, when
# it began, ms since the epoch), "I LONGEST_MS LOST" from stream_runs on
# stdin (the runs that began in the move's time); "I - -" for a move the
# list does not cover
attribute() {
	awk -v slack="$SLACK_MS" '
		NR == FNR { n++; id[n] = $1; at[n] = $2; next }
		$1 == "covered" { covered = $2; next }
		{	for (k = n; k >= 1; k--)
				if ($3 >= at[k] - slack) {
					if ($4 > best[k]) best[k] = $4
					lost[k] += $2 - $1 + 1
					break
				}
		}
		END {
			for (k = 1; k <= n; k++)
				if (covered >= 0 && at[k] - slack > covered) print id[k], "-", "-"
				else printf "%s %d %d\n", id[k], best[k], lost[k]
		}' "$1" -
}

# trace_move MARK GW SITE [OLD]: "TOOK MOVES" from the address trace: ms
# from MARK (or, with OLD, from OLD's first release of an address after
# MARK: a power cut) until GW held every floating address of SITE ("-" if
# it never did); and how often the site's WAN address changed hands from
# MARK to the next mark (once, for a move that went as it should)
trace_move() {
	awk -v m="$1" -v ns="$NS_PREFIX$2" -v old="${4:+$NS_PREFIX$4}" -v addrs="$(floating "$3" | tr '\n' ' ')" '
		BEGIN { n = split(addrs, a, " "); for (i = 1; i <= n; i++) want[a[i]] = 1; wan = a[n]; took = "-" }
		$1 == "mark" && marked { exit }
		$1 == "mark" && $3 == m { marked = 1; if (old == "") t0 = $2; next }
		!marked || $1 != "event" { next }
		$4 == wan && $5 == "held" { moves++ }
		t0 == "" && $3 == old && $5 == "released" { t0 = $2 }
		t0 != "" && $3 == ns && $5 == "held" && ($4 in want) && !($4 in got) {
			got[$4] = 1
			if (++k == n) took = sprintf("%d", ($2 - t0) * 1000 + 0.5)
		}
		END { print took, moves + 0 }' "$WORK/trace.out"
}

# trace_figures LIST: "p50 X ms, max Y ms (n N); changes of hands ..." of
# trace_move over LIST's lines ("MARK GW SITE [OLD]"), from the trace as
# trace_dump last wrote it
trace_figures() {
	local mark gw site old took moves n p50 max
	: >"$WORK/took"
	: >"$WORK/hands"
	while read -r mark gw site old; do
		read -r took moves <<<"$(trace_move "$mark" "$gw" "$site" "$old")"
		[ "$took" = - ] || echo "$took" >>"$WORK/took"
		echo "$moves" >>"$WORK/hands"
	done <"$1"
	read -r n p50 _ max <<<"$(stats_of "$WORK/took")"
	printf 'p50 %s ms, max %s ms (n %s); ' "$p50" "$max" "$n"
	read -r n p50 _ max <<<"$(stats_of "$WORK/hands")"
	echo "the WAN address changed hands p50 $p50, max $max times"
}

# trace_dump: the address trace written out as it stands (it goes on)
trace_dump() {
	rm -f "$WORK/trace.out"
	kill -USR1 "$TRACE_PID" 2>/dev/null || return 0
	wait_until 10 test -s "$WORK/trace.out" >/dev/null || note "the address trace was not written: $(cat "$WORK/trace.err")"
}

# ---- moves under the stream -------------------------------------------------------

# pair_ready: both sites settled (one active holding everything, one standby)
pair_ready() {
	if ! wait_until 30 pair_settled a >"$WORK/ready.log" || ! wait_until 30 pair_settled b >>"$WORK/ready.log"; then
		show_file "$WORK/ready.log" 5
		pair_diag
		return 1
	fi
}

# moves_stream WHAT FROM TO: moves FROM..TO (kill or handover, site A for
# odd numbers, B for even), each made, waited for and undone as pair_moves
# does, under one stream; appends "I LONGEST_MS LOST" per move to
# WHAT.figures, "MARK NEW-ACTIVE SITE" (and, for a kill, the gateway
# killed) to WHAT.marks, the stream's
# seconds to WHAT.streams and its lost packets to WHAT.lost.  False when
# a move went wrong (said why).
moves_stream() {
	local what=$1 from=$2 to=$3 i site act other launched stopped start rc=0 sent
	: >"$WORK/moves"
	udp_stream_start $(((to - from + 1) * 60 + 60))
	[ "$what" != handover ] || stream6_start $(((to - from + 1) * 60 + 60))
	launched=$(now_ms)
	sleep 2
	for ((i = from; i <= to; i++)); do
		site=$([ $((i % 2)) -eq 1 ] && echo a || echo b)
		act=$(active_of "$site")
		[ -n "$act" ] || { note "$what $i: site $site has no single active gateway"; pair_diag; rc=1; break; }
		other=$(pair_partner "$act")
		trace_mark "$what-$i"
		echo "$i $(now_ms)" >>"$WORK/moves"
		"move_$what" "$act" || { note "$what $i: $what of $act failed"; pair_diag; rc=1; break; }
		if ! wait_until 15 pair_settled "$site" "$other" "$("settled_how_$what")" >"$WORK/settle.log"; then
			note "$what $i: $other did not take site $site over"
			show_file "$WORK/settle.log" 5
			pair_diag
			rc=1
			break
		fi
		echo "$what-$i $other $site$([ "$what" = kill ] && echo " $act")" >>"$WORK/$what.marks"
		"after_$what" "$act" || { note "$what $i: $act did not come back as the standby"; pair_diag; rc=1; break; }
		sleep 1
	done
	sleep 2
	stopped=$(now_ms)
	if [ "$what" = handover ]; then
		stream6_stop
		udp_stream_lost stream6 >>"$WORK/$what.lost6"
	fi
	udp_stream_stop
	sent=$(awk '/^sent/ { print $2 }' "$WORK/stream-send.out")
	[ "${sent:-0}" -gt 0 ] || { note "$what: the stream sent nothing"; cat "$WORK/stream-send.out"; return 1; }
	# The start places only a run the receiver could not time (the very
	# first packets lost).  Should the sender not have written it down:
	# no earlier than the sender was started, nor than its count says
	# (it stops within 100 packets of being told), the later of the two.
	start=$(sent_t0)
	if [ -z "$start" ]; then
		start=$((stopped - sent * 1000 / RELOAD_RATE))
		[ "$start" -ge "$launched" ] || start=$launched
	fi
	echo $((sent / RELOAD_RATE)) >>"$WORK/$what.streams"
	udp_stream_lost >>"$WORK/$what.lost"
	# Every move started owns its time; the ones that went wrong count no
	# figure.
	stream_runs "$start" | attribute "$WORK/moves" |
		awk -v what="$what" 'NR == FNR { done[$1] = 1; next } done[what "-" $1]' "$WORK/$what.marks" - \
		>>"$WORK/$what.figures"
	return "$rc"
}

# moves WHAT N: N moves in streams of PER_STREAM; MOVES_DONE counts those
# done
moves() {
	local what=$1 n=$2 from=1 to
	: >"$WORK/$what.figures"
	: >"$WORK/$what.marks"
	: >"$WORK/$what.streams"
	: >"$WORK/$what.lost"
	: >"$WORK/$what.lost6"
	while [ "$from" -le "$n" ]; do
		to=$((from + PER_STREAM - 1))
		[ "$to" -le "$n" ] || to=$n
		moves_stream "$what" "$from" "$to" || break
		# LAB_KEEP_DIR: the figures so far (a long run in the VM that
		# runs out of time keeps them), and the stream's own record:
		# the receiver's runs of lost packets and when each began,
		# when each move began (ms since the epoch) and its steps (ms
		# of the stream), to lay beside the gateways' logs
		if [ -n "${LAB_KEEP_DIR:-}" ]; then
			cp "$WORK/$what.figures" "$LAB_KEEP_DIR/" 2>/dev/null || true
			cp "$WORK/stream-recv.out" "$LAB_KEEP_DIR/$what-$from.recv" 2>/dev/null || true
			cp "$WORK/moves" "$LAB_KEEP_DIR/$what-$from.starts" 2>/dev/null || true
			cp "$WORK/moves.log" "$LAB_KEEP_DIR/$what-$from.steps" 2>/dev/null || true
		fi
		from=$((to + 1))
	done
	MOVES_DONE=$(grep -c . "$WORK/$what.marks" || true)
}

# baseline_streams WHAT: the streams of WHAT again, as long, with nothing
# moving, until BASELINE_SECS (when set) are done; BASE_LONGEST (ms),
# BASE_LOST, BASE_SECS, BASE_NOTE
baseline_streams() {
	local secs longest
	BASE_LONGEST=0
	BASE_LOST=0
	BASE_SECS=0
	BASE_NOTE=""
	while read -r secs; do
		[ -z "$BASELINE_SECS" ] || [ "$BASE_SECS" -lt "$BASELINE_SECS" ] || break
		udp_stream_start "$secs"
		udp_stream_wait
		longest=$(stream_runs "$(sent_t0 "$(now_ms)")" |
			awk '$1 != "covered" && $4 > m { m = $4 } END { print m + 0 }')
		[ "$longest" -le "$BASE_LONGEST" ] || BASE_LONGEST=$longest
		BASE_LOST=$((BASE_LOST + $(udp_stream_lost)))
		BASE_SECS=$((BASE_SECS + secs))
		[ "$(stream_gaps | wc -l)" -lt "$STREAM_MAX_GAPS" ] ||
			BASE_NOTE=" (a stream lost packets in more than $STREAM_MAX_GAPS runs: the longest of the first ones)"
	done <"$WORK/$1.streams"
}

# ---- the parts ----------------------------------------------------------------------

# sum FILE: the sum of its numbers
sum() { awk '{ s += $1 } END { print s + 0 }' "$1"; }

bench_kills() {
	local n p50 p99 max unmeasured
	echo "pair-bench: $KILLS hard kills of the active gateway (links down, kill -9; back as the standby), alternating sites, under $RELOAD_RATE packets/s"
	pair_ready || { echo "  not measured: the pairs did not settle"; return 0; }
	moves kill "$KILLS"
	awk '$2 != "-" { print $2 }' "$WORK/kill.figures" >"$WORK/kill.ms"
	unmeasured=$(awk '$2 == "-"' "$WORK/kill.figures" | wc -l)
	read -r n p50 p99 max <<<"$(stats_of "$WORK/kill.ms")"
	echo "  takeovers done: $MOVES_DONE of $KILLS; packets lost: $(sum "$WORK/kill.lost") in $(sum "$WORK/kill.streams") s of stream"
	[ "$unmeasured" -eq 0 ] || echo "  not measured: $unmeasured kills (the stream's list of losses ends before them)"
	echo "  takeover seen by the traffic (longest silence after each kill, by the receiver's clock): n $n, p50 $p50 ms, p99 $p99 ms, max $max ms"
	trace_dump
	echo "  the floating addresses on the new active, after the power cut: $(trace_figures "$WORK/kill.marks")"
	[ "$MOVES_DONE" -gt 0 ] || return 0
	baseline_streams kill
	echo "  baseline, the same streams for $BASE_SECS s with no kill: longest silence $BASE_LONGEST ms, $BASE_LOST packets lost$BASE_NOTE"
	echo "  takeover / baseline: p50 x$(ratio "$p50" "$BASE_LONGEST"), max x$(ratio "$max" "$BASE_LONGEST")$([ "$BASE_LONGEST" -gt 0 ] || echo " (the baseline lost nothing)")"
}

bench_handovers() {
	local n p50 max unmeasured
	echo "pair-bench: $HANDOVERS handovers (grgw handover on the active gateway), alternating sites, under $RELOAD_RATE packets/s"
	pair_ready || { echo "  not measured: the pairs did not settle"; return 0; }
	moves handover "$HANDOVERS"
	awk '$3 != "-" { print $3 }' "$WORK/handover.figures" >"$WORK/handover.each"
	unmeasured=$(awk '$3 == "-"' "$WORK/handover.figures" | wc -l)
	read -r n p50 _ max <<<"$(stats_of "$WORK/handover.each")"
	echo "  handovers done: $MOVES_DONE of $HANDOVERS"
	[ "$unmeasured" -eq 0 ] || echo "  not measured: $unmeasured handovers (the stream's list of losses ends before them)"
	echo "  packets lost: $(sum "$WORK/handover.lost") in all ($(sum "$WORK/handover.streams") s of stream); per handover p50 $p50, max $max (n $n)"
	echo "  packets lost by the IPv6 stream beside it ($PAIR_RATE6 packets/s): $(sum "$WORK/handover.lost6")"
	trace_dump
	echo "  the floating addresses on the new active, after grgw handover began: $(trace_figures "$WORK/handover.marks")"
}

# pair_healthy SITE: settled, and both gateways reach etcd: a standby that
# could take over.  What a case starts from, so that it does not measure
# the one before (a gateway that was cut from etcd takes a moment to reach
# it again, and until then its partner refuses to hand over to it).
pair_healthy() {
	local gw
	pair_settled "$1" || return 1
	for gw in $(pair_gws "$1"); do
		status_pair_is "$gw" '.pair.etcd_ok' || return 1
	done
}

# partition_case NAME I: one case at site A, made as pair-partition makes
# it from a healthy pair, then mended; appends the time to settle to
# NAME.ms and "MARK NEW-ACTIVE a" to NAME.marks.  False when it did not
# settle, or the pair did not settle again once mended (said why).
partition_case() {
	local name=$1 i=$2 act other t0 settled=1
	if ! wait_until 30 pair_healthy a >"$WORK/settle.log"; then
		note "$name $i: site a is not healthy"
		show_file "$WORK/settle.log" 5
		pair_diag
		return 1
	fi
	act=$(active_of a)
	other=$(pair_partner "$act")
	trace_mark "$name-$i"
	t0=$(now_ms)
	case $name in
	link-cut) block_in "$other" hb ;;
	both-cut-at-active) block_in "$act" hb etcd ;;
	wan-cut) on "$act" ip link set "$GW_WAN_IF" down ;;
	esac
	if wait_until 10 pair_settled a "$other" alone >"$WORK/settle.log"; then
		echo $(($(now_ms) - t0)) >>"$WORK/$name.ms"
		echo "$name-$i $other a" >>"$WORK/$name.marks"
	else
		note "$name $i: $other did not take site a over"
		show_file "$WORK/settle.log" 5
		settled=0
	fi
	case $name in
	link-cut) unblock "$other" ;;
	both-cut-at-active) unblock "$act" ;;
	wan-cut) pair_wan_up "$act" ;;
	esac
	trace_mark "$name-$i-mended"
	if ! wait_until 30 pair_settled a >"$WORK/settle.log"; then
		note "$name $i: mended, and still not one active and one standby"
		show_file "$WORK/settle.log" 5
		pair_diag
		return 1
	fi
	[ "$settled" = 1 ]
}

PARTITION_CASES=(link-cut both-cut-at-active wan-cut)
declare -A PARTITION_WHAT=([link-cut]="the pair's link cut" [both-cut-at-active]="both cut at the active"
	[wan-cut]="the active's WAN down")

bench_partitions() {
	local i name n p50 max times="$PARTITIONS times"
	[ "$PARTITIONS" -ne 1 ] || times=once
	echo "pair-bench: partitions at site A, each case $times: time to settle (polled every 0.2 s, as pair-partition waits), and the floating addresses on the new active (address trace)"
	for name in "${PARTITION_CASES[@]}"; do
		: >"$WORK/$name.ms"
		: >"$WORK/$name.marks"
	done
	if pair_ready; then
		for ((i = 1; i <= PARTITIONS; i++)); do
			for name in "${PARTITION_CASES[@]}"; do
				partition_case "$name" "$i" || pair_ready || break 2
			done
		done
	else
		echo "  not measured: the pairs did not settle"
	fi
	trace_dump
	for name in "${PARTITION_CASES[@]}"; do
		read -r n p50 _ max <<<"$(stats_of "$WORK/$name.ms")"
		printf '  %-24s settled p50 %s ms, max %s ms (n %s of %s); the floating addresses on the new active after %s\n' \
			"${PARTITION_WHAT[$name]}:" "$p50" "$max" "$n" "$PARTITIONS" "$(trace_figures "$WORK/$name.marks")"
	done
}

# never_two: the address trace's verdict over the whole run, loud when it
# is no
never_two() {
	if trace_never_two >"$WORK/never-two" 2>&1; then
		echo "pair-bench: never two holders: yes ($(awk '$1 == "summary" { n++; c += $4 }
			END { printf "%d floating addresses, %d changes of holder", n, c }' "$WORK/trace.out"))"
	elif awk '$1 == "summary" && $6 > 1 { bad = 1 } END { exit !bad }' "$WORK/trace.out" 2>/dev/null; then
		echo "pair-bench: ********************************************************************"
		echo "pair-bench: never two holders: NO -- a floating address was on two gateways at once"
		echo "pair-bench: ********************************************************************"
		sed 's/^/  /' "$WORK/never-two"
	else
		echo "pair-bench: never two holders: not proven (the address trace is not whole)"
		sed 's/^/  /' "$WORK/never-two"
	fi
}

# ---- main -----------------------------------------------------------------------------

"$LAB" up --pair >"$WORK/lab-up.log" 2>&1 ||
	{ echo "pair-bench: lab.sh up --pair failed" >&2; cat "$WORK/lab-up.log" >&2; exit 1; }
"$LAB" conf "$LABCONF" --pair >/dev/null
rm -f "$WORK/trace.marks"
trace_start
pair_start "${PAIR_GWS[@]}"
pair_ready || { echo "pair-bench: the pairs did not settle after grgw up on the four gateways" >&2; exit 1; }
echo "pair-bench: pair timers (interval dead guard margin, ms) ${LAB_PAIR_TIMERS:-20 100 100 40}, data plane $(pair_json "$(active_of a)" | jq -r .dataplane)"
bench_kills
bench_handovers
bench_partitions
trace_stop
TRACE_PID=""
never_two
