/* SPDX-License-Identifier: BSD-3-Clause */
/* `show ...`: snapshots of the tables and counters, built on the control thread. */
#include <stdlib.h>
#include <string.h>

#include <rte_ethdev.h>

#include "addr.h"
#include "apply.h"
#include "channel.h"
#include "fib.h"
#include "neigh.h"
#include "port.h"
#include "sad.h"
#include "spd.h"
#include "stats.h"
#include "upcall.h"

/* Snapshot taken once the ports run, to tell leaks from buffers drivers hold. */
unsigned show_mbuf_baseline;

static Dpsec__PortInfo *port_info(uint16_t id)
{
	const struct port *p = &ports[id];
	Dpsec__PortInfo *pi = malloc(sizeof(*pi));
	struct rte_eth_dev_info info;
	struct rte_eth_link link;

	if (pi == NULL)
		return NULL;
	dpsec__port_info__init(pi);
	pi->port_id = id;
	pi->name = strdup(p->name);
	pi->tap = strdup(p->tap_name);
	pi->mac.data = malloc(6);
	if (pi->mac.data != NULL) {
		memcpy(pi->mac.data, p->mac.addr_bytes, 6);
		pi->mac.len = 6;
		pi->has_mac = true;
	}
	if (rte_eth_dev_info_get(id, &info) == 0)
		pi->driver = strdup(info.driver_name);
	if (rte_eth_link_get_nowait(id, &link) == 0) {
		pi->has_link_up = true;
		pi->link_up = link.link_status == RTE_ETH_LINK_UP;
	}
	stats_port_counters(id, &pi->counters, &pi->n_counters);
	return pi;
}

static size_t ports_dump(Dpsec__PortInfo ***out)
{
	Dpsec__PortInfo **a = calloc(PORT_MAX, sizeof(*a));
	size_t n = 0;

	if (a == NULL)
		return 0;
	for (uint16_t i = 0; i < PORT_MAX; i++)
		if (ports[i].configured && (a[n] = port_info(i)) != NULL)
			n++;
	*out = a;
	return n;
}

static Dpsec__Stats *stats_dump(void)
{
	Dpsec__Stats *s = malloc(sizeof(*s));
	uint64_t upcall_full = 0, reass_dropped = 0;

	if (s == NULL)
		return NULL;
	dpsec__stats__init(s);
	for (unsigned w = 0; w < stats_n_workers; w++) {
		upcall_full += stats_workers[w].upcall_full;
		reass_dropped += stats_workers[w].reass_dropped;
	}
	stats_counter_add(&s->global, &s->n_global, "workers", stats_n_workers);
	stats_counter_add(&s->global, &s->n_global, "mbuf_in_use",
			  rte_mempool_in_use_count(port_pool));
	stats_counter_add(&s->global, &s->n_global, "mbuf_in_use_baseline", show_mbuf_baseline);
	stats_counter_add(&s->global, &s->n_global, "mbuf_avail",
			  rte_mempool_avail_count(port_pool));
	stats_counter_add(&s->global, &s->n_global, "upcall_full", upcall_full);
	stats_counter_add(&s->global, &s->n_global, "reass_dropped", reass_dropped);
	stats_counter_add(&s->global, &s->n_global, "routes", fib_dump_count());
	/* how RSS spreads the load: packets each worker received from the wire */
	for (unsigned w = 0; w < stats_n_workers; w++) {
		char name[32];
		uint64_t rx = 0;

		for (uint16_t p = 0; p < PORT_MAX; p++)
			rx += stats_ports[w][p].rx;
		snprintf(name, sizeof(name), "worker%u_rx", w);
		stats_counter_add(&s->global, &s->n_global, name, rx);
	}
	s->n_ports = ports_dump(&s->ports);
	return s;
}

/* The SAD builds each SaInfo in one blob; replies are freed field by field. */
static size_t sa_dump(Dpsec__SaInfo ***out)
{
	Dpsec__SaInfo **blobs;
	size_t n = sad_dump(&blobs), k = 0;

	*out = calloc(n ? n : 1, sizeof(**out));
	for (size_t i = 0; i < n && *out != NULL; i++) {
		Dpsec__SaInfo *c = apply_msg_clone(&blobs[i]->base);

		if (c != NULL)
			(*out)[k++] = c;
	}
	sad_dump_free(blobs, n);
	return k;
}

void show_reply(const Dpsec__Show *s, Dpsec__Reply *rep)
{
	switch (s->what) {
	case DPSEC__SHOW__WHAT__PORTS:
		rep->n_ports = ports_dump(&rep->ports);
		break;
	case DPSEC__SHOW__WHAT__STATS:
		rep->stats = stats_dump();
		break;
	case DPSEC__SHOW__WHAT__ROUTE:
		rep->n_routes = fib_dump(&rep->routes);
		break;
	case DPSEC__SHOW__WHAT__NEIGH:
		rep->n_neighs = neigh_dump(&rep->neighs);
		break;
	case DPSEC__SHOW__WHAT__ADDR:
		rep->n_addrs = addr_dump(&rep->addrs);
		break;
	case DPSEC__SHOW__WHAT__SA:
		rep->n_sas = sa_dump(&rep->sas);
		break;
	case DPSEC__SHOW__WHAT__POLICY:
		rep->n_policies = spd_dump(&rep->policies);
		break;
	default:
		chan_reply_error(rep, DPSEC__CODE__EINVAL, "unknown show %d", s->what);
	}
}
