/*
 * The status HTTP server: GET /status (JSON) and GET /metrics (Prometheus
 * text), on the network process's loop.
 *
 * A server of its own, small on purpose, so that what a client can make
 * it hold is bounded and known:
 *   - at most HTTP_CONNS_MAX connections; a new one beyond that closes
 *     the oldest that has not sent a whole request yet (a slow client
 *     cannot keep a scraper out);
 *   - every connection has an absolute deadline from its accept, however
 *     slowly it trickles bytes;
 *   - a request head of at most HTTP_HEAD_MAX bytes and a target of at
 *     most HTTP_TARGET_MAX (httpreq.c parses it), a body of at most
 *     HTTP_BODY_MAX, read and dropped;
 *   - one request per connection, answered with "Connection: close";
 *   - when accept() runs out of descriptors (EMFILE, ENFILE) the listener
 *     pauses for a second instead of spinning.
 * It listens on an IP literal only (nothing resolves names), loopback by
 * default.  The documents are made elsewhere (in the privileged parent):
 * a request is held, with a deadline, until its document is handed in
 * with http_answer(); a client that leaves meanwhile is forgotten.
 */
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <netinet/in.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "grgw.h"
#include "feeds.h"
#include "httpreq.h"

#define HTTP_BODY_MAX		1024	/* we take no bodies at all */
#define HTTP_DEADLINE_S		10	/* a connection's whole life */
#define HTTP_ANSWER_TIMEOUT_S	3	/* for the parent's document */
#define HTTP_WRITE_TIMEOUT_S	5	/* for the client to take the answer */
#define HTTP_BACKLOG		16
#define HTTP_ACCEPT_BUDGET	16	/* accepts per wake-up */
#define HTTP_PAUSE_MS		1000	/* after EMFILE and the like */

#define CT_JSON		"application/json"
#define CT_METRICS	"text/plain; version=0.0.4; charset=utf-8"
#define CT_TEXT		"text/plain; charset=utf-8"

enum conn_state {
	CONN_HEAD,		/* reading the request head */
	CONN_BODY,		/* reading (and dropping) a small body */
	CONN_WAITING,		/* for the parent's document */
	CONN_WRITING,		/* the answer; closed once it is out */
};

struct http_conn {
	TAILQ_ENTRY(http_conn)	 entry;
	struct http_server	*srv;
	struct bufferevent	*bev;
	struct event		*deadline;
	enum conn_state		 state;
	struct http_req		 req;
	size_t			 body_left;
	uint32_t		 ticket;	/* CONN_WAITING */
	enum http_doc		 doc;
};

struct http_server {
	struct event_base	*base;
	int			 fd;
	struct event		*ev_accept;
	struct event		*ev_resume;
	http_want_fn		 want_fn;
	void			*arg;
	uint16_t		 port;
	unsigned		 deadline_ms;	/* a connection's whole life */
	uint32_t		 next_ticket;
	unsigned		 n_conns;
	TAILQ_HEAD(, http_conn)	 conns;		/* oldest first */
	struct http_stats	 stats;
};

static void	conn_free(struct http_conn *);

/* ---- answers ---------------------------------------------------------------- */

static const char *
reason_phrase(int code)
{
	switch (code) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Error";
	}
}

/* Queue the whole answer; the connection closes once it is written. */
static void
conn_answer(struct http_conn *c, int code, const char *ctype,
    const char *extra, const char *body, size_t len)
{
	struct evbuffer	*out = bufferevent_get_output(c->bev);
	struct timeval	 tv = { HTTP_WRITE_TIMEOUT_S, 0 };
	int		 head = strcmp(c->req.method, "HEAD") == 0;

	evbuffer_add_printf(out, "HTTP/1.%d %d %s\r\nContent-Type: %s\r\n"
	    "Content-Length: %zu\r\nCache-Control: no-store\r\n"
	    "X-Content-Type-Options: nosniff\r\n%sConnection: close\r\n\r\n",
	    c->req.minor, code, reason_phrase(code), ctype, len,
	    extra != NULL ? extra : "");
	if (!head && len > 0)
		evbuffer_add(out, body, len);
	evtimer_add(c->deadline, &tv);
	c->state = CONN_WRITING;
	bufferevent_disable(c->bev, EV_READ);
	bufferevent_enable(c->bev, EV_WRITE);
}

static void
conn_error(struct http_conn *c, int code, const char *text)
{
	c->srv->stats.refused++;
	conn_answer(c, code, CT_TEXT, code == 405 ? "Allow: GET, HEAD\r\n" :
	    NULL, text, strlen(text));
}

void
http_answer(struct http_server *srv, uint32_t ticket, const char *body,
    size_t len)
{
	struct http_conn	*c;

	if (srv == NULL)
		return;
	TAILQ_FOREACH(c, &srv->conns, entry)
		if (c->state == CONN_WAITING && c->ticket == ticket)
			break;
	if (c == NULL)
		return;		/* timed out, or the client left */
	if (body == NULL) {
		conn_error(c, 500, "the document could not be made\n");
		return;
	}
	srv->stats.served++;
	conn_answer(c, 200, c->doc == HTTP_DOC_STATUS ? CT_JSON : CT_METRICS,
	    NULL, body, len);
}

/* ---- a request ------------------------------------------------------------ */

static void
conn_dispatch(struct http_conn *c)
{
	struct http_server	*srv = c->srv;
	struct timeval		 tv = { HTTP_ANSWER_TIMEOUT_S, 0 };

	if (strcmp(c->req.path, "/status") == 0)
		c->doc = HTTP_DOC_STATUS;
	else if (strcmp(c->req.path, "/metrics") == 0)
		c->doc = HTTP_DOC_METRICS;
	else {
		conn_error(c, 404, "not found; try /status or /metrics\n");
		return;
	}
	if (strcmp(c->req.method, "GET") != 0 &&
	    strcmp(c->req.method, "HEAD") != 0) {
		conn_error(c, 405, "method not allowed; use GET\n");
		return;
	}
	c->state = CONN_WAITING;
	c->ticket = ++srv->next_ticket;
	evtimer_add(c->deadline, &tv);
	bufferevent_disable(c->bev, EV_READ);
	/* The answer may come at once, from inside the callback. */
	srv->want_fn(c->ticket, c->doc, srv->arg);
}

static void
conn_read_head(struct http_conn *c, struct evbuffer *in)
{
	size_t		 have = evbuffer_get_length(in);
	const char	*p;
	int		 n;

	if (have > HTTP_HEAD_MAX)
		have = HTTP_HEAD_MAX;
	if ((p = (const char *)evbuffer_pullup(in, (ssize_t)have)) == NULL)
		return;
	if ((n = http_req_parse(p, have, &c->req)) == 0)
		return;			/* more to come */
	if (n < 0) {
		conn_error(c, -n, "malformed or oversized request\n");
		return;
	}
	evbuffer_drain(in, (size_t)n);
	if (c->req.chunked || c->req.content_length > HTTP_BODY_MAX) {
		conn_error(c, 413, "request bodies are refused\n");
		return;
	}
	c->body_left = (size_t)c->req.content_length;
	c->state = CONN_BODY;
}

static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct http_conn	*c = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	size_t			 n;

	if (c->state == CONN_HEAD)
		conn_read_head(c, in);
	if (c->state == CONN_BODY) {
		n = evbuffer_get_length(in);
		n = n < c->body_left ? n : c->body_left;
		evbuffer_drain(in, n);
		c->body_left -= n;
		if (c->body_left == 0)
			conn_dispatch(c);
	}
}

static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct http_conn	*c = arg;

	if (c->state == CONN_WRITING &&
	    evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		conn_free(c);
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct http_conn	*c = arg;

	/* The client left, or the socket failed: forget the request. */
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		conn_free(c);
}

static void
conn_deadline_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct http_conn	*c = arg;

	if (c->state == CONN_WAITING) {
		/* The parent did not answer in time: say so, briefly. */
		conn_error(c, 503, "the gateway did not answer in time\n");
		return;
	}
	c->srv->stats.timed_out++;
	conn_free(c);
}

/* ---- connections ------------------------------------------------------------ */

static void
conn_free(struct http_conn *c)
{
	struct http_server	*srv = c->srv;

	TAILQ_REMOVE(&srv->conns, c, entry);
	srv->n_conns--;
	if (c->deadline != NULL)
		event_free(c->deadline);
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	free(c);
	/* A slot is free: take what waits in the backlog. */
	if (srv->ev_accept != NULL && !evtimer_pending(srv->ev_resume, NULL))
		event_add(srv->ev_accept, NULL);
}

/* The oldest connection still sending its request, or NULL. */
static struct http_conn *
conn_evictable(struct http_server *srv)
{
	struct http_conn	*c;

	TAILQ_FOREACH(c, &srv->conns, entry)
		if (c->state == CONN_HEAD || c->state == CONN_BODY)
			return c;
	return NULL;
}

/* Make room: close the oldest connection still sending its request. */
static void
conn_evict(struct http_server *srv)
{
	struct http_conn	*c;

	if ((c = conn_evictable(srv)) != NULL) {
		srv->stats.evicted++;
		conn_free(c);
	}
}

static void
conn_new(struct http_server *srv, int fd)
{
	struct timeval		 tv = { srv->deadline_ms / 1000,
	    (srv->deadline_ms % 1000) * 1000 };
	struct http_conn	*c;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		close(fd);
		return;
	}
	c->srv = srv;
	c->req.minor = 1;
	c->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	c->deadline = evtimer_new(srv->base, conn_deadline_cb, c);
	TAILQ_INSERT_TAIL(&srv->conns, c, entry);
	srv->n_conns++;
	srv->stats.accepted++;
	if (c->bev == NULL || c->deadline == NULL) {
		if (c->bev == NULL)
			close(fd);
		conn_free(c);
		return;
	}
	bufferevent_setwatermark(c->bev, EV_READ, 0, HTTP_HEAD_MAX);
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb,
	    c);
	bufferevent_enable(c->bev, EV_READ);
	evtimer_add(c->deadline, &tv);
}

static void
resume_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct http_server	*srv = arg;

	event_add(srv->ev_accept, NULL);
}

static void
accept_cb(evutil_socket_t lfd, short ev, void *arg)
{
	struct http_server	*srv = arg;
	struct timeval		 tv = { 0, HTTP_PAUSE_MS * 1000 };
	int			 fd, i;

	for (i = 0; i < HTTP_ACCEPT_BUDGET; i++) {
		if (srv->n_conns >= HTTP_CONNS_MAX && !conn_evictable(srv)) {
			/* All busy with answers: wait for one to end. */
			event_del(srv->ev_accept);
			return;
		}
		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			if (srv->n_conns >= HTTP_CONNS_MAX)
				conn_evict(srv);
			conn_new(srv, fd);
			continue;
		}
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM) {
			/* Not a spin: pause, and let descriptors come back. */
			log_warn("http: cannot accept; pausing for %d ms",
			    HTTP_PAUSE_MS);
			srv->stats.paused++;
			event_del(srv->ev_accept);
			evtimer_add(srv->ev_resume, &tv);
		}
		return;		/* EAGAIN, or a client already gone */
	}
}

/* ---- the listener ------------------------------------------------------------ */

static int
listen_socket(const struct grgw_addr *a, uint16_t port, uint16_t *bound,
    char *err, size_t errlen, const char *text)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t		 slen;
	int			 fd, on = 1;

	memset(&ss, 0, sizeof(ss));
	if (a->family == AF_INET) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		memcpy(&sin->sin_addr, a->addr, 4);
		slen = sizeof(*sin);
	} else {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		memcpy(&sin6->sin6_addr, a->addr, 16);
		slen = sizeof(*sin6);
	}
	fd = socket(a->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return err_set(err, errlen, "socket for %s: %s", text,
		    strerror(errno));
	/* TCP's SO_REUSEADDR only lets a restart bind past TIME_WAIT. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1 ||
	    (a->family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6,
	    IPV6_V6ONLY, &on, sizeof(on)) == -1)) {
		err_set(err, errlen, "setsockopt for %s: %s", text,
		    strerror(errno));
		goto fail;
	}
	if (bind(fd, (struct sockaddr *)&ss, slen) == -1) {
		err_set(err, errlen, "bind %s: %s", text, strerror(errno));
		goto fail;
	}
	if (listen(fd, HTTP_BACKLOG) == -1) {
		err_set(err, errlen, "listen %s: %s", text, strerror(errno));
		goto fail;
	}
	slen = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &slen) == -1) {
		err_set(err, errlen, "getsockname %s: %s", text,
		    strerror(errno));
		goto fail;
	}
	*bound = ntohs(a->family == AF_INET ? sin->sin_port : sin6->sin6_port);
	return fd;
fail:
	close(fd);
	return -1;
}

struct http_server *
http_server_start(struct event_base *base, const char *listen,
    http_want_fn want_fn, void *arg, char *err, size_t errlen)
{
	struct http_server	*srv = NULL;
	struct grgw_addr	 a;
	char			 why[160];
	uint16_t		 port;

	if (errlen > 0)
		err[0] = '\0';
	if (addr_port_parse(listen, &a, &port, why, sizeof(why)) == -1) {
		err_set(err, errlen, "listen address \"%s\" %s",
		    listen != NULL ? listen : "", why);
		return NULL;
	}
	if ((srv = calloc(1, sizeof(*srv))) == NULL) {
		err_set(err, errlen, "out of memory");
		return NULL;
	}
	srv->base = base;
	srv->want_fn = want_fn;
	srv->arg = arg;
	srv->fd = -1;
	srv->deadline_ms = HTTP_DEADLINE_S * 1000;
	TAILQ_INIT(&srv->conns);
	if ((srv->fd = listen_socket(&a, port, &srv->port, err, errlen,
	    listen)) == -1)
		goto fail;
	srv->ev_accept = event_new(base, srv->fd, EV_READ | EV_PERSIST,
	    accept_cb, srv);
	srv->ev_resume = evtimer_new(base, resume_cb, srv);
	if (srv->ev_accept == NULL || srv->ev_resume == NULL ||
	    event_add(srv->ev_accept, NULL) == -1) {
		err_set(err, errlen, "cannot serve on %s", listen);
		goto fail;
	}
	log_info("http: serving /status and /metrics on %s (port %u)",
	    listen, (unsigned)srv->port);
	return srv;
fail:
	http_server_free(srv);
	return NULL;
}

uint16_t
http_server_port(const struct http_server *srv)
{
	return srv != NULL ? srv->port : 0;
}

void
http_server_set_deadline(struct http_server *srv, unsigned ms)
{
	if (srv != NULL && ms > 0)
		srv->deadline_ms = ms;
}

void
http_server_stats(const struct http_server *srv, struct http_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (srv == NULL)
		return;
	*out = srv->stats;
	out->open = srv->n_conns;
}

void
http_server_free(struct http_server *srv)
{
	struct event	*accept;

	if (srv == NULL)
		return;
	/* No accept restarts while the connections go. */
	accept = srv->ev_accept;
	srv->ev_accept = NULL;
	while (!TAILQ_EMPTY(&srv->conns))
		conn_free(TAILQ_FIRST(&srv->conns));
	if (accept != NULL)
		event_free(accept);
	if (srv->ev_resume != NULL)
		event_free(srv->ev_resume);
	if (srv->fd >= 0)
		close(srv->fd);
	free(srv);
}
