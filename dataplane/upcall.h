/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Upcalls: what workers need the control thread to do (resolve a next hop,
 * later raise events). Workers never write tables; they enqueue a small
 * record on a multi-producer ring the control thread drains.
 */
#ifndef DPSEC_UPCALL_H
#define DPSEC_UPCALL_H

#include <stdint.h>

#include <rte_cycles.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#include "worker.h"

#define UPCALL_RING_SIZE 4096

enum upcall_type {
	UPCALL_RESOLVE = 1,
};

struct upcall {
	uint8_t type;
	uint8_t family;
	uint16_t port;
	uint8_t addr[16];
};

extern struct rte_ring *upcall_ring;

int upcall_init(char *err, size_t errlen);
/* Control thread: act on everything queued. */
void upcall_drain(void);

/* Ask for the resolution of an IPv4 next hop, at most every 100 ms per worker. */
static inline void upcall_resolve4(struct worker *w, uint16_t port, uint32_t ip_be)
{
	uint32_t key = ip_be ^ ((uint32_t)port << 24);
	unsigned slot = (key * 2654435761u) >> 26; /* 64 slots */
	uint64_t now = rte_rdtsc();
	struct upcall u = { .type = UPCALL_RESOLVE, .family = 4, .port = port };

	if (w->resolve_key[slot] == key && now - w->resolve_tsc[slot] < rte_get_tsc_hz() / 10)
		return;
	w->resolve_key[slot] = key;
	w->resolve_tsc[slot] = now;
	__builtin_memcpy(u.addr, &ip_be, 4);
	if (rte_ring_mp_enqueue_elem(upcall_ring, &u, sizeof(u)) != 0)
		w->gstats->upcall_full++;
}

#endif
