/*
 * ipsec/: grgw's private charon and what it is told.
 *
 * charon.c supervises one charon process per site: it writes the
 * strongswan.conf, starts charon in a private mount namespace (its pid file
 * is fixed at /run/charon.pid, so charon gets a /run of its own and never
 * meets a strongSwan the host already runs), restarts it with backoff if
 * it dies, and stops it on request.
 *
 * ike.c holds the conversation with that charon over VICI and reports
 * what it learns through one callback.
 *
 * conn.c turns the configuration into VICI messages (pure).
 */
#ifndef GRGW_IPSEC_H
#define GRGW_IPSEC_H

#include <sys/types.h>
#include <netinet/in.h>

#include <stdint.h>

#include "grgw.h"

struct event_base;
struct vici_builder;

#define GRGW_CONN_NAME		"grgw"	/* the tunnel's IKE config */
#define GRGW_VERIFY_NAME	"grgw-verify"	/* proves new credentials */
/*
 * A planned handover made before it breaks: the incoming gateway's
 * IKE_SA from its own WAN address ([pair] own_wan_address), without
 * CHILD_SAs; the other site, which knows that address as one of its
 * [peer] gateway lines (GRGW_GATEWAYS_NAME there), adds them to it.
 */
#define GRGW_READY_NAME		"grgw-ready"
#define GRGW_GATEWAYS_NAME	"grgw-gateways"

/*
 * How long charon may take to answer over VICI before it is taken for
 * hung, killed and restarted.  Every command but initiate is answered at
 * once by a healthy charon.  initiate is answered only when the IKE and
 * CHILD_SA exchanges end: charon is told to give up waiting after
 * IKE_INITIATE_WAIT_MS (its retransmissions, 1 s growing by 1.4 over 4
 * tries, end after about 16 s per exchange, 33 s for the two), and the
 * deadline leaves it VICI_DEADLINE_MS more than that.
 */
#define VICI_DEADLINE_MS	5000
#define IKE_INITIATE_WAIT_MS	40000
#define IKE_INITIATE_DEADLINE_MS (IKE_INITIATE_WAIT_MS + VICI_DEADLINE_MS)

/* ---- charon.c --------------------------------------------------------- */

struct charon;

/*
 * Called on the loop when charon has been (re)started (running = 1) or has
 * exited (running = 0; a restart is then scheduled unless stopping).
 */
typedef void (*charon_state_cb)(int running, void *arg);

/*
 * cfg and site_dir are borrowed and must outlive the supervisor.
 * dp must be GRGW_DP_KERNEL or GRGW_DP_LIBIPSEC.
 */
struct charon *charon_new(struct event_base *base,
	    const struct grgw_config *cfg, const char *site_dir,
	    enum grgw_dataplane dp, charon_state_cb cb, void *arg);
/* Write strongswan.conf and start charon; 0 or -1 (logged). */
int	charon_start(struct charon *c);
/* Stop charon (SIGTERM, then SIGKILL after a grace period); blocking but
 * bounded (at most ~3 s); no restart follows. */
void	charon_stop(struct charon *c);
/*
 * charon stopped answering (why says how, for the log): SIGKILL it.  Its
 * exit is then handled like any other (callback, restart with backoff).
 */
void	charon_kill(struct charon *c, const char *why);
void	charon_free(struct charon *c);			/* accepts NULL */
pid_t	charon_pid(const struct charon *c);		/* 0 if not running */
unsigned charon_restarts(const struct charon *c);
/* 1 while charon dies in a loop: its next restart waits (see below). */
int	charon_crash_loop(const struct charon *c);
/* ms until the scheduled restart; 0 when none is pending. */
unsigned charon_restart_delay_ms(const struct charon *c);
/* unix socket path of charon's VICI plugin (inside site_dir). */
const char *charon_vici_path(const struct charon *c);

/*
 * Write the strongswan.conf text for a site into buf (pure).  Returns the
 * length, or -1 if it does not fit.
 */
int	charon_conf_render(const struct grgw_config *cfg, const char *site_dir,
	    enum grgw_dataplane dp, char *buf, size_t size);

/*
 * When charon is restarted: at once, unless it died CHARON_LOOP_DEATHS
 * times within CHARON_LOOP_WINDOW_S (the network process's rule, see
 * gw/proc.c); in such a crash loop each death doubles the wait, from
 * CHARON_BACKOFF_MIN_MS to CHARON_BACKOFF_MAX_MS.  Pure, over the times of
 * the last deaths (monotonic seconds), so that unit tests drive it.
 */
#define CHARON_LOOP_DEATHS	10
#define CHARON_LOOP_WINDOW_S	10
#define CHARON_BACKOFF_MIN_MS	250
#define CHARON_BACKOFF_MAX_MS	30000

struct charon_deaths {
	time_t		at[CHARON_LOOP_DEATHS];	/* ring of death times */
	unsigned	n;			/* deaths recorded */
	unsigned	backoff_ms;		/* the last wait given */
};

/* Record a death at now; returns how long to wait before the restart. */
unsigned charon_deaths_record(struct charon_deaths *d, time_t now);
/* 1 if the last deaths, seen at now, make a crash loop. */
int	charon_deaths_loop(const struct charon_deaths *d, time_t now);

/* Kill a charon left behind by a daemon that died (pid file in site_dir). */
void	charon_kill_stale(const char *site_dir);

/* ---- ike.c ------------------------------------------------------------- */

struct ike;

/* One ESTABLISHED IKE_SA, as far as duplicates go. */
struct ike_sa_ref {
	unsigned	uniqueid;		/* charon's, for terminate */
	int		conn;			/* enum conn_kind */
	int		we_initiated;
	char		initiator_spi[17];	/* hex, the same at both ends */
	int		n_child;		/* its CHILD_SAs, any state */
};
#define IKE_SAS_REFS	4

/*
 * One CHILD_SA per pair of prefixes of one family (site x peer), named
 * "LOCAL=REMOTE" ("198.18.1.0/24=198.18.2.0/24").  Adding or removing a
 * prefix then adds or deletes the CHILD_SAs of its pairs and leaves every
 * other one alone: no traffic moves to a new SA, which is where packets
 * are lost (the end that answers a CREATE_CHILD_SA sends on the new SA
 * before the other end has read the answer).  libreswan splits
 * connections the same way.
 */
#define CONN_PAIR_NAME_MAX	(2 * (INET6_ADDRSTRLEN + 4) + 2)

/* A CHILD_SA: its pair's name, id and SPIs (hex, as charon says them). */
struct child_sa_ref {
	char		name[CONN_PAIR_NAME_MAX];
	int		conn;			/* its IKE_SA's enum conn_kind */
	unsigned	uniqueid;
	char		spi_in[9];
	char		spi_out[9];
	int		installed;	/* INSTALLED; else being set up, rekeyed
					   or deleted */
};
/* Every pair's CHILD_SA, twice over while they are rekeyed. */
#define IKE_CHILD_REFS	(2 * GRGW_MAX_PAIRS)

/* What charon holds, from the last complete list-sas. */
struct ike_sas {
	struct ike_sa_ref est[IKE_SAS_REFS];	/* the first ESTABLISHED ones */
	int		n_est;
	int		ike_established;	/* IKE_SAs ESTABLISHED */
	int		ike_any;		/* any IKE_SA at all */
	int		child_installed;	/* CHILD_SAs INSTALLED */
	struct child_sa_ref child[IKE_CHILD_REFS];	/* the first ones */
	int		n_child;
	/* Pairs of the configuration without any CHILD_SA, and the first. */
	int		pairs, pairs_missing;
	char		missing[CONN_PAIR_NAME_MAX];
	/*
	 * A planned handover: an IKE_SA of GRGW_READY_NAME established
	 * with a CHILD_SA installed for every pair (this gateway is ready
	 * to take the role without an IKE exchange); the uniqueid of an
	 * IKE_SA of GRGW_GATEWAYS_NAME the peer started without CHILD_SAs
	 * (0: none), to which this end adds them.
	 */
	int		ready_complete;
	unsigned	gateways_bare;
	char		ike_state[32];		/* charon's names, "" if none */
	char		child_state[32];
	uint64_t	bytes_in, bytes_out, packets_in, packets_out;
};

enum ike_what {
	IKE_READY,	/* credentials and connection loaded into charon */
	IKE_SAS,	/* a fresh view of the SAs (or of initiating) */
	IKE_FAILED,	/* error says what; auth_failed for credentials */
	IKE_HUNG,	/* charon missed a deadline (error says which): it
			   must be killed; the conversation is dropped */
	IKE_PROVED,	/* new credentials proved (proved = 1) or refused
			   (0; asked again every IKE_PROVE_RETRY_S) */
	IKE_CHILD_UP,	/* charon says a CHILD_SA came up (the view of the
			   SAs follows as IKE_SAS) */
};

/* Borrowed, valid during the callback only. */
struct ike_news {
	enum ike_what	 what;
	const struct ike_sas *sas;
	const char	*error;		/* IKE_FAILED, IKE_HUNG */
	int		 auth_failed;	/* IKE_FAILED: refused credentials */
	int		 proved;	/* IKE_PROVED */
};
#define IKE_PROVE_RETRY_S	30

/*
 * Runs on the loop, from inside the module: it may call the ike_*()
 * functions below, but not ike_free().
 */
typedef void (*ike_cb)(const struct ike_news *news, void *arg);
typedef void (*ike_done_cb)(void *arg);

/* cfg and vici_path are borrowed and must outlive it.  NULL on ENOMEM. */
struct ike *ike_new(struct event_base *base, const struct grgw_config *cfg,
	    enum grgw_dataplane dp, const char *vici_path, ike_cb cb,
	    void *arg);
/* charon (re)started: connect (retrying until its socket answers), load
 * everything and initiate. */
void	ike_charon_started(struct ike *k);
/* charon is gone: drop the connection, forget its SAs (reported). */
void	ike_charon_exited(struct ike *k);
/* An operator asks: initiate now rather than after the backoff. */
void	ike_initiate_now(struct ike *k);
/* List the SAs again (the answer comes as IKE_SAS). */
void	ike_refresh(struct ike *k);
/* The tunnel carries traffic: the next failure starts a fresh backoff. */
void	ike_tunnel_verified(struct ike *k);
/*
 * Stop initiating for good and delete the IKE_SA (the peer learns at
 * once); done runs when charon answered.  -1 when there is nothing to
 * delete or no connection (done is not called).
 */
int	ike_terminate(struct ike *k, ike_done_cb done, void *arg);
/*
 * The SAs exist but carry nothing while the peer's WAN answers: delete
 * them and initiate again at once, without waiting for charon's dead-peer
 * detection.  0, or -1 when there is nothing to do now (no IKE_SA, an
 * initiation running, stopping).
 */
int	ike_reestablish(struct ike *k);
/*
 * [pair], a planned handover to this (standby) gateway: start the IKE_SA
 * of GRGW_READY_NAME, from [pair] own_wan_address, without CHILD_SAs;
 * the other site's active gateway adds them (GRGW_GATEWAYS_NAME there),
 * and ike_sas()->ready_complete says when every pair has one.  0 (under
 * way, or up already), -1 (no own_wan_address, charon not ready).
 * ike_unprepare(): delete it again (the handover did not come).
 */
int	ike_prepare(struct ike *k);
void	ike_unprepare(struct ike *k);
/*
 * Delete every IKE_SA now, telling the peer, and initiate nothing until
 * ike_set_active() (a planned handover: the peer sends on the incoming
 * gateway's SAs already, and learns from the floating WAN address,
 * before it goes, that these are gone).  done runs once charon has the
 * peer's answers, or wait_ms after each DELETE.  0, or -1 (nothing to
 * delete, one under way; done is not called).
 */
int	ike_close_now(struct ike *k, unsigned wait_ms, ike_done_cb done,
	    void *arg);
/*
 * The configuration k borrows holds new settings (a reload).  keys: load
 * the pre-shared keys again (the primary and the next one; see
 * conn_build_load_shared()) and, if the primary changed, prove it with a
 * second IKE_SA (ike_verify() in ike.c), again every IKE_PROVE_RETRY_S
 * while the peer refuses it.  selectors: load the connection
 * again; the CHILD_SAs of new pairs of prefixes are added and those of
 * pairs gone deleted, the others stay.  Nothing to do while charon is
 * not ready: its next load reads the new settings.
 */
/* 1 when a new primary pre-shared key is being proved (IKE_PROVED tells
 * the outcome), else 0. */
int	ike_reconfigure(struct ike *k, int selectors, int keys);
/*
 * Certificate rotation (for `grgw reload`): read the certificate, key and
 * CA files of [auth] again, replace what charon holds with them, and
 * prove them with a second IKE_SA; the tunnel's SAs are not touched.  0
 * when the requests are sent (charon's refusals come as IKE_FAILED), -1
 * when there is nothing to reload now (PSK, not connected) or a file
 * cannot be read (IKE_FAILED).
 */
int	ike_reload_creds(struct ike *k);

/* The certificates of [auth] as last loaded into charon. */
struct ike_cert {
	int		valid;		/* parsed: info and state are set */
	struct cert_info info;
	enum cert_state	state;		/* when loaded; see cert_state_at() */
};
struct ike_certs {
	struct ike_cert	local;		/* this gateway's certificate */
	struct ike_cert	ca;
};
/* NULL with a pre-shared key; owned by k. */
const struct ike_certs *ike_certs(const struct ike *k);
/*
 * [pair]: a standby (active 0; how every ike of a pair starts) initiates
 * nothing and closes, at once and without waiting for the peer, every
 * IKE_SA charon holds: they belong to the floating WAN address, which it
 * has just given up.  An active (1) closes whatever charon still holds
 * the same way (so that its new IKE_SA carries INITIAL_CONTACT and the
 * peer drops the old active's SAs at once) and initiates at once.
 */
void	ike_set_active(struct ike *k, int active);
/*
 * [pair]: the addresses gone for a moment under the same epoch (a hold
 * that ran out, not a newer epoch): ike_pause() makes it a standby that
 * initiates nothing but keeps charon's SAs (inert meanwhile: the kernel's
 * hold drops every packet from or to the floating addresses); held
 * again under that epoch, ike_resume() makes it active with them, and
 * initiates only what is missing.
 */
void	ike_pause(struct ike *k);
void	ike_resume(struct ike *k);
int	ike_ready(const struct ike *k);
int	ike_initiating(const struct ike *k);
const struct ike_sas *ike_sas(const struct ike *k);	/* owned by k */
void	ike_free(struct ike *k);			/* accepts NULL */

/* ---- conn.c (pure) ---------------------------------------------------- */

/*
 * Each builder returns a new VICI request owned by the caller
 * (vici_builder_free()), or NULL on allocation failure.
 */
/* load-shared: the pre-shared key for the two identities. */
/*
 * A pre-shared key for charon.  The primary one (next = 0) names both
 * identities; the next one of a rotation (next = 1) names the peer's
 * only, so that charon accepts it from the peer but never picks it for
 * our own authentication (it prefers the key that matches both ends).
 */
struct vici_builder *conn_build_load_shared(const struct grgw_config *cfg,
	    const uint8_t *key, size_t keylen, int next);
struct vici_builder *conn_build_unload_shared(int next);
struct vici_builder *conn_build_terminate_child(unsigned uniqueid);
/*
 * The next certificate of a PEM bundle (a CA file may hold several, as
 * during a CA rotation): from *off on, one "-----BEGIN CERTIFICATE-----"
 * block to the end of its END line, as *cert (pointing into pem) and
 * *len; *off moves past it.  1, or 0 when none is left.  Bytes without
 * any PEM marker (DER) are one certificate, the whole of them.  Pure.
 */
int	conn_pem_next_cert(const uint8_t *pem, size_t pem_len, size_t *off,
	    const uint8_t **cert, size_t *len);
/* load-cert (X509 end entity or CA) from PEM bytes (one certificate). */
struct vici_builder *conn_build_load_cert(const uint8_t *pem, size_t len,
	    int is_ca);
/* load-key from PEM bytes (any key type). */
struct vici_builder *conn_build_load_key(const uint8_t *pem, size_t len);
/*
 * load-conn: IKEv2 between the WAN addresses, AES-GCM with X25519, DPD,
 * rekeying, one CHILD_SA per pair of prefixes (conn_pair()); in kernel
 * mode they are bound to the xfrm interface's if_id.  kind:
 *   CONN_MAIN      GRGW_CONN_NAME, between the site's WAN addresses
 *   CONN_VERIFY    GRGW_VERIFY_NAME, an IKE_SA without CHILD_SAs that
 *                  proves the credentials loaded now (a key or
 *                  certificate rotation)
 *   CONN_READY     GRGW_READY_NAME, from [pair] own_wan_address, started
 *                  without CHILD_SAs, never sending INITIAL_CONTACT (which
 *                  would make the peer drop the active partner's SAs)
 *   CONN_GATEWAYS  GRGW_GATEWAYS_NAME, to the [peer] gateway addresses:
 *                  what the other side's CONN_READY meets
 */
enum conn_kind { CONN_MAIN, CONN_VERIFY, CONN_READY, CONN_GATEWAYS };
struct vici_builder *conn_build_load_conn(const struct grgw_config *cfg,
	    enum grgw_dataplane dp, enum conn_kind kind);
/*
 * The lifetimes load-conn gives charon: cfg's [ipsec], with the defaults
 * for values a hand-made config left at 0 (pure).
 */
void	conn_lifetimes(const struct grgw_config *cfg,
	    struct grgw_ipsec_conf *out);
/*
 * One end's rekey timers (charon's rekey_time, rand_time and hard life
 * time, in seconds) for an SA rekeyed after rekey and dead after life.
 * Both ends rekeying at once is a collision: two new SAs, one deleted
 * again, and with libipsec the surviving one carried nothing for seconds
 * (loss seen in the lab).  So the ends split the margin between rekey
 * and life: the earlier-named site rekeys within its first half (at
 * rekey - rand .. rekey), the later-named one only once it is over
 * (at rekey + half, if the other end has not rekeyed by then), both
 * with the same hard life.  A margin under 2 s is not split (pure).
 */
struct conn_rekey_timers {
	uint32_t	rekey, rand, life;
};
void	conn_rekey_timers(uint32_t rekey, uint32_t life, int later,
	    struct conn_rekey_timers *out);
/*
 * The n-th pair of prefixes of one family (0-based, in the order of the
 * configuration): its CHILD_SA's name into name and the prefixes' indexes
 * into *li (site) and *ri (peer), each may be NULL.  0, or -1 past the
 * last pair (or name too short).  Pure.
 */
int	conn_pair(const struct grgw_config *cfg, int n, char *name,
	    size_t len, int *li, int *ri);
int	conn_pair_count(const struct grgw_config *cfg);
/*
 * initiate the connection ike (child NULL: an IKE_SA only); charon
 * answers after timeout_ms at the latest (0: never gives up waiting for
 * the exchanges).
 */
struct vici_builder *conn_build_initiate(const char *ike, const char *child,
	    unsigned timeout_ms);
/* terminate every IKE_SA of the connection ike. */
struct vici_builder *conn_build_terminate(const char *ike);
/* Every IKE_SA of that connection, at once, without waiting for the
 * peer's answer to the DELETE (a standby gives up a floating address's
 * SAs: the DELETE may have no way out). */
struct vici_builder *conn_build_terminate_force(const char *ike);
/* Every IKE_SA of that connection: the DELETE goes out, and charon
 * answers once the peer did, or after timeout_ms (then they go anyway). */
struct vici_builder *conn_build_terminate_wait(const char *ike,
	    unsigned timeout_ms);
struct vici_builder *conn_build_unload_conn(const char *name);
/* Forget every credential loaded over VICI (keys, certificates). */
struct vici_builder *conn_build_clear_creds(void);
/* terminate one IKE_SA (and its CHILD_SAs) by charon's unique id. */
struct vici_builder *conn_build_terminate_ike(unsigned uniqueid);
/*
 * Both gateways initiate at once, so two IKE_SAs may result.  Which one of
 * ours to delete, if any: both ends keep the same one, the one initiated
 * by the site whose name sorts first (we_sort_first says if that is us)
 * with the lowest initiator SPI, and each deletes only the duplicates it
 * initiated itself, so that no SA is deleted from both ends.  Returns an
 * index into s->est, or -1 when there is nothing to delete.
 */
int	conn_duplicate_to_delete(const struct ike_sas *s, int we_sort_first);
/*
 * Both ends added the same pair's CHILD_SA at once (each saw it missing):
 * the pair has two INSTALLED CHILD_SAs, and nothing else would ever
 * remove one (each is rekeyed on its own).  Returns the index into
 * s->child of the one to delete, the newer (higher uniqueid) of a pair's
 * installed ones, or -1.  CHILD_SAs being rekeyed are not INSTALLED, so a
 * rekey is never taken for a duplicate.  Only one end deletes (the one
 * that initiated the IKE_SA: see ike.c).
 */
int	conn_child_duplicate(const struct ike_sas *s);
struct vici_builder *conn_build_list_sas(void);
/* event registration request for one event name */
struct vici_builder *conn_build_register(const char *event);

/*
 * Classify a line of charon's log (control-log events) for failures an
 * operator must see named.  Returns a static reason string such as
 * "authentication failed" or NULL.
 */
const char *conn_classify_log(const char *line);

#endif /* GRGW_IPSEC_H */
