/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The control thread keeps every mirrored route (several may share a prefix
 * with different metrics) and installs the best one per prefix into the
 * lock-free lookup structures the workers read.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_jhash.h>
#include <rte_malloc.h>

#include "fib.h"
#include "port.h"

#define FIB_TBL8  4096
#define FIB6_TBL8 8192 /* per copy; 1 KiB each */

struct fib fib;

struct route {
	uint8_t family; /* 4 or 6 */
	uint8_t plen;
	bool local;
	bool has_via;
	bool installed;
	uint16_t port;
	uint32_t metric;
	uint32_t nh; /* next hop while installed */
	uint8_t dst[16];
	uint8_t via[16];
};

static struct route *routes;
static size_t n_routes, cap_routes;
static struct rte_rcu_qsbr *fib_qs;

int fib_init(struct rte_rcu_qsbr *qs, char *err, size_t errlen)
{
	struct rte_lpm_config cfg = {
	    .max_rules = FIB_MAX_ROUTES,
	    .number_tbl8s = FIB_TBL8,
	};
	struct rte_lpm_rcu_config rcu = {.v = qs, .mode = RTE_LPM_QSBR_MODE_DQ};
	struct rte_hash_parameters hp = {
	    .name = "dpsec_local6",
	    .entries = 1024,
	    .key_len = 16,
	    .hash_func = rte_jhash,
	    .socket_id = SOCKET_ID_ANY,
	    .extra_flag = RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF,
	};
	struct rte_hash_rcu_config hrcu = {.v = qs, .mode = RTE_HASH_QSBR_MODE_DQ};

	struct rte_fib6_conf cfg6 = {
	    .type = RTE_FIB6_TRIE,
	    .default_nh = 0, /* next hop 0 is never used: no route */
	    .max_routes = FIB_MAX_ROUTES,
	    .trie = {.nh_sz = RTE_FIB6_TRIE_4B, .num_tbl8 = FIB6_TBL8},
	};

	fib_qs = qs;
	fib.lpm4 = rte_lpm_create("dpsec_fib4", SOCKET_ID_ANY, &cfg);
	fib.v6[0] = rte_fib6_create("dpsec_fib6_a", SOCKET_ID_ANY, &cfg6);
	fib.v6[1] = rte_fib6_create("dpsec_fib6_b", SOCKET_ID_ANY, &cfg6);
	fib.fib6 = fib.v6[0];
	fib.nh =
	    rte_zmalloc("dpsec_nexthops", sizeof(*fib.nh) * FIB_MAX_NEXTHOPS, RTE_CACHE_LINE_SIZE);
	fib.local6 = rte_hash_create(&hp);
	if (fib.lpm4 == NULL || fib.nh == NULL || fib.local6 == NULL || fib.v6[0] == NULL ||
	    fib.v6[1] == NULL) {
		snprintf(err, errlen, "cannot allocate the FIB: %s", rte_strerror(rte_errno));
		return -1;
	}
	if (rte_lpm_rcu_qsbr_add(fib.lpm4, &rcu) != 0 ||
	    rte_hash_rcu_qsbr_add(fib.local6, &hrcu) != 0) {
		snprintf(err, errlen, "cannot attach RCU to the FIB: %s", rte_strerror(rte_errno));
		return -1;
	}
	return 0;
}

static uint32_t nh_get(uint8_t kind, uint8_t family, uint16_t port, const uint8_t *gw)
{
	uint32_t free_slot = 0;

	/* Slot 0 is never used so a zeroed LPM result cannot alias a next hop. */
	for (uint32_t i = 1; i < FIB_MAX_NEXTHOPS; i++) {
		struct fib_nexthop *nh = &fib.nh[i];

		if (nh->kind == FIB_NH_FREE) {
			if (free_slot == 0)
				free_slot = i;
			continue;
		}
		if (nh->kind == kind && nh->family == family && nh->port == port &&
		    (kind != FIB_NH_GATEWAY || memcmp(nh->gw, gw, 16) == 0)) {
			nh->refcnt++;
			return i;
		}
	}
	if (free_slot == 0)
		return 0;
	struct fib_nexthop *nh = &fib.nh[free_slot];
	nh->family = family;
	nh->port = port;
	memset(nh->gw, 0, sizeof(nh->gw));
	if (gw != NULL)
		memcpy(nh->gw, gw, 16);
	nh->refcnt = 1;
	/* Publish the kind last: a reader that sees the index sees a whole entry. */
	__atomic_store_n(&nh->kind, kind, __ATOMIC_RELEASE);
	return free_slot;
}

static void nh_put(uint32_t i)
{
	if (i == 0 || --fib.nh[i].refcnt > 0)
		return;
	/* Readers may still hold the index from an LPM lookup: wait them out. */
	rte_rcu_qsbr_synchronize(fib_qs, RTE_QSBR_THRID_INVALID);
	fib.nh[i].kind = FIB_NH_FREE;
}

static bool same_prefix(const struct route *r, uint8_t family, const uint8_t *dst, unsigned plen)
{
	return r->family == family && r->plen == plen && memcmp(r->dst, dst, 16) == 0;
}

static struct route *best_route(uint8_t family, const uint8_t *dst, unsigned plen)
{
	struct route *best = NULL;

	for (size_t i = 0; i < n_routes; i++) {
		struct route *r = &routes[i];

		if (!same_prefix(r, family, dst, plen))
			continue;
		if (best == NULL || (r->local && !best->local) ||
		    (r->local == best->local && r->metric < best->metric))
			best = r;
	}
	return best;
}

static struct route *installed_route(uint8_t family, const uint8_t *dst, unsigned plen)
{
	for (size_t i = 0; i < n_routes; i++)
		if (routes[i].installed && same_prefix(&routes[i], family, dst, plen))
			return &routes[i];
	return NULL;
}

/*
 * One change to both IPv6 copies, never to the one workers read: the other
 * first, then it is published, then (readers gone) the old one.
 */
static void fib6_change(const uint8_t *dst, unsigned plen, uint32_t nh)
{
	struct rte_fib6 *spare = fib.fib6 == fib.v6[0] ? fib.v6[1] : fib.v6[0];
	struct rte_fib6 *live = fib.fib6;
	int rc;

	for (int pass = 0; pass < 2; pass++) {
		struct rte_fib6 *f = pass == 0 ? spare : live;

		rc = nh ? rte_fib6_add(f, dst, (uint8_t)plen, nh)
			: rte_fib6_delete(f, dst, (uint8_t)plen);
		if (rc != 0 && nh)
			RTE_LOG(ERR, USER1, "FIB: cannot install IPv6 route (table full?)\n");
		if (pass == 0) {
			__atomic_store_n(&fib.fib6, spare, __ATOMIC_RELEASE);
			rte_rcu_qsbr_synchronize(fib_qs, RTE_QSBR_THRID_INVALID);
		}
	}
}

static void lookup_install(const struct route *r, uint32_t nh)
{
	uint32_t ip;

	if (r->family == 6) {
		/* local addresses also in a hash: classify punts them without a route lookup */
		if (r->local && r->plen == 128)
			rte_hash_add_key_data(fib.local6, r->dst, (void *)(uintptr_t)(r->port + 1));
		fib6_change(r->dst, r->plen, nh);
		return;
	}
	memcpy(&ip, r->dst, 4);
	if (rte_lpm_add(fib.lpm4, rte_be_to_cpu_32(ip), r->plen, nh) != 0)
		RTE_LOG(ERR, USER1, "FIB: cannot install route (table full?)\n");
}

static void lookup_remove(uint8_t family, const uint8_t *dst, unsigned plen)
{
	uint32_t ip;

	if (family == 6) {
		if (plen == 128)
			rte_hash_del_key(fib.local6, dst);
		fib6_change(dst, plen, 0);
		return;
	}
	memcpy(&ip, dst, 4);
	rte_lpm_delete(fib.lpm4, rte_be_to_cpu_32(ip), plen);
}

/* Make the lookup structures reflect the best route left for one prefix. */
static void reinstall(uint8_t family, const uint8_t *dst, unsigned plen, uint32_t old_nh)
{
	struct route *best = best_route(family, dst, plen);
	uint32_t nh = 0;

	if (best != NULL) {
		uint8_t kind = best->local     ? FIB_NH_LOCAL
			       : best->has_via ? FIB_NH_GATEWAY
					       : FIB_NH_CONNECTED;

		nh = nh_get(kind, family, best->port, best->has_via ? best->via : NULL);
		if (nh == 0)
			RTE_LOG(ERR, USER1, "FIB: out of next hops\n");
	}
	if (nh != 0) {
		/* rte_lpm_add replaces in place: there is no window without a route. */
		lookup_install(best, nh);
		best->installed = true;
		best->nh = nh;
	} else {
		lookup_remove(family, dst, plen);
	}
	nh_put(old_nh);
}

static struct route *route_append(void)
{
	if (n_routes >= FIB_MAX_ROUTES)
		return NULL;
	if (n_routes == cap_routes) {
		size_t cap = cap_routes ? cap_routes * 2 : 64;
		struct route *nr = realloc(routes, cap * sizeof(*nr));

		if (nr == NULL)
			return NULL;
		routes = nr;
		cap_routes = cap;
	}
	return &routes[n_routes++];
}

static void route_change(bool add, bool local, const uint8_t *dst, size_t alen, unsigned plen,
			 const uint8_t *via, uint16_t port, uint32_t metric)
{
	uint8_t family = alen == 4 ? 4 : 6;
	uint8_t key[16] __rte_aligned(8) = {0}; /* hashed a word at a time (local6) */
	struct route *r = NULL, *old;
	uint32_t old_nh = 0;

	if ((alen != 4 && alen != 16) || plen > alen * 8 || port >= PORT_MAX)
		return;
	memcpy(key, dst, alen);
	for (size_t i = 0; i < n_routes; i++)
		if (same_prefix(&routes[i], family, key, plen) && routes[i].local == local &&
		    routes[i].metric == metric && routes[i].port == port) {
			r = &routes[i];
			break;
		}
	if (!add && r == NULL)
		return;
	old = installed_route(family, key, plen);
	if (old != NULL) {
		old_nh = old->nh;
		old->installed = false;
	}
	if (add) {
		if (r == NULL && (r = route_append()) == NULL) {
			RTE_LOG(ERR, USER1, "FIB: route table full\n");
			reinstall(family, key, plen, old_nh);
			return;
		}
		*r = (struct route){.family = family,
				    .plen = plen,
				    .local = local,
				    .has_via = via != NULL,
				    .port = port,
				    .metric = metric};
		memcpy(r->dst, key, 16);
		if (via != NULL)
			memcpy(r->via, via, alen);
	} else {
		*r = routes[--n_routes];
	}
	reinstall(family, key, plen, old_nh);
}

void fib_update(bool add, const uint8_t *dst, size_t alen, unsigned plen, const uint8_t *via,
		uint16_t port, uint32_t metric)
{
	route_change(add, false, dst, alen, plen, via, port, metric);
}

void fib_local(bool add, const uint8_t *addr, size_t alen, uint16_t port)
{
	route_change(add, true, addr, alen, alen * 8, NULL, port, 0);
}

size_t fib_dump(Dpsec__RouteInfo ***out)
{
	Dpsec__RouteInfo **a = calloc(n_routes ? n_routes : 1, sizeof(*a));
	size_t n = 0;

	if (a == NULL)
		return 0;
	for (size_t i = 0; i < n_routes; i++) {
		const struct route *r = &routes[i];
		size_t alen = r->family == 4 ? 4 : 16;
		Dpsec__RouteInfo *ri;
		Dpsec__Prefix *p;

		if (r->local)
			continue;
		ri = malloc(sizeof(*ri));
		p = malloc(sizeof(*p));
		if (ri == NULL || p == NULL) {
			free(ri);
			free(p);
			break;
		}
		dpsec__route_info__init(ri);
		dpsec__prefix__init(p);
		p->addr.data = malloc(alen);
		if (p->addr.data != NULL) {
			memcpy(p->addr.data, r->dst, alen);
			p->addr.len = alen;
		}
		p->len = r->plen;
		ri->dst = p;
		if (r->has_via) {
			ri->via.data = malloc(alen);
			if (ri->via.data != NULL) {
				memcpy(ri->via.data, r->via, alen);
				ri->via.len = alen;
				ri->has_via = true;
			}
		}
		ri->dev = strdup(ports[r->port].name);
		ri->has_metric = true;
		ri->metric = r->metric;
		a[n++] = ri;
	}
	*out = a;
	return n;
}

size_t fib_dump_count(void)
{
	return n_routes;
}
