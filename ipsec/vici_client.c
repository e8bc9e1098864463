/*
 * Asynchronous VICI client on a libevent loop.
 *
 * VICI has no request ids: a reply belongs to whichever command is
 * outstanding, so requests wait in a queue and only the head is on the
 * wire.  Events can arrive at any time, including between a command and
 * its reply (charon streams "control-log" while "initiate" runs), and are
 * handed to on_event as they come.
 *
 * User callbacks may do anything, including freeing the client or
 * reconnecting it.  Every entry point from the loop therefore holds the
 * client (busy count) while it runs, vici_client_free() on a held client
 * only marks it dying, and after each callback the caller checks whether
 * the client is dying or the connection it was serving is gone (gen).
 *
 * A request may carry a deadline, counted from the moment it reaches the
 * head of the queue (charon answers one at a time, so time spent waiting
 * behind another request is not its own).  A missed deadline means charon
 * no longer answers: the connection is dropped, every pending request gets
 * its NULL reply and the owner hears of it through on_deadline.
 */
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <sodium.h>

#include "grgw.h"
#include "vici.h"

struct vici_request {
	TAILQ_ENTRY(vici_request) entry;
	uint8_t		*data;		/* copy of the packet; wiped once sent */
	size_t		 len;
	uint8_t		 type;		/* packet type, to match the reply */
	char		 name[64];	/* command or event, for messages */
	size_t		 off;		/* bytes written so far */
	unsigned	 deadline_ms;	/* 0: none */
	int		 armed;		/* at the head, its clock runs */
	struct timespec	 head_since;	/* when it reached the head */
	vici_reply_cb	 cb;
	void		*arg;
};
TAILQ_HEAD(vici_request_queue, vici_request);

struct vici_client {
	struct event_base *base;
	vici_event_cb	 on_event;
	vici_close_cb	 on_close;
	vici_deadline_cb on_deadline;
	void		*arg;

	int		 fd;		/* -1 when not connected */
	int		 connecting;	/* connect() still in progress */
	unsigned int	 gen;		/* bumped whenever fd is closed */
	struct event	*ev_read;
	struct event	*ev_write;
	struct event	*ev_deadline;	/* the head request's deadline */
	struct vici_stream *stream;

	struct vici_request_queue queue; /* head is the one on the wire */
	int		 sent;		/* head fully written, awaiting reply */

	int		 busy;		/* loop callbacks running on us */
	int		 dying;		/* freed while busy; destroy on exit */

	uint8_t		 rbuf[16384];
};

static void
request_free(struct vici_request *r)
{
	if (r == NULL)
		return;
	if (r->data != NULL) {
		sodium_memzero(r->data, r->len);
		free(r->data);
	}
	free(r);
}

static void
client_hold(struct vici_client *c)
{
	c->busy++;
}

static void
client_destroy(struct vici_client *c)
{
	/* Disconnected and drained by vici_client_free() already. */
	if (c->ev_deadline != NULL)
		event_free(c->ev_deadline);
	sodium_memzero(c->rbuf, sizeof(c->rbuf));
	free(c);
}

/* Pairs with client_hold(); c may be gone afterwards. */
static void
client_release(struct vici_client *c)
{
	if (--c->busy == 0 && c->dying)
		client_destroy(c);
}

/* Close the socket; leaves the request queue alone. */
static void
client_disconnect(struct vici_client *c)
{
	if (c->ev_read != NULL) {
		event_free(c->ev_read);
		c->ev_read = NULL;
	}
	if (c->ev_write != NULL) {
		event_free(c->ev_write);
		c->ev_write = NULL;
	}
	if (c->ev_deadline != NULL)
		evtimer_del(c->ev_deadline);
	if (c->fd != -1) {
		close(c->fd);
		c->fd = -1;
		c->gen++;
	}
	vici_stream_free(c->stream);
	c->stream = NULL;
	c->connecting = 0;
	c->sent = 0;
}

/*
 * Give every queued request its NULL reply.  The queue is detached first
 * so that requests queued from a callback (after a reconnect) are not
 * failed along with the old ones.
 */
static void
client_fail_pending(struct vici_client *c)
{
	struct vici_request_queue old;
	struct vici_request *r;
	vici_reply_cb	 cb;
	void		*arg;

	TAILQ_INIT(&old);
	TAILQ_CONCAT(&old, &c->queue, entry);
	client_hold(c);
	while ((r = TAILQ_FIRST(&old)) != NULL) {
		TAILQ_REMOVE(&old, r, entry);
		cb = r->cb;
		arg = r->arg;
		request_free(r);
		if (cb != NULL)
			cb(NULL, arg);
	}
	client_release(c);
}

/* The connection is unusable: fail what is pending, then tell the owner. */
static void
client_lost(struct vici_client *c)
{
	if (c->fd == -1)
		return;
	client_hold(c);
	client_disconnect(c);
	client_fail_pending(c);
	/* Not if the owner is gone, or already reconnected from a callback. */
	if (!c->dying && c->fd == -1 && c->on_close != NULL)
		c->on_close(c->arg);
	client_release(c);
}

/* Start the head request's clock, once, when it has a deadline. */
static void
client_arm(struct vici_client *c)
{
	struct vici_request *r = TAILQ_FIRST(&c->queue);
	struct timeval	 tv;

	if (c->fd == -1 || r == NULL || r->armed || r->deadline_ms == 0)
		return;
	r->armed = 1;
	clock_gettime(CLOCK_MONOTONIC, &r->head_since);
	tv.tv_sec = r->deadline_ms / 1000;
	tv.tv_usec = (r->deadline_ms % 1000) * 1000;
	evtimer_add(c->ev_deadline, &tv);
}

/* Put the head request on the wire when the socket can take it. */
static void
client_kick(struct vici_client *c)
{
	client_arm(c);
	if (c->fd == -1 || c->connecting || c->sent ||
	    TAILQ_EMPTY(&c->queue))
		return;
	event_add(c->ev_write, NULL);
}

static unsigned
ms_since(const struct timespec *t)
{
	struct timespec	 now;
	long long	 ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (long long)(now.tv_sec - t->tv_sec) * 1000 +
	    (now.tv_nsec - t->tv_nsec) / 1000000;
	return ms < 0 ? 0 : (unsigned)ms;
}

/* charon let the head request's deadline pass: it is taken for hung. */
static void
client_on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct vici_client *c = arg;
	struct vici_request *r = TAILQ_FIRST(&c->queue);
	char		 name[sizeof(r->name)];
	unsigned	 waited;

	if (r == NULL || !r->armed || c->fd == -1)
		return;
	/*
	 * libevent counts the timer from the time it cached for this loop
	 * pass, which can be a little before head_since: the deadline is
	 * the request's own, so what is left of it is waited out.
	 */
	waited = ms_since(&r->head_since);
	if (waited < r->deadline_ms) {
		struct timeval	 tv;
		unsigned	 left = r->deadline_ms - waited;

		tv.tv_sec = left / 1000;
		tv.tv_usec = (left % 1000) * 1000;
		evtimer_add(c->ev_deadline, &tv);
		return;
	}
	memcpy(name, r->name, sizeof(name));
	client_hold(c);
	client_disconnect(c);
	client_fail_pending(c);
	/* Not if the owner is gone, or already reconnected from a callback. */
	if (!c->dying && c->fd == -1) {
		if (c->on_deadline != NULL)
			c->on_deadline(name, waited, c->arg);
		else if (c->on_close != NULL)
			c->on_close(c->arg);
	}
	client_release(c);
}

/* Whether reply is an answer to a request of type req. */
static int
client_reply_matches(uint8_t req, uint8_t reply)
{
	if (req == VICI_CMD_REQUEST)
		return reply == VICI_CMD_RESPONSE || reply == VICI_CMD_UNKNOWN;
	return reply == VICI_EVENT_CONFIRM || reply == VICI_EVENT_UNKNOWN;
}

static void
client_dispatch(struct vici_client *c, const struct vici_msg *msg)
{
	struct vici_request *r;
	vici_reply_cb	 cb;
	void		*arg;

	switch (msg->type) {
	case VICI_EVENT:
		if (c->on_event != NULL)
			c->on_event(msg, c->arg);
		break;
	case VICI_CMD_RESPONSE:
	case VICI_CMD_UNKNOWN:
	case VICI_EVENT_CONFIRM:
	case VICI_EVENT_UNKNOWN:
		r = TAILQ_FIRST(&c->queue);
		if (r == NULL || !c->sent) {
			log_warnx("vici: reply (type %u) without a request",
			    msg->type);
			client_lost(c);
			break;
		}
		/* Out of step with charon: no later reply can be trusted. */
		if (!client_reply_matches(r->type, msg->type)) {
			log_warnx("vici: reply type %u to request type %u",
			    msg->type, r->type);
			client_lost(c);
			break;
		}
		TAILQ_REMOVE(&c->queue, r, entry);
		c->sent = 0;
		if (r->armed)
			evtimer_del(c->ev_deadline);
		cb = r->cb;
		arg = r->arg;
		request_free(r);
		client_kick(c);
		if (cb != NULL)
			cb(msg, arg);
		break;
	default:
		log_warnx("vici: unexpected packet type %u from charon",
		    msg->type);
		client_lost(c);
		break;
	}
}

static void
client_on_read(evutil_socket_t fd, short what, void *arg)
{
	struct vici_client *c = arg;
	struct vici_msg	*msg;
	const uint8_t	*pkt;
	size_t		 len;
	ssize_t		 n;
	unsigned int	 gen = c->gen;
	char		 err[128];
	int		 r;

	client_hold(c);
	n = read(fd, c->rbuf, sizeof(c->rbuf));
	if (n == -1) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			log_warn("vici: read");
			client_lost(c);
		}
		goto cleanup;
	}
	if (n == 0) {
		log_info("vici: connection closed by charon");
		client_lost(c);
		goto cleanup;
	}
	r = vici_stream_feed(c->stream, c->rbuf, (size_t)n);
	sodium_memzero(c->rbuf, (size_t)n);
	if (r == -1) {
		log_warn("vici: buffering input");
		client_lost(c);
		goto cleanup;
	}
	/* Callbacks may free us or reconnect, hence the checks per packet. */
	while (!c->dying && c->gen == gen) {
		r = vici_stream_next(c->stream, &pkt, &len);
		if (r == 0)
			break;
		if (r == -1) {
			log_warnx("vici: corrupt stream from charon");
			client_lost(c);
			break;
		}
		if (vici_parse(pkt, len, &msg, err, sizeof(err)) == -1) {
			log_warnx("vici: bad packet from charon: %s", err);
			client_lost(c);
			break;
		}
		client_dispatch(c, msg);
		vici_msg_free(msg);
	}
cleanup:
	client_release(c);
}

static void
client_on_write(evutil_socket_t fd, short what, void *arg)
{
	struct vici_client *c = arg;
	struct vici_request *r;
	socklen_t	 slen;
	ssize_t		 n;
	int		 soerr;

	client_hold(c);
	if (c->connecting) {
		slen = sizeof(soerr);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &slen) == -1)
			soerr = errno;
		if (soerr != 0) {
			errno = soerr;
			log_warn("vici: connect");
			client_lost(c);
			goto cleanup;
		}
		c->connecting = 0;
		event_add(c->ev_read, NULL);
	}
	r = TAILQ_FIRST(&c->queue);
	if (r == NULL || c->sent) {
		event_del(c->ev_write);
		goto cleanup;
	}
	n = send(fd, r->data + r->off, r->len - r->off, MSG_NOSIGNAL);
	if (n == -1) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			log_warn("vici: send");
			client_lost(c);
		}
		goto cleanup;
	}
	r->off += (size_t)n;
	if (r->off == r->len) {
		/* Only the reply callback is still needed; drop the secret. */
		sodium_memzero(r->data, r->len);
		free(r->data);
		r->data = NULL;
		c->sent = 1;
		event_del(c->ev_write);
	}
cleanup:
	client_release(c);
}

struct vici_client *
vici_client_new(struct event_base *base, vici_event_cb on_event,
    vici_close_cb on_close, void *arg)
{
	struct vici_client *c;

	if (base == NULL) {
		errno = EINVAL;
		return NULL;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->base = base;
	c->on_event = on_event;
	c->on_close = on_close;
	c->arg = arg;
	c->fd = -1;
	TAILQ_INIT(&c->queue);
	if ((c->ev_deadline = evtimer_new(base, client_on_deadline, c)) ==
	    NULL) {
		free(c);
		return NULL;
	}
	return c;
}

void
vici_client_on_deadline(struct vici_client *c, vici_deadline_cb cb)
{
	c->on_deadline = cb;
}

int
vici_client_connect(struct vici_client *c, const char *path)
{
	struct sockaddr_un sa;
	int		 saved;

	if (c == NULL || path == NULL || c->dying) {
		errno = EINVAL;
		return -1;
	}
	if (c->fd != -1) {
		errno = EISCONN;
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sa.sun_path, path);

	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd == -1)
		return -1;
	c->ev_read = event_new(c->base, c->fd, EV_READ | EV_PERSIST,
	    client_on_read, c);
	c->ev_write = event_new(c->base, c->fd, EV_WRITE | EV_PERSIST,
	    client_on_write, c);
	c->stream = vici_stream_new();
	if (c->ev_read == NULL || c->ev_write == NULL || c->stream == NULL) {
		errno = ENOMEM;
		goto fail;
	}
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		event_add(c->ev_read, NULL);
		client_kick(c);
		return 0;
	}
	/*
	 * A unix socket either connects at once or fails; EAGAIN (backlog
	 * full) is not "in progress" there, so it is returned for the caller
	 * to retry later like any other failure.
	 */
	if (errno != EINPROGRESS)
		goto fail;
	c->connecting = 1;
	event_add(c->ev_write, NULL);
	return 0;
fail:
	saved = errno;
	client_disconnect(c);
	errno = saved;
	return -1;
}

int
vici_client_connected(const struct vici_client *c)
{
	return c != NULL && c->fd != -1 && !c->connecting;
}

int
vici_client_request(struct vici_client *c, const uint8_t *pkt, size_t len,
    vici_reply_cb cb, void *arg)
{
	return vici_client_request_within(c, pkt, len, 0, cb, arg);
}

int
vici_client_request_within(struct vici_client *c, const uint8_t *pkt,
    size_t len, unsigned deadline_ms, vici_reply_cb cb, void *arg)
{
	struct vici_request *r;
	struct vici_msg	*m;
	size_t		 body;
	char		 name[64];

	if (c == NULL || pkt == NULL || len < 5) {
		errno = EINVAL;
		return -1;
	}
	/*
	 * Only whole, well-formed request packets: charon drops a client
	 * that sends garbage, and with it every other pending request.
	 */
	body = (size_t)pkt[0] << 24 | (size_t)pkt[1] << 16 |
	    (size_t)pkt[2] << 8 | pkt[3];
	if (body != len - 4 || body > VICI_MAX_PACKET ||
	    (pkt[4] != VICI_CMD_REQUEST && pkt[4] != VICI_EVENT_REGISTER &&
	    pkt[4] != VICI_EVENT_UNREGISTER) ||
	    vici_parse(pkt + 4, body, &m, NULL, 0) == -1) {
		errno = EINVAL;
		return -1;
	}
	snprintf(name, sizeof(name), "%s", m->name);
	vici_msg_free(m);
	if (c->dying || c->fd == -1) {
		errno = ENOTCONN;
		return -1;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return -1;
	if ((r->data = malloc(len)) == NULL) {
		free(r);
		return -1;
	}
	memcpy(r->data, pkt, len);
	r->len = len;
	r->type = pkt[4];
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->deadline_ms = deadline_ms;
	r->cb = cb;
	r->arg = arg;
	TAILQ_INSERT_TAIL(&c->queue, r, entry);
	client_kick(c);
	return 0;
}

void
vici_client_free(struct vici_client *c)
{
	if (c == NULL || c->dying)
		return;
	c->dying = 1;
	client_hold(c);
	client_disconnect(c);
	client_fail_pending(c);
	client_release(c);
}
