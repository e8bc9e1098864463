/*
 * libFuzzer harness for the nftables counter listing parser
 * (netlink/nftcount.c), which turns `nft list counters` output into the
 * per-class numbers of `grgw status` and the metrics.
 *
 * The input is used two ways:
 *  - as a listing (an exact-length copy, so a read past the end is
 *    caught), looked up for a fixed set of class counter names: the
 *    count returned never exceeds the number of names, nor falls below
 *    the number of names whose numbers were set; a name is only set if
 *    it occurs in the text, and only to numbers written in the text;
 *    the order of the names, and which other names are asked for, change
 *    nothing;
 *  - as the names, numbers and layout of a listing the harness writes
 *    the way nft does (names quoted or not, comments, handles, other
 *    counters and quotas in between, packets on the line of the name or
 *    below): every counter written is found, with exactly its numbers,
 *    and a name that is not in the listing is left untouched.
 *
 * The seed corpus (tests/fuzz/corpus/nftcount/) holds listings printed
 * by nft 1.0 for tables like grgw's.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netlink/nftcount.h"

#define INPUT_MAX	(64 * 1024)
#define UNSET		0x5a5a5a5a5a5a5a5aULL
#define GEN_MAX		8		/* counters in a generated listing */
#define NAME_LEN	40
#define LISTING_MAX	8192

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static const char *const fixed_names[] = {
	"cls_voice", "cls_video", "cls_oam", "cls_bulk", "cls_default", "cls_x"
};
#define N_FIXED	(sizeof(fixed_names) / sizeof(fixed_names[0]))

/* Parse an exact-length malloc'ed copy of text[len]. */
static int
parse_copy(const char *text, size_t len, const char *const *names, size_t n,
    uint64_t *pk, uint64_t *by)
{
	char	*copy;
	size_t	 i;
	int	 rc;

	for (i = 0; i < n; i++)
		pk[i] = by[i] = UNSET;
	if ((copy = malloc(len > 0 ? len : 1)) == NULL)
		abort();
	if (len > 0)
		memcpy(copy, text, len);
	rc = gwnl_nft_counters_parse(copy, len, names, n, pk, by);
	free(copy);
	return rc;
}

static int
text_has(const char *text, size_t len, const char *s)
{
	return memmem(text, len, s, strlen(s)) != NULL;
}

static int
text_has_number(const char *text, size_t len, uint64_t v)
{
	char	 d[24];

	snprintf(d, sizeof(d), "%" PRIu64, v);
	return text_has(text, len, d);
}

/* ---- any text ------------------------------------------------------- */

static void
fuzz_text(const char *text, size_t len)
{
	const char	*rev[N_FIXED];
	uint64_t	 pk[N_FIXED], by[N_FIXED], rpk[N_FIXED], rby[N_FIXED];
	uint64_t	 hpk[N_FIXED], hby[N_FIXED];
	size_t		 i, n = N_FIXED, half = N_FIXED / 2;
	int		 rc, set = 0;

	rc = parse_copy(text, len, fixed_names, n, pk, by);
	if (rc < 0 || (size_t)rc > n)
		abort();
	for (i = 0; i < n; i++) {
		if (pk[i] == UNSET && by[i] == UNSET)
			continue;
		set++;
		/* Only names and numbers that are in the text. */
		if (!text_has(text, len, fixed_names[i]) ||
		    !text_has_number(text, len, pk[i]) ||
		    !text_has_number(text, len, by[i]))
			abort();
	}
	if (set > rc)
		abort();

	/* The order of the names changes nothing. */
	for (i = 0; i < n; i++)
		rev[i] = fixed_names[n - 1 - i];
	if (parse_copy(text, len, rev, n, rpk, rby) != rc)
		abort();
	for (i = 0; i < n; i++)
		if (rpk[n - 1 - i] != pk[i] || rby[n - 1 - i] != by[i])
			abort();
	/* Nor do the other names asked for. */
	rc = parse_copy(text, len, fixed_names, half, hpk, hby);
	if (rc < 0 || (size_t)rc > half)
		abort();
	for (i = 0; i < half; i++)
		if (hpk[i] != pk[i] || hby[i] != by[i])
			abort();
	if (parse_copy(text, len, fixed_names, 0, hpk, hby) != 0)
		abort();
}

/* ---- a listing written the way nft writes it -------------------------- */

struct bytes {
	const uint8_t	*p;
	size_t		 left;
};

static uint8_t
next_byte(struct bytes *b)
{
	if (b->left == 0)
		return 0;
	b->left--;
	return *b->p++;
}

static uint64_t
next_u64(struct bytes *b)
{
	uint64_t	 v = 0;
	int		 i;

	for (i = 0; i < 8; i++)
		v = v << 8 | next_byte(b);
	return v;
}

/* nft's alphabet for names; "cls_" + these + "_<index>" never repeats. */
static void
gen_name(struct bytes *b, unsigned int index, char *out, size_t size)
{
	static const char alpha[] = "abcdefghijklmnopqrstuvwxyz0123456789_-";
	char		 mid[16];
	size_t		 i, n = 1 + next_byte(b) % 15;

	for (i = 0; i < n; i++)
		mid[i] = alpha[next_byte(b) % (sizeof(alpha) - 1)];
	mid[n] = '\0';
	snprintf(out, size, "cls_%s_%u", mid, index);
}

struct listing {
	char	 text[LISTING_MAX];
	size_t	 len;
};

static void
put(struct listing *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
put(struct listing *l, const char *fmt, ...)
{
	va_list	 ap;
	int	 n;

	va_start(ap, fmt);
	n = vsnprintf(l->text + l->len, sizeof(l->text) - l->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(l->text) - l->len)
		abort();		/* the generator's own limit */
	l->len += (size_t)n;
}

static void
put_counter(struct listing *l, const char *name, uint64_t pk, uint64_t by,
    uint8_t style, unsigned int handle)
{
	static const char *const comments[] = {
		"unclassified", "conference rooms", "bulk: backups, updates",
		"oam"
	};
	const char	*q = (style & 1) ? "\"" : "";

	put(l, "\tcounter %s%s%s {", q, name, q);
	if (style & 4)
		put(l, " # handle %u", handle);
	if (style & 16) {
		/* One line, as in `nft list ruleset` of some versions. */
		put(l, " packets %" PRIu64 " bytes %" PRIu64 " }\n", pk, by);
		return;
	}
	put(l, "\n");
	if (style & 2)
		put(l, "\t\tcomment \"%s\"\n", comments[(style >> 5) & 3]);
	put(l, "\t\tpackets %" PRIu64 " bytes %" PRIu64 "\n\t}\n", pk, by);
}

static void
fuzz_listing(const uint8_t *data, size_t size)
{
	static const char *const absent[] = { "cls_absent", "cls_" };
	struct bytes	 b = { data, size };
	struct listing	*l;
	char		 names[GEN_MAX][NAME_LEN], other[NAME_LEN];
	const char	*ask[GEN_MAX + 2];
	uint64_t	 pk[GEN_MAX], by[GEN_MAX];
	uint64_t	 gpk[GEN_MAX + 2], gby[GEN_MAX + 2];
	size_t		 k, i, n, rot;
	uint8_t		 style;

	if ((l = calloc(1, sizeof(*l))) == NULL)
		abort();
	k = 1 + next_byte(&b) % GEN_MAX;
	put(l, "table inet grgw-qos {\n");
	for (i = 0; i < k; i++) {
		style = next_byte(&b);
		gen_name(&b, (unsigned int)i, names[i], sizeof(names[i]));
		pk[i] = next_u64(&b);
		by[i] = next_u64(&b);
		if (style & 8)		/* mostly small, like real counters */
			pk[i] %= 100000, by[i] %= 100000000;
		if (style & 128) {
			/* Other objects in between: never ours. */
			snprintf(other, sizeof(other), "other_%zu", i);
			put_counter(l, other, by[i], pk[i], style ^ 1,
			    (unsigned int)(100 + i));
			put(l, "\tquota q%zu {\n\t\t25 mbytes used %" PRIu64
			    " bytes\n\t}\n", i, pk[i]);
		}
		put_counter(l, names[i], pk[i], by[i], style,
		    (unsigned int)(2 + i));
	}
	put(l, "}\n");

	/* Ask for them, and for names that are not there, in any order. */
	n = k + 2;
	rot = next_byte(&b) % n;
	for (i = 0; i < n; i++) {
		size_t j = (i + rot) % n;

		ask[i] = j < k ? names[j] : absent[j - k];
	}
	if (parse_copy(l->text, l->len, ask, n, gpk, gby) != (int)k)
		abort();
	for (i = 0; i < n; i++) {
		size_t j = (i + rot) % n;

		if (j < k && (gpk[i] != pk[j] || gby[i] != by[j]))
			abort();
		if (j >= k && (gpk[i] != UNSET || gby[i] != UNSET))
			abort();
	}
	free(l);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > INPUT_MAX)
		return 0;
	fuzz_text((const char *)data, size);
	fuzz_listing(data, size);
	return 0;
}
