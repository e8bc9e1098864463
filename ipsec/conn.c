/*
 * The configuration as charon sees it: VICI requests built from the one
 * immutable grgw_config.  Pure: no I/O here, so unit tests read the
 * messages back through the VICI parser.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "grgw.h"
#include "ipsec/ipsec.h"
#include "ipsec/vici.h"

/*
 * Strong suites only: AES-GCM (AEAD) with X25519.  The ESP proposals
 * carry a key exchange too, so CHILD_SA rekeying has perfect forward
 * secrecy.
 */
/*
 * Replay window of the kernel's SAs, in packets: the largest bitmap the
 * kernel takes (XFRMA_REPLAY_ESN_MAX, 4096 bits, 512 bytes per SA).  It
 * tolerates 46 ms of reordering at 1 Gbit/s of 1400-byte packets (460 ms
 * at 100 Mbit/s).  1024 was not enough: behind a DSCP-prioritising WAN
 * queue of 1000 packets (a Linux interface's default), EF packets plus
 * asynchronous crypto reordered ESP beyond it, and the receiver counted
 * XfrmInStateSeqError drops (tests/kernel-lab, `counters`).
 */
#define CONN_REPLAY_WINDOW	4096

static const char *const ike_proposals[] = {
	"aes256gcm16-prfsha384-x25519",
	"aes128gcm16-prfsha256-x25519",
};
static const char *const esp_proposals[] = {
	"aes256gcm16-x25519",
	"aes128gcm16-x25519",
};

static void
add_prefix(struct vici_builder *b, const char *name,
    const struct grgw_prefix *p)
{
	char buf[INET6_ADDRSTRLEN + 8];

	vici_begin_list(b, name);
	vici_add_list_item_str(b, prefix_fmt(p, buf, sizeof(buf)));
	vici_end_list(b);
}

int
conn_pair(const struct grgw_config *cfg, int n, char *name, size_t len,
    int *li, int *ri)
{
	char l[INET6_ADDRSTRLEN + 8], r[INET6_ADDRSTRLEN + 8];
	int i, j, k = 0;

	for (i = 0; i < cfg->site.n_prefixes; i++)
		for (j = 0; j < cfg->peer.n_prefixes; j++) {
			if (cfg->site.prefixes[i].a.family !=
			    cfg->peer.prefixes[j].a.family)
				continue;
			if (k++ != n)
				continue;
			if (li != NULL)
				*li = i;
			if (ri != NULL)
				*ri = j;
			if (name != NULL &&
			    (size_t)snprintf(name, len, "%s=%s",
			    prefix_fmt(&cfg->site.prefixes[i], l, sizeof(l)),
			    prefix_fmt(&cfg->peer.prefixes[j], r, sizeof(r))) >=
			    len)
				return -1;
			return 0;
		}
	return -1;
}

int
conn_pair_count(const struct grgw_config *cfg)
{
	int n = 0;

	while (conn_pair(cfg, n, NULL, 0, NULL, NULL) == 0)
		n++;
	return n;
}

static void
add_str_list(struct vici_builder *b, const char *name,
    const char *const *items, size_t n)
{
	size_t i;

	vici_begin_list(b, name);
	for (i = 0; i < n; i++)
		vici_add_list_item_str(b, items[i]);
	vici_end_list(b);
}

static void
add_addr_list(struct vici_builder *b, const char *name,
    const struct grgw_addr *a)
{
	char buf[INET6_ADDRSTRLEN];

	vici_begin_list(b, name);
	vici_add_list_item_str(b, addr_fmt(a, buf, sizeof(buf)));
	vici_end_list(b);
}

struct vici_builder *
conn_build_load_shared(const struct grgw_config *cfg, const uint8_t *key,
    size_t keylen, int next)
{
	struct vici_builder *b;

	if ((b = vici_builder_new(VICI_CMD_REQUEST, "load-shared")) == NULL)
		return NULL;
	/* A stable id lets a reload replace the key instead of adding one. */
	vici_add_kv_str(b, "id", next ? "grgw-psk-next" : "grgw-psk");
	vici_add_kv_str(b, "type", "IKE");
	vici_add_kv(b, "data", key, keylen);
	vici_begin_list(b, "owners");
	if (!next)
		vici_add_list_item_str(b, cfg->site.id);
	vici_add_list_item_str(b, cfg->peer.id);
	vici_end_list(b);
	return b;
}

static void
add_seconds(struct vici_builder *b, const char *key, uint32_t s)
{
	char	 buf[16];

	snprintf(buf, sizeof(buf), "%us", s);
	vici_add_kv_str(b, key, buf);
}

void
conn_lifetimes(const struct grgw_config *cfg, struct grgw_ipsec_conf *out)
{
	*out = cfg->ipsec;
	/* A config made by hand (tests) may leave them out. */
	if (out->ike_rekey_s == 0)
		out->ike_rekey_s = GRGW_IKE_REKEY_S;
	if (out->ike_life_s <= out->ike_rekey_s)
		out->ike_life_s = out->ike_rekey_s + out->ike_rekey_s / 10;
	if (out->child_rekey_s == 0)
		out->child_rekey_s = GRGW_CHILD_REKEY_S;
	if (out->child_life_s <= out->child_rekey_s)
		out->child_life_s = out->child_rekey_s +
		    out->child_rekey_s / 10;
}

void
conn_rekey_timers(uint32_t rekey, uint32_t life, int later,
    struct conn_rekey_timers *out)
{
	uint32_t	 margin = life > rekey ? life - rekey : 0;
	uint32_t	 half = margin >= 2 ? margin / 2 : 0;

	out->life = life;
	if (!later) {
		/* Within the half of the margin before rekey_time. */
		out->rekey = rekey;
		out->rand = half;
	} else {
		/* Once that half is over: only if the other end did not. */
		out->rekey = rekey + half;
		out->rand = half != 0 ? 0 : margin;
	}
}

struct vici_builder *
conn_build_unload_shared(int next)
{
	struct vici_builder *b;

	if ((b = vici_builder_new(VICI_CMD_REQUEST, "unload-shared")) == NULL)
		return NULL;
	vici_add_kv_str(b, "id", next ? "grgw-psk-next" : "grgw-psk");
	return b;
}

struct vici_builder *
conn_build_unload_conn(const char *name)
{
	struct vici_builder *b;

	if ((b = vici_builder_new(VICI_CMD_REQUEST, "unload-conn")) == NULL)
		return NULL;
	vici_add_kv_str(b, "name", name);
	return b;
}

struct vici_builder *
conn_build_clear_creds(void)
{
	return vici_builder_new(VICI_CMD_REQUEST, "clear-creds");
}

struct vici_builder *
conn_build_terminate_child(unsigned uniqueid)
{
	struct vici_builder *b;

	if ((b = vici_builder_new(VICI_CMD_REQUEST, "terminate")) == NULL)
		return NULL;
	vici_add_kv_uint(b, "child-id", uniqueid);
	vici_add_kv_str(b, "timeout", "-1");
	return b;
}

#define PEM_BEGIN	"-----BEGIN CERTIFICATE-----"
#define PEM_END		"-----END CERTIFICATE-----"

int
conn_pem_next_cert(const uint8_t *pem, size_t pem_len, size_t *off,
    const uint8_t **cert, size_t *len)
{
	const uint8_t *begin, *end;
	size_t at = *off;

	*cert = NULL;
	*len = 0;
	if (pem == NULL || at >= pem_len)
		return 0;
	begin = memmem(pem + at, pem_len - at, PEM_BEGIN, strlen(PEM_BEGIN));
	if (begin == NULL) {
		/* DER, or no PEM certificate: the whole, once. */
		if (at != 0 || memmem(pem, pem_len, "-----BEGIN", 10) != NULL) {
			*off = pem_len;
			return 0;
		}
		*cert = pem;
		*len = *off = pem_len;
		return 1;
	}
	end = memmem(begin, pem_len - (size_t)(begin - pem), PEM_END,
	    strlen(PEM_END));
	/* Cut short: the rest as it is, for charon to judge. */
	end = end != NULL ? end + strlen(PEM_END) : pem + pem_len;
	if (end < pem + pem_len && *end == '\r')
		end++;
	if (end < pem + pem_len && *end == '\n')
		end++;
	*cert = begin;
	*len = (size_t)(end - begin);
	*off = (size_t)(end - pem);
	return 1;
}

struct vici_builder *
conn_build_load_cert(const uint8_t *pem, size_t len, int is_ca)
{
	struct vici_builder *b;

	if ((b = vici_builder_new(VICI_CMD_REQUEST, "load-cert")) == NULL)
		return NULL;
	vici_add_kv_str(b, "type", "X509");
	vici_add_kv_str(b, "flag", is_ca ? "CA" : "NONE");
	vici_add_kv(b, "data", pem, len);
	return b;
}

struct vici_builder *
conn_build_load_key(const uint8_t *pem, size_t len)
{
	struct vici_builder *b;

	if ((b = vici_builder_new(VICI_CMD_REQUEST, "load-key")) == NULL)
		return NULL;
	vici_add_kv_str(b, "type", "any");
	vici_add_kv(b, "data", pem, len);
	return b;
}

/* One child per pair of prefixes (see conn_pair()). */
static void
add_child(struct vici_builder *b, const struct grgw_config *cfg,
    enum grgw_dataplane dp, int n, const struct grgw_ipsec_conf *lifetimes,
    int later)
{
	struct conn_rekey_timers t;
	char name[CONN_PAIR_NAME_MAX];
	int li, ri;

	if (conn_pair(cfg, n, name, sizeof(name), &li, &ri) == -1)
		return;
	vici_begin_section(b, name);
	add_prefix(b, "local_ts", &cfg->site.prefixes[li]);
	add_prefix(b, "remote_ts", &cfg->peer.prefixes[ri]);
	add_str_list(b, "esp_proposals", esp_proposals,
	    nitems(esp_proposals));
	vici_add_kv_str(b, "mode", "tunnel");
	conn_rekey_timers(lifetimes->child_rekey_s, lifetimes->child_life_s,
	    later, &t);
	add_seconds(b, "rekey_time", t.rekey);
	add_seconds(b, "life_time", t.life);
	add_seconds(b, "rand_time", t.rand);
	/* The daemon initiates and re-initiates itself (see daemon.c). */
	vici_add_kv_str(b, "start_action", "none");
	vici_add_kv_str(b, "dpd_action", "restart");
	vici_add_kv_str(b, "close_action", "none");
	/* The inner DSCP is copied to the outer ESP header. */
	vici_add_kv_str(b, "copy_dscp", "out");
	if (dp == GRGW_DP_KERNEL) {
		/*
		 * Route based: SAs and policies bound to the xfrm interface.
		 * charon gives each pair a reqid of its own (their traffic
		 * selectors differ), and a rekey keeps it.
		 */
		vici_add_kv_uint(b, "if_id_in", cfg->if_id);
		vici_add_kv_uint(b, "if_id_out", cfg->if_id);
		/*
		 * RFC 4301 4.1: with copy_dscp, a WAN that honours the outer
		 * DSCP may deliver high-priority packets ahead of older
		 * low-priority ones of the same SA.  A 32-packet window would
		 * drop those late ones as replays; CONN_REPLAY_WINDOW packets
		 * (a bitmap in XFRMA_REPLAY_ESN_VAL) absorb the reordering.
		 */
		vici_add_kv_uint(b, "replay_window", CONN_REPLAY_WINDOW);
		/*
		 * A handover's SAs stand beside the active partner's, with
		 * the same traffic selectors and interface id.  charon puts
		 * SAs of equal selectors under one XFRM policy per direction,
		 * whose template names the newest SA's tunnel addresses, and
		 * the kernel drops what arrives through an SA of another
		 * remote address (XfrmInTmplMismatch): the outgoing gateway's
		 * traffic from the moment the incoming one's SAs are in.  A
		 * mark of its own on each CHILD_SA's inbound and forward
		 * policies, set on what its SA decrypts, gives every SA a
		 * policy of its own; outbound stays one policy, the newest
		 * SA's, as libipsec sends on the newest.
		 */
		if (cfg->peer.n_gateways > 0) {
			vici_add_kv_str(b, "mark_in", "%unique");
			vici_add_kv_str(b, "set_mark_in", "%same");
		}
	}
	vici_end_section(b);
}

static const char *
conn_kind_name(enum conn_kind kind)
{
	switch (kind) {
	case CONN_VERIFY:
		return GRGW_VERIFY_NAME;
	case CONN_READY:
		return GRGW_READY_NAME;
	case CONN_GATEWAYS:
		return GRGW_GATEWAYS_NAME;
	case CONN_MAIN:
		break;
	}
	return GRGW_CONN_NAME;
}

struct vici_builder *
conn_build_load_conn(const struct grgw_config *cfg, enum grgw_dataplane dp,
    enum conn_kind kind)
{
	char buf[INET6_ADDRSTRLEN];
	int verify = kind == CONN_VERIFY;
	struct vici_builder *b;
	struct grgw_ipsec_conf lifetimes;
	struct conn_rekey_timers t;
	int cert = cfg->auth == GRGW_AUTH_CERT;
	int later = strcmp(cfg->site.name, cfg->peer.name) > 0;
	int n, pairs;

	conn_lifetimes(cfg, &lifetimes);
	if ((b = vici_builder_new(VICI_CMD_REQUEST, "load-conn")) == NULL)
		return NULL;
	vici_begin_section(b, conn_kind_name(kind));
	vici_add_kv_str(b, "version", "2");
	add_addr_list(b, "local_addrs", kind == CONN_READY ?
	    &cfg->pair.own_wan_address : &cfg->site.wan_address);
	if (kind == CONN_GATEWAYS) {
		vici_begin_list(b, "remote_addrs");
		for (n = 0; n < cfg->peer.n_gateways; n++)
			vici_add_list_item_str(b, addr_fmt(
			    &cfg->peer.gateways[n], buf, sizeof(buf)));
		vici_end_list(b);
	} else
		add_addr_list(b, "remote_addrs", &cfg->peer.wan_address);
	add_str_list(b, "proposals", ike_proposals, nitems(ike_proposals));
	/*
	 * Identities never depend on addresses, so 1:1 NAT of either
	 * gateway's WAN address changes nothing; NAT-T is negotiated.
	 */
	vici_add_kv_str(b, "encap", "no");
	vici_add_kv_str(b, "mobike", "no");
	if (verify) {
		/*
		 * A second IKE_SA that only proves the credentials both ends
		 * hold now (RFC 6023, no CHILD_SA), deleted once it is up.
		 * Its settings differ from the tunnel's, so charon never
		 * takes the tunnel's IKE_SA for it; "never" sends no
		 * INITIAL_CONTACT, which would make the peer drop the
		 * tunnel's SAs.
		 */
		vici_add_kv_str(b, "childless", "force");
		vici_add_kv_str(b, "unique", "never");
		vici_add_kv_str(b, "keyingtries", "1");
		vici_add_kv_str(b, "rekey_time", "0");
		vici_add_kv_str(b, "reauth_time", "0");
	} else {
		vici_add_kv_str(b, "dpd_delay", "10s");
		/*
		 * IKE_SA rekeying (a new IKE_SA, the CHILD_SAs move over,
		 * nothing is torn down), never reauthentication, which in
		 * IKEv2 would rebuild every CHILD_SA, and the end that
		 * answers sends on the new ones before the other end can
		 * read them.  New credentials are proved with a second
		 * IKE_SA instead (verify).  The two ends' timers never fire
		 * together (conn_rekey_timers()).
		 */
		conn_rekey_timers(lifetimes.ike_rekey_s, lifetimes.ike_life_s,
		    later, &t);
		add_seconds(b, "rekey_time", t.rekey);
		add_seconds(b, "over_time", t.life - t.rekey);
		add_seconds(b, "rand_time", t.rand);
		vici_add_kv_str(b, "reauth_time", "0");
		/*
		 * "no" keeps a duplicate IKE_SA from simultaneous starts
		 * harmless, while INITIAL_CONTACT from a restarted peer still
		 * replaces its stale SAs.  The handover's connections stand
		 * beside the active partner's SAs: "never" sends no
		 * INITIAL_CONTACT, and the ready one starts without
		 * CHILD_SAs, which the other end adds (so that the end that
		 * answers, installing first, is the one that receives).
		 */
		vici_add_kv_str(b, "unique", kind == CONN_MAIN ? "no" :
		    "never");
		if (kind == CONN_READY)
			vici_add_kv_str(b, "childless", "force");
		vici_add_kv_str(b, "keyingtries", "1");	/* the daemon retries */
	}
	if (cert)
		vici_add_kv_str(b, "send_cert", "always");

	/*
	 * With certificates, charon finds ours by the identity among the
	 * ones loaded (load-cert), and trusts the CAs loaded, which are
	 * those of [auth] only: this charon reads no other.  Naming the
	 * certificates here would make a rotated one a different
	 * configuration, and charon would build a new IKE_SA for the next
	 * CHILD_SA instead of using the tunnel's.
	 */
	vici_begin_section(b, "local");
	vici_add_kv_str(b, "auth", cert ? "pubkey" : "psk");
	vici_add_kv_str(b, "id", cfg->site.id);
	vici_end_section(b);

	vici_begin_section(b, "remote");
	vici_add_kv_str(b, "auth", cert ? "pubkey" : "psk");
	vici_add_kv_str(b, "id", cfg->peer.id);
	vici_end_section(b);

	if (!verify) {
		vici_begin_section(b, "children");
		pairs = conn_pair_count(cfg);
		for (n = 0; n < pairs; n++)
			add_child(b, cfg, dp, n, &lifetimes, later);
		vici_end_section(b);
	}

	vici_end_section(b);
	return b;
}

struct vici_builder *
conn_build_initiate(const char *ike, const char *child, unsigned timeout_ms)
{
	struct vici_builder *b;

	if ((b = vici_builder_new(VICI_CMD_REQUEST, "initiate")) == NULL)
		return NULL;
	if (child != NULL)
		vici_add_kv_str(b, "child", child);
	vici_add_kv_str(b, "ike", ike);
	vici_add_kv_uint(b, "timeout", timeout_ms);
	/* Stream the negotiation's log so failures can be named. */
	vici_add_kv_str(b, "loglevel", "1");
	return b;
}

struct vici_builder *
conn_build_terminate_wait(const char *ike, unsigned timeout_ms)
{
	struct vici_builder *b;

	if ((b = vici_builder_new(VICI_CMD_REQUEST, "terminate")) == NULL)
		return NULL;
	vici_add_kv_str(b, "ike", ike);
	/* The DELETE goes out; gone when answered, or at the timeout. */
	vici_add_kv_str(b, "force", "yes");
	vici_add_kv_uint(b, "timeout", timeout_ms);
	vici_add_kv_str(b, "loglevel", "-1");
	return b;
}

struct vici_builder *
conn_build_terminate_force(const char *ike)
{
	struct vici_builder *b;

	if ((b = vici_builder_new(VICI_CMD_REQUEST, "terminate")) == NULL)
		return NULL;
	vici_add_kv_str(b, "ike", ike);
	vici_add_kv_str(b, "force", "yes");
	vici_add_kv_str(b, "timeout", "-1");
	vici_add_kv_str(b, "loglevel", "-1");
	return b;
}

struct vici_builder *
conn_build_terminate(const char *ike)
{
	struct vici_builder *b;

	if ((b = vici_builder_new(VICI_CMD_REQUEST, "terminate")) == NULL)
		return NULL;
	vici_add_kv_str(b, "ike", ike);
	vici_add_kv_str(b, "timeout", "2000");
	vici_add_kv_str(b, "loglevel", "-1");
	return b;
}

struct vici_builder *
conn_build_terminate_ike(unsigned uniqueid)
{
	struct vici_builder *b;

	if ((b = vici_builder_new(VICI_CMD_REQUEST, "terminate")) == NULL)
		return NULL;
	vici_add_kv_uint(b, "ike-id", uniqueid);
	/* Answer at once: the delete exchange must not hold up list-sas. */
	vici_add_kv_str(b, "timeout", "-1");
	return b;
}

/* 1 if a is the better IKE_SA to keep than b (see the header). */
static int
duplicate_keep_before(const struct ike_sa_ref *a, const struct ike_sa_ref *b,
    int we_sort_first)
{
	int a_first = a->we_initiated == we_sort_first;
	int b_first = b->we_initiated == we_sort_first;

	if (a_first != b_first)
		return a_first;
	return strcmp(a->initiator_spi, b->initiator_spi) < 0;
}

int
conn_duplicate_to_delete(const struct ike_sas *s, int we_sort_first)
{
	int i, keep = -1, n = s->n_est;

	if (n > IKE_SAS_REFS)
		n = IKE_SAS_REFS;
	/* An IKE_SA without CHILD_SAs is a verification (or still coming
	 * up): its initiator deletes it.  Only the tunnel's connection can
	 * have a duplicate: a handover's IKE_SA stands beside it on
	 * purpose. */
	for (i = 0; i < n; i++)
		if (s->est[i].conn == CONN_MAIN && s->est[i].n_child > 0 &&
		    (keep == -1 ||
		    duplicate_keep_before(&s->est[i], &s->est[keep],
		    we_sort_first)))
			keep = i;
	if (keep == -1)
		return -1;
	for (i = 0; i < n; i++)
		if (i != keep && s->est[i].conn == CONN_MAIN &&
		    s->est[i].n_child > 0 && s->est[i].we_initiated)
			return i;
	return -1;
}

int
conn_child_duplicate(const struct ike_sas *s)
{
	int	 i, j, n = s->n_child;

	if (n > IKE_CHILD_REFS)
		n = IKE_CHILD_REFS;
	for (i = 0; i < n; i++) {
		if (!s->child[i].installed)
			continue;
		for (j = 0; j < n; j++)
			if (j != i && s->child[j].installed &&
			    s->child[j].uniqueid < s->child[i].uniqueid &&
			    strcmp(s->child[j].name, s->child[i].name) == 0)
				return i;
	}
	return -1;
}

struct vici_builder *
conn_build_list_sas(void)
{
	struct vici_builder *b;

	if ((b = vici_builder_new(VICI_CMD_REQUEST, "list-sas")) == NULL)
		return NULL;
	/*
	 * Every connection: the scan keeps grgw's (the tunnel's, and a
	 * planned handover's GRGW_READY_NAME and GRGW_GATEWAYS_NAME).
	 * No "noblock": with it, charon skips an IKE_SA that is checked out,
	 * which is exactly the case while it reports that SA's up-events,
	 * and the listing would miss the SA that just came up.
	 */
	return b;
}

struct vici_builder *
conn_build_register(const char *event)
{
	return vici_builder_new(VICI_EVENT_REGISTER, event);
}

static const struct {
	const char	*needle;
	const char	*reason;
} log_reasons[] = {
	/*
	 * charon checks the validity period of each certificate of the
	 * chain ("subject", then "issuer"); the line comes before the "no
	 * trusted ... key" that it causes, and the first reason found wins.
	 */
	{ "subject certificate invalid (valid from",
	  "authentication failed: the peer's certificate expired (or is not "
	  "valid yet)" },
	{ "issuer certificate invalid (valid from",
	  "authentication failed: the CA certificate expired (or is not "
	  "valid yet)" },
	{ "AUTHENTICATION_FAILED", "authentication failed" },
	{ "MAC mismatched", "authentication failed" },
	{ "no shared key found", "authentication failed" },
	{ "signature validation failed", "authentication failed" },
	{ "constraint check failed", "authentication failed" },
	{ "no trusted", "authentication failed" },
	{ "NO_PROPOSAL_CHOSEN", "no matching proposal" },
	{ "TS_UNACCEPTABLE",
	  "traffic selectors refused (the sites' prefixes do not match)" },
	{ "giving up after", "peer not responding" },
};

const char *
conn_classify_log(const char *line)
{
	size_t i;

	if (line == NULL)
		return NULL;
	for (i = 0; i < nitems(log_reasons); i++)
		if (strstr(line, log_reasons[i].needle) != NULL)
			return log_reasons[i].reason;
	return NULL;
}
