/*
 * The head of an HTTP/1.x request (see httpreq.h).  Pure: a buffer in,
 * a struct or a status code out.  Lines end with CRLF or a bare LF (as
 * RFC 9112 allows a server to accept); nothing else is lenient.
 */
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "httpreq.h"

/* RFC 9110 tchar: what a method or a header name is made of. */
static int
is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || (c != 0 && strchr("!#$%&'*+-.^_`|~",
	    c) != NULL);
}

/* Visible ASCII and blanks: what a header value may hold. */
static int
is_vchar_or_blank(unsigned char c)
{
	return (c >= 0x21 && c <= 0x7e) || c == ' ' || c == '\t';
}

/* The end of the line starting at p: its length without CR LF, and
 * where the next line starts; -1 when no LF is before end. */
static int
line_end(const char *p, const char *end, size_t *linelen, const char **next)
{
	const char	*lf = memchr(p, '\n', (size_t)(end - p));

	if (lf == NULL)
		return -1;
	*next = lf + 1;
	*linelen = (size_t)(lf - p);
	if (*linelen > 0 && lf[-1] == '\r')
		(*linelen)--;
	return 0;
}

static int
parse_request_line(const char *p, size_t n, struct http_req *out)
{
	const char	*sp1, *sp2, *target, *q, *end = p + n;
	size_t		 mlen, tlen, plen;

	if ((sp1 = memchr(p, ' ', n)) == NULL)
		return -400;
	mlen = (size_t)(sp1 - p);
	if (mlen == 0 || mlen > HTTP_METHOD_MAX)
		return -400;
	for (q = p; q < sp1; q++)
		if (!is_tchar((unsigned char)*q))
			return -400;
	target = sp1 + 1;
	if ((sp2 = memchr(target, ' ', (size_t)(end - target))) == NULL)
		return -400;
	tlen = (size_t)(sp2 - target);
	if (tlen > HTTP_TARGET_MAX)
		return -414;
	if (tlen == 0 || target[0] != '/')
		return -400;
	for (q = target; q < sp2; q++)
		if ((unsigned char)*q <= 0x20 || (unsigned char)*q >= 0x7f)
			return -400;
	if ((size_t)(end - sp2 - 1) != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0)
		return (size_t)(end - sp2 - 1) >= 5 &&
		    memcmp(sp2 + 1, "HTTP/", 5) == 0 ? -505 : -400;
	if (sp2[8] != '0' && sp2[8] != '1')
		return -505;
	memcpy(out->method, p, mlen);
	out->method[mlen] = '\0';
	q = memchr(target, '?', tlen);
	plen = q != NULL ? (size_t)(q - target) : tlen;
	memcpy(out->path, target, plen);
	out->path[plen] = '\0';
	out->minor = sp2[8] - '0';
	return 0;
}

/* Content-Length: digits only, at most 18 of them. */
static int
parse_length(const char *v, size_t n, uint64_t *out)
{
	uint64_t	 x = 0;
	size_t		 i;

	if (n == 0 || n > 18)
		return -1;
	for (i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		x = x * 10 + (uint64_t)(v[i] - '0');
	}
	*out = x;
	return 0;
}

static int
parse_header(const char *p, size_t n, struct http_req *out, int *have_cl)
{
	const char	*colon, *v, *vend;
	uint64_t	 cl;
	size_t		 nlen, i;

	/* A line folded onto the previous one (obs-fold) is refused. */
	if (p[0] == ' ' || p[0] == '\t')
		return -400;
	if ((colon = memchr(p, ':', n)) == NULL || colon == p)
		return -400;
	nlen = (size_t)(colon - p);
	for (i = 0; i < nlen; i++)
		if (!is_tchar((unsigned char)p[i]))
			return -400;
	v = colon + 1;
	vend = p + n;
	while (v < vend && (*v == ' ' || *v == '\t'))
		v++;
	while (vend > v && (vend[-1] == ' ' || vend[-1] == '\t'))
		vend--;
	for (i = 0; v + i < vend; i++)
		if (!is_vchar_or_blank((unsigned char)v[i]))
			return -400;
	if (nlen == 14 && strncasecmp(p, "Content-Length", 14) == 0) {
		if (parse_length(v, (size_t)(vend - v), &cl) == -1 ||
		    (*have_cl && cl != out->content_length))
			return -400;
		out->content_length = cl;
		*have_cl = 1;
	} else if (nlen == 17 && strncasecmp(p, "Transfer-Encoding", 17) == 0)
		out->chunked = 1;
	return 0;
}

int
http_req_parse(const char *buf, size_t len, struct http_req *out)
{
	const char	*p = buf, *end, *next;
	size_t		 n, headers = 0;
	int		 rc, have_cl = 0, first = 1;

	memset(out, 0, sizeof(*out));
	end = buf + (len > HTTP_HEAD_MAX ? HTTP_HEAD_MAX : len);
	for (;;) {
		if (line_end(p, end, &n, &next) == -1)
			return len >= HTTP_HEAD_MAX ? -431 : 0;
		if (first) {
			/* A few empty lines before a request are allowed. */
			if (n == 0 && (size_t)(next - buf) <= 8) {
				p = next;
				continue;
			}
			if ((rc = parse_request_line(p, n, out)) != 0)
				return rc;
			first = 0;
		} else if (n == 0) {
			return (int)(next - buf);
		} else {
			if (++headers > HTTP_HEADERS_MAX)
				return -431;
			if ((rc = parse_header(p, n, out, &have_cl)) != 0)
				return rc;
		}
		p = next;
	}
}
