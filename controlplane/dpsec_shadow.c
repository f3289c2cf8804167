/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The shadow of the dataplane's SAD and SPD as dpsec-ike filled them (see
 * dpsec_shadow.h). SAs and policies live in hash tables keyed by their
 * dataplane identity, so a gateway with thousands of CHILD_SAs stays cheap.
 */
#include <string.h>

#include <collections/hashtable.h>
#include <collections/linked_list.h>
#include <utils/chunk.h>

#include "dpsec_shadow.h"

#define TABLE_SIZE  1024
#define PORT_ANY_HI 0xffff

typedef struct private_dpsec_shadow_t private_dpsec_shadow_t;

struct private_dpsec_shadow_t {
	dpsec_shadow_t public;
	/* sa_entry_t by sa_key_t */
	hashtable_t *sas;
	/* sa_key_t* (allocated, uninstalled SPIs), keyed by themselves */
	hashtable_t *spis;
	/* policy_entry_t by policy_key_t */
	hashtable_t *policies;
};

/* (dst, proto, spi): the dataplane's SA identity. Hashed whole, so no padding left undefined. */
typedef struct {
	uint32_t spi;
	uint8_t proto;
	uint8_t len;
	uint8_t zero[2];
	uint8_t dst[16];
} sa_key_t;

typedef struct {
	sa_key_t key;
	dpsec_shadow_sa_t sa;
} sa_entry_t;

/* Selector and direction, with "any" spelt one way whatever the message said. */
typedef struct {
	uint8_t dir;
	uint8_t alen;
	uint8_t src_len;
	uint8_t dst_len;
	uint32_t proto;
	uint32_t sport_lo, sport_hi, dport_lo, dport_hi;
	uint8_t src[16];
	uint8_t dst[16];
} policy_key_t;

typedef struct {
	policy_key_t key;
	dpsec_shadow_policy_t policy;
} policy_entry_t;

void *dpsec_msg_clone(const ProtobufCMessage *m)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(len ? len : 1);
	void *out;

	protobuf_c_message_pack(m, buf);
	out = protobuf_c_message_unpack(m->descriptor, NULL, len, buf);
	/* the scratch copy may hold keys */
	memwipe(buf, len);
	free(buf);
	return out;
}

void dpsec_sa_req_free(Dpsec__SaAdd *req)
{
	if (!req)
		return;
	if (req->has_enc_key)
		memwipe(req->enc_key.data, req->enc_key.len);
	if (req->has_auth_key)
		memwipe(req->auth_key.data, req->auth_key.len);
	dpsec__sa_add__free_unpacked(req, NULL);
}

void dpsec_shadow_binding_destroy(dpsec_shadow_binding_t *b)
{
	if (!b)
		return;
	dpsec__policy_add__free_unpacked(b->req, NULL);
	free(b);
}

static void sa_key_fill(sa_key_t *k, const ProtobufCBinaryData *dst, uint32_t proto, uint32_t spi)
{
	memset(k, 0, sizeof(*k));
	k->spi = spi;
	k->proto = (uint8_t)proto;
	k->len = (uint8_t)min(dst->len, sizeof(k->dst));
	memcpy(k->dst, dst->data, k->len);
}

static u_int key_hash(const void *key, size_t len)
{
	return chunk_hash(chunk_create((u_char *)key, len));
}

static u_int sa_hash(const void *key)
{
	return key_hash(key, sizeof(sa_key_t));
}

static bool sa_equals(const void *a, const void *b)
{
	return memeq(a, b, sizeof(sa_key_t));
}

static u_int policy_hash(const void *key)
{
	return key_hash(key, sizeof(policy_key_t));
}

static bool policy_equals(const void *a, const void *b)
{
	return memeq(a, b, sizeof(policy_key_t));
}

static void port_range(protobuf_c_boolean has_lo, uint32_t lo, protobuf_c_boolean has_hi,
		       uint32_t hi, uint32_t *out_lo, uint32_t *out_hi)
{
	*out_lo = has_lo ? lo : 0;
	*out_hi = has_hi ? hi : PORT_ANY_HI;
}

static void policy_key_fill(policy_key_t *k, const Dpsec__PolicyDel *id)
{
	const Dpsec__Selector *s = id->sel;

	memset(k, 0, sizeof(*k));
	k->dir = (uint8_t)id->dir;
	k->alen = (uint8_t)min(s->src->addr.len, sizeof(k->src));
	k->src_len = (uint8_t)s->src->len;
	k->dst_len = (uint8_t)s->dst->len;
	memcpy(k->src, s->src->addr.data, k->alen);
	memcpy(k->dst, s->dst->addr.data, min(s->dst->addr.len, sizeof(k->dst)));
	k->proto = s->has_proto ? s->proto : 0;
	port_range(s->has_sport_lo, s->sport_lo, s->has_sport_hi, s->sport_hi, &k->sport_lo,
		   &k->sport_hi);
	port_range(s->has_dport_lo, s->dport_lo, s->has_dport_hi, s->dport_hi, &k->dport_lo,
		   &k->dport_hi);
}

static void sa_entry_destroy(sa_entry_t *e)
{
	dpsec_sa_req_free(e->sa.req);
	free(e);
}

static void policy_entry_destroy(policy_entry_t *e)
{
	e->policy.bindings->destroy_function(e->policy.bindings,
					     (void *)dpsec_shadow_binding_destroy);
	dpsec__policy_del__free_unpacked(e->policy.id, NULL);
	free(e);
}

METHOD(dpsec_shadow_t, add_sa, dpsec_shadow_sa_t *, private_dpsec_shadow_t *this,
       const Dpsec__SaAdd *req)
{
	sa_entry_t *e, *old;

	INIT(e, .sa = {
		    .req = dpsec_msg_clone(&req->base),
		    .added = time_monotonic(NULL),
		});
	if (!e->sa.req) {
		free(e);
		return NULL;
	}
	e->sa.req->has_replace = FALSE;
	sa_key_fill(&e->key, &req->dst, req->proto, req->spi);
	old = this->sas->put(this->sas, &e->key, e);
	if (old)
		sa_entry_destroy(old);
	free(this->spis->remove(this->spis, &e->key));
	return &e->sa;
}

METHOD(dpsec_shadow_t, get_sa, dpsec_shadow_sa_t *, private_dpsec_shadow_t *this,
       const Dpsec__SaId *id)
{
	sa_entry_t *e;
	sa_key_t k;

	sa_key_fill(&k, &id->dst, id->proto, id->spi);
	e = this->sas->get(this->sas, &k);
	return e ? &e->sa : NULL;
}

METHOD(dpsec_shadow_t, del_sa, bool, private_dpsec_shadow_t *this, const Dpsec__SaId *id)
{
	sa_entry_t *e;
	sa_key_t k;

	sa_key_fill(&k, &id->dst, id->proto, id->spi);
	e = this->sas->remove(this->sas, &k);
	if (!e)
		return FALSE;
	sa_entry_destroy(e);
	return TRUE;
}

CALLBACK(sa_filter, bool, void *data, enumerator_t *orig, va_list args)
{
	dpsec_shadow_sa_t **out;
	sa_entry_t *e;
	void *key;

	VA_ARGS_VGET(args, out);
	if (orig->enumerate(orig, &key, &e)) {
		*out = &e->sa;
		return TRUE;
	}
	return FALSE;
}

METHOD(dpsec_shadow_t, create_sa_enumerator, enumerator_t *, private_dpsec_shadow_t *this)
{
	return enumerator_create_filter(this->sas->create_enumerator(this->sas), sa_filter, NULL,
					NULL);
}

METHOD(dpsec_shadow_t, sa_count, u_int, private_dpsec_shadow_t *this)
{
	return this->sas->get_count(this->sas);
}

METHOD(dpsec_shadow_t, add_spi, void, private_dpsec_shadow_t *this, const Dpsec__SaId *id)
{
	sa_key_t *k;

	INIT(k);
	sa_key_fill(k, &id->dst, id->proto, id->spi);
	free(this->spis->put(this->spis, k, k));
}

METHOD(dpsec_shadow_t, del_spi, bool, private_dpsec_shadow_t *this, const Dpsec__SaId *id)
{
	sa_key_t k, *found;

	sa_key_fill(&k, &id->dst, id->proto, id->spi);
	found = this->spis->remove(this->spis, &k);
	free(found);
	return found != NULL;
}

METHOD(dpsec_shadow_t, spi_in_use, bool, private_dpsec_shadow_t *this, const Dpsec__SaId *id)
{
	sa_key_t k;

	sa_key_fill(&k, &id->dst, id->proto, id->spi);
	return this->spis->get(this->spis, &k) || this->sas->get(this->sas, &k);
}

METHOD(dpsec_shadow_t, get_policy, dpsec_shadow_policy_t *, private_dpsec_shadow_t *this,
       const Dpsec__PolicyDel *id, bool create)
{
	policy_entry_t *e;
	policy_key_t k;

	policy_key_fill(&k, id);
	e = this->policies->get(this->policies, &k);
	if (e || !create)
		return e ? &e->policy : NULL;
	INIT(e, .key = k,
	     .policy = {
		 .id = dpsec_msg_clone(&id->base),
		 .bindings = linked_list_create(),
	     });
	this->policies->put(this->policies, &e->key, e);
	return &e->policy;
}

METHOD(dpsec_shadow_t, add_binding, bool, private_dpsec_shadow_t *this, dpsec_shadow_policy_t *p,
       dpsec_shadow_binding_t *b)
{
	enumerator_t *enumerator;
	dpsec_shadow_binding_t *cur;
	bool head = TRUE;

	enumerator = p->bindings->create_enumerator(p->bindings);
	while (enumerator->enumerate(enumerator, &cur)) {
		if (cur->rank >= b->rank)
			break;
		head = FALSE;
	}
	p->bindings->insert_before(p->bindings, enumerator, b);
	enumerator->destroy(enumerator);
	return head;
}

METHOD(dpsec_shadow_t, del_binding, dpsec_shadow_binding_t *, private_dpsec_shadow_t *this,
       dpsec_shadow_policy_t *p, policy_type_t type, policy_priority_t prio, ipsec_sa_cfg_t *cfg,
       bool *was_head)
{
	enumerator_t *enumerator;
	dpsec_shadow_binding_t *cur, *found = NULL;
	bool head = TRUE;

	enumerator = p->bindings->create_enumerator(p->bindings);
	while (enumerator->enumerate(enumerator, &cur)) {
		if (cur->type == type && cur->prio == prio && ipsec_sa_cfg_equals(&cur->cfg, cfg)) {
			p->bindings->remove_at(p->bindings, enumerator);
			found = cur;
			break;
		}
		head = FALSE;
	}
	enumerator->destroy(enumerator);
	*was_head = found && head;
	return found;
}

METHOD(dpsec_shadow_t, remove_policy, void, private_dpsec_shadow_t *this, dpsec_shadow_policy_t *p)
{
	policy_entry_t *e;
	policy_key_t k;

	policy_key_fill(&k, p->id);
	e = this->policies->remove(this->policies, &k);
	if (e)
		policy_entry_destroy(e);
}

CALLBACK(policy_filter, bool, void *data, enumerator_t *orig, va_list args)
{
	dpsec_shadow_policy_t **out;
	policy_entry_t *e;
	void *key;

	VA_ARGS_VGET(args, out);
	if (orig->enumerate(orig, &key, &e)) {
		*out = &e->policy;
		return TRUE;
	}
	return FALSE;
}

METHOD(dpsec_shadow_t, create_policy_enumerator, enumerator_t *, private_dpsec_shadow_t *this)
{
	return enumerator_create_filter(this->policies->create_enumerator(this->policies),
					policy_filter, NULL, NULL);
}

METHOD(dpsec_shadow_t, policy_count, u_int, private_dpsec_shadow_t *this)
{
	return this->policies->get_count(this->policies);
}

METHOD(dpsec_shadow_t, flush_sas, void, private_dpsec_shadow_t *this)
{
	enumerator_t *enumerator;
	sa_entry_t *e;
	sa_key_t *k;
	void *key;

	enumerator = this->sas->create_enumerator(this->sas);
	while (enumerator->enumerate(enumerator, &key, &e)) {
		this->sas->remove_at(this->sas, enumerator);
		sa_entry_destroy(e);
	}
	enumerator->destroy(enumerator);
	enumerator = this->spis->create_enumerator(this->spis);
	while (enumerator->enumerate(enumerator, &key, &k)) {
		this->spis->remove_at(this->spis, enumerator);
		free(k);
	}
	enumerator->destroy(enumerator);
}

METHOD(dpsec_shadow_t, flush_policies, void, private_dpsec_shadow_t *this)
{
	enumerator_t *enumerator;
	policy_entry_t *e;
	void *key;

	enumerator = this->policies->create_enumerator(this->policies);
	while (enumerator->enumerate(enumerator, &key, &e)) {
		this->policies->remove_at(this->policies, enumerator);
		policy_entry_destroy(e);
	}
	enumerator->destroy(enumerator);
}

METHOD(dpsec_shadow_t, destroy, void, private_dpsec_shadow_t *this)
{
	flush_sas(this);
	flush_policies(this);
	this->sas->destroy(this->sas);
	this->spis->destroy(this->spis);
	this->policies->destroy(this->policies);
	free(this);
}

dpsec_shadow_t *dpsec_shadow_create(void)
{
	private_dpsec_shadow_t *this;

	INIT(this,
	     .public =
		 {
		     .add_sa = _add_sa,
		     .get_sa = _get_sa,
		     .del_sa = _del_sa,
		     .create_sa_enumerator = _create_sa_enumerator,
		     .sa_count = _sa_count,
		     .add_spi = _add_spi,
		     .del_spi = _del_spi,
		     .spi_in_use = _spi_in_use,
		     .get_policy = _get_policy,
		     .add_binding = _add_binding,
		     .del_binding = _del_binding,
		     .remove_policy = _remove_policy,
		     .create_policy_enumerator = _create_policy_enumerator,
		     .policy_count = _policy_count,
		     .flush_sas = _flush_sas,
		     .flush_policies = _flush_policies,
		     .destroy = _destroy,
		 },
	     .sas = hashtable_create(sa_hash, sa_equals, TABLE_SIZE),
	     .spis = hashtable_create(sa_hash, sa_equals, TABLE_SIZE),
	     .policies = hashtable_create(policy_hash, policy_equals, TABLE_SIZE), );
	return &this->public;
}
