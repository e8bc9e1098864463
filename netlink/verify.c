/*
 * Keeping the fail-closed layer as it was installed.  gwnl_block_verify()
 * compares what is in the kernel with the record and installs again
 * what went missing (rules, routes, nftables tables), then asks the
 * kernel where packets for the peer prefixes would go: if a rule that
 * comes before grgw's sends them to a table of someone else's (policy
 * routing, a VRF, a network manager), guard rules with a still lower
 * preference put grgw's tables first again.  Errors are logged here.
 */
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <linux/fib_rules.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "netlink/libnl.h"

#include "grgw.h"
#include "netlink/netlink.h"
#include "netlink/record.h"
#include "netlink/internal.h"

#define PREF_CHARON	220	/* charon's table 220 (libipsec routes) */
#define LOOKUP_WAIT_MS	500	/* for the kernel's answer to a lookup */

struct lookup_req {
	struct nlmsghdr	h;
	struct rtmsg	r;
	char		attrs[64];
};

static void
attr_put(struct lookup_req *q, unsigned short type, const void *data,
    size_t len)
{
	struct rtattr	*a;
	size_t		 off = NLMSG_ALIGN(q->h.nlmsg_len);

	if (off + RTA_SPACE(len) > sizeof(*q))
		return;		/* cannot happen: the buffer fits three */
	a = (struct rtattr *)((char *)q + off);
	a->rta_type = type;
	a->rta_len = (unsigned short)RTA_LENGTH(len);
	memcpy(RTA_DATA(a), data, len);
	q->h.nlmsg_len = (uint32_t)(off + RTA_SPACE(len));
}

/*
 * Ask the kernel which route a packet to dst takes: from this host when
 * iif is 0, else as if it arrived on iif from src.  Returns 1 and the
 * table of the matching route, 0 when there is no usable route (an
 * error: unreachable, blackhole, prohibit), or -errno when the question
 * could not be asked.
 */
static int
route_lookup(const struct grgw_addr *dst, int iif, const struct grgw_addr *src,
    uint32_t *table)
{
	struct lookup_req	 q;
	struct sockaddr_nl	 sa = { .nl_family = AF_NETLINK };
	struct timeval		 tv = { 0, LOOKUP_WAIT_MS * 1000 };
	union {
		struct nlmsghdr	 h;
		char		 buf[8192];
	} a;
	struct nlmsghdr		*h;
	struct rtattr		*rta;
	ssize_t			 n;
	size_t			 alen = (size_t)addr_len(dst->family);
	int			 fd, rc = -EIO, attrlen;
	uint32_t		 idx;

	if (alen == 0)
		return -EINVAL;
	memset(&q, 0, sizeof(q));
	q.h.nlmsg_len = NLMSG_LENGTH(sizeof(q.r));
	q.h.nlmsg_type = RTM_GETROUTE;
	q.h.nlmsg_flags = NLM_F_REQUEST;
	q.h.nlmsg_seq = 1;
	q.r.rtm_family = (unsigned char)dst->family;
	q.r.rtm_dst_len = (unsigned char)(alen * 8);
	/* Without RTM_F_LOOKUP_TABLE the kernel says "main" for any table. */
	q.r.rtm_flags = RTM_F_FIB_MATCH | RTM_F_LOOKUP_TABLE;
	attr_put(&q, RTA_DST, dst->addr, alen);
	if (iif > 0 && src != NULL && src->family == dst->family) {
		idx = (uint32_t)iif;
		q.r.rtm_src_len = (unsigned char)(alen * 8);
		attr_put(&q, RTA_SRC, src->addr, alen);
		attr_put(&q, RTA_IIF, &idx, sizeof(idx));
	}
	if ((fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC,
	    NETLINK_ROUTE)) == -1)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == -1 ||
	    sendto(fd, &q, q.h.nlmsg_len, 0, (struct sockaddr *)&sa,
	    sizeof(sa)) == -1) {
		rc = -errno;
		goto out;
	}
	if ((n = recv(fd, &a, sizeof(a), 0)) < 0) {
		rc = -errno;
		goto out;
	}
	h = &a.h;
	if (!NLMSG_OK(h, (size_t)n))
		goto out;
	if (h->nlmsg_type == NLMSG_ERROR) {
		struct nlmsgerr *e = NLMSG_DATA(h);

		if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*e)))
			goto out;
		rc = e->error == 0 ? -EIO : 0;	/* no route to use */
		goto out;
	}
	if (h->nlmsg_type != RTM_NEWROUTE ||
	    h->nlmsg_len < NLMSG_LENGTH(sizeof(struct rtmsg)))
		goto out;
	{
		struct rtmsg *r = NLMSG_DATA(h);

		*table = r->rtm_table;
		if (r->rtm_type == RTN_UNREACHABLE ||
		    r->rtm_type == RTN_BLACKHOLE ||
		    r->rtm_type == RTN_PROHIBIT) {
			rc = 0;
			goto out;
		}
		attrlen = (int)RTM_PAYLOAD(h);
		for (rta = RTM_RTA(r); RTA_OK(rta, attrlen);
		    rta = RTA_NEXT(rta, attrlen))
			if (rta->rta_type == RTA_TABLE &&
			    RTA_PAYLOAD(rta) >= sizeof(uint32_t))
				memcpy(table, RTA_DATA(rta), sizeof(*table));
		rc = 1;
	}
out:
	close(fd);
	return rc;
}

static int
table_is_ours(const struct grgw_config *cfg, int libipsec, uint32_t t)
{
	return t == cfg->table || t == cfg->table + 1 ||
	    (libipsec && t == PREF_CHARON);
}

/* The first address of the family in side's prefixes, or NULL. */
static const struct grgw_addr *
first_addr(const struct grgw_side *s, int family)
{
	int	 i;

	for (i = 0; i < s->n_prefixes && i < GRGW_MAX_PREFIXES; i++)
		if (s->prefixes[i].a.family == family)
			return &s->prefixes[i].a;
	return NULL;
}

/*
 * Peer prefixes whose packets (sent by this host, or forwarded from the
 * first LAN interface) a foreign table would route; their list in what.
 */
static int
overrides_find(struct gwnl *nl, const struct grgw_config *cfg, int libipsec,
    char *what, size_t whatlen)
{
	const struct grgw_addr	*src;
	char			 p[INET6_ADDRSTRLEN + 8];
	uint32_t		 table;
	int			 i, j, rc, iif = 0, found = 0;

	if (cfg->site.n_lan_interfaces > 0)
		iif = gwnl_ifindex(nl, cfg->site.lan_interfaces[0]);
	for (i = 0; i < cfg->peer.n_prefixes && i < GRGW_MAX_PREFIXES; i++) {
		const struct grgw_prefix *pf = &cfg->peer.prefixes[i];

		src = first_addr(&cfg->site, pf->a.family);
		for (j = 0; j < 2; j++) {
			if (j == 1 && (iif <= 0 || src == NULL))
				break;
			table = 0;
			rc = route_lookup(&pf->a, j ? iif : 0, src, &table);
			if (rc <= 0 || table_is_ours(cfg, libipsec, table))
				continue;
			err_append(what, whatlen, "%speer prefix %s routed by "
			    "table %u%s", what[0] != '\0' ? "; " : "",
			    prefix_fmt(pf, p, sizeof(p)), table,
			    j ? " (forwarded)" : "");
			found++;
			break;
		}
	}
	return found;
}

/*
 * The lowest preference of a rule that is neither grgw's nor charon's
 * nor the local table's, below grgw's own; 0 if there is none.
 */
static uint32_t
foreign_rule_pref(struct gwnl *nl, const struct grgw_config *cfg)
{
	struct rec_list		*rec = gwnl_record(nl);
	struct nl_cache		*cache;
	struct nl_object	*obj;
	struct rec_obj		*o;
	uint32_t		 pref, min = 0;
	int			 ours;

	if (rtnl_rule_alloc_cache(gwnl_socket(nl), AF_UNSPEC, &cache) < 0)
		return 0;
	for (obj = nl_cache_get_first(cache); obj != NULL;
	    obj = nl_cache_get_next(obj)) {
		pref = rtnl_rule_get_prio((struct rtnl_rule *)obj);
		if (pref == 0 || pref == PREF_CHARON || pref >= cfg->table - 10)
			continue;
		ours = 0;
		TAILQ_FOREACH(o, &rec->objs, entry)
			if (o->kind == REC_RULE && o->u.rule.pref == pref)
				ours = 1;
		if (!ours && (min == 0 || pref < min))
			min = pref;
	}
	nl_cache_free(cache);
	return min;
}

/*
 * Guard rules just before the foreign rule at pref: charon's table
 * (libipsec), grgw's tunnel table, grgw's unreachable table, for each
 * address family of the peer prefixes.  Recorded as block objects.
 */
static int
guards_install(struct gwnl *nl, const struct grgw_config *cfg, int libipsec,
    uint32_t pref)
{
	static const int families[] = { AF_INET, AF_INET6 };
	uint32_t	 tables[3], base;
	struct rec_obj	 o;
	size_t		 f, t, n = 0;
	int		 rc, first = 0;

	if (libipsec)
		tables[n++] = PREF_CHARON;
	tables[n++] = cfg->table;
	tables[n++] = cfg->table + 1;
	if (pref <= n) {
		log_warnx("a rule at preference %u routes the peer prefixes "
		    "elsewhere and leaves no room before it for guard rules; "
		    "the WAN block still drops what would leave in clear",
		    pref);
		return -ENOSPC;
	}
	base = pref - (uint32_t)n;
	for (f = 0; f < nitems(families); f++) {
		if (first_addr(&cfg->peer, families[f]) == NULL)
			continue;
		for (t = 0; t < n; t++) {
			memset(&o, 0, sizeof(o));
			o.kind = REC_RULE;
			o.tag = REC_BLOCK;
			o.u.rule.family = families[f];
			o.u.rule.pref = base + (uint32_t)t;
			o.u.rule.action = REC_RULE_LOOKUP;
			o.u.rule.table = tables[t];
			if ((rc = gwnl_rule_ensure(nl, &o)) < 0 && first == 0)
				first = rc;
		}
	}
	if (first == 0)
		log_warnx("guard rules installed at preferences %u..%u, before "
		    "the rule at %u", base, base + (uint32_t)n - 1, pref);
	return first;
}

int
gwnl_block_verify(struct gwnl *nl, const struct grgw_config *cfg,
    int libipsec, int nft_changed, struct gwnl_verify *out)
{
	char		 over[256];
	uint32_t	 pref;
	int		 rc;

	memset(out, 0, sizeof(*out));
	if ((rc = gwnl_routes_verify(nl, out->what, sizeof(out->what))) > 0)
		out->repaired += rc;
	if ((rc = gwnl_nft_verify(nl, nft_changed, out->what,
	    sizeof(out->what))) > 0)
		out->repaired += rc;
	over[0] = '\0';
	if (overrides_find(nl, cfg, libipsec, over, sizeof(over)) == 0)
		return out->repaired;
	log_warnx("fail-closed routing overridden: %s", over);
	err_append(out->what, sizeof(out->what), "%s%s",
	    out->what[0] != '\0' ? "; " : "", over);
	out->overridden = 1;
	if ((pref = foreign_rule_pref(nl, cfg)) != 0 &&
	    guards_install(nl, cfg, libipsec, pref) == 0) {
		out->repaired++;
		over[0] = '\0';
		if (overrides_find(nl, cfg, libipsec, over, sizeof(over)) > 0)
			log_warnx("still overridden after the guard rules: %s",
			    over);
		else
			out->overridden = 0;
	}
	if (out->overridden)
		snprintf(out->override, sizeof(out->override), "%s", over);
	return out->repaired;
}
