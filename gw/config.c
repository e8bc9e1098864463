/*
 * Configuration parser.
 *
 * The format is INI-like: "[section]" headers, "key = value" lines, '#'
 * comments (at the start of a line or after whitespace), blank lines.
 * Every key is a row in key_defs[] naming its section, the field of
 * struct grgw_config it fills and the function that checks its value;
 * adding a key or a section means adding rows, not code paths.
 *
 * The parser is pure (no I/O): config_parse_line() takes one line as a
 * pointer and a length; the line need not be NUL-terminated.  Errors do
 * not stop the parse; each one is recorded as "file:line: what is wrong;
 * expected what" so that a user sees every mistake in one run.  Checks
 * that need the whole file (required keys, overlaps between the sites,
 * families of the WAN addresses) run in config_parse_finish().
 * config_load() adds the checks that do touch the file system: the files
 * the config names.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <netinet/in.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "grgw.h"
#include "feeds.h"
#include "policy/policy.h"

#define CONFIG_LINE_MAX		4096	/* bytes, without newline */
#define CONFIG_ERRORS_MAX	100
#define QUOTE_MAX		64	/* value bytes shown in messages */
#define QUOTE_BUF		(QUOTE_MAX * 4 + 8)
#define ENTRY_MAX		16		/* largest repeatable key */

_Static_assert(GRGW_MAX_PREFIXES <= ENTRY_MAX, "ENTRY_MAX too small");
_Static_assert(GRGW_MAX_LAN_IFS <= ENTRY_MAX, "ENTRY_MAX too small");
_Static_assert(GRGW_MAX_LAN_ADDRS <= ENTRY_MAX, "ENTRY_MAX too small");
_Static_assert(sizeof(enum grgw_dataplane) == sizeof(int), "enum size");
_Static_assert(sizeof(enum grgw_probes) == sizeof(int), "enum size");
_Static_assert(GRGW_MAX_CLASS_PORTS <= ENTRY_MAX, "ENTRY_MAX too small");
_Static_assert(GRGW_MAX_CLASS_PREFIXES <= ENTRY_MAX, "ENTRY_MAX too small");

/*
 * Sections.  A future "[class NAME]" kind of section would get a flag
 * here saying that it takes a name, and per-instance storage.
 */
enum section_id {
	SEC_SITE,
	SEC_PEER,
	SEC_AUTH,
	SEC_DATAPLANE,
	SEC_DAEMON,
	SEC_QOS,
	SEC_CLASS,		/* "[class NAME]": one per traffic class */
	SEC_PROBE,
	SEC_HTTP,
	SEC_HOOKS,
	SEC_ETCD,
	SEC_IPSEC,
	SEC_PAIR,
	SEC_COUNT,
	SEC_NONE = -1,		/* before the first header */
	SEC_UNKNOWN = -2,	/* after a header we could not accept */
};

static const char *const section_names[SEC_COUNT] = {
	[SEC_SITE] = "site",
	[SEC_PEER] = "peer",
	[SEC_AUTH] = "auth",
	[SEC_DATAPLANE] = "dataplane",
	[SEC_DAEMON] = "daemon",
	[SEC_QOS] = "qos",
	[SEC_CLASS] = "class",
	[SEC_PROBE] = "probe",
	[SEC_HTTP] = "http",
	[SEC_HOOKS] = "hooks",
	[SEC_ETCD] = "etcd",
	[SEC_IPSEC] = "ipsec",
	[SEC_PAIR] = "pair",
};

enum key_id {
	K_SITE_NAME,
	K_SITE_ID,
	K_SITE_WAN_IF,
	K_SITE_WAN_ADDR,
	K_SITE_LAN_IF,
	K_SITE_LAN_ADDR,
	K_SITE_PREFIX,
	K_PEER_NAME,
	K_PEER_ID,
	K_PEER_ADDR,
	K_PEER_LAN_ADDR,
	K_PEER_PREFIX,
	K_PEER_PROBES,
	K_PEER_GATEWAY,
	K_AUTH_PSK,
	K_AUTH_PSK_NEXT,
	K_AUTH_CERT,
	K_AUTH_KEY,
	K_AUTH_CA,
	K_AUTH_WARN_DAYS,
	K_IPSEC_IKE_REKEY,
	K_IPSEC_IKE_LIFE,
	K_IPSEC_CHILD_REKEY,
	K_IPSEC_CHILD_LIFE,
	K_DP_MODE,
	K_DP_IF,
	K_DP_IF_ID,
	K_DP_TABLE,
	K_DP_MTU,
	K_DAEMON_RUN_DIR,
	K_DAEMON_CHARON,
	K_DAEMON_LOG_LEVEL,
	K_DAEMON_USER,
	K_QOS_ENABLE,
	K_QOS_WAN_RATE,
	K_QOS_IF,
	K_QOS_LAN_GRO,
	K_CLASS_ENABLE,
	K_CLASS_PROTOCOL,
	K_CLASS_PORT,
	K_CLASS_PREFIX,
	K_CLASS_DSCP,
	K_CLASS_PRIORITY,
	K_CLASS_RATE,
	K_CLASS_CEIL,
	K_PROBE_INTERVAL,
	K_PROBE_MULTIPLIER,
	K_PROBE_RECOVER,
	K_PROBE_PORT,
	K_PROBE_KEY,
	K_PROBE_LOSS,
	K_PROBE_RTT,
	K_PROBE_HOLD,
	K_HTTP_LISTEN,
	K_HOOKS_DIR,
	K_HOOKS_TIMEOUT,
	K_ETCD_ENDPOINT,
	K_ETCD_KEY,
	K_ETCD_TTL,
	K_PAIR_PARTNER,
	K_PAIR_ADDRESS,
	K_PAIR_SECOND_PARTNER,
	K_PAIR_SECOND_ADDRESS,
	K_PAIR_OWN_WAN,
	K_PAIR_PRIORITY,
	K_PAIR_PORT,
	K_PAIR_INTERVAL,
	K_PAIR_DEAD,
	K_PAIR_GUARD,
	K_PAIR_MARGIN,
	K_PAIR_HANDOVER_WAIT,
	K_PAIR_KEY,
	K_PAIR_ETCD_KEY,
	K_COUNT
};

#define KEY_REQUIRED	0x01	/* finish reports it when absent */
#define KEY_REPEAT	0x02	/* may appear more than once */

struct config_parser;
struct key_def;

/* Checks a value and stores it; records its own error and returns -1. */
typedef int key_parse_fn(struct config_parser *, const struct key_def *,
    const char *);

struct choice {
	const char	*name;
	int		 value;
};

struct key_def {
	enum section_id		 section;
	const char		*name;
	key_parse_fn		*parse;
	size_t			 off;	/* field, or first element */
	size_t			 size;	/* of the field or element */
	size_t			 count_off; /* KEY_REPEAT: int counter */
	unsigned int		 max;	/* KEY_REPEAT: capacity */
	uint32_t		 min, umax;	/* integers: inclusive */
	const struct choice	*choices;	/* NULL-terminated */
	unsigned int		 flags;
	const char		*expect;	/* what a good value is */
};

/* What the parser remembers about each key, for later messages. */
struct key_state {
	unsigned int	 line;		/* first occurrence; 0: none */
	int		 valid;		/* scalar value accepted */
	int		 invalid;	/* some value was refused */
	unsigned int	 entry_line[ENTRY_MAX]; /* line of stored entry i */
};

struct config_parser {
	char		 file[PATH_MAX];
	unsigned int	 lineno;
	int		 section;		/* enum section_id */
	unsigned int	 section_line[SEC_COUNT];
	struct key_state keys[K_COUNT];
	struct grgw_config cfg;
	char		**errors;
	size_t		 n_errors, cap_errors;
	size_t		 n_seen;	/* including dropped ones */
	int		 oom;
	int		 finished;
	/* [class NAME] sections: the class being read, and the state of
	 * the class keys per class (each class has keys of its own). */
	int		 cur_class;
	struct key_state class_keys[GRGW_MAX_CLASSES][K_COUNT];
	char		 buf[CONFIG_LINE_MAX + 1];
};

static key_parse_fn key_name, key_identity, key_ifname, key_address,
    key_lan_address, key_prefix, key_path, key_u32, key_choice,
    key_log_level, key_wan_rate, key_port, key_dscp, key_class_rate;
static key_parse_fn key_percent;
static key_parse_fn key_listen, key_etcd_endpoint, key_etcd_key;
static key_parse_fn key_user, key_gateway;
static key_parse_fn key_duration;

static const struct choice yes_no_choices[] = {
	{ "yes",	1 },
	{ "no",		0 },
	{ NULL,		0 }
};

static const struct choice protocol_choices[] = {
	{ "tcp",	GRGW_L4_TCP },
	{ "udp",	GRGW_L4_UDP },
	{ "any",	GRGW_L4_ANY },
	{ NULL,		0 }
};

static const struct choice lan_gro_choices[] = {
	{ "off",	0 },
	{ "keep",	1 },
	{ NULL,		0 }
};

static const struct choice probes_choices[] = {
	{ "grgw",	GRGW_PROBES_GRGW },
	{ "icmp",	GRGW_PROBES_ICMP },
	{ "off",	GRGW_PROBES_OFF },
	{ NULL,		0 }
};

static const struct choice dataplane_choices[] = {
	{ "auto",	GRGW_DP_AUTO },
	{ "kernel",	GRGW_DP_KERNEL },
	{ "libipsec",	GRGW_DP_LIBIPSEC },
	{ NULL,		0 }
};


#define F_OFF(f)	offsetof(struct grgw_config, f)
#define F_SIZE(f)	sizeof(((struct grgw_config *)0)->f)
#define F_ELEM(f)	sizeof(((struct grgw_config *)0)->f[0])
#define F_NITEMS(f)	nitems(((struct grgw_config *)0)->f)

#define SCALAR(sec, key, fn, f, fl, exp)				\
	{ .section = (sec), .name = (key), .parse = (fn),		\
	  .off = F_OFF(f), .size = F_SIZE(f), .flags = (fl),		\
	  .expect = (exp) }
#define REPEAT(sec, key, fn, f, n, fl, exp)				\
	{ .section = (sec), .name = (key), .parse = (fn),		\
	  .off = F_OFF(f), .size = F_ELEM(f), .count_off = F_OFF(n),	\
	  .max = F_NITEMS(f), .flags = (fl) | KEY_REPEAT,		\
	  .expect = (exp) }
#define INTEGER(sec, key, f, lo, hi, exp)				\
	{ .section = (sec), .name = (key), .parse = key_u32,		\
	  .off = F_OFF(f), .size = F_SIZE(f), .min = (lo), .umax = (hi),\
	  .expect = (exp) }
#define DURATION(sec, key, f, lo, hi, range)				\
	{ .section = (sec), .name = (key), .parse = key_duration,	\
	  .off = F_OFF(f), .size = F_SIZE(f), .min = (lo), .umax = (hi),\
	  .expect = "a duration from " range ", such as 90s, 30m, 4h or " \
	  "1d (a plain number is seconds)" }
#define CHOICE(sec, key, f, list, exp)					\
	{ .section = (sec), .name = (key), .parse = key_choice,	\
	  .off = F_OFF(f), .size = F_SIZE(f), .choices = (list),	\
	  .expect = (exp) }

#define EXPECT_NAME	"a site name of 1 to 63 letters, digits, '.', '_' " \
			"or '-', starting with a letter or digit"
#define EXPECT_ID	"an IKE identity of 1 to 255 printable characters " \
			"without spaces, such as gw.site-a.example"
#define EXPECT_IFNAME	"an interface name of 1 to 15 characters " \
			"without '/', ':' or whitespace"
/* Keys of [class NAME]: fields of struct grgw_class. */
#define C_OFF(f)	offsetof(struct grgw_class, f)
#define C_SIZE(f)	sizeof(((struct grgw_class *)0)->f)
#define C_ELEM(f)	sizeof(((struct grgw_class *)0)->f[0])
#define C_NITEMS(f)	nitems(((struct grgw_class *)0)->f)
#define CLASS_KEY(key, fn, f, exp)					\
	{ .section = SEC_CLASS, .name = (key), .parse = (fn),		\
	  .off = C_OFF(f), .size = C_SIZE(f), .expect = (exp) }
#define CLASS_LIST(key, fn, f, n, exp)					\
	{ .section = SEC_CLASS, .name = (key), .parse = (fn),		\
	  .off = C_OFF(f), .size = C_ELEM(f), .count_off = C_OFF(n),	\
	  .max = C_NITEMS(f), .flags = KEY_REPEAT, .expect = (exp) }

#define EXPECT_RATE	"a rate in bits per second such as 10mbit, " \
			"500kbit, 1gbit or 4000000 (8kbit to 400gbit)"
#define EXPECT_SHARE	"a share of [qos] wan_rate such as 20%, or " \
			EXPECT_RATE

/* dead_ms, guard_ms: a minute is far beyond any failover worth having. */
#define PAIR_MS_MAX		60000
#define PAIR_MS_MAX_TEXT	"60000"

#define EXPECT_PREFIX	"a network in CIDR notation such as " \
			"198.18.1.0/24 or 2001:db8:a::/64"

static const struct key_def key_defs[K_COUNT] = {
	[K_SITE_NAME] = SCALAR(SEC_SITE, "name", key_name, site.name,
	    KEY_REQUIRED, EXPECT_NAME),
	[K_SITE_ID] = SCALAR(SEC_SITE, "id", key_identity, site.id, 0,
	    EXPECT_ID),
	[K_SITE_WAN_IF] = SCALAR(SEC_SITE, "wan_interface", key_ifname,
	    site.wan_interface, KEY_REQUIRED, EXPECT_IFNAME ", such as eth0"),
	[K_SITE_WAN_ADDR] = SCALAR(SEC_SITE, "wan_address", key_address,
	    site.wan_address, KEY_REQUIRED,
	    "this gateway's unicast IPv4 or IPv6 address on the WAN, "
	    "such as 192.0.2.10"),
	[K_SITE_LAN_IF] = REPEAT(SEC_SITE, "lan_interface", key_ifname,
	    site.lan_interfaces, site.n_lan_interfaces, KEY_REQUIRED,
	    EXPECT_IFNAME ", such as eth1"),
	[K_SITE_LAN_ADDR] = REPEAT(SEC_SITE, "lan_address", key_lan_address,
	    site.lan_addresses, site.n_lan_addresses, KEY_REQUIRED,
	    "this gateway's unicast address inside a [site] prefix, such as "
	    "198.18.1.1, at most one per address family"),
	[K_SITE_PREFIX] = REPEAT(SEC_SITE, "prefix", key_prefix,
	    site.prefixes, site.n_prefixes, KEY_REQUIRED, EXPECT_PREFIX),

	[K_PEER_NAME] = SCALAR(SEC_PEER, "name", key_name, peer.name,
	    KEY_REQUIRED, EXPECT_NAME),
	[K_PEER_ID] = SCALAR(SEC_PEER, "id", key_identity, peer.id, 0,
	    EXPECT_ID),
	[K_PEER_ADDR] = SCALAR(SEC_PEER, "address", key_address,
	    peer.wan_address, KEY_REQUIRED,
	    "the other gateway's unicast WAN address as reached from here "
	    "(its public address under 1:1 NAT), such as 198.51.100.10"),
	[K_PEER_LAN_ADDR] = REPEAT(SEC_PEER, "lan_address", key_lan_address,
	    peer.lan_addresses, peer.n_lan_addresses, KEY_REQUIRED,
	    "the other gateway's unicast address inside a [peer] prefix, "
	    "such as 198.18.2.1, at most one per address family"),
	[K_PEER_PREFIX] = REPEAT(SEC_PEER, "prefix", key_prefix,
	    peer.prefixes, peer.n_prefixes, KEY_REQUIRED,
	    "a network of the other site in CIDR notation such as "
	    "198.18.2.0/24"),
	[K_PEER_GATEWAY] = REPEAT(SEC_PEER, "gateway", key_gateway,
	    peer.gateways, peer.n_gateways, 0,
	    "one of the other site's gateways' own WAN addresses as reached "
	    "from here (not [peer] address), such as 198.51.100.11, at most "
	    "4"),
	[K_PEER_PROBES] = CHOICE(SEC_PEER, "probes", probe.method,
	    probes_choices, "grgw (the peer runs grgw), icmp (ICMP echo, "
	    "any peer) or off (the link follows the IKE and CHILD SAs)"),

	/* Which of these must be present is decided in check_auth(). */
	[K_AUTH_PSK] = SCALAR(SEC_AUTH, "psk_file", key_path, psk_file, 0,
	    "an absolute path such as /etc/grgw/psk"),
	/* The key a rotation moves to: accepted from the peer, not used. */
	[K_AUTH_PSK_NEXT] = SCALAR(SEC_AUTH, "psk_next_file", key_path,
	    psk_next_file, 0, "an absolute path such as /etc/grgw/psk.next"),
	[K_AUTH_CERT] = SCALAR(SEC_AUTH, "certificate", key_path, cert_file,
	    0, "an absolute path to this gateway's certificate such as "
	    "/etc/grgw/site-a.crt"),
	[K_AUTH_KEY] = SCALAR(SEC_AUTH, "private_key", key_path, key_file, 0,
	    "an absolute path to this gateway's private key such as "
	    "/etc/grgw/site-a.key"),
	[K_AUTH_CA] = SCALAR(SEC_AUTH, "ca", key_path, ca_file, 0,
	    "an absolute path to the CA certificate such as "
	    "/etc/grgw/ca.crt"),

	[K_AUTH_WARN_DAYS] = INTEGER(SEC_AUTH, "cert_warn_days",
	    cert_warn_days, 1, 3650, "an integer from 1 to 3650 (days "
	    "before a certificate expires that status warns)"),

	/*
	 * SA lifetimes: rekeying (never reauthentication) at the rekey
	 * time, the SA deleted at the lifetime if rekeying failed until
	 * then.  check_ipsec() relates the two.
	 */
	[K_IPSEC_IKE_REKEY] = DURATION(SEC_IPSEC, "ike_rekey_time",
	    ipsec.ike_rekey_s, 10, 86400 * 7, "10s to 7d"),
	[K_IPSEC_IKE_LIFE] = DURATION(SEC_IPSEC, "ike_lifetime",
	    ipsec.ike_life_s, 12, 86400 * 8, "12s to 8d"),
	[K_IPSEC_CHILD_REKEY] = DURATION(SEC_IPSEC, "child_rekey_time",
	    ipsec.child_rekey_s, 5, 86400, "5s to 1d"),
	[K_IPSEC_CHILD_LIFE] = DURATION(SEC_IPSEC, "child_lifetime",
	    ipsec.child_life_s, 7, 86400 * 2, "7s to 2d"),

	[K_DP_MODE] = CHOICE(SEC_DATAPLANE, "mode", dataplane,
	    dataplane_choices, "auto, kernel or libipsec"),
	[K_DP_IF] = SCALAR(SEC_DATAPLANE, "interface", key_ifname,
	    xfrm_interface, 0, EXPECT_IFNAME ", such as grgw0"),
	[K_DP_IF_ID] = INTEGER(SEC_DATAPLANE, "if_id", if_id, 1, 0xfffffffe,
	    "an integer from 1 to 4294967294"),
	/*
	 * The table number is also the rule preference base: rules use
	 * table-10 to table+1.  They must come after charon's rule 220 and
	 * before main's 32766, or the fail-closed layer would be bypassed;
	 * starting at 256 also keeps clear of the kernel's tables 253-255.
	 */
	[K_DP_TABLE] = INTEGER(SEC_DATAPLANE, "table", table, 256, 32764,
	    "an integer from 256 to 32764 (rule preferences must fall "
	    "between charon's 220 and main's 32766)"),
	[K_DP_MTU] = INTEGER(SEC_DATAPLANE, "mtu", mtu, 1280, 9000,
	    "an integer from 1280 to 9000"),

	[K_DAEMON_RUN_DIR] = SCALAR(SEC_DAEMON, "run_dir", key_path, run_dir,
	    0, "an absolute path such as " GRGW_DEFAULT_RUN_DIR),
	[K_DAEMON_CHARON] = SCALAR(SEC_DAEMON, "charon", key_path,
	    charon_path, 0, "an absolute path to the charon daemon such as "
	    GRGW_DEFAULT_CHARON),
	/* The names are log.c's, so the daemon and its config agree. */
	[K_DAEMON_LOG_LEVEL] = SCALAR(SEC_DAEMON, "log_level", key_log_level,
	    log_level, 0, "error, warning, info or debug"),
	[K_DAEMON_USER] = SCALAR(SEC_DAEMON, "user", key_user, user, 0,
	    "the name of an unprivileged system user (letters, digits, '_', "
	    "'-' and '.', not starting with a digit or '-'), such as "
	    GRGW_DEFAULT_USER),

	[K_QOS_ENABLE] = CHOICE(SEC_QOS, "enable", qos.enabled,
	    yes_no_choices, "yes or no"),
	[K_QOS_WAN_RATE] = SCALAR(SEC_QOS, "wan_rate", key_wan_rate,
	    qos.wan_rate, 0, EXPECT_RATE),
	[K_QOS_IF] = SCALAR(SEC_QOS, "interface", key_ifname, qos.interface,
	    0, EXPECT_IFNAME " to shape instead of the tunnel interface"),
	/* GRO merges segments into packets the shaper sends as one. */
	[K_QOS_LAN_GRO] = CHOICE(SEC_QOS, "lan_gro", qos.keep_lan_gro,
	    lan_gro_choices, "off (turned off on the LAN interfaces while "
	    "shaping) or keep"),

	[K_CLASS_ENABLE] = { .section = SEC_CLASS, .name = "enable",
	    .parse = key_choice, .off = C_OFF(enabled),
	    .size = C_SIZE(enabled), .choices = yes_no_choices,
	    .expect = "yes or no" },
	[K_CLASS_PROTOCOL] = { .section = SEC_CLASS, .name = "protocol",
	    .parse = key_choice, .off = C_OFF(protocol),
	    .size = C_SIZE(protocol), .choices = protocol_choices,
	    .expect = "tcp, udp or any" },
	[K_CLASS_PORT] = CLASS_LIST("port", key_port, ports, n_ports,
	    "a port 1 to 65535 or a range such as 7000-7001, matched as "
	    "source or destination"),
	[K_CLASS_PREFIX] = CLASS_LIST("prefix", key_prefix, prefixes,
	    n_prefixes, "a network of either site such as 198.18.2.11/32, "
	    "matched as source or destination"),
	[K_CLASS_DSCP] = CLASS_KEY("dscp", key_dscp, dscp,
	    "a DSCP name (EF, VA, DF, CS0 to CS7, AF11 to AF43) or a number "
	    "0 to 63"),
	[K_CLASS_PRIORITY] = { .section = SEC_CLASS, .name = "priority",
	    .parse = key_u32, .off = C_OFF(priority),
	    .size = C_SIZE(priority), .min = 0, .umax = 7,
	    .expect = "an integer from 0 (served first) to 7" },
	[K_CLASS_RATE] = CLASS_KEY("rate", key_class_rate, rate,
	    EXPECT_SHARE),
	[K_CLASS_CEIL] = CLASS_KEY("ceil", key_class_rate, ceil,
	    EXPECT_SHARE),

	/* Link probes: down after multiplier silent intervals. */
	[K_PROBE_INTERVAL] = INTEGER(SEC_PROBE, "interval_ms",
	    probe.interval_ms, 10, 10000, "an integer from 10 to 10000 "
	    "(milliseconds between probes on each path)"),
	[K_PROBE_MULTIPLIER] = INTEGER(SEC_PROBE, "multiplier",
	    probe.multiplier, 2, 255, "an integer from 2 to 255 (intervals "
	    "without a probe from the peer before a path is down)"),
	[K_PROBE_RECOVER] = INTEGER(SEC_PROBE, "recover", probe.recover, 1,
	    255, "an integer from 1 to 255 (answered probes in a row before "
	    "a path is up again)"),
	[K_PROBE_PORT] = INTEGER(SEC_PROBE, "port", probe.port, 1, 65535,
	    "a UDP port from 1 to 65535, the same on both gateways"),
	[K_PROBE_KEY] = SCALAR(SEC_PROBE, "key_file", key_path,
	    probe.key_file, 0, "an absolute path to a probe key file such "
	    "as /etc/grgw/probe.key"),
	[K_PROBE_LOSS] = SCALAR(SEC_PROBE, "degraded_loss", key_percent,
	    probe.degraded_loss, 0, "a percentage from 0 to 100 such as 5 "
	    "or 2.5"),
	[K_PROBE_RTT] = INTEGER(SEC_PROBE, "degraded_rtt_ms",
	    probe.degraded_rtt_ms, 1, 60000, "an integer from 1 to 60000 "
	    "(milliseconds of smoothed round-trip time)"),
	[K_PROBE_HOLD] = INTEGER(SEC_PROBE, "refuse_hold_ms",
	    probe.refuse_hold_ms, 0, 600000, "an integer from 0 to 600000 "
	    "(milliseconds the link may be down before traffic to the peer "
	    "is refused; 0: at once)"),

	/* Feeds of the link state (feeds.h); "off" turns one off. */
	[K_HTTP_LISTEN] = SCALAR(SEC_HTTP, "listen", key_listen,
	    feeds.http_listen, 0, "an IP address and port such as "
	    "127.0.0.1:9421 or [::1]:9421, or off"),
	[K_HOOKS_DIR] = SCALAR(SEC_HOOKS, "dir", key_path, feeds.hooks_dir, 0,
	    "an absolute path such as /etc/grgw/hooks.d"),
	[K_HOOKS_TIMEOUT] = INTEGER(SEC_HOOKS, "timeout",
	    feeds.hooks_timeout, 1, 3600, "an integer from 1 to 3600 "
	    "(seconds a hook may run before it is killed)"),
	[K_ETCD_ENDPOINT] = SCALAR(SEC_ETCD, "endpoint", key_etcd_endpoint,
	    feeds.etcd_endpoint, 0, "http://ADDRESS:PORT of the local "
	    "site's etcd such as http://10.0.0.5:4000, or off"),
	[K_ETCD_KEY] = SCALAR(SEC_ETCD, "key", key_etcd_key, feeds.etcd_key,
	    0, "a key of grgw's own such as "
	    "/clearwater/site-a/gr-gateway/site-b (printable ASCII without "
	    "spaces, starting with '/', at most 255 bytes)"),
	[K_ETCD_TTL] = INTEGER(SEC_ETCD, "lease_ttl", feeds.etcd_lease_ttl, 2,
	    3600, "an integer from 2 to 3600 (seconds the key outlives "
	    "grgw)"),

	/*
	 * The gateway pair.  partner and address are required when the
	 * section is there, and the relations between the keys (and with
	 * [site], [probe], [etcd] and [auth]) are checked in check_pair().
	 */
	[K_PAIR_PARTNER] = SCALAR(SEC_PAIR, "partner", key_address,
	    pair.partner, 0, "the other gateway's own unicast address (not "
	    "a floating one), such as 198.18.1.3"),
	[K_PAIR_ADDRESS] = SCALAR(SEC_PAIR, "address", key_address,
	    pair.address, 0, "this gateway's own unicast address (not a "
	    "floating one), such as 198.18.1.2"),
	[K_PAIR_SECOND_PARTNER] = SCALAR(SEC_PAIR, "second_partner",
	    key_address, pair.second_partner, 0, "the other gateway's own "
	    "unicast address on a second link (not a floating one, not "
	    "[pair] partner), such as its WAN address 192.0.2.12"),
	[K_PAIR_SECOND_ADDRESS] = SCALAR(SEC_PAIR, "second_address",
	    key_address, pair.second_address, 0, "this gateway's own "
	    "unicast address on a second link (not a floating one, not "
	    "[pair] address), such as its WAN address 192.0.2.11"),
	[K_PAIR_OWN_WAN] = SCALAR(SEC_PAIR, "own_wan_address", key_address,
	    pair.own_wan_address, 0, "this gateway's own unicast address on "
	    "the WAN (not a floating one), such as 192.0.2.11"),
	[K_PAIR_PRIORITY] = INTEGER(SEC_PAIR, "priority", pair.priority, 1,
	    255, "an integer from 1 to 255 (when both gateways start, the "
	    "higher becomes active)"),
	[K_PAIR_PORT] = INTEGER(SEC_PAIR, "port", pair.port, 1, 65535,
	    "a UDP port from 1 to 65535, the same on both gateways and not "
	    "the [probe] port"),
	[K_PAIR_INTERVAL] = INTEGER(SEC_PAIR, "interval_ms",
	    pair.interval_ms, 5, 1000, "an integer from 5 to 1000 "
	    "(milliseconds between heartbeats)"),
	[K_PAIR_DEAD] = INTEGER(SEC_PAIR, "dead_ms", pair.dead_ms, 1,
	    PAIR_MS_MAX, "an integer up to " PAIR_MS_MAX_TEXT " and at least "
	    "3 x interval_ms (milliseconds without a heartbeat before the "
	    "partner is gone)"),
	[K_PAIR_GUARD] = INTEGER(SEC_PAIR, "guard_ms", pair.guard_ms, 1,
	    PAIR_MS_MAX, "an integer up to " PAIR_MS_MAX_TEXT " and at least "
	    "2 x interval_ms (milliseconds a gateway that won the role waits "
	    "before it takes the addresses)"),
	[K_PAIR_MARGIN] = INTEGER(SEC_PAIR, "margin_ms", pair.margin_ms, 1,
	    PAIR_MS_MAX, "an integer from 1 to guard_ms - interval_ms "
	    "(milliseconds this gateway allows itself, after its hold on "
	    "the role ends, to have the floating addresses off: the "
	    "host's scheduling delays and clock drift)"),
	[K_PAIR_HANDOVER_WAIT] = INTEGER(SEC_PAIR, "handover_wait_ms",
	    pair.handover_wait_ms, 100, PAIR_MS_MAX, "an integer from 100 "
	    "to " PAIR_MS_MAX_TEXT " (milliseconds a planned handover waits "
	    "for the partner's SAs before it moves the role without them)"),
	[K_PAIR_KEY] = SCALAR(SEC_PAIR, "key_file", key_path, pair.key_file,
	    0, "an absolute path to a key file shared by both gateways of "
	    "the site such as /etc/grgw/pair.key"),
	[K_PAIR_ETCD_KEY] = SCALAR(SEC_PAIR, "etcd_key", key_etcd_key,
	    pair.etcd_key, 0, "a key of grgw's own such as /grgw/site-a/pair "
	    "(printable ASCII without spaces, starting with '/', at most 255 "
	    "bytes)"),
};

/* The keys that describe one side, so both sides get the same checks. */
struct side_keys {
	enum section_id	 section;
	enum key_id	 name, id, wan, lan_addr, prefix;
	size_t		 off;		/* struct grgw_side in cfg */
};

static const struct side_keys sides[2] = {
	{ SEC_SITE, K_SITE_NAME, K_SITE_ID, K_SITE_WAN_ADDR, K_SITE_LAN_ADDR,
	  K_SITE_PREFIX, F_OFF(site) },
	{ SEC_PEER, K_PEER_NAME, K_PEER_ID, K_PEER_ADDR, K_PEER_LAN_ADDR,
	  K_PEER_PREFIX, F_OFF(peer) },
};

/* ---- errors ----------------------------------------------------------- */

static void	config_verror(struct config_parser *, unsigned int,
		    const char *, va_list) GRGW_PRINTF(3, 0);
static void	config_error(struct config_parser *, unsigned int,
		    const char *, ...) GRGW_PRINTF(3, 4);

static int
error_push(struct config_parser *p, char *msg)
{
	char	**n;
	size_t	  cap;

	if (msg == NULL) {
		p->oom = 1;
		return -1;
	}
	if (p->n_errors == p->cap_errors) {
		cap = p->cap_errors == 0 ? 8 : p->cap_errors * 2;
		if ((n = reallocarray(p->errors, cap, sizeof(*n))) == NULL) {
			free(msg);
			p->oom = 1;
			return -1;
		}
		p->errors = n;
		p->cap_errors = cap;
	}
	p->errors[p->n_errors++] = msg;
	return 0;
}

/* Record "file:line: message", or "file: message" when line is 0. */
static void
config_verror(struct config_parser *p, unsigned int line, const char *fmt,
    va_list ap)
{
	char	*msg = NULL, *full = NULL;

	p->n_seen++;
	if (p->n_errors > CONFIG_ERRORS_MAX)
		return;
	if (p->n_errors == CONFIG_ERRORS_MAX) {
		if (asprintf(&full, "%s: too many errors; stopped after %d "
		    "(fix these and run again)", p->file,
		    CONFIG_ERRORS_MAX) == -1)
			full = NULL;
		error_push(p, full);
		return;
	}
	if (vasprintf(&msg, fmt, ap) == -1)
		msg = NULL;
	if (msg == NULL) {
		p->oom = 1;
		return;
	}
	if (line != 0) {
		if (asprintf(&full, "%s:%u: %s", p->file, line, msg) == -1)
			full = NULL;
	} else {
		if (asprintf(&full, "%s: %s", p->file, msg) == -1)
			full = NULL;
	}
	free(msg);
	error_push(p, full);
}

static void
config_error(struct config_parser *p, unsigned int line, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	config_verror(p, line, fmt, ap);
	va_end(ap);
}

/*
 * Render a value for a message: quoted, with anything that is not plain
 * printable ASCII escaped, and cut after QUOTE_MAX bytes.  buf must hold
 * QUOTE_BUF bytes.
 */
static const char *
quote(const char *s, char *buf)
{
	static const char hex[] = "0123456789abcdef";
	size_t		 i, o = 0;
	unsigned char	 c;

	buf[o++] = '"';
	for (i = 0; s[i] != '\0' && i < QUOTE_MAX; i++) {
		c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)c;
		} else if (c >= 0x20 && c < 0x7f) {
			buf[o++] = (char)c;
		} else {
			buf[o++] = '\\';
			buf[o++] = 'x';
			buf[o++] = hex[c >> 4];
			buf[o++] = hex[c & 0xf];
		}
	}
	buf[o++] = '"';
	if (s[i] != '\0') {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
	return buf;
}

/* ---- field access ----------------------------------------------------- */

/* Keys of [class NAME] live in the class being read. */
static char *
key_base(struct config_parser *p, const struct key_def *k)
{
	if (k->section == SEC_CLASS)
		return (char *)&p->cfg.qos.classes[p->cur_class];
	return (char *)&p->cfg;
}

static void *
key_field(struct config_parser *p, const struct key_def *k)
{
	return key_base(p, k) + k->off;
}

static int *
key_count(struct config_parser *p, const struct key_def *k)
{
	return (int *)(void *)(key_base(p, k) + k->count_off);
}

static struct key_state *
key_state_of(struct config_parser *p, const struct key_def *k)
{
	if (k->section == SEC_CLASS)
		return &p->class_keys[p->cur_class][k - key_defs];
	return &p->keys[k - key_defs];
}

static struct grgw_side *
side_of(struct config_parser *p, const struct side_keys *s)
{
	return (struct grgw_side *)(void *)((char *)&p->cfg + s->off);
}

/*
 * Reserve the next element of a repeatable key.  Returns it, or NULL
 * after recording an error when the key is full.
 */
static void *
entry_next(struct config_parser *p, const struct key_def *k)
{
	int	*n = key_count(p, k);

	if (*n < 0 || (unsigned int)*n >= k->max) {
		config_error(p, p->lineno, "[%s] has more than %u %s lines; "
		    "expected at most %u", section_names[k->section], k->max,
		    k->name, k->max);
		return NULL;
	}
	return (char *)key_field(p, k) + (size_t)*n * k->size;
}

/* Commit the element entry_next() returned. */
static void
entry_commit(struct config_parser *p, const struct key_def *k)
{
	int	*n = key_count(p, k);

	key_state_of(p, k)->entry_line[*n] = p->lineno;
	(*n)++;
}

static void
bad_value(struct config_parser *p, const struct key_def *k, const char *v,
    const char *why)
{
	char	 q[QUOTE_BUF];

	config_error(p, p->lineno, "%s %s %s; expected %s", k->name,
	    quote(v, q), why, k->expect);
}

/* ---- value checks ----------------------------------------------------- */

static int
is_alnum(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9');
}

static int
key_name(struct config_parser *p, const struct key_def *k, const char *v)
{
	size_t	 i, len = strlen(v);

	if (len > GRGW_NAME_MAX) {
		bad_value(p, k, v, "is too long");
		return -1;
	}
	if (!is_alnum((unsigned char)v[0])) {
		bad_value(p, k, v, "does not start with a letter or digit");
		return -1;
	}
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)v[i];

		if (!is_alnum(c) && c != '.' && c != '_' && c != '-') {
			bad_value(p, k, v, "contains a character other than "
			    "letters, digits, '.', '_' and '-'");
			return -1;
		}
	}
	memcpy(key_field(p, k), v, len + 1);
	return 0;
}

/* A user name as adduser accepts it; never root. */
static int
key_user(struct config_parser *p, const struct key_def *k, const char *v)
{
	size_t	 i, len = strlen(v);

	if (len == 0 || len >= GRGW_USER_MAX) {
		bad_value(p, k, v, len == 0 ? "is empty" : "is too long");
		return -1;
	}
	if ((v[0] >= '0' && v[0] <= '9') || v[0] == '-' || v[0] == '.') {
		bad_value(p, k, v, "does not start with a letter or '_'");
		return -1;
	}
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)v[i];

		if (!is_alnum(c) && c != '.' && c != '_' && c != '-') {
			bad_value(p, k, v, "contains a character other than "
			    "letters, digits, '.', '_' and '-'");
			return -1;
		}
	}
	if (strcmp(v, "root") == 0) {
		bad_value(p, k, v, "is root; the network process must not "
		    "run as root");
		return -1;
	}
	memcpy(key_field(p, k), v, len + 1);
	return 0;
}

static int
key_identity(struct config_parser *p, const struct key_def *k,
    const char *v)
{
	size_t	 i, len = strlen(v);

	if (len > GRGW_ID_MAX) {
		bad_value(p, k, v, "is too long");
		return -1;
	}
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c <= 0x20 || c >= 0x7f) {
			bad_value(p, k, v, "contains a space or a character "
			    "that is not printable ASCII");
			return -1;
		}
	}
	/*
	 * charon reads %any (and %any4, %any6) and '*' as wildcards: with
	 * certificates, any certificate of the CA would then be the peer.
	 */
	if (v[0] == '%' || strchr(v, '*') != NULL) {
		bad_value(p, k, v, "matches any peer (a wildcard)");
		return -1;
	}
	memcpy(key_field(p, k), v, len + 1);
	return 0;
}

/*
 * Interface names follow the kernel's rules (dev_valid_name): 1 to 15
 * bytes, not "." or "..", no '/', ':' or whitespace.  We also insist on
 * printable ASCII, since the name ends up in messages and commands.
 */
static const char *
ifname_problem(const char *v)
{
	if (strlen(v) >= IF_NAMESIZE)
		return "is longer than 15 characters";
	if (!ifname_valid(v))
		return "is not an interface name of letters, digits, '.', "
		    "'_', '-' and '+'";
	return NULL;
}

static int
key_ifname(struct config_parser *p, const struct key_def *k, const char *v)
{
	const char	*why;
	char		*dst;
	char		 q[QUOTE_BUF];
	int		 i, *n;

	if ((why = ifname_problem(v)) != NULL) {
		bad_value(p, k, v, why);
		return -1;
	}
	if (!(k->flags & KEY_REPEAT)) {
		snprintf(key_field(p, k), k->size, "%s", v);
		return 0;
	}
	n = key_count(p, k);
	for (i = 0; i < *n; i++) {
		dst = (char *)key_field(p, k) + (size_t)i * k->size;
		if (strcmp(dst, v) == 0) {
			config_error(p, p->lineno, "%s %s is listed twice "
			    "(first on line %u); expected each interface once",
			    k->name, quote(v, q),
			    key_state_of(p, k)->entry_line[i]);
			return -1;
		}
	}
	if ((dst = entry_next(p, k)) == NULL)
		return -1;
	snprintf(dst, k->size, "%s", v);
	entry_commit(p, k);
	return 0;
}

static const char *
family_name(int family)
{
	return family == AF_INET ? "IPv4" : family == AF_INET6 ? "IPv6" : "?";
}

/* Why an address cannot be a gateway's own unicast address, or NULL. */
static const char *
unicast_problem(const struct grgw_addr *a)
{
	static const uint8_t zero[16], mapped[12] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	static const uint8_t loop6[16] = { [15] = 1 };
	int	 n = addr_len(a->family);

	if (memcmp(a->addr, zero, (size_t)n) == 0)
		return "is the unspecified address";
	if (a->family == AF_INET) {
		if (a->addr[0] == 127)
			return "is a loopback address";
		if ((a->addr[0] & 0xf0) == 0xe0)
			return "is a multicast address";
		if (memcmp(a->addr, "\xff\xff\xff\xff", 4) == 0)
			return "is the broadcast address";
		return NULL;
	}
	if (memcmp(a->addr, loop6, 16) == 0)
		return "is the loopback address";
	if (a->addr[0] == 0xff)
		return "is a multicast address";
	if (memcmp(a->addr, mapped, sizeof(mapped)) == 0)
		return "is an IPv4-mapped IPv6 address (write it as IPv4)";
	return NULL;
}

static int
parse_unicast(struct config_parser *p, const struct key_def *k,
    const char *v, struct grgw_addr *out)
{
	const char	*why;

	if (addr_parse(v, out) == -1) {
		bad_value(p, k, v, "is not an IP address (host names are not "
		    "resolved)");
		return -1;
	}
	if ((why = unicast_problem(out)) != NULL) {
		bad_value(p, k, v, why);
		return -1;
	}
	return 0;
}

static int
key_address(struct config_parser *p, const struct key_def *k, const char *v)
{
	struct grgw_addr	 a;

	if (parse_unicast(p, k, v, &a) == -1)
		return -1;
	memcpy(key_field(p, k), &a, sizeof(a));
	return 0;
}

/*
 * A repeated address key: at most one per family (lan_address), or each
 * address once (gateway, per_family 0).  The entry is appended, or the
 * clash with the earlier line is the error.
 */
static int
key_address_entry(struct config_parser *p, const struct key_def *k,
    const char *v, int per_family)
{
	struct grgw_addr	 a, *have, *dst;
	char			 q[QUOTE_BUF];
	int			 i, n;

	if (parse_unicast(p, k, v, &a) == -1)
		return -1;
	have = key_field(p, k);
	n = *key_count(p, k);
	for (i = 0; i < n; i++) {
		if (per_family ? have[i].family != a.family :
		    !addr_equal(&have[i], &a))
			continue;
		if (per_family)
			config_error(p, p->lineno, "%s %s is a second %s "
			    "address in [%s] (the first is on line %u); "
			    "expected at most one IPv4 and one IPv6 %s",
			    k->name, quote(v, q), family_name(a.family),
			    section_names[k->section],
			    key_state_of(p, k)->entry_line[i], k->name);
		else
			config_error(p, p->lineno, "%s %s is given twice in "
			    "[%s] (also on line %u); expected each gateway "
			    "once", k->name, quote(v, q),
			    section_names[k->section],
			    key_state_of(p, k)->entry_line[i]);
		return -1;
	}
	if ((dst = entry_next(p, k)) == NULL)
		return -1;
	*dst = a;
	entry_commit(p, k);
	return 0;
}

static int
key_lan_address(struct config_parser *p, const struct key_def *k,
    const char *v)
{
	return key_address_entry(p, k, v, 1);
}

/* [peer] gateway: a unicast address, each once. */
static int
key_gateway(struct config_parser *p, const struct key_def *k, const char *v)
{
	return key_address_entry(p, k, v, 0);
}

static int
key_prefix(struct config_parser *p, const struct key_def *k, const char *v)
{
	struct grgw_prefix	 pfx, *dst;
	struct grgw_addr	 a;
	char			 q[QUOTE_BUF], net[INET6_ADDRSTRLEN + 4];
	char			 head[INET6_ADDRSTRLEN + 1];
	const char		*slash;

	if (prefix_parse(v, &pfx) == -1) {
		if (errno == EDOM) {
			config_error(p, p->lineno, "%s %s has host bits set; "
			    "expected a network address such as %s", k->name,
			    quote(v, q), prefix_fmt(&pfx, net, sizeof(net)));
			return -1;
		}
		if ((slash = strchr(v, '/')) == NULL) {
			bad_value(p, k, v, "has no /length");
			return -1;
		}
		if ((size_t)(slash - v) >= sizeof(head)) {
			bad_value(p, k, v, "does not start with an IP address");
			return -1;
		}
		memcpy(head, v, (size_t)(slash - v));
		head[slash - v] = '\0';
		if (addr_parse(head, &a) == -1)
			bad_value(p, k, v, "does not start with an IP address");
		else if (a.family == AF_INET)
			bad_value(p, k, v, "has a length that is not a number "
			    "from 0 to 32");
		else
			bad_value(p, k, v, "has a length that is not a number "
			    "from 0 to 128");
		return -1;
	}
	if ((dst = entry_next(p, k)) == NULL)
		return -1;
	*dst = pfx;
	entry_commit(p, k);
	return 0;
}

static int
key_path(struct config_parser *p, const struct key_def *k, const char *v)
{
	size_t	 i, len = strlen(v);

	if (v[0] != '/') {
		bad_value(p, k, v, "is not an absolute path");
		return -1;
	}
	if (len >= k->size) {
		bad_value(p, k, v, "is too long");
		return -1;
	}
	for (i = 0; i < len; i++) {
		if (v[i] == ' ' || v[i] == '\t') {
			bad_value(p, k, v, "contains whitespace");
			return -1;
		}
	}
	memcpy(key_field(p, k), v, len + 1);
	return 0;
}

/*
 * Strict unsigned integers: decimal without sign or leading zeros, or
 * hexadecimal with a 0x prefix.  Nothing may follow the digits.
 */
static int
parse_u32(const char *v, uint32_t *out)
{
	uint64_t	 n = 0;
	unsigned int	 d;
	const char	*s = v;
	int		 base = 10;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	} else if (s[0] == '0' && s[1] != '\0')
		return -1;
	if (*s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (*s >= '0' && *s <= '9')
			d = (unsigned int)(*s - '0');
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			d = (unsigned int)(*s - 'a' + 10);
		else if (base == 16 && *s >= 'A' && *s <= 'F')
			d = (unsigned int)(*s - 'A' + 10);
		else
			return -1;
		n = n * (unsigned int)base + d;
		if (n > UINT32_MAX) {
			errno = ERANGE;
			return -2;
		}
	}
	*out = (uint32_t)n;
	return 0;
}

static int
key_u32(struct config_parser *p, const struct key_def *k, const char *v)
{
	uint32_t	 n;
	int		 rc;

	if ((rc = parse_u32(v, &n)) == -1) {
		bad_value(p, k, v, "is not a number");
		return -1;
	}
	if (rc == -2 || n < k->min || n > k->umax) {
		bad_value(p, k, v, "is out of range");
		return -1;
	}
	memcpy(key_field(p, k), &n, sizeof(n));
	return 0;
}

/*
 * A duration: digits and an optional unit, s, m, h or d (a bare number is
 * seconds), stored in seconds within the key's bounds.
 */
int
config_parse_duration(const char *v, uint32_t *out)
{
	static const struct { char unit; uint32_t mult; } units[] = {
		{ 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 },
	};
	uint64_t	 n = 0, mult = 1;
	size_t		 i, len = strlen(v);

	if (len == 0 || !isdigit((unsigned char)v[0]))
		return -1;
	if (!isdigit((unsigned char)v[len - 1])) {
		for (i = 0; i < nitems(units); i++)
			if (v[len - 1] == units[i].unit)
				break;
		if (i == nitems(units))
			return -1;
		mult = units[i].mult;
		len--;
	}
	for (i = 0; i < len; i++) {
		if (!isdigit((unsigned char)v[i]))
			return -1;
		n = n * 10 + (uint64_t)(v[i] - '0');
		if (n * mult > UINT32_MAX)
			return -2;
	}
	*out = (uint32_t)(n * mult);
	return 0;
}

static int
key_duration(struct config_parser *p, const struct key_def *k,
    const char *v)
{
	uint32_t	 n;
	int		 rc;

	if ((rc = config_parse_duration(v, &n)) == -1) {
		bad_value(p, k, v, "is not a duration");
		return -1;
	}
	if (rc == -2 || n < k->min || n > k->umax) {
		bad_value(p, k, v, "is out of range");
		return -1;
	}
	memcpy(key_field(p, k), &n, sizeof(n));
	return 0;
}

static int
key_choice(struct config_parser *p, const struct key_def *k, const char *v)
{
	const struct choice	*c;

	for (c = k->choices; c->name != NULL; c++) {
		if (strcmp(c->name, v) == 0) {
			memcpy(key_field(p, k), &c->value, sizeof(c->value));
			return 0;
		}
	}
	bad_value(p, k, v, "is not one of the choices");
	return -1;
}

static int
key_log_level(struct config_parser *p, const struct key_def *k,
    const char *v)
{
	enum log_level	 level;

	if (log_level_parse(v, &level) == -1) {
		bad_value(p, k, v, "is not a log level");
		return -1;
	}
	p->cfg.log_level = level;
	return 0;
}

/*
 * A percentage 0 to 100 with up to 6 decimals ("5", "2.5", "0.25%"),
 * stored as a ratio.  Counted in millionths of a percent, so no locale or
 * strtod corner case decides what is accepted.
 */
static int
key_percent(struct config_parser *p, const struct key_def *k, const char *v)
{
	const char	*s = v;
	uint64_t	 micro = 0;
	unsigned int	 ndig = 0, nfrac = 0;
	double		 ratio;

	if (s[0] == '0' && s[1] >= '0' && s[1] <= '9') {
		bad_value(p, k, v, "is not a percentage (leading zero)");
		return -1;
	}
	for (; *s >= '0' && *s <= '9'; s++, ndig++)
		if (ndig < 4)
			micro = micro * 10 + (uint64_t)(*s - '0');
	if (*s == '.') {
		for (s++; *s >= '0' && *s <= '9'; s++, nfrac++)
			if (nfrac < 6)
				micro = micro * 10 + (uint64_t)(*s - '0');
		if (nfrac == 0 || nfrac > 6) {
			bad_value(p, k, v, nfrac == 0 ? "is not a percentage" :
			    "has more than 6 decimals");
			return -1;
		}
	}
	if (*s == '%')
		s++;
	if (ndig == 0 || *s != '\0') {
		bad_value(p, k, v, "is not a percentage");
		return -1;
	}
	for (; nfrac < 6; nfrac++)
		micro *= 10;
	if (ndig > 3 || micro > 100000000) {
		bad_value(p, k, v, "is out of range");
		return -1;
	}
	ratio = (double)micro / 1e8;
	memcpy(key_field(p, k), &ratio, sizeof(ratio));
	return 0;
}

static int
key_wan_rate(struct config_parser *p, const struct key_def *k,
    const char *v)
{
	uint64_t	 bps;
	int		 rc;

	if ((rc = policy_rate_parse(v, &bps)) < 0) {
		bad_value(p, k, v, rc == -2 ? "is out of range" :
		    "is not a rate");
		return -1;
	}
	memcpy(key_field(p, k), &bps, sizeof(bps));
	return 0;
}

/* rate / ceil of a class: "N%" of wan_rate, or a rate. */
static int
key_class_rate(struct config_parser *p, const struct key_def *k,
    const char *v)
{
	struct grgw_rate	 r = { 0, 0 };
	size_t			 len = strlen(v);
	uint32_t		 pct;
	char			 num[8];
	int			 rc;

	if (len > 1 && v[len - 1] == '%') {
		if (len - 1 >= sizeof(num)) {
			bad_value(p, k, v, "is out of range");
			return -1;
		}
		memcpy(num, v, len - 1);
		num[len - 1] = '\0';
		if ((rc = parse_u32(num, &pct)) == -1 || num[0] == '0') {
			bad_value(p, k, v, "is not a percentage");
			return -1;
		}
		if (rc == -2 || pct < 1 || pct > 100) {
			bad_value(p, k, v, "is not between 1% and 100%");
			return -1;
		}
		r.percent = pct;
	} else if ((rc = policy_rate_parse(v, &r.bps)) < 0) {
		bad_value(p, k, v, rc == -2 ? "is out of range" :
		    "is not a rate or a percentage");
		return -1;
	}
	memcpy(key_field(p, k), &r, sizeof(r));
	return 0;
}

/* "N" or "N-M", 1..65535. */
static int
key_port(struct config_parser *p, const struct key_def *k, const char *v)
{
	struct grgw_port_range	*dst;
	const char		*dash = strchr(v, '-');
	char			 lo[8], hi[8];
	uint32_t		 a, b;
	size_t			 n;

	n = dash != NULL ? (size_t)(dash - v) : strlen(v);
	if (n == 0 || n >= sizeof(lo) ||
	    (dash != NULL && strlen(dash + 1) >= sizeof(hi))) {
		bad_value(p, k, v, "is not a port or a port range");
		return -1;
	}
	memcpy(lo, v, n);
	lo[n] = '\0';
	snprintf(hi, sizeof(hi), "%s", dash != NULL ? dash + 1 : lo);
	if (parse_u32(lo, &a) != 0 || parse_u32(hi, &b) != 0 ||
	    strncmp(lo, "0x", 2) == 0 || strncmp(hi, "0x", 2) == 0) {
		bad_value(p, k, v, "is not a port or a port range");
		return -1;
	}
	if (a < 1 || a > 65535 || b < 1 || b > 65535) {
		bad_value(p, k, v, "is out of range");
		return -1;
	}
	if (a > b) {
		bad_value(p, k, v, "is a range whose start is above its end");
		return -1;
	}
	if ((dst = entry_next(p, k)) == NULL)
		return -1;
	dst->lo = (uint16_t)a;
	dst->hi = (uint16_t)b;
	entry_commit(p, k);
	return 0;
}

static int
key_dscp(struct config_parser *p, const struct key_def *k, const char *v)
{
	uint32_t	 d;

	if (policy_dscp_parse(v, &d) == -1) {
		bad_value(p, k, v, "is not a DSCP name or a number from 0 "
		    "to 63");
		return -1;
	}
	memcpy(key_field(p, k), &d, sizeof(d));
	return 0;
}

/* "off", or an IP literal and port for the status HTTP server. */
static int
key_listen(struct config_parser *p, const struct key_def *k, const char *v)
{
	struct grgw_addr	 a;
	char			 why[160];
	uint16_t		 port;

	if (strcmp(v, "off") == 0) {
		memset(key_field(p, k), 0, k->size);
		return 0;
	}
	if (addr_port_parse(v, &a, &port, why, sizeof(why)) == -1) {
		bad_value(p, k, v, why);
		return -1;
	}
	if (port == 0) {
		bad_value(p, k, v, "has port 0");
		return -1;
	}
	if (strlen(v) >= k->size) {
		bad_value(p, k, v, "is too long");
		return -1;
	}
	snprintf(key_field(p, k), k->size, "%s", v);
	return 0;
}

static int
key_etcd_endpoint(struct config_parser *p, const struct key_def *k,
    const char *v)
{
	struct grgw_addr	 a;
	char			 why[160];
	uint16_t		 port;

	if (strcmp(v, "off") == 0) {
		memset(key_field(p, k), 0, k->size);
		return 0;
	}
	if (addr_url_parse(v, FEEDS_ETCD_PORT_DEFAULT, &a, &port, why,
	    sizeof(why)) == -1) {
		bad_value(p, k, v, why);
		return -1;
	}
	if (strlen(v) >= k->size) {
		bad_value(p, k, v, "is too long");
		return -1;
	}
	snprintf(key_field(p, k), k->size, "%s", v);
	return 0;
}

/*
 * A key of grgw's own.  Clearwater reconfigures its services when its
 * shared configuration (/clearwater/SITE/configuration/...) or clustering
 * (/clearwater/SITE/TYPE/clustering/...) keys change, so those are
 * refused outright.
 */
static int
key_etcd_key(struct config_parser *p, const struct key_def *k,
    const char *v)
{
	const char	*c[4] = { NULL }, *s;
	size_t		 i, len = strlen(v), n = 0;

	if (v[0] != '/') {
		bad_value(p, k, v, "does not start with '/'");
		return -1;
	}
	if (len >= k->size) {
		bad_value(p, k, v, "is too long");
		return -1;
	}
	for (i = 0; i < len; i++) {
		if ((unsigned char)v[i] <= 0x20 || (unsigned char)v[i] >= 0x7f) {
			bad_value(p, k, v, "contains a space or a character "
			    "that is not printable ASCII");
			return -1;
		}
	}
	for (s = v; *s == '/' && n < nitems(c); n++) {
		c[n] = ++s;
		s += strcspn(s, "/");
	}
	if (n >= 3 && strncmp(c[0], "clearwater/", 11) == 0 &&
	    (strncmp(c[2], "configuration", 13) == 0 && (c[2][13] == '/' ||
	    c[2][13] == '\0'))) {
		bad_value(p, k, v, "is among Clearwater's shared configuration "
		    "keys, which it must never be");
		return -1;
	}
	if (n >= 4 && strncmp(c[0], "clearwater/", 11) == 0 &&
	    strncmp(c[3], "clustering", 10) == 0 && (c[3][10] == '/' ||
	    c[3][10] == '\0')) {
		bad_value(p, k, v, "is among Clearwater's clustering keys, "
		    "which it must never be");
		return -1;
	}
	memcpy(key_field(p, k), v, len + 1);
	return 0;
}

/* ---- lines ------------------------------------------------------------ */

static int
is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Trim in place; returns the new start, *len updated. */
static char *
trim(char *s, size_t *len)
{
	while (*len > 0 && is_blank(s[0])) {
		s++;
		(*len)--;
	}
	while (*len > 0 && is_blank(s[*len - 1]))
		(*len)--;
	s[*len] = '\0';
	return s;
}

/*
 * Offset of the first byte that makes s[0..len) invalid UTF-8 or a
 * control character other than tab, or len if there is none.
 */
static size_t
text_problem(const char *s, size_t len, char *err, size_t errlen)
{
	const unsigned char	*u = (const unsigned char *)s;
	size_t			 i = 0, n, j;
	uint32_t		 cp;

	while (i < len) {
		if (u[i] < 0x80) {
			if ((u[i] < 0x20 && u[i] != '\t') || u[i] == 0x7f) {
				err_set(err, errlen, "a control character");
				return i;
			}
			i++;
			continue;
		}
		if (u[i] >= 0xc2 && u[i] <= 0xdf) {
			n = 1;
			cp = u[i] & 0x1f;
		} else if (u[i] >= 0xe0 && u[i] <= 0xef) {
			n = 2;
			cp = u[i] & 0x0f;
		} else if (u[i] >= 0xf0 && u[i] <= 0xf4) {
			n = 3;
			cp = u[i] & 0x07;
		} else
			goto bad;
		if (len - i <= n)
			goto bad;
		for (j = 1; j <= n; j++) {
			if ((u[i + j] & 0xc0) != 0x80)
				goto bad;
			cp = (cp << 6) | (u[i + j] & 0x3f);
		}
		/* Overlong forms, surrogates, beyond U+10FFFF. */
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			goto bad;
		i += n + 1;
	}
	return len;
bad:
	err_set(err, errlen, "bytes that are not UTF-8");
	return i;
}

static void
unknown_key(struct config_parser *p, const char *key)
{
	char		 list[512], q[QUOTE_BUF], elsewhere[64] = "";
	size_t		 o = 0;
	int		 i;

	list[0] = '\0';
	for (i = 0; i < K_COUNT; i++) {
		if ((int)key_defs[i].section != p->section) {
			if (elsewhere[0] == '\0' &&
			    strcmp(key_defs[i].name, key) == 0)
				snprintf(elsewhere, sizeof(elsewhere),
				    " (it belongs in [%s])",
				    section_names[key_defs[i].section]);
			continue;
		}
		if (o < sizeof(list))
			o += (size_t)snprintf(list + o, sizeof(list) - o,
			    "%s%s", o == 0 ? "" : ", ", key_defs[i].name);
	}
	config_error(p, p->lineno, "unknown key %s in [%s]%s; expected one "
	    "of: %s", quote(key, q), section_names[p->section], elsewhere,
	    list);
}

/* "[site], [peer], ... or [daemon]", from the table. */
static const char *
section_list(char *buf, size_t size)
{
	size_t	 o = 0;
	int	 i;

	buf[0] = '\0';
	for (i = 0; i < SEC_COUNT && o < size; i++)
		o += (size_t)snprintf(buf + o, size - o, "%s[%s%s]",
		    i == 0 ? "" : i + 1 == SEC_COUNT ? " or " : ", ",
		    section_names[i], i == SEC_CLASS ? " NAME" : "");
	return buf;
}

/*
 * "[class NAME]": a class of its own, or the built-in class of that name
 * to override (keys given replace the built-in values; the first port or
 * prefix line replaces the built-in list).
 */
static int
parse_class_section(struct config_parser *p, const char *name)
{
	struct grgw_qos		*q = &p->cfg.qos;
	struct grgw_class	*c;
	char			 qn[QUOTE_BUF];
	int			 i;

	p->section = SEC_UNKNOWN;
	if (name == NULL || name[0] == '\0') {
		config_error(p, p->lineno, "[class] has no name; expected "
		    "[class NAME] such as [class rogers]");
		return -1;
	}
	if (!policy_class_name_ok(name)) {
		config_error(p, p->lineno, "class name %s is not valid; "
		    "expected 1 to %d lower-case letters, digits or '_', "
		    "starting with a letter", quote(name, qn),
		    GRGW_CLASS_NAME_MAX);
		return -1;
	}
	if (strcmp(name, POLICY_DEFAULT_NAME) == 0) {
		config_error(p, p->lineno, "class name \"%s\" is reserved for "
		    "unclassified traffic; expected another name",
		    POLICY_DEFAULT_NAME);
		return -1;
	}
	for (i = 0; i < q->n_classes; i++)
		if (strcmp(q->classes[i].name, name) == 0)
			break;
	if (i < q->n_classes && q->classes[i].line != 0) {
		config_error(p, p->lineno, "[class %s] appears again (first on "
		    "line %u); expected each class once", name,
		    q->classes[i].line);
		return -1;
	}
	if (i == q->n_classes) {
		if (q->n_classes >= GRGW_MAX_CLASSES) {
			config_error(p, p->lineno, "[class %s] is one class "
			    "too many; expected at most %d classes, built-in "
			    "ones included", name, GRGW_MAX_CLASSES);
			return -1;
		}
		/* A new class: it matches what its keys say (checked when
		 * the file is finished), with a modest share by default. */
		c = &q->classes[q->n_classes++];
		memset(c, 0, sizeof(*c));
		snprintf(c->name, sizeof(c->name), "%s", name);
		c->enabled = 1;
		c->protocol = GRGW_L4_ANY;
		c->priority = 4;
		c->rate.percent = 5;
	}
	q->classes[i].line = p->lineno;
	p->cur_class = i;
	memset(p->class_keys[i], 0, sizeof(p->class_keys[i]));
	p->section = SEC_CLASS;
	if (p->section_line[SEC_CLASS] == 0)
		p->section_line[SEC_CLASS] = p->lineno;
	return 0;
}

static int
parse_section(struct config_parser *p, char *s, size_t len)
{
	char	 q[QUOTE_BUF], list[256];
	char	*name, *arg;
	size_t	 nlen;
	int	 i;

	if (s[len - 1] != ']') {
		p->section = SEC_UNKNOWN;
		config_error(p, p->lineno, "section header %s does not end "
		    "with ']'; expected one of %s alone on the line",
		    quote(s, q), section_list(list, sizeof(list)));
		return -1;
	}
	quote(s, q);
	nlen = len - 2;
	name = trim(s + 1, &nlen);
	/* "[class NAME]": the word, then the instance's name. */
	arg = name + strcspn(name, " \t");
	if (*arg != '\0') {
		*arg++ = '\0';
		arg += strspn(arg, " \t");
	} else
		arg = NULL;
	for (i = 0; i < SEC_COUNT; i++)
		if (strcmp(section_names[i], name) == 0)
			break;
	if (i == SEC_CLASS)
		return parse_class_section(p, arg);
	if (i < SEC_COUNT && arg != NULL) {
		p->section = SEC_UNKNOWN;
		config_error(p, p->lineno, "section %s takes no name; expected "
		    "[%s] alone", q, name);
		return -1;
	}
	if (i == SEC_COUNT) {
		p->section = SEC_UNKNOWN;
		config_error(p, p->lineno, "unknown section %s; expected one "
		    "of %s", q, section_list(list, sizeof(list)));
		return -1;
	}
	p->section = i;
	if (p->section_line[i] != 0) {
		config_error(p, p->lineno, "section [%s] appears again (first "
		    "on line %u); expected each section once", name,
		    p->section_line[i]);
		return -1;
	}
	p->section_line[i] = p->lineno;
	return 0;
}

static int
parse_setting(struct config_parser *p, char *s, size_t len)
{
	const struct key_def	*k = NULL;
	struct key_state	*ks;
	char			*eq, *key, *val;
	char			 q[QUOTE_BUF];
	size_t			 klen, vlen;
	int			 i;

	if ((eq = memchr(s, '=', len)) == NULL) {
		config_error(p, p->lineno, "%s is not a setting; expected "
		    "key = value, a [section] header or a # comment",
		    quote(s, q));
		return -1;
	}
	klen = (size_t)(eq - s);
	vlen = len - klen - 1;
	key = trim(s, &klen);
	val = trim(eq + 1, &vlen);
	if (klen == 0) {
		config_error(p, p->lineno, "setting has no key before '='; "
		    "expected key = value");
		return -1;
	}
	if (p->section == SEC_UNKNOWN)
		return -1;		/* the header was reported already */
	if (p->section == SEC_NONE) {
		config_error(p, p->lineno, "key %s is outside any section; "
		    "expected a section header such as [site] before it",
		    quote(key, q));
		return -1;
	}
	for (i = 0; i < K_COUNT; i++) {
		if ((int)key_defs[i].section == p->section &&
		    strcmp(key_defs[i].name, key) == 0) {
			k = &key_defs[i];
			break;
		}
	}
	if (k == NULL) {
		unknown_key(p, key);
		return -1;
	}
	ks = key_state_of(p, k);
	if (ks->line != 0 && !(k->flags & KEY_REPEAT)) {
		config_error(p, p->lineno, "duplicate key %s in [%s] (first "
		    "set on line %u); expected it once", k->name,
		    section_names[k->section], ks->line);
		return -1;
	}
	if (ks->line == 0)
		ks->line = p->lineno;
	/* A class's first port or prefix line replaces the built-in list. */
	if (k->section == SEC_CLASS && (k->flags & KEY_REPEAT) &&
	    ks->line == p->lineno)
		*key_count(p, k) = 0;
	if (vlen == 0) {
		ks->invalid = 1;
		config_error(p, p->lineno, "%s has no value; expected %s",
		    k->name, k->expect);
		return -1;
	}
	if (k->parse(p, k, val) == -1) {
		ks->invalid = 1;
		return -1;
	}
	ks->valid = 1;
	return 0;
}

int
config_parse_line(struct config_parser *p, const char *line, size_t len)
{
	char		 why[64];
	char		*s;
	size_t		 i, bad;
	size_t		 seen;

	if (p == NULL || (line == NULL && len != 0) || p->finished) {
		errno = EINVAL;
		return -1;
	}
	p->lineno++;
	seen = p->n_seen;
	if (len > CONFIG_LINE_MAX) {
		config_error(p, p->lineno, "line is %zu bytes long; expected "
		    "at most %d bytes", len, CONFIG_LINE_MAX);
		return -1;
	}
	if (len > 0)
		memcpy(p->buf, line, len);
	s = trim(p->buf, &len);
	if ((bad = text_problem(s, len, why, sizeof(why))) != len) {
		config_error(p, p->lineno, "line has %s at column %zu; "
		    "expected UTF-8 text without control characters", why,
		    (size_t)(s - p->buf) + bad + 1);
		return -1;
	}

	/* A comment starts at '#' that opens the line or follows a blank. */
	for (i = 0; i < len; i++) {
		if (s[i] == '#' && (i == 0 || s[i - 1] == ' ' ||
		    s[i - 1] == '\t')) {
			len = i;
			s = trim(s, &len);
			break;
		}
	}
	if (len == 0)
		return 0;
	if (s[0] == '[')
		parse_section(p, s, len);
	else
		parse_setting(p, s, len);
	return p->n_seen == seen ? 0 : -1;
}

/* ---- whole-file checks ------------------------------------------------ */

/* Line of a section header, 0 when the section is absent. */
static unsigned int
section_line(const struct config_parser *p, enum section_id sec)
{
	return p->section_line[sec];
}

/* "[section] key is missing", at the section's header (or line 0). */
static void
key_missing(struct config_parser *p, enum key_id id)
{
	const struct key_def	*k = &key_defs[id];

	config_error(p, section_line(p, k->section), "[%s] %s is "
	    "missing; expected %s \"%s = ...\" line with %s",
	    section_names[k->section], k->name,
	    (k->flags & KEY_REPEAT) ? "at least one" :
	    strchr("aeiou", k->name[0]) != NULL ? "an" : "a",
	    k->name, k->expect);
}

static void
check_required(struct config_parser *p)
{
	int	 i;

	for (i = 0; i < K_COUNT; i++)
		if ((key_defs[i].flags & KEY_REQUIRED) && p->keys[i].line == 0)
			key_missing(p, i);
}

static void
check_auth(struct config_parser *p)
{
	static const enum key_id cert_keys[] = {
		K_AUTH_CERT, K_AUTH_KEY, K_AUTH_CA };
	unsigned int	 psk = p->keys[K_AUTH_PSK].line, cert = 0, l;
	unsigned int	 next = p->keys[K_AUTH_PSK_NEXT].line;
	size_t		 i;

	if (next != 0 && psk == 0)
		config_error(p, next, "psk_next_file is the key a pre-shared "
		    "key rotation moves to; expected psk_file as well");
	for (i = 0; i < nitems(cert_keys); i++) {
		l = p->keys[cert_keys[i]].line;
		if (l != 0 && (cert == 0 || l < cert))
			cert = l;
	}
	if (psk != 0 && cert != 0) {
		config_error(p, psk > cert ? psk : cert, "[auth] has both "
		    "psk_file (line %u) and certificate settings (line %u); "
		    "expected either psk_file alone, or certificate, "
		    "private_key and ca", psk, cert);
		return;
	}
	if (psk != 0) {
		p->cfg.auth = GRGW_AUTH_PSK;
		return;
	}
	if (cert == 0) {
		config_error(p, section_line(p, SEC_AUTH), "[auth] has no "
		    "authentication method; expected psk_file = PATH, or "
		    "certificate, private_key and ca");
		return;
	}
	p->cfg.auth = GRGW_AUTH_CERT;
	for (i = 0; i < nitems(cert_keys); i++) {
		if (p->keys[cert_keys[i]].line != 0)
			continue;
		p->cfg.auth = GRGW_AUTH_NONE;
		config_error(p, section_line(p, SEC_AUTH), "[auth] %s is "
		    "missing; expected certificate, private_key and ca "
		    "together (%s)", key_defs[cert_keys[i]].name,
		    key_defs[cert_keys[i]].expect);
	}
}

static void
check_names(struct config_parser *p)
{
	struct grgw_side	*site = &p->cfg.site, *peer = &p->cfg.peer;
	struct key_state	*ks = p->keys;
	char			 q[QUOTE_BUF];
	unsigned int		 line;

	/* An identity defaults to the name. */
	if (ks[K_SITE_ID].line == 0 && ks[K_SITE_NAME].valid)
		snprintf(site->id, sizeof(site->id), "%s", site->name);
	if (ks[K_PEER_ID].line == 0 && ks[K_PEER_NAME].valid)
		snprintf(peer->id, sizeof(peer->id), "%s", peer->name);

	if (ks[K_SITE_NAME].valid && ks[K_PEER_NAME].valid &&
	    strcmp(site->name, peer->name) == 0)
		config_error(p, ks[K_PEER_NAME].line, "[peer] name %s is the "
		    "[site] name too (line %u); expected the other site's "
		    "name", quote(peer->name, q), ks[K_SITE_NAME].line);
	else if (site->id[0] != '\0' && peer->id[0] != '\0' &&
	    strcmp(site->id, peer->id) == 0) {
		line = ks[K_PEER_ID].line ? ks[K_PEER_ID].line :
		    ks[K_PEER_NAME].line;
		config_error(p, line, "[peer] id %s is the [site] id too "
		    "(line %u); expected the identity the other site "
		    "authenticates with", quote(peer->id, q),
		    ks[K_SITE_ID].line ? ks[K_SITE_ID].line :
		    ks[K_SITE_NAME].line);
	}
}

static void
check_interfaces(struct config_parser *p)
{
	struct grgw_side	*site = &p->cfg.site;
	struct key_state	*ks = p->keys;
	const char		*xfrm = p->cfg.xfrm_interface;
	char			 q[QUOTE_BUF];
	unsigned int		 line;
	int			 i;

	if (ks[K_SITE_WAN_IF].valid && strcmp(site->wan_interface, xfrm) == 0) {
		line = ks[K_DP_IF].line ? ks[K_DP_IF].line :
		    ks[K_SITE_WAN_IF].line;
		config_error(p, line, "[dataplane] interface %s is also the "
		    "[site] wan_interface (line %u); expected a name of its "
		    "own for the tunnel interface", quote(xfrm, q),
		    ks[K_SITE_WAN_IF].line);
	}
	for (i = 0; i < site->n_lan_interfaces; i++) {
		if (strcmp(site->lan_interfaces[i], xfrm) != 0)
			continue;
		line = ks[K_DP_IF].line ? ks[K_DP_IF].line :
		    ks[K_SITE_LAN_IF].entry_line[i];
		config_error(p, line, "[dataplane] interface %s is also a "
		    "[site] lan_interface (line %u); expected a name of its "
		    "own for the tunnel interface", quote(xfrm, q),
		    ks[K_SITE_LAN_IF].entry_line[i]);
	}
}

/* Each side: its LAN addresses in its prefixes, its prefixes distinct. */
static void
check_side(struct config_parser *p, const struct side_keys *sk)
{
	struct grgw_side	*s = side_of(p, sk);
	struct key_state	*la = &p->keys[sk->lan_addr];
	struct key_state	*pf = &p->keys[sk->prefix];
	const char		*sec = section_names[sk->section];
	char			 a[INET6_ADDRSTRLEN];
	char			 b[INET6_ADDRSTRLEN + 4];
	char			 c[INET6_ADDRSTRLEN + 4];
	char			 list[1024];
	size_t			 o;
	int			 i, j;

	for (i = 0; i < s->n_prefixes; i++) {
		for (j = 0; j < i; j++) {
			if (!prefix_overlaps(&s->prefixes[i], &s->prefixes[j]))
				continue;
			config_error(p, pf->entry_line[i], "[%s] prefix %s "
			    "overlaps [%s] prefix %s (line %u); expected each "
			    "network once", sec, prefix_fmt(&s->prefixes[i],
			    b, sizeof(b)), sec, prefix_fmt(&s->prefixes[j], c,
			    sizeof(c)), pf->entry_line[j]);
			break;
		}
	}
	/* With a prefix missing or refused, the user has that to fix first. */
	if (s->n_prefixes == 0 || pf->invalid)
		return;

	o = 0;
	list[0] = '\0';
	for (j = 0; j < s->n_prefixes && o < sizeof(list); j++)
		o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s",
		    j == 0 ? "" : j + 1 == s->n_prefixes ? " or " : ", ",
		    prefix_fmt(&s->prefixes[j], b, sizeof(b)));
	for (i = 0; i < s->n_lan_addresses; i++) {
		for (j = 0; j < s->n_prefixes; j++)
			if (prefix_contains(&s->prefixes[j],
			    &s->lan_addresses[i]))
				break;
		if (j < s->n_prefixes)
			continue;
		config_error(p, la->entry_line[i], "[%s] lan_address %s is "
		    "not inside any [%s] prefix; expected an address in %s",
		    sec, addr_fmt(&s->lan_addresses[i], a, sizeof(a)), sec,
		    list);
	}
}

/* The sites must not share address space; the tunnel would swallow it. */
static void
check_overlap(struct config_parser *p)
{
	struct grgw_side	*site = &p->cfg.site, *peer = &p->cfg.peer;
	struct key_state	*sp = &p->keys[K_SITE_PREFIX];
	struct key_state	*pp = &p->keys[K_PEER_PREFIX];
	char			 b[INET6_ADDRSTRLEN + 4];
	char			 c[INET6_ADDRSTRLEN + 4];
	int			 i, j;

	for (i = 0; i < peer->n_prefixes; i++) {
		for (j = 0; j < site->n_prefixes; j++) {
			if (!prefix_overlaps(&peer->prefixes[i],
			    &site->prefixes[j]))
				continue;
			config_error(p, pp->entry_line[i], "[peer] prefix %s "
			    "overlaps [site] prefix %s (line %u); expected "
			    "the two sites to use separate networks",
			    prefix_fmt(&peer->prefixes[i], b, sizeof(b)),
			    prefix_fmt(&site->prefixes[j], c, sizeof(c)),
			    sp->entry_line[j]);
		}
	}
}

/* The WAN addresses: same family, distinct, outside the tunnelled nets. */
static void
check_wan(struct config_parser *p)
{
	const struct key_def	*wk[2] = {
		&key_defs[K_SITE_WAN_ADDR], &key_defs[K_PEER_ADDR] };
	struct grgw_addr	*w[2] = {
		&p->cfg.site.wan_address, &p->cfg.peer.wan_address };
	struct key_state	*ks[2] = {
		&p->keys[K_SITE_WAN_ADDR], &p->keys[K_PEER_ADDR] };
	char			 a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];
	char			 c[INET6_ADDRSTRLEN + 4];
	struct grgw_side	*s;
	size_t			 i, j;
	int			 n;

	if (ks[0]->valid && ks[1]->valid) {
		if (w[0]->family != w[1]->family)
			config_error(p, ks[1]->line, "[peer] address %s is %s "
			    "but [site] wan_address %s (line %u) is %s; "
			    "expected both WAN addresses in the same family",
			    addr_fmt(w[1], a, sizeof(a)),
			    family_name(w[1]->family),
			    addr_fmt(w[0], b, sizeof(b)), ks[0]->line,
			    family_name(w[0]->family));
		else if (addr_equal(w[0], w[1]))
			config_error(p, ks[1]->line, "[peer] address %s is the "
			    "[site] wan_address too (line %u); expected the "
			    "other gateway's WAN address",
			    addr_fmt(w[1], a, sizeof(a)), ks[0]->line);
	}
	for (i = 0; i < 2; i++) {
		if (!ks[i]->valid)
			continue;
		for (j = 0; j < nitems(sides); j++) {
			s = side_of(p, &sides[j]);
			for (n = 0; n < s->n_prefixes; n++) {
				if (!prefix_contains(&s->prefixes[n], w[i]))
					continue;
				config_error(p, ks[i]->line, "[%s] %s %s is "
				    "inside [%s] prefix %s (line %u); expected "
				    "a WAN address outside the networks the "
				    "tunnel carries",
				    section_names[wk[i]->section], wk[i]->name,
				    addr_fmt(w[i], a, sizeof(a)),
				    section_names[sides[j].section],
				    prefix_fmt(&s->prefixes[n], c, sizeof(c)),
				    p->keys[sides[j].prefix].entry_line[n]);
			}
		}
	}
}

/*
 * [peer] gateway: addresses the other site's incoming gateway makes its
 * SAs from before a handover; of the family of [peer] address, not that
 * address (it floats to whichever gateway is active), and outside the
 * networks the tunnel carries.
 */
static void
check_peer_gateways(struct config_parser *p)
{
	const struct grgw_side	*peer = &p->cfg.peer;
	struct key_state	*gk = &p->keys[K_PEER_GATEWAY];
	struct key_state	*ak = &p->keys[K_PEER_ADDR];
	char			 a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];
	char			 c[INET6_ADDRSTRLEN + 4];
	size_t			 j;
	int			 i, n;

	for (i = 0; i < peer->n_gateways; i++) {
		const struct grgw_addr *g = &peer->gateways[i];

		if (ak->valid && g->family != peer->wan_address.family)
			config_error(p, gk->entry_line[i], "[peer] gateway %s "
			    "is %s but [peer] address %s (line %u) is %s; "
			    "expected the family of [peer] address",
			    addr_fmt(g, a, sizeof(a)), family_name(g->family),
			    addr_fmt(&peer->wan_address, b, sizeof(b)),
			    ak->line, family_name(peer->wan_address.family));
		else if (ak->valid && addr_equal(g, &peer->wan_address))
			config_error(p, gk->entry_line[i], "[peer] gateway %s "
			    "is [peer] address too (line %u), which floats "
			    "to the other site's active gateway; expected "
			    "one gateway's own WAN address",
			    addr_fmt(g, a, sizeof(a)), ak->line);
		for (j = 0; j < nitems(sides); j++) {
			const struct grgw_side *s = side_of(p, &sides[j]);

			for (n = 0; n < s->n_prefixes; n++) {
				if (!prefix_contains(&s->prefixes[n], g))
					continue;
				config_error(p, gk->entry_line[i], "[peer] "
				    "gateway %s is inside [%s] prefix %s (line "
				    "%u); expected a WAN address outside the "
				    "networks the tunnel carries",
				    addr_fmt(g, a, sizeof(a)),
				    section_names[sides[j].section],
				    prefix_fmt(&s->prefixes[n], c, sizeof(c)),
				    p->keys[sides[j].prefix].entry_line[n]);
			}
		}
	}
}

/* ---- QoS -------------------------------------------------------------- */

static int
ports_overlap(const struct grgw_port_range *a, const struct grgw_port_range *b)
{
	return a->lo <= b->hi && b->lo <= a->hi;
}

static void
port_fmt(const struct grgw_port_range *r, char *buf, size_t size)
{
	if (r->lo == r->hi)
		snprintf(buf, size, "%u", r->lo);
	else
		snprintf(buf, size, "%u-%u", r->lo, r->hi);
}

/* Ports and prefixes of one class: distinct, and prefixes of a site. */
static void
check_class_match(struct config_parser *p, int ci)
{
	struct grgw_class	*c = &p->cfg.qos.classes[ci];
	struct key_state	*ks = p->class_keys[ci];
	const struct grgw_side	*sd[2] = { &p->cfg.site, &p->cfg.peer };
	char			 a[16], b[16];
	char			 x[INET6_ADDRSTRLEN + 4], y[INET6_ADDRSTRLEN + 4];
	int			 i, j, n, inside;

	for (i = 0; i < c->n_ports; i++) {
		for (j = 0; j < i; j++) {
			if (!ports_overlap(&c->ports[i], &c->ports[j]))
				continue;
			port_fmt(&c->ports[i], a, sizeof(a));
			port_fmt(&c->ports[j], b, sizeof(b));
			config_error(p, ks[K_CLASS_PORT].entry_line[i],
			    "[class %s] port %s overlaps port %s (line %u); "
			    "expected each port once", c->name, a, b,
			    ks[K_CLASS_PORT].entry_line[j]);
			break;
		}
	}
	for (i = 0; i < c->n_prefixes; i++) {
		for (j = 0; j < i; j++) {
			if (!prefix_overlaps(&c->prefixes[i],
			    &c->prefixes[j]))
				continue;
			config_error(p, ks[K_CLASS_PREFIX].entry_line[i],
			    "[class %s] prefix %s overlaps prefix %s (line "
			    "%u); expected each network once", c->name,
			    prefix_fmt(&c->prefixes[i], x, sizeof(x)),
			    prefix_fmt(&c->prefixes[j], y, sizeof(y)),
			    ks[K_CLASS_PREFIX].entry_line[j]);
			break;
		}
		/* Only traffic between the sites is classified. */
		inside = 0;
		for (n = 0; n < 2 && !inside; n++)
			for (j = 0; j < sd[n]->n_prefixes && !inside; j++)
				inside = prefix_overlaps(&c->prefixes[i],
				    &sd[n]->prefixes[j]);
		if (!inside && p->cfg.site.n_prefixes > 0 &&
		    p->cfg.peer.n_prefixes > 0)
			config_error(p, ks[K_CLASS_PREFIX].entry_line[i],
			    "[class %s] prefix %s is outside both sites' "
			    "prefixes, so it would never match; expected a "
			    "network of this site or of the other",
			    c->name, prefix_fmt(&c->prefixes[i], x,
			    sizeof(x)));
	}
}

/* rate and ceil of one class against [qos] wan_rate. */
static void
check_class_rates(struct config_parser *p, int ci)
{
	struct grgw_qos		*q = &p->cfg.qos;
	struct grgw_class	*c = &q->classes[ci];
	struct key_state	*ks = p->class_keys[ci];
	static const enum key_id keys[2] = { K_CLASS_RATE, K_CLASS_CEIL };
	const struct grgw_rate	*r[2] = { &c->rate, &c->ceil };
	char			 a[32], b[32];
	int			 i;

	for (i = 0; i < 2; i++) {
		if (!ks[keys[i]].valid)
			continue;
		if (q->wan_rate == 0) {
			config_error(p, ks[keys[i]].line, "[class %s] %s needs "
			    "a [qos] wan_rate to share; expected wan_rate = "
			    "RATE in [qos] (without it packets are marked but "
			    "not shaped)", c->name, key_defs[keys[i]].name);
			continue;
		}
		if (policy_rate_bps(r[i], q->wan_rate) > q->wan_rate)
			config_error(p, ks[keys[i]].line, "[class %s] %s %s is "
			    "above [qos] wan_rate %s (line %u); expected at "
			    "most wan_rate", c->name, key_defs[keys[i]].name,
			    policy_rate_fmt(policy_rate_bps(r[i],
			    q->wan_rate), a, sizeof(a)),
			    policy_rate_fmt(q->wan_rate, b, sizeof(b)),
			    p->keys[K_QOS_WAN_RATE].line);
	}
	if (q->wan_rate != 0 && ks[K_CLASS_CEIL].valid &&
	    policy_rate_bps(&c->ceil, q->wan_rate) <
	    policy_rate_bps(&c->rate, q->wan_rate))
		config_error(p, ks[K_CLASS_CEIL].line, "[class %s] ceil %s is "
		    "below its rate %s; expected a ceiling at least as high "
		    "as the guaranteed rate", c->name,
		    policy_rate_fmt(policy_rate_bps(&c->ceil, q->wan_rate), a,
		    sizeof(a)), policy_rate_fmt(policy_rate_bps(&c->rate,
		    q->wan_rate), b, sizeof(b)));
}

static void
check_qos(struct config_parser *p)
{
	struct grgw_qos		*q = &p->cfg.qos;
	struct grgw_class	*c;
	struct key_state	*ks;
	char			 a[32], b[32];
	int			 i;

	for (i = 0; i < q->n_classes && i < GRGW_MAX_CLASSES; i++) {
		c = &q->classes[i];
		/* grgw's own probes: the OAM class follows [probe] port. */
		if (c->builtin && strcmp(c->name, "oam") == 0 &&
		    p->class_keys[i][K_CLASS_PORT].line == 0 &&
		    p->cfg.probe.port >= 1 && p->cfg.probe.port <= 65535) {
			c->n_ports = 1;
			c->ports[0].lo = c->ports[0].hi =
			    (uint16_t)p->cfg.probe.port;
		}
		if (c->line == 0)
			continue;	/* built in, not touched */
		ks = p->class_keys[i];
		if (!c->builtin && c->n_ports == 0 && c->n_prefixes == 0 &&
		    !ks[K_CLASS_PORT].invalid && !ks[K_CLASS_PREFIX].invalid)
			config_error(p, c->line, "[class %s] has no port and "
			    "no prefix, so it would take all traffic; "
			    "expected at least one port = or prefix = line",
			    c->name);
		if (!c->builtin && ks[K_CLASS_DSCP].line == 0)
			config_error(p, c->line, "[class %s] dscp is missing; "
			    "expected a \"dscp = ...\" line with %s", c->name,
			    key_defs[K_CLASS_DSCP].expect);
		check_class_match(p, i);
		check_class_rates(p, i);
	}
	if (q->wan_rate != 0 && policy_rate_sum(q) > q->wan_rate)
		config_error(p, p->keys[K_QOS_WAN_RATE].line, "[qos] wan_rate "
		    "%s is less than the rates of the enabled classes add up "
		    "to (%s); expected lower class rates or a higher wan_rate",
		    policy_rate_fmt(q->wan_rate, a, sizeof(a)),
		    policy_rate_fmt(policy_rate_sum(q), b, sizeof(b)));
}

/*
 * The probe key comes from [probe] key_file, or is derived from the
 * pre-shared key; with certificates there is no shared secret to derive
 * it from.
 */
static void
check_probe(struct config_parser *p)
{
	unsigned int	 line;

	/* Only grgw's own probes are authenticated with it. */
	if (p->cfg.auth != GRGW_AUTH_CERT || p->keys[K_PROBE_KEY].line != 0 ||
	    p->cfg.probe.method != GRGW_PROBES_GRGW)
		return;
	line = section_line(p, SEC_PROBE) != 0 ? section_line(p, SEC_PROBE) :
	    section_line(p, SEC_AUTH);
	config_error(p, line, "[probe] key_file is missing; expected "
	    "key_file = PATH of a key file shared by both gateways (grgw "
	    "keygen makes one) when [auth] uses certificates and [peer] "
	    "probes = grgw");
}

/* The etcd key defaults to /clearwater/<site>/gr-gateway/<peer>. */
static void
check_feeds(struct config_parser *p)
{
	struct grgw_feeds_conf	*f = &p->cfg.feeds;

	if (p->keys[K_ETCD_KEY].line == 0 && p->keys[K_SITE_NAME].valid &&
	    p->keys[K_PEER_NAME].valid)
		snprintf(f->etcd_key, sizeof(f->etcd_key),
		    "/clearwater/%s/gr-gateway/%s", p->cfg.site.name,
		    p->cfg.peer.name);
}

/* ---- the gateway pair ------------------------------------------------- */

/* "line 12", or "the default" for a key not given, to cite another key. */
static const char *
key_where(const struct config_parser *p, enum key_id id, char *buf,
    size_t size)
{
	if (p->keys[id].line == 0)
		snprintf(buf, size, "the default");
	else
		snprintf(buf, size, "line %u", p->keys[id].line);
	return buf;
}

/*
 * Defaults that follow other values, filled whether the section is there
 * or not: dead_ms from interval_ms, guard_ms from dead_ms, margin_ms
 * from interval_ms (within what guard_ms leaves), the fence's
 * key from the site's name.
 */
static void
pair_defaults(struct config_parser *p)
{
	struct grgw_pair_conf	*c = &p->cfg.pair;
	struct key_state	*ks = p->keys;

	if (ks[K_PAIR_DEAD].line == 0)
		c->dead_ms = c->interval_ms * GRGW_PAIR_DEAD_MULT;
	if (ks[K_PAIR_GUARD].line == 0)
		c->guard_ms = c->dead_ms;
	if (ks[K_PAIR_MARGIN].line == 0) {
		c->margin_ms = c->interval_ms * GRGW_PAIR_MARGIN_MULT;
		if (c->guard_ms > c->interval_ms &&
		    c->margin_ms > c->guard_ms - c->interval_ms)
			c->margin_ms = c->guard_ms - c->interval_ms;
	}
	if (ks[K_PAIR_ETCD_KEY].line == 0 && ks[K_SITE_NAME].valid)
		snprintf(c->etcd_key, sizeof(c->etcd_key), "/grgw/%s/pair",
		    p->cfg.site.name);
}

/*
 * A pair address must be a gateway's own: the floating ones are held by
 * whichever gateway is active (or by none), so heartbeats sent to one
 * would not reach the partner they mean to.
 */
static void
check_pair_not_floating(struct config_parser *p, enum key_id id,
    const struct grgw_addr *a)
{
	const struct grgw_side	*site = &p->cfg.site;
	const struct key_def	*k = &key_defs[id];
	struct key_state	*ks = p->keys;
	char			 b[INET6_ADDRSTRLEN];
	int			 i;

	if (ks[K_SITE_WAN_ADDR].valid && addr_equal(a, &site->wan_address))
		config_error(p, ks[id].line, "[pair] %s %s is the [site] "
		    "wan_address too (line %u), which floats to the active "
		    "gateway; expected %s", k->name, addr_fmt(a, b, sizeof(b)),
		    ks[K_SITE_WAN_ADDR].line, k->expect);
	for (i = 0; i < site->n_lan_addresses; i++) {
		if (!addr_equal(a, &site->lan_addresses[i]))
			continue;
		config_error(p, ks[id].line, "[pair] %s %s is a [site] "
		    "lan_address too (line %u), which floats to the active "
		    "gateway; expected %s", k->name, addr_fmt(a, b, sizeof(b)),
		    ks[K_SITE_LAN_ADDR].entry_line[i], k->expect);
	}
}

/* A path's two ends (partner pid, address aid): one family, not equal. */
static void
check_pair_ends(struct config_parser *p, enum key_id pid,
    const struct grgw_addr *partner, enum key_id aid,
    const struct grgw_addr *address)
{
	struct key_state	*ks = p->keys;
	char			 a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];

	if (partner->family != address->family)
		config_error(p, ks[pid].line, "[pair] %s %s is %s but [pair] "
		    "%s %s (line %u) is %s; expected both in the same family",
		    key_defs[pid].name, addr_fmt(partner, a, sizeof(a)),
		    family_name(partner->family), key_defs[aid].name,
		    addr_fmt(address, b, sizeof(b)), ks[aid].line,
		    family_name(address->family));
	else if (addr_equal(partner, address))
		config_error(p, ks[pid].line, "[pair] %s %s is the [pair] %s "
		    "too (line %u); expected the other gateway's own address",
		    key_defs[pid].name, addr_fmt(partner, a, sizeof(a)),
		    key_defs[aid].name, ks[aid].line);
}

/* The second path: both ends or neither, one family, other addresses. */
static void
check_pair_second(struct config_parser *p)
{
	struct grgw_pair_conf	*c = &p->cfg.pair;
	struct key_state	*ks = p->keys;
	char			 a[INET6_ADDRSTRLEN];
	int			 i;
	int			 sa = ks[K_PAIR_SECOND_ADDRESS].line != 0;
	int			 sp = ks[K_PAIR_SECOND_PARTNER].line != 0;

	if (sa != sp) {
		config_error(p, ks[sa ? K_PAIR_SECOND_ADDRESS :
		    K_PAIR_SECOND_PARTNER].line, "[pair] %s without %s; "
		    "expected both (a second path for the heartbeats) or "
		    "neither", sa ? "second_address" : "second_partner",
		    sa ? "second_partner" : "second_address");
		return;
	}
	if (!ks[K_PAIR_SECOND_ADDRESS].valid ||
	    !ks[K_PAIR_SECOND_PARTNER].valid)
		return;
	check_pair_not_floating(p, K_PAIR_SECOND_ADDRESS, &c->second_address);
	check_pair_not_floating(p, K_PAIR_SECOND_PARTNER, &c->second_partner);
	check_pair_ends(p, K_PAIR_SECOND_PARTNER, &c->second_partner,
	    K_PAIR_SECOND_ADDRESS, &c->second_address);
	for (i = 0; i < 2; i++) {
		enum key_id	 id2 = i == 0 ? K_PAIR_SECOND_ADDRESS :
				     K_PAIR_SECOND_PARTNER;
		enum key_id	 id1 = i == 0 ? K_PAIR_ADDRESS : K_PAIR_PARTNER;
		const struct grgw_addr *a2 = i == 0 ? &c->second_address :
				     &c->second_partner;

		if (ks[id1].valid && addr_equal(a2, i == 0 ? &c->address :
		    &c->partner))
			config_error(p, ks[id2].line, "[pair] %s %s is the "
			    "[pair] %s too (line %u); expected %s address on "
			    "another link", key_defs[id2].name,
			    addr_fmt(a2, a, sizeof(a)), key_defs[id1].name,
			    ks[id1].line, i == 0 ? "this gateway's" :
			    "the other gateway's");
	}
}

static void
check_pair_addresses(struct config_parser *p)
{
	struct grgw_pair_conf	*c = &p->cfg.pair;
	struct key_state	*ks = p->keys;

	if (ks[K_PAIR_PARTNER].line == 0)
		key_missing(p, K_PAIR_PARTNER);
	if (ks[K_PAIR_ADDRESS].line == 0)
		key_missing(p, K_PAIR_ADDRESS);
	if (ks[K_PAIR_PARTNER].valid && ks[K_PAIR_ADDRESS].valid)
		check_pair_ends(p, K_PAIR_PARTNER, &c->partner, K_PAIR_ADDRESS,
		    &c->address);
	if (ks[K_PAIR_ADDRESS].valid)
		check_pair_not_floating(p, K_PAIR_ADDRESS, &c->address);
	if (ks[K_PAIR_PARTNER].valid)
		check_pair_not_floating(p, K_PAIR_PARTNER, &c->partner);
	check_pair_second(p);
	if (ks[K_PAIR_OWN_WAN].valid) {
		check_pair_not_floating(p, K_PAIR_OWN_WAN, &c->own_wan_address);
		if (ks[K_SITE_WAN_ADDR].valid && c->own_wan_address.family !=
		    p->cfg.site.wan_address.family)
			config_error(p, ks[K_PAIR_OWN_WAN].line, "[pair] "
			    "own_wan_address is %s but [site] wan_address "
			    "(line %u) is %s; expected the same family",
			    family_name(c->own_wan_address.family),
			    ks[K_SITE_WAN_ADDR].line,
			    family_name(p->cfg.site.wan_address.family));
	}
}

/*
 * dead_ms: a heartbeat or two lost must not make the partner gone.
 * guard_ms: the old active must have had time to see the claim.
 * margin_ms: what is left of guard_ms is how long an etcd answer may
 * take while it is the only word an active gateway has.
 */
static void
check_pair_timing(struct config_parser *p)
{
	struct grgw_pair_conf	*c = &p->cfg.pair;
	struct key_state	*ks = p->keys;
	char			 w[32];

	/* An interval refused: the user has that to fix first. */
	if (ks[K_PAIR_INTERVAL].invalid)
		return;
	key_where(p, K_PAIR_INTERVAL, w, sizeof(w));
	if (ks[K_PAIR_DEAD].valid && c->dead_ms < 3 * c->interval_ms)
		config_error(p, ks[K_PAIR_DEAD].line, "[pair] dead_ms %u is "
		    "less than 3 x interval_ms %u (%s); expected at least %u, "
		    "so that a heartbeat or two lost do not make the partner "
		    "gone", c->dead_ms, c->interval_ms, w,
		    3 * c->interval_ms);
	if (ks[K_PAIR_GUARD].valid && c->guard_ms < 2 * c->interval_ms)
		config_error(p, ks[K_PAIR_GUARD].line, "[pair] guard_ms %u is "
		    "less than 2 x interval_ms %u (%s); expected at least %u, "
		    "so that the active gateway sees the claim before the "
		    "addresses move", c->guard_ms, c->interval_ms, w,
		    2 * c->interval_ms);
	if (ks[K_PAIR_MARGIN].valid && !ks[K_PAIR_GUARD].invalid &&
	    c->guard_ms >= 2 * c->interval_ms &&
	    c->margin_ms > c->guard_ms - c->interval_ms)
		config_error(p, ks[K_PAIR_MARGIN].line, "[pair] margin_ms %u "
		    "leaves less than interval_ms %u (%s) of guard_ms %u; "
		    "expected at most %u, so that an active gateway alone "
		    "can hold the role on etcd's answers", c->margin_ms,
		    c->interval_ms, w, c->guard_ms,
		    c->guard_ms - c->interval_ms);
}

/* Heartbeats and link probes on one port could not be told apart. */
static void
check_pair_port(struct config_parser *p)
{
	struct grgw_pair_conf	*c = &p->cfg.pair;
	struct key_state	*ks = p->keys;
	char			 w[32];

	if (ks[K_PAIR_PORT].invalid || ks[K_PROBE_PORT].invalid ||
	    c->port != p->cfg.probe.port)
		return;
	if (ks[K_PAIR_PORT].line != 0)
		config_error(p, ks[K_PAIR_PORT].line, "[pair] port %u is the "
		    "[probe] port too (%s); expected a port of its own for the "
		    "heartbeats", c->port, key_where(p, K_PROBE_PORT, w,
		    sizeof(w)));
	else
		config_error(p, ks[K_PROBE_PORT].line, "[probe] port %u is the "
		    "[pair] port too (its default); expected another port for "
		    "the link probes, or [pair] port = another one for the "
		    "heartbeats", c->port);
}

/* The fence and the heartbeat key: what the pair needs from elsewhere. */
static void
check_pair_needs(struct config_parser *p)
{
	struct grgw_pair_conf	*c = &p->cfg.pair;
	struct key_state	*ks = p->keys;
	unsigned int		 line = section_line(p, SEC_PAIR);
	char			 q[QUOTE_BUF], w[32];

	/* An endpoint refused was reported already. */
	if (p->cfg.feeds.etcd_endpoint[0] == '\0' &&
	    !ks[K_ETCD_ENDPOINT].invalid)
		config_error(p, line, "[pair] needs [etcd] endpoint: the "
		    "site's etcd fences the active role; expected endpoint = "
		    "http://ADDRESS:PORT of the site's etcd in [etcd]");
	if (p->cfg.auth == GRGW_AUTH_CERT && ks[K_PAIR_KEY].line == 0)
		config_error(p, line, "[pair] needs key_file with certificate "
		    "authentication; expected key_file = PATH of a key file "
		    "shared by both gateways of the site (grgw keygen makes "
		    "one)");
	/* The link state published there would overwrite the fence. */
	if (ks[K_PAIR_ETCD_KEY].invalid || ks[K_ETCD_KEY].invalid ||
	    strcmp(c->etcd_key, p->cfg.feeds.etcd_key) != 0)
		return;
	if (ks[K_PAIR_ETCD_KEY].line != 0)
		config_error(p, ks[K_PAIR_ETCD_KEY].line, "[pair] etcd_key %s "
		    "is the [etcd] key too (%s); expected a key of its own for "
		    "the fence", quote(c->etcd_key, q), key_where(p,
		    K_ETCD_KEY, w, sizeof(w)));
	else
		config_error(p, ks[K_ETCD_KEY].line, "[etcd] key %s is the "
		    "[pair] etcd_key too (its default); expected another key "
		    "for the link state, or [pair] etcd_key = another one for "
		    "the fence", quote(c->etcd_key, q));
}

/*
 * [pair]: the gateways' own addresses, heartbeat timing that survives a
 * lost packet, a port of its own, and the etcd that fences the role.
 */
static void
check_pair(struct config_parser *p)
{
	pair_defaults(p);
	p->cfg.pair.enabled = section_line(p, SEC_PAIR) != 0;
	if (!p->cfg.pair.enabled)
		return;
	check_pair_addresses(p);
	check_pair_timing(p);
	check_pair_port(p);
	check_pair_needs(p);
}

/* ---- files the config names ------------------------------------------- */

static void
file_ref(struct config_file_ref *r, const struct config_parser *p,
    enum key_id id, const char *path, enum config_file_kind kind)
{
	r->key = key_defs[id].name;
	r->line = p->keys[id].line;
	r->path = path;
	r->kind = kind;
}

size_t
config_parse_files(const struct config_parser *p, struct config_file_ref *out,
    size_t max)
{
	const struct key_state	*ks = p->keys;
	struct config_file_ref	 refs[CONFIG_FILE_REFS_MAX];
	size_t			 n = 0, i;

	if (ks[K_AUTH_PSK].valid)
		file_ref(&refs[n++], p, K_AUTH_PSK, p->cfg.psk_file,
		    CONFIG_FILE_KEY);
	if (ks[K_AUTH_PSK_NEXT].valid)
		file_ref(&refs[n++], p, K_AUTH_PSK_NEXT, p->cfg.psk_next_file,
		    CONFIG_FILE_KEY);
	if (ks[K_AUTH_CERT].valid)
		file_ref(&refs[n++], p, K_AUTH_CERT, p->cfg.cert_file,
		    CONFIG_FILE_READABLE);
	if (ks[K_AUTH_KEY].valid)
		file_ref(&refs[n++], p, K_AUTH_KEY, p->cfg.key_file,
		    CONFIG_FILE_SECRET);
	if (ks[K_AUTH_CA].valid)
		file_ref(&refs[n++], p, K_AUTH_CA, p->cfg.ca_file,
		    CONFIG_FILE_READABLE);
	if (ks[K_PROBE_KEY].valid)
		file_ref(&refs[n++], p, K_PROBE_KEY, p->cfg.probe.key_file,
		    CONFIG_FILE_KEY);
	if (ks[K_PAIR_KEY].valid)
		file_ref(&refs[n++], p, K_PAIR_KEY, p->cfg.pair.key_file,
		    CONFIG_FILE_KEY);
	/* Given or not: the default is checked too (its line is 0). */
	if (!ks[K_DAEMON_RUN_DIR].invalid)
		file_ref(&refs[n++], p, K_DAEMON_RUN_DIR, p->cfg.run_dir,
		    CONFIG_FILE_RUNDIR);
	for (i = 0; i < n && i < max; i++)
		out[i] = refs[i];
	return n < max ? n : max;
}

void
config_parse_error_at(struct config_parser *p, unsigned int line,
    const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	config_verror(p, line, fmt, ap);
	va_end(ap);
}

/* ---- API -------------------------------------------------------------- */

struct config_parser *
config_parse_new(const char *filename)
{
	struct config_parser	*p;
	struct grgw_config	*c;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	snprintf(p->file, sizeof(p->file), "%s",
	    filename != NULL ? filename : "(config)");
	p->section = SEC_NONE;

	c = &p->cfg;
	snprintf(c->path, sizeof(c->path), "%s", p->file);
	c->auth = GRGW_AUTH_NONE;
	c->dataplane = GRGW_DP_AUTO;
	snprintf(c->xfrm_interface, sizeof(c->xfrm_interface), "%s",
	    GRGW_DEFAULT_XFRM_IF);
	c->if_id = GRGW_DEFAULT_IF_ID;
	c->table = GRGW_DEFAULT_TABLE;
	c->mtu = GRGW_DEFAULT_MTU;
	snprintf(c->run_dir, sizeof(c->run_dir), "%s", GRGW_DEFAULT_RUN_DIR);
	snprintf(c->charon_path, sizeof(c->charon_path), "%s",
	    GRGW_DEFAULT_CHARON);
	snprintf(c->user, sizeof(c->user), "%s", GRGW_DEFAULT_USER);
	c->log_level = LOG_LVL_INFO;
	policy_qos_defaults(&c->qos);
	c->probe.interval_ms = GRGW_PROBE_INTERVAL_MS;
	c->probe.multiplier = GRGW_PROBE_MULTIPLIER;
	c->probe.recover = GRGW_PROBE_RECOVER;
	c->probe.port = GRGW_OAM_PORT;
	c->probe.degraded_loss = GRGW_PROBE_LOSS_PCT / 100.0;
	c->probe.degraded_rtt_ms = GRGW_PROBE_RTT_MS;
	c->probe.method = GRGW_PROBES_GRGW;
	snprintf(c->feeds.http_listen, sizeof(c->feeds.http_listen), "%s",
	    FEEDS_HTTP_LISTEN_DEFAULT);
	snprintf(c->feeds.hooks_dir, sizeof(c->feeds.hooks_dir), "%s",
	    FEEDS_HOOKS_DIR_DEFAULT);
	c->feeds.hooks_timeout = FEEDS_HOOKS_TIMEOUT_DEFAULT;
	c->feeds.etcd_lease_ttl = FEEDS_ETCD_TTL_DEFAULT;
	c->cert_warn_days = GRGW_CERT_WARN_DAYS;
	c->ipsec.ike_rekey_s = GRGW_IKE_REKEY_S;
	c->ipsec.child_rekey_s = GRGW_CHILD_REKEY_S;
	/* dead_ms, guard_ms and etcd_key follow these: pair_defaults(). */
	c->pair.priority = GRGW_PAIR_PRIORITY;
	c->pair.port = GRGW_PAIR_PORT;
	c->pair.interval_ms = GRGW_PAIR_INTERVAL_MS;
	return p;
}

/*
 * A lifetime left unset follows its rekey time (a tenth more, as charon
 * does); one that is set must leave rekeying time: at least a tenth of
 * the rekey time, and 2 s, for the exchange and its retransmissions
 * before the old SA is deleted.
 */
static void
check_lifetime(struct config_parser *p, enum key_id rekey_key,
    enum key_id life_key, uint32_t rekey, uint32_t *life)
{
	struct key_state	*ks = p->keys;
	uint32_t		 margin = rekey / 10 > 2 ? rekey / 10 : 2;

	if (ks[life_key].line == 0) {
		*life = rekey + margin;
		return;
	}
	if (!ks[life_key].valid || !(ks[rekey_key].valid ||
	    ks[rekey_key].line == 0))
		return;
	if (*life < rekey + margin)
		config_error(p, ks[life_key].line, "[ipsec] %s %u s leaves "
		    "no time to rekey after %s %u s; expected at least %u s "
		    "(the rekey time and a tenth of it, at least 2 s)",
		    key_defs[life_key].name, *life, key_defs[rekey_key].name,
		    rekey, rekey + margin);
}

static void
check_ipsec(struct config_parser *p)
{
	struct grgw_ipsec_conf	*c = &p->cfg.ipsec;

	check_lifetime(p, K_IPSEC_IKE_REKEY, K_IPSEC_IKE_LIFE,
	    c->ike_rekey_s, &c->ike_life_s);
	check_lifetime(p, K_IPSEC_CHILD_REKEY, K_IPSEC_CHILD_LIFE,
	    c->child_rekey_s, &c->child_life_s);
}

int
config_parse_finish(struct config_parser *p, struct grgw_config *out)
{
	size_t	 i;

	if (p == NULL || p->finished) {
		errno = EINVAL;
		return -1;
	}
	p->finished = 1;
	check_required(p);
	check_auth(p);
	check_names(p);
	check_interfaces(p);
	for (i = 0; i < nitems(sides); i++)
		check_side(p, &sides[i]);
	check_overlap(p);
	check_wan(p);
	check_peer_gateways(p);
	check_qos(p);
	check_probe(p);
	check_feeds(p);
	check_pair(p);
	check_ipsec(p);

	if (p->n_seen != 0 || p->oom) {
		if (out != NULL)
			memset(out, 0, sizeof(*out));
		errno = p->oom && p->n_seen == 0 ? ENOMEM : EINVAL;
		return -1;
	}
	if (out != NULL)
		*out = p->cfg;
	return 0;
}

size_t
config_parse_error_count(const struct config_parser *p)
{
	if (p == NULL)
		return 0;
	return p->n_errors + (p->oom ? 1 : 0);
}

const char *
config_parse_error(const struct config_parser *p, size_t i)
{
	if (p == NULL)
		return NULL;
	if (i < p->n_errors)
		return p->errors[i];
	if (i == p->n_errors && p->oom)
		return "out of memory while recording configuration errors";
	return NULL;
}

void
config_parse_free(struct config_parser *p)
{
	size_t	 i;

	if (p == NULL)
		return;
	for (i = 0; i < p->n_errors; i++)
		free(p->errors[i]);
	free(p->errors);
	free(p);
}

void
config_site_dir(const struct grgw_config *cfg, char *buf, size_t size)
{
	size_t	 len;

	if (buf == NULL || size == 0)
		return;
	if (cfg == NULL) {
		buf[0] = '\0';
		return;
	}
	len = strlen(cfg->run_dir);
	/* Avoid "//" when run_dir ends with a slash (or is "/"). */
	snprintf(buf, size, "%s%s%s", cfg->run_dir,
	    len > 0 && cfg->run_dir[len - 1] == '/' ? "" : "/",
	    cfg->site.name);
}

const char *
config_dataplane_name(enum grgw_dataplane dp)
{
	switch (dp) {
	case GRGW_DP_AUTO:
		return "auto";
	case GRGW_DP_KERNEL:
		return "kernel";
	case GRGW_DP_LIBIPSEC:
		return "libipsec";
	}
	return "unknown";
}

const char *
config_probes_name(enum grgw_probes m)
{
	switch (m) {
	case GRGW_PROBES_GRGW:
		return "grgw";
	case GRGW_PROBES_ICMP:
		return "icmp";
	case GRGW_PROBES_OFF:
		return "off";
	}
	return "unknown";
}
