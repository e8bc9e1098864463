/*
 * The gateway pair: two gateways per site, one active (it holds the
 * site's floating addresses), one standby.  Two pure modules:
 *
 *   pair_codec.c  the heartbeat packets the two gateways exchange every
 *                 interval_ms, their key and their anti-replay window
 *   pair_role.c   the role engine: who holds the addresses, fenced by a
 *                 compare-and-swap on an etcd key (rules and safety
 *                 argument at the top of pair_role.c)
 *
 * Neither does I/O nor reads a clock: the caller (the daemon, or a unit
 * test's simulated pair) sends, receives, talks to etcd and says what
 * time it is.
 */
#ifndef GRGW_PAIR_H
#define GRGW_PAIR_H

#include <stddef.h>
#include <stdint.h>

#include "grgw.h"		/* struct grgw_addr */
#include "probe_codec.h"	/* struct probe_replay */

/* ---- heartbeats (pair_codec.c) ------------------------------------------- */

#define PAIR_KEY_LEN		32

/* A gateway's role, as its heartbeats say it (wire values). */
enum pair_role_state {
	PAIR_STARTING = 1,	/* listening for dead_ms after start */
	PAIR_STANDBY = 2,
	PAIR_CLAIMING = 3,	/* its etcd claim is in flight, or won and
				 * it waits out guard_ms */
	PAIR_ACTIVE = 4,	/* holds the floating addresses */
	PAIR_RELEASED = 5,	/* has dropped them (a standby that was
				 * active a moment ago) */
};

/* Heartbeat flags. */
#define PAIR_F_HANDOVER		0x01	/* an active asks its standby to
					 * take the role */
#define PAIR_F_WAN_OK		0x02	/* its WAN and tunnel are usable */
#define PAIR_F_ETCD_OK		0x04	/* its last etcd request succeeded */
/*
 * A handover made before it breaks (not the engine's: pairnet.c sets
 * and reads them): the active asks its standby to make its own SAs with
 * the other site first (PREPARE), and the standby says when they are in
 * (READY).  Only then does the active flag HANDOVER.
 */
#define PAIR_F_PREPARE		0x08
#define PAIR_F_READY		0x10
#define PAIR_F_ALL		0x1f

struct pair_hb {
	uint8_t		role;		/* enum pair_role_state */
	uint8_t		priority;	/* 1..255 */
	uint8_t		flags;		/* PAIR_F_* */
	uint64_t	epoch;		/* last epoch the sender knows of */
	uint64_t	session;	/* sender's random id for this run */
	uint64_t	seq;		/* sender's sequence, from 1 */
	uint64_t	tx_ns;		/* sender's CLOCK_REALTIME (freshness) */
	uint64_t	mono_tx_ns;	/* sender's monotonic send time */
	/* The latest heartbeat the sender received from its partner, echoed
	 * unchanged: both 0 when it has heard nothing yet. */
	uint64_t	echo_seq;
	uint64_t	echo_mono_ns;
};

enum pair_decode_result {
	PAIR_OK = 0,
	PAIR_E_MALFORMED = -1,	/* size, magic, version; or authentic but
				 * inconsistent: priority 0, unknown flags,
				 * an echo time without an echo seq */
	PAIR_E_AUTH = -2,	/* MAC does not verify under any key */
	PAIR_E_ROLE = -3,	/* authentic, but a role this version does
				 * not know (a newer partner?) */
};

/* Fixed wire size of every heartbeat. */
#define PAIR_WIRE_LEN		96
size_t	pair_wire_len(void);
/*
 * Encode and authenticate into buf (>= PAIR_WIRE_LEN bytes, caller's);
 * returns PAIR_WIRE_LEN, or -1 (errno EINVAL) for a heartbeat the decoder
 * would refuse or a short buffer.  p and key are borrowed.
 */
int	pair_encode(const struct pair_hb *p, const uint8_t key[PAIR_KEY_LEN],
	    uint8_t *buf, size_t size);
/*
 * Verify and decode len bytes at buf; enum pair_decode_result.  The tag
 * is tried under key, then under next (NULL: no key rotation under way);
 * *used (may be NULL) says which verified: 0 key, 1 next.  out is
 * caller's and zeroed unless PAIR_OK; everything passed is borrowed.
 */
int	pair_decode(const uint8_t *buf, size_t len,
	    const uint8_t key[PAIR_KEY_LEN], const uint8_t *next,
	    struct pair_hb *out, int *used);
/* "starting", "standby", ...; "?" for a value outside the enum. */
const char *pair_role_name(int role);

/*
 * The heartbeat key of a site's two gateways, from the pre-shared key
 * (or a [pair] key_file's contents): domain separated from the link
 * probes' key and from the IKE secret, and bound to the [site] name, so
 * another site sharing the secret gets another key.  NULL site counts as
 * "".  Nothing is kept; out is caller's memory (wipe it after use).
 */
void	pair_key_derive(const uint8_t *secret, size_t len, const char *site,
	    uint8_t out[PAIR_KEY_LEN]);

/*
 * Anti-replay: the link probes' window (probe_replay_check(), one per
 * partner) over the heartbeat's session, seq and tx_ns, and a heartbeat
 * carrying own_session (one of ours sent back: both gateways hold the
 * key) is refused too.  0 accept (and record), -1 reject,
 * PROBE_REPLAY_SKEW (tx_ns more than PROBE_MAX_SKEW_NS from now_ns, the
 * receiver's CLOCK_REALTIME).  r is caller's, zeroed before first use.
 */
int	pair_replay_check(struct probe_replay *r, const struct pair_hb *p,
	    uint64_t own_session, uint64_t now_ns);

/* ---- the role engine (pair_role.c) --------------------------------------- */

/*
 * All times are milliseconds of the caller's CLOCK_MONOTONIC (the
 * system-wide one: a restarted engine must be able to tell its old
 * heartbeats from its new ones), passed in as `now`; they must not go
 * backwards (an earlier now is taken as the latest one seen).
 */
struct pair_role_conf {
	uint8_t		priority;	/* 1..255; higher: active first */
	struct grgw_addr address;	/* this gateway's own (fixed) */
	struct grgw_addr partner;	/* the other's, for the tie-break on
					 * equal priority (lower address
					 * first) and for messages */
	uint32_t	interval_ms;	/* heartbeats; >= 1 */
	uint32_t	dead_ms;	/* >= 3 x interval_ms */
	uint32_t	guard_ms;	/* >= 2 x interval_ms */
	uint32_t	margin_ms;	/* the time to let go (the margin of
					 * the rules); 1 .. guard_ms -
					 * interval_ms, 0: interval_ms */
	uint64_t	session;	/* this run's random id, nonzero: put
					 * in every heartbeat */
	int		wan_up;		/* the WAN's state at start */
	/*
	 * A holding to carry on (the engine before this one held the
	 * addresses under resume_epoch, with a hold deadline of
	 * resume_until ms, and they are still on the host): the engine
	 * starts active, with that deadline and no other, and hands out no
	 * take.  Ignored unless both are nonzero and resume_until > now.
	 */
	uint64_t	resume_epoch;
	uint64_t	resume_until;
};

/* What an etcd request came to (fence.c's struct fence_result, mapped). */
enum pair_fence_status {
	PAIR_FENCE_OK,			/* a read answered */
	PAIR_FENCE_WON,			/* a claim's put happened */
	PAIR_FENCE_LOST,		/* a claim found another revision */
	PAIR_FENCE_UNREACHABLE,		/* no answer, timed out, or nonsense;
					 * a claim may or may not have been
					 * applied */
};

struct pair_fence {
	int		status;		/* enum pair_fence_status */
	/*
	 * OK and LOST: the key as etcd has it now.  WON: as the claim wrote
	 * it.  A key whose value is not a fence value: found, epoch 0,
	 * holder family 0.
	 */
	int		found;
	uint64_t	mod_revision;	/* 0 when absent */
	uint64_t	epoch;
	struct grgw_addr holder;
};

#define PAIR_REASON_MAX		160

/*
 * What the caller must do now, in this order: release (remove the
 * floating addresses) or take them (handing hold_deadline to the
 * parent first), start the etcd request asked for, then send the
 * heartbeat.  A heartbeat saying "released" is only sent once the
 * addresses are gone.  Every request started gets exactly one result
 * (pair_role_fence_read / _claim), unreachable when it times out.
 */
struct pair_role_out {
	int		send_hb;	/* send hb now */
	struct pair_hb	hb;		/* all filled but tx_ns (the caller's
					 * CLOCK_REALTIME at sending) */
	int		read;		/* start an etcd read of the fence */
	int		claim;		/* start the compare-and-swap: */
	uint64_t	claim_mod_revision;	/* expected (0: absent) */
	uint64_t	claim_epoch;		/* to write, with our address */
	int		take;		/* add the floating addresses */
	int		release;	/* remove them */

	int		role;		/* enum pair_role_state, now */
	uint64_t	epoch;		/* last epoch known */
	uint64_t	hold_deadline;	/* ms: the addresses must be gone by
					 * then (the parent enforces it too);
					 * 0 unless active */
	int		handover;	/* a handover is under way */
	uint64_t	next_call;	/* ms: call pair_role_next() again
					 * by then, or on any input */
	char		reason[PAIR_REASON_MAX]; /* of the last role change */
};

struct pair_role;

/*
 * A new engine, role starting, at now.  NULL with err set for a bad
 * configuration (see struct pair_role_conf), or out of memory.  conf is
 * copied; the engine is the caller's, released by pair_role_free()
 * (accepts NULL).
 */
struct pair_role *pair_role_new(const struct pair_role_conf *conf,
	    uint64_t now, char *err, size_t errlen);
void	pair_role_free(struct pair_role *r);

/*
 * A heartbeat of the partner, decoded, authenticated and passed through
 * pair_replay_check() by the caller, received at now.  0 taken into
 * account, 1 older than one already seen (only counts as a sign of life),
 * -1 refused (NULL, our own session, unknown role).  hb is borrowed.
 */
int	pair_role_heartbeat(struct pair_role *r, uint64_t now,
	    const struct pair_hb *hb);
/*
 * The answer to the read handed out (struct pair_role_out read), started
 * at started_at (ms; not later than the request really left: the engine
 * counts on etcd's linearizable read being no older than that).  0, or
 * -1 (no read handed out and unanswered, started_at after now, NULL):
 * ignored.  res is borrowed.
 */
int	pair_role_fence_read(struct pair_role *r, uint64_t now,
	    uint64_t started_at, const struct pair_fence *res);
/* The answer to the claim handed out; 0, or -1 (none handed out and
 * unanswered, NULL).  res is borrowed. */
int	pair_role_fence_claim(struct pair_role *r, uint64_t now,
	    const struct pair_fence *res);
/* This gateway's WAN (and tunnel) usable or not: a standby whose WAN is
 * down does not claim. */
void	pair_role_wan(struct pair_role *r, int up);
/*
 * A heartbeat at the next pair_role_next(): the caller held one back (a
 * "released" one while its addresses were still on the host) and may now
 * send what it says.
 */
void	pair_role_resend(struct pair_role *r);
/*
 * The operator asks this active gateway to hand the role over.  0, or -1
 * with why not in err ("not active", "no healthy standby: partner's WAN
 * is down", ...).  The active then flags its heartbeats HANDOVER, the
 * standby claims, and the active releases as soon as it sees the won
 * epoch; if nothing happened within dead_ms + guard_ms, it gives up and
 * stays active.
 */
/*
 * How long an active asking its standby for SAs made ready (PREPARE)
 * waits before it hands over the usual way: [pair] handover_wait_ms, or
 * by default twice what a handover may take, and at least
 * PAIR_PREPARE_MIN_MS, past charon's first retransmission (1 s), so that
 * one IKE message lost on the way does not cost the handover its SAs.
 */
#define PAIR_PREPARE_MIN_MS	1500
uint32_t pair_prepare_limit_ms(const struct grgw_pair_conf *c);
/* Whether pair_role_handover() would start one now: 0, or -1 with why
 * not in err; nothing changes. */
int	pair_role_handover_check(struct pair_role *r, uint64_t now, char *err,
	    size_t errlen);
int	pair_role_handover(struct pair_role *r, uint64_t now, char *err,
	    size_t errlen);
/* Advance time-driven rules (also done by pair_role_next()). */
void	pair_role_tick(struct pair_role *r, uint64_t now);
/* Advance, then fill out (caller's) with what to do now; the one-shot
 * actions (send_hb, read, claim, take, release) are handed out once. */
void	pair_role_next(struct pair_role *r, uint64_t now,
	    struct pair_role_out *out);

#endif /* GRGW_PAIR_H */
