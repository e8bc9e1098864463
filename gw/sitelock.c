/*
 * The site lock: one daemon per site, and no cleanup behind a live
 * daemon's back.  An exclusive flock on <site dir>/grgw.pid, which holds
 * the holder's pid for messages.
 */
#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "grgw.h"
#include "sitelock.h"

static void
lock_path(const char *dir, char *buf, size_t size)
{
	snprintf(buf, size, "%s/grgw.pid", dir);
}

/* The pid written in a lock file held by someone else, or 0. */
static long
holder(int fd)
{
	char	 buf[32];
	ssize_t	 n;

	if ((n = pread(fd, buf, sizeof(buf) - 1, 0)) <= 0)
		return 0;
	buf[n] = '\0';
	return strtol(buf, NULL, 10);
}

int
site_lock(const char *dir, const char *site, int *fd, char *err,
    size_t errlen)
{
	char	 path[PATH_MAX + 16], buf[32];
	long	 pid;
	int	 n;

	lock_path(dir, path, sizeof(path));
	*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (*fd == -1)
		return err_set(err, errlen, "cannot open %s: %s", path,
		    strerror(errno));
	if (flock(*fd, LOCK_EX | LOCK_NB) == -1) {
		pid = holder(*fd);
		close(*fd);
		*fd = -1;
		errno = EWOULDBLOCK;
		if (pid > 0)
			return err_set(err, errlen, "a grgw daemon for site %s "
			    "is running (pid %ld, lock %s)", site, pid, path);
		return err_set(err, errlen, "a grgw daemon for site %s is "
		    "running (lock %s)", site, path);
	}
	n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (ftruncate(*fd, 0) == -1 || pwrite(*fd, buf, (size_t)n, 0) != n)
		log_warn("cannot write %s", path);
	return 0;
}

void
site_unlock(const char *dir, int *fd)
{
	char	 path[PATH_MAX + 16];

	if (*fd < 0)
		return;
	lock_path(dir, path, sizeof(path));
	unlink(path);
	close(*fd);
	*fd = -1;
}
