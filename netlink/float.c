/*
 * Floating addresses of a gateway pair: the site's addresses that only
 * the active gateway holds (pair-spec.md).  They are added and removed
 * through rtnetlink, and announced so that the neighbours of the site
 * send to the new holder at once instead of to the old one's MAC address
 * until their cache entries expire:
 *
 *   IPv4  a gratuitous ARP request (sender = target = the address, target
 *         hardware address zero as RFC 5227 asks) to the broadcast MAC,
 *         on an AF_PACKET socket bound to the interface;
 *   IPv6  an unsolicited neighbour advertisement with the override flag
 *         (RFC 4861 7.2.6) to ff02::1, hop limit 255, from the address
 *         itself, which IFA_F_NODAD made usable the moment it was added.
 *
 * A Linux neighbour updates an entry it has (not a permanent one) from
 * either; it creates none.  One frame per call: the caller repeats.
 *
 * The addresses are not in the record: who holds them is the pair's
 * decision (the role engine), not a layer that `down` undoes.  Each call
 * opens and closes its own sockets; they are rare.  Errors are -errno
 * with the reason in err.  Calls only netlink.c.
 */
#include <sys/socket.h>
#include <sys/uio.h>

#include <linux/neighbour.h>

#include <errno.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netpacket/packet.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "netlink/libnl.h"

#include "grgw.h"
#include "netlink/netlink.h"
#include "netlink/internal.h"

/* The interface an announcement leaves on. */
struct float_link {
	int		ifindex;
	uint8_t		mac[ETH_ALEN];
};

/* An ARP packet for IPv4 over Ethernet (RFC 826), as it is on the wire. */
struct float_arp {
	uint16_t	hrd, pro;
	uint8_t		hln, pln;
	uint16_t	op;
	uint8_t		sha[ETH_ALEN], spa[4];
	uint8_t		tha[ETH_ALEN], tpa[4];
} __attribute__((packed));

/* A neighbour advertisement with its target link-layer address option. */
#define NA_LEN		(sizeof(struct nd_neighbor_advert) + 8)

/* ---- checks, the socket --------------------------------------------- */

static int
float_check(const char *ifname, const struct grgw_addr *a, char *err,
    size_t errlen)
{
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (ifname == NULL || !ifname_valid(ifname)) {
		err_set(err, errlen, "bad interface name");
		return -EINVAL;
	}
	if (a == NULL || (a->family != AF_INET && a->family != AF_INET6)) {
		err_set(err, errlen, "%s: not an IPv4 or IPv6 address", ifname);
		return -EAFNOSUPPORT;
	}
	return 0;
}

/* A route socket of our own (*nl, owned by the caller, gwnl_close()). */
static int
float_open(const char *ifname, struct gwnl **nl, char *err, size_t errlen)
{
	int	 rc;

	if ((rc = gwnl_open_unrecorded(nl)) < 0)
		err_set(err, errlen, "%s: netlink route socket: %s", ifname,
		    strerror(-rc));
	return rc;
}

static int
float_ifindex(struct gwnl *nl, const char *ifname, char *err, size_t errlen)
{
	int	 rc;

	if ((rc = gwnl_ifindex(nl, ifname)) == -ENODEV)
		err_set(err, errlen, "%s: no such interface", ifname);
	else if (rc < 0)
		err_set(err, errlen, "%s: cannot look the interface up: %s",
		    ifname, strerror(-rc));
	return rc;
}

/* ---- the address on an interface ------------------------------------- */

static int
addr_matches(struct rtnl_addr *ra, int ifindex, const struct grgw_addr *a)
{
	struct nl_addr	*local;
	int		 n = addr_len(a->family);

	if (rtnl_addr_get_family(ra) != a->family ||
	    (ifindex > 0 && rtnl_addr_get_ifindex(ra) != ifindex))
		return 0;
	/* IPv6 lists its address as IFA_ADDRESS; libnl files it as local. */
	if ((local = rtnl_addr_get_local(ra)) == NULL ||
	    nl_addr_get_len(local) != (unsigned int)n)
		return 0;
	return memcmp(nl_addr_get_binary_addr(local), a->addr, (size_t)n) == 0;
}

/*
 * The kernel's entry for a on ifindex (on any interface with ifindex 0),
 * whatever its prefix length: 1 and *found (owned by the caller,
 * rtnl_addr_put()), 0 when there is none, or -errno.
 */
static int
addr_find(struct gwnl *nl, int ifindex, const struct grgw_addr *a,
    struct rtnl_addr **found)
{
	struct nl_cache		*cache = NULL;
	struct nl_object	*o;
	int			 rc;

	*found = NULL;
	gwnl_ack_reset(nl);
	if ((rc = rtnl_addr_alloc_cache(gwnl_socket(nl), &cache)) < 0)
		return gwnl_ack_error(nl, rc, NULL, 0);
	for (o = nl_cache_get_first(cache); o != NULL;
	    o = nl_cache_get_next(o)) {
		if (addr_matches((struct rtnl_addr *)o, ifindex, a)) {
			nl_object_get(o);
			*found = (struct rtnl_addr *)o;
			break;
		}
	}
	nl_cache_free(cache);
	return *found != NULL;
}

static int
addr_find_err(struct gwnl *nl, int ifindex, const struct grgw_addr *a,
    struct rtnl_addr **found, const char *ifname, char *err, size_t errlen)
{
	int	 rc;

	if ((rc = addr_find(nl, ifindex, a, found)) < 0)
		err_set(err, errlen, "%s: cannot list its addresses: %s",
		    ifname, strerror(-rc));
	return rc;
}

/* RTM_NEWADDR (IPv6: no duplicate address detection) or RTM_DELADDR. */
static int
addr_request(struct gwnl *nl, int ifindex, const struct grgw_addr *a,
    int prefixlen, int add, char *kerr, size_t kerrlen)
{
	struct rtnl_addr	*ra;
	struct nl_addr		*local;
	struct nl_msg		*msg = NULL;
	int			 rc = -ENOMEM;

	if ((ra = rtnl_addr_alloc()) == NULL)
		return -ENOMEM;
	if ((local = nl_addr_build(a->family, a->addr,
	    (size_t)addr_len(a->family))) == NULL)
		goto cleanup;
	rtnl_addr_set_ifindex(ra, ifindex);
	rtnl_addr_set_family(ra, a->family);
	if ((rc = rtnl_addr_set_local(ra, local)) < 0)
		goto nlerr;
	rtnl_addr_set_prefixlen(ra, prefixlen);
	if (a->family == AF_INET6)
		rtnl_addr_set_flags(ra, IFA_F_NODAD);
	if (add)
		rc = rtnl_addr_build_add_request(ra,
		    NLM_F_CREATE | NLM_F_EXCL, &msg);
	else
		rc = rtnl_addr_build_delete_request(ra, 0, &msg);
	if (rc < 0)
		goto nlerr;
	rc = gwnl_request(nl, msg, kerr, kerrlen);	/* frees msg */
	goto cleanup;

nlerr:
	rc = -gwnl_nlerr_to_errno(rc);
cleanup:
	nl_addr_put(local);
	rtnl_addr_put(ra);
	return rc;
}

/*
 * What to do with the entry found for an address being added: 0 keep it
 * (it is there and usable), 1 add it anew (an IPv6 entry someone added
 * with duplicate address detection, still tentative or failed: not
 * usable as a source, so it goes), or -errno.
 */
static int
addr_keep_or_replace(struct gwnl *nl, int ifindex, struct rtnl_addr *have,
    const struct grgw_addr *a, int prefixlen, const char *what, char *err,
    size_t errlen)
{
	char		 kerr[200];
	unsigned int	 flags = rtnl_addr_get_flags(have);
	int		 rc, have_len = rtnl_addr_get_prefixlen(have);

	if (a->family == AF_INET ||
	    !(flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED))) {
		if (have_len != prefixlen)
			log_warnx("float: %s is there with prefix length %d: "
			    "kept as it is", what, have_len);
		return 0;
	}
	log_info("float: %s is there but %s: adding it again without "
	    "duplicate address detection", what,
	    flags & IFA_F_DADFAILED ? "failed duplicate address detection" :
	    "tentative");
	if ((rc = addr_request(nl, ifindex, a, have_len, 0, kerr,
	    sizeof(kerr))) < 0 && rc != -EADDRNOTAVAIL) {
		err_set(err, errlen, "%s: cannot remove the tentative "
		    "address: %s%s", what, strerror(-rc), kerr);
		return rc;
	}
	return 1;
}

int
nl_float_add(const char *ifname, const struct grgw_addr *a, int prefixlen,
    char *err, size_t errlen)
{
	struct gwnl		*nl = NULL;
	struct rtnl_addr	*have = NULL;
	char			 what[IF_NAMESIZE + INET6_ADDRSTRLEN + 16];
	char			 abuf[INET6_ADDRSTRLEN], kerr[200];
	int			 rc, ifindex;

	if ((rc = float_check(ifname, a, err, errlen)) < 0)
		return rc;
	if (prefixlen < 1 || prefixlen > addr_len(a->family) * 8) {
		err_set(err, errlen, "%s: prefix length %d out of range",
		    ifname, prefixlen);
		return -EINVAL;
	}
	snprintf(what, sizeof(what), "%s/%d on %s",
	    addr_fmt(a, abuf, sizeof(abuf)), prefixlen, ifname);
	if ((rc = float_open(ifname, &nl, err, errlen)) < 0)
		return rc;
	if ((rc = ifindex = float_ifindex(nl, ifname, err, errlen)) < 0 ||
	    (rc = addr_find_err(nl, ifindex, a, &have, ifname, err,
	    errlen)) < 0)
		goto cleanup;
	if (rc == 1 && (rc = addr_keep_or_replace(nl, ifindex, have, a,
	    prefixlen, what, err, errlen)) <= 0)
		goto cleanup;
	rc = addr_request(nl, ifindex, a, prefixlen, 1, kerr, sizeof(kerr));
	if (rc == -EEXIST)
		rc = 0;		/* added meanwhile by someone else */
	else if (rc < 0)
		err_set(err, errlen, "%s: cannot add it: %s%s", what,
		    strerror(-rc), kerr);
	else {
		log_info("float: %s added", what);
		rc = 1;
	}

cleanup:
	if (have != NULL)
		rtnl_addr_put(have);
	gwnl_close(nl);
	return rc;
}

int
nl_float_del(const char *ifname, const struct grgw_addr *a, char *err,
    size_t errlen)
{
	struct gwnl		*nl = NULL;
	struct rtnl_addr	*have = NULL;
	char			 abuf[INET6_ADDRSTRLEN], kerr[200];
	int			 rc, ifindex;

	if ((rc = float_check(ifname, a, err, errlen)) < 0)
		return rc;
	if ((rc = float_open(ifname, &nl, err, errlen)) < 0)
		return rc;
	if ((rc = ifindex = float_ifindex(nl, ifname, err, errlen)) < 0) {
		/* Gone with its interface: what the caller wants. */
		if (rc == -ENODEV) {
			if (err != NULL && errlen > 0)
				err[0] = '\0';
			rc = 0;
		}
		goto cleanup;
	}
	if ((rc = addr_find_err(nl, ifindex, a, &have, ifname, err,
	    errlen)) <= 0)
		goto cleanup;
	rc = addr_request(nl, ifindex, a, rtnl_addr_get_prefixlen(have), 0,
	    kerr, sizeof(kerr));
	addr_fmt(a, abuf, sizeof(abuf));
	if (rc == -EADDRNOTAVAIL)
		rc = 0;		/* removed meanwhile */
	else if (rc < 0)
		err_set(err, errlen, "%s on %s: cannot remove it: %s%s", abuf,
		    ifname, strerror(-rc), kerr);
	else {
		log_info("float: %s on %s removed", abuf, ifname);
		rc = 1;
	}

cleanup:
	if (have != NULL)
		rtnl_addr_put(have);
	gwnl_close(nl);
	return rc;
}

int
nl_float_has(const char *ifname, const struct grgw_addr *a, char *err,
    size_t errlen)
{
	struct gwnl		*nl = NULL;
	struct rtnl_addr	*have = NULL;
	int			 rc, ifindex;

	if ((rc = float_check(ifname, a, err, errlen)) < 0)
		return rc;
	if ((rc = float_open(ifname, &nl, err, errlen)) < 0)
		return rc;
	if ((rc = ifindex = float_ifindex(nl, ifname, err, errlen)) >= 0)
		rc = addr_find_err(nl, ifindex, a, &have, ifname, err, errlen);
	if (have != NULL)
		rtnl_addr_put(have);
	gwnl_close(nl);
	return rc;
}

/* ---- announcements -------------------------------------------------- */

/* The interface's index and Ethernet address, if it is up.  0 or -errno. */
static int
link_get(struct gwnl *nl, const char *ifname, struct float_link *out,
    char *err, size_t errlen)
{
	static const uint8_t	 zero[ETH_ALEN];
	struct rtnl_link	*link = NULL;
	struct nl_addr		*mac;
	int			 rc;

	gwnl_ack_reset(nl);
	if ((rc = rtnl_link_get_kernel(gwnl_socket(nl), 0, ifname,
	    &link)) < 0) {
		rc = gwnl_ack_error(nl, rc, NULL, 0);
		if (rc == -ENOENT || rc == -ENODEV) {
			err_set(err, errlen, "%s: no such interface", ifname);
			return -ENODEV;
		}
		err_set(err, errlen, "%s: cannot look the interface up: %s",
		    ifname, strerror(-rc));
		return rc;
	}
	out->ifindex = rtnl_link_get_ifindex(link);
	mac = rtnl_link_get_addr(link);
	rc = 0;
	if (rtnl_link_get_arptype(link) != ARPHRD_ETHER || mac == NULL ||
	    nl_addr_get_len(mac) != ETH_ALEN ||
	    memcmp(nl_addr_get_binary_addr(mac), zero, ETH_ALEN) == 0) {
		err_set(err, errlen, "%s: no Ethernet MAC address to announce",
		    ifname);
		rc = -ENXIO;
	} else if (!(rtnl_link_get_flags(link) & IFF_UP)) {
		err_set(err, errlen, "%s: interface is down", ifname);
		rc = -ENETDOWN;
	} else
		memcpy(out->mac, nl_addr_get_binary_addr(mac), ETH_ALEN);
	rtnl_link_put(link);
	return rc;
}

/*
 * Announcing an address this host does not hold would pull its traffic
 * away from the one that does; an IPv6 address still in duplicate
 * address detection cannot be a source.  So it must be here, usable (on
 * any interface: it may sit on the bridge whose port announces it).
 */
static int
addr_held(struct gwnl *nl, const struct grgw_addr *a, const char *ifname,
    char *err, size_t errlen)
{
	struct rtnl_addr	*have = NULL;
	char			 abuf[INET6_ADDRSTRLEN];
	unsigned int		 flags;
	int			 rc;

	if ((rc = addr_find_err(nl, 0, a, &have, ifname, err, errlen)) < 0)
		return rc;
	addr_fmt(a, abuf, sizeof(abuf));
	if (rc == 0) {
		err_set(err, errlen, "%s: %s is not an address of this host: "
		    "not announced", ifname, abuf);
		return -EADDRNOTAVAIL;
	}
	flags = rtnl_addr_get_flags(have);
	rtnl_addr_put(have);
	if (flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED)) {
		err_set(err, errlen, "%s: %s is %s: not announced", ifname,
		    abuf, flags & IFA_F_DADFAILED ? "a duplicate (failed "
		    "duplicate address detection)" : "still tentative");
		return -EADDRNOTAVAIL;
	}
	return 0;
}

static int
garp_send(const struct float_link *l, const struct grgw_addr *a,
    const char *ifname, char *err, size_t errlen)
{
	struct sockaddr_ll	 sll;
	struct float_arp	 arp;
	ssize_t			 n;
	int			 fd, rc = 0;

	/* Protocol 0: this socket sends and never receives a frame. */
	if ((fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1) {
		rc = -errno;
		err_set(err, errlen, "%s: packet socket: %s", ifname,
		    strerror(errno));
		return rc;
	}
	memset(&sll, 0, sizeof(sll));
	sll.sll_family = AF_PACKET;
	sll.sll_ifindex = l->ifindex;
	if (bind(fd, (struct sockaddr *)&sll, sizeof(sll)) == -1) {
		rc = -errno;
		err_set(err, errlen, "%s: packet socket: bind: %s", ifname,
		    strerror(errno));
		goto cleanup;
	}
	memset(&arp, 0, sizeof(arp));
	arp.hrd = htons(ARPHRD_ETHER);
	arp.pro = htons(ETHERTYPE_IP);
	arp.hln = ETH_ALEN;
	arp.pln = 4;
	arp.op = htons(ARPOP_REQUEST);
	memcpy(arp.sha, l->mac, ETH_ALEN);
	memcpy(arp.spa, a->addr, 4);
	memcpy(arp.tpa, a->addr, 4);		/* tha stays zero */
	sll.sll_protocol = htons(ETH_P_ARP);
	sll.sll_halen = ETH_ALEN;
	memset(sll.sll_addr, 0xff, ETH_ALEN);
	n = sendto(fd, &arp, sizeof(arp), 0, (struct sockaddr *)&sll,
	    sizeof(sll));
	if (n != (ssize_t)sizeof(arp)) {
		rc = n == -1 ? -errno : -EIO;
		err_set(err, errlen, "%s: gratuitous ARP: %s", ifname,
		    n == -1 ? strerror(errno) : "short send");
	}

cleanup:
	close(fd);
	return rc;
}

/*
 * The router flag of the advertisement says what the kernel would say
 * (forwarding on the interface): clearing it on a router would make the
 * neighbours drop it from their default routers.
 */
static int
ipv6_forwarding(const char *ifname)
{
	char	 path[96];
	FILE	*f;
	int	 c = '0';

	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/forwarding",
	    ifname);
	if ((f = fopen(path, "re")) != NULL) {
		c = fgetc(f);
		fclose(f);
	}
	return c != EOF && c != '0';
}

static void
na_build(const struct float_link *l, const struct grgw_addr *a, int router,
    uint8_t *buf)
{
	struct nd_neighbor_advert	 na;
	struct nd_opt_hdr		 opt;

	memset(&na, 0, sizeof(na));
	na.nd_na_type = ND_NEIGHBOR_ADVERT;
	na.nd_na_code = 0;
	na.nd_na_cksum = 0;		/* the kernel fills it in */
	na.nd_na_flags_reserved = ND_NA_FLAG_OVERRIDE |
	    (router ? ND_NA_FLAG_ROUTER : 0);	/* not solicited */
	memcpy(&na.nd_na_target, a->addr, sizeof(na.nd_na_target));
	opt.nd_opt_type = ND_OPT_TARGET_LINKADDR;
	opt.nd_opt_len = 1;			/* 8 octets */
	memcpy(buf, &na, sizeof(na));
	memcpy(buf + sizeof(na), &opt, sizeof(opt));
	memcpy(buf + sizeof(na) + sizeof(opt), l->mac, ETH_ALEN);
}

/* Nothing is read from the socket: let nothing queue on it. */
static int
na_socket(const char *ifname, char *err, size_t errlen)
{
	struct icmp6_filter	 filter;
	int			 fd, off = 0, hops = 255, rc;

	if ((fd = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC,
	    IPPROTO_ICMPV6)) == -1) {
		rc = -errno;
		err_set(err, errlen, "%s: ICMPv6 socket: %s", ifname,
		    strerror(errno));
		return rc;
	}
	ICMP6_FILTER_SETBLOCKALL(&filter);
	if (setsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER, &filter,
	    sizeof(filter)) == -1 ||
	    setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &off,
	    sizeof(off)) == -1 ||
	    setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops,
	    sizeof(hops)) == -1) {
		rc = -errno;
		err_set(err, errlen, "%s: ICMPv6 socket options: %s", ifname,
		    strerror(errno));
		close(fd);
		return rc;
	}
	return fd;
}

/* One IPv6 control message in c (room checked by the caller's buffer). */
static struct cmsghdr *
cmsg_put(struct cmsghdr *c, int type, const void *data, size_t len)
{
	c->cmsg_level = IPPROTO_IPV6;
	c->cmsg_type = type;
	c->cmsg_len = CMSG_LEN(len);
	memcpy(CMSG_DATA(c), data, len);
	return c;
}

/*
 * To ff02::1 on the interface, from the address (IPV6_PKTINFO), with hop
 * limit 255 (RFC 4861 7.1.2: receivers drop any other).
 */
static int
na_send(const struct float_link *l, const struct grgw_addr *a,
    const char *ifname, char *err, size_t errlen)
{
	struct sockaddr_in6	 dst;
	struct in6_pktinfo	 pi;
	struct msghdr		 m;
	struct iovec		 iov;
	struct cmsghdr		*c;
	union {
		char		 buf[CMSG_SPACE(sizeof(pi)) +
				     CMSG_SPACE(sizeof(int))];
		struct cmsghdr	 align;
	} cm;
	uint8_t			 pkt[NA_LEN];
	ssize_t			 n;
	int			 fd, hops = 255, rc = 0;

	if ((fd = na_socket(ifname, err, errlen)) < 0)
		return fd;
	na_build(l, a, ipv6_forwarding(ifname), pkt);
	memset(&dst, 0, sizeof(dst));
	dst.sin6_family = AF_INET6;
	dst.sin6_addr.s6_addr[0] = 0xff;	/* ff02::1, all nodes */
	dst.sin6_addr.s6_addr[1] = 0x02;
	dst.sin6_addr.s6_addr[15] = 0x01;
	dst.sin6_scope_id = (uint32_t)l->ifindex;
	memset(&pi, 0, sizeof(pi));
	memcpy(&pi.ipi6_addr, a->addr, sizeof(pi.ipi6_addr));
	pi.ipi6_ifindex = (unsigned int)l->ifindex;
	memset(&cm, 0, sizeof(cm));
	iov.iov_base = pkt;
	iov.iov_len = sizeof(pkt);
	memset(&m, 0, sizeof(m));
	m.msg_name = &dst;
	m.msg_namelen = sizeof(dst);
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	m.msg_control = cm.buf;
	m.msg_controllen = sizeof(cm.buf);
	c = cmsg_put(CMSG_FIRSTHDR(&m), IPV6_PKTINFO, &pi, sizeof(pi));
	cmsg_put(CMSG_NXTHDR(&m, c), IPV6_HOPLIMIT, &hops, sizeof(hops));
	if ((n = sendmsg(fd, &m, 0)) != (ssize_t)sizeof(pkt)) {
		rc = n == -1 ? -errno : -EIO;
		err_set(err, errlen, "%s: neighbour advertisement: %s", ifname,
		    n == -1 ? strerror(errno) : "short send");
	}
	close(fd);
	return rc;
}

/*
 * The checks, a route socket (*nl, the caller's to gwnl_close()) and the
 * interface (link_get()); nothing left open on failure.
 */
static int
link_open(const char *ifname, const struct grgw_addr *a, struct gwnl **nl,
    struct float_link *l, char *err, size_t errlen)
{
	int	 rc;

	if ((rc = float_check(ifname, a, err, errlen)) < 0 ||
	    (rc = float_open(ifname, nl, err, errlen)) < 0)
		return rc;
	if ((rc = link_get(*nl, ifname, l, err, errlen)) < 0) {
		gwnl_close(*nl);
		*nl = NULL;
	}
	return rc;
}

int
float_announce(const char *ifname, const struct grgw_addr *a, char *err,
    size_t errlen)
{
	struct gwnl		*nl = NULL;
	struct float_link	 l = { 0 };
	int			 rc;

	if ((rc = link_open(ifname, a, &nl, &l, err, errlen)) < 0)
		return rc;
	rc = addr_held(nl, a, ifname, err, errlen);
	gwnl_close(nl);
	if (rc < 0)
		return rc;
	if (a->family == AF_INET)
		return garp_send(&l, a, ifname, err, errlen);
	return na_send(&l, a, ifname, err, errlen);
}

/* ---- where a handover's drain sends -------------------------------- */

/* The states of an entry whose link-layer address can be used. */
#define NEIGH_USABLE	(NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE | \
			    NUD_PERMANENT | NUD_NOARP)

/* nb's Ethernet address on ifindex, as the kernel's neighbour table has it. */
static int
neigh_mac(struct gwnl *nl, int ifindex, const char *ifname,
    const struct grgw_addr *nb, uint8_t mac[ETH_ALEN], char *err,
    size_t errlen)
{
	static const uint8_t	 zero[ETH_ALEN];
	char			 buf[INET6_ADDRSTRLEN];
	struct nl_cache		*cache = NULL;
	struct nl_addr		*dst, *ll;
	struct rtnl_neigh	*ne;
	int			 rc;

	addr_fmt(nb, buf, sizeof(buf));
	if ((dst = nl_addr_build(nb->family, nb->addr,
	    (size_t)addr_len(nb->family))) == NULL) {
		err_set(err, errlen, "out of memory");
		return -ENOMEM;
	}
	gwnl_ack_reset(nl);
	if ((rc = rtnl_neigh_alloc_cache(gwnl_socket(nl), &cache)) < 0) {
		rc = gwnl_ack_error(nl, rc, NULL, 0);
		err_set(err, errlen, "%s: cannot read the neighbour table: %s",
		    ifname, strerror(-rc));
		nl_addr_put(dst);
		return rc;
	}
	ne = rtnl_neigh_get(cache, ifindex, dst);
	nl_addr_put(dst);
	rc = -EHOSTUNREACH;
	if (ne == NULL)
		err_set(err, errlen, "%s: no neighbour entry for %s", ifname,
		    buf);
	else if (!(rtnl_neigh_get_state(ne) & NEIGH_USABLE))
		err_set(err, errlen, "%s: the neighbour entry for %s is not "
		    "usable (state 0x%x)", ifname, buf,
		    (unsigned int)rtnl_neigh_get_state(ne));
	else if ((ll = rtnl_neigh_get_lladdr(ne)) == NULL ||
	    nl_addr_get_len(ll) != ETH_ALEN ||
	    memcmp(nl_addr_get_binary_addr(ll), zero, ETH_ALEN) == 0)
		err_set(err, errlen, "%s: the neighbour entry for %s has no "
		    "Ethernet address", ifname, buf);
	else {
		memcpy(mac, nl_addr_get_binary_addr(ll), ETH_ALEN);
		rc = 0;
	}
	if (ne != NULL)
		rtnl_neigh_put(ne);
	nl_cache_free(cache);
	return rc;
}

int
float_drain_macs(const char *ifname, const struct grgw_addr *nb,
    uint8_t own[ETH_ALEN], uint8_t nbmac[ETH_ALEN], char *err, size_t errlen)
{
	struct gwnl		*nl = NULL;
	struct float_link	 l = { 0 };
	int			 rc;

	if ((rc = link_open(ifname, nb, &nl, &l, err, errlen)) < 0)
		return rc;
	if ((rc = neigh_mac(nl, l.ifindex, ifname, nb, nbmac, err,
	    errlen)) == 0)
		memcpy(own, l.mac, ETH_ALEN);
	gwnl_close(nl);
	return rc;
}
