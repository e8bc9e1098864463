/*
 * The feeds of the link state: the Prometheus renderer (exact lines and
 * exposition syntax), the HTTP server (fetched by a client on the same
 * loop), the state file, the notify hooks (environment, eligibility,
 * timeouts that never hold up the loop, coalescing) and the etcd
 * publisher against a scripted etcd gateway on the loop.  The real etcd
 * is exercised by tests/feeds/run.sh.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <netinet/in.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <sodium.h>

#include "grgw.h"
#include "status.h"
#include "strbuf.h"
#include "jsondoc.h"
#include "linkstate.h"
#include "qosd.h"
#include "etcd_msg.h"
#include "feeds.h"
#include "httpreq.h"

static char	 tmpdir[PATH_MAX];

static int
setup(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/grgw-feeds.XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	log_init("test_feeds", LOG_LVL_WARN);
	signal(SIGPIPE, SIG_IGN);
	return sodium_init() == -1 ? -1 : 0;
}

static int
teardown(void **state)
{
	char	 cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static char *
tmp_path(const char *name)
{
	char	*p;

	assert_true(asprintf(&p, "%s/%s", tmpdir, name) != -1);
	return p;
}

static void
write_file(const char *path, const char *text, mode_t mode)
{
	int	 fd;

	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd != -1);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

/* The whole file as a string, or NULL if it does not exist. */
static char *
read_file(const char *path)
{
	char	*buf;
	FILE	*f;
	long	 n;

	if ((f = fopen(path, "r")) == NULL)
		return NULL;
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static double
now_s(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Run the loop until *flag is set or `limit` seconds pass. */
static void
loop_until(struct event_base *base, const int *flag, double limit)
{
	double	 end = now_s() + limit;

	while (!*flag && now_s() < end)
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK), usleep(1000);
}

/* ---- sample views ------------------------------------------------------- */

static struct grgw_config	 sample_cfg;

static void
sample_link(struct link_view *v)
{
	struct path_stats	*t = &v->paths[PROBE_TUNNEL];
	struct path_stats	*u = &v->paths[PROBE_UNDERLAY];

	memset(v, 0, sizeof(*v));
	v->site = "site-a";
	v->peer = "site-b";
	v->state = LINK_DEGRADED;
	v->reason = REASON_LOSS;
	v->since.tv_sec = 1700000000;
	v->since.tv_nsec = 250000000;
	v->changes = 3;
	v->carrier = 1;
	v->charon_up = 1;
	v->ike_up = 1;
	v->child_up = 1;
	v->charon_restarts = 2;
	v->tunnel_bytes_in = 1000;
	v->tunnel_bytes_out = 2000;
	v->tunnel_packets_in = 10;
	v->tunnel_packets_out = 20;
	t->up = 1;
	t->ever_up = 1;
	t->rtt_last_ms = 12.5;
	t->rtt_smoothed_ms = 11.25;
	t->rtt_p50_ms = 11;
	t->rtt_p99_ms = 42.5;
	t->jitter_ms = 0.75;
	t->loss_ratio = 0.0625;
	t->sent = 100;
	t->received = 94;
	t->answered = 99;
	t->rejected_auth = 1;
	t->reordered = 2;
	t->transitions = 1;
	u->up = 0;
	u->rtt_last_ms = NAN;
	u->rtt_smoothed_ms = NAN;
	u->rtt_p50_ms = NAN;
	u->rtt_p99_ms = INFINITY;
	u->loss_ratio = 1;
	u->sent = 50;
	u->rejected_replay = 7;
	u->rejected_malformed = 3;
}

static void
sample_status(struct status_view *sv)
{
	memset(&sample_cfg, 0, sizeof(sample_cfg));
	snprintf(sample_cfg.site.name, sizeof(sample_cfg.site.name), "site-a");
	snprintf(sample_cfg.peer.name, sizeof(sample_cfg.peer.name), "site-b");
	memset(sv, 0, sizeof(*sv));
	sv->cfg = &sample_cfg;
	sv->daemon_running = 1;
	sv->daemon_pid = 42;
	sv->daemon_since = 1699990000;
	sv->charon_running = 1;
	sv->charon_restarts = 2;
	sv->tunnel = TUNNEL_UP;
	sv->bytes_in = 5;
	sv->bytes_out = 6;
	sv->packets_in = 7;
	sv->packets_out = 8;
}

/* ---- metrics: exposition syntax ------------------------------------------ */

static int
name_ok(const char *s, size_t len, int colon)
{
	size_t	 i;

	if (len == 0)
		return 0;
	for (i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    c == '_' || (colon && c == ':') ||
		    (i > 0 && c >= '0' && c <= '9')))
			return 0;
	}
	return 1;
}

static int
value_ok(const char *s)
{
	char	*end;

	if (strcmp(s, "NaN") == 0 || strcmp(s, "+Inf") == 0 ||
	    strcmp(s, "-Inf") == 0)
		return 1;
	if (*s == '\0')
		return 0;
	errno = 0;
	(void)strtod(s, &end);
	return *end == '\0' && errno == 0;
}

/*
 * Check text against the 0.0.4 text format: HELP and TYPE at most once
 * per family and before its samples, the samples of a family together,
 * names, label names and escapes valid, values numbers, no sample twice.
 * Returns the number of samples; fails the test on the first problem.
 */
static int
check_exposition(const char *text)
{
	char	 fam[256] = "", done[64][128], seen_keys[512][256];
	char	 typed[64][128], line[1024], name[256];
	const char *p = text, *nl, *q;
	size_t	 n_done = 0, n_typed = 0, n_keys = 0, i, len;
	int	 samples = 0;

	assert_true(strlen(text) > 0);
	assert_int_equal(text[strlen(text) - 1], '\n');
	while (*p != '\0') {
		nl = strchr(p, '\n');
		assert_non_null(nl);
		len = (size_t)(nl - p);
		assert_true(len < sizeof(line));
		memcpy(line, p, len);
		line[len] = '\0';
		p = nl + 1;
		if (strncmp(line, "# HELP ", 7) == 0 ||
		    strncmp(line, "# TYPE ", 7) == 0) {
			q = line + 7;
			len = strcspn(q, " ");
			assert_true(name_ok(q, len, 1));
			assert_true(q[len] == ' ' && q[len + 1] != '\0');
			snprintf(name, sizeof(name), "%.*s", (int)len, q);
			if (strcmp(name, fam) != 0) {
				for (i = 0; i < n_done; i++)
					assert_string_not_equal(done[i], name);
				if (fam[0] != '\0')
					snprintf(done[n_done++], 128, "%s", fam);
				snprintf(fam, sizeof(fam), "%s", name);
			}
			if (line[2] == 'T') {
				for (i = 0; i < n_typed; i++)
					assert_string_not_equal(typed[i], name);
				snprintf(typed[n_typed++], 128, "%s", name);
				q += len + 1;
				assert_true(strcmp(q, "counter") == 0 ||
				    strcmp(q, "gauge") == 0 ||
				    strcmp(q, "histogram") == 0 ||
				    strcmp(q, "summary") == 0 ||
				    strcmp(q, "untyped") == 0);
			}
			continue;
		}
		assert_int_not_equal(line[0], '#');
		/* name{labels} value */
		len = strcspn(line, "{ ");
		assert_true(name_ok(line, len, 1));
		assert_true(strncmp(line, fam, len) == 0 && fam[len] == '\0');
		for (i = 0; i < n_typed; i++)
			if (strcmp(typed[i], fam) == 0)
				break;
		assert_true(i < n_typed);	/* TYPE came first */
		q = line + len;
		if (*q == '{') {
			q++;
			while (*q != '}') {
				len = strcspn(q, "=");
				assert_true(name_ok(q, len, 0));
				q += len;
				assert_int_equal(*q++, '=');
				assert_int_equal(*q++, '"');
				while (*q != '"') {
					assert_int_not_equal(*q, '\0');
					assert_int_not_equal(*q, '\n');
					if (*q == '\\') {
						q++;
						assert_non_null(strchr("\\\"n",
						    *q));
					}
					q++;
				}
				q++;
				if (*q == ',')
					q++;
				else
					assert_int_equal(*q, '}');
			}
			q++;
		}
		assert_int_equal(*q, ' ');
		/* The same name and labels twice would be a duplicate. */
		len = (size_t)(q - line);
		for (i = 0; i < n_keys; i++)
			assert_false(strlen(seen_keys[i]) == len &&
			    strncmp(seen_keys[i], line, len) == 0);
		assert_true(n_keys < nitems(seen_keys));
		snprintf(seen_keys[n_keys++], 256, "%.*s", (int)len, line);
		assert_true(value_ok(q + 1));
		samples++;
	}
	return samples;
}

static void
expect_line(const char *text, const char *line)
{
	char	*want;

	assert_true(asprintf(&want, "\n%s\n", line) != -1);
	if (strstr(text, want) == NULL) {
		fprintf(stderr, "missing line: %s\n--- in:\n%s", line, text);
		fail();
	}
	free(want);
}

static void
test_metrics_lines(void **state)
{
	struct link_view	 lv;
	struct status_view	 sv;
	struct strbuf		 sb;
	static const char *const lines[] = {
	    "# HELP grgw_link_up 1 while the link to the peer carries "
	    "traffic (state up or degraded), else 0.",
	    "# TYPE grgw_link_up gauge",
	    "grgw_link_up{site=\"site-a\",peer=\"site-b\"} 1",
	    "# TYPE grgw_link_state gauge",
	    "grgw_link_state{site=\"site-a\",peer=\"site-b\",state=\"down\"} 0",
	    "grgw_link_state{site=\"site-a\",peer=\"site-b\",state=\"degraded\"} 1",
	    "grgw_link_state{site=\"site-a\",peer=\"site-b\",state=\"up\"} 0",
	    "grgw_link_reason{site=\"site-a\",peer=\"site-b\",reason=\"loss\"} 1",
	    "grgw_link_reason{site=\"site-a\",peer=\"site-b\",reason=\"none\"} 0",
	    "grgw_link_state_since_timestamp_seconds{site=\"site-a\","
	    "peer=\"site-b\"} 1700000000.25",
	    "# TYPE grgw_link_state_changes_total counter",
	    "grgw_link_state_changes_total{site=\"site-a\",peer=\"site-b\"} 3",
	    "grgw_path_up{site=\"site-a\",peer=\"site-b\",path=\"tunnel\"} 1",
	    "grgw_path_up{site=\"site-a\",peer=\"site-b\",path=\"underlay\"} 0",
	    "grgw_probe_rtt_seconds{site=\"site-a\",peer=\"site-b\","
	    "path=\"tunnel\",quantile=\"0.5\"} 0.011",
	    "grgw_probe_rtt_seconds{site=\"site-a\",peer=\"site-b\","
	    "path=\"tunnel\",quantile=\"0.99\"} 0.0425",
	    "grgw_probe_rtt_seconds{site=\"site-a\",peer=\"site-b\","
	    "path=\"underlay\",quantile=\"0.99\"} +Inf",
	    "grgw_probe_rtt_smoothed_seconds{site=\"site-a\",peer=\"site-b\","
	    "path=\"tunnel\"} 0.01125",
	    "grgw_probe_rtt_smoothed_seconds{site=\"site-a\",peer=\"site-b\","
	    "path=\"underlay\"} NaN",
	    "grgw_probe_jitter_seconds{site=\"site-a\",peer=\"site-b\","
	    "path=\"tunnel\"} 0.00075",
	    "grgw_probe_loss_ratio{site=\"site-a\",peer=\"site-b\","
	    "path=\"tunnel\"} 0.0625",
	    "grgw_probe_loss_ratio{site=\"site-a\",peer=\"site-b\","
	    "path=\"underlay\"} 1",
	    "# TYPE grgw_probe_sent_total counter",
	    "grgw_probe_sent_total{site=\"site-a\",peer=\"site-b\","
	    "path=\"tunnel\"} 100",
	    "grgw_probe_received_total{site=\"site-a\",peer=\"site-b\","
	    "path=\"tunnel\"} 94",
	    "grgw_probe_rejected_total{site=\"site-a\",peer=\"site-b\","
	    "path=\"tunnel\",reason=\"auth\"} 1",
	    "grgw_probe_rejected_total{site=\"site-a\",peer=\"site-b\","
	    "path=\"underlay\",reason=\"replay\"} 7",
	    "grgw_probe_rejected_total{site=\"site-a\",peer=\"site-b\","
	    "path=\"underlay\",reason=\"malformed\"} 3",
	    "grgw_tunnel_bytes_total{site=\"site-a\",peer=\"site-b\","
	    "direction=\"in\"} 1000",
	    "grgw_tunnel_bytes_total{site=\"site-a\",peer=\"site-b\","
	    "direction=\"out\"} 2000",
	    "grgw_tunnel_packets_total{site=\"site-a\",peer=\"site-b\","
	    "direction=\"out\"} 20",
	    "# TYPE grgw_charon_restarts_total counter",
	    "grgw_charon_restarts_total{site=\"site-a\"} 2",
	    "grgw_charon_up{site=\"site-a\"} 1",
	    "grgw_tunnel_up{site=\"site-a\",peer=\"site-b\"} 1",
	    "grgw_daemon_start_time_seconds{site=\"site-a\"} 1699990000",
	    "grgw_build_info{site=\"site-a\",version=\"" GRGW_VERSION "\"} 1",
	};
	size_t	 i;
	int	 n;

	sample_link(&lv);
	sample_status(&sv);
	strbuf_init(&sb);
	metrics_render(&sv, &lv, &sb);
	assert_false(sb.failed);
	for (i = 0; i < nitems(lines); i++)
		expect_line(sb.s, lines[i]);
	n = check_exposition(sb.s);
	/* One sample per fact; 57 today (families are only ever added). */
	assert_true(n >= 57);
	strbuf_free(&sb);

	/* Each view alone is still valid exposition text. */
	strbuf_init(&sb);
	metrics_render(NULL, &lv, &sb);
	check_exposition(sb.s);
	assert_null(strstr(sb.s, "grgw_daemon_start_time_seconds"));
	strbuf_free(&sb);
	strbuf_init(&sb);
	metrics_render(&sv, NULL, &sb);
	check_exposition(sb.s);
	expect_line(sb.s, "grgw_tunnel_bytes_total{site=\"site-a\","
	    "peer=\"site-b\",direction=\"out\"} 6");
	assert_null(strstr(sb.s, "grgw_link_state"));
	strbuf_free(&sb);
}

static void
test_metrics_states_and_escaping(void **state)
{
	struct link_view	 lv;
	struct strbuf		 sb;

	sample_link(&lv);
	lv.state = LINK_DOWN;
	lv.reason = REASON_IKE_AUTH_FAILED;
	lv.site = "a\"b\\c\nd";
	lv.peer = "";
	strbuf_init(&sb);
	metrics_render(NULL, &lv, &sb);
	expect_line(sb.s, "grgw_link_up{site=\"a\\\"b\\\\c\\nd\",peer=\"\"} 0");
	expect_line(sb.s, "grgw_link_state{site=\"a\\\"b\\\\c\\nd\","
	    "peer=\"\",state=\"down\"} 1");
	expect_line(sb.s, "grgw_link_reason{site=\"a\\\"b\\\\c\\nd\","
	    "peer=\"\",reason=\"ike-auth-failed\"} 1");
	check_exposition(sb.s);
	strbuf_free(&sb);

	sample_link(&lv);
	lv.state = LINK_UP;
	lv.reason = REASON_NONE;
	lv.paths[PROBE_UNDERLAY].rtt_p50_ms = -INFINITY;
	strbuf_init(&sb);
	metrics_render(NULL, &lv, &sb);
	expect_line(sb.s, "grgw_link_up{site=\"site-a\",peer=\"site-b\"} 1");
	expect_line(sb.s, "grgw_link_state{site=\"site-a\",peer=\"site-b\","
	    "state=\"up\"} 1");
	expect_line(sb.s, "grgw_probe_rtt_seconds{site=\"site-a\","
	    "peer=\"site-b\",path=\"underlay\",quantile=\"0.5\"} -Inf");
	check_exposition(sb.s);
	strbuf_free(&sb);
}

/* ---- http ---------------------------------------------------------------- */

struct fetch {
	struct evbuffer	*resp;
	int		 done;
};

static void
fetch_read_cb(struct bufferevent *bev, void *arg)
{
	struct fetch	*f = arg;

	evbuffer_add_buffer(f->resp, bufferevent_get_input(bev));
}

static void
fetch_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct fetch	*f = arg;

	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
		evbuffer_add_buffer(f->resp, bufferevent_get_input(bev));
		f->done = 1;
	}
}

struct response {
	int	 code;
	char	*head;		/* status line and headers */
	char	*body;
	size_t	 body_len;
};

/* Send a raw request to 127.0.0.1:port, on base; read until EOF. */
static void
fetch(struct event_base *base, uint16_t port, const char *request,
    struct response *r)
{
	struct sockaddr_in	 sin;
	struct bufferevent	*bev;
	struct fetch		 f = { evbuffer_new(), 0 };
	struct timeval		 tv = { 5, 0 };
	char			*text, *sep;
	size_t			 len;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	assert_non_null(bev);
	bufferevent_setcb(bev, fetch_read_cb, NULL, fetch_event_cb, &f);
	bufferevent_set_timeouts(bev, &tv, &tv);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	assert_int_equal(bufferevent_socket_connect(bev,
	    (struct sockaddr *)&sin, sizeof(sin)), 0);
	bufferevent_write(bev, request, strlen(request));
	loop_until(base, &f.done, 10);
	assert_true(f.done);
	bufferevent_free(bev);

	len = evbuffer_get_length(f.resp);
	text = malloc(len + 1);
	assert_non_null(text);
	evbuffer_remove(f.resp, text, len);
	text[len] = '\0';
	evbuffer_free(f.resp);
	assert_int_equal(sscanf(text, "HTTP/1.%*d %d", &r->code), 1);
	sep = strstr(text, "\r\n\r\n");
	assert_non_null(sep);
	r->head = strndup(text, (size_t)(sep - text) + 2);
	r->body_len = len - (size_t)(sep + 4 - text);
	r->body = strndup(sep + 4, r->body_len);
	free(text);
}

static void
response_free(struct response *r)
{
	free(r->head);
	free(r->body);
}

static void
expect_header(const struct response *r, const char *header)
{
	char	*want;

	assert_true(asprintf(&want, "\r\n%s\r\n", header) != -1);
	if (strcasestr(r->head, want) == NULL) {
		fprintf(stderr, "missing header %s in:\n%s\n", header, r->head);
		fail();
	}
	free(want);
}

static int	 renders;

static void
render_status(struct strbuf *out, void *arg)
{
	renders++;
	jsondoc_append(out, json_pack("{s:o}", "site", jsondoc_string(arg)));
}

static void
render_metrics(struct strbuf *out, void *arg)
{
	struct link_view	 lv;

	sample_link(&lv);
	metrics_render(NULL, &lv, out);
}

/* The server under test asks; the answer comes at once, as from the
 * parent.  want_srv is set once the server has started. */
static struct http_server *want_srv;

static void
want_now(uint32_t ticket, enum http_doc doc, void *arg)
{
	struct strbuf	 sb;

	strbuf_init(&sb);
	if (doc == HTTP_DOC_STATUS)
		render_status(&sb, arg);
	else
		render_metrics(&sb, arg);
	http_answer(want_srv, ticket, sb.s, sb.len);
	strbuf_free(&sb);
}

static void
test_http_listen_parse(void **state)
{
	static const struct {
		const char	*in;
		int		 ok;
		int		 family;
		uint16_t	 port;
	} t[] = {
		{ "127.0.0.1:9421", 1, AF_INET, 9421 },
		{ "0.0.0.0:0", 1, AF_INET, 0 },
		{ "[::1]:9421", 1, AF_INET6, 9421 },
		{ "[2001:db8::1]:65535", 1, AF_INET6, 65535 },
		{ "127.0.0.1", 0, 0, 0 },
		{ "127.0.0.1:", 0, 0, 0 },
		{ "127.0.0.1:65536", 0, 0, 0 },
		{ "127.0.0.1:09421", 0, 0, 0 },
		{ "127.0.0.1:94a1", 0, 0, 0 },
		{ "127.0.0.1:-1", 0, 0, 0 },
		{ "localhost:9421", 0, 0, 0 },
		{ "::1:9421", 0, 0, 0 },
		{ "[::1:9421", 0, 0, 0 },
		{ "[::1]9421", 0, 0, 0 },
		{ "[127.0.0.1]:9421", 0, 0, 0 },
		{ ":9421", 0, 0, 0 },
		{ "", 0, 0, 0 },
	};
	struct grgw_addr	 a;
	char			 why[160];
	uint16_t		 port;
	size_t			 i;

	for (i = 0; i < nitems(t); i++) {
		why[0] = '\0';
		if (addr_port_parse(t[i].in, &a, &port, why, sizeof(why)) == 0) {
			if (!t[i].ok)
				fprintf(stderr, "accepted %s\n", t[i].in);
			assert_true(t[i].ok);
			assert_int_equal(a.family, t[i].family);
			assert_int_equal(port, t[i].port);
		} else {
			if (t[i].ok)
				fprintf(stderr, "refused %s: %s\n", t[i].in,
				    why);
			assert_false(t[i].ok);
			assert_non_null(why);
		}
	}
}

static void
test_http_server(void **state)
{
	struct event_base	*base = event_base_new();
	struct http_server	*srv, *again;
	struct response		 r;
	struct strbuf		 sb;
	char			 listen[64], err[256], req[4096];
	char			 big[2100];
	uint16_t		 port;

	assert_non_null(base);
	srv = http_server_start(base, "127.0.0.1:0", want_now,
	    (void *)"site-a", err, sizeof(err));
	want_srv = srv;
	if (srv == NULL)
		fprintf(stderr, "%s\n", err);
	assert_non_null(srv);
	port = http_server_port(srv);
	assert_int_not_equal(port, 0);

	fetch(base, port, "GET /status HTTP/1.1\r\nHost: x\r\n"
	    "Connection: close\r\n\r\n", &r);
	assert_int_equal(r.code, 200);
	expect_header(&r, "Content-Type: application/json");
	expect_header(&r, "Cache-Control: no-store");
	assert_string_equal(r.body, "{\"site\":\"site-a\"}");
	response_free(&r);

	/* A query string does not change the path. */
	fetch(base, port, "GET /status?pretty=1 HTTP/1.0\r\n\r\n", &r);
	assert_int_equal(r.code, 200);
	assert_string_equal(r.body, "{\"site\":\"site-a\"}");
	response_free(&r);

	strbuf_init(&sb);
	render_metrics(&sb, NULL);
	fetch(base, port, "GET /metrics HTTP/1.1\r\nHost: x\r\n"
	    "Connection: close\r\n\r\n", &r);
	assert_int_equal(r.code, 200);
	expect_header(&r, "Content-Type: text/plain; version=0.0.4; "
	    "charset=utf-8");
	assert_int_equal(r.body_len, sb.len);
	assert_string_equal(r.body, sb.s);
	response_free(&r);

	/* HEAD: the headers of GET, with its length, and no body. */
	fetch(base, port, "HEAD /metrics HTTP/1.1\r\nHost: x\r\n"
	    "Connection: close\r\n\r\n", &r);
	assert_int_equal(r.code, 200);
	snprintf(req, sizeof(req), "Content-Length: %zu", sb.len);
	expect_header(&r, req);
	assert_int_equal(r.body_len, 0);
	response_free(&r);
	strbuf_free(&sb);

	fetch(base, port, "GET /nothing HTTP/1.1\r\nHost: x\r\n"
	    "Connection: close\r\n\r\n", &r);
	assert_int_equal(r.code, 404);
	response_free(&r);
	fetch(base, port, "GET / HTTP/1.0\r\n\r\n", &r);
	assert_int_equal(r.code, 404);
	response_free(&r);

	renders = 0;
	fetch(base, port, "POST /status HTTP/1.1\r\nHost: x\r\n"
	    "Content-Length: 2\r\nConnection: close\r\n\r\n{}", &r);
	assert_int_equal(r.code, 405);
	expect_header(&r, "Allow: GET, HEAD");
	response_free(&r);
	fetch(base, port, "DELETE /metrics HTTP/1.1\r\nHost: x\r\n"
	    "Connection: close\r\n\r\n", &r);
	assert_int_equal(r.code, 405);
	response_free(&r);
	assert_int_equal(renders, 0);		/* never rendered for them */

	/* A body beyond the limit is refused before any handler runs. */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	snprintf(req, sizeof(req), "PUT /status HTTP/1.1\r\nHost: x\r\n"
	    "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
	    strlen(big), big);
	fetch(base, port, req, &r);
	assert_int_equal(r.code, 413);
	response_free(&r);

	/* The port is taken now: the error says so. */
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", (unsigned)port);
	again = http_server_start(base, listen, want_now, NULL, err,
	    sizeof(err));
	assert_null(again);
	assert_non_null(strstr(err, "bind 127.0.0.1:"));
	assert_non_null(strstr(err, "in use"));
	again = http_server_start(base, "localhost:1", want_now, NULL, err,
	    sizeof(err));
	assert_null(again);
	assert_non_null(strstr(err, "localhost:1"));

	http_server_free(srv);
	http_server_free(NULL);
	event_base_free(base);
}

/* A plain blocking TCP client to 127.0.0.1:port. */
static int
raw_connect(uint16_t port)
{
	struct sockaddr_in	 sin;
	int			 fd;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd != -1);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return fd;
}

/* Run the loop for ms milliseconds. */
static void
run_for(struct event_base *base, unsigned ms)
{
	int	 never = 0;

	loop_until(base, &never, ms / 1000.0);
}

/* 1 if the server closed fd (EOF, or a reset), after reading what came. */
static int
closed_by_server(int fd)
{
	char	 buf[512];
	ssize_t	 n;

	while ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
		;
	return n == 0 || (n == -1 && errno == ECONNRESET);
}

/*
 * What a client can make the server hold is bounded: an absolute
 * deadline per connection (a slow client is closed however it trickles),
 * a cap on connections (the oldest unfinished one makes room), and
 * limits on the head and the target.
 */
static void
test_http_limits(void **state)
{
	struct event_base	*base = event_base_new();
	struct http_server	*srv;
	struct http_stats	 st;
	struct response		 r;
	char			 err[256], *big;
	int			 slow, idle[HTTP_CONNS_MAX + 1], i, closed;
	uint16_t		 port;

	assert_non_null(base);
	srv = http_server_start(base, "127.0.0.1:0", want_now,
	    (void *)"site-a", err, sizeof(err));
	want_srv = srv;
	assert_non_null(srv);
	port = http_server_port(srv);
	http_server_set_deadline(srv, 400);

	/* Slowloris: a byte every 100 ms never completes a request; the
	 * connection is closed at its deadline all the same. */
	slow = raw_connect(port);
	for (i = 0; i < 10 && !closed_by_server(slow); i++) {
		assert_true(send(slow, "G", 1, MSG_NOSIGNAL) == 1 ||
		    errno == EPIPE || errno == ECONNRESET);
		run_for(base, 100);
	}
	run_for(base, 100);
	assert_true(closed_by_server(slow));
	close(slow);
	http_server_stats(srv, &st);
	assert_int_equal(st.timed_out, 1);
	assert_int_equal(st.open, 0);

	/* The cap: one more idle connection than allowed closes the
	 * oldest; a real request still gets its answer. */
	http_server_set_deadline(srv, 60000);
	for (i = 0; i <= HTTP_CONNS_MAX; i++) {
		idle[i] = raw_connect(port);
		run_for(base, 2);
	}
	run_for(base, 50);
	http_server_stats(srv, &st);
	assert_int_equal(st.open, HTTP_CONNS_MAX);
	assert_true(st.evicted >= 1);
	assert_true(closed_by_server(idle[0]));
	fetch(base, port, "GET /status HTTP/1.1\r\nHost: x\r\n\r\n", &r);
	assert_int_equal(r.code, 200);
	expect_header(&r, "Connection: close");
	response_free(&r);
	for (i = 0, closed = 0; i <= HTTP_CONNS_MAX; i++) {
		closed += closed_by_server(idle[i]);
		close(idle[i]);
	}
	assert_true(closed >= 2);	/* the oldest, and one for fetch */

	/* Heads the parser refuses, with the status that says why. */
	big = malloc(HTTP_HEAD_MAX + 64);
	assert_non_null(big);
	snprintf(big, HTTP_HEAD_MAX + 64, "GET /status HTTP/1.1\r\nX: ");
	memset(big + strlen(big), 'a', HTTP_HEAD_MAX);
	big[HTTP_HEAD_MAX + 40] = '\0';
	fetch(base, port, big, &r);
	assert_int_equal(r.code, 431);
	response_free(&r);
	snprintf(big, HTTP_HEAD_MAX + 64, "GET /");
	memset(big + 5, 'a', HTTP_TARGET_MAX + 10);
	snprintf(big + 5 + HTTP_TARGET_MAX + 10, 40, " HTTP/1.1\r\n\r\n");
	fetch(base, port, big, &r);
	assert_int_equal(r.code, 414);
	response_free(&r);
	free(big);
	fetch(base, port, "GET /status HTTP/2.0\r\n\r\n", &r);
	assert_int_equal(r.code, 505);
	response_free(&r);
	fetch(base, port, "GET /status HTTP/1.1\r\nTransfer-Encoding: "
	    "chunked\r\n\r\n", &r);
	assert_int_equal(r.code, 413);
	response_free(&r);
	fetch(base, port, "GET status HTTP/1.1\r\n\r\n", &r);
	assert_int_equal(r.code, 400);
	response_free(&r);

	http_server_free(srv);
	event_base_free(base);
}

static void
test_http_ipv6(void **state)
{
	struct event_base	*base = event_base_new();
	struct http_server	*srv;
	char			 err[256];

	srv = http_server_start(base, "[::1]:0", want_now, (void *)"x", err,
	    sizeof(err));
	want_srv = srv;
	if (srv == NULL) {
		/* A host without IPv6 loopback: the error must say why. */
		assert_non_null(strstr(err, "::1"));
		event_base_free(base);
		skip();
	}
	assert_int_not_equal(http_server_port(srv), 0);
	http_server_free(srv);
	event_base_free(base);
}

/* ---- state file ---------------------------------------------------------- */

static void
test_statefile(void **state)
{
	struct link_view	 lv;
	struct strbuf		 sb;
	struct stat		 st, st2;
	struct grgw_config	 cfg;
	char			*dir = tmp_path("state"), *path, *got;
	char			 buf[PATH_MAX];
	DIR			*d;
	struct dirent		*de;
	int			 n = 0;

	assert_int_equal(mkdir(dir, 0755), 0);
	assert_true(asprintf(&path, "%s/link.json", dir) != -1);
	sample_link(&lv);
	assert_int_equal(statefile_write(path, &lv), 0);
	strbuf_init(&sb);
	linkstate_render_json(&lv, &sb);
	strbuf_printf(&sb, "\n");
	got = read_file(path);
	assert_non_null(got);
	assert_string_equal(got, sb.s);
	free(got);
	strbuf_free(&sb);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);

	/* Replaced, not rewritten in place: a reader holding the old file
	 * keeps a whole old version. */
	lv.state = LINK_UP;
	lv.reason = REASON_NONE;
	assert_int_equal(statefile_write(path, &lv), 0);
	assert_int_equal(stat(path, &st2), 0);
	assert_true(st.st_ino != st2.st_ino);
	got = read_file(path);
	assert_non_null(strstr(got, "\"state\":\"up\""));
	free(got);

	/* Nothing else is left in the directory. */
	d = opendir(dir);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' && (de->d_name[1] == '\0' ||
		    strcmp(de->d_name, "..") == 0))
			continue;
		assert_string_equal(de->d_name, "link.json");
		n++;
	}
	closedir(d);
	assert_int_equal(n, 1);
	free(path);

	/* Errors come back as errno, with no debris. */
	assert_true(asprintf(&path, "%s/missing/link.json", dir) != -1);
	assert_int_equal(statefile_write(path, &lv), -1);
	assert_int_equal(errno, ENOENT);
	free(path);
	assert_int_equal(statefile_write(dir, NULL), -1);
	assert_int_equal(errno, EINVAL);
	assert_true(asprintf(&path, "%s/", dir) != -1);
	assert_int_equal(statefile_write(path, &lv), -1);
	free(path);

	memset(&cfg, 0, sizeof(cfg));
	snprintf(cfg.run_dir, sizeof(cfg.run_dir), "/run/grgw");
	snprintf(cfg.site.name, sizeof(cfg.site.name), "site-a");
	statefile_path(&cfg, buf, sizeof(buf));
	assert_string_equal(buf, "/run/grgw/site-a/linkstate.json");
	free(dir);
}

/* ---- hooks ------------------------------------------------------------------ */

static struct link_view	 hook_lv;

static void
transition(struct hooks *h, enum link_state from, enum link_state to,
    enum link_reason why)
{
	hook_lv.site = "site-a";
	hook_lv.peer = "site-b";
	hook_lv.state = to;
	hook_lv.reason = why;
	hook_lv.since.tv_sec = 1700000000;	/* 2023-11-14T22:13:20Z */
	hook_lv.since.tv_nsec = 0;
	hooks_run(h, &hook_lv, from);
}

/* Run the loop until no hook runs or waits, or `limit` seconds pass. */
static void
hooks_settle(struct event_base *base, struct hooks *h, double limit)
{
	struct hooks_stats	 st;
	double			 end = now_s() + limit;

	for (;;) {
		hooks_get_stats(h, &st);
		if (st.running == 0 || now_s() > end)
			break;
		event_base_loop(base, EVLOOP_ONCE);
	}
	assert_int_equal(st.running, 0);
}

static char *
make_hook_dir(const char *name)
{
	char	*dir = tmp_path(name);

	assert_int_equal(mkdir(dir, 0700), 0);
	return dir;
}

static void
test_hooks_environment(void **state)
{
	struct event_base	*base = event_base_new();
	struct hooks		*h;
	struct hooks_stats	 st;
	char			*dir = make_hook_dir("hooks-env");
	char			*hook, *out, *text, *got;

	assert_true(asprintf(&out, "%s/env.out", tmpdir) != -1);
	assert_true(asprintf(&hook, "%s/10-record", dir) != -1);
	assert_true(asprintf(&text, "#!/bin/sh\n"
	    "/usr/bin/env > '%s.tmp' && mv '%s.tmp' '%s'\n",
	    out, out, out) != -1);
	write_file(hook, text, 0700);
	free(text);

	setenv("GRGW_LEAK_CHECK", "must not reach hooks", 1);
	h = hooks_new(base, dir, 5);
	assert_non_null(h);
	transition(h, LINK_UP, LINK_DOWN, REASON_UNDERLAY_UNREACHABLE);
	hooks_settle(base, h, 10);
	unsetenv("GRGW_LEAK_CHECK");
	hooks_get_stats(h, &st);
	assert_int_equal(st.started, 1);
	assert_int_equal(st.succeeded, 1);

	got = read_file(out);
	assert_non_null(got);
	/* Exactly these; PWD is the shell's own addition (hooks run in /). */
	assert_non_null(strstr(got, "PATH=/usr/sbin:/usr/bin:/sbin:/bin\n"));
	assert_non_null(strstr(got, "GRGW_SITE=site-a\n"));
	assert_non_null(strstr(got, "GRGW_PEER=site-b\n"));
	assert_non_null(strstr(got, "GRGW_OLD_STATE=up\n"));
	assert_non_null(strstr(got, "GRGW_NEW_STATE=down\n"));
	assert_non_null(strstr(got, "GRGW_REASON=underlay-unreachable\n"));
	assert_non_null(strstr(got, "GRGW_SINCE=2023-11-14T22:13:20Z\n"));
	assert_non_null(strstr(got, "PWD=/\n"));
	assert_non_null(strstr(got, "/10-record\n"));	/* GRGW_HOOK= */
	assert_non_null(strstr(got, "GRGW_HOOK="));
	assert_non_null(strstr(got, "GRGW_EVENT=link\n"));
	assert_non_null(strstr(got, "GRGW_DETAIL=\n"));
	assert_non_null(strstr(got, "GRGW_PROBES=grgw\n"));
	assert_null(strstr(got, "GRGW_LEAK_CHECK"));
	{
		int	 lines = 0;
		char	*p;

		for (p = got; *p != '\0'; p++)
			lines += *p == '\n';
		assert_int_equal(lines, 12);
	}
	free(got);

	/* An event other than a transition: the same states, what happened. */
	{
		struct link_view v;

		memset(&v, 0, sizeof(v));
		v.site = "site-a";
		v.peer = "site-b";
		v.state = LINK_UP;
		v.since.tv_sec = 1700000000;
		hooks_event(h, &v, "block-repaired", "table inet grgw-block "
		    "deleted");
		hooks_settle(base, h, 10);
		hooks_get_stats(h, &st);
		assert_int_equal(st.succeeded, 2);
		got = read_file(out);
		assert_non_null(got);
		assert_non_null(strstr(got, "GRGW_EVENT=block-repaired\n"));
		assert_non_null(strstr(got, "GRGW_DETAIL=table inet grgw-block "
		    "deleted\n"));
		assert_non_null(strstr(got, "GRGW_OLD_STATE=up\n"));
		assert_non_null(strstr(got, "GRGW_NEW_STATE=up\n"));
		free(got);
	}
	hooks_free(h);
	free(hook);
	free(out);
	free(dir);
	event_base_free(base);
}

static void
test_hooks_eligibility(void **state)
{
	struct event_base	*base = event_base_new();
	struct hooks		*h;
	struct hooks_stats	 st;
	char			*dir = make_hook_dir("hooks-elig");
	char			*p, *out, *text, *got;

	assert_true(asprintf(&out, "%s/elig.out", tmpdir) != -1);
	assert_true(asprintf(&text, "#!/bin/sh\necho \"$GRGW_HOOK\" >> '%s'\n",
	    out) != -1);
#define HOOK(name, mode) do {						\
	assert_true(asprintf(&p, "%s/%s", dir, name) != -1);		\
	write_file(p, text, mode);					\
	free(p);							\
} while (0)
	HOOK("20-good", 0700);
	HOOK("10-also-good.sh", 0755);
	HOOK(".hidden", 0700);			/* silently ignored */
	HOOK("30-not-executable", 0644);
	HOOK("40-group-writable", 0770);
	HOOK("50-world-writable", 0707);
	HOOK("60 space", 0700);
	HOOK("70-backup~", 0700);
#undef HOOK
	assert_true(asprintf(&p, "%s/80-directory", dir) != -1);
	assert_int_equal(mkdir(p, 0700), 0);
	free(p);
	/* A symlink to a good hook is followed. */
	assert_true(asprintf(&p, "%s/90-link", dir) != -1);
	assert_int_equal(symlink("20-good", p), 0);
	free(p);

	h = hooks_new(base, dir, 5);
	transition(h, LINK_DOWN, LINK_UP, REASON_NONE);
	hooks_settle(base, h, 10);
	hooks_get_stats(h, &st);
	assert_int_equal(st.started, 3);
	assert_int_equal(st.succeeded, 3);
	assert_int_equal(st.skipped, 6);
	got = read_file(out);
	assert_non_null(got);
	/* Started in name order; all three ran. */
	assert_non_null(strstr(got, "/10-also-good.sh\n"));
	assert_non_null(strstr(got, "/20-good\n"));
	assert_non_null(strstr(got, "/90-link\n"));
	free(got);
	hooks_free(h);

	/* A directory others may write to is not trusted at all. */
	unlink(out);
	assert_int_equal(chmod(dir, 0777), 0);
	h = hooks_new(base, dir, 5);
	transition(h, LINK_DOWN, LINK_UP, REASON_NONE);
	hooks_settle(base, h, 10);
	hooks_get_stats(h, &st);
	assert_int_equal(st.started, 0);
	assert_null(read_file(out));
	hooks_free(h);
	assert_int_equal(chmod(dir, 0700), 0);

	/* No directory, or none configured: nothing runs, nothing fails. */
	assert_true(asprintf(&p, "%s/no-such-dir", tmpdir) != -1);
	h = hooks_new(base, p, 5);
	transition(h, LINK_DOWN, LINK_UP, REASON_NONE);
	hooks_get_stats(h, &st);
	assert_int_equal(st.started + st.failed + st.skipped, 0);
	hooks_free(h);
	free(p);
	h = hooks_new(base, NULL, 5);
	transition(h, LINK_DOWN, LINK_UP, REASON_NONE);
	hooks_free(h);
	hooks_free(NULL);

	free(text);
	free(out);
	free(dir);
	event_base_free(base);
}

/* Alive and not a zombie? */
static int
proc_alive(pid_t pid)
{
	char	 path[64], buf[512], *p;
	FILE	*f;
	size_t	 n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	if ((p = strrchr(buf, ')')) == NULL || p[1] == '\0')
		return 0;
	return p[2] != 'Z' && p[2] != 'X';
}

struct ticker {
	struct event	*ev;
	double		 last, max_gap;
	int		 ticks;
};

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ticker	*t = arg;
	double		 now = now_s();

	if (t->last > 0 && now - t->last > t->max_gap)
		t->max_gap = now - t->last;
	t->last = now;
	t->ticks++;
}

static void
test_hooks_hung_hook(void **state)
{
	struct event_base	*base = event_base_new();
	struct hooks		*h;
	struct hooks_stats	 st;
	struct http_server	*srv;
	struct response		 r;
	struct ticker		 t = { NULL, 0, 0, 0 };
	struct timeval		 tv = { 0, 20000 };
	char			*dir = make_hook_dir("hooks-hung");
	char			*p, *text, *rec, *pidf, *got, err[256];
	long			 sleeper;
	double			 start;

	assert_true(asprintf(&rec, "%s/hung.rec", tmpdir) != -1);
	assert_true(asprintf(&pidf, "%s/hung.pid", tmpdir) != -1);
	/* Hangs, and leaves a grandchild that must die with it. */
	assert_true(asprintf(&text, "#!/bin/sh\nsleep 60 &\n"
	    "echo $! > '%s'\nwait\n", pidf) != -1);
	assert_true(asprintf(&p, "%s/10-hang", dir) != -1);
	write_file(p, text, 0700);
	free(p);
	free(text);
	assert_true(asprintf(&text, "#!/bin/sh\n"
	    "echo \"$GRGW_OLD_STATE $GRGW_NEW_STATE\" >> '%s'\n", rec) != -1);
	assert_true(asprintf(&p, "%s/20-record", dir) != -1);
	write_file(p, text, 0700);
	free(p);
	free(text);

	t.ev = event_new(base, -1, EV_PERSIST, tick_cb, &t);
	event_add(t.ev, &tv);
	srv = http_server_start(base, "127.0.0.1:0", want_now,
	    (void *)"site-a", err, sizeof(err));
	want_srv = srv;
	assert_non_null(srv);
	h = hooks_new(base, dir, 1);

	start = now_s();
	transition(h, LINK_DOWN, LINK_UP, REASON_NONE);
	/* While 10-hang hangs, the other hook, the HTTP feed and timers go
	 * on: the record appears and /status answers. */
	for (;;) {
		hooks_get_stats(h, &st);
		if (st.succeeded == 1)
			break;
		event_base_loop(base, EVLOOP_ONCE);
		assert_true(now_s() - start < 10);
	}
	assert_int_equal(st.running, 1);
	fetch(base, http_server_port(srv), "GET /status HTTP/1.0\r\n\r\n", &r);
	assert_int_equal(r.code, 200);
	response_free(&r);

	/* The next transition runs 20-record at once and queues 10-hang. */
	transition(h, LINK_UP, LINK_DEGRADED, REASON_RTT);
	hooks_get_stats(h, &st);
	assert_int_equal(st.queued, 1);
	hooks_settle(base, h, 20);

	hooks_get_stats(h, &st);
	assert_int_equal(st.started, 4);	/* 10-hang twice, 20-record twice */
	assert_int_equal(st.timed_out, 2);
	assert_int_equal(st.succeeded, 2);
	assert_int_equal(st.failed, 2);
	got = read_file(rec);
	assert_string_equal(got, "down up\nup degraded\n");
	free(got);
	/* The loop never stalled on the hung hook (it ran ~2 s): timers
	 * kept firing (a stall would show a gap of a second or more). */
	assert_true(t.ticks > 20);
	if (t.max_gap >= 0.9)
		fprintf(stderr, "timer gap %.3f s\n", t.max_gap);
	assert_true(t.max_gap < 0.9);
	/* The grandchild was killed with its process group. */
	got = read_file(pidf);
	assert_non_null(got);
	sleeper = strtol(got, NULL, 10);
	free(got);
	assert_true(sleeper > 1);
	usleep(100000);
	assert_false(proc_alive((pid_t)sleeper));

	hooks_free(h);
	http_server_free(srv);
	event_free(t.ev);
	free(rec);
	free(pidf);
	free(dir);
	event_base_free(base);
}

static void
test_hooks_coalesce(void **state)
{
	struct event_base	*base = event_base_new();
	struct hooks		*h;
	struct hooks_stats	 st;
	char			*dir = make_hook_dir("hooks-coalesce");
	char			*p, *text, *rec, *got;

	assert_true(asprintf(&rec, "%s/coalesce.rec", tmpdir) != -1);
	assert_true(asprintf(&text, "#!/bin/sh\n"
	    "echo \"$GRGW_OLD_STATE $GRGW_NEW_STATE $GRGW_REASON\" >> '%s'\n"
	    "sleep 0.2\n", rec) != -1);
	assert_true(asprintf(&p, "%s/slow", dir) != -1);
	write_file(p, text, 0700);
	free(p);
	free(text);

	h = hooks_new(base, dir, 10);
	/* Three transitions before the first copy can have been reaped
	 * (that happens only in the loop): the middle one is dropped. */
	transition(h, LINK_DOWN, LINK_UP, REASON_NONE);
	transition(h, LINK_UP, LINK_DEGRADED, REASON_LOSS);
	transition(h, LINK_DEGRADED, LINK_DOWN, REASON_TUNNEL_DOWN);
	hooks_get_stats(h, &st);
	assert_int_equal(st.started, 1);
	assert_int_equal(st.running, 1);
	assert_int_equal(st.queued, 1);
	assert_int_equal(st.coalesced, 1);
	hooks_settle(base, h, 10);
	hooks_get_stats(h, &st);
	assert_int_equal(st.started, 2);
	assert_int_equal(st.succeeded, 2);
	got = read_file(rec);
	assert_string_equal(got, "down up none\ndegraded down tunnel-down\n");
	free(got);
	hooks_free(h);
	free(rec);
	free(dir);
	event_base_free(base);
}

static void
test_hooks_free_kills(void **state)
{
	struct event_base	*base = event_base_new();
	struct hooks		*h;
	char			*dir = make_hook_dir("hooks-free");
	char			*p, *text, *pidf, *got = NULL;
	double			 end;
	long			 pid;

	assert_true(asprintf(&pidf, "%s/free.pid", tmpdir) != -1);
	assert_true(asprintf(&text, "#!/bin/sh\necho $$ > '%s.tmp'\n"
	    "mv '%s.tmp' '%s'\nexec sleep 60\n", pidf, pidf, pidf) != -1);
	assert_true(asprintf(&p, "%s/hang", dir) != -1);
	write_file(p, text, 0700);
	free(p);
	free(text);
	h = hooks_new(base, dir, 3600);
	transition(h, LINK_UP, LINK_DOWN, REASON_WAN_LINK_DOWN);
	for (end = now_s() + 10; got == NULL && now_s() < end; ) {
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
		usleep(10000);
		got = read_file(pidf);
	}
	assert_non_null(got);
	pid = strtol(got, NULL, 10);
	free(got);
	assert_true(proc_alive((pid_t)pid));
	hooks_free(h);
	/* Killed and reaped: not even a zombie is left. */
	assert_false(proc_alive((pid_t)pid));
	assert_int_equal(waitpid((pid_t)pid, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
	free(pidf);
	free(dir);
	event_base_free(base);
}

/* ---- etcd: pure helpers ------------------------------------------------ */

static void
test_etcd_endpoint_parse(void **state)
{
	static const struct {
		const char	*in;
		int		 ok;
		uint16_t	 port;
		const char	*why;
	} t[] = {
		{ "http://127.0.0.1:4000", 1, 4000, NULL },
		{ "http://127.0.0.1:2379/", 1, 2379, NULL },
		{ "http://10.0.0.5", 1, 4000, NULL },
		{ "http://[::1]", 1, 4000, NULL },
		{ "http://[2001:db8::5]:4001", 1, 4001, NULL },
		{ "https://10.0.0.5:4000", 0, 0, "TLS" },
		{ "10.0.0.5:4000", 0, 0, "http://" },
		{ "http://etcd.local:4000", 0, 0, "IP address" },
		{ "http://10.0.0.5:4000/v3", 0, 0, "path" },
		{ "http://user@10.0.0.5:4000", 0, 0, "credentials" },
		{ "http://10.0.0.5:0", 0, 0, "port 0" },
		{ "http://10.0.0.5:99999", 0, 0, "port" },
		{ "http://", 0, 0, "IP address" },
		{ "", 0, 0, "empty" },
	};
	struct grgw_addr	 a;
	char			 why[160];
	uint16_t		 port;
	size_t			 i;

	for (i = 0; i < nitems(t); i++) {
		why[0] = '\0';
		if (addr_url_parse(t[i].in, FEEDS_ETCD_PORT_DEFAULT, &a, &port,
		    why, sizeof(why)) == 0) {
			if (!t[i].ok)
				fprintf(stderr, "accepted %s\n", t[i].in);
			assert_true(t[i].ok);
			assert_int_equal(port, t[i].port);
		} else {
			if (t[i].ok || strstr(why, t[i].why) == NULL)
				fprintf(stderr, "%s: %s\n", t[i].in, why);
			assert_false(t[i].ok);
			assert_non_null(strstr(why, t[i].why));
		}
	}
}

/* ---- etcd: messages (etcd_msg.c) ------------------------------------------ */

/* A heap copy of exactly len bytes of s, no NUL: ASan sees any overread. */
static char *
exact_copy(const char *s, size_t len)
{
	char	*copy = malloc(len > 0 ? len : 1);

	assert_non_null(copy);
	memcpy(copy, s, len);
	return copy;
}

/* One response and what a parser must make of it. */
struct msg_case {
	const char	*json;
	int		 ok;
	int64_t		 id;		/* or the error code */
	int64_t		 ttl;
	const char	*why;		/* in the message when refused, or
					 * the error message when accepted */
};

typedef int (*lease_parse_fn)(const char *, size_t, struct etcd_lease *,
    char *, size_t);

/*
 * Every strict prefix of an accepted document that still lacks its
 * closing brace is refused, each parsed from a buffer of its own length.
 */
static void
expect_truncations_refused(const char *json, int (*parse)(const char *,
    size_t, void *, char *, size_t), void *out)
{
	const char	*last = strrchr(json, '}');
	char		*copy, err[256];
	size_t		 cut;

	assert_non_null(last);
	for (cut = 0; cut <= (size_t)(last - json); cut++) {
		copy = exact_copy(json, cut);
		err[0] = '\0';
		if (parse(copy, cut, out, err, sizeof(err)) == 0) {
			fprintf(stderr, "accepted a truncation: %.*s\n",
			    (int)cut, json);
			fail();
		}
		assert_true(err[0] != '\0');
		free(copy);
	}
}

static int
grant_parse_any(const char *b, size_t len, void *out, char *err, size_t n)
{
	return etcd_grant_parse(b, len, out, err, n);
}

static int
keepalive_parse_any(const char *b, size_t len, void *out, char *err, size_t n)
{
	return etcd_keepalive_parse(b, len, out, err, n);
}

static int
put_parse_any(const char *b, size_t len, void *out, char *err, size_t n)
{
	return etcd_put_parse(b, len, out, err, n);
}

static int
error_parse_any(const char *b, size_t len, void *out, char *err, size_t n)
{
	return etcd_error_parse(b, len, out, err, n);
}

static void
run_lease_cases(const struct msg_case *t, size_t n, lease_parse_fn parse,
    int (*parse_any)(const char *, size_t, void *, char *, size_t))
{
	struct etcd_lease	 l;
	char			*copy, err[256];
	size_t			 i, len;
	int			 rc;

	for (i = 0; i < n; i++) {
		len = strlen(t[i].json);
		copy = exact_copy(t[i].json, len);
		err[0] = '\0';
		rc = parse(copy, len, &l, err, sizeof(err));
		free(copy);
		if (rc != (t[i].ok ? 0 : -1) || (rc == 0 && (l.id != t[i].id ||
		    l.ttl != t[i].ttl)) || (rc == -1 &&
		    strstr(err, t[i].why) == NULL)) {
			fprintf(stderr, "%s: rc %d id %lld ttl %lld: %s\n",
			    t[i].json, rc, (long long)l.id, (long long)l.ttl,
			    err);
			fail();
		}
		if (t[i].ok)
			expect_truncations_refused(t[i].json, parse_any, &l);
	}
}

#define ETCD_HEADER	"\"header\":{\"cluster_id\":\"8707978767259223770\"," \
			"\"member_id\":\"2255229976606588394\",\"revision\":\"1\"," \
			"\"raft_term\":\"2\"}"

static void
test_etcd_grant_parse(void **state)
{
	static const struct msg_case t[] = {
		/* What etcd 3.4 answers. */
		{ "{" ETCD_HEADER ",\"ID\":\"4461556747247699461\","
		  "\"TTL\":\"10\"}", 1, 4461556747247699461LL, 10, NULL },
		{ "{\"ID\":42,\"TTL\":10}", 1, 42, 10, NULL },
		{ "{ \"ID\" : \"7\" }", 1, 7, 0, NULL },
		{ "{\"ID\":\"9223372036854775807\",\"TTL\":\"-9223372036854775808\","
		  "\"error\":\"\"}", 1, INT64_MAX, INT64_MIN, NULL },
		{ "{\"ID\":\"5\",\"other\":{\"ID\":\"6\",\"TTL\":\"9\"}}", 1, 5, 0,
		  NULL },
		{ "{\"header\":{\"cluster_id\":\"18446744073709551615\"},"
		  "\"ID\":\"5\"}", 1, 5, 0, NULL },
		/* The ID at any other depth is no ID. */
		{ "{\"header\":{\"ID\":\"5\"}}", 0, 0, 0, "no lease \"ID\"" },
		{ "{\"result\":{\"ID\":\"5\",\"TTL\":\"10\"}}", 0, 0, 0,
		  "no lease \"ID\"" },
		{ "[{\"ID\":\"5\"}]", 0, 0, 0, "not a JSON object" },
		{ "\"ID\"", 0, 0, 0, "not JSON" },
		/* Numbers out of range, or not integers as etcd writes them. */
		{ "{\"ID\":\"9223372036854775808\"}", 0, 0, 0,
		  "\"ID\" is not a 64-bit integer" },
		{ "{\"ID\":9223372036854775808}", 0, 0, 0, "not JSON" },
		{ "{\"ID\":\"99999999999999999999999\"}", 0, 0, 0,
		  "\"ID\" is not" },
		{ "{\"ID\":\"-5\"}", 0, 0, 0, "is not positive" },
		{ "{\"ID\":\"0\"}", 0, 0, 0, "no lease \"ID\"" },
		{ "{\"ID\":1.5}", 0, 0, 0, "\"ID\" is not" },
		{ "{\"ID\":1e3}", 0, 0, 0, "\"ID\" is not" },
		{ "{\"ID\":\"007\"}", 0, 0, 0, "\"ID\" is not" },
		{ "{\"ID\":\"+7\"}", 0, 0, 0, "\"ID\" is not" },
		{ "{\"ID\":\" 7\"}", 0, 0, 0, "\"ID\" is not" },
		{ "{\"ID\":\"7 \"}", 0, 0, 0, "\"ID\" is not" },
		{ "{\"ID\":\"-0\"}", 0, 0, 0, "\"ID\" is not" },
		{ "{\"ID\":\"\"}", 0, 0, 0, "\"ID\" is not" },
		{ "{\"ID\":\"12a\"}", 0, 0, 0, "\"ID\" is not" },
		{ "{\"ID\":null}", 0, 0, 0, "\"ID\" is not" },
		{ "{\"ID\":true}", 0, 0, 0, "\"ID\" is not" },
		{ "{\"ID\":[\"7\"]}", 0, 0, 0, "\"ID\" is not" },
		{ "{\"ID\":{\"ID\":\"7\"}}", 0, 0, 0, "\"ID\" is not" },
		{ "{\"ID\":\"5\",\"TTL\":\"ten\"}", 0, 0, 0, "\"TTL\" is not" },
		{ "{\"ID\":\"5\",\"header\":\"x\"}", 0, 0, 0,
		  "\"header\" is not an object" },
		{ "{\"ID\":\"5\",\"header\":{\"revision\":\"x\"}}", 0, 0, 0,
		  "\"header\".\"revision\" is not" },
		{ "{\"ID\":\"5\",\"header\":{\"cluster_id\":"
		  "\"18446744073709551616\"}}", 0, 0, 0,
		  "\"header\".\"cluster_id\" is not" },
		{ "{\"ID\":\"5\",\"header\":{\"member_id\":-1}}", 0, 0, 0,
		  "\"header\".\"member_id\" is not" },
		/* A key twice is ambiguous. */
		{ "{\"ID\":\"5\",\"ID\":\"6\"}", 0, 0, 0, "not JSON" },
		{ "{\"ID\":\"5\",\"error\":\"etcdserver: too many requests\"}", 0,
		  0, 0, "refused the lease: etcdserver: too many requests" },
		{ "{\"error\":\"\\\"ID\\\":7\"}", 0, 0, 0, "refused the lease" },
		{ "{\"ID\":\"5\",\"error\":7}", 0, 0, 0, "\"error\" is not" },
		{ "{\"ID\":\"5\"} {}", 0, 0, 0, "not JSON" },
		{ "{\"ID\":\"\\u0000\"}", 0, 0, 0, "not JSON" },
		{ "{\"ID\":\"5\"", 0, 0, 0, "not JSON" },
		{ "", 0, 0, 0, "empty response" },
	};

	run_lease_cases(t, nitems(t), etcd_grant_parse, grant_parse_any);
}

static void
test_etcd_keepalive_parse(void **state)
{
	static const struct msg_case t[] = {
		/* What etcd 3.4 answers, alive and lost (no TTL). */
		{ "{\"result\":{" ETCD_HEADER ",\"ID\":\"4461556747247699461\","
		  "\"TTL\":\"10\"}}\n", 1, 4461556747247699461LL, 10, NULL },
		{ "{\"result\":{" ETCD_HEADER ",\"ID\":\"12345\"}}\n", 1, 12345, 0,
		  NULL },
		{ "{\"result\":{\"ID\":12345,\"TTL\":3}}", 1, 12345, 3, NULL },
		{ "{\"result\":{}}", 1, 0, 0, NULL },
		{ "{\"result\":{\"ID\":\"1\",\"TTL\":-1}}", 1, 1, -1, NULL },
		/* A TTL anywhere but in "result" is not the lease's TTL. */
		{ "{\"result\":{\"ID\":\"12345\",\"nested\":{\"TTL\":\"3\"}}}", 1,
		  12345, 0, NULL },
		{ "{\"TTL\":\"3\",\"result\":{\"ID\":\"1\"}}", 1, 1, 0, NULL },
		{ "{\"ID\":\"12345\",\"TTL\":\"3\"}", 0, 0, 0,
		  "\"result\" is missing" },
		{ "{\"x\":{\"result\":{\"ID\":\"1\",\"TTL\":\"3\"}}}", 0, 0, 0,
		  "\"result\" is missing" },
		{ "{\"result\":[{\"TTL\":\"3\"}]}", 0, 0, 0,
		  "\"result\" is not an object" },
		{ "{\"result\":\"x\"}", 0, 0, 0, "\"result\" is not an object" },
		{ "{\"result\":{\"TTL\":\"3.0\"}}", 0, 0, 0,
		  "\"result\".\"TTL\" is not" },
		{ "{\"result\":{\"TTL\":3.0}}", 0, 0, 0,
		  "\"result\".\"TTL\" is not" },
		{ "{\"result\":{\"ID\":\"1\",\"TTL\":\"9223372036854775808\"}}", 0,
		  0, 0, "\"result\".\"TTL\" is not" },
		{ "{\"result\":{\"ID\":\"1\",\"header\":{\"revision\":true}}}", 0,
		  0, 0, "\"result\".\"header\".\"revision\" is not" },
		{ "{\"result\":{\"ID\":\"1\"},\"result\":{\"ID\":\"2\"}}", 0, 0, 0,
		  "not JSON" },
		{ "{\"error\":{\"grpc_code\":5,\"message\":\"lease not found\"}}",
		  0, 0, 0, "\"result\" is missing" },
		{ "[]", 0, 0, 0, "not a JSON object" },
		{ "null", 0, 0, 0, "not JSON" },
		{ "42", 0, 0, 0, "not JSON" },
	};

	run_lease_cases(t, nitems(t), etcd_keepalive_parse,
	    keepalive_parse_any);
}

static void
test_etcd_put_parse(void **state)
{
	static const struct msg_case t[] = {
		{ "{" ETCD_HEADER "}", 1, 1, 0, NULL },
		{ "{\"header\":{\"revision\":\"4\"},\"prev_kv\":{\"key\":\"a2V5\","
		  "\"lease\":\"5\"}}", 1, 4, 0, NULL },
		{ "{\"header\":{}}", 1, 0, 0, NULL },
		{ "{}", 0, 0, 0, "\"header\" is missing" },
		{ "{\"result\":{\"header\":{}}}", 0, 0, 0, "\"header\" is missing" },
		{ "{\"header\":[]}", 0, 0, 0, "\"header\" is not an object" },
		{ "{\"header\":{\"revision\":\"01\"}}", 0, 0, 0,
		  "\"header\".\"revision\" is not" },
		{ "{\"error\":\"etcdserver: requested lease not found\","
		  "\"code\":5}", 0, 0, 0, "\"header\" is missing" },
		{ "<html>", 0, 0, 0, "not JSON" },
	};
	struct etcd_put	 p;
	char		*copy, err[256];
	size_t		 i, len;
	int		 rc;

	for (i = 0; i < nitems(t); i++) {
		len = strlen(t[i].json);
		copy = exact_copy(t[i].json, len);
		err[0] = '\0';
		rc = etcd_put_parse(copy, len, &p, err, sizeof(err));
		free(copy);
		if (rc != (t[i].ok ? 0 : -1) || (rc == 0 &&
		    p.header.revision != t[i].id) || (rc == -1 &&
		    strstr(err, t[i].why) == NULL)) {
			fprintf(stderr, "%s: rc %d: %s\n", t[i].json, rc, err);
			fail();
		}
		if (t[i].ok)
			expect_truncations_refused(t[i].json, put_parse_any, &p);
	}
}

static void
test_etcd_error_parse(void **state)
{
	static const struct msg_case t[] = {
		/* etcd 3.4's answers to a put on a lost lease and to a body
		 * that is not JSON; a streaming call's error. */
		{ "{\"error\":\"etcdserver: requested lease not found\","
		  "\"message\":\"etcdserver: requested lease not found\","
		  "\"code\":5}", 1, 5, 1,
		  "etcdserver: requested lease not found" },
		{ "{\"error\":\"invalid character 'g' looking for beginning of "
		  "value\",\"message\":\"invalid character 'g' looking for "
		  "beginning of value\",\"code\":3}", 1, 3, 0,
		  "invalid character 'g' looking for beginning of value" },
		{ "{\"error\":{\"grpc_code\":5,\"http_code\":404,\"message\":"
		  "\"etcdserver: requested lease not found\",\"http_status\":"
		  "\"Not Found\"}}", 1, 5, 1,
		  "etcdserver: requested lease not found" },
		{ "{\"error\":\"etcdserver: no leader\"}", 1, 0, 0,
		  "etcdserver: no leader" },
		{ "{\"message\":\"\",\"error\":\"fallback\"}", 1, 0, 0, "fallback" },
		/* Only printable ASCII reaches a log line. */
		{ "{\"message\":\"a\\nb\\u0001c\\u00e9\"}", 1, 0, 0, "a?b?c??" },
		{ "{}", 0, 0, 0, "no \"message\" or \"error\" text" },
		{ "{\"error\":\"\"}", 0, 0, 0, "no \"message\" or \"error\" text" },
		{ "{\"error\":5}", 0, 0, 0, "neither a string nor an object" },
		{ "{\"message\":5,\"error\":\"x\"}", 0, 0, 0,
		  "\"message\" is not a string" },
		{ "{\"error\":\"x\",\"code\":\"5\"}", 0, 0, 0,
		  "\"code\" is not a status code" },
		{ "{\"error\":\"x\",\"code\":-1}", 0, 0, 0,
		  "\"code\" is not a status code" },
		{ "{\"error\":{\"grpc_code\":5}}", 0, 0, 0,
		  "\"error\".\"message\" is missing or empty" },
		{ "{\"nested\":{\"error\":\"lease not found\"}}", 0, 0, 0,
		  "no \"message\" or \"error\" text" },
		{ "Service Unavailable", 0, 0, 0, "not JSON" },
	};
	struct etcd_error	 e;
	char			*copy, err[256];
	size_t			 i, len;
	int			 rc;

	for (i = 0; i < nitems(t); i++) {
		len = strlen(t[i].json);
		copy = exact_copy(t[i].json, len);
		err[0] = '\0';
		rc = etcd_error_parse(copy, len, &e, err, sizeof(err));
		free(copy);
		if (rc != (t[i].ok ? 0 : -1) || (rc == 0 && (e.code != t[i].id ||
		    etcd_error_lease_not_found(&e) != t[i].ttl ||
		    strcmp(e.message, t[i].why) != 0)) || (rc == -1 &&
		    strstr(err, t[i].why) == NULL)) {
			fprintf(stderr, "%s: rc %d code %d message %s: %s\n",
			    t[i].json, rc, e.code, e.message, err);
			fail();
		}
		if (t[i].ok)
			expect_truncations_refused(t[i].json, error_parse_any,
			    &e);
	}
	assert_false(etcd_error_lease_not_found(NULL));
}

/* The request bodies, exactly, and what etcd's gateway reads from them. */
static void
test_etcd_requests(void **state)
{
	char	*s;

	s = etcd_grant_request(10);
	assert_string_equal(s, "{\"TTL\":10}");
	free(s);
	s = etcd_keepalive_request(4461556747247699461LL);
	assert_string_equal(s, "{\"ID\":\"4461556747247699461\"}");
	free(s);
	s = etcd_put_request("/clearwater/site-a/gr-gateway/site-b",
	    "{\"state\":\"up\",\"n\":\"\\\"\xc3\xa9\"}", 7);
	assert_string_equal(s, "{\"key\":"
	    "\"L2NsZWFyd2F0ZXIvc2l0ZS1hL2dyLWdhdGV3YXkvc2l0ZS1i\","
	    "\"value\":\"eyJzdGF0ZSI6InVwIiwibiI6Ilwiw6kifQ==\","
	    "\"lease\":\"7\"}");
	free(s);
	s = etcd_put_request("", "", INT64_MAX);
	assert_string_equal(s, "{\"key\":\"\",\"value\":\"\","
	    "\"lease\":\"9223372036854775807\"}");
	free(s);
}

/* ---- the documents, read back -------------------------------------------- */

/* The keys appear in this order in text (each after the previous one). */
static void
expect_key_order(const char *text, const char *const *keys, size_t n)
{
	const char	*at = text;
	char		 pat[64];
	size_t		 i;

	for (i = 0; i < n; i++) {
		snprintf(pat, sizeof(pat), "\"%s\":", keys[i]);
		if ((at = strstr(at, pat)) == NULL) {
			fprintf(stderr, "key %s missing or out of order in %s\n",
			    keys[i], text);
			fail();
		}
	}
}

static void
sample_qos(struct qos_view *q)
{
	memset(q, 0, sizeof(*q));
	q->enabled = 1;
	q->classification = QOS_ON;
	q->shaping = QOS_WAITING;
	snprintf(q->status, sizeof(q->status), "shaping waiting for \"ipsec0\"");
	q->wan_rate = UINT64_MAX;		/* capped, never negative */
	q->n_classes = 2;
	snprintf(q->classes[0].name, sizeof(q->classes[0].name), "rogers");
	q->classes[0].marks = 1;
	q->classes[0].dscp = 18;
	q->classes[0].packets = 5;
	snprintf(q->classes[1].name, sizeof(q->classes[1].name), "default");
	q->classes[1].priority = 7;
}

static void
test_status_document(void **state)
{
	static const char *const top[] = { "version", "site", "daemon",
	    "charon", "dataplane", "kernel", "qos", "peers" };
	static const char *const peer[] = { "name", "address", "tunnel",
	    "since", "ike", "child", "traffic_verified", "last_error",
	    "bytes_in", "bytes_out", "packets_in", "packets_out",
	    "local_prefixes", "remote_prefixes", "link" };
	struct status_view	 sv;
	struct link_view	 lv;
	struct qos_view		 q;
	struct strbuf		 sb;
	json_t			*doc, *p, *link, *cls;
	json_error_t		 je;
	const char		*version, *site, *last_error, *dscp;
	int			 running, pid;
	json_int_t		 since, bytes_in, wan_rate;

	sample_status(&sv);
	sample_link(&lv);
	sample_qos(&q);
	sv.link = &lv;
	sv.qos = &q;
	sv.last_error = "charon: \"AUTH\\FAILED\"\n\x01\t\xff";
	strbuf_init(&sb);
	status_render_json(&sv, &sb);
	assert_false(sb.failed);
	assert_true(sb.len > 0 && sb.s[sb.len - 1] == '\n');
	expect_key_order(sb.s, top, nitems(top));
	expect_key_order(strstr(sb.s, "\"peers\":"), peer, nitems(peer));
	doc = json_loads(sb.s, JSON_REJECT_DUPLICATES, &je);
	if (doc == NULL)
		fprintf(stderr, "%s: %s\n", je.text, sb.s);
	assert_non_null(doc);
	assert_int_equal(json_unpack(doc, "{s:s, s:s, s:{s:b, s:i, s:I}}",
	    "version", &version, "site", &site, "daemon", "running", &running,
	    "pid", &pid, "since", &since), 0);
	assert_string_equal(version, GRGW_VERSION);
	assert_string_equal(site, "site-a");
	assert_true(running);
	assert_int_equal(pid, 42);
	assert_true(since == 1699990000);
	assert_int_equal(json_unpack(doc, "{s:{s:I}}", "qos", "wan_rate",
	    &wan_rate), 0);
	assert_true(wan_rate == INT64_MAX);
	cls = json_object_get(json_object_get(doc, "qos"), "classes");
	assert_int_equal(json_array_size(cls), 2);
	assert_int_equal(json_unpack(json_array_get(cls, 0), "{s:s}", "dscp",
	    &dscp), 0);
	assert_string_equal(dscp, "AF21");
	assert_true(json_is_null(json_object_get(json_array_get(cls, 1),
	    "dscp_value")));

	p = json_array_get(json_object_get(doc, "peers"), 0);
	assert_int_equal(json_array_size(json_object_get(doc, "peers")), 1);
	assert_int_equal(json_unpack(p, "{s:s, s:I}", "last_error",
	    &last_error, "bytes_in", &bytes_in), 0);
	/* The escapes come back as the bytes; what is not UTF-8 as '?'. */
	assert_string_equal(last_error, "charon: \"AUTH\\FAILED\"\n\x01\t?");
	assert_true(bytes_in == 5);
	link = json_object_get(p, "link");
	assert_true(json_is_object(link));
	assert_string_equal(json_string_value(json_object_get(link, "state")),
	    "degraded");
	json_decref(doc);
	strbuf_free(&sb);

	/* No daemon: null where the daemon's parts would be. */
	sample_status(&sv);
	strbuf_init(&sb);
	status_render_json(&sv, &sb);
	doc = json_loads(sb.s, JSON_REJECT_DUPLICATES, NULL);
	assert_non_null(doc);
	assert_true(json_is_null(json_object_get(doc, "qos")));
	p = json_array_get(json_object_get(doc, "peers"), 0);
	assert_true(json_is_null(json_object_get(p, "link")));
	assert_true(json_is_null(json_object_get(p, "last_error")));
	json_decref(doc);
	strbuf_free(&sb);
}

static void
test_link_document(void **state)
{
	static const char *const top[] = { "site", "peer", "state", "reason",
	    "since", "since_epoch_ms", "changes", "carrier", "charon", "ike",
	    "child", "charon_restarts", "paths" };
	static const char *const path[] = { "up", "rtt_ms", "last",
	    "smoothed", "p50", "p99", "jitter_ms", "loss", "sent", "received",
	    "answered", "reordered", "transitions", "rejected", "auth",
	    "replay", "malformed" };
	struct link_view	 lv;
	struct strbuf		 sb;
	json_t			*doc, *tun, *und;
	const char		*since, *peer;
	json_int_t		 epoch_ms, sent, auth;
	double			 last, loss;

	sample_link(&lv);
	lv.peer = "site-\"b\"\\\x7f";
	strbuf_init(&sb);
	linkstate_render_json(&lv, &sb);
	assert_false(sb.failed);
	expect_key_order(sb.s, top, nitems(top));
	expect_key_order(strstr(sb.s, "\"tunnel\":"), path, nitems(path));
	expect_key_order(strstr(sb.s, "\"underlay\":"), path, nitems(path));
	doc = json_loads(sb.s, JSON_REJECT_DUPLICATES, NULL);
	assert_non_null(doc);
	assert_int_equal(json_unpack(doc, "{s:s, s:s, s:I}", "peer", &peer,
	    "since", &since, "since_epoch_ms", &epoch_ms), 0);
	assert_string_equal(peer, "site-\"b\"\\\x7f");
	assert_string_equal(since, "2023-11-14T22:13:20.250Z");
	assert_true(epoch_ms == 1700000000250LL);
	tun = json_object_get(json_object_get(doc, "paths"), "tunnel");
	und = json_object_get(json_object_get(doc, "paths"), "underlay");
	assert_int_equal(json_unpack(tun, "{s:{s:F}, s:F, s:I, s:{s:I}}",
	    "rtt_ms", "last", &last, "loss", &loss, "sent", &sent, "rejected",
	    "auth", &auth), 0);
	assert_true(last == 12.5);
	assert_true(fabs(loss - 0.062) < 1e-12);	/* three decimals */
	assert_true(sent == 100);
	assert_true(auth == 1);
	/* Integers stay integers; RTTs before the first answer are null. */
	assert_true(json_is_integer(json_object_get(tun, "received")));
	assert_true(json_is_real(json_object_get(tun, "jitter_ms")));
	assert_true(json_is_null(json_object_get(json_object_get(und,
	    "rtt_ms"), "last")));
	assert_true(json_is_null(json_object_get(json_object_get(und,
	    "rtt_ms"), "p99")));		/* infinity */
	assert_true(json_is_true(json_object_get(doc, "carrier")));
	json_decref(doc);
	strbuf_free(&sb);
}

/* ---- etcd: publisher against a scripted gateway --------------------------- */

struct fake_etcd {
	struct evhttp		*http;
	uint16_t		 port;
	int64_t			 next_lease;
	int64_t			 revoked;	/* this lease is gone */
	int			 fail;		/* answer 503 */
	int			 hang;		/* answer nothing (SIGSTOP) */
	int			 hung;		/* requests left unanswered */
	int			 grants, puts, keepalives;
	char			 key[256], value[1024];
	int64_t			 value_lease;
};

/*
 * A request body as etcd's gateway reads it: one JSON object, whose
 * member name holds an integer (a number or a string of digits).
 */
static int
request_int(const char *body, size_t len, const char *name, int64_t *out)
{
	json_t		*doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
	const json_t	*v = json_object_get(doc, name);
	const char	*s;
	char		*end;
	int		 rc = -1;

	if (json_is_integer(v)) {
		*out = json_integer_value(v);
		rc = 0;
	} else if (json_is_string(v)) {
		s = json_string_value(v);
		errno = 0;
		*out = strtoll(s, &end, 10);
		rc = end != s && *end == '\0' && errno == 0 ? 0 : -1;
	}
	json_decref(doc);
	return rc;
}

/* The base64 string member name of a request body, decoded into out. */
static int
request_b64(const char *body, size_t len, const char *name, char *out,
    size_t size)
{
	json_t		*doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
	const json_t	*v = json_object_get(doc, name);
	size_t		 bin_len;
	int		 rc = -1;

	if (json_is_string(v) && sodium_base642bin((unsigned char *)out,
	    size - 1, json_string_value(v), json_string_length(v), NULL,
	    &bin_len, NULL, sodium_base64_VARIANT_ORIGINAL) == 0) {
		out[bin_len] = '\0';
		rc = 0;
	}
	json_decref(doc);
	return rc;
}

static void
fake_reply(struct evhttp_request *req, int code, const char *body)
{
	struct evbuffer	*b = evbuffer_new();

	evbuffer_add(b, body, strlen(body));
	evhttp_send_reply(req, code, code == 200 ? "OK" : "Error", b);
	evbuffer_free(b);
}

static void
fake_etcd_cb(struct evhttp_request *req, void *arg)
{
	struct fake_etcd	*f = arg;
	struct evbuffer		*in = evhttp_request_get_input_buffer(req);
	const char		*uri = evhttp_request_get_uri(req);
	char			 body[4096], out[512];
	size_t			 len = evbuffer_get_length(in);
	int64_t			 lease = 0;

	assert_true(len < sizeof(body));
	evbuffer_remove(in, body, len);
	body[len] = '\0';
	assert_int_equal(evhttp_request_get_command(req), EVHTTP_REQ_POST);
	if (f->hang) {
		/* evhttp frees it when the client gives up and hangs up. */
		f->hung++;
		return;
	}
	if (f->fail) {
		fake_reply(req, 503, "{\"error\":\"etcdserver: no leader\"}");
		return;
	}
	if (strcmp(uri, "/v3/lease/grant") == 0) {
		f->grants++;
		assert_int_equal(request_int(body, len, "TTL", &lease), 0);
		snprintf(out, sizeof(out), "{\"header\":{\"revision\":\"1\"},"
		    "\"ID\":\"%lld\",\"TTL\":\"%lld\"}",
		    (long long)f->next_lease++, (long long)lease);
		fake_reply(req, 200, out);
	} else if (strcmp(uri, "/v3/kv/put") == 0) {
		f->puts++;
		assert_int_equal(request_int(body, len, "lease", &lease), 0);
		if (lease == f->revoked) {
			fake_reply(req, 404, "{\"error\":\"etcdserver: "
			    "requested lease not found\",\"code\":5}");
			return;
		}
		assert_int_equal(request_b64(body, len, "key", f->key,
		    sizeof(f->key)), 0);
		assert_int_equal(request_b64(body, len, "value", f->value,
		    sizeof(f->value)), 0);
		f->value_lease = lease;
		fake_reply(req, 200, "{\"header\":{\"revision\":\"2\"}}");
	} else if (strcmp(uri, "/v3/lease/keepalive") == 0) {
		f->keepalives++;
		assert_int_equal(request_int(body, len, "ID", &lease), 0);
		if (lease == f->revoked)
			snprintf(out, sizeof(out), "{\"result\":{\"header\":{},"
			    "\"ID\":\"%lld\"}}", (long long)lease);
		else
			snprintf(out, sizeof(out), "{\"result\":{\"header\":{},"
			    "\"ID\":\"%lld\",\"TTL\":\"3\"}}",
			    (long long)lease);
		fake_reply(req, 200, out);
	} else
		fake_reply(req, 404, "{}");
}

static void
fake_etcd_start(struct event_base *base, struct fake_etcd *f)
{
	struct evhttp_bound_socket	*bs;
	struct sockaddr_in		 sin;
	socklen_t			 slen = sizeof(sin);

	memset(f, 0, sizeof(*f));
	f->next_lease = 100;
	f->revoked = -1;
	f->http = evhttp_new(base);
	assert_non_null(f->http);
	evhttp_set_gencb(f->http, fake_etcd_cb, f);
	bs = evhttp_bind_socket_with_handle(f->http, "127.0.0.1", 0);
	assert_non_null(bs);
	assert_int_equal(getsockname(evhttp_bound_socket_get_fd(bs),
	    (struct sockaddr *)&sin, &slen), 0);
	f->port = ntohs(sin.sin_port);
}

struct wait_healthy {
	struct etcd_pub	*e;
	struct fake_etcd *f;
	const char	*value;
	int64_t		 lease;		/* 0: any */
};

static int
published(const struct wait_healthy *w)
{
	return etcd_pub_healthy(w->e) && strcmp(w->f->value, w->value) == 0 &&
	    (w->lease == 0 || w->f->value_lease == w->lease);
}

static void
wait_published(struct event_base *base, struct wait_healthy *w, double limit)
{
	double	 end = now_s() + limit;

	while (!published(w) && now_s() < end)
		event_base_loop(base, EVLOOP_ONCE);
	if (!published(w))
		fprintf(stderr, "not published: \"%s\" want \"%s\" lease %lld "
		    "(error %s)\n", w->f->value, w->value,
		    (long long)w->f->value_lease,
		    etcd_pub_last_error(w->e) ? etcd_pub_last_error(w->e) :
		    "none");
	assert_true(published(w));
}

static void
test_etcd_publisher(void **state)
{
	struct event_base	*base = event_base_new();
	struct fake_etcd	 f;
	struct etcd_pub		*e;
	struct wait_healthy	 w;
	char			 ep[64];
	double			 end;
	int			 puts;

	fake_etcd_start(base, &f);
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%u", (unsigned)f.port);
	assert_null(etcd_pub_new(base, "https://127.0.0.1:1", "/k", 3));
	assert_null(etcd_pub_new(base, ep, "", 3));
	e = etcd_pub_new(base, ep, "/clearwater/site-a/gr-gateway/site-b", 3);
	assert_non_null(e);
	assert_false(etcd_pub_healthy(e));
	assert_int_equal(etcd_pub_lease(e), 0);

	/* Nothing is granted before there is something to publish. */
	event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(f.grants, 0);

	w.e = e;
	w.f = &f;
	w.value = "{\"state\":\"up\"}";
	w.lease = 100;
	etcd_pub_set(e, w.value);
	wait_published(base, &w, 5);
	assert_string_equal(f.key, "/clearwater/site-a/gr-gateway/site-b");
	assert_int_equal(etcd_pub_lease(e), 100);
	assert_int_equal(f.grants, 1);
	assert_int_equal(f.puts, 1);

	/* Values set in one go coalesce into one put of the latest. */
	etcd_pub_set(e, "{\"state\":\"degraded\"}");
	etcd_pub_set(e, "{\"state\":\"down\"}");
	etcd_pub_set(e, "{\"state\":\"down\"}");
	w.value = "{\"state\":\"down\"}";
	wait_published(base, &w, 5);
	assert_int_equal(f.puts, 2);

	/* Keepalives every TTL/3 (1 s) keep the same lease. */
	for (end = now_s() + 2.5; now_s() < end; )
		event_base_loop(base, EVLOOP_ONCE);
	assert_true(f.keepalives >= 1);
	assert_int_equal(f.grants, 1);
	assert_true(etcd_pub_healthy(e));

	/* The lease vanishes (revoked, or expired in an outage): the next
	 * keepalive notices, a new lease is granted, the value put again. */
	f.revoked = 100;
	w.lease = 101;
	wait_published(base, &w, 5);
	assert_int_equal(f.grants, 2);
	assert_int_equal(etcd_pub_lease(e), 101);

	/* A put on a lease etcd no longer knows is redone on a new one. */
	f.revoked = 101;
	w.value = "{\"state\":\"up\"}";
	w.lease = 102;
	etcd_pub_set(e, w.value);
	wait_published(base, &w, 5);

	/* etcd failing: unhealthy, the error in words, backoff, then
	 * recovery without help. */
	f.fail = 1;
	puts = f.puts;
	etcd_pub_set(e, "{\"state\":\"degraded\"}");
	for (end = now_s() + 1.2; now_s() < end; )
		event_base_loop(base, EVLOOP_ONCE);
	assert_false(etcd_pub_healthy(e));
	assert_non_null(etcd_pub_last_error(e));
	assert_non_null(strstr(etcd_pub_last_error(e), "HTTP 503"));
	/* 0.5 s then 1 s of backoff: a handful of tries, not a flood. */
	assert_true(f.puts - puts + f.keepalives < 40);
	f.fail = 0;
	w.value = "{\"state\":\"degraded\"}";
	w.lease = 0;
	wait_published(base, &w, 10);
	assert_null(etcd_pub_last_error(e));

	etcd_pub_free(e);
	etcd_pub_free(NULL);
	evhttp_free(f.http);
	event_base_free(base);
}

/*
 * etcd accepts and answers nothing (stopped): each request ends at its
 * deadline (TTL/3, 1 s here) with the error said, and publishing resumes
 * on its own once etcd answers again.
 */
static void
test_etcd_hangs(void **state)
{
	struct event_base	*base = event_base_new();
	struct fake_etcd	 f;
	struct etcd_pub		*e;
	struct wait_healthy	 w;
	char			 ep[64];
	double			 end;

	fake_etcd_start(base, &f);
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%u", (unsigned)f.port);
	e = etcd_pub_new(base, ep, "/k", 3);
	assert_non_null(e);
	w.e = e;
	w.f = &f;
	w.value = "{\"state\":\"up\"}";
	w.lease = 0;
	etcd_pub_set(e, w.value);
	wait_published(base, &w, 5);

	f.hang = 1;
	etcd_pub_set(e, "{\"state\":\"down\"}");
	for (end = now_s() + 10; now_s() < end &&
	    etcd_pub_last_error(e) == NULL; )
		event_base_loop(base, EVLOOP_ONCE);
	assert_true(f.hung >= 1);
	assert_false(etcd_pub_healthy(e));
	assert_non_null(etcd_pub_last_error(e));
	assert_non_null(strstr(etcd_pub_last_error(e), "no answer within 1.0 s"));

	f.hang = 0;
	w.value = "{\"state\":\"down\"}";
	wait_published(base, &w, 10);
	assert_null(etcd_pub_last_error(e));

	/*
	 * A hang with nothing new to put: only keepalives go unanswered.
	 * Once etcd answers them again the key is there all along, and
	 * publishing is healthy again without a put.
	 */
	f.hang = 1;
	for (end = now_s() + 10; now_s() < end &&
	    etcd_pub_last_error(e) == NULL; )
		event_base_loop(base, EVLOOP_ONCE);
	assert_non_null(etcd_pub_last_error(e));
	assert_non_null(strstr(etcd_pub_last_error(e), "keepalive"));
	f.hang = 0;
	for (end = now_s() + 10; now_s() < end &&
	    !etcd_pub_healthy(e); )
		event_base_loop(base, EVLOOP_ONCE);
	assert_true(etcd_pub_healthy(e));
	assert_null(etcd_pub_last_error(e));
	etcd_pub_free(e);
	evhttp_free(f.http);
	event_base_free(base);
}

/* A server that sends its answer a byte at a time, never finishing. */
struct trickler {
	int		 lfd, cfd;
	struct event	*ev_accept, *ev_tick;
	unsigned	 sent;
};

static void
trickle_tick(evutil_socket_t fd, short what, void *arg)
{
	struct trickler	*t = arg;
	static const char head[] = "HTTP/1.1 200 OK\r\nX-Slow: ";

	if (t->cfd == -1)
		return;
	if (write(t->cfd, t->sent < sizeof(head) - 1 ? &head[t->sent] : "a",
	    1) == 1)
		t->sent++;
}

static void
trickle_accept(evutil_socket_t fd, short what, void *arg)
{
	struct trickler	*t = arg;
	struct timeval	 tv = { 0, 100 * 1000 };

	if (t->cfd != -1)
		close(t->cfd);
	t->cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
	t->sent = 0;
	evtimer_add(t->ev_tick, &tv);
}

/*
 * A byte every 100 ms keeps a connection from ever being idle for long,
 * so only a deadline on the whole request ends it.
 */
static void
test_etcd_trickle(void **state)
{
	struct event_base	*base = event_base_new();
	struct trickler		 t = { -1, -1, NULL, NULL, 0 };
	struct sockaddr_in	 sin;
	socklen_t		 slen = sizeof(sin);
	struct etcd_pub		*e;
	char			 ep[64];
	double			 end;

	t.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(t.lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(t.lfd, 4), 0);
	assert_int_equal(getsockname(t.lfd, (struct sockaddr *)&sin, &slen),
	    0);
	t.ev_accept = event_new(base, t.lfd, EV_READ | EV_PERSIST,
	    trickle_accept, &t);
	t.ev_tick = event_new(base, -1, EV_PERSIST, trickle_tick, &t);
	event_add(t.ev_accept, NULL);
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%u",
	    (unsigned)ntohs(sin.sin_port));

	e = etcd_pub_new(base, ep, "/k", 3);
	assert_non_null(e);
	etcd_pub_set(e, "{}");
	for (end = now_s() + 10; now_s() < end &&
	    etcd_pub_last_error(e) == NULL; )
		event_base_loop(base, EVLOOP_ONCE);
	assert_non_null(etcd_pub_last_error(e));
	assert_non_null(strstr(etcd_pub_last_error(e),
	    "lease grant: no answer within 1.0 s"));
	assert_true(t.sent >= 3);
	assert_false(etcd_pub_healthy(e));
	etcd_pub_free(e);
	event_free(t.ev_accept);
	event_free(t.ev_tick);
	if (t.cfd != -1)
		close(t.cfd);
	close(t.lfd);
	event_base_free(base);
}

static void
test_etcd_unreachable(void **state)
{
	struct event_base	*base = event_base_new();
	struct etcd_pub		*e;
	struct sockaddr_in	 sin;
	socklen_t		 slen = sizeof(sin);
	char			 ep[64];
	double			 end;
	int			 fd;

	/* A port nobody listens on: bind one, note it, close it. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &slen), 0);
	close(fd);
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%u",
	    (unsigned)ntohs(sin.sin_port));

	e = etcd_pub_new(base, ep, "/k", 2);
	assert_non_null(e);
	etcd_pub_set(e, "{}");
	for (end = now_s() + 1; now_s() < end; )
		event_base_loop(base, EVLOOP_ONCE);
	assert_false(etcd_pub_healthy(e));
	assert_non_null(etcd_pub_last_error(e));
	assert_non_null(strstr(etcd_pub_last_error(e), "no response"));
	/* Freed with a retry pending or a request in flight. */
	etcd_pub_free(e);
	event_base_free(base);
}

/*
 * The point of it all: with a hook hung, every other feed still works at
 * once, and the loop (where the probes and the state machine run) keeps
 * its timers on time.
 */
static void
test_hung_hook_other_feeds(void **state)
{
	struct event_base	*base = event_base_new();
	struct hooks		*h;
	struct hooks_stats	 st;
	struct http_server	*srv;
	struct fake_etcd	 f;
	struct etcd_pub		*e;
	struct wait_healthy	 w;
	struct response		 r;
	struct ticker		 t = { NULL, 0, 0, 0 };
	struct timeval		 tv = { 0, 20000 };
	char			*dir = make_hook_dir("hooks-others");
	char			*p, *state_path, ep[64], err[256];
	double			 end;

	assert_true(asprintf(&p, "%s/hang", dir) != -1);
	write_file(p, "#!/bin/sh\nexec sleep 60\n", 0700);
	free(p);
	state_path = tmp_path("others-linkstate.json");
	t.ev = event_new(base, -1, EV_PERSIST, tick_cb, &t);
	event_add(t.ev, &tv);
	srv = http_server_start(base, "127.0.0.1:0", want_now,
	    (void *)"site-a", err, sizeof(err));
	want_srv = srv;
	assert_non_null(srv);
	fake_etcd_start(base, &f);
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%u", (unsigned)f.port);
	e = etcd_pub_new(base, ep, "/k", 10);
	assert_non_null(e);
	h = hooks_new(base, dir, 3600);

	/* A transition, published the way the daemon does it. */
	transition(h, LINK_UP, LINK_DOWN, REASON_UNDERLAY_UNREACHABLE);
	assert_int_equal(statefile_write(state_path, &hook_lv), 0);
	etcd_pub_set(e, "{\"state\":\"down\"}");

	w.e = e;
	w.f = &f;
	w.value = "{\"state\":\"down\"}";
	w.lease = 0;
	wait_published(base, &w, 5);
	fetch(base, http_server_port(srv), "GET /metrics HTTP/1.0\r\n\r\n",
	    &r);
	assert_int_equal(r.code, 200);
	response_free(&r);
	/* Half a second more of the loop with the hook still hanging. */
	for (end = now_s() + 0.5; now_s() < end; )
		event_base_loop(base, EVLOOP_ONCE);
	hooks_get_stats(h, &st);
	assert_int_equal(st.running, 1);	/* still hung throughout */
	assert_true(t.ticks >= 5);
	assert_true(t.max_gap < 0.9);

	hooks_free(h);
	etcd_pub_free(e);
	evhttp_free(f.http);
	http_server_free(srv);
	event_free(t.ev);
	free(state_path);
	free(dir);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_metrics_lines),
		cmocka_unit_test(test_metrics_states_and_escaping),
		cmocka_unit_test(test_http_listen_parse),
		cmocka_unit_test(test_http_server),
		cmocka_unit_test(test_http_ipv6),
		cmocka_unit_test(test_http_limits),
		cmocka_unit_test(test_statefile),
		cmocka_unit_test(test_hooks_environment),
		cmocka_unit_test(test_hooks_eligibility),
		cmocka_unit_test(test_hooks_hung_hook),
		cmocka_unit_test(test_hooks_coalesce),
		cmocka_unit_test(test_hooks_free_kills),
		cmocka_unit_test(test_etcd_endpoint_parse),
		cmocka_unit_test(test_etcd_grant_parse),
		cmocka_unit_test(test_etcd_keepalive_parse),
		cmocka_unit_test(test_etcd_put_parse),
		cmocka_unit_test(test_etcd_error_parse),
		cmocka_unit_test(test_etcd_requests),
		cmocka_unit_test(test_status_document),
		cmocka_unit_test(test_link_document),
		cmocka_unit_test(test_etcd_publisher),
		cmocka_unit_test(test_etcd_unreachable),
		cmocka_unit_test(test_etcd_hangs),
		cmocka_unit_test(test_etcd_trickle),
		cmocka_unit_test(test_hung_hook_other_feeds),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
