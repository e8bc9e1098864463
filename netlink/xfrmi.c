/*
 * The xfrm interface of the kernel data plane: created over the WAN
 * interface with grgw's if_id and MTU, brought up, recorded, and removed
 * by cleanup together with whatever SAs and policies charon left bound
 * to it (xfrm.c).  And the detection of that data plane: can this kernel
 * do ESP and xfrm interfaces at all?
 *
 * Errors are -errno, logged here.
 */
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include <linux/if_link.h>

#include <errno.h>
#include <limits.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "netlink/libnl.h"

#include "grgw.h"
#include "netlink/netlink.h"
#include "netlink/record.h"
#include "netlink/internal.h"

/* Random names tried for the throwaway interface of the detection. */
#define PROBE_ATTEMPTS	4

/* ---- the xfrm interface ----------------------------------------------- */

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
	if ((err = rtnl_link_get_kernel(gwnl_socket(nl), 0, name,
	    &link)) < 0) {
		err = gwnl_ack_error(nl, err, NULL, 0);
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
	char			 reason[200];
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
	err = rtnl_link_change(gwnl_socket(nl), link, change, 0);
	rtnl_link_put(change);
	if (err < 0) {
		err = gwnl_ack_error(nl, err, reason, sizeof(reason));
		log_warnx("%s: set up, mtu %u: %s%s", desc, mtu, strerror(-err),
		    reason);
		return err;
	}
	return 0;
}

static void
log_no_xfrmi(const char *name, int err, const char *reason)
{
	log_warnx("xfrm interface %s: kernel has no xfrm interface support "
	    "(xfrm_interface module): %s%s", name, strerror(-err), reason);
}

int
gwnl_xfrmi_create(struct gwnl *nl, const struct grgw_config *cfg)
{
	struct rec_obj		 o;
	struct rtnl_link	*link = NULL;
	struct nl_msg		*msg;
	char			 desc[REC_LINE_MAX], reason[200];
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
	gwnl_describe(&o, desc, sizeof(desc));
	recorded = rec_find(gwnl_record(nl), &o) != NULL;

	if ((msg = gwnl_build_xfrmi_add(name, cfg->if_id, wan,
	    cfg->mtu)) == NULL) {
		log_warnx("%s: cannot build request", desc);
		return -ENOMEM;
	}
	rc = gwnl_request(nl, msg, reason, sizeof(reason));
	if (rc == -EOPNOTSUPP) {
		log_no_xfrmi(name, rc, reason);
		return rc;
	}
	if (rc < 0 && rc != -EEXIST) {
		log_warnx("%s: %s%s", desc, strerror(-rc), reason);
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
	if (!recorded && (rc = gwnl_record_append(nl, &o)) < 0) {
		log_warnx("%s: cannot record it (%s)", desc, strerror(-rc));
		goto cleanup;
	}
	rc = 0;

cleanup:
	if (rc < 0 && created && !recorded) {
		gwnl_ack_reset(nl);
		if (link != NULL)
			(void)rtnl_link_delete(gwnl_socket(nl), link);
	}
	rtnl_link_put(link);
	return rc;
}

int
gwnl_xfrmi_remove(struct gwnl *nl, const struct rec_obj *o, const char *desc)
{
	struct rtnl_link	*link = NULL;
	char			 reason[200];
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
	rc = rtnl_link_delete(gwnl_socket(nl), link);
	rtnl_link_put(link);
	if (rc < 0) {
		rc = gwnl_ack_error(nl, rc, reason, sizeof(reason));
		if (rc == -ENODEV || rc == -ENOENT)
			return 1;
		log_warnx("%s: remove: %s%s", desc, strerror(-rc), reason);
		return rc;
	}
	return 0;
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
	struct gwnl		*nl = NULL;
	struct rtnl_link	*link = NULL;
	struct nl_msg		*msg;
	char			 name[IF_NAMESIZE], reason[200];
	uint32_t		 r;
	int			 i, rc = -EEXIST, ok = 0;

	if (gwnl_open_unrecorded(&nl) < 0)
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
		rc = gwnl_request(nl, msg, reason, sizeof(reason));
	}
	if (rc < 0) {
		log_info("kernel data plane: no xfrm interfaces: %s%s",
		    strerror(-rc), reason);
		goto cleanup;
	}
	ok = 1;
	gwnl_ack_reset(nl);
	if ((rc = rtnl_link_get_kernel(gwnl_socket(nl), 0, name,
	    &link)) < 0 ||
	    (rc = rtnl_link_delete(gwnl_socket(nl), link)) < 0) {
		rc = gwnl_ack_error(nl, rc, NULL, 0);
		log_warnx("probe interface %s: cannot delete it: %s; remove "
		    "it with `ip link del %s`", name, strerror(-rc), name);
	}

cleanup:
	rtnl_link_put(link);
	gwnl_close(nl);
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
