/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ESP crypto straight on intel-ipsec-mb. For AES-GCM, gcm.c calls the
 * library's one-shot functions on the packets itself (ipsecmb_mgr()). For the
 * rest, rte_ipsec prepares the packets and fills lookaside crypto ops
 * (offsets, IV, AAD, digest); instead of a cryptodev, this module runs them
 * through a per-worker job manager, so CBC+HMAC of every SA in a burst shares
 * the multi-buffer lanes. Then rte_ipsec finishes the packets.
 *
 * Why not the ipsec-mb cryptodevs' CPU-crypto path: it runs GCM as
 * init/update/finalize (one-shot is 11 cycles cheaper at 48 bytes and ~70 at
 * 1384 here), adds a PMD layer per call, and flushes the CBC/HMAC manager on
 * every call, i.e. per SA.
 */
#ifndef DPSEC_IPSECMB_H
#define DPSEC_IPSECMB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <intel-ipsec-mb.h>

#include <rte_common.h>
#include <rte_crypto.h>
#include <rte_mbuf.h>

enum ipsecmb_kind {
	IPSECMB_NONE = 0, /* not ours: the SA runs on a cryptodev */
	IPSECMB_GCM,	  /* one-shot AES-GCM, called by gcm.c */
	IPSECMB_JOB,	  /* the job manager (cipher + HMAC, chacha20-poly1305) */
};

/* An SA's keys in the layout ipsec-mb wants, expanded once on the control thread. */
struct ipsecmb_sa {
	uint8_t kind;	 /* enum ipsecmb_kind */
	bool decrypt;	 /* inbound: verify, then decrypt */
	uint8_t key_len; /* AES key bytes (GCM: 16 or 32) */
	uint8_t tag_len; /* ICV bytes */
	uint8_t aad_len;
	uint8_t iv_len; /* what the op's IV area holds for the cipher */
	IMB_CIPHER_MODE cipher;
	IMB_HASH_ALG hash;
	union {
		struct gcm_key_data gcm;
		struct {
			uint32_t enc[60] __rte_aligned(16); /* AES round keys, up to 256 bits */
			uint32_t dec[60] __rte_aligned(16);
			uint8_t ipad[64] __rte_aligned(16); /* HMAC inner/outer state */
			uint8_t opad[64] __rte_aligned(16);
		} cbc;
		uint8_t chacha[32] __rte_aligned(16);
	} k;
} __rte_cache_aligned;

/* Job managers for @n_workers workers and the control thread. 0 or -errno with @err. */
int ipsecmb_init(unsigned n_workers, char *err, size_t errlen);
void ipsecmb_fini(void);
/* "avx512", "avx2", ... as the library picked it for this CPU, or NULL before init. */
const char *ipsecmb_arch(void);

/*
 * Control thread: expand the keys of @xf (the chain rte_ipsec was given) into
 * @k. Returns false, leaving k->kind IPSECMB_NONE, for what this module does
 * not run (the caller then uses a cryptodev). @k must be wiped with
 * ipsecmb_sa_wipe() when the SA goes.
 */
bool ipsecmb_sa_init(struct ipsecmb_sa *k, const struct rte_crypto_sym_xform *xf);
void ipsecmb_sa_wipe(struct ipsecmb_sa *k);
/*
 * The cache lines of @k (bit i: bytes 64i..64i+63) a worker reads for it:
 * the header, the round keys of its key size and direction, and the GHASH
 * keys a short GCM packet uses (where depends on the code path the library
 * picked) or the HMAC states. For prefetching an SA's crypto ahead of its turn.
 */
uint16_t ipsecmb_sa_lines(const struct ipsecmb_sa *k);

/*
 * Of those lines, the ones that hold only the library's GHASH keys (the same
 * for every GCM SA), which code with its own powers of H never reads.
 */
extern uint16_t ipsecmb_ghash_lines;

/*
 * Worker @worker: run the crypto of @n ops rte_ipsec_pkt_crypto_prepare()
 * filled for one IPSECMB_JOB SA, in place. The mbufs whose crypto failed (ICV mismatch,
 * a length the cipher refuses) get RTE_MBUF_F_RX_SEC_OFFLOAD_FAILED, which
 * rte_ipsec_pkt_process() then drops.
 */
void ipsecmb_process(unsigned worker, const struct ipsecmb_sa *k, struct rte_crypto_op *cop[],
		     uint16_t n);

/*
 * The same in two steps, so the ops of several SAs share the job manager's
 * lanes: submit each SA's ops, then flush once; only after the flush are all
 * of them done.
 */
void ipsecmb_submit(unsigned worker, const struct ipsecmb_sa *k, struct rte_crypto_op *cop[],
		    uint16_t n);
void ipsecmb_flush(unsigned worker);

/* Tags are secret-dependent on a forgery attempt: compare without early exit. */
static inline bool ipsecmb_tag_equal(const uint8_t *a, const uint8_t *b, unsigned len)
{
	uint64_t x, y, d = 0;
	unsigned i = 0;

	if (likely(len == 16)) { /* AES-GCM's and most SAs': no loop */
		uint64_t x2, y2;

		memcpy(&x, a, 8);
		memcpy(&x2, a + 8, 8);
		memcpy(&y, b, 8);
		memcpy(&y2, b + 8, 8);
		return ((x ^ y) | (x2 ^ y2)) == 0;
	}
	for (; i + 8 <= len; i += 8) {
		memcpy(&x, a + i, 8);
		memcpy(&y, b + i, 8);
		d |= x ^ y;
	}
	for (; i < len; i++)
		d |= (uint64_t)(a[i] ^ b[i]);
	return d == 0;
}

/* Worker @worker's manager, for calling the library's one-shot functions directly (gcm.c). */
IMB_MGR *ipsecmb_mgr(unsigned worker);

#endif
