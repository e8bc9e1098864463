/*
 * The fail-closed layer, watched.  An event from the kernel arms a
 * short timer so that a burst (`ip rule flush`, `nft flush ruleset`, a
 * network manager rewriting everything) leads to one check once it is
 * over; a slower timer checks anyway, in case an event was lost.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "grgw.h"
#include "netlink/netlink.h"
#include "gw/blockwatch.h"

#define SETTLE_MS	50	/* after the last event, before checking */
#define SWEEP_S		5	/* a check in any case this often */

struct blockwatch {
	struct gwnl		*nl;
	const struct grgw_config *cfg;
	int			 libipsec;
	struct kwatch		*kw;
	struct event		*settle, *sweep;
	blockwatch_cb		 cb;
	void			*arg;
	int			 changed;	/* KWATCH_*, since the last check */
	struct blockwatch_view	 view;
};

/* nft_changed: the tables checked only when nftables changed too. */
static void
blockwatch_check(struct blockwatch *w, int nft_changed)
{
	struct gwnl_verify	 r;

	w->view.checks++;
	w->changed = 0;
	gwnl_block_verify(w->nl, w->cfg, w->libipsec, nft_changed, &r);
	w->view.overridden = r.overridden;
	snprintf(w->view.override, sizeof(w->view.override), "%s",
	    r.override);
	w->view.record_errno = -gwnl_record_unsaved(w->nl);
	if (r.repaired == 0)
		return;
	w->view.repairs++;
	w->view.last_at = time(NULL);
	snprintf(w->view.last, sizeof(w->view.last), "%s", r.what);
	log_warnx("fail-closed layer repaired (%llu so far): %s",
	    (unsigned long long)w->view.repairs, r.what);
	if (w->cb != NULL)
		w->cb(r.what, w->arg);
}

static void
settle_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct blockwatch	*w = arg;

	blockwatch_check(w, (w->changed & KWATCH_NFT) != 0);
}

/* Everything, in case an event was lost. */
static void
sweep_cb(evutil_socket_t fd, short ev, void *arg)
{
	blockwatch_check(arg, 1);
}

/*
 * Kernel events, including those of our own repairs: they settle into
 * one check that finds everything in place.  Routing events alone (each
 * take and release of the pair's addresses makes some) leave out the
 * tables that only nftables events can change.
 */
static void
changed_cb(void *arg, int what)
{
	struct blockwatch	*w = arg;
	struct timeval		 tv = { 0, SETTLE_MS * 1000 };

	w->changed |= what;
	if (!evtimer_pending(w->settle, NULL))
		evtimer_add(w->settle, &tv);
}

struct blockwatch *
blockwatch_new(struct event_base *base, struct gwnl *nl,
    const struct grgw_config *cfg, int libipsec, blockwatch_cb cb, void *arg)
{
	struct blockwatch	*w;
	struct timeval		 tv = { SWEEP_S, 0 };

	if ((w = calloc(1, sizeof(*w))) == NULL) {
		log_warn("fail-closed watch");
		return NULL;
	}
	w->nl = nl;
	w->cfg = cfg;
	w->libipsec = libipsec;
	w->cb = cb;
	w->arg = arg;
	w->settle = evtimer_new(base, settle_cb, w);
	w->sweep = event_new(base, -1, EV_PERSIST, sweep_cb, w);
	w->kw = kwatch_new(base, changed_cb, w);
	if (w->settle == NULL || w->sweep == NULL || w->kw == NULL ||
	    event_add(w->sweep, &tv) == -1) {
		log_warnx("fail-closed watch: cannot start; the layer is "
		    "installed but not watched");
		blockwatch_free(w);
		return NULL;
	}
	return w;
}

void
blockwatch_get(const struct blockwatch *w, struct blockwatch_view *v)
{
	memset(v, 0, sizeof(*v));
	if (w != NULL)
		*v = w->view;
}

void
blockwatch_free(struct blockwatch *w)
{
	if (w == NULL)
		return;
	kwatch_free(w->kw);
	if (w->settle != NULL)
		event_free(w->settle);
	if (w->sweep != NULL)
		event_free(w->sweep);
	free(w);
}
