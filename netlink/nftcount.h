/*
 * nftcount.c: the named counters in an `nft list counters` listing.
 * Pure; depends on nothing but the C library.  Also reached through
 * netlink.h.
 */
#ifndef GRGW_NETLINK_NFTCOUNT_H
#define GRGW_NETLINK_NFTCOUNT_H

#include <stddef.h>
#include <stdint.h>

/*
 * Sets packets[i] and bytes[i] for each names[i] found in text (len
 * bytes, need not be NUL-terminated); returns how many were.  Never
 * reads past len.  text, names, packets and bytes are the caller's
 * (names: n NUL-terminated strings; packets, bytes: n entries); nothing
 * is kept.
 */
int	gwnl_nft_counters_parse(const char *text, size_t len,
	    const char *const *names, size_t n, uint64_t *packets,
	    uint64_t *bytes);

#endif /* GRGW_NETLINK_NFTCOUNT_H */
