/* SPDX-License-Identifier: BSD-3-Clause */
#include <stdio.h>

#include "netlink.h"
#include "port.h"
#include "upcall.h"

struct rte_ring *upcall_ring;

int upcall_init(char *err, size_t errlen)
{
	upcall_ring = rte_ring_create_elem("dpsec_upcall", sizeof(struct upcall),
					   UPCALL_RING_SIZE, SOCKET_ID_ANY, RING_F_SC_DEQ);
	if (upcall_ring == NULL) {
		snprintf(err, errlen, "cannot create the upcall ring: %s",
			 rte_strerror(rte_errno));
		return -1;
	}
	return 0;
}

void upcall_drain(void)
{
	struct upcall u[64];
	unsigned n;

	while ((n = rte_ring_sc_dequeue_burst_elem(upcall_ring, u, sizeof(u[0]), RTE_DIM(u),
						   NULL)) > 0) {
		for (unsigned i = 0; i < n; i++) {
			if (u[i].type != UPCALL_RESOLVE || u[i].port >= PORT_MAX ||
			    !ports[u[i].port].configured)
				continue;
			/* The kernel resolves; its answer comes back through the mirror. */
			nl_neigh_resolve(ports[u[i].port].tap_ifindex, u[i].addr,
					 u[i].family == 4 ? 4 : 16);
		}
	}
}
