#!/bin/sh
# Install every Debian package grgw needs to build, test and run.
# Idempotent: packages already present are not fetched again.
set -eu

PKGS="make gcc clang libc6-dev pkg-config
libsodium-dev libnl-3-dev libnl-route-3-dev libevent-dev libcmocka-dev libnftables-dev
libjansson-dev libseccomp-dev libssl-dev
strongswan-charon strongswan-swanctl libcharon-extra-plugins
libstrongswan-standard-plugins libstrongswan-extra-plugins strongswan-pki
vagrant man-db systemd
iproute2 iputils-ping tcpdump nftables jq python3 netcat-openbsd procps
util-linux kmod iperf3 ethtool shellcheck etcd-server etcd-client
memcached libmemcached-tools python3-pymemcache
prometheus gnuplot-nox"

if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: run as root (it installs packages with apt-get)" >&2
	exit 1
fi

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
	    grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
if [ -z "$missing" ]; then
	echo "deps: all packages present"
	exit 0
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# Debian's prometheus starts its service on installation (and recommends
# prometheus-node-exporter, which --no-install-recommends leaves out).  The
# tests start a Prometheus of their own, so no service may start here: a
# policy-rc.d that refuses every start, for the length of the installation,
# unless the host already has one.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod 0755 "$policy"
	made_policy=1
fi
rc=0
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing || rc=$?
[ "$made_policy" -eq 0 ] || rm -f "$policy"
# Where systemd runs, leave the unit disabled and stopped as well.
if [ -d /run/systemd/system ] && systemctl list-unit-files prometheus.service >/dev/null 2>&1; then
	systemctl disable --now prometheus.service >/dev/null 2>&1 || true
fi
exit "$rc"
