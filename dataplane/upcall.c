/* SPDX-License-Identifier: BSD-3-Clause */
#include <stdio.h>

#include <rte_byteorder.h>

#include "channel.h"
#include "netlink.h"
#include "port.h"
#include "sad.h"
#include "spd.h"
#include "upcall.h"

struct rte_ring *upcall_ring;

int upcall_init(char *err, size_t errlen)
{
	upcall_ring = rte_ring_create_elem("dpsec_upcall", sizeof(struct upcall), UPCALL_RING_SIZE,
					   SOCKET_ID_ANY, RING_F_SC_DEQ);
	if (upcall_ring == NULL) {
		snprintf(err, errlen, "cannot create the upcall ring: %s", rte_strerror(rte_errno));
		return -1;
	}
	return 0;
}

static ProtobufCBinaryData bin(const uint8_t *a, uint8_t family)
{
	return (ProtobufCBinaryData){.len = family == 4 ? 4 : 16, .data = (uint8_t *)a};
}

/*
 * The policy record may have been replaced since the worker saw it; its slot
 * is only reused after a grace period, so at worst the selector is the new
 * policy's, which is what IKE would negotiate for now anyway.
 */
static void acquire(struct chan_server *srv, const struct upcall *u)
{
	const struct spd_policy *p = u->policy;
	Dpsec__Prefix src = DPSEC__PREFIX__INIT, dst = DPSEC__PREFIX__INIT;
	Dpsec__Selector sel = DPSEC__SELECTOR__INIT;
	Dpsec__Acquire acq = DPSEC__ACQUIRE__INIT;
	Dpsec__Event ev = DPSEC__EVENT__INIT;

	src.addr = bin(p->src, p->family);
	src.len = p->src_len;
	dst.addr = bin(p->dst, p->family);
	dst.len = p->dst_len;
	sel.src = &src;
	sel.dst = &dst;
	if (p->proto != 0) {
		sel.has_proto = true;
		sel.proto = p->proto;
	}
	if (p->sport_lo != 0 || p->sport_hi != 0xffff) {
		sel.has_sport_lo = sel.has_sport_hi = true;
		sel.sport_lo = p->sport_lo;
		sel.sport_hi = p->sport_hi;
	}
	if (p->dport_lo != 0 || p->dport_hi != 0xffff) {
		sel.has_dport_lo = sel.has_dport_hi = true;
		sel.dport_lo = p->dport_lo;
		sel.dport_hi = p->dport_hi;
	}
	acq.sel = &sel;
	acq.src = bin(u->addr, u->family);
	acq.dst = bin(u->addr2, u->family);
	acq.has_proto = true;
	acq.proto = u->proto;
	ev.body_case = DPSEC__EVENT__BODY_ACQUIRE;
	ev.acquire = &acq;
	chan_server_event(srv, &ev);
}

static void mapping(struct chan_server *srv, const struct upcall *u)
{
	Dpsec__SaId id = DPSEC__SA_ID__INIT;
	Dpsec__Mapping map = DPSEC__MAPPING__INIT;
	Dpsec__Event ev = DPSEC__EVENT__INIT;
	struct sa *sa;
	size_t alen = u->family == 4 ? 4 : 16;

	id.dst = bin(u->addr2, u->family);
	id.proto = IPPROTO_ESP;
	id.spi = rte_be_to_cpu_32(u->spi);
	/* Workers repeat a new source once a second each; the SA's owner hears of it once. */
	sa = sad_find(&id);
	if (sa == NULL ||
	    (sa->mapped_port == u->sport && memcmp(sa->mapped_addr, u->addr, alen) == 0))
		return;
	map.sa = &id;
	map.new_addr = bin(u->addr, u->family);
	map.new_port = rte_be_to_cpu_16(u->sport);
	ev.body_case = DPSEC__EVENT__BODY_MAPPING;
	ev.mapping = &map;
	if (chan_server_event(srv, &ev) == 0)
		return; /* nobody listening: tell whoever subscribes when it repeats */
	memcpy(sa->mapped_addr, u->addr, alen);
	sa->mapped_port = u->sport;
}

void upcall_drain(struct chan_server *srv)
{
	struct upcall u[64];
	unsigned n;

	while ((n = rte_ring_sc_dequeue_burst_elem(upcall_ring, u, sizeof(u[0]), RTE_DIM(u),
						   NULL)) > 0) {
		for (unsigned i = 0; i < n; i++) {
			switch (u[i].type) {
			case UPCALL_RESOLVE:
				if (u[i].port >= PORT_MAX || !ports[u[i].port].configured)
					break;
				/* The kernel resolves; its answer comes back through the mirror. */
				nl_neigh_resolve(ports[u[i].port].tap_ifindex, u[i].addr,
						 u[i].family == 4 ? 4 : 16);
				break;
			case UPCALL_ACQUIRE:
				if (srv != NULL)
					acquire(srv, &u[i]);
				break;
			case UPCALL_MAPPING:
				if (srv != NULL)
					mapping(srv, &u[i]);
				break;
			}
		}
	}
}
