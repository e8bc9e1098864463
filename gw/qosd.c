/*
 * QoS in the daemon: applies the compiled policy through netlink/, keeps
 * one status line that says what works and what does not (and why), and
 * renders the per-class counters.  See qosd.h.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grgw.h"
#include "strbuf.h"
#include "jsondoc.h"
#include "qosd.h"
#include "netlink/netlink.h"
#include "policy/policy.h"

/* The interface charon's kernel-libipsec creates for its TUN device. */
#define LIBIPSEC_IFNAME		"ipsec0"

struct qos_run {
	const struct grgw_config *cfg;		/* borrowed */
	struct policy_plan	 plan;
	int			 compiled;
	char			 ifname[IF_NAMESIZE];
	enum qos_part		 classification;
	enum qos_part		 shaping;
	char			 rules_why[200];
	char			 shaper_why[300];
	char			 leaf[16];
	enum qos_gro		 lan_gro;	/* as of the last shaper start */
	char			 gro_devs[200];	/* where it is off */
	char			 gro_why[200];	/* QOS_GRO_ON: the first failure */
};

const char *
qos_gro_name(enum qos_gro g)
{
	switch (g) {
	case QOS_GRO_OFF:
		return "off";
	case QOS_GRO_KEPT:
		return "kept";
	case QOS_GRO_ON:
		return "on";
	case QOS_GRO_NONE:
	default:
		return NULL;
	}
}

const char *
qos_part_name(enum qos_part p)
{
	switch (p) {
	case QOS_OFF:
		return "off";
	case QOS_ON:
		return "on";
	case QOS_WAITING:
		return "waiting";
	case QOS_UNAVAILABLE:
		return "unavailable";
	case QOS_FAILED:
	default:
		return "failed";
	}
}

struct qos_run *
qos_run_new(const struct grgw_config *cfg, enum grgw_dataplane dp)
{
	struct qos_run	*q;
	char		 err[200];

	if ((q = calloc(1, sizeof(*q))) == NULL)
		return NULL;
	q->cfg = cfg;
	if (cfg->qos.interface[0] != '\0')
		snprintf(q->ifname, sizeof(q->ifname), "%s",
		    cfg->qos.interface);
	else
		snprintf(q->ifname, sizeof(q->ifname), "%s",
		    dp == GRGW_DP_KERNEL ? cfg->xfrm_interface :
		    LIBIPSEC_IFNAME);
	if (!cfg->qos.enabled)
		return q;
	if (policy_compile(cfg, &q->plan, err, sizeof(err)) == -1) {
		q->classification = QOS_FAILED;
		snprintf(q->rules_why, sizeof(q->rules_why), "%s", err);
		log_warnx("%s", err);
		return q;
	}
	q->compiled = 1;
	return q;
}

void
qos_run_free(struct qos_run *q)
{
	if (q == NULL)
		return;
	policy_plan_free(&q->plan);
	free(q);
}

void
qos_rules_start(struct qos_run *q, struct gwnl *nl)
{
	int	 rc;

	if (q == NULL || !q->compiled)
		return;
	if ((rc = gwnl_qos_rules_apply(nl, &q->plan)) < 0) {
		q->classification = QOS_FAILED;
		snprintf(q->rules_why, sizeof(q->rules_why), "nftables "
		    "refused table inet %s (%s; see the log)",
		    POLICY_NFT_TABLE, strerror(-rc));
		log_warnx("qos: classification failed: %s; traffic crosses "
		    "unmarked", q->rules_why);
		return;
	}
	q->classification = QOS_ON;
	log_info("qos: %d classes marked with DSCP before encryption "
	    "(nftables table inet %s)", q->plan.n_classes - 1,
	    POLICY_NFT_TABLE);
}

/* While shaping, no merged packets from the LAN: see netlink/offload.c.
 * The LAN interfaces and every device below them. */
static void
lan_gro_off(struct qos_run *q, struct gwnl *nl)
{
	const struct grgw_side	*site = &q->cfg->site;
	char			 devs[GWNL_GRO_DEVS_MAX][IF_NAMESIZE];
	char			 err[160];
	size_t			 o = 0;
	int			 i, j, n;

	q->gro_why[0] = '\0';
	q->gro_devs[0] = '\0';
	if (q->cfg->qos.keep_lan_gro) {
		q->lan_gro = QOS_GRO_KEPT;
		return;
	}
	q->lan_gro = QOS_GRO_OFF;
	for (i = 0; i < site->n_lan_interfaces && i < GRGW_MAX_LAN_IFS; i++) {
		n = gwnl_gro_devices(nl, site->lan_interfaces[i], devs,
		    GWNL_GRO_DEVS_MAX);
		if (n < 0) {
			/* Still try the interface itself. */
			snprintf(devs[0], sizeof(devs[0]), "%s",
			    site->lan_interfaces[i]);
			n = 1;
		}
		for (j = 0; j < n; j++) {
			if (gwnl_gro_off(nl, devs[j], err, sizeof(err)) == 0) {
				if (o < sizeof(q->gro_devs))
					o += (size_t)snprintf(q->gro_devs + o,
					    sizeof(q->gro_devs) - o, "%s%s",
					    o ? ", " : "", devs[j]);
				continue;
			}
			if (q->lan_gro == QOS_GRO_ON)
				continue;	/* the first reason is shown */
			q->lan_gro = QOS_GRO_ON;
			snprintf(q->gro_why, sizeof(q->gro_why), "%s: %s",
			    devs[j], err);
			log_warnx("qos: GRO stays on on %s: packets it merges "
			    "pass the shaper as one", q->gro_why);
		}
	}
}

void
qos_shaper_start(struct qos_run *q, struct gwnl *nl)
{
	enum qos_part	 was;
	char		 rate[32];
	int		 rc;

	if (q == NULL || !q->compiled || !q->plan.shaping)
		return;
	was = q->shaping;
	rc = gwnl_qos_shaper_apply(nl, &q->plan, q->ifname, q->leaf,
	    sizeof(q->leaf), q->shaper_why, sizeof(q->shaper_why));
	policy_rate_fmt(q->plan.wan_rate, rate, sizeof(rate));
	if (rc == 0) {
		q->shaping = QOS_ON;
		log_info("qos: shaping %s on %s (htb, %s inside the classes)",
		    rate, q->ifname, q->leaf);
		lan_gro_off(q, nl);
		return;
	}
	q->shaping = rc == -ENODEV ? QOS_WAITING :
	    rc == -EOPNOTSUPP ? QOS_UNAVAILABLE : QOS_FAILED;
	if (q->shaping != was || q->shaping == QOS_FAILED)
		log_warnx("qos: shaping %s on %s: %s; classification and "
		    "DSCP marking go on", rate, q->ifname, q->shaper_why);
}

/* The tree of old kept as it is: same classes, rates and priorities. */
static void
qos_shaper_keep(struct qos_run *q, const struct qos_run *old)
{
	q->shaping = q->compiled && q->plan.shaping ? old->shaping : QOS_OFF;
	snprintf(q->shaper_why, sizeof(q->shaper_why), "%s", old->shaper_why);
	snprintf(q->leaf, sizeof(q->leaf), "%s", old->leaf);
	q->lan_gro = old->lan_gro;
	snprintf(q->gro_devs, sizeof(q->gro_devs), "%s", old->gro_devs);
	snprintf(q->gro_why, sizeof(q->gro_why), "%s", old->gro_why);
}

/*
 * The running tree changed in place to q's plan: the root qdisc stays,
 * so packets queued in the classes are not dropped and the counters go
 * on.  Only a tree that is not there (or not ours) is built anew.
 */
static void
qos_shaper_change(struct qos_run *q, const struct qos_run *old,
    struct gwnl *nl)
{
	char	 rate[32];
	int	 rc;

	qos_shaper_keep(q, old);
	rc = gwnl_qos_shaper_update(nl, &q->plan, q->ifname, q->leaf,
	    sizeof(q->leaf), q->shaper_why, sizeof(q->shaper_why));
	if (rc == -ENOENT) {
		qos_shaper_start(q, nl);
		return;
	}
	policy_rate_fmt(q->plan.wan_rate, rate, sizeof(rate));
	if (rc == 0) {
		q->shaping = QOS_ON;
		q->shaper_why[0] = '\0';
		log_info("qos: shaping %s on %s changed in place (%d classes)",
		    rate, q->ifname, q->plan.n_classes);
		return;
	}
	q->shaping = QOS_FAILED;
	log_warnx("qos: the shaper on %s could not be changed: %s; "
	    "classification and DSCP marking go on", q->ifname,
	    q->shaper_why);
}

struct qos_run *
qos_reconfigure(struct qos_run *old, struct gwnl *nl,
    const struct grgw_config *cfg, enum grgw_dataplane dp, int shaper)
{
	struct qos_run	*q;
	int		 shapes;

	if ((q = qos_run_new(cfg, dp)) == NULL)
		return old;	/* out of memory: the old policy stays */
	shapes = q->compiled && q->plan.shaping;
	/*
	 * The tree first, then the table: nftables swaps the whole table
	 * in one transaction, and a packet steered to a class that is
	 * not there (yet, or any more) goes to the default class.
	 */
	if (old == NULL)
		qos_shaper_start(q, nl);
	else if (!shaper)
		qos_shaper_keep(q, old);
	else if (shapes && old->shaping == QOS_ON)
		qos_shaper_change(q, old, nl);
	else if (shapes && old->shaping != QOS_WAITING)
		qos_shaper_start(q, nl);
	else if (shapes)
		q->shaping = QOS_WAITING;
	else if (old->compiled && old->plan.shaping) {
		if (gwnl_qos_shaper_drop(nl, &old->plan, old->ifname) < 0)
			log_warnx("qos: the shaper on %s could not be "
			    "removed; see the log", old->ifname);
		else
			log_info("qos: shaping on %s turned off", old->ifname);
	}
	if (q->compiled)
		qos_rules_start(q, nl);
	else if (old != NULL && old->compiled)
		(void)gwnl_nft_drop(nl, POLICY_NFT_TABLE);
	qos_run_free(old);
	return q;
}

void
qos_shaper_retry(struct qos_run *q, struct gwnl *nl)
{
	if (q != NULL && q->shaping == QOS_WAITING)
		qos_shaper_start(q, nl);
}

void
qos_shaper_lost(struct qos_run *q)
{
	if (q == NULL || q->shaping != QOS_ON)
		return;
	/* Kernel mode keeps its xfrm interface; libipsec's goes. */
	if (strcmp(q->ifname, LIBIPSEC_IFNAME) != 0)
		return;
	q->shaping = QOS_WAITING;
	snprintf(q->shaper_why, sizeof(q->shaper_why), "%s went away with "
	    "charon; it is shaped again once charon is back", q->ifname);
}

static void
lan_gro_line(const struct qos_run *q, char *buf, size_t size, size_t *o)
{
	const struct grgw_side	*site = &q->cfg->site;
	int			 i;

	if (*o >= size)
		return;
	switch (q->lan_gro) {
	case QOS_GRO_NONE:
		break;
	case QOS_GRO_OFF:
		*o += (size_t)snprintf(buf + *o, size - *o, "; GRO off on %s",
		    q->gro_devs);
		break;
	case QOS_GRO_KEPT:
		*o += (size_t)snprintf(buf + *o, size - *o, "; GRO on");
		for (i = 0; i < site->n_lan_interfaces &&
		    i < GRGW_MAX_LAN_IFS && *o < size; i++)
			*o += (size_t)snprintf(buf + *o, size - *o, "%s%s",
			    i ? ", " : " ", site->lan_interfaces[i]);
		if (*o < size)
			*o += (size_t)snprintf(buf + *o, size - *o, " left as "
			    "it is (lan_gro = keep): packets it merges pass "
			    "the shaper as one");
		break;
	case QOS_GRO_ON:
		*o += (size_t)snprintf(buf + *o, size - *o, "; GRO still on "
		    "(%s): packets it merges pass the shaper as one",
		    q->gro_why);
		break;
	}
}

/* The one line that says what is in place, and what is not and why. */
static void
status_line(const struct qos_run *q, char *buf, size_t size)
{
	char	 rate[32];
	size_t	 o = 0;

#define ADD(...) do {							\
	if (o < size)							\
		o += (size_t)snprintf(buf + o, size - o, __VA_ARGS__);	\
} while (0)

	buf[0] = '\0';
	if (!q->cfg->qos.enabled) {
		ADD("off ([qos] enable = no)");
		return;
	}
	if (q->classification == QOS_ON)
		ADD("classification and DSCP marking on (%d classes)",
		    q->plan.n_classes - 1);
	else if (q->classification == QOS_FAILED)
		ADD("classification failed: %s; packets cross unmarked",
		    q->rules_why);
	else
		ADD("classification not installed yet");
	policy_rate_fmt(q->cfg->qos.wan_rate, rate, sizeof(rate));
	switch (q->shaping) {
	case QOS_OFF:
		if (q->cfg->qos.wan_rate == 0)
			ADD("; no shaping (no [qos] wan_rate): classes are "
			    "marked, not queued apart");
		else
			ADD("; shaping %s on %s: not installed", rate,
			    q->ifname);
		break;
	case QOS_ON:
		ADD("; shaping %s on %s with htb; fair queuing inside "
		    "classes: ", rate, q->ifname);
		if (strcmp(q->leaf, "pfifo") == 0)
			ADD("not available (no fq_codel or sfq in this "
			    "kernel), using pfifo");
		else
			ADD("%s", q->leaf);
		lan_gro_line(q, buf, size, &o);
		break;
	case QOS_WAITING:
		ADD("; shaping %s on %s: waiting (%s)", rate, q->ifname,
		    q->shaper_why);
		break;
	case QOS_UNAVAILABLE:
		ADD("; shaping unavailable (%s): classification and DSCP "
		    "marking only", q->shaper_why);
		break;
	case QOS_FAILED:
		ADD("; shaping %s on %s failed: %s", rate, q->ifname,
		    q->shaper_why);
		break;
	}
#undef ADD
}

void
qos_fill_view(struct qos_run *q, struct gwnl *nl, struct qos_view *v)
{
	struct gwnl_qos_counters	 c[GRGW_MAX_CLASSES + 1];
	const struct policy_tc_class	*tc;
	struct qos_class_view		*cv;
	int				 i;

	memset(v, 0, sizeof(*v));
	if (q == NULL)
		return;
	v->enabled = q->cfg->qos.enabled;
	v->classification = q->classification;
	v->shaping = q->shaping;
	snprintf(v->interface, sizeof(v->interface), "%s", q->ifname);
	v->wan_rate = q->cfg->qos.wan_rate;
	if (q->shaping == QOS_ON) {
		snprintf(v->leaf, sizeof(v->leaf), "%s", q->leaf);
		v->lan_gro = q->lan_gro;
	}
	status_line(q, v->status, sizeof(v->status));
	if (!q->compiled)
		return;
	memset(c, 0, sizeof(c));
	if (q->classification == QOS_ON || q->shaping == QOS_ON)
		(void)gwnl_qos_counters(nl, &q->plan, q->shaping == QOS_ON ?
		    q->ifname : NULL, c);
	for (i = 0; i < q->plan.n_classes && i < GRGW_MAX_CLASSES + 1; i++) {
		tc = &q->plan.classes[i];
		cv = &v->classes[v->n_classes++];
		snprintf(cv->name, sizeof(cv->name), "%s", tc->name);
		cv->marks = tc->marks;
		cv->dscp = tc->dscp;
		cv->priority = tc->priority;
		cv->rate = tc->rate;
		cv->ceil = tc->ceil;
		cv->packets = c[i].packets;
		cv->bytes = c[i].bytes;
		cv->shaped = c[i].shaped;
		cv->sent_packets = c[i].sent_packets;
		cv->sent_bytes = c[i].sent_bytes;
		cv->drops = c[i].drops;
		cv->backlog = c[i].backlog;
	}
}

/* ---- rendering ------------------------------------------------------------ */

static json_t *
qos_class_json(const struct qos_class_view *c)
{
	char	 d[16];

	return json_pack("{s:o, s:o, s:o, s:I, s:o, s:o, s:o, s:o, s:o, s:b, "
	    "s:o, s:o, s:o}",
	    "name", jsondoc_string(c->name),
	    "dscp", jsondoc_string(c->marks ? policy_dscp_name(c->dscp, d,
		sizeof(d)) : NULL),
	    "dscp_value", c->marks ? json_integer(c->dscp) : json_null(),
	    "priority", (json_int_t)c->priority,
	    "rate", jsondoc_u64(c->rate),
	    "ceil", jsondoc_u64(c->ceil),
	    "packets", jsondoc_u64(c->packets),
	    "bytes", jsondoc_u64(c->bytes),
	    "drops", jsondoc_u64(c->drops),
	    "shaped", c->shaped != 0,
	    "sent_packets", jsondoc_u64(c->sent_packets),
	    "sent_bytes", jsondoc_u64(c->sent_bytes),
	    "backlog", jsondoc_u64(c->backlog));
}

static json_t *
qos_classes_json(const struct qos_view *v)
{
	json_t	*a;
	int	 i;

	if ((a = json_array()) == NULL)
		return NULL;
	for (i = 0; i < v->n_classes; i++) {
		if (json_array_append_new(a, qos_class_json(&v->classes[i])) ==
		    -1) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

json_t *
qos_json(const struct qos_view *v)
{
	return json_pack("{s:b, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
	    "enabled", v->enabled != 0,
	    "status", jsondoc_string(v->status),
	    "classification", jsondoc_string(qos_part_name(v->classification)),
	    "shaping", jsondoc_string(qos_part_name(v->shaping)),
	    "interface", jsondoc_string(v->interface),
	    "wan_rate", jsondoc_u64(v->wan_rate),
	    "leaf_qdisc", jsondoc_string(v->leaf[0] != '\0' ? v->leaf : NULL),
	    "lan_gro", jsondoc_string(qos_gro_name(v->lan_gro)),
	    "classes", qos_classes_json(v));
}

void
qos_render_json(const struct qos_view *v, struct strbuf *sb)
{
	jsondoc_append(sb, qos_json(v));
}

void
qos_render_text(const struct qos_view *v, struct strbuf *sb)
{
	const struct qos_class_view	*c;
	char				 d[16];
	int				 i;

	strbuf_printf(sb, "  qos:        %s\n", v->status);
	if (v->n_classes == 0)
		return;
	strbuf_printf(sb, "    %-10s %-5s %4s %12s %14s %8s\n", "class",
	    "dscp", "prio", "packets", "bytes", "drops");
	for (i = 0; i < v->n_classes; i++) {
		c = &v->classes[i];
		strbuf_printf(sb, "    %-10s %-5s %4u %12llu %14llu %8llu\n",
		    c->name, c->marks ? policy_dscp_name(c->dscp, d,
		    sizeof(d)) : "-", c->priority,
		    (unsigned long long)c->packets,
		    (unsigned long long)c->bytes,
		    (unsigned long long)c->drops);
	}
}

void
qos_render_metrics(const struct qos_view *v, const char *site,
    struct strbuf *sb)
{
	static const struct {
		const char	*name, *help;
		size_t		 off;
	} m[] = {
		{ "grgw_qos_class_packets_total", "Packets classified into "
		  "the class (nftables)",
		  offsetof(struct qos_class_view, packets) },
		{ "grgw_qos_class_bytes_total", "Bytes classified into the "
		  "class (nftables)", offsetof(struct qos_class_view, bytes) },
		{ "grgw_qos_class_drops_total", "Packets the class's queue "
		  "dropped (shaper)", offsetof(struct qos_class_view, drops) },
		{ "grgw_qos_class_sent_bytes_total", "Bytes the class's queue "
		  "sent (shaper)",
		  offsetof(struct qos_class_view, sent_bytes) },
	};
	size_t	 k;
	int	 i;

	strbuf_printf(sb, "# HELP grgw_qos_shaping 1 when the shaper is in "
	    "place\n# TYPE grgw_qos_shaping gauge\ngrgw_qos_shaping{site=");
	strbuf_json_str(sb, site);
	strbuf_printf(sb, "} %d\n", v->shaping == QOS_ON);
	for (k = 0; k < nitems(m); k++) {
		strbuf_printf(sb, "# HELP %s %s\n# TYPE %s counter\n",
		    m[k].name, m[k].help, m[k].name);
		for (i = 0; i < v->n_classes; i++) {
			strbuf_printf(sb, "%s{site=", m[k].name);
			strbuf_json_str(sb, site);
			strbuf_printf(sb, ",class=");
			strbuf_json_str(sb, v->classes[i].name);
			strbuf_printf(sb, "} %llu\n", (unsigned long long)
			    *(const uint64_t *)(const void *)((const char *)
			    &v->classes[i] + m[k].off));
		}
	}
}
