/*
 * Test driver for tests/feeds/run.sh: the etcd publisher (gw/etcd.c) on a
 * libevent loop, steered by lines on stdin:
 *
 *   set VALUE   publish VALUE (the rest of the line); once etcd holds it,
 *               print "published VALUE lease ID"
 *   status      print "status healthy=0|1 lease=ID error=TEXT"
 *   quit        exit at once, without revoking the lease (as a crash
 *               would), so that the key must expire by itself
 *
 * usage: etcdtest http://127.0.0.1:PORT KEY TTL
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "grgw.h"
#include "feeds.h"

struct driver {
	struct event_base	*base;
	struct etcd_pub		*pub;
	struct evbuffer		*in;
	char			*value;		/* last set, not yet reported */
};

static void
report_cb(evutil_socket_t fd, short what, void *arg)
{
	struct driver	*d = arg;

	if (d->value == NULL || !etcd_pub_healthy(d->pub))
		return;
	printf("published %s lease %lld\n", d->value,
	    (long long)etcd_pub_lease(d->pub));
	free(d->value);
	d->value = NULL;
}

static void
command(struct driver *d, char *line)
{
	const char	*err;

	if (strncmp(line, "set ", 4) == 0) {
		free(d->value);
		if ((d->value = strdup(line + 4)) == NULL)
			exit(2);
		etcd_pub_set(d->pub, line + 4);
	} else if (strcmp(line, "status") == 0) {
		err = etcd_pub_last_error(d->pub);
		printf("status healthy=%d lease=%lld error=%s\n",
		    etcd_pub_healthy(d->pub),
		    (long long)etcd_pub_lease(d->pub), err ? err : "none");
	} else if (strcmp(line, "quit") == 0) {
		fflush(stdout);
		_exit(0);
	} else
		printf("unknown command: %s\n", line);
}

static void
stdin_cb(evutil_socket_t fd, short what, void *arg)
{
	struct driver	*d = arg;
	char		*line;
	int		 n;

	n = evbuffer_read(d->in, fd, 4096);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	while ((line = evbuffer_readln(d->in, NULL, EVBUFFER_EOL_LF)) != NULL) {
		command(d, line);
		free(line);
	}
	if (n <= 0)
		event_base_loopexit(d->base, NULL);
}

int
main(int argc, char *argv[])
{
	struct driver	 d;
	struct event	*ev_in, *ev_report;
	struct timeval	 tv = { 0, 50000 };
	long		 ttl;

	if (argc != 4 || (ttl = strtol(argv[3], NULL, 10)) < 2) {
		fprintf(stderr, "usage: etcdtest ENDPOINT KEY TTL\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	log_init("etcdtest", LOG_LVL_INFO);
	memset(&d, 0, sizeof(d));
	if ((d.base = event_base_new()) == NULL ||
	    (d.in = evbuffer_new()) == NULL)
		return 1;
	if ((d.pub = etcd_pub_new(d.base, argv[1], argv[2],
	    (unsigned)ttl)) == NULL)
		return 1;
	fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
	ev_in = event_new(d.base, 0, EV_READ | EV_PERSIST, stdin_cb, &d);
	ev_report = event_new(d.base, -1, EV_PERSIST, report_cb, &d);
	if (ev_in == NULL || ev_report == NULL)
		return 1;
	event_add(ev_in, NULL);
	event_add(ev_report, &tv);
	printf("ready\n");
	event_base_dispatch(d.base);

	event_free(ev_in);
	event_free(ev_report);
	etcd_pub_free(d.pub);
	evbuffer_free(d.in);
	free(d.value);
	event_base_free(d.base);
	return 0;
}
