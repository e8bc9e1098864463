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
	}
	return "unknown";
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
	/*
	 * Probes inside the tunnel can only cross it (everything else to
	 * the peer prefixes is blocked), so a live tunnel path with an
	 * installed CHILD_SA is a working tunnel, whatever the underlay
	 * probes say (they may be filtered on the way).
	 */
	if (!(tun->up && v->child_up)) {
		if (auth_failed)
			*reason = REASON_IKE_AUTH_FAILED;
		else if (!und->up)
			*reason = REASON_UNDERLAY_UNREACHABLE;
		else
			*reason = REASON_TUNNEL_DOWN;
		return;
	}
	if (t != NULL && t->degraded_loss > 0 &&
	    tun->loss_ratio > t->degraded_loss) {
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

/* JSON has no NaN or infinity: print null for those. */
static void
json_num(struct strbuf *sb, double x)
{
	if (isfinite(x))
		strbuf_printf(sb, "%.3f", x);
	else
		strbuf_printf(sb, "null");
}

static void
render_path(struct strbuf *sb, const struct path_stats *p)
{
	strbuf_printf(sb, "{\"up\":%s,\"rtt_ms\":{\"last\":",
	    p->up ? "true" : "false");
	json_num(sb, p->rtt_last_ms);
	strbuf_printf(sb, ",\"smoothed\":");
	json_num(sb, p->rtt_smoothed_ms);
	strbuf_printf(sb, ",\"p50\":");
	json_num(sb, p->rtt_p50_ms);
	strbuf_printf(sb, ",\"p99\":");
	json_num(sb, p->rtt_p99_ms);
	strbuf_printf(sb, "},\"jitter_ms\":");
	json_num(sb, p->jitter_ms);
	strbuf_printf(sb, ",\"loss\":");
	json_num(sb, p->loss_ratio);
	strbuf_printf(sb, ",\"sent\":%llu,\"received\":%llu,\"answered\":%llu,"
	    "\"reordered\":%llu,\"transitions\":%llu,\"rejected\":{\"auth\":"
	    "%llu,\"replay\":%llu,\"malformed\":%llu}}",
	    (unsigned long long)p->sent, (unsigned long long)p->received,
	    (unsigned long long)p->answered,
	    (unsigned long long)p->reordered,
	    (unsigned long long)p->transitions,
	    (unsigned long long)p->rejected_auth,
	    (unsigned long long)p->rejected_replay,
	    (unsigned long long)p->rejected_malformed);
}

void
linkstate_render_json(const struct link_view *v, struct strbuf *sb)
{
	char when[40];
	struct tm tm;

	gmtime_r(&v->since.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	strbuf_printf(sb, "{\"site\":");
	strbuf_json_str(sb, v->site);
	strbuf_printf(sb, ",\"peer\":");
	strbuf_json_str(sb, v->peer);
	strbuf_printf(sb, ",\"state\":\"%s\",\"reason\":\"%s\","
	    "\"since\":\"%s.%03ldZ\",\"since_epoch_ms\":%lld,\"changes\":%llu",
	    link_state_name(v->state), link_reason_name(v->reason), when,
	    v->since.tv_nsec / 1000000,
	    (long long)v->since.tv_sec * 1000 + v->since.tv_nsec / 1000000,
	    (unsigned long long)v->changes);
	strbuf_printf(sb, ",\"carrier\":%s,\"charon\":%s,\"ike\":%s,"
	    "\"child\":%s,\"charon_restarts\":%u",
	    v->carrier ? "true" : "false", v->charon_up ? "true" : "false",
	    v->ike_up ? "true" : "false", v->child_up ? "true" : "false",
	    v->charon_restarts);
	strbuf_printf(sb, ",\"paths\":{\"tunnel\":");
	render_path(sb, &v->paths[PROBE_TUNNEL]);
	strbuf_printf(sb, ",\"underlay\":");
	render_path(sb, &v->paths[PROBE_UNDERLAY]);
	strbuf_printf(sb, "}}");
}
