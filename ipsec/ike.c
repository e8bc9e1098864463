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
/*
 * A CHILD_SA of the tunnel's IKE_SA is missing: its initiator adds it at
 * once; the other end only if it is still missing after this long, so
 * that the two do not both create it.
 */
#define IKE_FILL_GRACE_MS	3000
#define IKE_VERIFY_WAIT_MS	20000	/* a verification IKE_SA */

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
	int			 initiating;	/* initiate requests pending */
	int			 fill_now;	/* a reload: add missing pairs now */
	int			 passive;	/* [pair] standby: no initiating */
	/* A pair's CHILD_SA twice over (both ends added it): seen since */
	unsigned		 child_dup;	/* its uniqueid, 0: none */
	struct timespec		 child_dup_since;
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
	 * A planned handover: the ready IKE_SA is being initiated (this
	 * gateway incoming); the peer's bare IKE_SA CHILD_SAs are being
	 * added to (its uniqueid; this gateway the other site's active).
	 */
	int			 preparing;
	unsigned		 adding_to;
	struct event		*fill_timer;	/* gateways_fill(), a moment on */
	ike_done_cb		 close_done;	/* ike_close_now() */
	void			*close_arg;
	/*
	 * New credentials are being proved with a second IKE_SA (see
	 * ike_verify()); what they are ("pre-shared key", "certificate").
	 * A rotation asked for meanwhile runs after it (verify_again).
	 */
	int			 verifying;
	int			 verify_again;
	const char		*verify_what;
	struct event		*verify_timer;	/* a refused proof, again */
	int			 stopping;	/* no more initiating */
	ike_done_cb		 done;		/* terminate in progress */
	void			*done_arg;

	uint8_t			 psk_fp[32];	/* of the primary key loaded */
	/* The pairs of prefixes of k->cfg, by name (pairs_load()). */
	char			 pair[GRGW_MAX_PAIRS][CONN_PAIR_NAME_MAX];
	int			 n_pairs;
};

static void	ike_refresh_now(struct ike *);
static int	ready_complete(const struct ike *, const struct ike_sas *);
static void	gateways_fill_cb(evutil_socket_t, short, void *);

static void
ike_tell(struct ike *k, enum ike_what what, const char *error,
    int auth_failed)
{
	struct ike_news n;

	n.what = what;
	n.sas = &k->sas;
	n.error = error;
	n.auth_failed = auth_failed;
	n.proved = 0;
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

	if (k->stopping || k->passive ||
	    evtimer_pending(k->initiate_timer, NULL))
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

	if (k->initiating > 0)
		k->initiating--;
	if (m == NULL || k->stopping)
		return;
	if (reply_ok(m, err, sizeof(err))) {
		log_info("IKE and CHILD_SAs to %s established",
		    k->cfg->peer.name);
		ike_refresh_now(k);
		return;
	}
	if (k->sas.ike_established && k->sas.child_installed &&
	    k->sas.pairs_missing == 0) {
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
	} else if (k->sas.ike_established)
		ike_fail(k, 0, "a CHILD_SA to %s for %s: %s (does the "
		    "peer's configuration have these prefixes?)",
		    k->cfg->peer.name, k->sas.missing, err);
	else
		ike_fail(k, 0, "connecting to %s failed: %s",
		    k->cfg->peer.name, err);
	initiate_schedule(k, ms);
}

static int
initiate_child(struct ike *k, const char *child)
{
	if (ike_send_on(k, k->vici_init != NULL ? k->vici_init : k->vici,
	    conn_build_initiate(GRGW_CONN_NAME, child, IKE_INITIATE_WAIT_MS),
	    IKE_INITIATE_DEADLINE_MS, initiate_reply) == -1)
		return -1;
	k->initiating++;
	return 0;
}

/*
 * The pairs' names, once per configuration (every list-sas reads them):
 * at ike_new() and when a reload changes the prefixes (ike_reconfigure()).
 */
static void
pairs_load(struct ike *k)
{
	k->n_pairs = 0;
	while (k->n_pairs < GRGW_MAX_PAIRS && conn_pair(k->cfg, k->n_pairs,
	    k->pair[k->n_pairs], sizeof(k->pair[0]), NULL, NULL) == 0)
		k->n_pairs++;
}

/* 1 if the configuration has a pair of that name. */
static int
pair_wanted(const struct ike *k, const char *name)
{
	int	 i;

	for (i = 0; i < k->n_pairs; i++)
		if (strcmp(k->pair[i], name) == 0)
			return 1;
	return 0;
}

/* 1 if a CHILD_SA of that pair exists, in any state but going. */
static int
pair_present(const struct ike_sas *s, const char *name)
{
	int	 i;

	for (i = 0; i < s->n_child; i++)
		if (strcmp(s->child[i].name, name) == 0)
			return 1;
	return 0;
}

static void
initiate_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct ike	*k = arg;
	int		 n;

	(void)fd;
	(void)ev;
	if (k->stopping || k->passive || !k->ready || k->initiating)
		return;
	k->fill_now = 0;
	if (k->sas.ike_established && k->sas.pairs_missing == 0)
		return;
	k->init_reason[0] = '\0';
	if (!k->sas.ike_established) {
		/*
		 * The first pair's CHILD_SA comes with the IKE_SA; the others
		 * follow under it once it is up (sas_commit()).
		 */
		log_info("initiating tunnel to %s", k->cfg->peer.name);
		if (k->n_pairs > 0)
			initiate_child(k, k->pair[0]);
		ike_tell(k, IKE_SAS, NULL, 0);
		return;
	}
	for (n = 0; n < k->n_pairs; n++) {
		if (pair_present(&k->sas, k->pair[n]))
			continue;
		log_info("adding the CHILD_SA for %s to %s", k->pair[n],
		    k->cfg->peer.name);
		if (initiate_child(k, k->pair[n]) == -1)
			break;
	}
	ike_tell(k, IKE_SAS, NULL, 0);
}

/* ---- list-sas -------------------------------------------------------------- */

static void
scan_child_ref(struct ike_sas *s, const struct vici_node *child,
    const char *state, int conn)
{
	struct child_sa_ref	*ref;
	const char		*v;

	/* Going, or gone: not the pair's CHILD_SA any more. */
	if (strcmp(state, "DELETING") == 0 || strcmp(state, "DELETED") == 0 ||
	    strcmp(state, "DESTROYING") == 0)
		return;
	if (s->n_child >= IKE_CHILD_REFS)
		return;
	ref = &s->child[s->n_child++];
	ref->conn = conn;
	v = vici_get_str(child, "name");
	snprintf(ref->name, sizeof(ref->name), "%s", v != NULL ? v : "");
	v = vici_get_str(child, "uniqueid");
	ref->uniqueid = v != NULL ? (unsigned)strtoul(v, NULL, 10) : 0;
	v = vici_get_str(child, "spi-in");
	snprintf(ref->spi_in, sizeof(ref->spi_in), "%s", v != NULL ? v : "");
	v = vici_get_str(child, "spi-out");
	snprintf(ref->spi_out, sizeof(ref->spi_out), "%s", v != NULL ? v : "");
	ref->installed = strcmp(state, "INSTALLED") == 0;
}

/* Which of grgw's connections an IKE_SA of list-sas is under; -1: none. */
static int
conn_of(const char *name)
{
	if (strcmp(name, GRGW_CONN_NAME) == 0)
		return CONN_MAIN;
	if (strcmp(name, GRGW_READY_NAME) == 0)
		return CONN_READY;
	if (strcmp(name, GRGW_GATEWAYS_NAME) == 0)
		return CONN_GATEWAYS;
	return -1;	/* the verification, or not ours */
}

static void
scan_ike_sa(struct ike_sas *s, const struct vici_node *ike)
{
	const struct vici_node	*children, *child;
	const char		*state, *v;
	struct ike_sa_ref	*ref = NULL;
	int			 conn, n_child = 0, we = 0;
	unsigned		 id = 0;

	if (ike->kind != VICI_NODE_SECTION || (conn = conn_of(ike->name)) < 0)
		return;
	if ((v = vici_get_str(ike, "uniqueid")) != NULL)
		id = (unsigned)strtoul(v, NULL, 10);
	we = (v = vici_get_str(ike, "initiator")) != NULL &&
	    strcmp(v, "yes") == 0;
	state = vici_get_str(ike, "state");
	s->ike_any = 1;
	if (state != NULL && strcmp(state, "ESTABLISHED") == 0) {
		s->ike_established++;
		if (s->n_est < IKE_SAS_REFS) {
			ref = &s->est[s->n_est++];
			ref->uniqueid = id;
			ref->conn = conn;
			ref->we_initiated = we;
			v = vici_get_str(ike, "initiator-spi");
			snprintf(ref->initiator_spi,
			    sizeof(ref->initiator_spi), "%s",
			    v != NULL ? v : "");
		}
	}
	if (state != NULL && (s->ike_state[0] == '\0' ||
	    strcmp(state, "ESTABLISHED") == 0))
		snprintf(s->ike_state, sizeof(s->ike_state), "%s", state);
	if ((children = vici_find(ike, "child-sas")) != NULL &&
	    children->kind != VICI_NODE_SECTION)
		children = NULL;
	for (child = children != NULL ? children->child : NULL; child != NULL;
	    child = child->next) {
		if (child->kind != VICI_NODE_SECTION)
			continue;
		n_child++;
		if (ref != NULL)
			ref->n_child++;
		if ((state = vici_get_str(child, "state")) == NULL)
			continue;
		scan_child_ref(s, child, state, conn);
		if (strcmp(state, "INSTALLED") == 0)
			s->child_installed++;
		if (s->child_state[0] == '\0' ||
		    strcmp(state, "INSTALLED") == 0)
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
	/* The peer's incoming gateway, ready for its CHILD_SAs. */
	if (conn == CONN_GATEWAYS && ref != NULL && n_child == 0 && !we &&
	    s->gateways_bare == 0)
		s->gateways_bare = id;
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

/*
 * Both ends initiate at once: when that made two IKE_SAs, delete ours if
 * it is not the one both ends keep (see conn_duplicate_to_delete()).
 */
static void
dedup_check(struct ike *k)
{
	int	 i;

	if (k->deduping || k->stopping || !k->ready)
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

/*
 * Which pairs of the configuration have no CHILD_SA; delete the CHILD_SAs
 * of pairs it no longer has (a reload removed a prefix).  Only the pairs
 * concerned change: every other CHILD_SA is left as it is.
 */
static void
pairs_check(struct ike *k, struct ike_sas *s)
{
	int	 i;

	s->pairs = k->n_pairs;
	s->pairs_missing = 0;
	s->missing[0] = '\0';
	for (i = 0; i < k->n_pairs; i++) {
		if (pair_present(s, k->pair[i]))
			continue;
		if (s->pairs_missing++ == 0)
			snprintf(s->missing, sizeof(s->missing), "%s",
			    k->pair[i]);
	}
	s->ready_complete = ready_complete(k, s);
	if (!k->ready || k->stopping)
		return;
	for (i = 0; i < s->n_child; i++) {
		if (!s->child[i].installed || pair_wanted(k, s->child[i].name))
			continue;
		log_info("deleting CHILD_SA #%u for %s: not in the "
		    "configuration any more", s->child[i].uniqueid,
		    s->child[i].name);
		ike_send(k, conn_build_terminate_child(s->child[i].uniqueid),
		    NULL);
	}
}

/* ---- a planned handover ------------------------------------------------ */

/* The handover's connections this configuration loads into charon. */
static int
handover_conns(const struct ike *k, enum conn_kind kinds[2])
{
	int	 n = 0;

	if (k->cfg->pair.own_wan_address.family != 0)
		kinds[n++] = CONN_READY;
	if (k->cfg->peer.n_gateways > 0)
		kinds[n++] = CONN_GATEWAYS;
	return n;
}

static const char *
handover_conn_name(enum conn_kind kind)
{
	return kind == CONN_READY ? GRGW_READY_NAME : GRGW_GATEWAYS_NAME;
}

static void	extra_conn_reply(const struct vici_msg *, void *);

/* Load the handover's connections (before the tunnel's). */
static void
handover_conns_load(struct ike *k)
{
	enum conn_kind	 kinds[2];
	int		 i, n = handover_conns(k, kinds);

	for (i = 0; i < n; i++)
		ike_send(k, conn_build_load_conn(k->cfg, k->dp, kinds[i]),
		    extra_conn_reply);
}

/*
 * Every IKE_SA of grgw's connections: the handover's first, then the
 * tunnel's, whose answer runs cb (charon answers one connection's
 * requests in order).  how: TERM_ASK (a DELETE, answered once the peer
 * did), TERM_FORCE (at once), TERM_WAIT (the DELETE, then gone when
 * answered or after ms).
 */
enum term_how { TERM_ASK, TERM_FORCE, TERM_WAIT };

static struct vici_builder *
term_build(const char *name, enum term_how how, unsigned ms)
{
	switch (how) {
	case TERM_FORCE:
		return conn_build_terminate_force(name);
	case TERM_WAIT:
		return conn_build_terminate_wait(name, ms);
	case TERM_ASK:
		break;
	}
	return conn_build_terminate(name);
}

static int
terminate_every(struct ike *k, enum term_how how, unsigned ms,
    vici_reply_cb cb)
{
	enum conn_kind	 kinds[2];
	int		 i, n = handover_conns(k, kinds);

	for (i = 0; i < n; i++)
		ike_send(k, term_build(handover_conn_name(kinds[i]), how, ms),
		    NULL);
	return ike_send(k, term_build(GRGW_CONN_NAME, how, ms), cb);
}

/* 1 if the ready connection's IKE_SA has every pair's CHILD_SA in. */
static int
ready_complete(const struct ike *k, const struct ike_sas *s)
{
	int	 i, j, found, est = 0;

	for (i = 0; i < s->n_est && i < IKE_SAS_REFS; i++)
		if (s->est[i].conn == CONN_READY)
			est = 1;
	if (!est || k->n_pairs == 0)
		return 0;
	for (i = 0; i < k->n_pairs; i++) {
		found = 0;
		for (j = 0; j < s->n_child && !found; j++)
			found = s->child[j].conn == CONN_READY &&
			    s->child[j].installed &&
			    strcmp(s->child[j].name, k->pair[i]) == 0;
		if (!found)
			return 0;
	}
	return 1;
}

static void
prepare_reply(const struct vici_msg *m, void *arg)
{
	struct ike	*k = arg;
	char		 err[256];

	k->preparing = 0;
	if (m == NULL || k->stopping)
		return;
	if (!reply_ok(m, err, sizeof(err)))
		log_warnx("handover: the IKE_SA from this gateway's own WAN "
		    "address to %s failed: %s", k->cfg->peer.name, err);
	else
		log_info("handover: IKE_SA from this gateway's own WAN "
		    "address to %s up; %s adds the CHILD_SAs",
		    k->cfg->peer.name, k->cfg->peer.name);
	ike_refresh_now(k);
}

int
ike_prepare(struct ike *k)
{
	int	 i;

	if (k == NULL || k->stopping || !k->ready ||
	    k->cfg->pair.own_wan_address.family == 0)
		return -1;
	if (k->preparing || k->sas.ready_complete)
		return 0;
	for (i = 0; i < k->sas.n_est && i < IKE_SAS_REFS; i++)
		if (k->sas.est[i].conn == CONN_READY)
			return 0;	/* up: the peer adds the CHILD_SAs */
	log_info("handover: making SAs ready from this gateway's own WAN "
	    "address");
	if (ike_send_on(k, k->vici_init != NULL ? k->vici_init : k->vici,
	    conn_build_initiate(GRGW_READY_NAME, NULL, IKE_INITIATE_WAIT_MS),
	    IKE_INITIATE_DEADLINE_MS, prepare_reply) == -1)
		return -1;
	k->preparing = 1;
	return 0;
}

void
ike_unprepare(struct ike *k)
{
	if (k == NULL || k->stopping || k->vici == NULL || !k->ready)
		return;
	ike_send(k, conn_build_terminate_force(GRGW_READY_NAME), NULL);
}

static void
close_now_reply(const struct vici_msg *m, void *arg)
{
	struct ike	*k = arg;
	ike_done_cb	 done = k->close_done;

	(void)m;
	k->close_done = NULL;
	if (done != NULL)
		done(k->close_arg);
	ike_refresh_now(k);
}

int
ike_close_now(struct ike *k, unsigned wait_ms, ike_done_cb done, void *arg)
{
	int	 i;

	if (k == NULL || k->stopping || k->vici == NULL || !k->ready ||
	    !k->sas.ike_any || k->close_done != NULL)
		return -1;
	k->passive = 1;
	evtimer_del(k->initiate_timer);
	k->close_done = done;
	k->close_arg = arg;
	/*
	 * Every IKE_SA the last listing showed first, by its id, without
	 * waiting for the peer's answer: each DELETE leaves at once.  By
	 * name alone, charon answers one terminate after the other, and
	 * one that waits holds the next back (in the emulated VM, a
	 * terminate of a connection without IKE_SAs took 0.3 s there, and
	 * the DELETE that counted was still to go when the addresses left:
	 * the other site kept those SAs until dead-peer detection, then
	 * started them again beside the new active's).  Then by name, which
	 * also ends an IKE_SA that listing did not show yet, and whose
	 * answer says done.
	 */
	for (i = 0; i < k->sas.n_est && i < IKE_SAS_REFS; i++)
		ike_send(k, conn_build_terminate_ike(k->sas.est[i].uniqueid),
		    NULL);
	if (terminate_every(k, TERM_WAIT, wait_ms, close_now_reply) == -1) {
		k->close_done = NULL;
		return -1;
	}
	return 0;
}

static void
adding_reply(const struct vici_msg *m, void *arg)
{
	struct ike	*k = arg;
	char		 err[256];

	if (m == NULL || k->stopping)
		return;
	if (!reply_ok(m, err, sizeof(err)))
		log_warnx("handover: adding a CHILD_SA to the IKE_SA of %s's "
		    "incoming gateway failed: %s", k->cfg->peer.name, err);
	ike_refresh_now(k);
}

/*
 * The other site's incoming gateway started an IKE_SA from its own
 * address without CHILD_SAs: this end adds them, as the initiator, so
 * that the incoming gateway (the responder) has them in before this end
 * sends on them.  Its traffic to the other site moves to them at once
 * (the newest SA of a pair carries it); the active one's SAs carry the
 * rest until it lets go.
 *
 * Not at once: this end, which answered the IKE_AUTH, has the IKE_SA
 * up as it sends the answer, and a CREATE_CHILD_SA right behind it can
 * reach the other end while another of its threads still reads that
 * answer; charon there ignores it ("IKE_SA state CONNECTING"), and it
 * would be sent again only a second later.
 */
#define GATEWAYS_FILL_DELAY_MS	20

static void
gateways_fill(struct ike *k, const struct ike_sas *s)
{
	struct timeval	 tv = { 0, GATEWAYS_FILL_DELAY_MS * 1000 };

	if (s->gateways_bare == 0) {
		k->adding_to = 0;
		evtimer_del(k->fill_timer);
		return;
	}
	if (k->passive || !k->ready || k->stopping ||
	    k->adding_to == s->gateways_bare ||
	    evtimer_pending(k->fill_timer, NULL))
		return;
	evtimer_add(k->fill_timer, &tv);
}

static void
gateways_fill_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct ike	*k = arg;
	unsigned	 bare = k->sas.gateways_bare;
	int		 i;

	(void)fd;
	(void)ev;
	if (bare == 0 || k->passive || !k->ready || k->stopping ||
	    k->adding_to == bare)
		return;
	k->adding_to = bare;
	log_info("handover: %s's incoming gateway is ready for its "
	    "CHILD_SAs (IKE_SA #%u): adding them", k->cfg->peer.name, bare);
	for (i = 0; i < k->n_pairs; i++)
		if (ike_send_on(k, k->vici_init != NULL ? k->vici_init :
		    k->vici, conn_build_initiate(GRGW_GATEWAYS_NAME,
		    k->pair[i], IKE_INITIATE_WAIT_MS),
		    IKE_INITIATE_DEADLINE_MS, adding_reply) == -1)
			break;
}

/* 1 if an established IKE_SA with CHILD_SAs is one we initiated. */
static int
we_lead(const struct ike_sas *s)
{
	int	 i;

	for (i = 0; i < s->n_est && i < IKE_SAS_REFS; i++)
		if (s->est[i].we_initiated && s->est[i].n_child > 0)
			return 1;
	return 0;
}

/*
 * A pair whose CHILD_SA both ends added at once has two of them for good.
 * The end that initiated the one IKE_SA deletes the newer, once it has
 * been there for IKE_FILL_GRACE_MS (the other end's fill waits as long:
 * a CHILD_SA still being added is not counted twice).  The daemon's
 * periodic list-sas brings the next look.
 */
static void
child_dedup_check(struct ike *k, const struct ike_sas *s)
{
	struct timespec	 now;
	long		 ms;
	int		 i;

	if (!k->ready || k->stopping || s->n_est != 1 ||
	    !s->est[0].we_initiated ||
	    (i = conn_child_duplicate(s)) < 0) {
		k->child_dup = 0;
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (k->child_dup != s->child[i].uniqueid) {
		k->child_dup = s->child[i].uniqueid;
		k->child_dup_since = now;
		return;
	}
	ms = (now.tv_sec - k->child_dup_since.tv_sec) * 1000 +
	    (now.tv_nsec - k->child_dup_since.tv_nsec) / 1000000;
	if (ms < IKE_FILL_GRACE_MS)
		return;
	log_info("%s has two CHILD_SAs (both ends added it): deleting the "
	    "newer, #%u", s->child[i].name, s->child[i].uniqueid);
	ike_send(k, conn_build_terminate_child(s->child[i].uniqueid), NULL);
	k->child_dup = 0;
}

/*
 * A complete view: tell the owner, and initiate if something is missing.
 * Not while passive (a standby): its listings, with no IKE_SA, would
 * each double the backoff, and the one that came as it took the role
 * would schedule the first initiation at the longest backoff (10 s
 * after a takeover, seen in the emulated VM).
 */
static void
sas_commit(struct ike *k, struct ike_sas *s)
{
	pairs_check(k, s);
	k->sas = *s;
	if (!k->initiating && k->ready && !k->stopping && !k->passive) {
		if (!s->ike_any)
			initiate_schedule(k, initiate_next_backoff(k));
		else if (s->ike_established && s->pairs_missing > 0)
			initiate_schedule(k, k->fill_now || we_lead(s) ? 0 :
			    IKE_FILL_GRACE_MS);
	}
	dedup_check(k);
	child_dedup_check(k, s);
	gateways_fill(k, s);
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
		if (strcmp(m->name, "child-updown") == 0 &&
		    vici_get_bool(m->root, "up"))
			ike_tell(k, IKE_CHILD_UP, NULL, 0);
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
	k->verifying = 0;
	k->verify_again = 0;
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

static void
extra_conn_reply(const struct vici_msg *m, void *arg)
{
	setup_reply(m, arg, "a handover's connection");
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
 * Send the CA, certificate and key of [auth] to charon, each checked
 * first (expired, not valid yet).  0, or -1 with the failure told
 * (ike_fail).
 */
static int
ike_send_creds(struct ike *k, vici_reply_cb cb)
{
	const struct grgw_config *cfg = k->cfg;
	struct grgw_psk	 key = { NULL, 0 };
	uint8_t		*cert = NULL, *ca = NULL;
	size_t		 cert_len = 0, ca_len = 0;
	char		 err[256];
	int		 rc = -1;

	if (read_small_file(cfg->ca_file, &ca, &ca_len) == -1 ||
	    read_small_file(cfg->cert_file, &cert, &cert_len) == -1) {
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
	cert_check(k, "the CA certificate", cfg->ca_file, ca, ca_len,
	    &k->certs.ca);
	cert_check(k, "this gateway's certificate", cfg->cert_file, cert,
	    cert_len, &k->certs.local);
	if (ike_send_cas(k, ca, ca_len, cb) == -1 ||
	    ike_send(k, conn_build_load_cert(cert, cert_len, 0), cb) == -1 ||
	    ike_send(k, conn_build_load_key(key.key, key.len), cb) == -1) {
		ike_fail(k, 0, "cannot send the credentials to charon");
		goto cleanup;
	}
	rc = 0;
cleanup:
	psk_free(&key);
	free(cert);
	free(ca);
	return rc;
}

/* Load credentials and the connection; replies arrive in order. */
static int
ike_load(struct ike *k)
{
	const struct grgw_config *cfg = k->cfg;
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
		if (ike_send_creds(k, creds_reply) == -1)
			goto cleanup;
		/* The peer will refuse it: say why now, not after a try. */
		if (k->cred_problem[0] != '\0')
			ike_fail(k, 1, "authentication failed: %s",
			    k->cred_problem);
	}
	/* A planned handover's, then the tunnel's (whose answer means
	 * ready). */
	handover_conns_load(k);
	rc = ike_send(k, conn_build_load_conn(cfg, k->dp, CONN_MAIN), conn_reply);
cleanup:
	psk_free(&psk);
	return rc;
}

/* ---- proving new credentials ------------------------------------------------ */

static void	ike_verify(struct ike *, const char *);
static void	verify_retry(evutil_socket_t, short, void *);

static void
verify_done(struct ike *k)
{
	/* The IKE_SA goes (the peer learns at once), then its config. */
	ike_send(k, conn_build_terminate(GRGW_VERIFY_NAME), NULL);
	ike_send(k, conn_build_unload_conn(GRGW_VERIFY_NAME), NULL);
	k->verifying = 0;
	if (k->verify_again) {
		k->verify_again = 0;
		ike_verify(k, k->verify_what);
	}
}

static void
verify_reply(const struct vici_msg *m, void *arg)
{
	struct ike	*k = arg;
	struct ike_news	 n;
	struct timeval	 retry = { IKE_PROVE_RETRY_S, 0 };
	char		 err[256];

	if (m == NULL || m->type == VICI_EVENT_CONFIRM) {
		if (m == NULL)
			k->verifying = 0;
		return;
	}
	if (k->stopping) {
		k->verifying = 0;
		return;
	}
	memset(&n, 0, sizeof(n));
	n.what = IKE_PROVED;
	n.sas = &k->sas;
	if ((n.proved = reply_ok(m, err, sizeof(err)))) {
		log_info("%s accepts this gateway's %s, and this gateway "
		    "accepts %s's: proved with a second IKE_SA, now deleted; "
		    "the tunnel's SAs stay as they are", k->cfg->peer.name,
		    k->verify_what, k->cfg->peer.name);
		evtimer_del(k->verify_timer);
	} else {
		log_warnx("proving the %s with %s failed: %s; the tunnel's "
		    "SAs stay as they are, but a new IKE_SA (a restart of "
		    "either end) would fail the same way; asked again every "
		    "%d s", k->verify_what, k->cfg->peer.name,
		    k->init_reason[0] != '\0' ? k->init_reason : err,
		    IKE_PROVE_RETRY_S);
		evtimer_add(k->verify_timer, &retry);
	}
	verify_done(k);
	k->cb(&n, k->arg);
}

/* The verification connection is loaded: initiate it (on vici_init,
 * which charon reads on its own: only now is the connection there). */
static void
verify_conn_reply(const struct vici_msg *m, void *arg)
{
	struct ike	*k = arg;
	char		 err[256];

	if (m == NULL) {
		k->verifying = 0;
		return;
	}
	if (!reply_ok(m, err, sizeof(err))) {
		log_warnx("cannot prove the new %s: charon refused the "
		    "connection for it: %s", k->verify_what, err);
		k->verifying = 0;
		return;
	}
	if (k->stopping || ike_send_on(k,
	    k->vici_init != NULL ? k->vici_init : k->vici,
	    conn_build_initiate(GRGW_VERIFY_NAME, NULL, IKE_VERIFY_WAIT_MS),
	    IKE_VERIFY_WAIT_MS + VICI_DEADLINE_MS, verify_reply) == -1) {
		/* Not asked: its connection goes again. */
		ike_send(k, conn_build_unload_conn(GRGW_VERIFY_NAME), NULL);
		k->verifying = 0;
	}
}

/*
 * New credentials are in charon (a key or certificate rotation): prove
 * them now, with a second IKE_SA that carries no CHILD_SA (RFC 6023) and
 * is deleted once up.  The tunnel's IKE_SA and CHILD_SAs are not touched,
 * so not a packet moves; a re-authentication would rebuild every
 * CHILD_SA, and the end that answers sends on the new ones before the
 * other end can read them.  The tunnel's IKE_SA keeps the authentication
 * it had (its keys never depended on the credentials); the next one
 * uses the new credentials.
 */
static void
ike_verify(struct ike *k, const char *what)
{
	evtimer_del(k->verify_timer);
	k->verify_what = what;
	if (!k->sas.ike_established || k->stopping)
		return;		/* the next IKE_SA uses them anyway */
	if (k->verifying) {
		k->verify_again = 1;
		return;
	}
	log_info("proving the new %s with %s (a second IKE_SA, without "
	    "CHILD_SAs)", what, k->cfg->peer.name);
	k->init_reason[0] = '\0';
	if (ike_send(k, conn_build_load_conn(k->cfg, k->dp, CONN_VERIFY),
	    verify_conn_reply) == -1) {
		log_warnx("cannot ask charon to prove the new %s", what);
		return;
	}
	k->verifying = 1;
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
	if (k->cfg->auth != GRGW_AUTH_CERT || k->vici == NULL || !k->ready ||
	    k->stopping)
		return -1;
	/*
	 * load-cert adds to what charon holds: the old certificate (and a
	 * CA the new bundle dropped) would stay, and charon could still
	 * pick the old one.  So everything goes and comes again, in one
	 * go: established SAs need no credentials, only a new IKE_SA
	 * negotiated in the same milliseconds would notice.
	 */
	if (ike_send(k, conn_build_clear_creds(), reload_creds_reply) == -1 ||
	    ike_send_creds(k, reload_creds_reply) == -1)
		return -1;
	log_info("certificate, key and CA reloaded into charon%s%s",
	    k->cred_problem[0] != '\0' ? ": " : "", k->cred_problem);
	ike_verify(k, "certificate");
	return 0;
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
	k->passive = cfg->pair.enabled;	/* a pair starts as a standby */
	pairs_load(k);
	k->dp = dp;
	k->vici_path = vici_path;
	k->cb = cb;
	k->arg = arg;
	k->connect_timer = evtimer_new(base, connect_cb, k);
	k->initiate_timer = evtimer_new(base, initiate_cb, k);
	k->verify_timer = evtimer_new(base, verify_retry, k);
	k->fill_timer = evtimer_new(base, gateways_fill_cb, k);
	if (k->connect_timer == NULL || k->initiate_timer == NULL ||
	    k->verify_timer == NULL || k->fill_timer == NULL) {
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
	return terminate_every(k, TERM_ASK, 0, reestablish_reply);
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
	if (terminate_every(k, TERM_ASK, 0, terminate_reply) == -1) {
		k->done = NULL;
		return -1;
	}
	return 0;
}

/* The closing of the SAs is answered: an active starts afresh. */
static void
close_all_reply(const struct vici_msg *m, void *arg)
{
	struct ike	*k = arg;

	if (m == NULL || k->stopping || k->passive)
		return;
	/* At once, instead of whatever a listing meanwhile scheduled. */
	evtimer_del(k->initiate_timer);
	k->backoff_ms = 0;
	initiate_schedule(k, 0);
	ike_refresh_now(k);
}

void
ike_set_active(struct ike *k, int active)
{
	if (k == NULL || k->stopping)
		return;
	k->passive = !active;
	evtimer_del(k->initiate_timer);
	if (active)
		k->backoff_ms = 0;
	/*
	 * Taking the role with nothing held (a complete view, no IKE_SA in
	 * any state, no listing in flight that could show one): initiate at
	 * once.  The terminate below would cost a round trip to charon,
	 * queued behind whatever else this connection carries (8 to 31 ms
	 * measured in the lab), and the takeover's traffic waits it out.
	 */
	if (active && k->ready && !k->listing && !k->relist &&
	    !k->sas.ike_any && !k->initiating) {
		k->backoff_ms = 0;
		initiate_cb(-1, 0, k);
		return;
	}
	/*
	 * A planned handover made ready: the SAs from this gateway's own
	 * WAN address carry the tunnel already (the peer sends on them);
	 * they stay, and nothing is initiated.
	 */
	if (active && k->sas.ready_complete) {
		log_info("handover: the SAs made ready carry the tunnel to %s",
		    k->cfg->peer.name);
		k->backoff_ms = 0;
		ike_refresh_now(k);
		return;
	}
	if (k->vici != NULL && k->ready &&
	    terminate_every(k, TERM_FORCE, 0, close_all_reply) == 0)
		return;
	if (active) {
		/* Not connected yet: its load initiates (vici_init). */
		k->backoff_ms = 0;
		initiate_schedule(k, 0);
	}
}

void
ike_pause(struct ike *k)
{
	if (k == NULL || k->stopping)
		return;
	k->passive = 1;
	evtimer_del(k->initiate_timer);
}

void
ike_resume(struct ike *k)
{
	if (k == NULL || k->stopping)
		return;
	k->passive = 0;
	k->backoff_ms = 0;
	evtimer_del(k->initiate_timer);
	initiate_schedule(k, 0);	/* nothing when all is up */
	ike_refresh_now(k);
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
	if (k->verify_timer != NULL)
		event_free(k->verify_timer);
	if (k->fill_timer != NULL)
		event_free(k->fill_timer);
	free(k);
}

static void
verify_retry(evutil_socket_t fd, short ev, void *arg)
{
	struct ike	*k = arg;

	(void)fd;
	(void)ev;
	if (k->ready && !k->stopping && k->verify_what != NULL)
		ike_verify(k, k->verify_what);
}

/* ---- reload ---------------------------------------------------------------- */

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
	log_info("connection to %s loaded again: CHILD_SAs for %d pair(s) "
	    "of prefixes", k->cfg->peer.name, k->n_pairs);
	/*
	 * The next view adds the CHILD_SAs of new pairs and deletes those
	 * of pairs gone (pairs_check()); the others stay as they are.  New
	 * ones are asked for at once: the peer refuses them until its
	 * configuration has the prefixes too, and they are asked again.
	 */
	k->fill_now = 1;
	k->backoff_ms = 0;
	ike_refresh_now(k);
}

static int
ike_reload_keys(struct ike *k)
{
	struct grgw_psk	 psk = { NULL, 0 };
	uint8_t		 fp[32];
	char		 err[256];

	if (k->cfg->auth != GRGW_AUTH_PSK)
		return 0;
	if (psk_load(k->cfg->psk_file, &psk, err, sizeof(err)) == -1) {
		ike_fail(k, 0, "%s", err);
		return 0;
	}
	/* The next key first: both are in place before either is used. */
	if (ike_load_next_key(k) == 0)
		ike_send(k, conn_build_load_shared(k->cfg, psk.key, psk.len, 0),
		    creds_reply);
	crypto_generichash(fp, sizeof(fp), psk.key, psk.len, NULL, 0);
	psk_free(&psk);
	if (memcmp(fp, k->psk_fp, sizeof(fp)) == 0)
		return 0;
	memcpy(k->psk_fp, fp, sizeof(fp));
	if (!k->sas.ike_established)
		return 0;
	ike_verify(k, "pre-shared key");
	return 1;
}

int
ike_reconfigure(struct ike *k, int selectors, int keys)
{
	int	 proving = 0;

	if (k != NULL && selectors)
		pairs_load(k);
	if (k == NULL || k->vici == NULL || !k->ready || k->stopping)
		return 0;
	if (keys)
		proving = ike_reload_keys(k);
	if (selectors) {
		/* The handover's carry the same pairs. */
		handover_conns_load(k);
		ike_send(k, conn_build_load_conn(k->cfg, k->dp, CONN_MAIN),
		    reload_conn_reply);
	}
	return proving;
}
