/*
 * WAN link watching: rtnetlink link events (RTNLGRP_LINK) read on the
 * event loop.  Losing carrier or administrative state on the WAN
 * interface is reported at once, long before any probe could miss.
 * Read only: nothing here changes the kernel.
 */
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <errno.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "netlink/libnl.h"

#include "grgw.h"
#include "netlink/netlink.h"

struct wanwatch {
	struct nl_sock	*sock;
	struct event	*ev;
	char		ifname[IF_NAMESIZE];
	int		up;
	wanwatch_cb	cb;
	void		*arg;
};

/* Up means administratively up and running (carrier, operstate up). */
static int
flags_up(unsigned flags)
{
	return (flags & IFF_UP) && (flags & IFF_RUNNING);
}

static int
wanwatch_query(const char *ifname)
{
	struct ifreq ifr;
	int fd, up = 0;

	if ((fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return 0;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) == 0)
		up = flags_up((unsigned)ifr.ifr_flags);
	close(fd);
	return up;
}

static void
wanwatch_set(struct wanwatch *w, int up)
{
	if (up == w->up)
		return;
	w->up = up;
	log_info("WAN interface %s: %s", w->ifname, up ? "up" :
	    "down (no carrier or administratively down)");
	if (w->cb != NULL)
		w->cb(up, w->arg);
}

static int
wanwatch_msg(struct nl_msg *msg, void *arg)
{
	struct wanwatch *w = arg;
	struct nlmsghdr *hdr = nlmsg_hdr(msg);
	struct nlattr *tb[IFLA_MAX + 1];
	struct ifinfomsg *ifi;
	char name[IF_NAMESIZE];

	if (hdr->nlmsg_type != RTM_NEWLINK && hdr->nlmsg_type != RTM_DELLINK)
		return NL_OK;
	/* nlmsg_parse checks every length against the message. */
	if (nlmsg_parse(hdr, sizeof(*ifi), tb, IFLA_MAX, NULL) < 0)
		return NL_SKIP;
	if (tb[IFLA_IFNAME] == NULL)
		return NL_OK;
	nla_strlcpy(name, tb[IFLA_IFNAME], sizeof(name));
	if (strcmp(name, w->ifname) != 0)
		return NL_OK;
	ifi = nlmsg_data(hdr);
	wanwatch_set(w, hdr->nlmsg_type == RTM_NEWLINK &&
	    flags_up(ifi->ifi_flags));
	return NL_OK;
}

static void
wanwatch_read(evutil_socket_t fd, short ev, void *arg)
{
	struct wanwatch *w = arg;
	int rc;

	rc = nl_recvmsgs_default(w->sock);
	if (rc < 0 && rc != -NLE_AGAIN) {
		/* Overrun: events were lost; ask the kernel directly. */
		log_debug("WAN watch: %s; re-reading %s", nl_geterror(rc),
		    w->ifname);
		wanwatch_set(w, wanwatch_query(w->ifname));
	}
}

struct wanwatch *
wanwatch_new(struct event_base *base, const char *ifname, wanwatch_cb cb,
    void *arg)
{
	struct wanwatch *w;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return NULL;
	snprintf(w->ifname, sizeof(w->ifname), "%s", ifname);
	w->cb = cb;
	w->arg = arg;
	if ((w->sock = nl_socket_alloc()) == NULL)
		goto fail;
	nl_socket_disable_seq_check(w->sock);
	nl_socket_modify_cb(w->sock, NL_CB_VALID, NL_CB_CUSTOM, wanwatch_msg,
	    w);
	if (nl_connect(w->sock, NETLINK_ROUTE) < 0 ||
	    nl_socket_add_membership(w->sock, RTNLGRP_LINK) < 0 ||
	    nl_socket_set_nonblocking(w->sock) < 0)
		goto fail;
	w->ev = event_new(base, nl_socket_get_fd(w->sock),
	    EV_READ | EV_PERSIST, wanwatch_read, w);
	if (w->ev == NULL || event_add(w->ev, NULL) == -1)
		goto fail;
	/* Subscribed first, then read: no change can fall in between. */
	w->up = wanwatch_query(w->ifname);
	return w;
fail:
	log_warnx("cannot watch WAN interface %s through netlink", ifname);
	wanwatch_free(w);
	return NULL;
}

int
wanwatch_up(const struct wanwatch *w)
{
	return w != NULL && w->up;
}

void
wanwatch_free(struct wanwatch *w)
{
	if (w == NULL)
		return;
	if (w->ev != NULL)
		event_free(w->ev);
	if (w->sock != NULL)
		nl_socket_free(w->sock);
	free(w);
}
