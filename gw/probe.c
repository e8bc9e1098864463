/*
 * Link probes: the engine that runs the two probe paths on the event
 * loop (the packet codec and the anti-replay window are in
 * probe_codec.c; the wire format and what is refused are described
 * there).
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
#include <sys/socket.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <sodium.h>

#include "grgw.h"
#include "linkstate.h"
#include "probe.h"

#define NS_PER_MS		1000000ULL
#define NS_PER_S		1000000000ULL
#define PROBE_READ_BUDGET	64	/* datagrams per read callback */
#define PROBE_RX_BUF		512	/* larger than any valid packet */
#define PROBE_BIND_RETRY_MS	1000
#define PROBE_LOSS_MIN_MS	1000	/* shortest wait before "lost" */
#define PROBE_RTT_MAX_NS	(60ULL * NS_PER_S)	/* beyond: discarded */
#define PROBE_TOS_CS2		0x40	/* DSCP CS2 (OAM) << 2 */
#define PROBE_LOG_BURST		10	/* rejection lines per second */

/*
 * probes = icmp: an echo request whose payload the peer's IP stack sends
 * back unchanged, so it carries what a grgw reply echoes: our session,
 * the request's number and its wall-clock stamp.
 */
#define ICMP_HDR_LEN		8
#define ICMP_MAGIC		"grgw"
#define ICMP_PROBE_LEN		(ICMP_HDR_LEN + 32)
#define ICMP4_ECHO		8
#define ICMP4_ECHOREPLY		0
#define ICMP4_FILTER		1	/* SOL_RAW option of <linux/icmp.h>,
					 * which clashes with <net/if.h> */

_Static_assert(PROBE_PORT_DEFAULT == GRGW_OAM_PORT, "one probe port");
_Static_assert(PROBE_RX_BUF > PROBE_WIRE_LEN, "receive buffer");


/* ---- engine --------------------------------------------------------------- */

enum slot_state { SLOT_FREE, SLOT_PENDING, SLOT_ANSWERED, SLOT_LOST };

/* One request we sent. */
struct probe_slot {
	uint64_t	seq;
	uint64_t	tx_ns;		/* the CLOCK_REALTIME stamp it carried */
	uint64_t	tx_mono_ns;	/* when it left, CLOCK_MONOTONIC */
	uint64_t	rtt_ns;		/* SLOT_ANSWERED */
	uint8_t		state;		/* enum slot_state */
	uint8_t		late;		/* answered after counted lost */
};

struct probe_path_state {
	struct probe_engine *e;
	enum probe_path	 id;
	int		 usable;	/* both ends have an address */
	int		 fd;		/* -1 until bound */
	int		 bind_failed;	/* warned once already */
	int		 paused;	/* no requests (probe_engine_pause()) */
	struct sockaddr_storage local, remote;
	socklen_t	 local_len, remote_len;
	struct event	*rd;
	struct event	*tick;		/* send, expire, every interval */
	struct event	*detect;	/* fires after a silence: down */
	struct event	*retry;		/* bind again */

	uint64_t	 req_seq;	/* last request sent */
	uint64_t	 rep_seq;	/* last reply sent */
	struct probe_replay replay[2];	/* peer's requests, peer's replies */
	struct probe_slot slots[PROBE_RTT_WINDOW];
	uint64_t	 expire_seq;	/* oldest request not yet decided */
	uint64_t	 max_answered;	/* highest request seq answered */
	uint64_t	 window_start;	/* first request of the live window */
	uint64_t	 last_rx_mono;	/* last valid packet from the peer */
	uint64_t	 skew_mono;	/* last one refused for clock skew */
	unsigned int	 good_streak;	/* replies in a row, none lost */
	uint64_t	 streak_from;	/* lowest request seq of that run */
	uint16_t	 icmp_ident;	/* probes = icmp: echo identifier */
	int		 have_srtt;
	struct path_stats st;		/* counters, verdict, last/smoothed */
};

struct probe_engine {
	struct event_base *base;
	const struct grgw_config *cfg;	/* borrowed */
	struct probe_settings s;
	uint8_t		*key;		/* sodium_malloc'ed; sent with */
	uint8_t		*next;		/* also accepted (rotation), or NULL */
	int		 next_seen;	/* the peer used it: said once */
	uint64_t	 session;
	probe_change_cb	 cb;
	void		*arg;
	int		 started;
	enum grgw_probes method;
	uint64_t	 detect_ns;	/* multiplier * interval */
	uint64_t	 timeout_ns;	/* a request is lost after this */
	struct timeval	 interval_tv;
	uint64_t	 log_window_ns;
	unsigned int	 log_count, log_dropped;
	struct probe_path_state path[PROBE_NPATHS];
};

static int	probe_icmp_send(struct probe_path_state *,
		    const struct probe_pkt *);

static const char *const path_names[PROBE_NPATHS] = {
	[PROBE_TUNNEL] = "tunnel",
	[PROBE_UNDERLAY] = "underlay",
};

static uint64_t
clock_ns(clockid_t id)
{
	struct timespec	 ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static struct timeval
ns_to_tv(uint64_t ns)
{
	struct timeval	 tv;

	tv.tv_sec = (time_t)(ns / NS_PER_S);
	tv.tv_usec = (suseconds_t)(ns % NS_PER_S / 1000);
	return tv;
}

static void
sockaddr_set(struct sockaddr_storage *ss, socklen_t *len,
    const struct grgw_addr *a, uint16_t port)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (a->family == AF_INET) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		memcpy(&sin->sin_addr, a->addr, 4);
		*len = sizeof(*sin);
	} else {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		memcpy(&sin6->sin6_addr, a->addr, 16);
		*len = sizeof(*sin6);
	}
}

/* Same address (the port is not compared). */
static int
sockaddr_same_host(const struct sockaddr_storage *a,
    const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET)
		return memcmp(&((const struct sockaddr_in *)a)->sin_addr,
		    &((const struct sockaddr_in *)b)->sin_addr, 4) == 0;
	if (a->ss_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
		    &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
	return 0;
}

/*
 * Refused packets are logged at debug level only, at most
 * PROBE_LOG_BURST lines a second per engine, so that a flood of garbage
 * costs no more than counting it.  Never a byte of the packet or key.
 */
static void
probe_note_rejected(struct probe_path_state *ps,
    const struct sockaddr_storage *from, const char *why)
{
	struct probe_engine	*e = ps->e;
	char			 a[INET6_ADDRSTRLEN + 16];
	uint64_t		 now;

	if (log_get_level() < LOG_LVL_DEBUG)
		return;
	now = clock_ns(CLOCK_MONOTONIC);
	if (now - e->log_window_ns >= NS_PER_S) {
		if (e->log_dropped != 0)
			log_debug("probe: %u more refused packets not logged",
			    e->log_dropped);
		e->log_window_ns = now;
		e->log_count = 0;
		e->log_dropped = 0;
	}
	if (e->log_count >= PROBE_LOG_BURST) {
		e->log_dropped++;
		return;
	}
	e->log_count++;
	log_debug("probe %s: refused a packet from %s: %s",
	    path_names[ps->id], sockaddr_fmt(from, a, sizeof(a)), why);
}

static void
probe_set_up(struct probe_path_state *ps, int up)
{
	struct probe_engine	*e = ps->e;
	struct timeval		 tv;

	if (ps->st.up == up)
		return;
	ps->st.up = up;
	ps->st.transitions++;
	if (up) {
		uint64_t	from;

		/*
		 * Figures describe the path as it is now: requests sent while
		 * it was down (or before the tunnel existed, or on an SA that
		 * a newer one replaced: probe_engine_fresh()) are not loss.
		 */
		from = ps->max_answered >= e->s.recover ?
		    ps->max_answered - e->s.recover + 1 : 1;
		if (from > ps->window_start)
			ps->window_start = from;
		ps->st.ever_up = 1;
		tv = ns_to_tv(e->detect_ns);
		evtimer_add(ps->detect, &tv);
	} else {
		evtimer_del(ps->detect);
		ps->good_streak = 0;
	}
	log_debug("probe %s path to %s: %s", path_names[ps->id],
	    e->cfg->peer.name, up ? "up" : "down");
	if (e->cb != NULL)
		e->cb(ps->id, up, e->arg);
}

/*
 * Requests past their deadline are lost; one sent within a run of good
 * replies ends it.  One sent before the run began does not: after an
 * outage the requests that went unanswered during it are decided lost
 * only a loss timeout (a second at least) after they left, and letting
 * them end the run held every path that had been down for that second
 * more after the peer answered again.
 */
static void
probe_expire(struct probe_path_state *ps, uint64_t now_mono)
{
	struct probe_slot	*sl;

	while (ps->expire_seq != 0 && ps->expire_seq <= ps->req_seq) {
		sl = &ps->slots[ps->expire_seq % PROBE_RTT_WINDOW];
		if (sl->seq == ps->expire_seq && sl->state == SLOT_PENDING) {
			if (now_mono - sl->tx_mono_ns < ps->e->timeout_ns)
				break;
			sl->state = SLOT_LOST;
			if (sl->seq > ps->streak_from)
				ps->good_streak = 0;
		}
		ps->expire_seq++;
	}
}

static void
probe_send_request(struct probe_path_state *ps)
{
	struct probe_engine	*e = ps->e;
	struct probe_slot	*sl;
	struct probe_pkt	 pkt;
	uint8_t			 buf[PROBE_WIRE_LEN];
	char			 a[INET6_ADDRSTRLEN + 16];
	uint64_t		 now_mono = clock_ns(CLOCK_MONOTONIC);

	probe_expire(ps, now_mono);
	if (ps->paused)
		return;
	memset(&pkt, 0, sizeof(pkt));
	pkt.type = PROBE_REQUEST;
	pkt.path = (uint8_t)ps->id;
	pkt.session = e->session;
	pkt.seq = ++ps->req_seq;
	pkt.tx_ns = clock_ns(CLOCK_REALTIME);
	if (ps->expire_seq == 0)
		ps->expire_seq = pkt.seq;

	sl = &ps->slots[pkt.seq % PROBE_RTT_WINDOW];
	if (sl->state == SLOT_PENDING)	/* the loop ran very late */
		ps->good_streak = 0;
	memset(sl, 0, sizeof(*sl));
	sl->seq = pkt.seq;
	sl->tx_ns = pkt.tx_ns;
	sl->tx_mono_ns = now_mono;
	sl->state = SLOT_LOST;		/* until it has left */

	if (e->method == GRGW_PROBES_ICMP) {
		if (probe_icmp_send(ps, &pkt) == -1) {
			if (log_get_level() >= LOG_LVL_DEBUG)
				log_debug("probe %s: cannot send an echo to "
				    "%s: %s", path_names[ps->id],
				    sockaddr_fmt(&ps->remote, a, sizeof(a)),
				    strerror(errno));
			ps->good_streak = 0;
			return;
		}
		sl->state = SLOT_PENDING;
		ps->st.sent++;
		return;
	}
	if (probe_encode(&pkt, e->key, buf, sizeof(buf)) != PROBE_WIRE_LEN)
		return;
	if (sendto(ps->fd, buf, sizeof(buf), 0,
	    (struct sockaddr *)&ps->remote, ps->remote_len) == -1) {
		if (log_get_level() >= LOG_LVL_DEBUG)
			log_debug("probe %s: cannot send to %s: %s",
			    path_names[ps->id], sockaddr_fmt(&ps->remote, a,
			    sizeof(a)), strerror(errno));
		ps->good_streak = 0;
		return;
	}
	sl->state = SLOT_PENDING;
	ps->st.sent++;
}

static void
probe_on_tick(evutil_socket_t fd, short ev, void *arg)
{
	probe_send_request(arg);
}

static void
probe_on_detect(evutil_socket_t fd, short ev, void *arg)
{
	struct probe_path_state	*ps = arg;
	uint64_t		 now = clock_ns(CLOCK_MONOTONIC);
	struct timeval		 tv;

	if (!ps->st.up)
		return;
	if (now - ps->last_rx_mono < ps->e->detect_ns) {
		tv = ns_to_tv(ps->last_rx_mono + ps->e->detect_ns - now);
		evtimer_add(ps->detect, &tv);
		return;
	}
	probe_set_up(ps, 0);
}

static void
probe_answer(struct probe_path_state *ps, const struct probe_pkt *req,
    const struct sockaddr_storage *from, socklen_t fromlen)
{
	struct probe_engine	*e = ps->e;
	struct probe_pkt	 rep;
	uint8_t			 buf[PROBE_WIRE_LEN];
	char			 a[INET6_ADDRSTRLEN + 16];

	memset(&rep, 0, sizeof(rep));
	rep.type = PROBE_REPLY;
	rep.path = (uint8_t)ps->id;
	rep.session = e->session;
	rep.seq = ++ps->rep_seq;
	rep.tx_ns = clock_ns(CLOCK_REALTIME);
	rep.echo_seq = req->seq;
	rep.echo_tx_ns = req->tx_ns;
	if (probe_encode(&rep, e->key, buf, sizeof(buf)) != PROBE_WIRE_LEN)
		return;
	/* To where the request came from: under NAT, not the configured
	 * address. */
	if (sendto(ps->fd, buf, sizeof(buf), 0, (const struct sockaddr *)from,
	    fromlen) == -1) {
		if (log_get_level() >= LOG_LVL_DEBUG)
			log_debug("probe %s: cannot answer %s: %s",
			    path_names[ps->id], sockaddr_fmt(from, a,
			    sizeof(a)), strerror(errno));
		return;
	}
	ps->st.answered++;
}

static void
probe_on_reply(struct probe_path_state *ps, const struct probe_pkt *rep,
    uint64_t now_mono)
{
	struct probe_slot	*sl;
	uint64_t		 seq = rep->echo_seq, rtt;
	double			 ms;

	if (seq > ps->req_seq || ps->req_seq - seq >= PROBE_RTT_WINDOW)
		return;		/* not one of ours, or too old to place */
	sl = &ps->slots[seq % PROBE_RTT_WINDOW];
	if (sl->seq != seq || sl->tx_ns != rep->echo_tx_ns ||
	    sl->state == SLOT_ANSWERED || sl->state == SLOT_FREE)
		return;
	/*
	 * Measured on the monotonic clock: the echoed wall-clock stamp only
	 * identifies the request, so a clock step cannot fake a round trip.
	 */
	rtt = now_mono - sl->tx_mono_ns;
	if (now_mono < sl->tx_mono_ns || rtt > PROBE_RTT_MAX_NS)
		return;
	sl->late = sl->state == SLOT_LOST;
	sl->state = SLOT_ANSWERED;
	sl->rtt_ns = rtt;
	/*
	 * Only an answer to one of our own requests proves the path works
	 * both ways: the peer's requests reaching us say nothing about
	 * ours reaching it (a one-way blackhole).
	 */
	ps->last_rx_mono = now_mono;
	if (ps->st.up) {
		struct timeval tv = ns_to_tv(ps->e->detect_ns);

		evtimer_add(ps->detect, &tv);
	}
	if (seq < ps->max_answered)
		ps->st.reordered++;
	else
		ps->max_answered = seq;

	ms = (double)rtt / 1e6;
	ps->st.rtt_last_ms = ms;
	if (!ps->have_srtt) {
		ps->st.rtt_smoothed_ms = ms;
		ps->have_srtt = 1;
	} else
		ps->st.rtt_smoothed_ms += (ms - ps->st.rtt_smoothed_ms) / 8;
	if (sl->late)
		return;
	if (ps->good_streak == 0 || seq < ps->streak_from)
		ps->streak_from = seq;
	if (ps->good_streak < UINT32_MAX)
		ps->good_streak++;
	if (!ps->st.up && ps->good_streak >= ps->e->s.recover)
		probe_set_up(ps, 1);
}

static void
probe_handle(struct probe_path_state *ps, const uint8_t *buf, size_t len,
    const struct sockaddr_storage *from, socklen_t fromlen)
{
	struct probe_engine	*e = ps->e;
	struct probe_pkt	 pkt;
	uint64_t		 now_mono, now_ns = clock_ns(CLOCK_REALTIME);
	int			 rc, used;

	switch (probe_decode_either(buf, len, e->key, e->next, &pkt, &used)) {
	case PROBE_OK:
		break;
	case PROBE_E_AUTH:
		ps->st.rejected_auth++;
		probe_note_rejected(ps, from, "authentication failed");
		return;
	default:
		ps->st.rejected_malformed++;
		probe_note_rejected(ps, from, "not a probe packet");
		return;
	}
	if (pkt.path != ps->id) {
		ps->st.rejected_malformed++;
		probe_note_rejected(ps, from, "sent for the other path");
		return;
	}
	/*
	 * Inside the tunnel nothing rewrites addresses, so a probe from
	 * anywhere but the peer's LAN address did not come through it.
	 * The underlay path takes any source: 1:1 NAT rewrites it.
	 */
	if (ps->id == PROBE_TUNNEL && !sockaddr_same_host(from, &ps->remote)) {
		ps->st.rejected_auth++;
		probe_note_rejected(ps, from, "not from the peer's LAN "
		    "address");
		return;
	}
	if (pkt.session == e->session) {
		ps->st.rejected_replay++;
		probe_note_rejected(ps, from, "one of our own packets");
		return;
	}
	if ((rc = probe_replay_check(&ps->replay[pkt.type == PROBE_REQUEST ?
	    0 : 1], &pkt, now_ns)) == PROBE_REPLAY_SKEW) {
		/* Authentic: tell the operator the clocks differ. */
		ps->st.rejected_skew++;
		ps->st.clock_skew_ms = ((double)pkt.tx_ns - (double)now_ns) /
		    1e6;
		ps->skew_mono = clock_ns(CLOCK_MONOTONIC);
		probe_note_rejected(ps, from, "the peer's clock is more than "
		    "30 s from ours");
		return;
	}
	if (rc != 0) {
		ps->st.rejected_replay++;
		probe_note_rejected(ps, from, "replayed or stale");
		return;
	}

	if (used && !e->next_seen) {
		e->next_seen = 1;
		log_info("probe %s: the peer authenticates with the next key "
		    "(a key rotation is under way)", path_names[ps->id]);
	}
	now_mono = clock_ns(CLOCK_MONOTONIC);
	if (pkt.type == PROBE_REQUEST)
		probe_answer(ps, &pkt, from, fromlen);
	else {
		ps->st.received++;
		probe_on_reply(ps, &pkt, now_mono);
	}
}

/* Level-triggered: what is left after the budget waits for the next turn. */
static void
probe_on_read(evutil_socket_t fd, short ev, void *arg)
{
	struct probe_path_state	*ps = arg;
	struct sockaddr_storage	 from;
	socklen_t		 fromlen;
	uint8_t			 buf[PROBE_RX_BUF];
	ssize_t			 n;
	int			 i;

	for (i = 0; i < PROBE_READ_BUDGET; i++) {
		fromlen = sizeof(from);
		memset(&from, 0, sizeof(from));
		/* MSG_TRUNC: the real length, even of a datagram too big. */
		n = recvfrom(ps->fd, buf, sizeof(buf), MSG_TRUNC,
		    (struct sockaddr *)&from, &fromlen);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    log_get_level() >= LOG_LVL_DEBUG)
				log_debug("probe %s: recvfrom: %s",
				    path_names[ps->id], strerror(errno));
			return;
		}
		if (fromlen > sizeof(from))
			continue;
		if ((size_t)n > sizeof(buf)) {
			ps->st.rejected_malformed++;
			probe_note_rejected(ps, &from, "oversized datagram");
			continue;
		}
		probe_handle(ps, buf, (size_t)n, &from, fromlen);
	}
}

static int
probe_open(struct probe_path_state *ps)
{
	struct probe_engine	*e = ps->e;
	char			 a[INET6_ADDRSTRLEN + 16];
	int			 fd, on = 1, tos = PROBE_TOS_CS2;

	fd = socket(ps->local.ss_family, SOCK_DGRAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, IPPROTO_UDP);
	if (fd == -1) {
		log_warn("probe %s: socket", path_names[ps->id]);
		return -1;
	}
	/*
	 * No SO_REUSEADDR (nor SO_REUSEPORT): with it, any process of the
	 * host could bind the same address and port and take probes away,
	 * faking a dead link.  The port is ours alone.
	 */
	if (ps->local.ss_family == AF_INET6) {
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on,
		    sizeof(on)) == -1)
			log_warn("probe %s: IPV6_V6ONLY", path_names[ps->id]);
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_TCLASS, &tos,
		    sizeof(tos)) == -1)
			log_warn("probe %s: IPV6_TCLASS", path_names[ps->id]);
	} else if (setsockopt(fd, IPPROTO_IP, IP_TOS, &tos,
	    sizeof(tos)) == -1)
		log_warn("probe %s: IP_TOS", path_names[ps->id]);

	if (bind(fd, (struct sockaddr *)&ps->local, ps->local_len) == -1) {
		/* The address may not be there yet: say so once, retry. */
		if (!ps->bind_failed)
			log_warn("probe %s: cannot bind %s yet; retrying every "
			    "second", path_names[ps->id],
			    sockaddr_fmt(&ps->local, a, sizeof(a)));
		ps->bind_failed = 1;
		close(fd);
		return -1;
	}
	ps->rd = event_new(e->base, fd, EV_READ | EV_PERSIST, probe_on_read,
	    ps);
	if (ps->rd == NULL || event_add(ps->rd, NULL) == -1) {
		log_warnx("probe %s: cannot watch the socket",
		    path_names[ps->id]);
		if (ps->rd != NULL)
			event_free(ps->rd);
		ps->rd = NULL;
		close(fd);
		return -1;
	}
	ps->fd = fd;
	if (ps->bind_failed)
		log_info("probe %s: bound %s", path_names[ps->id],
		    sockaddr_fmt(&ps->local, a, sizeof(a)));
	ps->bind_failed = 0;
	return 0;
}

/* ---- probes = icmp --------------------------------------------------------- */

static uint16_t
icmp4_cksum(const uint8_t *p, size_t len)
{
	uint32_t	 sum = 0;

	while (len > 1) {
		sum += (uint32_t)(p[0] << 8 | p[1]);
		p += 2;
		len -= 2;
	}
	if (len == 1)
		sum += (uint32_t)(p[0] << 8);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons((uint16_t)~sum);
}

static void
put_u64(uint8_t *p, uint64_t v)
{
	int	 i;

	for (i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t
get_u64(const uint8_t *p)
{
	uint64_t v = 0;
	int	 i;

	for (i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/*
 * An echo request for pkt, from the path's local address (IP_PKTINFO /
 * IPV6_PKTINFO: the raw socket is bound to nothing, so that it works
 * before the address exists and from a restarted process alike).
 * ICMPv6 checksums are the kernel's.  0, or -1 with errno.
 */
static int
probe_icmp_send(struct probe_path_state *ps, const struct probe_pkt *pkt)
{
	uint8_t		 buf[ICMP_PROBE_LEN];
	struct iovec	 iov = { buf, sizeof(buf) };
	struct msghdr	 msg;
	struct cmsghdr	*cm;
	union {
		char		 b[CMSG_SPACE(sizeof(struct in6_pktinfo))];
		struct cmsghdr	 align;
	} cbuf;
	uint16_t	 v;
	int		 v4 = ps->local.ss_family == AF_INET;

	memset(buf, 0, sizeof(buf));
	buf[0] = v4 ? ICMP4_ECHO : ICMP6_ECHO_REQUEST;
	v = htons(ps->icmp_ident);
	memcpy(buf + 4, &v, 2);
	v = htons((uint16_t)pkt->seq);
	memcpy(buf + 6, &v, 2);
	memcpy(buf + ICMP_HDR_LEN, ICMP_MAGIC, 4);
	put_u64(buf + ICMP_HDR_LEN + 8, pkt->session);
	put_u64(buf + ICMP_HDR_LEN + 16, pkt->seq);
	put_u64(buf + ICMP_HDR_LEN + 24, pkt->tx_ns);
	if (v4) {
		v = icmp4_cksum(buf, sizeof(buf));
		memcpy(buf + 2, &v, 2);
	}

	memset(&msg, 0, sizeof(msg));
	memset(&cbuf, 0, sizeof(cbuf));
	msg.msg_name = &ps->remote;
	msg.msg_namelen = ps->remote_len;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cbuf.b;
	cm = (struct cmsghdr *)cbuf.b;
	if (v4) {
		struct in_pktinfo pi;

		memset(&pi, 0, sizeof(pi));
		pi.ipi_spec_dst = ((struct sockaddr_in *)&ps->local)->sin_addr;
		msg.msg_controllen = CMSG_SPACE(sizeof(pi));
		cm->cmsg_level = IPPROTO_IP;
		cm->cmsg_type = IP_PKTINFO;
		cm->cmsg_len = CMSG_LEN(sizeof(pi));
		memcpy(CMSG_DATA(cm), &pi, sizeof(pi));
	} else {
		struct in6_pktinfo pi;

		memset(&pi, 0, sizeof(pi));
		pi.ipi6_addr = ((struct sockaddr_in6 *)&ps->local)->sin6_addr;
		msg.msg_controllen = CMSG_SPACE(sizeof(pi));
		cm->cmsg_level = IPPROTO_IPV6;
		cm->cmsg_type = IPV6_PKTINFO;
		cm->cmsg_len = CMSG_LEN(sizeof(pi));
		memcpy(CMSG_DATA(cm), &pi, sizeof(pi));
	}
	return sendmsg(ps->fd, &msg, 0) == -1 ? -1 : 0;
}

/*
 * An echo reply on a path's raw socket, which sees every echo reply of
 * its family that reaches the host: only one from the path's peer
 * address, with our identifier and session, is an answer.  Whatever
 * else arrives is someone else's and is ignored without a count.
 */
static void
probe_icmp_handle(struct probe_path_state *ps, const uint8_t *buf, size_t len,
    const struct sockaddr_storage *from)
{
	struct probe_pkt	 rep;
	const uint8_t		*icmp = buf;
	size_t			 off = 0;
	uint16_t		 ident;
	int			 v4 = ps->local.ss_family == AF_INET;

	if (!sockaddr_same_host(from, &ps->remote))
		return;
	if (v4) {
		/* Raw IPv4 sockets deliver the IP header: skip it. */
		if (len < 20 || (buf[0] >> 4) != 4)
			return;
		off = (size_t)(buf[0] & 0x0f) * 4;
		if (off < 20 || len < off)
			return;
		icmp = buf + off;
		len -= off;
	}
	if (len < ICMP_PROBE_LEN || icmp[0] != (v4 ? ICMP4_ECHOREPLY :
	    ICMP6_ECHO_REPLY) || icmp[1] != 0)
		return;
	memcpy(&ident, icmp + 4, 2);
	if (ntohs(ident) != ps->icmp_ident ||
	    memcmp(icmp + ICMP_HDR_LEN, ICMP_MAGIC, 4) != 0 ||
	    get_u64(icmp + ICMP_HDR_LEN + 8) != ps->e->session)
		return;
	memset(&rep, 0, sizeof(rep));
	rep.type = PROBE_REPLY;
	rep.echo_seq = get_u64(icmp + ICMP_HDR_LEN + 16);
	rep.echo_tx_ns = get_u64(icmp + ICMP_HDR_LEN + 24);
	ps->st.received++;
	probe_on_reply(ps, &rep, clock_ns(CLOCK_MONOTONIC));
}

static void
probe_on_read_icmp(evutil_socket_t fd, short ev, void *arg)
{
	struct probe_path_state	*ps = arg;
	struct sockaddr_storage	 from;
	socklen_t		 fromlen;
	uint8_t			 buf[PROBE_RX_BUF];
	ssize_t			 n;
	int			 i;

	for (i = 0; i < PROBE_READ_BUDGET; i++) {
		fromlen = sizeof(from);
		memset(&from, 0, sizeof(from));
		n = recvfrom(ps->fd, buf, sizeof(buf), 0,
		    (struct sockaddr *)&from, &fromlen);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return;
		}
		if (fromlen > sizeof(from))
			continue;
		probe_icmp_handle(ps, buf, (size_t)n, &from);
	}
}

/* Watch the raw socket handed over for the path. */
static int
probe_icmp_open(struct probe_path_state *ps)
{
	int	 tos = PROBE_TOS_CS2;

	if (ps->fd == -1) {
		if (!ps->bind_failed)
			log_warnx("probe %s: no ICMP socket from the parent; "
			    "this path stays down", path_names[ps->id]);
		ps->bind_failed = 1;
		return -1;
	}
	if (ps->rd != NULL)
		return 0;
	if (ps->local.ss_family == AF_INET6)
		(void)setsockopt(ps->fd, IPPROTO_IPV6, IPV6_TCLASS, &tos,
		    sizeof(tos));
	else
		(void)setsockopt(ps->fd, IPPROTO_IP, IP_TOS, &tos,
		    sizeof(tos));
	ps->rd = event_new(ps->e->base, ps->fd, EV_READ | EV_PERSIST,
	    probe_on_read_icmp, ps);
	if (ps->rd == NULL || event_add(ps->rd, NULL) == -1) {
		log_warnx("probe %s: cannot watch the ICMP socket",
		    path_names[ps->id]);
		if (ps->rd != NULL)
			event_free(ps->rd);
		ps->rd = NULL;
		return -1;
	}
	return 0;
}

/* Bind, then send at once and every interval; or try again later. */
static void
probe_path_begin(struct probe_path_state *ps)
{
	struct timeval	 tv = ns_to_tv(PROBE_BIND_RETRY_MS * NS_PER_MS);

	if (ps->e->method == GRGW_PROBES_OFF)
		return;
	if (ps->e->method == GRGW_PROBES_ICMP) {
		if (probe_icmp_open(ps) == -1)
			return;		/* nothing would change on a retry */
		probe_send_request(ps);
		event_add(ps->tick, &ps->e->interval_tv);
		return;
	}
	if (probe_open(ps) == -1) {
		evtimer_add(ps->retry, &tv);
		return;
	}
	probe_send_request(ps);
	event_add(ps->tick, &ps->e->interval_tv);
}

static void
probe_on_retry(evutil_socket_t fd, short ev, void *arg)
{
	probe_path_begin(arg);
}

/* Which addresses a path uses; 0, or -1 when there is no such pair. */
static int
probe_path_addresses(struct probe_path_state *ps,
    const struct grgw_config *cfg, uint16_t port)
{
	const struct grgw_side	*site = &cfg->site, *peer = &cfg->peer;
	int			 i, j;

	if (ps->id == PROBE_UNDERLAY) {
		if (site->wan_address.family != peer->wan_address.family ||
		    addr_len(site->wan_address.family) == 0)
			return -1;
		sockaddr_set(&ps->local, &ps->local_len, &site->wan_address,
		    port);
		sockaddr_set(&ps->remote, &ps->remote_len, &peer->wan_address,
		    port);
		return 0;
	}
	for (i = 0; i < site->n_lan_addresses && i < GRGW_MAX_LAN_ADDRS; i++) {
		for (j = 0; j < peer->n_lan_addresses &&
		    j < GRGW_MAX_LAN_ADDRS; j++) {
			if (site->lan_addresses[i].family !=
			    peer->lan_addresses[j].family ||
			    addr_len(site->lan_addresses[i].family) == 0)
				continue;
			sockaddr_set(&ps->local, &ps->local_len,
			    &site->lan_addresses[i], port);
			sockaddr_set(&ps->remote, &ps->remote_len,
			    &peer->lan_addresses[j], port);
			return 0;
		}
	}
	return -1;
}

/* A copy of a key in read-only secure memory, or NULL. */
static uint8_t *
probe_key_dup(const uint8_t key[PROBE_KEY_LEN])
{
	uint8_t	*k;

	if ((k = sodium_malloc(PROBE_KEY_LEN)) == NULL)
		return NULL;
	memcpy(k, key, PROBE_KEY_LEN);
	sodium_mprotect_readonly(k);
	return k;
}

/* Wipe and free a probe_key_dup() copy; NULL ok. */
static void
probe_key_free(uint8_t *k)
{
	if (k == NULL)
		return;
	sodium_mprotect_readwrite(k);
	sodium_memzero(k, PROBE_KEY_LEN);
	sodium_free(k);
}

struct probe_engine *
probe_engine_new(struct event_base *base, const struct grgw_config *cfg,
    const struct probe_settings *s, const uint8_t key[PROBE_KEY_LEN],
    probe_change_cb cb, void *arg)
{
	struct probe_engine	*e;
	struct probe_path_state	*ps;
	uint64_t		 timeout;
	uint16_t		 ident;
	int			 i;

	if (base == NULL || cfg == NULL || s == NULL || key == NULL ||
	    s->interval_ms == 0 || s->multiplier == 0 || s->recover == 0 ||
	    s->port == 0) {
		errno = EINVAL;
		goto fail_fds;
	}
	if (sodium_init() < 0) {
		errno = EIO;
		goto fail_fds;
	}
	if ((e = calloc(1, sizeof(*e))) == NULL)
		goto fail_fds;
	e->method = s->method;
	e->base = base;
	e->cfg = cfg;
	e->s = *s;
	e->cb = cb;
	e->arg = arg;
	/*
	 * Half an interval of slack: after multiplier-1 lost answers the next
	 * one is due exactly at multiplier * interval (plus its round trip),
	 * and a deadline on that very instant would declare the path dead
	 * after one loss fewer than configured.
	 */
	e->detect_ns = ((uint64_t)s->multiplier * s->interval_ms +
	    s->interval_ms / 2) * NS_PER_MS;
	timeout = (uint64_t)PROBE_LOSS_MIN_MS * NS_PER_MS;
	e->timeout_ns = e->detect_ns > timeout ? e->detect_ns : timeout;
	e->interval_tv = ns_to_tv((uint64_t)s->interval_ms * NS_PER_MS);
	do {
		randombytes_buf(&e->session, sizeof(e->session));
	} while (e->session == 0);
	randombytes_buf(&ident, sizeof(ident));
	for (i = 0; i < PROBE_NPATHS; i++) {
		ps = &e->path[i];
		ps->e = e;
		ps->id = (enum probe_path)i;
		ps->fd = -1;
		if (e->method == GRGW_PROBES_ICMP) {
			ps->fd = s->icmp_fd[i];		/* ours now */
			ps->icmp_ident = (uint16_t)(ident + i);
		}
	}
	if ((e->key = probe_key_dup(key)) == NULL)
		goto fail;

	for (i = 0; i < PROBE_NPATHS; i++) {
		ps = &e->path[i];
		ps->tick = event_new(base, -1, EV_PERSIST, probe_on_tick, ps);
		ps->detect = evtimer_new(base, probe_on_detect, ps);
		ps->retry = evtimer_new(base, probe_on_retry, ps);
		if (ps->tick == NULL || ps->detect == NULL || ps->retry == NULL)
			goto fail;
		/* Raw sockets take no port (IPv6 refuses one). */
		if (probe_path_addresses(ps, cfg, e->method ==
		    GRGW_PROBES_ICMP ? 0 : s->port) == 0)
			ps->usable = e->method != GRGW_PROBES_OFF;
		else
			log_warnx("probe %s: no address of the same family on "
			    "both sides; this path stays down",
			    path_names[i]);
	}
	return e;

fail:
	probe_engine_free(e);
	errno = ENOMEM;
	return NULL;
fail_fds:
	for (i = 0; s != NULL && s->method == GRGW_PROBES_ICMP &&
	    i < PROBE_NPATHS; i++)
		if (s->icmp_fd[i] != -1)
			close(s->icmp_fd[i]);
	return NULL;
}

int
probe_icmp_socket(const struct grgw_config *cfg, enum probe_path path)
{
	struct probe_path_state	 ps;
	int			 fd;

	memset(&ps, 0, sizeof(ps));
	ps.id = path;
	if (cfg == NULL || path >= PROBE_NPATHS ||
	    probe_path_addresses(&ps, cfg, 0) == -1) {
		errno = ENOENT;
		return -1;
	}
	if (ps.local.ss_family == AF_INET) {
		/* ICMP_FILTER: a bit set drops that type. */
		uint32_t filt = ~(1U << ICMP4_ECHOREPLY);

		fd = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    IPPROTO_ICMP);
		if (fd != -1 && setsockopt(fd, SOL_RAW, ICMP4_FILTER, &filt,
		    sizeof(filt)) == -1)
			log_warn("probe %s: ICMP_FILTER", path_names[path]);
	} else {
		struct icmp6_filter filt;

		fd = socket(AF_INET6, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    IPPROTO_ICMPV6);
		ICMP6_FILTER_SETBLOCKALL(&filt);
		ICMP6_FILTER_SETPASS(ICMP6_ECHO_REPLY, &filt);
		if (fd != -1 && setsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER,
		    &filt, sizeof(filt)) == -1)
			log_warn("probe %s: ICMP6_FILTER", path_names[path]);
	}
	return fd;
}

int
probe_engine_set_keys(struct probe_engine *e, const uint8_t key[PROBE_KEY_LEN],
    const uint8_t *next)
{
	uint8_t	*k, *n = NULL;

	if (e == NULL || key == NULL)
		return -1;
	if ((k = probe_key_dup(key)) == NULL ||
	    (next != NULL && (n = probe_key_dup(next)) == NULL)) {
		probe_key_free(k);
		return -1;
	}
	probe_key_free(e->key);
	probe_key_free(e->next);
	e->key = k;
	e->next = n;
	e->next_seen = 0;
	return 0;
}

void
probe_engine_assume_up(struct probe_engine *e, enum probe_path path)
{
	struct probe_path_state	*ps;

	if (e == NULL || e->started || path >= PROBE_NPATHS)
		return;
	ps = &e->path[path];
	ps->st.up = 1;
	ps->st.ever_up = 1;
}

void
probe_engine_fresh(struct probe_engine *e, enum probe_path path)
{
	struct probe_path_state	*ps;
	struct timeval		 tv;

	if (e == NULL || !e->started || path >= PROBE_NPATHS)
		return;
	ps = &e->path[path];
	if (ps->st.up) {
		tv = ns_to_tv(e->detect_ns);
		evtimer_add(ps->detect, &tv);
	}
	/*
	 * Nor are the requests sent before it lost on this SA: the figures
	 * start again with the next one.  (They went on the SA it replaced,
	 * or on one that goes with it, as when both sites initiated at once
	 * and one of the two IKE_SAs is deleted as a duplicate.)
	 */
	ps->window_start = ps->req_seq + 1;
	probe_send_request(ps);
}

void
probe_engine_pause(struct probe_engine *e, enum probe_path path, int paused)
{
	struct probe_path_state	*ps;

	if (e == NULL || path >= PROBE_NPATHS)
		return;
	ps = &e->path[path];
	if (ps->paused == (paused != 0))
		return;
	ps->paused = paused != 0;
	if (!ps->paused)
		probe_engine_fresh(e, path);
}

int
probe_engine_start(struct probe_engine *e)
{
	struct probe_path_state	*ps;
	struct timeval		 tv;
	int			 i;

	if (e == NULL) {
		errno = EINVAL;
		return -1;
	}
	if (e->started)
		return 0;
	e->started = 1;
	for (i = 0; i < PROBE_NPATHS; i++) {
		ps = &e->path[i];
		if (ps->st.up && ps->usable) {
			/* Taken over from a predecessor: the usual deadline. */
			ps->last_rx_mono = clock_ns(CLOCK_MONOTONIC);
			tv = ns_to_tv(e->detect_ns);
			evtimer_add(ps->detect, &tv);
		} else
			ps->st.up = 0;
		if (ps->usable)
			probe_path_begin(ps);
	}
	return 0;
}

void
probe_engine_rebind(struct probe_engine *e)
{
	struct probe_path_state	*ps;
	int			 i;

	if (e == NULL || !e->started || e->method != GRGW_PROBES_GRGW)
		return;
	for (i = 0; i < PROBE_NPATHS; i++) {
		ps = &e->path[i];
		if (ps->usable && ps->fd == -1 &&
		    evtimer_pending(ps->retry, NULL)) {
			evtimer_del(ps->retry);
			probe_path_begin(ps);
		}
	}
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t	 x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest rank of a sorted, non-empty array. */
static double
percentile_ms(const uint64_t *sorted, size_t n, unsigned int pct)
{
	size_t	 rank = (n * pct + 99) / 100;

	if (rank == 0)
		rank = 1;
	return (double)sorted[rank - 1] / 1e6;
}

void
probe_engine_stats(const struct probe_engine *e, enum probe_path path,
    struct path_stats *out)
{
	const struct probe_path_state	*ps;
	const struct probe_slot		*sl;
	uint64_t			 rtts[PROBE_RTT_WINDOW], seq, first;
	uint64_t			 prev = 0, jsum = 0, now;
	size_t				 n = 0, lost = 0, decided = 0, njit = 0;
	int				 have_prev = 0;

	if (out == NULL)
		return;
	memset(out, 0, sizeof(*out));
	if (e == NULL || (unsigned int)path >= PROBE_NPATHS)
		return;
	ps = &e->path[path];
	now = clock_ns(CLOCK_MONOTONIC);
	*out = ps->st;
	out->skew_recent = ps->skew_mono != 0 &&
	    now - ps->skew_mono < 2 * e->detect_ns;
	if (!out->skew_recent)
		out->clock_skew_ms = NAN;
	/*
	 * No figure is NaN, never 0: a path without answers must not look
	 * like a perfect one on a dashboard or to an alert.
	 */
	if (!ps->have_srtt)
		out->rtt_last_ms = out->rtt_smoothed_ms = NAN;
	out->rtt_p50_ms = out->rtt_p99_ms = out->jitter_ms = NAN;
	out->loss_ratio = NAN;

	first = ps->req_seq >= PROBE_RTT_WINDOW ?
	    ps->req_seq - PROBE_RTT_WINDOW + 1 : 1;
	if (ps->st.up && first < ps->window_start)
		first = ps->window_start;
	for (seq = first; seq != 0 && seq <= ps->req_seq; seq++) {
		sl = &ps->slots[seq % PROBE_RTT_WINDOW];
		if (sl->seq != seq)
			continue;
		/*
		 * Loss counts only requests whose deadline has passed:
		 * counting early answers but not yet the unanswered would
		 * understate it.
		 */
		if (now - sl->tx_mono_ns >= e->timeout_ns) {
			decided++;
			if (sl->state != SLOT_ANSWERED || sl->late)
				lost++;
		}
		if (sl->state != SLOT_ANSWERED)
			continue;
		rtts[n++] = sl->rtt_ns;
		if (have_prev) {
			jsum += sl->rtt_ns > prev ? sl->rtt_ns - prev :
			    prev - sl->rtt_ns;
			njit++;
		}
		prev = sl->rtt_ns;
		have_prev = 1;
	}
	out->loss_sample = decided;
	if (decided > 0)
		out->loss_ratio = (double)lost / (double)decided;
	else if (n > 0)
		out->loss_ratio = 0;	/* answers, none due yet */
	if (njit > 0)
		out->jitter_ms = (double)jsum / (double)njit / 1e6;
	if (n > 0) {
		qsort(rtts, n, sizeof(rtts[0]), cmp_u64);
		out->rtt_p50_ms = percentile_ms(rtts, n, 50);
		out->rtt_p99_ms = percentile_ms(rtts, n, 99);
	}
}

void
probe_engine_free(struct probe_engine *e)
{
	struct probe_path_state	*ps;
	int			 i;

	if (e == NULL)
		return;
	for (i = 0; i < PROBE_NPATHS; i++) {
		ps = &e->path[i];
		if (ps->rd != NULL)
			event_free(ps->rd);
		if (ps->tick != NULL)
			event_free(ps->tick);
		if (ps->detect != NULL)
			event_free(ps->detect);
		if (ps->retry != NULL)
			event_free(ps->retry);
		if (ps->fd != -1)
			close(ps->fd);
	}
	probe_key_free(e->key);
	probe_key_free(e->next);
	free(e);
}
