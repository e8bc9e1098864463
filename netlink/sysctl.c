/*
 * Sysctls: IP forwarding and strict reverse path filtering on the WAN
 * interface.  The value found is recorded before a sysctl is changed and
 * put back by cleanup, so `grgw down --purge` leaves the kernel as it
 * was.  Only integer sysctls below /proc/sys/net are ever touched.
 *
 * Errors are -errno, logged here.
 */
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "grgw.h"
#include "netlink/netlink.h"
#include "netlink/record.h"
#include "netlink/internal.h"

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
	struct rec_list	*rec = gwnl_record(nl);
	struct rec_obj	 o, *have;
	int		 rc;

	memset(&o, 0, sizeof(o));
	o.kind = REC_SYSCTL;
	o.tag = tag;
	if (rec_strlcpy(o.u.sysctl.path, path, sizeof(o.u.sysctl.path)) >=
	    sizeof(o.u.sysctl.path))
		return -ENAMETOOLONG;

	if ((have = rec_find(rec, &o)) == NULL) {
		if ((rc = sysctl_read(path, o.u.sysctl.value)) < 0) {
			if (rc == -ENOENT && optional) {
				log_info("sysctl %s: not present, skipped",
				    path);
				return 0;
			}
			log_warnx("sysctl %s: read: %s", path, strerror(-rc));
			return rc;
		}
		if ((rc = gwnl_record_append(nl, &o)) < 0) {
			log_warnx("sysctl %s: cannot record its value (%s); "
			    "not changing it", path, strerror(-rc));
			return rc;
		}
	}
	if ((rc = sysctl_write(path, value)) < 0) {
		log_warnx("sysctl %s = %s: %s", path, value, strerror(-rc));
		if (have == NULL && (have = rec_find(rec, &o)) != NULL) {
			rec_remove(rec, have);
			(void)gwnl_record_save(nl);
		}
		return rc;
	}
	log_debug("sysctl %s = %s (to restore: %s)", path, value,
	    have != NULL ? have->u.sysctl.value : o.u.sysctl.value);
	return 0;
}

int
gwnl_sysctl_restore(const struct rec_obj *o, const char *desc)
{
	int	 rc;

	rc = sysctl_write(o->u.sysctl.path, o->u.sysctl.value);
	if (rc == -ENOENT)
		return 1;	/* e.g. the interface is gone */
	if (rc < 0)
		log_warnx("%s: restore: %s", desc, strerror(-rc));
	return rc;
}

/* Has side s a prefix of this family?  (route.c has its own copy: the two
 * files do not call each other.) */
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
	int	 rc, v4, v6;
	const char *wan = cfg->site.wan_interface;

	if (wan[0] == '\0' || strchr(wan, '/') != NULL ||
	    strcmp(wan, ".") == 0 || strcmp(wan, "..") == 0) {
		log_warnx("forwarding: bad WAN interface name '%s'", wan);
		return -EINVAL;
	}
	/* Only the families the sites use: an IPv4-only gateway is not made
	 * an IPv6 router (and the other way round). */
	v4 = config_has_family(&cfg->site, AF_INET) ||
	    config_has_family(&cfg->peer, AF_INET);
	v6 = config_has_family(&cfg->site, AF_INET6) ||
	    config_has_family(&cfg->peer, AF_INET6);

	/*
	 * Part of the fail-closed layer: without forwarding the kernel drops
	 * packets that hit the unreachable routes silently instead of
	 * answering them, and senders would wait for a timeout.  Strict
	 * reverse path filtering on the WAN keeps refusing clear text that
	 * claims a peer address.  So a plain `down` keeps these too.
	 */
	if (v4 && (rc = sysctl_set(nl, REC_BLOCK, "net/ipv4/ip_forward", "1",
	    0)) < 0)
		return rc;
	if (v6 && (rc = sysctl_set(nl, REC_BLOCK,
	    "net/ipv6/conf/all/forwarding", "1", 0)) < 0)
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

