/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <string.h>

#include "apply.h"
#include "channel.h"
#include "grammar.h"
#include "netlink.h"
#include "port.h"

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
		chan_reply_error(rep, DPSEC__CODE__EINVAL, "route: via and prefix differ in family");
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

void apply_request(const Dpsec__Request *req, Dpsec__Reply *rep, void *ctx)
{
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
	case DPSEC__REQUEST__BODY_SA_DEL:
	case DPSEC__REQUEST__BODY_SA_UPDATE:
	case DPSEC__REQUEST__BODY_SA_QUERY:
	case DPSEC__REQUEST__BODY_SPI_ALLOC:
	case DPSEC__REQUEST__BODY_POLICY_ADD:
	case DPSEC__REQUEST__BODY_POLICY_DEL:
	case DPSEC__REQUEST__BODY_POLICY_QUERY:
	case DPSEC__REQUEST__BODY_FLUSH:
		chan_reply_error(rep, DPSEC__CODE__ENOTSUP,
				 "SAs and policies are not supported by this dataplane yet");
		break;
	default:
		chan_reply_error(rep, DPSEC__CODE__EBADMSG, "request %u has no known body",
				 (unsigned)req->body_case);
		break;
	}
}
