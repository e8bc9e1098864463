/*
 * XFRM state and policies bound to grgw's xfrm interface id.
 *
 * charon installs the SAs and policies of the kernel data plane, and
 * removes them when it stops in order.  When it dies (SIGKILL, a crash),
 * they stay in the kernel: stale inbound SAs, outbound SAs whose peer has
 * forgotten them, policies that still match.  Everything bound to grgw's
 * if_id is grgw's (the interface is recorded with it), so before a new
 * charon starts, and when the interface is removed, grgw deletes whatever
 * carries that if_id and nothing else.
 *
 * A NETLINK_XFRM socket of its own: dump, collect, then delete (never
 * while the dump is running).  Every length from the kernel is checked
 * before it is read.
 */
#include <sys/socket.h>

#include <linux/netlink.h>
#include <linux/xfrm.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "netlink/libnl.h"

#include "grgw.h"
#include "netlink/netlink.h"

#define XFRM_FLUSH_MAX	4096	/* objects per kind; more is not ours */

struct xfrm_victim {
	int			 policy;	/* 0: SA, 1: policy */
	union {
		struct xfrm_usersa_id	 sa;
		struct xfrm_userpolicy_id pol;
	} u;
	int			 has_mark;
	struct xfrm_mark	 mark;
	int			 has_type;
	struct xfrm_userpolicy_type type;
};

struct xfrm_dump {
	uint32_t		 if_id;
	struct xfrm_victim	*v;
	size_t			 n, cap;
	int			 overflow;
};

static struct xfrm_victim *
dump_slot(struct xfrm_dump *d)
{
	struct xfrm_victim	*nv;
	size_t			 cap;

	if (d->n == d->cap) {
		if (d->cap >= XFRM_FLUSH_MAX) {
			d->overflow = 1;
			return NULL;
		}
		cap = d->cap == 0 ? 16 : d->cap * 2;
		if ((nv = reallocarray(d->v, cap, sizeof(*nv))) == NULL) {
			d->overflow = 1;
			return NULL;
		}
		d->v = nv;
		d->cap = cap;
	}
	memset(&d->v[d->n], 0, sizeof(d->v[d->n]));
	return &d->v[d->n++];
}

/* The u32 attribute a, if present and long enough; else 0. */
static uint32_t
attr_u32(struct nlattr *a)
{
	if (a == NULL || nla_len(a) < (int)sizeof(uint32_t))
		return 0;
	return nla_get_u32(a);
}

/*
 * Is the dump message h (len bytes readable) an SA or policy bound to
 * if_id?  1 with *v filled (what a delete request needs), 0 if not, or if
 * anything in it is short or inconsistent.
 */
static int
victim_from_msg(struct nlmsghdr *h, size_t len, uint32_t if_id,
    struct xfrm_victim *v)
{
	struct nlattr	*tb[XFRMA_MAX + 1];
	int		 hdrlen;

	memset(v, 0, sizeof(*v));
	if (len < NLMSG_HDRLEN || h->nlmsg_len < NLMSG_HDRLEN ||
	    h->nlmsg_len > len)
		return 0;
	if (h->nlmsg_type == XFRM_MSG_NEWSA)
		hdrlen = sizeof(struct xfrm_usersa_info);
	else if (h->nlmsg_type == XFRM_MSG_NEWPOLICY)
		hdrlen = sizeof(struct xfrm_userpolicy_info);
	else
		return 0;
	if (nlmsg_datalen(h) < hdrlen ||
	    nlmsg_parse(h, hdrlen, tb, XFRMA_MAX, NULL) < 0)
		return 0;
	if (attr_u32(tb[XFRMA_IF_ID]) != if_id)
		return 0;
	/* Per-socket policies (charon's IKE bypass) have no if_id anyway. */
	if (h->nlmsg_type == XFRM_MSG_NEWPOLICY &&
	    ((const struct xfrm_userpolicy_info *)nlmsg_data(h))->dir >=
	    XFRM_POLICY_MAX)
		return 0;
	if (h->nlmsg_type == XFRM_MSG_NEWSA) {
		const struct xfrm_usersa_info *sa = nlmsg_data(h);

		v->policy = 0;
		v->u.sa.daddr = sa->id.daddr;
		v->u.sa.spi = sa->id.spi;
		v->u.sa.family = sa->family;
		v->u.sa.proto = sa->id.proto;
	} else {
		const struct xfrm_userpolicy_info *p = nlmsg_data(h);

		v->policy = 1;
		v->u.pol.sel = p->sel;
		v->u.pol.index = p->index;
		v->u.pol.dir = p->dir;
		if (tb[XFRMA_POLICY_TYPE] != NULL &&
		    nla_len(tb[XFRMA_POLICY_TYPE]) >= (int)sizeof(v->type)) {
			memcpy(&v->type, nla_data(tb[XFRMA_POLICY_TYPE]),
			    sizeof(v->type));
			v->has_type = 1;
		}
	}
	if (tb[XFRMA_MARK] != NULL &&
	    nla_len(tb[XFRMA_MARK]) >= (int)sizeof(v->mark)) {
		memcpy(&v->mark, nla_data(tb[XFRMA_MARK]), sizeof(v->mark));
		v->has_mark = 1;
	}
	return 1;
}

static int
dump_cb(struct nl_msg *msg, void *arg)
{
	struct xfrm_dump	*d = arg;
	struct nlmsghdr		*h = nlmsg_hdr(msg);
	struct xfrm_victim	 v, *slot;

	/* libnl hands over one message of the datagram, length checked. */
	if (!victim_from_msg(h, h->nlmsg_len, d->if_id, &v))
		return NL_SKIP;
	if ((slot = dump_slot(d)) == NULL)
		return NL_SKIP;
	*slot = v;
	return NL_OK;
}

/* Dump SAs (type XFRM_MSG_GETSA) or policies into d.  0 or -errno. */
static int
xfrm_dump(struct nl_sock *sk, int type, struct xfrm_dump *d)
{
	int	 err;

	if ((err = nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, dump_cb,
	    d)) < 0)
		return -EIO;
	if ((err = nl_send_simple(sk, type, NLM_F_DUMP, NULL, 0)) < 0)
		return -EIO;
	if ((err = nl_recvmsgs_default(sk)) < 0) {
		log_warnx("xfrm: dump: %s", nl_geterror(err));
		return -EIO;
	}
	return 0;
}

/* The request that deletes v (policies: with their if_id), or NULL. */
static struct nl_msg *
delete_msg(struct xfrm_victim *v, uint32_t if_id)
{
	struct nl_msg	*msg;
	int		 err;

	msg = nlmsg_alloc_simple(v->policy ? XFRM_MSG_DELPOLICY :
	    XFRM_MSG_DELSA, NLM_F_ACK);
	if (msg == NULL)
		return NULL;
	if (v->policy)
		err = nlmsg_append(msg, &v->u.pol, sizeof(v->u.pol), 0);
	else
		err = nlmsg_append(msg, &v->u.sa, sizeof(v->u.sa), 0);
	/* Policies are found by index only together with their if_id. */
	if (err == 0 && v->policy)
		err = nla_put_u32(msg, XFRMA_IF_ID, if_id);
	if (err == 0 && v->has_mark)
		err = nla_put(msg, XFRMA_MARK, sizeof(v->mark), &v->mark);
	if (err == 0 && v->has_type)
		err = nla_put(msg, XFRMA_POLICY_TYPE, sizeof(v->type),
		    &v->type);
	if (err < 0) {
		nlmsg_free(msg);
		return NULL;
	}
	return msg;
}

struct nl_msg *
gwnl_build_xfrm_delete(void *dump_msg, size_t len, uint32_t if_id)
{
	struct xfrm_victim	 v;

	if (dump_msg == NULL || if_id == 0 ||
	    !victim_from_msg(dump_msg, len, if_id, &v))
		return NULL;
	return delete_msg(&v, if_id);
}

/* Delete one collected object.  0 deleted, 1 already gone, -errno. */
static int
xfrm_delete(struct nl_sock *sk, struct xfrm_victim *v, uint32_t if_id)
{
	struct nl_msg	*msg;
	int		 err;

	if ((msg = delete_msg(v, if_id)) == NULL)
		return -ENOMEM;
	err = nl_send_auto(sk, msg);
	nlmsg_free(msg);
	if (err >= 0)
		err = nl_wait_for_ack(sk);
	if (err == -NLE_OBJ_NOTFOUND || err == -NLE_NOADDR)
		return 1;
	return err < 0 ? -EIO : 0;
}

int
gwnl_xfrm_flush(uint32_t if_id)
{
	static const int kinds[] = { XFRM_MSG_GETPOLICY, XFRM_MSG_GETSA };
	struct xfrm_dump d;
	struct nl_sock	*sk;
	size_t		 i, k, deleted = 0;
	int		 rc = 0, err;

	if (if_id == 0)
		return -EINVAL;	/* 0 means "no interface": never flush that */
	if ((sk = nl_socket_alloc()) == NULL)
		return -ENOMEM;
	/* Dumps must not ask for an ack; deletes ask for theirs. */
	nl_socket_disable_auto_ack(sk);
	if ((err = nl_connect(sk, NETLINK_XFRM)) < 0) {
		/* No XFRM in this kernel: nothing can be bound to if_id. */
		nl_socket_free(sk);
		return err == -NLE_PROTO_MISMATCH ? 0 : -EIO;
	}
	for (k = 0; k < nitems(kinds); k++) {
		memset(&d, 0, sizeof(d));
		d.if_id = if_id;
		if ((err = xfrm_dump(sk, kinds[k], &d)) < 0) {
			rc = err;
			free(d.v);
			continue;
		}
		if (d.overflow) {
			log_warnx("xfrm: more than %d objects with if_id %u; "
			    "removing the first ones only", XFRM_FLUSH_MAX,
			    if_id);
			rc = -E2BIG;
		}
		for (i = 0; i < d.n; i++) {
			if ((err = xfrm_delete(sk, &d.v[i], if_id)) < 0) {
				log_warnx("xfrm: cannot delete %s %zu of if_id "
				    "%u", d.v[i].policy ? "policy" : "SA", i,
				    if_id);
				rc = err;
			} else if (err == 0)
				deleted++;
		}
		free(d.v);
	}
	nl_socket_free(sk);
	if (deleted > 0)
		log_info("xfrm: removed %zu SA(s) and policies left with if_id "
		    "%u", deleted, if_id);
	return rc;
}
