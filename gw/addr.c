/*
 * Address and prefix helpers.  Pure: no I/O, no allocation, no name
 * resolution.  Text is parsed with inet_pton(), so only the canonical
 * numeric forms are accepted (no "10.1", no leading zeros, no zone ids).
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <net/if.h>
#include <string.h>

#include "grgw.h"

/* Longest "address/len" text we accept: an IPv6 address plus "/128". */
#define PREFIX_TEXT_MAX	(INET6_ADDRSTRLEN + 4)

int
addr_len(int family)
{
	switch (family) {
	case AF_INET:
		return 4;
	case AF_INET6:
		return 16;
	default:
		return 0;
	}
}

int
addr_parse(const char *s, struct grgw_addr *out)
{
	struct grgw_addr a;

	memset(&a, 0, sizeof(a));
	if (s == NULL || out == NULL) {
		errno = EINVAL;
		return -1;
	}
	if (inet_pton(AF_INET, s, a.addr) == 1)
		a.family = AF_INET;
	else if (inet_pton(AF_INET6, s, a.addr) == 1)
		a.family = AF_INET6;
	else {
		errno = EINVAL;
		return -1;
	}
	*out = a;
	return 0;
}

/* Do the first nbits bits of x and y agree? */
static int
bits_equal(const uint8_t *x, const uint8_t *y, unsigned int nbits)
{
	unsigned int	 whole = nbits / 8, rest = nbits % 8;
	uint8_t		 mask;

	if (memcmp(x, y, whole) != 0)
		return 0;
	if (rest == 0)
		return 1;
	mask = (uint8_t)(0xff << (8 - rest));
	return (x[whole] & mask) == (y[whole] & mask);
}

/* Clear every bit after the first nbits. */
static void
bits_clear_after(uint8_t *x, unsigned int nbits, unsigned int total)
{
	unsigned int	 i;

	for (i = nbits; i < total; i++)
		x[i / 8] &= (uint8_t)~(0x80 >> (i % 8));
}

/*
 * Parse "network/len".  On failure errno is EINVAL when the text is not a
 * prefix at all, and EDOM when it is well formed but has host bits set; in
 * that case *out holds the network the text probably meant (so a caller
 * can suggest it), yet the call still fails.
 */
int
prefix_parse(const char *s, struct grgw_prefix *out)
{
	char			 buf[PREFIX_TEXT_MAX + 1];
	const char		*slash, *d;
	struct grgw_prefix	 p;
	size_t			 alen;
	unsigned int		 len = 0, bits;
	uint8_t			 orig[16];

	memset(&p, 0, sizeof(p));
	if (s == NULL || out == NULL)
		goto invalid;
	if ((slash = strchr(s, '/')) == NULL)
		goto invalid;
	alen = (size_t)(slash - s);
	if (alen == 0 || alen > PREFIX_TEXT_MAX)
		goto invalid;
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	if (addr_parse(buf, &p.a) == -1)
		goto invalid;

	/* Decimal length: 1 to 3 digits, no sign, no leading zero. */
	d = slash + 1;
	if (d[0] == '\0' || strlen(d) > 3 || (d[0] == '0' && d[1] != '\0'))
		goto invalid;
	for (; *d != '\0'; d++) {
		if (*d < '0' || *d > '9')
			goto invalid;
		len = len * 10 + (unsigned int)(*d - '0');
	}
	bits = (unsigned int)addr_len(p.a.family) * 8;
	if (len > bits)
		goto invalid;
	p.len = (uint8_t)len;

	memcpy(orig, p.a.addr, sizeof(orig));
	bits_clear_after(p.a.addr, len, bits);
	*out = p;
	if (memcmp(orig, p.a.addr, sizeof(orig)) != 0) {
		errno = EDOM;
		return -1;
	}
	return 0;

invalid:
	errno = EINVAL;
	return -1;
}

const char *
addr_fmt(const struct grgw_addr *a, char *buf, size_t size)
{
	if (buf == NULL || size == 0)
		return buf;
	if (a == NULL || addr_len(a->family) == 0 ||
	    inet_ntop(a->family, a->addr, buf, (socklen_t)size) == NULL)
		snprintf(buf, size, "?");
	return buf;
}

const char *
prefix_fmt(const struct grgw_prefix *p, char *buf, size_t size)
{
	char	 a[INET6_ADDRSTRLEN];

	if (buf == NULL || size == 0)
		return buf;
	if (p == NULL) {
		snprintf(buf, size, "?");
		return buf;
	}
	snprintf(buf, size, "%s/%u", addr_fmt(&p->a, a, sizeof(a)),
	    (unsigned int)p->len);
	return buf;
}

int
prefix_contains(const struct grgw_prefix *p, const struct grgw_addr *a)
{
	if (p == NULL || a == NULL || p->a.family != a->family ||
	    addr_len(a->family) == 0 ||
	    p->len > (unsigned int)addr_len(a->family) * 8)
		return 0;
	return bits_equal(p->a.addr, a->addr, p->len);
}

/* Two prefixes overlap when the shorter one contains the other. */
int
prefix_overlaps(const struct grgw_prefix *p, const struct grgw_prefix *q)
{
	unsigned int	 shorter;

	if (p == NULL || q == NULL || p->a.family != q->a.family ||
	    addr_len(p->a.family) == 0)
		return 0;
	shorter = p->len < q->len ? p->len : q->len;
	if (shorter > (unsigned int)addr_len(p->a.family) * 8)
		return 0;
	return bits_equal(p->a.addr, q->a.addr, shorter);
}

int
addr_equal(const struct grgw_addr *a, const struct grgw_addr *b)
{
	int	 n;

	if (a == NULL || b == NULL || a->family != b->family)
		return 0;
	if ((n = addr_len(a->family)) == 0)
		return 0;
	return memcmp(a->addr, b->addr, (size_t)n) == 0;
}

const char *
sockaddr_fmt(const struct sockaddr_storage *ss, char *buf, size_t size)
{
	const struct sockaddr_in	*sin = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6	*sin6 = (const struct sockaddr_in6 *)ss;
	char				 a[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET &&
	    inet_ntop(AF_INET, &sin->sin_addr, a, sizeof(a)) != NULL)
		snprintf(buf, size, "%s:%u", a, ntohs(sin->sin_port));
	else if (ss->ss_family == AF_INET6 &&
	    inet_ntop(AF_INET6, &sin6->sin6_addr, a, sizeof(a)) != NULL)
		snprintf(buf, size, "[%s]:%u", a, ntohs(sin6->sin6_port));
	else
		snprintf(buf, size, "(address family %d)", ss->ss_family);
	return buf;
}

/* ---- "address:port" and http:// endpoints ----------------------------- */

#define PORT_PROBLEM	"has a port that is not a number from 0 to 65535"

/* The decimal port at p: 0..65535, no sign, no leading zero. */
static int
port_parse(const char *p, uint16_t *port)
{
	unsigned long	 n = 0;

	if (*p == '\0' || strlen(p) > 5 || (p[0] == '0' && p[1] != '\0'))
		return -1;
	for (; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		n = n * 10 + (unsigned long)(*p - '0');
	}
	if (n > 65535)
		return -1;
	*port = (uint16_t)n;
	return 0;
}

int
addr_port_parse(const char *s, struct grgw_addr *addr, uint16_t *port,
    char *err, size_t errlen)
{
	char		 host[INET6_ADDRSTRLEN + 1];
	const char	*colon, *end;
	size_t		 hlen;
	int		 bracketed = 0;

	if (s == NULL || *s == '\0')
		return err_set(err, errlen, "is empty");
	if (s[0] == '[') {
		if ((end = strchr(s, ']')) == NULL)
			return err_set(err, errlen, "has '[' without ']'");
		if (end[1] != ':')
			return err_set(err, errlen, "has no :port after the ]");
		s++;
		bracketed = 1;
		hlen = (size_t)(end - s);
		colon = end + 1;
	} else {
		if ((colon = strrchr(s, ':')) == NULL)
			return err_set(err, errlen, "has no :port");
		if (memchr(s, ':', (size_t)(colon - s)) != NULL)
			return err_set(err, errlen, "has an IPv6 address "
			    "without [brackets]");
		hlen = (size_t)(colon - s);
	}
	if (hlen == 0 || hlen >= sizeof(host))
		return err_set(err, errlen, "does not start with an IP "
		    "address");
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (addr_parse(host, addr) == -1 ||
	    (addr->family == AF_INET6) != bracketed)
		return err_set(err, errlen, "does not start with an IP "
		    "address (host names are not resolved)");
	if (port_parse(colon + 1, port) == -1)
		return err_set(err, errlen, PORT_PROBLEM);
	return 0;
}

int
addr_url_parse(const char *s, uint16_t default_port, struct grgw_addr *addr,
    uint16_t *port, char *err, size_t errlen)
{
	char		 buf[INET6_ADDRSTRLEN + 16];
	const char	*rest, *close;
	size_t		 len;
	int		 has_port;

	if (s == NULL || *s == '\0')
		return err_set(err, errlen, "is empty");
	if (strncmp(s, "https://", 8) == 0)
		return err_set(err, errlen, "uses https, but TLS to etcd is "
		    "not supported; use http:// to the etcd of the local "
		    "site's management network");
	if (strncmp(s, "http://", 7) != 0)
		return err_set(err, errlen, "is not an http:// URL");
	rest = s + 7;
	len = strlen(rest);
	if (len > 0 && rest[len - 1] == '/')
		len--;
	if (len == 0 || len >= sizeof(buf) - 8)
		return err_set(err, errlen, "has no IP address after http://");
	if (memchr(rest, '/', len) != NULL || memchr(rest, '@', len) != NULL ||
	    memchr(rest, '?', len) != NULL)
		return err_set(err, errlen, "has a path, a query or "
		    "credentials; expected http://ADDRESS:PORT only");
	memcpy(buf, rest, len);
	buf[len] = '\0';
	if (buf[0] == '[') {
		close = strchr(buf, ']');
		has_port = close != NULL && close[1] == ':';
	} else
		has_port = strchr(buf, ':') != NULL;
	if (!has_port)
		snprintf(buf + len, sizeof(buf) - len, ":%u",
		    (unsigned)default_port);
	if (addr_port_parse(buf, addr, port, err, errlen) == -1)
		return -1;
	if (*port == 0)
		return err_set(err, errlen, "has port 0");
	return 0;
}

/* ---- interface names ------------------------------------------------------ */

int
ifname_valid(const char *s)
{
	size_t	 i, len;

	if (s == NULL || (len = strlen(s)) == 0 || len >= IF_NAMESIZE ||
	    strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		    c == '-' || c == '+'))
			return 0;
	}
	return 1;
}
