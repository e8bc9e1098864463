/*
 * pairhold.c: the privileged parent's side of the gateway pair ([pair]).
 *
 * The role engine runs in the network process (it reads heartbeats and
 * etcd, both from the network) and says where the pair stands with
 * PMSG_ROLE.  This side does what only root can: it puts the floating
 * addresses ([site] wan_address and lan_address) on this host when the
 * engine says active, announces them (gratuitous ARP, unsolicited
 * neighbour advertisement), and takes them away again when it says
 * anything else.
 *
 * It also keeps the engine's promise on its own: an active engine sends
 * a hold (how long it may keep the addresses unless told again) at every
 * heartbeat interval, and when a hold runs out without a new one, the
 * addresses go.  A network process that hangs, dies or is killed can so
 * never leave this gateway holding the site's addresses while its partner
 * takes them.  Nor can this process: a child of its own (grgw-float)
 * takes them off the host as soon as this process is gone, however it
 * went (a crash, kill -9).  Nor can a host on which nothing of grgw runs
 * any more (starved, stopped): the kernel itself keeps the hold too
 * (netlink/floatguard.c), and past it drops every packet from or for a
 * floating address, and every ARP answer for one.
 */
#ifndef GRGW_PAIRHOLD_H
#define GRGW_PAIRHOLD_H

#include <stddef.h>
#include <stdint.h>

#include "grgw.h"
#include "pmsg.h"

struct event_base;
struct gwnl;
struct pairhold;

/*
 * The addresses were taken (held 1) or given up (held 0), and why;
 * same_epoch: taken again under the epoch they were last taken under, or
 * given up under it (no newer epoch ended the holding: its hold ran out).
 * Runs on the loop; it may call pairhold_*() but not pairhold_free().
 */
typedef void (*pairhold_cb)(int held, int same_epoch, const char *why,
	    void *arg);

/*
 * cfg (borrowed; must outlive the handle) has a [pair]; nl records the
 * kernel's hold tables (run objects: cleanup removes them).  The LAN
 * addresses float on the LAN interface that holds [pair] address, the
 * WAN one on [site] wan_interface; each as a host address (/32, /128),
 * so that the gateway's own address keeps its subnet and its routes.
 * NULL with err set when [pair] address is on no LAN interface.
 */
struct pairhold *pairhold_new(struct event_base *base, struct gwnl *nl,
	    const struct grgw_config *cfg, pairhold_cb cb, void *arg,
	    char *err, size_t errlen);
/* What the network process said (PMSG_ROLE); copied, and applied once
 * the messages read with it are (only the latest of them). */
void	pairhold_role(struct pairhold *ph, const struct pmsg_role *ro);
/* The kernel's hold was lost (its table put back empty): set it again
 * now, to the deadline in force.  NULL ok. */
void	pairhold_rehold(struct pairhold *ph);
/* How long the kernel's hold has left, in ms (0: none). */
uint32_t pairhold_kernel_left(const struct pairhold *ph);
/* Give the addresses up now (shutdown, the network process is gone and
 * its hold with it): why is logged. */
void	pairhold_drop(struct pairhold *ph, const char *why);
int	pairhold_held(const struct pairhold *ph);
/* The latest PMSG_ROLE (zeroed before the first); owned by ph. */
const struct pmsg_role *pairhold_last(const struct pairhold *ph);
/* The partner's silence now, in ms (UINT32_MAX: never heard). */
uint32_t pairhold_partner_age(const struct pairhold *ph);
/* How many times this gateway took the addresses since it started: once
 * per epoch (taken again under the same one after a lapse counts once). */
uint64_t pairhold_takes(const struct pairhold *ph);
/* The epoch the addresses were last taken under (0: never). */
uint64_t pairhold_taken_epoch(const struct pairhold *ph);
/*
 * Before the addresses go at the engine's word (not when a hold runs
 * out): before(arg) may start something that needs them still (a
 * planned handover's SAs deleted, so that the peer learns it from the
 * floating WAN address) and return 1; the caller then calls
 * pairhold_release_now() when it is done.  The release comes by itself
 * margin_ms / 2 later, or at the hold's deadline, whichever is sooner.
 */
typedef int (*pairhold_before_cb)(void *arg);
void	pairhold_set_before(struct pairhold *ph, pairhold_before_cb before);
/*
 * A planned handover made before it breaks: for ms from now, what the
 * site's nodes send to this gateway for the peer prefixes goes straight
 * on to the partner (netlink's drain; the partner's SAs carry it), not
 * into this gateway's tunnel or its refusal.  0, or -1 (no drain table,
 * logged at start; the switch failed, logged).
 */
int	pairhold_drain(struct pairhold *ph, uint32_t ms);
/* Ends a drain before its time (a handover given up).  NULL ok. */
void	pairhold_drain_end(struct pairhold *ph);
void	pairhold_release_now(struct pairhold *ph);
/* Gives the addresses up if held (the callback is not called).  NULL ok. */
void	pairhold_free(struct pairhold *ph);

/*
 * Without a daemon (`grgw down` after a crash): every floating address of
 * cfg's [site] taken off this host.  The number removed, or -1 with err
 * set (what could be removed is).
 */
int	pairhold_clear(const struct grgw_config *cfg, char *err,
	    size_t errlen);

#endif /* GRGW_PAIRHOLD_H */
