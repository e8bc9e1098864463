/*
 * libFuzzer harness for the record parser (netlink/record.c).  The
 * record decides what `grgw down` deletes, so what is read back must be
 * exactly what was written, and a line that cannot be read must survive
 * every rewrite.
 *
 * The input is the contents of a record file.  Whatever it holds:
 *  - nothing is read past its end (the parser gets an exact-length
 *    copy);
 *  - rec_parse_text() agrees with rec_parse_line() on every line: an
 *    object where the line parses, nothing for a comment or an empty
 *    line, and where it does not parse (a NUL byte, a control character,
 *    a bad word) a REC_UNPARSED entry holding the line byte for byte,
 *    with its line number, and a reason; the count of those is returned;
 *  - every object formats (rec_format()) to one line that parses back to
 *    the same object: rec_same(), the same tag, the same value to
 *    restore; formatted again, the same line (one spelling per object);
 *  - rec_same() is reflexive for objects and symmetric;
 *  - the whole list written out (rec_write()) and parsed again is the
 *    same list, in the same order, unparsed lines verbatim; writing that
 *    gives the same bytes again.
 *
 * The seed corpus (tests/fuzz/corpus/record/) holds record files as
 * grgw writes them, with every kind of object, and a few with lines
 * that do not parse.
 */
#include <sys/queue.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grgw.h"
#include "netlink/record.h"

#define INPUT_MAX	(64 * 1024)

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Equal in every field a record line carries. */
static void
check_same(const struct rec_obj *a, const struct rec_obj *b)
{
	if (a->kind == REC_UNPARSED || b->kind == REC_UNPARSED)
		abort();
	if (!rec_same(a, b) || !rec_same(b, a) || a->tag != b->tag)
		abort();
	if (a->kind == REC_SYSCTL &&
	    strcmp(a->u.sysctl.value, b->u.sysctl.value) != 0)
		abort();
	if (a->kind == REC_OFFLOAD && a->u.offload.on != b->u.offload.on)
		abort();
}

/* One object: formatted, parsed back, formatted again. */
static void
check_roundtrip(const struct rec_obj *o)
{
	struct rec_obj	 p;
	char		 line[REC_LINE_MAX], again[REC_LINE_MAX], err[256];
	int		 n;

	if (!rec_same(o, o))
		abort();
	n = rec_format(o, line, sizeof(line));
	if (n <= 0 || (size_t)n != strlen(line) || strchr(line, '\n') != NULL)
		abort();
	if (rec_parse_line(line, &p, err, sizeof(err)) != 0)
		abort();
	check_same(o, &p);
	if (rec_format(&p, again, sizeof(again)) != n ||
	    strcmp(line, again) != 0)
		abort();
}

/*
 * The list against the text, line by line, as a record file is read:
 * lines end at '\n', the last one may lack it.
 */
static void
check_lines(const char *text, size_t len, const struct rec_list *l, int bad)
{
	const struct rec_obj	*o = TAILQ_FIRST(&l->objs), *prev = NULL;
	const char		*line, *nl, *end = text + len;
	struct rec_obj		 p;
	char			*copy, err[256];
	size_t			 n;
	int			 lineno = 0, nbad = 0, rc;

	for (line = text; line < end; line = nl + 1) {
		lineno++;
		if ((nl = memchr(line, '\n', (size_t)(end - line))) == NULL)
			nl = end;
		n = (size_t)(nl - line);
		err[0] = '\0';
		if (memchr(line, '\0', n) != NULL)
			rc = -1;
		else {
			if ((copy = malloc(n + 1)) == NULL)
				abort();
			memcpy(copy, line, n);
			copy[n] = '\0';
			rc = rec_parse_line(copy, &p, err, sizeof(err));
			free(copy);
			/* Every refusal says why. */
			if (rc == -1 && err[0] == '\0')
				abort();
		}
		if (rc == 1)
			continue;
		if (o == NULL || o->lineno != lineno)
			abort();
		if (rc == 0) {
			check_same(o, &p);
			check_roundtrip(o);
		} else {
			if (o->kind != REC_UNPARSED || o->text == NULL ||
			    o->textlen != n || memcmp(o->text, line, n) != 0 ||
			    o->text[n] != '\0')
				abort();
			nbad++;
		}
		if (prev != NULL && prev->kind != REC_UNPARSED &&
		    o->kind != REC_UNPARSED &&
		    rec_same(prev, o) != rec_same(o, prev))
			abort();
		prev = o;
		o = TAILQ_NEXT(o, entry);
	}
	if (o != NULL || nbad != bad)
		abort();
}

/* rec_write() into memory; *out malloc'ed, owned by the caller. */
static size_t
write_list(const struct rec_list *l, char **out)
{
	FILE	*f;
	size_t	 size = 0;

	*out = NULL;
	if ((f = open_memstream(out, &size)) == NULL)
		abort();
	/* Every list parsed from any text can be written. */
	if (rec_write(l, f) != 0)
		abort();
	if (fclose(f) != 0)
		abort();
	return size;
}

/* Written out and read back: the same list. */
static void
check_rewrite(const struct rec_list *l, int bad)
{
	struct rec_list		 m;
	const struct rec_obj	*a, *b;
	char			*text, *again;
	size_t			 len, len2;
	int			 total, block, run;

	len = write_list(l, &text);
	rec_init(&m, "rewritten");
	if (rec_parse_text(&m, text, len) != bad)
		abort();
	for (a = TAILQ_FIRST(&l->objs), b = TAILQ_FIRST(&m.objs);
	    a != NULL && b != NULL;
	    a = TAILQ_NEXT(a, entry), b = TAILQ_NEXT(b, entry)) {
		if (a->kind != b->kind)
			abort();
		if (a->kind != REC_UNPARSED)
			check_same(a, b);
		else if (a->textlen != b->textlen ||
		    memcmp(a->text, b->text, a->textlen) != 0)
			abort();
	}
	if (a != NULL || b != NULL)
		abort();
	total = rec_count(&m, &block, &run);
	if (total != rec_count(l, NULL, NULL) || block + run + bad != total)
		abort();
	len2 = write_list(&m, &again);
	if (len2 != len || memcmp(text, again, len) != 0)
		abort();
	free(again);
	free(text);
	rec_clear(&m);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int	 quiet;
	struct rec_list	 l;
	char		*text;
	int		 bad;

	if (!quiet) {
		/* Each bad line is a warning; the checks say what matters. */
		log_init("fuzz_record", LOG_LVL_ERR);
		quiet = 1;
	}
	if (size > INPUT_MAX)
		return 0;
	/* Exactly size bytes, so a read past the end is caught. */
	if ((text = malloc(size > 0 ? size : 1)) == NULL)
		return 0;
	if (size > 0)
		memcpy(text, data, size);
	rec_init(&l, "fuzz");
	if ((bad = rec_parse_text(&l, text, size)) < 0)
		abort();
	check_lines(text, size, &l, bad);
	check_rewrite(&l, bad);
	rec_clear(&l);
	free(text);
	return 0;
}
