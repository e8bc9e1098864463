/*
 * Big-endian 64-bit integers in byte buffers, for the wire codecs
 * (probe_codec.c, pair_codec.c).  Pure; p must have 8 bytes.
 */
#ifndef GRGW_BE64_H
#define GRGW_BE64_H

#include <stdint.h>

static inline void
put_be64(uint8_t *p, uint64_t v)
{
	int	 i;

	for (i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static inline uint64_t
get_be64(const uint8_t *p)
{
	uint64_t	 v = 0;
	int		 i;

	for (i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

#endif /* GRGW_BE64_H */
