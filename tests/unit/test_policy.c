/*
 * QoS: the [qos] and [class NAME] configuration (every error a user can
 * make, with its line), the DSCP and rate codecs, the compiled plan (the
 * nftables text and the HTB tree, table-driven), the record lines of a
 * qdisc, the nftables counter listing parser, and the status rendering.
 * No kernel is involved.
 */
#include <sys/socket.h>

#include <netinet/in.h>

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "grgw.h"
#include "strbuf.h"
#include "qosd.h"
#include "netlink/netlink.h"
#include "netlink/record.h"
#include "policy/policy.h"
#include "config_text.h"

#define FN	"grgw.conf"

/* A valid configuration of 17 lines; the tests append to it. */
static const char BASE[] =
	"[site]\n"				/*  1 */
	"name = site-a\n"			/*  2 */
	"wan_interface = wan0\n"		/*  3 */
	"wan_address = 192.0.2.10\n"		/*  4 */
	"lan_interface = lan0\n"		/*  5 */
	"lan_address = 198.18.1.1\n"		/*  6 */
	"lan_address = 2001:db8:a::1\n"		/*  7 */
	"prefix = 198.18.1.0/24\n"		/*  8 */
	"prefix = 2001:db8:a::/64\n"		/*  9 */
	"[peer]\n"				/* 10 */
	"name = site-b\n"			/* 11 */
	"address = 198.51.100.10\n"		/* 12 */
	"lan_address = 198.18.2.1\n"		/* 13 */
	"prefix = 198.18.2.0/24\n"		/* 14 */
	"prefix = 2001:db8:b::/64\n"		/* 15 */
	"[auth]\n"				/* 16 */
	"psk_file = /etc/grgw/psk\n";		/* 17 */
#define BASE_LINES	17

/* ---- helpers ---------------------------------------------------------- */

/*
 * BASE followed by extra, fed a line at a time, each line in a heap
 * buffer of exactly its length (no NUL) so ASan sees any overread.
 */
static struct config_parser *
parse_extra(const char *extra, struct grgw_config *cfg, int *rc)
{
	struct config_parser	*p;
	char			*text;

	assert_true(asprintf(&text, "%s%s", BASE, extra) != -1);
	p = config_text_parse(FN, text, cfg, rc);
	free(text);
	return p;
}

static void
parse_ok(const char *extra, struct grgw_config *cfg)
{
	struct config_parser	*p;
	int			 rc;

	p = parse_extra(extra, cfg, &rc);
	if (rc != 0)
		dump_errors(p);
	assert_int_equal(rc, 0);
	config_parse_free(p);
}

/*
 * extra must be refused, with an error on line BASE_LINES + line of extra
 * whose text contains every one of the NULL-terminated fragments.
 */
static void
expect_error(const char *extra, unsigned int line, ...)
{
	struct grgw_config	 cfg;
	struct config_parser	*p;
	char			 prefix[64];
	const char		*e, *frag;
	size_t			 i;
	va_list			 ap;
	int			 rc, found = 0;

	p = parse_extra(extra, &cfg, &rc);
	assert_int_equal(rc, -1);
	snprintf(prefix, sizeof(prefix), FN ":%u: ", BASE_LINES + line);
	for (i = 0; i < config_parse_error_count(p) && !found; i++) {
		e = config_parse_error(p, i);
		if (strncmp(e, prefix, strlen(prefix)) != 0)
			continue;
		found = 1;
		va_start(ap, line);
		while ((frag = va_arg(ap, const char *)) != NULL)
			if (strstr(e, frag) == NULL)
				found = 0;
		va_end(ap);
	}
	if (!found) {
		fprintf(stderr, "wanted an error at %s; got:\n", prefix);
		dump_errors(p);
	}
	assert_true(found);
	config_parse_free(p);
}

static const struct grgw_class *
find_class(const struct grgw_config *cfg, const char *name)
{
	int	 i;

	for (i = 0; i < cfg->qos.n_classes; i++)
		if (strcmp(cfg->qos.classes[i].name, name) == 0)
			return &cfg->qos.classes[i];
	return NULL;
}

/* ---- configuration: accepted ------------------------------------------ */

static void
test_defaults(void **state)
{
	struct grgw_config	 cfg;
	const struct grgw_class	*c;

	(void)state;
	parse_ok("", &cfg);
	assert_true(cfg.qos.enabled);
	assert_int_equal(cfg.qos.wan_rate, 0);
	assert_int_equal(cfg.qos.n_classes, 5);

	assert_non_null(c = find_class(&cfg, "rogers"));
	assert_true(c->enabled);
	assert_int_equal(c->protocol, GRGW_L4_TCP);
	assert_int_equal(c->n_ports, 1);
	assert_int_equal(c->ports[0].lo, 11311);
	assert_int_equal(c->dscp, 18);		/* AF21 */
	assert_int_equal(c->priority, 1);

	assert_non_null(c = find_class(&cfg, "cassandra"));
	assert_int_equal(c->ports[0].lo, 7000);
	assert_int_equal(c->ports[0].hi, 7001);
	assert_int_equal(c->dscp, 10);		/* AF11 */

	assert_non_null(c = find_class(&cfg, "chronos"));
	assert_int_equal(c->ports[0].lo, 7253);
	assert_int_equal(c->dscp, 20);		/* AF22 */

	assert_non_null(c = find_class(&cfg, "oam"));
	assert_int_equal(c->protocol, GRGW_L4_UDP);
	assert_int_equal(c->ports[0].lo, GRGW_OAM_PORT);
	assert_int_equal(c->dscp, 16);		/* CS2 */

	assert_non_null(c = find_class(&cfg, "sip"));
	assert_false(c->enabled);
	assert_int_equal(c->protocol, GRGW_L4_ANY);
	assert_int_equal(c->n_ports, 2);
	assert_int_equal(c->dscp, 40);		/* CS5 */
}

static void
test_qos_section(void **state)
{
	static const struct {
		const char	*value;
		uint64_t	 bps;
	} rates[] = {
		{ "10mbit", 10000000ULL }, { "1gbit", 1000000000ULL },
		{ "4000000", 4000000ULL }, { "500kbit", 500000ULL },
		{ "8kbit", 8000ULL }, { "4MBit", 4000000ULL },
		{ "400gbit", 400000000000ULL },
	};
	struct grgw_config	 cfg;
	char			 text[256];
	size_t			 i;

	(void)state;
	for (i = 0; i < nitems(rates); i++) {
		snprintf(text, sizeof(text), "[qos]\nwan_rate = %s\n",
		    rates[i].value);
		parse_ok(text, &cfg);
		assert_int_equal(cfg.qos.wan_rate, rates[i].bps);
	}
	assert_false(cfg.qos.keep_lan_gro);	/* GRO off while shaping */
	parse_ok("[qos]\nenable = no\ninterface = wan0\n", &cfg);
	assert_false(cfg.qos.enabled);
	assert_string_equal(cfg.qos.interface, "wan0");
	parse_ok("[qos]\nlan_gro = keep\n", &cfg);
	assert_true(cfg.qos.keep_lan_gro);
	parse_ok("[qos]\nlan_gro = off\n", &cfg);
	assert_false(cfg.qos.keep_lan_gro);
}

static void
test_class_override(void **state)
{
	struct grgw_config	 cfg;
	const struct grgw_class	*c;

	(void)state;
	/* Keys given replace the built-in values; the rest stay. */
	parse_ok("[class rogers]\ndscp = cs3\npriority = 0\n", &cfg);
	assert_non_null(c = find_class(&cfg, "rogers"));
	assert_int_equal(c->dscp, 24);
	assert_int_equal(c->priority, 0);
	assert_int_equal(c->n_ports, 1);
	assert_int_equal(c->ports[0].lo, 11311);
	assert_int_equal(c->line, BASE_LINES + 1);
	assert_int_equal(cfg.qos.n_classes, 5);

	/* The first port line replaces the built-in list. */
	parse_ok("[class cassandra]\nport = 9042\nport = 9160\n", &cfg);
	assert_non_null(c = find_class(&cfg, "cassandra"));
	assert_int_equal(c->n_ports, 2);
	assert_int_equal(c->ports[0].lo, 9042);
	assert_int_equal(c->ports[1].lo, 9160);

	/* The optional SIP class, switched on. */
	parse_ok("[class sip]\nenable = yes\n", &cfg);
	assert_true(find_class(&cfg, "sip")->enabled);

	/* A built-in class switched off. */
	parse_ok("[class chronos]\nenable = no\n", &cfg);
	assert_false(find_class(&cfg, "chronos")->enabled);
}

static void
test_class_new(void **state)
{
	struct grgw_config	 cfg;
	const struct grgw_class	*c;

	(void)state;
	parse_ok("[qos]\nwan_rate = 10mbit\n"
	    "[class memcached]\nprotocol = tcp\nport = 11211\n"
	    "prefix = 198.18.2.11/32\nprefix = 2001:db8:b::11/128\n"
	    "dscp = 26\npriority = 2\nrate = 1mbit\nceil = 50%\n", &cfg);
	assert_int_equal(cfg.qos.n_classes, 6);
	assert_non_null(c = find_class(&cfg, "memcached"));
	assert_false(c->builtin);
	assert_true(c->enabled);
	assert_int_equal(c->protocol, GRGW_L4_TCP);
	assert_int_equal(c->ports[0].lo, 11211);
	assert_int_equal(c->n_prefixes, 2);
	assert_int_equal(c->dscp, 26);
	assert_int_equal(c->priority, 2);
	assert_int_equal(c->rate.bps, 1000000);
	assert_int_equal(c->ceil.percent, 50);

	/* A prefix alone is enough; protocol defaults to any. */
	parse_ok("[class vellum]\nprefix = 198.18.2.11/32\ndscp = EF\n", &cfg);
	assert_non_null(c = find_class(&cfg, "vellum"));
	assert_int_equal(c->protocol, GRGW_L4_ANY);
	assert_int_equal(c->dscp, 46);
	assert_int_equal(c->rate.percent, 5);	/* default share */
}

/* ---- configuration: every error --------------------------------------- */

static void
test_errors_qos(void **state)
{
	(void)state;
	expect_error("[qos]\nwan_rate = 10mbps\n", 2, "wan_rate \"10mbps\" "
	    "is not a rate; expected a rate in bits per second", NULL);
	expect_error("[qos]\nwan_rate = 0\n", 2, "\"0\" is out of range",
	    NULL);
	expect_error("[qos]\nwan_rate = 1bit\n", 2, "is out of range", NULL);
	expect_error("[qos]\nwan_rate = 401gbit\n", 2, "is out of range",
	    NULL);
	expect_error("[qos]\nwan_rate = 99999999999999999999999gbit\n", 2,
	    "is out of range", NULL);
	expect_error("[qos]\nwan_rate = -5mbit\n", 2, "is not a rate", NULL);
	expect_error("[qos]\nwan_rate = 010mbit\n", 2, "is not a rate", NULL);
	expect_error("[qos]\nwan_rate =\n", 2, "wan_rate has no value", NULL);
	expect_error("[qos]\nenable = maybe\n", 2, "enable \"maybe\" is not "
	    "one of the choices; expected yes or no", NULL);
	expect_error("[qos]\ninterface = a/b\n", 2, "interface \"a/b\"",
	    NULL);
	expect_error("[qos]\nspeed = 10mbit\n", 2, "unknown key \"speed\" in "
	    "[qos]; expected one of: enable, wan_rate, interface, lan_gro",
	    NULL);
	expect_error("[qos]\nlan_gro = on\n", 2, "lan_gro \"on\" is not one "
	    "of the choices; expected off (turned off on the LAN interfaces "
	    "while shaping) or keep", NULL);
	expect_error("[qos]\nwan_rate = 1mbit\nwan_rate = 2mbit\n", 3,
	    "duplicate key wan_rate in [qos] (first set on line 19)", NULL);
	expect_error("[qos]\n[qos]\n", 2, "section [qos] appears again", NULL);
	expect_error("[qos fast]\n", 1, "section \"[qos fast]\" takes no name",
	    NULL);
}

static void
test_errors_class_header(void **state)
{
	char	*text = NULL, *more;
	int	 i;

	(void)state;
	expect_error("[class]\n", 1, "[class] has no name; expected [class "
	    "NAME]", NULL);
	expect_error("[class Rogers]\n", 1, "class name \"Rogers\" is not "
	    "valid", NULL);
	expect_error("[class a-b]\n", 1, "class name \"a-b\" is not valid",
	    NULL);
	expect_error("[class two words]\n", 1, "class name \"two words\"",
	    NULL);
	expect_error("[class abcdefghijklmnop]\n", 1, "is not valid", NULL);
	expect_error("[class default]\n", 1, "\"default\" is reserved", NULL);
	expect_error("[class rogers]\ndscp = ef\n[class rogers]\n", 3,
	    "[class rogers] appears again (first on line 18)", NULL);
	/* Keys under a refused header are not reported again. */
	expect_error("[class]\ndscp = ef\n", 1, "has no name", NULL);

	/* 5 built-in + 11 new classes fit; one more does not. */
	assert_non_null(text = strdup(""));
	for (i = 0; i < 12; i++) {
		assert_true(asprintf(&more, "%s[class c%d]\nport = %d\n"
		    "dscp = 8\n", text, i, 20000 + i) != -1);
		free(text);
		text = more;
	}
	expect_error(text, 34, "[class c11] is one class too many; expected "
	    "at most 16 classes", NULL);
	free(text);
}

static void
test_errors_class_keys(void **state)
{
	(void)state;
	expect_error("[class rogers]\nprotocol = sctp\n", 2, "protocol "
	    "\"sctp\" is not one of the choices; expected tcp, udp or any",
	    NULL);
	expect_error("[class rogers]\nport = 0\n", 2, "port \"0\" is out of "
	    "range", NULL);
	expect_error("[class rogers]\nport = 65536\n", 2, "is out of range",
	    NULL);
	expect_error("[class rogers]\nport = 7001-7000\n", 2, "start is "
	    "above its end", NULL);
	expect_error("[class rogers]\nport = abc\n", 2, "port \"abc\" is not "
	    "a port or a port range; expected a port 1 to 65535", NULL);
	expect_error("[class rogers]\nport = 7000-\n", 2, "is not a port",
	    NULL);
	expect_error("[class rogers]\nport = -7000\n", 2, "is not a port",
	    NULL);
	expect_error("[class rogers]\nport = 0x10\n", 2, "is not a port",
	    NULL);
	expect_error("[class rogers]\nport = 123456789\n", 2, "is not a port",
	    NULL);
	expect_error("[class rogers]\nport = 1\nport = 2\nport = 3\n"
	    "port = 4\nport = 5\nport = 6\nport = 7\nport = 8\nport = 9\n",
	    10, "[class] has more than 8 port lines", NULL);
	expect_error("[class rogers]\nport = 7000-7005\nport = 7003\n", 3,
	    "[class rogers] port 7003 overlaps port 7000-7005 (line 19)",
	    NULL);
	expect_error("[class rogers]\nprefix = 198.18.2.11\n", 2, "has no "
	    "/length", NULL);
	expect_error("[class rogers]\nprefix = 198.18.2.0/16\n", 2, "host "
	    "bits set", NULL);
	expect_error("[class rogers]\nprefix = 198.18.2.0/24\n"
	    "prefix = 198.18.2.11/32\n", 3, "prefix 198.18.2.11/32 overlaps "
	    "prefix 198.18.2.0/24 (line 19)", NULL);
	expect_error("[class rogers]\nprefix = 203.0.113.0/24\n", 2,
	    "prefix 203.0.113.0/24 is outside both sites' prefixes", NULL);
	expect_error("[class rogers]\ndscp = AF51\n", 2, "dscp \"AF51\" is "
	    "not a DSCP name or a number from 0 to 63", NULL);
	expect_error("[class rogers]\ndscp = 64\n", 2, "is not a DSCP", NULL);
	expect_error("[class rogers]\ndscp = 046\n", 2, "is not a DSCP", NULL);
	expect_error("[class rogers]\npriority = 8\n", 2, "priority \"8\" is "
	    "out of range; expected an integer from 0 (served first) to 7",
	    NULL);
	expect_error("[class rogers]\nenable = on\n", 2, "expected yes or no",
	    NULL);
	expect_error("[class rogers]\nspeed = 1\n", 2, "unknown key \"speed\" "
	    "in [class]; expected one of: enable, protocol, port, prefix, "
	    "dscp, priority, rate, ceil", NULL);
	expect_error("[class rogers]\ndscp = ef\ndscp = cs5\n", 3,
	    "duplicate key dscp", NULL);
}

static void
test_errors_class_rates(void **state)
{
	(void)state;
	expect_error("[class rogers]\nrate = 2mbit\n", 2, "[class rogers] "
	    "rate needs a [qos] wan_rate to share", NULL);
	expect_error("[class rogers]\nceil = 50%\n", 2, "[class rogers] ceil "
	    "needs a [qos] wan_rate", NULL);
	expect_error("[qos]\nwan_rate = 10mbit\n[class rogers]\n"
	    "rate = 150%\n", 4, "rate \"150%\" is not between 1% and 100%",
	    NULL);
	expect_error("[qos]\nwan_rate = 10mbit\n[class rogers]\n"
	    "rate = 0%\n", 4, "is not a percentage", NULL);
	expect_error("[qos]\nwan_rate = 10mbit\n[class rogers]\n"
	    "rate = 12345678%\n", 4, "is out of range", NULL);
	expect_error("[qos]\nwan_rate = 10mbit\n[class rogers]\n"
	    "rate = fast\n", 4, "rate \"fast\" is not a rate or a percentage; "
	    "expected a share of [qos] wan_rate", NULL);
	expect_error("[qos]\nwan_rate = 10mbit\n[class rogers]\n"
	    "rate = 20mbit\n", 4, "rate 20 Mbit/s is above [qos] wan_rate "
	    "10 Mbit/s (line 19)", NULL);
	expect_error("[qos]\nwan_rate = 10mbit\n[class rogers]\n"
	    "rate = 3mbit\nceil = 2mbit\n", 5, "ceil 2 Mbit/s is below its "
	    "rate 3 Mbit/s", NULL);
	/* The built-in shares are 60%; 50% more is too much. */
	expect_error("[qos]\nwan_rate = 10mbit\n[class rogers]\n"
	    "rate = 70%\n", 2, "[qos] wan_rate 10 Mbit/s is less than the "
	    "rates of the enabled classes add up to (11 Mbit/s)", NULL);
}

static void
test_errors_class_whole(void **state)
{
	(void)state;
	expect_error("[class mine]\ndscp = ef\n", 1, "[class mine] has no port "
	    "and no prefix", NULL);
	expect_error("[class mine]\nport = 9000\n", 1, "[class mine] dscp is "
	    "missing", NULL);
	/* Overriding a built-in class needs neither. */
	expect_error("[class rogers]\nport = 0\n[class mine]\n", 3,
	    "[class mine] has no port", NULL);
}

/* Several mistakes: each reported on its own line, in one run. */
static void
test_errors_all_reported(void **state)
{
	struct grgw_config	 cfg;
	struct config_parser	*p;
	int			 rc;

	(void)state;
	p = parse_extra("[qos]\nwan_rate = fast\n[class rogers]\n"
	    "dscp = AF99\nport = 0\n[class]\n", &cfg, &rc);
	assert_int_equal(rc, -1);
	assert_int_equal(config_parse_error_count(p), 4);
	assert_non_null(strstr(config_parse_error(p, 0), FN ":19: "));
	assert_non_null(strstr(config_parse_error(p, 1), FN ":21: "));
	assert_non_null(strstr(config_parse_error(p, 2), FN ":22: "));
	assert_non_null(strstr(config_parse_error(p, 3), FN ":23: "));
	config_parse_free(p);
}

/* ---- codecs ----------------------------------------------------------- */

static void
test_dscp_codec(void **state)
{
	static const struct {
		const char	*in;
		int		 ok;
		uint32_t	 v;
		const char	*name;
	} cases[] = {
		{ "EF", 1, 46, "EF" }, { "ef", 1, 46, "EF" },
		{ "CS0", 1, 0, "CS0" }, { "DF", 1, 0, "CS0" },
		{ "AF11", 1, 10, "AF11" }, { "af43", 1, 38, "AF43" },
		{ "CS7", 1, 56, "CS7" }, { "VA", 1, 44, "VA" },
		{ "0", 1, 0, "CS0" }, { "63", 1, 63, "63" },
		{ "18", 1, 18, "AF21" }, { "64", 0, 0, NULL },
		{ "", 0, 0, NULL }, { "AF14", 0, 0, NULL },
		{ "CS8", 0, 0, NULL }, { "007", 0, 0, NULL },
		{ "-1", 0, 0, NULL }, { "EF ", 0, 0, NULL },
	};
	char		 buf[16];
	uint32_t	 v;
	size_t		 i;

	(void)state;
	for (i = 0; i < nitems(cases); i++) {
		v = 99;
		assert_int_equal(policy_dscp_parse(cases[i].in, &v),
		    cases[i].ok ? 0 : -1);
		if (!cases[i].ok)
			continue;
		assert_int_equal(v, cases[i].v);
		assert_string_equal(policy_dscp_name(v, buf, sizeof(buf)),
		    cases[i].name);
	}
}

static void
test_rate_codec(void **state)
{
	static const struct {
		const char	*in;
		int		 rc;
		uint64_t	 bps;
		const char	*shown;
	} cases[] = {
		{ "4mbit", 0, 4000000, "4 Mbit/s" },
		{ "1500kbit", 0, 1500000, "1.5 Mbit/s" },
		{ "64kbit", 0, 64000, "64 kbit/s" },
		{ "10gbit", 0, 10000000000ULL, "10 Gbit/s" },
		{ "8000", 0, 8000, "8 kbit/s" },
		{ "8000bit", 0, 8000, "8 kbit/s" },
		{ "7999", -2, 0, NULL }, { "0", -2, 0, NULL },
		{ "mbit", -1, 0, NULL }, { "4 mbit", -1, 0, NULL },
		{ "4mb", -1, 0, NULL }, { "4.5mbit", -1, 0, NULL },
		{ "", -1, 0, NULL }, { "18446744073709551616", -2, 0, NULL },
	};
	char		 buf[32];
	uint64_t	 bps;
	size_t		 i;

	(void)state;
	for (i = 0; i < nitems(cases); i++) {
		bps = 0;
		assert_int_equal(policy_rate_parse(cases[i].in, &bps),
		    cases[i].rc);
		if (cases[i].rc != 0)
			continue;
		assert_int_equal(bps, cases[i].bps);
		assert_string_equal(policy_rate_fmt(bps, buf, sizeof(buf)),
		    cases[i].shown);
	}
	{
		struct grgw_rate r = { 0, 20 };

		assert_int_equal(policy_rate_bps(&r, 4000000), 800000);
		assert_int_equal(policy_rate_bps(&r, 0), 0);
		r.percent = 0;
		r.bps = 123456;
		assert_int_equal(policy_rate_bps(&r, 4000000), 123456);
	}
}

/* ---- the plan --------------------------------------------------------- */

static void
compile_ok(const char *extra, struct grgw_config *cfg,
    struct policy_plan *plan)
{
	char	 err[200];

	parse_ok(extra, cfg);
	if (policy_compile(cfg, plan, err, sizeof(err)) != 0)
		fail_msg("policy_compile: %s", err);
}

static void
assert_has(const char *text, const char *line)
{
	if (text == NULL || strstr(text, line) == NULL) {
		fprintf(stderr, "missing: %s\nin:\n%s\n", line,
		    text != NULL ? text : "(null)");
		fail();
	}
}

static void
assert_lacks(const char *text, const char *line)
{
	if (text != NULL && strstr(text, line) != NULL) {
		fprintf(stderr, "unexpected: %s\nin:\n%s\n", line, text);
		fail();
	}
}

static void
test_plan_marking_only(void **state)
{
	struct grgw_config	 cfg;
	struct policy_plan	 plan;
	const char		*r;

	(void)state;
	compile_ok("", &cfg, &plan);
	r = plan.ruleset;
	assert_true(plan.enabled);
	assert_false(plan.shaping);
	assert_int_equal(plan.n_classes, 5);	/* 4 enabled + default */
	assert_string_equal(plan.classes[4].name, "default");
	assert_true(plan.classes[4].is_default);

	static const char *const want[] = {
		"\tcounter cls_rogers {}\n",
		"\tcounter cls_default {}\n",
		"\t\ttype filter hook forward priority mangle; policy accept;\n",
		"\t\tiifname { \"lan0\" } ip daddr { 198.18.2.0/24 } "
		    "jump classify4\n",
		"\t\tiifname { \"lan0\" } ip6 daddr { 2001:db8:b::/64 } "
		    "jump classify6\n",
		"\t\ttype filter hook output priority mangle; policy accept;\n",
		"\t\tip daddr { 198.18.2.0/24 } jump classify4\n",
		"\t\tmeta l4proto tcp th dport 11311 ip dscp set 18 "
		    "counter name \"cls_rogers\" return\n",
		"\t\tmeta l4proto tcp th sport 11311 ip dscp set 18 "
		    "counter name \"cls_rogers\" return\n",
		"\t\tmeta l4proto tcp th dport 11311 ip6 dscp set 18 "
		    "counter name \"cls_rogers\" return\n",
		"\t\tmeta l4proto tcp th dport 7000-7001 ip dscp set 10 "
		    "counter name \"cls_cassandra\" return\n",
		"\t\tmeta l4proto tcp th sport 7253 ip dscp set 20 "
		    "counter name \"cls_chronos\" return\n",
		"\t\tmeta l4proto udp th dport 4211 ip dscp set 16 "
		    "counter name \"cls_oam\" return\n",
		/* Unclassified: counted, DSCP left as the sender set it. */
		"\t\tcounter name \"cls_default\"\n\t}\n",
	};
	size_t i;
	for (i = 0; i < nitems(want); i++)
		assert_has(r, want[i]);
	assert_lacks(r, "meta priority");
	assert_lacks(r, "cls_sip");		/* disabled by default */
	assert_lacks(r, "table ");		/* netlink/ wraps the body */
	/* Order of the first rules: rogers before cassandra. */
	assert_true(strstr(r, "cls_rogers\" return") <
	    strstr(r, "cls_cassandra\" return"));
	policy_plan_free(&plan);
	policy_plan_free(NULL);
}

static void
test_plan_shaping(void **state)
{
	struct grgw_config		 cfg;
	struct policy_plan		 plan;
	const struct policy_tc_class	*tc;
	char				 h[16];

	(void)state;
	compile_ok("[qos]\nwan_rate = 4mbit\n", &cfg, &plan);
	assert_true(plan.shaping);
	assert_int_equal(plan.wan_rate, 4000000);
	assert_int_equal(plan.root_handle, 0x42100000);
	assert_int_equal(plan.root_classid, 0x42100001);
	assert_int_equal(plan.default_classid, 0x42100010);
	assert_string_equal(policy_handle_fmt(plan.default_classid, h,
	    sizeof(h)), "4210:10");
	assert_string_equal(policy_handle_fmt(plan.root_handle, h,
	    sizeof(h)), "4210:");

	static const struct {
		const char	*name;
		uint32_t	 classid, prio;
		uint64_t	 rate;
	} tree[] = {
		{ "rogers", 0x42100011, 1, 800000 },
		{ "oam", 0x42100012, 2, 200000 },
		{ "chronos", 0x42100013, 2, 400000 },
		{ "cassandra", 0x42100014, 3, 1000000 },
		{ "default", 0x42100010, 7, 1600000 },	/* the rest: 40% */
	};
	size_t i;
	assert_int_equal(plan.n_classes, (int)nitems(tree));
	for (i = 0; i < nitems(tree); i++) {
		tc = &plan.classes[i];
		assert_string_equal(tc->name, tree[i].name);
		assert_int_equal(tc->classid, tree[i].classid);
		assert_int_equal(tc->priority, tree[i].prio);
		assert_int_equal(tc->rate, tree[i].rate);
		assert_int_equal(tc->ceil, 4000000);
		/* 100 ms at 4 Mbit/s of 1500-byte packets. */
		assert_int_equal(tc->queue_limit, 33);
		assert_true(tc->quantum >= 1600 && tc->quantum <= 60000);
		assert_int_equal(tc->leaf_handle >> 16, tc->classid & 0xffff);
	}
	assert_has(plan.ruleset, "\t\tmeta l4proto tcp th dport 11311 ip dscp "
	    "set 18 meta priority set 4210:11 counter name \"cls_rogers\" "
	    "return\n");
	assert_has(plan.ruleset, "\t\tmeta priority set 4210:10 counter name "
	    "\"cls_default\"\n");
	policy_plan_free(&plan);
}

static void
test_plan_matches(void **state)
{
	static const struct {
		const char	*conf;
		const char	*want[4];
		const char	*lacks;
	} cases[] = {
		/* A prefix filter: either address side, both port sides. */
		{ "[class memc]\nprotocol = tcp\nport = 11211\n"
		  "prefix = 198.18.2.11/32\ndscp = AF31\n",
		  { "\t\tip saddr { 198.18.2.11/32 } meta l4proto tcp th dport "
		    "11211 ip dscp set 26 counter name \"cls_memc\" return\n",
		    "\t\tip daddr { 198.18.2.11/32 } meta l4proto tcp th sport "
		    "11211 ip dscp set 26",
		    NULL }, "ip6 dscp set 26" },
		/* Any protocol with ports: TCP and UDP; several ports. */
		{ "[class sip]\nenable = yes\n",
		  { "\t\tmeta l4proto { tcp, udp } th dport { 5052, 5054 } ip "
		    "dscp set 40 counter name \"cls_sip\" return\n",
		    "th sport { 5052, 5054 } ip6 dscp set 40", NULL }, NULL },
		/* Any protocol, no port: addresses only. */
		{ "[class vellum]\nprefix = 2001:db8:b::11/128\ndscp = EF\n",
		  { "\t\tip6 saddr { 2001:db8:b::11/128 } ip6 dscp set 46 "
		    "counter name \"cls_vellum\" return\n",
		    "\t\tip6 daddr { 2001:db8:b::11/128 } ip6 dscp set 46", NULL },
		  "ip dscp set 46" },
		/* Two LAN interfaces. */
		{ "[class rogers]\nenable = no\n",
		  { "cls_chronos", NULL }, "cls_rogers" },
	};
	struct grgw_config	 cfg;
	struct policy_plan	 plan;
	size_t			 i, j;

	(void)state;
	for (i = 0; i < nitems(cases); i++) {
		compile_ok(cases[i].conf, &cfg, &plan);
		for (j = 0; j < nitems(cases[i].want) &&
		    cases[i].want[j] != NULL; j++)
			assert_has(plan.ruleset, cases[i].want[j]);
		if (cases[i].lacks != NULL)
			assert_lacks(plan.ruleset, cases[i].lacks);
		policy_plan_free(&plan);
	}

	/* Two LAN interfaces, and a peer with IPv4 only. */
	parse_ok("", &cfg);
	snprintf(cfg.site.lan_interfaces[1], IF_NAMESIZE, "lan1");
	cfg.site.n_lan_interfaces = 2;
	cfg.peer.n_prefixes = 1;
	{
		char err[100];

		assert_int_equal(policy_compile(&cfg, &plan, err,
		    sizeof(err)), 0);
	}
	assert_has(plan.ruleset, "iifname { \"lan0\", \"lan1\" } ip daddr "
	    "{ 198.18.2.0/24 } jump classify4\n");
	assert_lacks(plan.ruleset, "jump classify6");
	policy_plan_free(&plan);
}

static void
test_plan_off_and_errors(void **state)
{
	struct grgw_config	 cfg;
	struct policy_plan	 plan;
	char			 err[200];

	(void)state;
	compile_ok("[qos]\nenable = no\n", &cfg, &plan);
	assert_false(plan.enabled);
	assert_null(plan.ruleset);
	assert_int_equal(plan.n_classes, 0);
	policy_plan_free(&plan);

	/* No class enabled: only "default" (QoS off, for comparisons). */
	compile_ok("[qos]\nwan_rate = 4mbit\n[class rogers]\nenable = no\n"
	    "[class oam]\nenable = no\n[class chronos]\nenable = no\n"
	    "[class cassandra]\nenable = no\n", &cfg, &plan);
	assert_int_equal(plan.n_classes, 1);
	assert_int_equal(plan.classes[0].rate, 4000000);
	policy_plan_free(&plan);

	/* A struct that skipped the parser's checks is still refused. */
	parse_ok("[qos]\nwan_rate = 1mbit\n", &cfg);
	cfg.qos.classes[1].rate.percent = 100;
	assert_int_equal(policy_compile(&cfg, &plan, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "add up to more than wan_rate"));
	assert_null(plan.ruleset);
	parse_ok("", &cfg);
	cfg.qos.classes[1].dscp = 64;
	assert_int_equal(policy_compile(&cfg, &plan, err, sizeof(err)), -1);
	parse_ok("", &cfg);
	cfg.peer.n_prefixes = 0;
	assert_int_equal(policy_compile(&cfg, &plan, err, sizeof(err)), -1);
}

/* ---- record and counters ---------------------------------------------- */

static void
test_record_qdisc(void **state)
{
	static const char *const good[] = {
		"run qdisc ipsec0 htb 4210:",
		"run qdisc grgw0 htb 1:",
		"block qdisc wan0 htb ffff:",
	};
	static const char *const bad[] = {
		"run qdisc ipsec0 htb 4210:1", "run qdisc ipsec0 tbf 4210:",
		"run qdisc ipsec0 htb 0:", "run qdisc ipsec0 htb 10000:",
		"run qdisc ipsec0 htb 4210", "run qdisc a/b htb 1:",
		"run qdisc ipsec0 htb 4G10:", "run qdisc ipsec0 htb 01:",
		"run qdisc ipsec0 htb", "run qdisc ipsec0 htb 1: extra",
	};
	struct rec_obj	 o, p;
	char		 buf[REC_LINE_MAX], err[256];
	size_t		 i;

	(void)state;
	for (i = 0; i < nitems(good); i++) {
		assert_int_equal(rec_parse_line(good[i], &o, err,
		    sizeof(err)), 0);
		assert_int_equal(o.kind, REC_QDISC);
		assert_true(rec_format(&o, buf, sizeof(buf)) > 0);
		assert_string_equal(buf, good[i]);
		assert_int_equal(rec_parse_line(buf, &p, err, sizeof(err)), 0);
		assert_true(rec_same(&o, &p));
	}
	assert_int_equal(rec_parse_line(good[0], &o, err, sizeof(err)), 0);
	assert_int_equal(o.u.qdisc.handle, 0x42100000);
	assert_string_equal(o.u.qdisc.dev, "ipsec0");
	assert_int_equal(rec_parse_line(good[1], &p, err, sizeof(err)), 0);
	assert_false(rec_same(&o, &p));
	for (i = 0; i < nitems(bad); i++)
		assert_int_equal(rec_parse_line(bad[i], &o, err, sizeof(err)),
		    -1);
}

static const char LISTING[] =
	"table inet grgw-qos {\n"
	"\tcounter cls_rogers {\n"
	"\t\tpackets 12 bytes 3456\n"
	"\t}\n"
	"\tcounter \"cls_default\" {\n"
	"\t\tcomment \"unclassified\"\n"
	"\t\tpackets 18446744073709551615 bytes 0\n"
	"\t}\n"
	"\tcounter cls_other {\n"
	"\t\tpackets 1 bytes 2\n"
	"\t}\n"
	"}\n";

static void
test_counters_parse(void **state)
{
	const char *const names[] = { "cls_rogers", "cls_default", "cls_oam" };
	uint64_t	 pk[3], by[3];
	char		*copy;
	size_t		 len = strlen(LISTING), cut;
	int		 n;

	(void)state;
	memset(pk, 0xff, sizeof(pk));
	memset(by, 0xff, sizeof(by));
	pk[2] = by[2] = 7;
	n = gwnl_nft_counters_parse(LISTING, len, names, 3, pk, by);
	assert_int_equal(n, 2);
	assert_int_equal(pk[0], 12);
	assert_int_equal(by[0], 3456);
	assert_int_equal(pk[1], UINT64_MAX);
	assert_int_equal(by[1], 0);
	assert_int_equal(pk[2], 7);		/* absent: untouched */

	/* Cut at every byte: never reads past len, never invents a count. */
	for (cut = 0; cut <= len; cut++) {
		assert_non_null(copy = malloc(cut > 0 ? cut : 1));
		memcpy(copy, LISTING, cut);
		pk[0] = pk[1] = by[0] = by[1] = 0;
		n = gwnl_nft_counters_parse(copy, cut, names, 3, pk, by);
		assert_true(n >= 0 && n <= 2);
		assert_true(pk[0] == 0 || pk[0] == 1 || pk[0] == 12);
		free(copy);
	}
	/* Nonsense numbers are skipped. */
	n = gwnl_nft_counters_parse("counter cls_rogers { packets 1x bytes 2 "
	    "}\ncounter cls_oam { packets 99999999999999999999999 bytes 1 }",
	    90, names, 3, pk, by);
	assert_int_equal(n, 0);
	assert_int_equal(gwnl_nft_counters_parse(NULL, 0, names, 3, pk, by),
	    0);
}

/* `nft list counters` of every table: a name in two tables is one name
 * found (the last listing's numbers), never more names than asked for. */
static void
test_counters_parse_repeated(void **state)
{
	static const char listing[] =
		"table inet grgw-qos {\n"
		"\tcounter cls_voice {\n\t\tpackets 12 bytes 3456\n\t}\n"
		"}\n"
		"table ip other {\n"
		"\tcounter cls_voice {\n\t\tpackets 7 bytes 700\n\t}\n"
		"}\n";
	const char *const names[] = { "cls_voice" };
	const char	*many[GWNL_NFT_NAMES_MAX + 1];
	uint64_t	 pk[GWNL_NFT_NAMES_MAX + 1], by[GWNL_NFT_NAMES_MAX + 1];
	size_t		 i;

	(void)state;
	pk[0] = by[0] = 0;
	assert_int_equal(gwnl_nft_counters_parse(listing, strlen(listing),
	    names, 1, pk, by), 1);
	assert_int_equal(pk[0], 7);
	assert_int_equal(by[0], 700);

	for (i = 0; i < nitems(many); i++)
		many[i] = "cls_voice";
	assert_int_equal(gwnl_nft_counters_parse(listing, strlen(listing),
	    many, GWNL_NFT_NAMES_MAX, pk, by), 1);
	assert_int_equal(gwnl_nft_counters_parse(listing, strlen(listing),
	    many, GWNL_NFT_NAMES_MAX + 1, pk, by), -1);
}

/* ---- status ----------------------------------------------------------- */

static void
test_render(void **state)
{
	struct qos_view	 v;
	struct strbuf	 sb;

	(void)state;
	memset(&v, 0, sizeof(v));
	v.enabled = 1;
	v.classification = QOS_ON;
	v.shaping = QOS_ON;
	snprintf(v.status, sizeof(v.status), "classification on \"x\"");
	snprintf(v.interface, sizeof(v.interface), "ipsec0");
	v.wan_rate = 4000000;
	snprintf(v.leaf, sizeof(v.leaf), "pfifo");
	v.lan_gro = QOS_GRO_OFF;
	v.n_classes = 2;
	snprintf(v.classes[0].name, sizeof(v.classes[0].name), "rogers");
	v.classes[0].marks = 1;
	v.classes[0].dscp = 18;
	v.classes[0].priority = 1;
	v.classes[0].packets = 5;
	v.classes[0].bytes = 600;
	v.classes[0].drops = 2;
	v.classes[0].shaped = 1;
	snprintf(v.classes[1].name, sizeof(v.classes[1].name), "default");
	v.classes[1].priority = 7;

	strbuf_init(&sb);
	qos_render_json(&v, &sb);
	assert_false(sb.failed);
	assert_has(sb.s, "{\"enabled\":true,\"status\":\"classification on "
	    "\\\"x\\\"\",\"classification\":\"on\",\"shaping\":\"on\","
	    "\"interface\":\"ipsec0\",\"wan_rate\":4000000,"
	    "\"leaf_qdisc\":\"pfifo\",\"lan_gro\":\"off\",\"classes\":[");
	assert_has(sb.s, "{\"name\":\"rogers\",\"dscp\":\"AF21\","
	    "\"dscp_value\":18,\"priority\":1,\"rate\":0,\"ceil\":0,"
	    "\"packets\":5,\"bytes\":600,\"drops\":2,\"shaped\":true,");
	assert_has(sb.s, "{\"name\":\"default\",\"dscp\":null,"
	    "\"dscp_value\":null,\"priority\":7,");
	strbuf_free(&sb);

	strbuf_init(&sb);
	qos_render_text(&v, &sb);
	assert_has(sb.s, "  qos:        classification on \"x\"\n");
	assert_has(sb.s, "    rogers     AF21     1            5            "
	    "600        2\n");
	assert_has(sb.s, "    default    -        7");
	strbuf_free(&sb);

	strbuf_init(&sb);
	qos_render_metrics(&v, "site-a", &sb);
	assert_has(sb.s, "grgw_qos_class_packets_total{site=\"site-a\","
	    "class=\"rogers\"} 5\n");
	assert_has(sb.s, "grgw_qos_class_drops_total{site=\"site-a\","
	    "class=\"rogers\"} 2\n");
	assert_has(sb.s, "grgw_qos_shaping{site=\"site-a\"} 1\n");
	strbuf_free(&sb);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_qos_section),
		cmocka_unit_test(test_class_override),
		cmocka_unit_test(test_class_new),
		cmocka_unit_test(test_errors_qos),
		cmocka_unit_test(test_errors_class_header),
		cmocka_unit_test(test_errors_class_keys),
		cmocka_unit_test(test_errors_class_rates),
		cmocka_unit_test(test_errors_class_whole),
		cmocka_unit_test(test_errors_all_reported),
		cmocka_unit_test(test_dscp_codec),
		cmocka_unit_test(test_rate_codec),
		cmocka_unit_test(test_plan_marking_only),
		cmocka_unit_test(test_plan_shaping),
		cmocka_unit_test(test_plan_matches),
		cmocka_unit_test(test_plan_off_and_errors),
		cmocka_unit_test(test_record_qdisc),
		cmocka_unit_test(test_counters_parse),
		cmocka_unit_test(test_counters_parse_repeated),
		cmocka_unit_test(test_render),
	};

	log_init("test_policy", LOG_LVL_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
