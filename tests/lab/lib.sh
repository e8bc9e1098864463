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

# lab_ns_add NODE: NODE's namespace, loopback up.  Deterministic start,
# whatever the host has: forwarding off (lab.sh turns it on in the router;
# grgw turns it on in the gateways), no DAD anywhere.
lab_ns_add() {
	ip netns add "$NS_PREFIX$1" &&
	on "$1" ip link set lo up &&
	on "$1" sysctl -qw net.ipv4.ip_forward=0 &&
	on "$1" sysctl -qw net.ipv6.conf.all.forwarding=0 &&
	on "$1" sysctl -qw net.ipv6.conf.all.accept_dad=0 &&
	on "$1" sysctl -qw net.ipv6.conf.default.accept_dad=0
}

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

# render_conf SRC DEST LABDIR [plain|nat] [RUN_DIR]
# Fills in @LABDIR@ and the data plane; for nat, swaps the peer address for
# the one marked "# lab --nat:" (the gateway's address as the NAT router
# presents it).  RUN_DIR, if given, is the gateway's [daemon] run_dir (the
# pair's two gateways of a site need one each: see pair_run_dir); else the
# lab's own with LAB_ID, else the default.
render_conf() {
	local src=$1 dest=$2 labdir=$3 mode=${4:-plain} run_dir=${5:-}
	local dp="s/^mode[[:space:]]*=.*/mode = $LAB_DATAPLANE/"
	if [ "$mode" = nat ]; then
		sed -e "s|@LABDIR@|$labdir|g" -e "$dp" \
		    -e '/^address[[:space:]]*=/d' \
		    -e 's/^# lab --nat: //' "$src" >"$dest"
	else
		sed -e "s|@LABDIR@|$labdir|g" -e "$dp" "$src" >"$dest"
	fi
	# The configs end with their [daemon] section.
	if [ -n "$run_dir" ]; then
		printf 'run_dir = %s\n' "$run_dir" >>"$dest"
	elif [ -n "${LAB_ID:-}" ]; then
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

# emulated: the lab runs on a software-emulated host (its waits scaled,
# LAB_WAIT_SCALE > 1), whose processes stall for a second now and then
emulated() { [ "${LAB_WAIT_SCALE:-1}" -gt 1 ]; }

# check_native NAME CMD...: check, natively; under software emulation
# (LAB_WAIT_SCALE > 1), where charon takes tens to hundreds of ms over
# an exchange, a measure of what a change of SA costs in time is the
# emulator's: there the result is shown and not counted.
check_native() {
	local name=$1
	if ! emulated; then
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

# ---- the gateway pair (lab.sh up --pair) ------------------------------------
# Two gateways per site (gw-a1 and gw-a2, gw-b1 and gw-b2), each with its own
# addresses only; the site's floating ones are the active grgw's to add.  A
# switch namespace per site (sw-a, sw-b) holds two bridges: the site LAN
# (the gateways' lan0, the nodes', etcd's) and the site WAN (the gateways'
# wan0, the router's).  An etcd per site runs in a namespace of its own
# (etcd-a, etcd-b), plugged into the site LAN like any node.

# The pair lab's nodes (the switches apart), as LAB_NODES is the single one's.
IFS=, read -r -a LAB_PAIR_NODES <<<"$SITE_A_PAIR_NODES,$ROUTER_NODE,$SITE_B_PAIR_NODES"
# The bridges in each switch namespace.  A port is named after the node
# plugged in (gw-a1, vellum-a, etcd-a) on the LAN, NODE-wan (gw-a1-wan) on
# the WAN, and "router" for the router's.
SW_LAN_BR=lan
SW_WAN_BR=wan
# etcd's data and logs: a directory per lab (mktemp, so a name of this
# prefix), made by lab.sh up --pair, removed by lab.sh down.  NODE.data is
# an etcd's data directory (its disk: kept over power_off), NODE.log its log.
LAB_ETCD_DIR_PREFIX=/tmp/${NS_PREFIX}etcd.

# site_letter a|b: A or B, the plan's spelling; fails for anything else
site_letter() {
	case $1 in
	a|b) echo "${1^^}" ;;
	*) echo "site a or b, not '$1'" >&2; return 2 ;;
	esac
}

# pair_nodes_of a|b ROLE: that site's pair-lab nodes named ROLE-* (gw,
# vellum, sprout, etcd), one a line, in the plan's order
pair_nodes_of() {
	local S list node
	S=$(site_letter "$1") || return 2
	IFS=, read -r -a list <<<"$(plan "SITE_${S}_PAIR_NODES")"
	for node in "${list[@]}"; do
		[[ $node == "$2"-* ]] && echo "$node"
	done
	return 0
}

# pair_gws a|b: the site's two gateways, "gw-a1 gw-a2" (X1 first)
pair_gws() {
	local gws
	site_letter "$1" >/dev/null || return 2
	mapfile -t gws < <(pair_nodes_of "$1" gw)
	echo "${gws[*]}"
}

# pair_site NODE: a or b, the site of a node of the pair lab; fails for
# the router, a switch or an unknown node
pair_site() {
	case ",$SITE_A_PAIR_NODES," in *",$1,"*) echo a; return 0 ;; esac
	case ",$SITE_B_PAIR_NODES," in *",$1,"*) echo b; return 0 ;; esac
	echo "$1 is no node of a site of the pair lab" >&2
	return 2
}

# pair_id GW: the plan's name of a pair gateway (gw-a1: A1, for GW_A1_LAN4)
pair_id() { local id=${1#gw-}; echo "${id^^}"; }

# pair_partner GW: the other gateway of GW's site
pair_partner() {
	local site gw
	site=$(pair_site "$1") || return 2
	for gw in $(pair_gws "$site"); do
		[ "$gw" = "$1" ] || echo "$gw"
	done
}

# pair_run_dir GW: GW's grgw [daemon] run_dir.  The namespaces share the
# host's /run, and a site's directory is run_dir/<site name>: the two
# gateways of a site need a run_dir each.  Its parent (/run) exists, as
# grgw wants.
pair_run_dir() { printf '%s\n' "$LAB_RUN_DIR-$1"; }

# etcd_endpoint a|b: the site's etcd as a client URL
etcd_endpoint() {
	local S
	S=$(site_letter "$1") || return 2
	printf 'http://%s:%s\n' "$(plan "ETCD_${S}4")" "$(plan ETCD_CLIENT_PORT)"
}

# etcd_at a|b CMD...: etcdctl CMD... against the site's etcd (API v3, the
# plan's endpoint), bounded.  It runs in the site's etcd namespace, which
# always reaches it; ETCD_FROM=NODE runs it in NODE instead (a gateway:
# what grgw there sees).  E.g. etcd_at a get --prefix /grgw
etcd_at() {
	local site=$1 from ep
	shift
	ep=$(etcd_endpoint "$site") || return 2
	from=${ETCD_FROM:-$(pair_nodes_of "$site" etcd)}
	timeout 20 ip netns exec "$NS_PREFIX$from" env ETCDCTL_API=3 etcdctl \
		--endpoints="$ep" --dial-timeout=2s --command-timeout=5s "$@"
}

# lab_etcd_dir: the lab's etcd directory; false if there is none
lab_etcd_dir() {
	local d
	for d in "$LAB_ETCD_DIR_PREFIX"*; do
		[ -d "$d" ] && [ ! -L "$d" ] && { echo "$d"; return 0; }
	done
	return 1
}

# etcd_start a|b: the site's etcd, in its namespace, on the plan's address
# and ports, data in the lab's etcd directory (kept from a previous run:
# etcd then ignores the --initial-* flags); returns once it is healthy.
# Detached (setsid, no stream of ours): it outlives lab.sh, and lab_down
# ends it with the namespace's other processes.
etcd_start() {
	local site=$1 S node dir addr client peer
	S=$(site_letter "$site") || return 2
	node=$(pair_nodes_of "$site" etcd)
	dir=$(lab_etcd_dir) || { echo "etcd_start: no $LAB_ETCD_DIR_PREFIX* directory (lab.sh up --pair makes it)" >&2; return 1; }
	addr=$(plan "ETCD_${S}4")
	client=http://$addr:$(plan ETCD_CLIENT_PORT)
	peer=http://$addr:$(plan ETCD_PEER_PORT)
	setsid ip netns exec "$NS_PREFIX$node" etcd --name "$node" --data-dir "$dir/$node.data" \
		--listen-client-urls "$client" --advertise-client-urls "$client" \
		--listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
		--initial-cluster "$node=$peer" --initial-cluster-state new \
		--initial-cluster-token "$NS_PREFIX$node" \
		>>"$dir/$node.log" 2>&1 </dev/null &
	if ! ETCD_FROM='' wait_until 30 etcd_at "$site" endpoint health; then
		echo "etcd in $node is not healthy after 30 s:" >&2
		show_file "$dir/$node.log" >&2
		return 1
	fi
}

# pair_switch_up a|b: the site's switch namespace and its two bridges.
# IPv6 off in it: a switch has no address, and sends nothing of its own.
pair_switch_up() {
	local S sw br
	S=$(site_letter "$1") || return 2
	sw=$(plan "SITE_${S}_SWITCH_NODE")
	lab_ns_add "$sw"
	on "$sw" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
	on "$sw" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
	for br in "$SW_LAN_BR" "$SW_WAN_BR"; do
		on "$sw" ip link add "$br" type bridge forward_delay 0 stp_state 0 mcast_snooping 0
		on "$sw" ip link set "$br" up
	done
}

# pair_mac IPV4: the MAC address of the interface with that (own) address:
# locally administered, 02:00 then the address's bytes.  A node keeps its
# MACs over power_off and power_on, as a machine keeps its NICs': its
# neighbours' caches stay right.
pair_mac() {
	local IFS=.
	# shellcheck disable=SC2086  # split on the dots
	printf '02:00:%02x:%02x:%02x:%02x\n' $1
}

# pair_node_up NODE: a node of a site of the pair lab as it boots: its
# namespace, its links plugged into the site's switch (which must exist),
# its own addresses and routes, fixed MACs (pair_mac).  A gateway gets its own LAN (IPv4, IPv6)
# and WAN addresses and a default route via the router from its own WAN
# address; never a floating address (the active grgw adds those).  Other
# nodes (vellum, sprout, etcd) get their address(es) and default routes via
# the site's floating LAN addresses, as in the single-gateway lab.
pair_node_up() {
	local node=$1 site S sw ns len4 len6 id host v6
	site=$(pair_site "$node") || return 2
	S=${site^^}
	sw=$NS_PREFIX$(plan "SITE_${S}_SWITCH_NODE") || return 1
	ns=$NS_PREFIX$node
	len4=$(prefix_len "$(plan "SITE_${S}_PREFIX4")")
	len6=$(prefix_len "$(plan "SITE_${S}_PREFIX6")")
	# Every step checked: power_on runs this where set -e may not hold.
	lab_ns_add "$node" || return 1
	case $node in
	gw-*)
		id=$(pair_id "$node")
		ip -n "$ns" link add "$GW_LAN_IF" address "$(pair_mac "$(plan "GW_${id}_LAN4")")" \
			type veth peer name "$node" netns "$sw" || return 1
		ip -n "$ns" link add "$GW_WAN_IF" address "$(pair_mac "$(plan "GW_${id}_WAN")")" \
			type veth peer name "$node-wan" netns "$sw" || return 1
		ip -n "$sw" link set "$node" master "$SW_LAN_BR" up || return 1
		ip -n "$sw" link set "$node-wan" master "$SW_WAN_BR" up || return 1
		on "$node" ip addr add "$(plan "GW_${id}_LAN4")/$len4" dev "$GW_LAN_IF" || return 1
		on "$node" ip addr add "$(plan "GW_${id}_LAN6")/$len6" dev "$GW_LAN_IF" nodad || return 1
		on "$node" ip addr add "$(plan "GW_${id}_WAN")/$(prefix_len "$(plan "WAN_${S}_PREFIX")")" \
			dev "$GW_WAN_IF" || return 1
		on "$node" ip link set "$GW_LAN_IF" up || return 1
		on "$node" ip link set "$GW_WAN_IF" up || return 1
		on "$node" ip route add default via "$(plan "ROUTER_$S")" dev "$GW_WAN_IF" \
			src "$(plan "GW_${id}_WAN")" || return 1
		;;
	*)
		host=${node%-*}
		host=${host^^}_$S
		v6=${host}6
		ip -n "$ns" link add "$NODE_IF" address "$(pair_mac "$(plan "${host}4")")" \
			type veth peer name "$node" netns "$sw" || return 1
		ip -n "$sw" link set "$node" master "$SW_LAN_BR" up || return 1
		on "$node" ip addr add "$(plan "${host}4")/$len4" dev "$NODE_IF" || return 1
		on "$node" ip link set "$NODE_IF" up || return 1
		# As in lab_up: frames of at most the MTU, as on a wire.
		if [ "$LAB_NODE_OFFLOADS" != on ] && [[ $node != etcd-* ]]; then
			on "$node" ethtool -K "$NODE_IF" tso off gso off || return 1
		fi
		on "$node" ip route add default via "$(plan "GW_${S}_LAN4")" || return 1
		# (etcd has no IPv6 address in the plan, so no IPv6 route)
		if [ -n "${!v6:-}" ]; then
			on "$node" ip addr add "${!v6}/$len6" dev "$NODE_IF" nodad || return 1
			on "$node" ip -6 route add default via "$(plan "GW_${S}_LAN6")" || return 1
		fi
		;;
	esac
}

# node_gone NODE: no process left in NODE's namespace (any there get
# SIGKILL): a condition for wait_until
node_gone() {
	local pids
	pids=$(ip netns pids "$NS_PREFIX$1" 2>/dev/null)
	[ -z "$pids" ] && return 0
	# shellcheck disable=SC2086
	kill -KILL $pids 2>/dev/null
	return 1
}

# pair_wan_up GW: its WAN interface up again after a cut, and its default
# route back (the kernel drops the routes of an interface set down;
# pair_node_up made it, as a host's network configuration would)
pair_wan_up() {
	local id
	id=$(pair_id "$1")
	on "$1" ip link set "$GW_WAN_IF" up
	on "$1" ip route replace default via "$(plan "ROUTER_${id:0:1}")" dev "$GW_WAN_IF" \
		src "$(plan "GW_${id}_WAN")"
}

# power_off NODE: NODE loses its power: all its links go down at once (lo
# apart: it carries nothing out), so that the switch and the neighbours
# see its carrier go, and every process in its namespace is killed
# (SIGKILL, again until none is left: nothing cleans up).  The links go
# first: a box without power answers nothing from that instant, and a
# killed process of ours must not be what made it go quiet.  Its kernel
# state (addresses, routes, nftables, xfrm) stays as it was, unused,
# until power_on.  Any node of either lab.
power_off() {
	local node=$1 ns=$NS_PREFIX$1 ifc
	[ -e "/run/netns/$ns" ] || { echo "power_off: no namespace $ns" >&2; return 1; }
	for ifc in $(ip -n "$ns" -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }'); do
		[ "$ifc" = lo ] || ip -n "$ns" link set "$ifc" down
	done
	if ! wait_until 10 node_gone "$node"; then
		echo "power_off: processes left in $ns:" >&2
		ip netns pids "$ns" >&2
		return 1
	fi
}

# power_on NODE: NODE boots again after power_off: a fresh namespace (no
# address, route, rule, nftables or xfrm state from before; the floating
# addresses a grgw held are gone, as they would be), links up with its own
# addresses and routes (pair_node_up), an empty run_dir for a gateway (a
# boot empties /run), and on an etcd node its etcd started again on its
# kept data.  A gateway's grgw is not started: that is the test's to do.
# Nodes of the pair lab's sites only (not the router, not a switch).
power_on() {
	local node=$1 site sw port
	site=$(pair_site "$node") || return 2
	if [ -n "$(ip netns pids "$NS_PREFIX$node" 2>/dev/null)" ]; then
		echo "power_on: $node has processes: power_off first" >&2
		return 1
	fi
	ip netns del "$NS_PREFIX$node" 2>/dev/null || true
	# The old namespace goes away in the background, and its veths' ends
	# in the switch with it; but a namespace some kernel object still
	# refers to (one a killed daemon left) can linger for long.  The
	# ports' names are needed again: delete them from the switch's side
	# (which takes their other ends with them).
	sw=$NS_PREFIX$(plan "SITE_${site^^}_SWITCH_NODE")
	for port in "$node" "$node-wan"; do
		ip -n "$sw" link del "$port" 2>/dev/null || true
		wait_until 10 port_gone "$sw" "$port" ||
			{ echo "power_on: $port still in $sw" >&2; return 1; }
	done
	case $node in gw-*)
		keep_node_logs "$node"
		rm -rf "$(pair_run_dir "$node")" ;;
	esac
	pair_node_up "$node" || return 1
	case $node in etcd-*) etcd_start "$site" || return 1 ;; esac
	return 0
}
port_gone() { ! ip -n "$1" link show "$2" >/dev/null 2>&1; }

# keep_node_logs GW: with LAB_KEEP_DIR, GW's logs, grgw's and charon's,
# added to the ones kept of it (grgw-GW.log, charon-GW.log), before a
# power-on starts it afresh and at the end
keep_node_logs() {
	local f
	[ -n "${LAB_KEEP_DIR:-}" ] || return 0
	mkdir -p "$LAB_KEEP_DIR" || return 0
	for f in "$(pair_run_dir "$1")"/site-*/grgw.log "$(pair_run_dir "$1")"/site-*/charon.log; do
		[ -f "$f" ] && cat "$f" >>"$LAB_KEEP_DIR/$(basename "$f" .log)-$1.log"
	done
	return 0
}

# holder_of ADDR a|b: which of the site's gateways hold ADDR now, on an
# interface that is up, space-separated: "" when none, "gw-a1 gw-a2" when
# both (two actives).  A powered-off gateway holds nothing.
holder_of() {
	local addr=$1 gws gw held=()
	gws=$(pair_gws "$2") || return 2
	for gw in $gws; do
		if [ -n "$(on "$gw" ip -o addr show up to "$addr" 2>/dev/null)" ]; then
			held+=("$gw")
		fi
	done
	echo "${held[*]}"
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
