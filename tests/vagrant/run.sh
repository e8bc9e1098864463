#!/bin/bash
#
# The Vagrant two-site lab (vagrant/Vagrantfile), booted for real with the
# libvirt provider, and checked over ssh:
#
#   vellum-a -- lan0 [gw-a] wan0 -- wan-a [router] wan-b -- wan0 [gw-b] lan0 -- vellum-b
#   198.18.1.11      192.0.2.10     192.0.2.1   198.51.100.1  198.51.100.10    198.18.2.11
#
#   every VM: eth0 on grgw-lab-mgmt, an isolated libvirt network
#   (198.19.250.0/24): ssh from this host, nothing beyond it
#
# One node per site (LAB_NODES=1), the local box of `make vagrant-box`
# (grgw-lab/bookworm: every package inside, so no VM needs the network), the
# grgw package built here (`make deb`).  Under software emulation (no usable
# KVM) the VMs are slow but the lab is the same.
#
# Usage:  run.sh [check]   build or reuse the box, start libvirt, vagrant up,
#                          the checks, vagrant destroy; nothing left behind
#         run.sh box       build or reuse the box and add it to Vagrant as
#                          grgw-lab/bookworm (as root; under sudo, to the
#                          Vagrant of the user who ran sudo)
#
# Environment:
#   VAGRANT_LAB_CACHE    where built boxes (and the check's own Vagrant home
#                        and storage pool) live (default /var/cache/grgw-vagrant)
#   VAGRANT_LAB_INSTALL  yes (default): apt-get installs what is missing
#   VAGRANT_LAB_ACCEL    auto (default: kvm if a probe boot works), kvm, qemu
#   VAGRANT_LAB_MEMORY   MiB per VM (default 640)
#   VAGRANT_LAB_KEEP     1: leave the lab up at the end (for debugging; then
#                        `run.sh destroy` removes it)
#
# Exit: 0 every check passed, 1 a check failed, 77 skipped (libvirt or qemu
# cannot be installed or started here).  Every check prints "ok" or "FAIL";
# the last line is "N passed, N failed".

set -u

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
CACHE=${VAGRANT_LAB_CACHE:-/var/cache/grgw-vagrant}
INSTALL=${VAGRANT_LAB_INSTALL:-yes}
ACCEL=${VAGRANT_LAB_ACCEL:-auto}
BOX_NAME=grgw-lab/bookworm
SKIP=77

# shellcheck source=tests/pkgs.sh
. "$TOP/tests/pkgs.sh"
# shellcheck source=tests/vagrant/host.sh
. "$HERE/host.sh"
# plan.env: every name and address below
# shellcheck source=tests/lab/plan.env
. "$TOP/tests/lab/plan.env"

IKE_OR_ESP='(udp port 500 or udp port 4500 or ip proto 50)'
ESP_ONLY='(ip proto 50 or (udp port 4500 and udp[8:4] != 0))'
PROBE_PORT=4211
SITE_TRAFFIC="net $SITE_A_PREFIX4 or net $SITE_B_PREFIX4 or net $SITE_A_PREFIX6 or net $SITE_B_PREFIX6"
SINK_PORT=7001

PASSED=0
FAILED=0
pass() { printf 'ok    %s\n' "$*"; PASSED=$((PASSED + 1)); }
fail() { printf 'FAIL  %s\n' "$*"; FAILED=$((FAILED + 1)); }
# check NAME CMD...: the command's output is shown only when it fails
check() {
	local name=$1 out
	shift
	if out=$("$@" 2>&1); then
		pass "$name"
	else
		fail "$name"
		[ -z "$out" ] || printf '%s\n' "$out" | tail -n 15 | sed 's/^/     | /'
	fi
}
say() { printf '==> %s\n' "$*"; }
skip() { echo "skipped: $*"; exit "$SKIP"; }
now() { date +%s; }
max() { if [ "$1" -gt "$2" ]; then echo "$1"; else echo "$2"; fi; }

# ---- the box ---------------------------------------------------------------------

# What the box is built from: a new build when any of it changes.
box_id() {
	cat "$HERE/build-box.sh" "$HERE/box-setup.sh" "$HERE/box.Vagrantfile" |
		sha256sum | cut -c 1-16
}

# box_file: BOX_FILE, the built box, building it when it is not there
# (BOX_SECONDS: how long that took, 0 when it was there)
BOX_FILE=
BOX_SECONDS=0
box_file() {
	local t0
	BOX_FILE=$CACHE/grgw-lab-bookworm-$(box_id).box
	[ -s "$BOX_FILE" ] && return 0
	install -d -m 0755 "$CACHE"
	t0=$(now)
	"$HERE/build-box.sh" "$BOX_FILE.new" || return 1
	mv "$BOX_FILE.new" "$BOX_FILE"
	BOX_SECONDS=$(($(now) - t0))
	echo "box built in ${BOX_SECONDS} s"
	# Older builds are of no use any more.
	find "$CACHE" -maxdepth 1 -name 'grgw-lab-bookworm-*.box' ! -path "$BOX_FILE" -delete
}

# box_add FILE [USER]: the box in Vagrant (USER's, or VAGRANT_HOME) as
# $BOX_NAME, unless this very build is there already.  A previous build's
# image uploaded to a libvirt pool would be taken for this one: removed.
box_add() {
	local f=$1 user=${2:-} home id dir
	local as=()
	if [ -n "$user" ]; then
		as=(runuser -u "$user" -- env HOME="$(getent passwd "$user" | cut -d: -f6)")
		# shellcheck disable=SC2016  # expanded by the user's shell
		home=$("${as[@]}" sh -c 'echo "${VAGRANT_HOME:-$HOME/.vagrant.d}"')
	else
		home=${VAGRANT_HOME:-$HOME/.vagrant.d}
	fi
	id=$(basename "$f" .box)
	dir=$home/boxes/${BOX_NAME//\//-VAGRANTSLASH-}/0/libvirt
	if [ "$(cat "$dir/grgw-box-build" 2>/dev/null)" = "$id" ]; then
		return 0
	fi
	"${as[@]}" vagrant box add --force --name "$BOX_NAME" "$f" || return 1
	# shellcheck disable=SC2016  # the arguments of that shell
	"${as[@]}" sh -c 'echo "$1" >"$2"' sh "$id" "$dir/grgw-box-build"
	remove_box_volumes default
}

# remove_box_volumes POOL: the box's image uploaded to POOL, if any
remove_box_volumes() {
	local vol
	libvirt_answers || return 0
	virsh -q -c qemu:///system vol-list "$1" 2>/dev/null | awk '{ print $1 }' |
		grep "^${BOX_NAME//\//-VAGRANTSLASH-}_vagrant_box_image" |
		while read -r vol; do
			virsh -q -c qemu:///system vol-delete --pool "$1" "$vol" >/dev/null
		done
	return 0
}

cmd_box() {
	local log
	[ "$(id -u)" -eq 0 ] || { echo "run.sh box: run as root (mmdebstrap)" >&2; exit 1; }
	log=$(mktemp)
	if [ "$INSTALL" = yes ] && ! host_install "$log"; then
		rm -f "$log"
		exit 1
	fi
	rm -f "$log"
	box_file || exit 1
	# Under sudo, the box goes to the Vagrant of whoever ran sudo.
	box_add "$BOX_FILE" "${SUDO_USER:-}" || exit 1
	echo "box $BOX_NAME (for ${SUDO_USER:-$(id -un)}): $BOX_FILE"
	echo "use it with: make deb; cd vagrant &&"
	echo "  LAB_BOX=$BOX_NAME LAB_DEB=../$(make -s -C "$TOP" print-deb) vagrant up --provider=libvirt"
}

# ---- the lab -----------------------------------------------------------------------

WORK=
POOL=grgw-lab-check
POOL_DIR=$CACHE/pool
LAB_UP=0
SUMMARY=0

# Everything the lab's VMs, networks and volumes are, by name: the domains
# and networks of the Vagrantfile (grgw-lab-*), our storage pool.
libvirt_leftovers() {
	local v
	for v in $(virsh -q -c qemu:///system list --all --name 2>/dev/null | grep '^grgw-lab-'); do
		echo "domain $v"
	done
	for v in $(virsh -q -c qemu:///system net-list --all --name 2>/dev/null | grep '^grgw-lab-'); do
		echo "network $v"
	done
	if virsh -q -c qemu:///system pool-info "$POOL" >/dev/null 2>&1; then
		echo "pool $POOL"
	fi
}

# Removes whatever vagrant destroy left, by name (domains first).
libvirt_remove_leftovers() {
	local kind name vol
	libvirt_leftovers | while read -r kind name; do
		case $kind in
		domain)
			virsh -q -c qemu:///system destroy "$name" >/dev/null 2>&1
			virsh -q -c qemu:///system undefine "$name" --nvram >/dev/null 2>&1 ||
				virsh -q -c qemu:///system undefine "$name" >/dev/null 2>&1
			;;
		network)
			virsh -q -c qemu:///system net-destroy "$name" >/dev/null 2>&1
			virsh -q -c qemu:///system net-undefine "$name" >/dev/null 2>&1
			;;
		pool)
			for vol in $(virsh -q -c qemu:///system vol-list "$name" 2>/dev/null | awk '{ print $1 }'); do
				virsh -q -c qemu:///system vol-delete --pool "$name" "$vol" >/dev/null 2>&1
			done
			virsh -q -c qemu:///system pool-destroy "$name" >/dev/null 2>&1
			virsh -q -c qemu:///system pool-undefine "$name" >/dev/null 2>&1
			;;
		esac
	done
}

vagrant_lab() { (cd "$TOP/vagrant" && timeout "${VAGRANT_CMD_TIMEOUT:-3600}" vagrant "$@"); }

cleanup() {
	local rc=$? left
	trap - EXIT INT TERM
	if [ "${VAGRANT_LAB_KEEP:-0}" = 1 ] && [ "$LAB_UP" = 1 ]; then
		# `run.sh destroy` stops the daemons this run started.
		printf '%s\n' "${HOST_STARTED[@]+"${HOST_STARTED[@]}"}" >"$CACHE/daemons-started"
		echo "the lab stays up (VAGRANT_LAB_KEEP=1): $0 destroy removes it; work files in $WORK"
		exit "$rc"
	fi
	if [ "$LAB_UP" = 1 ]; then
		say "vagrant destroy -f"
		VAGRANT_CMD_TIMEOUT=600 vagrant_lab destroy -f >"$WORK/destroy.log" 2>&1 ||
			tail -n 5 "$WORK/destroy.log"
	fi
	if libvirt_answers; then
		libvirt_remove_leftovers
		left=$(libvirt_leftovers)
		if [ -n "$left" ]; then
			echo "FAIL  libvirt objects left behind: $left"
			rc=1
		fi
	fi
	rm -rf --one-file-system "$POOL_DIR" "$CACHE/dot"
	rm -f "$TOP/vagrant/.lab/grgw.deb"
	[ "${CREATED_PSK:-0}" = 1 ] && rm -f "$TOP/vagrant/.lab/psk"
	rmdir "$TOP/vagrant/.lab" 2>/dev/null
	host_stop_daemons
	[ -n "$WORK" ] && rm -rf --one-file-system "$WORK"
	if [ "$SUMMARY" = 1 ]; then
		[ "$rc" -eq 0 ] || [ "$FAILED" -gt 0 ] || FAILED=1
		echo "$PASSED passed, $FAILED failed"
		[ "$FAILED" -eq 0 ] || rc=1
	fi
	exit "$rc"
}

# The environment of every vagrant command of the check.
lab_env() {
	export VAGRANT_HOME=$CACHE/vagrant.d
	export VAGRANT_DOTFILE_PATH=$CACHE/dot
	export VAGRANT_CHECKPOINT_DISABLE=1
	export VAGRANT_DEFAULT_PROVIDER=libvirt
	export LAB_BOX=$BOX_NAME
	export LAB_NODES=1
	export LAB_MEMORY=${VAGRANT_LAB_MEMORY:-640}
	export LAB_CPUS=1
	export LAB_LIBVIRT_POOL=$POOL
	export LAB_CONSOLE_DIR=$WORK/console
}

# The end of each VM's console, when something went wrong
show_consoles() {
	local f
	for f in "$WORK"/console/*.log; do
		[ -s "$f" ] || continue
		echo "---- console of $(basename "$f" .log) (last lines)"
		tail -n 15 "$f" | sed 's/^/     | /'
	done
}

# ssh_to VM CMD [ARG...]: each argument arrives as it is (quoted for the
# remote shell)
ssh_to() {
	local vm=$1
	shift
	timeout 120 ssh -F "$WORK/ssh_config" -o LogLevel=ERROR "$vm" -- "$(printf '%q ' "$@")"
}
sudo_on() { local vm=$1; shift; ssh_to "$vm" sudo "$@"; }

# wait_until SECONDS CMD...
wait_until() {
	local end=$(($(now) + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		[ "$(now)" -lt "$end" ] || return 1
		sleep 2
	done
}

tunnel_up() { sudo_on "$1" grgw status | grep -Eq '^ *tunnel: +up'; }

# tunnel_since GW: when the gateway's tunnel came up (seconds since the
# epoch, by the VM's clock, which is the host's)
tunnel_since() {
	local t
	t=$(sudo_on "$1" grgw status | sed -n 's/^ *tunnel: *up since \([0-9-]* [0-9:]*\).*/\1/p' | head -n 1)
	[ -n "$t" ] && date -u -d "$t" +%s
}
both_tunnels_up() { tunnel_up gw-a && tunnel_up gw-b; }

ping_ok() { sudo_on "$1" ping -n -c 3 -i 0.2 -W 2 "$2"; }

# ping_unreachable_from NODE ADDR GATEWAY: no reply, an ICMP error from
# GATEWAY at once
ping_unreachable_from() {
	local out
	out=$(sudo_on "$1" ping -n -c 1 -W 2 "$2" 2>&1) && { echo "$out"; echo "ping got a reply"; return 1; }
	echo "$out"
	grep -Eiq "^From $3 .*(unreachable|prohibited|filtered)" <<<"$out"
}

# connect_result NODE ADDR: "connected", "refused", "unreachable" or
# "timeout", and the milliseconds it took
connect_result() {
	ssh_to "$1" python3 - "$2" "$SINK_PORT" <"$TOP/tests/lab/connect-result.py"
}

connect_refused() {
	local r ms
	read -r r ms < <(connect_result "$1" "$2")
	echo "connect $1 -> $2 port $SINK_PORT: ${r:-no answer} after ${ms:-?} ms"
	[ "${r:-}" = refused ] || [ "${r:-}" = unreachable ]
}

# connect_fails NODE ADDR: anything but a connection
connect_fails() {
	local r ms
	read -r r ms < <(connect_result "$1" "$2")
	echo "connect $1 -> $2 port $SINK_PORT: ${r:-no answer} after ${ms:-?} ms"
	[ "${r:-}" != connected ]
}

# tcp_peer_is NODE ADDR SOURCE: a line sent to the sink at ADDR, which
# answers with the source address it saw
tcp_peer_is() {
	local reply
	reply=$(printf 'hello from %s\n' "$1" | ssh_to "$1" nc -N -w 10 "$2" "$SINK_PORT") ||
		{ echo "no answer from $2"; return 1; }
	echo "sink answered: $reply"
	[ "$(awk '{ print $2 }' <<<"$reply")" = "$3" ]
}

start_sink() {
	sudo_on "$1" sh -c "pkill -F /run/grgw-lab-sink.pid 2>/dev/null; \
		nohup python3 /vagrant/tests/lab/tcp-sink.py --port $SINK_PORT \
		--log /run/grgw-lab-sink.log --lifetime 3000 >/dev/null 2>&1 & echo \$! >/run/grgw-lab-sink.pid"
}

# capture_start TAG: tcpdump on the router's wan-a and wan-b (IPv4 and IPv6)
capture_start() {
	local ifc
	for ifc in wan-a wan-b; do
		sudo_on router sh -c "nohup timeout 600 tcpdump -U -nn -i $ifc -w /tmp/$1-$ifc.pcap \
			ip or ip6 >/tmp/$1-$ifc.log 2>&1 & echo \$! >/tmp/$1-$ifc.pid" || return 1
	done
	for ifc in wan-a wan-b; do
		wait_until 30 sudo_on router grep -q listening "/tmp/$1-$ifc.log" || return 1
	done
}

capture_stop() {
	local ifc
	for ifc in wan-a wan-b; do
		sudo_on router sh -c "kill -INT \$(cat /tmp/$1-$ifc.pid); sleep 1" || true
	done
}

# pcap_count TAG IFC FILTER: packets of the capture matching FILTER
pcap_count() {
	sudo_on router tcpdump -nn -r "/tmp/$1-$2.pcap" "$3" 2>/dev/null | wc -l
}

# What may cross the WAN, between the two gateways' addresses as seen on
# that side: IKE, ESP, grgw's authenticated underlay probes, and ICMP
# unreachables about those UDP packets (a gateway whose grgw is stopped
# answers the other's IKE and probes with port unreachable).
WAN_ALLOWED="($IKE_OR_ESP or udp port $PROBE_PORT or (icmp[icmptype] == icmp-unreach and icmp[17] == 17))"
wan_pair() {
	local mode=$1 ifc=$2
	if [ "$mode" = nat ] && [ "$ifc" = wan-a ]; then echo "$GW_A_WAN $GW_B_PUBLIC"
	elif [ "$mode" = nat ]; then echo "$GW_A_PUBLIC $GW_B_WAN"
	else echo "$GW_A_WAN $GW_B_WAN"; fi
}

check_wan_capture() {
	local tag=$1 mode=$2 ifc pair n other esp
	for ifc in wan-a wan-b; do
		read -r -a pair <<<"$(wan_pair "$mode" "$ifc")"
		n=$(pcap_count "$tag" "$ifc" "$SITE_TRAFFIC")
		check "[$tag] no clear-text site traffic on the router's $ifc ($n packets)" test "$n" -eq 0
		other=$(pcap_count "$tag" "$ifc" "not (host ${pair[0]} and host ${pair[1]} and $WAN_ALLOWED)")
		if [ "$other" -eq 0 ]; then
			pass "[$tag] $ifc carries only IKE/ESP, grgw's probes and ICMP about them between ${pair[0]} and ${pair[1]}"
		else
			fail "[$tag] $ifc carries only IKE/ESP, grgw's probes and ICMP about them between ${pair[0]} and ${pair[1]}: $other other packets"
			sudo_on router tcpdump -nn -r "/tmp/$tag-$ifc.pcap" \
				"not (host ${pair[0]} and host ${pair[1]} and $WAN_ALLOWED)" 2>&1 |
				head -n 5 | sed 's/^/     | /'
		fi
		if [ "$3" = esp ]; then
			esp=$(pcap_count "$tag" "$ifc" "$ESP_ONLY")
			check "[$tag] ESP carried the traffic on $ifc ($esp packets)" test "$esp" -gt 0
		fi
	done
}

check_traffic() {
	local tag=$1
	check "[$tag] ping vellum-a -> vellum-b IPv4" ping_ok vellum-a "$VELLUM_B4"
	check "[$tag] ping vellum-a -> vellum-b IPv6" ping_ok vellum-a "$VELLUM_B6"
	check "[$tag] TCP vellum-a -> vellum-b IPv4, the server sees $VELLUM_A4" \
		tcp_peer_is vellum-a "$VELLUM_B4" "$VELLUM_A4"
	check "[$tag] TCP vellum-a -> vellum-b IPv6, the server sees $VELLUM_A6" \
		tcp_peer_is vellum-a "$VELLUM_B6" "$VELLUM_A6"
	check "[$tag] ping vellum-b -> vellum-a IPv4" ping_ok vellum-b "$VELLUM_A4"
}

check_gateways() {
	local tag=$1 gw
	for gw in gw-a gw-b; do
		check "[$tag] $gw: grgw.service active" sudo_on "$gw" systemctl is-active grgw.service
		check "[$tag] $gw: grgw status says the tunnel is up" tunnel_up "$gw"
	done
}

# Memory of the lab's qemu processes (resident), in MiB
vm_memory() {
	local pid total=0 kb
	for pid in $(pgrep -f 'qemu-system.*guest=grgw-lab-'); do
		kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null)
		total=$((total + ${kb:-0}))
	done
	echo $((total / 1024))
}

lab_checks() {
	local mode=$1 tag=$1
	check_gateways "$tag"
	capture_start "$tag" || fail "[$tag] capture on the router"
	check_traffic "$tag"
	capture_stop "$tag"
	check_wan_capture "$tag" "$mode" esp
}

fail_closed_checks() {
	local mode=$1 tag="$1, gw-a stopped" t0
	capture_start stop || fail "[$tag] capture on the router"
	check "[$tag] systemctl stop grgw on gw-a" sudo_on gw-a systemctl stop grgw.service
	check "[$tag] TCP vellum-a -> vellum-b IPv4 refused at once (not a timeout)" \
		connect_refused vellum-a "$VELLUM_B4"
	check "[$tag] TCP vellum-a -> vellum-b IPv6 refused at once (not a timeout)" \
		connect_refused vellum-a "$VELLUM_B6"
	check "[$tag] ping vellum-a -> vellum-b IPv4 answered by gw-a with unreachable" \
		ping_unreachable_from vellum-a "$VELLUM_B4" "$GW_A_LAN4"
	check "[$tag] ping vellum-a -> vellum-b IPv6 answered by gw-a with unreachable" \
		ping_unreachable_from vellum-a "$VELLUM_B6" "$GW_A_LAN6"
	check "[$tag] TCP vellum-b -> vellum-a IPv4 does not get through" \
		connect_fails vellum-b "$VELLUM_A4"
	capture_stop stop
	check_wan_capture stop "$mode" none
	t0=$(now)
	check "[$mode, gw-a started] systemctl start grgw on gw-a" sudo_on gw-a systemctl start grgw.service
	check "[$mode, gw-a started] both tunnels up again" wait_until 180 both_tunnels_up
	echo "      (tunnels up $(($(now) - t0)) s after the start)"
	check_traffic "$mode, gw-a started"
}

cmd_destroy() {
	WORK=$(mktemp -d)
	lab_env
	LAB_UP=1
	host_start_daemons || true
	if [ -s "$CACHE/daemons-started" ]; then
		mapfile -t -O "${#HOST_STARTED[@]}" HOST_STARTED <"$CACHE/daemons-started"
	fi
	rm -f "$CACHE/daemons-started"
	trap cleanup EXIT INT TERM
	exit 0
}

cmd_check() {
	local log kernel accel t_all t0 t_a t_b mem pid rc_a rc_b
	[ "$(id -u)" -eq 0 ] || skip "the Vagrant lab needs root (apt-get, libvirt's system daemon)"
	t_all=$(now)
	WORK=$(mktemp -d)
	trap cleanup EXIT INT TERM
	SUMMARY=1
	log=$WORK/apt.log
	if [ "$INSTALL" = yes ]; then
		host_install "$log" >"$WORK/install.out" || skip "$(tail -n 1 "$WORK/install.out")"
	fi
	[ -z "$(host_missing_packages)" ] || skip "missing packages:$(host_missing_packages)"
	host_start_daemons >"$WORK/daemons.out" || skip "libvirt: $(tail -n 1 "$WORK/daemons.out")"
	lab_env
	install -d -m 0755 "$CACHE" "$VAGRANT_HOME" "$LAB_CONSOLE_DIR"
	chmod 0755 "$WORK"

	box_file || { fail "building the box"; return 1; }
	box_add "$BOX_FILE" >"$WORK/box-add.log" 2>&1 || { tail -n 5 "$WORK/box-add.log"; fail "vagrant box add"; return 1; }
	if [ "$BOX_SECONDS" -gt 0 ]; then
		pass "box $BOX_NAME built ($BOX_SECONDS s) and added"
	else
		pass "box $BOX_NAME ready (built before: $BOX_FILE)"
	fi

	kernel=$VAGRANT_HOME/boxes/${BOX_NAME//\//-VAGRANTSLASH-}/0/libvirt/vmlinuz
	case $ACCEL in
	auto) accel=$(host_accel "$kernel") ;;
	*) accel=$ACCEL ;;
	esac
	export LAB_LIBVIRT_DRIVER=$accel
	[ "$accel" = kvm ] || say "no usable KVM: the VMs run under qemu's software emulation"

	# A storage pool of our own, removed at the end with all it holds.
	libvirt_remove_leftovers
	install -d -m 0755 "$POOL_DIR"
	if ! virsh -q -c qemu:///system pool-define-as "$POOL" dir --target "$POOL_DIR" >/dev/null ||
	    ! virsh -q -c qemu:///system pool-start "$POOL" >/dev/null; then
		fail "libvirt storage pool $POOL"
		return 1
	fi

	# The package, built here: the VMs do not compile.
	make -s -C "$TOP" deb >"$WORK/deb.log" 2>&1 || { tail -n 5 "$WORK/deb.log"; fail "make deb"; return 1; }
	LAB_DEB=$TOP/$(make -s -C "$TOP" print-deb)
	export LAB_DEB
	[ -s "$TOP/vagrant/.lab/psk" ] || CREATED_PSK=1
	rm -rf "$VAGRANT_DOTFILE_PATH"

	say "vagrant up --provider=libvirt ($accel, ${LAB_MEMORY} MiB and 1 CPU per VM, one VM after the other)"
	LAB_UP=1
	t0=$(now)
	if ! vagrant_lab up --provider=libvirt --no-parallel >"$WORK/up.log" 2>&1; then
		tail -n 30 "$WORK/up.log"
		show_consoles
		fail "vagrant up"
		return 1
	fi
	pass "vagrant up ($(($(now) - t0)) s)"
	vagrant_lab ssh-config >"$WORK/ssh_config" 2>/dev/null || { fail "vagrant ssh-config"; return 1; }
	check "both tunnels up" wait_until 240 both_tunnels_up
	t_a=$(tunnel_since gw-a) && t_b=$(tunnel_since gw-b) &&
		echo "      (from vagrant up to both tunnels up: $(($(max "$t_a" "$t_b") - t0)) s)"
	mem=$(vm_memory)
	echo "      (resident memory of the VMs: $mem MiB for $(pgrep -fc 'qemu-system.*guest=grgw-lab-') VMs)"
	check "vagrant ssh works (the way users reach the VMs)" vagrant_lab ssh gw-a -c 'sudo grgw status'
	check "gw-a has no default route (the management network is isolated)" \
		bash -c "[ -z \"\$(ssh -F '$WORK/ssh_config' -o LogLevel=ERROR gw-a ip -4 route show default)\" ]"

	start_sink vellum-a
	start_sink vellum-b
	lab_checks plain
	fail_closed_checks plain

	# The gateways at the same time: each waits for its tunnel, which
	# needs the other's new configuration.
	say "LAB_NAT=1 vagrant provision router, then gw-a and gw-b: the router does 1:1 NAT"
	t0=$(now)
	if LAB_NAT=1 vagrant_lab provision router >"$WORK/nat-router.log" 2>&1; then
		pass "LAB_NAT=1 vagrant provision router"
	else
		tail -n 20 "$WORK/nat-router.log"
		fail "LAB_NAT=1 vagrant provision router"
	fi
	LAB_NAT=1 vagrant_lab provision gw-a >"$WORK/nat-gw-a.log" 2>&1 &
	pid=$!
	LAB_NAT=1 vagrant_lab provision gw-b >"$WORK/nat-gw-b.log" 2>&1 && rc_b=0 || rc_b=$?
	wait "$pid" && rc_a=0 || rc_a=$?
	if [ "$rc_a" -eq 0 ] && [ "$rc_b" -eq 0 ]; then
		pass "LAB_NAT=1 vagrant provision gw-a and gw-b ($(($(now) - t0)) s with the router)"
	else
		tail -n 20 "$WORK/nat-gw-a.log" "$WORK/nat-gw-b.log"
		fail "LAB_NAT=1 vagrant provision gw-a and gw-b"
	fi
	check "[nat] both tunnels up" wait_until 240 both_tunnels_up
	check "[nat] gw-a's peer is site B's public address $GW_B_PUBLIC" \
		sudo_on gw-a grep -Eq "^address *= *$GW_B_PUBLIC\$" /etc/grgw/grgw.conf
	lab_checks nat
	capture_start nat-own || true
	check_traffic "nat, addresses"
	capture_stop nat-own
	check "[nat] gw-a's own address never reached site B's side" \
		test "$(pcap_count nat-own wan-b "host $GW_A_WAN")" -eq 0
	check "[nat] gw-b's own address never reached site A's side" \
		test "$(pcap_count nat-own wan-a "host $GW_B_WAN")" -eq 0

	echo "      (whole check before teardown: $(($(now) - t_all)) s; box build ${BOX_SECONDS} s, 0: reused)"
	[ "$FAILED" -eq 0 ]
}

case ${1:-check} in
check) cmd_check ;;
box) cmd_box ;;
destroy) cmd_destroy ;;
*) sed -n '/^# Usage:/,/^# Environment:/p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
