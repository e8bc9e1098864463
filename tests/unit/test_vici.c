/*
 * VICI codec and client tests.
 *
 * Builder output is compared with packets written out by hand from the
 * protocol description, the framer is fed the same stream cut at every
 * byte and in small pieces, the parser is fed a table of malformed
 * packets, and the client talks to a small fake charon that runs on the
 * same event loop.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "grgw.h"
#include "ipsec/vici.h"

#define BYTES(...)	(const uint8_t[]){ __VA_ARGS__ }, \
			sizeof((const uint8_t[]){ __VA_ARGS__ })

/* Finish a builder and compare with the expected packet. */
static void
assert_built(struct vici_builder *b, const uint8_t *want, size_t wantlen)
{
	const uint8_t *out;
	size_t	 len;

	assert_int_equal(vici_builder_finish(b, &out, &len), 0);
	assert_int_equal(len, wantlen);
	assert_memory_equal(out, want, wantlen);
}

static void
assert_build_fails(struct vici_builder *b)
{
	const uint8_t *out;
	size_t	 len;

	assert_int_equal(vici_builder_finish(b, &out, &len), -1);
	vici_builder_free(b);
}

/* ---- builder ---------------------------------------------------------- */

static void
test_type_is_named(void **state)
{
	assert_true(vici_type_is_named(VICI_CMD_REQUEST));
	assert_false(vici_type_is_named(VICI_CMD_RESPONSE));
	assert_false(vici_type_is_named(VICI_CMD_UNKNOWN));
	assert_true(vici_type_is_named(VICI_EVENT_REGISTER));
	assert_true(vici_type_is_named(VICI_EVENT_UNREGISTER));
	assert_false(vici_type_is_named(VICI_EVENT_CONFIRM));
	assert_false(vici_type_is_named(VICI_EVENT_UNKNOWN));
	assert_true(vici_type_is_named(VICI_EVENT));
	assert_false(vici_type_is_named(8));
}

/* The encoding example of the protocol description, as a response. */
static const uint8_t readme_example[] = {
	0, 0, 0, 78,
	VICI_CMD_RESPONSE,
	3, 4, 'k', 'e', 'y', '1', 0, 6, 'v', 'a', 'l', 'u', 'e', '1',
	1, 8, 's', 'e', 'c', 't', 'i', 'o', 'n', '1',
	1, 11, 's', 'u', 'b', '-', 's', 'e', 'c', 't', 'i', 'o', 'n',
	3, 4, 'k', 'e', 'y', '2', 0, 6, 'v', 'a', 'l', 'u', 'e', '2',
	2,
	4, 5, 'l', 'i', 's', 't', '1',
	5, 0, 5, 'i', 't', 'e', 'm', '1',
	5, 0, 5, 'i', 't', 'e', 'm', '2',
	6,
	2,
};

static struct vici_builder *
build_readme_example(void)
{
	struct vici_builder *b;

	b = vici_builder_new(VICI_CMD_RESPONSE, NULL);
	assert_non_null(b);
	vici_add_kv_str(b, "key1", "value1");
	vici_begin_section(b, "section1");
	vici_begin_section(b, "sub-section");
	vici_add_kv_str(b, "key2", "value2");
	vici_end_section(b);
	vici_begin_list(b, "list1");
	vici_add_list_item_str(b, "item1");
	vici_add_list_item_str(b, "item2");
	vici_end_list(b);
	vici_end_section(b);
	return b;
}

static void
test_builder_readme_example(void **state)
{
	struct vici_builder *b = build_readme_example();

	assert_built(b, readme_example, sizeof(readme_example));
	/* finish is idempotent */
	assert_built(b, readme_example, sizeof(readme_example));
	vici_builder_free(b);
}

/* A PSK load with binary key bytes (NUL and high bits) and owner list. */
static const uint8_t load_shared_pkt[] = {
	0, 0, 0, 78,
	VICI_CMD_REQUEST,
	11, 'l', 'o', 'a', 'd', '-', 's', 'h', 'a', 'r', 'e', 'd',
	3, 2, 'i', 'd', 0, 9, 'g', 'r', 'g', 'w', '-', 'p', 's', 'k', '1',
	3, 4, 't', 'y', 'p', 'e', 0, 3, 'I', 'K', 'E',
	3, 4, 'd', 'a', 't', 'a', 0, 4, 0x00, 0xff, 0x10, 0x80,
	4, 6, 'o', 'w', 'n', 'e', 'r', 's',
	5, 0, 6, 's', 'i', 't', 'e', '-', 'a',
	5, 0, 6, 's', 'i', 't', 'e', '-', 'b',
	6,
};

static const uint8_t psk_bytes[] = { 0x00, 0xff, 0x10, 0x80 };

static struct vici_builder *
build_load_shared(void)
{
	struct vici_builder *b;

	b = vici_builder_new(VICI_CMD_REQUEST, "load-shared");
	assert_non_null(b);
	vici_add_kv_str(b, "id", "grgw-psk1");
	vici_add_kv_str(b, "type", "IKE");
	vici_add_kv(b, "data", psk_bytes, sizeof(psk_bytes));
	vici_begin_list(b, "owners");
	vici_add_list_item_str(b, "site-a");
	vici_add_list_item(b, "site-b", 6);
	vici_end_list(b);
	return b;
}

static void
test_builder_load_shared(void **state)
{
	struct vici_builder *b = build_load_shared();

	assert_built(b, load_shared_pkt, sizeof(load_shared_pkt));
	vici_builder_free(b);
}

static void
test_builder_load_conn(void **state)
{
	static const uint8_t want[] = {
		0, 0, 0, 108,
		VICI_CMD_REQUEST,
		9, 'l', 'o', 'a', 'd', '-', 'c', 'o', 'n', 'n',
		1, 2, 'g', 'w',
		3, 7, 'v', 'e', 'r', 's', 'i', 'o', 'n', 0, 1, '2',
		3, 8, 'r', 'e', 'k', 'e', 'y', '_', 'i', 'd', 0, 10,
		    '4', '2', '9', '4', '9', '6', '7', '2', '9', '6',
		4, 11, 'l', 'o', 'c', 'a', 'l', '_', 'a', 'd', 'd', 'r', 's',
		5, 0, 9, '1', '9', '2', '.', '0', '.', '2', '.', '1',
		6,
		1, 5, 'l', 'o', 'c', 'a', 'l',
		3, 4, 'a', 'u', 't', 'h', 0, 3, 'p', 's', 'k',
		2,
		4, 5, 'e', 'm', 'p', 't', 'y',
		6,
		3, 1, 'z', 0, 0,
		2,
	};
	struct vici_builder *b;

	b = vici_builder_new(VICI_CMD_REQUEST, "load-conn");
	vici_begin_section(b, "gw");
	vici_add_kv_uint(b, "version", 2);
	vici_add_kv_uint(b, "rekey_id", 4294967296ULL);
	vici_begin_list(b, "local_addrs");
	vici_add_list_item_str(b, "192.0.2.1");
	vici_end_list(b);
	vici_begin_section(b, "local");
	vici_add_kv_str(b, "auth", "psk");
	vici_end_section(b);
	vici_begin_list(b, "empty");
	vici_end_list(b);
	vici_add_kv(b, "z", NULL, 0);
	vici_end_section(b);
	assert_built(b, want, sizeof(want));
	vici_builder_free(b);
}

static void
test_builder_unnamed_and_empty(void **state)
{
	struct vici_builder *b;

	b = vici_builder_new(VICI_CMD_REQUEST, "version");
	assert_built(b, BYTES(0, 0, 0, 9, 0, 7,
	    'v', 'e', 'r', 's', 'i', 'o', 'n'));
	vici_builder_free(b);

	b = vici_builder_new(VICI_EVENT_REGISTER, "control-log");
	assert_built(b, BYTES(0, 0, 0, 13, 3, 11,
	    'c', 'o', 'n', 't', 'r', 'o', 'l', '-', 'l', 'o', 'g'));
	vici_builder_free(b);

	b = vici_builder_new(VICI_EVENT_CONFIRM, NULL);
	assert_built(b, BYTES(0, 0, 0, 1, 5));
	vici_builder_free(b);
}

static void
test_builder_limits(void **state)
{
	struct vici_builder *b;
	char	 name[300];
	uint8_t	*big;
	int	 i;

	/* 255-byte names pass, 256 do not. */
	memset(name, 'n', sizeof(name));
	name[255] = '\0';
	b = vici_builder_new(VICI_CMD_REQUEST, name);
	vici_add_kv_str(b, name, "v");
	vici_begin_section(b, name);
	vici_end_section(b);
	vici_begin_list(b, name);
	vici_end_list(b);
	{
		const uint8_t *out;
		size_t	 len;

		assert_int_equal(vici_builder_finish(b, &out, &len), 0);
		assert_int_equal(len, 4 + 1 + 256 + (1 + 256 + 3) +
		    (1 + 256 + 1) + (1 + 256 + 1));
	}
	vici_builder_free(b);
	name[255] = 'n';
	name[256] = '\0';
	assert_build_fails(vici_builder_new(VICI_CMD_REQUEST, name));
	b = vici_builder_new(VICI_CMD_RESPONSE, NULL);
	vici_add_kv_str(b, name, "v");
	assert_build_fails(b);
	b = vici_builder_new(VICI_CMD_RESPONSE, NULL);
	vici_begin_section(b, name);
	vici_end_section(b);
	assert_build_fails(b);
	b = vici_builder_new(VICI_CMD_RESPONSE, NULL);
	vici_begin_list(b, name);
	vici_end_list(b);
	assert_build_fails(b);

	/* 65535-byte values pass, 65536 do not. */
	big = calloc(1, 65536);
	assert_non_null(big);
	b = vici_builder_new(VICI_CMD_RESPONSE, NULL);
	vici_add_kv(b, "k", big, 65535);
	vici_begin_list(b, "l");
	vici_add_list_item(b, big, 65535);
	vici_end_list(b);
	{
		const uint8_t *out;
		size_t	 len;

		assert_int_equal(vici_builder_finish(b, &out, &len), 0);
		assert_int_equal(len, 4 + 1 + (1 + 1 + 1 + 2 + 65535) +
		    (1 + 1 + 1) + (1 + 2 + 65535) + 1);
		assert_int_equal(out[4 + 1 + 3], 0xff);
		assert_int_equal(out[4 + 1 + 4], 0xff);
	}
	vici_builder_free(b);
	b = vici_builder_new(VICI_CMD_RESPONSE, NULL);
	vici_add_kv(b, "k", big, 65536);
	assert_build_fails(b);
	b = vici_builder_new(VICI_CMD_RESPONSE, NULL);
	vici_begin_list(b, "l");
	vici_add_list_item(b, big, 65536);
	vici_end_list(b);
	assert_build_fails(b);

	/* The whole packet may not outgrow what a peer accepts. */
	b = vici_builder_new(VICI_CMD_RESPONSE, NULL);
	for (i = 0; i < 9; i++)
		vici_add_kv(b, "k", big, 65535);
	assert_build_fails(b);
	free(big);

	/* Nesting up to the parser's limit, not beyond. */
	b = vici_builder_new(VICI_CMD_RESPONSE, NULL);
	for (i = 0; i < VICI_MAX_DEPTH; i++)
		vici_begin_section(b, "s");
	for (i = 0; i < VICI_MAX_DEPTH; i++)
		vici_end_section(b);
	{
		const uint8_t *out;
		size_t	 len;

		assert_int_equal(vici_builder_finish(b, &out, &len), 0);
	}
	vici_builder_free(b);
	b = vici_builder_new(VICI_CMD_RESPONSE, NULL);
	for (i = 0; i < VICI_MAX_DEPTH + 1; i++)
		vici_begin_section(b, "s");
	for (i = 0; i < VICI_MAX_DEPTH + 1; i++)
		vici_end_section(b);
	assert_build_fails(b);
}

static void
test_builder_misuse(void **state)
{
	struct vici_builder *b;

	/* unbalanced */
	b = vici_builder_new(VICI_CMD_RESPONSE, NULL);
	vici_end_section(b);
	assert_build_fails(b);
	b = vici_builder_new(VICI_CMD_RESPONSE, NULL);
	vici_begin_section(b, "s");
	assert_build_fails(b);
	b = vici_builder_new(VICI_CMD_RESPONSE, NULL);
	vici_begin_list(b, "l");
	assert_build_fails(b);
	b = vici_builder_new(VICI_CMD_RESPONSE, NULL);
	vici_end_list(b);
	assert_build_fails(b);

	/* list discipline */
	b = vici_builder_new(VICI_CMD_RESPONSE, NULL);
	vici_add_list_item_str(b, "x");
	assert_build_fails(b);
	b = vici_builder_new(VICI_CMD_RESPONSE, NULL);
	vici_begin_list(b, "l");
	vici_add_kv_str(b, "k", "v");
	vici_end_list(b);
	assert_build_fails(b);
	b = vici_builder_new(VICI_CMD_RESPONSE, NULL);
	vici_begin_list(b, "l");
	vici_begin_list(b, "m");
	vici_end_list(b);
	vici_end_list(b);
	assert_build_fails(b);
	b = vici_builder_new(VICI_CMD_RESPONSE, NULL);
	vici_begin_list(b, "l");
	vici_begin_section(b, "s");
	vici_end_section(b);
	vici_end_list(b);
	assert_build_fails(b);
	b = vici_builder_new(VICI_CMD_RESPONSE, NULL);
	vici_begin_list(b, "l");
	vici_end_section(b);
	assert_build_fails(b);

	/* NULL arguments */
	b = vici_builder_new(VICI_CMD_RESPONSE, NULL);
	vici_add_kv_str(b, NULL, "v");
	assert_build_fails(b);
	b = vici_builder_new(VICI_CMD_RESPONSE, NULL);
	vici_add_kv_str(b, "k", NULL);
	assert_build_fails(b);
	b = vici_builder_new(VICI_CMD_RESPONSE, NULL);
	vici_add_kv(b, "k", NULL, 3);
	assert_build_fails(b);

	/* names and bodies must fit the packet type */
	assert_build_fails(vici_builder_new(VICI_CMD_REQUEST, NULL));
	assert_build_fails(vici_builder_new(VICI_CMD_RESPONSE, "x"));
	b = vici_builder_new(VICI_EVENT_REGISTER, "ike-updown");
	vici_add_kv_str(b, "k", "v");
	assert_build_fails(b);
	assert_null(vici_builder_new(8, NULL));

	/* sticky: a good add after a bad one does not repair the packet */
	b = vici_builder_new(VICI_CMD_RESPONSE, NULL);
	vici_end_list(b);
	vici_add_kv_str(b, "k", "v");
	assert_build_fails(b);

	/* NULL builder is tolerated everywhere */
	vici_add_kv_str(NULL, "k", "v");
	vici_add_kv_uint(NULL, "k", 1);
	vici_begin_section(NULL, "s");
	vici_end_section(NULL);
	vici_begin_list(NULL, "l");
	vici_add_list_item_str(NULL, "x");
	vici_end_list(NULL);
	assert_build_fails(NULL);
	vici_builder_free(NULL);
}

/* ---- parser ----------------------------------------------------------- */

static struct vici_msg *
parse_ok(const uint8_t *pkt, size_t len)
{
	struct vici_msg *m = NULL;
	char	 err[128];
	int	 r;

	r = vici_parse(pkt, len, &m, err, sizeof(err));
	if (r != 0)
		fail_msg("parse failed: %s", err);
	assert_non_null(m);
	return m;
}

static void
test_parse_readme_example(void **state)
{
	const struct vici_node *s1, *sub, *l, *it;
	struct vici_msg *m;

	m = parse_ok(readme_example + 4, sizeof(readme_example) - 4);
	assert_int_equal(m->type, VICI_CMD_RESPONSE);
	assert_string_equal(m->name, "");
	assert_int_equal(m->root->kind, VICI_NODE_SECTION);
	assert_string_equal(m->root->name, "");
	assert_string_equal(vici_get_str(m->root, "key1"), "value1");
	s1 = vici_find(m->root, "section1");
	assert_non_null(s1);
	assert_int_equal(s1->kind, VICI_NODE_SECTION);
	sub = vici_find(s1, "sub-section");
	assert_non_null(sub);
	assert_string_equal(vici_get_str(sub, "key2"), "value2");
	assert_null(vici_get_str(s1, "key2"));
	l = vici_find(s1, "list1");
	assert_non_null(l);
	assert_int_equal(l->kind, VICI_NODE_LIST);
	it = l->child;
	assert_non_null(it);
	assert_int_equal(it->kind, VICI_NODE_KV);
	assert_string_equal(it->name, "");
	assert_string_equal(it->value, "item1");
	assert_int_equal(it->len, 5);
	assert_non_null(it->next);
	assert_string_equal(it->next->value, "item2");
	assert_null(it->next->next);
	/* order of children is wire order */
	assert_ptr_equal(s1->child, sub);
	assert_ptr_equal(sub->next, l);
	assert_null(l->next);
	vici_msg_free(m);
}

static void
test_parse_roundtrip(void **state)
{
	struct vici_builder *b;
	const struct vici_node *n;
	struct vici_msg *m;
	const uint8_t *out;
	size_t	 len;

	b = build_load_shared();
	assert_int_equal(vici_builder_finish(b, &out, &len), 0);
	m = parse_ok(out + 4, len - 4);
	assert_int_equal(m->type, VICI_CMD_REQUEST);
	assert_string_equal(m->name, "load-shared");
	assert_string_equal(vici_get_str(m->root, "type"), "IKE");
	n = vici_find(m->root, "data");
	assert_non_null(n);
	assert_int_equal(n->len, sizeof(psk_bytes));
	assert_memory_equal(n->value, psk_bytes, sizeof(psk_bytes));
	assert_int_equal(n->value[n->len], '\0');
	n = vici_find(m->root, "owners");
	assert_non_null(n);
	assert_string_equal(n->child->value, "site-a");
	assert_string_equal(n->child->next->value, "site-b");
	vici_msg_free(m);
	vici_builder_free(b);

	/* an event with a name and an empty body */
	b = vici_builder_new(VICI_EVENT, "ike-updown");
	assert_int_equal(vici_builder_finish(b, &out, &len), 0);
	m = parse_ok(out + 4, len - 4);
	assert_int_equal(m->type, VICI_EVENT);
	assert_string_equal(m->name, "ike-updown");
	assert_null(m->root->child);
	vici_msg_free(m);
	vici_builder_free(b);

	/* 255-byte packet name fills msg->name exactly */
	{
		char	 name[256];

		memset(name, 'x', 255);
		name[255] = '\0';
		b = vici_builder_new(VICI_EVENT, name);
		assert_int_equal(vici_builder_finish(b, &out, &len), 0);
		m = parse_ok(out + 4, len - 4);
		assert_string_equal(m->name, name);
		vici_msg_free(m);
		vici_builder_free(b);
	}
}

static void
test_lookup(void **state)
{
	struct vici_builder *b;
	struct vici_msg *m;
	const uint8_t *out;
	size_t	 len;

	b = vici_builder_new(VICI_CMD_RESPONSE, NULL);
	vici_add_kv_str(b, "success", "yes");
	vici_add_kv_str(b, "no", "no");
	vici_add_kv_str(b, "yesish", "yes ");
	vici_add_kv_str(b, "upper", "YES");
	vici_add_kv_str(b, "empty", "");
	vici_add_kv_str(b, "dup", "first");
	vici_add_kv_str(b, "dup", "second");
	vici_begin_section(b, "sec");
	vici_add_kv_str(b, "inner", "yes");
	vici_end_section(b);
	vici_begin_list(b, "list");
	vici_add_list_item_str(b, "yes");
	vici_end_list(b);
	assert_int_equal(vici_builder_finish(b, &out, &len), 0);
	m = parse_ok(out + 4, len - 4);

	assert_int_equal(vici_get_bool(m->root, "success"), 1);
	assert_int_equal(vici_get_bool(m->root, "no"), 0);
	assert_int_equal(vici_get_bool(m->root, "yesish"), 0);
	assert_int_equal(vici_get_bool(m->root, "upper"), 0);
	assert_int_equal(vici_get_bool(m->root, "empty"), 0);
	assert_int_equal(vici_get_bool(m->root, "missing"), 0);
	/* sections and lists are not values */
	assert_int_equal(vici_get_bool(m->root, "sec"), 0);
	assert_null(vici_get_str(m->root, "sec"));
	assert_null(vici_get_str(m->root, "list"));
	assert_int_equal(vici_find(m->root, "list")->kind, VICI_NODE_LIST);
	/* only direct children */
	assert_null(vici_find(m->root, "inner"));
	assert_int_equal(vici_get_bool(vici_find(m->root, "sec"), "inner"), 1);
	assert_string_equal(vici_get_str(m->root, "empty"), "");
	assert_string_equal(vici_get_str(m->root, "dup"), "first");
	/* NULL tolerant */
	assert_null(vici_find(NULL, "x"));
	assert_null(vici_get_str(NULL, "x"));
	assert_int_equal(vici_get_bool(NULL, "x"), 0);
	assert_null(vici_find(m->root, NULL));
	vici_msg_free(m);
	vici_msg_free(NULL);
	vici_builder_free(b);
}

struct bad_packet {
	const char	*what;
	const uint8_t	*pkt;
	size_t		 len;
};

static void
test_parse_rejects(void **state)
{
	const struct bad_packet bad[] = {
		{ "empty packet", (const uint8_t *)"", 0 },
		{ "unknown packet type", BYTES(8) },
		{ "unknown packet type 255", BYTES(255, 0) },
		{ "named type without name length", BYTES(VICI_EVENT) },
		{ "name past end", BYTES(VICI_CMD_REQUEST, 5, 'a', 'b') },
		{ "name with NUL", BYTES(VICI_EVENT, 3, 'a', 0, 'b') },
		{ "unknown element 0", BYTES(1, 0) },
		{ "unknown element 7", BYTES(1, 7) },
		{ "unknown element 255", BYTES(1, 255) },
		{ "trailing garbage", BYTES(1, 3, 1, 'k', 0, 1, 'v', 9, 9) },
		{ "kv name length missing", BYTES(1, 3) },
		{ "kv name past end", BYTES(1, 3, 4, 'k', 'e') },
		{ "kv value length missing", BYTES(1, 3, 1, 'k') },
		{ "kv value length truncated", BYTES(1, 3, 1, 'k', 0) },
		{ "kv value past end", BYTES(1, 3, 1, 'k', 0, 3, 'a', 'b') },
		{ "kv value len 0xffff", BYTES(1, 3, 1, 'k', 0xff, 0xff, 'a') },
		{ "kv name with NUL", BYTES(1, 3, 2, 'k', 0, 0, 0) },
		{ "section name past end", BYTES(1, 1, 2, 's') },
		{ "section name missing", BYTES(1, 1) },
		{ "list name past end", BYTES(1, 4, 9, 'l') },
		{ "item value past end", BYTES(1, 4, 1, 'l', 5, 0, 2, 'x') },
		{ "item value length truncated", BYTES(1, 4, 1, 'l', 5, 0) },
		{ "section end at root", BYTES(1, 2) },
		{ "extra section end", BYTES(1, 1, 1, 's', 2, 2) },
		{ "section not closed", BYTES(1, 1, 1, 's') },
		{ "inner section not closed", BYTES(1, 1, 1, 's', 1, 1, 't', 2) },
		{ "list end outside list", BYTES(1, 6) },
		{ "list not closed", BYTES(1, 4, 1, 'l', 5, 0, 0) },
		{ "item outside list", BYTES(1, 5, 0, 1, 'x') },
		{ "item in section", BYTES(1, 1, 1, 's', 5, 0, 0, 2) },
		{ "kv inside list", BYTES(1, 4, 1, 'l', 3, 1, 'k', 0, 0, 6) },
		{ "section inside list", BYTES(1, 4, 1, 'l', 1, 1, 's', 2, 6) },
		{ "list inside list", BYTES(1, 4, 1, 'l', 4, 1, 'm', 6, 6) },
		{ "section end inside list", BYTES(1, 1, 1, 's', 4, 1, 'l', 2) },
		{ "list end twice", BYTES(1, 4, 1, 'l', 6, 6) },
		{ "item after list end", BYTES(1, 4, 1, 'l', 6, 5, 0, 0) },
		{ "unknown with body garbage", BYTES(VICI_CMD_UNKNOWN, 42) },
	};
	struct vici_msg	*m;
	char		 err[128];
	size_t		 i;

	for (i = 0; i < nitems(bad); i++) {
		m = (struct vici_msg *)&m;	/* must be reset on failure */
		err[0] = '\0';
		if (vici_parse(bad[i].pkt, bad[i].len, &m, err,
		    sizeof(err)) != -1)
			fail_msg("accepted: %s", bad[i].what);
		assert_null(m);
		if (err[0] == '\0')
			fail_msg("no reason given: %s", bad[i].what);
		/* a zero-sized or NULL error buffer is fine */
		assert_int_equal(vici_parse(bad[i].pkt, bad[i].len, &m,
		    NULL, 0), -1);
		assert_int_equal(vici_parse(bad[i].pkt, bad[i].len, &m,
		    err, 1), -1);
		assert_int_equal(err[0], '\0');
	}
}

/* Open n sections, then close them; returns the packet body. */
static uint8_t *
nested_sections(int n, size_t *len)
{
	uint8_t	*p;
	size_t	 off = 0;
	int	 i;

	p = malloc(1 + (size_t)n * 4);
	assert_non_null(p);
	p[off++] = VICI_CMD_RESPONSE;
	for (i = 0; i < n; i++) {
		p[off++] = VICI_SECTION_START;
		p[off++] = 1;
		p[off++] = 's';
	}
	for (i = 0; i < n; i++)
		p[off++] = VICI_SECTION_END;
	*len = off;
	return p;
}

/* One list holding n - 1 empty items: n nodes in all. */
static uint8_t *
many_nodes(size_t n, size_t *len)
{
	uint8_t	*p;
	size_t	 off = 0, i;

	p = malloc(1 + 3 + 3 * n + 1);
	assert_non_null(p);
	p[off++] = VICI_CMD_RESPONSE;
	p[off++] = VICI_LIST_START;
	p[off++] = 1;
	p[off++] = 'l';
	for (i = 1; i < n; i++) {
		p[off++] = VICI_LIST_ITEM;
		p[off++] = 0;
		p[off++] = 0;
	}
	p[off++] = VICI_LIST_END;
	*len = off;
	return p;
}

static void
test_parse_limits(void **state)
{
	struct vici_msg *m;
	const struct vici_node *n;
	uint8_t	*p;
	size_t	 len;
	char	 err[128];
	int	 depth;

	p = nested_sections(VICI_MAX_DEPTH, &len);
	m = parse_ok(p, len);
	for (depth = 0, n = m->root->child; n != NULL; n = n->child)
		depth++;
	assert_int_equal(depth, VICI_MAX_DEPTH);
	vici_msg_free(m);
	free(p);

	p = nested_sections(VICI_MAX_DEPTH + 1, &len);
	assert_int_equal(vici_parse(p, len, &m, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "nested"));
	free(p);

	p = many_nodes(VICI_MAX_NODES, &len);
	m = parse_ok(p, len);
	vici_msg_free(m);
	free(p);

	p = many_nodes(VICI_MAX_NODES + 1, &len);
	assert_int_equal(vici_parse(p, len, &m, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "elements"));
	free(p);
}

/* ---- framer ----------------------------------------------------------- */

struct packet_list {
	uint8_t		*pkt[16];
	size_t		 len[16];
	size_t		 n;
};

static void
packets_add(struct packet_list *pl, const uint8_t *pkt, size_t len)
{
	assert_true(pl->n < nitems(pl->pkt));
	pl->pkt[pl->n] = malloc(len);
	assert_non_null(pl->pkt[pl->n]);
	memcpy(pl->pkt[pl->n], pkt, len);
	pl->len[pl->n] = len;
	pl->n++;
}

static void
packets_clear(struct packet_list *pl)
{
	size_t	 i;

	for (i = 0; i < pl->n; i++)
		free(pl->pkt[i]);
	pl->n = 0;
}

/* A stream of several different packets, and the bodies it holds. */
static uint8_t *
make_stream(size_t *len, struct packet_list *want)
{
	struct vici_builder *b[5];
	const uint8_t *out;
	uint8_t	*s, *big;
	size_t	 olen, i;

	big = malloc(3000);
	assert_non_null(big);
	for (i = 0; i < 3000; i++)
		big[i] = (uint8_t)(i * 7);
	b[0] = vici_builder_new(VICI_CMD_REQUEST, "version");
	b[1] = build_load_shared();
	b[2] = build_readme_example();
	b[3] = vici_builder_new(VICI_EVENT, "control-log");
	vici_add_kv(b[3], "msg", big, 3000);
	b[4] = vici_builder_new(VICI_EVENT_CONFIRM, NULL);
	free(big);

	s = NULL;
	*len = 0;
	for (i = 0; i < nitems(b); i++) {
		assert_int_equal(vici_builder_finish(b[i], &out, &olen), 0);
		s = realloc(s, *len + olen);
		assert_non_null(s);
		memcpy(s + *len, out, olen);
		*len += olen;
		packets_add(want, out + 4, olen - 4);
		vici_builder_free(b[i]);
	}
	return s;
}

static void
drain(struct vici_stream *vs, struct packet_list *got)
{
	const uint8_t *pkt;
	size_t	 len;
	int	 r;

	while ((r = vici_stream_next(vs, &pkt, &len)) == 1)
		packets_add(got, pkt, len);
	assert_int_equal(r, 0);
}

static void
assert_same_packets(const struct packet_list *a, const struct packet_list *b)
{
	size_t	 i;

	assert_int_equal(a->n, b->n);
	for (i = 0; i < a->n; i++) {
		assert_int_equal(a->len[i], b->len[i]);
		assert_memory_equal(a->pkt[i], b->pkt[i], a->len[i]);
	}
}

static void
test_stream_every_split(void **state)
{
	struct packet_list want = { 0 }, got = { 0 };
	struct vici_stream *vs;
	uint8_t	*s;
	size_t	 len, cut, i;

	s = make_stream(&len, &want);
	assert_int_equal(want.n, 5);

	/* one cut at every byte boundary, draining after each piece */
	for (cut = 0; cut <= len; cut++) {
		vs = vici_stream_new();
		assert_non_null(vs);
		assert_int_equal(vici_stream_feed(vs, s, cut), 0);
		drain(vs, &got);
		assert_int_equal(vici_stream_feed(vs, s + cut, len - cut), 0);
		drain(vs, &got);
		assert_same_packets(&want, &got);
		packets_clear(&got);
		vici_stream_free(vs);
	}

	/* the same, but nothing is read until everything is in */
	for (cut = 0; cut <= len; cut += 13) {
		vs = vici_stream_new();
		assert_int_equal(vici_stream_feed(vs, s, cut), 0);
		assert_int_equal(vici_stream_feed(vs, s + cut, len - cut), 0);
		drain(vs, &got);
		assert_same_packets(&want, &got);
		packets_clear(&got);
		vici_stream_free(vs);
	}

	/* every packet parses */
	for (i = 0; i < want.n; i++) {
		struct vici_msg *m = parse_ok(want.pkt[i], want.len[i]);

		vici_msg_free(m);
	}
	packets_clear(&want);
	free(s);
}

static void
test_stream_small_pieces(void **state)
{
	static const size_t pieces[] = { 1, 2, 3, 7 };
	struct packet_list want = { 0 }, got = { 0 };
	struct vici_stream *vs;
	uint8_t	*s;
	size_t	 len, off, n, i;

	s = make_stream(&len, &want);
	for (i = 0; i < nitems(pieces); i++) {
		vs = vici_stream_new();
		for (off = 0; off < len; off += n) {
			n = pieces[i] < len - off ? pieces[i] : len - off;
			assert_int_equal(vici_stream_feed(vs, s + off, n), 0);
			drain(vs, &got);
		}
		assert_same_packets(&want, &got);
		packets_clear(&got);
		vici_stream_free(vs);
	}
	packets_clear(&want);
	free(s);
}

static void
test_stream_rejects(void **state)
{
	struct vici_stream *vs;
	const uint8_t *pkt;
	size_t	 len;
	uint8_t	 hdr[4];

	/* a partial length header is not an error, just not enough */
	vs = vici_stream_new();
	assert_int_equal(vici_stream_feed(vs, BYTES(0, 0, 0)), 0);
	assert_int_equal(vici_stream_next(vs, &pkt, &len), 0);
	/* length 0 is */
	assert_int_equal(vici_stream_feed(vs, BYTES(0)), 0);
	assert_int_equal(vici_stream_next(vs, &pkt, &len), -1);
	/* and the stream stays dead */
	assert_int_equal(vici_stream_next(vs, &pkt, &len), -1);
	assert_int_equal(vici_stream_feed(vs, BYTES(0, 0, 0, 1, 5)), -1);
	vici_stream_free(vs);

	/* a packet announced but cut short waits for more */
	vs = vici_stream_new();
	assert_int_equal(vici_stream_feed(vs, BYTES(0, 0, 0, 10, 1, 3)), 0);
	assert_int_equal(vici_stream_next(vs, &pkt, &len), 0);
	vici_stream_free(vs);

	/* the largest acceptable length is waited for ... */
	hdr[0] = (uint8_t)(VICI_MAX_PACKET >> 24);
	hdr[1] = (uint8_t)(VICI_MAX_PACKET >> 16);
	hdr[2] = (uint8_t)(VICI_MAX_PACKET >> 8);
	hdr[3] = (uint8_t)VICI_MAX_PACKET;
	vs = vici_stream_new();
	assert_int_equal(vici_stream_feed(vs, hdr, 4), 0);
	assert_int_equal(vici_stream_next(vs, &pkt, &len), 0);
	{
		uint8_t	*body = calloc(1, VICI_MAX_PACKET);

		assert_non_null(body);
		body[0] = VICI_CMD_RESPONSE;
		assert_int_equal(vici_stream_feed(vs, body,
		    VICI_MAX_PACKET), 0);
		assert_int_equal(vici_stream_next(vs, &pkt, &len), 1);
		assert_int_equal(len, VICI_MAX_PACKET);
		free(body);
	}
	vici_stream_free(vs);

	/* ... one more is refused from the header alone */
	hdr[3]++;
	vs = vici_stream_new();
	assert_int_equal(vici_stream_feed(vs, hdr, 4), 0);
	assert_int_equal(vici_stream_next(vs, &pkt, &len), -1);
	vici_stream_free(vs);

	vs = vici_stream_new();
	assert_int_equal(vici_stream_feed(vs, BYTES(0xff, 0xff, 0xff, 0xff)), 0);
	assert_int_equal(vici_stream_next(vs, &pkt, &len), -1);
	vici_stream_free(vs);

	/* a good packet followed by a bad header: first one still comes out */
	vs = vici_stream_new();
	assert_int_equal(vici_stream_feed(vs,
	    BYTES(0, 0, 0, 1, 5, 0, 0, 0, 0)), 0);
	assert_int_equal(vici_stream_next(vs, &pkt, &len), 1);
	assert_int_equal(len, 1);
	assert_int_equal(pkt[0], VICI_EVENT_CONFIRM);
	assert_int_equal(vici_stream_next(vs, &pkt, &len), -1);
	vici_stream_free(vs);

	vici_stream_free(NULL);
}

/* ---- client against a fake charon ------------------------------------- */

enum server_mode {
	SERVER_NORMAL,		/* answer everything */
	SERVER_CLOSE,		/* hang up after the first request */
	SERVER_CORRUPT,		/* answer the first request with length 0 */
	SERVER_REPLY_THEN_EVENT, /* reply + event in one write */
	SERVER_EVENT_THEN_REPLY, /* event + reply in one write */
	SERVER_WRONG_REPLY,	/* answer a command with EVENT_CONFIRM */
	SERVER_SILENT,		/* read every request, answer none (hung) */
	SERVER_SLOW,		/* answer each request SLOW_REPLY_MS late */
};

#define SLOW_REPLY_MS	400

struct fake_server {
	struct event_base *base;
	enum server_mode mode;
	char		 dir[64];
	char		 path[100];
	int		 lfd;
	int		 cfd;
	struct event	*ev_accept;
	struct event	*ev_read;
	struct vici_stream *stream;
	int		 outstanding;	/* request read, reply not yet sent */
	int		 overlaps;	/* requests seen while one outstanding */
	char		 seen[16][300];
	int		 nseen;
	size_t		 last_len;
	struct vici_msg	*pending;	/* request awaiting its reply */
	int		 initiate_step;
};

static void
server_write(struct fake_server *srv, const uint8_t *p, size_t len)
{
	ssize_t	 n;

	while (len > 0) {
		n = write(srv->cfd, p, len);
		assert_true(n > 0);
		p += n;
		len -= (size_t)n;
	}
}

static void
server_send(struct fake_server *srv, struct vici_builder *b)
{
	const uint8_t *out;
	size_t	 len;

	assert_int_equal(vici_builder_finish(b, &out, &len), 0);
	server_write(srv, out, len);
	vici_builder_free(b);
}

static struct vici_builder *
server_event(int seq)
{
	struct vici_builder *b;

	b = vici_builder_new(VICI_EVENT, "control-log");
	vici_add_kv_uint(b, "msg", (unsigned long long)seq);
	return b;
}

static struct vici_builder *
server_response(struct fake_server *srv, const struct vici_msg *req)
{
	struct vici_builder *b;

	b = vici_builder_new(VICI_CMD_RESPONSE, NULL);
	vici_add_kv_str(b, "cmd", req->name);
	vici_add_kv_uint(b, "len", srv->last_len);
	vici_add_kv_str(b, "success", "yes");
	return b;
}

static void server_reply(evutil_socket_t, short, void *);

static void
server_schedule_reply(struct fake_server *srv)
{
	struct timeval tv = { 0, srv->mode == SERVER_SLOW ?
	    SLOW_REPLY_MS * 1000 : 2000 };

	assert_int_equal(event_base_once(srv->base, -1, EV_TIMEOUT,
	    server_reply, srv, &tv), 0);
}

/* Replies later, from the loop, so that overlapping requests would show. */
static void
server_reply(evutil_socket_t fd, short what, void *arg)
{
	struct fake_server *srv = arg;
	struct vici_msg	*req = srv->pending;

	if (req == NULL || srv->cfd == -1)
		return;
	if (req->type == VICI_EVENT_REGISTER) {
		server_send(srv, vici_builder_new(
		    strcmp(req->name, "control-log") == 0 ?
		    VICI_EVENT_CONFIRM : VICI_EVENT_UNKNOWN, NULL));
	} else if (strcmp(req->name, "initiate") == 0 &&
	    srv->initiate_step == 0) {
		/* one event alone, then another glued to the reply */
		server_send(srv, server_event(1));
		srv->initiate_step = 1;
		server_schedule_reply(srv);
		return;
	} else if (strcmp(req->name, "initiate") == 0) {
		struct vici_builder *b1 = server_event(2);
		struct vici_builder *b2 = server_response(srv, req);
		const uint8_t *o1, *o2;
		size_t	 l1, l2;
		uint8_t	*both;

		assert_int_equal(vici_builder_finish(b1, &o1, &l1), 0);
		assert_int_equal(vici_builder_finish(b2, &o2, &l2), 0);
		both = malloc(l1 + l2);
		assert_non_null(both);
		memcpy(both, o1, l1);
		memcpy(both + l1, o2, l2);
		server_write(srv, both, l1 + l2);
		free(both);
		vici_builder_free(b1);
		vici_builder_free(b2);
		srv->initiate_step = 0;
	} else if (strcmp(req->name, "nosuch") == 0) {
		server_send(srv, vici_builder_new(VICI_CMD_UNKNOWN, NULL));
	} else {
		server_send(srv, server_response(srv, req));
	}
	vici_msg_free(srv->pending);
	srv->pending = NULL;
	srv->outstanding = 0;
}

static void
server_hangup(struct fake_server *srv)
{
	if (srv->ev_read != NULL) {
		event_free(srv->ev_read);
		srv->ev_read = NULL;
	}
	if (srv->cfd != -1) {
		close(srv->cfd);
		srv->cfd = -1;
	}
}

static void
server_on_request(struct fake_server *srv, struct vici_msg *req)
{
	struct vici_builder *b1, *b2;
	const uint8_t *o1, *o2;
	size_t	 l1, l2;
	uint8_t	*both;

	assert_true(srv->nseen < (int)nitems(srv->seen));
	snprintf(srv->seen[srv->nseen++], sizeof(srv->seen[0]), "%s%s",
	    req->type == VICI_EVENT_REGISTER ? "register:" : "", req->name);
	if (srv->outstanding)
		srv->overlaps++;
	srv->outstanding = 1;

	switch (srv->mode) {
	case SERVER_SILENT:
		break;
	case SERVER_NORMAL:
	case SERVER_SLOW:
		vici_msg_free(srv->pending);
		srv->pending = req;
		server_schedule_reply(srv);
		return;
	case SERVER_CLOSE:
		server_hangup(srv);
		break;
	case SERVER_CORRUPT:
		server_write(srv, BYTES(0, 0, 0, 0));
		break;
	case SERVER_WRONG_REPLY:
		server_send(srv, vici_builder_new(VICI_EVENT_CONFIRM, NULL));
		break;
	case SERVER_REPLY_THEN_EVENT:
	case SERVER_EVENT_THEN_REPLY:
		if (srv->mode == SERVER_REPLY_THEN_EVENT) {
			b1 = server_response(srv, req);
			b2 = server_event(1);
		} else {
			b1 = server_event(1);
			b2 = server_response(srv, req);
		}
		assert_int_equal(vici_builder_finish(b1, &o1, &l1), 0);
		assert_int_equal(vici_builder_finish(b2, &o2, &l2), 0);
		both = malloc(l1 + l2);
		assert_non_null(both);
		memcpy(both, o1, l1);
		memcpy(both + l1, o2, l2);
		server_write(srv, both, l1 + l2);
		free(both);
		vici_builder_free(b1);
		vici_builder_free(b2);
		srv->outstanding = 0;
		break;
	}
	vici_msg_free(req);
}

static void
server_on_read(evutil_socket_t fd, short what, void *arg)
{
	struct fake_server *srv = arg;
	struct vici_msg	*req;
	const uint8_t	*pkt;
	uint8_t		 buf[65536];
	size_t		 len;
	ssize_t		 n;
	char		 err[128];
	int		 r;

	n = read(fd, buf, sizeof(buf));
	if (n <= 0) {
		server_hangup(srv);
		return;
	}
	assert_int_equal(vici_stream_feed(srv->stream, buf, (size_t)n), 0);
	while (srv->cfd != -1 &&
	    (r = vici_stream_next(srv->stream, &pkt, &len)) != 0) {
		assert_int_equal(r, 1);
		srv->last_len = len;
		if (vici_parse(pkt, len, &req, err, sizeof(err)) != 0)
			fail_msg("server: bad request: %s", err);
		server_on_request(srv, req);
	}
}

static void
server_on_accept(evutil_socket_t fd, short what, void *arg)
{
	struct fake_server *srv = arg;

	srv->cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(srv->cfd != -1);
	srv->ev_read = event_new(srv->base, srv->cfd, EV_READ | EV_PERSIST,
	    server_on_read, srv);
	assert_non_null(srv->ev_read);
	event_add(srv->ev_read, NULL);
	/* one client per test */
	event_del(srv->ev_accept);
}

static void
server_start(struct fake_server *srv, struct event_base *base,
    enum server_mode mode)
{
	struct sockaddr_un sa;

	memset(srv, 0, sizeof(*srv));
	srv->base = base;
	srv->mode = mode;
	srv->cfd = -1;
	snprintf(srv->dir, sizeof(srv->dir), "/tmp/test_vici.XXXXXX");
	assert_non_null(mkdtemp(srv->dir));
	snprintf(srv->path, sizeof(srv->path), "%s/charon.vici", srv->dir);
	srv->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(srv->lfd != -1);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", srv->path);
	assert_int_equal(bind(srv->lfd, (struct sockaddr *)&sa,
	    sizeof(sa)), 0);
	assert_int_equal(listen(srv->lfd, 4), 0);
	srv->ev_accept = event_new(base, srv->lfd, EV_READ | EV_PERSIST,
	    server_on_accept, srv);
	event_add(srv->ev_accept, NULL);
	srv->stream = vici_stream_new();
}

static void
server_stop(struct fake_server *srv)
{
	server_hangup(srv);
	event_free(srv->ev_accept);
	close(srv->lfd);
	vici_stream_free(srv->stream);
	vici_msg_free(srv->pending);
	unlink(srv->path);
	rmdir(srv->dir);
}

/* What the client's user saw, in order. */
struct client_log {
	struct event_base *base;
	struct vici_client *client;
	char		 line[32][96];
	int		 n;
	int		 closes;
	int		 deadlines;
	unsigned	 waited_ms;
	int		 free_on_deadline;
	int		 events;
	int		 free_on_event;
	int		 free_on_first_null;
	const char	*break_on;	/* tag whose reply ends the loop */
};

struct client_req {
	struct client_log *log;
	const char	*tag;
	int		 calls;
	int		 nulls;
	int		 free_client;	/* free the client from this reply */
};

static void
log_line(struct client_log *l, const char *fmt, ...) GRGW_PRINTF(2, 3);

static void
log_line(struct client_log *l, const char *fmt, ...)
{
	va_list	 ap;

	assert_true(l->n < (int)nitems(l->line));
	va_start(ap, fmt);
	vsnprintf(l->line[l->n++], sizeof(l->line[0]), fmt, ap);
	va_end(ap);
}

static void
client_on_event(const struct vici_msg *msg, void *arg)
{
	struct client_log *l = arg;

	l->events++;
	log_line(l, "event %s msg=%s", msg->name,
	    vici_get_str(msg->root, "msg"));
	if (l->free_on_event) {
		vici_client_free(l->client);
		l->client = NULL;
		event_base_loopbreak(l->base);
	}
}

static void
client_on_close(void *arg)
{
	struct client_log *l = arg;

	l->closes++;
	log_line(l, "close");
	event_base_loopbreak(l->base);
}

static void
client_on_deadline(const char *request, unsigned waited_ms, void *arg)
{
	struct client_log *l = arg;

	l->deadlines++;
	l->waited_ms = waited_ms;
	log_line(l, "deadline %s", request);
	if (l->free_on_deadline) {
		vici_client_free(l->client);
		l->client = NULL;
	}
	event_base_loopbreak(l->base);
}

static void
client_on_reply(const struct vici_msg *reply, void *arg)
{
	struct client_req *r = arg;
	struct client_log *l = r->log;
	const char *cmd;

	r->calls++;
	if (reply == NULL) {
		r->nulls++;
		log_line(l, "null %s", r->tag);
		if (l->free_on_first_null && l->client != NULL) {
			vici_client_free(l->client);
			l->client = NULL;
		}
		if (l->break_on != NULL && strcmp(l->break_on, r->tag) == 0)
			event_base_loopbreak(l->base);
		return;
	}
	cmd = vici_get_str(reply->root, "cmd");
	log_line(l, "reply %s type=%u cmd=%s", r->tag, reply->type,
	    cmd != NULL ? cmd : "-");
	if (r->free_client) {
		vici_client_free(l->client);
		l->client = NULL;
		event_base_loopbreak(l->base);
	}
	if (l->break_on != NULL && strcmp(l->break_on, r->tag) == 0)
		event_base_loopbreak(l->base);
}

static void
on_hang(evutil_socket_t fd, short what, void *arg)
{
	fail_msg("test hung");
}

/* Run the loop until a callback breaks it; a long guard catches hangs. */
static void
run_loop(struct event_base *base)
{
	struct timeval	 tv = { 60, 0 };
	struct event	*guard;

	guard = evtimer_new(base, on_hang, NULL);
	evtimer_add(guard, &tv);
	assert_int_equal(event_base_dispatch(base), 0);
	event_free(guard);
}

static void
send_request(struct vici_client *c, uint8_t type, const char *name,
    struct client_req *r)
{
	struct vici_builder *b;
	const uint8_t *out;
	size_t	 len;

	b = vici_builder_new(type, name);
	assert_int_equal(vici_builder_finish(b, &out, &len), 0);
	assert_int_equal(vici_client_request(c, out, len, client_on_reply, r),
	    0);
	vici_builder_free(b);
}

static void
send_request_within(struct vici_client *c, const char *name,
    unsigned deadline_ms, struct client_req *r)
{
	struct vici_builder *b;
	const uint8_t *out;
	size_t	 len;

	b = vici_builder_new(VICI_CMD_REQUEST, name);
	assert_int_equal(vici_builder_finish(b, &out, &len), 0);
	assert_int_equal(vici_client_request_within(c, out, len, deadline_ms,
	    client_on_reply, r), 0);
	vici_builder_free(b);
}

static void
assert_log(const struct client_log *l, const char *const *want, int n)
{
	int	 i;

	for (i = 0; i < l->n && i < n; i++)
		assert_string_equal(l->line[i], want[i]);
	assert_int_equal(l->n, n);
}

static void
test_client_order(void **state)
{
	static const char *const want[] = {
		"reply register type=5 cmd=-",
		"reply bogus type=6 cmd=-",
		"reply version type=1 cmd=version",
		"event control-log msg=1",
		"event control-log msg=2",
		"reply initiate type=1 cmd=initiate",
		"reply nosuch type=2 cmd=-",
		"reply stats type=1 cmd=stats",
	};
	struct event_base *base = event_base_new();
	struct fake_server srv;
	struct client_log l = { .base = base, .break_on = "stats" };
	struct client_req r[6] = {
		{ &l, "register", 0, 0, 0 }, { &l, "bogus", 0, 0, 0 },
		{ &l, "version", 0, 0, 0 }, { &l, "initiate", 0, 0, 0 },
		{ &l, "nosuch", 0, 0, 0 }, { &l, "stats", 0, 0, 0 },
	};
	int	 i;

	server_start(&srv, base, SERVER_NORMAL);
	l.client = vici_client_new(base, client_on_event, client_on_close, &l);
	assert_non_null(l.client);
	assert_false(vici_client_connected(l.client));
	assert_int_equal(vici_client_connect(l.client, srv.path), 0);
	assert_true(vici_client_connected(l.client));
	assert_int_equal(vici_client_connect(l.client, srv.path), -1);
	assert_int_equal(errno, EISCONN);

	send_request(l.client, VICI_EVENT_REGISTER, "control-log", &r[0]);
	send_request(l.client, VICI_EVENT_REGISTER, "bogus", &r[1]);
	send_request(l.client, VICI_CMD_REQUEST, "version", &r[2]);
	send_request(l.client, VICI_CMD_REQUEST, "initiate", &r[3]);
	send_request(l.client, VICI_CMD_REQUEST, "nosuch", &r[4]);
	send_request(l.client, VICI_CMD_REQUEST, "stats", &r[5]);
	run_loop(base);

	assert_log(&l, want, (int)nitems(want));
	for (i = 0; i < 6; i++) {
		assert_int_equal(r[i].calls, 1);
		assert_int_equal(r[i].nulls, 0);
	}
	/* charon saw them in order, never two at once */
	assert_int_equal(srv.nseen, 6);
	assert_string_equal(srv.seen[0], "register:control-log");
	assert_string_equal(srv.seen[1], "register:bogus");
	assert_string_equal(srv.seen[2], "version");
	assert_string_equal(srv.seen[3], "initiate");
	assert_string_equal(srv.seen[4], "nosuch");
	assert_string_equal(srv.seen[5], "stats");
	assert_int_equal(srv.overlaps, 0);

	/* freeing an idle client calls nothing */
	vici_client_free(l.client);
	assert_int_equal(l.closes, 0);
	server_stop(&srv);
	event_base_free(base);
}

/* A request far larger than a socket buffer goes out in pieces. */
static void
test_client_large_request(void **state)
{
	struct event_base *base = event_base_new();
	struct fake_server srv;
	struct client_log l = { .base = base, .break_on = "load-cert" };
	struct client_req r = { &l, "load-cert", 0, 0, 0 };
	struct vici_builder *b;
	const uint8_t *out;
	uint8_t	*big;
	size_t	 len, i;

	server_start(&srv, base, SERVER_NORMAL);
	l.client = vici_client_new(base, client_on_event, client_on_close, &l);
	assert_int_equal(vici_client_connect(l.client, srv.path), 0);

	big = malloc(60000);
	assert_non_null(big);
	b = vici_builder_new(VICI_CMD_REQUEST, "load-cert");
	for (i = 0; i < 8; i++) {
		memset(big, (int)('a' + i), 60000);
		vici_add_kv(b, "data", big, 60000);
	}
	free(big);
	assert_int_equal(vici_builder_finish(b, &out, &len), 0);
	assert_int_equal(vici_client_request(l.client, out, len,
	    client_on_reply, &r), 0);
	vici_builder_free(b);	/* the client has its own copy */
	run_loop(base);

	assert_int_equal(r.calls, 1);
	assert_int_equal(r.nulls, 0);
	assert_int_equal(srv.nseen, 1);
	assert_int_equal(srv.last_len, len - 4);
	vici_client_free(l.client);
	server_stop(&srv);
	event_base_free(base);
}

static void
run_failing_server(enum server_mode mode, int free_on_first_null)
{
	static const char *const want[] = {
		"null a", "null b", "null c", "close",
	};
	struct event_base *base = event_base_new();
	struct fake_server srv;
	struct client_log l = { .base = base };
	struct client_req r[3] = {
		{ &l, "a", 0, 0, 0 }, { &l, "b", 0, 0, 0 },
		{ &l, "c", 0, 0, 0 },
	};
	int	 i;

	l.free_on_first_null = free_on_first_null;
	server_start(&srv, base, mode);
	l.client = vici_client_new(base, client_on_event, client_on_close, &l);
	assert_int_equal(vici_client_connect(l.client, srv.path), 0);
	send_request(l.client, VICI_CMD_REQUEST, "list-sas", &r[0]);
	send_request(l.client, VICI_CMD_REQUEST, "version", &r[1]);
	send_request(l.client, VICI_CMD_REQUEST, "stats", &r[2]);
	if (free_on_first_null) {
		/* no on_close to end the loop: the last NULL reply does */
		l.break_on = "c";
		run_loop(base);
		event_base_loop(base, EVLOOP_NONBLOCK);
		assert_log(&l, want, 3);
		assert_int_equal(l.closes, 0);
		assert_null(l.client);
	} else {
		run_loop(base);
		assert_log(&l, want, 4);
		assert_int_equal(l.closes, 1);
		assert_false(vici_client_connected(l.client));
		assert_int_equal(vici_client_request(l.client,
		    BYTES(0, 0, 0, 1, VICI_CMD_REQUEST), NULL, NULL), -1);
		assert_int_equal(errno, EINVAL);	/* no name: not a packet */
		assert_int_equal(vici_client_request(l.client,
		    BYTES(0, 0, 0, 2, VICI_CMD_REQUEST, 0), NULL, NULL), -1);
		assert_int_equal(errno, ENOTCONN);
		vici_client_free(l.client);
	}
	for (i = 0; i < 3; i++) {
		assert_int_equal(r[i].calls, 1);
		assert_int_equal(r[i].nulls, 1);
	}
	assert_int_equal(srv.nseen, 1);
	assert_int_equal(l.events, 0);
	server_stop(&srv);
	event_base_free(base);
}

static void
test_client_server_closes(void **state)
{
	run_failing_server(SERVER_CLOSE, 0);
}

static void
test_client_corrupt_stream(void **state)
{
	run_failing_server(SERVER_CORRUPT, 0);
}

static void
test_client_mismatched_reply(void **state)
{
	run_failing_server(SERVER_WRONG_REPLY, 0);
}

static void
test_client_free_in_null_reply(void **state)
{
	run_failing_server(SERVER_CLOSE, 1);
}

/* Reconnecting after a loss works and starts a fresh stream. */
static void
test_client_reconnect(void **state)
{
	struct event_base *base = event_base_new();
	struct fake_server srv;
	struct client_log l = { .base = base, .break_on = "version" };
	struct client_req r1 = { &l, "lost", 0, 0, 0 };
	struct client_req r2 = { &l, "version", 0, 0, 0 };

	server_start(&srv, base, SERVER_CORRUPT);
	l.client = vici_client_new(base, client_on_event, client_on_close, &l);
	assert_int_equal(vici_client_connect(l.client, srv.path), 0);
	send_request(l.client, VICI_CMD_REQUEST, "stats", &r1);
	run_loop(base);
	assert_int_equal(r1.nulls, 1);
	assert_int_equal(l.closes, 1);
	server_stop(&srv);

	server_start(&srv, base, SERVER_NORMAL);
	assert_int_equal(vici_client_connect(l.client, srv.path), 0);
	send_request(l.client, VICI_CMD_REQUEST, "version", &r2);
	run_loop(base);
	assert_int_equal(r2.calls, 1);
	assert_int_equal(r2.nulls, 0);
	assert_string_equal(l.line[l.n - 1], "reply version type=1 cmd=version");
	vici_client_free(l.client);
	server_stop(&srv);
	event_base_free(base);
}

/*
 * The reply callback frees the client while an event is still in the
 * same read buffer and another request is queued: the queued request
 * gets its NULL, the event and on_close never come.
 */
static void
test_client_free_in_reply(void **state)
{
	struct event_base *base = event_base_new();
	struct fake_server srv;
	struct client_log l = { .base = base };
	struct client_req r1 = { &l, "first", 0, 0, 1 };
	struct client_req r2 = { &l, "second", 0, 0, 0 };

	server_start(&srv, base, SERVER_REPLY_THEN_EVENT);
	l.client = vici_client_new(base, client_on_event, client_on_close, &l);
	assert_int_equal(vici_client_connect(l.client, srv.path), 0);
	send_request(l.client, VICI_CMD_REQUEST, "version", &r1);
	send_request(l.client, VICI_CMD_REQUEST, "stats", &r2);
	run_loop(base);
	assert_null(l.client);
	assert_int_equal(r1.calls, 1);
	assert_int_equal(r1.nulls, 0);
	assert_int_equal(r2.calls, 1);
	assert_int_equal(r2.nulls, 1);
	assert_int_equal(l.events, 0);
	assert_int_equal(l.closes, 0);
	/* nothing left behind on the loop that would touch the client */
	event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(l.n, 2);
	server_stop(&srv);
	event_base_free(base);
}

/* An event that arrives before the reply frees the client. */
static void
test_client_free_in_event(void **state)
{
	struct event_base *base = event_base_new();
	struct fake_server srv;
	struct client_log l = { .base = base, .free_on_event = 1 };
	struct client_req r1 = { &l, "first", 0, 0, 0 };

	server_start(&srv, base, SERVER_EVENT_THEN_REPLY);
	l.client = vici_client_new(base, client_on_event, client_on_close, &l);
	assert_int_equal(vici_client_connect(l.client, srv.path), 0);
	send_request(l.client, VICI_CMD_REQUEST, "initiate", &r1);
	run_loop(base);
	assert_null(l.client);
	assert_int_equal(l.events, 1);
	assert_int_equal(r1.calls, 1);
	assert_int_equal(r1.nulls, 1);
	assert_int_equal(l.closes, 0);
	assert_string_equal(l.line[0], "event control-log msg=1");
	assert_string_equal(l.line[1], "null first");
	event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(l.n, 2);
	server_stop(&srv);
	event_base_free(base);
}

static void
test_client_misuse(void **state)
{
	struct event_base *base = event_base_new();
	struct client_log l = { .base = base };
	struct client_req r[2] = { { &l, "a", 0, 0, 0 }, { &l, "b", 0, 0, 0 } };
	struct fake_server srv;
	struct vici_client *c;
	char	 longpath[200];

	assert_null(vici_client_new(NULL, NULL, NULL, NULL));
	c = vici_client_new(base, NULL, NULL, NULL);
	assert_non_null(c);
	/* not connected */
	assert_int_equal(vici_client_request(c,
	    BYTES(0, 0, 0, 2, VICI_CMD_REQUEST, 0), NULL, NULL), -1);
	assert_int_equal(errno, ENOTCONN);
	assert_int_equal(vici_client_connect(c, "/nonexistent/charon.vici"),
	    -1);
	assert_int_equal(errno, ENOENT);
	assert_false(vici_client_connected(c));
	memset(longpath, 'p', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = '\0';
	assert_int_equal(vici_client_connect(c, longpath), -1);
	assert_int_equal(errno, ENAMETOOLONG);
	vici_client_free(c);
	vici_client_free(NULL);
	assert_false(vici_client_connected(NULL));

	/* only whole request packets are accepted */
	server_start(&srv, base, SERVER_NORMAL);
	l.client = vici_client_new(base, client_on_event, client_on_close, &l);
	assert_int_equal(vici_client_connect(l.client, srv.path), 0);
	assert_int_equal(vici_client_request(l.client,
	    BYTES(0, 0, 0, 3, VICI_CMD_REQUEST, 0), NULL, NULL), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(vici_client_request(l.client,
	    BYTES(0, 0, 0, 1, VICI_CMD_RESPONSE), NULL, NULL), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(vici_client_request(l.client,
	    BYTES(0, 0, 0, 1, VICI_EVENT), NULL, NULL), -1);
	assert_int_equal(vici_client_request(l.client, NULL, 5, NULL, NULL),
	    -1);

	/* freeing with requests queued: each gets NULL, no on_close */
	send_request(l.client, VICI_CMD_REQUEST, "version", &r[0]);
	send_request(l.client, VICI_CMD_REQUEST, "stats", &r[1]);
	vici_client_free(l.client);
	assert_int_equal(r[0].nulls, 1);
	assert_int_equal(r[1].nulls, 1);
	assert_int_equal(r[0].calls + r[1].calls, 2);
	assert_int_equal(l.closes, 0);
	event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(l.n, 2);
	server_stop(&srv);
	event_base_free(base);
}

/*
 * A charon that reads requests and answers none (kill -STOP): the head
 * request's deadline fires, every pending request gets NULL, the owner
 * hears which request it was and how long it waited; on_close stays
 * silent.  Run twice: the second time the owner frees the client from
 * the deadline callback.
 */
static void
run_silent_server(int free_on_deadline)
{
	static const char *const want[] = {
		"null a", "null b", "null c", "deadline list-sas",
	};
	struct event_base *base = event_base_new();
	struct fake_server srv;
	struct client_log l = { .base = base };
	struct client_req r[3] = {
		{ &l, "a", 0, 0, 0 }, { &l, "b", 0, 0, 0 },
		{ &l, "c", 0, 0, 0 },
	};
	int	 i;

	l.free_on_deadline = free_on_deadline;
	server_start(&srv, base, SERVER_SILENT);
	l.client = vici_client_new(base, client_on_event, client_on_close, &l);
	vici_client_on_deadline(l.client, client_on_deadline);
	assert_int_equal(vici_client_connect(l.client, srv.path), 0);
	send_request_within(l.client, "list-sas", 100, &r[0]);
	send_request_within(l.client, "version", 0, &r[1]);
	send_request_within(l.client, "stats", 100, &r[2]);
	run_loop(base);
	event_base_loop(base, EVLOOP_NONBLOCK);

	assert_log(&l, want, (int)nitems(want));
	assert_int_equal(l.deadlines, 1);
	assert_true(l.waited_ms >= 100);
	assert_int_equal(l.closes, 0);
	for (i = 0; i < 3; i++)
		assert_int_equal(r[i].calls, 1);
	/* only the head request ever reached charon */
	assert_int_equal(srv.nseen, 1);
	if (free_on_deadline)
		assert_null(l.client);
	else {
		assert_false(vici_client_connected(l.client));
		vici_client_free(l.client);
	}
	server_stop(&srv);
	event_base_free(base);
}

static void
test_client_deadline_missed(void **state)
{
	run_silent_server(0);
}

static void
test_client_free_in_deadline(void **state)
{
	run_silent_server(1);
}

static void
on_quiet_enough(evutil_socket_t fd, short what, void *arg)
{
	event_base_loopbreak(arg);
}

/*
 * A slow but live charon: each request waits SLOW_REPLY_MS at the head,
 * within its deadline, though the last one waits in all far longer than
 * the deadline.  The clock starts at the head, so none fires, and none
 * fires after the replies either.
 */
static void
test_client_deadline_from_head(void **state)
{
	struct event_base *base = event_base_new();
	struct fake_server srv;
	struct client_log l = { .base = base, .break_on = "c" };
	struct client_req r[3] = {
		{ &l, "a", 0, 0, 0 }, { &l, "b", 0, 0, 0 },
		{ &l, "c", 0, 0, 0 },
	};
	struct timeval	 tv = { 0, 2 * SLOW_REPLY_MS * 1000 };
	int	 i;

	server_start(&srv, base, SERVER_SLOW);
	l.client = vici_client_new(base, client_on_event, client_on_close, &l);
	vici_client_on_deadline(l.client, client_on_deadline);
	assert_int_equal(vici_client_connect(l.client, srv.path), 0);
	for (i = 0; i < 3; i++)
		send_request_within(l.client, "version", SLOW_REPLY_MS + 300,
		    &r[i]);
	run_loop(base);
	for (i = 0; i < 3; i++) {
		assert_int_equal(r[i].calls, 1);
		assert_int_equal(r[i].nulls, 0);
	}
	/* a while longer: a deadline left armed would fire now */
	assert_int_equal(event_base_once(base, -1, EV_TIMEOUT,
	    on_quiet_enough, base, &tv), 0);
	run_loop(base);
	assert_int_equal(l.deadlines, 0);
	assert_int_equal(l.closes, 0);
	assert_true(vici_client_connected(l.client));
	vici_client_free(l.client);
	server_stop(&srv);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_type_is_named),
		cmocka_unit_test(test_builder_readme_example),
		cmocka_unit_test(test_builder_load_shared),
		cmocka_unit_test(test_builder_load_conn),
		cmocka_unit_test(test_builder_unnamed_and_empty),
		cmocka_unit_test(test_builder_limits),
		cmocka_unit_test(test_builder_misuse),
		cmocka_unit_test(test_parse_readme_example),
		cmocka_unit_test(test_parse_roundtrip),
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_parse_rejects),
		cmocka_unit_test(test_parse_limits),
		cmocka_unit_test(test_stream_every_split),
		cmocka_unit_test(test_stream_small_pieces),
		cmocka_unit_test(test_stream_rejects),
		cmocka_unit_test(test_client_order),
		cmocka_unit_test(test_client_large_request),
		cmocka_unit_test(test_client_server_closes),
		cmocka_unit_test(test_client_corrupt_stream),
		cmocka_unit_test(test_client_mismatched_reply),
		cmocka_unit_test(test_client_free_in_null_reply),
		cmocka_unit_test(test_client_reconnect),
		cmocka_unit_test(test_client_free_in_reply),
		cmocka_unit_test(test_client_free_in_event),
		cmocka_unit_test(test_client_misuse),
		cmocka_unit_test(test_client_deadline_missed),
		cmocka_unit_test(test_client_free_in_deadline),
		cmocka_unit_test(test_client_deadline_from_head),
	};

	/* a peer that vanishes must not kill the test with SIGPIPE */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
