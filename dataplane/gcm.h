/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ESP tunnel packets of AES-GCM SAs, built and checked here rather than by
 * rte_ipsec: header, IV, trailer and AAD go straight between the packet and
 * ipsec-mb's one-shot GCM, with no crypto op filled and read back in between.
 * The packets are rte_ipsec's (IV = the 64-bit sequence number, IPv4 id = its
 * low 16 bits, pad bytes 1, 2, ...), and so are the checks: replay window
 * (RFC 6479 buckets, RFC 4303 appendix A for ESN), ICV, pad bytes, next header.
 */
#ifndef DPSEC_GCM_H
#define DPSEC_GCM_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <rte_esp.h>
#include <rte_mbuf.h>

#include "sad.h"

/*
 * Encrypt @mb (starting at the inner IPv4 header, one segment each) with
 * sequence numbers @seq, @seq + 1, ... in order. Returns how many succeeded,
 * mb[0..ret) in their order; the rest follow, with @no_room of them lacking
 * head- or tailroom (or chained) and the others past the last 32-bit number
 * of a non-ESN SA. The good ones start at the outer header, l2_len 0, l3_len
 * the outer header's length; the IPv4 checksum is the caller's (esp.c).
 */
uint16_t gcm_encrypt(const struct sa *sa, struct rte_mbuf *mb[], uint16_t n, unsigned worker,
		     uint64_t seq, uint16_t *no_room);

#define ESP_IV_LEN 8 /* RFC 4106: the IV on the wire, the nonce's last 8 bytes */

/* Headroom gcm_stage() needs: 16 bytes below the packet, on a 16-byte boundary. */
#define GCM_STAGE_ROOM 32
/*
 * Calls of this many packets build their nonces on the stack in gcm_decrypt's
 * first pass, which then comes early enough for the stores to have landed; a
 * staged nonce costs a store to the headroom's own cache line. Never staging:
 * 1 SA 64 B 1.032x, but 10k SAs (one packet a call) 0.932x; staging only
 * below this: 1.013x (7 of 10 pairs) and 0.995x.
 */
#define GCM_STAGE_BELOW 4

/* @sa's RFC 4106 nonce (salt | IV) for the ESP packet at @esp, at @nonce. */
static inline void gcm_nonce_fill(uint8_t *nonce, const struct sa *sa, const uint8_t *esp)
{
	memcpy(nonce, sa->gcm.in.salt, sizeof(sa->gcm.in.salt));
	memcpy(nonce + sizeof(sa->gcm.in.salt), esp + sizeof(struct rte_esp_hdr), ESP_IV_LEN);
}

/* Whether @nonce already holds what gcm_nonce_fill() would write there. */
static inline bool gcm_nonce_is(const uint8_t *nonce, const struct sa *sa, const uint8_t *esp)
{
	return memcmp(nonce, sa->gcm.in.salt, sizeof(sa->gcm.in.salt)) == 0 &&
	       memcmp(nonce + sizeof(sa->gcm.in.salt), esp + sizeof(struct rte_esp_hdr),
		      ESP_IV_LEN) == 0;
}

/* Where gcm_stage() leaves @m's nonce (@m at its outer IP header), NULL without room. */
static inline uint8_t *gcm_nonce_at(struct rte_mbuf *m)
{
	if (unlikely(rte_pktmbuf_headroom(m) < GCM_STAGE_ROOM))
		return NULL;
	return RTE_PTR_ALIGN_FLOOR(rte_pktmbuf_mtod(m, uint8_t *) - 16, 16);
}

/*
 * Inbound, in a pass over the whole burst before any of it is decrypted
 * (inbound.c's admit): write the RFC 4106 nonce (salt | IV) of @m, at its
 * outer IP header with ESP at @esp_off, into its headroom, where gcm_decrypt
 * reads it. Stored just before the library's call, the nonce could not be
 * forwarded to its masked load and each call waited for the store (gcm.c);
 * with 10,000 SAs each SA's call is one packet, so gcm_decrypt's own first
 * pass comes too late.
 */
static inline void gcm_stage(const struct sa *sa, struct rte_mbuf *m, uint32_t esp_off)
{
	uint8_t *nonce = gcm_nonce_at(m);

	if (nonce != NULL) /* else gcm_decrypt builds it itself */
		gcm_nonce_fill(nonce, sa, rte_pktmbuf_mtod_offset(m, const uint8_t *, esp_off));
}

/*
 * Check and decrypt @mb (each at its outer IP header, l3_len up to ESP, as
 * esp.c's in_pre left them, nonces best staged by gcm_stage(); @sq their
 * sequence numbers' low halves, or NULL to read them from the packets).
 * Returns how many are good, mb[0..ret) in their order at the inner IP header, the window
 * moved past them, @seq_max raised to the highest of their numbers and their
 * inner bytes added to @bytes; the others follow with why[i - ret] (enum
 * sa_drop) saying why each failed.
 */
uint16_t gcm_decrypt(struct sa *sa, struct rte_mbuf *mb[], const uint32_t sq[], uint16_t n,
		     unsigned worker, uint8_t why[], uint64_t *seq_max, uint64_t *bytes);

#endif
