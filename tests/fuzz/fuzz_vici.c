/*
 * libFuzzer harness for the VICI codec.
 *
 * The input is used twice: as one packet body handed straight to the
 * parser, and as a byte stream cut in two at a point taken from the
 * input itself and pushed through the framer.  Beyond "does not crash",
 * it checks that the framer returns exactly the packets the stream
 * holds, and that every packet the parser accepts is rebuilt byte for
 * byte by the builder, so the two sides cannot drift apart.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ipsec/vici.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
rebuild_section(struct vici_builder *b, const struct vici_node *sec)
{
	const struct vici_node *n, *item;

	for (n = sec->child; n != NULL; n = n->next) {
		switch (n->kind) {
		case VICI_NODE_KV:
			vici_add_kv(b, n->name, n->value, n->len);
			break;
		case VICI_NODE_SECTION:
			vici_begin_section(b, n->name);
			rebuild_section(b, n);
			vici_end_section(b);
			break;
		case VICI_NODE_LIST:
			vici_begin_list(b, n->name);
			for (item = n->child; item != NULL; item = item->next)
				vici_add_list_item(b, item->value, item->len);
			vici_end_list(b);
			break;
		}
	}
}

static int
type_has_body(uint8_t type)
{
	return type == VICI_CMD_REQUEST || type == VICI_CMD_RESPONSE ||
	    type == VICI_EVENT;
}

static void
check_packet(const uint8_t *pkt, size_t len)
{
	struct vici_builder *b;
	struct vici_msg	*m;
	const uint8_t	*out;
	size_t		 olen;
	char		 err[128];

	if (vici_parse(pkt, len, &m, err, sizeof(err)) == -1)
		return;
	/* The builder refuses bodies on types that carry none. */
	if (!type_has_body(m->type) && m->root->child != NULL)
		goto done;
	/* The builder bounds whole packets; the parser is fed anything. */
	if (len > VICI_MAX_PACKET)
		goto done;
	b = vici_builder_new(m->type,
	    vici_type_is_named(m->type) ? m->name : NULL);
	if (b == NULL)
		abort();
	rebuild_section(b, m->root);
	if (vici_builder_finish(b, &out, &olen) == -1 ||
	    olen != len + 4 || memcmp(out + 4, pkt, len) != 0)
		abort();
	vici_builder_free(b);
done:
	vici_msg_free(m);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vici_stream *s;
	const uint8_t	*pkt;
	size_t		 len, cut, off = 0;
	uint32_t	 hdr;
	int		 pass, r = 0;

	check_packet(data, size);

	cut = size >= 2 ? ((size_t)data[0] << 8 | data[1]) % (size + 1) : 0;
	if ((s = vici_stream_new()) == NULL)
		abort();
	for (pass = 0; pass < 2; pass++) {
		if (pass == 0)
			r = vici_stream_feed(s, data, cut);
		else
			r = vici_stream_feed(s, data + cut, size - cut);
		if (r == -1)
			break;
		while ((r = vici_stream_next(s, &pkt, &len)) == 1) {
			/* Packets come out whole, in order, unaltered. */
			if (size - off < 4)
				abort();
			hdr = (uint32_t)data[off] << 24 |
			    (uint32_t)data[off + 1] << 16 |
			    (uint32_t)data[off + 2] << 8 | data[off + 3];
			if (hdr != len || size - off - 4 < len ||
			    memcmp(pkt, data + off + 4, len) != 0)
				abort();
			off += 4 + len;
			check_packet(pkt, len);
		}
		if (r == -1)
			break;
	}
	/* Whatever is left is a bad header or an incomplete packet. */
	if (size - off >= 4) {
		hdr = (uint32_t)data[off] << 24 | (uint32_t)data[off + 1] << 16 |
		    (uint32_t)data[off + 2] << 8 | data[off + 3];
		if (r == -1 && hdr != 0 && hdr <= VICI_MAX_PACKET)
			abort();
		if (r == 0 && (hdr == 0 || hdr > VICI_MAX_PACKET ||
		    size - off - 4 >= hdr))
			abort();
	} else if (r == -1) {
		abort();
	}
	vici_stream_free(s);
	return 0;
}
