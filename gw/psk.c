/*
 * Pre-shared keys: decoding a key line, and making a new key.  No I/O
 * (secret.c reads key files).
 *
 * Key material only ever lives in sodium_malloc'ed memory (guard pages,
 * locked, zeroed on release) or in short-lived buffers that are wiped
 * before they go out of scope.  No message produced here contains any
 * byte of a key; only lengths and offsets.
 */
#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "grgw.h"

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

