#!/bin/sh
# Runs inside the box image (chroot) while tests/vagrant/build-box.sh makes
# it: the Vagrant user, the root file system, the management interface,
# ssh host keys at first boot, and nothing that needs the network later.
set -eu

# Vagrant's conventions: user vagrant, its insecure key, sudo without a
# password.
id vagrant >/dev/null 2>&1 || useradd -m -s /bin/bash -U vagrant
install -d -m 0700 -o vagrant -g vagrant /home/vagrant/.ssh
install -m 0600 -o vagrant -g vagrant /tmp/vagrant.pub /home/vagrant/.ssh/authorized_keys
echo 'vagrant ALL=(ALL) NOPASSWD: ALL' >/etc/sudoers.d/vagrant
chmod 0440 /etc/sudoers.d/vagrant

# The whole disk is the root file system (no partition table).
echo 'LABEL=vagrant-root / ext4 defaults,errors=remount-ro 0 1' >/etc/fstab

# The management interface (Vagrant's ssh): DHCP.  net.ifnames=0 on the
# kernel command line keeps the name eth0.
cat >/etc/network/interfaces <<'EOT'
source /etc/network/interfaces.d/*

auto lo
iface lo inet loopback

allow-hotplug eth0
iface eth0 inet dhcp
EOT

# ssh host keys of its own for every VM, made at its first boot.
rm -f /etc/ssh/ssh_host_*
mkdir -p /etc/systemd/system/ssh.service.d
cat >/etc/systemd/system/ssh.service.d/host-keys.conf <<'EOT'
[Service]
ExecStartPre=
ExecStartPre=/usr/bin/ssh-keygen -A
ExecStartPre=/usr/sbin/sshd -t
EOT

# The kernel and initrd boot from the box's own copies (direct kernel
# boot): an initramfs rebuilt in the VM would never be used, and takes
# minutes under emulation.
sed -i 's/^update_initramfs=.*/update_initramfs=no/' /etc/initramfs-tools/update-initramfs.conf

# Nothing that reaches for the network or burns emulated CPU on its own.
for unit in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer \
    e2scrub_reap.service fstrim.timer strongswan-starter.service; do
	systemctl disable "$unit" >/dev/null 2>&1 || true
done

: >/etc/machine-id
rm -f /var/lib/dbus/machine-id
apt-get clean
rm -rf /var/lib/apt/lists/*
