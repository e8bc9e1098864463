/*
 * Logging: one line per message on stderr, with a timestamp and level.
 * The daemon points stderr at its log file (or the journal under systemd).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "grgw.h"

static const char *log_ident = "grgw";
static enum log_level log_threshold = LOG_LVL_INFO;

static const char *const level_names[] = {
	[LOG_LVL_ERR] = "error",
	[LOG_LVL_WARN] = "warning",
	[LOG_LVL_INFO] = "info",
	[LOG_LVL_DEBUG] = "debug",
};

void
log_init(const char *ident, enum log_level level)
{
	if (ident != NULL)
		log_ident = ident;
	log_threshold = level;
}

void
log_set_level(enum log_level level)
{
	log_threshold = level;
}

enum log_level
log_get_level(void)
{
	return log_threshold;
}

int
log_level_parse(const char *s, enum log_level *out)
{
	size_t i;

	for (i = 0; i < nitems(level_names); i++) {
		if (strcasecmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

/*
 * Rate limit per message: a message (its format string, i.e. the place
 * in the code that logs it) is written at most LOG_BURST times a second;
 * what is held back is counted and said with the next line that gets
 * through.  A flood (a client storm, a loop gone wrong) cannot fill the
 * log's file system, and other messages still get through.
 */
#define LOG_BURST	10		/* lines per message per second */
#define LOG_SITES	128		/* messages tracked */

struct log_site {
	const char	*fmt;
	time_t		 second;
	unsigned	 count;
	unsigned	 held;		/* lines held back */
};

static struct log_site log_sites[LOG_SITES];

/* The slot of fmt (a shared last slot once the table is full). */
static struct log_site *
log_site_of(const char *fmt)
{
	size_t	 h = ((uintptr_t)fmt >> 3) % (LOG_SITES - 1), i;

	for (i = 0; i < LOG_SITES - 1; i++) {
		struct log_site *s = &log_sites[(h + i) % (LOG_SITES - 1)];

		if (s->fmt == fmt || s->fmt == NULL) {
			s->fmt = fmt;
			return s;
		}
	}
	return &log_sites[LOG_SITES - 1];
}

static void
log_write(const char *stamp, long ms, enum log_level level, const char *msg,
    const char *errstr)
{
	if (errstr != NULL)
		fprintf(stderr, "%s.%03ld %s[%d] %s: %s: %s\n", stamp, ms,
		    log_ident, (int)getpid(), level_names[level], msg,
		    errstr);
	else
		fprintf(stderr, "%s.%03ld %s[%d] %s: %s\n", stamp, ms,
		    log_ident, (int)getpid(), level_names[level], msg);
}

static void
log_emit(enum log_level level, const char *errstr, const char *fmt,
    va_list ap)
{
	char msg[1024], note[96], stamp[32];
	struct log_site *site;
	struct timespec ts;
	struct tm tm;
	int saved = errno;

	if (level > log_threshold)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	site = log_site_of(fmt);
	if (site->second != ts.tv_sec) {
		site->second = ts.tv_sec;
		site->count = 0;
	}
	if (++site->count > LOG_BURST) {
		site->held++;
		errno = saved;
		return;
	}
	vsnprintf(msg, sizeof(msg), fmt, ap);
	localtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
	if (site->held > 0) {
		snprintf(note, sizeof(note), "(%u more like the next one were "
		    "not logged)", site->held);
		log_write(stamp, ts.tv_nsec / 1000000, level, note, NULL);
		site->held = 0;
	}
	log_write(stamp, ts.tv_nsec / 1000000, level, msg, errstr);
	fflush(stderr);
	errno = saved;
}

void
log_warn(const char *fmt, ...)
{
	const char *e = strerror(errno);
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_LVL_WARN, e, fmt, ap);
	va_end(ap);
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_LVL_WARN, NULL, fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_LVL_INFO, NULL, fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_LVL_DEBUG, NULL, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	const char *e = strerror(errno);
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_LVL_ERR, e, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_LVL_ERR, NULL, fmt, ap);
	va_end(ap);
	exit(1);
}
