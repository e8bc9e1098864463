/*
 * nftables: grgw's tables, each replaced whole in one transaction
 * (gwnl_nft_apply()) and recorded, so that cleanup deletes them; and
 * the first of them, the fail-fast table of the fail-closed layer.
 * The QoS table is built by policy/ and applied by qos.c through here.
 *
 * Errors are -errno, logged here.
 */
#include <sys/socket.h>

#include <arpa/inet.h>

#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nftables/libnftables.h>

#include "grgw.h"
#include "netlink/netlink.h"
#include "netlink/record.h"
#include "netlink/internal.h"

/*
 * Run an nftables script as one transaction.  0, or -EINVAL with the
 * parser's or kernel's complaint logged (what names the caller's object).
 */
static int
nft_run(const char *script, const char *what)
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
	rc = nft_run(script, desc);
	return rc;
}

int
gwnl_nft_apply(struct gwnl *nl, int block, const char *table,
    const char *body)
{
	struct rec_obj	 o;
	char		*script = NULL;
	int		 rc, n;

	memset(&o, 0, sizeof(o));
	o.kind = REC_NFT;
	o.tag = block ? REC_BLOCK : REC_RUN;
	rec_strlcpy(o.u.nft.family, "inet", sizeof(o.u.nft.family));
	if (rec_strlcpy(o.u.nft.table, table, sizeof(o.u.nft.table)) >=
	    sizeof(o.u.nft.table) || !rec_valid_nft(&o.u.nft))
		return -EINVAL;
	/* Recorded before it exists, so a crash in between still undoes it. */
	if (rec_find(gwnl_record(nl), &o) == NULL &&
	    (rc = gwnl_record_append(nl, &o)) < 0)
		return rc;
	/* Replace the whole table in one transaction: never half a policy. */
	n = asprintf(&script, "add table inet %s\ndelete table inet %s\n"
	    "table inet %s {\n%s}\n", table, table, table, body);
	if (n < 0)
		return -ENOMEM;
	rc = nft_run(script, table);
	free(script);
	return rc;
}

int
gwnl_failfast_install(struct gwnl *nl, const struct grgw_config *cfg)
{
	char	 body[4096], ifs[GRGW_MAX_LAN_IFS * (IF_NAMESIZE + 4)];
	char	 p[INET6_ADDRSTRLEN + 8];
	size_t	 off = 0;
	int	 i, n;

	ifs[0] = '\0';
	for (i = 0; i < cfg->site.n_lan_interfaces; i++) {
		/* Pasted into a script: only names that cannot break it. */
		if (!ifname_valid(cfg->site.lan_interfaces[i]))
			return -EINVAL;
		n = snprintf(ifs + off, sizeof(ifs) - off, "%s\"%s\"",
		    i ? ", " : "", cfg->site.lan_interfaces[i]);
		if (n < 0 || (size_t)n >= sizeof(ifs) - off)
			return -ENAMETOOLONG;
		off += (size_t)n;
	}
	off = 0;
	n = snprintf(body, sizeof(body), "\tchain prerouting {\n"
	    "\t\ttype filter hook prerouting priority -150; policy accept;\n");
	if (n < 0)
		return -EINVAL;
	off = (size_t)n;
	/*
	 * A TCP segment from the site's nodes to a peer prefix that has no
	 * route (the tunnel is down: the unreachable routes answer) gets a
	 * reset at once.  The kernel's ICMP errors are rate limited per
	 * host, so a service retrying quickly would otherwise hang on its
	 * later attempts; resets are not.  Other protocols get the ICMP
	 * error from the unreachable route.
	 */
	for (i = 0; i < cfg->peer.n_prefixes; i++) {
		const struct grgw_prefix *pf = &cfg->peer.prefixes[i];

		n = snprintf(body + off, sizeof(body) - off,
		    "\t\tiifname { %s } meta l4proto tcp %s daddr %s "
		    "fib daddr oif missing counter reject with tcp reset\n",
		    ifs, pf->a.family == AF_INET ? "ip" : "ip6",
		    prefix_fmt(pf, p, sizeof(p)));
		if (n < 0 || (size_t)n >= sizeof(body) - off)
			return -ENAMETOOLONG;
		off += (size_t)n;
	}
	n = snprintf(body + off, sizeof(body) - off, "\t}\n");
	if (n < 0 || (size_t)n >= sizeof(body) - off)
		return -ENAMETOOLONG;
	return gwnl_nft_apply(nl, 1, GWNL_FAILFAST_TABLE, body);
}

