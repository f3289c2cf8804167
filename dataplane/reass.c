/* SPDX-License-Identifier: BSD-3-Clause */
#define ALLOW_EXPERIMENTAL_API 1 /* rte_ip_frag_table_del_expired_entries */

#include <stdio.h>

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_ip.h>
#include <rte_ip_frag.h>
#include <rte_malloc.h>

#include "reass.h"
#include "stats.h"

#define REASS_WAYS	4   /* entries per bucket */
#define REASS_EXPIRE_MS 100 /* how often a worker evicts timed-out packets */
#define REASS_PREFETCH	4

struct reass {
	struct rte_ip_frag_tbl *tbl;
	uint64_t next_expire;
	struct rte_ip_frag_death_row dr;
} __rte_cache_aligned;

static struct reass *rs;
static unsigned n_rs;
static uint64_t expire_every;

int reass_init(unsigned n_workers, char *err, size_t errlen)
{
	uint64_t hz = rte_get_tsc_hz();

	rs = rte_zmalloc("dpsec_reass", sizeof(*rs) * n_workers, RTE_CACHE_LINE_SIZE);
	if (rs == NULL) {
		snprintf(err, errlen, "reassembly: out of memory");
		return -1;
	}
	n_rs = n_workers;
	expire_every = hz / 1000 * REASS_EXPIRE_MS;
	for (unsigned w = 0; w < n_workers; w++) {
		rs[w].tbl =
		    rte_ip_frag_table_create(REASS_FLOWS / REASS_WAYS, REASS_WAYS, REASS_FLOWS,
					     hz / 1000 * REASS_TIMEOUT_MS, SOCKET_ID_ANY);
		if (rs[w].tbl == NULL) {
			snprintf(err, errlen, "reassembly table: %s", rte_strerror(rte_errno));
			reass_fini();
			return -1;
		}
	}
	return 0;
}

/* Workers must be stopped. */
void reass_fini(void)
{
	for (unsigned w = 0; rs != NULL && w < n_rs; w++) {
		rte_ip_frag_free_death_row(&rs[w].dr, 0);
		rte_ip_frag_table_destroy(rs[w].tbl);
	}
	rte_free(rs);
	rs = NULL;
	n_rs = 0;
}

struct rte_mbuf *reass_add(unsigned worker, struct rte_mbuf *m, uint64_t now_tsc)
{
	struct reass *r = &rs[worker];
	struct rte_ipv4_hdr *ip = rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *, m->l2_len);
	struct rte_mbuf *whole = rte_ipv4_frag_reassemble_packet(r->tbl, &r->dr, m, now_tsc, ip);

	if (whole == NULL)
		return NULL;
	/* the ESP path wants it contiguous; what does not fit one buffer stays a chain */
	rte_pktmbuf_linearize(whole);
	ip = rte_pktmbuf_mtod_offset(whole, struct rte_ipv4_hdr *, whole->l2_len);
	ip->hdr_checksum = 0;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	return whole;
}

void reass_tick(unsigned worker, uint64_t now_tsc)
{
	struct reass *r = &rs[worker];

	if (unlikely(now_tsc >= r->next_expire)) {
		rte_ip_frag_table_del_expired_entries(r->tbl, &r->dr, now_tsc);
		r->next_expire = now_tsc + expire_every;
	}
	if (unlikely(r->dr.cnt != 0)) {
		/* timed out, overlapping or too many pieces */
		stats_workers[worker].reass_dropped += r->dr.cnt;
		rte_ip_frag_free_death_row(&r->dr, REASS_PREFETCH);
	}
}
