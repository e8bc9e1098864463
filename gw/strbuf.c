/*
 * A growable, always NUL-terminated text buffer.  Allocation failure is
 * sticky and checked once at the end, which keeps renderers linear.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grgw.h"
#include "strbuf.h"

void
strbuf_init(struct strbuf *sb)
{
	memset(sb, 0, sizeof(*sb));
}

static int
strbuf_reserve(struct strbuf *sb, size_t more)
{
	size_t want;
	char *n;

	if (sb->failed)
		return -1;
	if (sb->len + more + 1 <= sb->cap)
		return 0;
	want = sb->cap ? sb->cap : 256;
	while (want < sb->len + more + 1)
		want *= 2;
	if ((n = realloc(sb->s, want)) == NULL) {
		sb->failed = 1;
		return -1;
	}
	sb->s = n;
	sb->cap = want;
	return 0;
}

void
strbuf_printf(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || strbuf_reserve(sb, (size_t)n) == -1)
		return;
	va_start(ap, fmt);
	vsnprintf(sb->s + sb->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	sb->len += (size_t)n;
}

void
strbuf_json_str(struct strbuf *sb, const char *s)
{
	const unsigned char *p;

	if (s == NULL) {
		strbuf_printf(sb, "null");
		return;
	}
	strbuf_printf(sb, "\"");
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		switch (*p) {
		case '"':
			strbuf_printf(sb, "\\\"");
			break;
		case '\\':
			strbuf_printf(sb, "\\\\");
			break;
		case '\n':
			strbuf_printf(sb, "\\n");
			break;
		case '\t':
			strbuf_printf(sb, "\\t");
			break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				strbuf_printf(sb, "\\u%04x", *p);
			else
				strbuf_printf(sb, "%c", *p);
		}
	}
	strbuf_printf(sb, "\"");
}

void
strbuf_free(struct strbuf *sb)
{
	free(sb->s);
	memset(sb, 0, sizeof(*sb));
}
