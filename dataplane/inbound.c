/* SPDX-License-Identifier: BSD-3-Clause */
#include <netinet/in.h>

#include <rte_esp.h>
#include <rte_udp.h>

#include <rte_ip_frag.h>

#include "esp.h"
#include "forward.h"
#include "gcm.h"
#include "inbound.h"
#include "mbuf.h"
#include "reass.h"
#include "sad.h"
#include "spd.h"
#include "tap.h"
#include "upcall.h"

/* RFC 3948: a lone 0xff is a keepalive; four zero bytes mark IKE on a NAT-T port. */
#define NATT_KEEPALIVE 0xff

struct esp_group {
	struct sa *sa;
	uint16_t n;
	struct rte_mbuf *m[WORKER_BURST];
	/* NAT-T packets whose source differs from the SA's peer, and those sources,
	 * kept across decryption (which reorders m) */
	uint16_t n_moved;
	struct rte_mbuf *moved_m[WORKER_BURST];
	uint32_t moved_src[WORKER_BURST];
	uint16_t moved_sport[WORKER_BURST];
};

enum kind { K_PUNT, K_ESP, K_DROP, K_FRAG };

/* The UDP destination port (host order) of an ESP-in-UDP packet parse() accepted. */
static inline uint16_t udp_dport(struct rte_mbuf *m)
{
	const struct rte_udp_hdr *uh =
	    rte_pktmbuf_mtod_offset(m, const struct rte_udp_hdr *, m->l2_len + m->l3_len);

	return rte_be_to_cpu_16(uh->dst_port);
}

/* Find the SPI of an ESP or ESP-in-UDP packet, or decide it is not ESP. */
static inline enum kind parse(struct rte_mbuf *m, uint32_t *spi, enum stats_drop *why)
{
	const struct rte_ipv4_hdr *ip = forward_ip4(m);
	uint32_t l4 = m->l2_len + m->l3_len;
	uint32_t len = rte_pktmbuf_data_len(m);
	const uint8_t *p;

	if (unlikely(rte_ipv4_frag_pkt_is_fragmented(ip)))
		/* UDP may be ESP-in-UDP (only the first piece shows the port); the
		 * kernel reassembles the rest */
		return ip->next_proto_id == IPPROTO_ESP ||
			       (ip->next_proto_id == IPPROTO_UDP && sad_natt_any())
			   ? K_FRAG
			   : K_PUNT;
	if (ip->next_proto_id == IPPROTO_UDP) {
		const struct rte_udp_hdr *uh;

		if (len < l4 + sizeof(*uh))
			return K_PUNT; /* the kernel counts its own malformed UDP */
		uh = rte_pktmbuf_mtod_offset(m, const struct rte_udp_hdr *, l4);
		if (!sad_natt_port(uh->dst_port))
			return K_PUNT;
		p = (const uint8_t *)(uh + 1);
		l4 += sizeof(*uh);
		if (len == l4 + 1 && p[0] == NATT_KEEPALIVE) {
			*why = STATS_DROP_NATT_KEEPALIVE;
			return K_DROP;
		}
		if (len >= l4 + 4 && p[0] == 0 && p[1] == 0 && p[2] == 0 && p[3] == 0)
			return K_PUNT; /* IKE */
	} else if (ip->next_proto_id != IPPROTO_ESP) {
		return K_PUNT;
	}
	if (len < l4 + sizeof(struct rte_esp_hdr)) {
		*why = STATS_DROP_ESP_MALFORMED;
		return K_DROP;
	}
	p = rte_pktmbuf_mtod_offset(m, const uint8_t *, l4);
	__builtin_memcpy(spi, p, 4);
	return K_ESP;
}

/*
 * The decrypted packet must match an inbound protect policy bound to this SA,
 * or to another SA of the same tunnel (reqid): during a rekey the policy
 * already names the new SA while the old one still delivers. Another tunnel to
 * the same peer must not deliver for it.
 */
static inline bool same_tunnel(const struct sa *bound, const struct sa *sa)
{
	return bound == sa || (sa->reqid != 0 && bound->reqid == sa->reqid);
}

/* One SPD pass for the whole burst's inner packets (@sa[i]: the SA that decrypted m[i]);
 * those that pass get an Ethernet header's room back, for forwarding. */
static uint16_t policy_check(struct worker *w, uint16_t in_port, struct sa *const sa[],
			     struct rte_mbuf **m, uint16_t n, uint64_t now)
{
	const uint8_t *l3[WORKER_BURST];
	uint16_t len[WORKER_BURST];
	struct spd_policy *pol[WORKER_BURST];
	struct spd_verdict v[WORKER_BURST];
	bool pass[WORKER_BURST];
	uint16_t k = 0, n_fail = 0;

	for (uint16_t i = 0; i < n; i++) {
		l3[i] = rte_pktmbuf_mtod(m[i], const uint8_t *);
		len[i] = rte_pktmbuf_data_len(m[i]); /* ports too, not just the IP header */
	}
	spd_classify(DPSEC__DIR__DIR_IN, AF_INET, l3, len, n, w->id, now, pol, v);
	/* verdicts first: compacting as it went, the loop kept its count in memory */
	for (uint16_t i = 0; i < n; i++) {
		const struct sa *bound = v[i].sa;

		pass[i] = v[i].action == DPSEC__ACTION__ACT_PROTECT && bound != NULL &&
			  same_tunnel(bound, sa[i]);
		n_fail += !pass[i];
		if (likely(pass[i])) {
			rte_pktmbuf_prepend(m[i], sizeof(struct rte_ether_hdr));
			m[i]->l2_len = sizeof(struct rte_ether_hdr);
		}
	}
	if (likely(n_fail == 0))
		return n;
	for (uint16_t i = 0; i < n; i++) {
		if (pass[i]) {
			m[k++] = m[i];
			continue;
		}
		sad_cnt(sa[i])[w->id].drops[SA_DROP_POLICY]++;
		tx_drop(w, in_port, m[i], STATS_DROP_POLICY);
	}
	return k;
}

/* The inner header: what classify checked for the outer one, minus the punts. */
static inline bool inner_ok(struct rte_mbuf *m)
{
	const struct rte_ipv4_hdr *ip = rte_pktmbuf_mtod(m, const struct rte_ipv4_hdr *);
	uint32_t hlen;

	if (rte_pktmbuf_data_len(m) < sizeof(*ip) || (ip->version_ihl >> 4) != 4)
		return false;
	hlen = (ip->version_ihl & 0xf) * 4;
	if (hlen < sizeof(*ip) || hlen > rte_pktmbuf_data_len(m) ||
	    rte_be_to_cpu_16(ip->total_length) != rte_pktmbuf_pkt_len(m) ||
	    !forward_ip4_cksum_ok(ip, hlen))
		return false;
	m->l3_len = hlen;
	return true;
}

/*
 * An SA only takes the encapsulation (and port of ours) it was negotiated
 * with (parse() let only ESP and ESP-in-UDP through). Notes who moved (a
 * NAT-T source other than the SA's peer), takes Ethernet off and leaves the
 * packet parsed for esp.c, in the same pass: the headers are in L1 once.
 */
static void admit(struct worker *w, uint16_t in_port, struct esp_group *g)
{
	const struct sa *sa = g->sa;
	uint16_t k = 0;

	g->n_moved = 0;
	for (uint16_t j = 0; j < g->n; j++) {
		struct rte_mbuf *m = g->m[j];
		const struct rte_ipv4_hdr *ip = forward_ip4(m);
		bool udp = ip->next_proto_id == IPPROTO_UDP;
		uint32_t l3;

		if (unlikely(!sa->inbound || sa->natt != udp ||
			     (udp && udp_dport(m) != sa->dport))) {
			tx_drop(w, in_port, m, STATS_DROP_NO_SA);
			continue;
		}
		if (udp) {
			const struct rte_udp_hdr *uh =
			    (const void *)((const uint8_t *)ip + m->l3_len);

			if (memcmp(&ip->src_addr, sa->src, 4) != 0 ||
			    rte_be_to_cpu_16(uh->src_port) != sa->sport) {
				/* kept until authenticated: esp_inbound moves packets around */
				g->moved_m[g->n_moved] = m;
				g->moved_src[g->n_moved] = ip->src_addr;
				g->moved_sport[g->n_moved++] = uh->src_port;
			}
		}
		/* as esp.c's in_pre would leave it (esp_job.parsed) */
		rte_pktmbuf_adj(m, sizeof(struct rte_ether_hdr));
		l3 = m->l3_len + (udp ? sizeof(struct rte_udp_hdr) : 0);
		mbuf_set_lens(m, 0, l3);
		if (sa->own_esp && g->n < GCM_STAGE_BELOW)
			gcm_stage(sa, m, l3);
		g->m[k++] = m;
	}
	g->n = k;
}

/* After decryption (@ok good ones first): events, inner checks; on to @out with their SA. */
static void decrypt_post(struct worker *w, uint16_t in_port, struct esp_group *g, uint16_t ok,
			 struct rte_mbuf **out, struct sa **out_sa, uint16_t *n_out)
{
	struct sa *sa = g->sa;

	if (unlikely(ok < g->n)) {
		w->stats[in_port].drop[STATS_DROP_ESP] += g->n - ok;
		rte_pktmbuf_free_bulk(&g->m[ok], g->n - ok);
	}
	for (uint16_t j = 0; j < ok; j++) {
		struct rte_mbuf *m = g->m[j];

		/* Only an authenticated packet may move the peer (RFC 3948 section 3.1). */
		for (uint16_t i = 0; unlikely(i < g->n_moved); i++)
			if (g->moved_m[i] == m) {
				uint32_t sa_dst;

				memcpy(&sa_dst, sa->dst, 4);
				upcall_mapping4(w, sa->key.spi, sa_dst, g->moved_src[i],
						g->moved_sport[i]);
			}
		if (unlikely(!inner_ok(m))) {
			sad_cnt(sa)[w->id].drops[SA_DROP_OTHER]++;
			tx_drop(w, in_port, m, STATS_DROP_ESP);
			continue;
		}
		out_sa[*n_out] = sa;
		out[(*n_out)++] = m;
	}
}

void inbound_lookup(struct worker *w, uint16_t in_port, struct rte_mbuf **pkts, uint16_t n,
		    struct inbound_pending *p)
{
	uint32_t spi[WORKER_BURST], dst[WORKER_BURST];
	const void *dstp[WORKER_BURST];
	int family[WORKER_BURST];
	struct rte_mbuf *esp[WORKER_BURST];
	uint16_t n_esp = 0, k = 0;

	RTE_BUILD_BUG_ON(WORKER_BURST > SAD_LOOKUP_BULK_MAX);
	p->port = in_port;
	p->n = 0;
	for (uint16_t i = 0; i < n; i++) {
		enum stats_drop why = STATS_DROP_ESP_MALFORMED;

		struct rte_mbuf *m = pkts[i];
		enum kind k = parse(m, &spi[n_esp], &why);

		if (unlikely(k == K_FRAG)) {
			m = reass_add(w->id, m, rte_get_timer_cycles());
			if (m == NULL)
				continue; /* more pieces to come, or dropped and counted */
			pkts[i] = m;
			k = parse(m, &spi[n_esp], &why);
			if (k == K_PUNT) {
				tap_punt_pieces(w, in_port, m);
				continue;
			}
			if (k == K_ESP && m->nb_segs != 1) { /* the ESP path wants one buffer */
				w->gstats->reass_dropped++;
				rte_pktmbuf_free(m);
				continue;
			}
		}
		switch (k) {
		case K_FRAG:
		case K_PUNT:
			tap_punt(w, in_port, pkts[i]);
			break;
		case K_DROP:
			tx_drop(w, in_port, pkts[i], why);
			break;
		case K_ESP:
			dst[n_esp] = forward_ip4(pkts[i])->dst_addr;
			dstp[n_esp] = &dst[n_esp];
			family[n_esp] = AF_INET;
			esp[n_esp++] = pkts[i];
			break;
		}
	}
	if (n_esp == 0)
		return;
	sad_lookup_bulk(spi, dstp, family, n_esp, p->sa);
	/* a local count: p->n would go through memory, a store and reload a packet */
	for (uint16_t i = 0; i < n_esp; i++) {
		if (unlikely(p->sa[i] == NULL)) {
			tx_drop(w, in_port, esp[i], STATS_DROP_NO_SA);
			continue;
		}
		p->sa[k] = p->sa[i];
		p->m[k++] = esp[i];
	}
	p->n = k;
}

void inbound_finish(struct worker *w, struct inbound_pending *p)
{
	struct rte_mbuf *inner[WORKER_BURST];
	struct sa *inner_sa[WORKER_BURST];
	struct esp_group groups[WORKER_BURST];
	struct esp_job jobs[WORKER_BURST];
	struct esp_group_index idx;
	uint16_t ng = 0, n_inner = 0, in_port = p->port;
	uint64_t now = rte_get_timer_cycles();

	/* by runs of one SA: a group's count bumped packet by packet would wait on
	 * its own store each time */
	esp_group_index_init(&idx);
	for (uint16_t i = 0, j; i < p->n; i = j) {
		struct sa *sa = p->sa[i];
		uint16_t g;

		for (j = i + 1; j < p->n && p->sa[j] == sa; j++)
			;
		g = esp_group_of(&idx, sa, ng);
		if (g == ng) {
			groups[g].sa = sa;
			groups[g].n = 0;
			ng++;
			sad_prefetch(sa, false);
			rte_prefetch0(&sa->gcm); /* the salt, for the nonces (gcm_stage(), gcm.c) */
		}
		memcpy(&groups[g].m[groups[g].n], &p->m[i], (j - i) * sizeof(p->m[0]));
		groups[g].n += j - i;
	}
	p->n = 0;
	for (uint16_t g = 0; g < ng; g++) {
		admit(w, in_port, &groups[g]);
		jobs[g] = (struct esp_job){.sa = groups[g].sa,
					   .mb = groups[g].m,
					   .n = groups[g].n,
					   .parsed = groups[g].sa->own_esp};
	}
	esp_inbound_bulk(jobs, ng, w->id, now);
	for (uint16_t g = 0; g < ng; g++)
		decrypt_post(w, in_port, &groups[g], jobs[g].ok, inner, inner_sa, &n_inner);
	if (n_inner == 0)
		return;
	n_inner = policy_check(w, in_port, inner_sa, inner, n_inner, now);
	if (n_inner > 0)
		forward4_burst(w, in_port, inner, n_inner, true);
}
