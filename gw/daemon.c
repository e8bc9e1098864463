/*
 * The gateway daemon: one libevent loop that supervises charon, speaks VICI
 * to it, keeps the kernel's routing fail-closed, proves that the tunnel
 * carries traffic, and answers the CLI on a unix control socket.
 *
 * The tunnel state is never guessed from single events: every ike-updown
 * or child-updown event (and a periodic tick) triggers a list-sas, and
 * the state is derived from what charon really holds.  That stays right
 * with duplicate IKE_SAs, restarts and missed events alike.
 */
#include <sys/file.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <sodium.h>

#include "grgw.h"
#include "daemon.h"
#include "feeds.h"
#include "linkstate.h"
#include "probe.h"
#include "qosd.h"
#include "ipsec/ipsec.h"
#include "ipsec/vici.h"
#include "netlink/netlink.h"

#define VICI_RETRY_MS		100
#define VICI_GIVEUP_TRIES	100	/* then log loudly, keep trying slowly */
#define REFRESH_SECS		2
#define INITIATE_MIN_MS		250
#define INITIATE_MAX_MS		10000
#define TIEBREAK_DELAY_MS	1500
#define STOP_TERMINATE_MS	3000
#define CTL_LINE_MAX		256

struct ctl_conn {
	TAILQ_ENTRY(ctl_conn) entry;
	struct gwd	*d;
	int		fd;
	struct event	*ev;
	char		line[CTL_LINE_MAX];
	size_t		len;
	int		waiting_up;	/* an `up` waiting for the tunnel */
};

struct sa_scan {
	int		ike_established;
	int		ike_any;
	int		child_installed;
	char		ike_state[32];
	char		child_state[32];
	uint64_t	bytes_in, bytes_out, packets_in, packets_out;
};

struct gwd {
	struct event_base *base;
	const struct grgw_config *cfg;
	char		dir[PATH_MAX];
	enum grgw_dataplane dp;
	time_t		since;
	int		lock_fd;
	int		exit_code;

	struct gwnl	*nl;
	struct charon	*charon;
	struct qos_run	*qos;		/* classes, marks, shaper */
	struct qos_view	qos_view;	/* last status view */

	struct vici_client *vici;
	struct event	*vici_timer;
	unsigned	vici_tries;
	int		vici_ready;	/* registered, creds and conn loaded */

	/* tunnel */
	enum tunnel_state tunnel;
	time_t		tunnel_since;
	struct sa_scan	sa;		/* last committed list-sas view */
	struct sa_scan	scan;		/* list-sas in progress */
	int		listing;
	int		relist;
	int		child_up;	/* CHILD_SA installed (as acted on) */
	int		verified;	/* echo answered through the tunnel */
	int		routes_installed;
	struct echo_probe *echo;
	int		initiating;
	unsigned	initiate_backoff_ms;
	struct event	*initiate_timer;
	struct event	*refresh_timer;
	char		init_reason[256];	/* from control-log */
	char		last_error[512];
	int		auth_failed;

	/* link state */
	struct wanwatch	*wan;
	struct probe_engine *probes;
	struct link_view link;
	struct link_thresholds thresholds;
	int		link_known;	/* a first verdict was published */
	struct http_server *http;
	struct hooks	*hooks;
	struct etcd_pub	*etcd;
	char		statefile[PATH_MAX + 32];

	/* control */
	int		ctl_fd;
	struct event	*ctl_ev;
	TAILQ_HEAD(, ctl_conn) conns;
	int		stopping;
	int		purge;
	struct ctl_conn	*down_conn;
	struct event	*stop_timer;
	struct event	*sig_term, *sig_int, *sig_hup;
};

static void	vici_connect_cb(evutil_socket_t, short, void *);
static void	daemon_publish(struct gwd *, enum link_state old);
static void	daemon_refresh(struct gwd *);
static void	daemon_shutdown(struct gwd *, int purge);
static void	ctl_conn_free(struct ctl_conn *);

/* ---- control replies ---------------------------------------------------- */

static void
ctl_reply(struct ctl_conn *cc, const char *text, size_t len)
{
	struct timeval tv = { 2, 0 };
	size_t off = 0;
	ssize_t n;
	int flags;

	/* Replies are small; a bounded blocking write keeps this simple. */
	flags = fcntl(cc->fd, F_GETFL);
	fcntl(cc->fd, F_SETFL, flags & ~O_NONBLOCK);
	setsockopt(cc->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	while (off < len) {
		n = send(cc->fd, text + off, len - off, MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
}

static void
ctl_reply_close(struct ctl_conn *cc, const char *text)
{
	ctl_reply(cc, text, strlen(text));
	ctl_conn_free(cc);
}

/* Answer every `up` that is waiting; msg starts with "ok" or "error". */
static void
ctl_answer_waiters(struct gwd *d, const char *msg)
{
	struct ctl_conn *cc, *tmp;

	for (cc = TAILQ_FIRST(&d->conns); cc != NULL; cc = tmp) {
		tmp = TAILQ_NEXT(cc, entry);
		if (cc->waiting_up)
			ctl_reply_close(cc, msg);
	}
}

/* ---- tunnel state ------------------------------------------------------- */

static void
daemon_set_error(struct gwd *d, const char *fmt, ...) GRGW_PRINTF(2, 3);

static void
daemon_set_error(struct gwd *d, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(d->last_error, sizeof(d->last_error), fmt, ap);
	va_end(ap);
	log_warnx("%s", d->last_error);
}

/* Gather every input of the link-state machine into d->link. */
static void
link_gather(struct gwd *d)
{
	struct link_view *v = &d->link;
	int i;

	v->site = d->cfg->site.name;
	v->peer = d->cfg->peer.name;
	v->carrier = wanwatch_up(d->wan);
	v->charon_up = charon_pid(d->charon) != 0 && d->vici_ready;
	v->ike_up = d->sa.ike_established > 0;
	v->child_up = d->child_up;
	v->charon_restarts = charon_restarts(d->charon);
	v->tunnel_bytes_in = d->sa.bytes_in;
	v->tunnel_bytes_out = d->sa.bytes_out;
	v->tunnel_packets_in = d->sa.packets_in;
	v->tunnel_packets_out = d->sa.packets_out;
	for (i = 0; i < PROBE_NPATHS; i++) {
		if (d->probes != NULL)
			probe_engine_stats(d->probes, (enum probe_path)i,
			    &v->paths[i]);
	}
}

/*
 * Re-evaluate the link; on a change of state or reason, note the time and
 * publish it.  Cheap: called whenever any input may have changed.
 */
static void
link_refresh(struct gwd *d)
{
	struct link_view *v = &d->link;
	enum link_state state, old = v->state;
	enum link_reason reason, old_reason = v->reason;

	if (d->stopping)
		return;
	link_gather(d);
	linkstate_eval(v, d->auth_failed, &d->thresholds, &state, &reason);
	if (d->link_known && state == old && reason == old_reason)
		return;
	v->state = state;
	v->reason = reason;
	clock_gettime(CLOCK_REALTIME, &v->since);
	if (d->link_known)
		v->changes++;
	log_info("link to %s: %s (%s)%s%s", d->cfg->peer.name,
	    link_state_name(state), link_reason_name(reason),
	    d->link_known ? ", was " : "",
	    d->link_known ? link_state_name(old) : "");
	d->link_known = 1;
	daemon_publish(d, old);
}

static void
wan_changed(int up, void *arg)
{
	link_refresh(arg);
}

static void
probe_changed(enum probe_path path, int up, void *arg)
{
	struct gwd *d = arg;

	log_info("%s probes to %s: %s", path == PROBE_TUNNEL ? "tunnel" :
	    "underlay", d->cfg->peer.name, up ? "answered" : "lost");
	link_refresh(d);
}

static void
tunnel_set(struct gwd *d, enum tunnel_state s)
{
	if (d->tunnel == s)
		return;
	log_info("tunnel to %s: %s -> %s", d->cfg->peer.name,
	    tunnel_state_name(d->tunnel), tunnel_state_name(s));
	d->tunnel = s;
	d->tunnel_since = time(NULL);
}

static void
tunnel_update(struct gwd *d)
{
	if (d->child_up && d->verified)
		tunnel_set(d, TUNNEL_UP);
	else if (d->child_up || d->sa.ike_any || d->initiating)
		tunnel_set(d, TUNNEL_CONNECTING);
	else
		tunnel_set(d, TUNNEL_DOWN);
	link_refresh(d);
}

/* Which of our LAN addresses talks to which of the peer's for the echo. */
static int
echo_pick(const struct grgw_config *cfg, const struct grgw_addr **src,
    const struct grgw_addr **dst)
{
	static const int order[] = { AF_INET, AF_INET6 };
	size_t f;
	int i, j;

	for (f = 0; f < nitems(order); f++)
		for (i = 0; i < cfg->site.n_lan_addresses; i++)
			for (j = 0; j < cfg->peer.n_lan_addresses; j++)
				if (cfg->site.lan_addresses[i].family ==
				    order[f] &&
				    cfg->peer.lan_addresses[j].family ==
				    order[f]) {
					*src = &cfg->site.lan_addresses[i];
					*dst = &cfg->peer.lan_addresses[j];
					return 0;
				}
	return -1;
}

static void
echo_answered(void *arg)
{
	struct gwd *d = arg;
	char msg[256];

	echo_stop(d->echo);
	d->echo = NULL;
	d->verified = 1;
	d->auth_failed = 0;
	d->last_error[0] = '\0';
	d->initiate_backoff_ms = 0;
	tunnel_update(d);
	log_info("tunnel to %s carries traffic (%s data plane)",
	    d->cfg->peer.name, config_dataplane_name(d->dp));
	snprintf(msg, sizeof(msg), "ok tunnel %s <-> %s is up (%s data "
	    "plane)\n", d->cfg->site.name, d->cfg->peer.name,
	    config_dataplane_name(d->dp));
	ctl_answer_waiters(d, msg);
}

static void
child_became_up(struct gwd *d)
{
	const struct grgw_addr *src, *dst;

	d->child_up = 1;
	d->verified = 0;
	if (d->dp == GRGW_DP_KERNEL && !d->routes_installed) {
		if (gwnl_tunnel_routes_install(d->nl, d->cfg) == 0)
			d->routes_installed = 1;
		else
			daemon_set_error(d, "cannot route the peer prefixes "
			    "into %s", d->cfg->xfrm_interface);
	}
	qos_shaper_retry(d->qos, d->nl);
	if (echo_pick(d->cfg, &src, &dst) == 0) {
		echo_stop(d->echo);
		d->echo = echo_start(d->base, src, dst, echo_answered, d);
	}
	if (d->echo == NULL) {
		/* Nothing to ping: trust the installed CHILD_SA. */
		echo_answered(d);
	}
}

static void
child_became_down(struct gwd *d)
{
	d->child_up = 0;
	d->verified = 0;
	echo_stop(d->echo);
	d->echo = NULL;
	if (d->routes_installed) {
		/* Fail closed: the unreachable routes take over. */
		gwnl_tunnel_routes_remove(d->nl, d->cfg);
		d->routes_installed = 0;
	}
}

static void
initiate_schedule(struct gwd *d, unsigned ms)
{
	struct timeval tv;

	if (d->stopping || evtimer_pending(d->initiate_timer, NULL))
		return;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(d->initiate_timer, &tv);
}

static unsigned
initiate_next_backoff(struct gwd *d)
{
	if (d->initiate_backoff_ms == 0)
		d->initiate_backoff_ms = INITIATE_MIN_MS;
	else if (d->initiate_backoff_ms * 2 <= INITIATE_MAX_MS)
		d->initiate_backoff_ms *= 2;
	else
		d->initiate_backoff_ms = INITIATE_MAX_MS;
	return d->initiate_backoff_ms;
}

/* Act on a fresh view of charon's SAs. */
static void
sa_commit(struct gwd *d, const struct sa_scan *s)
{
	d->sa = *s;
	if (s->child_installed && !d->child_up)
		child_became_up(d);
	else if (!s->child_installed && d->child_up) {
		log_info("CHILD_SA to %s is gone", d->cfg->peer.name);
		child_became_down(d);
	}
	/* Nothing established and nothing in flight: try again. */
	if (!s->ike_any && !d->initiating && d->vici_ready && !d->stopping)
		initiate_schedule(d, initiate_next_backoff(d));
	tunnel_update(d);
}

/* ---- VICI --------------------------------------------------------------- */

static int
reply_ok(const struct vici_msg *m, char *err, size_t errlen)
{
	const char *e;

	if (m == NULL) {
		snprintf(err, errlen, "connection to charon lost");
		return 0;
	}
	if (m->type != VICI_CMD_RESPONSE) {
		snprintf(err, errlen, "charon does not know the command");
		return 0;
	}
	if (vici_get_bool(m->root, "success"))
		return 1;
	e = vici_get_str(m->root, "errmsg");
	snprintf(err, errlen, "%s", e != NULL ? e : "no reason given");
	return 0;
}

static int
daemon_send(struct gwd *d, struct vici_builder *b, vici_reply_cb cb)
{
	const uint8_t *pkt;
	size_t len;
	int rc = -1;

	if (b == NULL || d->vici == NULL)
		goto cleanup;
	if (vici_builder_finish(b, &pkt, &len) == -1) {
		log_warnx("internal error: malformed VICI request");
		goto cleanup;
	}
	rc = vici_client_request(d->vici, pkt, len, cb, d);
cleanup:
	vici_builder_free(b);	/* wipes the buffer (it may hold a key) */
	return rc;
}

static void
initiate_reply(const struct vici_msg *m, void *arg)
{
	struct gwd *d = arg;
	char err[256];
	unsigned ms;

	d->initiating = 0;
	if (m == NULL || d->stopping)
		return;
	if (reply_ok(m, err, sizeof(err))) {
		log_info("IKE and CHILD_SA to %s established",
		    d->cfg->peer.name);
		daemon_refresh(d);
		return;
	}
	ms = initiate_next_backoff(d);
	if (d->init_reason[0] != '\0') {
		daemon_set_error(d, "%s", d->init_reason);
		if (strncmp(d->init_reason, "authentication failed", 21) == 0) {
			char msg[600];

			d->auth_failed = 1;
			ms = INITIATE_MAX_MS;
			snprintf(msg, sizeof(msg), "error %s\n", d->last_error);
			ctl_answer_waiters(d, msg);
		}
	} else {
		daemon_set_error(d, "connecting to %s failed: %s",
		    d->cfg->peer.name, err);
	}
	tunnel_update(d);
	initiate_schedule(d, ms);
}

static void
initiate_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct gwd *d = arg;

	if (d->stopping || !d->vici_ready || d->initiating)
		return;
	if (d->sa.ike_established && d->child_up)
		return;
	log_info("initiating tunnel to %s", d->cfg->peer.name);
	d->init_reason[0] = '\0';
	if (daemon_send(d, conn_build_initiate(), initiate_reply) == 0)
		d->initiating = 1;
	tunnel_update(d);
}

static void
scan_ike_sa(struct sa_scan *s, const struct vici_node *ike)
{
	const struct vici_node *children, *child;
	const char *state, *v;

	if (ike->kind != VICI_NODE_SECTION)
		return;
	state = vici_get_str(ike, "state");
	s->ike_any = 1;
	if (state != NULL && strcmp(state, "ESTABLISHED") == 0)
		s->ike_established++;
	if (state != NULL && (s->ike_state[0] == '\0' ||
	    strcmp(state, "ESTABLISHED") == 0))
		snprintf(s->ike_state, sizeof(s->ike_state), "%s", state);
	if ((children = vici_find(ike, "child-sas")) == NULL ||
	    children->kind != VICI_NODE_SECTION)
		return;
	for (child = children->child; child != NULL; child = child->next) {
		if (child->kind != VICI_NODE_SECTION)
			continue;
		state = vici_get_str(child, "state");
		if (state != NULL && strcmp(state, "INSTALLED") == 0)
			s->child_installed++;
		if (state != NULL && (s->child_state[0] == '\0' ||
		    strcmp(state, "INSTALLED") == 0))
			snprintf(s->child_state, sizeof(s->child_state), "%s",
			    state);
		if ((v = vici_get_str(child, "bytes-in")) != NULL)
			s->bytes_in += strtoull(v, NULL, 10);
		if ((v = vici_get_str(child, "bytes-out")) != NULL)
			s->bytes_out += strtoull(v, NULL, 10);
		if ((v = vici_get_str(child, "packets-in")) != NULL)
			s->packets_in += strtoull(v, NULL, 10);
		if ((v = vici_get_str(child, "packets-out")) != NULL)
			s->packets_out += strtoull(v, NULL, 10);
	}
}

static void
list_sas_reply(const struct vici_msg *m, void *arg)
{
	struct gwd *d = arg;

	d->listing = 0;
	if (m == NULL || d->stopping)
		return;
	sa_commit(d, &d->scan);
	if (d->relist) {
		d->relist = 0;
		daemon_refresh(d);
	}
}

static void
daemon_refresh(struct gwd *d)
{
	if (!d->vici_ready || d->stopping)
		return;
	if (d->listing) {
		d->relist = 1;
		return;
	}
	memset(&d->scan, 0, sizeof(d->scan));
	if (daemon_send(d, conn_build_list_sas(), list_sas_reply) == 0)
		d->listing = 1;
}

static void
refresh_cb(evutil_socket_t fd, short ev, void *arg)
{
	daemon_refresh(arg);
	/* Loss and RTT drift between transitions: degraded is checked here. */
	link_refresh(arg);
}

static void
vici_event(const struct vici_msg *m, void *arg)
{
	struct gwd *d = arg;
	const struct vici_node *n;
	const char *line, *reason;

	if (strcmp(m->name, "list-sa") == 0) {
		for (n = m->root->child; n != NULL; n = n->next)
			scan_ike_sa(&d->scan, n);
	} else if (strcmp(m->name, "control-log") == 0) {
		line = vici_get_str(m->root, "msg");
		if (line == NULL)
			return;
		log_debug("charon: %s", line);
		reason = conn_classify_log(line);
		if (reason != NULL && d->init_reason[0] == '\0')
			snprintf(d->init_reason, sizeof(d->init_reason),
			    "%s (charon: %s)", reason, line);
	} else if (strcmp(m->name, "ike-updown") == 0 ||
	    strcmp(m->name, "child-updown") == 0) {
		log_info("%s: %s", m->name,
		    vici_get_bool(m->root, "up") ? "up" : "down");
		daemon_refresh(d);
	}
}

static void
vici_drop(struct gwd *d)
{
	vici_client_free(d->vici);
	d->vici = NULL;
	d->vici_ready = 0;
	d->initiating = 0;
	d->listing = 0;
	d->relist = 0;
}

static void
vici_closed(void *arg)
{
	struct gwd *d = arg;
	struct sa_scan none;

	log_warnx("connection to charon's VICI socket lost");
	vici_drop(d);
	memset(&none, 0, sizeof(none));
	sa_commit(d, &none);
	if (!d->stopping && charon_pid(d->charon) != 0) {
		struct timeval tv = { 1, 0 };

		evtimer_add(d->vici_timer, &tv);
	}
}

static void
setup_reply(const struct vici_msg *m, void *arg, const char *what)
{
	struct gwd *d = arg;
	char err[256], msg[600];

	if (m == NULL)
		return;		/* vici_closed() deals with it */
	if (m->type == VICI_EVENT_CONFIRM || reply_ok(m, err, sizeof(err)))
		return;
	if (m->type == VICI_EVENT_UNKNOWN)
		snprintf(err, sizeof(err), "unknown event");
	daemon_set_error(d, "charon refused %s: %s", what, err);
	snprintf(msg, sizeof(msg), "error %s\n", d->last_error);
	ctl_answer_waiters(d, msg);
}

static void
register_reply(const struct vici_msg *m, void *arg)
{
	setup_reply(m, arg, "an event registration");
}

static void
creds_reply(const struct vici_msg *m, void *arg)
{
	setup_reply(m, arg, "the credentials");
}

static void
conn_reply(const struct vici_msg *m, void *arg)
{
	struct gwd *d = arg;
	char err[256];
	unsigned delay;

	setup_reply(m, arg, "the connection");
	if (m == NULL || !reply_ok(m, err, sizeof(err)))
		return;
	d->vici_ready = 1;
	log_info("connection to %s loaded into charon", d->cfg->peer.name);
	/* charon (re)started: libipsec's ipsec0 is new, shape it. */
	if (d->dp == GRGW_DP_LIBIPSEC)
		qos_shaper_start(d->qos, d->nl);
	/*
	 * When both gateways start together, let one of them go first so
	 * that a single IKE_SA results; the other follows if nothing came.
	 */
	delay = strcmp(d->cfg->site.name, d->cfg->peer.name) < 0 ? 0 :
	    TIEBREAK_DELAY_MS;
	initiate_schedule(d, delay);
	daemon_refresh(d);
}

/* Read a whole (small) file; *buf is malloc'ed and must be wiped. */
static int
read_small_file(const char *path, uint8_t **buf, size_t *len)
{
	struct stat st;
	ssize_t n;
	int fd, rc = -1;

	*buf = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_size <= 0 || st.st_size > 1 << 20) {
		errno = EINVAL;
		goto cleanup;
	}
	if ((*buf = malloc((size_t)st.st_size)) == NULL)
		goto cleanup;
	n = read(fd, *buf, (size_t)st.st_size);
	if (n != st.st_size) {
		errno = EIO;
		free(*buf);
		*buf = NULL;
		goto cleanup;
	}
	*len = (size_t)n;
	rc = 0;
cleanup:
	close(fd);
	return rc;
}

static void
wipe_free(uint8_t *p, size_t len)
{
	if (p != NULL)
		sodium_memzero(p, len);
	free(p);
}

/* Load credentials and the connection; replies arrive in order. */
static int
vici_load(struct gwd *d)
{
	const struct grgw_config *cfg = d->cfg;
	uint8_t *cert = NULL, *ca = NULL, *key = NULL;
	size_t cert_len = 0, ca_len = 0, key_len = 0;
	struct grgw_psk psk = { NULL, 0 };
	char err[256];
	int rc = -1;

	if (cfg->auth == GRGW_AUTH_PSK) {
		if (psk_load(cfg->psk_file, &psk, err, sizeof(err)) == -1) {
			daemon_set_error(d, "%s", err);
			goto cleanup;
		}
		daemon_send(d, conn_build_load_shared(cfg, psk.key, psk.len),
		    creds_reply);
	} else {
		if (read_small_file(cfg->ca_file, &ca, &ca_len) == -1 ||
		    read_small_file(cfg->cert_file, &cert, &cert_len) == -1 ||
		    read_small_file(cfg->key_file, &key, &key_len) == -1) {
			daemon_set_error(d, "cannot read the certificate, key "
			    "or CA file: %s", strerror(errno));
			goto cleanup;
		}
		daemon_send(d, conn_build_load_cert(ca, ca_len, 1),
		    creds_reply);
		daemon_send(d, conn_build_load_cert(cert, cert_len, 0),
		    creds_reply);
		daemon_send(d, conn_build_load_key(key, key_len), creds_reply);
	}
	rc = daemon_send(d, conn_build_load_conn(cfg, d->dp, cert, cert_len,
	    ca, ca_len), conn_reply);
cleanup:
	psk_free(&psk);
	wipe_free(key, key_len);
	free(cert);
	free(ca);
	return rc;
}

static void
vici_connect_cb(evutil_socket_t fd, short ev, void *arg)
{
	static const char *const events[] = {
		"ike-updown", "child-updown", "control-log", "list-sa",
	};
	struct gwd *d = arg;
	struct timeval tv;
	size_t i;

	if (d->stopping || d->vici != NULL || charon_pid(d->charon) == 0)
		return;
	d->vici = vici_client_new(d->base, vici_event, vici_closed, d);
	if (d->vici == NULL ||
	    vici_client_connect(d->vici, charon_vici_path(d->charon)) == -1) {
		vici_drop(d);
		if (++d->vici_tries == VICI_GIVEUP_TRIES)
			log_warnx("charon's VICI socket %s does not answer; "
			    "see %s/charon.log", charon_vici_path(d->charon),
			    d->dir);
		tv.tv_sec = 0;
		tv.tv_usec = (d->vici_tries < VICI_GIVEUP_TRIES ?
		    VICI_RETRY_MS : 1000) * 1000;
		if (tv.tv_usec >= 1000000) {
			tv.tv_sec = 1;
			tv.tv_usec = 0;
		}
		evtimer_add(d->vici_timer, &tv);
		return;
	}
	d->vici_tries = 0;
	log_info("connected to charon over VICI");
	for (i = 0; i < nitems(events); i++)
		daemon_send(d, conn_build_register(events[i]), register_reply);
	if (vici_load(d) == -1) {
		char msg[600];

		snprintf(msg, sizeof(msg), "error %s\n", d->last_error);
		ctl_answer_waiters(d, msg);
	}
}

static void
charon_changed(int running, void *arg)
{
	struct gwd *d = arg;
	struct timeval tv = { 0, VICI_RETRY_MS * 1000 };
	struct sa_scan none;

	if (running) {
		d->vici_tries = 0;
		evtimer_add(d->vici_timer, &tv);
		return;
	}
	vici_drop(d);
	qos_shaper_lost(d->qos);
	memset(&none, 0, sizeof(none));
	sa_commit(d, &none);
	/* Its SAs and policies outlive it: none may meet the next charon's. */
	if (d->dp == GRGW_DP_KERNEL)
		(void)gwnl_xfrm_flush(d->cfg->if_id);
	if (!d->stopping)
		daemon_set_error(d, "charon exited; restarting it");
}

/* ---- control socket ------------------------------------------------------ */

static void
daemon_fill_view(struct gwd *d, struct status_view *v)
{
	memset(v, 0, sizeof(*v));
	v->cfg = d->cfg;
	v->daemon_running = 1;
	v->daemon_pid = getpid();
	v->daemon_since = d->since;
	v->charon_pid = charon_pid(d->charon);
	v->charon_running = v->charon_pid != 0;
	v->charon_restarts = charon_restarts(d->charon);
	v->dataplane = d->dp;
	v->tunnel = d->tunnel;
	v->tunnel_since = d->tunnel_since;
	v->ike_state = d->sa.ike_state[0] ? d->sa.ike_state : NULL;
	v->child_state = d->sa.child_state[0] ? d->sa.child_state : NULL;
	v->traffic_verified = d->verified;
	v->last_error = d->last_error[0] ? d->last_error : NULL;
	v->bytes_in = d->sa.bytes_in;
	v->bytes_out = d->sa.bytes_out;
	v->packets_in = d->sa.packets_in;
	v->packets_out = d->sa.packets_out;
	gwnl_record_count(d->nl, &v->kernel_block, &v->kernel_run);
	link_gather(d);
	v->link = &d->link;
	qos_fill_view(d->qos, d->nl, &d->qos_view);
	v->qos = d->qos != NULL ? &d->qos_view : NULL;
}

static void
ctl_command(struct ctl_conn *cc, const char *cmd)
{
	struct gwd *d = cc->d;
	struct status_view v;
	struct strbuf sb;

	if (strcmp(cmd, "status json") == 0 || strcmp(cmd, "status text") == 0) {
		daemon_fill_view(d, &v);
		strbuf_init(&sb);
		if (strcmp(cmd, "status json") == 0)
			status_render_json(&v, &sb);
		else
			status_render_text(&v, &sb);
		if (!sb.failed)
			ctl_reply(cc, sb.s, sb.len);
		strbuf_free(&sb);
		ctl_conn_free(cc);
	} else if (strcmp(cmd, "up") == 0) {
		if (d->stopping) {
			ctl_reply_close(cc, "error the daemon is stopping\n");
			return;
		}
		if (d->tunnel == TUNNEL_UP) {
			char msg[256];

			snprintf(msg, sizeof(msg), "ok tunnel %s <-> %s is up "
			    "(%s data plane)\n", d->cfg->site.name,
			    d->cfg->peer.name, config_dataplane_name(d->dp));
			ctl_reply_close(cc, msg);
			return;
		}
		cc->waiting_up = 1;
		/* An operator asking: try now rather than after backoff. */
		if (!d->initiating && d->vici_ready) {
			evtimer_del(d->initiate_timer);
			d->initiate_backoff_ms = 0;
			initiate_schedule(d, 0);
		}
	} else if (strcmp(cmd, "down") == 0 || strcmp(cmd, "down purge") == 0) {
		if (d->down_conn != NULL) {
			ctl_reply_close(cc, "error already stopping\n");
			return;
		}
		d->down_conn = cc;
		daemon_shutdown(d, strcmp(cmd, "down purge") == 0);
	} else {
		ctl_reply_close(cc, "error unknown request\n");
	}
}

static void
ctl_read_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct ctl_conn *cc = arg;
	char *nl;
	ssize_t n;

	n = read(fd, cc->line + cc->len, sizeof(cc->line) - 1 - cc->len);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		/* Client went away (e.g. `up` gave up waiting). */
		if (cc->d->down_conn == cc)
			cc->d->down_conn = NULL;
		ctl_conn_free(cc);
		return;
	}
	if (cc->waiting_up || cc->d->down_conn == cc)
		return;		/* one request per connection */
	cc->len += (size_t)n;
	cc->line[cc->len] = '\0';
	if ((nl = strchr(cc->line, '\n')) == NULL) {
		if (cc->len == sizeof(cc->line) - 1)
			ctl_reply_close(cc, "error request too long\n");
		return;
	}
	*nl = '\0';
	ctl_command(cc, cc->line);
}

static void
ctl_accept_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct gwd *d = arg;
	struct ctl_conn *cc;
	int cfd;

	cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (cfd == -1)
		return;
	if ((cc = calloc(1, sizeof(*cc))) == NULL) {
		close(cfd);
		return;
	}
	cc->d = d;
	cc->fd = cfd;
	cc->ev = event_new(d->base, cfd, EV_READ | EV_PERSIST, ctl_read_cb, cc);
	if (cc->ev == NULL) {
		close(cfd);
		free(cc);
		return;
	}
	TAILQ_INSERT_TAIL(&d->conns, cc, entry);
	event_add(cc->ev, NULL);
}

static void
ctl_conn_free(struct ctl_conn *cc)
{
	TAILQ_REMOVE(&cc->d->conns, cc, entry);
	event_free(cc->ev);
	close(cc->fd);
	free(cc);
}

static int
ctl_listen(struct gwd *d)
{
	struct sockaddr_un sun;
	mode_t old;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/control.sock",
	    d->dir) >= (int)sizeof(sun.sun_path)) {
		log_warnx("control socket path too long: %s/control.sock",
		    d->dir);
		return -1;
	}
	unlink(sun.sun_path);	/* stale: we hold the site lock */
	d->ctl_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (d->ctl_fd == -1)
		return -1;
	old = umask(0077);
	if (bind(d->ctl_fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    listen(d->ctl_fd, 16) == -1) {
		umask(old);
		log_warn("control socket %s", sun.sun_path);
		return -1;
	}
	umask(old);
	d->ctl_ev = event_new(d->base, d->ctl_fd, EV_READ | EV_PERSIST,
	    ctl_accept_cb, d);
	return d->ctl_ev == NULL ? -1 : event_add(d->ctl_ev, NULL);
}

/* ---- publishing the link state --------------------------------------------- */

/*
 * Every feed hears of each change; none of them can block the loop (the
 * hooks run as children, etcd is asynchronous, the file is small).
 */
static void
daemon_publish(struct gwd *d, enum link_state old)
{
	struct strbuf sb;

	if (statefile_write(d->statefile, &d->link) == -1)
		log_warn("cannot write the state file %s", d->statefile);
	if (d->hooks != NULL)
		hooks_run(d->hooks, &d->link, old);
	if (d->etcd != NULL) {
		strbuf_init(&sb);
		linkstate_render_json(&d->link, &sb);
		if (!sb.failed)
			etcd_pub_set(d->etcd, sb.s);
		strbuf_free(&sb);
	}
}

static void
http_status(struct strbuf *out, void *arg)
{
	struct status_view v;

	daemon_fill_view(arg, &v);
	status_render_json(&v, out);
}

static void
http_metrics(struct strbuf *out, void *arg)
{
	struct gwd *d = arg;
	struct status_view v;

	daemon_fill_view(d, &v);
	metrics_render(&v, &d->link, out);
}

/* The feeds that listen or connect: HTTP and etcd.  Hooks and the file
 * need nothing up front. */
static int
daemon_start_feeds(struct gwd *d, char *err, size_t errlen)
{
	const struct grgw_feeds_conf *f = &d->cfg->feeds;

	statefile_path(d->cfg, d->statefile, sizeof(d->statefile));
	if (f->hooks_dir[0] != '\0')
		d->hooks = hooks_new(d->base, f->hooks_dir, f->hooks_timeout);
	if (f->etcd_endpoint[0] != '\0') {
		d->etcd = etcd_pub_new(d->base, f->etcd_endpoint, f->etcd_key,
		    f->etcd_lease_ttl);
		if (d->etcd == NULL) {
			snprintf(err, errlen, "cannot publish to etcd at %s",
			    f->etcd_endpoint);
			return -1;
		}
	}
	if (f->http_listen[0] != '\0') {
		d->http = http_server_start(d->base, f->http_listen,
		    http_status, http_metrics, d, err, errlen);
		if (d->http == NULL)
			return -1;
	}
	return 0;
}

/* ---- shutdown -------------------------------------------------------------- */

static void
daemon_finish(evutil_socket_t fd, short ev, void *arg)
{
	struct gwd *d = arg;
	char path[PATH_MAX + 32];

	evtimer_del(d->stop_timer);
	vici_drop(d);
	charon_stop(d->charon);
	child_became_down(d);
	if (gwnl_cleanup(d->nl, d->purge) == -1)
		d->exit_code = 1;
	log_info("stopped; %s", d->purge ? "all kernel state removed" :
	    "fail-closed routes for the peer prefixes stay in place");
	snprintf(path, sizeof(path), "%s/control.sock", d->dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/charon.vici", d->dir);
	unlink(path);
	if (d->down_conn != NULL) {
		ctl_reply_close(d->down_conn, d->exit_code == 0 ? "ok\n" :
		    "error some kernel objects could not be removed; see the "
		    "daemon log\n");
		d->down_conn = NULL;
	}
	event_base_loopbreak(d->base);
}

static void
terminate_reply(const struct vici_msg *m, void *arg)
{
	struct gwd *d = arg;
	struct timeval now = { 0, 0 };

	/* Not inline: this runs inside the VICI client's callback. */
	evtimer_add(d->stop_timer, &now);
}

static void
daemon_shutdown(struct gwd *d, int purge)
{
	struct timeval tv = { STOP_TERMINATE_MS / 1000,
	    (STOP_TERMINATE_MS % 1000) * 1000 };

	if (d->stopping)
		return;
	d->stopping = 1;
	d->purge = purge;
	log_info("stopping%s", purge ? " (purge)" : "");
	evtimer_del(d->initiate_timer);
	evtimer_del(d->refresh_timer);
	ctl_answer_waiters(d, "error the daemon is stopping\n");
	/* Tell the peer first (IKE DELETE), so it fails closed at once. */
	if (d->vici != NULL && d->sa.ike_any &&
	    daemon_send(d, conn_build_terminate(), terminate_reply) == 0) {
		evtimer_add(d->stop_timer, &tv);
		return;
	}
	tv.tv_sec = 0;
	tv.tv_usec = 0;
	evtimer_add(d->stop_timer, &tv);
}

static void
signal_cb(evutil_socket_t sig, short ev, void *arg)
{
	struct gwd *d = arg;

	if (sig == SIGHUP) {
		log_info("SIGHUP: configuration reload is not supported; "
		    "run `grgw down` and `grgw up` to apply a new one");
		return;
	}
	log_info("signal %d received", (int)sig);
	daemon_shutdown(d, 0);
}

/* ---- start-up ------------------------------------------------------------- */

static int
host_has_address(const struct grgw_addr *a)
{
	struct ifaddrs *ifa, *i;
	int found = 0;

	if (getifaddrs(&ifa) == -1)
		return 1;	/* cannot tell: let charon complain */
	for (i = ifa; i != NULL && !found; i = i->ifa_next) {
		if (i->ifa_addr == NULL || i->ifa_addr->sa_family != a->family)
			continue;
		if (a->family == AF_INET)
			found = memcmp(&((struct sockaddr_in *)
			    i->ifa_addr)->sin_addr, a->addr, 4) == 0;
		else
			found = memcmp(&((struct sockaddr_in6 *)
			    i->ifa_addr)->sin6_addr, a->addr, 16) == 0;
	}
	freeifaddrs(ifa);
	return found;
}

/* The configuration against this host: names what does not match. */
static int
daemon_check_host(const struct grgw_config *cfg, char *err, size_t errlen)
{
	char buf[INET6_ADDRSTRLEN];
	int i;

	if (if_nametoindex(cfg->site.wan_interface) == 0) {
		snprintf(err, errlen, "%s: wan_interface %s does not exist on "
		    "this host", cfg->path, cfg->site.wan_interface);
		return -1;
	}
	for (i = 0; i < cfg->site.n_lan_interfaces; i++) {
		if (if_nametoindex(cfg->site.lan_interfaces[i]) == 0) {
			snprintf(err, errlen, "%s: lan_interface %s does not "
			    "exist on this host", cfg->path,
			    cfg->site.lan_interfaces[i]);
			return -1;
		}
	}
	if (!host_has_address(&cfg->site.wan_address)) {
		snprintf(err, errlen, "%s: wan_address %s is not an address "
		    "of this host", cfg->path, addr_fmt(&cfg->site.wan_address,
		    buf, sizeof(buf)));
		return -1;
	}
	for (i = 0; i < cfg->site.n_lan_addresses; i++) {
		if (!host_has_address(&cfg->site.lan_addresses[i])) {
			snprintf(err, errlen, "%s: lan_address %s is not an "
			    "address of this host", cfg->path,
			    addr_fmt(&cfg->site.lan_addresses[i], buf,
			    sizeof(buf)));
			return -1;
		}
	}
	return 0;
}

static int
daemon_pick_dataplane(const struct grgw_config *cfg,
    enum grgw_dataplane *out, char *err, size_t errlen)
{
	int kernel = gwnl_kernel_ipsec_available();

	switch (cfg->dataplane) {
	case GRGW_DP_KERNEL:
		if (!kernel) {
			snprintf(err, errlen, "%s: dataplane mode = kernel, but "
			    "this kernel lacks ESP or xfrm interfaces; use "
			    "mode = libipsec or auto", cfg->path);
			return -1;
		}
		*out = GRGW_DP_KERNEL;
		return 0;
	case GRGW_DP_AUTO:
		if (kernel) {
			*out = GRGW_DP_KERNEL;
			return 0;
		}
		/* FALLTHROUGH */
	case GRGW_DP_LIBIPSEC:
	default:
		if (access("/dev/net/tun", R_OK | W_OK) == -1) {
			snprintf(err, errlen, "the libipsec data plane needs "
			    "/dev/net/tun, which is missing or not accessible");
			return -1;
		}
		*out = GRGW_DP_LIBIPSEC;
		return 0;
	}
}

/* WAN watching and the probe engine; the probe key never outlives this. */
static int
daemon_start_link(struct gwd *d, char *err, size_t errlen)
{
	const struct grgw_config *cfg = d->cfg;
	struct probe_settings ps;
	struct grgw_psk secret = { NULL, 0 };
	uint8_t *key;
	const char *path;
	char why[256];
	int rc = -1;

	d->thresholds.degraded_loss = cfg->probe.degraded_loss;
	d->thresholds.degraded_rtt_ms = cfg->probe.degraded_rtt_ms;
	d->wan = wanwatch_new(d->base, cfg->site.wan_interface, wan_changed,
	    d);
	if (d->wan == NULL) {
		snprintf(err, errlen, "cannot watch the WAN interface %s",
		    cfg->site.wan_interface);
		return -1;
	}
	path = cfg->probe.key_file[0] != '\0' ? cfg->probe.key_file :
	    cfg->psk_file;
	if (psk_load(path, &secret, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "probe key: %s", why);
		return -1;
	}
	if ((key = sodium_malloc(PROBE_KEY_LEN)) == NULL) {
		snprintf(err, errlen, "out of secure memory");
		goto cleanup;
	}
	probe_key_derive(secret.key, secret.len, key);
	ps.interval_ms = cfg->probe.interval_ms;
	ps.multiplier = cfg->probe.multiplier;
	ps.recover = cfg->probe.recover;
	ps.port = (uint16_t)cfg->probe.port;
	d->probes = probe_engine_new(d->base, cfg, &ps, key, probe_changed, d);
	sodium_free(key);
	if (d->probes == NULL || probe_engine_start(d->probes) == -1) {
		snprintf(err, errlen, "cannot start the link probes on UDP port "
		    "%u", (unsigned)cfg->probe.port);
		goto cleanup;
	}
	link_refresh(d);
	rc = 0;
cleanup:
	psk_free(&secret);
	return rc;
}

static int
mkdir_p(const char *dir, mode_t mode)
{
	char path[PATH_MAX], *p;

	snprintf(path, sizeof(path), "%s", dir);
	for (p = path + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		if (mkdir(path, 0755) == -1 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(path, mode) == -1 && errno != EEXIST)
		return -1;
	return chmod(path, mode);
}

static void
ready_report(int *fd, const char *fmt, ...) GRGW_PRINTF(2, 3);

static void
ready_report(int *fd, const char *fmt, ...)
{
	char line[768];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	if (*fd >= 0) {
		if (write(*fd, line, (size_t)n) < 0)
			log_warn("cannot report start-up to the CLI");
		close(*fd);
		*fd = -1;
	}
}

static int
daemon_lock(struct gwd *d, char *err, size_t errlen)
{
	char path[PATH_MAX + 16], buf[32];
	int n;

	snprintf(path, sizeof(path), "%s/grgw.pid", d->dir);
	d->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (d->lock_fd == -1) {
		snprintf(err, errlen, "cannot open %s: %s", path,
		    strerror(errno));
		return -1;
	}
	if (flock(d->lock_fd, LOCK_EX | LOCK_NB) == -1) {
		snprintf(err, errlen, "a grgw daemon for site %s is already "
		    "running (lock %s)", d->cfg->site.name, path);
		close(d->lock_fd);
		d->lock_fd = -1;
		return -1;
	}
	n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (ftruncate(d->lock_fd, 0) == -1 ||
	    pwrite(d->lock_fd, buf, (size_t)n, 0) != n)
		log_warn("cannot write %s", path);
	return 0;
}

static void
daemon_free(struct gwd *d)
{
	struct ctl_conn *cc;
	char path[PATH_MAX + 16];

	while ((cc = TAILQ_FIRST(&d->conns)) != NULL)
		ctl_conn_free(cc);
	echo_stop(d->echo);
	http_server_free(d->http);
	hooks_free(d->hooks);
	etcd_pub_free(d->etcd);
	probe_engine_free(d->probes);
	wanwatch_free(d->wan);
	vici_client_free(d->vici);
	charon_free(d->charon);
	qos_run_free(d->qos);
	gwnl_close(d->nl);
	if (d->ctl_ev != NULL)
		event_free(d->ctl_ev);
	if (d->ctl_fd >= 0)
		close(d->ctl_fd);
	if (d->lock_fd >= 0) {
		snprintf(path, sizeof(path), "%s/grgw.pid", d->dir);
		unlink(path);
		close(d->lock_fd);
	}
	if (d->vici_timer != NULL)
		event_free(d->vici_timer);
	if (d->initiate_timer != NULL)
		event_free(d->initiate_timer);
	if (d->refresh_timer != NULL)
		event_free(d->refresh_timer);
	if (d->stop_timer != NULL)
		event_free(d->stop_timer);
	if (d->sig_term != NULL)
		event_free(d->sig_term);
	if (d->sig_int != NULL)
		event_free(d->sig_int);
	if (d->sig_hup != NULL)
		event_free(d->sig_hup);
	if (d->base != NULL)
		event_base_free(d->base);
}

int
daemon_run(const struct grgw_config *cfg, int ready_fd)
{
	struct timeval refresh = { REFRESH_SECS, 0 };
	struct gwd d;
	char err[512], record[PATH_MAX + 16];
	int kernel_touched = 0;

	memset(&d, 0, sizeof(d));
	d.cfg = cfg;
	d.ctl_fd = -1;
	d.lock_fd = -1;
	d.since = time(NULL);
	d.tunnel_since = d.since;
	TAILQ_INIT(&d.conns);
	config_site_dir(cfg, d.dir, sizeof(d.dir));
	signal(SIGPIPE, SIG_IGN);

	if (sodium_init() < 0) {
		snprintf(err, sizeof(err), "libsodium failed to initialise");
		goto fail;
	}
	if (mkdir_p(d.dir, 0700) == -1) {
		snprintf(err, sizeof(err), "cannot create %s: %s", d.dir,
		    strerror(errno));
		goto fail;
	}
	if (daemon_lock(&d, err, sizeof(err)) == -1)
		goto fail;
	charon_kill_stale(d.dir);
	if (daemon_check_host(cfg, err, sizeof(err)) == -1 ||
	    daemon_pick_dataplane(cfg, &d.dp, err, sizeof(err)) == -1)
		goto fail;

	if ((d.base = event_base_new()) == NULL) {
		snprintf(err, sizeof(err), "cannot create the event loop");
		goto fail;
	}
	d.vici_timer = evtimer_new(d.base, vici_connect_cb, &d);
	d.initiate_timer = evtimer_new(d.base, initiate_cb, &d);
	d.refresh_timer = event_new(d.base, -1, EV_PERSIST, refresh_cb, &d);
	d.stop_timer = evtimer_new(d.base, daemon_finish, &d);
	d.sig_term = evsignal_new(d.base, SIGTERM, signal_cb, &d);
	d.sig_int = evsignal_new(d.base, SIGINT, signal_cb, &d);
	d.sig_hup = evsignal_new(d.base, SIGHUP, signal_cb, &d);
	if (d.vici_timer == NULL || d.initiate_timer == NULL ||
	    d.refresh_timer == NULL || d.stop_timer == NULL ||
	    d.sig_term == NULL || d.sig_int == NULL || d.sig_hup == NULL) {
		snprintf(err, sizeof(err), "out of memory");
		goto fail;
	}
	evsignal_add(d.sig_term, NULL);
	evsignal_add(d.sig_int, NULL);
	evsignal_add(d.sig_hup, NULL);

	/* Kernel first: fail closed before anything can be sent. */
	snprintf(record, sizeof(record), "%s/kernel.record", d.dir);
	if (gwnl_open(record, &d.nl) != 0) {
		snprintf(err, sizeof(err), "cannot open a netlink socket");
		goto fail;
	}
	kernel_touched = 1;
	if (gwnl_block_install(d.nl, cfg) != 0) {
		snprintf(err, sizeof(err), "cannot install the fail-closed "
		    "routes for the peer prefixes (see the log)");
		goto fail;
	}
	if (gwnl_forwarding_enable(d.nl, cfg) != 0) {
		snprintf(err, sizeof(err), "cannot enable IP forwarding");
		goto fail;
	}
	if (gwnl_failfast_install(d.nl, cfg) != 0) {
		snprintf(err, sizeof(err), "cannot install the fail-fast "
		    "nftables table %s (see the log)", GWNL_FAILFAST_TABLE);
		goto fail;
	}
	if (d.dp == GRGW_DP_KERNEL && gwnl_xfrmi_create(d.nl, cfg) != 0) {
		snprintf(err, sizeof(err), "cannot create the xfrm interface "
		    "%s", cfg->xfrm_interface);
		goto fail;
	}
	/* SAs a crashed predecessor's charon left behind. */
	if (d.dp == GRGW_DP_KERNEL)
		(void)gwnl_xfrm_flush(cfg->if_id);
	/* QoS degrades (and says so in the status); it never stops us. */
	if ((d.qos = qos_run_new(cfg, d.dp)) != NULL) {
		qos_rules_start(d.qos, d.nl);
		if (d.dp == GRGW_DP_KERNEL)
			qos_shaper_start(d.qos, d.nl);
	}
	if (ctl_listen(&d) == -1) {
		snprintf(err, sizeof(err), "cannot listen on the control "
		    "socket in %s", d.dir);
		goto fail;
	}
	d.charon = charon_new(d.base, cfg, d.dir, d.dp, charon_changed, &d);
	if (d.charon == NULL || charon_start(d.charon) == -1) {
		snprintf(err, sizeof(err), "cannot start charon (%s); see %s",
		    cfg->charon_path, d.dir);
		goto fail;
	}
	if (daemon_start_feeds(&d, err, sizeof(err)) == -1 ||
	    daemon_start_link(&d, err, sizeof(err)) == -1)
		goto fail;
	evtimer_add(d.refresh_timer, &refresh);
	log_info("grgw %s started for site %s, peer %s, %s data plane",
	    GRGW_VERSION, cfg->site.name, cfg->peer.name,
	    config_dataplane_name(d.dp));
	ready_report(&ready_fd, "ok");

	event_base_dispatch(d.base);
	daemon_free(&d);
	return d.exit_code;

fail:
	log_warnx("start-up failed: %s", err);
	ready_report(&ready_fd, "error %s", err);
	if (d.charon != NULL)
		charon_stop(d.charon);
	/* Nothing half-configured: undo all but the fail-closed layer. */
	if (kernel_touched)
		gwnl_cleanup(d.nl, 0);
	if (d.ctl_fd >= 0) {
		snprintf(record, sizeof(record), "%s/control.sock", d.dir);
		unlink(record);
	}
	daemon_free(&d);
	return 2;
}
