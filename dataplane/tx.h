/* SPDX-License-Identifier: BSD-3-Clause */
/* Output: packets are staged per ethdev during a burst and sent in one call. */
#ifndef DPSEC_TX_H
#define DPSEC_TX_H

#include "worker.h"

/* Ethdev -> the dataplane port it belongs to (a wire port or its TAP). */
extern uint16_t tx_port_of[RTE_MAX_ETHPORTS];

/* Send what is staged for @ethdev now (its buffer is full); it stays on the dirty list. */
void tx_send(struct worker *w, uint16_t ethdev);

/*
 * Stage @n packets for @ethdev: the count moves once per run, not per packet.
 * One RX burst can yield more than a burst for a port (fragments, ICMP
 * errors): a full buffer is sent first.
 */
static inline void tx_enqueue_bulk(struct worker *w, uint16_t ethdev, struct rte_mbuf **m,
				   uint16_t n)
{
	while (n > 0) {
		uint16_t c;

		if (unlikely(w->out_n[ethdev] == WORKER_BURST))
			tx_send(w, ethdev);
		if (!w->is_dirty[ethdev]) {
			w->is_dirty[ethdev] = true;
			w->dirty[w->n_dirty++] = ethdev;
		}
		c = RTE_MIN(n, (uint16_t)(WORKER_BURST - w->out_n[ethdev]));
		memcpy(&w->out[ethdev][w->out_n[ethdev]], m, c * sizeof(*m));
		w->out_n[ethdev] += c;
		m += c;
		n -= c;
	}
}

static inline void tx_enqueue(struct worker *w, uint16_t ethdev, struct rte_mbuf *m)
{
	tx_enqueue_bulk(w, ethdev, &m, 1);
}

static inline void tx_drop(struct worker *w, uint16_t port, struct rte_mbuf *m,
			   enum stats_drop reason)
{
	w->stats[port].drop[reason]++;
	rte_pktmbuf_free(m);
}

/* Send everything staged; what a queue refuses is dropped and counted. */
void tx_flush(struct worker *w);

#endif
