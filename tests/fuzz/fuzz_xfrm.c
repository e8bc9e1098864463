/*
 * libFuzzer harness for what grgw reads from the kernel's XFRM dumps
 * (netlink/xfrm.c): the input is one dump message, as a datagram from
 * NETLINK_XFRM would hold it.  Whatever it says about its lengths and
 * attributes, nothing is read past its end, and a delete request comes
 * out only for an SA or a policy that names grgw's if_id: a request for
 * another if_id, or for if_id 0, is never built from the same bytes.
 *
 * The seed corpus (tests/fuzz/corpus/xfrm/) holds an SA and a policy
 * dump message with if_id 4210.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <linux/netlink.h>
#include <linux/xfrm.h>

#include "netlink/libnl.h"

#include "grgw.h"
#include "netlink/netlink.h"

#define FUZZ_IF_ID	4210

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nl_msg	*out;
	struct nlmsghdr	*h;
	uint32_t	*buf;
	uint32_t	 if_id;
	int		 ours;

	if (size > 65536)
		return 0;
	/* Aligned like a receive buffer, and exactly size bytes long. */
	if ((buf = malloc(size == 0 ? 1 : size)) == NULL)
		return 0;
	memcpy(buf, data, size);
	out = gwnl_build_xfrm_delete(buf, size, FUZZ_IF_ID);
	ours = out != NULL;
	if (out != NULL) {
		h = nlmsg_hdr(out);
		if (h->nlmsg_type != XFRM_MSG_DELSA &&
		    h->nlmsg_type != XFRM_MSG_DELPOLICY)
			abort();
		nlmsg_free(out);
	}
	/* The same bytes never make a request for another interface. */
	if (size >= sizeof(uint32_t) * 2) {
		memcpy(&if_id, data + size / 2 - size / 2 % 4, sizeof(if_id));
		if (if_id != FUZZ_IF_ID && if_id != 0 && ours &&
		    (out = gwnl_build_xfrm_delete(buf, size, if_id)) != NULL)
			abort();
	}
	if (gwnl_build_xfrm_delete(buf, size, 0) != NULL)
		abort();
	free(buf);
	return 0;
}
