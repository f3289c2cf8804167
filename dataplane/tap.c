/* SPDX-License-Identifier: BSD-3-Clause */
#include "tap.h"

void tap_rx_burst(struct worker *w, uint16_t port, struct rte_mbuf **pkts, uint16_t n)
{
	w->stats[port].from_tap += n;
	if (unlikely(!ports[port].started)) {
		w->stats[port].drop[STATS_DROP_NO_PORT] += n;
		rte_pktmbuf_free_bulk(pkts, n);
		return;
	}
	/* The kernel's own traffic (ARP, ICMP, IKE) bypasses the SPD. */
	for (uint16_t i = 0; i < n; i++)
		tx_enqueue(w, port, pkts[i]);
}
