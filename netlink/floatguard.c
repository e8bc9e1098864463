/*
 * The pair's hold, kept by the kernel (see netlink.h).
 *
 * The parent process takes the floating addresses off this host when the
 * role engine's hold runs out.  A parent that cannot run then (a host
 * starved of CPU, a stopped process, a kernel busy elsewhere) would keep
 * them past the moment the partner may take them.  These tables need no
 * process: a packet that leaves this host from a floating address or
 * arrives for one, and an ARP frame that speaks for a floating IPv4
 * address, is dropped unless that address is in the hold set, and the
 * set's elements expire by themselves at the hold deadline.  A gateway
 * frozen past its hold so still has the addresses configured, but
 * answers for none of them and sends or receives nothing through them.
 */
#include <arpa/inet.h>
#include <linux/netfilter.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "grgw.h"
#include "netlink/netlink.h"
#include "netlink/internal.h"

/* "a, b" of fl's addresses of family into buf; how many. */
static int
fg_list(const struct grgw_addr *fl, int n, int family, char *buf,
    size_t size)
{
	char	 a[INET6_ADDRSTRLEN];
	size_t	 off = 0;
	int	 i, k = 0, w;

	buf[0] = '\0';
	for (i = 0; i < n; i++) {
		if (fl[i].family != family)
			continue;
		w = snprintf(buf + off, size - off, "%s%s", k ? ", " : "",
		    addr_fmt(&fl[i], a, sizeof(a)));
		if (w < 0 || (size_t)w >= size - off)
			return -ENAMETOOLONG;
		off += (size_t)w;
		k++;
	}
	return k;
}

int
gwnl_floatguard_install(struct gwnl *nl, const struct grgw_addr *fl, int n)
{
	static const struct { int family; const char *kw, *set; } fams[] = {
		{ AF_INET, "ip", "held4" }, { AF_INET6, "ip6", "held6" }
	};
	char	 body[4096], pre[1024], out[sizeof(pre)];
	char	 set[GWNL_FLOAT_MAX * (INET6_ADDRSTRLEN + 2)];
	size_t	 f, d, po = 0, oo = 0;
	/*
	 * Arriving for the address while it is on this host, and leaving
	 * from it.  One arriving for it while it is not (the partner holds
	 * it) is routed on to the partner: the other site's probes of the
	 * floating LAN address come through a standby's SAs made ready for
	 * a handover, before it holds the address.
	 */
	const struct { char *buf; size_t *off; const char *field, *only; }
	    dir[] = {
		{ pre, &po, "daddr", " fib daddr type local" },
		{ out, &oo, "saddr", "" }
	};
	int	 k, w, v4 = 0, rc;

	if (n <= 0 || n > GWNL_FLOAT_MAX)
		return -EINVAL;
	pre[0] = out[0] = '\0';
	for (f = 0; f < nitems(fams); f++) {
		if ((k = fg_list(fl, n, fams[f].family, set, sizeof(set))) < 0)
			return k;
		if (k == 0)
			continue;
		if (fams[f].family == AF_INET)
			v4 = 1;
		for (d = 0; d < nitems(dir); d++) {
			w = snprintf(dir[d].buf + *dir[d].off, sizeof(pre) -
			    *dir[d].off, "\t\t%s %s { %s } %s %s != @%s%s "
			    "counter drop\n", fams[f].kw, dir[d].field, set,
			    fams[f].kw, dir[d].field, fams[f].set,
			    dir[d].only);
			if (w < 0 || (size_t)w >= sizeof(pre) - *dir[d].off)
				return -ENAMETOOLONG;
			*dir[d].off += (size_t)w;
		}
	}
	/*
	 * Before anything else sees the packet (raw is -300): a frozen
	 * holder's IKE, ESP and neighbour answers go, whatever other
	 * tables would do with them.
	 */
	w = snprintf(body, sizeof(body),
	    "\tset held4 { type ipv4_addr; flags timeout; }\n"
	    "\tset held6 { type ipv6_addr; flags timeout; }\n"
	    "\tchain prerouting {\n"
	    "\t\ttype filter hook prerouting priority -400; policy accept;\n"
	    "%s\t}\n"
	    "\tchain output {\n"
	    "\t\ttype filter hook output priority -400; policy accept;\n"
	    "%s\t}\n", pre, out);
	if (w < 0 || (size_t)w >= sizeof(body))
		return -ENAMETOOLONG;
	if ((rc = gwnl_nft_apply_family(nl, 0, "inet", GWNL_FLOAT_TABLE,
	    body, GWNL_WATCH_NFT)) != 0 || !v4)
		return rc;
	/* ARP is no IP packet: its answers for the address, on their own. */
	if ((k = fg_list(fl, n, AF_INET, set, sizeof(set))) < 0)
		return k;
	w = snprintf(body, sizeof(body),
	    "\tset held4 { type ipv4_addr; flags timeout; }\n"
	    "\tchain output {\n"
	    "\t\ttype filter hook output priority 0; policy accept;\n"
	    "\t\tarp saddr ip { %s } arp saddr ip != @held4 counter drop\n"
	    "\t}\n", set);
	if (w < 0 || (size_t)w >= sizeof(body))
		return -ENAMETOOLONG;
	return gwnl_nft_apply_family(nl, 0, "arp", GWNL_FLOAT_TABLE, body,
	    GWNL_WATCH_NFT);
}

/* ---- the hold sets, written straight to nf_tables ------------------------ */

/*
 * One transaction per new deadline while active, as set elements
 * (nfset.c): through libnftables each took 5 to 50 ms on a busy 2-core
 * host, and the parent does nothing else meanwhile.
 */
int
gwnl_floatguard_hold(const struct grgw_addr *fl, int n, uint32_t ms)
{
	static const struct { uint8_t nfproto; int family; const char *set; }
	    sets[] = {
		{ NFPROTO_INET, AF_INET, "held4" },
		{ NFPROTO_INET, AF_INET6, "held6" },
		{ NFPROTO_ARP, AF_INET, "held4" },
	};
	struct nfset_batch *b;
	size_t		 k;
	int		 i, v4 = 0;

	if (n <= 0 || n > GWNL_FLOAT_MAX)
		return -EINVAL;
	for (i = 0; i < n; i++)
		v4 |= fl[i].family == AF_INET;
	if ((b = nfset_begin()) == NULL)
		return -ENOMEM;
	/* The old deadline goes as the new one comes, in one transaction. */
	for (k = 0; k < nitems(sets); k++) {
		if (sets[k].nfproto == NFPROTO_ARP && !v4)
			continue;
		nfset_clear(b, sets[k].nfproto, GWNL_FLOAT_TABLE, sets[k].set);
		for (i = 0; ms != 0 && i < n; i++)
			if (fl[i].family == sets[k].family)
				nfset_add(b, sets[k].nfproto, GWNL_FLOAT_TABLE,
				    sets[k].set, fl[i].addr,
				    (size_t)addr_len(fl[i].family), ms);
	}
	return nfset_commit(b);
}

/* ---- the drain of a handover ------------------------------------------- */

/*
 * Both families the same way, by Ethernet address: the partner's MAC as
 * the destination, this interface's as the source (a switch must not
 * learn the node's address on this port), back out of the interface it
 * came in on.  "fwd ip to" would resolve the partner itself, but for
 * its own address's family only.  The two maps, keyed by the interface,
 * are filled and emptied in one transaction: a packet finds both or
 * neither, and one that finds neither passes untouched.
 */
#define DRAIN_TO	"partner_mac"
#define DRAIN_FROM	"own_mac"

int
gwnl_drain_install(struct gwnl *nl, const struct grgw_config *cfg,
    const char *ifname)
{
	char	 body[8192], p[INET6_ADDRSTRLEN + 8];
	size_t	 off;
	int	 i, n, any = 0;

	if (!ifname_valid(ifname))
		return -EINVAL;
	n = snprintf(body, sizeof(body),
	    "\tmap %s { type ifname : ether_addr; }\n"
	    "\tmap %s { type ifname : ether_addr; }\n"
	    "\tchain ingress {\n"
	    "\t\ttype filter hook ingress device \"%s\" priority -150; "
	    "policy accept;\n", DRAIN_TO, DRAIN_FROM, ifname);
	if (n < 0 || (size_t)n >= sizeof(body))
		return -ENAMETOOLONG;
	off = (size_t)n;
	for (i = 0; i < cfg->peer.n_prefixes && i < GRGW_MAX_PREFIXES; i++) {
		const struct grgw_prefix *pf = &cfg->peer.prefixes[i];

		n = snprintf(body + off, sizeof(body) - off,
		    "\t\t%s daddr %s ether daddr set iifname map @%s "
		    "ether saddr set iifname map @%s counter fwd to \"%s\"\n",
		    pf->a.family == AF_INET ? "ip" : "ip6",
		    prefix_fmt(pf, p, sizeof(p)), DRAIN_TO, DRAIN_FROM, ifname);
		if (n < 0 || (size_t)n >= sizeof(body) - off)
			return -ENAMETOOLONG;
		off += (size_t)n;
		any = 1;
	}
	if (!any)
		return -ENOENT;
	n = snprintf(body + off, sizeof(body) - off, "\t}\n");
	if (n < 0 || (size_t)n >= sizeof(body) - off)
		return -ENAMETOOLONG;
	return gwnl_nft_apply_family(nl, 0, "netdev", GWNL_DRAIN_TABLE, body,
	    GWNL_WATCH_NFT);
}

int
gwnl_drain_set(const char *ifname, const struct grgw_addr *partner,
    char *err, size_t errlen)
{
	struct nfset_batch *b;
	char		 key[IF_NAMESIZE];
	uint8_t		 own[6], to[6];
	int		 rc;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (!ifname_valid(ifname))
		return -EINVAL;
	if (partner != NULL && (rc = float_drain_macs(ifname, partner, own,
	    to, err, errlen)) != 0)
		return rc;
	if ((b = nfset_begin()) == NULL)
		return -ENOMEM;
	nfset_clear(b, NFPROTO_NETDEV, GWNL_DRAIN_TABLE, DRAIN_TO);
	nfset_clear(b, NFPROTO_NETDEV, GWNL_DRAIN_TABLE, DRAIN_FROM);
	if (partner != NULL) {
		/* nftables' ifname: IFNAMSIZ bytes, zero padded. */
		memset(key, 0, sizeof(key));
		memcpy(key, ifname, strnlen(ifname, sizeof(key) - 1));
		nfset_map_add(b, NFPROTO_NETDEV, GWNL_DRAIN_TABLE, DRAIN_TO,
		    key, sizeof(key), to, sizeof(to));
		nfset_map_add(b, NFPROTO_NETDEV, GWNL_DRAIN_TABLE, DRAIN_FROM,
		    key, sizeof(key), own, sizeof(own));
	}
	if ((rc = nfset_commit(b)) != 0)
		err_set(err, errlen, "%s: nftables table netdev %s: %s",
		    ifname, GWNL_DRAIN_TABLE, strerror(-rc));
	return rc;
}
