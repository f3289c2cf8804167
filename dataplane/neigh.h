/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Neighbour table: (port, address) -> MAC in a lock-free rte_hash whose data
 * word is the MAC itself, so an update is one atomic store and readers need
 * no grace period for the value.
 */
#ifndef DPSEC_NEIGH_H
#define DPSEC_NEIGH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <rte_ether.h>
#include <rte_hash.h>
#include <rte_rcu_qsbr.h>

#include "dpsec.pb-c.h"

#define NEIGH_MAX 65536

/*
 * 8-byte aligned (rte_hash_crc reads 8 bytes at a time) and 32 bytes long
 * (rte_hash compares keys of that size with SIMD instead of memcmp).
 */
struct neigh_key {
	uint8_t addr[16]; /* IPv4 in the first 4 bytes, rest zero */
	uint16_t port;
	uint8_t family;
	uint8_t pad[13];
} __rte_aligned(8);

extern struct rte_hash *neigh_table;

int neigh_init(struct rte_rcu_qsbr *qs, char *err, size_t errlen);
/* Mirror sink (netlink). @mac NULL or @add false removes the entry. */
void neigh_update(bool add, uint16_t port, const uint8_t *addr, size_t alen, const uint8_t mac[6],
		  const char *state);
size_t neigh_dump(Dpsec__NeighInfo ***out);

static inline void neigh_key4(struct neigh_key *k, uint16_t port, uint32_t addr_be)
{
	*k = (struct neigh_key){.port = port, .family = 4};
	__builtin_memcpy(k->addr, &addr_be, 4);
}

static inline void neigh_key6(struct neigh_key *k, uint16_t port, const uint8_t addr[16])
{
	*k = (struct neigh_key){.port = port, .family = 6};
	__builtin_memcpy(k->addr, addr, 16);
}

/* Worker side: the MAC from a data word, false if the entry is not usable. */
static inline bool neigh_mac(uint64_t v, struct rte_ether_addr *mac)
{
	if (!(v >> 63))
		return false;
	for (int i = 0; i < 6; i++)
		mac->addr_bytes[i] = v >> (8 * i);
	return true;
}

#endif
