/* SPDX-License-Identifier: BSD-3-Clause */
/* Request -> grammar line: the inverse of the parser, for echoing and logs. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "grammar_priv.h"

struct out {
	char *buf;
	size_t len, off;
	bool bad; /* malformed request or buffer too small */
	unsigned int flags;
};

static void __attribute__((format(printf, 2, 3))) put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->bad)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->buf + o->off, o->len - o->off, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->len - o->off)
		o->bad = true;
	else
		o->off += (size_t)n;
}

/* Names come from the wire too: printing a space or newline would forge words. */
static void put_name(struct out *o, const char *kw, const char *name)
{
	size_t i, n = name ? strlen(name) : 0;

	for (i = 0; i < n; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' && name[i] <= 'Z') ||
		      (name[i] >= '0' && name[i] <= '9') || name[i] == '_' || name[i] == '-'))
			break;
	if (n == 0 || n > GRAM_NAME_MAX || i < n)
		o->bad = true;
	else
		put(o, " %s %s", kw, name);
}

static void put_addr(struct out *o, const char *kw, const ProtobufCBinaryData *a)
{
	char b[INET6_ADDRSTRLEN];

	if (!a->data || (a->len != 4 && a->len != 16))
		o->bad = true;
	else
		put(o, "%s%s%s", kw, *kw ? " " : "", gram_addr_fmt(a, b, sizeof(b)));
}

static void put_prefix(struct out *o, const char *kw, const Dpsec__Prefix *p)
{
	char b[INET6_ADDRSTRLEN + 4];

	if (!p || !p->addr.data || (p->addr.len != 4 && p->addr.len != 16) ||
	    p->len > p->addr.len * 8)
		o->bad = true;
	else
		put(o, "%s%s%s", kw, *kw ? " " : "", gram_prefix_fmt(p, b, sizeof(b)));
}

static void put_key(struct out *o, const char *alg, const ProtobufCBinaryData *k, bool has)
{
	size_t i;

	if (!alg) {
		o->bad = true;
		return;
	}
	put(o, " %s", alg);
	if (!has)
		return;
	if (o->flags & GRAM_FMT_HIDE_KEYS) {
		put(o, " 0x(hidden)");
		return;
	}
	put(o, " 0x");
	for (i = 0; i < k->len && k->data; i++)
		put(o, "%02x", k->data[i]);
}

static const char *dir_name(Dpsec__Dir d)
{
	return d == DPSEC__DIR__DIR_IN ? "in" : d == DPSEC__DIR__DIR_OUT ? "out" : NULL;
}

static void put_dir(struct out *o, Dpsec__Dir d)
{
	if (!dir_name(d))
		o->bad = true;
	else
		put(o, " dir %s", dir_name(d));
}

static void put_proto(struct out *o, uint32_t proto)
{
	if (proto == GRAM_PROTO_ESP)
		put(o, " proto esp");
	else
		put(o, " proto %u", proto);
}

static void put_lifetime(struct out *o, const Dpsec__Lifetime *lt)
{
	const protobuf_c_boolean has[6] = {lt->has_soft_bytes,	 lt->has_soft_packets,
					   lt->has_soft_seconds, lt->has_hard_bytes,
					   lt->has_hard_packets, lt->has_hard_seconds};
	const uint64_t val[6] = {lt->soft_bytes, lt->soft_packets, lt->soft_seconds,
				 lt->hard_bytes, lt->hard_packets, lt->hard_seconds};
	static const char *const units[3] = {"bytes", "packets", "seconds"};
	int g, i;

	put(o, " lifetime");
	for (g = 0; g < 2; g++) {
		if (!has[3 * g] && !has[3 * g + 1] && !has[3 * g + 2])
			continue;
		put(o, g ? " hard" : " soft");
		for (i = 0; i < 3; i++)
			if (has[3 * g + i])
				put(o, " %s %llu", units[i], (unsigned long long)val[3 * g + i]);
	}
}

static void fmt_sa_add(struct out *o, const Dpsec__SaAdd *m)
{
	put_addr(o, "sa add src", &m->src);
	put_addr(o, " dst", &m->dst);
	put_proto(o, m->proto);
	put(o, " spi 0x%08x", m->spi);
	put_dir(o, m->dir);
	put(o, " mode %s", m->mode == DPSEC__MODE__MODE_TRANSPORT ? "transport" : "tunnel");
	if (m->has_aead) {
		put(o, " aead");
		put_key(o, gram_aead_name(m->aead), &m->enc_key, true);
	}
	if (m->has_cipher) {
		put(o, " enc");
		put_key(o, gram_cipher_name(m->cipher), &m->enc_key,
			m->cipher != DPSEC__CIPHER__CIPHER_NULL);
	}
	if (m->has_integ) {
		put(o, " auth");
		put_key(o, gram_integ_name(m->integ), &m->auth_key, true);
	}
	if (m->has_replay_window)
		put(o, " replay-window %u", m->replay_window);
	if (m->has_esn && m->esn)
		put(o, " esn");
	if (m->encap)
		put(o, " encap udp sport %u dport %u", m->encap->sport, m->encap->dport);
	if (m->lifetime)
		put_lifetime(o, m->lifetime);
	if (m->has_seq_out)
		put(o, " seq-out %llu", (unsigned long long)m->seq_out);
	if (m->has_reqid && m->reqid)
		put(o, " reqid %u", m->reqid);
	if (m->has_seq_limit)
		put(o, " seq-limit %llu", (unsigned long long)m->seq_limit);
	if (m->has_seq_in)
		put(o, " seq-in %llu", (unsigned long long)m->seq_in);
	if (m->owner)
		put(o, " owner %s", m->owner);
	if (m->has_replace && m->replace)
		put(o, " replace");
}

static void put_sa_id(struct out *o, const char *cmd, const Dpsec__SaId *m)
{
	if (!m) {
		o->bad = true;
		return;
	}
	put(o, "%s", cmd);
	put_addr(o, " dst", &m->dst);
	put_proto(o, m->proto);
	put(o, " spi 0x%08x", m->spi);
}

static void put_ports(struct out *o, const char *kw, bool has, uint32_t lo, uint32_t hi)
{
	if (!has)
		return;
	if (lo == hi)
		put(o, " %s %u", kw, lo);
	else
		put(o, " %s %u-%u", kw, lo, hi);
}

static void put_sel(struct out *o, const char *cmd, const Dpsec__Selector *s, Dpsec__Dir dir)
{
	const char *pn;

	if (!s) {
		o->bad = true;
		return;
	}
	put(o, "%s", cmd);
	put_prefix(o, " src", s->src);
	put_prefix(o, " dst", s->dst);
	if (s->has_proto && s->proto) {
		pn = gram_proto_name(s->proto);
		if (pn)
			put(o, " proto %s", pn);
		else
			put(o, " proto %u", s->proto);
	}
	put_ports(o, "sport", s->has_sport_lo, s->sport_lo,
		  s->has_sport_hi ? s->sport_hi : s->sport_lo);
	put_ports(o, "dport", s->has_dport_lo, s->dport_lo,
		  s->has_dport_hi ? s->dport_hi : s->dport_lo);
	put_dir(o, dir);
}

static void fmt_policy_add(struct out *o, const Dpsec__PolicyAdd *m)
{
	const char *an = gram_action_name(m->action);

	put_sel(o, "policy add", m->sel, m->dir);
	if (!an)
		o->bad = true;
	else
		put(o, " action %s", an);
	if (m->has_spi)
		put(o, " spi 0x%08x", m->spi);
	if (m->has_priority)
		put(o, " priority %u", m->priority);
	if (m->has_sa_dst)
		put_addr(o, " sa-dst", &m->sa_dst);
	if (m->owner)
		put(o, " owner %s", m->owner);
	if (m->has_replace && m->replace)
		put(o, " replace");
}

static void fmt_route(struct out *o, const Dpsec__RouteChange *m)
{
	put(o, "route %s ", m->add ? "add" : "del");
	put_prefix(o, "", m->dst);
	if (m->has_via)
		put_addr(o, " via", &m->via);
	if (m->dev)
		put_name(o, "dev", m->dev);
	if (m->has_metric)
		put(o, " metric %u", m->metric);
}

static void fmt_neigh(struct out *o, const Dpsec__NeighChange *m)
{
	const uint8_t *l = m->lladdr.data;

	put(o, "neigh %s ", m->add ? "add" : "del");
	put_addr(o, "", &m->addr);
	if (m->has_lladdr && (!l || m->lladdr.len != 6))
		o->bad = true;
	else if (m->has_lladdr)
		put(o, " lladdr %02x:%02x:%02x:%02x:%02x:%02x", l[0], l[1], l[2], l[3], l[4], l[5]);
	put_name(o, "dev", m->dev);
}

static void fmt_other(struct out *o, const Dpsec__Request *req)
{
	const Dpsec__SaUpdate *u;
	const Dpsec__SpiAlloc *a;
	const char *what;

	switch (req->body_case) {
	case DPSEC__REQUEST__BODY_SA_UPDATE:
		u = req->sa_update;
		put_sa_id(o, "sa update", u ? u->id : NULL);
		if (u && u->has_new_src)
			put_addr(o, " new-src", &u->new_src);
		if (u && u->has_new_dst)
			put_addr(o, " new-dst", &u->new_dst);
		if (u && u->new_encap)
			put(o, " encap udp sport %u dport %u", u->new_encap->sport,
			    u->new_encap->dport);
		break;
	case DPSEC__REQUEST__BODY_SA_QUERY:
		put_sa_id(o, "sa get", req->sa_query);
		break;
	case DPSEC__REQUEST__BODY_SPI_ALLOC:
		a = req->spi_alloc;
		if (!a) {
			o->bad = true;
			break;
		}
		put_addr(o, "spi alloc dst", &a->dst);
		put_proto(o, a->proto);
		if (a->has_min)
			put(o, " min 0x%08x", a->min);
		if (a->has_max)
			put(o, " max 0x%08x", a->max);
		break;
	case DPSEC__REQUEST__BODY_POLICY_QUERY:
		if (req->policy_query)
			put_sel(o, "policy get", req->policy_query->sel, req->policy_query->dir);
		else
			o->bad = true;
		break;
	case DPSEC__REQUEST__BODY_FLUSH:
		what = !req->flush					? NULL
		       : req->flush->what == DPSEC__FLUSH__WHAT__SA	? "sa"
		       : req->flush->what == DPSEC__FLUSH__WHAT__POLICY ? "policy"
									: NULL;
		if (what)
			put(o, "%s flush", what);
		else
			o->bad = true;
		if (what && req->flush->owner)
			put(o, " owner %s", req->flush->owner);
		break;
	case DPSEC__REQUEST__BODY_SA_LEASE:
		put_sa_id(o, "sa lease", req->sa_lease ? req->sa_lease->id : NULL);
		if (req->sa_lease)
			put(o, " seq-limit %llu", (unsigned long long)req->sa_lease->seq_limit);
		break;
	case DPSEC__REQUEST__BODY_SHOW:
		what = req->show ? gram_show_name(req->show->what) : NULL;
		if (what)
			put(o, "show %s", what);
		else
			o->bad = true;
		break;
	case DPSEC__REQUEST__BODY_SUBSCRIBE:
		put(o, "subscribe");
		break;
	default:
		o->bad = true;
	}
}

int gram_format_request_flags(const Dpsec__Request *req, char *buf, size_t len, unsigned int flags)
{
	struct out o = {.buf = buf, .len = len, .flags = flags};

	if (!buf || len == 0)
		return -1;
	buf[0] = '\0';
	if (!req)
		return -1;
	switch (req->body_case) {
	case DPSEC__REQUEST__BODY_PORT:
		if (!req->port) {
			o.bad = true;
			break;
		}
		put(&o, "port %u", req->port->port_id);
		put_name(&o, "name", req->port->name);
		break;
	case DPSEC__REQUEST__BODY_ADDR:
		if (!req->addr) {
			o.bad = true;
			break;
		}
		put(&o, "addr %s ", req->addr->add ? "add" : "del");
		put_prefix(&o, "", req->addr->prefix);
		put_name(&o, "dev", req->addr->dev);
		break;
	case DPSEC__REQUEST__BODY_ROUTE:
		if (req->route)
			fmt_route(&o, req->route);
		else
			o.bad = true;
		break;
	case DPSEC__REQUEST__BODY_NEIGH:
		if (req->neigh)
			fmt_neigh(&o, req->neigh);
		else
			o.bad = true;
		break;
	case DPSEC__REQUEST__BODY_SA_ADD:
		if (req->sa_add)
			fmt_sa_add(&o, req->sa_add);
		else
			o.bad = true;
		break;
	case DPSEC__REQUEST__BODY_SA_DEL:
		put_sa_id(&o, "sa del", req->sa_del);
		break;
	case DPSEC__REQUEST__BODY_POLICY_ADD:
		if (req->policy_add)
			fmt_policy_add(&o, req->policy_add);
		else
			o.bad = true;
		break;
	case DPSEC__REQUEST__BODY_POLICY_DEL:
		if (req->policy_del)
			put_sel(&o, "policy del", req->policy_del->sel, req->policy_del->dir);
		else
			o.bad = true;
		break;
	default:
		fmt_other(&o, req);
	}
	if (o.bad) {
		/* never hand back half a line (or half a key) */
		explicit_bzero(buf, o.off < len ? o.off : len);
		buf[0] = '\0';
		return -1;
	}
	return (int)o.off;
}

int gram_format_request(const Dpsec__Request *req, char *buf, size_t len)
{
	return gram_format_request_flags(req, buf, len, 0);
}
