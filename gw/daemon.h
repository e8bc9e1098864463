/*
 * The daemon and the CLI commands that talk to it.
 */
#ifndef GRGW_DAEMON_H
#define GRGW_DAEMON_H

#include <sys/types.h>

#include <stdint.h>
#include <time.h>

#include "grgw.h"

struct event_base;
struct link_view;
struct qos_view;

/* ---- strbuf.c: growable text buffer ----------------------------------- */

struct strbuf {
	char		*s;		/* NUL-terminated, owned */
	size_t		len;
	size_t		cap;
	int		failed;		/* sticky allocation failure */
};

void	strbuf_init(struct strbuf *sb);
void	strbuf_printf(struct strbuf *sb, const char *fmt, ...)
	    GRGW_PRINTF(2, 3);
/* Append s as a JSON string literal, quotes included; NULL -> null. */
void	strbuf_json_str(struct strbuf *sb, const char *s);
void	strbuf_free(struct strbuf *sb);

/* ---- status.c: what `grgw status` shows -------------------------------- */

enum tunnel_state { TUNNEL_DOWN, TUNNEL_CONNECTING, TUNNEL_UP };

struct status_view {
	const struct grgw_config *cfg;		/* borrowed */
	int		daemon_running;
	pid_t		daemon_pid;
	time_t		daemon_since;
	int		charon_running;
	pid_t		charon_pid;
	unsigned	charon_restarts;
	enum grgw_dataplane dataplane;		/* in use (or configured) */
	enum tunnel_state tunnel;
	time_t		tunnel_since;		/* last change, 0 = never */
	const char	*ike_state;		/* charon's names, or "none" */
	const char	*child_state;
	int		traffic_verified;
	const char	*last_error;		/* NULL if none */
	uint64_t	bytes_in, bytes_out, packets_in, packets_out;
	int		kernel_block, kernel_run;	/* recorded objects */
	const struct link_view *link;		/* NULL: daemon not running */
	const struct qos_view *qos;		/* NULL: daemon not running */
};

const char *tunnel_state_name(enum tunnel_state s);
/* Stable JSON object documented in the README. */
void	status_render_json(const struct status_view *v, struct strbuf *sb);
void	status_render_text(const struct status_view *v, struct strbuf *sb);

/* ---- echo.c: proof that the tunnel carries traffic -------------------- */

/*
 * Sends ICMP echo requests from src to dst every interval until a reply
 * arrives, then calls cb once and stops.  Addresses are copied.
 */
struct echo_probe;
typedef void (*echo_cb)(void *arg);
struct echo_probe *echo_start(struct event_base *base,
	    const struct grgw_addr *src, const struct grgw_addr *dst,
	    echo_cb cb, void *arg);
void	echo_stop(struct echo_probe *e);		/* accepts NULL */

/* ---- daemon.c ---------------------------------------------------------- */

/*
 * Run the daemon until `down` or a signal.  cfg is borrowed.  When
 * ready_fd >= 0, one line is written to it once start-up has succeeded
 * ("ok") or failed ("error <message>") and the fd is closed.
 * Returns the process exit code.
 */
int	daemon_run(const struct grgw_config *cfg, int ready_fd);

/* ---- control.c: the daemon's unix socket, client side ----------------- */

/*
 * Paths in the site directory.  The control protocol is one request line
 * ("status json", "status text", "up", "down", "down purge") and a reply
 * that ends when the daemon closes the connection.
 */
void	control_path(const struct grgw_config *cfg, char *buf, size_t size);
/* Connect to a running daemon: fd, or -1 if none listens. */
int	control_connect(const struct grgw_config *cfg);
/*
 * Send req and read the reply into sb until EOF or timeout_ms (-1: no
 * limit).  0 on a complete reply, -1 on error or timeout.
 */
int	control_request(int fd, const char *req, struct strbuf *sb,
	    int timeout_ms);

#endif /* GRGW_DAEMON_H */
