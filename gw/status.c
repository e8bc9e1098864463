/*
 * Rendering of `grgw status`.  The same view is filled by the daemon (live
 * state) or by the CLI when no daemon runs, so both answers share one
 * format.  The JSON object is a stable interface: add keys, never rename;
 * it is a jansson tree, so escaping is jansson's.
 */
#include <arpa/inet.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "grgw.h"
#include "blockwatch.h"
#include "status.h"
#include "strbuf.h"
#include "jsondoc.h"
#include "linkstate.h"
#include "qosd.h"

static json_t	*status_json_core(const struct status_view *);

const char *
tunnel_state_name(enum tunnel_state s)
{
	switch (s) {
	case TUNNEL_UP:
		return "up";
	case TUNNEL_CONNECTING:
		return "connecting";
	case TUNNEL_DOWN:
	default:
		return "down";
	}
}

static json_t *
prefixes_json(const struct grgw_side *side)
{
	json_t	*a;
	char	 buf[INET6_ADDRSTRLEN + 8];
	int	 i;

	if ((a = json_array()) == NULL)
		return NULL;
	for (i = 0; i < side->n_prefixes; i++) {
		if (json_array_append_new(a, jsondoc_string(prefix_fmt(
		    &side->prefixes[i], buf, sizeof(buf)))) == -1) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

/* [{"pair": "198.18.1.0/24=198.18.2.0/24", "id": 3, "spi_in": "c1d2e3f4",
 * "spi_out": "..."}]: a reload that changes nothing leaves these as they
 * are, and one that adds or removes a prefix only those of its pairs. */
static json_t *
child_sas_json(const struct status_view *v)
{
	json_t	*a = json_array();
	int	 i;

	for (i = 0; a != NULL && i < v->n_child_sas; i++)
		json_array_append_new(a, json_pack("{s:o, s:I, s:o, s:o}",
		    "pair", jsondoc_string(v->child_sas[i].pair), "id",
		    (json_int_t)v->child_sas[i].id, "spi_in",
		    jsondoc_string(v->child_sas[i].spi_in), "spi_out",
		    jsondoc_string(v->child_sas[i].spi_out)));
	return a != NULL ? a : json_null();
}

static json_t *
peer_json(const struct status_view *v)
{
	const struct grgw_config	*cfg = v->cfg;
	char				 addr[INET6_ADDRSTRLEN];

	return json_pack("{s:o, s:o, s:s, s:I, s:o, s:o, s:o, s:I, s:I, s:b, "
	    "s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:b}",
	    "name", jsondoc_string(cfg->peer.name),
	    "address", jsondoc_string(addr_fmt(&cfg->peer.wan_address, addr,
		sizeof(addr))),
	    "tunnel", tunnel_state_name(v->tunnel),
	    "since", (json_int_t)v->tunnel_since,
	    "ike", jsondoc_string(v->ike_state ? v->ike_state : "none"),
	    "child", jsondoc_string(v->child_state ? v->child_state : "none"),
	    "child_sas", child_sas_json(v),
	    "pairs", (json_int_t)v->pairs,
	    "pairs_missing", (json_int_t)v->pairs_missing,
	    "traffic_verified", v->traffic_verified != 0,
	    "last_error", jsondoc_string(v->last_error),
	    "bytes_in", jsondoc_u64(v->bytes_in),
	    "bytes_out", jsondoc_u64(v->bytes_out),
	    "packets_in", jsondoc_u64(v->packets_in),
	    "packets_out", jsondoc_u64(v->packets_out),
	    "local_prefixes", prefixes_json(&cfg->site),
	    "remote_prefixes", prefixes_json(&cfg->peer),
	    "link", v->link != NULL ? linkstate_json(v->link) : json_null(),
	    "refusing", v->refusing != 0);
}

/* The kernel objects, and how the fail-closed layer has been kept. */
static json_t *
kernel_json(const struct status_view *v)
{
	const struct blockwatch_view *b = v->block;

	if (b == NULL)
		return json_pack("{s:i, s:i}", "block_objects", v->kernel_block,
		    "run_objects", v->kernel_run);
	return json_pack("{s:i, s:i, s:I, s:o, s:I, s:b, s:o, s:o}",
	    "block_objects", v->kernel_block,
	    "run_objects", v->kernel_run,
	    "block_repairs", (json_int_t)b->repairs,
	    "last_repair", b->last[0] != '\0' ? jsondoc_string(b->last) :
		json_null(),
	    "last_repair_at", (json_int_t)b->last_at,
	    "block_overridden", b->overridden != 0,
	    "block_override", b->overridden ? jsondoc_string(b->override) :
		json_null(),
	    "record_error", b->record_errno != 0 ?
		jsondoc_string(strerror(b->record_errno)) : json_null());
}

/* null when etcd is off; healthy is false until the network process says. */
static json_t *
etcd_json(const struct status_view *v)
{
	const struct grgw_feeds_conf *f = &v->cfg->feeds;

	if (f->etcd_endpoint[0] == '\0')
		return json_null();
	return json_pack("{s:o, s:o, s:b, s:o}",
	    "endpoint", jsondoc_string(f->etcd_endpoint),
	    "key", jsondoc_string(f->etcd_key),
	    "healthy", v->etcd_said && v->etcd_healthy,
	    "error", jsondoc_string(v->etcd_error));
}

static json_t *
cert_json(const struct cert_info *ci, time_t now, unsigned warn_days)
{
	char	 when[32];

	if (ci == NULL)
		return json_null();
	return json_pack("{s:o, s:I, s:I, s:s, s:I, s:s}",
	    "subject", jsondoc_string(ci->subject),
	    "not_before", (json_int_t)ci->not_before,
	    "not_after", (json_int_t)ci->not_after,
	    "expires", cert_time_fmt(ci->not_after, when, sizeof(when)),
	    "days_left", (json_int_t)((ci->not_after - now) / 86400),
	    "state", cert_state_name(cert_state_at(ci, now, warn_days)));
}

/* null with a pre-shared key. */
static json_t *
certs_json(const struct status_view *v)
{
	unsigned	 warn = v->cfg->cert_warn_days;

	if (v->cfg->auth != GRGW_AUTH_CERT ||
	    (v->cert_local == NULL && v->cert_ca == NULL))
		return json_null();
	return json_pack("{s:I, s:o, s:o}",
	    "warn_days", (json_int_t)warn,
	    "local", cert_json(v->cert_local, v->now, warn),
	    "ca", cert_json(v->cert_ca, v->now, warn));
}

/* The heartbeat paths: [{"address", "partner", "up"}, ...]. */
static json_t *
paths_json(const struct status_view *v)
{
	const struct grgw_pair_conf *p = &v->cfg->pair;
	const struct grgw_addr *ends[2][2] = {
		{ &p->address, &p->partner },
		{ &p->second_address, &p->second_partner },
	};
	char	 a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];
	json_t	*arr;
	int	 i;

	if ((arr = json_array()) == NULL)
		return NULL;
	for (i = 0; i < 2 && ends[i][0]->family != 0; i++)
		json_array_append_new(arr, json_pack("{s:s, s:s, s:b}",
		    "address", addr_fmt(ends[i][0], a, sizeof(a)), "partner",
		    addr_fmt(ends[i][1], b, sizeof(b)), "up",
		    (v->pair_paths_seen & (1 << i)) != 0));
	return arr;
}

/* null without a pair (or a daemon); else the role and the partner. */
static json_t *
pair_json(const struct status_view *v)
{
	const struct grgw_pair_conf *p = &v->cfg->pair;
	char	 me[INET6_ADDRSTRLEN], partner[INET6_ADDRSTRLEN];

	if (!p->enabled || v->pair_role == NULL)
		return json_null();
	addr_fmt(&p->address, me, sizeof(me));
	addr_fmt(&p->partner, partner, sizeof(partner));
	return json_pack("{s:s, s:s, s:b, s:I, s:I, s:b, s:I, s:o, s:{s:s, "
	    "s:b, s:o, s:o}, s:o}",
	    "address", me,
	    "role", v->pair_role,
	    "holds_addresses", v->pair_held != 0,
	    "kernel_hold_ms", (json_int_t)v->pair_kernel_hold_ms,
	    "epoch", (json_int_t)v->pair_epoch,
	    "etcd_ok", v->pair_etcd_ok != 0,
	    "takeovers", (json_int_t)v->pair_takeovers,
	    "reason", jsondoc_string(v->pair_reason),
	    "partner",
		"address", partner,
		"seen", v->pair_partner_seen != 0,
		"role", v->pair_partner_age_ms == UINT32_MAX ? json_null() :
		    jsondoc_string(v->pair_partner_role),
		"age_ms", v->pair_partner_age_ms == UINT32_MAX ?
		    json_null() : json_integer(v->pair_partner_age_ms),
	    "paths", paths_json(v));
}

json_t *
status_json(const struct status_view *v)
{
	json_t	*o;

	if ((o = status_json_core(v)) != NULL &&
	    (json_object_set_new(o, "certificates", certs_json(v)) == -1 ||
	    json_object_set_new(o, "pair", pair_json(v)) == -1)) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *
status_json_core(const struct status_view *v)
{
	return json_pack("{s:s, s:o, s:{s:b, s:i, s:I}, s:{s:b, s:i, s:I, s:b, s:I}, "
	    "s:{s:b, s:i, s:o, s:I}, s:o, s:s, s:o, s:o, s:[o]}",
	    "version", GRGW_VERSION,
	    "site", jsondoc_string(v->cfg->site.name),
	    "daemon",
		"running", v->daemon_running != 0,
		"pid", (int)v->daemon_pid,
		"since", (json_int_t)v->daemon_since,
	    "charon",
		"running", v->charon_running != 0,
		"pid", (int)v->charon_pid,
		"restarts", (json_int_t)v->charon_restarts,
		"crash_loop", v->charon_crash_loop != 0,
		"restart_delay_ms", (json_int_t)v->charon_restart_delay_ms,
	    "netproc",
		"running", v->netproc_pid != 0,
		"pid", (int)v->netproc_pid,
		"user", jsondoc_string(v->cfg->user),
		"restarts", (json_int_t)v->netproc_restarts,
	    "etcd", etcd_json(v),
	    "dataplane", config_dataplane_name(v->dataplane),
	    "kernel", kernel_json(v),
	    "qos", v->qos != NULL ? qos_json(v->qos) : json_null(),
	    "peers", peer_json(v));
}

void
status_render_json(const struct status_view *v, struct strbuf *sb)
{
	jsondoc_append(sb, status_json(v));
	strbuf_printf(sb, "\n");
}

static const char *
fmt_since(time_t t, char *buf, size_t size)
{
	struct tm tm;

	if (t == 0)
		return "never";
	localtime_r(&t, &tm);
	strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm);
	return buf;
}

static void
status_render_path_text(const char *name, const struct path_stats *p,
    struct strbuf *sb)
{
	strbuf_printf(sb, "    %-9s %s", name, p->up ? "up  " : "down");
	if (p->received > 0)
		strbuf_printf(sb, "  rtt %.2f ms (p99 %.2f), jitter %.2f ms, "
		    "loss %.1f%%", p->rtt_smoothed_ms, p->rtt_p99_ms,
		    p->jitter_ms, p->loss_ratio * 100.0);
	strbuf_printf(sb, "  sent %llu, received %llu, rejected %llu\n",
	    (unsigned long long)p->sent, (unsigned long long)p->received,
	    (unsigned long long)(p->rejected_auth + p->rejected_replay +
	    p->rejected_malformed + p->rejected_skew));
	if (p->skew_recent)
		strbuf_printf(sb, "              the peer's clock is %+.1f s from "
		    "ours: its probes are refused (more than 30 s); set both "
		    "gateways' clocks right (NTP)\n", p->clock_skew_ms / 1000.0);
}

static void
status_render_cert_text(const struct status_view *v, const char *what,
    const struct cert_info *ci, struct strbuf *sb)
{
	char			 when[32];
	enum cert_state		 st;

	if (ci == NULL)
		return;
	st = cert_state_at(ci, v->now, v->cfg->cert_warn_days);
	strbuf_printf(sb, "  %s %s, expires %s", what, ci->subject,
	    cert_time_fmt(ci->not_after, when, sizeof(when)));
	switch (st) {
	case CERT_VALID:
		strbuf_printf(sb, " (in %lld days)\n",
		    (long long)((ci->not_after - v->now) / 86400));
		break;
	case CERT_EXPIRES_SOON:
		strbuf_printf(sb, "\n              WARNING: expires in %lld "
		    "days (warning from %u days); renew it and reload\n",
		    (long long)((ci->not_after - v->now) / 86400),
		    v->cfg->cert_warn_days);
		break;
	case CERT_EXPIRED:
		strbuf_printf(sb, "\n              ERROR: expired; the peer "
		    "refuses it: renew it and reload\n");
		break;
	case CERT_NOT_YET_VALID:
		strbuf_printf(sb, "\n              ERROR: not valid before "
		    "%s (is the clock right?)\n", cert_time_fmt(ci->not_before,
		    when, sizeof(when)));
		break;
	}
}

static void
status_render_link_text(const struct link_view *l, struct strbuf *sb)
{
	char when[32];

	strbuf_printf(sb, "  link:       %s (%s) since %s, %llu changes, "
	    "probes %s\n", link_state_name(l->state),
	    link_reason_name(l->reason),
	    fmt_since(l->since.tv_sec, when, sizeof(when)),
	    (unsigned long long)l->changes, config_probes_name(l->method));
	if (l->method == GRGW_PROBES_OFF) {
		strbuf_printf(sb, "              not measured: the link follows "
		    "the IKE and CHILD SAs\n");
		return;
	}
	status_render_path_text("tunnel", &l->paths[PROBE_TUNNEL], sb);
	status_render_path_text("underlay", &l->paths[PROBE_UNDERLAY], sb);
}

static void
status_render_etcd_text(const struct status_view *v, struct strbuf *sb)
{
	const struct grgw_feeds_conf *f = &v->cfg->feeds;

	strbuf_printf(sb, "  etcd:       %s key %s: ", f->etcd_endpoint,
	    f->etcd_key);
	if (v->etcd_said && v->etcd_healthy)
		strbuf_printf(sb, "published\n");
	else if (v->etcd_error != NULL)
		strbuf_printf(sb, "failing (%s)\n", v->etcd_error);
	else
		strbuf_printf(sb, "not yet published\n");
}

static void
status_render_pair_text(const struct status_view *v, struct strbuf *sb)
{
	char	 partner[INET6_ADDRSTRLEN];

	addr_fmt(&v->cfg->pair.partner, partner, sizeof(partner));
	strbuf_printf(sb, "  pair:       %s (epoch %llu), %s the site's "
	    "addresses, %llu takeover(s); etcd %s\n", v->pair_role,
	    (unsigned long long)v->pair_epoch, v->pair_held ? "holds" :
	    "does not hold", (unsigned long long)v->pair_takeovers,
	    v->pair_etcd_ok ? "answers" : "does not answer");
	if (v->pair_partner_age_ms == UINT32_MAX)
		strbuf_printf(sb, "              partner %s never heard\n",
		    partner);
	else
		strbuf_printf(sb, "              partner %s %s, heard %u ms "
		    "ago%s\n", partner, v->pair_partner_role,
		    v->pair_partner_age_ms, v->pair_partner_seen ? "" :
		    " (gone: no redundancy)");
	if (v->cfg->pair.second_address.family != 0)
		strbuf_printf(sb, "              heartbeat paths: 1 %s, 2 %s\n",
		    v->pair_paths_seen & 1 ? "up" : "DOWN",
		    v->pair_paths_seen & 2 ? "up" : "DOWN");
	if (v->pair_reason != NULL && v->pair_reason[0] != '\0')
		strbuf_printf(sb, "              last change: %s\n",
		    v->pair_reason);
}

void
status_render_text(const struct status_view *v, struct strbuf *sb)
{
	const struct grgw_config *cfg = v->cfg;
	char addr[INET6_ADDRSTRLEN], when[32], pfx[INET6_ADDRSTRLEN + 8];
	int i;

	strbuf_printf(sb, "site %s\n", cfg->site.name);
	if (v->daemon_running)
		strbuf_printf(sb, "  daemon:     running (pid %d)\n",
		    (int)v->daemon_pid);
	else
		strbuf_printf(sb, "  daemon:     not running\n");
	if (v->charon_running)
		strbuf_printf(sb, "  charon:     running (pid %d, %u "
		    "restarts)%s\n", (int)v->charon_pid, v->charon_restarts,
		    v->charon_crash_loop ? "; crash loop: the next restart "
		    "waits" : "");
	else if (v->charon_crash_loop || v->charon_restart_delay_ms > 0)
		strbuf_printf(sb, "  charon:     not running (%u restarts); "
		    "crash loop: restarting in %u ms\n", v->charon_restarts,
		    v->charon_restart_delay_ms);
	else if (v->daemon_running)
		strbuf_printf(sb, "  charon:     not running (%u restarts)\n",
		    v->charon_restarts);
	else
		strbuf_printf(sb, "  charon:     not running\n");
	if (v->netproc_pid != 0)
		strbuf_printf(sb, "  network:    running as %s (pid %d, %u "
		    "restarts): probes, HTTP, etcd\n", cfg->user,
		    (int)v->netproc_pid, v->netproc_restarts);
	else if (v->daemon_running)
		strbuf_printf(sb, "  network:    not running (%u restarts)\n",
		    v->netproc_restarts);
	if (v->daemon_running && cfg->feeds.etcd_endpoint[0] != '\0')
		status_render_etcd_text(v, sb);
	if (cfg->pair.enabled && v->pair_role != NULL)
		status_render_pair_text(v, sb);
	strbuf_printf(sb, "  data plane: %s\n",
	    config_dataplane_name(v->dataplane));
	strbuf_printf(sb, "  kernel:     %d fail-closed objects, %d others "
	    "installed\n", v->kernel_block, v->kernel_run);
	if (v->block != NULL && v->block->record_errno != 0)
		strbuf_printf(sb, "              ERROR: the record of them "
		    "cannot be written (%s); make room in the run "
		    "directory\n", strerror(v->block->record_errno));
	if (v->block != NULL && v->block->repairs > 0)
		strbuf_printf(sb, "              fail-closed layer repaired %llu "
		    "times, last at %s: %s\n",
		    (unsigned long long)v->block->repairs,
		    fmt_since(v->block->last_at, when, sizeof(when)),
		    v->block->last);
	if (v->block != NULL && v->block->overridden)
		strbuf_printf(sb, "              WARNING: a foreign policy rule "
		    "still routes a peer prefix (%s); the WAN block drops "
		    "what would leave in clear\n", v->block->override);
	if (v->qos != NULL)
		qos_render_text(v->qos, sb);
	strbuf_printf(sb, "peer %s (%s)\n", cfg->peer.name,
	    addr_fmt(&cfg->peer.wan_address, addr, sizeof(addr)));
	strbuf_printf(sb, "  tunnel:     %s since %s%s\n",
	    tunnel_state_name(v->tunnel),
	    fmt_since(v->tunnel_since, when, sizeof(when)),
	    v->tunnel == TUNNEL_UP && v->traffic_verified ?
	    " (traffic verified)" : "");
	strbuf_printf(sb, "  IKE_SA:     %s\n  CHILD_SA:   %s, %d of %d "
	    "pair(s) of prefixes", v->ike_state ? v->ike_state : "none",
	    v->child_state ? v->child_state : "none",
	    v->pairs - v->pairs_missing, v->pairs);
	if (v->pair_missing != NULL)
		strbuf_printf(sb, " (none for %s%s)", v->pair_missing,
		    v->pairs_missing > 1 ? " and others" : "");
	strbuf_printf(sb, "\n");
	strbuf_printf(sb, "  traffic:    in %llu bytes/%llu packets, out %llu "
	    "bytes/%llu packets\n", (unsigned long long)v->bytes_in,
	    (unsigned long long)v->packets_in,
	    (unsigned long long)v->bytes_out,
	    (unsigned long long)v->packets_out);
	strbuf_printf(sb, "  routes:    ");
	for (i = 0; i < cfg->peer.n_prefixes; i++)
		strbuf_printf(sb, " %s", prefix_fmt(&cfg->peer.prefixes[i],
		    pfx, sizeof(pfx)));
	strbuf_printf(sb, " %s\n", v->tunnel == TUNNEL_UP ? "via tunnel" :
	    "blocked (fail closed)");
	if (v->last_error != NULL)
		strbuf_printf(sb, "  last error: %s\n", v->last_error);
	status_render_cert_text(v, "certificate", v->cert_local, sb);
	status_render_cert_text(v, "CA:        ", v->cert_ca, sb);
	if (v->refusing)
		strbuf_printf(sb, "  refusing:  traffic to the peer prefixes "
		    "(the link is down)\n");
	if (v->link != NULL)
		status_render_link_text(v->link, sb);
}
