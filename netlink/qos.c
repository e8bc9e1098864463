/*
 * The QoS plan (policy/) in the kernel: the nftables table that
 * classifies and marks packets (through gwnl_nft_apply(), one
 * transaction), and the HTB tree on the tunnel interface (libnl route
 * tc).  Both are recorded; gwnl_cleanup() removes them.  Per-class
 * counters are read back from both (nftcount.c parses nft's listing).
 *
 * The kernels this runs on differ in what tc offers: the tree is built
 * from what exists (fq_codel, else sfq, else pfifo inside the classes)
 * and the caller is told what was used, or why shaping is impossible.
 */
#include <linux/pkt_sched.h>

#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nftables/libnftables.h>

#include "netlink/libnl.h"
#include <netlink/route/tc.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/class.h>
#include <netlink/route/qdisc/htb.h>
#include <netlink/route/qdisc/fifo.h>

#include "grgw.h"
#include "netlink/netlink.h"
#include "netlink/record.h"
#include "netlink/internal.h"
#include "policy/policy.h"

#define NFT_LIST_MAX	(256 * 1024)	/* more than any listing of ours */

/* ---- nftables --------------------------------------------------------- */

int
gwnl_qos_rules_apply(struct gwnl *nl, const struct policy_plan *plan)
{
	if (plan == NULL || plan->ruleset == NULL)
		return -EINVAL;
	return gwnl_nft_apply(nl, 0, POLICY_NFT_TABLE, plan->ruleset);
}

_Static_assert(GRGW_MAX_CLASSES + 1 <= GWNL_NFT_NAMES_MAX,
    "every class's counter is looked for in one parse");

/* "list counters table inet grgw-qos" into the plan's classes. */
static int
nft_read_counters(const struct policy_plan *plan,
    struct gwnl_qos_counters *out)
{
	const char	*names[GRGW_MAX_CLASSES + 1] = { NULL };
	uint64_t	 pk[GRGW_MAX_CLASSES + 1], by[GRGW_MAX_CLASSES + 1];
	struct nft_ctx	*ctx;
	const char	*text;
	char		 cmd[128];
	int		 i, rc = 0;

	if ((ctx = nft_ctx_new(NFT_CTX_DEFAULT)) == NULL)
		return -ENOMEM;
	nft_ctx_buffer_output(ctx);
	nft_ctx_buffer_error(ctx);
	snprintf(cmd, sizeof(cmd), "list counters table %s %s",
	    POLICY_NFT_FAMILY, POLICY_NFT_TABLE);
	if (nft_run_cmd_from_buffer(ctx, cmd) != 0) {
		rc = -ENOENT;
		goto cleanup;
	}
	text = nft_ctx_get_output_buffer(ctx);
	if (text == NULL || strnlen(text, NFT_LIST_MAX) == NFT_LIST_MAX) {
		rc = -EMSGSIZE;
		goto cleanup;
	}
	for (i = 0; i < plan->n_classes; i++) {
		names[i] = plan->classes[i].counter;
		pk[i] = by[i] = 0;
	}
	gwnl_nft_counters_parse(text, strlen(text), names,
	    (size_t)plan->n_classes, pk, by);
	for (i = 0; i < plan->n_classes; i++) {
		out[i].packets = pk[i];
		out[i].bytes = by[i];
	}

cleanup:
	nft_ctx_free(ctx);
	return rc;
}

/* ---- tc --------------------------------------------------------------- */

/* tc's notation, "4210:11" or "4210:" (policy/ has its own, but netlink/
 * is linked on its own by the kernel tests). */
static const char *
handle_fmt(uint32_t h, char *buf, size_t size)
{
	if ((h & 0xffffu) == 0)
		snprintf(buf, size, "%x:", h >> 16);
	else
		snprintf(buf, size, "%x:%x", h >> 16, h & 0xffffu);
	return buf;
}

/*
 * The root qdisc of ifindex: 1 with its handle and kind, 0 if none,
 * -errno.
 */
static int
root_qdisc(struct gwnl *nl, int ifindex, uint32_t *handle, char *kind,
    size_t kindlen)
{
	struct nl_cache		*cache = NULL;
	struct rtnl_qdisc	*q;
	const char		*k;
	int			 err;

	if ((err = rtnl_qdisc_alloc_cache(gwnl_socket(nl), &cache)) < 0)
		return -EIO;
	q = rtnl_qdisc_get_by_parent(cache, ifindex, TC_H_ROOT);
	if (q == NULL) {
		nl_cache_free(cache);
		return 0;
	}
	*handle = rtnl_tc_get_handle(TC_CAST(q));
	k = rtnl_tc_get_kind(TC_CAST(q));
	snprintf(kind, kindlen, "%s", k != NULL ? k : "");
	rtnl_qdisc_put(q);
	nl_cache_free(cache);
	return 1;
}

static int
root_delete(struct gwnl *nl, int ifindex, uint32_t handle, char *err,
    size_t errlen)
{
	struct rtnl_qdisc	*q;
	struct nl_msg		*msg = NULL;
	int			 rc;

	if ((q = rtnl_qdisc_alloc()) == NULL)
		return -ENOMEM;
	rtnl_tc_set_ifindex(TC_CAST(q), ifindex);
	rtnl_tc_set_parent(TC_CAST(q), TC_H_ROOT);
	rtnl_tc_set_handle(TC_CAST(q), handle);
	rc = rtnl_qdisc_build_delete_request(q, &msg);
	rtnl_qdisc_put(q);
	if (rc < 0 || msg == NULL)
		return -ENOMEM;
	return gwnl_request(nl, msg, err, errlen);
}

static int
qdisc_add(struct gwnl *nl, struct rtnl_qdisc *q, int flags, char *err,
    size_t errlen)
{
	struct nl_msg	*msg = NULL;

	if (rtnl_qdisc_build_add_request(q, flags, &msg) < 0 || msg == NULL)
		return -ENOMEM;
	return gwnl_request(nl, msg, err, errlen);
}

/*
 * An HTB class: flags NLM_F_CREATE | NLM_F_EXCL makes a new one;
 * NLM_F_CREATE | NLM_F_REPLACE also changes one in place (its queue and
 * counters stay).
 */
static int
class_add(struct gwnl *nl, int ifindex, uint32_t parent, uint32_t classid,
    uint64_t rate, uint64_t ceil, uint32_t prio, uint32_t quantum,
    int flags, char *err, size_t errlen)
{
	struct rtnl_class	*cl;
	struct nl_msg		*msg = NULL;
	int			 rc = -ENOMEM;

	if ((cl = rtnl_class_alloc()) == NULL)
		return -ENOMEM;
	rtnl_tc_set_ifindex(TC_CAST(cl), ifindex);
	rtnl_tc_set_parent(TC_CAST(cl), parent);
	rtnl_tc_set_handle(TC_CAST(cl), classid);
	if (rtnl_tc_set_kind(TC_CAST(cl), "htb") < 0)
		goto cleanup;
	/* libnl takes HTB rates in bytes per second. */
	if (rtnl_htb_set_rate64(cl, rate / 8) < 0 ||
	    rtnl_htb_set_ceil64(cl, ceil / 8) < 0 ||
	    rtnl_htb_set_prio(cl, prio) < 0 ||
	    (quantum != 0 && rtnl_htb_set_quantum(cl, quantum) < 0))
		goto cleanup;
	if (rtnl_class_build_add_request(cl, flags, &msg) < 0 || msg == NULL)
		goto cleanup;
	rc = gwnl_request(nl, msg, err, errlen);

cleanup:
	rtnl_class_put(cl);
	return rc;
}

/* Leaf qdisc kinds, best first: fair queuing where the kernel has it. */
static const char *const leaf_kinds[] = { "fq_codel", "sfq", "pfifo" };

static int
leaf_add(struct gwnl *nl, int ifindex, const struct policy_tc_class *tc,
    const char *kind, char *err, size_t errlen)
{
	struct rtnl_qdisc	*q;
	int			 rc = -ENOMEM;

	if ((q = rtnl_qdisc_alloc()) == NULL)
		return -ENOMEM;
	rtnl_tc_set_ifindex(TC_CAST(q), ifindex);
	rtnl_tc_set_parent(TC_CAST(q), tc->classid);
	rtnl_tc_set_handle(TC_CAST(q), tc->leaf_handle);
	if (rtnl_tc_set_kind(TC_CAST(q), kind) < 0)
		goto cleanup;
	if (strcmp(kind, "pfifo") == 0 &&
	    rtnl_qdisc_fifo_set_limit(q, (int)tc->queue_limit) < 0)
		goto cleanup;
	rc = qdisc_add(nl, q, NLM_F_CREATE | NLM_F_EXCL, err, errlen);

cleanup:
	rtnl_qdisc_put(q);
	return rc;
}

/*
 * One class of the plan with its leaf qdisc.  change: the class may be
 * there already and is changed in place (a new one gets its leaf).  *k
 * indexes leaf_kinds: the first leaf made finds what the kernel has and
 * the rest use it.  0 or -errno, err set.
 */
static int
htb_class_put(struct gwnl *nl, int ifindex, const struct policy_plan *plan,
    const struct policy_tc_class *tc, int change, size_t *k, char *err,
    size_t errlen)
{
	char	 h[16], r[200];
	int	 rc;

	rc = class_add(nl, ifindex, plan->root_classid, tc->classid, tc->rate,
	    tc->ceil, tc->priority, tc->quantum, change ? NLM_F_CREATE |
	    NLM_F_REPLACE : NLM_F_CREATE | NLM_F_EXCL, r, sizeof(r));
	if (rc < 0) {
		snprintf(err, errlen, "htb class %s (%s): %s%s",
		    handle_fmt(tc->classid, h, sizeof(h)), tc->name,
		    strerror(-rc), r);
		return rc;
	}
	for (;;) {
		rc = leaf_add(nl, ifindex, tc, leaf_kinds[*k], r, sizeof(r));
		if (rc == -EEXIST && change)
			return 0;	/* a class changed keeps its queue */
		if (rc == 0 || *k + 1 == nitems(leaf_kinds))
			break;
		log_debug("qos: %s leaf qdisc: %s%s; trying %s",
		    leaf_kinds[*k], strerror(-rc), r, leaf_kinds[*k + 1]);
		(*k)++;
	}
	if (rc < 0)
		snprintf(err, errlen, "%s qdisc in class %s (%s): %s%s",
		    leaf_kinds[*k], handle_fmt(tc->classid, h, sizeof(h)),
		    tc->name, strerror(-rc), r);
	return rc;
}

/* The whole tree below a fresh root.  0 or -errno, err set. */
static int
htb_build(struct gwnl *nl, const struct policy_plan *plan, int ifindex,
    char *leaf, size_t leaflen, char *err, size_t errlen)
{
	const struct policy_tc_class	*tc;
	struct rtnl_qdisc		*q;
	char				 h[16], r[200];
	size_t				 k = 0;
	int				 i, rc;

	if ((q = rtnl_qdisc_alloc()) == NULL)
		return -ENOMEM;
	rtnl_tc_set_ifindex(TC_CAST(q), ifindex);
	rtnl_tc_set_parent(TC_CAST(q), TC_H_ROOT);
	rtnl_tc_set_handle(TC_CAST(q), plan->root_handle);
	if (rtnl_tc_set_kind(TC_CAST(q), "htb") < 0 ||
	    rtnl_htb_set_defcls(q, POLICY_DEFAULT_MINOR) < 0 ||
	    rtnl_htb_set_rate2quantum(q, 10) < 0) {
		rtnl_qdisc_put(q);
		return -ENOMEM;
	}
	/* Replaces the kernel's default root qdisc, if any. */
	rc = qdisc_add(nl, q, NLM_F_CREATE | NLM_F_REPLACE, r, sizeof(r));
	rtnl_qdisc_put(q);
	if (rc == -ENOENT || rc == -EOPNOTSUPP) {
		snprintf(err, errlen, "this kernel has no htb qdisc%s", r);
		return -EOPNOTSUPP;
	}
	if (rc < 0) {
		snprintf(err, errlen, "htb qdisc: %s%s", strerror(-rc), r);
		return rc;
	}
	rc = class_add(nl, ifindex, plan->root_handle, plan->root_classid,
	    plan->wan_rate, plan->wan_rate, 0, 0, NLM_F_CREATE | NLM_F_EXCL,
	    r, sizeof(r));
	if (rc < 0) {
		snprintf(err, errlen, "htb class %s: %s%s",
		    handle_fmt(plan->root_classid, h, sizeof(h)),
		    strerror(-rc), r);
		return rc;
	}
	for (i = 0; i < plan->n_classes; i++) {
		tc = &plan->classes[i];
		if ((rc = htb_class_put(nl, ifindex, plan, tc, 0, &k, err,
		    errlen)) < 0)
			return rc;
	}
	snprintf(leaf, leaflen, "%s", leaf_kinds[k]);
	return 0;
}

static void
qdisc_obj(const char *ifname, uint32_t handle, struct rec_obj *o)
{
	memset(o, 0, sizeof(*o));
	o->kind = REC_QDISC;
	o->tag = REC_RUN;
	rec_strlcpy(o->u.qdisc.dev, ifname, sizeof(o->u.qdisc.dev));
	o->u.qdisc.handle = handle;
}

/*
 * What applying and updating a shaper start with: the plan checked, the
 * interface's index into *ifindex and its root qdisc (see root_qdisc())
 * into *have and kind.  0 or 1 as root_qdisc() says, or -errno with err.
 */
static int
shaper_target(struct gwnl *nl, const struct policy_plan *plan,
    const char *ifname, int *ifindex, uint32_t *have, char *kind,
    size_t kindlen, char *err, size_t errlen)
{
	int	 rc;

	err[0] = '\0';
	*have = 0;
	if (plan == NULL || !plan->shaping || ifname == NULL ||
	    ifname[0] == '\0' || strlen(ifname) >= IF_NAMESIZE ||
	    plan->n_classes < 1 || plan->n_classes > GRGW_MAX_CLASSES + 1)
		return -EINVAL;
	if ((*ifindex = (int)if_nametoindex(ifname)) == 0) {
		snprintf(err, errlen, "interface %s does not exist (yet)",
		    ifname);
		return -ENODEV;
	}
	if ((rc = root_qdisc(nl, *ifindex, have, kind, kindlen)) < 0)
		snprintf(err, errlen, "cannot list the qdiscs of %s", ifname);
	return rc;
}

int
gwnl_qos_shaper_apply(struct gwnl *nl, const struct policy_plan *plan,
    const char *ifname, char *leaf, size_t leaflen, char *err,
    size_t errlen)
{
	struct rec_obj	 o;
	uint32_t	 have = 0;
	char		 kind[32], h[16], r[200];
	int		 ifindex, rc;

	leaf[0] = '\0';
	if ((rc = shaper_target(nl, plan, ifname, &ifindex, &have, kind,
	    sizeof(kind), err, errlen)) < 0)
		return rc;
	qdisc_obj(ifname, plan->root_handle, &o);
	if (rc == 1 && have == plan->root_handle && strcmp(kind, "htb") == 0) {
		/* Ours from before (a restart, a repeated apply): rebuild
		 * it rather than trust a tree we did not just make. */
		if ((rc = root_delete(nl, ifindex, have, r, sizeof(r))) < 0) {
			snprintf(err, errlen, "cannot replace the htb qdisc on "
			    "%s: %s%s", ifname, strerror(-rc), r);
			return rc;
		}
	} else if (rc == 1 && TC_H_MAJ(have) != 0) {
		snprintf(err, errlen, "%s already has a root qdisc %s %s that "
		    "grgw did not install; not replacing it", ifname, kind,
		    handle_fmt(have, h, sizeof(h)));
		return -EEXIST;
	}
	/* Recorded before it exists, so a crash in between still undoes it. */
	if (rec_find(gwnl_record(nl), &o) == NULL &&
	    (rc = gwnl_record_append(nl, &o)) < 0) {
		snprintf(err, errlen, "cannot record the qdisc: %s",
		    strerror(-rc));
		return rc;
	}
	if ((rc = htb_build(nl, plan, ifindex, leaf, leaflen, err,
	    errlen)) < 0) {
		/* Never half a tree: whatever was made goes again. */
		(void)root_delete(nl, ifindex, plan->root_handle, r, sizeof(r));
		leaf[0] = '\0';
		return rc;
	}
	return 0;
}

static int
class_delete(struct gwnl *nl, struct rtnl_class *cl, char *err,
    size_t errlen)
{
	struct nl_msg	*msg = NULL;

	if (rtnl_class_build_delete_request(cl, &msg) < 0 || msg == NULL)
		return -ENOMEM;
	return gwnl_request(nl, msg, err, errlen);
}

static int
plan_has_class(const struct policy_plan *plan, uint32_t classid)
{
	int	 i;

	for (i = 0; i < plan->n_classes; i++)
		if (plan->classes[i].classid == classid)
			return 1;
	return 0;
}

/* The classes below the root class that the plan no longer has (their
 * leaf qdiscs go with them).  0 or -errno, err set. */
static int
htb_prune(struct gwnl *nl, const struct policy_plan *plan, int ifindex,
    char *err, size_t errlen)
{
	struct nl_cache		*cache = NULL;
	struct nl_object	*obj;
	struct rtnl_class	*cl;
	uint32_t		 id;
	char			 h[16], r[200];
	int			 rc = 0;

	if (rtnl_class_alloc_cache(gwnl_socket(nl), ifindex, &cache) < 0) {
		snprintf(err, errlen, "cannot list the htb classes");
		return -EIO;
	}
	for (obj = nl_cache_get_first(cache); obj != NULL && rc == 0;
	    obj = nl_cache_get_next(obj)) {
		cl = (struct rtnl_class *)obj;
		id = rtnl_tc_get_handle(TC_CAST(cl));
		if (rtnl_tc_get_parent(TC_CAST(cl)) != plan->root_classid ||
		    plan_has_class(plan, id))
			continue;
		if ((rc = class_delete(nl, cl, r, sizeof(r))) < 0)
			snprintf(err, errlen, "cannot remove htb class %s: "
			    "%s%s", handle_fmt(id, h, sizeof(h)),
			    strerror(-rc), r);
	}
	nl_cache_free(cache);
	return rc;
}

int
gwnl_qos_shaper_update(struct gwnl *nl, const struct policy_plan *plan,
    const char *ifname, char *leaf, size_t leaflen, char *err,
    size_t errlen)
{
	uint32_t	 have = 0;
	size_t		 k;
	char		 kind[32], r[200];
	int		 ifindex, i, rc;

	if ((rc = shaper_target(nl, plan, ifname, &ifindex, &have, kind,
	    sizeof(kind), err, errlen)) < 0)
		return rc;
	if (rc == 0 || have != plan->root_handle || strcmp(kind, "htb") != 0) {
		snprintf(err, errlen, "%s has no htb tree of grgw's to change",
		    ifname);
		return -ENOENT;
	}
	/* New classes get the leaf kind the others have. */
	for (k = 0; k + 1 < nitems(leaf_kinds) &&
	    strcmp(leaf_kinds[k], leaf) != 0; k++)
		;
	rc = class_add(nl, ifindex, plan->root_handle, plan->root_classid,
	    plan->wan_rate, plan->wan_rate, 0, 0, NLM_F_CREATE |
	    NLM_F_REPLACE, r, sizeof(r));
	if (rc < 0) {
		snprintf(err, errlen, "htb root class: %s%s", strerror(-rc), r);
		return rc;
	}
	for (i = 0; i < plan->n_classes; i++)
		if ((rc = htb_class_put(nl, ifindex, plan, &plan->classes[i],
		    1, &k, err, errlen)) < 0)
			return rc;
	snprintf(leaf, leaflen, "%s", leaf_kinds[k]);
	return htb_prune(nl, plan, ifindex, err, errlen);
}

int
gwnl_qdisc_remove(struct gwnl *nl, const struct rec_obj *o, const char *desc)
{
	uint32_t	 have = 0;
	char		 kind[32], r[200];
	int		 ifindex, rc;

	/* The kernel drops a device's qdiscs with the device. */
	if ((ifindex = (int)if_nametoindex(o->u.qdisc.dev)) == 0)
		return 1;
	if ((rc = root_qdisc(nl, ifindex, &have, kind, sizeof(kind))) < 0) {
		log_warnx("%s: cannot list the qdiscs of %s", desc,
		    o->u.qdisc.dev);
		return rc;
	}
	if (rc == 0 || have != o->u.qdisc.handle ||
	    strcmp(kind, "htb") != 0) {
		if (rc == 1 && TC_H_MAJ(have) != 0)
			log_warnx("%s: the root qdisc of %s is now %s %x:, not "
			    "ours; left alone", desc, o->u.qdisc.dev, kind,
			    have >> 16);
		return 1;
	}
	if ((rc = root_delete(nl, ifindex, have, r, sizeof(r))) < 0) {
		if (rc == -ENOENT || rc == -EINVAL)
			return 1;
		log_warnx("%s: remove: %s%s", desc, strerror(-rc), r);
		return rc;
	}
	return 0;
}

int
gwnl_qos_shaper_drop(struct gwnl *nl, const struct policy_plan *plan,
    const char *ifname)
{
	struct rec_obj	 o, *have;
	char		 desc[REC_LINE_MAX];
	int		 rc;

	if (plan == NULL || ifname == NULL || strlen(ifname) >= IF_NAMESIZE)
		return -EINVAL;
	qdisc_obj(ifname, plan->root_handle, &o);
	if ((have = rec_find(gwnl_record(nl), &o)) == NULL)
		return 0;
	gwnl_describe(have, desc, sizeof(desc));
	if ((rc = gwnl_qdisc_remove(nl, have, desc)) < 0)
		return rc;
	rec_remove(gwnl_record(nl), have);
	return gwnl_record_save(nl);
}

/* ---- counters ---------------------------------------------------------- */

static void
htb_read_counters(struct gwnl *nl, const struct policy_plan *plan,
    int ifindex, struct gwnl_qos_counters *out)
{
	struct nl_cache		*cache = NULL;
	struct rtnl_class	*cl;
	int			 i;

	if (rtnl_class_alloc_cache(gwnl_socket(nl), ifindex, &cache) < 0)
		return;
	for (i = 0; i < plan->n_classes; i++) {
		cl = rtnl_class_get(cache, ifindex, plan->classes[i].classid);
		if (cl == NULL)
			continue;
		out[i].shaped = 1;
		out[i].sent_packets = rtnl_tc_get_stat(TC_CAST(cl),
		    RTNL_TC_PACKETS);
		out[i].sent_bytes = rtnl_tc_get_stat(TC_CAST(cl),
		    RTNL_TC_BYTES);
		out[i].drops = rtnl_tc_get_stat(TC_CAST(cl), RTNL_TC_DROPS);
		out[i].backlog = rtnl_tc_get_stat(TC_CAST(cl),
		    RTNL_TC_BACKLOG);
		rtnl_class_put(cl);
	}
	nl_cache_free(cache);
}

int
gwnl_qos_counters(struct gwnl *nl, const struct policy_plan *plan,
    const char *ifname, struct gwnl_qos_counters *out)
{
	int	 ifindex, rc;

	if (plan == NULL || plan->n_classes < 0 ||
	    plan->n_classes > GRGW_MAX_CLASSES + 1)
		return -EINVAL;
	memset(out, 0, sizeof(*out) * (size_t)plan->n_classes);
	rc = nft_read_counters(plan, out);
	if (ifname != NULL && ifname[0] != '\0' && plan->shaping &&
	    (ifindex = (int)if_nametoindex(ifname)) != 0)
		htb_read_counters(nl, plan, ifindex, out);
	return rc;
}
