/*
 * The etcd client of the gateway pair's fence (see fence.h): a read of
 * the fence key (POST /v3/kv/range) and a claim of it, one transaction
 * that puts the new value only if the key's mod_revision is still the
 * one the claimant read (POST /v3/kv/txn), so that of two claimants with
 * the same expected revision exactly one wins, and the loser learns the
 * winner in the same answer.
 *
 * evhttp's client on the caller's loop, one request in flight.  Each
 * request has a deadline of its own, a timer of ours: evhttp's timeouts
 * measure silence between bytes, and a role engine needs to know by a
 * given time whether etcd answered.  A missed deadline drops the
 * connection with its request (evhttp_connection_free calls nobody
 * back); any failure drops it too, and the next request opens a new
 * one.  Otherwise the connection stays open (HTTP/1.1 keep-alive), so
 * that a read costs one round trip.
 *
 * Results reach the caller through an event of ours, made active when
 * the answer is in: never from inside evhttp's callbacks (the caller may
 * free the fence there) nor from inside fence_read() and fence_claim().
 */
#include <sys/socket.h>
#include <sys/types.h>

#include <netinet/in.h>

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>

#include "grgw.h"
#include "etcd_msg.h"
#include "feeds.h"
#include "fence.h"

#define FENCE_RESPONSE_MAX	(64 * 1024)
#define FENCE_HEADERS_MAX	(16 * 1024)
/*
 * evhttp's own timeout: silence on a connection this long closes it.
 * Past every deadline of ours, so that it never cuts a request short; it
 * also closes a connection idle that long, before etcd itself might,
 * which would race with our next request.
 */
#define FENCE_IDLE_MS		(FENCE_TIMEOUT_MAX_MS + 1000)

enum fence_op { FENCE_IDLE, FENCE_READ, FENCE_CLAIM };

static const char *const op_names[] = {
	[FENCE_IDLE] = "none",
	[FENCE_READ] = "read",
	[FENCE_CLAIM] = "claim",
};

struct fence {
	struct event_base		*base;
	struct evhttp_connection	*conn;		/* NULL: none yet */
	char				 endpoint[128];	/* for messages */
	char				 host[INET6_ADDRSTRLEN];
	char				 hosthdr[INET6_ADDRSTRLEN + 8];
	uint16_t			 port;
	char				 key[GRGW_ETCD_KEY_MAX + 1];

	enum fence_op			 op;		/* in flight */
	struct evhttp_request		*req;		/* awaiting its answer */
	fence_cb			 cb;
	void				*arg;
	unsigned			 timeout_ms;
	struct timespec			 started;
	uint64_t			 claim_epoch;	/* what a claim writes */
	struct grgw_addr		 claim_holder;
	char				 http_error[96]; /* evhttp's, if any */
	int				 drop_conn;	/* after a failure */
	struct fence_result		 result;

	struct event			*ev_deadline;
	struct event			*ev_done;	/* hands result to cb */

	uint16_t			 conn_port;	/* local; 0: none */
	struct fence_stats		 stats;
};

static uint64_t
us_since(const struct timespec *t)
{
	struct timespec	 now;
	int64_t		 us;

	clock_gettime(CLOCK_MONOTONIC, &now);
	us = (int64_t)(now.tv_sec - t->tv_sec) * 1000000 +
	    (now.tv_nsec - t->tv_nsec) / 1000;
	return us > 0 ? (uint64_t)us : 0;
}

/* The request is over (answered, failed or timed out): call back soon. */
static void
fence_finish(struct fence *f)
{
	f->req = NULL;
	evtimer_del(f->ev_deadline);
	f->result.elapsed_us = us_since(&f->started);
	if (f->result.completed)
		f->stats.completed++;
	else
		f->stats.failed++;
	event_active(f->ev_done, EV_TIMEOUT, 0);
}

static void
fence_fail(struct fence *f, const char *fmt, ...) GRGW_PRINTF(2, 3);

static void
fence_fail(struct fence *f, const char *fmt, ...)
{
	va_list	 ap;

	f->result.completed = 0;
	va_start(ap, fmt);
	vsnprintf(f->result.reason, sizeof(f->result.reason), fmt, ap);
	va_end(ap);
	log_debug("fence %s %s: %s failed: %s", f->endpoint, f->key,
	    op_names[f->op], f->result.reason);
	fence_finish(f);
}

static void
fence_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fence		*f = arg;
	struct fence_result	 r = f->result;	/* the callback may reuse f */
	fence_cb		 cb = f->cb;
	void			*cb_arg = f->arg;

	if (f->drop_conn && f->conn != NULL) {
		evhttp_connection_free(f->conn);
		f->conn = NULL;
		f->conn_port = 0;
	}
	f->drop_conn = 0;
	f->op = FENCE_IDLE;
	f->cb = NULL;
	f->arg = NULL;
	cb(&r, cb_arg);
}

/* The local port of the connection that answered, to count connections. */
static void
fence_note_connection(struct fence *f)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len = sizeof(ss);
	struct bufferevent	*bev;
	evutil_socket_t		 fd;
	uint16_t		 port = 0;

	bev = evhttp_connection_get_bufferevent(f->conn);
	fd = bev != NULL ? bufferevent_getfd(bev) : -1;
	if (fd == -1 || getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
		return;
	if (ss.ss_family == AF_INET)
		port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	else if (ss.ss_family == AF_INET6)
		port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	if (port != f->conn_port)
		f->stats.connections++;
	f->conn_port = port;
}

/* What the key holds, into the result: found, revision, epoch, holder. */
static void
fence_take_kv(struct fence *f, const struct etcd_kv *kv)
{
	struct etcd_fence	 v;
	char			 why[160];

	f->result.found = kv->found;
	f->result.mod_revision = kv->found ? kv->mod_revision : 0;
	if (!kv->found)
		return;
	if (kv->value_too_long) {
		snprintf(f->result.reason, sizeof(f->result.reason), "the "
		    "value is longer than %d bytes", ETCD_KV_VALUE_MAX);
		return;
	}
	if (etcd_fence_value_parse(kv->value, kv->value_len, &v, why,
	    sizeof(why)) == -1) {
		snprintf(f->result.reason, sizeof(f->result.reason), "the value "
		    "is not a fence value: %s", why);
		return;
	}
	f->result.value_ok = 1;
	f->result.epoch = v.epoch;
	f->result.holder = v.holder;
}

static void
fence_on_answer(struct fence *f, const char *body, size_t len)
{
	struct etcd_range	 rg;
	struct etcd_cas		 cas;
	char			 why[ETCD_ERROR_MESSAGE_MAX + 64];

	if (f->op == FENCE_READ) {
		if (etcd_range_parse(body, len, f->key, &rg, why,
		    sizeof(why)) == -1) {
			f->drop_conn = 1;
			fence_fail(f, "range answer: %s", why);
			return;
		}
		f->result.revision = rg.header.revision;
		fence_take_kv(f, &rg.kv);
	} else {
		if (etcd_cas_parse(body, len, f->key, &cas, why,
		    sizeof(why)) == -1) {
			f->drop_conn = 1;
			fence_fail(f, "txn answer: %s", why);
			return;
		}
		f->result.revision = cas.header.revision;
		if (cas.succeeded) {
			f->result.won = 1;
			f->result.found = 1;
			f->result.mod_revision = cas.mod_revision;
			f->result.value_ok = 1;
			f->result.epoch = f->claim_epoch;
			f->result.holder = f->claim_holder;
		} else
			fence_take_kv(f, &cas.kv);
	}
	f->result.completed = 1;
	fence_finish(f);
}

/* evhttp says why a request failed, just before its callback. */
static void
fence_error_cb(enum evhttp_request_error error, void *arg)
{
	struct fence	*f = arg;
	int		 saved = errno;

	switch (error) {
	case EVREQ_HTTP_TIMEOUT:
		snprintf(f->http_error, sizeof(f->http_error), "no answer for "
		    "%u s", FENCE_IDLE_MS / 1000);
		break;
	case EVREQ_HTTP_EOF:
		/* errno is evhttp's last, meaningful only for these. */
		snprintf(f->http_error, sizeof(f->http_error), "connection "
		    "closed before the answer%s", saved == ECONNRESET ?
		    " (reset)" : saved == EPIPE ? " (broken pipe)" : "");
		break;
	case EVREQ_HTTP_INVALID_HEADER:
		snprintf(f->http_error, sizeof(f->http_error), "malformed "
		    "HTTP answer");
		break;
	case EVREQ_HTTP_BUFFER_ERROR:
		snprintf(f->http_error, sizeof(f->http_error), "I/O error: %s",
		    strerror(saved));
		break;
	case EVREQ_HTTP_DATA_TOO_LONG:
		snprintf(f->http_error, sizeof(f->http_error), "answer longer "
		    "than %d bytes", FENCE_RESPONSE_MAX);
		break;
	default:
		snprintf(f->http_error, sizeof(f->http_error), "request "
		    "failed (evhttp error %d)", (int)error);
		break;
	}
}

static void
fence_response_cb(struct evhttp_request *req, void *arg)
{
	struct fence		*f = arg;
	struct evbuffer		*in;
	struct etcd_error	 ee;
	const char		*body = NULL;
	char			 why[ETCD_ERROR_MESSAGE_MAX + 32];
	size_t			 len;
	int			 code;

	if (f->req == NULL)
		return;		/* over already (cannot happen; a guard) */
	f->req = NULL;
	code = req != NULL ? evhttp_request_get_response_code(req) : 0;
	if (code == 0) {
		f->drop_conn = 1;
		if (f->http_error[0] != '\0')
			fence_fail(f, "%s", f->http_error);
		else
			fence_fail(f, "cannot connect to %s (refused or "
			    "unreachable)", f->endpoint);
		return;
	}
	fence_note_connection(f);
	in = evhttp_request_get_input_buffer(req);
	len = in != NULL ? evbuffer_get_length(in) : 0;
	if (len > FENCE_RESPONSE_MAX) {
		f->drop_conn = 1;
		fence_fail(f, "answer of %zu bytes is too long", len);
		return;
	}
	if (len > 0 && (body = (const char *)evbuffer_pullup(in,
	    (ev_ssize_t)len)) == NULL)
		len = 0;
	if (code != 200) {
		if (etcd_error_parse(body, len, &ee, NULL, 0) == 0)
			snprintf(why, sizeof(why), ee.code != 0 ? "%s (code %d)" :
			    "%s", ee.message, ee.code);
		else
			etcd_excerpt(body, len, why, sizeof(why));
		fence_fail(f, "HTTP %d: %s", code, why);
		return;
	}
	fence_on_answer(f, body, len);
}

/* The request in flight had its time: etcd is taken for hung. */
static void
fence_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fence	*f = arg;

	if (f->req == NULL)
		return;
	/* Frees the request too, without calling us back. */
	evhttp_connection_free(f->conn);
	f->conn = NULL;
	f->conn_port = 0;
	f->stats.timed_out++;
	fence_fail(f, "timed out after %u ms", f->timeout_ms);
}

/* A connection to the endpoint with our limits; NULL when out of memory. */
static struct evhttp_connection *
fence_connection(struct fence *f)
{
	struct evhttp_connection *conn;
	struct timeval	 tv;

	conn = evhttp_connection_base_new(f->base, NULL, f->host, f->port);
	if (conn == NULL)
		return NULL;
	tv.tv_sec = FENCE_IDLE_MS / 1000;
	tv.tv_usec = (FENCE_IDLE_MS % 1000) * 1000;
	evhttp_connection_set_timeout_tv(conn, &tv);
	evhttp_connection_set_retries(conn, 0);
	evhttp_connection_set_max_body_size(conn, FENCE_RESPONSE_MAX);
	evhttp_connection_set_max_headers_size(conn, FENCE_HEADERS_MAX);
	return conn;
}

/*
 * Send body to uri as op.  Once the request is taken (0), its callback
 * will come, whatever happens.  -1 with errno: nothing was taken.
 */
static int
fence_start(struct fence *f, enum fence_op op, const char *uri,
    const char *body, unsigned timeout_ms, fence_cb cb, void *arg)
{
	struct evhttp_request	*req;
	struct evkeyvalq	*h;
	struct timeval		 tv;

	if (f->conn == NULL && (f->conn = fence_connection(f)) == NULL)
		goto nomem;
	if ((req = evhttp_request_new(fence_response_cb, f)) == NULL)
		goto nomem;
	evhttp_request_set_error_cb(req, fence_error_cb);
	h = evhttp_request_get_output_headers(req);
	if (evhttp_add_header(h, "Host", f->hosthdr) == -1 ||
	    evhttp_add_header(h, "Content-Type", "application/json") == -1 ||
	    evbuffer_add(evhttp_request_get_output_buffer(req), body,
	    strlen(body)) == -1) {
		evhttp_request_free(req);
		goto nomem;
	}
	memset(&f->result, 0, sizeof(f->result));
	f->http_error[0] = '\0';
	f->op = op;
	f->cb = cb;
	f->arg = arg;
	f->timeout_ms = timeout_ms;
	f->stats.requests++;
	clock_gettime(CLOCK_MONOTONIC, &f->started);
	/* From now, not from the loop's cached time (it may be older). */
	event_base_update_cache_time(f->base);
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	evtimer_add(f->ev_deadline, &tv);
	f->req = req;
	/* On failure evhttp_make_request() has freed req itself. */
	if (evhttp_make_request(f->conn, req, EVHTTP_REQ_POST, uri) == -1) {
		f->drop_conn = 1;
		fence_fail(f, "cannot send to %s", f->endpoint);
	}
	return 0;
nomem:
	errno = ENOMEM;
	return -1;
}

/* Can a request start?  0, or -1 with errno. */
static int
fence_can_start(const struct fence *f, unsigned timeout_ms, fence_cb cb)
{
	if (f == NULL || cb == NULL || timeout_ms == 0 ||
	    timeout_ms > FENCE_TIMEOUT_MAX_MS) {
		errno = EINVAL;
		return -1;
	}
	if (f->op != FENCE_IDLE) {
		errno = EBUSY;
		return -1;
	}
	return 0;
}

int
fence_read(struct fence *f, unsigned timeout_ms, fence_cb cb, void *arg)
{
	char	*body;
	int	 rc;

	if (fence_can_start(f, timeout_ms, cb) == -1)
		return -1;
	if ((body = etcd_range_request(f->key)) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	rc = fence_start(f, FENCE_READ, "/v3/kv/range", body, timeout_ms, cb,
	    arg);
	free(body);
	return rc;
}

int
fence_claim(struct fence *f, int64_t expect_mod_revision, uint64_t epoch,
    const struct grgw_addr *holder, unsigned timeout_ms, fence_cb cb,
    void *arg)
{
	char	*value = NULL, *body = NULL;
	int	 rc = -1;

	if (fence_can_start(f, timeout_ms, cb) == -1)
		return -1;
	if (expect_mod_revision < 0 || epoch == 0 || epoch > INT64_MAX ||
	    holder == NULL || addr_len(holder->family) == 0) {
		errno = EINVAL;
		return -1;
	}
	if ((value = etcd_fence_value(epoch, holder)) == NULL ||
	    (body = etcd_cas_request(f->key, expect_mod_revision,
	    value)) == NULL) {
		errno = ENOMEM;
		goto cleanup;
	}
	f->claim_epoch = epoch;
	f->claim_holder = *holder;
	rc = fence_start(f, FENCE_CLAIM, "/v3/kv/txn", body, timeout_ms, cb,
	    arg);
cleanup:
	free(value);
	free(body);
	return rc;
}

int
fence_busy(const struct fence *f)
{
	return f != NULL && f->op != FENCE_IDLE;
}

void
fence_get_stats(const struct fence *f, struct fence_stats *out)
{
	if (f == NULL)
		memset(out, 0, sizeof(*out));
	else
		*out = f->stats;
}

struct fence *
fence_new(struct event_base *base, const char *endpoint, const char *key,
    char *err, size_t errlen)
{
	struct fence		*f;
	struct grgw_addr	 a;
	char			 why[160];
	uint16_t		 port;

	if (base == NULL) {
		err_set(err, errlen, "no event loop");
		return NULL;
	}
	if (addr_url_parse(endpoint, FEEDS_ETCD_PORT_DEFAULT, &a, &port, why,
	    sizeof(why)) == -1) {
		err_set(err, errlen, "etcd endpoint \"%.128s\" %s",
		    endpoint != NULL ? endpoint : "", why);
		return NULL;
	}
	if (key == NULL || *key == '\0' || strlen(key) > GRGW_ETCD_KEY_MAX) {
		err_set(err, errlen, "etcd key is empty or longer than %d "
		    "bytes", GRGW_ETCD_KEY_MAX);
		return NULL;
	}
	if ((f = calloc(1, sizeof(*f))) == NULL) {
		err_set(err, errlen, "out of memory");
		return NULL;
	}
	f->base = base;
	snprintf(f->endpoint, sizeof(f->endpoint), "%s", endpoint);
	snprintf(f->key, sizeof(f->key), "%s", key);
	addr_fmt(&a, f->host, sizeof(f->host));
	snprintf(f->hosthdr, sizeof(f->hosthdr), a.family == AF_INET6 ?
	    "[%s]:%u" : "%s:%u", f->host, (unsigned)port);
	f->port = port;
	f->ev_deadline = evtimer_new(base, fence_deadline_cb, f);
	f->ev_done = event_new(base, -1, 0, fence_done_cb, f);
	if (f->ev_deadline == NULL || f->ev_done == NULL) {
		err_set(err, errlen, "out of memory");
		fence_free(f);
		return NULL;
	}
	return f;
}

void
fence_free(struct fence *f)
{
	if (f == NULL)
		return;
	/* Frees a request in flight too, without calling us back. */
	if (f->conn != NULL)
		evhttp_connection_free(f->conn);
	if (f->ev_deadline != NULL)
		event_free(f->ev_deadline);
	if (f->ev_done != NULL)
		event_free(f->ev_done);	/* a result pending: never told */
	free(f);
}
