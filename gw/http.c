/*
 * The status HTTP server: GET /status (JSON) and GET /metrics (Prometheus
 * text) on libevent's evhttp, on the daemon's loop.
 *
 * It listens on loopback by default.  The socket is made here rather than
 * by evhttp_bind_socket() so that nothing resolves names (an IP literal
 * is all we accept) and a bind error can be reported in words.  The
 * documents are made elsewhere (in the privileged parent): a request is
 * held, with a deadline, until its document is handed in with
 * http_answer(); a client that leaves meanwhile is forgotten.  evhttp's
 * limits (header size, body size, timeout) bound what a client can make
 * us hold.
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
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "grgw.h"
#include "strbuf.h"
#include "feeds.h"

#define HTTP_MAX_HEADERS	8192	/* bytes of request line + headers */
#define HTTP_MAX_BODY		1024	/* we take no bodies at all */
#define HTTP_TIMEOUT_S		5
#define HTTP_ANSWER_TIMEOUT_S	3	/* for the parent's document */
#define HTTP_BACKLOG		16

#define CT_JSON		"application/json"
#define CT_METRICS	"text/plain; version=0.0.4; charset=utf-8"
#define CT_TEXT		"text/plain; charset=utf-8"

/* A request waiting for its document. */
struct http_pending {
	TAILQ_ENTRY(http_pending) entry;
	struct http_server		*srv;
	uint32_t			 ticket;
	struct evhttp_request		*req;
	struct evhttp_connection	*evcon;
	enum http_doc			 doc;
	int				 head;
	struct event			*timeout;
};

struct http_server {
	struct event_base		*base;
	struct evhttp			*http;
	struct evhttp_bound_socket	*bound;
	http_want_fn			 want_fn;
	void				*arg;
	uint16_t			 port;
	uint32_t			 next_ticket;
	TAILQ_HEAD(, http_pending)	 pending;
};

/* ---- requests ------------------------------------------------------------- */

static void
reply_text(struct evhttp_request *req, int code, const char *reason,
    const char *body)
{
	struct evkeyvalq	*h = evhttp_request_get_output_headers(req);
	struct evbuffer		*buf;

	evhttp_add_header(h, "Content-Type", CT_TEXT);
	evhttp_add_header(h, "Cache-Control", "no-store");
	if ((buf = evbuffer_new()) == NULL) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	if (evhttp_request_get_command(req) != EVHTTP_REQ_HEAD)
		evbuffer_add(buf, body, strlen(body));
	evhttp_send_reply(req, code, reason, buf);
	evbuffer_free(buf);
}

static void
pending_free(struct http_pending *p)
{
	TAILQ_REMOVE(&p->srv->pending, p, entry);
	if (p->timeout != NULL)
		event_free(p->timeout);
	free(p);
}

/* The connection went away: its requests can no longer be answered. */
static void
connection_closed(struct evhttp_connection *evcon, void *arg)
{
	struct http_server	*srv = arg;
	struct http_pending	*p, *tmp;

	for (p = TAILQ_FIRST(&srv->pending); p != NULL; p = tmp) {
		tmp = TAILQ_NEXT(p, entry);
		if (p->evcon == evcon)
			pending_free(p);
	}
}

static void
pending_timeout(evutil_socket_t fd, short ev, void *arg)
{
	struct http_pending	*p = arg;

	reply_text(p->req, HTTP_SERVUNAVAIL, "Service Unavailable",
	    "the gateway did not answer in time\n");
	pending_free(p);
}

static void
send_document(struct evhttp_request *req, enum http_doc doc, int head,
    const char *body, size_t len)
{
	struct evkeyvalq	*h = evhttp_request_get_output_headers(req);
	struct evbuffer		*buf;
	char			 clen[32];

	if ((buf = evbuffer_new()) == NULL) {
		reply_text(req, HTTP_INTERNAL, "Internal Server Error",
		    "out of memory\n");
		return;
	}
	evhttp_add_header(h, "Content-Type", doc == HTTP_DOC_STATUS ?
	    CT_JSON : CT_METRICS);
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	if (head) {
		/* evhttp sends no body for HEAD; say how long it would be. */
		snprintf(clen, sizeof(clen), "%zu", len);
		evhttp_add_header(h, "Content-Length", clen);
	} else if (len > 0)
		evbuffer_add(buf, body, len);
	evhttp_send_reply(req, HTTP_OK, "OK", buf);
	evbuffer_free(buf);
}

void
http_answer(struct http_server *srv, uint32_t ticket, const char *body,
    size_t len)
{
	struct http_pending	*p;

	if (srv == NULL)
		return;
	TAILQ_FOREACH(p, &srv->pending, entry)
		if (p->ticket == ticket)
			break;
	if (p == NULL)
		return;		/* timed out, or the client left */
	if (body == NULL)
		reply_text(p->req, HTTP_INTERNAL, "Internal Server Error",
		    "the document could not be made\n");
	else
		send_document(p->req, p->doc, p->head, body, len);
	pending_free(p);
}

static void
http_request_cb(struct evhttp_request *req, void *arg)
{
	struct http_server	*srv = arg;
	const struct evhttp_uri	*uri = evhttp_request_get_evhttp_uri(req);
	struct evkeyvalq	*h = evhttp_request_get_output_headers(req);
	enum evhttp_cmd_type	 cmd = evhttp_request_get_command(req);
	struct timeval		 tv = { HTTP_ANSWER_TIMEOUT_S, 0 };
	const char		*path = NULL;
	struct http_pending	*p;
	enum http_doc		 doc;

	if (uri != NULL)
		path = evhttp_uri_get_path(uri);
	if (path != NULL && strcmp(path, "/status") == 0)
		doc = HTTP_DOC_STATUS;
	else if (path != NULL && strcmp(path, "/metrics") == 0)
		doc = HTTP_DOC_METRICS;
	else {
		reply_text(req, HTTP_NOTFOUND, "Not Found",
		    "not found; try /status or /metrics\n");
		return;
	}
	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		evhttp_add_header(h, "Allow", "GET, HEAD");
		reply_text(req, 405, "Method Not Allowed",
		    "method not allowed; use GET\n");
		return;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		reply_text(req, HTTP_INTERNAL, "Internal Server Error",
		    "out of memory\n");
		return;
	}
	p->srv = srv;
	p->ticket = ++srv->next_ticket;
	p->req = req;
	p->evcon = evhttp_request_get_connection(req);
	p->doc = doc;
	p->head = cmd == EVHTTP_REQ_HEAD;
	TAILQ_INSERT_TAIL(&srv->pending, p, entry);
	if ((p->timeout = evtimer_new(srv->base, pending_timeout, p)) ==
	    NULL) {
		reply_text(req, HTTP_INTERNAL, "Internal Server Error",
		    "out of memory\n");
		pending_free(p);
		return;
	}
	evtimer_add(p->timeout, &tv);
	if (p->evcon != NULL)
		evhttp_connection_set_closecb(p->evcon, connection_closed,
		    srv);
	/* The answer may come at once, from inside the callback. */
	srv->want_fn(p->ticket, doc, srv->arg);
}

/* ---- server ------------------------------------------------------------- */

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
	if (fd == -1) {
		snprintf(err, errlen, "socket for %s: %s", text,
		    strerror(errno));
		return -1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1 ||
	    (a->family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6,
	    IPV6_V6ONLY, &on, sizeof(on)) == -1)) {
		snprintf(err, errlen, "setsockopt for %s: %s", text,
		    strerror(errno));
		goto fail;
	}
	if (bind(fd, (struct sockaddr *)&ss, slen) == -1) {
		snprintf(err, errlen, "bind %s: %s", text, strerror(errno));
		goto fail;
	}
	if (listen(fd, HTTP_BACKLOG) == -1) {
		snprintf(err, errlen, "listen %s: %s", text, strerror(errno));
		goto fail;
	}
	slen = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &slen) == -1) {
		snprintf(err, errlen, "getsockname %s: %s", text,
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
	int			 fd = -1;

	if (errlen > 0)
		err[0] = '\0';
	if (addr_port_parse(listen, &a, &port, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "listen address \"%s\" %s",
		    listen != NULL ? listen : "", why);
		return NULL;
	}
	if ((srv = calloc(1, sizeof(*srv))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	srv->base = base;
	srv->want_fn = want_fn;
	srv->arg = arg;
	TAILQ_INIT(&srv->pending);
	if ((fd = listen_socket(&a, port, &srv->port, err, errlen,
	    listen)) == -1)
		goto fail;
	if ((srv->http = evhttp_new(base)) == NULL) {
		snprintf(err, errlen, "evhttp_new failed");
		goto fail;
	}
	evhttp_set_max_headers_size(srv->http, HTTP_MAX_HEADERS);
	evhttp_set_max_body_size(srv->http, HTTP_MAX_BODY);
	evhttp_set_timeout(srv->http, HTTP_TIMEOUT_S);
	/* Let every method reach us, so the answer is 405, not 501. */
	evhttp_set_allowed_methods(srv->http, EVHTTP_REQ_GET |
	    EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
	    EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
	    EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
	evhttp_set_gencb(srv->http, http_request_cb, srv);
	if ((srv->bound = evhttp_accept_socket_with_handle(srv->http,
	    fd)) == NULL) {
		snprintf(err, errlen, "cannot serve on %s", listen);
		goto fail;
	}
	fd = -1;		/* evhttp closes it now */
	log_info("http: serving /status and /metrics on %s (port %u)",
	    listen, (unsigned)srv->port);
	return srv;
fail:
	if (fd != -1)
		close(fd);
	http_server_free(srv);
	return NULL;
}

uint16_t
http_server_port(const struct http_server *srv)
{
	return srv != NULL ? srv->port : 0;
}

void
http_server_free(struct http_server *srv)
{
	if (srv == NULL)
		return;
	while (!TAILQ_EMPTY(&srv->pending))
		pending_free(TAILQ_FIRST(&srv->pending));
	if (srv->http != NULL)
		evhttp_free(srv->http);
	free(srv);
}
