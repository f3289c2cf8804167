/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Security policy database (see spd.h for the model and the match order).
 *
 * Records live in one hugepage array indexed by slot; the rte_acl userdata of a
 * rule is slot + 1 (0 means "no match" to rte_acl). A slot is only rewritten
 * while no published context can return it: new and replacing policies take a
 * fresh slot, and deleted or replaced slots are wiped after the grace period
 * that follows the publication of the context without them.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <nmmintrin.h>

#include <rte_acl.h>
#include <rte_branch_prediction.h>
#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_jhash.h>
#include <rte_memzone.h>

#include "spd.h"

#define NO_SLOT	   UINT32_MAX
#define SHADOW_LEN 44 /* IPv6 header + 4 bytes of ports: the largest key layout */
#define V6_EXT_MAX 8  /* extension headers walked before giving up on the L4 header */

/* Control-thread state of a slot; workers never read it. */
enum slot_state {
	SLOT_FREE = 0,
	SLOT_STAGED, /* in the next context, not in the published one */
	SLOT_LIVE,   /* in the published context (and in the next one) */
	SLOT_DYING,  /* in the published context, not in the next one */
};

struct slot_ctl {
	uint8_t state;
	bool pending;	       /* listed in spd.pending since the last commit */
	uint32_t replaces;     /* slot this one takes over from at commit, or NO_SLOT */
	uint64_t seq;	       /* insertion order, the last tie breaker */
	uint64_t packets_base; /* counts inherited through replace */
	uint64_t last_use_base;
	char owner[SPD_OWNER_MAX]; /* who added it ("ike"), "" for the operator */
};

/* Written only by its own worker; the control thread reads it and wipes it after a grace period. */
struct spd_wstat {
	uint64_t packets;
	uint64_t last_use;     /* tsc */
	uint64_t last_acquire; /* tsc, 0 = never */
};

/*
 * Per worker and direction, the last IPv4 classifications by the ACL's own
 * input (protocol, addresses, ports): a flow's later packets skip the trie
 * walk (~30 cycles a packet here, far more with thousands of policies).
 * Direct-mapped: sized for tens of thousands of flows (4096 entries held
 * 10,000 flows badly: 10k-SA encrypt ran 25 % slower). Entries carry the SPD
 * epoch; every commit bumps it, so no entry outlives the context (and slots)
 * it was computed from. Entries keep the policy's SA and action too, so that
 * with many policies a hit needs no more of the policy's line than its counter
 * (and the SA starts loading at once); binding an SA bumps the epoch as well.
 */
#define FLOW_CACHE_SIZE 65536 /* per direction; a power of two (2 MB) */

struct flow_ent {
	uint64_t addrs; /* source and destination as on the wire */
	uint64_t rest;	/* ports << 8 | protocol */
	uint32_t epoch; /* 0: never filled */
	uint16_t res;	/* rte_acl result: slot + 1, 0 = no policy */
	uint8_t action; /* the policy's, when filled */
	uint8_t pad;
	void *sa; /* the policy's SA when filled */
};

/* res holds a slot + 1; two entries to a line */
_Static_assert(SPD_MAX_POLICIES < UINT16_MAX, "flow_ent.res is 16 bits");
_Static_assert(sizeof(struct flow_ent) == 32, "flow_ent is half a cache line");

struct flow_cache {
	struct flow_ent e[2][FLOW_CACHE_SIZE];
};

/* Identity of a policy: direction + canonical selector, memcmp-able (no holes). */
struct spd_key {
	uint8_t dir;
	uint8_t family;
	uint8_t proto;
	uint8_t src_len;
	uint8_t dst_len;
	uint8_t pad[3];
	uint16_t sport_lo, sport_hi;
	uint16_t dport_lo, dport_hi;
	uint8_t src[16];
	uint8_t dst[16];
};

/* rte_acl field layouts, offsets relative to the IP header (see key4()/key6()). */
enum { F4_PROTO, F4_SRC, F4_DST, F4_SPORT, F4_DPORT, F4_NUM };
enum { F6_PROTO, F6_SRC0, F6_DST0 = F6_SRC0 + 4, F6_SPORT = F6_DST0 + 4, F6_DPORT, F6_NUM };

RTE_ACL_RULE_DEF(spd_rule4, F4_NUM);
RTE_ACL_RULE_DEF(spd_rule6, F6_NUM);

static struct {
	struct rte_rcu_qsbr *qs;
	struct spd_policy *tab;			  /* SPD_MAX_POLICIES, hugepages */
	struct spd_wstat *wstat[SPD_MAX_WORKERS]; /* SPD_MAX_POLICIES each, hugepages */
	struct rte_acl_ctx *acl[2][2];		  /* [dir][v6], published; atomic */
	struct slot_ctl *ctl;
	struct rte_hash *index; /* spd_key -> slot */
	uint32_t *free_slots;
	uint32_t nfree;
	uint32_t *pending;
	uint32_t npending;
	bool batch;
	bool dirty[2][2];
	uint64_t seq;
	uint32_t gen;
	uint32_t epoch;		  /* flow caches: see flow_caches_expire() */
	struct flow_cache *flows; /* [n_flows], hugepages */
	unsigned n_flows;
	uint64_t builds;
	uint64_t hz;
	uint64_t tsc0;
	uint64_t unix0;
	spd_sa_resolver_t resolve;
} spd;

/* Control thread: every worker's cached flows stop counting from their next burst. */
static void flow_caches_expire(void)
{
	__atomic_store_n(&spd.epoch, spd.epoch + 1, __ATOMIC_RELEASE);
}

static struct rte_acl_config acl_cfg4, acl_cfg6;

static void field(struct rte_acl_config *c, uint8_t type, uint8_t size, uint8_t input,
		  uint32_t offset)
{
	uint8_t i = c->num_fields++;

	c->defs[i] = (struct rte_acl_field_def){
	    .type = type, .size = size, .field_index = i, .input_index = input, .offset = offset};
}

/*
 * rte_acl wants the first field to be one byte and the rest in 4-byte input groups:
 * proto | src | dst | sport+dport. Pointing the search at the IP header makes these the
 * header's own offsets, so the common packet needs no copy.
 */
static void acl_configs(void)
{
	unsigned i;

	memset(&acl_cfg4, 0, sizeof(acl_cfg4));
	acl_cfg4.num_categories = 1;
	field(&acl_cfg4, RTE_ACL_FIELD_TYPE_BITMASK, 1, 0, 9);
	field(&acl_cfg4, RTE_ACL_FIELD_TYPE_MASK, 4, 1, 12);
	field(&acl_cfg4, RTE_ACL_FIELD_TYPE_MASK, 4, 2, 16);
	field(&acl_cfg4, RTE_ACL_FIELD_TYPE_RANGE, 2, 3, 20);
	field(&acl_cfg4, RTE_ACL_FIELD_TYPE_RANGE, 2, 3, 22);

	memset(&acl_cfg6, 0, sizeof(acl_cfg6));
	acl_cfg6.num_categories = 1;
	field(&acl_cfg6, RTE_ACL_FIELD_TYPE_BITMASK, 1, 0, 6);
	for (i = 0; i < 8; i++) /* src then dst, 32 bits per field */
		field(&acl_cfg6, RTE_ACL_FIELD_TYPE_MASK, 4, 1 + i, 8 + 4 * i);
	field(&acl_cfg6, RTE_ACL_FIELD_TYPE_RANGE, 2, 9, 40);
	field(&acl_cfg6, RTE_ACL_FIELD_TYPE_RANGE, 2, 9, 42);
}

/* ---- worker side ---- */

static inline bool has_ports(uint8_t proto)
{
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP;
}

static inline uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/*
 * Search key of an IPv4 packet: the header itself when ports sit at offset 20, else a
 * shadow copy with the ports moved there (options) or zeroed (no ports), so that
 * non-first fragments never match a port-specific selector by accident. NULL if the
 * header is malformed.
 */
static inline const uint8_t *key4(const uint8_t *ip, uint16_t len, uint8_t *sh)
{
	unsigned ihl;
	bool first;

	if (unlikely(len < 20))
		return NULL;
	ihl = (ip[0] & 0xf) * 4u;
	first = (rd16(ip + 6) & 0x1fff) == 0;
	if (likely(ihl == 20 && first && has_ports(ip[9]) && len >= 24))
		return ip;
	if (unlikely(ihl < 20 || len < ihl))
		return NULL;
	memset(sh, 0, 24);
	sh[9] = ip[9];
	memcpy(sh + 12, ip + 12, 8);
	if (first && has_ports(ip[9]) && len >= ihl + 4)
		memcpy(sh + 20, ip + ihl, 4);
	return sh;
}

/* IPv6: walk hop-by-hop, routing, destination and fragment headers to the upper layer. */
static inline const uint8_t *key6(const uint8_t *ip, uint16_t len, uint8_t *sh)
{
	unsigned off = 40, i;
	uint8_t nh;
	bool first = true;

	if (unlikely(len < 40))
		return NULL;
	nh = ip[6];
	if (likely(has_ports(nh) && len >= 44))
		return ip;
	for (i = 0; i < V6_EXT_MAX && off + 8 <= len; i++) {
		if (nh == IPPROTO_HOPOPTS || nh == IPPROTO_ROUTING || nh == IPPROTO_DSTOPTS) {
			nh = ip[off];
			off += (ip[off + 1] + 1u) * 8;
		} else if (nh == IPPROTO_FRAGMENT) {
			if (rd16(ip + off + 2) & 0xfff8)
				first = false;
			nh = ip[off];
			off += 8;
		} else {
			break;
		}
	}
	memset(sh, 0, SHADOW_LEN);
	sh[6] = nh;
	memcpy(sh + 8, ip + 8, 32);
	if (first && has_ports(nh) && off + 4 <= len)
		memcpy(sh + 40, ip + off, 4);
	return sh;
}

/* The flow cache's slot hash: CRC32-C, as rte_hash_crc_8byte but without its
 * per-call check of which CRC code runs (the build targets SSE 4.2). */
static inline uint32_t flow_hash(uint64_t addrs, uint64_t rest)
{
	return (uint32_t)_mm_crc32_u64(_mm_crc32_u64(0, addrs), rest);
}

static inline void count(struct spd_wstat *w, uint32_t packets, uint64_t now)
{
	/* single writer: relaxed atomics only so the control thread's reads are race-free */
	__atomic_store_n(&w->packets, w->packets + packets, __ATOMIC_RELAXED);
	__atomic_store_n(&w->last_use, now, __ATOMIC_RELAXED);
}

void spd_classify(int dir, int family, const uint8_t *const l3[], const uint16_t l3_len[],
		  uint16_t n, unsigned worker, uint64_t now_tsc, struct spd_policy *out[],
		  struct spd_verdict v[])
{
	bool v6 = family == AF_INET6;
	const struct rte_acl_ctx *ctx;
	struct spd_wstat *ws = spd.wstat[worker];
	const uint8_t *data[SPD_BURST], *keys[SPD_BURST];
	uint8_t shadow[SPD_BURST][SHADOW_LEN];
	uint32_t res[SPD_BURST], p;
	uint64_t fa[SPD_BURST], fr[SPD_BURST]; /* flow key: addresses, ports and protocol */
	uint16_t idx[SPD_BURST];
	uint32_t hit[SPD_BURST], nh; /* flow-cache hits' policies, counted after the probes */
	struct flow_ent *fe[SPD_BURST], *miss[SPD_BURST], *cache;
	uint16_t base, i, m, k;
	uint32_t epoch;

	RTE_ASSERT(worker < SPD_MAX_WORKERS && (dir == 0 || dir == 1));
	/*
	 * The epoch before the context: a context newer than the epoch only files
	 * entries under an epoch about to end; never the other way round.
	 */
	epoch = __atomic_load_n(&spd.epoch, __ATOMIC_ACQUIRE);
	/* one load per burst: every result below comes from this context's slots */
	ctx = __atomic_load_n(&spd.acl[dir][v6], __ATOMIC_ACQUIRE);
	cache = v6 || worker >= spd.n_flows ? NULL : spd.flows[worker].e[dir];
	for (base = 0; base < n; base += m) {
		m = RTE_MIN(n - base, SPD_BURST);
		/* keys and cache slots first, the slots prefetched: with many flows the
		 * cache is far bigger than L2 and each probe would wait for memory */
		for (i = 0; i < m; i++) {
			const uint8_t *d = NULL;

			if (likely(ctx != NULL))
				d = v6 ? key6(l3[base + i], l3_len[base + i], shadow[i])
				       : key4(l3[base + i], l3_len[base + i], shadow[i]);
			keys[i] = d;
			if (d == NULL || cache == NULL)
				continue;
			memcpy(&fa[i], d + 12, 8);
			memcpy(&p, d + 20, 4);
			fr[i] = (uint64_t)p << 8 | d[9];
			fe[i] = &cache[flow_hash(fa[i], fr[i]) & (FLOW_CACHE_SIZE - 1)];
			rte_prefetch0(fe[i]);
		}
		for (i = 0, k = 0, nh = 0; i < m; i++) {
			const uint8_t *d = keys[i];

			out[base + i] = NULL;
			if (v != NULL)
				v[base + i] = (struct spd_verdict){NULL, 0};
			if (unlikely(d == NULL))
				continue;
			miss[k] = NULL;
			if (cache != NULL) {
				struct flow_ent *e = fe[i];

				if (e->epoch == epoch && e->addrs == fa[i] && e->rest == fr[i]) {
					/* with many policies the counter's line is cold: load
					 * it now, count once the whole burst is looked up */
					if (e->res != 0) {
						out[base + i] = &spd.tab[e->res - 1];
						if (v != NULL)
							v[base + i] =
							    (struct spd_verdict){e->sa, e->action};
						else
							rte_prefetch0(out[base + i]);
						rte_prefetch0_write(&ws[e->res - 1]);
						hit[nh++] = e->res - 1;
					}
					continue;
				}
				e->epoch = 0; /* refilled below, from this burst's context */
				e->addrs = fa[i];
				e->rest = fr[i];
				miss[k] = e;
			}
			data[k] = d;
			idx[k++] = base + i;
		}
		/* a run of one policy counts once: a counter bumped packet by packet waits
		 * on its own store each time (perf annotate: 2 to 3 cycles a packet) */
		for (i = 0; i < nh;) {
			uint32_t j = i + 1;

			while (j < nh && hit[j] == hit[i])
				j++;
			count(&ws[hit[i]], j - i, now_tsc);
			i = (uint16_t)j;
		}
		if (k == 0)
			continue;
		rte_acl_classify(ctx, data, res, k, 1);
		for (i = 0; i < k; i++) {
			const struct spd_policy *pol = res[i] != 0 ? &spd.tab[res[i] - 1] : NULL;
			void *sa = pol != NULL ? spd_policy_sa(pol) : NULL;
			uint8_t action = pol != NULL ? pol->action : 0;

			if (miss[i] != NULL) {
				miss[i]->res = (uint16_t)res[i];
				miss[i]->action = action;
				miss[i]->sa = sa;
				miss[i]->epoch = epoch;
			}
			if (pol == NULL)
				continue;
			out[idx[i]] = &spd.tab[res[i] - 1];
			if (v != NULL)
				v[idx[i]] = (struct spd_verdict){sa, action};
			count(&ws[res[i] - 1], 1, now_tsc);
		}
	}
}

bool spd_trap_should_raise(const struct spd_policy *p, unsigned worker, uint64_t now_tsc)
{
	struct spd_wstat *w = &spd.wstat[worker][p - spd.tab];
	uint64_t last = w->last_acquire;

	/* a trap hit by a flow fires per packet; the IKE daemon needs one ACQUIRE per second */
	if (last != 0 && now_tsc - last < spd.hz)
		return false;
	__atomic_store_n(&w->last_acquire, now_tsc ? now_tsc : 1, __ATOMIC_RELAXED);
	return true;
}

/* ---- control thread: selectors ---- */

static const char *dir_name(unsigned dir)
{
	return dir == DPSEC__DIR__DIR_OUT ? "out" : "in";
}

static void fmt_key(const struct spd_key *k, char *buf, size_t len)
{
	char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
	int af = k->family == 6 ? AF_INET6 : AF_INET;
	size_t o;

	inet_ntop(af, k->src, s, sizeof(s));
	inet_ntop(af, k->dst, d, sizeof(d));
	o = (size_t)snprintf(buf, len, "src %s/%u dst %s/%u", s, k->src_len, d, k->dst_len);
	if (k->proto && o < len)
		o += (size_t)snprintf(buf + o, len - o, " proto %u", k->proto);
	if ((k->sport_lo != 0 || k->sport_hi != UINT16_MAX) && o < len)
		o += (size_t)snprintf(buf + o, len - o, " sport %u-%u", k->sport_lo, k->sport_hi);
	if ((k->dport_lo != 0 || k->dport_hi != UINT16_MAX) && o < len)
		o += (size_t)snprintf(buf + o, len - o, " dport %u-%u", k->dport_lo, k->dport_hi);
	if (o < len)
		snprintf(buf + o, len - o, " dir %s", dir_name(k->dir));
}

static int prefix_get(const Dpsec__Prefix *p, const char *what, uint8_t addr[16], uint8_t *plen,
		      uint8_t *family, char *err, size_t errlen)
{
	unsigned i, bits;

	if (p == NULL || (p->addr.len != 4 && p->addr.len != 16)) {
		snprintf(err, errlen, "policy %s must be an IPv4 or IPv6 prefix", what);
		return -EINVAL;
	}
	bits = p->addr.len * 8;
	if (p->len > bits) {
		snprintf(err, errlen, "policy %s prefix length %u exceeds %u", what, p->len, bits);
		return -EINVAL;
	}
	*family = p->addr.len == 4 ? 4 : 6;
	*plen = (uint8_t)p->len;
	memset(addr, 0, 16);
	memcpy(addr, p->addr.data, p->addr.len);
	/* host bits would make "10.1.0.1/24" and "10.1.0.0/24" two policies for one selector */
	for (i = 0; i < 16; i++) {
		if (i * 8 >= p->len)
			addr[i] = 0;
		else if (i * 8 + 8 > p->len)
			addr[i] &= (uint8_t)(0xff << (8 - (p->len - i * 8)));
	}
	return 0;
}

static int range_get(bool has_lo, uint32_t lo, bool has_hi, uint32_t hi, const char *what,
		     uint16_t *out_lo, uint16_t *out_hi, char *err, size_t errlen)
{
	if (!has_lo && !has_hi) {
		*out_lo = 0;
		*out_hi = UINT16_MAX;
		return 0;
	}
	if (!has_lo)
		lo = hi;
	if (!has_hi)
		hi = lo;
	if (lo > hi || hi > UINT16_MAX) {
		snprintf(err, errlen, "policy %s range %u-%u is invalid", what, lo, hi);
		return -EINVAL;
	}
	*out_lo = (uint16_t)lo;
	*out_hi = (uint16_t)hi;
	return 0;
}

static int key_get(const Dpsec__Selector *s, Dpsec__Dir dir, struct spd_key *k, char *err,
		   size_t errlen)
{
	uint8_t f2;
	int rc;

	memset(k, 0, sizeof(*k));
	if (s == NULL) {
		snprintf(err, errlen, "policy has no selector");
		return -EINVAL;
	}
	if (dir != DPSEC__DIR__DIR_IN && dir != DPSEC__DIR__DIR_OUT) {
		snprintf(err, errlen, "policy dir %d is invalid", (int)dir);
		return -EINVAL;
	}
	k->dir = (uint8_t)dir;
	rc = prefix_get(s->src, "src", k->src, &k->src_len, &k->family, err, errlen);
	if (rc == 0)
		rc = prefix_get(s->dst, "dst", k->dst, &k->dst_len, &f2, err, errlen);
	if (rc)
		return rc;
	if (f2 != k->family) {
		snprintf(err, errlen, "policy src and dst are of different address families");
		return -EINVAL;
	}
	if (s->has_proto && s->proto > UINT8_MAX) {
		snprintf(err, errlen, "policy proto %u is invalid", s->proto);
		return -EINVAL;
	}
	k->proto = s->has_proto ? (uint8_t)s->proto : 0;
	rc = range_get(s->has_sport_lo, s->sport_lo, s->has_sport_hi, s->sport_hi, "sport",
		       &k->sport_lo, &k->sport_hi, err, errlen);
	if (rc == 0)
		rc = range_get(s->has_dport_lo, s->dport_lo, s->has_dport_hi, s->dport_hi, "dport",
			       &k->dport_lo, &k->dport_hi, err, errlen);
	return rc;
}

static uint32_t index_find(const struct spd_key *k)
{
	void *data;

	if (rte_hash_lookup_data(spd.index, k, &data) < 0)
		return NO_SLOT;
	return (uint32_t)(uintptr_t)data;
}

/* ---- control thread: slots ---- */

static void pending_mark(uint32_t s)
{
	if (!spd.ctl[s].pending) {
		spd.ctl[s].pending = true;
		spd.pending[spd.npending++] = s;
	}
}

static uint32_t slot_alloc(void)
{
	uint32_t s;

	if (spd.nfree == 0)
		return NO_SLOT;
	s = spd.free_slots[--spd.nfree];
	/* a slot freed and reused within one batch is already on the pending list */
	spd.ctl[s] = (struct slot_ctl){
	    .state = SLOT_STAGED, .pending = spd.ctl[s].pending, .replaces = NO_SLOT};
	pending_mark(s);
	return s;
}

/* Only for slots no published context holds (never published, or after the grace period). */
static void slot_release(uint32_t s)
{
	unsigned w;

	memset(&spd.tab[s], 0, sizeof(spd.tab[s]));
	for (w = 0; w < SPD_MAX_WORKERS; w++)
		memset(&spd.wstat[w][s], 0, sizeof(spd.wstat[w][s]));
	spd.ctl[s].state = SLOT_FREE;
	spd.ctl[s].replaces = NO_SLOT;
	spd.free_slots[spd.nfree++] = s;
}

static void slot_fill(uint32_t s, const struct spd_key *k, const Dpsec__PolicyAdd *p)
{
	struct spd_policy *r = &spd.tab[s];

	memset(r, 0, sizeof(*r));
	r->action = (uint8_t)p->action;
	r->dir = k->dir;
	r->family = k->family;
	r->proto = k->proto;
	r->src_len = k->src_len;
	r->dst_len = k->dst_len;
	r->sport_lo = k->sport_lo;
	r->sport_hi = k->sport_hi;
	r->dport_lo = k->dport_lo;
	r->dport_hi = k->dport_hi;
	memcpy(r->src, k->src, 16);
	memcpy(r->dst, k->dst, 16);
	r->priority = p->has_priority ? p->priority : SPD_DEFAULT_PRIORITY;
	if (p->action == DPSEC__ACTION__ACT_PROTECT) {
		r->spi = p->spi;
		if (p->has_sa_dst) {
			r->sa_len = (uint8_t)p->sa_dst.len;
			memcpy(r->sa_dst, p->sa_dst.data, p->sa_dst.len);
		}
		if (spd.resolve)
			r->sa =
			    spd.resolve(r->dir, r->spi, r->sa_len ? r->sa_dst : NULL, r->sa_len);
	}
}

static struct spd_key *key_of(uint32_t s, struct spd_key *k)
{
	const struct spd_policy *r = &spd.tab[s];

	memset(k, 0, sizeof(*k));
	k->dir = r->dir;
	k->family = r->family;
	k->proto = r->proto;
	k->src_len = r->src_len;
	k->dst_len = r->dst_len;
	k->sport_lo = r->sport_lo;
	k->sport_hi = r->sport_hi;
	k->dport_lo = r->dport_lo;
	k->dport_hi = r->dport_hi;
	memcpy(k->src, r->src, 16);
	memcpy(k->dst, r->dst, 16);
	return k;
}

static void dirty_mark(const struct spd_key *k)
{
	spd.dirty[k->dir][k->family == 6] = true;
}

/* ---- control thread: building contexts ---- */

static unsigned port_width(const struct spd_policy *r)
{
	return (unsigned)(r->sport_hi - r->sport_lo) + (unsigned)(r->dport_hi - r->dport_lo);
}

/* Match order: negative if slot a must win over slot b. */
static int match_cmp(uint32_t a, uint32_t b)
{
	const struct spd_policy *ra = &spd.tab[a], *rb = &spd.tab[b];
	unsigned la = ra->src_len + ra->dst_len, lb = rb->src_len + rb->dst_len;

	if (ra->priority != rb->priority)
		return ra->priority < rb->priority ? -1 : 1;
	if (la != lb)
		return la > lb ? -1 : 1;
	if ((ra->proto != 0) != (rb->proto != 0))
		return ra->proto != 0 ? -1 : 1;
	if (port_width(ra) != port_width(rb))
		return port_width(ra) < port_width(rb) ? -1 : 1;
	if (spd.ctl[a].seq != spd.ctl[b].seq)
		return spd.ctl[a].seq < spd.ctl[b].seq ? -1 : 1;
	return 0;
}

static int match_qcmp(const void *a, const void *b)
{
	return match_cmp(*(const uint32_t *)a, *(const uint32_t *)b);
}

static void rule_common(struct rte_acl_rule_data *d, uint32_t slot, uint32_t prio)
{
	d->category_mask = 1;
	d->priority = (int32_t)prio;
	d->userdata = slot + 1;
}

static void rule4(struct spd_rule4 *r, uint32_t s, uint32_t prio)
{
	const struct spd_policy *p = &spd.tab[s];
	uint32_t a;

	memset(r, 0, sizeof(*r));
	rule_common(&r->data, s, prio);
	r->field[F4_PROTO].value.u8 = p->proto;
	r->field[F4_PROTO].mask_range.u8 = p->proto ? 0xff : 0;
	memcpy(&a, p->src, 4);
	r->field[F4_SRC].value.u32 = ntohl(a);
	r->field[F4_SRC].mask_range.u32 = p->src_len;
	memcpy(&a, p->dst, 4);
	r->field[F4_DST].value.u32 = ntohl(a);
	r->field[F4_DST].mask_range.u32 = p->dst_len;
	r->field[F4_SPORT].value.u16 = p->sport_lo;
	r->field[F4_SPORT].mask_range.u16 = p->sport_hi;
	r->field[F4_DPORT].value.u16 = p->dport_lo;
	r->field[F4_DPORT].mask_range.u16 = p->dport_hi;
}

static void addr6_fields(struct rte_acl_field *f, const uint8_t addr[16], unsigned plen)
{
	unsigned i;
	uint32_t a;

	for (i = 0; i < 4; i++) {
		memcpy(&a, addr + 4 * i, 4);
		f[i].value.u32 = ntohl(a);
		f[i].mask_range.u32 = plen > 32 * i ? RTE_MIN(plen - 32 * i, 32u) : 0;
	}
}

static void rule6(struct spd_rule6 *r, uint32_t s, uint32_t prio)
{
	const struct spd_policy *p = &spd.tab[s];

	memset(r, 0, sizeof(*r));
	rule_common(&r->data, s, prio);
	r->field[F6_PROTO].value.u8 = p->proto;
	r->field[F6_PROTO].mask_range.u8 = p->proto ? 0xff : 0;
	addr6_fields(&r->field[F6_SRC0], p->src, p->src_len);
	addr6_fields(&r->field[F6_DST0], p->dst, p->dst_len);
	r->field[F6_SPORT].value.u16 = p->sport_lo;
	r->field[F6_SPORT].mask_range.u16 = p->sport_hi;
	r->field[F6_DPORT].value.u16 = p->dport_lo;
	r->field[F6_DPORT].mask_range.u16 = p->dport_hi;
}

/* Build the context the next commit publishes for one direction and family (NULL if empty). */
static int build(unsigned dir, bool v6, struct rte_acl_ctx **out, char *err, size_t errlen)
{
	size_t rsz = v6 ? sizeof(struct spd_rule6) : sizeof(struct spd_rule4);
	uint8_t family = v6 ? 6 : 4;
	struct rte_acl_ctx *ctx = NULL;
	char name[RTE_ACL_NAMESIZE];
	uint32_t *sl = NULL, n = 0, s, i;
	uint8_t *rules = NULL;
	int rc = -ENOMEM;

	*out = NULL;
	sl = malloc(sizeof(*sl) * SPD_MAX_POLICIES);
	if (sl == NULL)
		goto fail;
	for (s = 0; s < SPD_MAX_POLICIES; s++) {
		uint8_t st = spd.ctl[s].state;

		if ((st == SLOT_LIVE || st == SLOT_STAGED) && spd.tab[s].dir == dir &&
		    spd.tab[s].family == family)
			sl[n++] = s;
	}
	if (n == 0) {
		free(sl);
		return 0;
	}
	/* rte_acl has no tie break of its own: give each rule a distinct priority by rank */
	qsort(sl, n, sizeof(*sl), match_qcmp);
	rules = malloc(rsz * n);
	if (rules == NULL)
		goto fail;
	for (i = 0; i < n; i++) {
		if (v6)
			rule6((struct spd_rule6 *)(rules + rsz * i), sl[i], n - i);
		else
			rule4((struct spd_rule4 *)(rules + rsz * i), sl[i], n - i);
	}
	/* rte_acl_create() returns an existing context of the same name: never reuse one */
	snprintf(name, sizeof(name), "dpsec_spd_%s%u_%" PRIu32, dir_name(dir), family, spd.gen++);
	ctx = rte_acl_create(&(struct rte_acl_param){.name = name,
						     .socket_id = SOCKET_ID_ANY,
						     .rule_size = (uint32_t)rsz,
						     .max_rule_num = n});
	if (ctx == NULL) {
		rc = -rte_errno;
		snprintf(err, errlen, "spd: rte_acl_create: %s", rte_strerror(rte_errno));
		goto fail;
	}
	rc = rte_acl_add_rules(ctx, (const struct rte_acl_rule *)rules, n);
	if (rc == 0)
		rc = rte_acl_build(ctx, v6 ? &acl_cfg6 : &acl_cfg4);
	if (rc) {
		snprintf(err, errlen, "spd: building %u %s IPv%u rules: %s", n, dir_name(dir),
			 family, strerror(-rc));
		goto fail;
	}
	spd.builds++;
	free(rules);
	free(sl);
	*out = ctx;
	return 0;
fail:
	if (rc == -ENOMEM && err[0] == 0)
		snprintf(err, errlen, "spd: out of memory");
	rte_acl_free(ctx);
	free(rules);
	free(sl);
	return rc ? rc : -ENOMEM;
}

/* Undo every staged change: the published state stays as it was. */
static void rollback(void)
{
	struct spd_key k;
	uint32_t i, s, r;

	for (i = 0; i < spd.npending; i++) {
		s = spd.pending[i];
		if (spd.ctl[s].state != SLOT_STAGED)
			continue;
		r = spd.ctl[s].replaces;
		if (r != NO_SLOT) {
			spd.ctl[r].state = SLOT_LIVE;
			/* the replacement owns the key now; hand it back */
			(void)rte_hash_add_key_data(spd.index, key_of(r, &k), (void *)(uintptr_t)r);
		} else {
			rte_hash_del_key(spd.index, key_of(s, &k));
		}
		slot_release(s);
	}
	for (i = 0; i < spd.npending; i++) {
		s = spd.pending[i];
		spd.ctl[s].pending = false;
		if (spd.ctl[s].state != SLOT_DYING)
			continue;
		spd.ctl[s].state = SLOT_LIVE;
		(void)rte_hash_add_key_data(spd.index, key_of(s, &k), (void *)(uintptr_t)s);
	}
	spd.npending = 0;
	memset(spd.dirty, 0, sizeof(spd.dirty));
}

/* Inherit the counters of the slot @s replaces; only after the grace period, when they are final.
 */
static void counters_inherit(uint32_t s)
{
	uint32_t r = spd.ctl[s].replaces;
	unsigned w;

	if (r == NO_SLOT)
		return;
	spd.ctl[s].packets_base = spd.ctl[r].packets_base;
	spd.ctl[s].last_use_base = spd.ctl[r].last_use_base;
	for (w = 0; w < SPD_MAX_WORKERS; w++) {
		spd.ctl[s].packets_base += spd.wstat[w][r].packets;
		spd.ctl[s].last_use_base =
		    RTE_MAX(spd.ctl[s].last_use_base, spd.wstat[w][r].last_use);
	}
	spd.ctl[s].replaces = NO_SLOT;
}

static int commit(char *err, size_t errlen)
{
	struct rte_acl_ctx *next[2][2] = {{NULL}}, *old[2][2] = {{NULL}};
	bool published = false;
	unsigned d, f;
	uint32_t i, s;
	int rc;

	for (d = 0; d < 2; d++) {
		for (f = 0; f < 2; f++) {
			if (!spd.dirty[d][f])
				continue;
			rc = build(d, f, &next[d][f], err, errlen);
			if (rc == 0)
				continue;
			for (d = 0; d < 2; d++)
				for (f = 0; f < 2; f++)
					rte_acl_free(next[d][f]);
			rollback();
			return rc;
		}
	}
	/* make: the new contexts go live ... */
	for (d = 0; d < 2; d++) {
		for (f = 0; f < 2; f++) {
			if (!spd.dirty[d][f])
				continue;
			old[d][f] = spd.acl[d][f];
			__atomic_store_n(&spd.acl[d][f], next[d][f], __ATOMIC_RELEASE);
			published = true;
		}
	}
	/* cached results of the old contexts stop counting (after the contexts: see classify) */
	if (published)
		flow_caches_expire();
	/* ... before break: no worker can still hold an old context or a dying slot */
	if (published)
		rte_rcu_qsbr_synchronize(spd.qs, RTE_QSBR_THRID_INVALID);
	for (d = 0; d < 2; d++)
		for (f = 0; f < 2; f++)
			rte_acl_free(old[d][f]);
	for (i = 0; i < spd.npending; i++) {
		s = spd.pending[i];
		if (spd.ctl[s].state == SLOT_STAGED) {
			counters_inherit(s);
			spd.ctl[s].state = SLOT_LIVE;
		}
	}
	for (i = 0; i < spd.npending; i++) {
		s = spd.pending[i];
		spd.ctl[s].pending = false;
		if (spd.ctl[s].state == SLOT_DYING)
			slot_release(s);
	}
	spd.npending = 0;
	memset(spd.dirty, 0, sizeof(spd.dirty));
	return 0;
}

/* ---- control thread: API ---- */

void spd_begin(void)
{
	spd.batch = true;
}

int spd_commit(char *err, size_t errlen)
{
	if (errlen)
		err[0] = 0;
	spd.batch = false;
	return commit(err, errlen);
}

static int changed(char *err, size_t errlen)
{
	return spd.batch ? 0 : commit(err, errlen);
}

int spd_add(const Dpsec__PolicyAdd *p, char *err, size_t errlen)
{
	char sel[256];
	struct spd_key k;
	uint32_t e, s;
	int rc;

	if (errlen)
		err[0] = 0;
	if (p == NULL) {
		snprintf(err, errlen, "policy add without a policy");
		return -EINVAL;
	}
	rc = key_get(p->sel, p->dir, &k, err, errlen);
	if (rc)
		return rc;
	fmt_key(&k, sel, sizeof(sel));
	if ((unsigned)p->action > DPSEC__ACTION__ACT_TRAP) {
		snprintf(err, errlen, "policy %s: action %d is invalid", sel, (int)p->action);
		return -EINVAL;
	}
	if (p->action == DPSEC__ACTION__ACT_PROTECT && (!p->has_spi || p->spi == 0)) {
		snprintf(err, errlen, "policy %s: action protect needs an spi", sel);
		return -EINVAL;
	}
	if (p->has_sa_dst && p->sa_dst.len != 4 && p->sa_dst.len != 16) {
		snprintf(err, errlen, "policy %s: sa-dst must be an IPv4 or IPv6 address", sel);
		return -EINVAL;
	}
	if (p->owner != NULL && strlen(p->owner) >= SPD_OWNER_MAX) {
		snprintf(err, errlen, "policy %s: owner longer than %d characters", sel,
			 SPD_OWNER_MAX - 1);
		return -EINVAL;
	}
	e = index_find(&k);
	if (e != NO_SLOT && !(p->has_replace && p->replace)) {
		snprintf(err, errlen, "policy %s exists", sel);
		return -EEXIST;
	}
	s = slot_alloc();
	if (s == NO_SLOT) {
		snprintf(err, errlen, "policy %s: table full (%u policies)", sel, SPD_MAX_POLICIES);
		return -ENOSPC;
	}
	slot_fill(s, &k, p);
	snprintf(spd.ctl[s].owner, sizeof(spd.ctl[s].owner), "%s", p->owner ? p->owner : "");
	rc = rte_hash_add_key_data(spd.index, &k, (void *)(uintptr_t)s);
	if (rc < 0) {
		slot_release(s);
		snprintf(err, errlen, "policy %s: index full", sel);
		return -ENOSPC;
	}
	if (e == NO_SLOT) {
		spd.ctl[s].seq = spd.seq++;
	} else if (spd.ctl[e].state == SLOT_STAGED) {
		/* never published: the newer staged version simply takes its place */
		spd.ctl[s].seq = spd.ctl[e].seq;
		spd.ctl[s].replaces = spd.ctl[e].replaces;
		slot_release(e);
	} else {
		spd.ctl[s].seq = spd.ctl[e].seq;
		spd.ctl[s].replaces = e;
		spd.ctl[e].state = SLOT_DYING;
		pending_mark(e);
	}
	dirty_mark(&k);
	return changed(err, errlen);
}

/* The slot of the policy @p names, or -errno with the reason in @err. */
static int slot_of(const Dpsec__PolicyDel *p, const char *what, struct spd_key *k, uint32_t *e,
		   char *err, size_t errlen)
{
	char sel[256];
	int rc;

	if (errlen)
		err[0] = 0;
	if (p == NULL) {
		snprintf(err, errlen, "policy %s without a selector", what);
		return -EINVAL;
	}
	rc = key_get(p->sel, p->dir, k, err, errlen);
	if (rc)
		return rc;
	*e = index_find(k);
	if (*e == NO_SLOT) {
		fmt_key(k, sel, sizeof(sel));
		snprintf(err, errlen, "policy %s not found", sel);
		return -ENOENT;
	}
	return 0;
}

int spd_del(const Dpsec__PolicyDel *p, char *err, size_t errlen)
{
	struct spd_key k;
	uint32_t e;
	int rc = slot_of(p, "del", &k, &e, err, errlen);

	if (rc)
		return rc;
	rte_hash_del_key(spd.index, &k);
	if (spd.ctl[e].state == SLOT_STAGED) {
		/* a policy it replaces stays DYING and goes at commit too */
		slot_release(e);
	} else {
		spd.ctl[e].state = SLOT_DYING;
		pending_mark(e);
	}
	dirty_mark(&k);
	return changed(err, errlen);
}

/* Only @owner's policies: the others (the operator's baseline) stay in force. */
static int flush_owner(const char *owner, char *err, size_t errlen)
{
	struct spd_key k;

	for (uint32_t s = 0; s < SPD_MAX_POLICIES; s++) {
		uint8_t st = spd.ctl[s].state;

		if ((st != SLOT_STAGED && st != SLOT_LIVE) || strcmp(spd.ctl[s].owner, owner) != 0)
			continue;
		key_of(s, &k);
		rte_hash_del_key(spd.index, &k);
		dirty_mark(&k);
		if (st == SLOT_STAGED) {
			slot_release(s);
		} else {
			spd.ctl[s].state = SLOT_DYING;
			pending_mark(s);
		}
	}
	return changed(err, errlen);
}

int spd_flush(const char *owner, char *err, size_t errlen)
{
	uint32_t s;

	if (errlen)
		err[0] = 0;
	if (owner != NULL && owner[0] != '\0')
		return flush_owner(owner, err, errlen);
	for (s = 0; s < SPD_MAX_POLICIES; s++) {
		if (spd.ctl[s].state == SLOT_STAGED) {
			slot_release(s);
		} else if (spd.ctl[s].state == SLOT_LIVE) {
			spd.ctl[s].state = SLOT_DYING;
			pending_mark(s);
		}
	}
	rte_hash_reset(spd.index);
	memset(spd.dirty, 1, sizeof(spd.dirty));
	/* empty tables need no rte_acl build, so this commit cannot fail */
	return changed(err, errlen);
}

/* Flow-cache entries hold the SA they were filled with: after a rebind none may count. */
static unsigned sa_rebound(unsigned n)
{
	if (n > 0)
		flow_caches_expire();
	return n;
}

unsigned spd_replace_sa(const void *old, void *sa)
{
	unsigned n = 0;

	for (uint32_t s = 0; s < SPD_MAX_POLICIES; s++) {
		struct spd_policy *r = &spd.tab[s];

		if (spd.ctl[s].state == SLOT_FREE || r->sa != old)
			continue;
		__atomic_store_n(&r->sa, sa, __ATOMIC_RELEASE);
		n++;
	}
	return sa_rebound(n);
}

unsigned spd_bind_sa(int dir, uint32_t spi, const uint8_t *sa_dst, size_t sa_len, void *sa)
{
	unsigned n = 0;
	uint32_t s;

	for (s = 0; s < SPD_MAX_POLICIES; s++) {
		struct spd_policy *r = &spd.tab[s];

		if (spd.ctl[s].state == SLOT_FREE || r->action != DPSEC__ACTION__ACT_PROTECT ||
		    r->spi != spi || r->dir != dir)
			continue;
		if (r->sa_len && (r->sa_len != sa_len || memcmp(r->sa_dst, sa_dst, sa_len)))
			continue;
		__atomic_store_n(&r->sa, sa, __ATOMIC_RELEASE);
		n++;
	}
	return sa_rebound(n);
}

void spd_set_sa_resolver(spd_sa_resolver_t fn)
{
	spd.resolve = fn;
}

uint64_t spd_build_count(void)
{
	return spd.builds;
}

/* ---- control thread: show ---- */

static Dpsec__Prefix *prefix_new(const uint8_t *addr, unsigned alen, unsigned plen)
{
	Dpsec__Prefix *p = malloc(sizeof(*p));

	if (p == NULL)
		return NULL;
	dpsec__prefix__init(p);
	p->len = plen;
	p->addr.data = malloc(alen);
	if (p->addr.data == NULL) {
		free(p);
		return NULL;
	}
	memcpy(p->addr.data, addr, alen);
	p->addr.len = alen;
	return p;
}

static uint64_t tsc_to_unix(uint64_t tsc)
{
	if (tsc == 0)
		return 0;
	if (tsc < spd.tsc0)
		return spd.unix0;
	return spd.unix0 + (tsc - spd.tsc0) / spd.hz;
}

static Dpsec__PolicyInfo *info_new(uint32_t s)
{
	const struct spd_policy *r = &spd.tab[s];
	unsigned alen = r->family == 6 ? 16 : 4, w;
	uint64_t packets = spd.ctl[s].packets_base, last = spd.ctl[s].last_use_base;
	Dpsec__PolicyInfo *i = malloc(sizeof(*i));
	Dpsec__PolicyAdd *a = malloc(sizeof(*a));
	Dpsec__Selector *sel = malloc(sizeof(*sel));

	if (i == NULL || a == NULL || sel == NULL) {
		free(i);
		free(a);
		free(sel);
		return NULL;
	}
	dpsec__policy_info__init(i);
	dpsec__policy_add__init(a);
	dpsec__selector__init(sel);
	i->policy = a;
	a->sel = sel;
	sel->src = prefix_new(r->src, alen, r->src_len);
	sel->dst = prefix_new(r->dst, alen, r->dst_len);
	if (r->proto) {
		sel->has_proto = true;
		sel->proto = r->proto;
	}
	if (r->sport_lo != 0 || r->sport_hi != UINT16_MAX) {
		sel->has_sport_lo = sel->has_sport_hi = true;
		sel->sport_lo = r->sport_lo;
		sel->sport_hi = r->sport_hi;
	}
	if (r->dport_lo != 0 || r->dport_hi != UINT16_MAX) {
		sel->has_dport_lo = sel->has_dport_hi = true;
		sel->dport_lo = r->dport_lo;
		sel->dport_hi = r->dport_hi;
	}
	a->dir = r->dir;
	a->action = r->action;
	a->has_priority = true;
	a->priority = r->priority;
	if (r->action == DPSEC__ACTION__ACT_PROTECT) {
		a->has_spi = true;
		a->spi = r->spi;
	}
	if (spd.ctl[s].owner[0] != '\0')
		a->owner = strdup(spd.ctl[s].owner);
	if (r->sa_len) {
		a->sa_dst.data = malloc(r->sa_len);
		if (a->sa_dst.data) {
			memcpy(a->sa_dst.data, r->sa_dst, r->sa_len);
			a->sa_dst.len = r->sa_len;
			a->has_sa_dst = true;
		}
	}
	if (sel->src == NULL || sel->dst == NULL || (r->sa_len && !a->has_sa_dst)) {
		dpsec__policy_info__free_unpacked(i, NULL);
		return NULL;
	}
	for (w = 0; w < SPD_MAX_WORKERS; w++) {
		packets += __atomic_load_n(&spd.wstat[w][s].packets, __ATOMIC_RELAXED);
		last = RTE_MAX(last, __atomic_load_n(&spd.wstat[w][s].last_use, __ATOMIC_RELAXED));
	}
	i->has_packets = i->has_last_use = true;
	i->packets = packets;
	i->last_use = tsc_to_unix(last);
	return i;
}

/* `show policy` order: in before out, IPv4 before IPv6, then match order. */
static int show_qcmp(const void *pa, const void *pb)
{
	uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;

	if (spd.tab[a].dir != spd.tab[b].dir)
		return spd.tab[a].dir < spd.tab[b].dir ? -1 : 1;
	if (spd.tab[a].family != spd.tab[b].family)
		return spd.tab[a].family < spd.tab[b].family ? -1 : 1;
	return match_cmp(a, b);
}

size_t spd_dump(Dpsec__PolicyInfo ***out)
{
	uint32_t *sl, s, n = 0, i;
	size_t got = 0;

	*out = NULL;
	sl = malloc(sizeof(*sl) * SPD_MAX_POLICIES);
	if (sl == NULL)
		return 0;
	for (s = 0; s < SPD_MAX_POLICIES; s++)
		if (spd.ctl[s].state == SLOT_LIVE || spd.ctl[s].state == SLOT_STAGED)
			sl[n++] = s;
	qsort(sl, n, sizeof(*sl), show_qcmp);
	*out = n ? calloc(n, sizeof(**out)) : NULL;
	for (i = 0; *out && i < n; i++) {
		(*out)[got] = info_new(sl[i]);
		if ((*out)[got])
			got++;
	}
	free(sl);
	return got;
}

int spd_query(const Dpsec__PolicyDel *p, Dpsec__PolicyInfo **out, char *err, size_t errlen)
{
	struct spd_key k;
	uint32_t e;
	int rc;

	*out = NULL;
	rc = slot_of(p, "query", &k, &e, err, errlen);
	if (rc)
		return rc;
	*out = info_new(e);
	if (*out == NULL) {
		snprintf(err, errlen, "policy query: out of memory");
		return -ENOMEM;
	}
	return 0;
}

void spd_dump_free(Dpsec__PolicyInfo **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		dpsec__policy_info__free_unpacked(v[i], NULL);
	free(v);
}

/* ---- setup ---- */

int spd_init(struct rte_rcu_qsbr *qs, unsigned n_workers, char *err, size_t errlen)
{
	size_t wsz = sizeof(struct spd_wstat) * SPD_MAX_POLICIES;
	const struct rte_memzone *mz;
	struct rte_hash_parameters hp = {
	    .name = "dpsec_spd_index",
	    .entries = 2 * SPD_MAX_POLICIES, /* headroom: cuckoo buckets fill before N */
	    .key_len = sizeof(struct spd_key),
	    .hash_func = rte_jhash,
	    .socket_id = (int)rte_socket_id(),
	};
	uint32_t s;
	unsigned w;

	if (spd.tab != NULL) {
		snprintf(err, errlen, "spd: already initialised");
		return -EALREADY;
	}
	acl_configs();
	spd.qs = qs;
	spd.hz = rte_get_tsc_hz();
	spd.tsc0 = rte_rdtsc();
	spd.unix0 = (uint64_t)time(NULL);
	/* memzones, not rte_malloc: secondary processes find tables by their dpsec_ name */
	mz = rte_memzone_reserve_aligned("dpsec_spd_policies",
					 sizeof(struct spd_policy) * SPD_MAX_POLICIES,
					 SOCKET_ID_ANY, 0, RTE_CACHE_LINE_SIZE);
	if (mz == NULL)
		goto nomem;
	memset(mz->addr, 0, mz->len);
	spd.tab = mz->addr;
	/* one array per worker, each starting on its own cache line: no false sharing */
	wsz = RTE_ALIGN_CEIL(wsz, RTE_CACHE_LINE_SIZE);
	mz = rte_memzone_reserve_aligned("dpsec_spd_wstat", wsz * SPD_MAX_WORKERS, SOCKET_ID_ANY, 0,
					 RTE_CACHE_LINE_SIZE);
	if (mz == NULL)
		goto nomem;
	memset(mz->addr, 0, mz->len);
	for (w = 0; w < SPD_MAX_WORKERS; w++)
		spd.wstat[w] = (struct spd_wstat *)((uint8_t *)mz->addr + wsz * w);
	mz = rte_memzone_reserve_aligned("dpsec_spd_flows",
					 sizeof(struct flow_cache) * RTE_MAX(n_workers, 1u),
					 SOCKET_ID_ANY, 0, RTE_CACHE_LINE_SIZE);
	if (mz == NULL)
		goto nomem;
	memset(mz->addr, 0, mz->len);
	spd.flows = mz->addr;
	spd.n_flows = RTE_MIN(n_workers, (unsigned)SPD_MAX_WORKERS);
	spd.epoch = 1; /* a zeroed entry never matches */
	spd.ctl = calloc(SPD_MAX_POLICIES, sizeof(*spd.ctl));
	spd.free_slots = malloc(sizeof(uint32_t) * SPD_MAX_POLICIES);
	spd.pending = malloc(sizeof(uint32_t) * SPD_MAX_POLICIES);
	spd.index = rte_hash_create(&hp);
	if (spd.ctl == NULL || spd.free_slots == NULL || spd.pending == NULL || spd.index == NULL)
		goto nomem;
	/* lowest slots first, so a small SPD stays in few cache lines */
	for (s = 0; s < SPD_MAX_POLICIES; s++)
		spd.free_slots[s] = SPD_MAX_POLICIES - 1 - s;
	spd.nfree = SPD_MAX_POLICIES;
	for (s = 0; s < SPD_MAX_POLICIES; s++)
		spd.ctl[s].replaces = NO_SLOT;
	return 0;
nomem:
	snprintf(err, errlen, "spd: cannot allocate tables: %s", rte_strerror(rte_errno));
	spd_fini();
	return -ENOMEM;
}

/* Workers must be stopped. */
void spd_fini(void)
{
	unsigned d, f;

	for (d = 0; d < 2; d++)
		for (f = 0; f < 2; f++)
			rte_acl_free(spd.acl[d][f]);
	rte_hash_free(spd.index);
	rte_memzone_free(rte_memzone_lookup("dpsec_spd_policies"));
	rte_memzone_free(rte_memzone_lookup("dpsec_spd_wstat"));
	rte_memzone_free(rte_memzone_lookup("dpsec_spd_flows"));
	free(spd.ctl);
	free(spd.free_slots);
	free(spd.pending);
	memset(&spd, 0, sizeof(spd));
}
