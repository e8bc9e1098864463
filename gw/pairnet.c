/*
 * The gateway pair in the network process: the heartbeat socket, the role
 * engine (pair_role.c) and its fence in etcd (fence.c), wired together on
 * the process's loop.  What the engine decides goes to the parent as
 * PMSG_ROLE (through the callback), which puts the floating addresses on
 * or off the host (pairhold.c).
 *
 * Heartbeats are UDP between [pair] address and [pair] partner, both on
 * [pair] port; anything from another address or port, of another size,
 * that does not authenticate or that replays is dropped and counted.
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
#include "fence.h"
#include "pair.h"
#include "pairnet.h"
#include "pmsg.h"

#define HB_TOS			0xc0	/* CS6, network control */
#define STATUS_PUSH_MS		1000	/* PMSG_ROLE at least this often */
#define FENCE_READ_MIN_MS	200
#define FENCE_CLAIM_MIN_MS	1000

struct pairnet {
	struct event_base	*base;
	const struct grgw_config *cfg;
	pairnet_cb		 cb;
	void			*arg;

	int			 fd;
	struct event		*ev_read;
	struct event		*timer;
	struct sockaddr_storage	 to;
	socklen_t		 to_len;

	uint8_t			*keys;		/* sodium_malloc'ed: key, next */
	int			 have_next;

	struct pair_role	*role;
	struct probe_replay	 replay;
	uint64_t		 session;
	struct fence		*fence;
	uint64_t		 read_started;
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

	struct pairnet_stats	 st;
};

static void	step(struct pairnet *);

static uint64_t
mono_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

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

/* 1 if from is the partner's address and the pair's port. */
static int
from_partner(const struct pairnet *pn, const struct sockaddr_storage *from)
{
	const struct sockaddr_in	*a = (const struct sockaddr_in *)from;
	const struct sockaddr_in6	*b = (const struct sockaddr_in6 *)from;
	const struct sockaddr_in	*ta = (const struct sockaddr_in *)&pn->to;
	const struct sockaddr_in6	*tb = (const struct sockaddr_in6 *)&pn->to;

	if (from->ss_family != pn->to.ss_family)
		return 0;
	if (from->ss_family == AF_INET)
		return a->sin_port == ta->sin_port &&
		    a->sin_addr.s_addr == ta->sin_addr.s_addr;
	return b->sin6_port == tb->sin6_port &&
	    memcmp(&b->sin6_addr, &tb->sin6_addr, 16) == 0;
}

/* ---- to the parent ---------------------------------------------------------- */

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
	ro.takeovers = pn->takeovers;
	snprintf(ro.reason, sizeof(ro.reason), "%s", out->reason);
	/*
	 * Always when active and the hold moved (the parent's own timer
	 * follows it), on any change, and now and then for the status.
	 */
	if (ro.role == pn->told.role && ro.epoch == pn->told.epoch &&
	    ro.partner_seen == pn->told.partner_seen &&
	    ro.partner_role == pn->told.partner_role &&
	    ro.etcd_ok == pn->told.etcd_ok &&
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
fence_answer(const struct fence_result *r, struct pairnet *pn, int claim)
{
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
		pair_role_fence_claim(pn->role, mono_ms(), &f);
	} else {
		pn->st.reads_done++;
		pair_role_fence_read(pn->role, mono_ms(), pn->read_started, &f);
	}
	step(pn);
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

static void
send_hb(struct pairnet *pn, struct pair_hb *hb)
{
	uint8_t		 buf[PAIR_WIRE_LEN];

	hb->tx_ns = real_ns();
	if (pair_encode(hb, pn->keys, buf, sizeof(buf)) != PAIR_WIRE_LEN)
		return;
	if (sendto(pn->fd, buf, sizeof(buf), 0, (struct sockaddr *)&pn->to,
	    pn->to_len) == -1) {
		if (pn->st.send_errors++ == 0)
			log_warn("pair: heartbeat to the partner");
		return;
	}
	pn->st.sent++;
}

static void
on_read(evutil_socket_t fd, short ev, void *arg)
{
	struct pairnet		*pn = arg;
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
		if (!from_partner(pn, &from)) {
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
			pn->st.rejected_replay++;
			continue;
		}
		pn->st.received++;
		pn->heard = 1;
		pn->heard_at = mono_ms();
		pn->partner_role = hb.role;
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

static void
step(struct pairnet *pn)
{
	struct pair_role_out	 out;
	struct timeval		 tv;
	uint64_t		 now = mono_ms(), wait;

	pair_role_next(pn->role, now, &out);
	if (out.handover && !pn->handing_over && pn->wan_down)
		log_info("pair: the WAN is down: handing the role over to the "
		    "partner");
	pn->handing_over = out.handover;
	if (out.take) {
		pn->takeovers++;
		pn->dropped = 0;
	}
	if (out.release)
		pn->dropped = 0;
	tell(pn, &out, now);
	if (out.read) {
		pn->read_started = now;
		if (fence_read(pn->fence, at_least(2 * pn->cfg->pair.guard_ms,
		    FENCE_READ_MIN_MS), fence_read_cb, pn) == -1) {
			struct pair_fence f = { .status =
			    PAIR_FENCE_UNREACHABLE };
			pair_role_fence_read(pn->role, now, now, &f);
		} else
			pn->st.reads++;
	}
	if (out.claim) {
		struct grgw_addr me = pn->cfg->pair.address;

		if (fence_claim(pn->fence, (int64_t)out.claim_mod_revision,
		    out.claim_epoch, &me, at_least(4 * pn->cfg->pair.guard_ms,
		    FENCE_CLAIM_MIN_MS), fence_claim_cb, pn) == -1) {
			struct pair_fence f = { .status =
			    PAIR_FENCE_UNREACHABLE };
			pair_role_fence_claim(pn->role, now, &f);
		} else
			pn->st.claims++;
	}
	/* "released" only once the addresses are gone (see the top). */
	if (out.send_hb && !(out.role == PAIR_RELEASED && !pn->dropped))
		send_hb(pn, &out.hb);
	wait = out.next_call > now ? out.next_call - now : 1;
	if (wait > STATUS_PUSH_MS)
		wait = STATUS_PUSH_MS;
	tv.tv_sec = (time_t)(wait / 1000);
	tv.tv_usec = (suseconds_t)(wait % 1000) * 1000;
	evtimer_add(pn->timer, &tv);
}

/* ---- the interface --------------------------------------------------------------- */

struct pairnet *
pairnet_new(struct event_base *base, const struct grgw_config *cfg,
    const uint8_t *key, const uint8_t *next, uint64_t resume_epoch,
    uint64_t resume_until, pairnet_cb cb, void *arg, char *err,
    size_t errlen)
{
	struct pairnet		*pn;
	struct pair_role_conf	 rc;
	struct sockaddr_storage	 me;
	socklen_t		 me_len;
	char			 buf[INET6_ADDRSTRLEN];
	uint64_t		 now;
	int			 tos = HB_TOS, on = 1;

	if ((pn = calloc(1, sizeof(*pn))) == NULL) {
		err_set(err, errlen, "out of memory");
		return NULL;
	}
	pn->base = base;
	pn->cfg = cfg;
	pn->cb = cb;
	pn->arg = arg;
	pn->fd = -1;
	pn->dropped = 1;
	if ((pn->keys = sodium_malloc(2 * PAIR_KEY_LEN)) == NULL) {
		err_set(err, errlen, "out of secure memory");
		goto fail;
	}
	pairnet_set_keys(pn, key, next);
	randombytes_buf(&pn->session, sizeof(pn->session));
	pn->session |= 1;

	to_sockaddr(&cfg->pair.partner, (uint16_t)cfg->pair.port, &pn->to,
	    &pn->to_len);
	to_sockaddr(&cfg->pair.address, (uint16_t)cfg->pair.port, &me, &me_len);
	pn->fd = socket(me.ss_family, SOCK_DGRAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, IPPROTO_UDP);
	if (pn->fd == -1) {
		err_set(err, errlen, "pair: socket: %s", strerror(errno));
		goto fail;
	}
	if (me.ss_family == AF_INET6) {
		setsockopt(pn->fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
		setsockopt(pn->fd, IPPROTO_IPV6, IPV6_TCLASS, &tos,
		    sizeof(tos));
	} else
		setsockopt(pn->fd, IPPROTO_IP, IP_TOS, &tos, sizeof(tos));
	if (bind(pn->fd, (struct sockaddr *)&me, me_len) == -1) {
		err_set(err, errlen, "pair: cannot bind %s port %u: %s",
		    addr_fmt(&cfg->pair.address, buf, sizeof(buf)),
		    (unsigned)cfg->pair.port, strerror(errno));
		goto fail;
	}
	if ((pn->fence = fence_new(base, cfg->feeds.etcd_endpoint,
	    cfg->pair.etcd_key, err, errlen)) == NULL)
		goto fail;

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
	now = mono_ms();
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
	pn->ev_read = event_new(base, pn->fd, EV_READ | EV_PERSIST, on_read,
	    pn);
	pn->timer = evtimer_new(base, timer_cb, pn);
	if (pn->ev_read == NULL || pn->timer == NULL ||
	    event_add(pn->ev_read, NULL) == -1) {
		err_set(err, errlen, "out of memory");
		goto fail;
	}
	{
		char	 pbuf[INET6_ADDRSTRLEN];

		log_info("pair: heartbeats from %s to %s, port %u, every %u "
		    "ms; dead %u ms, guard %u ms, margin %u ms; priority %u",
		    addr_fmt(&cfg->pair.address, buf, sizeof(buf)),
		    addr_fmt(&cfg->pair.partner, pbuf, sizeof(pbuf)),
		    (unsigned)cfg->pair.port, (unsigned)cfg->pair.interval_ms,
		    (unsigned)cfg->pair.dead_ms, (unsigned)cfg->pair.guard_ms,
		    (unsigned)cfg->pair.margin_ms,
		    (unsigned)cfg->pair.priority);
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
		if (pair_role_handover(pn->role, mono_ms(), err,
		    sizeof(err)) == -1)
			log_warnx("pair: handover refused: %s", err);
		else
			log_info("pair: handing the role over to the partner");
		break;
	case PMSG_PAIR_WAN_UP:
	case PMSG_PAIR_WAN_DOWN:
		pair_role_wan(pn->role, cmd == PMSG_PAIR_WAN_UP);
		pn->wan_down = cmd == PMSG_PAIR_WAN_DOWN;
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
	if (pn == NULL)
		return;
	if (pn->ev_read != NULL)
		event_free(pn->ev_read);
	if (pn->timer != NULL)
		event_free(pn->timer);
	if (pn->fd != -1)
		close(pn->fd);
	fence_free(pn->fence);
	pair_role_free(pn->role);
	if (pn->keys != NULL)
		sodium_free(pn->keys);
	free(pn);
}
