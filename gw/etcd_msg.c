/*
 * The requests grgw sends to etcd's v3 JSON gateway and the responses it
 * reads from it (see etcd_msg.h).  Pure: jansson builds and parses, and
 * libsodium encodes keys and values in base64, as the gateway wants them.
 */
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
