/*
 * cfgdiff.c: what a reload applies live and what it refuses.  Both
 * configurations are parsed from text, so the tests read like the edit an
 * operator makes to the file.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "grgw.h"
#include "cfgdiff.h"
#include "config_text.h"

#define FN	"grgw.conf"

static const char BASE[] =
	"[site]\n"
	"name = site-a\n"
	"wan_interface = wan0\n"
	"wan_address = 192.0.2.10\n"
	"lan_interface = lan0\n"
	"lan_address = 198.18.1.1\n"
	"prefix = 198.18.1.0/24\n"
	"[peer]\n"
	"name = site-b\n"
	"address = 198.51.100.10\n"
	"lan_address = 198.18.2.1\n"
	"prefix = 198.18.2.0/24\n"
	"[auth]\n"
	"psk_file = /etc/grgw/psk\n"
	"[dataplane]\n"
	"mode = auto\n"
	"[daemon]\n"
	"log_level = info\n"
	"[qos]\n"
	"wan_rate = 10mbit\n";

/* Parse BASE with from replaced by to (when from is set), extra after. */
static void
load(const char *from, const char *to, const char *extra,
    struct grgw_config *cfg)
{
	struct config_parser *p;
	const char *at = NULL;
	char *text;
	int rc, head = (int)strlen(BASE);

	if (from != NULL) {
		at = strstr(BASE, from);
		assert_non_null(at);
		head = (int)(at - BASE);
	}
	if (asprintf(&text, "%.*s%s%s%s", head, BASE, at != NULL ? to : "",
	    at != NULL ? at + strlen(from) : "", extra != NULL ? extra : "") ==
	    -1)
		fail();
	memset(cfg, 0, sizeof(*cfg));
	p = config_text_parse(FN, text, cfg, &rc);
	if (rc != 0)
		dump_errors(p);
	assert_int_equal(rc, 0);
	config_parse_free(p);
	free(text);
}

static void
diff(const char *from, const char *to, const char *extra, struct cfgdiff *d)
{
	static struct grgw_config a, b;

	load(NULL, NULL, NULL, &a);
	load(from, to, extra, &b);
	cfgdiff_compute(&a, &b, d);
}

static void
print(const struct cfgdiff *d)
{
	int i;

	for (i = 0; i < d->n; i++)
		fprintf(stderr, "  | %s: %s\n", cfgdiff_class_name(d->ch[i].cls),
		    d->ch[i].text);
}

/* The one change, its class and its text. */
static void
expect_one(const struct cfgdiff *d, enum cfgdiff_class cls, const char *text)
{
	if (d->n != 1)
		print(d);
	assert_int_equal(d->n, 1);
	assert_int_equal(d->ch[0].cls, cls);
	if (strstr(d->ch[0].text, text) == NULL)
		print(d);
	assert_non_null(strstr(d->ch[0].text, text));
}

/* ---- tests ---------------------------------------------------------------- */

static void
test_same_file(void **state)
{
	struct cfgdiff d;

	diff(NULL, NULL, NULL, &d);
	assert_int_equal(d.n, 0);
	assert_int_equal(d.apply, 0);
	assert_int_equal(d.n_refused, 0);
}

/* Comments, blank lines and key order are not changes. */
static void
test_cosmetic(void **state)
{
	struct cfgdiff d;

	diff("log_level = info\n", "# chatty\n\nlog_level = info   \n", NULL,
	    &d);
	assert_int_equal(d.n, 0);
}

static void
test_peer_prefix_added(void **state)
{
	struct cfgdiff d;

	diff("prefix = 198.18.2.0/24\n", "prefix = 198.18.2.0/24\n"
	    "prefix = 198.19.2.0/24\n", NULL, &d);
	expect_one(&d, CFGDIFF_LIVE, "[peer] prefix 198.19.2.0/24 added");
	assert_int_equal(d.apply, CFGDIFF_PEER_PREFIXES | CFGDIFF_QOS);
}

static void
test_site_prefix_replaced(void **state)
{
	struct cfgdiff d;

	diff("prefix = 198.18.1.0/24\n", "prefix = 198.18.1.0/25\n"
	    "prefix = 198.18.1.128/25\n", NULL, &d);
	/* Not a renumbering of the same lines: two added, one removed. */
	print(&d);
	assert_int_equal(d.n, 0 + 3);
	assert_int_equal(d.n_refused, 0);
	assert_int_equal(d.apply, CFGDIFF_SITE_PREFIXES | CFGDIFF_QOS);
	assert_non_null(strstr(d.ch[2].text, "198.18.1.0/24 removed"));
}

static void
test_qos_dscp(void **state)
{
	struct cfgdiff d;

	diff(NULL, NULL, "[class oam]\ndscp = 34\n", &d);
	expect_one(&d, CFGDIFF_LIVE, "[class oam] dscp 16 -> 34");
	assert_int_equal(d.apply, CFGDIFF_QOS);
}

static void
test_qos_class_added(void **state)
{
	struct cfgdiff d;

	diff(NULL, NULL, "[class memc]\nprotocol = tcp\nport = 11211\n"
	    "dscp = AF31\n", &d);
	expect_one(&d, CFGDIFF_LIVE, "[class memc] added");
}

static void
test_qos_rate(void **state)
{
	struct cfgdiff d;

	diff("wan_rate = 10mbit\n", "wan_rate = 20mbit\n", NULL, &d);
	expect_one(&d, CFGDIFF_LIVE, "[qos] wan_rate 10000000 -> 20000000");
}

static void
test_probe_interval(void **state)
{
	struct cfgdiff d;

	diff(NULL, NULL, "[probe]\ninterval_ms = 100\n", &d);
	expect_one(&d, CFGDIFF_LIVE, "[probe] interval_ms 50 -> 100");
	assert_true(d.apply & CFGDIFF_NETPROC);
}

static void
test_feeds_and_log(void **state)
{
	struct cfgdiff d;

	diff("log_level = info\n", "log_level = debug\n",
	    "[http]\nlisten = 127.0.0.1:9500\n", &d);
	print(&d);
	assert_int_equal(d.n, 2);
	assert_int_equal(d.n_refused, 0);
	assert_int_equal(d.apply, CFGDIFF_NETPROC | CFGDIFF_LOG);
}

static void
test_psk_next(void **state)
{
	struct cfgdiff d;

	diff("psk_file = /etc/grgw/psk\n", "psk_file = /etc/grgw/psk\n"
	    "psk_next_file = /etc/grgw/psk.next\n", NULL, &d);
	expect_one(&d, CFGDIFF_LIVE, "[auth] psk_next_file (off) -> "
	    "/etc/grgw/psk.next");
	assert_int_equal(d.apply, CFGDIFF_PSK);
}

/* Certificate rotation: new certificate and CA files are applied live. */
static void
test_cert_files(void **state)
{
	static const char psk[] = "psk_file = /etc/grgw/psk\n";
	static const char probe[] = "[probe]\nkey_file = /etc/grgw/probe.key\n";
	static struct grgw_config a, b;
	struct cfgdiff d;

	load(psk, "certificate = /etc/grgw/a.crt\nprivate_key = "
	    "/etc/grgw/a.key\nca = /etc/grgw/ca.crt\n", probe, &a);
	load(psk, "certificate = /etc/grgw/a2.crt\nprivate_key = "
	    "/etc/grgw/a2.key\nca = /etc/grgw/cas.crt\n", probe, &b);
	cfgdiff_compute(&a, &b, &d);
	print(&d);
	assert_int_equal(d.n, 3);
	assert_int_equal(d.n_refused, 0);
	assert_int_equal(d.apply, CFGDIFF_CREDS);
	assert_non_null(strstr(d.ch[0].text, "[auth] certificate "
	    "/etc/grgw/a.crt -> /etc/grgw/a2.crt"));
	cfgdiff_compute(&a, &a, &d);
	assert_int_equal(d.n, 0);
	/* From certificates to a pre-shared key: not on a running gateway. */
	load(NULL, NULL, NULL, &b);
	cfgdiff_compute(&a, &b, &d);
	assert_true(d.n_refused >= 1);
}

static void
test_refused_dataplane(void **state)
{
	struct cfgdiff d;

	diff("mode = auto\n", "mode = libipsec\n", NULL, &d);
	expect_one(&d, CFGDIFF_REFUSED, "[dataplane] mode auto -> libipsec");
	assert_non_null(strstr(d.ch[0].text, "`grgw down` then `grgw up`"));
	assert_int_equal(d.n_refused, 1);
	assert_int_equal(d.apply, 0);
}

static void
test_refused_identity(void **state)
{
	struct cfgdiff d;

	/* The identity and the default etcd key follow the name. */
	diff("name = site-a\n", "name = site-c\n", NULL, &d);
	assert_int_equal(d.n_refused, 2);
	assert_int_equal(d.ch[0].cls, CFGDIFF_REFUSED);
	assert_non_null(strstr(d.ch[0].text, "[site] name site-a -> site-c"));
}

static void
test_refused_interfaces(void **state)
{
	struct cfgdiff d;

	diff("wan_interface = wan0\nwan_address = 192.0.2.10\n"
	    "lan_interface = lan0\n", "wan_interface = wan1\n"
	    "wan_address = 192.0.2.10\nlan_interface = lan1\n", NULL, &d);
	print(&d);
	assert_int_equal(d.n, 2);
	assert_int_equal(d.n_refused, 2);
}

static void
test_refused_table_user(void **state)
{
	struct cfgdiff d;

	diff("mode = auto\n[daemon]\n", "mode = auto\ntable = 5000\n"
	    "[daemon]\nuser = nobody\n", NULL, &d);
	print(&d);
	assert_int_equal(d.n_refused, 2);
}

/* A refused change next to a live one: both listed, only one refused. */
static void
test_mixed(void **state)
{
	struct cfgdiff d;

	diff("mode = auto\n", "mode = kernel\n", "[class oam]\ndscp = 34\n",
	    &d);
	assert_int_equal(d.n, 2);
	assert_int_equal(d.n_refused, 1);
	assert_int_equal(d.apply, CFGDIFF_QOS);
}

/* ---- [pair] --------------------------------------------------------------- */

#define ETCD	"[etcd]\nendpoint = http://198.18.1.5:4000\n"
#define PAIR	ETCD "[pair]\npartner = 198.18.1.3\naddress = 198.18.1.2\n"

/* BASE with extra_a against BASE with extra_b. */
static void
diff_extra(const char *extra_a, const char *extra_b, struct cfgdiff *d)
{
	static struct grgw_config a, b;

	load(NULL, NULL, extra_a, &a);
	load(NULL, NULL, extra_b, &b);
	cfgdiff_compute(&a, &b, d);
}

/* The change whose text holds text, of class cls. */
static void
expect_has(const struct cfgdiff *d, enum cfgdiff_class cls, const char *text)
{
	int i;

	for (i = 0; i < d->n; i++)
		if (d->ch[i].cls == cls && strstr(d->ch[i].text, text) != NULL)
			return;
	fprintf(stderr, "no %s change \"%s\"; have:\n",
	    cfgdiff_class_name(cls), text);
	print(d);
	fail();
}

static void
test_pair_section(void **state)
{
	struct cfgdiff d;

	diff_extra(PAIR, PAIR "# the same\n", &d);
	assert_int_equal(d.n, 0);

	diff_extra(ETCD, PAIR, &d);
	expect_one(&d, CFGDIFF_REFUSED, "[pair] section added: the site's "
	    "addresses become floating ones, held by the active gateway only; "
	    "apply it with `grgw down` then `grgw up`");
	assert_int_equal(d.apply, 0);

	diff_extra(PAIR, ETCD, &d);
	expect_one(&d, CFGDIFF_REFUSED, "[pair] section removed: this gateway "
	    "would hold the site's addresses alone; run `grgw down` on its "
	    "partner first");

	/* Without a pair, its defaults that follow the name change nothing. */
	diff("name = site-a\n", "name = site-c\n", NULL, &d);
	assert_int_equal(d.n_refused, 2);
	assert_null(strstr(d.ch[0].text, "[pair]"));
	assert_null(strstr(d.ch[1].text, "[pair]"));
}

static void
test_pair_refused(void **state)
{
	struct cfgdiff d;

	diff_extra(PAIR, ETCD "[pair]\npartner = 198.18.1.4\n"
	    "address = 198.18.1.2\n", &d);
	expect_one(&d, CFGDIFF_REFUSED, "[pair] partner changed (198.18.1.3 "
	    "-> 198.18.1.4): restart the gateway with `grgw down` and "
	    "`grgw up` on the standby first");
	assert_int_equal(d.n_refused, 1);
	assert_int_equal(d.apply, 0);

	diff_extra(PAIR, ETCD "[pair]\npartner = 198.18.1.3\n"
	    "address = 198.18.1.5\n", &d);
	expect_one(&d, CFGDIFF_REFUSED, "[pair] address changed (198.18.1.2 "
	    "-> 198.18.1.5): restart the gateway");

	/* The second heartbeat path: added, changed, removed. */
	diff_extra(PAIR "second_partner = 192.0.2.12\n"
	    "second_address = 192.0.2.11\n", PAIR "second_partner = "
	    "192.0.2.12\nsecond_address = 192.0.2.11\n", &d);
	assert_int_equal(d.n, 0);
	diff_extra(PAIR, PAIR "second_partner = 192.0.2.12\n"
	    "second_address = 192.0.2.11\n", &d);
	assert_int_equal(d.n_refused, 2);
	expect_has(&d, CFGDIFF_REFUSED, "[pair] second_partner changed (none "
	    "-> 192.0.2.12): restart the gateway");
	expect_has(&d, CFGDIFF_REFUSED, "[pair] second_address changed (none "
	    "-> 192.0.2.11): restart the gateway");
	diff_extra(PAIR "second_partner = 192.0.2.12\n"
	    "second_address = 192.0.2.11\n", PAIR "second_partner = "
	    "192.0.2.13\nsecond_address = 192.0.2.11\n", &d);
	expect_one(&d, CFGDIFF_REFUSED, "[pair] second_partner changed "
	    "(192.0.2.12 -> 192.0.2.13)");
	assert_int_equal(d.n_refused, 1);

	diff_extra(PAIR, PAIR "port = 4300\n", &d);
	expect_one(&d, CFGDIFF_REFUSED, "[pair] port changed (4212 -> 4300): "
	    "restart the gateway");

	diff_extra(PAIR, PAIR "etcd_key = /grgw/a/fence\n", &d);
	expect_one(&d, CFGDIFF_REFUSED, "[pair] etcd_key changed "
	    "(/grgw/site-a/pair -> /grgw/a/fence): restart the gateway");

	/* The fence's etcd, too; without a pair it is a live change. */
	diff_extra(PAIR, "[etcd]\nendpoint = http://198.18.1.6:4000\n"
	    "[pair]\npartner = 198.18.1.3\naddress = 198.18.1.2\n", &d);
	expect_one(&d, CFGDIFF_REFUSED, "[etcd] endpoint changed "
	    "(http://198.18.1.5:4000 -> http://198.18.1.6:4000): it holds "
	    "the [pair] fence: restart the gateway");
	diff_extra(ETCD, "[etcd]\nendpoint = http://198.18.1.6:4000\n", &d);
	expect_one(&d, CFGDIFF_LIVE, "[etcd] endpoint");
	assert_int_equal(d.apply, CFGDIFF_NETPROC);

	/* Refused and live changes together: each listed. */
	diff_extra(PAIR, ETCD "[pair]\npartner = 198.18.1.4\n"
	    "address = 198.18.1.2\npriority = 7\n", &d);
	assert_int_equal(d.n, 2);
	assert_int_equal(d.n_refused, 1);
	expect_has(&d, CFGDIFF_REFUSED, "[pair] partner changed");
	expect_has(&d, CFGDIFF_LIVE, "[pair] priority 100 -> 7");
}

static void
test_pair_live(void **state)
{
	struct cfgdiff d;

	diff_extra(PAIR, PAIR "priority = 200\n", &d);
	expect_one(&d, CFGDIFF_LIVE, "[pair] priority 100 -> 200");
	assert_int_equal(d.ch[0].apply, CFGDIFF_PAIR);
	assert_int_equal(d.apply, CFGDIFF_PAIR);

	diff_extra(PAIR, PAIR "dead_ms = 200\n", &d);
	/* guard_ms follows dead_ms by default. */
	assert_int_equal(d.n, 2);
	assert_int_equal(d.n_refused, 0);
	expect_has(&d, CFGDIFF_LIVE, "[pair] dead_ms 100 -> 200");
	expect_has(&d, CFGDIFF_LIVE, "[pair] guard_ms 100 -> 200");
	assert_int_equal(d.apply, CFGDIFF_PAIR);

	diff_extra(PAIR, PAIR "interval_ms = 30\n", &d);
	/* dead_ms, guard_ms and margin_ms follow it by default. */
	assert_int_equal(d.n, 4);
	assert_int_equal(d.n_refused, 0);
	expect_has(&d, CFGDIFF_LIVE, "[pair] interval_ms 20 -> 30");
	expect_has(&d, CFGDIFF_LIVE, "[pair] dead_ms 100 -> 150");
	expect_has(&d, CFGDIFF_LIVE, "[pair] margin_ms 40 -> 60");
	assert_int_equal(d.apply, CFGDIFF_PAIR);

	diff_extra(PAIR, PAIR "guard_ms = 60\n", &d);
	expect_one(&d, CFGDIFF_LIVE, "[pair] guard_ms 100 -> 60");
	diff_extra(PAIR, PAIR "margin_ms = 50\n", &d);
	expect_one(&d, CFGDIFF_LIVE, "[pair] margin_ms 40 -> 50");
	diff_extra(PAIR, PAIR "handover_wait_ms = 8000\n", &d);
	expect_one(&d, CFGDIFF_LIVE, "[pair] handover_wait_ms 0 -> 8000");
	assert_int_equal(d.apply, CFGDIFF_PAIR);

	diff_extra(PAIR, PAIR "key_file = /etc/grgw/pair.key\n", &d);
	expect_one(&d, CFGDIFF_LIVE, "[pair] key_file (off) -> "
	    "/etc/grgw/pair.key");
	assert_int_equal(d.apply, CFGDIFF_PAIR);
}

/* The heartbeat key derived from the pre-shared keys follows them. */
static void
test_pair_psk(void **state)
{
	static struct grgw_config a, b;
	struct cfgdiff d;

	load(NULL, NULL, PAIR, &a);
	load("psk_file = /etc/grgw/psk\n", "psk_file = /etc/grgw/psk\n"
	    "psk_next_file = /etc/grgw/psk.next\n", PAIR, &b);
	cfgdiff_compute(&a, &b, &d);
	expect_one(&d, CFGDIFF_LIVE, "[auth] psk_next_file");
	assert_int_equal(d.apply, CFGDIFF_PSK | CFGDIFF_PAIR);

	/* A key file of its own: the pre-shared keys are not its business. */
	load(NULL, NULL, PAIR "key_file = /etc/grgw/pair.key\n", &a);
	load("psk_file = /etc/grgw/psk\n", "psk_file = /etc/grgw/psk.next\n",
	    PAIR "key_file = /etc/grgw/pair.key\n", &b);
	cfgdiff_compute(&a, &b, &d);
	expect_one(&d, CFGDIFF_LIVE, "[auth] psk_file");
	assert_int_equal(d.apply, CFGDIFF_PSK);
}

static void
test_full_list(void **state)
{
	struct cfgdiff d;
	int i;

	memset(&d, 0, sizeof(d));
	for (i = 0; i < CFGDIFF_MAX + 5; i++)
		cfgdiff_add(&d, CFGDIFF_LIVE, CFGDIFF_QOS, "change %d", i);
	assert_int_equal(d.n, CFGDIFF_MAX);
	assert_true(d.truncated);
	cfgdiff_add(&d, CFGDIFF_REFUSED, CFGDIFF_QOS, "too late");
	assert_int_equal(d.n_refused, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_file),
		cmocka_unit_test(test_cosmetic),
		cmocka_unit_test(test_peer_prefix_added),
		cmocka_unit_test(test_site_prefix_replaced),
		cmocka_unit_test(test_qos_dscp),
		cmocka_unit_test(test_qos_class_added),
		cmocka_unit_test(test_qos_rate),
		cmocka_unit_test(test_probe_interval),
		cmocka_unit_test(test_feeds_and_log),
		cmocka_unit_test(test_psk_next),
		cmocka_unit_test(test_cert_files),
		cmocka_unit_test(test_refused_dataplane),
		cmocka_unit_test(test_refused_identity),
		cmocka_unit_test(test_refused_interfaces),
		cmocka_unit_test(test_refused_table_user),
		cmocka_unit_test(test_mixed),
		cmocka_unit_test(test_pair_section),
		cmocka_unit_test(test_pair_refused),
		cmocka_unit_test(test_pair_live),
		cmocka_unit_test(test_pair_psk),
		cmocka_unit_test(test_full_list),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
