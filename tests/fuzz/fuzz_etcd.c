/*
 * libFuzzer harness for what the feeds and the pair's fence read from
 * outside: etcd's JSON responses (etcd_msg.c), the fence's value, and
 * the addresses of the configuration (addr_port_parse, addr_url_parse).
 *
 * The input is used these ways:
 *  - as a response body, in a buffer of exactly its length (a read past
 *    the end is caught), handed to every response parser.  What a parser
 *    accepts is checked against jansson's own reading of the same bytes:
 *    the body is an object, each integer read is the one at the place
 *    etcd puts it (a string of digits prints back as itself), and the
 *    same document wrapped one level deeper no longer yields it;
 *  - as the numbers and the shape of a grant and a keepalive response
 *    built here: accepted with exactly those numbers at the right depth,
 *    refused (or read as absent) at any other;
 *  - as a key and a value: the put request built from them carries them
 *    back out, base64 and all;
 *  - as a range or txn response for the fence's key, and as a fence
 *    value: what is accepted is what jansson reads at etcd's places (the
 *    kv's key is the key asked for, its value decodes to the bytes
 *    parsed, re-encoded to the same base64; the value's epoch and holder
 *    build a value that parses back to them);
 *  - as the revision, value bytes, key and holder of a range response, a
 *    txn request and a fence value built here: each parses back to
 *    exactly what went in, and a kv of another key is refused.
 */
#include <sys/socket.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "grgw.h"
#include "etcd_msg.h"
#include "feeds.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* jansson's reading of an integer member, the way etcd writes it, agrees
 * with the parser's got (an absent member reads 0). */
static int
ref_int(const json_t *obj, const char *key, int64_t got)
{
	const json_t	*v = json_object_get(obj, key);
	char		 num[32];

	if (v == NULL)
		return got == 0;
	if (json_is_integer(v))
		return json_integer_value(v) == got;
	if (!json_is_string(v))
		return 0;
	snprintf(num, sizeof(num), "%lld", (long long)got);
	return strlen(num) == json_string_length(v) &&
	    strcmp(num, json_string_value(v)) == 0;
}

static int
ref_uint(const json_t *obj, const char *key, uint64_t got)
{
	const json_t	*v = json_object_get(obj, key);
	char		 num[32];

	if (v == NULL)
		return got == 0;
	if (json_is_integer(v))
		return json_integer_value(v) >= 0 &&
		    (uint64_t)json_integer_value(v) == got;
	if (!json_is_string(v))
		return 0;
	snprintf(num, sizeof(num), "%llu", (unsigned long long)got);
	return strlen(num) == json_string_length(v) &&
	    strcmp(num, json_string_value(v)) == 0;
}

static int
ref_header(const json_t *obj, const struct etcd_header *h)
{
	const json_t	*hv = json_object_get(obj, "header");

	if (hv == NULL)
		return h->cluster_id == 0 && h->member_id == 0 &&
		    h->revision == 0 && h->raft_term == 0;
	return json_is_object(hv) && ref_uint(hv, "cluster_id", h->cluster_id) &&
	    ref_uint(hv, "member_id", h->member_id) &&
	    ref_int(hv, "revision", h->revision) &&
	    ref_uint(hv, "raft_term", h->raft_term);
}

/* {"x": doc} dumped, for the "one level deeper" checks; owned by caller. */
static char *
wrapped(const json_t *doc)
{
	json_t	*w = json_pack("{s:O}", "x", doc);
	char	*s = w != NULL ? json_dumps(w, JSON_COMPACT) : NULL;

	json_decref(w);
	return s;
}

static void
check_grant(const char *buf, size_t size, const json_t *ref)
{
	struct etcd_lease	 l;
	char			 err[256], *w;

	if (etcd_grant_parse(buf, size, &l, err, sizeof(err)) == -1) {
		if (err[0] == '\0')
			abort();
		return;
	}
	if (!json_is_object(ref) || l.id <= 0 || !ref_int(ref, "ID", l.id) ||
	    !ref_int(ref, "TTL", l.ttl) || !ref_header(ref, &l.header))
		abort();
	if ((w = wrapped(ref)) == NULL)
		return;
	if (etcd_grant_parse(w, strlen(w), &l, err, sizeof(err)) == 0)
		abort();		/* the ID one level down is not an ID */
	free(w);
}

static void
check_keepalive(const char *buf, size_t size, const json_t *ref)
{
	struct etcd_lease	 l;
	const json_t		*result;
	char			 err[256], *w;

	if (etcd_keepalive_parse(buf, size, &l, err, sizeof(err)) == -1) {
		if (err[0] == '\0')
			abort();
		return;
	}
	result = json_object_get(ref, "result");
	if (!json_is_object(ref) || !json_is_object(result) ||
	    !ref_int(result, "ID", l.id) || !ref_int(result, "TTL", l.ttl) ||
	    !ref_header(result, &l.header))
		abort();
	/* The result object alone: its ID and TTL are no longer inside a
	 * "result", so they must not be read (unless it has one itself). */
	if (json_object_get(result, "result") == NULL &&
	    (w = json_dumps(result, JSON_COMPACT)) != NULL) {
		if (etcd_keepalive_parse(w, strlen(w), &l, err,
		    sizeof(err)) == 0)
			abort();
		free(w);
	}
}

static void
check_put_and_error(const char *buf, size_t size, const json_t *ref)
{
	struct etcd_put		 p;
	struct etcd_error	 e;
	char			 err[256];
	size_t			 i;

	if (etcd_put_parse(buf, size, &p, err, sizeof(err)) == 0) {
		if (!json_is_object(json_object_get(ref, "header")) ||
		    !ref_header(ref, &p.header))
			abort();
	} else if (err[0] == '\0')
		abort();
	if (etcd_error_parse(buf, size, &e, err, sizeof(err)) == 0) {
		if (!json_is_object(ref) || e.message[0] == '\0' || e.code < 0)
			abort();
		for (i = 0; e.message[i] != '\0'; i++)
			if (e.message[i] < 0x20 || e.message[i] >= 0x7f)
				abort();
	} else if (err[0] == '\0')
		abort();
}

static int64_t
take_i64(const uint8_t *p)
{
	uint64_t	 v = 0;
	int		 i;

	for (i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return (int64_t)v;
}

static json_t *
num_json(int64_t n, int as_string)
{
	char	 buf[32];

	if (!as_string)
		return json_integer(n);
	snprintf(buf, sizeof(buf), "%lld", (long long)n);
	return json_string(buf);
}

/*
 * A lease response with the input's ID and TTL, built here, at depth 0
 * (where etcd puts them) or nested one level (in an object or an array):
 * found exactly, or not at all.
 */
static void
check_built_lease(const uint8_t *data, size_t size)
{
	struct etcd_lease	 l;
	json_t			*lease, *doc;
	int64_t			 id, ttl;
	uint8_t			 shape;
	char			*s, err[256];
	int			 rc;

	if (size < 17)
		return;
	id = take_i64(data);
	ttl = take_i64(data + 8);
	shape = data[16];
	lease = json_pack("{s:{s:s}, s:o, s:o}", "header", "revision", "7",
	    "ID", num_json(id, shape & 1), "TTL", num_json(ttl, shape & 2));
	if (lease == NULL)
		return;
	switch (shape >> 2 & 3) {
	case 0:		/* where etcd puts it */
		doc = json_incref(lease);
		break;
	case 1:
		doc = json_pack("{s:O}", "nested", lease);
		break;
	case 2:
		doc = json_pack("[O]", lease);
		break;
	default:	/* a keepalive's result, one level too deep */
		doc = json_pack("{s:{s:O}}", "result", "nested", lease);
		break;
	}
	s = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
	if (s != NULL) {
		rc = etcd_grant_parse(s, strlen(s), &l, err, sizeof(err));
		if ((shape >> 2 & 3) == 0 && id > 0) {
			if (rc != 0 || l.id != id || l.ttl != ttl ||
			    l.header.revision != 7)
				abort();
		} else if (rc == 0)
			abort();
		rc = etcd_keepalive_parse(s, strlen(s), &l, err, sizeof(err));
		if (rc == 0 && ((shape >> 2 & 3) != 3 || l.id != 0 ||
		    l.ttl != 0))
			abort();
		if ((shape >> 2 & 3) == 3 && rc != 0)
			abort();
		free(s);
	}
	json_decref(doc);
	/* As a keepalive answer, inside "result": found exactly. */
	doc = json_pack("{s:O}", "result", lease);
	s = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
	if (s != NULL && (etcd_keepalive_parse(s, strlen(s), &l, err,
	    sizeof(err)) != 0 || l.id != id || l.ttl != ttl))
		abort();
	free(s);
	json_decref(doc);
	json_decref(lease);
}

/* The put request for key and value carries both back out. */
static void
check_put_request(const char *key, const char *value, int64_t lease)
{
	json_t		*doc;
	const char	*k, *v, *id;
	char		 num[32];
	unsigned char	 bin[4096];
	size_t		 bin_len;
	char		*body;

	if ((body = etcd_put_request(key, value, lease)) == NULL)
		return;
	if ((doc = json_loads(body, JSON_REJECT_DUPLICATES, NULL)) == NULL ||
	    json_unpack(doc, "{s:s, s:s, s:s !}", "key", &k, "value", &v,
	    "lease", &id) != 0)
		abort();
	snprintf(num, sizeof(num), "%lld", (long long)lease);
	if (strcmp(id, num) != 0)
		abort();
	if (sodium_base642bin(bin, sizeof(bin), k, strlen(k), NULL, &bin_len,
	    NULL, sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    bin_len != strlen(key) || memcmp(bin, key, bin_len) != 0)
		abort();
	if (sodium_base642bin(bin, sizeof(bin), v, strlen(v), NULL, &bin_len,
	    NULL, sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    bin_len != strlen(value) || memcmp(bin, value, bin_len) != 0)
		abort();
	json_decref(doc);
	free(body);
}

static void
check_addresses(const char *str)
{
	struct grgw_addr	 a;
	char			 why[160], out[64];
	uint16_t		 port;

	why[0] = '\0';
	if (addr_port_parse(str, &a, &port, why, sizeof(why)) == 0) {
		if (addr_fmt(&a, out, sizeof(out)) == NULL ||
		    (a.family != AF_INET && a.family != AF_INET6))
			abort();
	} else if (why[0] == '\0')
		abort();
	why[0] = '\0';
	if (addr_url_parse(str, FEEDS_ETCD_PORT_DEFAULT, &a, &port, why,
	    sizeof(why)) == 0) {
		if (port == 0)
			abort();
	} else if (why[0] == '\0')
		abort();
}

/* ---- the fence: range and txn responses, values ---------------------- */

#define FENCE_KEY	"/grgw/site-a/pair"

/* s in standard base64, a string owned by the caller, or NULL. */
static char *
b64_text(const char *s)
{
	size_t	 len = strlen(s), size;
	char	*b64;

	size = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
	if ((b64 = malloc(size)) != NULL)
		sodium_bin2base64(b64, size, (const unsigned char *)s, len,
		    sodium_base64_VARIANT_ORIGINAL);
	return b64;
}

/* The kv jansson finds at obj's "kvs" agrees with what was parsed. */
static void
ref_kv(const json_t *obj, const struct etcd_kv *kv)
{
	const json_t	*kvs = json_object_get(obj, "kvs"), *k, *v;
	char		 b64[sodium_base64_ENCODED_LEN(ETCD_KV_VALUE_MAX,
			    sodium_base64_VARIANT_ORIGINAL)];
	char		 want[sodium_base64_ENCODED_LEN(sizeof(FENCE_KEY) - 1,
			    sodium_base64_VARIANT_ORIGINAL)];

	if (!kv->found) {
		if (kvs != NULL && json_array_size(kvs) != 0)
			abort();
		if (kv->mod_revision != 0 || kv->value_len != 0)
			abort();
		return;
	}
	if (json_array_size(kvs) != 1)
		abort();
	k = json_object_get(json_array_get(kvs, 0), "key");
	sodium_bin2base64(want, sizeof(want), (const unsigned char *)FENCE_KEY,
	    sizeof(FENCE_KEY) - 1, sodium_base64_VARIANT_ORIGINAL);
	if (!json_is_string(k) || strcmp(json_string_value(k), want) != 0)
		abort();
	if (kv->mod_revision <= 0 || !ref_int(json_array_get(kvs, 0),
	    "mod_revision", kv->mod_revision))
		abort();
	v = json_object_get(json_array_get(kvs, 0), "value");
	if (kv->value_too_long) {
		if (kv->value_len != 0 || !json_is_string(v) ||
		    json_string_length(v) < sodium_base64_ENCODED_LEN(
		    ETCD_KV_VALUE_MAX, sodium_base64_VARIANT_ORIGINAL) - 1)
			abort();
		return;
	}
	if (kv->value_len > ETCD_KV_VALUE_MAX || kv->value[kv->value_len] != '\0')
		abort();
	if (v == NULL) {
		if (kv->value_len != 0)
			abort();
		return;
	}
	/* The bytes parsed encode back to the very text etcd sent. */
	sodium_bin2base64(b64, sizeof(b64), (const unsigned char *)kv->value,
	    kv->value_len, sodium_base64_VARIANT_ORIGINAL);
	if (!json_is_string(v) || strcmp(json_string_value(v), b64) != 0)
		abort();
}

static void
check_range_and_cas(const char *buf, size_t size, const json_t *ref)
{
	struct etcd_range	 r;
	struct etcd_cas		 c;
	const json_t		*resp;
	char			 err[256], *w;

	if (etcd_range_parse(buf, size, FENCE_KEY, &r, err,
	    sizeof(err)) == 0) {
		if (!json_is_object(json_object_get(ref, "header")) ||
		    !ref_header(ref, &r.header))
			abort();
		ref_kv(ref, &r.kv);
		if ((w = wrapped(ref)) != NULL) {
			if (etcd_range_parse(w, strlen(w), FENCE_KEY, &r, err,
			    sizeof(err)) == 0)
				abort();	/* no header at the top */
			free(w);
		}
	} else if (err[0] == '\0' || r.kv.found || r.kv.mod_revision != 0)
		abort();
	if (etcd_cas_parse(buf, size, FENCE_KEY, &c, err, sizeof(err)) == 0) {
		if (!json_is_object(json_object_get(ref, "header")) ||
		    !ref_header(ref, &c.header) ||
		    json_is_true(json_object_get(ref, "succeeded")) !=
		    c.succeeded || json_array_size(json_object_get(ref,
		    "responses")) != 1)
			abort();
		resp = json_array_get(json_object_get(ref, "responses"), 0);
		if (c.succeeded) {
			if (c.mod_revision <= 0 ||
			    c.mod_revision != c.header.revision || c.kv.found ||
			    !json_is_object(json_object_get(resp,
			    "response_put")))
				abort();
		} else {
			if (c.mod_revision != 0)
				abort();
			ref_kv(json_object_get(resp, "response_range"), &c.kv);
		}
	} else if (err[0] == '\0' || c.succeeded || c.kv.found)
		abort();
}

/* A fence value accepted: jansson reads the same, and it builds back. */
static void
check_fence_value(const char *buf, size_t size, const json_t *ref)
{
	struct etcd_fence	 v, back;
	struct grgw_addr	 a;
	const json_t		*h;
	char			 err[256], *s;

	if (etcd_fence_value_parse(buf, size, &v, err, sizeof(err)) == -1) {
		if (err[0] == '\0' || v.epoch != 0 || v.holder.family != 0)
			abort();
		return;
	}
	h = json_object_get(ref, "holder");
	if (size > ETCD_FENCE_VALUE_MAX || v.epoch == 0 ||
	    v.epoch > INT64_MAX || !json_is_integer(json_object_get(ref,
	    "epoch")) || (uint64_t)json_integer_value(json_object_get(ref,
	    "epoch")) != v.epoch || !json_is_string(h) ||
	    addr_parse(json_string_value(h), &a) == -1 ||
	    !addr_equal(&a, &v.holder))
		abort();
	if ((s = etcd_fence_value(v.epoch, &v.holder)) == NULL)
		return;
	if (etcd_fence_value_parse(s, strlen(s), &back, err,
	    sizeof(err)) == -1 || back.epoch != v.epoch ||
	    !addr_equal(&back.holder, &v.holder))
		abort();
	free(s);
}

/*
 * Built from the input: a fence value (epoch, address bytes), and a
 * range response of key with that revision and those value bytes: each
 * parses back to exactly what went in; the kv read for another key is
 * refused.
 */
static void
check_built_fence(const uint8_t *data, size_t size, const char *key)
{
	struct etcd_fence	 v;
	struct etcd_range	 r;
	struct grgw_addr	 a;
	json_t			*doc;
	char			*s, err[256], *b64, *k64;
	size_t			 vlen, b64size;
	int64_t			 rev;

	if (size < 26)
		return;
	memset(&a, 0, sizeof(a));
	a.family = data[0] & 1 ? AF_INET6 : AF_INET;
	memcpy(a.addr, data + 1, (size_t)addr_len(a.family));
	s = etcd_fence_value(take_i64(data + 17) & INT64_MAX, &a);
	if (s != NULL) {
		if (etcd_fence_value_parse(s, strlen(s), &v, err,
		    sizeof(err)) == -1 ||
		    v.epoch != (uint64_t)(take_i64(data + 17) & INT64_MAX) ||
		    !addr_equal(&v.holder, &a))
			abort();
		free(s);
	} else if ((take_i64(data + 17) & INT64_MAX) != 0)
		abort();

	rev = take_i64(data + 17);
	vlen = size - 25;
	b64size = sodium_base64_ENCODED_LEN(vlen, sodium_base64_VARIANT_ORIGINAL);
	b64 = malloc(b64size);
	k64 = b64_text(key);
	if (b64 == NULL || k64 == NULL) {
		free(b64);
		free(k64);
		return;
	}
	sodium_bin2base64(b64, b64size, data + 25, vlen,
	    sodium_base64_VARIANT_ORIGINAL);
	doc = json_pack("{s:{}, s:[{s:s, s:o, s:s}], s:s}", "header", "kvs",
	    "key", k64, "mod_revision", num_json(rev, data[0] & 2),
	    "value", b64, "count", "1");
	free(b64);
	free(k64);
	s = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	if (s == NULL)
		return;
	if (etcd_range_parse(s, strlen(s), key, &r, err, sizeof(err)) == 0) {
		if (rev <= 0 || !r.kv.found || r.kv.mod_revision != rev ||
		    (vlen > ETCD_KV_VALUE_MAX) != r.kv.value_too_long ||
		    (vlen <= ETCD_KV_VALUE_MAX && (r.kv.value_len != vlen ||
		    memcmp(r.kv.value, data + 25, vlen) != 0)))
			abort();
	} else if (rev > 0)
		abort();
	/* Another key's kv is never taken for this one's. */
	if (etcd_range_parse(s, strlen(s), FENCE_KEY "/x", &r, err,
	    sizeof(err)) == 0 && strcmp(key, FENCE_KEY "/x") != 0)
		abort();
	free(s);
}

/* The txn built for key and value carries them, and the revision. */
static void
check_cas_request(const char *key, const char *value, int64_t rev)
{
	json_t		*doc;
	const char	*k1, *k2, *k3, *v, *target, *result, *r;
	char		 num[32], *body, *want_k, *want_v;

	body = etcd_cas_request(key, rev, value);
	if (rev < 0) {
		if (body != NULL)
			abort();
		return;
	}
	if (body == NULL)
		return;
	if ((doc = json_loads(body, JSON_REJECT_DUPLICATES, NULL)) == NULL ||
	    json_unpack(doc, "{s:[{s:s, s:s, s:s, s:s !}], "
	    "s:[{s:{s:s, s:s !} !}], s:[{s:{s:s !} !}] !}",
	    "compare", "key", &k1, "target", &target, "result", &result,
	    "mod_revision", &r, "success", "request_put", "key", &k2, "value",
	    &v, "failure", "request_range", "key", &k3) != 0)
		abort();
	snprintf(num, sizeof(num), "%lld", (long long)rev);
	want_k = b64_text(key);
	want_v = b64_text(value);
	if (want_k != NULL && want_v != NULL && (strcmp(r, num) != 0 ||
	    strcmp(target, "MOD") != 0 || strcmp(result, "EQUAL") != 0 ||
	    strcmp(k1, want_k) != 0 || strcmp(k2, want_k) != 0 ||
	    strcmp(k3, want_k) != 0 || strcmp(v, want_v) != 0))
		abort();
	free(want_k);
	free(want_v);
	json_decref(doc);
	free(body);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t	*ref;
	char	*buf, *str, *mid;

	if ((buf = malloc(size > 0 ? size : 1)) == NULL)
		return 0;
	memcpy(buf, data, size);
	ref = json_loadb(buf, size, JSON_REJECT_DUPLICATES, NULL);
	check_grant(buf, size, ref);
	check_keepalive(buf, size, ref);
	check_put_and_error(buf, size, ref);
	check_range_and_cas(buf, size, ref);
	check_fence_value(buf, size, ref);
	json_decref(ref);
	free(buf);

	check_built_lease(data, size);

	if ((str = malloc(size + 1)) == NULL)
		return 0;
	memcpy(str, data, size);
	str[size] = '\0';
	check_addresses(str);
	/* Key and value: the text before and after the first newline. */
	if (size < 2048) {
		if ((mid = strchr(str, '\n')) != NULL)
			*mid++ = '\0';
		check_put_request(str, mid != NULL ? mid : "", size > 8 ?
		    take_i64(data) : 0);
		check_cas_request(str, mid != NULL ? mid : "", size > 8 ?
		    take_i64(data) : 0);
		check_built_fence(data, size, str);
	}
	free(str);
	return 0;
}
