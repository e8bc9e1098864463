/*
 * Policy routing rules and routes: the fail-closed layer (block rules
 * and unreachable routes, gwnl_block_install()), the routes to the peer
 * prefixes over the xfrm interface (gwnl_tunnel_routes_install()), the
 * rtnetlink messages for both, and their removal.  The layout is drawn
 * in netlink.h.
 *
 * Every rule and route is recorded as it is installed; a recorded one
 * that went missing is added again, one found in the kernel but not
 * recorded is adopted.  Errors are -errno, logged here.
 */
#include <sys/queue.h>
#include <sys/socket.h>

#include <linux/fib_rules.h>
#include <linux/rtnetlink.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "netlink/libnl.h"

#include "grgw.h"
#include "netlink/netlink.h"
#include "netlink/record.h"
#include "netlink/internal.h"

/* Where charon's table 220 rule sits, and the main table's rule. */
#define PREF_CHARON	220
#define PREF_MAIN	32766

/* ---- message builders ------------------------------------------------- */

static struct nl_addr *
prefix_to_nl_addr(const struct grgw_prefix *p)
{
	struct nl_addr	*a;
	int		 n;

	if ((n = addr_len(p->a.family)) == 0)
		return NULL;
	if ((a = nl_addr_build(p->a.family, p->a.addr, (size_t)n)) == NULL)
		return NULL;
	nl_addr_set_prefixlen(a, p->len);
	return a;
}

/*
 * libnl copies the table into the 8-bit header field as well as the
 * 32-bit attribute; for tables above 255 the header would name a wrong
 * table, so say "see the attribute" there, as iproute2 does.
 */
static void
fix_header_table(struct nl_msg *msg, int is_rule, uint32_t table)
{
	struct nlmsghdr	*h = nlmsg_hdr(msg);
	uint8_t		 t = table < 256 ? (uint8_t)table : RT_TABLE_UNSPEC;

	if (is_rule)
		((struct fib_rule_hdr *)nlmsg_data(h))->table = t;
	else
		((struct rtmsg *)nlmsg_data(h))->rtm_table = t;
}

/* RTM_NEWRULE (add, with flags) or RTM_DELRULE.  0 or -errno. */
static int
rule_build(const struct rec_rule *r, int add, int flags, struct nl_msg **out)
{
	struct rtnl_rule	*rule;
	struct nl_addr		*src = NULL;
	int			 err = -ENOMEM;

	*out = NULL;
	if ((rule = rtnl_rule_alloc()) == NULL)
		return -ENOMEM;
	rtnl_rule_set_family(rule, r->family);
	rtnl_rule_set_prio(rule, r->pref);
	if (r->iif[0] != '\0' && rtnl_rule_set_iif(rule, r->iif) < 0) {
		err = -EINVAL;
		goto cleanup;
	}
	if (r->has_from) {
		if ((src = prefix_to_nl_addr(&r->from)) == NULL)
			goto cleanup;
		if (rtnl_rule_set_src(rule, src) < 0) {
			err = -EINVAL;
			goto cleanup;
		}
	}
	if (r->action == REC_RULE_LOOKUP) {
		rtnl_rule_set_action(rule, FR_ACT_TO_TBL);
		rtnl_rule_set_table(rule, r->table);
	} else
		rtnl_rule_set_action(rule, FR_ACT_BLACKHOLE);
	if (add)
		err = rtnl_rule_build_add_request(rule, flags, out);
	else
		err = rtnl_rule_build_delete_request(rule, 0, out);
	if (err < 0) {
		err = -gwnl_nlerr_to_errno(err);
		goto cleanup;
	}
	fix_header_table(*out, 1, r->action == REC_RULE_LOOKUP ? r->table : 0);
	err = 0;

cleanup:
	nl_addr_put(src);
	rtnl_rule_put(rule);
	return err;
}

/*
 * RTM_NEWROUTE (add, with flags) or RTM_DELROUTE.  oif > 0 adds a
 * nexthop on that interface.  A delete matches any scope and protocol, so
 * that a route someone else created the same way is removed too once we
 * have adopted it.  0 or -errno.
 */
static int
route_build(const struct rec_route *r, int oif, int add, int flags,
    struct nl_msg **out)
{
	struct rtnl_route	*route;
	struct rtnl_nexthop	*nh;
	struct nl_addr		*dst = NULL;
	int			 err = -ENOMEM;

	*out = NULL;
	if ((route = rtnl_route_alloc()) == NULL)
		return -ENOMEM;
	rtnl_route_set_family(route, (uint8_t)r->family);
	rtnl_route_set_table(route, r->table);
	rtnl_route_set_type(route, r->type == REC_ROUTE_UNREACHABLE ?
	    RTN_UNREACHABLE : RTN_UNICAST);
	if ((dst = prefix_to_nl_addr(&r->dst)) == NULL)
		goto cleanup;
	if (rtnl_route_set_dst(route, dst) < 0) {
		err = -EINVAL;
		goto cleanup;
	}
	if (add) {
		rtnl_route_set_protocol(route, RTPROT_STATIC);
		rtnl_route_set_scope(route, r->type == REC_ROUTE_UNREACHABLE ?
		    RT_SCOPE_UNIVERSE : RT_SCOPE_LINK);
	} else {
		rtnl_route_set_protocol(route, RTPROT_UNSPEC);
		rtnl_route_set_scope(route, RT_SCOPE_NOWHERE);
	}
	if (oif > 0) {
		if ((nh = rtnl_route_nh_alloc()) == NULL)
			goto cleanup;
		rtnl_route_nh_set_ifindex(nh, oif);
		rtnl_route_add_nexthop(route, nh);	/* route owns nh */
	}
	if (add)
		err = rtnl_route_build_add_request(route, flags, out);
	else
		err = rtnl_route_build_del_request(route, 0, out);
	if (err < 0) {
		err = -gwnl_nlerr_to_errno(err);
		goto cleanup;
	}
	fix_header_table(*out, 0, r->table);
	err = 0;

cleanup:
	nl_addr_put(dst);
	rtnl_route_put(route);
	return err;
}

static void
tunnel_route_obj(const struct grgw_config *cfg, int i, struct rec_obj *o)
{
	memset(o, 0, sizeof(*o));
	o->kind = REC_ROUTE;
	o->tag = REC_RUN;
	o->u.route.family = cfg->peer.prefixes[i].a.family;
	o->u.route.table = cfg->table;
	o->u.route.type = REC_ROUTE_UNICAST;
	o->u.route.dst = cfg->peer.prefixes[i];
	rec_strlcpy(o->u.route.dev, cfg->xfrm_interface,
	    sizeof(o->u.route.dev));
}

struct nl_msg *
gwnl_build_tunnel_route(const struct grgw_config *cfg, int prefix_index,
    int oif, int add)
{
	struct rec_obj	 o;
	struct nl_msg	*msg;

	if (cfg == NULL || prefix_index < 0 ||
	    prefix_index >= cfg->peer.n_prefixes ||
	    prefix_index >= GRGW_MAX_PREFIXES || oif <= 0 || cfg->table == 0)
		return NULL;
	tunnel_route_obj(cfg, prefix_index, &o);
	if (route_build(&o.u.route, oif, add, NLM_F_CREATE | NLM_F_EXCL,
	    &msg) < 0)
		return NULL;
	return msg;
}

/* ---- rules and routes ------------------------------------------------- */

/* 0 added, 1 already there, or -errno (logged). */
static int
rule_add(struct gwnl *nl, const struct rec_obj *o, const char *desc)
{
	struct nl_msg	*msg;
	char		 reason[200];
	int		 rc;

	if ((rc = rule_build(&o->u.rule, 1, NLM_F_CREATE | NLM_F_EXCL,
	    &msg)) < 0) {
		log_warnx("%s: cannot build request: %s", desc, strerror(-rc));
		return rc;
	}
	/* With NLM_F_EXCL the kernel compares every attribute we set. */
	rc = gwnl_request(nl, msg, reason, sizeof(reason));
	if (rc == -EEXIST)
		return 1;
	if (rc < 0) {
		log_warnx("%s: %s%s", desc, strerror(-rc), reason);
		return rc;
	}
	return 0;
}

/* 0 added, 1 already there (made to match), or -errno (logged). */
static int
route_add(struct gwnl *nl, const struct rec_obj *o, const char *desc)
{
	const struct rec_route	*r = &o->u.route;
	struct nl_msg		*msg;
	char			 reason[200];
	int			 rc, oif = 0;

	if (r->type == REC_ROUTE_UNICAST) {
		if ((oif = gwnl_ifindex(nl, r->dev)) < 0) {
			log_warnx("%s: interface %s: %s", desc, r->dev,
			    strerror(-oif));
			return oif;
		}
	}
	if ((rc = route_build(r, oif, 1, NLM_F_CREATE | NLM_F_EXCL,
	    &msg)) < 0) {
		log_warnx("%s: cannot build request: %s", desc, strerror(-rc));
		return rc;
	}
	rc = gwnl_request(nl, msg, reason, sizeof(reason));
	if (rc == -EEXIST) {
		/*
		 * The kernel says "exists" for any route in this slot (table,
		 * destination, metric) whatever its type or device.  The slot
		 * is in one of our tables: make it exactly ours.
		 */
		if ((rc = route_build(r, oif, 1, NLM_F_CREATE | NLM_F_REPLACE,
		    &msg)) < 0) {
			log_warnx("%s: cannot build request: %s", desc,
			    strerror(-rc));
			return rc;
		}
		if ((rc = gwnl_request(nl, msg, reason, sizeof(reason))) == 0)
			return 1;
	}
	if (rc < 0) {
		log_warnx("%s: %s%s", desc, strerror(-rc), reason);
		return rc;
	}
	return 0;
}

int
gwnl_rule_remove(struct gwnl *nl, const struct rec_obj *o, const char *desc)
{
	struct nl_msg	*msg;
	char		 reason[200];
	int		 rc;

	if ((rc = rule_build(&o->u.rule, 0, 0, &msg)) < 0)
		return rc;
	rc = gwnl_request(nl, msg, reason, sizeof(reason));
	if (rc == -ENOENT || rc == -ESRCH)
		return 1;
	if (rc < 0)
		log_warnx("%s: remove: %s%s", desc, strerror(-rc), reason);
	return rc;
}

int
gwnl_route_remove(struct gwnl *nl, const struct rec_obj *o, const char *desc)
{
	const struct rec_route	*r = &o->u.route;
	struct nl_msg		*msg;
	char			 reason[200];
	int			 rc, oif = 0;

	if (r->type == REC_ROUTE_UNICAST) {
		/* The kernel drops a device's routes with the device. */
		if ((oif = gwnl_ifindex(nl, r->dev)) == -ENODEV)
			return 1;
		if (oif < 0) {
			log_warnx("%s: interface %s: %s", desc, r->dev,
			    strerror(-oif));
			return oif;
		}
	}
	if ((rc = route_build(r, oif, 0, 0, &msg)) < 0)
		return rc;
	rc = gwnl_request(nl, msg, reason, sizeof(reason));
	if (rc == -ESRCH || rc == -ENOENT || rc == -ENODEV)
		return 1;
	if (rc < 0)
		log_warnx("%s: remove: %s%s", desc, strerror(-rc), reason);
	return rc;
}

/*
 * Make sure the rule or route o (borrowed) is in the kernel and in the
 * record.  A recorded object missing from the kernel is added again; an
 * object found in the kernel but not recorded (left by a crash between
 * the two steps, or by hand) is adopted.
 */
static int
route_install(struct gwnl *nl, const struct rec_obj *o)
{
	struct rec_list	*rec = gwnl_record(nl);
	struct rec_obj	*old, *next;
	char		 desc[REC_LINE_MAX];
	int		 recorded, rc, ret;

	gwnl_describe(o, desc, sizeof(desc));
	recorded = rec_find(rec, o) != NULL;
	if (o->kind == REC_RULE)
		rc = rule_add(nl, o, desc);
	else if (o->kind == REC_ROUTE)
		rc = route_add(nl, o, desc);
	else
		return -EINVAL;
	if (rc < 0)
		return rc;

	if (rc == 1 && !recorded && o->kind == REC_ROUTE)
		log_info("%s: its slot was already taken in the kernel; "
		    "replaced by this route and adopted", desc);
	else if (rc == 1 && !recorded)
		log_info("%s: already in the kernel, adopted", desc);
	else if (rc == 0 && recorded)
		log_info("%s: was missing from the kernel, added again", desc);
	else if (rc == 0)
		log_debug("%s: added", desc);
	if (recorded)
		return 0;

	/* A route replaced in its slot: the old record entry is stale. */
	if (o->kind == REC_ROUTE) {
		for (old = TAILQ_FIRST(&rec->objs); old != NULL; old = next) {
			next = TAILQ_NEXT(old, entry);
			if (rec_same_route_slot(old, o) && !rec_same(old, o))
				rec_remove(rec, old);
		}
	}
	if ((ret = gwnl_record_append(nl, o)) < 0 && o->tag == REC_BLOCK) {
		log_warnx("%s: CANNOT RECORD IT in %s (%s); it stays in the "
		    "kernel, failing closed, but a later `grgw down --purge` "
		    "will not know it: free space for the record", desc,
		    gwnl_record_path(nl), strerror(-ret));
		return ret;
	}
	if (ret < 0) {
		log_warnx("%s: cannot record it (%s); removing it again", desc,
		    strerror(-ret));
		if (rc == 0 && o->kind == REC_RULE)
			(void)gwnl_rule_remove(nl, o, desc);
		else if (rc == 0)
			(void)gwnl_route_remove(nl, o, desc);
		return ret;
	}
	return 0;
}

/* ---- layout ----------------------------------------------------------- */

/* Has side s a prefix of this family?  (sysctl.c has its own copy: the two
 * files do not call each other.) */
static int
config_has_family(const struct grgw_side *s, int family)
{
	int	 i;

	for (i = 0; i < s->n_prefixes && i < GRGW_MAX_PREFIXES; i++)
		if (s->prefixes[i].a.family == family)
			return 1;
	return 0;
}

/*
 * The rules must sit after charon's (pref 220) and before main (pref
 * 32766), and neither table may be one of the kernel's reserved ones.
 */
static int
check_table(const struct grgw_config *cfg)
{
	uint32_t	 t = cfg->table;

	if (t - 10 <= PREF_CHARON || t + 1 >= PREF_MAIN || t < 10) {
		log_warnx("table %u: must lie in %u..%u so that grgw's rules "
		    "(preferences table-10 to table+1) come after charon's "
		    "(%u) and before main (%u)", t, PREF_CHARON + 11,
		    PREF_MAIN - 2, PREF_CHARON, PREF_MAIN);
		return -EINVAL;
	}
	if ((t >= RT_TABLE_COMPAT && t <= RT_TABLE_LOCAL) ||
	    (t + 1 >= RT_TABLE_COMPAT && t + 1 <= RT_TABLE_LOCAL)) {
		log_warnx("table %u: tables %u..%u are reserved by the kernel",
		    t, RT_TABLE_COMPAT, RT_TABLE_LOCAL);
		return -EINVAL;
	}
	return 0;
}

static int
check_peer_prefixes(const struct grgw_config *cfg)
{
	int	 i;

	if (cfg->peer.n_prefixes <= 0 ||
	    cfg->peer.n_prefixes > GRGW_MAX_PREFIXES) {
		log_warnx("peer %s: no prefixes to route", cfg->peer.name);
		return -EINVAL;
	}
	for (i = 0; i < cfg->peer.n_prefixes; i++) {
		if (addr_len(cfg->peer.prefixes[i].a.family) == 0) {
			log_warnx("peer %s: prefix %d has no address family",
			    cfg->peer.name, i);
			return -EINVAL;
		}
	}
	return 0;
}

static void
lookup_rule_obj(int family, uint32_t table, enum rec_tag tag,
    struct rec_obj *o)
{
	memset(o, 0, sizeof(*o));
	o->kind = REC_RULE;
	o->tag = tag;
	o->u.rule.family = family;
	o->u.rule.pref = table;
	o->u.rule.action = REC_RULE_LOOKUP;
	o->u.rule.table = table;
}

int
gwnl_block_install(struct gwnl *nl, const struct grgw_config *cfg)
{
	static const int families[] = { AF_INET, AF_INET6 };
	struct rec_obj	 o;
	const char	*wan = cfg->site.wan_interface;
	size_t		 f;
	int		 i, rc, first = 0;

	if ((rc = check_table(cfg)) < 0 || (rc = check_peer_prefixes(cfg)) < 0)
		return rc;
	if (wan[0] == '\0') {
		log_warnx("block: no WAN interface configured");
		return -EINVAL;
	}

	/*
	 * Keep going after a failure: every piece of the fail-closed layer
	 * that is in place protects something.  Report the first error.
	 */
	for (i = 0; i < cfg->peer.n_prefixes; i++) {
		memset(&o, 0, sizeof(o));
		o.kind = REC_RULE;
		o.tag = REC_BLOCK;
		o.u.rule.family = cfg->peer.prefixes[i].a.family;
		o.u.rule.pref = cfg->table - 10;
		rec_strlcpy(o.u.rule.iif, wan, sizeof(o.u.rule.iif));
		o.u.rule.has_from = 1;
		o.u.rule.from = cfg->peer.prefixes[i];
		o.u.rule.action = REC_RULE_BLACKHOLE;
		if ((rc = route_install(nl, &o)) < 0 && first == 0)
			first = rc;
	}
	for (i = 0; i < cfg->peer.n_prefixes; i++) {
		memset(&o, 0, sizeof(o));
		o.kind = REC_ROUTE;
		o.tag = REC_BLOCK;
		o.u.route.family = cfg->peer.prefixes[i].a.family;
		o.u.route.table = cfg->table + 1;
		o.u.route.type = REC_ROUTE_UNREACHABLE;
		o.u.route.dst = cfg->peer.prefixes[i];
		if ((rc = route_install(nl, &o)) < 0 && first == 0)
			first = rc;
	}
	for (f = 0; f < nitems(families); f++) {
		if (!config_has_family(&cfg->peer, families[f]))
			continue;
		lookup_rule_obj(families[f], cfg->table + 1, REC_BLOCK, &o);
		if ((rc = route_install(nl, &o)) < 0 && first == 0)
			first = rc;
	}
	return first;
}

int
gwnl_tunnel_routes_install(struct gwnl *nl, const struct grgw_config *cfg)
{
	static const int families[] = { AF_INET, AF_INET6 };
	struct rec_obj	 o;
	size_t		 f;
	int		 i, rc;

	if ((rc = check_table(cfg)) < 0 || (rc = check_peer_prefixes(cfg)) < 0)
		return rc;
	if (cfg->xfrm_interface[0] == '\0') {
		log_warnx("tunnel routes: no tunnel interface configured");
		return -EINVAL;
	}
	for (f = 0; f < nitems(families); f++) {
		if (!config_has_family(&cfg->peer, families[f]))
			continue;
		lookup_rule_obj(families[f], cfg->table, REC_RUN, &o);
		if ((rc = route_install(nl, &o)) < 0)
			return rc;
	}
	for (i = 0; i < cfg->peer.n_prefixes; i++) {
		tunnel_route_obj(cfg, i, &o);
		if ((rc = route_install(nl, &o)) < 0)
			return rc;
	}
	return 0;
}

int
gwnl_tunnel_routes_remove(struct gwnl *nl, const struct grgw_config *cfg)
{
	struct rec_list	*rec = gwnl_record(nl);
	struct rec_obj	 o, *have;
	char		 desc[REC_LINE_MAX];
	int		 i, rc, first = 0, changed = 0;

	if (cfg->peer.n_prefixes < 0 ||
	    cfg->peer.n_prefixes > GRGW_MAX_PREFIXES)
		return -EINVAL;
	/* Only routes we recorded: anything else in table T is not ours. */
	for (i = 0; i < cfg->peer.n_prefixes; i++) {
		tunnel_route_obj(cfg, i, &o);
		if ((have = rec_find(rec, &o)) == NULL)
			continue;
		gwnl_describe(have, desc, sizeof(desc));
		if ((rc = gwnl_route_remove(nl, have, desc)) < 0) {
			if (first == 0)
				first = rc;
			continue;
		}
		rec_remove(rec, have);
		changed = 1;
	}
	if (changed && (rc = gwnl_record_save(nl)) < 0 && first == 0)
		first = rc;
	return first;
}


/* ---- verification -------------------------------------------------------- */

/* Whether the route cache holds the recorded route o, exactly. */
static int
route_in_cache(struct gwnl *nl, struct nl_cache *cache,
    const struct rec_obj *o)
{
	const struct rec_route	*r = &o->u.route;
	struct nl_object	*obj;
	struct nl_addr		*dst;
	int			 found = 0, oif = 0;

	if ((dst = prefix_to_nl_addr(&r->dst)) == NULL)
		return 0;
	if (r->type == REC_ROUTE_UNICAST && (oif = gwnl_ifindex(nl, r->dev)) < 0)
		oif = -1;
	for (obj = nl_cache_get_first(cache); obj != NULL && !found;
	    obj = nl_cache_get_next(obj)) {
		struct rtnl_route	*rt = (struct rtnl_route *)obj;
		struct rtnl_nexthop	*nh;

		if (rtnl_route_get_family(rt) != r->family ||
		    rtnl_route_get_table(rt) != r->table ||
		    nl_addr_cmp(rtnl_route_get_dst(rt), dst) != 0)
			continue;
		if (r->type == REC_ROUTE_UNREACHABLE) {
			found = rtnl_route_get_type(rt) == RTN_UNREACHABLE;
			continue;
		}
		nh = rtnl_route_nexthop_n(rt, 0);
		found = rtnl_route_get_type(rt) == RTN_UNICAST && nh != NULL &&
		    rtnl_route_nh_get_ifindex(nh) == oif;
	}
	nl_addr_put(dst);
	return found;
}

int
gwnl_routes_verify(struct gwnl *nl, char *what, size_t whatlen)
{
	struct rec_list	*rec = gwnl_record(nl);
	struct nl_cache	*cache = NULL;
	struct rec_obj	*o, copy;
	char		 desc[REC_LINE_MAX];
	int		 rc, repaired = 0;

	if ((rc = rtnl_route_alloc_cache(gwnl_socket(nl), AF_UNSPEC, 0,
	    &cache)) < 0) {
		log_warnx("routes: cannot read them: %s", nl_geterror(rc));
		return -gwnl_nlerr_to_errno(rc);
	}
	TAILQ_FOREACH(o, &rec->objs, entry) {
		if (o->kind != REC_RULE && o->kind != REC_ROUTE)
			continue;
		gwnl_describe(o, desc, sizeof(desc));
		if (o->kind == REC_ROUTE && route_in_cache(nl, cache, o))
			continue;
		/* A rule is compared by the kernel itself (NLM_F_EXCL). */
		copy = *o;
		if (o->kind == REC_RULE)
			rc = rule_add(nl, &copy, desc);
		else
			rc = route_add(nl, &copy, desc);
		if (rc == 1 && o->kind == REC_RULE)
			continue;
		if (rc < 0)
			continue;		/* logged */
		log_warnx("%s: was removed or changed behind grgw's back; "
		    "installed again", desc);
		err_append(what, whatlen, "%s%s", what[0] != '\0' ? "; " : "",
		    desc);
		repaired++;
	}
	nl_cache_free(cache);
	return repaired;
}

int
gwnl_rule_ensure(struct gwnl *nl, const struct rec_obj *o)
{
	return route_install(nl, o);
}

/* Is p one of side's prefixes? */
static int
side_has_prefix(const struct grgw_side *s, const struct grgw_prefix *p)
{
	int i;

	for (i = 0; i < s->n_prefixes; i++)
		if (s->prefixes[i].len == p->len &&
		    addr_equal(&s->prefixes[i].a, &p->a))
			return 1;
	return 0;
}

/*
 * After a reload removed peer prefixes: the per-prefix rules and routes
 * of both layers that name a prefix cfg no longer has go, and nothing
 * else.  The per-family lookup rules stay (a family that lost its last
 * prefix keeps an empty table until `grgw down`).
 */
int
gwnl_prefixes_prune(struct gwnl *nl, const struct grgw_config *cfg)
{
	struct rec_list	*rec = gwnl_record(nl);
	struct rec_obj	*o, *next;
	const struct grgw_prefix *p;
	char		 desc[REC_LINE_MAX];
	int		 rc, first = 0, changed = 0;

	for (o = TAILQ_FIRST(&rec->objs); o != NULL; o = next) {
		next = TAILQ_NEXT(o, entry);
		if (o->kind == REC_RULE && o->tag == REC_BLOCK &&
		    o->u.rule.has_from && o->u.rule.pref == cfg->table - 10)
			p = &o->u.rule.from;
		else if (o->kind == REC_ROUTE && (o->u.route.table ==
		    cfg->table + 1 || o->u.route.table == cfg->table))
			p = &o->u.route.dst;
		else
			continue;
		if (side_has_prefix(&cfg->peer, p))
			continue;
		gwnl_describe(o, desc, sizeof(desc));
		rc = o->kind == REC_RULE ? gwnl_rule_remove(nl, o, desc) :
		    gwnl_route_remove(nl, o, desc);
		if (rc < 0) {
			if (first == 0)
				first = rc;
			continue;
		}
		log_info("%s: removed (its prefix left the configuration)",
		    desc);
		rec_remove(rec, o);
		changed = 1;
	}
	if (changed && (rc = gwnl_record_save(nl)) < 0 && first == 0)
		first = rc;
	return first;
}
