#!/bin/busybox sh
# shellcheck shell=sh
#
# /init of the kernel lab's initramfs (PID 1 in the guest; busybox only).
#
#   host /  --9p "grgwroot", read-only-->  /lower ──┐
#   tmpfs   ------------------------------> /upper ──┴─ overlay --> /newroot
#   host results dir --9p "grgwout"-------> /newroot/run/kernel-lab
#
# Loads the modules listed in /modules.list (9p first, then ESP, XFRM and
# AES-GCM), builds a writable copy-on-write view of the host's root file
# system (writes land in guest memory, never on the host), gives it fresh
# /run, /tmp and /var/tmp, and runs tests/kernel-lab/guest.sh inside it.
# The exit code goes to the results share; then the guest powers off.

export PATH=/bin:/sbin

/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "kernel-lab init: $(uname -r), up $(cut -d' ' -f1 /proc/uptime) s"

halt_now() {
	sync
	poweroff -f
	sleep 10
}

# "path" loads or fails the boot; "?path" may fail (e.g. an accelerated
# cipher whose CPU feature the virtual CPU lacks).
while read -r m; do
	[ -n "$m" ] || continue
	case $m in
	\?*) insmod "/lib/modules/${m#?}" 2>/dev/null || echo "kernel-lab init: optional ${m#?} not loaded" ;;
	*) insmod "/lib/modules/$m" || { echo "kernel-lab init: insmod $m failed"; halt_now; } ;;
	esac
done </modules.list

mkdir -p /job /lower /upper /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 grgwout /job ||
	{ echo "kernel-lab init: cannot mount the results share"; halt_now; }
top=$(cat /job/top)

mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose grgwroot /lower ||
	{ echo "kernel-lab init: cannot mount the host's root over 9p"; halt_now; }
mount -t tmpfs -o mode=0755 tmpfs /upper
mkdir -p /upper/up /upper/work
if ! mount -t overlay -o lowerdir=/lower,upperdir=/upper/up,workdir=/upper/work overlay /newroot; then
	echo "kernel-lab init: overlay over 9p refused; using the read-only root"
	mount --move /lower /newroot
fi

mount -t proc proc /newroot/proc
mount -t sysfs sysfs /newroot/sys
mount -t devtmpfs devtmpfs /newroot/dev
# What udev would add: bash's process substitution needs /dev/fd.
ln -sf /proc/self/fd /newroot/dev/fd
ln -sf /proc/self/fd/0 /newroot/dev/stdin
ln -sf /proc/self/fd/1 /newroot/dev/stdout
ln -sf /proc/self/fd/2 /newroot/dev/stderr
mkdir -p /newroot/dev/pts /newroot/dev/shm
mount -t devpts devpts /newroot/dev/pts
mount -t tmpfs tmpfs /newroot/dev/shm
# A fresh /run: the host's network namespace names and pid files must not
# show through.  /tmp and /var/tmp too, unless the tree under test is there.
mount -t tmpfs -o mode=0755 tmpfs /newroot/run
for d in /tmp /var/tmp; do
	case $top/ in
	"$d"/*) ;;
	*) mount -t tmpfs -o mode=1777 tmpfs "/newroot$d" ;;
	esac
done
mkdir -p /newroot/run/kernel-lab
mount --move /job /newroot/run/kernel-lab

# The kernel runs /sbin/modprobe in this initramfs; hand over to the real one.
echo /sbin/modprobe >/proc/sys/kernel/modprobe
# The guest's hostname, so that logs say where they come from.
hostname kernel-lab

if [ -z "$top" ] || [ ! -f "/newroot$top/tests/kernel-lab/guest.sh" ]; then
	echo "kernel-lab init: no tests/kernel-lab/guest.sh under '$top'"
	echo 125 >/newroot/run/kernel-lab/rc
	halt_now
fi
chroot /newroot /usr/bin/env -i \
	PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	HOME=/root LANG=C.UTF-8 TERM=dumb \
	/bin/bash "$top/tests/kernel-lab/guest.sh" /run/kernel-lab </dev/console >/dev/console 2>&1
rc=$?
echo "$rc" >/newroot/run/kernel-lab/rc
echo "kernel-lab init: guest.sh exited with $rc after $(cut -d' ' -f1 /proc/uptime) s"
umount /newroot/run/kernel-lab 2>/dev/null
halt_now
