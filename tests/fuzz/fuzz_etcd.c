/*
 * libFuzzer harness for what the feeds read from outside: etcd's JSON
 * responses (etcd_msg.c) and the addresses of the configuration
 * (addr_port_parse, addr_url_parse).
 *
 * The input is used three ways:
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
 *    back out, base64 and all.
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
	}
	free(str);
	return 0;
}
