/*
 * The conversation with charon over VICI: connect to its socket, register
 * for events, load the credentials and the connection, initiate it (with
 * backoff, again whenever nothing is established), list the SAs on every
 * event and every refresh, and terminate on request.
 *
 * What it learns reaches the owner through one callback (struct
 * ike_news): ready, a fresh view of the SAs, a failure in words, the
 * connection lost.  The SA view is never guessed from single events:
 * every ike-updown or child-updown event triggers a list-sas, and the
 * view is what charon really holds.  That stays right with duplicate
 * IKE_SAs, restarts and missed events alike.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <sodium.h>

#include "grgw.h"
#include "ipsec/ipsec.h"
#include "ipsec/vici.h"

/*
 * charon's VICI socket appears some tens of ms after it starts: poll for it
 * often, a failed connect to a unix socket costs next to nothing.
 */
#define VICI_RETRY_MS		10
#define VICI_LOST_RETRY_MS	1000
#define VICI_GIVEUP_TRIES	1000	/* then log loudly, keep trying slowly */
#define INITIATE_MIN_MS		250
#define INITIATE_MAX_MS		10000
#define IKE_KEY_FILE_MAX	(64 * 1024)	/* a PEM private key */
#define IKE_REAUTH_WAIT_S	60	/* a re-authentication is over by then */
#define IKE_RETIRE_GRACE_MS	2000	/* a replaced CHILD_SA lingers */

struct ike {
	struct event_base	*base;
	const struct grgw_config *cfg;
	enum grgw_dataplane	 dp;
	const char		*vici_path;
	ike_cb			 cb;
	void			*arg;

	struct vici_client	*vici;
	/*
	 * initiate has a connection of its own: charon answers the requests
	 * of one connection in order, and an initiate waits for the IKE
	 * exchanges (retransmissions included), which would hold up every
	 * list-sas behind it: the tunnel the peer initiated meanwhile would
	 * go unseen until then.  NULL: initiate goes on vici.
	 */
	struct vici_client	*vici_init;
	struct event		*connect_timer;
	unsigned		 connect_tries;
	int			 wanted;	/* charon runs: stay connected */
	int			 ready;		/* creds and conn loaded */

	struct event		*initiate_timer;
	int			 initiating;
	unsigned		 backoff_ms;
	char			 init_reason[256];	/* from control-log */

	struct ike_sas		 sas;		/* last complete list-sas */
	struct ike_sas		 scan;		/* list-sas in progress */
	int			 listing;
	int			 relist;

	/*
	 * The certificates of [auth] as last loaded, and what is wrong with
	 * them ("" if nothing): an expired certificate of our own is refused
	 * by the peer, which only says AUTHENTICATION_FAILED.
	 */
	struct ike_certs	 certs;
	char			 cred_problem[256];

	int			 deduping;	/* a duplicate IKE_SA goes */
	/*
	 * Our own re-authentication (make-before-break) runs: for a while
	 * two IKE_SAs are established, the new one initiated by us, and
	 * dedup_check() must not take that for a simultaneous start (it
	 * could delete the new one, and the tunnel with it).  1: asked,
	 * 2: both seen; over once one is left, or at reauth_deadline.
	 */
	int			 reauthing;
	struct timespec		 reauth_deadline;	/* CLOCK_MONOTONIC */
	int			 stopping;	/* no more initiating */
	ike_done_cb		 done;		/* terminate in progress */
	void			*done_arg;

	uint8_t			 psk_fp[32];	/* of the primary key loaded */
	struct child_sa_ref	 old_child[IKE_CHILD_REFS];	/* a reload */
	int			 n_old_child;	/* replaces these */
	struct event		*retire_timer;	/* then deletes them */
};

static void	ike_refresh_now(struct ike *);
static void	reauth_reply(const struct vici_msg *, void *);
static void	retire_old_children(evutil_socket_t, short, void *);

static void
ike_tell(struct ike *k, enum ike_what what, const char *error,
    int auth_failed)
{
	struct ike_news n;

	n.what = what;
	n.sas = &k->sas;
	n.error = error;
	n.auth_failed = auth_failed;
	k->cb(&n, k->arg);
}

static void
ike_vtell(struct ike *k, enum ike_what what, int auth_failed,
    const char *fmt, va_list ap)
{
	char	 msg[512];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	ike_tell(k, what, msg, auth_failed);
}

static void
ike_fail(struct ike *k, int auth_failed, const char *fmt, ...)
    GRGW_PRINTF(3, 4);

static void
ike_fail(struct ike *k, int auth_failed, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	ike_vtell(k, IKE_FAILED, auth_failed, fmt, ap);
	va_end(ap);
}

/* charon stopped answering: what it was asked, and for how long. */
static void
ike_hung(struct ike *k, const char *fmt, ...) GRGW_PRINTF(2, 3);

static void
ike_hung(struct ike *k, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	ike_vtell(k, IKE_HUNG, 0, fmt, ap);
	va_end(ap);
}

/* ---- requests ------------------------------------------------------------ */

/* 1 if m is a successful reply; else 0 with the reason in err. */
static int
reply_ok(const struct vici_msg *m, char *err, size_t errlen)
{
	const char	*e;

	if (m == NULL) {
		err_set(err, errlen, "connection to charon lost");
		return 0;
	}
	if (m->type != VICI_CMD_RESPONSE) {
		err_set(err, errlen, "charon does not know the command");
		return 0;
	}
	if (vici_get_bool(m->root, "success"))
		return 1;
	e = vici_get_str(m->root, "errmsg");
	err_set(err, errlen, "%s", e != NULL ? e : "no reason given");
	return 0;
}

/*
 * Send a request built by b (freed and wiped here: it may hold a key);
 * charon must answer within deadline_ms (see VICI_DEADLINE_MS).
 */
static int
ike_send_on(struct ike *k, struct vici_client *c, struct vici_builder *b,
    unsigned deadline_ms, vici_reply_cb cb)
{
	const uint8_t	*pkt;
	size_t		 len;
	int		 rc = -1;

	if (b == NULL || c == NULL)
		goto cleanup;
	if (vici_builder_finish(b, &pkt, &len) == -1) {
		log_warnx("internal error: malformed VICI request");
		goto cleanup;
	}
	rc = vici_client_request_within(c, pkt, len, deadline_ms, cb, k);
cleanup:
	vici_builder_free(b);
	return rc;
}

static int
ike_send_within(struct ike *k, struct vici_builder *b, unsigned deadline_ms,
    vici_reply_cb cb)
{
	return ike_send_on(k, k->vici, b, deadline_ms, cb);
}

/* The same for a command that a healthy charon answers at once. */
static int
ike_send(struct ike *k, struct vici_builder *b, vici_reply_cb cb)
{
	return ike_send_within(k, b, VICI_DEADLINE_MS, cb);
}

/* ---- initiating -------------------------------------------------------- */

static void
initiate_schedule(struct ike *k, unsigned ms)
{
	struct timeval	 tv;

	if (k->stopping || evtimer_pending(k->initiate_timer, NULL))
		return;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(k->initiate_timer, &tv);
}

static unsigned
initiate_next_backoff(struct ike *k)
{
	if (k->backoff_ms == 0)
		k->backoff_ms = INITIATE_MIN_MS;
	else if (k->backoff_ms * 2 <= INITIATE_MAX_MS)
		k->backoff_ms *= 2;
	else
		k->backoff_ms = INITIATE_MAX_MS;
	return k->backoff_ms;
}

static void
initiate_reply(const struct vici_msg *m, void *arg)
{
	struct ike	*k = arg;
	char		 err[256];
	unsigned	 ms;
	int		 auth;

	k->initiating = 0;
	if (m == NULL || k->stopping)
		return;
	if (reply_ok(m, err, sizeof(err))) {
		log_info("IKE and CHILD_SA to %s established",
		    k->cfg->peer.name);
		ike_refresh_now(k);
		return;
	}
	if (k->sas.ike_established && k->sas.child_installed) {
		/* The peer's initiation got there first: nothing failed. */
		log_info("initiating to %s ended (%s); the tunnel the peer "
		    "initiated is up", k->cfg->peer.name, err);
		return;
	}
	ms = initiate_next_backoff(k);
	if (k->init_reason[0] != '\0') {
		auth = strncmp(k->init_reason, "authentication failed",
		    21) == 0;
		if (auth)
			ms = INITIATE_MAX_MS;
		if (auth && k->cred_problem[0] != '\0')
			ike_fail(k, auth, "authentication failed: %s; %s",
			    k->cred_problem, k->init_reason +
			    strspn(k->init_reason + 21, ": ") + 21);
		else
			ike_fail(k, auth, "%s", k->init_reason);
	} else
		ike_fail(k, 0, "connecting to %s failed: %s",
		    k->cfg->peer.name, err);
	initiate_schedule(k, ms);
}

static void
initiate_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct ike	*k = arg;

	if (k->stopping || !k->ready || k->initiating)
		return;
	if (k->sas.ike_established && k->sas.child_installed)
		return;
	log_info("initiating tunnel to %s", k->cfg->peer.name);
	k->init_reason[0] = '\0';
	if (ike_send_on(k, k->vici_init != NULL ? k->vici_init : k->vici,
	    conn_build_initiate(IKE_INITIATE_WAIT_MS),
	    IKE_INITIATE_DEADLINE_MS, initiate_reply) == 0)
		k->initiating = 1;
	ike_tell(k, IKE_SAS, NULL, 0);
}

/* ---- list-sas -------------------------------------------------------------- */

static void
scan_child_ref(struct ike_sas *s, const struct vici_node *child)
{
	struct child_sa_ref	*ref;
	const char		*v;

	if (s->n_child >= IKE_CHILD_REFS)
		return;
	ref = &s->child[s->n_child++];
	v = vici_get_str(child, "uniqueid");
	ref->uniqueid = v != NULL ? (unsigned)strtoul(v, NULL, 10) : 0;
	v = vici_get_str(child, "spi-in");
	snprintf(ref->spi_in, sizeof(ref->spi_in), "%s", v != NULL ? v : "");
	v = vici_get_str(child, "spi-out");
	snprintf(ref->spi_out, sizeof(ref->spi_out), "%s", v != NULL ? v : "");
}

static void
scan_ike_sa(struct ike_sas *s, const struct vici_node *ike)
{
	const struct vici_node	*children, *child;
	const char		*state, *v;
	struct ike_sa_ref	*ref;

	if (ike->kind != VICI_NODE_SECTION)
		return;
	state = vici_get_str(ike, "state");
	s->ike_any = 1;
	if (state != NULL && strcmp(state, "ESTABLISHED") == 0) {
		s->ike_established++;
		if (s->n_est < IKE_SAS_REFS) {
			ref = &s->est[s->n_est++];
			v = vici_get_str(ike, "uniqueid");
			ref->uniqueid = v != NULL ?
			    (unsigned)strtoul(v, NULL, 10) : 0;
			v = vici_get_str(ike, "initiator");
			ref->we_initiated = v != NULL &&
			    strcmp(v, "yes") == 0;
			v = vici_get_str(ike, "initiator-spi");
			snprintf(ref->initiator_spi,
			    sizeof(ref->initiator_spi), "%s",
			    v != NULL ? v : "");
		}
	}
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
		if (state != NULL && strcmp(state, "INSTALLED") == 0) {
			s->child_installed++;
			scan_child_ref(s, child);
		}
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
dedup_reply(const struct vici_msg *m, void *arg)
{
	struct ike	*k = arg;
	char		 err[256];

	k->deduping = 0;
	if (m == NULL || k->stopping)
		return;
	if (!reply_ok(m, err, sizeof(err)))
		log_warnx("deleting a duplicate IKE_SA: %s", err);
	ike_refresh_now(k);
}

/* Whether our re-authentication still runs (see reauthing). */
static int
reauth_running(struct ike *k)
{
	struct timespec	 now;

	if (!k->reauthing)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec > k->reauth_deadline.tv_sec ||
	    (k->reauthing == 2 && k->sas.n_est <= 1)) {
		k->reauthing = 0;
		return 0;
	}
	if (k->sas.n_est >= 2)
		k->reauthing = 2;
	return 1;
}

/* Re-authenticate the IKE_SA make-before-break (new key, certificate). */
static void
ike_reauth(struct ike *k)
{
	clock_gettime(CLOCK_MONOTONIC, &k->reauth_deadline);
	k->reauth_deadline.tv_sec += IKE_REAUTH_WAIT_S;
	if (ike_send(k, conn_build_reauth(), reauth_reply) == 0)
		k->reauthing = 1;
}

/*
 * Both ends initiate at once: when that made two IKE_SAs, delete ours if
 * it is not the one both ends keep (see conn_duplicate_to_delete()).
 */
static void
dedup_check(struct ike *k)
{
	int	 i;

	if (k->deduping || k->stopping || !k->ready || reauth_running(k))
		return;
	i = conn_duplicate_to_delete(&k->sas,
	    strcmp(k->cfg->site.name, k->cfg->peer.name) < 0);
	if (i < 0)
		return;
	log_info("%d IKE_SAs with %s (both ends initiated): deleting the "
	    "one this end initiated (#%u)", k->sas.n_est, k->cfg->peer.name,
	    k->sas.est[i].uniqueid);
	if (ike_send(k, conn_build_terminate_ike(k->sas.est[i].uniqueid),
	    dedup_reply) == 0)
		k->deduping = 1;
}

/* A complete view: tell the owner, and initiate if nothing is there. */
static void
sas_commit(struct ike *k, const struct ike_sas *s)
{
	k->sas = *s;
	if (!s->ike_any && !k->initiating && k->ready && !k->stopping)
		initiate_schedule(k, initiate_next_backoff(k));
	dedup_check(k);
	ike_tell(k, IKE_SAS, NULL, 0);
}

static void
list_sas_reply(const struct vici_msg *m, void *arg)
{
	struct ike	*k = arg;

	k->listing = 0;
	if (m == NULL || k->stopping)
		return;
	sas_commit(k, &k->scan);
	if (k->relist) {
		k->relist = 0;
		ike_refresh_now(k);
	}
}

static void
ike_refresh_now(struct ike *k)
{
	if (!k->ready || k->stopping)
		return;
	if (k->listing) {
		k->relist = 1;
		return;
	}
	memset(&k->scan, 0, sizeof(k->scan));
	if (ike_send(k, conn_build_list_sas(), list_sas_reply) == 0)
		k->listing = 1;
}

/* ---- events and the connection ------------------------------------------------ */

static void
vici_event(const struct vici_msg *m, void *arg)
{
	struct ike		*k = arg;
	const struct vici_node	*n;
	const char		*line, *reason;

	if (strcmp(m->name, "list-sa") == 0) {
		for (n = m->root->child; n != NULL; n = n->next)
			scan_ike_sa(&k->scan, n);
	} else if (strcmp(m->name, "control-log") == 0) {
		if ((line = vici_get_str(m->root, "msg")) == NULL)
			return;
		log_debug("charon: %s", line);
		reason = conn_classify_log(line);
		if (reason != NULL && k->init_reason[0] == '\0')
			snprintf(k->init_reason, sizeof(k->init_reason),
			    "%s (charon: %s)", reason, line);
	} else if (strcmp(m->name, "ike-updown") == 0 ||
	    strcmp(m->name, "child-updown") == 0) {
		log_info("%s: %s", m->name,
		    vici_get_bool(m->root, "up") ? "up" : "down");
		ike_refresh_now(k);
	}
}

static void
vici_drop(struct ike *k)
{
	vici_client_free(k->vici);
	k->vici = NULL;
	vici_client_free(k->vici_init);
	k->vici_init = NULL;
	k->ready = 0;
	k->initiating = 0;
	k->deduping = 0;
	k->listing = 0;
	k->relist = 0;
}

/* Forget the SAs: charon, or our line to it, is gone. */
static void
sas_forget(struct ike *k)
{
	struct ike_sas	 none;

	memset(&none, 0, sizeof(none));
	k->sas = none;
	ike_tell(k, IKE_SAS, NULL, 0);
}

static void
vici_closed(void *arg)
{
	struct ike	*k = arg;
	struct timeval	 tv = { VICI_LOST_RETRY_MS / 1000,
	    (VICI_LOST_RETRY_MS % 1000) * 1000 };

	log_warnx("connection to charon's VICI socket lost");
	vici_drop(k);
	sas_forget(k);
	if (k->wanted && !k->stopping)
		evtimer_add(k->connect_timer, &tv);
}

/*
 * charon let a request's deadline pass: it accepts requests and answers
 * none (stopped, deadlocked).  Its SAs can no longer be vouched for; the
 * owner kills it, and the restart brings a new conversation.
 */
static void
vici_deadline(const char *request, unsigned waited_ms, void *arg)
{
	struct ike	*k = arg;

	vici_drop(k);
	sas_forget(k);
	ike_hung(k, "charon did not answer %s within %u.%u s", request, waited_ms / 1000, waited_ms % 1000 / 100);
}

static void
setup_reply(const struct vici_msg *m, struct ike *k, const char *what)
{
	char	 err[256];

	if (m == NULL)
		return;		/* vici_closed() deals with it */
	if (m->type == VICI_EVENT_CONFIRM || reply_ok(m, err, sizeof(err)))
		return;
	if (m->type == VICI_EVENT_UNKNOWN)
		err_set(err, sizeof(err), "unknown event");
	ike_fail(k, 0, "charon refused %s: %s", what, err);
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
	struct ike	*k = arg;
	char		 err[256];

	setup_reply(m, k, "the connection");
	if (m == NULL || !reply_ok(m, err, sizeof(err)))
		return;
	k->ready = 1;
	log_info("connection to %s loaded into charon", k->cfg->peer.name);
	ike_tell(k, IKE_READY, NULL, 0);
	/*
	 * Both ends initiate at once: whichever is ready last finds the
	 * other ready and gets the tunnel up in one exchange.  Should both
	 * succeed, dedup_check() keeps one IKE_SA.
	 */
	initiate_schedule(k, 0);
	ike_refresh_now(k);
}

/* Read a whole (small) file; *buf is malloc'ed and must be wiped. */
static int
read_small_file(const char *path, uint8_t **buf, size_t *len)
{
	struct stat	 st;
	ssize_t		 n;
	int		 fd, rc = -1;

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

/* The next key of a rotation, or its removal; 0 or -1 (said). */
static int
ike_load_next_key(struct ike *k)
{
	struct grgw_psk	 next = { NULL, 0 };
	char		 err[256];

	if (k->cfg->psk_next_file[0] == '\0') {
		/* None loaded is fine: charon answers with an error. */
		ike_send(k, conn_build_unload_shared(1), NULL);
		return 0;
	}
	if (psk_load(k->cfg->psk_next_file, &next, err, sizeof(err)) == -1) {
		ike_fail(k, 0, "psk_next_file: %s", err);
		return -1;
	}
	ike_send(k, conn_build_load_shared(k->cfg, next.key, next.len, 1),
	    creds_reply);
	psk_free(&next);
	return 0;
}

/*
 * Where one certificate of [auth] stands, into c; a problem an operator
 * must fix (expired, not valid yet, unreadable) goes to k->cred_problem.
 */
static void
cert_check(struct ike *k, const char *what, const char *path,
    const uint8_t *pem, size_t len, struct ike_cert *c)
{
	char	 err[128], when[32];
	time_t	 now = time(NULL);

	memset(c, 0, sizeof(*c));
	if (cert_parse(pem, len, &c->info, err, sizeof(err)) == -1) {
		log_warnx("%s %s: %s", what, path, err);
		return;
	}
	c->valid = 1;
	c->state = cert_state_at(&c->info, now, k->cfg->cert_warn_days);
	switch (c->state) {
	case CERT_EXPIRED:
		snprintf(k->cred_problem, sizeof(k->cred_problem),
		    "%s %s expired on %s", what, path,
		    cert_time_fmt(c->info.not_after, when, sizeof(when)));
		break;
	case CERT_NOT_YET_VALID:
		snprintf(k->cred_problem, sizeof(k->cred_problem),
		    "%s %s is not valid before %s (is the clock right?)",
		    what, path,
		    cert_time_fmt(c->info.not_before, when, sizeof(when)));
		break;
	case CERT_EXPIRES_SOON:
		log_warnx("%s %s expires on %s: renew it", what, path,
		    cert_time_fmt(c->info.not_after, when, sizeof(when)));
		break;
	case CERT_VALID:
		break;
	}
}

/* Every certificate of the CA file, one load-cert each; 0 or -1. */
static int
ike_send_cas(struct ike *k, const uint8_t *ca, size_t ca_len,
    vici_reply_cb cb)
{
	const uint8_t	*one;
	size_t		 off = 0, len;
	int		 n = 0;

	while (conn_pem_next_cert(ca, ca_len, &off, &one, &len)) {
		if (ike_send(k, conn_build_load_cert(one, len, 1), cb) == -1)
			return -1;
		n++;
	}
	return n > 0 ? 0 : -1;
}

/*
 * Send the certificate, CA and key of [auth] to charon (load-cert and
 * load-key replace what charon holds under the same identity and key
 * id); the PEM of the certificate and CA stay in *cert and *ca for
 * load-conn (malloc'ed, the caller frees them).  0, or -1 with the
 * failure told (ike_fail).
 */
static int
ike_send_creds(struct ike *k, vici_reply_cb cb, uint8_t **cert,
    size_t *cert_len, uint8_t **ca, size_t *ca_len)
{
	const struct grgw_config *cfg = k->cfg;
	struct grgw_psk	 key = { NULL, 0 };
	char		 err[256];
	int		 rc = -1;

	*cert = *ca = NULL;
	*cert_len = *ca_len = 0;
	if (read_small_file(cfg->ca_file, ca, ca_len) == -1 ||
	    read_small_file(cfg->cert_file, cert, cert_len) == -1) {
		ike_fail(k, 0, "cannot read the certificate or CA file: %s",
		    strerror(errno));
		goto cleanup;
	}
	/* The checks of check-config, again, at every (re)load. */
	if (secret_read(cfg->key_file, IKE_KEY_FILE_MAX, &key, err,
	    sizeof(err)) == -1) {
		ike_fail(k, 0, "private_key %s", err);
		goto cleanup;
	}
	k->cred_problem[0] = '\0';
	cert_check(k, "the CA certificate", cfg->ca_file, *ca, *ca_len,
	    &k->certs.ca);
	cert_check(k, "this gateway's certificate", cfg->cert_file, *cert,
	    *cert_len, &k->certs.local);
	if (ike_send_cas(k, *ca, *ca_len, cb) == -1 ||
	    ike_send(k, conn_build_load_cert(*cert, *cert_len, 0), cb) == -1 ||
	    ike_send(k, conn_build_load_key(key.key, key.len), cb) == -1) {
		ike_fail(k, 0, "cannot send the credentials to charon");
		goto cleanup;
	}
	rc = 0;
cleanup:
	psk_free(&key);
	if (rc == -1) {
		free(*cert);
		free(*ca);
		*cert = *ca = NULL;
	}
	return rc;
}

/* Load credentials and the connection; replies arrive in order. */
static int
ike_load(struct ike *k)
{
	const struct grgw_config *cfg = k->cfg;
	uint8_t		*cert = NULL, *ca = NULL;
	size_t		 cert_len = 0, ca_len = 0;
	struct grgw_psk	 psk = { NULL, 0 };
	char		 err[256];
	int		 rc = -1;

	if (cfg->auth == GRGW_AUTH_PSK) {
		if (psk_load(cfg->psk_file, &psk, err, sizeof(err)) == -1) {
			ike_fail(k, 0, "%s", err);
			goto cleanup;
		}
		if (ike_load_next_key(k) == -1)
			goto cleanup;
		ike_send(k, conn_build_load_shared(cfg, psk.key, psk.len, 0),
		    creds_reply);
		crypto_generichash(k->psk_fp, sizeof(k->psk_fp), psk.key,
		    psk.len, NULL, 0);
	} else {
		if (ike_send_creds(k, creds_reply, &cert, &cert_len, &ca,
		    &ca_len) == -1)
			goto cleanup;
		/* The peer will refuse it: say why now, not after a try. */
		if (k->cred_problem[0] != '\0')
			ike_fail(k, 1, "authentication failed: %s",
			    k->cred_problem);
	}
	rc = ike_send(k, conn_build_load_conn(cfg, k->dp, cert, cert_len, ca,
	    ca_len), conn_reply);
cleanup:
	psk_free(&psk);
	free(cert);
	free(ca);
	return rc;
}

static void
reload_creds_reply(const struct vici_msg *m, void *arg)
{
	struct ike	*k = arg;
	char		 err[256];

	if (m == NULL)
		return;		/* vici_closed() deals with it */
	if (!reply_ok(m, err, sizeof(err))) {
		ike_fail(k, 0, "charon refused the reloaded credentials: %s",
		    err);
		return;
	}
	log_debug("a reloaded credential is in charon");
}

int
ike_reload_creds(struct ike *k)
{
	uint8_t		*cert = NULL, *ca = NULL;
	size_t		 cert_len, ca_len;
	int		 rc;

	if (k->cfg->auth != GRGW_AUTH_CERT || k->vici == NULL || !k->ready ||
	    k->stopping)
		return -1;
	rc = ike_send_creds(k, reload_creds_reply, &cert, &cert_len, &ca,
	    &ca_len);
	/*
	 * The connection names the certificate and the CA by their bytes:
	 * load it again so new IKE_SAs (reauthentication, a restart of the
	 * peer) present the new ones.  Loading a connection of the same
	 * name replaces its config only; established SAs stay.
	 */
	if (rc == 0)
		rc = ike_send(k, conn_build_load_conn(k->cfg, k->dp, cert,
		    cert_len, ca, ca_len), reload_creds_reply);
	if (rc == 0)
		log_info("certificate, key and CA reloaded into charon%s%s",
		    k->cred_problem[0] != '\0' ? ": " : "", k->cred_problem);
	/*
	 * Present them now rather than at the next restart: a new IKE_SA
	 * authenticated with them replaces the old one make-before-break,
	 * and a certificate the peer refuses shows at once (the old SA
	 * stays meanwhile).
	 */
	if (rc == 0 && k->sas.ike_established) {
		log_info("re-authenticating to %s with the reloaded "
		    "certificate (make-before-break)", k->cfg->peer.name);
		ike_reauth(k);
	}
	free(cert);
	free(ca);
	return rc;
}

const struct ike_certs *
ike_certs(const struct ike *k)
{
	if (k == NULL || k->cfg->auth != GRGW_AUTH_CERT)
		return NULL;
	return &k->certs;
}

static void
connect_cb(evutil_socket_t fd, short ev, void *arg)
{
	static const char *const events[] = {
		"ike-updown", "child-updown", "control-log", "list-sa",
	};
	struct ike	*k = arg;
	struct timeval	 tv;
	size_t		 i;

	if (!k->wanted || k->stopping || k->vici != NULL)
		return;
	k->vici = vici_client_new(k->base, vici_event, vici_closed, k);
	if (k->vici != NULL)
		vici_client_on_deadline(k->vici, vici_deadline);
	if (k->vici == NULL ||
	    vici_client_connect(k->vici, k->vici_path) == -1) {
		vici_drop(k);
		if (++k->connect_tries == VICI_GIVEUP_TRIES)
			log_warnx("charon's VICI socket %s does not answer",
			    k->vici_path);
		tv.tv_sec = k->connect_tries < VICI_GIVEUP_TRIES ? 0 : 1;
		tv.tv_usec = k->connect_tries < VICI_GIVEUP_TRIES ?
		    VICI_RETRY_MS * 1000 : 0;
		evtimer_add(k->connect_timer, &tv);
		return;
	}
	k->connect_tries = 0;
	log_info("connected to charon over VICI");
	for (i = 0; i < nitems(events); i++)
		ike_send(k, conn_build_register(events[i]), register_reply);
	ike_load(k);
	/* The second connection, for initiate and its control-log. */
	k->vici_init = vici_client_new(k->base, vici_event, vici_closed, k);
	if (k->vici_init != NULL)
		vici_client_on_deadline(k->vici_init, vici_deadline);
	if (k->vici_init == NULL ||
	    vici_client_connect(k->vici_init, k->vici_path) == -1 ||
	    ike_send_on(k, k->vici_init, conn_build_register("control-log"),
	    VICI_DEADLINE_MS, register_reply) == -1) {
		log_warnx("no second connection to charon's VICI socket: "
		    "initiating holds up listing the SAs");
		vici_client_free(k->vici_init);
		k->vici_init = NULL;
	}
}

/* ---- API ---------------------------------------------------------------------- */

struct ike *
ike_new(struct event_base *base, const struct grgw_config *cfg,
    enum grgw_dataplane dp, const char *vici_path, ike_cb cb, void *arg)
{
	struct ike	*k;

	if ((k = calloc(1, sizeof(*k))) == NULL)
		return NULL;
	k->base = base;
	k->cfg = cfg;
	k->dp = dp;
	k->vici_path = vici_path;
	k->cb = cb;
	k->arg = arg;
	k->connect_timer = evtimer_new(base, connect_cb, k);
	k->initiate_timer = evtimer_new(base, initiate_cb, k);
	k->retire_timer = evtimer_new(base, retire_old_children, k);
	if (k->connect_timer == NULL || k->initiate_timer == NULL ||
	    k->retire_timer == NULL) {
		ike_free(k);
		return NULL;
	}
	return k;
}

void
ike_charon_started(struct ike *k)
{
	struct timeval	 tv = { 0, VICI_RETRY_MS * 1000 };

	k->wanted = 1;
	k->connect_tries = 0;
	evtimer_add(k->connect_timer, &tv);
}

void
ike_charon_exited(struct ike *k)
{
	k->wanted = 0;
	evtimer_del(k->connect_timer);
	vici_drop(k);
	sas_forget(k);
}

void
ike_initiate_now(struct ike *k)
{
	if (k->initiating || !k->ready || k->stopping)
		return;
	evtimer_del(k->initiate_timer);
	k->backoff_ms = 0;
	initiate_schedule(k, 0);
}

void
ike_refresh(struct ike *k)
{
	ike_refresh_now(k);
}

void
ike_tunnel_verified(struct ike *k)
{
	k->backoff_ms = 0;
}

static void
terminate_reply(const struct vici_msg *m, void *arg)
{
	struct ike	*k = arg;
	ike_done_cb	 done = k->done;

	k->done = NULL;
	if (done != NULL)
		done(k->done_arg);
}

/* The old SAs are gone (or charon says why not): a new IKE_SA now. */
static void
reestablish_reply(const struct vici_msg *m, void *arg)
{
	struct ike	*k = arg;

	ike_refresh_now(k);
	ike_initiate_now(k);
}

int
ike_reestablish(struct ike *k)
{
	if (k->stopping || k->vici == NULL || !k->sas.ike_any ||
	    k->initiating)
		return -1;
	log_info("the tunnel carries nothing while the WAN answers: "
	    "deleting the SAs and initiating again, without waiting for "
	    "dead-peer detection");
	return ike_send(k, conn_build_terminate(), reestablish_reply);
}

int
ike_terminate(struct ike *k, ike_done_cb done, void *arg)
{
	k->stopping = 1;
	evtimer_del(k->initiate_timer);
	if (k->vici == NULL || !k->sas.ike_any)
		return -1;
	k->done = done;
	k->done_arg = arg;
	if (ike_send(k, conn_build_terminate(), terminate_reply) == -1) {
		k->done = NULL;
		return -1;
	}
	return 0;
}

int
ike_ready(const struct ike *k)
{
	return k != NULL && k->ready;
}

int
ike_initiating(const struct ike *k)
{
	return k != NULL && k->initiating;
}

const struct ike_sas *
ike_sas(const struct ike *k)
{
	return &k->sas;
}

void
ike_free(struct ike *k)
{
	if (k == NULL)
		return;
	k->stopping = 1;
	k->done = NULL;
	k->wanted = 0;
	vici_drop(k);
	if (k->connect_timer != NULL)
		event_free(k->connect_timer);
	if (k->initiate_timer != NULL)
		event_free(k->initiate_timer);
	if (k->retire_timer != NULL)
		event_free(k->retire_timer);
	free(k);
}

/* ---- reload ---------------------------------------------------------------- */

static void
reauth_reply(const struct vici_msg *m, void *arg)
{
	struct ike	*k = arg;
	char		 err[256];

	if (m == NULL || m->type == VICI_EVENT_CONFIRM)
		return;
	if (!reply_ok(m, err, sizeof(err))) {
		log_warnx("re-authenticating to %s with new credentials: %s",
		    k->cfg->peer.name, err);
		k->reauthing = 0;
	}
	ike_refresh_now(k);
}

/* The new CHILD_SA is up: the ones it replaces go. */
/* The CHILD_SAs a reload replaced, deleted once nothing is in flight
 * on them (see reselect_reply()). */
static void
retire_old_children(evutil_socket_t fd, short ev, void *arg)
{
	struct ike	*k = arg;
	int		 i;

	(void)fd;
	(void)ev;
	if (k->stopping || k->vici == NULL) {
		k->n_old_child = 0;
		return;
	}
	for (i = 0; i < k->n_old_child; i++) {
		log_info("CHILD_SA #%u (SPIs %s/%s) replaced by one with the "
		    "new traffic selectors", k->old_child[i].uniqueid,
		    k->old_child[i].spi_in, k->old_child[i].spi_out);
		ike_send(k, conn_build_terminate_child(
		    k->old_child[i].uniqueid), NULL);
	}
	k->n_old_child = 0;
	ike_refresh_now(k);
}

static void
reselect_reply(const struct vici_msg *m, void *arg)
{
	struct ike	*k = arg;
	struct timeval	 grace = { IKE_RETIRE_GRACE_MS / 1000,
			    IKE_RETIRE_GRACE_MS % 1000 * 1000 };
	char		 err[256];

	if (m == NULL || m->type == VICI_EVENT_CONFIRM)
		return;
	if (!reply_ok(m, err, sizeof(err))) {
		log_warnx("a CHILD_SA with the new traffic selectors to %s: "
		    "%s; the old one stays", k->cfg->peer.name, err);
		k->n_old_child = 0;
		return;
	}
	/*
	 * Both ends send on the newest CHILD_SA as soon as it is installed
	 * (libipsec puts its policies first), but packets sent on the old
	 * one just before may still be on their way, or queued in the
	 * peer's data plane, when its DELETE arrives: the peer would drop
	 * them with the SA.  The old ones go once those have landed.
	 */
	evtimer_add(k->retire_timer, &grace);
}

static void
reload_conn_reply(const struct vici_msg *m, void *arg)
{
	struct ike	*k = arg;
	char		 err[256];

	if (m == NULL)
		return;
	if (!reply_ok(m, err, sizeof(err))) {
		ike_fail(k, 0, "charon refused the new connection: %s", err);
		return;
	}
	log_info("connection to %s loaded again with the new traffic "
	    "selectors", k->cfg->peer.name);
	if (!k->sas.ike_established || k->sas.n_child == 0)
		return;		/* the next initiate uses the new ones */
	memcpy(k->old_child, k->sas.child, sizeof(k->old_child));
	k->n_old_child = k->sas.n_child;
	/* Make before break: the new CHILD_SA, under the same IKE_SA. */
	if (ike_send_on(k, k->vici_init != NULL ? k->vici_init : k->vici,
	    conn_build_initiate(IKE_INITIATE_WAIT_MS),
	    IKE_INITIATE_DEADLINE_MS, reselect_reply) == -1)
		k->n_old_child = 0;
}

static void
ike_reload_keys(struct ike *k)
{
	struct grgw_psk	 psk = { NULL, 0 };
	uint8_t		 fp[32];
	char		 err[256];

	if (k->cfg->auth != GRGW_AUTH_PSK)
		return;
	if (psk_load(k->cfg->psk_file, &psk, err, sizeof(err)) == -1) {
		ike_fail(k, 0, "%s", err);
		return;
	}
	/* The next key first: both are in place before either is used. */
	if (ike_load_next_key(k) == 0)
		ike_send(k, conn_build_load_shared(k->cfg, psk.key, psk.len, 0),
		    creds_reply);
	crypto_generichash(fp, sizeof(fp), psk.key, psk.len, NULL, 0);
	psk_free(&psk);
	if (memcmp(fp, k->psk_fp, sizeof(fp)) == 0)
		return;
	memcpy(k->psk_fp, fp, sizeof(fp));
	if (!k->sas.ike_established)
		return;
	log_info("re-authenticating to %s with the new pre-shared key "
	    "(make-before-break)", k->cfg->peer.name);
	ike_reauth(k);
}

void
ike_reconfigure(struct ike *k, int selectors, int keys)
{
	if (k == NULL || k->vici == NULL || !k->ready || k->stopping)
		return;
	if (keys)
		ike_reload_keys(k);
	if (selectors)
		ike_send(k, conn_build_load_conn(k->cfg, k->dp, NULL, 0, NULL,
		    0), reload_conn_reply);
}
