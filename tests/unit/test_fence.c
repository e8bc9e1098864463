/*
 * The pair's fence in etcd: its messages (etcd_msg.c), checked against
 * bodies a real etcd 3.4 wrote (tests/feeds/run.sh starts one; these
 * were taken from it with curl), and its client (fence.c) against a
 * small etcd gateway on the same loop that keeps one key with its
 * revisions, or hangs, or fails, as a test asks.  The real etcd is
 * exercised by tests/feeds/run.sh (tests/feeds/fencetest.c).
 */
#include <sys/socket.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>
#include <sodium.h>

#include "grgw.h"
#include "chan.h"
#include "etcd_msg.h"
#include "fence.h"

#define KEY		"/grgw/site-a/pair"
#define KEY_B64		"L2dyZ3cvc2l0ZS1hL3BhaXI="
/* {"epoch":1,"holder":"198.18.1.2"} and {"epoch":2,"holder":"2001:db8:a::3"} */
#define VALUE1_B64	"eyJlcG9jaCI6MSwiaG9sZGVyIjoiMTk4LjE4LjEuMiJ9"
#define VALUE2_B64	"eyJlcG9jaCI6MiwiaG9sZGVyIjoiMjAwMTpkYjg6YTo6MyJ9"
#define HEADER(rev)	"\"header\":{\"cluster_id\":\"15118495548433857066\"," \
			"\"member_id\":\"13668033151171901709\",\"revision\":\"" \
			rev "\",\"raft_term\":\"2\"}"

static int
setup(void **state)
{
	log_init("test_fence", LOG_LVL_WARN);
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

/* A heap copy of exactly len bytes of s, no NUL: ASan sees any overread. */
static char *
exact_copy(const char *s, size_t len)
{
	char	*copy = malloc(len > 0 ? len : 1);

	assert_non_null(copy);
	memcpy(copy, s, len);
	return copy;
}

static struct grgw_addr
addr(const char *s)
{
	struct grgw_addr	 a;

	assert_int_equal(addr_parse(s, &a), 0);
	return a;
}

/* ---- requests ------------------------------------------------------------- */

/* The request bodies, exactly (etcd's gateway took each of these). */
static void
test_fence_requests(void **state)
{
	struct grgw_addr	 a4 = addr("198.18.1.2"), a6 = addr("2001:db8:a::3");
	struct grgw_addr	 none;
	char			*s;

	s = etcd_range_request(KEY);
	assert_string_equal(s, "{\"key\":\"" KEY_B64 "\"}");
	free(s);
	s = etcd_fence_value(1, &a4);
	assert_string_equal(s, "{\"epoch\":1,\"holder\":\"198.18.1.2\"}");
	free(s);
	s = etcd_fence_value(INT64_MAX, &a6);
	assert_string_equal(s, "{\"epoch\":9223372036854775807,\"holder\":"
	    "\"2001:db8:a::3\"}");
	free(s);
	assert_null(etcd_fence_value(0, &a4));
	assert_null(etcd_fence_value((uint64_t)INT64_MAX + 1, &a4));
	assert_null(etcd_fence_value(1, NULL));
	memset(&none, 0, sizeof(none));
	assert_null(etcd_fence_value(1, &none));

	s = etcd_cas_request(KEY, 0, "{\"epoch\":1,\"holder\":\"198.18.1.2\"}");
	assert_string_equal(s, "{\"compare\":[{\"key\":\"" KEY_B64 "\","
	    "\"target\":\"MOD\",\"result\":\"EQUAL\",\"mod_revision\":\"0\"}],"
	    "\"success\":[{\"request_put\":{\"key\":\"" KEY_B64 "\","
	    "\"value\":\"" VALUE1_B64 "\"}}],"
	    "\"failure\":[{\"request_range\":{\"key\":\"" KEY_B64 "\"}}]}");
	free(s);
	s = etcd_cas_request(KEY, INT64_MAX, "");
	assert_non_null(strstr(s, "\"mod_revision\":\"9223372036854775807\""));
	assert_non_null(strstr(s, "\"value\":\"\""));
	free(s);
	assert_null(etcd_cas_request(KEY, -1, "x"));
}

/* ---- range ------------------------------------------------------------------ */

struct range_case {
	const char	*json;
	int		 ok;
	int		 found;
	int64_t		 mod_revision;
	const char	*value;		/* decoded; NULL: too long */
	const char	*why;		/* in the message when refused */
};

static int
range_parse_any(const char *b, size_t len, void *out, char *err, size_t n)
{
	return etcd_range_parse(b, len, KEY, out, err, n);
}

static int
cas_parse_any(const char *b, size_t len, void *out, char *err, size_t n)
{
	return etcd_cas_parse(b, len, KEY, out, err, n);
}

/*
 * Every strict prefix of an accepted document is refused, each parsed
 * from a buffer of its own length, with a message.
 */
static void
expect_truncations_refused(const char *json, int (*parse)(const char *,
    size_t, void *, char *, size_t), void *out)
{
	const char	*last = strrchr(json, '}');
	char		*copy, err[256];
	size_t		 cut;

	assert_non_null(last);
	for (cut = 0; cut <= (size_t)(last - json); cut++) {
		copy = exact_copy(json, cut);
		err[0] = '\0';
		if (parse(copy, cut, out, err, sizeof(err)) == 0) {
			fprintf(stderr, "accepted a truncation: %.*s\n",
			    (int)cut, json);
			fail();
		}
		assert_true(err[0] != '\0');
		free(copy);
	}
}

static void
expect_kv(const struct etcd_kv *kv, const struct range_case *t)
{
	assert_int_equal(kv->found, t->found);
	assert_int_equal(kv->mod_revision, t->mod_revision);
	if (t->value == NULL) {
		assert_true(kv->value_too_long);
		assert_int_equal(kv->value_len, 0);
	} else {
		assert_false(kv->value_too_long);
		assert_int_equal(kv->value_len, strlen(t->value));
		assert_memory_equal(kv->value, t->value, kv->value_len + 1);
	}
}

static void
run_range_cases(const struct range_case *t, size_t n, int txn)
{
	struct etcd_range	 r;
	struct etcd_cas		 c;
	char			*copy, err[256];
	size_t			 i, len;
	int			 rc;

	for (i = 0; i < n; i++) {
		len = strlen(t[i].json);
		copy = exact_copy(t[i].json, len);
		err[0] = '\0';
		rc = txn ? etcd_cas_parse(copy, len, KEY, &c, err, sizeof(err)) :
		    etcd_range_parse(copy, len, KEY, &r, err, sizeof(err));
		free(copy);
		if (rc != (t[i].ok ? 0 : -1) || (rc == -1 &&
		    strstr(err, t[i].why) == NULL)) {
			fprintf(stderr, "%s: rc %d: %s\n", t[i].json, rc, err);
			fail();
		}
		if (!t[i].ok)
			continue;
		expect_kv(txn ? &c.kv : &r.kv, &t[i]);
		if (txn)
			assert_false(c.succeeded);
		expect_truncations_refused(t[i].json, txn ? cas_parse_any :
		    range_parse_any, txn ? (void *)&c : (void *)&r);
	}
}

static void
test_range_parse(void **state)
{
	static const struct range_case t[] = {
		/* What etcd 3.4.23 answered: absent, present, present again
		 * after a second put, and absent after a delete. */
		{ "{" HEADER("1") "}", 1, 0, 0, "", NULL },
		{ "{" HEADER("2") ",\"kvs\":[{\"key\":\"" KEY_B64 "\","
		  "\"create_revision\":\"2\",\"mod_revision\":\"2\","
		  "\"version\":\"1\",\"value\":\"" VALUE1_B64 "\"}],"
		  "\"count\":\"1\"}", 1, 1, 2,
		  "{\"epoch\":1,\"holder\":\"198.18.1.2\"}", NULL },
		{ "{" HEADER("3") ",\"kvs\":[{\"key\":\"" KEY_B64 "\","
		  "\"create_revision\":\"2\",\"mod_revision\":\"3\","
		  "\"version\":\"2\",\"value\":\"" VALUE2_B64 "\"}],"
		  "\"count\":\"1\"}", 1, 1, 3,
		  "{\"epoch\":2,\"holder\":\"2001:db8:a::3\"}", NULL },
		{ "{" HEADER("4") "}", 1, 0, 0, "", NULL },
		/* A lease, "more", an empty value, an empty kvs. */
		{ "{\"header\":{},\"kvs\":[{\"key\":\"" KEY_B64 "\","
		  "\"mod_revision\":\"9\",\"lease\":\"7587\"}],\"count\":\"1\","
		  "\"more\":false}", 1, 1, 9, "", NULL },
		{ "{\"header\":{},\"kvs\":[]}", 1, 0, 0, "", NULL },
		{ "{\"header\":{},\"kvs\":[{\"key\":\"" KEY_B64 "\","
		  "\"mod_revision\":9,\"value\":\"QQ==\"}],\"count\":1}", 1, 1, 9,
		  "A", NULL },
		/* Not the key asked for, not one key, not a revision. */
		{ "{\"header\":{},\"kvs\":[{\"key\":\"L2dyZ3cvc2l0ZS1iL3BhaXI=\","
		  "\"mod_revision\":\"2\"}],\"count\":\"1\"}", 0, 0, 0, NULL,
		  "\"kvs\"[0].\"key\" is not the key asked for" },
		{ "{\"header\":{},\"kvs\":[{\"key\":\"L2dyZ3cvc2l0ZS1hL3BhaXI\","
		  "\"mod_revision\":\"2\"}],\"count\":\"1\"}", 0, 0, 0, NULL,
		  "is not the key asked for" },
		{ "{\"header\":{},\"kvs\":[{\"mod_revision\":\"2\"}],"
		  "\"count\":\"1\"}", 0, 0, 0, NULL, "\"key\" is missing" },
		{ "{\"header\":{},\"kvs\":[{\"key\":5,\"mod_revision\":\"2\"}],"
		  "\"count\":\"1\"}", 0, 0, 0, NULL, "\"key\" is not a string" },
		{ "{\"header\":{},\"kvs\":[{\"key\":\"" KEY_B64 "\","
		  "\"mod_revision\":\"2\"},{\"key\":\"" KEY_B64 "\","
		  "\"mod_revision\":\"3\"}],\"count\":\"2\"}", 0, 0, 0, NULL,
		  "has 2 keys, not one" },
		{ "{\"header\":{},\"kvs\":[{\"key\":\"" KEY_B64 "\"}],"
		  "\"count\":\"1\"}", 0, 0, 0, NULL,
		  "\"mod_revision\" 0 is not positive" },
		{ "{\"header\":{},\"kvs\":[{\"key\":\"" KEY_B64 "\","
		  "\"mod_revision\":\"-2\"}],\"count\":\"1\"}", 0, 0, 0, NULL,
		  "is not positive" },
		{ "{\"header\":{},\"kvs\":[{\"key\":\"" KEY_B64 "\","
		  "\"mod_revision\":\"2x\"}],\"count\":\"1\"}", 0, 0, 0, NULL,
		  "\"kvs\"[0].\"mod_revision\" is not a 64-bit integer" },
		{ "{\"header\":{},\"kvs\":[{\"key\":\"" KEY_B64 "\","
		  "\"mod_revision\":\"2\",\"lease\":[]}],\"count\":\"1\"}", 0, 0,
		  0, NULL, "\"lease\" is not" },
		{ "{\"header\":{},\"kvs\":[\"x\"],\"count\":\"1\"}", 0, 0, 0, NULL,
		  "\"kvs\"[0].is not an object" },
		{ "{\"header\":{},\"kvs\":{}}", 0, 0, 0, NULL,
		  "\"kvs\" is not an array" },
		/* "count" and "kvs" must agree. */
		{ "{\"header\":{},\"count\":\"1\"}", 0, 0, 0, NULL,
		  "\"count\" 1 disagrees" },
		{ "{\"header\":{},\"kvs\":[{\"key\":\"" KEY_B64 "\","
		  "\"mod_revision\":\"2\"}]}", 0, 0, 0, NULL,
		  "\"count\" 0 disagrees" },
		{ "{\"header\":{},\"count\":\"-1\"}", 0, 0, 0, NULL,
		  "disagrees" },
		/* Values: base64 as etcd writes it, and length-checked. */
		{ "{\"header\":{},\"kvs\":[{\"key\":\"" KEY_B64 "\","
		  "\"mod_revision\":\"2\",\"value\":\"eyJ\"}],\"count\":\"1\"}", 0,
		  0, 0, NULL, "\"value\" is not base64" },
		{ "{\"header\":{},\"kvs\":[{\"key\":\"" KEY_B64 "\","
		  "\"mod_revision\":\"2\",\"value\":\"QR==\"}],\"count\":\"1\"}",
		  0, 0, 0, NULL, "\"value\" is not base64" },
		{ "{\"header\":{},\"kvs\":[{\"key\":\"" KEY_B64 "\","
		  "\"mod_revision\":\"2\",\"value\":7}],\"count\":\"1\"}", 0, 0, 0,
		  NULL, "\"value\" is not a string" },
		/* libsodium 1.0.18 alone reads these bytes as 6 (the fuzzer
		 * found it); and no whitespace, no URL-safe alphabet. */
		{ "{\"header\":{},\"kvs\":[{\"key\":\"" KEY_B64 "\","
		  "\"mod_revision\":\"2\",\"value\":\"QUJD\xd1\x95J9\"}],"
		  "\"count\":\"1\"}", 0, 0, 0, NULL, "\"value\" is not base64" },
		{ "{\"header\":{},\"kvs\":[{\"key\":\"" KEY_B64 "\","
		  "\"mod_revision\":\"2\",\"value\":\"QUJD RA==\"}],"
		  "\"count\":\"1\"}", 0, 0, 0, NULL, "\"value\" is not base64" },
		{ "{\"header\":{},\"kvs\":[{\"key\":\"" KEY_B64 "\","
		  "\"mod_revision\":\"2\",\"value\":\"Pz8-\"}],"
		  "\"count\":\"1\"}", 0, 0, 0, NULL, "\"value\" is not base64" },
		{ "{\"header\":{},\"kvs\":[{\"key\":\"" KEY_B64 "\","
		  "\"mod_revision\":\"2\",\"value\":\"QUJD=A==\"}],"
		  "\"count\":\"1\"}", 0, 0, 0, NULL, "\"value\" is not base64" },
		/* Where etcd puts things, and nowhere else. */
		{ "{\"kvs\":[]}", 0, 0, 0, NULL, "\"header\" is missing" },
		{ "{\"header\":{},\"x\":{\"kvs\":[{\"key\":\"" KEY_B64 "\","
		  "\"mod_revision\":\"2\"}],\"count\":\"1\"}}", 1, 0, 0, "", NULL },
		{ "{\"header\":{},\"header\":{}}", 0, 0, 0, NULL, "not JSON" },
		{ "{\"error\":\"etcdserver: no leader\",\"code\":14}", 0, 0, 0,
		  NULL, "\"header\" is missing" },
		{ "[]", 0, 0, 0, NULL, "not a JSON object" },
		{ "", 0, 0, 0, NULL, "empty response" },
	};

	run_range_cases(t, nitems(t), 0);
}

/* A value just at the limit is read; one byte more is "too long". */
static void
test_range_value_limits(void **state)
{
	static const struct range_case at_max = { NULL, 1, 1, 2, "", NULL };
	struct range_case	 t = at_max;
	unsigned char		 raw[ETCD_KV_VALUE_MAX + 4];
	char			 b64[sodium_base64_ENCODED_LEN(ETCD_KV_VALUE_MAX
				    + 4, sodium_base64_VARIANT_ORIGINAL)];
	char			 body[2048], value[ETCD_KV_VALUE_MAX + 4];
	struct etcd_range	 r;
	size_t			 n;

	for (n = ETCD_KV_VALUE_MAX - 2; n <= ETCD_KV_VALUE_MAX + 3; n++) {
		memset(raw, 'v', n);
		sodium_bin2base64(b64, sizeof(b64), raw, n,
		    sodium_base64_VARIANT_ORIGINAL);
		snprintf(body, sizeof(body), "{\"header\":{},\"kvs\":[{\"key\":"
		    "\"" KEY_B64 "\",\"mod_revision\":\"2\",\"value\":\"%s\"}],"
		    "\"count\":\"1\"}", b64);
		assert_int_equal(etcd_range_parse(body, strlen(body), KEY, &r,
		    NULL, 0), 0);
		memcpy(value, raw, n);
		value[n] = '\0';
		t.value = n <= ETCD_KV_VALUE_MAX ? value : NULL;
		expect_kv(&r.kv, &t);
	}
	assert_int_equal(etcd_range_parse("{\"header\":{}}", 13, NULL, &r, NULL,
	    0), -1);
	/* A NUL inside is a byte like another. */
	snprintf(body, sizeof(body), "{\"header\":{},\"kvs\":[{\"key\":"
	    "\"" KEY_B64 "\",\"mod_revision\":\"2\",\"value\":\"AGEA\"}],"
	    "\"count\":\"1\"}");
	assert_int_equal(etcd_range_parse(body, strlen(body), KEY, &r, NULL, 0),
	    0);
	assert_int_equal(r.kv.value_len, 3);
	assert_memory_equal(r.kv.value, "\0a\0", 4);
}

/* ---- txn ---------------------------------------------------------------------- */

struct cas_case {
	const char	*json;
	int		 ok;
	int64_t		 mod_revision;
	const char	*why;
};

static void
test_cas_parse(void **state)
{
	static const struct range_case failed[] = {
		/* etcd 3.4.23: a claim with a stale revision, and one on a key
		 * deleted since (its mod_revision is 0 now). */
		{ "{" HEADER("2") ",\"responses\":[{\"response_range\":{"
		  "\"header\":{\"revision\":\"2\"},\"kvs\":[{\"key\":\"" KEY_B64
		  "\",\"create_revision\":\"2\",\"mod_revision\":\"2\","
		  "\"version\":\"1\",\"value\":\"" VALUE1_B64 "\"}],"
		  "\"count\":\"1\"}}]}", 1, 1, 2,
		  "{\"epoch\":1,\"holder\":\"198.18.1.2\"}", NULL },
		{ "{" HEADER("4") ",\"responses\":[{\"response_range\":{"
		  "\"header\":{\"revision\":\"4\"}}}]}", 1, 0, 0, "", NULL },
		{ "{" HEADER("4") ",\"succeeded\":false,\"responses\":[{"
		  "\"response_range\":{}}]}", 1, 0, 0, "", NULL },
		/* The range inside is read as a range. */
		{ "{" HEADER("2") ",\"responses\":[{\"response_range\":{"
		  "\"kvs\":[{\"key\":\"" KEY_B64 "\"}],\"count\":\"1\"}}]}", 0, 0,
		  0, NULL, "\"responses\"[0].\"response_range\".\"kvs\"[0]."
		  "\"mod_revision\" 0 is not positive" },
		{ "{" HEADER("2") ",\"responses\":[{\"response_range\":{"
		  "\"header\":{\"revision\":[]}}}]}", 0, 0, 0, NULL,
		  "\"response_range\".\"header\".\"revision\" is not" },
		{ "{" HEADER("2") ",\"responses\":[{\"response_range\":{"
		  "\"kvs\":[{\"key\":\"" KEY_B64 "\",\"mod_revision\":\"2\"}]}}]}",
		  0, 0, 0, NULL, "\"count\" 0 disagrees" },
		/* The wrong branch, or not one response. */
		{ "{" HEADER("2") ",\"responses\":[{\"response_put\":{}}]}", 0, 0,
		  0, NULL, "\"responses\"[0].\"response_range\" is missing" },
		{ "{" HEADER("2") ",\"responses\":[{\"response_range\":{},"
		  "\"response_put\":{}}]}", 0, 0, 0, NULL,
		  "has \"response_put\" in a txn that failed" },
		{ "{" HEADER("2") ",\"responses\":[]}", 0, 0, 0, NULL,
		  "\"responses\" has 0 elements, not one" },
		{ "{" HEADER("2") ",\"responses\":[{\"response_range\":{}},"
		  "{\"response_range\":{}}]}", 0, 0, 0, NULL,
		  "has 2 elements" },
		{ "{" HEADER("2") "}", 0, 0, 0, NULL, "\"responses\" is missing" },
		{ "{" HEADER("2") ",\"responses\":{}}", 0, 0, 0, NULL,
		  "\"responses\" is not an array" },
		{ "{" HEADER("2") ",\"responses\":[7]}", 0, 0, 0, NULL,
		  "\"responses\"[0] is not an object" },
		{ "{" HEADER("2") ",\"responses\":[{\"response_range\":[]}]}", 0,
		  0, 0, NULL, "\"response_range\" is not an object" },
		{ "{" HEADER("2") ",\"succeeded\":\"false\",\"responses\":[{"
		  "\"response_range\":{}}]}", 0, 0, 0, NULL,
		  "\"succeeded\" is not a boolean" },
		{ "{\"responses\":[{\"response_range\":{}}]}", 0, 0, 0, NULL,
		  "\"header\" is missing" },
	};
	static const struct cas_case won[] = {
		/* etcd 3.4.23: the first claim (revision 0) and the next. */
		{ "{" HEADER("2") ",\"succeeded\":true,\"responses\":[{"
		  "\"response_put\":{\"header\":{\"revision\":\"2\"}}}]}", 1, 2,
		  NULL },
		{ "{" HEADER("3") ",\"succeeded\":true,\"responses\":[{"
		  "\"response_put\":{\"header\":{\"revision\":\"3\"}}}]}", 1, 3,
		  NULL },
		{ "{\"header\":{\"revision\":\"9223372036854775807\"},"
		  "\"succeeded\":true,\"responses\":[{\"response_put\":{}}]}", 1,
		  INT64_MAX, NULL },
		{ "{\"header\":{},\"succeeded\":true,\"responses\":[{"
		  "\"response_put\":{}}]}", 0, 0, "\"revision\" 0 is not positive" },
		{ "{" HEADER("2") ",\"succeeded\":true,\"responses\":[{"
		  "\"response_range\":{}}]}", 0, 0,
		  "\"responses\"[0].\"response_put\" is missing" },
		{ "{" HEADER("2") ",\"succeeded\":true,\"responses\":[{"
		  "\"response_put\":{},\"response_range\":{}}]}", 0, 0,
		  "has \"response_range\" in a txn that succeeded" },
		{ "{" HEADER("2") ",\"succeeded\":true,\"responses\":[{"
		  "\"response_put\":{\"header\":7}}]}", 0, 0,
		  "\"response_put\".\"header\" is not an object" },
		{ "{" HEADER("2") ",\"succeeded\":true}", 0, 0,
		  "\"responses\" is missing" },
		{ "{" HEADER("2") ",\"succeeded\":1,\"responses\":[{"
		  "\"response_put\":{}}]}", 0, 0, "\"succeeded\" is not a boolean" },
	};
	struct etcd_cas	 c;
	char		*copy, err[256];
	size_t		 i, len;
	int		 rc;

	run_range_cases(failed, nitems(failed), 1);
	for (i = 0; i < nitems(won); i++) {
		len = strlen(won[i].json);
		copy = exact_copy(won[i].json, len);
		err[0] = '\0';
		rc = etcd_cas_parse(copy, len, KEY, &c, err, sizeof(err));
		free(copy);
		if (rc != (won[i].ok ? 0 : -1) || (rc == 0 && (!c.succeeded ||
		    c.mod_revision != won[i].mod_revision || c.kv.found)) ||
		    (rc == -1 && strstr(err, won[i].why) == NULL)) {
			fprintf(stderr, "%s: rc %d: %s\n", won[i].json, rc, err);
			fail();
		}
		if (won[i].ok)
			expect_truncations_refused(won[i].json, cas_parse_any,
			    &c);
	}
}

/* ---- the fence's value ------------------------------------------------------ */

static void
test_fence_value_parse(void **state)
{
	static const struct {
		const char	*json;
		int		 ok;
		uint64_t	 epoch;
		const char	*holder;	/* or what the message says */
	} t[] = {
		{ "{\"epoch\":1,\"holder\":\"198.18.1.2\"}", 1, 1, "198.18.1.2" },
		{ "{\"epoch\":2,\"holder\":\"2001:db8:a::3\"}", 1, 2,
		  "2001:db8:a::3" },
		{ "{\"holder\":\"::1\",\"since\":\"x\",\"epoch\":9223372036854775807}",
		  1, INT64_MAX, "::1" },
		{ " {\"epoch\":7,\"holder\":\"2001:DB8::1\"}\n", 1, 7,
		  "2001:db8::1" },
		{ "{\"epoch\":0,\"holder\":\"198.18.1.2\"}", 0, 0,
		  "\"epoch\" 0 is not positive" },
		{ "{\"epoch\":-3,\"holder\":\"198.18.1.2\"}", 0, 0,
		  "is not positive" },
		{ "{\"epoch\":\"1\",\"holder\":\"198.18.1.2\"}", 0, 0,
		  "\"epoch\" is not an integer" },
		{ "{\"epoch\":1.0,\"holder\":\"198.18.1.2\"}", 0, 0,
		  "\"epoch\" is not an integer" },
		{ "{\"epoch\":9223372036854775808,\"holder\":\"198.18.1.2\"}", 0,
		  0, "not JSON" },
		{ "{\"holder\":\"198.18.1.2\"}", 0, 0, "\"epoch\" is missing" },
		{ "{\"epoch\":1}", 0, 0, "\"holder\" is missing" },
		{ "{\"epoch\":1,\"holder\":7}", 0, 0, "\"holder\" is not a string" },
		{ "{\"epoch\":1,\"holder\":\"\"}", 0, 0,
		  "\"holder\" is not an IP address" },
		{ "{\"epoch\":1,\"holder\":\"gw-a1\"}", 0, 0,
		  "\"holder\" \"gw-a1\" is not an IP address" },
		{ "{\"epoch\":1,\"holder\":\"198.18.1.2 \"}", 0, 0,
		  "is not an IP address" },
		{ "{\"epoch\":1,\"holder\":\"fe80::1%eth0\"}", 0, 0,
		  "is not an IP address" },
		{ "{\"epoch\":1,\"holder\":\"1111:2222:3333:4444:5555:6666:"
		  "123.123.123.123x\"}", 0, 0, "\"holder\" is not an IP address" },
		{ "{\"epoch\":1,\"holder\":\"a\\u0000\"}", 0, 0, "not JSON" },
		{ "{\"epoch\":1,\"epoch\":2,\"holder\":\"::1\"}", 0, 0, "not JSON" },
		{ "[1,\"::1\"]", 0, 0, "not a JSON object" },
		{ "", 0, 0, "the value is empty" },
		{ "{\"epoch\":1,\"holder\":\"198.18.1.2\",\"pad\":\"xxxxxxxxxxxxxx"
		  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		  "xxxxxxxxxxxxx\"}", 0, 0,
		  "value of 129 bytes is longer than 128" },
	};
	struct etcd_fence	 v;
	char			*copy, err[256], text[INET6_ADDRSTRLEN];
	size_t			 i, len;
	int			 rc;

	for (i = 0; i < nitems(t); i++) {
		len = strlen(t[i].json);
		copy = exact_copy(t[i].json, len);
		err[0] = '\0';
		rc = etcd_fence_value_parse(copy, len, &v, err, sizeof(err));
		free(copy);
		if (rc == 0)
			addr_fmt(&v.holder, text, sizeof(text));
		if (rc != (t[i].ok ? 0 : -1) || (rc == 0 && (v.epoch !=
		    t[i].epoch || strcmp(text, t[i].holder) != 0)) ||
		    (rc == -1 && (strstr(err, t[i].holder) == NULL ||
		    v.epoch != 0 || v.holder.family != 0))) {
			fprintf(stderr, "%s: rc %d: %s\n", t[i].json, rc, err);
			fail();
		}
	}
}

/* ---- the client against a gateway on the loop -------------------------------- */

/*
 * One key with its revisions, as etcd keeps it: range and the fence's
 * txn, read from the request bodies the way etcd's gateway reads them.
 */
struct gw {
	struct event_base	*base;
	struct evhttp		*http;
	uint16_t		 port;
	int64_t			 revision;	/* the store's */
	int64_t			 mod_revision;	/* the key's; 0: absent */
	char			 value[256];
	enum { GW_SERVE, GW_HANG, GW_FAIL, GW_GARBAGE } mode;
	int			 requests, hung;
	uint16_t		 peer_ports[64];	/* per request */
	char			 host[64];	/* the last Host header */
};

/* The base64 member name of obj decoded into out, "" when absent. */
static void
b64_member(const json_t *obj, const char *name, char *out, size_t size)
{
	const json_t	*v = json_object_get(obj, name);
	size_t		 len = 0;

	if (v != NULL)
		assert_int_equal(sodium_base642bin((unsigned char *)out,
		    size - 1, json_string_value(v), json_string_length(v), NULL,
		    &len, NULL, sodium_base64_VARIANT_ORIGINAL), 0);
	out[len] = '\0';
}

/* The kvs and count of a range of the key, as etcd writes them. */
static void
gw_kvs(const struct gw *g, char *out, size_t size)
{
	char	 b64[512];

	if (g->mod_revision == 0) {
		out[0] = '\0';
		return;
	}
	sodium_bin2base64(b64, sizeof(b64), (const unsigned char *)g->value,
	    strlen(g->value), sodium_base64_VARIANT_ORIGINAL);
	snprintf(out, size, ",\"kvs\":[{\"key\":\"" KEY_B64 "\","
	    "\"mod_revision\":\"%lld\",\"value\":\"%s\"}],\"count\":\"1\"",
	    (long long)g->mod_revision, b64);
}

static void
gw_reply(struct evhttp_request *req, int code, const char *body)
{
	struct evbuffer	*b = evbuffer_new();

	evbuffer_add(b, body, strlen(body));
	evhttp_send_reply(req, code, code == 200 ? "OK" : "Error", b);
	evbuffer_free(b);
}

static void
gw_txn(struct gw *g, const json_t *doc, char *out, size_t size)
{
	const json_t	*cmp, *put;
	char		 key[64], kvs[1024];
	long long	 expect;

	cmp = json_array_get(json_object_get(doc, "compare"), 0);
	put = json_object_get(json_array_get(json_object_get(doc, "success"),
	    0), "request_put");
	assert_non_null(put);
	b64_member(cmp, "key", key, sizeof(key));
	assert_string_equal(key, KEY);
	assert_string_equal(json_string_value(json_object_get(cmp, "target")),
	    "MOD");
	expect = strtoll(json_string_value(json_object_get(cmp,
	    "mod_revision")), NULL, 10);
	if (expect == g->mod_revision) {
		b64_member(put, "value", g->value, sizeof(g->value));
		g->mod_revision = ++g->revision;
		snprintf(out, size, "{\"header\":{\"revision\":\"%lld\"},"
		    "\"succeeded\":true,\"responses\":[{\"response_put\":{"
		    "\"header\":{\"revision\":\"%lld\"}}}]}",
		    (long long)g->revision, (long long)g->revision);
		return;
	}
	gw_kvs(g, kvs, sizeof(kvs));
	snprintf(out, size, "{\"header\":{\"revision\":\"%lld\"},\"responses\":"
	    "[{\"response_range\":{\"header\":{\"revision\":\"%lld\"}%s}}]}",
	    (long long)g->revision, (long long)g->revision, kvs);
}

static void
gw_cb(struct evhttp_request *req, void *arg)
{
	struct gw	*g = arg;
	struct evbuffer	*in = evhttp_request_get_input_buffer(req);
	const char	*uri = evhttp_request_get_uri(req), *host;
	char		 body[4096], out[2048], kvs[1024], key[64];
	size_t		 len = evbuffer_get_length(in);
	json_t		*doc;
	ev_uint16_t	 port;
	char		*peer;

	assert_true(len < sizeof(body));
	evbuffer_remove(in, body, len);
	assert_int_equal(evhttp_request_get_command(req), EVHTTP_REQ_POST);
	host = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "Host");
	assert_non_null(host);
	snprintf(g->host, sizeof(g->host), "%s", host);
	evhttp_connection_get_peer(evhttp_request_get_connection(req), &peer,
	    &port);
	if (g->requests < (int)nitems(g->peer_ports))
		g->peer_ports[g->requests] = port;
	g->requests++;
	switch (g->mode) {
	case GW_HANG:
		g->hung++;	/* freed with the connection */
		return;
	case GW_FAIL:
		gw_reply(req, 503, "{\"error\":\"etcdserver: no leader\","
		    "\"message\":\"etcdserver: no leader\",\"code\":14}");
		return;
	case GW_GARBAGE:
		gw_reply(req, 200, "<html>busy</html>");
		return;
	case GW_SERVE:
		break;
	}
	doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
	assert_non_null(doc);
	if (strcmp(uri, "/v3/kv/range") == 0) {
		b64_member(doc, "key", key, sizeof(key));
		assert_string_equal(key, KEY);
		gw_kvs(g, kvs, sizeof(kvs));
		snprintf(out, sizeof(out), "{\"header\":{\"revision\":\"%lld\"}"
		    "%s}", (long long)g->revision, kvs);
	} else if (strcmp(uri, "/v3/kv/txn") == 0)
		gw_txn(g, doc, out, sizeof(out));
	else
		snprintf(out, sizeof(out), "{}");
	json_decref(doc);
	gw_reply(req, 200, out);
}

/* The gateway on a free port of ip; -1 when ip cannot be bound. */
static int
gw_start_on(struct event_base *base, struct gw *g, const char *ip)
{
	struct evhttp_bound_socket	*bs;
	struct sockaddr_storage		 ss;
	socklen_t			 slen = sizeof(ss);

	memset(g, 0, sizeof(*g));
	g->base = base;
	g->revision = 1;
	g->http = evhttp_new(base);
	assert_non_null(g->http);
	evhttp_set_allowed_methods(g->http, EVHTTP_REQ_POST | EVHTTP_REQ_GET);
	evhttp_set_gencb(g->http, gw_cb, g);
	if ((bs = evhttp_bind_socket_with_handle(g->http, ip, 0)) == NULL) {
		evhttp_free(g->http);
		return -1;
	}
	assert_int_equal(getsockname(evhttp_bound_socket_get_fd(bs),
	    (struct sockaddr *)&ss, &slen), 0);
	g->port = ntohs(ss.ss_family == AF_INET6 ?
	    ((struct sockaddr_in6 *)&ss)->sin6_port :
	    ((struct sockaddr_in *)&ss)->sin_port);
	return 0;
}

static void
gw_start(struct event_base *base, struct gw *g)
{
	assert_int_equal(gw_start_on(base, g, "127.0.0.1"), 0);
}

/* What a callback received, and how often. */
struct got {
	int			 calls;
	struct fence_result	 r;
	struct fence		*free_me;	/* freed from the callback */
};

static void
got_cb(const struct fence_result *r, void *arg)
{
	struct got	*g = arg;

	g->calls++;
	g->r = *r;
	if (g->free_me != NULL) {
		fence_free(g->free_me);
		g->free_me = NULL;
	}
}

static double
now_s(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Run the loop until the callback came, at most 5 s. */
static void
wait_got(struct event_base *base, struct got *g, int calls)
{
	struct timeval	 tick = { 0, 10000 };
	double		 end = now_s() + 5;

	while (g->calls < calls && now_s() < end) {
		event_base_loopexit(base, &tick);
		event_base_dispatch(base);
	}
	assert_int_equal(g->calls, calls);
}

/* Run the loop for ms milliseconds. */
static void
run_for(struct event_base *base, unsigned ms)
{
	struct timeval	 tv = { ms / 1000, (ms % 1000) * 1000 };

	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

static char *
endpoint_of(const struct gw *g, char *buf, size_t size)
{
	snprintf(buf, size, "http://127.0.0.1:%u", (unsigned)g->port);
	return buf;
}

static void
test_fence_new(void **state)
{
	struct event_base	*base = chan_loop_new();
	char			 err[256], key[GRGW_ETCD_KEY_MAX + 2];

	assert_null(fence_new(base, "https://127.0.0.1:2379", KEY, err,
	    sizeof(err)));
	assert_non_null(strstr(err, "https"));
	assert_null(fence_new(base, "http://etcd:2379", KEY, err, sizeof(err)));
	assert_non_null(strstr(err, "etcd endpoint \"http://etcd:2379\""));
	assert_null(fence_new(base, "http://127.0.0.1:2379", "", err,
	    sizeof(err)));
	assert_non_null(strstr(err, "etcd key is empty"));
	memset(key, 'k', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	assert_null(fence_new(base, "http://127.0.0.1:2379", key, err,
	    sizeof(err)));
	key[sizeof(key) - 2] = '\0';
	fence_free(fence_new(base, "http://[::1]:2379", key, err, sizeof(err)));
	fence_free(NULL);
	event_base_free(base);
}

/*
 * Read absent, claim with 0 (won), read it back, claim again with the
 * stale 0 (lost: the holder and epoch of the winner), claim with the
 * right revision (won): one connection throughout.
 */
static void
test_fence_read_claim(void **state)
{
	struct event_base	*base = chan_loop_new();
	struct grgw_addr	 me = addr("198.18.1.2"), other = addr("198.18.1.3");
	struct fence_stats	 st;
	struct fence		*f;
	struct gw		 g;
	struct got		 got = { 0 };
	char			 ep[64], err[256];
	int			 i;

	gw_start(base, &g);
	f = fence_new(base, endpoint_of(&g, ep, sizeof(ep)), KEY, err,
	    sizeof(err));
	assert_non_null(f);
	assert_false(fence_busy(f));

	assert_int_equal(fence_read(f, 1000, got_cb, &got), 0);
	assert_true(fence_busy(f));
	assert_int_equal(got.calls, 0);		/* never from inside */
	wait_got(base, &got, 1);
	assert_false(fence_busy(f));
	assert_true(got.r.completed);
	assert_string_equal(got.r.reason, "");
	assert_false(got.r.found);
	assert_int_equal(got.r.mod_revision, 0);
	assert_int_equal(got.r.revision, 1);

	assert_int_equal(fence_claim(f, 0, 1, &me, 1000, got_cb, &got), 0);
	wait_got(base, &got, 2);
	assert_true(got.r.completed);
	assert_true(got.r.won);
	assert_int_equal(got.r.mod_revision, 2);
	assert_int_equal(got.r.epoch, 1);
	assert_true(addr_equal(&got.r.holder, &me));
	assert_string_equal(g.value, "{\"epoch\":1,\"holder\":\"198.18.1.2\"}");

	assert_int_equal(fence_read(f, 1000, got_cb, &got), 0);
	wait_got(base, &got, 3);
	assert_true(got.r.completed && got.r.found && got.r.value_ok);
	assert_int_equal(got.r.mod_revision, 2);
	assert_int_equal(got.r.epoch, 1);
	assert_true(addr_equal(&got.r.holder, &me));
	assert_false(got.r.won);

	assert_int_equal(fence_claim(f, 0, 1, &other, 1000, got_cb, &got), 0);
	wait_got(base, &got, 4);
	assert_true(got.r.completed);
	assert_false(got.r.won);
	assert_true(got.r.found && got.r.value_ok);
	assert_int_equal(got.r.mod_revision, 2);
	assert_int_equal(got.r.epoch, 1);
	assert_true(addr_equal(&got.r.holder, &me));

	assert_int_equal(fence_claim(f, 2, 2, &other, 1000, got_cb, &got), 0);
	wait_got(base, &got, 5);
	assert_true(got.r.completed && got.r.won);
	assert_int_equal(got.r.mod_revision, 3);
	assert_true(addr_equal(&got.r.holder, &other));

	/* Kept alive: every request came from the same client port. */
	assert_int_equal(g.requests, 5);
	for (i = 1; i < g.requests; i++)
		assert_int_equal(g.peer_ports[i], g.peer_ports[0]);
	fence_get_stats(f, &st);
	assert_int_equal(st.requests, 5);
	assert_int_equal(st.completed, 5);
	assert_int_equal(st.failed, 0);
	assert_int_equal(st.connections, 1);

	fence_free(f);
	evhttp_free(g.http);
	event_base_free(base);
}

/* An etcd on an IPv6 address, the Host header bracketed. */
static void
test_fence_ipv6(void **state)
{
	struct event_base	*base = chan_loop_new();
	struct grgw_addr	 me = addr("2001:db8:a::2");
	struct fence		*f;
	struct gw		 g;
	struct got		 got = { 0 };
	char			 ep[64], err[256];

	if (gw_start_on(base, &g, "::1") == -1) {
		event_base_free(base);
		skip();
	}
	snprintf(ep, sizeof(ep), "http://[::1]:%u", (unsigned)g.port);
	f = fence_new(base, ep, KEY, err, sizeof(err));
	assert_non_null(f);
	assert_int_equal(fence_claim(f, 0, 1, &me, 1000, got_cb, &got), 0);
	wait_got(base, &got, 1);
	assert_true(got.r.completed && got.r.won);
	assert_string_equal(g.value,
	    "{\"epoch\":1,\"holder\":\"2001:db8:a::2\"}");
	assert_string_equal(g.host, ep + 7);
	fence_free(f);
	evhttp_free(g.http);
	event_base_free(base);
}

/* One request at a time; bad arguments refused; no callback for those. */
static void
test_fence_busy_and_arguments(void **state)
{
	struct event_base	*base = chan_loop_new();
	struct grgw_addr	 me = addr("198.18.1.2"), none;
	struct fence		*f;
	struct gw		 g;
	struct got		 got = { 0 };
	char			 ep[64], err[256];

	gw_start(base, &g);
	f = fence_new(base, endpoint_of(&g, ep, sizeof(ep)), KEY, err,
	    sizeof(err));
	memset(&none, 0, sizeof(none));
	errno = 0;
	assert_int_equal(fence_read(f, 0, got_cb, &got), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(fence_read(f, FENCE_TIMEOUT_MAX_MS + 1, got_cb, &got),
	    -1);
	assert_int_equal(fence_read(f, 100, NULL, &got), -1);
	assert_int_equal(fence_claim(f, -1, 1, &me, 100, got_cb, &got), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(fence_claim(f, 0, 0, &me, 100, got_cb, &got), -1);
	assert_int_equal(fence_claim(f, 0, (uint64_t)INT64_MAX + 1, &me, 100,
	    got_cb, &got), -1);
	assert_int_equal(fence_claim(f, 0, 1, &none, 100, got_cb, &got), -1);
	assert_int_equal(fence_claim(f, 0, 1, NULL, 100, got_cb, &got), -1);
	assert_int_equal(errno, EINVAL);
	assert_false(fence_busy(f));

	assert_int_equal(fence_read(f, 1000, got_cb, &got), 0);
	errno = 0;
	assert_int_equal(fence_read(f, 1000, got_cb, &got), -1);
	assert_int_equal(errno, EBUSY);
	errno = 0;
	assert_int_equal(fence_claim(f, 0, 1, &me, 1000, got_cb, &got), -1);
	assert_int_equal(errno, EBUSY);
	wait_got(base, &got, 1);
	run_for(base, 50);
	assert_int_equal(got.calls, 1);
	assert_int_equal(g.requests, 1);
	assert_true(got.r.completed);

	fence_free(f);
	evhttp_free(g.http);
	event_base_free(base);
}

/* Start the next request from the callback. */
struct chain {
	struct fence	*f;
	int		 left, calls, completed;
};

static void
chain_cb(const struct fence_result *r, void *arg)
{
	struct chain	*c = arg;

	c->calls++;
	c->completed += r->completed;
	if (--c->left > 0)
		assert_int_equal(fence_read(c->f, 1000, chain_cb, c), 0);
}

static void
test_fence_chained(void **state)
{
	struct event_base	*base = chan_loop_new();
	struct fence_stats	 st;
	struct chain		 c = { NULL, 20, 0, 0 };
	struct gw		 g;
	char			 ep[64], err[256];
	double			 end;

	gw_start(base, &g);
	c.f = fence_new(base, endpoint_of(&g, ep, sizeof(ep)), KEY, err,
	    sizeof(err));
	assert_int_equal(fence_read(c.f, 1000, chain_cb, &c), 0);
	for (end = now_s() + 10; c.calls < 20 && now_s() < end; )
		event_base_loop(base, EVLOOP_ONCE);
	run_for(base, 50);
	assert_int_equal(c.calls, 20);
	assert_int_equal(c.completed, 20);
	fence_get_stats(c.f, &st);
	assert_int_equal(st.connections, 1);
	fence_free(c.f);
	evhttp_free(g.http);
	event_base_free(base);
}

/*
 * An etcd that takes the request and answers nothing: the callback says
 * so at the deadline, and the next request, on a new connection, is
 * answered once etcd is back.
 */
static void
test_fence_timeout(void **state)
{
	struct event_base	*base = chan_loop_new();
	struct grgw_addr	 me = addr("2001:db8:a::2");
	struct fence_stats	 st;
	struct fence		*f;
	struct gw		 g;
	struct got		 got = { 0 };
	char			 ep[64], err[256];
	double			 t0, took;

	gw_start(base, &g);
	f = fence_new(base, endpoint_of(&g, ep, sizeof(ep)), KEY, err,
	    sizeof(err));
	assert_int_equal(fence_read(f, 1000, got_cb, &got), 0);
	wait_got(base, &got, 1);

	g.mode = GW_HANG;
	t0 = now_s();
	assert_int_equal(fence_read(f, 150, got_cb, &got), 0);
	wait_got(base, &got, 2);
	took = now_s() - t0;
	assert_false(got.r.completed);
	assert_string_equal(got.r.reason, "timed out after 150 ms");
	assert_true(took >= 0.149);
	assert_true(got.r.elapsed_us >= 150000);
	assert_int_equal(g.hung, 1);

	/* A claim too: not completed, whatever etcd did with it. */
	assert_int_equal(fence_claim(f, 0, 1, &me, 100, got_cb, &got), 0);
	wait_got(base, &got, 3);
	assert_false(got.r.completed);
	assert_false(got.r.won);
	assert_string_equal(got.r.reason, "timed out after 100 ms");

	g.mode = GW_SERVE;
	assert_int_equal(fence_read(f, 1000, got_cb, &got), 0);
	wait_got(base, &got, 4);
	assert_true(got.r.completed);
	assert_int_not_equal(g.peer_ports[3], g.peer_ports[0]);
	fence_get_stats(f, &st);
	assert_int_equal(st.timed_out, 2);
	assert_int_equal(st.failed, 2);
	assert_int_equal(st.completed, 2);
	assert_int_equal(st.connections, 2);

	fence_free(f);
	evhttp_free(g.http);
	event_base_free(base);
}

/* etcd's own error and an answer that is not etcd's: reasons in words. */
static void
test_fence_bad_answers(void **state)
{
	struct event_base	*base = chan_loop_new();
	struct fence		*f;
	struct gw		 g;
	struct got		 got = { 0 };
	char			 ep[64], err[256];

	gw_start(base, &g);
	f = fence_new(base, endpoint_of(&g, ep, sizeof(ep)), KEY, err,
	    sizeof(err));
	g.mode = GW_FAIL;
	assert_int_equal(fence_read(f, 1000, got_cb, &got), 0);
	wait_got(base, &got, 1);
	assert_false(got.r.completed);
	assert_string_equal(got.r.reason,
	    "HTTP 503: etcdserver: no leader (code 14)");
	g.mode = GW_GARBAGE;
	assert_int_equal(fence_read(f, 1000, got_cb, &got), 0);
	wait_got(base, &got, 2);
	assert_false(got.r.completed);
	assert_non_null(strstr(got.r.reason, "range answer: not JSON"));

	/* A value on the key that is no fence value: read, and said. */
	g.mode = GW_SERVE;
	g.mod_revision = g.revision = 7;
	snprintf(g.value, sizeof(g.value), "{\"epoch\":1,\"holder\":\"gw-a\"}");
	assert_int_equal(fence_read(f, 1000, got_cb, &got), 0);
	wait_got(base, &got, 3);
	assert_true(got.r.completed && got.r.found);
	assert_false(got.r.value_ok);
	assert_int_equal(got.r.mod_revision, 7);
	assert_int_equal(got.r.epoch, 0);
	assert_string_equal(got.r.reason, "the value is not a fence value: "
	    "\"holder\" \"gw-a\" is not an IP address");

	fence_free(f);
	evhttp_free(g.http);
	event_base_free(base);
}

/* Nobody listening: completed 0 at once, with a reason; then it comes. */
static void
test_fence_refused(void **state)
{
	struct event_base	*base = chan_loop_new();
	struct fence		*f;
	struct got		 got = { 0 };
	struct sockaddr_in	 sin;
	socklen_t		 slen = sizeof(sin);
	char			 ep[64], err[256];
	int			 fd;

	/* A port that was free a moment ago. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &slen), 0);
	close(fd);
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%u",
	    (unsigned)ntohs(sin.sin_port));
	f = fence_new(base, ep, KEY, err, sizeof(err));
	assert_int_equal(fence_read(f, 2000, got_cb, &got), 0);
	wait_got(base, &got, 1);
	assert_false(got.r.completed);
	/* Refused, not left to the deadline. */
	assert_non_null(strstr(got.r.reason, "cannot connect to http://"));
	/* And again: nothing left over from the first. */
	assert_int_equal(fence_read(f, 2000, got_cb, &got), 0);
	wait_got(base, &got, 2);
	assert_false(got.r.completed);
	fence_free(f);
	event_base_free(base);
}

/*
 * Freed with a request in flight, or from its own callback: no callback
 * after the free.
 */
static void
test_fence_free_in_flight(void **state)
{
	struct event_base	*base = chan_loop_new();
	struct fence		*f;
	struct gw		 g;
	struct got		 got = { 0 };
	char			 ep[64], err[256];
	double			 end;

	gw_start(base, &g);
	endpoint_of(&g, ep, sizeof(ep));

	/* Taken, not yet sent. */
	f = fence_new(base, ep, KEY, err, sizeof(err));
	assert_int_equal(fence_read(f, 200, got_cb, &got), 0);
	fence_free(f);
	run_for(base, 300);
	assert_int_equal(got.calls, 0);

	/* Hung, freed before the deadline. */
	g.mode = GW_HANG;
	f = fence_new(base, ep, KEY, err, sizeof(err));
	assert_int_equal(fence_read(f, 5000, got_cb, &got), 0);
	for (end = now_s() + 5; g.hung == 0 && now_s() < end; )
		event_base_loop(base, EVLOOP_ONCE);
	assert_int_equal(g.hung, 1);
	fence_free(f);
	run_for(base, 200);
	assert_int_equal(got.calls, 0);

	/* Freed by its own callback. */
	g.mode = GW_SERVE;
	f = fence_new(base, ep, KEY, err, sizeof(err));
	got.free_me = f;
	assert_int_equal(fence_read(f, 1000, got_cb, &got), 0);
	wait_got(base, &got, 1);
	assert_null(got.free_me);
	run_for(base, 100);
	assert_int_equal(got.calls, 1);

	evhttp_free(g.http);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fence_requests),
		cmocka_unit_test(test_range_parse),
		cmocka_unit_test(test_range_value_limits),
		cmocka_unit_test(test_cas_parse),
		cmocka_unit_test(test_fence_value_parse),
		cmocka_unit_test(test_fence_new),
		cmocka_unit_test(test_fence_read_claim),
		cmocka_unit_test(test_fence_ipv6),
		cmocka_unit_test(test_fence_busy_and_arguments),
		cmocka_unit_test(test_fence_chained),
		cmocka_unit_test(test_fence_timeout),
		cmocka_unit_test(test_fence_bad_answers),
		cmocka_unit_test(test_fence_refused),
		cmocka_unit_test(test_fence_free_in_flight),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
