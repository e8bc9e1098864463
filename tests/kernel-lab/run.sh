#!/bin/bash
#
# The two-site lab on a real Debian kernel with XFRM, in a VM.
#
#   host                                   guest (qemu, Debian's linux-image-amd64)
#   ----                                   -----------------------------------------
#   /  ------ 9p, read-only ------------>  lower layer of an overlay root (tmpfs upper:
#                                          the guest writes to its own memory only)
#   $OUT  --- 9p, read-write ----------->  /run/kernel-lab: the job in, results out
#   initramfs (busybox + modules) ------>  /init: 9p, ESP, XFRM, AES-GCM modules,
#                                          then tests/kernel-lab/guest.sh
#   serial console <---------------------  everything the guest prints
#
# Inside the guest, tests/lab/run-tests.sh runs with `mode = kernel`
# (LAB_DATAPLANE=kernel), then tests/kernel-lab/kernel-tests.sh adds the
# checks only the kernel data plane has (xfrm interface, XFRM state and
# policies, outer DSCP, XFRM error counters, nothing left after down).
#
# Usage:  run.sh [check [TEST...]]   the lab tests that depend on the data plane
#                                    + the kernel-only checks; TEST: "all" (every
#                                    lab test), lab test names, "kernel"
#         run.sh bench [PART...]     tests/kernel-lab/bench.sh in the VM; PART:
#                                    throughput, startup, qos, interop-libreswan
#                                    (default: all of them)
#         run.sh exec CMD [ARG...]   one command in the guest (for debugging)
#
# Environment:
#   KERNEL_LAB_INSTALL  yes (default): apt-get install qemu-system-x86,
#                       linux-image-amd64 and busybox-static when missing;
#                       no: use what is there
#   KERNEL_LAB_KERNEL   a vmlinuz to boot (default: the newest /boot/vmlinuz-*
#                       whose /lib/modules has xfrm_interface)
#   KERNEL_LAB_ACCEL    auto (default: KVM if a probe boot works, else TCG),
#                       kvm or tcg
#   KERNEL_LAB_TIMEOUT  seconds for the whole VM run (default 1500)
#   KERNEL_LAB_MEM      MiB (default 2048)   KERNEL_LAB_SMP  CPUs (default 2)
#   KERNEL_LAB_KEEP     1: keep the results directory (its path is printed)
#   KERNEL_LAB_CACHE    where Debian's libreswan package is kept for the
#                       interop-libreswan test and benchmark (default
#                       /var/cache/grgw-kernel-lab)
#
# Exit: 0 every check passed, 1 a check failed (or the VM did not report),
# 77 skipped: qemu or a kernel image with XFRM modules is not available.

set -u

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
# shellcheck source=tests/pkgs.sh
. "$TOP/tests/pkgs.sh"
GRGW=${GRGW:-$TOP/grgw}
INSTALL=${KERNEL_LAB_INSTALL:-yes}
ACCEL=${KERNEL_LAB_ACCEL:-auto}
VM_TIMEOUT=${KERNEL_LAB_TIMEOUT:-1500}
MEM=${KERNEL_LAB_MEM:-2048}
SMP=${KERNEL_LAB_SMP:-2}
PKGS="qemu-system-x86 linux-image-amd64 busybox-static"
QEMU=qemu-system-x86_64
SKIP=77

# Modules the guest needs before anything else: virtio and 9p for the root,
# overlayfs for a writable view of it, then the kernel data plane: ESP for
# both families, XFRM (netlink API and interfaces), AES-GCM and its IV
# generators.  "?" marks the accelerated variants, which need CPU features.
MODULES="virtio_pci 9pnet_virtio 9p overlay
esp4 esp6 xfrm_user xfrm_interface gcm ghash_generic seqiv echainiv tun
?aesni_intel ?ghash_clmulni_intel"

usage() {
	sed -n '/^# Usage:/,/^# Exit:/p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

skip() {
	echo "skipped: $*"
	exit "$SKIP"
}

# ---- arguments ----------------------------------------------------------------

MODE=check
case ${1:-} in
"") ;;
check|bench) MODE=$1; shift ;;
exec) MODE="exec"; shift; [ $# -gt 0 ] || usage ;;
-h|--help) usage ;;
*) MODE=check ;;	# test names straight away
esac
case $ACCEL in auto|kvm|tcg) ;; *) echo "KERNEL_LAB_ACCEL: auto, kvm or tcg" >&2; exit 2 ;; esac

[ "$(id -u)" -eq 0 ] || skip "the kernel lab needs root (qemu's 9p export of / and apt-get)"
if [ ! -x "$GRGW" ]; then
	echo "kernel-lab: no grgw binary at $GRGW (run make)" >&2
	exit 1
fi

# ---- what the VM needs ----------------------------------------------------------

# xfrm_interface.ko under /lib/modules/VERSION: a kernel the lab can use
kernel_usable() {
	local ver=$1
	[ -r "/lib/modules/$ver/modules.dep" ] &&
		grep -q '/xfrm_interface\.ko' "/lib/modules/$ver/modules.dep" &&
		grep -q '/9p\.ko' "/lib/modules/$ver/modules.dep"
}

find_kernel() {
	local f ver
	if [ -n "${KERNEL_LAB_KERNEL:-}" ]; then
		[ -r "$KERNEL_LAB_KERNEL" ] || return 1
		ver=$(basename "$KERNEL_LAB_KERNEL")
		ver=${ver#vmlinuz-}
		kernel_usable "$ver" || return 1
		echo "$KERNEL_LAB_KERNEL $ver"
		return 0
	fi
	while read -r f; do
		ver=${f#/boot/vmlinuz-}
		if [ -r "$f" ] && kernel_usable "$ver"; then
			echo "$f $ver"
			return 0
		fi
	done < <(find /boot -maxdepth 1 -name 'vmlinuz-*' 2>/dev/null | sort -rV)
	return 1
}

# Installs what is missing; false (with the reason printed) if it cannot.
install_packages() {
	local missing
	# shellcheck disable=SC2086 # a list of package names
	missing=$(missing_packages $PKGS)
	[ -z "$missing" ] && return 0
	if [ "$INSTALL" != yes ]; then
		echo "missing packages:$missing (KERNEL_LAB_INSTALL=$INSTALL)"
		return 1
	fi
	command -v apt-get >/dev/null || { echo "no apt-get to install$missing"; return 1; }
	echo "kernel-lab: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	# shellcheck disable=SC2086
	if ! timeout 900 apt-get install -y -q --no-install-recommends $missing >"$OUT/apt.log" 2>&1; then
		timeout 300 apt-get update -q >>"$OUT/apt.log" 2>&1
		# shellcheck disable=SC2086
		if ! timeout 900 apt-get install -y -q --no-install-recommends $missing >>"$OUT/apt.log" 2>&1; then
			tail -n 5 "$OUT/apt.log"
			echo "apt-get could not install$missing"
			return 1
		fi
	fi
}

# ---- libreswan, for interop-libreswan ------------------------------------------------
#
# Debian's libreswan conflicts with strongswan-charon, so it is never
# installed here: `apt-get download` fetches the package into the cache
# and the guest unpacks its programs into its own copy-on-write root
# (guest.sh).  What pluto links against conflicts with nothing and is
# installed like any other package, so the guest sees it through 9p.

# wants_libreswan TEST...: does this check (or benchmark, PART...) run
# interop-libreswan?
wants_libreswan() {
	local t
	[ $# -eq 0 ] && return 0
	for t in "$@"; do
		case $t in all|interop-libreswan) return 0 ;; esac
	done
	return 1
}

# libreswan_deps DEB: the libraries DEB depends on (libnss3-tools, which
# has certutil, among them), first alternatives, one a line.  The rest
# (debconf, dns-root-data, host, iproute2, iptables) serve the package's
# scripts and DNS lookups, which the test does not use.
libreswan_deps() {
	dpkg-deb -f "$1" Pre-Depends Depends |
		sed -e 's/^[A-Za-z-]*: //' | tr ',' '\n' |
		sed -e 's/|.*//' -e 's/(.*)//' -e 's/:any//' -e 's/[[:space:]]//g' | grep '^lib'
}

# fetch_libreswan: the package in $OUT/share/libreswan.deb and its
# dependencies installed; false (with the reason printed) if it cannot be had
fetch_libreswan() {
	local cache=${KERNEL_LAB_CACHE:-/var/cache/grgw-kernel-lab} deb p missing=""
	mkdir -p "$cache" || { echo "cannot create $cache"; return 1; }
	deb=$(find "$cache" -maxdepth 1 -name 'libreswan_*.deb' | sort -V | tail -n 1)
	if [ -z "$deb" ]; then
		[ "$INSTALL" = yes ] || { echo "no libreswan package in $cache (KERNEL_LAB_INSTALL=$INSTALL)"; return 1; }
		echo "kernel-lab: apt-get download libreswan into $cache"
		if ! (cd "$cache" && timeout 300 apt-get download -q libreswan) >>"$OUT/apt.log" 2>&1; then
			timeout 300 apt-get update -q >>"$OUT/apt.log" 2>&1
			(cd "$cache" && timeout 300 apt-get download -q libreswan) >>"$OUT/apt.log" 2>&1 ||
				{ tail -n 3 "$OUT/apt.log"; echo "apt-get could not download libreswan"; return 1; }
		fi
		deb=$(find "$cache" -maxdepth 1 -name 'libreswan_*.deb' | sort -V | tail -n 1)
		[ -n "$deb" ] || { echo "apt-get download left no libreswan_*.deb in $cache"; return 1; }
	fi
	# shellcheck disable=SC2046 # a list of package names
	missing=$(missing_packages $(libreswan_deps "$deb"))
	if [ -n "$missing" ]; then
		[ "$INSTALL" = yes ] || { echo "libreswan needs$missing (KERNEL_LAB_INSTALL=$INSTALL)"; return 1; }
		echo "kernel-lab: installing libreswan's dependencies:$missing"
		# shellcheck disable=SC2086
		DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -q --no-install-recommends $missing \
			>>"$OUT/apt.log" 2>&1 || { tail -n 3 "$OUT/apt.log"; echo "apt-get could not install$missing"; return 1; }
	fi
	cp "$deb" "$OUT/share/libreswan.deb"
}

# ---- the initramfs --------------------------------------------------------------

# resolve VERSION NAME...: module paths (relative to /lib/modules/VERSION),
# dependencies first, each once; "?" kept on optional ones.  Fails naming a
# required module that the kernel does not have.
resolve_modules() {
	local ver=$1
	shift
	awk -v want="$*" '
		BEGIN { n = split(want, w, " ") }
		{
			p = $1; sub(/:$/, "", p)
			b = p; sub(/.*\//, "", b); sub(/\.ko.*$/, "", b); gsub(/-/, "_", b)
			path[b] = p; deps[b] = ""
			for (i = 2; i <= NF; i++) deps[b] = deps[b] " " $i
		}
		END {
			for (i = 1; i <= n; i++) {
				m = w[i]; opt = ""
				if (substr(m, 1, 1) == "?") { opt = "?"; m = substr(m, 2) }
				gsub(/-/, "_", m)
				if (!(m in path)) {
					if (opt == "") { print "no module " m > "/dev/stderr"; bad = 1 }
					continue
				}
				c = split(deps[m], d, " ")
				for (j = c; j >= 1; j--)
					if (!(d[j] in seen)) { seen[d[j]] = 1; print opt d[j] }
				if (!(path[m] in seen)) { seen[path[m]] = 1; print opt path[m] }
			}
			exit bad
		}' "/lib/modules/$ver/modules.dep"
}

build_initramfs() {
	local ver=$1 root=$OUT/initramfs m busybox
	busybox=$(command -v busybox) || { echo "no busybox"; return 1; }
	if ! file -L "$busybox" 2>/dev/null | grep -q 'statically linked' &&
		ldd "$busybox" >/dev/null 2>&1; then
		echo "$busybox is not statically linked (install busybox-static)"
		return 1
	fi
	mkdir -p "$root"/{bin,sbin,dev,proc,sys,lib/modules}
	cp "$busybox" "$root/bin/busybox"
	install -m 0755 "$HERE/init.sh" "$root/init"
	printf '#!/bin/busybox sh\nexec /bin/busybox chroot /newroot /sbin/modprobe "$@"\n' >"$root/sbin/modprobe"
	chmod 0755 "$root/sbin/modprobe"
	# shellcheck disable=SC2086
	resolve_modules "$ver" $MODULES >"$root/modules.list" || return 1
	while read -r m; do
		m=${m#\?}
		mkdir -p "$root/lib/modules/$(dirname "$m")"
		cp "/lib/modules/$ver/$m" "$root/lib/modules/$m"
	done <"$root/modules.list"
	if command -v cpio >/dev/null; then
		(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$OUT/initramfs.gz"
	else
		(cd "$root" && find . | "$busybox" cpio -o -H newc | gzip -1) >"$OUT/initramfs.gz"
	fi
}

# ---- qemu --------------------------------------------------------------------------

# boot SECONDS ACCEL: the VM with the job in $OUT; console to stdout and
# $OUT/console.log.  Returns qemu's status (124: timed out).
boot() {
	local secs=$1 accel=$2 cpu
	if [ "$accel" = kvm ]; then
		# Some nested hypervisors refuse IA32_ARCH_CAPABILITIES.
		cpu=host,-arch-capabilities
	else
		cpu=max
	fi
	timeout -k 10 "$secs" "$QEMU" -nodefaults -no-reboot -nographic -monitor none \
		-machine pc -accel "$accel" -cpu "$cpu" -smp "$SMP" -m "$MEM" \
		-kernel "$KERNEL" -initrd "$OUT/initramfs.gz" \
		-append "console=ttyS0 panic=-1 loglevel=4 net.ifnames=0 rdinit=/init" \
		-serial stdio \
		-virtfs "local,path=/,mount_tag=grgwroot,security_model=none,readonly=on,multidevs=remap" \
		-virtfs "local,path=$OUT/share,mount_tag=grgwout,security_model=none" \
		-device virtio-rng-pci </dev/null 2>&1 |
		sed -u -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/\x1bc//g' -e 's/\r$//' |
		tee -a "$OUT/console.log"
	return "${PIPESTATUS[0]}"
}

# watch_stall: stop the VM once its kernel reports a CPU stuck for 100 s
# or more (a guest in that state never finishes; waiting for the time
# limit would only hide why).
watch_stall() {
	while sleep 5; do
		if grep -Eq 'soft lockup - CPU#[0-9]+ stuck for [0-9]{3,}s' "$OUT/console.log" 2>/dev/null; then
			touch "$OUT/stalled"
			pkill -f -- "-initrd $OUT/initramfs.gz" || true
			return 0
		fi
	done
}

# A short boot that only says hello: does KVM really work here?  (Nested
# hypervisors may offer /dev/kvm and then hang or refuse the CPU model.)
kvm_works() {
	[ -w /dev/kvm ] || return 1
	echo probe >"$OUT/share/mode"
	boot 20 kvm >"$OUT/kvm-probe.log" 2>&1
	[ "$(cat "$OUT/share/rc" 2>/dev/null)" = 0 ]
}

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
	if [ "${KERNEL_LAB_KEEP:-0}" = 1 ]; then
		echo "kernel-lab: results kept in $OUT"
	else
		rm -rf "$OUT"
	fi
}

# ---- main ----------------------------------------------------------------------------

OUT=$(mktemp -d /var/tmp/grgw-kernel-lab.XXXXXX)
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$OUT/share"

reason=$(install_packages) || skip "$reason"
[ -n "$reason" ] && echo "$reason"
command -v "$QEMU" >/dev/null || skip "$QEMU not found (package qemu-system-x86)"
read -r KERNEL KVER < <(find_kernel) ||
	skip "no kernel image with xfrm_interface and 9p modules in /boot and /lib/modules (package linux-image-amd64)"
build_initramfs "$KVER" >"$OUT/initramfs.log" 2>&1 || {
	cat "$OUT/initramfs.log"
	skip "cannot build the initramfs for $KVER"
}

echo "$TOP" >"$OUT/share/top"
if { [ "$MODE" = check ] || [ "$MODE" = bench ]; } && wants_libreswan "$@"; then
	fetch_libreswan || echo "kernel-lab: without libreswan, interop-libreswan will be skipped"
fi
if [ "$ACCEL" = auto ]; then
	if kvm_works; then ACCEL=kvm; else ACCEL=tcg; fi
	rm -f "$OUT/share/rc"
fi
echo "$MODE" >"$OUT/share/mode"
echo "$ACCEL" >"$OUT/share/accel"
if [ $# -gt 0 ]; then printf '%s\n' "$@"; fi >"$OUT/share/args"
echo "kernel-lab: booting $KERNEL ($KVER) with qemu ($ACCEL, $SMP CPUs, $MEM MiB), mode $MODE, limit ${VM_TIMEOUT}s"

# stall_report: what the stalled CPUs were doing, from the console: the
# lockup lines and the first call trace (the console above may be cut).
stall_report() {
	echo "kernel-lab: the guest kernel stalled (a CPU stuck for 100 s or more); the VM was stopped"
	grep -E 'soft lockup|self-detected stall|starved for|RIP: 0010' "$OUT/console.log" | head -n 10 | sed 's/^/  /'
	awk '/Call Trace:/ { on = 1; n = 0 } on && n++ < 24 { print "  " $0 } /<\/TASK>/ && on { exit }' \
		"$OUT/console.log"
}

# run_vm: boot the job once, stopping a stalled guest; sets qrc and secs.
run_vm() {
	local t0 watcher
	rm -f "$OUT/stalled"
	t0=$(date +%s)
	watch_stall &
	watcher=$!
	boot "$VM_TIMEOUT" "$ACCEL"
	qrc=$?
	kill "$watcher" 2>/dev/null
	wait "$watcher" 2>/dev/null
	secs=$(( $(date +%s) - t0 ))
	echo
	echo "kernel-lab: VM ran ${secs}s (qemu exit $qrc)"
	if [ "$qrc" -eq 124 ]; then
		echo "kernel-lab: the VM did not finish within ${VM_TIMEOUT}s"
	fi
}

# A guest whose kernel stalls under the emulated CPUs (no KVM) is booted
# once more from the start, and the stall is reported either way: the
# run that counts is a whole one.
run_vm
if [ -e "$OUT/stalled" ]; then
	stall_report
	if [ "$ACCEL" = tcg ]; then
		echo "kernel-lab: running the whole VM job once more (emulated CPUs)"
		mv "$OUT/console.log" "$OUT/console-stalled.log"
		rm -rf "$OUT/share/rc" "$OUT/share/summary" "$OUT/share/skipped" "$OUT/share/logs"
		run_vm
		[ ! -e "$OUT/stalled" ] || stall_report
	fi
fi
rc=$(cat "$OUT/share/rc" 2>/dev/null || true)
if [ -z "$rc" ]; then
	echo "kernel-lab: the guest reported no result"
	echo "0 passed, 1 failed"
	exit 1
fi
if [ -f "$OUT/share/summary" ]; then
	if [ -s "$OUT/share/skipped" ]; then cat "$OUT/share/skipped"; fi
	cat "$OUT/share/summary"
fi
[ "$rc" -eq 0 ] || exit 1
exit 0
