#!/bin/bash
# Bring-up benchmark in the namespace lab: how long from starting both
# gateways to the first packet across, grgw against plain strongSwan.
# Prints figures and their ratio; never fails on a time.
#
#   grgw    `grgw up` on both gateways at once -> the first ICMP echo from
#           vellum-a answered by vellum-b
#   plain   the same with a charon started by hand in each gateway
#           namespace (a private /run, the libipsec data plane as grgw
#           uses it here) and a hand-written swanctl.conf (start_action =
#           start) loaded by swanctl: what an operator would run without grgw
#
# The two alternate, RUNS times each (20), so that the machine's load weighs
# on both alike.  The first packet is timed by first-packet.py (an echo
# every 5 ms), started and sending before the clock starts.  LAB_ID=N runs
# it in a lab of its own.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lab/lib.sh
. "$HERE/../lab/lib.sh"
LAB=$HERE/../lab/lab.sh
RUNS=${RUNS:-20}
CHARON=${CHARON:-/usr/lib/ipsec/charon}
WORK=$(mktemp -d)
CONF_A=$WORK/site-a.conf
CONF_B=$WORK/site-b.conf

cleanup() {
	set +e
	plain_stop
	grgw_at a down --purge >/dev/null 2>&1
	grgw_at b down --purge >/dev/null 2>&1
	"$LAB" down >/dev/null 2>&1
	rm -rf "$WORK"
}
trap cleanup EXIT

for tool in swanctl jq; do
	command -v "$tool" >/dev/null || { echo "bench: $tool missing (run tests/deps.sh)" >&2; exit 1; }
done
[ -x "$CHARON" ] || { echo "bench: no charon at $CHARON" >&2; exit 1; }
"$LAB" up >/dev/null
new_psk "$WORK/psk"
render_conf "$LAB_HERE/site-a.conf" "$CONF_A" "$WORK" plain
render_conf "$LAB_HERE/site-b.conf" "$CONF_B" "$WORK" plain

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
max() { sort -n | tail -1; }

# ---- plain strongSwan ---------------------------------------------------------

# plain_conf a|b: strongswan.conf and swanctl.conf for that gateway
plain_conf() {
	local s=$1 S=${1^^} P dir=$WORK/plain-$1
	P=$([ "$s" = a ] && echo B || echo A)
	mkdir -p "$dir"
	cat >"$dir/strongswan.conf" <<-EOF
	charon {
		load = random nonce kdf hmac sha1 sha2 aes gcm openssl curve25519 pem pkcs1 pkcs8 x509 pubkey constraints revocation kernel-libipsec kernel-netlink socket-default vici
		install_routes = yes
		install_virtual_ip = no
		routing_table = 220
		routing_table_prio = 220
		plugins {
			vici {
				socket = unix://$dir/charon.vici
			}
		}
		filelog {
			plain {
				path = $dir/charon.log
				default = 1
			}
		}
		syslog {
		}
	}
	EOF
	cat >"$dir/swanctl.conf" <<-EOF
	connections {
		plain {
			version = 2
			local_addrs = $(plan "GW_${S}_WAN")
			remote_addrs = $(plan "GW_${P}_WAN")
			proposals = aes256gcm16-prfsha384-x25519
			local {
				auth = psk
				id = plain-$s
			}
			remote {
				auth = psk
				id = plain-${P,,}
			}
			children {
				plain {
					local_ts = $(plan "SITE_${S}_PREFIX4"),$(plan "SITE_${S}_PREFIX6")
					remote_ts = $(plan "SITE_${P}_PREFIX4"),$(plan "SITE_${P}_PREFIX6")
					esp_proposals = aes256gcm16-x25519
					start_action = start
				}
			}
		}
	}
	secrets {
		ike-plain {
			id-a = plain-a
			id-b = plain-b
			secret = 0s$(cat "$WORK/psk")
		}
	}
	EOF
	chmod 0600 "$dir/swanctl.conf"
}

# plain_start a|b: charon in that gateway (private /run: its pid file is at
# a fixed path), then swanctl loads the connection as soon as VICI answers
plain_start() {
	local dir=$WORK/plain-$1 i
	rm -f "$dir/charon.vici"
	on "gw-$1" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
	# Not through on(): $! must be charon itself (ip, unshare and sh exec).
	# shellcheck disable=SC2016  # expanded by that sh
	ip netns exec "${NS_PREFIX}gw-$1" unshare -m sh -c 'mount --make-rprivate / &&
		mount -t tmpfs tmpfs /run && STRONGSWAN_CONF=$1 exec "$2"' \
		sh "$dir/strongswan.conf" "$CHARON" >>"$dir/charon.out" 2>&1 </dev/null &
	echo $! >"$dir/pid"
	for i in $(seq 1 2000); do
		[ -S "$dir/charon.vici" ] && break
		sleep 0.005
	done
	[ "$i" -lt 2000 ] || { echo "plain charon at $1: no VICI socket" >&2; return 1; }
	swanctl --load-all --file "$dir/swanctl.conf" --uri "unix://$dir/charon.vici" >"$dir/load.log" 2>&1
}

plain_stop() {
	local s pid
	for s in a b; do
		[ -f "$WORK/plain-$s/pid" ] || continue
		pid=$(cat "$WORK/plain-$s/pid")
		# SIGTERM lets charon remove ipsec0 and its routes
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.01; done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		rm -f "$WORK/plain-$s/pid"
	done
	return 0
}

# ---- one run of each ----------------------------------------------------------

# first_packet_after T0 PROBE-OUT: ms from T0 to the prober's first answer
first_packet_after() {
	local t
	t=$(cat "$2" 2>/dev/null)
	[ -n "$t" ] && echo $(( t - $1 ))
}

# probe_start: the prober in vellum-a, sending; sets PROBE (its pid)
probe_start() {
	rm -f "$WORK/probe" "$WORK/probe-ready"
	vellum_a "$PYTHON" "$HERE/first-packet.py" "$VELLUM_B4" --timeout 60 \
		--ready "$WORK/probe-ready" >"$WORK/probe" 2>/dev/null &
	PROBE=$!
	for _ in $(seq 1 2000); do
		[ -e "$WORK/probe-ready" ] && return 0
		sleep 0.005
	done
	echo "bench: the prober did not start" >&2
	return 1
}

run_grgw() {
	local t0 probe pa pb
	probe_start
	probe=$PROBE
	t0=$(now_ms)
	grgw_at a up --timeout 60 >"$WORK/up-a" 2>&1 &
	pa=$!
	grgw_at b up --timeout 60 >"$WORK/up-b" 2>&1 &
	pb=$!
	wait "$probe" || true
	wait "$pa" "$pb" || true
	GRGW_RET=$(( $(now_ms) - t0 ))
	GRGW_FIRST=$(first_packet_after "$t0" "$WORK/probe") || GRGW_FIRST=""
	if [ -n "${BENCH_KEEP:-}" ]; then
		cat "$WORK/up-a" "$WORK/up-b" >&2
		for s in a b; do tail -n 30 "$LAB_RUN_DIR/site-$s/grgw.log" >&2 || true; done
	fi
	grgw_at a down --purge >/dev/null 2>&1 || true
	grgw_at b down --purge >/dev/null 2>&1 || true
}

run_plain() {
	local t0 probe pa pb
	probe_start
	probe=$PROBE
	t0=$(now_ms)
	plain_start a &
	pa=$!
	plain_start b &
	pb=$!
	wait "$pa" "$pb" || true
	wait "$probe" || true
	PLAIN_FIRST=$(first_packet_after "$t0" "$WORK/probe") || PLAIN_FIRST=""
	plain_stop
}

plain_conf a
plain_conf b
echo "== start-up to the first packet across (vellum-a -> vellum-b), $RUNS runs each, alternating"
: >"$WORK/grgw"; : >"$WORK/plain"; : >"$WORK/ret"
for run in $(seq 1 "$RUNS"); do
	run_grgw
	run_plain
	echo "run $run: grgw up on both -> first packet ${GRGW_FIRST:-none} ms (both returned after $GRGW_RET ms); plain swanctl ${PLAIN_FIRST:-none} ms"
	[ -n "$GRGW_FIRST" ] && echo "$GRGW_FIRST" >>"$WORK/grgw"
	[ -n "$PLAIN_FIRST" ] && echo "$PLAIN_FIRST" >>"$WORK/plain"
	echo "$GRGW_RET" >>"$WORK/ret"
done
gm=$(median <"$WORK/grgw"); gx=$(max <"$WORK/grgw")
pm=$(median <"$WORK/plain"); px=$(max <"$WORK/plain")
echo "grgw up -> first packet:      median $gm ms, max $gx ms ($(wc -l <"$WORK/grgw") of $RUNS runs got through)"
echo "plain swanctl -> first packet: median $pm ms, max $px ms ($(wc -l <"$WORK/plain") of $RUNS runs got through)"
echo "grgw up returned on both:     median $(median <"$WORK/ret") ms, max $(max <"$WORK/ret") ms"
awk -v g="$gm" -v p="$pm" -v G="$gx" -v P="$px" 'BEGIN {
	if (p > 0) printf "ratio grgw/plain: median %.2f, max %.2f\n", g / p, G / P }'
