/*
 * The HTTP request-head parser (gw/httpreq.c) on arbitrary bytes: it
 * never reads past the input, and what it accepts is consistent: the
 * head ends with an empty line inside the input, the method is a token,
 * the path starts with '/' and holds no query, and a prefix of an
 * accepted head only ever asks for more.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "httpreq.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_req	 r, r2;
	char		*copy;
	int		 n, m;

	if ((copy = malloc(size > 0 ? size : 1)) == NULL)
		return 0;
	memcpy(copy, data, size);
	n = http_req_parse(copy, size, &r);
	if (n > 0) {
		if ((size_t)n > size || (size_t)n > HTTP_HEAD_MAX ||
		    copy[n - 1] != '\n' || r.path[0] != '/' ||
		    strchr(r.path, '?') != NULL || r.method[0] == '\0' ||
		    (r.minor != 0 && r.minor != 1))
			abort();
		/* One byte less is never a different verdict than "more". */
		m = http_req_parse(copy, (size_t)n - 1, &r2);
		if (m > 0)
			abort();
	} else if (n != 0 && n != -400 && n != -414 && n != -431 &&
	    n != -505)
		abort();
	free(copy);
	return 0;
}
