/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <string.h>

#include <stdlib.h>
#include <sys/random.h>
#include <sys/socket.h>

#include <rte_byteorder.h>

#include "apply.h"
#include "channel.h"
#include "grammar.h"
#include "netlink.h"
#include "port.h"
#include "sad.h"
#include "spd.h"

bool apply_running;

static Dpsec__Code code_of(int rc)
{
	switch (-rc) {
	case EEXIST:
		return DPSEC__CODE__EEXIST;
	case ENOENT:
	case ESRCH:
	case EADDRNOTAVAIL:
		return DPSEC__CODE__ENOENT;
	case ENOSPC:
	case ENOBUFS:
		return DPSEC__CODE__ENOSPC;
	case EOPNOTSUPP:
		return DPSEC__CODE__ENOTSUP;
	case EINVAL:
	case ENETUNREACH:
	case EHOSTUNREACH:
	case ERANGE:
		return DPSEC__CODE__EINVAL;
	default:
		return DPSEC__CODE__EINTERNAL;
	}
}

/* The TAP behind a port name, or an error reply. */
static int dev_ifindex(const char *dev, Dpsec__Reply *rep)
{
	int p = dev != NULL ? port_by_name(dev) : -1;

	if (p < 0) {
		chan_reply_error(rep, DPSEC__CODE__ENOENT, "no port named \"%s\"",
				 dev != NULL ? dev : "");
		return -1;
	}
	return ports[p].tap_ifindex;
}

static bool addr_ok(const ProtobufCBinaryData *a, Dpsec__Reply *rep, const char *what)
{
	if (a->len == 4 || a->len == 16)
		return true;
	chan_reply_error(rep, DPSEC__CODE__EINVAL, "%s: address of %zu bytes", what, a->len);
	return false;
}

/* Kernel changes come back through the netlink mirror; wait for them so the
 * reply means "applied", not "asked". */
static void kernel_result(int rc, const char *err, Dpsec__Reply *rep)
{
	if (rc < 0)
		chan_reply_error(rep, code_of(rc), "%s", err);
	else
		nl_process();
}

static void apply_port(const Dpsec__PortSet *m, Dpsec__Reply *rep)
{
	char err[256];
	int rc;

	if (apply_running) {
		chan_reply_error(rep, DPSEC__CODE__ENOTSUP,
				 "ports are set in the config file, before the dataplane starts");
		return;
	}
	if (m->port_id >= PORT_MAX) {
		chan_reply_error(rep, DPSEC__CODE__EINVAL, "port %u out of range", m->port_id);
		return;
	}
	rc = port_configure(m->port_id, m->name, err, sizeof(err));
	if (rc < 0)
		chan_reply_error(rep, code_of(rc), "%s", err);
}

static void apply_addr(const Dpsec__AddrChange *m, Dpsec__Reply *rep)
{
	char err[256];
	int ifindex;

	if (m->prefix == NULL || !addr_ok(&m->prefix->addr, rep, "addr"))
		return;
	ifindex = dev_ifindex(m->dev, rep);
	if (ifindex < 0)
		return;
	kernel_result(nl_addr(m->add, ifindex, m->prefix->addr.data, m->prefix->addr.len,
			      m->prefix->len, err, sizeof(err)),
		      err, rep);
}

static void apply_route(const Dpsec__RouteChange *m, Dpsec__Reply *rep)
{
	char err[256];
	int ifindex = 0;

	if (m->dst == NULL || !addr_ok(&m->dst->addr, rep, "route"))
		return;
	if (m->has_via && m->via.len != m->dst->addr.len) {
		chan_reply_error(rep, DPSEC__CODE__EINVAL,
				 "route: via and prefix differ in family");
		return;
	}
	/* Without dev the kernel picks the TAP from the gateway's connected route. */
	if (m->dev != NULL && (ifindex = dev_ifindex(m->dev, rep)) < 0)
		return;
	kernel_result(nl_route(m->add, ifindex, m->dst->addr.data, m->dst->addr.len, m->dst->len,
			       m->has_via ? m->via.data : NULL, m->has_metric ? m->metric : 0, err,
			       sizeof(err)),
		      err, rep);
}

static void apply_neigh(const Dpsec__NeighChange *m, Dpsec__Reply *rep)
{
	char err[256];
	int ifindex;

	if (!addr_ok(&m->addr, rep, "neigh"))
		return;
	if (m->add && (!m->has_lladdr || m->lladdr.len != 6)) {
		chan_reply_error(rep, DPSEC__CODE__EINVAL, "neigh add: lladdr must be 6 bytes");
		return;
	}
	ifindex = dev_ifindex(m->dev, rep);
	if (ifindex < 0)
		return;
	kernel_result(nl_neigh(m->add, ifindex, m->addr.data, m->addr.len,
			       m->add ? m->lladdr.data : NULL, err, sizeof(err)),
		      err, rep);
}

/* Every library call below reports 0 or -errno with a reason in @err. */
static void result(int rc, const char *err, Dpsec__Reply *rep)
{
	if (rc < 0)
		chan_reply_error(rep, code_of(rc), "%s", err);
}

void *apply_msg_clone(const ProtobufCMessage *m)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(len ? len : 1);
	ProtobufCMessage *out = NULL;

	if (buf == NULL)
		return NULL;
	protobuf_c_message_pack(m, buf);
	out = protobuf_c_message_unpack(m->descriptor, NULL, len, buf);
	free(buf);
	return out;
}

static void apply_sa_query(const Dpsec__SaId *id, Dpsec__Reply *rep)
{
	Dpsec__SaInfo *info, *copy;
	char err[256];
	int rc = sad_query(id, &info, err, sizeof(err));

	if (rc < 0) {
		result(rc, err, rep);
		return;
	}
	/* The SAD builds an SaInfo in one blob; replies are freed field by field. */
	copy = apply_msg_clone(&info->base);
	free(info);
	rep->sas = malloc(sizeof(*rep->sas));
	if (copy == NULL || rep->sas == NULL) {
		if (copy != NULL)
			dpsec__sa_info__free_unpacked(copy, NULL);
		chan_reply_error(rep, DPSEC__CODE__EINTERNAL, "out of memory");
		return;
	}
	rep->sas[0] = copy;
	rep->n_sas = 1;
}

static void apply_policy_query(const Dpsec__PolicyDel *p, Dpsec__Reply *rep)
{
	Dpsec__PolicyInfo *info;
	char err[256];
	int rc = spd_query(p, &info, err, sizeof(err));

	if (rc < 0) {
		result(rc, err, rep);
		return;
	}
	rep->policies = malloc(sizeof(*rep->policies));
	if (rep->policies == NULL) {
		dpsec__policy_info__free_unpacked(info, NULL);
		chan_reply_error(rep, DPSEC__CODE__EINTERNAL, "out of memory");
		return;
	}
	rep->policies[0] = info;
	rep->n_policies = 1;
}

/* An SPI unused by any SA to @dst; IKE picks its inbound SPIs here. */
static void apply_spi_alloc(const Dpsec__SpiAlloc *m, Dpsec__Reply *rep)
{
	uint32_t lo = m->has_min ? m->min : 0x100, hi = m->has_max ? m->max : 0xffffffff;
	Dpsec__SaId id = DPSEC__SA_ID__INIT;

	if (!addr_ok(&m->dst, rep, "spi alloc"))
		return;
	if (lo < 0x100 || lo > hi) {
		chan_reply_error(rep, DPSEC__CODE__EINVAL, "spi alloc: bad range 0x%x-0x%x", lo,
				 hi);
		return;
	}
	id.dst = m->dst;
	id.proto = m->proto;
	for (int tries = 0; tries < 1000; tries++) {
		uint32_t r;

		if (getrandom(&r, sizeof(r), 0) != sizeof(r))
			break;
		id.spi = lo + (uint32_t)((uint64_t)r % ((uint64_t)hi - lo + 1));
		if (sad_find(&id) == NULL) {
			rep->has_spi = true;
			rep->spi = id.spi;
			return;
		}
	}
	chan_reply_error(rep, DPSEC__CODE__ENOSPC, "spi alloc: no free SPI in 0x%x-0x%x", lo, hi);
}

static void apply_flush(const Dpsec__Flush *f, Dpsec__Reply *rep)
{
	char err[256];
	int rc;

	if (f->what == DPSEC__FLUSH__WHAT__SA) {
		sad_flush(f->owner);
	} else if (f->what == DPSEC__FLUSH__WHAT__POLICY) {
		rc = spd_flush(f->owner, err, sizeof(err));
		if (rc != 0)
			chan_reply_error(rep, code_of(rc), "policy flush: %s", err);
	} else {
		chan_reply_error(rep, DPSEC__CODE__EINVAL, "flush: unknown table %d", f->what);
	}
}

void apply_request(const Dpsec__Request *req, Dpsec__Reply *rep, void *ctx)
{
	char err[512];

	(void)ctx;
	switch (req->body_case) {
	case DPSEC__REQUEST__BODY_PORT:
		apply_port(req->port, rep);
		break;
	case DPSEC__REQUEST__BODY_ADDR:
		apply_addr(req->addr, rep);
		break;
	case DPSEC__REQUEST__BODY_ROUTE:
		apply_route(req->route, rep);
		break;
	case DPSEC__REQUEST__BODY_NEIGH:
		apply_neigh(req->neigh, rep);
		break;
	case DPSEC__REQUEST__BODY_SHOW:
		show_reply(req->show, rep);
		break;
	case DPSEC__REQUEST__BODY_SA_ADD:
		result(sad_add(req->sa_add, err, sizeof(err)), err, rep);
		break;
	case DPSEC__REQUEST__BODY_SA_DEL:
		result(sad_del(req->sa_del, err, sizeof(err)), err, rep);
		break;
	case DPSEC__REQUEST__BODY_SA_QUERY:
		apply_sa_query(req->sa_query, rep);
		break;
	case DPSEC__REQUEST__BODY_SA_UPDATE:
		result(sad_update(req->sa_update, err, sizeof(err)), err, rep);
		break;
	case DPSEC__REQUEST__BODY_SA_LEASE:
		result(sad_lease(req->sa_lease, err, sizeof(err)), err, rep);
		break;
	case DPSEC__REQUEST__BODY_SPI_ALLOC:
		apply_spi_alloc(req->spi_alloc, rep);
		break;
	case DPSEC__REQUEST__BODY_POLICY_ADD:
		result(spd_add(req->policy_add, err, sizeof(err)), err, rep);
		break;
	case DPSEC__REQUEST__BODY_POLICY_DEL:
		result(spd_del(req->policy_del, err, sizeof(err)), err, rep);
		break;
	case DPSEC__REQUEST__BODY_POLICY_QUERY:
		apply_policy_query(req->policy_query, rep);
		break;
	case DPSEC__REQUEST__BODY_FLUSH:
		apply_flush(req->flush, rep);
		break;
	default:
		chan_reply_error(rep, DPSEC__CODE__EBADMSG, "request %u has no known body",
				 (unsigned)req->body_case);
		break;
	}
}

/*
 * Protect policies cache a pointer to their SA. A policy added after its SA
 * looks it up; an SA added, replaced or deleted repoints its policies before
 * the SAD retires the old record.
 */
static void *resolve_sa(int dir, uint32_t spi, const uint8_t *sa_dst, size_t sa_len)
{
	return sad_find_spi(dir == DPSEC__DIR__DIR_IN, spi, sa_dst, sa_len);
}

static void rebind_sa(const struct sa *old, struct sa *sa)
{
	const struct sa *s = sa != NULL ? sa : old;
	int dir = s->inbound ? DPSEC__DIR__DIR_IN : DPSEC__DIR__DIR_OUT;

	if (old != NULL)
		spd_replace_sa(old, sa);
	if (sa != NULL)
		spd_bind_sa(dir, rte_be_to_cpu_32(sa->key.spi), sa->dst,
			    sa->family == AF_INET ? 4 : 16, sa);
}

void apply_bind_init(void)
{
	spd_set_sa_resolver(resolve_sa);
	sad_set_rebind(rebind_sa);
}
