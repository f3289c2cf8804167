/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * First look at every frame from the wire: validate L2/L3 headers, drop what
 * is malformed (counted by reason), punt what is for the gateway, and hand
 * back the IPv4 and IPv6 packets to route.
 */
#ifndef DPSEC_CLASSIFY_H
#define DPSEC_CLASSIFY_H

#include "worker.h"

/*
 * Returns how many IPv4 packets were placed in @fwd; the IPv6 ones to route go
 * to @fwd6 (*@n6 of them). Ethernet header still on, l2/l3_len set.
 */
uint16_t classify_burst(struct worker *w, uint16_t port, struct rte_mbuf **pkts, uint16_t n,
			struct rte_mbuf **fwd, struct rte_mbuf **fwd6, uint16_t *n6);

#endif
