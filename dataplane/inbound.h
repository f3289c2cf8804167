/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Traffic addressed to the gateway: ESP and ESP-in-UDP (RFC 3948) are looked
 * up in the SAD, decrypted, checked against the inbound policy of their SA
 * and routed; IKE and everything else goes up the TAP.
 */
#ifndef DPSEC_INBOUND_H
#define DPSEC_INBOUND_H

#include "worker.h"

/* @pkts: valid IPv4 with Ethernet header whose destination is a local address. */
void inbound_burst(struct worker *w, uint16_t in_port, struct rte_mbuf **pkts, uint16_t n);

#endif
