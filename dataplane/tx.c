/* SPDX-License-Identifier: BSD-3-Clause */
#include "tx.h"

uint16_t tx_port_of[RTE_MAX_ETHPORTS];

void tx_flush(struct worker *w)
{
	for (uint16_t i = 0; i < w->n_dirty; i++) {
		uint16_t e = w->dirty[i];
		uint16_t n = w->out_n[e];
		uint16_t port = tx_port_of[e];
		uint16_t sent = rte_eth_tx_burst(e, w->id, w->out[e], n);
		bool to_tap = e != port;

		if (to_tap)
			w->stats[port].punted += sent;
		else
			w->stats[port].tx += sent;
		if (unlikely(sent < n)) {
			w->stats[port].drop[to_tap ? STATS_DROP_PUNT_FULL : STATS_DROP_TX_FULL] +=
				n - sent;
			rte_pktmbuf_free_bulk(&w->out[e][sent], n - sent);
		}
		w->out_n[e] = 0;
	}
	w->n_dirty = 0;
}
