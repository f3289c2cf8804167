/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests for dataplane/aesgcm.h and aesgcm512.h: known answers, then
 * against ipsec-mb's one-shot GCM.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <intel-ipsec-mb.h>

#include "aesgcm.h"
#include "aesgcm512.h"

static IMB_MGR *mgr;
static struct gcm_key_data kd __attribute__((aligned(64)));
static struct aesgcm_h h;

static void hex(uint8_t *out, const char *s)
{
	for (size_t i = 0; s[2 * i]; i++)
		sscanf(s + 2 * i, "%2hhx", &out[i]);
}

static void set_key(const uint8_t *key, unsigned len)
{
	if (len == 16)
		IMB_AES128_GCM_PRE(mgr, key, &kd);
	else
		IMB_AES256_GCM_PRE(mgr, key, &kd);
	aesgcm_h_init(&h, kd.expanded_keys, aesgcm_rounds(len));
}

/* @nl packets through aesgcm_run (all of one block count), tags to @tag. */
static AESGCM_TARGET void run(unsigned key_len, unsigned aad_len, bool enc,
			      const struct aesgcm_lane *ln, unsigned nl, uint8_t tag[][16])
{
	unsigned rounds = aesgcm_rounds(key_len), nb = aesgcm_nb(ln[0].len);
	__m128i t[AESGCM_LANES_MAX];

	if (nl == 2)
		aesgcm_run(kd.expanded_keys, rounds, &h, aad_len, enc, ln, t, 2, nb);
	else
		aesgcm_run(kd.expanded_keys, rounds, &h, aad_len, enc, ln, t, 1, nb);
	for (unsigned l = 0; l < nl; l++)
		_mm_storeu_si128((__m128i *)tag[l], t[l]);
}

/* McGrew and Viega, "The Galois/Counter Mode of Operation", test cases 2 and 3. */
static void test_known_answers(void **state)
{
	static const struct {
		const char *key, *iv, *pt, *ct, *tag;
	} tc[] = {
	    {"00000000000000000000000000000000", "000000000000000000000000",
	     "00000000000000000000000000000000", "0388dace60b6a392f328c2b971b2fe78",
	     "ab6e47d42cec13bdf53a67b21257bddf"},
	    {"feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888",
	     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
	     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
	     "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
	     "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985",
	     "4d5c2af327cd64a62cf35abd2ba6fab4"},
	};

	(void)state;
	if (!aesgcm_usable())
		fail_msg("this CPU lacks AES-NI or PCLMULQDQ");
	for (size_t c = 0; c < sizeof(tc) / sizeof(tc[0]); c++) {
		uint8_t key[16], nonce[16] = {0}, aad[16] = {0}, buf[96] = {0}, ct[64], tag[2][16];
		uint8_t want_tag[16];
		unsigned len = (unsigned)strlen(tc[c].pt) / 2;
		struct aesgcm_lane ln = {nonce, aad, buf, len};

		hex(key, tc[c].key);
		hex(nonce, tc[c].iv);
		hex(buf, tc[c].pt);
		hex(ct, tc[c].ct);
		hex(want_tag, tc[c].tag);
		set_key(key, 16);
		assert_true(aesgcm_fits(len, 16));
		run(16, 0, true, &ln, 1, tag);
		assert_memory_equal(buf, ct, len);
		assert_memory_equal(tag[0], want_tag, 16);
		run(16, 0, false, &ln, 1, tag);
		hex(ct, tc[c].pt);
		assert_memory_equal(buf, ct, len);
		assert_memory_equal(tag[0], want_tag, 16);
	}
}

/*
 * Random keys (both sizes), nonces, AADs of 8 and 12 bytes (ESP without and
 * with ESN), every length the path takes, one and two lanes, both directions:
 * ciphertext, plaintext and tag as ipsec-mb has them, and no byte written
 * past the payload.
 */
static void test_against_ipsec_mb(void **state)
{
	(void)state;
	srand(7);
	for (unsigned it = 0; it < 4000; it++) {
		unsigned key_len = it & 1 ? 32 : 16, aad_len = it & 2 ? 12 : 8,
			 nl = 1 + (it >> 3 & 1);
		bool enc = it & 4;
		uint8_t key[32], nonce[2][16], aad[2][16], buf[2][96], ref[2][96], want[2][16];
		uint8_t tag[2][16];
		struct aesgcm_lane ln[2];
		struct gcm_context_data ctx;
		unsigned len0 = 1 + (it >> 4) % (16 * AESGCM_BLOCKS_MAX);

		for (unsigned i = 0; i < sizeof(key); i++)
			key[i] = (uint8_t)rand();
		set_key(key, key_len);
		for (unsigned l = 0; l < nl; l++) {
			/* the second lane: another length of the same block count */
			unsigned len = l == 0 ? len0 : 16 * (aesgcm_nb(len0) - 1) + 1 + rand() % 16;

			if (len > 16 * AESGCM_BLOCKS_MAX)
				len = len0;
			for (unsigned i = 0; i < 16; i++) {
				nonce[l][i] = (uint8_t)rand();
				aad[l][i] = (uint8_t)rand();
			}
			for (unsigned i = 0; i < sizeof(buf[l]); i++)
				buf[l][i] = ref[l][i] = (uint8_t)rand();
			ln[l] = (struct aesgcm_lane){nonce[l], aad[l], buf[l], len};
			assert_true(aesgcm_fits(len, 16));
			assert_int_equal(aesgcm_nb(len), aesgcm_nb(len0));
			if (key_len == 16 && enc)
				IMB_AES128_GCM_ENC(mgr, &kd, &ctx, ref[l], ref[l], len, nonce[l],
						   aad[l], aad_len, want[l], 16);
			else if (key_len == 16)
				IMB_AES128_GCM_DEC(mgr, &kd, &ctx, ref[l], ref[l], len, nonce[l],
						   aad[l], aad_len, want[l], 16);
			else if (enc)
				IMB_AES256_GCM_ENC(mgr, &kd, &ctx, ref[l], ref[l], len, nonce[l],
						   aad[l], aad_len, want[l], 16);
			else
				IMB_AES256_GCM_DEC(mgr, &kd, &ctx, ref[l], ref[l], len, nonce[l],
						   aad[l], aad_len, want[l], 16);
		}
		run(key_len, aad_len, enc, ln, nl, tag);
		for (unsigned l = 0; l < nl; l++) {
			if (memcmp(buf[l], ref[l], sizeof(buf[l])) != 0 ||
			    memcmp(tag[l], want[l], 16) != 0)
				fail_msg(
				    "key %u aad %u %s lane %u of %u, len %u: differs from ipsec-mb",
				    key_len * 8, aad_len, enc ? "encrypt" : "decrypt", l, nl,
				    ln[l].len);
		}
	}
}

/* ipsec-mb's GCM of @len bytes at @buf, in place, tag to @tag. */
static void reference(unsigned key_len, unsigned aad_len, bool enc, const uint8_t *nonce,
		      const uint8_t *aad, uint8_t *buf, unsigned len, uint8_t *tag)
{
	struct gcm_context_data ctx;

	if (key_len == 16 && enc)
		IMB_AES128_GCM_ENC(mgr, &kd, &ctx, buf, buf, len, nonce, aad, aad_len, tag, 16);
	else if (key_len == 16)
		IMB_AES128_GCM_DEC(mgr, &kd, &ctx, buf, buf, len, nonce, aad, aad_len, tag, 16);
	else if (enc)
		IMB_AES256_GCM_ENC(mgr, &kd, &ctx, buf, buf, len, nonce, aad, aad_len, tag, 16);
	else
		IMB_AES256_GCM_DEC(mgr, &kd, &ctx, buf, buf, len, nonce, aad, aad_len, tag, 16);
}

/*
 * aesgcm512.h as aesgcm.h above: random keys, nonces, AADs of 8 and 12 bytes,
 * one to four lanes of independent lengths (every one the path takes), both
 * directions; and no byte changed before or after a payload.
 */
static void test_512_against_ipsec_mb(void **state)
{
	(void)state;
	if (!aesgcm512_usable()) {
		print_message("this CPU lacks AVX-512 VAES/VPCLMULQDQ: aesgcm512 not tested\n");
		skip();
	}
	srand(11);
	for (unsigned it = 0; it < 8000; it++) {
		unsigned key_len = it & 1 ? 32 : 16, aad_len = it & 2 ? 12 : 8,
			 nl = 1 + (it >> 3) % AESGCM512_LANES_MAX;
		bool enc = it & 4;
		uint8_t key[32], nonce[AESGCM512_LANES_MAX][16], aad[AESGCM512_LANES_MAX][16];
		uint8_t buf[AESGCM512_LANES_MAX][96], ref[AESGCM512_LANES_MAX][96];
		uint8_t tag[AESGCM512_LANES_MAX][16], want[AESGCM512_LANES_MAX][16];
		struct aesgcm_lane ln[AESGCM512_LANES_MAX];

		for (unsigned i = 0; i < sizeof(key); i++)
			key[i] = (uint8_t)rand();
		set_key(key, key_len);
		for (unsigned l = 0; l < nl; l++) {
			/* ICVs of 8, 12 and 16 bytes: the shortest payload each lets through */
			unsigned icv = 8 + 4 * ((unsigned)rand() % 3);
			unsigned len = AESGCM512_BYTES_MAX - (unsigned)rand() % (icv + 1);

			for (unsigned i = 0; i < 16; i++) {
				nonce[l][i] = (uint8_t)rand();
				aad[l][i] = (uint8_t)rand();
			}
			for (unsigned i = 0; i < sizeof(buf[l]); i++)
				buf[l][i] = ref[l][i] = (uint8_t)rand();
			/* the payload at 16, as ESP's follows its header and IV */
			ln[l] = (struct aesgcm_lane){nonce[l], aad[l], buf[l] + 16, len};
			assert_true(aesgcm512_fits(len, icv));
			reference(key_len, aad_len, enc, nonce[l], aad[l], ref[l] + 16, len,
				  want[l]);
		}
		aesgcm512_run(kd.expanded_keys, aesgcm_rounds(key_len), &h, aad_len, enc, ln, nl,
			      tag);
		for (unsigned l = 0; l < nl; l++)
			if (memcmp(buf[l], ref[l], sizeof(buf[l])) != 0 ||
			    memcmp(tag[l], want[l], 16) != 0)
				fail_msg(
				    "aesgcm512 key %u aad %u %s lane %u of %u, len %u: differs "
				    "from ipsec-mb",
				    key_len * 8, aad_len, enc ? "encrypt" : "decrypt", l, nl,
				    ln[l].len);
	}
	assert_true(aesgcm512_fits(AESGCM512_BYTES_MAX, 16));
	assert_false(aesgcm512_fits(AESGCM512_BYTES_MAX + 1, 16));
	/* the 64 bytes from 16 before the payload must end within the ICV */
	assert_true(aesgcm512_fits(AESGCM512_BYTES_MAX - 16, 16));
	assert_false(aesgcm512_fits(AESGCM512_BYTES_MAX - 17, 16));
	assert_false(aesgcm512_fits(AESGCM512_BYTES_MAX - 9, 8));
}

static void test_fits(void **state)
{
	(void)state;
	assert_false(aesgcm_fits(0, 16));
	assert_true(aesgcm_fits(16 * AESGCM_BLOCKS_MAX, 16));
	assert_false(aesgcm_fits(16 * AESGCM_BLOCKS_MAX + 4, 16));
	/* an 8-byte ICV: the last block may run at most 8 bytes past the payload */
	assert_true(aesgcm_fits(44, 8));
	assert_false(aesgcm_fits(36, 8));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_known_answers),
	    cmocka_unit_test(test_against_ipsec_mb),
	    cmocka_unit_test(test_512_against_ipsec_mb),
	    cmocka_unit_test(test_fits),
	};
	int rc;

	mgr = alloc_mb_mgr(0);
	if (mgr == NULL)
		return 1;
	init_mb_mgr_auto(mgr, NULL);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	free_mb_mgr(mgr);
	return rc;
}
