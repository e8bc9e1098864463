/*
 * probe_codec.c: the link probes' packets and anti-replay window, a pure
 * codec (the engine that sends and receives them is probe.c).
 *
 * Every packet is authenticated (libsodium crypto_auth, HMAC-SHA-512-256)
 * with a key derived from the pair's pre-shared key or read from a
 * dedicated key file, and carries the sender's session id (random per
 * start), a sequence number and timestamps, so that forged, tampered and
 * replayed packets are rejected and counted.
 */
#ifndef GRGW_PROBE_CODEC_H
#define GRGW_PROBE_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include <sodium.h>		/* crypto_generichash_state */

#include "linkstate.h"	/* enum probe_path */

#define PROBE_KEY_LEN		32

enum probe_type { PROBE_REQUEST = 1, PROBE_REPLY = 2 };

struct probe_pkt {
	uint8_t		type;		/* enum probe_type */
	uint8_t		path;		/* enum probe_path */
	uint64_t	session;	/* sender's random id for this run */
	uint64_t	seq;		/* sender's sequence, per path, from 1 */
	uint64_t	tx_ns;		/* sender's CLOCK_REALTIME, ns */
	/* REPLY only: what is being answered */
	uint64_t	echo_seq;
	uint64_t	echo_tx_ns;	/* the request's tx_ns, echoed */
};

enum probe_decode_result {
	PROBE_OK = 0,
	PROBE_E_MALFORMED = -1,		/* size, magic, version, type, path */
	PROBE_E_AUTH = -2,		/* MAC does not verify */
};

/* Fixed wire size of every probe packet. */
#define PROBE_WIRE_LEN		80
size_t	probe_wire_len(void);
/* Encode and authenticate into buf (>= probe_wire_len()); returns the
 * length or -1. */
int	probe_encode(const struct probe_pkt *p, const uint8_t key[PROBE_KEY_LEN],
	    uint8_t *buf, size_t size);
/* Verify and decode; enum probe_decode_result. */
int	probe_decode(const uint8_t *buf, size_t len,
	    const uint8_t key[PROBE_KEY_LEN], struct probe_pkt *out);
/*
 * During a key rotation the two gateways may hold different primary keys
 * for a while: verify under key, then under next (NULL: no rotation
 * under way), and accept a packet authenticated with either.  *used (may
 * be NULL) says which verified: 0 key, 1 next.  The keys are borrowed.
 * enum probe_decode_result.
 */
int	probe_decode_either(const uint8_t *buf, size_t len,
	    const uint8_t key[PROBE_KEY_LEN], const uint8_t *next,
	    struct probe_pkt *out, int *used);

/*
 * Key for the probes: derived from the pre-shared key (domain separated,
 * so it never equals the IKE secret), or from a dedicated key file's
 * contents, and bound to the pair of sites: site and peer are the two
 * [site] and [peer] names, in either order (both gateways get the same
 * key; another pair sharing the secret gets another).  NULL counts as "".
 * Nothing is kept; out is caller's memory (wipe it after use).
 */
/*
 * Into a key derivation: a length (8 bytes, big-endian) then the name,
 * so that no two pairs of names give the same bytes ("ab" + "c" is not
 * "a" + "bc").  Shared with the pair's heartbeat key (pair_codec.c).
 */
void	probe_key_hash_name(crypto_generichash_state *st, const char *name);
void	probe_key_derive(const uint8_t *secret, size_t len, const char *site,
	    const char *peer, uint8_t out[PROBE_KEY_LEN]);

/*
 * Anti-replay per (peer session, path): a sliding window of sequence
 * numbers plus a freshness bound on the sender's timestamp.  A packet of a
 * new session is accepted only if its timestamp is newer than everything
 * accepted from the current one, so an old session's captures stay dead.
 */
#define PROBE_REPLAY_WINDOW	1024
#define PROBE_MAX_SKEW_NS	(30ULL * 1000000000ULL)

struct probe_replay {
	uint64_t	session;
	uint64_t	top;		/* highest seq accepted */
	uint64_t	newest_tx_ns;
	uint64_t	floor_tx_ns;	/* this session's packets must be
					 * newer: the last session's newest */
	uint64_t	bitmap[PROBE_REPLAY_WINDOW / 64];
	int		valid;
};

/*
 * 0 accept (and record), -1 reject (seen, or older than what was
 * accepted), PROBE_REPLAY_SKEW: the timestamp is more than
 * PROBE_MAX_SKEW_NS away from now_ns (the two gateways' clocks differ,
 * or an old capture).  now_ns: receiver's CLOCK_REALTIME.
 */
#define PROBE_REPLAY_SKEW	(-2)
int	probe_replay_check(struct probe_replay *r, const struct probe_pkt *p,
	    uint64_t now_ns);

#endif /* GRGW_PROBE_CODEC_H */
