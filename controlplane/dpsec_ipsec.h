/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * kernel_ipsec_t for dpsec-ike: every SA and policy charon installs goes to
 * dpsec-dataplane over the control channel instead of the kernel's XFRM.
 * Dataplane events (EXPIRE, ACQUIRE, MAPPING) come back to charon's kernel
 * interface; a restarted dataplane (new epoch) gets everything re-installed
 * from the shadow (dpsec_shadow.h).
 *
 * Settings (strongswan.conf, section dpsec-ike.plugins.dpsec):
 *   ctl          dataplane endpoint (ipc:///run/dpsec/ctl.sock)
 *   timeout      ms to wait for one reply (2000)
 *   heartbeat    ms between liveness probes of the dataplane (250)
 *   seq_poll       ms between reads of every SA's counters and sequence numbers (1000)
 *   seq_lease      smallest outbound sequence lease (1048576): the dataplane never sends
 *                  above the lease this daemon recorded, and a re-installed SA resumes
 *                  there, so no sequence number (AES-GCM nonce) is ever used twice
 *   seq_lease_time seconds of an SA's traffic one lease covers (4); renewed at half
 *
 * Everything it installs is marked owner "ike": at its own start it flushes only
 * that, and a resync replaces entries in place, so the operator's entries in the
 * dataplane config (e.g. a fail-closed discard baseline) always stay.
 */
#ifndef DPSEC_IPSEC_H
#define DPSEC_IPSEC_H

#include <library.h>
#include <kernel/kernel_ipsec.h>

typedef struct dpsec_ipsec_t dpsec_ipsec_t;

struct dpsec_ipsec_t {
	kernel_ipsec_t interface;
};

/* Constructor for kernel_ipsec_register(). */
dpsec_ipsec_t *dpsec_ipsec_create(void);

#endif
