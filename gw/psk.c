/*
 * Pre-shared keys and the checks made on any file holding a secret.
 *
 * Key material only ever lives in sodium_malloc'ed memory (guard pages,
 * locked, zeroed on release) or in short-lived buffers that are wiped
 * before they go out of scope.  No message produced here contains any
 * byte of a key or of a key file; only lengths, offsets and modes.
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
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "grgw.h"

#define PSK_FILE_MAX		1024	/* bytes; a key line is shorter */
#define PSK_GENERATE_LEN	32	/* bytes of fresh key material */

#define PSK_EXPECT	"expected one line of standard base64 with '=' " \
			"padding holding 32 to 64 bytes (grgw keygen makes one)"

static int
is_base64_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '+' || c == '/' || c == '=';
}

int
psk_decode(const char *text, size_t len, struct grgw_psk *out,
    char *err, size_t errlen)
{
	uint8_t		*key = NULL;
	const char	*end = NULL;
	size_t		 i, pad = 0, n, binlen = 0;
	int		 rc = -1;

	if (out != NULL) {
		out->key = NULL;
		out->len = 0;
	}
	if (text == NULL || out == NULL) {
		err_set(err, errlen, "no key given; %s", PSK_EXPECT);
		errno = EINVAL;
		return -1;
	}
	if (sodium_init() < 0) {
		err_set(err, errlen, "cannot initialise libsodium");
		errno = EIO;
		return -1;
	}

	/* One optional line terminator, "\n" or "\r\n" (or a lone "\r"). */
	if (len > 0 && text[len - 1] == '\n')
		len--;
	if (len > 0 && text[len - 1] == '\r')
		len--;
	if (len == 0) {
		err_set(err, errlen, "key is empty; %s", PSK_EXPECT);
		goto invalid;
	}
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			err_set(err, errlen, "key has whitespace or a second "
			    "line at offset %zu; %s", i, PSK_EXPECT);
			goto invalid;
		}
		if (!is_base64_char(c)) {
			err_set(err, errlen, "key has a character that is not "
			    "base64 at offset %zu; %s", i, PSK_EXPECT);
			goto invalid;
		}
	}
	if (len % 4 != 0) {
		err_set(err, errlen, "key is %zu characters long, not a "
		    "multiple of 4 (padding missing?); %s", len, PSK_EXPECT);
		goto invalid;
	}
	if (text[len - 1] == '=')
		pad++;
	if (text[len - 2] == '=')
		pad++;
	n = len / 4 * 3 - pad;
	if (n < GRGW_PSK_MIN || n > GRGW_PSK_MAX) {
		err_set(err, errlen, "key decodes to %zu bytes; %s", n,
		    PSK_EXPECT);
		goto invalid;
	}

	/* Decode straight into guarded memory: no other copy exists. */
	if ((key = sodium_malloc(n)) == NULL) {
		err_set(err, errlen, "cannot allocate secure memory: %s",
		    strerror(errno));
		goto cleanup;
	}
	if (sodium_base642bin(key, n, text, len, NULL, &binlen, &end,
	    sodium_base64_VARIANT_ORIGINAL) != 0 || end != text + len ||
	    binlen != n) {
		err_set(err, errlen, "key is not valid base64; %s", PSK_EXPECT);
		goto invalid;
	}
	out->key = key;
	out->len = n;
	key = NULL;
	rc = 0;
	goto cleanup;

invalid:
	errno = EINVAL;
cleanup:
	if (key != NULL) {
		sodium_memzero(key, n);
		sodium_free(key);
	}
	return rc;
}

void
psk_free(struct grgw_psk *psk)
{
	if (psk == NULL)
		return;
	if (psk->key != NULL) {
		sodium_memzero(psk->key, psk->len);
		sodium_free(psk->key);
	}
	psk->key = NULL;
	psk->len = 0;
}

int
psk_generate(char *buf, size_t size)
{
	uint8_t	 key[PSK_GENERATE_LEN];

	if (buf == NULL ||
	    size < sodium_base64_ENCODED_LEN(sizeof(key),
	    sodium_base64_VARIANT_ORIGINAL)) {
		errno = ENOSPC;
		return -1;
	}
	if (sodium_init() < 0) {
		errno = EIO;
		return -1;
	}
	randombytes_buf(key, sizeof(key));
	sodium_bin2base64(buf, size, key, sizeof(key),
	    sodium_base64_VARIANT_ORIGINAL);
	sodium_memzero(key, sizeof(key));
	return 0;
}

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
psk_load(const char *path, struct grgw_psk *out, char *err, size_t errlen)
{
	struct stat	 st;
	char		*buf = NULL;
	char		 derr[256];
	size_t		 have = 0;
	ssize_t		 n;
	int		 fd = -1, rc = -1, saved = 0;

	if (out != NULL) {
		out->key = NULL;
		out->len = 0;
	}
	if (out == NULL) {
		err_set(err, errlen, "no key to fill in");
		errno = EINVAL;
		return -1;
	}
	if (sodium_init() < 0) {
		err_set(err, errlen, "cannot initialise libsodium");
		errno = EIO;
		return -1;
	}
	if ((fd = secret_open(path, &st, err, errlen)) == -1)
		return -1;
	if (st.st_size > PSK_FILE_MAX) {
		err_set(err, errlen, "%s is %lld bytes long; expected one line "
		    "of at most %d bytes", path, (long long)st.st_size,
		    PSK_FILE_MAX);
		saved = EFBIG;
		goto cleanup;
	}
	if ((buf = sodium_malloc(PSK_FILE_MAX + 1)) == NULL) {
		saved = errno;
		err_set(err, errlen, "cannot allocate secure memory: %s",
		    strerror(saved));
		goto cleanup;
	}
	/* Read one byte more than allowed to notice a file that grew. */
	while (have < PSK_FILE_MAX + 1) {
		n = read(fd, buf + have, PSK_FILE_MAX + 1 - have);
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
	if (have > PSK_FILE_MAX) {
		err_set(err, errlen, "%s is longer than %d bytes; expected one "
		    "line", path, PSK_FILE_MAX);
		saved = EFBIG;
		goto cleanup;
	}
	if (psk_decode(buf, have, out, derr, sizeof(derr)) == -1) {
		saved = errno;
		err_set(err, errlen, "%s: %s", path, derr);
		goto cleanup;
	}
	rc = 0;

cleanup:
	if (buf != NULL) {
		sodium_memzero(buf, PSK_FILE_MAX + 1);
		sodium_free(buf);
	}
	if (fd != -1)
		close(fd);
	if (rc == -1)
		errno = saved != 0 ? saved : EINVAL;
	return rc;
}
