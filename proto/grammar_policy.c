/* SPDX-License-Identifier: BSD-3-Clause */
/* policy add | policy del | policy get | policy flush: the SPD (RFC 4301 4.4.1). */
#include <stdlib.h>
#include <string.h>

#include "grammar_priv.h"

#define PROTO_TCP  6
#define PROTO_UDP  17
#define PROTO_SCTP 132

enum {
	K_SRC,
	K_DST,
	K_PROTO,
	K_SPORT,
	K_DPORT,
	K_DIR,
	K_ACTION,
	K_SPI,
	K_PRIO,
	K_REPLACE,
	K_SADST,
	K_OWNER,
	K_MAX
};

static const char *const kw_names[K_MAX] = {
    [K_SRC] = "src",	   [K_DST] = "dst",	    [K_PROTO] = "proto",   [K_SPORT] = "sport",
    [K_DPORT] = "dport",   [K_DIR] = "dir",	    [K_ACTION] = "action", [K_SPI] = "spi",
    [K_PRIO] = "priority", [K_REPLACE] = "replace", [K_SADST] = "sa-dst",  [K_OWNER] = "owner",
};

static int keyword(const char *w, int last)
{
	int k;

	for (k = 0; k <= last; k++)
		if (!strcmp(w, kw_names[k]))
			return k;
	return -1;
}

static int parse_proto(struct gram_cur *c, const char *v, Dpsec__Selector *s)
{
	uint32_t p;

	if (!strcmp(v, "any"))
		return 0;
	if (gram_proto_lookup(v, &p) == 0) {
		s->has_proto = 1;
		s->proto = p;
		return 0;
	}
	if (v[0] < '0' || v[0] > '9')
		return gram_err(c,
				"unknown proto \"%s\" (tcp, udp, icmp, ipv6-icmp, sctp, any or "
				"0..255)",
				GW(v));
	if (gram_u32(c, "proto", v, 0, 255, &p))
		return -1;
	/* 0 is "any", which the message spells as absence */
	s->has_proto = p != 0;
	s->proto = p;
	return 0;
}

static int parse_range(struct gram_cur *c, const char *v, uint32_t *lo, uint32_t *hi)
{
	char buf[16];
	char *dash;

	if (strlen(v) >= sizeof(buf))
		return gram_err(c, "bad port range \"%s\"", GW(v));
	strcpy(buf, v);
	dash = strchr(buf, '-');
	if (dash)
		*dash = '\0';
	if (gram_u32(c, "port", buf, 0, UINT16_MAX, lo) ||
	    gram_u32(c, "port", dash ? dash + 1 : buf, 0, UINT16_MAX, hi))
		return -1;
	if (*lo > *hi)
		return gram_err(c, "bad port range \"%s\" (low > high)", GW(v));
	return 0;
}

/* One selector or dir keyword and its value; other keywords are the caller's. */
static int parse_sel(struct gram_cur *c, Dpsec__Selector *s, Dpsec__Dir *dir, int k, const char *v)
{
	switch (k) {
	case K_SRC:
		return gram_prefix_msg(c, v, true, &s->src);
	case K_DST:
		return gram_prefix_msg(c, v, true, &s->dst);
	case K_PROTO:
		return parse_proto(c, v, s);
	case K_SPORT:
		s->has_sport_lo = s->has_sport_hi = 1;
		return parse_range(c, v, &s->sport_lo, &s->sport_hi);
	case K_DPORT:
		s->has_dport_lo = s->has_dport_hi = 1;
		return parse_range(c, v, &s->dport_lo, &s->dport_hi);
	case K_DIR:
		return gram_dir(c, v, dir);
	}
	return gram_err(c, "internal: keyword %d", k);
}

static int check_sel(struct gram_cur *c, const Dpsec__Selector *s, uint32_t seen)
{
	bool ports_ok = s->has_proto &&
			(s->proto == PROTO_TCP || s->proto == PROTO_UDP || s->proto == PROTO_SCTP);
	int k;

	for (k = K_SRC; k <= K_DIR; k++)
		if (k != K_PROTO && k != K_SPORT && k != K_DPORT && !(seen & (1u << k)))
			return gram_err(c, "missing \"%s\"", kw_names[k]);
	if (s->src->addr.len != s->dst->addr.len)
		return gram_err(c, "src and dst address families differ");
	if (!ports_ok && s->has_sport_lo)
		return gram_err(c, "\"sport\" needs proto tcp, udp or sctp");
	if (!ports_ok && s->has_dport_lo)
		return gram_err(c, "\"dport\" needs proto tcp, udp or sctp");
	return 0;
}

static Dpsec__Selector *new_sel(struct gram_cur *c)
{
	Dpsec__Selector *s = malloc(sizeof(*s));

	if (!s) {
		gram_err(c, "out of memory");
		return NULL;
	}
	dpsec__selector__init(s);
	return s;
}

static int parse_add(struct gram_cur *c, Dpsec__Request *req)
{
	Dpsec__PolicyAdd *m = malloc(sizeof(*m));
	const char *w, *v;
	uint32_t seen = 0;
	int k, rc;

	c->cmd = "policy add";
	if (!m)
		return gram_err(c, "out of memory");
	dpsec__policy_add__init(m);
	req->policy_add = m;
	req->body_case = DPSEC__REQUEST__BODY_POLICY_ADD;
	m->sel = new_sel(c);
	if (!m->sel)
		return -1;
	while ((w = gram_take(c))) {
		k = keyword(w, K_MAX - 1);
		if (k < 0)
			return gram_unknown(c, w);
		if (gram_once(c, &seen, k, w))
			return -1;
		if (k == K_REPLACE) {
			m->has_replace = m->replace = 1;
			continue;
		}
		v = gram_value(c, w);
		if (!v)
			return -1;
		if (k <= K_DIR) {
			rc = parse_sel(c, m->sel, &m->dir, k, v);
		} else if (k == K_ACTION) {
			rc = gram_lookup_action(v, &m->action);
			if (rc)
				gram_err(c, "bad action \"%s\" (protect, bypass, discard, trap)",
					 GW(v));
		} else if (k == K_SPI) {
			m->has_spi = 1;
			rc = gram_spi(c, v, &m->spi);
		} else if (k == K_PRIO) {
			m->has_priority = 1;
			rc = gram_u32(c, w, v, 0, UINT32_MAX, &m->priority);
		} else if (k == K_OWNER) {
			rc = gram_name(c, w, v, &m->owner);
		} else {
			m->has_sa_dst = 1;
			rc = gram_addr_bin(c, w, v, &m->sa_dst);
		}
		if (rc)
			return -1;
	}
	if (check_sel(c, m->sel, seen))
		return -1;
	if (!(seen & (1u << K_ACTION)))
		return gram_err(c, "missing \"action\"");
	if (m->action == DPSEC__ACTION__ACT_PROTECT && !m->has_spi)
		return gram_err(c, "action protect needs \"spi\"");
	if (m->action != DPSEC__ACTION__ACT_PROTECT && (m->has_spi || m->has_sa_dst))
		return gram_err(c, "\"%s\" is only for action protect",
				m->has_spi ? "spi" : "sa-dst");
	return 0;
}

/* policy del and policy get name a policy by its selector and direction alone. */
static int parse_sel_only(struct gram_cur *c, Dpsec__PolicyDel *m)
{
	const char *w, *v;
	uint32_t seen = 0;
	int k;

	m->sel = new_sel(c);
	if (!m->sel)
		return -1;
	while ((w = gram_take(c))) {
		k = keyword(w, K_DIR);
		if (k < 0)
			return gram_unknown(c, w);
		if (gram_once(c, &seen, k, w) || !(v = gram_value(c, w)) ||
		    parse_sel(c, m->sel, &m->dir, k, v))
			return -1;
	}
	return check_sel(c, m->sel, seen);
}

static Dpsec__PolicyDel *new_del(struct gram_cur *c)
{
	Dpsec__PolicyDel *m = malloc(sizeof(*m));

	if (!m) {
		gram_err(c, "out of memory");
		return NULL;
	}
	dpsec__policy_del__init(m);
	return m;
}

static int parse_del(struct gram_cur *c, Dpsec__Request *req)
{
	c->cmd = "policy del";
	req->policy_del = new_del(c);
	if (!req->policy_del)
		return -1;
	req->body_case = DPSEC__REQUEST__BODY_POLICY_DEL;
	return parse_sel_only(c, req->policy_del);
}

static int parse_get(struct gram_cur *c, Dpsec__Request *req)
{
	c->cmd = "policy get";
	req->policy_query = new_del(c);
	if (!req->policy_query)
		return -1;
	req->body_case = DPSEC__REQUEST__BODY_POLICY_QUERY;
	return parse_sel_only(c, req->policy_query);
}

#define POLICY_VERBS "\"add\", \"del\", \"get\" or \"flush\""

int gram_parse_policy(struct gram_cur *c, Dpsec__Request *req)
{
	const char *w = gram_take(c);

	c->cmd = "policy";
	if (w && !strcmp(w, "add"))
		return parse_add(c, req);
	if (w && !strcmp(w, "del"))
		return parse_del(c, req);
	if (w && !strcmp(w, "get"))
		return parse_get(c, req);
	if (w && !strcmp(w, "flush")) {
		c->cmd = "policy flush";
		return gram_parse_flush(c, req, DPSEC__FLUSH__WHAT__POLICY);
	}
	if (!w)
		return gram_err(c, "expected " POLICY_VERBS);
	return gram_err(c, "expected " POLICY_VERBS ", got \"%s\"", GW(w));
}
