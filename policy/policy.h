/*
 * policy/: traffic classes -> DSCP marks and queues.  Pure: no I/O.
 *
 * The built-in classes describe the flows the geo-redundant Clearwater
 * services exchange between the sites (RFC 4594 service classes):
 *
 *   class      match                      DSCP  prio  rate  why
 *   sip        tcp+udp 5052, 5054  (off)  CS5   0     10%   signalling
 *   rogers     tcp 11311                  AF21  1     20%   low-latency data
 *   oam        udp 4211 (grgw's probes)   CS2   2      5%   OAM
 *   chronos    tcp 7253                   AF22  2     10%   low-latency data
 *   cassandra  tcp 7000, 7001             AF11  3     25%   high-throughput
 *   default    everything else            kept  7     rest  standard
 *
 * A port matches as source or destination, so both directions of a flow
 * are classified.  policy_compile() turns the configuration into a plan:
 * the nftables batch that classifies and marks packets on their way from
 * the site's nodes to the other site (before encryption), and the HTB
 * tree that netlink/ puts on the tunnel interface.  nftables steers each
 * packet into its HTB class by setting skb->priority to the class id, so
 * no tc classifier is involved.
 */
#ifndef GRGW_POLICY_H
#define GRGW_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "grgw.h"

#define POLICY_NFT_FAMILY	"inet"
#define POLICY_NFT_TABLE	"grgw-qos"
#define POLICY_COUNTER_PREFIX	"cls_"
#define POLICY_DEFAULT_NAME	"default"	/* unclassified traffic */

/* HTB: qdisc 4210:, class 4210:1 at wan_rate, then one class per
 * traffic class; unclassified traffic goes to 4210:10. */
#define POLICY_HTB_MAJOR	0x4210u
#define POLICY_ROOT_MINOR	0x1u
#define POLICY_DEFAULT_MINOR	0x10u
#define POLICY_FIRST_MINOR	0x11u
#define POLICY_DEFAULT_PRIO	7u
#define POLICY_HANDLE(maj, min)	(((uint32_t)(maj) << 16) | (uint32_t)(min))

#define POLICY_RATE_MIN		8000ULL			/* 8 kbit/s */
#define POLICY_RATE_MAX		400000000000ULL		/* 400 Gbit/s */
#define POLICY_QUEUE_MS		100	/* pfifo leaves hold this much */
#define POLICY_QUEUE_MIN	16	/* packets */
#define POLICY_QUEUE_MAX	1000

struct policy_tc_class {
	char		 name[GRGW_CLASS_NAME_MAX + 1];
	char		 counter[GRGW_CLASS_NAME_MAX + 8];	/* nft */
	int		 is_default;
	int		 marks;		/* sets the DSCP (not default) */
	uint32_t	 dscp;
	uint32_t	 priority;	/* HTB prio */
	uint32_t	 classid;	/* HTB class, POLICY_HANDLE() */
	uint32_t	 leaf_handle;	/* its leaf qdisc */
	uint64_t	 rate, ceil;	/* bits/s (0 when not shaping) */
	uint32_t	 quantum;	/* bytes, for HTB's DRR */
	uint32_t	 queue_limit;	/* packets, for a pfifo leaf */
};

struct policy_plan {
	int		 enabled;	/* [qos] enable */
	int		 shaping;	/* a wan_rate is set */
	uint64_t	 wan_rate;	/* bits/s */
	uint32_t	 root_handle;	/* HTB qdisc */
	uint32_t	 root_classid;	/* the class at wan_rate */
	uint32_t	 default_classid;
	/* Enabled classes in configuration order, then "default". */
	struct policy_tc_class classes[GRGW_MAX_CLASSES + 1];
	int		 n_classes;
	/*
	 * The contents of table inet grgw-qos: named counters, and the
	 * chains that classify, mark and steer.  netlink/ replaces the
	 * whole table with it in one transaction, so applying it twice
	 * leaves one table and a ruleset nftables refuses changes nothing.
	 * malloc'ed, owned by the plan.
	 */
	char		*ruleset;
};

/* Built-in classes and [qos] defaults into q (which is overwritten). */
void	policy_qos_defaults(struct grgw_qos *q);

/*
 * DSCP by name (DF, EF, VA, CS0..CS7, AF11..AF43; any case) or number
 * 0..63.  0, or -1 if s is neither.
 */
int	policy_dscp_parse(const char *s, uint32_t *out);
/* "AF21", or the number ("42") when it has no name; returns buf. */
const char *policy_dscp_name(uint32_t dscp, char *buf, size_t size);

/*
 * A rate in bits per second: digits with an optional unit bit, kbit,
 * mbit, gbit (powers of 1000; any case).  0; -1 if malformed; -2 if
 * outside POLICY_RATE_MIN..POLICY_RATE_MAX.
 */
int	policy_rate_parse(const char *s, uint64_t *bps);
/* "4 Mbit/s", "1.5 Gbit/s", "64 kbit/s"; returns buf. */
const char *policy_rate_fmt(uint64_t bps, char *buf, size_t size);
/* A class rate in bits/s against wan_rate (0 if unset or no wan_rate). */
uint64_t policy_rate_bps(const struct grgw_rate *r, uint64_t wan_rate);
/* Sum of the guaranteed rates of the enabled classes, in bits/s. */
uint64_t policy_rate_sum(const struct grgw_qos *q);

/* Is a class name acceptable ([a-z][a-z0-9_]*, at most 15)? */
int	policy_class_name_ok(const char *name);

/*
 * Compile cfg (site LAN interfaces, peer prefixes, [qos], classes) into
 * *out.  0, or -1 with a message in err (out is then empty).  The plan
 * owns its ruleset: release it with policy_plan_free().
 */
int	policy_compile(const struct grgw_config *cfg, struct policy_plan *out,
	    char *err, size_t errlen);
void	policy_plan_free(struct policy_plan *plan);	/* accepts NULL */

/* "4210:11" for a class, "4210:" for a qdisc; returns buf (>= 12). */
const char *policy_handle_fmt(uint32_t handle, char *buf, size_t size);

#endif /* GRGW_POLICY_H */
