/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Transit traffic: the outbound SPD decides protect (encrypt with the bound
 * SA, then route the ESP packet), bypass, discard or trap. Cleartext that an
 * inbound protect policy says must arrive encrypted is dropped.
 */
#ifndef DPSEC_OUTBOUND_H
#define DPSEC_OUTBOUND_H

#include "worker.h"

/* @pkts: valid IPv4 with Ethernet header, not for the gateway; @hop their LPM results. */
void outbound_burst(struct worker *w, uint16_t in_port, struct rte_mbuf **pkts,
		    const uint32_t *hop, uint16_t n);

#endif
