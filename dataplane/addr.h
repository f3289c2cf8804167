/* SPDX-License-Identifier: BSD-3-Clause */
/* Local addresses of the gateway, mirrored from the TAPs. Control thread only. */
#ifndef DPSEC_ADDR_H
#define DPSEC_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dpsec.pb-c.h"

/* Mirror sink (netlink). */
void addr_update(bool add, uint16_t port, const uint8_t *addr, size_t alen, unsigned plen);
size_t addr_dump(Dpsec__AddrInfo ***out);

#endif
