/*
 * Traffic classes: built-in defaults, DSCP and rate codecs, and the
 * compiler from configuration to kernel objects (an nftables batch and
 * an HTB tree).  Pure: no I/O, so unit tests read the generated text and
 * tree directly.  See policy.h for the classes and why they are what
 * they are.
 */
#include <sys/socket.h>

#include <netinet/in.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "grgw.h"
#include "policy/policy.h"

/* ---- built-in classes ------------------------------------------------- */

struct builtin {
	const char	*name;
	int		 enabled;
	int		 protocol;
	uint16_t	 ports[2][2];	/* up to two ranges; {0,0} ends */
	uint32_t	 dscp;
	uint32_t	 priority;
	uint32_t	 percent;
};

/*
 * Order matters only for overlapping matches (first class wins): the
 * classes below use distinct ports.
 */
static const struct builtin builtins[] = {
	/* SIP Bono <-> Sprout: RFC 4594 signalling.  Off by default: it
	 * only crosses the sites when a Bono uses the remote Sprout. */
	{ "sip", 0, GRGW_L4_ANY, { { 5052, 5052 }, { 5054, 5054 } },
	  40, 0, 10 },
	/* Rogers (memcached proxy): reads and writes of registration and
	 * call state while a call is set up: low-latency data. */
	{ "rogers", 1, GRGW_L4_TCP, { { 11311, 11311 } }, 18, 1, 20 },
	/* grgw's own link probes: OAM. */
	{ "oam", 1, GRGW_L4_UDP, { { GRGW_OAM_PORT, GRGW_OAM_PORT } },
	  16, 2, 5 },
	/* Chronos timer replication: low-latency data, but it yields to
	 * Rogers (higher drop precedence): no caller waits on it. */
	{ "chronos", 1, GRGW_L4_TCP, { { 7253, 7253 } }, 20, 2, 10 },
	/* Cassandra internode (7001 with internode TLS): replication and
	 * repair streams, elastic but they must keep making progress. */
	{ "cassandra", 1, GRGW_L4_TCP, { { 7000, 7001 } }, 10, 3, 25 },
};

void
policy_qos_defaults(struct grgw_qos *q)
{
	const struct builtin	*b;
	struct grgw_class	*c;
	size_t			 i, j;

	memset(q, 0, sizeof(*q));
	q->enabled = 1;
	for (i = 0; i < nitems(builtins) && i < GRGW_MAX_CLASSES; i++) {
		b = &builtins[i];
		c = &q->classes[q->n_classes++];
		snprintf(c->name, sizeof(c->name), "%s", b->name);
		c->enabled = b->enabled;
		c->builtin = 1;
		c->protocol = b->protocol;
		for (j = 0; j < 2 && b->ports[j][0] != 0; j++) {
			c->ports[c->n_ports].lo = b->ports[j][0];
			c->ports[c->n_ports].hi = b->ports[j][1];
			c->n_ports++;
		}
		c->dscp = b->dscp;
		c->priority = b->priority;
		c->rate.percent = b->percent;
	}
}

/* ---- DSCP ------------------------------------------------------------- */

static const struct {
	const char	*name;
	uint32_t	 value;
} dscp_names[] = {
	{ "CS0", 0 }, { "CS1", 8 }, { "AF11", 10 }, { "AF12", 12 },
	{ "AF13", 14 }, { "CS2", 16 }, { "AF21", 18 }, { "AF22", 20 },
	{ "AF23", 22 }, { "CS3", 24 }, { "AF31", 26 }, { "AF32", 28 },
	{ "AF33", 30 }, { "CS4", 32 }, { "AF41", 34 }, { "AF42", 36 },
	{ "AF43", 38 }, { "CS5", 40 }, { "VA", 44 }, { "EF", 46 },
	{ "CS6", 48 }, { "CS7", 56 },
	{ "DF", 0 },	/* an alias: formatting finds CS0 first */
};

int
policy_dscp_parse(const char *s, uint32_t *out)
{
	size_t		 i;
	uint32_t	 v = 0;

	if (s == NULL || s[0] == '\0')
		return -1;
	for (i = 0; i < nitems(dscp_names); i++) {
		if (strcasecmp(s, dscp_names[i].name) == 0) {
			*out = dscp_names[i].value;
			return 0;
		}
	}
	/* Decimal, no sign, no leading zeros, at most 63. */
	if (strlen(s) > 2 || (s[0] == '0' && s[1] != '\0'))
		return -1;
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (uint32_t)(s[i] - '0');
	}
	if (v > 63)
		return -1;
	*out = v;
	return 0;
}

const char *
policy_dscp_name(uint32_t dscp, char *buf, size_t size)
{
	size_t	 i;

	for (i = 0; i < nitems(dscp_names); i++) {
		if (dscp_names[i].value == dscp) {
			snprintf(buf, size, "%s", dscp_names[i].name);
			return buf;
		}
	}
	snprintf(buf, size, "%u", dscp);
	return buf;
}

/* ---- rates ------------------------------------------------------------ */

int
policy_rate_parse(const char *s, uint64_t *bps)
{
	static const struct {
		const char	*unit;
		uint64_t	 mult;
	} units[] = {
		{ "", 1 }, { "bit", 1 }, { "kbit", 1000ULL },
		{ "mbit", 1000000ULL }, { "gbit", 1000000000ULL },
	};
	uint64_t	 n = 0;
	size_t		 i, digits;

	if (s == NULL)
		return -1;
	for (digits = 0; s[digits] >= '0' && s[digits] <= '9'; digits++) {
		if (n > (UINT64_MAX - 9) / 10)
			return -2;
		n = n * 10 + (uint64_t)(s[digits] - '0');
	}
	if (digits == 0 || (s[0] == '0' && digits > 1))
		return -1;
	for (i = 0; i < nitems(units); i++) {
		if (strcasecmp(s + digits, units[i].unit) != 0)
			continue;
		if (n > POLICY_RATE_MAX / units[i].mult)
			return -2;
		n *= units[i].mult;
		if (n < POLICY_RATE_MIN || n > POLICY_RATE_MAX)
			return -2;
		*bps = n;
		return 0;
	}
	return -1;
}

const char *
policy_rate_fmt(uint64_t bps, char *buf, size_t size)
{
	static const struct {
		const char	*unit;
		uint64_t	 div;
	} units[] = {
		{ "Gbit/s", 1000000000ULL }, { "Mbit/s", 1000000ULL },
		{ "kbit/s", 1000ULL },
	};
	size_t		 i;
	uint64_t	 whole, tenths;

	for (i = 0; i < nitems(units); i++) {
		if (bps < units[i].div)
			continue;
		whole = bps / units[i].div;
		tenths = (bps % units[i].div) * 10 / units[i].div;
		if (tenths != 0)
			snprintf(buf, size, "%llu.%llu %s",
			    (unsigned long long)whole,
			    (unsigned long long)tenths, units[i].unit);
		else
			snprintf(buf, size, "%llu %s",
			    (unsigned long long)whole, units[i].unit);
		return buf;
	}
	snprintf(buf, size, "%llu bit/s", (unsigned long long)bps);
	return buf;
}

uint64_t
policy_rate_bps(const struct grgw_rate *r, uint64_t wan_rate)
{
	if (wan_rate == 0)
		return 0;
	if (r->percent != 0)
		return wan_rate / 100 * r->percent +
		    wan_rate % 100 * r->percent / 100;
	return r->bps;
}

uint64_t
policy_rate_sum(const struct grgw_qos *q)
{
	uint64_t	 sum = 0;
	int		 i;

	for (i = 0; i < q->n_classes && i < GRGW_MAX_CLASSES; i++)
		if (q->classes[i].enabled)
			sum += policy_rate_bps(&q->classes[i].rate,
			    q->wan_rate);
	return sum;
}

int
policy_class_name_ok(const char *name)
{
	size_t	 i, len = strlen(name);

	if (len == 0 || len > GRGW_CLASS_NAME_MAX)
		return 0;
	if (name[0] < 'a' || name[0] > 'z')
		return 0;
	for (i = 1; i < len; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') ||
		    (name[i] >= '0' && name[i] <= '9') || name[i] == '_'))
			return 0;
	return 1;
}

const char *
policy_handle_fmt(uint32_t handle, char *buf, size_t size)
{
	/* tc's notation: a qdisc handle has no minor ("4210:"). */
	if ((handle & 0xffffu) == 0)
		snprintf(buf, size, "%x:", handle >> 16);
	else
		snprintf(buf, size, "%x:%x", handle >> 16, handle & 0xffffu);
	return buf;
}

/* ---- the ruleset ------------------------------------------------------- */

struct text {
	char	*s;
	size_t	 len, cap;
	int	 failed;
};

static void	text_add(struct text *, const char *, ...) GRGW_PRINTF(2, 3);

static void
text_add(struct text *t, const char *fmt, ...)
{
	va_list	 ap;
	char	*n;
	size_t	 cap;
	int	 len;

	if (t->failed)
		return;
	va_start(ap, fmt);
	len = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (len < 0) {
		t->failed = 1;
		return;
	}
	if (t->len + (size_t)len + 1 > t->cap) {
		cap = t->cap == 0 ? 1024 : t->cap;
		while (cap < t->len + (size_t)len + 1)
			cap *= 2;
		if ((n = realloc(t->s, cap)) == NULL) {
			t->failed = 1;
			return;
		}
		t->s = n;
		t->cap = cap;
	}
	va_start(ap, fmt);
	vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
	va_end(ap);
	t->len += (size_t)len;
}

/* "{ a, b }" of the prefixes of one family (count returned in *n). */
static void
text_prefix_set(struct text *t, const struct grgw_prefix *p, int count,
    int family, int *n)
{
	char	 buf[INET6_ADDRSTRLEN + 8];
	int	 i;

	*n = 0;
	text_add(t, "{ ");
	for (i = 0; i < count; i++) {
		if (p[i].a.family != family)
			continue;
		text_add(t, "%s%s", *n ? ", " : "", prefix_fmt(&p[i], buf,
		    sizeof(buf)));
		(*n)++;
	}
	text_add(t, " }");
}

static int
has_family(const struct grgw_prefix *p, int count, int family)
{
	int	 i;

	for (i = 0; i < count; i++)
		if (p[i].a.family == family)
			return 1;
	return 0;
}

static void
text_ports(struct text *t, const struct grgw_class *c)
{
	int	 i;

	if (c->n_ports > 1)
		text_add(t, "{ ");
	for (i = 0; i < c->n_ports; i++) {
		text_add(t, "%s%u", i ? ", " : "", c->ports[i].lo);
		if (c->ports[i].hi != c->ports[i].lo)
			text_add(t, "-%u", c->ports[i].hi);
	}
	if (c->n_ports > 1)
		text_add(t, " }");
}

/* The verdict part of a class's rules: mark, steer, count, stop. */
static void
text_action(struct text *t, const struct policy_plan *plan,
    const struct policy_tc_class *tc, const char *ip)
{
	char	 h[16];

	if (tc->marks)
		text_add(t, "%s dscp set %u ", ip, tc->dscp);
	if (plan->shaping)
		text_add(t, "meta priority set %s ",
		    policy_handle_fmt(tc->classid, h, sizeof(h)));
	text_add(t, "counter name \"%s\"%s\n", tc->counter,
	    tc->is_default ? "" : " return");
}

/*
 * The rules of one class in one family's chain: every combination of
 * address side (source, destination) and port side, so both directions
 * of a flow match.
 */
static void
text_class_rules(struct text *t, const struct policy_plan *plan,
    const struct grgw_class *c, const struct policy_tc_class *tc,
    int family)
{
	static const char *const sides[2] = { "saddr", "daddr" };
	static const char *const psides[2] = { "dport", "sport" };
	const char	*ip = family == AF_INET ? "ip" : "ip6";
	const char	*l4;
	int		 a, p, na, np, n;

	if (c->n_prefixes > 0 &&
	    !has_family(c->prefixes, c->n_prefixes, family))
		return;
	switch (c->protocol) {
	case GRGW_L4_TCP:
		l4 = "meta l4proto tcp";
		break;
	case GRGW_L4_UDP:
		l4 = "meta l4proto udp";
		break;
	default:
		l4 = c->n_ports > 0 ? "meta l4proto { tcp, udp }" : NULL;
		break;
	}
	na = c->n_prefixes > 0 ? 2 : 1;
	np = c->n_ports > 0 ? 2 : 1;
	for (a = 0; a < na; a++) {
		for (p = 0; p < np; p++) {
			text_add(t, "\t\t");
			if (c->n_prefixes > 0) {
				text_add(t, "%s %s ", ip, sides[a]);
				text_prefix_set(t, c->prefixes, c->n_prefixes,
				    family, &n);
				text_add(t, " ");
			}
			if (l4 != NULL)
				text_add(t, "%s ", l4);
			if (c->n_ports > 0) {
				text_add(t, "th %s ", psides[p]);
				text_ports(t, c);
				text_add(t, " ");
			}
			text_action(t, plan, tc, ip);
		}
	}
}

static void
text_ruleset(struct text *t, const struct grgw_config *cfg,
    const struct policy_plan *plan, const struct grgw_class **src)
{
	static const int families[2] = { AF_INET, AF_INET6 };
	const struct grgw_side	*peer = &cfg->peer;
	const struct grgw_side	*site = &cfg->site;
	const char		*ip;
	int			 f, i, n;

	for (i = 0; i < plan->n_classes; i++)
		text_add(t, "\tcounter %s {}\n", plan->classes[i].counter);

	/* Packets from the site's nodes to the other site, before they
	 * reach the tunnel interface (and so before encryption). */
	text_add(t, "\tchain forward {\n\t\ttype filter hook forward "
	    "priority mangle; policy accept;\n");
	for (f = 0; f < 2; f++) {
		if (!has_family(peer->prefixes, peer->n_prefixes, families[f]))
			continue;
		ip = families[f] == AF_INET ? "ip" : "ip6";
		text_add(t, "\t\tiifname { ");
		for (i = 0; i < site->n_lan_interfaces; i++)
			text_add(t, "%s\"%s\"", i ? ", " : "",
			    site->lan_interfaces[i]);
		text_add(t, " } %s daddr ", ip);
		text_prefix_set(t, peer->prefixes, peer->n_prefixes,
		    families[f], &n);
		text_add(t, " jump classify%c\n", f == 0 ? '4' : '6');
	}
	text_add(t, "\t}\n");

	/* The gateway's own packets to the other site (its probes). */
	text_add(t, "\tchain output {\n\t\ttype filter hook output "
	    "priority mangle; policy accept;\n");
	for (f = 0; f < 2; f++) {
		if (!has_family(peer->prefixes, peer->n_prefixes, families[f]))
			continue;
		text_add(t, "\t\t%s daddr ", families[f] == AF_INET ?
		    "ip" : "ip6");
		text_prefix_set(t, peer->prefixes, peer->n_prefixes,
		    families[f], &n);
		text_add(t, " jump classify%c\n", f == 0 ? '4' : '6');
	}
	text_add(t, "\t}\n");

	for (f = 0; f < 2; f++) {
		text_add(t, "\tchain classify%c {\n", f == 0 ? '4' : '6');
		for (i = 0; i < plan->n_classes; i++) {
			if (plan->classes[i].is_default)
				text_add(t, "\t\t");
			if (plan->classes[i].is_default)
				text_action(t, plan, &plan->classes[i],
				    f == 0 ? "ip" : "ip6");
			else
				text_class_rules(t, plan, src[i],
				    &plan->classes[i], families[f]);
		}
		text_add(t, "\t}\n");
	}
}

/* ---- the plan --------------------------------------------------------- */

static uint32_t
clamp_u32(uint64_t v, uint32_t lo, uint32_t hi)
{
	return v < lo ? lo : v > hi ? hi : (uint32_t)v;
}

/* Rate, ceiling, quantum and queue of one HTB class. */
static void
plan_shape(struct policy_tc_class *tc, uint64_t rate, uint64_t ceil)
{
	if (rate < POLICY_RATE_MIN)
		rate = POLICY_RATE_MIN;
	tc->rate = rate;
	tc->ceil = ceil < rate ? rate : ceil;
	/* DRR quantum among classes of one priority: a tenth of a second's
	 * worth at r2q 10, kept between one MTU and HTB's sane maximum. */
	tc->quantum = clamp_u32(rate / 8 / 10, 1600, 60000);
	/* Without an AQM in the kernel, a pfifo leaf holds about
	 * POLICY_QUEUE_MS of traffic at the class's ceiling. */
	tc->queue_limit = clamp_u32(tc->ceil / 8 * POLICY_QUEUE_MS / 1000 /
	    1500, POLICY_QUEUE_MIN, POLICY_QUEUE_MAX);
}

int
policy_compile(const struct grgw_config *cfg, struct policy_plan *out,
    char *err, size_t errlen)
{
	const struct grgw_qos	*q = &cfg->qos;
	const struct grgw_class	*src[GRGW_MAX_CLASSES + 1];
	struct policy_tc_class	*tc;
	struct text		 t;
	uint64_t		 sum, rest;
	int			 i;

	memset(out, 0, sizeof(*out));
	memset(&t, 0, sizeof(t));
	if (q->n_classes < 0 || q->n_classes > GRGW_MAX_CLASSES ||
	    cfg->site.n_lan_interfaces <= 0 ||
	    cfg->site.n_lan_interfaces > GRGW_MAX_LAN_IFS ||
	    cfg->peer.n_prefixes <= 0 ||
	    cfg->peer.n_prefixes > GRGW_MAX_PREFIXES) {
		snprintf(err, errlen, "qos: configuration without LAN "
		    "interfaces or peer prefixes");
		errno = EINVAL;
		return -1;
	}
	for (i = 0; i < cfg->site.n_lan_interfaces; i++) {
		if (!ifname_valid(cfg->site.lan_interfaces[i])) {
			snprintf(err, errlen, "qos: LAN interface name not "
			    "fit for an nftables script");
			errno = EINVAL;
			return -1;
		}
	}
	out->enabled = q->enabled;
	out->wan_rate = q->wan_rate;
	out->shaping = q->enabled && q->wan_rate != 0;
	out->root_handle = POLICY_HANDLE(POLICY_HTB_MAJOR, 0);
	out->root_classid = POLICY_HANDLE(POLICY_HTB_MAJOR, POLICY_ROOT_MINOR);
	out->default_classid = POLICY_HANDLE(POLICY_HTB_MAJOR,
	    POLICY_DEFAULT_MINOR);
	if (!q->enabled)
		return 0;

	sum = policy_rate_sum(q);
	if (out->shaping && sum > q->wan_rate) {
		snprintf(err, errlen, "qos: the classes' rates add up to "
		    "more than wan_rate");
		errno = EINVAL;
		return -1;
	}
	for (i = 0; i < q->n_classes; i++) {
		const struct grgw_class *c = &q->classes[i];

		if (!c->enabled)
			continue;
		if (!policy_class_name_ok(c->name) || c->dscp > 63 ||
		    c->priority > 7 || c->n_ports < 0 ||
		    c->n_ports > GRGW_MAX_CLASS_PORTS || c->n_prefixes < 0 ||
		    c->n_prefixes > GRGW_MAX_CLASS_PREFIXES) {
			snprintf(err, errlen, "qos: class %d is malformed", i);
			errno = EINVAL;
			return -1;
		}
		src[out->n_classes] = c;
		tc = &out->classes[out->n_classes];
		snprintf(tc->name, sizeof(tc->name), "%s", c->name);
		snprintf(tc->counter, sizeof(tc->counter), "%s%s",
		    POLICY_COUNTER_PREFIX, c->name);
		tc->marks = 1;
		tc->dscp = c->dscp;
		tc->priority = c->priority;
		tc->classid = POLICY_HANDLE(POLICY_HTB_MAJOR,
		    POLICY_FIRST_MINOR + (uint32_t)out->n_classes);
		tc->leaf_handle = POLICY_HANDLE(POLICY_FIRST_MINOR +
		    (uint32_t)out->n_classes, 0);
		if (out->shaping)
			plan_shape(tc, policy_rate_bps(&c->rate, q->wan_rate),
			    c->ceil.bps != 0 || c->ceil.percent != 0 ?
			    policy_rate_bps(&c->ceil, q->wan_rate) :
			    q->wan_rate);
		out->n_classes++;
	}
	/* Unclassified traffic: DSCP kept, lowest priority, what is left. */
	src[out->n_classes] = NULL;
	tc = &out->classes[out->n_classes++];
	snprintf(tc->name, sizeof(tc->name), "%s", POLICY_DEFAULT_NAME);
	snprintf(tc->counter, sizeof(tc->counter), "%s%s",
	    POLICY_COUNTER_PREFIX, POLICY_DEFAULT_NAME);
	tc->is_default = 1;
	tc->priority = POLICY_DEFAULT_PRIO;
	tc->classid = out->default_classid;
	tc->leaf_handle = POLICY_HANDLE(POLICY_DEFAULT_MINOR, 0);
	if (out->shaping) {
		rest = q->wan_rate - sum;
		if (rest < q->wan_rate / 20)
			rest = q->wan_rate / 20;
		if (rest < POLICY_RATE_MIN)
			rest = POLICY_RATE_MIN;
		plan_shape(tc, rest, q->wan_rate);
	}

	text_ruleset(&t, cfg, out, src);
	if (t.failed) {
		free(t.s);
		memset(out, 0, sizeof(*out));
		snprintf(err, errlen, "qos: out of memory");
		errno = ENOMEM;
		return -1;
	}
	out->ruleset = t.s;
	return 0;
}

void
policy_plan_free(struct policy_plan *plan)
{
	if (plan == NULL)
		return;
	free(plan->ruleset);
	plan->ruleset = NULL;
}
