/*
 * The parent <-> network process messages (see pmsg.h).  Pure: buffers
 * in, structs out.  Every read is checked against what is left.
 */
#include <sys/socket.h>

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "grgw.h"
#include "linkstate.h"
#include "pmsg.h"

#define PMSG_MAGIC	0x6777

/* ---- a writer and a reader over a byte buffer ------------------------------ */

struct wr {
	uint8_t		*p;
	size_t		 size, len;
	int		 overflow;
};

struct rd {
	const uint8_t	*p;
	size_t		 len, off;
	int		 bad;
};

static void
wr_bytes(struct wr *w, const void *data, size_t n)
{
	if (n == 0)
		return;
	if (w->overflow || n > w->size - w->len) {
		w->overflow = 1;
		return;
	}
	memcpy(w->p + w->len, data, n);
	w->len += n;
}

static void
wr_u8(struct wr *w, uint8_t v)
{
	wr_bytes(w, &v, 1);
}

static void
wr_u32(struct wr *w, uint32_t v)
{
	uint8_t	 b[4] = { v >> 24, v >> 16, v >> 8, v };

	wr_bytes(w, b, sizeof(b));
}

static void
wr_u64(struct wr *w, uint64_t v)
{
	uint8_t	 b[8];
	int	 i;

	for (i = 7; i >= 0; i--, v >>= 8)
		b[i] = (uint8_t)v;
	wr_bytes(w, b, sizeof(b));
}

static void
wr_double(struct wr *w, double d)
{
	uint64_t	 v;

	memcpy(&v, &d, sizeof(v));
	wr_u64(w, v);
}

/* A string of at most 65535 bytes: u16 length, bytes. */
static void
wr_str(struct wr *w, const char *s)
{
	size_t	 n = strlen(s);

	if (n > UINT16_MAX) {
		w->overflow = 1;
		return;
	}
	wr_u8(w, (uint8_t)(n >> 8));
	wr_u8(w, (uint8_t)n);
	wr_bytes(w, s, n);
}

static void
wr_addr(struct wr *w, const struct grgw_addr *a)
{
	wr_u8(w, a->family == AF_INET ? 4 : a->family == AF_INET6 ? 6 : 0);
	wr_bytes(w, a->addr, sizeof(a->addr));
}

static const uint8_t *
rd_bytes(struct rd *r, size_t n)
{
	const uint8_t	*p;

	if (r->bad || n > r->len - r->off) {
		r->bad = 1;
		return NULL;
	}
	p = r->p + r->off;
	r->off += n;
	return p;
}

static uint8_t
rd_u8(struct rd *r)
{
	const uint8_t	*p = rd_bytes(r, 1);

	return p != NULL ? p[0] : 0;
}

static uint32_t
rd_u32(struct rd *r)
{
	const uint8_t	*p = rd_bytes(r, 4);

	if (p == NULL)
		return 0;
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

static uint64_t
rd_u64(struct rd *r)
{
	const uint8_t	*p = rd_bytes(r, 8);
	uint64_t	 v = 0;
	int		 i;

	if (p == NULL)
		return 0;
	for (i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static double
rd_double(struct rd *r)
{
	uint64_t	 v = rd_u64(r);
	double		 d;

	memcpy(&d, &v, sizeof(d));
	return d;
}

/* 0/1 flags only. */
static int
rd_flag(struct rd *r)
{
	uint8_t	 v = rd_u8(r);

	if (v > 1)
		r->bad = 1;
	return v;
}

/* Into dst (size bytes, NUL-terminated); no NUL inside, must fit. */
static void
rd_str(struct rd *r, char *dst, size_t size)
{
	const uint8_t	*p;
	size_t		 n;

	n = (size_t)rd_u8(r) << 8;
	n |= rd_u8(r);
	if ((p = rd_bytes(r, n)) == NULL)
		return;
	if (n >= size || memchr(p, '\0', n) != NULL) {
		r->bad = 1;
		return;
	}
	memcpy(dst, p, n);
	dst[n] = '\0';
}

static void
rd_addr(struct rd *r, struct grgw_addr *a)
{
	const uint8_t	*p;
	uint8_t		 fam = rd_u8(r);

	if ((p = rd_bytes(r, sizeof(a->addr))) == NULL)
		return;
	if (fam != 4 && fam != 6) {
		r->bad = 1;
		return;
	}
	a->family = fam == 4 ? AF_INET : AF_INET6;
	memcpy(a->addr, p, sizeof(a->addr));
}

/* An address that may be unset (family 0, every byte zero). */
static void
rd_addr_opt(struct rd *r, struct grgw_addr *a)
{
	static const uint8_t	 zero[sizeof(a->addr)];

	if (r->bad || r->len - r->off < 1 + sizeof(a->addr))
		r->bad = 1;
	else if (r->p[r->off] != 0)
		rd_addr(r, a);
	else if (memcmp(r->p + r->off + 1, zero, sizeof(zero)) != 0)
		r->bad = 1;
	else
		r->off += 1 + sizeof(a->addr);
}

/* The reader saw exactly the body, and nothing was wrong. */
static int
rd_done(const struct rd *r)
{
	return r->bad || r->off != r->len ? -1 : 0;
}

/* ---- frames --------------------------------------------------------------- */

static int
type_known(uint8_t t)
{
	return (t >= PMSG_CONF && t <= PMSG_TUNNEL_NEW) ||
	    (t >= PMSG_READY && t <= PMSG_ROLE);
}

int
pmsg_frame(const uint8_t *buf, size_t len, struct pmsg *out)
{
	uint32_t	 blen;

	if (len < PMSG_HDR_LEN)
		return len >= 2 && (buf[0] << 8 | buf[1]) != PMSG_MAGIC ?
		    -1 : 0;
	if ((buf[0] << 8 | buf[1]) != PMSG_MAGIC || !type_known(buf[2]) ||
	    buf[3] != 0)
		return -1;
	blen = (uint32_t)buf[4] << 24 | (uint32_t)buf[5] << 16 |
	    (uint32_t)buf[6] << 8 | buf[7];
	if (blen > PMSG_BODY_MAX)
		return -1;
	out->type = buf[2];
	out->len = blen;
	out->body = NULL;
	if (len - PMSG_HDR_LEN < blen)
		return 0;
	out->body = buf + PMSG_HDR_LEN;
	return (int)(PMSG_HDR_LEN + blen);
}

int
pmsg_header(uint8_t hdr[PMSG_HDR_LEN], enum pmsg_type t, size_t len)
{
	struct wr	 w = { hdr, PMSG_HDR_LEN, 0, 0 };

	if (len > PMSG_BODY_MAX || !type_known((uint8_t)t)) {
		errno = EMSGSIZE;
		return -1;
	}
	wr_u8(&w, PMSG_MAGIC >> 8);
	wr_u8(&w, PMSG_MAGIC & 0xff);
	wr_u8(&w, (uint8_t)t);
	wr_u8(&w, 0);
	wr_u32(&w, (uint32_t)len);
	return 0;
}

/* ---- PMSG_CONF ------------------------------------------------------------- */

static void
wr_lan(struct wr *w, const struct grgw_side *s)
{
	int	 i;

	wr_u8(w, (uint8_t)s->n_lan_addresses);
	for (i = 0; i < s->n_lan_addresses; i++)
		wr_addr(w, &s->lan_addresses[i]);
}

static void
rd_lan(struct rd *r, struct grgw_side *s)
{
	int	 i, n = rd_u8(r);

	if (n > GRGW_MAX_LAN_ADDRS) {
		r->bad = 1;
		return;
	}
	s->n_lan_addresses = n;
	for (i = 0; i < n; i++)
		rd_addr(r, &s->lan_addresses[i]);
}

int
pmsg_conf_encode(const struct grgw_config *cfg, uint8_t *buf, size_t size)
{
	struct wr	 w = { buf, size, 0, 0 };

	wr_str(&w, cfg->site.name);
	wr_str(&w, cfg->peer.name);
	wr_addr(&w, &cfg->site.wan_address);
	wr_addr(&w, &cfg->peer.wan_address);
	wr_lan(&w, &cfg->site);
	wr_lan(&w, &cfg->peer);
	wr_u32(&w, cfg->probe.interval_ms);
	wr_u32(&w, cfg->probe.multiplier);
	wr_u32(&w, cfg->probe.recover);
	wr_u32(&w, cfg->probe.port);
	wr_double(&w, cfg->probe.degraded_loss);
	wr_u32(&w, cfg->probe.degraded_rtt_ms);
	wr_str(&w, cfg->feeds.http_listen);
	wr_str(&w, cfg->feeds.etcd_endpoint);
	wr_str(&w, cfg->feeds.etcd_key);
	wr_u32(&w, cfg->feeds.etcd_lease_ttl);
	wr_u8(&w, (uint8_t)cfg->log_level);
	wr_u8(&w, (uint8_t)cfg->probe.method);
	wr_u8(&w, cfg->pair.enabled != 0);
	wr_addr(&w, &cfg->pair.partner);
	wr_addr(&w, &cfg->pair.address);
	wr_addr(&w, &cfg->pair.second_partner);
	wr_addr(&w, &cfg->pair.second_address);
	wr_u32(&w, cfg->pair.priority);
	wr_u32(&w, cfg->pair.port);
	wr_u32(&w, cfg->pair.interval_ms);
	wr_u32(&w, cfg->pair.dead_ms);
	wr_u32(&w, cfg->pair.guard_ms);
	wr_u32(&w, cfg->pair.margin_ms);
	wr_u32(&w, cfg->pair.handover_wait_ms);
	wr_str(&w, cfg->pair.etcd_key);
	if (w.overflow) {
		errno = EMSGSIZE;
		return -1;
	}
	return (int)w.len;
}

int
pmsg_conf_decode(const uint8_t *body, size_t len, struct grgw_config *out)
{
	struct rd	 r = { body, len, 0, 0 };
	uint8_t		 level, method;

	memset(out, 0, sizeof(*out));
	rd_str(&r, out->site.name, sizeof(out->site.name));
	rd_str(&r, out->peer.name, sizeof(out->peer.name));
	rd_addr(&r, &out->site.wan_address);
	rd_addr(&r, &out->peer.wan_address);
	rd_lan(&r, &out->site);
	rd_lan(&r, &out->peer);
	out->probe.interval_ms = rd_u32(&r);
	out->probe.multiplier = rd_u32(&r);
	out->probe.recover = rd_u32(&r);
	out->probe.port = rd_u32(&r);
	out->probe.degraded_loss = rd_double(&r);
	out->probe.degraded_rtt_ms = rd_u32(&r);
	rd_str(&r, out->feeds.http_listen, sizeof(out->feeds.http_listen));
	rd_str(&r, out->feeds.etcd_endpoint,
	    sizeof(out->feeds.etcd_endpoint));
	rd_str(&r, out->feeds.etcd_key, sizeof(out->feeds.etcd_key));
	out->feeds.etcd_lease_ttl = rd_u32(&r);
	level = rd_u8(&r);
	out->log_level = (enum log_level)level;
	method = rd_u8(&r);
	out->probe.method = (enum grgw_probes)method;
	out->pair.enabled = rd_flag(&r);
	rd_addr_opt(&r, &out->pair.partner);
	rd_addr_opt(&r, &out->pair.address);
	rd_addr_opt(&r, &out->pair.second_partner);
	rd_addr_opt(&r, &out->pair.second_address);
	out->pair.priority = rd_u32(&r);
	out->pair.port = rd_u32(&r);
	out->pair.interval_ms = rd_u32(&r);
	out->pair.dead_ms = rd_u32(&r);
	out->pair.guard_ms = rd_u32(&r);
	out->pair.margin_ms = rd_u32(&r);
	out->pair.handover_wait_ms = rd_u32(&r);
	rd_str(&r, out->pair.etcd_key, sizeof(out->pair.etcd_key));
	if (out->pair.enabled && (out->pair.partner.family == 0 ||
	    out->pair.address.family != out->pair.partner.family ||
	    out->pair.second_address.family !=
	    out->pair.second_partner.family ||
	    out->pair.priority == 0 || out->pair.priority > 255 ||
	    out->pair.port == 0 || out->pair.port > 65535 ||
	    out->pair.interval_ms < 5 || out->pair.interval_ms > 1000 ||
	    out->pair.dead_ms < 3 * out->pair.interval_ms ||
	    out->pair.guard_ms < 2 * out->pair.interval_ms ||
	    out->pair.dead_ms > 60000 || out->pair.guard_ms > 60000 ||
	    out->pair.margin_ms == 0 ||
	    out->pair.margin_ms > out->pair.guard_ms - out->pair.interval_ms ||
	    out->pair.handover_wait_ms > 60000 ||
	    out->pair.etcd_key[0] == '\0' ||
	    out->feeds.etcd_endpoint[0] == '\0'))
		r.bad = 1;
	/* The ranges the configuration parser enforces. */
	if (out->site.name[0] == '\0' || out->peer.name[0] == '\0' ||
	    out->probe.interval_ms == 0 || out->probe.interval_ms > 10000 ||
	    out->probe.multiplier < 2 || out->probe.multiplier > 255 ||
	    out->probe.recover == 0 || out->probe.recover > 255 ||
	    out->probe.port == 0 || out->probe.port > 65535 ||
	    !(out->probe.degraded_loss >= 0 &&
	    out->probe.degraded_loss <= 1) ||
	    level > LOG_LVL_DEBUG || method > GRGW_PROBES_OFF)
		r.bad = 1;
	if (rd_done(&r) == -1) {
		memset(out, 0, sizeof(*out));
		errno = EBADMSG;
		return -1;
	}
	return 0;
}

/* ---- PMSG_START, PMSG_PATH, PMSG_WANT, PMSG_DOC, PMSG_READY ---------------- */

int
pmsg_key_decode(const uint8_t *body, size_t len, const uint8_t **key,
    const uint8_t **next)
{
	*key = *next = NULL;
	if (body == NULL || (len != PMSG_KEY_LEN && len != PMSG_KEYS_MAX))
		return -1;
	*key = body;
	if (len == PMSG_KEYS_MAX)
		*next = body + PMSG_KEY_LEN;
	return 0;
}

int
pmsg_start_decode(const uint8_t *body, size_t len, int up[PROBE_NPATHS])
{
	struct rd	 r = { body, len, 0, 0 };
	int		 i;

	for (i = 0; i < PROBE_NPATHS; i++)
		up[i] = rd_flag(&r);
	return rd_done(&r);
}

void
pmsg_path_encode(enum probe_path path, int changed,
    const struct path_stats *st, uint8_t out[PMSG_PATH_LEN])
{
	struct wr	 w = { out, PMSG_PATH_LEN, 0, 0 };

	wr_u8(&w, (uint8_t)path);
	wr_u8(&w, changed != 0);
	wr_u8(&w, st->up != 0);
	wr_u8(&w, st->ever_up != 0);
	wr_u8(&w, st->skew_recent != 0);
	wr_double(&w, st->rtt_last_ms);
	wr_double(&w, st->rtt_smoothed_ms);
	wr_double(&w, st->rtt_p50_ms);
	wr_double(&w, st->rtt_p99_ms);
	wr_double(&w, st->jitter_ms);
	wr_double(&w, st->loss_ratio);
	wr_double(&w, st->clock_skew_ms);
	wr_u64(&w, st->sent);
	wr_u64(&w, st->received);
	wr_u64(&w, st->answered);
	wr_u64(&w, st->rejected_auth);
	wr_u64(&w, st->rejected_replay);
	wr_u64(&w, st->rejected_malformed);
	wr_u64(&w, st->reordered);
	wr_u64(&w, st->transitions);
	wr_u64(&w, st->rejected_skew);
	wr_u64(&w, st->loss_sample);
}

/* A figure is a number of ms (or a ratio) >= 0, or NaN before any. */
static int
figure_ok(double d)
{
	return isnan(d) || (isfinite(d) && d >= 0);
}

int
pmsg_path_decode(const uint8_t *body, size_t len, enum probe_path *path,
    int *changed, struct path_stats *st)
{
	struct rd	 r = { body, len, 0, 0 };
	uint8_t		 p;

	memset(st, 0, sizeof(*st));
	p = rd_u8(&r);
	*changed = rd_flag(&r);
	st->up = rd_flag(&r);
	st->ever_up = rd_flag(&r);
	st->skew_recent = rd_flag(&r);
	st->rtt_last_ms = rd_double(&r);
	st->rtt_smoothed_ms = rd_double(&r);
	st->rtt_p50_ms = rd_double(&r);
	st->rtt_p99_ms = rd_double(&r);
	st->jitter_ms = rd_double(&r);
	st->loss_ratio = rd_double(&r);
	st->clock_skew_ms = rd_double(&r);
	st->sent = rd_u64(&r);
	st->received = rd_u64(&r);
	st->answered = rd_u64(&r);
	st->rejected_auth = rd_u64(&r);
	st->rejected_replay = rd_u64(&r);
	st->rejected_malformed = rd_u64(&r);
	st->reordered = rd_u64(&r);
	st->transitions = rd_u64(&r);
	st->rejected_skew = rd_u64(&r);
	st->loss_sample = rd_u64(&r);
	/* A skew is signed; NaN when there is none. */
	if (!isnan(st->clock_skew_ms) && !isfinite(st->clock_skew_ms))
		r.bad = 1;
	if (p >= PROBE_NPATHS || !figure_ok(st->rtt_last_ms) ||
	    !figure_ok(st->rtt_smoothed_ms) || !figure_ok(st->rtt_p50_ms) ||
	    !figure_ok(st->rtt_p99_ms) || !figure_ok(st->jitter_ms) ||
	    !figure_ok(st->loss_ratio) || st->loss_ratio > 1 ||
	    st->loss_sample > PROBE_RTT_WINDOW)
		r.bad = 1;
	if (rd_done(&r) == -1) {
		memset(st, 0, sizeof(*st));
		return -1;
	}
	*path = (enum probe_path)p;
	return 0;
}

void
pmsg_want_encode(uint32_t id, enum pmsg_doc doc, uint8_t out[PMSG_WANT_LEN])
{
	struct wr	 w = { out, PMSG_WANT_LEN, 0, 0 };

	wr_u32(&w, id);
	wr_u8(&w, (uint8_t)doc);
}

int
pmsg_want_decode(const uint8_t *body, size_t len, uint32_t *id,
    enum pmsg_doc *doc)
{
	struct rd	 r = { body, len, 0, 0 };
	uint8_t		 d;

	*id = rd_u32(&r);
	d = rd_u8(&r);
	if (d != PMSG_DOC_STATUS && d != PMSG_DOC_METRICS)
		r.bad = 1;
	*doc = (enum pmsg_doc)d;
	return rd_done(&r);
}

void
pmsg_doc_header(uint32_t id, uint8_t out[PMSG_DOC_HDR_LEN])
{
	struct wr	 w = { out, PMSG_DOC_HDR_LEN, 0, 0 };

	wr_u32(&w, id);
}

int
pmsg_doc_decode(const uint8_t *body, size_t len, uint32_t *id,
    const uint8_t **text, size_t *textlen)
{
	struct rd	 r = { body, len, 0, 0 };

	*id = rd_u32(&r);
	if (r.bad)
		return -1;
	*text = body + r.off;
	*textlen = len - r.off;
	return 0;
}

int
pmsg_ready_encode(int ok, const char *why, uint8_t *buf, size_t size)
{
	struct wr	 w = { buf, size, 0, 0 };
	size_t		 n = why != NULL ? strnlen(why, PMSG_TEXT_MAX) : 0;

	wr_u8(&w, ok != 0);
	wr_bytes(&w, why, n);
	if (w.overflow) {
		errno = EMSGSIZE;
		return -1;
	}
	return (int)w.len;
}

int
pmsg_ready_decode(const uint8_t *body, size_t len, int *ok, char *why,
    size_t whylen)
{
	struct rd	 r = { body, len, 0, 0 };

	*ok = rd_flag(&r);
	if (r.bad || len - r.off > PMSG_TEXT_MAX)
		return -1;
	return pmsg_text_decode(body + r.off, len - r.off, why, whylen);
}

int
pmsg_etcd_encode(int healthy, const char *error, uint8_t *buf, size_t size)
{
	return pmsg_ready_encode(healthy, error, buf, size);
}

int
pmsg_etcd_decode(const uint8_t *body, size_t len, int *healthy,
    char *error, size_t errlen)
{
	return pmsg_ready_decode(body, len, healthy, error, errlen);
}

int
pmsg_text_decode(const uint8_t *body, size_t len, char *out, size_t size)
{
	if (size == 0 || len >= size ||
	    (len > 0 && memchr(body, '\0', len) != NULL))
		return -1;
	if (len > 0)
		memcpy(out, body, len);
	out[len] = '\0';
	return 0;
}

/* ---- the pair ---------------------------------------------------------------- */

int
pmsg_pair_cmd_decode(const uint8_t *body, size_t len,
    enum pmsg_pair_cmd *cmd)
{
	if (body == NULL || len != PMSG_PAIR_CMD_LEN ||
	    body[0] < PMSG_PAIR_HANDOVER || body[0] > PMSG_PAIR_CLOSED)
		return -1;
	*cmd = (enum pmsg_pair_cmd)body[0];
	return 0;
}

void
pmsg_pair_resume_encode(uint64_t epoch, uint64_t hold_until_ms,
    uint8_t out[PMSG_PAIR_RESUME_LEN])
{
	struct wr	 w = { out, PMSG_PAIR_RESUME_LEN, 0, 0 };

	wr_u64(&w, epoch);
	wr_u64(&w, hold_until_ms);
}

int
pmsg_pair_resume_decode(const uint8_t *body, size_t len, uint64_t *epoch,
    uint64_t *hold_until_ms)
{
	struct rd	 r = { body, len, 0, 0 };

	*epoch = rd_u64(&r);
	*hold_until_ms = rd_u64(&r);
	if (*epoch == 0 || *hold_until_ms == 0)
		r.bad = 1;
	if (rd_done(&r) == -1) {
		*epoch = *hold_until_ms = 0;
		return -1;
	}
	return 0;
}

int
pmsg_role_encode(const struct pmsg_role *ro, uint8_t *buf, size_t size)
{
	struct wr	 w = { buf, size, 0, 0 };

	wr_u8(&w, ro->role);
	wr_u8(&w, ro->partner_role);
	wr_u8(&w, ro->partner_seen != 0);
	wr_u8(&w, ro->etcd_ok != 0);
	wr_u8(&w, ro->paths_seen);
	wr_u8(&w, ro->prep);
	wr_u64(&w, ro->epoch);
	wr_u64(&w, ro->hold_until_ms);
	wr_u32(&w, ro->partner_age_ms);
	wr_u64(&w, ro->takeovers);
	wr_bytes(&w, ro->reason, strnlen(ro->reason, PMSG_TEXT_MAX));
	if (w.overflow || ro->role >= PMSG_ROLE_MAX_ROLE ||
	    ro->partner_role >= PMSG_ROLE_MAX_ROLE ||
	    (ro->paths_seen & ~PMSG_ROLE_PATHS) != 0 ||
	    (ro->prep & ~PMSG_PREP_ALL) != 0) {
		errno = EMSGSIZE;
		return -1;
	}
	return (int)w.len;
}

int
pmsg_role_decode(const uint8_t *body, size_t len, struct pmsg_role *out)
{
	struct rd	 r = { body, len, 0, 0 };

	memset(out, 0, sizeof(*out));
	out->role = rd_u8(&r);
	out->partner_role = rd_u8(&r);
	out->partner_seen = (uint8_t)rd_flag(&r);
	out->etcd_ok = (uint8_t)rd_flag(&r);
	out->paths_seen = rd_u8(&r);
	out->prep = rd_u8(&r);
	out->epoch = rd_u64(&r);
	out->hold_until_ms = rd_u64(&r);
	out->partner_age_ms = rd_u32(&r);
	out->takeovers = rd_u64(&r);
	if (r.bad || out->role >= PMSG_ROLE_MAX_ROLE ||
	    out->partner_role >= PMSG_ROLE_MAX_ROLE ||
	    (out->paths_seen & ~PMSG_ROLE_PATHS) != 0 ||
	    (out->prep & ~PMSG_PREP_ALL) != 0 ||
	    len - r.off > PMSG_TEXT_MAX ||
	    pmsg_text_decode(body + r.off, len - r.off, out->reason,
	    sizeof(out->reason)) == -1) {
		memset(out, 0, sizeof(*out));
		return -1;
	}
	return 0;
}
