/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dpsec-dataplane <EAL args> -- --config FILE [--ctl ENDPOINT] [--idle-sleep-us N]
 *                                [--mbufs N]
 *
 * Startup order matters: the whole config is parsed before EAL starts, and
 * applied before any port receives; the main lcore then becomes the control
 * thread (channel, netlink mirror, upcalls), the only writer of the tables.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <rte_eal.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mempool.h>

#include "addr.h"
#include "apply.h"
#include "channel.h"
#include "crypto.h"
#include "reass.h"
#include "fib.h"
#include "lifetime.h"
#include "grammar.h"
#include "neigh.h"
#include "netlink.h"
#include "port.h"
#include "sad.h"
#include "spd.h"
#include "stats.h"
#include "upcall.h"
#include "worker.h"

#define DEFAULT_MBUFS	16383u /* 2^n - 1 is the mempool's sweet spot */
#define CONTROL_TICK_MS 10

extern unsigned show_mbuf_baseline;

struct options {
	const char *config;
	const char *ctl;
	unsigned idle_sleep_us;
	unsigned mbufs;
};

static volatile sig_atomic_t quit;

static void on_signal(int sig)
{
	(void)sig;
	quit = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: dpsec-dataplane <EAL args> -- --config FILE [--ctl ENDPOINT]\n"
		"                       [--idle-sleep-us N] [--mbufs N]\n"
		"  --config FILE        dpsecctl commands applied before any port receives\n"
		"  --ctl ENDPOINT       control channel (default " CHAN_DEFAULT_ENDPOINT ")\n"
		"  --idle-sleep-us N    longest nap of an idle worker, 0 = busy poll (default %u)\n"
		"  --mbufs N            packet buffers (default %u)\n"
		"  --crypto MODE        auto (intel-ipsec-mb called directly where it\n"
		"                       runs the algorithm), cpu (cryptodev CPU crypto) or\n"
		"                       lookaside (cryptodev queues); default auto\n",
		WORKER_IDLE_SLEEP_US_DEFAULT, DEFAULT_MBUFS);
}

static int parse_uint(const char *s, unsigned max, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *s == '\0' || *end != '\0' || v > max)
		return -1;
	*out = v;
	return 0;
}

static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"ctl", required_argument, NULL, 'C'},
	    {"idle-sleep-us", required_argument, NULL, 'i'},
	    {"mbufs", required_argument, NULL, 'm'},
	    {"crypto", required_argument, NULL, 'x'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->config = optarg;
			break;
		case 'C':
			o->ctl = optarg;
			break;
		case 'i':
			if (parse_uint(optarg, 1000000, &o->idle_sleep_us) < 0) {
				fprintf(stderr, "dpsec-dataplane: bad --idle-sleep-us \"%s\"\n",
					optarg);
				return -1;
			}
			break;
		case 'm':
			if (parse_uint(optarg, 1u << 24, &o->mbufs) < 0 || o->mbufs < 1024) {
				fprintf(stderr, "dpsec-dataplane: bad --mbufs \"%s\" (1024..%u)\n",
					optarg, 1u << 24);
				return -1;
			}
			break;
		case 'x': {
			enum crypto_mode mode;

			if (crypto_mode_parse(optarg, &mode) != 0) {
				fprintf(
				    stderr,
				    "dpsec-dataplane: bad --crypto \"%s\" (auto, cpu, lookaside)\n",
				    optarg);
				return -1;
			}
			crypto_set_mode(mode);
			break;
		}
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "dpsec-dataplane: unexpected argument \"%s\"\n", argv[optind]);
		return -1;
	}
	if (o->config == NULL) {
		fprintf(stderr, "dpsec-dataplane: --config FILE is required\n");
		usage(stderr);
		return -1;
	}
	return 0;
}

/* Apply every config request through the same path dpsecctl uses. */
static int apply_config(const struct gram_config *cfg, const char *path)
{
	char err[256];

	/* One SPD build for the whole file, not one per policy line. */
	spd_begin();
	for (size_t i = 0; i < cfg->n; i++) {
		Dpsec__Reply *rep = malloc(sizeof(*rep));
		int ok;

		if (rep == NULL)
			return -1;
		dpsec__reply__init(rep);
		apply_request(cfg->reqs[i], rep, NULL);
		ok = rep->code == DPSEC__CODE__OK;
		if (!ok)
			fprintf(stderr, "dpsec-dataplane: %s:%u: %s\n", path, cfg->lineno[i],
				rep->reason != NULL ? rep->reason : chan_code_name(rep->code));
		protobuf_c_message_free_unpacked(&rep->base, NULL);
		if (!ok) {
			spd_commit(err, sizeof(err));
			return -1;
		}
	}
	if (spd_commit(err, sizeof(err)) < 0) {
		fprintf(stderr, "dpsec-dataplane: %s: policies: %s\n", path, err);
		return -1;
	}
	return 0;
}

static struct rte_rcu_qsbr *rcu_create(unsigned n)
{
	size_t sz = rte_rcu_qsbr_get_memsize(n);
	struct rte_rcu_qsbr *qs = rte_zmalloc("dpsec_rcu", sz, RTE_CACHE_LINE_SIZE);

	if (qs != NULL && rte_rcu_qsbr_init(qs, n) != 0) {
		rte_free(qs);
		qs = NULL;
	}
	return qs;
}

static void control_loop(struct chan_server *srv)
{
	struct pollfd fds[2] = {
	    {.fd = chan_server_fd(srv), .events = POLLIN},
	    {.fd = nl_fd(), .events = POLLIN},
	};

	while (!quit) {
		/* The tick bounds upcall latency; ZMQ_FD is edge-triggered, so always drain. */
		poll(fds, 2, CONTROL_TICK_MS);
		nl_process();
		upcall_drain(srv);
		lifetime_tick(srv);
		/* Last: sending events can swallow a ZMQ_FD wake-up for requests. */
		chan_server_process(srv, apply_request, NULL);
	}
}

int main(int argc, char **argv)
{
	struct options o = {.ctl = CHAN_DEFAULT_ENDPOINT,
			    .idle_sleep_us = WORKER_IDLE_SLEEP_US_DEFAULT,
			    .mbufs = DEFAULT_MBUFS};
	struct gram_config cfg = {0};
	struct chan_server *srv = NULL;
	char err[512];
	int eal_argc = argc, rc = 1, ret;
	uint64_t epoch;
	unsigned n_workers;

	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--") == 0) {
			eal_argc = i;
			break;
		}
	if (eal_argc == argc) {
		fprintf(stderr, "dpsec-dataplane: missing \"--\" before the dataplane options\n");
		usage(stderr);
		return 1;
	}
	argv[eal_argc] = argv[0];
	if (parse_options(argc - eal_argc, argv + eal_argc, &o) < 0)
		return 1;
	/* Refuse a bad config before touching hugepages or NICs. */
	if (gram_config_load(o.config, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "dpsec-dataplane: %s\n", err);
		return 1;
	}

	ret = rte_eal_init(eal_argc, argv);
	if (ret < 0) {
		fprintf(stderr, "dpsec-dataplane: EAL init failed: %s\n", rte_strerror(rte_errno));
		gram_config_free(&cfg);
		return 1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);

	n_workers = worker_count();
	if (n_workers == 0) {
		fprintf(stderr, "dpsec-dataplane: no worker lcore: give at least two lcores "
				"(e.g. -l 0,1); the main one is the control thread\n");
		goto out_eal;
	}
	if (n_workers > SPD_MAX_WORKERS) {
		fprintf(stderr, "dpsec-dataplane: %u worker lcores, at most %u supported\n",
			n_workers, SPD_MAX_WORKERS);
		goto out_eal;
	}
	worker_config.idle_sleep_us = o.idle_sleep_us;
	worker_config.qs = rcu_create(n_workers);
	if (worker_config.qs == NULL || stats_init(n_workers) < 0) {
		fprintf(stderr, "dpsec-dataplane: out of hugepage memory\n");
		goto out_eal;
	}
	if (fib_init(worker_config.qs, err, sizeof(err)) < 0 ||
	    neigh_init(worker_config.qs, err, sizeof(err)) < 0 ||
	    upcall_init(err, sizeof(err)) < 0 ||
	    port_init(n_workers, o.mbufs, err, sizeof(err)) < 0 || nl_init(err, sizeof(err)) < 0 ||
	    crypto_init(n_workers, err, sizeof(err)) < 0 ||
	    sad_init(worker_config.qs, n_workers, err, sizeof(err)) < 0 ||
	    spd_init(worker_config.qs, n_workers, err, sizeof(err)) < 0 ||
	    reass_init(n_workers, err, sizeof(err)) < 0) {
		fprintf(stderr, "dpsec-dataplane: %s\n", err);
		goto out_eal;
	}
	apply_bind_init();
	if (apply_config(&cfg, o.config) < 0)
		goto out_ports;
	nl_resync();

	if (worker_setup(err, sizeof(err)) < 0 || port_start_all(err, sizeof(err)) < 0) {
		fprintf(stderr, "dpsec-dataplane: %s\n", err);
		goto out_ports;
	}
	show_mbuf_baseline = rte_mempool_in_use_count(port_pool);
	apply_running = true;

	if (getrandom(&epoch, sizeof(epoch), 0) != sizeof(epoch))
		epoch = rte_rdtsc();
	srv = chan_server_open(o.ctl, epoch, err, sizeof(err));
	if (srv == NULL) {
		fprintf(stderr, "dpsec-dataplane: control channel %s: %s\n", o.ctl, err);
		goto out_ports;
	}
	if (worker_launch() != 0) {
		fprintf(stderr, "dpsec-dataplane: cannot launch workers\n");
		goto out_srv;
	}
	printf("dpsec-dataplane: running: %u worker(s), %u port(s), control %s, epoch %016llx\n",
	       n_workers, port_wire_count, o.ctl, (unsigned long long)epoch);
	fflush(stdout);

	control_loop(srv);
	rc = 0;
	printf("dpsec-dataplane: stopping\n");
	worker_join();
out_srv:
	chan_server_close(srv);
out_ports:
	worker_join();
	port_stop_all();
	nl_close();
	/* SAD first: flushing it unbinds SAs from policies, so the SPD must still exist. */
	sad_fini();
	spd_fini();
	reass_fini();
	crypto_fini();
out_eal:
	gram_config_free(&cfg);
	rte_eal_cleanup();
	return rc;
}
