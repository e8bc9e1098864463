/*
 * Cleanup: walk the record from its last object to its first and remove
 * each object with the remover of its kind.  This is the one file that
 * knows every kind of object netlink/ installs; the files that install
 * them export their removers through internal.h.
 */
#include <sys/queue.h>

#include <errno.h>

#include "grgw.h"
#include "netlink/netlink.h"
#include "netlink/record.h"
#include "netlink/internal.h"

/* o (borrowed; desc, its line) with the remover of its kind: 0
 * removed, 1 already gone, -errno (logged). */
static int
remove_one(struct gwnl *nl, const struct rec_obj *o, const char *desc)
{
	switch (o->kind) {
	case REC_RULE:
		return gwnl_rule_remove(nl, o, desc);
	case REC_ROUTE:
		return gwnl_route_remove(nl, o, desc);
	case REC_LINK:
		return gwnl_xfrmi_remove(nl, o, desc);
	case REC_SYSCTL:
		return gwnl_sysctl_restore(o, desc);
	case REC_NFT:
		return gwnl_nft_remove(o, desc);
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
	struct rec_list	*rec = gwnl_record(nl);
	struct rec_obj	*o, *prev;
	char		 desc[REC_LINE_MAX];
	int		 rc, ret = 0, before, after, block;

	before = rec_count(rec, NULL, NULL);
	for (o = TAILQ_LAST(&rec->objs, rec_objs); o != NULL; o = prev) {
		prev = TAILQ_PREV(o, rec_objs, entry);
		if (o->kind == REC_UNPARSED) {
			log_warnx("%s:%d: line not understood, left in the "
			    "record; check the kernel state and remove it by "
			    "hand", gwnl_record_path(nl), o->lineno);
			ret = -1;
			continue;
		}
		if (o->tag == REC_BLOCK && !purge)
			continue;
		gwnl_describe(o, desc, sizeof(desc));
		if ((rc = remove_one(nl, o, desc)) < 0) {
			ret = -1;
			continue;
		}
		if (rc == 1)
			log_debug("%s: already gone", desc);
		else
			log_debug("%s: removed", desc);
		rec_remove(rec, o);
	}
	if (gwnl_record_save(nl) < 0)
		ret = -1;
	after = rec_count(rec, &block, NULL);
	log_info("kernel state: %d object(s) removed, %d left%s", before - after,
	    after, block == after && after > 0 ? " (fail-closed layer)" : "");
	return ret;
}
