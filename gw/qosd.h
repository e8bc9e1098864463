/*
 * QoS in the daemon (qosd.c): the compiled plan, what of it is in the
 * kernel, and how `grgw status` and /metrics show it.
 *
 * The classification table is installed at start-up; the shaper when the
 * tunnel interface exists (kernel data plane: after the xfrm interface is
 * created; libipsec: once charon, which creates ipsec0, answers over
 * VICI, and again after every charon restart).  Nothing here can stop
 * the tunnel: a part that cannot be installed is reported in one status
 * line, and the rest keeps working.
 */
#ifndef GRGW_QOSD_H
#define GRGW_QOSD_H

#include <net/if.h>
#include <stdint.h>

#include "grgw.h"

struct gwnl;
struct json_t;
struct strbuf;

enum qos_part {
	QOS_OFF,		/* not configured */
	QOS_ON,
	QOS_WAITING,		/* shaper: the interface does not exist yet */
	QOS_UNAVAILABLE,	/* shaper: this kernel lacks htb */
	QOS_FAILED
};

/* GRO on the LAN interfaces while shaping (netlink/offload.c). */
enum qos_gro {
	QOS_GRO_NONE,		/* not shaping: not applicable */
	QOS_GRO_OFF,		/* off everywhere below the LAN interfaces */
	QOS_GRO_KEPT,		/* left alone: lan_gro = keep */
	QOS_GRO_ON		/* could not be turned off somewhere */
};

struct qos_class_view {
	char		 name[GRGW_CLASS_NAME_MAX + 1];
	int		 marks;		/* 0: "default", DSCP left alone */
	uint32_t	 dscp;
	uint32_t	 priority;
	uint64_t	 rate, ceil;	/* bits/s; 0 without shaping */
	uint64_t	 packets, bytes;	/* classified by nftables */
	int		 shaped;	/* the HTB class was read */
	uint64_t	 sent_packets, sent_bytes, drops, backlog;
};

struct qos_view {
	int		 enabled;
	enum qos_part	 classification;
	enum qos_part	 shaping;
	char		 status[600];	/* one line, for people */
	char		 interface[IF_NAMESIZE];
	uint64_t	 wan_rate;	/* bits/s, 0: none */
	char		 leaf[16];	/* qdisc inside the classes, or "" */
	enum qos_gro	 lan_gro;
	int		 n_classes;	/* classes in use, "default" last */
	struct qos_class_view classes[GRGW_MAX_CLASSES + 1];
};

struct qos_run;

/* Compile cfg's policy (borrowed; must outlive the result).  NULL only
 * when out of memory; a policy that does not compile is reported in the
 * status instead. */
struct qos_run *qos_run_new(const struct grgw_config *cfg,
	    enum grgw_dataplane dp);
void	qos_run_free(struct qos_run *q);		/* accepts NULL */
/* Install the classification table.  Never fatal. */
void	qos_rules_start(struct qos_run *q, struct gwnl *nl);
/* Install the shaper on the tunnel interface (again).  Never fatal. */
void	qos_shaper_start(struct qos_run *q, struct gwnl *nl);
/*
 * A reload: compile cfg (borrowed, as for qos_run_new) and put its
 * classification in place of old's in one nftables transaction; the
 * shaper is built again only when shaper is set (rates, priorities or
 * classes changed), else the tree in the kernel is kept.  Returns the
 * run to keep (old is freed, or returned when out of memory).
 */
struct qos_run *qos_reconfigure(struct qos_run *old, struct gwnl *nl,
	    const struct grgw_config *cfg, enum grgw_dataplane dp, int shaper);
/* Install it if it is still waiting for its interface. */
void	qos_shaper_retry(struct qos_run *q, struct gwnl *nl);
/* The tunnel interface went away with charon: the shaper with it. */
void	qos_shaper_lost(struct qos_run *q);
/* State and counters (read from the kernel now) into *v. */
void	qos_fill_view(struct qos_run *q, struct gwnl *nl, struct qos_view *v);

const char *qos_part_name(enum qos_part p);
/* "off", "kept", "on", or NULL for QOS_GRO_NONE. */
const char *qos_gro_name(enum qos_gro g);
/* The "qos" object of the status JSON (see the README), as a new jansson
 * tree owned by the caller, or NULL when out of memory. */
struct json_t *qos_json(const struct qos_view *v);
/* The same object, appended to sb as compact JSON. */
void	qos_render_json(const struct qos_view *v, struct strbuf *sb);
/* Lines of `grgw status`. */
void	qos_render_text(const struct qos_view *v, struct strbuf *sb);
/* Prometheus samples: grgw_qos_class_{packets,bytes,drops}_total etc. */
void	qos_render_metrics(const struct qos_view *v, const char *site,
	    struct strbuf *sb);

#endif /* GRGW_QOSD_H */
