/* SPDX-License-Identifier: BSD-3-Clause */
#include "aesgcm512.h"

#define AESGCM512_TARGET                                                                           \
	__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,vaes,vpclmulqdq,aes,pclmul,"     \
			      "ssse3,sse4.1")))

bool aesgcm512_usable(void)
{
	__builtin_cpu_init();
	/* the compiler's check of avx512f includes the OS saving the registers */
	return aesgcm_usable() && __builtin_cpu_supports("avx512f") &&
	       __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
	       __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("vaes") &&
	       __builtin_cpu_supports("vpclmulqdq");
}

/* The four 128-bit lanes of @v added (XOR) into one. */
static inline AESGCM512_TARGET __m128i fold(__m512i v)
{
	__m256i t = _mm256_xor_si256(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));

	return _mm_xor_si128(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
}

static inline AESGCM512_TARGET __attribute__((always_inline)) void
lanes(const uint8_t *rk, unsigned rounds, const struct aesgcm_h *h, unsigned aad_len, bool enc,
      const struct aesgcm_lane *ln, uint8_t tag[][16], const unsigned nl)
{
	const __m128i *k = (const __m128i *)rk;
	const __m512i bswap = _mm512_broadcast_i32x4(
	    _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
	/* big-endian counters 1 (J0) to 4 in the last word of each 128-bit lane */
	const __m512i ctr = _mm512_set_epi32(
	    (int)__builtin_bswap32(4), 0, 0, 0, (int)__builtin_bswap32(3), 0, 0, 0,
	    (int)__builtin_bswap32(2), 0, 0, 0, (int)__builtin_bswap32(1), 0, 0, 0);
	const __m512i nonce_words = _mm512_set4_epi32(0, -1, -1, -1);
	const __m128i am = aesgcm_mask(aad_len);
	__m512i s[AESGCM512_LANES_MAX], d[AESGCM512_LANES_MAX];
	__m128i a[AESGCM512_LANES_MAX];
	__mmask64 pm[AESGCM512_LANES_MAX];
	__m512i key = _mm512_broadcast_i32x4(_mm_loadu_si128(k));

	/* lane 0: J0, for the tag; lanes 1-3: the payload's counter blocks, from 2 */
#pragma GCC unroll 8
	for (unsigned l = 0; l < nl; l++) {
		__m512i n = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)ln[l].nonce));

		/* (a blend here made GCC 12 fail: it fused it with the broadcast) */
		s[l] =
		    _mm512_xor_si512(_mm512_or_si512(_mm512_and_si512(n, nonce_words), ctr), key);
		/* the payload's bytes, lined up with lanes 1-3 */
		pm[l] = ((1ull << ln[l].len) - 1) << 16;
		d[l] = _mm512_loadu_si512(ln[l].p - 16);
		/* before any store: with ESP the AAD is the header in front of the payload */
		a[l] = _mm_and_si128(_mm_loadu_si128((const __m128i *)ln[l].aad), am);
	}
	for (unsigned r = 1; r < rounds; r++) {
		key = _mm512_broadcast_i32x4(_mm_loadu_si128(k + r));
#pragma GCC unroll 8
		for (unsigned l = 0; l < nl; l++)
			s[l] = _mm512_aesenc_epi128(s[l], key);
	}
	key = _mm512_broadcast_i32x4(_mm_loadu_si128(k + rounds));
#pragma GCC unroll 8
	for (unsigned l = 0; l < nl; l++) {
		unsigned nb = aesgcm_nb(ln[l].len);
		__m512i c, x, hv, lo, hi, mid;
		struct aesgcm_acc acc;

		s[l] = _mm512_aesenclast_epi128(s[l], key);
		/*
		 * Written back whole, the bytes around the payload as they were: the
		 * trailer and inner header checks read them next, and a masked store
		 * could not forward to those loads (decrypt ran at 0.85x)
		 */
		c = _mm512_xor_si512(d[l], _mm512_maskz_mov_epi8(pm[l], s[l]));
		_mm512_storeu_si512(ln[l].p - 16, c);
		/* GHASH over AAD (lane 0) and ciphertext, zero past the payload; each
		 * block times the power of H it needs: H^(nb + 2) for the AAD down to H^2 */
		x = _mm512_maskz_mov_epi8(pm[l], enc ? c : d[l]);
		x = _mm512_shuffle_epi8(
		    _mm512_mask_blend_epi64(0x03, x, _mm512_castsi128_si512(a[l])), bswap);
		hv = _mm512_loadu_si512(aesgcm_hpow(h, nb + 2));
		lo = _mm512_clmulepi64_epi128(x, hv, 0x00);
		hi = _mm512_clmulepi64_epi128(x, hv, 0x11);
		mid = _mm512_xor_si512(_mm512_clmulepi64_epi128(x, hv, 0x01),
				       _mm512_clmulepi64_epi128(x, hv, 0x10));
		acc = (struct aesgcm_acc){fold(lo), fold(mid), fold(hi)};
		/* lengths in bits, reflected: the payload's in the low half */
		aesgcm_mul(&acc, _mm_set_epi64x((long long)aad_len * 8, (long long)ln[l].len * 8),
			   _mm_load_si128((const __m128i *)aesgcm_hpow(h, 1)));
		_mm_storeu_si128(
		    (__m128i *)tag[l],
		    _mm_xor_si128(_mm512_castsi512_si128(s[l]), aesgcm_bswap(aesgcm_reduce(&acc))));
	}
}

AESGCM512_TARGET void aesgcm512_run(const uint8_t *rk, unsigned rounds, const struct aesgcm_h *h,
				    unsigned aad_len, bool enc, const struct aesgcm_lane *ln,
				    unsigned nl, uint8_t tag[][16])
{
	/* the lane count a constant once inlined: the compiler unrolls each case */
	switch (nl) {
#define LANES(n)                                                                                   \
	case n:                                                                                    \
		lanes(rk, rounds, h, aad_len, enc, ln, tag, n);                                    \
		break
		LANES(1);
		LANES(2);
		LANES(3);
		LANES(4);
		LANES(5);
		LANES(6);
		LANES(7);
#undef LANES
	default:
		lanes(rk, rounds, h, aad_len, enc, ln, tag, AESGCM512_LANES_MAX);
		break;
	}
}
