/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Crypto devices for ESP: which cryptodev does which algorithm, one queue
 * pair per worker, the session and op mempools. Sessions are created here and
 * handed to rte_ipsec (sad.c); the packet path (esp.c) only reads the device
 * id and the action type stored in the rte_ipsec_session.
 */
#ifndef DPSEC_CRYPTO_H
#define DPSEC_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <rte_crypto.h>
#include <rte_ipsec.h>
#include <rte_mempool.h>

#include "ipsecmb.h"

/* Room after each rte_crypto_op for the per-packet IV rte_ipsec writes there. */
#define CRYPTO_IV_OFFSET (sizeof(struct rte_crypto_op) + sizeof(struct rte_crypto_sym_op))
#define CRYPTO_IV_ROOM	 16

/* Ops each worker keeps for the ipsec-mb path (the most one ESP call prepares). */
#define CRYPTO_WORKER_OPS 128

/* How packets reach the crypto engine. */
enum crypto_mode {
	CRYPTO_MODE_AUTO,      /* intel-ipsec-mb directly (ipsecmb.h), else as CPU */
	CRYPTO_MODE_CPU,       /* the cryptodev's CPU-crypto API where it has one, else lookaside */
	CRYPTO_MODE_LOOKASIDE, /* always enqueue/dequeue on the worker's queue pair */
};

/* Op pool used by the lookaside path; workers allocate from their lcore cache. */
extern struct rte_mempool *crypto_op_pool;

/* Worker @worker's CRYPTO_WORKER_OPS ops for the ipsec-mb path, never returned to the pool. */
struct rte_crypto_op **crypto_worker_ops(unsigned worker);

/*
 * Probe the crypto devices. Cryptodevs given on the EAL command line are used
 * as they are; with none, crypto_aesni_gcm0 and crypto_aesni_mb0 (intel-ipsec-mb)
 * are created, or crypto_openssl0 with a warning when ipsec-mb is missing.
 * Every device gets one queue pair per worker. Returns 0 or -errno with @err.
 */
int crypto_init(unsigned n_workers, char *err, size_t errlen);
void crypto_fini(void);

/* For sessions created later (--crypto, benchmarks, tests); "auto", "cpu", "lookaside". */
void crypto_set_mode(enum crypto_mode mode);
int crypto_mode_parse(const char *s, enum crypto_mode *mode);

/*
 * Create the crypto session for @xf on the best device that can run it and
 * fill ss->type / ss->crypto (ss->sa must already point at the initialised
 * rte_ipsec SA; rte_ipsec_session_prepare() is called here). When the best
 * device is an intel-ipsec-mb PMD and the mode is auto, @mb gets the expanded
 * keys and the SA runs on ipsecmb.h (its ss->type is then lookaside, for the
 * ops rte_ipsec prepares); otherwise mb->kind is IPSECMB_NONE. @dev_name gets
 * the engine's name for display. Returns 0 or -errno with @err.
 */
int crypto_session_create(struct rte_crypto_sym_xform *xf, struct rte_ipsec_session *ss,
			  struct ipsecmb_sa *mb, const char **dev_name, char *err, size_t errlen);
void crypto_session_destroy(struct rte_ipsec_session *ss);

#endif
