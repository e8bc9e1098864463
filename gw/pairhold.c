/*
 * The parent's side of the gateway pair (see pairhold.h): the floating
 * addresses on and off this host, and the hold that bounds how long they
 * stay without a word from the role engine.
 */
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "chan.h"
#include "grgw.h"
#include "netlink/netlink.h"
#include "pair.h"
#include "pairhold.h"
#include "pmsg.h"

/* The floating addresses: [site] lan_address lines and wan_address. */
#define FLOAT_MAX	GWNL_FLOAT_MAX
/*
 * An announcement is one frame: one lost would leave a neighbour on the
 * old holder's MAC until its cache entry expires.  Said again this long
 * after the first (as keepalived repeats its gratuitous ARPs).
 */
static const unsigned	 reannounce_ms[] = { 50, 250, 1000 };
/* The engine's word comes at least this often (pairnet.c STATUS_PUSH_MS),
 * with some room. */
#define PAIRHOLD_QUIET_MS	2000

struct pairhold {
	struct event_base	*base;
	struct gwnl		*nl;
	const struct grgw_config *cfg;
	pairhold_cb		 cb;
	void			*arg;

	char			 lan_if[IF_NAMESIZE];
	struct {
		const char		*ifname;
		struct grgw_addr	 a;
	}			 fl[FLOAT_MAX];
	int			 n_fl;

	int			 held;
	uint64_t		 takes;		/* epochs taken */
	uint64_t		 taken_epoch;	/* the last of them */
	struct pmsg_role	 last;
	struct timespec		 last_at;	/* when it came */
	struct event		*hold_timer;
	struct event		*announce_timer;
	unsigned		 announced;	/* repeats done */

	pid_t			 janitor;	/* 0: none */
	int			 janitor_fd;	/* its pipe's write end */

	struct grgw_addr	 fa[FLOAT_MAX];	/* fl's addresses alone */
	uint64_t		 hold_until;	/* the engine's, as applied */
	struct pmsg_role	 pending;	/* the latest word, to apply */
	int			 has_pending;
	struct event		*apply_ev;
	uint64_t		 kernel_until;	/* the kernel's hold (mono ms;
						 * 0: none, or not known) */
	uint64_t		 kernel_deadline; /* the deadline it is for */

	int			 drain_ok;	/* its table is in */
	struct event		*drain_timer;
	pairhold_before_cb	 before;
	int			 release_waiting;	/* on before() */
	char			 release_why[PMSG_TEXT_MAX + 1];
	struct event		*release_timer;
};

static void	apply_cb(evutil_socket_t, short, void *);
static void	apply_pending(struct pairhold *);
static void	release_timer_cb(evutil_socket_t, short, void *);
static void	drain_timer_cb(evutil_socket_t, short, void *);

/* The interface that holds a, into ifname; -1 if none. */
static int
iface_of(const struct grgw_addr *a, char ifname[IF_NAMESIZE])
{
	struct ifaddrs	*ifa, *i;
	const void	*p;
	int		 found = -1;

	if (getifaddrs(&ifa) == -1)
		return -1;
	for (i = ifa; i != NULL && found == -1; i = i->ifa_next) {
		if (i->ifa_addr == NULL || i->ifa_name == NULL ||
		    i->ifa_addr->sa_family != a->family)
			continue;
		p = a->family == AF_INET ?
		    (const void *)&((struct sockaddr_in *)(void *)
		    i->ifa_addr)->sin_addr :
		    (const void *)&((struct sockaddr_in6 *)(void *)
		    i->ifa_addr)->sin6_addr;
		if (memcmp(p, a->addr, (size_t)addr_len(a->family)) == 0 &&
		    strlen(i->ifa_name) < IF_NAMESIZE) {
			snprintf(ifname, IF_NAMESIZE, "%s", i->ifa_name);
			found = 0;
		}
	}
	freeifaddrs(ifa);
	return found;
}

static int
host_len(const struct grgw_addr *a)
{
	return a->family == AF_INET ? 32 : 128;
}

static void
hold_cancel(struct pairhold *ph)
{
	if (ph->hold_timer != NULL)
		evtimer_del(ph->hold_timer);
}

/*
 * The kernel's hold (netlink/floatguard.c) set to the engine's deadline
 * (mono ms; 0: none), and renewed at every deadline the engine gives,
 * so that it never ends before the parent's own: the kernel counts in
 * ticks (4 ms at 250 Hz) and rounds a timeout down, so it is given a
 * quarter of the margin more.  That still ends it three quarters of the
 * margin before the partner may take the addresses (the deadline lies a
 * margin before), and the kernel is never late.  From then on it drops
 * the addresses' traffic even when this process cannot run.
 */
static int
kernel_hold(struct pairhold *ph, uint64_t deadline)
{
	uint64_t	 now = chan_mono_ms(), until;
	uint32_t	 ms;
	int		 rc;

	until = deadline == 0 ? 0 : deadline + ph->cfg->pair.margin_ms / 4;
	if (until != 0 && until <= now)
		until = 0;
	ms = until == 0 ? 0 : until - now > UINT32_MAX ? UINT32_MAX :
	    (uint32_t)(until - now);
	rc = gwnl_floatguard_hold(ph->fa, ph->n_fl, ms);
	/* A table deleted behind our back: put back, then held again. */
	if (rc == -ENOENT) {
		log_warnx("pair: the kernel's hold tables (%s) were deleted "
		    "behind grgw's back; installing them again",
		    GWNL_FLOAT_TABLE);
		if (gwnl_floatguard_install(ph->nl, ph->fa, ph->n_fl) == 0)
			rc = gwnl_floatguard_hold(ph->fa, ph->n_fl, ms);
	}
	if (rc != 0) {
		/* not known: set it again at the next word */
		ph->kernel_until = ph->kernel_deadline = 0;
		log_warnx("pair: the kernel's hold of the floating addresses "
		    "cannot be set: %s", strerror(-rc));
		return rc;
	}
	ph->kernel_until = until;
	ph->kernel_deadline = until == 0 ? 0 : deadline;
	return 0;
}

/*
 * Off this host, every one of them (a failure is logged and the others
 * still go: what stays is what a later drop or `down` removes).
 */
static void
release(struct pairhold *ph, const char *why)
{
	char	 err[256], buf[INET6_ADDRSTRLEN];
	int	 i;

	hold_cancel(ph);
	if (ph->announce_timer != NULL)
		evtimer_del(ph->announce_timer);
	ph->release_waiting = 0;
	if (ph->release_timer != NULL)
		evtimer_del(ph->release_timer);
	if (!ph->held)
		return;
	for (i = 0; i < ph->n_fl; i++)
		if (nl_float_del(ph->fl[i].ifname, &ph->fl[i].a, err,
		    sizeof(err)) < 0)
			log_warnx("pair: cannot remove %s from %s: %s",
			    addr_fmt(&ph->fl[i].a, buf, sizeof(buf)),
			    ph->fl[i].ifname, err);
	ph->held = 0;
	(void)kernel_hold(ph, 0);
	log_info("pair: floating addresses released: %s", why);
	ph->cb(0, ph->last.epoch == ph->taken_epoch, why, ph->arg);
}

/* Tell the links where the addresses are; quietly after the first. */
static void
announce(struct pairhold *ph, int loud)
{
	char	 err[256], buf[INET6_ADDRSTRLEN];
	int	 i;

	for (i = 0; i < ph->n_fl; i++)
		if (float_announce(ph->fl[i].ifname, &ph->fl[i].a, err,
		    sizeof(err)) < 0 && loud)
			log_warnx("pair: cannot announce %s on %s: %s",
			    addr_fmt(&ph->fl[i].a, buf, sizeof(buf)),
			    ph->fl[i].ifname, err);
}

static void
announce_schedule(struct pairhold *ph)
{
	struct timeval	 tv;
	unsigned	 ms;

	if (ph->announced >= nitems(reannounce_ms))
		return;
	ms = reannounce_ms[ph->announced] -
	    (ph->announced > 0 ? reannounce_ms[ph->announced - 1] : 0);
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(ph->announce_timer, &tv);
}

static void
announce_again(evutil_socket_t fd, short ev, void *arg)
{
	struct pairhold	*ph = arg;

	(void)fd;
	(void)ev;
	if (!ph->held)
		return;
	announce(ph, 0);
	ph->announced++;
	announce_schedule(ph);
}

/*
 * The kernel's hold to until, then the addresses on this host, then told
 * to the links (ARP, neighbour advertisement).
 */
static void
take(struct pairhold *ph, uint64_t until, const char *why)
{
	char	 err[256], buf[INET6_ADDRSTRLEN];
	int	 i, rc, again;

	if (ph->held)
		return;
	/* Active again within a drain: what comes is ours to carry. */
	if (ph->drain_timer != NULL && evtimer_pending(ph->drain_timer, NULL)) {
		evtimer_del(ph->drain_timer);
		drain_timer_cb(-1, 0, ph);
	}
	(void)kernel_hold(ph, until);
	for (i = 0; i < ph->n_fl; i++) {
		addr_fmt(&ph->fl[i].a, buf, sizeof(buf));
		rc = nl_float_add(ph->fl[i].ifname, &ph->fl[i].a,
		    host_len(&ph->fl[i].a), err, sizeof(err));
		if (rc < 0)
			log_warnx("pair: cannot add %s to %s: %s", buf,
			    ph->fl[i].ifname, err);
	}
	announce(ph, 1);
	ph->announced = 0;
	announce_schedule(ph);
	ph->held = 1;
	/* The same epoch held again (R8) is no takeover. */
	if (!(again = ph->last.epoch == ph->taken_epoch))
		ph->takes++;
	ph->taken_epoch = ph->last.epoch;
	log_info("pair: floating addresses taken: %s", why);
	ph->cb(1, again, why, ph->arg);
}

/*
 * The janitor: a child that waits for the end of its pipe and then takes
 * every floating address off this host.  The parent holds the other end
 * (close-on-exec: charon, the hooks and the network process never do),
 * so the end comes when the parent exits or is killed, whatever the way.
 * A daemon that crashes while active would otherwise leave the site's
 * addresses on this host while its partner takes them over (the partner
 * cannot know: the heartbeats stop either way).  After a clean stop the
 * addresses are gone already, and the janitor finds nothing to do.
 */
static void
janitor_run(struct pairhold *ph, int rfd)
{
	char	 b, err[256];
	ssize_t	 n;
	int	 i;

	prctl(PR_SET_NAME, "grgw-float", 0, 0, 0);
	signal(SIGTERM, SIG_IGN);	/* the end of the pipe, nothing else */
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	if (dup2(rfd, 3) == -1 || close_range(4, ~0U, 0) == -1)
		_exit(126);
	do
		n = read(3, &b, 1);
	while (n == -1 && errno == EINTR);
	for (i = 0; i < ph->n_fl; i++)
		(void)nl_float_del(ph->fl[i].ifname, &ph->fl[i].a, err,
		    sizeof(err));
	_exit(0);
}

static int
janitor_start(struct pairhold *ph, char *err, size_t errlen)
{
	int	 p[2];
	pid_t	 pid;

	if (pipe2(p, O_CLOEXEC) == -1)
		return err_set(err, errlen, "pair: pipe: %s", strerror(errno));
	if ((pid = fork()) == -1) {
		close(p[0]);
		close(p[1]);
		return err_set(err, errlen, "pair: fork: %s", strerror(errno));
	}
	if (pid == 0) {
		close(p[1]);
		janitor_run(ph, p[0]);
	}
	close(p[0]);
	ph->janitor = pid;
	ph->janitor_fd = p[1];
	return 0;
}

static void
janitor_stop(struct pairhold *ph)
{
	int	 status;

	if (ph->janitor <= 0)
		return;
	close(ph->janitor_fd);
	while (waitpid(ph->janitor, &status, 0) == -1 && errno == EINTR)
		;
	ph->janitor = 0;
}

static void
hold_expired(evutil_socket_t fd, short ev, void *arg)
{
	struct pairhold	*ph = arg;

	(void)fd;
	(void)ev;
	/*
	 * A word read in the same turn of the loop is newer than the hold
	 * that ran out: it goes first (it may extend the hold, or say to
	 * let go).  The timer may also have been due before a word that
	 * re-armed it.
	 */
	apply_pending(ph);
	if (ph->held && ph->hold_until > chan_mono_ms())
		return;
	release(ph, "the role engine's hold ran out without a new one");
}

/* The floating addresses and where they go, from cfg's [site] and [pair]. */
static int
fl_setup(struct pairhold *ph, const struct grgw_config *cfg, char *err,
    size_t errlen)
{
	char		 buf[INET6_ADDRSTRLEN];
	int		 i, lan = 0;

	if (iface_of(&cfg->pair.address, ph->lan_if) == -1)
		return err_set(err, errlen, "%s: [pair] address %s is not an "
		    "address of this host", cfg->path,
		    addr_fmt(&cfg->pair.address, buf, sizeof(buf)));
	for (i = 0; i < cfg->site.n_lan_interfaces; i++)
		if (strcmp(cfg->site.lan_interfaces[i], ph->lan_if) == 0)
			lan = 1;
	if (!lan)
		return err_set(err, errlen, "%s: [pair] address %s is on %s, "
		    "which is not a lan_interface of [site]: the LAN "
		    "addresses float where it is", cfg->path,
		    addr_fmt(&cfg->pair.address, buf, sizeof(buf)),
		    ph->lan_if);
	ph->n_fl = 0;
	for (i = 0; i < cfg->site.n_lan_addresses; i++) {
		ph->fl[ph->n_fl].ifname = ph->lan_if;
		ph->fl[ph->n_fl++].a = cfg->site.lan_addresses[i];
	}
	ph->fl[ph->n_fl].ifname = cfg->site.wan_interface;
	ph->fl[ph->n_fl++].a = cfg->site.wan_address;
	for (i = 0; i < ph->n_fl; i++)
		ph->fa[i] = ph->fl[i].a;
	return 0;
}

/*
 * Whatever floating address is on this host while nothing of ours holds
 * it (a daemon before this one was killed with its janitor): off.  The
 * number removed, or -1.
 */
static int
fl_clear(struct pairhold *ph, char *err, size_t errlen)
{
	char	 e[256], buf[INET6_ADDRSTRLEN];
	int	 i, n = 0, rc = 0;

	for (i = 0; i < ph->n_fl; i++) {
		if (nl_float_has(ph->fl[i].ifname, &ph->fl[i].a, e,
		    sizeof(e)) != 1)
			continue;
		if (nl_float_del(ph->fl[i].ifname, &ph->fl[i].a, e,
		    sizeof(e)) < 0) {
			rc = err_set(err, errlen, "cannot remove %s from %s: "
			    "%s", addr_fmt(&ph->fl[i].a, buf, sizeof(buf)),
			    ph->fl[i].ifname, e);
			continue;
		}
		n++;
	}
	return rc == -1 ? -1 : n;
}

int
pairhold_clear(const struct grgw_config *cfg, char *err, size_t errlen)
{
	struct pairhold	 ph;

	memset(&ph, 0, sizeof(ph));
	if (fl_setup(&ph, cfg, err, errlen) == -1)
		return -1;
	return fl_clear(&ph, err, errlen);
}

struct pairhold *
pairhold_new(struct event_base *base, struct gwnl *nl,
    const struct grgw_config *cfg, pairhold_cb cb, void *arg, char *err,
    size_t errlen)
{
	struct pairhold	*ph;
	int		 n;

	if ((ph = calloc(1, sizeof(*ph))) == NULL) {
		err_set(err, errlen, "out of memory");
		return NULL;
	}
	ph->base = base;
	ph->nl = nl;
	ph->cfg = cfg;
	ph->cb = cb;
	ph->arg = arg;
	if (fl_setup(ph, cfg, err, errlen) == -1) {
		free(ph);
		return NULL;
	}
	/* A gateway that starts holds nothing. */
	if ((n = fl_clear(ph, err, errlen)) == -1) {
		free(ph);
		return NULL;
	}
	if (n > 0)
		log_warnx("pair: %d floating address(es) left on this host "
		    "by an earlier run removed", n);
	if ((n = gwnl_floatguard_install(nl, ph->fa, ph->n_fl)) != 0) {
		err_set(err, errlen, "cannot install the kernel's hold of the "
		    "floating addresses (nftables table %s): %s",
		    GWNL_FLOAT_TABLE, strerror(-n));
		free(ph);
		return NULL;
	}
	/* Not needed for safety: a handover without it loses what the
	 * nodes send while the addresses move. */
	if ((n = gwnl_drain_install(nl, cfg, ph->lan_if)) == 0)
		ph->drain_ok = 1;
	else
		log_warnx("pair: no drain for handovers (nftables table "
		    "netdev %s on %s: %s): what the nodes send to this gateway "
		    "while the addresses move to the partner is lost",
		    GWNL_DRAIN_TABLE, ph->lan_if, n == -ENOENT ? "no peer "
		    "prefix" : strerror(-n));
	ph->janitor_fd = -1;
	if (janitor_start(ph, err, errlen) == -1) {
		free(ph);
		return NULL;
	}
	if ((ph->hold_timer = evtimer_new(base, hold_expired, ph)) == NULL ||
	    (ph->announce_timer = evtimer_new(base, announce_again,
	    ph)) == NULL ||
	    (ph->apply_ev = evtimer_new(base, apply_cb, ph)) == NULL ||
	    (ph->release_timer = evtimer_new(base, release_timer_cb,
	    ph)) == NULL ||
	    (ph->drain_timer = evtimer_new(base, drain_timer_cb,
	    ph)) == NULL) {
		if (ph->release_timer != NULL)
			event_free(ph->release_timer);
		if (ph->hold_timer != NULL)
			event_free(ph->hold_timer);
		if (ph->announce_timer != NULL)
			event_free(ph->announce_timer);
		if (ph->apply_ev != NULL)
			event_free(ph->apply_ev);
		err_set(err, errlen, "out of memory");
		janitor_stop(ph);
		free(ph);
		return NULL;
	}
	return ph;
}

/*
 * The engine's words are applied once the messages that came together
 * have been read, and only the latest of them: each word supersedes the
 * ones before it, and a parent that fell behind (a take or a release
 * costs tens of ms on a slow host) would otherwise work through stale
 * holds one by one, releasing on each and taking again on the next, and
 * never catch up.  Releasing waits no longer than the messages already
 * read.
 */
void
pairhold_role(struct pairhold *ph, const struct pmsg_role *ro)
{
	ph->pending = *ro;
	if (!ph->has_pending) {
		ph->has_pending = 1;
		event_active(ph->apply_ev, EV_TIMEOUT, 1);
	}
}

/*
 * The engine says to let go: should the owner first want the addresses
 * for a moment (pairhold_set_before()), wait for pairhold_release_now(),
 * at most margin_ms / 2 and never past the hold's deadline (the hold
 * timer runs on).  1 while waiting.
 */
static int
release_deferred(struct pairhold *ph, const char *why, uint64_t now)
{
	struct timeval	 tv;
	uint64_t	 wait = ph->cfg->pair.margin_ms / 2;

	if (ph->release_waiting)
		return 1;
	if (ph->before == NULL || ph->hold_until <= now)
		return 0;
	if (ph->hold_until - now < wait)
		wait = ph->hold_until - now;
	snprintf(ph->release_why, sizeof(ph->release_why), "%s", why);
	if (!ph->before(ph->arg))
		return 0;
	ph->release_waiting = 1;
	tv.tv_sec = (time_t)(wait / 1000);
	tv.tv_usec = (suseconds_t)(wait % 1000) * 1000;
	evtimer_add(ph->release_timer, &tv);
	return 1;
}

static void
release_timer_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct pairhold	*ph = arg;

	(void)fd;
	(void)ev;
	if (ph->release_waiting)
		release(ph, ph->release_why);
}

static void
drain_timer_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct pairhold	*ph = arg;
	char		 e[256];
	int		 rc;

	(void)fd;
	(void)ev;
	if ((rc = gwnl_drain_set(ph->lan_if, NULL, e, sizeof(e))) != 0)
		log_warnx("pair: cannot stop the drain to the partner: %s", e);
	else
		log_info("pair: drain to the partner ended");
}

void
pairhold_drain_end(struct pairhold *ph)
{
	if (ph == NULL || !evtimer_pending(ph->drain_timer, NULL))
		return;
	evtimer_del(ph->drain_timer);
	drain_timer_cb(-1, 0, ph);
}

int
pairhold_drain(struct pairhold *ph, uint32_t ms)
{
	struct timeval	 tv = { ms / 1000, (ms % 1000) * 1000 };
	char		 e[256];

	if (ph == NULL || !ph->drain_ok)
		return -1;
	if (gwnl_drain_set(ph->lan_if, &ph->cfg->pair.partner, e,
	    sizeof(e)) != 0) {
		log_warnx("pair: cannot drain to the partner: %s", e);
		return -1;
	}
	log_info("pair: what the nodes still send here goes on to the "
	    "partner for %u ms (drain)", ms);
	evtimer_add(ph->drain_timer, &tv);
	return 0;
}

void
pairhold_set_before(struct pairhold *ph, pairhold_before_cb before)
{
	if (ph != NULL)
		ph->before = before;
}

void
pairhold_release_now(struct pairhold *ph)
{
	if (ph != NULL && ph->release_waiting)
		release(ph, ph->release_why);
}

static void
role_apply(struct pairhold *ph, const struct pmsg_role *ro)
{
	struct timeval	 tv;
	const char	*why;
	uint64_t	 now, left;
	int		 was = ph->last.role;

	ph->last = *ro;
	clock_gettime(CLOCK_MONOTONIC, &ph->last_at);
	now = (uint64_t)ph->last_at.tv_sec * 1000 +
	    (uint64_t)ph->last_at.tv_nsec / 1000000;
	/* A hold that ran out while the message waited is no hold. */
	if (ro->role != PAIR_ACTIVE || ro->hold_until_ms <= now) {
		if (!ph->held)
			return;
		why = ro->role == PAIR_ACTIVE ? "the role engine's hold ran "
		    "out" : ro->reason[0] != '\0' ? ro->reason :
		    pair_role_name(ro->role);
		if (ro->role != PAIR_ACTIVE && release_deferred(ph, why, now))
			return;
		release(ph, why);
		return;
	}
	/* Active after all: nothing to wait for. */
	if (ph->release_waiting) {
		ph->release_waiting = 0;
		evtimer_del(ph->release_timer);
	}
	/* The new hold first: from here on, this is how long we may. */
	ph->hold_until = ro->hold_until_ms;
	left = ro->hold_until_ms - now;
	tv.tv_sec = (time_t)(left / 1000);
	tv.tv_usec = (suseconds_t)(left % 1000) * 1000;
	evtimer_add(ph->hold_timer, &tv);
	if (!ph->held) {
		take(ph, ro->hold_until_ms, was != PAIR_ACTIVE &&
		    ro->reason[0] != '\0' ? ro->reason : "active");
		return;
	}
	/* The kernel's follows every change, up or down. */
	if (ro->hold_until_ms != ph->kernel_deadline || ph->kernel_until <= now)
		(void)kernel_hold(ph, ro->hold_until_ms);
}

/* The latest word read, if it waits. */
static void
apply_pending(struct pairhold *ph)
{
	if (!ph->has_pending)
		return;
	ph->has_pending = 0;
	role_apply(ph, &ph->pending);
}

static void
apply_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct pairhold	*ph = arg;

	(void)fd;
	(void)ev;
	apply_pending(ph);
}

void
pairhold_rehold(struct pairhold *ph)
{
	if (ph == NULL || !ph->held)
		return;
	/* Now, to the deadline in force (none left: let go, as the kernel
	 * would by itself); a failure is retried at the next word. */
	(void)kernel_hold(ph, ph->hold_until > chan_mono_ms() ?
	    ph->hold_until : 0);
}

uint32_t
pairhold_kernel_left(const struct pairhold *ph)
{
	uint64_t	 now = chan_mono_ms();

	if (ph->kernel_until <= now)
		return 0;
	return ph->kernel_until - now > UINT32_MAX ? UINT32_MAX :
	    (uint32_t)(ph->kernel_until - now);
}

void
pairhold_drop(struct pairhold *ph, const char *why)
{
	if (ph == NULL)
		return;
	ph->has_pending = 0;	/* a word of the process gone counts no more */
	release(ph, why);
}

int
pairhold_held(const struct pairhold *ph)
{
	return ph != NULL && ph->held;
}

const struct pmsg_role *
pairhold_last(const struct pairhold *ph)
{
	return ph->has_pending ? &ph->pending : &ph->last;
}

uint32_t
pairhold_partner_age(const struct pairhold *ph)
{
	struct timespec	 now;
	uint64_t	 age, since;

	if (ph->last.partner_age_ms == UINT32_MAX || ph->last_at.tv_sec == 0)
		return UINT32_MAX;
	clock_gettime(CLOCK_MONOTONIC, &now);
	since = (uint64_t)((now.tv_sec - ph->last_at.tv_sec) * 1000 +
	    (now.tv_nsec - ph->last_at.tv_nsec) / 1000000);
	/*
	 * The engine says at once when the partner stops being heard, and
	 * otherwise only now and then: while its word is fresh, a partner
	 * seen is still seen (its age as last said).  Past that, the network
	 * process is not talking, and the age runs on.
	 */
	if (ph->last.partner_seen && since < PAIRHOLD_QUIET_MS +
	    ph->cfg->pair.dead_ms)
		return ph->last.partner_age_ms;
	age = ph->last.partner_age_ms + since;
	return age >= UINT32_MAX ? UINT32_MAX - 1 : (uint32_t)age;
}

uint64_t
pairhold_takes(const struct pairhold *ph)
{
	return ph->takes;
}

uint64_t
pairhold_taken_epoch(const struct pairhold *ph)
{
	return ph->taken_epoch;
}

static void
told_nobody(int held, int same_epoch, const char *why, void *arg)
{
	(void)held;
	(void)same_epoch;
	(void)why;
	(void)arg;
}

void
pairhold_free(struct pairhold *ph)
{
	if (ph == NULL)
		return;
	ph->cb = told_nobody;		/* the owner is going away */
	release(ph, "stopping");
	janitor_stop(ph);
	if (ph->hold_timer != NULL)
		event_free(ph->hold_timer);
	if (ph->announce_timer != NULL)
		event_free(ph->announce_timer);
	if (ph->apply_ev != NULL)
		event_free(ph->apply_ev);
	if (ph->release_timer != NULL)
		event_free(ph->release_timer);
	if (ph->drain_timer != NULL)
		event_free(ph->drain_timer);
	free(ph);
}
