# shellcheck shell=bash
#
# Certificate authentication, end to end (sourced by run-tests.sh).
#
#   x509   a lab CA (strongSwan's pki) and one certificate per site; the
#          configs in certificate mode with the identities read from the
#          certificates; tunnel up, node addresses cross, nothing in clear
#          text on the WAN; then a peer certificate from another CA and an
#          expired one: both refused, `grgw up` and status say
#          "authentication failed", the expired one says it expired.
#
# Needs pki (Debian package strongswan-pki).

X509_DAYS=30

# pki prints a TPM plugin's complaints on stderr: keep them out of the report.
x509_pki() { pki "$@" 2>/dev/null; }

# x509_ca DIR NAME: a self-signed CA, DIR/NAME.key and DIR/NAME.crt
x509_ca() {
	local dir=$1 name=$2
	(umask 077 && x509_pki --gen --type ecdsa --size 256 --outform pem >"$dir/$name.key") &&
		x509_pki --self --ca --lifetime "$X509_DAYS" --in "$dir/$name.key" --type ecdsa \
			--dn "CN=grgw lab $name" --outform pem >"$dir/$name.crt"
}

# x509_issue DIR CA SITE [VALIDITY-ARGS...]: DIR/SITE.key and DIR/SITE.crt,
# signed by DIR/CA, subject CN=SITE and the DNS name gw.SITE.example
x509_issue() {
	local dir=$1 ca=$2 site=$3
	shift 3
	[ $# -gt 0 ] || set -- --lifetime "$X509_DAYS"
	(umask 077 && x509_pki --gen --type ecdsa --size 256 --outform pem >"$dir/$site.key") &&
		x509_pki --pub --in "$dir/$site.key" --type ecdsa |
		x509_pki --issue --cacert "$dir/$ca.crt" --cakey "$dir/$ca.key" \
			--dn "CN=$site" --san "gw.$site.example" "$@" --outform pem >"$dir/$site.crt"
}

# x509_identity CRT: the certificate's first subjectAltName (its identity)
x509_identity() {
	x509_pki --print --in "$1" | awk '$1 == "altNames:" { print $2; exit }'
}

# x509_conf SRC DEST DIR SITE PEER CA: the lab config in certificate mode,
# the identities of both ends taken from their certificates (DIR/SITE.crt,
# DIR/PEER.crt), the peer pinned to DIR/CA.crt
x509_conf() {
	local src=$1 dest=$2 dir=$3 site=$4 peer=$5 ca=$6 my_id peer_id
	my_id=$(x509_identity "$dir/$site.crt")
	peer_id=$(x509_identity "$dir/$peer.crt")
	[ -n "$my_id" ] && [ -n "$peer_id" ] || return 1
	render_conf "$src" "$dest.tmp" "$dir" "$LAB_MODE"
	awk -v my="$my_id" -v peer="$peer_id" -v dir="$dir" -v site="$site" -v ca="$ca" \
	    -v probe_key="$X509_DIR/probe.key" '
		# Without a PSK the probes need a key of their own.
		/^\[dataplane\]/ { print "[probe]"; print "key_file = " probe_key; print "" }
		/^\[/ { sect = $0 }
		sect == "[site]" && /^name[[:space:]]*=/ { print; print "id = " my; next }
		sect == "[peer]" && /^name[[:space:]]*=/ { print; print "id = " peer; next }
		/^psk_file[[:space:]]*=/ {
			print "certificate = " dir "/" site ".crt"
			print "private_key = " dir "/" site ".key"
			print "ca = " dir "/" ca ".crt"
			next
		}
		{ print }' "$dest.tmp" >"$dest" && rm -f "$dest.tmp"
}

# x509_setup DIR: CA "ca" with site-a and site-b; CA "other-ca" with a
# site-b of its own (other/site-b); an expired site-b (expired/site-b)
x509_setup() {
	local dir=$1
	mkdir -p "$dir/other" "$dir/expired"
	chmod 0700 "$dir"
	new_psk "$dir/probe.key" || return 1
	x509_ca "$dir" ca && x509_issue "$dir" ca site-a && x509_issue "$dir" ca site-b || return 1
	x509_ca "$dir/other" other-ca && x509_issue "$dir/other" other-ca site-b &&
		cp "$dir/site-a.crt" "$dir/other/" || return 1
	cp "$dir/ca.crt" "$dir/ca.key" "$dir/site-a.crt" "$dir/site-a.key" "$dir/expired/" &&
		x509_issue "$dir/expired" ca site-b --dateform '%Y-%m-%d %H:%M:%S' \
			--not-before '2020-01-01 00:00:00' --not-after '2021-01-01 00:00:00'
}

# x509_use DIR_A DIR_B CA_B: site A's config from DIR_A (pinned to ca),
# site B's from DIR_B (pinned to CA_B); sets CONF_A and CONF_B
x509_use() {
	CONF_A=$1/site-a.conf
	CONF_B=$2/site-b.conf
	x509_conf "$HERE/site-a.conf" "$CONF_A" "$1" site-a site-b ca &&
		x509_conf "$HERE/site-b.conf" "$CONF_B" "$2" site-b site-a "$3"
}

# x509_refused TAG WHAT: grgw up failed at both ends (RC_A, RC_B from
# up_both TAG) with "authentication failed" in its output and status
x509_refused() {
	local tag=$1 what=$2 s log rc
	for s in a b; do
		log=$WORK/$tag-$s.log
		rc=$([ "$s" = a ] && echo "$RC_A" || echo "$RC_B")
		check "$what: grgw up on gw-$s fails (exit $rc)" test "$rc" -ne 0
		check "$what: gw-$s's grgw up says \"authentication failed\"" \
			grep -qi 'authentication failed' "$log"
		check_not "$what: gw-$s does not blame a timeout" grep -Eqi 'timeout|timed out' "$log"
		note "gw-$s: $(tr '\n' ' ' <"$log" | cut -c1-240)"
	done
}

# status_error_says a|b REGEX: the daemon's last error in the status matches
status_error_says() {
	local json
	json=$(status_json "$1")
	jq -c '{error: (.daemon.error // .error // null), peers: [.peers[]? | {tunnel, state, reason}]}' <<<"$json"
	jq -r '.. | strings' <<<"$json" | grep -Eqi "$2"
}

x509_down_both() {
	down_one a "$1-down" --purge
	down_one b "$1-down" --purge
}

t_x509() {
	local conf_a=$CONF_A conf_b=$CONF_B
	x509_run
	CONF_A=$conf_a
	CONF_B=$conf_b
}

X509_DIR=

x509_run() {
	local dir=$WORK/x509
	X509_DIR=$dir
	need_lab "$WANT_MODE" || return 0
	need_grgw || return 0
	command -v pki >/dev/null || { fail "pki (strongswan-pki) installed"; return 0; }
	stop_grgw
	if ! x509_setup "$dir"; then
		fail "a CA and certificates made with pki"
		return 0
	fi
	pass "a CA and certificates made with pki ($(x509_identity "$dir/site-a.crt"), $(x509_identity "$dir/site-b.crt"))"

	# Both sites trust the lab CA.
	x509_use "$dir" "$dir" ca || { fail "configs in certificate mode"; return 0; }
	check "gw-a config in certificate mode passes check-config" grgw_at a check-config
	check "gw-b config in certificate mode passes check-config" grgw_at b check-config
	need_sinks || return 0
	capture_start x509 || { fail "WAN capture"; return 0; }
	up_both x509-up
	expect_rc "grgw up on gw-a (certificates)" "$RC_A" 0 "$WORK/x509-up-a.log"
	expect_rc "grgw up on gw-b (certificates)" "$RC_B" 0 "$WORK/x509-up-b.log"
	check "gw-a status: tunnel up" status_has a "$TUNNEL_UP_JQ"
	check "gw-b status: tunnel up" status_has b "$TUNNEL_UP_JQ"
	check_traffic_flows
	check "ping sprout-b -> sprout-a IPv6 (the other way)" ping_ok sprout-b "$SPROUT_A6"
	capture_stop x509
	check_no_cleartext x509
	check_ike_esp x509 "$LAB_MODE"
	x509_down_both x509

	# Site B presents a certificate of another CA (and trusts only that CA).
	x509_use "$dir" "$dir/other" other-ca || { fail "configs with another CA"; return 0; }
	up_both x509-other
	x509_refused x509-other "certificate of another CA"
	check "gw-a status says authentication failed" status_error_says a 'authentication failed'
	x509_down_both x509-other

	# Site B presents an expired certificate of the right CA.
	x509_use "$dir" "$dir/expired" ca || { fail "configs with an expired certificate"; return 0; }
	up_both x509-expired
	x509_refused x509-expired "expired certificate"
	check "gw-b's grgw up says its certificate expired" grep -qi 'expired' "$WORK/x509-expired-b.log"
	check "gw-a's grgw up says the peer's certificate expired" grep -qi 'expired' "$WORK/x509-expired-a.log"
	check "gw-b status says the certificate expired" status_error_says b 'expired'
	x509_down_both x509-expired
}
