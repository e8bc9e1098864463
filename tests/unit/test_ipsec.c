/*
 * What charon is told: the VICI requests built from a configuration, read
 * back through the VICI parser; the generated strongswan.conf; the log
 * classifier; and the status JSON.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "grgw.h"
#include "status.h"
#include "strbuf.h"
#include "feeds.h"
#include "ipsec/ipsec.h"
#include "ipsec/vici.h"

static void
make_config(struct grgw_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	strcpy(cfg->site.name, "site-a");
	strcpy(cfg->site.id, "site-a");
	strcpy(cfg->peer.name, "site-b");
	strcpy(cfg->peer.id, "site-b");
	assert_int_equal(addr_parse("192.0.2.10", &cfg->site.wan_address), 0);
	assert_int_equal(addr_parse("198.51.100.10", &cfg->peer.wan_address),
	    0);
	assert_int_equal(prefix_parse("198.18.1.0/24",
	    &cfg->site.prefixes[0]), 0);
	assert_int_equal(prefix_parse("2001:db8:a::/64",
	    &cfg->site.prefixes[1]), 0);
	cfg->site.n_prefixes = 2;
	assert_int_equal(prefix_parse("198.18.2.0/24",
	    &cfg->peer.prefixes[0]), 0);
	assert_int_equal(prefix_parse("2001:db8:b::/64",
	    &cfg->peer.prefixes[1]), 0);
	cfg->peer.n_prefixes = 2;
	strcpy(cfg->site.wan_interface, "wan0");
	cfg->auth = GRGW_AUTH_PSK;
	strcpy(cfg->psk_file, "/etc/grgw/psk");
	cfg->dataplane = GRGW_DP_AUTO;
	strcpy(cfg->xfrm_interface, "grgw0");
	cfg->if_id = 4210;
	cfg->table = 4210;
	cfg->mtu = 1400;
	strcpy(cfg->run_dir, "/run/grgw");
	strcpy(cfg->charon_path, "/usr/lib/ipsec/charon");
}

/* Finish a builder and parse the packet back; caller frees. */
static struct vici_msg *
roundtrip(struct vici_builder *b)
{
	const uint8_t *pkt;
	struct vici_msg *m = NULL;
	char err[128];
	size_t len;

	assert_non_null(b);
	assert_int_equal(vici_builder_finish(b, &pkt, &len), 0);
	assert_true(len > 4);
	assert_int_equal((size_t)((uint32_t)pkt[0] << 24 | pkt[1] << 16 |
	    pkt[2] << 8 | pkt[3]), len - 4);
	assert_int_equal(vici_parse(pkt + 4, len - 4, &m, err, sizeof(err)),
	    0);
	vici_builder_free(b);
	return m;
}

/* The i-th item of a list below section, or NULL. */
static const char *
list_item(const struct vici_node *section, const char *list, int i)
{
	const struct vici_node *l = vici_find(section, list), *it;

	if (l == NULL || l->kind != VICI_NODE_LIST)
		return NULL;
	for (it = l->child; it != NULL && i > 0; it = it->next)
		i--;
	return it == NULL ? NULL : it->value;
}

static void
test_load_conn_libipsec(void **state)
{
	const struct vici_node *conn, *local, *remote, *child, *children;
	struct grgw_config cfg;
	struct vici_msg *m;

	make_config(&cfg);
	m = roundtrip(conn_build_load_conn(&cfg, GRGW_DP_LIBIPSEC, CONN_MAIN));
	assert_int_equal(m->type, VICI_CMD_REQUEST);
	assert_string_equal(m->name, "load-conn");
	conn = vici_find(m->root, GRGW_CONN_NAME);
	assert_non_null(conn);
	assert_string_equal(vici_get_str(conn, "version"), "2");
	assert_string_equal(list_item(conn, "local_addrs", 0), "192.0.2.10");
	assert_string_equal(list_item(conn, "remote_addrs", 0),
	    "198.51.100.10");
	assert_string_equal(list_item(conn, "proposals", 0),
	    "aes256gcm16-prfsha384-x25519");
	assert_non_null(vici_get_str(conn, "dpd_delay"));
	local = vici_find(conn, "local");
	remote = vici_find(conn, "remote");
	assert_non_null(local);
	assert_non_null(remote);
	assert_string_equal(vici_get_str(local, "auth"), "psk");
	assert_string_equal(vici_get_str(local, "id"), "site-a");
	assert_string_equal(vici_get_str(remote, "id"), "site-b");
	/* One CHILD_SA per pair of prefixes of one family, no other. */
	children = vici_find(conn, "children");
	assert_null(vici_find(children, GRGW_CONN_NAME));
	child = vici_find(children, "198.18.1.0/24=198.18.2.0/24");
	assert_non_null(child);
	assert_string_equal(list_item(child, "local_ts", 0), "198.18.1.0/24");
	assert_null(list_item(child, "local_ts", 1));
	assert_string_equal(list_item(child, "remote_ts", 0),
	    "198.18.2.0/24");
	assert_null(list_item(child, "remote_ts", 1));
	assert_non_null(children->child);
	assert_non_null(children->child->next);
	assert_null(children->child->next->next);
	child = vici_find(children, "2001:db8:a::/64=2001:db8:b::/64");
	assert_non_null(child);
	assert_string_equal(list_item(child, "local_ts", 0),
	    "2001:db8:a::/64");
	assert_string_equal(list_item(child, "remote_ts", 0),
	    "2001:db8:b::/64");
	assert_null(list_item(child, "remote_ts", 1));
	assert_string_equal(vici_get_str(child, "mode"), "tunnel");
	assert_string_equal(list_item(child, "esp_proposals", 0),
	    "aes256gcm16-x25519");
	/* libipsec: no xfrm interface binding */
	assert_null(vici_get_str(child, "if_id_in"));
	assert_null(vici_get_str(child, "if_id_out"));
	/* and reqids charon allocates */
	assert_null(vici_get_str(child, "reqid"));
	/* libipsec keeps its own window (kernel-netlink only takes this) */
	assert_null(vici_get_str(child, "replay_window"));
	vici_msg_free(m);
}

static void
test_load_conn_kernel(void **state)
{
	const struct vici_node *children, *child;
	struct grgw_config cfg;
	struct vici_msg *m;

	make_config(&cfg);
	cfg.if_id = 77;
	m = roundtrip(conn_build_load_conn(&cfg, GRGW_DP_KERNEL, CONN_MAIN));
	children = vici_find(vici_find(m->root, GRGW_CONN_NAME), "children");
	for (child = children->child; child != NULL; child = child->next) {
		assert_string_equal(vici_get_str(child, "if_id_in"), "77");
		assert_string_equal(vici_get_str(child, "if_id_out"), "77");
		/* Each pair's traffic selectors: a reqid of its own. */
		assert_null(vici_get_str(child, "reqid"));
		assert_string_equal(vici_get_str(child, "copy_dscp"), "out");
		/* QoS reorders classes: a replay window that absorbs it. */
		assert_string_equal(vici_get_str(child, "replay_window"),
		    "4096");
		/* No handover beside it: one policy per selector. */
		assert_null(vici_get_str(child, "mark_in"));
		assert_null(vici_get_str(child, "set_mark_in"));
	}
	assert_non_null(vici_find(children, "198.18.1.0/24=198.18.2.0/24"));
	assert_non_null(vici_find(children, "2001:db8:a::/64=2001:db8:b::/64"));
	vici_msg_free(m);
}

/*
 * With the other site's gateways known, each CHILD_SA of every
 * connection has inbound policies of its own in the kernel (a mark per
 * CHILD_SA, set on what it decrypts), so that a handover's SAs and the
 * active partner's, of equal selectors, are both received; outbound
 * stays unmarked (one policy, the newest SA's).  libipsec: nothing.
 */
static void
test_load_conn_kernel_gateways(void **state)
{
	static const enum conn_kind kinds[] = {
		CONN_MAIN, CONN_READY, CONN_GATEWAYS
	};
	static const char *names[] = {
		GRGW_CONN_NAME, GRGW_READY_NAME, GRGW_GATEWAYS_NAME
	};
	const struct vici_node *children, *child;
	struct grgw_config cfg;
	struct vici_msg *m;
	size_t k;
	int n;

	make_config(&cfg);
	cfg.if_id = 77;
	assert_int_equal(addr_parse("192.0.2.11",
	    &cfg.pair.own_wan_address), 0);
	assert_int_equal(addr_parse("198.51.100.11", &cfg.peer.gateways[0]),
	    0);
	cfg.peer.n_gateways = 1;
	for (k = 0; k < nitems(kinds); k++) {
		m = roundtrip(conn_build_load_conn(&cfg, GRGW_DP_KERNEL,
		    kinds[k]));
		children = vici_find(vici_find(m->root, names[k]), "children");
		assert_non_null(children);
		n = 0;
		for (child = children->child; child != NULL;
		    child = child->next, n++) {
			assert_string_equal(vici_get_str(child, "mark_in"),
			    "%unique");
			assert_string_equal(vici_get_str(child, "set_mark_in"),
			    "%same");
			assert_null(vici_get_str(child, "mark_in_sa"));
			assert_null(vici_get_str(child, "mark_out"));
			assert_string_equal(vici_get_str(child, "if_id_in"),
			    "77");
		}
		assert_int_equal(n, 2);
		vici_msg_free(m);

		m = roundtrip(conn_build_load_conn(&cfg, GRGW_DP_LIBIPSEC,
		    kinds[k]));
		children = vici_find(vici_find(m->root, names[k]), "children");
		for (child = children->child; child != NULL;
		    child = child->next) {
			assert_null(vici_get_str(child, "mark_in"));
			assert_null(vici_get_str(child, "set_mark_in"));
		}
		vici_msg_free(m);
	}
}

/*
 * Certificates: none named in the connection (charon finds ours by the
 * identity among those loaded), so that a rotated one leaves the
 * connection as it was.  The verification connection: the same ends,
 * no CHILD_SA, never INITIAL_CONTACT.
 */
static void
test_load_conn_cert(void **state)
{
	const struct vici_node *conn;
	struct grgw_config cfg;
	struct vici_msg *m;

	make_config(&cfg);
	cfg.auth = GRGW_AUTH_CERT;
	m = roundtrip(conn_build_load_conn(&cfg, GRGW_DP_LIBIPSEC, CONN_MAIN));
	conn = vici_find(m->root, GRGW_CONN_NAME);
	assert_string_equal(vici_get_str(vici_find(conn, "local"), "auth"),
	    "pubkey");
	assert_string_equal(vici_get_str(vici_find(conn, "local"), "id"),
	    "site-a");
	assert_null(vici_find(vici_find(conn, "local"), "certs"));
	assert_null(vici_find(vici_find(conn, "remote"), "cacerts"));
	assert_string_equal(vici_get_str(conn, "send_cert"), "always");
	assert_string_equal(vici_get_str(conn, "unique"), "no");
	assert_null(vici_get_str(conn, "childless"));
	vici_msg_free(m);

	m = roundtrip(conn_build_load_conn(&cfg, GRGW_DP_KERNEL, CONN_VERIFY));
	assert_null(vici_find(m->root, GRGW_CONN_NAME));
	conn = vici_find(m->root, GRGW_VERIFY_NAME);
	assert_non_null(conn);
	assert_string_equal(vici_get_str(conn, "childless"), "force");
	assert_string_equal(vici_get_str(conn, "unique"), "never");
	assert_null(vici_find(conn, "children"));
	assert_string_equal(vici_get_str(vici_find(conn, "remote"), "id"),
	    "site-b");
	assert_string_equal(list_item(conn, "remote_addrs", 0),
	    "198.51.100.10");
	vici_msg_free(m);
}

/* A handover's two connections: from this gateway's own WAN address
 * without CHILD_SAs, and to the other site's gateways' own. */
static void
test_load_conn_handover(void **state)
{
	const struct vici_node *conn;
	struct grgw_config cfg;
	struct vici_msg *m;

	make_config(&cfg);
	assert_int_equal(addr_parse("192.0.2.11",
	    &cfg.pair.own_wan_address), 0);
	assert_int_equal(addr_parse("198.51.100.11", &cfg.peer.gateways[0]),
	    0);
	assert_int_equal(addr_parse("198.51.100.12", &cfg.peer.gateways[1]),
	    0);
	cfg.peer.n_gateways = 2;

	m = roundtrip(conn_build_load_conn(&cfg, GRGW_DP_LIBIPSEC,
	    CONN_READY));
	assert_null(vici_find(m->root, GRGW_CONN_NAME));
	conn = vici_find(m->root, GRGW_READY_NAME);
	assert_non_null(conn);
	assert_string_equal(list_item(conn, "local_addrs", 0), "192.0.2.11");
	assert_string_equal(list_item(conn, "remote_addrs", 0),
	    "198.51.100.10");
	assert_string_equal(vici_get_str(conn, "childless"), "force");
	assert_string_equal(vici_get_str(conn, "unique"), "never");
	/* The same CHILD_SAs as the tunnel's, which the peer adds. */
	assert_non_null(vici_find(vici_find(conn, "children"),
	    "198.18.1.0/24=198.18.2.0/24"));
	vici_msg_free(m);

	m = roundtrip(conn_build_load_conn(&cfg, GRGW_DP_LIBIPSEC,
	    CONN_GATEWAYS));
	conn = vici_find(m->root, GRGW_GATEWAYS_NAME);
	assert_non_null(conn);
	assert_string_equal(list_item(conn, "local_addrs", 0), "192.0.2.10");
	assert_string_equal(list_item(conn, "remote_addrs", 0),
	    "198.51.100.11");
	assert_string_equal(list_item(conn, "remote_addrs", 1),
	    "198.51.100.12");
	assert_null(vici_get_str(conn, "childless"));
	assert_string_equal(vici_get_str(conn, "unique"), "never");
	assert_non_null(vici_find(vici_find(conn, "children"),
	    "198.18.1.0/24=198.18.2.0/24"));
	vici_msg_free(m);

	/* The tunnel's own stays as it was. */
	m = roundtrip(conn_build_load_conn(&cfg, GRGW_DP_LIBIPSEC, CONN_MAIN));
	conn = vici_find(m->root, GRGW_CONN_NAME);
	assert_string_equal(list_item(conn, "local_addrs", 0), "192.0.2.10");
	assert_string_equal(vici_get_str(conn, "unique"), "no");
	vici_msg_free(m);
}

/* The index of the pair of that name, or -1. */
static int
conn_pair_find(const struct grgw_config *cfg, const char *name)
{
	char buf[CONN_PAIR_NAME_MAX];
	int n;

	for (n = 0; conn_pair(cfg, n, buf, sizeof(buf), NULL, NULL) == 0; n++)
		if (strcmp(buf, name) == 0)
			return n;
	return -1;
}

/* The pairs: same family only, in the configuration's order, by name. */
static void
test_conn_pairs(void **state)
{
	struct grgw_config cfg;
	char name[CONN_PAIR_NAME_MAX];
	int li, ri, i;

	make_config(&cfg);
	assert_int_equal(conn_pair_count(&cfg), 2);
	assert_int_equal(conn_pair(&cfg, 0, name, sizeof(name), &li, &ri), 0);
	assert_string_equal(name, "198.18.1.0/24=198.18.2.0/24");
	assert_int_equal(li, 0);
	assert_int_equal(ri, 0);
	assert_int_equal(conn_pair(&cfg, 1, name, sizeof(name), &li, &ri), 0);
	assert_string_equal(name, "2001:db8:a::/64=2001:db8:b::/64");
	assert_int_equal(li, 1);
	assert_int_equal(ri, 1);
	assert_int_equal(conn_pair(&cfg, 2, name, sizeof(name), NULL, NULL),
	    -1);
	assert_int_equal(conn_pair_find(&cfg, "2001:db8:a::/64=2001:db8:b::/64"), 1);
	assert_int_equal(conn_pair_find(&cfg, "198.18.1.0/24=198.18.9.0/24"),
	    -1);
	assert_int_equal(conn_pair(&cfg, 0, name, 8, NULL, NULL), -1);

	/* A prefix added on one side: the pairs before it keep their names. */
	assert_int_equal(prefix_parse("198.18.3.0/24",
	    &cfg.peer.prefixes[cfg.peer.n_prefixes++]), 0);
	assert_int_equal(conn_pair_count(&cfg), 3);
	assert_int_equal(conn_pair_find(&cfg, "198.18.1.0/24=198.18.2.0/24"), 0);
	assert_int_equal(conn_pair_find(&cfg, "198.18.1.0/24=198.18.3.0/24"),
	    1);
	assert_int_equal(conn_pair_find(&cfg, "2001:db8:a::/64=2001:db8:b::/64"), 2);

	/* The longest names fit: 16 IPv6 prefixes each side. */
	cfg.site.n_prefixes = cfg.peer.n_prefixes = GRGW_MAX_PREFIXES;
	for (i = 0; i < GRGW_MAX_PREFIXES; i++) {
		assert_int_equal(prefix_parse(
		    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff00/120",
		    &cfg.site.prefixes[i]), 0);
		cfg.peer.prefixes[i] = cfg.site.prefixes[i];
	}
	assert_int_equal(conn_pair_count(&cfg),
	    GRGW_MAX_PREFIXES * GRGW_MAX_PREFIXES);
	assert_int_equal(conn_pair(&cfg, 255, name, sizeof(name), NULL, NULL),
	    0);
	assert_string_equal(name, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff00/120"
	    "=ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff00/120");
}

#define PEM_A	"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
#define PEM_B	"-----BEGIN CERTIFICATE-----\r\nBBBB\r\n-----END CERTIFICATE-----\r\n"

/* A CA bundle: each certificate loaded on its own (load-cert). */
static void
test_ca_bundle(void **state)
{
	static const char ca[] = "subject=CN=old\n" PEM_A "\nsubject=CN=new\n"
	    PEM_B;
	const uint8_t *one;
	size_t off = 0, len;

	assert_true(conn_pem_next_cert((const uint8_t *)ca, strlen(ca), &off,
	    &one, &len));
	assert_int_equal(len, strlen(PEM_A));
	assert_memory_equal(one, PEM_A, len);
	assert_true(conn_pem_next_cert((const uint8_t *)ca, strlen(ca), &off,
	    &one, &len));
	assert_int_equal(len, strlen(PEM_B));
	assert_memory_equal(one, PEM_B, len);
	assert_false(conn_pem_next_cert((const uint8_t *)ca, strlen(ca), &off,
	    &one, &len));
}

/* Count the certificates of the first len bytes of text (a heap copy of
 * exactly len bytes, so that ASan sees a read past the end). */
static int
count_certs(const char *text, size_t len, size_t *last_len)
{
	uint8_t *copy = malloc(len > 0 ? len : 1);
	const uint8_t *one;
	size_t off = 0, n1;
	int n = 0;

	assert_non_null(copy);
	memcpy(copy, text, len);
	*last_len = 0;
	while (conn_pem_next_cert(copy, len, &off, &one, &n1)) {
		assert_true(one >= copy && one + n1 <= copy + len);
		assert_true(off <= len);
		*last_len = n1;
		n++;
	}
	free(copy);
	return n;
}

static void
test_pem_next_cert(void **state)
{
	static const char two[] = "junk\n" PEM_A PEM_B "trailer\n";
	static const uint8_t der[] = { 0x30, 0x82, 0x01, 0x0a, 0x02 };
	const uint8_t *one;
	size_t off = 0, len, i;
	int n, prev = 0;

	assert_int_equal(count_certs(two, strlen(two), &len), 2);
	assert_int_equal(len, strlen(PEM_B));
	/* DER: one certificate, the whole. */
	assert_int_equal(conn_pem_next_cert(der, sizeof(der), &off, &one,
	    &len), 1);
	assert_ptr_equal(one, der);
	assert_int_equal(len, sizeof(der));
	assert_int_equal(conn_pem_next_cert(der, sizeof(der), &off, &one,
	    &len), 0);
	/* Other PEM, nothing, NULL: no certificate. */
	assert_int_equal(count_certs("-----BEGIN PRIVATE KEY-----\nAA\n", 31,
	    &len), 0);
	assert_int_equal(count_certs("", 0, &len), 0);
	off = 0;
	assert_int_equal(conn_pem_next_cert(NULL, 5, &off, &one, &len), 0);
	/* Cut at every byte: never more, and never fewer, as it grows. */
	for (i = 0; i <= strlen(two); i++) {
		n = count_certs(two, i, &len);
		assert_true(n >= prev - 1 && n <= 2);
		prev = n;
	}
	assert_int_equal(prev, 2);
}

static void
test_load_shared(void **state)
{
	const uint8_t key[32] = { 1, 2, 3, 0, 5 };	/* embedded NUL */
	const struct vici_node *data;
	struct grgw_config cfg;
	struct vici_msg *m;

	make_config(&cfg);
	m = roundtrip(conn_build_load_shared(&cfg, key, sizeof(key), 0));
	assert_string_equal(m->name, "load-shared");
	assert_string_equal(vici_get_str(m->root, "id"), "grgw-psk");
	assert_string_equal(vici_get_str(m->root, "type"), "IKE");
	data = vici_find(m->root, "data");
	assert_non_null(data);
	assert_int_equal(data->len, sizeof(key));
	assert_memory_equal(data->value, key, sizeof(key));
	assert_string_equal(list_item(m->root, "owners", 0), "site-a");
	assert_string_equal(list_item(m->root, "owners", 1), "site-b");
	vici_msg_free(m);
	/* The next key of a rotation: the peer's identity only. */
	m = roundtrip(conn_build_load_shared(&cfg, key, sizeof(key), 1));
	assert_string_equal(vici_get_str(m->root, "id"), "grgw-psk-next");
	assert_string_equal(list_item(m->root, "owners", 0), "site-b");
	assert_null(list_item(m->root, "owners", 1));
	vici_msg_free(m);
	m = roundtrip(conn_build_clear_creds());
	assert_string_equal(m->name, "clear-creds");
	vici_msg_free(m);
	m = roundtrip(conn_build_unload_conn(GRGW_VERIFY_NAME));
	assert_string_equal(m->name, "unload-conn");
	assert_string_equal(vici_get_str(m->root, "name"), GRGW_VERIFY_NAME);
	vici_msg_free(m);
}

static void
test_initiate_terminate_register(void **state)
{
	struct vici_msg *m;

	m = roundtrip(conn_build_initiate(GRGW_CONN_NAME, "198.18.1.0/24=198.18.2.0/24",
	    IKE_INITIATE_WAIT_MS));
	assert_string_equal(m->name, "initiate");
	assert_string_equal(vici_get_str(m->root, "timeout"), "40000");
	assert_string_equal(vici_get_str(m->root, "child"), "198.18.1.0/24=198.18.2.0/24");
	assert_string_equal(vici_get_str(m->root, "ike"), GRGW_CONN_NAME);
	assert_non_null(vici_get_str(m->root, "loglevel"));
	vici_msg_free(m);
	/* An IKE_SA alone (the verification). */
	m = roundtrip(conn_build_initiate(GRGW_VERIFY_NAME, NULL, 20000));
	assert_null(vici_get_str(m->root, "child"));
	assert_string_equal(vici_get_str(m->root, "ike"), GRGW_VERIFY_NAME);
	vici_msg_free(m);
	m = roundtrip(conn_build_terminate(GRGW_CONN_NAME));
	assert_string_equal(m->name, "terminate");
	assert_string_equal(vici_get_str(m->root, "ike"), GRGW_CONN_NAME);
	vici_msg_free(m);
	m = roundtrip(conn_build_register("ike-updown"));
	assert_int_equal(m->type, VICI_EVENT_REGISTER);
	assert_string_equal(m->name, "ike-updown");
	assert_null(m->root->child);
	vici_msg_free(m);
}

static void
add_est(struct ike_sas *s, unsigned id, int ours, const char *spi)
{
	struct ike_sa_ref *r = &s->est[s->n_est++];

	r->uniqueid = id;
	r->we_initiated = ours;
	r->n_child = 2;
	snprintf(r->initiator_spi, sizeof(r->initiator_spi), "%s", spi);
	s->ike_established++;
}

/* Both ends see the same SAs from their side: they agree on the keeper. */
static void
test_duplicate_ike_sas(void **state)
{
	struct ike_sas a, b;
	struct vici_msg *m;

	memset(&a, 0, sizeof(a));
	assert_int_equal(conn_duplicate_to_delete(&a, 1), -1);
	add_est(&a, 1, 1, "00aa000000000001");
	assert_int_equal(conn_duplicate_to_delete(&a, 1), -1);

	/* One each way: the first site's stays, the second deletes its own. */
	add_est(&a, 2, 0, "00bb000000000002");
	memset(&b, 0, sizeof(b));
	add_est(&b, 7, 0, "00aa000000000001");
	add_est(&b, 8, 1, "00bb000000000002");
	assert_int_equal(conn_duplicate_to_delete(&a, 1), -1);
	assert_int_equal(conn_duplicate_to_delete(&b, 0), 1);

	/* Order in the listing does not matter. */
	memset(&b, 0, sizeof(b));
	add_est(&b, 8, 1, "00bb000000000002");
	add_est(&b, 7, 0, "00aa000000000001");
	assert_int_equal(conn_duplicate_to_delete(&b, 0), 0);

	/* Two by the first site: it keeps the lower SPI, deletes the other;
	 * the second site deletes nothing (it initiated neither). */
	memset(&a, 0, sizeof(a));
	add_est(&a, 3, 1, "ff00000000000000");
	add_est(&a, 4, 1, "0100000000000000");
	assert_int_equal(conn_duplicate_to_delete(&a, 1), 0);
	memset(&b, 0, sizeof(b));
	add_est(&b, 5, 0, "ff00000000000000");
	add_est(&b, 6, 0, "0100000000000000");
	assert_int_equal(conn_duplicate_to_delete(&b, 0), -1);

	/* Only the second site's: it keeps the lowest SPI of them. */
	memset(&b, 0, sizeof(b));
	add_est(&b, 5, 1, "ff00000000000000");
	add_est(&b, 6, 1, "0100000000000000");
	assert_int_equal(conn_duplicate_to_delete(&b, 0), 0);

	/* A verification IKE_SA (no CHILD_SA) is nobody's duplicate. */
	memset(&b, 0, sizeof(b));
	add_est(&b, 5, 0, "ff00000000000000");
	add_est(&b, 6, 1, "0100000000000000");
	b.est[1].n_child = 0;
	assert_int_equal(conn_duplicate_to_delete(&b, 0), -1);
	b.est[1].n_child = 1;
	b.est[0].n_child = 0;
	assert_int_equal(conn_duplicate_to_delete(&b, 0), -1);

	/* A handover's IKE_SA beside the tunnel's is not a duplicate. */
	memset(&b, 0, sizeof(b));
	add_est(&b, 5, 0, "ff00000000000000");
	add_est(&b, 6, 1, "0100000000000000");
	b.est[1].conn = CONN_GATEWAYS;
	assert_int_equal(conn_duplicate_to_delete(&b, 0), -1);
	b.est[1].conn = CONN_READY;
	assert_int_equal(conn_duplicate_to_delete(&b, 0), -1);
	b.est[1].conn = CONN_MAIN;
	assert_int_equal(conn_duplicate_to_delete(&b, 0), 1);

	m = roundtrip(conn_build_terminate_ike(42));
	assert_string_equal(m->name, "terminate");
	assert_string_equal(vici_get_str(m->root, "ike-id"), "42");
	assert_null(vici_get_str(m->root, "ike"));
	vici_msg_free(m);
}

static void
add_child(struct ike_sas *s, unsigned id, const char *name, int installed)
{
	struct child_sa_ref *c = &s->child[s->n_child++];

	c->uniqueid = id;
	c->installed = installed;
	snprintf(c->name, sizeof(c->name), "%s", name);
}

/* Two INSTALLED CHILD_SAs of one pair: the newer goes; a rekey is not a
 * duplicate. */
static void
test_duplicate_child_sas(void **state)
{
	struct ike_sas s;

	memset(&s, 0, sizeof(s));
	assert_int_equal(conn_child_duplicate(&s), -1);
	add_child(&s, 5, "198.18.1.0/24=198.18.2.0/24", 1);
	add_child(&s, 6, "2001:db8:a::/64=2001:db8:b::/64", 1);
	assert_int_equal(conn_child_duplicate(&s), -1);
	/* Being rekeyed: the new one is not INSTALLED yet, then the old
	 * one is not any more. */
	add_child(&s, 9, "198.18.1.0/24=198.18.2.0/24", 0);
	assert_int_equal(conn_child_duplicate(&s), -1);
	s.child[2].installed = 1;
	s.child[0].installed = 0;
	assert_int_equal(conn_child_duplicate(&s), -1);
	/* Both installed: the newer, wherever it is listed. */
	s.child[0].installed = 1;
	assert_int_equal(conn_child_duplicate(&s), 2);
	s.child[0].uniqueid = 12;
	assert_int_equal(conn_child_duplicate(&s), 0);
}

/* Lifetimes: the defaults, and [ipsec] values as charon gets them. */
static void
test_load_conn_lifetimes(void **state)
{
	const struct vici_node *conn, *child;
	struct grgw_config cfg;
	struct vici_msg *m;

	make_config(&cfg);
	m = roundtrip(conn_build_load_conn(&cfg, GRGW_DP_LIBIPSEC, CONN_MAIN));
	conn = vici_find(m->root, GRGW_CONN_NAME);
	child = vici_find(vici_find(conn, "children"), "198.18.1.0/24=198.18.2.0/24");
	assert_string_equal(vici_get_str(conn, "rekey_time"), "14400s");
	assert_string_equal(vici_get_str(conn, "over_time"), "1440s");
	assert_string_equal(vici_get_str(conn, "rand_time"), "720s");
	assert_string_equal(vici_get_str(conn, "reauth_time"), "0");
	assert_string_equal(vici_get_str(child, "rekey_time"), "3600s");
	assert_string_equal(vici_get_str(child, "life_time"), "3960s");
	assert_string_equal(vici_get_str(child, "rand_time"), "180s");
	vici_msg_free(m);

	/* The later-named site: after the other's window, same hard life. */
	strcpy(cfg.site.name, "site-b");
	strcpy(cfg.peer.name, "site-a");
	m = roundtrip(conn_build_load_conn(&cfg, GRGW_DP_LIBIPSEC, CONN_MAIN));
	conn = vici_find(m->root, GRGW_CONN_NAME);
	child = vici_find(vici_find(conn, "children"), "198.18.1.0/24=198.18.2.0/24");
	assert_string_equal(vici_get_str(conn, "rekey_time"), "15120s");
	assert_string_equal(vici_get_str(conn, "over_time"), "720s");
	assert_string_equal(vici_get_str(conn, "rand_time"), "0s");
	assert_string_equal(vici_get_str(child, "rekey_time"), "3780s");
	assert_string_equal(vici_get_str(child, "life_time"), "3960s");
	assert_string_equal(vici_get_str(child, "rand_time"), "0s");
	vici_msg_free(m);
	strcpy(cfg.site.name, "site-a");
	strcpy(cfg.peer.name, "site-b");

	cfg.ipsec.ike_rekey_s = 30;
	cfg.ipsec.ike_life_s = 35;
	cfg.ipsec.child_rekey_s = 10;
	cfg.ipsec.child_life_s = 12;
	m = roundtrip(conn_build_load_conn(&cfg, GRGW_DP_KERNEL, CONN_MAIN));
	conn = vici_find(m->root, GRGW_CONN_NAME);
	child = vici_find(vici_find(conn, "children"), "198.18.1.0/24=198.18.2.0/24");
	assert_string_equal(vici_get_str(conn, "rekey_time"), "30s");
	assert_string_equal(vici_get_str(conn, "over_time"), "5s");
	assert_string_equal(vici_get_str(conn, "rand_time"), "2s");
	assert_string_equal(vici_get_str(child, "rekey_time"), "10s");
	assert_string_equal(vici_get_str(child, "life_time"), "12s");
	assert_string_equal(vici_get_str(child, "rand_time"), "1s");
	vici_msg_free(m);
}

/* The two ends' rekey windows never overlap, and both end by the life. */
static void
test_rekey_timers(void **state)
{
	struct conn_rekey_timers a, b;
	uint32_t rekey, life;

	for (rekey = 5; rekey < 200; rekey += 7)
		for (life = rekey + 2; life < rekey * 3; life += 3) {
			conn_rekey_timers(rekey, life, 0, &a);
			conn_rekey_timers(rekey, life, 1, &b);
			assert_int_equal(a.life, life);
			assert_int_equal(b.life, life);
			/* a fires in [rekey - rand, rekey], b at b.rekey */
			assert_true(a.rand <= a.rekey);
			assert_true(a.rekey < b.rekey - b.rand);
			assert_true(b.rekey < life);
			assert_int_equal(a.rekey, rekey);
		}
	/* No margin to split: charon's own jitter at both ends. */
	conn_rekey_timers(10, 11, 0, &a);
	conn_rekey_timers(10, 11, 1, &b);
	assert_int_equal(a.rekey, 10);
	assert_int_equal(b.rekey, 10);
	assert_int_equal(b.rand, 1);
	(void)state;
}

static void
test_classify_log(void **state)
{
	assert_non_null(strstr(conn_classify_log(
	    "subject certificate invalid (valid from Jan 01 00:00:00 2020 to "
	    "Jan 01 00:00:00 2021)"), "peer's certificate expired"));
	assert_non_null(strstr(conn_classify_log(
	    "issuer certificate invalid (valid from Jan 01 00:00:00 2020 to "
	    "Jan 01 00:00:00 2021)"), "CA certificate expired"));
	assert_int_equal(strncmp(conn_classify_log(
	    "subject certificate invalid (valid from x to y)"),
	    "authentication failed", 21), 0);
	assert_string_equal(conn_classify_log(
	    "received AUTHENTICATION_FAILED notify error"),
	    "authentication failed");
	assert_string_equal(conn_classify_log(
	    "tried 1 shared key for 'site-b' - 'site-a', but MAC mismatched"),
	    "authentication failed");
	assert_string_equal(conn_classify_log(
	    "giving up after 4 retransmits"), "peer not responding");
	assert_non_null(strstr(conn_classify_log(
	    "received TS_UNACCEPTABLE notify, no CHILD_SA built"),
	    "traffic selectors"));
	assert_null(conn_classify_log("retransmit 1 of request with "
	    "message ID 0"));
	assert_null(conn_classify_log("establishing CHILD_SA grgw{1}"));
	assert_null(conn_classify_log(NULL));
}

static void
test_charon_conf(void **state)
{
	struct grgw_config cfg;
	char buf[4096];
	int n;

	make_config(&cfg);
	n = charon_conf_render(&cfg, "/run/grgw/site-a", GRGW_DP_LIBIPSEC,
	    buf, sizeof(buf));
	assert_true(n > 0);
	assert_non_null(strstr(buf, " kernel-libipsec "));
	assert_non_null(strstr(buf, "install_routes = yes"));
	assert_non_null(strstr(buf, " kdf "));	/* key derivation, 5.9.8 */
	assert_non_null(strstr(buf,
	    "socket = unix:///run/grgw/site-a/charon.vici"));
	assert_non_null(strstr(buf, "path = /run/grgw/site-a/charon.log\n"
	    "\t\t\ttime_format = %F %T\n"));
	assert_non_null(strstr(buf, "flush_line = yes"));
	n = charon_conf_render(&cfg, "/run/grgw/site-a", GRGW_DP_KERNEL,
	    buf, sizeof(buf));
	assert_true(n > 0);
	assert_null(strstr(buf, " kernel-libipsec "));
	assert_non_null(strstr(buf, "install_routes = no"));
	assert_int_equal(charon_conf_render(&cfg, "/run/grgw/site-a",
	    GRGW_DP_KERNEL, buf, 64), -1);
}

/* Deaths spaced out restart at once; a tight loop backs off, then eases. */
static void
test_charon_crash_loop(void **state)
{
	struct charon_deaths d;
	time_t t = 1000;
	int i;

	memset(&d, 0, sizeof(d));
	/* Five deaths within a minute (every 10 s): never a loop. */
	for (i = 0; i < 5; i++, t += 10) {
		assert_int_equal(charon_deaths_record(&d, t), 0);
		assert_false(charon_deaths_loop(&d, t));
	}
	/* Nine quick ones more: still at once, one short of a loop. */
	memset(&d, 0, sizeof(d));
	for (i = 0; i < CHARON_LOOP_DEATHS - 1; i++)
		assert_int_equal(charon_deaths_record(&d, t), 0);
	assert_false(charon_deaths_loop(&d, t));
	/* The tenth within the window: a crash loop, and waits double. */
	assert_int_equal(charon_deaths_record(&d, t + 1),
	    CHARON_BACKOFF_MIN_MS);
	assert_true(charon_deaths_loop(&d, t + 1));
	assert_int_equal(charon_deaths_record(&d, t + 2),
	    CHARON_BACKOFF_MIN_MS * 2);
	assert_int_equal(charon_deaths_record(&d, t + 3),
	    CHARON_BACKOFF_MIN_MS * 4);
	for (i = 0; i < 20; i++)
		charon_deaths_record(&d, t + 4);
	assert_int_equal(d.backoff_ms, CHARON_BACKOFF_MAX_MS);
	/* Quiet for a window: no longer a loop, the next death is at once. */
	assert_false(charon_deaths_loop(&d, t + 4 + CHARON_LOOP_WINDOW_S));
	assert_int_equal(charon_deaths_record(&d,
	    t + 4 + CHARON_LOOP_WINDOW_S), 0);
	/* Ten deaths spread over just more than the window: no loop. */
	memset(&d, 0, sizeof(d));
	for (i = 0; i < CHARON_LOOP_DEATHS; i++)
		assert_int_equal(charon_deaths_record(&d, t + i *
		    (CHARON_LOOP_WINDOW_S / (CHARON_LOOP_DEATHS - 1) + 1)), 0);
}

/*
 * A certificate made with strongSwan's pki: CN=site-a, valid from
 * 2020-01-01 to 2021-01-01 (UTC).
 */
static const char CERT_PEM[] =
	"-----BEGIN CERTIFICATE-----\n"
	"MIIBXzCCAQSgAwIBAgIIPy3c7w0HXEMwCgYIKoZIzj0EAwIwFjEUMBIGA1UEAxML\n"
	"Z3JndyBsYWIgQ0EwHhcNMjAwMTAxMDAwMDAwWhcNMjEwMTAxMDAwMDAwWjARMQ8w\n"
	"DQYDVQQDEwZzaXRlLWEwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAASRKaskOIn8\n"
	"puYn6BaQvZKDebmbkQsDt04gsq2si3IMKlXn3xciDTO/owQjHIQr+kBvLLRyFajI\n"
	"2RRT4O57nRW3o0EwPzAfBgNVHSMEGDAWgBTx4dSg0t6iEiWPM5+14IXjRMiM2TAc\n"
	"BgNVHREEFTATghFndy5zaXRlLWEuZXhhbXBsZTAKBggqhkjOPQQDAgNJADBGAiEA\n"
	"3VI61bPq0Lv+8Y2akIQ28UP9xXdXWJpfXGzLyVSTeV0CIQCoYbCaNCLbeOyqcFed\n"
	"j9ndzl7FMc+PwiCSFHX1wWMVzg==\n"
	"-----END CERTIFICATE-----\n"
;
#define CERT_NOT_BEFORE	1577836800
#define CERT_NOT_AFTER	1609459200

static void
test_cert_parse(void **state)
{
	struct cert_info ci;
	char err[128], *der;
	size_t len = strlen(CERT_PEM), i;

	assert_int_equal(cert_parse((const uint8_t *)CERT_PEM, len, &ci, err,
	    sizeof(err)), 0);
	assert_int_equal(ci.not_before, CERT_NOT_BEFORE);
	assert_int_equal(ci.not_after, CERT_NOT_AFTER);
	assert_string_equal(ci.subject, "/CN=site-a");
	/* Every truncation is refused, and nothing past len is read. */
	for (i = 0; i + 30 < len; i++) {
		der = malloc(i + 1);
		assert_non_null(der);
		memcpy(der, CERT_PEM, i);
		assert_int_equal(cert_parse((const uint8_t *)der, i, &ci, err,
		    sizeof(err)), -1);
		free(der);
	}
	assert_non_null(strstr(err, "not an X.509 certificate"));
	assert_int_equal(cert_parse((const uint8_t *)"junk", 4, &ci, err,
	    sizeof(err)), -1);

	assert_int_equal(cert_parse((const uint8_t *)CERT_PEM, len, &ci, err,
	    sizeof(err)), 0);
	assert_int_equal(cert_state_at(&ci, CERT_NOT_BEFORE - 1, 30),
	    CERT_NOT_YET_VALID);
	assert_int_equal(cert_state_at(&ci, CERT_NOT_BEFORE, 30), CERT_VALID);
	assert_int_equal(cert_state_at(&ci, CERT_NOT_AFTER - 30 * 86400 - 1,
	    30), CERT_VALID);
	assert_int_equal(cert_state_at(&ci, CERT_NOT_AFTER - 30 * 86400, 30),
	    CERT_EXPIRES_SOON);
	assert_int_equal(cert_state_at(&ci, CERT_NOT_AFTER - 1, 30),
	    CERT_EXPIRES_SOON);
	assert_int_equal(cert_state_at(&ci, CERT_NOT_AFTER, 30),
	    CERT_EXPIRED);
	assert_string_equal(cert_state_name(CERT_EXPIRES_SOON),
	    "expires-soon");
}

/* The certificates in status (JSON, text) and /metrics. */
static void
test_status_certs(void **state)
{
	struct grgw_config cfg;
	struct status_view v;
	struct cert_info ci;
	struct strbuf sb;
	char err[128];

	make_config(&cfg);
	cfg.auth = GRGW_AUTH_CERT;
	cfg.cert_warn_days = 30;
	assert_int_equal(cert_parse((const uint8_t *)CERT_PEM,
	    strlen(CERT_PEM), &ci, err, sizeof(err)), 0);
	memset(&v, 0, sizeof(v));
	v.cfg = &cfg;
	v.daemon_running = 1;
	v.cert_local = &ci;
	v.cert_ca = &ci;
	v.now = CERT_NOT_AFTER - 10 * 86400;
	strbuf_init(&sb);
	status_render_json(&v, &sb);
	assert_false(sb.failed);
	assert_non_null(strstr(sb.s, "\"certificates\":{\"warn_days\":30,"
	    "\"local\":{\"subject\":\"/CN=site-a\",\"not_before\":1577836800,"
	    "\"not_after\":1609459200,\"expires\":\"2021-01-01T00:00:00Z\","
	    "\"days_left\":10,\"state\":\"expires-soon\"}"));
	strbuf_free(&sb);
	strbuf_init(&sb);
	status_render_text(&v, &sb);
	assert_non_null(strstr(sb.s, "WARNING: expires in 10 days"));
	strbuf_free(&sb);
	strbuf_init(&sb);
	metrics_render(&v, NULL, &sb);
	assert_non_null(strstr(sb.s, "grgw_cert_expiry_timestamp_seconds{"
	    "site=\"site-a\",certificate=\"local\"} 1609459200\n"));
	assert_non_null(strstr(sb.s, "grgw_cert_expiry_timestamp_seconds{"
	    "site=\"site-a\",certificate=\"ca\"} 1609459200\n"));
	assert_non_null(strstr(sb.s, "grgw_cert_warning{site=\"site-a\","
	    "certificate=\"local\"} 1\n"));
	strbuf_free(&sb);

	v.now = CERT_NOT_AFTER;
	strbuf_init(&sb);
	status_render_text(&v, &sb);
	assert_non_null(strstr(sb.s, "ERROR: expired"));
	strbuf_free(&sb);

	/* A PSK: no certificates anywhere. */
	cfg.auth = GRGW_AUTH_PSK;
	v.cert_local = v.cert_ca = NULL;
	strbuf_init(&sb);
	status_render_json(&v, &sb);
	assert_non_null(strstr(sb.s, "\"certificates\":null"));
	strbuf_free(&sb);
	strbuf_init(&sb);
	metrics_render(&v, NULL, &sb);
	assert_null(strstr(sb.s, "grgw_cert_"));
	strbuf_free(&sb);
}

static void
test_status_json(void **state)
{
	struct grgw_config cfg;
	struct status_view v;
	struct strbuf sb;

	make_config(&cfg);
	memset(&v, 0, sizeof(v));
	v.cfg = &cfg;
	v.daemon_running = 1;
	v.daemon_pid = 42;
	v.dataplane = GRGW_DP_LIBIPSEC;
	v.tunnel = TUNNEL_UP;
	v.last_error = "bad \"quote\"\n\x01";
	strbuf_init(&sb);
	status_render_json(&v, &sb);
	assert_false(sb.failed);
	assert_non_null(strstr(sb.s, "\"tunnel\":\"up\""));
	assert_non_null(strstr(sb.s, "\"dataplane\":\"libipsec\""));
	assert_non_null(strstr(sb.s, "\"daemon\":{\"running\":true,\"pid\":42"));
	assert_non_null(strstr(sb.s,
	    "\"last_error\":\"bad \\\"quote\\\"\\n\\u0001\""));
	assert_non_null(strstr(sb.s,
	    "\"remote_prefixes\":[\"198.18.2.0/24\",\"2001:db8:b::/64\"]"));
	assert_non_null(strstr(sb.s, "\"etcd\":null"));
	assert_non_null(strstr(sb.s, "\"crash_loop\":false,"
	    "\"restart_delay_ms\":0}"));
	strbuf_free(&sb);

	/* charon in a crash loop: both renderings say when it restarts. */
	v.charon_restarts = 12;
	v.charon_crash_loop = 1;
	v.charon_restart_delay_ms = 1800;
	strbuf_init(&sb);
	status_render_json(&v, &sb);
	assert_non_null(strstr(sb.s, "\"charon\":{\"running\":false,"
	    "\"pid\":0,\"restarts\":12,\"crash_loop\":true,"
	    "\"restart_delay_ms\":1800}"));
	strbuf_free(&sb);
	strbuf_init(&sb);
	status_render_text(&v, &sb);
	assert_non_null(strstr(sb.s, "  charon:     not running (12 restarts); "
	    "crash loop: restarting in 1800 ms\n"));
	strbuf_free(&sb);
	v.charon_running = 1;
	v.charon_pid = 77;
	v.charon_crash_loop = 0;
	v.charon_restart_delay_ms = 0;
	strbuf_init(&sb);
	status_render_text(&v, &sb);
	assert_non_null(strstr(sb.s, "  charon:     running (pid 77, 12 "
	    "restarts)\n"));
	strbuf_free(&sb);

	/* etcd on and failing: the JSON and the text say why. */
	snprintf(cfg.feeds.etcd_endpoint, sizeof(cfg.feeds.etcd_endpoint),
	    "http://127.0.0.1:4000");
	snprintf(cfg.feeds.etcd_key, sizeof(cfg.feeds.etcd_key), "/k");
	v.etcd_said = 1;
	v.etcd_error = "put: no answer within 1.0 s";
	strbuf_init(&sb);
	status_render_json(&v, &sb);
	assert_non_null(strstr(sb.s, "\"etcd\":{\"endpoint\":"
	    "\"http://127.0.0.1:4000\",\"key\":\"/k\",\"healthy\":false,"
	    "\"error\":\"put: no answer within 1.0 s\"}"));
	strbuf_free(&sb);
	strbuf_init(&sb);
	status_render_text(&v, &sb);
	assert_non_null(strstr(sb.s, "  etcd:       http://127.0.0.1:4000 key "
	    "/k: failing (put: no answer within 1.0 s)\n"));
	strbuf_free(&sb);
	v.etcd_healthy = 1;
	v.etcd_error = NULL;
	strbuf_init(&sb);
	status_render_text(&v, &sb);
	assert_non_null(strstr(sb.s, "/k: published\n"));
	strbuf_free(&sb);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load_conn_libipsec),
		cmocka_unit_test(test_load_conn_kernel),
		cmocka_unit_test(test_load_conn_kernel_gateways),
		cmocka_unit_test(test_load_conn_cert),
		cmocka_unit_test(test_load_conn_handover),
		cmocka_unit_test(test_ca_bundle),
		cmocka_unit_test(test_conn_pairs),
		cmocka_unit_test(test_pem_next_cert),
		cmocka_unit_test(test_load_conn_lifetimes),
		cmocka_unit_test(test_rekey_timers),
		cmocka_unit_test(test_load_shared),
		cmocka_unit_test(test_initiate_terminate_register),
		cmocka_unit_test(test_duplicate_ike_sas),
		cmocka_unit_test(test_duplicate_child_sas),
		cmocka_unit_test(test_classify_log),
		cmocka_unit_test(test_charon_conf),
		cmocka_unit_test(test_charon_crash_loop),
		cmocka_unit_test(test_status_json),
		cmocka_unit_test(test_cert_parse),
		cmocka_unit_test(test_status_certs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
