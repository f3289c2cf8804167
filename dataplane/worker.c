/* SPDX-License-Identifier: BSD-3-Clause */
#include <stdio.h>

#include <rte_cycles.h>
#include <rte_lcore.h>
#include <rte_malloc.h>

#include "classify.h"
#include "forward.h"
#include "inbound.h"
#include "outbound.h"
#include "reass.h"
#include "tap.h"
#include "tx.h"
#include "worker.h"

/* Empty polls before a worker starts to sleep, and the first nap. */
#define IDLE_SPIN_POLLS	    64
#define IDLE_FIRST_SLEEP_US 4

struct worker_config worker_config = {.idle_sleep_us = WORKER_IDLE_SLEEP_US_DEFAULT};
volatile bool worker_stop;

static struct worker *workers;
static unsigned n_workers;

unsigned worker_count(void)
{
	return rte_lcore_count() - 1;
}

static int add_rxq(struct worker *w, uint16_t ethdev, uint16_t queue, uint16_t port, bool tap,
		   char *err, size_t errlen)
{
	if (w->n_rxq == WORKER_RXQ_MAX) {
		snprintf(err, errlen, "too many RX queues for worker %u", w->id);
		return -1;
	}
	w->rxq[w->n_rxq++] = (struct worker_rxq){ethdev, queue, port, tap};
	return 0;
}

int worker_setup(char *err, size_t errlen)
{
	unsigned lcore, i = 0;

	n_workers = worker_count();
	workers = rte_zmalloc("dpsec_workers", sizeof(*workers) * n_workers, RTE_CACHE_LINE_SIZE);
	if (workers == NULL) {
		snprintf(err, errlen, "cannot allocate workers");
		return -1;
	}
	RTE_LCORE_FOREACH_WORKER(lcore)
	{
		struct worker *w = &workers[i];

		w->id = i++;
		w->lcore = lcore;
		w->stats = stats_ports[w->id];
		w->gstats = &stats_workers[w->id];
	}
	for (uint16_t p = 0; p < PORT_MAX; p++) {
		if (!ports[p].configured)
			continue;
		tx_port_of[p] = p;
		tx_port_of[ports[p].tap] = p;
		/* Queue q of a port goes to worker q; every worker reads its own TAP queue. */
		for (uint16_t q = 0; q < ports[p].nb_rxq; q++)
			if (add_rxq(&workers[q % n_workers], p, q, p, false, err, errlen) < 0)
				return -1;
		for (uint16_t q = 0; q < n_workers; q++)
			if (add_rxq(&workers[q], ports[p].tap, q, p, true, err, errlen) < 0)
				return -1;
	}
	return 0;
}

/* Split routed IPv4 into what is for the gateway (looked up into @in) and what passes through. */
static void route4(struct worker *w, uint16_t port, struct rte_mbuf **pkts, uint16_t n,
		   struct inbound_pending *in)
{
	struct rte_mbuf *local[WORKER_BURST], *transit[WORKER_BURST];
	uint32_t hop[WORKER_BURST], thop[WORKER_BURST];
	uint16_t nl = 0, nt = 0;

	forward4_lookup(pkts, n, hop);
	for (uint16_t i = 0; i < n; i++) {
		if (unlikely(!(hop[i] & RTE_LPM_LOOKUP_SUCCESS))) {
			tx_drop(w, port, pkts[i], STATS_DROP_NO_ROUTE);
		} else if (fib.nh[hop[i] & 0x00ffffff].kind == FIB_NH_LOCAL) {
			local[nl++] = pkts[i];
		} else {
			thop[nt] = hop[i];
			transit[nt++] = pkts[i];
		}
	}
	if (nl > 0)
		inbound_lookup(w, port, local, nl, in);
	if (nt > 0)
		outbound_burst(w, port, transit, thop, nt);
}

/*
 * A wire queue: up to WORKER_RX_ROUNDS bursts while it has full ones, each
 * burst's ESP looked up before the one before it is decrypted (inbound.h).
 */
static uint32_t rx_wire(struct worker *w, const struct worker_rxq *q)
{
	struct rte_mbuf *pkts[WORKER_BURST], *fwd[WORKER_BURST], *fwd6[WORKER_BURST];
	struct inbound_pending in[2];
	unsigned cur = 0;
	uint32_t got = 0;

	in[0].n = in[1].n = 0;
	for (unsigned r = 0; r < WORKER_RX_ROUNDS; r++) {
		uint16_t n6, nf, n = rte_eth_rx_burst(q->ethdev, q->queue, pkts, WORKER_BURST);

		if (n == 0)
			break;
		got += n;
		w->stats[q->port].rx += n;
		nf = classify_burst(w, q->port, pkts, n, fwd, fwd6, &n6);
		if (nf > 0)
			route4(w, q->port, fwd, nf, &in[cur]);
		cur ^= 1;
		if (in[cur].n > 0)
			inbound_finish(w, &in[cur]);
		if (n6 > 0)
			outbound6_burst(w, q->port, fwd6, n6);
		tx_flush(w);
		if (n < WORKER_BURST)
			break;
	}
	if (in[cur ^ 1].n > 0) {
		inbound_finish(w, &in[cur ^ 1]);
		tx_flush(w);
	}
	return got;
}

static void idle(struct worker *w, unsigned *empty)
{
	unsigned us;

	if (++*empty < IDLE_SPIN_POLLS)
		return;
	us = IDLE_FIRST_SLEEP_US << RTE_MIN(*empty - IDLE_SPIN_POLLS, 10u);
	if (us > worker_config.idle_sleep_us)
		us = worker_config.idle_sleep_us;
	/* Offline while asleep so the control thread's grace periods never wait on us. */
	rte_rcu_qsbr_thread_offline(worker_config.qs, w->id);
	rte_delay_us_sleep(us);
	rte_rcu_qsbr_thread_online(worker_config.qs, w->id);
}

static int worker_main(void *arg)
{
	struct worker *w = arg;
	struct rte_mbuf *pkts[WORKER_BURST];
	unsigned empty = 0;

	const uint64_t tap_every = rte_get_tsc_hz() / 1000000 * WORKER_TAP_POLL_US;
	uint64_t tap_tsc = 0;
	uint32_t got = 0;

	rte_rcu_qsbr_thread_register(worker_config.qs, w->id);
	rte_rcu_qsbr_thread_online(worker_config.qs, w->id);
	while (!worker_stop) {
		/* A TAP read is a syscall: under load, look at the kernel's queue only now and
		 * then. */
		uint64_t now = rte_rdtsc();
		bool tap_turn = got == 0 || now - tap_tsc >= tap_every;

		if (tap_turn)
			tap_tsc = now;
		got = 0;
		for (uint16_t i = 0; i < w->n_rxq; i++) {
			const struct worker_rxq *q = &w->rxq[i];
			uint16_t n;

			if (!q->tap) {
				got += rx_wire(w, q);
				continue;
			}
			if (!tap_turn)
				continue;
			n = rte_eth_rx_burst(q->ethdev, q->queue, pkts, WORKER_BURST);
			if (n == 0)
				continue;
			got += n;
			tap_rx_burst(w, q->port, pkts, n);
			tx_flush(w);
		}
		reass_tick(w->id, now);
		rte_rcu_qsbr_quiescent(worker_config.qs, w->id);
		if (got > 0)
			empty = 0;
		else if (worker_config.idle_sleep_us > 0)
			idle(w, &empty);
	}
	rte_rcu_qsbr_thread_offline(worker_config.qs, w->id);
	rte_rcu_qsbr_thread_unregister(worker_config.qs, w->id);
	return 0;
}

int worker_launch(void)
{
	for (unsigned i = 0; i < n_workers; i++) {
		int rc = rte_eal_remote_launch(worker_main, &workers[i], workers[i].lcore);

		if (rc != 0)
			return rc;
	}
	return 0;
}

void worker_join(void)
{
	worker_stop = true;
	rte_eal_mp_wait_lcore();
}
