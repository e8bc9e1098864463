#!/bin/bash
#
# Builds a Debian 12 box for Vagrant's libvirt provider from this host's
# apt sources, with everything the two-site lab needs already installed, so
# that `vagrant up` provisions it without any network.
#
#   mmdebstrap (minbase + kernel, systemd, ssh, sudo, ifupdown, strongSwan
#   and grgw's libraries, the lab's tools)  ->  a directory
#   mkfs.ext4 -d (no loop device, no partition table)  ->  a raw disk
#   qemu-img convert  ->  box.img (qcow2)
#   + metadata.json, the kernel and initrd, and a Vagrantfile that boots
#     them directly (no bootloader in the image)  ->  a .box (tar)
#
# usage: build-box.sh OUT.box
#
# Environment:
#   BOX_KERNEL_ARGS  extra kernel arguments for the box's Vagrantfile
#
# The image carries Vagrant's well-known insecure key for the user vagrant
# (passwordless sudo), as every public box does; Vagrant replaces it with a
# key of its own at the first `vagrant up`.  The ssh host keys are made at
# each VM's first boot, so no two VMs share them.

set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)

OUT=${1:?usage: build-box.sh OUT.box}
DISK_GIB=8

# The system, then grgw's run-time dependencies (DEB_DEPENDS in the
# Makefile), then what vagrant/provision.sh installs on each role.
BOX_PKGS="linux-image-amd64 systemd systemd-sysv udev dbus kmod
openssh-server sudo ifupdown isc-dhcp-client iproute2 netbase rsync procps
less ca-certificates
adduser libevent-2.1-7 libjansson4 libnftables1 libnl-3-200 libnl-route-3-200
libsodium23 libseccomp2 strongswan-charon strongswan-swanctl
libstrongswan-standard-plugins libstrongswan-extra-plugins libcharon-extra-plugins
nftables tcpdump iputils-ping netcat-openbsd python3"

# The sources this host's apt uses (deb822 or one-line files).
host_sources() {
	local f
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.sources \
	    /etc/apt/sources.list.d/*.list; do
		[ -s "$f" ] && grep -Eq '^[[:space:]]*(deb|Types:)' "$f" && echo "$f"
	done
	return 0
}

[ "$(id -u)" -eq 0 ] || { echo "build-box.sh: run as root (mmdebstrap, file ownership)" >&2; exit 1; }
for tool in mmdebstrap mkfs.ext4 qemu-img; do
	command -v "$tool" >/dev/null || { echo "build-box.sh: no $tool" >&2; exit 1; }
done
key=$({ find /usr/share/rubygems-integration/all/gems /usr/share/vagrant /opt/vagrant \
    -path '*/keys/vagrant.pub' 2>/dev/null || true; } | head -n 1)
[ -n "$key" ] || { echo "build-box.sh: Vagrant's insecure public key not found (keys/vagrant.pub)" >&2; exit 1; }
mapfile -t sources < <(host_sources)
[ ${#sources[@]} -gt 0 ] || { echo "build-box.sh: no apt sources on this host" >&2; exit 1; }

work=$(mktemp -d "${OUT%/*}/.box-build.XXXXXX")
trap 'rm -rf --one-file-system "$work"' EXIT
root=$work/root

echo "box: mmdebstrap bookworm ($(echo "$BOX_PKGS" | wc -w) packages and their dependencies)"
# shellcheck disable=SC2016  # the hooks' $1 is mmdebstrap's, expanded there
mmdebstrap --variant=minbase --quiet \
	--aptopt='Acquire::Check-Valid-Until "false"' \
	--aptopt='APT::Install-Recommends "false"' \
	--include="$(echo "$BOX_PKGS" | tr -s ' \n' ',,' | sed 's/,$//')" \
	--customize-hook='echo vagrant-lab >"$1/etc/hostname"' \
	--customize-hook="cp '$key' \"\$1/tmp/vagrant.pub\"" \
	--customize-hook="cp '$HERE/box-setup.sh' \"\$1/tmp/box-setup.sh\"" \
	--customize-hook='chroot "$1" /bin/sh /tmp/box-setup.sh' \
	--customize-hook='rm -f "$1/tmp/vagrant.pub" "$1/tmp/box-setup.sh"' \
	bookworm "$root" "${sources[@]}"

kernel=$(find "$root/boot" -maxdepth 1 -name 'vmlinuz-*' | sort -V | tail -n 1)
initrd=$root/boot/initrd.img-${kernel##*/vmlinuz-}
if [ ! -r "$kernel" ] || [ ! -r "$initrd" ]; then
	echo "build-box.sh: no kernel or initrd in the image" >&2
	exit 1
fi
mkdir -p "$work/box"
cp "$kernel" "$work/box/vmlinuz"
cp "$initrd" "$work/box/initrd.img"
chmod 0644 "$work/box/vmlinuz" "$work/box/initrd.img"

echo "box: ext4 file system of $DISK_GIB GiB, qcow2"
mkfs.ext4 -q -L vagrant-root -d "$root" "$work/disk.raw" "${DISK_GIB}G" >/dev/null
qemu-img convert -f raw -O qcow2 "$work/disk.raw" "$work/box/box.img"
rm -f "$work/disk.raw"

printf '{"provider":"libvirt","format":"qcow2","virtual_size":%d}\n' "$DISK_GIB" \
    >"$work/box/metadata.json"
box_id=$(cat "$work/box/vmlinuz" "$work/box/initrd.img" | sha256sum | cut -c 1-12)
sed -e "s|@KERNEL_ARGS@|${BOX_KERNEL_ARGS:-}|" -e "s|@BOX_ID@|$box_id|" \
    "$HERE/box.Vagrantfile" >"$work/box/Vagrantfile"

tar -C "$work/box" -cf "$work/out.box" metadata.json Vagrantfile box.img vmlinuz initrd.img
mv "$work/out.box" "$OUT"
echo "box: $OUT ($(du -h "$OUT" | cut -f1))"
