#!/bin/bash
# The shipped monitoring files, checked without a lab:
#
#   gw/monitoring/grgw-rules.yml       promtool check rules; promtool test
#                                      rules (grgw-rules.test.yml): every
#                                      alert has a case where it fires
#   gw/monitoring/grgw-dashboard.json  a Grafana JSON model whose data source
#                                      is the variable ${datasource}
#   both                               every grgw_* metric they name is one
#                                      gw/metrics.c or gw/qosd.c exports, or
#                                      one of the documented future metrics
#
# The lab test link-prometheus loads both into a real Prometheus and lints
# grgw's real /metrics with promtool check metrics.
# Needs promtool (Debian's prometheus package) and jq; without promtool it
# exits 77 with "skipped: ...".  The last line is "N passed, N failed".
set -u

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
rules=$top/gw/monitoring/grgw-rules.yml
dashboard=$top/gw/monitoring/grgw-dashboard.json
# Named by rules that stay silent until grgw exports them.
FUTURE_METRICS="grgw_cert_expiry_timestamp_seconds grgw_ha_standby_up"

passed=0
failed=0
ok() { echo "ok   $*"; passed=$((passed + 1)); }
nok() { echo "FAIL $*"; failed=$((failed + 1)); }
check() {	# check "what" command...
	local what=$1 out
	shift
	if out=$("$@" 2>&1); then
		ok "$what"
	else
		nok "$what"
		printf '%s\n' "$out" | tail -n 20 | sed 's/^/     | /'
	fi
}

if ! command -v promtool >/dev/null; then
	echo "skipped: no promtool (apt-get install prometheus, or make deps)"
	exit 77
fi

# every_alert_fires: each alert of the rules appears in a test case that
# expects it to fire
every_alert_fires() {
	local a rc=0
	while read -r a; do
		if ! awk -v a="$a" '
			/alertname:/ { cur = $2 }
			/exp_labels:/ && cur == a { found = 1 }
			END { exit !found }' "$here/grgw-rules.test.yml"; then
			echo "no firing case for $a"
			rc=1
		fi
	done < <(sed -n 's/^ *- alert: *//p' "$rules")
	return $rc
}

# exported: the metric names grgw's exposition code writes
exported() {
	grep -ohE '"grgw_[a-z0-9_]+' "$top/gw/metrics.c" "$top/gw/qosd.c" | tr -d '"' | sort -u
}

# known_names FILE: every grgw_* name in FILE is exported or documented
# as future (recording rule names, level:grgw_...:op, are not metrics)
known_names() {
	local name rc=0
	while read -r name; do
		if ! exported | grep -qx "$name" && [[ " $FUTURE_METRICS " != *" $name "* ]]; then
			echo "unknown metric $name"
			rc=1
		fi
	done < <(grep -oE '(^|[^:a-z_])grgw_[a-z0-9_]+' "$1" | grep -oE 'grgw_[a-z0-9_]+' | sort -u)
	return $rc
}

dashboard_model() {
	jq -e '
		(.panels | length) > 0 and
		(.templating.list[] | select(.name == "datasource") |
		    .type == "datasource" and .query == "prometheus") and
		all(.panels[] | select(.type != "row"); (.targets | length) > 0) and
		all(.panels[] | select(.type != "row") | .datasource, .targets[].datasource;
		    .uid == "${datasource}") and
		([.panels[].id] | length == (unique | length))' "$dashboard" >/dev/null
}

# dashboard_exprs_parse: each panel query, variables substituted, is
# accepted by promtool as the expression of a recording rule
dashboard_exprs_parse() {
	local f
	f=$(mktemp)
	jq -r '{groups: [{name: "dashboard", rules: [.panels[].targets[]?.expr |
		gsub("\\$__rate_interval"; "1m") | gsub("\\$site"; ".+") |
		{record: "dashboard:query", expr: .}]}]}' "$dashboard" >"$f"
	promtool check rules "$f"
	local rc=$?
	rm -f "$f"
	return $rc
}

check "promtool check rules grgw-rules.yml" promtool check rules "$rules"
# The test file names the rules relative to itself.
test_rules() { (cd "$here" && promtool test rules grgw-rules.test.yml); }
check "promtool test rules grgw-rules.test.yml" test_rules
check "every alert has a test case where it fires" every_alert_fires
check "every alert has a summary and a description" \
	test "$(grep -c '^ *- alert:' "$rules")" -eq "$(grep -c '^ *summary:' "$rules")" -a \
	"$(grep -c '^ *- alert:' "$rules")" -eq "$(grep -c '^ *description:' "$rules")"
check "the rules name only metrics grgw exports (or documented future ones)" known_names "$rules"
check "dashboard: a Grafana model, data source \${datasource}, every panel queried" dashboard_model
check "dashboard: every query parses (promtool)" dashboard_exprs_parse
check "the dashboard names only metrics grgw exports" known_names "$dashboard"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
