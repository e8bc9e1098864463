/*
 * The network process seen from the parent: start it (fork, then exec of
 * this very binary, so that it begins with a fresh address space that
 * holds no secret of ours), hand it what it needs, hear what it learns,
 * and restart it when it dies: at once for the first deaths, after a
 * pause in a crash loop.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <sodium.h>

#include "grgw.h"
#include "chan.h"
#include "netproc.h"
#include "pmsg.h"
#include "sandbox.h"

#define LOOP_DEATHS		10	/* deaths within LOOP_WINDOW_S ... */
#define LOOP_WINDOW_S		10
#define LOOP_PAUSE_MS		1000	/* ... make restarts wait this long */
#define STOP_WAIT_MS		1000

struct netproc {
	struct event_base	*base;
	const struct grgw_config *cfg;
	netproc_cb		 cb;
	void			*arg;
	uid_t			 uid;
	gid_t			 gid;
	char			 root[PATH_MAX];

	uint8_t			*key;		/* sodium_malloc'ed: the
						 * probe key, then the next */
	size_t			 key_len;	/* PMSG_KEY_LEN or _KEYS_MAX */
	uint8_t			*pair_key;	/* sodium_malloc'ed: the
						 * heartbeat key(s), [pair] */
	size_t			 pair_key_len;	/* 0: no pair */
	uint64_t		 hold_epoch;	/* the floating addresses */
	uint64_t		 hold_until;	/* held: PMSG_PAIR_RESUME */
	char			*published;	/* latest etcd document */
	int			 path_up[PROBE_NPATHS];
	int			 etcd_known;	/* this run said PMSG_ETCD */
	int			 etcd_healthy;
	char			 etcd_error[PMSG_TEXT_MAX + 1];

	pid_t			 pid;
	int			 pidfd;
	struct event		*ev_exit;
	struct chan		*chan;
	struct event		*ev_restart;
	int			 ready;		/* this run said READY */
	int			 ever_ready;
	unsigned		 restarts;
	time_t			 deaths[LOOP_DEATHS];	/* ring */
	unsigned		 n_deaths;
	int			 stopping;
	int			 replacing;	/* stopped for a new config */
};

static void	proc_spawn(struct netproc *);

static void
tell(struct netproc *np, struct netproc_news *n)
{
	np->cb(n, np->arg);
}

static void
tell_simple(struct netproc *np, enum netproc_what what, const char *why,
    int first)
{
	struct netproc_news	 n;

	memset(&n, 0, sizeof(n));
	n.what = what;
	n.why = why;
	n.first = first;
	tell(np, &n);
}

/* ---- messages from the network process ---------------------------------- */

static void
on_path(struct netproc *np, const struct pmsg *m)
{
	struct netproc_news	 n;
	struct path_stats	 st;

	memset(&n, 0, sizeof(n));
	if (pmsg_path_decode(m->body, m->len, &n.path, &n.changed,
	    &st) == -1) {
		log_warnx("network process: a malformed path message");
		return;
	}
	np->path_up[n.path] = st.up;
	n.what = NETPROC_PATH;
	n.stats = &st;
	tell(np, &n);
}

static void
on_ready(struct netproc *np, const struct pmsg *m)
{
	char	 why[PMSG_TEXT_MAX + 1];
	int	 ok, first = !np->ever_ready;

	if (pmsg_ready_decode(m->body, m->len, &ok, why, sizeof(why)) == -1) {
		log_warnx("network process: a malformed ready message");
		return;
	}
	if (!ok) {
		tell_simple(np, NETPROC_FAILED, why, first);
		return;
	}
	np->ready = 1;
	np->ever_ready = 1;
	log_info("network process (pid %d) runs as uid %u", (int)np->pid,
	    (unsigned)np->uid);
	tell_simple(np, NETPROC_READY, NULL, first);
}

static void
on_want(struct netproc *np, const struct pmsg *m)
{
	struct netproc_news	 n;

	memset(&n, 0, sizeof(n));
	if (pmsg_want_decode(m->body, m->len, &n.ticket, &n.doc) == -1) {
		log_warnx("network process: a malformed document request");
		return;
	}
	n.what = NETPROC_WANT;
	tell(np, &n);
}

static void
on_etcd(struct netproc *np, const struct pmsg *m)
{
	if (pmsg_etcd_decode(m->body, m->len, &np->etcd_healthy,
	    np->etcd_error, sizeof(np->etcd_error)) == -1) {
		log_warnx("network process: a malformed etcd message");
		np->etcd_known = 0;
		return;
	}
	np->etcd_known = 1;
}

static void
on_role(struct netproc *np, const struct pmsg *m)
{
	struct netproc_news	 n;
	struct pmsg_role	 ro;

	if (np->pair_key_len == 0 ||
	    pmsg_role_decode(m->body, m->len, &ro) == -1) {
		log_warnx("network process: a malformed or unexpected role "
		    "message");
		return;
	}
	memset(&n, 0, sizeof(n));
	n.what = NETPROC_ROLE;
	n.role = &ro;
	tell(np, &n);
}

static void
on_message(const struct pmsg *m, void *arg)
{
	struct netproc	*np = arg;

	switch (m->type) {
	case PMSG_ROLE:
		on_role(np, m);
		break;
	case PMSG_ETCD:
		on_etcd(np, m);
		break;
	case PMSG_PATH:
		on_path(np, m);
		break;
	case PMSG_READY:
		on_ready(np, m);
		break;
	case PMSG_WANT:
		on_want(np, m);
		break;
	default:
		log_warnx("network process: unexpected message %u; stopping "
		    "it", (unsigned)m->type);
		if (np->pid > 0)
			kill(np->pid, SIGKILL);
		break;
	}
}

static void
on_close(const char *why, void *arg)
{
	struct netproc	*np = arg;

	/* Its exit (seen through the pidfd) decides what happens next. */
	if (!np->stopping && np->pid > 0) {
		log_debug("network process: channel closed (%s)", why);
		kill(np->pid, SIGKILL);
	}
}

/* ---- life and death ------------------------------------------------------------ */

static void
describe_status(int status, char *buf, size_t size)
{
	if (WIFSIGNALED(status))
		snprintf(buf, size, "killed by signal %d%s", WTERMSIG(status),
		    WTERMSIG(status) == SIGSYS ? " (a system call outside "
		    "its seccomp filter)" : "");
	else if (WIFEXITED(status))
		snprintf(buf, size, "exited with status %d",
		    WEXITSTATUS(status));
	else
		snprintf(buf, size, "ended");
}

/* How long to wait before the next start: 0 unless it dies in a loop. */
static unsigned
restart_delay(struct netproc *np)
{
	time_t	 now = time(NULL), oldest;

	np->deaths[np->n_deaths++ % LOOP_DEATHS] = now;
	if (np->n_deaths < LOOP_DEATHS)
		return 0;
	oldest = np->deaths[np->n_deaths % LOOP_DEATHS];
	return now - oldest < LOOP_WINDOW_S ? LOOP_PAUSE_MS : 0;
}

static void
proc_reaped(struct netproc *np, int status)
{
	struct timeval	 tv;
	char		 why[160];
	unsigned	 ms;

	describe_status(status, why, sizeof(why));
	if (np->ev_exit != NULL)
		event_free(np->ev_exit);
	np->ev_exit = NULL;
	if (np->pidfd >= 0)
		close(np->pidfd);
	np->pidfd = -1;
	chan_free(np->chan);
	np->chan = NULL;
	np->pid = 0;
	np->ready = 0;
	np->etcd_known = 0;
	if (np->stopping)
		return;
	if (np->replacing) {
		/* Not a death: the same paths, the new settings, at once. */
		np->replacing = 0;
		log_info("network process restarted with the new "
		    "configuration");
		proc_spawn(np);
		return;
	}
	ms = restart_delay(np);
	log_warnx("network process %s; restarting it%s", why,
	    ms > 0 ? " after a pause (it keeps dying)" : "");
	np->restarts++;
	tell_simple(np, NETPROC_EXITED, why, 0);
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(np->ev_restart, &tv);
}

static void
exit_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct netproc	*np = arg;
	int		 status;

	if (np->pid <= 0 || waitpid(np->pid, &status, WNOHANG) != np->pid)
		return;
	proc_reaped(np, status);
}

static void
restart_cb(evutil_socket_t fd, short ev, void *arg)
{
	proc_spawn(arg);
}

/*
 * probes = icmp: the network process may open no raw socket itself (it
 * has no capability, and seccomp allows UDP and TCP only), so the daemon
 * opens one per path and hands it over at exec.  A path without one
 * stays down (said once in the log).
 */
static void
proc_icmp_sockets(struct netproc *np, int icmp[PROBE_NPATHS])
{
	static const char *const names[PROBE_NPATHS] = { "tunnel",
	    "underlay" };
	int	 i;

	for (i = 0; i < PROBE_NPATHS; i++) {
		icmp[i] = -1;
		if (np->cfg->probe.method != GRGW_PROBES_ICMP)
			continue;
		icmp[i] = probe_icmp_socket(np->cfg, (enum probe_path)i);
		if (icmp[i] == -1 && errno != ENOENT)
			log_warn("network process: raw ICMP socket for the "
			    "%s path", names[i]);
	}
}

static void
proc_icmp_close(int icmp[PROBE_NPATHS])
{
	int	 i;

	for (i = 0; i < PROBE_NPATHS; i++) {
		if (icmp[i] != -1)
			close(icmp[i]);
		icmp[i] = -1;
	}
}

/* In the child, between fork and exec: async-signal-safe calls only. */
static void
child_exec(struct netproc *np, int fd, const int icmp[PROBE_NPATHS],
    pid_t parent)
{
	char		 sfd[16], suid[16], sgid[16], sppid[16];
	char		 stun[16], sund[16];
	char		*argv[] = { "grgw", NETPROC_ARG, sfd, suid, sgid,
			    np->root, sppid, stun, sund, NULL };
	char		*envp[] = { NULL };
	sigset_t	 all;
	int		 sig, i;

	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	for (sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP && sig != SIGPIPE)
			signal(sig, SIG_DFL);
	if (fcntl(fd, F_SETFD, 0) == -1)
		_exit(127);
	for (i = 0; i < PROBE_NPATHS; i++)
		if (icmp[i] != -1 && fcntl(icmp[i], F_SETFD, 0) == -1)
			_exit(127);
	snprintf(stun, sizeof(stun), "%d", icmp[PROBE_TUNNEL]);
	snprintf(sund, sizeof(sund), "%d", icmp[PROBE_UNDERLAY]);
	snprintf(sfd, sizeof(sfd), "%d", fd);
	snprintf(suid, sizeof(suid), "%u", (unsigned)np->uid);
	snprintf(sgid, sizeof(sgid), "%u", (unsigned)np->gid);
	snprintf(sppid, sizeof(sppid), "%d", (int)parent);
	execve("/proc/self/exe", argv, envp);
	_exit(127);
}

/*
 * The addresses are still held: the new role engine carries the holding
 * on (R7 of pair_role.c) rather than the role moving to the partner.
 */
static int
send_resume(struct netproc *np)
{
	uint8_t		 body[PMSG_PAIR_RESUME_LEN];

	if (np->pair_key_len == 0 || np->hold_epoch == 0 ||
	    np->hold_until <= chan_mono_ms())
		return 0;
	pmsg_pair_resume_encode(np->hold_epoch, np->hold_until, body);
	return chan_send(np->chan, PMSG_PAIR_RESUME, NULL, 0, body,
	    sizeof(body));
}

static int
send_setup(struct netproc *np)
{
	uint8_t	 conf[PMSG_CONF_MAX], start[PMSG_START_LEN];
	int	 len, i;

	if ((len = pmsg_conf_encode(np->cfg, conf, sizeof(conf))) < 0)
		return -1;
	for (i = 0; i < PROBE_NPATHS; i++)
		start[i] = (uint8_t)(np->path_up[i] != 0);
	if (chan_send(np->chan, PMSG_CONF, NULL, 0, conf, (size_t)len) == -1 ||
	    chan_send(np->chan, PMSG_KEY, NULL, 0, np->key,
	    np->key_len) == -1 ||
	    (np->pair_key_len > 0 && chan_send(np->chan, PMSG_PAIR_KEY, NULL,
	    0, np->pair_key, np->pair_key_len) == -1) ||
	    send_resume(np) == -1 ||
	    chan_send(np->chan, PMSG_START, NULL, 0, start,
	    sizeof(start)) == -1)
		return -1;
	if (np->published != NULL)
		netproc_publish(np, np->published);
	return 0;
}

static void
proc_spawn(struct netproc *np)
{
	struct timeval	 tv = { LOOP_PAUSE_MS / 1000, 0 };
	pid_t		 parent = getpid();
	int		 sv[2], icmp[PROBE_NPATHS];

	if (np->stopping || np->pid > 0)
		return;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
		log_warn("network process: socketpair");
		goto retry;
	}
	proc_icmp_sockets(np, icmp);
	fflush(NULL);
	if ((np->pid = fork()) == -1) {
		log_warn("network process: fork");
		close(sv[0]);
		close(sv[1]);
		proc_icmp_close(icmp);
		np->pid = 0;
		goto retry;
	}
	if (np->pid == 0)
		child_exec(np, sv[1], icmp, parent);
	close(sv[1]);
	proc_icmp_close(icmp);
	np->chan = chan_new(np->base, sv[0], on_message, on_close, np);
	np->pidfd = (int)syscall(SYS_pidfd_open, np->pid, 0);
	if (np->pidfd >= 0)
		np->ev_exit = event_new(np->base, np->pidfd, EV_READ |
		    EV_PERSIST, exit_cb, np);
	if (np->chan == NULL || np->ev_exit == NULL ||
	    event_add(np->ev_exit, NULL) == -1 || send_setup(np) == -1) {
		log_warnx("network process: cannot watch or feed it; "
		    "stopping it");
		kill(np->pid, SIGKILL);
		if (np->ev_exit == NULL) {
			int status;

			waitpid(np->pid, &status, 0);
			proc_reaped(np, status);
		}
	}
	return;
retry:
	evtimer_add(np->ev_restart, &tv);
}

/* ---- API ------------------------------------------------------------------------ */

struct netproc *
netproc_new(struct event_base *base, const struct grgw_config *cfg,
    const char *site_dir, netproc_cb cb, void *arg, char *err,
    size_t errlen)
{
	struct netproc	*np;

	if ((np = calloc(1, sizeof(*np))) == NULL) {
		err_set(err, errlen, "out of memory");
		return NULL;
	}
	np->base = base;
	np->cfg = cfg;
	np->cb = cb;
	np->arg = arg;
	np->pidfd = -1;
	if (sandbox_user(cfg->user, &np->uid, &np->gid, err, errlen) == -1)
		goto fail;
	if (snprintf(np->root, sizeof(np->root), "%s/empty", site_dir) >=
	    (int)sizeof(np->root) ||
	    (mkdir(np->root, 0555) == -1 && errno != EEXIST) ||
	    chmod(np->root, 0555) == -1) {
		err_set(err, errlen, "cannot make the network process's root "
		    "%s: %s", np->root, strerror(errno));
		goto fail;
	}
	if ((np->ev_restart = evtimer_new(base, restart_cb, np)) == NULL) {
		err_set(err, errlen, "out of memory");
		goto fail;
	}
	return np;
fail:
	netproc_free(np);
	return NULL;
}

/* Keep key and next (NULL: none) for this run and the next ones. */
static int
proc_keep_keys(struct netproc *np, const uint8_t key[PROBE_KEY_LEN],
    const uint8_t *next)
{
	if (np->key == NULL &&
	    (np->key = sodium_malloc(PMSG_KEYS_MAX)) == NULL)
		return -1;
	memcpy(np->key, key, PROBE_KEY_LEN);
	np->key_len = PMSG_KEY_LEN;
	sodium_memzero(np->key + PROBE_KEY_LEN, PROBE_KEY_LEN);
	if (next != NULL) {
		memcpy(np->key + PROBE_KEY_LEN, next, PROBE_KEY_LEN);
		np->key_len = PMSG_KEYS_MAX;
	}
	return 0;
}

int
netproc_start(struct netproc *np, const uint8_t key[PROBE_KEY_LEN],
    const uint8_t *next, char *err, size_t errlen)
{
	if (proc_keep_keys(np, key, next) == -1)
		return err_set(err, errlen, "out of secure memory");
	proc_spawn(np);
	return 0;
}

int
netproc_set_keys(struct netproc *np, const uint8_t key[PROBE_KEY_LEN],
    const uint8_t *next)
{
	if (np == NULL || key == NULL || proc_keep_keys(np, key, next) == -1)
		return -1;
	/* Not running: the next start sends them (send_setup). */
	if (np->chan == NULL)
		return 0;
	return chan_send(np->chan, PMSG_KEY, NULL, 0, np->key, np->key_len);
}

int
netproc_pair_keys(struct netproc *np, const uint8_t *key,
    const uint8_t *next)
{
	if (np == NULL || key == NULL || (np->pair_key == NULL &&
	    (np->pair_key = sodium_malloc(PMSG_KEYS_MAX)) == NULL))
		return -1;
	memcpy(np->pair_key, key, PMSG_KEY_LEN);
	np->pair_key_len = PMSG_KEY_LEN;
	sodium_memzero(np->pair_key + PMSG_KEY_LEN, PMSG_KEY_LEN);
	if (next != NULL) {
		memcpy(np->pair_key + PMSG_KEY_LEN, next, PMSG_KEY_LEN);
		np->pair_key_len = PMSG_KEYS_MAX;
	}
	if (np->chan == NULL)
		return 0;
	return chan_send(np->chan, PMSG_PAIR_KEY, NULL, 0, np->pair_key,
	    np->pair_key_len);
}

void
netproc_pair_hold(struct netproc *np, uint64_t epoch, uint64_t until_ms)
{
	if (np == NULL)
		return;
	np->hold_epoch = epoch;
	np->hold_until = until_ms;
}

void
netproc_tunnel_new(struct netproc *np)
{
	if (np == NULL || np->chan == NULL)
		return;
	(void)chan_send(np->chan, PMSG_TUNNEL_NEW, NULL, 0, NULL, 0);
}

int
netproc_pair_cmd(struct netproc *np, enum pmsg_pair_cmd cmd)
{
	uint8_t	 b = (uint8_t)cmd;

	if (np == NULL || np->chan == NULL || np->pair_key_len == 0)
		return -1;
	return chan_send(np->chan, PMSG_PAIR_CMD, NULL, 0, &b, sizeof(b));
}

void
netproc_publish(struct netproc *np, const char *json)
{
	char	*copy;

	if (np == NULL || json == NULL)
		return;
	if (np->published != json) {
		if ((copy = strdup(json)) == NULL) {
			log_warn("network process: etcd document");
			return;
		}
		free(np->published);
		np->published = copy;
	}
	if (np->chan != NULL &&
	    chan_send(np->chan, PMSG_PUBLISH, NULL, 0, np->published,
	    strlen(np->published)) == 0)
		np->etcd_healthy = 0;	/* until it says this one is stored */
}

void
netproc_answer(struct netproc *np, uint32_t ticket, const char *text,
    size_t len)
{
	uint8_t	 hdr[PMSG_DOC_HDR_LEN];

	if (np == NULL || np->chan == NULL)
		return;
	pmsg_doc_header(ticket, hdr);
	if (chan_send(np->chan, PMSG_DOC, hdr, sizeof(hdr), text, len) == -1)
		log_warnx("network process: a document of %zu bytes could "
		    "not be sent", len);
}

pid_t
netproc_pid(const struct netproc *np)
{
	return np != NULL ? np->pid : 0;
}

unsigned
netproc_restarts(const struct netproc *np)
{
	return np != NULL ? np->restarts : 0;
}

int
netproc_etcd(const struct netproc *np, int *healthy, const char **error)
{
	if (np == NULL || !np->etcd_known)
		return -1;
	*healthy = np->etcd_healthy;
	*error = np->etcd_error;
	return 0;
}

void
netproc_free(struct netproc *np)
{
	struct timespec	 ts = { 0, 10 * 1000 * 1000 };
	int		 status, i;

	if (np == NULL)
		return;
	np->stopping = 1;
	if (np->chan != NULL) {
		chan_flush(np->chan, STOP_WAIT_MS);
		chan_free(np->chan);	/* it exits at end of file */
		np->chan = NULL;
	}
	if (np->pid > 0) {
		for (i = 0; i < STOP_WAIT_MS / 10; i++) {
			if (waitpid(np->pid, &status, WNOHANG) == np->pid)
				break;
			nanosleep(&ts, NULL);
		}
		if (i == STOP_WAIT_MS / 10) {
			kill(np->pid, SIGKILL);
			waitpid(np->pid, &status, 0);
		}
	}
	if (np->ev_exit != NULL)
		event_free(np->ev_exit);
	if (np->pidfd >= 0)
		close(np->pidfd);
	if (np->ev_restart != NULL)
		event_free(np->ev_restart);
	if (np->key != NULL)
		sodium_free(np->key);
	if (np->pair_key != NULL)
		sodium_free(np->pair_key);
	free(np->published);
	free(np);
}

int
netproc_reconfigure(struct netproc *np, const uint8_t key[PROBE_KEY_LEN],
    const uint8_t *next)
{
	if (np == NULL)
		return -1;
	if (key != NULL && proc_keep_keys(np, key, next) == -1)
		return -1;
	if (np->pid <= 0)
		return 0;	/* the next start reads the new settings */
	np->replacing = 1;
	/* Its paths' states go along (send_setup): no link flap. */
	return kill(np->pid, SIGTERM);
}
