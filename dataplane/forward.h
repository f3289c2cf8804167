/* SPDX-License-Identifier: BSD-3-Clause */
/* IPv4 forwarding: FIB lookup, TTL, next-hop MAC, out. */
#ifndef DPSEC_FORWARD_H
#define DPSEC_FORWARD_H

#include <string.h>

#include <rte_ip.h>

#include "fib.h"
#include "worker.h"

static inline struct rte_ipv4_hdr *forward_ip4(struct rte_mbuf *m)
{
	return rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *, sizeof(struct rte_ether_hdr));
}

static inline struct rte_ipv6_hdr *forward_ip6(struct rte_mbuf *m)
{
	return rte_pktmbuf_mtod_offset(m, struct rte_ipv6_hdr *, sizeof(struct rte_ether_hdr));
}

/*
 * IPv6 transit in clear (the SPD let it pass): FIB, hop limit (an expiring
 * one goes to the kernel, which answers as a router), next-hop MAC, out.
 */
void forward6_burst(struct worker *w, uint16_t in_port, struct rte_mbuf **pkts, uint16_t n);

/* LPM results for the destinations of @pkts (Ethernet header on). */
void forward4_lookup(struct rte_mbuf **pkts, uint16_t n, uint32_t hop[]);

/*
 * Send @pkts (Ethernet header on, valid IPv4) towards the next hops already
 * looked up; with @ttl the packets are being routed and lose one TTL (expired
 * ones go to the kernel, which answers as a router). Local next hops punt to
 * @in_port's TAP.
 */
void forward4_hops(struct worker *w, uint16_t in_port, struct rte_mbuf **pkts, const uint32_t *hop,
		   uint16_t n, bool ttl);

/* The route and neighbour last resolved for one destination, within a burst. */
struct forward_memo {
	uint32_t dst; /* network order; 0 = nothing yet */
	uint16_t port;
	struct rte_ether_hdr hdr;
};

/*
 * Send @pkts (IPv4 without Ethernet header, room for one in front) that all
 * go to @dst_be, such as the ESP packets of one SA: one route and one
 * neighbour lookup for all of them (none if @memo, zeroed at the start of the
 * burst, already holds that destination), no TTL spent.
 */
void forward4_same_dst(struct worker *w, uint16_t in_port, struct rte_mbuf **pkts, uint16_t n,
		       uint32_t dst_be, struct forward_memo *memo);

static inline void forward4_burst(struct worker *w, uint16_t in_port, struct rte_mbuf **pkts,
				  uint16_t n, bool ttl)
{
	uint32_t hop[WORKER_BURST];

	forward4_lookup(pkts, n, hop);
	forward4_hops(w, in_port, pkts, hop, n, ttl);
}

/*
 * The header checksum of @ip (@hlen bytes, in the mbuf) holds: most headers
 * have no options. 2^16 is 1 modulo 0xffff, so the ones' complement sum of the
 * 16-bit words is 0xffff exactly when the plain sum of the 32-bit words is a
 * nonzero multiple of 0xffff (it is 0 only for an all-zero header): one
 * multiply in place of four folds.
 */
static inline bool forward_ip4_cksum_ok(const struct rte_ipv4_hdr *ip, uint32_t hlen)
{
	const uint8_t *p = (const uint8_t *)ip;
	uint64_t a, b, s;
	uint32_t c;

	if (unlikely(hlen != sizeof(*ip)))
		return rte_raw_cksum(ip, hlen) == 0xffff;
	/* straight from the packet: a copy to an array went through the stack
	 * (a 16-byte store read back 4 bytes at a time, 7 cycles in classify) */
	memcpy(&a, p, 8);
	memcpy(&b, p + 8, 8);
	memcpy(&c, p + 16, 4);
	s = (a & UINT32_MAX) + (a >> 32) + (b & UINT32_MAX) + (b >> 32) + c;
	return s % 0xffff == 0 && s != 0;
}

/* RFC 1624: TTL is the high byte of its 16-bit word, so the sum moves by 0x0100. */
static inline void forward_ttl_decrement(struct rte_ipv4_hdr *ip)
{
	uint32_t c = rte_be_to_cpu_16(ip->hdr_checksum) + 0x0100;

	ip->time_to_live--;
	ip->hdr_checksum = rte_cpu_to_be_16((uint16_t)(c + (c >> 16)));
}

#endif
