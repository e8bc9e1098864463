/*
 * The core of netlink/: a struct gwnl is a route socket and the record of
 * what grgw installed.  Requests go out and their acks come back here,
 * with the kernel's extended ack text (NETLINK_EXT_ACK), so that a log
 * line says both what we tried (the object as it appears in the record)
 * and what the kernel answered.
 *
 * The files that install objects (route.c, xfrmi.c, sysctl.c, nft.c,
 * qos.c, offload.c) call this one through internal.h; this file calls
 * none of them, only record.c.  Errors are -errno.
 */
#include <sys/socket.h>

#include <linux/netlink.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netlink/libnl.h"

#include "grgw.h"
#include "netlink/netlink.h"
#include "netlink/record.h"
#include "netlink/internal.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK	270
#endif

struct gwnl {
	struct nl_sock		*sock;
	char			 path[PATH_MAX];	/* "": not recorded */
	struct rec_list		 rec;
	/* Last error ack from the kernel (0 if none since the reset). */
	int			 ack_errno;
	char			 ack_msg[160];
	/* The file lags the record: -errno of the last failed write. */
	int			 unsaved;
	/* nft.c's memory of the tables it applied. */
	void			*nft_state;
	void			(*nft_state_free)(void *);
};

/* ---- errors ------------------------------------------------------------ */

int
gwnl_nlerr_to_errno(int nlerr)
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

void
gwnl_ack_reset(struct gwnl *nl)
{
	nl->ack_errno = 0;
	nl->ack_msg[0] = '\0';
}

int
gwnl_ack_error(struct gwnl *nl, int nlerr, char *err, size_t errlen)
{
	if (err != NULL && errlen > 0) {
		err[0] = '\0';
		if (nl->ack_msg[0] != '\0')
			snprintf(err, errlen, " (kernel: %s)", nl->ack_msg);
	}
	/* Prefer what the kernel said over libnl's translation. */
	if (nl->ack_errno != 0)
		return -nl->ack_errno;
	return -gwnl_nlerr_to_errno(nlerr);
}

int
gwnl_request(struct gwnl *nl, struct nl_msg *msg, char *err, size_t errlen)
{
	int	 rc;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	gwnl_ack_reset(nl);
	rc = nl_send_auto(nl->sock, msg);
	nlmsg_free(msg);
	if (rc >= 0 && (rc = nl_wait_for_ack(nl->sock)) >= 0)
		return 0;
	return gwnl_ack_error(nl, rc, err, errlen);
}

/* ---- the socket --------------------------------------------------------- */

static int
gwnl_socket_open(struct gwnl *nl)
{
	int	 err, one = 1, fd;

	if ((nl->sock = nl_socket_alloc()) == NULL)
		return -ENOMEM;
	if ((err = nl_connect(nl->sock, NETLINK_ROUTE)) < 0) {
		log_warnx("netlink route socket: %s", nl_geterror(err));
		return -gwnl_nlerr_to_errno(err);
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
		return -gwnl_nlerr_to_errno(err);
	return 0;
}

struct nl_sock *
gwnl_socket(struct gwnl *nl)
{
	return nl->sock;
}

int
gwnl_ifindex(struct gwnl *nl, const char *name)
{
	struct rtnl_link	*link = NULL;
	int			 err, ifindex;

	gwnl_ack_reset(nl);
	if ((err = rtnl_link_get_kernel(nl->sock, 0, name, &link)) < 0) {
		err = gwnl_ack_error(nl, err, NULL, 0);
		return err == -ENOENT ? -ENODEV : err;
	}
	ifindex = rtnl_link_get_ifindex(link);
	rtnl_link_put(link);
	if (ifindex <= 0)
		return -ENODEV;
	return ifindex;
}

/* ---- open, close ------------------------------------------------------- */

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

int
gwnl_open_unrecorded(struct gwnl **out)
{
	struct gwnl	*nl;
	int		 rc;

	*out = NULL;
	if ((nl = calloc(1, sizeof(*nl))) == NULL)
		return -ENOMEM;
	rec_init(&nl->rec, "probe");
	if ((rc = gwnl_socket_open(nl)) < 0) {
		gwnl_close(nl);
		return rc;
	}
	*out = nl;
	return 0;
}

void
gwnl_close(struct gwnl *nl)
{
	if (nl == NULL)
		return;
	rec_clear(&nl->rec);
	if (nl->nft_state_free != NULL)
		nl->nft_state_free(nl->nft_state);
	nl_socket_free(nl->sock);
	free(nl);
}

/* ---- the record --------------------------------------------------------- */

struct rec_list *
gwnl_record(struct gwnl *nl)
{
	return &nl->rec;
}

const char *
gwnl_record_path(const struct gwnl *nl)
{
	return nl->path;
}

int
gwnl_record_save(struct gwnl *nl)
{
	int	 rc;

	if (nl->path[0] == '\0')
		return -EINVAL;
	if ((rc = rec_save(&nl->rec, nl->path)) < 0)
		nl->unsaved = rc;
	else if (nl->unsaved != 0) {
		log_info("%s: written again; it holds every object installed",
		    nl->path);
		nl->unsaved = 0;
	}
	return rc;
}

int
gwnl_record_unsaved(const struct gwnl *nl)
{
	return nl->unsaved;
}

int
gwnl_record_append(struct gwnl *nl, const struct rec_obj *o)
{
	struct rec_obj	*n;
	int		 rc;

	if (nl->path[0] == '\0')
		return -EINVAL;
	if ((n = rec_append(&nl->rec, o)) == NULL)
		return -ENOMEM;
	if ((rc = gwnl_record_save(nl)) < 0) {
		/*
		 * A block object stays known (in memory) and in the kernel:
		 * failing closed beats a record that lists everything.
		 */
		if (o->tag != REC_BLOCK)
			rec_remove(&nl->rec, n);
		return rc;
	}
	return 0;
}

void *
gwnl_nft_state(struct gwnl *nl)
{
	return nl->nft_state;
}

void
gwnl_nft_state_set(struct gwnl *nl, void *state, void (*free_fn)(void *))
{
	nl->nft_state = state;
	nl->nft_state_free = free_fn;
}

int
gwnl_record_count(const struct gwnl *nl, int *block, int *run)
{
	return rec_count(&nl->rec, block, run);
}

void
gwnl_describe(const struct rec_obj *o, char *buf, size_t size)
{
	if (rec_format(o, buf, size) < 0)
		snprintf(buf, size, "(object)");
}
