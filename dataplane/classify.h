/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * First look at every frame from the wire: validate L2/L3 headers, drop what
 * is malformed (counted by reason), punt what is for the gateway, and hand
 * back the IPv4 packets to route.
 */
#ifndef DPSEC_CLASSIFY_H
#define DPSEC_CLASSIFY_H

#include "worker.h"

/* Returns how many packets were placed in @fwd (Ethernet header still on, l2/l3_len set). */
uint16_t classify_burst(struct worker *w, uint16_t port, struct rte_mbuf **pkts, uint16_t n,
			struct rte_mbuf **fwd);

#endif
