/*
 * libnl headers, for the files of netlink/ and their tests.  Our own
 * "netlink/netlink.h" shares its name with libnl's <netlink/netlink.h>; the
 * build adds the project with -iquote only, so angle-bracket includes (and
 * libnl's own) always reach libnl's header.
 */
#ifndef GRGW_NETLINK_LIBNL_H
#define GRGW_NETLINK_LIBNL_H

#include <netlink/netlink.h>
#include <netlink/attr.h>
#include <netlink/errno.h>
#include <netlink/msg.h>
#include <netlink/socket.h>
#include <netlink/addr.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/xfrmi.h>
#include <netlink/route/neighbour.h>
#include <netlink/route/nexthop.h>
#include <netlink/route/route.h>
#include <netlink/route/rule.h>

#endif /* GRGW_NETLINK_LIBNL_H */
