/*
 * blockwatch.c: keeps the fail-closed layer as installed while the
 * daemon runs.  Kernel changes to rules, routes or nftables (and a
 * timer, in case an event was lost) lead to a check of the record
 * against the kernel; what was removed, changed or overridden is
 * installed again at once (gwnl_block_verify()), logged, counted, and
 * reported to the caller.
 */
#ifndef GRGW_BLOCKWATCH_H
#define GRGW_BLOCKWATCH_H

#include <stdint.h>
#include <time.h>

struct event_base;
struct grgw_config;
struct gwnl;

struct blockwatch_view {
	uint64_t	repairs;	/* checks that had to repair something */
	uint64_t	checks;
	time_t		last_at;	/* last repair, 0 = never */
	char		last[512];	/* what it found, "" = never */
	int		overridden;	/* a foreign table still routes a peer
					 * prefix */
	char		override[256];	/* which, while overridden */
	int		record_errno;	/* the record file lags (errno), or 0 */
};

struct blockwatch;
/* what: what was repaired (borrowed for the call). */
typedef void (*blockwatch_cb)(const char *what, void *arg);

/* nl and cfg are borrowed for the watch's life.  NULL if it cannot
 * watch (logged); the daemon runs on, checking nothing. */
struct blockwatch *blockwatch_new(struct event_base *base, struct gwnl *nl,
	    const struct grgw_config *cfg, int libipsec, blockwatch_cb cb,
	    void *arg);
void	blockwatch_get(const struct blockwatch *w, struct blockwatch_view *v);
void	blockwatch_free(struct blockwatch *w);		/* accepts NULL */

#endif /* GRGW_BLOCKWATCH_H */
