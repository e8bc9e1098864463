/*
 * The named counters in an `nft list counters` listing: a pure parser
 * over a buffer (no libnftables, no libnl), so that tests and a fuzzer
 * link it alone.  qos.c runs nft and hands the listing here.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "netlink/nftcount.h"

/* Digits only, no overflow.  0 or -1. */
static int
parse_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t	 v = 0;
	size_t		 i;

	if (len == 0 || len > 20)
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

/* The next whitespace-separated word of [*p, end); its length. */
static size_t
next_word(const char **p, const char *end, const char **word)
{
	const char	*s = *p;

	while (s < end && (*s == ' ' || *s == '\t' || *s == '\n' ||
	    *s == '\r'))
		s++;
	*word = s;
	while (s < end && *s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
		s++;
	*p = s;
	return (size_t)(s - *word);
}

static int
word_is(const char *w, size_t n, const char *lit)
{
	return n == strlen(lit) && memcmp(w, lit, n) == 0;
}

int
gwnl_nft_counters_parse(const char *text, size_t len,
    const char *const *names, size_t n, uint64_t *packets, uint64_t *bytes)
{
	const char	*p = text, *end = text + len, *w, *name = NULL;
	size_t		 wl, nl = 0, i;
	uint64_t	 pk, by;
	unsigned char	 seen[GWNL_NFT_NAMES_MAX];
	int		 found = 0;

	if (text == NULL)
		return 0;
	if (n > GWNL_NFT_NAMES_MAX)
		return -1;
	memset(seen, 0, sizeof(seen));
	/*
	 * The listing is a stream of words: "counter NAME {", then
	 * "packets N bytes M", then "}".  Names may be quoted.  Anything
	 * else (comments, other objects) is skipped.
	 */
	while ((wl = next_word(&p, end, &w)) != 0) {
		if (word_is(w, wl, "counter")) {
			if ((nl = next_word(&p, end, &name)) == 0)
				break;
			if (nl >= 2 && name[0] == '"' && name[nl - 1] == '"') {
				name++;
				nl -= 2;
			}
			continue;
		}
		if (name == NULL || !word_is(w, wl, "packets"))
			continue;
		if ((wl = next_word(&p, end, &w)) == 0 ||
		    parse_u64(w, wl, &pk) == -1)
			continue;
		if ((wl = next_word(&p, end, &w)) == 0 ||
		    !word_is(w, wl, "bytes"))
			continue;
		if ((wl = next_word(&p, end, &w)) == 0 ||
		    parse_u64(w, wl, &by) == -1)
			continue;
		for (i = 0; i < n; i++) {
			if (strlen(names[i]) != nl ||
			    memcmp(names[i], name, nl) != 0)
				continue;
			packets[i] = pk;
			bytes[i] = by;
			/* Listed twice (a listing of every table): once. */
			if (!seen[i])
				found++;
			seen[i] = 1;
			break;
		}
		name = NULL;
	}
	return found;
}
