# shellcheck shell=bash
#
# Monitoring tests, sourced by run-tests.sh (they use its helpers and those
# of link-tests.sh):
#
#   link-prometheus  Debian's Prometheus, started inside gw-a's namespace
#                    (127.0.0.1:9491, a temporary configuration and data
#                    directory), scrapes gw-a's /metrics every second with
#                    the shipped rules (gw/monitoring/grgw-rules.yml)
#                    evaluated every second.  promtool check metrics passes
#                    on the real /metrics; every rule evaluates without
#                    error; every query of the shipped dashboard returns
#                    data; a WAN cut on the router fires GrgwLinkDown with
#                    its reason, and the repair resolves it.  Prometheus and
#                    its files are gone afterwards, whatever happened.
#
#                     gw-a's namespace
#   [prometheus 127.0.0.1:9491] --scrape 1 s--> [grgw 127.0.0.1:9421/metrics]

MON_DIR=$(cd "$HERE/../../gw/monitoring" && pwd)
PROM_ADDR=127.0.0.1:9491
PROM_PID=
PROM_DIR=

# prom_stop: Prometheus stopped and its files removed (also from cleanup)
prom_stop() {
	if [ -n "$PROM_PID" ]; then
		kill "$PROM_PID" 2>/dev/null
		wait_until 10 pid_gone "$PROM_PID" || kill -9 "$PROM_PID" 2>/dev/null
		wait "$PROM_PID" 2>/dev/null
		PROM_PID=
	fi
	if [ -n "$PROM_DIR" ]; then
		rm -rf "$PROM_DIR"
		PROM_DIR=
	fi
	return 0
}

prom_start() {
	PROM_DIR=$(mktemp -d /tmp/grgwlab-prometheus.XXXXXX)
	cat >"$PROM_DIR/prometheus.yml" <<-EOF
	global:
	  scrape_interval: 1s
	  scrape_timeout: 1s
	  evaluation_interval: 1s
	rule_files:
	  - $MON_DIR/grgw-rules.yml
	scrape_configs:
	  - job_name: grgw
	    static_configs:
	      - targets: ['$LINK_HTTP']
	EOF
	ip netns exec "${NS_PREFIX}gw-a" prometheus --config.file="$PROM_DIR/prometheus.yml" \
		--storage.tsdb.path="$PROM_DIR/data" --web.listen-address="$PROM_ADDR" \
		--storage.tsdb.retention.time=1h --log.level=warn \
		>"$PROM_DIR/prometheus.log" 2>&1 </dev/null &
	PROM_PID=$!
	wait_until 30 prom_api "/-/ready"
}

# prom_api PATH [NAME VALUE]...: GET from Prometheus inside gw-a, the
# NAME=VALUE pairs URL-encoded as the query string
prom_api() {
	on gw-a timeout 10 "$PYTHON" -c '
import sys, urllib.parse, urllib.request
a = sys.argv[2:]
q = urllib.parse.urlencode(list(zip(a[0::2], a[1::2])))
url = "http://" + sys.argv[1] + (("?" + q) if q else "")
print(urllib.request.urlopen(url, timeout=8).read().decode(), end="")
' "$PROM_ADDR$1" "${@:2}"
}

# prom_query EXPR: the query's JSON answer
prom_query() { prom_api /api/v1/query query "$1"; }

# prom_has EXPR: the query succeeds and returns at least one sample
prom_has() { prom_query "$1" | jq -e '.status == "success" and (.data.result | length) > 0'; }

# alert_state NAME: firing, pending or nothing
alert_state() {
	prom_api /api/v1/alerts | jq -r --arg n "$1" \
		'[.data.alerts[] | select(.labels.alertname == $n) | .state] | first // empty'
}
# alert_label_is NAME LABEL VALUE: the firing alert NAME has LABEL=VALUE
alert_label_is() {
	prom_api /api/v1/alerts | jq -e --arg n "$1" --arg l "$2" --arg v "$3" '
		[.data.alerts[] | select(.labels.alertname == $n and .state == "firing")] |
		length > 0 and all(.[]; .labels[$l] == $v)'
}
alert_firing() { [ "$(alert_state "$1")" = firing ]; }
alert_gone() { [ -z "$(alert_state "$1")" ]; }

# prom_listens_loopback: Prometheus's only listening socket is PROM_ADDR
prom_listens_loopback() {
	local socks
	socks=$(on gw-a ss -Hltnp | grep "pid=$PROM_PID," | awk '{ print $4 }' | sort -u)
	echo "listening: $socks"
	[ "$socks" = "$PROM_ADDR" ]
}

# rules_healthy: the shipped rules are loaded and every one evaluated
# without an error
rules_healthy() {
	local want
	want=$(grep -cE '^ *- (record|alert):' "$MON_DIR/grgw-rules.yml")
	prom_api /api/v1/rules | jq -e --argjson want "$want" '
		[.data.groups[].rules[]] as $r |
		($r | length) == $want and
		all($r[]; .health == "ok" and .lastEvaluation != "0001-01-01T00:00:00Z")'
}

# metrics_lint: promtool's linter on gw-a's real /metrics
metrics_lint() {
	http_get a /metrics >"$WORK/metrics.txt" || return 1
	promtool check metrics <"$WORK/metrics.txt"
}

# dashboard_queries: every panel query of the dashboard, with its variables
# as Grafana would substitute them, returns data from this Prometheus
dashboard_queries() {
	local expr rc=0 n=0
	while IFS= read -r expr; do
		n=$((n + 1))
		expr=${expr//\$__rate_interval/15s}
		expr=${expr//\$site/.+}
		if prom_has "$expr" >/dev/null; then
			echo "data: $expr"
		else
			echo "NO DATA: $expr"
			prom_query "$expr" | head -c 300
			echo
			rc=1
		fi
	done < <(jq -r '.panels[].targets[]?.expr' "$MON_DIR/grgw-dashboard.json")
	echo "$n queries"
	[ "$n" -gt 0 ] && [ "$rc" -eq 0 ]
}

# dashboard_datasource_variable: every panel and query names the data source
# as the variable, never a fixed one
dashboard_datasource_variable() {
	jq -e '
		(.templating.list[] | select(.name == "datasource") | .type == "datasource") and
		all(.panels[] | select(.type != "row") | .datasource, .targets[].datasource;
		    .uid == "${datasource}")' "$MON_DIR/grgw-dashboard.json"
}

t_link_prometheus() {
	local t0 t1 series dir
	need_link || return 0
	if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
		fail "prometheus and promtool installed (apt-get install prometheus; tests/deps.sh)"
		return 0
	fi
	check "promtool check metrics: gw-a's /metrics" metrics_lint
	series=$(grep -vc '^#' "$WORK/metrics.txt")
	note "gw-a exports $series series"
	check "the link's series are all there while up: grgw_link_up 1" \
		grep -Eq '^grgw_link_up\{[^}]*\} 1$' "$WORK/metrics.txt"

	check "Prometheus started in gw-a on $PROM_ADDR" prom_start
	if [ -z "$PROM_PID" ] || ! kill -0 "$PROM_PID" 2>/dev/null; then
		show_file "$PROM_DIR/prometheus.log" 20
		prom_stop
		return 0
	fi
	check "Prometheus listens on $PROM_ADDR only" prom_listens_loopback
	check "it scrapes gw-a: up{job=\"grgw\"} 1" wait_until 20 prom_has 'up{job="grgw"} == 1'
	check "it sees the link up" wait_until 20 prom_has 'grgw_link_up == 1'
	check "the shipped rules are loaded and evaluate without errors" wait_until 20 rules_healthy
	check "the dashboard names its data source as \${datasource}" dashboard_datasource_variable
	# rate() over 15 s needs a few scrapes
	sleep 5
	check "every query of the dashboard returns data" dashboard_queries
	check_not "GrgwLinkDown is not raised while the link is up" alert_firing GrgwLinkDown

	t0=$(now_ms)
	router nft -f - <<<"table inet grgwlab-cut { chain cut { type filter hook forward priority 0; drop; }; }"
	check "cut: gw-a says down" wait_until 10 link_is a '.state == "down"'
	check "cut: Prometheus still has the link's series, at 0" \
		wait_until 10 prom_has 'grgw_link_up == 0'
	if wait_until 120 alert_firing GrgwLinkDown; then
		t1=$(now_ms)
		pass "cut: GrgwLinkDown firing $((t1 - t0)) ms after the cut (for: 30s, scrapes every 1 s)"
	else
		fail "cut: GrgwLinkDown firing"
		prom_api /api/v1/alerts | head -c 600
		echo
	fi
	check "cut: the alert names the reason (underlay-unreachable)" \
		alert_label_is GrgwLinkDown reason underlay-unreachable

	t0=$(now_ms)
	router nft delete table inet grgwlab-cut
	check "healed: both links up" wait_until 90 both_links_up
	if wait_until 60 alert_gone GrgwLinkDown; then
		t1=$(now_ms)
		pass "healed: GrgwLinkDown resolved $((t1 - t0)) ms after the repair"
	else
		fail "healed: GrgwLinkDown resolved"
	fi
	check "no rule failed to evaluate meanwhile" rules_healthy

	dir=$PROM_DIR
	prom_stop
	check "Prometheus stopped, its files removed" test ! -e "$dir"
}
