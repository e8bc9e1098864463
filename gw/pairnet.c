/*
 * The gateway pair in the network process: the heartbeat socket, the role
 * engine (pair_role.c) and its fence in etcd (fence.c), wired together on
 * the process's loop.  What the engine decides goes to the parent as
 * PMSG_ROLE (through the callback), which puts the floating addresses on
 * or off the host (pairhold.c).
 *
 * Heartbeats are UDP between [pair] address and [pair] partner, both on
 * [pair] port, and, with a second path, the same heartbeat between
 * second_address and second_partner too: the partner is heard as long as
 * one path carries them (a cut of one link is no event), and each path's
 * state is logged and reported.  Anything from another address or port,
 * of another size, that does not authenticate or that replays is dropped
 * and counted (the copy that came the other way is only counted).
 *
 * One rule is kept here rather than in the engine: a heartbeat that says
 * "released" is sent only once the parent has said that the addresses
 * are gone (PMSG_PAIR_DROPPED), because the partner may take them the
 * moment it reads one.
 */
#include <sys/socket.h>

#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <sodium.h>

#include "grgw.h"
#include "chan.h"
#include "fence.h"
#include "pair.h"
#include "pairnet.h"
#include "pmsg.h"

#define HB_TOS			0xc0	/* CS6, network control */
#define STATUS_PUSH_MS		1000	/* PMSG_ROLE at least this often */
#define FENCE_READ_MIN_MS	200
#define FENCE_CLAIM_MIN_MS	1000

/* A path the heartbeats take: [pair] address -> partner, and the second. */
struct pair_path {
	struct pairnet		*pn;
	int			 n;		/* 1, 2 */
	struct grgw_addr	 local, remote;
	int			 fd;
	struct event		*ev_read;
	struct sockaddr_storage	 to;
	socklen_t		 to_len;
	uint64_t		 heard_at;	/* ms; the start at first */
	int			 up;		/* as last logged */
};

/* Recently accepted heartbeats, to tell the copy of one that came the
 * other way from a replay. */
#define SEEN_RING		16

struct pairnet {
	struct event_base	*base;
	const struct grgw_config *cfg;
	pairnet_cb		 cb;
	void			*arg;

	struct pair_path	 paths[PAIRNET_PATHS];
	int			 npaths;
	struct event		*timer;
	struct {
		uint64_t	 session, seq;
		int		 path;
	}			 seen[SEEN_RING];
	unsigned		 seen_next;

	uint8_t			*keys;		/* sodium_malloc'ed: key, next */
	int			 have_next;

	struct pair_role	*role;
	struct probe_replay	 replay;
	uint64_t		 session;
	/*
	 * Two connections to etcd: a read that has not come back does not
	 * hold the next one back (R4 in pair_role.c).  A claim takes
	 * whichever is free.
	 */
	struct pn_fence {
		struct pairnet	*pn;
		struct fence	*f;
		uint64_t	 started;	/* its read's, ms */
	}			 fc[PAIRNET_FENCES];
	int			 etcd_ok;

	/* What the parent was told, and what it said back. */
	struct pmsg_role	 told;
	uint64_t		 told_at;	/* ms */
	uint64_t		 told_deadline;
	int			 dropped;	/* addresses gone (or never had) */
	int			 handing_over;	/* as the engine last said */
	int			 wan_down;
	uint64_t		 takeovers;

	/* The partner, as heard. */
	int			 heard;
	uint64_t		 heard_at;	/* ms */
	uint8_t			 partner_role;
	uint8_t			 partner_flags;

	/*
	 * A handover made before it breaks (PAIR_F_PREPARE in pair.h).
	 * Active: asking since prep_since, then whether the partner said
	 * READY before the handover began, and meanwhile waiting since
	 * closing_since for the parent to have closed this gateway's SAs
	 * (closed: it said so).  Standby: asked, and whether the parent
	 * says this gateway's SAs are in.
	 */
	int			 prep_asking;
	uint64_t		 prep_since;
	int			 prep_partner_ready;
	int			 closing;
	int			 closed;
	uint64_t		 closing_since;
	int			 prep_asked;
	int			 prep_ready;

	struct pairnet_stats	 st;
};

static void	step(struct pairnet *);

static uint64_t
real_ns(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void
to_sockaddr(const struct grgw_addr *a, uint16_t port,
    struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in	*s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6	*s6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (a->family == AF_INET) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		memcpy(&s4->sin_addr, a->addr, 4);
		*len = sizeof(*s4);
	} else {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		memcpy(&s6->sin6_addr, a->addr, 16);
		*len = sizeof(*s6);
	}
}

/* 1 if from is the partner's address on this path and the pair's port. */
static int
from_partner(const struct pair_path *pp, const struct sockaddr_storage *from)
{
	const struct sockaddr_in	*a = (const struct sockaddr_in *)from;
	const struct sockaddr_in6	*b = (const struct sockaddr_in6 *)from;
	const struct sockaddr_in	*ta = (const struct sockaddr_in *)&pp->to;
	const struct sockaddr_in6	*tb = (const struct sockaddr_in6 *)&pp->to;

	if (from->ss_family != pp->to.ss_family)
		return 0;
	if (from->ss_family == AF_INET)
		return a->sin_port == ta->sin_port &&
		    a->sin_addr.s_addr == ta->sin_addr.s_addr;
	return b->sin6_port == tb->sin6_port &&
	    memcmp(&b->sin6_addr, &tb->sin6_addr, 16) == 0;
}

/* ---- to the parent ---------------------------------------------------------- */

/* Bit n - 1 for each path n the partner was heard on within dead_ms;
 * what changed since the last call is logged. */
static uint8_t
paths_seen(struct pairnet *pn, uint64_t now)
{
	struct pair_path	*pp;
	char			 a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];
	uint8_t			 bits = 0;
	int			 i, up;

	for (i = 0; i < pn->npaths; i++) {
		pp = &pn->paths[i];
		up = now - pp->heard_at < pn->cfg->pair.dead_ms;
		if (up)
			bits |= (uint8_t)(1U << i);
		if (up == pp->up)
			continue;
		pp->up = up;
		addr_fmt(&pp->local, a, sizeof(a));
		addr_fmt(&pp->remote, b, sizeof(b));
		if (up)
			log_info("pair: heartbeats arrive on path %d (%s -> "
			    "%s)", pp->n, a, b);
		else
			log_warnx("pair: no heartbeat on path %d (%s -> %s) "
			    "for %u ms", pp->n, a, b,
			    (unsigned)pn->cfg->pair.dead_ms);
	}
	return bits;
}

static void
tell(struct pairnet *pn, const struct pair_role_out *out, uint64_t now)
{
	struct pmsg_role	 ro;
	uint64_t		 age;

	memset(&ro, 0, sizeof(ro));
	ro.role = (uint8_t)out->role;
	ro.epoch = out->epoch;
	if (out->role == PAIR_ACTIVE && out->hold_deadline > now)
		ro.hold_until_ms = out->hold_deadline;
	ro.partner_role = pn->heard ? pn->partner_role : 0;
	age = pn->heard ? now - pn->heard_at : UINT32_MAX;
	ro.partner_age_ms = age > UINT32_MAX ? UINT32_MAX : (uint32_t)age;
	ro.partner_seen = pn->heard && age < pn->cfg->pair.dead_ms;
	ro.etcd_ok = (uint8_t)pn->etcd_ok;
	ro.paths_seen = paths_seen(pn, now);
	ro.takeovers = pn->takeovers;
	if (pn->prep_asked && out->role != PAIR_ACTIVE)
		ro.prep |= PMSG_PREP_ASKED;
	if (pn->prep_partner_ready)
		ro.prep |= PMSG_PREP_PARTNER_READY;
	snprintf(ro.reason, sizeof(ro.reason), "%s", out->reason);
	/*
	 * Always when active and the hold moved (the parent's own timer
	 * follows it), on any change, and now and then for the status.
	 */
	if (ro.role == pn->told.role && ro.epoch == pn->told.epoch &&
	    ro.partner_seen == pn->told.partner_seen &&
	    ro.partner_role == pn->told.partner_role &&
	    ro.etcd_ok == pn->told.etcd_ok &&
	    ro.paths_seen == pn->told.paths_seen &&
	    ro.prep == pn->told.prep &&
	    strcmp(ro.reason, pn->told.reason) == 0 &&
	    (ro.role != PAIR_ACTIVE || out->hold_deadline ==
	    pn->told_deadline) && now - pn->told_at < STATUS_PUSH_MS)
		return;
	pn->told = ro;
	pn->told_at = now;
	pn->told_deadline = out->hold_deadline;
	pn->cb(&ro, pn->arg);
}

/* ---- etcd ------------------------------------------------------------------ */

static void
fence_to_pair(const struct fence_result *r, int claim, struct pair_fence *f)
{
	memset(f, 0, sizeof(*f));
	if (!r->completed) {
		f->status = PAIR_FENCE_UNREACHABLE;
		return;
	}
	f->status = !claim ? PAIR_FENCE_OK : r->won ? PAIR_FENCE_WON :
	    PAIR_FENCE_LOST;
	f->found = r->found;
	f->mod_revision = r->mod_revision > 0 ? (uint64_t)r->mod_revision : 0;
	if (r->value_ok) {
		f->epoch = r->epoch;
		f->holder = r->holder;
	}
}

static void
fence_answer(const struct fence_result *r, struct pn_fence *fc, int claim)
{
	struct pairnet		*pn = fc->pn;
	struct pair_fence	 f;

	if (!r->completed && pn->etcd_ok)
		log_warnx("pair: etcd %s failed: %s", claim ? "claim" : "read",
		    r->reason);
	else if (r->completed && !pn->etcd_ok)
		log_info("pair: etcd answers again");
	pn->etcd_ok = r->completed;
	fence_to_pair(r, claim, &f);
	if (claim) {
		pn->st.claims_done++;
		pair_role_fence_claim(pn->role, chan_mono_ms(), &f);
	} else {
		pn->st.reads_done++;
		pair_role_fence_read(pn->role, chan_mono_ms(), fc->started,
		    &f);
	}
	step(pn);
}

/* A connection with nothing in flight, or NULL. */
static struct pn_fence *
fence_free_one(struct pairnet *pn)
{
	int	 i;

	for (i = 0; i < PAIRNET_FENCES; i++)
		if (!fence_busy(pn->fc[i].f))
			return &pn->fc[i];
	return NULL;
}

static void
fence_read_cb(const struct fence_result *r, void *arg)
{
	fence_answer(r, arg, 0);
}

static void
fence_claim_cb(const struct fence_result *r, void *arg)
{
	fence_answer(r, arg, 1);
}

/* ---- heartbeats --------------------------------------------------------------- */

/* The same heartbeat on every path (each counts once sent). */
static void
send_hb(struct pairnet *pn, struct pair_hb *hb)
{
	struct pair_path	*pp;
	uint8_t			 buf[PAIR_WIRE_LEN];
	char			 a[INET6_ADDRSTRLEN];
	int			 i, sent = 0;

	hb->tx_ns = real_ns();
	if (pair_encode(hb, pn->keys, buf, sizeof(buf)) != PAIR_WIRE_LEN)
		return;
	for (i = 0; i < pn->npaths; i++) {
		pp = &pn->paths[i];
		if (sendto(pp->fd, buf, sizeof(buf), 0,
		    (struct sockaddr *)&pp->to, pp->to_len) != -1) {
			sent = 1;
			continue;
		}
		if (pn->st.send_errors++ == 0)
			log_warn("pair: heartbeat to the partner at %s",
			    addr_fmt(&pp->remote, a, sizeof(a)));
	}
	if (sent)
		pn->st.sent++;
}

/* A replay-window refusal that is the copy of a heartbeat taken in on
 * the other path. */
static int
seen_elsewhere(const struct pairnet *pn, const struct pair_hb *hb, int path)
{
	int	 i;

	for (i = 0; i < SEEN_RING; i++)
		if (pn->seen[i].session == hb->session &&
		    pn->seen[i].seq == hb->seq && pn->seen[i].path != path)
			return 1;
	return 0;
}

static void
on_read(evutil_socket_t fd, short ev, void *arg)
{
	struct pair_path	*pp = arg;
	struct pairnet		*pn = pp->pn;
	struct sockaddr_storage	 from;
	socklen_t		 fromlen;
	struct pair_hb		 hb;
	uint8_t			 buf[PAIR_WIRE_LEN + 1];
	ssize_t			 n;
	int			 got = 0, rc;

	(void)ev;
	for (;;) {
		fromlen = sizeof(from);
		n = recvfrom(fd, buf, sizeof(buf), 0,
		    (struct sockaddr *)&from, &fromlen);
		if (n == -1)
			break;
		if (!from_partner(pp, &from)) {
			pn->st.foreign++;
			continue;
		}
		rc = pair_decode(buf, (size_t)n, pn->keys,
		    pn->have_next ? pn->keys + PAIR_KEY_LEN : NULL, &hb, NULL);
		if (rc == PAIR_E_AUTH) {
			pn->st.rejected_auth++;
			continue;
		}
		if (rc != PAIR_OK) {
			pn->st.rejected_malformed++;
			continue;
		}
		if (pair_replay_check(&pn->replay, &hb, pn->session,
		    real_ns()) != 0) {
			/* The copy of a fresh one: this path works too. */
			if (seen_elsewhere(pn, &hb, pp->n)) {
				pn->st.duplicates++;
				pp->heard_at = chan_mono_ms();
			} else
				pn->st.rejected_replay++;
			continue;
		}
		pp->heard_at = chan_mono_ms();
		pn->seen[pn->seen_next].session = hb.session;
		pn->seen[pn->seen_next].seq = hb.seq;
		pn->seen[pn->seen_next].path = pp->n;
		pn->seen_next = (pn->seen_next + 1) % SEEN_RING;
		pn->st.received++;
		pn->heard = 1;
		pn->heard_at = chan_mono_ms();
		pn->partner_role = hb.role;
		pn->partner_flags = hb.flags;
		pair_role_heartbeat(pn->role, pn->heard_at, &hb);
		got = 1;
	}
	if (got)
		step(pn);
}

/* ---- the engine's turn --------------------------------------------------------- */

static void
timer_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	step(arg);
}

static unsigned
at_least(unsigned a, unsigned b)
{
	return a > b ? a : b;
}

/* How long an active waits for its partner's SAs before it hands over
 * the usual way (one IKE exchange after the move). */
static uint64_t
prep_limit(const struct pairnet *pn)
{
	return pair_prepare_limit_ms(&pn->cfg->pair);
}

/* The partner's latest heartbeat, within dead_ms, carries flag f. */
static int
partner_says(const struct pairnet *pn, uint64_t now, uint8_t f)
{
	return pn->heard && now - pn->heard_at < pn->cfg->pair.dead_ms &&
	    (pn->partner_flags & f) != 0;
}

static void
prep_handover(struct pairnet *pn, uint64_t now)
{
	char	 err[PAIR_REASON_MAX];

	if (pair_role_handover(pn->role, now, err, sizeof(err)) == -1) {
		pn->prep_partner_ready = 0;
		log_warnx("pair: handover refused: %s", err);
	}
}

/*
 * A handover made before it breaks.  Active, asking: once the partner
 * says READY, the parent closes this gateway's SAs and drains what the
 * nodes send here to the partner (told by PARTNER_READY, it answers
 * PMSG_PAIR_CLOSED), then the role engine's handover begins: the DELETEs
 * leave while the role is held as ever, not in the engine's last guard
 * (a parent late on a slow host was past the hold's end there, and no
 * DELETE got out).  No READY within prep_limit(): the handover begins
 * the usual way.  Standby: whether the active partner asks (the parent
 * makes the SAs ready, and says so with PMSG_PAIR_READY).
 */
static void
prep_step(struct pairnet *pn, uint64_t now)
{
	int	 ready, asked;

	if (pn->prep_asking) {
		ready = partner_says(pn, now, PAIR_F_READY);
		if (ready || now >= pn->prep_since + prep_limit(pn)) {
			pn->prep_asking = 0;
			pn->prep_partner_ready = ready;
			if (ready) {
				log_info("pair: the partner's SAs are in "
				    "(%llu ms): this gateway's go first",
				    (unsigned long long)(now - pn->prep_since));
				pn->closing = 1;
				pn->closed = 0;
				pn->closing_since = now;
			} else {
				log_info("pair: the partner made no SAs ready "
				    "within %llu ms: handing the role over, "
				    "with one IKE exchange after the move",
				    (unsigned long long)prep_limit(pn));
				prep_handover(pn, now);
			}
		}
	}
	/* As long again for the parent's word, at most. */
	if (pn->closing && (pn->closed ||
	    now >= pn->closing_since + prep_limit(pn))) {
		pn->closing = 0;
		if (pn->closed)
			log_info("pair: this gateway's SAs are closed "
			    "(%llu ms): handing the role over",
			    (unsigned long long)(now - pn->closing_since));
		else
			log_warnx("pair: this gateway's SAs not closed within "
			    "%llu ms: handing the role over",
			    (unsigned long long)prep_limit(pn));
		prep_handover(pn, now);
	}
	asked = pn->partner_role == PAIR_ACTIVE &&
	    partner_says(pn, now, PAIR_F_PREPARE);
	if (asked && !pn->prep_asked)
		log_info("pair: the active partner asks for this gateway's "
		    "SAs, before it hands the role over");
	pn->prep_asked = asked;
}

static void
step(struct pairnet *pn)
{
	struct pair_role_out	 out;
	struct pn_fence		*fc;
	struct timeval		 tv;
	uint64_t		 now = chan_mono_ms(), wait;

	prep_step(pn, now);
	pair_role_next(pn->role, now, &out);
	/* Active again, or not: the last handover's word is spent. */
	if (out.role != PAIR_ACTIVE && out.role != PAIR_RELEASED)
		pn->prep_partner_ready = 0;
	if (out.handover && !pn->handing_over && pn->wan_down)
		log_info("pair: the WAN is down: handing the role over to the "
		    "partner");
	/* A handover given up (still active): its word is spent too. */
	if (pn->handing_over && !out.handover && out.role == PAIR_ACTIVE)
		pn->prep_partner_ready = 0;
	pn->handing_over = out.handover;
	if (out.take) {
		pn->takeovers++;
		pn->dropped = 0;
	}
	if (out.release)
		pn->dropped = 0;
	tell(pn, &out, now);
	if (out.read) {
		fc = fence_free_one(pn);
		if (fc != NULL)
			fc->started = now;
		if (fc == NULL || fence_read(fc->f, at_least(2 *
		    pn->cfg->pair.guard_ms, FENCE_READ_MIN_MS), fence_read_cb,
		    fc) == -1) {
			struct pair_fence f = { .status =
			    PAIR_FENCE_UNREACHABLE };
			pair_role_fence_read(pn->role, now, now, &f);
		} else
			pn->st.reads++;
	}
	if (out.claim) {
		struct grgw_addr me = pn->cfg->pair.address;

		fc = fence_free_one(pn);
		if (fc == NULL || fence_claim(fc->f,
		    (int64_t)out.claim_mod_revision, out.claim_epoch, &me,
		    at_least(4 * pn->cfg->pair.guard_ms, FENCE_CLAIM_MIN_MS),
		    fence_claim_cb, fc) == -1) {
			struct pair_fence f = { .status =
			    PAIR_FENCE_UNREACHABLE };
			pair_role_fence_claim(pn->role, now, &f);
		} else
			pn->st.claims++;
	}
	/* "released" only once the addresses are gone (see the top). */
	if (out.send_hb && !(out.role == PAIR_RELEASED && !pn->dropped)) {
		if (pn->prep_asking && out.role == PAIR_ACTIVE)
			out.hb.flags |= PAIR_F_PREPARE;
		if (pn->prep_ready && out.role != PAIR_ACTIVE)
			out.hb.flags |= PAIR_F_READY;
		send_hb(pn, &out.hb);
	}
	wait = out.next_call > now ? out.next_call - now : 1;
	if (pn->prep_asking && pn->prep_since + prep_limit(pn) > now &&
	    pn->prep_since + prep_limit(pn) - now < wait)
		wait = pn->prep_since + prep_limit(pn) - now;
	if (wait > STATUS_PUSH_MS)
		wait = STATUS_PUSH_MS;
	tv.tv_sec = (time_t)(wait / 1000);
	tv.tv_usec = (suseconds_t)(wait % 1000) * 1000;
	evtimer_add(pn->timer, &tv);
}

/* ---- the interface --------------------------------------------------------------- */

/* Bind the path's local address and the pair's port. */
static int
path_open(struct pairnet *pn, int n, const struct grgw_addr *local,
    const struct grgw_addr *remote, char *err, size_t errlen)
{
	struct pair_path	*pp = &pn->paths[n - 1];
	struct sockaddr_storage	 me;
	socklen_t		 me_len;
	char			 buf[INET6_ADDRSTRLEN];
	uint16_t		 port = (uint16_t)pn->cfg->pair.port;
	int			 tos = HB_TOS, on = 1;

	pp->pn = pn;
	pp->n = n;
	pp->local = *local;
	pp->remote = *remote;
	pp->up = 1;		/* until dead_ms without a word */
	pp->heard_at = chan_mono_ms();
	pn->npaths = n;
	to_sockaddr(remote, port, &pp->to, &pp->to_len);
	to_sockaddr(local, port, &me, &me_len);
	pp->fd = socket(me.ss_family, SOCK_DGRAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, IPPROTO_UDP);
	if (pp->fd == -1)
		return err_set(err, errlen, "pair: socket: %s",
		    strerror(errno));
	if (me.ss_family == AF_INET6) {
		setsockopt(pp->fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
		setsockopt(pp->fd, IPPROTO_IPV6, IPV6_TCLASS, &tos,
		    sizeof(tos));
	} else
		setsockopt(pp->fd, IPPROTO_IP, IP_TOS, &tos, sizeof(tos));
	if (bind(pp->fd, (struct sockaddr *)&me, me_len) == -1)
		return err_set(err, errlen, "pair: cannot bind %s port %u: %s",
		    addr_fmt(local, buf, sizeof(buf)), (unsigned)port,
		    strerror(errno));
	pp->ev_read = event_new(pn->base, pp->fd, EV_READ | EV_PERSIST,
	    on_read, pp);
	if (pp->ev_read == NULL || event_add(pp->ev_read, NULL) == -1)
		return err_set(err, errlen, "out of memory");
	return 0;
}

struct pairnet *
pairnet_new(struct event_base *base, const struct grgw_config *cfg,
    const uint8_t *key, const uint8_t *next, uint64_t resume_epoch,
    uint64_t resume_until, pairnet_cb cb, void *arg, char *err,
    size_t errlen)
{
	struct pairnet		*pn;
	struct pair_role_conf	 rc;
	char			 buf[INET6_ADDRSTRLEN];
	uint64_t		 now;
	int			 i;

	if ((pn = calloc(1, sizeof(*pn))) == NULL) {
		err_set(err, errlen, "out of memory");
		return NULL;
	}
	pn->base = base;
	pn->cfg = cfg;
	pn->cb = cb;
	pn->arg = arg;
	for (i = 0; i < PAIRNET_PATHS; i++)
		pn->paths[i].fd = -1;
	pn->dropped = 1;
	if ((pn->keys = sodium_malloc(2 * PAIR_KEY_LEN)) == NULL) {
		err_set(err, errlen, "out of secure memory");
		goto fail;
	}
	pairnet_set_keys(pn, key, next);
	randombytes_buf(&pn->session, sizeof(pn->session));
	pn->session |= 1;

	if (path_open(pn, 1, &cfg->pair.address, &cfg->pair.partner, err,
	    errlen) == -1 || (cfg->pair.second_address.family != 0 &&
	    path_open(pn, 2, &cfg->pair.second_address,
	    &cfg->pair.second_partner, err, errlen) == -1))
		goto fail;
	for (i = 0; i < PAIRNET_FENCES; i++) {
		pn->fc[i].pn = pn;
		if ((pn->fc[i].f = fence_new(base, cfg->feeds.etcd_endpoint,
		    cfg->pair.etcd_key, err, errlen)) == NULL)
			goto fail;
	}

	memset(&rc, 0, sizeof(rc));
	rc.priority = (uint8_t)cfg->pair.priority;
	rc.address = cfg->pair.address;
	rc.partner = cfg->pair.partner;
	rc.interval_ms = cfg->pair.interval_ms;
	rc.dead_ms = cfg->pair.dead_ms;
	rc.guard_ms = cfg->pair.guard_ms;
	rc.margin_ms = cfg->pair.margin_ms;
	rc.session = pn->session;
	rc.wan_up = 1;		/* until the parent says otherwise */
	rc.resume_epoch = resume_epoch;
	rc.resume_until = resume_until;
	now = chan_mono_ms();
	if ((pn->role = pair_role_new(&rc, now, err, errlen)) == NULL)
		goto fail;
	if (resume_epoch != 0 && resume_until > now) {
		/* The engine resumes (R7): the addresses are still here. */
		pn->dropped = 0;
		log_info("pair: active, resuming epoch %llu (the hold runs "
		    "%llu ms more unless confirmed)",
		    (unsigned long long)resume_epoch,
		    (unsigned long long)(resume_until - now));
	}
	if ((pn->timer = evtimer_new(base, timer_cb, pn)) == NULL) {
		err_set(err, errlen, "out of memory");
		goto fail;
	}
	{
		char	 pbuf[INET6_ADDRSTRLEN], second[2 * INET6_ADDRSTRLEN +
			     32] = "";
		char	 sa[INET6_ADDRSTRLEN], sp[INET6_ADDRSTRLEN];

		if (pn->npaths > 1)
			snprintf(second, sizeof(second), " and from %s to %s",
			    addr_fmt(&cfg->pair.second_address, sa,
			    sizeof(sa)), addr_fmt(&cfg->pair.second_partner,
			    sp, sizeof(sp)));
		log_info("pair: heartbeats from %s to %s%s, port %u, every %u "
		    "ms; dead %u ms, guard %u ms, margin %u ms; priority %u; "
		    "a handover waits up to %llu ms for the partner's SAs",
		    addr_fmt(&cfg->pair.address, buf, sizeof(buf)),
		    addr_fmt(&cfg->pair.partner, pbuf, sizeof(pbuf)), second,
		    (unsigned)cfg->pair.port, (unsigned)cfg->pair.interval_ms,
		    (unsigned)cfg->pair.dead_ms, (unsigned)cfg->pair.guard_ms,
		    (unsigned)cfg->pair.margin_ms,
		    (unsigned)cfg->pair.priority,
		    (unsigned long long)prep_limit(pn));
	}
	step(pn);
	return pn;
fail:
	pairnet_free(pn);
	return NULL;
}

void
pairnet_set_keys(struct pairnet *pn, const uint8_t *key, const uint8_t *next)
{
	memcpy(pn->keys, key, PAIR_KEY_LEN);
	pn->have_next = next != NULL;
	if (next != NULL)
		memcpy(pn->keys + PAIR_KEY_LEN, next, PAIR_KEY_LEN);
	else
		sodium_memzero(pn->keys + PAIR_KEY_LEN, PAIR_KEY_LEN);
}

void
pairnet_cmd(struct pairnet *pn, enum pmsg_pair_cmd cmd)
{
	char	 err[PAIR_REASON_MAX];

	switch (cmd) {
	case PMSG_PAIR_HANDOVER:
		/* Asked first for the partner's SAs (prep_step()). */
		if (pair_role_handover_check(pn->role, chan_mono_ms(), err,
		    sizeof(err)) == -1)
			log_warnx("pair: handover refused: %s", err);
		else if (!pn->prep_asking) {
			log_info("pair: handing the role over to the partner; "
			    "asking for its SAs first");
			pn->prep_asking = 1;
			pn->prep_since = chan_mono_ms();
			pn->prep_partner_ready = 0;
			pn->closing = 0;
			pair_role_resend(pn->role);
		}
		break;
	case PMSG_PAIR_READY:
	case PMSG_PAIR_UNREADY:
		if (pn->prep_ready != (cmd == PMSG_PAIR_READY))
			pair_role_resend(pn->role);
		pn->prep_ready = cmd == PMSG_PAIR_READY;
		break;
	case PMSG_PAIR_WAN_UP:
	case PMSG_PAIR_WAN_DOWN:
		pair_role_wan(pn->role, cmd == PMSG_PAIR_WAN_UP);
		pn->wan_down = cmd == PMSG_PAIR_WAN_DOWN;
		break;
	case PMSG_PAIR_CLOSED:
		pn->closed = pn->closing;
		break;
	case PMSG_PAIR_HELD:
		break;
	case PMSG_PAIR_DROPPED:
		/* Now the "released" held back may go: the partner may
		 * skip the rest of its guard on it. */
		if (!pn->dropped)
			pair_role_resend(pn->role);
		pn->dropped = 1;
		break;
	}
	step(pn);
}

void
pairnet_stats(const struct pairnet *pn, struct pairnet_stats *out)
{
	*out = pn->st;
}

void
pairnet_free(struct pairnet *pn)
{
	int	 i;

	if (pn == NULL)
		return;
	for (i = 0; i < PAIRNET_PATHS; i++) {
		if (pn->paths[i].ev_read != NULL)
			event_free(pn->paths[i].ev_read);
		if (pn->paths[i].fd != -1)
			close(pn->paths[i].fd);
	}
	if (pn->timer != NULL)
		event_free(pn->timer);
	for (i = 0; i < PAIRNET_FENCES; i++)
		fence_free(pn->fc[i].f);
	pair_role_free(pn->role);
	if (pn->keys != NULL)
		sodium_free(pn->keys);
	free(pn);
}
