/*
 * The HTTP request-head parser: what it accepts, what it refuses with
 * which status, and every good head fed cut at every byte.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "grgw.h"
#include "httpreq.h"

/* Parse a copy of exactly len bytes (the sanitizer sees any overread). */
static int
parse(const char *text, size_t len, struct http_req *r)
{
	char	*copy = malloc(len > 0 ? len : 1);
	int	 n;

	assert_non_null(copy);
	memcpy(copy, text, len);
	n = http_req_parse(copy, len, r);
	free(copy);
	return n;
}

static void
test_good(void **state)
{
	static const struct {
		const char	*text;
		const char	*method, *path;
		int		 minor;
		uint64_t	 cl;
	} t[] = {
		{ "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", "GET",
		  "/metrics", 1, 0 },
		{ "HEAD /status?pretty=1 HTTP/1.0\r\n\r\n", "HEAD", "/status",
		  0, 0 },
		{ "GET / HTTP/1.1\nHost: x\n\n", "GET", "/", 1, 0 },
		{ "\r\nGET /x HTTP/1.1\r\n\r\n", "GET", "/x", 1, 0 },
		{ "POST /status HTTP/1.1\r\nContent-Length: 2\r\n"
		  "content-length:2\r\n\r\n{}", "POST", "/status", 1, 2 },
		{ "GET /a HTTP/1.1\r\nAccept: text/plain;version=0.0.4;q=0.5,"
		  "*/*;q=0.1\r\nX-Tab:\tv \r\n\r\n", "GET", "/a", 1, 0 },
	};
	struct http_req	 r;
	size_t		 i, len, cut, head;
	int		 n;

	for (i = 0; i < nitems(t); i++) {
		len = strlen(t[i].text);
		n = parse(t[i].text, len, &r);
		print_message("%s", t[i].text);
		assert_true(n > 0);
		head = (size_t)n;
		assert_string_equal(r.method, t[i].method);
		assert_string_equal(r.path, t[i].path);
		assert_int_equal(r.minor, t[i].minor);
		assert_int_equal(r.content_length, t[i].cl);
		/* Any prefix shorter than the head asks for more. */
		for (cut = 0; cut < head; cut++)
			assert_int_equal(parse(t[i].text, cut, &r), 0);
	}
}

static void
test_refused(void **state)
{
	static const struct {
		const char	*text;
		int		 status;
	} t[] = {
		{ "GET\r\n\r\n", -400 },
		{ "GET /x\r\n\r\n", -400 },
		{ "GET x HTTP/1.1\r\n\r\n", -400 },
		{ "G(T /x HTTP/1.1\r\n\r\n", -400 },
		{ "GET /a b HTTP/1.1\r\n\r\n", -400 },
		{ "GET /x HTTP/2.0\r\n\r\n", -505 },
		{ "GET /x HTTP/1.2\r\n\r\n", -505 },
		{ "GET /x FTP/1.1\r\n\r\n", -400 },
		{ "GET /x HTTP/1.1\r\nno colon\r\n\r\n", -400 },
		{ "GET /x HTTP/1.1\r\n: empty name\r\n\r\n", -400 },
		{ "GET /x HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", -400 },
		{ "GET /x HTTP/1.1\r\nBad Name: v\r\n\r\n", -400 },
		{ "GET /x HTTP/1.1\r\nA: b\x01\r\n\r\n", -400 },
		{ "GET /x HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", -400 },
		{ "GET /x HTTP/1.1\r\nContent-Length: -1\r\n\r\n", -400 },
		{ "GET /x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2"
		  "\r\n\r\n", -400 },
		{ "GET /x HTTP/1.1\r\nContent-Length: 1234567890123456789"
		  "\r\n\r\n", -400 },
	};
	struct http_req	 r;
	char		*big;
	size_t		 i;

	for (i = 0; i < nitems(t); i++) {
		print_message("%s", t[i].text);
		assert_int_equal(parse(t[i].text, strlen(t[i].text), &r),
		    t[i].status);
	}
	/* A target just too long; a head that never ends; too many lines. */
	big = malloc(HTTP_HEAD_MAX * 2);
	assert_non_null(big);
	memset(big, 'a', HTTP_HEAD_MAX * 2);
	memcpy(big, "GET /", 5);
	memcpy(big + 5 + HTTP_TARGET_MAX, " HTTP/1.1\r\n\r\n", 13);
	assert_int_equal(parse(big, 5 + HTTP_TARGET_MAX + 13, &r), -414);
	memset(big, 'a', HTTP_HEAD_MAX * 2);
	memcpy(big, "GET / HTTP/1.1\r\nA: ", 19);
	assert_int_equal(parse(big, HTTP_HEAD_MAX - 1, &r), 0);
	assert_int_equal(parse(big, HTTP_HEAD_MAX * 2, &r), -431);
	strcpy(big, "GET / HTTP/1.1\r\n");
	for (i = 0; i <= HTTP_HEADERS_MAX; i++)
		strcat(big, "A: b\r\n");
	strcat(big, "\r\n");
	assert_int_equal(parse(big, strlen(big), &r), -431);
	free(big);
	/* Transfer-Encoding is noted (the server refuses bodies). */
	{
		const char *te = "GET /x HTTP/1.1\r\nTransfer-Encoding: "
		    "chunked\r\n\r\n";

		assert_true(parse(te, strlen(te), &r) > 0);
	}
	assert_int_equal(r.chunked, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
