/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Run-to-completion workers: each polls its RX queues, carries every burst
 * through the whole packet path and transmits on its own TX queues.
 */
#ifndef DPSEC_WORKER_H
#define DPSEC_WORKER_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_rcu_qsbr.h>

#include "port.h"
#include "stats.h"

/*
 * Packets taken from a queue at once. 64 against 32 (ab.py, 6 pairs each, with
 * esp_group_of's index): decrypt 64 B 1.033x, 1400 B 1.009x, encrypt 64 B
 * 1.013x, 1400 B 1.008x; 10k SAs decrypt 1.029x, encrypt 1.134x.
 */
#define WORKER_BURST	     64
#define WORKER_RX_ROUNDS     4 /* full bursts taken from one wire queue in a row */
#define WORKER_RXQ_MAX	     (PORT_MAX * 4)
#define WORKER_RESOLVE_CACHE 64
#define WORKER_TAP_POLL_US   500 /* under load, read the TAPs this often (a syscall each) */
/*
 * An idle worker's longest nap. Each wake-up costs the CPU a timer and two
 * context switches: in this project's VMs ~40-50 us, so 1 ms naps kept an idle
 * dataplane at ~5 % of a core, 2 ms at ~3.6 %; the price is up to 2 ms on the
 * first packet after a few ms of silence (--idle-sleep-us 0 busy polls).
 */
#define WORKER_IDLE_SLEEP_US_DEFAULT 2000u

struct worker_rxq {
	uint16_t ethdev;
	uint16_t queue;
	uint16_t port; /* dataplane port (the wire port, also for its TAP) */
	bool tap;
};

struct worker {
	unsigned id; /* also the TX queue on every port and the RCU thread id */
	unsigned lcore;
	uint16_t n_rxq;
	struct worker_rxq rxq[WORKER_RXQ_MAX];
	struct stats_port *stats; /* [PORT_MAX], this worker's own */
	struct stats_global *gstats;

	/* Output staged per ethdev during a burst, flushed by tx_flush(). */
	uint16_t n_dirty;
	uint16_t dirty[RTE_MAX_ETHPORTS];
	bool is_dirty[RTE_MAX_ETHPORTS];
	uint16_t out_n[RTE_MAX_ETHPORTS];
	struct rte_mbuf *out[RTE_MAX_ETHPORTS][WORKER_BURST];

	uint64_t icmp_tsc; /* last ICMP error we originated */

	/* Recent upcalls, so a flow to a dead host or from a moved peer asks rarely. */
	struct worker_upcall_cache {
		uint64_t key[WORKER_RESOLVE_CACHE];
		uint64_t tsc[WORKER_RESOLVE_CACHE];
	} resolve, mapping;
} __rte_cache_aligned;

struct worker_config {
	unsigned idle_sleep_us; /* 0 = busy poll */
	struct rte_rcu_qsbr *qs;
};

extern struct worker_config worker_config;
extern volatile bool worker_stop;

/* Allocate workers for every worker lcore and spread the RX queues over them. */
int worker_setup(char *err, size_t errlen);
unsigned worker_count(void);
int worker_launch(void);
void worker_join(void);

#endif
