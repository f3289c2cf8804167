/* SPDX-License-Identifier: BSD-3-Clause */
/* Address and prefix text <-> 4/16-byte network-order bytes. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "grammar_priv.h"

int gram_addr_parse(const char *s, uint8_t out[16], size_t *len)
{
	/* inet_pton is strict: no "10.1", no octal, no zone ids */
	if (inet_pton(AF_INET, s, out) == 1) {
		*len = 4;
		return 0;
	}
	if (inet_pton(AF_INET6, s, out) == 1) {
		*len = 16;
		return 0;
	}
	return -1;
}

int gram_prefix_parse(const char *s, uint8_t out[16], size_t *len, uint32_t *plen)
{
	char addr[INET6_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	const char *p;
	size_t alen;
	uint32_t v = 0;

	if (!slash)
		return -1;
	alen = (size_t)(slash - s);
	if (alen == 0 || alen >= sizeof(addr))
		return -1;
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	if (gram_addr_parse(addr, out, len))
		return -1;
	/* 1-3 decimal digits, nothing else */
	for (p = slash + 1; *p; p++) {
		if (!isdigit((unsigned char)*p) || p - slash > 3)
			return -1;
		v = v * 10 + (uint32_t)(*p - '0');
	}
	if (p == slash + 1 || v > *len * 8)
		return -1;
	*plen = v;
	return 0;
}

bool gram_prefix_host_bits(const uint8_t *addr, size_t alen, uint32_t plen)
{
	size_t i;

	for (i = 0; i < alen; i++) {
		uint32_t first = (uint32_t)i * 8;
		uint8_t mask;

		if (first + 8 <= plen)
			continue;
		mask = first >= plen ? 0xff : (uint8_t)(0xff >> (plen - first));
		if (addr[i] & mask)
			return true;
	}
	return false;
}

const char *gram_addr_fmt(const ProtobufCBinaryData *a, char *buf, size_t len)
{
	int af = a && a->data ? (a->len == 4 ? AF_INET : a->len == 16 ? AF_INET6 : 0) : 0;

	if (len == 0)
		return "";
	if (!af || !inet_ntop(af, a->data, buf, (socklen_t)len))
		snprintf(buf, len, "?");
	return buf;
}

const char *gram_prefix_fmt(const Dpsec__Prefix *p, char *buf, size_t len)
{
	size_t n;

	if (len == 0)
		return "";
	if (!p) {
		snprintf(buf, len, "?");
		return buf;
	}
	gram_addr_fmt(&p->addr, buf, len);
	n = strlen(buf);
	snprintf(buf + n, len - n, "/%u", p->len);
	return buf;
}
