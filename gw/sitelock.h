/*
 * sitelock.c: the site lock, <site dir>/grgw.pid (an exclusive flock that
 * holds the holder's pid).  The daemon holds it while it runs; `grgw down`
 * takes it before it cleans up without a daemon.
 */
#ifndef GRGW_SITELOCK_H
#define GRGW_SITELOCK_H

#include <stddef.h>

/*
 * Take the lock of the site whose directory is dir (it must exist);
 * *fd is the caller's until site_unlock().  -1 with err naming the
 * holder (errno EWOULDBLOCK) when another process holds it.
 */
int	site_lock(const char *dir, const char *site, int *fd, char *err,
	    size_t errlen);
/* Remove the lock file and close *fd (set to -1).  *fd < 0: nothing. */
void	site_unlock(const char *dir, int *fd);

#endif /* GRGW_SITELOCK_H */
