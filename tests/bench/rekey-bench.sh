#!/bin/bash
# Rekeying benchmark in the namespace lab: packets lost from a UDP stream
# of 1,000 packets/s with sequence numbers (vellum-a -> vellum-b) while
# the CHILD_SA is rekeyed every 10 s and the IKE_SA every 30 s, for
# REKEY_SECONDS (300); the rekeys counted in both charons' logs; then,
# as the same run's baseline, the same stream without any rekey for
# BASELINE_SECONDS (REKEY_SECONDS; BASELINE=0 skips it).  A long run:
# REKEY_SECONDS=2500 CHILD_REKEY=5s IKE_REKEY=10s BASELINE_SECONDS=300
# (1,000 CHILD_SA rekeys over the lab's two pairs of prefixes, 250
# IKE_SA rekeys).  Prints figures, and where the packets were
# counted along the path; never fails on them.  LAB_ID=N runs it in a lab
# of its own.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/lab/lib.sh
. "$HERE/../lab/lib.sh"
# Before rekey-tests.sh, whose own default (75 s) would win.
REKEY_SECONDS=${REKEY_SECONDS:-300}
BASELINE_SECONDS=${BASELINE_SECONDS:-$REKEY_SECONDS}
# shellcheck source=tests/lab/rekey-tests.sh
. "$HERE/../lab/rekey-tests.sh"
LAB=$HERE/../lab/lab.sh
UP_TIMEOUT=${UP_TIMEOUT:-45}
CHILD_REKEY=${CHILD_REKEY:-10s}
IKE_REKEY=${IKE_REKEY:-30s}
WORK=$(mktemp -d)
LABCONF=$WORK
LAB_MODE=plain
CONF_A=$WORK/site-a.conf
CONF_B=$WORK/site-b.conf

trap lab_teardown EXIT

"$LAB" up >/dev/null
new_psk "$WORK/psk"
both_up() { status_is a "$TUNNEL_UP_JQ" && status_is b "$TUNNEL_UP_JQ"; }
rx_of() { on gw-a ip -s -j link show dev "$1" | jq -r '.[0].stats64.rx.packets'; }

# phase NAME CHILD IKE SECONDS: both gateways up with those rekey times,
# the stream for SECONDS, the figures
phase() {
	local name=$1 child=$2 ike=$3 secs=$4 off_a off_b tx_a rx_b port_a lan_a ca cb ia ib
	grgw_at a down --purge >/dev/null 2>&1 || true
	grgw_at b down --purge >/dev/null 2>&1 || true
	rekey_conf "$LAB_HERE/site-a.conf" "$CONF_A" "$child" "$ike"
	rekey_conf "$LAB_HERE/site-b.conf" "$CONF_B" "$child" "$ike"
	up_both "rekey-bench-$name"
	if [ "$RC_A" -ne 0 ] || [ "$RC_B" -ne 0 ] || ! wait_until 60 both_up; then
		echo "rekey-bench: the tunnel did not come up ($name)" >&2
		exit 1
	fi
	off_a=$(log_size "$(charon_log a)")
	off_b=$(log_size "$(charon_log b)")
	tx_a=$(tun_packets a tx)
	rx_b=$(tun_packets b rx)
	port_a=$(rx_of vellum)
	lan_a=$(rx_of lan0)
	rekey_stream "$secs" "$REKEY_RATE"
	read -r ca ia <<<"$(rekey_counts a "$off_a")"
	read -r cb ib <<<"$(rekey_counts b "$off_b")"
	echo "rekey-bench ($name): $secs s at $REKEY_RATE packets/s, child_rekey_time $child, ike_rekey_time $ike"
	echo "  stream:        $STREAM_LINE"
	echo "  packets lost:  $STREAM_LOST of $STREAM_SENT"
	[ -z "$STREAM_GAPS" ] || echo "  lost (UTC):    $STREAM_GAPS"
	echo "  where counted: gw-a's bridge port from vellum-a $(( $(rx_of vellum) - port_a )), gw-a's bridge $(( $(rx_of lan0) - lan_a )), gw-a's data plane took $(( $(tun_packets a tx) - tx_a )), gw-b's delivered $(( $(tun_packets b rx) - rx_b ))"
	echo "  CHILD_SAs established (rekeys, every pair of prefixes): gw-a $ca, gw-b $cb"
	echo "  IKE_SA rekeys: gw-a $ia, gw-b $ib"
	LOST[$name]=$STREAM_LOST
}

declare -A LOST
phase rekeying "$CHILD_REKEY" "$IKE_REKEY" "$REKEY_SECONDS"
# The same run's baseline: the same stream with no rekey at all, which
# says what the machine itself loses.
[ "${BASELINE:-1}" = 0 ] || {
	phase baseline 1h 4h "$BASELINE_SECONDS"
	echo "rekey-bench: lost with rekeying ${LOST[rekeying]} in $REKEY_SECONDS s, without ${LOST[baseline]} in $BASELINE_SECONDS s (same run, same stream)"
}
