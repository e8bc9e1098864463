/*
 * netlink/: every change grgw makes to the kernel, through libnl.
 *
 * Each object installed is appended to a record file (one line per object,
 * rewritten atomically) before the function returns, so that `grgw down`,
 * even from a new process after a crash, removes exactly what grgw added.
 * Installing an object that is already recorded and present is a no-op,
 * so running `up` twice installs nothing twice.
 *
 * Objects are tagged either "block" (the fail-closed layer, kept by a plain
 * `down` so that stopping the gateway never leaks) or "run" (everything
 * else, removed by `down`).
 *
 * One file per job, each prototype below under the name of its file;
 * internal.h draws which file may call which.  Pointers passed in are
 * borrowed for the call and not kept, unless a comment says otherwise.
 *
 * Routing layout (T = cfg->table, default 4210):
 *   rule pref T-10  iif <wan> from <peer prefix> blackhole   [block]
 *                   (clear text claiming to come from the other site is
 *                    dropped; decrypted traffic arrives on the tunnel
 *                    interface, not on the WAN)
 *   rule pref 220   table 220: charon's own routes (libipsec data plane)
 *   rule pref T     lookup T:   routes to the peer prefixes over the xfrm
 *                               interface while the CHILD_SA is up  [run]
 *                               (kernel data plane)
 *   rule pref T+1   lookup T+1: "unreachable" routes for every peer
 *                               prefix                                 [block]
 *   rule 32766      main
 * With the tunnel down the peer prefixes resolve to "unreachable": the
 * kernel answers senders with ICMP destination unreachable at once and no
 * packet to the other site leaves the WAN in clear.
 */
#ifndef GRGW_NETLINK_H
#define GRGW_NETLINK_H

#include <net/if.h>
#include <stddef.h>
#include <stdint.h>

#include "netlink/nftcount.h"	/* gwnl_nft_counters_parse() */

struct grgw_addr;
struct grgw_config;
struct nl_msg;

struct gwnl;

/*
 * netlink.c: open a netlink route socket and load the record at
 * record_path (a missing file is an empty record).  *out is owned by the
 * caller and released with gwnl_close(), which does not undo anything.
 */
int	gwnl_open(const char *record_path, struct gwnl **out);
void	gwnl_close(struct gwnl *nl);			/* accepts NULL */

/* route.c: the fail-closed layer: block rules and unreachable routes.
 * Idempotent. */
int	gwnl_block_install(struct gwnl *nl, const struct grgw_config *cfg);

/*
 * verify.c: check the recorded rules, routes and nftables tables against
 * the kernel and install again what was removed or changed; then check
 * where the kernel routes the peer prefixes and, if a foreign table
 * would carry them, put guard rules before the rule that sends them
 * there (recorded block objects).  libipsec: charon's table 220 is one
 * of grgw's.  Returns out->repaired (0: all was in place); out->what
 * says what was found; out->overridden is set while a foreign table
 * still routes a peer prefix.  nft_changed: nftables changed, or the
 * events may have been lost; the tables applied with GWNL_WATCH_NFT are
 * checked only then.
 */
struct gwnl_verify {
	int	repaired;	/* objects installed again, guards added */
	int	overridden;
	char	what[512];
	char	override[256];	/* while overridden: which prefix, which table */
};
int	gwnl_block_verify(struct gwnl *nl, const struct grgw_config *cfg,
	    int libipsec, int nft_changed, struct gwnl_verify *out);

/*
 * kwatch.c: rtnetlink rule and route events and nftables events on the
 * event loop (read only); cb runs after each batch of them, with what
 * changed: KWATCH_ROUTING, KWATCH_NFT (both when events were lost).
 */
struct event_base;
struct kwatch;
#define KWATCH_ROUTING	0x1	/* rules, routes */
#define KWATCH_NFT	0x2	/* nftables, but the elements of a set */
typedef void (*kwatch_cb)(void *arg, int what);
struct kwatch *kwatch_new(struct event_base *base, kwatch_cb cb, void *arg);
void	kwatch_free(struct kwatch *w);			/* accepts NULL */

/*
 * sysctl.c: IP forwarding on (IPv4 and IPv6, all interfaces), and strict
 * reverse path filtering on the WAN interface.  Previous values are
 * recorded and restored by gwnl_cleanup().
 */
int	gwnl_forwarding_enable(struct gwnl *nl, const struct grgw_config *cfg);

/* xfrmi.c: the kernel data plane's xfrm interface (if_id, over the WAN
 * interface, MTU), created and brought up.  Idempotent. */
int	gwnl_xfrmi_create(struct gwnl *nl, const struct grgw_config *cfg);
/*
 * xfrm.c: delete every XFRM SA and policy bound to if_id (non-zero):
 * charon's, left in the kernel when it died.  Run before a new charon
 * starts and when the xfrm interface goes.  0, or -errno (logged).
 */
int	gwnl_xfrm_flush(uint32_t if_id);
/* route.c: routes for the peer prefixes over the xfrm interface in
 * table T. */
int	gwnl_tunnel_routes_install(struct gwnl *nl,
	    const struct grgw_config *cfg);
int	gwnl_tunnel_routes_remove(struct gwnl *nl,
	    const struct grgw_config *cfg);

/*
 * cleanup.c: remove every recorded object tagged "run" (and, with purge,
 * "block" too), in reverse order of installation, restoring recorded
 * sysctls.  Objects already gone are not errors.  The record is
 * rewritten to hold what remains.  Returns 0, or -1 if some object could
 * not be removed (each failure is logged).
 */
/*
 * After a reload: remove the recorded per-prefix rules and routes (both
 * layers) for peer prefixes cfg (borrowed) no longer has.  0 or -errno.
 */
int	gwnl_prefixes_prune(struct gwnl *nl, const struct grgw_config *cfg);
int	gwnl_cleanup(struct gwnl *nl, int purge);

/*
 * nft.c: replace grgw's nftables table `inet <table>` with body (the
 * table's contents) in one transaction, recorded as a block or run
 * object.  table: [a-z0-9_-], at most 31 characters.  0 or -errno
 * (logged).
 */
#define GWNL_FAILFAST_TABLE	"grgw-failfast"
#define GWNL_WANBLOCK_TABLE	"grgw-block"
#define GWNL_REFUSE_TABLE	"grgw-refuse"
int	gwnl_nft_apply(struct gwnl *nl, int block, const char *table,
	    const char *body);
/*
 * Fail fast (block layer): a TCP connection from the LAN interfaces to a
 * peer prefix that has no route is refused with a reset at once; the
 * segments of an established one get an ICMP unreachable instead (a soft
 * error: it survives a short gap).  Idempotent.
 */
int	gwnl_failfast_install(struct gwnl *nl, const struct grgw_config *cfg);
/*
 * The WAN block (block layer): table inet grgw-block drops whatever
 * leaves the WAN interface with a source or destination inside the
 * site's or the peer's prefixes, routes or no routes.  Idempotent.
 */
int	gwnl_wanblock_install(struct gwnl *nl, const struct grgw_config *cfg);
/*
 * Refusal while the link is down (a run object, table inet grgw-refuse):
 * gwnl_refuse_install() puts the table in place for cfg's prefixes,
 * refusing nothing (again after a change of prefixes: then refusing
 * stops until gwnl_refuse_set() says on again).  gwnl_refuse_set() with
 * on answers traffic from the LAN interfaces to the peer prefixes at
 * once, whatever the routes say (a new TCP connection with a reset,
 * everything else, established TCP included, with an ICMP unreachable,
 * a soft error for an established connection); without, it stops.  It
 * changes a set's elements only (one nfnetlink transaction, no
 * libnftables), installing the table first if it is missing.
 * Idempotent.  0 or -errno (logged).
 */
int	gwnl_refuse_install(struct gwnl *nl, const struct grgw_config *cfg);
int	gwnl_refuse_set(struct gwnl *nl, const struct grgw_config *cfg, int on);
/* nft.c: remove grgw's run table `inet <table>` and its record entry;
 * 0 also when there is none. */
int	gwnl_nft_drop(struct gwnl *nl, const char *table);
/*
 * The same as gwnl_nft_apply(), for a table of family inet, ip, ip6 or
 * arp, checked by gwnl_block_verify() as watch says: GWNL_WATCH_ALWAYS
 * at every check, GWNL_WATCH_NFT only when nftables changed (each check
 * lists the table through libnftables, which on a slow host costs the
 * daemon more than it can give at every route event: the pair's hold
 * tables are checked so), GWNL_WATCH_NONE never.
 */
#define GWNL_WATCH_NONE		0
#define GWNL_WATCH_ALWAYS	1
#define GWNL_WATCH_NFT		2
int	gwnl_nft_apply_family(struct gwnl *nl, int block, const char *family,
	    const char *table, const char *body, int watch);

/*
 * floatguard.c: the pair's hold, kept by the kernel.  Tables inet and
 * arp GWNL_FLOAT_TABLE (run objects) drop every packet from or for one
 * of the n floating addresses fl, and every ARP frame sent for one of
 * the IPv4 ones, unless the address is in the table's hold set.  Starts
 * empty: nothing is held.  Installed again as is when called again (a
 * hold that fails because a table is gone).  Watched on nftables changes
 * (GWNL_WATCH_NFT): a table changed behind grgw's back is put back, its
 * hold sets empty.  0 or -errno (logged).
 */
#define GWNL_FLOAT_TABLE	"grgw-pair"
#define GWNL_FLOAT_MAX		(GRGW_MAX_LAN_ADDRS + 1)
int	gwnl_floatguard_install(struct gwnl *nl, const struct grgw_addr *fl,
	    int n);
/*
 * Every one of fl held for ms from now, after which the kernel lets go
 * by itself (0: let go now), in one transaction (nfnetlink set-element
 * messages, not libnftables: this runs many times a second).  Needs no
 * struct gwnl: the hold sets are not recorded.  0 or -errno (the caller
 * says what failed).
 */
int	gwnl_floatguard_hold(const struct grgw_addr *fl, int n, uint32_t ms);
/*
 * floatguard.c too, a planned handover made before it breaks: table
 * netdev GWNL_DRAIN_TABLE (a run object) on ifname sends what arrives
 * there for any peer prefix (IPv4 and IPv6) straight back out of it to
 * the partner, by Ethernet address, while it drains: what the site's
 * nodes still send to a gateway that let the addresses go, until they
 * have heard its partner's announcement.  Installed draining nothing
 * (-ENOENT: no peer prefix).  gwnl_drain_set() starts it towards
 * partner (its MAC address and ifname's read now, float_drain_macs(),
 * err saying why not) or, with partner NULL, stops it: one nfnetlink
 * batch either way.  0 or -errno.
 */
#define GWNL_DRAIN_TABLE	"grgw-drain"
int	gwnl_drain_install(struct gwnl *nl, const struct grgw_config *cfg,
	    const char *ifname);
int	gwnl_drain_set(const char *ifname, const struct grgw_addr *partner,
	    char *err, size_t errlen);

/*
 * wanwatch.c: the WAN interface's state from rtnetlink link events on the
 * event loop (read only).  cb runs on each change, with up = interface
 * administratively up and running (carrier).
 */
struct event_base;
struct wanwatch;
typedef void (*wanwatch_cb)(int up, void *arg);
struct wanwatch *wanwatch_new(struct event_base *base, const char *ifname,
	    wanwatch_cb cb, void *arg);
int	wanwatch_up(const struct wanwatch *w);
void	wanwatch_free(struct wanwatch *w);		/* accepts NULL */

/*
 * qos.c: the QoS plan of policy/ in the kernel.
 *
 * gwnl_qos_rules_apply(): table inet grgw-qos (classification, DSCP
 * marks, named counters) replaced in one transaction; a run object.
 * gwnl_qos_shaper_apply(): the plan's HTB tree as the root qdisc of
 * ifname, recorded ("run qdisc IF htb 4210:"), rebuilt if it is there
 * already.  leaf gets the qdisc kind used inside the classes (fq_codel,
 * sfq or pfifo: the best this kernel has).  0, or -errno with the
 * reason in err (leaf and err: the caller's buffers, always set):
 * -ENODEV the interface is missing, -EOPNOTSUPP no htb in this kernel,
 * -EEXIST a root qdisc that is not grgw's is in place (left alone).
 * A failed build leaves no qdisc behind.
 * gwnl_qos_shaper_update(): the tree grgw built on ifname changed in
 * place to the plan (a reload): the root qdisc stays, classes that are
 * in both are changed (tc class change: their queues and counters stay),
 * new ones are added with a leaf of the kind in leaf (which it sets),
 * those the plan lost are removed.  Same returns, and -ENOENT when ifname
 * has no tree of grgw's (then apply builds one).
 * gwnl_qos_shaper_drop(): the tree removed and forgotten (shaping turned
 * off by a reload); 0 or -errno.
 */
struct policy_plan;
int	gwnl_qos_rules_apply(struct gwnl *nl, const struct policy_plan *plan);
int	gwnl_qos_shaper_apply(struct gwnl *nl, const struct policy_plan *plan,
	    const char *ifname, char *leaf, size_t leaflen, char *err,
	    size_t errlen);
int	gwnl_qos_shaper_update(struct gwnl *nl, const struct policy_plan *plan,
	    const char *ifname, char *leaf, size_t leaflen, char *err,
	    size_t errlen);
int	gwnl_qos_shaper_drop(struct gwnl *nl, const struct policy_plan *plan,
	    const char *ifname);

/* Per class of a plan (same index): what nftables classified, and what
 * the class's HTB queue sent and dropped (shaped = 0 without one). */
struct gwnl_qos_counters {
	uint64_t	packets, bytes;
	int		shaped;
	uint64_t	sent_packets, sent_bytes, drops, backlog;
};
/* Fill out[plan->n_classes] (the caller's); ifname NULL: no shaper to
 * read.  0, or -errno when the nftables counters cannot be read.  Their
 * listing goes through gwnl_nft_counters_parse() (nftcount.h). */
int	gwnl_qos_counters(struct gwnl *nl, const struct policy_plan *plan,
	    const char *ifname, struct gwnl_qos_counters *out);

/*
 * offload.c: GRO on a LAN interface.  gwnl_gro_off() turns it off, having
 * recorded that it was on ("run offload IF gro on"); cleanup turns it on
 * again.  An interface with GRO off already is left as it is.  0, or
 * -errno with the reason in err, the caller's buffer (-EOPNOTSUPP: the
 * driver keeps GRO fixed).
 * gwnl_gro_get(): *on = the interface's GRO setting; 0 or -errno.
 */
int	gwnl_gro_off(struct gwnl *nl, const char *ifname, char *err,
	    size_t errlen);
int	gwnl_gro_get(const char *ifname, int *on);
/*
 * The devices whose GRO decides what ifname receives merged: ifname
 * itself first, then what it is stacked on (the ports of a bridge, bond
 * or team; the lower device of a VLAN, macvlan or ipvlan), recursively.
 * Up to max names; returns how many, or -errno (-ENODEV: no ifname).
 */
#define GWNL_GRO_DEVS_MAX	32
int	gwnl_gro_devices(struct gwnl *nl, const char *ifname,
	    char names[][IF_NAMESIZE], int max);

/*
 * float.c: the floating addresses of a gateway pair (held by the active
 * gateway only), on the interface ifname, in this network namespace.
 * Not recorded: holding them is the pair's decision, not a layer that
 * `down` undoes.  Each call opens its own sockets and closes them.  a is
 * borrowed; err is the caller's buffer, set on failure.  -EINVAL for a
 * bad interface name, -EAFNOSUPPORT for a family other than IPv4/IPv6.
 *
 * nl_float_add(): add a/prefixlen (IPv6 with IFA_F_NODAD: usable as a
 * source at once, never tentative).  1 added, 0 there already (kept
 * whatever its prefix length; an IPv6 one still tentative or that failed
 * duplicate address detection is added anew: 1), -errno (-ENODEV: no
 * such interface).
 * nl_float_del(): remove a from ifname whatever its prefix length.  1
 * removed, 0 it was not there (nor was the interface), -errno.  An IPv4
 * address that is the primary of its subnet takes the secondaries with
 * it unless promote_secondaries is on for the interface.
 * nl_float_has(): 1 a is on ifname (any prefix length, any state), 0
 * not, -errno (-ENODEV: no such interface).
 *
 * float_announce(): tell the link that ifname now holds a: a gratuitous
 * ARP request (IPv4) or an unsolicited neighbour advertisement with the
 * override flag, to ff02::1 from a, hop limit 255, the router flag as
 * ifname forwards IPv6 (IPv6).  One frame, from ifname's MAC address, on
 * ifname itself (a bridge, a bridge port or a plain interface).  a must
 * be an address of this host (on any interface) and usable.  0, or
 * -errno: -ENODEV no such interface, -ENXIO no Ethernet MAC address,
 * -ENETDOWN interface down, -EADDRNOTAVAIL a is not here (or still
 * tentative), or the socket's error.
 *
 * float_drain_macs(): ifname's own Ethernet address into own, and nb's
 * (a neighbour on ifname) into nbmac, as the kernel's neighbour table
 * has it now (a reachable, stale, delayed, probed or permanent entry).
 * 0, or -errno: those of float_announce() for ifname, -EHOSTUNREACH no
 * usable entry for nb.
 */
int	nl_float_add(const char *ifname, const struct grgw_addr *a,
	    int prefixlen, char *err, size_t errlen);
int	nl_float_del(const char *ifname, const struct grgw_addr *a,
	    char *err, size_t errlen);
int	nl_float_has(const char *ifname, const struct grgw_addr *a,
	    char *err, size_t errlen);
int	float_drain_macs(const char *ifname, const struct grgw_addr *nb,
	    uint8_t own[6], uint8_t nbmac[6], char *err, size_t errlen);
int	float_announce(const char *ifname, const struct grgw_addr *a,
	    char *err, size_t errlen);

/* netlink.c: number of recorded objects (for status and tests). */
int	gwnl_record_count(const struct gwnl *nl, int *block, int *run);
/* netlink.c: 0, or -errno of the last failed write of the record file
 * while the record holds objects the file does not. */
int	gwnl_record_unsaved(const struct gwnl *nl);

/*
 * xfrmi.c: data plane detection: 1 if the kernel can do ESP and xfrm
 * interfaces (an xfrm interface can be created in this network namespace
 * and the esp4 module is loaded, built in or loadable), else 0.  Leaves
 * nothing behind.
 */
int	gwnl_kernel_ipsec_available(void);

/*
 * Message builders (xfrmi.c, route.c), exposed for unit tests of the
 * kernel data plane without a kernel.  Each returns a new nl_msg owned
 * by the caller (nlmsg_free()), or NULL; name and cfg are borrowed.
 */
struct nl_msg *gwnl_build_xfrmi_add(const char *name, uint32_t if_id,
	    int link_ifindex, uint32_t mtu);
struct nl_msg *gwnl_build_tunnel_route(const struct grgw_config *cfg,
	    int prefix_index, int oif, int add);
/*
 * xfrm.c: the request that deletes the SA or policy one dump message
 * (XFRM_MSG_NEWSA or XFRM_MSG_NEWPOLICY, len bytes, 4-byte aligned)
 * describes, if it is bound to if_id; NULL when it is not, or when the
 * message is short or inconsistent in any way.
 */
struct nl_msg *gwnl_build_xfrm_delete(void *dump_msg, size_t len,
	    uint32_t if_id);

#endif /* GRGW_NETLINK_H */
