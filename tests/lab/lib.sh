# shellcheck shell=bash
#
# Helpers shared by lab.sh and run-tests.sh: per-namespace wrappers, config
# rendering, grgw wrappers, assertions, bounded waits, WAN captures and their
# analysis.  Sourced, never run.  Every wait here has a limit.
# shellcheck disable=SC2034  # constants are used by the scripts sourcing this

LAB_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
GRGW=${GRGW:-$(cd "$LAB_HERE/../.." && pwd)/grgw}
PYTHON=${PYTHON:-$(command -v python3 || echo /usr/bin/python3)}

# Names, interfaces and addresses: the lab plan, shared with the VM lab.
# (source-path: where plan.env is seen from the scripts that source this)
# shellcheck source-path=SCRIPTDIR source-path=SCRIPTDIR/../lab source-path=SCRIPTDIR/../tests/lab
# shellcheck source=plan.env
. "$LAB_HERE/plan.env"
# A second lab on the same host (while another one runs): LAB_ID=N gives its
# namespaces and grgw's runtime directory names of their own.
[ -n "${LAB_ID:-}" ] && NS_PREFIX=${NS_PREFIX%-}$LAB_ID-
LAB_RUN_DIR=/run/grgw${LAB_ID:+-lab$LAB_ID}
IFS=, read -r -a LAB_NODES <<<"$SITE_A_NODES,$ROUTER_NODE,$SITE_B_NODES"

# plan NAME: the value of the plan's NAME (e.g. VELLUM_A4); fails if unset.
plan() {
	[ -n "${!1:-}" ] || { echo "plan.env: no $1" >&2; return 1; }
	printf '%s\n' "${!1}"
}

# prefix_len CIDR: the length after the slash (24 for 198.18.1.0/24)
prefix_len() { printf '%s\n' "${1#*/}"; }

# Anything from or to a site prefix seen on the WAN is a leak.
SITE_TRAFFIC="net $SITE_A_PREFIX4 or net $SITE_B_PREFIX4 or net $SITE_A_PREFIX6 or net $SITE_B_PREFIX6"
IKE_OR_ESP='(udp port 500 or udp port 4500 or ip proto 50)'
# Link-local IPv6 on a WAN (router and neighbour discovery, duplicate address
# detection, MLD): it can carry no site address.
LINK_LOCAL6='(ip6 and (src net fe80::/10 or src host ::))'
# ESP proper: raw, or UDP-encapsulated (non-zero SPI, unlike IKE's marker).
ESP_ONLY='(ip proto 50 or (udp port 4500 and udp[8:4] != 0))'

# ---- namespaces -------------------------------------------------------------

on() { local node=$1; shift; ip netns exec "$NS_PREFIX$node" "$@"; }
gw_a()     { on gw-a "$@"; }
vellum_a() { on vellum-a "$@"; }
sprout_a() { on sprout-a "$@"; }
router()   { on router "$@"; }
gw_b()     { on gw-b "$@"; }
vellum_b() { on vellum-b "$@"; }
sprout_b() { on sprout-b "$@"; }

lab_namespaces() { ip netns list | awk '{ print $1 }' | grep "^$NS_PREFIX" || true; }

# Processes living in any lab namespace, as "pid comm" lines.
lab_processes() {
	local ns pid
	for ns in $(lab_namespaces); do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do
			[ -r "/proc/$pid/comm" ] && printf '%s %s\n' "$pid" "$(cat "/proc/$pid/comm" 2>/dev/null)"
		done
	done
	return 0
}

# pids of processes named COMM in NODE's namespace
node_pids_named() {
	local node=$1 comm=$2 pid
	for pid in $(ip netns pids "$NS_PREFIX$node" 2>/dev/null); do
		[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ] && echo "$pid"
	done
	return 0
}

# ---- configuration ----------------------------------------------------------

# TSO and GSO in the nodes (lab.sh): off, as on a wire, or on.
LAB_NODE_OFFLOADS=${LAB_NODE_OFFLOADS:-off}
# Data plane the lab's gateways use: auto (the configs' own value), kernel
# or libipsec.  The kernel lab (tests/kernel-lab) sets kernel.
LAB_DATAPLANE=${LAB_DATAPLANE:-auto}
# The one `grgw status` reports: auto means libipsec on a kernel without ESP.
LAB_EXPECT_DP=${LAB_EXPECT_DP:-$([ "$LAB_DATAPLANE" = auto ] && echo libipsec || echo "$LAB_DATAPLANE")}
# The tunnel's interface, which grgw shapes and whose counters are the
# data plane's: libipsec's TUN device, or grgw's xfrm interface (the
# default name; the lab's configs keep it).
if [ "$LAB_EXPECT_DP" = kernel ]; then TUN_IF=grgw0; else TUN_IF=ipsec0; fi

# render_conf SRC DEST LABDIR [plain|nat]
# Fills in @LABDIR@ and the data plane; for nat, swaps the peer address for
# the one marked "# lab --nat:" (the gateway's address as the NAT router
# presents it).
render_conf() {
	local src=$1 dest=$2 labdir=$3 mode=${4:-plain}
	local dp="s/^mode[[:space:]]*=.*/mode = $LAB_DATAPLANE/"
	if [ "$mode" = nat ]; then
		sed -e "s|@LABDIR@|$labdir|g" -e "$dp" \
		    -e '/^address[[:space:]]*=/d' \
		    -e 's/^# lab --nat: //' "$src" >"$dest"
	else
		sed -e "s|@LABDIR@|$labdir|g" -e "$dp" "$src" >"$dest"
	fi
	# The configs end with their [daemon] section.
	if [ -n "${LAB_ID:-}" ]; then
		printf 'run_dir = %s\n' "$LAB_RUN_DIR" >>"$dest"
	fi
}

# nat_ruleset: the router's 1:1 NAT as an nftables script (lab.sh up --nat,
# and the VM lab's router with LAB_NAT=1).  Each gateway is presented to the
# other side under its public address; anything sent to a gateway's own
# address from the other side is dropped, so the gateways must use the
# public ones.
nat_ruleset() {
	cat <<-EOF
	table ip grgwlab_nat {
		chain prerouting {
			type nat hook prerouting priority dstnat; policy accept;
			iifname "$ROUTER_IF_B" ip daddr $GW_A_PUBLIC dnat to $GW_A_WAN
			iifname "$ROUTER_IF_A" ip daddr $GW_B_PUBLIC dnat to $GW_B_WAN
		}
		chain postrouting {
			type nat hook postrouting priority srcnat; policy accept;
			oifname "$ROUTER_IF_B" ip saddr $GW_A_WAN snat to $GW_A_PUBLIC
			oifname "$ROUTER_IF_A" ip saddr $GW_B_WAN snat to $GW_B_PUBLIC
		}
		chain forward {
			type filter hook forward priority filter; policy accept;
			ct original ip daddr { $GW_A_WAN, $GW_B_WAN } drop
		}
	}
	EOF
}

# conf_value FILE SECTION KEY: first value of KEY in [SECTION]
conf_value() {
	awk -v sect="[$2]" -v key="$3" '
		/^[[:space:]]*\[/ { gsub(/[[:space:]]/, ""); in_sect = ($0 == sect); next }
		in_sect && $0 ~ "^[[:space:]]*" key "[[:space:]]*=" {
			sub(/^[^=]*=[[:space:]]*/, ""); sub(/[[:space:]]+$/, ""); print; exit
		}' "$1"
}

# new_psk FILE: a fresh key from grgw, readable by its owner only
new_psk() {
	(umask 077 && "$GRGW" keygen >"$1") && chmod 0600 "$1"
}

# ---- grgw -------------------------------------------------------------------

# site_conf a|b: that site's current config ($CONF_A / $CONF_B)
site_conf() {
	case $1 in
	a) echo "$CONF_A" ;;
	b) echo "$CONF_B" ;;
	*) echo "site_conf: site a or b" >&2; return 2 ;;
	esac
}

# grgw_at a|b SUBCOMMAND [ARGS...]: grgw in that site's gateway namespace
grgw_at() {
	local site=$1 sub=$2 conf
	shift 2
	conf=$(site_conf "$site") || return 2
	on "gw-$site" "$GRGW" "$sub" -c "$conf" "$@"
}

# status_json a|b: the JSON status on stdout ("{}" if there is none).
# Output goes through a file: a daemon must never hold our pipe open.
status_json() {
	local f=$WORK/status-$1.json conf
	conf=$(site_conf "$1") || return 2
	timeout 15 ip netns exec "${NS_PREFIX}gw-$1" "$GRGW" status -c "$conf" --json \
		>"$f" 2>/dev/null </dev/null || true
	if jq -e 'type == "object"' "$f" >/dev/null 2>&1; then cat "$f"; else echo '{}'; fi
}

# status_is a|b JQ-EXPRESSION: true when the expression holds on the status
status_is() {
	status_json "$1" | jq -e "$2" >/dev/null 2>&1
}

TUNNEL_UP_JQ='.daemon.running == true and ((.peers // [])[0].tunnel == "up")'

# ---- assertions -------------------------------------------------------------

PASSED=0
FAILED=0
SKIPPED=0
TEST=${TEST:-lab}

pass() { PASSED=$((PASSED + 1)); printf 'ok   %s: %s\n' "$TEST" "$*"; }
fail() { FAILED=$((FAILED + 1)); printf 'FAIL %s: %s\n' "$TEST" "$*"; }
# skip WHY: the whole test cannot run here (what it needs is missing)
skip() { SKIPPED=$((SKIPPED + 1)); printf 'skipped: %s: %s\n' "$TEST" "$*"; }
note() { printf '     %s\n' "$*"; }

# lab_teardown: what a benchmark's EXIT trap does (call it last from
# one that does more): both gateways down and purged, the lab down
# (LAB, its lab.sh), WORK removed
lab_teardown() {
	set +e
	grgw_at a down --purge >/dev/null 2>&1
	grgw_at b down --purge >/dev/null 2>&1
	"$LAB" down >/dev/null 2>&1
	rm -rf "$WORK"
}

# check_native NAME CMD...: check, natively; under software emulation
# (LAB_WAIT_SCALE > 1), where charon takes tens to hundreds of ms over
# an exchange, a measure of what a change of SA costs in time is the
# emulator's: there the result is shown and not counted.
check_native() {
	local name=$1
	if [ "${LAB_WAIT_SCALE:-1}" -le 1 ]; then
		check "$@"
		return 0
	fi
	shift
	if "$@" >/dev/null 2>&1; then
		note "as natively expected: $name"
	else
		note "under emulation, not counted: $name: no"
	fi
	return 0
}

# check NAME CMD...: passes when CMD succeeds; shows CMD's output if not.
check() {
	local name=$1 out=$WORK/check.out
	shift
	if "$@" >"$out" 2>&1 </dev/null; then
		pass "$name"
	else
		fail "$name"
		tail -n 15 "$out" | sed 's/^/     | /'
	fi
	return 0
}

# check_not NAME CMD...: passes when CMD fails.
check_not() {
	local name=$1 out=$WORK/check.out
	shift
	if "$@" >"$out" 2>&1 </dev/null; then
		fail "$name"
		tail -n 15 "$out" | sed 's/^/     | /'
	else
		pass "$name"
	fi
	return 0
}

# show_file FILE [LINES]: indent the tail of a file into the report
show_file() {
	[ -f "$1" ] && tail -n "${2:-15}" "$1" | sed 's/^/     | /'
	return 0
}

# ---- time -------------------------------------------------------------------

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# wait_until SECONDS CMD...: poll CMD (which must itself be bounded) every
# 0.2 s until it succeeds; false once SECONDS times LAB_WAIT_SCALE (default
# 1; the kernel VM lab sets 3 under emulation) have passed, and then the
# last try's output is printed, so that a check that gave up shows what
# it saw.  CMD runs in this shell (a file, not a subshell, takes its
# output), so what it sets stays set.
wait_until() {
	local deadline=$(( $(now_ms) + $1 * 1000 * ${LAB_WAIT_SCALE:-1} ))
	local last="${TMPDIR:-/tmp}/grgw-wait.$BASHPID"
	shift
	while :; do
		if "$@" >"$last" 2>&1 </dev/null; then
			rm -f "$last"
			return 0
		fi
		if [ "$(now_ms)" -ge "$deadline" ]; then
			echo "wait_until: gave up; the last try of '$*' said:"
			cat "$last"
			rm -f "$last"
			return 1
		fi
		sleep 0.2
	done
}

# ---- traffic ----------------------------------------------------------------

SINK_PORT=7001

# sink_start NODE...: the TCP sink (tcp-sink.py) listening in each NODE
sink_start() {
	local node
	for node in "$@"; do
		ip netns exec "$NS_PREFIX$node" "$PYTHON" "$LAB_HERE/tcp-sink.py" --port "$SINK_PORT" \
			--log "$WORK/sink-$node.log" --lifetime 1800 \
			>"$WORK/sink-$node.err" 2>&1 </dev/null &
	done
	for node in "$@"; do
		wait_until 30 sink_listening "$node" || {
			echo "tcp sink did not start in $node" >&2
			show_file "$WORK/sink-$node.err" >&2
			return 1
		}
	done
}
sink_listening() { on "$1" ss -Hltn "sport = :$SINK_PORT" | grep -q LISTEN; }

# tcp_send NODE ADDR FILE: send FILE to the sink at ADDR from NODE; prints
# the sink's answer ("peer A bytes N sha256 H"); false if none came back.
tcp_send() {
	local out
	out=$(timeout 120 ip netns exec "$NS_PREFIX$1" nc -N -w 10 "$2" "$SINK_PORT" <"$3") || true
	[ -n "$out" ] && printf '%s\n' "$out"
}

# tcp_peer_is NODE ADDR EXPECTED-SOURCE: a short exchange reaches the sink
# at ADDR, which saw EXPECTED-SOURCE as the connection's source address.
tcp_peer_is() {
	local reply
	printf 'hello from %s\n' "$1" >"$WORK/hello-$1"
	reply=$(tcp_send "$1" "$2" "$WORK/hello-$1") || { echo "no answer from $2"; return 1; }
	echo "sink answered: $reply"
	[ "$(awk '{ print $2 }' <<<"$reply")" = "$3" ]
}

# connect_result NODE ADDR: one TCP connect to the sink port, with a
# generous timeout; prints "<result> <ms>", result one of connected,
# refused (a reset), unreachable (an ICMP error), timeout or an errno name.
connect_result() {
	timeout 20 ip netns exec "$NS_PREFIX$1" python3 "$LAB_HERE/connect-result.py" "$2" "$SINK_PORT" \
		2>/dev/null || echo "error 0"
}

# Fail fast means refused by the gateway (a reset, or ICMP unreachable),
# never a timeout.  How long it took is printed, never asserted: on an
# emulated CPU (tests/kernel-lab) or a busy machine it varies; the
# benchmarks measure it.

# connect_no_hang NODE ADDR: a TCP connect either succeeds or is refused;
# what it must not do is hang
connect_no_hang() {
	local r ms
	read -r r ms < <(connect_result "$1" "$2")
	echo "connect $1 -> $2 port $SINK_PORT: $r after $ms ms"
	[ "$r" = connected ] || [ "$r" = refused ] || [ "$r" = unreachable ]
}

# connect_refused NODE ADDR: a TCP connect is refused by the gateway (reset
# or ICMP unreachable), not left to time out
connect_refused() {
	local r ms
	read -r r ms < <(connect_result "$1" "$2")
	echo "connect $1 -> $2 port $SINK_PORT: $r after $ms ms"
	[ "$r" = refused ] || [ "$r" = unreachable ]
}

# ping_ok NODE ADDR: at least one echo reply
ping_ok() { on "$1" ping -n -c 3 -i 0.2 -W 2 "$2"; }

# ping_unreachable_from NODE ADDR GATEWAY: one echo request, no reply; an
# ICMP destination unreachable came back from GATEWAY (iputils prints "From
# GATEWAY icmp_seq=1 Destination Host Unreachable" / "Destination
# unreachable: ...").  One probe only: gateways rate-limit these errors per
# sender, and every probe spends some of that budget.
ping_unreachable_from() {
	local out
	out=$(on "$1" ping -n -c 1 -W 1 "$2" 2>&1) && { echo "$out"; echo "ping got a reply"; return 1; }
	echo "$out"
	grep -Eiq "^From $3 .*(unreachable|prohibited|filtered)" <<<"$out"
}

# ---- WAN captures -----------------------------------------------------------

declare -gA CAP_PID=()
WAN_IFS=(wan-a wan-b)

# capture_start TAG: tcpdump on the router's wan-a and wan-b into
# $WORK/TAG-wan-a.pcap and $WORK/TAG-wan-b.pcap; returns once both listen.
capture_start() {
	local tag=$1 ifc
	for ifc in "${WAN_IFS[@]}"; do
		rm -f "$WORK/$tag-$ifc.pcap" "$WORK/$tag-$ifc.log"
		# Not through on(): $! must be tcpdump itself (ip execs it), which
		# catches SIGINT even though background jobs start with it ignored.
		ip netns exec "${NS_PREFIX}router" tcpdump -i "$ifc" -n -s 256 -U \
			--immediate-mode -Z root -w "$WORK/$tag-$ifc.pcap" \
			>"$WORK/$tag-$ifc.log" 2>&1 </dev/null &
		CAP_PID[$tag-$ifc]=$!
	done
	for ifc in "${WAN_IFS[@]}"; do
		if ! wait_until 10 grep -q 'listening on' "$WORK/$tag-$ifc.log"; then
			echo "tcpdump on $ifc did not start:" >&2
			show_file "$WORK/$tag-$ifc.log" >&2
			return 1
		fi
	done
}

capture_running() { [ -n "${CAP_PID[$1-wan-a]:-}" ]; }

# capture_stop TAG: SIGINT to both tcpdumps, wait (bounded) until they exit.
capture_stop() {
	local tag=$1 ifc pid
	capture_running "$tag" || return 0
	sleep 0.3	# let packets in flight land in the files
	for ifc in "${WAN_IFS[@]}"; do
		kill -INT "${CAP_PID[$tag-$ifc]}" 2>/dev/null || true
	done
	for ifc in "${WAN_IFS[@]}"; do
		pid=${CAP_PID[$tag-$ifc]}
		wait_until 5 pid_gone "$pid" || kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		unset "CAP_PID[$tag-$ifc]"
	done
}

capture_stop_all() {
	local key
	for key in "${!CAP_PID[@]}"; do
		[[ $key == *-wan-a ]] && capture_stop "${key%-wan-a}"
	done
	return 0
}

pid_gone() { ! kill -0 "$1" 2>/dev/null; }

# pcap_count FILE FILTER: packets matching FILTER; -1 (and false) when the
# file cannot be read, so "== 0" checks cannot pass by accident.
pcap_count() {
	local out
	if ! out=$(tcpdump -nn -r "$1" "$2" 2>"$WORK/pcap.err"); then
		echo -1
		return 1
	fi
	if [ -z "$out" ]; then echo 0; else wc -l <<<"$out"; fi
}

# pcap_bytes FILE FILTER: sum of the payload lengths tcpdump reports
pcap_bytes() {
	tcpdump -nn -q -r "$1" "$2" 2>/dev/null |
		awk '{ for (i = NF - 1; i > 0; i--) if ($i == "length") { s += $(i + 1); break } }
		     END { print s + 0 }'
}

# The two gateways as each WAN interface sees them ("local remote").
wan_pair() {
	case "$1/$2" in
	plain/wan-a|plain/wan-b) echo "$GW_A_WAN $GW_B_WAN" ;;
	nat/wan-a) echo "$GW_A_WAN $GW_B_PUBLIC" ;;
	nat/wan-b) echo "$GW_A_PUBLIC $GW_B_WAN" ;;
	esac
}

# no_cleartext TAG: assert no site-prefix packet crossed either WAN side
check_no_cleartext() {
	local tag=$1 ifc n
	for ifc in "${WAN_IFS[@]}"; do
		n=$(pcap_count "$WORK/$tag-$ifc.pcap" "$SITE_TRAFFIC") || true
		if [ "$n" = 0 ]; then
			pass "no clear-text site traffic on $ifc"
		else
			fail "no clear-text site traffic on $ifc ($n packets)"
			tcpdump -nn -r "$WORK/$tag-$ifc.pcap" "$SITE_TRAFFIC" 2>&1 | head -n 5 | sed 's/^/     | /'
		fi
	done
}

# check_ike_esp TAG MODE: IKE/ESP between the gateways on both WAN sides
check_ike_esp() {
	local tag=$1 mode=$2 ifc pair n
	for ifc in "${WAN_IFS[@]}"; do
		read -r -a pair <<<"$(wan_pair "$mode" "$ifc")"
		n=$(pcap_count "$WORK/$tag-$ifc.pcap" "host ${pair[0]} and host ${pair[1]} and $IKE_OR_ESP") || true
		if [ "$n" -gt 0 ]; then
			pass "IKE/ESP between ${pair[0]} and ${pair[1]} on $ifc ($n packets)"
		else
			fail "IKE/ESP between ${pair[0]} and ${pair[1]} on $ifc ($n packets)"
			tcpdump -nn -r "$WORK/$tag-$ifc.pcap" 2>&1 | head -n 5 | sed 's/^/     | /'
		fi
	done
}

# ---- grgw on the gateways, for the test suites --------------------------------
# (They need WORK, CONF_A, CONF_B and UP_TIMEOUT set by the suite.)

# up_both TAG [UP-ARGS...]: grgw up on both gateways at once (A in the
# background, B in the foreground); sets RC_A and RC_B, logs TAG-a.log and
# TAG-b.log.  Each is bounded by its --timeout and by timeout(1).
up_both() {
	local tag=$1 pid
	shift
	RC_A=0
	RC_B=0
	timeout $((UP_TIMEOUT + 30)) ip netns exec "${NS_PREFIX}gw-a" "$GRGW" up -c "$CONF_A" \
		--timeout "$UP_TIMEOUT" "$@" >"$WORK/$tag-a.log" 2>&1 </dev/null &
	pid=$!
	timeout $((UP_TIMEOUT + 30)) ip netns exec "${NS_PREFIX}gw-b" "$GRGW" up -c "$CONF_B" \
		--timeout "$UP_TIMEOUT" "$@" >"$WORK/$tag-b.log" 2>&1 </dev/null || RC_B=$?
	wait "$pid" || RC_A=$?
}

# up_one a|b TAG: grgw up on one gateway; sets RC
up_one() {
	RC=0
	timeout $((UP_TIMEOUT + 30)) ip netns exec "${NS_PREFIX}gw-$1" "$GRGW" up -c "$(site_conf "$1")" \
		--timeout "$UP_TIMEOUT" >"$WORK/$2-$1.log" 2>&1 </dev/null || RC=$?
}

# down_one a|b TAG [--purge]: grgw down; sets RC
down_one() {
	local site=$1 tag=$2
	shift 2
	RC=0
	timeout 60 ip netns exec "${NS_PREFIX}gw-$site" "$GRGW" down -c "$(site_conf "$site")" "$@" \
		>"$WORK/$tag-$site.log" 2>&1 </dev/null || RC=$?
}

# ---- running a suite --------------------------------------------------------

# lab_main [TEST...]: run t_<name> for every test of ALL_TESTS that is
# named (all when none is), in ALL_TESTS' order; one test going wrong never
# ends the suite.  Prints each test's time and the closing tally; false if
# any check failed, 77 if every test that ran was skipped.
lab_main() {
	local selected=("$@") start t0
	[ ${#selected[@]} -gt 0 ] || selected=("${ALL_TESTS[@]}")
	start=$(now_ms)
	for TEST in "${ALL_TESTS[@]}"; do
		[[ " ${selected[*]} " == *" $TEST "* ]] || continue
		printf '# %s\n' "$TEST"
		t0=$(now_ms)
		if ! "t_${TEST//-/_}"; then
			fail "test ended early"
		fi
		printf '# %s: %d s\n' "$TEST" $(( ($(now_ms) - t0) / 1000 ))
	done
	printf '# total: %d s\n' $(( ($(now_ms) - start) / 1000 ))
	if [ "$SKIPPED" -gt 0 ]; then
		echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
	else
		echo "$PASSED passed, $FAILED failed"
	fi
	[ "$FAILED" -eq 0 ] || return 1
	[ "$PASSED" -eq 0 ] && [ "$SKIPPED" -gt 0 ] && exit 77
	return 0
}
