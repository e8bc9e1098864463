/*
 * The status HTTP server: GET /status (JSON) and GET /metrics (Prometheus
 * text) on libevent's evhttp, on the daemon's loop.
 *
 * It listens on loopback by default.  The socket is made here rather than
 * by evhttp_bind_socket() so that nothing resolves names (an IP literal
 * is all we accept) and a bind error can be reported in words.  Requests
 * are small and answered at once from the render functions; there is no
 * state per connection beyond what evhttp keeps, and evhttp's limits
 * (header size, body size, timeout) bound what a client can make us hold.
 */
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
#define HTTP_BACKLOG		16

#define CT_JSON		"application/json"
#define CT_METRICS	"text/plain; version=0.0.4; charset=utf-8"
#define CT_TEXT		"text/plain; charset=utf-8"

struct http_server {
	struct evhttp			*http;
	struct evhttp_bound_socket	*bound;
	http_render_fn			 status_fn;
	http_render_fn			 metrics_fn;
	void				*arg;
	uint16_t			 port;
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
http_request_cb(struct evhttp_request *req, void *arg)
{
	struct http_server	*srv = arg;
	const struct evhttp_uri	*uri = evhttp_request_get_evhttp_uri(req);
	struct evkeyvalq	*h = evhttp_request_get_output_headers(req);
	enum evhttp_cmd_type	 cmd = evhttp_request_get_command(req);
	const char		*path = NULL, *ctype;
	http_render_fn		 fn;
	struct evbuffer		*buf = NULL;
	struct strbuf		 sb;
	char			 len[32];

	strbuf_init(&sb);
	if (uri != NULL)
		path = evhttp_uri_get_path(uri);
	if (path != NULL && strcmp(path, "/status") == 0) {
		fn = srv->status_fn;
		ctype = CT_JSON;
	} else if (path != NULL && strcmp(path, "/metrics") == 0) {
		fn = srv->metrics_fn;
		ctype = CT_METRICS;
	} else {
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
	if (fn != NULL)
		fn(&sb, srv->arg);
	if (sb.failed || (buf = evbuffer_new()) == NULL) {
		strbuf_free(&sb);
		reply_text(req, HTTP_INTERNAL, "Internal Server Error",
		    "out of memory\n");
		return;
	}
	evhttp_add_header(h, "Content-Type", ctype);
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	if (cmd == EVHTTP_REQ_HEAD) {
		/* evhttp sends no body for HEAD; say how long it would be. */
		snprintf(len, sizeof(len), "%zu", sb.len);
		evhttp_add_header(h, "Content-Length", len);
	} else if (sb.len > 0)
		evbuffer_add(buf, sb.s, sb.len);
	evhttp_send_reply(req, HTTP_OK, "OK", buf);
	evbuffer_free(buf);
	strbuf_free(&sb);
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
    http_render_fn status_fn, http_render_fn metrics_fn, void *arg,
    char *err, size_t errlen)
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
	srv->status_fn = status_fn;
	srv->metrics_fn = metrics_fn;
	srv->arg = arg;
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
	if (srv->http != NULL)
		evhttp_free(srv->http);
	free(srv);
}
