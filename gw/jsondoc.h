/*
 * jsondoc.c: the pieces the JSON documents grgw publishes are built from
 * (the status object, the link state, the QoS object), and the one way
 * they are written out.  The documents are jansson trees; jansson does
 * the escaping.  Pure.
 *
 * The value constructors return a new reference, or NULL when out of
 * memory; they are meant to be handed to json_pack()'s "o" (which takes
 * the reference, and fails on NULL, so a document is whole or missing).
 */
#ifndef GRGW_JSONDOC_H
#define GRGW_JSONDOC_H

#include <stdint.h>

#include <jansson.h>

struct strbuf;

/*
 * s as a JSON string, or null when s is NULL.  s is copied.  Bytes that
 * are not valid UTF-8 (a name or a message from outside) become '?', so
 * the document stays valid JSON.
 */
json_t	*jsondoc_string(const char *s);
/* An integer; counters above INT64_MAX (never seen) are capped there. */
json_t	*jsondoc_u64(uint64_t n);
/*
 * A measurement (milliseconds, ratios): rounded to three decimals, as
 * grgw has always published them; null for NaN or an infinity (an RTT
 * before the first answer), since JSON has neither.
 */
json_t	*jsondoc_measure(double x);

/*
 * Append doc as compact JSON to sb, keys in the order they were added,
 * and release doc (the reference is taken; NULL is allowed).  A NULL doc
 * or a failed dump marks sb failed, as an allocation failure would.
 */
void	jsondoc_append(struct strbuf *sb, json_t *doc);

#endif /* GRGW_JSONDOC_H */
