/*
 * nftables: grgw's tables, each replaced whole in one transaction
 * (gwnl_nft_apply()) and recorded, so that cleanup deletes them; the
 * two tables of the fail-closed layer (the WAN block and fail fast);
 * and the check that every table applied is still as applied
 * (gwnl_nft_verify()).  The QoS table is built by policy/ and applied
 * by qos.c through here.
 *
 * Errors are -errno, logged here.
 */
#include <sys/queue.h>
#include <sys/socket.h>

#include <arpa/inet.h>

#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/netfilter.h>

#include <nftables/libnftables.h>

#include "grgw.h"
#include "netlink/netlink.h"
#include "netlink/record.h"
#include "netlink/internal.h"

/*
 * What was applied, table by table: the body to apply again, and how
 * nftables lists the table without its counters, to compare with.
 */
struct nft_table {
	TAILQ_ENTRY(nft_table) entry;
	char		 family[REC_NFT_FAMILY_MAX];
	char		 name[REC_NFT_NAME_MAX];
	char		*body;
	char		*listing;
	int		 watch;		/* GWNL_WATCH_ALWAYS or _NFT */
};
TAILQ_HEAD(nft_tables, nft_table);

static void
nft_tables_free(void *p)
{
	struct nft_tables	*l = p;
	struct nft_table	*t;

	if (l == NULL)
		return;
	while ((t = TAILQ_FIRST(l)) != NULL) {
		TAILQ_REMOVE(l, t, entry);
		free(t->body);
		free(t->listing);
		free(t);
	}
	free(l);
}

static struct nft_tables *
nft_tables_of(struct gwnl *nl)
{
	struct nft_tables	*l;

	if ((l = gwnl_nft_state(nl)) != NULL)
		return l;
	if ((l = calloc(1, sizeof(*l))) == NULL)
		return NULL;
	TAILQ_INIT(l);
	gwnl_nft_state_set(nl, l, nft_tables_free);
	return l;
}

int
gwnl_nft_run(const char *script, const char *what)
{
	struct nft_ctx	*ctx;
	const char	*msg;
	int		 rc = 0;

	if ((ctx = nft_ctx_new(NFT_CTX_DEFAULT)) == NULL)
		return -ENOMEM;
	nft_ctx_buffer_output(ctx);
	nft_ctx_buffer_error(ctx);
	if (nft_run_cmd_from_buffer(ctx, script) != 0) {
		msg = nft_ctx_get_error_buffer(ctx);
		log_warnx("%s: nftables refused the change: %.300s", what,
		    msg != NULL && *msg != '\0' ? msg : "no reason given");
		rc = -EINVAL;
	}
	nft_ctx_free(ctx);
	return rc;
}

/*
 * A named set's elements out of a listing, in place: grgw's only named
 * sets are the pair's holds (floatguard.c), whose elements come and go
 * with their timeouts and are no part of what the table must stay.
 */
static void
strip_elements(char *listing)
{
	char	*r = listing, *w = listing, *nl;
	int	 depth = 0;

	while (*r != '\0') {
		nl = strchr(r, '\n');
		nl = nl != NULL ? nl + 1 : r + strlen(r);
		if (depth == 0 && strstr(r, "elements = {") != NULL &&
		    strstr(r, "elements = {") < nl)
			depth = 1;
		if (depth > 0) {
			if (memchr(r, '}', (size_t)(nl - r)) != NULL)
				depth = 0;
			r = nl;
			continue;
		}
		memmove(w, r, (size_t)(nl - r));
		w += nl - r;
		r = nl;
	}
	*w = '\0';
}

/* How nftables lists `<family> <table>` without counter values or set
 * elements, malloc'ed; NULL when the table is missing (or out of
 * memory). */
static char *
nft_list(const char *family, const char *table)
{
	struct nft_ctx	*ctx;
	const char	*out;
	char		 cmd[64];
	char		*listing = NULL;

	if ((ctx = nft_ctx_new(NFT_CTX_DEFAULT)) == NULL)
		return NULL;
	nft_ctx_output_set_flags(ctx, NFT_CTX_OUTPUT_STATELESS);
	nft_ctx_buffer_output(ctx);
	nft_ctx_buffer_error(ctx);
	snprintf(cmd, sizeof(cmd), "list table %s %s", family, table);
	if (nft_run_cmd_from_buffer(ctx, cmd) == 0 &&
	    (out = nft_ctx_get_output_buffer(ctx)) != NULL &&
	    (listing = strdup(out)) != NULL)
		strip_elements(listing);
	nft_ctx_free(ctx);
	return listing;
}

/* Keep body (borrowed) and the table's listing for gwnl_nft_verify(). */
static void
nft_remember(struct gwnl *nl, const char *family, const char *table,
    const char *body, int watch)
{
	struct nft_tables	*l;
	struct nft_table	*t;
	char			*b, *listing;

	if ((l = nft_tables_of(nl)) == NULL)
		return;
	TAILQ_FOREACH(t, l, entry)
		if (strcmp(t->family, family) == 0 &&
		    strcmp(t->name, table) == 0)
			break;
	if (t == NULL) {
		if ((t = calloc(1, sizeof(*t))) == NULL)
			return;
		rec_strlcpy(t->family, family, sizeof(t->family));
		rec_strlcpy(t->name, table, sizeof(t->name));
		TAILQ_INSERT_TAIL(l, t, entry);
	}
	b = strdup(body);
	listing = nft_list(family, table);
	t->watch = watch;
	free(t->body);
	free(t->listing);
	t->body = b;
	t->listing = listing;
}

/* Forget a table that was removed on purpose. */
static void
nft_forget(struct gwnl *nl, const char *family, const char *table)
{
	struct nft_tables	*l = gwnl_nft_state(nl);
	struct nft_table	*t;

	if (l == NULL)
		return;
	TAILQ_FOREACH(t, l, entry)
		if (strcmp(t->family, family) == 0 &&
		    strcmp(t->name, table) == 0)
			break;
	if (t == NULL)
		return;
	TAILQ_REMOVE(l, t, entry);
	free(t->body);
	free(t->listing);
	free(t);
}

static int
nft_recorded(struct gwnl *nl, const char *family, const char *table)
{
	struct rec_obj	 o;

	memset(&o, 0, sizeof(o));
	o.kind = REC_NFT;
	rec_strlcpy(o.u.nft.family, family, sizeof(o.u.nft.family));
	rec_strlcpy(o.u.nft.table, table, sizeof(o.u.nft.table));
	o.tag = REC_BLOCK;
	if (rec_find(gwnl_record(nl), &o) != NULL)
		return 1;
	o.tag = REC_RUN;
	return rec_find(gwnl_record(nl), &o) != NULL;
}

/* The transaction that replaces table with body. */
static int
nft_replace(const char *family, const char *table, const char *body)
{
	char	*script = NULL;
	int	 rc;

	if (asprintf(&script, "add table %s %s\ndelete table %s %s\n"
	    "table %s %s {\n%s}\n", family, table, family, table, family,
	    table, body) < 0)
		return -ENOMEM;
	rc = gwnl_nft_run(script, table);
	free(script);
	return rc;
}

int
gwnl_nft_verify(struct gwnl *nl, int nft_changed, char *what, size_t whatlen)
{
	struct nft_tables	*l = gwnl_nft_state(nl);
	struct nft_table	*t, *next;
	char			*now;
	int			 repaired = 0;

	if (l == NULL)
		return 0;
	for (t = TAILQ_FIRST(l); t != NULL; t = next) {
		next = TAILQ_NEXT(t, entry);
		if (!nft_recorded(nl, t->family, t->name)) {
			/* removed on purpose */
			nft_forget(nl, t->family, t->name);
			continue;
		}
		if (t->body == NULL || t->listing == NULL ||
		    (t->watch == GWNL_WATCH_NFT && !nft_changed))
			continue;
		now = nft_list(t->family, t->name);
		if (now != NULL && strcmp(now, t->listing) == 0) {
			free(now);
			continue;
		}
		log_warnx("nftables table %s %s was %s behind grgw's back; "
		    "applying it again", t->family, t->name, now == NULL ?
		    "deleted" : "changed");
		err_append(what, whatlen, "%stable %s %s %s",
		    what[0] != '\0' ? "; " : "", t->family, t->name,
		    now == NULL ? "deleted" : "changed");
		free(now);
		if (nft_replace(t->family, t->name, t->body) == 0) {
			free(t->listing);
			t->listing = nft_list(t->family, t->name);
			repaired++;
		}
	}
	return repaired;
}

int
gwnl_nft_remove(const struct rec_obj *o, const char *desc)
{
	char	 script[128];
	int	 rc;

	if (!rec_valid_nft(&o->u.nft))
		return -EINVAL;
	/* "add" first makes the delete succeed whether or not it exists. */
	snprintf(script, sizeof(script), "add table %s %s\ndelete table %s %s\n",
	    o->u.nft.family, o->u.nft.table, o->u.nft.family, o->u.nft.table);
	rc = gwnl_nft_run(script, desc);
	return rc;
}

int
gwnl_nft_apply(struct gwnl *nl, int block, const char *table,
    const char *body)
{
	return gwnl_nft_apply_family(nl, block, "inet", table, body,
	    GWNL_WATCH_ALWAYS);
}

int
gwnl_nft_apply_family(struct gwnl *nl, int block, const char *family,
    const char *table, const char *body, int watch)
{
	struct rec_obj	 o;
	int		 rc;

	memset(&o, 0, sizeof(o));
	o.kind = REC_NFT;
	o.tag = block ? REC_BLOCK : REC_RUN;
	if (rec_strlcpy(o.u.nft.family, family, sizeof(o.u.nft.family)) >=
	    sizeof(o.u.nft.family) ||
	    rec_strlcpy(o.u.nft.table, table, sizeof(o.u.nft.table)) >=
	    sizeof(o.u.nft.table) || !rec_valid_nft(&o.u.nft))
		return -EINVAL;
	/*
	 * Recorded before it exists, so a crash in between still undoes
	 * it.  A block table goes in even when the record cannot be
	 * written: it stays known in memory, and failing closed comes
	 * first (the caller hears the error).
	 */
	if (rec_find(gwnl_record(nl), &o) == NULL &&
	    (rc = gwnl_record_append(nl, &o)) < 0) {
		if (!block)
			return rc;
		log_warnx("table %s %s: CANNOT RECORD IT in %s (%s); "
		    "installing it all the same, failing closed", family,
		    table, gwnl_record_path(nl), strerror(-rc));
		if (nft_replace(family, table, body) == 0 && watch)
			nft_remember(nl, family, table, body, watch);
		return rc;
	}
	/* Replace the whole table in one transaction: never half a policy. */
	if ((rc = nft_replace(family, table, body)) == 0 && watch)
		nft_remember(nl, family, table, body, watch);
	return rc;
}

/*
 * The WAN block (block layer): nothing leaves a WAN interface with a
 * source or destination inside the site's or the peer's prefixes.
 * Traffic between the sites leaves the WAN only as IKE and ESP between
 * the two gateways' WAN addresses, which the configuration keeps
 * outside every prefix.  The chain runs before source NAT, so it sees
 * the addresses a node sent from.  This holds with every route gone.
 * xfrm: "" or a match that spares the packets ESP is about to wrap.
 */
static int
wanblock_apply(struct gwnl *nl, const struct grgw_config *cfg,
    const char *xfrm)
{
	static const struct { int family; const char *kw; } fams[] = {
		{ AF_INET, "ip" }, { AF_INET6, "ip6" }
	};
	const struct grgw_side *sides[] = { &cfg->site, &cfg->peer };
	char	 body[4096], set[GRGW_MAX_PREFIXES * 2 * (INET6_ADDRSTRLEN + 6)];
	char	 p[INET6_ADDRSTRLEN + 8];
	size_t	 off, soff, f, s;
	int	 i, n, any = 0;

	if (!ifname_valid(cfg->site.wan_interface))
		return -EINVAL;
	n = snprintf(body, sizeof(body), "\tchain postrouting {\n"
	    "\t\ttype filter hook postrouting priority -300; "
	    "policy accept;\n");
	if (n < 0 || (size_t)n >= sizeof(body))
		return -ENAMETOOLONG;
	off = (size_t)n;
	for (f = 0; f < nitems(fams); f++) {
		soff = 0;
		set[0] = '\0';
		for (s = 0; s < nitems(sides); s++) {
			for (i = 0; i < sides[s]->n_prefixes &&
			    i < GRGW_MAX_PREFIXES; i++) {
				const struct grgw_prefix *pf =
				    &sides[s]->prefixes[i];

				if (pf->a.family != fams[f].family)
					continue;
				n = snprintf(set + soff, sizeof(set) - soff,
				    "%s%s", soff ? ", " : "",
				    prefix_fmt(pf, p, sizeof(p)));
				if (n < 0 || (size_t)n >= sizeof(set) - soff)
					return -ENAMETOOLONG;
				soff += (size_t)n;
			}
		}
		if (soff == 0)
			continue;
		any = 1;
		n = snprintf(body + off, sizeof(body) - off,
		    "\t\toifname \"%s\" %s saddr { %s } %scounter drop\n"
		    "\t\toifname \"%s\" %s daddr { %s } %scounter drop\n",
		    cfg->site.wan_interface, fams[f].kw, set, xfrm,
		    cfg->site.wan_interface, fams[f].kw, set, xfrm);
		if (n < 0 || (size_t)n >= sizeof(body) - off)
			return -ENAMETOOLONG;
		off += (size_t)n;
	}
	if (!any)
		return -EINVAL;
	n = snprintf(body + off, sizeof(body) - off, "\t}\n");
	if (n < 0 || (size_t)n >= sizeof(body) - off)
		return -ENAMETOOLONG;
	return gwnl_nft_apply(nl, 1, GWNL_WANBLOCK_TABLE, body);
}

int
gwnl_wanblock_install(struct gwnl *nl, const struct grgw_config *cfg)
{
	int	 rc;

	/*
	 * The kernel data plane hands the tunnel's clear packets to this
	 * hook with the WAN as their way out, just before ESP wraps them
	 * (their route carries the transform): those go.  A kernel without
	 * XFRM knows no such route, and has no such packets.
	 */
	if ((rc = wanblock_apply(nl, cfg, "rt ipsec missing ")) == -EINVAL) {
		log_info("%s: this kernel cannot match IPsec routes; the WAN "
		    "block drops by address alone", GWNL_WANBLOCK_TABLE);
		rc = wanblock_apply(nl, cfg, "");
	}
	return rc;
}

/* "{ "lan0", "lan1" }" of the LAN interfaces into buf. */
static int
lan_ifs(const struct grgw_config *cfg, char *buf, size_t size)
{
	size_t	 off = 0;
	int	 i, n;

	buf[0] = '\0';
	for (i = 0; i < cfg->site.n_lan_interfaces; i++) {
		/* Pasted into a script: only names that cannot break it. */
		if (!ifname_valid(cfg->site.lan_interfaces[i]))
			return -EINVAL;
		n = snprintf(buf + off, size - off, "%s\"%s\"", i ? ", " : "",
		    cfg->site.lan_interfaces[i]);
		if (n < 0 || (size_t)n >= size - off)
			return -ENAMETOOLONG;
		off += (size_t)n;
	}
	return 0;
}

int
gwnl_failfast_install(struct gwnl *nl, const struct grgw_config *cfg)
{
	char	 body[4096], ifs[GRGW_MAX_LAN_IFS * (IF_NAMESIZE + 4)];
	char	 p[INET6_ADDRSTRLEN + 8];
	size_t	 off = 0;
	int	 i, n;

	if ((n = lan_ifs(cfg, ifs, sizeof(ifs))) < 0)
		return n;
	off = 0;
	n = snprintf(body, sizeof(body), "\tchain prerouting {\n"
	    "\t\ttype filter hook prerouting priority -150; policy accept;\n");
	if (n < 0)
		return -EINVAL;
	off = (size_t)n;
	/*
	 * A new TCP connection from the site's nodes to a peer prefix that
	 * has no route (the tunnel is down: the unreachable routes answer)
	 * gets a reset at once.  The kernel's ICMP errors are rate limited
	 * per host, so a service retrying quickly would otherwise hang on
	 * its later attempts; resets are not.  An established connection
	 * is never reset: its segments get an ICMP unreachable, a soft
	 * error it rides out if the route comes back (a charon restart).
	 * Other protocols get the ICMP error from the unreachable route.
	 */
	for (i = 0; i < cfg->peer.n_prefixes; i++) {
		const struct grgw_prefix *pf = &cfg->peer.prefixes[i];
		int v4 = pf->a.family == AF_INET;

		n = snprintf(body + off, sizeof(body) - off,
		    "\t\tiifname { %s } meta l4proto tcp %s daddr %s "
		    "fib daddr oif missing tcp flags & (syn | ack) == syn "
		    "counter reject with tcp reset\n"
		    "\t\tiifname { %s } meta l4proto tcp %s daddr %s "
		    "fib daddr oif missing counter reject with %s\n",
		    ifs, v4 ? "ip" : "ip6", prefix_fmt(pf, p, sizeof(p)),
		    ifs, v4 ? "ip" : "ip6", p,
		    v4 ? "icmp type host-unreachable" :
		    "icmpv6 type addr-unreachable");
		if (n < 0 || (size_t)n >= sizeof(body) - off)
			return -ENAMETOOLONG;
		off += (size_t)n;
	}
	n = snprintf(body + off, sizeof(body) - off, "\t}\n");
	if (n < 0 || (size_t)n >= sizeof(body) - off)
		return -ENAMETOOLONG;
	return gwnl_nft_apply(nl, 1, GWNL_FAILFAST_TABLE, body);
}


int
gwnl_nft_drop(struct gwnl *nl, const char *table)
{
	struct rec_obj	 o, *have;
	char		 desc[REC_LINE_MAX];
	int		 rc;

	memset(&o, 0, sizeof(o));
	o.kind = REC_NFT;
	o.tag = REC_RUN;
	rec_strlcpy(o.u.nft.family, "inet", sizeof(o.u.nft.family));
	if (rec_strlcpy(o.u.nft.table, table, sizeof(o.u.nft.table)) >=
	    sizeof(o.u.nft.table) || !rec_valid_nft(&o.u.nft))
		return -EINVAL;
	if ((have = rec_find(gwnl_record(nl), &o)) == NULL)
		return 0;
	gwnl_describe(have, desc, sizeof(desc));
	if ((rc = gwnl_nft_remove(have, desc)) < 0)
		return rc;
	nft_forget(nl, "inet", table);
	rec_remove(gwnl_record(nl), have);
	return gwnl_record_save(nl);
}

/*
 * The refusing table: its rules stay in place from the start; a LAN
 * interface in its set REFUSE_SET is refused.  Refusing starts and
 * stops by that set's elements (nfset.c): a link going down must not
 * cost the parent a libnftables transaction, which on a busy host
 * holds it for tens to hundreds of ms (the pair's hold meanwhile).
 */
#define REFUSE_SET	"refusing"

int
gwnl_refuse_install(struct gwnl *nl, const struct grgw_config *cfg)
{
	char	 body[4096], p[INET6_ADDRSTRLEN + 8];
	size_t	 off;
	int	 i, n;

	n = snprintf(body, sizeof(body), "\tset %s { type ifname; }\n"
	    "\tchain prerouting {\n"
	    "\t\ttype filter hook prerouting priority -140; "
	    "policy accept;\n", REFUSE_SET);
	if (n < 0 || (size_t)n >= sizeof(body))
		return -ENAMETOOLONG;
	off = (size_t)n;
	/* As fail fast does: new connections reset, established spared. */
	for (i = 0; i < cfg->peer.n_prefixes && i < GRGW_MAX_PREFIXES; i++) {
		const struct grgw_prefix *pf = &cfg->peer.prefixes[i];
		int v4 = pf->a.family == AF_INET;

		n = snprintf(body + off, sizeof(body) - off,
		    "\t\tiifname @%s %s daddr %s meta l4proto tcp "
		    "tcp flags & (syn | ack) == syn counter reject with tcp "
		    "reset\n"
		    "\t\tiifname @%s %s daddr %s counter reject with %s\n",
		    REFUSE_SET, v4 ? "ip" : "ip6", prefix_fmt(pf, p, sizeof(p)),
		    REFUSE_SET, v4 ? "ip" : "ip6", p,
		    v4 ? "icmp type host-unreachable" :
		    "icmpv6 type addr-unreachable");
		if (n < 0 || (size_t)n >= sizeof(body) - off)
			return -ENAMETOOLONG;
		off += (size_t)n;
	}
	n = snprintf(body + off, sizeof(body) - off, "\t}\n");
	if (n < 0 || (size_t)n >= sizeof(body) - off)
		return -ENAMETOOLONG;
	/* Only nftables can change it: looked at after its events. */
	return gwnl_nft_apply_family(nl, 0, "inet", GWNL_REFUSE_TABLE, body,
	    GWNL_WATCH_NFT);
}

/* The LAN interfaces in the set (on), or none (off): one transaction. */
static int
refuse_elements(const struct grgw_config *cfg, int on)
{
	struct nfset_batch	*b;
	char			 key[IF_NAMESIZE];
	int			 i;

	for (i = 0; i < cfg->site.n_lan_interfaces; i++)
		if (!ifname_valid(cfg->site.lan_interfaces[i]))
			return -EINVAL;
	if ((b = nfset_begin()) == NULL)
		return -ENOMEM;
	nfset_clear(b, NFPROTO_INET, GWNL_REFUSE_TABLE, REFUSE_SET);
	for (i = 0; on && i < cfg->site.n_lan_interfaces; i++) {
		/* nftables' ifname: IFNAMSIZ bytes, zero padded. */
		memset(key, 0, sizeof(key));
		memcpy(key, cfg->site.lan_interfaces[i],
		    strnlen(cfg->site.lan_interfaces[i], sizeof(key) - 1));
		nfset_add(b, NFPROTO_INET, GWNL_REFUSE_TABLE, REFUSE_SET, key,
		    sizeof(key), 0);
	}
	return nfset_commit(b);
}

int
gwnl_refuse_set(struct gwnl *nl, const struct grgw_config *cfg, int on)
{
	int	 rc;

	if (!nft_recorded(nl, "inet", GWNL_REFUSE_TABLE) &&
	    (rc = gwnl_refuse_install(nl, cfg)) != 0)
		return rc;
	rc = refuse_elements(cfg, on);
	if (rc == -ENOENT) {
		/* The table deleted behind our back: back, then set. */
		if ((rc = gwnl_refuse_install(nl, cfg)) != 0)
			return rc;
		rc = refuse_elements(cfg, on);
	}
	if (rc != 0)
		log_warnx("nftables table inet %s: cannot %s refusing: %s",
		    GWNL_REFUSE_TABLE, on ? "start" : "stop", strerror(-rc));
	return rc;
}
