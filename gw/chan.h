/*
 * chan.c: one end of the channel between the parent and the network
 * process: a socketpair carrying pmsg frames, on a libevent loop.  Both
 * processes use it.
 */
#ifndef GRGW_CHAN_H
#define GRGW_CHAN_H

#include <stddef.h>
#include <stdint.h>

#include "pmsg.h"

struct event_base;
struct chan;

/*
 * A frame arrived; m and its body are valid during the call only.  The
 * callback may send, and may call chan_free() (the channel is then
 * released once the callback returns).
 */
typedef void (*chan_msg_cb)(const struct pmsg *m, void *arg);
/* The other end closed, or sent bytes that are not a frame. */
typedef void (*chan_close_cb)(const char *why, void *arg);

/* Takes fd (closed by chan_free()).  NULL on ENOMEM. */
struct chan *chan_new(struct event_base *base, int fd, chan_msg_cb on_msg,
	    chan_close_cb on_close, void *arg);
/*
 * Queue a frame: the header, then hdr (may be NULL) and body, both
 * copied.  0, or -1 when the channel is closed or the body too long.
 */
int	chan_send(struct chan *c, enum pmsg_type t, const void *hdr,
	    size_t hdrlen, const void *body, size_t len);
/* Wait (up to timeout_ms) until everything queued has been written. */
void	chan_flush(struct chan *c, int timeout_ms);
void	chan_free(struct chan *c);			/* accepts NULL */

/*
 * The event loop both processes run: its timers on the precise monotonic
 * clock, not the coarse one libevent picks by default (a tick, 4 ms,
 * early or late), since the pair's hold deadlines and the etcd
 * deadlines are kept to the millisecond.  NULL on ENOMEM.
 */
struct event_base *chan_loop_new(void);
/* That clock (CLOCK_MONOTONIC, system-wide: both processes read the same
 * one), in ms. */
uint64_t chan_mono_ms(void);

#endif /* GRGW_CHAN_H */
