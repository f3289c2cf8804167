/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The kernel is the source of truth for addresses, routes and neighbours of
 * the TAPs (as VPP's linux-cp does): this module mirrors them into the
 * dataplane tables (initial dump plus change events) and is how config lines
 * and dpsecctl reach the kernel. Control thread only.
 */
#ifndef DPSEC_NETLINK_H
#define DPSEC_NETLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Open the request and event sockets (RTMGRP addr/route/neigh, v4 and v6). */
int nl_init(char *err, size_t errlen);
/* Event socket descriptor, readable when nl_process() has work. */
int nl_fd(void);
/* Dump addresses, routes and neighbours of our TAPs into the tables. */
int nl_resync(void);
/* Drain pending events into the tables; resyncs after an overrun (ENOBUFS). */
void nl_process(void);

/* Ask the kernel; the change comes back through the mirror. 0 or -errno with @err set.
 * nl_route takes ifindex 0 to let the kernel choose the device for @via. */
int nl_addr(bool add, int ifindex, const uint8_t *addr, size_t alen, unsigned plen, char *err,
	    size_t errlen);
int nl_route(bool add, int ifindex, const uint8_t *dst, size_t alen, unsigned plen,
	     const uint8_t *via, uint32_t metric, char *err, size_t errlen);
int nl_neigh(bool add, int ifindex, const uint8_t *addr, size_t alen, const uint8_t mac[6],
	     char *err, size_t errlen);
/* Start the kernel's own resolution of @addr on @ifindex (RTM_NEWNEIGH + NTF_USE). */
int nl_neigh_resolve(int ifindex, const uint8_t *addr, size_t alen);

void nl_close(void);

#endif
