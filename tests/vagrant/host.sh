# Sourced by tests/vagrant/build-box.sh and run.sh: what the host needs to
# run the Vagrant lab with the libvirt provider, and libvirt's daemons.
#
# These machines may not run systemd as PID 1, so libvirt's daemons are
# started here when nothing answers on libvirt's socket, and stopped again
# by host_stop_daemons (only those started here).

# shellcheck shell=bash

HOST_PKGS="vagrant vagrant-libvirt libvirt-daemon-system libvirt-daemon-driver-qemu
libvirt-clients qemu-system-x86 qemu-utils mmdebstrap dnsmasq-base iptables
rsync e2fsprogs openssh-client"

# pid files of the daemons started here, for host_stop_daemons
HOST_STARTED=()

# shellcheck disable=SC2086 # a list of package names
host_missing_packages() { missing_packages $HOST_PKGS; }

# host_install LOG: installs what is missing; false, with the reason on
# stdout, when it cannot.
host_install() {
	local log=$1 missing
	missing=$(host_missing_packages)
	[ -z "$missing" ] && return 0
	command -v apt-get >/dev/null || { echo "no apt-get to install$missing"; return 1; }
	echo "vagrant-lab: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	timeout 300 apt-get update -q >"$log" 2>&1
	# shellcheck disable=SC2086
	if ! timeout 1200 apt-get install -y -q --no-install-recommends $missing >>"$log" 2>&1; then
		tail -n 5 "$log"
		echo "apt-get could not install$missing"
		return 1
	fi
}

libvirt_answers() { timeout 20 virsh -q -c qemu:///system version >/dev/null 2>&1; }

# host_start_daemons: libvirt answering on its system socket, starting
# virtlogd and libvirtd when nothing answers yet; false, with the reason on
# stdout, when they do not come up.
host_start_daemons() {
	local d i
	libvirt_answers && return 0
	install -d -m 0755 /run/libvirt
	for d in virtlogd libvirtd; do
		if [ -s "/run/$d.pid" ] && kill -0 "$(cat "/run/$d.pid")" 2>/dev/null; then
			continue
		fi
		command -v "$d" >/dev/null || { echo "no $d"; return 1; }
		"$d" -d || { echo "$d -d failed"; return 1; }
		HOST_STARTED+=("/run/$d.pid")
	done
	for i in $(seq 1 60); do
		libvirt_answers && return 0
		sleep 0.5
	done
	echo "libvirtd does not answer on qemu:///system"
	return 1
}

# Stops what host_start_daemons started (libvirtd first), by pid.  The
# daemons are not our children: wait until the pid is gone or a zombie.
host_stop_daemons() {
	local i pidfile pid state
	for ((i = ${#HOST_STARTED[@]} - 1; i >= 0; i--)); do
		pidfile=${HOST_STARTED[$i]}
		pid=$(cat "$pidfile" 2>/dev/null) || continue
		[ -n "$pid" ] || continue
		kill "$pid" 2>/dev/null || continue
		for _ in $(seq 1 50); do
			state=$(awk '/^State:/ { print $2 }' "/proc/$pid/status" 2>/dev/null)
			[ -z "$state" ] || [ "$state" = Z ] && break
			sleep 0.2
		done
		state=$(awk '/^State:/ { print $2 }' "/proc/$pid/status" 2>/dev/null)
		if [ -n "$state" ] && [ "$state" != Z ]; then kill -9 "$pid" 2>/dev/null || true; fi
		rm -f "$pidfile"
	done
	HOST_STARTED=()
}

# host_accel KERNEL: kvm when a VM with KVM prints the kernel's first line
# within 20 s, else qemu (software emulation).  /dev/kvm can be present and
# still not run anything.
host_accel() {
	local kernel=$1
	if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
		echo qemu
		return 0
	fi
	if timeout 20 qemu-system-x86_64 -accel kvm -m 256 -nodefaults -display none \
	    -kernel "$kernel" -append 'console=ttyS0 earlyprintk=ttyS0 panic=-1' \
	    -serial stdio -no-reboot 2>/dev/null </dev/null | grep -q -m 1 'Linux version'; then
		echo kvm
	else
		echo qemu
	fi
}
