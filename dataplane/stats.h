/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Counters. Each worker owns its own cache-aligned block per port, so the
 * hot path never writes a line another core writes; readers sum them.
 */
#ifndef DPSEC_STATS_H
#define DPSEC_STATS_H

#include <stdint.h>

#include <rte_common.h>

#include "dpsec.pb-c.h"
#include "port.h"

/* Why a packet was dropped; the name is the counter's suffix ("drop_<name>"). */
#define STATS_DROP_REASONS(X)                                                                      \
	X(RUNT, "runt")			  /* shorter than an Ethernet header */                    \
	X(NOT_FOR_US, "not_for_us")	  /* unicast to another MAC */                             \
	X(ETHERTYPE, "ethertype")	  /* not IPv4, IPv6 or ARP */                              \
	X(BAD_IP_HEADER, "bad_ip_header") /* version, IHL, length fields */                        \
	X(BAD_IP_CHECKSUM, "bad_ip_checksum")                                                      \
	X(IP_TRUNCATED, "ip_truncated") /* header says more than the frame holds */                \
	X(MARTIAN, "martian")		/* impossible source address */                            \
	X(NO_ROUTE, "no_route")                                                                    \
	X(NEIGH_MISS, "neigh_miss")	    /* next hop unresolved; resolution started */          \
	X(TX_FULL, "tx_full")		    /* output queue full */                                \
	X(PUNT_FULL, "punt_full")	    /* TAP queue full */                                   \
	X(NO_PORT, "no_port")		    /* TAP traffic for an unconfigured port */             \
	X(IPV6_FORWARD, "ipv6_forward")	    /* ESP with an IPv6 outer header: not yet */           \
	X(IPV6_ESP, "ipv6_esp")		    /* IPv6 a protect policy covers: not yet */            \
	X(NO_SA, "no_sa")		    /* unknown SPI, or protect policy without SA */        \
	X(ESP, "esp")			    /* ESP processing failed; the SA says why */           \
	X(ESP_MALFORMED, "esp_malformed")   /* too short to carry an SPI */                        \
	X(POLICY, "policy")		    /* discard, or not allowed by the SPD */               \
	X(TRAP, "trap")			    /* trap policy: no SA yet */                           \
	X(NATT_KEEPALIVE, "natt_keepalive") /* RFC 3948 keepalive, consumed */                     \
	X(TOO_BIG, "too_big")		    /* would exceed the MTU once encrypted */

enum stats_drop {
#define X(e, n) STATS_DROP_##e,
	STATS_DROP_REASONS(X)
#undef X
	    STATS_DROP_MAX
};

struct stats_port {
	uint64_t rx;	   /* from the wire */
	uint64_t tx;	   /* to the wire */
	uint64_t punted;   /* up the TAP */
	uint64_t from_tap; /* from the kernel, out on the wire */
	uint64_t drop[STATS_DROP_MAX];
} __rte_cache_aligned;

struct stats_global {
	uint64_t upcall_full;	/* upcalls lost because the ring was full */
	uint64_t reass_dropped; /* fragments (ESP; UDP while NAT-T SAs exist) not reassembled or
				   passed on */
} __rte_cache_aligned;

/* Per-worker blocks, indexed [worker][port]. */
extern struct stats_port (*stats_ports)[PORT_MAX];
extern struct stats_global *stats_workers;
extern unsigned stats_n_workers;

int stats_init(unsigned n_workers);
/* Sum one port over all workers. */
void stats_port_sum(uint16_t port, struct stats_port *out);
/* Append the counters of @port as Counter messages to (*cnt, *n). */
void stats_port_counters(uint16_t port, Dpsec__Counter ***cnt, size_t *n);
void stats_counter_add(Dpsec__Counter ***cnt, size_t *n, const char *name, uint64_t value);

#endif
