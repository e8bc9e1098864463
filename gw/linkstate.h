/*
 * Link state between the two sites: authenticated probes on two paths, one
 * state machine per peer, and the feeds that publish its changes.
 *
 *   probe.c     probe packets (pure codec) and the probe engine on the loop
 *   linkstate.c combines carrier, charon, IKE/CHILD SA and both probe paths
 *               into up / degraded / down with a reason
 *   wanwatch.c  WAN carrier and operational state through libnl events
 *   feeds: http.c (/status, /metrics), metrics.c (Prometheus text, pure),
 *          notify.c (state file, hooks), etcd.c (site etcd, v3 JSON API)
 */
#ifndef GRGW_LINKSTATE_H
#define GRGW_LINKSTATE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "grgw.h"

struct event_base;
struct json_t;
struct strbuf;
struct status_view;

/* ---- probe paths ---------------------------------------------------------- */

enum probe_path {
	PROBE_TUNNEL,		/* LAN address to LAN address, inside the tunnel */
	PROBE_UNDERLAY,		/* WAN address to WAN address, in clear */
	PROBE_NPATHS
};

#define PROBE_PORT_DEFAULT	4211	/* UDP, both paths */
#define PROBE_RTT_WINDOW	256	/* samples kept for percentiles */

struct path_stats {
	int		up;		/* BFD-style session state */
	int		ever_up;
	double		rtt_last_ms;
	double		rtt_smoothed_ms;	/* EWMA, alpha 1/8 */
	double		rtt_p50_ms;
	double		rtt_p99_ms;		/* over the window */
	double		jitter_ms;	/* mean |delta| of consecutive RTTs */
	double		loss_ratio;	/* over the window, 0..1 */
	uint64_t	loss_sample;	/* decided requests it is over, at
					 * most PROBE_RTT_WINDOW */
	uint64_t	sent;		/* requests sent */
	uint64_t	received;	/* valid replies */
	uint64_t	answered;	/* valid requests from the peer answered */
	uint64_t	rejected_auth;	/* bad MAC: forged or tampered */
	uint64_t	rejected_replay;	/* seen or too old */
	uint64_t	rejected_malformed;	/* wrong size, version, type */
	uint64_t	rejected_skew;	/* authentic, but the peer's clock
					 * is more than 30 s from ours */
	double		clock_skew_ms;	/* peer's clock minus ours, as its
					 * last refused packet said; NaN */
	int		skew_recent;	/* such a packet within the last
					 * detection time */
	uint64_t	reordered;	/* replies arriving out of order */
	uint64_t	transitions;
};

/* ---- link state ------------------------------------------------------------ */

enum link_state { LINK_DOWN, LINK_DEGRADED, LINK_UP };

enum link_reason {
	REASON_NONE,			/* up */
	REASON_STARTING,		/* no verdict yet */
	REASON_WAN_LINK_DOWN,		/* carrier lost / interface down */
	REASON_UNDERLAY_UNREACHABLE,	/* WAN probes lost */
	REASON_TUNNEL_DOWN,		/* underlay fine, tunnel not */
	REASON_IKE_AUTH_FAILED,
	REASON_CHARON_DOWN,
	REASON_LOSS,			/* degraded: loss above threshold */
	REASON_RTT,			/* degraded: RTT above threshold */
	REASON_CLOCK_SKEW,		/* probes refused: clocks differ */
	REASON_STOPPED,			/* the gateway was stopped */
	REASON_SA_DOWN,			/* probes = off: no CHILD_SA */
};

const char *link_state_name(enum link_state s);
const char *link_reason_name(enum link_reason r);

/* Everything the feeds publish about one peer.  Plain data. */
struct link_view {
	const char	*site;		/* borrowed from the config */
	const char	*peer;
	enum grgw_probes method;	/* how the paths are measured */
	enum link_state	state;
	enum link_reason reason;
	struct timespec	since;		/* CLOCK_REALTIME of the last change */
	uint64_t	changes;	/* state changes since start */
	int		carrier;	/* WAN interface up with carrier */
	int		charon_up;
	int		ike_up;
	int		child_up;
	unsigned	charon_restarts;
	uint64_t	tunnel_bytes_in, tunnel_bytes_out;
	uint64_t	tunnel_packets_in, tunnel_packets_out;
	struct path_stats paths[PROBE_NPATHS];
};

/* Thresholds for `degraded` (from the [probe] section). */
struct link_thresholds {
	double		degraded_loss;		/* ratio, e.g. 0.05 */
	double		degraded_rtt_ms;	/* smoothed RTT, e.g. 150 */
};

/*
 * The state machine is pure: inputs in, verdict out.  linkstate_eval()
 * returns the state and reason for the inputs in v (method, carrier,
 * charon_up, ike_up, child_up, paths[].up and their loss/RTT) and the
 * configured thresholds.  Order of precedence: WAN link down, charon
 * down, IKE authentication failed, underlay unreachable, tunnel down,
 * degraded, up.  With GRGW_PROBES_ICMP the paths are measured by ICMP
 * echo and judged the same way; with GRGW_PROBES_OFF the paths are
 * ignored and the link is up exactly while a CHILD_SA is installed
 * (down with REASON_SA_DOWN otherwise).
 */
void	linkstate_eval(const struct link_view *v, int auth_failed,
	    const struct link_thresholds *t, enum link_state *state,
	    enum link_reason *reason);

/* ---- JSON rendering (pure) ------------------------------------------------- */

/*
 * The "link" object of /status, of the state file and of the etcd value,
 * as a new jansson tree (the caller owns the reference), or NULL when out
 * of memory.  v is read during the call only.
 */
struct json_t *linkstate_json(const struct link_view *v);
/* The same object, appended to sb as compact JSON (jsondoc_append()). */
void	linkstate_render_json(const struct link_view *v, struct strbuf *sb);

#endif /* GRGW_LINKSTATE_H */
