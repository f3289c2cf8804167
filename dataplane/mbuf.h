/* SPDX-License-Identifier: BSD-3-Clause */
/* mbuf metadata writes the hot path makes often. */
#ifndef DPSEC_MBUF_H
#define DPSEC_MBUF_H

#include <rte_mbuf.h>

/*
 * l2_len and l3_len share 16 bits of tx_offload. Set one after the other, the
 * second write reads back the word the first just wrote a byte of, and the CPU
 * cannot forward that from its store buffer: a stall of about 15 cycles a
 * packet in inbound.c's admit() (perf annotate, decrypt 64 B). One load, one
 * store instead.
 */
static inline void mbuf_set_lens(struct rte_mbuf *m, uint64_t l2, uint64_t l3)
{
	const uint64_t mask =
	    rte_mbuf_tx_offload(RTE_LEN2MASK(RTE_MBUF_L2_LEN_BITS, uint64_t),
				RTE_LEN2MASK(RTE_MBUF_L3_LEN_BITS, uint64_t), 0, 0, 0, 0, 0);

	m->tx_offload = (m->tx_offload & ~mask) | rte_mbuf_tx_offload(l2, l3, 0, 0, 0, 0, 0);
}

#endif
