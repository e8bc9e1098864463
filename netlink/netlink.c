/*
 * Kernel state through libnl: policy routing rules, routes, the xfrm
 * interface and a few sysctls, each recorded (record.c) as it is
 * installed so that cleanup removes exactly what grgw added.
 *
 * Errors are -errno.  Kernel error acks are captured with their extended
 * ack text (NETLINK_EXT_ACK), so a log line says both what we tried
 * (the object as it appears in the record) and what the kernel answered.
 */
#include <sys/queue.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include <linux/fib_rules.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "netlink/libnl.h"
#include <nftables/libnftables.h>

#include "grgw.h"
#include "netlink/netlink.h"
#include "netlink/record.h"
#include "netlink/internal.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK	270
#endif

/* Where charon's table 220 rule sits, and the main table's rule. */
#define PREF_CHARON	220
#define PREF_MAIN	32766

#define PROBE_ATTEMPTS	4

struct gwnl {
	struct nl_sock		*sock;
	char			 path[PATH_MAX];
	struct rec_list		 rec;
	/* Last error ack from the kernel (0 if none since the reset). */
	int			 ack_errno;
	char			 ack_msg[160];
};

/* ---- talking to the kernel -------------------------------------------- */

static int
nlerr_to_errno(int nlerr)
{
	switch (nlerr < 0 ? -nlerr : nlerr) {
	case NLE_SUCCESS:	return 0;
	case NLE_INTR:		return EINTR;
	case NLE_BAD_SOCK:	return EBADF;
	case NLE_AGAIN:		return EAGAIN;
	case NLE_NOMEM:		return ENOMEM;
	case NLE_EXIST:		return EEXIST;
	case NLE_INVAL:		return EINVAL;
	case NLE_RANGE:		return ERANGE;
	case NLE_MSGSIZE:	return EMSGSIZE;
	case NLE_OPNOTSUPP:	return EOPNOTSUPP;
	case NLE_AF_NOSUPPORT:	return EAFNOSUPPORT;
	case NLE_OBJ_NOTFOUND:	return ENOENT;
	case NLE_NOADDR:	return EADDRNOTAVAIL;
	case NLE_MSG_TRUNC:	return EMSGSIZE;
	case NLE_NOACCESS:	return EACCES;
	case NLE_PERM:		return EPERM;
	case NLE_BUSY:		return EBUSY;
	case NLE_NODEV:		return ENODEV;
	case NLE_PROTO_MISMATCH: return EPROTONOSUPPORT;
	case NLE_NOATTR:	return ENODATA;
	default:		return EIO;
	}
}

/*
 * Error ack callback: keep the kernel's errno and, when present, its
 * extended ack message.  Every length comes from the kernel and is
 * checked against the message it arrived in; libnl has already checked
 * that the header and the struct nlmsgerr fit.
 */
static int
gwnl_on_error_ack(struct sockaddr_nl *who, struct nlmsgerr *e, void *arg)
{
	struct gwnl		*nl = arg;
	struct nlmsghdr		*h = (struct nlmsghdr *)((char *)e - NLMSG_HDRLEN);
	struct nlattr		*tb[NLMSGERR_ATTR_MAX + 1];
	size_t			 off, payload;
	const char		*s;
	int			 n;

	nl->ack_errno = e->error < 0 ? -e->error : e->error;
	nl->ack_msg[0] = '\0';
	if (!(h->nlmsg_flags & NLM_F_ACK_TLVS))
		return NL_STOP;
	payload = sizeof(*e);
	if (!(h->nlmsg_flags & NLM_F_CAPPED)) {
		if (e->msg.nlmsg_len < NLMSG_HDRLEN)
			return NL_STOP;
		payload += e->msg.nlmsg_len - NLMSG_HDRLEN;
	}
	off = NLMSG_HDRLEN + NLMSG_ALIGN(payload);
	if (off >= h->nlmsg_len)
		return NL_STOP;
	if (nla_parse(tb, NLMSGERR_ATTR_MAX, (struct nlattr *)((char *)h + off),
	    (int)(h->nlmsg_len - off), NULL) < 0)
		return NL_STOP;
	if (tb[NLMSGERR_ATTR_MSG] == NULL)
		return NL_STOP;
	s = nla_data(tb[NLMSGERR_ATTR_MSG]);
	n = nla_len(tb[NLMSGERR_ATTR_MSG]);
	if (n <= 0)
		return NL_STOP;
	snprintf(nl->ack_msg, sizeof(nl->ack_msg), "%.*s",
	    (int)strnlen(s, (size_t)n), s);
	return NL_STOP;
}

static void
gwnl_ack_reset(struct gwnl *nl)
{
	nl->ack_errno = 0;
	nl->ack_msg[0] = '\0';
}

/* -errno for a libnl error, preferring what the kernel said. */
static int
gwnl_errno(const struct gwnl *nl, int nlerr)
{
	if (nl->ack_errno != 0)
		return -nl->ack_errno;
	return -nlerr_to_errno(nlerr);
}

/* " (kernel: ...)" when the kernel gave a reason, else "". */
static const char *
gwnl_reason(const struct gwnl *nl, char *buf, size_t size)
{
	if (nl->ack_msg[0] == '\0')
		return "";
	snprintf(buf, size, " (kernel: %s)", nl->ack_msg);
	return buf;
}

/* Send msg (freed here) and wait for the kernel's ack.  0 or -errno. */
static int
gwnl_send(struct gwnl *nl, struct nl_msg *msg)
{
	int	 err;

	gwnl_ack_reset(nl);
	err = nl_send_auto(nl->sock, msg);
	nlmsg_free(msg);
	if (err < 0)
		return gwnl_errno(nl, err);
	if ((err = nl_wait_for_ack(nl->sock)) < 0)
		return gwnl_errno(nl, err);
	return 0;
}

static int
gwnl_socket_open(struct gwnl *nl)
{
	int	 err, one = 1, fd;

	if ((nl->sock = nl_socket_alloc()) == NULL)
		return -ENOMEM;
	if ((err = nl_connect(nl->sock, NETLINK_ROUTE)) < 0) {
		log_warnx("netlink route socket: %s", nl_geterror(err));
		return -nlerr_to_errno(err);
	}
	fd = nl_socket_get_fd(nl->sock);
	/* Older kernels lack these; errors then just have no reason text. */
	if (setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one,
	    sizeof(one)) == -1)
		log_debug("netlink: NETLINK_EXT_ACK: %s", strerror(errno));
	if (setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one,
	    sizeof(one)) == -1)
		log_debug("netlink: NETLINK_CAP_ACK: %s", strerror(errno));
	if ((err = nl_socket_modify_err_cb(nl->sock, NL_CB_CUSTOM,
	    gwnl_on_error_ack, nl)) < 0)
		return -nlerr_to_errno(err);
	return 0;
}

/* ifindex of name in this network namespace, or -errno. */
static int
gwnl_ifindex(struct gwnl *nl, const char *name)
{
	struct rtnl_link	*link = NULL;
	int			 err, ifindex;

	gwnl_ack_reset(nl);
	if ((err = rtnl_link_get_kernel(nl->sock, 0, name, &link)) < 0) {
		err = gwnl_errno(nl, err);
		return err == -ENOENT ? -ENODEV : err;
	}
	ifindex = rtnl_link_get_ifindex(link);
	rtnl_link_put(link);
	if (ifindex <= 0)
		return -ENODEV;
	return ifindex;
}

/* ---- message builders ------------------------------------------------- */

static struct nl_addr *
prefix_to_nl_addr(const struct grgw_prefix *p)
{
	struct nl_addr	*a;
	int		 n;

	if ((n = addr_len(p->a.family)) == 0)
		return NULL;
	if ((a = nl_addr_build(p->a.family, p->a.addr, (size_t)n)) == NULL)
		return NULL;
	nl_addr_set_prefixlen(a, p->len);
	return a;
}

/*
 * libnl copies the table into the 8-bit header field as well as the
 * 32-bit attribute; for tables above 255 the header would name a wrong
 * table, so say "see the attribute" there, as iproute2 does.
 */
static void
fix_header_table(struct nl_msg *msg, int is_rule, uint32_t table)
{
	struct nlmsghdr	*h = nlmsg_hdr(msg);
	uint8_t		 t = table < 256 ? (uint8_t)table : RT_TABLE_UNSPEC;

	if (is_rule)
		((struct fib_rule_hdr *)nlmsg_data(h))->table = t;
	else
		((struct rtmsg *)nlmsg_data(h))->rtm_table = t;
}

/* RTM_NEWRULE (add, with flags) or RTM_DELRULE.  0 or -errno. */
static int
rule_build(const struct rec_rule *r, int add, int flags, struct nl_msg **out)
{
	struct rtnl_rule	*rule;
	struct nl_addr		*src = NULL;
	int			 err = -ENOMEM;

	*out = NULL;
	if ((rule = rtnl_rule_alloc()) == NULL)
		return -ENOMEM;
	rtnl_rule_set_family(rule, r->family);
	rtnl_rule_set_prio(rule, r->pref);
	if (r->iif[0] != '\0' && rtnl_rule_set_iif(rule, r->iif) < 0) {
		err = -EINVAL;
		goto cleanup;
	}
	if (r->has_from) {
		if ((src = prefix_to_nl_addr(&r->from)) == NULL)
			goto cleanup;
		if (rtnl_rule_set_src(rule, src) < 0) {
			err = -EINVAL;
			goto cleanup;
		}
	}
	if (r->action == REC_RULE_LOOKUP) {
		rtnl_rule_set_action(rule, FR_ACT_TO_TBL);
		rtnl_rule_set_table(rule, r->table);
	} else
		rtnl_rule_set_action(rule, FR_ACT_BLACKHOLE);
	if (add)
		err = rtnl_rule_build_add_request(rule, flags, out);
	else
		err = rtnl_rule_build_delete_request(rule, 0, out);
	if (err < 0) {
		err = -nlerr_to_errno(err);
		goto cleanup;
	}
	fix_header_table(*out, 1, r->action == REC_RULE_LOOKUP ? r->table : 0);
	err = 0;

cleanup:
	nl_addr_put(src);
	rtnl_rule_put(rule);
	return err;
}

/*
 * RTM_NEWROUTE (add, with flags) or RTM_DELROUTE.  oif > 0 adds a
 * nexthop on that interface.  A delete matches any scope and protocol, so
 * that a route someone else created the same way is removed too once we
 * have adopted it.  0 or -errno.
 */
static int
route_build(const struct rec_route *r, int oif, int add, int flags,
    struct nl_msg **out)
{
	struct rtnl_route	*route;
	struct rtnl_nexthop	*nh;
	struct nl_addr		*dst = NULL;
	int			 err = -ENOMEM;

	*out = NULL;
	if ((route = rtnl_route_alloc()) == NULL)
		return -ENOMEM;
	rtnl_route_set_family(route, (uint8_t)r->family);
	rtnl_route_set_table(route, r->table);
	rtnl_route_set_type(route, r->type == REC_ROUTE_UNREACHABLE ?
	    RTN_UNREACHABLE : RTN_UNICAST);
	if ((dst = prefix_to_nl_addr(&r->dst)) == NULL)
		goto cleanup;
	if (rtnl_route_set_dst(route, dst) < 0) {
		err = -EINVAL;
		goto cleanup;
	}
	if (add) {
		rtnl_route_set_protocol(route, RTPROT_STATIC);
		rtnl_route_set_scope(route, r->type == REC_ROUTE_UNREACHABLE ?
		    RT_SCOPE_UNIVERSE : RT_SCOPE_LINK);
	} else {
		rtnl_route_set_protocol(route, RTPROT_UNSPEC);
		rtnl_route_set_scope(route, RT_SCOPE_NOWHERE);
	}
	if (oif > 0) {
		if ((nh = rtnl_route_nh_alloc()) == NULL)
			goto cleanup;
		rtnl_route_nh_set_ifindex(nh, oif);
		rtnl_route_add_nexthop(route, nh);	/* route owns nh */
	}
	if (add)
		err = rtnl_route_build_add_request(route, flags, out);
	else
		err = rtnl_route_build_del_request(route, 0, out);
	if (err < 0) {
		err = -nlerr_to_errno(err);
		goto cleanup;
	}
	fix_header_table(*out, 0, r->table);
	err = 0;

cleanup:
	nl_addr_put(dst);
	rtnl_route_put(route);
	return err;
}

struct nl_msg *
gwnl_build_xfrmi_add(const char *name, uint32_t if_id, int link_ifindex,
    uint32_t mtu)
{
	struct rtnl_link	*link;
	struct nl_msg		*msg = NULL;

	if (name == NULL || name[0] == '\0' || strlen(name) >= IF_NAMESIZE ||
	    if_id == 0)
		return NULL;
	if ((link = rtnl_link_xfrmi_alloc()) == NULL)
		return NULL;
	rtnl_link_set_name(link, name);
	if (mtu != 0)
		rtnl_link_set_mtu(link, mtu);
	if (rtnl_link_xfrmi_set_if_id(link, if_id) < 0)
		goto cleanup;
	if (link_ifindex > 0 &&
	    rtnl_link_xfrmi_set_link(link, (uint32_t)link_ifindex) < 0)
		goto cleanup;
	rtnl_link_set_flags(link, IFF_UP);
	if (rtnl_link_build_add_request(link, NLM_F_CREATE | NLM_F_EXCL,
	    &msg) < 0)
		msg = NULL;

cleanup:
	rtnl_link_put(link);
	return msg;
}

static void
tunnel_route_obj(const struct grgw_config *cfg, int i, struct rec_obj *o)
{
	memset(o, 0, sizeof(*o));
	o->kind = REC_ROUTE;
	o->tag = REC_RUN;
	o->u.route.family = cfg->peer.prefixes[i].a.family;
	o->u.route.table = cfg->table;
	o->u.route.type = REC_ROUTE_UNICAST;
	o->u.route.dst = cfg->peer.prefixes[i];
	rec_strlcpy(o->u.route.dev, cfg->xfrm_interface,
	    sizeof(o->u.route.dev));
}

struct nl_msg *
gwnl_build_tunnel_route(const struct grgw_config *cfg, int prefix_index,
    int oif, int add)
{
	struct rec_obj	 o;
	struct nl_msg	*msg;

	if (cfg == NULL || prefix_index < 0 ||
	    prefix_index >= cfg->peer.n_prefixes ||
	    prefix_index >= GRGW_MAX_PREFIXES || oif <= 0 || cfg->table == 0)
		return NULL;
	tunnel_route_obj(cfg, prefix_index, &o);
	if (route_build(&o.u.route, oif, add, NLM_F_CREATE | NLM_F_EXCL,
	    &msg) < 0)
		return NULL;
	return msg;
}

/* ---- the record ------------------------------------------------------- */

static void
describe(const struct rec_obj *o, char *buf, size_t size)
{
	if (rec_format(o, buf, size) < 0)
		snprintf(buf, size, "(object)");
}

/* Append o to the record and rewrite the file; undone on failure. */
static int
gwnl_record_add(struct gwnl *nl, const struct rec_obj *o)
{
	struct rec_obj	*n;
	int		 rc;

	if ((n = rec_append(&nl->rec, o)) == NULL)
		return -ENOMEM;
	if ((rc = rec_save(&nl->rec, nl->path)) < 0) {
		rec_remove(&nl->rec, n);
		return rc;
	}
	return 0;
}

/* ---- rules and routes ------------------------------------------------- */

/* 0 added, 1 already there, or -errno (logged). */
static int
rule_add(struct gwnl *nl, const struct rec_obj *o, const char *desc)
{
	struct nl_msg	*msg;
	char		 why[200];
	int		 rc;

	if ((rc = rule_build(&o->u.rule, 1, NLM_F_CREATE | NLM_F_EXCL,
	    &msg)) < 0) {
		log_warnx("%s: cannot build request: %s", desc, strerror(-rc));
		return rc;
	}
	/* With NLM_F_EXCL the kernel compares every attribute we set. */
	if ((rc = gwnl_send(nl, msg)) == -EEXIST)
		return 1;
	if (rc < 0) {
		log_warnx("%s: %s%s", desc, strerror(-rc),
		    gwnl_reason(nl, why, sizeof(why)));
		return rc;
	}
	return 0;
}

/* 0 added, 1 already there (made to match), or -errno (logged). */
static int
route_add(struct gwnl *nl, const struct rec_obj *o, const char *desc)
{
	const struct rec_route	*r = &o->u.route;
	struct nl_msg		*msg;
	char			 why[200];
	int			 rc, oif = 0;

	if (r->type == REC_ROUTE_UNICAST) {
		if ((oif = gwnl_ifindex(nl, r->dev)) < 0) {
			log_warnx("%s: interface %s: %s", desc, r->dev,
			    strerror(-oif));
			return oif;
		}
	}
	if ((rc = route_build(r, oif, 1, NLM_F_CREATE | NLM_F_EXCL,
	    &msg)) < 0) {
		log_warnx("%s: cannot build request: %s", desc, strerror(-rc));
		return rc;
	}
	rc = gwnl_send(nl, msg);
	if (rc == -EEXIST) {
		/*
		 * The kernel says "exists" for any route in this slot (table,
		 * destination, metric) whatever its type or device.  The slot
		 * is in one of our tables: make it exactly ours.
		 */
		if ((rc = route_build(r, oif, 1, NLM_F_CREATE | NLM_F_REPLACE,
		    &msg)) < 0) {
			log_warnx("%s: cannot build request: %s", desc,
			    strerror(-rc));
			return rc;
		}
		if ((rc = gwnl_send(nl, msg)) == 0)
			return 1;
	}
	if (rc < 0) {
		log_warnx("%s: %s%s", desc, strerror(-rc),
		    gwnl_reason(nl, why, sizeof(why)));
		return rc;
	}
	return 0;
}

static int	gwnl_remove(struct gwnl *nl, const struct rec_obj *o);

/*
 * Make sure the rule or route o is in the kernel and in the record.  A
 * recorded object missing from the kernel is added again; an object found
 * in the kernel but not recorded (left by a crash between the two steps,
 * or by hand) is adopted.
 */
static int
gwnl_install(struct gwnl *nl, const struct rec_obj *o)
{
	struct rec_obj	*old, *next;
	char		 desc[REC_LINE_MAX];
	int		 recorded, rc, ret;

	describe(o, desc, sizeof(desc));
	recorded = rec_find(&nl->rec, o) != NULL;
	if (o->kind == REC_RULE)
		rc = rule_add(nl, o, desc);
	else if (o->kind == REC_ROUTE)
		rc = route_add(nl, o, desc);
	else
		return -EINVAL;
	if (rc < 0)
		return rc;

	if (rc == 1 && !recorded && o->kind == REC_ROUTE)
		log_info("%s: its slot was already taken in the kernel; "
		    "replaced by this route and adopted", desc);
	else if (rc == 1 && !recorded)
		log_info("%s: already in the kernel, adopted", desc);
	else if (rc == 0 && recorded)
		log_info("%s: was missing from the kernel, added again", desc);
	else if (rc == 0)
		log_debug("%s: added", desc);
	if (recorded)
		return 0;

	/* A route replaced in its slot: the old record entry is stale. */
	if (o->kind == REC_ROUTE) {
		for (old = TAILQ_FIRST(&nl->rec.objs); old != NULL; old = next) {
			next = TAILQ_NEXT(old, entry);
			if (rec_same_route_slot(old, o) && !rec_same(old, o))
				rec_remove(&nl->rec, old);
		}
	}
	if ((ret = gwnl_record_add(nl, o)) < 0) {
		log_warnx("%s: cannot record it (%s); removing it again", desc,
		    strerror(-ret));
		if (rc == 0)
			(void)gwnl_remove(nl, o);
		return ret;
	}
	return 0;
}

/* 0 removed, 1 already gone, -errno (logged). */
static int
rule_remove(struct gwnl *nl, const struct rec_obj *o, const char *desc)
{
	struct nl_msg	*msg;
	char		 why[200];
	int		 rc;

	if ((rc = rule_build(&o->u.rule, 0, 0, &msg)) < 0)
		return rc;
	rc = gwnl_send(nl, msg);
	if (rc == -ENOENT || rc == -ESRCH)
		return 1;
	if (rc < 0)
		log_warnx("%s: remove: %s%s", desc, strerror(-rc),
		    gwnl_reason(nl, why, sizeof(why)));
	return rc;
}

static int
route_remove(struct gwnl *nl, const struct rec_obj *o, const char *desc)
{
	const struct rec_route	*r = &o->u.route;
	struct nl_msg		*msg;
	char			 why[200];
	int			 rc, oif = 0;

	if (r->type == REC_ROUTE_UNICAST) {
		/* The kernel drops a device's routes with the device. */
		if ((oif = gwnl_ifindex(nl, r->dev)) == -ENODEV)
			return 1;
		if (oif < 0) {
			log_warnx("%s: interface %s: %s", desc, r->dev,
			    strerror(-oif));
			return oif;
		}
	}
	if ((rc = route_build(r, oif, 0, 0, &msg)) < 0)
		return rc;
	rc = gwnl_send(nl, msg);
	if (rc == -ESRCH || rc == -ENOENT || rc == -ENODEV)
		return 1;
	if (rc < 0)
		log_warnx("%s: remove: %s%s", desc, strerror(-rc),
		    gwnl_reason(nl, why, sizeof(why)));
	return rc;
}

/* ---- the xfrm interface ----------------------------------------------- */

/*
 * Look at the interface called name: 1 if it is the xfrm interface with
 * if_id (*out set to it, owned by the caller), 0 if there is no such
 * interface, -EEXIST (logged) if the name belongs to something else.
 */
static int
xfrmi_lookup(struct gwnl *nl, const char *name, uint32_t if_id,
    struct rtnl_link **out)
{
	struct rtnl_link	*link = NULL;
	const char		*kind;
	uint32_t		 have = 0;
	int			 err;

	*out = NULL;
	gwnl_ack_reset(nl);
	if ((err = rtnl_link_get_kernel(nl->sock, 0, name, &link)) < 0) {
		err = gwnl_errno(nl, err);
		if (err == -ENODEV || err == -ENOENT)
			return 0;
		log_warnx("xfrm interface %s: %s", name, strerror(-err));
		return err;
	}
	kind = rtnl_link_get_type(link);
	/* The if_id getter asserts on other kinds: check the kind first. */
	if (!rtnl_link_is_xfrmi(link) ||
	    rtnl_link_xfrmi_get_if_id(link, &have) < 0 || have != if_id) {
		log_warnx("interface %s exists but is not an xfrm interface "
		    "with if_id %u (kind %s, if_id %u)", name, if_id,
		    kind != NULL ? kind : "none", have);
		rtnl_link_put(link);
		return -EEXIST;
	}
	*out = link;
	return 1;
}

/* Bring an existing xfrm interface up with the configured MTU. */
static int
xfrmi_ensure_up(struct gwnl *nl, struct rtnl_link *link, uint32_t mtu,
    const char *desc)
{
	struct rtnl_link	*change;
	char			 why[200];
	int			 err;

	if ((rtnl_link_get_flags(link) & IFF_UP) &&
	    (mtu == 0 || rtnl_link_get_mtu(link) == mtu))
		return 0;
	if ((change = rtnl_link_alloc()) == NULL)
		return -ENOMEM;
	rtnl_link_set_flags(change, IFF_UP);
	if (mtu != 0)
		rtnl_link_set_mtu(change, mtu);
	gwnl_ack_reset(nl);
	err = rtnl_link_change(nl->sock, link, change, 0);
	rtnl_link_put(change);
	if (err < 0) {
		err = gwnl_errno(nl, err);
		log_warnx("%s: set up, mtu %u: %s%s", desc, mtu, strerror(-err),
		    gwnl_reason(nl, why, sizeof(why)));
		return err;
	}
	return 0;
}

static void
log_no_xfrmi(const char *name, int err, const char *why)
{
	log_warnx("xfrm interface %s: kernel has no xfrm interface support "
	    "(xfrm_interface module): %s%s", name, strerror(-err), why);
}

int
gwnl_xfrmi_create(struct gwnl *nl, const struct grgw_config *cfg)
{
	struct rec_obj		 o;
	struct rtnl_link	*link = NULL;
	struct nl_msg		*msg;
	char			 desc[REC_LINE_MAX], why[200];
	const char		*name = cfg->xfrm_interface;
	int			 wan, rc, recorded, created = 0;

	if (name[0] == '\0' || cfg->if_id == 0) {
		log_warnx("xfrm interface: needs a name and a non-zero if_id");
		return -EINVAL;
	}
	if (cfg->mtu != 0 && (cfg->mtu < 576 || cfg->mtu > 65535)) {
		log_warnx("xfrm interface %s: mtu %u out of range 576..65535",
		    name, cfg->mtu);
		return -EINVAL;
	}
	if ((wan = gwnl_ifindex(nl, cfg->site.wan_interface)) < 0) {
		log_warnx("xfrm interface %s: WAN interface %s: %s", name,
		    cfg->site.wan_interface, strerror(-wan));
		return wan;
	}
	memset(&o, 0, sizeof(o));
	o.kind = REC_LINK;
	o.tag = REC_RUN;
	rec_strlcpy(o.u.link.name, name, sizeof(o.u.link.name));
	o.u.link.if_id = cfg->if_id;
	describe(&o, desc, sizeof(desc));
	recorded = rec_find(&nl->rec, &o) != NULL;

	if ((msg = gwnl_build_xfrmi_add(name, cfg->if_id, wan,
	    cfg->mtu)) == NULL) {
		log_warnx("%s: cannot build request", desc);
		return -ENOMEM;
	}
	rc = gwnl_send(nl, msg);
	if (rc == -EOPNOTSUPP) {
		log_no_xfrmi(name, rc, gwnl_reason(nl, why, sizeof(why)));
		return rc;
	}
	if (rc < 0 && rc != -EEXIST) {
		log_warnx("%s: %s%s", desc, strerror(-rc),
		    gwnl_reason(nl, why, sizeof(why)));
		return rc;
	}
	created = rc == 0;

	/* Whether new or already there, check what the kernel now has. */
	if ((rc = xfrmi_lookup(nl, name, cfg->if_id, &link)) <= 0) {
		if (rc == 0) {
			log_warnx("%s: not found after creating it", desc);
			rc = -ENODEV;
		}
		goto cleanup;
	}
	if ((rc = xfrmi_ensure_up(nl, link, cfg->mtu, desc)) < 0)
		goto cleanup;
	if (!created && !recorded)
		log_info("%s: already in the kernel, adopted", desc);
	if (!recorded && (rc = gwnl_record_add(nl, &o)) < 0) {
		log_warnx("%s: cannot record it (%s)", desc, strerror(-rc));
		goto cleanup;
	}
	rc = 0;

cleanup:
	if (rc < 0 && created && !recorded) {
		gwnl_ack_reset(nl);
		if (link != NULL)
			(void)rtnl_link_delete(nl->sock, link);
	}
	rtnl_link_put(link);
	return rc;
}

static int
link_remove(struct gwnl *nl, const struct rec_obj *o, const char *desc)
{
	struct rtnl_link	*link = NULL;
	char			 why[200];
	int			 rc;

	rc = xfrmi_lookup(nl, o->u.link.name, o->u.link.if_id, &link);
	/* The SAs and policies bound to it, left by a charon that died. */
	if (rc == 0 || rc == 1)
		(void)gwnl_xfrm_flush(o->u.link.if_id);
	if (rc == 0)
		return 1;
	if (rc == -EEXIST) {
		/* Ours is gone; the name now belongs to someone else. */
		log_warnx("%s: the interface is no longer ours; left alone",
		    desc);
		return 1;
	}
	if (rc < 0)
		return rc;
	gwnl_ack_reset(nl);
	rc = rtnl_link_delete(nl->sock, link);
	rtnl_link_put(link);
	if (rc < 0) {
		rc = gwnl_errno(nl, rc);
		if (rc == -ENODEV || rc == -ENOENT)
			return 1;
		log_warnx("%s: remove: %s%s", desc, strerror(-rc),
		    gwnl_reason(nl, why, sizeof(why)));
		return rc;
	}
	return 0;
}

/* ---- sysctls ---------------------------------------------------------- */

static int
sysctl_file(const char *path, char *buf, size_t size)
{
	if ((size_t)snprintf(buf, size, "/proc/sys/%s", path) >= size)
		return -ENAMETOOLONG;
	return 0;
}

/* Read an integer sysctl into value (REC_VALUE_MAX).  0 or -errno. */
static int
sysctl_read(const char *path, char *value)
{
	char		 file[PATH_MAX], buf[REC_VALUE_MAX + 2];
	ssize_t		 n;
	int		 fd, rc = 0;

	if ((rc = sysctl_file(path, file, sizeof(file))) < 0)
		return rc;
	if ((fd = open(file, O_RDONLY | O_CLOEXEC)) == -1)
		return -errno;
	do {
		n = read(fd, buf, sizeof(buf) - 1);
	} while (n == -1 && errno == EINTR);
	if (n < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	close(fd);
	buf[n] = '\0';
	if (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	/* Only plain integers: anything else we could not restore. */
	if (n == 0 || (size_t)n >= REC_VALUE_MAX ||
	    strspn(buf, "-0123456789") != (size_t)n)
		return -EINVAL;
	memcpy(value, buf, (size_t)n + 1);
	return 0;
}

static int
sysctl_write(const char *path, const char *value)
{
	char		 file[PATH_MAX], buf[REC_VALUE_MAX + 2];
	ssize_t		 n;
	size_t		 len;
	int		 fd, rc = 0;

	if ((rc = sysctl_file(path, file, sizeof(file))) < 0)
		return rc;
	len = (size_t)snprintf(buf, sizeof(buf), "%s\n", value);
	if (len >= sizeof(buf))
		return -EINVAL;
	if ((fd = open(file, O_WRONLY | O_CLOEXEC)) == -1)
		return -errno;
	do {
		n = write(fd, buf, len);
	} while (n == -1 && errno == EINTR);
	if (n == -1)
		rc = -errno;
	else if ((size_t)n != len)
		rc = -EIO;
	if (close(fd) == -1 && rc == 0)
		rc = -errno;
	return rc;
}

/*
 * Set a sysctl, recording its old value first (once: a second call keeps
 * the value recorded by the first, which is the one to restore).
 * optional: a missing sysctl is skipped instead of being an error.
 */
static int
sysctl_set(struct gwnl *nl, enum rec_tag tag, const char *path,
    const char *value, int optional)
{
	struct rec_obj	 o, *have;
	int		 rc;

	memset(&o, 0, sizeof(o));
	o.kind = REC_SYSCTL;
	o.tag = tag;
	if (rec_strlcpy(o.u.sysctl.path, path, sizeof(o.u.sysctl.path)) >=
	    sizeof(o.u.sysctl.path))
		return -ENAMETOOLONG;

	if ((have = rec_find(&nl->rec, &o)) == NULL) {
		if ((rc = sysctl_read(path, o.u.sysctl.value)) < 0) {
			if (rc == -ENOENT && optional) {
				log_info("sysctl %s: not present, skipped",
				    path);
				return 0;
			}
			log_warnx("sysctl %s: read: %s", path, strerror(-rc));
			return rc;
		}
		if ((rc = gwnl_record_add(nl, &o)) < 0) {
			log_warnx("sysctl %s: cannot record its value (%s); "
			    "not changing it", path, strerror(-rc));
			return rc;
		}
	}
	if ((rc = sysctl_write(path, value)) < 0) {
		log_warnx("sysctl %s = %s: %s", path, value, strerror(-rc));
		if (have == NULL && (have = rec_find(&nl->rec, &o)) != NULL) {
			rec_remove(&nl->rec, have);
			(void)rec_save(&nl->rec, nl->path);
		}
		return rc;
	}
	log_debug("sysctl %s = %s (to restore: %s)", path, value,
	    have != NULL ? have->u.sysctl.value : o.u.sysctl.value);
	return 0;
}

static int
sysctl_restore(const struct rec_obj *o, const char *desc)
{
	int	 rc;

	rc = sysctl_write(o->u.sysctl.path, o->u.sysctl.value);
	if (rc == -ENOENT)
		return 1;	/* e.g. the interface is gone */
	if (rc < 0)
		log_warnx("%s: restore: %s", desc, strerror(-rc));
	return rc;
}

static int
config_has_family(const struct grgw_side *s, int family)
{
	int	 i;

	for (i = 0; i < s->n_prefixes && i < GRGW_MAX_PREFIXES; i++)
		if (s->prefixes[i].a.family == family)
			return 1;
	return 0;
}

int
gwnl_forwarding_enable(struct gwnl *nl, const struct grgw_config *cfg)
{
	char	 path[REC_SYSCTL_MAX], all[REC_VALUE_MAX];
	int	 rc, v6;
	const char *wan = cfg->site.wan_interface;

	if (wan[0] == '\0' || strchr(wan, '/') != NULL ||
	    strcmp(wan, ".") == 0 || strcmp(wan, "..") == 0) {
		log_warnx("forwarding: bad WAN interface name '%s'", wan);
		return -EINVAL;
	}
	v6 = config_has_family(&cfg->site, AF_INET6) ||
	    config_has_family(&cfg->peer, AF_INET6);

	/*
	 * Part of the fail-closed layer: without forwarding the kernel drops
	 * packets that hit the unreachable routes silently instead of
	 * answering them, and senders would wait for a timeout.  Strict
	 * reverse path filtering on the WAN keeps refusing clear text that
	 * claims a peer address.  So a plain `down` keeps these too.
	 */
	if ((rc = sysctl_set(nl, REC_BLOCK, "net/ipv4/ip_forward", "1",
	    0)) < 0)
		return rc;
	if ((rc = sysctl_set(nl, REC_BLOCK, "net/ipv6/conf/all/forwarding",
	    "1", !v6)) < 0)
		return rc;
	snprintf(path, sizeof(path), "net/ipv4/conf/%s/rp_filter", wan);
	if ((rc = sysctl_set(nl, REC_BLOCK, path, "1", 0)) < 0)
		return rc;
	/* The kernel applies the larger of "all" and the interface value. */
	if (sysctl_read("net/ipv4/conf/all/rp_filter", all) == 0 &&
	    strcmp(all, "2") == 0)
		log_warnx("net.ipv4.conf.all.rp_filter is 2 (loose): reverse "
		    "path filtering on %s is loose, not strict", wan);
	return 0;
}

/* ---- layout ----------------------------------------------------------- */

/*
 * The rules must sit after charon's (pref 220) and before main (pref
 * 32766), and neither table may be one of the kernel's reserved ones.
 */
static int
check_table(const struct grgw_config *cfg)
{
	uint32_t	 t = cfg->table;

	if (t - 10 <= PREF_CHARON || t + 1 >= PREF_MAIN || t < 10) {
		log_warnx("table %u: must lie in %u..%u so that grgw's rules "
		    "(preferences table-10 to table+1) come after charon's "
		    "(%u) and before main (%u)", t, PREF_CHARON + 11,
		    PREF_MAIN - 2, PREF_CHARON, PREF_MAIN);
		return -EINVAL;
	}
	if ((t >= RT_TABLE_COMPAT && t <= RT_TABLE_LOCAL) ||
	    (t + 1 >= RT_TABLE_COMPAT && t + 1 <= RT_TABLE_LOCAL)) {
		log_warnx("table %u: tables %u..%u are reserved by the kernel",
		    t, RT_TABLE_COMPAT, RT_TABLE_LOCAL);
		return -EINVAL;
	}
	return 0;
}

static int
check_peer_prefixes(const struct grgw_config *cfg)
{
	int	 i;

	if (cfg->peer.n_prefixes <= 0 ||
	    cfg->peer.n_prefixes > GRGW_MAX_PREFIXES) {
		log_warnx("peer %s: no prefixes to route", cfg->peer.name);
		return -EINVAL;
	}
	for (i = 0; i < cfg->peer.n_prefixes; i++) {
		if (addr_len(cfg->peer.prefixes[i].a.family) == 0) {
			log_warnx("peer %s: prefix %d has no address family",
			    cfg->peer.name, i);
			return -EINVAL;
		}
	}
	return 0;
}

static void
lookup_rule_obj(int family, uint32_t table, enum rec_tag tag,
    struct rec_obj *o)
{
	memset(o, 0, sizeof(*o));
	o->kind = REC_RULE;
	o->tag = tag;
	o->u.rule.family = family;
	o->u.rule.pref = table;
	o->u.rule.action = REC_RULE_LOOKUP;
	o->u.rule.table = table;
}

int
gwnl_block_install(struct gwnl *nl, const struct grgw_config *cfg)
{
	static const int families[] = { AF_INET, AF_INET6 };
	struct rec_obj	 o;
	const char	*wan = cfg->site.wan_interface;
	size_t		 f;
	int		 i, rc, first = 0;

	if ((rc = check_table(cfg)) < 0 || (rc = check_peer_prefixes(cfg)) < 0)
		return rc;
	if (wan[0] == '\0') {
		log_warnx("block: no WAN interface configured");
		return -EINVAL;
	}

	/*
	 * Keep going after a failure: every piece of the fail-closed layer
	 * that is in place protects something.  Report the first error.
	 */
	for (i = 0; i < cfg->peer.n_prefixes; i++) {
		memset(&o, 0, sizeof(o));
		o.kind = REC_RULE;
		o.tag = REC_BLOCK;
		o.u.rule.family = cfg->peer.prefixes[i].a.family;
		o.u.rule.pref = cfg->table - 10;
		rec_strlcpy(o.u.rule.iif, wan, sizeof(o.u.rule.iif));
		o.u.rule.has_from = 1;
		o.u.rule.from = cfg->peer.prefixes[i];
		o.u.rule.action = REC_RULE_BLACKHOLE;
		if ((rc = gwnl_install(nl, &o)) < 0 && first == 0)
			first = rc;
	}
	for (i = 0; i < cfg->peer.n_prefixes; i++) {
		memset(&o, 0, sizeof(o));
		o.kind = REC_ROUTE;
		o.tag = REC_BLOCK;
		o.u.route.family = cfg->peer.prefixes[i].a.family;
		o.u.route.table = cfg->table + 1;
		o.u.route.type = REC_ROUTE_UNREACHABLE;
		o.u.route.dst = cfg->peer.prefixes[i];
		if ((rc = gwnl_install(nl, &o)) < 0 && first == 0)
			first = rc;
	}
	for (f = 0; f < nitems(families); f++) {
		if (!config_has_family(&cfg->peer, families[f]))
			continue;
		lookup_rule_obj(families[f], cfg->table + 1, REC_BLOCK, &o);
		if ((rc = gwnl_install(nl, &o)) < 0 && first == 0)
			first = rc;
	}
	return first;
}

int
gwnl_tunnel_routes_install(struct gwnl *nl, const struct grgw_config *cfg)
{
	static const int families[] = { AF_INET, AF_INET6 };
	struct rec_obj	 o;
	size_t		 f;
	int		 i, rc;

	if ((rc = check_table(cfg)) < 0 || (rc = check_peer_prefixes(cfg)) < 0)
		return rc;
	if (cfg->xfrm_interface[0] == '\0') {
		log_warnx("tunnel routes: no tunnel interface configured");
		return -EINVAL;
	}
	for (f = 0; f < nitems(families); f++) {
		if (!config_has_family(&cfg->peer, families[f]))
			continue;
		lookup_rule_obj(families[f], cfg->table, REC_RUN, &o);
		if ((rc = gwnl_install(nl, &o)) < 0)
			return rc;
	}
	for (i = 0; i < cfg->peer.n_prefixes; i++) {
		tunnel_route_obj(cfg, i, &o);
		if ((rc = gwnl_install(nl, &o)) < 0)
			return rc;
	}
	return 0;
}

int
gwnl_tunnel_routes_remove(struct gwnl *nl, const struct grgw_config *cfg)
{
	struct rec_obj	 o, *have;
	char		 desc[REC_LINE_MAX];
	int		 i, rc, first = 0, changed = 0;

	if (cfg->peer.n_prefixes < 0 ||
	    cfg->peer.n_prefixes > GRGW_MAX_PREFIXES)
		return -EINVAL;
	/* Only routes we recorded: anything else in table T is not ours. */
	for (i = 0; i < cfg->peer.n_prefixes; i++) {
		tunnel_route_obj(cfg, i, &o);
		if ((have = rec_find(&nl->rec, &o)) == NULL)
			continue;
		describe(have, desc, sizeof(desc));
		if ((rc = route_remove(nl, have, desc)) < 0) {
			if (first == 0)
				first = rc;
			continue;
		}
		rec_remove(&nl->rec, have);
		changed = 1;
	}
	if (changed && (rc = rec_save(&nl->rec, nl->path)) < 0 && first == 0)
		first = rc;
	return first;
}

/* ---- nftables ---------------------------------------------------------- */

/*
 * Run an nftables script as one transaction.  0, or -EINVAL with the
 * parser's or kernel's complaint logged (what names the caller's object).
 */
static int
nft_run(const char *script, const char *what)
{
	struct nft_ctx	*ctx;
	const char	*msg;
	int		 rc = 0;

	if ((ctx = nft_ctx_new(NFT_CTX_DEFAULT)) == NULL)
		return -ENOMEM;
	nft_ctx_buffer_output(ctx);
	nft_ctx_buffer_error(ctx);
	if (nft_run_cmd_from_buffer(ctx, script) != 0) {
		msg = nft_ctx_get_error_buffer(ctx);
		log_warnx("%s: nftables refused the change: %.300s", what,
		    msg != NULL && *msg != '\0' ? msg : "no reason given");
		rc = -EINVAL;
	}
	nft_ctx_free(ctx);
	return rc;
}

/* 0 removed, 1 already gone, -errno. */
static int
nft_table_remove(const struct rec_obj *o, const char *desc)
{
	char	 script[128];
	int	 rc;

	if (!rec_valid_nft(&o->u.nft))
		return -EINVAL;
	/* "add" first makes the delete succeed whether or not it exists. */
	snprintf(script, sizeof(script), "add table %s %s\ndelete table %s %s\n",
	    o->u.nft.family, o->u.nft.table, o->u.nft.family, o->u.nft.table);
	rc = nft_run(script, desc);
	return rc;
}

int
gwnl_nft_apply(struct gwnl *nl, int block, const char *table,
    const char *body)
{
	struct rec_obj	 o;
	char		*script = NULL;
	int		 rc, n;

	memset(&o, 0, sizeof(o));
	o.kind = REC_NFT;
	o.tag = block ? REC_BLOCK : REC_RUN;
	rec_strlcpy(o.u.nft.family, "inet", sizeof(o.u.nft.family));
	if (rec_strlcpy(o.u.nft.table, table, sizeof(o.u.nft.table)) >=
	    sizeof(o.u.nft.table) || !rec_valid_nft(&o.u.nft))
		return -EINVAL;
	/* Recorded before it exists, so a crash in between still undoes it. */
	if (rec_find(&nl->rec, &o) == NULL &&
	    (rc = gwnl_record_add(nl, &o)) < 0)
		return rc;
	/* Replace the whole table in one transaction: never half a policy. */
	n = asprintf(&script, "add table inet %s\ndelete table inet %s\n"
	    "table inet %s {\n%s}\n", table, table, table, body);
	if (n < 0)
		return -ENOMEM;
	rc = nft_run(script, table);
	free(script);
	return rc;
}

int
gwnl_failfast_install(struct gwnl *nl, const struct grgw_config *cfg)
{
	char	 body[4096], ifs[GRGW_MAX_LAN_IFS * (IF_NAMESIZE + 4)];
	char	 p[INET6_ADDRSTRLEN + 8];
	size_t	 off = 0;
	int	 i, n;

	ifs[0] = '\0';
	for (i = 0; i < cfg->site.n_lan_interfaces; i++) {
		n = snprintf(ifs + off, sizeof(ifs) - off, "%s\"%s\"",
		    i ? ", " : "", cfg->site.lan_interfaces[i]);
		if (n < 0 || (size_t)n >= sizeof(ifs) - off)
			return -ENAMETOOLONG;
		off += (size_t)n;
	}
	off = 0;
	n = snprintf(body, sizeof(body), "\tchain prerouting {\n"
	    "\t\ttype filter hook prerouting priority -150; policy accept;\n");
	if (n < 0)
		return -EINVAL;
	off = (size_t)n;
	/*
	 * A TCP segment from the site's nodes to a peer prefix that has no
	 * route (the tunnel is down: the unreachable routes answer) gets a
	 * reset at once.  The kernel's ICMP errors are rate limited per
	 * host, so a service retrying quickly would otherwise hang on its
	 * later attempts; resets are not.  Other protocols get the ICMP
	 * error from the unreachable route.
	 */
	for (i = 0; i < cfg->peer.n_prefixes; i++) {
		const struct grgw_prefix *pf = &cfg->peer.prefixes[i];

		n = snprintf(body + off, sizeof(body) - off,
		    "\t\tiifname { %s } meta l4proto tcp %s daddr %s "
		    "fib daddr oif missing counter reject with tcp reset\n",
		    ifs, pf->a.family == AF_INET ? "ip" : "ip6",
		    prefix_fmt(pf, p, sizeof(p)));
		if (n < 0 || (size_t)n >= sizeof(body) - off)
			return -ENAMETOOLONG;
		off += (size_t)n;
	}
	n = snprintf(body + off, sizeof(body) - off, "\t}\n");
	if (n < 0 || (size_t)n >= sizeof(body) - off)
		return -ENAMETOOLONG;
	return gwnl_nft_apply(nl, 1, GWNL_FAILFAST_TABLE, body);
}

/* ---- cleanup ---------------------------------------------------------- */

/* 0 removed, 1 already gone, -errno (logged). */
static int
gwnl_remove(struct gwnl *nl, const struct rec_obj *o)
{
	char	 desc[REC_LINE_MAX];

	describe(o, desc, sizeof(desc));
	switch (o->kind) {
	case REC_RULE:
		return rule_remove(nl, o, desc);
	case REC_ROUTE:
		return route_remove(nl, o, desc);
	case REC_LINK:
		return link_remove(nl, o, desc);
	case REC_SYSCTL:
		return sysctl_restore(o, desc);
	case REC_NFT:
		return nft_table_remove(o, desc);
	case REC_QDISC:
		return gwnl_qdisc_remove(nl, o, desc);
	case REC_OFFLOAD:
		return gwnl_offload_restore(o, desc);
	case REC_UNPARSED:
		break;
	}
	return -EINVAL;
}

int
gwnl_cleanup(struct gwnl *nl, int purge)
{
	struct rec_obj	*o, *prev;
	char		 desc[REC_LINE_MAX];
	int		 rc, ret = 0, before, after, block;

	before = rec_count(&nl->rec, NULL, NULL);
	for (o = TAILQ_LAST(&nl->rec.objs, rec_objs); o != NULL; o = prev) {
		prev = TAILQ_PREV(o, rec_objs, entry);
		if (o->kind == REC_UNPARSED) {
			log_warnx("%s:%d: line not understood, left in the "
			    "record; check the kernel state and remove it by "
			    "hand", nl->path, o->lineno);
			ret = -1;
			continue;
		}
		if (o->tag == REC_BLOCK && !purge)
			continue;
		describe(o, desc, sizeof(desc));
		if ((rc = gwnl_remove(nl, o)) < 0) {
			ret = -1;
			continue;
		}
		if (rc == 1)
			log_debug("%s: already gone", desc);
		else
			log_debug("%s: removed", desc);
		rec_remove(&nl->rec, o);
	}
	if (rec_save(&nl->rec, nl->path) < 0)
		ret = -1;
	after = rec_count(&nl->rec, &block, NULL);
	log_info("kernel state: %d object(s) removed, %d left%s", before - after,
	    after, block == after && after > 0 ? " (fail-closed layer)" : "");
	return ret;
}

/* ---- open, close, count ------------------------------------------------ */

int
gwnl_open(const char *record_path, struct gwnl **out)
{
	struct gwnl	*nl;
	int		 rc;

	*out = NULL;
	if (record_path == NULL || record_path[0] == '\0')
		return -EINVAL;
	if ((nl = calloc(1, sizeof(*nl))) == NULL)
		return -ENOMEM;
	if (rec_strlcpy(nl->path, record_path, sizeof(nl->path)) >=
	    sizeof(nl->path)) {
		rc = -ENAMETOOLONG;
		goto cleanup;
	}
	rec_init(&nl->rec, nl->path);
	if ((rc = gwnl_socket_open(nl)) < 0)
		goto cleanup;
	if ((rc = rec_load(&nl->rec, nl->path)) < 0)
		goto cleanup;
	*out = nl;
	return 0;

cleanup:
	gwnl_close(nl);
	return rc;
}

void
gwnl_close(struct gwnl *nl)
{
	if (nl == NULL)
		return;
	rec_clear(&nl->rec);
	nl_socket_free(nl->sock);
	free(nl);
}

int
gwnl_record_count(const struct gwnl *nl, int *block, int *run)
{
	return rec_count(&nl->rec, block, run);
}

/* ---- for the other files of netlink/ (internal.h) ---------------------- */

struct nl_sock *
gwnl_socket(struct gwnl *nl)
{
	return nl->sock;
}

struct rec_list *
gwnl_record(struct gwnl *nl)
{
	return &nl->rec;
}

int
gwnl_record_append(struct gwnl *nl, const struct rec_obj *o)
{
	return gwnl_record_add(nl, o);
}

int
gwnl_request(struct gwnl *nl, struct nl_msg *msg, char *why, size_t whylen)
{
	int	 rc;

	rc = gwnl_send(nl, msg);
	if (why != NULL && whylen > 0) {
		why[0] = '\0';
		if (rc < 0)
			gwnl_reason(nl, why, whylen);
	}
	return rc;
}

/* ---- data plane detection --------------------------------------------- */

/* Does a file list a module whose name is esp4 ("path/esp4.ko[.xz]")? */
static int
modules_file_has_esp4(const char *file)
{
	FILE		*f;
	char		*line = NULL, *end, *base;
	size_t		 cap = 0;
	int		 found = 0;

	if ((f = fopen(file, "re")) == NULL)
		return 0;
	while (!found && getline(&line, &cap, f) != -1) {
		/* modules.dep: "path: deps"; modules.builtin: "path". */
		end = line + strcspn(line, ":\n");
		*end = '\0';
		base = strrchr(line, '/');
		base = base != NULL ? base + 1 : line;
		if (strncmp(base, "esp4.ko", 7) == 0)
			found = 1;
	}
	free(line);
	fclose(f);
	return found;
}

static int
kernel_has_esp4(void)
{
	struct utsname	 u;
	struct stat	 st;
	char		 file[PATH_MAX];

	if (stat("/sys/module/esp4", &st) == 0)
		return 1;
	if (uname(&u) == -1)
		return 0;
	snprintf(file, sizeof(file), "/lib/modules/%s/modules.builtin",
	    u.release);
	if (modules_file_has_esp4(file))
		return 1;
	snprintf(file, sizeof(file), "/lib/modules/%s/modules.dep", u.release);
	return modules_file_has_esp4(file);
}

/* Create and delete a throwaway xfrm interface.  1 if that worked. */
static int
kernel_has_xfrmi(void)
{
	struct gwnl		 nl;
	struct rtnl_link	*link = NULL;
	struct nl_msg		*msg;
	char			 name[IF_NAMESIZE], why[200];
	uint32_t		 r;
	int			 i, rc = -EEXIST, ok = 0;

	memset(&nl, 0, sizeof(nl));
	rec_init(&nl.rec, "probe");
	if (gwnl_socket_open(&nl) < 0)
		goto cleanup;
	for (i = 0; i < PROBE_ATTEMPTS && rc == -EEXIST; i++) {
		if (getrandom(&r, sizeof(r), 0) != sizeof(r))
			r = (uint32_t)getpid() * 2654435761u + (uint32_t)i;
		if (r == 0)
			r = 1;
		snprintf(name, sizeof(name), "grgwp%08x", r);
		/* if_id must be unique among xfrm interfaces: random too. */
		if ((msg = gwnl_build_xfrmi_add(name, r, 0, 0)) == NULL)
			goto cleanup;
		rc = gwnl_send(&nl, msg);
	}
	if (rc < 0) {
		log_info("kernel data plane: no xfrm interfaces: %s%s",
		    strerror(-rc), gwnl_reason(&nl, why, sizeof(why)));
		goto cleanup;
	}
	ok = 1;
	gwnl_ack_reset(&nl);
	if ((rc = rtnl_link_get_kernel(nl.sock, 0, name, &link)) < 0 ||
	    (rc = rtnl_link_delete(nl.sock, link)) < 0) {
		rc = gwnl_errno(&nl, rc);
		log_warnx("probe interface %s: cannot delete it: %s; remove "
		    "it with `ip link del %s`", name, strerror(-rc), name);
	}

cleanup:
	rtnl_link_put(link);
	nl_socket_free(nl.sock);
	return ok;
}

int
gwnl_kernel_ipsec_available(void)
{
	int	 esp, xfrmi;

	esp = kernel_has_esp4();
	if (!esp)
		log_info("kernel data plane: no ESP (esp4 is neither loaded, "
		    "built in nor available as a module)");
	xfrmi = kernel_has_xfrmi();
	return esp && xfrmi;
}
