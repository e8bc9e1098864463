/*
 * Driver for tests/netlink/run.sh: runs netlink/ calls against the
 * kernel of the current network namespace, one process per step, the way
 * `grgw up` and `grgw down` would (each run reloads the record).
 *
 *   nltest [-4] [-t table] RECORD COMMAND...
 *
 * -4: both sites with their IPv4 prefix only.
 *
 * Commands, run in order until one fails:
 *   block          gwnl_block_install()
 *   forward        gwnl_forwarding_enable()
 *   xfrmi          gwnl_xfrmi_create()
 *   tunnel-up IF   gwnl_tunnel_routes_install() with IF as tunnel device
 *   tunnel-down IF gwnl_tunnel_routes_remove()
 *   cleanup N      gwnl_cleanup(purge = N)
 *   count          print "total block run" from the record
 *   probe          print gwnl_kernel_ipsec_available()
 *   float-add IF A/LEN  nl_float_add(), print its result (1 added, 0 there)
 *   float-del IF A      nl_float_del(), print its result (1 removed, 0 not
 *                       there)
 *   float-has IF A      nl_float_has(), print its result
 *   announce IF A       float_announce()
 *   drain-install IF    gwnl_drain_install() on IF
 *   drain-on IF A       gwnl_drain_set() towards the neighbour A on IF
 *   drain-off IF        gwnl_drain_set(), stopped
 *
 * The configuration is the lab's site A (see DESIGN.md): WAN wan0, LAN
 * lan0, peer prefixes 198.18.2.0/24 and 2001:db8:b::/64.
 */
#include <arpa/inet.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "grgw.h"
#include "netlink/netlink.h"
#include "netlink/internal.h"	/* gwnl_nft_verify() */

static void
config_site_a(struct grgw_config *cfg, uint32_t table)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->site.name, sizeof(cfg->site.name), "site-a");
	snprintf(cfg->site.wan_interface, sizeof(cfg->site.wan_interface),
	    "wan0");
	snprintf(cfg->site.lan_interfaces[0],
	    sizeof(cfg->site.lan_interfaces[0]), "lan0");
	cfg->site.n_lan_interfaces = 1;
	if (prefix_parse("198.18.1.0/24", &cfg->site.prefixes[0]) == -1 ||
	    prefix_parse("2001:db8:a::/64", &cfg->site.prefixes[1]) == -1 ||
	    prefix_parse("198.18.2.0/24", &cfg->peer.prefixes[0]) == -1 ||
	    prefix_parse("2001:db8:b::/64", &cfg->peer.prefixes[1]) == -1)
		fatalx("nltest: prefix_parse");
	cfg->site.n_prefixes = 2;
	snprintf(cfg->peer.name, sizeof(cfg->peer.name), "site-b");
	cfg->peer.n_prefixes = 2;
	cfg->dataplane = GRGW_DP_KERNEL;
	snprintf(cfg->xfrm_interface, sizeof(cfg->xfrm_interface), "%s",
	    GRGW_DEFAULT_XFRM_IF);
	cfg->if_id = GRGW_DEFAULT_IF_ID;
	cfg->table = table;
	cfg->mtu = GRGW_DEFAULT_MTU;
}

/* "198.18.0.10/24", "2001:db8::10/64" or, without "/LEN", the host's
 * prefix length; host bits allowed. */
static int
addr_len_parse(const char *s, struct grgw_addr *a, int *len)
{
	char		 buf[INET6_ADDRSTRLEN + 4], *slash, *end;
	long		 n;

	if (snprintf(buf, sizeof(buf), "%s", s) >= (int)sizeof(buf))
		return -1;
	if ((slash = strchr(buf, '/')) != NULL)
		*slash++ = '\0';
	if (addr_parse(buf, a) == -1)
		return -1;
	*len = addr_len(a->family) * 8;
	if (slash == NULL)
		return 0;
	errno = 0;
	n = strtol(slash, &end, 10);
	if (errno != 0 || *end != '\0' || end == slash || n < 0 || n > *len)
		return -1;
	*len = (int)n;
	return 0;
}

/* The float-* and announce commands: argv[0] the command, then IF A. */
static int
float_cmd(char **argv)
{
	struct grgw_addr	 a;
	char			 err[256] = "";
	int			 rc, len;

	if (addr_len_parse(argv[2], &a, &len) == -1) {
		fprintf(stderr, "nltest: %s: bad address %s\n", argv[0],
		    argv[2]);
		return -EINVAL;
	}
	if (strcmp(argv[0], "float-add") == 0)
		rc = nl_float_add(argv[1], &a, len, err, sizeof(err));
	else if (strcmp(argv[0], "float-del") == 0)
		rc = nl_float_del(argv[1], &a, err, sizeof(err));
	else if (strcmp(argv[0], "float-has") == 0)
		rc = nl_float_has(argv[1], &a, err, sizeof(err));
	else
		rc = float_announce(argv[1], &a, err, sizeof(err));
	if (rc < 0)
		fprintf(stderr, "nltest: %s: %s\n", argv[0], err);
	else if (strcmp(argv[0], "announce") != 0)
		printf("%d\n", rc);
	return rc < 0 ? rc : 0;
}

/*
 * guard-install N A... and guard-hold MS N A...: argv at the command;
 * the number of words used after it, or -1.
 */
static int
guard_cmd(struct gwnl *nl, char **argv, int argc, int *rc)
{
	struct grgw_addr	 fl[GWNL_FLOAT_MAX];
	int			 hold = strcmp(argv[0], "guard-hold") == 0;
	int			 i, n, len;
	char			*end;
	unsigned long		 ms = 0;

	if (hold) {
		if (argc < 2)
			return -1;
		ms = strtoul(argv[1], &end, 10);
		if (*end != '\0' || ms > UINT32_MAX)
			return -1;
	}
	if (argc < 2 + hold)
		return -1;
	n = atoi(argv[1 + hold]);
	if (n <= 0 || n > GWNL_FLOAT_MAX || argc < 2 + hold + n)
		return -1;
	for (i = 0; i < n; i++)
		if (addr_len_parse(argv[2 + hold + i], &fl[i], &len) == -1)
			return -1;
	*rc = hold ? gwnl_floatguard_hold(fl, n, (uint32_t)ms) :
	    gwnl_floatguard_install(nl, fl, n);
	return 1 + hold + n;
}

static void
usage(void)
{
	fprintf(stderr, "usage: nltest [-4] [-t table] record command...\n");
	exit(2);
}

int
main(int argc, char *argv[])
{
	struct grgw_config	 cfg;
	struct gwnl		*nl = NULL;
	const char		*cmd;
	unsigned long		 table = GRGW_DEFAULT_TABLE;
	char			*end;
	int			 ch, i, rc = 0, block, run, total, v4only = 0;

	log_init("nltest", getenv("NLTEST_DEBUG") != NULL ?
	    LOG_LVL_DEBUG : LOG_LVL_INFO);
	while ((ch = getopt(argc, argv, "4t:")) != -1) {
		switch (ch) {
		case '4':
			v4only = 1;
			break;
		case 't':
			errno = 0;
			table = strtoul(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || table > UINT32_MAX)
				usage();
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 2)
		usage();
	config_site_a(&cfg, (uint32_t)table);
	if (v4only) {
		cfg.site.n_prefixes = 1;	/* the IPv6 ones come second */
		cfg.peer.n_prefixes = 1;
	}

	if ((rc = gwnl_open(argv[0], &nl)) < 0) {
		fprintf(stderr, "nltest: open %s: %s\n", argv[0],
		    strerror(-rc));
		return 1;
	}
	for (i = 1; i < argc && rc == 0; i++) {
		cmd = argv[i];
		if (strcmp(cmd, "block") == 0)
			rc = gwnl_block_install(nl, &cfg);
		else if (strcmp(cmd, "forward") == 0)
			rc = gwnl_forwarding_enable(nl, &cfg);
		else if (strcmp(cmd, "xfrmi") == 0)
			rc = gwnl_xfrmi_create(nl, &cfg);
		else if ((strcmp(cmd, "tunnel-up") == 0 ||
		    strcmp(cmd, "tunnel-down") == 0) && i + 1 < argc) {
			snprintf(cfg.xfrm_interface,
			    sizeof(cfg.xfrm_interface), "%s", argv[++i]);
			if (strcmp(cmd, "tunnel-up") == 0)
				rc = gwnl_tunnel_routes_install(nl, &cfg);
			else
				rc = gwnl_tunnel_routes_remove(nl, &cfg);
		} else if (strcmp(cmd, "cleanup") == 0 && i + 1 < argc)
			rc = gwnl_cleanup(nl, atoi(argv[++i]));
		else if (strcmp(cmd, "count") == 0) {
			total = gwnl_record_count(nl, &block, &run);
			printf("%d %d %d\n", total, block, run);
		} else if (strcmp(cmd, "gro-off") == 0 && i + 1 < argc) {
			char err[200];

			if ((rc = gwnl_gro_off(nl, argv[++i], err,
			    sizeof(err))) < 0)
				fprintf(stderr, "nltest: gro-off: %s\n", err);
		} else if (strcmp(cmd, "gro-devs") == 0 && i + 1 < argc) {
			char devs[GWNL_GRO_DEVS_MAX][IF_NAMESIZE];
			int j, n;

			if ((n = gwnl_gro_devices(nl, argv[++i], devs,
			    GWNL_GRO_DEVS_MAX)) < 0)
				rc = n;
			for (j = 0; j < n; j++)
				printf("%s%s", devs[j], j + 1 < n ? " " : "\n");
		} else if ((strcmp(cmd, "float-add") == 0 ||
		    strcmp(cmd, "float-del") == 0 ||
		    strcmp(cmd, "float-has") == 0 ||
		    strcmp(cmd, "announce") == 0) && i + 2 < argc) {
			rc = float_cmd(argv + i);
			i += 2;
		} else if (strcmp(cmd, "guard-install") == 0 ||
		    strcmp(cmd, "guard-hold") == 0) {
			int used = guard_cmd(nl, argv + i, argc - i, &rc);

			if (used < 0)
				usage();
			i += used;
		} else if (strcmp(cmd, "nft-verify") == 0 ||
		    strcmp(cmd, "nft-verify-all") == 0) {
			char what[512] = "";

			printf("%d\n", gwnl_nft_verify(nl,
			    strcmp(cmd, "nft-verify-all") == 0, what,
			    sizeof(what)));
		} else if (strcmp(cmd, "drain-install") == 0 && i + 1 < argc) {
			rc = gwnl_drain_install(nl, &cfg, argv[++i]);
		} else if (strcmp(cmd, "drain-on") == 0 && i + 2 < argc) {
			struct grgw_addr to;
			char e[256];
			int len;

			if (addr_len_parse(argv[i + 2], &to, &len) == -1)
				usage();
			if ((rc = gwnl_drain_set(argv[i + 1], &to, e,
			    sizeof(e))) != 0)
				fprintf(stderr, "drain-on: %s\n", e);
			i += 2;
		} else if (strcmp(cmd, "drain-off") == 0 && i + 1 < argc) {
			rc = gwnl_drain_set(argv[++i], NULL, NULL, 0);
		} else if (strcmp(cmd, "refuse-install") == 0) {
			rc = gwnl_refuse_install(nl, &cfg);
		} else if (strcmp(cmd, "refuse-on") == 0 ||
		    strcmp(cmd, "refuse-off") == 0) {
			rc = gwnl_refuse_set(nl, &cfg,
			    strcmp(cmd, "refuse-on") == 0);
		} else if (strcmp(cmd, "nft") == 0 && i + 1 < argc) {
			rc = gwnl_nft_run(argv[++i], "nltest");
		} else if (strcmp(cmd, "probe") == 0)
			printf("%d\n", gwnl_kernel_ipsec_available());
		else
			usage();
		if (rc != 0)
			fprintf(stderr, "nltest: %s: %s\n", cmd,
			    rc == -1 ? "failed" : strerror(-rc));
	}
	gwnl_close(nl);
	return rc == 0 ? 0 : 1;
}
