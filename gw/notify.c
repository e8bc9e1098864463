/*
 * Local notification of link-state changes: the state file, replaced
 * atomically, for scripts that poll; and the notify hooks, executables
 * run on every transition, for scripts that react (one of them, shipped
 * in gw/hooks/, raises Clearwater alarms).
 *
 * The hooks never block the loop.  Each one is forked and exec'd; its
 * exit is noticed through a pidfd (an fd that becomes readable when the
 * process ends) watched by an event, and the child is then reaped with
 * waitpid() on its own pid, never waitpid(-1), so that other children of
 * the daemon (charon) stay their supervisors' business.  A hook runs in
 * a session and process group of its own, so a timeout kills whatever it
 * started too.  Between a transition and a hook's start the only I/O on
 * the loop is reading the hooks directory and stat()ing its entries:
 * local metadata, no network and no waiting on another process.
 */
#include <sys/queue.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "grgw.h"
#include "strbuf.h"
#include "linkstate.h"
#include "feeds.h"

/* ---- state file ------------------------------------------------------------ */

void
statefile_path(const struct grgw_config *cfg, char *buf, size_t size)
{
	char	 dir[PATH_MAX];

	config_site_dir(cfg, dir, sizeof(dir));
	snprintf(buf, size, "%s/%s", dir, FEEDS_STATEFILE_NAME);
}

static int
write_all(int fd, const char *p, size_t len)
{
	ssize_t	 n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * No fsync: the file lives on /run (tmpfs) and only has to be whole for
 * readers, which rename() guarantees; it need not survive a crash.
 */
int
statefile_write(const char *path, const struct link_view *v)
{
	struct strbuf	 sb;
	char		 tmp[PATH_MAX];
	const char	*slash, *base;
	int		 fd = -1, saved, n, created = 0;

	if (path == NULL || v == NULL || *path == '\0') {
		errno = EINVAL;
		return -1;
	}
	slash = strrchr(path, '/');
	base = slash != NULL ? slash + 1 : path;
	if (*base == '\0') {
		errno = EISDIR;
		return -1;
	}
	if (slash != NULL)
		n = snprintf(tmp, sizeof(tmp), "%.*s/.%s.XXXXXX",
		    (int)(slash - path), path, base);
	else
		n = snprintf(tmp, sizeof(tmp), ".%s.XXXXXX", base);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}

	strbuf_init(&sb);
	linkstate_render_json(v, &sb);
	strbuf_printf(&sb, "\n");
	if (sb.failed) {
		strbuf_free(&sb);
		errno = ENOMEM;
		return -1;
	}
	if ((fd = mkostemp(tmp, O_CLOEXEC)) == -1)
		goto fail;
	created = 1;
	if (fchmod(fd, 0644) == -1 || write_all(fd, sb.s, sb.len) == -1)
		goto fail;
	if (close(fd) == -1) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) == -1)
		goto fail;
	strbuf_free(&sb);
	return 0;
fail:
	saved = errno;
	if (fd != -1)
		close(fd);
	if (created)
		unlink(tmp);
	strbuf_free(&sb);
	errno = saved;
	return -1;
}

/* ---- hooks ------------------------------------------------------------------- */

#define HOOKS_MAX	32		/* files considered per directory */
#define HOOK_ENV_N	10
#define HOOK_ENV_LEN	(GRGW_NAME_MAX + 192)
#define HOOK_PATH	"PATH=/usr/sbin:/usr/bin:/sbin:/bin"
#define HOOK_POLL_MS	100		/* without pidfd: waitpid() poll */
#define HOOK_REAP_MS	1000		/* hooks_free(): wait after SIGKILL */

/* The environment of one run: the transition, as NAME=value strings. */
struct hook_env {
	char	 vars[HOOK_ENV_N][HOOK_ENV_LEN];
};

struct hook {
	TAILQ_ENTRY(hook)	 entry;
	struct hooks		*owner;
	char			 name[NAME_MAX + 1];
	pid_t			 pid;
	int			 pidfd;		/* -1: polling instead */
	struct event		*ev_exit;
	struct event		*ev_timeout;
	int			 timed_out;
	int			 has_queued;
	struct hook_env		 queued;	/* latest transition waiting */
	char			 transition[64];	/* for log lines */
};

TAILQ_HEAD(hook_list, hook);

struct hooks {
	struct event_base	*base;
	char			 dir[PATH_MAX];	/* "" disables */
	unsigned		 timeout_s;
	struct hook_list	 running;	/* only hooks with a process */
	struct hooks_stats	 stats;
};

static void	hook_spawn(struct hook *, const struct hook_env *);

static void
env_build(struct hook_env *env, const struct link_view *v,
    enum link_state old_state)
{
	char		 when[32];
	struct tm	 tm;

	memset(env, 0, sizeof(*env));
	if (gmtime_r(&v->since.tv_sec, &tm) == NULL ||
	    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(when, sizeof(when), "1970-01-01T00:00:00Z");
	snprintf(env->vars[0], HOOK_ENV_LEN, "%s", HOOK_PATH);
	snprintf(env->vars[1], HOOK_ENV_LEN, "GRGW_SITE=%s",
	    v->site != NULL ? v->site : "");
	snprintf(env->vars[2], HOOK_ENV_LEN, "GRGW_PEER=%s",
	    v->peer != NULL ? v->peer : "");
	snprintf(env->vars[3], HOOK_ENV_LEN, "GRGW_OLD_STATE=%s",
	    link_state_name(old_state));
	snprintf(env->vars[4], HOOK_ENV_LEN, "GRGW_NEW_STATE=%s",
	    link_state_name(v->state));
	snprintf(env->vars[5], HOOK_ENV_LEN, "GRGW_REASON=%s",
	    link_reason_name(v->reason));
	snprintf(env->vars[6], HOOK_ENV_LEN, "GRGW_SINCE=%s", when);
	snprintf(env->vars[7], HOOK_ENV_LEN, "GRGW_EVENT=link");
	snprintf(env->vars[8], HOOK_ENV_LEN, "GRGW_DETAIL=");
	snprintf(env->vars[9], HOOK_ENV_LEN, "GRGW_PROBES=%s",
	    config_probes_name(v->method));
}

/* "down -> up (none)" from an environment, for log lines. */
static void
env_describe(const struct hook_env *env, char *buf, size_t size)
{
	const char	*event = strchr(env->vars[7], '=') + 1;

	if (strcmp(event, "link") != 0) {
		snprintf(buf, size, "%s", event);
		return;
	}
	snprintf(buf, size, "%s -> %s (%s)",
	    strchr(env->vars[3], '=') + 1, strchr(env->vars[4], '=') + 1,
	    strchr(env->vars[5], '=') + 1);
}

/* Names like run-parts(8) accepts, plus '.', never a leading dot. */
static int
name_ok(const char *name)
{
	const char	*p;

	if (name[0] == '.' || name[0] == '\0')
		return 0;
	for (p = name; *p != '\0'; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' ||
		    *p == '.'))
			return 0;
	}
	return 1;
}

/* Why a hook file must not run, or NULL.  Follows a symlink. */
static const char *
file_problem(const struct stat *st)
{
	if (!S_ISREG(st->st_mode))
		return "is not a regular file";
	if ((st->st_mode & (S_IXUSR | S_IXGRP | S_IXOTH)) == 0)
		return "is not executable";
	if (st->st_mode & (S_IWGRP | S_IWOTH))
		return "is writable by group or others";
	if (st->st_uid != 0 && st->st_uid != geteuid())
		return "is owned by another user than root or grgw's";
	return NULL;
}

/* The directory must be as trustworthy as the files in it. */
static const char *
dir_problem(const struct stat *st)
{
	if (!S_ISDIR(st->st_mode))
		return "is not a directory";
	if (st->st_mode & (S_IWGRP | S_IWOTH))
		return "is writable by group or others";
	if (st->st_uid != 0 && st->st_uid != geteuid())
		return "is owned by another user than root or grgw's";
	return NULL;
}

/* Is dir/name still fit to run (for a queued run)?  Logs why not. */
static int
hook_still_ok(struct hooks *h, const char *name)
{
	struct stat	 st;
	char		 path[PATH_MAX];
	const char	*why;

	if (stat(h->dir, &st) == -1) {
		log_warn("hook %s: directory %s", name, h->dir);
		return 0;
	}
	if ((why = dir_problem(&st)) != NULL) {
		log_warnx("hooks: %s %s; not running hooks", h->dir, why);
		return 0;
	}
	snprintf(path, sizeof(path), "%s/%s", h->dir, name);
	if (stat(path, &st) == -1) {
		log_warn("hook %s", path);
		return 0;
	}
	if ((why = file_problem(&st)) != NULL) {
		log_warnx("hook %s %s; skipped", path, why);
		h->stats.skipped++;
		return 0;
	}
	return 1;
}

static struct hook *
hook_find(struct hooks *h, const char *name)
{
	struct hook	*k;

	TAILQ_FOREACH(k, &h->running, entry)
		if (strcmp(k->name, name) == 0)
			return k;
	return NULL;
}

/* Release what a finished hook holds; the caller unlinks and frees it. */
static void
hook_release(struct hook *k)
{
	if (k->ev_exit != NULL)
		event_free(k->ev_exit);
	if (k->ev_timeout != NULL)
		event_free(k->ev_timeout);
	if (k->pidfd != -1)
		close(k->pidfd);
	k->ev_exit = k->ev_timeout = NULL;
	k->pidfd = -1;
	k->pid = 0;
}

static void
hook_finished(struct hook *k, int status, int reaped)
{
	struct hooks	*h = k->owner;

	if (!reaped) {
		h->stats.failed++;
		log_warnx("hook %s (pid %d) was reaped elsewhere; exit status "
		    "unknown", k->name, (int)k->pid);
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		h->stats.succeeded++;
		log_info("hook %s (pid %d) done for %s", k->name, (int)k->pid,
		    k->transition);
	} else if (WIFEXITED(status)) {
		h->stats.failed++;
		log_warnx("hook %s (pid %d) exited with status %d for %s",
		    k->name, (int)k->pid, WEXITSTATUS(status), k->transition);
	} else {
		h->stats.failed++;
		log_warnx("hook %s (pid %d) killed by signal %d%s for %s",
		    k->name, (int)k->pid, WTERMSIG(status),
		    k->timed_out ? " after its timeout" : "", k->transition);
	}
	hook_release(k);
	if (k->has_queued && hook_still_ok(h, k->name)) {
		/* The same entry runs again; hook_spawn() copies queued. */
		k->has_queued = 0;
		k->timed_out = 0;
		hook_spawn(k, &k->queued);
		if (k->pid != 0)
			return;
	}
	TAILQ_REMOVE(&h->running, k, entry);
	free(k);
}

static void
hook_exit_cb(evutil_socket_t fd, short what, void *arg)
{
	struct hook	*k = arg;
	pid_t		 r;
	int		 status = 0;

	do
		r = waitpid(k->pid, &status, WNOHANG);
	while (r == -1 && errno == EINTR);
	if (r == 0)
		return;			/* poll timer: still running */
	hook_finished(k, status, r == k->pid);
}

static void
hook_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct hook	*k = arg;

	log_warnx("hook %s (pid %d) still running after %us; killing it",
	    k->name, (int)k->pid, k->owner->timeout_s);
	k->timed_out = 1;
	k->owner->stats.timed_out++;
	/* Its process group first (what it started), then itself. */
	kill(-k->pid, SIGKILL);
	kill(k->pid, SIGKILL);
}

/*
 * Between fork and exec: async-signal-safe calls only, no logging, no
 * allocation.  Everything was prepared by the parent.
 */
static void __attribute__((noreturn))
hook_child(int fd, char *const argv[], char *const envp[])
{
	sigset_t	 none;
	int		 nul, sig;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);		/* the daemon ignores SIGPIPE */
	setsid();
	if (chdir("/") == -1)
		_exit(126);
	if ((nul = open("/dev/null", O_RDONLY)) != -1 && nul != 0) {
		dup2(nul, 0);
		close(nul);
	}
	dup2(2, 1);				/* output goes to the log */
	/* The file checked is the file run (a script reads it as
	 * /dev/fd/3): nothing else of the daemon's stays open. */
	if (dup2(fd, 3) == -1)
		_exit(126);
	if (close_range(4, ~0U, 0) == -1)
		for (fd = 4; fd < 1024; fd++)
			close(fd);
	syscall(SYS_execveat, 3, "", argv, envp, AT_EMPTY_PATH);
	_exit(127);
}

static void
hook_spawn(struct hook *k, const struct hook_env *env)
{
	struct hooks	*h = k->owner;
	struct timeval	 tv = { h->timeout_s, 0 };
	struct timeval	 poll_tv = { 0, HOOK_POLL_MS * 1000 };
	char		 path[PATH_MAX], self[PATH_MAX + 16];
	char		*argv[2], *envp[HOOK_ENV_N + 2];
	struct hook_env	 copy = *env;	/* env may be k->queued */
	struct stat	 st;
	const char	*why = NULL;
	pid_t		 pid;
	int		 i, fd;

	env_describe(&copy, k->transition, sizeof(k->transition));
	snprintf(path, sizeof(path), "%s/%s", h->dir, k->name);
	argv[0] = path;
	argv[1] = NULL;
	for (i = 0; i < HOOK_ENV_N; i++)
		envp[i] = copy.vars[i];
	/* A script run from its descriptor sees $0 = /dev/fd/3. */
	snprintf(self, sizeof(self), "GRGW_HOOK=%s", path);
	envp[HOOK_ENV_N] = self;
	envp[HOOK_ENV_N + 1] = NULL;

	/*
	 * Check the very file that will run: opened once, examined through
	 * the descriptor and executed from it, so that nothing can be
	 * swapped in between.
	 */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1) {
		log_warn("hook %s", path);
		h->stats.failed++;
		return;
	}
	if (fstat(fd, &st) == -1 || (why = file_problem(&st)) != NULL) {
		log_warnx("hook %s %s; skipped", path, why != NULL ? why :
		    "cannot be examined");
		h->stats.skipped++;
		close(fd);
		return;
	}
	if ((pid = fork()) == -1) {
		log_warn("hook %s: fork", k->name);
		h->stats.failed++;
		close(fd);
		return;
	}
	if (pid == 0)
		hook_child(fd, argv, envp);
	close(fd);

	k->pid = pid;
	k->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (k->pidfd != -1) {
		k->ev_exit = event_new(h->base, k->pidfd, EV_READ | EV_PERSIST,
		    hook_exit_cb, k);
		if (k->ev_exit != NULL && event_add(k->ev_exit, NULL) == -1) {
			event_free(k->ev_exit);
			k->ev_exit = NULL;
		}
	}
	if (k->ev_exit == NULL) {
		/* No pidfd (old kernel) or no event for it: poll instead. */
		if (k->pidfd != -1) {
			close(k->pidfd);
			k->pidfd = -1;
		}
		k->ev_exit = event_new(h->base, -1, EV_PERSIST, hook_exit_cb,
		    k);
		if (k->ev_exit != NULL)
			event_add(k->ev_exit, &poll_tv);
	}
	k->ev_timeout = evtimer_new(h->base, hook_timeout_cb, k);
	if (k->ev_timeout != NULL)
		evtimer_add(k->ev_timeout, &tv);
	if (k->ev_exit == NULL || k->ev_timeout == NULL)
		log_warnx("hook %s (pid %d): out of memory for its events; it "
		    "is not watched", k->name, (int)pid);
	h->stats.started++;
	log_info("hook %s started (pid %d) for %s", k->name, (int)pid,
	    k->transition);
}

/* Run `name` for env now, or queue env if a copy of it is running. */
static void
hook_dispatch(struct hooks *h, const char *name, const struct hook_env *env)
{
	struct hook	*k;

	if ((k = hook_find(h, name)) != NULL) {
		if (k->has_queued)
			h->stats.coalesced++;
		k->queued = *env;
		k->has_queued = 1;
		log_info("hook %s still running (pid %d); this transition "
		    "runs when it ends", name, (int)k->pid);
		return;
	}
	if ((k = calloc(1, sizeof(*k))) == NULL) {
		log_warn("hook %s", name);
		h->stats.failed++;
		return;
	}
	k->owner = h;
	k->pidfd = -1;
	snprintf(k->name, sizeof(k->name), "%s", name);
	TAILQ_INSERT_TAIL(&h->running, k, entry);
	hook_spawn(k, env);
	if (k->pid == 0) {
		TAILQ_REMOVE(&h->running, k, entry);
		free(k);
	}
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

struct hooks *
hooks_new(struct event_base *base, const char *dir, unsigned timeout_s)
{
	struct hooks	*h;

	if ((h = calloc(1, sizeof(*h))) == NULL)
		return NULL;
	h->base = base;
	if (dir != NULL && strlen(dir) < sizeof(h->dir))
		snprintf(h->dir, sizeof(h->dir), "%s", dir);
	else if (dir != NULL)
		log_warnx("hooks: directory name too long; hooks disabled");
	h->timeout_s = timeout_s > 0 ? timeout_s : FEEDS_HOOKS_TIMEOUT_DEFAULT;
	TAILQ_INIT(&h->running);
	return h;
}

static void
hooks_run_env(struct hooks *h, const struct hook_env *env)
{
	struct dirent	*de;
	struct stat	 st;
	const char	*why;
	char		*names[HOOKS_MAX];
	size_t		 n = 0, i;
	DIR		*d;
	int		 dfd, more = 0;

	if ((d = opendir(h->dir)) == NULL) {
		if (errno == ENOENT)
			log_debug("hooks: no directory %s; no hooks run",
			    h->dir);
		else
			log_warn("hooks: %s", h->dir);
		return;
	}
	dfd = dirfd(d);
	if (fstat(dfd, &st) == -1) {
		log_warn("hooks: %s", h->dir);
		closedir(d);
		return;
	}
	if ((why = dir_problem(&st)) != NULL) {
		log_warnx("hooks: %s %s; not running hooks", h->dir, why);
		closedir(d);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;		/* ., .., hidden: silently */
		if (!name_ok(de->d_name)) {
			log_info("hook %s/%s skipped: its name has characters "
			    "other than letters, digits, '_', '-' and '.'",
			    h->dir, de->d_name);
			h->stats.skipped++;
			continue;
		}
		if (n == HOOKS_MAX) {
			more++;
			continue;
		}
		if ((names[n] = strdup(de->d_name)) == NULL) {
			log_warn("hooks");
			break;
		}
		n++;
	}
	if (more > 0)
		log_warnx("hooks: %s has more than %d hooks; %d not run",
		    h->dir, HOOKS_MAX, more);
	qsort(names, n, sizeof(names[0]), name_cmp);
	for (i = 0; i < n; i++) {
		if (fstatat(dfd, names[i], &st, 0) == -1) {
			log_warn("hook %s/%s", h->dir, names[i]);
			h->stats.skipped++;
		} else if ((why = file_problem(&st)) != NULL) {
			log_warnx("hook %s/%s %s; skipped", h->dir, names[i],
			    why);
			h->stats.skipped++;
		} else
			hook_dispatch(h, names[i], env);
		free(names[i]);
	}
	closedir(d);
}

void
hooks_run(struct hooks *h, const struct link_view *v,
    enum link_state old_state)
{
	struct hook_env	 env;

	if (h == NULL || v == NULL || h->dir[0] == '\0')
		return;
	env_build(&env, v, old_state);
	hooks_run_env(h, &env);
}

void
hooks_event(struct hooks *h, const struct link_view *v, const char *event,
    const char *detail)
{
	struct hook_env	 env;

	if (h == NULL || v == NULL || h->dir[0] == '\0')
		return;
	env_build(&env, v, v->state);
	snprintf(env.vars[7], HOOK_ENV_LEN, "GRGW_EVENT=%s", event);
	snprintf(env.vars[8], HOOK_ENV_LEN, "GRGW_DETAIL=%s", detail);
	hooks_run_env(h, &env);
}

void
hooks_get_stats(const struct hooks *h, struct hooks_stats *out)
{
	const struct hook	*k;

	memset(out, 0, sizeof(*out));
	if (h == NULL)
		return;
	*out = h->stats;
	out->running = out->queued = 0;
	TAILQ_FOREACH(k, &h->running, entry) {
		out->running++;
		if (k->has_queued)
			out->queued++;
	}
}

void
hooks_free(struct hooks *h)
{
	struct hook	*k;
	struct pollfd	 pfd;
	pid_t		 r = 0;
	int		 status, ms;

	if (h == NULL)
		return;
	while ((k = TAILQ_FIRST(&h->running)) != NULL) {
		TAILQ_REMOVE(&h->running, k, entry);
		if (k->pid > 0) {
			kill(-k->pid, SIGKILL);
			kill(k->pid, SIGKILL);
			/* SIGKILL is prompt, but bound the wait anyway. */
			if (k->pidfd != -1) {
				pfd.fd = k->pidfd;
				pfd.events = POLLIN;
				poll(&pfd, 1, HOOK_REAP_MS);
			}
			for (ms = 0; ms <= HOOK_REAP_MS; ms += 10) {
				r = waitpid(k->pid, &status, WNOHANG);
				if (r == -1 && errno == EINTR)
					continue;
				if (r != 0)
					break;
				usleep(10000);
			}
			if (r == 0)
				log_warnx("hook %s (pid %d) killed but not yet "
				    "gone", k->name, (int)k->pid);
			else
				log_info("hook %s (pid %d) killed at shutdown",
				    k->name, (int)k->pid);
		}
		hook_release(k);
		free(k);
	}
	free(h);
}
