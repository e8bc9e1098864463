/*
 * netlink/ without a kernel: the messages the kernel data plane would
 * send (parsed back attribute by attribute), and the record file format.
 */
#include <sys/stat.h>

#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/xfrm.h>
#include <netinet/in.h>

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "netlink/libnl.h"

#include "grgw.h"
#include "netlink/netlink.h"
#include "netlink/record.h"

/* ---- helpers ------------------------------------------------------------ */

static void
config_two_prefixes(struct grgw_config *cfg, uint32_t table)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->site.name, sizeof(cfg->site.name), "site-a");
	snprintf(cfg->site.wan_interface, sizeof(cfg->site.wan_interface),
	    "wan0");
	snprintf(cfg->peer.name, sizeof(cfg->peer.name), "site-b");
	assert_int_equal(prefix_parse("198.18.2.0/24",
	    &cfg->peer.prefixes[0]), 0);
	assert_int_equal(prefix_parse("2001:db8:b::/64",
	    &cfg->peer.prefixes[1]), 0);
	cfg->peer.n_prefixes = 2;
	snprintf(cfg->xfrm_interface, sizeof(cfg->xfrm_interface), "grgw0");
	cfg->if_id = 4210;
	cfg->table = table;
	cfg->mtu = 1400;
}

static uint32_t
attr_u32(struct nlattr *a)
{
	assert_non_null(a);
	assert_int_equal(nla_len(a), 4);
	return nla_get_u32(a);
}

/* ---- xfrm interface ------------------------------------------------------ */

static void
test_xfrmi_add_message(void **state)
{
	struct nlattr		*tb[IFLA_MAX + 1], *li[IFLA_INFO_MAX + 1];
	struct nlattr		*xd[IFLA_XFRM_MAX + 1];
	struct nl_msg		*msg;
	struct nlmsghdr		*h;
	struct ifinfomsg	*ifi;

	msg = gwnl_build_xfrmi_add("grgw0", 4210, 7, 1400);
	assert_non_null(msg);
	/* NLM_F_REQUEST, sequence and port are added when it is sent. */
	h = nlmsg_hdr(msg);
	assert_int_equal(h->nlmsg_type, RTM_NEWLINK);
	assert_true(h->nlmsg_flags & NLM_F_CREATE);
	assert_true(h->nlmsg_flags & NLM_F_EXCL);
	assert_true(h->nlmsg_len >= NLMSG_LENGTH(sizeof(*ifi)));
	ifi = nlmsg_data(h);
	assert_true(ifi->ifi_flags & IFF_UP);
	assert_true(ifi->ifi_change & IFF_UP);

	assert_int_equal(nlmsg_parse(h, sizeof(*ifi), tb, IFLA_MAX, NULL), 0);
	assert_non_null(tb[IFLA_IFNAME]);
	assert_string_equal(nla_get_string(tb[IFLA_IFNAME]), "grgw0");
	assert_int_equal(attr_u32(tb[IFLA_MTU]), 1400);

	assert_non_null(tb[IFLA_LINKINFO]);
	assert_int_equal(nla_parse_nested(li, IFLA_INFO_MAX, tb[IFLA_LINKINFO],
	    NULL), 0);
	assert_non_null(li[IFLA_INFO_KIND]);
	assert_string_equal(nla_get_string(li[IFLA_INFO_KIND]), "xfrm");
	assert_non_null(li[IFLA_INFO_DATA]);
	assert_int_equal(nla_parse_nested(xd, IFLA_XFRM_MAX, li[IFLA_INFO_DATA],
	    NULL), 0);
	assert_int_equal(attr_u32(xd[IFLA_XFRM_IF_ID]), 4210);
	assert_int_equal(attr_u32(xd[IFLA_XFRM_LINK]), 7);
	nlmsg_free(msg);
}

static void
test_xfrmi_add_message_without_link(void **state)
{
	struct nlattr		*tb[IFLA_MAX + 1], *li[IFLA_INFO_MAX + 1];
	struct nlattr		*xd[IFLA_XFRM_MAX + 1];
	struct nl_msg		*msg;

	/* No lower interface and the kernel's default MTU. */
	msg = gwnl_build_xfrmi_add("x", 1, 0, 0);
	assert_non_null(msg);
	assert_int_equal(nlmsg_parse(nlmsg_hdr(msg), sizeof(struct ifinfomsg),
	    tb, IFLA_MAX, NULL), 0);
	assert_null(tb[IFLA_MTU]);
	assert_int_equal(nla_parse_nested(li, IFLA_INFO_MAX, tb[IFLA_LINKINFO],
	    NULL), 0);
	assert_int_equal(nla_parse_nested(xd, IFLA_XFRM_MAX, li[IFLA_INFO_DATA],
	    NULL), 0);
	assert_int_equal(attr_u32(xd[IFLA_XFRM_IF_ID]), 1);
	assert_null(xd[IFLA_XFRM_LINK]);
	nlmsg_free(msg);
}

static void
test_xfrmi_add_rejects(void **state)
{
	assert_null(gwnl_build_xfrmi_add(NULL, 1, 1, 1400));
	assert_null(gwnl_build_xfrmi_add("", 1, 1, 1400));
	assert_null(gwnl_build_xfrmi_add("sixteen-chars-xx", 1, 1, 1400));
	assert_null(gwnl_build_xfrmi_add("grgw0", 0, 1, 1400));
}

/* ---- tunnel routes ------------------------------------------------------- */

struct route_case {
	int		 index;
	int		 family;
	int		 dst_len;
	const char	*dst;
	uint32_t	 table;
};

static void
check_tunnel_route(const struct route_case *c, int add)
{
	struct grgw_config	 cfg;
	struct nlattr		*tb[RTA_MAX + 1];
	struct nl_msg		*msg;
	struct nlmsghdr		*h;
	struct rtmsg		*rtm;
	uint8_t			 want[16];
	int			 alen = c->family == AF_INET ? 4 : 16;

	config_two_prefixes(&cfg, c->table);
	msg = gwnl_build_tunnel_route(&cfg, c->index, 9, add);
	assert_non_null(msg);
	h = nlmsg_hdr(msg);
	assert_int_equal(h->nlmsg_type, add ? RTM_NEWROUTE : RTM_DELROUTE);
	if (add) {
		assert_true(h->nlmsg_flags & NLM_F_CREATE);
		assert_true(h->nlmsg_flags & NLM_F_EXCL);
	}
	assert_true(h->nlmsg_len >= NLMSG_LENGTH(sizeof(*rtm)));
	rtm = nlmsg_data(h);
	assert_int_equal(rtm->rtm_family, c->family);
	assert_int_equal(rtm->rtm_dst_len, c->dst_len);
	assert_int_equal(rtm->rtm_src_len, 0);
	assert_int_equal(rtm->rtm_type, RTN_UNICAST);
	/* Tables above 255 only fit the attribute; the header says so. */
	assert_int_equal(rtm->rtm_table,
	    c->table < 256 ? c->table : RT_TABLE_UNSPEC);
	if (add) {
		assert_int_equal(rtm->rtm_scope, RT_SCOPE_LINK);
		assert_int_equal(rtm->rtm_protocol, RTPROT_STATIC);
	}

	assert_int_equal(nlmsg_parse(h, sizeof(*rtm), tb, RTA_MAX, NULL), 0);
	assert_int_equal(attr_u32(tb[RTA_TABLE]), c->table);
	assert_int_equal(attr_u32(tb[RTA_OIF]), 9);
	assert_non_null(tb[RTA_DST]);
	assert_int_equal(nla_len(tb[RTA_DST]), alen);
	assert_int_equal(inet_pton(c->family, c->dst, want), 1);
	assert_memory_equal(nla_data(tb[RTA_DST]), want, (size_t)alen);
	assert_null(tb[RTA_GATEWAY]);
	nlmsg_free(msg);
}

static void
test_tunnel_route_ipv4(void **state)
{
	const struct route_case c = { 0, AF_INET, 24, "198.18.2.0", 4210 };

	check_tunnel_route(&c, 1);
	check_tunnel_route(&c, 0);
}

static void
test_tunnel_route_ipv6(void **state)
{
	const struct route_case c = { 1, AF_INET6, 64, "2001:db8:b::", 4210 };

	check_tunnel_route(&c, 1);
	check_tunnel_route(&c, 0);
}

static void
test_tunnel_route_small_table(void **state)
{
	const struct route_case c4 = { 0, AF_INET, 24, "198.18.2.0", 100 };
	const struct route_case c6 = { 1, AF_INET6, 64, "2001:db8:b::", 100 };

	check_tunnel_route(&c4, 1);
	check_tunnel_route(&c6, 1);
}

static void
test_tunnel_route_rejects(void **state)
{
	struct grgw_config	 cfg;

	config_two_prefixes(&cfg, 4210);
	assert_null(gwnl_build_tunnel_route(NULL, 0, 9, 1));
	assert_null(gwnl_build_tunnel_route(&cfg, -1, 9, 1));
	assert_null(gwnl_build_tunnel_route(&cfg, 2, 9, 1));
	assert_null(gwnl_build_tunnel_route(&cfg, 0, 0, 1));
	cfg.table = 0;
	assert_null(gwnl_build_tunnel_route(&cfg, 0, 9, 1));
}

/* ---- record lines --------------------------------------------------------- */

static const char *const good_lines[] = {
	"block rule4 pref 4200 iif wan0 from 198.18.2.0/24 blackhole",
	"block rule6 pref 4200 iif wan0 from 2001:db8:b::/64 blackhole",
	"block rule4 pref 4211 lookup 4211",
	"block rule6 pref 4211 lookup 4211",
	"run rule4 pref 4210 from 10.0.0.0/8 lookup 4210",
	"run rule4 pref 1 iif eth0.100 blackhole",
	"block route4 table 4211 unreachable 198.18.2.0/24",
	"block route6 table 4211 unreachable 2001:db8:b::/64",
	"block route4 table 4294967295 unreachable 0.0.0.0/0",
	"run route4 table 4210 198.18.2.0/24 dev grgw0",
	"run route6 table 4210 2001:db8:b::/64 dev grgw0",
	"run route4 table 1 192.0.2.1/32 dev eth0.100",
	"run sysctl net/ipv4/ip_forward 0",
	"run sysctl net/ipv6/conf/all/forwarding 1",
	"run sysctl net/ipv4/conf/eth0.100/rp_filter 2",
	"run sysctl net/ipv4/neigh/default/gc_thresh1 -1",
	"run link grgw0 xfrm if_id 4210",
	"run offload lan0 gro on",
	"run offload eth0.100 gro off",
};

static void
test_record_round_trip(void **state)
{
	struct rec_obj	 o;
	char		 err[256], out[REC_LINE_MAX];
	size_t		 i;

	for (i = 0; i < nitems(good_lines); i++) {
		memset(&o, 0, sizeof(o));
		if (rec_parse_line(good_lines[i], &o, err, sizeof(err)) != 0)
			fail_msg("'%s': %s", good_lines[i], err);
		assert_true(rec_format(&o, out, sizeof(out)) > 0);
		assert_string_equal(out, good_lines[i]);
	}
}

static void
test_record_parse_fields(void **state)
{
	struct rec_obj	 o;
	char		 err[256], buf[64];

	assert_int_equal(rec_parse_line(good_lines[0], &o, err, sizeof(err)),
	    0);
	assert_int_equal(o.kind, REC_RULE);
	assert_int_equal(o.tag, REC_BLOCK);
	assert_int_equal(o.u.rule.family, AF_INET);
	assert_int_equal(o.u.rule.pref, 4200);
	assert_string_equal(o.u.rule.iif, "wan0");
	assert_true(o.u.rule.has_from);
	assert_string_equal(prefix_fmt(&o.u.rule.from, buf, sizeof(buf)),
	    "198.18.2.0/24");
	assert_int_equal(o.u.rule.action, REC_RULE_BLACKHOLE);

	assert_int_equal(rec_parse_line("run route6 table 4210 "
	    "2001:db8:b::/64 dev grgw0", &o, err, sizeof(err)), 0);
	assert_int_equal(o.kind, REC_ROUTE);
	assert_int_equal(o.tag, REC_RUN);
	assert_int_equal(o.u.route.family, AF_INET6);
	assert_int_equal(o.u.route.table, 4210);
	assert_int_equal(o.u.route.type, REC_ROUTE_UNICAST);
	assert_int_equal(o.u.route.dst.len, 64);
	assert_string_equal(o.u.route.dev, "grgw0");

	/* Extra blanks between words are fine; the words are not. */
	assert_int_equal(rec_parse_line("  run\tsysctl  net/ipv4/ip_forward 0 ",
	    &o, err, sizeof(err)), 0);
	assert_int_equal(o.kind, REC_SYSCTL);
	assert_string_equal(o.u.sysctl.path, "net/ipv4/ip_forward");
	assert_string_equal(o.u.sysctl.value, "0");

	assert_int_equal(rec_parse_line("run offload lan0 gro on", &o, err,
	    sizeof(err)), 0);
	assert_int_equal(o.kind, REC_OFFLOAD);
	assert_string_equal(o.u.offload.dev, "lan0");
	assert_int_equal(o.u.offload.on, 1);

	/* The pair's hold has an ARP table beside its inet one. */
	assert_int_equal(rec_parse_line("run nft arp grgw-pair", &o, err,
	    sizeof(err)), 0);
	assert_int_equal(o.kind, REC_NFT);
	assert_string_equal(o.u.nft.family, "arp");
	assert_string_equal(o.u.nft.table, "grgw-pair");
	assert_int_equal(rec_parse_line("run nft bridge grgw-pair", &o, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "arp"));
}

static void
test_record_comments(void **state)
{
	struct rec_obj	 o;
	char		 err[256];

	memset(&o, 0x5a, sizeof(o));
	assert_int_equal(rec_parse_line("", &o, err, sizeof(err)), 1);
	assert_int_equal(rec_parse_line("   \t", &o, err, sizeof(err)), 1);
	assert_int_equal(rec_parse_line("# block rule4", &o, err, sizeof(err)),
	    1);
	assert_int_equal(rec_parse_line("  # indented", &o, err, sizeof(err)),
	    1);
}

static const char *const bad_lines[] = {
	"keep rule4 pref 4200 blackhole",		/* tag */
	"block",					/* nothing after tag */
	"block rule pref 4200 blackhole",		/* no family */
	"block rule5 pref 4200 blackhole",
	"block rule44 pref 4200 blackhole",
	"block rule4 4200 blackhole",			/* no 'pref' */
	"block rule4 pref 0 blackhole",			/* pref 0 = any */
	"block rule4 pref 04200 blackhole",		/* not canonical */
	"block rule4 pref +4200 blackhole",
	"block rule4 pref 4294967296 blackhole",	/* > 32 bits */
	"block rule4 pref 4200",			/* no action */
	"block rule4 pref 4200 lookup",
	"block rule4 pref 4200 lookup 0",
	"block rule4 pref 4200 lookup main",
	"block rule4 pref 4200 blackhole lookup 4211",	/* trailing word */
	"block rule4 pref 4200 from 2001:db8:b::/64 blackhole", /* family */
	"block rule6 pref 4200 from 198.18.2.0/24 blackhole",
	"block rule4 pref 4200 from 198.18.2.1/24 blackhole", /* host bits */
	"block rule4 pref 4200 from 198.18.2.0 blackhole",   /* no length */
	"block rule4 pref 4200 from 198.18.2.0/33 blackhole",
	"block rule4 pref 4200 iif blackhole",		/* name missing */
	"block rule4 pref 4200 iif seventeen-chars-x blackhole",
	"block rule4 pref 4200 iif a/b blackhole",
	"block rule4 pref 4200 from 198.18.2.0/24 iif wan0 blackhole",
	"block route4 table 4211 198.18.2.0/24",	/* no dev */
	"block route4 table 4211 unreachable",
	"block route4 table 0 unreachable 198.18.2.0/24",
	"block route4 4211 unreachable 198.18.2.0/24",
	"block route6 table 4211 unreachable 198.18.2.0/24",
	"block route4 table 4211 prohibit 198.18.2.0/24",
	"run route4 table 4210 198.18.2.0/24 dev",
	"run route4 table 4210 198.18.2.0/24 via grgw0",
	"run route4 table 4210 198.18.2.0/24 dev .. ",
	"run link",
	"run link grgw0",
	"run link grgw0 vti if_id 1",
	"run link grgw0 xfrm if_id 0",
	"run link grgw0 xfrm if_id",
	"run link grgw0 xfrm if_id 1 up",
	"run sysctl net/ipv4/ip_forward",
	"run sysctl kernel/modprobe 0",			/* outside net/ */
	"run sysctl /net/ipv4/ip_forward 0",
	"run sysctl net/ipv4/../../kernel/x 0",
	"run sysctl net//ipv4 0",
	"run sysctl net/ipv4/ip_forward/ 0",
	"run sysctl net.ipv4.ip_forward 0",		/* dots: not a path */
	"run sysctl net/ipv4/ip_forward yes",
	"run sysctl net/ipv4/ip_forward 01",
	"run sysctl net/ipv4/ip_forward 1 2",
	"run sysctl net/ipv4/ip_forward 1\r",		/* control char */
	"run qdisc wan0 htb",				/* unknown kind */
	"run offload lan0",
	"run offload lan0 gro",
	"run offload lan0 tso on",			/* only gro */
	"run offload lan0 gro yes",
	"run offload lan0 gro on off",
	"run offload a/b gro on",
	"run offload seventeen-chars-x gro on",
};

static void
test_record_rejects(void **state)
{
	struct rec_obj	 o;
	char		 err[256];
	size_t		 i;

	for (i = 0; i < nitems(bad_lines); i++) {
		err[0] = '\0';
		if (rec_parse_line(bad_lines[i], &o, err, sizeof(err)) != -1)
			fail_msg("accepted: '%s'", bad_lines[i]);
		/* Every rejection says what was expected. */
		if (err[0] == '\0')
			fail_msg("no message for '%s'", bad_lines[i]);
	}
}

static void
test_record_long_line(void **state)
{
	char		 line[REC_LINE_MAX + 16], err[256];
	struct rec_obj	 o;

	memset(line, 'x', sizeof(line) - 1);
	memcpy(line, "run ", 4);
	line[sizeof(line) - 1] = '\0';
	assert_int_equal(rec_parse_line(line, &o, err, sizeof(err)), -1);
}

/* Unparseable lines are kept, in place, and written back verbatim. */
static void
test_record_text_keeps_bad_lines(void **state)
{
	static const char text[] =
	    "# comment\n"
	    "block rule4 pref 4211 lookup 4211\n"
	    "\n"
	    "this is not a record line\n"
	    "run sysctl net/ipv4/ip_forward 0\n"
	    "run with a nul \0 byte\n"
	    "run link grgw0 xfrm if_id 4210";	/* no final newline */
	struct rec_list	 l;
	struct rec_obj	*o;
	char		*out = NULL;
	size_t		 outlen = 0;
	FILE		*f;
	int		 block, run;

	rec_init(&l, "test-record");
	assert_int_equal(rec_parse_text(&l, text, sizeof(text) - 1), 2);
	assert_int_equal(rec_count(&l, &block, &run), 5);
	assert_int_equal(block, 1);
	assert_int_equal(run, 2);

	o = TAILQ_FIRST(&l.objs);
	assert_int_equal(o->kind, REC_RULE);
	assert_int_equal(o->lineno, 2);
	o = TAILQ_NEXT(o, entry);
	assert_int_equal(o->kind, REC_UNPARSED);
	assert_int_equal(o->lineno, 4);
	assert_string_equal(o->text, "this is not a record line");
	o = TAILQ_NEXT(o, entry);
	assert_int_equal(o->kind, REC_SYSCTL);
	o = TAILQ_NEXT(o, entry);
	assert_int_equal(o->kind, REC_UNPARSED);
	assert_int_equal(o->lineno, 6);
	assert_int_equal(o->textlen, strlen("run with a nul ") + 1 +
	    strlen(" byte"));
	o = TAILQ_NEXT(o, entry);
	assert_int_equal(o->kind, REC_LINK);
	assert_int_equal(o->lineno, 7);

	f = open_memstream(&out, &outlen);
	assert_non_null(f);
	assert_int_equal(rec_write(&l, f), 0);
	assert_int_equal(fclose(f), 0);
	/* Skip the header comment; the rest is the objects, in order. */
	{
		static const char body[] =
		    "block rule4 pref 4211 lookup 4211\n"
		    "this is not a record line\n"
		    "run sysctl net/ipv4/ip_forward 0\n"
		    "run with a nul \0 byte\n"
		    "run link grgw0 xfrm if_id 4210\n";
		assert_true(outlen > sizeof(body) - 1);
		assert_memory_equal(out + outlen - (sizeof(body) - 1), body,
		    sizeof(body) - 1);
		assert_int_equal(out[0], '#');
	}
	free(out);
	rec_clear(&l);
}

static void
test_record_same(void **state)
{
	struct rec_obj	 a, b;
	char		 err[256];

	assert_int_equal(rec_parse_line("run sysctl net/ipv4/ip_forward 0",
	    &a, err, sizeof(err)), 0);
	assert_int_equal(rec_parse_line("run sysctl net/ipv4/ip_forward 1",
	    &b, err, sizeof(err)), 0);
	assert_true(rec_same(&a, &b));		/* same sysctl */

	assert_int_equal(rec_parse_line("run route4 table 4210 "
	    "198.18.2.0/24 dev grgw0", &a, err, sizeof(err)), 0);
	assert_int_equal(rec_parse_line("run route4 table 4210 "
	    "198.18.2.0/24 dev grgw1", &b, err, sizeof(err)), 0);
	assert_false(rec_same(&a, &b));
	assert_true(rec_same_route_slot(&a, &b));
	assert_int_equal(rec_parse_line("block route4 table 4210 "
	    "unreachable 198.18.2.0/25", &b, err, sizeof(err)), 0);
	assert_false(rec_same_route_slot(&a, &b));

	assert_int_equal(rec_parse_line("block rule4 pref 4200 iif wan0 "
	    "from 198.18.2.0/24 blackhole", &a, err, sizeof(err)), 0);
	assert_int_equal(rec_parse_line("block rule4 pref 4200 iif wan1 "
	    "from 198.18.2.0/24 blackhole", &b, err, sizeof(err)), 0);
	assert_false(rec_same(&a, &b));
	assert_int_equal(rec_parse_line("block rule4 pref 4200 iif wan0 "
	    "from 198.18.2.0/24 blackhole", &b, err, sizeof(err)), 0);
	assert_true(rec_same(&a, &b));
}

/* ---- record files ---------------------------------------------------------- */

static void
test_record_save_load(void **state)
{
	char		 base[] = "/tmp/grgw-test-record.XXXXXX";
	char		 dir[PATH_MAX], path[PATH_MAX];
	struct rec_list	 l, m;
	struct rec_obj	 o, *p, *q;
	struct stat	 st;
	char		 err[256];
	size_t		 i;

	assert_non_null(mkdtemp(base));
	snprintf(dir, sizeof(dir), "%s/a/b", base);
	snprintf(path, sizeof(path), "%s/record", dir);

	rec_init(&l, path);
	for (i = 0; i < nitems(good_lines); i++) {
		assert_int_equal(rec_parse_line(good_lines[i], &o, err,
		    sizeof(err)), 0);
		assert_non_null(rec_append(&l, &o));
	}
	assert_int_equal(rec_save(&l, path), 0);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	rec_init(&m, path);
	assert_int_equal(rec_load(&m, path), 0);
	assert_int_equal(rec_count(&m, NULL, NULL), (int)nitems(good_lines));
	for (p = TAILQ_FIRST(&l.objs), q = TAILQ_FIRST(&m.objs);
	    p != NULL && q != NULL;
	    p = TAILQ_NEXT(p, entry), q = TAILQ_NEXT(q, entry)) {
		assert_true(rec_same(p, q));
		assert_int_equal(p->tag, q->tag);
	}
	assert_null(p);
	assert_null(q);
	rec_clear(&m);

	/* Others must not be able to write what decides what is deleted. */
	assert_int_equal(chmod(path, 0620), 0);
	rec_init(&m, path);
	assert_int_equal(rec_load(&m, path), -EPERM);
	assert_int_equal(chmod(path, 0600), 0);

	/* An empty record removes the file; a missing file is empty. */
	rec_clear(&l);
	assert_int_equal(rec_save(&l, path), 0);
	assert_int_equal(stat(path, &st), -1);
	assert_int_equal(rec_load(&m, path), 0);
	assert_int_equal(rec_count(&m, NULL, NULL), 0);

	/* No temporary files left behind. */
	assert_int_equal(rmdir(dir), 0);
	snprintf(dir, sizeof(dir), "%s/a", base);
	assert_int_equal(rmdir(dir), 0);
	assert_int_equal(rmdir(base), 0);
}


/* ---- XFRM: what a dump message makes grgw delete ------------------------ */

#define TEST_IF_ID	4210

/* A dump message for an SA: ESP to 198.51.100.10, SPI c0ffee01. */
static struct nl_msg *
dump_sa(int with_if_id, uint32_t if_id, int with_mark)
{
	struct xfrm_usersa_info	 sa;
	struct xfrm_mark	 mark = { .v = 0x42, .m = 0xff };
	struct nl_msg		*m;

	memset(&sa, 0, sizeof(sa));
	assert_int_equal(inet_pton(AF_INET, "198.51.100.10", &sa.id.daddr.a4),
	    1);
	sa.id.spi = htonl(0xc0ffee01);
	sa.id.proto = IPPROTO_ESP;
	sa.family = AF_INET;
	sa.reqid = 1;
	assert_non_null(m = nlmsg_alloc_simple(XFRM_MSG_NEWSA, NLM_F_MULTI));
	assert_int_equal(nlmsg_append(m, &sa, sizeof(sa), NLMSG_ALIGNTO), 0);
	if (with_if_id)
		assert_int_equal(nla_put_u32(m, XFRMA_IF_ID, if_id), 0);
	if (with_mark)
		assert_int_equal(nla_put(m, XFRMA_MARK, sizeof(mark), &mark), 0);
	return m;
}

/* A dump message for an outbound policy 198.18.1.0/24 -> 198.18.2.0/24. */
static struct nl_msg *
dump_policy(uint8_t dir, uint32_t if_id)
{
	struct xfrm_userpolicy_info	 p;
	struct xfrm_userpolicy_type	 t = { .type = XFRM_POLICY_TYPE_MAIN };
	struct nl_msg			*m;

	memset(&p, 0, sizeof(p));
	assert_int_equal(inet_pton(AF_INET, "198.18.1.0", &p.sel.saddr.a4), 1);
	assert_int_equal(inet_pton(AF_INET, "198.18.2.0", &p.sel.daddr.a4), 1);
	p.sel.prefixlen_s = 24;
	p.sel.prefixlen_d = 24;
	p.sel.family = AF_INET;
	p.index = 0x1239;
	p.dir = dir;
	assert_non_null(m = nlmsg_alloc_simple(XFRM_MSG_NEWPOLICY,
	    NLM_F_MULTI));
	assert_int_equal(nlmsg_append(m, &p, sizeof(p), NLMSG_ALIGNTO), 0);
	assert_int_equal(nla_put_u32(m, XFRMA_IF_ID, if_id), 0);
	assert_int_equal(nla_put(m, XFRMA_POLICY_TYPE, sizeof(t), &t), 0);
	return m;
}

/* The delete request for message m (its exact length), or NULL. */
static struct nl_msg *
delete_for(struct nl_msg *m, uint32_t if_id)
{
	struct nlmsghdr	*h = nlmsg_hdr(m);

	return gwnl_build_xfrm_delete(h, h->nlmsg_len, if_id);
}

static void
test_xfrm_delete_sa(void **state)
{
	struct nl_msg		*in, *out;
	struct nlmsghdr		*h;
	struct xfrm_usersa_id	*id;
	struct nlattr		*a;
	struct xfrm_mark	*mark;

	(void)state;
	in = dump_sa(1, TEST_IF_ID, 1);
	assert_non_null(out = delete_for(in, TEST_IF_ID));
	h = nlmsg_hdr(out);
	assert_int_equal(h->nlmsg_type, XFRM_MSG_DELSA);
	assert_true(h->nlmsg_flags & NLM_F_ACK);	/* the answer is waited for */
	assert_true(nlmsg_datalen(h) >= (int)sizeof(*id));
	id = nlmsg_data(h);
	assert_int_equal(ntohl(id->spi), 0xc0ffee01);
	assert_int_equal(id->proto, IPPROTO_ESP);
	assert_int_equal(id->family, AF_INET);
	assert_int_equal(ntohl(id->daddr.a4), 0xc633640a);	/* .10 */
	a = nlmsg_find_attr(h, sizeof(*id), XFRMA_MARK);
	assert_non_null(a);
	assert_int_equal(nla_len(a), sizeof(*mark));
	mark = nla_data(a);
	assert_int_equal(mark->v, 0x42);
	assert_int_equal(mark->m, 0xff);
	/* An SA is found by (daddr, spi, proto): no if_id needed. */
	assert_null(nlmsg_find_attr(h, sizeof(*id), XFRMA_IF_ID));
	nlmsg_free(out);
	nlmsg_free(in);

	in = dump_sa(1, TEST_IF_ID, 0);
	assert_non_null(out = delete_for(in, TEST_IF_ID));
	assert_null(nlmsg_find_attr(nlmsg_hdr(out),
	    sizeof(struct xfrm_usersa_id), XFRMA_MARK));
	nlmsg_free(out);
	nlmsg_free(in);
}

static void
test_xfrm_delete_policy(void **state)
{
	struct nl_msg			*in, *out;
	struct nlmsghdr			*h;
	struct xfrm_userpolicy_id	*id;
	struct xfrm_userpolicy_type	*t;
	struct nlattr			*a;

	(void)state;
	in = dump_policy(XFRM_POLICY_OUT, TEST_IF_ID);
	assert_non_null(out = delete_for(in, TEST_IF_ID));
	h = nlmsg_hdr(out);
	assert_int_equal(h->nlmsg_type, XFRM_MSG_DELPOLICY);
	id = nlmsg_data(h);
	assert_int_equal(id->index, 0x1239);
	assert_int_equal(id->dir, XFRM_POLICY_OUT);
	assert_int_equal(id->sel.prefixlen_d, 24);
	assert_int_equal(ntohl(id->sel.daddr.a4), 0xc6120200);
	/* Policies of an xfrm interface are found only with their if_id. */
	a = nlmsg_find_attr(h, sizeof(*id), XFRMA_IF_ID);
	assert_non_null(a);
	assert_int_equal(nla_get_u32(a), TEST_IF_ID);
	a = nlmsg_find_attr(h, sizeof(*id), XFRMA_POLICY_TYPE);
	assert_non_null(a);
	t = nla_data(a);
	assert_int_equal(t->type, XFRM_POLICY_TYPE_MAIN);
	nlmsg_free(out);
	nlmsg_free(in);

	/* Per-socket policies (charon's IKE bypass) are never touched. */
	in = dump_policy(XFRM_POLICY_MAX, TEST_IF_ID);
	assert_null(delete_for(in, TEST_IF_ID));
	nlmsg_free(in);
}

static void
test_xfrm_delete_others_left(void **state)
{
	struct nl_msg	*in;

	(void)state;
	in = dump_sa(1, 4211, 0);			/* someone else's */
	assert_null(delete_for(in, TEST_IF_ID));
	nlmsg_free(in);
	in = dump_sa(0, 0, 0);				/* no interface */
	assert_null(delete_for(in, TEST_IF_ID));
	assert_null(delete_for(in, 0));		/* 0 is never flushed */
	nlmsg_free(in);
	in = dump_policy(XFRM_POLICY_IN, 4211);
	assert_null(delete_for(in, TEST_IF_ID));
	nlmsg_free(in);
	in = dump_sa(1, TEST_IF_ID, 0);
	nlmsg_hdr(in)->nlmsg_type = XFRM_MSG_NEWAE;	/* not an SA dump */
	assert_null(delete_for(in, TEST_IF_ID));
	nlmsg_free(in);
}

/* Whatever the kernel (or a forged message) says about lengths. */
static void
test_xfrm_delete_lengths(void **state)
{
	struct nl_msg	*in, *out;
	struct nlmsghdr	*h;
	struct nlattr	*a;
	uint32_t	 full;
	size_t		 len;
	void		*copy;

	(void)state;
	in = dump_sa(1, TEST_IF_ID, 1);
	h = nlmsg_hdr(in);
	full = h->nlmsg_len;
	/* Every truncation: nothing read past the end, nothing deleted. */
	for (len = 0; len < full; len++) {
		assert_non_null(copy = malloc(full));
		memcpy(copy, h, full);
		out = gwnl_build_xfrm_delete(copy, len, TEST_IF_ID);
		assert_null(out);
		free(copy);
	}
	/* A header claiming more than there is, or less than itself. */
	h->nlmsg_len = full + 4;
	assert_null(gwnl_build_xfrm_delete(h, full, TEST_IF_ID));
	h->nlmsg_len = NLMSG_HDRLEN - 1;
	assert_null(gwnl_build_xfrm_delete(h, full, TEST_IF_ID));
	/* A payload shorter than an SA. */
	h->nlmsg_len = NLMSG_HDRLEN + sizeof(struct xfrm_usersa_info) - 4;
	assert_null(gwnl_build_xfrm_delete(h, full, TEST_IF_ID));
	h->nlmsg_len = full;
	assert_non_null(out = gwnl_build_xfrm_delete(h, full, TEST_IF_ID));
	nlmsg_free(out);
	/* An if_id attribute too short to hold one: not ours. */
	a = nlmsg_find_attr(h, sizeof(struct xfrm_usersa_info), XFRMA_IF_ID);
	assert_non_null(a);
	a->nla_len = NLA_HDRLEN + 2;
	assert_null(gwnl_build_xfrm_delete(h, full, TEST_IF_ID));
	nlmsg_free(in);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_xfrmi_add_message),
		cmocka_unit_test(test_xfrmi_add_message_without_link),
		cmocka_unit_test(test_xfrmi_add_rejects),
		cmocka_unit_test(test_xfrm_delete_sa),
		cmocka_unit_test(test_xfrm_delete_policy),
		cmocka_unit_test(test_xfrm_delete_others_left),
		cmocka_unit_test(test_xfrm_delete_lengths),
		cmocka_unit_test(test_tunnel_route_ipv4),
		cmocka_unit_test(test_tunnel_route_ipv6),
		cmocka_unit_test(test_tunnel_route_small_table),
		cmocka_unit_test(test_tunnel_route_rejects),
		cmocka_unit_test(test_record_round_trip),
		cmocka_unit_test(test_record_parse_fields),
		cmocka_unit_test(test_record_comments),
		cmocka_unit_test(test_record_rejects),
		cmocka_unit_test(test_record_long_line),
		cmocka_unit_test(test_record_text_keeps_bad_lines),
		cmocka_unit_test(test_record_same),
		cmocka_unit_test(test_record_save_load),
	};

	log_init("test_netlink", LOG_LVL_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
