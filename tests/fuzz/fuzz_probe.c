/*
 * libFuzzer harness for the link probe codec and its anti-replay window.
 *
 * The input is used three ways:
 *  - as a datagram for probe_decode() under a fixed key: whatever is
 *    accepted must be re-encoded byte for byte (one encoding per packet),
 *    must be refused under another key, and a refusal leaves nothing in
 *    the output;
 *  - as the fields of a packet: probe_encode() must accept exactly the
 *    packets the harness's own rules allow, and decode what it encoded
 *    to the same fields; any one byte changed must then be refused;
 *  - as a sequence of (session, seq, timestamp, clock step) records fed
 *    to probe_replay_check(), compared against a model that remembers
 *    every accepted seq: the window never takes the same packet twice,
 *    even when sessions alternate, never a seq 0 or a stale or future
 *    timestamp, only replaces a session with a newer one, leaves its
 *    state alone when it refuses, and agrees with the model on every
 *    decision.
 *
 * The seed corpus (tests/fuzz/corpus/probe/) holds packets valid under
 * FUZZ_KEY below, so that mutations start from the accepting path.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "grgw.h"
#include "linkstate.h"
#include "probe_codec.h"

#define WIRE		80
#define RECORD		8
#define MAX_RECORDS	4096
#define NS_PER_MS	1000000ULL
#define START_NS	1700000000000000000ULL

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* FUZZ_KEY[i] = i: the key the seed packets are signed with. */
static uint8_t	 fuzz_key[PROBE_KEY_LEN], other_key[PROBE_KEY_LEN];

static void
keys_init(void)
{
	static int	 done;
	size_t		 i;

	if (done)
		return;
	if (sodium_init() < 0)
		abort();
	for (i = 0; i < PROBE_KEY_LEN; i++) {
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
same_pkt(const struct probe_pkt *a, const struct probe_pkt *b)
{
	return a->type == b->type && a->path == b->path &&
	    a->session == b->session && a->seq == b->seq &&
	    a->tx_ns == b->tx_ns && a->echo_seq == b->echo_seq &&
	    a->echo_tx_ns == b->echo_tx_ns;
}

/* The rules the codec promises, written out independently. */
static int
fields_ok(const struct probe_pkt *p)
{
	if (p->path != PROBE_TUNNEL && p->path != PROBE_UNDERLAY)
		return 0;
	if (p->type == PROBE_REQUEST)
		return p->echo_seq == 0 && p->echo_tx_ns == 0;
	if (p->type == PROBE_REPLY)
		return p->echo_seq != 0;
	return 0;
}

static void
fuzz_decode(const uint8_t *data, size_t size)
{
	static const struct probe_pkt zero;
	struct probe_pkt	 p, q;
	uint8_t			*copy, again[WIRE];
	int			 rc, used;

	/* Exactly size bytes, so a read past the end is caught. */
	if ((copy = malloc(size > 0 ? size : 1)) == NULL)
		return;
	if (size > 0)
		memcpy(copy, data, size);
	rc = probe_decode(copy, size, fuzz_key, &p);
	/* A rotation, fuzz_key the next key: the same verdict, said so. */
	if (probe_decode_either(copy, size, other_key, fuzz_key, &q,
	    &used) != rc || (rc == PROBE_OK && (used != 1 ||
	    !same_pkt(&p, &q))) || (rc != PROBE_OK && used != 0))
		abort();
	if (rc != PROBE_OK) {
		if ((rc != PROBE_E_MALFORMED && rc != PROBE_E_AUTH) ||
		    memcmp(&p, &zero, sizeof(p)) != 0)
			abort();
		free(copy);
		return;
	}
	if (size != WIRE || probe_wire_len() != WIRE || !fields_ok(&p))
		abort();
	if (probe_encode(&p, fuzz_key, again, sizeof(again)) != WIRE ||
	    memcmp(again, copy, WIRE) != 0)
		abort();
	if (probe_decode(copy, size, other_key, &q) != PROBE_E_AUTH)
		abort();
	free(copy);
}

static void
fuzz_roundtrip(const uint8_t *data, size_t size)
{
	struct probe_pkt	 p, q;
	uint8_t			 buf[WIRE + 8];
	size_t			 at;
	int			 rc;

	if (size < 44)
		return;
	memset(&p, 0, sizeof(p));
	/* Mostly sensible types and paths, sometimes anything. */
	p.type = (data[0] & 0x80) ? data[0] : (uint8_t)(1 + (data[0] & 1));
	p.path = (data[1] & 0x80) ? data[1] : (uint8_t)(data[1] & 1);
	p.session = be64(data + 2);
	p.seq = be64(data + 10);
	p.tx_ns = be64(data + 18);
	if (data[0] & 0x40) {
		p.echo_seq = be64(data + 26);
		p.echo_tx_ns = be64(data + 34);
	}
	rc = probe_encode(&p, fuzz_key, buf, sizeof(buf));
	if (!fields_ok(&p)) {
		if (rc != -1)
			abort();
		return;
	}
	if (rc != WIRE)
		abort();
	if (probe_decode(buf, WIRE, fuzz_key, &q) != PROBE_OK ||
	    memcmp(&p, &q, sizeof(p)) != 0)
		abort();
	/* Any one byte changed: refused. */
	at = data[42] % WIRE;
	buf[at] ^= data[43] != 0 ? data[43] : 1;
	if (probe_decode(buf, WIRE, fuzz_key, &q) == PROBE_OK)
		abort();
	/* Too short by one: refused before anything is read. */
	buf[at] ^= data[43] != 0 ? data[43] : 1;
	if (probe_decode(buf, WIRE - 1, fuzz_key, &q) != PROBE_E_MALFORMED)
		abort();
}

/* ---- anti-replay against a model ----------------------------------------- */

struct accepted {
	uint64_t	 session, seq, tx;
};

static int
in_skew(uint64_t tx, uint64_t now)
{
	return tx > now ? tx - now <= PROBE_MAX_SKEW_NS :
	    now - tx <= PROBE_MAX_SKEW_NS;
}

static void
fuzz_replay(const uint8_t *data, size_t size)
{
	static const uint64_t sessions[4] = {
		1, 2, 0x8000000000000000ULL, UINT64_MAX };
	static struct accepted all[MAX_RECORDS];
	static uint64_t cur_seqs[MAX_RECORDS];
	struct probe_replay	 r, before;
	struct probe_pkt	 p;
	const uint8_t		*rec;
	uint64_t		 now = START_NS, cursor = 1, top = 0;
	uint64_t		 cur_session = 0, newest = 0, floor = 0;
	size_t			 n_all = 0, n_cur = 0, i, k;
	int			 have = 0, want, got;
	int16_t			 delta, off;

	memset(&r, 0, sizeof(r));
	memset(&p, 0, sizeof(p));
	p.type = PROBE_REQUEST;
	for (k = 0; k + RECORD <= size && k / RECORD < MAX_RECORDS;
	    k += RECORD) {
		rec = data + k;
		p.session = sessions[rec[0] & 3];
		delta = (int16_t)(rec[2] << 8 | rec[3]);
		if (rec[1] & 0x40)	/* absolute, small */
			p.seq = (uint64_t)(rec[2] << 8 | rec[3]);
		else if (rec[1] & 0x20)	/* near the top of the range */
			p.seq = UINT64_MAX - (uint64_t)rec[3];
		else			/* relative to the last one */
			p.seq = cursor + (uint64_t)(int64_t)delta;
		/* Timestamps up to 32.767 s either side of now, around the
		 * 30 s bound; then the receiver's clock moves on. */
		off = (int16_t)(rec[4] << 8 | rec[5]);
		p.tx_ns = now + (uint64_t)((int64_t)off * (int64_t)NS_PER_MS);
		if (rec[1] & 0x10)
			p.tx_ns = (uint64_t)rec[6] << 56 | rec[7];
		now += (uint64_t)rec[6] * 50 * NS_PER_MS;
		cursor = p.seq;

		/* What the model says. */
		if (p.seq == 0 || !in_skew(p.tx_ns, now))
			want = 0;
		else if (!have || p.session != cur_session)
			want = !have || p.tx_ns > newest;
		else if (p.tx_ns <= floor)
			want = 0;
		else if (p.seq > top)
			want = 1;
		else if (top - p.seq >= PROBE_REPLAY_WINDOW)
			want = 0;
		else {
			want = 1;
			for (i = 0; i < n_cur; i++)
				if (cur_seqs[i] == p.seq)
					want = 0;
		}

		before = r;
		got = probe_replay_check(&r, &p, now) == 0;
		if (got != want)
			abort();
		if (!got) {
			if (memcmp(&before, &r, sizeof(r)) != 0)
				abort();
			continue;
		}

		/* Never the same packet twice, whatever happened between. */
		for (i = 0; i < n_all; i++)
			if (all[i].session == p.session &&
			    all[i].seq == p.seq && all[i].tx == p.tx_ns)
				abort();
		all[n_all].session = p.session;
		all[n_all].seq = p.seq;
		all[n_all].tx = p.tx_ns;
		n_all++;

		if (!have || p.session != cur_session) {
			floor = have ? newest : 0;
			have = 1;
			cur_session = p.session;
			n_cur = 0;
			top = p.seq;
			newest = p.tx_ns;
		}
		cur_seqs[n_cur++] = p.seq;
		if (p.seq > top)
			top = p.seq;
		if (p.tx_ns > newest)
			newest = p.tx_ns;
		if (!r.valid || r.session != cur_session || r.top != top ||
		    r.newest_tx_ns != newest || r.floor_tx_ns != floor)
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	keys_init();
	fuzz_decode(data, size);
	fuzz_roundtrip(data, size);
	fuzz_replay(data, size);
	return 0;
}
