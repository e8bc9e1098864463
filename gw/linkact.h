/*
 * linkact.c: what the link state does, beyond telling the feeds.
 *
 *   down means refused   while the link is down (once it was up since the
 *                        start), after [probe] refuse_hold_ms, traffic from the
 *                        LAN to the peer prefixes is answered by this
 *                        gateway (netlink's grgw-refuse table)
 *   a dead tunnel        down for "tunnel-down" (the WAN answers, the
 *                        tunnel carries nothing) for a moment: the SAs are
 *                        deleted and initiated again through charon, and
 *                        again every so often while it lasts
 */
#ifndef GRGW_LINKACT_H
#define GRGW_LINKACT_H

struct event_base;
struct grgw_config;
struct gwnl;
struct ike;
struct link_view;
struct linkact;

/* All borrowed for the life of the result; NULL when out of memory. */
struct linkact *linkact_new(struct event_base *base, struct gwnl *nl,
	    struct ike *ike, const struct grgw_config *cfg);
/* The link state changed (v borrowed for the call). */
void	linkact_follow(struct linkact *a, const struct link_view *v);
/*
 * [pair]: this gateway has just taken the role (active) or given it up.
 * Active: its link starts over as at start, nothing refused until it has
 * been up once; until its CHILD_SAs are in, the peer prefixes have no
 * route and fail fast does the same, and from then on traffic flows at
 * once, without waiting for the probes' verdict, which takes a few
 * exchanges.  Standby: nothing is refused; what the nodes still send
 * here meets the routes (the SAs made ready for a handover, a drain
 * from the partner, or fail fast).
 */
void	linkact_role(struct linkact *a, int active);
/* Stop acting (the daemon stops; cleanup removes the refusal). */
void	linkact_stop(struct linkact *a);
int	linkact_refusing(const struct linkact *a);
void	linkact_free(struct linkact *a);		/* accepts NULL */

#endif /* GRGW_LINKACT_H */
