/* SPDX-License-Identifier: BSD-3-Clause */
#include <stdlib.h>
#include <string.h>

#include <rte_errno.h>
#include <rte_hash_crc.h>

#include "neigh.h"
#include "port.h"

struct rte_hash *neigh_table;

/* The data word: bit 63 set for a usable entry, state in bits 48..55, MAC below. */
#define NEIGH_VALID (1ULL << 63)

static const char *const states[] = {"NONE",  "REACHABLE", "STALE", "DELAY",
				     "PROBE", "PERMANENT", "NOARP"};

int neigh_init(struct rte_rcu_qsbr *qs, char *err, size_t errlen)
{
	struct rte_hash_parameters hp = {
	    .name = "dpsec_neigh",
	    .entries = NEIGH_MAX,
	    .key_len = sizeof(struct neigh_key),
	    .hash_func = rte_hash_crc,
	    .socket_id = SOCKET_ID_ANY,
	    .extra_flag = RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF,
	};
	struct rte_hash_rcu_config rcu = {.v = qs, .mode = RTE_HASH_QSBR_MODE_DQ};

	neigh_table = rte_hash_create(&hp);
	if (neigh_table == NULL || rte_hash_rcu_qsbr_add(neigh_table, &rcu) != 0) {
		snprintf(err, errlen, "cannot create the neighbour table: %s",
			 rte_strerror(rte_errno));
		return -1;
	}
	return 0;
}

static void make_key(struct neigh_key *k, uint16_t port, const uint8_t *addr, size_t alen)
{
	memset(k, 0, sizeof(*k));
	memcpy(k->addr, addr, alen);
	k->port = port;
	k->family = alen == 4 ? 4 : 6;
}

void neigh_update(bool add, uint16_t port, const uint8_t *addr, size_t alen, const uint8_t mac[6],
		  const char *state)
{
	struct neigh_key k;
	uint64_t v = NEIGH_VALID;
	uint64_t st = 0;

	if ((alen != 4 && alen != 16) || port >= PORT_MAX)
		return;
	make_key(&k, port, addr, alen);
	if (!add || mac == NULL) {
		rte_hash_del_key(neigh_table, &k);
		return;
	}
	for (size_t i = 0; state != NULL && i < RTE_DIM(states); i++)
		if (strcmp(state, states[i]) == 0)
			st = i;
	for (int i = 0; i < 6; i++)
		v |= (uint64_t)mac[i] << (8 * i);
	v |= st << 48;
	/* In lock-free mode an existing key's data is replaced atomically. */
	if (rte_hash_add_key_data(neigh_table, &k, (void *)(uintptr_t)v) != 0)
		RTE_LOG(ERR, USER1, "neighbour table full\n");
}

size_t neigh_dump(Dpsec__NeighInfo ***out)
{
	int32_t count = rte_hash_count(neigh_table);
	Dpsec__NeighInfo **a = calloc(count > 0 ? count : 1, sizeof(*a));
	const void *key;
	void *data;
	uint32_t iter = 0;
	size_t n = 0;

	if (a == NULL)
		return 0;
	while (n < (size_t)count && rte_hash_iterate(neigh_table, &key, &data, &iter) >= 0) {
		const struct neigh_key *k = key;
		uint64_t v = (uintptr_t)data;
		size_t alen = k->family == 4 ? 4 : 16;
		Dpsec__NeighInfo *ni = malloc(sizeof(*ni));

		if (ni == NULL)
			break;
		dpsec__neigh_info__init(ni);
		ni->addr.data = malloc(alen);
		ni->lladdr.data = malloc(6);
		ni->dev = strdup(ports[k->port].name);
		ni->state = strdup(states[((v >> 48) & 0xff) % RTE_DIM(states)]);
		if (ni->addr.data != NULL) {
			memcpy(ni->addr.data, k->addr, alen);
			ni->addr.len = alen;
		}
		if (ni->lladdr.data != NULL) {
			for (int i = 0; i < 6; i++)
				ni->lladdr.data[i] = v >> (8 * i);
			ni->lladdr.len = 6;
			ni->has_lladdr = true;
		}
		a[n++] = ni;
	}
	*out = a;
	return n;
}
