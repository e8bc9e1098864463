/*
 * The parent <-> network process codec (gw/pmsg.c) on arbitrary bytes:
 * frames are cut from the stream one after the other, each body goes
 * through its decoder, and whatever decodes must encode back to the very
 * same bytes (so no decoder accepts more than the encoder can say).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "grgw.h"
#include "linkstate.h"
#include "pmsg.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_body(const struct pmsg *m)
{
	struct grgw_config	 cfg;
	struct path_stats	 st;
	struct pmsg_role	 role;
	enum pmsg_pair_cmd	 cmd;
	uint64_t		 epoch, until;
	uint8_t			 out[PMSG_CONF_MAX], path[PMSG_PATH_LEN];
	uint8_t			 want[PMSG_WANT_LEN];
	char			 text[PMSG_TEXT_MAX + 1];
	const uint8_t		*doc, *key, *next;
	enum probe_path		 p;
	enum pmsg_doc		 d;
	uint32_t		 id;
	size_t			 dlen;
	int			 changed, ok, len, up[PROBE_NPATHS];

	switch (m->type) {
	case PMSG_CONF:
		if (pmsg_conf_decode(m->body, m->len, &cfg) == 0) {
			len = pmsg_conf_encode(&cfg, out, sizeof(out));
			if (len < 0 || (size_t)len != m->len ||
			    memcmp(out, m->body, m->len) != 0)
				abort();
		}
		break;
	case PMSG_PATH:
		if (pmsg_path_decode(m->body, m->len, &p, &changed, &st) == 0) {
			pmsg_path_encode(p, changed, &st, path);
			if (m->len != sizeof(path) ||
			    memcmp(path, m->body, m->len) != 0)
				abort();
		}
		break;
	case PMSG_WANT:
		if (pmsg_want_decode(m->body, m->len, &id, &d) == 0) {
			pmsg_want_encode(id, d, want);
			if (m->len != sizeof(want) ||
			    memcmp(want, m->body, m->len) != 0)
				abort();
		}
		break;
	case PMSG_DOC:
		if (pmsg_doc_decode(m->body, m->len, &id, &doc, &dlen) == 0 &&
		    (doc != m->body + PMSG_DOC_HDR_LEN ||
		    dlen != m->len - PMSG_DOC_HDR_LEN))
			abort();
		break;
	case PMSG_READY:
		if (pmsg_ready_decode(m->body, m->len, &ok, text,
		    sizeof(text)) == 0) {
			len = pmsg_ready_encode(ok, text, out, sizeof(out));
			if (len < 0 || (size_t)len != m->len ||
			    memcmp(out, m->body, m->len) != 0)
				abort();
		}
		break;
	case PMSG_ETCD:
		if (pmsg_etcd_decode(m->body, m->len, &ok, text,
		    sizeof(text)) == 0) {
			len = pmsg_etcd_encode(ok, text, out, sizeof(out));
			if (len < 0 || (size_t)len != m->len ||
			    memcmp(out, m->body, m->len) != 0)
				abort();
		}
		break;
	case PMSG_ROLE:
		if (pmsg_role_decode(m->body, m->len, &role) == 0) {
			len = pmsg_role_encode(&role, out, sizeof(out));
			if (len < 0 || (size_t)len != m->len ||
			    memcmp(out, m->body, m->len) != 0)
				abort();
		}
		break;
	case PMSG_PAIR_RESUME:
		if (pmsg_pair_resume_decode(m->body, m->len, &epoch,
		    &until) == 0) {
			pmsg_pair_resume_encode(epoch, until, out);
			if (m->len != PMSG_PAIR_RESUME_LEN ||
			    memcmp(out, m->body, m->len) != 0)
				abort();
		}
		break;
	case PMSG_PAIR_CMD:
		if (pmsg_pair_cmd_decode(m->body, m->len, &cmd) == 0 &&
		    (m->len != PMSG_PAIR_CMD_LEN || cmd != m->body[0]))
			abort();
		break;
	case PMSG_KEY:
	case PMSG_PAIR_KEY:
		if (pmsg_key_decode(m->body, m->len, &key, &next) == 0 &&
		    (key != m->body || (m->len == PMSG_KEYS_MAX) !=
		    (next == m->body + PMSG_KEY_LEN) ||
		    (m->len != PMSG_KEY_LEN && m->len != PMSG_KEYS_MAX)))
			abort();
		break;
	case PMSG_START:
		if (pmsg_start_decode(m->body, m->len, up) == 0 &&
		    (m->len != PMSG_START_LEN || up[0] > 1 || up[1] > 1))
			abort();
		break;
	default:
		if (pmsg_text_decode(m->body, m->len, text, sizeof(text)) == 0 &&
		    strlen(text) != m->len)
			abort();
		break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t		*copy;
	struct pmsg	 m;
	size_t		 off = 0;
	int		 n;

	/* An exact-length copy, so any read past the end is caught. */
	if ((copy = malloc(size > 0 ? size : 1)) == NULL)
		return 0;
	memcpy(copy, data, size);
	while (off < size) {
		n = pmsg_frame(copy + off, size - off, &m);
		if (n <= 0)
			break;
		if ((size_t)n > size - off || m.body != copy + off +
		    PMSG_HDR_LEN || m.len != (size_t)n - PMSG_HDR_LEN)
			abort();
		check_body(&m);
		off += (size_t)n;
	}
	free(copy);
	return 0;
}
