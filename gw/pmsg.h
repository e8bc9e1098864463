/*
 * pmsg.c: the messages between the privileged parent and the network
 * process (netproc.c), a pure codec.
 *
 * Frame: 8 bytes of header, then the body; integers big-endian.
 *
 *    0   2  magic 0x6777 ("gw")
 *    2   1  type (enum pmsg_type)
 *    3   1  reserved, zero
 *    4   4  body length, at most PMSG_BODY_MAX
 *
 * Each type has a body of its own, built and checked by the functions
 * below; a body of the wrong length or with a field out of range is
 * refused whole.  Either side treats a bad frame as a broken peer and
 * closes the channel.
 */
#ifndef GRGW_PMSG_H
#define GRGW_PMSG_H

#include <stddef.h>
#include <stdint.h>

#include "grgw.h"
#include "linkstate.h"

#define PMSG_HDR_LEN		8
#define PMSG_BODY_MAX		(1024 * 1024)
#define PMSG_TEXT_MAX		512	/* error texts */

enum pmsg_type {
	/* parent -> network process */
	PMSG_CONF = 1,		/* what the process needs of the config */
	PMSG_KEY = 2,		/* the probe key */
	PMSG_START = 3,		/* start, paths assumed up or down */
	PMSG_PUBLISH = 4,	/* the link-state document for etcd */
	PMSG_DOC = 5,		/* a document asked for by PMSG_WANT */
	PMSG_PAIR_KEY = 6,	/* the heartbeat key(s) of the pair */
	PMSG_PAIR_CMD = 7,	/* news for the pair's role engine */
	PMSG_PAIR_RESUME = 8,	/* the hold a restarted engine takes on */
	PMSG_TUNNEL_NEW = 9,	/* a CHILD_SA came up (no body) */
	/* network process -> parent */
	PMSG_READY = 16,	/* started, or why not */
	PMSG_PATH = 17,		/* a probe path's verdict and figures */
	PMSG_WANT = 18,		/* an HTTP client asks for a document */
	PMSG_ETCD = 19,		/* how publishing to etcd goes */
	PMSG_ROLE = 20,		/* the pair's role, and its hold */
};

enum pmsg_doc { PMSG_DOC_STATUS = 1, PMSG_DOC_METRICS = 2 };

/* A frame as found in a buffer; body points into that buffer. */
struct pmsg {
	uint8_t		 type;
	const uint8_t	*body;
	size_t		 len;
};

/*
 * Find the first frame in buf: the bytes it takes (> 0) and *out, 0 when
 * more bytes are needed (once the header is there, out->type and
 * out->len say how many), -1 when the bytes cannot be a frame (bad
 * magic, unknown type, nonzero reserved byte, body longer than
 * PMSG_BODY_MAX).
 */
int	pmsg_frame(const uint8_t *buf, size_t len, struct pmsg *out);
/* Write the header of a frame of type t with a body of len bytes. */
int	pmsg_header(uint8_t hdr[PMSG_HDR_LEN], enum pmsg_type t, size_t len);

/* ---- bodies ---------------------------------------------------------------- */

/*
 * PMSG_CONF: the names, the WAN and LAN addresses of both sides, the
 * [probe] settings, the HTTP listen address, the etcd endpoint, key and
 * TTL, the log level and [pair] but for its key file; nothing else of
 * the configuration (no file path, no key).  Encoding appends to buf (at most PMSG_CONF_MAX bytes);
 * decoding fills those fields of a zeroed *out.
 */
#define PMSG_CONF_MAX		2048
int	pmsg_conf_encode(const struct grgw_config *cfg, uint8_t *buf,
	    size_t size);
int	pmsg_conf_decode(const uint8_t *body, size_t len,
	    struct grgw_config *out);

/*
 * PMSG_KEY: the probe key the process sends with, then, while a key
 * rotation is under way, the next one it also accepts (PROBE_KEY_LEN
 * bytes each, so a body of one or two keys).  Decoding points *key and
 * *next into body (*next NULL when there is none).
 */
#define PMSG_KEY_LEN		32	/* PROBE_KEY_LEN */
#define PMSG_KEYS_MAX		(2 * PMSG_KEY_LEN)
int	pmsg_key_decode(const uint8_t *body, size_t len, const uint8_t **key,
	    const uint8_t **next);

/* PMSG_START: whether each path starts as up (it was, before a restart). */
#define PMSG_START_LEN		PROBE_NPATHS
int	pmsg_start_decode(const uint8_t *body, size_t len,
	    int up[PROBE_NPATHS]);

/* PMSG_PATH: one path's stats; changed: the verdict just flipped. */
#define PMSG_PATH_LEN		(5 + 7 * 8 + 10 * 8)
void	pmsg_path_encode(enum probe_path path, int changed,
	    const struct path_stats *st, uint8_t out[PMSG_PATH_LEN]);
int	pmsg_path_decode(const uint8_t *body, size_t len,
	    enum probe_path *path, int *changed, struct path_stats *st);

/* PMSG_WANT: a request id and a document; PMSG_DOC: the id, the text. */
#define PMSG_WANT_LEN		5
void	pmsg_want_encode(uint32_t id, enum pmsg_doc doc,
	    uint8_t out[PMSG_WANT_LEN]);
int	pmsg_want_decode(const uint8_t *body, size_t len, uint32_t *id,
	    enum pmsg_doc *doc);
#define PMSG_DOC_HDR_LEN	4
void	pmsg_doc_header(uint32_t id, uint8_t out[PMSG_DOC_HDR_LEN]);
/* *text points into body (not NUL-terminated), *textlen its length. */
int	pmsg_doc_decode(const uint8_t *body, size_t len, uint32_t *id,
	    const uint8_t **text, size_t *textlen);

/* PMSG_READY: 1 started, or 0 and why (copied into err). */
int	pmsg_ready_encode(int ok, const char *why, uint8_t *buf,
	    size_t size);
int	pmsg_ready_decode(const uint8_t *body, size_t len, int *ok,
	    char *why, size_t whylen);

/*
 * PMSG_ETCD: whether the link state is published and vouched for by a
 * live lease, and the last error ("" once it works again); the same
 * layout as PMSG_READY.
 */
int	pmsg_etcd_encode(int healthy, const char *error, uint8_t *buf,
	    size_t size);
int	pmsg_etcd_decode(const uint8_t *body, size_t len, int *healthy,
	    char *error, size_t errlen);

/*
 * PMSG_PAIR_KEY: the key the heartbeats are sent with, then, during a key
 * rotation, the next one also accepted: the layout of PMSG_KEY, decoded
 * by pmsg_key_decode().
 *
 * PMSG_PAIR_CMD: one byte, what the parent tells the role engine.
 */
enum pmsg_pair_cmd {
	PMSG_PAIR_HANDOVER = 1,	/* the operator asks: hand the role over */
	PMSG_PAIR_WAN_UP = 2,	/* this gateway's WAN link is up */
	PMSG_PAIR_WAN_DOWN = 3,	/* ... is down: do not claim */
	PMSG_PAIR_HELD = 4,	/* the floating addresses are on this host */
	PMSG_PAIR_DROPPED = 5,	/* ... are gone from it (or never were) */
	PMSG_PAIR_READY = 6,	/* this standby's SAs made ready for a
				 * handover are in */
	PMSG_PAIR_UNREADY = 7,	/* ... are not (or no more) */
	PMSG_PAIR_CLOSED = 8,	/* active, its partner's SAs in: this
				 * gateway's are closed and the drain on
				 * (or that could not be): hand over */
};
#define PMSG_PAIR_CMD_LEN	1
int	pmsg_pair_cmd_decode(const uint8_t *body, size_t len,
	    enum pmsg_pair_cmd *cmd);

/*
 * PMSG_PAIR_RESUME: sent before PMSG_START to a network process started
 * while this gateway holds the floating addresses: the epoch they are
 * held under and the hold's end (CLOCK_MONOTONIC ms, as PMSG_ROLE's), so
 * that the new role engine carries the holding on instead of starting
 * from nothing (and the role moving).  Both nonzero.
 */
#define PMSG_PAIR_RESUME_LEN	16
void	pmsg_pair_resume_encode(uint64_t epoch, uint64_t hold_until_ms,
	    uint8_t out[PMSG_PAIR_RESUME_LEN]);
int	pmsg_pair_resume_decode(const uint8_t *body, size_t len,
	    uint64_t *epoch, uint64_t *hold_until_ms);

/*
 * PMSG_ROLE: where the pair stands, on every change and at every
 * heartbeat interval while this gateway is active.  hold_until_ms: until
 * when (CLOCK_MONOTONIC, ms; one clock for both processes) this gateway
 * may hold the floating addresses unless told again (0 unless active);
 * the parent drops them then, so that a network process that hangs or
 * dies cannot leave them held.  A time, not a length: a message that
 * waits in the socket does not lengthen the hold.  The role
 * values are the engine's (pair.h); reason is text ("" for none).
 */
struct pmsg_role {
	uint8_t		 role;		/* enum pair_role_state */
	uint8_t		 partner_role;	/* as its last heartbeat said */
	uint8_t		 partner_seen;	/* heard within dead_ms */
	uint8_t		 etcd_ok;	/* the fence answered lately */
	uint8_t		 paths_seen;	/* bit n - 1: the partner heard on
					 * heartbeat path n within dead_ms */
	uint8_t		 prep;		/* PMSG_PREP_*: a handover made
					 * before it breaks */
	uint64_t	 epoch;
	uint64_t	 hold_until_ms;
	uint32_t	 partner_age_ms;	/* since its last heartbeat;
						 * UINT32_MAX: never heard */
	uint64_t	 takeovers;	/* roles won by this gateway */
	char		 reason[PMSG_TEXT_MAX + 1];
};
#define PMSG_ROLE_MAX_ROLE	8	/* role values are below this */
#define PMSG_ROLE_PATHS		0x03	/* the bits paths_seen may have */
#define PMSG_PREP_ASKED		0x01	/* standby: the active partner asks
					 * for this gateway's SAs ready */
#define PMSG_PREP_PARTNER_READY	0x02	/* active: the partner has them in;
					 * the handover under way uses them */
#define PMSG_PREP_ALL		0x03
int	pmsg_role_encode(const struct pmsg_role *r, uint8_t *buf,
	    size_t size);
int	pmsg_role_decode(const uint8_t *body, size_t len,
	    struct pmsg_role *out);

/* Text bodies (PMSG_PUBLISH): copied out as a NUL-terminated string; -1
 * if it holds a NUL or does not fit. */
int	pmsg_text_decode(const uint8_t *body, size_t len, char *out,
	    size_t size);

#endif /* GRGW_PMSG_H */
