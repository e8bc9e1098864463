/*
 * grgw - secure inter-site gateway for geographically redundant sites.
 *
 * Project-wide declarations, grouped by the file that implements them.
 * Conventions: functions return 0 on success and -1 (with errno set) or a
 * negative errno on failure; only the CLI layer prints to the user.  A
 * function that can say why it failed takes a buffer of the caller's,
 * `char *err, size_t errlen`, as its last two parameters, and fills it
 * with err_set() (a NULL err is allowed).  Every function that takes or
 * returns a pointer says who owns it.
 */
#ifndef GRGW_H
#define GRGW_H

#include <net/if.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <limits.h>
#include <time.h>

#define GRGW_VERSION		"0.1.0"

#define GRGW_NAME_MAX		63	/* site names, identities */
#define GRGW_ID_MAX		255	/* IKE identities */
#define GRGW_MAX_PREFIXES	16	/* per side */
/* Pairs of prefixes (a site's and a peer's), a CHILD_SA each. */
#define GRGW_MAX_PAIRS		(GRGW_MAX_PREFIXES * GRGW_MAX_PREFIXES)
#define GRGW_MAX_LAN_IFS	8
#define GRGW_MAX_LAN_ADDRS	2	/* one per address family */
#define GRGW_MAX_PEER_GWS	4	/* [peer] gateway lines */
#define GRGW_PSK_MIN		32	/* bytes of key material */
#define GRGW_PSK_MAX		64

#define GRGW_DEFAULT_CONF	"/etc/grgw/grgw.conf"
#define GRGW_DEFAULT_RUN_DIR	"/run/grgw"
#define GRGW_DEFAULT_CHARON	"/usr/lib/ipsec/charon"
#define GRGW_DEFAULT_USER	"_grgw"	/* the network process's user */
#define GRGW_USER_MAX		33	/* user names, with their NUL */
#define GRGW_DEFAULT_TABLE	4210
#define GRGW_DEFAULT_IF_ID	4210
#define GRGW_DEFAULT_XFRM_IF	"grgw0"
#define GRGW_DEFAULT_MTU	1400

#ifndef nitems
#define nitems(a)	(sizeof(a) / sizeof((a)[0]))
#endif

#define GRGW_PRINTF(f, a)	__attribute__((format(printf, f, a)))

/* ---- err.c (pure) ----------------------------------------------------- */

/*
 * Write a message into the caller's err buffer (if err is not NULL and
 * errlen > 0; a message too long is cut) and return -1, so that a
 * failure reads `return err_set(err, errlen, "what is wrong");`.
 */
int	err_set(char *err, size_t errlen, const char *fmt, ...)
	    GRGW_PRINTF(3, 4);
int	err_setv(char *err, size_t errlen, const char *fmt, va_list ap)
	    GRGW_PRINTF(3, 0);
/* Add to the message already in err (cut to fit); returns -1. */
int	err_append(char *err, size_t errlen, const char *fmt, ...)
	    GRGW_PRINTF(3, 4);

/* ---- log.c ------------------------------------------------------------ */

enum log_level { LOG_LVL_ERR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* Logs go to stderr with a timestamp; the daemon points stderr at its log. */
void	log_init(const char *ident, enum log_level level);
void	log_set_level(enum log_level level);
enum log_level log_get_level(void);
int	log_level_parse(const char *s, enum log_level *out);
void	log_warn(const char *fmt, ...) GRGW_PRINTF(1, 2);	/* + strerror */
void	log_warnx(const char *fmt, ...) GRGW_PRINTF(1, 2);
void	log_info(const char *fmt, ...) GRGW_PRINTF(1, 2);
void	log_debug(const char *fmt, ...) GRGW_PRINTF(1, 2);
void	fatal(const char *fmt, ...) GRGW_PRINTF(1, 2) __attribute__((noreturn));
void	fatalx(const char *fmt, ...) GRGW_PRINTF(1, 2) __attribute__((noreturn));

/* ---- addr.c (pure) ---------------------------------------------------- */

struct grgw_addr {
	int		family;		/* AF_INET or AF_INET6 */
	uint8_t		addr[16];	/* network byte order */
};

struct grgw_prefix {
	struct grgw_addr a;
	uint8_t		len;		/* prefix length in bits */
};

/* Parse "192.0.2.1" / "2001:db8::1"; 0 or -1.  No host names. */
int	addr_parse(const char *s, struct grgw_addr *out);
/* Parse "198.18.1.0/24"; host bits must be zero; -1 on any error. */
int	prefix_parse(const char *s, struct grgw_prefix *out);
/* Format into buf (INET6_ADDRSTRLEN / +4 for prefixes); returns buf. */
const char *addr_fmt(const struct grgw_addr *a, char *buf, size_t size);
const char *prefix_fmt(const struct grgw_prefix *p, char *buf, size_t size);
/* "192.0.2.1:4211" or "[2001:db8::1]:4211" (a struct sockaddr_storage),
 * for messages; returns buf. */
struct sockaddr_storage;
const char *sockaddr_fmt(const struct sockaddr_storage *ss, char *buf,
	    size_t size);
/*
 * "192.0.2.1:9421" or "[2001:db8::1]:9421": IP literals only (nothing
 * resolves names), port 0 to 65535.  0, or -1 with err saying what is
 * wrong with the text ("has no :port").
 */
int	addr_port_parse(const char *s, struct grgw_addr *addr, uint16_t *port,
	    char *err, size_t errlen);
/*
 * "http://192.0.2.5:4000", "http://[2001:db8::5]" (a trailing '/' is
 * allowed; no path, query or credentials; https:// is refused): the
 * address and the port, default_port when none is given, never 0.
 */
int	addr_url_parse(const char *s, uint16_t default_port,
	    struct grgw_addr *addr, uint16_t *port, char *err, size_t errlen);
int	addr_len(int family);		/* 4, 16 or 0 */
/*
 * 1 if s is an interface name grgw accepts: 1 to 15 of letters, digits,
 * '.', '_', '-' and '+' (not "." or ".."), so that it can stand in a
 * netlink attribute, a /proc path and an nftables script as it is.
 */
int	ifname_valid(const char *s);
int	prefix_contains(const struct grgw_prefix *p, const struct grgw_addr *a);
int	prefix_overlaps(const struct grgw_prefix *p, const struct grgw_prefix *q);
int	addr_equal(const struct grgw_addr *a, const struct grgw_addr *b);

/* ---- config.c --------------------------------------------------------- */

enum grgw_auth_kind { GRGW_AUTH_NONE, GRGW_AUTH_PSK, GRGW_AUTH_CERT };
enum grgw_dataplane { GRGW_DP_AUTO, GRGW_DP_KERNEL, GRGW_DP_LIBIPSEC };

/*
 * How the link to the peer is measured ([peer] probes): grgw's own
 * authenticated UDP probes (the peer runs grgw), ICMP echo answered by
 * any IP stack (a peer that is not grgw), or not at all (the link
 * follows the IKE and CHILD SAs).
 */
enum grgw_probes { GRGW_PROBES_GRGW, GRGW_PROBES_ICMP, GRGW_PROBES_OFF };

struct grgw_side {
	char		name[GRGW_NAME_MAX + 1];	/* site name */
	char		id[GRGW_ID_MAX + 1];	/* IKE identity (default: name) */
	struct grgw_addr wan_address;		/* site: local WAN address;
						 * peer: address we send to
						 * (its public one under NAT) */
	struct grgw_addr lan_addresses[GRGW_MAX_LAN_ADDRS];
	int		n_lan_addresses;	/* gateway's own LAN address */
	struct grgw_prefix prefixes[GRGW_MAX_PREFIXES];
	int		n_prefixes;
	/*
	 * peer only: the other site's gateways' own WAN addresses (as
	 * reached from here), from which its incoming gateway makes its
	 * SAs before a planned handover ([pair] own_wan_address there).
	 */
	struct grgw_addr gateways[GRGW_MAX_PEER_GWS];
	int		n_gateways;
	/* site only */
	char		wan_interface[IF_NAMESIZE];
	char		lan_interfaces[GRGW_MAX_LAN_IFS][IF_NAMESIZE];
	int		n_lan_interfaces;
};

/*
 * QoS: traffic classes ([class NAME] sections over built-in defaults from
 * policy/) and the shaper ([qos]).  policy/ compiles them into the
 * kernel objects netlink/ installs.
 */
#define GRGW_MAX_CLASSES	16
#define GRGW_CLASS_NAME_MAX	15
#define GRGW_MAX_CLASS_PORTS	8
#define GRGW_MAX_CLASS_PREFIXES	8
#define GRGW_OAM_PORT		4211	/* UDP port of grgw's own probes */

enum grgw_l4proto { GRGW_L4_ANY, GRGW_L4_TCP, GRGW_L4_UDP };

struct grgw_port_range {
	uint16_t	lo, hi;			/* inclusive; lo == hi: one */
};

/* A rate: bits per second, or a share of [qos] wan_rate. */
struct grgw_rate {
	uint64_t	bps;			/* 0 with percent, or unset */
	uint32_t	percent;		/* 1..100, or 0 */
};

struct grgw_class {
	char		name[GRGW_CLASS_NAME_MAX + 1];
	int		enabled;
	int		builtin;		/* a default from policy/ */
	int		protocol;		/* enum grgw_l4proto */
	struct grgw_port_range ports[GRGW_MAX_CLASS_PORTS];
	int		n_ports;		/* source or destination */
	struct grgw_prefix prefixes[GRGW_MAX_CLASS_PREFIXES];
	int		n_prefixes;		/* source or destination */
	uint32_t	dscp;			/* 0..63 */
	uint32_t	priority;		/* 0..7, 0 served first */
	struct grgw_rate rate;			/* guaranteed share */
	struct grgw_rate ceil;			/* most it may use */
	unsigned int	line;			/* [class] header; 0: none */
};

struct grgw_qos {
	int		enabled;
	uint64_t	wan_rate;		/* bits/s; 0: no shaping */
	char		interface[IF_NAMESIZE];	/* "": the tunnel's */
	int		keep_lan_gro;		/* lan_gro = keep */
	struct grgw_class classes[GRGW_MAX_CLASSES];
	int		n_classes;		/* in configuration order */
};

/*
 * Link probes ([probe]); the engine is in probe.c.  The probe key comes
 * from key_file when it is set, else from the pre-shared key.
 */
#define GRGW_PROBE_INTERVAL_MS	50	/* 5 x 50 ms + 25 ms slack: a dead */
#define GRGW_PROBE_MULTIPLIER	5	/* path is known within 275 ms */
#define GRGW_PROBE_RECOVER	3
#define GRGW_PROBE_LOSS_PCT	5	/* degraded above this % lost */
#define GRGW_PROBE_RTT_MS	250	/* degraded above this RTT */

struct grgw_probe_conf {
	uint32_t	interval_ms;		/* between requests, per path */
	uint32_t	multiplier;		/* silent intervals before down */
	uint32_t	recover;		/* good replies before up */
	uint32_t	port;			/* UDP, 1..65535, both sides */
	char		key_file[PATH_MAX];	/* "": derive from the PSK */
	double		degraded_loss;		/* ratio 0..1 (key: percent) */
	uint32_t	degraded_rtt_ms;	/* smoothed RTT threshold */
	uint32_t	refuse_hold_ms;		/* link down this long: refuse */
	enum grgw_probes method;		/* [peer] probes */
};

/*
 * Feeds of the link state ([http], [hooks], [etcd]); the code is in
 * http.c, notify.c and etcd.c (see feeds.h).  An empty string is "off".
 */
#define GRGW_ETCD_KEY_MAX	255

struct grgw_feeds_conf {
	char		http_listen[64];	/* "127.0.0.1:9421"; "" = off */
	char		hooks_dir[PATH_MAX];	/* missing dir = no hooks */
	uint32_t	hooks_timeout;		/* seconds, 1..3600 */
	char		etcd_endpoint[128];	/* "http://ip:port"; "" = off */
	char		etcd_key[GRGW_ETCD_KEY_MAX + 1]; /* filled by default */
	uint32_t	etcd_lease_ttl;		/* seconds, 2..3600 */
};

/*
 * [ipsec]: SA lifetimes, in seconds.  An SA is rekeyed (make before
 * break, never reauthenticated) at its rekey time and deleted at its
 * lifetime if rekeying failed until then.
 */
#define GRGW_IKE_REKEY_S	(4 * 3600)
#define GRGW_CHILD_REKEY_S	3600
#define GRGW_CERT_WARN_DAYS	30
struct grgw_ipsec_conf {
	uint32_t	ike_rekey_s;
	uint32_t	ike_life_s;		/* > ike_rekey_s */
	uint32_t	child_rekey_s;
	uint32_t	child_life_s;		/* > child_rekey_s */
};

/*
 * The gateway pair ([pair]; the engine is in pair_role.c, see pair.h):
 * two gateways per site, one active.  The [site] wan_address and
 * lan_address float: only the active gateway holds them.  Each gateway
 * also has a fixed address of its own, from which it sends heartbeats to
 * its partner; the site's etcd ([etcd] endpoint, key etcd_key) fences
 * the active role.  Without the section, enabled is 0, the other fields
 * hold their defaults, and the gateway is alone, as before.
 */
#define GRGW_PAIR_PORT		4212	/* UDP port of the heartbeats */
#define GRGW_PAIR_INTERVAL_MS	20	/* 5 x 20 ms: a partner is gone */
#define GRGW_PAIR_DEAD_MULT	5	/* within 100 ms (dead_ms) */
#define GRGW_PAIR_MARGIN_MULT	2	/* 40 ms to let go (margin_ms) */
#define GRGW_PAIR_PRIORITY	100

struct grgw_pair_conf {
	int		enabled;		/* a [pair] section was given */
	struct grgw_addr partner;		/* the other gateway's own */
	struct grgw_addr address;		/* this gateway's own (fixed) */
	/* A second path for the heartbeats, used alongside the first
	 * (family 0: none): this gateway's and the other's own addresses
	 * on another link, such as their WAN. */
	struct grgw_addr second_address;
	struct grgw_addr second_partner;
	/*
	 * This gateway's own WAN address (family 0: none): before a
	 * planned handover to it, it makes its SAs from there, while the
	 * partner still holds the floating one (the peer lists it as a
	 * [peer] gateway).
	 */
	struct grgw_addr own_wan_address;
	uint32_t	priority;		/* 1..255; higher: active */
	uint32_t	port;			/* UDP, 1..65535, both ends */
	uint32_t	interval_ms;		/* heartbeats, 5..1000 */
	uint32_t	dead_ms;		/* silent partner: gone; >= 3 x
						 * interval_ms */
	uint32_t	guard_ms;		/* won the role: wait before
						 * taking the addresses; >= 2 x
						 * interval_ms */
	uint32_t	margin_ms;		/* the hold ends this much before
						 * the partner may take: the
						 * time to let go; <= guard_ms -
						 * interval_ms */
	uint32_t	handover_wait_ms;	/* a handover waits this long
						 * for the partner's SAs; 0:
						 * pair_prepare_limit_ms()'s
						 * default */
	char		key_file[PATH_MAX];	/* "": derive from the PSK */
	char		etcd_key[GRGW_ETCD_KEY_MAX + 1]; /* the fence; filled
						 * by default */
};

struct grgw_config {
	char		path[PATH_MAX];		/* file it was read from */
	struct grgw_side site;			/* this site */
	struct grgw_side peer;			/* the other site */

	enum grgw_auth_kind auth;
	char		psk_file[PATH_MAX];	/* ours: we authenticate with it */
	char		psk_next_file[PATH_MAX]; /* "": none; else accepted from
						 * the peer too (a rotation) */
	char		cert_file[PATH_MAX];
	char		key_file[PATH_MAX];
	char		ca_file[PATH_MAX];
	uint32_t	cert_warn_days;		/* status warns this early */
	struct grgw_ipsec_conf ipsec;

	enum grgw_dataplane dataplane;
	char		xfrm_interface[IF_NAMESIZE];
	uint32_t	if_id;
	uint32_t	table;			/* routing table / rule base */
	uint32_t	mtu;			/* tunnel interface MTU */

	struct grgw_qos	qos;
	struct grgw_probe_conf probe;
	struct grgw_feeds_conf feeds;
	struct grgw_pair_conf pair;

	char		run_dir[PATH_MAX];	/* base; site dir is below */
	char		charon_path[PATH_MAX];
	enum log_level	log_level;
	char		user[GRGW_USER_MAX];	/* of the network process */
};

/*
 * Incremental parser, driven line by line by config_load() and directly by
 * the unit tests and the fuzzer.  Pure: no I/O.
 *   config_parse_init(&p, "grgw.conf");
 *   config_parse_line(&p, "name = site-a", 12);  (per line, no newline)
 *   config_parse_finish(&p, &cfg);  -> 0 if no error was seen
 * Every error is recorded (not just the first) as "file:line: message" and
 * can be read with config_parse_errors().  The parser owns its error text;
 * config_parse_free() releases it.
 */
struct config_parser;
struct config_parser *config_parse_new(const char *filename);
int	config_parse_line(struct config_parser *p, const char *line, size_t len);
int	config_parse_finish(struct config_parser *p, struct grgw_config *out);
size_t	config_parse_error_count(const struct config_parser *p);
/* i-th error message ("file:line: ..."), owned by the parser. */
const char *config_parse_error(const struct config_parser *p, size_t i);
void	config_parse_free(struct config_parser *p);	/* accepts NULL */

/* Record one more error, "file:line: ..." (line 0: "file: ..."). */
void	config_parse_error_at(struct config_parser *p, unsigned int line,
	    const char *fmt, ...) GRGW_PRINTF(3, 4);

/*
 * The files a configuration names, for config_file.c to check: which key
 * on which line, the path (owned by the parser), and what it must be.
 */
enum config_file_kind {
	CONFIG_FILE_READABLE,		/* a certificate, a CA bundle */
	CONFIG_FILE_SECRET,		/* a private key: 0600 or 0400 */
	CONFIG_FILE_KEY,		/* secret, and holds a grgw key */
	CONFIG_FILE_RUNDIR		/* run_dir: its parent exists, and
					 * nobody but root can change it */
};
#define CONFIG_FILE_REFS_MAX	8

struct config_file_ref {
	const char	*key;		/* "psk_file" */
	unsigned int	 line;
	const char	*path;
	enum config_file_kind kind;
};
/* Fill out[] (at most max) with the valid file keys seen; how many. */
size_t	config_parse_files(const struct config_parser *p,
	    struct config_file_ref *out, size_t max);

/* ---- config_file.c ----------------------------------------------------- */

/*
 * Read and parse a file, then check the files it names (existence,
 * permissions of secret files).  0 when valid; else -1 and every error,
 * one "file:line: ..." per line, in err (GRGW_CONFIG_ERR_MAX bytes hold
 * them all).
 */
#define GRGW_CONFIG_ERR_MAX	(32 * 1024)
int	config_load(const char *path, struct grgw_config *out, char *err,
	    size_t errlen);
/* Site's runtime directory: <run_dir>/<site name>. */
void	config_site_dir(const struct grgw_config *cfg, char *buf, size_t size);
const char *config_dataplane_name(enum grgw_dataplane dp);
/* "90", "90s", "30m", "4h", "1d" as seconds; 0, -1 (not a duration) or
 * -2 (too large). */
int	config_parse_duration(const char *v, uint32_t *out);
/* "grgw", "icmp", "off"; static strings. */
const char *config_probes_name(enum grgw_probes m);

/* ---- cert.c ------------------------------------------------------------ */

/*
 * The validity period of a certificate named in [auth], for status,
 * /metrics and messages.  charon authenticates; this only reports.
 */
struct cert_info {
	time_t		not_before;		/* UTC seconds */
	time_t		not_after;
	char		subject[256];		/* OpenSSL's one-line form */
};

enum cert_state {
	CERT_VALID,
	CERT_EXPIRES_SOON,	/* within the configured warning time */
	CERT_EXPIRED,
	CERT_NOT_YET_VALID,
};

/*
 * Parse the first certificate of len bytes of PEM (or DER) at buf; reads
 * nothing outside them.  0, or -1 with err set (ci zeroed).
 */
int	cert_parse(const uint8_t *buf, size_t len, struct cert_info *ci,
	    char *err, size_t errlen);
/* The same from a file (at most 1 MiB); err names the file. */
int	cert_read_file(const char *path, struct cert_info *ci, char *err,
	    size_t errlen);
/* Where the certificate stands at now, warning warn_days ahead (pure). */
enum cert_state cert_state_at(const struct cert_info *ci, time_t now,
	    unsigned warn_days);
/* "valid", "expires-soon", "expired", "not-yet-valid"; static strings. */
const char *cert_state_name(enum cert_state s);
/* t as 2026-12-31T23:59:59Z into buf; returns buf. */
char	*cert_time_fmt(time_t t, char *buf, size_t size);

/* ---- psk.c (pure) and secret.c (files) --------------------------------- */

/*
 * Pre-shared keys: one line of standard base64 holding GRGW_PSK_MIN to
 * GRGW_PSK_MAX bytes.  psk_load() (secret.c) refuses files that group or
 * others can read or write, or that are not regular files.  The key is
 * returned in sodium_malloc'ed memory that the caller releases with
 * psk_free().
 */
struct grgw_psk {
	uint8_t		*key;		/* sodium_malloc'ed */
	size_t		len;
};
int	psk_load(const char *path, struct grgw_psk *out, char *err, size_t errlen);
/*
 * A whole secret file of at most max bytes (a private key), after the
 * checks of secret_file_check(), into sodium_malloc'ed memory: out->key
 * holds the bytes as they are (not decoded); psk_free() releases them.
 */
int	secret_read(const char *path, size_t max, struct grgw_psk *out,
	    char *err, size_t errlen);
/* Decode one line of text (pure); 0 or -1 with err set. */
int	psk_decode(const char *text, size_t len, struct grgw_psk *out,
	    char *err, size_t errlen);
void	psk_free(struct grgw_psk *psk);
/* New random key as base64 text, NUL-terminated, into buf (>= 100 bytes). */
int	psk_generate(char *buf, size_t size);
/* 0 if path is a regular file not accessible by group/other; else -1, err. */
int	secret_file_check(const char *path, char *err, size_t errlen);

#endif /* GRGW_H */
