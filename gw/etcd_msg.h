/*
 * etcd_msg.c: the messages grgw exchanges with etcd's v3 JSON gateway
 * (etcd 3.4 and later: POST /v3/lease/grant, /v3/kv/put,
 * /v3/lease/keepalive), built and parsed with jansson.  Pure: no I/O and
 * no event loop; the client that sends them is etcd.c.
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

#endif /* GRGW_ETCD_MSG_H */
