/*
 * Generic receive offload on the site's LAN interfaces.
 *
 * GRO merges a burst of TCP segments from one flow into a single packet of
 * up to 64 KB before it is forwarded.  The shaper on the tunnel interface
 * then queues and releases that merged packet as one: the time it takes on
 * the WAN is a head-of-line wait for every class behind it, which is the
 * latency QoS is there to bound.  So while grgw shapes, it turns GRO off on
 * the LAN interfaces, records the value it found and puts it back on
 * cleanup (like a sysctl).
 *
 * GRO runs where packets are received: on a physical NIC, not on a bridge,
 * VLAN or bond stacked on it.  So the devices below a LAN interface are
 * switched too: the ports of a bridge, bond or team, and the device a
 * VLAN, macvlan or ipvlan interface sits on, as deep as they go.
 *
 * The switch is ethtool's ETHTOOL_[GS]GRO request, on any socket of the
 * network namespace; it needs CAP_NET_ADMIN.
 */
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <linux/ethtool.h>
#include <linux/sockios.h>

#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "netlink/libnl.h"

#include "grgw.h"
#include "netlink/netlink.h"
#include "netlink/record.h"
#include "netlink/internal.h"

/* One ETHTOOL_GGRO or ETHTOOL_SGRO request.  0 or -errno. */
static int
gro_ioctl(const char *ifname, uint32_t cmd, uint32_t *value)
{
	struct ethtool_value	 ev;
	struct ifreq		 ifr;
	int			 fd, rc = 0;

	if (strlen(ifname) >= sizeof(ifr.ifr_name))
		return -ENAMETOOLONG;
	if ((fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1 &&
	    (fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return -errno;
	memset(&ev, 0, sizeof(ev));
	memset(&ifr, 0, sizeof(ifr));
	ev.cmd = cmd;
	ev.data = *value;
	memcpy(ifr.ifr_name, ifname, strlen(ifname));
	ifr.ifr_data = (void *)&ev;
	if (ioctl(fd, SIOCETHTOOL, &ifr) == -1)
		rc = -errno;
	else
		*value = ev.data;
	close(fd);
	return rc;
}

int
gwnl_gro_get(const char *ifname, int *on)
{
	uint32_t	 v = 0;
	int		 rc;

	if ((rc = gro_ioctl(ifname, ETHTOOL_GGRO, &v)) < 0)
		return rc;
	*on = v != 0;
	return 0;
}

static int
gro_set(const char *ifname, int on)
{
	uint32_t	 v = on ? 1 : 0;
	int		 rc, now;

	if ((rc = gro_ioctl(ifname, ETHTOOL_SGRO, &v)) < 0)
		return rc;
	/* A feature the driver keeps fixed can be refused quietly. */
	if ((rc = gwnl_gro_get(ifname, &now)) < 0)
		return rc;
	return now == on ? 0 : -EOPNOTSUPP;
}

int
gwnl_gro_off(struct gwnl *nl, const char *ifname, char *err, size_t errlen)
{
	struct rec_obj	 o, *have;
	int		 rc, on;

	err[0] = '\0';
	memset(&o, 0, sizeof(o));
	o.kind = REC_OFFLOAD;
	o.tag = REC_RUN;
	if (rec_strlcpy(o.u.offload.dev, ifname, sizeof(o.u.offload.dev)) >=
	    sizeof(o.u.offload.dev) || ifname[0] == '\0') {
		snprintf(err, errlen, "bad interface name");
		return -EINVAL;
	}
	if ((rc = gwnl_gro_get(ifname, &on)) < 0) {
		snprintf(err, errlen, "cannot read its GRO setting: %s",
		    strerror(-rc));
		return rc;
	}
	have = rec_find(gwnl_record(nl), &o);
	if (!on)
		return 0;	/* nothing to change, or changed already */
	if (have == NULL) {
		o.u.offload.on = 1;
		if ((rc = gwnl_record_append(nl, &o)) < 0) {
			snprintf(err, errlen, "cannot record it (%s), so not "
			    "changing it", strerror(-rc));
			return rc;
		}
	}
	if ((rc = gro_set(ifname, 0)) < 0) {
		snprintf(err, errlen, "%s", rc == -EOPNOTSUPP ?
		    "the driver does not let GRO be turned off" :
		    strerror(-rc));
		/* The record may stay: restoring "on" changes nothing. */
		return rc;
	}
	log_info("qos: GRO off on %s while shaping (was on; restored by "
	    "down)", ifname);
	return 0;
}

/* Kinds stacked on one lower device, named by IFLA_LINK in this netns. */
static int
stacked_kind(const char *kind)
{
	static const char *const kinds[] = { "vlan", "macvlan", "macvtap",
	    "ipvlan", "ipvtap" };
	size_t	 i;

	for (i = 0; kind != NULL && i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(kind, kinds[i]) == 0)
			return 1;
	return 0;
}

struct gro_walk {
	struct nl_cache	*cache;
	int		 ifindex[GWNL_GRO_DEVS_MAX];
	int		 n;
	int		 master;	/* looking for ports of this one */
};

static void
walk_add(struct gro_walk *w, int ifindex)
{
	int	 i;

	if (ifindex <= 0 || w->n == GWNL_GRO_DEVS_MAX)
		return;
	for (i = 0; i < w->n; i++)
		if (w->ifindex[i] == ifindex)
			return;
	w->ifindex[w->n++] = ifindex;
}

static void
walk_port(struct nl_object *obj, void *arg)
{
	struct gro_walk	*w = arg;
	struct rtnl_link *l = (struct rtnl_link *)obj;

	if (rtnl_link_get_master(l) == w->master)
		walk_add(w, rtnl_link_get_ifindex(l));
}

int
gwnl_gro_devices(struct gwnl *nl, const char *ifname,
    char names[][IF_NAMESIZE], int max)
{
	struct gro_walk		 w;
	struct rtnl_link	*l;
	int32_t			 nsid;
	int			 i, n = 0;

	memset(&w, 0, sizeof(w));
	if (rtnl_link_alloc_cache(gwnl_socket(nl), AF_UNSPEC, &w.cache) < 0)
		return -EIO;
	if ((l = rtnl_link_get_by_name(w.cache, ifname)) == NULL) {
		nl_cache_free(w.cache);
		return -ENODEV;
	}
	walk_add(&w, rtnl_link_get_ifindex(l));
	rtnl_link_put(l);
	/* Breadth first; w.n grows while we go. */
	for (i = 0; i < w.n; i++) {
		if ((l = rtnl_link_get(w.cache, w.ifindex[i])) == NULL)
			continue;
		if (stacked_kind(rtnl_link_get_type(l)) &&
		    rtnl_link_get_link_netnsid(l, &nsid) != 0)
			walk_add(&w, rtnl_link_get_link(l));
		w.master = w.ifindex[i];
		nl_cache_foreach(w.cache, walk_port, &w);
		rtnl_link_put(l);
	}
	for (i = 0; i < w.n && n < max; i++) {
		if ((l = rtnl_link_get(w.cache, w.ifindex[i])) == NULL)
			continue;
		rec_strlcpy(names[n++], rtnl_link_get_name(l), IF_NAMESIZE);
		rtnl_link_put(l);
	}
	nl_cache_free(w.cache);
	return n;
}

int
gwnl_offload_restore(const struct rec_obj *o, const char *desc)
{
	int	 rc;

	rc = gro_set(o->u.offload.dev, o->u.offload.on);
	if (rc == -ENODEV)
		return 1;	/* the interface is gone */
	if (rc < 0)
		log_warnx("%s: restore: %s", desc, strerror(-rc));
	return rc;
}
