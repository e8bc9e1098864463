/*
 * etcd_msg.c: the messages grgw exchanges with etcd's v3 JSON gateway
 * (etcd 3.4 and later: POST /v3/lease/grant, /v3/kv/put,
 * /v3/lease/keepalive for the link-state feed; /v3/kv/range and
 * /v3/kv/txn for the pair's fence), built and parsed with jansson.  Pure:
 * no I/O and no event loop; the clients that send them are etcd.c and
 * fence.c.
 *
 * What etcd writes, and what the parsers therefore accept:
 *  - 64-bit integers as JSON strings of decimal digits ("ID":"758786..."),
 *    small ones sometimes as numbers; both spellings are read, nothing
 *    else (no "1.5", "1e3", "007", " 7", "+7", or values out of range);
 *  - members whose value is zero or empty are left out (a keepalive
 *    answer for a lease etcd no longer knows has no "TTL"): an absent
 *    integer reads as 0;
 *  - a response is one JSON object, parsed whole: a member counts only
 *    where etcd puts it (the keepalive's "TTL" inside "result", never at
 *    any other depth), a member of the wrong type refuses the whole
 *    response, and so does a key given twice.
 *
 * Each response is parsed into a small struct of its own, so that a new
 * call (the transactions of /v3/kv/txn, with their nested responses) is
 * one more struct and one more parser over the same member readers.
 *
 * The parsers take a body of len bytes (not NUL-terminated; borrowed for
 * the call), fill *out, and return 0, or -1 with a message in err that
 * says what is wrong and where ("\"result\".\"TTL\" is not an integer").
 * Messages quote nothing but printable ASCII from the body.
 */
#ifndef GRGW_ETCD_MSG_H
#define GRGW_ETCD_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "grgw.h"

/* The "header" of every response (ResponseHeader); 0 where absent. */
struct etcd_header {
	uint64_t	cluster_id;
	uint64_t	member_id;
	int64_t		revision;
	uint64_t	raft_term;
};

/* A lease, as /v3/lease/grant and /v3/lease/keepalive answer. */
struct etcd_lease {
	struct etcd_header header;
	int64_t		id;
	int64_t		ttl;	/* seconds; <= 0: etcd no longer has it */
};

/* What /v3/kv/put answers (its "prev_kv" is not asked for). */
struct etcd_put {
	struct etcd_header header;
};

/*
 * An error body: {"error":"...","code":N,"message":"..."}, or the form of
 * a streaming call, {"error":{"grpc_code":N,"message":"...",...}}.
 */
#define ETCD_ERROR_MESSAGE_MAX	200
struct etcd_error {
	int		code;	/* gRPC status code (5: not found), 0 absent */
	/* "etcdserver: requested lease not found": printable ASCII, other
	 * bytes as '?', cut to fit */
	char		message[ETCD_ERROR_MESSAGE_MAX];
};

/*
 * One key as a range reads it (mvccpb.KeyValue).  Keys and values travel
 * in base64; the value is decoded here when it fits, NUL-terminated for
 * convenience (value_len counts the bytes, which may include NULs).  A
 * longer value is not an error: the revisions still say where the key
 * stands (a fence can be claimed over a value that is garbage).
 */
#define ETCD_KV_VALUE_MAX	512
struct etcd_kv {
	int		found;		/* 0: the key does not exist */
	int64_t		create_revision;
	int64_t		mod_revision;	/* > 0 when found */
	int64_t		version;
	int		value_too_long;	/* value[] then empty */
	size_t		value_len;	/* bytes in value[] */
	char		value[ETCD_KV_VALUE_MAX + 1];
};

/* What /v3/kv/range answers for one key. */
struct etcd_range {
	struct etcd_header header;
	struct etcd_kv	kv;
};

/*
 * What /v3/kv/txn answers for etcd_cas_request(): succeeded, and the
 * key's new mod_revision (the revision the put made: the header's); or
 * failed, and the key as the failure branch read it (kv.found 0: absent).
 */
struct etcd_cas {
	struct etcd_header header;
	int		succeeded;
	int64_t		mod_revision;	/* succeeded only */
	struct etcd_kv	kv;		/* failed only */
};

/*
 * The value of the pair's fence key: {"epoch":N,"holder":"<address>"}.
 * The epoch is 1 to INT64_MAX (JSON integers are 64-bit signed for
 * jansson, and the first claim writes 1); the holder is the claimant's
 * own address, an IP literal.
 */
#define ETCD_FENCE_VALUE_MAX	128
struct etcd_fence {
	uint64_t	epoch;
	struct grgw_addr holder;
};

/* ---- requests ------------------------------------------------------------
 * Each returns the JSON body, NUL-terminated, owned by the caller (free()),
 * or NULL when out of memory.
 */

/* {"TTL":ttl_s} for /v3/lease/grant. */
char	*etcd_grant_request(unsigned ttl_s);
/* {"key":"<base64>","value":"<base64>","lease":"<id>"} for /v3/kv/put;
 * key and value (NUL-terminated, borrowed) are encoded here. */
char	*etcd_put_request(const char *key, const char *value, int64_t lease);
/* {"ID":"<id>"} for /v3/lease/keepalive. */
char	*etcd_keepalive_request(int64_t lease);
/* {"key":"<base64>"} for /v3/kv/range: that key alone, linearizable. */
char	*etcd_range_request(const char *key);
/*
 * The compare-and-swap of the pair's fence, for /v3/kv/txn: if key's
 * mod_revision is expect_mod_revision (0: the key is absent), put key =
 * value (no lease: the fence outlives its writer), else range key, so
 * that the loser learns in the same round trip who holds it.  key and
 * value are borrowed; NULL also when expect_mod_revision < 0.
 */
char	*etcd_cas_request(const char *key, int64_t expect_mod_revision,
	    const char *value);
/* {"epoch":N,"holder":"<address>"}; NULL when epoch is 0 or above
 * INT64_MAX, or holder is not an address. */
char	*etcd_fence_value(uint64_t epoch, const struct grgw_addr *holder);

/* ---- responses ------------------------------------------------------------ */

/*
 * /v3/lease/grant: {"header":{...},"ID":"123","TTL":"10"}.  The ID must
 * be there and positive; a non-empty "error" member refuses the grant.
 */
int	etcd_grant_parse(const char *body, size_t len, struct etcd_lease *out,
	    char *err, size_t errlen);
/*
 * /v3/lease/keepalive: {"result":{"header":{...},"ID":"..","TTL":".."}}.
 * out->ttl is 0 when the TTL is absent: the lease is gone.
 */
int	etcd_keepalive_parse(const char *body, size_t len,
	    struct etcd_lease *out, char *err, size_t errlen);
/* /v3/kv/put: {"header":{...}}; the header must be there. */
int	etcd_put_parse(const char *body, size_t len, struct etcd_put *out,
	    char *err, size_t errlen);
/* An error body (either form above), with a message or an error text. */
int	etcd_error_parse(const char *body, size_t len, struct etcd_error *out,
	    char *err, size_t errlen);
/* 1 when etcd says the lease a request named does not exist. */
int	etcd_error_lease_not_found(const struct etcd_error *e);
/*
 * /v3/kv/range for key (NUL-terminated, borrowed): {"header":{...},
 * "kvs":[{"key":..,"mod_revision":..,"value":..}],"count":"1"}, or no
 * "kvs" when the key is absent.  The header must be there; at most one
 * kv, and "count" must agree; the kv must be key's (its base64 text is
 * key's, as etcd writes base64 canonically), with a positive
 * mod_revision and a value in standard, padded base64.
 */
int	etcd_range_parse(const char *body, size_t len, const char *key,
	    struct etcd_range *out, char *err, size_t errlen);
/*
 * /v3/kv/txn for etcd_cas_request(key, ...): {"header":{...},
 * "succeeded":true,"responses":[{"response_put":{...}}]} with a
 * positive header revision, or (no "succeeded") {"header":{...},
 * "responses":[{"response_range":{...}}]}, read as etcd_range_parse()
 * reads a range.  Exactly one response, of the branch's kind.
 */
int	etcd_cas_parse(const char *body, size_t len, const char *key,
	    struct etcd_cas *out, char *err, size_t errlen);
/*
 * A fence value (value of len bytes, not NUL-terminated, borrowed): one
 * JSON object of at most ETCD_FENCE_VALUE_MAX bytes with an integer
 * "epoch" (1 to INT64_MAX) and a string "holder" that addr_parse()
 * reads; other members are ignored, so that a later version may add
 * some.
 */
int	etcd_fence_value_parse(const char *value, size_t len,
	    struct etcd_fence *out, char *err, size_t errlen);

/*
 * A short, printable excerpt of a response body for messages: at most 80
 * bytes of it, anything outside printable ASCII as '?', cut to size
 * (> 0), NUL-terminated.
 */
void	etcd_excerpt(const char *body, size_t len, char *buf, size_t size);

#endif /* GRGW_ETCD_MSG_H */
