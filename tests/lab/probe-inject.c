/*
 * probe-inject: send link probe packets to a gateway, good and bad ones,
 * for the lab tests (built by `make build/probe-inject`).
 *
 * usage: probe-inject [options] MODE DEST
 *        probe-inject [options] MODE --to DEST
 *
 *   DEST is ADDRESS, ADDRESS:PORT or [IPV6]:PORT; the port defaults to
 *   4211, grgw's unless [probe] port says otherwise.  Options may come
 *   before or after MODE; each has a long name too (in brackets below).
 *
 * MODE
 *   valid     correctly signed packets (the key from -k or -K)
 *   forged    the same packets signed with a random key: refused by the
 *             gateway as failing authentication (rejected_auth)
 *   tampered  correctly signed, then one byte flipped (-b OFFSET, default
 *             16, inside seq): refused as failing authentication; an
 *             offset below 8 hits the header and is refused as malformed
 *   replay    sends the datagrams of -r FILE verbatim: FILE is a raw UDP
 *             payload (as written by -w), or a classic pcap capture
 *             (tcpdump -w), from which every probe payload is taken, or
 *             only the -N'th; the gateway refuses them as replays
 *             (rejected_replay) once it has seen them
 *   garbage   -c N datagrams (default 10) of random bytes and random
 *             length 1 to -L MAX (default 200): refused as malformed
 *
 * options
 *   -d DEST     the destination, instead of the last argument [--to]
 *   -k FILE     key file: one line of base64 like psk_file, mode 0600 or
 *               0400 (the same checks grgw makes); the probe key is
 *               derived from it exactly as grgw derives it, so give the
 *               [probe] key_file, or the psk_file when there is none [--key]
 *   -K BASE64   the same secret on the command line (lab use only: other
 *               users can read command lines) [--secret]
 *   -P A,B      the two site names, the gateway's [site] and [peer] names
 *               in either order: the probe key is bound to the pair, so
 *               -k and -K need it [--sites]
 *   -s SOURCE   send from ADDRESS, ADDRESS:PORT or [IPV6]:PORT [--from]
 *   -F          allow a SOURCE address this host does not have (sets
 *               IP_FREEBIND and IP_TRANSPARENT; needs CAP_NET_ADMIN)
 *               [--freebind]
 *   -p PATH     tunnel or underlay (default underlay); it must match the
 *               gateway's socket DEST reaches (its LAN or its WAN address)
 *               [--path]
 *   -t TYPE     request (default) or reply [--type]
 *   -S SESSION  the sender's session id (default: random per run)
 *               [--session]
 *   -n SEQ      first sequence number (default 1); -c packets get SEQ,
 *               SEQ+1, ... [--seq]
 *   -c COUNT    how many packets (default 1; 10 for garbage); replay
 *               sends the file's datagrams COUNT times [--count]
 *   -T SECONDS  timestamp offset from now, may be negative: -T -60 makes
 *               a stale packet (grgw allows 30 s of clock difference)
 *               [--time-offset]
 *   -e SEQ      a reply's echo_seq (default 1) [--echo-seq]
 *   -E NS       a reply's echo_tx_ns (default: now - 1 ms) [--echo-tx-ns]
 *   -b OFFSET   byte flipped by tampered (0 to 79) [--flip]
 *   -r FILE     replay: the file to send from [--pcap, --file]
 *   -N INDEX    replay: only the INDEX'th probe payload of a pcap (from 1)
 *               [--index]
 *   -L MAX      garbage: longest datagram (1 to 65507) [--max-len]
 *   -i MS       pause between packets (default 0) [--interval]
 *   -w FILE     write the last datagram sent to FILE (for a later replay)
 *               [--write]
 *   -W MS       then wait up to MS for one datagram back on the same socket
 *               and print it (decoded when the key verifies it) [--wait]
 *   -q          print nothing but errors [--quiet]
 *
 * Every datagram sent is printed as one line:
 *   sent valid request path=underlay session=0x... seq=1 len=80 to ...
 * With -W the answer is printed as
 *   answer from ADDR:PORT len=80 reply session=0x... seq=N echo_seq=M
 * or "answer from ADDR:PORT len=N not verified (malformed|auth)", or
 * "no answer within MS ms".
 *
 * Exit status: 0 all sent (and, with -W, something came back); 1 usage or
 * input error; 2 a send failed; 3 -W saw nothing.
 *
 * Examples (lab, from the router namespace or a site's LAN):
 *   probe-inject -k /etc/grgw/psk -P site-a,site-b -s 198.51.100.10 valid 192.0.2.10:4211
 *   probe-inject -k KEY -P site-a,site-b -s 198.51.100.10 -W 500 -w /tmp/p valid 192.0.2.10:4211
 *   probe-inject -s 198.51.100.10 -r /tmp/p replay 192.0.2.10:4211
 *   probe-inject forged 192.0.2.10:4211
 *   probe-inject -c 1000 garbage 192.0.2.10:4211
 *   probe-inject forged --to 192.0.2.10 --count 20
 *   probe-inject replay --pcap /tmp/probes.pcap --to 192.0.2.10
 *   probe-inject -p tunnel -k KEY -P site-a,site-b -s 198.18.2.1 valid 198.18.1.1:4211
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "grgw.h"
#include "linkstate.h"
#include "probe.h"

#define MAX_DGRAM	65507
#define MAX_REPLAY	1024		/* datagrams taken from one file */
#define REPLAY_FILE_MAX	(64 * 1024 * 1024)

enum mode { M_VALID, M_FORGED, M_TAMPERED, M_REPLAY, M_GARBAGE };

struct opts {
	enum mode	 mode;
	const char	*key_file, *key_text, *sites, *source, *dest;
	const char	*replay_file, *write_file;
	int		 freebind, quiet, have_key;
	uint8_t		 type, path;
	uint64_t	 session, seq, echo_seq, echo_tx_ns;
	int		 have_echo_tx;
	long long	 ts_offset_s;
	unsigned long	 count, index, max_len, interval_ms, wait_ms;
	int		 have_count, have_wait;
	unsigned long	 flip;
	uint8_t		 key[PROBE_KEY_LEN];
};

static void
usage(void)
{
	fprintf(stderr, "usage: probe-inject [-k KEYFILE | -K BASE64] "
	    "[-P SITE,PEER] [-s SOURCE] [-F]\n"
	    "\t[-p tunnel|underlay]"
	    "\t[-t request|reply] [-S SESSION] [-n SEQ] [-c COUNT] "
	    "[-T SECONDS] [-e SEQ] [-E NS]\n"
	    "\t[-b OFFSET] [-r FILE] [-N INDEX] [-L MAX] [-i MS] [-w FILE] "
	    "[-W MS] [-q]\n"
	    "\tvalid|forged|tampered|replay|garbage {DEST | -d DEST}\n"
	    "DEST: ADDRESS[:PORT] or [IPV6]:PORT, port 4211 by default\n"
	    "(long options and details: the top of "
	    "tests/lab/probe-inject.c)\n");
	exit(1);
}

static void
die(const char *fmt, ...) GRGW_PRINTF(1, 2);

static void
die(const char *fmt, ...)
{
	va_list	 ap;

	fprintf(stderr, "probe-inject: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static uint64_t
now_ns(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Unsigned decimal or 0x hexadecimal, all of it. */
static uint64_t
parse_u64(const char *s, const char *what)
{
	unsigned long long	 v;
	char			*end;

	if (s[0] == '-' || s[0] == '+' || s[0] == '\0')
		die("%s \"%s\" is not a number", what, s);
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno != 0 || *end != '\0')
		die("%s \"%s\" is not a number", what, s);
	return (uint64_t)v;
}

static long long
parse_i64(const char *s, const char *what)
{
	long long	 v;
	char		*end;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || s[0] == '\0')
		die("%s \"%s\" is not a number", what, s);
	return v;
}

/*
 * "192.0.2.1", "192.0.2.1:4211", "2001:db8::1", "[2001:db8::1]:4211";
 * default_port when none is given.
 */
static void
parse_endpoint(const char *s, uint16_t default_port,
    struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)ss;
	char			 host[INET6_ADDRSTRLEN + 2];
	const char		*port = NULL, *colon, *close;
	unsigned long long	 p = default_port;
	size_t			 hlen;

	memset(ss, 0, sizeof(*ss));
	if (s[0] == '[') {
		if ((close = strchr(s, ']')) == NULL)
			die("\"%s\": missing ']'", s);
		hlen = (size_t)(close - s - 1);
		if (hlen >= sizeof(host))
			die("\"%s\" is not an address", s);
		memcpy(host, s + 1, hlen);
		host[hlen] = '\0';
		if (close[1] == ':')
			port = close + 2;
		else if (close[1] != '\0')
			die("\"%s\": expected [ADDRESS]:PORT", s);
	} else {
		colon = strchr(s, ':');
		if (colon != NULL && strchr(colon + 1, ':') == NULL) {
			hlen = (size_t)(colon - s);
			port = colon + 1;
		} else
			hlen = strlen(s);
		if (hlen >= sizeof(host))
			die("\"%s\" is not an address", s);
		memcpy(host, s, hlen);
		host[hlen] = '\0';
	}
	if (port != NULL) {
		p = parse_u64(port, "port");
		if (p == 0 || p > 65535)
			die("port %s is out of range", port);
	}
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)p);
		*len = sizeof(*sin);
	} else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)p);
		*len = sizeof(*sin6);
	} else
		die("\"%s\" is not a numeric IPv4 or IPv6 address", host);
}

/* The probe key, derived from the secret as the daemon derives it. */
static void
load_key(struct opts *o)
{
	struct grgw_psk	 secret;
	char		 err[PATH_MAX + 256];
	char		 site[GRGW_NAME_MAX + 1];
	const char	*comma, *peer;

	if (o->key_file != NULL && o->key_text != NULL)
		die("-k and -K are exclusive");
	if (o->key_file == NULL && o->key_text == NULL)
		return;
	if (o->sites == NULL || (comma = strchr(o->sites, ',')) == NULL)
		die("a key needs -P SITE,PEER: the probe key is bound to the "
		    "two site names");
	peer = comma + 1;
	if (comma == o->sites || (size_t)(comma - o->sites) >= sizeof(site) ||
	    *peer == '\0' || strchr(peer, ',') != NULL)
		die("-P \"%s\": expected two site names, SITE,PEER", o->sites);
	memcpy(site, o->sites, (size_t)(comma - o->sites));
	site[comma - o->sites] = '\0';
	if (o->key_file != NULL) {
		if (psk_load(o->key_file, &secret, err, sizeof(err)) == -1)
			die("key file: %s", err);
	} else {
		if (psk_decode(o->key_text, strlen(o->key_text), &secret, err,
		    sizeof(err)) == -1)
			die("-K: %s", err);
	}
	probe_key_derive(secret.key, secret.len, site, peer, o->key);
	psk_free(&secret);
	o->have_key = 1;
}

/* ---- reading a file to replay -------------------------------------------- */

struct dgrams {
	uint8_t		*data[MAX_REPLAY];
	size_t		 len[MAX_REPLAY];
	size_t		 n;
};

static void
dgrams_add(struct dgrams *d, const uint8_t *p, size_t len)
{
	if (d->n == MAX_REPLAY)
		die("more than %d datagrams to replay; pick one with -N",
		    MAX_REPLAY);
	if (len == 0 || len > MAX_DGRAM)
		return;
	if ((d->data[d->n] = malloc(len)) == NULL)
		die("out of memory");
	memcpy(d->data[d->n], p, len);
	d->len[d->n++] = len;
}

static uint8_t *
read_all(const char *path, size_t *len)
{
	struct stat	 st;
	uint8_t		*buf;
	size_t		 have = 0;
	ssize_t		 n;
	int		 fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		die("%s: %s", path, strerror(errno));
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_size > REPLAY_FILE_MAX)
		die("%s: not a regular file of at most %d bytes", path,
		    REPLAY_FILE_MAX);
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL)
		die("out of memory");
	while (have < (size_t)st.st_size) {
		n = read(fd, buf + have, (size_t)st.st_size - have);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			die("%s: short read", path);
		have += (size_t)n;
	}
	close(fd);
	*len = have;
	return buf;
}

static uint32_t
rd32(const uint8_t *p, int swap)
{
	uint32_t	 v;

	memcpy(&v, p, 4);
	return swap ? __builtin_bswap32(v) : v;
}

static int
is_probe(const uint8_t *p, size_t len)
{
	return len == probe_wire_len() && memcmp(p, "GRPB", 4) == 0;
}

/*
 * The UDP payload of one captured frame, or NULL.  Only what the capture
 * holds is read: every offset is checked against caplen.
 */
static const uint8_t *
frame_udp_payload(const uint8_t *f, size_t caplen, uint32_t linktype,
    size_t *plen)
{
	size_t		 off, ihl, ulen;
	unsigned int	 ethertype = 0, ver;

	switch (linktype) {
	case 1:				/* Ethernet */
		if (caplen < 14)
			return NULL;
		ethertype = (unsigned int)(f[12] << 8 | f[13]);
		off = 14;
		while ((ethertype == 0x8100 || ethertype == 0x88a8) &&
		    caplen >= off + 4) {
			ethertype = (unsigned int)(f[off + 2] << 8 |
			    f[off + 3]);
			off += 4;
		}
		break;
	case 113:			/* Linux cooked (tcpdump -i any) */
		if (caplen < 16)
			return NULL;
		ethertype = (unsigned int)(f[14] << 8 | f[15]);
		off = 16;
		break;
	case 276:			/* Linux cooked v2 */
		if (caplen < 20)
			return NULL;
		ethertype = (unsigned int)(f[0] << 8 | f[1]);
		off = 20;
		break;
	case 12: case 14: case 101:	/* raw IP */
		off = 0;
		break;
	default:
		return NULL;
	}
	if (caplen <= off)
		return NULL;
	ver = f[off] >> 4;
	if (ethertype != 0 && !((ethertype == 0x0800 && ver == 4) ||
	    (ethertype == 0x86dd && ver == 6)))
		return NULL;
	if (ver == 4) {
		if (caplen < off + 20)
			return NULL;
		ihl = (size_t)(f[off] & 0x0f) * 4;
		/* UDP, not a later fragment */
		if (ihl < 20 || f[off + 9] != 17 ||
		    ((f[off + 6] & 0x1f) | f[off + 7]) != 0)
			return NULL;
		off += ihl;
	} else if (ver == 6) {
		if (caplen < off + 40 || f[off + 6] != 17)
			return NULL;
		off += 40;
	} else
		return NULL;
	if (caplen < off + 8)
		return NULL;
	ulen = (size_t)(f[off + 4] << 8 | f[off + 5]);
	if (ulen < 8 || caplen < off + ulen)
		return NULL;	/* truncated by snaplen: not replayable */
	*plen = ulen - 8;
	return f + off + 8;
}

/* Probe payloads of a classic pcap file (either byte order, us or ns). */
static void
read_pcap(const uint8_t *b, size_t len, unsigned long index,
    struct dgrams *d)
{
	const uint8_t	*payload;
	uint32_t	 magic, linktype, caplen;
	size_t		 off = 24, plen;
	unsigned long	 seen = 0;
	int		 swap;

	magic = rd32(b, 0);
	swap = magic == 0xd4c3b2a1 || magic == 0x4d3cb2a1;
	linktype = rd32(b + 20, swap) & 0x0fffffff;
	while (off + 16 <= len) {
		caplen = rd32(b + off + 8, swap);
		off += 16;
		if (caplen > len - off)
			die("pcap record at offset %zu runs past the end of "
			    "the file", off - 16);
		payload = frame_udp_payload(b + off, caplen, linktype, &plen);
		if (payload != NULL && is_probe(payload, plen)) {
			seen++;
			if (index == 0 || index == seen)
				dgrams_add(d, payload, plen);
		}
		off += caplen;
	}
	if (d->n == 0)
		die("no probe packet%s in the capture (link type %u)",
		    index != 0 ? " of that index" : "", linktype);
}

static void
read_replay(const char *path, unsigned long index, struct dgrams *d)
{
	uint8_t		*b;
	size_t		 len;
	uint32_t	 magic;

	b = read_all(path, &len);
	magic = len >= 4 ? rd32(b, 0) : 0;
	if (len >= 4 && memcmp(b, "\x0a\x0d\x0d\x0a", 4) == 0)
		die("%s is pcapng; write classic pcap (tcpdump -w, or "
		    "editcap -F pcap)", path);
	if (len >= 24 && (magic == 0xa1b2c3d4 || magic == 0xd4c3b2a1 ||
	    magic == 0xa1b23c4d || magic == 0x4d3cb2a1))
		read_pcap(b, len, index, d);
	else {
		if (len == 0 || len > MAX_DGRAM)
			die("%s: %zu bytes; expected one UDP payload of 1 to "
			    "%d bytes", path, len, MAX_DGRAM);
		dgrams_add(d, b, len);
	}
	free(b);
}

/* ---- sending -------------------------------------------------------------- */

static int
open_socket(const struct opts *o, const struct sockaddr_storage *dst)
{
	struct sockaddr_storage	 src;
	socklen_t		 slen;
	int			 fd, on = 1;

	fd = socket(dst->ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		die("socket: %s", strerror(errno));
	if (o->source == NULL)
		return fd;
	parse_endpoint(o->source, 0, &src, &slen);
	if (src.ss_family != dst->ss_family)
		die("source %s and destination %s are not of one family",
		    o->source, o->dest);
	if (o->freebind) {
		if (src.ss_family == AF_INET) {
			setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &on,
			    sizeof(on));
			if (setsockopt(fd, IPPROTO_IP, IP_TRANSPARENT, &on,
			    sizeof(on)) == -1)
				die("IP_TRANSPARENT: %s (-F needs "
				    "CAP_NET_ADMIN)", strerror(errno));
		} else {
			setsockopt(fd, IPPROTO_IPV6, IPV6_FREEBIND, &on,
			    sizeof(on));
			if (setsockopt(fd, IPPROTO_IPV6, IPV6_TRANSPARENT, &on,
			    sizeof(on)) == -1)
				die("IPV6_TRANSPARENT: %s (-F needs "
				    "CAP_NET_ADMIN)", strerror(errno));
		}
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1)
		die("SO_REUSEADDR: %s", strerror(errno));
	if (bind(fd, (struct sockaddr *)&src, slen) == -1)
		die("bind %s: %s", o->source, strerror(errno));
	return fd;
}

static void
write_payload(const char *path, const uint8_t *b, size_t len)
{
	int	 fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd == -1 || write(fd, b, len) != (ssize_t)len || close(fd) == -1)
		die("%s: %s", path, strerror(errno));
}

static const struct option long_opts[] = {
	{ "to",		required_argument,	NULL, 'd' },
	{ "key",	required_argument,	NULL, 'k' },
	{ "secret",	required_argument,	NULL, 'K' },
	{ "sites",	required_argument,	NULL, 'P' },
	{ "from",	required_argument,	NULL, 's' },
	{ "freebind",	no_argument,		NULL, 'F' },
	{ "path",	required_argument,	NULL, 'p' },
	{ "type",	required_argument,	NULL, 't' },
	{ "session",	required_argument,	NULL, 'S' },
	{ "seq",	required_argument,	NULL, 'n' },
	{ "count",	required_argument,	NULL, 'c' },
	{ "time-offset", required_argument,	NULL, 'T' },
	{ "echo-seq",	required_argument,	NULL, 'e' },
	{ "echo-tx-ns",	required_argument,	NULL, 'E' },
	{ "flip",	required_argument,	NULL, 'b' },
	{ "pcap",	required_argument,	NULL, 'r' },
	{ "file",	required_argument,	NULL, 'r' },
	{ "index",	required_argument,	NULL, 'N' },
	{ "max-len",	required_argument,	NULL, 'L' },
	{ "interval",	required_argument,	NULL, 'i' },
	{ "write",	required_argument,	NULL, 'w' },
	{ "wait",	required_argument,	NULL, 'W' },
	{ "quiet",	no_argument,		NULL, 'q' },
	{ NULL,		0,			NULL, 0 }
};

static const char *const mode_names[] = {
	[M_VALID] = "valid", [M_FORGED] = "forged",
	[M_TAMPERED] = "tampered", [M_REPLAY] = "replay",
	[M_GARBAGE] = "garbage",
};

/* One probe packet of the run, signed (or mis-signed) as the mode says. */
static size_t
build_probe(const struct opts *o, uint64_t seq, uint8_t *buf,
    const uint8_t *forged_key)
{
	struct probe_pkt	 p;
	uint64_t		 now = now_ns();

	memset(&p, 0, sizeof(p));
	p.type = o->type;
	p.path = o->path;
	p.session = o->session;
	p.seq = seq;
	p.tx_ns = now + (uint64_t)(o->ts_offset_s * 1000000000LL);
	if (p.type == PROBE_REPLY) {
		p.echo_seq = o->echo_seq;
		p.echo_tx_ns = o->have_echo_tx ? o->echo_tx_ns :
		    now - 1000000;
	}
	if (probe_encode(&p, o->mode == M_FORGED ? forged_key : o->key, buf,
	    probe_wire_len()) == -1)
		die("cannot encode that packet (a reply needs -e SEQ > 0)");
	if (o->mode == M_TAMPERED)
		buf[o->flip] ^= 0x01;
	return probe_wire_len();
}

static void
print_answer(const struct opts *o, int fd)
{
	struct sockaddr_storage	 from;
	socklen_t		 flen = sizeof(from);
	struct pollfd		 pfd = { fd, POLLIN, 0 };
	struct probe_pkt	 p;
	uint8_t			 buf[2048];
	char			 a[INET6_ADDRSTRLEN + 16];
	ssize_t			 n;
	int			 rc;

	rc = poll(&pfd, 1, (int)o->wait_ms);
	if (rc <= 0) {
		if (!o->quiet)
			printf("no answer within %lu ms\n", o->wait_ms);
		exit(3);
	}
	n = recvfrom(fd, buf, sizeof(buf), MSG_TRUNC,
	    (struct sockaddr *)&from, &flen);
	if (n < 0)
		die("recvfrom: %s", strerror(errno));
	sockaddr_fmt(&from, a, sizeof(a));
	rc = o->have_key && (size_t)n <= sizeof(buf) ?
	    probe_decode(buf, (size_t)n, o->key, &p) : PROBE_E_AUTH;
	if (o->quiet)
		return;
	if (rc == PROBE_OK)
		printf("answer from %s len=%zd %s path=%s session=0x%016llx "
		    "seq=%llu echo_seq=%llu\n", a, n,
		    p.type == PROBE_REQUEST ? "request" : "reply",
		    p.path == PROBE_TUNNEL ? "tunnel" : "underlay",
		    (unsigned long long)p.session, (unsigned long long)p.seq,
		    (unsigned long long)p.echo_seq);
	else
		printf("answer from %s len=%zd not verified (%s)\n", a, n,
		    !o->have_key ? "no key" : rc == PROBE_E_AUTH ? "auth" :
		    "malformed");
}

int
main(int argc, char **argv)
{
	struct opts		 o;
	struct dgrams		 d;
	struct sockaddr_storage	 dst;
	struct timespec		 pause;
	socklen_t		 dlen;
	uint8_t			 forged[PROBE_KEY_LEN], buf[MAX_DGRAM];
	const uint8_t		*out = NULL;
	char			 to[INET6_ADDRSTRLEN + 16];
	size_t			 len = 0, i;
	unsigned long		 k;
	int			 ch, fd, rc = 0;

	memset(&o, 0, sizeof(o));
	memset(&d, 0, sizeof(d));
	o.type = PROBE_REQUEST;
	o.path = PROBE_UNDERLAY;
	o.seq = 1;
	o.echo_seq = 1;
	o.flip = 16;
	o.max_len = 200;
	if (sodium_init() < 0)
		die("cannot initialise libsodium");
	randombytes_buf(&o.session, sizeof(o.session));

	while ((ch = getopt_long(argc, argv, "b:c:d:e:E:Fi:k:K:L:n:N:p:P:qr:s:"
	    "S:t:T:w:W:", long_opts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			o.dest = optarg;
			break;
		case 'b':
			o.flip = parse_u64(optarg, "-b");
			if (o.flip >= probe_wire_len())
				die("-b must be below %zu", probe_wire_len());
			break;
		case 'c':
			o.count = parse_u64(optarg, "-c");
			o.have_count = 1;
			break;
		case 'e':
			o.echo_seq = parse_u64(optarg, "-e");
			break;
		case 'E':
			o.echo_tx_ns = parse_u64(optarg, "-E");
			o.have_echo_tx = 1;
			break;
		case 'F':
			o.freebind = 1;
			break;
		case 'i':
			o.interval_ms = parse_u64(optarg, "-i");
			break;
		case 'k':
			o.key_file = optarg;
			break;
		case 'K':
			o.key_text = optarg;
			break;
		case 'P':
			o.sites = optarg;
			break;
		case 'L':
			o.max_len = parse_u64(optarg, "-L");
			if (o.max_len < 1 || o.max_len > MAX_DGRAM)
				die("-L must be 1 to %d", MAX_DGRAM);
			break;
		case 'n':
			o.seq = parse_u64(optarg, "-n");
			break;
		case 'N':
			o.index = parse_u64(optarg, "-N");
			if (o.index == 0)
				die("-N counts from 1");
			break;
		case 'p':
			if (strcmp(optarg, "tunnel") == 0)
				o.path = PROBE_TUNNEL;
			else if (strcmp(optarg, "underlay") == 0)
				o.path = PROBE_UNDERLAY;
			else
				die("-p: tunnel or underlay");
			break;
		case 'q':
			o.quiet = 1;
			break;
		case 'r':
			o.replay_file = optarg;
			break;
		case 's':
			o.source = optarg;
			break;
		case 'S':
			o.session = parse_u64(optarg, "-S");
			break;
		case 't':
			if (strcmp(optarg, "request") == 0)
				o.type = PROBE_REQUEST;
			else if (strcmp(optarg, "reply") == 0)
				o.type = PROBE_REPLY;
			else
				die("-t: request or reply");
			break;
		case 'T':
			o.ts_offset_s = parse_i64(optarg, "-T");
			if (o.ts_offset_s > 1000000000LL ||
			    o.ts_offset_s < -1000000000LL)
				die("-T: at most 10^9 seconds either way");
			break;
		case 'w':
			o.write_file = optarg;
			break;
		case 'W':
			o.wait_ms = parse_u64(optarg, "-W");
			if (o.wait_ms > 3600000)
				die("-W: at most 3600000 ms");
			o.have_wait = 1;
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 2 && o.dest == NULL)
		o.dest = argv[1];
	else if (argc != 1 || o.dest == NULL)
		usage();
	for (i = 0; i < nitems(mode_names); i++)
		if (strcmp(argv[0], mode_names[i]) == 0)
			break;
	if (i == nitems(mode_names))
		usage();
	o.mode = (enum mode)i;
	if (!o.have_count)
		o.count = o.mode == M_GARBAGE ? 10 : 1;
	if (o.count == 0 || o.count > 10000000)
		die("-c: 1 to 10000000");
	load_key(&o);
	if ((o.mode == M_VALID || o.mode == M_TAMPERED) && !o.have_key)
		die("%s needs the key: -k FILE or -K BASE64, with -P "
		    "SITE,PEER", mode_names[o.mode]);
	if (o.mode == M_REPLAY && o.replay_file == NULL)
		die("replay needs -r FILE (--pcap FILE)");
	if (o.mode == M_REPLAY)
		read_replay(o.replay_file, o.index, &d);
	randombytes_buf(forged, sizeof(forged));

	parse_endpoint(o.dest, PROBE_PORT_DEFAULT, &dst, &dlen);
	sockaddr_fmt(&dst, to, sizeof(to));
	fd = open_socket(&o, &dst);
	pause.tv_sec = (time_t)(o.interval_ms / 1000);
	pause.tv_nsec = (long)(o.interval_ms % 1000) * 1000000;

	for (k = 0; k < (o.mode == M_REPLAY ? d.n * o.count : o.count); k++) {
		if (k > 0 && o.interval_ms > 0)
			nanosleep(&pause, NULL);
		switch (o.mode) {
		case M_REPLAY:
			out = d.data[k % d.n];
			len = d.len[k % d.n];
			break;
		case M_GARBAGE:
			len = 1 + randombytes_uniform((uint32_t)o.max_len);
			randombytes_buf(buf, len);
			out = buf;
			break;
		default:
			len = build_probe(&o, o.seq + k, buf, forged);
			out = buf;
			break;
		}
		if (sendto(fd, out, len, 0, (struct sockaddr *)&dst,
		    dlen) == -1) {
			fprintf(stderr, "probe-inject: send to %s: %s\n", to,
			    strerror(errno));
			rc = 2;
			continue;
		}
		if (o.quiet)
			continue;
		if (o.mode == M_REPLAY || o.mode == M_GARBAGE)
			printf("sent %s len=%zu to %s\n", mode_names[o.mode],
			    len, to);
		else
			printf("sent %s %s path=%s session=0x%016llx seq=%llu "
			    "len=%zu to %s\n", mode_names[o.mode],
			    o.type == PROBE_REQUEST ? "request" : "reply",
			    o.path == PROBE_TUNNEL ? "tunnel" : "underlay",
			    (unsigned long long)o.session,
			    (unsigned long long)(o.seq + k), len, to);
	}
	fflush(stdout);
	if (o.write_file != NULL && out != NULL && len > 0)
		write_payload(o.write_file, out, len);
	if (o.have_wait && rc == 0)
		print_answer(&o, fd);
	close(fd);
	for (i = 0; i < d.n; i++)
		free(d.data[i]);
	sodium_memzero(&o.key, sizeof(o.key));
	sodium_memzero(forged, sizeof(forged));
	return rc;
}
