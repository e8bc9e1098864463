/*
 * Test driver for tests/feeds/run.sh: the pair's fence client
 * (gw/fence.c) against a real etcd, steered by lines on stdin, one line
 * of answer per command.  The loop runs between commands too, so that
 * the kept connection lives as in the daemon (evhttp sees etcd close it).
 *
 *   read TIMEOUT_MS
 *   claim EXPECT_MOD_REVISION EPOCH HOLDER TIMEOUT_MS
 *       "read|claim completed=0|1 won=0|1 found=0|1 mod_revision=N
 *        value_ok=0|1 epoch=N holder=ADDRESS|- revision=N us=N reason=TEXT"
 *   race ROUNDS HOLDER_A HOLDER_B
 *       two fences, two connections: each round reads the key, then
 *       both claim it with the revision read and the next epoch, sent
 *       back to back (in turns, A or B first); prints
 *       "race rounds=N one_winner=N both_won=N none_won=N failed=N
 *        loser_saw_winner=N a_won=N b_won=N epoch=N"
 *   rtt N HOLDER
 *       N reads and N claims (each with the revision just read), one
 *       after the other; prints their round trips in microseconds and
 *       the TCP connections they took:
 *       "rtt read_median_us=N read_p90_us=N read_max_us=N claim_median_us=N
 *        claim_p90_us=N claim_max_us=N failed=N connections=N"
 *   busy
 *       a read, then a read and a claim while it is in flight; prints
 *       "busy second=RC/ERRNO third=RC/ERRNO first_completed=0|1 calls=N"
 *   stats   "stats requests=N completed=N failed=N timed_out=N connections=N"
 *   quit
 *
 * usage: fencetest http://127.0.0.1:PORT KEY
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
#include "fence.h"

#define REQUEST_TIMEOUT_MS	10000	/* generous: a slow disk stalls etcd */
#define RTT_MAX		10000

struct driver {
	struct event_base	*base;
	struct fence		*f;
	const char		*endpoint, *key;
	struct evbuffer		*in;
	struct event		*ev_in;
	int			 eof;		/* stdin closed */
	int			 quit;
};

/* One request's outcome, once its callback came. */
struct outcome {
	int			 done;
	struct fence_result	 r;
};

static void
outcome_cb(const struct fence_result *r, void *arg)
{
	struct outcome	*o = arg;

	o->r = *r;
	o->done = 1;
}

/* Run the loop until every outcome is in (each has its deadline). */
static void
wait_all(struct driver *d, struct outcome *o, int n)
{
	int	 i;

	for (i = 0; i < n; i++)
		while (!o[i].done)
			event_base_loop(d->base, EVLOOP_ONCE);
}

static void
print_result(const char *what, const struct fence_result *r)
{
	char	 holder[INET6_ADDRSTRLEN] = "-";

	if (r->value_ok)
		addr_fmt(&r->holder, holder, sizeof(holder));
	printf("%s completed=%d won=%d found=%d mod_revision=%lld value_ok=%d "
	    "epoch=%llu holder=%s revision=%lld us=%llu reason=%s\n", what,
	    r->completed, r->won, r->found, (long long)r->mod_revision,
	    r->value_ok, (unsigned long long)r->epoch, holder,
	    (long long)r->revision, (unsigned long long)r->elapsed_us,
	    r->reason);
}

static void
cmd_read(struct driver *d, unsigned timeout_ms)
{
	struct outcome	 o = { 0 };

	if (fence_read(d->f, timeout_ms, outcome_cb, &o) == -1) {
		printf("read refused: %s\n", strerror(errno));
		return;
	}
	wait_all(d, &o, 1);
	print_result("read", &o.r);
}

static void
cmd_claim(struct driver *d, long long expect, unsigned long long epoch,
    const char *holder, unsigned timeout_ms)
{
	struct outcome		 o = { 0 };
	struct grgw_addr	 a;

	if (addr_parse(holder, &a) == -1) {
		printf("claim refused: %s is not an address\n", holder);
		return;
	}
	if (fence_claim(d->f, expect, epoch, &a, timeout_ms, outcome_cb,
	    &o) == -1) {
		printf("claim refused: %s\n", strerror(errno));
		return;
	}
	wait_all(d, &o, 1);
	print_result("claim", &o.r);
}

/* Did the loser see the winner, exactly as the winner wrote it? */
static int
saw_winner(const struct fence_result *loser, const struct fence_result *w)
{
	return loser->completed && !loser->won && loser->found &&
	    loser->value_ok && loser->epoch == w->epoch &&
	    addr_equal(&loser->holder, &w->holder) &&
	    loser->mod_revision == w->mod_revision;
}

/* A claim of the race; refused (it cannot be) counts as not completed. */
static void
race_claim(struct fence *f, int64_t expect, uint64_t epoch,
    const struct grgw_addr *holder, struct outcome *o)
{
	if (fence_claim(f, expect, epoch, holder, REQUEST_TIMEOUT_MS, outcome_cb,
	    o) == -1) {
		snprintf(o->r.reason, sizeof(o->r.reason), "refused: %s",
		    strerror(errno));
		o->done = 1;
	}
}

static void
cmd_race(struct driver *d, int rounds, const char *ha, const char *hb)
{
	struct grgw_addr	 a, b;
	struct fence		*fb;
	struct outcome		 rd, o[2];
	char			 err[256];
	int			 i, one = 0, both = 0, none = 0, failed = 0;
	int			 saw = 0, a_won = 0, b_won = 0, first;
	uint64_t		 epoch = 0;

	if (addr_parse(ha, &a) == -1 || addr_parse(hb, &b) == -1) {
		printf("race refused: bad address\n");
		return;
	}
	if ((fb = fence_new(d->base, d->endpoint, d->key, err,
	    sizeof(err))) == NULL) {
		printf("race refused: %s\n", err);
		return;
	}
	for (i = 0; i < rounds; i++) {
		memset(&rd, 0, sizeof(rd));
		memset(o, 0, sizeof(o));
		if (fence_read(d->f, REQUEST_TIMEOUT_MS, outcome_cb, &rd) == -1)
			break;
		wait_all(d, &rd, 1);
		if (!rd.r.completed) {
			failed++;
			continue;
		}
		epoch = rd.r.epoch + 1;
		/* Back to back, A first in even rounds, B in odd ones. */
		first = i % 2;
		race_claim(first ? fb : d->f, rd.r.mod_revision, epoch,
		    first ? &b : &a, &o[first]);
		race_claim(first ? d->f : fb, rd.r.mod_revision, epoch,
		    first ? &a : &b, &o[!first]);
		wait_all(d, o, 2);
		if (!o[0].r.completed || !o[1].r.completed) {
			failed++;
			continue;
		}
		if (o[0].r.won && o[1].r.won)
			both++;
		else if (!o[0].r.won && !o[1].r.won)
			none++;
		else {
			one++;
			a_won += o[0].r.won;
			b_won += o[1].r.won;
			if (o[0].r.won ? saw_winner(&o[1].r, &o[0].r) :
			    saw_winner(&o[0].r, &o[1].r))
				saw++;
		}
	}
	printf("race rounds=%d one_winner=%d both_won=%d none_won=%d "
	    "failed=%d loser_saw_winner=%d a_won=%d b_won=%d epoch=%llu\n",
	    rounds, one, both, none, failed, saw, a_won, b_won,
	    (unsigned long long)epoch);
	fence_free(fb);
}

static int
cmp_u64(const void *x, const void *y)
{
	uint64_t	 a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return a < b ? -1 : a > b;
}

static void
cmd_rtt(struct driver *d, int n, const char *holder)
{
	static uint64_t		 reads[RTT_MAX], claims[RTT_MAX];
	struct fence_stats	 st0, st;
	struct grgw_addr	 a;
	struct outcome		 o;
	int64_t			 expect;
	uint64_t		 epoch;
	int			 i, nr = 0, nc = 0, failed = 0;

	if (n < 1 || n > RTT_MAX || addr_parse(holder, &a) == -1) {
		printf("rtt refused\n");
		return;
	}
	fence_get_stats(d->f, &st0);
	for (i = 0; i < n; i++) {
		memset(&o, 0, sizeof(o));
		if (fence_read(d->f, REQUEST_TIMEOUT_MS, outcome_cb, &o) == -1)
			break;
		wait_all(d, &o, 1);
		if (!o.r.completed) {
			failed++;
			continue;
		}
		reads[nr++] = o.r.elapsed_us;
		expect = o.r.mod_revision;
		epoch = o.r.epoch + 1;
		memset(&o, 0, sizeof(o));
		if (fence_claim(d->f, expect, epoch, &a, REQUEST_TIMEOUT_MS,
		    outcome_cb, &o) == -1)
			break;
		wait_all(d, &o, 1);
		if (!o.r.completed || !o.r.won) {
			failed++;
			continue;
		}
		claims[nc++] = o.r.elapsed_us;
	}
	fence_get_stats(d->f, &st);
	if (nr == 0 || nc == 0) {
		printf("rtt failed=%d\n", failed);
		return;
	}
	qsort(reads, (size_t)nr, sizeof(reads[0]), cmp_u64);
	qsort(claims, (size_t)nc, sizeof(claims[0]), cmp_u64);
	printf("rtt read_median_us=%llu read_p90_us=%llu read_max_us=%llu "
	    "claim_median_us=%llu claim_p90_us=%llu claim_max_us=%llu "
	    "failed=%d connections=%llu\n",
	    (unsigned long long)reads[nr / 2],
	    (unsigned long long)reads[nr * 9 / 10],
	    (unsigned long long)reads[nr - 1],
	    (unsigned long long)claims[nc / 2],
	    (unsigned long long)claims[nc * 9 / 10],
	    (unsigned long long)claims[nc - 1], failed,
	    (unsigned long long)(st.connections - st0.connections));
}

static void
cmd_busy(struct driver *d)
{
	struct grgw_addr	 a;
	struct outcome		 o[3];
	struct timeval		 tv = { 0, 100000 };
	int			 rc2, e2, rc3, e3;

	memset(o, 0, sizeof(o));
	addr_parse("198.18.1.9", &a);
	if (fence_read(d->f, REQUEST_TIMEOUT_MS, outcome_cb, &o[0]) == -1) {
		printf("busy refused: %s\n", strerror(errno));
		return;
	}
	errno = 0;
	rc2 = fence_read(d->f, REQUEST_TIMEOUT_MS, outcome_cb, &o[1]);
	e2 = errno;
	errno = 0;
	rc3 = fence_claim(d->f, 0, 1, &a, REQUEST_TIMEOUT_MS, outcome_cb, &o[2]);
	e3 = errno;
	wait_all(d, o, 1);
	/* A little more loop: a refused request must never call back. */
	event_base_loopexit(d->base, &tv);
	event_base_dispatch(d->base);
	printf("busy second=%d/%s third=%d/%s first_completed=%d calls=%d\n",
	    rc2, e2 == EBUSY ? "EBUSY" : strerror(e2), rc3,
	    e3 == EBUSY ? "EBUSY" : strerror(e3), o[0].r.completed,
	    o[0].done + o[1].done + o[2].done);
}

static void
command(struct driver *d, char *line)
{
	struct fence_stats	 st;
	char			 h1[64], h2[64];
	long long		 expect;
	unsigned long long	 epoch;
	unsigned		 ms;
	int			 n;

	if (sscanf(line, "read %u", &ms) == 1)
		cmd_read(d, ms);
	else if (sscanf(line, "claim %lld %llu %63s %u", &expect, &epoch, h1,
	    &ms) == 4)
		cmd_claim(d, expect, epoch, h1, ms);
	else if (sscanf(line, "race %d %63s %63s", &n, h1, h2) == 3)
		cmd_race(d, n, h1, h2);
	else if (sscanf(line, "rtt %d %63s", &n, h1) == 2)
		cmd_rtt(d, n, h1);
	else if (strcmp(line, "busy") == 0)
		cmd_busy(d);
	else if (strcmp(line, "stats") == 0) {
		fence_get_stats(d->f, &st);
		printf("stats requests=%llu completed=%llu failed=%llu "
		    "timed_out=%llu connections=%llu\n",
		    (unsigned long long)st.requests,
		    (unsigned long long)st.completed,
		    (unsigned long long)st.failed,
		    (unsigned long long)st.timed_out,
		    (unsigned long long)st.connections);
	} else if (strcmp(line, "quit") == 0)
		d->quit = 1;
	else
		printf("unknown command: %s\n", line);
}

/* Lines are only buffered here: commands run from main, off the loop. */
static void
stdin_cb(evutil_socket_t fd, short what, void *arg)
{
	struct driver	*d = arg;
	int		 n;

	n = evbuffer_read(d->in, fd, 4096);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		d->eof = 1;
		event_del(d->ev_in);
	}
}

int
main(int argc, char *argv[])
{
	struct driver	 d;
	char		*line, err[256];

	if (argc != 3) {
		fprintf(stderr, "usage: fencetest ENDPOINT KEY\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	log_init("fencetest", LOG_LVL_INFO);
	memset(&d, 0, sizeof(d));
	d.endpoint = argv[1];
	d.key = argv[2];
	if ((d.base = event_base_new()) == NULL ||
	    (d.in = evbuffer_new()) == NULL)
		return 1;
	if ((d.f = fence_new(d.base, argv[1], argv[2], err,
	    sizeof(err))) == NULL) {
		fprintf(stderr, "fencetest: %s\n", err);
		return 1;
	}
	fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
	if ((d.ev_in = event_new(d.base, 0, EV_READ | EV_PERSIST, stdin_cb,
	    &d)) == NULL)
		return 1;
	event_add(d.ev_in, NULL);
	printf("ready\n");
	while (!d.quit) {
		while (!d.quit && (line = evbuffer_readln(d.in, NULL,
		    EVBUFFER_EOL_LF)) != NULL) {
			command(&d, line);
			free(line);
		}
		if (d.eof)
			break;
		event_base_loop(d.base, EVLOOP_ONCE);
	}
	event_free(d.ev_in);
	fence_free(d.f);
	evbuffer_free(d.in);
	event_base_free(d.base);
	return 0;
}
