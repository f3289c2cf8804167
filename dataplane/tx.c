/* SPDX-License-Identifier: BSD-3-Clause */
#include "tx.h"

uint16_t tx_port_of[RTE_MAX_ETHPORTS];

void tx_send(struct worker *w, uint16_t e)
{
	uint16_t n = w->out_n[e];
	uint16_t port = tx_port_of[e];
	uint16_t sent = n ? rte_eth_tx_burst(e, w->id, w->out[e], n) : 0;
	bool to_tap = e != port;

	if (to_tap)
		w->stats[port].punted += sent;
	else
		w->stats[port].tx += sent;
	if (unlikely(sent < n)) {
		w->stats[port].drop[to_tap ? STATS_DROP_PUNT_FULL : STATS_DROP_TX_FULL] += n - sent;
		rte_pktmbuf_free_bulk(&w->out[e][sent], n - sent);
	}
	w->out_n[e] = 0;
}

void tx_flush(struct worker *w)
{
	for (uint16_t i = 0; i < w->n_dirty; i++) {
		tx_send(w, w->dirty[i]);
		w->is_dirty[w->dirty[i]] = false;
	}
	w->n_dirty = 0;
}
