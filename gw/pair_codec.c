/*
 * The gateway pair's heartbeats: the packet codec, the key and the
 * anti-replay adapter.  Pure: bytes and structs in, verdicts out.
 *
 * Wire format: PAIR_WIRE_LEN bytes, integers big-endian.
 *
 *    0   4  magic "GRPH"
 *    4   1  version, 1
 *    5   1  role: 1 starting, 2 standby, 3 claiming, 4 active, 5 released
 *    6   1  priority, 1..255
 *    7   1  flags: 0x01 HANDOVER, 0x02 WAN_OK, 0x04 ETCD_OK, 0x08 PREPARE,
 *              0x10 READY
 *    8   8  session: the sender's random id for this run
 *   16   8  seq: the sender's sequence number, from 1
 *   24   8  epoch: the last fence epoch the sender knows of
 *   32   8  tx_ns: the sender's CLOCK_REALTIME (freshness, anti-replay)
 *   40   8  mono_tx_ns: the sender's CLOCK_MONOTONIC when it sent this
 *   48   8  echo_seq: seq of the latest heartbeat received from the
 *           partner; 0: none yet
 *   56   8  echo_mono_ns: that heartbeat's mono_tx_ns, unchanged
 *   64  32  crypto_auth (HMAC-SHA-512-256) tag over bytes 0 to 63
 *
 * Only a packet of exactly this length is looked at.  Length, magic and
 * version are checked before the tag (they say whether this is a
 * heartbeat at all); the role, priority, flags and echo after it, so
 * that an authentic heartbeat of a newer version with a role we do not
 * know is told apart from a forged one.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "pair.h"
#include "be64.h"

#define PAIR_MAGIC		"GRPH"
#define PAIR_VERSION		1
#define PAIR_BODY_LEN		64	/* what the tag covers */
#define PAIR_TAG_LEN		32

/* Not the probes' labels: the two keys never coincide. */
#define PAIR_KEY_DOMAIN		"grgw pair heartbeat key v1"
#define PAIR_SECRET_DOMAIN	"grgw pair heartbeat secret v1"

_Static_assert(crypto_auth_BYTES == PAIR_TAG_LEN, "tag length");
_Static_assert(crypto_auth_KEYBYTES == PAIR_KEY_LEN, "key length");
_Static_assert(PAIR_BODY_LEN + PAIR_TAG_LEN == PAIR_WIRE_LEN, "wire length");

static int
pair_role_known(int role)
{
	return role >= PAIR_STARTING && role <= PAIR_RELEASED;
}

/* Everything but the role: one rule for both directions. */
static int
pair_fields_valid(const struct pair_hb *p)
{
	if (p->priority == 0 || (p->flags & ~PAIR_F_ALL) != 0)
		return 0;
	return p->echo_seq != 0 || p->echo_mono_ns == 0;
}

size_t
pair_wire_len(void)
{
	return PAIR_WIRE_LEN;
}

const char *
pair_role_name(int role)
{
	switch (role) {
	case PAIR_STARTING:
		return "starting";
	case PAIR_STANDBY:
		return "standby";
	case PAIR_CLAIMING:
		return "claiming";
	case PAIR_ACTIVE:
		return "active";
	case PAIR_RELEASED:
		return "released";
	default:
		return "?";
	}
}

int
pair_encode(const struct pair_hb *p, const uint8_t key[PAIR_KEY_LEN],
    uint8_t *buf, size_t size)
{
	if (p == NULL || key == NULL || buf == NULL || size < PAIR_WIRE_LEN ||
	    !pair_role_known(p->role) || !pair_fields_valid(p) ||
	    sodium_init() < 0) {
		errno = EINVAL;
		return -1;
	}
	memcpy(buf, PAIR_MAGIC, 4);
	buf[4] = PAIR_VERSION;
	buf[5] = p->role;
	buf[6] = p->priority;
	buf[7] = p->flags;
	put_be64(buf + 8, p->session);
	put_be64(buf + 16, p->seq);
	put_be64(buf + 24, p->epoch);
	put_be64(buf + 32, p->tx_ns);
	put_be64(buf + 40, p->mono_tx_ns);
	put_be64(buf + 48, p->echo_seq);
	put_be64(buf + 56, p->echo_mono_ns);
	crypto_auth(buf + PAIR_BODY_LEN, buf, PAIR_BODY_LEN, key);
	return PAIR_WIRE_LEN;
}

static int
pair_tag_ok(const uint8_t *buf, const uint8_t *key)
{
	return crypto_auth_verify(buf + PAIR_BODY_LEN, buf, PAIR_BODY_LEN,
	    key) == 0;
}

int
pair_decode(const uint8_t *buf, size_t len, const uint8_t key[PAIR_KEY_LEN],
    const uint8_t *next, struct pair_hb *out, int *used)
{
	struct pair_hb	 p;
	int		 which;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (used != NULL)
		*used = 0;
	if (buf == NULL || key == NULL || out == NULL || len != PAIR_WIRE_LEN)
		return PAIR_E_MALFORMED;
	if (memcmp(buf, PAIR_MAGIC, 4) != 0 || buf[4] != PAIR_VERSION)
		return PAIR_E_MALFORMED;
	if (sodium_init() < 0)
		return PAIR_E_AUTH;
	if (pair_tag_ok(buf, key))
		which = 0;
	else if (next != NULL && pair_tag_ok(buf, next))
		which = 1;
	else
		return PAIR_E_AUTH;
	memset(&p, 0, sizeof(p));
	p.role = buf[5];
	p.priority = buf[6];
	p.flags = buf[7];
	p.session = get_be64(buf + 8);
	p.seq = get_be64(buf + 16);
	p.epoch = get_be64(buf + 24);
	p.tx_ns = get_be64(buf + 32);
	p.mono_tx_ns = get_be64(buf + 40);
	p.echo_seq = get_be64(buf + 48);
	p.echo_mono_ns = get_be64(buf + 56);
	/* Authentic but not understood: a newer or a broken sender. */
	if (!pair_role_known(p.role))
		return PAIR_E_ROLE;
	if (!pair_fields_valid(&p))
		return PAIR_E_MALFORMED;
	*out = p;
	if (used != NULL)
		*used = which;
	return PAIR_OK;
}

/*
 * BLAKE2b keyed with the secret over a label of the pair's own and the
 * site name; a secret whose length BLAKE2b does not take as a key is
 * first hashed to 64 bytes under a label of its own (as the probes do,
 * with other labels).
 */
void
pair_key_derive(const uint8_t *secret, size_t len, const char *site,
    uint8_t out[PAIR_KEY_LEN])
{
	crypto_generichash_state st;
	uint8_t			 k[crypto_generichash_KEYBYTES_MAX];
	const uint8_t		*key = secret;
	size_t			 keylen = len;

	if (sodium_init() < 0)
		abort();	/* cannot happen after the daemon's own init */
	if (secret == NULL || len < crypto_generichash_KEYBYTES_MIN ||
	    len > crypto_generichash_KEYBYTES_MAX) {
		crypto_generichash_init(&st, NULL, 0, sizeof(k));
		crypto_generichash_update(&st,
		    (const uint8_t *)PAIR_SECRET_DOMAIN,
		    sizeof(PAIR_SECRET_DOMAIN) - 1);
		if (secret != NULL && len > 0)
			crypto_generichash_update(&st, secret, len);
		crypto_generichash_final(&st, k, sizeof(k));
		key = k;
		keylen = sizeof(k);
	}
	crypto_generichash_init(&st, key, keylen, PAIR_KEY_LEN);
	crypto_generichash_update(&st, (const uint8_t *)PAIR_KEY_DOMAIN,
	    sizeof(PAIR_KEY_DOMAIN) - 1);
	probe_key_hash_name(&st, site != NULL ? site : "");
	crypto_generichash_final(&st, out, PAIR_KEY_LEN);
	sodium_memzero(&st, sizeof(st));
	sodium_memzero(k, sizeof(k));
}

/*
 * The probes' window looks at session, seq and tx_ns only: the same
 * rules (sliding window, freshness, an older session stays dead) for
 * the heartbeats, without a second implementation.
 */
int
pair_replay_check(struct probe_replay *r, const struct pair_hb *p,
    uint64_t own_session, uint64_t now_ns)
{
	struct probe_pkt	 pkt;

	if (r == NULL || p == NULL || p->session == own_session)
		return -1;
	memset(&pkt, 0, sizeof(pkt));
	pkt.type = PROBE_REQUEST;
	pkt.session = p->session;
	pkt.seq = p->seq;
	pkt.tx_ns = p->tx_ns;
	return probe_replay_check(r, &pkt, now_ns);
}
