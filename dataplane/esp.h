/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ESP tunnel processing for one SA and a burst of packets, in place. The
 * protocol work is rte_ipsec's, or gcm.c's for AES-GCM on ipsec-mb; crypto
 * goes through ipsec-mb, CPU crypto or the worker's own cryptodev queue pair
 * (see crypto.h and ipsecmb.h). Both functions return how
 * many packets succeeded: those are mb[0..ret), the failed ones are moved to
 * mb[ret..n) for the caller to free, and every failure is counted under its
 * reason in the SA's counter slot for @worker.
 */
#ifndef DPSEC_ESP_H
#define DPSEC_ESP_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <rte_common.h>
#include <rte_mbuf.h>

#include "sad.h"

/* Largest burst handled in one pass; longer bursts are split internally. */
#define ESP_BURST_MAX 128

/*
 * @mb start at the inner IPv4 header (no Ethernet). On return the good ones
 * start at the outer IP header (then UDP for NAT-T, then ESP) with a valid
 * IPv4 header checksum; l2_len is 0 and l3_len the outer header length, so
 * the caller can prepend Ethernet and transmit.
 */
uint16_t esp_outbound(struct sa *sa, struct rte_mbuf *mb[], uint16_t n, unsigned worker,
		      uint64_t now_tsc);

/*
 * @mb start at the outer IP header of an ESP (or ESP-in-UDP, RFC 3948)
 * packet for @sa; the UDP header is removed together with the outer IP.
 * On return the good ones start at the inner IP header. Replay-window,
 * ICV and padding/trailer failures are counted separately.
 */
uint16_t esp_inbound(struct sa *sa, struct rte_mbuf *mb[], uint16_t n, unsigned worker,
		     uint64_t now_tsc);

/* One SA's packets in a bulk call: @ok is set as esp_outbound/esp_inbound return it. */
struct esp_job {
	struct sa *sa;
	struct rte_mbuf **mb;
	uint16_t n;
	uint16_t ok;
	/*
	 * Inbound: the caller already parsed them as ESP (or ESP-in-UDP) of the
	 * SA's encapsulation, l2_len 0 and l3_len up to ESP, and staged AES-GCM
	 * nonces (gcm_stage()): they are not parsed again.
	 */
	bool parsed;
};

#define ESP_JOBS_MAX 64 /* SAs in one bulk call (the SAs of one RX burst) */

/*
 * Which of a burst's SA groups holds an SA, by open addressing on the SA's
 * address: a burst of 64 SAs (10k SAs, one packet each) scanned the groups
 * found so far for each, ~2,000 compares a burst.
 */
#define ESP_GROUP_SLOTS (2 * ESP_JOBS_MAX)
#define ESP_GROUP_NONE	0xff

struct esp_group_index {
	uint8_t g[ESP_GROUP_SLOTS];
	const struct sa *sa[ESP_GROUP_SLOTS];
};

static inline void esp_group_index_init(struct esp_group_index *x)
{
	RTE_BUILD_BUG_ON(ESP_JOBS_MAX >= ESP_GROUP_NONE);
	memset(x->g, ESP_GROUP_NONE, sizeof(x->g));
}

/* Where @sa's probe starts. SAs are cache-line aligned: Fibonacci hashing of the line. */
static inline uint32_t esp_group_slot(const struct sa *sa)
{
	RTE_BUILD_BUG_ON(ESP_GROUP_SLOTS != 1 << 7);
	return ((uint32_t)((uintptr_t)sa >> 6) * 0x9e3779b1u) >> 25;
}

/* The group of @sa; else @ng, now recorded as its group (the caller fills it in). */
static inline uint16_t esp_group_of(struct esp_group_index *x, const struct sa *sa, uint16_t ng)
{
	uint32_t h = esp_group_slot(sa);

	for (; x->g[h] != ESP_GROUP_NONE; h = (h + 1) & (ESP_GROUP_SLOTS - 1))
		if (x->sa[h] == sa)
			return x->g[h];
	x->g[h] = (uint8_t)ng;
	x->sa[h] = sa;
	return ng;
}

/*
 * esp_outbound/esp_inbound for the SAs of one burst at once: the crypto of
 * those on the job manager shares its lanes (one SA per packet costs no more
 * than one SA per burst). At most ESP_JOBS_MAX jobs, each SA once. @now_tsc:
 * the burst's time, kept as the SAs' last use (one TSC read per burst, not
 * per SA: with 10k SAs that was a read per packet).
 */
void esp_outbound_bulk(struct esp_job *jobs, uint16_t nj, unsigned worker, uint64_t now_tsc);
void esp_inbound_bulk(struct esp_job *jobs, uint16_t nj, unsigned worker, uint64_t now_tsc);

#endif
