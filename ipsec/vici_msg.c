/*
 * VICI codec: packet builder, stream framer and parser.
 *
 * Pure functions over buffers, no I/O, so that the unit tests and the
 * fuzzer exercise exactly the code the daemon runs.  Every length read
 * from the wire is checked against the bytes that remain before it is
 * used; charon is trusted to be charon, not to be bug free.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "grgw.h"
#include "vici.h"

#define VICI_NAME_MAX	255		/* u8 length prefix */
#define VICI_VALUE_MAX	65535		/* u16 length prefix */
#define VICI_HDR_LEN	4		/* u32 length prefix of a packet */

int
vici_type_is_named(uint8_t type)
{
	switch (type) {
	case VICI_CMD_REQUEST:
	case VICI_EVENT_REGISTER:
	case VICI_EVENT_UNREGISTER:
	case VICI_EVENT:
		return 1;
	default:
		return 0;
	}
}

/*
 * Buffers here may hold a pre-shared key (load-shared) or responses we
 * would rather not leave lying around, so they are never realloc()ed:
 * growth copies into a fresh buffer and wipes the old one.
 */
static int
buf_grow(uint8_t **buf, size_t *cap, size_t used, size_t need)
{
	uint8_t	*nbuf;
	size_t	 ncap;

	if (need <= *cap)
		return 0;
	ncap = *cap ? *cap : 256;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2) {
			ncap = need;
			break;
		}
		ncap *= 2;
	}
	if ((nbuf = malloc(ncap)) == NULL)
		return -1;
	if (*buf != NULL) {
		memcpy(nbuf, *buf, used);
		sodium_memzero(*buf, *cap);
		free(*buf);
	}
	*buf = nbuf;
	*cap = ncap;
	return 0;
}

static void
buf_free(uint8_t *buf, size_t cap)
{
	if (buf == NULL)
		return;
	sodium_memzero(buf, cap);
	free(buf);
}

/* ---- builder ---------------------------------------------------------- */

struct vici_builder {
	uint8_t		*buf;
	size_t		 len;
	size_t		 cap;
	int		 error;		/* sticky: any failed add */
	int		 depth;		/* sections open */
	int		 in_list;
	size_t		 nodes;		/* elements that become parse nodes */
	int		 has_body;	/* type carries a message */
};

static void
builder_put(struct vici_builder *b, const void *data, size_t len)
{
	if (b->error)
		return;
	/* The body (everything after the length header) is what is bounded. */
	if (len > VICI_MAX_PACKET + VICI_HDR_LEN - b->len) {
		b->error = 1;
		return;
	}
	if (buf_grow(&b->buf, &b->cap, b->len, b->len + len) == -1) {
		b->error = 1;
		return;
	}
	if (len > 0)
		memcpy(b->buf + b->len, data, len);
	b->len += len;
}

static void
builder_put_u8(struct vici_builder *b, uint8_t v)
{
	builder_put(b, &v, 1);
}

static void
builder_put_name(struct vici_builder *b, const char *name)
{
	size_t	 len;

	if (name == NULL) {
		b->error = 1;
		return;
	}
	len = strlen(name);
	if (len > VICI_NAME_MAX) {
		b->error = 1;
		return;
	}
	builder_put_u8(b, (uint8_t)len);
	builder_put(b, name, len);
}

static void
builder_put_value(struct vici_builder *b, const void *value, size_t len)
{
	uint8_t	 hdr[2];

	if (len > VICI_VALUE_MAX || (value == NULL && len > 0)) {
		b->error = 1;
		return;
	}
	hdr[0] = (uint8_t)(len >> 8);
	hdr[1] = (uint8_t)len;
	builder_put(b, hdr, sizeof(hdr));
	builder_put(b, value, len);
}

/* Common checks for an element; 0 if it may be added. */
static int
builder_element(struct vici_builder *b, int needs_list)
{
	if (b == NULL)
		return -1;
	if (b->error)
		return -1;
	if (!b->has_body || b->in_list != needs_list) {
		b->error = 1;
		return -1;
	}
	return 0;
}

static int
builder_count_node(struct vici_builder *b)
{
	if (++b->nodes > VICI_MAX_NODES) {
		b->error = 1;
		return -1;
	}
	return 0;
}

struct vici_builder *
vici_builder_new(uint8_t type, const char *name)
{
	struct vici_builder *b;

	if (type > VICI_EVENT) {
		errno = EINVAL;
		return NULL;
	}
	if ((b = calloc(1, sizeof(*b))) == NULL)
		return NULL;
	/* Length is filled in by vici_builder_finish(). */
	builder_put(b, "\0\0\0\0", VICI_HDR_LEN);
	builder_put_u8(b, type);
	if (vici_type_is_named(type))
		builder_put_name(b, name);
	else if (name != NULL)
		b->error = 1;	/* would be silently lost on the wire */
	b->has_body = type == VICI_CMD_REQUEST || type == VICI_CMD_RESPONSE ||
	    type == VICI_EVENT;
	return b;
}

void
vici_add_kv(struct vici_builder *b, const char *key, const void *value,
    size_t len)
{
	if (builder_element(b, 0) == -1 || builder_count_node(b) == -1)
		return;
	builder_put_u8(b, VICI_KEY_VALUE);
	builder_put_name(b, key);
	builder_put_value(b, value, len);
}

void
vici_add_kv_str(struct vici_builder *b, const char *key, const char *value)
{
	if (b == NULL)
		return;
	if (value == NULL) {
		b->error = 1;
		return;
	}
	vici_add_kv(b, key, value, strlen(value));
}

void
vici_add_kv_uint(struct vici_builder *b, const char *key,
    unsigned long long value)
{
	char	 num[32];
	int	 n;

	n = snprintf(num, sizeof(num), "%llu", value);
	vici_add_kv(b, key, num, (size_t)n);
}

void
vici_begin_section(struct vici_builder *b, const char *name)
{
	if (builder_element(b, 0) == -1 || builder_count_node(b) == -1)
		return;
	/* Never build what our own parser would refuse. */
	if (b->depth >= VICI_MAX_DEPTH) {
		b->error = 1;
		return;
	}
	builder_put_u8(b, VICI_SECTION_START);
	builder_put_name(b, name);
	b->depth++;
}

void
vici_end_section(struct vici_builder *b)
{
	if (builder_element(b, 0) == -1)
		return;
	if (b->depth == 0) {
		b->error = 1;
		return;
	}
	builder_put_u8(b, VICI_SECTION_END);
	b->depth--;
}

void
vici_begin_list(struct vici_builder *b, const char *name)
{
	if (builder_element(b, 0) == -1 || builder_count_node(b) == -1)
		return;
	builder_put_u8(b, VICI_LIST_START);
	builder_put_name(b, name);
	b->in_list = 1;
}

void
vici_add_list_item(struct vici_builder *b, const void *value, size_t len)
{
	if (builder_element(b, 1) == -1 || builder_count_node(b) == -1)
		return;
	builder_put_u8(b, VICI_LIST_ITEM);
	builder_put_value(b, value, len);
}

void
vici_add_list_item_str(struct vici_builder *b, const char *value)
{
	if (b == NULL)
		return;
	if (value == NULL) {
		b->error = 1;
		return;
	}
	vici_add_list_item(b, value, strlen(value));
}

void
vici_end_list(struct vici_builder *b)
{
	if (builder_element(b, 1) == -1)
		return;
	builder_put_u8(b, VICI_LIST_END);
	b->in_list = 0;
}

int
vici_builder_finish(struct vici_builder *b, const uint8_t **out, size_t *len)
{
	size_t	 body;

	if (b == NULL || b->error || b->depth != 0 || b->in_list) {
		errno = EINVAL;
		return -1;
	}
	body = b->len - VICI_HDR_LEN;
	b->buf[0] = (uint8_t)(body >> 24);
	b->buf[1] = (uint8_t)(body >> 16);
	b->buf[2] = (uint8_t)(body >> 8);
	b->buf[3] = (uint8_t)body;
	*out = b->buf;
	*len = b->len;
	return 0;
}

void
vici_builder_free(struct vici_builder *b)
{
	if (b == NULL)
		return;
	buf_free(b->buf, b->cap);
	free(b);
}

/* ---- stream framer ---------------------------------------------------- */

struct vici_stream {
	uint8_t		*buf;
	size_t		 cap;
	size_t		 off;		/* start of unconsumed bytes */
	size_t		 len;		/* end of buffered bytes */
	int		 corrupt;	/* sticky once a bad length is seen */
};

struct vici_stream *
vici_stream_new(void)
{
	return calloc(1, sizeof(struct vici_stream));
}

/*
 * Drop bytes already handed out.  Only done at the start of feed/next,
 * which is exactly when the previously returned pointer may go stale.
 */
static void
stream_compact(struct vici_stream *s)
{
	if (s->off == 0)
		return;
	if (s->len > s->off)
		memmove(s->buf, s->buf + s->off, s->len - s->off);
	s->len -= s->off;
	s->off = 0;
}

int
vici_stream_feed(struct vici_stream *s, const void *data, size_t len)
{
	if (s == NULL || (data == NULL && len > 0)) {
		errno = EINVAL;
		return -1;
	}
	if (s->corrupt) {
		errno = EPROTO;
		return -1;
	}
	stream_compact(s);
	if (len > SIZE_MAX - s->len) {
		errno = ENOMEM;
		return -1;
	}
	if (buf_grow(&s->buf, &s->cap, s->len, s->len + len) == -1)
		return -1;
	if (len > 0)
		memcpy(s->buf + s->len, data, len);
	s->len += len;
	return 0;
}

int
vici_stream_next(struct vici_stream *s, const uint8_t **pkt, size_t *len)
{
	const uint8_t *p;
	uint32_t plen;

	if (s == NULL) {
		errno = EINVAL;
		return -1;
	}
	if (s->corrupt) {
		errno = EPROTO;
		return -1;
	}
	stream_compact(s);
	if (s->len < VICI_HDR_LEN)
		return 0;
	p = s->buf;
	plen = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | (uint32_t)p[3];
	/* Reject on the header alone: no point buffering 4 GB to refuse it. */
	if (plen == 0 || plen > VICI_MAX_PACKET) {
		s->corrupt = 1;
		errno = EPROTO;
		return -1;
	}
	if (s->len - VICI_HDR_LEN < plen)
		return 0;
	*pkt = p + VICI_HDR_LEN;
	*len = plen;
	s->off = VICI_HDR_LEN + (size_t)plen;
	return 1;
}

void
vici_stream_free(struct vici_stream *s)
{
	if (s == NULL)
		return;
	buf_free(s->buf, s->cap);
	free(s);
}

/* ---- parser ----------------------------------------------------------- */

struct parse_state {
	const uint8_t	*p;
	size_t		 len;
	size_t		 off;
	char		*err;
	size_t		 errlen;
};

static int parse_fail(struct parse_state *, const char *, ...)
    GRGW_PRINTF(2, 3);

static int
parse_fail(struct parse_state *ps, const char *fmt, ...)
{
	va_list	 ap;
	int	 n;

	if (ps->err != NULL && ps->errlen > 0) {
		va_start(ap, fmt);
		n = vsnprintf(ps->err, ps->errlen, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t)n < ps->errlen)
			snprintf(ps->err + n, ps->errlen - (size_t)n,
			    " at offset %zu", ps->off);
	}
	errno = EBADMSG;
	return -1;
}

static int
parse_u8(struct parse_state *ps, uint8_t *v, const char *what)
{
	if (ps->len - ps->off < 1)
		return parse_fail(ps, "truncated %s", what);
	*v = ps->p[ps->off++];
	return 0;
}

/* Name with a u8 length: copied into dst (>= 256 bytes), no NUL inside. */
static int
parse_name(struct parse_state *ps, char *dst, const char *what)
{
	uint8_t	 nlen = 0;

	if (parse_u8(ps, &nlen, what) == -1)
		return -1;
	if (ps->len - ps->off < nlen)
		return parse_fail(ps, "%s length %u past end", what, nlen);
	if (memchr(ps->p + ps->off, '\0', nlen) != NULL)
		return parse_fail(ps, "%s contains NUL", what);
	memcpy(dst, ps->p + ps->off, nlen);
	dst[nlen] = '\0';
	ps->off += nlen;
	return 0;
}

/* Value with a u16 length: returns its position, NUL allowed inside. */
static int
parse_value(struct parse_state *ps, const uint8_t **val, size_t *vlen)
{
	size_t	 n;

	if (ps->len - ps->off < 2)
		return parse_fail(ps, "truncated value length");
	n = (size_t)ps->p[ps->off] << 8 | ps->p[ps->off + 1];
	ps->off += 2;
	if (ps->len - ps->off < n)
		return parse_fail(ps, "value length %zu past end", n);
	*val = ps->p + ps->off;
	*vlen = n;
	ps->off += n;
	return 0;
}

static void
node_free(struct vici_node *n)
{
	struct vici_node *next;

	/* Siblings iteratively; children recurse at most depth + list deep. */
	for (; n != NULL; n = next) {
		next = n->next;
		node_free(n->child);
		free(n->name);
		if (n->value != NULL) {
			sodium_memzero(n->value, n->len);
			free(n->value);
		}
		free(n);
	}
}

static struct vici_node *
node_new(enum vici_node_kind kind, const char *name, const uint8_t *val,
    size_t vlen)
{
	struct vici_node *n;

	if ((n = calloc(1, sizeof(*n))) == NULL)
		return NULL;
	n->kind = kind;
	if ((n->name = strdup(name)) == NULL)
		goto fail;
	if (kind == VICI_NODE_KV) {
		if ((n->value = malloc(vlen + 1)) == NULL)
			goto fail;
		if (vlen > 0)
			memcpy(n->value, val, vlen);
		n->value[vlen] = '\0';
		n->len = vlen;
	}
	return n;
fail:
	free(n->name);
	free(n);
	return NULL;
}

/* An open section or list and the tail of its children, for O(1) append. */
struct parse_level {
	struct vici_node *node;
	struct vici_node *tail;
};

static void
level_append(struct parse_level *lv, struct vici_node *n)
{
	if (lv->tail == NULL)
		lv->node->child = n;
	else
		lv->tail->next = n;
	lv->tail = n;
}

int
vici_parse(const uint8_t *pkt, size_t len, struct vici_msg **out,
    char *err, size_t errlen)
{
	/* root, VICI_MAX_DEPTH sections and one list */
	struct parse_level stack[VICI_MAX_DEPTH + 2];
	struct parse_state ps = { pkt, len, 0, err, errlen };
	struct vici_msg	*m = NULL;
	struct vici_node *n;
	const uint8_t	*val = NULL;
	size_t		 vlen = 0, nodes = 0;
	char		 name[VICI_NAME_MAX + 1];
	int		 top = 0, in_list = 0, ret = -1;
	uint8_t		 etype;

	*out = NULL;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (pkt == NULL && len > 0) {
		parse_fail(&ps, "no packet");
		goto cleanup;
	}
	if ((m = calloc(1, sizeof(*m))) == NULL ||
	    (m->root = node_new(VICI_NODE_SECTION, "", NULL, 0)) == NULL) {
		parse_fail(&ps, "out of memory");
		goto cleanup;
	}
	if (parse_u8(&ps, &m->type, "packet type") == -1)
		goto cleanup;
	if (m->type > VICI_EVENT) {
		parse_fail(&ps, "unknown packet type %u", m->type);
		goto cleanup;
	}
	if (vici_type_is_named(m->type) &&
	    parse_name(&ps, m->name, "packet name") == -1)
		goto cleanup;

	stack[0].node = m->root;
	stack[0].tail = NULL;
	while (ps.off < ps.len) {
		etype = ps.p[ps.off++];
		switch (etype) {
		case VICI_SECTION_START:
		case VICI_KEY_VALUE:
		case VICI_LIST_START:
			if (in_list) {
				parse_fail(&ps, "element %u inside a list",
				    etype);
				goto cleanup;
			}
			if (parse_name(&ps, name, "element name") == -1)
				goto cleanup;
			if (etype == VICI_KEY_VALUE &&
			    parse_value(&ps, &val, &vlen) == -1)
				goto cleanup;
			break;
		case VICI_LIST_ITEM:
			if (!in_list) {
				parse_fail(&ps, "list item outside a list");
				goto cleanup;
			}
			if (parse_value(&ps, &val, &vlen) == -1)
				goto cleanup;
			name[0] = '\0';
			break;
		case VICI_SECTION_END:
			if (in_list || top == 0) {
				parse_fail(&ps, "unbalanced section end");
				goto cleanup;
			}
			top--;
			continue;
		case VICI_LIST_END:
			if (!in_list) {
				parse_fail(&ps, "unbalanced list end");
				goto cleanup;
			}
			in_list = 0;
			top--;
			continue;
		default:
			ps.off--;
			parse_fail(&ps, "unknown element type %u", etype);
			goto cleanup;
		}

		if (etype == VICI_SECTION_START && top >= VICI_MAX_DEPTH) {
			parse_fail(&ps, "sections nested deeper than %d",
			    VICI_MAX_DEPTH);
			goto cleanup;
		}
		if (++nodes > VICI_MAX_NODES) {
			parse_fail(&ps, "more than %d elements",
			    VICI_MAX_NODES);
			goto cleanup;
		}
		switch (etype) {
		case VICI_SECTION_START:
			n = node_new(VICI_NODE_SECTION, name, NULL, 0);
			break;
		case VICI_LIST_START:
			n = node_new(VICI_NODE_LIST, name, NULL, 0);
			break;
		default:
			n = node_new(VICI_NODE_KV, name, val, vlen);
			break;
		}
		if (n == NULL) {
			parse_fail(&ps, "out of memory");
			goto cleanup;
		}
		level_append(&stack[top], n);
		if (etype == VICI_SECTION_START || etype == VICI_LIST_START) {
			top++;
			stack[top].node = n;
			stack[top].tail = NULL;
			in_list = etype == VICI_LIST_START;
		}
	}
	if (in_list) {
		parse_fail(&ps, "unterminated list");
		goto cleanup;
	}
	if (top != 0) {
		parse_fail(&ps, "%d unterminated section(s)", top);
		goto cleanup;
	}
	*out = m;
	m = NULL;
	ret = 0;
cleanup:
	vici_msg_free(m);
	return ret;
}

void
vici_msg_free(struct vici_msg *m)
{
	if (m == NULL)
		return;
	node_free(m->root);
	free(m);
}

/* ---- lookup ----------------------------------------------------------- */

const struct vici_node *
vici_find(const struct vici_node *section, const char *name)
{
	const struct vici_node *n;

	if (section == NULL || name == NULL)
		return NULL;
	for (n = section->child; n != NULL; n = n->next)
		if (strcmp(n->name, name) == 0)
			return n;
	return NULL;
}

const char *
vici_get_str(const struct vici_node *section, const char *key)
{
	const struct vici_node *n;

	n = vici_find(section, key);
	if (n == NULL || n->kind != VICI_NODE_KV)
		return NULL;
	return n->value;
}

int
vici_get_bool(const struct vici_node *section, const char *key)
{
	const char *v;

	v = vici_get_str(section, key);
	return v != NULL && strcmp(v, "yes") == 0;
}
