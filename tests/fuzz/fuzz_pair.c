/*
 * libFuzzer harness for the gateway pair's heartbeat codec, its
 * anti-replay adapter and the role engine's bounds.
 *
 * The input is used four ways:
 *  - as a datagram for pair_decode() under a fixed key: whatever is
 *    accepted must be re-encoded byte for byte, must be refused under
 *    another key, must verify under the same key given as the "next" key
 *    (and say so); a refusal is one of the three verdicts and leaves
 *    nothing in the output;
 *  - as the fields of a heartbeat: pair_encode() must accept exactly what
 *    the harness's own rules allow, decode what it encoded to the same
 *    fields; any one byte changed must then be refused, a role the
 *    version does not know (re-signed) reported as such;
 *  - as (session, seq, timestamp) records for pair_replay_check(), which
 *    must agree with probe_replay_check() on a window of its own on
 *    every verdict, except that our own session is always refused;
 *  - as events for one role engine facing an arbitrary (authenticated)
 *    partner and an arbitrary etcd: heartbeats with any fields, answers
 *    of any kind at any time, WAN flaps, handovers, time jumps.  Nothing
 *    it is told can give it a hold deadline beyond now + dead + guard -
 *    interval, make it take while holding or release while not, hand out
 *    an etcd request while one is in flight, or ask to be called in the
 *    past.
 *
 * The seed corpus (tests/fuzz/corpus/pair/) holds heartbeats valid under
 * FUZZ_KEY below (key[i] = i).
 */
#include <netinet/in.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "grgw.h"
#include "pair.h"

#define WIRE		PAIR_WIRE_LEN
#define NS_PER_MS	1000000ULL
#define START_NS	1700000000000000000ULL
#define MAX_RECORDS	4096

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static uint8_t	 fuzz_key[PAIR_KEY_LEN], other_key[PAIR_KEY_LEN];

static void
keys_init(void)
{
	static int	 done;
	size_t		 i;

	if (done)
		return;
	if (sodium_init() < 0)
		abort();
	for (i = 0; i < PAIR_KEY_LEN; i++) {
		fuzz_key[i] = (uint8_t)i;
		other_key[i] = (uint8_t)(i ^ 0x5a);
	}
	done = 1;
}

static uint64_t
be64(const uint8_t *p)
{
	uint64_t	 v = 0;
	int		 i;

	for (i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* Field by field: the structs' padding is anything. */
static int
same_hb(const struct pair_hb *a, const struct pair_hb *b)
{
	return a->role == b->role && a->priority == b->priority &&
	    a->flags == b->flags && a->epoch == b->epoch &&
	    a->session == b->session && a->seq == b->seq &&
	    a->tx_ns == b->tx_ns && a->mono_tx_ns == b->mono_tx_ns &&
	    a->echo_seq == b->echo_seq && a->echo_mono_ns == b->echo_mono_ns;
}

/* The rules the codec promises, written out independently. */
static int
role_ok(const struct pair_hb *p)
{
	return p->role >= 1 && p->role <= 5;
}

static int
fields_ok(const struct pair_hb *p)
{
	return p->priority != 0 && (p->flags & ~0x07) == 0 &&
	    (p->echo_seq != 0 || p->echo_mono_ns == 0);
}

static void
fuzz_decode(const uint8_t *data, size_t size)
{
	static const struct pair_hb zero;
	struct pair_hb	 p, q;
	uint8_t		*copy, again[WIRE];
	int		 rc, used = -1;

	/* Exactly size bytes, so a read past the end is caught. */
	if ((copy = malloc(size > 0 ? size : 1)) == NULL)
		return;
	if (size > 0)
		memcpy(copy, data, size);
	rc = pair_decode(copy, size, fuzz_key, NULL, &p, &used);
	if (used != 0)
		abort();
	/* A rotation, fuzz_key the next key: the same verdict, said so. */
	if (pair_decode(copy, size, other_key, fuzz_key, &q, &used) != rc ||
	    (rc == PAIR_OK && (used != 1 || !same_hb(&p, &q))) ||
	    (rc != PAIR_OK && used != 0))
		abort();
	if (rc != PAIR_OK) {
		if ((rc != PAIR_E_MALFORMED && rc != PAIR_E_AUTH &&
		    rc != PAIR_E_ROLE) || memcmp(&p, &zero, sizeof(p)) != 0)
			abort();
		/* Only a heartbeat of the right size can be authentic. */
		if (rc == PAIR_E_ROLE && size != WIRE)
			abort();
		free(copy);
		return;
	}
	if (size != WIRE || pair_wire_len() != WIRE || !role_ok(&p) ||
	    !fields_ok(&p))
		abort();
	if (pair_encode(&p, fuzz_key, again, sizeof(again)) != WIRE ||
	    memcmp(again, copy, WIRE) != 0)
		abort();
	if (pair_decode(copy, size, other_key, NULL, &q, NULL) != PAIR_E_AUTH)
		abort();
	free(copy);
}

static void
fuzz_roundtrip(const uint8_t *data, size_t size)
{
	struct pair_hb	 p, q;
	uint8_t		 buf[WIRE + 8];
	size_t		 at;
	int		 rc;

	if (size < 62)
		return;
	memset(&p, 0, sizeof(p));
	/* Mostly sensible roles and flags, sometimes anything. */
	p.role = (data[0] & 0x80) ? data[0] : (uint8_t)(1 + data[0] % 5);
	p.priority = data[1];
	p.flags = (data[2] & 0x80) ? data[2] : (uint8_t)(data[2] & 0x07);
	p.epoch = be64(data + 3);
	p.session = be64(data + 11);
	p.seq = be64(data + 19);
	p.tx_ns = be64(data + 27);
	p.mono_tx_ns = be64(data + 35);
	if (data[0] & 0x40) {
		p.echo_seq = be64(data + 43);
		p.echo_mono_ns = be64(data + 51);
	}
	rc = pair_encode(&p, fuzz_key, buf, sizeof(buf));
	if (!role_ok(&p) || !fields_ok(&p)) {
		if (rc != -1)
			abort();
		return;
	}
	if (rc != WIRE)
		abort();
	if (pair_decode(buf, WIRE, fuzz_key, NULL, &q, NULL) != PAIR_OK ||
	    memcmp(&p, &q, sizeof(p)) != 0)
		abort();
	/* A role we do not know, signed: reported as such. */
	buf[5] = data[59] % 2 ? 0 : (uint8_t)(6 + data[59] % 250);
	crypto_auth(buf + 64, buf, 64, fuzz_key);
	if (pair_decode(buf, WIRE, fuzz_key, NULL, &q, NULL) != PAIR_E_ROLE)
		abort();
	if (pair_encode(&p, fuzz_key, buf, sizeof(buf)) != WIRE)
		abort();
	/* Any one byte changed: refused. */
	at = data[60] % WIRE;
	buf[at] ^= data[61] != 0 ? data[61] : 1;
	if (pair_decode(buf, WIRE, fuzz_key, other_key, &q, NULL) == PAIR_OK)
		abort();
	buf[at] ^= data[61] != 0 ? data[61] : 1;
	if (pair_decode(buf, WIRE - 1, fuzz_key, NULL, &q, NULL) !=
	    PAIR_E_MALFORMED)
		abort();
}

/* ---- the replay adapter against the probes' window ------------------------ */

static void
fuzz_replay(const uint8_t *data, size_t size)
{
	static const uint64_t sessions[4] = { 1, 2, 99, UINT64_MAX };
	struct probe_replay	 a, b;
	struct probe_pkt	 pk;
	struct pair_hb		 hb;
	const uint8_t		*rec;
	uint64_t		 now = START_NS, own = 99;
	size_t			 n;
	int			 ra, rb;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	for (n = 0; n + 8 <= size && n / 8 < MAX_RECORDS; n += 8) {
		rec = data + n;
		memset(&hb, 0, sizeof(hb));
		hb.role = PAIR_STANDBY;
		hb.priority = 1;
		hb.session = sessions[rec[0] & 3];
		hb.seq = (uint64_t)rec[1] << 8 | rec[2];
		hb.tx_ns = now + ((uint64_t)rec[3] << 24) - (1ULL << 31);
		if (rec[4] & 1)
			hb.tx_ns = be64(rec) ^ now;	/* anything */
		now += (uint64_t)rec[5] * NS_PER_MS;
		ra = pair_replay_check(&a, &hb, own, now);
		if (hb.session == own) {
			if (ra != -1)
				abort();
			continue;
		}
		memset(&pk, 0, sizeof(pk));
		pk.type = PROBE_REQUEST;
		pk.session = hb.session;
		pk.seq = hb.seq;
		pk.tx_ns = hb.tx_ns;
		rb = probe_replay_check(&b, &pk, now);
		if (ra != rb || memcmp(&a, &b, sizeof(a)) != 0)
			abort();
	}
}

/* ---- the role engine's bounds ------------------------------------------- */

struct engine_state {
	int		 holding;
	int		 reads;		/* out: up to two (R4) */
	int		 claim;		/* out: at most one, never two reads */
	uint64_t	 read_at;	/* the latest read's start */
};

static void
engine_next(struct pair_role *r, const struct pair_role_conf *c,
    struct engine_state *st, uint64_t now)
{
	struct pair_role_out	 o;

	pair_role_next(r, now, &o);
	if (o.take && o.release)
		abort();
	if (o.release) {
		if (!st->holding)
			abort();
		st->holding = 0;
	}
	if (o.take) {
		if (st->holding || o.role != PAIR_ACTIVE)
			abort();
		st->holding = 1;
	}
	if (st->holding != (o.role == PAIR_ACTIVE))
		abort();
	if (st->holding && (o.hold_deadline <= now || o.hold_deadline >
	    now + c->dead_ms + c->guard_ms - c->interval_ms))
		abort();
	if (!st->holding && o.hold_deadline != 0)
		abort();
	if (o.read && o.claim)
		abort();
	if (o.read && (st->claim || st->reads >= 2))
		abort();
	if (o.claim && (st->claim || st->reads > 1))
		abort();
	if (o.read) {
		st->reads++;
		st->read_at = now;
	}
	if (o.claim)
		st->claim = 1;
	if (o.claim && (o.claim_epoch == 0 || o.claim_epoch > INT64_MAX))
		abort();
	if (o.send_hb && (o.hb.session != c->session || o.hb.role != o.role ||
	    !role_ok(&o.hb) || !fields_ok(&o.hb) ||
	    o.hb.mono_tx_ns != now * NS_PER_MS))
		abort();
	if (o.next_call <= now)
		abort();
}

static void
fuzz_engine(const uint8_t *data, size_t size)
{
	struct pair_role_conf	 c;
	struct pair_role	*r;
	struct engine_state	 st;
	struct pair_fence	 f;
	struct pair_hb		 hb;
	const uint8_t		*e;
	uint64_t		 now = 1000000, last_seq = 0;
	size_t			 n;
	int			 rc;

	if (size < 4)
		return;
	memset(&c, 0, sizeof(c));
	c.priority = data[0] != 0 ? data[0] : 1;
	c.interval_ms = 1 + data[1] % 50;
	c.dead_ms = 3 * c.interval_ms + data[2] % 100;
	c.guard_ms = 2 * c.interval_ms + data[3] % 100;
	c.address.family = AF_INET;
	memcpy(c.address.addr, "\xc6\x12\x01\x02", 4);
	c.partner.family = AF_INET;
	memcpy(c.partner.addr, "\xc6\x12\x01\x03", 4);
	c.session = 0x1234;
	c.wan_up = 1;
	if ((r = pair_role_new(&c, now, NULL, 0)) == NULL)
		abort();
	memset(&st, 0, sizeof(st));
	engine_next(r, &c, &st, now);
	for (n = 4; n + 8 <= size; n += 8) {
		e = data + n;
		now += e[0] % 64;
		switch (e[1] % 8) {
		case 0:
		case 1:		/* a heartbeat of any content */
			memset(&hb, 0, sizeof(hb));
			hb.role = (uint8_t)(1 + e[2] % 5);
			hb.priority = e[3] != 0 ? e[3] : 1;
			hb.flags = e[4] & 0x07;
			hb.epoch = e[5] % 8;
			hb.session = e[6] & 0x80 ? 0x1234 : 0x4321;
			hb.seq = e[6] & 0x40 ? last_seq : ++last_seq;
			hb.mono_tx_ns = now * NS_PER_MS;
			/* Echo one of our recent heartbeats, or nonsense. */
			hb.echo_seq = e[7] % 16;
			hb.echo_mono_ns = hb.echo_seq == 0 ? 0 :
			    (e[7] & 0x80 ? (now - e[2] % 200) * NS_PER_MS :
			    (uint64_t)e[3] * NS_PER_MS);
			rc = pair_role_heartbeat(r, now, &hb);
			if (rc < -1 || rc > 1 || (hb.session == c.session &&
			    rc != -1))
				abort();
			break;
		case 2:		/* a read's answer, maybe unasked */
		case 3:		/* a claim's answer, maybe unasked */
			memset(&f, 0, sizeof(f));
			f.status = e[2] % 4;
			f.found = e[3] & 1;
			f.mod_revision = e[4];
			f.epoch = e[5] % 8;
			f.holder = e[3] & 2 ? c.address : c.partner;
			if (e[1] % 8 == 2) {
				uint64_t at = e[6] & 1 ? now - e[7] % 64 :
				    st.read_at;

				rc = pair_role_fence_read(r, now, at, &f);
				if ((rc == 0) != (st.reads > 0 && at <= now))
					abort();
				if (rc == 0)
					st.reads--;
			} else {
				rc = pair_role_fence_claim(r, now, &f);
				if ((rc == 0) != st.claim)
					abort();
				if (rc == 0)
					st.claim = 0;
			}
			break;
		case 4:
			pair_role_wan(r, e[2] & 1);
			break;
		case 5:
			(void)pair_role_handover(r, now, NULL, 0);
			break;
		case 6:
			pair_role_tick(r, now);
			break;
		default:
			now += (uint64_t)e[2] * 16;	/* a long sleep */
			break;
		}
		engine_next(r, &c, &st, now);
	}
	pair_role_free(r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	keys_init();
	fuzz_decode(data, size);
	fuzz_roundtrip(data, size);
	fuzz_replay(data, size);
	fuzz_engine(data, size);
	return 0;
}
