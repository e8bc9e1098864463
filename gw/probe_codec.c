/*
 * Link probes: the packet codec and the anti-replay window.  Pure: bytes
 * and structs in, verdicts out; the engine (probe.c) does the I/O.
 *
 * Wire format: PROBE_WIRE_LEN bytes, integers big-endian.
 *
 *    0   4  magic "GRPB"
 *    4   1  version, 1
 *    5   1  type: 1 request, 2 reply
 *    6   1  path: 0 tunnel, 1 underlay
 *    7   1  reserved, zero
 *    8   8  session: the sender's random id for this run
 *   16   8  seq: the sender's sequence number, from 1
 *   24   8  tx_ns: the sender's CLOCK_REALTIME when it sent this
 *   32   8  echo_seq: a reply's request seq; zero in a request
 *   40   8  echo_tx_ns: a reply's request tx_ns; zero in a request
 *   48  32  crypto_auth (HMAC-SHA-512-256) tag over bytes 0 to 47
 *
 * Only a packet of exactly this length is looked at.  Both gateways hold
 * the same key, so a packet is also refused when it carries the
 * receiver's own session (one of its own packets sent back to it).
 *
 * How refused packets are counted (struct path_stats):
 *   rejected_malformed  wrong length, magic, version, type, path, a
 *                       nonzero reserved byte, echo fields that do not
 *                       fit the type, or the other path's packet
 *   rejected_auth       the tag does not verify; on the tunnel path also
 *                       a source other than the peer's LAN address (it did
 *                       not come through the tunnel)
 *   rejected_replay     seen before, outside the window, a timestamp more
 *                       than PROBE_MAX_SKEW_NS away, an older session, or
 *                       one of our own packets
 *
 * Round trips are measured on CLOCK_MONOTONIC from when the request left;
 * the echoed wall-clock stamp only has to match the one sent, so a step
 * of either clock cannot fake or spoil a sample.
 *
 * Each side numbers its requests and its replies separately, per path,
 * and keeps one anti-replay window per path and type for what the peer
 * sends.  Requests are numbered without gaps, so request seq N lives in
 * slot N % PROBE_RTT_WINDOW of the path's request ring, which is what
 * the loss, percentile and jitter figures are computed over.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "grgw.h"
#include "probe_codec.h"
#include "be64.h"

#define PROBE_MAGIC		"GRPB"
#define PROBE_VERSION		1
#define PROBE_BODY_LEN		48	/* what the tag covers */
#define PROBE_TAG_LEN		32

#define PROBE_KEY_DOMAIN	"grgw link probe key v2"
#define PROBE_SECRET_DOMAIN	"grgw link probe secret v1"

_Static_assert(crypto_auth_BYTES == PROBE_TAG_LEN, "tag length");
_Static_assert(crypto_auth_KEYBYTES == PROBE_KEY_LEN, "key length");
_Static_assert(crypto_generichash_BYTES_MIN <= PROBE_KEY_LEN &&
    crypto_generichash_BYTES_MAX >= PROBE_KEY_LEN, "derived key length");
_Static_assert(PROBE_REPLAY_WINDOW % 64 == 0, "replay bitmap words");
_Static_assert(PROBE_BODY_LEN + PROBE_TAG_LEN == PROBE_WIRE_LEN, "wire length");

/* ---- codec ---------------------------------------------------------------- */

/* What the codec accepts besides the tag: one rule for both directions. */
static int
probe_fields_valid(const struct probe_pkt *p)
{
	if (p->path >= PROBE_NPATHS)
		return 0;
	switch (p->type) {
	case PROBE_REQUEST:
		return p->echo_seq == 0 && p->echo_tx_ns == 0;
	case PROBE_REPLY:
		return p->echo_seq != 0;
	default:
		return 0;
	}
}

size_t
probe_wire_len(void)
{
	return PROBE_WIRE_LEN;
}

int
probe_encode(const struct probe_pkt *p, const uint8_t key[PROBE_KEY_LEN],
    uint8_t *buf, size_t size)
{
	if (p == NULL || key == NULL || buf == NULL || size < PROBE_WIRE_LEN ||
	    !probe_fields_valid(p) || sodium_init() < 0) {
		errno = EINVAL;
		return -1;
	}
	memcpy(buf, PROBE_MAGIC, 4);
	buf[4] = PROBE_VERSION;
	buf[5] = p->type;
	buf[6] = p->path;
	buf[7] = 0;
	put_be64(buf + 8, p->session);
	put_be64(buf + 16, p->seq);
	put_be64(buf + 24, p->tx_ns);
	put_be64(buf + 32, p->echo_seq);
	put_be64(buf + 40, p->echo_tx_ns);
	crypto_auth(buf + PROBE_BODY_LEN, buf, PROBE_BODY_LEN, key);
	return PROBE_WIRE_LEN;
}

int
probe_decode(const uint8_t *buf, size_t len, const uint8_t key[PROBE_KEY_LEN],
    struct probe_pkt *out)
{
	struct probe_pkt	 p;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (buf == NULL || key == NULL || out == NULL || len != PROBE_WIRE_LEN)
		return PROBE_E_MALFORMED;
	/* The header is checked first: cheap, and nothing else is read. */
	if (memcmp(buf, PROBE_MAGIC, 4) != 0 || buf[4] != PROBE_VERSION ||
	    (buf[5] != PROBE_REQUEST && buf[5] != PROBE_REPLY) ||
	    buf[6] >= PROBE_NPATHS || buf[7] != 0)
		return PROBE_E_MALFORMED;
	if (sodium_init() < 0 ||
	    crypto_auth_verify(buf + PROBE_BODY_LEN, buf, PROBE_BODY_LEN,
	    key) != 0)
		return PROBE_E_AUTH;
	p.type = buf[5];
	p.path = buf[6];
	p.session = get_be64(buf + 8);
	p.seq = get_be64(buf + 16);
	p.tx_ns = get_be64(buf + 24);
	p.echo_seq = get_be64(buf + 32);
	p.echo_tx_ns = get_be64(buf + 40);
	/* Authentic but inconsistent: the sender is broken, not forged. */
	if (!probe_fields_valid(&p))
		return PROBE_E_MALFORMED;
	*out = p;
	return PROBE_OK;
}

int
probe_decode_either(const uint8_t *buf, size_t len,
    const uint8_t key[PROBE_KEY_LEN], const uint8_t *next,
    struct probe_pkt *out, int *used)
{
	int	 rc;

	if (used != NULL)
		*used = 0;
	rc = probe_decode(buf, len, key, out);
	if (rc != PROBE_E_AUTH || next == NULL)
		return rc;
	rc = probe_decode(buf, len, next, out);
	if (rc == PROBE_OK && used != NULL)
		*used = 1;
	return rc;
}

/* A length (8 bytes, big-endian) then the name: no two pairs of names
 * give the same bytes ("ab" + "c" is not "a" + "bc"). */
void
probe_key_hash_name(crypto_generichash_state *st, const char *name)
{
	uint8_t	 len[8];
	size_t	 n = strlen(name);

	put_be64(len, (uint64_t)n);
	crypto_generichash_update(st, len, sizeof(len));
	crypto_generichash_update(st, (const uint8_t *)name, n);
}

/*
 * BLAKE2b keyed with the secret over the domain string and both site
 * names, the one that sorts first first, so both gateways compute the
 * same key and a secret shared by several pairs still gives each pair a
 * key of its own.  A secret whose length BLAKE2b does not take as a key
 * (outside 16 to 64 bytes, which psk_load() never returns) is first
 * hashed to 64 bytes under a domain of its own.
 */
void
probe_key_derive(const uint8_t *secret, size_t len, const char *site,
    const char *peer, uint8_t out[PROBE_KEY_LEN])
{
	crypto_generichash_state st;
	uint8_t			 k[crypto_generichash_KEYBYTES_MAX];
	const uint8_t		*key = secret;
	size_t			 keylen = len;
	const char		*first = site != NULL ? site : "";
	const char		*second = peer != NULL ? peer : "";
	const char		*t;

	if (sodium_init() < 0)
		abort();	/* cannot happen after the daemon's own init */
	if (secret == NULL || len < crypto_generichash_KEYBYTES_MIN ||
	    len > crypto_generichash_KEYBYTES_MAX) {
		crypto_generichash_init(&st, NULL, 0, sizeof(k));
		crypto_generichash_update(&st,
		    (const uint8_t *)PROBE_SECRET_DOMAIN,
		    sizeof(PROBE_SECRET_DOMAIN) - 1);
		if (secret != NULL && len > 0)
			crypto_generichash_update(&st, secret, len);
		crypto_generichash_final(&st, k, sizeof(k));
		key = k;
		keylen = sizeof(k);
	}
	if (strcmp(first, second) > 0) {
		t = first;
		first = second;
		second = t;
	}
	crypto_generichash_init(&st, key, keylen, PROBE_KEY_LEN);
	crypto_generichash_update(&st, (const uint8_t *)PROBE_KEY_DOMAIN,
	    sizeof(PROBE_KEY_DOMAIN) - 1);
	probe_key_hash_name(&st, first);
	probe_key_hash_name(&st, second);
	crypto_generichash_final(&st, out, PROBE_KEY_LEN);
	sodium_memzero(&st, sizeof(st));
	sodium_memzero(k, sizeof(k));
}

/* ---- anti-replay -------------------------------------------------------- */

static int
replay_bit(const struct probe_replay *r, uint64_t seq)
{
	uint64_t	 i = seq % PROBE_REPLAY_WINDOW;

	return (r->bitmap[i / 64] >> (i % 64)) & 1;
}

static void
replay_set(struct probe_replay *r, uint64_t seq, int on)
{
	uint64_t	 i = seq % PROBE_REPLAY_WINDOW;

	if (on)
		r->bitmap[i / 64] |= 1ULL << (i % 64);
	else
		r->bitmap[i / 64] &= ~(1ULL << (i % 64));
}

static void
replay_reset(struct probe_replay *r, const struct probe_pkt *p)
{
	/* Even a session seen before cannot bring back its old packets. */
	r->floor_tx_ns = r->valid ? r->newest_tx_ns : 0;
	memset(r->bitmap, 0, sizeof(r->bitmap));
	r->session = p->session;
	r->top = p->seq;
	r->newest_tx_ns = p->tx_ns;
	r->valid = 1;
	replay_set(r, p->seq, 1);
}

/*
 * The bitmap is a ring indexed by seq % PROBE_REPLAY_WINDOW and holds
 * the seqs in (top - PROBE_REPLAY_WINDOW, top].  A session that takes
 * over must be newer than everything accepted so far, and its packets
 * stay newer than that (floor_tx_ns): so no packet is accepted twice,
 * even when sessions alternate.  Nothing is changed when a packet is
 * refused.
 */
int
probe_replay_check(struct probe_replay *r, const struct probe_pkt *p,
    uint64_t now_ns)
{
	uint64_t	 n, i;

	if (r == NULL || p == NULL || p->seq == 0)
		return -1;
	if (p->tx_ns > now_ns ? p->tx_ns - now_ns > PROBE_MAX_SKEW_NS :
	    now_ns - p->tx_ns > PROBE_MAX_SKEW_NS)
		return PROBE_REPLAY_SKEW;
	if (!r->valid) {
		replay_reset(r, p);
		return 0;
	}
	if (p->session != r->session) {
		/* A restarted peer; its clock must have moved on. */
		if (p->tx_ns <= r->newest_tx_ns)
			return -1;
		replay_reset(r, p);
		return 0;
	}
	if (p->tx_ns <= r->floor_tx_ns)
		return -1;
	if (p->seq > r->top) {
		n = p->seq - r->top;
		if (n >= PROBE_REPLAY_WINDOW)
			memset(r->bitmap, 0, sizeof(r->bitmap));
		else	/* counted, so a seq near UINT64_MAX cannot wrap */
			for (i = 1; i <= n; i++)
				replay_set(r, r->top + i, 0);
		r->top = p->seq;
	} else if (r->top - p->seq >= PROBE_REPLAY_WINDOW ||
	    replay_bit(r, p->seq))
		return -1;
	replay_set(r, p->seq, 1);
	if (p->tx_ns > r->newest_tx_ns)
		r->newest_tx_ns = p->tx_ns;
	return 0;
}

