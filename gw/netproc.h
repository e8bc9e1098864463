/*
 * The network process: the link probes, the HTTP server and the etcd
 * client, in a process of their own without privileges.
 *
 *   netproc.c  the process itself (run as `grgw __netproc ...`)
 *   proc.c     the parent's side: starts it, restarts it when it dies,
 *              and speaks to it (pmsg.h)
 */
#ifndef GRGW_NETPROC_H
#define GRGW_NETPROC_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include "grgw.h"
#include "linkstate.h"
#include "pmsg.h"
#include "probe.h"

struct event_base;

#define NETPROC_ARG	"__netproc"	/* argv[1] of the network process */

/* ---- netproc.c ------------------------------------------------------------ */

/* The network process's main; argv[0] is NETPROC_ARG.  Exit code. */
int	netproc_main(int argc, char **argv);

/* ---- proc.c --------------------------------------------------------------- */

struct netproc;

enum netproc_what {
	NETPROC_READY,		/* (re)started and serving */
	NETPROC_FAILED,		/* could not start: why */
	NETPROC_EXITED,		/* died (why); it is being restarted */
	NETPROC_PATH,		/* a path's figures; changed: new verdict */
	NETPROC_WANT,		/* an HTTP client wants doc: netproc_answer() */
	NETPROC_ROLE,		/* [pair]: where the pair stands (role) */
};

/* Borrowed, valid during the callback only. */
struct netproc_news {
	enum netproc_what	 what;
	const char		*why;		/* FAILED, EXITED */
	int			 first;		/* READY, FAILED: first start */
	enum probe_path		 path;		/* PATH */
	int			 changed;
	const struct path_stats	*stats;
	uint32_t		 ticket;	/* WANT */
	enum pmsg_doc		 doc;
	const struct pmsg_role	*role;		/* ROLE */
};

typedef void (*netproc_cb)(const struct netproc_news *news, void *arg);

/*
 * cfg is borrowed and must outlive the handle; the user named by
 * cfg->user must exist.  site_dir is where the process's empty root is
 * made.  NULL with err set on failure.
 */
struct netproc *netproc_new(struct event_base *base,
	    const struct grgw_config *cfg, const char *site_dir,
	    netproc_cb cb, void *arg, char *err, size_t errlen);
/*
 * Start it with the probe key and, during a key rotation, the next one
 * it also accepts (NULL: none); both copied, kept for restarts.  0 or -1.
 */
int	netproc_start(struct netproc *np, const uint8_t key[PROBE_KEY_LEN],
	    const uint8_t *next, char *err, size_t errlen);
/*
 * New probe keys (a reload that changed a key and nothing else the
 * process reads): sent to the running process, whose probes carry on
 * with them without a restart; kept for restarts.  Both copied; next
 * NULL: none.  0 or -1.
 */
int	netproc_set_keys(struct netproc *np, const uint8_t key[PROBE_KEY_LEN],
	    const uint8_t *next);
/*
 * [pair]: the heartbeat key and, during a key rotation, the next one also
 * accepted (PMSG_KEY_LEN each; next NULL: none), copied and kept for
 * restarts.  Before netproc_start(), so that the first start has them;
 * later, sent to the running process.  Without them the process runs no
 * pair.  0 or -1.
 */
int	netproc_pair_keys(struct netproc *np, const uint8_t *key,
	    const uint8_t *next);
/*
 * The floating addresses are held under epoch until until_ms
 * (CLOCK_MONOTONIC), or not (0, 0): a network process started while they
 * are is told so (PMSG_PAIR_RESUME), and its role engine carries the
 * holding on.
 */
void	netproc_pair_hold(struct netproc *np, uint64_t epoch,
	    uint64_t until_ms);
/*
 * A CHILD_SA came up (PMSG_TUNNEL_NEW): the tunnel path's detection
 * starts over (probe_engine_fresh()).  Not running: nothing.
 */
void	netproc_tunnel_new(struct netproc *np);
/* Tell the pair's role engine (PMSG_PAIR_CMD).  0, or -1 (not running,
 * no pair). */
int	netproc_pair_cmd(struct netproc *np, enum pmsg_pair_cmd cmd);
/* The latest link-state document for etcd (copied; sent again after a
 * restart). */
void	netproc_publish(struct netproc *np, const char *json);
/* The document for a NETPROC_WANT ticket (text copied). */
void	netproc_answer(struct netproc *np, uint32_t ticket, const char *text,
	    size_t len);
pid_t	netproc_pid(const struct netproc *np);		/* 0: none */
unsigned netproc_restarts(const struct netproc *np);
/*
 * How publishing to etcd goes, as the running network process last said:
 * 0 with *healthy and *error (borrowed from np, "" when none; valid until
 * the next loop callback), or -1 when it has said nothing yet.  healthy
 * also means the document last given to netproc_publish() is stored.
 */
int	netproc_etcd(const struct netproc *np, int *healthy,
	    const char **error);
/*
 * The configuration it was given (borrowed at netproc_new()) now holds
 * new settings: stop the process and start it again at once with them,
 * the paths' states carried over.  key and next (copied; next may be
 * NULL) replace the probe keys unless key is NULL.  0 or -1.
 */
int	netproc_reconfigure(struct netproc *np,
	    const uint8_t key[PROBE_KEY_LEN], const uint8_t *next);
/* Stop it (the channel closes; it is killed if it lingers).  NULL ok. */
void	netproc_free(struct netproc *np);

#endif /* GRGW_NETPROC_H */
