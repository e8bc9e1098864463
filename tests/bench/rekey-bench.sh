#!/bin/bash
# Rekeying benchmark in the namespace lab: packets lost from a UDP stream
# of 1,000 packets/s with sequence numbers (vellum-a -> vellum-b) while
# the CHILD_SA is rekeyed every 10 s and the IKE_SA every 30 s, for
# REKEY_SECONDS (300); the rekeys counted in both charons' logs.  Prints
# figures; never fails on them.  LAB_ID=N runs it in a lab of its own.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/lab/lib.sh
. "$HERE/../lab/lib.sh"
# Before rekey-tests.sh, whose own default (75 s) would win.
REKEY_SECONDS=${REKEY_SECONDS:-300}
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

cleanup() {
	set +e
	grgw_at a down --purge >/dev/null 2>&1
	grgw_at b down --purge >/dev/null 2>&1
	"$LAB" down >/dev/null 2>&1
	rm -rf "$WORK"
}
trap cleanup EXIT

"$LAB" up >/dev/null
new_psk "$WORK/psk"
rekey_conf "$LAB_HERE/site-a.conf" "$CONF_A" "$CHILD_REKEY" "$IKE_REKEY"
rekey_conf "$LAB_HERE/site-b.conf" "$CONF_B" "$CHILD_REKEY" "$IKE_REKEY"
up_both rekey-bench
both_up() { status_is a "$TUNNEL_UP_JQ" && status_is b "$TUNNEL_UP_JQ"; }
if [ "$RC_A" -ne 0 ] || [ "$RC_B" -ne 0 ] || ! wait_until 60 both_up; then
	echo "rekey-bench: the tunnel did not come up" >&2
	exit 1
fi
off_a=$(log_size "$(charon_log a)")
off_b=$(log_size "$(charon_log b)")
tx_a=$(tun_packets a tx)
rx_b=$(tun_packets b rx)
bridge_a=$(on gw-a ip -s -j link show dev vellum | jq -r '.[0].stats64.rx.packets')
lan_a=$(on gw-a ip -s -j link show dev lan0 | jq -r '.[0].stats64.rx.packets')
rekey_stream "$REKEY_SECONDS" "$REKEY_RATE"
read -r ca ia <<<"$(rekey_counts a "$off_a")"
read -r cb ib <<<"$(rekey_counts b "$off_b")"
echo "rekey-bench: $REKEY_SECONDS s at $REKEY_RATE packets/s, child_rekey_time $CHILD_REKEY, ike_rekey_time $IKE_REKEY"
echo "  stream:        $STREAM_LINE"
echo "  packets lost:  $STREAM_LOST of $STREAM_SENT"
[ -z "$STREAM_GAPS" ] || echo "  lost (UTC):    $STREAM_GAPS"
echo "  where counted: gw-a's bridge port from vellum-a $(( $(on gw-a ip -s -j link show dev vellum | jq -r '.[0].stats64.rx.packets') - bridge_a )), gw-a's bridge $(( $(on gw-a ip -s -j link show dev lan0 | jq -r '.[0].stats64.rx.packets') - lan_a )), gw-a's data plane took $(( $(tun_packets a tx) - tx_a )), gw-b's delivered $(( $(tun_packets b rx) - rx_b ))"
echo "  CHILD_SAs established (rekeys): gw-a $ca, gw-b $cb"
echo "  IKE_SA rekeys: gw-a $ia, gw-b $ib"
