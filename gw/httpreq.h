/*
 * httpreq.c: the head of an HTTP/1.x request, parsed (pure).  The status
 * server takes GET and HEAD of two documents and nothing else, so the
 * parser is strict and small: a request line of method, origin-form
 * target and version, header lines of name and value, and the one
 * header that matters, Content-Length.
 */
#ifndef GRGW_HTTPREQ_H
#define GRGW_HTTPREQ_H

#include <stddef.h>
#include <stdint.h>

#define HTTP_HEAD_MAX		8192	/* request line and headers */
#define HTTP_TARGET_MAX		1024	/* the target, query included */
#define HTTP_HEADERS_MAX	64	/* header lines */
#define HTTP_METHOD_MAX		15

struct http_req {
	char		 method[HTTP_METHOD_MAX + 1];
	char		 path[HTTP_TARGET_MAX + 1];	/* without the query */
	int		 minor;		/* HTTP/1.minor: 0 or 1 */
	uint64_t	 content_length;	/* 0 without the header */
	int		 chunked;	/* a Transfer-Encoding was given */
};

/*
 * Look for a whole request head in buf[0..len).  Returns the length of
 * the head (through the empty line) once it is there and valid, with
 * *out filled; 0 when more bytes are needed; or minus the status code
 * to answer: -400 malformed, -414 target too long, -431 head too long
 * or too many headers, -505 not HTTP/1.0 or 1.1.  Never reads past len.
 */
int	http_req_parse(const char *buf, size_t len, struct http_req *out);

#endif /* GRGW_HTTPREQ_H */
