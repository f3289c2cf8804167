/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Security policy database: one rte_acl context per direction and address
 * family, classifying a packet's 5-tuple to a policy record (protect with an
 * SA, bypass, discard, trap).
 *
 * rte_acl contexts are immutable once built, so the control thread (the only
 * writer) builds a new context on every commit, publishes it with one atomic
 * pointer store and frees the old context and any deleted records after an
 * rte_rcu_qsbr grace period. Workers never lock and never write shared state.
 *
 * Match order: the lowest `priority` wins (default 1000); among equal
 * priorities the more specific selector wins (longer src+dst prefixes, then
 * a named protocol, then narrower port ranges), then the policy added first.
 * `replace` keeps a policy's place in that order.
 */
#ifndef DPSEC_SPD_H
#define DPSEC_SPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <rte_common.h>
#include <rte_rcu_qsbr.h>

#include "dpsec.pb-c.h"

#define SPD_MAX_POLICIES     32768 /* all directions and families together */
#define SPD_MAX_WORKERS	     16	   /* worker ids 0..SPD_MAX_WORKERS-1 */
#define SPD_DEFAULT_PRIORITY 1000
#define SPD_BURST	     64 /* spd_classify() works in chunks of this many packets */
#define SPD_OWNER_MAX	     16 /* owner names, with the NUL */

/*
 * A policy as workers see it. Immutable while any published context can
 * return it, except @sa, which the SAD owner swaps atomically.
 */
struct spd_policy {
	uint8_t action; /* Dpsec__Action */
	uint8_t dir;	/* Dpsec__Dir */
	uint8_t family; /* 4 or 6 */
	uint8_t proto;	/* 0 = any */
	uint32_t spi;	/* protect: the bound SA */
	void *sa;	/* resolved SA or NULL; read with spd_policy_sa() */
	uint8_t sa_len; /* 0 when the policy names no SA destination */
	uint8_t src_len;
	uint8_t dst_len;
	uint8_t pad;
	uint16_t sport_lo, sport_hi;
	uint16_t dport_lo, dport_hi;
	uint32_t priority;
	uint8_t sa_dst[16];
	uint8_t src[16]; /* network order, host bits cleared */
	uint8_t dst[16];
} __rte_cache_aligned;

/* Resolves (dir, spi, sa_dst) to an SA when a protect policy is added (set by the apply path). */
typedef void *(*spd_sa_resolver_t)(int dir, uint32_t spi, const uint8_t *sa_dst, size_t sa_len);

/* ---- control thread ---- */

/* @qs: the workers' QSBR variable; every worker id passed to spd_classify() reports on it.
 * Worker ids below @n_workers get a flow cache. */
int spd_init(struct rte_rcu_qsbr *qs, unsigned n_workers, char *err, size_t errlen);
void spd_fini(void);
void spd_set_sa_resolver(spd_sa_resolver_t fn);

/*
 * Stage changes: spd_add/spd_del/spd_flush between these build nothing; spd_commit()
 * builds the changed contexts once. Outside a batch every change commits at once. If
 * the build fails, the whole batch is undone and spd_commit() returns -errno.
 */
void spd_begin(void);
int spd_commit(char *err, size_t errlen);

/* -EINVAL (bad selector), -EEXIST (same dir+selector, unless p->replace), -ENOSPC, or
 * a build failure. With replace, the new record is published before the old one goes. */
int spd_add(const Dpsec__PolicyAdd *p, char *err, size_t errlen);
/* -ENOENT if no policy has this dir+selector. */
int spd_del(const Dpsec__PolicyDel *p, char *err, size_t errlen);
/* Everything, or with @owner (not NULL or "") only the policies that owner added. */
int spd_flush(const char *owner, char *err, size_t errlen);

/*
 * Set the SA of every protect policy of @dir bound to (spi, sa_dst); policies that
 * name no sa_dst match any destination. NULL unbinds (the caller frees the SA only
 * after a grace period). Returns how many policies were updated.
 */
unsigned spd_bind_sa(int dir, uint32_t spi, const uint8_t *sa_dst, size_t sa_len, void *sa);
/* Every policy now using @old uses @sa instead (NULL: unbound). Returns how many. */
unsigned spd_replace_sa(const void *old, void *sa);

/*
 * `show policy`: malloc'd array of malloc'd PolicyInfo; packets and last_use (unix
 * seconds, 0 = never) are summed over workers. Release with spd_dump_free().
 */
size_t spd_dump(Dpsec__PolicyInfo ***out);
/* One policy by dir+selector (for query_policy), or -ENOENT. */
int spd_query(const Dpsec__PolicyDel *p, Dpsec__PolicyInfo **out, char *err, size_t errlen);
void spd_dump_free(Dpsec__PolicyInfo **v, size_t n);

/* How many rte_acl contexts have been built so far (stats, tests). */
uint64_t spd_build_count(void);

/* ---- workers ---- */

/*
 * What a match says, most often straight from the flow cache, i.e. without
 * touching the policy's line (with 10k policies, a miss per packet).
 */
struct spd_verdict {
	void *sa;	/* spd_policy_sa() of the match; NULL for none */
	uint8_t action; /* Dpsec__Action of the match; 0 for none */
};

/*
 * Classify @n packets of one direction and family (AF_INET/AF_INET6). @l3[i] points at
 * the IP header, @l3_len[i] bytes of which are contiguous and already validated (a whole
 * IPv4 header of ihl*4 bytes, or a 40-byte IPv6 header). Ports are read only from
 * TCP, UDP and SCTP first fragments; other packets (non-first fragments, ICMP, a
 * truncated L4 header) match as ports 0, i.e. only selectors whose port range holds 0
 * (normally: none given). @out[i] is the matching policy or NULL; it stays valid until
 * @worker next reports quiescent. Counts a packet and @now_tsc on each match.
 * @v, unless NULL: each match's SA and action, for callers that need no more of it.
 */
void spd_classify(int dir, int family, const uint8_t *const l3[], const uint16_t l3_len[],
		  uint16_t n, unsigned worker, uint64_t now_tsc, struct spd_policy *out[],
		  struct spd_verdict v[]);

/* Trap policies: true at most once per second per policy and worker (raise ACQUIRE). */
bool spd_trap_should_raise(const struct spd_policy *p, unsigned worker, uint64_t now_tsc);

static inline void *spd_policy_sa(const struct spd_policy *p)
{
	return __atomic_load_n(&p->sa, __ATOMIC_ACQUIRE);
}

#endif
