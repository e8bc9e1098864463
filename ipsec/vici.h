/*
 * VICI: strongSwan's Versatile IKE Control Interface.
 *
 * Wire format (see strongSwan's src/libcharon/plugins/vici/README.md):
 *   packet  = u32 length (big endian, excluding itself) | u8 type | body
 *   named packet types (CMD_REQUEST, EVENT_REGISTER, EVENT_UNREGISTER,
 *   EVENT) carry u8 name length | name before the message body;
 *   message = element*, element = u8 element type | ...
 *     SECTION_START  u8 len | name
 *     SECTION_END
 *     KEY_VALUE      u8 len | name | u16 len (BE) | value
 *     LIST_START     u8 len | name
 *     LIST_ITEM      u16 len | value
 *     LIST_END
 *
 * vici_msg.c is a pure codec (builder, stream framer, parser into a tree);
 * vici_client.c is an asynchronous client on a libevent loop.
 */
#ifndef GRGW_VICI_H
#define GRGW_VICI_H

#include <stddef.h>
#include <stdint.h>

struct event_base;

#define VICI_MAX_PACKET		(512 * 1024)	/* we refuse larger packets */
#define VICI_MAX_DEPTH		16		/* section nesting we accept */
#define VICI_MAX_NODES		65536		/* elements per message */

enum vici_packet_type {
	VICI_CMD_REQUEST = 0,
	VICI_CMD_RESPONSE = 1,
	VICI_CMD_UNKNOWN = 2,
	VICI_EVENT_REGISTER = 3,
	VICI_EVENT_UNREGISTER = 4,
	VICI_EVENT_CONFIRM = 5,
	VICI_EVENT_UNKNOWN = 6,
	VICI_EVENT = 7,
};

enum vici_element_type {
	VICI_SECTION_START = 1,
	VICI_SECTION_END = 2,
	VICI_KEY_VALUE = 3,
	VICI_LIST_START = 4,
	VICI_LIST_ITEM = 5,
	VICI_LIST_END = 6,
};

/* Whether a packet type carries a name after the type byte. */
int	vici_type_is_named(uint8_t type);

/* ---- builder ---------------------------------------------------------- */

/*
 * A builder produces one complete packet including the length header.
 * Errors (overlong names or values, unbalanced sections) are sticky: the
 * first one makes vici_builder_finish() fail, so callers need not check
 * every add.  The buffer is wiped when freed, since it may carry secrets.
 */
struct vici_builder;
/* name is copied; may be NULL for unnamed packet types. */
struct vici_builder *vici_builder_new(uint8_t type, const char *name);
void	vici_add_kv(struct vici_builder *b, const char *key,
	    const void *value, size_t len);
void	vici_add_kv_str(struct vici_builder *b, const char *key,
	    const char *value);
void	vici_add_kv_uint(struct vici_builder *b, const char *key,
	    unsigned long long value);
void	vici_begin_section(struct vici_builder *b, const char *name);
void	vici_end_section(struct vici_builder *b);
void	vici_begin_list(struct vici_builder *b, const char *name);
void	vici_add_list_item(struct vici_builder *b, const void *value,
	    size_t len);
void	vici_add_list_item_str(struct vici_builder *b, const char *value);
void	vici_end_list(struct vici_builder *b);
/*
 * On success *out points into the builder (valid until it is freed) and
 * *len is the packet size including the 4-byte header; returns 0.
 * Returns -1 if any add failed or sections/lists are left open.
 */
int	vici_builder_finish(struct vici_builder *b, const uint8_t **out,
	    size_t *len);
void	vici_builder_free(struct vici_builder *b);	/* accepts NULL */

/* ---- stream framer ---------------------------------------------------- */

/*
 * Accumulates bytes from a stream socket and returns whole packets.
 * Feed any number of bytes at any boundary; vici_stream_next() returns 1
 * and the packet body (type byte onwards, without the length header) while
 * one is complete, 0 when more bytes are needed, -1 when the stream is
 * corrupt (length 0 or above VICI_MAX_PACKET): the connection must then be
 * dropped.  The returned pointer stays valid until the next feed/next call.
 */
struct vici_stream;
struct vici_stream *vici_stream_new(void);
int	vici_stream_feed(struct vici_stream *s, const void *data, size_t len);
int	vici_stream_next(struct vici_stream *s, const uint8_t **pkt,
	    size_t *len);
void	vici_stream_free(struct vici_stream *s);	/* accepts NULL */

/* ---- parsed messages -------------------------------------------------- */

enum vici_node_kind { VICI_NODE_SECTION, VICI_NODE_KV, VICI_NODE_LIST };

struct vici_node {
	enum vici_node_kind kind;
	char		*name;		/* NUL-terminated; "" for the root */
	/* KV: value bytes (NUL-terminated copy, len excludes the NUL);
	 * LIST: items are children of kind KV with empty names. */
	char		*value;
	size_t		len;
	struct vici_node *child;	/* first child (section, list) */
	struct vici_node *next;		/* next sibling */
};

struct vici_msg {
	uint8_t		type;		/* enum vici_packet_type */
	char		name[256];	/* command/event name, "" if none */
	struct vici_node *root;		/* section holding the body */
};

/*
 * Parse a packet body (type byte onwards, as returned by the framer).
 * Strict: every length is checked against the remaining bytes, nesting is
 * bounded by VICI_MAX_DEPTH, unbalanced sections or lists are errors.
 * On success returns 0 and *out (caller frees with vici_msg_free()).
 * On failure returns -1 and writes a reason into err.
 */
int	vici_parse(const uint8_t *pkt, size_t len, struct vici_msg **out,
	    char *err, size_t errlen);
void	vici_msg_free(struct vici_msg *m);		/* accepts NULL */

/* Child of a section by name (first match), or NULL.  Borrowed. */
const struct vici_node *vici_find(const struct vici_node *section,
	    const char *name);
/* Value of a key directly below section, or NULL.  Borrowed. */
const char *vici_get_str(const struct vici_node *section, const char *key);
/* "yes" -> 1, anything else or missing -> 0. */
int	vici_get_bool(const struct vici_node *section, const char *key);

/* ---- asynchronous client (vici_client.c) ------------------------------ */

struct vici_client;

/*
 * Reply to a request: reply is NULL when the connection failed before a
 * reply arrived (then the callback is still called exactly once).  The
 * message is owned by the client and valid only during the callback.
 */
typedef void (*vici_reply_cb)(const struct vici_msg *reply, void *arg);
/* An event (type VICI_EVENT); msg valid only during the callback. */
typedef void (*vici_event_cb)(const struct vici_msg *msg, void *arg);
/* Connection lost (or the peer sent a corrupt stream). */
typedef void (*vici_close_cb)(void *arg);
/*
 * A request's deadline passed without a reply: request is its command or
 * event name (borrowed, valid during the call), waited_ms how long it had
 * been at the head of the queue.  The connection is already dropped and
 * every pending request had its NULL reply; on_close is not called.
 */
typedef void (*vici_deadline_cb)(const char *request, unsigned waited_ms,
	    void *arg);

/* All callbacks run on base's loop.  arg is passed through untouched. */
struct vici_client *vici_client_new(struct event_base *base,
	    vici_event_cb on_event, vici_close_cb on_close, void *arg);
/* Who hears of a missed deadline; without one, on_close is called. */
void	vici_client_on_deadline(struct vici_client *c, vici_deadline_cb cb);
/* Connect to a unix socket path; non-blocking; 0 or -1 with errno. */
int	vici_client_connect(struct vici_client *c, const char *path);
int	vici_client_connected(const struct vici_client *c);
/*
 * Queue a request packet built with a builder (the bytes are copied and
 * wiped after sending).  Requests are sent one at a time; replies come in
 * order.  Event registrations (VICI_EVENT_REGISTER) are requests too and
 * their reply is the CONFIRM/UNKNOWN packet.
 */
int	vici_client_request(struct vici_client *c, const uint8_t *pkt,
	    size_t len, vici_reply_cb cb, void *arg);
/*
 * The same with a deadline: charon must answer within deadline_ms of the
 * request reaching the head of the queue (0: no deadline), or the
 * connection is given up as described at vici_deadline_cb.
 */
int	vici_client_request_within(struct vici_client *c, const uint8_t *pkt,
	    size_t len, unsigned deadline_ms, vici_reply_cb cb, void *arg);
/* Drops the connection; pending reply callbacks get NULL. */
void	vici_client_free(struct vici_client *c);	/* accepts NULL */

#endif /* GRGW_VICI_H */
