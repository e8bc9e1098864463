/*
 * control.c: the daemon's unix control socket, both ends.
 *
 * The protocol is one request line ("status json", "status text", "up",
 * "down", "down purge") and a reply that ends when the daemon closes the
 * connection.  The socket lives in the site directory, mode 0600, so only
 * root (the daemon's user) can talk to it.
 */
#ifndef GRGW_CONTROL_H
#define GRGW_CONTROL_H

#include <stddef.h>

#include "grgw.h"

struct event_base;
struct strbuf;

/* ---- server (the daemon) ---------------------------------------------- */

struct control;
struct control_conn;

/* A request held open until the daemon has an answer for it. */
enum control_wait {
	CONTROL_WAIT_UP = 1,	/* `up`: until the tunnel carries traffic */
	CONTROL_WAIT_DOWN,	/* `down`: until the daemon has stopped */
};

/*
 * A request line arrived (without its newline).  The callback answers
 * with control_reply(), or keeps the connection with control_hold();
 * either way cc belongs to the server.
 */
typedef void (*control_cb)(struct control_conn *cc, const char *request,
	    void *arg);

/*
 * Listen on path (a stale socket there is replaced: the caller holds the
 * site lock).  path is copied.  NULL with err set on failure.
 */
struct control *control_listen(struct event_base *base, const char *path,
	    control_cb cb, void *arg, char *err, size_t errlen);
/* Send text and close the connection (cc is freed). */
void	control_reply(struct control_conn *cc, const char *text);
/* Keep cc open for a later control_answer(..., w, ...). */
void	control_hold(struct control_conn *cc, enum control_wait w);
/* Send msg to every connection held for w and close them; how many. */
int	control_answer(struct control *c, enum control_wait w,
	    const char *msg);
/* How many connections are held for w. */
int	control_held(const struct control *c, enum control_wait w);
/* Close every connection and the socket, and remove its path.  NULL ok. */
void	control_free(struct control *c);

/* ---- client (the CLI) ------------------------------------------------- */

/* "<run_dir>/<site>/control.sock" into buf. */
void	control_path(const struct grgw_config *cfg, char *buf, size_t size);
/* Connect to a running daemon: fd, or -1 if none listens. */
int	control_connect(const struct grgw_config *cfg);
/*
 * Send req and read the reply into sb until EOF or timeout_ms (-1: no
 * limit).  0 on a complete reply, -1 on error or timeout.
 */
int	control_request(int fd, const char *req, struct strbuf *sb,
	    int timeout_ms);

#endif /* GRGW_CONTROL_H */
