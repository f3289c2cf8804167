/* SPDX-License-Identifier: BSD-3-Clause */
#include <netinet/in.h>

#include <rte_ip.h>
#include <rte_udp.h>

#include "outbound.h"
#include "tap.h"

#include "sad.h"

#define IKE_PORT 500

/*
 * IPv4 the SPD must see: all of the gateway's own traffic except IKE (and its
 * NAT-T keepalives), which must reach the peer in clear to negotiate the SAs
 * everything else waits for. Sets l2_len/l3_len for the SPD.
 */
static inline bool needs_spd(struct rte_mbuf *m)
{
	const struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);
	const struct rte_ipv4_hdr *ip = (const struct rte_ipv4_hdr *)(eth + 1);
	uint32_t len = rte_pktmbuf_data_len(m), hl;

	if (eth->ether_type != RTE_BE16(RTE_ETHER_TYPE_IPV4) || m->nb_segs != 1 ||
	    len < sizeof(*eth) + sizeof(*ip))
		return false;
	hl = (ip->version_ihl & RTE_IPV4_HDR_IHL_MASK) * RTE_IPV4_IHL_MULTIPLIER;
	if ((ip->version_ihl >> 4) != 4 || hl < sizeof(*ip) || len < sizeof(*eth) + hl)
		return false; /* the kernel does not send these; nothing to classify either */
	m->l2_len = sizeof(*eth);
	m->l3_len = hl;
	if (ip->next_proto_id == IPPROTO_UDP &&
	    !(ip->fragment_offset & RTE_BE16(RTE_IPV4_HDR_OFFSET_MASK)) &&
	    len >= sizeof(*eth) + hl + sizeof(struct rte_udp_hdr)) {
		const struct rte_udp_hdr *uh = (const void *)((const uint8_t *)ip + hl);

		if (uh->src_port == RTE_BE16(IKE_PORT) || sad_natt_port(uh->src_port))
			return false;
	}
	return true;
}

void tap_rx_burst(struct worker *w, uint16_t port, struct rte_mbuf **pkts, uint16_t n)
{
	struct rte_mbuf *spd[WORKER_BURST];
	uint16_t ns = 0;

	w->stats[port].from_tap += n;
	if (unlikely(!ports[port].started)) {
		w->stats[port].drop[STATS_DROP_NO_PORT] += n;
		rte_pktmbuf_free_bulk(pkts, n);
		return;
	}
	/* ARP, ND, IKE leave as the kernel sent them; its other IPv4 obeys the SPD. */
	for (uint16_t i = 0; i < n; i++) {
		if (needs_spd(pkts[i]))
			spd[ns++] = pkts[i];
		else
			tx_enqueue(w, port, pkts[i]);
	}
	if (ns > 0)
		outbound_local_burst(w, port, spd, ns);
}
