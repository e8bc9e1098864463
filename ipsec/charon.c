/*
 * Supervision of grgw's own charon.
 *
 * charon writes its pid file at the fixed path /run/charon.pid and refuses
 * to start when another charon owns it.  So each grgw charon runs in a
 * mount namespace of its own with a fresh tmpfs on /run; the site
 * directory (which holds the VICI socket, the generated strongswan.conf
 * and charon's log) is bound back into that /run so both sides see it.
 * A strongSwan the host already runs is never touched.
 */
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/pidfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "grgw.h"
#include "ipsec/ipsec.h"

#define CHARON_STOP_GRACE_MS	3000
/*
 * With libipsec, charon is the data plane: every packet between the
 * sites passes its threads, and the kernel queues in front of them (the
 * UDP socket's receive buffer, about 270 ESP packets by default) last a
 * fraction of a second.  On a loaded gateway, other processes at the
 * same priority held it off long enough to overflow them (packets lost
 * in the lab while virtual machines ran beside it), so it runs ahead of
 * them.
 */
#define CHARON_LIBIPSEC_NICE	(-10)
/*
 * Nice alone did not do: for a few hundred ms charon's receiver still
 * fell behind, and the ESP packets the socket had no room for were
 * dropped (the namespace's UdpRcvbufErrors counted exactly the stream's
 * loss).  Its UDP sockets get room for seconds of traffic instead.
 */
#define CHARON_RCVBUF		(8 << 20)
#define CHARON_TUNE_TICK_MS	100
#define CHARON_TUNE_TRIES	300	/* 30 s for charon to load */

struct charon {
	struct event_base *base;
	const struct grgw_config *cfg;
	const char	*site_dir;
	enum grgw_dataplane dp;
	charon_state_cb	cb;
	void		*arg;

	pid_t		pid;
	time_t		started;
	unsigned	restarts;
	struct charon_deaths deaths;
	int64_t		restart_at_ms;	/* monotonic; 0: none scheduled */
	int		stopping;
	int		killed;		/* by us: it had stopped answering */
	struct event	*sigchld;
	struct event	*restart_timer;
	struct event	*tune_timer;	/* until its sockets are grown */
	int		 tune_tries;
	char		vici_path[PATH_MAX];
	char		conf_path[PATH_MAX];
	char		log_path[PATH_MAX];
	char		pid_path[PATH_MAX];
};

static const char plugins_common[] =
    "random nonce kdf hmac sha1 sha2 aes gcm openssl curve25519 pem pkcs1 "
    "pkcs8 x509 pubkey constraints revocation";

int
charon_conf_render(const struct grgw_config *cfg, const char *site_dir,
    enum grgw_dataplane dp, char *buf, size_t size)
{
	int libipsec = dp == GRGW_DP_LIBIPSEC;
	int n;

	/*
	 * libipsec: charon routes the peer prefixes into its TUN device
	 * itself (table 220).  kernel: grgw routes them into the xfrm
	 * interface while the CHILD_SA is up, so charon installs none.
	 */
	n = snprintf(buf, size,
	    "# Written by grgw for site %s at every start; do not edit.\n"
	    "charon {\n"
	    "\tload = %s%s kernel-netlink socket-default vici\n"
	    "\tinstall_routes = %s\n"
	    "\tinstall_virtual_ip = no\n"
	    "\trouting_table = 220\n"
	    "\trouting_table_prio = 220\n"
	    "\tretransmit_timeout = 1.0\n"
	    "\tretransmit_base = 1.4\n"
	    "\tretransmit_tries = 4\n"
	    "\tmake_before_break = yes\n"
	    "\tplugins {\n"
	    "\t\tvici {\n"
	    "\t\t\tsocket = unix://%s/charon.vici\n"
	    "\t\t}\n"
	    "\t\tkernel-libipsec {\n"
	    "\t\t\tallow_peer_ts = no\n"
	    "\t\t}\n"
	    "\t}\n"
	    "\tfilelog {\n"
	    "\t\tgrgw {\n"
	    "\t\t\tpath = %s/charon.log\n"
	    "\t\t\ttime_format = %%F %%T\n"
	    "\t\t\ttime_add_ms = yes\n"
	    "\t\t\tike_name = yes\n"
	    /* Whole lines on disk at once: a charon that dies (kill -9,
	     * a crash, a power cut of the lab's gateway) keeps its last
	     * lines, which say most about why. */
	    "\t\t\tflush_line = yes\n"
	    "\t\t\tdefault = 1\n"
	    "\t\t}\n"
	    "\t}\n"
	    "\tsyslog {\n"
	    "\t}\n"
	    "}\n",
	    cfg->site.name, plugins_common,
	    libipsec ? " kernel-libipsec" : "",
	    libipsec ? "yes" : "no", site_dir, site_dir);
	if (n < 0 || (size_t)n >= size)
		return -1;
	return n;
}

static int
write_file_mode(const char *path, const char *data, size_t len, mode_t mode)
{
	char tmp[PATH_MAX];
	ssize_t w;
	int fd;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
	    mode);
	if (fd == -1)
		return -1;
	w = write(fd, data, len);
	if (w != (ssize_t)len || fsync(fd) == -1) {
		if (w >= 0)
			errno = EIO;
		close(fd);
		unlink(tmp);
		return -1;
	}
	close(fd);
	return rename(tmp, path);
}

/* A mountinfo path field, its \ooo escapes undone, in place. */
static void
unescape_path(char *s)
{
	char	*w = s;

	for (; *s != '\0'; s++, w++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' &&
		    s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*w = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 |
			    (s[3] - '0'));
			s += 3;
		} else
			*w = *s;
	}
	*w = '\0';
}

/* One line of /proc/self/mountinfo: detach its mount if it is below /run
 * and holds no part of the way to keep (the site directory). */
static void
detach_line(char *line, const char *keep)
{
	char	*mp = line;
	size_t	 n;
	int	 i;

	for (i = 0; i < 4 && mp != NULL; i++)
		if ((mp = strchr(mp, ' ')) != NULL)
			mp++;
	if (mp == NULL)
		return;
	mp[strcspn(mp, " ")] = '\0';
	unescape_path(mp);
	n = strlen(mp);
	if (strncmp(mp, "/run/", 5) != 0 ||
	    (strncmp(keep, mp, n) == 0 && (keep[n] == '/' || keep[n] == '\0')))
		return;
	umount2(mp, MNT_DETACH);
}

/*
 * Every mount below /run that is not on the way to the site directory
 * goes from this private copy of the mount table.  They would be hidden
 * under the fresh /run anyway, but a copy of a network namespace's bind
 * mount (`ip netns add` puts them in /run/netns) keeps that namespace
 * alive as long as charon runs: the host could not delete it.
 * Async-signal-safe: read(2) into a fixed buffer.
 */
static void
child_detach_run(const char *keep)
{
	char	 buf[4096], line[PATH_MAX + 1024];
	size_t	 len = 0;
	ssize_t	 n, i;
	int	 fd, skip = 0;

	if ((fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC)) == -1)
		return;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (i = 0; i < n; i++) {
			if (buf[i] != '\n') {
				if (len < sizeof(line) - 1)
					line[len++] = buf[i];
				else
					skip = 1;
				continue;
			}
			line[len] = '\0';
			if (!skip)
				detach_line(line, keep);
			len = 0;
			skip = 0;
		}
	}
	close(fd);
}

/*
 * In the child: private mounts, fresh /run, site directory bound back.
 * Runs between fork and exec: only async-signal-safe work, no logging.
 */
static int
child_private_run(const char *site_dir)
{
	char real[PATH_MAX], fdpath[64], path[PATH_MAX], *p;
	int fd;

	if (unshare(CLONE_NEWNS) == -1)
		return -1;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == -1)
		return -1;
	if (realpath(site_dir, real) == NULL)
		return -1;
	if ((fd = open(real, O_PATH | O_DIRECTORY)) == -1)
		return -1;
	child_detach_run(real);
	child_detach_run(real);	/* a mount table read while it shrinks may skip */
	if (mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV,
	    "mode=0755,size=16m") == -1)
		return -1;
	if (strncmp(real, "/run/", 5) != 0)
		return 0;	/* site dir lives elsewhere: still visible */
	/* Recreate the path below the new /run and bind the old dir there. */
	snprintf(path, sizeof(path), "%s", real);
	for (p = path + 5; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		if (mkdir(path, 0755) == -1 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(path, 0700) == -1 && errno != EEXIST)
		return -1;
	snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", fd);
	if (mount(fdpath, path, NULL, MS_BIND, NULL) == -1)
		return -1;
	close(fd);
	return 0;
}

/* A socket of another process's (a pidfd's) grown if it is a UDP one: 1,
 * or 0 if it is not one (or is gone). */
static int
grow_if_udp(int pidfd, int target)
{
	int	 fd, type = 0, domain = 0, size = CHARON_RCVBUF, grown = 0;
	socklen_t len = sizeof(int);

	if ((fd = pidfd_getfd(pidfd, target, 0)) == -1)
		return 0;
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
	    type == SOCK_DGRAM && (len = sizeof(int)) != 0 &&
	    getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 &&
	    (domain == AF_INET || domain == AF_INET6) &&
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size,
	    sizeof(size)) == 0)
		grown = 1;
	close(fd);
	return grown;
}

/* charon's UDP sockets (IKE, and ESP in UDP) grown to CHARON_RCVBUF:
 * how many, or -1 if its descriptors cannot be read. */
static int
charon_grow_rcvbufs(pid_t pid)
{
	char		 dir[64], path[128], link[64];
	struct dirent	*e;
	DIR		*d;
	ssize_t		 r;
	int		 pidfd, n = 0;

	if ((pidfd = pidfd_open(pid, 0)) == -1)
		return -1;
	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	if ((d = opendir(dir)) == NULL) {
		close(pidfd);
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		r = readlink(path, link, sizeof(link) - 1);
		if (r <= 0)
			continue;
		link[r] = '\0';
		if (strncmp(link, "socket:", 7) == 0)
			n += grow_if_udp(pidfd, atoi(e->d_name));
	}
	closedir(d);
	close(pidfd);
	return n;
}

/* Once charon has loaded (its VICI socket, the last plugin, is there),
 * its sockets exist: grow them. */
static void
charon_tune_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct charon	*c = arg;
	struct timeval	 tv = { 0, CHARON_TUNE_TICK_MS * 1000 };
	int		 n = 0;

	(void)fd;
	(void)ev;
	if (c->pid <= 0)
		return;
	if (access(c->vici_path, F_OK) == 0 &&
	    (n = charon_grow_rcvbufs(c->pid)) != 0) {
		if (n < 0)
			log_warn("charon: cannot reach its sockets; their "
			    "receive buffers stay as they are");
		else
			log_info("charon: %d UDP sockets with %d MiB receive "
			    "buffers", n, CHARON_RCVBUF >> 20);
		return;
	}
	if (++c->tune_tries < CHARON_TUNE_TRIES)
		evtimer_add(c->tune_timer, &tv);
	else
		log_warnx("charon: no UDP socket after %d s; receive buffers "
		    "left as they are", CHARON_TUNE_TRIES * CHARON_TUNE_TICK_MS /
		    1000);
}

static void
charon_tune_start(struct charon *c)
{
	struct timeval	 tv = { 0, CHARON_TUNE_TICK_MS * 1000 };

	if (c->dp != GRGW_DP_LIBIPSEC || c->tune_timer == NULL)
		return;
	c->tune_tries = 0;
	evtimer_add(c->tune_timer, &tv);
}

static void
charon_write_pid(struct charon *c)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%d\n", (int)c->pid);

	if (write_file_mode(c->pid_path, buf, (size_t)n, 0644) == -1)
		log_warn("cannot write %s", c->pid_path);
}

static int
charon_spawn(struct charon *c)
{
	pid_t parent = getpid(), pid;
	int logfd;

	logfd = open(c->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC |
	    O_NOFOLLOW, 0600);
	if (logfd == -1) {
		log_warn("charon: cannot open %s", c->log_path);
		return -1;
	}
	pid = fork();
	if (pid == -1) {
		log_warn("charon: fork");
		close(logfd);
		return -1;
	}
	if (pid == 0) {
		sigset_t none;

		/* charon must not outlive the daemon that supervises it. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(1);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		signal(SIGCHLD, SIG_DFL);
		dup2(logfd, STDOUT_FILENO);
		dup2(logfd, STDERR_FILENO);
		/* Nothing of the daemon's (netlink, VICI, the control
		 * socket, the network process's channel) reaches charon. */
		if (close_range(3, ~0U, 0) == -1)
			_exit(126);
		if (child_private_run(c->site_dir) == -1) {
			dprintf(STDERR_FILENO, "grgw: cannot give charon a "
			    "private /run: %s\n", strerror(errno));
			_exit(126);
		}
		if (c->dp == GRGW_DP_LIBIPSEC)
			(void)setpriority(PRIO_PROCESS, 0,
			    CHARON_LIBIPSEC_NICE);
		setenv("STRONGSWAN_CONF", c->conf_path, 1);
		execl(c->cfg->charon_path, "charon", (char *)NULL);
		dprintf(STDERR_FILENO, "grgw: cannot run %s: %s\n",
		    c->cfg->charon_path, strerror(errno));
		_exit(127);
	}
	close(logfd);
	c->pid = pid;
	c->started = time(NULL);
	charon_write_pid(c);
	log_info("charon started (pid %d, %s data plane)", (int)pid,
	    config_dataplane_name(c->dp));
	charon_tune_start(c);
	if (c->cb != NULL)
		c->cb(1, c->arg);
	return 0;
}

static int64_t
mono_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * The crash-loop rule, shared with the network process (gw/proc.c): a
 * death restarts charon at once, unless it is the CHARON_LOOP_DEATHS-th
 * within CHARON_LOOP_WINDOW_S; then each further death in the loop
 * doubles the wait, from CHARON_BACKOFF_MIN_MS up to CHARON_BACKOFF_MAX_MS.
 */
unsigned
charon_deaths_record(struct charon_deaths *d, time_t now)
{
	d->at[d->n++ % CHARON_LOOP_DEATHS] = now;
	if (!charon_deaths_loop(d, now))
		d->backoff_ms = 0;
	else if (d->backoff_ms == 0)
		d->backoff_ms = CHARON_BACKOFF_MIN_MS;
	else if (d->backoff_ms * 2 <= CHARON_BACKOFF_MAX_MS)
		d->backoff_ms *= 2;
	else
		d->backoff_ms = CHARON_BACKOFF_MAX_MS;
	return d->backoff_ms;
}

int
charon_deaths_loop(const struct charon_deaths *d, time_t now)
{
	time_t	 oldest;

	if (d->n < CHARON_LOOP_DEATHS)
		return 0;
	oldest = d->at[d->n % CHARON_LOOP_DEATHS];
	return now - oldest < CHARON_LOOP_WINDOW_S;
}

static time_t
mono_s(void)
{
	return (time_t)(mono_ms() / 1000);
}

static void
charon_schedule_restart(struct charon *c, unsigned ms)
{
	struct timeval	 tv;

	c->restart_at_ms = mono_ms() + ms;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(c->restart_timer, &tv);
}

static void
charon_restart_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct charon *c = arg;
	unsigned ms;

	c->restart_at_ms = 0;
	if (c->stopping || c->pid != 0)
		return;
	c->restarts++;
	if (charon_spawn(c) == -1) {
		/* A start that fails counts as a death; never spin. */
		ms = charon_deaths_record(&c->deaths, mono_s());
		charon_schedule_restart(c, ms > 0 ? ms :
		    CHARON_BACKOFF_MIN_MS);
	}
}

static void
charon_exited(struct charon *c, int status)
{
	time_t ran = time(NULL) - c->started;
	unsigned ms;

	if (c->killed)
		log_warnx("charon (pid %d) killed after %lds, as it had "
		    "stopped answering", (int)c->pid, (long)ran);
	else if (WIFSIGNALED(status))
		log_warnx("charon (pid %d) killed by signal %d after %lds",
		    (int)c->pid, WTERMSIG(status), (long)ran);
	else
		log_warnx("charon (pid %d) exited with status %d after %lds",
		    (int)c->pid, WEXITSTATUS(status), (long)ran);
	c->pid = 0;
	c->killed = 0;
	evtimer_del(c->tune_timer);
	unlink(c->pid_path);
	if (c->cb != NULL)
		c->cb(0, c->arg);
	if (c->stopping)
		return;

	ms = charon_deaths_record(&c->deaths, mono_s());
	if (ms == 0)
		log_info("restarting charon now");
	else
		log_warnx("charon died %d times within %d s (a crash loop): "
		    "restarting it in %u ms", CHARON_LOOP_DEATHS,
		    CHARON_LOOP_WINDOW_S, ms);
	charon_schedule_restart(c, ms);
}

static void
charon_sigchld_cb(evutil_socket_t sig, short ev, void *arg)
{
	struct charon *c = arg;
	int status;

	/* Only our own child: other modules reap theirs (hooks, ...). */
	if (c->pid != 0 && waitpid(c->pid, &status, WNOHANG) == c->pid)
		charon_exited(c, status);
}

struct charon *
charon_new(struct event_base *base, const struct grgw_config *cfg,
    const char *site_dir, enum grgw_dataplane dp, charon_state_cb cb,
    void *arg)
{
	struct charon *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->base = base;
	c->cfg = cfg;
	c->site_dir = site_dir;
	c->dp = dp;
	c->cb = cb;
	c->arg = arg;
	snprintf(c->vici_path, sizeof(c->vici_path), "%s/charon.vici",
	    site_dir);
	snprintf(c->conf_path, sizeof(c->conf_path), "%s/strongswan.conf",
	    site_dir);
	snprintf(c->log_path, sizeof(c->log_path), "%s/charon.log",
	    site_dir);
	snprintf(c->pid_path, sizeof(c->pid_path), "%s/charon.pid",
	    site_dir);
	c->sigchld = evsignal_new(base, SIGCHLD, charon_sigchld_cb, c);
	c->restart_timer = evtimer_new(base, charon_restart_cb, c);
	c->tune_timer = evtimer_new(base, charon_tune_cb, c);
	if (c->sigchld == NULL || c->restart_timer == NULL ||
	    c->tune_timer == NULL ||
	    evsignal_add(c->sigchld, NULL) == -1) {
		charon_free(c);
		return NULL;
	}
	return c;
}

int
charon_start(struct charon *c)
{
	char conf[4096];
	int n;

	if (access(c->cfg->charon_path, X_OK) == -1) {
		log_warn("charon %s is not executable (install strongSwan's "
		    "charon: apt-get install strongswan-charon "
		    "libcharon-extra-plugins libstrongswan-standard-plugins "
		    "strongswan-swanctl)", c->cfg->charon_path);
		return -1;
	}
	n = charon_conf_render(c->cfg, c->site_dir, c->dp, conf,
	    sizeof(conf));
	if (n < 0) {
		log_warnx("strongswan.conf does not fit its buffer");
		return -1;
	}
	if (write_file_mode(c->conf_path, conf, (size_t)n, 0600) == -1) {
		log_warn("cannot write %s", c->conf_path);
		return -1;
	}
	c->stopping = 0;
	return charon_spawn(c);
}

void
charon_stop(struct charon *c)
{
	int status, waited;
	pid_t r;

	if (c == NULL)
		return;
	c->stopping = 1;
	evtimer_del(c->restart_timer);
	c->restart_at_ms = 0;
	if (c->pid == 0)
		return;
	kill(c->pid, SIGTERM);
	for (waited = 0; waited < CHARON_STOP_GRACE_MS; waited += 20) {
		r = waitpid(c->pid, &status, WNOHANG);
		if (r == c->pid || (r == -1 && errno == ECHILD))
			break;
		usleep(20 * 1000);
	}
	if (waited >= CHARON_STOP_GRACE_MS) {
		log_warnx("charon (pid %d) ignored SIGTERM, killing it",
		    (int)c->pid);
		kill(c->pid, SIGKILL);
		waitpid(c->pid, &status, 0);
	}
	log_info("charon (pid %d) stopped", (int)c->pid);
	c->pid = 0;
	unlink(c->pid_path);
	if (c->cb != NULL)
		c->cb(0, c->arg);
}

void
charon_kill(struct charon *c, const char *why)
{
	if (c == NULL || c->pid == 0 || c->stopping || c->killed)
		return;
	log_warnx("%s: killing charon (pid %d) to restart it", why,
	    (int)c->pid);
	c->killed = 1;
	/* SIGKILL: a stopped or deadlocked process acts on nothing else. */
	if (kill(c->pid, SIGKILL) == -1)
		log_warn("cannot kill charon (pid %d)", (int)c->pid);
}

void
charon_free(struct charon *c)
{
	if (c == NULL)
		return;
	if (c->sigchld != NULL)
		event_free(c->sigchld);
	if (c->restart_timer != NULL)
		event_free(c->restart_timer);
	if (c->tune_timer != NULL)
		event_free(c->tune_timer);
	free(c);
}

pid_t
charon_pid(const struct charon *c)
{
	return c == NULL ? 0 : c->pid;
}

unsigned
charon_restarts(const struct charon *c)
{
	return c == NULL ? 0 : c->restarts;
}

int
charon_crash_loop(const struct charon *c)
{
	return c != NULL && charon_deaths_loop(&c->deaths, mono_s());
}

unsigned
charon_restart_delay_ms(const struct charon *c)
{
	int64_t	 left;

	if (c == NULL || c->restart_at_ms == 0 ||
	    !evtimer_pending(c->restart_timer, NULL))
		return 0;
	left = c->restart_at_ms - mono_ms();
	return left > 0 ? (unsigned)left : 0;
}

const char *
charon_vici_path(const struct charon *c)
{
	return c->vici_path;
}

void
charon_kill_stale(const char *site_dir)
{
	char path[PATH_MAX], buf[64], comm[32];
	FILE *f;
	long pid;
	int i;

	snprintf(path, sizeof(path), "%s/charon.pid", site_dir);
	if ((f = fopen(path, "re")) == NULL)
		return;
	if (fgets(buf, sizeof(buf), f) == NULL || (pid = atol(buf)) <= 1) {
		fclose(f);
		unlink(path);
		return;
	}
	fclose(f);
	/* Only a process that really is charon; the pid may be reused. */
	snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
	if ((f = fopen(path, "re")) != NULL) {
		if (fgets(comm, sizeof(comm), f) != NULL &&
		    strncmp(comm, "charon", 6) == 0) {
			log_info("stopping charon left behind (pid %ld)", pid);
			kill((pid_t)pid, SIGTERM);
			for (i = 0; i < 150 && kill((pid_t)pid, 0) == 0; i++)
				usleep(20 * 1000);
			if (kill((pid_t)pid, 0) == 0)
				kill((pid_t)pid, SIGKILL);
		}
		fclose(f);
	}
	snprintf(path, sizeof(path), "%s/charon.pid", site_dir);
	unlink(path);
}
