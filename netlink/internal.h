/*
 * What the files of netlink/ share beyond netlink.h.  Internal to
 * netlink/.
 *
 * A file calls only files below it, never one beside it or above:
 *
 *   verify.c    checks the record against the kernel (route.c, nft.c)
 *   cleanup.c   walks the record, removes each object with its kind's
 *               remover (below)
 *   route.c sysctl.c offload.c xfrmi.c qos.c
 *               one kind of kernel object each; xfrmi.c also flushes
 *               the SAs of its interface (xfrm.c), qos.c applies its
 *               table through nft.c and reads it with nftcount.c
 *   floatguard.c the pair's hold, and a handover's drain, in nftables
 *               (nft.c, nfset.c)
 *   nft.c       nftables tables; the refusing of traffic to the peer
 *               switched by a set's elements (nfset.c)
 *   nfset.c     set elements written straight to nf_tables
 *   netlink.c   the core: socket, requests and their errors, record
 *   record.c    the record's format and file
 *
 * float.c (the pair's floating addresses) calls only netlink.c.
 * nftcount.c (a pure parser), xfrm.c, wanwatch.c and kwatch.c call none
 * of the files above; nothing in netlink/ calls wanwatch.c, kwatch.c or
 * float.c.
 */
#ifndef GRGW_NETLINK_INTERNAL_H
#define GRGW_NETLINK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "netlink/record.h"

struct gwnl;
struct nl_msg;
struct nl_sock;

/* ---- nfset.c: set elements in one nfnetlink transaction ---------------- */

/*
 * nfset_begin(), then any number of nfset_clear() (every element of a
 * set or map), nfset_add() (one element: its key of keylen bytes,
 * expiring after timeout_ms, or never with 0) and nfset_map_add() (one
 * element of a map: its key and its data of datalen bytes, never
 * expiring), then nfset_commit(): all of it
 * one transaction, 0 once the kernel acknowledged every message, else
 * -errno (-ENOENT: no such table or set; -ENOBUFS: too much for one
 * batch).  nfset_commit() frees the batch, whatever it returns; a NULL
 * batch (out of memory) gives -ENOMEM.
 */
struct nfset_batch;

struct nfset_batch *nfset_begin(void);
void	nfset_clear(struct nfset_batch *b, uint8_t nfproto, const char *table,
	    const char *set);
void	nfset_add(struct nfset_batch *b, uint8_t nfproto, const char *table,
	    const char *set, const void *key, size_t keylen,
	    uint32_t timeout_ms);
void	nfset_map_add(struct nfset_batch *b, uint8_t nfproto,
	    const char *table, const char *map, const void *key, size_t keylen,
	    const void *data, size_t datalen);
int	nfset_commit(struct nfset_batch *b);

/* ---- nft.c ------------------------------------------------------------- */

/*
 * Run an nftables script as one transaction.  0, or -EINVAL with the
 * parser's or kernel's complaint logged (what names the caller's object).
 */
int	gwnl_nft_run(const char *script, const char *what);

/* ---- netlink.c: the core --------------------------------------------- */

/*
 * A struct gwnl with a route socket and an empty record that belongs to
 * no file, for probes that leave nothing behind: gwnl_record_append()
 * and gwnl_record_save() refuse it (-EINVAL).  *out is owned by the
 * caller and released with gwnl_close().  0 or -errno.
 */
int	gwnl_open_unrecorded(struct gwnl **out);

/* The route socket (owned by nl). */
struct nl_sock *gwnl_socket(struct gwnl *nl);
/* The record (owned by nl; objects removed from it are freed). */
struct rec_list *gwnl_record(struct gwnl *nl);
/* The record file's path, for messages (owned by nl; "" if none). */
const char *gwnl_record_path(const struct gwnl *nl);
/*
 * Append a copy of o (borrowed) to the record and rewrite the file.  If
 * the file cannot be written, a run object's copy goes again; a block
 * object's stays in the record (the file is written with it at the next
 * save) and gwnl_record_unsaved() says so.  0 or -errno.
 */
int	gwnl_record_append(struct gwnl *nl, const struct rec_obj *o);
/* State nft.c keeps per socket (owned by nl, freed with free_fn at
 * gwnl_close()). */
void	*gwnl_nft_state(struct gwnl *nl);
void	gwnl_nft_state_set(struct gwnl *nl, void *state,
	    void (*free_fn)(void *));
/* Rewrite the file with what the record now holds.  0 or -errno. */
int	gwnl_record_save(struct gwnl *nl);
/* o (borrowed) as its record line into buf, for messages. */
void	gwnl_describe(const struct rec_obj *o, char *buf, size_t size);

/*
 * Send msg (owned by this call, freed here) and wait for the kernel's
 * ack: 0 or -errno; err (may be NULL) gets " (kernel: ...)" when the
 * kernel gave a reason, else "".
 */
int	gwnl_request(struct gwnl *nl, struct nl_msg *msg, char *err,
	    size_t errlen);
/*
 * For libnl calls that talk to the kernel on gwnl_socket() by themselves
 * (rtnl_link_get_kernel(), rtnl_link_change(), ...): reset before the
 * call; after it failed with nlerr (a libnl error), gwnl_ack_error()
 * returns -errno, the kernel's when it answered, and sets err (may be
 * NULL) as gwnl_request() does.
 */
void	gwnl_ack_reset(struct gwnl *nl);
int	gwnl_ack_error(struct gwnl *nl, int nlerr, char *err, size_t errlen);
/* errno (positive) for a libnl error code. */
int	gwnl_nlerr_to_errno(int nlerr);
/* ifindex of name (borrowed) in this network namespace, or -errno
 * (-ENODEV: no such interface). */
int	gwnl_ifindex(struct gwnl *nl, const char *name);

/*
 * ---- removers, one per object kind, for cleanup.c --------------------
 *
 * Each takes a recorded object o and desc, its record line for messages
 * (both borrowed, not kept), and returns 0 removed (or restored), 1
 * already gone, or -errno (logged).  None touches the record.
 */

/*
 * ---- verification, for verify.c -------------------------------------
 *
 * route.c: install again each recorded rule and route the kernel lost
 * or changed; nft.c: apply again each recorded table whose listing
 * changed (those watched on nftables changes only when nft_changed).
 * Both return how many, or -errno, and append their descriptions to
 * what ("; "-separated).  gwnl_rule_ensure(): install
 * and record o as the fail-closed layer's own objects are.
 */
int	gwnl_routes_verify(struct gwnl *nl, char *what, size_t whatlen);
int	gwnl_nft_verify(struct gwnl *nl, int nft_changed, char *what,
	    size_t whatlen);
int	gwnl_rule_ensure(struct gwnl *nl, const struct rec_obj *o);

/* route.c: a policy rule; a route. */
int	gwnl_rule_remove(struct gwnl *nl, const struct rec_obj *o,
	    const char *desc);
int	gwnl_route_remove(struct gwnl *nl, const struct rec_obj *o,
	    const char *desc);
/* xfrmi.c: the xfrm interface, after the SAs and policies bound to it. */
int	gwnl_xfrmi_remove(struct gwnl *nl, const struct rec_obj *o,
	    const char *desc);
/* sysctl.c: put the recorded value back. */
int	gwnl_sysctl_restore(const struct rec_obj *o, const char *desc);
/* nft.c: an nftables table. */
int	gwnl_nft_remove(const struct rec_obj *o, const char *desc);
/* qos.c: a root qdisc, if it is still the one grgw installed. */
int	gwnl_qdisc_remove(struct gwnl *nl, const struct rec_obj *o,
	    const char *desc);
/* offload.c: put a recorded offload setting back. */
int	gwnl_offload_restore(const struct rec_obj *o, const char *desc);

#endif /* GRGW_NETLINK_INTERNAL_H */
