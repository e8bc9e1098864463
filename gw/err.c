/*
 * The one way a function says why it failed: a message in a buffer the
 * caller owns (see grgw.h).  Pure.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "grgw.h"

int
err_setv(char *err, size_t errlen, const char *fmt, va_list ap)
{
	if (err != NULL && errlen > 0)
		vsnprintf(err, errlen, fmt, ap);
	return -1;
}

int
err_set(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	err_setv(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

int
err_append(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	 ap;
	size_t	 len;

	if (err == NULL || errlen == 0)
		return -1;
	len = strnlen(err, errlen);
	if (len < errlen - 1) {
		va_start(ap, fmt);
		vsnprintf(err + len, errlen - len, fmt, ap);
		va_end(ap);
	}
	return -1;
}
