/* SPDX-License-Identifier: BSD-3-Clause */
#include <string.h>

#include <rte_arp.h>
#include <rte_ip.h>

#include "classify.h"
#include "fib.h"
#include "forward.h"
#include "mbuf.h"
#include "tap.h"

#define ARP_LEN (sizeof(struct rte_ether_hdr) + sizeof(struct rte_arp_hdr))

enum verdict { V_FORWARD, V_FORWARD6, V_PUNT, V_DROP };

static inline enum verdict check_ipv4(struct rte_mbuf *m, enum stats_drop *why)
{
	struct rte_ipv4_hdr *ip =
	    rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *, sizeof(struct rte_ether_hdr));
	uint32_t l3 = rte_pktmbuf_data_len(m) - sizeof(struct rte_ether_hdr);
	uint32_t hlen, tlen, src, dst;

	if (unlikely(l3 < sizeof(*ip))) {
		*why = STATS_DROP_RUNT;
		return V_DROP;
	}
	hlen = (ip->version_ihl & 0xf) * 4;
	tlen = rte_be_to_cpu_16(ip->total_length);
	if (unlikely((ip->version_ihl >> 4) != 4 || hlen < sizeof(*ip) || tlen < hlen)) {
		*why = STATS_DROP_BAD_IP_HEADER;
		return V_DROP;
	}
	if (unlikely(hlen > l3 || tlen > l3)) {
		*why = STATS_DROP_IP_TRUNCATED;
		return V_DROP;
	}
	if (!(m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_GOOD) &&
	    unlikely(!forward_ip4_cksum_ok(ip, hlen))) {
		*why = STATS_DROP_BAD_IP_CHECKSUM;
		return V_DROP;
	}
	/* Ethernet padding would otherwise be carried (and encrypted) as payload. */
	if (tlen < l3)
		rte_pktmbuf_trim(m, l3 - tlen);
	mbuf_set_lens(m, sizeof(struct rte_ether_hdr), hlen);

	src = rte_be_to_cpu_32(ip->src_addr);
	dst = rte_be_to_cpu_32(ip->dst_addr);
	if (unlikely(dst == RTE_IPV4_BROADCAST || (dst >> 28) == 0xe))
		return V_PUNT;
	if (unlikely(src >= 0xe0000000 || (src >> 24) == 127 || src == 0)) {
		*why = STATS_DROP_MARTIAN;
		return V_DROP;
	}
	return V_FORWARD;
}

static inline bool is_zero_or_loopback6(const uint8_t a[16])
{
	uint64_t hi, lo;

	memcpy(&hi, a, 8);
	memcpy(&lo, a + 8, 8);
	return hi == 0 && (lo == 0 || lo == rte_cpu_to_be_64(1));
}

static inline enum verdict check_ipv6(struct rte_mbuf *m, enum stats_drop *why)
{
	struct rte_ipv6_hdr *ip =
	    rte_pktmbuf_mtod_offset(m, struct rte_ipv6_hdr *, sizeof(struct rte_ether_hdr));
	uint32_t l3 = rte_pktmbuf_data_len(m) - sizeof(struct rte_ether_hdr);
	uint32_t tlen;
	uint64_t dst[2]; /* the hash reads keys a word at a time: an aligned copy */

	if (unlikely(l3 < sizeof(*ip))) {
		*why = STATS_DROP_RUNT;
		return V_DROP;
	}
	tlen = sizeof(*ip) + rte_be_to_cpu_16(ip->payload_len);
	if (unlikely((rte_be_to_cpu_32(ip->vtc_flow) >> 28) != 6)) {
		*why = STATS_DROP_BAD_IP_HEADER;
		return V_DROP;
	}
	if (unlikely(tlen > l3)) {
		*why = STATS_DROP_IP_TRUNCATED;
		return V_DROP;
	}
	if (tlen < l3)
		rte_pktmbuf_trim(m, l3 - tlen);
	mbuf_set_lens(m, sizeof(struct rte_ether_hdr), sizeof(*ip));
	/* Multicast (ND, MLD) and link-local are the kernel's; so are our addresses. */
	memcpy(dst, ip->dst_addr, sizeof(dst));
	if (ip->dst_addr[0] == 0xff ||
	    (ip->dst_addr[0] == 0xfe && (ip->dst_addr[1] & 0xc0) == 0x80) ||
	    rte_hash_lookup(fib.local6, dst) >= 0)
		return V_PUNT;
	/* unspecified, loopback, link-local or multicast source: nothing to route */
	if (unlikely(ip->src_addr[0] == 0xff ||
		     (ip->src_addr[0] == 0xfe && (ip->src_addr[1] & 0xc0) == 0x80) ||
		     is_zero_or_loopback6(ip->src_addr))) {
		*why = STATS_DROP_MARTIAN;
		return V_DROP;
	}
	return V_FORWARD6;
}

uint16_t classify_burst(struct worker *w, uint16_t port, struct rte_mbuf **pkts, uint16_t n,
			struct rte_mbuf **fwd, struct rte_mbuf **fwd6, uint16_t *n6)
{
	const struct rte_ether_addr *mac = &ports[port].mac;
	uint16_t n_fwd = 0;

	*n6 = 0;

	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];
		struct rte_ether_hdr *eth;
		enum stats_drop why = STATS_DROP_ETHERTYPE;
		enum verdict v = V_DROP;

		if (i + 1 < n)
			rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 1], void *));
		/* Chained mbufs are not expected at these MTUs; treat them as malformed. */
		if (unlikely(rte_pktmbuf_data_len(m) < sizeof(*eth) || m->nb_segs != 1)) {
			tx_drop(w, port, m, STATS_DROP_RUNT);
			continue;
		}
		eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
		if (unlikely(!rte_is_same_ether_addr(&eth->dst_addr, mac) &&
			     !rte_is_multicast_ether_addr(&eth->dst_addr))) {
			tx_drop(w, port, m, STATS_DROP_NOT_FOR_US);
			continue;
		}
		switch (eth->ether_type) {
		case RTE_BE16(RTE_ETHER_TYPE_IPV4):
			v = check_ipv4(m, &why);
			break;
		case RTE_BE16(RTE_ETHER_TYPE_ARP):
			v = rte_pktmbuf_data_len(m) >= ARP_LEN ? V_PUNT : V_DROP;
			why = STATS_DROP_RUNT;
			break;
		case RTE_BE16(RTE_ETHER_TYPE_IPV6):
			v = check_ipv6(m, &why);
			break;
		}
		if (likely(v == V_FORWARD))
			fwd[n_fwd++] = m;
		else if (v == V_FORWARD6)
			fwd6[(*n6)++] = m;
		else if (v == V_PUNT)
			tap_punt(w, port, m);
		else
			tx_drop(w, port, m, why);
	}
	return n_fwd;
}
