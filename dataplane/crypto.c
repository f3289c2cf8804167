/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Crypto devices for ESP. intel-ipsec-mb does the work (aesni_gcm for GCM,
 * aesni_mb for CBC/HMAC, CTR and chacha20-poly1305); OpenSSL only when
 * ipsec-mb is not installed, since it is several times slower per packet.
 * A hardware cryptodev given on the EAL command line wins over both.
 */
#define ALLOW_EXPERIMENTAL_API 1 /* session pools are still experimental in 22.11 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_bus_vdev.h>
#include <rte_cryptodev.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_log.h>

#include "crypto.h"

#define CRYPTO_DEV_MAX	     RTE_CRYPTO_MAX_DEVS
#define CRYPTO_QP_DESC	     2048
#define CRYPTO_SESSIONS_MAX  32768 /* two per SA pair for 10k tunnels, plus rekeys */
#define CRYPTO_SESSION_CACHE 0	   /* sessions are made on the control thread only */
#define CRYPTO_OPS_PER_QP    2048
#define CRYPTO_OP_CACHE	     256

struct rte_mempool *crypto_op_pool;

static struct rte_mempool *session_pool;
static enum crypto_mode mode = CRYPTO_MODE_AUTO;
static struct rte_crypto_op **worker_ops; /* [n_workers][CRYPTO_WORKER_OPS] */
static unsigned n_worker_ops;
static const char *mb_name; /* "ipsec-mb <arch>", the display name of the direct path */
static char mb_name_buf[32];
static bool dev_used[CRYPTO_DEV_MAX];
static unsigned n_dev_used;

/* The intel-ipsec-mb PMDs we create ourselves, best first. */
static const char *const ipsec_mb_vdevs[] = {"crypto_aesni_gcm0", "crypto_aesni_mb0"};

static const char *dev_driver(uint8_t dev_id)
{
	struct rte_cryptodev_info info;

	rte_cryptodev_info_get(dev_id, &info);
	return info.driver_name;
}

static bool is_software(const char *drv)
{
	static const char *const sw[] = {"crypto_aesni",  "crypto_chacha",    "crypto_openssl",
					 "crypto_null",	  "crypto_scheduler", "crypto_kasumi",
					 "crypto_snow3g", "crypto_zuc"};

	for (size_t i = 0; i < RTE_DIM(sw); i++)
		if (strncmp(drv, sw[i], strlen(sw[i])) == 0)
			return true;
	return false;
}

/*
 * Rank a device for an algorithm: hardware first, then the ipsec-mb PMD built
 * for that algorithm, then any ipsec-mb PMD, OpenSSL last.
 */
static int dev_rank(uint8_t dev_id, bool gcm)
{
	const char *drv = dev_driver(dev_id);

	if (!is_software(drv))
		return 4;
	if (strcmp(drv, gcm ? "crypto_aesni_gcm" : "crypto_aesni_mb") == 0)
		return 3;
	if (strncmp(drv, "crypto_aesni", 12) == 0 || strncmp(drv, "crypto_chacha", 13) == 0)
		return 2;
	if (strcmp(drv, "crypto_openssl") == 0)
		return 1;
	return 0;
}

static bool cap_ok(uint8_t dev_id, const struct rte_crypto_sym_xform *xf)
{
	for (; xf != NULL; xf = xf->next) {
		struct rte_cryptodev_sym_capability_idx idx = {.type = xf->type};
		const struct rte_cryptodev_symmetric_capability *cap;
		int rc;

		switch (xf->type) {
		case RTE_CRYPTO_SYM_XFORM_AEAD:
			idx.algo.aead = xf->aead.algo;
			cap = rte_cryptodev_sym_capability_get(dev_id, &idx);
			rc = cap == NULL ? -1
					 : rte_cryptodev_sym_capability_check_aead(
					       cap, xf->aead.key.length, xf->aead.digest_length,
					       xf->aead.aad_length, xf->aead.iv.length);
			break;
		case RTE_CRYPTO_SYM_XFORM_CIPHER:
			idx.algo.cipher = xf->cipher.algo;
			cap = rte_cryptodev_sym_capability_get(dev_id, &idx);
			rc = cap == NULL ? -1
					 : rte_cryptodev_sym_capability_check_cipher(
					       cap, xf->cipher.key.length, xf->cipher.iv.length);
			break;
		case RTE_CRYPTO_SYM_XFORM_AUTH:
			idx.algo.auth = xf->auth.algo;
			cap = rte_cryptodev_sym_capability_get(dev_id, &idx);
			rc = cap == NULL
				 ? -1
				 : rte_cryptodev_sym_capability_check_auth(cap, xf->auth.key.length,
									   xf->auth.digest_length,
									   xf->auth.iv.length);
			break;
		default:
			rc = -1;
		}
		if (rc != 0)
			return false;
	}
	return true;
}

static bool has_cpu_crypto(uint8_t dev_id)
{
	struct rte_cryptodev_info info;

	rte_cryptodev_info_get(dev_id, &info);
	return (info.feature_flags & RTE_CRYPTODEV_FF_SYM_CPU_CRYPTO) != 0;
}

static int dev_setup(uint8_t dev_id, unsigned n_workers, char *err, size_t errlen)
{
	struct rte_cryptodev_info info;
	struct rte_cryptodev_config conf = {
	    .socket_id = rte_cryptodev_socket_id(dev_id),
	    .nb_queue_pairs = n_workers,
	};
	struct rte_cryptodev_qp_conf qp = {
	    .nb_descriptors = CRYPTO_QP_DESC,
	    .mp_session = session_pool,
	};
	int rc;

	rte_cryptodev_info_get(dev_id, &info);
	if (info.max_nb_queue_pairs < n_workers) {
		snprintf(err, errlen, "cryptodev %s has %u queue pairs, need %u",
			 rte_cryptodev_name_get(dev_id), info.max_nb_queue_pairs, n_workers);
		return -ENOSPC;
	}
	if (conf.socket_id < 0)
		conf.socket_id = SOCKET_ID_ANY;
	rc = rte_cryptodev_configure(dev_id, &conf);
	for (unsigned q = 0; rc == 0 && q < n_workers; q++)
		rc = rte_cryptodev_queue_pair_setup(dev_id, q, &qp, conf.socket_id);
	if (rc == 0)
		rc = rte_cryptodev_start(dev_id);
	if (rc != 0) {
		snprintf(err, errlen, "cryptodev %s setup: %s", rte_cryptodev_name_get(dev_id),
			 strerror(-rc));
		return rc;
	}
	dev_used[dev_id] = true;
	n_dev_used++;
	return 0;
}

static void create_vdevs(unsigned n_workers)
{
	char args[64];
	unsigned ok = 0;

	snprintf(args, sizeof(args), "max_nb_queue_pairs=%u", n_workers);
	for (size_t i = 0; i < RTE_DIM(ipsec_mb_vdevs); i++)
		if (rte_vdev_init(ipsec_mb_vdevs[i], args) == 0)
			ok++;
	if (ok == RTE_DIM(ipsec_mb_vdevs))
		return;
	RTE_LOG(WARNING, USER1,
		"dpsec: intel-ipsec-mb cryptodevs unavailable, falling back to crypto_openssl "
		"(several times slower)\n");
	rte_vdev_init("crypto_openssl0", args);
}

int crypto_init(unsigned n_workers, char *err, size_t errlen)
{
	unsigned sess_size = 0;
	uint8_t n;
	int rc;

	if (n_workers == 0) {
		snprintf(err, errlen, "crypto: no workers");
		return -EINVAL;
	}
	if (rte_cryptodev_count() == 0)
		create_vdevs(n_workers);
	n = rte_cryptodev_count();
	if (n == 0) {
		snprintf(err, errlen, "no crypto device (ipsec-mb and openssl PMDs both failed)");
		return -ENODEV;
	}
	for (uint8_t d = 0; d < n; d++)
		sess_size = RTE_MAX(sess_size, rte_cryptodev_sym_get_private_session_size(d));

	session_pool = rte_cryptodev_sym_session_pool_create(
	    "dpsec_crypto_sess", CRYPTO_SESSIONS_MAX, sess_size, CRYPTO_SESSION_CACHE, 0,
	    SOCKET_ID_ANY);
	crypto_op_pool = rte_crypto_op_pool_create("dpsec_crypto_op", RTE_CRYPTO_OP_TYPE_SYMMETRIC,
						   n_workers * CRYPTO_OPS_PER_QP +
						       RTE_MAX_LCORE * CRYPTO_OP_CACHE,
						   CRYPTO_OP_CACHE, CRYPTO_IV_ROOM, SOCKET_ID_ANY);
	if (session_pool == NULL || crypto_op_pool == NULL) {
		snprintf(err, errlen, "crypto mempools: %s", rte_strerror(rte_errno));
		rc = -ENOMEM;
		goto fail;
	}
	for (uint8_t d = 0; d < n; d++) {
		rc = dev_setup(d, n_workers, err, errlen);
		if (rc != 0)
			goto fail;
		RTE_LOG(INFO, USER1, "dpsec: cryptodev %u %s (%s)%s\n", d,
			rte_cryptodev_name_get(d), dev_driver(d),
			has_cpu_crypto(d) ? ", cpu-crypto" : "");
	}
	worker_ops = calloc((size_t)n_workers * CRYPTO_WORKER_OPS, sizeof(*worker_ops));
	if (worker_ops == NULL ||
	    rte_crypto_op_bulk_alloc(crypto_op_pool, RTE_CRYPTO_OP_TYPE_SYMMETRIC, worker_ops,
				     n_workers * CRYPTO_WORKER_OPS) == 0) {
		free(worker_ops);
		worker_ops = NULL;
		snprintf(err, errlen, "crypto ops for the workers: out of memory");
		rc = -ENOMEM;
		goto fail;
	}
	n_worker_ops = n_workers * CRYPTO_WORKER_OPS;
	if (ipsecmb_init(n_workers, err, errlen) == 0) {
		snprintf(mb_name_buf, sizeof(mb_name_buf), "ipsec-mb %s", ipsecmb_arch());
		mb_name = mb_name_buf;
		RTE_LOG(INFO, USER1, "dpsec: intel-ipsec-mb %s (%s) runs ESP crypto directly\n",
			imb_get_version_str(), ipsecmb_arch());
	} else {
		RTE_LOG(WARNING, USER1, "dpsec: %s; ESP crypto goes through cryptodevs\n", err);
	}
	return 0;
fail:
	crypto_fini();
	return rc;
}

void crypto_fini(void)
{
	for (unsigned d = 0; d < CRYPTO_DEV_MAX; d++) {
		if (!dev_used[d])
			continue;
		rte_cryptodev_stop(d);
		dev_used[d] = false;
	}
	n_dev_used = 0;
	ipsecmb_fini();
	mb_name = NULL;
	if (worker_ops != NULL)
		rte_mempool_put_bulk(crypto_op_pool, (void **)worker_ops, n_worker_ops);
	free(worker_ops);
	worker_ops = NULL;
	n_worker_ops = 0;
	rte_mempool_free(crypto_op_pool);
	rte_mempool_free(session_pool);
	crypto_op_pool = NULL;
	session_pool = NULL;
}

void crypto_set_mode(enum crypto_mode m)
{
	mode = m;
}

int crypto_mode_parse(const char *s, enum crypto_mode *m)
{
	static const char *const names[] = {
	    [CRYPTO_MODE_AUTO] = "auto",
	    [CRYPTO_MODE_CPU] = "cpu",
	    [CRYPTO_MODE_LOOKASIDE] = "lookaside",
	};

	for (size_t i = 0; i < RTE_DIM(names); i++)
		if (strcmp(s, names[i]) == 0) {
			*m = (enum crypto_mode)i;
			return 0;
		}
	return -EINVAL;
}

struct rte_crypto_op **crypto_worker_ops(unsigned worker)
{
	return &worker_ops[(size_t)worker * CRYPTO_WORKER_OPS];
}

int crypto_session_create(struct rte_crypto_sym_xform *xf, struct rte_ipsec_session *ss,
			  struct ipsecmb_sa *mb, const char **dev_name, char *err, size_t errlen)
{
	bool gcm =
	    xf->type == RTE_CRYPTO_SYM_XFORM_AEAD && xf->aead.algo == RTE_CRYPTO_AEAD_AES_GCM;
	int best = -1, best_rank = -1;
	void *ses;
	int rc;

	for (unsigned d = 0; d < CRYPTO_DEV_MAX; d++) {
		int r;

		if (!dev_used[d] || !cap_ok(d, xf))
			continue;
		r = dev_rank(d, gcm);
		if (r > best_rank) {
			best_rank = r;
			best = d;
		}
	}
	if (best < 0) {
		snprintf(err, errlen, "no crypto device supports this algorithm and key size");
		return -ENOTSUP;
	}
	ses = rte_cryptodev_sym_session_create(best, xf, session_pool);
	if (ses == NULL) {
		snprintf(err, errlen, "crypto session on %s: %s", rte_cryptodev_name_get(best),
			 rte_strerror(rte_errno));
		return -rte_errno ? -rte_errno : -ENOMEM;
	}
	ss->crypto.ses = ses;
	ss->crypto.dev_id = best;
	/*
	 * Where ipsec-mb would run it anyway, run it directly: rte_ipsec still
	 * needs the session (it checks it and prepares lookaside ops for it).
	 */
	mb->kind = IPSECMB_NONE;
	if (mode == CRYPTO_MODE_AUTO && mb_name != NULL && best_rank >= 2 && best_rank <= 3 &&
	    ipsecmb_sa_init(mb, xf))
		ss->type = RTE_SECURITY_ACTION_TYPE_NONE;
	else
		ss->type = mode != CRYPTO_MODE_LOOKASIDE && has_cpu_crypto(best)
			       ? RTE_SECURITY_ACTION_TYPE_CPU_CRYPTO
			       : RTE_SECURITY_ACTION_TYPE_NONE;
	rc = rte_ipsec_session_prepare(ss);
	if (rc != 0 && ss->type == RTE_SECURITY_ACTION_TYPE_CPU_CRYPTO) {
		/* rte_ipsec refuses CPU crypto for some algorithms; lookaside always works */
		ss->type = RTE_SECURITY_ACTION_TYPE_NONE;
		rc = rte_ipsec_session_prepare(ss);
	}
	if (rc != 0) {
		ipsecmb_sa_wipe(mb);
		rte_cryptodev_sym_session_free(best, ses);
		ss->crypto.ses = NULL;
		snprintf(err, errlen, "rte_ipsec_session_prepare: %s", strerror(-rc));
		return rc;
	}
	if (dev_name != NULL)
		*dev_name = mb->kind != IPSECMB_NONE ? mb_name : dev_driver(best);
	return 0;
}

void crypto_session_destroy(struct rte_ipsec_session *ss)
{
	if (ss->crypto.ses == NULL)
		return;
	rte_cryptodev_sym_session_free(ss->crypto.dev_id, ss->crypto.ses);
	ss->crypto.ses = NULL;
}
