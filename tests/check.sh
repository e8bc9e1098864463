#!/bin/bash
# Everything `make check` runs, with one tally at the end:
#   unit tests (cmocka), plain and under ASan+UBSan
#   fuzz smoke runs (libFuzzer) of every parser
#   the shipped Prometheus rules and Grafana dashboard (promtool)
#   kernel tests of netlink/ in a throwaway network namespace
#   the two-site lab tests
#   installation: make install, the Debian package, the unit, the man
#   pages, the VM lab's Vagrantfile and provisioning (tests/package)
#   the two-site lab on Debian's kernel in a VM (tests/kernel-lab; skipped,
#   and counted as such, where qemu or the kernel cannot be installed)
#   with CHECK_VAGRANT=yes, the Vagrant lab booted with libvirt, checked
#   over ssh (tests/vagrant; skipped where libvirt or qemu cannot be
#   installed or started).  Not by default: under software emulation it
#   takes about 30 minutes, which would bring the whole run close to an
#   hour on a 2-core machine.
# usage: check.sh BUILD_DIR UNIT_TEST...
set -u
b=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
passed=0
failed=0
skipped=0
failures=()
skips=()
log=$(mktemp)
trap 'rm -f "$log"' EXIT

note() { printf '\n##### %s\n' "$*"; }

# Adds the counts of a runner's closing lines to the tally.
tally() {
	local name=$1 rc=$2 p f
	p=$(grep -Eo '^\[  PASSED  \] [0-9]+' "$log" | awk '{s+=$4} END {print s+0}')
	f=$(grep -Eo '^\[  FAILED  \] [0-9]+ test' "$log" | awk '{s+=$4} END {print s+0}')
	if grep -Eq '^[0-9]+ passed, [0-9]+ failed' "$log"; then
		p=$((p + $(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -1 | awk '{print $1}')))
		f=$((f + $(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -1 | awk '{print $3}')))
	fi
	if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
		# A stage without a counting runner counts as one test.
		if [ "$rc" -eq 0 ]; then p=1; else f=1; fi
	elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	if [ "$rc" -ne 0 ] || [ "$f" -ne 0 ]; then failures+=("$name"); fi
}

stage() {
	local name=$1 rc
	shift
	note "$name"
	"$@" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	# Exit 77 with a "skipped: why" line: the stage could not run here.
	if [ "$rc" -eq 77 ] && grep -q '^skipped: ' "$log"; then
		skipped=$((skipped + 1))
		skips+=("$name ($(grep -m 1 '^skipped: ' "$log" | cut -c 10-))")
		return
	fi
	tally "$name" "$rc"
	# A suite that ran may still have skipped a test of its own.
	local line
	while IFS= read -r line; do
		skipped=$((skipped + 1))
		skips+=("$name: ${line#skipped: }")
	done < <(grep '^skipped: ' "$log")
}

if [ "$(id -u)" -ne 0 ]; then
	echo "check.sh: the kernel and lab tests need root" >&2
	exit 1
fi

for t in "$@"; do
	stage "unit $t" "$b/unit/$t"
	stage "unit $t (ASan+UBSan)" env ASAN_OPTIONS=detect_leaks=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 "$b/unit-asan/$t"
done
stage "fuzz smoke" "$here/run-fuzz.sh" "$b" "${FUZZ_SECONDS:-15}"
stage "build: headers alone, fuzzers from their own sources" "$here/build/run.sh"
stage "shellcheck" shellcheck -x "$here"/*.sh "$here"/lab/*.sh "$here"/bench/*.sh "$here"/netlink/*.sh "$here"/kernel-lab/*.sh \
    "$here"/vagrant/*.sh "$here"/feeds/*.sh "$here"/monitoring/*.sh "$here"/build/*.sh "$here"/../gw/hooks/clearwater-alarm
stage "lab scripts: every shell function defined once" "$here/lab/defs-check.sh" run-tests.sh run-qos-tests.sh
stage "feeds: alarm hook, real etcd" "$here/feeds/run.sh" "$b"
stage "monitoring: Prometheus rules (promtool), Grafana dashboard" "$here/monitoring/run.sh"
stage "netlink kernel tests" "$here/netlink/run.sh"
stage "lab tools: the address trace, on namespaces of its own" "$here/lab/addr-trace-selftest.sh"
stage "two-site lab" "$here/lab/run-tests.sh"
stage "two-site lab: QoS" "$here/lab/run-qos-tests.sh"
stage "install, Debian package, VM lab" "$here/package/run.sh"
stage "two-site lab, kernel data plane, in a VM" "$here/kernel-lab/run.sh"
if [ "${CHECK_VAGRANT:-no}" = yes ]; then
	stage "the Vagrant lab, booted with libvirt" "$here/vagrant/run.sh"
fi

note "summary"
for f in "${failures[@]+"${failures[@]}"}"; do echo "FAILED: $f"; done
for f in "${skips[@]+"${skips[@]}"}"; do echo "SKIPPED: $f"; done
if [ "$skipped" -gt 0 ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
