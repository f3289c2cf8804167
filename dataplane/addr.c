/* SPDX-License-Identifier: BSD-3-Clause */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "fib.h"
#include "port.h"

struct addr {
	uint16_t port;
	uint8_t alen;
	uint8_t plen;
	uint8_t a[16];
};

static struct addr *addrs;
static size_t n_addrs;

/* The subnet broadcast of an IPv4 address is the gateway's too: punt it. */
static bool broadcast4(const uint8_t *a, unsigned plen, uint8_t out[4])
{
	uint32_t ip, mask;

	if (plen >= 31)
		return false;
	memcpy(&ip, a, 4);
	mask = htonl(~0u << (32 - plen));
	ip |= ~mask;
	memcpy(out, &ip, 4);
	return true;
}

void addr_update(bool add, uint16_t port, const uint8_t *a, size_t alen, unsigned plen)
{
	uint8_t bcast[4];
	size_t i;

	if ((alen != 4 && alen != 16) || port >= PORT_MAX || plen > alen * 8)
		return;
	for (i = 0; i < n_addrs; i++)
		if (addrs[i].port == port && addrs[i].alen == alen &&
		    memcmp(addrs[i].a, a, alen) == 0)
			break;
	if (add && i == n_addrs) {
		struct addr *na = realloc(addrs, (n_addrs + 1) * sizeof(*na));

		if (na == NULL)
			return;
		addrs = na;
		n_addrs++;
	} else if (!add) {
		if (i == n_addrs)
			return;
		plen = addrs[i].plen;
		addrs[i] = addrs[--n_addrs];
		if (alen == 4 && memcmp(&ports[port].addr4, a, 4) == 0) {
			/* The port's source for ICMP errors becomes another of its addresses. */
			ports[port].addr4 = 0;
			for (size_t j = 0; j < n_addrs; j++)
				if (addrs[j].port == port && addrs[j].alen == 4) {
					memcpy(&ports[port].addr4, addrs[j].a, 4);
					break;
				}
		}
		if (alen == 4 && broadcast4(a, plen, bcast))
			fib_local(false, bcast, 4, port);
		return;
	}
	addrs[i] = (struct addr){.port = port, .alen = alen, .plen = plen};
	memcpy(addrs[i].a, a, alen);
	if (alen == 4) {
		if (ports[port].addr4 == 0)
			memcpy(&ports[port].addr4, a, 4);
		if (broadcast4(a, plen, bcast))
			fib_local(true, bcast, 4, port);
	}
}

size_t addr_dump(Dpsec__AddrInfo ***out)
{
	Dpsec__AddrInfo **arr = calloc(n_addrs ? n_addrs : 1, sizeof(*arr));
	size_t n = 0;

	if (arr == NULL)
		return 0;
	for (size_t i = 0; i < n_addrs; i++) {
		Dpsec__AddrInfo *ai = malloc(sizeof(*ai));
		Dpsec__Prefix *p = malloc(sizeof(*p));

		if (ai == NULL || p == NULL) {
			free(ai);
			free(p);
			break;
		}
		dpsec__addr_info__init(ai);
		dpsec__prefix__init(p);
		p->addr.data = malloc(addrs[i].alen);
		if (p->addr.data != NULL) {
			memcpy(p->addr.data, addrs[i].a, addrs[i].alen);
			p->addr.len = addrs[i].alen;
		}
		p->len = addrs[i].plen;
		ai->prefix = p;
		ai->dev = strdup(ports[addrs[i].port].name);
		arr[n++] = ai;
	}
	*out = arr;
	return n;
}
