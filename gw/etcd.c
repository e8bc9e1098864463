/*
 * The link state in the site's etcd cluster, through etcd's v3 JSON
 * gateway (etcd 3.4: POST /v3/lease/grant, /v3/kv/put,
 * /v3/lease/keepalive; keys and values in standard base64).
 *
 * The key is attached to a lease that we keep alive every TTL/3: if the
 * gateway dies, or loses its way to etcd, the key disappears within the
 * TTL and whoever watches it sees that the state is no longer vouched
 * for.  Everything runs on the loop with evhttp's client: one request in
 * flight at most, values set meanwhile coalesce to the latest, failures
 * back off exponentially.  A lease that etcd no longer knows (it expired
 * during an outage, or was revoked) is granted afresh and the value put
 * again.
 *
 * Only http:// is supported: the endpoint is expected on the local site's
 * management network, as Clearwater's own etcd clients use it.  Only IP
 * literals are accepted, so that nothing resolves names on the loop.
 *
 * Every request has a deadline of its own (TTL/3, between 0.5 and 5 s):
 * evhttp's timeouts measure silence between bytes, so a server that
 * accepts and then answers nothing, or a byte now and then, would hold
 * the one request in flight, and with it the lease, forever.  A missed
 * deadline drops the connection with the request and counts as a
 * failure like any other; the next request opens a new connection.
 *
 * The request bodies are built, and the responses parsed, by etcd_msg.c;
 * this file is the conversation on the loop.
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
#include <event2/event.h>
#include <event2/http.h>

#include "grgw.h"
#include "etcd_msg.h"
#include "feeds.h"

#define ETCD_RESPONSE_MAX	(64 * 1024)
#define ETCD_HEADERS_MAX	(16 * 1024)
#define ETCD_TIMEOUT_MAX_MS	5000
#define ETCD_TIMEOUT_MIN_MS	500
#define ETCD_BACKOFF_MIN_MS	500
#define ETCD_BACKOFF_MAX_MS	30000

enum etcd_op { OP_NONE, OP_GRANT, OP_PUT, OP_KEEPALIVE };

static const char *const op_names[] = {
	[OP_NONE] = "none",
	[OP_GRANT] = "lease grant",
	[OP_PUT] = "put",
	[OP_KEEPALIVE] = "lease keepalive",
};

struct etcd_pub {
	struct event_base		*base;
	struct evhttp_connection	*conn;
	char				 endpoint[128];	/* for messages */
	char				 hosthdr[INET6_ADDRSTRLEN + 8];
	char				 host[INET6_ADDRSTRLEN];
	uint16_t			 port;
	char				 key[FEEDS_ETCD_KEY_MAX + 1];
	unsigned			 ttl_s;

	char				*value;		/* latest, or NULL */
	uint64_t			 value_gen;	/* bumped per set */
	uint64_t			 stored_gen;	/* in etcd, this lease */

	int64_t				 lease;		/* 0: none */
	struct timespec			 lease_ok;	/* last sign of life */
	int				 keepalive_due;

	enum etcd_op			 inflight;
	uint64_t			 inflight_gen;
	struct evhttp_request		*req;		/* in flight, or NULL */
	unsigned			 deadline_ms;	/* per request */
	struct event			*ev_deadline;

	struct event			*ev_kick;	/* run etcd_next() */
	struct event			*ev_keepalive;	/* every ttl/3 */
	struct event			*ev_retry;	/* backoff */
	unsigned			 backoff_ms;
	int				 failing;
	char				 last_error[200];
};

/* ---- the publisher ---------------------------------------------------------- */

static void	etcd_kick(struct etcd_pub *);
static struct evhttp_connection *etcd_connection(struct etcd_pub *);

static void
now_mono(struct timespec *ts)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
}

static int64_t
ms_since(const struct timespec *t)
{
	struct timespec	 now;

	now_mono(&now);
	return (int64_t)(now.tv_sec - t->tv_sec) * 1000 +
	    (now.tv_nsec - t->tv_nsec) / 1000000;
}

/* Our side's bound on the lease: no sign of life for a TTL means gone. */
static int
lease_surely_expired(const struct etcd_pub *e)
{
	return e->lease != 0 && ms_since(&e->lease_ok) >= (int64_t)e->ttl_s *
	    1000;
}

static void
lease_drop(struct etcd_pub *e)
{
	e->lease = 0;
	e->stored_gen = 0;
	e->keepalive_due = 0;
	if (e->ev_keepalive != NULL)
		event_del(e->ev_keepalive);
}

static void
etcd_failed(struct etcd_pub *e, const char *fmt, ...) GRGW_PRINTF(2, 3);

static void
etcd_failed(struct etcd_pub *e, const char *fmt, ...)
{
	struct timeval	 tv;
	va_list		 ap;

	va_start(ap, fmt);
	vsnprintf(e->last_error, sizeof(e->last_error), fmt, ap);
	va_end(ap);
	if (!e->failing)
		log_warnx("etcd %s: %s; retrying with backoff", e->endpoint,
		    e->last_error);
	else
		log_debug("etcd %s: %s", e->endpoint, e->last_error);
	e->failing = 1;
	if (e->backoff_ms == 0)
		e->backoff_ms = ETCD_BACKOFF_MIN_MS;
	tv.tv_sec = e->backoff_ms / 1000;
	tv.tv_usec = (e->backoff_ms % 1000) * 1000;
	evtimer_add(e->ev_retry, &tv);
	e->backoff_ms = e->backoff_ms * 2 > ETCD_BACKOFF_MAX_MS ?
	    ETCD_BACKOFF_MAX_MS : e->backoff_ms * 2;
}

static void
etcd_succeeded(struct etcd_pub *e)
{
	if (e->failing)
		log_info("etcd %s: publishing %s again", e->endpoint, e->key);
	e->failing = 0;
	e->backoff_ms = 0;
	e->last_error[0] = '\0';
}

/*
 * Why a request failed, in words, into buf: etcd's own message when the
 * body is an error object, else a printable excerpt of the body.  *ee is
 * the parsed error (code 0 and no message when there was none).
 */
static void
etcd_describe_failure(const char *body, size_t len, struct etcd_error *ee,
    char *buf, size_t size)
{
	if (etcd_error_parse(body, len, ee, NULL, 0) == 0) {
		if (ee->code != 0)
			snprintf(buf, size, "%s (code %d)", ee->message,
			    ee->code);
		else
			snprintf(buf, size, "%s", ee->message);
		return;
	}
	etcd_excerpt(body, len, buf, size);
}

static void
etcd_on_grant(struct etcd_pub *e, int code, const char *body, size_t len)
{
	struct etcd_lease	 lease;
	struct etcd_error	 ee;
	struct timeval		 tv;
	char			 why[ETCD_ERROR_MESSAGE_MAX + 32];
	unsigned		 ms;

	if (code != 200) {
		etcd_describe_failure(body, len, &ee, why, sizeof(why));
		etcd_failed(e, "lease grant: HTTP %d: %s", code, why);
		return;
	}
	if (etcd_grant_parse(body, len, &lease, why, sizeof(why)) == -1) {
		etcd_failed(e, "lease grant: %s", why);
		return;
	}
	e->lease = lease.id;
	e->stored_gen = 0;
	now_mono(&e->lease_ok);
	ms = e->ttl_s * 1000 / 3;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	event_add(e->ev_keepalive, &tv);
	log_debug("etcd %s: lease %lld granted for %us", e->endpoint,
	    (long long)lease.id, e->ttl_s);
	etcd_kick(e);
}

static void
etcd_on_put(struct etcd_pub *e, int code, const char *body, size_t len)
{
	struct etcd_put		 put;
	struct etcd_error	 ee;
	char			 why[ETCD_ERROR_MESSAGE_MAX + 32];

	if (code != 200) {
		etcd_describe_failure(body, len, &ee, why, sizeof(why));
		if (etcd_error_lease_not_found(&ee)) {
			log_info("etcd %s: lease %lld is gone; granting a new "
			    "one", e->endpoint, (long long)e->lease);
			lease_drop(e);
		}
		etcd_failed(e, "put: HTTP %d: %s", code, why);
		return;
	}
	if (etcd_put_parse(body, len, &put, why, sizeof(why)) == -1) {
		etcd_failed(e, "put: %s", why);
		return;
	}
	e->stored_gen = e->inflight_gen;
	etcd_succeeded(e);
	etcd_kick(e);
}

static void
etcd_on_keepalive(struct etcd_pub *e, int code, const char *body,
    size_t len)
{
	struct etcd_lease	 ka;
	struct etcd_error	 ee;
	char			 why[ETCD_ERROR_MESSAGE_MAX + 32];

	if (code != 200) {
		etcd_describe_failure(body, len, &ee, why, sizeof(why));
		etcd_failed(e, "lease keepalive: HTTP %d: %s", code, why);
		return;
	}
	/* A streaming call reports its errors in a 200 answer. */
	if (etcd_keepalive_parse(body, len, &ka, why, sizeof(why)) == -1) {
		if (etcd_error_parse(body, len, &ee, NULL, 0) == 0)
			etcd_failed(e, "lease keepalive: %s", ee.message);
		else
			etcd_failed(e, "lease keepalive: %s", why);
		return;
	}
	if (ka.id != e->lease) {
		etcd_failed(e, "lease keepalive: the answer is about lease %lld, "
		    "not %lld", (long long)ka.id, (long long)e->lease);
		return;
	}
	/* etcd answers 200 without a TTL for a lease it lost. */
	if (ka.ttl <= 0) {
		log_info("etcd %s: lease %lld expired; granting a new one and "
		    "putting %s again", e->endpoint, (long long)e->lease,
		    e->key);
		lease_drop(e);
	} else {
		e->keepalive_due = 0;
		now_mono(&e->lease_ok);
		/* etcd answers again, and the key never left it. */
		if (e->stored_gen == e->value_gen)
			etcd_succeeded(e);
	}
	etcd_kick(e);
}

static void
etcd_response_cb(struct evhttp_request *req, void *arg)
{
	struct etcd_pub	*e = arg;
	enum etcd_op	 op = e->inflight;
	struct evbuffer	*in;
	const char	*body = NULL;
	size_t		 len = 0;
	int		 code;

	e->inflight = OP_NONE;
	e->req = NULL;
	evtimer_del(e->ev_deadline);
	code = req != NULL ? evhttp_request_get_response_code(req) : 0;
	if (code == 0) {
		etcd_failed(e, "%s: no response (connection refused, reset "
		    "or timed out)", op_names[op]);
		return;
	}
	in = evhttp_request_get_input_buffer(req);
	len = in != NULL ? evbuffer_get_length(in) : 0;
	if (len > ETCD_RESPONSE_MAX) {
		etcd_failed(e, "%s: response of %zu bytes is too long",
		    op_names[op], len);
		return;
	}
	if (len > 0)
		body = (const char *)evbuffer_pullup(in, (ev_ssize_t)len);
	if (body == NULL)
		len = 0;
	switch (op) {
	case OP_GRANT:
		etcd_on_grant(e, code, body, len);
		break;
	case OP_PUT:
		etcd_on_put(e, code, body, len);
		break;
	case OP_KEEPALIVE:
		etcd_on_keepalive(e, code, body, len);
		break;
	case OP_NONE:
		break;
	}
}

static int
etcd_send(struct etcd_pub *e, enum etcd_op op, const char *uri,
    const char *body)
{
	struct evhttp_request	*req;
	struct evkeyvalq	*h;
	struct timeval		 tv;

	if (e->conn == NULL && (e->conn = etcd_connection(e)) == NULL)
		return -1;
	if ((req = evhttp_request_new(etcd_response_cb, e)) == NULL)
		return -1;
	h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Host", e->hosthdr);
	evhttp_add_header(h, "Content-Type", "application/json");
	evbuffer_add(evhttp_request_get_output_buffer(req), body,
	    strlen(body));
	e->inflight = op;
	/* On failure evhttp_make_request() frees req itself. */
	if (evhttp_make_request(e->conn, req, EVHTTP_REQ_POST, uri) == -1) {
		e->inflight = OP_NONE;
		return -1;
	}
	e->req = req;
	tv.tv_sec = e->deadline_ms / 1000;
	tv.tv_usec = (e->deadline_ms % 1000) * 1000;
	evtimer_add(e->ev_deadline, &tv);
	return 0;
}

/* A connection to the endpoint with our limits; NULL when out of memory. */
static struct evhttp_connection *
etcd_connection(struct etcd_pub *e)
{
	struct evhttp_connection *conn;
	struct timeval	 tv;

	conn = evhttp_connection_base_new(e->base, NULL, e->host, e->port);
	if (conn == NULL)
		return NULL;
	/* Silence between bytes: a backstop behind the deadline. */
	tv.tv_sec = 2 * e->deadline_ms / 1000;
	tv.tv_usec = (2 * e->deadline_ms % 1000) * 1000;
	evhttp_connection_set_timeout_tv(conn, &tv);
	evhttp_connection_set_retries(conn, 0);
	evhttp_connection_set_max_body_size(conn, ETCD_RESPONSE_MAX);
	evhttp_connection_set_max_headers_size(conn, ETCD_HEADERS_MAX);
	return conn;
}

/* The request in flight had its time: etcd is taken for hung. */
static void
etcd_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct etcd_pub	*e = arg;
	enum etcd_op	 op = e->inflight;

	if (op == OP_NONE || e->req == NULL)
		return;
	/*
	 * A connection of our own, afresh: freeing the old one frees the
	 * request without calling us back, whatever state it was in
	 * (connecting, sending, reading).
	 */
	e->req = NULL;
	e->inflight = OP_NONE;
	evhttp_connection_free(e->conn);
	if ((e->conn = etcd_connection(e)) == NULL)
		log_warnx("etcd %s: out of memory", e->endpoint);
	etcd_failed(e, "%s: no answer within %u.%u s", op_names[op],
	    e->deadline_ms / 1000, e->deadline_ms % 1000 / 100);
}

/* Decide the next request, if any, and send it. */
static void
etcd_next(struct etcd_pub *e)
{
	char		*body = NULL;
	enum etcd_op	 op = OP_NONE;
	const char	*uri = NULL;

	if (e->inflight != OP_NONE || evtimer_pending(e->ev_retry, NULL))
		return;
	if (lease_surely_expired(e)) {
		log_info("etcd %s: no keepalive for %us; lease %lld presumed "
		    "expired", e->endpoint, e->ttl_s, (long long)e->lease);
		lease_drop(e);
	}
	if (e->lease == 0) {
		if (e->value == NULL)
			return;		/* nothing to publish yet */
		op = OP_GRANT;
		uri = "/v3/lease/grant";
		body = etcd_grant_request(e->ttl_s);
	} else if (e->value != NULL && e->stored_gen != e->value_gen) {
		op = OP_PUT;
		uri = "/v3/kv/put";
		e->inflight_gen = e->value_gen;
		body = etcd_put_request(e->key, e->value, e->lease);
	} else if (e->keepalive_due) {
		op = OP_KEEPALIVE;
		uri = "/v3/lease/keepalive";
		body = etcd_keepalive_request(e->lease);
	} else
		return;
	if (body == NULL || etcd_send(e, op, uri, body) == -1)
		etcd_failed(e, "%s: cannot make the request", op_names[op]);
	free(body);
}

static void
etcd_kick_cb(evutil_socket_t fd, short what, void *arg)
{
	etcd_next(arg);
}

/* Run etcd_next() from the loop, once, however often this is called. */
static void
etcd_kick(struct etcd_pub *e)
{
	event_active(e->ev_kick, EV_TIMEOUT, 0);
}

static void
etcd_keepalive_cb(evutil_socket_t fd, short what, void *arg)
{
	struct etcd_pub	*e = arg;

	e->keepalive_due = 1;
	etcd_next(e);
}

static void
etcd_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	etcd_next(arg);
}

struct etcd_pub *
etcd_pub_new(struct event_base *base, const char *endpoint, const char *key,
    unsigned ttl_s)
{
	struct etcd_pub		*e;
	struct grgw_addr	 a;
	char			 host[INET6_ADDRSTRLEN], why[160];
	uint16_t		 port;
	unsigned		 ms;

	if (addr_url_parse(endpoint, FEEDS_ETCD_PORT_DEFAULT, &a, &port, why,
	    sizeof(why)) == -1) {
		log_warnx("etcd endpoint \"%s\" %s", endpoint != NULL ?
		    endpoint : "", why);
		return NULL;
	}
	if (key == NULL || *key == '\0' || strlen(key) > FEEDS_ETCD_KEY_MAX) {
		log_warnx("etcd key is empty or longer than %d bytes",
		    FEEDS_ETCD_KEY_MAX);
		return NULL;
	}
	if ((e = calloc(1, sizeof(*e))) == NULL) {
		log_warn("etcd");
		return NULL;
	}
	e->base = base;
	e->ttl_s = ttl_s >= 2 ? ttl_s : 2;
	snprintf(e->endpoint, sizeof(e->endpoint), "%s", endpoint);
	snprintf(e->key, sizeof(e->key), "%s", key);
	addr_fmt(&a, host, sizeof(host));
	snprintf(e->hosthdr, sizeof(e->hosthdr), a.family == AF_INET6 ?
	    "[%s]:%u" : "%s:%u", host, (unsigned)port);
	snprintf(e->host, sizeof(e->host), "%s", host);
	e->port = port;
	/* Requests must end well before the lease could lapse. */
	ms = e->ttl_s * 1000 / 3;
	if (ms > ETCD_TIMEOUT_MAX_MS)
		ms = ETCD_TIMEOUT_MAX_MS;
	if (ms < ETCD_TIMEOUT_MIN_MS)
		ms = ETCD_TIMEOUT_MIN_MS;
	e->deadline_ms = ms;
	e->conn = etcd_connection(e);
	e->ev_kick = event_new(base, -1, 0, etcd_kick_cb, e);
	e->ev_keepalive = event_new(base, -1, EV_PERSIST, etcd_keepalive_cb,
	    e);
	e->ev_retry = evtimer_new(base, etcd_retry_cb, e);
	e->ev_deadline = evtimer_new(base, etcd_deadline_cb, e);
	if (e->conn == NULL || e->ev_kick == NULL || e->ev_keepalive == NULL ||
	    e->ev_retry == NULL || e->ev_deadline == NULL)
		goto fail;
	log_info("etcd: publishing the link state to %s key %s (lease TTL "
	    "%us)", e->endpoint, e->key, e->ttl_s);
	return e;
fail:
	log_warnx("etcd: out of memory");
	etcd_pub_free(e);
	return NULL;
}

void
etcd_pub_set(struct etcd_pub *e, const char *value_json)
{
	char	*v;
	size_t	 len;

	if (e == NULL || value_json == NULL)
		return;
	if ((len = strlen(value_json)) > FEEDS_ETCD_VALUE_MAX) {
		log_warnx("etcd: value of %zu bytes is longer than %d; not "
		    "published", len, FEEDS_ETCD_VALUE_MAX);
		return;
	}
	if (e->value != NULL && strcmp(e->value, value_json) == 0)
		return;
	if ((v = strdup(value_json)) == NULL) {
		log_warn("etcd");
		return;
	}
	free(e->value);
	e->value = v;
	e->value_gen++;
	etcd_kick(e);
}

int
etcd_pub_healthy(const struct etcd_pub *e)
{
	return e != NULL && !e->failing && e->lease != 0 &&
	    e->value != NULL && e->stored_gen == e->value_gen &&
	    !lease_surely_expired(e);
}

const char *
etcd_pub_last_error(const struct etcd_pub *e)
{
	return e != NULL && e->last_error[0] != '\0' ? e->last_error : NULL;
}

int64_t
etcd_pub_lease(const struct etcd_pub *e)
{
	return e != NULL ? e->lease : 0;
}

void
etcd_pub_free(struct etcd_pub *e)
{
	if (e == NULL)
		return;
	/* Frees a request in flight too, without calling us back. */
	if (e->conn != NULL)
		evhttp_connection_free(e->conn);
	if (e->ev_kick != NULL)
		event_free(e->ev_kick);
	if (e->ev_keepalive != NULL)
		event_free(e->ev_keepalive);
	if (e->ev_retry != NULL)
		event_free(e->ev_retry);
	if (e->ev_deadline != NULL)
		event_free(e->ev_deadline);
	free(e->value);
	free(e);
}
