#!/bin/bash
#
# Runs inside the kernel-lab VM (started by init.sh), as root, on a
# copy-on-write view of the host's file system.  The job comes from the
# results share (run.sh wrote it): mode (check, bench, exec or probe), args.
# Everything printed goes to the serial console; the closing
# "N passed, N failed" line is also written to SHARE/summary.
#
# usage: guest.sh SHARE

set -u
SHARE=$1
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
MODE=$(cat "$SHARE/mode")
ARGS=()
if [ -s "$SHARE/args" ]; then
	mapfile -t ARGS <"$SHARE/args"
fi

[ "$MODE" = probe ] && exit 0
cd "$TOP" || exit 1

export GRGW=$TOP/grgw
# Emulated CPUs are slow: give negotiations more time than on the host.
export UP_TIMEOUT=${UP_TIMEOUT:-90}
export LAB_DATAPLANE=kernel
# Under software emulation a process can take seconds to start: every
# wait for a state in the lab tests lasts three times as long (a limit,
# never a measure; a state reached sooner ends the wait sooner).
if [ "$(cat "$SHARE/accel" 2>/dev/null)" = tcg ]; then
	export LAB_WAIT_SCALE=${LAB_WAIT_SCALE:-3}
	# The gateway pair's timers for such a host: a process that waits
	# tens of ms for a CPU must still have let go of the floating
	# addresses before its partner takes them (margin_ms), and an
	# active alone must hold the role on etcd answers that take as long
	# (guard_ms - margin_ms).  grgw.conf(5), [pair].  Here both answer
	# hundreds of ms late: with 50 250 300 150, a lone active let go and
	# took the addresses again dozens of times a minute.
	export LAB_PAIR_TIMERS=${LAB_PAIR_TIMERS:-100 1000 1000 400}
	# A handover's IKE exchange (the incoming gateway's SAs: IKE_SA_INIT,
	# IKE_AUTH and a CREATE_CHILD_SA per pair of prefixes) took 2 to
	# 4.5 s here, past the 4 s these timers give it by default: the
	# handover then went without them (one IKE exchange after the move,
	# and the other site kept the outgoing gateway's SAs until
	# dead-peer detection).  One lost message retransmitted fits too.
	export LAB_PAIR_HANDOVER_WAIT_MS=${LAB_PAIR_HANDOVER_WAIT_MS:-10000}
	# A kill or a handover takes tens of seconds here: fewer of them
	# (the namespace lab on the host does 20 of each).
	export PAIR_KILLS=${PAIR_KILLS:-4} PAIR_HANDOVERS=${PAIR_HANDOVERS:-4}
fi
# Logs a test keeps for later (run.sh: KERNEL_LAB_KEEP=1 keeps them).
export LAB_KEEP_DIR=$SHARE/logs

echo "== guest: $(uname -r), $(nproc) CPUs, $(awk '/MemTotal/ { print int($2 / 1024) }' /proc/meminfo) MiB"
echo "== guest: modules: $(lsmod | awk 'NR > 1 && $1 ~ /^(esp4|esp6|xfrm_user|xfrm_interface|gcm|aesni_intel)$/ { printf "%s ", $1 }')"

# libreswan for interop-libreswan and for the benchmark against it: run.sh
# put Debian's package in the share when either is asked for.  It conflicts
# with strongSwan, so it is not installed: only its programs are unpacked,
# into this guest's copy-on-write root: /usr/libexec/ipsec, where pluto
# looks for its helpers, and its `ipsec` command as /usr/local/sbin/ipsec,
# ahead of strongSwan's in PATH (pluto runs `ipsec _updown`); the test gives
# pluto every other path.
if [ -f "$SHARE/libreswan.deb" ]; then
	if dpkg-deb --fsys-tarfile "$SHARE/libreswan.deb" | tar -x -C / ./usr/libexec/ipsec &&
		dpkg-deb --fsys-tarfile "$SHARE/libreswan.deb" |
		tar -x -C /usr/local --strip-components=2 ./usr/sbin/ipsec; then
		echo "== guest: libreswan $(dpkg-deb -f "$SHARE/libreswan.deb" Version) unpacked into /usr/libexec/ipsec"
	else
		echo "== guest: could not unpack libreswan"
	fi
fi

case $MODE in
exec)
	"${ARGS[@]}"
	exit $?
	;;
bench)
	"$HERE/bench.sh" "${ARGS[@]+"${ARGS[@]}"}"
	rc=$?
	echo "bench exit $rc" >"$SHARE/summary"
	exit "$rc"
	;;
check)
	;;
*)
	echo "guest.sh: unknown mode $MODE"
	exit 2
	;;
esac

# check: the namespace lab in kernel mode, then the kernel-only checks.
# By default the lab tests whose outcome depends on the data plane (the
# topology, config and link-probe tests are the same in both and slow under
# emulation), the gateway pair's start and handovers (XFRM keeps both
# gateways' SAs apart at the other site only through a policy per SA),
# and the QoS lab; "all" runs every lab test; other names pick lab tests,
# "qos" the QoS lab and "kernel" the kernel-only checks.
CORE_LAB_TESTS=(up reach bulk wan peer-down charon-kill harden-block local-down wrong-psk nat interop-libreswan
	pair-up pair-handover)
lab_tests=()
run_lab=1
want_kernel=1
want_qos=1
if [ ${#ARGS[@]} -eq 0 ]; then
	lab_tests=("${CORE_LAB_TESTS[@]}")
else
	run_lab=0
	want_kernel=0
	want_qos=0
	for t in "${ARGS[@]}"; do
		case $t in
		kernel) want_kernel=1 ;;
		qos) want_qos=1 ;;
		all) run_lab=1; want_kernel=1; want_qos=1; lab_tests=() ;;
		*) run_lab=1; lab_tests+=("$t") ;;
		esac
	done
fi

passed=0
failed=0
skipped=0
# tally LOG RC: add the suite's closing line (or one failure if it has none);
# exit 77 is a suite whose every test was skipped
tally() {
	local line
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$1" | tail -n 1)
	if [ -n "$line" ]; then
		passed=$((passed + $(awk '{ print $1 }' <<<"$line")))
		failed=$((failed + $(awk '{ print $3 }' <<<"$line")))
		skipped=$((skipped + $(awk '{ print $5 + 0 }' <<<"$line")))
	fi
	grep '^skipped: ' "$1" >>"$SHARE/skipped"
	if [ -z "$line" ] || { [ "$2" -ne 0 ] && [ "$2" -ne 77 ] && [ "$(awk '{ print $3 }' <<<"$line")" = 0 ]; }; then
		failed=$((failed + 1))
	fi
}

log=$(mktemp)
if [ "$run_lab" = 1 ]; then
	echo "== namespace lab, dataplane = kernel"
	"$TOP/tests/lab/run-tests.sh" "${lab_tests[@]+"${lab_tests[@]}"}" 2>&1 | tee "$log"
	tally "$log" "${PIPESTATUS[0]}"
fi
if [ "$want_qos" = 1 ]; then
	echo "== QoS lab, dataplane = kernel"
	"$TOP/tests/lab/run-qos-tests.sh" 2>&1 | tee "$log"
	tally "$log" "${PIPESTATUS[0]}"
fi
if [ "$want_kernel" = 1 ]; then
	echo "== kernel-only checks"
	"$HERE/kernel-tests.sh" 2>&1 | tee "$log"
	tally "$log" "${PIPESTATUS[0]}"
fi
rm -f "$log"
result="$passed passed, $failed failed"
[ "$skipped" -eq 0 ] || result="$result, $skipped skipped"
echo "== kernel lab: $result"
if [ -s "$SHARE/skipped" ]; then cat "$SHARE/skipped"; fi
echo "$result" >"$SHARE/summary"
[ "$failed" -eq 0 ]
