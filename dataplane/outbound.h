/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Transit and locally originated traffic: the outbound SPD decides protect
 * (encrypt with the bound SA, then route the ESP packet), bypass, discard or
 * trap. Cleartext that an inbound protect policy says must arrive encrypted
 * is dropped.
 */
#ifndef DPSEC_OUTBOUND_H
#define DPSEC_OUTBOUND_H

#include "worker.h"

/* @pkts: valid IPv4 with Ethernet header, not for the gateway; @hop their LPM results. */
void outbound_burst(struct worker *w, uint16_t in_port, struct rte_mbuf **pkts, const uint32_t *hop,
		    uint16_t n);

/*
 * The gateway's own IPv4 (not IKE) that the kernel sent on @port's TAP, Ethernet
 * header on, l2_len/l3_len set: the same SPD decides, but nothing is routed
 * (cleartext leaves on @port as the kernel framed it) and no TTL is spent.
 */
void outbound_local_burst(struct worker *w, uint16_t port, struct rte_mbuf **pkts, uint16_t n);

/*
 * IPv6 transit (@local false) or the kernel's own IPv6 from @port's TAP: the
 * IPv6 SPD decides bypass, discard or trap; protect drops it (IPv6 inside ESP
 * is not supported yet: never in clear), and so does cleartext an inbound
 * protect policy covers. What passes is routed (or, local, sent as framed).
 */
void outbound6_burst(struct worker *w, uint16_t port, struct rte_mbuf **pkts, uint16_t n);
void outbound6_local_burst(struct worker *w, uint16_t port, struct rte_mbuf **pkts, uint16_t n);

#endif
