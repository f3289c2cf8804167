/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Upcalls: what workers need the control thread to do (resolve a next hop,
 * raise an ACQUIRE or MAPPING event). Workers never write tables or talk to
 * the channel; they enqueue a small record on a multi-producer ring that the
 * control thread drains. Each kind is rate-limited at the source.
 */
#ifndef DPSEC_UPCALL_H
#define DPSEC_UPCALL_H

#include <stdint.h>

#include <rte_cycles.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#include "worker.h"

#define UPCALL_RING_SIZE 4096

struct chan_server;
struct spd_policy;

enum upcall_type {
	UPCALL_RESOLVE = 1, /* addr on port */
	UPCALL_ACQUIRE,	    /* policy, packet addr -> addr2, proto */
	UPCALL_MAPPING,	    /* SA (spi, addr2) authenticated from addr:sport */
};

struct upcall {
	uint8_t type;
	uint8_t family;
	uint16_t port;
	uint8_t proto;
	uint8_t pad;
	uint16_t sport;
	uint32_t spi;
	uint32_t pad2;
	const struct spd_policy *policy;
	uint8_t addr[16];
	uint8_t addr2[16];
};

extern struct rte_ring *upcall_ring;

int upcall_init(char *err, size_t errlen);
/* Control thread: act on everything queued; events go to @srv's subscribers. */
void upcall_drain(struct chan_server *srv);

/* True when @key was not sent from this worker in the last @hz_div-th of a second. */
static inline bool upcall_fresh(struct worker_upcall_cache *c, uint64_t key, uint64_t hz_div)
{
	unsigned slot = (unsigned)((key * 0x9e3779b97f4a7c15ull) >> 58); /* 64 slots */
	uint64_t now = rte_get_timer_cycles();

	if (c->key[slot] == key && now - c->tsc[slot] < rte_get_timer_hz() / hz_div)
		return false;
	c->key[slot] = key;
	c->tsc[slot] = now;
	return true;
}

static inline void upcall_send(struct worker *w, struct upcall *u)
{
	if (rte_ring_mp_enqueue_elem(upcall_ring, u, sizeof(*u)) != 0)
		w->gstats->upcall_full++;
}

/* Ask for the resolution of an IPv4 next hop, at most every 100 ms per worker. */
static inline void upcall_resolve4(struct worker *w, uint16_t port, uint32_t ip_be)
{
	struct upcall u = {.type = UPCALL_RESOLVE, .family = 4, .port = port};

	if (!upcall_fresh(&w->resolve, (uint64_t)ip_be << 16 | port, 10))
		return;
	__builtin_memcpy(u.addr, &ip_be, 4);
	upcall_send(w, &u);
}

/* The same for an IPv6 next hop. */
static inline void upcall_resolve6(struct worker *w, uint16_t port, const uint8_t ip[16])
{
	struct upcall u = {.type = UPCALL_RESOLVE, .family = 6, .port = port};
	uint64_t a, b;

	__builtin_memcpy(&a, ip, 8);
	__builtin_memcpy(&b, ip + 8, 8);
	if (!upcall_fresh(&w->resolve, (a ^ (b * 0x9e3779b97f4a7c15ull)) + port, 10))
		return;
	__builtin_memcpy(u.addr, ip, 16);
	upcall_send(w, &u);
}

/* A trap (or unbound protect) policy was hit; the caller rate-limits per policy. */
static inline void upcall_acquire4(struct worker *w, const struct spd_policy *p, uint32_t src_be,
				   uint32_t dst_be, uint8_t proto)
{
	struct upcall u = {.type = UPCALL_ACQUIRE, .family = 4, .proto = proto, .policy = p};

	__builtin_memcpy(u.addr, &src_be, 4);
	__builtin_memcpy(u.addr2, &dst_be, 4);
	upcall_send(w, &u);
}

static inline void upcall_acquire6(struct worker *w, const struct spd_policy *p,
				   const uint8_t src[16], const uint8_t dst[16], uint8_t proto)
{
	struct upcall u = {.type = UPCALL_ACQUIRE, .family = 6, .proto = proto, .policy = p};

	__builtin_memcpy(u.addr, src, 16);
	__builtin_memcpy(u.addr2, dst, 16);
	upcall_send(w, &u);
}

/* An ESP-in-UDP packet authenticated from a new address or port, at most once a second. */
static inline void upcall_mapping4(struct worker *w, uint32_t spi_be, uint32_t sa_dst_be,
				   uint32_t src_be, uint16_t sport_be)
{
	struct upcall u = {.type = UPCALL_MAPPING, .family = 4, .spi = spi_be, .sport = sport_be};

	/* Keyed by the whole new source and the SA; the slot keeps the full key. */
	if (!upcall_fresh(&w->mapping, ((uint64_t)src_be << 32 | (uint64_t)sport_be << 16) ^ spi_be,
			  1))
		return;
	__builtin_memcpy(u.addr, &src_be, 4);
	__builtin_memcpy(u.addr2, &sa_dst_be, 4);
	upcall_send(w, &u);
}

#endif
