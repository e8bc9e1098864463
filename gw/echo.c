/*
 * ICMP echo from the gateway's LAN address to the peer gateway's LAN
 * address: the answer can only come back through the tunnel, so it is the
 * proof that `grgw up` waits for before it reports success.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "grgw.h"
#include "echo.h"

/*
 * The first echo often goes out while the CHILD_SA is still being
 * installed at the far end and is lost: resend quickly at first, so that
 * `grgw up` returns within a few ms of the tunnel carrying traffic, then
 * settle to a slow pace.
 */
#define ECHO_FAST_MS		20
#define ECHO_FAST_COUNT		25	/* half a second of them */
#define ECHO_INTERVAL_MS	200

struct echo_probe {
	struct event	*rd;
	struct event	*timer;
	int		fd;
	int		family;
	struct grgw_addr dst;
	uint16_t	ident;
	uint16_t	seq;
	echo_cb		cb;
	void		*arg;
};

static uint16_t
inet_cksum(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint32_t sum = 0;

	while (len > 1) {
		sum += (uint32_t)(p[0] << 8 | p[1]);
		p += 2;
		len -= 2;
	}
	if (len == 1)
		sum += (uint32_t)(p[0] << 8);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons((uint16_t)~sum);
}

static void
sockaddr_from(const struct grgw_addr *a, struct sockaddr_storage *ss,
    socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	if (a->family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, a->addr, 4);
		*len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, a->addr, 16);
		*len = sizeof(*sin6);
	}
}

static void
echo_send(evutil_socket_t fd, short ev, void *arg)
{
	struct echo_probe *e = arg;
	struct timeval tv = { 0, 0 };
	struct sockaddr_storage ss;
	uint8_t pkt[64];
	socklen_t slen;
	uint16_t v;

	memset(pkt, 0, sizeof(pkt));
	pkt[0] = e->family == AF_INET ? ICMP_ECHO : ICMP6_ECHO_REQUEST;
	v = htons(e->ident);
	memcpy(pkt + 4, &v, 2);
	v = htons(++e->seq);
	memcpy(pkt + 6, &v, 2);
	memcpy(pkt + 8, "grgw-ready", 10);
	if (e->family == AF_INET) {
		v = inet_cksum(pkt, sizeof(pkt));
		memcpy(pkt + 2, &v, 2);
	}
	/* ICMPv6 checksums are filled in by the kernel on raw sockets. */
	sockaddr_from(&e->dst, &ss, &slen);
	if (sendto(e->fd, pkt, sizeof(pkt), 0, (struct sockaddr *)&ss,
	    slen) == -1)
		log_debug("readiness echo: sendto: %s", strerror(errno));
	tv.tv_usec = (e->seq < ECHO_FAST_COUNT ? ECHO_FAST_MS :
	    ECHO_INTERVAL_MS) * 1000;
	evtimer_add(e->timer, &tv);
}

static void
echo_read(evutil_socket_t fd, short ev, void *arg)
{
	struct echo_probe *e = arg;
	struct sockaddr_storage from;
	socklen_t flen = sizeof(from);
	uint8_t buf[1500];
	const uint8_t *icmp;
	ssize_t n;
	size_t off = 0;
	uint16_t ident;

	n = recvfrom(e->fd, buf, sizeof(buf), 0, (struct sockaddr *)&from,
	    &flen);
	if (n <= 0)
		return;
	if (e->family == AF_INET) {
		/* Raw IPv4 sockets deliver the IP header: skip it. */
		if ((size_t)n < sizeof(struct ip))
			return;
		off = (size_t)(buf[0] & 0x0f) * 4;
		if (off < sizeof(struct ip))
			return;
		if (memcmp(&((struct sockaddr_in *)&from)->sin_addr,
		    e->dst.addr, 4) != 0)
			return;
	} else if (memcmp(&((struct sockaddr_in6 *)&from)->sin6_addr,
	    e->dst.addr, 16) != 0) {
		return;
	}
	if ((size_t)n < off + 8)
		return;
	icmp = buf + off;
	if (icmp[0] != (e->family == AF_INET ? ICMP_ECHOREPLY :
	    ICMP6_ECHO_REPLY))
		return;
	memcpy(&ident, icmp + 4, 2);
	if (ntohs(ident) != e->ident)
		return;
	event_del(e->rd);
	evtimer_del(e->timer);
	e->cb(e->arg);		/* may free e */
}

struct echo_probe *
echo_start(struct event_base *base, const struct grgw_addr *src,
    const struct grgw_addr *dst, echo_cb cb, void *arg)
{
	struct sockaddr_storage ss;
	struct echo_probe *e;
	socklen_t slen;

	if ((e = calloc(1, sizeof(*e))) == NULL)
		return NULL;
	e->family = dst->family;
	e->dst = *dst;
	e->cb = cb;
	e->arg = arg;
	e->ident = (uint16_t)(getpid() ^ (uintptr_t)e);
	if (e->family == AF_INET)
		e->fd = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, IPPROTO_ICMP);
	else
		e->fd = socket(AF_INET6, SOCK_RAW | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, IPPROTO_ICMPV6);
	if (e->fd == -1) {
		log_warn("readiness echo: socket");
		free(e);
		return NULL;
	}
	if (e->family == AF_INET6) {
		struct icmp6_filter filt;

		ICMP6_FILTER_SETBLOCKALL(&filt);
		ICMP6_FILTER_SETPASS(ICMP6_ECHO_REPLY, &filt);
		setsockopt(e->fd, IPPROTO_ICMPV6, ICMP6_FILTER, &filt,
		    sizeof(filt));
	}
	/* From our LAN address, so the packet matches the tunnel's
	 * traffic selectors and the reply comes back through it. */
	sockaddr_from(src, &ss, &slen);
	if (bind(e->fd, (struct sockaddr *)&ss, slen) == -1)
		log_warn("readiness echo: bind to the LAN address");
	e->rd = event_new(base, e->fd, EV_READ | EV_PERSIST, echo_read, e);
	e->timer = evtimer_new(base, echo_send, e);
	if (e->rd == NULL || e->timer == NULL) {
		echo_stop(e);
		return NULL;
	}
	event_add(e->rd, NULL);
	echo_send(-1, 0, e);
	return e;
}

void
echo_stop(struct echo_probe *e)
{
	if (e == NULL)
		return;
	if (e->rd != NULL)
		event_free(e->rd);
	if (e->timer != NULL)
		event_free(e->timer);
	close(e->fd);
	free(e);
}
