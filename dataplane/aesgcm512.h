/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * AES-GCM of short ESP payloads (up to 48 bytes: a 64-byte frame's) with
 * VAES and VPCLMULQDQ on 512-bit registers, where the CPU has them; aesgcm.h
 * does the same on 128-bit AES-NI otherwise, and for longer payloads.
 *
 * A packet's J0 and its three counter blocks fill one register, so its ten
 * (or fourteen) AES rounds are ten instructions; its AAD and payload blocks
 * fill another, multiplied by their powers of H (aesgcm_h keeps them side by
 * side) in four carry-less multiplies. About 60 instructions a packet
 * against aesgcm.h's 220, up to eight packets interleaved.
 */
#ifndef DPSEC_AESGCM512_H
#define DPSEC_AESGCM512_H

#include <stdbool.h>
#include <stdint.h>

#include "aesgcm.h"

#define AESGCM512_BYTES_MAX 48 /* payload: J0 and three counter blocks fill a register */
#define AESGCM512_LANES_MAX 8u /* packets interleaved */

/* Whether this CPU (and OS) runs AVX-512 F/BW/VL with VAES and VPCLMULQDQ. */
bool aesgcm512_usable(void);

/*
 * Whether a payload of @len bytes followed by a @tag_len-byte ICV takes this
 * path: it reads and writes whole the 64 bytes from 16 before the payload
 * (with ESP: header and IV, payload, ICV), changing only the payload, so they
 * must all be the packet's.
 */
static inline bool aesgcm512_fits(uint32_t len, unsigned tag_len)
{
	return len != 0 && len <= AESGCM512_BYTES_MAX && len + tag_len >= AESGCM512_BYTES_MAX;
}

/*
 * Encrypt (@enc) or decrypt in place @nl (1..AESGCM512_LANES_MAX) packets
 * that aesgcm512_fits(), of one key (@rounds + 1 round keys at @rk, its
 * powers @h) and @aad_len (at most 16) bytes of AAD; each nonce and AAD has
 * 16 readable bytes. Full 16-byte tags to @tag.
 */
void aesgcm512_run(const uint8_t *rk, unsigned rounds, const struct aesgcm_h *h, unsigned aad_len,
		   bool enc, const struct aesgcm_lane *ln, unsigned nl, uint8_t tag[][16]);

#endif
