/*
 * The gateway pair: the heartbeat codec, its key and anti-replay window,
 * and the role engine, in a simulated pair.
 *
 * The simulation runs two engines in simulated milliseconds, each with a
 * monotonic clock of its own (another origin, a rate a little off),
 * heartbeats going through the real codec over a fake network (delays,
 * loss, cuts in either direction) and a fake etcd implementing the
 * compare-and-swap on a mod_revision (delays, outages seen from either
 * gateway, claims applied whose answer is lost).  A gateway "holds the
 * addresses" from the take the engine asked for to the release; when a
 * gateway is killed, its parent keeps them until the last hold deadline
 * the engine published.  After every step of every gateway the test
 * asserts that the two never hold them at once.
 *
 * PAIR_TRACE=1 in the environment prints every role change.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "grgw.h"
#include "pair.h"

#define WIRE		PAIR_WIRE_LEN
#define NS_PER_MS	1000000ULL
#define RT_BASE		1700000000000000000ULL

static uint8_t	 key_a[PAIR_KEY_LEN], key_b[PAIR_KEY_LEN];
static int	 trace;

static struct pair_hb
hb_sample(void)
{
	struct pair_hb	 p;

	memset(&p, 0, sizeof(p));
	p.role = PAIR_ACTIVE;
	p.priority = 200;
	p.flags = PAIR_F_WAN_OK | PAIR_F_ETCD_OK;
	p.epoch = 7;
	p.session = 0x0102030405060708ULL;
	p.seq = 42;
	p.tx_ns = RT_BASE;
	p.mono_tx_ns = 123456789000ULL;
	p.echo_seq = 41;
	p.echo_mono_ns = 987654321000ULL;
	return p;
}

/* Decode from a heap copy of exactly len bytes, so ASan sees overreads. */
static int
decode_exact(const uint8_t *buf, size_t len, const uint8_t *key,
    const uint8_t *next, struct pair_hb *out, int *used)
{
	uint8_t	*copy = malloc(len > 0 ? len : 1);
	int	 rc;

	assert_non_null(copy);
	if (len > 0)
		memcpy(copy, buf, len);
	rc = pair_decode(copy, len, key, next, out, used);
	free(copy);
	return rc;
}

/* ---- codec ---------------------------------------------------------------- */

static void
test_codec_roundtrip(void **state)
{
	struct pair_hb	 p = hb_sample(), q;
	uint8_t		 buf[WIRE + 16];
	int		 used = -1;

	assert_int_equal(pair_wire_len(), WIRE);
	assert_int_equal(pair_encode(&p, key_a, buf, sizeof(buf)), WIRE);
	assert_memory_equal(buf, "GRPH\x01\x04\xc8\x06", 8);
	assert_memory_equal(buf + 8, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
	assert_int_equal(buf[23], 42);
	assert_int_equal(buf[31], 7);
	assert_int_equal(decode_exact(buf, WIRE, key_a, NULL, &q, &used),
	    PAIR_OK);
	assert_int_equal(used, 0);
	assert_memory_equal(&p, &q, sizeof(p));

	/* Extremes, every role, nothing heard yet. */
	memset(&p, 0, sizeof(p));
	p.priority = 255;
	p.flags = PAIR_F_ALL;
	p.epoch = UINT64_MAX;
	p.session = UINT64_MAX;
	p.seq = UINT64_MAX;
	p.tx_ns = UINT64_MAX;
	p.mono_tx_ns = UINT64_MAX;
	for (p.role = PAIR_STARTING; p.role <= PAIR_RELEASED; p.role++) {
		assert_int_equal(pair_encode(&p, key_a, buf, WIRE), WIRE);
		assert_int_equal(buf[5], p.role);
		assert_int_equal(decode_exact(buf, WIRE, key_a, NULL, &q,
		    NULL), PAIR_OK);
		assert_memory_equal(&p, &q, sizeof(p));
		assert_string_not_equal(pair_role_name(p.role), "?");
	}
	assert_string_equal(pair_role_name(PAIR_RELEASED), "released");
	assert_string_equal(pair_role_name(0), "?");
	assert_string_equal(pair_role_name(6), "?");
}

static void
test_codec_encode_refuses(void **state)
{
	struct pair_hb	 p = hb_sample();
	uint8_t		 buf[WIRE];

	assert_int_equal(pair_encode(&p, key_a, buf, WIRE - 1), -1);
	assert_int_equal(pair_encode(NULL, key_a, buf, WIRE), -1);
	assert_int_equal(pair_encode(&p, NULL, buf, WIRE), -1);
	assert_int_equal(pair_encode(&p, key_a, NULL, WIRE), -1);
	p.role = 0;
	assert_int_equal(pair_encode(&p, key_a, buf, WIRE), -1);
	p.role = PAIR_RELEASED + 1;
	assert_int_equal(pair_encode(&p, key_a, buf, WIRE), -1);
	p = hb_sample();
	p.priority = 0;
	assert_int_equal(pair_encode(&p, key_a, buf, WIRE), -1);
	p = hb_sample();
	p.flags = 0x20;
	assert_int_equal(pair_encode(&p, key_a, buf, WIRE), -1);
	p.flags = PAIR_F_PREPARE | PAIR_F_READY;
	assert_int_equal(pair_encode(&p, key_a, buf, WIRE), WIRE);
	p = hb_sample();
	p.echo_seq = 0;		/* a time echoed without a heartbeat */
	assert_int_equal(pair_encode(&p, key_a, buf, WIRE), -1);
	p.echo_mono_ns = 0;
	assert_int_equal(pair_encode(&p, key_a, buf, WIRE), WIRE);
}

/* Every bit matters: the header's are malformed, the rest fail the tag. */
static void
test_codec_tamper(void **state)
{
	struct pair_hb	 p = hb_sample(), q;
	uint8_t		 buf[WIRE];
	size_t		 bit;
	int		 rc, nauth = 0, nmal = 0;

	assert_int_equal(pair_encode(&p, key_a, buf, WIRE), WIRE);
	for (bit = 0; bit < WIRE * 8; bit++) {
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		rc = decode_exact(buf, WIRE, key_a, key_b, &q, NULL);
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		if (rc == PAIR_E_AUTH)
			nauth++;
		else if (rc == PAIR_E_MALFORMED)
			nmal++;
		else
			fail_msg("bit %zu flipped and got %d", bit, rc);
		assert_int_equal(q.seq, 0);	/* nothing leaks out */
	}
	assert_int_equal(nmal, 5 * 8);		/* magic, version */
	assert_int_equal(nauth, WIRE * 8 - nmal);
	assert_int_equal(decode_exact(buf, WIRE, key_a, NULL, &q, NULL),
	    PAIR_OK);
}

/*
 * A key rotation: under the primary or the next key, *used says which;
 * under any other key, refused.
 */
static void
test_codec_keys(void **state)
{
	struct pair_hb	 p = hb_sample(), q;
	uint8_t		 key_c[PAIR_KEY_LEN], buf[WIRE];
	int		 used;

	memset(key_c, 0xcc, sizeof(key_c));
	assert_int_equal(pair_encode(&p, key_b, buf, WIRE), WIRE);
	used = -1;
	assert_int_equal(decode_exact(buf, WIRE, key_a, NULL, &q, &used),
	    PAIR_E_AUTH);
	assert_int_equal(used, 0);
	assert_int_equal(q.seq, 0);
	assert_int_equal(decode_exact(buf, WIRE, key_a, key_b, &q, &used),
	    PAIR_OK);
	assert_int_equal(used, 1);
	assert_memory_equal(&p, &q, sizeof(p));
	assert_int_equal(decode_exact(buf, WIRE, key_b, key_a, &q, &used),
	    PAIR_OK);
	assert_int_equal(used, 0);
	assert_int_equal(decode_exact(buf, WIRE, key_a, key_c, &q, &used),
	    PAIR_E_AUTH);
	assert_int_equal(used, 0);
	assert_int_equal(pair_decode(buf, WIRE, key_a, key_b, &q, NULL),
	    PAIR_OK);
}

static void
test_codec_lengths(void **state)
{
	struct pair_hb	 p = hb_sample(), q;
	uint8_t		 buf[2 * WIRE + 1];
	size_t		 len;

	memset(buf, 0, sizeof(buf));
	assert_int_equal(pair_encode(&p, key_a, buf, sizeof(buf)), WIRE);
	/* Truncated and oversized (the valid packet plus trailing bytes). */
	for (len = 0; len < sizeof(buf); len++) {
		if (len == WIRE)
			continue;
		assert_int_equal(decode_exact(buf, len, key_a, key_b, &q,
		    NULL), PAIR_E_MALFORMED);
	}
	assert_int_equal(pair_decode(NULL, WIRE, key_a, NULL, &q, NULL),
	    PAIR_E_MALFORMED);
	assert_int_equal(pair_decode(buf, WIRE, NULL, key_a, &q, NULL),
	    PAIR_E_MALFORMED);
	assert_int_equal(pair_decode(buf, WIRE, key_a, NULL, NULL, NULL),
	    PAIR_E_MALFORMED);
}

/* Authentic but not understood: the tag recomputed over the change. */
static int
decode_resigned(size_t off, uint8_t value)
{
	struct pair_hb	 p = hb_sample(), q;
	uint8_t		 buf[WIRE];

	assert_int_equal(pair_encode(&p, key_a, buf, WIRE), WIRE);
	buf[off] = value;
	crypto_auth(buf + 64, buf, 64, key_a);
	return decode_exact(buf, WIRE, key_a, NULL, &q, NULL);
}

/* A handover's wait for the partner's SAs: 2 x (dead + guard), >= 1.5 s,
 * unless configured. */
static void
test_prepare_limit(void **state)
{
	struct grgw_pair_conf	 c;

	memset(&c, 0, sizeof(c));
	c.dead_ms = 100;
	c.guard_ms = 100;
	assert_int_equal(pair_prepare_limit_ms(&c), PAIR_PREPARE_MIN_MS);
	c.dead_ms = 1000;
	c.guard_ms = 1000;
	assert_int_equal(pair_prepare_limit_ms(&c), 4000);
	c.dead_ms = UINT32_MAX;
	c.guard_ms = UINT32_MAX;
	assert_int_equal(pair_prepare_limit_ms(&c), UINT32_MAX);
	/* [pair] handover_wait_ms, whatever the timers. */
	c.handover_wait_ms = 10000;
	assert_int_equal(pair_prepare_limit_ms(&c), 10000);
	c.dead_ms = 100;
	c.guard_ms = 100;
	assert_int_equal(pair_prepare_limit_ms(&c), 10000);
}

static void
test_codec_fields(void **state)
{
	assert_int_equal(decode_resigned(0, 'g'), PAIR_E_MALFORMED);
	assert_int_equal(decode_resigned(4, 0), PAIR_E_MALFORMED);
	assert_int_equal(decode_resigned(4, 2), PAIR_E_MALFORMED);
	assert_int_equal(decode_resigned(5, 0), PAIR_E_ROLE);
	assert_int_equal(decode_resigned(5, 6), PAIR_E_ROLE);
	assert_int_equal(decode_resigned(5, 0xff), PAIR_E_ROLE);
	assert_int_equal(decode_resigned(5, PAIR_CLAIMING), PAIR_OK);
	assert_int_equal(decode_resigned(6, 0), PAIR_E_MALFORMED);
	assert_int_equal(decode_resigned(6, 1), PAIR_OK);
	assert_int_equal(decode_resigned(7, 0x20), PAIR_E_MALFORMED);
	assert_int_equal(decode_resigned(7, PAIR_F_PREPARE), PAIR_OK);
	assert_int_equal(decode_resigned(7, PAIR_F_READY), PAIR_OK);
	assert_int_equal(decode_resigned(7, 0x80), PAIR_E_MALFORMED);
	assert_int_equal(decode_resigned(7, 0), PAIR_OK);
	/* echo_seq 41 -> 0 with an echoed time left. */
	assert_int_equal(decode_resigned(55, 0), PAIR_E_MALFORMED);
}

static void
test_key_derive(void **state)
{
	uint8_t	 s[64], k1[PAIR_KEY_LEN], k2[PAIR_KEY_LEN];
	uint8_t	 pk[PROBE_KEY_LEN];
	size_t	 i;

	for (i = 0; i < sizeof(s); i++)
		s[i] = (uint8_t)(i * 7 + 1);
	pair_key_derive(s, 32, "site-a", k1);
	pair_key_derive(s, 32, "site-a", k2);
	assert_memory_equal(k1, k2, PAIR_KEY_LEN);
	assert_memory_not_equal(k1, s, PAIR_KEY_LEN);
	/* Not the probes' key, whichever names they are given. */
	probe_key_derive(s, 32, "site-a", "site-b", pk);
	assert_memory_not_equal(k1, pk, PAIR_KEY_LEN);
	probe_key_derive(s, 32, "site-a", "", pk);
	assert_memory_not_equal(k1, pk, PAIR_KEY_LEN);
	probe_key_derive(s, 32, "", "site-a", pk);
	assert_memory_not_equal(k1, pk, PAIR_KEY_LEN);
	/* Another site, another secret, another length: another key. */
	pair_key_derive(s, 32, "site-b", k2);
	assert_memory_not_equal(k1, k2, PAIR_KEY_LEN);
	pair_key_derive(s, 33, "site-a", k2);
	assert_memory_not_equal(k1, k2, PAIR_KEY_LEN);
	s[31] ^= 1;
	pair_key_derive(s, 32, "site-a", k2);
	assert_memory_not_equal(k1, k2, PAIR_KEY_LEN);
	/* Secrets BLAKE2b takes no key of, and NULLs, still give keys. */
	pair_key_derive(s, 8, "site-a", k1);
	pair_key_derive(s, 9, "site-a", k2);
	assert_memory_not_equal(k1, k2, PAIR_KEY_LEN);
	pair_key_derive(NULL, 0, NULL, k1);
	pair_key_derive(NULL, 0, "", k2);
	assert_memory_equal(k1, k2, PAIR_KEY_LEN);
}

/*
 * Pinned: a change of the derivation would split a pair running two
 * versions (each refusing the other's heartbeats).
 */
static void
test_key_derive_pinned(void **state)
{
	static const uint8_t want[PAIR_KEY_LEN] = {
		0xe3, 0xa2, 0x89, 0x44, 0xe5, 0x49, 0xa3, 0x72,
		0x46, 0x28, 0x21, 0x69, 0xff, 0x2b, 0x46, 0xe9,
		0xb7, 0xb0, 0xfd, 0xdd, 0x0e, 0x15, 0x44, 0x99,
		0xd0, 0x47, 0x0f, 0xd9, 0x54, 0xcd, 0x7b, 0x0c,
	};
	uint8_t	 s[32], k[PAIR_KEY_LEN];
	size_t	 i;

	for (i = 0; i < sizeof(s); i++)
		s[i] = (uint8_t)i;
	pair_key_derive(s, sizeof(s), "site-a", k);
	if (getenv("PAIR_PRINT_KEY") != NULL)
		for (i = 0; i < sizeof(k); i++)
			printf("0x%02x,%s", k[i], i % 8 == 7 ? "\n" : " ");
	assert_memory_equal(k, want, PAIR_KEY_LEN);
}

static int
replay(struct probe_replay *r, uint64_t session, uint64_t seq, uint64_t tx,
    uint64_t now)
{
	struct pair_hb	 p = hb_sample();

	p.session = session;
	p.seq = seq;
	p.tx_ns = tx;
	return pair_replay_check(r, &p, 99, now);
}

static void
test_replay(void **state)
{
	struct probe_replay	 r;
	uint64_t		 now = RT_BASE;

	memset(&r, 0, sizeof(r));
	assert_int_equal(replay(&r, 5, 1, now, now), 0);
	assert_int_equal(replay(&r, 5, 1, now, now), -1);	/* again */
	assert_int_equal(replay(&r, 5, 3, now + 2, now), 0);
	assert_int_equal(replay(&r, 5, 2, now + 1, now), 0);	/* late */
	assert_int_equal(replay(&r, 5, 2, now + 1, now), -1);
	assert_int_equal(replay(&r, 5, 0, now, now), -1);
	/* Our own session sent back to us. */
	assert_int_equal(replay(&r, 99, 10, now + 5, now), -1);
	assert_int_equal(r.session, 5);
	/* Clocks too far apart, or an old capture. */
	assert_int_equal(replay(&r, 5, 4, now + PROBE_MAX_SKEW_NS + 1, now),
	    PROBE_REPLAY_SKEW);
	assert_int_equal(replay(&r, 5, 4, now, now + PROBE_MAX_SKEW_NS + 1),
	    PROBE_REPLAY_SKEW);
	/* A restart: a newer session takes over, the old one stays dead. */
	assert_int_equal(replay(&r, 6, 1, now + 10, now), 0);
	assert_int_equal(replay(&r, 5, 4, now + 11, now), 0);
	assert_int_equal(replay(&r, 5, 1, now, now), -1);
	assert_int_equal(pair_replay_check(NULL, NULL, 1, now), -1);
}

/* ---- the engine, alone ------------------------------------------------------ */

static struct pair_role_conf
conf_for(const char *self, const char *partner, uint8_t prio)
{
	struct pair_role_conf	 c;

	memset(&c, 0, sizeof(c));
	c.priority = prio;
	assert_int_equal(addr_parse(self, &c.address), 0);
	assert_int_equal(addr_parse(partner, &c.partner), 0);
	c.interval_ms = 20;
	c.dead_ms = 100;
	c.guard_ms = 100;
	c.session = 0x5151;
	c.wan_up = 1;
	return c;
}

static void
test_engine_conf(void **state)
{
	struct pair_role_conf	 c = conf_for("198.18.1.2", "198.18.1.3", 1);
	struct pair_role	*r;
	char			 err[128];

	assert_null(pair_role_new(NULL, 0, err, sizeof(err)));
	c.priority = 0;
	assert_null(pair_role_new(&c, 0, err, sizeof(err)));
	assert_non_null(strstr(err, "priority"));
	c = conf_for("198.18.1.2", "198.18.1.3", 1);
	c.dead_ms = 59;
	assert_null(pair_role_new(&c, 0, err, sizeof(err)));
	c.dead_ms = 60;
	c.guard_ms = 39;
	assert_null(pair_role_new(&c, 0, err, sizeof(err)));
	c.guard_ms = 40;
	c.interval_ms = 0;
	assert_null(pair_role_new(&c, 0, NULL, 0));
	c.interval_ms = 20;
	c.session = 0;
	assert_null(pair_role_new(&c, 0, err, sizeof(err)));
	c.session = 1;
	c.address.family = 0;
	assert_null(pair_role_new(&c, 0, err, sizeof(err)));
	c = conf_for("198.18.1.2", "198.18.1.3", 1);
	assert_non_null(r = pair_role_new(&c, 0, err, sizeof(err)));
	pair_role_free(r);
	pair_role_free(NULL);
}

static struct pair_fence
fence_key(uint64_t rev, uint64_t epoch, const char *holder)
{
	struct pair_fence	 f;

	memset(&f, 0, sizeof(f));
	f.status = PAIR_FENCE_OK;
	f.found = rev != 0;
	f.mod_revision = rev;
	f.epoch = epoch;
	if (holder != NULL)
		assert_int_equal(addr_parse(holder, &f.holder), 0);
	return f;
}

/*
 * One engine driven by hand: alone at start, it reads etcd, claims after
 * dead_ms, waits the guard out and takes only with a confirmation; an
 * echo of a heartbeat it never sent confirms nothing; API misuse is
 * refused.
 */
static void
test_engine_alone(void **state)
{
	struct pair_role_conf	 c = conf_for("198.18.1.2", "198.18.1.3", 100);
	struct pair_role	*r;
	struct pair_role_out	 o;
	struct pair_fence	 f;
	struct pair_hb		 hb;
	uint64_t		 t = 5000, won;
	char			 err[128];

	assert_non_null(r = pair_role_new(&c, t, NULL, 0));
	pair_role_next(r, t, &o);
	assert_int_equal(o.role, PAIR_STARTING);
	assert_true(o.send_hb);
	assert_int_equal(o.hb.seq, 1);
	assert_int_equal(o.hb.mono_tx_ns, t * NS_PER_MS);
	assert_int_equal(o.hb.flags, PAIR_F_WAN_OK);
	assert_true(o.read);		/* at start: is etcd there? */
	assert_int_equal(o.hold_deadline, 0);
	assert_true(o.next_call > t && o.next_call <= t + 20);
	/* Results nobody asked for, or from the future: refused. */
	f = fence_key(17, 6, "198.18.1.3");
	assert_int_equal(pair_role_fence_claim(r, t, &f), -1);
	assert_int_equal(pair_role_fence_read(r, t, t + 1, &f), -1);
	assert_int_equal(pair_role_fence_read(r, t + 2, t, &f), 0);
	assert_int_equal(pair_role_fence_read(r, t + 2, t, &f), -1);
	assert_int_equal(pair_role_handover(r, t + 2, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not active"));

	/* Nothing before dead_ms. */
	for (t += 2; t < 5100; t++) {
		pair_role_next(r, t, &o);
		assert_false(o.claim || o.take || o.read);
		assert_true(o.next_call <= 5100);
	}
	pair_role_next(r, t, &o);
	assert_int_equal(o.role, PAIR_STANDBY);
	assert_true(o.read);		/* the claim's read */
	assert_false(o.claim);
	f = fence_key(17, 6, "198.18.1.3");
	assert_int_equal(pair_role_fence_read(r, t + 1, t, &f), 0);
	pair_role_next(r, t + 1, &o);
	assert_true(o.claim);
	assert_int_equal(o.claim_mod_revision, 17);
	assert_int_equal(o.claim_epoch, 7);
	assert_int_equal(o.role, PAIR_CLAIMING);
	assert_true(o.send_hb);		/* at once */
	assert_int_equal(o.hb.role, PAIR_CLAIMING);
	assert_non_null(strstr(o.reason, "silent"));
	f = fence_key(18, 7, "198.18.1.2");
	f.status = PAIR_FENCE_WON;
	won = t + 2;
	assert_int_equal(pair_role_fence_claim(r, won, &f), 0);
	pair_role_next(r, won, &o);
	assert_int_equal(o.epoch, 7);
	assert_int_equal(o.role, PAIR_CLAIMING);

	/* A partner's echo of a heartbeat we never sent: no confirmation. */
	memset(&hb, 0, sizeof(hb));
	hb.role = PAIR_STANDBY;
	hb.priority = 100;
	hb.session = 77;
	hb.seq = 1;
	hb.epoch = 7;
	hb.echo_seq = o.hb.seq;
	hb.echo_mono_ns = (won - 1) * NS_PER_MS;
	assert_int_equal(pair_role_heartbeat(r, won + 1, &hb), 0);
	assert_int_equal(pair_role_heartbeat(r, won + 1, &hb), 1); /* stale */
	hb.session = c.session;
	assert_int_equal(pair_role_heartbeat(r, won + 1, &hb), -1);
	hb.session = 77;
	hb.role = 9;
	assert_int_equal(pair_role_heartbeat(r, won + 1, &hb), -1);

	/* Guard: reads start, the confirmation comes from one. */
	for (t = won + 1; t < won + 100; t++) {
		pair_role_next(r, t, &o);
		assert_false(o.take);
		if (o.read) {
			f = fence_key(18, 7, "198.18.1.2");
			assert_int_equal(pair_role_fence_read(r, t, t, &f), 0);
		}
	}
	pair_role_next(r, t, &o);
	assert_true(o.take);
	assert_int_equal(o.role, PAIR_ACTIVE);
	assert_true(o.hold_deadline > t);
	assert_true(o.hold_deadline <= t + 100);
	assert_true(o.next_call <= o.hold_deadline);
	/* etcd goes quiet: the active lets go at its deadline. */
	for (;;) {
		pair_role_next(r, ++t, &o);
		if (o.read) {
			f.status = PAIR_FENCE_UNREACHABLE;
			assert_int_equal(pair_role_fence_read(r, t, t, &f), 0);
		}
		if (o.release)
			break;
		assert_true(t < won + 300);
	}
	assert_int_equal(o.role, PAIR_RELEASED);
	assert_int_equal(o.hold_deadline, 0);
	assert_non_null(strstr(o.reason, "hold deadline passed"));
	assert_non_null(strstr(o.reason, "unreachable"));
	pair_role_free(r);
}

/* Drive r from standby to active at epoch 3 with reads; returns now. */
static uint64_t
make_active(struct pair_role *r, uint64_t t, struct pair_role_out *o)
{
	struct pair_fence	 f;

	for (;; t++) {
		pair_role_next(r, t, o);
		assert_false(o->take && o->read);
		if (o->take)
			return t;
		if (o->read) {
			f = o->role == PAIR_CLAIMING ?
			    fence_key(9, 3, "198.18.1.2") :
			    fence_key(8, 2, "198.18.1.3");
			assert_int_equal(pair_role_fence_read(r, t, t, &f), 0);
		}
		if (o->claim) {
			assert_int_equal(o->claim_epoch, 3);
			f = fence_key(9, 3, "198.18.1.2");
			f.status = PAIR_FENCE_WON;
			assert_int_equal(pair_role_fence_claim(r, t, &f), 0);
		}
		assert_true(t < 100000);
	}
}

static struct pair_hb
partner_hb(uint64_t seq, int role, const struct pair_hb *echo)
{
	struct pair_hb	 hb;

	memset(&hb, 0, sizeof(hb));
	hb.role = (uint8_t)role;
	hb.priority = 100;
	hb.flags = PAIR_F_WAN_OK | PAIR_F_ETCD_OK;
	hb.epoch = 3;
	hb.session = 4242;
	hb.seq = seq;
	hb.mono_tx_ns = (1000 + seq) * NS_PER_MS;
	if (echo != NULL) {
		hb.echo_seq = echo->seq;
		hb.echo_mono_ns = echo->mono_tx_ns;
	}
	return hb;
}

/*
 * The hold deadline, to the ms: an echo in a standby heartbeat of one of
 * ours sent at T gives T + dead + guard - interval; the same echo in a
 * claiming or active heartbeat, or of a heartbeat we did not send, gives
 * nothing; a read started at R gives R + guard - interval (R, not the
 * time of the answer); a handover caps the echo part at h + guard -
 * interval and takes no echo after it.
 */
static void
next_quiet_etcd(struct pair_role *r, uint64_t t, struct pair_role_out *o)
{
	struct pair_fence	 f;

	pair_role_next(r, t, o);
	if (o->read) {
		memset(&f, 0, sizeof(f));
		f.status = PAIR_FENCE_UNREACHABLE;
		assert_int_equal(pair_role_fence_read(r, t, t, &f), 0);
	}
}

static void
test_engine_confirmations(void **state)
{
	struct pair_role_conf	 c = conf_for("198.18.1.2", "198.18.1.3", 100);
	struct pair_role	*r;
	struct pair_role_out	 o;
	struct pair_hb		 mine, hb;
	struct pair_fence	 f;
	uint64_t		 t, seq = 1, sent, d;
	char			 err[128];

	assert_non_null(r = pair_role_new(&c, 1000, NULL, 0));
	t = make_active(r, 1000, &o);
	d = o.hold_deadline;
	assert_true(d > t);
	/* One of our heartbeats as active (etcd silent from here on). */
	for (;; t++) {
		next_quiet_etcd(r, t, &o);
		if (o.send_hb)
			break;
	}
	assert_int_equal(o.hb.role, PAIR_ACTIVE);
	mine = o.hb;
	sent = t;
	t += 5;

	hb = partner_hb(seq++, PAIR_CLAIMING, &mine);
	assert_int_equal(pair_role_heartbeat(r, t, &hb), 0);
	next_quiet_etcd(r, t, &o);
	assert_int_equal(o.hold_deadline, d);
	hb = partner_hb(seq++, PAIR_ACTIVE, &mine);
	hb.epoch = 2;
	assert_int_equal(pair_role_heartbeat(r, t, &hb), 0);
	next_quiet_etcd(r, t, &o);
	assert_int_equal(o.hold_deadline, d);
	hb = partner_hb(seq++, PAIR_STANDBY, &mine);
	hb.echo_mono_ns += NS_PER_MS;		/* not what we sent */
	assert_int_equal(pair_role_heartbeat(r, t, &hb), 0);
	next_quiet_etcd(r, t, &o);
	assert_int_equal(o.hold_deadline, d);
	hb = partner_hb(seq++, PAIR_STANDBY, &mine);
	assert_int_equal(pair_role_heartbeat(r, t, &hb), 0);
	next_quiet_etcd(r, t, &o);
	assert_int_equal(o.hold_deadline, sent + 100 + 100 - 20);
	assert_int_equal(o.role, PAIR_ACTIVE);

	/* A slow read (the next one: the echoes stop): R counts, not the
	 * answer's arrival. */
	f = fence_key(9, 3, "198.18.1.2");
	for (;;) {
		pair_role_next(r, ++t, &o);
		assert_int_equal(o.role, PAIR_ACTIVE);
		if (o.read && t + 80 > o.hold_deadline)
			break;
		if (o.read)
			assert_int_equal(pair_role_fence_read(r, t, t, &f), 0);
	}
	d = o.hold_deadline;
	assert_int_equal(pair_role_fence_read(r, t + 30, t, &f), 0);
	pair_role_next(r, t + 30, &o);
	assert_int_equal(o.hold_deadline, t + 80);
	assert_true(t + 80 > d);
	t += 30;

	/* Handover: capped at h + guard - interval, no echo counts. */
	for (;; t++) {
		next_quiet_etcd(r, t, &o);
		if (o.send_hb)
			break;
	}
	mine = o.hb;
	hb = partner_hb(seq++, PAIR_STANDBY, &mine);
	assert_int_equal(pair_role_heartbeat(r, t, &hb), 0);
	next_quiet_etcd(r, t, &o);
	assert_int_equal(o.hold_deadline, t + 180);
	assert_int_equal(pair_role_handover(r, t, err, sizeof(err)), 0);
	next_quiet_etcd(r, t, &o);
	assert_true(o.handover);
	assert_true(o.send_hb);
	assert_int_equal(o.hb.flags & PAIR_F_HANDOVER, PAIR_F_HANDOVER);
	assert_int_equal(o.hold_deadline, t + 80);
	mine = o.hb;
	hb = partner_hb(seq++, PAIR_STANDBY, &mine);
	assert_int_equal(pair_role_heartbeat(r, t + 1, &hb), 0);
	next_quiet_etcd(r, t + 1, &o);
	assert_int_equal(o.hold_deadline, t + 80);

	/* The standby's won epoch: released at once, said so. */
	hb = partner_hb(seq++, PAIR_CLAIMING, &mine);
	hb.epoch = 4;
	assert_int_equal(pair_role_heartbeat(r, t + 2, &hb), 0);
	next_quiet_etcd(r, t + 2, &o);
	assert_true(o.release);
	assert_true(o.send_hb);
	assert_int_equal(o.hb.role, PAIR_RELEASED);
	assert_int_equal(o.hb.epoch, 4);
	assert_int_equal(o.hold_deadline, 0);
	assert_non_null(strstr(o.reason, "handover asked by the operator"));
	pair_role_free(r);
}

/*
 * R1 checked again when the claim's read comes back: an active partner
 * heard while the read was in flight calls the claim off (the standby
 * may have echoed that heartbeat, which the active counts on).  And a
 * busy heartbeat arriving late (out of order) still holds claims back.
 */
static void
test_engine_claim_recheck(void **state)
{
	struct pair_role_conf	 c = conf_for("198.18.1.3", "198.18.1.2", 100);
	struct pair_role	*r;
	struct pair_role_out	 o;
	struct pair_hb		 hb;
	struct pair_fence	 f = fence_key(5, 1, "198.18.1.2");
	uint64_t		 t = 1000, seq = 1, decided;

	assert_non_null(r = pair_role_new(&c, t, NULL, 0));
	/* The active partner, heard until 1300. */
	for (; t <= 1300; t++) {
		if (t % 20 == 0) {
			hb = partner_hb(seq++, PAIR_ACTIVE, NULL);
			hb.epoch = 1;
			assert_int_equal(pair_role_heartbeat(r, t, &hb), 0);
		}
		next_quiet_etcd(r, t, &o);
		assert_int_equal(o.role, t < 1100 ? PAIR_STARTING :
		    PAIR_STANDBY);
	}
	/* Silent: the claim's read at 1400, not before. */
	for (;; t++) {
		pair_role_next(r, t, &o);
		if (o.read)
			break;
		assert_true(t < 1300 + 100);
	}
	decided = t;
	assert_int_equal(decided, 1300 + 100);
	/* The partner is back while the read is in flight. */
	hb = partner_hb(seq++, PAIR_ACTIVE, NULL);
	hb.epoch = 1;
	assert_int_equal(pair_role_heartbeat(r, t + 2, &hb), 0);
	assert_int_equal(pair_role_fence_read(r, t + 4, t, &f), 0);
	pair_role_next(r, t + 4, &o);
	assert_false(o.claim);
	assert_int_equal(o.role, PAIR_STANDBY);

	/* A late busy heartbeat (seq older than one seen) holds back too. */
	hb = partner_hb(seq + 1, PAIR_STANDBY, NULL);
	hb.epoch = 1;
	hb.flags = 0;		/* no start-up courtesy for it */
	assert_int_equal(pair_role_heartbeat(r, t + 10, &hb), 0);
	hb = partner_hb(seq, PAIR_ACTIVE, NULL);
	hb.epoch = 1;
	assert_int_equal(pair_role_heartbeat(r, t + 50, &hb), 1);
	for (t += 5;; t++) {
		pair_role_next(r, t, &o);
		if (o.read)
			assert_int_equal(pair_role_fence_read(r, t, t, &f), 0);
		if (o.role == PAIR_CLAIMING)
			break;
	}
	/* Decided at 50 + dead after the late one; the read answered at
	 * once, the claim goes out at the next call. */
	assert_int_equal(t, decided + 50 + 100 + 1);
	pair_role_free(r);
}

/* ---- the simulated pair ----------------------------------------------------- */

#define SIM_MSGS	512
#define SIM_GWS		2

enum { REQ_NONE, REQ_READ, REQ_CLAIM };
#define SIM_REQS	2	/* PAIRNET_FENCES */

struct sim_msg {
	int		 used;
	int		 to;
	uint64_t	 at;		/* sim ms */
	uint8_t		 buf[WIRE];
};

struct sim_req {
	int		 kind;
	uint64_t	 serve_at;	/* etcd applies it; 0: never */
	uint64_t	 answer_at;
	uint64_t	 started_at;	/* engine ms */
	uint64_t	 expect_rev, epoch;
	int		 served;
	struct pair_fence res;
};

struct sim_gw {
	struct pair_role *e;
	struct pair_role_conf conf;
	uint64_t	 clock_off;
	int		 clock_rate;	/* clock = off + t + t * rate / 10000 */
	int		 alive;
	int		 holding;	/* the engine took and did not release */
	uint64_t	 parent_until;	/* the addresses stay until then: a
					 * dead engine's last deadline, or a
					 * release's lag */
	int		 held_back;	/* a "released" heartbeat */
	uint64_t	 frozen_until;	/* sim ms: neither its engine nor its
					 * parent runs before then (what
					 * reaches it waits) */
	uint64_t	 deadline;	/* last published, engine ms */
	uint64_t	 next_call;
	int		 etcd_up;
	int		 wan_up;
	int		 role;
	uint64_t	 epoch;		/* as the engine last said */
	struct probe_replay replay;
	struct sim_req	 req[SIM_REQS];	/* pairnet's connections to etcd */
	uint64_t	 reqs;		/* made since the start */
	uint64_t	 takes, releases;
	uint64_t	 last_take, last_release;	/* sim ms */
	char		 reason[PAIR_REASON_MAX];
};

struct sim_params {
	uint32_t	 interval, dead, guard, margin;
	uint32_t	 lag;		/* ms the addresses stay after a
					 * release (the parent's netlink, a
					 * late timer); below the margin */
	uint8_t		 prio[SIM_GWS];
	const char	*addr[SIM_GWS];
	uint32_t	 delay_max;	/* heartbeat one way, 1..delay_max */
	uint32_t	 etcd_max;	/* each way, 0..etcd_max (+1) */
	uint32_t	 loss_pct;
	uint32_t	 slow_every;	/* 1 read or claim in N answers */
	uint32_t	 slow_ms;	/* that much later (0: none) */
	uint32_t	 seed;
};

struct sim {
	struct sim_params p;
	struct sim_gw	 g[SIM_GWS];
	uint64_t	 t;
	int		 link[SIM_GWS];	/* packets from i get through */
	uint32_t	 rng;
	struct sim_msg	 msgs[SIM_MSGS];
	/* etcd */
	uint64_t	 rev;
	int		 found;
	uint64_t	 mod_rev, epoch;
	struct grgw_addr holder;
	/* a handover's gap: both released, nobody taken yet */
	uint64_t	 none_since;
	uint64_t	 max_none;
	uint64_t	 stall_until;	/* etcd serves nothing before then */	/* longest since sim_reset_gap() */
};

static uint32_t
sim_rand(struct sim *s)
{
	uint32_t	 x = s->rng;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return s->rng = x;
}

static uint32_t
sim_between(struct sim *s, uint32_t lo, uint32_t hi)
{
	return lo + sim_rand(s) % (hi - lo + 1);
}

static uint64_t
sim_clock(const struct sim *s, int i)
{
	const struct sim_gw	*g = &s->g[i];

	return g->clock_off + s->t + (uint64_t)((int64_t)s->t *
	    g->clock_rate / 10000);
}

static int
sim_holds(const struct sim *s, int i)
{
	const struct sim_gw	*g = &s->g[i];

	return g->holding || sim_clock(s, i) < g->parent_until;
}

static int
sim_holder(const struct sim *s)
{
	int	 a = sim_holds(s, 0), b = sim_holds(s, 1);

	return a && b ? 2 : a ? 0 : b ? 1 : -1;
}

static void
sim_start_gw(struct sim *s, int i)
{
	struct sim_gw	*g = &s->g[i];

	g->conf.session = ((uint64_t)sim_rand(s) << 32 | sim_rand(s)) | 1;
	g->conf.wan_up = g->wan_up;
	assert_non_null(g->e = pair_role_new(&g->conf, sim_clock(s, i),
	    NULL, 0));
	g->alive = 1;
	g->holding = 0;
	g->held_back = 0;
	g->next_call = 0;
	g->role = PAIR_STARTING;
	memset(g->req, 0, sizeof(g->req));
	memset(&g->replay, 0, sizeof(g->replay));
}

static void
sim_init(struct sim *s, const struct sim_params *p)
{
	int	 i;

	memset(s, 0, sizeof(*s));
	s->p = *p;
	if (s->p.addr[0] == NULL)
		s->p.addr[0] = "198.18.1.2";
	if (s->p.addr[1] == NULL)
		s->p.addr[1] = "198.18.1.3";
	s->rng = p->seed != 0 ? p->seed : 1;
	for (i = 0; i < SIM_GWS; i++) {
		struct sim_gw	*g = &s->g[i];

		memset(&g->conf, 0, sizeof(g->conf));
		g->conf.priority = p->prio[i];
		assert_int_equal(addr_parse(s->p.addr[i], &g->conf.address),
		    0);
		assert_int_equal(addr_parse(s->p.addr[1 - i],
		    &g->conf.partner), 0);
		g->conf.interval_ms = p->interval;
		g->conf.dead_ms = p->dead;
		g->conf.guard_ms = p->guard;
		g->conf.margin_ms = p->margin;
		/* Clocks of their own: other origins, rates 0.1% apart. */
		g->clock_off = 1000000 + sim_between(s, 0, 5000000);
		g->clock_rate = (int)sim_between(s, 0, 20) - 10;
		g->etcd_up = 1;
		g->wan_up = 1;
		s->link[i] = 1;
		g->reason[0] = '\0';
	}
	s->none_since = 0;
	for (i = 0; i < SIM_GWS; i++)
		sim_start_gw(s, i);
}

static void
sim_free(struct sim *s)
{
	int	 i;

	for (i = 0; i < SIM_GWS; i++) {
		pair_role_free(s->g[i].e);
		s->g[i].e = NULL;
	}
}

/* The gateway's process dies: its parent keeps the addresses it held
 * until the deadline last handed to it. */
static void
sim_kill(struct sim *s, int i)
{
	struct sim_gw	*g = &s->g[i];

	if (!g->alive)
		return;
	if (g->holding)
		g->parent_until = g->deadline + s->p.lag;
	g->holding = 0;
	g->alive = 0;
	pair_role_free(g->e);
	g->e = NULL;
	if (trace)
		printf("  %6llu gw%d killed\n", (unsigned long long)s->t, i);
}

static void
sim_send(struct sim *s, int from, const struct pair_hb *hb)
{
	struct pair_hb	 h = *hb;
	size_t		 k;

	h.tx_ns = RT_BASE + s->t * NS_PER_MS;
	if (!s->link[from] || sim_between(s, 1, 100) <= s->p.loss_pct)
		return;
	for (k = 0; k < SIM_MSGS; k++)
		if (!s->msgs[k].used)
			break;
	assert_true(k < SIM_MSGS);
	assert_int_equal(pair_encode(&h, key_a, s->msgs[k].buf, WIRE), WIRE);
	s->msgs[k].used = 1;
	s->msgs[k].to = 1 - from;
	s->msgs[k].at = s->t + sim_between(s, 1, s->p.delay_max);
}

static void
sim_etcd_request(struct sim *s, int i, int kind, uint64_t rev,
    uint64_t epoch)
{
	struct sim_gw	*g = &s->g[i];
	struct sim_req	*q;
	uint32_t	 emax = s->p.etcd_max;
	int		 k;

	/* A free connection, as pairnet has (else the engine asked too
	 * much). */
	for (k = 0; k < SIM_REQS - 1 && g->req[k].kind != REQ_NONE; k++)
		;
	q = &g->req[k];
	assert_int_equal(q->kind, REQ_NONE);
	memset(q, 0, sizeof(*q));
	q->kind = kind;
	q->started_at = sim_clock(s, i);
	q->expect_rev = rev;
	q->epoch = epoch;
	if (g->etcd_up) {
		q->serve_at = s->t + 1 + sim_between(s, 0, emax);
		q->answer_at = q->serve_at + sim_between(s, 0, emax);
	} else	/* the fence's timeout */
		q->answer_at = s->t + 2 * s->p.interval;
	/* Every slow_every-th answer comes slow_ms late. */
	if (g->etcd_up && s->p.slow_every > 0 &&
	    ++g->reqs % s->p.slow_every == 0)
		q->answer_at += s->p.slow_ms;
}

/* etcd applies what reaches it, linearizably, at its serve time. */
static void
sim_etcd_serve(struct sim *s, int i)
{
	struct sim_gw	*g = &s->g[i];
	int		 k;

	for (k = 0; k < SIM_REQS; k++) {
		struct sim_req	*q = &g->req[k];
		struct pair_fence *f = &q->res;

		if (q->kind == REQ_NONE || q->serve_at != s->t)
			continue;
		if (s->t < s->stall_until) {	/* served once it is back */
			q->answer_at += s->stall_until - q->serve_at;
			q->serve_at = s->stall_until;
			continue;
		}
		if (!g->etcd_up) {
			q->answer_at = s->t + 2 * s->p.interval;
			continue;
		}
		q->served = 1;
		if (q->kind == REQ_CLAIM &&
		    (s->found ? s->mod_rev : 0) == q->expect_rev) {
			s->mod_rev = ++s->rev;
			s->found = 1;
			s->epoch = q->epoch;
			s->holder = g->conf.address;
			f->status = PAIR_FENCE_WON;
		} else
			f->status = q->kind == REQ_CLAIM ? PAIR_FENCE_LOST :
			    PAIR_FENCE_OK;
		f->found = s->found;
		f->mod_revision = s->found ? s->mod_rev : 0;
		f->epoch = s->found ? s->epoch : 0;
		f->holder = s->holder;
	}
}

static void
sim_check(struct sim *s, const char *when)
{
	if (sim_holder(s) == 2)
		fail_msg("t=%llu (%s): both gateways hold the addresses "
		    "(roles %s, %s; reasons \"%s\", \"%s\")",
		    (unsigned long long)s->t, when,
		    pair_role_name(s->g[0].role), pair_role_name(s->g[1].role),
		    s->g[0].reason, s->g[1].reason);
}

static void
sim_run_engine(struct sim *s, int i)
{
	struct sim_gw		*g = &s->g[i];
	struct pair_role_out	 o;
	uint64_t		 now = sim_clock(s, i);

	pair_role_next(g->e, now, &o);
	assert_false(o.take && o.release);
	if (o.release) {
		assert_true(g->holding);
		g->holding = 0;
		g->parent_until = now + s->p.lag;
		g->releases++;
		g->last_release = s->t;
	}
	if (o.take) {
		assert_false(g->holding);
		assert_int_equal(o.role, PAIR_ACTIVE);
		assert_true(o.hold_deadline > now);
		g->holding = 1;
		g->takes++;
		g->last_take = s->t;
	}
	if (g->holding) {
		assert_int_equal(o.role, PAIR_ACTIVE);
		/* The engine lets go by the deadline it published. */
		assert_true(now < o.hold_deadline);
		g->deadline = o.hold_deadline;
	} else
		assert_int_equal(o.hold_deadline == 0, o.role != PAIR_ACTIVE);
	if (o.read)
		sim_etcd_request(s, i, REQ_READ, 0, 0);
	if (o.claim)
		sim_etcd_request(s, i, REQ_CLAIM, o.claim_mod_revision,
		    o.claim_epoch);
	/* "released" only once the addresses are gone (pairnet.c). */
	if (o.send_hb && !(o.role == PAIR_RELEASED && sim_holds(s, i))) {
		sim_send(s, i, &o.hb);
		g->held_back = 0;
	} else if (o.send_hb)
		g->held_back = 1;
	assert_true(o.next_call > now);
	g->next_call = o.next_call;
	if (trace && (o.role != g->role || strcmp(o.reason, g->reason) != 0))
		printf("  %6llu gw%d %-8s -> %-8s epoch %llu: %s\n",
		    (unsigned long long)s->t, i, pair_role_name(g->role),
		    pair_role_name(o.role), (unsigned long long)o.epoch,
		    o.reason);
	g->role = o.role;
	g->epoch = o.epoch;
	snprintf(g->reason, sizeof(g->reason), "%s", o.reason);
}

static int
sim_deliver(struct sim *s, int i)
{
	struct sim_gw	*g = &s->g[i];
	struct pair_hb	 hb;
	uint64_t	 now = sim_clock(s, i);
	size_t		 k;
	int		 n = 0;

	for (k = 0; k < SIM_MSGS; k++) {
		if (!s->msgs[k].used || s->msgs[k].to != i ||
		    s->msgs[k].at > s->t)
			continue;
		s->msgs[k].used = 0;
		assert_int_equal(pair_decode(s->msgs[k].buf, WIRE, key_a, NULL,
		    &hb, NULL), PAIR_OK);
		if (pair_replay_check(&g->replay, &hb, g->conf.session,
		    RT_BASE + s->t * NS_PER_MS) != 0)
			continue;
		assert_int_not_equal(pair_role_heartbeat(g->e, now, &hb), -1);
		n++;
	}
	for (k = 0; k < SIM_REQS; k++) {
		struct sim_req	*q = &g->req[k];
		struct pair_fence f = q->res;

		if (q->kind == REQ_NONE || q->answer_at > s->t)
			continue;
		/* Lost on the way back, or never served: unreachable (a
		 * claim may have been applied all the same). */
		if (!q->served || !g->etcd_up) {
			memset(&f, 0, sizeof(f));
			f.status = PAIR_FENCE_UNREACHABLE;
		}
		if (q->kind == REQ_READ)
			assert_int_equal(pair_role_fence_read(g->e, now,
			    q->started_at, &f), 0);
		else
			assert_int_equal(pair_role_fence_claim(g->e, now, &f),
			    0);
		q->kind = REQ_NONE;
		n++;
	}
	return n;
}

static void
sim_step(struct sim *s)
{
	int	 order[SIM_GWS], k, i, inputs, who;

	for (i = 0; i < SIM_GWS; i++)
		if (s->g[i].alive)
			sim_etcd_serve(s, i);
	order[0] = sim_rand(s) & 1;
	order[1] = 1 - order[0];
	for (k = 0; k < SIM_GWS; k++) {
		i = order[k];
		if (!s->g[i].alive) {
			sim_check(s, "parent");
			continue;
		}
		if (s->t < s->g[i].frozen_until) {
			sim_check(s, "frozen");
			continue;
		}
		inputs = sim_deliver(s, i);
		/* The parent says the addresses are gone. */
		if (s->g[i].held_back && !sim_holds(s, i)) {
			pair_role_resend(s->g[i].e);
			inputs++;
		}
		if (inputs > 0 || sim_clock(s, i) >= s->g[i].next_call)
			sim_run_engine(s, i);
		sim_check(s, "engine");
	}
	/* Drop what was addressed to a dead gateway (a frozen one reads
	 * it when it runs again). */
	for (k = 0; k < SIM_MSGS; k++)
		if (s->msgs[k].used && s->msgs[k].at <= s->t &&
		    s->t >= s->g[s->msgs[k].to].frozen_until)
			s->msgs[k].used = 0;
	who = sim_holder(s);
	if (who >= 0)
		s->none_since = 0;
	else if (s->none_since == 0)
		s->none_since = s->t;
	if (who < 0 && s->t - s->none_since + 1 > s->max_none)
		s->max_none = s->t - s->none_since + 1;
	s->t++;
}

static void
sim_run(struct sim *s, uint64_t ms)
{
	uint64_t	 end = s->t + ms;

	while (s->t < end)
		sim_step(s);
}

/*
 * The engine of i restarts (the network process: a reload, a crash) and
 * is back gap ms later.  Its parent keeps the addresses until the last
 * deadline handed to it; if they are still there, the new engine is
 * handed the holding to resume (R7).  1 if it resumed.
 */
static int
sim_restart(struct sim *s, int i, uint64_t gap)
{
	struct sim_gw	*g = &s->g[i];
	uint64_t	 epoch = g->epoch, until = g->deadline;
	int		 held = g->holding, resumed;

	sim_kill(s, i);
	sim_run(s, gap);
	resumed = held && sim_clock(s, i) < until;
	if (resumed) {
		g->conf.resume_epoch = epoch;
		g->conf.resume_until = until;
	}
	sim_start_gw(s, i);
	g->conf.resume_epoch = g->conf.resume_until = 0;
	if (resumed) {
		g->holding = 1;
		g->parent_until = 0;
		g->deadline = until;
		g->role = PAIR_ACTIVE;
	}
	if (trace)
		printf("  %6llu gw%d back%s\n", (unsigned long long)s->t, i,
		    resumed ? ", resuming" : "");
	return resumed;
}

/* Run until one holds and has held for `stable` ms; who, or -1. */
static int
sim_settle(struct sim *s, uint64_t limit, uint64_t stable)
{
	uint64_t	 end = s->t + limit, since = 0;
	int		 who, last = -1;

	while (s->t < end) {
		sim_step(s);
		who = sim_holder(s);
		if (who != last || who < 0) {
			last = who;
			since = s->t;
		} else if (s->t - since >= stable)
			return who;
	}
	return -1;
}

/* Run until `who` holds (and nobody else); 1, or 0 at the limit. */
static int
sim_wait_for(struct sim *s, int who, uint64_t limit)
{
	uint64_t	 end = s->t + limit;

	while (s->t < end) {
		sim_step(s);
		if (sim_holder(s) == who)
			return 1;
	}
	return 0;
}

static uint64_t
sim_changes(const struct sim *s)
{
	return s->g[0].takes + s->g[0].releases + s->g[1].takes +
	    s->g[1].releases;
}

/* Held the whole time by `who`, nothing changed. */
static void
sim_run_stable(struct sim *s, uint64_t ms, int who)
{
	uint64_t	 changes = sim_changes(s), end = s->t + ms;

	while (s->t < end) {
		sim_step(s);
		assert_int_equal(sim_holder(s), who);
	}
	assert_int_equal(sim_changes(s), changes);
}

/* Can an active hold on etcd reads alone (R4)? */
static int
etcd_holds(const struct sim_params *p)
{
	uint64_t	 period = 2ULL * p->interval, q;
	uint64_t	 rtt = 2ULL * p->etcd_max + 1;
	uint64_t	 m = p->margin != 0 ? p->margin : p->interval;

	q = (p->guard - m) / 4;
	if (q > 0 && q < period)
		period = q;
	return p->guard > m + period + rtt + 1;
}

/* The configurations every scenario is swept over. */
static const struct {
	uint32_t	 interval, dead, guard, margin;
} configs[] = {
	{ 20, 100, 100, 40 },	/* the defaults */
	{ 10, 30, 20, 10 },	/* the tightest the configuration allows */
	{ 50, 250, 100, 50 },
	{ 5, 15, 10, 5 },
	{ 20, 60, 200, 40 },
	{ 40, 200, 250, 150 },	/* a slow host: a wide margin */
};

static struct sim_params
params_for(size_t ci, uint32_t variant)
{
	struct sim_params	 p;

	memset(&p, 0, sizeof(p));
	p.interval = configs[ci].interval;
	p.dead = configs[ci].dead;
	p.guard = configs[ci].guard;
	p.margin = configs[ci].margin;
	/* Half the runs let go at once, half take almost the margin (what
	 * it leaves is for the clocks' drift and the ms steps). */
	p.lag = variant % 2 == 0 || p.margin <= 3 ? 0 : p.margin - 3;
	p.prio[0] = 200;
	p.prio[1] = 100;
	p.seed = 0x9e3779b9u ^ (uint32_t)(ci * 7919 + variant * 104729 + 1);
	/* Delays from 1 ms to half an interval, etcd round trips small. */
	p.delay_max = variant % 3 == 0 ? 1 : variant % 3 == 1 ?
	    p.interval / 4 + 1 : p.interval / 2;
	p.etcd_max = variant % 2 == 0 ? 0 : p.interval / 8;
	return p;
}

#define SWEEP(ci, v)	for (ci = 0; ci < nitems(configs); ci++) \
			    for (v = 0; v < 3; v++)

/* Slack for the engine's own steps: etcd round trips and a heartbeat. */
static uint64_t
slack(const struct sim_params *p)
{
	return 4ULL * p->interval + 8ULL * (p->etcd_max + 1) + p->delay_max +
	    2;
}

static uint64_t
settle_limit(const struct sim_params *p)
{
	return 4ULL * (p->dead + p->guard) + 10 * slack(p) + 1000;
}

/* ---- scenarios ------------------------------------------------------------- */

static void
test_sim_startup(void **state)
{
	struct sim		 s;
	struct sim_params	 p;
	size_t			 ci;
	uint32_t		 v;

	SWEEP(ci, v) {
		/* Priority decides. */
		p = params_for(ci, v);
		sim_init(&s, &p);
		assert_int_equal(sim_settle(&s, settle_limit(&p), p.dead), 0);
		/* Not before the start-up wait and the guard. */
		assert_true(s.g[0].last_take >= p.dead + p.guard);
		assert_true(s.g[0].last_take <= p.dead + p.guard + slack(&p));
		assert_int_equal(s.g[1].takes, 0);
		sim_run_stable(&s, 1000, 0);
		assert_int_equal(s.g[1].role, PAIR_STANDBY);
		assert_non_null(strstr(s.g[0].reason, "won epoch 1"));
		sim_free(&s);

		p.prio[0] = 50;
		sim_init(&s, &p);
		assert_int_equal(sim_settle(&s, settle_limit(&p), p.dead), 1);
		sim_run_stable(&s, 500, 1);
		assert_int_equal(s.g[0].takes, 0);
		sim_free(&s);

		/* A tie: the lower address; whichever is listed first. */
		p.prio[0] = p.prio[1] = 100;
		sim_init(&s, &p);
		assert_int_equal(sim_settle(&s, settle_limit(&p), p.dead), 0);
		sim_run_stable(&s, 500, 0);
		sim_free(&s);
		p.addr[0] = "198.18.1.9";
		sim_init(&s, &p);
		assert_int_equal(sim_settle(&s, settle_limit(&p), p.dead), 1);
		sim_run_stable(&s, 500, 1);
		assert_int_equal(s.g[0].takes, 0);
		sim_free(&s);
	}
}

/* Started one after the other: the first is active, the second stays
 * standby whatever its priority. */
static void
test_sim_late_start(void **state)
{
	struct sim		 s;
	struct sim_params	 p;
	size_t			 ci;
	uint32_t		 v;

	SWEEP(ci, v) {
		p = params_for(ci, v);
		p.prio[0] = 50;		/* B is preferred, but late */
		sim_init(&s, &p);
		sim_kill(&s, 1);
		assert_int_equal(sim_settle(&s, settle_limit(&p), p.dead), 0);
		sim_start_gw(&s, 1);
		sim_run_stable(&s, 2 * (p.dead + p.guard) + 500, 0);
		assert_int_equal(s.g[1].role, PAIR_STANDBY);
		sim_free(&s);
	}
}

/*
 * The active dies (its heartbeats stop; its parent removes the addresses
 * at the last deadline it was given): the standby takes over after dead
 * + guard, never before that deadline, and stays; the old one comes
 * back as standby.
 */
static void
test_sim_kill_active(void **state)
{
	struct sim		 s;
	struct sim_params	 p;
	size_t			 ci;
	uint32_t		 v;
	uint64_t		 killed, parent_until;

	SWEEP(ci, v) {
		p = params_for(ci, v);
		sim_init(&s, &p);
		assert_int_equal(sim_settle(&s, settle_limit(&p), 500), 0);
		killed = s.t;
		sim_kill(&s, 0);
		parent_until = s.g[0].parent_until;
		assert_true(sim_wait_for(&s, 1, settle_limit(&p)));
		/* The invariant held every ms; and in numbers: */
		assert_true(sim_clock(&s, 0) >= parent_until);
		assert_true(s.g[1].last_take + p.interval >= killed + p.dead +
		    p.guard);
		assert_true(s.g[1].last_take <= killed + p.dead + p.guard +
		    slack(&p));
		assert_non_null(strstr(s.g[1].reason, "silent"));
		sim_run_stable(&s, 1000, 1);
		sim_start_gw(&s, 0);
		sim_run_stable(&s, 2 * (p.dead + p.guard) + 500, 1);
		assert_int_equal(s.g[0].role, PAIR_STANDBY);
		sim_free(&s);
	}
}

/* gw1 active alone: settled with gw0 active, gw0 killed, gw1 took over
 * and has held for 500 ms. */
static void
sim_alone(struct sim *s, const struct sim_params *p)
{
	sim_init(s, p);
	assert_int_equal(sim_settle(s, settle_limit(p), 500), 0);
	sim_kill(s, 0);
	assert_true(sim_wait_for(s, 1, settle_limit(p)));
	sim_run_stable(s, 500, 1);
}

/*
 * An active alone (its partner killed) holds the role on etcd reads; one
 * answer in four comes back late, after the hold it would have given has
 * run out.  With a second read out beside the slow one (R4), the active
 * never lets go; one read at a time, it let go at the first.
 */
static void
test_sim_slow_read(void **state)
{
	struct sim		 s;
	struct sim_params	 p;
	size_t			 ci;
	uint32_t		 v;

	SWEEP(ci, v) {
		p = params_for(ci, v);
		if (!etcd_holds(&p))
			continue;
		sim_alone(&s, &p);
		s.p.slow_every = 4;
		s.p.slow_ms = p.guard - p.margin;
		sim_run_stable(&s, 5000, 1);
		/* It read all along: a quarter of its answers were late. */
		assert_true(s.g[1].reqs >= 5000 / (4 * p.interval));
		sim_free(&s);
	}
}

/*
 * R8: an active alone holds on etcd reads; etcd stalls (a pause of its
 * own, a host too busy to run it) for twice the guard, longer than any
 * read may take, so the hold runs out and the active lets go.  The first
 * fresh answer once etcd is back shows the epoch still its own, and it
 * holds it again at once: no claim, no guard, the same epoch, the site
 * without an active for less than a guard after the stall (claiming
 * afresh, it was a guard at least).
 */
static void
test_sim_etcd_stall(void **state)
{
	struct sim		 s;
	struct sim_params	 p;
	size_t			 ci;
	uint32_t		 v;
	uint64_t		 epoch, takes, releases, back;

	SWEEP(ci, v) {
		p = params_for(ci, v);
		if (!etcd_holds(&p))
			continue;
		sim_alone(&s, &p);
		epoch = s.epoch;
		takes = s.g[1].takes;
		releases = s.g[1].releases;
		back = s.stall_until = s.t + 2ULL * p.guard;
		sim_run(&s, 2ULL * p.guard);
		assert_int_equal(s.g[1].releases, releases + 1);
		assert_int_equal(sim_holder(&s), -1);
		assert_true(sim_wait_for(&s, 1, p.guard));
		assert_true(s.t < back + p.guard);
		assert_int_equal(s.epoch, epoch);
		assert_int_equal(s.g[1].takes, takes + 1);
		assert_non_null(strstr(s.g[1].reason, "held again"));
		sim_run_stable(&s, 1000, 1);
		sim_free(&s);
	}
}

/*
 * The link between the two is cut, etcd answers both: the active holds
 * on etcd reads, the standby (hearing nothing) claims and wins, the
 * active sees the newer epoch and lets go before the standby's guard is
 * over; never both.  Mended, the pair settles on one.
 */
static void
test_sim_link_cut(void **state)
{
	struct sim		 s;
	struct sim_params	 p;
	size_t			 ci;
	uint32_t		 v;

	SWEEP(ci, v) {
		p = params_for(ci, v);
		sim_init(&s, &p);
		assert_int_equal(sim_settle(&s, settle_limit(&p), 500), 0);
		s.link[0] = s.link[1] = 0;
		sim_run(&s, 3000);
		/* B claimed at least once. */
		assert_true(s.g[1].takes + s.g[0].releases > 0);
		s.link[0] = s.link[1] = 1;
		assert_int_not_equal(sim_settle(&s, settle_limit(&p), 500), -1);
		sim_run_stable(&s, 1000, sim_holder(&s));
		sim_free(&s);
	}
}

/* etcd unreachable from both, the pair fine: nothing changes. */
static void
test_sim_etcd_down(void **state)
{
	struct sim		 s;
	struct sim_params	 p;
	size_t			 ci;
	uint32_t		 v;

	SWEEP(ci, v) {
		p = params_for(ci, v);
		sim_init(&s, &p);
		assert_int_equal(sim_settle(&s, settle_limit(&p), 500), 0);
		s.g[0].etcd_up = s.g[1].etcd_up = 0;
		sim_run_stable(&s, 3000, 0);
		s.g[0].etcd_up = s.g[1].etcd_up = 1;
		sim_run_stable(&s, 1000, 0);
		sim_free(&s);
	}
}

/*
 * Both cut off (from each other and from etcd): the active lets go at
 * its deadline, the standby cannot claim: the site is dark until etcd
 * answers again.
 */
static void
test_sim_both_cut(void **state)
{
	struct sim		 s;
	struct sim_params	 p;
	size_t			 ci;
	uint32_t		 v;
	uint64_t		 cut;

	SWEEP(ci, v) {
		p = params_for(ci, v);
		sim_init(&s, &p);
		assert_int_equal(sim_settle(&s, settle_limit(&p), 500), 0);
		cut = s.t;
		s.link[0] = s.link[1] = 0;
		s.g[0].etcd_up = s.g[1].etcd_up = 0;
		sim_run(&s, p.dead + p.guard + slack(&p));
		assert_int_equal(sim_holder(&s), -1);
		assert_true(s.g[0].last_release > cut);
		assert_true(s.g[0].last_release <= cut + p.dead + p.guard);
		assert_non_null(strstr(s.g[0].reason, "hold deadline"));
		sim_run_stable(&s, 2000, -1);
		/* etcd back, the link still cut: someone takes the role. */
		s.g[0].etcd_up = s.g[1].etcd_up = 1;
		assert_int_not_equal(sim_settle(&s, settle_limit(&p), 1), -1);
		s.link[0] = s.link[1] = 1;
		assert_int_not_equal(sim_settle(&s, settle_limit(&p), 500), -1);
		sim_run_stable(&s, 1000, sim_holder(&s));
		sim_free(&s);
	}
}

/*
 * One way cut.  The active's heartbeats lost: the standby claims, the
 * active (still hearing it) sees the won epoch and lets go, the standby
 * holds on etcd.  The standby's lost: the active holds on etcd, the
 * standby (hearing it) does nothing.
 */
static void
test_sim_one_way(void **state)
{
	struct sim		 s;
	struct sim_params	 p;
	size_t			 ci;
	uint32_t		 v;

	SWEEP(ci, v) {
		p = params_for(ci, v);
		sim_init(&s, &p);
		assert_int_equal(sim_settle(&s, settle_limit(&p), 500), 0);
		s.link[0] = 0;
		if (etcd_holds(&p)) {
			assert_int_equal(sim_settle(&s, settle_limit(&p), 500),
			    1);
			assert_int_equal(s.g[0].role, PAIR_STANDBY);
			sim_run_stable(&s, 2000, 1);
		} else
			sim_run(&s, 3000);
		s.link[0] = 1;
		assert_int_not_equal(sim_settle(&s, settle_limit(&p), 500), -1);
		sim_free(&s);

		sim_init(&s, &p);
		assert_int_equal(sim_settle(&s, settle_limit(&p), 500), 0);
		s.link[1] = 0;
		if (etcd_holds(&p))
			sim_run_stable(&s, 3000, 0);
		else
			sim_run(&s, 3000);
		s.link[1] = 1;
		assert_int_not_equal(sim_settle(&s, settle_limit(&p), 500), -1);
		sim_free(&s);
	}
}

/*
 * Handover: the role moves to the standby, never two holders, and the
 * addresses are nowhere only for a heartbeat's trip.  Refused without a
 * healthy standby.
 */
static void
test_sim_handover(void **state)
{
	struct sim		 s;
	struct sim_params	 p;
	size_t			 ci;
	uint32_t		 v;
	uint64_t		 asked;
	char			 err[PAIR_REASON_MAX];

	SWEEP(ci, v) {
		p = params_for(ci, v);
		sim_init(&s, &p);
		assert_int_equal(sim_settle(&s, settle_limit(&p), 500), 0);
		assert_int_equal(pair_role_handover(s.g[1].e, sim_clock(&s, 1),
		    err, sizeof(err)), -1);
		assert_non_null(strstr(err, "not active"));
		asked = s.t;
		assert_int_equal(pair_role_handover(s.g[0].e, sim_clock(&s, 0),
		    err, sizeof(err)), 0);
		assert_int_equal(pair_role_handover(s.g[0].e, sim_clock(&s, 0),
		    err, sizeof(err)), -1);
		assert_non_null(strstr(err, "under way"));
		s.max_none = 0;
		assert_int_equal(sim_settle(&s, settle_limit(&p), 200), 1);
		assert_true(s.g[1].last_take < asked + p.guard + p.lag);
		assert_true(s.max_none <= p.delay_max + 1);
		assert_non_null(strstr(s.g[0].reason,
		    "handover asked by the operator"));
		assert_non_null(strstr(s.g[1].reason, "handover asked by"));
		sim_run_stable(&s, 1000, 1);
		assert_int_equal(s.g[0].role, PAIR_STANDBY);
		/* And back. */
		assert_int_equal(pair_role_handover(s.g[1].e, sim_clock(&s, 1),
		    err, sizeof(err)), 0);
		assert_int_equal(sim_settle(&s, settle_limit(&p), 200), 0);
		sim_run_stable(&s, 500, 0);

		/* No healthy standby: WAN down, unheard, etcd unreachable. */
		pair_role_wan(s.g[1].e, 0);
		s.g[1].wan_up = 0;
		sim_run(&s, 3 * p.interval);
		assert_int_equal(pair_role_handover(s.g[0].e, sim_clock(&s, 0),
		    err, sizeof(err)), -1);
		assert_non_null(strstr(err, "WAN is down"));
		pair_role_wan(s.g[1].e, 1);
		s.g[1].etcd_up = 0;
		sim_run(&s, 1300 + 4 * p.interval);	/* a slow read fails */
		assert_int_equal(pair_role_handover(s.g[0].e, sim_clock(&s, 0),
		    err, sizeof(err)), -1);
		assert_non_null(strstr(err, "does not reach etcd"));
		s.g[1].etcd_up = 1;
		s.link[1] = 0;
		sim_run(&s, p.dead + p.delay_max + 1);
		assert_int_equal(pair_role_handover(s.g[0].e, sim_clock(&s, 0),
		    err, sizeof(err)), -1);
		if (strstr(err, "not heard") == NULL)
			fail_msg("%zu/%u: %s", ci, v, err);
		s.link[1] = 1;
		sim_run_stable(&s, 500, 0);
		sim_free(&s);
	}
}

/*
 * The link flickers at the worst moments: the active's heartbeats stop
 * for about dead_ms, so that the standby decides to claim, and come back
 * while its read or its claim is in flight; then the standby's stop
 * reaching the active and the active loses etcd.  Whatever the standby
 * echoed to the active in between must not keep the active holding once
 * the standby's claim is through.  etcd is slow here (up to half an
 * interval each way) to widen the windows.
 */
static void
test_sim_flicker(void **state)
{
	struct sim		 s;
	struct sim_params	 p;
	size_t			 ci;
	uint32_t		 k;

	for (ci = 0; ci < nitems(configs); ci++)
		for (k = 0; k < 40; k++) {
			p = params_for(ci, k);
			p.etcd_max = p.interval / 2;
			sim_init(&s, &p);
			assert_int_equal(sim_settle(&s, settle_limit(&p), 500),
			    0);
			s.link[0] = 0;
			sim_run(&s, p.dead + sim_between(&s, 0,
			    2 * p.etcd_max + p.delay_max + 2));
			s.link[0] = 1;
			sim_run(&s, sim_between(&s, 0, 2 * p.etcd_max +
			    p.interval));
			s.link[1] = 0;
			s.g[0].etcd_up = 0;
			sim_run(&s, 2 * (p.dead + p.guard) + slack(&p));
			s.link[1] = 1;
			s.g[0].etcd_up = 1;
			assert_int_not_equal(sim_settle(&s, settle_limit(&p),
			    500), -1);
			sim_free(&s);
		}
}

/*
 * A handover cut short: the standby heard HANDOVER and claims, then its
 * heartbeats stop reaching the active and the active loses etcd, so the
 * active never sees the won epoch.  It must let go by itself before the
 * standby's guard is over (its deadline was capped when it flagged the
 * handover).
 */
static void
test_sim_handover_cut(void **state)
{
	struct sim		 s;
	struct sim_params	 p;
	size_t			 ci;
	uint32_t		 v, k;
	char			 err[PAIR_REASON_MAX];

	SWEEP(ci, v) {
		for (k = 0; k < 4; k++) {
			p = params_for(ci, v);
			p.seed += k * 31;
			sim_init(&s, &p);
			assert_int_equal(sim_settle(&s, settle_limit(&p), 500),
			    0);
			assert_int_equal(pair_role_handover(s.g[0].e,
			    sim_clock(&s, 0), err, sizeof(err)), 0);
			sim_run(&s, k * p.interval / 2);
			s.link[1] = 0;
			s.g[0].etcd_up = 0;
			assert_true(sim_wait_for(&s, 1, settle_limit(&p)));
			sim_run_stable(&s, 1000, 1);
			sim_free(&s);
		}
	}
}

/*
 * A handover on a host whose processes stop for a while (a virtual
 * machine whose CPUs are taken from it): from the moment the standby's
 * claim is through, the outgoing gateway (and, the second time round,
 * both) runs nothing for guard_ms, and once it runs again its parent
 * takes long to remove the addresses (dead_ms / 2, far more than the
 * margin).  The standby, at its guard's end, has heard the partner say
 * active since its claim: it waits for the partner to say released
 * rather than take beside it (R2); never two, and it takes all the same.
 */
static void
test_sim_handover_frozen(void **state)
{
	struct sim		 s;
	struct sim_params	 p;
	size_t			 ci;
	uint32_t		 v, both;
	uint64_t		 e0, thaw;
	char			 err[PAIR_REASON_MAX];

	SWEEP(ci, v) {
		for (both = 0; both < 2; both++) {
			p = params_for(ci, v);
			p.seed += both * 17;
			sim_init(&s, &p);
			assert_int_equal(sim_settle(&s, settle_limit(&p), 500),
			    0);
			e0 = s.epoch;
			s.p.lag = p.dead / 2;
			assert_int_equal(pair_role_handover(s.g[0].e,
			    sim_clock(&s, 0), err, sizeof(err)), 0);
			while (s.epoch == e0 && s.t < 100000)
				sim_step(&s);
			assert_int_equal(s.epoch, e0 + 1);
			thaw = s.t + p.guard;
			s.g[0].frozen_until = thaw;
			if (both)
				s.g[1].frozen_until = thaw;
			assert_true(sim_wait_for(&s, 1, settle_limit(&p)));
			/* Not before the partner ran again and let go. */
			assert_true(s.g[1].last_take >= thaw);
			assert_true(s.g[1].last_take > s.g[0].last_release);
			sim_run_stable(&s, 1000, 1);
			sim_free(&s);
		}
	}
}

/*
 * A handover the standby cannot follow (its etcd goes away just after
 * it was asked): the active gives up the handover and stays, holding on
 * etcd reads meanwhile when the guard allows it; never two.
 */
static void
test_sim_handover_fails(void **state)
{
	struct sim		 s;
	struct sim_params	 p;
	size_t			 ci;
	uint32_t		 v;
	char			 err[PAIR_REASON_MAX];

	SWEEP(ci, v) {
		p = params_for(ci, v);
		sim_init(&s, &p);
		assert_int_equal(sim_settle(&s, settle_limit(&p), 500), 0);
		assert_int_equal(pair_role_handover(s.g[0].e, sim_clock(&s, 0),
		    err, sizeof(err)), 0);
		s.g[1].etcd_up = 0;
		if (etcd_holds(&p)) {
			sim_run_stable(&s, p.dead + p.guard + 1000, 0);
			assert_int_equal(s.g[1].takes, 0);
		} else
			sim_run(&s, p.dead + p.guard + 1000);
		s.g[1].etcd_up = 1;
		assert_int_not_equal(sim_settle(&s, settle_limit(&p), 500), -1);
		sim_free(&s);
	}
}

/* A standby whose WAN is down does not claim, even with the active gone. */
static void
test_sim_wan_down(void **state)
{
	struct sim		 s;
	struct sim_params	 p;
	size_t			 ci;
	uint32_t		 v;

	SWEEP(ci, v) {
		p = params_for(ci, v);
		sim_init(&s, &p);
		assert_int_equal(sim_settle(&s, settle_limit(&p), 500), 0);
		pair_role_wan(s.g[1].e, 0);
		sim_run(&s, p.interval);
		sim_kill(&s, 0);
		sim_run(&s, p.dead + p.guard);
		sim_run_stable(&s, 2000, -1);
		assert_int_equal(s.g[1].takes, 0);
		pair_role_wan(s.g[1].e, 1);
		assert_int_equal(sim_settle(&s, settle_limit(&p), 200), 1);
		sim_free(&s);
	}
}

/*
 * The active's WAN goes down while its partner does not reach etcd: no
 * handover yet (nobody could take the role); once the partner reaches
 * etcd again, the active hands over by itself (R5).
 */
static void
test_sim_wan_down_later(void **state)
{
	struct sim		 s;
	struct sim_params	 p;
	size_t			 ci;
	uint32_t		 v;

	SWEEP(ci, v) {
		p = params_for(ci, v);
		sim_init(&s, &p);
		assert_int_equal(sim_settle(&s, settle_limit(&p), 500), 0);
		s.g[1].etcd_up = 0;
		sim_run(&s, 3000);	/* its slow read fails: not ETCD_OK */
		pair_role_wan(s.g[0].e, 0);
		sim_run(&s, 2ULL * (p.dead + p.guard));
		assert_int_equal(sim_holder(&s), 0);
		assert_int_equal(s.g[1].takes, 0);
		s.g[1].etcd_up = 1;
		/* Its next slow read (within a second) makes it ETCD_OK. */
		sim_run(&s, 1000 + settle_limit(&p));
		assert_int_equal(s.g[1].takes, 1);
		assert_int_equal(sim_settle(&s, settle_limit(&p), 200), 1);
		sim_free(&s);
	}
}

/*
 * Everything at random: cuts either way, etcd outages from either side,
 * deaths and restarts, handovers, WAN flaps, heartbeat loss, etcd
 * answers slower than the margin, heartbeats overtaking each other (and
 * slower than dead_ms); the never-two invariant every ms, and once all
 * is mended, one active (but with heartbeats slower than dead_ms).
 */
/*
 * The active's role engine restarts (R7).  Back within dead_ms less a
 * heartbeat's interval and travel: it resumes, the partner never claims,
 * nothing moves.  Back later: safe whatever the gap (the partner may
 * claim and take; never both), and the pair settles.
 */
static void
test_sim_resume(void **state)
{
	struct sim		 s;
	struct sim_params	 p;
	size_t			 ci;
	uint32_t		 v;
	uint64_t		 gap;
	int			 k, who;

	SWEEP(ci, v) {
		p = params_for(ci, v);
		sim_init(&s, &p);
		assert_int_equal(sim_settle(&s, settle_limit(&p), 500), 0);
		for (k = 0; k < 10; k++) {
			gap = sim_between(&s, 1, p.dead - p.interval -
			    p.delay_max - 1);
			assert_true(sim_restart(&s, 0, gap));
			sim_run_stable(&s, 2 * (p.dead + p.guard) + 200, 0);
			assert_non_null(strstr(s.g[0].reason, "resumed"));
			assert_int_equal(s.g[1].takes, 0);
			assert_int_equal(s.g[0].role, PAIR_ACTIVE);
		}
		/* Not resumed: the hold ran out while it was gone. */
		gap = 2 * (p.dead + p.guard);
		assert_false(sim_restart(&s, 0, gap));
		who = sim_settle(&s, settle_limit(&p), 500);
		assert_int_equal(who, 1);
		for (k = 0; k < 20; k++) {
			who = sim_settle(&s, settle_limit(&p), 200);
			assert_int_not_equal(who, -1);
			gap = sim_between(&s, 1, 2 * (p.dead + p.guard));
			sim_restart(&s, who, gap);
		}
		assert_int_not_equal(sim_settle(&s, settle_limit(&p), 500),
		    -1);
		sim_free(&s);
	}
}

static void
test_sim_chaos(void **state)
{
	struct sim		 s;
	struct sim_params	 p;
	size_t			 ci;
	uint32_t		 v, ev;
	uint64_t		 end;
	int			 i, who;
	char			 err[PAIR_REASON_MAX];

	for (ci = 0; ci < nitems(configs); ci++)
		for (v = 0; v < 8; v++) {
			p = params_for(ci, v);
			p.loss_pct = v % 3;
			/* Some with etcd answers slower than the margin, some
			 * with heartbeats overtaking each other. */
			if (v == 3)
				p.etcd_max = 2 * p.interval;
			if (v == 4)
				p.delay_max = 3 * p.interval;
			sim_init(&s, &p);
			end = s.t + 20000;
			while (s.t < end) {
				sim_run(&s, sim_between(&s, 1,
				    3 * (p.dead + p.guard)));
				i = sim_rand(&s) & 1;
				ev = sim_between(&s, 0, 9);
				if (ev <= 1)
					s.link[i] = !s.link[i];
				else if (ev <= 3)
					s.g[i].etcd_up = !s.g[i].etcd_up;
				else if (ev == 4 && s.g[i].alive)
					sim_kill(&s, i);
				else if (ev == 4)
					sim_start_gw(&s, i);
				else if (ev == 5 && s.g[i].alive) {
					s.g[i].wan_up = !s.g[i].wan_up;
					pair_role_wan(s.g[i].e,
					    s.g[i].wan_up);
				} else if (ev == 6 && s.g[i].alive)
					sim_restart(&s, i, sim_between(&s, 1,
					    2 * (p.dead + p.guard)));
				else if (ev >= 7 && s.g[i].alive)
					(void)pair_role_handover(s.g[i].e,
					    sim_clock(&s, i), err,
					    sizeof(err));
			}
			/* Mend everything. */
			p.loss_pct = 0;
			s.p.loss_pct = 0;
			for (i = 0; i < SIM_GWS; i++) {
				s.link[i] = 1;
				s.g[i].etcd_up = 1;
				if (!s.g[i].alive)
					sim_start_gw(&s, i);
				s.g[i].wan_up = 1;
				pair_role_wan(s.g[i].e, 1);
			}
			/* Heartbeats slower than dead_ms: no pair can work,
			 * only safety is asked for. */
			if (v != 4) {
				who = sim_settle(&s, settle_limit(&p), 500);
				assert_int_not_equal(who, -1);
				sim_run_stable(&s, 1000, who);
			}
			sim_free(&s);
		}
}

static int
setup(void **state)
{
	size_t	 i;

	if (sodium_init() < 0)
		return -1;
	for (i = 0; i < PAIR_KEY_LEN; i++) {
		key_a[i] = (uint8_t)(0xa0 + i);
		key_b[i] = (uint8_t)(0xb0 + i);
	}
	trace = getenv("PAIR_TRACE") != NULL;
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_codec_roundtrip),
		cmocka_unit_test(test_codec_encode_refuses),
		cmocka_unit_test(test_codec_tamper),
		cmocka_unit_test(test_codec_keys),
		cmocka_unit_test(test_codec_lengths),
		cmocka_unit_test(test_codec_fields),
		cmocka_unit_test(test_prepare_limit),
		cmocka_unit_test(test_key_derive),
		cmocka_unit_test(test_key_derive_pinned),
		cmocka_unit_test(test_replay),
		cmocka_unit_test(test_engine_conf),
		cmocka_unit_test(test_engine_alone),
		cmocka_unit_test(test_engine_confirmations),
		cmocka_unit_test(test_engine_claim_recheck),
		cmocka_unit_test(test_sim_startup),
		cmocka_unit_test(test_sim_late_start),
		cmocka_unit_test(test_sim_kill_active),
		cmocka_unit_test(test_sim_slow_read),
		cmocka_unit_test(test_sim_etcd_stall),
		cmocka_unit_test(test_sim_link_cut),
		cmocka_unit_test(test_sim_etcd_down),
		cmocka_unit_test(test_sim_both_cut),
		cmocka_unit_test(test_sim_one_way),
		cmocka_unit_test(test_sim_handover),
		cmocka_unit_test(test_sim_flicker),
		cmocka_unit_test(test_sim_handover_cut),
		cmocka_unit_test(test_sim_handover_frozen),
		cmocka_unit_test(test_sim_handover_fails),
		cmocka_unit_test(test_sim_wan_down),
		cmocka_unit_test(test_sim_wan_down_later),
		cmocka_unit_test(test_sim_resume),
		cmocka_unit_test(test_sim_chaos),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
