/*
 * The network process: everything that reads bytes from the network
 * (the link probes, the HTTP server, the etcd client) runs here, as an
 * unprivileged user, in an empty chroot, under a seccomp filter, with
 * no capability and no access to charon, the kernel's configuration or
 * the run directory.  It knows of the configuration only what PMSG_CONF
 * carries.
 *
 * It is started by the parent (proc.c) as `grgw __netproc FD UID GID
 * ROOT PPID` and talks to it over FD only:
 *   parent -> here: PMSG_CONF, PMSG_KEY (and with [pair]
 *                   PMSG_PAIR_KEY, and PMSG_PAIR_RESUME while this
 *                   gateway holds the floating addresses), PMSG_START,
 *                   then PMSG_PUBLISH (etcd), PMSG_DOC (answers for
 *                   HTTP), PMSG_PAIR_CMD and PMSG_TUNNEL_NEW at any
 *                   time
 *   here -> parent: PMSG_READY once started, PMSG_PATH on every verdict
 *                   and every PATH_PUSH_MS, PMSG_WANT per HTTP request
 * It exits when the channel closes or the parent dies.
 */
#include <sys/prctl.h>
#include <sys/syscall.h>

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <sodium.h>

#include "grgw.h"
#include "chan.h"
#include "feeds.h"
#include "linkstate.h"
#include "netproc.h"
#include "pair.h"
#include "pairnet.h"
#include "pmsg.h"
#include "probe.h"
#include "sandbox.h"

#define PATH_PUSH_MS	250	/* figures between verdicts, for /metrics */

struct netproc_child {
	struct event_base	*base;
	struct chan		*chan;
	struct grgw_config	 cfg;		/* only what PMSG_CONF holds */
	int			 have_conf;
	int			 icmp_fd[PROBE_NPATHS];	/* probes = icmp:
						 * raw sockets from the parent,
						 * until the engine takes them */
	uint8_t			*key;		/* sodium_malloc'ed: the
						 * probe key, then the next */
	int			 have_next;	/* a key rotation is under way */
	uint8_t			*pair_key;	/* sodium_malloc'ed: [pair] */
	int			 pair_have_next;
	uint64_t		 resume_epoch;	/* PMSG_PAIR_RESUME, or 0 */
	uint64_t		 resume_until;
	struct pairnet		*pair;
	struct probe_engine	*probes;
	struct http_server	*http;
	struct etcd_pub		*etcd;
	struct event		*push;
	struct event		*sig_term;
	int			 started;
	int			 etcd_said;	/* PMSG_ETCD sent once */
	int			 etcd_healthy;	/* as last sent */
	char			 etcd_error[PMSG_TEXT_MAX];
};

static void
send_path(struct netproc_child *n, enum probe_path path, int changed)
{
	struct path_stats	 st;
	uint8_t			 body[PMSG_PATH_LEN];

	probe_engine_stats(n->probes, path, &st);
	pmsg_path_encode(path, changed, &st, body);
	chan_send(n->chan, PMSG_PATH, NULL, 0, body, sizeof(body));
}

static void
send_paths(struct netproc_child *n)
{
	int	 i;

	for (i = 0; i < PROBE_NPATHS; i++)
		send_path(n, (enum probe_path)i, 0);
}

static void
probe_changed(enum probe_path path, int up, void *arg)
{
	send_path(arg, path, 1);
}

/* How etcd publishing goes, to the parent, when it changed. */
static void
send_etcd(struct netproc_child *n)
{
	uint8_t		 body[1 + PMSG_TEXT_MAX];
	const char	*error;
	int		 healthy, len;

	if (n->etcd == NULL)
		return;
	healthy = etcd_pub_healthy(n->etcd);
	if ((error = etcd_pub_last_error(n->etcd)) == NULL)
		error = "";
	if (n->etcd_said && healthy == n->etcd_healthy &&
	    strncmp(error, n->etcd_error, sizeof(n->etcd_error) - 1) == 0)
		return;
	if ((len = pmsg_etcd_encode(healthy, error, body, sizeof(body))) < 0 ||
	    chan_send(n->chan, PMSG_ETCD, NULL, 0, body, (size_t)len) == -1)
		return;
	n->etcd_said = 1;
	n->etcd_healthy = healthy;
	snprintf(n->etcd_error, sizeof(n->etcd_error), "%s", error);
}

static void
push_cb(evutil_socket_t fd, short ev, void *arg)
{
	send_paths(arg);
	send_etcd(arg);
}

/* An HTTP client asks: fresh figures first, so the document has them. */
static void
http_want(uint32_t ticket, enum http_doc doc, void *arg)
{
	struct netproc_child	*n = arg;
	uint8_t			 body[PMSG_WANT_LEN];

	send_paths(n);
	send_etcd(n);
	pmsg_want_encode(ticket, doc == HTTP_DOC_STATUS ? PMSG_DOC_STATUS :
	    PMSG_DOC_METRICS, body);
	if (chan_send(n->chan, PMSG_WANT, NULL, 0, body, sizeof(body)) == -1)
		http_answer(n->http, ticket, NULL, 0);
}

static void
send_ready(struct netproc_child *n, int ok, const char *why)
{
	uint8_t	 body[1 + PMSG_TEXT_MAX];
	int	 len;

	if ((len = pmsg_ready_encode(ok, why, body, sizeof(body))) >= 0)
		chan_send(n->chan, PMSG_READY, NULL, 0, body, (size_t)len);
}

/*
 * The pair's role engine says where it stands: to the parent.  An active
 * gateway handing over (its partner's SAs in: the parent closes this
 * gateway's) sends no tunnel probes from then on, until it is standby
 * or the handover is given up.
 */
static void
pair_told(const struct pmsg_role *ro, void *arg)
{
	struct netproc_child	*n = arg;
	uint8_t			 body[64 + PMSG_TEXT_MAX];
	int			 len;

	probe_engine_pause(n->probes, PROBE_TUNNEL,
	    (ro->role == PAIR_ACTIVE || ro->role == PAIR_RELEASED) &&
	    (ro->prep & PMSG_PREP_PARTNER_READY) != 0);
	if ((len = pmsg_role_encode(ro, body, sizeof(body))) >= 0)
		chan_send(n->chan, PMSG_ROLE, NULL, 0, body, (size_t)len);
}

static int
start(struct netproc_child *n, const int up[PROBE_NPATHS], char *err,
    size_t errlen)
{
	const struct grgw_config *cfg = &n->cfg;
	struct probe_settings	 ps;
	struct timeval		 tv = { 0, PATH_PUSH_MS * 1000 };
	int			 i;

	if (!n->have_conf || n->key == NULL)
		return err_set(err, errlen, "started without a configuration "
		    "or a key");
	ps.interval_ms = cfg->probe.interval_ms;
	ps.multiplier = cfg->probe.multiplier;
	ps.recover = cfg->probe.recover;
	ps.port = (uint16_t)cfg->probe.port;
	ps.method = cfg->probe.method;
	for (i = 0; i < PROBE_NPATHS; i++) {
		ps.icmp_fd[i] = ps.method == GRGW_PROBES_ICMP ?
		    n->icmp_fd[i] : -1;
		if (ps.method != GRGW_PROBES_ICMP && n->icmp_fd[i] != -1)
			close(n->icmp_fd[i]);
		n->icmp_fd[i] = -1;	/* the engine's now */
	}
	n->probes = probe_engine_new(n->base, cfg, &ps, n->key, probe_changed,
	    n);
	if (n->probes == NULL || (n->have_next && probe_engine_set_keys(
	    n->probes, n->key, n->key + PROBE_KEY_LEN) == -1))
		return err_set(err, errlen, "cannot set up the link probes");
	for (i = 0; i < PROBE_NPATHS; i++)
		if (up[i])
			probe_engine_assume_up(n->probes, (enum probe_path)i);
	if (cfg->feeds.etcd_endpoint[0] != '\0' &&
	    (n->etcd = etcd_pub_new(n->base, cfg->feeds.etcd_endpoint,
	    cfg->feeds.etcd_key, cfg->feeds.etcd_lease_ttl)) == NULL)
		return err_set(err, errlen, "cannot publish to etcd at %s",
		    cfg->feeds.etcd_endpoint);
	if (cfg->feeds.http_listen[0] != '\0' &&
	    (n->http = http_server_start(n->base, cfg->feeds.http_listen,
	    http_want, n, err, errlen)) == NULL)
		return -1;
	if (probe_engine_start(n->probes) == -1)
		return err_set(err, errlen, "cannot start the link probes on "
		    "UDP port %u", (unsigned)cfg->probe.port);
	if (cfg->pair.enabled) {
		if (n->pair_key == NULL)
			return err_set(err, errlen, "a pair without a "
			    "heartbeat key");
		if ((n->pair = pairnet_new(n->base, cfg, n->pair_key,
		    n->pair_have_next ? n->pair_key + PMSG_KEY_LEN : NULL,
		    n->resume_epoch, n->resume_until, pair_told, n, err,
		    errlen)) == NULL)
			return -1;
	}
	if ((n->push = event_new(n->base, -1, EV_PERSIST, push_cb, n)) ==
	    NULL || event_add(n->push, &tv) == -1)
		return err_set(err, errlen, "out of memory");
	n->started = 1;
	return 0;
}

static void
on_start(struct netproc_child *n, const struct pmsg *m)
{
	char	 err[PMSG_TEXT_MAX];
	int	 up[PROBE_NPATHS];

	if (n->started || pmsg_start_decode(m->body, m->len, up) == -1) {
		log_warnx("network process: a bad start message");
		event_base_loopbreak(n->base);
		return;
	}
	if (start(n, up, err, sizeof(err)) == -1) {
		log_warnx("network process: %s", err);
		send_ready(n, 0, err);
		chan_flush(n->chan, 1000);
		event_base_loopbreak(n->base);
		return;
	}
	send_ready(n, 1, NULL);
	send_paths(n);
}

/*
 * The probe keys: before the start, for it; after, from a reload, into
 * the running engine, so the paths carry on as they are.
 */
static void
on_key(struct netproc_child *n, const struct pmsg *m)
{
	const uint8_t	*key, *next;

	if (pmsg_key_decode(m->body, m->len, &key, &next) == -1 ||
	    (n->key == NULL &&
	    (n->key = sodium_malloc(PMSG_KEYS_MAX)) == NULL)) {
		log_warnx("network process: a bad key message");
		event_base_loopbreak(n->base);
		return;
	}
	memcpy(n->key, key, PROBE_KEY_LEN);
	n->have_next = next != NULL;
	if (next != NULL)
		memcpy(n->key + PROBE_KEY_LEN, next, PROBE_KEY_LEN);
	else
		sodium_memzero(n->key + PROBE_KEY_LEN, PROBE_KEY_LEN);
	if (n->started && probe_engine_set_keys(n->probes, key, next) == -1)
		log_warnx("network process: out of secure memory; the probes "
		    "keep their keys");
}

/* The pair's heartbeat keys: for the start, or into the running pair. */
static void
on_pair_key(struct netproc_child *n, const struct pmsg *m)
{
	const uint8_t	*key, *next;

	if (pmsg_key_decode(m->body, m->len, &key, &next) == -1 ||
	    (n->pair_key == NULL &&
	    (n->pair_key = sodium_malloc(PMSG_KEYS_MAX)) == NULL)) {
		log_warnx("network process: a bad pair key message");
		event_base_loopbreak(n->base);
		return;
	}
	memcpy(n->pair_key, key, PMSG_KEY_LEN);
	n->pair_have_next = next != NULL;
	if (next != NULL)
		memcpy(n->pair_key + PMSG_KEY_LEN, next, PMSG_KEY_LEN);
	else
		sodium_memzero(n->pair_key + PMSG_KEY_LEN, PMSG_KEY_LEN);
	if (n->pair != NULL)
		pairnet_set_keys(n->pair, key, next);
}

static void
on_message(const struct pmsg *m, void *arg)
{
	struct netproc_child	*n = arg;
	enum pmsg_pair_cmd	 cmd;
	const uint8_t		*text;
	size_t			 len;
	uint32_t		 id;
	char			*value;

	switch (m->type) {
	case PMSG_CONF:
		if (n->started ||
		    pmsg_conf_decode(m->body, m->len, &n->cfg) == -1)
			goto bad;
		n->have_conf = 1;
		log_set_level(n->cfg.log_level);
		return;
	case PMSG_KEY:
		on_key(n, m);
		return;
	case PMSG_START:
		on_start(n, m);
		return;
	case PMSG_PAIR_KEY:
		on_pair_key(n, m);
		return;
	case PMSG_PAIR_RESUME:
		if (n->started || pmsg_pair_resume_decode(m->body, m->len,
		    &n->resume_epoch, &n->resume_until) == -1)
			goto bad;
		return;
	case PMSG_TUNNEL_NEW:
		if (m->len != 0)
			goto bad;
		probe_engine_fresh(n->probes, PROBE_TUNNEL);
		return;
	case PMSG_PAIR_CMD:
		if (pmsg_pair_cmd_decode(m->body, m->len, &cmd) == -1)
			goto bad;
		if (cmd == PMSG_PAIR_HELD)
			probe_engine_rebind(n->probes);
		if (n->pair != NULL)
			pairnet_cmd(n->pair, cmd);
		return;
	case PMSG_PUBLISH:
		if (m->len > FEEDS_ETCD_VALUE_MAX ||
		    (value = malloc(m->len + 1)) == NULL)
			goto bad;
		if (pmsg_text_decode(m->body, m->len, value, m->len + 1) == 0) {
			etcd_pub_set(n->etcd, value);
			/* The parent waits to hear this one was stored. */
			n->etcd_said = 0;
		}
		free(value);
		return;
	case PMSG_DOC:
		if (pmsg_doc_decode(m->body, m->len, &id, &text, &len) == -1)
			goto bad;
		http_answer(n->http, id, (const char *)text, len);
		return;
	default:
		break;
	}
bad:
	log_warnx("network process: unexpected message %u from the parent",
	    (unsigned)m->type);
	event_base_loopbreak(n->base);
}

static void
on_close(const char *why, void *arg)
{
	struct netproc_child	*n = arg;

	log_debug("network process: channel to the parent closed (%s)", why);
	event_base_loopbreak(n->base);
}

static void
on_sigterm(evutil_socket_t sig, short ev, void *arg)
{
	event_base_loopbreak(((struct netproc_child *)arg)->base);
}

static void
child_free(struct netproc_child *n)
{
	int	 i;

	pairnet_free(n->pair);
	if (n->pair_key != NULL)
		sodium_free(n->pair_key);
	http_server_free(n->http);
	etcd_pub_free(n->etcd);
	probe_engine_free(n->probes);
	for (i = 0; i < PROBE_NPATHS; i++)
		if (n->icmp_fd[i] != -1)
			close(n->icmp_fd[i]);
	if (n->key != NULL)
		sodium_free(n->key);
	if (n->push != NULL)
		event_free(n->push);
	if (n->sig_term != NULL)
		event_free(n->sig_term);
	chan_free(n->chan);
	if (n->base != NULL)
		event_base_free(n->base);
}

static int
parse_id(const char *s, unsigned long max, unsigned long *out)
{
	char	*end;

	errno = 0;
	*out = strtoul(s, &end, 10);
	return errno != 0 || *end != '\0' || end == s || *out > max ? -1 : 0;
}

/*
 * Nothing but stdin, stdout, stderr, the channel and the ICMP sockets
 * stays open: every descriptor from 3 up but those in keep[] (-1: none)
 * is closed.
 */
static void
close_others(const int *keep, size_t n)
{
	unsigned int	 from = 3, next;
	size_t		 i;

	for (;;) {
		next = ~0U;
		for (i = 0; i < n; i++)
			if (keep[i] >= (int)from && (unsigned)keep[i] < next)
				next = (unsigned)keep[i];
		if (next == ~0U) {
			syscall(SYS_close_range, from, ~0U, 0);
			return;
		}
		if (next > from)
			syscall(SYS_close_range, from, next - 1, 0);
		from = next + 1;
	}
}

/* A descriptor number from argv, or "-1". */
static int
parse_fd(const char *s, int *out)
{
	unsigned long	 v;

	if (strcmp(s, "-1") == 0) {
		*out = -1;
		return 0;
	}
	if (parse_id(s, INT_MAX, &v) == -1 || v < 3)
		return -1;
	*out = (int)v;
	return 0;
}

int
netproc_main(int argc, char **argv)
{
	struct netproc_child	 n;
	unsigned long		 fd, uid, gid, ppid;
	char			 err[256];
	int			 rc = 1, keep[1 + PROBE_NPATHS];

	memset(&n, 0, sizeof(n));
	/* argv[6..7]: raw ICMP sockets of the tunnel and underlay paths. */
	if (argc != 8 || parse_id(argv[1], INT_MAX, &fd) == -1 ||
	    parse_id(argv[2], UINT_MAX - 1, &uid) == -1 ||
	    parse_id(argv[3], UINT_MAX - 1, &gid) == -1 ||
	    parse_id(argv[5], INT_MAX, &ppid) == -1 ||
	    parse_fd(argv[6], &n.icmp_fd[PROBE_TUNNEL]) == -1 ||
	    parse_fd(argv[7], &n.icmp_fd[PROBE_UNDERLAY]) == -1) {
		fprintf(stderr, "grgw: the network process is started by the "
		    "daemon, not by hand\n");
		return 1;
	}
	log_init("grgw-net", LOG_LVL_INFO);
	prctl(PR_SET_NAME, "grgw-net", 0, 0, 0);
	keep[0] = (int)fd;
	keep[1] = n.icmp_fd[PROBE_TUNNEL];
	keep[2] = n.icmp_fd[PROBE_UNDERLAY];
	close_others(keep, nitems(keep));
	signal(SIGPIPE, SIG_IGN);
	tzset();		/* before the chroot hides /etc/localtime */
	if (sodium_init() < 0) {
		log_warnx("network process: libsodium failed to initialise");
		return 1;
	}
	if (sandbox_drop(argv[4], (uid_t)uid, (gid_t)gid, err,
	    sizeof(err)) == -1) {
		log_warnx("network process: %s", err);
		return 1;
	}
	/* After the drop: a change of ids clears the death signal. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) == -1 ||
	    (unsigned long)getppid() != ppid)
		return 1;
	if ((n.base = chan_loop_new()) == NULL ||
	    (n.chan = chan_new(n.base, (int)fd, on_message, on_close,
	    &n)) == NULL ||
	    (n.sig_term = evsignal_new(n.base, SIGTERM, on_sigterm,
	    &n)) == NULL || evsignal_add(n.sig_term, NULL) == -1) {
		log_warnx("network process: cannot set up its event loop");
		goto cleanup;
	}
	if (sandbox_seccomp(err, sizeof(err)) == -1) {
		log_warnx("network process: %s", err);
		goto cleanup;
	}
	event_base_dispatch(n.base);
	rc = 0;
cleanup:
	child_free(&n);
	return rc;
}
