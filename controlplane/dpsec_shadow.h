/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What dpsec-ike installed in the dataplane, so that a restarted dataplane
 * (new epoch) can be given all of it back: SAs with their keys, SPIs handed
 * out but not yet installed, and per policy (selector + direction) the list
 * of SA bindings charon asked for, best first. The head binding of each
 * policy is the one the dataplane holds.
 *
 * Not thread-safe: dpsec_ipsec_t calls it with its mutex held.
 */
#ifndef DPSEC_SHADOW_H
#define DPSEC_SHADOW_H

#include <library.h>
#include <collections/enumerator.h>
#include <ipsec/ipsec_types.h>
#include <kernel/kernel_ipsec.h>

#include "dpsec.pb-c.h"

typedef struct dpsec_shadow_t dpsec_shadow_t;
typedef struct dpsec_shadow_sa_t dpsec_shadow_sa_t;
typedef struct dpsec_shadow_binding_t dpsec_shadow_binding_t;
typedef struct dpsec_shadow_policy_t dpsec_shadow_policy_t;

/* One installed SA. */
struct dpsec_shadow_sa_t {
	/* the request as first sent, keys included (wiped when the SA goes) */
	Dpsec__SaAdd *req;
	/* last outbound sequence number the dataplane reported */
	uint64_t seq_out;
	/* outbound: the dataplane may send up to here (its lease); recorded before
	 * it is granted, so a re-install resumes above anything ever sent */
	uint64_t seq_lease;
	/* outbound: sequence numbers per second between the last two polls */
	uint64_t rate, rate_seq;
	int64_t rate_ms;
	/* inbound: highest sequence number the dataplane reported accepting */
	uint64_t seq_in;
	/* a dataplane has held it (else nothing was ever sent with it) */
	bool installed;
	/* counters of the current dataplane, and what earlier epochs counted */
	uint64_t bytes, packets;
	uint64_t base_bytes, base_packets;
	/* time_monotonic() when charon installed it */
	time_t added;
	/* the soft lifetime already fired: a re-install must not fire it again */
	bool soft_expired;
};

/* One CHILD_SA's claim on a policy. */
struct dpsec_shadow_binding_t {
	/* action, spi, sa_dst and priority to install (selector and dir are the policy's) */
	Dpsec__PolicyAdd *req;
	/* what charon passed, to find this binding again on del_policy */
	policy_type_t type;
	policy_priority_t prio;
	ipsec_sa_cfg_t cfg;
	/* place in the policy's list: lower first (set by the caller) */
	uint64_t rank;
};

/* A policy: one dataplane SPD entry, shared by every binding. */
struct dpsec_shadow_policy_t {
	Dpsec__PolicyDel *id;
	/* dpsec_shadow_binding_t, best first */
	linked_list_t *bindings;
};

struct dpsec_shadow_t {
	/* Remember an SA (request cloned, keys included); replaces one with the same id. */
	dpsec_shadow_sa_t *(*add_sa)(dpsec_shadow_t *this, const Dpsec__SaAdd *req);
	dpsec_shadow_sa_t *(*get_sa)(dpsec_shadow_t *this, const Dpsec__SaId *id);
	/* Forget an SA, wiping its keys. FALSE if unknown. */
	bool (*del_sa)(dpsec_shadow_t *this, const Dpsec__SaId *id);
	/* Enumerates dpsec_shadow_sa_t*. */
	enumerator_t *(*create_sa_enumerator)(dpsec_shadow_t *this);
	u_int (*sa_count)(dpsec_shadow_t *this);

	/* SPIs handed to charon by get_spi and not installed yet. */
	void (*add_spi)(dpsec_shadow_t *this, const Dpsec__SaId *id);
	bool (*del_spi)(dpsec_shadow_t *this, const Dpsec__SaId *id);
	/* TRUE if the identity is allocated or installed. */
	bool (*spi_in_use)(dpsec_shadow_t *this, const Dpsec__SaId *id);

	/* The policy with this selector and direction; created empty if @create. */
	dpsec_shadow_policy_t *(*get_policy)(dpsec_shadow_t *this, const Dpsec__PolicyDel *id,
					     bool create);
	/*
	 * Insert @b into @p's list by its rank (lower first; among equals the newest
	 * first, so a rekeyed CHILD_SA takes over). Returns TRUE if @b is now the
	 * head, i.e. the dataplane must install it.
	 */
	bool (*add_binding)(dpsec_shadow_t *this, dpsec_shadow_policy_t *p,
			    dpsec_shadow_binding_t *b);
	/*
	 * Remove and return the binding matching what charon passed to del_policy
	 * (NULL if none); *@was_head tells whether the dataplane held it.
	 */
	dpsec_shadow_binding_t *(*del_binding)(dpsec_shadow_t *this, dpsec_shadow_policy_t *p,
					       policy_type_t type, policy_priority_t prio,
					       ipsec_sa_cfg_t *cfg, bool *was_head);
	/* Drop a policy whose list is empty. */
	void (*remove_policy)(dpsec_shadow_t *this, dpsec_shadow_policy_t *p);
	/* Enumerates dpsec_shadow_policy_t*. */
	enumerator_t *(*create_policy_enumerator)(dpsec_shadow_t *this);
	u_int (*policy_count)(dpsec_shadow_t *this);

	void (*flush_sas)(dpsec_shadow_t *this);
	void (*flush_policies)(dpsec_shadow_t *this);
	void (*destroy)(dpsec_shadow_t *this);
};

dpsec_shadow_t *dpsec_shadow_create(void);

void dpsec_shadow_binding_destroy(dpsec_shadow_binding_t *b);

/* Deep copies of protobuf messages (pack + unpack); the scratch buffer is wiped. */
void *dpsec_msg_clone(const ProtobufCMessage *m);
/* Free an SaAdd, wiping its keys first. */
void dpsec_sa_req_free(Dpsec__SaAdd *req);

#endif
