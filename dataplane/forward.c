/* SPDX-License-Identifier: BSD-3-Clause */
#include <rte_ip.h>

#include "fib.h"
#include "forward.h"
#include "neigh.h"
#include "tap.h"
#include "upcall.h"

static inline struct rte_ipv4_hdr *ip4(struct rte_mbuf *m)
{
	return rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *, sizeof(struct rte_ether_hdr));
}

/* RFC 1624: TTL is the high byte of its 16-bit word, so the sum moves by 0x0100. */
static inline void ttl_decrement(struct rte_ipv4_hdr *ip)
{
	uint32_t c = rte_be_to_cpu_16(ip->hdr_checksum) + 0x0100;

	ip->time_to_live--;
	ip->hdr_checksum = rte_cpu_to_be_16((uint16_t)(c + (c >> 16)));
}

void forward4_burst(struct worker *w, uint16_t in_port, struct rte_mbuf **pkts, uint16_t n)
{
	uint32_t dst[WORKER_BURST], hop[WORKER_BURST];
	struct neigh_key keys[WORKER_BURST];
	const void *kp[WORKER_BURST];
	struct rte_mbuf *out[WORKER_BURST];
	const struct fib_nexthop *nhs[WORKER_BURST];
	void *data[WORKER_BURST];
	uint64_t hits = 0;
	uint16_t m = 0;

	for (uint16_t i = 0; i < n; i++)
		dst[i] = rte_be_to_cpu_32(ip4(pkts[i])->dst_addr);
	rte_lpm_lookup_bulk(fib.lpm4, dst, hop, n);

	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *p = pkts[i];
		const struct fib_nexthop *nh;

		if (unlikely(!(hop[i] & RTE_LPM_LOOKUP_SUCCESS))) {
			tx_drop(w, in_port, p, STATS_DROP_NO_ROUTE);
			continue;
		}
		nh = &fib.nh[hop[i] & 0x00ffffff];
		/* Expired TTLs go to the kernel, which answers as a router (rate-limited). */
		if (nh->kind == FIB_NH_LOCAL || unlikely(ip4(p)->time_to_live <= 1)) {
			tap_punt(w, in_port, p);
			continue;
		}
		if (nh->kind == FIB_NH_GATEWAY) {
			uint32_t gw;

			__builtin_memcpy(&gw, nh->gw, 4);
			neigh_key4(&keys[m], nh->port, gw);
		} else {
			neigh_key4(&keys[m], nh->port, ip4(p)->dst_addr);
		}
		kp[m] = &keys[m];
		nhs[m] = nh;
		out[m++] = p;
	}
	if (m == 0)
		return;
	rte_hash_lookup_bulk_data(neigh_table, kp, m, &hits, data);

	for (uint16_t i = 0; i < m; i++) {
		struct rte_mbuf *p = out[i];
		struct rte_ether_hdr *eth = rte_pktmbuf_mtod(p, struct rte_ether_hdr *);
		uint16_t port = nhs[i]->port;

		if (unlikely(!((hits >> i) & 1) ||
			     !neigh_mac((uintptr_t)data[i], &eth->dst_addr))) {
			uint32_t addr;

			__builtin_memcpy(&addr, keys[i].addr, 4);
			upcall_resolve4(w, port, addr);
			tx_drop(w, in_port, p, STATS_DROP_NEIGH_MISS);
			continue;
		}
		ttl_decrement(ip4(p));
		rte_ether_addr_copy(&ports[port].mac, &eth->src_addr);
		tx_enqueue(w, port, p);
	}
}
