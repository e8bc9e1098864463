/*
 * Values and output of the JSON documents grgw publishes (see jsondoc.h).
 * Pure: jansson and a text buffer, nothing else.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "grgw.h"
#include "strbuf.h"
#include "jsondoc.h"

/*
 * Compact, in insertion order.  Measurements are rounded to three
 * decimals, so 15 significant digits print them back exactly (0.062, not
 * 0.061999999999999999).
 */
#define JSONDOC_DUMP_FLAGS \
	(JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15))

json_t *
jsondoc_string(const char *s)
{
	json_t	*v;
	char	*copy;
	size_t	 i;

	if (s == NULL)
		return json_null();
	if ((v = json_string(s)) != NULL)
		return v;
	/* Not UTF-8 (or out of memory): keep the ASCII, mark the rest. */
	if ((copy = strdup(s)) == NULL)
		return NULL;
	for (i = 0; copy[i] != '\0'; i++)
		if ((unsigned char)copy[i] >= 0x80)
			copy[i] = '?';
	v = json_string(copy);
	free(copy);
	return v;
}

json_t *
jsondoc_u64(uint64_t n)
{
	return json_integer(n > INT64_MAX ? INT64_MAX : (json_int_t)n);
}

json_t *
jsondoc_measure(double x)
{
	if (!isfinite(x))
		return json_null();
	/* rint: half to even, as printf("%.3f") rounded them before. */
	return json_real(rint(x * 1000.0) / 1000.0);
}

static int
jsondoc_append_cb(const char *buf, size_t size, void *arg)
{
	struct strbuf	*sb = arg;

	strbuf_printf(sb, "%.*s", (int)size, buf);
	return sb->failed ? -1 : 0;
}

void
jsondoc_append(struct strbuf *sb, json_t *doc)
{
	if (doc == NULL || json_dump_callback(doc, jsondoc_append_cb, sb,
	    JSONDOC_DUMP_FLAGS) == -1)
		sb->failed = 1;
	json_decref(doc);
}
