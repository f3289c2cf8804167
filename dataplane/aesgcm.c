/* SPDX-License-Identifier: BSD-3-Clause */
#include "aesgcm.h"

bool aesgcm_usable(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("aes") && __builtin_cpu_supports("pclmul") &&
	       __builtin_cpu_supports("sse4.1");
}

AESGCM_TARGET void aesgcm_h_init(struct aesgcm_h *h, const uint8_t *rk, unsigned rounds)
{
	const __m128i *k = (const __m128i *)rk;
	__m128i x = _mm_loadu_si128(k), hr;

	for (unsigned r = 1; r < rounds; r++)
		x = _mm_aesenc_si128(x, _mm_loadu_si128(k + r));
	hr = aesgcm_bswap(_mm_aesenclast_si128(x, _mm_loadu_si128(k + rounds)));
	/* H * x: shifted left one bit, reduced if the top bit fell off */
	{
		__m128i carry = _mm_srli_epi64(hr, 63), top = _mm_shuffle_epi32(hr, 0xff);

		hr = _mm_or_si128(_mm_slli_epi64(hr, 1), _mm_slli_si128(carry, 8));
		top = _mm_srai_epi32(top, 31); /* all ones if bit 127 was set */
		hr = _mm_xor_si128(
		    hr, _mm_and_si128(top, _mm_set_epi64x((long long)0xc200000000000000ull, 1)));
	}
	x = hr;
	_mm_store_si128((__m128i *)h->pow[AESGCM_BLOCKS_MAX + 2], _mm_setzero_si128());
	for (unsigned e = 1; e <= AESGCM_BLOCKS_MAX + 2; e++) {
		struct aesgcm_acc a = {_mm_setzero_si128(), _mm_setzero_si128(),
				       _mm_setzero_si128()};

		_mm_store_si128((__m128i *)h->pow[AESGCM_BLOCKS_MAX + 2 - e], x); /* H^e */
		aesgcm_mul(&a, x, hr);
		x = aesgcm_reduce(&a);
	}
}
