/*
 * Files that hold a secret: the checks made on them, and reading a key.
 *
 * No message produced here contains any byte of a key or of a key file;
 * only lengths, offsets and modes.
 *
 * Secret files and symbolic links: a secret file must be the file itself,
 * not a link to it.  psk_load() opens with O_NOFOLLOW, and
 * secret_file_check() applies the same rule (lstat, then an O_NOFOLLOW
 * open whose fstat must match), so `grgw check-config` accepts exactly
 * what the daemon will later load.  Links in the directories above the
 * file are followed, as they are by any open().
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "grgw.h"

#define PSK_FILE_MAX		1024	/* bytes; a key line is shorter */

/*
 * Open a secret file for reading after checking it: the path itself (not a
 * link) names a regular file, owned by root or by us, that neither group
 * nor others can access.  Returns the descriptor with *st filled, or -1
 * with err set.  The caller owns the descriptor.
 */
static int
secret_open(const char *path, struct stat *st, char *err, size_t errlen)
{
	struct stat	 lst;
	const char	*what;
	uid_t		 euid = geteuid();
	int		 fd = -1, saved;

	if (path == NULL || *path == '\0') {
		err_set(err, errlen, "no file name given; expected a path");
		errno = EINVAL;
		return -1;
	}
	if (lstat(path, &lst) == -1) {
		saved = errno;
		if (saved == ENOENT)
			err_set(err, errlen, "%s does not exist; expected a "
			    "file readable only by its owner", path);
		else
			err_set(err, errlen, "%s cannot be examined: %s", path,
			    strerror(saved));
		errno = saved;
		return -1;
	}
	if (S_ISLNK(lst.st_mode)) {
		err_set(err, errlen, "%s is a symbolic link; expected the "
		    "secret file itself (links are not followed for secrets)",
		    path);
		errno = ELOOP;
		return -1;
	}
	if (!S_ISREG(lst.st_mode)) {
		err_set(err, errlen, "%s is not a regular file; expected a "
		    "file holding the secret", path);
		errno = EINVAL;
		return -1;
	}
	if ((lst.st_mode & 077) != 0) {
		if (lst.st_mode & 044)
			what = "readable";
		else if (lst.st_mode & 022)
			what = "writable";
		else
			what = "accessible";
		err_set(err, errlen, "%s is %s by group or others (mode %04o); "
		    "expected mode 0600 or 0400 (chmod 600 %s)", path, what,
		    (unsigned int)(lst.st_mode & 07777), path);
		errno = EPERM;
		return -1;
	}
	if (lst.st_uid != 0 && lst.st_uid != euid) {
		err_set(err, errlen, "%s is owned by uid %u; expected it to be "
		    "owned by root or by uid %u, which runs grgw", path,
		    (unsigned int)lst.st_uid, (unsigned int)euid);
		errno = EPERM;
		return -1;
	}

	/* O_NONBLOCK: should the file be swapped for a FIFO meanwhile. */
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY |
	    O_NONBLOCK);
	if (fd == -1) {
		saved = errno;
		err_set(err, errlen, "%s cannot be opened: %s", path,
		    strerror(saved));
		errno = saved;
		return -1;
	}
	if (fstat(fd, st) == -1) {
		saved = errno;
		err_set(err, errlen, "%s cannot be examined: %s", path,
		    strerror(saved));
		goto fail;
	}
	if (st->st_dev != lst.st_dev || st->st_ino != lst.st_ino ||
	    !S_ISREG(st->st_mode) || (st->st_mode & 077) != 0 ||
	    (st->st_uid != 0 && st->st_uid != euid)) {
		err_set(err, errlen, "%s changed while it was being checked; "
		    "expected a file that stays put", path);
		saved = EAGAIN;
		goto fail;
	}
	return fd;

fail:
	close(fd);
	errno = saved;
	return -1;
}

int
secret_file_check(const char *path, char *err, size_t errlen)
{
	struct stat	 st;
	int		 fd;

	if ((fd = secret_open(path, &st, err, errlen)) == -1)
		return -1;
	close(fd);
	return 0;
}

int
secret_read(const char *path, size_t max, struct grgw_psk *out, char *err,
    size_t errlen)
{
	struct stat	 st;
	uint8_t		*buf = NULL;
	size_t		 have = 0;
	ssize_t		 n;
	int		 fd = -1, rc = -1, saved = 0;

	if (out == NULL || max == 0) {
		err_set(err, errlen, "nothing to read into");
		errno = EINVAL;
		return -1;
	}
	out->key = NULL;
	out->len = 0;
	if (sodium_init() < 0) {
		err_set(err, errlen, "cannot initialise libsodium");
		errno = EIO;
		return -1;
	}
	if ((fd = secret_open(path, &st, err, errlen)) == -1)
		return -1;
	if (st.st_size < 0 || (uint64_t)st.st_size > max) {
		err_set(err, errlen, "%s is %lld bytes long; expected at most "
		    "%zu bytes", path, (long long)st.st_size, max);
		saved = EFBIG;
		goto cleanup;
	}
	if ((buf = sodium_malloc(max + 1)) == NULL) {
		saved = errno;
		err_set(err, errlen, "cannot allocate secure memory: %s",
		    strerror(saved));
		goto cleanup;
	}
	/* Read one byte more than allowed to notice a file that grew. */
	while (have < max + 1) {
		n = read(fd, buf + have, max + 1 - have);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			saved = errno;
			err_set(err, errlen, "%s cannot be read: %s", path,
			    strerror(saved));
			goto cleanup;
		}
		if (n == 0)
			break;
		have += (size_t)n;
	}
	if (have > max) {
		err_set(err, errlen, "%s is longer than %zu bytes", path, max);
		saved = EFBIG;
		goto cleanup;
	}
	out->key = buf;
	out->len = have;
	buf = NULL;
	rc = 0;
cleanup:
	if (buf != NULL) {
		sodium_memzero(buf, max + 1);
		sodium_free(buf);
	}
	if (fd != -1)
		close(fd);
	if (rc == -1)
		errno = saved != 0 ? saved : EINVAL;
	return rc;
}

int
psk_load(const char *path, struct grgw_psk *out, char *err, size_t errlen)
{
	struct grgw_psk	 raw;
	char		 derr[256];
	int		 rc, saved;

	if (out == NULL) {
		err_set(err, errlen, "no key to fill in");
		errno = EINVAL;
		return -1;
	}
	out->key = NULL;
	out->len = 0;
	if (secret_read(path, PSK_FILE_MAX, &raw, err, errlen) == -1) {
		if (errno == EFBIG)
			err_append(err, errlen, "; expected one line");
		return -1;
	}
	rc = psk_decode((const char *)raw.key, raw.len, out, derr,
	    sizeof(derr));
	saved = errno;
	if (rc == -1)
		err_set(err, errlen, "%s: %s", path, derr);
	psk_free(&raw);
	errno = saved;
	return rc;
}
