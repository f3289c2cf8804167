/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The exception path: what the gateway itself must see (ARP, ICMP to its
 * addresses, IKE, TTL expiry) goes up the port's TAP to the kernel, and what
 * the kernel sends on a TAP leaves on that port.
 */
#ifndef DPSEC_TAP_H
#define DPSEC_TAP_H

#include "tx.h"

static inline void tap_punt(struct worker *w, uint16_t port, struct rte_mbuf *m)
{
	tx_enqueue(w, ports[port].tap, m);
}

/*
 * A packet the dataplane reassembled that is the kernel's after all (IKE on a
 * NAT-T port): up the TAP cut to the wire's MTU again, since the TAP takes no
 * more; the kernel reassembles it once more. Consumes @m.
 */
void tap_punt_pieces(struct worker *w, uint16_t port, struct rte_mbuf *m);

/* Kernel -> wire for one burst read from @port's TAP. */
void tap_rx_burst(struct worker *w, uint16_t port, struct rte_mbuf **pkts, uint16_t n);

#endif
