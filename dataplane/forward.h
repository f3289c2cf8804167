/* SPDX-License-Identifier: BSD-3-Clause */
/* IPv4 forwarding: FIB lookup, TTL, next-hop MAC, out. */
#ifndef DPSEC_FORWARD_H
#define DPSEC_FORWARD_H

#include "worker.h"

/* @pkts start at the Ethernet header of valid IPv4 packets that arrived on @in_port. */
void forward4_burst(struct worker *w, uint16_t in_port, struct rte_mbuf **pkts, uint16_t n);

#endif
