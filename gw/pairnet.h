/*
 * pairnet.c: the gateway pair in the network process (heartbeats, the
 * role engine of pair.h, its fence in etcd).  The parent's side is
 * pairhold.h.
 */
#ifndef GRGW_PAIRNET_H
#define GRGW_PAIRNET_H

#include <stdint.h>

#include "grgw.h"
#include "pmsg.h"

struct event_base;
struct pairnet;

/* Where the pair stands, for the parent (PMSG_ROLE); ro is borrowed. */
typedef void (*pairnet_cb)(const struct pmsg_role *ro, void *arg);

/*
 * Bind [pair] address and port, and start the engine (role starting, or
 * active when resume_epoch and resume_until say so: see
 * pair_role_conf; 0, 0 for none).  cfg (borrowed, must outlive it) has
 * [pair] and [etcd] endpoint; key and next (NULL: none) are the
 * heartbeat keys (PAIR_KEY_LEN), copied.  NULL with err set.
 */
struct pairnet *pairnet_new(struct event_base *base,
	    const struct grgw_config *cfg, const uint8_t *key,
	    const uint8_t *next, uint64_t resume_epoch, uint64_t resume_until,
	    pairnet_cb cb, void *arg, char *err, size_t errlen);
/* New heartbeat keys (a reload); copied. */
void	pairnet_set_keys(struct pairnet *pn, const uint8_t *key,
	    const uint8_t *next);
/* What the parent says (PMSG_PAIR_CMD). */
void	pairnet_cmd(struct pairnet *pn, enum pmsg_pair_cmd cmd);

#define PAIRNET_PATHS	2	/* [pair] address, second_address */
#define PAIRNET_FENCES	2	/* connections to etcd */

struct pairnet_stats {
	uint64_t	sent, received;
	uint64_t	duplicates;	/* the same one on the other path */
	uint64_t	rejected_auth, rejected_replay, rejected_malformed;
	uint64_t	foreign;	/* from another address or port */
	uint64_t	send_errors;
	uint64_t	reads, reads_done, claims, claims_done;
};
void	pairnet_stats(const struct pairnet *pn, struct pairnet_stats *out);
void	pairnet_free(struct pairnet *pn);	/* accepts NULL */

#endif /* GRGW_PAIRNET_H */
