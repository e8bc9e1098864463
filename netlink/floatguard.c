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
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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
 * One transaction per new deadline while active: through libnftables
 * each took 5 to 50 ms on a busy 2-core host (it reads the whole ruleset
 * first), and the parent does nothing else meanwhile.  These are a few
 * set-element messages in one nfnetlink batch instead.
 */
#define FG_BATCH	2048

struct fg_batch {
	uint8_t		 buf[FG_BATCH] __attribute__((aligned(NLMSG_ALIGNTO)));
	size_t		 len;
	uint32_t	 seq;
	int		 acks;		/* messages that ask for one */
	int		 full;
};

static void *
fg_put(struct fg_batch *b, size_t len)
{
	void	*p;

	if (b->full || FG_BATCH - b->len < NLMSG_ALIGN(len)) {
		b->full = 1;
		return NULL;
	}
	p = b->buf + b->len;
	memset(p, 0, NLMSG_ALIGN(len));
	b->len += NLMSG_ALIGN(len);
	return p;
}

static struct nlmsghdr *
fg_msg(struct fg_batch *b, uint16_t type, uint16_t flags, uint8_t family)
{
	struct nlmsghdr	*h;
	struct nfgenmsg	*g;

	if ((h = fg_put(b, NLMSG_HDRLEN)) == NULL ||
	    (g = fg_put(b, sizeof(*g))) == NULL)
		return NULL;
	h->nlmsg_len = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(*g));
	h->nlmsg_type = type;
	h->nlmsg_flags = NLM_F_REQUEST | flags;
	h->nlmsg_seq = b->seq++;
	g->nfgen_family = family;
	g->version = NFNETLINK_V0;
	g->res_id = htons(NFNL_SUBSYS_NFTABLES);
	if (flags & NLM_F_ACK)
		b->acks++;
	return h;
}

/* An attribute of h (the last message); NULL when the batch is full. */
static struct nlattr *
fg_attr(struct fg_batch *b, struct nlmsghdr *h, uint16_t type,
    const void *data, size_t len)
{
	struct nlattr	*a;

	if (h == NULL || (a = fg_put(b, NLA_HDRLEN + len)) == NULL)
		return NULL;
	a->nla_type = type;
	a->nla_len = (uint16_t)(NLA_HDRLEN + len);
	if (len > 0)
		memcpy((uint8_t *)a + NLA_HDRLEN, data, len);
	h->nlmsg_len += NLA_ALIGN(NLA_HDRLEN + len);
	return a;
}

/* A nest's length, once everything in it is in. */
static void
fg_nest_end(struct fg_batch *b, struct nlattr *nest)
{
	if (nest != NULL && !b->full)
		nest->nla_len = (uint16_t)(b->buf + b->len - (uint8_t *)nest);
}

/* table and set named in h, as every set-element message has them */
static void
fg_names(struct fg_batch *b, struct nlmsghdr *h, const char *set)
{
	fg_attr(b, h, NFTA_SET_ELEM_LIST_TABLE, GWNL_FLOAT_TABLE,
	    sizeof(GWNL_FLOAT_TABLE));
	fg_attr(b, h, NFTA_SET_ELEM_LIST_SET, set, strlen(set) + 1);
}

/* Send the batch; 0 once the kernel acknowledged every message. */
static int
fg_send(struct fg_batch *b)
{
	struct sockaddr_nl	 sa = { .nl_family = AF_NETLINK };
	struct timeval		 tv = { 1, 0 };
	uint8_t			 rbuf[4096]
	    __attribute__((aligned(NLMSG_ALIGNTO)));
	struct nlmsghdr		*h;
	struct nlmsgerr		*e;
	ssize_t			 n;
	size_t			 left;
	int			 fd, rc = 0, acks = 0;

	if ((fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC,
	    NETLINK_NETFILTER)) == -1)
		return -errno;
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (sendto(fd, b->buf, b->len, 0, (struct sockaddr *)&sa,
	    sizeof(sa)) != (ssize_t)b->len) {
		rc = -errno;
		goto out;
	}
	while (acks < b->acks && rc == 0) {
		if ((n = recv(fd, rbuf, sizeof(rbuf), 0)) <= 0) {
			rc = n == 0 ? -EIO : -errno;
			break;
		}
		left = (size_t)n;
		for (h = (struct nlmsghdr *)(void *)rbuf; NLMSG_OK(h, left);
		    h = NLMSG_NEXT(h, left)) {
			if (h->nlmsg_type != NLMSG_ERROR)
				continue;
			if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*e))) {
				rc = -EIO;
				break;
			}
			e = NLMSG_DATA(h);
			if (e->error != 0) {
				rc = e->error < 0 ? e->error : -EIO;
				break;
			}
			acks++;
		}
	}
out:
	close(fd);
	return rc;
}

int
gwnl_floatguard_hold(const struct grgw_addr *fl, int n, uint32_t ms)
{
	static const struct { uint8_t nfproto; int family; const char *set; }
	    sets[] = {
		{ NFPROTO_INET, AF_INET, "held4" },
		{ NFPROTO_INET, AF_INET6, "held6" },
		{ NFPROTO_ARP, AF_INET, "held4" },
	};
	struct fg_batch	*b;
	struct nlmsghdr	*h;
	struct nlattr	*list, *elem, *key;
	uint64_t	 timeout = htobe64(ms);
	size_t		 k;
	int		 i, v4 = 0, rc;

	if (n <= 0 || n > GWNL_FLOAT_MAX)
		return -EINVAL;
	for (i = 0; i < n; i++)
		v4 |= fl[i].family == AF_INET;
	if ((b = calloc(1, sizeof(*b))) == NULL)
		return -ENOMEM;
	b->seq = (uint32_t)time(NULL);
	fg_msg(b, NFNL_MSG_BATCH_BEGIN, 0, AF_UNSPEC);
	/* The old deadline goes as the new one comes, in one transaction. */
	for (k = 0; k < nitems(sets); k++) {
		if (sets[k].nfproto == NFPROTO_ARP && !v4)
			continue;
		h = fg_msg(b, NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_DELSETELEM,
		    NLM_F_ACK, sets[k].nfproto);
		fg_names(b, h, sets[k].set);	/* no elements: all of them */
		if (ms == 0)
			continue;
		h = NULL;
		list = NULL;
		for (i = 0; i < n; i++) {
			if (fl[i].family != sets[k].family)
				continue;
			if (h == NULL) {
				h = fg_msg(b, NFNL_SUBSYS_NFTABLES << 8 |
				    NFT_MSG_NEWSETELEM, NLM_F_CREATE | NLM_F_ACK,
				    sets[k].nfproto);
				fg_names(b, h, sets[k].set);
				list = fg_attr(b, h, NLA_F_NESTED |
				    NFTA_SET_ELEM_LIST_ELEMENTS, NULL, 0);
			}
			elem = fg_attr(b, h, NLA_F_NESTED | NFTA_LIST_ELEM,
			    NULL, 0);
			key = fg_attr(b, h, NLA_F_NESTED | NFTA_SET_ELEM_KEY,
			    NULL, 0);
			fg_attr(b, h, NFTA_DATA_VALUE, fl[i].addr,
			    (size_t)addr_len(fl[i].family));
			fg_nest_end(b, key);
			fg_attr(b, h, NFTA_SET_ELEM_TIMEOUT, &timeout,
			    sizeof(timeout));
			fg_nest_end(b, elem);
		}
		fg_nest_end(b, list);
	}
	fg_msg(b, NFNL_MSG_BATCH_END, 0, AF_UNSPEC);
	rc = b->full ? -ENOBUFS : fg_send(b);
	free(b);
	return rc;
}
