/*
 * grgw: command line.  One binary, one subcommand per verb.  Only this
 * layer prints to the user; exit codes are documented in grgw(8) and the
 * README:
 *   0  success
 *   1  usage or configuration error (nothing was changed)
 *   2  the tunnel is not up: start-up failure, authentication failure or
 *      timeout (the message says which); reload: no daemon runs, or a
 *      change could not be fully applied
 *   3  reload: a change cannot be applied to a running gateway (nothing
 *      was changed; the message names it)
 */
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "grgw.h"
#include "control.h"
#include "daemon.h"
#include "netproc.h"
#include "pairhold.h"
#include "sitelock.h"
#include "status.h"
#include "strbuf.h"
#include "ipsec/ipsec.h"
#include "netlink/netlink.h"

#define EXIT_CONFIG	1
#define EXIT_NOT_UP	2
#define EXIT_REFUSED	3
#define RELOAD_WAIT_MS	20000
#define UP_DEFAULT_TIMEOUT	60
#define STARTUP_WAIT_MS	20000
#define DOWN_WAIT_MS	20000

static const char *progname = "grgw";

static void
usage_all(FILE *f)
{
	fprintf(f,
	    "usage: %s COMMAND [options]\n"
	    "\n"
	    "commands:\n"
	    "  up -c FILE [--timeout SECONDS] [-f]   start the gateway and "
	    "wait for the tunnel\n"
	    "  down -c FILE [--purge]                stop it (fail-closed "
	    "routes stay unless --purge)\n"
	    "  reload -c FILE                        apply an edited file to "
	    "the running gateway\n"
	    "  block -c FILE                         install only the "
	    "fail-closed layer (boot)\n"
	    "  status -c FILE [--json]               daemon, charon and "
	    "tunnel state\n"
	    "  handover -c FILE [--timeout SECONDS]  [pair] give the active "
	    "role to the standby\n"
	    "  check-config -c FILE                  validate a configuration "
	    "file\n"
	    "  keygen                                print a new pre-shared "
	    "key\n"
	    "  keygen --help                         the three steps of a key "
	    "rotation\n"
	    "  version                               print the version\n"
	    "\n"
	    "FILE defaults to %s.\n", progname, GRGW_DEFAULT_CONF);
}

/* Load the configuration, printing every error; 0 or -1. */
static int
load_config(const char *path, struct grgw_config *cfg)
{
	static char errs[GRGW_CONFIG_ERR_MAX];

	if (config_load(path, cfg, errs, sizeof(errs)) == 0)
		return 0;
	if (errs[0] != '\0')
		fputs(errs, stderr);
	else
		fprintf(stderr, "%s: invalid configuration\n", path);
	return -1;
}

struct opts {
	const char	*conf;
	int		json;
	int		purge;
	int		foreground;
	long		timeout;
};

static int
parse_opts(int argc, char **argv, struct opts *o, const char *allowed)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "purge", no_argument, NULL, 'p' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	int ch;

	memset(o, 0, sizeof(*o));
	o->conf = GRGW_DEFAULT_CONF;
	o->timeout = UP_DEFAULT_TIMEOUT;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:jpft:h", longopts, NULL)) !=
	    -1) {
		if (ch != '?' && ch != 'h' && strchr(allowed, ch) == NULL) {
			fprintf(stderr, "%s %s: option not valid here\n",
			    progname, argv[0]);
			return -1;
		}
		switch (ch) {
		case 'c':
			o->conf = optarg;
			break;
		case 'j':
			o->json = 1;
			break;
		case 'p':
			o->purge = 1;
			break;
		case 'f':
			o->foreground = 1;
			break;
		case 't':
			errno = 0;
			o->timeout = strtol(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || o->timeout < 1 ||
			    o->timeout > 86400) {
				fprintf(stderr, "%s %s: --timeout wants a "
				    "number of seconds from 1 to 86400, not "
				    "\"%s\"\n", progname, argv[0], optarg);
				return -1;
			}
			break;
		case 'h':
		default:
			usage_all(ch == 'h' ? stdout : stderr);
			return -1;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "%s %s: unexpected argument \"%s\"\n", progname,
		    argv[0], argv[optind]);
		return -1;
	}
	return 0;
}

/* ---- check-config, keygen, version ------------------------------------- */

static int
cmd_check_config(int argc, char **argv)
{
	struct grgw_config cfg;
	struct opts o;

	if (parse_opts(argc, argv, &o, "c") == -1)
		return EXIT_CONFIG;
	if (load_config(o.conf, &cfg) == -1)
		return EXIT_CONFIG;
	printf("configuration OK\n");
	return 0;
}

static const char keygen_rotation[] =
    "usage: %s keygen > FILE   (a new pre-shared key; keep FILE mode 0600)\n"
    "\n"
    "Rotating the pre-shared key, one site after the other at each step,\n"
    "each step a `grgw reload` at the site (the link does not flap):\n"
    "  1. grgw keygen > /etc/grgw/psk.next on one site, copied to the other;\n"
    "     on both: psk_file stays, add psk_next_file = /etc/grgw/psk.next\n"
    "  2. on both: psk_file = /etc/grgw/psk.next, psk_next_file = the old\n"
    "     key (the site authenticates with the new key from now on and\n"
    "     proves it at once with a second IKE_SA; the tunnel's SAs stay)\n"
    "  3. on both: remove psk_next_file (the old key is refused from now on)\n";

static int
cmd_keygen(int argc, char **argv)
{
	char key[128];

	if (argc == 2 && (strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0)) {
		printf(keygen_rotation, progname);
		return 0;
	}
	if (argc > 1) {
		fprintf(stderr, "%s keygen takes no arguments\n", progname);
		return EXIT_CONFIG;
	}
	if (sodium_init() < 0 || psk_generate(key, sizeof(key)) == -1) {
		fprintf(stderr, "%s keygen: cannot generate a key\n", progname);
		return EXIT_NOT_UP;
	}
	printf("%s\n", key);
	sodium_memzero(key, sizeof(key));
	return 0;
}

static int
cmd_version(int argc, char **argv)
{
	printf("grgw %s\n", GRGW_VERSION);
	return 0;
}

/* ---- status ---------------------------------------------------------------- */

/* What status says when no daemon answers. */
static void
status_offline(const struct grgw_config *cfg, int json)
{
	char dir[PATH_MAX], record[PATH_MAX + 16];
	struct status_view v;
	struct gwnl *nl = NULL;
	struct strbuf sb;

	memset(&v, 0, sizeof(v));
	v.cfg = cfg;
	v.dataplane = cfg->dataplane;
	v.tunnel = TUNNEL_DOWN;
	config_site_dir(cfg, dir, sizeof(dir));
	snprintf(record, sizeof(record), "%s/kernel.record", dir);
	if (access(record, F_OK) == 0 && gwnl_open(record, &nl) == 0) {
		gwnl_record_count(nl, &v.kernel_block, &v.kernel_run);
		gwnl_close(nl);
	}
	strbuf_init(&sb);
	if (json)
		status_render_json(&v, &sb);
	else
		status_render_text(&v, &sb);
	if (!sb.failed)
		fputs(sb.s, stdout);
	strbuf_free(&sb);
}

static int
cmd_status(int argc, char **argv)
{
	struct grgw_config cfg;
	struct strbuf sb;
	struct opts o;
	int fd, rc;

	if (parse_opts(argc, argv, &o, "cj") == -1)
		return EXIT_CONFIG;
	if (load_config(o.conf, &cfg) == -1)
		return EXIT_CONFIG;
	if ((fd = control_connect(&cfg)) == -1) {
		status_offline(&cfg, o.json);
		return 0;
	}
	strbuf_init(&sb);
	rc = control_request(fd, o.json ? "status json\n" : "status text\n",
	    &sb, 5000);
	close(fd);
	if (rc == -1 || sb.len == 0) {
		fprintf(stderr, "%s status: the daemon did not answer\n",
		    progname);
		strbuf_free(&sb);
		return EXIT_NOT_UP;
	}
	fputs(sb.s, stdout);
	strbuf_free(&sb);
	return 0;
}

/* ---- up ------------------------------------------------------------------------ */

static long long
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- handover ---------------------------------------------------------------- */

/* The daemon's "role" line into buf; 0, or -1 when it does not answer. */
static int
role_line(const struct grgw_config *cfg, char *buf, size_t size)
{
	struct strbuf sb;
	int fd, rc;

	if ((fd = control_connect(cfg)) == -1)
		return -1;
	strbuf_init(&sb);
	rc = control_request(fd, "role\n", &sb, 3000);
	close(fd);
	if (rc == 0 && sb.s != NULL)
		snprintf(buf, size, "%.*s", (int)strcspn(sb.s, "\n"), sb.s);
	else
		rc = -1;
	strbuf_free(&sb);
	return rc;
}

/*
 * Ask the active gateway to hand the role over, then follow it until
 * this gateway has let the addresses go and its partner says active.
 */
static int
cmd_handover(int argc, char **argv)
{
	struct grgw_config cfg;
	struct strbuf sb;
	struct opts o;
	struct timespec pause = { 0, 20 * 1000 * 1000 };
	char line[128], role[32], held[16], partner[32];
	unsigned long long epoch;
	long long start;
	int fd, rc;

	if (parse_opts(argc, argv, &o, "ct") == -1)
		return EXIT_CONFIG;
	if (load_config(o.conf, &cfg) == -1)
		return EXIT_CONFIG;
	if ((fd = control_connect(&cfg)) == -1) {
		fprintf(stderr, "%s handover: no gateway runs for site %s\n",
		    progname, cfg.site.name);
		return EXIT_NOT_UP;
	}
	strbuf_init(&sb);
	rc = control_request(fd, "handover\n", &sb, 5000);
	close(fd);
	if (rc != 0 || sb.s == NULL || strncmp(sb.s, "ok", 2) != 0) {
		fprintf(stderr, "%s handover: %s", progname, rc != 0 ||
		    sb.s == NULL ? "the daemon did not answer\n" :
		    strncmp(sb.s, "error ", 6) == 0 ? sb.s + 6 : sb.s);
		strbuf_free(&sb);
		return EXIT_NOT_UP;
	}
	strbuf_free(&sb);
	snprintf(line, sizeof(line), "not answering");
	start = mono_ms();
	while (mono_ms() - start < o.timeout * 1000) {
		if (role_line(&cfg, line, sizeof(line)) == 0 &&
		    sscanf(line, "%31s %llu %15s %31s", role, &epoch, held,
		    partner) == 4 && strcmp(role, "active") != 0 &&
		    strcmp(held, "free") == 0 && strcmp(partner, "active") == 0) {
			printf("%s: handed over; the partner is active "
			    "(epoch %llu), this gateway is %s\n",
			    cfg.site.name, epoch, role);
			return 0;
		}
		nanosleep(&pause, NULL);
	}
	fprintf(stderr, "%s handover: the partner has not taken the role "
	    "after %ld s (this gateway: %s); see the log\n", progname,
	    o.timeout, line);
	return EXIT_NOT_UP;
}

/*
 * Start the daemon in the background: double fork, new session, logs to
 * <site dir>/grgw.log.  The daemon reports start-up success or failure on
 * a pipe; returns 0 if it started, -1 after printing why not.
 */
static int
spawn_daemon(const struct grgw_config *cfg)
{
	char dir[PATH_MAX], logpath[PATH_MAX + 16], line[1024];
	struct pollfd pfd;
	size_t len = 0;
	ssize_t n;
	pid_t pid;
	int p[2], status;

	config_site_dir(cfg, dir, sizeof(dir));
	snprintf(logpath, sizeof(logpath), "%s/grgw.log", dir);
	if (pipe2(p, O_CLOEXEC) == -1) {
		perror("pipe");
		return -1;
	}
	fflush(NULL);
	if ((pid = fork()) == -1) {
		perror("fork");
		return -1;
	}
	if (pid == 0) {
		int fd, code;

		close(p[0]);
		setsid();
		if ((pid = fork()) != 0)
			_exit(pid == -1 ? 1 : 0);
		/* The directory may not exist yet: the daemon makes it. */
		if (mkdir(cfg->run_dir, 0755) == -1 && errno != EEXIST) {
			dprintf(p[1], "error cannot create run_dir %s: %s\n",
			    cfg->run_dir, strerror(errno));
			_exit(1);
		}
		if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
			dprintf(p[1], "error cannot create %s: %s\n", dir,
			    strerror(errno));
			_exit(1);
		}
		fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC |
		    O_NOFOLLOW, 0600);
		if (fd == -1) {
			dprintf(p[1], "error cannot open the log %s: %s\n",
			    logpath, strerror(errno));
			_exit(1);
		}
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		close(fd);
		if ((fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0) {
			dup2(fd, STDIN_FILENO);
			close(fd);
		}
		if (chdir("/") == -1)
			_exit(1);
		code = daemon_run(cfg, p[1]);
		_exit(code);
	}
	close(p[1]);
	waitpid(pid, &status, 0);
	pfd.fd = p[0];
	pfd.events = POLLIN;
	while (len < sizeof(line) - 1) {
		if (poll(&pfd, 1, STARTUP_WAIT_MS) <= 0)
			break;
		n = read(p[0], line + len, sizeof(line) - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(p[0]);
	line[len] = '\0';
	line[strcspn(line, "\n")] = '\0';
	if (strcmp(line, "ok") == 0)
		return 0;
	if (strncmp(line, "error ", 6) == 0)
		fprintf(stderr, "%s up: %s\n", progname, line + 6);
	else
		fprintf(stderr, "%s up: the daemon did not start; see %s\n",
		    progname, logpath);
	return -1;
}

/* Last error the daemon knows, for a timeout message. */
static void
print_not_up_reason(const struct grgw_config *cfg)
{
	struct strbuf sb;
	char *p, *e;
	int fd;

	if ((fd = control_connect(cfg)) == -1)
		return;
	strbuf_init(&sb);
	if (control_request(fd, "status text\n", &sb, 3000) == 0 &&
	    sb.s != NULL) {
		for (p = sb.s; (e = strchr(p, '\n')) != NULL; p = e + 1) {
			*e = '\0';
			if (strstr(p, "tunnel:") != NULL ||
			    strstr(p, "last error:") != NULL)
				fprintf(stderr, "%s\n", p);
		}
	}
	strbuf_free(&sb);
	close(fd);
}

static int
cmd_up(int argc, char **argv)
{
	struct grgw_config cfg;
	struct strbuf sb;
	struct opts o;
	long long start;
	int fd, rc, started = 0;

	if (parse_opts(argc, argv, &o, "cft") == -1)
		return EXIT_CONFIG;
	if (load_config(o.conf, &cfg) == -1)
		return EXIT_CONFIG;
	log_init("grgw", cfg.log_level);

	if (o.foreground) {
		if ((fd = control_connect(&cfg)) != -1) {
			close(fd);
			fprintf(stderr, "%s up: a daemon for site %s is already "
			    "running\n", progname, cfg.site.name);
			return EXIT_NOT_UP;
		}
		return daemon_run(&cfg, -1);
	}

	start = mono_ms();
	if ((fd = control_connect(&cfg)) == -1) {
		if (spawn_daemon(&cfg) == -1)
			return EXIT_NOT_UP;
		started = 1;
		if ((fd = control_connect(&cfg)) == -1) {
			fprintf(stderr, "%s up: the daemon started but its "
			    "control socket does not answer\n", progname);
			return EXIT_NOT_UP;
		}
	}
	strbuf_init(&sb);
	rc = control_request(fd, "up\n", &sb,
	    (int)(o.timeout * 1000 - (mono_ms() - start)));
	close(fd);
	if (rc == 0 && sb.s != NULL && strncmp(sb.s, "ok", 2) == 0) {
		printf("%s", sb.s + (sb.s[2] == ' ' ? 3 : 2));
		strbuf_free(&sb);
		return 0;
	}
	if (rc == 0 && sb.s != NULL && strncmp(sb.s, "error ", 6) == 0) {
		fprintf(stderr, "%s up: %s", progname, sb.s + 6);
	} else {
		fprintf(stderr, "%s up: the tunnel to %s is not up after %ld "
		    "s (timeout)\n", progname, cfg.peer.name, o.timeout);
		print_not_up_reason(&cfg);
	}
	fprintf(stderr, "%s up: the daemon %s and keeps trying; traffic to "
	    "%s stays blocked until the tunnel is up (`grgw down` stops "
	    "it)\n", progname, started ? "was started" : "is running",
	    cfg.peer.name);
	strbuf_free(&sb);
	return EXIT_NOT_UP;
}

/* ---- down ---------------------------------------------------------------------- */

static int
cmd_down(int argc, char **argv)
{
	char dir[PATH_MAX], record[PATH_MAX + 16], err[PATH_MAX + 128];
	struct grgw_config cfg;
	struct gwnl *nl = NULL;
	struct strbuf sb;
	struct opts o;
	int fd, lock = -1, rc = 0, n;

	if (parse_opts(argc, argv, &o, "cp") == -1)
		return EXIT_CONFIG;
	if (load_config(o.conf, &cfg) == -1)
		return EXIT_CONFIG;
	log_init("grgw", LOG_LVL_WARN);
	if ((fd = control_connect(&cfg)) != -1) {
		strbuf_init(&sb);
		rc = control_request(fd, o.purge ? "down purge\n" : "down\n",
		    &sb, DOWN_WAIT_MS);
		close(fd);
		if (rc == 0 && sb.s != NULL && strncmp(sb.s, "ok", 2) == 0) {
			printf("%s: stopped%s\n", cfg.site.name, o.purge ?
			    "; all kernel state removed" : "; traffic to the "
			    "peer prefixes stays blocked (fail closed)");
			strbuf_free(&sb);
			return 0;
		}
		fprintf(stderr, "%s down: %s", progname, rc == 0 && sb.s ?
		    sb.s : "the daemon did not confirm; cleaning up directly\n");
		strbuf_free(&sb);
	}
	/*
	 * No daemon (or it did not answer): undo from the record, holding
	 * the site lock, so that nothing is removed under a live daemon.
	 */
	config_site_dir(&cfg, dir, sizeof(dir));
	if (access(dir, F_OK) == 0 &&
	    site_lock(dir, cfg.site.name, &lock, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s down: %s%s\n", progname, err,
		    errno == EWOULDBLOCK ? ", but it does not answer; nothing "
		    "was removed (stop that process, then run grgw down "
		    "again)" : "");
		return EXIT_NOT_UP;
	}
	charon_kill_stale(dir);
	snprintf(record, sizeof(record), "%s/kernel.record", dir);
	if (gwnl_open(record, &nl) != 0) {
		fprintf(stderr, "%s down: cannot open netlink\n", progname);
		site_unlock(dir, &lock);
		return EXIT_NOT_UP;
	}
	rc = gwnl_cleanup(nl, o.purge);
	gwnl_close(nl);
	/* [pair]: a daemon killed with its janitor left them. */
	if (cfg.pair.enabled && (n = pairhold_clear(&cfg, err,
	    sizeof(err))) != 0) {
		if (n > 0)
			printf("%s: %d floating address(es) removed\n",
			    cfg.site.name, n);
		else
			fprintf(stderr, "%s down: [pair] floating addresses: "
			    "%s\n", progname, err);
	}
	site_unlock(dir, &lock);
	if (rc != 0) {
		fprintf(stderr, "%s down: some kernel objects could not be "
		    "removed (listed in %s)\n", progname, record);
		return EXIT_NOT_UP;
	}
	printf("%s: not running; %s\n", cfg.site.name, o.purge ?
	    "all kernel state removed" : "fail-closed routes kept");
	return 0;
}

/* ---- reload -------------------------------------------------------------------- */

/*
 * The file is checked here first (every error printed), then again by
 * the daemon, which applies what changed or refuses it as a whole.
 */
static int
cmd_reload(int argc, char **argv)
{
	char path[PATH_MAX], req[PATH_MAX + 16];
	struct grgw_config cfg;
	struct strbuf sb;
	struct opts o;
	const char *body;
	int fd, rc;

	if (parse_opts(argc, argv, &o, "c") == -1)
		return EXIT_CONFIG;
	if (load_config(o.conf, &cfg) == -1)
		return EXIT_CONFIG;
	/* The daemon's working directory is not ours. */
	if (realpath(o.conf, path) == NULL) {
		fprintf(stderr, "%s reload: %s: %s\n", progname, o.conf,
		    strerror(errno));
		return EXIT_CONFIG;
	}
	if ((size_t)snprintf(req, sizeof(req), "reload %s\n", path) >= 250) {
		fprintf(stderr, "%s reload: %s: path too long\n", progname,
		    path);
		return EXIT_CONFIG;
	}
	if ((fd = control_connect(&cfg)) == -1) {
		fprintf(stderr, "%s reload: no gateway runs for site %s; start "
		    "it with `grgw up`\n", progname, cfg.site.name);
		return EXIT_NOT_UP;
	}
	strbuf_init(&sb);
	rc = control_request(fd, req, &sb, RELOAD_WAIT_MS);
	close(fd);
	if (rc != 0 || sb.s == NULL) {
		fprintf(stderr, "%s reload: the daemon did not answer\n",
		    progname);
		strbuf_free(&sb);
		return EXIT_NOT_UP;
	}
	body = strchr(sb.s, '\n') != NULL ? strchr(sb.s, '\n') + 1 : "";
	if (strncmp(sb.s, "ok", 2) == 0) {
		printf("%s: %.*s\n", cfg.site.name, (int)(body > sb.s + 3 ?
		    body - 1 - (sb.s + 3) : 0), sb.s + 3);
		fputs(body, stdout);
		rc = 0;
	} else {
		fprintf(stderr, "%s reload: %s", progname, sb.s);
		rc = strncmp(sb.s, "invalid", 7) == 0 ? EXIT_CONFIG :
		    strncmp(sb.s, "refused", 7) == 0 ? EXIT_REFUSED :
		    EXIT_NOT_UP;
	}
	strbuf_free(&sb);
	return rc;
}

/* ---- block ---------------------------------------------------------------------- */

/*
 * The fail-closed layer alone (both of its layers), for boot: run before
 * the network comes up, it keeps a gateway with forwarding on from
 * passing anything in clear until `grgw up`.  Idempotent; a running
 * daemon already keeps it.
 */
static int
cmd_block(int argc, char **argv)
{
	char dir[PATH_MAX], record[PATH_MAX + 16], err[PATH_MAX + 128];
	struct grgw_config cfg;
	struct gwnl *nl = NULL;
	struct opts o;
	int lock = -1, rc;

	if (parse_opts(argc, argv, &o, "c") == -1)
		return EXIT_CONFIG;
	if (load_config(o.conf, &cfg) == -1)
		return EXIT_CONFIG;
	log_init("grgw", LOG_LVL_WARN);
	config_site_dir(&cfg, dir, sizeof(dir));
	if ((mkdir(cfg.run_dir, 0755) == -1 && errno != EEXIST) ||
	    (mkdir(dir, 0700) == -1 && errno != EEXIST)) {
		fprintf(stderr, "%s block: cannot create %s: %s\n", progname,
		    dir, strerror(errno));
		return EXIT_NOT_UP;
	}
	if (site_lock(dir, cfg.site.name, &lock, err, sizeof(err)) == -1) {
		if (errno == EWOULDBLOCK) {
			printf("%s: grgw is running; it keeps the fail-closed "
			    "layer\n", cfg.site.name);
			return 0;
		}
		fprintf(stderr, "%s block: %s\n", progname, err);
		return EXIT_NOT_UP;
	}
	snprintf(record, sizeof(record), "%s/kernel.record", dir);
	if (gwnl_open(record, &nl) != 0) {
		fprintf(stderr, "%s block: cannot open netlink or read %s\n",
		    progname, record);
		site_unlock(dir, &lock);
		return EXIT_NOT_UP;
	}
	/* Every piece that goes in protects something: try them all. */
	rc = gwnl_wanblock_install(nl, &cfg);
	rc = gwnl_block_install(nl, &cfg) != 0 ? -1 : rc;
	rc = gwnl_failfast_install(nl, &cfg) != 0 ? -1 : rc;
	if (rc != 0) {
		fprintf(stderr, "%s block: the fail-closed layer is not "
		    "complete%s (see the messages above)\n", progname,
		    gwnl_record_unsaved(nl) != 0 ? " or not recorded" : "");
		gwnl_close(nl);
		site_unlock(dir, &lock);
		return EXIT_NOT_UP;
	}
	gwnl_close(nl);
	site_unlock(dir, &lock);
	printf("%s: traffic to and from the peer prefixes is blocked until "
	    "the tunnel is up (fail closed)\n", cfg.site.name);
	return 0;
}

static const struct {
	const char	*name;
	int		(*fn)(int, char **);
} commands[] = {
	{ "up", cmd_up },
	{ "down", cmd_down },
	{ "reload", cmd_reload },
	{ "handover", cmd_handover },
	{ "block", cmd_block },
	{ "status", cmd_status },
	{ "check-config", cmd_check_config },
	{ "keygen", cmd_keygen },
	{ "version", cmd_version },
};

int
main(int argc, char **argv)
{
	size_t i;

	if (argc < 2) {
		usage_all(stderr);
		return EXIT_CONFIG;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage_all(stdout);
		return 0;
	}
	if (strcmp(argv[1], NETPROC_ARG) == 0)
		return netproc_main(argc - 1, argv + 1);
	for (i = 0; i < nitems(commands); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "%s: unknown command \"%s\"\n", progname, argv[1]);
	usage_all(stderr);
	return EXIT_CONFIG;
}
