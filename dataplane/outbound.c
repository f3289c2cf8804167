/* SPDX-License-Identifier: BSD-3-Clause */
#include <netinet/in.h>

#include <rte_esp.h>
#include <rte_udp.h>

#include "esp.h"
#include "forward.h"
#include "frag.h"
#include "icmp.h"
#include "outbound.h"
#include "sad.h"
#include "spd.h"
#include "tap.h"
#include "upcall.h"

/* Packets of one burst that go to the same SA, encrypted with one call. */
struct esp_group {
	struct sa *sa;
	uint16_t n;
	struct rte_mbuf *m[WORKER_BURST];
};

/* The SPD reads the selector ports behind the IP header: hand it every contiguous byte. */
static inline void l3_of(struct rte_mbuf **pkts, uint16_t n, const uint8_t *l3[], uint16_t len[])
{
	for (uint16_t i = 0; i < n; i++) {
		l3[i] = (const uint8_t *)forward_ip4(pkts[i]);
		len[i] =
		    (uint16_t)RTE_MIN(rte_pktmbuf_data_len(pkts[i]) - pkts[i]->l2_len, UINT16_MAX);
	}
}

/*
 * The largest inner packet an SA of this geometry can carry without the ESP
 * packet exceeding the wire MTU.
 */
static inline uint32_t inner_limit(bool v6, bool natt, uint32_t iv_len, uint32_t icv_len,
				   uint32_t pad_align)
{
	uint32_t hdr = (v6 ? sizeof(struct rte_ipv6_hdr) : sizeof(struct rte_ipv4_hdr)) +
		       (natt ? sizeof(struct rte_udp_hdr) : 0) + sizeof(struct rte_esp_hdr) +
		       iv_len + icv_len;

	if (port_min_mtu <= hdr + 2 + pad_align)
		return 0;
	/* Payload plus the 2-byte trailer is padded to the cipher's (power of two) alignment. */
	return ((port_min_mtu - hdr) & ~(pad_align - 1)) - 2;
}

static inline uint32_t max_inner(const struct sa *sa)
{
	return inner_limit(sa->family != AF_INET, sa->natt, sa->iv_len, sa->icv_len, sa->pad_align);
}

/*
 * What every SA can carry (the limit only grows with less geometry): packets
 * up to it are grouped without reading their SA, whose first line is then
 * still on its way from memory (10k SAs, 64 B: 1.028x, 5 of 6 pairs; 1 SA 1.016x).
 */
static inline uint32_t fits_any_sa(void)
{
	return inner_limit(true, true, SAD_IV_MAX, SAD_ICV_MAX, SAD_PAD_ALIGN_MAX);
}

static inline void acquire(struct worker *w, const struct spd_policy *p, struct rte_mbuf *m,
			   uint64_t now)
{
	const struct rte_ipv4_hdr *ip = forward_ip4(m);

	if (spd_trap_should_raise(p, w->id, now))
		upcall_acquire4(w, p, ip->src_addr, ip->dst_addr, ip->next_proto_id);
}

/*
 * Packets join their SA's group a run at a time: the run's length stays in a
 * register, where a group count bumped per packet would wait on its own store.
 */
struct group_run {
	struct sa *sa;
	uint16_t g, n;
	struct esp_group_index idx;
};

static inline void group_flush(struct esp_group *g, struct group_run *r)
{
	if (r->sa != NULL)
		g[r->g].n += r->n;
	r->n = 0;
}

static inline void group_add(struct esp_group *g, uint16_t *ng, struct group_run *r, struct sa *sa,
			     struct rte_mbuf *m)
{
	if (sa != r->sa) {
		uint16_t i;

		group_flush(g, r);
		i = esp_group_of(&r->idx, sa, *ng);
		if (i == *ng) {
			g[i].sa = sa;
			g[i].n = 0;
			(*ng)++;
		}
		r->sa = sa;
		r->g = i;
	}
	g[r->g].m[g[r->g].n + r->n++] = m;
}

/* Encrypt each group and route its ESP packets on the SA's outer destination. */
static void encrypt_groups(struct worker *w, uint16_t in_port, struct esp_group *g, uint16_t ng,
			   bool local, uint64_t now)
{
	struct forward_memo memo = {.dst = 0};
	struct esp_job jobs[WORKER_BURST];

	RTE_BUILD_BUG_ON(WORKER_BURST > ESP_JOBS_MAX);
	for (uint16_t i = 0; i < ng; i++) {
		struct esp_group *e = &g[i];

		for (uint16_t j = 0; j < e->n; j++) {
			if (!local)
				forward_ttl_decrement(forward_ip4(e->m[j]));
			rte_pktmbuf_adj(e->m[j], sizeof(struct rte_ether_hdr));
		}
		jobs[i] = (struct esp_job){.sa = e->sa, .mb = e->m, .n = e->n};
	}
	esp_outbound_bulk(jobs, ng, w->id, now);
	for (uint16_t i = 0; i < ng; i++) {
		struct esp_group *e = &g[i];
		uint16_t ok = jobs[i].ok;

		if (unlikely(ok < e->n)) {
			w->stats[in_port].drop[STATS_DROP_ESP] += e->n - ok;
			rte_pktmbuf_free_bulk(&e->m[ok], e->n - ok);
		}
		if (unlikely(e->sa->family != AF_INET)) {
			/* IPv6 outer headers need the IPv6 FIB. */
			w->stats[in_port].drop[STATS_DROP_IPV6_FORWARD] += ok;
			rte_pktmbuf_free_bulk(e->m, ok);
			continue;
		}
		if (ok > 0) {
			/* from the outer header rte_ipsec wrote from the SA's template: the
			 * packet's line is at hand, the SA's dst is not (10k SAs) */
			uint32_t dst =
			    rte_pktmbuf_mtod(e->m[0], const struct rte_ipv4_hdr *)->dst_addr;

			forward4_same_dst(w, in_port, e->m, ok, dst, &memo);
		}
	}
}

/*
 * Wider than the tunnel: a DF packet gets "fragmentation needed" (PMTUD), any
 * other is split before encryption and its pieces encrypted right away.
 */
static void too_big(struct worker *w, uint16_t in_port, struct sa *sa, struct rte_mbuf *m,
		    bool local, uint64_t now)
{
	struct esp_group g = {.sa = sa};
	uint32_t mtu = max_inner(sa);

	if (forward_ip4(m)->fragment_offset & RTE_BE16(RTE_IPV4_HDR_DF_FLAG)) {
		icmp4_frag_needed(w, in_port, m, mtu);
		tx_drop(w, in_port, m, STATS_DROP_TOO_BIG);
		return;
	}
	g.n = frag4(m, mtu, port_pool, g.m);
	if (g.n == 0) {
		tx_drop(w, in_port, m, STATS_DROP_TOO_BIG);
		return;
	}
	rte_pktmbuf_free(m);
	encrypt_groups(w, in_port, &g, 1, local, now);
}

/* @hop NULL: the gateway's own packets (outbound_local_burst). */
static void classify_out(struct worker *w, uint16_t in_port, struct rte_mbuf **pkts,
			 const uint32_t *hop, uint16_t n)
{
	const bool local = hop == NULL;
	const uint8_t *l3[WORKER_BURST];
	uint16_t l3_len[WORKER_BURST];
	struct spd_policy *pol[WORKER_BURST];
	struct spd_verdict v[WORKER_BURST];
	struct rte_mbuf *plain[WORKER_BURST], *other[WORKER_BURST];
	uint32_t plain_hop[WORKER_BURST], other_hop[WORKER_BURST];
	struct esp_group groups[WORKER_BURST];
	struct group_run run = {.sa = NULL, .n = 0};
	uint16_t n_plain = 0, n_other = 0, ng = 0;
	uint64_t now = rte_get_timer_cycles();
	uint32_t fits_any = fits_any_sa();

	esp_group_index_init(&run.idx);
	l3_of(pkts, n, l3, l3_len);
	spd_classify(DPSEC__DIR__DIR_OUT, AF_INET, l3, l3_len, n, w->id, now, pol, v);
	/* start loading every SA of the burst before the first one is needed */
	for (uint16_t i = 0, last = n; i < n; i++) {
		if (v[i].sa == NULL)
			continue;
		if (last == n || v[i].sa != v[last].sa)
			sad_prefetch(v[i].sa, true);
		last = i;
	}
	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];
		const struct spd_policy *p = pol[i];
		struct sa *sa;

		if (p == NULL) {
			other[n_other] = m;
			other_hop[n_other++] = local ? 0 : hop[i];
			continue;
		}
		switch (v[i].action) {
		case DPSEC__ACTION__ACT_BYPASS:
			plain[n_plain] = m;
			plain_hop[n_plain++] = local ? 0 : hop[i];
			break;
		case DPSEC__ACTION__ACT_PROTECT:
			sa = v[i].sa;
			if (unlikely(sa == NULL)) {
				/* Never plaintext for a protected selector: ask IKE for an SA. */
				acquire(w, p, m, now);
				tx_drop(w, in_port, m, STATS_DROP_NO_SA);
			} else if (unlikely(!local && forward_ip4(m)->time_to_live <= 1)) {
				tap_punt(w, in_port, m);
			} else if (unlikely(rte_pktmbuf_pkt_len(m) - m->l2_len > fits_any &&
					    rte_pktmbuf_pkt_len(m) - m->l2_len > max_inner(sa))) {
				too_big(w, in_port, sa, m, local, now);
			} else {
				group_add(groups, &ng, &run, sa, m);
			}
			break;
		case DPSEC__ACTION__ACT_TRAP:
			acquire(w, p, m, now);
			tx_drop(w, in_port, m, STATS_DROP_TRAP);
			break;
		default:
			tx_drop(w, in_port, m, STATS_DROP_POLICY);
			break;
		}
	}
	group_flush(groups, &run);
	if (n_other > 0) {
		/* No outbound policy: cleartext an inbound protect policy covers is refused. */
		l3_of(other, n_other, l3, l3_len);
		spd_classify(DPSEC__DIR__DIR_IN, AF_INET, l3, l3_len, n_other, w->id, now, pol, v);
		for (uint16_t i = 0; i < n_other; i++) {
			if (pol[i] != NULL && v[i].action != DPSEC__ACTION__ACT_BYPASS) {
				tx_drop(w, in_port, other[i], STATS_DROP_POLICY);
				continue;
			}
			plain[n_plain] = other[i];
			plain_hop[n_plain++] = other_hop[i];
		}
	}
	if (n_plain > 0 && local)
		for (uint16_t i = 0; i < n_plain; i++)
			tx_enqueue(w, in_port, plain[i]); /* as the kernel framed it */
	else if (n_plain > 0)
		forward4_hops(w, in_port, plain, plain_hop, n_plain, true);
	if (ng > 0)
		encrypt_groups(w, in_port, groups, ng, local, now);
}

void outbound_burst(struct worker *w, uint16_t in_port, struct rte_mbuf **pkts, const uint32_t *hop,
		    uint16_t n)
{
	classify_out(w, in_port, pkts, hop, n);
}

void outbound_local_burst(struct worker *w, uint16_t port, struct rte_mbuf **pkts, uint16_t n)
{
	classify_out(w, port, pkts, NULL, n);
}

static void classify_out6(struct worker *w, uint16_t port, struct rte_mbuf **pkts, uint16_t n,
			  bool local)
{
	const uint8_t *l3[WORKER_BURST];
	uint16_t len[WORKER_BURST];
	struct spd_policy *pol[WORKER_BURST];
	struct rte_mbuf *plain[WORKER_BURST], *other[WORKER_BURST];
	uint16_t n_plain = 0, n_other = 0;
	uint64_t now = rte_get_timer_cycles();

	for (uint16_t i = 0; i < n; i++) {
		l3[i] = (const uint8_t *)forward_ip6(pkts[i]);
		len[i] = (uint16_t)(rte_pktmbuf_data_len(pkts[i]) - pkts[i]->l2_len);
	}
	spd_classify(DPSEC__DIR__DIR_OUT, AF_INET6, l3, len, n, w->id, now, pol, NULL);
	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];
		const struct spd_policy *p = pol[i];
		const struct rte_ipv6_hdr *ip = forward_ip6(m);

		if (p == NULL) {
			other[n_other++] = m;
			continue;
		}
		switch (p->action) {
		case DPSEC__ACTION__ACT_BYPASS:
			plain[n_plain++] = m;
			break;
		case DPSEC__ACTION__ACT_TRAP:
			if (spd_trap_should_raise(p, w->id, now))
				upcall_acquire6(w, p, ip->src_addr, ip->dst_addr, ip->proto);
			tx_drop(w, port, m, STATS_DROP_TRAP);
			break;
		case DPSEC__ACTION__ACT_PROTECT:
			tx_drop(w, port, m, STATS_DROP_IPV6_ESP);
			break;
		default:
			tx_drop(w, port, m, STATS_DROP_POLICY);
			break;
		}
	}
	if (n_other > 0) {
		/* No outbound policy: cleartext an inbound protect policy covers is refused. */
		for (uint16_t i = 0; i < n_other; i++) {
			l3[i] = (const uint8_t *)forward_ip6(other[i]);
			len[i] = (uint16_t)(rte_pktmbuf_data_len(other[i]) - other[i]->l2_len);
		}
		spd_classify(DPSEC__DIR__DIR_IN, AF_INET6, l3, len, n_other, w->id, now, pol, NULL);
		for (uint16_t i = 0; i < n_other; i++) {
			if (pol[i] != NULL && pol[i]->action != DPSEC__ACTION__ACT_BYPASS) {
				tx_drop(w, port, other[i], STATS_DROP_POLICY);
				continue;
			}
			plain[n_plain++] = other[i];
		}
	}
	if (n_plain > 0 && local)
		for (uint16_t i = 0; i < n_plain; i++)
			tx_enqueue(w, port, plain[i]); /* as the kernel framed it */
	else if (n_plain > 0)
		forward6_burst(w, port, plain, n_plain);
}

void outbound6_burst(struct worker *w, uint16_t port, struct rte_mbuf **pkts, uint16_t n)
{
	classify_out6(w, port, pkts, n, false);
}

void outbound6_local_burst(struct worker *w, uint16_t port, struct rte_mbuf **pkts, uint16_t n)
{
	classify_out6(w, port, pkts, n, true);
}
