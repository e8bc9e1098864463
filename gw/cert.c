/*
 * What grgw reads from the certificates named in [auth]: the validity
 * period and the subject, for status, /metrics and the messages that say
 * a certificate expired.  charon does the authentication; this only
 * reports.
 *
 * The parsing is OpenSSL's (libcrypto, which strongSwan's openssl plugin
 * already brings to every gateway): a PEM or DER buffer of a given length
 * goes in, nothing outside it is read.  Pure but for that library: no
 * file is opened here except by cert_read_file().
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "grgw.h"

#define CERT_FILE_MAX	(1 << 20)	/* a certificate or a CA bundle */

/* An ASN1_TIME as seconds since the epoch (UTC); -1 if it is none. */
static int
asn1_time_epoch(const ASN1_TIME *t, time_t *out)
{
	struct tm	 tm;

	if (t == NULL || ASN1_TIME_check(t) != 1)
		return -1;
	memset(&tm, 0, sizeof(tm));
	if (ASN1_TIME_to_tm(t, &tm) != 1)
		return -1;
	*out = timegm(&tm);
	return 0;
}

static X509 *
cert_decode(const uint8_t *buf, size_t len)
{
	const unsigned char	*p = buf;
	X509			*x = NULL;
	BIO			*bio;

	if (len == 0 || len > INT_MAX)
		return NULL;
	/* PEM first (the first certificate of a bundle), else DER. */
	if ((bio = BIO_new_mem_buf(buf, (int)len)) != NULL) {
		x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
		BIO_free(bio);
	}
	if (x == NULL)
		x = d2i_X509(NULL, &p, (long)len);
	ERR_clear_error();
	return x;
}

int
cert_parse(const uint8_t *buf, size_t len, struct cert_info *ci, char *err,
    size_t errlen)
{
	X509	*x;
	char	*subject;
	int	 rc = -1;

	memset(ci, 0, sizeof(*ci));
	if ((x = cert_decode(buf, len)) == NULL) {
		err_set(err, errlen, "not an X.509 certificate (PEM or DER)");
		return -1;
	}
	if (asn1_time_epoch(X509_get0_notBefore(x), &ci->not_before) == -1 ||
	    asn1_time_epoch(X509_get0_notAfter(x), &ci->not_after) == -1) {
		err_set(err, errlen, "the certificate's validity period "
		    "cannot be read");
		goto cleanup;
	}
	subject = X509_NAME_oneline(X509_get_subject_name(x), NULL, 0);
	snprintf(ci->subject, sizeof(ci->subject), "%s",
	    subject != NULL ? subject : "");
	OPENSSL_free(subject);
	rc = 0;
cleanup:
	X509_free(x);
	ERR_clear_error();
	return rc;
}

int
cert_read_file(const char *path, struct cert_info *ci, char *err,
    size_t errlen)
{
	struct stat	 st;
	uint8_t		*buf = NULL;
	ssize_t		 n;
	int		 fd, rc = -1;
	char		 why[128];

	memset(ci, 0, sizeof(*ci));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		err_set(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
	    st.st_size > CERT_FILE_MAX) {
		err_set(err, errlen, "%s: not a regular file of 1 byte to "
		    "1 MiB", path);
		goto cleanup;
	}
	if ((buf = malloc((size_t)st.st_size)) == NULL) {
		err_set(err, errlen, "%s: out of memory", path);
		goto cleanup;
	}
	if ((n = read(fd, buf, (size_t)st.st_size)) != st.st_size) {
		err_set(err, errlen, "%s: short read", path);
		goto cleanup;
	}
	if (cert_parse(buf, (size_t)n, ci, why, sizeof(why)) == -1) {
		err_set(err, errlen, "%s: %s", path, why);
		goto cleanup;
	}
	rc = 0;
cleanup:
	free(buf);
	close(fd);
	return rc;
}

enum cert_state
cert_state_at(const struct cert_info *ci, time_t now, unsigned warn_days)
{
	if (now < ci->not_before)
		return CERT_NOT_YET_VALID;
	if (now >= ci->not_after)
		return CERT_EXPIRED;
	if (ci->not_after - now <= (time_t)warn_days * 86400)
		return CERT_EXPIRES_SOON;
	return CERT_VALID;
}

const char *
cert_state_name(enum cert_state s)
{
	switch (s) {
	case CERT_VALID:
		return "valid";
	case CERT_EXPIRES_SOON:
		return "expires-soon";
	case CERT_EXPIRED:
		return "expired";
	case CERT_NOT_YET_VALID:
	default:
		return "not-yet-valid";
	}
}

char *
cert_time_fmt(time_t t, char *buf, size_t size)
{
	struct tm	 tm;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, size, "%lld", (long long)t);
	return buf;
}
