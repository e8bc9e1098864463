/*
 * The daemon's unix control socket, both ends: the server on the daemon's
 * loop, and the client the CLI uses.  One request line per connection;
 * the reply ends when the daemon closes it.
 */
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "grgw.h"
#include "control.h"
#include "strbuf.h"

#define CTL_LINE_MAX		256
#define CTL_BACKLOG		16
#define CTL_SEND_TIMEOUT_S	2
#define CTL_CONNS_MAX		32	/* connections held at once */
#define CTL_READ_TIMEOUT_S	5	/* to send the request line */
#define CTL_PAUSE_MS		1000	/* accept() out of descriptors */

struct control_conn {
	TAILQ_ENTRY(control_conn) entry;
	struct control	*ctl;
	int		 fd;
	struct event	*ev;
	char		 line[CTL_LINE_MAX];
	size_t		 len;
	enum control_wait held;		/* 0: not held */
	struct event	*deadline;	/* until the request line came */
};

struct control {
	struct event_base *base;
	char		 path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int		 fd;
	struct event	*ev;
	struct event	*ev_resume;
	control_cb	 cb;
	void		*arg;
	unsigned	 n_conns;
	TAILQ_HEAD(, control_conn) conns;	/* oldest first */
};

/* ---- server ------------------------------------------------------------- */

static void
conn_free(struct control_conn *cc)
{
	struct control	*c = cc->ctl;

	TAILQ_REMOVE(&c->conns, cc, entry);
	c->n_conns--;
	event_free(cc->ev);
	if (cc->deadline != NULL)
		event_free(cc->deadline);
	close(cc->fd);
	free(cc);
	/* A slot is free again. */
	if (c->ev != NULL && !evtimer_pending(c->ev_resume, NULL))
		event_add(c->ev, NULL);
}

/* The oldest connection that has not sent its request, or NULL. */
static struct control_conn *
conn_evictable(struct control *c)
{
	struct control_conn	*cc;

	TAILQ_FOREACH(cc, &c->conns, entry)
		if (!cc->held)
			return cc;
	return NULL;
}

static void
conn_deadline_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct control_conn	*cc = arg;

	if (!cc->held)
		conn_free(cc);
}

/* Replies are small; a bounded blocking write keeps this simple. */
static void
conn_send(struct control_conn *cc, const char *text, size_t len)
{
	struct timeval	 tv = { CTL_SEND_TIMEOUT_S, 0 };
	size_t		 off = 0;
	ssize_t		 n;
	int		 flags;

	flags = fcntl(cc->fd, F_GETFL);
	fcntl(cc->fd, F_SETFL, flags & ~O_NONBLOCK);
	setsockopt(cc->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	while (off < len) {
		n = send(cc->fd, text + off, len - off, MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
}

void
control_reply(struct control_conn *cc, const char *text)
{
	conn_send(cc, text, strlen(text));
	conn_free(cc);
}

void
control_hold(struct control_conn *cc, enum control_wait w)
{
	cc->held = w;
	evtimer_del(cc->deadline);	/* it waits for the daemon now */
}

int
control_answer(struct control *c, enum control_wait w, const char *msg)
{
	struct control_conn	*cc, *tmp;
	int			 n = 0;

	if (c == NULL)
		return 0;
	for (cc = TAILQ_FIRST(&c->conns); cc != NULL; cc = tmp) {
		tmp = TAILQ_NEXT(cc, entry);
		if (cc->held == w) {
			control_reply(cc, msg);
			n++;
		}
	}
	return n;
}

int
control_held(const struct control *c, enum control_wait w)
{
	const struct control_conn *cc;
	int			 n = 0;

	if (c == NULL)
		return 0;
	TAILQ_FOREACH(cc, &c->conns, entry)
		if (cc->held == w)
			n++;
	return n;
}

static void
conn_read_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct control_conn	*cc = arg;
	char			*nl;
	ssize_t			 n;

	n = read(fd, cc->line + cc->len, sizeof(cc->line) - 1 - cc->len);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		/* The client went away (e.g. `up` gave up waiting). */
		conn_free(cc);
		return;
	}
	if (cc->held)
		return;		/* one request per connection */
	cc->len += (size_t)n;
	cc->line[cc->len] = '\0';
	if ((nl = strchr(cc->line, '\n')) == NULL) {
		if (cc->len == sizeof(cc->line) - 1)
			control_reply(cc, "error request too long\n");
		return;
	}
	*nl = '\0';
	cc->ctl->cb(cc, cc->line, cc->ctl->arg);
}

static void
resume_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct control	*c = arg;

	event_add(c->ev, NULL);
}

static void
conn_new(struct control *c, int cfd)
{
	struct timeval		 tv = { CTL_READ_TIMEOUT_S, 0 };
	struct control_conn	*cc;

	if ((cc = calloc(1, sizeof(*cc))) == NULL) {
		close(cfd);
		return;
	}
	cc->ctl = c;
	cc->fd = cfd;
	cc->ev = event_new(c->base, cfd, EV_READ | EV_PERSIST, conn_read_cb,
	    cc);
	cc->deadline = evtimer_new(c->base, conn_deadline_cb, cc);
	if (cc->ev == NULL || cc->deadline == NULL) {
		if (cc->ev != NULL)
			event_free(cc->ev);
		if (cc->deadline != NULL)
			event_free(cc->deadline);
		close(cfd);
		free(cc);
		return;
	}
	TAILQ_INSERT_TAIL(&c->conns, cc, entry);
	c->n_conns++;
	event_add(cc->ev, NULL);
	evtimer_add(cc->deadline, &tv);
}

/*
 * At most CTL_CONNS_MAX connections: the oldest one still silent makes
 * room for a new one; when all of them wait for the daemon, accepting
 * waits too.  Out of descriptors, accepting pauses instead of spinning.
 */
static void
accept_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct control		*c = arg;
	struct control_conn	*old;
	struct timeval		 tv = { 0, CTL_PAUSE_MS * 1000 };
	int			 cfd;

	if (c->n_conns >= CTL_CONNS_MAX && conn_evictable(c) == NULL) {
		event_del(c->ev);
		return;
	}
	cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (cfd == -1) {
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM) {
			log_warn("control socket: cannot accept; pausing for "
			    "%d ms", CTL_PAUSE_MS);
			event_del(c->ev);
			evtimer_add(c->ev_resume, &tv);
		}
		return;
	}
	if (c->n_conns >= CTL_CONNS_MAX && (old = conn_evictable(c)) != NULL)
		conn_free(old);
	conn_new(c, cfd);
}

struct control *
control_listen(struct event_base *base, const char *path, control_cb cb,
    void *arg, char *err, size_t errlen)
{
	struct sockaddr_un	 sun;
	struct control		*c;
	mode_t			 old;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path) >=
	    (int)sizeof(sun.sun_path)) {
		err_set(err, errlen, "control socket path %s is too long",
		    path);
		return NULL;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		err_set(err, errlen, "out of memory");
		return NULL;
	}
	c->base = base;
	c->cb = cb;
	c->arg = arg;
	c->fd = -1;
	TAILQ_INIT(&c->conns);
	unlink(sun.sun_path);	/* stale: the caller holds the site lock */
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd == -1)
		goto fail;
	old = umask(0077);
	if (bind(c->fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		umask(old);
		goto fail;
	}
	umask(old);
	snprintf(c->path, sizeof(c->path), "%s", path);
	if (listen(c->fd, CTL_BACKLOG) == -1)
		goto fail;
	c->ev = event_new(base, c->fd, EV_READ | EV_PERSIST, accept_cb, c);
	c->ev_resume = evtimer_new(base, resume_cb, c);
	if (c->ev == NULL || c->ev_resume == NULL ||
	    event_add(c->ev, NULL) == -1)
		goto fail;
	return c;
fail:
	err_set(err, errlen, "control socket %s: %s", path, strerror(errno));
	control_free(c);
	return NULL;
}

void
control_free(struct control *c)
{
	struct control_conn	*cc;
	struct event		*listen_ev;

	if (c == NULL)
		return;
	listen_ev = c->ev;	/* no accept restarts while they go */
	c->ev = NULL;
	while ((cc = TAILQ_FIRST(&c->conns)) != NULL)
		conn_free(cc);
	if (listen_ev != NULL)
		event_free(listen_ev);
	if (c->ev_resume != NULL)
		event_free(c->ev_resume);
	if (c->fd >= 0)
		close(c->fd);
	if (c->path[0] != '\0')
		unlink(c->path);
	free(c);
}

/* ---- client ------------------------------------------------------------- */

void
control_path(const struct grgw_config *cfg, char *buf, size_t size)
{
	char dir[PATH_MAX];

	config_site_dir(cfg, dir, sizeof(dir));
	snprintf(buf, size, "%s/control.sock", dir);
}

int
control_connect(const struct grgw_config *cfg)
{
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	control_path(cfg, sun.sun_path, sizeof(sun.sun_path));
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
control_request(int fd, const char *req, struct strbuf *sb, int timeout_ms)
{
	long long deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	char buf[4096];
	size_t len = strlen(req), off = 0;
	ssize_t n;

	while (off < len) {
		n = write(fd, req + off, len - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		off += (size_t)n;
	}
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int wait = -1;

		if (deadline >= 0) {
			long long left = deadline - now_ms();

			if (left <= 0) {
				errno = ETIMEDOUT;
				return -1;
			}
			wait = (int)left;
		}
		if (poll(&pfd, 1, wait) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (pfd.revents == 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		if (n == -1 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			return sb->failed ? -1 : 0;
		buf[n] = '\0';
		strbuf_printf(sb, "%s", buf);
		if (sb->len > 1 << 20) {
			errno = EMSGSIZE;
			return -1;
		}
	}
}
