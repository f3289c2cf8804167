/* SPDX-License-Identifier: BSD-3-Clause */
#include <netinet/in.h>

#include <rte_ip.h>
#include <rte_udp.h>

#include "frag.h"
#include "outbound.h"
#include "tap.h"

#include "sad.h"

#define IKE_PORT 500

/* The kernel's IKE (and NAT-T keepalives) from a UDP header at @uh (@left bytes there). */
static inline bool is_ike(const uint8_t *uh, uint32_t left)
{
	const struct rte_udp_hdr *u = (const struct rte_udp_hdr *)uh;

	return left >= sizeof(*u) &&
	       (u->src_port == RTE_BE16(IKE_PORT) || sad_natt_port(u->src_port));
}

void tap_punt_pieces(struct worker *w, uint16_t port, struct rte_mbuf *m)
{
	struct rte_mbuf *piece[FRAG_MAX];
	uint16_t n = frag4(m, port_min_mtu, port_pool, piece);

	if (unlikely(n == 0)) { /* IP options, more than FRAG_MAX pieces, or out of mbufs */
		w->gstats->reass_dropped++;
		rte_pktmbuf_free(m);
		return;
	}
	rte_pktmbuf_free(m);
	for (uint16_t i = 0; i < n; i++)
		tap_punt(w, port, piece[i]);
}

enum tap_kind { TAP_AS_IS, TAP_SPD4, TAP_SPD6 };

/*
 * What the SPD must see: all of the gateway's own IP traffic except IKE (it
 * negotiates the SAs everything else waits for) and IPv6's own neighbour
 * discovery and multicast listener messages. Sets l2_len/l3_len for the SPD.
 */
static inline enum tap_kind tap_kind(struct rte_mbuf *m)
{
	const struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);
	const uint8_t *l3 = (const uint8_t *)(eth + 1);
	uint32_t len = rte_pktmbuf_data_len(m), hl;

	if (m->nb_segs != 1 || len < sizeof(*eth) + sizeof(struct rte_ipv4_hdr))
		return TAP_AS_IS;
	m->l2_len = sizeof(*eth);
	if (eth->ether_type == RTE_BE16(RTE_ETHER_TYPE_IPV4)) {
		const struct rte_ipv4_hdr *ip = (const struct rte_ipv4_hdr *)l3;

		hl = (ip->version_ihl & RTE_IPV4_HDR_IHL_MASK) * RTE_IPV4_IHL_MULTIPLIER;
		if ((ip->version_ihl >> 4) != 4 || hl < sizeof(*ip) || len < sizeof(*eth) + hl)
			return TAP_AS_IS; /* the kernel does not send these; nothing to classify */
		m->l3_len = hl;
		if (ip->next_proto_id == IPPROTO_UDP &&
		    !(ip->fragment_offset & RTE_BE16(RTE_IPV4_HDR_OFFSET_MASK)) &&
		    is_ike(l3 + hl, len - sizeof(*eth) - hl))
			return TAP_AS_IS;
		return TAP_SPD4;
	}
	if (eth->ether_type == RTE_BE16(RTE_ETHER_TYPE_IPV6) &&
	    len >= sizeof(*eth) + sizeof(struct rte_ipv6_hdr)) {
		const struct rte_ipv6_hdr *ip = (const struct rte_ipv6_hdr *)l3;
		uint32_t off = sizeof(*ip), left = len - sizeof(*eth);
		uint8_t nh = ip->proto;

		m->l3_len = sizeof(*ip);
		/* MLD reports sit behind a hop-by-hop header */
		if (nh == IPPROTO_HOPOPTS && left >= off + 8) {
			nh = l3[off];
			off += (l3[off + 1] + 1u) * 8;
		}
		if (nh == IPPROTO_ICMPV6 && left > off) {
			uint8_t type = l3[off];

			if ((type >= 130 && type <= 137) ||
			    type == 143) /* MLD, RS, RA, NS, NA, redirect */
				return TAP_AS_IS;
		}
		if (nh == IPPROTO_UDP && left > off && is_ike(l3 + off, left - off))
			return TAP_AS_IS;
		return TAP_SPD6;
	}
	return TAP_AS_IS;
}

void tap_rx_burst(struct worker *w, uint16_t port, struct rte_mbuf **pkts, uint16_t n)
{
	struct rte_mbuf *spd[WORKER_BURST], *spd6[WORKER_BURST];
	uint16_t ns = 0, ns6 = 0;

	w->stats[port].from_tap += n;
	if (unlikely(!ports[port].started)) {
		w->stats[port].drop[STATS_DROP_NO_PORT] += n;
		rte_pktmbuf_free_bulk(pkts, n);
		return;
	}
	/* ARP, ND, IKE leave as the kernel sent them; its other traffic obeys the SPD. */
	for (uint16_t i = 0; i < n; i++) {
		switch (tap_kind(pkts[i])) {
		case TAP_SPD4:
			spd[ns++] = pkts[i];
			break;
		case TAP_SPD6:
			spd6[ns6++] = pkts[i];
			break;
		default:
			tx_enqueue(w, port, pkts[i]);
		}
	}
	if (ns > 0)
		outbound_local_burst(w, port, spd, ns);
	if (ns6 > 0)
		outbound6_local_burst(w, port, spd6, ns6);
}
