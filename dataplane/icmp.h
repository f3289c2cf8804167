/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ICMP the dataplane must originate itself because the packet never reaches
 * the kernel: "fragmentation needed" when a DF packet plus ESP overhead would
 * exceed the wire MTU (RFC 1191 / RFC 4301 section 8), so TCP finds the path
 * MTU through the tunnel.
 */
#ifndef DPSEC_ICMP_H
#define DPSEC_ICMP_H

#include "worker.h"

/* At most this many generated ICMP messages per second per worker. */
#define ICMP_RATE_PER_SEC 200

/*
 * Answer @m (Ethernet header on, IPv4, arrived on @in_port) with ICMP type 3
 * code 4 carrying @mtu. The caller still owns and drops @m.
 */
void icmp4_frag_needed(struct worker *w, uint16_t in_port, const struct rte_mbuf *m, uint16_t mtu);

#endif
