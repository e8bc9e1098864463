/*
 * The record of installed kernel objects: strict line parser, formatter,
 * and atomic file I/O.  See record.h for the format.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "grgw.h"
#include "netlink/record.h"

#define REC_MAX_TOKENS	12
#define REC_FILE_MAX	(1024 * 1024)	/* far more than we ever write */

static const char rec_header[] =
    "# grgw: kernel objects installed, in order of installation.\n"
    "# block: fail-closed layer, kept by a plain `grgw down`;"
    " run: removed by `grgw down`.\n";

size_t
rec_strlcpy(char *dst, const char *src, size_t size)
{
	size_t	 n = strlen(src);

	if (size > 0) {
		size_t	 c = n < size - 1 ? n : size - 1;

		memcpy(dst, src, c);
		dst[c] = '\0';
	}
	return n;
}

const char *
rec_tag_name(enum rec_tag tag)
{
	return tag == REC_BLOCK ? "block" : "run";
}

void
rec_init(struct rec_list *l, const char *name)
{
	TAILQ_INIT(&l->objs);
	l->name = name != NULL ? name : "record";
}

static void
rec_obj_free(struct rec_obj *o)
{
	if (o == NULL)
		return;
	free(o->text);
	free(o);
}

void
rec_clear(struct rec_list *l)
{
	struct rec_obj	*o;

	if (l == NULL)
		return;
	while ((o = TAILQ_FIRST(&l->objs)) != NULL) {
		TAILQ_REMOVE(&l->objs, o, entry);
		rec_obj_free(o);
	}
}

/* ---- parsing --------------------------------------------------------- */

/* Canonical decimal: no sign, no leading zero, fits in 32 bits. */
static int
parse_u32(const char *s, uint32_t *out)
{
	uint64_t	 v = 0;
	const char	*p;

	if (s[0] == '\0' || (s[0] == '0' && s[1] != '\0') || strlen(s) > 10)
		return -1;
	for (p = s; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (v > UINT32_MAX)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* Interface names as the kernel accepts them (dev_valid_name()). */
static int
valid_ifname(const char *s)
{
	size_t	 n = strlen(s);

	if (n == 0 || n >= IF_NAMESIZE || strcmp(s, ".") == 0 ||
	    strcmp(s, "..") == 0)
		return 0;
	for (; *s != '\0'; s++) {
		if (*s == '/' || *s == ':' || *s <= ' ' || *s == 0x7f)
			return 0;
	}
	return 1;
}

/*
 * A sysctl path below /proc/sys/net: components of [A-Za-z0-9_.-]
 * separated by single slashes, none of them "." or "..".
 */
static int
valid_sysctl_path(const char *s)
{
	const char	*p, *start;
	size_t		 n = strlen(s);

	if (n >= REC_SYSCTL_MAX || strncmp(s, "net/", 4) != 0)
		return 0;
	start = s;
	for (p = s;; p++) {
		if (*p == '/' || *p == '\0') {
			if (p == start || (p - start == 1 && start[0] == '.') ||
			    (p - start == 2 && start[0] == '.' &&
			    start[1] == '.'))
				return 0;
			if (*p == '\0')
				return 1;
			start = p + 1;
			continue;
		}
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '_' || *p == '.' ||
		    *p == '-'))
			return 0;
	}
}

/* An integer sysctl value: optional '-', canonical digits. */
static int
valid_sysctl_value(const char *s)
{
	size_t	 n = strlen(s);

	if (n == 0 || n >= REC_VALUE_MAX)
		return 0;
	if (*s == '-')
		s++;
	if (*s == '\0' || (s[0] == '0' && s[1] != '\0'))
		return 0;
	for (; *s != '\0'; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

/* "rule4" / "route6" -> family from the trailing digit. */
static int
family_suffix(const char *word, const char *stem, int *family)
{
	size_t	 n = strlen(stem);

	if (strncmp(word, stem, n) != 0 || word[n] == '\0' ||
	    word[n + 1] != '\0')
		return -1;
	if (word[n] == '4')
		*family = AF_INET;
	else if (word[n] == '6')
		*family = AF_INET6;
	else
		return -1;
	return 0;
}

static int
parse_prefix_of(const char *s, int family, struct grgw_prefix *out)
{
	if (prefix_parse(s, out) == -1 || out->a.family != family)
		return -1;
	return 0;
}

struct rec_tokens {
	char		*v[REC_MAX_TOKENS];
	int		 n;
	int		 i;		/* next to consume */
};

static const char *
tok_peek(const struct rec_tokens *t)
{
	return t->i < t->n ? t->v[t->i] : NULL;
}

static const char *
tok_next(struct rec_tokens *t)
{
	return t->i < t->n ? t->v[t->i++] : NULL;
}

#define SHOWN(s)	((s) != NULL ? (s) : "end of line")

/*
 * The next word as an interface name into dst (IF_NAMESIZE bytes).  after:
 * the keyword it follows, for the message, or NULL.  0 or -1 with err set.
 */
static int
tok_ifname(struct rec_tokens *t, char *dst, const char *after, char *err,
    size_t errlen)
{
	const char	*w = tok_next(t);

	if (w == NULL || !valid_ifname(w)) {
		snprintf(err, errlen, "expected an interface name%s%s%s, got "
		    "'%s'", after != NULL ? " after '" : "",
		    after != NULL ? after : "", after != NULL ? "'" : "",
		    SHOWN(w));
		return -1;
	}
	rec_strlcpy(dst, w, IF_NAMESIZE);
	return 0;
}

static int
parse_rule(struct rec_tokens *t, struct rec_rule *r, char *err,
    size_t errlen)
{
	const char	*w;

	w = tok_next(t);
	if (w == NULL || strcmp(w, "pref") != 0) {
		snprintf(err, errlen, "expected 'pref', got '%s'", SHOWN(w));
		return -1;
	}
	w = tok_next(t);
	if (w == NULL || parse_u32(w, &r->pref) == -1 || r->pref == 0) {
		snprintf(err, errlen, "expected a rule preference 1..%u, "
		    "got '%s'", UINT32_MAX, SHOWN(w));
		return -1;
	}
	w = tok_peek(t);
	if (w != NULL && strcmp(w, "iif") == 0) {
		t->i++;
		if (tok_ifname(t, r->iif, "iif", err, errlen) == -1)
			return -1;
	}
	w = tok_peek(t);
	if (w != NULL && strcmp(w, "from") == 0) {
		t->i++;
		w = tok_next(t);
		if (w == NULL || parse_prefix_of(w, r->family, &r->from) == -1) {
			snprintf(err, errlen, "expected an IPv%c prefix after "
			    "'from', got '%s'", r->family == AF_INET ? '4' : '6',
			    SHOWN(w));
			return -1;
		}
		r->has_from = 1;
	}
	w = tok_next(t);
	if (w != NULL && strcmp(w, "blackhole") == 0)
		r->action = REC_RULE_BLACKHOLE;
	else if (w != NULL && strcmp(w, "lookup") == 0) {
		r->action = REC_RULE_LOOKUP;
		w = tok_next(t);
		if (w == NULL || parse_u32(w, &r->table) == -1 ||
		    r->table == 0) {
			snprintf(err, errlen, "expected a table number "
			    "1..%u after 'lookup', got '%s'", UINT32_MAX,
			    SHOWN(w));
			return -1;
		}
	} else {
		snprintf(err, errlen, "expected 'iif', 'from', 'blackhole' "
		    "or 'lookup', got '%s'", SHOWN(w));
		return -1;
	}
	return 0;
}

static int
parse_route(struct rec_tokens *t, struct rec_route *r, char *err,
    size_t errlen)
{
	const char	*w;
	char		 v = r->family == AF_INET ? '4' : '6';

	w = tok_next(t);
	if (w == NULL || strcmp(w, "table") != 0) {
		snprintf(err, errlen, "expected 'table', got '%s'", SHOWN(w));
		return -1;
	}
	w = tok_next(t);
	if (w == NULL || parse_u32(w, &r->table) == -1 || r->table == 0) {
		snprintf(err, errlen, "expected a table number 1..%u, "
		    "got '%s'", UINT32_MAX, SHOWN(w));
		return -1;
	}
	w = tok_next(t);
	if (w != NULL && strcmp(w, "unreachable") == 0) {
		r->type = REC_ROUTE_UNREACHABLE;
		w = tok_next(t);
		if (w == NULL || parse_prefix_of(w, r->family, &r->dst) == -1) {
			snprintf(err, errlen, "expected an IPv%c prefix after "
			    "'unreachable', got '%s'", v, SHOWN(w));
			return -1;
		}
		return 0;
	}
	r->type = REC_ROUTE_UNICAST;
	if (w == NULL || parse_prefix_of(w, r->family, &r->dst) == -1) {
		snprintf(err, errlen, "expected 'unreachable' or an IPv%c "
		    "prefix, got '%s'", v, SHOWN(w));
		return -1;
	}
	w = tok_next(t);
	if (w == NULL || strcmp(w, "dev") != 0) {
		snprintf(err, errlen, "expected 'dev', got '%s'", SHOWN(w));
		return -1;
	}
	return tok_ifname(t, r->dev, "dev", err, errlen);
}

static int
parse_link(struct rec_tokens *t, struct rec_link *k, char *err,
    size_t errlen)
{
	const char	*w;

	if (tok_ifname(t, k->name, NULL, err, errlen) == -1)
		return -1;
	w = tok_next(t);
	if (w == NULL || strcmp(w, "xfrm") != 0) {
		snprintf(err, errlen, "expected link kind 'xfrm', got '%s'",
		    SHOWN(w));
		return -1;
	}
	w = tok_next(t);
	if (w == NULL || strcmp(w, "if_id") != 0) {
		snprintf(err, errlen, "expected 'if_id', got '%s'", SHOWN(w));
		return -1;
	}
	w = tok_next(t);
	if (w == NULL || parse_u32(w, &k->if_id) == -1 || k->if_id == 0) {
		snprintf(err, errlen, "expected an if_id 1..%u, got '%s'",
		    UINT32_MAX, SHOWN(w));
		return -1;
	}
	return 0;
}

static int
parse_sysctl(struct rec_tokens *t, struct rec_sysctl *s, char *err,
    size_t errlen)
{
	const char	*w;

	w = tok_next(t);
	if (w == NULL || !valid_sysctl_path(w)) {
		snprintf(err, errlen, "expected a sysctl path below net/ "
		    "(like net/ipv4/ip_forward), got '%s'", SHOWN(w));
		return -1;
	}
	rec_strlcpy(s->path, w, sizeof(s->path));
	w = tok_next(t);
	if (w == NULL || !valid_sysctl_value(w)) {
		snprintf(err, errlen, "expected an integer value, got '%s'",
		    SHOWN(w));
		return -1;
	}
	rec_strlcpy(s->value, w, sizeof(s->value));
	return 0;
}

/* nftables family and table names we create: a closed, safe alphabet. */
int
rec_valid_nft(const struct rec_nft *n)
{
	const char	*p;
	size_t		 len = strnlen(n->table, sizeof(n->table));

	if (strcmp(n->family, "inet") != 0 && strcmp(n->family, "ip") != 0 &&
	    strcmp(n->family, "ip6") != 0 && strcmp(n->family, "arp") != 0 &&
	    strcmp(n->family, "netdev") != 0)
		return 0;
	if (len == 0 || len >= sizeof(n->table))
		return 0;
	for (p = n->table; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    *p == '-' || *p == '_'))
			return 0;
	return 1;
}

static int
parse_nft(struct rec_tokens *t, struct rec_nft *n, char *err, size_t errlen)
{
	const char	*fam, *table;

	fam = tok_next(t);
	table = tok_next(t);
	memset(n, 0, sizeof(*n));
	if (fam != NULL)
		rec_strlcpy(n->family, fam, sizeof(n->family));
	if (table != NULL)
		rec_strlcpy(n->table, table, sizeof(n->table));
	if (fam == NULL || table == NULL || strlen(fam) >= sizeof(n->family) ||
	    strlen(table) >= sizeof(n->table) || !rec_valid_nft(n)) {
		snprintf(err, errlen, "expected an nftables family (inet, ip, "
		    "ip6, arp) and a table name of [a-z0-9_-], got '%s %s'",
		    SHOWN(fam), SHOWN(table));
		return -1;
	}
	return 0;
}

/* "4210:": a qdisc handle in tc's notation (hex major, minor zero). */
static int
parse_handle(const char *s, uint32_t *out)
{
	uint32_t	 v = 0;
	size_t		 i, n = strlen(s);

	if (n < 2 || n > 5 || s[n - 1] != ':' || (s[0] == '0' && n > 2))
		return -1;
	for (i = 0; i + 1 < n; i++) {
		if (s[i] >= '0' && s[i] <= '9')
			v = v * 16 + (uint32_t)(s[i] - '0');
		else if (s[i] >= 'a' && s[i] <= 'f')
			v = v * 16 + (uint32_t)(s[i] - 'a' + 10);
		else
			return -1;
	}
	if (v == 0)
		return -1;
	*out = v << 16;
	return 0;
}

static int
parse_qdisc(struct rec_tokens *t, struct rec_qdisc *q, char *err,
    size_t errlen)
{
	const char	*w;

	if (tok_ifname(t, q->dev, NULL, err, errlen) == -1)
		return -1;
	w = tok_next(t);
	if (w == NULL || strcmp(w, "htb") != 0) {
		snprintf(err, errlen, "expected qdisc kind 'htb', got '%s'",
		    SHOWN(w));
		return -1;
	}
	w = tok_next(t);
	if (w == NULL || parse_handle(w, &q->handle) == -1) {
		snprintf(err, errlen, "expected a handle such as 4210:, got "
		    "'%s'", SHOWN(w));
		return -1;
	}
	return 0;
}

static int
parse_offload(struct rec_tokens *t, struct rec_offload *f, char *err,
    size_t errlen)
{
	const char	*w;

	if (tok_ifname(t, f->dev, NULL, err, errlen) == -1)
		return -1;
	w = tok_next(t);
	if (w == NULL || strcmp(w, "gro") != 0) {
		snprintf(err, errlen, "expected offload 'gro', got '%s'",
		    SHOWN(w));
		return -1;
	}
	w = tok_next(t);
	if (w != NULL && strcmp(w, "on") == 0)
		f->on = 1;
	else if (w != NULL && strcmp(w, "off") == 0)
		f->on = 0;
	else {
		snprintf(err, errlen, "expected 'on' or 'off', got '%s'",
		    SHOWN(w));
		return -1;
	}
	return 0;
}

int
rec_parse_line(const char *line, struct rec_obj *out, char *err,
    size_t errlen)
{
	char			 buf[REC_LINE_MAX];
	struct rec_tokens	 t;
	struct rec_obj		 o;
	const char		*w, *p;
	char			*s;
	int			 rc = -1;

	memset(&t, 0, sizeof(t));
	memset(&o, 0, sizeof(o));
	err[0] = '\0';

	for (p = line; *p == ' ' || *p == '\t'; p++)
		;
	if (*p == '\0' || *p == '#')
		return 1;
	if (strlen(line) >= sizeof(buf)) {
		snprintf(err, errlen, "line longer than %d bytes",
		    REC_LINE_MAX - 1);
		return -1;
	}
	for (p = line; *p != '\0'; p++) {
		if ((unsigned char)*p < ' ' && *p != '\t') {
			snprintf(err, errlen, "control character 0x%02x",
			    (unsigned int)(unsigned char)*p);
			return -1;
		}
	}
	rec_strlcpy(buf, line, sizeof(buf));
	for (s = strtok(buf, " \t"); s != NULL; s = strtok(NULL, " \t")) {
		if (t.n == REC_MAX_TOKENS) {
			snprintf(err, errlen, "too many words");
			return -1;
		}
		t.v[t.n++] = s;
	}

	w = tok_next(&t);
	if (strcmp(w, "block") == 0)
		o.tag = REC_BLOCK;
	else if (strcmp(w, "run") == 0)
		o.tag = REC_RUN;
	else {
		snprintf(err, errlen, "expected 'block' or 'run', got '%s'", w);
		return -1;
	}

	w = tok_next(&t);
	if (w != NULL && family_suffix(w, "rule", &o.u.rule.family) == 0) {
		o.kind = REC_RULE;
		rc = parse_rule(&t, &o.u.rule, err, errlen);
	} else if (w != NULL &&
	    family_suffix(w, "route", &o.u.route.family) == 0) {
		o.kind = REC_ROUTE;
		rc = parse_route(&t, &o.u.route, err, errlen);
	} else if (w != NULL && strcmp(w, "link") == 0) {
		o.kind = REC_LINK;
		rc = parse_link(&t, &o.u.link, err, errlen);
	} else if (w != NULL && strcmp(w, "sysctl") == 0) {
		o.kind = REC_SYSCTL;
		rc = parse_sysctl(&t, &o.u.sysctl, err, errlen);
	} else if (w != NULL && strcmp(w, "nft") == 0) {
		o.kind = REC_NFT;
		rc = parse_nft(&t, &o.u.nft, err, errlen);
	} else if (w != NULL && strcmp(w, "qdisc") == 0) {
		o.kind = REC_QDISC;
		rc = parse_qdisc(&t, &o.u.qdisc, err, errlen);
	} else if (w != NULL && strcmp(w, "offload") == 0) {
		o.kind = REC_OFFLOAD;
		rc = parse_offload(&t, &o.u.offload, err, errlen);
	} else
		snprintf(err, errlen, "expected 'rule4', 'rule6', 'route4', "
		    "'route6', 'link', 'sysctl', 'nft', 'qdisc' or 'offload', "
		    "got '%s'", SHOWN(w));
	if (rc == -1)
		return -1;
	if ((w = tok_next(&t)) != NULL) {
		snprintf(err, errlen, "unexpected '%s' at end of line", w);
		return -1;
	}
	*out = o;
	return 0;
}

/* ---- formatting ------------------------------------------------------ */

static char
family_digit(int family)
{
	return family == AF_INET ? '4' : family == AF_INET6 ? '6' : '?';
}

int
rec_format(const struct rec_obj *o, char *buf, size_t size)
{
	char		 p[INET6_ADDRSTRLEN + 5], extra[IF_NAMESIZE + 64];
	const char	*tag = rec_tag_name(o->tag);
	int		 n = -1;

	extra[0] = '\0';
	switch (o->kind) {
	case REC_RULE: {
		const struct rec_rule *r = &o->u.rule;
		size_t off = 0;

		if (family_digit(r->family) == '?' ||
		    (r->has_from && r->from.a.family != r->family))
			return -1;
		if (r->iif[0] != '\0')
			off = (size_t)snprintf(extra, sizeof(extra), " iif %s",
			    r->iif);
		if (r->has_from)
			snprintf(extra + off, sizeof(extra) - off, " from %s",
			    prefix_fmt(&r->from, p, sizeof(p)));
		if (r->action == REC_RULE_LOOKUP)
			n = snprintf(buf, size, "%s rule%c pref %u%s lookup %u",
			    tag, family_digit(r->family), r->pref, extra,
			    r->table);
		else
			n = snprintf(buf, size, "%s rule%c pref %u%s blackhole",
			    tag, family_digit(r->family), r->pref, extra);
		break;
	}
	case REC_ROUTE: {
		const struct rec_route *r = &o->u.route;

		if (family_digit(r->family) == '?' ||
		    r->dst.a.family != r->family)
			return -1;
		prefix_fmt(&r->dst, p, sizeof(p));
		if (r->type == REC_ROUTE_UNREACHABLE)
			n = snprintf(buf, size, "%s route%c table %u "
			    "unreachable %s", tag, family_digit(r->family),
			    r->table, p);
		else
			n = snprintf(buf, size, "%s route%c table %u %s dev %s",
			    tag, family_digit(r->family), r->table, p, r->dev);
		break;
	}
	case REC_LINK:
		n = snprintf(buf, size, "%s link %s xfrm if_id %u", tag,
		    o->u.link.name, o->u.link.if_id);
		break;
	case REC_SYSCTL:
		n = snprintf(buf, size, "%s sysctl %s %s", tag,
		    o->u.sysctl.path, o->u.sysctl.value);
		break;
	case REC_NFT:
		if (!rec_valid_nft(&o->u.nft))
			return -1;
		n = snprintf(buf, size, "%s nft %s %s", tag, o->u.nft.family,
		    o->u.nft.table);
		break;
	case REC_QDISC:
		if (o->u.qdisc.handle == 0 || (o->u.qdisc.handle & 0xffffu))
			return -1;
		n = snprintf(buf, size, "%s qdisc %s htb %x:", tag,
		    o->u.qdisc.dev, o->u.qdisc.handle >> 16);
		break;
	case REC_OFFLOAD:
		if (!valid_ifname(o->u.offload.dev))
			return -1;
		n = snprintf(buf, size, "%s offload %s gro %s", tag,
		    o->u.offload.dev, o->u.offload.on ? "on" : "off");
		break;
	case REC_UNPARSED:
		if (o->text == NULL || memchr(o->text, '\0', o->textlen))
			return -1;
		n = snprintf(buf, size, "%s", o->text);
		break;
	}
	if (n < 0 || (size_t)n >= size)
		return -1;
	return n;
}

/* ---- comparison ------------------------------------------------------ */

static int
prefix_equal(const struct grgw_prefix *a, const struct grgw_prefix *b)
{
	return a->len == b->len && addr_equal(&a->a, &b->a);
}

int
rec_same(const struct rec_obj *a, const struct rec_obj *b)
{
	if (a->kind != b->kind)
		return 0;
	switch (a->kind) {
	case REC_RULE: {
		const struct rec_rule *x = &a->u.rule, *y = &b->u.rule;

		return x->family == y->family && x->pref == y->pref &&
		    strcmp(x->iif, y->iif) == 0 &&
		    x->has_from == y->has_from &&
		    (!x->has_from || prefix_equal(&x->from, &y->from)) &&
		    x->action == y->action &&
		    (x->action != REC_RULE_LOOKUP || x->table == y->table);
	}
	case REC_ROUTE:
		return rec_same_route_slot(a, b) &&
		    a->u.route.type == b->u.route.type &&
		    (a->u.route.type != REC_ROUTE_UNICAST ||
		    strcmp(a->u.route.dev, b->u.route.dev) == 0);
	case REC_LINK:
		return strcmp(a->u.link.name, b->u.link.name) == 0;
	case REC_SYSCTL:
		return strcmp(a->u.sysctl.path, b->u.sysctl.path) == 0;
	case REC_NFT:
		return strcmp(a->u.nft.family, b->u.nft.family) == 0 &&
		    strcmp(a->u.nft.table, b->u.nft.table) == 0;
	case REC_QDISC:
		return strcmp(a->u.qdisc.dev, b->u.qdisc.dev) == 0 &&
		    a->u.qdisc.handle == b->u.qdisc.handle;
	case REC_OFFLOAD:
		return strcmp(a->u.offload.dev, b->u.offload.dev) == 0;
	case REC_UNPARSED:
		return 0;
	}
	return 0;
}

int
rec_same_route_slot(const struct rec_obj *a, const struct rec_obj *b)
{
	return a->kind == REC_ROUTE && b->kind == REC_ROUTE &&
	    a->u.route.family == b->u.route.family &&
	    a->u.route.table == b->u.route.table &&
	    prefix_equal(&a->u.route.dst, &b->u.route.dst);
}

/* ---- list ------------------------------------------------------------ */

struct rec_obj *
rec_find(const struct rec_list *l, const struct rec_obj *key)
{
	struct rec_obj	*o;

	TAILQ_FOREACH(o, &l->objs, entry) {
		if (rec_same(o, key))
			return o;
	}
	return NULL;
}

struct rec_obj *
rec_append(struct rec_list *l, const struct rec_obj *o)
{
	struct rec_obj	*n;

	if (o->kind == REC_UNPARSED) {
		errno = EINVAL;
		return NULL;
	}
	if ((n = calloc(1, sizeof(*n))) == NULL)
		return NULL;
	*n = *o;
	n->text = NULL;
	n->textlen = 0;
	TAILQ_INSERT_TAIL(&l->objs, n, entry);
	return n;
}

void
rec_remove(struct rec_list *l, struct rec_obj *o)
{
	TAILQ_REMOVE(&l->objs, o, entry);
	rec_obj_free(o);
}

int
rec_count(const struct rec_list *l, int *block, int *run)
{
	struct rec_obj	*o;
	int		 nb = 0, nr = 0, total = 0;

	TAILQ_FOREACH(o, &l->objs, entry) {
		total++;
		if (o->kind == REC_UNPARSED)
			continue;
		if (o->tag == REC_BLOCK)
			nb++;
		else
			nr++;
	}
	if (block != NULL)
		*block = nb;
	if (run != NULL)
		*run = nr;
	return total;
}

static int
rec_keep_unparsed(struct rec_list *l, const char *line, size_t len,
    int lineno)
{
	struct rec_obj	*o;

	if ((o = calloc(1, sizeof(*o))) == NULL)
		return -ENOMEM;
	if ((o->text = malloc(len + 1)) == NULL) {
		free(o);
		return -ENOMEM;
	}
	memcpy(o->text, line, len);
	o->text[len] = '\0';
	o->textlen = len;
	o->kind = REC_UNPARSED;
	o->lineno = lineno;
	TAILQ_INSERT_TAIL(&l->objs, o, entry);
	return 0;
}

int
rec_parse_text(struct rec_list *l, const char *text, size_t len)
{
	struct rec_obj	 o;
	const char	*line, *nl, *end = text + len;
	char		 err[256];
	char		*copy = NULL;
	size_t		 n;
	int		 lineno = 0, bad = 0, rc;

	for (line = text; line < end; line = nl + 1) {
		lineno++;
		nl = memchr(line, '\n', (size_t)(end - line));
		if (nl == NULL)
			nl = end;	/* last line without newline */
		n = (size_t)(nl - line);

		if (memchr(line, '\0', n) != NULL) {
			snprintf(err, sizeof(err), "NUL byte in line");
			rc = -1;
		} else {
			free(copy);
			if ((copy = malloc(n + 1)) == NULL)
				return -ENOMEM;
			memcpy(copy, line, n);
			copy[n] = '\0';
			rc = rec_parse_line(copy, &o, err, sizeof(err));
		}
		if (rc == 1)
			continue;
		if (rc == 0) {
			o.lineno = lineno;
			if (rec_append(l, &o) == NULL) {
				free(copy);
				return -ENOMEM;
			}
			continue;
		}
		log_warnx("%s:%d: %s; line kept, not acted on", l->name,
		    lineno, err);
		bad++;
		if (rec_keep_unparsed(l, line, n, lineno) < 0) {
			free(copy);
			return -ENOMEM;
		}
	}
	free(copy);
	return bad;
}

int
rec_write(const struct rec_list *l, FILE *f)
{
	struct rec_obj	*o;
	char		 line[REC_LINE_MAX];

	if (fputs(rec_header, f) == EOF)
		return -EIO;
	TAILQ_FOREACH(o, &l->objs, entry) {
		if (o->kind == REC_UNPARSED) {
			/* Verbatim, even bytes a C string cannot hold. */
			if (fwrite(o->text, 1, o->textlen, f) != o->textlen ||
			    fputc('\n', f) == EOF)
				return -EIO;
			continue;
		}
		if (rec_format(o, line, sizeof(line)) < 0)
			return -EINVAL;
		if (fprintf(f, "%s\n", line) < 0)
			return -EIO;
	}
	return 0;
}

/* ---- files ----------------------------------------------------------- */

int
rec_load(struct rec_list *l, const char *path)
{
	struct stat	 st;
	char		*buf = NULL;
	size_t		 off = 0;
	ssize_t		 n;
	int		 fd, rc = 0;

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return 0;
		rc = -errno;
		log_warn("record %s", path);
		return rc;
	}
	if (fstat(fd, &st) == -1) {
		rc = -errno;
		log_warn("record %s", path);
		goto cleanup;
	}
	if (!S_ISREG(st.st_mode)) {
		log_warnx("record %s: not a regular file", path);
		rc = -EINVAL;
		goto cleanup;
	}
	if (st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH))) {
		log_warnx("record %s: must be owned by uid %u and not "
		    "writable by group or others; refusing it", path,
		    (unsigned int)geteuid());
		rc = -EPERM;
		goto cleanup;
	}
	if (st.st_size > REC_FILE_MAX) {
		log_warnx("record %s: larger than %d bytes", path,
		    REC_FILE_MAX);
		rc = -EFBIG;
		goto cleanup;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		rc = -ENOMEM;
		goto cleanup;
	}
	/* The size may change under us; read what is there, up to it. */
	while (off < (size_t)st.st_size) {
		n = read(fd, buf + off, (size_t)st.st_size - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			rc = -errno;
			log_warn("record %s: read", path);
			goto cleanup;
		}
		if (n == 0)
			break;
		off += (size_t)n;
	}
	rc = rec_parse_text(l, buf, off);
	if (rc > 0)
		log_warnx("record %s: %d line(s) not understood; they are "
		    "kept in the record and must be checked by hand", path, rc);
	if (rc > 0)
		rc = 0;

cleanup:
	free(buf);
	close(fd);
	return rc;
}

/* mkdir -p with mode 0700 for every directory created. */
static int
mkdir_parents(const char *dir)
{
	char		 buf[PATH_MAX];
	char		*p;
	struct stat	 st;

	if (rec_strlcpy(buf, dir, sizeof(buf)) >= sizeof(buf))
		return -ENAMETOOLONG;
	for (p = buf + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		if (p[-1] != '/') {
			char c = *p;

			*p = '\0';
			if (mkdir(buf, 0700) == -1 && errno != EEXIST)
				return -errno;
			*p = c;
		}
		if (*p == '\0')
			break;
	}
	if (stat(buf, &st) == -1)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	return 0;
}

static int
fsync_dir(const char *dir)
{
	int	 fd, rc = 0;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -errno;
	if (fsync(fd) == -1)
		rc = -errno;
	close(fd);
	return rc;
}

int
rec_save(const struct rec_list *l, const char *path)
{
	char		 dir[PATH_MAX], base[PATH_MAX], tmp[PATH_MAX];
	char		 d[PATH_MAX], b[PATH_MAX];
	FILE		*f = NULL;
	int		 fd = -1, rc = 0;

	tmp[0] = '\0';
	if (rec_strlcpy(d, path, sizeof(d)) >= sizeof(d) ||
	    rec_strlcpy(b, path, sizeof(b)) >= sizeof(b))
		return -ENAMETOOLONG;
	rec_strlcpy(dir, dirname(d), sizeof(dir));
	rec_strlcpy(base, basename(b), sizeof(base));

	if (rec_count(l, NULL, NULL) == 0) {
		if (unlink(path) == -1 && errno != ENOENT) {
			rc = -errno;
			log_warn("record %s: unlink", path);
			return rc;
		}
		(void)fsync_dir(dir);
		return 0;
	}

	if ((rc = mkdir_parents(dir)) < 0) {
		log_warnx("record directory %s: %s", dir, strerror(-rc));
		return rc;
	}
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s/.%s.XXXXXX", dir, base) >=
	    sizeof(tmp))
		return -ENAMETOOLONG;
	if ((fd = mkostemp(tmp, O_CLOEXEC)) == -1) {
		rc = -errno;
		log_warn("record %s: temporary file", path);
		return rc;
	}
	if (fchmod(fd, 0600) == -1 || (f = fdopen(fd, "w")) == NULL) {
		rc = -errno;
		log_warn("record %s", tmp);
		goto cleanup;
	}
	fd = -1;		/* owned by f now */
	if ((rc = rec_write(l, f)) < 0 || fflush(f) == EOF) {
		rc = rc < 0 ? rc : -errno;
		log_warnx("record %s: write: %s", tmp, strerror(-rc));
		goto cleanup;
	}
	if (fsync(fileno(f)) == -1) {
		rc = -errno;
		log_warn("record %s: fsync", tmp);
		goto cleanup;
	}
	if (fclose(f) == EOF) {
		f = NULL;
		rc = -errno;
		log_warn("record %s: close", tmp);
		goto cleanup;
	}
	f = NULL;
	if (rename(tmp, path) == -1) {
		rc = -errno;
		log_warn("record %s: rename", path);
		goto cleanup;
	}
	tmp[0] = '\0';
	if ((rc = fsync_dir(dir)) < 0)
		log_warnx("record directory %s: fsync: %s", dir,
		    strerror(-rc));

cleanup:
	if (f != NULL)
		fclose(f);
	if (fd != -1)
		close(fd);
	if (tmp[0] != '\0')
		unlink(tmp);
	return rc;
}
