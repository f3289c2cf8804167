/* SPDX-License-Identifier: BSD-3-Clause */
#include <rte_ether.h>
#include <rte_ip.h>

#include "frag.h"
#include "mbuf.h"

uint16_t frag4(const struct rte_mbuf *m, uint32_t mtu, struct rte_mempool *pool,
	       struct rte_mbuf *out[FRAG_MAX])
{
	const uint32_t l2 = sizeof(struct rte_ether_hdr), l3 = sizeof(struct rte_ipv4_hdr);
	const uint8_t *base = rte_pktmbuf_mtod(m, const uint8_t *);
	const struct rte_ipv4_hdr *ip = (const struct rte_ipv4_hdr *)(base + l2);
	uint32_t tot = rte_be_to_cpu_16(ip->total_length), payload = tot - l3;
	uint32_t chunk = mtu > l3 ? (mtu - l3) & ~7u : 0; /* offsets count 8-byte units */
	uint16_t off0 = rte_be_to_cpu_16(ip->fragment_offset);
	uint16_t n;

	if (m->l3_len != l3 || rte_pktmbuf_data_len(m) < l2 + l3 || tot < l3 || chunk == 0 ||
	    l2 + tot > m->pkt_len || (payload + chunk - 1) / chunk > FRAG_MAX)
		return 0;
	n = (payload + chunk - 1) / chunk;
	if (rte_pktmbuf_alloc_bulk(pool, out, n) != 0)
		return 0;
	for (uint16_t i = 0; i < n; i++) {
		uint32_t at = i * chunk, len = RTE_MIN(chunk, payload - at);
		uint8_t *p = (uint8_t *)rte_pktmbuf_append(out[i], l2 + l3 + len);
		/* The last piece keeps the original MF: the packet may itself be a fragment. */
		uint16_t mf = i + 1 < n ? RTE_IPV4_HDR_MF_FLAG : (off0 & RTE_IPV4_HDR_MF_FLAG);
		struct rte_ipv4_hdr *fh;
		const void *src;

		if (p == NULL) { /* an MTU above the pool's buffers */
			rte_pktmbuf_free_bulk(out, n);
			return 0;
		}
		fh = (struct rte_ipv4_hdr *)(p + l2);
		src = rte_pktmbuf_read(m, l2 + l3 + at, len, p + l2 + l3);
		rte_memcpy(p, base, l2 + l3);
		if (src != p + l2 + l3) /* a contiguous source is not copied by the read */
			rte_memcpy(p + l2 + l3, src, len);
		fh->total_length = rte_cpu_to_be_16(l3 + len);
		fh->fragment_offset =
		    rte_cpu_to_be_16(mf | ((off0 & RTE_IPV4_HDR_OFFSET_MASK) + at / 8));
		fh->hdr_checksum = 0;
		fh->hdr_checksum = rte_ipv4_cksum(fh);
		mbuf_set_lens(out[i], l2, l3);
	}
	return n;
}
