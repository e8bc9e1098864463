/*
 * Set elements written straight to nf_tables: one nfnetlink batch, one
 * transaction, no libnftables.  libnftables reads the whole ruleset
 * before each command, which on a busy host costs tens to hundreds of
 * ms; the parent does nothing else meanwhile.  What has to change
 * often or at once (the pair's hold, the refusing of traffic to the
 * peer) is therefore a set's elements under rules that stay.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "netlink/internal.h"

#define NFSET_BATCH	2048

struct nfset_batch {
	uint8_t		 buf[NFSET_BATCH]
	    __attribute__((aligned(NLMSG_ALIGNTO)));
	size_t		 len;
	uint32_t	 seq;
	int		 acks;		/* messages that ask for one */
	int		 full;
};

static void *
put(struct nfset_batch *b, size_t len)
{
	void	*p;

	if (b->full || NFSET_BATCH - b->len < NLMSG_ALIGN(len)) {
		b->full = 1;
		return NULL;
	}
	p = b->buf + b->len;
	memset(p, 0, NLMSG_ALIGN(len));
	b->len += NLMSG_ALIGN(len);
	return p;
}

static struct nlmsghdr *
msg(struct nfset_batch *b, uint16_t type, uint16_t flags, uint8_t family)
{
	struct nlmsghdr	*h;
	struct nfgenmsg	*g;

	if ((h = put(b, NLMSG_HDRLEN)) == NULL ||
	    (g = put(b, sizeof(*g))) == NULL)
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
attr(struct nfset_batch *b, struct nlmsghdr *h, uint16_t type,
    const void *data, size_t len)
{
	struct nlattr	*a;

	if (h == NULL || len > UINT16_MAX - NLA_HDRLEN ||
	    (a = put(b, NLA_HDRLEN + len)) == NULL)
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
nest_end(struct nfset_batch *b, struct nlattr *nest)
{
	if (nest != NULL && !b->full)
		nest->nla_len = (uint16_t)(b->buf + b->len - (uint8_t *)nest);
}

/* A set-element message for table's set, with its names. */
static struct nlmsghdr *
elem_msg(struct nfset_batch *b, uint16_t type, uint16_t flags,
    uint8_t nfproto, const char *table, const char *set)
{
	struct nlmsghdr	*h;

	h = msg(b, NFNL_SUBSYS_NFTABLES << 8 | type, flags | NLM_F_ACK,
	    nfproto);
	attr(b, h, NFTA_SET_ELEM_LIST_TABLE, table, strlen(table) + 1);
	attr(b, h, NFTA_SET_ELEM_LIST_SET, set, strlen(set) + 1);
	return h;
}

struct nfset_batch *
nfset_begin(void)
{
	struct nfset_batch	*b;

	if ((b = calloc(1, sizeof(*b))) == NULL)
		return NULL;
	b->seq = (uint32_t)time(NULL);
	msg(b, NFNL_MSG_BATCH_BEGIN, 0, AF_UNSPEC);
	return b;
}

void
nfset_clear(struct nfset_batch *b, uint8_t nfproto, const char *table,
    const char *set)
{
	/* A delete naming no element deletes all of them. */
	(void)elem_msg(b, NFT_MSG_DELSETELEM, 0, nfproto, table, set);
}

/* One element: key, and data for a map's (datalen 0: a set's). */
static void
elem_add(struct nfset_batch *b, uint8_t nfproto, const char *table,
    const char *set, const void *key, size_t keylen, const void *data,
    size_t datalen, uint32_t timeout_ms)
{
	struct nlmsghdr	*h;
	struct nlattr	*list, *elem, *k, *d;
	uint64_t	 timeout = htobe64(timeout_ms);

	h = elem_msg(b, NFT_MSG_NEWSETELEM, NLM_F_CREATE, nfproto, table,
	    set);
	list = attr(b, h, NLA_F_NESTED | NFTA_SET_ELEM_LIST_ELEMENTS, NULL, 0);
	elem = attr(b, h, NLA_F_NESTED | NFTA_LIST_ELEM, NULL, 0);
	k = attr(b, h, NLA_F_NESTED | NFTA_SET_ELEM_KEY, NULL, 0);
	attr(b, h, NFTA_DATA_VALUE, key, keylen);
	nest_end(b, k);
	if (datalen > 0) {
		d = attr(b, h, NLA_F_NESTED | NFTA_SET_ELEM_DATA, NULL, 0);
		attr(b, h, NFTA_DATA_VALUE, data, datalen);
		nest_end(b, d);
	}
	if (timeout_ms != 0)
		attr(b, h, NFTA_SET_ELEM_TIMEOUT, &timeout, sizeof(timeout));
	nest_end(b, elem);
	nest_end(b, list);
}

void
nfset_add(struct nfset_batch *b, uint8_t nfproto, const char *table,
    const char *set, const void *key, size_t keylen, uint32_t timeout_ms)
{
	elem_add(b, nfproto, table, set, key, keylen, NULL, 0, timeout_ms);
}

void
nfset_map_add(struct nfset_batch *b, uint8_t nfproto, const char *table,
    const char *map, const void *key, size_t keylen, const void *data,
    size_t datalen)
{
	/* Without data, the kernel refuses the element of a map. */
	elem_add(b, nfproto, table, map, key, keylen, data, datalen, 0);
}

/* Send the batch; 0 once the kernel acknowledged every message. */
static int
send_batch(struct nfset_batch *b)
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
nfset_commit(struct nfset_batch *b)
{
	int	 rc;

	if (b == NULL)
		return -ENOMEM;
	msg(b, NFNL_MSG_BATCH_END, 0, AF_UNSPEC);
	rc = b->full ? -ENOBUFS : send_batch(b);
	free(b);
	return rc;
}
