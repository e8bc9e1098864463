/*
 * strbuf.c: a growable text buffer for the renderers (status, metrics,
 * JSON).  An allocation failure is sticky: later appends do nothing and
 * `failed` stays set, so a renderer checks once at the end.
 */
#ifndef GRGW_STRBUF_H
#define GRGW_STRBUF_H

#include <stddef.h>

#include "grgw.h"

struct strbuf {
	char		*s;		/* NUL-terminated, owned */
	size_t		len;
	size_t		cap;
	int		failed;		/* sticky allocation failure */
};

void	strbuf_init(struct strbuf *sb);
void	strbuf_printf(struct strbuf *sb, const char *fmt, ...)
	    GRGW_PRINTF(2, 3);
/* Append s as a JSON string literal, quotes included; NULL -> null. */
void	strbuf_json_str(struct strbuf *sb, const char *s);
void	strbuf_free(struct strbuf *sb);		/* the text; sb reusable */

#endif /* GRGW_STRBUF_H */
