/* SPDX-License-Identifier: BSD-3-Clause */
#include <netinet/in.h>
#include <sys/socket.h>

#include <rte_byteorder.h>
#include <rte_cycles.h>

#include "channel.h"
#include "lifetime.h"
#include "sad.h"

static void id_of(const struct sa *sa, Dpsec__SaId *id)
{
	dpsec__sa_id__init(id);
	id->dst = (ProtobufCBinaryData){.len = sa->family == AF_INET ? 4 : 16,
					.data = (uint8_t *)sa->dst};
	id->proto = sa->key.proto;
	id->spi = rte_be_to_cpu_32(sa->key.spi);
}

static void lease(const struct sa *sa, uint64_t seq_out, uint64_t seq_limit, void *arg)
{
	struct chan_server *srv = arg;
	Dpsec__SaId id;
	Dpsec__Lease l = DPSEC__LEASE__INIT;
	Dpsec__Event ev = DPSEC__EVENT__INIT;

	id_of(sa, &id);
	l.sa = &id;
	l.seq_out = seq_out;
	l.seq_limit = seq_limit;
	ev.body_case = DPSEC__EVENT__BODY_LEASE;
	ev.lease = &l;
	if (srv != NULL)
		chan_server_event(srv, &ev);
}

static void expire(const struct sa *sa, bool hard, void *arg)
{
	struct chan_server *srv = arg;
	Dpsec__SaId id;
	Dpsec__Expire ex = DPSEC__EXPIRE__INIT;
	Dpsec__Event ev = DPSEC__EVENT__INIT;

	id_of(sa, &id);
	ex.sa = &id;
	ex.hard = hard;
	ev.body_case = DPSEC__EVENT__BODY_EXPIRE;
	ev.expire = &ex;
	if (srv != NULL)
		chan_server_event(srv, &ev);
}

void lifetime_tick(struct chan_server *srv)
{
	static uint64_t next;
	uint64_t now = rte_get_timer_cycles();

	if (now < next)
		return;
	next = now + rte_get_timer_hz() * LIFETIME_PERIOD_MS / 1000;
	sad_check_lifetimes(now, expire, lease, srv);
	/* Deleted SAs whose grace period is over go back to the allocator. */
	sad_reclaim();
}
