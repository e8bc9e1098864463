/*
 * Link probes: the packet codec, the anti-replay window, the key
 * derivation, the [probe] configuration keys, and two engines talking to
 * each other (and to scripted peers) over loopback.
 *
 * The engine tests use 127.0.0.1 to 127.0.0.4 as the LAN and WAN
 * addresses of two sides and a UDP port derived from the process id, so
 * that two runs on one machine do not meet.  Wall-clock bounds are loose:
 * they catch a detector that never fires, not a slow machine.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <sodium.h>

#include "grgw.h"
#include "linkstate.h"
#include "probe.h"
#include "config_text.h"

#define FN		"grgw.conf"
#define WIRE		80
#define NS_PER_S	1000000000ULL

static uint8_t	 key_a[PROBE_KEY_LEN], key_b[PROBE_KEY_LEN];
static char	 tmpdir[PATH_MAX];

static uint64_t
now_ns(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static uint64_t
mono_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct probe_pkt
request(uint64_t session, uint64_t seq, uint64_t tx_ns)
{
	struct probe_pkt	 p;

	memset(&p, 0, sizeof(p));
	p.type = PROBE_REQUEST;
	p.path = PROBE_UNDERLAY;
	p.session = session;
	p.seq = seq;
	p.tx_ns = tx_ns;
	return p;
}

/* Decode from a heap copy of exactly len bytes, so ASan sees overreads. */
static int
decode_exact(const uint8_t *buf, size_t len, const uint8_t *key,
    struct probe_pkt *out)
{
	uint8_t	*copy = malloc(len > 0 ? len : 1);
	int	 rc;

	assert_non_null(copy);
	if (len > 0)
		memcpy(copy, buf, len);
	rc = probe_decode(copy, len, key, out);
	free(copy);
	return rc;
}

/* ---- codec ---------------------------------------------------------------- */

static void
test_roundtrip(void **state)
{
	struct probe_pkt	 p, q;
	uint8_t			 buf[WIRE + 16];

	assert_int_equal(probe_wire_len(), WIRE);

	p = request(0x0102030405060708ULL, 1, 1700000000123456789ULL);
	p.path = PROBE_TUNNEL;
	assert_int_equal(probe_encode(&p, key_a, buf, sizeof(buf)), WIRE);
	assert_memory_equal(buf, "GRPB\x01\x01\x00\x00", 8);
	assert_memory_equal(buf + 8, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
	assert_int_equal(decode_exact(buf, WIRE, key_a, &q), PROBE_OK);
	assert_memory_equal(&p, &q, sizeof(p));

	memset(&p, 0, sizeof(p));
	p.type = PROBE_REPLY;
	p.path = PROBE_UNDERLAY;
	p.session = UINT64_MAX;
	p.seq = UINT64_MAX;
	p.tx_ns = UINT64_MAX - 1;
	p.echo_seq = 42;
	p.echo_tx_ns = 43;
	assert_int_equal(probe_encode(&p, key_a, buf, WIRE), WIRE);
	assert_int_equal(buf[5], PROBE_REPLY);
	assert_int_equal(buf[6], PROBE_UNDERLAY);
	assert_int_equal(decode_exact(buf, WIRE, key_a, &q), PROBE_OK);
	assert_memory_equal(&p, &q, sizeof(p));
}

static void
test_encode_refuses(void **state)
{
	struct probe_pkt	 p;
	uint8_t			 buf[WIRE];

	p = request(1, 1, 1);
	assert_int_equal(probe_encode(&p, key_a, buf, WIRE - 1), -1);
	assert_int_equal(probe_encode(NULL, key_a, buf, WIRE), -1);
	assert_int_equal(probe_encode(&p, NULL, buf, WIRE), -1);
	assert_int_equal(probe_encode(&p, key_a, NULL, WIRE), -1);
	p.type = 3;
	assert_int_equal(probe_encode(&p, key_a, buf, WIRE), -1);
	p = request(1, 1, 1);
	p.path = PROBE_NPATHS;
	assert_int_equal(probe_encode(&p, key_a, buf, WIRE), -1);
	p = request(1, 1, 1);
	p.echo_seq = 1;		/* a request answers nothing */
	assert_int_equal(probe_encode(&p, key_a, buf, WIRE), -1);
	p = request(1, 1, 1);
	p.type = PROBE_REPLY;	/* a reply must answer something */
	assert_int_equal(probe_encode(&p, key_a, buf, WIRE), -1);
}

static void
test_every_bit_flip(void **state)
{
	struct probe_pkt	 p, q;
	uint8_t			 buf[WIRE];
	size_t			 bit;
	int			 rc, nauth = 0, nmal = 0;

	memset(&p, 0, sizeof(p));
	p.type = PROBE_REPLY;
	p.path = PROBE_TUNNEL;
	p.session = 0x1122334455667788ULL;
	p.seq = 77;
	p.tx_ns = now_ns();
	p.echo_seq = 76;
	p.echo_tx_ns = p.tx_ns - 1000;
	assert_int_equal(probe_encode(&p, key_a, buf, WIRE), WIRE);
	for (bit = 0; bit < WIRE * 8; bit++) {
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		rc = decode_exact(buf, WIRE, key_a, &q);
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		if (rc == PROBE_E_AUTH)
			nauth++;
		else if (rc == PROBE_E_MALFORMED)
			nmal++;
		else
			fail_msg("bit %zu flipped and still accepted", bit);
	}
	/* Header bits are caught as malformed, the rest by the tag. */
	assert_int_equal(nmal, 8 * 8 - 1);	/* path 0 -> 1 is a path */
	assert_int_equal(nauth, WIRE * 8 - nmal);
	assert_int_equal(decode_exact(buf, WIRE, key_a, &q), PROBE_OK);
}

static void
test_wrong_key(void **state)
{
	struct probe_pkt	 p = request(9, 9, 9), q;
	uint8_t			 buf[WIRE];

	assert_int_equal(probe_encode(&p, key_b, buf, WIRE), WIRE);
	assert_int_equal(decode_exact(buf, WIRE, key_a, &q), PROBE_E_AUTH);
	/* Nothing of a refused packet leaks into the output. */
	assert_int_equal(q.seq, 0);
	assert_int_equal(q.session, 0);
	assert_int_equal(decode_exact(buf, WIRE, key_b, &q), PROBE_OK);
}

/*
 * A key rotation: a packet authenticated with the primary or the next key
 * is accepted, and *used says which; one under any other key, a
 * tampered one or a malformed one is refused as without a next key.
 */
static void
test_decode_either(void **state)
{
	struct probe_pkt	 p = request(11, 12, 13), q;
	uint8_t			 key_c[PROBE_KEY_LEN], buf[WIRE];
	int			 used;
	size_t			 i;

	memset(key_c, 0xcc, sizeof(key_c));
	assert_int_equal(probe_encode(&p, key_a, buf, WIRE), WIRE);
	used = -1;
	assert_int_equal(probe_decode_either(buf, WIRE, key_a, NULL, &q,
	    &used), PROBE_OK);
	assert_int_equal(used, 0);
	assert_int_equal(q.seq, 12);
	used = -1;
	assert_int_equal(probe_decode_either(buf, WIRE, key_a, key_b, &q,
	    &used), PROBE_OK);
	assert_int_equal(used, 0);
	/* The peer already sends with what is our next key. */
	assert_int_equal(probe_encode(&p, key_b, buf, WIRE), WIRE);
	assert_int_equal(probe_decode_either(buf, WIRE, key_a, NULL, &q,
	    &used), PROBE_E_AUTH);
	assert_int_equal(used, 0);
	assert_int_equal(probe_decode_either(buf, WIRE, key_a, key_b, &q,
	    &used), PROBE_OK);
	assert_int_equal(used, 1);
	assert_int_equal(q.session, 11);
	assert_int_equal(q.tx_ns, 13);
	assert_int_equal(probe_decode_either(buf, WIRE, key_a, key_b, &q,
	    NULL), PROBE_OK);
	/* Neither key: refused, nothing leaks into the output. */
	assert_int_equal(probe_encode(&p, key_c, buf, WIRE), WIRE);
	assert_int_equal(probe_decode_either(buf, WIRE, key_a, key_b, &q,
	    &used), PROBE_E_AUTH);
	assert_int_equal(used, 0);
	assert_int_equal(q.seq, 0);
	/* Every bit of a packet under the next key matters. */
	assert_int_equal(probe_encode(&p, key_b, buf, WIRE), WIRE);
	for (i = 0; i < WIRE * 8; i++) {
		buf[i / 8] ^= (uint8_t)(1u << (i % 8));
		assert_int_not_equal(probe_decode_either(buf, WIRE, key_a,
		    key_b, &q, &used), PROBE_OK);
		buf[i / 8] ^= (uint8_t)(1u << (i % 8));
	}
	assert_int_equal(probe_decode_either(buf, WIRE, key_a, key_b, &q,
	    &used), PROBE_OK);
	/* Malformed stays malformed, and no key is tried on it. */
	assert_int_equal(probe_decode_either(buf, WIRE - 1, key_a, key_b, &q,
	    &used), PROBE_E_MALFORMED);
	assert_int_equal(probe_decode_either(buf, WIRE, NULL, key_b, &q,
	    &used), PROBE_E_MALFORMED);
	assert_int_equal(probe_decode_either(NULL, WIRE, key_a, key_b, &q,
	    &used), PROBE_E_MALFORMED);
}

static void
test_lengths(void **state)
{
	struct probe_pkt	 p = request(5, 5, 5), q;
	uint8_t			 buf[2 * WIRE];
	size_t			 len;

	memset(buf, 0, sizeof(buf));
	assert_int_equal(probe_encode(&p, key_a, buf, sizeof(buf)), WIRE);
	for (len = 0; len < sizeof(buf); len++) {
		if (len == WIRE)
			continue;
		assert_int_equal(decode_exact(buf, len, key_a, &q),
		    PROBE_E_MALFORMED);
	}
	assert_int_equal(probe_decode(NULL, WIRE, key_a, &q),
	    PROBE_E_MALFORMED);
	assert_int_equal(probe_decode(buf, WIRE, NULL, &q), PROBE_E_MALFORMED);
	assert_int_equal(probe_decode(buf, WIRE, key_a, NULL),
	    PROBE_E_MALFORMED);
}

/*
 * Header fields are refused as malformed even under a valid tag: the
 * tag is recomputed over the altered packet.
 */
static void
expect_malformed_signed(uint8_t *buf, size_t off, uint8_t value)
{
	struct probe_pkt	 q;
	uint8_t			 copy[WIRE];

	memcpy(copy, buf, WIRE);
	copy[off] = value;
	crypto_auth(copy + 48, copy, 48, key_a);
	assert_int_equal(decode_exact(copy, WIRE, key_a, &q),
	    PROBE_E_MALFORMED);
}

static void
test_header_fields(void **state)
{
	struct probe_pkt	 p = request(5, 5, 5);
	uint8_t			 buf[WIRE];

	assert_int_equal(probe_encode(&p, key_a, buf, WIRE), WIRE);
	expect_malformed_signed(buf, 0, 'g');		/* magic */
	expect_malformed_signed(buf, 3, 'Q');
	expect_malformed_signed(buf, 4, 0);		/* version */
	expect_malformed_signed(buf, 4, 2);
	expect_malformed_signed(buf, 5, 0);		/* type */
	expect_malformed_signed(buf, 5, 3);
	expect_malformed_signed(buf, 6, 2);		/* path */
	expect_malformed_signed(buf, 6, 0xff);
	expect_malformed_signed(buf, 7, 1);		/* reserved */
	expect_malformed_signed(buf, 39, 1);	/* request with echo_seq */
	expect_malformed_signed(buf, 47, 1);	/* request with echo_tx_ns */
	/* A reply that answers seq 0. */
	expect_malformed_signed(buf, 5, PROBE_REPLY);
}

/* ---- anti-replay ---------------------------------------------------------- */

static int
check(struct probe_replay *r, uint64_t session, uint64_t seq, uint64_t tx,
    uint64_t now)
{
	struct probe_pkt	 p = request(session, seq, tx);

	return probe_replay_check(r, &p, now);
}

static void
test_replay_basic(void **state)
{
	struct probe_replay	 r;
	uint64_t		 now = now_ns();

	memset(&r, 0, sizeof(r));
	assert_int_equal(check(&r, 7, 0, now, now), -1);	/* seq 0 */
	assert_int_equal(r.valid, 0);
	assert_int_equal(check(&r, 7, 1, now, now), 0);
	assert_int_equal(check(&r, 7, 1, now, now), -1);	/* duplicate */
	assert_int_equal(check(&r, 7, 2, now, now), 0);
	assert_int_equal(check(&r, 7, 10, now, now), 0);
	/* Out of order inside the window: accepted once. */
	assert_int_equal(check(&r, 7, 5, now, now), 0);
	assert_int_equal(check(&r, 7, 5, now, now), -1);
	assert_int_equal(check(&r, 7, 3, now, now), 0);
	assert_int_equal(check(&r, 7, 2, now, now), -1);
	assert_int_equal(check(&r, 7, 10, now, now), -1);
	assert_int_equal(r.top, 10);
	assert_int_equal(check(&r, 7, 0, now, now), -1);
	assert_int_equal(probe_replay_check(NULL, NULL, now), -1);
}

static void
test_replay_window_edges(void **state)
{
	struct probe_replay	 r;
	uint64_t		 now = now_ns(), top = 3000;

	memset(&r, 0, sizeof(r));
	assert_int_equal(check(&r, 7, top, now, now), 0);
	/* Just inside, then just outside the window. */
	assert_int_equal(check(&r, 7, top - PROBE_REPLAY_WINDOW + 1, now, now),
	    0);
	assert_int_equal(check(&r, 7, top - PROBE_REPLAY_WINDOW, now, now), -1);
	assert_int_equal(check(&r, 7, 1, now, now), -1);

	/* Sliding forward by less than the window keeps what it covers. */
	assert_int_equal(check(&r, 7, top + 100, now, now), 0);
	assert_int_equal(check(&r, 7, top, now, now), -1);
	assert_int_equal(check(&r, 7, top + 50, now, now), 0);
	/* The window moved: its old bottom fell out, a seq never seen
	 * inside the new one is taken. */
	assert_int_equal(check(&r, 7, top - PROBE_REPLAY_WINDOW + 1, now, now),
	    -1);
	assert_int_equal(check(&r, 7, top + 100 - PROBE_REPLAY_WINDOW + 1, now,
	    now), 0);
	/* A seq on the ring slot of one seen before is new, not a dup. */
	assert_int_equal(check(&r, 7, top + PROBE_REPLAY_WINDOW, now, now), 0);
	assert_int_equal(check(&r, 7, top, now, now), -1);
	assert_int_equal(check(&r, 7, top + PROBE_REPLAY_WINDOW, now, now), -1);
}

static void
test_replay_jump(void **state)
{
	struct probe_replay	 r;
	uint64_t		 now = now_ns(), s;

	memset(&r, 0, sizeof(r));
	assert_int_equal(check(&r, 7, 1, now, now), 0);
	/* A jump of more than the window forgets everything behind it. */
	assert_int_equal(check(&r, 7, 1 + 5 * PROBE_REPLAY_WINDOW, now, now),
	    0);
	assert_int_equal(check(&r, 7, 1, now, now), -1);
	for (s = 2 + 4 * PROBE_REPLAY_WINDOW; s <= 5 * PROBE_REPLAY_WINDOW;
	    s += 97)
		assert_int_equal(check(&r, 7, s, now, now), 0);
	for (s = 2 + 4 * PROBE_REPLAY_WINDOW; s <= 5 * PROBE_REPLAY_WINDOW;
	    s += 97)
		assert_int_equal(check(&r, 7, s, now, now), -1);
	/* Sequence numbers up to the top of the range. */
	assert_int_equal(check(&r, 7, UINT64_MAX, now, now), 0);
	assert_int_equal(check(&r, 7, UINT64_MAX, now, now), -1);
	assert_int_equal(check(&r, 7, UINT64_MAX - 1, now, now), 0);
	/* A short step up to the very last seq. */
	memset(&r, 0, sizeof(r));
	assert_int_equal(check(&r, 7, UINT64_MAX - 5, now, now), 0);
	assert_int_equal(check(&r, 7, UINT64_MAX, now, now), 0);
	assert_int_equal(check(&r, 7, UINT64_MAX - 5, now, now), -1);
	assert_int_equal(check(&r, 7, UINT64_MAX - 3, now, now), 0);
}

static void
test_replay_timestamps(void **state)
{
	struct probe_replay	 r;
	uint64_t		 now = now_ns();

	memset(&r, 0, sizeof(r));
	/* Beyond the bound: a verdict of its own (clock skew). */
	assert_int_equal(check(&r, 7, 1, now + PROBE_MAX_SKEW_NS + 1, now),
	    PROBE_REPLAY_SKEW);
	assert_int_equal(check(&r, 7, 1, now - PROBE_MAX_SKEW_NS - 1, now),
	    PROBE_REPLAY_SKEW);
	assert_int_equal(check(&r, 7, 1, 0, now), PROBE_REPLAY_SKEW);
	assert_int_equal(check(&r, 7, 1, UINT64_MAX, now), PROBE_REPLAY_SKEW);
	assert_int_equal(r.valid, 0);
	assert_int_equal(check(&r, 7, 1, now + PROBE_MAX_SKEW_NS, now), 0);
	assert_int_equal(check(&r, 7, 2, now - PROBE_MAX_SKEW_NS, now), 0);
	/* A capture replayed later than the skew allows, with a new seq
	 * window position, is still refused for its age. */
	assert_int_equal(check(&r, 7, 3, now, now + PROBE_MAX_SKEW_NS + 1),
	    PROBE_REPLAY_SKEW);
	/* Near the start of the clock: no wrap-around. */
	memset(&r, 0, sizeof(r));
	assert_int_equal(check(&r, 7, 1, UINT64_MAX - 5, 10),
	    PROBE_REPLAY_SKEW);
	assert_int_equal(check(&r, 7, 1, 5, 10), 0);
}

static void
test_replay_sessions(void **state)
{
	struct probe_replay	 r;
	uint64_t		 now = now_ns();

	memset(&r, 0, sizeof(r));
	assert_int_equal(check(&r, 100, 1, now, now), 0);
	assert_int_equal(check(&r, 100, 2, now + 10, now), 0);
	/* A new session whose clock is behind: an old capture. */
	assert_int_equal(check(&r, 200, 1, now + 10, now), -1);
	assert_int_equal(check(&r, 200, 1, now - 1000, now), -1);
	assert_int_equal(r.session, 100);
	/* Newer: the peer restarted; it replaces the old session. */
	assert_int_equal(check(&r, 200, 1, now + 11, now), 0);
	assert_int_equal(r.session, 200);
	assert_int_equal(r.top, 1);
	assert_int_equal(check(&r, 200, 1, now + 12, now), -1);
	assert_int_equal(check(&r, 200, 2, now + 12, now), 0);
	/* The old session's packets are dead now... */
	assert_int_equal(check(&r, 100, 3, now + 5, now), -1);
	assert_int_equal(check(&r, 100, 1, now, now), -1);
	assert_int_equal(r.session, 200);
	/*
	 * Sessions alternating (two senders with the key): a session that
	 * comes back cannot bring back its own old packets.
	 */
	assert_int_equal(check(&r, 100, 10, now + 20, now), 0);
	assert_int_equal(r.session, 100);
	assert_int_equal(r.floor_tx_ns, now + 12);
	assert_int_equal(check(&r, 100, 1, now, now), -1);
	assert_int_equal(check(&r, 100, 2, now + 10, now), -1);
	assert_int_equal(check(&r, 100, 9, now + 13, now), 0);
	/* ...an out-of-order packet of the new one is not. */
	memset(&r, 0, sizeof(r));
	assert_int_equal(check(&r, 300, 5, now + 50, now), 0);
	assert_int_equal(check(&r, 300, 4, now + 40, now), 0);
	assert_int_equal(r.newest_tx_ns, now + 50);
}

/* ---- key derivation ------------------------------------------------------- */

static void
test_key_derive(void **state)
{
	uint8_t	 s1[64], s2[64], k1[PROBE_KEY_LEN], k2[PROBE_KEY_LEN];
	uint8_t	 k3[PROBE_KEY_LEN];
	size_t	 i;

	for (i = 0; i < sizeof(s1); i++) {
		s1[i] = (uint8_t)i;
		s2[i] = (uint8_t)i;
	}
	s2[63] ^= 1;
	probe_key_derive(s1, 32, "site-a", "site-b", k1);
	probe_key_derive(s1, 32, "site-a", "site-b", k2);
	assert_memory_equal(k1, k2, PROBE_KEY_LEN);
	/* Never the secret itself. */
	assert_memory_not_equal(k1, s1, PROBE_KEY_LEN);
	/* Every byte of the secret counts, and so does its length. */
	probe_key_derive(s1, 64, "site-a", "site-b", k2);
	probe_key_derive(s2, 64, "site-a", "site-b", k3);
	assert_memory_not_equal(k1, k2, PROBE_KEY_LEN);
	assert_memory_not_equal(k2, k3, PROBE_KEY_LEN);
	/* Lengths BLAKE2b takes no key of still give a key. */
	probe_key_derive(s1, 8, "site-a", "site-b", k2);
	probe_key_derive(s1, 9, "site-a", "site-b", k3);
	assert_memory_not_equal(k2, k3, PROBE_KEY_LEN);
	probe_key_derive(NULL, 0, "site-a", "site-b", k2);
	assert_memory_not_equal(k2, k3, PROBE_KEY_LEN);
}

/* Both gateways of a pair compute the same key, each with its own [site]
 * name first; a pair reusing the secret gets a key of its own. */
static void
test_key_derive_pair(void **state)
{
	uint8_t	 s[32], a[PROBE_KEY_LEN], b[PROBE_KEY_LEN];
	uint8_t	 other[PROBE_KEY_LEN];
	size_t	 i;

	for (i = 0; i < sizeof(s); i++)
		s[i] = (uint8_t)(0xa5 ^ i);
	probe_key_derive(s, sizeof(s), "site-a", "site-b", a);
	probe_key_derive(s, sizeof(s), "site-b", "site-a", b);
	assert_memory_equal(a, b, PROBE_KEY_LEN);

	probe_key_derive(s, sizeof(s), "site-a", "site-c", other);
	assert_memory_not_equal(a, other, PROBE_KEY_LEN);
	probe_key_derive(s, sizeof(s), "site-c", "site-b", other);
	assert_memory_not_equal(a, other, PROBE_KEY_LEN);
	/* Case counts: names are compared as bytes. */
	probe_key_derive(s, sizeof(s), "Site-a", "site-b", other);
	assert_memory_not_equal(a, other, PROBE_KEY_LEN);
	/* NULL is "", and "" is a name unlike any other. */
	probe_key_derive(s, sizeof(s), NULL, "site-b", a);
	probe_key_derive(s, sizeof(s), "", "site-b", b);
	assert_memory_equal(a, b, PROBE_KEY_LEN);
	probe_key_derive(s, sizeof(s), "site-b", "", other);
	assert_memory_equal(a, other, PROBE_KEY_LEN);
	probe_key_derive(s, sizeof(s), "site-b", "site-b", other);
	assert_memory_not_equal(a, other, PROBE_KEY_LEN);
}

/* Where one name ends and the next begins is part of the key. */
static void
test_key_derive_lengths(void **state)
{
	static const char *const pairs[][2] = {
		{ "ab", "c" }, { "a", "bc" }, { "", "abc" }, { "abc", "" },
		{ "a", "b" }, { "ab", "" },
	};
	uint8_t	 s[32], k[6][PROBE_KEY_LEN];
	size_t	 i, j;

	memset(s, 0x5a, sizeof(s));
	for (i = 0; i < 6; i++)
		probe_key_derive(s, sizeof(s), pairs[i][0], pairs[i][1], k[i]);
	/* "abc" + "" is "" + "abc" (the order does not count)... */
	assert_memory_equal(k[2], k[3], PROBE_KEY_LEN);
	/* ... but every other split is another pair. */
	for (i = 0; i < 6; i++)
		for (j = i + 1; j < 6; j++)
			if (!(i == 2 && j == 3))
				assert_memory_not_equal(k[i], k[j],
				    PROBE_KEY_LEN);
}

/* Pinned: the other gateway and probe-inject must agree, byte for byte;
 * BLAKE2b keyed with the secret over the domain, then each name (the
 * smaller first) after its length as 8 bytes big-endian. */
static void
test_key_derive_pinned(void **state)
{
	static const char	 domain[] = "grgw link probe key v2";
	static const uint8_t	 len_a[8] = { 0, 0, 0, 0, 0, 0, 0, 6 };
	static const uint8_t	 len_b[8] = { 0, 0, 0, 0, 0, 0, 0, 7 };
	crypto_generichash_state st;
	uint8_t			 s[32], got[PROBE_KEY_LEN];
	uint8_t			 want[PROBE_KEY_LEN];
	size_t			 i;

	for (i = 0; i < sizeof(s); i++)
		s[i] = (uint8_t)i;
	crypto_generichash_init(&st, s, sizeof(s), sizeof(want));
	crypto_generichash_update(&st, (const uint8_t *)domain,
	    sizeof(domain) - 1);
	crypto_generichash_update(&st, len_a, sizeof(len_a));
	crypto_generichash_update(&st, (const uint8_t *)"alpha1", 6);
	crypto_generichash_update(&st, len_b, sizeof(len_b));
	crypto_generichash_update(&st, (const uint8_t *)"bravo-2", 7);
	crypto_generichash_final(&st, want, sizeof(want));
	probe_key_derive(s, sizeof(s), "bravo-2", "alpha1", got);
	assert_memory_equal(got, want, PROBE_KEY_LEN);
	probe_key_derive(s, sizeof(s), "alpha1", "bravo-2", got);
	assert_memory_equal(got, want, PROBE_KEY_LEN);
}

/* ---- [probe] configuration ------------------------------------------------- */

/* A valid configuration; [probe] lines go after line 27. */
static const char BASE[] =
	"[site]\n"				/*  1 */
	"name = site-a\n"			/*  2 */
	"wan_interface = wan0\n"		/*  3 */
	"wan_address = 192.0.2.10\n"		/*  4 */
	"lan_interface = lan0\n"		/*  5 */
	"lan_address = 198.18.1.1\n"		/*  6 */
	"lan_address = 2001:db8:a::1\n"		/*  7 */
	"prefix = 198.18.1.0/24\n"		/*  8 */
	"prefix = 2001:db8:a::/64\n"		/*  9 */
	"\n"					/* 10 */
	"[peer]\n"				/* 11 */
	"name = site-b\n"			/* 12 */
	"address = 198.51.100.10\n"		/* 13 */
	"lan_address = 198.18.2.1\n"		/* 14 */
	"lan_address = 2001:db8:b::1\n"		/* 15 */
	"prefix = 198.18.2.0/24\n"		/* 16 */
	"prefix = 2001:db8:b::/64\n"		/* 17 */
	"\n"					/* 18 */
	"[auth]\n"				/* 19 */
	"%s\n"					/* 20 */
	"\n"					/* 21 */
	"[dataplane]\n"				/* 22 */
	"mode = auto\n"				/* 23 */
	"\n"					/* 24 */
	"[daemon]\n"				/* 25 */
	"log_level = info\n"			/* 26 */
	"[probe]\n"				/* 27 */
	"%s\n";					/* 28- */

#define PSK_LINE	"psk_file = /etc/grgw/psk"
#define CERT_LINES	"certificate = /etc/grgw/a.crt\n" \
			"private_key = /etc/grgw/a.key\n" \
			"ca = /etc/grgw/ca.crt"

static struct config_parser *
parse_probe(const char *auth, const char *probe, struct grgw_config *cfg,
    int *rc)
{
	struct config_parser	*p;
	char			*text;

	assert_true(asprintf(&text, BASE, auth, probe) != -1);
	p = config_text_parse(FN, text, cfg, rc);
	free(text);
	return p;
}

/* [probe] holding `line` is refused with exactly this one message start. */
static void
expect_probe_error_at(const char *auth, const char *line, const char *want,
    const char *file, int lineno)
{
	struct grgw_config	 cfg;
	struct config_parser	*p;
	int			 rc;

	p = parse_probe(auth, line, &cfg, &rc);
	if (rc != -1 || config_parse_error_count(p) != 1 ||
	    strncmp(config_parse_error(p, 0), want, strlen(want)) != 0) {
		fprintf(stderr, "for \"%s\" expected one error \"%s...\", "
		    "have:\n", line, want);
		dump_errors(p);
		config_parse_free(p);
		_fail(file, lineno);
	}
	config_parse_free(p);
}

#define expect_probe_error(line, want)					\
	expect_probe_error_at(PSK_LINE, (line), (want), __FILE__, __LINE__)

static void
test_config_defaults(void **state)
{
	struct grgw_config	 cfg;
	struct config_parser	*p;
	int			 rc;

	p = parse_probe(PSK_LINE, "", &cfg, &rc);
	if (rc != 0)
		dump_errors(p);
	assert_int_equal(rc, 0);
	config_parse_free(p);
	assert_int_equal(cfg.probe.interval_ms, GRGW_PROBE_INTERVAL_MS);
	assert_int_equal(cfg.probe.multiplier, GRGW_PROBE_MULTIPLIER);
	assert_int_equal(cfg.probe.recover, 3);
	assert_int_equal(cfg.probe.port, PROBE_PORT_DEFAULT);
	assert_string_equal(cfg.probe.key_file, "");
	assert_true(cfg.probe.degraded_loss > 0.0499 &&
	    cfg.probe.degraded_loss < 0.0501);
	assert_int_equal(cfg.probe.degraded_rtt_ms, 250);
	assert_int_equal(cfg.probe.refuse_hold_ms, 0);
}

static void
test_config_values(void **state)
{
	static const struct {
		const char	*text;
		double		 ratio;
	} pct[] = {
		{ "0", 0.0 }, { "5", 0.05 }, { "2.5", 0.025 },
		{ "0.25%", 0.0025 }, { "100", 1.0 }, { "100.000000", 1.0 },
		{ "99.999999", 0.99999999 }, { "0.000001", 0.00000001 },
		{ "12%", 0.12 },
	};
	struct grgw_config	 cfg;
	struct config_parser	*p;
	char			*line;
	size_t			 i;
	int			 rc;

	p = parse_probe(PSK_LINE, "interval_ms = 10\nmultiplier = 255\n"
	    "recover = 1\nport = 65535\nkey_file = /etc/grgw/probe.key\n"
	    "degraded_loss = 2.5\ndegraded_rtt_ms = 60000\n"
	    "refuse_hold_ms = 600000", &cfg, &rc);
	if (rc != 0)
		dump_errors(p);
	assert_int_equal(rc, 0);
	config_parse_free(p);
	assert_int_equal(cfg.probe.interval_ms, 10);
	assert_int_equal(cfg.probe.multiplier, 255);
	assert_int_equal(cfg.probe.recover, 1);
	assert_int_equal(cfg.probe.port, 65535);
	assert_string_equal(cfg.probe.key_file, "/etc/grgw/probe.key");
	assert_int_equal(cfg.probe.degraded_rtt_ms, 60000);
	assert_int_equal(cfg.probe.refuse_hold_ms, 600000);

	p = parse_probe(PSK_LINE, "interval_ms = 10000\nmultiplier = 2\n"
	    "recover = 255\nport = 1\ndegraded_rtt_ms = 1", &cfg, &rc);
	assert_int_equal(rc, 0);
	config_parse_free(p);
	assert_int_equal(cfg.probe.interval_ms, 10000);
	assert_int_equal(cfg.probe.recover, 255);
	assert_int_equal(cfg.probe.port, 1);

	for (i = 0; i < nitems(pct); i++) {
		assert_true(asprintf(&line, "degraded_loss = %s",
		    pct[i].text) != -1);
		p = parse_probe(PSK_LINE, line, &cfg, &rc);
		if (rc != 0)
			dump_errors(p);
		assert_int_equal(rc, 0);
		config_parse_free(p);
		if (cfg.probe.degraded_loss < pct[i].ratio - 1e-12 ||
		    cfg.probe.degraded_loss > pct[i].ratio + 1e-12)
			fail_msg("%s: %g, expected %g", pct[i].text,
			    cfg.probe.degraded_loss, pct[i].ratio);
		free(line);
	}
}

static void
test_config_errors(void **state)
{
	expect_probe_error("interval_ms = 9", FN ":28: interval_ms \"9\" is "
	    "out of range; expected an integer from 10 to 10000");
	expect_probe_error("interval_ms = 10001", FN ":28: interval_ms "
	    "\"10001\" is out of range");
	expect_probe_error("interval_ms = fast", FN ":28: interval_ms "
	    "\"fast\" is not a number");
	expect_probe_error("interval_ms = 100ms", FN ":28: interval_ms "
	    "\"100ms\" is not a number");
	expect_probe_error("interval_ms =", FN ":28: interval_ms has no "
	    "value");
	expect_probe_error("multiplier = 1", FN ":28: multiplier \"1\" is out "
	    "of range; expected an integer from 2 to 255");
	expect_probe_error("multiplier = 256", FN ":28: multiplier \"256\" is "
	    "out of range");
	expect_probe_error("recover = 0", FN ":28: recover \"0\" is out of "
	    "range; expected an integer from 1 to 255");
	expect_probe_error("recover = 256", FN ":28: recover \"256\" is out "
	    "of range");
	expect_probe_error("port = 0", FN ":28: port \"0\" is out of range; "
	    "expected a UDP port from 1 to 65535");
	expect_probe_error("port = 65536", FN ":28: port \"65536\" is out of "
	    "range");
	expect_probe_error("port = -1", FN ":28: port \"-1\" is not a number");
	expect_probe_error("key_file = probe.key", FN ":28: key_file "
	    "\"probe.key\" is not an absolute path; expected an absolute "
	    "path");
	expect_probe_error("key_file = /etc/grgw/probe key", FN ":28: "
	    "key_file \"/etc/grgw/probe key\" contains whitespace");
	expect_probe_error("degraded_rtt_ms = 0", FN ":28: degraded_rtt_ms "
	    "\"0\" is out of range; expected an integer from 1 to 60000");
	expect_probe_error("degraded_rtt_ms = 60001", FN ":28: "
	    "degraded_rtt_ms \"60001\" is out of range");
	expect_probe_error("refuse_hold_ms = 600001", FN ":28: "
	    "refuse_hold_ms \"600001\" is out of range; expected an integer "
	    "from 0 to 600000");
	expect_probe_error("refuse_hold_ms = -1", FN ":28: refuse_hold_ms ");
	expect_probe_error("interval_ms = 100\ninterval_ms = 200", FN ":29: "
	    "duplicate key interval_ms in [probe] (first set on line 28)");
	expect_probe_error("intervall_ms = 100", FN ":28: unknown key "
	    "\"intervall_ms\" in [probe]; expected one of: interval_ms, "
	    "multiplier, recover, port, key_file, degraded_loss, "
	    "degraded_rtt_ms");
	expect_probe_error("psk_file = /x", FN ":28: unknown key \"psk_file\" "
	    "in [probe] (it belongs in [auth])");
}

static void
test_config_percent_errors(void **state)
{
	static const struct {
		const char	*value;
		const char	*why;
	} bad[] = {
		{ "101", "is out of range" },
		{ "100.5", "is out of range" },
		{ "100.000001", "is out of range" },
		{ "1000", "is out of range" },
		{ "99999999999999999999", "is out of range" },
		{ "-1", "is not a percentage" },
		{ "+5", "is not a percentage" },
		{ "5.", "is not a percentage" },
		{ ".5", "is not a percentage" },
		{ "5%%", "is not a percentage" },
		{ "%", "is not a percentage" },
		{ "5 %", "is not a percentage" },
		{ "1e2", "is not a percentage" },
		{ "0x10", "is not a percentage" },
		{ "five", "is not a percentage" },
		{ "5,5", "is not a percentage" },
		{ "05", "is not a percentage (leading zero)" },
		{ "1.1234567", "has more than 6 decimals" },
		{ "nan", "is not a percentage" },
	};
	char	*line, *want;
	size_t	 i;

	for (i = 0; i < nitems(bad); i++) {
		assert_true(asprintf(&line, "degraded_loss = %s",
		    bad[i].value) != -1);
		assert_true(asprintf(&want, FN ":28: degraded_loss \"%s\" %s; "
		    "expected a percentage from 0 to 100 such as 5 or 2.5",
		    bad[i].value, bad[i].why) != -1);
		expect_probe_error(line, want);
		free(line);
		free(want);
	}
}

static void
test_config_cert_needs_key_file(void **state)
{
	struct grgw_config	 cfg;
	struct config_parser	*p;
	int			 rc;

	/* Line 20 is three lines here: [probe] is at 29, its key at 30. */
	expect_probe_error_at(CERT_LINES, "port = 4211", FN ":29: [probe] "
	    "key_file is missing; expected key_file = PATH of a key file "
	    "shared by both gateways", __FILE__, __LINE__);

	p = parse_probe(CERT_LINES, "key_file = /etc/grgw/probe.key", &cfg,
	    &rc);
	if (rc != 0)
		dump_errors(p);
	assert_int_equal(rc, 0);
	assert_int_equal(cfg.auth, GRGW_AUTH_CERT);
	assert_string_equal(cfg.probe.key_file, "/etc/grgw/probe.key");
	config_parse_free(p);

	/* Without a [probe] section the message points at [auth]. */
	p = config_parse_new(FN);
	assert_non_null(p);
	{
		char	*text, *s, *nl;

		assert_true(asprintf(&text, BASE, CERT_LINES, "") != -1);
		/* Cut the text before "[probe]". */
		*strstr(text, "[probe]") = '\0';
		for (s = text; *s != '\0'; s = nl + 1) {
			nl = strchr(s, '\n');
			assert_non_null(nl);
			config_parse_line(p, s, (size_t)(nl - s));
		}
		free(text);
	}
	assert_int_equal(config_parse_finish(p, &cfg), -1);
	assert_int_equal(config_parse_error_count(p), 1);
	assert_string_equal(config_parse_error(p, 0), FN ":19: [probe] "
	    "key_file is missing; expected key_file = PATH of a key file "
	    "shared by both gateways (grgw keygen makes one) when [auth] uses "
	    "certificates and [peer] probes = grgw");
	config_parse_free(p);
}

/* Write a file under tmpdir with the given mode; returns its path. */
static char *
write_file(const char *name, const char *text, mode_t mode)
{
	char	*path;
	int	 fd;

	assert_true(asprintf(&path, "%s/%s", tmpdir, name) != -1);
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd != -1);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
	return path;
}

#define KEY32	"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"

/* Files named by [probe] key_file pass the same checks as psk_file. */
static void
test_config_load_key_file(void **state)
{
	struct grgw_config	 cfg;
	char			*psk, *pkey, *conf, *auth, *line, *text;
	char			 errs[GRGW_CONFIG_ERR_MAX];

	psk = write_file("psk", KEY32, 0600);
	pkey = write_file("probe.key", KEY32, 0600);
	assert_true(asprintf(&auth, "psk_file = %s", psk) != -1);
	assert_true(asprintf(&line, "key_file = %s", pkey) != -1);
	assert_true(asprintf(&text, BASE, auth, line) != -1);
	conf = write_file("probe.conf", text, 0644);

	assert_int_equal(config_load(conf, &cfg, errs, sizeof(errs)), 0);
	assert_string_equal(cfg.probe.key_file, pkey);

	assert_int_equal(chmod(pkey, 0640), 0);
	assert_int_equal(config_load(conf, &cfg, errs, sizeof(errs)), -1);
	assert_true(errs[0] != '\0');
	assert_non_null(strstr(errs, ":28: key_file "));
	assert_non_null(strstr(errs, "readable by group or others (mode "
	    "0640)"));

	assert_int_equal(chmod(pkey, 0600), 0);
	assert_int_equal(unlink(pkey), 0);
	assert_int_equal(config_load(conf, &cfg, errs, sizeof(errs)), -1);
	assert_non_null(strstr(errs, ":28: key_file "));
	assert_non_null(strstr(errs, "probe.key does not exist; expected a "
	    "key file (grgw keygen >"));

	free(write_file("probe.key", "c2hvcnQ=\n", 0600));	/* 5 bytes */
	assert_int_equal(config_load(conf, &cfg, errs, sizeof(errs)), -1);
	assert_non_null(strstr(errs, ":28: key_file "));
	assert_non_null(strstr(errs, "decodes to 5 bytes"));
	assert_null(strstr(errs, "c2hvcnQ"));

	free(psk);
	free(pkey);
	free(conf);
	free(auth);
	free(line);
	free(text);
}

/* ---- engines on loopback -------------------------------------------------- */

#define LAN_A	"127.0.0.1"
#define WAN_A	"127.0.0.2"
#define LAN_B	"127.0.0.3"
#define WAN_B	"127.0.0.4"
#define STRANGER "127.0.0.9"

/* A port per test, so that one failing test cannot block the next. */
static uint16_t
test_port(unsigned int test)
{
	return (uint16_t)(20000 + (getpid() % 4000) * 10 + test);
}

static void
side(struct grgw_side *s, const char *name, const char *lan,
    const char *wan)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s", name);
	assert_int_equal(addr_parse(wan, &s->wan_address), 0);
	assert_int_equal(addr_parse(lan, &s->lan_addresses[0]), 0);
	s->n_lan_addresses = 1;
}

static void
make_config(struct grgw_config *cfg, int is_a)
{
	memset(cfg, 0, sizeof(*cfg));
	side(&cfg->site, is_a ? "site-a" : "site-b", is_a ? LAN_A : LAN_B,
	    is_a ? WAN_A : WAN_B);
	side(&cfg->peer, is_a ? "site-b" : "site-a", is_a ? LAN_B : LAN_A,
	    is_a ? WAN_B : WAN_A);
}

struct watch {
	struct probe_engine	*e;
	int			 up[PROBE_NPATHS];
	unsigned int		 changes[PROBE_NPATHS];
	uint64_t		 received_at_up[PROBE_NPATHS];
	uint64_t		 down_ms[PROBE_NPATHS];
};

static void
on_change(enum probe_path path, int up, void *arg)
{
	struct watch		*w = arg;
	struct path_stats	 st;

	assert_true(path < PROBE_NPATHS);
	assert_int_not_equal(w->up[path], up);	/* only real changes */
	w->up[path] = up;
	w->changes[path]++;
	/* The callback may look at the statistics. */
	probe_engine_stats(w->e, path, &st);
	assert_int_equal(st.up, up);
	if (up)
		w->received_at_up[path] = st.received;
	else
		w->down_ms[path] = mono_ms();
}

/* Run the loop until cond(arg) holds or max_ms passed; returns cond. */
struct run_ctx {
	struct event_base	*base;
	int			(*cond)(void *);
	void			*arg;
};

static void
run_check(evutil_socket_t fd, short ev, void *arg)
{
	struct run_ctx	*c = arg;

	if (c->cond != NULL && c->cond(c->arg))
		event_base_loopbreak(c->base);
}

static int
run_until(struct event_base *base, int (*cond)(void *), void *arg,
    unsigned int max_ms)
{
	struct run_ctx	 c = { base, cond, arg };
	struct timeval	 tick = { 0, 5000 };
	struct timeval	 max = { max_ms / 1000, (max_ms % 1000) * 1000 };
	struct event	*ev;

	ev = event_new(base, -1, EV_PERSIST, run_check, &c);
	assert_non_null(ev);
	event_add(ev, &tick);
	event_base_loopexit(base, &max);
	event_base_dispatch(base);
	event_free(ev);
	return cond != NULL ? cond(arg) : 1;
}

static int
all_up(void *arg)
{
	struct watch	*w = arg;

	return w[0].up[0] && w[0].up[1] && w[1].up[0] && w[1].up[1];
}

static int
all_down(void *arg)
{
	struct watch	*w = arg;

	return !w->up[0] && !w->up[1];
}

static void
check_sane(const struct path_stats *st, const char *what)
{
	if (!(st->up && st->ever_up && st->transitions >= 1 &&
	    st->sent >= 5 && st->received >= 3 && st->answered >= 3 &&
	    st->rtt_last_ms > 0 && st->rtt_last_ms < 1000 &&
	    st->rtt_smoothed_ms > 0 && st->rtt_smoothed_ms < 1000 &&
	    st->rtt_p50_ms > 0 && st->rtt_p50_ms <= st->rtt_p99_ms &&
	    st->rtt_p99_ms < 1000 && st->jitter_ms >= 0 &&
	    st->loss_ratio >= 0 && st->loss_ratio <= 0.5 &&
	    st->rejected_auth == 0 && st->rejected_replay == 0 &&
	    st->rejected_malformed == 0 && st->received <= st->sent))
		fail_msg("%s: up %d/%d transitions %llu sent %llu received "
		    "%llu answered %llu rtt %.3f/%.3f p50 %.3f p99 %.3f loss "
		    "%.3f rejected %llu/%llu/%llu", what, st->up, st->ever_up,
		    (unsigned long long)st->transitions,
		    (unsigned long long)st->sent,
		    (unsigned long long)st->received,
		    (unsigned long long)st->answered, st->rtt_last_ms,
		    st->rtt_smoothed_ms, st->rtt_p50_ms, st->rtt_p99_ms,
		    st->loss_ratio, (unsigned long long)st->rejected_auth,
		    (unsigned long long)st->rejected_replay,
		    (unsigned long long)st->rejected_malformed);
}

static void
test_engine_pair(void **state)
{
	struct event_base	*base;
	struct grgw_config	 ca, cb;
	/* 500 ms of silence before down: a loaded machine must not flap. */
	struct probe_settings	 s = { 50, 10, 3, test_port(1),
	    GRGW_PROBES_GRGW, { -1, -1 } };
	struct watch		 w[2];
	struct path_stats	 st;
	uint64_t		 t_free;
	int			 i, j;

	memset(w, 0, sizeof(w));
	make_config(&ca, 1);
	make_config(&cb, 0);
	assert_non_null(base = event_base_new());
	w[0].e = probe_engine_new(base, &ca, &s, key_a, on_change, &w[0]);
	w[1].e = probe_engine_new(base, &cb, &s, key_a, on_change, &w[1]);
	assert_non_null(w[0].e);
	assert_non_null(w[1].e);

	/* Nothing is sent before start, and everything starts down. */
	probe_engine_stats(w[0].e, PROBE_TUNNEL, &st);
	assert_int_equal(st.up, 0);
	assert_int_equal(st.ever_up, 0);
	assert_int_equal(st.sent, 0);

	assert_int_equal(probe_engine_start(w[0].e), 0);
	assert_int_equal(probe_engine_start(w[1].e), 0);
	assert_int_equal(probe_engine_start(w[1].e), 0);	/* once */
	assert_true(run_until(base, all_up, w, 5000));
	run_until(base, NULL, NULL, 400);	/* collect some samples */

	for (i = 0; i < 2; i++) {
		for (j = 0; j < PROBE_NPATHS; j++) {
			probe_engine_stats(w[i].e, (enum probe_path)j, &st);
			check_sane(&st, j == PROBE_TUNNEL ? "tunnel" :
			    "underlay");
			assert_true(w[i].changes[j] % 2 == 1);
			/* Up only after `recover` replies. */
			assert_true(w[i].received_at_up[j] >= s.recover);
		}
	}
	probe_engine_stats(w[0].e, PROBE_NPATHS, &st);
	assert_int_equal(st.sent, 0);

	/* The other side goes away: both paths go down. */
	probe_engine_free(w[1].e);
	t_free = mono_ms();
	assert_true(run_until(base, all_down, &w[0], 10000));
	for (j = 0; j < PROBE_NPATHS; j++) {
		assert_true(w[0].changes[j] % 2 == 0);
		/* multiplier * interval = 500 ms; a generous slack. */
		if (w[0].down_ms[j] - t_free > 500 + 3000)
			fail_msg("path %d went down %llu ms after the peer "
			    "stopped", j, (unsigned long long)(w[0].down_ms[j] -
			    t_free));
		probe_engine_stats(w[0].e, (enum probe_path)j, &st);
		assert_int_equal(st.up, 0);
		assert_int_equal(st.ever_up, 1);
		assert_int_equal(st.transitions, w[0].changes[j]);
	}
	probe_engine_free(w[0].e);
	probe_engine_free(NULL);
	event_base_free(base);
}

static void
expect_rotation_step(struct event_base *base, struct watch *w,
    const uint64_t before[2][PROBE_NPATHS], const char *step)
{
	struct path_stats	 st;
	int			 i, j;

	/* Longer than the detection time, so a refused key would show. */
	run_until(base, NULL, NULL, 1500);
	for (i = 0; i < 2; i++) {
		for (j = 0; j < PROBE_NPATHS; j++) {
			probe_engine_stats(w[i].e, (enum probe_path)j, &st);
			if (!st.up || st.rejected_auth != 0 ||
			    w[i].changes[j] != 1 ||
			    st.received + st.answered < before[i][j] + 5)
				fail_msg("%s: engine %d path %d up %d, %llu "
				    "refused, %u changes, %llu packets (%llu "
				    "before)", step, i, j, st.up,
				    (unsigned long long)st.rejected_auth,
				    w[i].changes[j], (unsigned long long)
				    (st.received + st.answered),
				    (unsigned long long)before[i][j]);
		}
	}
}

static void
count_packets(struct watch *w, uint64_t out[2][PROBE_NPATHS])
{
	struct path_stats	 st;
	int			 i, j;

	for (i = 0; i < 2; i++)
		for (j = 0; j < PROBE_NPATHS; j++) {
			probe_engine_stats(w[i].e, (enum probe_path)j, &st);
			out[i][j] = st.received + st.answered;
		}
}

/*
 * The three steps of a key rotation, one engine after the other, with
 * the link up all along: both accept the next key; A, then B, sends with
 * it and accepts the old one; both drop the old one.  Then a switch
 * without overlap: the other side refuses the probes and the link goes.
 */
static void
test_engine_rotation(void **state)
{
	struct event_base	*base;
	struct grgw_config	 ca, cb;
	/* A second of silence before down. */
	struct probe_settings	 s = { 50, 20, 3, test_port(8),
	    GRGW_PROBES_GRGW, { -1, -1 } };
	uint8_t			 key_c[PROBE_KEY_LEN];
	uint64_t		 before[2][PROBE_NPATHS];
	struct path_stats	 st;
	struct watch		 w[2];
	int			 j;

	memset(key_c, 0xcc, sizeof(key_c));
	memset(w, 0, sizeof(w));
	make_config(&ca, 1);
	make_config(&cb, 0);
	assert_non_null(base = event_base_new());
	assert_non_null(w[0].e = probe_engine_new(base, &ca, &s, key_a,
	    on_change, &w[0]));
	assert_non_null(w[1].e = probe_engine_new(base, &cb, &s, key_a,
	    on_change, &w[1]));
	assert_int_equal(probe_engine_start(w[0].e), 0);
	assert_int_equal(probe_engine_start(w[1].e), 0);
	assert_true(run_until(base, all_up, w, 10000));

	/* 1: the next key, at A then at B. */
	count_packets(w, before);
	assert_int_equal(probe_engine_set_keys(w[0].e, key_a, key_b), 0);
	assert_int_equal(probe_engine_set_keys(w[1].e, key_a, key_b), 0);
	expect_rotation_step(base, w, before, "next key added");
	/* 2: A sends with the new key and accepts the old one ... */
	count_packets(w, before);
	assert_int_equal(probe_engine_set_keys(w[0].e, key_b, key_a), 0);
	expect_rotation_step(base, w, before, "A switched");
	/* ... then B. */
	count_packets(w, before);
	assert_int_equal(probe_engine_set_keys(w[1].e, key_b, key_a), 0);
	expect_rotation_step(base, w, before, "B switched");
	/* 3: the old key goes. */
	count_packets(w, before);
	assert_int_equal(probe_engine_set_keys(w[0].e, key_b, NULL), 0);
	assert_int_equal(probe_engine_set_keys(w[1].e, key_b, NULL), 0);
	expect_rotation_step(base, w, before, "old key dropped");

	/* A key B does not know, without overlap: B refuses, both go down. */
	assert_int_equal(probe_engine_set_keys(w[0].e, key_c, NULL), 0);
	assert_true(run_until(base, all_down, &w[1], 15000));
	for (j = 0; j < PROBE_NPATHS; j++) {
		probe_engine_stats(w[1].e, (enum probe_path)j, &st);
		assert_true(st.rejected_auth > 0);
	}
	assert_int_equal(probe_engine_set_keys(NULL, key_a, NULL), -1);
	assert_int_equal(probe_engine_set_keys(w[0].e, NULL, NULL), -1);
	probe_engine_free(w[0].e);
	probe_engine_free(w[1].e);
	event_base_free(base);
}

/* A UDP socket of the test's own, bound to addr:port. */
static int
test_socket(const char *addr, uint16_t port, int reuse)
{
	struct sockaddr_in	 sin;
	int			 fd, on = 1;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	assert_true(fd != -1);
	if (reuse)
		assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on,
		    sizeof(on)), 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	assert_int_equal(inet_pton(AF_INET, addr, &sin.sin_addr), 1);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1)
		fail_msg("bind %s:%u: %s", addr, port, strerror(errno));
	return fd;
}

static void
send_to(int fd, const char *addr, uint16_t port, const void *buf,
    size_t len)
{
	struct sockaddr_in	 sin;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	assert_int_equal(inet_pton(AF_INET, addr, &sin.sin_addr), 1);
	assert_int_equal(sendto(fd, buf, len, 0, (struct sockaddr *)&sin,
	    sizeof(sin)), (ssize_t)len);
}

/*
 * Wait for one datagram on fd (IP_RECVTOS set) and say where it came from
 * and with which TOS byte it arrived.
 */
static void
take_with_tos(struct event_base *base, int fd, struct sockaddr_in *from,
    int *tos)
{
	uint8_t			 buf[256];
	union {
		struct cmsghdr	 h;
		uint8_t		 b[CMSG_SPACE(sizeof(int)) * 2];
	}			 ctl;
	struct iovec		 iov = { buf, sizeof(buf) };
	struct msghdr		 msg;
	struct cmsghdr		*c;
	int			 tries;

	*tos = -1;
	for (tries = 0; tries < 100; tries++) {
		memset(&msg, 0, sizeof(msg));
		msg.msg_name = from;
		msg.msg_namelen = sizeof(*from);
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		msg.msg_control = ctl.b;
		msg.msg_controllen = sizeof(ctl.b);
		if (recvmsg(fd, &msg, 0) > 0)
			break;
		run_until(base, NULL, NULL, 10);
	}
	for (c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c))
		if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TOS)
			*tos = *(uint8_t *)CMSG_DATA(c);
}

/*
 * Let the engine work until a datagram of the wanted type (a probe reply,
 * or anything) waits on fd, for at most 5 s; take it.
 */
static int
take_packet(struct event_base *base, int fd, int want_reply, uint8_t *buf,
    size_t size, size_t *len)
{
	ssize_t		 n;
	unsigned int	 waited;

	for (waited = 0; waited < 5000; waited += 10) {
		while ((n = recv(fd, buf, size, 0)) > 0) {
			*len = (size_t)n;
			if (!want_reply ||
			    (n == WIRE && buf[5] == PROBE_REPLY))
				return 1;
		}
		run_until(base, NULL, NULL, 10);
	}
	return 0;
}

/* Run until a path's counters reach at least these, for at most 5 s. */
struct counts {
	struct probe_engine	*e;
	enum probe_path		 path;
	uint64_t		 auth, replay, malformed, answered;
};

static int
counts_reached(void *arg)
{
	struct counts		*c = arg;
	struct path_stats	 st;

	probe_engine_stats(c->e, c->path, &st);
	return st.rejected_auth >= c->auth &&
	    st.rejected_replay >= c->replay &&
	    st.rejected_malformed >= c->malformed &&
	    st.answered >= c->answered;
}

static void
wait_counts(struct event_base *base, struct probe_engine *e,
    enum probe_path path, uint64_t auth, uint64_t replay, uint64_t malformed,
    uint64_t answered)
{
	struct counts		 c = { e, path, auth, replay, malformed,
				    answered };
	struct path_stats	 st;

	run_until(base, counts_reached, &c, 5000);
	probe_engine_stats(e, path, &st);
	if (st.rejected_auth != auth || st.rejected_replay != replay ||
	    st.rejected_malformed != malformed || st.answered != answered)
		fail_msg("path %d: auth %llu replay %llu malformed %llu "
		    "answered %llu; expected %llu %llu %llu %llu", path,
		    (unsigned long long)st.rejected_auth,
		    (unsigned long long)st.rejected_replay,
		    (unsigned long long)st.rejected_malformed,
		    (unsigned long long)st.answered,
		    (unsigned long long)auth, (unsigned long long)replay,
		    (unsigned long long)malformed,
		    (unsigned long long)answered);
}

static void
encode_req(uint8_t *buf, const uint8_t *key, enum probe_path path,
    uint64_t session, uint64_t seq)
{
	struct probe_pkt	 p = request(session, seq, now_ns());

	p.path = (uint8_t)path;
	assert_int_equal(probe_encode(&p, key, buf, WIRE), WIRE);
}

/* What an engine refuses, by class, and what it answers. */
static void
test_engine_refuses(void **state)
{
	struct event_base	*base;
	struct grgw_config	 ca;
	struct probe_settings	 s = { 50, 3, 3, test_port(2),
	    GRGW_PROBES_GRGW, { -1, -1 } };
	struct watch		 w;
	struct path_stats	 u;
	struct probe_pkt	 rep;
	uint8_t			 pkt[WIRE], in[2048], big[1000];
	size_t			 len = 0;
	uint16_t		 port = s.port;
	struct sockaddr_in	 from;
	char			 addr[INET_ADDRSTRLEN];
	int			 peer_wan, peer_lan, stranger, tos, on = 1;

	memset(&w, 0, sizeof(w));
	make_config(&ca, 1);
	assert_non_null(base = event_base_new());
	peer_wan = test_socket(WAN_B, port, 1);
	peer_lan = test_socket(LAN_B, port, 1);
	stranger = test_socket(STRANGER, port + 1, 1);
	assert_non_null(w.e = probe_engine_new(base, &ca, &s, key_a,
	    on_change, &w));
	assert_int_equal(probe_engine_start(w.e), 0);

	/* A's requests reach the peer's addresses from A's, marked CS2... */
	assert_int_equal(setsockopt(peer_wan, IPPROTO_IP, IP_RECVTOS, &on,
	    sizeof(on)), 0);
	take_with_tos(base, peer_wan, &from, &tos);
	assert_int_equal(tos, 0x40);
	assert_string_equal(inet_ntop(AF_INET, &from.sin_addr, addr,
	    sizeof(addr)), WAN_A);
	assert_int_equal(ntohs(from.sin_port), port);
	assert_true(take_packet(base, peer_wan, 0, in, sizeof(in), &len));
	assert_int_equal(len, WIRE);
	assert_int_equal(probe_decode(in, len, key_a, &rep), PROBE_OK);
	assert_int_equal(rep.type, PROBE_REQUEST);
	assert_int_equal(rep.path, PROBE_UNDERLAY);
	assert_true(take_packet(base, peer_lan, 0, in, sizeof(in), &len));
	assert_int_equal(probe_decode(in, len, key_a, &rep), PROBE_OK);
	assert_int_equal(rep.path, PROBE_TUNNEL);

	/* ...and one sent back to A is refused: A's own session. */
	send_to(peer_lan, LAN_A, port, in, len);
	/* Garbage, a wrong key, the other path's packet, oversize. */
	send_to(peer_wan, WAN_A, port, "x", 1);
	send_to(peer_wan, WAN_A, port, in, WIRE - 1);
	encode_req(pkt, key_b, PROBE_UNDERLAY, 5, 1);
	send_to(peer_wan, WAN_A, port, pkt, WIRE);
	encode_req(pkt, key_a, PROBE_TUNNEL, 5, 1);
	send_to(peer_wan, WAN_A, port, pkt, WIRE);
	memset(big, 0, sizeof(big));
	memcpy(big, pkt, WIRE);
	send_to(peer_wan, WAN_A, port, big, sizeof(big));
	wait_counts(base, w.e, PROBE_TUNNEL, 0, 1, 0, 0);
	wait_counts(base, w.e, PROBE_UNDERLAY, 1, 0, 4, 0);
	probe_engine_stats(w.e, PROBE_UNDERLAY, &u);
	assert_int_equal(u.received, 0);

	/* A valid request from the peer is answered with its seq echoed;
	 * the same packet again is a replay. */
	encode_req(pkt, key_a, PROBE_UNDERLAY, 5, 1);
	send_to(peer_wan, WAN_A, port, pkt, WIRE);
	assert_true(take_packet(base, peer_wan, 1, in, sizeof(in), &len));
	assert_int_equal(probe_decode(in, len, key_a, &rep), PROBE_OK);
	assert_int_equal(rep.type, PROBE_REPLY);
	assert_int_equal(rep.echo_seq, 1);
	send_to(peer_wan, WAN_A, port, pkt, WIRE);
	wait_counts(base, w.e, PROBE_UNDERLAY, 1, 1, 4, 1);

	/* Underlay: any source (NAT), answered where it came from. */
	encode_req(pkt, key_a, PROBE_UNDERLAY, 5, 2);
	send_to(stranger, WAN_A, port, pkt, WIRE);
	assert_true(take_packet(base, stranger, 1, in, sizeof(in), &len));
	assert_int_equal(probe_decode(in, len, key_a, &rep), PROBE_OK);
	assert_int_equal(rep.type, PROBE_REPLY);
	assert_int_equal(rep.echo_seq, 2);
	/* Tunnel: only from the peer's LAN address. */
	encode_req(pkt, key_a, PROBE_TUNNEL, 5, 1);
	send_to(stranger, LAN_A, port, pkt, WIRE);
	wait_counts(base, w.e, PROBE_TUNNEL, 1, 1, 0, 0);
	send_to(peer_lan, LAN_A, port, pkt, WIRE);
	wait_counts(base, w.e, PROBE_TUNNEL, 1, 1, 0, 1);
	probe_engine_stats(w.e, PROBE_UNDERLAY, &u);
	assert_int_equal(u.answered, 2);

	/* Requests alone never bring a path up: only replies do. */
	assert_int_equal(w.up[PROBE_TUNNEL], 0);
	assert_int_equal(w.up[PROBE_UNDERLAY], 0);

	probe_engine_free(w.e);
	close(peer_wan);
	close(peer_lan);
	close(stranger);
	event_base_free(base);
}

/*
 * A scripted peer on B's addresses that answers A's requests as told:
 * drop some, hold one back to answer out of order.
 */
struct fake_peer {
	int		 fd[PROBE_NPATHS];
	struct event	*ev[PROBE_NPATHS];
	uint64_t	 session, seq;
	int		 drop_even;	/* leave even request seqs unanswered */
	uint64_t	 hold_seq;	/* answer this one after the next */
	uint8_t		 held[WIRE];
	int		 have_held;
	int		 silent;
	int64_t		 skew_ns;	/* its clock minus ours */
	struct sockaddr_in held_to;
	unsigned int	 requests;
};

static void
fake_peer_read(evutil_socket_t fd, short ev, void *arg)
{
	struct fake_peer	*f = arg;
	struct sockaddr_in	 from;
	socklen_t		 flen = sizeof(from);
	struct probe_pkt	 req, rep;
	uint8_t			 buf[256], out[WIRE];
	ssize_t			 n;

	while ((n = recvfrom(fd, buf, sizeof(buf), 0,
	    (struct sockaddr *)&from, &flen)) > 0) {
		flen = sizeof(from);
		if (probe_decode(buf, (size_t)n, key_a, &req) != PROBE_OK ||
		    req.type != PROBE_REQUEST)
			continue;
		f->requests++;
		if (f->silent || (f->drop_even && req.seq % 2 == 0))
			continue;
		memset(&rep, 0, sizeof(rep));
		rep.type = PROBE_REPLY;
		rep.path = req.path;
		rep.session = f->session;
		rep.seq = ++f->seq;
		rep.tx_ns = now_ns() + (uint64_t)f->skew_ns;
		rep.echo_seq = req.seq;
		rep.echo_tx_ns = req.tx_ns;
		assert_int_equal(probe_encode(&rep, key_a, out, WIRE), WIRE);
		if (req.path == PROBE_UNDERLAY && req.seq == f->hold_seq) {
			memcpy(f->held, out, WIRE);
			f->held_to = from;
			f->have_held = 1;
			continue;
		}
		sendto(fd, out, WIRE, 0, (struct sockaddr *)&from,
		    sizeof(from));
		if (f->have_held && req.path == PROBE_UNDERLAY &&
		    req.seq > f->hold_seq) {
			sendto(fd, f->held, WIRE, 0,
			    (struct sockaddr *)&f->held_to,
			    sizeof(f->held_to));
			f->have_held = 0;
		}
	}
}

static void
fake_peer_start(struct fake_peer *f, struct event_base *base, uint16_t port)
{
	int	 i;

	f->session = 0xfeedULL;
	f->fd[PROBE_TUNNEL] = test_socket(LAN_B, port, 1);
	f->fd[PROBE_UNDERLAY] = test_socket(WAN_B, port, 1);
	for (i = 0; i < PROBE_NPATHS; i++) {
		f->ev[i] = event_new(base, f->fd[i], EV_READ | EV_PERSIST,
		    fake_peer_read, f);
		assert_non_null(f->ev[i]);
		event_add(f->ev[i], NULL);
	}
}

static void
fake_peer_stop(struct fake_peer *f)
{
	int	 i;

	for (i = 0; i < PROBE_NPATHS; i++) {
		event_free(f->ev[i]);
		close(f->fd[i]);
	}
}

static int
underlay_up(void *arg)
{
	return ((struct watch *)arg)->up[PROBE_UNDERLAY];
}

static int
skew_seen(void *arg)
{
	struct path_stats	 st;

	probe_engine_stats(arg, PROBE_UNDERLAY, &st);
	return st.rejected_skew >= 3;
}

/*
 * A peer whose clock is a minute behind: its authentic answers are
 * refused as a clock skew, counted apart, and the skew is said.
 */
static void
test_engine_clock_skew(void **state)
{
	struct event_base	*base;
	struct grgw_config	 ca;
	struct probe_settings	 s = { 20, 3, 3, test_port(7),
	    GRGW_PROBES_GRGW, { -1, -1 } };
	struct fake_peer	 f;
	struct watch		 w;
	struct path_stats	 st;

	memset(&w, 0, sizeof(w));
	memset(&f, 0, sizeof(f));
	make_config(&ca, 1);
	assert_non_null(base = event_base_new());
	f.skew_ns = -60LL * (int64_t)NS_PER_S;
	fake_peer_start(&f, base, s.port);
	assert_non_null(w.e = probe_engine_new(base, &ca, &s, key_a,
	    on_change, &w));
	assert_int_equal(probe_engine_start(w.e), 0);
	run_until(base, skew_seen, w.e, 5000);
	probe_engine_stats(w.e, PROBE_UNDERLAY, &st);
	assert_true(st.rejected_skew >= 3);
	assert_int_equal(st.rejected_replay, 0);
	assert_int_equal(st.received, 0);
	assert_int_equal(st.up, 0);
	assert_int_equal(st.skew_recent, 1);
	assert_true(st.clock_skew_ms < -59000 && st.clock_skew_ms > -61000);
	probe_engine_free(w.e);
	fake_peer_stop(&f);
	event_base_free(base);
}

/* Loss, reordering, hysteresis and the down verdict, against a script. */
static void
test_engine_statistics(void **state)
{
	struct event_base	*base;
	struct grgw_config	 ca;
	struct probe_settings	 s = { 20, 3, 5, test_port(3),
	    GRGW_PROBES_GRGW, { -1, -1 } };
	struct fake_peer	 f;
	struct watch		 w;
	struct path_stats	 st;
	uint64_t		 rx_back;

	memset(&w, 0, sizeof(w));
	memset(&f, 0, sizeof(f));
	make_config(&ca, 1);
	assert_non_null(base = event_base_new());
	fake_peer_start(&f, base, s.port);
	f.drop_even = 1;
	f.hold_seq = 3;
	assert_non_null(w.e = probe_engine_new(base, &ca, &s, key_a,
	    on_change, &w));
	assert_int_equal(probe_engine_start(w.e), 0);

	/* Half the requests unanswered: lost once a second has passed
	 * (the floor of the loss timeout), and never up with recover = 5
	 * while every other request goes missing... */
	run_until(base, NULL, NULL, 1600);
	probe_engine_stats(w.e, PROBE_UNDERLAY, &st);
	assert_true(st.sent >= 20);
	assert_true(st.received >= 10);
	if (!(st.loss_ratio > 0.3 && st.loss_ratio < 0.7))
		fail_msg("loss %.3f sent %llu received %llu", st.loss_ratio,
		    (unsigned long long)st.sent,
		    (unsigned long long)st.received);
	assert_int_equal(st.reordered, 1);	/* seq 3 after seq 5 */
	assert_true(st.rtt_p50_ms > 0 && st.rtt_p50_ms <= st.rtt_p99_ms);
	assert_true(st.received <= st.sent);
	/* ...though the first replies (1, 3, 5, ... before any loss was
	 * decided) may have made a run: recover counts replies in a row. */
	if (w.up[PROBE_UNDERLAY])
		assert_true(w.received_at_up[PROBE_UNDERLAY] >= 5);

	/* Every request answered: up, and loss falls as the window moves. */
	f.drop_even = 0;
	assert_true(run_until(base, underlay_up, &w, 5000));
	probe_engine_stats(w.e, PROBE_UNDERLAY, &st);
	assert_int_equal(st.up, 1);

	/* The peer goes silent: down after 3 intervals of silence. */
	f.silent = 1;
	assert_true(run_until(base, all_down, &w, 5000));
	probe_engine_stats(w.e, PROBE_UNDERLAY, &st);
	assert_int_equal(st.up, 0);
	assert_int_equal(st.ever_up, 1);
	assert_int_equal(st.rejected_auth + st.rejected_replay +
	    st.rejected_malformed, 0);

	/* And back, after an outage longer than the loss timeout: up again
	 * on the `recover`th reply since the peer came back.  The requests
	 * it left unanswered are decided lost a second after they left,
	 * some of them during the new run, and they are not in it: they do
	 * not end it (they used to, and held the path down for that second
	 * more). */
	run_until(base, NULL, NULL, 1500);
	probe_engine_stats(w.e, PROBE_UNDERLAY, &st);
	assert_int_equal(st.up, 0);
	rx_back = st.received;
	f.silent = 0;
	assert_true(run_until(base, underlay_up, &w, 5000));
	assert_int_equal(w.received_at_up[PROBE_UNDERLAY] - rx_back,
	    s.recover);

	probe_engine_free(w.e);
	fake_peer_stop(&f);
	event_base_free(base);
}

static int
both_up(void *arg)
{
	struct watch	*w = arg;

	return w->up[PROBE_TUNNEL] && w->up[PROBE_UNDERLAY];
}

struct peer_count {
	struct fake_peer	*f;
	unsigned int		 until;
};

static int
peer_heard(void *arg)
{
	struct peer_count	*c = arg;

	return c->f->requests >= c->until;
}

/*
 * An engine with s against a fake peer, both paths up; engine_down()
 * ends what it started.
 */
static struct event_base *
engine_up(struct grgw_config *ca, const struct probe_settings *s,
    struct fake_peer *f, struct watch *w)
{
	struct event_base	*base;

	memset(w, 0, sizeof(*w));
	memset(f, 0, sizeof(*f));
	make_config(ca, 1);
	assert_non_null(base = event_base_new());
	fake_peer_start(f, base, s->port);
	assert_non_null(w->e = probe_engine_new(base, ca, s, key_a,
	    on_change, w));
	assert_int_equal(probe_engine_start(w->e), 0);
	assert_true(run_until(base, both_up, w, 5000));
	return base;
}

static void
engine_down(struct event_base *base, struct fake_peer *f, struct watch *w)
{
	probe_engine_free(w->e);
	fake_peer_stop(f);
	event_base_free(base);
}

/*
 * A new SA (probe_engine_fresh()): the requests lost before it are not
 * this SA's, and leave the path's figures.  The other path, not told,
 * keeps them: it shows that they were lost.
 */
static void
test_engine_fresh(void **state)
{
	struct event_base	*base;
	struct grgw_config	 ca;
	struct probe_settings	 s = { 20, 10, 3, test_port(9),
	    GRGW_PROBES_GRGW, { -1, -1 } };
	struct fake_peer	 f;
	struct watch		 w;
	struct path_stats	 st;
	struct peer_count	 c;

	base = engine_up(&ca, &s, &f, &w);

	/* A few requests of each path go unanswered (the old SA dies)... */
	f.silent = 1;
	c.f = &f;
	c.until = f.requests + 6;
	assert_true(run_until(base, peer_heard, &c, 5000));
	f.silent = 0;
	/* ...and a new SA carries the underlay path from now on. */
	probe_engine_fresh(w.e, PROBE_UNDERLAY);
	/* Every request decided (the loss timeout is a second). */
	run_until(base, NULL, NULL, 1400);

	probe_engine_stats(w.e, PROBE_TUNNEL, &st);
	if (!(st.up && st.loss_ratio > 0))
		fail_msg("tunnel: up %d loss %.3f: the requests were not lost",
		    st.up, st.loss_ratio);
	probe_engine_stats(w.e, PROBE_UNDERLAY, &st);
	assert_int_equal(st.up, 1);
	if (st.loss_ratio != 0)
		fail_msg("underlay: loss %.3f after a new SA; the requests "
		    "lost before it still count", st.loss_ratio);
	engine_down(base, &f, &w);
}

/* A path paused sends no request, the other goes on; unpaused, it does. */
static void
test_engine_pause(void **state)
{
	struct event_base	*base;
	struct grgw_config	 ca;
	struct probe_settings	 s = { 20, 10, 3, test_port(6),
	    GRGW_PROBES_GRGW, { -1, -1 } };
	struct fake_peer	 f;
	struct watch		 w;
	struct path_stats	 t0, t1, u0, u1;

	base = engine_up(&ca, &s, &f, &w);

	probe_engine_pause(w.e, PROBE_TUNNEL, 1);
	probe_engine_stats(w.e, PROBE_TUNNEL, &t0);
	probe_engine_stats(w.e, PROBE_UNDERLAY, &u0);
	run_until(base, NULL, NULL, 200);	/* 10 intervals */
	probe_engine_stats(w.e, PROBE_TUNNEL, &t1);
	probe_engine_stats(w.e, PROBE_UNDERLAY, &u1);
	assert_int_equal(t1.sent, t0.sent);
	assert_true(u1.sent >= u0.sent + 5);

	probe_engine_pause(w.e, PROBE_TUNNEL, 0);
	run_until(base, NULL, NULL, 100);
	probe_engine_stats(w.e, PROBE_TUNNEL, &t1);
	assert_true(t1.sent >= t0.sent + 3);
	engine_down(base, &f, &w);
}

static int
underlay_sent(void *arg)
{
	struct path_stats	 st;

	probe_engine_stats(arg, PROBE_UNDERLAY, &st);
	return st.sent > 0;
}

/* An address that cannot be bound yet: retried every second. */
static void
test_engine_bind_retry(void **state)
{
	struct event_base	*base;
	struct grgw_config	 ca;
	struct probe_settings	 s = { 50, 3, 3, test_port(4),
	    GRGW_PROBES_GRGW, { -1, -1 } };
	struct watch		 w;
	struct path_stats	 st;
	int			 blocker;

	memset(&w, 0, sizeof(w));
	make_config(&ca, 1);
	assert_non_null(base = event_base_new());
	/* Held without SO_REUSEADDR, so the engine's bind fails. */
	blocker = test_socket(WAN_A, s.port, 0);
	assert_non_null(w.e = probe_engine_new(base, &ca, &s, key_a,
	    on_change, &w));
	assert_int_equal(probe_engine_start(w.e), 0);
	run_until(base, NULL, NULL, 200);
	probe_engine_stats(w.e, PROBE_UNDERLAY, &st);
	assert_int_equal(st.sent, 0);
	assert_int_equal(st.up, 0);
	probe_engine_stats(w.e, PROBE_TUNNEL, &st);
	assert_true(st.sent > 0);

	close(blocker);
	assert_true(run_until(base, underlay_sent, w.e, 5000));

	probe_engine_free(w.e);
	event_base_free(base);
}

static void
test_engine_api_edges(void **state)
{
	struct event_base	*base;
	struct grgw_config	 ca;
	struct probe_settings	 s = { 50, 3, 3, test_port(5),
	    GRGW_PROBES_GRGW, { -1, -1 } }, bad;
	struct path_stats	 st;
	struct probe_engine	*e;

	make_config(&ca, 1);
	assert_non_null(base = event_base_new());
	assert_null(probe_engine_new(NULL, &ca, &s, key_a, NULL, NULL));
	assert_null(probe_engine_new(base, NULL, &s, key_a, NULL, NULL));
	assert_null(probe_engine_new(base, &ca, NULL, key_a, NULL, NULL));
	assert_null(probe_engine_new(base, &ca, &s, NULL, NULL, NULL));
	bad = s;
	bad.interval_ms = 0;
	assert_null(probe_engine_new(base, &ca, &bad, key_a, NULL, NULL));
	bad = s;
	bad.port = 0;
	assert_null(probe_engine_new(base, &ca, &bad, key_a, NULL, NULL));
	assert_int_equal(probe_engine_start(NULL), -1);
	probe_engine_stats(NULL, PROBE_TUNNEL, &st);
	assert_int_equal(st.sent, 0);

	/* No LAN address of a common family: the tunnel path stays down,
	 * the underlay works; no callback needed. */
	assert_int_equal(addr_parse("2001:db8:b::1", &ca.peer.lan_addresses[0]),
	    0);
	assert_non_null(e = probe_engine_new(base, &ca, &s, key_a, NULL,
	    NULL));
	assert_int_equal(probe_engine_start(e), 0);
	assert_true(run_until(base, underlay_sent, e, 5000));
	probe_engine_stats(e, PROBE_TUNNEL, &st);
	assert_int_equal(st.sent, 0);
	probe_engine_free(e);
	event_base_free(base);
}

/* ---- setup ---------------------------------------------------------------- */

static int
setup(void **state)
{
	const char	*base = getenv("TMPDIR");
	size_t		 i;

	snprintf(tmpdir, sizeof(tmpdir), "%s/grgw-test-probe.XXXXXX",
	    base != NULL && *base != '\0' ? base : "/tmp");
	if (mkdtemp(tmpdir) == NULL || sodium_init() < 0)
		return -1;
	for (i = 0; i < PROBE_KEY_LEN; i++) {
		key_a[i] = (uint8_t)(0xa0 + i);
		key_b[i] = (uint8_t)(0xb0 + i);
	}
	log_init("test_probe", LOG_LVL_WARN);
	return 0;
}

static int
teardown(void **state)
{
	char	 cmd[PATH_MAX + 16];

	/* Only our own mkdtemp directory. */
	if (strstr(tmpdir, "/grgw-test-probe.") == NULL)
		return -1;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_encode_refuses),
		cmocka_unit_test(test_every_bit_flip),
		cmocka_unit_test(test_wrong_key),
		cmocka_unit_test(test_lengths),
		cmocka_unit_test(test_decode_either),
		cmocka_unit_test(test_header_fields),
		cmocka_unit_test(test_replay_basic),
		cmocka_unit_test(test_replay_window_edges),
		cmocka_unit_test(test_replay_jump),
		cmocka_unit_test(test_replay_timestamps),
		cmocka_unit_test(test_replay_sessions),
		cmocka_unit_test(test_key_derive),
		cmocka_unit_test(test_key_derive_pair),
		cmocka_unit_test(test_key_derive_lengths),
		cmocka_unit_test(test_key_derive_pinned),
		cmocka_unit_test(test_config_defaults),
		cmocka_unit_test(test_config_values),
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_config_percent_errors),
		cmocka_unit_test(test_config_cert_needs_key_file),
		cmocka_unit_test(test_config_load_key_file),
		cmocka_unit_test(test_engine_pair),
		cmocka_unit_test(test_engine_rotation),
		cmocka_unit_test(test_engine_refuses),
		cmocka_unit_test(test_engine_clock_skew),
		cmocka_unit_test(test_engine_statistics),
		cmocka_unit_test(test_engine_fresh),
		cmocka_unit_test(test_engine_pause),
		cmocka_unit_test(test_engine_bind_retry),
		cmocka_unit_test(test_engine_api_edges),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
