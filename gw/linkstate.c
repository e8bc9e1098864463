/*
 * The link-state machine (pure) and its JSON rendering.
 *
 * Inputs are facts the daemon observes; the verdict is recomputed from all
 * of them whenever one changes, so there is no hidden history here: the
 * hysteresis lives in the probe paths (a path comes back only after
 * several good replies), not in this function.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "grgw.h"
#include "strbuf.h"
#include "jsondoc.h"
#include "linkstate.h"

const char *
link_state_name(enum link_state s)
{
	switch (s) {
	case LINK_UP:
		return "up";
	case LINK_DEGRADED:
		return "degraded";
	case LINK_DOWN:
	default:
		return "down";
	}
}

const char *
link_reason_name(enum link_reason r)
{
	switch (r) {
	case REASON_NONE:
		return "none";
	case REASON_STARTING:
		return "starting";
	case REASON_WAN_LINK_DOWN:
		return "wan-link-down";
	case REASON_UNDERLAY_UNREACHABLE:
		return "underlay-unreachable";
	case REASON_TUNNEL_DOWN:
		return "tunnel-down";
	case REASON_IKE_AUTH_FAILED:
		return "ike-auth-failed";
	case REASON_CHARON_DOWN:
		return "charon-down";
	case REASON_LOSS:
		return "loss";
	case REASON_RTT:
		return "rtt";
	case REASON_CLOCK_SKEW:
		return "clock-skew";
	case REASON_STOPPED:
		return "stopped";
	case REASON_SA_DOWN:
		return "sa-down";
	}
	return "unknown";
}

/*
 * Whether sample decided requests are enough for a loss verdict against
 * threshold: enough that one lost request alone is not above it (20 at
 * 5 %), or the whole window.  Right after a path's figures restart (it
 * came up, or a new CHILD_SA), one loss among the first few would
 * otherwise call the link degraded for a moment.
 */
static int
loss_sample_enough(uint64_t sample, double threshold)
{
	double	need = ceil(1.0 / threshold - 1e-9);

	if (need > PROBE_RTT_WINDOW)
		need = PROBE_RTT_WINDOW;
	return (double)sample >= need;
}

void
linkstate_eval(const struct link_view *v, int auth_failed,
    const struct link_thresholds *t, enum link_state *state,
    enum link_reason *reason)
{
	const struct path_stats *tun = &v->paths[PROBE_TUNNEL];
	const struct path_stats *und = &v->paths[PROBE_UNDERLAY];

	*state = LINK_DOWN;
	if (!v->carrier) {
		*reason = REASON_WAN_LINK_DOWN;
		return;
	}
	if (!v->charon_up) {
		*reason = REASON_CHARON_DOWN;
		return;
	}
	if (v->method == GRGW_PROBES_OFF) {
		/* Nothing is measured: the SAs are all there is to go by. */
		if (v->child_up) {
			*state = LINK_UP;
			*reason = REASON_NONE;
		} else
			*reason = auth_failed ? REASON_IKE_AUTH_FAILED :
			    REASON_SA_DOWN;
		return;
	}
	/*
	 * Probes inside the tunnel can only cross it (everything else to
	 * the peer prefixes is blocked), so a live tunnel path with an
	 * installed CHILD_SA is a working tunnel, whatever the underlay
	 * probes say (they may be filtered on the way).
	 */
	if (!(tun->up && v->child_up)) {
		if (auth_failed)
			*reason = REASON_IKE_AUTH_FAILED;
		else if (tun->skew_recent || und->skew_recent)
			/* The peer is there, but the clocks disagree. */
			*reason = REASON_CLOCK_SKEW;
		else if (!und->up)
			*reason = REASON_UNDERLAY_UNREACHABLE;
		else
			*reason = REASON_TUNNEL_DOWN;
		return;
	}
	if (t != NULL && t->degraded_loss > 0 &&
	    tun->loss_ratio > t->degraded_loss &&
	    loss_sample_enough(tun->loss_sample, t->degraded_loss)) {
		*state = LINK_DEGRADED;
		*reason = REASON_LOSS;
		return;
	}
	if (t != NULL && t->degraded_rtt_ms > 0 &&
	    tun->rtt_smoothed_ms > t->degraded_rtt_ms) {
		*state = LINK_DEGRADED;
		*reason = REASON_RTT;
		return;
	}
	*state = LINK_UP;
	*reason = REASON_NONE;
}

static json_t *
path_json(const struct path_stats *p)
{
	return json_pack("{s:b, s:{s:o, s:o, s:o, s:o}, s:o, s:o, s:o, s:o, "
	    "s:o, s:o, s:o, s:{s:o, s:o, s:o, s:o}, s:o}",
	    "up", p->up != 0,
	    "rtt_ms",
		"last", jsondoc_measure(p->rtt_last_ms),
		"smoothed", jsondoc_measure(p->rtt_smoothed_ms),
		"p50", jsondoc_measure(p->rtt_p50_ms),
		"p99", jsondoc_measure(p->rtt_p99_ms),
	    "jitter_ms", jsondoc_measure(p->jitter_ms),
	    "loss", jsondoc_measure(p->loss_ratio),
	    "sent", jsondoc_u64(p->sent),
	    "received", jsondoc_u64(p->received),
	    "answered", jsondoc_u64(p->answered),
	    "reordered", jsondoc_u64(p->reordered),
	    "transitions", jsondoc_u64(p->transitions),
	    "rejected",
		"auth", jsondoc_u64(p->rejected_auth),
		"replay", jsondoc_u64(p->rejected_replay),
		"malformed", jsondoc_u64(p->rejected_malformed),
		"skew", jsondoc_u64(p->rejected_skew),
	    "clock_skew_s", jsondoc_measure(p->skew_recent ?
		p->clock_skew_ms / 1000.0 : NAN));
}

json_t *
linkstate_json(const struct link_view *v)
{
	char		 when[40], since[64];
	struct tm	 tm;

	gmtime_r(&v->since.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(since, sizeof(since), "%s.%03ldZ", when,
	    v->since.tv_nsec / 1000000);
	/* Keys are only ever added, at the end. */
	return json_pack("{s:o, s:o, s:s, s:s, s:s, s:I, s:o, s:b, s:b, s:b, "
	    "s:b, s:I, s:{s:o, s:o}, s:s}",
	    "site", jsondoc_string(v->site),
	    "peer", jsondoc_string(v->peer),
	    "state", link_state_name(v->state),
	    "reason", link_reason_name(v->reason),
	    "since", since,
	    "since_epoch_ms", (json_int_t)v->since.tv_sec * 1000 +
		v->since.tv_nsec / 1000000,
	    "changes", jsondoc_u64(v->changes),
	    "carrier", v->carrier != 0,
	    "charon", v->charon_up != 0,
	    "ike", v->ike_up != 0,
	    "child", v->child_up != 0,
	    "charon_restarts", (json_int_t)v->charon_restarts,
	    "paths",
		"tunnel", path_json(&v->paths[PROBE_TUNNEL]),
		"underlay", path_json(&v->paths[PROBE_UNDERLAY]),
	    "method", config_probes_name(v->method));
}

void
linkstate_render_json(const struct link_view *v, struct strbuf *sb)
{
	jsondoc_append(sb, linkstate_json(v));
}
