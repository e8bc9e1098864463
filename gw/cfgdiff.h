/*
 * What a reload changes: the running configuration against a new one, as
 * a list of changes, each either applied live or refused.  Pure: no I/O,
 * so that the unit tests drive it directly.
 */
#ifndef GRGW_CFGDIFF_H
#define GRGW_CFGDIFF_H

#include "grgw.h"

enum cfgdiff_class {
	CFGDIFF_LIVE,		/* applied on the running gateway */
	CFGDIFF_REFUSED		/* needs `grgw down` then `grgw up` */
};

/* What a live change asks the daemon to redo (bits of .apply). */
#define CFGDIFF_SITE_PREFIXES	0x0001	/* CHILD_SA local traffic selectors */
#define CFGDIFF_PEER_PREFIXES	0x0002	/* routes, fail-closed layer, TS */
#define CFGDIFF_QOS		0x0004	/* nftables classes, HTB tree */
#define CFGDIFF_NETPROC		0x0008	/* probes, HTTP, etcd: new process */
#define CFGDIFF_HOOKS		0x0010
#define CFGDIFF_LOG		0x0020
#define CFGDIFF_PSK		0x0040	/* shared keys into charon, probe key */
#define CFGDIFF_LINK		0x0080	/* thresholds, refusal hold */
#define CFGDIFF_QOS_SHAPER	0x0100	/* the HTB tree too, not only marks */
#define CFGDIFF_CREDS		0x0200	/* certificate, key, CA into charon */
#define CFGDIFF_PAIR		0x0400	/* [pair] priority, timing, key: the
					 * new cfg->pair to the pair engine */

#define CFGDIFF_TEXT_MAX	256
#define CFGDIFF_MAX		96

struct cfgdiff_change {
	enum cfgdiff_class cls;
	unsigned int	 apply;			/* CFGDIFF_* bits */
	char		 text[CFGDIFF_TEXT_MAX];	/* one line, for people */
};

struct cfgdiff {
	struct cfgdiff_change ch[CFGDIFF_MAX];
	int		 n;
	int		 n_refused;
	int		 truncated;	/* more changes than CFGDIFF_MAX */
	unsigned int	 apply;		/* union of the live changes' bits */
};

/* Compare old with new (both borrowed) into *out (overwritten). */
void	cfgdiff_compute(const struct grgw_config *old,
	    const struct grgw_config *new, struct cfgdiff *out);
/* Add one change (text formatted); a full list only counts it. */
void	cfgdiff_add(struct cfgdiff *d, enum cfgdiff_class cls,
	    unsigned int apply, const char *fmt, ...) GRGW_PRINTF(4, 5);
/* "live" or "refused"; static strings. */
const char *cfgdiff_class_name(enum cfgdiff_class c);

#endif /* GRGW_CFGDIFF_H */
