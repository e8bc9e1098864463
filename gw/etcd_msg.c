/*
 * The requests grgw sends to etcd's v3 JSON gateway and the responses it
 * reads from it (see etcd_msg.h).  Pure: jansson builds and parses, and
 * libsodium encodes keys and values in base64, as the gateway wants them.
 */
#include <arpa/inet.h>

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "grgw.h"
#include "etcd_msg.h"

/* A key given twice makes a response ambiguous: refused. */
#define ETCD_DECODE_FLAGS	JSON_REJECT_DUPLICATES
#define ETCD_ENCODE_FLAGS	(JSON_COMPACT | JSON_PRESERVE_ORDER)

/* ---- requests ------------------------------------------------------------ */

/* Dump doc and release it; NULL in, NULL out. */
static char *
etcd_dump(json_t *doc)
{
	char	*s;

	if (doc == NULL)
		return NULL;
	s = json_dumps(doc, ETCD_ENCODE_FLAGS);
	json_decref(doc);
	return s;
}

/* s in standard base64, as a JSON string (a new reference). */
static json_t *
base64_json(const char *s)
{
	size_t	 len = strlen(s), size;
	char	*b64;
	json_t	*v;

	size = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
	if ((b64 = malloc(size)) == NULL)
		return NULL;
	sodium_bin2base64(b64, size, (const unsigned char *)s, len,
	    sodium_base64_VARIANT_ORIGINAL);
	v = json_string(b64);
	free(b64);
	return v;
}

/* A 64-bit integer as etcd writes one: a string of digits. */
static json_t *
int64_json(int64_t n)
{
	char	 buf[24];

	snprintf(buf, sizeof(buf), "%lld", (long long)n);
	return json_string(buf);
}

char *
etcd_grant_request(unsigned ttl_s)
{
	return etcd_dump(json_pack("{s:I}", "TTL", (json_int_t)ttl_s));
}

char *
etcd_put_request(const char *key, const char *value, int64_t lease)
{
	return etcd_dump(json_pack("{s:o, s:o, s:o}", "key", base64_json(key),
	    "value", base64_json(value), "lease", int64_json(lease)));
}

char *
etcd_keepalive_request(int64_t lease)
{
	return etcd_dump(json_pack("{s:o}", "ID", int64_json(lease)));
}

char *
etcd_range_request(const char *key)
{
	return etcd_dump(json_pack("{s:o}", "key", base64_json(key)));
}

char *
etcd_cas_request(const char *key, int64_t expect_mod_revision,
    const char *value)
{
	if (expect_mod_revision < 0)
		return NULL;
	/* MOD and EQUAL spelled out: the defaults would be VERSION, EQUAL. */
	return etcd_dump(json_pack("{s:[{s:o, s:s, s:s, s:o}], "
	    "s:[{s:{s:o, s:o}}], s:[{s:{s:o}}]}",
	    "compare", "key", base64_json(key), "target", "MOD",
	    "result", "EQUAL", "mod_revision", int64_json(expect_mod_revision),
	    "success", "request_put", "key", base64_json(key),
	    "value", base64_json(value),
	    "failure", "request_range", "key", base64_json(key)));
}

char *
etcd_fence_value(uint64_t epoch, const struct grgw_addr *holder)
{
	char	 addr[INET6_ADDRSTRLEN];

	if (epoch == 0 || epoch > INT64_MAX || holder == NULL ||
	    addr_len(holder->family) == 0 ||
	    addr_fmt(holder, addr, sizeof(addr)) == NULL)
		return NULL;
	return etcd_dump(json_pack("{s:I, s:s}", "epoch", (json_int_t)epoch,
	    "holder", addr));
}

/* ---- reading members ------------------------------------------------------- */

/* What reaches a message from a body: printable ASCII, the rest as '?'. */
static void
printable_copy(char *dst, size_t size, const char *src)
{
	size_t	 i;

	if (size == 0)
		return;
	for (i = 0; src[i] != '\0' && i + 1 < size; i++)
		dst[i] = src[i] >= 0x20 && src[i] < 0x7f ? src[i] : '?';
	dst[i] = '\0';
}

/* The whole body as one JSON object (a new reference), or NULL. */
static json_t *
etcd_load(const char *body, size_t len, char *err, size_t errlen)
{
	json_error_t	 je;
	json_t		*root;
	char		 why[JSON_ERROR_TEXT_LENGTH];

	if (body == NULL || len == 0) {
		err_set(err, errlen, "empty response");
		return NULL;
	}
	if ((root = json_loadb(body, len, ETCD_DECODE_FLAGS, &je)) == NULL) {
		printable_copy(why, sizeof(why), je.text);
		err_set(err, errlen, "not JSON: %s (byte %d)", why, je.position);
		return NULL;
	}
	if (!json_is_object(root)) {
		json_decref(root);
		err_set(err, errlen, "not a JSON object");
		return NULL;
	}
	return root;
}

/*
 * len bytes of s as a decimal number no larger than limit: digits only,
 * no leading zero (but "0" itself).  0, or -1.
 */
static int
digits_parse(const char *s, size_t len, uint64_t limit, uint64_t *out)
{
	uint64_t	 n = 0, d;
	size_t		 i;

	if (len == 0 || (s[0] == '0' && len > 1))
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		d = (uint64_t)(s[i] - '0');
		if (n > (limit - d) / 10)
			return -1;
		n = n * 10 + d;
	}
	*out = n;
	return 0;
}

/* A JSON integer, or a string of digits with an optional '-' ("-0" is
 * not one).  0, or -1. */
static int
int64_of(const json_t *v, int64_t *out)
{
	const char	*s;
	size_t		 len;
	uint64_t	 mag;
	int		 neg;

	if (json_is_integer(v)) {
		*out = json_integer_value(v);
		return 0;
	}
	if (!json_is_string(v))
		return -1;
	s = json_string_value(v);
	len = json_string_length(v);
	neg = len > 0 && s[0] == '-';
	if (digits_parse(s + neg, len - (size_t)neg, neg ?
	    (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, &mag) == -1 ||
	    (neg && mag == 0))
		return -1;
	if (!neg)
		*out = (int64_t)mag;
	else if (mag == (uint64_t)INT64_MAX + 1)
		*out = INT64_MIN;
	else
		*out = -(int64_t)mag;
	return 0;
}

/* A JSON integer >= 0, or a string of digits up to UINT64_MAX. */
static int
uint64_of(const json_t *v, uint64_t *out)
{
	if (json_is_integer(v)) {
		if (json_integer_value(v) < 0)
			return -1;
		*out = (uint64_t)json_integer_value(v);
		return 0;
	}
	if (!json_is_string(v))
		return -1;
	return digits_parse(json_string_value(v), json_string_length(v),
	    UINT64_MAX, out);
}

/*
 * The integer member key of obj into *out, 0 when absent (etcd leaves
 * zeros out).  where names obj in messages ("" or "\"result\".").
 */
static int
member_int64(const json_t *obj, const char *where, const char *key,
    int64_t *out, char *err, size_t errlen)
{
	const json_t	*v;

	*out = 0;
	if ((v = json_object_get(obj, key)) == NULL)
		return 0;
	if (int64_of(v, out) == -1)
		return err_set(err, errlen, "%s\"%s\" is not a 64-bit integer",
		    where, key);
	return 0;
}

static int
member_uint64(const json_t *obj, const char *where, const char *key,
    uint64_t *out, char *err, size_t errlen)
{
	const json_t	*v;

	*out = 0;
	if ((v = json_object_get(obj, key)) == NULL)
		return 0;
	if (uint64_of(v, out) == -1)
		return err_set(err, errlen, "%s\"%s\" is not an unsigned 64-bit "
		    "integer", where, key);
	return 0;
}

/* The "header" member of obj; required or not. */
static int
header_parse(const json_t *obj, const char *where, int required,
    struct etcd_header *h, char *err, size_t errlen)
{
	const json_t	*hv;
	char		 in[64];

	memset(h, 0, sizeof(*h));
	if ((hv = json_object_get(obj, "header")) == NULL)
		return required ? err_set(err, errlen, "%s\"header\" is missing",
		    where) : 0;
	if (!json_is_object(hv))
		return err_set(err, errlen, "%s\"header\" is not an object",
		    where);
	snprintf(in, sizeof(in), "%s\"header\".", where);
	if (member_uint64(hv, in, "cluster_id", &h->cluster_id, err,
	    errlen) == -1 ||
	    member_uint64(hv, in, "member_id", &h->member_id, err,
	    errlen) == -1 ||
	    member_int64(hv, in, "revision", &h->revision, err, errlen) == -1 ||
	    member_uint64(hv, in, "raft_term", &h->raft_term, err,
	    errlen) == -1)
		return -1;
	return 0;
}

/* The members of a lease response (LeaseGrant or LeaseKeepAlive). */
static int
lease_parse(const json_t *obj, const char *where, struct etcd_lease *out,
    char *err, size_t errlen)
{
	if (header_parse(obj, where, 0, &out->header, err, errlen) == -1 ||
	    member_int64(obj, where, "ID", &out->id, err, errlen) == -1 ||
	    member_int64(obj, where, "TTL", &out->ttl, err, errlen) == -1)
		return -1;
	return 0;
}

/* The "error" text a LeaseGrantResponse may carry: refused if not empty. */
static int
grant_error(const json_t *root, char *err, size_t errlen)
{
	const json_t	*v;
	char		 text[ETCD_ERROR_MESSAGE_MAX];

	if ((v = json_object_get(root, "error")) == NULL)
		return 0;
	if (!json_is_string(v))
		return err_set(err, errlen, "\"error\" is not a string");
	if (json_string_length(v) == 0)
		return 0;
	printable_copy(text, sizeof(text), json_string_value(v));
	return err_set(err, errlen, "etcd refused the lease: %s", text);
}

/* ---- responses --------------------------------------------------------------- */

int
etcd_grant_parse(const char *body, size_t len, struct etcd_lease *out,
    char *err, size_t errlen)
{
	json_t	*root;
	int	 rc = -1;

	memset(out, 0, sizeof(*out));
	if ((root = etcd_load(body, len, err, errlen)) == NULL)
		return -1;
	if (grant_error(root, err, errlen) == -1 ||
	    lease_parse(root, "", out, err, errlen) == -1)
		goto cleanup;
	if (out->id == 0) {
		err_set(err, errlen, "no lease \"ID\"");
		goto cleanup;
	}
	if (out->id < 0) {
		err_set(err, errlen, "lease \"ID\" %lld is not positive",
		    (long long)out->id);
		goto cleanup;
	}
	rc = 0;
cleanup:
	json_decref(root);
	return rc;
}

int
etcd_keepalive_parse(const char *body, size_t len, struct etcd_lease *out,
    char *err, size_t errlen)
{
	json_t		*root;
	const json_t	*result;
	int		 rc = -1;

	memset(out, 0, sizeof(*out));
	if ((root = etcd_load(body, len, err, errlen)) == NULL)
		return -1;
	result = json_object_get(root, "result");
	if (!json_is_object(result)) {
		err_set(err, errlen, "\"result\" is %s", result == NULL ?
		    "missing" : "not an object");
		goto cleanup;
	}
	if (lease_parse(result, "\"result\".", out, err, errlen) == -1)
		goto cleanup;
	rc = 0;
cleanup:
	json_decref(root);
	return rc;
}

int
etcd_put_parse(const char *body, size_t len, struct etcd_put *out,
    char *err, size_t errlen)
{
	json_t	*root;
	int	 rc;

	memset(out, 0, sizeof(*out));
	if ((root = etcd_load(body, len, err, errlen)) == NULL)
		return -1;
	rc = header_parse(root, "", 1, &out->header, err, errlen);
	json_decref(root);
	return rc;
}

/* The text of an error: "message" if it says something, else "error". */
static int
error_text(const json_t *obj, const char *where, const json_t *error_str,
    struct etcd_error *out, char *err, size_t errlen)
{
	const json_t	*msg = json_object_get(obj, "message");

	if (msg != NULL && !json_is_string(msg))
		return err_set(err, errlen, "%s\"message\" is not a string",
		    where);
	if (msg == NULL || json_string_length(msg) == 0)
		msg = error_str;
	if (msg == NULL || json_string_length(msg) == 0)
		return error_str != NULL || *where == '\0' ?
		    err_set(err, errlen, "no \"message\" or \"error\" text") :
		    err_set(err, errlen, "%s\"message\" is missing or empty",
		    where);
	printable_copy(out->message, sizeof(out->message),
	    json_string_value(msg));
	return 0;
}

static int
error_code(const json_t *obj, const char *where, const char *key,
    struct etcd_error *out, char *err, size_t errlen)
{
	const json_t	*v;

	if ((v = json_object_get(obj, key)) == NULL)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    json_integer_value(v) > INT_MAX)
		return err_set(err, errlen, "%s\"%s\" is not a status code",
		    where, key);
	out->code = (int)json_integer_value(v);
	return 0;
}

int
etcd_error_parse(const char *body, size_t len, struct etcd_error *out,
    char *err, size_t errlen)
{
	json_t		*root;
	const json_t	*ev;
	int		 rc = -1;

	memset(out, 0, sizeof(*out));
	if ((root = etcd_load(body, len, err, errlen)) == NULL)
		return -1;
	ev = json_object_get(root, "error");
	if (json_is_object(ev)) {
		/* A streaming call's error, inside "error". */
		if (error_text(ev, "\"error\".", NULL, out, err, errlen) == -1 ||
		    error_code(ev, "\"error\".", "grpc_code", out, err,
		    errlen) == -1)
			goto cleanup;
	} else if (ev != NULL && !json_is_string(ev)) {
		err_set(err, errlen, "\"error\" is neither a string nor an "
		    "object");
		goto cleanup;
	} else if (error_text(root, "", ev, out, err, errlen) == -1 ||
	    error_code(root, "", "code", out, err, errlen) == -1)
		goto cleanup;
	rc = 0;
cleanup:
	json_decref(root);
	return rc;
}

int
etcd_error_lease_not_found(const struct etcd_error *e)
{
	return e != NULL && strstr(e->message, "lease not found") != NULL;
}

/* ---- the fence: range and txn ------------------------------------------- */

/*
 * Does the base64 text of v name key?  The gateway writes canonical
 * base64 and libsodium reads nothing else, so comparing the texts is
 * comparing the keys.
 */
static int
key_is(const json_t *v, const char *key)
{
	json_t	*want;
	int	 same;

	if ((want = base64_json(key)) == NULL)
		return 0;
	same = json_equal(v, want);
	json_decref(want);
	return same;
}

/*
 * Is s (len bytes) standard base64 text, padded, as etcd writes it?
 * Checked here because libsodium 1.0.18 takes some bytes above 0x7f for
 * digits; it still checks what follows (the unused bits are zero).
 */
static int
base64_text_ok(const char *s, size_t len)
{
	size_t	 i, pad = 0;

	if (len % 4 != 0)
		return 0;
	if (len > 0 && s[len - 1] == '=')
		pad = len > 1 && s[len - 2] == '=' ? 2 : 1;
	for (i = 0; i < len - pad; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' &&
		    s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
		    s[i] == '+' || s[i] == '/'))
			return 0;
	return 1;
}

/* The base64 "value" of a kv into out (absent: empty). */
static int
kv_value(const json_t *kv, const char *where, struct etcd_kv *out,
    char *err, size_t errlen)
{
	const json_t	*v = json_object_get(kv, "value");
	/* Any text up to the length of MAX bytes' encoding decodes here. */
	unsigned char	 bin[(ETCD_KV_VALUE_MAX + 2) / 3 * 3];
	size_t		 len, bin_len;

	if (v == NULL)
		return 0;
	if (!json_is_string(v))
		return err_set(err, errlen, "%s\"value\" is not a string", where);
	len = json_string_length(v);
	if (len > sodium_base64_ENCODED_LEN(ETCD_KV_VALUE_MAX,
	    sodium_base64_VARIANT_ORIGINAL) - 1) {
		out->value_too_long = 1;
		return 0;
	}
	if (!base64_text_ok(json_string_value(v), len) ||
	    sodium_base642bin(bin, sizeof(bin), json_string_value(v), len,
	    NULL, &bin_len, NULL, sodium_base64_VARIANT_ORIGINAL) != 0)
		return err_set(err, errlen, "%s\"value\" is not base64", where);
	if (bin_len > ETCD_KV_VALUE_MAX) {
		out->value_too_long = 1;
		return 0;
	}
	memcpy(out->value, bin, bin_len);
	out->value[bin_len] = '\0';
	out->value_len = bin_len;
	return 0;
}

/* One element of "kvs": key's, with a positive mod_revision. */
static int
kv_parse(const json_t *kv, const char *where, const char *key,
    struct etcd_kv *out, char *err, size_t errlen)
{
	const json_t	*k;
	int64_t		 lease;

	if (!json_is_object(kv))
		return err_set(err, errlen, "%sis not an object", where);
	k = json_object_get(kv, "key");
	if (!json_is_string(k))
		return err_set(err, errlen, "%s\"key\" is %s", where, k == NULL ?
		    "missing" : "not a string");
	if (!key_is(k, key))
		return err_set(err, errlen, "%s\"key\" is not the key asked "
		    "for", where);
	if (member_int64(kv, where, "create_revision", &out->create_revision,
	    err, errlen) == -1 ||
	    member_int64(kv, where, "mod_revision", &out->mod_revision, err,
	    errlen) == -1 ||
	    member_int64(kv, where, "version", &out->version, err,
	    errlen) == -1 ||
	    member_int64(kv, where, "lease", &lease, err, errlen) == -1 ||
	    kv_value(kv, where, out, err, errlen) == -1)
		return -1;
	if (out->mod_revision <= 0)
		return err_set(err, errlen, "%s\"mod_revision\" %lld is not "
		    "positive", where, (long long)out->mod_revision);
	out->found = 1;
	return 0;
}

/*
 * The members of a RangeResponse in obj for key: "kvs" (absent or empty:
 * not found; one: key's) and "count", which must agree.
 */
static int
range_members(const json_t *obj, const char *where, const char *key,
    struct etcd_kv *out, char *err, size_t errlen)
{
	const json_t	*kvs;
	int64_t		 count;
	size_t		 n = 0;
	char		 in[96];

	memset(out, 0, sizeof(*out));
	if (member_int64(obj, where, "count", &count, err, errlen) == -1)
		return -1;
	if ((kvs = json_object_get(obj, "kvs")) != NULL) {
		if (!json_is_array(kvs))
			return err_set(err, errlen, "%s\"kvs\" is not an array",
			    where);
		n = json_array_size(kvs);
	}
	if (n > 1)
		return err_set(err, errlen, "%s\"kvs\" has %zu keys, not one",
		    where, n);
	if (count < 0 || (uint64_t)count != n)
		return err_set(err, errlen, "%s\"count\" %lld disagrees with "
		    "\"kvs\"", where, (long long)count);
	if (n == 0)
		return 0;
	snprintf(in, sizeof(in), "%s\"kvs\"[0].", where);
	return kv_parse(json_array_get(kvs, 0), in, key, out, err, errlen);
}

int
etcd_range_parse(const char *body, size_t len, const char *key,
    struct etcd_range *out, char *err, size_t errlen)
{
	json_t	*root;
	int	 rc = -1;

	memset(out, 0, sizeof(*out));
	if (key == NULL)
		return err_set(err, errlen, "no key");
	if ((root = etcd_load(body, len, err, errlen)) == NULL)
		return -1;
	if (header_parse(root, "", 1, &out->header, err, errlen) == -1 ||
	    range_members(root, "", key, &out->kv, err, errlen) == -1)
		goto cleanup;
	rc = 0;
cleanup:
	json_decref(root);
	if (rc == -1)
		memset(out, 0, sizeof(*out));
	return rc;
}

/* "succeeded": true, false, or absent (false, as etcd leaves it out). */
static int
cas_succeeded(const json_t *root, int *out, char *err, size_t errlen)
{
	const json_t	*v = json_object_get(root, "succeeded");

	*out = 0;
	if (v == NULL)
		return 0;
	if (!json_is_boolean(v))
		return err_set(err, errlen, "\"succeeded\" is not a boolean");
	*out = json_is_true(v);
	return 0;
}

/* The one response of the branch that ran: its object, or NULL. */
static const json_t *
cas_response(const json_t *root, int succeeded, char *err, size_t errlen)
{
	const json_t	*rs, *r, *v;
	const char	*want = succeeded ? "response_put" : "response_range";
	const char	*other = succeeded ? "response_range" : "response_put";

	rs = json_object_get(root, "responses");
	if (!json_is_array(rs)) {
		err_set(err, errlen, "\"responses\" is %s", rs == NULL ?
		    "missing" : "not an array");
		return NULL;
	}
	if (json_array_size(rs) != 1) {
		err_set(err, errlen, "\"responses\" has %zu elements, not one",
		    json_array_size(rs));
		return NULL;
	}
	r = json_array_get(rs, 0);
	if (!json_is_object(r)) {
		err_set(err, errlen, "\"responses\"[0] is not an object");
		return NULL;
	}
	v = json_object_get(r, want);
	if (!json_is_object(v)) {
		err_set(err, errlen, "\"responses\"[0].\"%s\" is %s", want,
		    v == NULL ? "missing" : "not an object");
		return NULL;
	}
	if (json_object_get(r, other) != NULL) {
		err_set(err, errlen, "\"responses\"[0] has \"%s\" in a txn that "
		    "%s", other, succeeded ? "succeeded" : "failed");
		return NULL;
	}
	return v;
}

int
etcd_cas_parse(const char *body, size_t len, const char *key,
    struct etcd_cas *out, char *err, size_t errlen)
{
	struct etcd_header	 h;
	json_t			*root;
	const json_t		*r;
	int			 rc = -1;

	memset(out, 0, sizeof(*out));
	if (key == NULL)
		return err_set(err, errlen, "no key");
	if ((root = etcd_load(body, len, err, errlen)) == NULL)
		return -1;
	if (header_parse(root, "", 1, &out->header, err, errlen) == -1 ||
	    cas_succeeded(root, &out->succeeded, err, errlen) == -1 ||
	    (r = cas_response(root, out->succeeded, err, errlen)) == NULL)
		goto cleanup;
	if (out->succeeded) {
		if (header_parse(r, "\"responses\"[0].\"response_put\".", 0,
		    &h, err, errlen) == -1)
			goto cleanup;
		/* The put made the txn's revision: the key's mod_revision. */
		if (out->header.revision <= 0) {
			err_set(err, errlen, "\"header\".\"revision\" %lld is not "
			    "positive", (long long)out->header.revision);
			goto cleanup;
		}
		out->mod_revision = out->header.revision;
	} else if (header_parse(r, "\"responses\"[0].\"response_range\".", 0,
	    &h, err, errlen) == -1 ||
	    range_members(r, "\"responses\"[0].\"response_range\".", key,
	    &out->kv, err, errlen) == -1)
		goto cleanup;
	rc = 0;
cleanup:
	json_decref(root);
	if (rc == -1)
		memset(out, 0, sizeof(*out));
	return rc;
}

/* ---- the fence's value ------------------------------------------------- */

static int
fence_holder(const json_t *v, struct grgw_addr *out, char *err,
    size_t errlen)
{
	char	 text[INET6_ADDRSTRLEN];
	size_t	 len;

	if (!json_is_string(v))
		return err_set(err, errlen, "\"holder\" is %s", v == NULL ?
		    "missing" : "not a string");
	len = json_string_length(v);
	if (len == 0 || len >= sizeof(text) ||
	    strlen(json_string_value(v)) != len)
		return err_set(err, errlen, "\"holder\" is not an IP address");
	memcpy(text, json_string_value(v), len + 1);
	if (addr_parse(text, out) == -1) {
		printable_copy(text, sizeof(text), json_string_value(v));
		return err_set(err, errlen, "\"holder\" \"%s\" is not an IP "
		    "address", text);
	}
	return 0;
}

int
etcd_fence_value_parse(const char *value, size_t len, struct etcd_fence *out,
    char *err, size_t errlen)
{
	json_t		*root;
	const json_t	*v;
	int		 rc = -1;

	memset(out, 0, sizeof(*out));
	if (value == NULL || len == 0)
		return err_set(err, errlen, "the value is empty");
	if (len > ETCD_FENCE_VALUE_MAX)
		return err_set(err, errlen, "value of %zu bytes is longer than "
		    "%d", len, ETCD_FENCE_VALUE_MAX);
	if ((root = etcd_load(value, len, err, errlen)) == NULL)
		return -1;
	v = json_object_get(root, "epoch");
	if (!json_is_integer(v)) {
		err_set(err, errlen, "\"epoch\" is %s", v == NULL ? "missing" :
		    "not an integer");
		goto cleanup;
	}
	if (json_integer_value(v) <= 0) {
		err_set(err, errlen, "\"epoch\" %lld is not positive",
		    (long long)json_integer_value(v));
		goto cleanup;
	}
	out->epoch = (uint64_t)json_integer_value(v);
	if (fence_holder(json_object_get(root, "holder"), &out->holder, err,
	    errlen) == -1)
		goto cleanup;
	rc = 0;
cleanup:
	json_decref(root);
	if (rc == -1)
		memset(out, 0, sizeof(*out));
	return rc;
}

void
etcd_excerpt(const char *body, size_t len, char *buf, size_t size)
{
	size_t	 i, o = 0;

	for (i = 0; i < len && o + 1 < size && o < 80; i++)
		buf[o++] = body[i] >= 0x20 && body[i] < 0x7f ? body[i] : '?';
	buf[o] = '\0';
}
