/*
 * libFuzzer harness for the configuration parser, the address helpers and
 * the pre-shared key decoder.
 *
 * The input is split at '\n' and fed to the parser a line at a time, each
 * line copied into a buffer of exactly its length so that a read past the
 * length is caught.  Beyond "does not crash" it checks what a user relies
 * on: at most 100 errors plus the final notice, every message starts with
 * the file name and is printable ASCII (values are escaped), and a config
 * that is accepted really satisfies the rules the parser promises.
 * The same input is also decoded as a key and parsed as an address and a
 * prefix, whose text forms must survive a round trip.
 */
#include <sys/socket.h>

#include <netinet/in.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "grgw.h"

#define FUZZ_FILE	"fuzz.conf"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
check_side(const struct grgw_side *s)
{
	int	 i, j;

	if (s->name[0] == '\0' || s->id[0] == '\0' || s->n_prefixes < 1 ||
	    s->n_prefixes > GRGW_MAX_PREFIXES || s->n_lan_addresses < 1 ||
	    s->n_lan_addresses > GRGW_MAX_LAN_ADDRS)
		abort();
	for (i = 0; i < s->n_lan_addresses; i++) {
		for (j = 0; j < s->n_prefixes; j++)
			if (prefix_contains(&s->prefixes[j],
			    &s->lan_addresses[i]))
				break;
		if (j == s->n_prefixes)
			abort();
	}
	for (i = 0; i < s->n_prefixes; i++)
		for (j = 0; j < i; j++)
			if (prefix_overlaps(&s->prefixes[i], &s->prefixes[j]))
				abort();
}

/* [pair]: own addresses, not floating ones; timing; a fence. */
static void
check_pair(const struct grgw_config *cfg)
{
	const struct grgw_pair_conf	*c = &cfg->pair;
	int				 i;

	if (c->dead_ms < 3 * c->interval_ms ||
	    c->guard_ms < 2 * c->interval_ms || c->etcd_key[0] != '/')
		abort();
	if (!c->enabled)
		return;
	if (c->partner.family != c->address.family ||
	    addr_equal(&c->partner, &c->address) ||
	    addr_equal(&c->partner, &cfg->site.wan_address) ||
	    addr_equal(&c->address, &cfg->site.wan_address) ||
	    c->port == cfg->probe.port || c->port < 1 || c->port > 65535 ||
	    c->priority < 1 || c->priority > 255 ||
	    c->interval_ms < 5 || c->interval_ms > 1000 ||
	    cfg->feeds.etcd_endpoint[0] == '\0' ||
	    strcmp(c->etcd_key, cfg->feeds.etcd_key) == 0 ||
	    (cfg->auth == GRGW_AUTH_CERT && c->key_file[0] == '\0'))
		abort();
	for (i = 0; i < cfg->site.n_lan_addresses; i++)
		if (addr_equal(&c->partner, &cfg->site.lan_addresses[i]) ||
		    addr_equal(&c->address, &cfg->site.lan_addresses[i]))
			abort();
}

static void
check_accepted(const struct grgw_config *cfg)
{
	int	 i, j;

	check_side(&cfg->site);
	check_side(&cfg->peer);
	if (cfg->site.n_lan_interfaces < 1 ||
	    cfg->site.wan_interface[0] == '\0')
		abort();
	if (strcmp(cfg->site.name, cfg->peer.name) == 0 ||
	    cfg->site.wan_address.family != cfg->peer.wan_address.family ||
	    addr_equal(&cfg->site.wan_address, &cfg->peer.wan_address))
		abort();
	for (i = 0; i < cfg->site.n_prefixes; i++) {
		if (prefix_contains(&cfg->site.prefixes[i],
		    &cfg->site.wan_address) ||
		    prefix_contains(&cfg->site.prefixes[i],
		    &cfg->peer.wan_address))
			abort();
		for (j = 0; j < cfg->peer.n_prefixes; j++)
			if (prefix_overlaps(&cfg->site.prefixes[i],
			    &cfg->peer.prefixes[j]))
				abort();
	}
	if (cfg->auth != GRGW_AUTH_PSK && cfg->auth != GRGW_AUTH_CERT)
		abort();
	if (cfg->mtu < 1280 || cfg->mtu > 9000 || cfg->if_id == 0 ||
	    cfg->table < 256)
		abort();
	check_pair(cfg);
}

static void
fuzz_parser(const uint8_t *data, size_t size)
{
	struct config_parser	*p;
	struct grgw_config	 cfg;
	const uint8_t		*line = data, *nl;
	const char		*e;
	size_t			 len, i, n, k;
	char			*copy;
	int			 rc;

	if ((p = config_parse_new(FUZZ_FILE)) == NULL)
		return;
	while (line < data + size) {
		nl = memchr(line, '\n', (size_t)(data + size - line));
		len = nl != NULL ? (size_t)(nl - line) :
		    (size_t)(data + size - line);
		if ((copy = malloc(len > 0 ? len : 1)) == NULL)
			break;
		memcpy(copy, line, len);
		config_parse_line(p, copy, len);
		free(copy);
		if (nl == NULL)
			break;
		line = nl + 1;
	}
	rc = config_parse_finish(p, &cfg);

	n = config_parse_error_count(p);
	if ((rc == 0) != (n == 0) || n > 101)
		abort();
	for (i = 0; i < n; i++) {
		if ((e = config_parse_error(p, i)) == NULL ||
		    strncmp(e, FUZZ_FILE ":", strlen(FUZZ_FILE ":")) != 0)
			abort();
		for (k = 0; e[k] != '\0'; k++)
			if ((unsigned char)e[k] < 0x20 ||
			    (unsigned char)e[k] > 0x7e)
				abort();
	}
	if (config_parse_error(p, n) != NULL)
		abort();
	if (rc == 0)
		check_accepted(&cfg);
	config_parse_free(p);
}

static void
fuzz_psk(const uint8_t *data, size_t size)
{
	struct grgw_psk	 psk;
	char		 err[256], text[200];
	size_t		 len = size;

	if (psk_decode((const char *)data, size, &psk, err, sizeof(err)) == -1)
		return;
	if (psk.len < GRGW_PSK_MIN || psk.len > GRGW_PSK_MAX)
		abort();
	/* Only canonical text is accepted: encoding gives it back. */
	sodium_bin2base64(text, sizeof(text), psk.key, psk.len,
	    sodium_base64_VARIANT_ORIGINAL);
	if (len > 0 && data[len - 1] == '\n')
		len--;
	if (len > 0 && data[len - 1] == '\r')
		len--;
	if (strlen(text) != len || memcmp(text, data, len) != 0)
		abort();
	psk_free(&psk);
}

static void
fuzz_addr(const uint8_t *data, size_t size)
{
	struct grgw_addr	 a, b;
	struct grgw_prefix	 p, q;
	char			 s[80], t[80];

	if (size >= sizeof(s))
		return;
	memcpy(s, data, size);
	s[size] = '\0';
	if (addr_parse(s, &a) == 0) {
		if (addr_parse(addr_fmt(&a, t, sizeof(t)), &b) == -1 ||
		    !addr_equal(&a, &b))
			abort();
	}
	if (prefix_parse(s, &p) == 0) {
		if (prefix_parse(prefix_fmt(&p, t, sizeof(t)), &q) == -1 ||
		    !addr_equal(&p.a, &q.a) || p.len != q.len ||
		    !prefix_overlaps(&p, &q) || !prefix_contains(&p, &q.a))
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_parser(data, size);
	fuzz_psk(data, size);
	fuzz_addr(data, size);
	return 0;
}
