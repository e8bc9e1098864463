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
#include <sys/socket.h>

#include <arpa/inet.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "grgw.h"
#include "netlink/netlink.h"
#include "netlink/internal.h"

/* Room for one address with its nftables words around it. */
#define FG_LINE		(INET6_ADDRSTRLEN + 96)

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
	/* Arriving for the address, and leaving from it. */
	const struct { char *buf; size_t *off; const char *field; } dir[] = {
		{ pre, &po, "daddr" }, { out, &oo, "saddr" }
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
			    *dir[d].off, "\t\t%s %s { %s } %s %s != @%s "
			    "counter drop\n", fams[f].kw, dir[d].field, set,
			    fams[f].kw, dir[d].field, fams[f].set);
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
	    body)) != 0 || !v4)
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
	return gwnl_nft_apply_family(nl, 0, "arp", GWNL_FLOAT_TABLE, body);
}

int
gwnl_floatguard_hold(const struct grgw_addr *fl, int n, uint32_t ms)
{
	char	 script[(GWNL_FLOAT_MAX * 2 + 3) * FG_LINE];
	char	 a[INET6_ADDRSTRLEN];
	size_t	 off;
	int	 i, w, v4 = 0;

	if (n <= 0 || n > GWNL_FLOAT_MAX)
		return -EINVAL;
	for (i = 0; i < n; i++)
		v4 |= fl[i].family == AF_INET;
	/* One transaction: the old deadline goes as the new one comes. */
	w = snprintf(script, sizeof(script),
	    "flush set inet %s held4\nflush set inet %s held6\n%s%s%s",
	    GWNL_FLOAT_TABLE, GWNL_FLOAT_TABLE, v4 ? "flush set arp " : "",
	    v4 ? GWNL_FLOAT_TABLE : "", v4 ? " held4\n" : "");
	if (w < 0 || (size_t)w >= sizeof(script))
		return -ENAMETOOLONG;
	off = (size_t)w;
	for (i = 0; i < n && ms > 0; i++) {
		int four = fl[i].family == AF_INET;

		addr_fmt(&fl[i], a, sizeof(a));
		w = snprintf(script + off, sizeof(script) - off,
		    "add element inet %s %s { %s timeout %ums }\n",
		    GWNL_FLOAT_TABLE, four ? "held4" : "held6", a, ms);
		if (w < 0 || (size_t)w >= sizeof(script) - off)
			return -ENAMETOOLONG;
		off += (size_t)w;
		if (!four)
			continue;
		w = snprintf(script + off, sizeof(script) - off,
		    "add element arp %s held4 { %s timeout %ums }\n",
		    GWNL_FLOAT_TABLE, a, ms);
		if (w < 0 || (size_t)w >= sizeof(script) - off)
			return -ENAMETOOLONG;
		off += (size_t)w;
	}
	return gwnl_nft_run(script, GWNL_FLOAT_TABLE);
}
