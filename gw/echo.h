/*
 * echo.c: the proof that the tunnel carries traffic.  ICMP echo requests
 * from this gateway's LAN address to the peer gateway's: an answer can
 * only come back through the tunnel.
 */
#ifndef GRGW_ECHO_H
#define GRGW_ECHO_H

#include "grgw.h"

struct event_base;
struct echo_probe;

typedef void (*echo_cb)(void *arg);

/*
 * Send a request from src to dst every interval until a reply arrives,
 * then call cb once and stop.  Addresses are copied; the probe is owned
 * by the caller and released with echo_stop().  NULL on failure (logged).
 */
struct echo_probe *echo_start(struct event_base *base,
	    const struct grgw_addr *src, const struct grgw_addr *dst,
	    echo_cb cb, void *arg);
void	echo_stop(struct echo_probe *e);		/* accepts NULL */

#endif /* GRGW_ECHO_H */
