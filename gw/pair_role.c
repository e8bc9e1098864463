/*
 * The gateway pair's role engine: which of a site's two gateways holds
 * the floating addresses.  Pure: the caller hands in heartbeats, etcd
 * answers, the WAN's state, the operator's handover and the time
 * (monotonic ms), and reads back what to do (pair.h).
 *
 * Terms.  i = interval_ms, dead = dead_ms, guard = guard_ms, margin =
 * margin_ms (by default 2 i): the time a gateway allows itself, after its
 * hold ends, to have the addresses off (its timer firing late on a busy
 * host, the parent's netlink requests) and for the clocks' drift.
 * The fence is an etcd key holding {"epoch":N,"holder":address}; the
 * epoch only grows.  A heartbeat is *busy* when its role is claiming or
 * active.  Each gateway keeps last_busy: when it last received a busy
 * heartbeat (at start: the start time; also when etcd or a lost claim
 * shows that the partner has just claimed).
 *
 * The rules.
 *
 *  R1  Claims.  A gateway that is starting, standby or released claims
 *      when its WAN is up, either
 *        (a) when now >= last_busy + dead, or, when it hears a partner
 *            that is starting or standby, healthy (WAN_OK, ETCD_OK) and
 *            comes first (higher priority; equal: lower address), when
 *            now >= last_busy + 2 dead + guard (start-up election: the
 *            partner goes first, and we take over if it never does); or
 *        (b) at once when the partner's latest heartbeat is active with
 *            HANDOVER;
 *      and (c) not before a hold-off: when etcd (a read, a lost claim)
 *      shows that the partner claimed although we do not hear it, it is
 *      alive and the link between us is not; we give it dead + guard to
 *      take the role, twice that the next time, up to 32 times, until we
 *      hear it again, so that two gateways that cannot hear each other
 *      do not take the role from each other for ever (nor, with guard >
 *      dead, keep interrupting each other's guard).
 *      It reads the key first (saying standby), checks R1 again when
 *      the answer comes, and then sends the compare-and-swap: expected
 *      mod_revision as read (0: absent), epoch max(read, known) + 1,
 *      itself as holder; from that moment its heartbeats say claiming.
 *      Exactly one claimant of a revision wins.  A lost or failed claim
 *      makes it standby again.
 *  R2  Guard.  The winner takes the addresses (active) once guard ms
 *      have passed since the answer arrived, and only while its hold
 *      deadline (R4) lies ahead.  It skips the rest of the guard when a
 *      fresh heartbeat of the partner says released with the won epoch
 *      (the partner has dropped the addresses: it says released only
 *      after that).  A partner heard saying active under an older
 *      epoch as the claim began (a handover) or since, and nothing else
 *      since, is alive and has not let go yet: its hold has run out by
 *      then (see Safety), but a host that stopped both its processes
 *      for a while (a virtual machine whose CPUs were taken from it)
 *      removes the addresses late, and the kernel's hold alone keeps
 *      them silent meanwhile.  The winner then waits at the guard's
 *      end until the partner says anything else, or has been silent
 *      for dead ms (counted from the guard's end at the earliest: a
 *      winner stopped with it reads the partner's last words after its
 *      own timer), and at most dead + guard.  A partner that died was
 *      last heard before the claim (silent for dead ms), and is not
 *      waited for.
 *  R3  Newer epoch.  Seeing an epoch above its own (a heartbeat, or etcd
 *      with a holder; or its own epoch held by another) makes an active
 *      release at once (role released, heartbeat sent at once) and a
 *      winner in its guard give up.
 *  R4  Hold deadline.  A claimant (from its CAS on) and an active gather
 *      confirmations:
 *        (a) a partner heartbeat that says starting, standby or released,
 *            with an epoch not above ours, echoing one of our heartbeats
 *            sent at T (our clock) while claiming or active without
 *            HANDOVER, in the current run of such heartbeats:
 *            deadline T + dead + guard - margin;
 *        (b) an etcd read started at R that shows our epoch and us as
 *            holder: deadline R + guard - margin.
 *      The hold deadline is the latest of these.  The active releases
 *      when now reaches it (and the parent process removes the addresses
 *      at it by itself, should this process die).  When (a) has not moved
 *      the deadline for 2 i (the partner gone, or echoing the same old
 *      heartbeat because it no longer hears us), or during a handover,
 *      it reads etcd every min(2 i, (guard - margin) / 4) ms, up to
 *      two requests in flight: a read that has not come back when the
 *      next is due does not hold the next back, which goes out beside
 *      it (on a connection of its own).  One slow answer (etcd, the
 *      network, one connection) so costs nothing while the other comes
 *      back in time; each answer counts from its own start R.
 *  R5  Handover.  The operator's request (or, with its WAN down, the
 *      active's own, as soon as the partner qualifies), refused unless
 *      the partner is heard (within dead), standby or released, WAN_OK
 *      and ETCD_OK.  The
 *      active flags HANDOVER, caps its deadline (a) at h + guard - margin
 *      (h: now), and takes no confirmation (a) while the flag is up; the
 *      standby claims (R1b), the active releases on seeing the won epoch
 *      (R3), the standby skips the rest of its guard (R2).  Nothing
 *      within dead + guard: the flag drops, the active stays.
 *  R6  A gateway sends a heartbeat every i ms, and at once when its
 *      role, epoch or flags change; every gateway reads etcd at start
 *      and every PAIR_SLOW_READ_MS (ETCD_OK means something; news of the
 *      epoch arrives even on a quiet pair).
 *  R7  Resume.  An engine started while its gateway still holds the
 *      addresses (the network process restarted: a reload, a crash) is
 *      handed the epoch they are held under and the hold deadline the
 *      parent enforces, and starts active with that deadline as its
 *      only confirmation (kept as an (a) deadline, so that a handover
 *      caps it), reading etcd at once; it extends it only by the
 *      confirmations of R4, from heartbeats of its own run.
 *  R8  Again.  An active that let go at its hold deadline (R4: no
 *      confirmation in time, no newer epoch seen) and is about to claim
 *      (R1) takes the read before the claim as it comes: if it shows
 *      the same epoch with itself as holder, started at R with
 *      R + guard - margin still ahead, it is active again under that
 *      epoch at once, with that (b) deadline, and makes no claim; if
 *      that read is too old (one out since before the deadline), one
 *      fresh read decides the same way; too old again, or anything else
 *      shown, and it claims as in R1.  An etcd that stalls for a moment
 *      so costs the site the stall and one read, not a claim and a
 *      guard.
 *
 * Safety: two gateways never hold the addresses at once, as long as the
 * two monotonic clocks, over dead + guard, drift apart by less than the
 * margin minus the time the caller takes to remove the addresses (with
 * the defaults, i = 20 ms, dead = guard = 100 ms and a margin of 40 ms,
 * a removal within 30 ms leaves 5% for drift, where clocks drift in parts
 * per million), and etcd's reads are linearizable and its
 * compare-and-swap atomic.  The removal's time is the host's: a virtual
 * machine without hardware acceleration, where a process may wait tens
 * of milliseconds for a CPU, needs a larger margin (and guard).
 * Let X hold epoch E and Y take epoch F > E
 * (epochs only grow and each is won once, so any two holdings are of
 * different epochs, and the later one's is the higher).  Y takes at
 * least guard after the answer to its CAS, which came after the CAS
 * committed, and after it started (R1).  X's deadline rests on:
 *   (b) a read started at R showing E: the CAS committed after the read
 *       was served, so after R; Y takes after R + guard, X lets go at
 *       R + guard - margin.
 *   (a) Y's echo of X's heartbeat T, in a heartbeat of Y that was
 *       neither claiming nor active: Y took T in (the latest it had) at
 *       a time >= T, and T, busy, moved its last_busy there; Y's
 *       heartbeat was sent after that and before any CAS of Y (from its
 *       CAS on, Y says claiming); so that CAS was decided by R1a, not
 *       before last_busy + dead >= T + dead (R1 is checked again when
 *       the read before the CAS comes back, so a T taken in during that
 *       read counts too; R1a's other branch and R1c only wait longer),
 *       or by R1b on a HANDOVER heartbeat, which X sends from h > T
 *       only, having capped the (a) deadline at h + guard - margin then.
 *       Y takes after T + dead + guard, or after h + guard.
 *   (b) again (R8): X holding E again, on a read started at R that
 *       shows E held by X, is (b) as it stands: Y's claim of F, if any,
 *       committed after R, and Y takes after R + guard.
 *   The guard skip (R2): Y takes early only after X said released with
 *       F, which X says only with the addresses gone; X takes again only
 *       through a CAS of its own, so with a higher epoch than F (R8
 *       needs etcd to show X holding X's latest epoch: F is Y's).
 *   A restarted engine starts afresh: its old heartbeats fail the echo
 *       check (R4a: a ring of what this run sent), and the old
 *       holding's deadline passes during its dead ms of starting plus
 *       its guard (or is enforced by the parent).  Or it resumes (R7):
 *       it is then the same holding of E, with the deadline the last
 *       run had earned by the rules above (the parent enforces no
 *       later one); what it earns from there on rests on this run's
 *       own heartbeats and reads, as in (a) and (b), and a newer epoch
 *       seen (F > E, claimed while it restarted) ends it by R3.
 * So when Y takes, X's deadline has passed, X has released, or X
 * holds nothing.  Availability is what gives: an active that loses both
 * its partner and etcd releases at its deadline, and nobody takes the
 * role until etcd answers again; with the partner link cut and etcd up,
 * the standby (seeing a silent partner) takes the role, and the two may
 * take it from each other again, ever more rarely (R1c); a
 * configuration with guard so short that a read cannot come back
 * within guard - margin - the read period cannot hold the role on etcd
 * alone.
 */
#include <netinet/in.h>

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grgw.h"
#include "pair.h"

#define NEVER			UINT64_MAX
#define NS_PER_MS		1000000ULL
#define PAIR_SENT_RING		64	/* heartbeats remembered for echoes */
#define PAIR_SLOW_READ_MS	1000
#define PAIR_HOLDOFF_MAX	5	/* R1c: up to 32 x (dead + guard) */
#define PAIR_READS_MAX		2	/* R4: reads in flight at once */

enum pair_op { OP_NONE, OP_READ, OP_CLAIM };

struct pair_sent {
	uint64_t	seq;
	uint64_t	mono_ns;
	int		confirmable;	/* busy, no HANDOVER */
};

struct pair_role {
	struct pair_role_conf c;
	uint64_t	now;		/* latest now seen */
	uint64_t	start;
	int		role;		/* enum pair_role_state */
	uint64_t	epoch;		/* the highest known */
	int		won;		/* claiming: the CAS won */
	int		skip_guard;
	uint64_t	guard_end;
	uint64_t	released_at;
	int		wan_up;
	char		reason[PAIR_REASON_MAX];

	/* etcd */
	int		op;		/* enum pair_op in flight (OP_READ:
					 * reads out or wanted) */
	int		want_read, want_claim;	/* to hand out */
	int		reads_out;	/* handed out, not answered */
	int		read_asked;	/* ever */
	uint64_t	read_asked_at;
	uint64_t	claim_rev, claim_epoch;
	int		claim_pending;	/* a claim waits for its read */
	char		claim_why[PAIR_REASON_MAX];
	int		etcd_ok;
	uint64_t	retry_at;

	/* the partner */
	int		epoch_known;	/* from etcd or the partner */
	int		heard;
	struct pair_hb	p;		/* its latest heartbeat */
	uint64_t	p_rx;
	uint64_t	last_busy;
	uint64_t	holdoff_until;	/* R1c */
	unsigned	holdoffs;	/* since the partner was last heard */
	int		handover_seen;	/* its latest: active, HANDOVER */
	int		p_holds;	/* R2: claiming, it said active under
					 * an older epoch (as the claim began
					 * or since), nothing else since */

	/* our heartbeats */
	uint64_t	seq;
	uint64_t	next_hb;
	int		hb_now;
	struct pair_sent sent[PAIR_SENT_RING];
	int		run;		/* confirmable heartbeats since */
	uint64_t	run_since;

	/* holding */
	uint64_t	hb_deadline, read_deadline;
	int		hb_confirmed;
	uint64_t	last_hb_confirm;
	int		handover;
	uint64_t	handover_at;
	int		do_take, do_release;
	uint64_t	lapsed_epoch;	/* R8: held, let go at the deadline */
	uint64_t	reread_at;	/* R8: a fresh read asked then (0: no) */
};

static int	handover_refusal(const struct pair_role *, uint64_t, char *,
		    size_t);
static void	handover_begin(struct pair_role *, uint64_t);

static uint64_t
add(uint64_t a, uint64_t b)
{
	return a > NEVER - b ? NEVER : a + b;
}

static uint64_t
sub(uint64_t a, uint64_t b)
{
	return a > b ? a - b : 0;
}

static uint64_t
min64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static uint64_t
max64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

static uint64_t
ms_to_ns(uint64_t ms)
{
	return ms > NEVER / NS_PER_MS ? NEVER : ms * NS_PER_MS;
}

static const char *
partner_fmt(const struct pair_role *r, char *buf, size_t size)
{
	return addr_fmt(&r->c.partner, buf, size);
}

/* Lower family, then lower bytes, first: the tie-break of R1a. */
static int
addr_cmp(const struct grgw_addr *a, const struct grgw_addr *b)
{
	int	 n;

	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	n = addr_len(a->family);
	return n > 0 ? memcmp(a->addr, b->addr, (size_t)n) : 0;
}

static void GRGW_PRINTF(3, 4)
set_role(struct pair_role *r, int role, const char *fmt, ...)
{
	va_list	 ap;

	if (role != PAIR_CLAIMING && role != PAIR_ACTIVE)
		r->run = 0;
	if (role != r->role)
		r->hb_now = 1;
	r->role = role;
	if (fmt != NULL) {
		va_start(ap, fmt);
		vsnprintf(r->reason, sizeof(r->reason), fmt, ap);
		va_end(ap);
	}
}

static uint64_t
margin(const struct pair_role *r)
{
	return r->c.margin_ms;
}

static uint64_t
hold_deadline(const struct pair_role *r)
{
	return max64(r->hb_deadline, r->read_deadline);
}

static void
clear_hold(struct pair_role *r)
{
	r->won = 0;
	r->skip_guard = 0;
	r->hb_deadline = 0;
	r->read_deadline = 0;
	r->hb_confirmed = 0;
	r->handover = 0;
}

/* R3, R4: an active lets go (a winner in its guard gives up). */
static void GRGW_PRINTF(3, 4)
step_down(struct pair_role *r, uint64_t now, const char *fmt, ...)
{
	va_list	 ap;
	char	 why[PAIR_REASON_MAX];
	int	 was_active = r->role == PAIR_ACTIVE;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	clear_hold(r);
	if (!was_active) {
		set_role(r, PAIR_STANDBY, "%s", why);
		return;
	}
	if (r->do_take)		/* never handed out: never held */
		r->do_take = 0;
	else
		r->do_release = 1;
	r->released_at = now;
	set_role(r, PAIR_RELEASED, "%s", why);
}

static int
standby_like(const struct pair_role *r)
{
	return r->role == PAIR_STARTING || r->role == PAIR_STANDBY ||
	    r->role == PAIR_RELEASED;
}

static int
holding_or_guard(const struct pair_role *r)
{
	return r->role == PAIR_ACTIVE || (r->role == PAIR_CLAIMING && r->won);
}

static int
partner_fresh(const struct pair_role *r, uint64_t now)
{
	return r->heard && now - r->p_rx < r->c.dead_ms;
}

/*
 * R2: when a winner whose guard has ended may take, as far as the
 * partner goes (0: at once).  A partner heard saying active under an
 * older epoch as the claim began or since is waited for until it says
 * anything else or has been silent for dead ms from the guard's end at
 * the earliest, at most dead + guard past the guard's end.
 */
static uint64_t
partner_let_go(const struct pair_role *r)
{
	uint64_t	 silent, most;

	if (!r->p_holds)
		return 0;
	silent = add(max64(r->p_rx, r->guard_end), r->c.dead_ms);
	most = add(r->guard_end, (uint64_t)r->c.dead_ms + r->c.guard_ms);
	return min64(silent, most);
}

static void
guard_wait_reason(struct pair_role *r)
{
	char	 pa[INET6_ADDRSTRLEN];

	set_role(r, PAIR_CLAIMING, "won epoch %llu; partner %s still says "
	    "active under epoch %llu: waiting for it to let go",
	    (unsigned long long)r->epoch, partner_fmt(r, pa, sizeof(pa)),
	    (unsigned long long)r->p.epoch);
}

/*
 * R1c: the partner has just claimed (etcd says so) although we do not
 * hear it: it is alive, the link between us is not.  Give it the time to
 * take the role, and, each time this happens again before we hear it,
 * twice as long, so that two gateways that cannot hear each other do not
 * take the role from each other for ever.
 */
static void
partner_claimed(struct pair_role *r, uint64_t now)
{
	uint64_t	 wait = (uint64_t)r->c.dead_ms + r->c.guard_ms;

	r->last_busy = max64(r->last_busy, now);
	if (partner_fresh(r, now))
		return;
	wait <<= min64(r->holdoffs, PAIR_HOLDOFF_MAX);
	if (r->holdoffs < PAIR_HOLDOFF_MAX)
		r->holdoffs++;
	r->holdoff_until = max64(r->holdoff_until, add(now, wait));
}

/* R1a: the partner goes first at start-up. */
static int
partner_first(const struct pair_role *r, uint64_t now)
{
	if (!partner_fresh(r, now) || (r->p.role != PAIR_STARTING &&
	    r->p.role != PAIR_STANDBY) ||
	    (r->p.flags & (PAIR_F_WAN_OK | PAIR_F_ETCD_OK)) !=
	    (PAIR_F_WAN_OK | PAIR_F_ETCD_OK))
		return 0;
	if (r->p.priority != r->c.priority)
		return r->p.priority > r->c.priority;
	return addr_cmp(&r->c.partner, &r->c.address) < 0;
}

/*
 * R1: the earliest time a claim may be decided (NEVER: not while the WAN
 * is down), and in why the reason it will be made for.
 */
static uint64_t
claim_time(const struct pair_role *r, uint64_t now, char *why, size_t len)
{
	char		 pa[INET6_ADDRSTRLEN];
	uint64_t	 t;

	if (!r->wan_up)
		return NEVER;
	partner_fmt(r, pa, sizeof(pa));
	if (r->handover_seen && partner_fresh(r, now)) {
		snprintf(why, len, "handover asked by %s", pa);
		return max64(now, r->retry_at);
	}
	t = add(r->last_busy, r->c.dead_ms);
	if (partner_first(r, now)) {
		t = add(t, (uint64_t)r->c.dead_ms + r->c.guard_ms);
		snprintf(why, len, "partner %s (priority %u) did not take "
		    "the role within %llu ms", pa, r->p.priority,
		    (unsigned long long)sub(now, r->last_busy));
	} else if (!r->heard || !partner_fresh(r, now))
		snprintf(why, len, "partner %s silent for %llu ms", pa,
		    (unsigned long long)(r->heard ? now - r->p_rx :
		    now - r->start));
	else
		snprintf(why, len, "no active partner for %llu ms (%s is %s, "
		    "priority %u)", (unsigned long long)sub(now, r->last_busy),
		    pa, pair_role_name(r->p.role), r->p.priority);
	return max64(max64(t, r->retry_at), r->holdoff_until);
}

/* R4: how often the active (or the winner) reads etcd when it needs to. */
static uint64_t
fast_read_period(const struct pair_role *r)
{
	uint64_t	 p = 2ULL * r->c.interval_ms;
	uint64_t	 q = sub(r->c.guard_ms, margin(r)) / 4;

	return q > 0 && q < p ? q : (q == 0 ? 1 : p);
}

static uint64_t
read_due(const struct pair_role *r)
{
	uint64_t	 due, fast;

	if (!r->read_asked)
		return r->start;
	due = add(r->read_asked_at, PAIR_SLOW_READ_MS);
	if (holding_or_guard(r)) {
		fast = add(r->read_asked_at, fast_read_period(r));
		if (!r->handover && r->hb_confirmed)
			fast = max64(fast, add(r->last_hb_confirm,
			    2ULL * r->c.interval_ms + 1));
		due = min64(due, fast);
	}
	return due;
}

/* R4: a read may go out beside one that has not come back. */
static int
read_beside(const struct pair_role *r)
{
	return r->op == OP_READ && !r->want_read &&
	    r->reads_out < PAIR_READS_MAX && !r->claim_pending &&
	    holding_or_guard(r);
}

static void
ask_read(struct pair_role *r, uint64_t now)
{
	if (r->op == OP_NONE)
		r->op = OP_READ;
	r->want_read = 1;
	r->read_asked = 1;
	r->read_asked_at = now;
}

static void
take(struct pair_role *r)
{
	char	 why[PAIR_REASON_MAX];

	snprintf(why, sizeof(why), "%s", r->claim_why);
	r->won = 0;
	r->skip_guard = 0;
	r->lapsed_epoch = 0;
	r->do_take = 1;
	set_role(r, PAIR_ACTIVE, "%s; won epoch %llu", why,
	    (unsigned long long)r->epoch);
}

void
pair_role_tick(struct pair_role *r, uint64_t now)
{
	char	 why[PAIR_REASON_MAX];

	if (r == NULL)
		return;
	now = r->now = max64(now, r->now);
	switch (r->role) {
	case PAIR_ACTIVE:
		if (r->handover && now >= add(r->handover_at,
		    (uint64_t)r->c.dead_ms + r->c.guard_ms)) {
			r->handover = 0;	/* R5: given up */
			r->hb_now = 1;
		}
		/* R5: with its WAN down, as soon as the partner can. */
		if (!r->wan_up && !r->handover &&
		    handover_refusal(r, now, NULL, 0) == 0)
			handover_begin(r, now);
		if (now >= hold_deadline(r)) {
			step_down(r, now, "hold deadline passed: no "
			    "confirmation from the partner for %llu ms, etcd %s",
			    (unsigned long long)(r->hb_confirmed ?
			    now - r->last_hb_confirm : now - r->start),
			    r->etcd_ok ? "not confirming" : "unreachable");
			r->lapsed_epoch = r->epoch;	/* R8 */
			r->reread_at = 0;
		}
		break;
	case PAIR_CLAIMING:
		if (!r->won || hold_deadline(r) <= now)
			break;
		if (!r->skip_guard) {
			if (now < r->guard_end)
				break;
			if (now < partner_let_go(r)) {
				guard_wait_reason(r);
				break;
			}
		}
		take(r);
		break;
	case PAIR_RELEASED:
		if (now >= add(r->released_at,
		    (uint64_t)r->c.dead_ms + r->c.guard_ms))
			set_role(r, PAIR_STANDBY, NULL);
		break;
	case PAIR_STARTING:
		if (now >= add(r->start, r->c.dead_ms))
			set_role(r, PAIR_STANDBY, "started");
		break;
	}
	if (standby_like(r) && !r->claim_pending && r->op != OP_CLAIM &&
	    now >= claim_time(r, now, why, sizeof(why))) {
		r->claim_pending = 1;
		snprintf(r->claim_why, sizeof(r->claim_why), "%s", why);
		if (r->op == OP_NONE)
			ask_read(r, now);
	}
	if (r->op == OP_NONE && now >= read_due(r))
		ask_read(r, now);
	/* R4: a slow read does not hold the next one back. */
	else if (read_beside(r) && now >= read_due(r))
		ask_read(r, now);
}

/* R4a: the time (our ms) of the heartbeat an echo answers, or 0. */
static uint64_t
echo_time(const struct pair_role *r, const struct pair_hb *hb)
{
	const struct pair_sent	*s;

	if (!r->run || hb->echo_seq == 0)
		return 0;
	s = &r->sent[hb->echo_seq % PAIR_SENT_RING];
	if (s->seq != hb->echo_seq || s->mono_ns != hb->echo_mono_ns ||
	    !s->confirmable || s->mono_ns < ms_to_ns(r->run_since))
		return 0;
	return s->mono_ns / NS_PER_MS;
}

static void
newer_epoch(struct pair_role *r, uint64_t now, uint64_t epoch,
    const char *what)
{
	if (r->role == PAIR_ACTIVE && r->handover)
		step_down(r, now, "handover asked by the operator: %s", what);
	else if (holding_or_guard(r))
		step_down(r, now, "%s", what);
	r->epoch = epoch;
	r->hb_now = 1;
}

int
pair_role_heartbeat(struct pair_role *r, uint64_t now,
    const struct pair_hb *hb)
{
	char		 pa[INET6_ADDRSTRLEN], what[PAIR_REASON_MAX];
	uint64_t	 t;
	int		 busy;

	if (r == NULL || hb == NULL || hb->session == r->c.session ||
	    hb->role < PAIR_STARTING || hb->role > PAIR_RELEASED)
		return -1;
	now = r->now = max64(now, r->now);
	busy = hb->role == PAIR_CLAIMING || hb->role == PAIR_ACTIVE;
	/* Any busy heartbeat, even a late one, holds our claims back. */
	if (busy)
		r->last_busy = max64(r->last_busy, now);
	if (r->heard && hb->session == r->p.session && hb->seq <= r->p.seq)
		return 1;
	r->heard = 1;
	r->epoch_known = 1;
	r->holdoffs = 0;
	r->holdoff_until = 0;
	r->p = *hb;
	r->p_rx = now;
	r->handover_seen = hb->role == PAIR_ACTIVE &&
	    (hb->flags & PAIR_F_HANDOVER);
	/* R2: alive, and still holding what we claim. */
	r->p_holds = r->role == PAIR_CLAIMING && hb->role == PAIR_ACTIVE &&
	    hb->epoch < r->claim_epoch;
	partner_fmt(r, pa, sizeof(pa));
	if (hb->epoch > r->epoch) {
		snprintf(what, sizeof(what), "partner %s announced epoch %llu",
		    pa, (unsigned long long)hb->epoch);
		newer_epoch(r, now, hb->epoch, what);
	}
	if (r->role == PAIR_RELEASED && hb->role == PAIR_ACTIVE &&
	    hb->epoch >= r->epoch)
		set_role(r, PAIR_STANDBY, NULL);
	/* R2: the old active has let go of our epoch. */
	if (r->role == PAIR_CLAIMING && r->won &&
	    hb->role == PAIR_RELEASED && hb->epoch == r->epoch)
		r->skip_guard = 1;
	/* R4a */
	if ((r->role == PAIR_CLAIMING || r->role == PAIR_ACTIVE) && !busy &&
	    hb->epoch <= r->epoch && (t = echo_time(r, hb)) != 0) {
		t = sub(add(t, (uint64_t)r->c.dead_ms + r->c.guard_ms),
		    margin(r));
		/* The same echo again (the partner no longer hears us)
		 * confirms nothing new: etcd must. */
		if (t > r->hb_deadline) {
			r->hb_deadline = t;
			r->hb_confirmed = 1;
			r->last_hb_confirm = now;
		}
	}
	return 0;
}

/*
 * What etcd says of the key (a read, or a lost claim): R3 for a newer
 * epoch; 1 when it confirms the epoch we hold or won.
 */
static int
fence_news(struct pair_role *r, uint64_t now, const struct pair_fence *f)
{
	char	 ha[INET6_ADDRSTRLEN], what[PAIR_REASON_MAX];
	int	 mine;

	if (!f->found || f->epoch == 0)
		return 0;
	mine = addr_equal(&f->holder, &r->c.address);
	addr_fmt(&f->holder, ha, sizeof(ha));
	snprintf(what, sizeof(what), "etcd shows epoch %llu held by %s",
	    (unsigned long long)f->epoch, ha);
	if (f->epoch > r->epoch) {
		/* Someone claimed since we last looked: a partner alive. */
		if (!mine && r->epoch_known)
			partner_claimed(r, now);
		newer_epoch(r, now, f->epoch, what);
		return 0;
	}
	if (f->epoch == r->epoch && holding_or_guard(r)) {
		if (mine)
			return 1;
		step_down(r, now, "%s", what);
	}
	return 0;
}

/*
 * R8: after a hold that ran out, a read (started at started_at) that
 * shows the epoch still ours.  1: held again; 0: wait for a fresh read
 * (asked now, or out already); -1: claim.
 */
static int
hold_again(struct pair_role *r, uint64_t now, uint64_t started_at,
    const struct pair_fence *f)
{
	uint64_t	 until;

	if (r->lapsed_epoch == 0 || r->lapsed_epoch != r->epoch ||
	    !f->found || f->epoch != r->epoch ||
	    !addr_equal(&f->holder, &r->c.address)) {
		r->lapsed_epoch = 0;
		return -1;
	}
	until = sub(add(started_at, r->c.guard_ms), margin(r));
	if (until <= now) {
		/* An answer too late to hold on: one fresh read decides. */
		if (r->reread_at == 0) {
			r->reread_at = now;
			ask_read(r, now);
			return 0;
		}
		if (started_at < r->reread_at)
			return 0;
		r->lapsed_epoch = 0;
		return -1;
	}
	r->lapsed_epoch = 0;
	clear_hold(r);
	r->read_deadline = until;
	if (r->do_release)	/* never handed out: never let go */
		r->do_release = 0;
	else
		r->do_take = 1;
	set_role(r, PAIR_ACTIVE, "epoch %llu held again: etcd confirmed it "
	    "%llu ms after the hold ran out", (unsigned long long)r->epoch,
	    (unsigned long long)sub(now, r->released_at));
	return 1;
}

/* The read's epoch is known by now (fence_news): ours is the highest. */
static void
start_claim(struct pair_role *r, const struct pair_fence *f)
{
	if (r->epoch >= (uint64_t)INT64_MAX) {	/* etcd's JSON: int64 */
		set_role(r, PAIR_STANDBY, "cannot claim: epoch %llu is the "
		    "last", (unsigned long long)r->epoch);
		return;
	}
	r->op = OP_CLAIM;
	r->want_claim = 1;
	r->claim_rev = f->found ? f->mod_revision : 0;
	r->claim_epoch = r->epoch + 1;
	/* R2: a partner alive and holding as the claim begins (a handover). */
	r->p_holds = partner_fresh(r, r->now) && r->p.role == PAIR_ACTIVE &&
	    r->p.epoch < r->claim_epoch;
	clear_hold(r);
	set_role(r, PAIR_CLAIMING, "claiming epoch %llu: %s",
	    (unsigned long long)r->claim_epoch, r->claim_why);
}

int
pair_role_fence_read(struct pair_role *r, uint64_t now, uint64_t started_at,
    const struct pair_fence *res)
{
	char	 why[PAIR_REASON_MAX];
	int	 pending;

	/* Only the answer to a read handed out. */
	if (r == NULL || res == NULL || r->reads_out == 0)
		return -1;
	now = r->now = max64(now, r->now);
	if (started_at > now)
		return -1;
	r->reads_out--;
	if (r->op == OP_READ && r->reads_out == 0 && !r->want_read)
		r->op = OP_NONE;
	/* A claim's read is the first answer after it was asked. */
	pending = r->op != OP_CLAIM && r->claim_pending;
	if (pending)
		r->claim_pending = 0;
	if (res->status != PAIR_FENCE_OK) {
		if (r->etcd_ok)
			r->hb_now = 1;
		r->etcd_ok = 0;
		if (pending)
			r->retry_at = add(now, 2ULL * r->c.interval_ms);
		return 0;
	}
	if (!r->etcd_ok)
		r->hb_now = 1;
	r->etcd_ok = 1;
	if (fence_news(r, now, res))
		r->read_deadline = max64(r->read_deadline,
		    sub(add(started_at, r->c.guard_ms), margin(r)));
	r->epoch_known = 1;
	/* R1, checked again: nothing busy was heard during the read. */
	if (pending && standby_like(r) &&
	    now >= claim_time(r, now, why, sizeof(why))) {
		switch (hold_again(r, now, started_at, res)) {
		case 1:
			break;
		case 0:
			r->claim_pending = 1;
			break;
		default:
			start_claim(r, res);
		}
	}
	return 0;
}

int
pair_role_fence_claim(struct pair_role *r, uint64_t now,
    const struct pair_fence *res)
{
	char	 ha[INET6_ADDRSTRLEN];

	if (r == NULL || res == NULL || r->op != OP_CLAIM || r->want_claim)
		return -1;
	now = r->now = max64(now, r->now);
	r->op = r->reads_out > 0 || r->want_read ? OP_READ : OP_NONE;
	switch (res->status) {
	case PAIR_FENCE_WON:
		r->etcd_ok = 1;
		if (r->role != PAIR_CLAIMING || r->epoch > r->claim_epoch) {
			/* A newer epoch came first: ours is history. */
			if (r->role == PAIR_CLAIMING)
				set_role(r, PAIR_STANDBY, "won epoch %llu, but "
				    "epoch %llu is newer",
				    (unsigned long long)r->claim_epoch,
				    (unsigned long long)r->epoch);
			return 0;
		}
		r->epoch = r->claim_epoch;
		r->won = 1;
		r->skip_guard = 0;
		r->guard_end = add(now, r->c.guard_ms);
		r->read_deadline = 0;
		r->hb_now = 1;
		return 0;
	case PAIR_FENCE_LOST:
		r->etcd_ok = 1;
		/* The revision moved since our read: someone claimed (if
		 * the partner, fence_news() holds us back longer). */
		r->last_busy = max64(r->last_busy, now);
		fence_news(r, now, res);
		if (r->role == PAIR_CLAIMING) {
			addr_fmt(&res->holder, ha, sizeof(ha));
			set_role(r, PAIR_STANDBY, "claim lost: etcd shows "
			    "epoch %llu held by %s",
			    (unsigned long long)res->epoch, ha);
		}
		return 0;
	default:
		r->etcd_ok = 0;
		r->retry_at = add(now, 2ULL * r->c.interval_ms);
		if (r->role == PAIR_CLAIMING)
			set_role(r, PAIR_STANDBY, "claim failed: etcd "
			    "unreachable");
		return 0;
	}
}

void
pair_role_wan(struct pair_role *r, int up)
{
	if (r == NULL || r->wan_up == !!up)
		return;
	r->wan_up = !!up;
	r->hb_now = 1;
}

void
pair_role_resend(struct pair_role *r)
{
	if (r != NULL)
		r->hb_now = 1;
}

/* R5: why a handover cannot start now (0: it can). */
static int
handover_refusal(const struct pair_role *r, uint64_t now, char *err,
    size_t errlen)
{
	char		 pa[INET6_ADDRSTRLEN];

	partner_fmt(r, pa, sizeof(pa));
	if (r->role != PAIR_ACTIVE)
		return err_set(err, errlen, "not active (%s)",
		    pair_role_name(r->role));
	if (r->handover)
		return err_set(err, errlen, "a handover is under way");
	if (!partner_fresh(r, now))
		return err_set(err, errlen, "no healthy standby: partner %s "
		    "not heard for %llu ms", pa, (unsigned long long)(r->heard ?
		    now - r->p_rx : now - r->start));
	if (r->p.role != PAIR_STANDBY && r->p.role != PAIR_RELEASED)
		return err_set(err, errlen, "no healthy standby: partner %s "
		    "is %s", pa, pair_role_name(r->p.role));
	if (!(r->p.flags & PAIR_F_WAN_OK))
		return err_set(err, errlen, "no healthy standby: partner %s's "
		    "WAN is down", pa);
	if (!(r->p.flags & PAIR_F_ETCD_OK))
		return err_set(err, errlen, "no healthy standby: partner %s "
		    "does not reach etcd", pa);
	return 0;
}

static void
handover_begin(struct pair_role *r, uint64_t now)
{
	uint64_t	 cap;

	r->handover = 1;
	r->handover_at = now;
	r->run = 0;		/* no confirmation (a) from here on */
	cap = sub(add(now, r->c.guard_ms), margin(r));
	r->hb_deadline = min64(r->hb_deadline, cap);
	r->hb_now = 1;
}

uint32_t
pair_prepare_limit_ms(const struct grgw_pair_conf *c)
{
	uint64_t	 ms = 2 * ((uint64_t)c->dead_ms + c->guard_ms);

	if (c->handover_wait_ms != 0)
		return c->handover_wait_ms;
	if (ms < PAIR_PREPARE_MIN_MS)
		ms = PAIR_PREPARE_MIN_MS;
	return ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
}

int
pair_role_handover_check(struct pair_role *r, uint64_t now, char *err,
    size_t errlen)
{
	if (r == NULL)
		return err_set(err, errlen, "no pair");
	pair_role_tick(r, now);
	return handover_refusal(r, r->now, err, errlen);
}

int
pair_role_handover(struct pair_role *r, uint64_t now, char *err,
    size_t errlen)
{
	if (r == NULL)
		return err_set(err, errlen, "no pair");
	pair_role_tick(r, now);
	now = r->now;
	if (handover_refusal(r, now, err, errlen) == -1)
		return -1;
	handover_begin(r, now);
	return 0;
}

static uint8_t
own_flags(const struct pair_role *r)
{
	uint8_t	 f = 0;

	if (r->handover && r->role == PAIR_ACTIVE)
		f |= PAIR_F_HANDOVER;
	if (r->wan_up)
		f |= PAIR_F_WAN_OK;
	if (r->etcd_ok)
		f |= PAIR_F_ETCD_OK;
	return f;
}

static void
emit_hb(struct pair_role *r, uint64_t now, struct pair_hb *hb)
{
	struct pair_sent	*s;
	int			 confirmable;

	confirmable = (r->role == PAIR_CLAIMING || r->role == PAIR_ACTIVE) &&
	    !r->handover;
	if (confirmable && !r->run) {
		r->run = 1;
		r->run_since = now;
	} else if (!confirmable)
		r->run = 0;
	memset(hb, 0, sizeof(*hb));
	hb->role = (uint8_t)r->role;
	hb->priority = r->c.priority;
	hb->flags = own_flags(r);
	hb->epoch = r->epoch;
	hb->session = r->c.session;
	hb->seq = ++r->seq;
	hb->mono_tx_ns = ms_to_ns(now);
	if (r->heard) {
		hb->echo_seq = r->p.seq;
		hb->echo_mono_ns = r->p.seq != 0 ? r->p.mono_tx_ns : 0;
	}
	s = &r->sent[hb->seq % PAIR_SENT_RING];
	s->seq = hb->seq;
	s->mono_ns = hb->mono_tx_ns;
	s->confirmable = confirmable;
	r->next_hb = add(now, r->c.interval_ms);
	r->hb_now = 0;
}

static uint64_t
next_call(const struct pair_role *r, uint64_t now)
{
	char		 why[PAIR_REASON_MAX];
	uint64_t	 t = r->next_hb;

	switch (r->role) {
	case PAIR_ACTIVE:
		t = min64(t, hold_deadline(r));
		if (r->handover)
			t = min64(t, add(r->handover_at,
			    (uint64_t)r->c.dead_ms + r->c.guard_ms));
		break;
	case PAIR_CLAIMING:
		if (r->won && !r->skip_guard)
			t = min64(t, max64(r->guard_end, partner_let_go(r)));
		break;
	case PAIR_RELEASED:
		t = min64(t, add(r->released_at,
		    (uint64_t)r->c.dead_ms + r->c.guard_ms));
		break;
	case PAIR_STARTING:
		t = min64(t, add(r->start, r->c.dead_ms));
		break;
	}
	if (standby_like(r) && r->op == OP_NONE && !r->claim_pending) {
		t = min64(t, claim_time(r, now, why, sizeof(why)));
		if (r->heard)
			t = min64(t, add(r->p_rx, r->c.dead_ms));
	}
	if (r->op == OP_NONE || read_beside(r))
		t = min64(t, read_due(r));
	return t > now ? t : now + 1;
}

void
pair_role_next(struct pair_role *r, uint64_t now, struct pair_role_out *out)
{
	if (out == NULL)
		return;
	memset(out, 0, sizeof(*out));
	if (r == NULL)
		return;
	pair_role_tick(r, now);
	now = r->now;
	out->release = r->do_release;
	out->take = r->do_take;
	r->do_release = r->do_take = 0;
	if (r->want_read) {
		out->read = 1;
		r->want_read = 0;
		r->reads_out++;
	}
	if (r->want_claim) {
		out->claim = 1;
		out->claim_mod_revision = r->claim_rev;
		out->claim_epoch = r->claim_epoch;
		r->want_claim = 0;
	}
	if (r->hb_now || now >= r->next_hb) {
		emit_hb(r, now, &out->hb);
		out->send_hb = 1;
	}
	out->role = r->role;
	out->epoch = r->epoch;
	out->hold_deadline = r->role == PAIR_ACTIVE ? hold_deadline(r) : 0;
	out->handover = r->handover;
	out->next_call = next_call(r, now);
	snprintf(out->reason, sizeof(out->reason), "%s", r->reason);
}

struct pair_role *
pair_role_new(const struct pair_role_conf *conf, uint64_t now, char *err,
    size_t errlen)
{
	struct pair_role	*r;

	if (conf == NULL) {
		err_set(err, errlen, "no configuration");
		return NULL;
	}
	if (conf->priority == 0 || conf->interval_ms == 0 ||
	    conf->dead_ms < 3ULL * conf->interval_ms ||
	    conf->guard_ms < 2ULL * conf->interval_ms) {
		err_set(err, errlen, "priority must be 1..255, interval_ms "
		    "at least 1, dead_ms at least 3 x interval_ms, guard_ms "
		    "at least 2 x interval_ms");
		return NULL;
	}
	if (conf->margin_ms > conf->guard_ms - conf->interval_ms) {
		err_set(err, errlen, "margin_ms must be at most guard_ms - "
		    "interval_ms");
		return NULL;
	}
	if (addr_len(conf->address.family) == 0 || conf->session == 0) {
		err_set(err, errlen, "no address of our own, or session 0");
		return NULL;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		err_set(err, errlen, "out of memory");
		return NULL;
	}
	r->c = *conf;
	if (r->c.margin_ms == 0)
		r->c.margin_ms = r->c.interval_ms;
	r->now = r->start = r->last_busy = r->next_hb = now;
	r->wan_up = !!conf->wan_up;
	r->role = PAIR_STARTING;
	r->hb_now = 1;
	snprintf(r->reason, sizeof(r->reason), "starting");
	/* R7: a holding carried on across a restart of its engine. */
	if (conf->resume_epoch != 0 && conf->resume_until > now) {
		r->role = PAIR_ACTIVE;
		r->epoch = conf->resume_epoch;
		r->epoch_known = 1;
		r->hb_deadline = conf->resume_until;
		snprintf(r->reason, sizeof(r->reason), "resumed epoch %llu "
		    "after a restart of the role engine",
		    (unsigned long long)r->epoch);
	}
	return r;
}

void
pair_role_free(struct pair_role *r)
{
	free(r);
}
