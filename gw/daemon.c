/*
 * The gateway daemon: start-up, shutdown and the tunnel state, on one
 * libevent loop.  It owns no conversation of its own; it wires the rooms
 * together with callbacks:
 *
 *   charon (ipsec/charon.c)  supervises charon: started, exited
 *   ike (ipsec/ike.c)        the VICI conversation: SAs, failures
 *   netlink/                 the fail-closed layer, routes, QoS
 *   echo.c                   proves that the tunnel carries traffic
 *   netproc (proc.c)         the unprivileged network process: probes,
 *                            HTTP and etcd
 *   wanwatch                 the WAN carrier
 *   notify.c                 the state file and the hooks
 *   control.c                the CLI's requests
 *
 * The tunnel is up when a CHILD_SA is installed and an echo crossed it.
 */
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>

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
#include "control.h"
#include "daemon.h"
#include "blockwatch.h"
#include "cfgdiff.h"
#include "chan.h"
#include "echo.h"
#include "feeds.h"
#include "linkact.h"
#include "linkstate.h"
#include "netproc.h"
#include "pair.h"
#include "pairhold.h"
#include "probe.h"
#include "qosd.h"
#include "sitelock.h"
#include "status.h"
#include "strbuf.h"
#include "ipsec/ipsec.h"
#include "netlink/netlink.h"

#define REFRESH_SECS		2
#define STOP_TERMINATE_MS	3000
#define STOP_DRAIN_MS		3000	/* the final state to the feeds */
#define PAIR_LAPSE_KEEP_MS	10000	/* [pair]: SAs kept across a lapse
					 * (whole seconds) */
#define STOP_YIELD_MS		1000	/* [pair]: a handover before a stop
					 * may take the wait for the partner's
					 * SAs made ready, dead + guard for the
					 * move, and this */
#define STOP_POLL_MS		50
/*
 * [pair]: a handover's drain lasts until the nodes have heard the
 * partner: it takes the addresses within dead_ms + guard_ms of the
 * release at the latest, and announces them again up to this much
 * after that (drain_ms()).
 */
#define PAIR_DRAIN_MS		1000

struct gwd {
	struct event_base *base;
	/*
	 * Every room borrows this one configuration, owned here.  A reload
	 * writes the new one over it between two events (the loop runs one
	 * callback at a time), so no room ever holds a stale pointer; the
	 * rooms that derived something from it are told at once.
	 */
	struct grgw_config *cfg;
	uint8_t		key_fp[32];	/* of the key files, to see edits */
	uint8_t		creds_fp[32];	/* of the certificate files */
	/*
	 * The probes are sent with the next key (the one the peer had
	 * before) until charon has proved the new primary pre-shared key
	 * with the peer: a site switched before the other has the key
	 * keeps its link up, and says why the switch is not complete.
	 */
	int		probe_hold;
	char		dir[PATH_MAX];
	enum grgw_dataplane dp;
	time_t		since;
	int		lock_fd;
	int		exit_code;

	struct gwnl	*nl;
	struct blockwatch *bw;		/* keeps the fail-closed layer */
	struct blockwatch_view bw_view;	/* last status view */
	struct charon	*charon;
	struct ike	*ike;
	struct qos_run	*qos;		/* classes, marks, shaper */
	struct qos_view	qos_view;	/* last status view */

	/* tunnel */
	enum tunnel_state tunnel;
	time_t		tunnel_since;
	struct timespec	tunnel_up_at;	/* when it last became up */
	struct event	*up_timer;	/* answering `up` once settled */
	int		child_up;	/* CHILD_SA installed (as acted on) */
	int		verified;	/* echo answered through the tunnel */
	int		routes_installed;
	struct echo_probe *echo;
	struct event	*refresh_timer;
	char		last_error[512];
	int		auth_failed;
	int		charon_hung;	/* killed for not answering */

	/* link state */
	struct wanwatch	*wan;
	struct netproc	*np;		/* probes, HTTP, etcd, the pair's
					 * role engine */
	struct pairhold	*ph;		/* [pair]: the floating addresses */
	int		redundancy_lost; /* said to the hooks: active alone */
	struct path_stats paths[PROBE_NPATHS];	/* as it last said */
	struct link_view link;
	struct link_thresholds thresholds;
	struct linkact	*act;		/* refusing, re-establishing */
	int		link_known;	/* a first verdict was published */
	struct hooks	*hooks;
	char		statefile[PATH_MAX + 32];
	int		ready_fd;	/* the CLI waiting for start-up */

	/* control and shutdown */
	struct control	*ctl;
	int		stopping;
	int		purge;
	int		yielding;	/* [pair]: handing over, then stopping */
	int		yield_purge;
	struct event	*yield_timer;
	struct event	*lapse_timer;	/* [pair]: SAs kept across a lapse,
					 * until */
	/*
	 * [pair], a handover made before it breaks: asked by the active
	 * partner for SAs of this gateway's own (until prep_timer: then,
	 * still not active, they go); whether the network process was told
	 * they are in.
	 */
	int		prep_asked;
	int		prep_told_ready;
	int		ho_leaving;	/* outgoing: drain on, SAs closed
					 * when ho_close_timer fires or
					 * since */
	struct event	*ho_close_timer;
	int		ho_resuming;	/* given up: drain until SAs again */
	struct event	*prep_timer;
	struct timespec	drain_until;	/* feeds get the final state by then */
	struct event	*stop_timer;
	struct event	*sig_term, *sig_int, *sig_hup;
};

static int	probe_keys_push(struct gwd *, int, struct strbuf *);
static void	echo_begin(struct gwd *);
static void	daemon_publish(struct gwd *, enum link_state old);
static void	daemon_shutdown(struct gwd *, int purge);
static int	daemon_reload(struct gwd *, const char *, struct strbuf *);

/* ---- start-up report ------------------------------------------------------ */

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

/* Answer every waiting `up` with the last error. */
static void
daemon_answer_error(struct gwd *d)
{
	char	 msg[600];

	snprintf(msg, sizeof(msg), "error %s\n", d->last_error);
	control_answer(d->ctl, CONTROL_WAIT_UP, msg);
}

/* Gather every input of the link-state machine into d->link. */
static void
link_gather(struct gwd *d)
{
	const struct ike_sas *sas = ike_sas(d->ike);
	struct link_view *v = &d->link;
	int i;

	v->site = d->cfg->site.name;
	v->peer = d->cfg->peer.name;
	v->method = d->cfg->probe.method;
	v->carrier = wanwatch_up(d->wan);
	v->charon_up = charon_pid(d->charon) != 0 && ike_ready(d->ike);
	v->ike_up = sas->ike_established > 0;
	v->child_up = d->child_up;
	v->charon_restarts = charon_restarts(d->charon);
	v->tunnel_bytes_in = sas->bytes_in;
	v->tunnel_bytes_out = sas->bytes_out;
	v->tunnel_packets_in = sas->packets_in;
	v->tunnel_packets_out = sas->packets_out;
	for (i = 0; i < PROBE_NPATHS; i++)
		v->paths[i] = d->paths[i];
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
	log_info("link to %s: %s (%s, probes %s)%s%s", d->cfg->peer.name,
	    link_state_name(state), link_reason_name(reason),
	    config_probes_name(v->method),
	    d->link_known ? ", was " : "",
	    d->link_known ? link_state_name(old) : "");
	d->link_known = 1;
	linkact_follow(d->act, v);
	daemon_publish(d, old);
}

static void
wan_changed(int up, void *arg)
{
	struct gwd *d = arg;

	if (d->ph != NULL) {
		/*
		 * An active gateway cut from the WAN hands the role over
		 * to a standby whose WAN is up, as soon as there is one
		 * (the engine's rule R5; until then it stays, as nothing
		 * would be gained).
		 */
		netproc_pair_cmd(d->np, up ? PMSG_PAIR_WAN_UP :
		    PMSG_PAIR_WAN_DOWN);
	}
	link_refresh(d);
}

/* A lapse that ended in a newer epoch (the partner took over), or that
 * lasted too long: the SAs kept across it go. */
static void
lapse_expired(evutil_socket_t fd, short ev, void *arg)
{
	struct gwd *d = arg;

	(void)fd;
	(void)ev;
	evtimer_del(d->lapse_timer);
	log_info("pair: not active again under epoch %llu: closing the "
	    "SAs kept", (unsigned long long)pairhold_taken_epoch(d->ph));
	ike_set_active(d->ike, 0);
}

/* How long a handover's drain lasts from the release. */
static uint32_t
drain_ms(const struct grgw_config *cfg)
{
	return PAIR_DRAIN_MS + cfg->pair.dead_ms + cfg->pair.guard_ms;
}

/*
 * [pair]: the floating addresses came or went (pairhold.c, on the role
 * engine's word or when its hold ran out): charon initiates from them,
 * or gives up their SAs, and the engine learns that they are gone
 * before it may say so to its partner.  Gone under the epoch they were
 * taken under (a hold that ran out: the engine, or etcd, late on a busy
 * host; no newer epoch), the SAs stay until a newer epoch is heard of
 * (the partner took over: its INITIAL_CONTACT makes the peer drop them)
 * or PAIR_LAPSE_KEEP_MS pass: taken again under that epoch before, the
 * tunnel goes on as it was, without a new IKE exchange.  Meanwhile they
 * carry nothing: the kernel's hold drops every packet from or to the
 * floating addresses.
 */
static void
pair_held(int held, int same_epoch, const char *why, void *arg)
{
	struct gwd *d = arg;
	struct timeval tv = { PAIR_LAPSE_KEEP_MS / 1000, 0 };
	int kept = evtimer_pending(d->lapse_timer, NULL);

	evtimer_del(d->lapse_timer);
	if (held)
		evtimer_del(d->prep_timer);	/* the handover came */
	if (held && kept && same_epoch) {
		log_info("pair: active again under epoch %llu: the SAs kept "
		    "go on", (unsigned long long)pairhold_taken_epoch(d->ph));
		ike_resume(d->ike);
	} else if (!held && same_epoch && !d->yielding && !d->stopping) {
		ike_pause(d->ike);
		evtimer_add(d->lapse_timer, &tv);
	} else
		ike_set_active(d->ike, held);
	if (!held) {
		netproc_pair_hold(d->np, 0, 0);
		/* The drain began before the move: as long from here. */
		if (d->ho_leaving)
			(void)pairhold_drain(d->ph, drain_ms(d->cfg));
		d->ho_leaving = 0;
		d->ho_resuming = 0;
		evtimer_del(d->ho_close_timer);
	}
	else if (d->child_up && !d->verified && d->echo == NULL)
		echo_begin(d);	/* the SAs made ready: checked from now */
	linkact_role(d->act, held);
	netproc_pair_cmd(d->np, held ? PMSG_PAIR_HELD : PMSG_PAIR_DROPPED);
	hooks_event(d->hooks, &d->link, "pair", held ? "active" : "standby");
	log_info("pair: this gateway is %s (%s)", held ? "active" :
	    "standby", why);
	link_refresh(d);
	/* The site's link is this gateway's to report from now on. */
	if (held)
		daemon_publish(d, d->link.state);
	else if (d->yielding) {
		/* Handed over: now the stop that was asked for. */
		log_info("pair: the role is handed over; stopping");
		daemon_shutdown(d, d->yield_purge);
	}
}


/*
 * A handover made before it breaks, on the incoming (standby) side: the
 * active partner asks for SAs from this gateway's own WAN address
 * (ike_prepare()); the other site adds the CHILD_SAs, and the network
 * process is told when every pair has one (prep_follow()), which the
 * partner waits for before it hands the role over.  A handover that has
 * not come by prep_keep_ms() leaves them to go: they carry the other
 * site's traffic to this site from the moment they are in, and this
 * gateway answers nothing for the floating addresses until it holds
 * them (the other site's probes to them would go unanswered).
 */
static uint32_t
prep_keep_ms(const struct grgw_config *cfg)
{
	/* The partner waits this long for them, then the move. */
	return pair_prepare_limit_ms(&cfg->pair) + cfg->pair.dead_ms +
	    cfg->pair.guard_ms + 1000;
}

static void
release_go(void *arg)
{
	struct gwd *d = arg;

	pairhold_release_now(d->ph);
}

/*
 * The outgoing side, as the addresses are about to go at the end of a
 * handover the partner made ready for (the word that says to let go
 * still says so): the other site sends on the partner's SAs already;
 * these are deleted while the floating WAN address can still tell it so
 * (a DELETE sent after would not get out, and the other site would keep
 * them until dead-peer detection).
 */
static int
pair_before_release(void *arg)
{
	struct gwd *d = arg;

	if (!(pairhold_last(d->ph)->prep & PMSG_PREP_PARTNER_READY) ||
	    d->stopping || d->ho_leaving)
		return 0;
	/* What the nodes send here until they hear the partner goes on to
	 * it, from now (before these SAs go). */
	(void)pairhold_drain(d->ph, drain_ms(d->cfg));
	return ike_close_now(d->ike, d->cfg->pair.margin_ms / 2, release_go,
	    d) == 0;
}

static void
handover_closed(void *arg)
{
	struct gwd *d = arg;

	netproc_pair_cmd(d->np, PMSG_PAIR_CLOSED);
}

static void
handover_close_go(evutil_socket_t fd, short ev, void *arg)
{
	struct gwd *d = arg;

	(void)fd;
	(void)ev;
	if (!d->ho_leaving || d->stopping)
		return;
	log_info("handover: the partner's SAs carry the tunnel; this "
	    "gateway's go");
	if (ike_close_now(d->ike, d->cfg->pair.margin_ms / 2,
	    handover_closed, d) == -1)
		handover_closed(d);
}

/*
 * The outgoing side, once the partner's SAs for a handover are in and
 * before the role engine's handover begins (the network process waits
 * for PMSG_PAIR_CLOSED): what the nodes send here goes on to the
 * partner, which sends it on its own SAs, and margin_ms later this
 * gateway's SAs are deleted, while the role is held as ever and the
 * floating WAN address carries the DELETEs.  The wait lets what this
 * gateway sent on them just before reach the other site and be taken
 * there (deleted under it, it was dropped by the inbound policy check:
 * 17 packets in one run of the emulated VM, whose backlog is slow to
 * empty).  Done at the word to let go alone (pair_before_release(),
 * still the way without a drain), the deletes raced the hold's end on a
 * slow host: the kernel's hold lets nothing from the floating addresses
 * out past it, and the other site kept those SAs until dead-peer
 * detection, then started them again beside the new active's.  The
 * site's link is the partner's to report from here (daemon_publish()).
 * A handover given up (the partner did not take the role) starts the
 * tunnel again from here; the drain carries what the nodes send until
 * its first CHILD_SA is in (the partner's SAs stay that long: its
 * INITIAL_CONTACT deletes them at the other site as that CHILD_SA
 * comes), or ends at once if the partner is gone.
 */
static void
pair_handover_follow(struct gwd *d, const struct pmsg_role *ro)
{
	/* Until the release too: at most a guard from here. */
	uint32_t ms = drain_ms(d->cfg) + d->cfg->pair.guard_ms;
	int begun = ro->role == PAIR_ACTIVE && pairhold_held(d->ph) &&
	    (ro->prep & PMSG_PREP_PARTNER_READY) != 0;
	struct timeval tv = { d->cfg->pair.margin_ms / 1000,
	    (d->cfg->pair.margin_ms % 1000) * 1000 };

	if (begun && !d->ho_leaving && !d->stopping) {
		if (pairhold_drain(d->ph, ms) == -1) {
			handover_closed(d);
			return;
		}
		d->ho_leaving = 1;
		evtimer_add(d->ho_close_timer, &tv);
	} else if (!begun && d->ho_leaving && ro->role == PAIR_ACTIVE &&
	    pairhold_held(d->ph)) {
		d->ho_leaving = 0;
		evtimer_del(d->ho_close_timer);
		d->ho_resuming = ro->partner_seen;
		if (!d->ho_resuming)
			pairhold_drain_end(d->ph);
		log_info("handover: given up; the tunnel starts again from "
		    "this gateway");
		ike_resume(d->ike);
		link_refresh(d);
	}
}

static void
prep_expired(evutil_socket_t fd, short ev, void *arg)
{
	struct gwd *d = arg;

	(void)fd;
	(void)ev;
	if (d->ph != NULL && pairhold_held(d->ph))
		return;
	log_info("handover: none came; the SAs made ready go");
	ike_unprepare(d->ike);
}

static void
prep_asked(struct gwd *d, int asked)
{
	uint32_t ms = prep_keep_ms(d->cfg);
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	if (asked && !d->prep_asked) {
		if (ike_prepare(d->ike) == -1)
			log_info("handover: no SAs of this gateway's own to "
			    "make ready (%s)",
			    d->cfg->pair.own_wan_address.family == 0 ?
			    "no [pair] own_wan_address" : "charon not ready");
		else
			evtimer_add(d->prep_timer, &tv);
	}
	d->prep_asked = asked;
}

/* Tell the network process whether the SAs made ready are in. */
static void
prep_follow(struct gwd *d)
{
	int ready = d->ph != NULL && ike_sas(d->ike)->ready_complete;

	if (ready == d->prep_told_ready)
		return;
	d->prep_told_ready = ready;
	if (ready)
		log_info("handover: this gateway's own SAs with %s are in",
		    d->cfg->peer.name);
	netproc_pair_cmd(d->np, ready ? PMSG_PAIR_READY : PMSG_PAIR_UNREADY);
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
	if (s == TUNNEL_UP)
		clock_gettime(CLOCK_MONOTONIC, &d->tunnel_up_at);
}

/*
 * `grgw up` is answered once the tunnel carries traffic and its SAs have
 * settled.  When both ends initiated at once, one of the two IKE_SAs is
 * deleted with its CHILD_SAs, and a pair that only it carried is missing
 * until it is added again (a few hundred ms): answered before that, the
 * first connection could meet the gap.  A pair that stays missing (the
 * peer's configuration lacks it; the status says so) holds the answer
 * back UP_SETTLE_MS at most.
 */
#define UP_SETTLE_MS	2000

static void
up_answer(struct gwd *d)
{
	const struct ike_sas *sas = ike_sas(d->ike);
	struct timespec now;
	struct timeval tv;
	long long waited;
	char msg[256];

	if (d->tunnel != TUNNEL_UP || control_held(d->ctl, CONTROL_WAIT_UP) == 0)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	waited = (long long)(now.tv_sec - d->tunnel_up_at.tv_sec) * 1000 +
	    (now.tv_nsec - d->tunnel_up_at.tv_nsec) / 1000000;
	if ((sas->ike_established > 1 || sas->pairs_missing > 0) &&
	    waited < UP_SETTLE_MS) {
		if (!evtimer_pending(d->up_timer, NULL)) {
			tv.tv_sec = (UP_SETTLE_MS - waited) / 1000;
			tv.tv_usec = (UP_SETTLE_MS - waited) % 1000 * 1000;
			evtimer_add(d->up_timer, &tv);
		}
		return;
	}
	evtimer_del(d->up_timer);
	snprintf(msg, sizeof(msg), "ok tunnel %s <-> %s is up (%s data "
	    "plane)\n", d->cfg->site.name, d->cfg->peer.name,
	    config_dataplane_name(d->dp));
	control_answer(d->ctl, CONTROL_WAIT_UP, msg);
}

static void
up_settled(evutil_socket_t fd, short ev, void *arg)
{
	up_answer(arg);
}

static void
tunnel_update(struct gwd *d)
{
	if (d->child_up && d->verified)
		tunnel_set(d, TUNNEL_UP);
	else if (d->child_up || ike_sas(d->ike)->ike_any ||
	    ike_initiating(d->ike))
		tunnel_set(d, TUNNEL_CONNECTING);
	else
		tunnel_set(d, TUNNEL_DOWN);
	link_refresh(d);
	up_answer(d);
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

	echo_stop(d->echo);
	d->echo = NULL;
	d->verified = 1;
	d->auth_failed = 0;
	d->last_error[0] = '\0';
	ike_tunnel_verified(d->ike);
	tunnel_update(d);	/* `up` answered, once settled */
	log_info("tunnel to %s carries traffic (%s data plane)",
	    d->cfg->peer.name, config_dataplane_name(d->dp));
}

/* The readiness echo through the CHILD_SAs now in (or trust them). */
static void
echo_begin(struct gwd *d)
{
	const struct grgw_addr *src, *dst;

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
child_became_up(struct gwd *d)
{
	d->child_up = 1;
	d->verified = 0;
	/* A handover given up: this gateway's SAs carry its traffic again. */
	if (d->ho_resuming) {
		d->ho_resuming = 0;
		pairhold_drain_end(d->ph);
	}
	if (d->dp == GRGW_DP_KERNEL && !d->routes_installed) {
		if (gwnl_tunnel_routes_install(d->nl, d->cfg) == 0)
			d->routes_installed = 1;
		else
			daemon_set_error(d, "cannot route the peer prefixes "
			    "into %s", d->cfg->xfrm_interface);
	}
	qos_shaper_retry(d->qos, d->nl);
	/*
	 * A standby's SAs made ready for a handover: the echo leaves from
	 * the floating LAN address, which it does not hold yet; it goes
	 * once the role is taken (pair_held()).
	 */
	if (d->ph != NULL && !pairhold_held(d->ph))
		return;
	echo_begin(d);
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

/* ---- what the IKE conversation and charon's supervisor report ---------- */

static void
ike_news(const struct ike_news *n, void *arg)
{
	struct gwd *d = arg;

	switch (n->what) {
	case IKE_READY:
		/* charon (re)started: libipsec's ipsec0 is new, shape it. */
		if (d->dp == GRGW_DP_LIBIPSEC)
			qos_shaper_start(d->qos, d->nl);
		return;
	case IKE_PROVED:
		/* Only a pre-shared key's switch holds the probes back. */
		if (n->proved && d->probe_hold) {
			d->probe_hold = 0;
			log_info("the probes are sent with the new key");
			probe_keys_push(d, 0, NULL);
		}
		return;
	case IKE_FAILED:
		daemon_set_error(d, "%s", n->error);
		if (n->auth_failed) {
			d->auth_failed = 1;
			daemon_answer_error(d);
		} else if (!ike_ready(d->ike))
			daemon_answer_error(d);	/* setup refused */
		break;
	case IKE_HUNG:
		if (d->stopping)
			return;
		/* The normal exit path restarts it; the error stays. */
		daemon_set_error(d, "%s: killed and restarted", n->error);
		d->charon_hung = 1;
		charon_kill(d->charon, n->error);
		break;
	case IKE_CHILD_UP:
		/* What the probes lost before it is not this SA's. */
		netproc_tunnel_new(d->np);
		return;
	case IKE_SAS:
		if (d->stopping)
			return;
		if (n->sas->child_installed && !d->child_up)
			child_became_up(d);
		else if (!n->sas->child_installed && d->child_up) {
			log_info("CHILD_SA to %s is gone", d->cfg->peer.name);
			child_became_down(d);
		}
		prep_follow(d);
		break;
	}
	tunnel_update(d);
}

static void
charon_changed(int running, void *arg)
{
	struct gwd *d = arg;

	if (running) {
		ike_charon_started(d->ike);
		return;
	}
	qos_shaper_lost(d->qos);
	ike_charon_exited(d->ike);
	/* Its SAs and policies outlive it: none may meet the next charon's. */
	if (d->dp == GRGW_DP_KERNEL)
		(void)gwnl_xfrm_flush(d->cfg->if_id);
	if (!d->stopping && !d->charon_hung)
		daemon_set_error(d, "charon exited; restarting it");
	d->charon_hung = 0;
}

/* ---- what the network process reports --------------------------------- */

static void
daemon_render(struct gwd *d, enum pmsg_doc doc, struct strbuf *sb);

/*
 * [pair]: a standby whose partner is active is up as far as `grgw up`
 * goes (the site's tunnel is the partner's): the answer into msg, 1.
 */
static int
pair_standing_by(struct gwd *d, char *msg, size_t len)
{
	const struct pmsg_role *ro;
	char partner[INET6_ADDRSTRLEN];

	if (d->ph == NULL)
		return 0;
	ro = pairhold_last(d->ph);
	if (ro->role != PAIR_STANDBY || !ro->partner_seen ||
	    ro->partner_role != PAIR_ACTIVE)
		return 0;
	snprintf(msg, len, "ok standby for site %s: partner %s is active "
	    "(epoch %llu) and holds the tunnel to %s\n", d->cfg->site.name,
	    addr_fmt(&d->cfg->pair.partner, partner, sizeof(partner)),
	    (unsigned long long)ro->epoch, d->cfg->peer.name);
	return 1;
}

/*
 * "Redundancy lost" for the hooks (GRGW_EVENT=redundancy, the Clearwater
 * alarm 14001): raised by the active gateway while its partner is not
 * heard, cleared when the partner is heard again.  An active that lets
 * go while its partner is still not heard (its hold ran out on a slow
 * etcd, or a claim seen through etcd) keeps it raised: the site has no
 * second gateway still, and an alarm cleared at each lapse and raised
 * again a moment later would say otherwise.
 */
static void
pair_redundancy(struct gwd *d, const struct pmsg_role *ro)
{
	int lost = !ro->partner_seen && (pairhold_held(d->ph) ||
	    d->redundancy_lost);

	if (lost == d->redundancy_lost)
		return;
	d->redundancy_lost = lost;
	log_info("pair: redundancy %s", lost ? "lost: the partner is not "
	    "heard" : "restored");
	hooks_event(d->hooks, &d->link, "redundancy", lost ? "lost" :
	    "restored");
}

/* "role": one line for `grgw handover` to follow the move with. */
static void
pair_role_reply(struct gwd *d, char *msg, size_t len)
{
	const struct pmsg_role *ro;

	if (d->ph == NULL) {
		snprintf(msg, len, "none\n");
		return;
	}
	ro = pairhold_last(d->ph);
	snprintf(msg, len, "%s %llu %s %s\n", pair_role_name(ro->role),
	    (unsigned long long)ro->epoch, pairhold_held(d->ph) ? "held" :
	    "free", ro->partner_seen ? pair_role_name(ro->partner_role) :
	    "gone");
}

/*
 * "handover": the operator (or a stop, daemon_yield()) asks this active
 * gateway to give the role to its standby.  What can be checked here is;
 * the engine decides.  0 when asked, -1 refused; msg says which.
 */
static int
pair_handover(struct gwd *d, char *msg, size_t len)
{
	const struct pmsg_role *ro;
	char partner[INET6_ADDRSTRLEN];

	if (d->ph == NULL) {
		snprintf(msg, len, "error this gateway has no [pair]: there "
		    "is nobody to hand over to\n");
		return -1;
	}
	ro = pairhold_last(d->ph);
	addr_fmt(&d->cfg->pair.partner, partner, sizeof(partner));
	if (ro->role != PAIR_ACTIVE)
		snprintf(msg, len, "error this gateway is %s, not active: "
		    "run `grgw handover` on the active one\n",
		    pair_role_name(ro->role));
	else if (!ro->partner_seen || ro->partner_role != PAIR_STANDBY)
		snprintf(msg, len, "error no standby to hand over to: "
		    "partner %s is %s\n", partner, ro->partner_seen ?
		    pair_role_name(ro->partner_role) : "not heard");
	else if (netproc_pair_cmd(d->np, PMSG_PAIR_HANDOVER) == -1)
		snprintf(msg, len, "error the network process is not "
		    "running\n");
	else {
		snprintf(msg, len, "ok handing the role over to partner %s\n",
		    partner);
		return 0;
	}
	return -1;
}

static void
netproc_news(const struct netproc_news *n, void *arg)
{
	struct gwd *d = arg;
	struct strbuf sb;
	char msg[256];

	switch (n->what) {
	case NETPROC_READY:
		if (n->first) {
			log_info("grgw %s started for site %s, peer %s, %s data "
			    "plane", GRGW_VERSION, d->cfg->site.name,
			    d->cfg->peer.name, config_dataplane_name(d->dp));
			ready_report(&d->ready_fd, "ok");
		}
		break;
	case NETPROC_FAILED:
		log_warnx("network process: %s", n->why);
		if (n->first) {
			/* Start-up fails: nothing half-configured stays. */
			ready_report(&d->ready_fd, "error %s", n->why);
			d->exit_code = 2;
			daemon_shutdown(d, 0);
		}
		break;
	case NETPROC_EXITED:
		break;
	case NETPROC_ROLE:
		if (d->ph == NULL)
			break;
		pair_handover_follow(d, n->role);
		pairhold_role(d->ph, n->role);
		prep_asked(d, (n->role->prep & PMSG_PREP_ASKED) != 0);
		/* SAs kept across a lapse: a newer epoch ends the wait. */
		if (n->role->epoch > pairhold_taken_epoch(d->ph) &&
		    evtimer_pending(d->lapse_timer, NULL))
			lapse_expired(-1, 0, d);
		/* Should the network process restart, what it resumes. */
		if (pairhold_held(d->ph))
			netproc_pair_hold(d->np, n->role->epoch,
			    n->role->hold_until_ms);
		if (pair_standing_by(d, msg, sizeof(msg)))
			control_answer(d->ctl, CONTROL_WAIT_UP, msg);
		pair_redundancy(d, n->role);
		break;
	case NETPROC_PATH:
		d->paths[n->path] = *n->stats;
		if (n->changed) {
			log_info("%s probes to %s: %s", n->path == PROBE_TUNNEL ?
			    "tunnel" : "underlay", d->cfg->peer.name,
			    n->stats->up ? "answered" : "lost");
			link_refresh(d);
		}
		break;
	case NETPROC_WANT:
		strbuf_init(&sb);
		daemon_render(d, n->doc, &sb);
		netproc_answer(d->np, n->ticket, sb.failed ? NULL : sb.s,
		    sb.failed ? 0 : sb.len);
		strbuf_free(&sb);
		break;
	}
}

static void
refresh_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct gwd *d = arg;

	ike_refresh(d->ike);
	/* Loss and RTT drift between transitions: degraded is checked here. */
	link_refresh(d);
}

/* ---- control socket ------------------------------------------------------ */

static void
daemon_fill_view(struct gwd *d, struct status_view *v)
{
	const struct ike_sas *sas = ike_sas(d->ike);
	const struct ike_certs *certs;
	int	 i;

	memset(v, 0, sizeof(*v));
	v->cfg = d->cfg;
	v->daemon_running = 1;
	v->daemon_pid = getpid();
	v->daemon_since = d->since;
	v->charon_pid = charon_pid(d->charon);
	v->charon_running = v->charon_pid != 0;
	v->charon_restarts = charon_restarts(d->charon);
	v->charon_crash_loop = charon_crash_loop(d->charon);
	v->charon_restart_delay_ms = charon_restart_delay_ms(d->charon);
	v->netproc_pid = netproc_pid(d->np);
	v->netproc_restarts = netproc_restarts(d->np);
	if (d->ph != NULL && pairhold_last(d->ph)->role != 0) {
		const struct pmsg_role *ro = pairhold_last(d->ph);

		v->pair_role = pair_role_name(ro->role);
		v->pair_held = pairhold_held(d->ph);
		v->pair_epoch = ro->epoch;
		v->pair_partner_age_ms = pairhold_partner_age(d->ph);
		v->pair_partner_seen = v->pair_partner_age_ms <
		    d->cfg->pair.dead_ms;
		v->pair_partner_role = pair_role_name(ro->partner_role);
		v->pair_etcd_ok = ro->etcd_ok;
		v->pair_paths_seen = ro->paths_seen;
		v->pair_takeovers = pairhold_takes(d->ph);
		v->pair_kernel_hold_ms = pairhold_kernel_left(d->ph);
		v->pair_reason = ro->reason;
	}
	if (netproc_etcd(d->np, &v->etcd_healthy, &v->etcd_error) == 0) {
		v->etcd_said = 1;
		if (v->etcd_error[0] == '\0')
			v->etcd_error = NULL;
	}
	v->dataplane = d->dp;
	v->tunnel = d->tunnel;
	v->tunnel_since = d->tunnel_since;
	v->ike_state = sas->ike_state[0] ? sas->ike_state : NULL;
	v->child_state = sas->child_state[0] ? sas->child_state : NULL;
	for (i = 0; i < sas->n_child &&
	    v->n_child_sas < (int)nitems(v->child_sas); i++) {
		if (!sas->child[i].installed)
			continue;
		v->child_sas[v->n_child_sas].pair = sas->child[i].name;
		v->child_sas[v->n_child_sas].id = sas->child[i].uniqueid;
		v->child_sas[v->n_child_sas].spi_in = sas->child[i].spi_in;
		v->child_sas[v->n_child_sas].spi_out = sas->child[i].spi_out;
		v->n_child_sas++;
	}
	v->pairs = sas->pairs;
	v->pairs_missing = sas->pairs_missing;
	v->pair_missing = sas->missing[0] != '\0' ? sas->missing : NULL;
	v->traffic_verified = d->verified;
	v->last_error = d->last_error[0] ? d->last_error : NULL;
	v->bytes_in = sas->bytes_in;
	v->bytes_out = sas->bytes_out;
	v->packets_in = sas->packets_in;
	v->packets_out = sas->packets_out;
	gwnl_record_count(d->nl, &v->kernel_block, &v->kernel_run);
	blockwatch_get(d->bw, &d->bw_view);
	d->bw_view.record_errno = -gwnl_record_unsaved(d->nl);
	v->block = &d->bw_view;
	v->refusing = linkact_refusing(d->act);
	link_gather(d);
	v->link = &d->link;
	qos_fill_view(d->qos, d->nl, &d->qos_view);
	v->qos = d->qos != NULL ? &d->qos_view : NULL;
	v->now = time(NULL);
	if ((certs = ike_certs(d->ike)) != NULL) {
		v->cert_local = certs->local.valid ? &certs->local.info : NULL;
		v->cert_ca = certs->ca.valid ? &certs->ca.info : NULL;
	}
}

/* A document for the HTTP server: /status or /metrics. */
static void
daemon_render(struct gwd *d, enum pmsg_doc doc, struct strbuf *sb)
{
	struct status_view v;

	daemon_fill_view(d, &v);
	if (doc == PMSG_DOC_STATUS)
		status_render_json(&v, sb);
	else
		metrics_render(&v, &d->link, sb);
}

/* ---- reload ------------------------------------------------------------------ */

/*
 * A fingerprint of the key files' contents (the pre-shared keys and the
 * probe key), so that a key file rewritten in place is a change too.
 */
static void
keys_fingerprint(const struct grgw_config *cfg, uint8_t fp[32])
{
	const char *paths[3] = { cfg->psk_file, cfg->psk_next_file,
	    cfg->probe.key_file };
	crypto_generichash_state st;
	struct grgw_psk k;
	char why[256];
	size_t i;

	crypto_generichash_init(&st, NULL, 0, 32);
	for (i = 0; i < nitems(paths); i++) {
		memset(&k, 0, sizeof(k));
		if (paths[i][0] != '\0' &&
		    psk_load(paths[i], &k, why, sizeof(why)) == 0)
			crypto_generichash_update(&st, k.key, k.len);
		crypto_generichash_update(&st, (const uint8_t *)"|", 1);
		psk_free(&k);
	}
	crypto_generichash_final(&st, fp, 32);
}

/*
 * The bytes of the file at path into st, "|" for a missing or unreadable
 * one (the check before a reload has said why); read in pieces that are
 * wiped, as the private key passes through too.
 */
static void
fingerprint_file(crypto_generichash_state *st, const char *path)
{
	uint8_t buf[4096];
	ssize_t n;
	size_t total = 0;
	int fd;

	if (path[0] != '\0' && (fd = open(path, O_RDONLY | O_CLOEXEC)) != -1) {
		while (total < (1u << 20) &&
		    (n = read(fd, buf, sizeof(buf))) > 0) {
			crypto_generichash_update(st, buf, (size_t)n);
			total += (size_t)n;
		}
		close(fd);
		sodium_memzero(buf, sizeof(buf));
	}
	crypto_generichash_update(st, (const uint8_t *)"|", 1);
}

/*
 * A fingerprint of the certificate, private key and CA files, so that
 * renewed files written over the old ones (the usual way certificates
 * are renewed) are a change too: a reload reads them again.
 */
static void
creds_fingerprint(const struct grgw_config *cfg, uint8_t fp[32])
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, 32);
	if (cfg->auth == GRGW_AUTH_CERT) {
		fingerprint_file(&st, cfg->cert_file);
		fingerprint_file(&st, cfg->key_file);
		fingerprint_file(&st, cfg->ca_file);
	}
	crypto_generichash_final(&st, fp, 32);
}

/* The probe key derived from the secret in path into key; 0 or -1. */
static int
probe_key_from(const struct grgw_config *cfg, const char *path,
    uint8_t *key, char *err, size_t errlen)
{
	struct grgw_psk secret = { NULL, 0 };
	char why[256];

	if (psk_load(path, &secret, why, sizeof(why)) == -1)
		return err_set(err, errlen, "probe key: %s", why);
	probe_key_derive(secret.key, secret.len, cfg->site.name,
	    cfg->peer.name, key);
	psk_free(&secret);
	return 0;
}

/*
 * The probe keys for cfg into keys (PROBE_KEYS_LEN, secure memory): the
 * key the probes are sent with and, while a pre-shared key rotation is
 * under way (psk_next_file, probes keyed from the PSK), the key derived
 * from the next PSK, which they accept as well.  The number of keys (1
 * or 2), or -1 with err.
 */
#define PROBE_KEYS_LEN	(2 * PROBE_KEY_LEN)
static int
probe_keys_load(const struct grgw_config *cfg, uint8_t *keys, char *err,
    size_t errlen)
{
	if (cfg->probe.method != GRGW_PROBES_GRGW) {
		/* ICMP echo or nothing: no probe is authenticated. */
		randombytes_buf(keys, PROBE_KEY_LEN);
		return 1;
	}
	if (cfg->probe.key_file[0] != '\0')
		return probe_key_from(cfg, cfg->probe.key_file, keys, err,
		    errlen) == -1 ? -1 : 1;
	if (probe_key_from(cfg, cfg->psk_file, keys, err, errlen) == -1)
		return -1;
	if (cfg->psk_next_file[0] == '\0')
		return 1;
	return probe_key_from(cfg, cfg->psk_next_file, keys + PROBE_KEY_LEN,
	    err, errlen) == -1 ? -1 : 2;
}

/* The pair's heartbeat key derived from the secret in path into key. */
static int
pair_key_from(const struct grgw_config *cfg, const char *path, uint8_t *key,
    char *err, size_t errlen)
{
	struct grgw_psk secret = { NULL, 0 };
	char why[256];

	if (psk_load(path, &secret, why, sizeof(why)) == -1)
		return err_set(err, errlen, "pair key: %s", why);
	pair_key_derive(secret.key, secret.len, cfg->site.name, key);
	psk_free(&secret);
	return 0;
}

/*
 * The pair's heartbeat keys into keys (2 x PAIR_KEY_LEN, secure memory):
 * from [pair] key_file, or from the pre-shared key and, during a
 * rotation, the next one too (accepted; the two gateways of a site are
 * given the new key one after the other).  1 or 2, or -1 with err.
 */
static int
pair_keys_load(const struct grgw_config *cfg, uint8_t *keys, char *err,
    size_t errlen)
{
	if (cfg->pair.key_file[0] != '\0')
		return pair_key_from(cfg, cfg->pair.key_file, keys, err,
		    errlen) == -1 ? -1 : 1;
	if (pair_key_from(cfg, cfg->psk_file, keys, err, errlen) == -1)
		return -1;
	if (cfg->psk_next_file[0] == '\0')
		return 1;
	return pair_key_from(cfg, cfg->psk_next_file, keys + PAIR_KEY_LEN,
	    err, errlen) == -1 ? -1 : 2;
}

/* Hand them to the network process (kept there for its restarts). */
static int
pair_keys_push(struct gwd *d, char *err, size_t errlen)
{
	uint8_t *keys;
	int n;

	if (!d->cfg->pair.enabled)
		return 0;
	if ((keys = sodium_malloc(2 * PAIR_KEY_LEN)) == NULL)
		return err_set(err, errlen, "out of secure memory");
	n = pair_keys_load(d->cfg, keys, err, errlen);
	if (n != -1 && netproc_pair_keys(d->np, keys, n == 2 ?
	    keys + PAIR_KEY_LEN : NULL) == -1)
		n = err_set(err, errlen, "pair keys: out of secure memory");
	sodium_free(keys);
	return n == -1 ? -1 : 0;
}

/*
 * Hand the network process its probe keys: with restart, by restarting
 * it with them (new probe settings), else in place.  While probe_hold,
 * the next key is the one sent with.  0, or -1 with the reason in out.
 */
static int
probe_keys_push(struct gwd *d, int restart, struct strbuf *out)
{
	uint8_t	*key, *send, *also;
	char	 err[256];
	int	 n, rc = 0;

	if ((key = sodium_malloc(PROBE_KEYS_LEN)) == NULL ||
	    (n = probe_keys_load(d->cfg, key, err, sizeof(err))) == -1) {
		if (out != NULL)
			strbuf_printf(out, "warning: %s; the network process "
			    "keeps its keys\n", key == NULL ?
			    "out of secure memory" : err);
		else
			log_warnx("probe keys: %s",
			    key == NULL ? "out of secure memory" : err);
		if (restart)
			netproc_reconfigure(d->np, NULL, NULL);
		rc = -1;
		goto cleanup;
	}
	if (n < 2)
		d->probe_hold = 0;
	send = d->probe_hold ? key + PROBE_KEY_LEN : key;
	also = n == 2 ? (d->probe_hold ? key : key + PROBE_KEY_LEN) : NULL;
	if (restart)
		netproc_reconfigure(d->np, send, also);
	else if (netproc_set_keys(d->np, send, also) == -1) {
		/* It did not get them: a restart hands them over. */
		netproc_reconfigure(d->np, NULL, NULL);
	}
cleanup:
	if (key != NULL)
		sodium_free(key);
	return rc;
}

/* The kernel side of new prefixes: both fail-closed layers first. */
static int
reload_prefixes(struct gwd *d, struct strbuf *out)
{
	const struct grgw_config *cfg = d->cfg;
	int rc = 0;

	if (gwnl_block_install(d->nl, cfg) != 0 ||
	    gwnl_wanblock_install(d->nl, cfg) != 0 ||
	    gwnl_failfast_install(d->nl, cfg) != 0)
		rc = -1;
	(void)gwnl_forwarding_enable(d->nl, cfg);
	if (d->routes_installed && gwnl_tunnel_routes_install(d->nl, cfg) != 0)
		rc = -1;
	if (gwnl_refuse_install(d->nl, cfg) != 0 ||
	    (linkact_refusing(d->act) && gwnl_refuse_set(d->nl, cfg, 1) != 0))
		rc = -1;
	if (gwnl_prefixes_prune(d->nl, cfg) != 0)
		rc = -1;
	if (rc != 0)
		strbuf_printf(out, "warning: some kernel objects for the new "
		    "prefixes could not be put in place; see the log\n");
	return rc;
}

/* The live changes, the new configuration in place over the old. */
static int
reload_apply(struct gwd *d, const struct cfgdiff *diff, struct strbuf *out)
{
	char err[256];
	int rc = 0, selectors, keys, proving;

	if (diff->apply & CFGDIFF_LOG)
		log_set_level(d->cfg->log_level);
	if (diff->apply & (CFGDIFF_SITE_PREFIXES | CFGDIFF_PEER_PREFIXES))
		rc |= reload_prefixes(d, out);
	if (diff->apply & CFGDIFF_QOS)
		d->qos = qos_reconfigure(d->qos, d->nl, d->cfg, d->dp,
		    (diff->apply & CFGDIFF_QOS_SHAPER) != 0);
	if (diff->apply & CFGDIFF_LINK) {
		d->thresholds.degraded_loss = d->cfg->probe.degraded_loss;
		d->thresholds.degraded_rtt_ms = d->cfg->probe.degraded_rtt_ms;
	}
	if (diff->apply & CFGDIFF_HOOKS) {
		hooks_free(d->hooks);
		d->hooks = NULL;
		if (d->cfg->feeds.hooks_dir[0] != '\0')
			d->hooks = hooks_new(d->base, d->cfg->feeds.hooks_dir,
			    d->cfg->feeds.hooks_timeout);
	}
	/* charon: CHILD_SAs of new pairs of prefixes, new keys (proved). */
	selectors = (diff->apply & (CFGDIFF_SITE_PREFIXES |
	    CFGDIFF_PEER_PREFIXES)) != 0;
	keys = (diff->apply & CFGDIFF_PSK) != 0;
	proving = (selectors || keys) &&
	    ike_reconfigure(d->ike, selectors, keys) == 1;
	/* Probes keyed from the PSK, the old key still there as the next. */
	if (proving && d->cfg->psk_next_file[0] != '\0' &&
	    d->cfg->probe.key_file[0] == '\0') {
		d->probe_hold = 1;
		log_info("the probes keep the next key until %s has proved "
		    "to accept the new one", d->cfg->peer.name);
	}
	if ((diff->apply & CFGDIFF_CREDS) && ike_reload_creds(d->ike) == -1) {
		strbuf_printf(out, "warning: the certificate, key and CA "
		    "could not be loaded into charon now; see the log\n");
		rc = -1;
	}
	if (d->ph != NULL && (diff->apply & (CFGDIFF_PAIR | CFGDIFF_PSK)) &&
	    pair_keys_push(d, err, sizeof(err)) == -1) {
		strbuf_printf(out, "warning: %s; the heartbeats keep their "
		    "keys\n", err);
		rc = -1;
	}
	/*
	 * The pair's role engine lives in the network process: new [pair]
	 * timing or priority, like new probe, HTTP or etcd settings, start
	 * it again.  On an active gateway the new engine carries the
	 * holding on (PMSG_PAIR_RESUME), unless the restart outlasts the
	 * partner's dead_ms.
	 */
	if (d->ph != NULL && (diff->apply & (CFGDIFF_NETPROC | CFGDIFF_PAIR)) &&
	    pairhold_held(d->ph))
		strbuf_printf(out, "this gateway is active: the network "
		    "process restarts with the new settings and keeps the "
		    "role (the standby takes it only if the restart takes "
		    "longer than dead_ms)\n");
	if ((diff->apply & (CFGDIFF_NETPROC | CFGDIFF_PSK | CFGDIFF_PAIR)) &&
	    probe_keys_push(d, (diff->apply & (CFGDIFF_NETPROC |
	    CFGDIFF_PAIR)) != 0, out) == -1)
		rc = -1;
	link_refresh(d);
	return rc;
}

/*
 * Reload from path: the new file is parsed and checked before anything
 * is touched; an invalid one, or one with a change that cannot be made
 * live, leaves the running configuration as it is.  out gets the answer
 * for `grgw reload`: a first line ("ok", "invalid", "refused" or
 * "error"), then one line per change.
 */
static int
daemon_reload(struct gwd *d, const char *path, struct strbuf *out)
{
	static char errs[GRGW_CONFIG_ERR_MAX];
	struct grgw_config *new = NULL;
	struct cfgdiff *diff = NULL;
	struct timespec t0, t1;
	uint8_t fp[32], cfp[32];
	int i, rc = -1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (d->stopping) {
		strbuf_printf(out, "error the daemon is stopping\n");
		return -1;
	}
	if ((new = calloc(1, sizeof(*new))) == NULL ||
	    (diff = calloc(1, sizeof(*diff))) == NULL) {
		strbuf_printf(out, "error out of memory\n");
		goto cleanup;
	}
	if (config_load(path, new, errs, sizeof(errs)) == -1) {
		strbuf_printf(out, "invalid %s: nothing was changed\n%s", path,
		    errs);
		log_warnx("reload of %s refused: the file is not valid",
		    path);
		goto cleanup;
	}
	cfgdiff_compute(d->cfg, new, diff);
	keys_fingerprint(new, fp);
	if (memcmp(fp, d->key_fp, sizeof(fp)) != 0 &&
	    !(diff->apply & CFGDIFF_PSK) && (new->auth == GRGW_AUTH_PSK ||
	    new->probe.key_file[0] != '\0'))
		cfgdiff_add(diff, CFGDIFF_LIVE, CFGDIFF_PSK, "[auth] the "
		    "contents of a key file changed");
	creds_fingerprint(new, cfp);
	if (memcmp(cfp, d->creds_fp, sizeof(cfp)) != 0 &&
	    !(diff->apply & CFGDIFF_CREDS) && new->auth == GRGW_AUTH_CERT)
		cfgdiff_add(diff, CFGDIFF_LIVE, CFGDIFF_CREDS, "[auth] the "
		    "contents of the certificate, private key or CA file "
		    "changed");
	if (diff->n_refused > 0) {
		strbuf_printf(out, "refused %s: nothing was changed\n", path);
		for (i = 0; i < diff->n; i++)
			if (diff->ch[i].cls == CFGDIFF_REFUSED)
				strbuf_printf(out, "%s\n", diff->ch[i].text);
		log_warnx("reload of %s refused: %d change(s) cannot be "
		    "applied to a running gateway", path, diff->n_refused);
		goto cleanup;
	}
	/* The running config's path stays the one `grgw down` finds. */
	*d->cfg = *new;
	memcpy(d->key_fp, fp, sizeof(fp));
	memcpy(d->creds_fp, cfp, sizeof(cfp));
	rc = 0;
	if (diff->n > 0)
		rc = reload_apply(d, diff, out);
	/* From the request to everything in place, file read included. */
	clock_gettime(CLOCK_MONOTONIC, &t1);
	strbuf_printf(out, "%s %d change(s) applied in %.1f ms\n", rc == 0 ?
	    "ok" : "error", diff->n, (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
	for (i = 0; i < diff->n; i++) {
		strbuf_printf(out, "%s\n", diff->ch[i].text);
		log_info("reload: %s", diff->ch[i].text);
	}
	if (diff->n == 0)
		log_info("reload of %s: no change", path);
cleanup:
	free(new);
	free(diff);
	return rc;
}

static void
control_request_cb(struct control_conn *cc, const char *cmd, void *arg)
{
	struct gwd *d = arg;
	struct status_view v;
	struct strbuf sb;
	char msg[256];

	if (strcmp(cmd, "status json") == 0 || strcmp(cmd, "status text") == 0) {
		daemon_fill_view(d, &v);
		strbuf_init(&sb);
		if (strcmp(cmd, "status json") == 0)
			status_render_json(&v, &sb);
		else
			status_render_text(&v, &sb);
		control_reply(cc, sb.failed ? "" : sb.s);
		strbuf_free(&sb);
	} else if (strcmp(cmd, "role") == 0) {
		pair_role_reply(d, msg, sizeof(msg));
		control_reply(cc, msg);
	} else if (strcmp(cmd, "handover") == 0) {
		pair_handover(d, msg, sizeof(msg));
		control_reply(cc, msg);
	} else if (strcmp(cmd, "up") == 0) {
		if (d->stopping) {
			control_reply(cc, "error the daemon is stopping\n");
			return;
		}
		if (d->tunnel == TUNNEL_UP) {
			control_hold(cc, CONTROL_WAIT_UP);
			up_answer(d);
			return;
		}
		if (pair_standing_by(d, msg, sizeof(msg))) {
			control_reply(cc, msg);
			return;
		}
		control_hold(cc, CONTROL_WAIT_UP);
		/* An operator asking: try now rather than after backoff. */
		ike_initiate_now(d->ike);
	} else if (strncmp(cmd, "reload ", 7) == 0) {
		strbuf_init(&sb);
		daemon_reload(d, cmd + 7, &sb);
		control_reply(cc, sb.failed ? "error out of memory\n" : sb.s);
		strbuf_free(&sb);
	} else if (strcmp(cmd, "down") == 0 || strcmp(cmd, "down purge") == 0) {
		if (control_held(d->ctl, CONTROL_WAIT_DOWN) > 0) {
			control_reply(cc, "error already stopping\n");
			return;
		}
		control_hold(cc, CONTROL_WAIT_DOWN);
		daemon_shutdown(d, strcmp(cmd, "down purge") == 0);
	} else {
		control_reply(cc, "error unknown request\n");
	}
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
	/*
	 * [pair]: the site's link is the active gateway's to report; a
	 * standby (no tunnel, no probes from the site's addresses) would
	 * only say "down" over it, in etcd under the same key and to the
	 * same alarms; so would an active handing over, its SAs gone
	 * (pair_handover_follow()).
	 */
	if (d->ph != NULL && (!pairhold_held(d->ph) || d->ho_leaving))
		return;
	if (d->hooks != NULL)
		hooks_run(d->hooks, &d->link, old);
	if (d->cfg->feeds.etcd_endpoint[0] != '\0') {
		strbuf_init(&sb);
		linkstate_render_json(&d->link, &sb);
		if (!sb.failed)
			netproc_publish(d->np, sb.s);
		strbuf_free(&sb);
	}
}

/* The hooks and the state file need nothing up front. */
static void
daemon_start_feeds(struct gwd *d)
{
	const struct grgw_feeds_conf *f = &d->cfg->feeds;

	statefile_path(d->cfg, d->statefile, sizeof(d->statefile));
	if (f->hooks_dir[0] != '\0')
		d->hooks = hooks_new(d->base, f->hooks_dir, f->hooks_timeout);
}

/* ---- shutdown -------------------------------------------------------------- */

/*
 * Every exit says so: the link goes down with reason "stopped" on every
 * feed (state file, hooks and the alarm, etcd, metrics while the network
 * process still serves).
 */
static void
link_final(struct gwd *d)
{
	struct link_view *v = &d->link;
	enum link_state old = v->state;

	if (v->state == LINK_DOWN && v->reason == REASON_STOPPED)
		return;
	v->state = LINK_DOWN;
	v->reason = REASON_STOPPED;
	clock_gettime(CLOCK_REALTIME, &v->since);
	if (d->link_known)
		v->changes++;
	d->link_known = 1;
	log_info("link to %s: down (stopped), was %s", d->cfg->peer.name,
	    link_state_name(old));
	daemon_publish(d, old);
}

/* Whether the feeds took the final state: hooks done, etcd stored. */
static int
feeds_settled(struct gwd *d)
{
	struct hooks_stats st;
	const char *error;
	int healthy;

	if (d->hooks != NULL) {
		hooks_get_stats(d->hooks, &st);
		if (st.running > 0 || st.queued > 0)
			return 0;
	}
	if (d->cfg->feeds.etcd_endpoint[0] != '\0' &&
	    netproc_etcd(d->np, &healthy, &error) == 0 && !healthy)
		return 0;
	return 1;
}

static int
timespec_passed(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > t->tv_sec ||
	    (now.tv_sec == t->tv_sec && now.tv_nsec >= t->tv_nsec);
}

static void
daemon_finish(evutil_socket_t fd, short ev, void *arg)
{
	struct gwd *d = arg;
	struct timeval poll = { 0, STOP_POLL_MS * 1000 };
	char path[PATH_MAX + 32];

	evtimer_del(d->stop_timer);
	if (!feeds_settled(d)) {
		if (!timespec_passed(&d->drain_until)) {
			evtimer_add(d->stop_timer, &poll);
			return;
		}
		log_warnx("stopping without every feed confirming the final "
		    "state (a hook still running, or etcd not answering)");
	}
	/* What follows removes objects on purpose. */
	blockwatch_free(d->bw);
	d->bw = NULL;
	ike_charon_exited(d->ike);
	charon_stop(d->charon);
	child_became_down(d);
	if (gwnl_cleanup(d->nl, d->purge) == -1)
		d->exit_code = 1;
	log_info("stopped; %s", d->purge ? "all kernel state removed" :
	    "fail-closed routes for the peer prefixes stay in place");
	snprintf(path, sizeof(path), "%s/charon.vici", d->dir);
	unlink(path);
	netproc_free(d->np);
	d->np = NULL;
	/* The site is free for a new daemon before `down` hears "ok". */
	site_unlock(d->dir, &d->lock_fd);
	control_answer(d->ctl, CONTROL_WAIT_DOWN, d->exit_code == 0 ?
	    "ok\n" : "error some kernel objects could not be removed; see "
	    "the daemon log\n");
	control_free(d->ctl);
	d->ctl = NULL;
	event_base_loopbreak(d->base);
}

static void
terminated(void *arg)
{
	struct gwd *d = arg;
	struct timeval now = { 0, 0 };

	/* Not inline: this runs inside the IKE conversation's callback. */
	evtimer_add(d->stop_timer, &now);
}

/*
 * [pair]: an active gateway asked to stop, with a healthy standby, hands
 * the role over first (as `grgw handover` would), so that a planned stop
 * costs what a handover costs, not what a death does; 1 when that is
 * under way.
 */
static int
daemon_yield(struct gwd *d, int purge)
{
	struct timeval tv;
	unsigned ms;
	char partner[INET6_ADDRSTRLEN], msg[256];

	if (d->ph == NULL || !pairhold_held(d->ph) ||
	    pair_handover(d, msg, sizeof(msg)) == -1)
		return 0;
	ms = pair_prepare_limit_ms(&d->cfg->pair) + d->cfg->pair.dead_ms +
	    d->cfg->pair.guard_ms + STOP_YIELD_MS;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(d->yield_timer, &tv);
	d->yielding = 1;
	d->yield_purge = purge;
	log_info("stopping: handing the role over to partner %s first (at "
	    "most %u ms)", addr_fmt(&d->cfg->pair.partner, partner,
	    sizeof(partner)), ms);
	return 1;
}

static void
yield_expired(evutil_socket_t fd, short ev, void *arg)
{
	struct gwd *d = arg;

	(void)fd;
	(void)ev;
	log_warnx("pair: the partner did not take the role in time; "
	    "stopping with it");
	daemon_shutdown(d, d->yield_purge);
}

static void
daemon_shutdown(struct gwd *d, int purge)
{
	struct timeval tv = { STOP_TERMINATE_MS / 1000,
	    (STOP_TERMINATE_MS % 1000) * 1000 };

	if (d->stopping)
		return;
	/* Asked again while handing over: now. */
	if (d->yielding) {
		d->yielding = 0;
		evtimer_del(d->yield_timer);
	} else if (daemon_yield(d, purge))
		return;
	d->stopping = 1;
	d->purge = purge;
	log_info("stopping%s", purge ? " (purge)" : "");
	clock_gettime(CLOCK_MONOTONIC, &d->drain_until);
	d->drain_until.tv_sec += STOP_DRAIN_MS / 1000;
	link_final(d);
	evtimer_del(d->refresh_timer);
	linkact_stop(d->act);
	control_answer(d->ctl, CONTROL_WAIT_UP,
	    "error the daemon is stopping\n");
	/* Tell the peer first (IKE DELETE), so it fails closed at once. */
	if (ike_terminate(d->ike, terminated, d) == -1) {
		tv.tv_sec = 0;
		tv.tv_usec = 0;
	}
	evtimer_add(d->stop_timer, &tv);
}

static void
signal_cb(evutil_socket_t sig, short ev, void *arg)
{
	struct gwd *d = arg;

	struct strbuf sb;

	if (sig == SIGHUP) {
		log_info("SIGHUP: reloading %s", d->cfg->path);
		strbuf_init(&sb);
		daemon_reload(d, d->cfg->path, &sb);
		strbuf_free(&sb);
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
	if (cfg->pair.enabled) {
		/* The site's addresses float: the active one holds them. */
		if (!host_has_address(&cfg->pair.address)) {
			snprintf(err, errlen, "%s: [pair] address %s is not an "
			    "address of this host", cfg->path,
			    addr_fmt(&cfg->pair.address, buf, sizeof(buf)));
			return -1;
		}
		if (cfg->pair.second_address.family != 0 &&
		    !host_has_address(&cfg->pair.second_address)) {
			snprintf(err, errlen, "%s: [pair] second_address %s is "
			    "not an address of this host", cfg->path,
			    addr_fmt(&cfg->pair.second_address, buf,
			    sizeof(buf)));
			return -1;
		}
		if (cfg->pair.own_wan_address.family != 0 &&
		    !host_has_address(&cfg->pair.own_wan_address)) {
			snprintf(err, errlen, "%s: [pair] own_wan_address %s "
			    "is not an address of this host", cfg->path,
			    addr_fmt(&cfg->pair.own_wan_address, buf,
			    sizeof(buf)));
			return -1;
		}
		return 0;
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

/* WAN watching and the network process; the probe key never outlives
 * this (the network process keeps its own copy). */
static int
daemon_start_link(struct gwd *d, char *err, size_t errlen)
{
	const struct grgw_config *cfg = d->cfg;
	uint8_t *key = NULL;
	int n, rc = -1;

	/*
	 * [pair] first: its janitor is a fork of this process, and must be
	 * made before any key is read into it.
	 */
	if (cfg->pair.enabled && (d->ph = pairhold_new(d->base, d->nl, cfg,
	    pair_held, d, err, errlen)) == NULL)
		return -1;
	pairhold_set_before(d->ph, pair_before_release);
	keys_fingerprint(cfg, d->key_fp);
	creds_fingerprint(cfg, d->creds_fp);
	d->thresholds.degraded_loss = cfg->probe.degraded_loss;
	d->thresholds.degraded_rtt_ms = cfg->probe.degraded_rtt_ms;
	d->wan = wanwatch_new(d->base, cfg->site.wan_interface, wan_changed,
	    d);
	if (d->wan == NULL)
		return err_set(err, errlen, "cannot watch the WAN interface %s",
		    cfg->site.wan_interface);
	if ((key = sodium_malloc(PROBE_KEYS_LEN)) == NULL) {
		err_set(err, errlen, "out of secure memory");
		goto cleanup;
	}
	if ((n = probe_keys_load(cfg, key, err, errlen)) == -1)
		goto cleanup;
	d->np = netproc_new(d->base, cfg, d->dir, netproc_news, d, err, errlen);
	if (d->np == NULL)
		goto cleanup;
	if (d->ph != NULL && pair_keys_push(d, err, errlen) == -1)
		goto cleanup;
	if (netproc_start(d->np, key, n == 2 ?
	    key + PROBE_KEY_LEN : NULL, err, errlen) == -1)
		goto cleanup;
	link_refresh(d);
	rc = 0;
cleanup:
	if (key != NULL)
		sodium_free(key);
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
daemon_free(struct gwd *d)
{
	control_free(d->ctl);
	linkact_free(d->act);
	blockwatch_free(d->bw);
	echo_stop(d->echo);
	pairhold_free(d->ph);
	netproc_free(d->np);
	hooks_free(d->hooks);
	wanwatch_free(d->wan);
	ike_free(d->ike);
	charon_free(d->charon);
	qos_run_free(d->qos);
	gwnl_close(d->nl);
	site_unlock(d->dir, &d->lock_fd);
	if (d->refresh_timer != NULL)
		event_free(d->refresh_timer);
	if (d->stop_timer != NULL)
		event_free(d->stop_timer);
	if (d->yield_timer != NULL)
		event_free(d->yield_timer);
	if (d->lapse_timer != NULL)
		event_free(d->lapse_timer);
	if (d->prep_timer != NULL)
		event_free(d->prep_timer);
	if (d->ho_close_timer != NULL)
		event_free(d->ho_close_timer);
	if (d->up_timer != NULL)
		event_free(d->up_timer);

	if (d->sig_term != NULL)
		event_free(d->sig_term);
	if (d->sig_int != NULL)
		event_free(d->sig_int);
	if (d->sig_hup != NULL)
		event_free(d->sig_hup);
	if (d->base != NULL)
		event_base_free(d->base);
}

/* The loop, its timers and the signals it handles. */
static int
daemon_start_loop(struct gwd *d, char *err, size_t errlen)
{
	if ((d->base = chan_loop_new()) == NULL)
		return err_set(err, errlen, "cannot create the event loop");
	d->refresh_timer = event_new(d->base, -1, EV_PERSIST, refresh_cb, d);
	d->stop_timer = evtimer_new(d->base, daemon_finish, d);
	d->yield_timer = evtimer_new(d->base, yield_expired, d);
	d->lapse_timer = evtimer_new(d->base, lapse_expired, d);
	d->prep_timer = evtimer_new(d->base, prep_expired, d);
	d->ho_close_timer = evtimer_new(d->base, handover_close_go, d);
	d->up_timer = evtimer_new(d->base, up_settled, d);

	d->sig_term = evsignal_new(d->base, SIGTERM, signal_cb, d);
	d->sig_int = evsignal_new(d->base, SIGINT, signal_cb, d);
	d->sig_hup = evsignal_new(d->base, SIGHUP, signal_cb, d);
	if (d->refresh_timer == NULL || d->stop_timer == NULL ||
	    d->yield_timer == NULL || d->lapse_timer == NULL ||
	    d->prep_timer == NULL || d->ho_close_timer == NULL ||
	    d->up_timer == NULL || d->sig_term == NULL || d->sig_int == NULL || d->sig_hup == NULL)
		return err_set(err, errlen, "out of memory");
	evsignal_add(d->sig_term, NULL);
	evsignal_add(d->sig_int, NULL);
	evsignal_add(d->sig_hup, NULL);
	return 0;
}

/* Something removed or overrode the fail-closed layer; it is back. */
static void
block_repaired(const char *what, void *arg)
{
	struct gwd *d = arg;

	/* A table put back has its sets empty: the hold, the refusing. */
	pairhold_rehold(d->ph);
	if (linkact_refusing(d->act))
		(void)gwnl_refuse_set(d->nl, d->cfg, 1);
	hooks_event(d->hooks, &d->link, "block-repaired", what);
}

/*
 * Kernel first: fail closed before anything can be sent.  *touched is
 * set once something may have been installed.
 */
static int
daemon_start_kernel(struct gwd *d, int *touched, char *err, size_t errlen)
{
	const struct grgw_config *cfg = d->cfg;
	char record[PATH_MAX + 16];
	int rc;

	snprintf(record, sizeof(record), "%s/kernel.record", d->dir);
	if (gwnl_open(record, &d->nl) != 0)
		return err_set(err, errlen, "cannot open a netlink socket");
	*touched = 1;
	/* Both layers, each of which keeps the promise alone. */
	rc = gwnl_block_install(d->nl, cfg);
	rc = gwnl_wanblock_install(d->nl, cfg) != 0 ? -1 : rc;
	if (rc != 0) {
		(void)gwnl_failfast_install(d->nl, cfg);
		if ((rc = gwnl_record_unsaved(d->nl)) != 0)
			return err_set(err, errlen, "cannot write %s: %s; the "
			    "fail-closed layer is in place but not all of it "
			    "is recorded: make room there, then run `grgw up` "
			    "again", record, strerror(-rc));
		return err_set(err, errlen, "cannot install the fail-closed "
		    "layer for the peer prefixes (see the log)");
	}
	if (gwnl_forwarding_enable(d->nl, cfg) != 0)
		return err_set(err, errlen, "cannot enable IP forwarding");
	if (gwnl_failfast_install(d->nl, cfg) != 0)
		return err_set(err, errlen, "cannot install the fail-fast "
		    "nftables table %s (see the log)", GWNL_FAILFAST_TABLE);
	/* In place, refusing nothing, so that refusing costs no ruleset. */
	if (gwnl_refuse_install(d->nl, cfg) != 0)
		return err_set(err, errlen, "cannot install the nftables "
		    "table %s (see the log)", GWNL_REFUSE_TABLE);
	if (d->dp == GRGW_DP_KERNEL && gwnl_xfrmi_create(d->nl, cfg) != 0)
		return err_set(err, errlen, "cannot create the xfrm interface "
		    "%s", cfg->xfrm_interface);
	/* SAs a crashed predecessor's charon left behind. */
	if (d->dp == GRGW_DP_KERNEL)
		(void)gwnl_xfrm_flush(cfg->if_id);
	/* QoS degrades (and says so in the status); it never stops us. */
	if ((d->qos = qos_run_new(cfg, d->dp)) != NULL) {
		qos_rules_start(d->qos, d->nl);
		if (d->dp == GRGW_DP_KERNEL)
			qos_shaper_start(d->qos, d->nl);
	}
	d->bw = blockwatch_new(d->base, d->nl, cfg, d->dp == GRGW_DP_LIBIPSEC,
	    block_repaired, d);
	return 0;
}

/*
 * charon and the conversation with it.  charon is started before the
 * kernel objects are installed, so that its start-up (loading plugins
 * takes as long as installing them) overlaps theirs.  It is told
 * nothing before the loop runs, that is before the fail-closed layer is
 * in place: the connection is loaded, and the tunnel initiated, only
 * then.
 */
static int
daemon_start_charon(struct gwd *d, char *err, size_t errlen)
{
	d->charon = charon_new(d->base, d->cfg, d->dir, d->dp, charon_changed,
	    d);
	if (d->charon != NULL)
		d->ike = ike_new(d->base, d->cfg, d->dp,
		    charon_vici_path(d->charon), ike_news, d);
	if (d->ike == NULL || charon_start(d->charon) == -1)
		return err_set(err, errlen, "cannot start charon (%s); see %s",
		    d->cfg->charon_path, d->dir);
	return 0;
}

/* The control socket. */
static int
daemon_start_control(struct gwd *d, char *err, size_t errlen)
{
	char path[PATH_MAX + 16];

	snprintf(path, sizeof(path), "%s/control.sock", d->dir);
	d->ctl = control_listen(d->base, path, control_request_cb, d, err,
	    errlen);
	return d->ctl == NULL ? -1 : 0;
}

int
daemon_run(const struct grgw_config *cfg, int ready_fd)
{
	struct timeval refresh = { REFRESH_SECS, 0 };
	struct gwd d;
	char err[512], charon_err[512];
	int kernel_touched = 0, charon_rc;

	memset(&d, 0, sizeof(d));
	if ((d.cfg = malloc(sizeof(*d.cfg))) == NULL) {
		ready_report(&ready_fd, "error out of memory");
		return 2;
	}
	*d.cfg = *cfg;
	cfg = d.cfg;
	d.lock_fd = -1;
	d.ready_fd = ready_fd;
	d.since = time(NULL);
	d.tunnel_since = d.since;
	config_site_dir(cfg, d.dir, sizeof(d.dir));
	signal(SIGPIPE, SIG_IGN);

	if (sodium_init() < 0) {
		err_set(err, sizeof(err), "libsodium failed to initialise");
		goto fail;
	}
	if (mkdir_p(d.dir, 0700) == -1) {
		err_set(err, sizeof(err), "cannot create %s: %s", d.dir,
		    strerror(errno));
		goto fail;
	}
	if (site_lock(d.dir, cfg->site.name, &d.lock_fd, err,
	    sizeof(err)) == -1)
		goto fail;
	charon_kill_stale(d.dir);
	if (daemon_check_host(cfg, err, sizeof(err)) == -1 ||
	    daemon_pick_dataplane(cfg, &d.dp, err, sizeof(err)) == -1 ||
	    daemon_start_loop(&d, err, sizeof(err)) == -1)
		goto fail;
	/*
	 * A charon that cannot start still leaves the fail-closed layer to
	 * install, and a failure there is the one to report.
	 */
	charon_rc = daemon_start_charon(&d, charon_err, sizeof(charon_err));
	if (daemon_start_kernel(&d, &kernel_touched, err, sizeof(err)) == -1)
		goto fail;
	if (charon_rc == -1) {
		err_set(err, sizeof(err), "%s", charon_err);
		goto fail;
	}
	if ((d.act = linkact_new(d.base, d.nl, d.ike, cfg)) == NULL) {
		err_set(err, sizeof(err), "out of memory");
		goto fail;
	}
	if (cfg->pair.enabled)
		linkact_role(d.act, 0);	/* standby until it takes the role */
	if (daemon_start_control(&d, err, sizeof(err)) == -1)
		goto fail;
	daemon_start_feeds(&d);
	if (daemon_start_link(&d, err, sizeof(err)) == -1)
		goto fail;
	evtimer_add(d.refresh_timer, &refresh);
	/* Start-up is reported once the network process says it serves. */
	event_base_dispatch(d.base);
	ready_report(&d.ready_fd, "error the daemon stopped while starting");
	daemon_free(&d);
	free(d.cfg);
	return d.exit_code;

fail:
	log_warnx("start-up failed: %s", err);
	ready_report(&d.ready_fd, "error %s", err);
	/* No stale "up" from an earlier run stays behind. */
	if (d.statefile[0] != '\0')
		link_final(&d);
	if (d.charon != NULL)
		charon_stop(d.charon);
	/* Nothing half-configured: undo all but the fail-closed layer. */
	if (kernel_touched)
		gwnl_cleanup(d.nl, 0);
	daemon_free(&d);
	free(d.cfg);
	return 2;
}
