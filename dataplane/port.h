/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Wire ports (any DPDK ethdev, in probe order) and their TAP twins on the
 * exception path. Each configured port gets a net_tap "dp-<name>" with the
 * same MAC; the kernel sees the gateway's traffic there.
 */
#ifndef DPSEC_PORT_H
#define DPSEC_PORT_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_ether.h>
#include <rte_mempool.h>

#include "dpsec.pb-c.h"

#define PORT_MAX      16
#define PORT_NAME_MAX 12 /* "dp-" + name must fit IFNAMSIZ */
#define PORT_NONE     UINT16_MAX

struct port {
	bool configured;
	bool started;
	uint16_t id;  /* wire ethdev */
	uint16_t tap; /* net_tap ethdev */
	int tap_ifindex;
	uint16_t nb_rxq;
	char name[PORT_NAME_MAX + 1];
	char tap_name[PORT_NAME_MAX + 4];
	struct rte_ether_addr mac;
	uint32_t addr4; /* primary IPv4 address (network order), 0 if none */
};

extern struct port ports[PORT_MAX];
/* Smallest MTU of the started wire ports: what an ESP packet must fit. */
extern uint16_t port_min_mtu;
extern uint16_t port_wire_count; /* ethdevs probed by EAL before any TAP */
extern struct rte_mempool *port_pool;

int port_init(unsigned n_workers, unsigned pool_size, char *err, size_t errlen);
/* `port N name NAME`: take wire port N under NAME and create its TAP. */
int port_configure(uint16_t id, const char *name, char *err, size_t errlen);
/* Start every configured wire port (TAPs start when created). */
int port_start_all(char *err, size_t errlen);
void port_stop_all(void);

/* Dataplane port id for a kernel ifindex of one of our TAPs, or -1. */
int port_by_ifindex(int ifindex);
/* Dataplane port id for a configured name, or -1. */
int port_by_name(const char *name);

#endif
