/*
 * Watching the kernel for changes that may touch the fail-closed layer:
 * rtnetlink rule and route events and nftables events, read on the
 * event loop.  Any of them (or a lost one: the socket overran) calls
 * back; the caller then checks what is installed.  Read only.
 *
 * Set elements alone are no such change: the only named sets grgw has
 * are the pair's hold sets (floatguard.c), which it rewrites many times
 * a second, and a table's check leaves their elements out.
 */
#include <sys/socket.h>

#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "grgw.h"
#include "netlink/netlink.h"

struct kwatch {
	int		 fd[2];		/* rtnetlink, nfnetlink */
	struct event	*ev[2];
	kwatch_cb	 cb;
	void		*arg;
};

static int
watch_socket(int proto, const unsigned *groups, size_t n)
{
	struct sockaddr_nl	 sa = { .nl_family = AF_NETLINK };
	int			 fd, rcvbuf = 1 << 20;
	size_t			 i;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    proto);
	if (fd == -1)
		return -1;
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1)
		goto fail;
	for (i = 0; i < n; i++)
		if (setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP,
		    &groups[i], sizeof(groups[i])) == -1)
			goto fail;
	return fd;
fail:
	close(fd);
	return -1;
}

/*
 * 1 unless every message of an nftables datagram of n bytes is about set
 * elements or the generation that commits them; one that does not parse
 * counts as a change.
 */
static int
nft_changes(const char *buf, size_t n)
{
	const struct nlmsghdr	*h;
	unsigned		 t;

	if (n < NLMSG_HDRLEN)
		return 1;
	for (h = (const struct nlmsghdr *)(const void *)buf; NLMSG_OK(h, n);
	    h = NLMSG_NEXT(h, n)) {
		if (NFNL_SUBSYS_ID(h->nlmsg_type) != NFNL_SUBSYS_NFTABLES)
			return 1;
		t = NFNL_MSG_TYPE(h->nlmsg_type);
		if (t != NFT_MSG_NEWSETELEM && t != NFT_MSG_DELSETELEM &&
		    t != NFT_MSG_NEWGEN)
			return 1;
	}
	return n != 0;
}

static void
kwatch_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct kwatch	*w = arg;
	char		 buf[8192] __attribute__((aligned(NLMSG_ALIGNTO)));
	ssize_t		 n;
	int		 seen = 0, kind;

	kind = fd == w->fd[1] ? KWATCH_NFT : KWATCH_ROUTING;
	/* Anything but the elements of a set may be a change. */
	for (;;) {
		n = recv(fd, buf, sizeof(buf), MSG_TRUNC);
		if (n > (ssize_t)sizeof(buf) || (n == -1 && errno == ENOBUFS)) {
			/* lost: anything may have changed */
			seen |= KWATCH_ROUTING | KWATCH_NFT;
			continue;
		}
		if (n > 0 && (kind == KWATCH_ROUTING ||
		    nft_changes(buf, (size_t)n))) {
			seen |= kind;
			continue;
		}
		if (n > 0)
			continue;
		if (n == -1 && errno == EINTR)
			continue;
		break;
	}
	if (seen)
		w->cb(w->arg, seen);
}

struct kwatch *
kwatch_new(struct event_base *base, kwatch_cb cb, void *arg)
{
	static const unsigned rt_groups[] = {
		RTNLGRP_IPV4_RULE, RTNLGRP_IPV6_RULE,
		RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_ROUTE
	};
	static const unsigned nf_groups[] = { NFNLGRP_NFTABLES };
	struct kwatch	*w;
	int		 i;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return NULL;
	w->cb = cb;
	w->arg = arg;
	w->fd[0] = watch_socket(NETLINK_ROUTE, rt_groups, nitems(rt_groups));
	w->fd[1] = watch_socket(NETLINK_NETFILTER, nf_groups,
	    nitems(nf_groups));
	for (i = 0; i < 2; i++) {
		if (w->fd[i] == -1) {
			log_warn("kernel watch: netlink socket");
			goto fail;
		}
		w->ev[i] = event_new(base, w->fd[i], EV_READ | EV_PERSIST,
		    kwatch_read_cb, w);
		if (w->ev[i] == NULL || event_add(w->ev[i], NULL) == -1)
			goto fail;
	}
	return w;
fail:
	kwatch_free(w);
	return NULL;
}

void
kwatch_free(struct kwatch *w)
{
	int	 i;

	if (w == NULL)
		return;
	for (i = 0; i < 2; i++) {
		if (w->ev[i] != NULL)
			event_free(w->ev[i]);
		if (w->fd[i] > 0)
			close(w->fd[i]);
	}
	free(w);
}
