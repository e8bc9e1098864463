# shellcheck shell=bash
#
# Key rotation without a flap (sourced by run-tests.sh, after reload-tests.sh,
# whose UDP stream it uses: 1,000 numbered packets/s vellum-a -> vellum-b).
#
#   vellum-a --- gw-a ==== router ==== gw-b --- vellum-b
#                 ^ grgw reload          ^ grgw reload
#
#   reload-rotate  the three steps of a pre-shared key rotation, each a
#                  reload at A then at B under its own stream: (1) both get
#                  psk_next_file = new; (2) both switch (psk_file = new,
#                  psk_next_file = old), each proving the new key with a
#                  second IKE_SA while the tunnel's SAs stay the same ones;
#                  (3) both drop the old key.  Not one packet lost, the
#                  link state never leaves "up" (its change counter and the
#                  paths' transitions stay the same), no probe refused;
#                  afterwards a gateway with the old key alone is refused
#                  ("authentication failed", its probes too).

# A step's stream runs until both reloads and their proofs are done and
# 2 s more; this is its longest (several times longer under emulation,
# LAB_WAIT_SCALE).  The baseline runs ROTATE_BASELINE_S.
ROTATE_STREAM_S=${ROTATE_STREAM_S:-$((25 * ${LAB_WAIT_SCALE:-1}))}
ROTATE_BASELINE_S=${ROTATE_BASELINE_S:-10}

# rotate_conf SRC DEST PSK [NEXT]: SRC with psk_file = PSK (and
# psk_next_file = NEXT)
rotate_conf() {
	awk -v psk="$3" -v nxt="${4:-}" '
		/^psk_next_file[[:space:]]*=/ { next }
		/^psk_file[[:space:]]*=/ {
			print "psk_file = " psk
			if (nxt != "") print "psk_next_file = " nxt
			next
		}
		{ print }' "$1" >"$2"
}

# ike_sa_ids a|b: the unique ids of the ESTABLISHED IKE_SAs charon holds
ike_sa_ids() {
	local dir
	dir=$LAB_RUN_DIR/$(conf_value "$(site_conf "$1")" site name)
	timeout 10 swanctl --list-sas --uri "unix://$dir/charon.vici" 2>/dev/null |
		sed -n 's/^[^ ]*: #\([0-9]*\), ESTABLISHED,.*/\1/p' | sort -n | tr '\n' ' '
}

# grgw_log a|b: that gateway's daemon log
grgw_log() { echo "$LAB_RUN_DIR/$(conf_value "$(site_conf "$1")" site name)/grgw.log"; }

# verified a|b OFFSET: that gateway's log says, after OFFSET, that the
# new credentials were proved (or why not, which ends the wait)
verified() {
	local line
	line=$(log_since "$(grgw_log "$1")" "$2" | grep -E "accepts this gateway's|proving the .* failed" | head -1)
	echo "${line:-nothing logged yet}"
	[ -n "$line" ]
}

# tunnel_sas_kept a|b IKE_IDS SPIS: that end holds exactly the IKE_SA of
# IKE_IDS (the proof's own is gone) and the CHILD_SAs of SPIS
tunnel_sas_kept() {
	local now
	now=$(ike_sa_ids "$1")
	echo "IKE_SAs at gw-$1: $now (before: $2); CHILD_SAs: $(child_spis "$1") (before: $3)"
	[ "$now" = "$2" ] && [ "$(child_spis "$1")" = "$3" ]
}

# link_line a|b: "state changes tunnel-transitions underlay-transitions
# probes-refused-for-auth reason" from the status (tab-separated)
link_line() {
	status_json "$1" | jq -r '.peers[0].link // {} | [.state // "none",
		.changes // -1, .paths.tunnel.transitions // -1,
		.paths.underlay.transitions // -1,
		((.paths.tunnel.rejected.auth // 0) + (.paths.underlay.rejected.auth // 0)),
		.reason // "none"] | @tsv'
}

# rotate_watch: sample both gateways' link state; a sample other than "up"
# goes to ROTATE_NOT_UP
rotate_watch() {
	local s line
	for s in a b; do
		line=$(link_line "$s")
		[ "$(cut -f1 <<<"$line")" = up ] ||
			ROTATE_NOT_UP="$ROTATE_NOT_UP gw-$s:$(cut -f1 <<<"$line")($(cut -f6 <<<"$line"))"
	done
}

# rotate_wait_verify a|b OFFSET: poll (sampling the link) until verified
rotate_wait_verify() {
	local deadline=$(( $(now_ms) + 60000 ))
	while ! verified "$1" "$2" >"$WORK/verify.out" 2>&1; do
		rotate_watch
		[ "$(now_ms)" -lt "$deadline" ] || return 1
		sleep 0.3
	done
	grep -q "accepts this gateway's" "$WORK/verify.out"
}

# rotate_baseline: the same stream with no reload at all, for the record:
# what this machine loses anyway, and how often the tunnel path flaps
# (with libipsec, ESP is done by charon's threads in user space, which a
# loaded machine starves); sets ROTATE_BASELINE
rotate_baseline() {
	local before after
	before=$(link_line a)
	udp_stream_start "$ROTATE_BASELINE_S"
	udp_stream_wait
	after=$(link_line a)
	ROTATE_BASELINE="lost $(udp_stream_lost) of $(awk '/^sent/ { print $2 }' "$WORK/stream-send.out"), gw-a link changes $(cut -f2 <<<"$before") -> $(cut -f2 <<<"$after"), tunnel path transitions $(cut -f3 <<<"$before") -> $(cut -f3 <<<"$after")"
	note "baseline, the same stream without a reload: $ROTATE_BASELINE; holes: $(awk '$1 == "gaps" { $1 = ""; print }' "$WORK/stream-recv.out")"
}

# rotate_step N WHAT CONF_A CONF_B [PROVE]: under one stream, reload A
# then B; with PROVE (a word: "pre-shared key", "certificate") each end
# proves its new credentials with a second IKE_SA, and the tunnel's SAs
# at both ends stay the same ones
rotate_step() {
	local n=$1 what=$2 conf_a=$3 conf_b=$4 prove=$5 s conf rc t0 ms lost
	local start when='' ids_a ids_b spis_a spis_b off
	wait_until 60 settled_now || true
	ids_a=$(ike_sa_ids a)
	ids_b=$(ike_sa_ids b)
	spis_a=$(child_spis a)
	spis_b=$(child_spis b)
	udp_stream_start "$ROTATE_STREAM_S"
	start=$(now_ms)
	sleep 1
	for s in a b; do
		conf=$conf_a
		[ "$s" = b ] && conf=$conf_b
		off=$(log_size "$(grgw_log "$s")")
		rc=0
		t0=$(now_ms)
		when="$when gw-$s reload at $((t0 - start)) ms;"
		reload_with "$s" "$conf" || rc=$?
		ms=$(( $(now_ms) - t0 ))
		ROTATE_RELOAD_MS="$ROTATE_RELOAD_MS $ms"
		cp "$WORK/reload.out" "$WORK/rotate-$n-$s.out"
		check "step $n ($what) at gw-$s: grgw reload exits 0 in $ms ms" test "$rc" -eq 0
		note "$(tr '\n' ';' <"$WORK/rotate-$n-$s.out" | cut -c1-200)"
		if [ -n "$prove" ]; then
			t0=$(now_ms)
			if rotate_wait_verify "$s" "$off"; then
				ms=$(( $(now_ms) - t0 ))
				when="$when proved at $(( $(now_ms) - start )) ms;"
				ROTATE_PROVE_MS="$ROTATE_PROVE_MS $ms"
				pass "step $n at gw-$s: the new $prove proved with a second IKE_SA in $ms ms"
			else
				fail "step $n at gw-$s: the new $prove proved with a second IKE_SA"
				show_file "$WORK/verify.out"
			fi
		fi
		# Several detection times with the new keys in use.
		for _ in 1 2 3 4 5 6; do rotate_watch; sleep 0.25; done
	done
	check "step $n: the reloads were done while the stream ran" kill -0 "$RELOAD_SEND"
	sleep 2
	udp_stream_stop
	lost=$(udp_stream_lost)
	ROTATE_LOST="$ROTATE_LOST $lost"
	# Packet n left about n ms after the start: where the holes are
	# against when the reloads were made.
	note "step $n:$when holes (packet numbers): $(awk '$1 == "gaps" { $1 = ""; print }' "$WORK/stream-recv.out")"
	check_lost_zero "step $n ($(cat "$WORK/stream-send.out"))" "$lost"
	check_tcp_kept "step $n"
	check "step $n: gw-a's tunnel SAs are the same ones, the proof's IKE_SA gone" \
		wait_until 20 tunnel_sas_kept a "$ids_a" "$spis_a"
	check "step $n: gw-b's tunnel SAs are the same ones, the proof's IKE_SA gone" \
		wait_until 20 tunnel_sas_kept b "$ids_b" "$spis_b"
	# For a look afterwards (grgw down --purge takes the run directories).
	if [ -n "${ROTATE_KEEP_LOGS:-}" ]; then
		for s in a b; do
			cp "$(charon_log "$s")" "$ROTATE_KEEP_LOGS/$TEST-$n-charon-$s.log"
			cp "$(grgw_log "$s")" "$ROTATE_KEEP_LOGS/$TEST-$n-grgw-$s.log"
		done
	fi
}

# rotate_link_checks BEFORE_A AFTER_A BEFORE_B AFTER_B FIELDS WHAT: the
# link state up at every look, and the first FIELDS of link_line (WHAT
# they are) the same at each end before and after
rotate_link_checks() {
	check_native "the link state was up at every look (not up:${ROTATE_NOT_UP:- never})" test -z "$ROTATE_NOT_UP"
	check_native "gw-a: $6" test "$(cut -f1-"$5" <<<"$1")" = "$(cut -f1-"$5" <<<"$2")"
	check_native "gw-b: $6" test "$(cut -f1-"$5" <<<"$3")" = "$(cut -f1-"$5" <<<"$4")"
}

t_reload_rotate() {
	local dir=$WORK/rotate old=$LABCONF/psk new conf_a=$CONF_A conf_b=$CONF_B
	local before_a before_b after_a after_b off_a off_b rc
	need_tunnel || return 0
	mkdir -p "$dir"
	chmod 0700 "$dir"
	new=$dir/psk.new
	new_psk "$new" || { fail "grgw keygen"; return 0; }
	rotate_conf "$conf_a" "$dir/a1.conf" "$old" "$new"
	rotate_conf "$conf_b" "$dir/b1.conf" "$old" "$new"
	rotate_conf "$conf_a" "$dir/a2.conf" "$new" "$old"
	rotate_conf "$conf_b" "$dir/b2.conf" "$new" "$old"
	rotate_conf "$conf_a" "$dir/a3.conf" "$new"
	rotate_conf "$conf_b" "$dir/b3.conf" "$new"
	# A next key that others can read is refused, and nothing changes.
	cp "$new" "$dir/psk.open"
	chmod 0644 "$dir/psk.open"
	rotate_conf "$conf_a" "$dir/open.conf" "$old" "$dir/psk.open"
	rc=0
	reload_with a "$dir/open.conf" || rc=$?
	check "a psk_next_file readable by others is refused (exit $rc)" test "$rc" -eq 1
	check "the refusal names the file and the mode" grep -q "psk.open.*mode 0644" "$WORK/reload.out"
	check_not "the refusal shows no key" grep -qF "$(cat "$new")" "$WORK/reload.out"

	wait_until 20 one_ike_sa_each || true
	rotate_unknown_key "$dir" "$old" "$new"
	# The rotation is measured from a link up at both ends.
	if ! wait_until 30 both_links_up; then
		fail "the link is up at both ends before the rotation"
		diag
	fi
	rotate_baseline
	before_a=$(link_line a)
	before_b=$(link_line b)
	off_a=$(log_size "$(charon_log a)")
	off_b=$(log_size "$(charon_log b)")
	note "link before (state changes transitions refused): gw-a $before_a; gw-b $before_b"
	ROTATE_NOT_UP=
	ROTATE_LOST=
	ROTATE_RELOAD_MS=
	ROTATE_PROVE_MS=

	CONF_A=$dir/a1.conf CONF_B=$dir/b1.conf
	rotate_step 1 "next key added" "$dir/a1.conf" "$dir/b1.conf" ""
	CONF_A=$dir/a2.conf CONF_B=$dir/b2.conf
	rotate_step 2 "switched to the new key" "$dir/a2.conf" "$dir/b2.conf" "pre-shared key"
	CONF_A=$dir/a3.conf CONF_B=$dir/b3.conf
	rotate_step 3 "old key dropped" "$dir/a3.conf" "$dir/b3.conf" ""

	after_a=$(link_line a)
	after_b=$(link_line b)
	note "link after: gw-a $after_a; gw-b $after_b"
	rotate_baseline
	note "packets lost per step:$ROTATE_LOST; reload times (ms):$ROTATE_RELOAD_MS; proofs (ms):$ROTATE_PROVE_MS"
	rotate_link_checks "$before_a" "$after_a" "$before_b" "$after_b" 5 \
		"no link state change, no path transition, no probe refused"
	check "gw-a's charon: the peer authenticated with a pre-shared key after the switch" \
		grep -q "authentication of .* with pre-shared key successful" <(log_since "$(charon_log a)" "$off_a")
	check "gw-b's charon: the peer authenticated with a pre-shared key after the switch" \
		grep -q "authentication of .* with pre-shared key successful" <(log_since "$(charon_log b)" "$off_b")
	check "gw-a logged the peer's probes under the next key" \
		grep -q "the peer authenticates with the next key" "$LAB_RUN_DIR/site-a/grgw.log"
	check_not "no key in the daemon's logs" grep -qF -e "$(cat "$new")" -e "$(cat "$old")" \
		"$LAB_RUN_DIR/site-a/grgw.log" "$LAB_RUN_DIR/site-b/grgw.log"
	rotate_old_key_refused "$dir" "$old"
	stop_grgw
	CONF_A=$conf_a
	CONF_B=$conf_b
}

# rotate_unknown_key DIR OLD NEW: gw-a switched to NEW (OLD its next key)
# before gw-b has NEW at all (step 1 skipped there):
# the proof fails and says why, and the tunnel's SAs stay; back on OLD,
# the proof passes
rotate_unknown_key() {
	local dir=$1 ids spis off rc=0
	ids=$(ike_sa_ids a)
	spis=$(child_spis a)
	rotate_conf "$CONF_A" "$dir/a-early.conf" "$3" "$2"
	off=$(log_size "$(grgw_log a)")
	reload_with a "$dir/a-early.conf" || rc=$?
	check "a key gw-b does not have yet: the reload itself is applied (exit $rc)" test "$rc" -eq 0
	check "its proof fails with \"authentication failed\"" wait_until 30 eval \
		"log_since \"\$(grgw_log a)\" $off | grep -q \"proving the pre-shared key with .* failed: authentication failed\""
	check "the tunnel's SAs are the same ones" wait_until 20 tunnel_sas_kept a "$ids" "$spis"
	check "gw-a's probes keep the key gw-b has" grep -q "the probes keep the next key" \
		<(log_since "$(grgw_log a)" "$off")
	ROTATE_NOT_UP=
	for _ in 1 2 3 4 5 6 7 8 9 10 11 12; do rotate_watch; sleep 0.25; done
	check "the link stays up at both ends over 3 s (not up:${ROTATE_NOT_UP:- never})" test -z "$ROTATE_NOT_UP"
	check "the tunnel still carries traffic" ping_ok vellum-a "$VELLUM_B4"
	off=$(log_size "$(grgw_log a)")
	rc=0
	reload_with a "$CONF_A" || rc=$?
	check "back to the key both have: the proof passes" wait_until 30 eval \
		"log_since \"\$(grgw_log a)\" $off | grep -q \"accepts this gateway's pre-shared key\""
	note "$(log_since "$(grgw_log a)" "$off" | grep -E "proving|accepts" | cut -c1-200 | tr '\n' ' ')"
}

# rotate_old_key_refused DIR OLD: gw-b restarted with the old key alone is
# refused by gw-a, which now holds only the new one; then gw-b on the new
# key gets the tunnel up again
rotate_old_key_refused() {
	local dir=$1 old=$2 b3=$CONF_B refused
	down_one b rotate-old-down
	rotate_conf "$b3" "$dir/b-old.conf" "$old"
	CONF_B=$dir/b-old.conf
	refused=$(status_json a | jq '[.peers[0].link.paths[]?.rejected.auth] | add // 0')
	up_one b rotate-old
	check "gw-b with only the old key: grgw up fails (exit $RC)" test "$RC" -ne 0
	check "gw-b with only the old key: \"authentication failed\"" \
		grep -qi 'authentication failed' "$WORK/rotate-old-b.log"
	note "gw-b: $(tr '\n' ' ' <"$WORK/rotate-old-b.log" | cut -c1-200)"
	check "gw-a refuses probes made with the old key (refused before: $refused)" \
		wait_until 20 status_is a "[.peers[0].link.paths[]?.rejected.auth] | add > $refused"
	down_one b rotate-old-down2
	CONF_B=$b3
	up_one b rotate-new
	check "gw-b on the new key: tunnel up again (exit $RC)" test "$RC" -eq 0
}

#   x509-rotate    certificate mode (see x509-tests.sh): under the stream, (1)
#                  both sites get a CA bundle holding the lab CA and a new
#                  CA; (2) each gets a certificate of the new CA, with a
#                  later expiry.  Each reload proves the new ones with a
#                  second IKE_SA; the tunnel's SAs stay the same ones,
#                  nothing lost, no flap, and status and /metrics show
#                  the new expiry.  Then site A's certificate is renewed by
#                  writing over the same files: a reload of the same
#                  configuration reads them again and presents it.

# cert_conf SRC DEST CERT KEY CA: SRC with those [auth] files
cert_conf() {
	awk -v crt="$3" -v key="$4" -v ca="$5" '
		/^certificate[[:space:]]*=/ { print "certificate = " crt; next }
		/^private_key[[:space:]]*=/ { print "private_key = " key; next }
		/^ca[[:space:]]*=/ { print "ca = " ca; next }
		{ print }' "$1" >"$2"
}

# cert_not_after CRT: the certificate's notAfter as Unix time
cert_not_after() {
	date -d "$(openssl x509 -noout -enddate -in "$1" | cut -d= -f2)" +%s
}

t_x509_rotate() {
	local dir=$WORK/x509-rotate conf_a=$CONF_A conf_b=$CONF_B new_exp old_exp
	local before_a before_b after_a after_b
	need_lab "$WANT_MODE" || return 0
	need_grgw || return 0
	command -v pki >/dev/null || { fail "pki (strongswan-pki) installed"; return 0; }
	stop_grgw
	mkdir -p "$dir/new"
	if ! x509_setup "$dir" || ! x509_ca "$dir/new" ca2 ||
		! x509_issue "$dir/new" ca2 site-a --lifetime $((X509_DAYS * 2)) ||
		! x509_issue "$dir/new" ca2 site-b --lifetime $((X509_DAYS * 2)); then
		fail "two CAs and certificates made with pki"
		return 0
	fi
	cat "$dir/ca.crt" "$dir/new/ca2.crt" >"$dir/bundle.crt"
	# shellcheck disable=SC2034 # x509_conf (x509-tests.sh) reads it
	X509_DIR=$dir
	x509_use "$dir" "$dir" ca || { fail "configs in certificate mode"; return 0; }
	cert_conf "$CONF_A" "$dir/a1.conf" "$dir/site-a.crt" "$dir/site-a.key" "$dir/bundle.crt"
	cert_conf "$CONF_B" "$dir/b1.conf" "$dir/site-b.crt" "$dir/site-b.key" "$dir/bundle.crt"
	cert_conf "$CONF_A" "$dir/a2.conf" "$dir/new/site-a.crt" "$dir/new/site-a.key" "$dir/bundle.crt"
	cert_conf "$CONF_B" "$dir/b2.conf" "$dir/new/site-b.crt" "$dir/new/site-b.key" "$dir/bundle.crt"
	up_both x509-rotate-up
	if [ "$RC_A" -ne 0 ] || [ "$RC_B" -ne 0 ] || ! wait_until 30 tunnel_is_up; then
		fail "tunnel up with certificates (grgw up: gw-a $RC_A, gw-b $RC_B)"
		diag
		x509_down_both x509-rotate
		CONF_A=$conf_a CONF_B=$conf_b
		return 0
	fi
	pass "tunnel up with certificates of the lab CA"
	old_exp=$(cert_not_after "$dir/site-a.crt")
	new_exp=$(cert_not_after "$dir/new/site-a.crt")
	check "status shows the certificate's expiry ($old_exp)" \
		status_is a ".certificates.local.not_after == $old_exp"
	wait_until 20 one_ike_sa_each || true
	rotate_baseline
	before_a=$(link_line a)
	before_b=$(link_line b)
	ROTATE_NOT_UP=
	ROTATE_LOST=
	ROTATE_RELOAD_MS=
	ROTATE_PROVE_MS=

	CONF_A=$dir/a1.conf CONF_B=$dir/b1.conf
	rotate_step 1 "a CA bundle with the new CA" "$dir/a1.conf" "$dir/b1.conf" certificate
	CONF_A=$dir/a2.conf CONF_B=$dir/b2.conf
	rotate_step 2 "a certificate of the new CA" "$dir/a2.conf" "$dir/b2.conf" certificate

	after_a=$(link_line a)
	after_b=$(link_line b)
	rotate_baseline
	note "link before: gw-a $before_a; gw-b $before_b; after: gw-a $after_a; gw-b $after_b"
	note "packets lost per step:$ROTATE_LOST; reload times (ms):$ROTATE_RELOAD_MS; proofs (ms):$ROTATE_PROVE_MS"
	rotate_link_checks "$before_a" "$after_a" "$before_b" "$after_b" 4 \
		"no link state change, no path transition"
	check "gw-a status: the new certificate's expiry ($new_exp, was $old_exp)" \
		status_is a ".certificates.local.not_after == $new_exp and .certificates.local.state == \"valid\""
	check "gw-a /metrics: grgw_cert_expiry_timestamp_seconds of the new certificate" \
		eval "http_get a /metrics | grep -q '^grgw_cert_expiry_timestamp_seconds{.*certificate=\"local\".*} $new_exp\$'"
	check "gw-b's charon: the peer's new certificate, of the new CA, checked" \
		grep -q 'CN=grgw lab ca2' <(tail -c 200000 "$(charon_log b)")
	x509_renew_in_place "$dir"
	check "tunnel up at both ends" tunnel_is_up
	x509_down_both x509-rotate
	CONF_A=$conf_a
	CONF_B=$conf_b
}

# x509_renew_in_place DIR: site A's certificate and key renewed by writing
# over the same files; a reload of the same configuration reads them again
x509_renew_in_place() {
	local dir=$1 ids rc=0 renewed off spis
	ids=$(ike_sa_ids a)
	spis=$(child_spis a)
	off=$(log_size "$(grgw_log a)")
	x509_issue "$dir/new" ca2 site-a --lifetime $((X509_DAYS * 3)) ||
		{ fail "a renewed certificate made with pki"; return 0; }
	renewed=$(cert_not_after "$dir/new/site-a.crt")
	reload_with a "$CONF_A" || rc=$?
	check "renewed files, same configuration: grgw reload exits 0" test "$rc" -eq 0
	check "it says the contents of the certificate files changed" \
		grep -q "contents of the certificate, private key or CA file changed" "$WORK/reload.out"
	check "gw-a proves the renewed certificate with a second IKE_SA" wait_until 60 verified a "$off"
	check "it was accepted" grep -q "accepts this gateway's certificate" <(log_since "$(grgw_log a)" "$off")
	check "gw-a's tunnel SAs are the same ones" wait_until 20 tunnel_sas_kept a "$ids" "$spis"
	check "gw-a status: the renewed certificate's expiry ($renewed)" \
		status_is a ".certificates.local.not_after == $renewed"
	rc=0
	reload_with a "$CONF_A" || rc=$?
	check "the same files again: nothing changed" grep -q "0 change(s) applied" "$WORK/reload.out"
}
