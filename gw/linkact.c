/*
 * What the link state does: refusing traffic to the peer while the link
 * is down, and re-establishing the SAs when the tunnel alone is dead.
 * The state itself comes from linkstate.c through the daemon.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "grgw.h"
#include "linkact.h"
#include "linkstate.h"
#include "ipsec/ipsec.h"
#include "netlink/netlink.h"

#define REESTABLISH_AFTER_MS	2000	/* tunnel dead, WAN fine: this long */
#define REESTABLISH_STAGGER_MS	1500	/* the later-named site waits more */
#define REESTABLISH_EVERY_MS	10000	/* and again while it lasts */

struct linkact {
	struct gwnl		*nl;
	struct ike		*ike;
	const struct grgw_config *cfg;
	struct event		*refuse_timer;
	struct event		*reestablish_timer;
	enum link_state		 state;
	enum link_reason	 reason;
	int			 refusing;
	int			 was_up;	/* up once since the start */
	int			 standby;	/* [pair]: refuses nothing */
	int			 stopped;
};

static struct timeval
ms_tv(uint32_t ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	return tv;
}

/* Refuse traffic to the peer (or stop refusing it), once. */
static void
refuse_set(struct linkact *a, int on)
{
	if (a->refusing == on || a->nl == NULL)
		return;
	if (gwnl_refuse_set(a->nl, a->cfg, on) != 0) {
		log_warnx("cannot %s refusing traffic to %s (see above)",
		    on ? "start" : "stop", a->cfg->peer.name);
		return;
	}
	a->refusing = on;
	log_info("traffic to %s's prefixes %s", a->cfg->peer.name, on ?
	    "refused at this gateway while the link is down" :
	    "no longer refused");
}

static void
refuse_timer_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct linkact *a = arg;

	if (a->state == LINK_DOWN && !a->stopped && !a->standby)
		refuse_set(a, 1);
}

static void
reestablish_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct linkact *a = arg;
	struct timeval tv = ms_tv(REESTABLISH_EVERY_MS);

	if (a->stopped || a->state != LINK_DOWN ||
	    a->reason != REASON_TUNNEL_DOWN)
		return;
	(void)ike_reestablish(a->ike);
	evtimer_add(a->reestablish_timer, &tv);
}

struct linkact *
linkact_new(struct event_base *base, struct gwnl *nl, struct ike *ike,
    const struct grgw_config *cfg)
{
	struct linkact *a;

	if ((a = calloc(1, sizeof(*a))) == NULL)
		return NULL;
	a->nl = nl;
	a->ike = ike;
	a->cfg = cfg;
	a->state = LINK_DOWN;
	a->reason = REASON_STARTING;
	a->refuse_timer = evtimer_new(base, refuse_timer_cb, a);
	a->reestablish_timer = evtimer_new(base, reestablish_cb, a);
	if (a->refuse_timer == NULL || a->reestablish_timer == NULL) {
		linkact_free(a);
		return NULL;
	}
	return a;
}

void
linkact_follow(struct linkact *a, const struct link_view *v)
{
	struct timeval hold, later;

	if (a == NULL || a->stopped)
		return;
	a->state = v->state;
	a->reason = v->reason;
	if (v->state != LINK_DOWN)
		a->was_up = 1;

	/*
	 * Down means refused, after the hold time, at once by default.
	 * Not before the link was ever up: no tunnel has carried anything
	 * yet, and the routes refuse.
	 */
	if (v->state != LINK_DOWN || !a->was_up || a->standby) {
		evtimer_del(a->refuse_timer);
		refuse_set(a, 0);
	} else if (!a->refusing && !evtimer_pending(a->refuse_timer, NULL)) {
		if (a->cfg->probe.refuse_hold_ms == 0)
			refuse_set(a, 1);
		else {
			hold = ms_tv(a->cfg->probe.refuse_hold_ms);
			evtimer_add(a->refuse_timer, &hold);
		}
	}

	/*
	 * A dead tunnel while the WAN answers: the SAs are stale.  After a
	 * moment (a peer's own restart re-keys by itself first), delete
	 * them and initiate again rather than wait for dead-peer detection.
	 * Both ends see it: the site whose name sorts later waits longer,
	 * so that one end's new SAs are not deleted by the other's.
	 */
	later = ms_tv(REESTABLISH_AFTER_MS +
	    (strcmp(a->cfg->site.name, a->cfg->peer.name) > 0 ?
	    REESTABLISH_STAGGER_MS : 0));
	if (v->state != LINK_DOWN || v->reason != REASON_TUNNEL_DOWN)
		evtimer_del(a->reestablish_timer);
	else if (!evtimer_pending(a->reestablish_timer, NULL))
		evtimer_add(a->reestablish_timer, &later);
}

void
linkact_role(struct linkact *a, int active)
{
	if (a == NULL || a->stopped)
		return;
	a->standby = !active;
	if (active)
		a->was_up = 0;
	evtimer_del(a->refuse_timer);
	refuse_set(a, 0);
}

void
linkact_stop(struct linkact *a)
{
	if (a == NULL)
		return;
	a->stopped = 1;
	evtimer_del(a->refuse_timer);
	evtimer_del(a->reestablish_timer);
}

int
linkact_refusing(const struct linkact *a)
{
	return a != NULL && a->refusing;
}

void
linkact_free(struct linkact *a)
{
	if (a == NULL)
		return;
	if (a->refuse_timer != NULL)
		event_free(a->refuse_timer);
	if (a->reestablish_timer != NULL)
		event_free(a->reestablish_timer);
	free(a);
}
