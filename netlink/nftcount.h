/*
 * nftcount.c: the named counters in an `nft list counters` listing.
 * Pure; depends on nothing but the C library.  Also reached through
 * netlink.h.
 */
#ifndef GRGW_NETLINK_NFTCOUNT_H
#define GRGW_NETLINK_NFTCOUNT_H

#include <stddef.h>
#include <stdint.h>

#define GWNL_NFT_NAMES_MAX	64	/* names looked for in one call */

/*
 * Sets packets[i] and bytes[i] for each names[i] found in text (len
 * bytes, need not be NUL-terminated); returns how many of the names
 * were found (each once: a name listed twice gets the numbers of its
 * last listing), or -1 if n is above GWNL_NFT_NAMES_MAX.  Never reads
 * past len.  text, names, packets and bytes are the caller's (names: n
 * NUL-terminated strings; packets, bytes: n entries); nothing is kept.
 */
int	gwnl_nft_counters_parse(const char *text, size_t len,
	    const char *const *names, size_t n, uint64_t *packets,
	    uint64_t *bytes);

#endif /* GRGW_NETLINK_NFTCOUNT_H */
