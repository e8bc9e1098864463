/*
 * What the files of netlink/ share beyond netlink.h: the socket, the
 * record and the request helper of a struct gwnl (netlink.c), and the
 * removers of object kinds that live in other files.  Internal to
 * netlink/.
 */
#ifndef GRGW_NETLINK_INTERNAL_H
#define GRGW_NETLINK_INTERNAL_H

#include <stddef.h>

#include "netlink/record.h"

struct gwnl;
struct nl_msg;
struct nl_sock;

/* The route socket (owned by nl). */
struct nl_sock *gwnl_socket(struct gwnl *nl);
/* The record (owned by nl). */
struct rec_list *gwnl_record(struct gwnl *nl);
/* Append o to the record and rewrite the file.  0 or -errno. */
int	gwnl_record_append(struct gwnl *nl, const struct rec_obj *o);
/*
 * Send msg (freed here) and wait for the kernel's ack: 0 or -errno; why
 * gets " (kernel: ...)" when the kernel gave a reason, else "".
 */
int	gwnl_request(struct gwnl *nl, struct nl_msg *msg, char *why,
	    size_t whylen);

/* qos.c: remove a recorded root qdisc.  0 removed, 1 gone, -errno. */
int	gwnl_qdisc_remove(struct gwnl *nl, const struct rec_obj *o,
	    const char *desc);

/* offload.c: put a recorded offload setting back.  0, 1 gone, -errno. */
int	gwnl_offload_restore(const struct rec_obj *o, const char *desc);

#endif /* GRGW_NETLINK_INTERNAL_H */
