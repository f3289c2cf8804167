/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Traffic addressed to the gateway: ESP and ESP-in-UDP (RFC 3948) are looked
 * up in the SAD, decrypted, checked against the inbound policy of their SA
 * and routed; IKE and everything else goes up the TAP.
 */
#ifndef DPSEC_INBOUND_H
#define DPSEC_INBOUND_H

#include "worker.h"

struct sa;

/*
 * A burst between its SAD lookup and its decryption. The worker looks up the
 * next burst before it decrypts this one (worker.c): with 10,000 SAs that is
 * 1.19x the rate of looking up and decrypting each burst in turn (the SAs'
 * lines are prefetched at decryption: prefetched a burst earlier, they were
 * evicted before use). The SAs stay valid: the worker reports no quiescent
 * state in between.
 */
struct inbound_pending {
	uint16_t port, n;
	struct rte_mbuf *m[WORKER_BURST];
	struct sa *sa[WORKER_BURST];
};

/*
 * @pkts: valid IPv4 with Ethernet header whose destination is a local address.
 * Punts and drops what is not ESP for a known SA; leaves the rest in @p.
 */
void inbound_lookup(struct worker *w, uint16_t in_port, struct rte_mbuf **pkts, uint16_t n,
		    struct inbound_pending *p);
/* Decrypt, check and route what @p holds; leaves it empty. */
void inbound_finish(struct worker *w, struct inbound_pending *p);

#endif
