/*
 * The feeds that publish the link state (see linkstate.h) to the world
 * outside the daemon.  Each one lives on the daemon's libevent loop and
 * none of them blocks it; a feed that fails (a hung hook, an unreachable
 * etcd) never delays the others or the link-state machine.
 *
 *   metrics.c  Prometheus text exposition of the status and link views
 *              (pure renderer)
 *   http.c     a small HTTP server (evhttp): GET /status, GET /metrics
 *   notify.c   the state file (replaced atomically on every change) and
 *              the notify hooks (executables run on each transition)
 *   etcd.c     the link state in the site's etcd cluster, under a key of
 *              the gateway's own, attached to a lease (v3 JSON gateway;
 *              the messages are built and parsed in etcd_msg.c, pure)
 *
 * Ownership: every object here is created by its _new()/_start() function,
 * owned by the caller, and released by its _free() function, which accepts
 * NULL.  Strings passed in are copied unless a comment says "borrowed".
 */
#ifndef GRGW_FEEDS_H
#define GRGW_FEEDS_H

#include <stddef.h>
#include <stdint.h>

#include "grgw.h"
#include "linkstate.h"

struct event_base;
struct strbuf;
struct status_view;

#define FEEDS_HTTP_LISTEN_DEFAULT	"127.0.0.1:9421"
#define FEEDS_HOOKS_DIR_DEFAULT		"/etc/grgw/hooks.d"
#define FEEDS_HOOKS_TIMEOUT_DEFAULT	10	/* seconds */
#define FEEDS_ETCD_PORT_DEFAULT		4000	/* Clearwater's etcd clients */
#define FEEDS_ETCD_TTL_DEFAULT		10	/* seconds */
#define FEEDS_ETCD_KEY_MAX		255
#define FEEDS_ETCD_VALUE_MAX		(16 * 1024)
#define FEEDS_STATEFILE_NAME		"linkstate.json"

/* ---- metrics.c (pure) ----------------------------------------------------- */

/*
 * Append the Prometheus text exposition (format 0.0.4) of both views to
 * sb: a "# HELP" and a "# TYPE" line per family, names prefixed grgw_,
 * label values escaped.  Either view may be NULL; the families it feeds
 * are then left out.  lv NULL means sv->link.  Both views are borrowed.  The families and their
 * labels are documented in the README ("Metrics").
 */
void	metrics_render(const struct status_view *sv, const struct link_view *lv,
	    struct strbuf *sb);

/* ---- http.c ---------------------------------------------------------------- */

enum http_doc { HTTP_DOC_STATUS, HTTP_DOC_METRICS };

/*
 * A client asks for doc: hand it in with http_answer(srv, ticket, ...),
 * now (from inside the callback) or later.  arg is the one given to
 * start.
 */
typedef void (*http_want_fn)(uint32_t ticket, enum http_doc doc, void *arg);

/*
 * Listen on `listen` (addr_port_parse(); port 0 picks a free port) and
 * serve, on base:
 *   GET|HEAD /status   the status document, application/json
 *   GET|HEAD /metrics  the metrics, text/plain; version=0.0.4
 * 404 for other paths, 405 (with Allow) for other methods, 413 for a
 * request body over 1 KB, 414, 431 and 400 for a long target, a long
 * head or a malformed one; one request per connection, at most
 * HTTP_CONNS_MAX of them (the oldest unfinished one makes room), each
 * closed 10 s after it came whatever it does; a document not handed in
 * within 3 s is answered 503.  listen is copied;
 * arg is borrowed and must outlive the server.  On failure returns NULL
 * with a message in err ("bind 127.0.0.1:9421: Address already in use").
 */
struct http_server;
struct http_server *http_server_start(struct event_base *base,
	    const char *listen, http_want_fn want_fn, void *arg, char *err,
	    size_t errlen);
/*
 * The document for a ticket (body copied; NULL: it could not be made,
 * answered 500).  A ticket that timed out or whose client left is
 * ignored.
 */
void	http_answer(struct http_server *srv, uint32_t ticket,
	    const char *body, size_t len);
/* What the server went through, for the status and tests. */
#define HTTP_CONNS_MAX	64		/* connections held at once */
struct http_stats {
	uint64_t	 accepted;	/* connections */
	uint64_t	 served;	/* documents sent */
	uint64_t	 refused;	/* answered with an error */
	uint64_t	 timed_out;	/* closed at their deadline */
	uint64_t	 evicted;	/* closed to make room, unfinished */
	uint64_t	 paused;	/* accept() out of descriptors */
	unsigned	 open;		/* connections now */
};
void	http_server_stats(const struct http_server *srv,
	    struct http_stats *out);
/* A connection's whole life, from accept to close (default 10 s). */
void	http_server_set_deadline(struct http_server *srv, unsigned ms);
/* The port actually bound (useful after port 0). */
uint16_t http_server_port(const struct http_server *srv);
/* Close the listener and every open connection.  Accepts NULL. */
void	http_server_free(struct http_server *srv);

/* ---- notify.c: state file --------------------------------------------------- */

/* "<run_dir>/<site>/linkstate.json" into buf. */
void	statefile_path(const struct grgw_config *cfg, char *buf, size_t size);

/*
 * Write linkstate_render_json(v) and a newline to a temporary file in
 * path's directory, mode 0644, and rename it over path, so a reader sees
 * the old file or the new one, never a part.  The directory must exist.
 * 0, or -1 with errno set (the caller logs).
 */
int	statefile_write(const char *path, const struct link_view *v);

/* ---- notify.c: hooks ----------------------------------------------------------- */

/*
 * Notify hooks: on each transition, every eligible file in dir is run,
 * in name order, each in a process of its own, with this environment and
 * nothing else:
 *   GRGW_SITE GRGW_PEER GRGW_OLD_STATE GRGW_NEW_STATE GRGW_REASON
 *   GRGW_SINCE (RFC 3339, UTC)   PATH=/usr/sbin:/usr/bin:/sbin:/bin
 * stdin is /dev/null, stdout and stderr are the daemon's stderr (its log),
 * the working directory is /, and each hook leads a session of its own.
 *
 * Eligible: a regular file (a symlink is followed), executable, not
 * writable by group or others, owned by root or by the daemon's user,
 * with a name of letters, digits, '_', '-' and '.' not starting with
 * '.'.  Anything else is skipped with a log line saying why.  The
 * directory itself must not be writable by group or others.  A missing
 * directory means no hooks.  The directory is read at each transition,
 * so hooks can be added without a restart.
 *
 * Never blocks: hooks are forked and exec'd, their exit is watched with
 * a pidfd on the loop and reaped with waitpid() on that pid.  A hook
 * still running timeout_s after its start is killed (SIGKILL, with its
 * process group) and logged.  A hook that is still running when the next
 * transition comes is not started twice: the latest transition is kept
 * for it and run when the running copy ends (older queued ones are
 * dropped, counted as coalesced).
 */
struct hooks;

struct hooks_stats {
	uint64_t	started;	/* processes started */
	uint64_t	succeeded;	/* exited with status 0 */
	uint64_t	failed;		/* non-zero exit, or killed by a signal */
	uint64_t	timed_out;	/* killed after timeout_s */
	uint64_t	coalesced;	/* queued transitions replaced by newer */
	uint64_t	skipped;	/* files refused (not eligible) */
	unsigned	running;	/* hooks running now */
	unsigned	queued;		/* hooks with a transition waiting */
};

/* dir is copied; NULL or "" disables hooks.  NULL only on ENOMEM. */
struct hooks *hooks_new(struct event_base *base, const char *dir,
	    unsigned timeout_s);
/* v is read during the call only. */
void	hooks_run(struct hooks *h, const struct link_view *v,
	    enum link_state old_state);
/*
 * Run the hooks for an event other than a transition (GRGW_EVENT=event,
 * GRGW_DETAIL=detail, truncated; the states both say v's).  Transitions
 * say GRGW_EVENT=link.
 */
void	hooks_event(struct hooks *h, const struct link_view *v,
	    const char *event, const char *detail);
void	hooks_get_stats(const struct hooks *h, struct hooks_stats *out);
/* Kill (SIGKILL) and reap hooks still running; drop queued ones.  NULL ok. */
void	hooks_free(struct hooks *h);

/* ---- etcd.c (its messages: etcd_msg.h) ------------------------------------------ */

/*
 * Keeps `key` in the etcd cluster at endpoint set to the latest value
 * given, attached to a lease of ttl_s seconds that is kept alive every
 * ttl_s/3, so the key disappears within ttl_s after the daemon dies.
 * Everything is asynchronous on base (evhttp client, one request in
 * flight at most, values given meanwhile coalesce to the latest).  A
 * failed request is retried after an exponential backoff (0.5 s doubling
 * to 30 s); a lease that expired or vanished is granted again and the
 * value put again.  endpoint and key are copied.  NULL on a bad endpoint
 * or ENOMEM (logged).
 */
struct etcd_pub;
struct etcd_pub *etcd_pub_new(struct event_base *base, const char *endpoint,
	    const char *key, unsigned ttl_s);
/* value_json is copied; at most FEEDS_ETCD_VALUE_MAX bytes (else logged
 * and ignored). */
void	etcd_pub_set(struct etcd_pub *e, const char *value_json);
/* 1 when the latest value is stored under a live lease. */
int	etcd_pub_healthy(const struct etcd_pub *e);
/* The last failure in words, or NULL; owned by e, valid until next call
 * on e. */
const char *etcd_pub_last_error(const struct etcd_pub *e);
/* The current lease id, 0 when none (for tests and the status page). */
int64_t	etcd_pub_lease(const struct etcd_pub *e);
/*
 * Drop the connection and any request in flight.  The lease is not
 * revoked: the key expires by itself within the TTL.  Accepts NULL.
 */
void	etcd_pub_free(struct etcd_pub *e);

#endif /* GRGW_FEEDS_H */
