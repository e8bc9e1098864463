#!/bin/bash
#
# Provisions one VM of the two-site lab (see Vagrantfile).  Runs as root on
# the VM, any number of times: every step rewrites its files and converges.
#
# usage: provision.sh router|gateway|node NAME
#
# Environment (set by the Vagrantfile):
#   LAB_IFS   "name=mac ..."  the lab interfaces to name, by MAC address
#   LAB_MODE  plain | nat     nat: the router does 1:1 NAT (lab.sh up --nat)
#   LAB_SRC   the checkout on the VM (default /vagrant)
#   LAB_DEB   a grgw .deb to install (built on the host); without it, the
#             gateways build the package from the checkout
#   LAB_OFFLINE  1: the box has every package inside and there is no
#             network (the local box of `make vagrant-box`): a missing
#             package is an error, not a download
#
# Names, prefixes and addresses come from tests/lab/plan.env, the gateways'
# configurations from tests/lab/site-a.conf and site-b.conf, rendered by the
# namespace lab's own render_conf: both labs use the same files.

set -euo pipefail

ROLE=${1:-}
NAME=${2:-}
LAB_IFS=${LAB_IFS:-}
LAB_MODE=${LAB_MODE:-plain}
LAB_SRC=${LAB_SRC:-/vagrant}
LAB_DEB=${LAB_DEB:-}
LAB_OFFLINE=${LAB_OFFLINE:-0}

# plan.env (every address below), render_conf, nat_ruleset
# shellcheck source-path=SCRIPTDIR source=../tests/lab/lib.sh
. "$LAB_SRC/tests/lab/lib.sh"

CONF=/etc/grgw/grgw.conf
IFUPDOWN_FILE=/etc/network/interfaces.d/grgw-lab
export DEBIAN_FRONTEND=noninteractive

say() { printf '==> %s: %s\n' "$NAME" "$*"; }
die() { printf '%s: %s\n' "${0##*/}" "$*" >&2; exit 1; }

# ---- packages -----------------------------------------------------------------

APT_UPDATED=0
apt_install() {
	local p missing=()
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	[ "$LAB_OFFLINE" != 1 ] || die "the box lacks ${missing[*]} and there is no network (LAB_OFFLINE=1)"
	if [ "$APT_UPDATED" -eq 0 ]; then
		apt-get update -q
		APT_UPDATED=1
	fi
	apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# ---- interfaces -----------------------------------------------------------------

iface_with_mac() {
	local dev
	for dev in /sys/class/net/*; do
		if [ "$(cat "$dev/address" 2>/dev/null)" = "$1" ]; then
			basename "$dev"
			return 0
		fi
	done
	return 1
}

# name_interfaces: give each lab interface its plan name now, and at every
# boot through a systemd .link file matching its MAC address.
name_interfaces() {
	local pair name mac cur changed=0
	install -d -m 0755 /etc/systemd/network
	for pair in $LAB_IFS; do
		name=${pair%%=*}
		mac=${pair#*=}
		cat >"/etc/systemd/network/10-grgw-lab-$name.link.new" <<-EOF
		# grgw lab ($NAME): written by vagrant/provision.sh
		[Match]
		MACAddress=$mac

		[Link]
		Name=$name
		EOF
		if ! cmp -s "/etc/systemd/network/10-grgw-lab-$name.link.new" \
		    "/etc/systemd/network/10-grgw-lab-$name.link"; then
			mv "/etc/systemd/network/10-grgw-lab-$name.link.new" \
			    "/etc/systemd/network/10-grgw-lab-$name.link"
			changed=1
		else
			rm -f "/etc/systemd/network/10-grgw-lab-$name.link.new"
		fi
		cur=$(iface_with_mac "$mac") || die "no interface has MAC address $mac (for $name)"
		if [ "$cur" != "$name" ]; then
			ip link set dev "$cur" down
			ip link set dev "$cur" name "$name"
		fi
	done
	# Interfaces may be named in the initramfs already: give it the files.
	if [ "$changed" -eq 1 ] && command -v update-initramfs >/dev/null; then
		update-initramfs -u >/dev/null
	fi
}

# ifupdown stanzas (addresses, routes), applied now and at every boot.
# write_ifupdown: stdin -> $IFUPDOWN_FILE; every interface in it restarted.
write_ifupdown() {
	local ifc
	install -d -m 0755 "${IFUPDOWN_FILE%/*}"
	cat >"$IFUPDOWN_FILE"
	grep -Eqs '^[[:space:]]*source(-directory)?[[:space:]]+/etc/network/interfaces\.d' \
	    /etc/network/interfaces ||
		printf '\nsource /etc/network/interfaces.d/*\n' >>/etc/network/interfaces
	awk '$1 == "auto" { print $2 }' "$IFUPDOWN_FILE" | while read -r ifc; do
		ifdown --force "$ifc" >/dev/null 2>&1 || true
		ip addr flush dev "$ifc"
		ifup "$ifc"
	done
}

# ---- roles ------------------------------------------------------------------------

# site_of NODE: a or b
site_of() {
	case ",$SITE_A_NODES," in *",$1,"*) echo a; return 0 ;; esac
	case ",$SITE_B_NODES," in *",$1,"*) echo b; return 0 ;; esac
	die "$1 is in neither site of plan.env"
}
other_site() { [ "$1" = a ] && echo b || echo a; }

provision_router() {
	apt_install nftables tcpdump iputils-ping
	name_interfaces
	write_ifupdown <<-EOF
	# grgw lab ($NAME): written by vagrant/provision.sh
	auto $ROUTER_IF_A
	iface $ROUTER_IF_A inet static
		address $ROUTER_A/$(prefix_len "$WAN_A_PREFIX")

	auto $ROUTER_IF_B
	iface $ROUTER_IF_B inet static
		address $ROUTER_B/$(prefix_len "$WAN_B_PREFIX")
	EOF
	echo 'net.ipv4.ip_forward = 1' >/etc/sysctl.d/60-grgw-lab-router.conf
	sysctl -q -p /etc/sysctl.d/60-grgw-lab-router.conf

	# Forward between the two WAN sides only, never to the management
	# network: what a gateway sends elsewhere is dropped and counted.
	{
		echo '#!/usr/sbin/nft -f'
		echo "# grgw lab ($NAME): written by vagrant/provision.sh"
		echo 'flush ruleset'
		cat <<-EOF
		table inet grgwlab_router {
			chain forward {
				type filter hook forward priority filter; policy drop;
				iifname { "$ROUTER_IF_A", "$ROUTER_IF_B" } oifname { "$ROUTER_IF_A", "$ROUTER_IF_B" } accept
				counter comment "not between the WAN sides: dropped"
			}
		}
		EOF
		if [ "$LAB_MODE" = nat ]; then nat_ruleset; fi
	} >/etc/nftables.conf
	nft -c -f /etc/nftables.conf
	systemctl enable nftables.service
	systemctl restart nftables.service
	say "router between $WAN_A_PREFIX ($ROUTER_IF_A) and $WAN_B_PREFIX ($ROUTER_IF_B), $LAB_MODE"
}

provision_node() {
	local s S o O host
	s=$(site_of "$NAME")
	S=${s^^}
	o=$(other_site "$s")
	O=${o^^}
	host=${NAME%%-*}
	host=${host^^}_$S
	apt_install iputils-ping tcpdump netcat-openbsd
	name_interfaces
	# The other site through the gateway; everything else as the VM had it.
	write_ifupdown <<-EOF
	# grgw lab ($NAME): written by vagrant/provision.sh
	auto $NODE_IF
	iface $NODE_IF inet static
		address $(plan "${host}4")/$(prefix_len "$(plan "SITE_${S}_PREFIX4")")
		up ip route replace $(plan "SITE_${O}_PREFIX4") via $(plan "GW_${S}_LAN4") dev $NODE_IF

	iface $NODE_IF inet6 static
		address $(plan "${host}6")/$(prefix_len "$(plan "SITE_${S}_PREFIX6")")
		dad-attempts 0
		up ip -6 route replace $(plan "SITE_${O}_PREFIX6") via $(plan "GW_${S}_LAN6") dev $NODE_IF
	EOF
	say "$(plan "${host}4") $(plan "${host}6"); site $o via $(plan "GW_${S}_LAN4") / $(plan "GW_${S}_LAN6")"
}

# grgw_running: the daemon answers on its control socket
grgw_running() { grgw status -c "$CONF" --json 2>/dev/null | grep -q '"daemon":{"running":true'; }

provision_gateway() {
	local s S o O router wan_prefix peer_wan deb i

	s=$(site_of "$NAME")
	S=${s^^}
	o=$(other_site "$s")
	O=${o^^}
	if [ "$s" = a ]; then router=$ROUTER_A wan_prefix=$WAN_A_PREFIX
	else router=$ROUTER_B wan_prefix=$WAN_B_PREFIX; fi
	if [ "$LAB_MODE" = nat ]; then peer_wan=$(plan "GW_${O}_PUBLIC")
	else peer_wan=$(plan "GW_${O}_WAN"); fi

	apt_install tcpdump iputils-ping
	# What building the package needs; the package brings what grgw needs.
	[ -n "$LAB_DEB" ] ||
		apt_install make gcc libc6-dev pkg-config libsodium-dev libnl-3-dev \
		    libnl-route-3-dev libevent-dev libnftables-dev libjansson-dev libseccomp-dev

	if systemctl is-active --quiet grgw.service; then
		systemctl stop grgw.service
	fi
	name_interfaces
	# The other gateway through the router (also under 1:1 NAT); the
	# default route stays on the management network.
	write_ifupdown <<-EOF
	# grgw lab ($NAME): written by vagrant/provision.sh
	auto $GW_WAN_IF
	iface $GW_WAN_IF inet static
		address $(plan "GW_${S}_WAN")/$(prefix_len "$wan_prefix")
		up ip route replace $(plan "WAN_${O}_PREFIX") via $router dev $GW_WAN_IF
		up ip route replace $NAT_PREFIX via $router dev $GW_WAN_IF

	auto $GW_LAN_IF
	iface $GW_LAN_IF inet static
		address $(plan "GW_${S}_LAN4")/$(prefix_len "$(plan "SITE_${S}_PREFIX4")")

	iface $GW_LAN_IF inet6 static
		address $(plan "GW_${S}_LAN6")/$(prefix_len "$(plan "SITE_${S}_PREFIX6")")
		dad-attempts 0
	EOF

	# The project's own install path: a Debian package from this checkout,
	# built here or on the host.
	if [ -n "$LAB_DEB" ]; then
		deb=$LAB_DEB
		[ -s "$deb" ] || die "no package at $deb"
	else
		say "building the grgw package"
		make -s -C "$LAB_SRC" deb >/dev/null
		deb=$LAB_SRC/$(make -s -C "$LAB_SRC" print-deb)
	fi
	# --reinstall: a re-provisioning brings the checkout's new build even
	# when the version did not change.  Offline, dpkg: every dependency is
	# in the box already, and apt has no lists to look at.
	if [ "$LAB_OFFLINE" = 1 ]; then
		dpkg -i --force-confold "$deb"
	elif dpkg-query -W -f='${Status}' grgw 2>/dev/null | grep -q "install ok installed"; then
		apt-get install -y -q --reinstall -o Dpkg::Options::=--force-confold "$deb"
	else
		apt-get install -y -q -o Dpkg::Options::=--force-confold "$deb"
	fi

	# grgw runs its own charon: the host's strongSwan service, which the
	# strongswan-charon package starts, would take UDP 500 and 4500 too.
	systemctl disable --now strongswan-starter.service >/dev/null 2>&1 || true

	install -d -m 0755 /etc/grgw
	[ -s "$LAB_SRC/vagrant/.lab/psk" ] || die "no key at $LAB_SRC/vagrant/.lab/psk (vagrant up makes it)"
	install -m 0600 -o root -g root "$LAB_SRC/vagrant/.lab/psk" /etc/grgw/psk
	render_conf "$LAB_HERE/$(plan "SITE_${S}_NAME").conf" "$CONF.new" /etc/grgw "$LAB_MODE"
	chmod 0644 "$CONF.new"
	mv "$CONF.new" "$CONF"
	grgw check-config -c "$CONF"

	systemctl enable grgw.service
	systemctl restart grgw.service
	for i in $(seq 1 50); do
		grgw_running && break
		[ "$i" -eq 50 ] && { systemctl status --no-pager grgw.service || true; die "grgw did not start"; }
		sleep 0.2
	done

	# With the other gateway already up, wait for the tunnel; the first
	# gateway to come up leaves that to the second.
	if ping -c 1 -W 2 "$peer_wan" >/dev/null 2>&1; then
		say "waiting for the tunnel to $(plan "SITE_${O}_NAME")"
		grgw up -c "$CONF" --timeout 120 || true
	else
		say "$peer_wan does not answer yet: the tunnel comes up once $(plan "SITE_${O}_NAME")'s gateway is provisioned"
	fi
	grgw status -c "$CONF"
}

# ---- main ---------------------------------------------------------------------------

[ "$(id -u)" -eq 0 ] || die "run as root"
[ -n "$NAME" ] || die "usage: provision.sh router|gateway|node NAME"
case $ROLE in
router) provision_router ;;
gateway) provision_gateway ;;
node) provision_node ;;
*) die "usage: provision.sh router|gateway|node NAME" ;;
esac
