/*
 * fence.c: the etcd client of the gateway pair's fence (see the role
 * engine in pair.h).  The fence is one etcd key holding
 * {"epoch":N,"holder":"<address>"}; a gateway reads it, and claims it
 * with a compare-and-swap on the key's mod_revision, so that of two
 * claimants with the same expected revision exactly one wins.
 *
 * Asynchronous on the daemon's libevent loop, through etcd's v3 JSON
 * gateway (POST /v3/kv/range, /v3/kv/txn; the messages are built and
 * parsed in etcd_msg.c, pure).  One request in flight at a time, each
 * with a deadline of its own; the HTTP connection is kept open between
 * requests so that a read costs one round trip, and opened again after a
 * failure.  Only http:// to an IP literal, as for the link-state feed.
 *
 * Ownership: the fence is created by fence_new(), owned by the caller and
 * released by fence_free(), which accepts NULL.  Strings passed in are
 * copied; results handed to a callback are borrowed for the call.
 */
#ifndef GRGW_FENCE_H
#define GRGW_FENCE_H

#include <stddef.h>
#include <stdint.h>

#include "grgw.h"

struct event_base;
struct fence;

#define FENCE_TIMEOUT_MAX_MS	60000
#define FENCE_REASON_MAX	200

/*
 * What a read or a claim came to.  Unless completed, only reason and
 * elapsed_us mean anything.
 */
struct fence_result {
	int		 completed;	/* etcd answered, and made sense */
	/*
	 * Not completed: why ("timed out after 40 ms", "connection refused",
	 * "HTTP 503: etcdserver: no leader (code 14)").  Completed with a
	 * value that is not a fence value: why not (value_ok 0).  Else "".
	 */
	char		 reason[FENCE_REASON_MAX];
	int		 found;		/* the key exists */
	int64_t		 mod_revision;	/* the key's; 0 when absent */
	int		 value_ok;	/* epoch and holder were read */
	uint64_t	 epoch;		/* 0 unless value_ok */
	struct grgw_addr holder;	/* family 0 unless value_ok */
	/*
	 * Claims: 1 when this claim's put happened (found, mod_revision,
	 * epoch and holder are then what it wrote); 0 when the key's
	 * mod_revision was not the one expected, and the rest says where
	 * the key stands now (read in the same transaction).
	 */
	int		 won;
	int64_t		 revision;	/* etcd's store revision at the answer */
	uint64_t	 elapsed_us;	/* from the call to the answer */
};

/*
 * Called once for each request fence_read() or fence_claim() accepted,
 * from the loop, never from inside those calls.  The fence is idle by
 * then: the callback may start the next request, or free the fence.  r
 * is borrowed for the call.
 */
typedef void (*fence_cb)(const struct fence_result *r, void *arg);

/*
 * A fence on key (1 to GRGW_ETCD_KEY_MAX bytes) in the etcd at endpoint
 * ("http://192.0.2.5:4000", "http://[2001:db8::5]:2379": addr_url_parse()
 * with the default port of [etcd] endpoint, FEEDS_ETCD_PORT_DEFAULT).  Nothing is sent until the first request.  NULL,
 * with a message in err, on a bad endpoint or key, or out of memory.
 */
struct fence *fence_new(struct event_base *base, const char *endpoint,
	    const char *key, char *err, size_t errlen);

/*
 * Read the key (linearizable: the answer is no older than the call).
 * The callback comes within timeout_ms (1 to FENCE_TIMEOUT_MAX_MS) or,
 * on a loop too busy to run the timer, as soon after as it can.  0, or
 * -1 with errno EBUSY (a request is in flight), EINVAL (timeout_ms), or
 * ENOMEM; no callback then.  arg is borrowed until the callback.
 */
int	fence_read(struct fence *f, unsigned timeout_ms, fence_cb cb,
	    void *arg);

/*
 * Claim the key: write {"epoch":epoch,"holder":holder} if, and only if,
 * the key's mod_revision is still expect_mod_revision (0: the key is
 * absent), as one etcd transaction.  The value has no lease: it stays
 * until the next claim.  Errors and timing as fence_read(), and EINVAL
 * for an epoch of 0 or above INT64_MAX, a negative expected revision or
 * a holder that is not an address (holder is read during the call).
 *
 * A claim that did not complete may or may not have been applied (the
 * answer may be what was lost): read again to know.
 */
int	fence_claim(struct fence *f, int64_t expect_mod_revision,
	    uint64_t epoch, const struct grgw_addr *holder, unsigned timeout_ms,
	    fence_cb cb, void *arg);

/* 1 while a request is in flight (its callback not yet started). */
int	fence_busy(const struct fence *f);

/* What the fence went through, for the status page and tests. */
struct fence_stats {
	uint64_t	 requests;	/* accepted by fence_read/claim */
	uint64_t	 completed;
	uint64_t	 failed;	/* not completed, timeouts included */
	uint64_t	 timed_out;
	uint64_t	 connections;	/* TCP connections that answered */
};
void	fence_get_stats(const struct fence *f, struct fence_stats *out);

/*
 * Drop the connection and any request in flight: its callback is not
 * called, now or later.  Accepts NULL.  May be called from a callback.
 */
void	fence_free(struct fence *f);

#endif /* GRGW_FENCE_H */
