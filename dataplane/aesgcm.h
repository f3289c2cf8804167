/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * AES-GCM of short ESP payloads (up to AESGCM_BLOCKS_MAX blocks) in straight-line
 * AES-NI and PCLMULQDQ code that gcm.c inlines into its per-burst loops.
 *
 * Why not ipsec-mb here: its one-shot call on a 48-byte payload is one chain
 * of dependent steps (AES rounds, then GHASH and its reduction) that the core
 * does not overlap with the next call's; it was 25 % (decrypt) and 35 %
 * (encrypt) of the 64-B worker. Here two packets' rounds are interleaved, in
 * code inlined into the loop. In a loop of 48-byte encryptions (3.6 GHz core):
 * ipsec-mb 26 ns a packet, this code 22 ns one packet at a time, 17 ns two.
 * Longer payloads stay on ipsec-mb, whose wide code is the faster there.
 *
 * GHASH runs on byte-reflected blocks (Gueron and Kounavis, "Intel
 * Carry-Less Multiplication Instruction and its Usage for Computing the GCM
 * Mode"): a packet's blocks are multiplied by the powers of H they need and
 * summed unreduced, then reduced once, by two multiplications.
 */
#ifndef DPSEC_AESGCM_H
#define DPSEC_AESGCM_H

#include <stdbool.h>
#include <stdint.h>

#include <immintrin.h>

#define AESGCM_BLOCKS_MAX 4 /* payload blocks: 64 bytes, ESP of frames up to ~80 bytes */
#define AESGCM_LANES_MAX  2 /* packets interleaved */
#define AESGCM_TARGET	  __attribute__((target("aes,pclmul,ssse3,sse4.1")))

/*
 * H^(AESGCM_BLOCKS_MAX + 2) down to H^1, byte-reflected, times x (for the AAD,
 * payload and length blocks), then a zero block: highest first, so the powers
 * a packet's AAD and payload blocks take lie side by side (aesgcm512.c loads
 * them as one vector).
 */
struct aesgcm_h {
	uint8_t pow[AESGCM_BLOCKS_MAX + 3][16] __attribute__((aligned(16)));
};

/* H^@e (1 .. AESGCM_BLOCKS_MAX + 2) in @h. */
static inline const uint8_t *aesgcm_hpow(const struct aesgcm_h *h, unsigned e)
{
	return h->pow[AESGCM_BLOCKS_MAX + 2 - e];
}

/* AES rounds for a GCM key of @key_len bytes (16 or 32). */
static inline unsigned aesgcm_rounds(unsigned key_len)
{
	return key_len == 16 ? 10 : 14;
}

/* Whether this CPU has AES-NI and PCLMULQDQ. */
bool aesgcm_usable(void);

/*
 * Control thread: the GHASH powers of the key whose @rounds + 1 round keys
 * are at @rk (ipsec-mb's gcm_key_data.expanded_keys). Only if aesgcm_usable().
 */
void aesgcm_h_init(struct aesgcm_h *h, const uint8_t *rk, unsigned rounds);

/*
 * Whether a payload of @len bytes followed by a @tag_len-byte ICV takes this
 * path: the last block is read and written whole, so it must end within the ICV.
 */
static inline bool aesgcm_fits(uint32_t len, unsigned tag_len)
{
	return len != 0 && len <= 16 * AESGCM_BLOCKS_MAX && ((16 - len % 16) % 16) <= tag_len;
}

static const uint8_t aesgcm_mask_tab[32] = {
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0,	  0,	0,    0,    0,	  0,	0,    0,    0,	  0,	0,    0,    0,	  0,	0,    0,
};

/* The first @n (1..16) bytes of a block. */
static inline AESGCM_TARGET __m128i aesgcm_mask(unsigned n)
{
	return _mm_loadu_si128((const __m128i *)(aesgcm_mask_tab + 16 - n));
}

static inline AESGCM_TARGET __m128i aesgcm_bswap(__m128i x)
{
	return _mm_shuffle_epi8(x,
				_mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
}

/* An unreduced sum of 256-bit carry-less products. */
struct aesgcm_acc {
	__m128i lo, mid, hi;
};

static inline AESGCM_TARGET void aesgcm_mul(struct aesgcm_acc *a, __m128i x, __m128i h)
{
	a->lo = _mm_xor_si128(a->lo, _mm_clmulepi64_si128(x, h, 0x00));
	a->hi = _mm_xor_si128(a->hi, _mm_clmulepi64_si128(x, h, 0x11));
	a->mid = _mm_xor_si128(a->mid, _mm_xor_si128(_mm_clmulepi64_si128(x, h, 0x01),
						     _mm_clmulepi64_si128(x, h, 0x10)));
}

/*
 * The sum, reduced modulo x^128 + x^7 + x^2 + x + 1 in two folds by the
 * reflected polynomial's low half: the powers are kept multiplied by x
 * (aesgcm_h_init), so the product needs no shift.
 */
static inline AESGCM_TARGET __m128i aesgcm_reduce(const struct aesgcm_acc *a)
{
	const __m128i poly = _mm_set_epi64x((long long)0xc200000000000000ull, 0);
	__m128i lo = _mm_xor_si128(a->lo, _mm_slli_si128(a->mid, 8));
	__m128i hi = _mm_xor_si128(a->hi, _mm_srli_si128(a->mid, 8));

	lo = _mm_xor_si128(_mm_shuffle_epi32(lo, 0x4e), _mm_clmulepi64_si128(lo, poly, 0x10));
	lo = _mm_xor_si128(_mm_shuffle_epi32(lo, 0x4e), _mm_clmulepi64_si128(lo, poly, 0x10));
	return _mm_xor_si128(hi, lo);
}

/* Counter block @c of @nonce (12 bytes, 16 readable). */
static inline AESGCM_TARGET __m128i aesgcm_ctr(__m128i nonce, uint32_t c)
{
	return _mm_insert_epi32(nonce, (int)__builtin_bswap32(c), 3);
}

/* One packet: its nonce (12 bytes, 16 readable), AAD (16 readable) and payload. */
struct aesgcm_lane {
	const uint8_t *nonce, *aad;
	uint8_t *p;
	uint32_t len;
};

/*
 * @nl packets of @nb blocks each (both constants once inlined), their rounds
 * interleaved: one packet's chain of dependent steps alone leaves the AES and
 * carry-less multiply units mostly idle. Tags to @tag.
 */
static inline AESGCM_TARGET __attribute__((always_inline)) void
aesgcm_lanes(const uint8_t *rk, unsigned rounds, const struct aesgcm_h *h, unsigned aad_len,
	     bool enc, const struct aesgcm_lane *ln, __m128i tag[], const unsigned nl,
	     const unsigned nb)
{
	const __m128i *k = (const __m128i *)rk;
	__m128i b[AESGCM_LANES_MAX][AESGCM_BLOCKS_MAX + 1], last[AESGCM_LANES_MAX];
	__m128i key = _mm_loadu_si128(k), am = aesgcm_mask(aad_len);
	struct aesgcm_acc acc[AESGCM_LANES_MAX];

#pragma GCC unroll 4
	for (unsigned l = 0; l < nl; l++) {
		__m128i n = _mm_loadu_si128((const __m128i *)ln[l].nonce);
		__m128i x = _mm_and_si128(_mm_loadu_si128((const __m128i *)ln[l].aad), am);

		/* b[0]: J0, for the tag; b[1..nb]: the payload's counters, from 2 */
#pragma GCC unroll 8
		for (unsigned i = 0; i <= nb; i++)
			b[l][i] = _mm_xor_si128(aesgcm_ctr(n, i + 1), key);
		last[l] = aesgcm_mask(ln[l].len - 16 * (nb - 1));
		acc[l].lo = acc[l].mid = acc[l].hi = _mm_setzero_si128();
		aesgcm_mul(&acc[l], aesgcm_bswap(x),
			   _mm_load_si128((const __m128i *)aesgcm_hpow(h, nb + 2)));
	}
	for (unsigned r = 1; r < rounds; r++) {
		key = _mm_loadu_si128(k + r);
#pragma GCC unroll 4
		for (unsigned l = 0; l < nl; l++)
#pragma GCC unroll 8
			for (unsigned i = 0; i <= nb; i++)
				b[l][i] = _mm_aesenc_si128(b[l][i], key);
	}
	key = _mm_loadu_si128(k + rounds);
#pragma GCC unroll 4
	for (unsigned l = 0; l < nl; l++) {
#pragma GCC unroll 8
		for (unsigned i = 0; i <= nb; i++)
			b[l][i] = _mm_aesenclast_si128(b[l][i], key);
#pragma GCC unroll 8
		for (unsigned i = 1; i <= nb; i++) {
			__m128i *q = (__m128i *)(ln[l].p + 16 * (i - 1));
			__m128i d = _mm_loadu_si128(q), ks = b[l][i], c, x;

			if (i == nb) /* bytes past the payload are left as they are, hashed as 0 */
				ks = _mm_and_si128(ks, last[l]);
			c = _mm_xor_si128(d, ks);
			_mm_storeu_si128(q, c);
			x = enc ? c : d;
			if (i == nb)
				x = _mm_and_si128(x, last[l]);
			aesgcm_mul(&acc[l], aesgcm_bswap(x),
				   _mm_load_si128((const __m128i *)aesgcm_hpow(h, nb + 2 - i)));
		}
		/* lengths in bits, reflected: the payload's in the low half */
		aesgcm_mul(&acc[l],
			   _mm_set_epi64x((long long)aad_len * 8, (long long)ln[l].len * 8),
			   _mm_load_si128((const __m128i *)aesgcm_hpow(h, 1)));
		tag[l] = _mm_xor_si128(b[l][0], aesgcm_bswap(aesgcm_reduce(&acc[l])));
	}
}

/* The number of blocks of a payload aesgcm_fits(). */
static inline unsigned aesgcm_nb(uint32_t len)
{
	return (len + 15) / 16;
}

/*
 * Encrypt (@enc) or decrypt in place @nl (1..AESGCM_LANES_MAX, a constant)
 * packets that aesgcm_fits(), of one key and @aad_len (at most 16), all of
 * @nb blocks. Tags (16 bytes, over AAD and ciphertext) to @tag.
 */
static inline AESGCM_TARGET __attribute__((always_inline)) void
aesgcm_run(const uint8_t *rk, unsigned rounds, const struct aesgcm_h *h, unsigned aad_len, bool enc,
	   const struct aesgcm_lane *ln, __m128i tag[], const unsigned nl, unsigned nb)
{
	switch (nb) {
	case 1:
		aesgcm_lanes(rk, rounds, h, aad_len, enc, ln, tag, nl, 1);
		break;
	case 2:
		aesgcm_lanes(rk, rounds, h, aad_len, enc, ln, tag, nl, 2);
		break;
	case 3:
		aesgcm_lanes(rk, rounds, h, aad_len, enc, ln, tag, nl, 3);
		break;
	default:
		aesgcm_lanes(rk, rounds, h, aad_len, enc, ln, tag, nl, 4);
		break;
	}
}

#endif
