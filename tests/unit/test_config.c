/*
 * Configuration parser, address helpers and pre-shared keys.
 *
 * Most tests start from BASE, a complete valid configuration with known
 * line numbers, replace one line, and check the exact "file:line:" prefix
 * of the message a user would see and that it names the key.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "grgw.h"
#include "config_text.h"

#define FN	"grgw.conf"

/* Line numbers matter: the tests below refer to them. */
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
	"\n"					/* 10 */
	"[peer]\n"				/* 11 */
	"name = site-b\n"			/* 12 */
	"address = 198.51.100.10\n"		/* 13 */
	"lan_address = 198.18.2.1\n"		/* 14 */
	"lan_address = 2001:db8:b::1\n"		/* 15 */
	"prefix = 198.18.2.0/24\n"		/* 16 */
	"prefix = 2001:db8:b::/64\n"		/* 17 */
	"\n"					/* 18 */
	"[auth]\n"				/* 19 */
	"psk_file = /etc/grgw/psk\n"		/* 20 */
	"\n"					/* 21 */
	"[dataplane]\n"				/* 22 */
	"mode = auto\n"				/* 23 */
	"\n"					/* 24 */
	"[daemon]\n"				/* 25 */
	"log_level = info\n";			/* 26 */

/* A valid key: 32 bytes of 0x00..0x1f. */
#define KEY32	"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

/* ---- helpers ---------------------------------------------------------- */

/* Feed text to a new parser (see config_text.h). */
static struct config_parser *
parse(const char *text, struct grgw_config *cfg, int *rc)
{
	return config_text_parse(FN, text, cfg, rc);
}

/* BASE with line `line` replaced by repl (which may hold several lines). */
static char *
base_with(unsigned int line, const char *repl)
{
	const char	*s = BASE, *start, *end;
	unsigned int	 n;
	char		*out;

	for (n = 1; n < line; n++) {
		s = strchr(s, '\n');
		assert_non_null(s);
		s++;
	}
	start = s;
	end = strchr(start, '\n');
	if (end == NULL)
		end = start + strlen(start);
	assert_true(asprintf(&out, "%.*s%s%s", (int)(start - BASE), BASE,
	    repl, end) != -1);
	return out;
}

/* Parse BASE with one line replaced; the parser must reject it. */
static struct config_parser *
parse_bad(unsigned int line, const char *repl)
{
	struct grgw_config	 cfg;
	struct config_parser	*p;
	char			*text = base_with(line, repl);
	int			 rc;

	p = parse(text, &cfg, &rc);
	free(text);
	if (rc != -1) {
		fprintf(stderr, "accepted line %u: %s\n", line, repl);
		fail();
	}
	return p;
}

/* Is there an error starting with `prefix` and containing every `want`? */
static int
find_error(const struct config_parser *p, const char *prefix,
    const char *want1, const char *want2)
{
	const char	*e;
	size_t		 i;

	for (i = 0; i < config_parse_error_count(p); i++) {
		e = config_parse_error(p, i);
		if (strncmp(e, prefix, strlen(prefix)) != 0)
			continue;
		if (want1 != NULL && strstr(e, want1) == NULL)
			continue;
		if (want2 != NULL && strstr(e, want2) == NULL)
			continue;
		return 1;
	}
	return 0;
}

static void
expect_error_at(const struct config_parser *p, const char *prefix,
    const char *w1, const char *w2, const char *file, int line)
{
	if (find_error(p, prefix, w1, w2))
		return;
	fprintf(stderr, "no error \"%s\" ... %s ... %s; have:\n", prefix,
	    w1 != NULL ? w1 : "", w2 != NULL ? w2 : "");
	dump_errors(p);
	_fail(file, line);
}

#define expect_error(p, prefix, w1, w2)					\
	expect_error_at((p), (prefix), (w1), (w2), __FILE__, __LINE__)

#define expect_count(p, n) do {						\
	if (config_parse_error_count(p) != (n)) {			\
		fprintf(stderr, "expected %d errors, have:\n", (int)(n));\
		dump_errors(p);						\
		fail();							\
	}								\
} while (0)

/* One replaced line, exactly one error with that prefix and words. */
static void
check_one(unsigned int line, const char *repl, const char *prefix,
    const char *w1, const char *w2)
{
	struct config_parser	*p = parse_bad(line, repl);

	expect_error(p, prefix, w1, w2);
	expect_count(p, 1);
	config_parse_free(p);
}

static char	 tmpdir[PATH_MAX];

static char *
tmp_path(const char *name)
{
	char	*path;

	assert_true(asprintf(&path, "%s/%s", tmpdir, name) != -1);
	return path;
}

/* Write a file under tmpdir with the given mode; returns its path. */
static char *
write_file(const char *name, const char *text, size_t len, mode_t mode)
{
	char	*path = tmp_path(name);
	int	 fd;

	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd != -1);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
	return path;
}

/* ---- valid configurations --------------------------------------------- */

static void
test_valid_psk(void **state)
{
	struct grgw_config	 cfg;
	struct config_parser	*p;
	char			 buf[64];
	int			 rc;

	p = parse(BASE, &cfg, &rc);
	if (rc != 0)
		dump_errors(p);
	assert_int_equal(rc, 0);
	expect_count(p, 0);
	config_parse_free(p);

	assert_string_equal(cfg.path, FN);
	assert_string_equal(cfg.site.name, "site-a");
	assert_string_equal(cfg.site.id, "site-a");
	assert_string_equal(cfg.site.wan_interface, "wan0");
	assert_string_equal(addr_fmt(&cfg.site.wan_address, buf, sizeof(buf)),
	    "192.0.2.10");
	assert_int_equal(cfg.site.n_lan_interfaces, 1);
	assert_string_equal(cfg.site.lan_interfaces[0], "lan0");
	assert_int_equal(cfg.site.n_lan_addresses, 2);
	assert_string_equal(addr_fmt(&cfg.site.lan_addresses[0], buf,
	    sizeof(buf)), "198.18.1.1");
	assert_string_equal(addr_fmt(&cfg.site.lan_addresses[1], buf,
	    sizeof(buf)), "2001:db8:a::1");
	assert_int_equal(cfg.site.n_prefixes, 2);
	assert_string_equal(prefix_fmt(&cfg.site.prefixes[0], buf,
	    sizeof(buf)), "198.18.1.0/24");
	assert_string_equal(prefix_fmt(&cfg.site.prefixes[1], buf,
	    sizeof(buf)), "2001:db8:a::/64");

	assert_string_equal(cfg.peer.name, "site-b");
	assert_string_equal(cfg.peer.id, "site-b");
	assert_string_equal(addr_fmt(&cfg.peer.wan_address, buf, sizeof(buf)),
	    "198.51.100.10");
	assert_int_equal(cfg.peer.n_lan_addresses, 2);
	assert_int_equal(cfg.peer.n_prefixes, 2);
	assert_string_equal(prefix_fmt(&cfg.peer.prefixes[1], buf,
	    sizeof(buf)), "2001:db8:b::/64");
	assert_int_equal(cfg.peer.n_lan_interfaces, 0);

	assert_int_equal(cfg.auth, GRGW_AUTH_PSK);
	assert_string_equal(cfg.psk_file, "/etc/grgw/psk");
	assert_string_equal(cfg.cert_file, "");
	assert_int_equal(cfg.dataplane, GRGW_DP_AUTO);
	assert_int_equal(cfg.log_level, LOG_LVL_INFO);
}

static void
test_valid_cert_ipv6(void **state)
{
	static const char text[] =
	    "[site]\n"
	    "name = gw1.east\n"
	    "id = gw1@east.example\n"
	    "wan_interface = eth0.100\n"
	    "wan_address = 2001:db8:ffff::10\n"
	    "lan_interface = eth1\n"
	    "lan_interface = eth2\n"
	    "lan_address = 2001:db8:a::1\n"
	    "prefix = 2001:db8:a::/64\n"
	    "prefix = 2001:db8:c::/48\n"
	    "[peer]\n"
	    "name = gw1.west\n"
	    "id = CN=gw1.west\n"
	    "address = 2001:db8:eeee::10\n"
	    "lan_address = 2001:db8:b::1\n"
	    "prefix = 2001:db8:b::/64\n"
	    "[auth]\n"
	    "certificate = /etc/grgw/east.crt\n"
	    "private_key = /etc/grgw/east.key\n"
	    "ca = /etc/grgw/ca.crt\n"
	    "[dataplane]\n"
	    "mode = kernel\n"
	    "interface = ipsec-west\n"
	    "if_id = 0x2a\n"
	    "table = 1000\n"
	    "mtu = 9000\n"
	    "[daemon]\n"
	    "run_dir = /var/run/grgw\n"
	    "charon = /usr/libexec/ipsec/charon\n"
	    "log_level = debug\n"
	    "[probe]\n"
	    "key_file = /etc/grgw/probe.key\n";
	struct grgw_config	 cfg;
	struct config_parser	*p;
	char			 buf[64];
	int			 rc;

	p = parse(text, &cfg, &rc);
	if (rc != 0)
		dump_errors(p);
	assert_int_equal(rc, 0);
	config_parse_free(p);

	assert_string_equal(cfg.site.id, "gw1@east.example");
	assert_string_equal(cfg.peer.id, "CN=gw1.west");
	assert_string_equal(cfg.site.wan_interface, "eth0.100");
	assert_int_equal(cfg.site.n_lan_interfaces, 2);
	assert_string_equal(cfg.site.lan_interfaces[1], "eth2");
	assert_int_equal(cfg.site.wan_address.family, AF_INET6);
	assert_string_equal(prefix_fmt(&cfg.site.prefixes[1], buf,
	    sizeof(buf)), "2001:db8:c::/48");
	assert_int_equal(cfg.auth, GRGW_AUTH_CERT);
	assert_string_equal(cfg.cert_file, "/etc/grgw/east.crt");
	assert_string_equal(cfg.key_file, "/etc/grgw/east.key");
	assert_string_equal(cfg.ca_file, "/etc/grgw/ca.crt");
	assert_string_equal(cfg.probe.key_file, "/etc/grgw/probe.key");
	assert_string_equal(cfg.psk_file, "");
	assert_int_equal(cfg.dataplane, GRGW_DP_KERNEL);
	assert_string_equal(cfg.xfrm_interface, "ipsec-west");
	assert_int_equal(cfg.if_id, 42);
	assert_int_equal(cfg.table, 1000);
	assert_int_equal(cfg.mtu, 9000);
	assert_string_equal(cfg.run_dir, "/var/run/grgw");
	assert_string_equal(cfg.charon_path, "/usr/libexec/ipsec/charon");
	assert_int_equal(cfg.log_level, LOG_LVL_DEBUG);
	config_site_dir(&cfg, buf, sizeof(buf));
	assert_string_equal(buf, "/var/run/grgw/gw1.east");
}

static void
test_defaults(void **state)
{
	struct grgw_config	 cfg;
	struct config_parser	*p;
	char			*text;
	char			 buf[PATH_MAX];
	int			 rc;

	/* BASE without the optional [dataplane] and [daemon] sections. */
	text = base_with(21, "");
	text[strlen(text) - strlen(strstr(text, "\n\n[dataplane]"))] = '\0';
	p = parse(text, &cfg, &rc);
	free(text);
	if (rc != 0)
		dump_errors(p);
	assert_int_equal(rc, 0);
	config_parse_free(p);

	assert_string_equal(cfg.site.id, "site-a");
	assert_string_equal(cfg.peer.id, "site-b");
	assert_int_equal(cfg.dataplane, GRGW_DP_AUTO);
	assert_string_equal(cfg.xfrm_interface, GRGW_DEFAULT_XFRM_IF);
	assert_int_equal(cfg.if_id, GRGW_DEFAULT_IF_ID);
	assert_int_equal(cfg.table, GRGW_DEFAULT_TABLE);
	assert_int_equal(cfg.mtu, GRGW_DEFAULT_MTU);
	assert_string_equal(cfg.run_dir, GRGW_DEFAULT_RUN_DIR);
	assert_string_equal(cfg.charon_path, GRGW_DEFAULT_CHARON);
	assert_int_equal(cfg.log_level, LOG_LVL_INFO);
	config_site_dir(&cfg, buf, sizeof(buf));
	assert_string_equal(buf, GRGW_DEFAULT_RUN_DIR "/site-a");
	assert_string_equal(config_dataplane_name(cfg.dataplane), "auto");
	assert_string_equal(config_dataplane_name(GRGW_DP_KERNEL), "kernel");
	assert_string_equal(config_dataplane_name(GRGW_DP_LIBIPSEC),
	    "libipsec");
}

static void
test_comments_and_whitespace(void **state)
{
	static const char text[] =
	    "# grgw configuration\n"
	    "   # indented comment\n"
	    "\t\n"
	    "  [ site ]   # this site\n"
	    "name=site-a\n"
	    "\twan_interface   =   wan0   \n"
	    "wan_address = 192.0.2.10\t# public side\n"
	    "lan_interface = lan0\n"
	    "lan_address = 198.18.1.1\n"
	    "prefix = 198.18.1.0/24 # the LAN\n"
	    "[peer]\n"
	    "name = site-b\n"
	    "address = 198.51.100.10\n"
	    "lan_address = 198.18.2.1\n"
	    "prefix = 198.18.2.0/24\n"
	    "[auth]\n"
	    "psk_file = /etc/grgw/key#1   # '#' inside a value stays\n"
	    "[daemon]\n"
	    "# UTF-8 comment: \xc3\xa9t\xc3\xa9 \xe2\x86\x92 "
	    "\xf0\x9f\x94\x92\n"
	    "run_dir = /run/grgw\n";
	struct grgw_config	 cfg;
	struct config_parser	*p;
	int			 rc;

	p = parse(text, &cfg, &rc);
	if (rc != 0)
		dump_errors(p);
	assert_int_equal(rc, 0);
	config_parse_free(p);
	assert_string_equal(cfg.site.name, "site-a");
	assert_string_equal(cfg.site.wan_interface, "wan0");
	assert_string_equal(cfg.psk_file, "/etc/grgw/key#1");
	assert_int_equal(cfg.site.n_prefixes, 1);
}

static void
test_crlf(void **state)
{
	struct grgw_config	 cfg;
	struct config_parser	*p;
	char			*text, *o;
	const char		*s;
	int			 rc;

	text = malloc(sizeof(BASE) * 2);
	assert_non_null(text);
	for (s = BASE, o = text; *s != '\0'; s++) {
		if (*s == '\n')
			*o++ = '\r';
		*o++ = *s;
	}
	*o = '\0';
	p = parse(text, &cfg, &rc);
	free(text);
	if (rc != 0)
		dump_errors(p);
	assert_int_equal(rc, 0);
	config_parse_free(p);
	assert_string_equal(cfg.peer.name, "site-b");
}

/*
 * The parser only sees (pointer, length): lines cut out of a larger buffer
 * that continues with junk must parse as if the junk were not there.
 */
static void
test_lines_not_terminated(void **state)
{
	static const char *const lines[] = {
		"[site]", "name = site-a", "wan_interface = wan0",
		"wan_address = 192.0.2.10", "lan_interface = lan0",
		"lan_address = 198.18.1.1", "prefix = 198.18.1.0/24",
		"[peer]", "name = site-b", "address = 198.51.100.10",
		"lan_address = 198.18.2.1", "prefix = 198.18.2.0/24",
		"[auth]", "psk_file = /etc/grgw/psk",
	};
	struct config_parser	*p;
	struct grgw_config	 cfg;
	char			 buf[256];
	size_t			 i, len;

	p = config_parse_new(FN);
	assert_non_null(p);
	for (i = 0; i < nitems(lines); i++) {
		/* The line, then garbage that would change its meaning. */
		len = strlen(lines[i]);
		memset(buf, 'X', sizeof(buf));
		memcpy(buf + 10, lines[i], len);
		memcpy(buf + 10 + len, "9/ ]#=\xff", 7);
		assert_int_equal(config_parse_line(p, buf + 10, len), 0);
	}
	assert_int_equal(config_parse_finish(p, &cfg), 0);
	config_parse_free(p);
	assert_string_equal(cfg.site.name, "site-a");
	assert_string_equal(cfg.psk_file, "/etc/grgw/psk");
	assert_int_equal(cfg.site.prefixes[0].len, 24);

	/* A length of zero is an empty line, whatever the pointer holds. */
	p = config_parse_new(FN);
	assert_int_equal(config_parse_line(p, "garbage", 0), 0);
	assert_int_equal(config_parse_line(p, NULL, 0), 0);
	assert_int_equal(config_parse_line(p, "[site]", 6), 0);
	/* A line cut in the middle of a word is what it is. */
	assert_int_equal(config_parse_line(p, "name = site-abc", 13), 0);
	assert_int_equal(config_parse_line(p, "wan_interface = wan0", 20), 0);
	assert_int_equal(config_parse_line(p, "wan_interface = wan0", 20), -1);
	expect_error(p, FN ":6: duplicate key wan_interface in [site]",
	    "first set on line 5", NULL);
	expect_count(p, 1);
	config_parse_free(p);
}

/* ---- errors, one class at a time -------------------------------------- */

static void
test_prefix_host_bits(void **state)
{
	struct config_parser	*p = parse_bad(8, "prefix = 198.18.1.1/24");

	assert_string_equal(config_parse_error(p, 0), FN ":8: prefix "
	    "\"198.18.1.1/24\" has host bits set; expected a network address "
	    "such as 198.18.1.0/24");
	expect_count(p, 1);
	config_parse_free(p);

	check_one(17, "prefix = 2001:db8:b::1/64", FN ":17: prefix "
	    "\"2001:db8:b::1/64\" has host bits set",
	    "such as 2001:db8:b::/64", NULL);
}

static void
test_prefix_syntax(void **state)
{
	static const struct {
		const char *line, *why;
	} cases[] = {
		{ "prefix = 198.18.1.0", "has no /length" },
		{ "prefix = 198.18.1.0/33", "from 0 to 32" },
		{ "prefix = 2001:db8:a::/129", "from 0 to 128" },
		{ "prefix = 198.18.1.0/", "from 0 to 32" },
		{ "prefix = 198.18.1.0/024", "from 0 to 32" },
		{ "prefix = 198.18.1.0/+24", "from 0 to 32" },
		{ "prefix = 198.18.1.0/24x", "from 0 to 32" },
		{ "prefix = 198.18.1.0/24 x", "from 0 to 32" },
		{ "prefix = 198.18.1/24", "does not start with an IP address" },
		{ "prefix = lan.example/24", "does not start with an IP" },
		{ "prefix = /24", "does not start with an IP address" },
		{ "prefix = 198.18.1.0/24/24", "from 0 to 32" },
	};
	size_t	 i;

	for (i = 0; i < nitems(cases); i++)
		check_one(8, cases[i].line, FN ":8: prefix \"", cases[i].why,
		    "expected a network in CIDR notation");
}

static void
test_unknown_key(void **state)
{
	check_one(3, "wan_interface = wan0\nwan_iface = wan0",
	    FN ":4: unknown key \"wan_iface\" "
	    "in [site]; expected one of: name, id, wan_interface, wan_address, "
	    "lan_interface, lan_address, prefix", NULL, NULL);
	/* Keys are case sensitive. */
	check_one(23, "Mode = auto", FN ":23: unknown key \"Mode\" in "
	    "[dataplane]", "mode", NULL);
}

static void
test_key_in_wrong_section(void **state)
{
	struct config_parser	*p;

	check_one(13, "address = 198.51.100.10\nwan_interface = eth0",
	    FN ":14: unknown key \"wan_interface\" in [peer] (it belongs in "
	    "[site]); expected one of: name, id, address, lan_address, "
	    "prefix", NULL, NULL);

	p = parse_bad(13, "address = 198.51.100.10\nlan_interface = eth1");
	expect_error(p, FN ":14: unknown key \"lan_interface\" in [peer]",
	    "belongs in [site]", NULL);
	config_parse_free(p);
}

static void
test_unknown_section(void **state)
{
	struct config_parser	*p;

	/* Keys below an unknown header are not reported one by one. */
	p = parse_bad(21, "[tunnel]\nfoo = bar\nbaz = 1");
	expect_error(p, FN ":21: unknown section \"[tunnel]\"; expected one "
	    "of [site], [peer], [auth], [dataplane], [daemon], [qos], "
	    "[class NAME]", NULL, NULL);
	expect_count(p, 1);
	config_parse_free(p);

	check_one(22, "[dataplane", FN ":22: section header \"[dataplane\" "
	    "does not end with ']'", NULL, NULL);
	check_one(22, "[]", FN ":22: unknown section \"[]\"", NULL, NULL);
}

static void
test_key_outside_section(void **state)
{
	struct grgw_config	 cfg;
	struct config_parser	*p;
	char			*text;
	int			 rc;

	assert_true(asprintf(&text, "log_level = debug\n%s", BASE) != -1);
	p = parse(text, &cfg, &rc);
	free(text);
	assert_int_equal(rc, -1);
	expect_error(p, FN ":1: key \"log_level\" is outside any section; "
	    "expected a section header such as [site] before it", NULL, NULL);
	expect_count(p, 1);
	config_parse_free(p);
}

static void
test_duplicate_key(void **state)
{
	check_one(4, "wan_address = 192.0.2.10\nwan_address = 192.0.2.11",
	    FN ":5: duplicate key wan_address in [site] (first set on line "
	    "4); expected it once", NULL, NULL);
	check_one(23, "mode = auto\nmode = auto", FN ":24: duplicate key mode "
	    "in [dataplane] (first set on line 23)", NULL, NULL);
	/* Repeatable keys are not duplicates. */
	check_one(5, "lan_interface = lan0\nlan_interface = lan0",
	    FN ":6: lan_interface \"lan0\" is listed twice (first on line 5)",
	    NULL, NULL);
}

static void
test_duplicate_section(void **state)
{
	struct config_parser	*p;

	p = parse_bad(21, "[site]\nname = again");
	expect_error(p, FN ":21: section [site] appears again (first on line "
	    "1)", NULL, NULL);
	expect_error(p, FN ":22: duplicate key name in [site] (first set on "
	    "line 2)", NULL, NULL);
	expect_count(p, 2);
	config_parse_free(p);
}

static void
test_missing_keys(void **state)
{
	struct config_parser	*p;
	struct grgw_config	 cfg;
	char			*text;
	int			 rc;

	/* A key missing from a section cites the section header. */
	check_one(2, "", FN ":1: [site] name is missing; expected a "
	    "\"name = ...\" line with a site name", NULL, NULL);
	p = parse_bad(13, "");
	expect_error(p, FN ":11: [peer] address is missing", NULL, NULL);
	config_parse_free(p);

	/* Both lan_address lines gone: "at least one". */
	text = base_with(6, "");
	assert_non_null(strstr(text, "lan_address = 2001:db8:a::1\n"));
	memcpy(strstr(text, "lan_address = 2001:db8:a::1\n"), "#", 1);
	p = parse(text, &cfg, &rc);
	free(text);
	assert_int_equal(rc, -1);
	expect_error(p, FN ":1: [site] lan_address is missing; expected at "
	    "least one \"lan_address = ...\" line", NULL, NULL);
	expect_count(p, 1);
	config_parse_free(p);

	/* A section that is absent altogether: no line number at all. */
	text = base_with(11, "[daemon]");
	p = parse(text, &cfg, &rc);
	free(text);
	assert_int_equal(rc, -1);
	expect_error(p, FN ": [peer] name is missing", NULL, NULL);
	expect_error(p, FN ": [peer] address is missing", NULL, NULL);
	expect_error(p, FN ": [peer] lan_address is missing", NULL, NULL);
	expect_error(p, FN ": [peer] prefix is missing", NULL, NULL);
	config_parse_free(p);
}

static void
test_empty_config(void **state)
{
	struct config_parser	*p;
	struct grgw_config	 cfg;
	int			 rc;

	memset(&cfg, 0xa5, sizeof(cfg));
	p = parse("", &cfg, &rc);
	assert_int_equal(rc, -1);
	/* 6 [site] keys, 4 [peer] keys, the [auth] method. */
	expect_count(p, 11);
	expect_error(p, FN ": [site] wan_interface is missing", NULL, NULL);
	expect_error(p, FN ": [auth] has no authentication method; expected "
	    "psk_file = PATH, or certificate, private_key and ca", NULL, NULL);
	/* Nothing half-parsed leaks out on failure. */
	assert_string_equal(cfg.site.name, "");
	assert_int_equal(cfg.site.n_prefixes, 0);
	config_parse_free(p);
}

static void
test_bad_names(void **state)
{
	static const char *const bad[] = {
		"-site", ".site", "_site", "site a", "site/a", "site\xc3\xa9",
		"s!te",
		"a12345678901234567890123456789"
		    "0123456789012345678901234567890123",
	};
	char	*line;
	size_t	 i;

	for (i = 0; i < nitems(bad); i++) {
		assert_true(asprintf(&line, "name = %s", bad[i]) != -1);
		check_one(2, line, FN ":2: name \"", "expected a site name",
		    NULL);
		free(line);
	}
	check_one(12, "name = site-a", FN ":12: [peer] name \"site-a\" is "
	    "the [site] name too (line 2)", NULL, NULL);
	check_one(12, "name = site-b\nid = site-a", FN ":13: [peer] id "
	    "\"site-a\" is the [site] id too (line 2)", NULL, NULL);
	check_one(2, "name = site-a\nid = two words", FN ":3: id \"two "
	    "words\" contains a space", "expected an IKE identity", NULL);
	/* An identity that matches anyone is no identity. */
	check_one(12, "name = site-b\nid = %any", FN ":13: id \"%any\" "
	    "matches any peer", "expected an IKE identity", NULL);
	check_one(12, "name = site-b\nid = *.example.org", FN ":13: id "
	    "\"*.example.org\" matches any peer", NULL, NULL);
	check_one(12, "name = site-b\nid = *", FN ":13: id \"*\" matches "
	    "any peer (a wildcard)", "expected an IKE identity", NULL);
	check_one(12, "name = site-b\nid = %any4", FN ":13: id \"%any4\" "
	    "matches any peer", NULL, NULL);
	check_one(2, "name = site-a\nid = %any6", FN ":3: id \"%any6\" "
	    "matches any peer", NULL, NULL);
}

static void
test_bad_interfaces(void **state)
{
	static const char *const bad[] = {
		"wan_interface = eth0123456789abc", "wan_interface = eth/0",
		"wan_interface = eth:0", "wan_interface = .",
		"wan_interface = e th0", "wan_interface = eth0\xc3\xa9",
		/* Names are pasted into nftables scripts: nothing that
		 * could end a string or a block. */
		"wan_interface = w\"an", "wan_interface = x\"}};flush",
		"wan_interface = a;b", "wan_interface = a{b",
	};
	size_t	 i;

	for (i = 0; i < nitems(bad); i++)
		check_one(3, bad[i], FN ":3: wan_interface \"",
		    "expected an interface name", NULL);
	check_one(5, "lan_interface = x\"}};flush", FN ":5: lan_interface "
	    "\"x\\\"}};flush\" is not an interface name", NULL, NULL);
	check_one(5, "lan_interface = 123456789012345678",
	    FN ":5: lan_interface \"", "longer than 15", NULL);
	check_one(23, "interface = wan0", FN ":23: [dataplane] interface "
	    "\"wan0\" is also the [site] wan_interface (line 3)", NULL, NULL);
	check_one(5, "lan_interface = grgw0", FN ":5: [dataplane] interface "
	    "\"grgw0\" is also a [site] lan_interface (line 5)", NULL, NULL);
}

static void
test_bad_addresses(void **state)
{
	static const struct {
		const char *value, *why;
	} cases[] = {
		{ "192.0.2.300", "is not an IP address" },
		{ "192.0.2", "is not an IP address" },
		{ "192.0.2.010", "is not an IP address" },
		{ "gw.example.net", "host names are not resolved" },
		{ "192.0.2.10 192.0.2.11", "is not an IP address" },
		{ "192.0.2.10/32", "is not an IP address" },
		{ "fe80::1%eth0", "is not an IP address" },
		{ "0.0.0.0", "unspecified" },
		{ "::", "unspecified" },
		{ "127.0.0.1", "loopback" },
		{ "::1", "loopback" },
		{ "224.0.0.5", "multicast" },
		{ "ff02::1", "multicast" },
		{ "255.255.255.255", "broadcast" },
		{ "::ffff:192.0.2.10", "IPv4-mapped" },
	};
	char	*line;
	size_t	 i;

	for (i = 0; i < nitems(cases); i++) {
		assert_true(asprintf(&line, "wan_address = %s",
		    cases[i].value) != -1);
		check_one(4, line, FN ":4: wan_address \"", cases[i].why,
		    "expected this gateway's unicast");
		free(line);
	}
}

static void
test_lan_address_rules(void **state)
{
	check_one(6, "lan_address = 198.18.3.1", FN ":6: [site] lan_address "
	    "198.18.3.1 is not inside any [site] prefix; expected an address "
	    "in 198.18.1.0/24 or 2001:db8:a::/64", NULL, NULL);
	check_one(15, "lan_address = 2001:db8:a::2", FN ":15: [peer] "
	    "lan_address 2001:db8:a::2 is not inside any [peer] prefix",
	    "2001:db8:b::/64", NULL);
	check_one(7, "lan_address = 198.18.1.2", FN ":7: lan_address "
	    "\"198.18.1.2\" is a second IPv4 address in [site] (the first is "
	    "on line 6); expected at most one IPv4 and one IPv6 lan_address",
	    NULL, NULL);
}

static void
test_overlap(void **state)
{
	check_one(16, "prefix = 198.18.2.0/24\nprefix = 198.18.1.128/25",
	    FN ":17: [peer] prefix "
	    "198.18.1.128/25 overlaps [site] prefix 198.18.1.0/24 (line 8); "
	    "expected the two sites to use separate networks", NULL, NULL);
	check_one(17, "prefix = 2001:db8::/32", FN ":17: [peer] prefix "
	    "2001:db8::/32 overlaps [site] prefix 2001:db8:a::/64 (line 9)",
	    NULL, NULL);
	/* Within one side too. */
	check_one(9, "prefix = 2001:db8:a::/64\nprefix = 198.18.1.0/25",
	    FN ":10: [site] prefix 198.18.1.0/25 overlaps [site] prefix "
	    "198.18.1.0/24 (line 8)",
	    "expected each network once", NULL);
}

static void
test_wan_rules(void **state)
{
	check_one(13, "address = 2001:db8:ffff::b", FN ":13: [peer] address "
	    "2001:db8:ffff::b is IPv6 but [site] wan_address 192.0.2.10 (line "
	    "4) is IPv4; expected both WAN addresses in the same family",
	    NULL, NULL);
	check_one(13, "address = 192.0.2.10", FN ":13: [peer] address "
	    "192.0.2.10 is the [site] wan_address too (line 4)", NULL, NULL);
	check_one(4, "wan_address = 198.18.2.99", FN ":4: [site] wan_address "
	    "198.18.2.99 is inside [peer] prefix 198.18.2.0/24 (line 16); "
	    "expected a WAN address outside the networks the tunnel carries",
	    NULL, NULL);
	check_one(13, "address = 198.18.1.99", FN ":13: [peer] address "
	    "198.18.1.99 is inside [site] prefix 198.18.1.0/24 (line 8)",
	    NULL, NULL);
}

static void
test_auth_rules(void **state)
{
	struct config_parser	*p;

	check_one(20, "psk_file = /etc/grgw/psk\ncertificate = /etc/a.crt",
	    FN ":21: [auth] has both psk_file (line 20) and certificate "
	    "settings (line 21); expected either psk_file alone, or "
	    "certificate, private_key and ca", NULL, NULL);
	check_one(20, "", FN ":19: [auth] has no authentication method",
	    NULL, NULL);
	check_one(20, "psk_file = etc/grgw/psk", FN ":20: psk_file "
	    "\"etc/grgw/psk\" is not an absolute path; expected an absolute "
	    "path such as /etc/grgw/psk", NULL, NULL);
	check_one(20, "psk_file = /etc/grgw/my psk", FN ":20: psk_file "
	    "\"/etc/grgw/my psk\" contains whitespace", NULL, NULL);
	check_one(20, "psk_file =", FN ":20: psk_file has no value; "
	    "expected an absolute path", NULL, NULL);

	p = parse_bad(20, "certificate = /etc/grgw/a.crt");
	expect_error(p, FN ":19: [auth] private_key is missing; expected "
	    "certificate, private_key and ca together", NULL, NULL);
	expect_error(p, FN ":19: [auth] ca is missing", NULL, NULL);
	expect_count(p, 2);
	config_parse_free(p);

	check_one(20, "psk_file = /etc/grgw/psk\npsk = /x", FN ":21: unknown "
	    "key \"psk\" in [auth]; expected one of: psk_file, psk_next_file, "
	    "certificate, private_key, ca", NULL, NULL);
}

static void
test_peer_probes(void **state)
{
	static const char certs[] = "certificate = /etc/grgw/a.crt\n"
	    "private_key = /etc/grgw/a.key\nca = /etc/grgw/ca.crt";
	struct grgw_config	 cfg;
	struct config_parser	*p;
	char			*text, *icmp;
	const char		*at;
	int			 rc;

	/* Default: grgw's own probes. */
	p = parse(BASE, &cfg, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(cfg.probe.method, GRGW_PROBES_GRGW);
	config_parse_free(p);
	assert_string_equal(config_probes_name(GRGW_PROBES_GRGW), "grgw");

	text = base_with(17, "prefix = 2001:db8:b::/64\nprobes = icmp");
	p = parse(text, &cfg, &rc);
	free(text);
	assert_int_equal(rc, 0);
	assert_int_equal(cfg.probe.method, GRGW_PROBES_ICMP);
	assert_string_equal(config_probes_name(cfg.probe.method), "icmp");
	config_parse_free(p);

	text = base_with(17, "prefix = 2001:db8:b::/64\nprobes = off");
	p = parse(text, &cfg, &rc);
	free(text);
	assert_int_equal(rc, 0);
	assert_int_equal(cfg.probe.method, GRGW_PROBES_OFF);
	assert_string_equal(config_probes_name(cfg.probe.method), "off");
	config_parse_free(p);

	check_one(17, "prefix = 2001:db8:b::/64\nprobes = ping",
	    FN ":18: probes \"ping\" is not one of the choices; expected "
	    "grgw (the peer runs grgw), icmp", NULL, NULL);
	check_one(17, "prefix = 2001:db8:b::/64\nprobes = ICMP",
	    FN ":18: probes \"ICMP\" is not one of the choices", NULL, NULL);
	check_one(17, "prefix = 2001:db8:b::/64\nprobes =",
	    FN ":18: probes has no value", NULL, NULL);
	check_one(17, "prefix = 2001:db8:b::/64\nprobes = icmp\n"
	    "probes = off", FN ":19: duplicate key", NULL, NULL);
	check_one(26, "log_level = info\nprobes = icmp",
	    FN ":27: unknown key \"probes\" in [daemon]", NULL, NULL);

	/*
	 * With certificates, a probe key file is needed for grgw's probes
	 * only: ICMP echo and no probes at all authenticate nothing.
	 */
	p = parse_bad(20, certs);
	expect_error(p, FN ":19: [probe] key_file is missing", "probes = grgw",
	    NULL);
	expect_count(p, 1);
	config_parse_free(p);
	text = base_with(20, certs);
	at = strstr(text, "prefix = 2001:db8:b::/64\n");
	assert_non_null(at);
	assert_true(asprintf(&icmp, "%.*sprobes = icmp\n%s",
	    (int)(at - text), text, at) != -1);
	free(text);
	p = parse(icmp, &cfg, &rc);
	free(icmp);
	if (rc != 0)
		dump_errors(p);
	assert_int_equal(rc, 0);
	assert_int_equal(cfg.auth, GRGW_AUTH_CERT);
	assert_string_equal(cfg.probe.key_file, "");
	config_parse_free(p);
}

static void
test_dataplane_values(void **state)
{
	static const struct {
		const char *line;
		int ok;
		uint32_t want;
	} cases[] = {
		{ "if_id = 1", 1, 1 },
		{ "if_id = 4294967294", 1, 4294967294u },
		{ "if_id = 0xfffffffe", 1, 0xfffffffe },
		{ "if_id = 0XFF", 1, 255 },
		{ "if_id = 0", 0, 0 },
		{ "if_id = 4294967295", 0, 0 },
		{ "if_id = 99999999999999999999", 0, 0 },
		{ "if_id = 0x100000000", 0, 0 },
		{ "if_id = -1", 0, 0 },
		{ "if_id = +5", 0, 0 },
		{ "if_id = 010", 0, 0 },
		{ "if_id = 0x", 0, 0 },
		{ "if_id = 1e3", 0, 0 },
		{ "if_id = 12 34", 0, 0 },
		{ "table = 256", 1, 256 },
		{ "table = 32764", 1, 32764 },
		{ "table = 32765", 0, 0 },
		{ "table = 2147483632", 0, 0 },
		{ "table = 255", 0, 0 },
		{ "table = 254", 0, 0 },
		{ "table = 220", 0, 0 },
		{ "mtu = 1280", 1, 1280 },
		{ "mtu = 9000", 1, 9000 },
		{ "mtu = 1279", 0, 0 },
		{ "mtu = 9001", 0, 0 },
		{ "mtu = 1400abc", 0, 0 },
		{ "mtu = 1400.0", 0, 0 },
	};
	struct grgw_config	 cfg;
	struct config_parser	*p;
	char			*text, key[16];
	size_t			 i;
	int			 rc;
	uint32_t		 got;

	for (i = 0; i < nitems(cases); i++) {
		text = base_with(23, cases[i].line);
		p = parse(text, &cfg, &rc);
		free(text);
		snprintf(key, sizeof(key), "%.*s", (int)strcspn(cases[i].line,
		    " "), cases[i].line);
		if (cases[i].ok) {
			if (rc != 0) {
				fprintf(stderr, "refused %s\n", cases[i].line);
				dump_errors(p);
				fail();
			}
			got = strcmp(key, "if_id") == 0 ? cfg.if_id :
			    strcmp(key, "table") == 0 ? cfg.table : cfg.mtu;
			assert_int_equal(got, cases[i].want);
		} else {
			if (rc != -1) {
				fprintf(stderr, "accepted %s\n", cases[i].line);
				fail();
			}
			expect_error(p, FN ":23: ", key, "expected an integer");
			expect_count(p, 1);
		}
		config_parse_free(p);
	}

	check_one(23, "mode = fast", FN ":23: mode \"fast\" is not one of "
	    "the choices; expected auto, kernel or libipsec", NULL, NULL);
	check_one(23, "mode = Kernel", FN ":23: mode \"Kernel\"", NULL, NULL);
	check_one(23, "mode = kernel x", FN ":23: mode \"kernel x\"", NULL,
	    NULL);
	check_one(23, "interface = grgw0 x", FN ":23: interface \"grgw0 x\"",
	    "expected an interface name", NULL);

	text = base_with(23, "mode = libipsec");
	p = parse(text, &cfg, &rc);
	free(text);
	assert_int_equal(rc, 0);
	assert_int_equal(cfg.dataplane, GRGW_DP_LIBIPSEC);
	config_parse_free(p);
}

/* BASE and an [ipsec] section (its lines are 29 on). */
static struct config_parser *
parse_ipsec(const char *lines, struct grgw_config *cfg, int *rc)
{
	struct config_parser	*p;
	char			*text;

	assert_true(asprintf(&text, "%s\n[ipsec]\n%s", BASE, lines) != -1);
	p = parse(text, cfg, rc);
	free(text);
	return p;
}

static void
test_ipsec_lifetimes(void **state)
{
	static const struct {
		const char	*in;
		int		 rc;
		uint32_t	 want;
	} durations[] = {
		{ "90", 0, 90 }, { "90s", 0, 90 }, { "30m", 0, 1800 },
		{ "4h", 0, 14400 }, { "1d", 0, 86400 }, { "0", 0, 0 },
		{ "", -1, 0 }, { "s", -1, 0 }, { "4x", -1, 0 },
		{ "-1", -1, 0 }, { "1.5h", -1, 0 }, { "4 h", -1, 0 },
		{ "h4", -1, 0 }, { "4294967295", 0, 4294967295u },
		{ "4294967296", -2, 0 }, { "49711d", -2, 0 },
		{ "99999999999999999999d", -2, 0 },
	};
	struct grgw_config	 cfg;
	struct config_parser	*p;
	uint32_t		 v;
	size_t			 i;
	int			 rc;

	for (i = 0; i < nitems(durations); i++) {
		v = 0;
		rc = config_parse_duration(durations[i].in, &v);
		if (rc != durations[i].rc)
			fprintf(stderr, "%s: %d\n", durations[i].in, rc);
		assert_int_equal(rc, durations[i].rc);
		if (rc == 0)
			assert_int_equal(v, durations[i].want);
	}

	/* Defaults: 4 h and 1 h, lifetimes a tenth more. */
	p = parse_ipsec("", &cfg, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(cfg.ipsec.ike_rekey_s, 14400);
	assert_int_equal(cfg.ipsec.ike_life_s, 15840);
	assert_int_equal(cfg.ipsec.child_rekey_s, 3600);
	assert_int_equal(cfg.ipsec.child_life_s, 3960);
	assert_int_equal(cfg.cert_warn_days, 30);
	config_parse_free(p);

	/* The lab's rekey test; a lifetime left out follows (2 s at least). */
	p = parse_ipsec("ike_rekey_time = 30s\nchild_rekey_time = 10\n"
	    "child_lifetime = 12s\n", &cfg, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(cfg.ipsec.ike_rekey_s, 30);
	assert_int_equal(cfg.ipsec.ike_life_s, 33);
	assert_int_equal(cfg.ipsec.child_rekey_s, 10);
	assert_int_equal(cfg.ipsec.child_life_s, 12);
	config_parse_free(p);

	/* Every error reported, at its line. */
	p = parse_ipsec("ike_rekey_time = 5s\n"		/* 29 */
	    "ike_lifetime = soon\n"				/* 30 */
	    "child_rekey_time = 600\n"			/* 31 */
	    "child_lifetime = 10m\n"				/* 32 */
	    "cert_warn_days = 10\n", &cfg, &rc);		/* 33 */
	assert_int_equal(rc, -1);
	expect_error(p, FN ":29: ike_rekey_time \"5s\" is out of range",
	    "expected a duration from 10s to 7d", NULL);
	expect_error(p, FN ":30: ike_lifetime \"soon\" is not a duration",
	    "such as 90s, 30m, 4h or 1d", NULL);
	expect_error(p, FN ":32: [ipsec] child_lifetime 600 s leaves no "
	    "time to rekey after child_rekey_time 600 s", "at least 660 s",
	    NULL);
	expect_error(p, FN ":33: unknown key", "belongs in [auth]", NULL);
	expect_count(p, 4);
	config_parse_free(p);

	p = parse_ipsec("child_rekey_time = 10s\nchild_lifetime = 11s\n",
	    &cfg, &rc);
	assert_int_equal(rc, -1);
	expect_error(p, FN ":30: [ipsec] child_lifetime 11 s", "at least 12 s",
	    NULL);
	expect_count(p, 1);
	config_parse_free(p);

	check_one(20, "psk_file = /etc/grgw/psk\ncert_warn_days = 0",
	    FN ":21: cert_warn_days \"0\" is out of range", NULL, NULL);
}

static void
test_daemon_values(void **state)
{
	struct grgw_config	 cfg;
	struct config_parser	*p;
	char			*text, buf[PATH_MAX];
	int			 rc;

	check_one(26, "log_level = verbose", FN ":26: log_level \"verbose\" "
	    "is not a log level; expected error, warning, info or debug",
	    NULL, NULL);
	check_one(26, "run_dir = run/grgw", FN ":26: run_dir \"run/grgw\" is "
	    "not an absolute path", NULL, NULL);
	check_one(26, "charon = charon", FN ":26: charon \"charon\" is not an "
	    "absolute path; expected an absolute path to the charon daemon",
	    NULL, NULL);
	check_one(26, "user = root", FN ":26: user \"root\" is root; the "
	    "network process must not run as root", NULL, NULL);
	check_one(26, "user = 1abc", FN ":26: user \"1abc\" does not start "
	    "with a letter or '_'", NULL, NULL);
	check_one(26, "user = a:b", FN ":26: user \"a:b\" contains a "
	    "character", NULL, NULL);

	text = base_with(26, "log_level = warning\nrun_dir = /");
	p = parse(text, &cfg, &rc);
	free(text);
	assert_int_equal(rc, 0);
	config_parse_free(p);
	assert_int_equal(cfg.log_level, LOG_LVL_WARN);
	config_site_dir(&cfg, buf, sizeof(buf));
	assert_string_equal(buf, "/site-a");
	config_site_dir(&cfg, buf, 4);
	assert_string_equal(buf, "/si");
}

/* [http], [hooks] and [etcd]: the feeds of the link state. */
static void
test_feed_values(void **state)
{
	struct grgw_config	 cfg;
	struct config_parser	*p;
	char			*text, key[300];
	int			 rc;

	check_one(26, "[http]\nlisten = localhost:9421", FN ":27: listen "
	    "\"localhost:9421\" does not start with an IP address (host names "
	    "are not resolved); expected an IP address and port such as "
	    "127.0.0.1:9421 or [::1]:9421, or off", NULL, NULL);
	check_one(26, "[http]\nlisten = 127.0.0.1", FN ":27: listen "
	    "\"127.0.0.1\" has no :port", NULL, NULL);
	check_one(26, "[http]\nlisten = 127.0.0.1:0", FN ":27: listen "
	    "\"127.0.0.1:0\" has port 0", NULL, NULL);
	check_one(26, "[http]\nlisten = 127.0.0.1:70000", FN ":27: listen "
	    "\"127.0.0.1:70000\" has a port that is not a number from 0 to "
	    "65535", NULL, NULL);
	check_one(26, "[http]\nlisten = ::1:9421", FN ":27: listen "
	    "\"::1:9421\" has an IPv6 address without [brackets]", NULL, NULL);
	check_one(26, "[hooks]\ndir = hooks.d", FN ":27: dir \"hooks.d\" is "
	    "not an absolute path; expected an absolute path such as "
	    "/etc/grgw/hooks.d", NULL, NULL);
	check_one(26, "[hooks]\ntimeout = 0", FN ":27: timeout \"0\" is out of "
	    "range; expected an integer from 1 to 3600", NULL, NULL);
	check_one(26, "[hooks]\ntimeout = 3601", FN ":27: timeout \"3601\" is "
	    "out of range", NULL, NULL);
	check_one(26, "[hooks]\ntimeout = 10s", FN ":27: timeout \"10s\" is "
	    "not a number", NULL, NULL);
	check_one(26, "[etcd]\nendpoint = https://10.0.0.5:4000", FN ":27: "
	    "endpoint \"https://10.0.0.5:4000\" uses https, but TLS to etcd "
	    "is not supported", NULL, NULL);
	check_one(26, "[etcd]\nendpoint = http://etcd-1:4000", FN ":27: "
	    "endpoint \"http://etcd-1:4000\" does not start with an IP "
	    "address", "expected http://ADDRESS:PORT", NULL);
	check_one(26, "[etcd]\nendpoint = 10.0.0.5:4000", FN ":27: endpoint "
	    "\"10.0.0.5:4000\" is not an http:// URL", NULL, NULL);
	check_one(26, "[etcd]\nendpoint = http://10.0.0.5:4000/v3", FN ":27: "
	    "endpoint \"http://10.0.0.5:4000/v3\" has a path", NULL, NULL);
	check_one(26, "[etcd]\nkey = clearwater/site-a/gr-gateway", FN ":27: "
	    "key \"clearwater/site-a/gr-gateway\" does not start with '/'",
	    NULL, NULL);
	check_one(26, "[etcd]\nkey = /clearwater/site-a/configuration/"
	    "shared_config", FN ":27: key \"/clearwater/site-a/configuration/"
	    "shared_config\" is among Clearwater's shared configuration keys",
	    NULL, NULL);
	check_one(26, "[etcd]\nkey = /clearwater/site-a/configuration",
	    FN ":27: key \"/clearwater/site-a/configuration\" is among",
	    NULL, NULL);
	check_one(26, "[etcd]\nkey = /clearwater/site-a/vellum/clustering/"
	    "memcached", FN ":27: key \"/clearwater/site-a/vellum/clustering/"
	    "memcached\" is among Clearwater's clustering keys", NULL, NULL);
	check_one(26, "[etcd]\nkey = /gr gateway", FN ":27: key "
	    "\"/gr gateway\" contains a space", NULL, NULL);
	key[0] = '/';
	memset(key + 1, 'k', 255);
	key[256] = '\0';
	text = NULL;
	assert_true(asprintf(&text, "[etcd]\nkey = %s", key) != -1);
	check_one(26, text, FN ":27: key \"/kkk", "is too long", NULL);
	free(text);
	check_one(26, "[etcd]\nlease_ttl = 1", FN ":27: lease_ttl \"1\" is out "
	    "of range; expected an integer from 2 to 3600", NULL, NULL);
	check_one(26, "[etcd]\nlease_ttl = 3601", FN ":27: lease_ttl \"3601\" "
	    "is out of range", NULL, NULL);
	check_one(26, "[etcd]\nttl = 10", FN ":27: unknown key \"ttl\" in "
	    "[etcd]; expected one of: endpoint, key, lease_ttl", NULL, NULL);

	/* Defaults: HTTP on loopback, hooks.d, etcd off with its key set. */
	p = parse(BASE, &cfg, &rc);
	assert_int_equal(rc, 0);
	config_parse_free(p);
	assert_string_equal(cfg.feeds.http_listen, "127.0.0.1:9421");
	assert_string_equal(cfg.feeds.hooks_dir, "/etc/grgw/hooks.d");
	assert_int_equal(cfg.feeds.hooks_timeout, 10);
	assert_string_equal(cfg.feeds.etcd_endpoint, "");
	assert_string_equal(cfg.feeds.etcd_key,
	    "/clearwater/site-a/gr-gateway/site-b");
	assert_int_equal(cfg.feeds.etcd_lease_ttl, 10);

	text = base_with(26, "[http]\nlisten = off\n[hooks]\n"
	    "dir = /usr/local/etc/grgw/hooks.d\ntimeout = 3600\n[etcd]\n"
	    "endpoint = http://[2001:db8::5]:4000/\n"
	    "key = /clearwater/site-a/gr-gateway/status\nlease_ttl = 2");
	p = parse(text, &cfg, &rc);
	free(text);
	if (rc != 0)
		dump_errors(p);
	assert_int_equal(rc, 0);
	config_parse_free(p);
	assert_string_equal(cfg.feeds.http_listen, "");
	assert_string_equal(cfg.feeds.hooks_dir, "/usr/local/etc/grgw/hooks.d");
	assert_int_equal(cfg.feeds.hooks_timeout, 3600);
	assert_string_equal(cfg.feeds.etcd_endpoint,
	    "http://[2001:db8::5]:4000/");
	assert_string_equal(cfg.feeds.etcd_key,
	    "/clearwater/site-a/gr-gateway/status");
	assert_int_equal(cfg.feeds.etcd_lease_ttl, 2);

	text = base_with(26, "[http]\nlisten = [::1]:9500\n[etcd]\n"
	    "endpoint = off");
	p = parse(text, &cfg, &rc);
	free(text);
	assert_int_equal(rc, 0);
	config_parse_free(p);
	assert_string_equal(cfg.feeds.http_listen, "[::1]:9500");
	assert_string_equal(cfg.feeds.etcd_endpoint, "");
}

static void
test_too_many_entries(void **state)
{
	struct config_parser	*p;
	char			 lines[2048];
	size_t			 o = 0;
	int			 i;

	/* 16 more /24s inside 198.18.128.0/17 make 18 prefixes in all. */
	for (i = 0; i < 16; i++)
		o += (size_t)snprintf(lines + o, sizeof(lines) - o,
		    "prefix = 198.18.%d.0/24\n", 128 + i);
	snprintf(lines + o, sizeof(lines) - o, "prefix = 2001:db8:a::/64");
	p = parse_bad(9, lines);
	expect_error(p, FN ":24: [site] has more than 16 prefix lines; "
	    "expected at most 16", NULL, NULL);
	expect_error(p, FN ":25: [site] has more than 16 prefix lines", NULL,
	    NULL);
	expect_count(p, 2);
	config_parse_free(p);
}

static void
test_bad_lines(void **state)
{
	struct config_parser	*p;
	char			*line;

	check_one(23, "mode auto", FN ":23: \"mode auto\" is not a setting; "
	    "expected key = value, a [section] header or a # comment", NULL,
	    NULL);
	check_one(23, "= auto", FN ":23: setting has no key before '='",
	    NULL, NULL);
	check_one(23, "mode = a\x01uto", FN ":23: line has a control "
	    "character at column 9; expected UTF-8 text", NULL, NULL);
	check_one(23, "mode = \xc0\xafuto", FN ":23: line has bytes that are "
	    "not UTF-8 at column 8", NULL, NULL);
	check_one(23, "# \xed\xa0\x80 surrogate", FN ":23: line has bytes "
	    "that are not UTF-8", NULL, NULL);
	check_one(23, "# truncated \xe2\x86", FN ":23: line has bytes that "
	    "are not UTF-8", NULL, NULL);
	check_one(23, "mode = auto # fine\x7f", FN ":23: line has a control "
	    "character", NULL, NULL);

	/* A NUL inside the given length is refused, not a terminator. */
	p = config_parse_new(FN);
	assert_int_equal(config_parse_line(p, "[site]\0junk", 11), -1);
	expect_error(p, FN ":1: line has a control character at column 7",
	    NULL, NULL);
	config_parse_free(p);

	/* 4096 bytes are fine; 4097 are not. */
	line = malloc(4097);
	assert_non_null(line);
	memset(line, ' ', 4097);
	line[0] = '#';
	p = config_parse_new(FN);
	assert_int_equal(config_parse_line(p, line, 4096), 0);
	assert_int_equal(config_parse_line(p, line, 4097), -1);
	expect_error(p, FN ":2: line is 4097 bytes long; expected at most "
	    "4096 bytes", NULL, NULL);
	expect_count(p, 1);
	config_parse_free(p);
	free(line);
}

/* Values shown in messages are escaped and cut short. */
static void
test_message_quoting(void **state)
{
	struct config_parser	*p;
	char			 line[300];

	p = parse_bad(2, "name = a\"b\\c\xc3\xa9");
	expect_error(p, FN ":2: name \"a\\\"b\\\\c\\xc3\\xa9\" contains",
	    NULL, NULL);
	config_parse_free(p);

	memset(line, 'a', sizeof(line));
	memcpy(line, "id = ", 5);
	line[sizeof(line) - 1] = '\0';
	p = parse_bad(3, line);
	expect_error(p, FN ":3: id \"aaaa", "aaaa\"... is too long", NULL);
	config_parse_free(p);
}

static void
test_multiple_errors(void **state)
{
	static const char text[] =
	    "[site]\n"				/*  1 */
	    "name = -bad\n"			/*  2 */
	    "wan_interface = wan0\n"		/*  3 */
	    "wan_address = 192.0.2.10\n"	/*  4 */
	    "lan_interface = lan0\n"		/*  5 */
	    "lan_address = 198.18.1.1\n"	/*  6 */
	    "prefix = 198.18.1.1/24\n"		/*  7 */
	    "colour = blue\n"			/*  8 */
	    "[peer]\n"				/*  9 */
	    "name = site-b\n"			/* 10 */
	    "address = 198.51.100.10\n"		/* 11 */
	    "lan_address = 198.18.2.1\n"	/* 12 */
	    "prefix = 198.18.2.0/24\n"		/* 13 */
	    "prefix = 198.18.0.0/16\n"		/* 14 */
	    "[auth]\n"				/* 15 */
	    "[dataplane]\n"			/* 16 */
	    "mtu = 100\n";			/* 17 */
	struct grgw_config	 cfg;
	struct config_parser	*p;
	int			 rc;

	p = parse(text, &cfg, &rc);
	assert_int_equal(rc, -1);
	expect_error(p, FN ":2: name \"-bad\"", NULL, NULL);
	expect_error(p, FN ":7: prefix \"198.18.1.1/24\" has host bits set",
	    NULL, NULL);
	expect_error(p, FN ":8: unknown key \"colour\"", NULL, NULL);
	expect_error(p, FN ":17: mtu \"100\" is out of range", NULL, NULL);
	expect_error(p, FN ":15: [auth] has no authentication method", NULL,
	    NULL);
	expect_error(p, FN ":14: [peer] prefix 198.18.0.0/16 overlaps [peer] "
	    "prefix 198.18.2.0/24 (line 13)", NULL, NULL);
	expect_count(p, 6);
	/* In the order a reader meets them: lines first, then the file. */
	assert_non_null(strstr(config_parse_error(p, 0), ":2:"));
	assert_non_null(strstr(config_parse_error(p, 3), ":17:"));
	config_parse_free(p);
}

static void
test_error_cap(void **state)
{
	struct config_parser	*p;
	struct grgw_config	 cfg;
	const char		*last;
	int			 i;

	p = config_parse_new(FN);
	assert_int_equal(config_parse_line(p, "[site]", 6), 0);
	for (i = 0; i < 250; i++)
		assert_int_equal(config_parse_line(p, "bogus = 1", 9), -1);
	assert_int_equal(config_parse_finish(p, &cfg), -1);
	assert_int_equal(config_parse_error_count(p), 101);
	expect_error(p, FN ":101: unknown key", NULL, NULL);
	last = config_parse_error(p, 100);
	assert_non_null(last);
	assert_non_null(strstr(last, FN ": too many errors"));
	assert_null(config_parse_error(p, 101));
	config_parse_free(p);
}

static void
test_parser_api_edges(void **state)
{
	struct config_parser	*p;
	struct grgw_config	 cfg;

	config_parse_free(NULL);
	assert_int_equal(config_parse_error_count(NULL), 0);
	assert_null(config_parse_error(NULL, 0));
	assert_int_equal(config_parse_line(NULL, "x", 1), -1);
	assert_int_equal(config_parse_finish(NULL, &cfg), -1);

	p = config_parse_new(NULL);
	assert_non_null(p);
	assert_int_equal(config_parse_line(p, NULL, 3), -1);
	assert_int_equal(config_parse_finish(p, NULL), -1);
	expect_error(p, "(config): [site] name is missing", NULL, NULL);
	/* After finish the parser takes no more lines and finishes once. */
	assert_int_equal(config_parse_line(p, "[site]", 6), -1);
	assert_int_equal(config_parse_finish(p, &cfg), -1);
	config_parse_free(p);
}

/* ---- addresses -------------------------------------------------------- */

static void
test_addr(void **state)
{
	struct grgw_addr	 a, b;
	struct grgw_prefix	 p, q;
	char			 buf[INET6_ADDRSTRLEN + 4];

	assert_int_equal(addr_parse("192.0.2.1", &a), 0);
	assert_int_equal(a.family, AF_INET);
	assert_int_equal(addr_len(a.family), 4);
	assert_string_equal(addr_fmt(&a, buf, sizeof(buf)), "192.0.2.1");
	assert_int_equal(addr_parse("2001:DB8::0:1", &b), 0);
	assert_int_equal(b.family, AF_INET6);
	assert_string_equal(addr_fmt(&b, buf, sizeof(buf)), "2001:db8::1");
	assert_false(addr_equal(&a, &b));
	assert_true(addr_equal(&a, &a));
	assert_int_equal(addr_len(AF_UNIX), 0);

	assert_int_equal(addr_parse("192.0.2.1 ", &a), -1);
	assert_int_equal(addr_parse("", &a), -1);
	assert_int_equal(addr_parse("localhost", &a), -1);
	assert_int_equal(addr_parse(NULL, &a), -1);
	assert_int_equal(addr_parse("1.2.3.4.5", &a), -1);

	assert_int_equal(prefix_parse("198.18.1.0/24", &p), 0);
	assert_int_equal(p.len, 24);
	assert_string_equal(prefix_fmt(&p, buf, sizeof(buf)), "198.18.1.0/24");
	assert_int_equal(prefix_parse("0.0.0.0/0", &q), 0);
	assert_int_equal(prefix_parse("192.0.2.1/32", &q), 0);
	assert_int_equal(prefix_parse("::/0", &q), 0);
	assert_int_equal(prefix_parse("2001:db8::1/128", &q), 0);

	errno = 0;
	assert_int_equal(prefix_parse("198.18.1.77/24", &q), -1);
	assert_int_equal(errno, EDOM);
	assert_string_equal(prefix_fmt(&q, buf, sizeof(buf)), "198.18.1.0/24");
	assert_int_equal(prefix_parse("198.18.1.0/23", &q), -1);
	assert_int_equal(errno, EDOM);
	assert_string_equal(prefix_fmt(&q, buf, sizeof(buf)), "198.18.0.0/23");
	assert_int_equal(prefix_parse("2001:db8:a::1/63", &q), -1);
	assert_int_equal(errno, EDOM);
	assert_string_equal(prefix_fmt(&q, buf, sizeof(buf)),
	    "2001:db8:a::/63");
	assert_int_equal(prefix_parse("198.18.1.0/33", &q), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(prefix_parse("198.18.1.0", &q), -1);
	assert_int_equal(prefix_parse("198.18.1.0/", &q), -1);
	assert_int_equal(prefix_parse("198.18.1.0/08", &q), -1);
	assert_int_equal(prefix_parse("/8", &q), -1);
	assert_int_equal(prefix_parse("::/1289", &q), -1);
	assert_int_equal(errno, EINVAL);

	assert_int_equal(addr_parse("198.18.1.200", &a), 0);
	assert_true(prefix_contains(&p, &a));
	assert_int_equal(addr_parse("198.18.2.1", &a), 0);
	assert_false(prefix_contains(&p, &a));
	assert_int_equal(addr_parse("::ffff:198.18.1.1", &a), 0);
	assert_false(prefix_contains(&p, &a));

	assert_int_equal(prefix_parse("198.18.0.0/23", &q), 0);
	assert_true(prefix_overlaps(&p, &q));
	assert_true(prefix_overlaps(&q, &p));
	assert_int_equal(prefix_parse("198.18.2.0/24", &q), 0);
	assert_false(prefix_overlaps(&p, &q));
	assert_int_equal(prefix_parse("198.18.1.0/25", &q), 0);
	assert_true(prefix_overlaps(&p, &q));
	assert_int_equal(prefix_parse("0.0.0.0/0", &q), 0);
	assert_true(prefix_overlaps(&p, &q));
	assert_int_equal(prefix_parse("::/0", &q), 0);
	assert_false(prefix_overlaps(&p, &q));
	assert_int_equal(prefix_parse("2001:db8:a:0:8000::/65", &p), 0);
	assert_int_equal(prefix_parse("2001:db8:a::/64", &q), 0);
	assert_true(prefix_overlaps(&p, &q));
	assert_int_equal(prefix_parse("2001:db8:a:0::/65", &q), 0);
	assert_false(prefix_overlaps(&p, &q));

	memset(&a, 0, sizeof(a));
	assert_string_equal(addr_fmt(&a, buf, sizeof(buf)), "?");
	assert_int_equal(addr_parse("2001:db8::1", &a), 0);
	assert_string_equal(addr_fmt(&a, buf, 4), "?");
}

/* ---- pre-shared keys -------------------------------------------------- */

static void
test_psk_decode(void **state)
{
	static const struct {
		const char *text, *why;
	} bad[] = {
		{ "", "empty" },
		{ "\n", "empty" },
		/* 31 and 65 bytes */
		{ "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==", "31 bytes" },
		{ "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKiss"
		  "LS4vMDEyMzQ1Njc4OTo7PD0+P0A=", "65 bytes" },
		/* no padding */
		{ "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", "multiple" },
		/* URL-safe alphabet */
		{ "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh_=",
		  "not base64" },
		{ "AAECAwQFBgcICQoLDA0O DxAREhMUFRYXGBkaGxwdHh8=",
		  "whitespace" },
		{ " AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
		  "whitespace" },
		{ "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n\n",
		  "whitespace" },
		{ "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\nAAAA",
		  "whitespace" },
		{ "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8= ",
		  "whitespace" },
		/* padding in the middle; trailing bits not zero */
		{ "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd=h8=", "not valid" },
		{ "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9=", "not valid" },
	};
	static const char *const good[] = {
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\r\n",
	};
	struct grgw_psk	 psk;
	char		 err[512];
	size_t		 i;
	/* 64 bytes: the largest key accepted. */
	static const char max[] = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g"
	    "ISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==";

	for (i = 0; i < nitems(good); i++) {
		assert_int_equal(psk_decode(good[i], strlen(good[i]), &psk,
		    err, sizeof(err)), 0);
		assert_int_equal(psk.len, 32);
		assert_int_equal(psk.key[0], 0);
		assert_int_equal(psk.key[31], 31);
		psk_free(&psk);
		assert_null(psk.key);
		assert_int_equal(psk.len, 0);
	}
	assert_int_equal(psk_decode(max, strlen(max), &psk, err, sizeof(err)),
	    0);
	assert_int_equal(psk.len, 64);
	assert_int_equal(psk.key[63], 63);
	psk_free(&psk);
	psk_free(NULL);

	/* Only the given length is read. */
	assert_int_equal(psk_decode(KEY32 "junk", strlen(KEY32), &psk, err,
	    sizeof(err)), 0);
	psk_free(&psk);

	for (i = 0; i < nitems(bad); i++) {
		err[0] = '\0';
		if (psk_decode(bad[i].text, strlen(bad[i].text), &psk, err,
		    sizeof(err)) != -1) {
			fprintf(stderr, "accepted case %zu\n", i);
			fail();
		}
		assert_null(psk.key);
		if (strstr(err, bad[i].why) == NULL) {
			fprintf(stderr, "case %zu: %s\n", i, err);
			fail();
		}
		/* No fragment of the key text appears in the message. */
		assert_null(strstr(err, "AAEC"));
		assert_null(strstr(err, "Hh8"));
	}
	assert_int_equal(psk_decode(NULL, 0, &psk, err, sizeof(err)), -1);
	assert_int_equal(psk_decode(KEY32, strlen(KEY32), &psk, NULL, 0), 0);
	psk_free(&psk);
}

static void
test_psk_generate(void **state)
{
	struct grgw_psk	 a, b;
	char		 ta[100], tb[100];
	char		 err[256];

	assert_int_equal(psk_generate(ta, sizeof(ta)), 0);
	assert_int_equal(psk_generate(tb, sizeof(tb)), 0);
	assert_int_equal(strlen(ta), 44);
	assert_string_not_equal(ta, tb);
	assert_int_equal(psk_decode(ta, strlen(ta), &a, err, sizeof(err)), 0);
	assert_int_equal(psk_decode(tb, strlen(tb), &b, err, sizeof(err)), 0);
	assert_int_equal(a.len, 32);
	assert_int_equal(b.len, 32);
	assert_memory_not_equal(a.key, b.key, 32);
	psk_free(&a);
	psk_free(&b);

	assert_int_equal(psk_generate(ta, 44), -1);
	assert_int_equal(psk_generate(NULL, 100), -1);
	assert_int_equal(psk_generate(ta, 45), 0);
}

/* A private key is read with the checks of a key file, at every load. */
static void
test_secret_read(void **state)
{
	struct grgw_psk	 raw;
	char		 err[PATH_MAX + 256], *path, *link;
	static const char pem[] = "-----BEGIN PRIVATE KEY-----\nAAAA\n"
	    "-----END PRIVATE KEY-----\n";

	path = write_file("key.pem", pem, strlen(pem), 0600);
	assert_int_equal(secret_read(path, 4096, &raw, err, sizeof(err)), 0);
	assert_int_equal(raw.len, strlen(pem));
	assert_memory_equal(raw.key, pem, raw.len);	/* as it is */
	psk_free(&raw);
	assert_null(raw.key);
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(secret_read(path, 4096, &raw, err, sizeof(err)), -1);
	assert_null(raw.key);
	assert_non_null(strstr(err, "readable by group or others (mode "
	    "0640)"));
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(secret_read(path, 10, &raw, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "expected at most 10 bytes"));
	link = tmp_path("key-link.pem");
	unlink(link);
	assert_int_equal(symlink(path, link), 0);
	assert_int_equal(secret_read(link, 4096, &raw, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "symbolic link"));
	free(link);
	free(path);
}

static void
test_psk_load(void **state)
{
	struct grgw_psk	 psk;
	char		 err[PATH_MAX + 256], *path, *want, *link, *big;
	size_t		 i;

	path = write_file("psk-good", KEY32 "\n", strlen(KEY32) + 1, 0600);
	assert_int_equal(psk_load(path, &psk, err, sizeof(err)), 0);
	assert_int_equal(psk.len, 32);
	assert_int_equal(psk.key[5], 5);
	psk_free(&psk);
	assert_int_equal(secret_file_check(path, err, sizeof(err)), 0);
	assert_int_equal(chmod(path, 0400), 0);
	assert_int_equal(psk_load(path, &psk, err, sizeof(err)), 0);
	psk_free(&psk);

	/* Readable by others: refused, with the mode and the fix. */
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(psk_load(path, &psk, err, sizeof(err)), -1);
	assert_null(psk.key);
	assert_true(asprintf(&want, "%s is readable by group or others (mode "
	    "0644); expected mode 0600 or 0400 (chmod 600 %s)", path,
	    path) != -1);
	assert_string_equal(err, want);
	free(want);
	assert_int_equal(secret_file_check(path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "(mode 0644)"));
	assert_int_equal(chmod(path, 0620), 0);
	assert_int_equal(psk_load(path, &psk, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "writable by group or others (mode 0620)"));
	assert_int_equal(chmod(path, 0601), 0);
	assert_int_equal(psk_load(path, &psk, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "accessible by group or others"));
	assert_int_equal(chmod(path, 0600), 0);

	/* A link to a good key is refused: secrets are never followed. */
	link = tmp_path("psk-link");
	unlink(link);
	assert_int_equal(symlink(path, link), 0);
	assert_int_equal(psk_load(link, &psk, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "is a symbolic link"));
	assert_int_equal(secret_file_check(link, err, sizeof(err)), -1);
	unlink(link);
	free(link);

	/* Not a regular file, absent, too big, not a key. */
	assert_int_equal(psk_load(tmpdir, &psk, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "is not a regular file"));
	free(path);
	path = tmp_path("no-such-psk");
	assert_int_equal(psk_load(path, &psk, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "does not exist"));
	free(path);

	big = malloc(2000);
	assert_non_null(big);
	for (i = 0; i < 2000; i++)
		big[i] = 'A';
	path = write_file("psk-big", big, 2000, 0600);
	assert_int_equal(psk_load(path, &psk, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "is 2000 bytes long"));
	free(path);
	free(big);

	path = write_file("psk-short", "c2hvcnQ=\n", 9, 0600);
	assert_int_equal(psk_load(path, &psk, err, sizeof(err)), -1);
	assert_non_null(strstr(err, ": key decodes to 5 bytes"));
	assert_null(strstr(err, "c2hvcnQ"));
	free(path);

	/* Someone else's file, even 0600, is refused (needs root to set up). */
	if (geteuid() == 0) {
		path = write_file("psk-other", KEY32, strlen(KEY32), 0600);
		assert_int_equal(chown(path, 4242, 4242), 0);
		assert_int_equal(psk_load(path, &psk, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "is owned by uid 4242"));
		free(path);
	}
}

/* ---- [pair] ----------------------------------------------------------- */

/*
 * Replaces line 26 of BASE: [etcd] on 27, endpoint 28, [pair] 29, then
 * partner 30 and address 31, and whatever a test adds from 32 on.
 */
#define PAIR_HEAD	"log_level = info\n[etcd]\n" \
			"endpoint = http://198.18.1.5:4000\n[pair]\n"
#define PAIR_ADDRS	"partner = 198.18.1.3\naddress = 198.18.1.2"
#define PAIR		PAIR_HEAD PAIR_ADDRS

/* BASE with line 26 replaced by repl; it must be accepted. */
static void
parse_good(const char *repl, struct grgw_config *cfg)
{
	struct config_parser	*p;
	char			*text = base_with(26, repl);
	int			 rc;

	p = parse(text, cfg, &rc);
	free(text);
	if (rc != 0)
		dump_errors(p);
	assert_int_equal(rc, 0);
	config_parse_free(p);
}

static void
test_pair_valid(void **state)
{
	struct grgw_config	 cfg;
	char			 buf[INET6_ADDRSTRLEN];

	/* No section: a gateway alone, the defaults filled all the same. */
	parse_good("log_level = info", &cfg);
	assert_int_equal(cfg.pair.enabled, 0);
	assert_int_equal(cfg.pair.priority, GRGW_PAIR_PRIORITY);
	assert_int_equal(cfg.pair.port, GRGW_PAIR_PORT);
	assert_int_equal(cfg.pair.interval_ms, GRGW_PAIR_INTERVAL_MS);
	assert_int_equal(cfg.pair.dead_ms, 100);
	assert_int_equal(cfg.pair.guard_ms, 100);
	assert_string_equal(cfg.pair.key_file, "");
	assert_string_equal(cfg.pair.etcd_key, "/grgw/site-a/pair");

	/* The two addresses alone: the defaults. */
	parse_good(PAIR, &cfg);
	assert_int_equal(cfg.pair.enabled, 1);
	assert_string_equal(addr_fmt(&cfg.pair.partner, buf, sizeof(buf)),
	    "198.18.1.3");
	assert_string_equal(addr_fmt(&cfg.pair.address, buf, sizeof(buf)),
	    "198.18.1.2");
	assert_int_equal(cfg.pair.priority, 100);
	assert_int_equal(cfg.pair.port, 4212);
	assert_int_equal(cfg.pair.interval_ms, 20);
	assert_int_equal(cfg.pair.dead_ms, 100);
	assert_int_equal(cfg.pair.guard_ms, 100);
	assert_string_equal(cfg.pair.key_file, "");
	assert_string_equal(cfg.pair.etcd_key, "/grgw/site-a/pair");

	/* Every key, IPv6, at the bounds. */
	parse_good(PAIR_HEAD "partner = 2001:db8:a::3\n"
	    "address = 2001:db8:a::2\npriority = 255\nport = 65535\n"
	    "interval_ms = 5\ndead_ms = 15\nguard_ms = 10\n"
	    "key_file = /etc/grgw/pair.key\netcd_key = /grgw/a/fence", &cfg);
	assert_int_equal(cfg.pair.enabled, 1);
	assert_int_equal(cfg.pair.partner.family, AF_INET6);
	assert_string_equal(addr_fmt(&cfg.pair.partner, buf, sizeof(buf)),
	    "2001:db8:a::3");
	assert_string_equal(addr_fmt(&cfg.pair.address, buf, sizeof(buf)),
	    "2001:db8:a::2");
	assert_int_equal(cfg.pair.priority, 255);
	assert_int_equal(cfg.pair.port, 65535);
	assert_int_equal(cfg.pair.interval_ms, 5);
	assert_int_equal(cfg.pair.dead_ms, 15);
	assert_int_equal(cfg.pair.guard_ms, 10);
	assert_string_equal(cfg.pair.key_file, "/etc/grgw/pair.key");
	assert_string_equal(cfg.pair.etcd_key, "/grgw/a/fence");

	/* dead_ms follows interval_ms, guard_ms follows dead_ms. */
	parse_good(PAIR "\ninterval_ms = 1000\npriority = 1\nport = 1", &cfg);
	assert_int_equal(cfg.pair.interval_ms, 1000);
	assert_int_equal(cfg.pair.dead_ms, 5000);
	assert_int_equal(cfg.pair.guard_ms, 5000);
	assert_int_equal(cfg.pair.priority, 1);
	assert_int_equal(cfg.pair.port, 1);
	parse_good(PAIR "\ndead_ms = 60000", &cfg);
	assert_int_equal(cfg.pair.dead_ms, 60000);
	assert_int_equal(cfg.pair.guard_ms, 60000);
	parse_good(PAIR "\ninterval_ms = 30\nguard_ms = 60", &cfg);
	assert_int_equal(cfg.pair.dead_ms, 150);
	assert_int_equal(cfg.pair.guard_ms, 60);
	/* margin_ms: 2 x interval_ms, within guard_ms - interval_ms. */
	assert_int_equal(cfg.pair.margin_ms, 30);
	parse_good(PAIR, &cfg);
	assert_int_equal(cfg.pair.margin_ms, 40);
	parse_good(PAIR "\ninterval_ms = 50\nguard_ms = 300\nmargin_ms = 250",
	    &cfg);
	assert_int_equal(cfg.pair.margin_ms, 250);

	/* The other site's addresses are not floating ones of this site. */
	parse_good(PAIR_HEAD "partner = 198.51.100.10\naddress = 198.18.2.1",
	    &cfg);
	/* Another port for the probes frees 4211 for the heartbeats. */
	parse_good("log_level = info\n[probe]\nport = 4000\n[etcd]\n"
	    "endpoint = http://198.18.1.5:4000\n[pair]\n" PAIR_ADDRS
	    "\nport = 4211", &cfg);
	assert_int_equal(cfg.pair.port, 4211);
	assert_int_equal(cfg.probe.port, 4000);
}

static void
test_pair_addresses(void **state)
{
	struct config_parser	*p;

	check_one(26, PAIR_HEAD "address = 198.18.1.2", FN ":29: [pair] "
	    "partner is missing; expected a \"partner = ...\" line with the "
	    "other gateway's own unicast address (not a floating one)", NULL,
	    NULL);
	check_one(26, PAIR_HEAD "partner = 198.18.1.3", FN ":29: [pair] "
	    "address is missing; expected an \"address = ...\" line with "
	    "this gateway's own unicast address", NULL, NULL);
	p = parse_bad(26, PAIR_HEAD "priority = 200");
	expect_error(p, FN ":29: [pair] partner is missing", NULL, NULL);
	expect_error(p, FN ":29: [pair] address is missing", NULL, NULL);
	expect_count(p, 2);
	config_parse_free(p);

	check_one(26, PAIR_HEAD "partner = 198.18.1.2\naddress = 198.18.1.2",
	    FN ":30: [pair] partner 198.18.1.2 is the [pair] address too "
	    "(line 31); expected the other gateway's own address", NULL,
	    NULL);
	check_one(26, PAIR_HEAD "partner = 2001:db8:a::3\n"
	    "address = 198.18.1.2", FN ":30: [pair] partner 2001:db8:a::3 is "
	    "IPv6 but [pair] address 198.18.1.2 (line 31) is IPv4; expected "
	    "both in the same family", NULL, NULL);

	/* The floating addresses: [site] wan_address and lan_address. */
	check_one(26, PAIR_HEAD "partner = 198.18.1.3\naddress = 198.18.1.1",
	    FN ":31: [pair] address 198.18.1.1 is a [site] lan_address too "
	    "(line 6), which floats to the active gateway; expected this "
	    "gateway's own", NULL, NULL);
	check_one(26, PAIR_HEAD "partner = 2001:db8:a::1\n"
	    "address = 2001:db8:a::2", FN ":30: [pair] partner 2001:db8:a::1 "
	    "is a [site] lan_address too (line 7), which floats to the "
	    "active gateway; expected the other gateway's own", NULL, NULL);
	check_one(26, PAIR_HEAD "partner = 198.18.1.3\naddress = 192.0.2.10",
	    FN ":31: [pair] address 192.0.2.10 is the [site] wan_address too "
	    "(line 4), which floats to the active gateway", NULL, NULL);
	check_one(26, PAIR_HEAD "partner = 192.0.2.10\naddress = 198.18.1.2",
	    FN ":30: [pair] partner 192.0.2.10 is the [site] wan_address too "
	    "(line 4)", NULL, NULL);
	/* Both at once: each named. */
	p = parse_bad(26, PAIR_HEAD "partner = 192.0.2.10\n"
	    "address = 198.18.1.1");
	expect_error(p, FN ":30: [pair] partner 192.0.2.10", "wan_address",
	    NULL);
	expect_error(p, FN ":31: [pair] address 198.18.1.1", "lan_address",
	    NULL);
	expect_count(p, 2);
	config_parse_free(p);

	check_one(26, PAIR_HEAD "partner = 224.0.0.1\naddress = 198.18.1.2",
	    FN ":30: partner \"224.0.0.1\" is a multicast address; expected "
	    "the other gateway's own unicast address", NULL, NULL);
	check_one(26, PAIR_HEAD "partner = gw-a2\naddress = 198.18.1.2",
	    FN ":30: partner \"gw-a2\" is not an IP address", NULL, NULL);
	check_one(26, PAIR_HEAD "partner = 198.18.1.3\naddress =",
	    FN ":31: address has no value", NULL, NULL);
}

/* A second heartbeat path: both ends or neither, other addresses. */
static void
test_pair_second_path(void **state)
{
	struct grgw_config	 cfg;
	char			 buf[INET6_ADDRSTRLEN];

	parse_good(PAIR, &cfg);
	assert_int_equal(cfg.pair.second_address.family, 0);
	assert_int_equal(cfg.pair.second_partner.family, 0);
	parse_good(PAIR "\nsecond_partner = 192.0.2.12\n"
	    "second_address = 192.0.2.11", &cfg);
	assert_string_equal(addr_fmt(&cfg.pair.second_partner, buf,
	    sizeof(buf)), "192.0.2.12");
	assert_string_equal(addr_fmt(&cfg.pair.second_address, buf,
	    sizeof(buf)), "192.0.2.11");
	/* Another family than the first path's is fine. */
	parse_good(PAIR "\nsecond_partner = 2001:db8:f::3\n"
	    "second_address = 2001:db8:f::2", &cfg);

	check_one(26, PAIR "\nsecond_address = 192.0.2.11", FN ":32: [pair] "
	    "second_address without second_partner; expected both (a second "
	    "path for the heartbeats) or neither", NULL, NULL);
	check_one(26, PAIR "\nsecond_partner = 192.0.2.12", FN ":32: [pair] "
	    "second_partner without second_address", NULL, NULL);
	check_one(26, PAIR "\nsecond_partner = 192.0.2.12\n"
	    "second_address = 198.18.1.2", FN ":33: [pair] second_address "
	    "198.18.1.2 is the [pair] address too (line 31); expected this "
	    "gateway's address on another link", NULL, NULL);
	check_one(26, PAIR "\nsecond_partner = 198.18.1.3\n"
	    "second_address = 192.0.2.11", FN ":32: [pair] second_partner "
	    "198.18.1.3 is the [pair] partner too (line 30)", NULL, NULL);
	check_one(26, PAIR "\nsecond_partner = 192.0.2.11\n"
	    "second_address = 192.0.2.11", FN ":32: [pair] second_partner "
	    "192.0.2.11 is the [pair] second_address too (line 33)", NULL, NULL);
	check_one(26, PAIR "\nsecond_partner = 2001:db8:f::3\n"
	    "second_address = 192.0.2.11", FN ":32: [pair] second_partner "
	    "2001:db8:f::3 is IPv6 but [pair] second_address 192.0.2.11 (line 33) "
	    "is "
	    "IPv4; expected both in the same family", NULL, NULL);
	check_one(26, PAIR "\nsecond_partner = 192.0.2.12\n"
	    "second_address = 192.0.2.10", FN ":33: [pair] second_address "
	    "192.0.2.10 is the [site] wan_address too (line 4), which floats "
	    "to the active gateway", NULL, NULL);
}

/* A handover made before it breaks: this gateway's own WAN address, and
 * the other site's gateways' own ones. */
static void
test_pair_handover_addresses(void **state)
{
	struct grgw_config	 cfg;
	char			 buf[INET6_ADDRSTRLEN];

	parse_good(PAIR, &cfg);
	assert_int_equal(cfg.pair.own_wan_address.family, 0);
	assert_int_equal(cfg.peer.n_gateways, 0);
	parse_good(PAIR "\nown_wan_address = 192.0.2.11", &cfg);
	assert_string_equal(addr_fmt(&cfg.pair.own_wan_address, buf,
	    sizeof(buf)), "192.0.2.11");
	check_one(26, PAIR "\nown_wan_address = 192.0.2.10", FN ":32: [pair] "
	    "own_wan_address 192.0.2.10 is the [site] wan_address too (line "
	    "4), which floats to the active gateway", NULL, NULL);
	check_one(26, PAIR "\nown_wan_address = 2001:db8:f::2", FN ":32: "
	    "[pair] own_wan_address is IPv6 but [site] wan_address (line 4) "
	    "is IPv4; expected the same family", NULL, NULL);

	check_one(17, "prefix = 2001:db8:b::/64\ngateway = 198.51.100.11\n"
	    "gateway = 198.51.100.12\ngateway = 198.51.100.11", FN ":20: "
	    "gateway \"198.51.100.11\" is given twice in [peer] (also on "
	    "line 18)", NULL, NULL);
	check_one(17, "prefix = 2001:db8:b::/64\ngateway = 198.51.100.10",
	    FN ":18: [peer] gateway 198.51.100.10 is [peer] address too "
	    "(line 13), which floats", NULL, NULL);
	check_one(17, "prefix = 2001:db8:b::/64\ngateway = 2001:db8:f::9",
	    FN ":18: [peer] gateway 2001:db8:f::9 is IPv6 but [peer] address "
	    "198.51.100.10 (line 13) is IPv4", NULL, NULL);
	check_one(17, "prefix = 2001:db8:b::/64\ngateway = 198.18.2.7",
	    FN ":18: [peer] gateway 198.18.2.7 is inside [peer] prefix "
	    "198.18.2.0/24 (line 16)", NULL, NULL);
	check_one(17, "prefix = 2001:db8:b::/64\ngateway = 198.51.100.1\n"
	    "gateway = 198.51.100.2\ngateway = 198.51.100.3\n"
	    "gateway = 198.51.100.4\ngateway = 198.51.100.5", FN ":22: ",
	    "gateway", NULL);
}

static void
test_pair_values(void **state)
{
	check_one(26, PAIR "\npriority = 0", FN ":32: priority \"0\" is out "
	    "of range; expected an integer from 1 to 255", NULL, NULL);
	check_one(26, PAIR "\npriority = 256", FN ":32: priority \"256\" is "
	    "out of range", NULL, NULL);
	check_one(26, PAIR "\nport = 0", FN ":32: port \"0\" is out of range; "
	    "expected a UDP port from 1 to 65535", NULL, NULL);
	check_one(26, PAIR "\nport = 65536", FN ":32: port \"65536\" is out "
	    "of range", NULL, NULL);
	check_one(26, PAIR "\ninterval_ms = 4", FN ":32: interval_ms \"4\" is "
	    "out of range; expected an integer from 5 to 1000", NULL, NULL);
	check_one(26, PAIR "\ninterval_ms = 1001", FN ":32: interval_ms "
	    "\"1001\" is out of range", NULL, NULL);
	check_one(26, PAIR "\ndead_ms = 60001", FN ":32: dead_ms \"60001\" is "
	    "out of range; expected an integer up to 60000", NULL, NULL);
	check_one(26, PAIR "\nguard_ms = 0", FN ":32: guard_ms \"0\" is out "
	    "of range", NULL, NULL);
	check_one(26, PAIR "\nkey_file = pair.key", FN ":32: key_file "
	    "\"pair.key\" is not an absolute path; expected an absolute path "
	    "to a key file", NULL, NULL);
	check_one(26, PAIR "\netcd_key = grgw/site-a/pair", FN ":32: "
	    "etcd_key \"grgw/site-a/pair\" does not start with '/'", NULL,
	    NULL);
	check_one(26, PAIR "\netcd_key = /clearwater/site-a/configuration/x",
	    FN ":32: etcd_key \"/clearwater/site-a/configuration/x\" is among "
	    "Clearwater's shared configuration keys", NULL, NULL);
	check_one(26, PAIR "\netcd_key = /grgw/site a", FN ":32: etcd_key "
	    "\"/grgw/site a\" contains a space", NULL, NULL);
	check_one(26, PAIR "\npeer = 198.18.1.3", FN ":32: unknown key "
	    "\"peer\" in [pair]; expected one of: partner, address, "
	    "second_partner, second_address, own_wan_address, priority, port, "
	    "interval_ms, "
	    "dead_ms, guard_ms, margin_ms, handover_wait_ms, key_file, "
	    "etcd_key", NULL, NULL);
	check_one(26, PAIR "\npriority = 1\npriority = 2", FN ":33: duplicate "
	    "key priority in [pair] (first set on line 32)", NULL, NULL);
	check_one(26, "log_level = info\npartner = 198.18.1.3", FN ":27: "
	    "unknown key \"partner\" in [daemon] (it belongs in [pair])",
	    NULL, NULL);
}

static void
test_pair_timing(void **state)
{
	struct grgw_config	 cfg;

	check_one(26, PAIR "\ndead_ms = 59", FN ":32: [pair] dead_ms 59 is "
	    "less than 3 x interval_ms 20 (the default); expected at least "
	    "60", NULL, NULL);
	check_one(26, PAIR "\ninterval_ms = 30\ndead_ms = 89", FN ":33: "
	    "[pair] dead_ms 89 is less than 3 x interval_ms 30 (line 32); "
	    "expected at least 90", NULL, NULL);
	check_one(26, PAIR "\nguard_ms = 39", FN ":32: [pair] guard_ms 39 is "
	    "less than 2 x interval_ms 20 (the default); expected at least "
	    "40", NULL, NULL);
	check_one(26, PAIR "\ninterval_ms = 100\nguard_ms = 199", FN ":33: "
	    "[pair] guard_ms 199 is less than 2 x interval_ms 100 (line 32); "
	    "expected at least 200", NULL, NULL);
	/* An interval refused is all there is to say. */
	check_one(26, PAIR "\ninterval_ms = 2000\ndead_ms = 15", FN ":32: "
	    "interval_ms \"2000\" is out of range", NULL, NULL);
	check_one(26, PAIR "\nmargin_ms = 81", FN ":32: [pair] margin_ms 81 "
	    "leaves less than interval_ms 20 (the default) of guard_ms 100; "
	    "expected at most 80", NULL, NULL);
	check_one(26, PAIR "\nmargin_ms = 0", FN ":32: margin_ms \"0\" is out "
	    "of range", NULL, NULL);
	parse_good(PAIR "\nmargin_ms = 80", &cfg);
	assert_int_equal(cfg.pair.margin_ms, 80);
	/* handover_wait_ms: unset (0) by default, the timers' wait then. */
	assert_int_equal(cfg.pair.handover_wait_ms, 0);
	parse_good(PAIR "\nhandover_wait_ms = 10000", &cfg);
	assert_int_equal(cfg.pair.handover_wait_ms, 10000);
	check_one(26, PAIR "\nhandover_wait_ms = 99", FN ":32: "
	    "handover_wait_ms \"99\" is out of range", NULL, NULL);
	check_one(26, PAIR "\nhandover_wait_ms = 60001", FN ":32: "
	    "handover_wait_ms \"60001\" is out of range", NULL, NULL);
	/* The bounds themselves are fine. */
	parse_good(PAIR "\ndead_ms = 60\nguard_ms = 40", &cfg);
	assert_int_equal(cfg.pair.dead_ms, 60);
	assert_int_equal(cfg.pair.guard_ms, 40);
}

static void
test_pair_needs(void **state)
{
	static const char certs[] = "certificate = /etc/grgw/a.crt\n"
	    "private_key = /etc/grgw/a.key\nca = /etc/grgw/ca.crt\n[probe]\n"
	    "key_file = /etc/grgw/probe.key";
	struct grgw_config	 cfg;
	struct config_parser	*p;
	char			*base, *text;
	int			 rc;

	/* Ports: the heartbeats' own, not the probes'. */
	check_one(26, PAIR "\nport = 4211", FN ":32: [pair] port 4211 is the "
	    "[probe] port too (the default); expected a port of its own for "
	    "the heartbeats", NULL, NULL);
	check_one(26, "log_level = info\n[probe]\nport = 4300\n[etcd]\n"
	    "endpoint = http://198.18.1.5:4000\n[pair]\n" PAIR_ADDRS
	    "\nport = 4300", FN ":34: [pair] port 4300 is the [probe] port "
	    "too (line 28)", NULL, NULL);
	check_one(26, "log_level = info\n[probe]\nport = 4212\n[etcd]\n"
	    "endpoint = http://198.18.1.5:4000\n[pair]\n" PAIR_ADDRS,
	    FN ":28: [probe] port 4212 is the [pair] port too (its default); "
	    "expected another port for the link probes", NULL, NULL);

	/* The fence: etcd. */
	check_one(26, "log_level = info\n[pair]\n" PAIR_ADDRS, FN ":27: [pair] "
	    "needs [etcd] endpoint: the site's etcd fences the active role; "
	    "expected endpoint = http://ADDRESS:PORT", NULL, NULL);
	check_one(26, "log_level = info\n[etcd]\nendpoint = off\n[pair]\n"
	    PAIR_ADDRS, FN ":29: [pair] needs [etcd] endpoint", NULL, NULL);
	/* An endpoint refused is reported once, as itself. */
	check_one(26, "log_level = info\n[etcd]\nendpoint = etcd:4000\n"
	    "[pair]\n" PAIR_ADDRS, FN ":28: endpoint \"etcd:4000\"", NULL,
	    NULL);
	check_one(26, PAIR "\netcd_key = /clearwater/site-a/gr-gateway/site-b",
	    FN ":32: [pair] etcd_key \"/clearwater/site-a/gr-gateway/site-b\" "
	    "is the [etcd] key too (the default); expected a key of its own",
	    NULL, NULL);
	check_one(26, "log_level = info\n[etcd]\n"
	    "endpoint = http://198.18.1.5:4000\nkey = /grgw/site-a/pair\n"
	    "[pair]\n" PAIR_ADDRS, FN ":29: [etcd] key \"/grgw/site-a/pair\" "
	    "is the [pair] etcd_key too (its default)", NULL, NULL);

	/* Certificates: no pre-shared key to derive the heartbeat key from. */
	base = base_with(20, certs);
	assert_true(asprintf(&text, "%s[etcd]\nendpoint = http://198.18.1.5:"
	    "4000\n[pair]\n" PAIR_ADDRS "\n", base) != -1);
	p = parse(text, &cfg, &rc);
	free(text);
	assert_int_equal(rc, -1);
	expect_error(p, FN ":33: [pair] needs key_file with certificate "
	    "authentication; expected key_file = PATH", NULL, NULL);
	expect_count(p, 1);
	config_parse_free(p);
	assert_true(asprintf(&text, "%s[etcd]\nendpoint = http://198.18.1.5:"
	    "4000\n[pair]\n" PAIR_ADDRS "\nkey_file = /etc/grgw/pair.key\n",
	    base) != -1);
	p = parse(text, &cfg, &rc);
	free(text);
	if (rc != 0)
		dump_errors(p);
	assert_int_equal(rc, 0);
	assert_int_equal(cfg.auth, GRGW_AUTH_CERT);
	assert_string_equal(cfg.pair.key_file, "/etc/grgw/pair.key");
	config_parse_free(p);
	free(base);

	/* The section once. */
	p = parse_bad(26, PAIR "\n[pair]\npriority = 1");
	expect_error(p, FN ":32: section [pair] appears again (first on line "
	    "29)", NULL, NULL);
	config_parse_free(p);
}

/* Every file key at once: the list holds CONFIG_FILE_REFS_MAX. */
static void
test_pair_files(void **state)
{
	struct config_file_ref	 refs[CONFIG_FILE_REFS_MAX + 1];
	struct grgw_config	 cfg;
	struct config_parser	*p;
	char			*text;
	size_t			 n;
	int			 rc;

	text = base_with(20, "psk_file = /etc/grgw/psk\n"
	    "psk_next_file = /etc/grgw/psk.next\n"
	    "certificate = /etc/grgw/a.crt\nprivate_key = /etc/grgw/a.key\n"
	    "ca = /etc/grgw/ca.crt\n[probe]\nkey_file = /etc/grgw/probe.key\n"
	    "[etcd]\nendpoint = http://198.18.1.5:4000\n[pair]\n" PAIR_ADDRS
	    "\nkey_file = /etc/grgw/pair.key");
	p = parse(text, &cfg, &rc);
	free(text);
	assert_int_equal(rc, -1);	/* psk_file and certificates */
	n = config_parse_files(p, refs, nitems(refs));
	assert_int_equal(n, CONFIG_FILE_REFS_MAX);
	assert_string_equal(refs[6].key, "key_file");
	assert_string_equal(refs[6].path, "/etc/grgw/pair.key");
	assert_int_equal(refs[6].line, 32);
	assert_int_equal(refs[6].kind, CONFIG_FILE_KEY);
	assert_string_equal(refs[7].key, "run_dir");
	config_parse_free(p);
}

/* ---- config_load ------------------------------------------------------ */

/* BASE pointing at a PSK file in tmpdir, as a file in tmpdir. */
static char *
write_config(const char *name, const char *psk_name, const char *extra)
{
	char	*psk, *line, *text, *path;

	psk = tmp_path(psk_name);
	assert_true(asprintf(&line, "psk_file = %s%s", psk, extra) != -1);
	text = base_with(20, line);
	path = write_file(name, text, strlen(text), 0644);
	free(text);
	free(line);
	free(psk);
	return path;
}

static void
test_load(void **state)
{
	struct grgw_config	 cfg;
	char			*conf, *psk, *want;
	char			 errs[GRGW_CONFIG_ERR_MAX];

	psk = write_file("psk", KEY32, strlen(KEY32), 0600);
	conf = write_config("good.conf", "psk", "");
	assert_int_equal(config_load(conf, &cfg, errs, sizeof(errs)), 0);
	assert_string_equal(errs, "");
	assert_string_equal(cfg.path, conf);
	assert_string_equal(cfg.psk_file, psk);
	assert_int_equal(cfg.auth, GRGW_AUTH_PSK);
	assert_int_equal(config_load(conf, &cfg, NULL, 0), 0);

	/* A key file others can read: the message cites the config line. */
	assert_int_equal(chmod(psk, 0644), 0);
	assert_int_equal(config_load(conf, &cfg, errs, sizeof(errs)), -1);
	assert_true(errs[0] != '\0');
	assert_true(asprintf(&want, "%s:20: psk_file %s is readable by group "
	    "or others (mode 0644); expected mode 0600 or 0400 (chmod 600 "
	    "%s)\n", conf, psk, psk) != -1);
	assert_string_equal(errs, want);
	assert_null(strstr(errs, "AAEC"));
	assert_string_equal(cfg.site.name, "");
	free(want);
	assert_int_equal(chmod(psk, 0600), 0);
	free(conf);

	/* The key file is missing, then holds no key. */
	conf = write_config("nokey.conf", "absent-psk", "");
	assert_int_equal(config_load(conf, &cfg, errs, sizeof(errs)), -1);
	assert_non_null(strstr(errs, ":20: psk_file "));
	assert_non_null(strstr(errs, "absent-psk does not exist"));
	free(conf);
	free(psk);
	psk = write_file("psk-bad", "not a key\n", 10, 0600);
	conf = write_config("badkey.conf", "psk-bad", "");
	assert_int_equal(config_load(conf, &cfg, errs, sizeof(errs)), -1);
	assert_non_null(strstr(errs, ":20: psk_file "));
	assert_non_null(strstr(errs, "key has whitespace"));
	assert_null(strstr(errs, "not a key"));
	free(conf);
	free(psk);

	/* Parse errors and file errors come back together. */
	conf = write_config("both.conf", "absent-psk",
	    "\n[dataplane]\nmtu = 1");
	assert_int_equal(config_load(conf, &cfg, errs, sizeof(errs)), -1);
	assert_non_null(strstr(errs, ":22: mtu \"1\" is out of range"));
	assert_non_null(strstr(errs, ":20: psk_file "));
	assert_non_null(strstr(errs, ":24: section [dataplane] appears "
	    "again (first on line 21)"));
	free(conf);
}

/* run_dir: its parent must exist, and only root may change its path. */
static void
test_load_run_dir(void **state)
{
	static const struct {
		const char	*dir;
		const char	*want;		/* NULL: accepted */
	} t[] = {
		{ "/run/grgw", NULL },
		{ "/run", NULL },
		{ "/run/no-such-dir-grgw/x", "its parent /run/no-such-dir-grgw "
		    "does not exist" },
		{ "/tmp/grgw-run", "/tmp can be changed by another user than "
		    "root" },
		{ "/etc/hostname", "is not a directory" },
	};
	struct grgw_config	 cfg;
	char			 errs[GRGW_CONFIG_ERR_MAX];
	char			*psk, *line, *text, *conf;
	size_t			 i;

	psk = write_file("psk", KEY32, strlen(KEY32), 0600);
	for (i = 0; i < nitems(t); i++) {
		assert_true(asprintf(&line, "psk_file = %s", psk) != -1);
		text = base_with(20, line);
		free(line);
		assert_true(asprintf(&line, "%srun_dir = %s\n", text,
		    t[i].dir) != -1);
		conf = write_file("rundir.conf", line, strlen(line), 0644);
		if (t[i].want == NULL) {
			assert_int_equal(config_load(conf, &cfg, errs,
			    sizeof(errs)), 0);
		} else {
			assert_int_equal(config_load(conf, &cfg, errs,
			    sizeof(errs)), -1);
			if (strstr(errs, t[i].want) == NULL)
				fprintf(stderr, "%s: %s", t[i].dir, errs);
			assert_non_null(strstr(errs, ":27: run_dir "));
			assert_non_null(strstr(errs, t[i].want));
		}
		free(conf);
		free(line);
		free(text);
	}
	free(psk);
}

/*
 * run_dir below a directory another user could change: group-writable or
 * writable by others, the nearest such directory is named with its mode.
 */
static void
test_load_run_dir_writable(void **state)
{
	static const struct {
		const char	*sub;
		mode_t		 mode;
		const char	*want;
	} t[] = {
		{ "group", 0770, "mode 0770" },
		{ "others", 0703, "mode 0703" },
		{ "both", 0777, "mode 0777" },
		{ "sticky", 01777, "mode 1777" },
	};
	struct grgw_config	 cfg;
	char			 errs[GRGW_CONFIG_ERR_MAX];
	char			*psk, *line, *text, *conf, *dir, *want;
	size_t			 i;

	psk = write_file("psk", KEY32, strlen(KEY32), 0600);
	for (i = 0; i < nitems(t); i++) {
		dir = tmp_path(t[i].sub);
		assert_int_equal(mkdir(dir, 0700), 0);
		assert_int_equal(chmod(dir, t[i].mode), 0);
		assert_true(asprintf(&line, "psk_file = %s", psk) != -1);
		text = base_with(20, line);
		free(line);
		/* Missing itself: its parent is looked at. */
		assert_true(asprintf(&line, "%srun_dir = %s/grgw\n", text,
		    dir) != -1);
		conf = write_file("rundir.conf", line, strlen(line), 0644);
		assert_int_equal(config_load(conf, &cfg, errs, sizeof(errs)),
		    -1);
		assert_true(asprintf(&want, ":27: run_dir %s/grgw: %s can be "
		    "changed by another user than root", dir, dir) != -1);
		if (strstr(errs, want) == NULL || strstr(errs, t[i].want) ==
		    NULL)
			fprintf(stderr, "%s: %s", t[i].sub, errs);
		assert_non_null(strstr(errs, want));
		assert_non_null(strstr(errs, t[i].want));
		free(want);
		free(conf);
		free(line);
		free(text);
		free(dir);
	}
	free(psk);
}

static void
test_load_cert_files(void **state)
{
	struct grgw_config	 cfg;
	char			*text, *conf, *lines;
	char			 errs[GRGW_CONFIG_ERR_MAX];
	char			*crt, *key, *ca, *pkey;

	crt = write_file("a.crt", "cert", 4, 0644);
	key = write_file("a.key", "key", 3, 0600);
	/* With certificates the probes need a key file of their own. */
	pkey = write_file("probe.key", KEY32, strlen(KEY32), 0600);
	ca = tmp_path("missing-ca.crt");
	assert_true(asprintf(&lines, "certificate = %s\nprivate_key = %s\n"
	    "ca = %s\n[probe]\nkey_file = %s", crt, key, ca, pkey) != -1);
	text = base_with(20, lines);
	conf = write_file("cert.conf", text, strlen(text), 0644);
	assert_int_equal(config_load(conf, &cfg, errs, sizeof(errs)), -1);
	assert_non_null(strstr(errs, ":22: ca "));
	assert_non_null(strstr(errs, "missing-ca.crt does not exist"));
	assert_null(strstr(errs, ":20:"));
	assert_null(strstr(errs, ":21:"));
	free(conf);
	free(text);
	free(lines);

	/* All present: accepted; then the private key loosened: refused. */
	free(ca);
	ca = write_file("ca.crt", "ca", 2, 0644);
	assert_true(asprintf(&lines, "certificate = %s\nprivate_key = %s\n"
	    "ca = %s\n[probe]\nkey_file = %s", crt, key, ca, pkey) != -1);
	text = base_with(20, lines);
	conf = write_file("cert.conf", text, strlen(text), 0644);
	assert_int_equal(config_load(conf, &cfg, errs, sizeof(errs)), 0);
	assert_int_equal(cfg.auth, GRGW_AUTH_CERT);
	assert_int_equal(chmod(key, 0640), 0);
	assert_int_equal(config_load(conf, &cfg, errs, sizeof(errs)), -1);
	assert_non_null(strstr(errs, ":21: private_key "));
	assert_non_null(strstr(errs, "readable by group or others (mode "
	    "0640)"));
	free(conf);
	free(text);
	free(lines);
	free(crt);
	free(key);
	free(ca);
	free(pkey);
}

/* [pair] key_file is checked like the other key files. */
static void
test_load_pair_key(void **state)
{
	struct grgw_config	 cfg;
	char			 errs[GRGW_CONFIG_ERR_MAX];
	char			*psk, *pkey, *extra, *conf, *want;

	psk = write_file("psk", KEY32, strlen(KEY32), 0600);
	pkey = tmp_path("pair.key");
	unlink(pkey);
	/* Lines 21 to 26: [etcd], endpoint, [pair], partner, address, key. */
	assert_true(asprintf(&extra, "\n[etcd]\nendpoint = http://198.18.1.5:"
	    "4000\n[pair]\n" PAIR_ADDRS "\nkey_file = %s", pkey) != -1);
	conf = write_config("pair.conf", "psk", extra);
	assert_int_equal(config_load(conf, &cfg, errs, sizeof(errs)), -1);
	assert_true(asprintf(&want, ":26: key_file %s does not exist; "
	    "expected a key file (grgw keygen > %s", pkey, pkey) != -1);
	if (strstr(errs, want) == NULL)
		fprintf(stderr, "%s", errs);
	assert_non_null(strstr(errs, want));
	free(want);
	free(pkey);

	pkey = write_file("pair.key", KEY32, strlen(KEY32), 0644);
	assert_int_equal(config_load(conf, &cfg, errs, sizeof(errs)), -1);
	assert_non_null(strstr(errs, ":26: key_file "));
	assert_non_null(strstr(errs, "readable by group or others"));
	assert_null(strstr(errs, "AAEC"));
	assert_int_equal(chmod(pkey, 0600), 0);
	assert_int_equal(config_load(conf, &cfg, errs, sizeof(errs)), 0);
	assert_int_equal(cfg.pair.enabled, 1);
	assert_string_equal(cfg.pair.key_file, pkey);
	free(conf);
	free(extra);
	free(pkey);
	free(psk);
}

static void
test_load_file_errors(void **state)
{
	struct grgw_config	 cfg;
	char			*path, *want, *big;
	char			 errs[GRGW_CONFIG_ERR_MAX];
	size_t			 size = 1024 * 1024 + 1;

	path = tmp_path("no-such.conf");
	assert_int_equal(config_load(path, &cfg, errs, sizeof(errs)), -1);
	assert_true(asprintf(&want, "%s: cannot open: %s\n", path,
	    strerror(ENOENT)) != -1);
	assert_string_equal(errs, want);
	free(want);
	free(path);

	assert_int_equal(config_load(tmpdir, &cfg, errs, sizeof(errs)), -1);
	assert_non_null(strstr(errs, ": is not a regular file"));

	big = malloc(size);
	assert_non_null(big);
	memset(big, '#', size);
	path = write_file("big.conf", big, size, 0644);
	assert_int_equal(config_load(path, &cfg, errs, sizeof(errs)), -1);
	assert_non_null(strstr(errs, ": is 1048577 bytes long; expected at "
	    "most 1048576 bytes"));
	free(path);
	free(big);

	/* No newline at the end, and a config of only comments. */
	path = write_file("comments.conf", "# nothing\n# here", 16, 0644);
	assert_int_equal(config_load(path, &cfg, errs, sizeof(errs)), -1);
	assert_non_null(strstr(errs, ": [site] name is missing"));
	free(path);

	assert_int_equal(config_load(NULL, &cfg, errs, sizeof(errs)), -1);
	assert_string_equal(errs, "");
}

/* ---- setup ------------------------------------------------------------ */

static int
setup(void **state)
{
	const char	*base = getenv("TMPDIR");

	snprintf(tmpdir, sizeof(tmpdir), "%s/grgw-test-config.XXXXXX",
	    base != NULL && *base != '\0' ? base : "/tmp");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	return sodium_init() < 0 ? -1 : 0;
}

static int
teardown(void **state)
{
	char	 cmd[PATH_MAX + 16];

	/* Only our own mkdtemp directory. */
	if (strstr(tmpdir, "/grgw-test-config.") == NULL)
		return -1;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_psk),
		cmocka_unit_test(test_valid_cert_ipv6),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_comments_and_whitespace),
		cmocka_unit_test(test_crlf),
		cmocka_unit_test(test_lines_not_terminated),
		cmocka_unit_test(test_prefix_host_bits),
		cmocka_unit_test(test_prefix_syntax),
		cmocka_unit_test(test_unknown_key),
		cmocka_unit_test(test_key_in_wrong_section),
		cmocka_unit_test(test_unknown_section),
		cmocka_unit_test(test_key_outside_section),
		cmocka_unit_test(test_duplicate_key),
		cmocka_unit_test(test_duplicate_section),
		cmocka_unit_test(test_missing_keys),
		cmocka_unit_test(test_empty_config),
		cmocka_unit_test(test_bad_names),
		cmocka_unit_test(test_bad_interfaces),
		cmocka_unit_test(test_bad_addresses),
		cmocka_unit_test(test_lan_address_rules),
		cmocka_unit_test(test_overlap),
		cmocka_unit_test(test_wan_rules),
		cmocka_unit_test(test_auth_rules),
		cmocka_unit_test(test_peer_probes),
		cmocka_unit_test(test_dataplane_values),
		cmocka_unit_test(test_daemon_values),
		cmocka_unit_test(test_ipsec_lifetimes),
		cmocka_unit_test(test_feed_values),
		cmocka_unit_test(test_pair_valid),
		cmocka_unit_test(test_pair_addresses),
		cmocka_unit_test(test_pair_second_path),
		cmocka_unit_test(test_pair_handover_addresses),
		cmocka_unit_test(test_pair_values),
		cmocka_unit_test(test_pair_timing),
		cmocka_unit_test(test_pair_needs),
		cmocka_unit_test(test_pair_files),
		cmocka_unit_test(test_too_many_entries),
		cmocka_unit_test(test_bad_lines),
		cmocka_unit_test(test_message_quoting),
		cmocka_unit_test(test_multiple_errors),
		cmocka_unit_test(test_error_cap),
		cmocka_unit_test(test_parser_api_edges),
		cmocka_unit_test(test_addr),
		cmocka_unit_test(test_psk_decode),
		cmocka_unit_test(test_psk_generate),
		cmocka_unit_test(test_psk_load),
		cmocka_unit_test(test_secret_read),
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_load_cert_files),
		cmocka_unit_test(test_load_run_dir),
		cmocka_unit_test(test_load_run_dir_writable),
		cmocka_unit_test(test_load_pair_key),
		cmocka_unit_test(test_load_file_errors),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
