/*
 * The link-state machine: every input combination that matters, with the
 * precedence of reasons, and the JSON the feeds publish.
 */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "grgw.h"
#include "strbuf.h"
#include "linkstate.h"

struct row {
	const char	*what;
	int		carrier, charon, child, tun_up, und_up, auth_failed;
	double		loss, srtt;
	enum link_state	state;
	enum link_reason reason;
};

static const struct row rows[] = {
	{ "all good", 1, 1, 1, 1, 1, 0, 0, 1, LINK_UP, REASON_NONE },
	{ "underlay probes filtered, tunnel fine", 1, 1, 1, 1, 0, 0, 0, 1,
	  LINK_UP, REASON_NONE },
	{ "carrier lost beats everything", 0, 1, 1, 1, 1, 0, 0, 1,
	  LINK_DOWN, REASON_WAN_LINK_DOWN },
	{ "carrier lost, charon down too", 0, 0, 0, 0, 0, 1, 0, 1,
	  LINK_DOWN, REASON_WAN_LINK_DOWN },
	{ "charon down", 1, 0, 0, 0, 1, 0, 0, 1, LINK_DOWN, REASON_CHARON_DOWN },
	{ "auth failed", 1, 1, 0, 0, 1, 1, 0, 1,
	  LINK_DOWN, REASON_IKE_AUTH_FAILED },
	{ "auth flag stale but tunnel works", 1, 1, 1, 1, 1, 1, 0, 1,
	  LINK_UP, REASON_NONE },
	{ "WAN path dead", 1, 1, 1, 0, 0, 0, 0, 1,
	  LINK_DOWN, REASON_UNDERLAY_UNREACHABLE },
	{ "WAN fine, tunnel probes dead", 1, 1, 1, 0, 1, 0, 0, 1,
	  LINK_DOWN, REASON_TUNNEL_DOWN },
	{ "WAN fine, no CHILD_SA", 1, 1, 0, 1, 1, 0, 0, 1,
	  LINK_DOWN, REASON_TUNNEL_DOWN },
	{ "lossy", 1, 1, 1, 1, 1, 0, 0.10, 1, LINK_DEGRADED, REASON_LOSS },
	{ "loss at threshold is not degraded", 1, 1, 1, 1, 1, 0, 0.05, 1,
	  LINK_UP, REASON_NONE },
	{ "slow", 1, 1, 1, 1, 1, 0, 0, 300, LINK_DEGRADED, REASON_RTT },
	{ "lossy and slow: loss named", 1, 1, 1, 1, 1, 0, 0.5, 300,
	  LINK_DEGRADED, REASON_LOSS },
};

static void
test_eval_table(void **state)
{
	const struct link_thresholds t = { 0.05, 250 };
	enum link_reason reason;
	enum link_state st;
	struct link_view v;
	size_t i;

	for (i = 0; i < nitems(rows); i++) {
		const struct row *r = &rows[i];

		memset(&v, 0, sizeof(v));
		v.carrier = r->carrier;
		v.charon_up = r->charon;
		v.child_up = r->child;
		v.ike_up = r->child;
		v.paths[PROBE_TUNNEL].up = r->tun_up;
		v.paths[PROBE_UNDERLAY].up = r->und_up;
		v.paths[PROBE_TUNNEL].loss_ratio = r->loss;
		v.paths[PROBE_TUNNEL].loss_sample = PROBE_RTT_WINDOW;
		v.paths[PROBE_TUNNEL].rtt_smoothed_ms = r->srtt;
		linkstate_eval(&v, r->auth_failed, &t, &st, &reason);
		print_message("%s\n", r->what);
		assert_int_equal(st, r->state);
		assert_int_equal(reason, r->reason);
	}
}

/*
 * A loss verdict needs a sample in which one lost request alone is not
 * above the threshold (20 decided requests at 5 %), or the whole window
 * for a threshold too small for that: right after a path's figures
 * restart, one loss in the first few must not call the link degraded.
 */
static void
test_loss_sample(void **state)
{
	struct link_thresholds t = { 0.05, 250 };
	enum link_reason reason;
	enum link_state st;
	struct link_view v;

	memset(&v, 0, sizeof(v));
	v.carrier = v.charon_up = v.child_up = v.ike_up = 1;
	v.paths[PROBE_TUNNEL].up = v.paths[PROBE_UNDERLAY].up = 1;
	/* 1 of 19: 5.3 %, on too small a sample */
	v.paths[PROBE_TUNNEL].loss_ratio = 1.0 / 19;
	v.paths[PROBE_TUNNEL].loss_sample = 19;
	linkstate_eval(&v, 0, &t, &st, &reason);
	assert_int_equal(st, LINK_UP);
	/* however much of it was lost */
	v.paths[PROBE_TUNNEL].loss_ratio = 10.0 / 19;
	linkstate_eval(&v, 0, &t, &st, &reason);
	assert_int_equal(st, LINK_UP);
	/* 2 of 20: 10 %, and 20 is enough */
	v.paths[PROBE_TUNNEL].loss_ratio = 2.0 / 20;
	v.paths[PROBE_TUNNEL].loss_sample = 20;
	linkstate_eval(&v, 0, &t, &st, &reason);
	assert_int_equal(st, LINK_DEGRADED);
	assert_int_equal(reason, REASON_LOSS);
	/* 0.1 %: one in 1,000, more than the window holds; the window will do */
	t.degraded_loss = 0.001;
	v.paths[PROBE_TUNNEL].loss_ratio = 1.0 / (PROBE_RTT_WINDOW - 1);
	v.paths[PROBE_TUNNEL].loss_sample = PROBE_RTT_WINDOW - 1;
	linkstate_eval(&v, 0, &t, &st, &reason);
	assert_int_equal(st, LINK_UP);
	v.paths[PROBE_TUNNEL].loss_ratio = 1.0 / PROBE_RTT_WINDOW;
	v.paths[PROBE_TUNNEL].loss_sample = PROBE_RTT_WINDOW;
	linkstate_eval(&v, 0, &t, &st, &reason);
	assert_int_equal(st, LINK_DEGRADED);
	/* 50 %: two will do */
	t.degraded_loss = 0.5;
	v.paths[PROBE_TUNNEL].loss_ratio = 1.0;
	v.paths[PROBE_TUNNEL].loss_sample = 1;
	linkstate_eval(&v, 0, &t, &st, &reason);
	assert_int_equal(st, LINK_UP);
	v.paths[PROBE_TUNNEL].loss_sample = 2;
	linkstate_eval(&v, 0, &t, &st, &reason);
	assert_int_equal(st, LINK_DEGRADED);
}

/* Probes refused for the clocks' sake: said, not taken for a dead WAN. */
static void
test_clock_skew(void **state)
{
	enum link_reason reason;
	enum link_state st;
	struct link_view v;

	memset(&v, 0, sizeof(v));
	v.carrier = v.charon_up = v.child_up = v.ike_up = 1;
	v.paths[PROBE_UNDERLAY].skew_recent = 1;
	linkstate_eval(&v, 0, NULL, &st, &reason);
	assert_int_equal(st, LINK_DOWN);
	assert_int_equal(reason, REASON_CLOCK_SKEW);
	assert_string_equal(link_reason_name(reason), "clock-skew");
	/* A working tunnel path wins: then the skew is only shown. */
	v.paths[PROBE_TUNNEL].up = 1;
	linkstate_eval(&v, 0, NULL, &st, &reason);
	assert_int_equal(st, LINK_UP);
	/* Authentication failures still come first. */
	v.paths[PROBE_TUNNEL].up = 0;
	linkstate_eval(&v, 1, NULL, &st, &reason);
	assert_int_equal(reason, REASON_IKE_AUTH_FAILED);
}

/*
 * probes = off: nothing is measured, the CHILD_SA decides, whatever the
 * (idle) paths say; carrier and charon still come first.
 */
static void
test_probes_off(void **state)
{
	const struct link_thresholds t = { 0.05, 250 };
	enum link_reason reason;
	enum link_state st;
	struct link_view v;

	memset(&v, 0, sizeof(v));
	v.method = GRGW_PROBES_OFF;
	v.carrier = v.charon_up = v.ike_up = v.child_up = 1;
	v.paths[PROBE_TUNNEL].loss_ratio = 0.9;
	linkstate_eval(&v, 0, &t, &st, &reason);
	assert_int_equal(st, LINK_UP);
	assert_int_equal(reason, REASON_NONE);
	v.child_up = 0;
	linkstate_eval(&v, 0, &t, &st, &reason);
	assert_int_equal(st, LINK_DOWN);
	assert_int_equal(reason, REASON_SA_DOWN);
	assert_string_equal(link_reason_name(reason), "sa-down");
	v.ike_up = 0;
	linkstate_eval(&v, 1, &t, &st, &reason);
	assert_int_equal(reason, REASON_IKE_AUTH_FAILED);
	v.charon_up = 0;
	linkstate_eval(&v, 0, &t, &st, &reason);
	assert_int_equal(reason, REASON_CHARON_DOWN);
	v.carrier = 0;
	v.child_up = 1;
	linkstate_eval(&v, 0, &t, &st, &reason);
	assert_int_equal(st, LINK_DOWN);
	assert_int_equal(reason, REASON_WAN_LINK_DOWN);

	/* icmp: the paths are judged exactly as grgw's probes are. */
	memset(&v, 0, sizeof(v));
	v.method = GRGW_PROBES_ICMP;
	v.carrier = v.charon_up = v.ike_up = v.child_up = 1;
	linkstate_eval(&v, 0, &t, &st, &reason);
	assert_int_equal(reason, REASON_UNDERLAY_UNREACHABLE);
	v.paths[PROBE_UNDERLAY].up = 1;
	linkstate_eval(&v, 0, &t, &st, &reason);
	assert_int_equal(reason, REASON_TUNNEL_DOWN);
	v.paths[PROBE_TUNNEL].up = 1;
	v.paths[PROBE_TUNNEL].loss_ratio = 0.2;
	v.paths[PROBE_TUNNEL].loss_sample = 20;
	linkstate_eval(&v, 0, &t, &st, &reason);
	assert_int_equal(st, LINK_DEGRADED);
	assert_int_equal(reason, REASON_LOSS);
}

static void
test_no_thresholds(void **state)
{
	enum link_reason reason;
	enum link_state st;
	struct link_view v;

	memset(&v, 0, sizeof(v));
	v.carrier = v.charon_up = v.child_up = 1;
	v.paths[PROBE_TUNNEL].up = 1;
	v.paths[PROBE_TUNNEL].loss_ratio = 0.9;
	linkstate_eval(&v, 0, NULL, &st, &reason);
	assert_int_equal(st, LINK_UP);
}

static void
test_names(void **state)
{
	assert_string_equal(link_state_name(LINK_DEGRADED), "degraded");
	assert_string_equal(link_reason_name(REASON_WAN_LINK_DOWN),
	    "wan-link-down");
	assert_string_equal(link_reason_name(REASON_UNDERLAY_UNREACHABLE),
	    "underlay-unreachable");
	assert_string_equal(link_reason_name(REASON_IKE_AUTH_FAILED),
	    "ike-auth-failed");
	assert_string_equal(link_reason_name(REASON_CHARON_DOWN),
	    "charon-down");
	assert_string_equal(link_reason_name(REASON_TUNNEL_DOWN),
	    "tunnel-down");
}

static void
test_render_json(void **state)
{
	struct link_view v;
	struct strbuf sb;

	memset(&v, 0, sizeof(v));
	v.site = "site-a";
	v.peer = "site-\"b\"";
	v.state = LINK_DOWN;
	v.reason = REASON_UNDERLAY_UNREACHABLE;
	v.since.tv_sec = 1764000000;
	v.since.tv_nsec = 123000000;
	v.changes = 7;
	v.paths[PROBE_TUNNEL].rtt_last_ms = NAN;
	v.paths[PROBE_UNDERLAY].up = 1;
	v.paths[PROBE_UNDERLAY].rtt_smoothed_ms = 1.5;
	v.paths[PROBE_UNDERLAY].rejected_auth = 3;
	strbuf_init(&sb);
	linkstate_render_json(&v, &sb);
	assert_false(sb.failed);
	assert_non_null(strstr(sb.s, "\"peer\":\"site-\\\"b\\\"\""));
	assert_non_null(strstr(sb.s, "\"state\":\"down\",\"reason\":"
	    "\"underlay-unreachable\""));
	assert_non_null(strstr(sb.s, "\"since\":\"2025-11-24T16:00:00.123Z\""));
	assert_non_null(strstr(sb.s, "\"changes\":7"));
	assert_non_null(strstr(sb.s, "\"tunnel\":{\"up\":false,\"rtt_ms\":"
	    "{\"last\":null"));
	assert_non_null(strstr(sb.s, "\"underlay\":{\"up\":true,\"rtt_ms\":"
	    "{\"last\":0.0,\"smoothed\":1.5,"));
	assert_non_null(strstr(sb.s, "\"rejected\":{\"auth\":3,"));
	assert_non_null(strstr(sb.s, ",\"method\":\"grgw\"}"));
	strbuf_free(&sb);
	v.method = GRGW_PROBES_ICMP;
	strbuf_init(&sb);
	linkstate_render_json(&v, &sb);
	assert_false(sb.failed);
	assert_non_null(strstr(sb.s, ",\"method\":\"icmp\"}"));
	strbuf_free(&sb);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_eval_table),
		cmocka_unit_test(test_loss_sample),
		cmocka_unit_test(test_no_thresholds),
		cmocka_unit_test(test_probes_off),
		cmocka_unit_test(test_clock_skew),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_render_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
