/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * IPv4 reassembly of ESP the path fragmented (RFC 4303 3.4.1: a receiver
 * reassembles before ESP processing). One rte_ip_frag table per worker; the
 * reassembled packet is copied into a single mbuf when it fits one, since the
 * ESP path works on contiguous packets. ESP-in-UDP shows its port only in the
 * first piece, so while NAT-T SAs exist every UDP packet to the gateway is
 * reassembled here, and what turns out not to be ESP (IKE) goes to the kernel
 * cut up again.
 * Fragments of anything else go to the kernel as they came.
 */
#ifndef DPSEC_REASS_H
#define DPSEC_REASS_H

#include <stdint.h>

#include <rte_mbuf.h>

#define REASS_TIMEOUT_MS 3000 /* an incomplete packet's fragments are dropped after this */
#define REASS_FLOWS	 4096 /* packets being reassembled at once, per worker */

int reass_init(unsigned n_workers, char *err, size_t errlen);
void reass_fini(void);

/*
 * Worker @worker takes fragment @m (Ethernet header on, l2_len/l3_len set,
 * valid IPv4). Returns the whole packet, Ethernet header copied, once its last
 * fragment is in: in one mbuf if it fits one, else as a chain. NULL while
 * fragments are missing or when the packet cannot be reassembled (@m is then
 * the table's or freed).
 */
struct rte_mbuf *reass_add(unsigned worker, struct rte_mbuf *m, uint64_t now_tsc);

/* Free what timed out or failed; a worker calls it after every burst. */
void reass_tick(unsigned worker, uint64_t now_tsc);

#endif
