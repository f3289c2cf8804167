/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * IPv4 fragmentation before encryption (RFC 4459 pre-fragmentation): a
 * non-DF packet that would not fit the wire once wrapped in ESP is split so
 * the peer reassembles inner packets, never ESP.
 *
 * DPDK's rte_ipv4_fragment_packet() shares the payload through indirect
 * mbufs; in-place ESP would encrypt (and pad into) that shared buffer, so
 * each fragment here is a copy. The same cut serves the exception path: a
 * UDP packet reassembled as possible ESP-in-UDP that is IKE goes to the
 * kernel in pieces the TAP takes.
 */
#ifndef DPSEC_FRAG_H
#define DPSEC_FRAG_H

#include <rte_mbuf.h>

/* Larger packets are refused: nothing on the Internet path needs more pieces. */
#define FRAG_MAX 8

/*
 * Split @m (Ethernet and IP headers in its first segment, valid IPv4
 * without options, DF clear; the payload may be chained) into
 * fragments of at most @mtu bytes of IP, each in a new mbuf from @pool with
 * the Ethernet header copied. Returns how many are in @out, 0 if it cannot
 * (too many pieces, IP options, out of mbufs). @m stays the caller's.
 */
uint16_t frag4(const struct rte_mbuf *m, uint32_t mtu, struct rte_mempool *pool,
	       struct rte_mbuf *out[FRAG_MAX]);

#endif
