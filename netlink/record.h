/*
 * The record of kernel objects grgw installed (internal to netlink/).
 *
 * A text file, one object per line, in the order of installation:
 *
 *   block rule4 pref 4200 iif wan0 from 198.18.2.0/24 blackhole
 *   block rule4 pref 4211 lookup 4211
 *   block route4 table 4211 unreachable 198.18.2.0/24
 *   run sysctl net/ipv4/ip_forward 0
 *   run link grgw0 xfrm if_id 4210
 *   run rule6 pref 4210 lookup 4210
 *   run route6 table 4210 2001:db8:b::/64 dev grgw0
 *   block nft inet grgw-failfast
 *   run qdisc ipsec0 htb 4210:
 *   run offload lan0 gro on
 *
 * Lines starting with '#' are comments and empty lines are allowed; any
 * other line must parse exactly (fixed word order, canonical numbers and
 * prefixes).  Sysctls are named by their path below /proc/sys (slashes,
 * so that interface names with dots stay unambiguous) and must lie below
 * net/.  A line that does not parse is reported with its line number and
 * kept verbatim, so rewriting the record never loses it.
 *
 * Parsing and formatting are pure; rec_load() and rec_save() do the I/O.
 */
#ifndef GRGW_NETLINK_RECORD_H
#define GRGW_NETLINK_RECORD_H

#include <sys/queue.h>

#include <net/if.h>
#include <stddef.h>
#include <stdint.h>

#include "grgw.h"

#define REC_LINE_MAX	512	/* longest line rec_format() produces */
#define REC_SYSCTL_MAX	128	/* path below /proc/sys */
#define REC_VALUE_MAX	24	/* sysctl value (an integer) */

enum rec_tag {
	REC_BLOCK,		/* fail-closed layer, removed only on purge */
	REC_RUN			/* removed by every cleanup */
};

enum rec_kind {
	REC_RULE,
	REC_ROUTE,
	REC_LINK,
	REC_SYSCTL,
	REC_NFT,
	REC_QDISC,		/* a root qdisc; its classes go with it */
	REC_OFFLOAD,		/* an offload grgw switched; value to restore */
	REC_UNPARSED		/* a line we could not read; kept as is */
};

enum rec_rule_action {
	REC_RULE_BLACKHOLE,
	REC_RULE_LOOKUP
};

enum rec_route_type {
	REC_ROUTE_UNICAST,	/* "<prefix> dev <ifname>" */
	REC_ROUTE_UNREACHABLE
};

struct rec_rule {
	int			 family;	/* AF_INET or AF_INET6 */
	uint32_t		 pref;
	char			 iif[IF_NAMESIZE];	/* "" = any */
	int			 has_from;
	struct grgw_prefix	 from;
	enum rec_rule_action	 action;
	uint32_t		 table;		/* REC_RULE_LOOKUP only */
};

struct rec_route {
	int			 family;
	uint32_t		 table;
	enum rec_route_type	 type;
	struct grgw_prefix	 dst;
	char			 dev[IF_NAMESIZE];	/* unicast only */
};

struct rec_link {
	char			 name[IF_NAMESIZE];
	uint32_t		 if_id;		/* kind is always xfrm */
};

struct rec_sysctl {
	char			 path[REC_SYSCTL_MAX];	/* "net/ipv4/ip_forward" */
	char			 value[REC_VALUE_MAX];	/* value to restore */
};

#define REC_NFT_NAME_MAX	32
#define REC_NFT_FAMILY_MAX	8

struct rec_nft {
	char			 family[REC_NFT_FAMILY_MAX]; /* inet ip ip6 arp */
	char			 table[REC_NFT_NAME_MAX];
};

struct rec_qdisc {
	char			 dev[IF_NAMESIZE];
	uint32_t		 handle;	/* major:0; kind is always htb */
};

/* Only GRO is ever switched: the line is "offload IF gro on|off". */
struct rec_offload {
	char			 dev[IF_NAMESIZE];
	int			 on;		/* value to restore */
};

struct rec_obj {
	TAILQ_ENTRY(rec_obj)	 entry;
	enum rec_kind		 kind;
	enum rec_tag		 tag;
	union {
		struct rec_rule	 rule;
		struct rec_route route;
		struct rec_link	 link;
		struct rec_sysctl sysctl;
		struct rec_nft	 nft;
		struct rec_qdisc qdisc;
		struct rec_offload offload;
	} u;
	/* REC_UNPARSED: the line as read (no newline), malloc'ed, owned. */
	char			*text;
	size_t			 textlen;
	int			 lineno;	/* where it was read, or 0 */
};

TAILQ_HEAD(rec_objs, rec_obj);

struct rec_list {
	struct rec_objs		 objs;
	const char		*name;		/* for messages; not owned */
};

/* Empty list; name (not copied, must outlive the list) is used in logs. */
void	rec_init(struct rec_list *l, const char *name);
/* Free every object; the list is empty afterwards.  Accepts NULL. */
void	rec_clear(struct rec_list *l);

/*
 * Parse one line (NUL-terminated, no newline) into *out.  Returns 0 for an
 * object, 1 for a comment or an empty line (*out untouched), -1 with a
 * message in err ("expected ..., got ...") when the line is invalid.
 */
int	rec_parse_line(const char *line, struct rec_obj *out, char *err,
	    size_t errlen);
/*
 * Format an object as one line without newline into buf.  Returns the
 * length, or -1 if buf is too small or the object is invalid.  Unparsed
 * lines are reproduced as read (including bytes a C string can't hold
 * only through rec_write()).
 */
int	rec_format(const struct rec_obj *o, char *buf, size_t size);
/* Is a the same object as b (every field but a value to restore)? */
int	rec_same(const struct rec_obj *a, const struct rec_obj *b);
/* Do a and b describe the same kernel route slot (family, table, dst)? */
int	rec_same_route_slot(const struct rec_obj *a, const struct rec_obj *b);

/*
 * Parse a whole text (the record file's contents).  Objects are appended
 * to l in order; each bad line is logged as "name:line: message" and
 * appended as REC_UNPARSED.  Returns the number of bad lines, or -ENOMEM.
 */
int	rec_parse_text(struct rec_list *l, const char *text, size_t len);
/* Write every object, one per line, to f (header comment first). */
int	rec_write(const struct rec_list *l, FILE *f);

/* Find an object equal (rec_same) to key; NULL if none.  Owned by l. */
struct rec_obj *rec_find(const struct rec_list *l, const struct rec_obj *key);
/* Append a copy of o (not for REC_UNPARSED); returns it or NULL. */
struct rec_obj *rec_append(struct rec_list *l, const struct rec_obj *o);
/* Unlink o from l and free it. */
void	rec_remove(struct rec_list *l, struct rec_obj *o);
/* Number of objects, by tag (block/run may be NULL); unparsed lines are
 * counted in the total only. */
int	rec_count(const struct rec_list *l, int *block, int *run);

/*
 * Load path into l (a missing file is an empty record).  Refuses a file
 * that is not a regular file owned by the effective user, or that group
 * or others may write (the record decides what gets deleted).  Returns 0
 * or -errno; bad lines are not an error here (see rec_parse_text()).
 */
int	rec_load(struct rec_list *l, const char *path);
/*
 * Replace path atomically with the contents of l: write a temporary file
 * in the same directory (mode 0600), fsync, rename, fsync the directory.
 * Missing directories are created with mode 0700.  An empty record
 * removes the file.  Returns 0 or -errno.
 */
int	rec_save(const struct rec_list *l, const char *path);

const char *rec_tag_name(enum rec_tag tag);
/* A family/table pair we are willing to create and delete. */
int	rec_valid_nft(const struct rec_nft *n);
/* strlcpy(3), which this C library lacks: returns strlen(src). */
size_t	rec_strlcpy(char *dst, const char *src, size_t size);

#endif /* GRGW_NETLINK_RECORD_H */
