/* SPDX-License-Identifier: BSD-3-Clause */
#include <rte_fib6.h>

#include "forward.h"
#include "neigh.h"
#include "tap.h"
#include "upcall.h"

/*
 * A burst comes in runs of one destination (a flow; every ESP packet of a
 * peer to our one address): each run is looked up once (callgrind, decrypt
 * 64 B: ~25 instructions a packet and lookup, ~12 this way).
 */
void forward4_lookup(struct rte_mbuf **pkts, uint16_t n, uint32_t hop[])
{
	uint32_t dst[WORKER_BURST], run_hop[WORKER_BURST], last = 0;
	uint8_t run[WORKER_BURST];
	uint16_t nr = 0;

	for (uint16_t i = 0; i < n; i++) {
		uint32_t d = forward_ip4(pkts[i])->dst_addr;

		if (nr == 0 || d != last) {
			dst[nr++] = rte_be_to_cpu_32(d);
			last = d;
		}
		run[i] = (uint8_t)(nr - 1);
	}
	rte_lpm_lookup_bulk(fib.lpm4, dst, run_hop, nr);
	for (uint16_t i = 0; i < n; i++)
		hop[i] = run_hop[run[i]];
}

void forward4_same_dst(struct worker *w, uint16_t in_port, struct rte_mbuf **pkts, uint16_t n,
		       uint32_t dst_be, struct forward_memo *memo)
{
	const struct fib_nexthop *nh;
	struct rte_ether_hdr hdr;
	struct neigh_key key;
	uint32_t hop, addr;
	void *data;

	for (uint16_t i = 0; i < n; i++) {
		rte_pktmbuf_prepend(pkts[i], sizeof(struct rte_ether_hdr));
		pkts[i]->l2_len = sizeof(struct rte_ether_hdr);
	}
	if (likely(memo->dst == dst_be && dst_be != 0)) {
		for (uint16_t i = 0; i < n; i++)
			rte_memcpy(rte_pktmbuf_mtod(pkts[i], void *), &memo->hdr,
				   sizeof(memo->hdr));
		tx_enqueue_bulk(w, memo->port, pkts, n);
		return;
	}
	if (unlikely(rte_lpm_lookup(fib.lpm4, rte_be_to_cpu_32(dst_be), &hop) != 0)) {
		w->stats[in_port].drop[STATS_DROP_NO_ROUTE] += n;
		rte_pktmbuf_free_bulk(pkts, n);
		return;
	}
	nh = &fib.nh[hop & 0x00ffffff];
	if (unlikely(nh->kind == FIB_NH_LOCAL)) {
		for (uint16_t i = 0; i < n; i++)
			tap_punt(w, in_port, pkts[i]);
		return;
	}
	if (nh->kind == FIB_NH_GATEWAY)
		__builtin_memcpy(&addr, nh->gw, 4);
	else
		addr = dst_be;
	neigh_key4(&key, nh->port, addr);
	if (unlikely(rte_hash_lookup_data(neigh_table, &key, &data) < 0 ||
		     !neigh_mac((uintptr_t)data, &hdr.dst_addr))) {
		upcall_resolve4(w, nh->port, addr);
		w->stats[in_port].drop[STATS_DROP_NEIGH_MISS] += n;
		rte_pktmbuf_free_bulk(pkts, n);
		return;
	}
	rte_ether_addr_copy(&ports[nh->port].mac, &hdr.src_addr);
	hdr.ether_type = RTE_BE16(RTE_ETHER_TYPE_IPV4);
	memo->dst = dst_be;
	memo->port = nh->port;
	memo->hdr = hdr;
	for (uint16_t i = 0; i < n; i++)
		rte_memcpy(rte_pktmbuf_mtod(pkts[i], void *), &hdr, sizeof(hdr));
	tx_enqueue_bulk(w, nh->port, pkts, n);
}

void forward4_hops(struct worker *w, uint16_t in_port, struct rte_mbuf **pkts, const uint32_t *hop,
		   uint16_t n, bool ttl)
{
	struct neigh_key keys[WORKER_BURST];
	const void *kp[WORKER_BURST];
	struct rte_mbuf *out[WORKER_BURST];
	uint16_t oport[WORKER_BURST];
	uint8_t slot[WORKER_BURST]; /* out[i]'s key in keys[] */
	void *data[WORKER_BURST];
	struct rte_ether_hdr hdr[WORKER_BURST];
	bool ok[WORKER_BURST];
	uint64_t hits = 0, last = UINT64_MAX;
	uint16_t m = 0, nk = 0;

	RTE_BUILD_BUG_ON(WORKER_BURST > RTE_HASH_LOOKUP_BULK_MAX);

	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *p = pkts[i];
		const struct fib_nexthop *nh;
		uint32_t addr;
		uint64_t id;

		if (unlikely(!(hop[i] & RTE_LPM_LOOKUP_SUCCESS))) {
			tx_drop(w, in_port, p, STATS_DROP_NO_ROUTE);
			continue;
		}
		nh = &fib.nh[hop[i] & 0x00ffffff];
		if (nh->kind == FIB_NH_LOCAL ||
		    (ttl && unlikely(forward_ip4(p)->time_to_live <= 1))) {
			tap_punt(w, in_port, p);
			continue;
		}
		if (nh->kind == FIB_NH_GATEWAY)
			__builtin_memcpy(&addr, nh->gw, 4);
		else
			addr = forward_ip4(p)->dst_addr;
		/* A burst mostly goes to one next hop (the peer gateway, a router):
		 * look each run of equal neighbours up once. */
		id = (uint64_t)nh->port << 32 | addr;
		if (id != last) {
			neigh_key4(&keys[nk], nh->port, addr);
			kp[nk] = &keys[nk];
			nk++;
			last = id;
		}
		slot[m] = (uint8_t)(nk - 1);
		oport[m] = nh->port;
		out[m++] = p;
	}
	if (m == 0)
		return;
	rte_hash_lookup_bulk_data(neigh_table, kp, nk, &hits, data);
	/* one Ethernet header per next hop, copied onto its packets whole */
	for (uint16_t k = 0; k < nk; k++) {
		ok[k] = ((hits >> k) & 1) && neigh_mac((uintptr_t)data[k], &hdr[k].dst_addr);
		if (ok[k]) {
			rte_ether_addr_copy(&ports[keys[k].port].mac, &hdr[k].src_addr);
			hdr[k].ether_type = RTE_BE16(RTE_ETHER_TYPE_IPV4);
		}
	}
	/* by runs of one next hop, which is one ethdev */
	for (uint16_t i = 0, j; i < m; i = j) {
		uint8_t k = slot[i];

		for (j = i + 1; j < m && slot[j] == k; j++)
			;
		if (unlikely(!ok[k])) {
			uint32_t addr;

			__builtin_memcpy(&addr, keys[k].addr, 4);
			for (uint16_t l = i; l < j; l++) {
				upcall_resolve4(w, oport[l], addr);
				tx_drop(w, in_port, out[l], STATS_DROP_NEIGH_MISS);
			}
			continue;
		}
		for (uint16_t l = i; l < j; l++) {
			struct rte_mbuf *p = out[l];

			if (ttl)
				forward_ttl_decrement(forward_ip4(p));
			rte_memcpy(rte_pktmbuf_mtod(p, void *), &hdr[k], sizeof(hdr[k]));
		}
		tx_enqueue_bulk(w, oport[i], &out[i], j - i);
	}
}

void forward6_burst(struct worker *w, uint16_t in_port, struct rte_mbuf **pkts, uint16_t n)
{
	struct rte_fib6 *f6 = __atomic_load_n(&fib.fib6, __ATOMIC_ACQUIRE);
	uint8_t ips[WORKER_BURST][RTE_FIB6_IPV6_ADDR_SIZE];
	uint64_t hop[WORKER_BURST], hits = 0;
	struct neigh_key keys[WORKER_BURST];
	const void *kp[WORKER_BURST];
	struct rte_mbuf *out[WORKER_BURST];
	uint16_t oport[WORKER_BURST];
	uint8_t slot[WORKER_BURST];
	void *data[WORKER_BURST];
	struct rte_ether_hdr hdr[WORKER_BURST];
	bool ok[WORKER_BURST];
	uint16_t m = 0, nk = 0;

	for (uint16_t i = 0; i < n; i++)
		memcpy(ips[i], forward_ip6(pkts[i])->dst_addr, RTE_FIB6_IPV6_ADDR_SIZE);
	rte_fib6_lookup_bulk(f6, ips, hop, n);
	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *p = pkts[i];
		const struct rte_ipv6_hdr *ip = forward_ip6(p);
		const struct fib_nexthop *nh;
		const uint8_t *addr;

		if (unlikely(hop[i] == 0 || hop[i] >= FIB_MAX_NEXTHOPS)) {
			tx_drop(w, in_port, p, STATS_DROP_NO_ROUTE);
			continue;
		}
		nh = &fib.nh[hop[i]];
		if (nh->kind == FIB_NH_LOCAL || unlikely(ip->hop_limits <= 1)) {
			tap_punt(w, in_port, p);
			continue;
		}
		addr = nh->kind == FIB_NH_GATEWAY ? nh->gw : ip->dst_addr;
		/* runs of one next hop are looked up once, as for IPv4 */
		if (nk == 0 || keys[nk - 1].port != nh->port ||
		    memcmp(keys[nk - 1].addr, addr, 16) != 0) {
			neigh_key6(&keys[nk], nh->port, addr);
			kp[nk] = &keys[nk];
			nk++;
		}
		slot[m] = (uint8_t)(nk - 1);
		oport[m] = nh->port;
		out[m++] = p;
	}
	if (m == 0)
		return;
	rte_hash_lookup_bulk_data(neigh_table, kp, nk, &hits, data);
	for (uint16_t k = 0; k < nk; k++) {
		ok[k] = ((hits >> k) & 1) && neigh_mac((uintptr_t)data[k], &hdr[k].dst_addr);
		if (ok[k]) {
			rte_ether_addr_copy(&ports[keys[k].port].mac, &hdr[k].src_addr);
			hdr[k].ether_type = RTE_BE16(RTE_ETHER_TYPE_IPV6);
		}
	}
	for (uint16_t i = 0; i < m; i++) {
		struct rte_mbuf *p = out[i];
		uint8_t k = slot[i];

		if (unlikely(!ok[k])) {
			upcall_resolve6(w, oport[i], keys[k].addr);
			tx_drop(w, in_port, p, STATS_DROP_NEIGH_MISS);
			continue;
		}
		forward_ip6(p)->hop_limits--; /* no header checksum in IPv6 */
		rte_memcpy(rte_pktmbuf_mtod(p, void *), &hdr[k], sizeof(hdr[k]));
		tx_enqueue(w, oport[i], p);
	}
}
