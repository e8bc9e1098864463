/*
 * The difference between the running configuration and a new one (pure).
 *
 * Each setting is in one of two groups.  Those the running gateway can
 * take on without re-establishing anything that did not change (the
 * prefixes, QoS, probes, the feeds, the log level, the pre-shared keys)
 * become live changes, tagged with what the daemon must redo.  Those
 * that name what the running gateway is built on (identities, addresses,
 * interfaces, the data plane, the table, run_dir, the user) are refused:
 * applying them means tearing the tunnel down, which a reload never does.
 * Of the gateway pair, the timing, the priority and the key are live;
 * what the two gateways find each other and their fence by is refused.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "grgw.h"
#include "cfgdiff.h"

#define SHAPER	(CFGDIFF_QOS | CFGDIFF_QOS_SHAPER)
#define DOWN_UP	"; apply it with `grgw down` then `grgw up`"
#define PAIR_RESTART	": restart the gateway with `grgw down` and " \
			"`grgw up` on the standby first"

void
cfgdiff_add(struct cfgdiff *d, enum cfgdiff_class cls, unsigned int apply,
    const char *fmt, ...)
{
	struct cfgdiff_change *c;
	va_list ap;

	if (cls == CFGDIFF_REFUSED)
		d->n_refused++;
	else
		d->apply |= apply;
	if (d->n >= CFGDIFF_MAX) {
		d->truncated = 1;
		return;
	}
	c = &d->ch[d->n++];
	c->cls = cls;
	c->apply = cls == CFGDIFF_LIVE ? apply : 0;
	va_start(ap, fmt);
	vsnprintf(c->text, sizeof(c->text), fmt, ap);
	va_end(ap);
}

const char *
cfgdiff_class_name(enum cfgdiff_class c)
{
	return c == CFGDIFF_REFUSED ? "refused" : "live";
}

/* ---- helpers ------------------------------------------------------------- */

static void
refuse_str(struct cfgdiff *d, const char *key, const char *a, const char *b)
{
	if (strcmp(a, b) != 0)
		cfgdiff_add(d, CFGDIFF_REFUSED, 0, "%s %s -> %s: cannot change "
		    "on a running gateway" DOWN_UP, key, a[0] ? a : "(none)",
		    b[0] ? b : "(none)");
}

static void
refuse_u32(struct cfgdiff *d, const char *key, uint32_t a, uint32_t b)
{
	if (a != b)
		cfgdiff_add(d, CFGDIFF_REFUSED, 0, "%s %u -> %u: cannot change "
		    "on a running gateway" DOWN_UP, key, a, b);
}

static void
refuse_addr(struct cfgdiff *d, const char *key, const struct grgw_addr *a,
    const struct grgw_addr *b)
{
	char x[INET6_ADDRSTRLEN], y[INET6_ADDRSTRLEN];

	if (!addr_equal(a, b))
		refuse_str(d, key, addr_fmt(a, x, sizeof(x)),
		    addr_fmt(b, y, sizeof(y)));
}

static void
live_str(struct cfgdiff *d, unsigned int apply, const char *key,
    const char *a, const char *b)
{
	if (strcmp(a, b) != 0)
		cfgdiff_add(d, CFGDIFF_LIVE, apply, "%s %s -> %s", key,
		    a[0] ? a : "(off)", b[0] ? b : "(off)");
}

static void
live_u32(struct cfgdiff *d, unsigned int apply, const char *key, uint32_t a,
    uint32_t b)
{
	if (a != b)
		cfgdiff_add(d, CFGDIFF_LIVE, apply, "%s %u -> %u", key, a, b);
}

static int
prefix_in(const struct grgw_prefix *p, const struct grgw_prefix *set, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (set[i].len == p->len && addr_equal(&set[i].a, &p->a))
			return 1;
	return 0;
}

/* Prefixes added and removed, in file order; apply names the side. */
static void
diff_prefixes(struct cfgdiff *d, const char *side, unsigned int apply,
    const struct grgw_side *a, const struct grgw_side *b)
{
	char buf[INET6_ADDRSTRLEN + 4];
	int i;

	for (i = 0; i < b->n_prefixes; i++)
		if (!prefix_in(&b->prefixes[i], a->prefixes, a->n_prefixes))
			cfgdiff_add(d, CFGDIFF_LIVE, apply, "[%s] prefix %s "
			    "added", side, prefix_fmt(&b->prefixes[i], buf,
			    sizeof(buf)));
	for (i = 0; i < a->n_prefixes; i++)
		if (!prefix_in(&a->prefixes[i], b->prefixes, b->n_prefixes))
			cfgdiff_add(d, CFGDIFF_LIVE, apply, "[%s] prefix %s "
			    "removed", side, prefix_fmt(&a->prefixes[i], buf,
			    sizeof(buf)));
}

static int
addrs_equal(const struct grgw_addr *a, int na, const struct grgw_addr *b,
    int nb)
{
	int i;

	if (na != nb)
		return 0;
	for (i = 0; i < na; i++)
		if (!addr_equal(&a[i], &b[i]))
			return 0;
	return 1;
}

/* ---- sections ------------------------------------------------------------ */

static void
diff_side(struct cfgdiff *d, const char *sec, const struct grgw_side *a,
    const struct grgw_side *b, int site)
{
	char key[48];
	int i, same;

	snprintf(key, sizeof(key), "[%s] name", sec);
	refuse_str(d, key, a->name, b->name);
	snprintf(key, sizeof(key), "[%s] id", sec);
	refuse_str(d, key, a->id, b->id);
	snprintf(key, sizeof(key), "[%s] %s", sec, site ? "wan_address" :
	    "address");
	refuse_addr(d, key, &a->wan_address, &b->wan_address);
	if (!addrs_equal(a->lan_addresses, a->n_lan_addresses,
	    b->lan_addresses, b->n_lan_addresses))
		cfgdiff_add(d, CFGDIFF_REFUSED, 0, "[%s] lan_address changed: "
		    "the tunnel check runs between these addresses" DOWN_UP,
		    sec);
	if (!site && !addrs_equal(a->gateways, a->n_gateways, b->gateways,
	    b->n_gateways))
		cfgdiff_add(d, CFGDIFF_REFUSED, 0, "[peer] gateway changed: "
		    "charon's connections are loaded with them" DOWN_UP);
	if (site) {
		refuse_str(d, "[site] wan_interface", a->wan_interface,
		    b->wan_interface);
		same = a->n_lan_interfaces == b->n_lan_interfaces;
		for (i = 0; same && i < a->n_lan_interfaces; i++)
			same = strcmp(a->lan_interfaces[i],
			    b->lan_interfaces[i]) == 0;
		if (!same)
			cfgdiff_add(d, CFGDIFF_REFUSED, 0, "[site] "
			    "lan_interface changed: interface names cannot "
			    "change on a running gateway" DOWN_UP);
	}
	/* The QoS table classifies by the prefixes too (not the shaper). */
	diff_prefixes(d, sec, (site ? CFGDIFF_SITE_PREFIXES :
	    CFGDIFF_PEER_PREFIXES) | CFGDIFF_QOS, a, b);
}

static void
diff_auth(struct cfgdiff *d, const struct grgw_config *a,
    const struct grgw_config *b)
{
	unsigned int psk = CFGDIFF_PSK;

	/* The heartbeat key is derived from the pre-shared keys too. */
	if (b->pair.enabled && b->pair.key_file[0] == '\0')
		psk |= CFGDIFF_PAIR;
	if (a->auth != b->auth) {
		cfgdiff_add(d, CFGDIFF_REFUSED, 0, "[auth] method %s -> %s: "
		    "cannot change on a running gateway" DOWN_UP,
		    a->auth == GRGW_AUTH_CERT ? "certificate" : "psk",
		    b->auth == GRGW_AUTH_CERT ? "certificate" : "psk");
		return;
	}
	live_str(d, psk, "[auth] psk_file", a->psk_file, b->psk_file);
	live_str(d, psk, "[auth] psk_next_file", a->psk_next_file,
	    b->psk_next_file);
	/* Certificate rotation: charon gets the new ones and proves them. */
	live_str(d, CFGDIFF_CREDS, "[auth] certificate", a->cert_file,
	    b->cert_file);
	live_str(d, CFGDIFF_CREDS, "[auth] private_key", a->key_file,
	    b->key_file);
	live_str(d, CFGDIFF_CREDS, "[auth] ca", a->ca_file, b->ca_file);
}

static void
diff_dataplane(struct cfgdiff *d, const struct grgw_config *a,
    const struct grgw_config *b)
{
	refuse_str(d, "[dataplane] mode", config_dataplane_name(a->dataplane),
	    config_dataplane_name(b->dataplane));
	refuse_str(d, "[dataplane] interface", a->xfrm_interface,
	    b->xfrm_interface);
	refuse_u32(d, "[dataplane] if_id", a->if_id, b->if_id);
	refuse_u32(d, "[dataplane] table", a->table, b->table);
	refuse_u32(d, "[dataplane] mtu", a->mtu, b->mtu);
	refuse_str(d, "run_dir", a->run_dir, b->run_dir);
	refuse_str(d, "charon", a->charon_path, b->charon_path);
	refuse_str(d, "user", a->user, b->user);
}

static int
rate_equal(const struct grgw_rate *a, const struct grgw_rate *b)
{
	return a->bps == b->bps && a->percent == b->percent;
}

static const char *
rate_fmt(const struct grgw_rate *r, char *buf, size_t size)
{
	if (r->percent != 0)
		snprintf(buf, size, "%u%%", r->percent);
	else if (r->bps != 0)
		snprintf(buf, size, "%llubit", (unsigned long long)r->bps);
	else
		snprintf(buf, size, "(unset)");
	return buf;
}

/* Which packets a class takes: protocol, ports, prefixes. */
static int
class_match_equal(const struct grgw_class *a, const struct grgw_class *b)
{
	int i;

	if (a->enabled != b->enabled || a->protocol != b->protocol ||
	    a->n_ports != b->n_ports || a->n_prefixes != b->n_prefixes)
		return 0;
	for (i = 0; i < a->n_ports; i++)
		if (a->ports[i].lo != b->ports[i].lo ||
		    a->ports[i].hi != b->ports[i].hi)
			return 0;
	for (i = 0; i < a->n_prefixes; i++)
		if (a->prefixes[i].len != b->prefixes[i].len ||
		    !addr_equal(&a->prefixes[i].a, &b->prefixes[i].a))
			return 0;
	return 1;
}

static const struct grgw_class *
class_find(const struct grgw_qos *q, const char *name)
{
	int i;

	for (i = 0; i < q->n_classes; i++)
		if (strcmp(q->classes[i].name, name) == 0)
			return &q->classes[i];
	return NULL;
}

static void
diff_class(struct cfgdiff *d, const struct grgw_class *a,
    const struct grgw_class *b)
{
	char key[48], x[32], y[32];

	snprintf(key, sizeof(key), "[class %s] dscp", b->name);
	live_u32(d, CFGDIFF_QOS, key, a->dscp, b->dscp);
	snprintf(key, sizeof(key), "[class %s] priority", b->name);
	live_u32(d, SHAPER, key, a->priority, b->priority);
	if (!rate_equal(&a->rate, &b->rate))
		cfgdiff_add(d, CFGDIFF_LIVE, SHAPER, "[class %s] rate %s "
		    "-> %s", b->name, rate_fmt(&a->rate, x, sizeof(x)),
		    rate_fmt(&b->rate, y, sizeof(y)));
	if (!rate_equal(&a->ceil, &b->ceil))
		cfgdiff_add(d, CFGDIFF_LIVE, SHAPER, "[class %s] ceil %s "
		    "-> %s", b->name, rate_fmt(&a->ceil, x, sizeof(x)),
		    rate_fmt(&b->ceil, y, sizeof(y)));
	if (!class_match_equal(a, b))
		cfgdiff_add(d, CFGDIFF_LIVE, CFGDIFF_QOS, "[class %s] what it "
		    "matches changed (enable, protocol, ports or prefixes)",
		    b->name);
}

static void
diff_qos(struct cfgdiff *d, const struct grgw_qos *a, const struct grgw_qos *b)
{
	const struct grgw_class *c;
	int i, order = a->n_classes == b->n_classes;

	if (a->enabled != b->enabled)
		cfgdiff_add(d, CFGDIFF_LIVE, SHAPER, "[qos] enable %s -> "
		    "%s", a->enabled ? "yes" : "no", b->enabled ? "yes" : "no");
	if (a->wan_rate != b->wan_rate)
		cfgdiff_add(d, CFGDIFF_LIVE, SHAPER, "[qos] wan_rate "
		    "%llu -> %llu bit/s", (unsigned long long)a->wan_rate,
		    (unsigned long long)b->wan_rate);
	refuse_str(d, "[qos] interface", a->interface, b->interface);
	if (a->keep_lan_gro != b->keep_lan_gro)
		cfgdiff_add(d, CFGDIFF_REFUSED, 0, "[qos] lan_gro changed: "
		    "offloads are set at start" DOWN_UP);
	for (i = 0; i < b->n_classes; i++) {
		if ((c = class_find(a, b->classes[i].name)) == NULL)
			cfgdiff_add(d, CFGDIFF_LIVE, SHAPER, "[class %s] "
			    "added", b->classes[i].name);
		else
			diff_class(d, c, &b->classes[i]);
		if (order && strcmp(a->classes[i].name, b->classes[i].name))
			order = 0;
	}
	for (i = 0; i < a->n_classes; i++)
		if (class_find(b, a->classes[i].name) == NULL)
			cfgdiff_add(d, CFGDIFF_LIVE, SHAPER, "[class %s] "
			    "removed", a->classes[i].name);
	/* Classes match in file order: a new order is a new policy. */
	if (!order && a->n_classes == b->n_classes)
		cfgdiff_add(d, CFGDIFF_LIVE, SHAPER, "[class] order "
		    "changed");
}

static void
diff_probe(struct cfgdiff *d, const struct grgw_probe_conf *a,
    const struct grgw_probe_conf *b)
{
	const unsigned int np = CFGDIFF_NETPROC | CFGDIFF_LINK;
	char x[32], y[32];

	if (a->method != b->method)
		cfgdiff_add(d, CFGDIFF_LIVE, np, "[peer] probes %s -> %s",
		    config_probes_name(a->method),
		    config_probes_name(b->method));
	live_u32(d, np, "[probe] interval_ms", a->interval_ms, b->interval_ms);
	live_u32(d, np, "[probe] multiplier", a->multiplier, b->multiplier);
	live_u32(d, np, "[probe] recover", a->recover, b->recover);
	live_u32(d, np, "[probe] port", a->port, b->port);
	live_str(d, np | CFGDIFF_PSK, "[probe] key_file", a->key_file,
	    b->key_file);
	if (a->degraded_loss != b->degraded_loss) {
		snprintf(x, sizeof(x), "%g%%", a->degraded_loss * 100);
		snprintf(y, sizeof(y), "%g%%", b->degraded_loss * 100);
		live_str(d, np, "[probe] degraded_loss", x, y);
	}
	live_u32(d, np, "[probe] degraded_rtt_ms", a->degraded_rtt_ms,
	    b->degraded_rtt_ms);
	live_u32(d, CFGDIFF_LINK, "[probe] refuse_hold_ms", a->refuse_hold_ms,
	    b->refuse_hold_ms);
}

/* fence: etcd holds the [pair] fence before and after. */
static void
diff_feeds(struct cfgdiff *d, const struct grgw_feeds_conf *a,
    const struct grgw_feeds_conf *b, int fence)
{
	live_str(d, CFGDIFF_NETPROC, "[http] listen", a->http_listen,
	    b->http_listen);
	live_str(d, CFGDIFF_HOOKS, "[hooks] dir", a->hooks_dir, b->hooks_dir);
	live_u32(d, CFGDIFF_HOOKS, "[hooks] timeout", a->hooks_timeout,
	    b->hooks_timeout);
	/* A new etcd knows nothing of the pair's epochs so far. */
	if (fence && strcmp(a->etcd_endpoint, b->etcd_endpoint) != 0)
		cfgdiff_add(d, CFGDIFF_REFUSED, 0, "[etcd] endpoint changed "
		    "(%s -> %s): it holds the [pair] fence" PAIR_RESTART,
		    a->etcd_endpoint, b->etcd_endpoint);
	else
		live_str(d, CFGDIFF_NETPROC, "[etcd] endpoint",
		    a->etcd_endpoint, b->etcd_endpoint);
	live_str(d, CFGDIFF_NETPROC, "[etcd] key", a->etcd_key, b->etcd_key);
	live_u32(d, CFGDIFF_NETPROC, "[etcd] lease_ttl", a->etcd_lease_ttl,
	    b->etcd_lease_ttl);
}

static void
pair_refuse_str(struct cfgdiff *d, const char *key, const char *a,
    const char *b)
{
	if (strcmp(a, b) != 0)
		cfgdiff_add(d, CFGDIFF_REFUSED, 0, "[pair] %s changed (%s -> "
		    "%s)" PAIR_RESTART, key, a, b);
}

static void
pair_refuse_addr(struct cfgdiff *d, const char *key,
    const struct grgw_addr *a, const struct grgw_addr *b)
{
	char x[INET6_ADDRSTRLEN], y[INET6_ADDRSTRLEN];

	if (a->family == 0 && b->family == 0)	/* an optional one, unset */
		return;
	if (!addr_equal(a, b))
		pair_refuse_str(d, key, a->family == 0 ? "none" :
		    addr_fmt(a, x, sizeof(x)), b->family == 0 ? "none" :
		    addr_fmt(b, y, sizeof(y)));
}

/*
 * Joining or leaving a pair moves the site's addresses; the addresses,
 * the port and the fence are what the two gateways agree on, so a
 * change on one alone would split them.  The rest is live (CFGDIFF_PAIR).
 */
static void
diff_pair(struct cfgdiff *d, const struct grgw_pair_conf *a,
    const struct grgw_pair_conf *b)
{
	char x[16], y[16];

	if (!a->enabled && !b->enabled)
		return;
	if (!a->enabled) {
		cfgdiff_add(d, CFGDIFF_REFUSED, 0, "[pair] section added: the "
		    "site's addresses become floating ones, held by the active "
		    "gateway only" DOWN_UP);
		return;
	}
	if (!b->enabled) {
		cfgdiff_add(d, CFGDIFF_REFUSED, 0, "[pair] section removed: "
		    "this gateway would hold the site's addresses alone; run "
		    "`grgw down` on its partner first, then apply it with "
		    "`grgw down` then `grgw up`");
		return;
	}
	pair_refuse_addr(d, "partner", &a->partner, &b->partner);
	pair_refuse_addr(d, "address", &a->address, &b->address);
	pair_refuse_addr(d, "second_partner", &a->second_partner,
	    &b->second_partner);
	pair_refuse_addr(d, "second_address", &a->second_address,
	    &b->second_address);
	pair_refuse_addr(d, "own_wan_address", &a->own_wan_address,
	    &b->own_wan_address);
	snprintf(x, sizeof(x), "%u", a->port);
	snprintf(y, sizeof(y), "%u", b->port);
	pair_refuse_str(d, "port", x, y);
	pair_refuse_str(d, "etcd_key", a->etcd_key, b->etcd_key);
	live_u32(d, CFGDIFF_PAIR, "[pair] priority", a->priority,
	    b->priority);
	live_u32(d, CFGDIFF_PAIR, "[pair] interval_ms", a->interval_ms,
	    b->interval_ms);
	live_u32(d, CFGDIFF_PAIR, "[pair] dead_ms", a->dead_ms, b->dead_ms);
	live_u32(d, CFGDIFF_PAIR, "[pair] guard_ms", a->guard_ms, b->guard_ms);
	live_u32(d, CFGDIFF_PAIR, "[pair] margin_ms", a->margin_ms,
	    b->margin_ms);
	live_u32(d, CFGDIFF_PAIR, "[pair] handover_wait_ms",
	    a->handover_wait_ms, b->handover_wait_ms);
	live_str(d, CFGDIFF_PAIR, "[pair] key_file", a->key_file, b->key_file);
}

static const char *
level_name(enum log_level l)
{
	static const char *names[] = { "error", "warning", "info", "debug" };

	return (unsigned)l < nitems(names) ? names[l] : "?";
}

void
cfgdiff_compute(const struct grgw_config *a, const struct grgw_config *b,
    struct cfgdiff *out)
{
	memset(out, 0, sizeof(*out));
	diff_side(out, "site", &a->site, &b->site, 1);
	diff_side(out, "peer", &a->peer, &b->peer, 0);
	diff_auth(out, a, b);
	diff_dataplane(out, a, b);
	diff_qos(out, &a->qos, &b->qos);
	diff_probe(out, &a->probe, &b->probe);
	diff_feeds(out, &a->feeds, &b->feeds, a->pair.enabled &&
	    b->pair.enabled);
	diff_pair(out, &a->pair, &b->pair);
	if (a->log_level != b->log_level)
		cfgdiff_add(out, CFGDIFF_LIVE, CFGDIFF_LOG, "log_level %s -> %s",
		    level_name(a->log_level), level_name(b->log_level));
}
