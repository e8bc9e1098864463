/*
 * status.c: what `grgw status` shows, as text and as the stable JSON
 * object documented in the README.  Pure renderers over a view that the
 * daemon fills (or the CLI, when no daemon runs).
 */
#ifndef GRGW_STATUS_H
#define GRGW_STATUS_H

#include <sys/types.h>

#include <stdint.h>
#include <time.h>

#include "grgw.h"

struct blockwatch_view;
struct json_t;
struct link_view;
struct qos_view;
struct strbuf;

enum tunnel_state { TUNNEL_DOWN, TUNNEL_CONNECTING, TUNNEL_UP };

/* Everything borrowed: the view lives as long as one rendering. */
struct status_view {
	const struct grgw_config *cfg;
	int		daemon_running;
	pid_t		daemon_pid;
	time_t		daemon_since;
	int		charon_running;
	pid_t		charon_pid;
	unsigned	charon_restarts;
	int		charon_crash_loop;	/* restarts wait: it keeps dying */
	unsigned	charon_restart_delay_ms; /* until the next start, 0: none */
	pid_t		netproc_pid;		/* the network process, 0: none */
	unsigned	netproc_restarts;
	int		etcd_said;		/* the network process told */
	int		etcd_healthy;		/* published, lease alive */
	const char	*etcd_error;		/* NULL if none */
	enum grgw_dataplane dataplane;		/* in use (or configured) */
	enum tunnel_state tunnel;
	time_t		tunnel_since;		/* last change, 0 = never */
	const char	*ike_state;		/* charon's names, or "none" */
	const char	*child_state;
	struct {				/* the INSTALLED CHILD_SAs */
		const char	*pair;		/* "LOCAL=REMOTE" prefixes */
		unsigned	 id;		/* charon's unique id */
		const char	*spi_in, *spi_out;	/* hex */
	}		child_sas[GRGW_MAX_PAIRS];
	int		n_child_sas;
	int		pairs, pairs_missing;	/* of prefixes, CHILD_SA-less */
	const char	*pair_missing;		/* the first; NULL if none */
	int		traffic_verified;
	const char	*last_error;		/* NULL if none */
	uint64_t	bytes_in, bytes_out, packets_in, packets_out;
	int		kernel_block, kernel_run;	/* recorded objects */
	const struct blockwatch_view *block;	/* NULL: daemon not running */
	int		refusing;		/* the link is down: refused */
	const struct link_view *link;		/* NULL: daemon not running */
	const struct qos_view *qos;		/* NULL: daemon not running */
	/* The certificates of [auth]; NULL with a PSK or when unread. */
	const struct cert_info *cert_local, *cert_ca;
	time_t		now;			/* for their state */
	/*
	 * [pair]: where the pair stands, as the role engine last said
	 * (pair_role NULL: no pair, or the daemon is not running).
	 */
	const char	*pair_role;		/* "active", "standby", ... */
	int		pair_held;		/* the floating addresses here */
	uint64_t	pair_epoch;
	int		pair_partner_seen;	/* heard within dead_ms */
	const char	*pair_partner_role;
	uint32_t	pair_partner_age_ms;	/* UINT32_MAX: never heard */
	int		pair_etcd_ok;
	int		pair_paths_seen;	/* bit n - 1: heartbeat path n
						 * carries them (PMSG_ROLE) */
	uint64_t	pair_takeovers;		/* roles this gateway took */
	uint32_t	pair_kernel_hold_ms;	/* the kernel's hold, left */
	const char	*pair_reason;		/* of the last role change */
};

const char *tunnel_state_name(enum tunnel_state s);
/*
 * The stable JSON object documented in the README, as a new jansson tree
 * (the caller owns the reference), or NULL when out of memory.
 */
struct json_t *status_json(const struct status_view *v);
/* The same object and a newline, appended to sb. */
void	status_render_json(const struct status_view *v, struct strbuf *sb);
void	status_render_text(const struct status_view *v, struct strbuf *sb);

#endif /* GRGW_STATUS_H */
