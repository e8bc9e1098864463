/*
 * libFuzzer harness for what the feeds parse from outside: etcd's JSON
 * responses (etcd_json_find_int) and the addresses of the configuration
 * (http_listen_parse, etcd_endpoint_parse).
 *
 * The response is searched in a buffer of exactly its length, so a read
 * past the end is caught.  Beyond "does not crash": a number found must
 * appear in the text as written, and an address accepted must be one
 * that is printed back in the same family.
 */
#include <sys/socket.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grgw.h"
#include "feeds.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const keys[] = { "ID", "TTL", "revision" };
	struct grgw_addr	 a;
	char			 why[160];
	char			*buf, *str, num[32], out[64];
	uint16_t		 port;
	int64_t			 v;
	size_t			 i;

	if ((buf = malloc(size > 0 ? size : 1)) == NULL)
		return 0;
	memcpy(buf, data, size);
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (etcd_json_find_int(buf, size, keys[i], &v) != 0)
			continue;
		snprintf(num, sizeof(num), "%lld", (long long)v);
		/* Found as written ("-0" is the one other spelling). */
		if (v != 0 && memmem(buf, size, num, strlen(num)) == NULL)
			abort();
	}
	free(buf);

	if ((str = malloc(size + 1)) == NULL)
		return 0;
	memcpy(str, data, size);
	str[size] = '\0';
	why[0] = '\0';
	if (addr_port_parse(str, &a, &port, why, sizeof(why)) == 0) {
		if (addr_fmt(&a, out, sizeof(out)) == NULL ||
		    (a.family != AF_INET && a.family != AF_INET6))
			abort();
	} else if (why[0] == '\0')
		abort();
	why[0] = '\0';
	if (addr_url_parse(str, FEEDS_ETCD_PORT_DEFAULT, &a, &port, why,
	    sizeof(why)) == 0) {
		if (port == 0)
			abort();
	} else if (why[0] == '\0')
		abort();
	free(str);
	return 0;
}
