/*
 * Link probes between the two gateways, over UDP, on two paths: inside the
 * tunnel (LAN address to LAN address) and on the underlay (WAN address to
 * the peer's address).  Both gateways send requests and answer the
 * other's, so each side measures round trips on its own.
 *
 * The packets themselves are probe_codec.h's.
 */
#ifndef GRGW_PROBE_H
#define GRGW_PROBE_H

#include <stddef.h>
#include <stdint.h>

#include "grgw.h"
#include "linkstate.h"
#include "probe_codec.h"

struct event_base;

/* ---- probe.c: the engine (on the event loop) ------------------------------------------- */

struct probe_settings {
	unsigned	interval_ms;	/* between requests, per path */
	unsigned	multiplier;	/* missed intervals before down */
	unsigned	recover;	/* consecutive good replies before up */
	uint16_t	port;
	/*
	 * GRGW_PROBES_GRGW: authenticated UDP probes on port.
	 * GRGW_PROBES_ICMP: ICMP echo requests, answered by any IP stack,
	 *   on the raw sockets icmp_fd[] (opened by the privileged parent,
	 *   of the path's address family; -1: that path stays down).  The
	 *   engine owns them from probe_engine_new() on, even on failure.
	 * GRGW_PROBES_OFF: nothing is sent; both paths stay down.
	 */
	enum grgw_probes method;
	int		icmp_fd[PROBE_NPATHS];
};

/*
 * A path went up or down (BFD-style verdict).  Runs on the loop, from
 * inside the engine: it may call probe_engine_stats() but must not free
 * the engine.  A path starts down; it is down after multiplier intervals
 * without a valid packet from the peer, and up after recover replies in a
 * row with no request lost in between.
 */
typedef void (*probe_change_cb)(enum probe_path path, int up, void *arg);

struct probe_engine;

/*
 * cfg is borrowed and must outlive the engine; key is copied (into
 * sodium_malloc'ed memory).  Nothing is sent before probe_engine_start().
 */
struct probe_engine *probe_engine_new(struct event_base *base,
	    const struct grgw_config *cfg, const struct probe_settings *s,
	    const uint8_t key[PROBE_KEY_LEN], probe_change_cb cb, void *arg);
/*
 * A raw ICMP socket for a path of probes = icmp, for the privileged
 * parent to hand to the network process: of the family of the path's
 * addresses (as probe_engine_start() picks them), with only echo replies
 * let through, close-on-exec.  The fd, or -1 with errno (no such pair of
 * addresses: ENOENT).
 */
int	probe_icmp_socket(const struct grgw_config *cfg, enum probe_path path);

/*
 * Bind both paths' sockets (the tunnel path from the site's first LAN
 * address of the family the peer also has, the underlay path from the WAN
 * address) and start sending.  A bind that fails (address not yet there)
 * is retried every second, and the path counts as down meanwhile.
 */
int	probe_engine_start(struct probe_engine *e);
/*
 * The addresses may be there now ([pair]: this gateway took the site's
 * floating ones): a path still waiting to bind tries at once instead of
 * at its next retry.
 */
void	probe_engine_rebind(struct probe_engine *e);
/*
 * Before start: the path was up in a predecessor engine (a restarted
 * network process), so it starts up, with the usual deadline for a first
 * answer, instead of down and waiting for `recover` answers.
 */
void	probe_engine_assume_up(struct probe_engine *e, enum probe_path path);
/*
 * A new SA carries path from now on (the other site's gateway took
 * over, a rekey): answers missed before it say nothing about it.  A path
 * that is up gets a whole detection time from now, and a request goes
 * at once, so that a path whose old SA died is not called down just as
 * its new one arrives (nor, down already, waits for its next interval).
 */
void	probe_engine_fresh(struct probe_engine *e, enum probe_path path);
/*
 * paused: path's requests are not sent ([pair]: an active handing over,
 * its SAs closing: one sent on them could meet the other site deleting
 * them, and be dropped there); unpaused, the path starts fresh
 * (probe_engine_fresh()).  Answers to the peer go on either way.
 */
void	probe_engine_pause(struct probe_engine *e, enum probe_path path,
	    int paused);
/*
 * New keys (a reload): key is sent with from then on; next, while a key
 * rotation is under way (the key derived from the next pre-shared key),
 * is accepted as well as key, so the link holds while the two gateways
 * have different primary keys.  NULL: key alone.  Both are copied (into
 * sodium_malloc'ed memory).  0, or -1 (out of secure memory) with the
 * engine as it was.
 */
int	probe_engine_set_keys(struct probe_engine *e,
	    const uint8_t key[PROBE_KEY_LEN], const uint8_t *next);
void	probe_engine_stats(const struct probe_engine *e, enum probe_path path,
	    struct path_stats *out);
void	probe_engine_free(struct probe_engine *e);	/* accepts NULL */

#endif /* GRGW_PROBE_H */
