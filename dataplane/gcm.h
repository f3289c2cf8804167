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

#include <stdint.h>

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

/*
 * Check and decrypt @mb (each at its outer IP header, l3_len up to ESP, as
 * esp.c's in_pre left them; @sq their sequence numbers' low halves). Returns
 * how many are good, mb[0..ret) in their order at the inner IP header, the
 * window moved past them and @seq_max the highest of their numbers; the
 * others follow with why[i - ret] (enum sa_drop) saying why each failed.
 */
uint16_t gcm_decrypt(struct sa *sa, struct rte_mbuf *mb[], const uint32_t sq[], uint16_t n,
		     unsigned worker, uint8_t why[], uint64_t *seq_max);

#endif
