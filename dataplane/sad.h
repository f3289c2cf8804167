/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Security Association Database. The control thread is the only writer; the
 * workers look SAs up without locks and account traffic in their own counter
 * slot of each SA. A deleted or replaced SA is freed only after every worker
 * has passed a quiescent state (rte_rcu_qsbr), so a record a worker found stays
 * valid until that worker reports quiescent.
 *
 * Key: (SPI, destination address, address family, protocol) — the SA's
 * identity (dst, proto, spi) as IKE and `sa add/del` name it. Inbound, the
 * worker has exactly those fields from the packet (outer destination and the
 * ESP SPI), so one exact-match lookup finds the SA; SPIs we allocate ourselves
 * are unique per destination. Keeping dst in the key also lets outbound SAs
 * whose SPIs were chosen by different peers coincide without clashing.
 */
#ifndef DPSEC_SAD_H
#define DPSEC_SAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <rte_byteorder.h>
#include <rte_common.h>
#include <rte_ip.h>
#include <rte_ipsec.h>
#include <rte_prefetch.h>
#include <rte_rcu_qsbr.h>
#include <rte_spinlock.h>
#include <rte_udp.h>

#include "aesgcm.h"

#include "dpsec.pb-c.h"
#include "ipsecmb.h"

#define SAD_ENTRIES_MAX	    65536
#define SAD_REPLAY_WIN_MAX  4096
#define SAD_LOOKUP_BULK_MAX 64 /* what rte_hash_lookup_bulk accepts at once */
#define SAD_OWNER_MAX	    16 /* owner names, with the NUL */
#define SAD_NO_LEASE	    UINT64_MAX

/*
 * The most ESP geometry any SA has (sa_geometry(): CBC's IV and block, the
 * HMAC-SHA-512 ICV): outbound.c tells packets that fit every SA from the rest
 * without reading the SA.
 */
#define SAD_IV_MAX	  16
#define SAD_ICV_MAX	  32
#define SAD_PAD_ALIGN_MAX 16

/* Why a packet was dropped by an SA; one counter each, per worker. */
enum sa_drop {
	SA_DROP_AUTH,	 /* ICV mismatch */
	SA_DROP_REPLAY,	 /* sequence number already seen (inside the window) */
	SA_DROP_LATE,	 /* sequence number left of the replay window */
	SA_DROP_TRAILER, /* bad padding, pad length or next header */
	SA_DROP_POLICY,	 /* inner packet not allowed by the inbound policy (caller counts) */
	SA_DROP_EXPIRED, /* hard lifetime reached or sequence numbers exhausted */
	SA_DROP_LEASE,	 /* outbound: sequence lease used up, dpsec-ike has not extended it */
	SA_DROP_OTHER,	 /* malformed, no room, crypto device refused */
	SA_DROP_MAX
};

/* One worker's view of an SA: written only by that worker. */
struct sa_counters {
	uint64_t bytes; /* inner IP bytes, both directions */
	uint64_t packets;
	uint64_t last_tsc; /* last successful packet, timer cycles */
	uint64_t seq_used; /* outbound sequence numbers this worker consumed */
	uint64_t seq_in;   /* inbound: highest sequence number this worker accepted */
	uint64_t drops[SA_DROP_MAX];
	bool seq_exhausted; /* rte_ipsec refused to wrap the sequence number */
} __rte_cache_aligned;

struct sa_lifetime {
	uint64_t packets, bytes, seconds; /* 0 = no limit */
};

struct sa_key {
	uint32_t spi; /* network order */
	uint8_t family;
	uint8_t proto;
	uint16_t zero; /* keys are hashed whole: never leave padding undefined */
	uint8_t dst[16];
	uint8_t pad[8]; /* 32 bytes: rte_hash compares such keys with SIMD, not memcmp */
} __rte_aligned(8);	/* rte_hash_crc reads keys 8 bytes at a time */

/*
 * What gcm.c needs of an AES-GCM SA in place of rte_ipsec's SA, on one line.
 * Both directions start with the salt, RFC 4106's fixed part of the nonce.
 */
struct sa_gcm {
	union {
		struct {
			uint8_t salt[4];
			uint32_t spi;	    /* network order */
			uint64_t seq_first; /* sa->seq_first, here for the burst */
			/* outer IP header, with UDP for NAT-T (length by family and natt) */
			uint8_t hdr[sizeof(struct rte_ipv6_hdr) + sizeof(struct rte_udp_hdr)];
		} out;
		/* the replay window as RFC 6479 keeps it: a ring of 64-bit buckets */
		struct {
			uint8_t salt[4];
			uint32_t size; /* sequence numbers it spans; 0: no replay check */
			uint32_t mask; /* buckets - 1 */
			uint64_t top;  /* highest number accepted (or the floor it started at) */
			uint64_t *bits;
		} in;
	};
};

/* Where an own_esp SA's short payloads go (longer ones always to ipsec-mb). */
enum sa_gcm_short {
	SA_GCM_LONG,   /* ipsec-mb for all: the CPU lacks AES-NI or PCLMULQDQ */
	SA_GCM_AESNI,  /* aesgcm.h */
	SA_GCM_AVX512, /* aesgcm512.h, and aesgcm.h for what it does not take */
};

struct sa {
	/*
	 * Line 0, read on every burst: a worker reads no other line of the record
	 * but the ESP state below that its kind needs (gcm, or ss and rte_ipsec's
	 * SA), the keys it uses, and src/dst for NAT-T inbound. 10k SAs each cost
	 * these lines (sad_prefetch, sad_prefetch_state).
	 *
	 * seq_taken: outbound sequence numbers handed out so far, by every worker
	 * (the counter slots, sad_cnt(), follow the record instead of being
	 * pointed at from here). Workers sharing one SA pass this line between
	 * them once a burst.
	 */
	uint64_t seq_taken;
	bool expired_hard; /* set by the control thread; workers then drop */
	bool inbound;
	bool natt;
	uint8_t family;			    /* outer AF_INET / AF_INET6 */
	uint16_t sport, dport;		    /* NAT-T ports, host order */
	uint8_t iv_len, icv_len, pad_align; /* ESP geometry, for drop reasons */
	bool esn;
	uint32_t reqid;	      /* the tunnel's SAs across rekeys; 0 = this SA alone */
	uint16_t key_lines;   /* ipsecmb_sa_lines(&mb), for sad_prefetch_state() */
	uint16_t outer_sum;   /* IPv4 outer header sum without length and id (esp.c) */
	bool window_lock;     /* inbound with a window and several workers: take in_lock */
	bool own_esp;	      /* AES-GCM: gcm.c builds and checks the packets, not rte_ipsec */
	uint8_t gcm_short;    /* own_esp with gcm_h: enum sa_gcm_short */
	uint64_t seq_in_base; /* inbound: the seq-in it was installed with */
	/* outbound: sequence numbers this SA may use in all (its lease), SAD_NO_LEASE
	 * for none; written by the control thread, read atomically */
	uint64_t seq_max;
	/* hard limits, held exactly by the workers (esp.c); 0 = none */
	uint64_t hard_packets, hard_bytes;

	/* own_esp: the packet template or replay window, in place of rte_ipsec's SA */
	struct sa_gcm gcm __rte_cache_aligned;
	struct aesgcm_h gcm_h; /* gcm_short: the GHASH powers; wiped on free */

	/* read on every burst when the SA runs on ipsec-mb directly; wiped on free */
	struct ipsecmb_sa mb;

	/* the other SAs' rte_ipsec session (not read for own_esp SAs) */
	struct rte_ipsec_session ss;

	uint8_t src[16], dst[16]; /* outer addresses (NAT-T moves; the packets carry dst) */
	uint32_t replay_window;	  /* only a refusal reads it */

	/* control thread only */
	struct sa_key key;
	Dpsec__Mode mode;
	Dpsec__Aead aead;
	Dpsec__Cipher cipher;
	Dpsec__Integ integ;
	bool expired_soft;
	struct sa_lifetime soft;
	uint64_t hard_seconds;
	uint64_t add_tsc;
	uint64_t seq_first; /* first outbound sequence number */
	const char *dev_name;
	uint8_t *params; /* the packed SaAdd (keys!) for sad_update; wiped on free */
	size_t params_len;

	char owner[SAD_OWNER_MAX]; /* who added it ("ike"), "" for the operator */
	uint64_t lease_base;	   /* seq_taken when the lease was last set */
	bool lease_asked;	   /* a LEASE event went out for the current lease */
	/* the source the last MAPPING event named (a change is reported once) */
	uint8_t mapped_addr[16];
	uint16_t mapped_port; /* network order; 0 = none reported */

	rte_spinlock_t in_lock __rte_cache_aligned; /* inbound: one window update at a time */
	uint64_t win_top;			    /* the window's right edge, under in_lock */
};

extern unsigned sad_workers; /* counter slots per SA */

#define SAD_NATT_PORT 4500 /* always ESP-in-UDP / IKE (RFC 3948), SAs or not */

/*
 * Local UDP ports that carry ESP-in-UDP: 4500 and whatever port an inbound
 * NAT-T SA names as its destination (charon's port_nat_t). Workers read it;
 * the control thread keeps it (bit per port, network-order port numbers).
 */
extern uint64_t sad_natt_ports[65536 / 64];

static inline bool sad_natt_port(uint16_t port_be)
{
	uint16_t p = rte_be_to_cpu_16(port_be);

	return (__atomic_load_n(&sad_natt_ports[p / 64], __ATOMIC_RELAXED) >> (p % 64)) & 1;
}

/* Inbound NAT-T SAs in the table (any port): while there are some, UDP fragments may be ESP. */
extern uint32_t sad_natt_inbound;

static inline bool sad_natt_any(void)
{
	return __atomic_load_n(&sad_natt_inbound, __ATOMIC_RELAXED) != 0;
}

/* Where an SA's parts lie in its one allocation: the SA, its counter slots, its rte_ipsec SA. */
#define SAD_HDR_SIZE RTE_ALIGN_CEIL(sizeof(struct sa), RTE_CACHE_LINE_SIZE)

/* The SA's per-worker counter slots, [sad_workers], each on its own line(s). */
static inline struct sa_counters *sad_cnt(const struct sa *sa)
{
	return (struct sa_counters *)((uintptr_t)sa + SAD_HDR_SIZE);
}

/* rte_ipsec's SA, behind the counter slots (ss.sa, without loading it). */
static inline const void *sad_ipsa_at(const struct sa *sa)
{
	return sad_cnt(sa) + sad_workers;
}

/*
 * Before a burst touches them: the lines of @sa a worker reads or writes,
 * and no more (10k SAs miss the cache, and a core has only so many misses in
 * flight: each line left out counts). Two steps: the record's first line when
 * the burst is sorted by SA, then, with own_esp and key_lines at hand, the
 * state ESP works on (counters, gcm or rte_ipsec's session and SA, keys) a
 * few SAs ahead of its turn. With @short_gcm (a gcm_short SA's burst of
 * payloads aesgcm.h takes) not ipsec-mb's GHASH table: aesgcm.h reads gcm_h.
 */
static inline void sad_prefetch(const struct sa *sa, bool outbound)
{
	if (outbound)
		rte_prefetch0_write(sa); /* seq_taken */
	else
		rte_prefetch0(sa);
}

static inline void sad_prefetch_state(const struct sa *sa, unsigned worker, bool short_gcm)
{
	const uint8_t *cnt = (const uint8_t *)(sad_cnt(sa) + worker);
	const uint8_t *ipsa = sad_ipsa_at(sa);
	const uint8_t *key = (const uint8_t *)&sa->mb;

	/* the per-packet counters; the drop reasons past them are rare */
	rte_prefetch0_write(cnt);
	if (sa->own_esp) {
		rte_prefetch0(&sa->gcm); /* all gcm.c reads instead of rte_ipsec's SA */
		if (sa->gcm_short) {
			rte_prefetch0(sa->gcm_h.pow);
			rte_prefetch0(RTE_PTR_ADD(sa->gcm_h.pow, sizeof(sa->gcm_h) - 1));
		}
	} else {
		rte_prefetch0(&sa->ss);
		rte_prefetch0(ipsa);
		rte_prefetch0(ipsa + RTE_CACHE_LINE_SIZE);
		rte_prefetch0(ipsa + 2 * RTE_CACHE_LINE_SIZE);
		/* rte_ipsec's statistics.bytes: 0xc0 in 22.11, past the first three lines (10k
		 * SAs: 1.32x decrypt, 1.11x encrypt at 64 B; its miss was 23 % of the decrypt
		 * worker) */
		rte_prefetch0(ipsa + 3 * RTE_CACHE_LINE_SIZE);
	}
	/* only the key lines this SA's crypto reads: with 10k SAs each is a trip to memory */
	for (unsigned b = sa->key_lines & ~(short_gcm ? (unsigned)ipsecmb_ghash_lines : 0u); b != 0;
	     b &= b - 1)
		rte_prefetch0(key + (unsigned)__builtin_ctz(b) * RTE_CACHE_LINE_SIZE);
}

/*
 * Create the table. @qs is the workers' QSBR variable (NULL only when no
 * worker ever reads the SAD, as in single-threaded tests). Returns 0 or -errno.
 */
int sad_init(struct rte_rcu_qsbr *qs, unsigned n_workers, char *err, size_t errlen);
void sad_fini(void);

/* Control thread. Return 0 or -errno with a reason in @err; nothing changes on error. */
int sad_add(const Dpsec__SaAdd *m, char *err, size_t errlen);
int sad_del(const Dpsec__SaId *id, char *err, size_t errlen);
/*
 * New addresses or NAT-T ports for an existing SA (NAT mapping change,
 * MOBIKE): a new record with the same keys replaces it, outbound sequence
 * numbers continue, lifetimes keep counting from the original install.
 * An inbound SA's new replay window refuses everything up to the highest
 * sequence number the old record accepted.
 */
int sad_update(const Dpsec__SaUpdate *u, char *err, size_t errlen);
/* An outbound SA may now send sequence numbers up to @l->seq_limit; a lease
 * only ever grows (a smaller limit than the current one changes nothing). */
int sad_lease(const Dpsec__SaLease *l, char *err, size_t errlen);
/* Everything, or with @owner (not NULL or "") only the SAs that owner added. */
void sad_flush(const char *owner);
/* Every SA as SaInfo (no keys; counters summed over workers). Free with sad_dump_free(). */
size_t sad_dump(Dpsec__SaInfo ***out);
void sad_dump_free(Dpsec__SaInfo **infos, size_t n);
/* One SA as SaInfo, built in one allocation: release it with free(). */
int sad_query(const Dpsec__SaId *id, Dpsec__SaInfo **out, char *err, size_t errlen);
/* Control-thread lookup by identity (no RCU needed: the caller is the writer). */
struct sa *sad_find(const Dpsec__SaId *id);
/*
 * Called on the control thread whenever a record starts or stops being the SA
 * for its identity (@old NULL for a new SA, @sa NULL on delete), before @old
 * goes to the grace-period queue: whoever caches SA pointers (the SPD)
 * repoints them here, so no reader can pick up @old after its grace period.
 */
typedef void (*sad_rebind_fn)(const struct sa *old, struct sa *sa);
void sad_set_rebind(sad_rebind_fn fn);
/* Control thread: the SA of that direction with @spi (and @dst when @len != 0). */
struct sa *sad_find_spi(bool inbound, uint32_t spi, const uint8_t *dst, size_t len);

/* Free records whose grace period is over; returns how many are still pending. */
unsigned sad_reclaim(void);

/*
 * Lifetimes: called periodically by the control thread with
 * rte_get_timer_cycles(). Raises @cb once for soft and once for hard expiry
 * of each SA; hard-expired SAs are marked so esp_* drop their packets.
 * Sequence-number exhaustion is a hard expiry.
 */
typedef void (*sad_expire_cb)(const struct sa *sa, bool hard, void *arg);
/* Half of an outbound SA's lease is used (or all of it): once per lease. */
typedef void (*sad_lease_cb)(const struct sa *sa, uint64_t seq_out, uint64_t seq_limit, void *arg);
void sad_check_lifetimes(uint64_t now_tsc, sad_expire_cb cb, sad_lease_cb lease, void *arg);

/* Worker side, lock-free. @dst is 4 or 16 bytes in network order. */
struct sa *sad_lookup(uint32_t spi_be, const void *dst, int family);
/*
 * Up to SAD_LOOKUP_BULK_MAX lookups at once; out[i] is NULL on a miss.
 * Returns the number of hits.
 */
unsigned sad_lookup_bulk(const uint32_t spi_be[], const void *const dst[], const int family[],
			 unsigned n, struct sa *out[]);

#endif
