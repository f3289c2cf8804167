/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Forwarding table: IPv4 rte_lpm (readers lock-free, tbl8 groups reclaimed
 * through rte_rcu_qsbr) and IPv6 rte_fib6 mapping a destination to a next
 * hop. rte_fib6 has no RCU hook in 22.11, so it is kept twice: a change goes
 * into the copy no worker reads, that copy is published, and after a grace
 * period the same change goes into the other one. Next hops are indices into
 * an array in hugepage memory: (port, gateway) or local.
 */
#ifndef DPSEC_FIB_H
#define DPSEC_FIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <rte_fib6.h>
#include <rte_hash.h>
#include <rte_lpm.h>
#include <rte_rcu_qsbr.h>

#include "dpsec.pb-c.h"

#define FIB_MAX_ROUTES	 65536
#define FIB_MAX_NEXTHOPS 4096

enum fib_nh_kind {
	FIB_NH_FREE = 0,
	FIB_NH_CONNECTED, /* next hop is the packet's own destination */
	FIB_NH_GATEWAY,
	FIB_NH_LOCAL, /* addressed to the gateway: punt to the port's TAP */
};

struct fib_nexthop {
	uint8_t kind;
	uint8_t family;
	uint16_t port;
	uint32_t refcnt; /* control thread only */
	uint8_t gw[16];
};

struct fib {
	struct rte_lpm *lpm4;
	struct rte_fib6 *fib6;	 /* the copy workers read; atomic */
	struct rte_fib6 *v6[2];	 /* both copies */
	struct rte_hash *local6; /* local IPv6 address -> port + 1 */
	struct fib_nexthop *nh;	 /* FIB_MAX_NEXTHOPS entries */
};

extern struct fib fib;

int fib_init(struct rte_rcu_qsbr *qs, char *err, size_t errlen);

/* Mirror sink (netlink): a kernel route on one of our TAPs appeared or went.
 * @via NULL means a connected route. */
void fib_update(bool add, const uint8_t *dst, size_t alen, unsigned plen, const uint8_t *via,
		uint16_t port, uint32_t metric);
/* Mirror sink: local address (host route to the TAP). */
void fib_local(bool add, const uint8_t *addr, size_t alen, uint16_t port);

/* For `show route`: malloc'd RouteInfo array. */
size_t fib_dump(Dpsec__RouteInfo ***out);
/* Routes known, local ones included. */
size_t fib_dump_count(void);

#endif
