/*
 * Prometheus text exposition (format 0.0.4) of the daemon's status and
 * link views.  Pure: views in, text out.
 *
 * Every family gets "# HELP" and "# TYPE" lines and all its samples
 * together.  Link families carry site and peer labels, daemon families
 * site only.  The state is exported twice: grgw_link_up (1 while the link
 * carries traffic, that is up or degraded) for simple alerts, and
 * grgw_link_state, one-hot over the state names (exactly one sample is 1),
 * so that a dashboard shows the state by name without a code table.
 * Non-finite values print as NaN, +Inf or -Inf, which the format allows.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

#include "grgw.h"
#include "blockwatch.h"
#include "status.h"
#include "strbuf.h"
#include "linkstate.h"
#include "feeds.h"
#include "qosd.h"

static const char *const path_label[PROBE_NPATHS] = {
	[PROBE_TUNNEL] = "tunnel",
	[PROBE_UNDERLAY] = "underlay",
};

static const enum link_state all_states[] = {
	LINK_DOWN, LINK_DEGRADED, LINK_UP,
};

static const enum link_reason all_reasons[] = {
	REASON_NONE, REASON_STARTING, REASON_WAN_LINK_DOWN,
	REASON_UNDERLAY_UNREACHABLE, REASON_TUNNEL_DOWN,
	REASON_IKE_AUTH_FAILED, REASON_CHARON_DOWN, REASON_LOSS, REASON_RTT,
	REASON_CLOCK_SKEW, REASON_STOPPED, REASON_SA_DOWN,
};

/* Label values: backslash, double quote and newline are escaped. */
static void
label_value(struct strbuf *sb, const char *s)
{
	const char	*p;

	strbuf_printf(sb, "\"");
	for (p = s != NULL ? s : ""; *p != '\0'; p++) {
		if (*p == '\\')
			strbuf_printf(sb, "\\\\");
		else if (*p == '"')
			strbuf_printf(sb, "\\\"");
		else if (*p == '\n')
			strbuf_printf(sb, "\\n");
		else
			strbuf_printf(sb, "%c", *p);
	}
	strbuf_printf(sb, "\"");
}

/* HELP text: backslash and newline are escaped. */
static void
family(struct strbuf *sb, const char *name, const char *type,
    const char *help)
{
	const char	*p;

	strbuf_printf(sb, "# HELP %s ", name);
	for (p = help; *p != '\0'; p++) {
		if (*p == '\\')
			strbuf_printf(sb, "\\\\");
		else if (*p == '\n')
			strbuf_printf(sb, "\\n");
		else
			strbuf_printf(sb, "%c", *p);
	}
	strbuf_printf(sb, "\n# TYPE %s %s\n", name, type);
}

/*
 * A sample is written in three steps: sample_open() prints the name and
 * the common labels (already rendered in `base`), label() adds one more,
 * and value_u64()/value_f() close the braces and print the value.
 */
static void
sample_open(struct strbuf *sb, const char *name, const struct strbuf *base)
{
	strbuf_printf(sb, "%s{%s", name, base->s != NULL ? base->s : "");
}

static void
label(struct strbuf *sb, const char *key, const char *value)
{
	strbuf_printf(sb, ",%s=", key);
	label_value(sb, value);
}

static void
value_u64(struct strbuf *sb, uint64_t v)
{
	strbuf_printf(sb, "} %llu\n", (unsigned long long)v);
}

/*
 * The shortest of %.15g and %.17g that reads back as v: "0.011", not
 * "0.011000000000000001", and timestamps keep their fraction.
 */
static const char *
shortest(double v, char *buf, size_t size)
{
	snprintf(buf, size, "%.15g", v);
	if (strtod(buf, NULL) != v)
		snprintf(buf, size, "%.17g", v);
	return buf;
}

static void
value_f(struct strbuf *sb, double v)
{
	char	 buf[40];

	if (isnan(v))
		strbuf_printf(sb, "} NaN\n");
	else if (isinf(v))
		strbuf_printf(sb, "} %s\n", v > 0 ? "+Inf" : "-Inf");
	else
		strbuf_printf(sb, "} %s\n", shortest(v, buf, sizeof(buf)));
}

/* One sample per path of a double taken from path_stats. */
static void
per_path_f(struct strbuf *sb, const struct strbuf *base,
    const struct link_view *lv, const char *name, const char *help,
    size_t off, double scale)
{
	int	 i;
	double	 v;

	family(sb, name, "gauge", help);
	for (i = 0; i < PROBE_NPATHS; i++) {
		v = *(const double *)(const void *)
		    ((const char *)&lv->paths[i] + off);
		sample_open(sb, name, base);
		label(sb, "path", path_label[i]);
		value_f(sb, v * scale);
	}
}

/* One sample per path of a counter taken from path_stats. */
static void
per_path_u64(struct strbuf *sb, const struct strbuf *base,
    const struct link_view *lv, const char *name, const char *help,
    size_t off)
{
	int	 i;

	family(sb, name, "counter", help);
	for (i = 0; i < PROBE_NPATHS; i++) {
		sample_open(sb, name, base);
		label(sb, "path", path_label[i]);
		value_u64(sb, *(const uint64_t *)(const void *)
		    ((const char *)&lv->paths[i] + off));
	}
}

#define PS_OFF(f)	offsetof(struct path_stats, f)

static void
render_link(struct strbuf *sb, const struct strbuf *base,
    const struct link_view *lv)
{
	static const char *const dir[2] = { "in", "out" };
	uint64_t	 bytes[2], packets[2];
	size_t		 i;
	int		 p;

	family(sb, "grgw_link_up", "gauge", "1 while the link to the peer "
	    "carries traffic (state up or degraded), else 0.");
	sample_open(sb, "grgw_link_up", base);
	value_u64(sb, lv->state == LINK_UP || lv->state == LINK_DEGRADED);

	family(sb, "grgw_link_state", "gauge", "Link state, one-hot: the "
	    "sample whose state label is the current state is 1.");
	for (i = 0; i < nitems(all_states); i++) {
		sample_open(sb, "grgw_link_state", base);
		label(sb, "state", link_state_name(all_states[i]));
		value_u64(sb, lv->state == all_states[i]);
	}

	family(sb, "grgw_link_reason", "gauge", "Reason for the link state, "
	    "one-hot over the reason names (none while up).");
	for (i = 0; i < nitems(all_reasons); i++) {
		sample_open(sb, "grgw_link_reason", base);
		label(sb, "reason", link_reason_name(all_reasons[i]));
		value_u64(sb, lv->reason == all_reasons[i]);
	}

	family(sb, "grgw_link_method", "gauge", "How the link is measured "
	    "([peer] probes: grgw, icmp or off); always 1.");
	sample_open(sb, "grgw_link_method", base);
	label(sb, "method", config_probes_name(lv->method));
	value_u64(sb, 1);

	family(sb, "grgw_link_state_since_timestamp_seconds", "gauge",
	    "Unix time of the last change of the link state.");
	sample_open(sb, "grgw_link_state_since_timestamp_seconds", base);
	value_f(sb, (double)lv->since.tv_sec +
	    (double)(lv->since.tv_nsec / 1000000) / 1000.0);

	family(sb, "grgw_link_state_changes_total", "counter",
	    "Changes of the link state since the daemon started.");
	sample_open(sb, "grgw_link_state_changes_total", base);
	value_u64(sb, lv->changes);

	family(sb, "grgw_wan_carrier", "gauge",
	    "1 while the WAN interface is up with carrier.");
	sample_open(sb, "grgw_wan_carrier", base);
	value_u64(sb, lv->carrier != 0);

	family(sb, "grgw_ike_sa_up", "gauge",
	    "1 while an IKE SA with the peer is established.");
	sample_open(sb, "grgw_ike_sa_up", base);
	value_u64(sb, lv->ike_up != 0);

	family(sb, "grgw_child_sa_up", "gauge",
	    "1 while the CHILD SA carrying the site prefixes is installed.");
	sample_open(sb, "grgw_child_sa_up", base);
	value_u64(sb, lv->child_up != 0);

	family(sb, "grgw_path_up", "gauge", "1 while the probes on the path "
	    "(tunnel: LAN to LAN inside the tunnel; underlay: WAN to WAN) "
	    "get answers.");
	for (p = 0; p < PROBE_NPATHS; p++) {
		sample_open(sb, "grgw_path_up", base);
		label(sb, "path", path_label[p]);
		value_u64(sb, lv->paths[p].up != 0);
	}
	per_path_u64(sb, base, lv, "grgw_path_transitions_total",
	    "Times the path went up or down.", PS_OFF(transitions));

	/*
	 * A summary of quantiles only (no _sum or _count): the quantiles
	 * cover a sliding window, as a client library's summary does, and a
	 * gauge may not carry a quantile label.
	 */
	family(sb, "grgw_probe_rtt_seconds", "summary", "Probe round-trip "
	    "time percentiles over the last 256 probes; NaN without answers.");
	for (p = 0; p < PROBE_NPATHS; p++) {
		sample_open(sb, "grgw_probe_rtt_seconds", base);
		label(sb, "path", path_label[p]);
		label(sb, "quantile", "0.5");
		value_f(sb, lv->paths[p].rtt_p50_ms / 1000.0);
		sample_open(sb, "grgw_probe_rtt_seconds", base);
		label(sb, "path", path_label[p]);
		label(sb, "quantile", "0.99");
		value_f(sb, lv->paths[p].rtt_p99_ms / 1000.0);
	}
	per_path_f(sb, base, lv, "grgw_probe_rtt_last_seconds",
	    "Round-trip time of the last answered probe.",
	    PS_OFF(rtt_last_ms), 0.001);
	per_path_f(sb, base, lv, "grgw_probe_rtt_smoothed_seconds",
	    "Smoothed probe round-trip time (EWMA, alpha 1/8).",
	    PS_OFF(rtt_smoothed_ms), 0.001);
	per_path_f(sb, base, lv, "grgw_probe_jitter_seconds",
	    "Mean difference between consecutive probe round-trip times.",
	    PS_OFF(jitter_ms), 0.001);
	per_path_f(sb, base, lv, "grgw_probe_loss_ratio",
	    "Share of the last 256 probes left unanswered, 0 to 1.",
	    PS_OFF(loss_ratio), 1.0);

	per_path_u64(sb, base, lv, "grgw_probe_sent_total",
	    "Probe requests sent.", PS_OFF(sent));
	per_path_u64(sb, base, lv, "grgw_probe_received_total",
	    "Valid probe replies received.", PS_OFF(received));
	per_path_u64(sb, base, lv, "grgw_probe_answered_total",
	    "Valid probe requests from the peer answered.", PS_OFF(answered));
	per_path_u64(sb, base, lv, "grgw_probe_reordered_total",
	    "Probe replies that arrived out of order.", PS_OFF(reordered));

	family(sb, "grgw_probe_rejected_total", "counter", "Probe packets "
	    "refused: auth (bad MAC), replay (seen or too old), malformed, "
	    "skew (the peer's clock is more than 30 s from ours).");
	for (p = 0; p < PROBE_NPATHS; p++) {
		const uint64_t n[4] = { lv->paths[p].rejected_auth,
		    lv->paths[p].rejected_replay,
		    lv->paths[p].rejected_malformed,
		    lv->paths[p].rejected_skew };
		static const char *const why[4] = {
		    "auth", "replay", "malformed", "skew" };

		for (i = 0; i < 4; i++) {
			sample_open(sb, "grgw_probe_rejected_total", base);
			label(sb, "path", path_label[p]);
			label(sb, "reason", why[i]);
			value_u64(sb, n[i]);
		}
	}

	family(sb, "grgw_probe_clock_skew_seconds", "gauge", "The peer's "
	    "clock minus ours, as its refused probes said; NaN while they "
	    "are accepted.");
	for (p = 0; p < PROBE_NPATHS; p++) {
		sample_open(sb, "grgw_probe_clock_skew_seconds", base);
		label(sb, "path", path_label[p]);
		value_f(sb, lv->paths[p].skew_recent ?
		    lv->paths[p].clock_skew_ms / 1000.0 : NAN);
	}

	bytes[0] = lv->tunnel_bytes_in;
	bytes[1] = lv->tunnel_bytes_out;
	packets[0] = lv->tunnel_packets_in;
	packets[1] = lv->tunnel_packets_out;
	family(sb, "grgw_tunnel_bytes_total", "counter",
	    "Bytes through the tunnel (inner packets), by direction.");
	for (i = 0; i < 2; i++) {
		sample_open(sb, "grgw_tunnel_bytes_total", base);
		label(sb, "direction", dir[i]);
		value_u64(sb, bytes[i]);
	}
	family(sb, "grgw_tunnel_packets_total", "counter",
	    "Packets through the tunnel, by direction.");
	for (i = 0; i < 2; i++) {
		sample_open(sb, "grgw_tunnel_packets_total", base);
		label(sb, "direction", dir[i]);
		value_u64(sb, packets[i]);
	}
}

/* Tunnel counters from the status view, when there is no link view. */
static void
render_status_counters(struct strbuf *sb, const struct strbuf *base,
    const struct status_view *sv)
{
	family(sb, "grgw_tunnel_bytes_total", "counter",
	    "Bytes through the tunnel (inner packets), by direction.");
	sample_open(sb, "grgw_tunnel_bytes_total", base);
	label(sb, "direction", "in");
	value_u64(sb, sv->bytes_in);
	sample_open(sb, "grgw_tunnel_bytes_total", base);
	label(sb, "direction", "out");
	value_u64(sb, sv->bytes_out);
	family(sb, "grgw_tunnel_packets_total", "counter",
	    "Packets through the tunnel, by direction.");
	sample_open(sb, "grgw_tunnel_packets_total", base);
	label(sb, "direction", "in");
	value_u64(sb, sv->packets_in);
	sample_open(sb, "grgw_tunnel_packets_total", base);
	label(sb, "direction", "out");
	value_u64(sb, sv->packets_out);
}


/* The fail-closed layer as the daemon keeps it. */
static void
render_block(struct strbuf *sb, const struct strbuf *base,
    const struct blockwatch_view *b)
{
	family(sb, "grgw_block_repairs_total", "counter", "Times something "
	    "removed, changed or overrode the fail-closed layer and grgw "
	    "installed it again.");
	sample_open(sb, "grgw_block_repairs_total", base);
	value_u64(sb, b->repairs);
	family(sb, "grgw_block_overridden", "gauge", "1 while a foreign "
	    "policy rule routes a peer prefix that guard rules could not "
	    "take back (the WAN block still drops clear text).");
	sample_open(sb, "grgw_block_overridden", base);
	value_u64(sb, b->overridden != 0);
	family(sb, "grgw_kernel_record_ok", "gauge", "0 while the record of "
	    "installed kernel objects cannot be written (a full run "
	    "directory).");
	sample_open(sb, "grgw_kernel_record_ok", base);
	value_u64(sb, b->record_errno == 0);
}
/*
 * The certificates of [auth]: the notAfter times (the shipped alert
 * GrgwCertificateExpiresSoon reads them) and the warning state.
 */
static void
render_certs(struct strbuf *sb, const struct strbuf *site_l,
    const struct status_view *sv)
{
	const struct cert_info	*certs[2] = { sv->cert_local, sv->cert_ca };
	static const char *const names[2] = { "local", "ca" };
	size_t			 i;

	if (sv->cert_local == NULL && sv->cert_ca == NULL)
		return;
	family(sb, "grgw_cert_expiry_timestamp_seconds", "gauge",
	    "Unix time the certificate expires (notAfter); certificate is "
	    "local (this gateway's) or ca.");
	for (i = 0; i < nitems(certs); i++) {
		if (certs[i] == NULL)
			continue;
		sample_open(sb, "grgw_cert_expiry_timestamp_seconds", site_l);
		label(sb, "certificate", names[i]);
		value_u64(sb, certs[i]->not_after > 0 ?
		    (uint64_t)certs[i]->not_after : 0);
	}
	family(sb, "grgw_cert_warning", "gauge",
	    "1 while the certificate expires within [auth] cert_warn_days, "
	    "has expired or is not valid yet.");
	for (i = 0; i < nitems(certs); i++) {
		if (certs[i] == NULL)
			continue;
		sample_open(sb, "grgw_cert_warning", site_l);
		label(sb, "certificate", names[i]);
		value_u64(sb, cert_state_at(certs[i], sv->now,
		    sv->cfg->cert_warn_days) != CERT_VALID);
	}
}

/* [pair]: the role (one sample per role, 1 for the current one). */
static void
render_pair(struct strbuf *sb, const struct strbuf *site_l,
    const struct status_view *sv)
{
	static const char *const roles[] = { "starting", "standby",
	    "claiming", "active", "released" };
	size_t	 i;

	family(sb, "grgw_ha_role", "gauge", "1 for the role this gateway of "
	    "a pair has now (starting, standby, claiming, active, "
	    "released), 0 for the others.");
	for (i = 0; i < nitems(roles); i++) {
		sample_open(sb, "grgw_ha_role", site_l);
		label(sb, "role", roles[i]);
		value_u64(sb, strcmp(sv->pair_role, roles[i]) == 0);
	}
	family(sb, "grgw_ha_holds_addresses", "gauge", "1 while the site's "
	    "floating addresses are on this gateway.");
	sample_open(sb, "grgw_ha_holds_addresses", site_l);
	value_u64(sb, sv->pair_held != 0);
	family(sb, "grgw_ha_epoch", "gauge", "The last epoch of the pair's "
	    "fence in etcd this gateway knows of.");
	sample_open(sb, "grgw_ha_epoch", site_l);
	value_u64(sb, sv->pair_epoch);
	family(sb, "grgw_ha_takeovers_total", "counter", "Times this "
	    "gateway took the active role since it started.");
	sample_open(sb, "grgw_ha_takeovers_total", site_l);
	value_u64(sb, sv->pair_takeovers);
	family(sb, "grgw_ha_partner_up", "gauge", "1 while the partner's "
	    "heartbeats arrive (within dead_ms): the site has redundancy.");
	sample_open(sb, "grgw_ha_partner_up", site_l);
	value_u64(sb, sv->pair_partner_seen != 0);
	family(sb, "grgw_ha_etcd_up", "gauge", "1 while the pair's fence "
	    "in etcd answers.");
	sample_open(sb, "grgw_ha_etcd_up", site_l);
	value_u64(sb, sv->pair_etcd_ok != 0);
	family(sb, "grgw_ha_path_up", "gauge", "1 while the partner's "
	    "heartbeats arrive on this path (1: [pair] address, 2: "
	    "second_address).");
	for (i = 0; i < (sv->cfg->pair.second_address.family != 0 ? 2U :
	    1U); i++) {
		sample_open(sb, "grgw_ha_path_up", site_l);
		label(sb, "path", i == 0 ? "1" : "2");
		value_u64(sb, (sv->pair_paths_seen & (1U << i)) != 0);
	}
}

void
metrics_render(const struct status_view *sv, const struct link_view *lv,
    struct strbuf *sb)
{
	struct strbuf	 site_l, link_l;
	const char	*site = NULL, *peer = NULL;
	int		 charon_up;
	unsigned	 restarts;

	if (lv == NULL && sv != NULL)
		lv = sv->link;		/* the daemon's own link view */
	if (lv != NULL) {
		site = lv->site;
		peer = lv->peer;
	} else if (sv != NULL && sv->cfg != NULL) {
		site = sv->cfg->site.name;
		peer = sv->cfg->peer.name;
	}
	strbuf_init(&site_l);
	strbuf_init(&link_l);
	strbuf_printf(&site_l, "site=");
	label_value(&site_l, site);
	strbuf_printf(&link_l, "site=");
	label_value(&link_l, site);
	strbuf_printf(&link_l, ",peer=");
	label_value(&link_l, peer);
	if (site_l.failed || link_l.failed) {
		sb->failed = 1;
		goto cleanup;
	}

	family(sb, "grgw_build_info", "gauge",
	    "Always 1; the version label is grgw's version.");
	sample_open(sb, "grgw_build_info", &site_l);
	label(sb, "version", GRGW_VERSION);
	value_u64(sb, 1);

	if (sv != NULL) {
		family(sb, "grgw_daemon_start_time_seconds", "gauge",
		    "Unix time the daemon started.");
		sample_open(sb, "grgw_daemon_start_time_seconds", &site_l);
		value_u64(sb, sv->daemon_since > 0 ?
		    (uint64_t)sv->daemon_since : 0);
	}

	/* charon: the link view's facts when there is one, else status. */
	if (lv != NULL || sv != NULL) {
		charon_up = lv != NULL ? lv->charon_up : sv->charon_running;
		restarts = lv != NULL ? lv->charon_restarts :
		    sv->charon_restarts;
		family(sb, "grgw_charon_up", "gauge",
		    "1 while grgw's charon (IKE daemon) runs.");
		sample_open(sb, "grgw_charon_up", &site_l);
		value_u64(sb, charon_up != 0);
		family(sb, "grgw_charon_restarts_total", "counter",
		    "Times grgw restarted charon after it exited.");
		sample_open(sb, "grgw_charon_restarts_total", &site_l);
		value_u64(sb, restarts);

		if (sv != NULL && sv->daemon_running) {
			family(sb, "grgw_charon_crash_loop", "gauge", "1 "
			    "while charon dies in a loop and its restarts "
			    "wait.");
			sample_open(sb, "grgw_charon_crash_loop", &site_l);
			value_u64(sb, sv->charon_crash_loop != 0);
			family(sb, "grgw_netproc_up", "gauge", "1 while the "
			    "network process (probes, HTTP, etcd) runs.");
			sample_open(sb, "grgw_netproc_up", &site_l);
			value_u64(sb, sv->netproc_pid != 0);
			family(sb, "grgw_netproc_restarts_total", "counter",
			    "Times grgw restarted its network process.");
			sample_open(sb, "grgw_netproc_restarts_total", &site_l);
			value_u64(sb, sv->netproc_restarts);
		}
		if (sv != NULL && sv->block != NULL)
			render_block(sb, &site_l, sv->block);

		family(sb, "grgw_tunnel_up", "gauge", "1 while the tunnel to "
		    "the peer is established (IKE and CHILD SA up).");
		sample_open(sb, "grgw_tunnel_up", &link_l);
		value_u64(sb, sv != NULL ? sv->tunnel == TUNNEL_UP :
		    lv->ike_up && lv->child_up);
	}

	if (sv != NULL)
		render_certs(sb, &site_l, sv);
	if (sv != NULL && sv->pair_role != NULL)
		render_pair(sb, &site_l, sv);

	if (lv != NULL)
		render_link(sb, &link_l, lv);
	else if (sv != NULL)
		render_status_counters(sb, &link_l, sv);
	if (sv != NULL && sv->qos != NULL)
		qos_render_metrics(sv->qos, site, sb);

cleanup:
	strbuf_free(&site_l);
	strbuf_free(&link_l);
}
