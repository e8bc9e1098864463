/*
 * The parent <-> network process messages: frames split at every byte
 * boundary, every body type round-tripped, and every way a body can be
 * wrong refused; then the channel itself over a real socketpair on an
 * event loop.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "grgw.h"
#include "chan.h"
#include "linkstate.h"
#include "pmsg.h"
#include "config_text.h"

static const char conf_text[] =
	"[site]\n"
	"name = site-a\n"
	"wan_interface = wan0\n"
	"wan_address = 192.0.2.10\n"
	"lan_interface = lan0\n"
	"lan_address = 198.18.1.1\n"
	"lan_address = 2001:db8:a::1\n"
	"prefix = 198.18.1.0/24\n"
	"prefix = 2001:db8:a::/64\n"
	"[peer]\n"
	"name = site-b\n"
	"address = 198.51.100.10\n"
	"lan_address = 198.18.2.1\n"
	"prefix = 198.18.2.0/24\n"
	"probes = icmp\n"
	"[auth]\n"
	"psk_file = /etc/grgw/psk\n"
	"[probe]\n"
	"interval_ms = 40\n"
	"multiplier = 4\n"
	"degraded_loss = 2.5\n"
	"[http]\n"
	"listen = [::1]:9421\n"
	"[etcd]\n"
	"endpoint = http://192.0.2.5:4000\n"
	"[daemon]\n"
	"log_level = debug\n";

static void
sample_config(struct grgw_config *cfg)
{
	struct config_parser	*p;
	int			 rc;

	p = config_text_parse("grgw.conf", conf_text, cfg, &rc);
	if (rc != 0)
		dump_errors(p);
	assert_int_equal(rc, 0);
	config_parse_free(p);
}

/* ---- frames ---------------------------------------------------------------- */

static size_t
frame(uint8_t *buf, enum pmsg_type t, const void *body, size_t len)
{
	assert_int_equal(pmsg_header(buf, t, len), 0);
	if (len > 0)
		memcpy(buf + PMSG_HDR_LEN, body, len);
	return PMSG_HDR_LEN + len;
}

static void
test_frame_split(void **state)
{
	uint8_t		 buf[64], *copy;
	struct pmsg	 m;
	size_t		 len, cut;
	int		 n;

	len = frame(buf, PMSG_PUBLISH, "{\"state\":\"up\"}", 14);
	for (cut = 0; cut <= len; cut++) {
		/* An exact-length copy: a read past cut is caught by ASan. */
		copy = malloc(cut > 0 ? cut : 1);
		assert_non_null(copy);
		memcpy(copy, buf, cut);
		n = pmsg_frame(copy, cut, &m);
		if (cut < len)
			assert_int_equal(n, 0);
		else {
			assert_int_equal(n, (int)len);
			assert_int_equal(m.type, PMSG_PUBLISH);
			assert_int_equal(m.len, 14);
			assert_memory_equal(m.body, "{\"state\":\"up\"}", 14);
		}
		if (cut >= PMSG_HDR_LEN)
			assert_int_equal(m.len, 14);	/* known early */
		free(copy);
	}
	/* Two frames back to back: the first is taken alone. */
	len = frame(buf, PMSG_START, "\1\0", 2);
	len += frame(buf + len, PMSG_KEY, "k", 1);
	assert_int_equal(pmsg_frame(buf, len, &m), PMSG_HDR_LEN + 2);
	assert_int_equal(m.type, PMSG_START);
	/* An empty body is a whole frame at once. */
	len = frame(buf, PMSG_PUBLISH, NULL, 0);
	assert_int_equal(pmsg_frame(buf, len, &m), PMSG_HDR_LEN);
	assert_int_equal(m.len, 0);
}

static void
test_frame_refused(void **state)
{
	uint8_t		 buf[PMSG_HDR_LEN];
	struct pmsg	 m;

	assert_int_equal(pmsg_header(buf, PMSG_DOC, 5), 0);
	buf[0] ^= 1;					/* magic */
	assert_int_equal(pmsg_frame(buf, sizeof(buf), &m), -1);
	assert_int_equal(pmsg_frame(buf, 2, &m), -1);	/* seen early */
	assert_int_equal(pmsg_header(buf, PMSG_DOC, 5), 0);
	buf[2] = 0;					/* type */
	assert_int_equal(pmsg_frame(buf, sizeof(buf), &m), -1);
	buf[2] = PMSG_TUNNEL_NEW + 1;
	assert_int_equal(pmsg_frame(buf, sizeof(buf), &m), -1);
	buf[2] = PMSG_ROLE + 1;
	assert_int_equal(pmsg_frame(buf, sizeof(buf), &m), -1);
	assert_int_equal(pmsg_header(buf, PMSG_DOC, 5), 0);
	buf[3] = 1;					/* reserved */
	assert_int_equal(pmsg_frame(buf, sizeof(buf), &m), -1);
	assert_int_equal(pmsg_header(buf, PMSG_DOC, PMSG_BODY_MAX), 0);
	assert_int_equal(pmsg_frame(buf, sizeof(buf), &m), 0);
	buf[7]++;					/* one byte too long */
	assert_int_equal(pmsg_frame(buf, sizeof(buf), &m), -1);
	assert_int_equal(pmsg_header(buf, PMSG_DOC, PMSG_BODY_MAX + 1), -1);
	assert_int_equal(pmsg_header(buf, (enum pmsg_type)99, 1), -1);
}

/* ---- PMSG_CONF --------------------------------------------------------------- */

static void
test_conf_round_trip(void **state)
{
	struct grgw_config	 cfg, out;
	uint8_t			 buf[PMSG_CONF_MAX], again[PMSG_CONF_MAX];
	int			 len, len2;

	sample_config(&cfg);
	len = pmsg_conf_encode(&cfg, buf, sizeof(buf));
	assert_true(len > 0);
	assert_int_equal(pmsg_conf_decode(buf, (size_t)len, &out), 0);
	assert_string_equal(out.site.name, "site-a");
	assert_string_equal(out.peer.name, "site-b");
	assert_true(addr_equal(&out.site.wan_address, &cfg.site.wan_address));
	assert_true(addr_equal(&out.peer.wan_address, &cfg.peer.wan_address));
	assert_int_equal(out.site.n_lan_addresses, 2);
	assert_int_equal(out.site.lan_addresses[1].family, AF_INET6);
	assert_true(addr_equal(&out.site.lan_addresses[1],
	    &cfg.site.lan_addresses[1]));
	assert_int_equal(out.peer.n_lan_addresses, 1);
	assert_int_equal(out.probe.interval_ms, 40);
	assert_int_equal(out.probe.multiplier, 4);
	assert_int_equal(out.probe.recover, cfg.probe.recover);
	assert_int_equal(out.probe.port, 4211);
	assert_true(out.probe.degraded_loss == 0.025);
	assert_string_equal(out.feeds.http_listen, "[::1]:9421");
	assert_string_equal(out.feeds.etcd_endpoint, "http://192.0.2.5:4000");
	assert_string_equal(out.feeds.etcd_key, cfg.feeds.etcd_key);
	assert_int_equal(out.feeds.etcd_lease_ttl, cfg.feeds.etcd_lease_ttl);
	assert_int_equal(out.log_level, LOG_LVL_DEBUG);
	assert_int_equal(out.probe.method, GRGW_PROBES_ICMP);
	/* Nothing else crosses: no file, no interface, no prefix. */
	assert_string_equal(out.psk_file, "");
	assert_string_equal(out.site.wan_interface, "");
	assert_int_equal(out.site.n_prefixes, 0);
	assert_string_equal(out.user, "");
	/* Encoding what was decoded gives the same bytes. */
	len2 = pmsg_conf_encode(&out, again, sizeof(again));
	assert_int_equal(len2, len);
	assert_memory_equal(again, buf, (size_t)len);
	/* Too small a buffer is an error, not a cut message. */
	assert_int_equal(pmsg_conf_encode(&cfg, buf, 10), -1);
}

static void
test_conf_refused(void **state)
{
	struct grgw_config	 cfg, out;
	uint8_t			 buf[PMSG_CONF_MAX], *copy;
	size_t			 cut;
	int			 len;

	sample_config(&cfg);
	len = pmsg_conf_encode(&cfg, buf, sizeof(buf));
	assert_true(len > 0);
	/* Every truncation, and one byte too many. */
	for (cut = 0; cut < (size_t)len; cut++) {
		copy = malloc(cut > 0 ? cut : 1);
		assert_non_null(copy);
		memcpy(copy, buf, cut);
		assert_int_equal(pmsg_conf_decode(copy, cut, &out), -1);
		assert_string_equal(out.site.name, "");	/* zeroed */
		free(copy);
	}
	buf[len] = 0;
	assert_int_equal(pmsg_conf_decode(buf, (size_t)len + 1, &out), -1);

	/* Out of the parser's ranges. */
	cfg.probe.interval_ms = 0;
	len = pmsg_conf_encode(&cfg, buf, sizeof(buf));
	assert_int_equal(pmsg_conf_decode(buf, (size_t)len, &out), -1);
	sample_config(&cfg);
	cfg.probe.multiplier = 1;
	len = pmsg_conf_encode(&cfg, buf, sizeof(buf));
	assert_int_equal(pmsg_conf_decode(buf, (size_t)len, &out), -1);
	sample_config(&cfg);
	cfg.probe.degraded_loss = NAN;
	len = pmsg_conf_encode(&cfg, buf, sizeof(buf));
	assert_int_equal(pmsg_conf_decode(buf, (size_t)len, &out), -1);
	sample_config(&cfg);
	cfg.log_level = (enum log_level)7;
	len = pmsg_conf_encode(&cfg, buf, sizeof(buf));
	assert_int_equal(pmsg_conf_decode(buf, (size_t)len, &out), -1);
	sample_config(&cfg);
	cfg.probe.method = (enum grgw_probes)3;
	len = pmsg_conf_encode(&cfg, buf, sizeof(buf));
	assert_int_equal(pmsg_conf_decode(buf, (size_t)len, &out), -1);
	sample_config(&cfg);
	cfg.site.name[0] = '\0';
	len = pmsg_conf_encode(&cfg, buf, sizeof(buf));
	assert_int_equal(pmsg_conf_decode(buf, (size_t)len, &out), -1);

	/* A name with a NUL inside, an address of no family, a count
	 * beyond the arrays: patched into a good encoding. */
	sample_config(&cfg);
	len = pmsg_conf_encode(&cfg, buf, sizeof(buf));
	buf[2 + 2] = '\0';			/* "si\0e-a" */
	assert_int_equal(pmsg_conf_decode(buf, (size_t)len, &out), -1);
	len = pmsg_conf_encode(&cfg, buf, sizeof(buf));
	buf[2 + 6 + 2 + 6] = 5;			/* site WAN family */
	assert_int_equal(pmsg_conf_decode(buf, (size_t)len, &out), -1);
	len = pmsg_conf_encode(&cfg, buf, sizeof(buf));
	buf[2 + 6 + 2 + 6 + 17 + 17] = GRGW_MAX_LAN_ADDRS + 1;
	assert_int_equal(pmsg_conf_decode(buf, (size_t)len, &out), -1);
	/* A string longer than the field it fills. */
	len = pmsg_conf_encode(&cfg, buf, sizeof(buf));
	buf[0] = 0;
	buf[1] = GRGW_NAME_MAX + 1;
	assert_int_equal(pmsg_conf_decode(buf, (size_t)len, &out), -1);
}

/* [pair] crosses whole but for its key file, and is checked. */
static void
test_conf_pair(void **state)
{
	struct grgw_config	 cfg, out;
	uint8_t			 buf[PMSG_CONF_MAX];
	int			 len;

	sample_config(&cfg);
	len = pmsg_conf_encode(&cfg, buf, sizeof(buf));
	assert_int_equal(pmsg_conf_decode(buf, (size_t)len, &out), 0);
	assert_int_equal(out.pair.enabled, 0);
	assert_int_equal(out.pair.partner.family, 0);

	cfg.pair.enabled = 1;
	assert_int_equal(addr_parse("198.18.1.3", &cfg.pair.partner), 0);
	assert_int_equal(addr_parse("198.18.1.2", &cfg.pair.address), 0);
	cfg.pair.priority = 200;
	cfg.pair.port = 4212;
	cfg.pair.interval_ms = 20;
	cfg.pair.dead_ms = 100;
	cfg.pair.guard_ms = 60;
	cfg.pair.margin_ms = 33;
	cfg.pair.handover_wait_ms = 9000;
	snprintf(cfg.pair.key_file, sizeof(cfg.pair.key_file), "/etc/k");
	snprintf(cfg.pair.etcd_key, sizeof(cfg.pair.etcd_key), "/grgw/a/p");
	len = pmsg_conf_encode(&cfg, buf, sizeof(buf));
	assert_true(len > 0);
	assert_int_equal(pmsg_conf_decode(buf, (size_t)len, &out), 0);
	assert_int_equal(out.pair.enabled, 1);
	assert_true(addr_equal(&out.pair.partner, &cfg.pair.partner));
	assert_true(addr_equal(&out.pair.address, &cfg.pair.address));
	assert_int_equal(out.pair.priority, 200);
	assert_int_equal(out.pair.port, 4212);
	assert_int_equal(out.pair.interval_ms, 20);
	assert_int_equal(out.pair.dead_ms, 100);
	assert_int_equal(out.pair.guard_ms, 60);
	assert_int_equal(out.pair.margin_ms, 33);
	assert_int_equal(out.pair.handover_wait_ms, 9000);
	assert_string_equal(out.pair.etcd_key, "/grgw/a/p");
	assert_string_equal(out.pair.key_file, "");

	/* Out of the parser's ranges, or an unset address. */
	cfg.pair.dead_ms = 59;
	len = pmsg_conf_encode(&cfg, buf, sizeof(buf));
	assert_int_equal(pmsg_conf_decode(buf, (size_t)len, &out), -1);
	cfg.pair.dead_ms = 100;
	cfg.pair.guard_ms = 39;
	len = pmsg_conf_encode(&cfg, buf, sizeof(buf));
	assert_int_equal(pmsg_conf_decode(buf, (size_t)len, &out), -1);
	cfg.pair.guard_ms = 60;
	cfg.pair.margin_ms = 41;		/* > guard_ms - interval_ms */
	len = pmsg_conf_encode(&cfg, buf, sizeof(buf));
	assert_int_equal(pmsg_conf_decode(buf, (size_t)len, &out), -1);
	cfg.pair.margin_ms = 0;
	len = pmsg_conf_encode(&cfg, buf, sizeof(buf));
	assert_int_equal(pmsg_conf_decode(buf, (size_t)len, &out), -1);
	cfg.pair.margin_ms = 40;
	cfg.pair.handover_wait_ms = 60001;
	len = pmsg_conf_encode(&cfg, buf, sizeof(buf));
	assert_int_equal(pmsg_conf_decode(buf, (size_t)len, &out), -1);
	cfg.pair.handover_wait_ms = 0;
	cfg.pair.priority = 0;
	len = pmsg_conf_encode(&cfg, buf, sizeof(buf));
	assert_int_equal(pmsg_conf_decode(buf, (size_t)len, &out), -1);
	cfg.pair.priority = 200;
	memset(&cfg.pair.partner, 0, sizeof(cfg.pair.partner));
	len = pmsg_conf_encode(&cfg, buf, sizeof(buf));
	assert_int_equal(pmsg_conf_decode(buf, (size_t)len, &out), -1);
	assert_int_equal(addr_parse("198.18.1.3", &cfg.pair.partner), 0);
	cfg.feeds.etcd_endpoint[0] = '\0';
	len = pmsg_conf_encode(&cfg, buf, sizeof(buf));
	assert_int_equal(pmsg_conf_decode(buf, (size_t)len, &out), -1);
}

/* ---- the other bodies ------------------------------------------------------- */

static void
sample_stats(struct path_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->up = 1;
	st->ever_up = 1;
	st->rtt_last_ms = 0.512;
	st->rtt_smoothed_ms = 0.6;
	st->rtt_p50_ms = 0.5;
	st->rtt_p99_ms = 1.25;
	st->jitter_ms = 0.01;
	st->loss_ratio = 0.125;
	st->loss_sample = 200;
	st->sent = 1000;
	st->received = 990;
	st->answered = 1001;
	st->rejected_auth = 3;
	st->rejected_replay = 4;
	st->rejected_malformed = 5;
	st->reordered = 6;
	st->transitions = UINT64_MAX;
	st->rejected_skew = 9;
	st->skew_recent = 1;
	st->clock_skew_ms = -45123.5;	/* the peer is behind: negative */
}

static void
test_path(void **state)
{
	struct path_stats	 st, out;
	uint8_t			 body[PMSG_PATH_LEN], bad[PMSG_PATH_LEN];
	enum probe_path		 path;
	int			 changed;
	size_t			 cut;

	sample_stats(&st);
	pmsg_path_encode(PROBE_UNDERLAY, 1, &st, body);
	assert_int_equal(pmsg_path_decode(body, sizeof(body), &path,
	    &changed, &out), 0);
	assert_int_equal(path, PROBE_UNDERLAY);
	assert_int_equal(changed, 1);
	assert_memory_equal(&out, &st, sizeof(st));

	/* Before any answer the figures are NaN, and that crosses. */
	st.rtt_last_ms = st.rtt_p99_ms = NAN;
	pmsg_path_encode(PROBE_TUNNEL, 0, &st, body);
	assert_int_equal(pmsg_path_decode(body, sizeof(body), &path,
	    &changed, &out), 0);
	assert_true(isnan(out.rtt_last_ms) && isnan(out.rtt_p99_ms));
	assert_int_equal(changed, 0);

	for (cut = 0; cut < sizeof(body); cut++)
		assert_int_equal(pmsg_path_decode(body, cut, &path, &changed,
		    &out), -1);
	memcpy(bad, body, sizeof(bad));
	bad[0] = PROBE_NPATHS;				/* no such path */
	assert_int_equal(pmsg_path_decode(bad, sizeof(bad), &path, &changed,
	    &out), -1);
	memcpy(bad, body, sizeof(bad));
	bad[2] = 2;					/* up is 0 or 1 */
	assert_int_equal(pmsg_path_decode(bad, sizeof(bad), &path, &changed,
	    &out), -1);
	sample_stats(&st);
	st.jitter_ms = -1;
	pmsg_path_encode(PROBE_TUNNEL, 0, &st, bad);
	assert_int_equal(pmsg_path_decode(bad, sizeof(bad), &path, &changed,
	    &out), -1);
	sample_stats(&st);
	st.loss_ratio = 1.5;
	pmsg_path_encode(PROBE_TUNNEL, 0, &st, bad);
	assert_int_equal(pmsg_path_decode(bad, sizeof(bad), &path, &changed,
	    &out), -1);
	sample_stats(&st);
	st.loss_sample = PROBE_RTT_WINDOW + 1;		/* more than the window */
	pmsg_path_encode(PROBE_TUNNEL, 0, &st, bad);
	assert_int_equal(pmsg_path_decode(bad, sizeof(bad), &path, &changed,
	    &out), -1);
	sample_stats(&st);
	st.clock_skew_ms = -INFINITY;
	pmsg_path_encode(PROBE_TUNNEL, 0, &st, bad);
	assert_int_equal(pmsg_path_decode(bad, sizeof(bad), &path, &changed,
	    &out), -1);
	sample_stats(&st);
	st.rtt_p50_ms = INFINITY;
	pmsg_path_encode(PROBE_TUNNEL, 0, &st, bad);
	assert_int_equal(pmsg_path_decode(bad, sizeof(bad), &path, &changed,
	    &out), -1);
}

static void
test_small_bodies(void **state)
{
	uint8_t		 want[PMSG_WANT_LEN], doc[PMSG_DOC_HDR_LEN + 3];
	uint8_t		 ready[1 + PMSG_TEXT_MAX + 8], start[2];
	const uint8_t	*text;
	char		 why[PMSG_TEXT_MAX + 1], big[PMSG_TEXT_MAX + 40];
	enum pmsg_doc	 d;
	uint32_t	 id;
	size_t		 tlen;
	int		 ok, up[PROBE_NPATHS], len;

	pmsg_want_encode(0xdeadbeef, PMSG_DOC_METRICS, want);
	assert_int_equal(pmsg_want_decode(want, sizeof(want), &id, &d), 0);
	assert_int_equal(id, 0xdeadbeef);
	assert_int_equal(d, PMSG_DOC_METRICS);
	want[4] = 3;
	assert_int_equal(pmsg_want_decode(want, sizeof(want), &id, &d), -1);
	assert_int_equal(pmsg_want_decode(want, 4, &id, &d), -1);

	pmsg_doc_header(7, doc);
	memcpy(doc + PMSG_DOC_HDR_LEN, "abc", 3);
	assert_int_equal(pmsg_doc_decode(doc, sizeof(doc), &id, &text, &tlen),
	    0);
	assert_int_equal(id, 7);
	assert_int_equal(tlen, 3);
	assert_memory_equal(text, "abc", 3);
	assert_int_equal(pmsg_doc_decode(doc, 3, &id, &text, &tlen), -1);

	len = pmsg_ready_encode(0, "bind 127.0.0.1:9421: in use", ready,
	    sizeof(ready));
	assert_int_equal(pmsg_ready_decode(ready, (size_t)len, &ok, why,
	    sizeof(why)), 0);
	assert_int_equal(ok, 0);
	assert_string_equal(why, "bind 127.0.0.1:9421: in use");
	len = pmsg_ready_encode(1, NULL, ready, sizeof(ready));
	assert_int_equal(len, 1);
	assert_int_equal(pmsg_ready_decode(ready, 1, &ok, why, sizeof(why)),
	    0);
	assert_int_equal(ok, 1);
	assert_string_equal(why, "");
	/* A long reason is cut when sent, and refused when too long. */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	len = pmsg_ready_encode(0, big, ready, sizeof(ready));
	assert_int_equal(len, 1 + PMSG_TEXT_MAX);
	ready[0] = 2;
	assert_int_equal(pmsg_ready_decode(ready, (size_t)len, &ok, why,
	    sizeof(why)), -1);

	len = pmsg_etcd_encode(0, "put: no answer within 1.0 s", ready,
	    sizeof(ready));
	assert_int_equal(pmsg_etcd_decode(ready, (size_t)len, &ok, why,
	    sizeof(why)), 0);
	assert_int_equal(ok, 0);
	assert_string_equal(why, "put: no answer within 1.0 s");
	len = pmsg_etcd_encode(1, "", ready, sizeof(ready));
	assert_int_equal(pmsg_etcd_decode(ready, (size_t)len, &ok, why,
	    sizeof(why)), 0);
	assert_int_equal(ok, 1);
	assert_string_equal(why, "");

	start[0] = 1;
	start[1] = 0;
	assert_int_equal(pmsg_start_decode(start, 2, up), 0);
	assert_int_equal(up[PROBE_TUNNEL], 1);
	assert_int_equal(up[PROBE_UNDERLAY], 0);
	start[1] = 9;
	assert_int_equal(pmsg_start_decode(start, 2, up), -1);
	assert_int_equal(pmsg_start_decode(start, 1, up), -1);

	assert_int_equal(pmsg_text_decode((const uint8_t *)"a\0b", 3, why,
	    sizeof(why)), -1);
	assert_int_equal(pmsg_text_decode((const uint8_t *)"abc", 3, why, 3),
	    -1);
	assert_int_equal(pmsg_text_decode((const uint8_t *)"abc", 3, why, 4),
	    0);
	assert_string_equal(why, "abc");
}

/* PMSG_KEY: one key, or two during a rotation; no other length. */
static void
test_key(void **state)
{
	uint8_t		 body[PMSG_KEYS_MAX + 1];
	const uint8_t	*key, *next;
	size_t		 len;

	(void)state;
	for (len = 0; len < sizeof(body); len++)
		body[len] = (uint8_t)len;
	assert_int_equal(pmsg_key_decode(body, PMSG_KEY_LEN, &key, &next), 0);
	assert_ptr_equal(key, body);
	assert_null(next);
	assert_int_equal(pmsg_key_decode(body, PMSG_KEYS_MAX, &key, &next), 0);
	assert_ptr_equal(key, body);
	assert_ptr_equal(next, body + PMSG_KEY_LEN);
	for (len = 0; len < sizeof(body); len++) {
		if (len == PMSG_KEY_LEN || len == PMSG_KEYS_MAX)
			continue;
		assert_int_equal(pmsg_key_decode(body, len, &key, &next), -1);
		assert_null(key);
		assert_null(next);
	}
	assert_int_equal(pmsg_key_decode(NULL, PMSG_KEY_LEN, &key, &next), -1);
}

/* ---- the channel ------------------------------------------------------------- */

struct chan_log {
	struct event_base	*base;
	struct chan		*self;
	int			 msgs;
	size_t			 bytes;
	int			 closed;
	char			 why[64];
	int			 free_on_msg;
	uint8_t			 last_type;
};

static void
log_msg(const struct pmsg *m, void *arg)
{
	struct chan_log	*l = arg;
	size_t		 i;

	l->msgs++;
	l->bytes += m->len;
	l->last_type = m->type;
	for (i = 0; m->type == PMSG_DOC && i < m->len; i++)
		assert_int_equal(m->body[i], (uint8_t)i);
	if (l->free_on_msg) {
		chan_free(l->self);
		l->self = NULL;
	}
	event_base_loopbreak(l->base);
}

static void
log_close(const char *why, void *arg)
{
	struct chan_log	*l = arg;

	l->closed = 1;
	snprintf(l->why, sizeof(l->why), "%s", why);
	event_base_loopbreak(l->base);
}

static void
run_until(struct event_base *base, int *flag, int want)
{
	struct timeval	 tv = { 5, 0 };
	int		 rounds = 0;

	while (*flag < want && rounds++ < 1000) {
		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
	assert_true(*flag >= want);
}

/* PMSG_PAIR_CMD, PMSG_PAIR_RESUME and PMSG_ROLE: round trips, and what is refused. */
static void
test_pair_bodies(void **state)
{
	struct pmsg_role	 ro, out;
	enum pmsg_pair_cmd	 cmd;
	uint64_t		 epoch, until;
	uint8_t			 buf[64 + PMSG_TEXT_MAX], b;
	int			 len;
	size_t			 cut;

	for (b = 0; b < 10; b++) {
		if (b >= PMSG_PAIR_HANDOVER && b <= PMSG_PAIR_CLOSED) {
			assert_int_equal(pmsg_pair_cmd_decode(&b, 1, &cmd), 0);
			assert_int_equal(cmd, b);
		} else
			assert_int_equal(pmsg_pair_cmd_decode(&b, 1, &cmd),
			    -1);
	}
	b = PMSG_PAIR_HANDOVER;
	assert_int_equal(pmsg_pair_cmd_decode(&b, 0, &cmd), -1);
	assert_int_equal(pmsg_pair_cmd_decode(buf, 2, &cmd), -1);

	/* PMSG_PAIR_RESUME: both figures, both nonzero, nothing more. */
	pmsg_pair_resume_encode(0x0102030405060708ULL, 123456789, buf);
	assert_int_equal(pmsg_pair_resume_decode(buf, PMSG_PAIR_RESUME_LEN,
	    &epoch, &until), 0);
	assert_true(epoch == 0x0102030405060708ULL && until == 123456789);
	assert_int_equal(pmsg_pair_resume_decode(buf,
	    PMSG_PAIR_RESUME_LEN - 1, &epoch, &until), -1);
	assert_int_equal(pmsg_pair_resume_decode(buf,
	    PMSG_PAIR_RESUME_LEN + 1, &epoch, &until), -1);
	assert_true(epoch == 0 && until == 0);
	pmsg_pair_resume_encode(0, 123456789, buf);
	assert_int_equal(pmsg_pair_resume_decode(buf, PMSG_PAIR_RESUME_LEN,
	    &epoch, &until), -1);
	pmsg_pair_resume_encode(5, 0, buf);
	assert_int_equal(pmsg_pair_resume_decode(buf, PMSG_PAIR_RESUME_LEN,
	    &epoch, &until), -1);

	memset(&ro, 0, sizeof(ro));
	ro.role = 3;
	ro.partner_role = 2;
	ro.partner_seen = 1;
	ro.etcd_ok = 1;
	ro.paths_seen = 2;
	ro.prep = PMSG_PREP_ASKED | PMSG_PREP_PARTNER_READY;
	ro.epoch = 0x0102030405060708ULL;
	ro.hold_until_ms = 0x1112131415161718ULL;
	ro.partner_age_ms = UINT32_MAX;
	ro.takeovers = 7;
	snprintf(ro.reason, sizeof(ro.reason), "partner silent for 100 ms");
	len = pmsg_role_encode(&ro, buf, sizeof(buf));
	assert_true(len > 0);
	assert_int_equal(pmsg_role_decode(buf, (size_t)len, &out), 0);
	assert_memory_equal(&out, &ro, sizeof(ro));
	for (cut = 0; cut < 32; cut++)
		assert_int_equal(pmsg_role_decode(buf, cut, &out), -1);
	buf[0] = PMSG_ROLE_MAX_ROLE;
	assert_int_equal(pmsg_role_decode(buf, (size_t)len, &out), -1);
	buf[0] = 3;
	buf[len - 1] = '\0';			/* a NUL in the reason */
	assert_int_equal(pmsg_role_decode(buf, (size_t)len, &out), -1);
	buf[len - 1] = 's';
	buf[4] = 4;				/* a third path */
	assert_int_equal(pmsg_role_decode(buf, (size_t)len, &out), -1);
	buf[4] = 2;
	buf[5] = 4;				/* an unknown handover bit */
	assert_int_equal(pmsg_role_decode(buf, (size_t)len, &out), -1);
	buf[5] = PMSG_PREP_ASKED;
	assert_int_equal(pmsg_role_decode(buf, (size_t)len, &out), 0);
	assert_int_equal(out.prep, PMSG_PREP_ASKED);
	ro.prep = 4;
	assert_int_equal(pmsg_role_encode(&ro, buf, sizeof(buf)), -1);
	ro.prep = 0;
	ro.role = PMSG_ROLE_MAX_ROLE;
	assert_int_equal(pmsg_role_encode(&ro, buf, sizeof(buf)), -1);
	ro.role = 3;
	ro.paths_seen = 4;
	assert_int_equal(pmsg_role_encode(&ro, buf, sizeof(buf)), -1);
	ro.paths_seen = 3;
	assert_int_equal(pmsg_role_encode(&ro, buf, 10), -1);
}

static void
test_chan(void **state)
{
	struct event_base	*base = event_base_new();
	struct chan_log		 a, b;
	struct chan		*ca, *cb;
	uint8_t			*big, hdr[PMSG_HDR_LEN];
	size_t			 i, n = PMSG_BODY_MAX - 4;
	int			 sv[2];

	assert_non_null(base);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	a.base = b.base = base;
	ca = chan_new(base, sv[0], log_msg, log_close, &a);
	cb = chan_new(base, sv[1], log_msg, log_close, &b);
	assert_non_null(ca);
	assert_non_null(cb);
	a.self = ca;
	b.self = cb;

	/* The largest frame, in pieces as the socket takes them. */
	big = malloc(n + 4);
	assert_non_null(big);
	for (i = 0; i < n + 4; i++)
		big[i] = (uint8_t)i;
	assert_int_equal(chan_send(ca, PMSG_DOC, big, 4, big + 4, n), 0);
	run_until(base, &b.msgs, 1);
	assert_int_equal(b.bytes, n + 4);
	assert_int_equal(b.last_type, PMSG_DOC);
	/* Too long a body is refused before anything is sent. */
	assert_int_equal(chan_send(ca, PMSG_DOC, big, 4, big, n + 1), -1);
	free(big);

	/* A frame the other way, and the receiver frees its end inside the
	 * callback: the other side sees the end of the channel. */
	b.free_on_msg = 1;
	assert_int_equal(chan_send(ca, PMSG_START, NULL, 0, "\1", 1), 0);
	run_until(base, &b.msgs, 2);
	assert_null(b.self);
	run_until(base, &a.closed, 1);
	assert_string_equal(a.why, "end of file");
	assert_int_equal(chan_send(ca, PMSG_START, NULL, 0, "\1", 1), -1);
	chan_free(ca);

	/* Bytes that are not a frame close the channel. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	memset(&a, 0, sizeof(a));
	a.base = base;
	ca = chan_new(base, sv[0], log_msg, log_close, &a);
	assert_int_equal(pmsg_header(hdr, PMSG_KEY, 1), 0);
	hdr[3] = 0xff;
	assert_int_equal(write(sv[1], hdr, sizeof(hdr)), (ssize_t)sizeof(hdr));
	run_until(base, &a.closed, 1);
	assert_string_equal(a.why, "a malformed message");
	assert_int_equal(a.msgs, 0);
	chan_free(ca);
	close(sv[1]);
	chan_free(NULL);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_split),
		cmocka_unit_test(test_frame_refused),
		cmocka_unit_test(test_conf_round_trip),
		cmocka_unit_test(test_conf_refused),
		cmocka_unit_test(test_path),
		cmocka_unit_test(test_small_bodies),
		cmocka_unit_test(test_key),
		cmocka_unit_test(test_conf_pair),
		cmocka_unit_test(test_pair_bodies),
		cmocka_unit_test(test_chan),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
