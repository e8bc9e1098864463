/*
 * The channel between the parent and the network process: pmsg frames
 * over a socketpair, read and written by a bufferevent.  A frame is
 * handed to the owner only once it is whole; anything that is not a
 * frame closes the channel (the other side is broken or hostile).
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "grgw.h"
#include "chan.h"
#include "pmsg.h"

struct chan {
	struct bufferevent	*bev;
	int			 fd;
	chan_msg_cb		 on_msg;
	chan_close_cb		 on_close;
	void			*arg;
	int			 dispatching;
	int			 dead;		/* freed while dispatching */
	int			 closed;
};

static void
chan_destroy(struct chan *c)
{
	if (c->bev != NULL)
		bufferevent_free(c->bev);	/* closes fd */
	else if (c->fd >= 0)
		close(c->fd);
	free(c);
}

static void
chan_lost(struct chan *c, const char *why)
{
	if (c->closed)
		return;
	c->closed = 1;
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	c->on_close(why, c->arg);
}

static void
chan_read_cb(struct bufferevent *bev, void *arg)
{
	struct chan	*c = arg;
	struct evbuffer	*in = bufferevent_get_input(bev);
	struct pmsg	 m;
	const uint8_t	*p;
	size_t		 have, need;
	int		 n;

	c->dispatching = 1;
	while (!c->dead && !c->closed &&
	    (have = evbuffer_get_length(in)) >= PMSG_HDR_LEN) {
		if ((p = evbuffer_pullup(in, PMSG_HDR_LEN)) == NULL ||
		    pmsg_frame(p, PMSG_HDR_LEN, &m) < 0) {
			chan_lost(c, "a malformed message");
			break;
		}
		need = PMSG_HDR_LEN + m.len;
		if (have < need)
			break;
		if ((p = evbuffer_pullup(in, (ssize_t)need)) == NULL ||
		    (n = pmsg_frame(p, need, &m)) <= 0) {
			chan_lost(c, "a malformed message");
			break;
		}
		c->on_msg(&m, c->arg);
		evbuffer_drain(in, (size_t)n);
	}
	c->dispatching = 0;
	if (c->dead)
		chan_destroy(c);
}

static void
chan_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct chan	*c = arg;

	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		c->dispatching = 1;
		chan_lost(c, what & BEV_EVENT_EOF ? "end of file" :
		    "a read or write error");
		c->dispatching = 0;
		if (c->dead)
			chan_destroy(c);
	}
}

struct chan *
chan_new(struct event_base *base, int fd, chan_msg_cb on_msg,
    chan_close_cb on_close, void *arg)
{
	struct chan	*c;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		close(fd);
		return NULL;
	}
	c->fd = fd;
	c->on_msg = on_msg;
	c->on_close = on_close;
	c->arg = arg;
	evutil_make_socket_nonblocking(fd);
	c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		chan_destroy(c);
		return NULL;
	}
	/* Never hold more than one whole frame unread. */
	bufferevent_setwatermark(c->bev, EV_READ, 0,
	    PMSG_HDR_LEN + PMSG_BODY_MAX);
	bufferevent_setcb(c->bev, chan_read_cb, NULL, chan_event_cb, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	return c;
}

int
chan_send(struct chan *c, enum pmsg_type t, const void *hdr, size_t hdrlen,
    const void *body, size_t len)
{
	struct evbuffer	*out;
	uint8_t		 frame[PMSG_HDR_LEN];

	if (c == NULL || c->closed || c->dead || hdrlen > PMSG_BODY_MAX ||
	    len > PMSG_BODY_MAX - hdrlen ||
	    pmsg_header(frame, t, hdrlen + len) == -1) {
		errno = EPIPE;
		return -1;
	}
	out = bufferevent_get_output(c->bev);
	if (evbuffer_add(out, frame, sizeof(frame)) == -1 ||
	    (hdrlen > 0 && evbuffer_add(out, hdr, hdrlen) == -1) ||
	    (len > 0 && evbuffer_add(out, body, len) == -1))
		return -1;
	return 0;
}

void
chan_flush(struct chan *c, int timeout_ms)
{
	struct evbuffer	*out;
	struct pollfd	 pfd;

	if (c == NULL || c->closed)
		return;
	out = bufferevent_get_output(c->bev);
	pfd.fd = bufferevent_getfd(c->bev);
	pfd.events = POLLOUT;
	while (evbuffer_get_length(out) > 0) {
		if (poll(&pfd, 1, timeout_ms) <= 0)
			return;
		if (evbuffer_write(out, pfd.fd) <= 0 && errno != EAGAIN &&
		    errno != EINTR)
			return;
	}
}

void
chan_free(struct chan *c)
{
	if (c == NULL)
		return;
	if (c->dispatching) {
		c->dead = 1;
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
		return;
	}
	chan_destroy(c);
}

struct event_base *
chan_loop_new(void)
{
	struct event_config	*ec;
	struct event_base	*base;

	if ((ec = event_config_new()) == NULL)
		return NULL;
	event_config_set_flag(ec, EVENT_BASE_FLAG_PRECISE_TIMER);
	base = event_base_new_with_config(ec);
	event_config_free(ec);
	return base;
}

uint64_t
chan_mono_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}
