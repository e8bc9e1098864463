/*
 * libnl headers, for the files of netlink/ and their tests.
 *
 * Our own "netlink/netlink.h" has the same name as libnl's
 * <netlink/netlink.h>, and the build puts -I. before libnl's include
 * directory, so every libnl header that says <netlink/netlink.h> would get
 * ours.  Reach libnl's through its libnl3/ directory first (its include
 * guard then makes the later includes harmless); our header is included by
 * its quoted name and keeps working either way.
 */
#ifndef GRGW_NETLINK_LIBNL_H
#define GRGW_NETLINK_LIBNL_H

#include <libnl3/netlink/netlink.h>
#include <netlink/attr.h>
#include <netlink/errno.h>
#include <netlink/msg.h>
#include <netlink/socket.h>
#include <netlink/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/xfrmi.h>
#include <netlink/route/nexthop.h>
#include <netlink/route/route.h>
#include <netlink/route/rule.h>

#endif /* GRGW_NETLINK_LIBNL_H */
