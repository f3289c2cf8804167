/* SPDX-License-Identifier: BSD-3-Clause */
/* port, addr, route and neigh commands: the non-IPsec state of the gateway. */
#include <stdlib.h>
#include <string.h>

#include "grammar_priv.h"

enum { K_NAME, K_DEV, K_VIA, K_METRIC, K_LLADDR };

/* "add" or "del" after the object word; sets the error prefix to both words. */
static int add_or_del(struct gram_cur *c, const char *obj, const char *both[2], bool *add)
{
	const char *w = gram_take(c);

	c->cmd = obj;
	if (!w || (strcmp(w, "add") && strcmp(w, "del")))
		return gram_err(c, "expected \"add\" or \"del\"%s%s%s", w ? ", got \"" : "",
				w ? GW(w) : "", w ? "\"" : "");
	*add = !strcmp(w, "add");
	c->cmd = both[*add ? 0 : 1];
	return 0;
}

int gram_parse_port(struct gram_cur *c, Dpsec__Request *req)
{
	Dpsec__PortSet *m = malloc(sizeof(*m));
	const char *w, *v;
	uint32_t seen = 0;

	c->cmd = "port";
	if (!m)
		return gram_err(c, "out of memory");
	dpsec__port_set__init(m);
	req->port = m;
	req->body_case = DPSEC__REQUEST__BODY_PORT;
	w = gram_take(c);
	if (!w)
		return gram_err(c, "missing port number");
	if (gram_u32(c, "port", w, 0, GRAM_PORT_MAX, &m->port_id))
		return -1;
	while ((w = gram_take(c))) {
		if (strcmp(w, "name"))
			return gram_unknown(c, w);
		if (gram_once(c, &seen, K_NAME, w) || !(v = gram_value(c, w)) ||
		    gram_name(c, "name", v, &m->name))
			return -1;
	}
	if (!m->name)
		return gram_err(c, "missing \"name\"");
	return 0;
}

int gram_parse_addr(struct gram_cur *c, Dpsec__Request *req)
{
	static const char *both[2] = {"addr add", "addr del"};
	Dpsec__AddrChange *m = malloc(sizeof(*m));
	const char *w, *v;
	uint32_t seen = 0;
	bool add;

	c->cmd = "addr";
	if (!m)
		return gram_err(c, "out of memory");
	dpsec__addr_change__init(m);
	req->addr = m;
	req->body_case = DPSEC__REQUEST__BODY_ADDR;
	if (add_or_del(c, "addr", both, &add))
		return -1;
	m->add = add;
	w = gram_take(c);
	if (!w)
		return gram_err(c, "missing prefix");
	/* an interface address keeps its host bits: 10.1.0.1/24 */
	if (gram_prefix_msg(c, w, false, &m->prefix))
		return -1;
	while ((w = gram_take(c))) {
		if (strcmp(w, "dev"))
			return gram_unknown(c, w);
		if (gram_once(c, &seen, K_DEV, w) || !(v = gram_value(c, w)) ||
		    gram_name(c, "dev", v, &m->dev))
			return -1;
	}
	if (!m->dev)
		return gram_err(c, "missing \"dev\"");
	return 0;
}

int gram_parse_route(struct gram_cur *c, Dpsec__Request *req)
{
	static const char *both[2] = {"route add", "route del"};
	Dpsec__RouteChange *m = malloc(sizeof(*m));
	const char *w, *v, *dst;
	uint32_t seen = 0;
	bool add;

	c->cmd = "route";
	if (!m)
		return gram_err(c, "out of memory");
	dpsec__route_change__init(m);
	req->route = m;
	req->body_case = DPSEC__REQUEST__BODY_ROUTE;
	if (add_or_del(c, "route", both, &add))
		return -1;
	m->add = add;
	dst = gram_take(c);
	if (!dst)
		return gram_err(c, "missing prefix");
	if (strcmp(dst, "default") && gram_prefix_msg(c, dst, true, &m->dst))
		return -1;
	while ((w = gram_take(c))) {
		if (!strcmp(w, "via")) {
			if (gram_once(c, &seen, K_VIA, w) || !(v = gram_value(c, w)) ||
			    gram_addr_bin(c, w, v, &m->via))
				return -1;
			m->has_via = 1;
		} else if (!strcmp(w, "dev")) {
			if (gram_once(c, &seen, K_DEV, w) || !(v = gram_value(c, w)) ||
			    gram_name(c, "dev", v, &m->dev))
				return -1;
		} else if (!strcmp(w, "metric")) {
			if (gram_once(c, &seen, K_METRIC, w) || !(v = gram_value(c, w)) ||
			    gram_u32(c, w, v, 0, UINT32_MAX, &m->metric))
				return -1;
			m->has_metric = 1;
		} else {
			return gram_unknown(c, w);
		}
	}
	/* "default" takes the family of the gateway, so IPv6 defaults read naturally */
	if (!m->dst && gram_prefix_msg(c, m->has_via && m->via.len == 16 ? "::/0" : "0.0.0.0/0",
				       true, &m->dst))
		return -1;
	if (m->has_via && m->via.len != m->dst->addr.len)
		return gram_err(c, "via and prefix address families differ");
	if (add && !m->has_via && !m->dev)
		return gram_err(c, "needs \"via\" or \"dev\"");
	return 0;
}

int gram_parse_neigh(struct gram_cur *c, Dpsec__Request *req)
{
	static const char *both[2] = {"neigh add", "neigh del"};
	Dpsec__NeighChange *m = malloc(sizeof(*m));
	const char *w, *v;
	uint32_t seen = 0;
	bool add;

	c->cmd = "neigh";
	if (!m)
		return gram_err(c, "out of memory");
	dpsec__neigh_change__init(m);
	req->neigh = m;
	req->body_case = DPSEC__REQUEST__BODY_NEIGH;
	if (add_or_del(c, "neigh", both, &add))
		return -1;
	m->add = add;
	w = gram_take(c);
	if (!w)
		return gram_err(c, "missing address");
	if (gram_addr_bin(c, "neigh", w, &m->addr))
		return -1;
	while ((w = gram_take(c))) {
		if (!strcmp(w, "lladdr")) {
			if (gram_once(c, &seen, K_LLADDR, w) || !(v = gram_value(c, w)) ||
			    gram_mac(c, v, &m->lladdr))
				return -1;
			m->has_lladdr = 1;
		} else if (!strcmp(w, "dev")) {
			if (gram_once(c, &seen, K_DEV, w) || !(v = gram_value(c, w)) ||
			    gram_name(c, "dev", v, &m->dev))
				return -1;
		} else {
			return gram_unknown(c, w);
		}
	}
	if (add && !m->has_lladdr)
		return gram_err(c, "missing \"lladdr\"");
	if (!m->dev)
		return gram_err(c, "missing \"dev\"");
	return 0;
}
