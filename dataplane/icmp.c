/* SPDX-License-Identifier: BSD-3-Clause */
#include <netinet/in.h>

#include <rte_icmp.h>

#include "forward.h"
#include "icmp.h"
#include "mbuf.h"

/* RFC 792: the offending header plus the first 8 bytes of its payload. */
#define ICMP_QUOTE_EXTRA  8
#define ICMP_DEST_UNREACH 3
#define ICMP_FRAG_NEEDED  4

/* Only ICMP queries (echo, timestamp...) may be answered with an error. */
static bool icmp_query(const struct rte_ipv4_hdr *ip, const struct rte_mbuf *m)
{
	const uint8_t *type = (const uint8_t *)ip + m->l3_len;

	if (ip->next_proto_id != IPPROTO_ICMP)
		return true;
	if (rte_pktmbuf_data_len(m) < m->l2_len + m->l3_len + 1)
		return false;
	return *type == 0 || *type == 8 || *type == 13 || *type == 14;
}

void icmp4_frag_needed(struct worker *w, uint16_t in_port, const struct rte_mbuf *m, uint16_t mtu)
{
	const struct rte_ipv4_hdr *orig = forward_ip4((struct rte_mbuf *)(uintptr_t)m);
	uint64_t now = rte_get_timer_cycles();
	uint32_t quote = RTE_MIN((uint32_t)m->l3_len + ICMP_QUOTE_EXTRA,
				 rte_pktmbuf_data_len(m) - (uint32_t)m->l2_len);
	struct rte_mbuf *r;
	struct rte_ipv4_hdr *ip;
	struct rte_icmp_hdr *icmp;
	uint8_t *data;

	/* Rate limit; never answer an ICMP error (RFC 1122 3.2.2) or a non-first fragment. */
	if (now - w->icmp_tsc < rte_get_timer_hz() / ICMP_RATE_PER_SEC ||
	    ports[in_port].addr4 == 0 ||
	    (orig->fragment_offset & RTE_BE16(RTE_IPV4_HDR_OFFSET_MASK)) || !icmp_query(orig, m))
		return;
	r = rte_pktmbuf_alloc(port_pool);
	if (r == NULL)
		return;
	w->icmp_tsc = now;
	data = (uint8_t *)rte_pktmbuf_append(r, sizeof(struct rte_ether_hdr) + sizeof(*ip) +
						    sizeof(*icmp) + quote);
	if (data == NULL) {
		rte_pktmbuf_free(r);
		return;
	}
	ip = (struct rte_ipv4_hdr *)(data + sizeof(struct rte_ether_hdr));
	icmp = (struct rte_icmp_hdr *)(ip + 1);
	*ip = (struct rte_ipv4_hdr){
	    .version_ihl = RTE_IPV4_VHL_DEF,
	    .type_of_service = 0xc0, /* internetwork control */
	    .total_length = rte_cpu_to_be_16(sizeof(*ip) + sizeof(*icmp) + quote),
	    .time_to_live = 64,
	    .next_proto_id = IPPROTO_ICMP,
	    .src_addr = ports[in_port].addr4,
	    .dst_addr = orig->src_addr,
	};
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	*icmp = (struct rte_icmp_hdr){
	    .icmp_type = ICMP_DEST_UNREACH,
	    .icmp_code = ICMP_FRAG_NEEDED,
	    .icmp_seq_nb = rte_cpu_to_be_16(mtu),
	};
	rte_memcpy(icmp + 1, orig, quote);
	icmp->icmp_cksum = ~rte_raw_cksum(icmp, sizeof(*icmp) + quote);
	mbuf_set_lens(r, sizeof(struct rte_ether_hdr), sizeof(*ip));
	forward4_burst(w, in_port, &r, 1, false);
}
