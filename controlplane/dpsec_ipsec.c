/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * kernel_ipsec_t over the dpsec control channel (see dpsec_ipsec.h).
 *
 * Two channel clients: one for requests, used by charon's threads one at a
 * time under the mutex (the client is not thread-safe and the dataplane must
 * see our changes in order), and one owned by the event thread, which is
 * subscribed to events and doubles as the liveness probe: its periodic
 * Subscribe is answered with the dataplane's epoch, so a restarted dataplane
 * is noticed even while charon is idle.
 *
 * Every change goes to the shadow as well. Whenever the dataplane we talk to
 * is not known to hold the shadow (first contact, new epoch, a request that
 * got no answer), it is flushed and given the whole shadow again before
 * anything else.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <time.h>

#include <daemon.h>
#include <threading/mutex.h>
#include <threading/thread.h>
#include <utils/debug.h>

#include "channel.h"
#include "dpsec_ipsec.h"
#include "dpsec_shadow.h"

#define DEFAULT_TIMEOUT_MS   2000
#define DEFAULT_HEARTBEAT_MS 250
#define DEFAULT_SEQ_POLL_MS  1000
/*
 * Outbound sequence leases: the dataplane never sends a number the shadow has
 * not recorded, so a re-install never reuses one (for AES-GCM, a nonce).
 * A lease covers a few seconds of the SA's traffic and is renewed at half.
 */
#define DEFAULT_LEASE_MIN (1 << 20)
#define DEFAULT_LEASE_S	  4
/* What an SA's records carry so flushes and sweeps leave the operator's alone. */
#define OWNER "ike"
/* How long the event thread waits for an event before its own timers run. */
#define EVENT_WAIT_MS 100
/* Reminder while the dataplane stays away. */
#define UNREACHABLE_LOG_S 5
/* A dataplane restarting again and again while we resync: give up for now. */
#define RESYNC_ROUNDS	3
#define SPI_ALLOC_TRIES 16
/* Inbound SPIs in the range kernel-netlink uses, so operators recognise them. */
#define SPI_MIN_DEFAULT 0xc0000000
#define SPI_MAX_DEFAULT 0xcfffffff
#define SPI_MIN_VALID	0x100
#define ERR_LEN		256

/* Dataplane priorities (lower wins) for charon's policy classes, as kernel-netlink
 * orders them: bypass/drop before IPsec before trap before fallback. */
#define DP_PRIO_PASS	 500
#define DP_PRIO_DEFAULT	 1000
#define DP_PRIO_ROUTED	 1500
#define DP_PRIO_FALLBACK 3000

#define PORT_ANY_HI	0xffff
#define NON_ESN_SEQ_MAX (UINT32_MAX - 1)

typedef struct private_dpsec_ipsec_t private_dpsec_ipsec_t;

struct private_dpsec_ipsec_t {
	dpsec_ipsec_t public;
	/* guards req, shadow and the connection state below */
	mutex_t *mutex;
	struct chan_client *req;
	dpsec_shadow_t *shadow;
	/* epoch of the dataplane that holds the shadow (0: none yet) */
	uint64_t epoch;
	/* the dataplane at @epoch holds the whole shadow */
	bool synced;
	/* FALSE after a request went unanswered, until a probe gets a reply */
	bool reachable;
	time_t down_logged;

	/* event thread */
	struct chan_client *events;
	thread_t *thread;
	volatile bool running;

	char *endpoint;
	int timeout_ms;
	int heartbeat_ms;
	int seq_poll_ms;
	uint64_t lease_min;
	uint64_t lease_s;
	uint32_t spi_min, spi_max;
};

typedef enum {
	ROUND_OK,
	ROUND_DOWN,
	ROUND_NEW_EPOCH,
} round_t;

/* ---- conversions ---- */

static ProtobufCBinaryData host_bytes(host_t *h)
{
	chunk_t c = h->get_address(h);

	return (ProtobufCBinaryData){.len = c.len, .data = c.ptr};
}

static host_t *bytes_host(const ProtobufCBinaryData *b, uint16_t port)
{
	int family = b->len == 4 ? AF_INET : b->len == 16 ? AF_INET6 : AF_UNSPEC;

	if (family == AF_UNSPEC)
		return NULL;
	return host_create_from_chunk(family, chunk_create(b->data, b->len), port);
}

/* The dataplane reports unix seconds; charon compares with time_monotonic(). */
static time_t to_monotonic(uint64_t unix_s)
{
	time_t now = time(NULL), mono = time_monotonic(NULL);

	if (!unix_s)
		return 0;
	if ((time_t)unix_s >= now)
		return mono;
	return mono - (now - (time_t)unix_s);
}

static bool map_enc(uint16_t alg, size_t key_len, Dpsec__SaAdd *sa)
{
	switch (alg) {
	case ENCR_AES_GCM_ICV16:
		if (key_len != 16 + 4 && key_len != 32 + 4)
			return FALSE;
		sa->has_aead = TRUE;
		sa->aead = key_len == 20 ? DPSEC__AEAD__AES_GCM_128 : DPSEC__AEAD__AES_GCM_256;
		return TRUE;
	case ENCR_CHACHA20_POLY1305:
		if (key_len != 32 + 4)
			return FALSE;
		sa->has_aead = TRUE;
		sa->aead = DPSEC__AEAD__CHACHA20_POLY1305;
		return TRUE;
	case ENCR_AES_CBC:
		if (key_len != 16 && key_len != 32)
			return FALSE;
		sa->has_cipher = TRUE;
		sa->cipher =
		    key_len == 16 ? DPSEC__CIPHER__AES_CBC_128 : DPSEC__CIPHER__AES_CBC_256;
		return TRUE;
	case ENCR_AES_CTR:
		if (key_len != 16 + 4)
			return FALSE;
		sa->has_cipher = TRUE;
		sa->cipher = DPSEC__CIPHER__AES_CTR_128;
		return TRUE;
	case ENCR_NULL:
		sa->has_cipher = TRUE;
		sa->cipher = DPSEC__CIPHER__CIPHER_NULL;
		return key_len == 0;
	default:
		return FALSE;
	}
}

static bool map_integ(uint16_t alg, Dpsec__SaAdd *sa)
{
	static const struct {
		uint16_t alg;
		Dpsec__Integ integ;
	} map[] = {
	    {AUTH_HMAC_SHA1_96, DPSEC__INTEG__HMAC_SHA1_96},
	    {AUTH_HMAC_SHA2_256_128, DPSEC__INTEG__HMAC_SHA256_128},
	    {AUTH_HMAC_SHA2_384_192, DPSEC__INTEG__HMAC_SHA384_192},
	    {AUTH_HMAC_SHA2_512_256, DPSEC__INTEG__HMAC_SHA512_256},
	    {AUTH_HMAC_MD5_96, DPSEC__INTEG__HMAC_MD5_96},
	};

	for (size_t i = 0; i < countof(map); i++) {
		if (map[i].alg == alg) {
			sa->has_integ = TRUE;
			sa->integ = map[i].integ;
			return TRUE;
		}
	}
	return FALSE;
}

/* Storage for one selector built from charon's traffic selectors. */
typedef struct {
	Dpsec__Selector sel;
	Dpsec__Prefix src, dst;
	uint8_t sbuf[16], dbuf[16];
} selector_buf_t;

static bool ts_prefix(traffic_selector_t *ts, Dpsec__Prefix *p, uint8_t *buf)
{
	host_t *net = NULL;
	uint8_t mask;
	chunk_t a;

	ts->to_subnet(ts, &net, &mask);
	if (!net)
		return FALSE;
	a = net->get_address(net);
	memcpy(buf, a.ptr, a.len);
	p->addr = (ProtobufCBinaryData){.len = a.len, .data = buf};
	p->len = mask;
	net->destroy(net);
	return TRUE;
}

static bool ports_matter(uint8_t proto)
{
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP;
}

static bool selector_build(traffic_selector_t *src_ts, traffic_selector_t *dst_ts,
			   selector_buf_t *b)
{
	/* either side may say "any protocol": the narrower one counts */
	uint8_t proto = max(src_ts->get_protocol(src_ts), dst_ts->get_protocol(dst_ts));

	dpsec__selector__init(&b->sel);
	dpsec__prefix__init(&b->src);
	dpsec__prefix__init(&b->dst);
	if (src_ts->get_type(src_ts) != dst_ts->get_type(dst_ts) ||
	    !ts_prefix(src_ts, &b->src, b->sbuf) || !ts_prefix(dst_ts, &b->dst, b->dbuf))
		return FALSE;
	b->sel.src = &b->src;
	b->sel.dst = &b->dst;
	if (proto) {
		b->sel.has_proto = TRUE;
		b->sel.proto = proto;
	}
	/* ICMP type/code ride in the port fields; the dataplane matches ports of
	 * TCP/UDP/SCTP only, so such selectors cover all of the protocol. */
	if (ports_matter(proto) &&
	    (src_ts->get_from_port(src_ts) != 0 || src_ts->get_to_port(src_ts) != PORT_ANY_HI)) {
		b->sel.has_sport_lo = b->sel.has_sport_hi = TRUE;
		b->sel.sport_lo = src_ts->get_from_port(src_ts);
		b->sel.sport_hi = src_ts->get_to_port(src_ts);
	}
	if (ports_matter(proto) &&
	    (dst_ts->get_from_port(dst_ts) != 0 || dst_ts->get_to_port(dst_ts) != PORT_ANY_HI)) {
		b->sel.has_dport_lo = b->sel.has_dport_hi = TRUE;
		b->sel.dport_lo = dst_ts->get_from_port(dst_ts);
		b->sel.dport_hi = dst_ts->get_to_port(dst_ts);
	}
	return TRUE;
}

static uint32_t dp_priority(kernel_ipsec_manage_policy_t *data)
{
	if (data->manual_prio)
		return data->manual_prio;
	switch (data->prio) {
	case POLICY_PRIORITY_PASS:
		return DP_PRIO_PASS;
	case POLICY_PRIORITY_ROUTED:
		return DP_PRIO_ROUTED;
	case POLICY_PRIORITY_FALLBACK:
		return DP_PRIO_FALLBACK;
	default:
		return DP_PRIO_DEFAULT;
	}
}

/*
 * A binding's place among a policy's bindings: its dataplane priority, then
 * charon's class (an installed SA before a trap before a fallback), so equal
 * manual priorities never let a newer trap displace an active SA.
 */
static uint64_t binding_rank(kernel_ipsec_manage_policy_t *data, uint32_t dp_prio)
{
	unsigned cls;

	switch (data->prio) {
	case POLICY_PRIORITY_PASS:
		cls = 0;
		break;
	case POLICY_PRIORITY_ROUTED:
		cls = 2;
		break;
	case POLICY_PRIORITY_FALLBACK:
		cls = 3;
		break;
	default:
		cls = 1;
		break;
	}
	return (uint64_t)dp_prio << 2 | cls;
}

static void sa_id_fill(Dpsec__SaId *out, kernel_ipsec_sa_id_t *id)
{
	dpsec__sa_id__init(out);
	out->dst = host_bytes(id->dst);
	out->proto = id->proto;
	out->spi = ntohl(id->spi);
}

/* ---- talking to the dataplane (mutex held) ---- */

static void went_down(private_dpsec_ipsec_t *this, const char *why)
{
	this->synced = FALSE;
	if (this->reachable) {
		DBG1(DBG_KNL,
		     "dpsec: dataplane at %s unreachable (%s); retrying, "
		     "changes are kept and installed when it is back",
		     this->endpoint, why);
		this->down_logged = time_monotonic(NULL);
	}
	this->reachable = FALSE;
}

/* One request, one reply; FALSE if none came (the request is then dropped, so
 * a dataplane that comes back never sees it out of order). */
static bool roundtrip(private_dpsec_ipsec_t *this, Dpsec__Request *req, Dpsec__Reply **rep)
{
	char err[ERR_LEN];

	if (!this->req) {
		this->req = chan_client_open(this->endpoint, err, sizeof(err));
		if (!this->req) {
			went_down(this, err);
			return FALSE;
		}
	}
	if (chan_client_call(this->req, req, rep, this->timeout_ms, err, sizeof(err)) < 0) {
		chan_client_close(this->req);
		this->req = NULL;
		went_down(this, err);
		return FALSE;
	}
	if ((*rep)->code == DPSEC__CODE__EBUSY) {
		went_down(this, (*rep)->reason ? (*rep)->reason : "dataplane is starting");
		chan_reply_free(*rep);
		*rep = NULL;
		return FALSE;
	}
	return TRUE;
}

static const char *reason(const Dpsec__Reply *rep)
{
	return rep->reason ? rep->reason : "";
}

/*
 * A request during resync. @epoch: the dataplane's, learnt from the first
 * reply; a different one later means it restarted under us. ROUND_OK also
 * when the dataplane refused the request (logged, unless @quiet says why).
 */
static round_t resync_one(private_dpsec_ipsec_t *this, Dpsec__Request *req, uint64_t *epoch,
			  const char *what, Dpsec__Code quiet)
{
	Dpsec__Reply *rep;
	round_t r = ROUND_OK;

	if (!roundtrip(this, req, &rep))
		return ROUND_DOWN;
	if (*epoch && rep->epoch != *epoch)
		r = ROUND_NEW_EPOCH;
	else if (rep->code != DPSEC__CODE__OK && rep->code != quiet)
		DBG1(DBG_KNL, "dpsec: resync: dataplane refused %s: %s: %s", what,
		     chan_code_name(rep->code), reason(rep));
	*epoch = rep->epoch;
	chan_reply_free(rep);
	return r;
}

/* Everything an earlier dpsec-ike installed (never the operator's own entries). */
static round_t flush(private_dpsec_ipsec_t *this, Dpsec__Flush__What what, uint64_t *epoch)
{
	Dpsec__Request req = DPSEC__REQUEST__INIT;
	Dpsec__Flush f = DPSEC__FLUSH__INIT;

	f.what = what;
	f.owner = (char *)OWNER;
	req.body_case = DPSEC__REQUEST__BODY_FLUSH;
	req.flush = &f;
	return resync_one(this, &req, epoch, "flush", DPSEC__CODE__OK);
}

static uint64_t remaining(uint64_t limit, uint64_t used)
{
	/* 0 is "no limit" on the wire; a spent limit must still fire */
	return limit > used ? limit - used : 1;
}

static uint64_t seq_cap(const Dpsec__SaAdd *r, uint64_t seq)
{
	return !(r->has_esn && r->esn) && seq > NON_ESN_SEQ_MAX ? NON_ESN_SEQ_MAX : seq;
}

/* The next lease's length: a few seconds of the SA's traffic, at least the minimum. */
static uint64_t lease_len(private_dpsec_ipsec_t *this, const dpsec_shadow_sa_t *s)
{
	uint64_t len = s->rate * this->lease_s;

	return len > this->lease_min ? len : this->lease_min;
}

/* The SA as it must be re-installed now: lifetimes minus what was used, outbound
 * sequence numbers past anything it may have sent, inbound ones past anything
 * it accepted. Free with dpsec_sa_req_free(). */
static Dpsec__SaAdd *resync_request(private_dpsec_ipsec_t *this, dpsec_shadow_sa_t *s)
{
	Dpsec__SaAdd *r = dpsec_msg_clone(&s->req->base);
	uint64_t elapsed = (uint64_t)(time_monotonic(NULL) - s->added);
	Dpsec__Lifetime *lt;

	/* this dataplane counts from zero again */
	s->base_bytes += s->bytes;
	s->base_packets += s->packets;
	s->bytes = s->packets = 0;

	if (r->dir == DPSEC__DIR__DIR_OUT) {
		/* whatever the old dataplane sent stayed within the recorded lease */
		uint64_t seq = s->installed ? s->seq_lease : s->seq_out;

		if (!(r->has_esn && r->esn) && seq >= NON_ESN_SEQ_MAX) {
			DBG1(DBG_KNL,
			     "dpsec: SA 0x%08x: sequence numbers nearly exhausted "
			     "after resync; it expires at once",
			     r->spi);
			seq = NON_ESN_SEQ_MAX;
		}
		r->has_seq_out = TRUE;
		r->seq_out = seq;
		s->seq_out = seq;
		/* recorded before the dataplane may use it */
		s->seq_lease = seq_cap(r, seq + lease_len(this, s));
		s->req->has_seq_limit = r->has_seq_limit = TRUE;
		s->req->seq_limit = r->seq_limit = s->seq_lease;
	} else if (s->seq_in) {
		r->has_seq_in = TRUE;
		r->seq_in = s->seq_in;
	}
	lt = r->lifetime;
	if (lt) {
		if (s->soft_expired) {
			lt->has_soft_bytes = lt->has_soft_packets = lt->has_soft_seconds = FALSE;
		}
		if (lt->has_soft_seconds && lt->soft_seconds)
			lt->soft_seconds = remaining(lt->soft_seconds, elapsed);
		if (lt->has_hard_seconds && lt->hard_seconds)
			lt->hard_seconds = remaining(lt->hard_seconds, elapsed);
		if (lt->has_soft_bytes && lt->soft_bytes)
			lt->soft_bytes = remaining(lt->soft_bytes, s->base_bytes);
		if (lt->has_hard_bytes && lt->hard_bytes)
			lt->hard_bytes = remaining(lt->hard_bytes, s->base_bytes);
		if (lt->has_soft_packets && lt->soft_packets)
			lt->soft_packets = remaining(lt->soft_packets, s->base_packets);
		if (lt->has_hard_packets && lt->hard_packets)
			lt->hard_packets = remaining(lt->hard_packets, s->base_packets);
	}
	return r;
}

/*
 * Every SA of the shadow the dataplane does not hold. In a dataplane that held
 * our state before (a resync after a lost reply, same epoch) one it still has
 * is left alone: re-adding it would restart its replay window and counters.
 */
static round_t resync_sas(private_dpsec_ipsec_t *this, uint64_t *epoch, bool fresh)
{
	enumerator_t *enumerator;
	dpsec_shadow_sa_t *s;
	round_t r = ROUND_OK;

	enumerator = this->shadow->create_sa_enumerator(this->shadow);
	while (r == ROUND_OK && enumerator->enumerate(enumerator, &s)) {
		Dpsec__Request req = DPSEC__REQUEST__INIT;
		Dpsec__Reply *rep;
		Dpsec__SaId id = DPSEC__SA_ID__INIT;
		char what[64];

		id.dst = s->req->dst;
		id.proto = s->req->proto;
		id.spi = s->req->spi;
		req.body_case = DPSEC__REQUEST__BODY_SA_QUERY;
		req.sa_query = &id;
		if (!fresh) {
			if (!roundtrip(this, &req, &rep)) {
				r = ROUND_DOWN;
				break;
			}
			if (*epoch && rep->epoch != *epoch)
				r = ROUND_NEW_EPOCH;
			*epoch = rep->epoch;
			if (rep->code == DPSEC__CODE__OK) {
				chan_reply_free(rep);
				s->installed = TRUE;
				continue;
			}
			chan_reply_free(rep);
			if (r != ROUND_OK)
				break;
		}
		req = (Dpsec__Request)DPSEC__REQUEST__INIT;
		req.body_case = DPSEC__REQUEST__BODY_SA_ADD;
		req.sa_add = resync_request(this, s);
		snprintf(what, sizeof(what), "SA 0x%08x", s->req->spi);
		r = resync_one(this, &req, epoch, what, DPSEC__CODE__OK);
		dpsec_sa_req_free(req.sa_add);
		s->installed = TRUE;
	}
	enumerator->destroy(enumerator);
	return r;
}

/* Every policy's head binding, replacing what the entry holds: never a moment
 * without one. */
static round_t resync_policies(private_dpsec_ipsec_t *this, uint64_t *epoch)
{
	enumerator_t *enumerator;
	dpsec_shadow_policy_t *p;
	dpsec_shadow_binding_t *b;
	round_t r = ROUND_OK;

	enumerator = this->shadow->create_policy_enumerator(this->shadow);
	while (r == ROUND_OK && enumerator->enumerate(enumerator, &p)) {
		Dpsec__Request req = DPSEC__REQUEST__INIT;

		if (p->bindings->get_first(p->bindings, (void **)&b) != SUCCESS)
			continue;
		req.body_case = DPSEC__REQUEST__BODY_POLICY_ADD;
		req.policy_add = b->req;
		r = resync_one(this, &req, epoch, "policy", DPSEC__CODE__OK);
	}
	enumerator->destroy(enumerator);
	return r;
}

static Dpsec__Reply *show(private_dpsec_ipsec_t *this, Dpsec__Show__What what, uint64_t *epoch,
			  round_t *r)
{
	Dpsec__Request req = DPSEC__REQUEST__INIT;
	Dpsec__Show sh = DPSEC__SHOW__INIT;
	Dpsec__Reply *rep;

	sh.what = what;
	req.body_case = DPSEC__REQUEST__BODY_SHOW;
	req.show = &sh;
	if (!roundtrip(this, &req, &rep)) {
		*r = ROUND_DOWN;
		return NULL;
	}
	if (*epoch && rep->epoch != *epoch)
		*r = ROUND_NEW_EPOCH;
	*epoch = rep->epoch;
	if (*r == ROUND_OK && rep->code == DPSEC__CODE__OK)
		return rep;
	if (rep->code != DPSEC__CODE__OK)
		DBG1(DBG_KNL, "dpsec: resync: cannot list the dataplane's entries: %s: %s",
		     chan_code_name(rep->code), reason(rep));
	chan_reply_free(rep);
	return NULL;
}

/* Ours in the dataplane but not in the shadow (a delete whose reply was lost): remove. */
static round_t sweep(private_dpsec_ipsec_t *this, uint64_t *epoch)
{
	round_t r = ROUND_OK;
	Dpsec__Reply *rep = show(this, DPSEC__SHOW__WHAT__SA, epoch, &r);

	for (size_t i = 0; rep && r == ROUND_OK && i < rep->n_sas; i++) {
		Dpsec__SaAdd *a = rep->sas[i]->sa;
		Dpsec__SaId id = DPSEC__SA_ID__INIT;
		Dpsec__Request req = DPSEC__REQUEST__INIT;

		id.dst = a->dst;
		id.proto = a->proto;
		id.spi = a->spi;
		if (!a->owner || strcmp(a->owner, OWNER) || this->shadow->get_sa(this->shadow, &id))
			continue;
		req.body_case = DPSEC__REQUEST__BODY_SA_DEL;
		req.sa_del = &id;
		r = resync_one(this, &req, epoch, "stale SA", DPSEC__CODE__ENOENT);
	}
	if (rep)
		chan_reply_free(rep);
	if (r != ROUND_OK)
		return r;
	rep = show(this, DPSEC__SHOW__WHAT__POLICY, epoch, &r);
	for (size_t i = 0; rep && r == ROUND_OK && i < rep->n_policies; i++) {
		Dpsec__PolicyAdd *a = rep->policies[i]->policy;
		Dpsec__PolicyDel pid = DPSEC__POLICY_DEL__INIT;
		Dpsec__Request req = DPSEC__REQUEST__INIT;

		pid.sel = a->sel;
		pid.dir = a->dir;
		if (!a->owner || strcmp(a->owner, OWNER) ||
		    this->shadow->get_policy(this->shadow, &pid, FALSE))
			continue;
		req.body_case = DPSEC__REQUEST__BODY_POLICY_DEL;
		req.policy_del = &pid;
		r = resync_one(this, &req, epoch, "stale policy", DPSEC__CODE__ENOENT);
	}
	if (rep)
		chan_reply_free(rep);
	return r;
}

/*
 * Make the dataplane hold exactly the shadow, without a moment in which a
 * protected selector has no policy: SAs first, then each policy replaced in
 * place, then what is ours but no longer wanted goes. Only on first contact
 * (our own start) is what an earlier dpsec-ike left flushed first.
 * FALSE if the dataplane could not be reached.
 */
static bool resync(private_dpsec_ipsec_t *this)
{
	for (int round = 0; round < RESYNC_ROUNDS; round++) {
		uint64_t epoch = 0;
		round_t r = ROUND_OK;
		Dpsec__Reply *rep;

		if (this->epoch == 0) {
			r = flush(this, DPSEC__FLUSH__WHAT__POLICY, &epoch);
			if (r == ROUND_OK)
				r = flush(this, DPSEC__FLUSH__WHAT__SA, &epoch);
		} else if ((rep = show(this, DPSEC__SHOW__WHAT__STATS, &epoch, &r)) != NULL) {
			chan_reply_free(rep); /* only its epoch matters */
		}
		if (r == ROUND_OK)
			r = resync_sas(this, &epoch, epoch != this->epoch);
		if (r == ROUND_OK)
			r = resync_policies(this, &epoch);
		if (r == ROUND_OK)
			r = sweep(this, &epoch);
		if (r == ROUND_DOWN)
			return FALSE;
		if (r == ROUND_NEW_EPOCH)
			continue;
		if (!this->reachable)
			DBG1(DBG_KNL, "dpsec: dataplane at %s is back", this->endpoint);
		DBG1(DBG_KNL, "dpsec: dataplane epoch %llu %s: %u SAs, %u policies installed",
		     (unsigned long long)epoch,
		     this->epoch == epoch ? "resynced"
		     : this->epoch	  ? "restarted"
					  : "flushed",
		     this->shadow->sa_count(this->shadow),
		     this->shadow->policy_count(this->shadow));
		this->epoch = epoch;
		this->synced = TRUE;
		this->reachable = TRUE;
		return TRUE;
	}
	DBG1(DBG_KNL, "dpsec: dataplane keeps restarting during resync; trying again later");
	this->synced = FALSE;
	return FALSE;
}

/*
 * Send @req to a dataplane holding our state (resync first if needed). FALSE if
 * the dataplane is unreachable: callers then keep the change in the shadow only.
 */
static bool dp_call(private_dpsec_ipsec_t *this, Dpsec__Request *req, Dpsec__Reply **rep)
{
	if (!this->reachable)
		return FALSE;
	for (int round = 0; round < RESYNC_ROUNDS; round++) {
		if (!this->synced && !resync(this))
			return FALSE;
		if (!roundtrip(this, req, rep))
			return FALSE;
		if ((*rep)->epoch == this->epoch)
			return TRUE;
		/* a restarted dataplane answered: give it our state, then ask again */
		DBG1(DBG_KNL, "dpsec: dataplane restarted (epoch %llu -> %llu)",
		     (unsigned long long)this->epoch, (unsigned long long)(*rep)->epoch);
		chan_reply_free(*rep);
		*rep = NULL;
		this->synced = FALSE;
	}
	return FALSE;
}

/* ---- kernel_ipsec_t ---- */

METHOD(kernel_ipsec_t, get_features, kernel_feature_t, private_dpsec_ipsec_t *this)
{
	/* Policies name their SA by SPI, so outbound SAs can go in before their policies. */
	return KERNEL_POLICY_SPI;
}

METHOD(kernel_ipsec_t, get_spi, status_t, private_dpsec_ipsec_t *this, host_t *src, host_t *dst,
       uint8_t protocol, uint32_t *spi)
{
	Dpsec__Request req = DPSEC__REQUEST__INIT;
	Dpsec__SpiAlloc m = DPSEC__SPI_ALLOC__INIT;
	Dpsec__Reply *rep;
	status_t status = FAILED;

	m.dst = host_bytes(dst);
	m.proto = protocol;
	m.has_min = m.has_max = TRUE;
	m.min = this->spi_min;
	m.max = this->spi_max;
	req.body_case = DPSEC__REQUEST__BODY_SPI_ALLOC;
	req.spi_alloc = &m;

	this->mutex->lock(this->mutex);
	for (int tries = 0; tries < SPI_ALLOC_TRIES && status != SUCCESS; tries++) {
		Dpsec__SaId id = DPSEC__SA_ID__INIT;

		if (!dp_call(this, &req, &rep)) {
			DBG1(DBG_KNL, "dpsec: unable to get SPI: dataplane unreachable");
			break;
		}
		if (rep->code != DPSEC__CODE__OK || !rep->has_spi) {
			DBG1(DBG_KNL, "dpsec: unable to get SPI: %s: %s", chan_code_name(rep->code),
			     reason(rep));
			chan_reply_free(rep);
			break;
		}
		id.dst = m.dst;
		id.proto = protocol;
		id.spi = rep->spi;
		chan_reply_free(rep);
		/* the dataplane only knows installed SAs; we also know what we handed out */
		if (this->shadow->spi_in_use(this->shadow, &id))
			continue;
		this->shadow->add_spi(this->shadow, &id);
		*spi = htonl(id.spi);
		status = SUCCESS;
	}
	this->mutex->unlock(this->mutex);
	if (status == SUCCESS)
		DBG2(DBG_KNL, "dpsec: allocated SPI %.8x for %H", ntohl(*spi), dst);
	return status;
}

METHOD(kernel_ipsec_t, get_cpi, status_t, private_dpsec_ipsec_t *this, host_t *src, host_t *dst,
       uint16_t *cpi)
{
	return NOT_SUPPORTED;
}

static void lifetime_fill(Dpsec__Lifetime *lt, lifetime_cfg_t *cfg)
{
	dpsec__lifetime__init(lt);
	/* charon rekeys on the soft limit and deletes on the hard one; 0 = none */
	lt->has_soft_seconds = lt->has_hard_seconds = TRUE;
	lt->soft_seconds = cfg->time.rekey;
	lt->hard_seconds = cfg->time.life;
	lt->has_soft_bytes = lt->has_hard_bytes = TRUE;
	lt->soft_bytes = cfg->bytes.rekey;
	lt->hard_bytes = cfg->bytes.life;
	lt->has_soft_packets = lt->has_hard_packets = TRUE;
	lt->soft_packets = cfg->packets.rekey;
	lt->hard_packets = cfg->packets.life;
}

METHOD(kernel_ipsec_t, add_sa, status_t, private_dpsec_ipsec_t *this, kernel_ipsec_sa_id_t *id,
       kernel_ipsec_add_sa_t *data)
{
	Dpsec__Request req = DPSEC__REQUEST__INIT;
	Dpsec__SaAdd m = DPSEC__SA_ADD__INIT;
	Dpsec__Encap encap = DPSEC__ENCAP__INIT;
	Dpsec__Lifetime lt;
	Dpsec__SaId sid;
	Dpsec__Reply *rep;
	status_t status = SUCCESS;
	bool installed = FALSE;

	if (id->proto != IPPROTO_ESP) {
		DBG1(DBG_KNL, "dpsec: only ESP SAs are supported, not %N", protocol_id_names,
		     id->proto);
		return NOT_SUPPORTED;
	}
	if (data->mode != MODE_TUNNEL && data->mode != MODE_TRANSPORT) {
		DBG1(DBG_KNL, "dpsec: %N mode is not supported", ipsec_mode_names, data->mode);
		return NOT_SUPPORTED;
	}
	if (data->ipcomp != IPCOMP_NONE) {
		DBG1(DBG_KNL, "dpsec: IPComp is not supported");
		return NOT_SUPPORTED;
	}
	m.src = host_bytes(id->src);
	m.dst = host_bytes(id->dst);
	m.proto = id->proto;
	m.spi = ntohl(id->spi);
	m.dir = data->inbound ? DPSEC__DIR__DIR_IN : DPSEC__DIR__DIR_OUT;
	m.mode = data->mode == MODE_TUNNEL ? DPSEC__MODE__MODE_TUNNEL : DPSEC__MODE__MODE_TRANSPORT;
	if (!map_enc(data->enc_alg, data->enc_key.len, &m)) {
		DBG1(DBG_KNL, "dpsec: %N with a %zu-byte key is not supported by the dataplane",
		     encryption_algorithm_names, data->enc_alg, data->enc_key.len);
		return NOT_SUPPORTED;
	}
	if (!m.has_aead && !map_integ(data->int_alg, &m)) {
		DBG1(DBG_KNL, "dpsec: %N is not supported by the dataplane",
		     integrity_algorithm_names, data->int_alg);
		return NOT_SUPPORTED;
	}
	if (data->enc_key.len) {
		m.has_enc_key = TRUE;
		m.enc_key =
		    (ProtobufCBinaryData){.len = data->enc_key.len, .data = data->enc_key.ptr};
	}
	if (m.has_integ && data->int_key.len) {
		m.has_auth_key = TRUE;
		m.auth_key =
		    (ProtobufCBinaryData){.len = data->int_key.len, .data = data->int_key.ptr};
	}
	if (data->inbound) {
		m.has_replay_window = TRUE;
		m.replay_window = data->replay_window;
	}
	m.has_esn = TRUE;
	m.esn = data->esn;
	/* a CHILD_SA keeps its reqid across rekeys: the dataplane's inbound check uses it */
	m.has_reqid = data->reqid != 0;
	m.reqid = data->reqid;
	m.owner = (char *)OWNER;
	if (!data->inbound) {
		/* the first lease; recorded with the SA before the dataplane can use it */
		m.has_seq_limit = TRUE;
		m.seq_limit = this->lease_min;
	}
	if (data->encap) {
		encap.sport = id->src->get_port(id->src);
		encap.dport = id->dst->get_port(id->dst);
		m.encap = &encap;
	}
	if (data->lifetime) {
		lifetime_fill(&lt, data->lifetime);
		m.lifetime = &lt;
	}
	req.body_case = DPSEC__REQUEST__BODY_SA_ADD;
	req.sa_add = &m;
	sa_id_fill(&sid, id);

	this->mutex->lock(this->mutex);
	if (dp_call(this, &req, &rep)) {
		if (rep->code != DPSEC__CODE__OK) {
			DBG1(DBG_KNL, "dpsec: dataplane refused SA %.8x %H -> %H: %s: %s", m.spi,
			     id->src, id->dst, chan_code_name(rep->code), reason(rep));
			status = FAILED;
		}
		installed = status == SUCCESS;
		chan_reply_free(rep);
	} else {
		DBG1(DBG_KNL, "dpsec: SA %.8x kept for the dataplane's return", m.spi);
	}
	if (status == SUCCESS) {
		dpsec_shadow_sa_t *s = this->shadow->add_sa(this->shadow, &m);

		if (s) {
			s->installed = installed;
			s->seq_lease = m.has_seq_limit ? m.seq_limit : 0;
		}
	}
	this->mutex->unlock(this->mutex);
	if (status == SUCCESS)
		DBG2(DBG_KNL, "dpsec: added %s SA %.8x %H -> %H",
		     data->inbound ? "inbound" : "outbound", m.spi, id->src, id->dst);
	return status;
}

METHOD(kernel_ipsec_t, update_sa, status_t, private_dpsec_ipsec_t *this, kernel_ipsec_sa_id_t *id,
       kernel_ipsec_update_sa_t *data)
{
	Dpsec__Request req = DPSEC__REQUEST__INIT;
	Dpsec__SaUpdate m = DPSEC__SA_UPDATE__INIT;
	Dpsec__Encap encap = DPSEC__ENCAP__INIT;
	Dpsec__SaId sid, new_id;
	dpsec_shadow_sa_t *s, saved;
	Dpsec__Reply *rep;
	status_t status = SUCCESS;

	sa_id_fill(&sid, id);
	m.id = &sid;
	m.has_new_src = m.has_new_dst = TRUE;
	m.new_src = host_bytes(data->new_src);
	m.new_dst = host_bytes(data->new_dst);
	if (data->new_encap) {
		encap.sport = data->new_src->get_port(data->new_src);
		encap.dport = data->new_dst->get_port(data->new_dst);
		m.new_encap = &encap;
	} else if (data->encap) {
		DBG1(DBG_KNL, "dpsec: cannot remove UDP encapsulation from SA %.8x", sid.spi);
		return NOT_SUPPORTED;
	}
	req.body_case = DPSEC__REQUEST__BODY_SA_UPDATE;
	req.sa_update = &m;

	this->mutex->lock(this->mutex);
	s = this->shadow->get_sa(this->shadow, &sid);
	if (!s) {
		this->mutex->unlock(this->mutex);
		DBG1(DBG_KNL, "dpsec: cannot update unknown SA %.8x", sid.spi);
		return NOT_FOUND;
	}
	if (dp_call(this, &req, &rep)) {
		if (rep->code == DPSEC__CODE__ENOTSUP)
			status = NOT_SUPPORTED;
		else if (rep->code != DPSEC__CODE__OK)
			status = FAILED;
		if (status != SUCCESS)
			DBG1(DBG_KNL, "dpsec: dataplane refused to update SA %.8x: %s: %s", sid.spi,
			     chan_code_name(rep->code), reason(rep));
		chan_reply_free(rep);
	}
	if (status == SUCCESS) {
		/* the same SA with new addresses, under its new identity */
		Dpsec__SaAdd moved = *s->req;

		saved = *s;
		moved.src = m.new_src;
		moved.dst = m.new_dst;
		if (m.new_encap)
			moved.encap = &encap;
		new_id = sid;
		new_id.dst = m.new_dst;
		s = this->shadow->add_sa(this->shadow, &moved);
		if (s) {
			s->seq_out = saved.seq_out;
			s->seq_lease = saved.seq_lease;
			s->seq_in = saved.seq_in;
			s->rate = saved.rate;
			s->rate_seq = saved.rate_seq;
			s->rate_ms = saved.rate_ms;
			s->installed = saved.installed;
			s->bytes = saved.bytes;
			s->packets = saved.packets;
			s->base_bytes = saved.base_bytes;
			s->base_packets = saved.base_packets;
			s->added = saved.added;
			s->soft_expired = saved.soft_expired;
		}
		if (!chunk_equals(chunk_create(sid.dst.data, sid.dst.len),
				  chunk_create(new_id.dst.data, new_id.dst.len)))
			this->shadow->del_sa(this->shadow, &sid);
	}
	this->mutex->unlock(this->mutex);
	return status;
}

METHOD(kernel_ipsec_t, query_sa, status_t, private_dpsec_ipsec_t *this, kernel_ipsec_sa_id_t *id,
       kernel_ipsec_query_sa_t *data, uint64_t *bytes, uint64_t *packets, time_t *time)
{
	Dpsec__Request req = DPSEC__REQUEST__INIT;
	Dpsec__SaId sid;
	dpsec_shadow_sa_t *s;
	Dpsec__Reply *rep;
	status_t status = NOT_FOUND;

	sa_id_fill(&sid, id);
	req.body_case = DPSEC__REQUEST__BODY_SA_QUERY;
	req.sa_query = &sid;

	this->mutex->lock(this->mutex);
	s = this->shadow->get_sa(this->shadow, &sid);
	if (!s) {
		this->mutex->unlock(this->mutex);
		return NOT_FOUND;
	}
	if (dp_call(this, &req, &rep)) {
		/* the call may have resynced: look the SA up again */
		s = this->shadow->get_sa(this->shadow, &sid);
		if (rep->code == DPSEC__CODE__OK && rep->n_sas == 1 && s) {
			Dpsec__SaInfo *info = rep->sas[0];

			s->bytes = info->bytes;
			s->packets = info->packets;
			if (info->has_seq_out && info->seq_out > s->seq_out)
				s->seq_out = info->seq_out;
			if (time)
				*time = to_monotonic(info->last_use);
			status = SUCCESS;
		} else {
			DBG2(DBG_KNL, "dpsec: querying SA %.8x failed: %s: %s", sid.spi,
			     chan_code_name(rep->code), reason(rep));
		}
		chan_reply_free(rep);
	} else if (s) {
		/* what we last knew, so counters do not jump while the dataplane is away */
		if (time)
			*time = 0;
		status = SUCCESS;
	}
	if (status == SUCCESS && s) {
		if (bytes)
			*bytes = s->base_bytes + s->bytes;
		if (packets)
			*packets = s->base_packets + s->packets;
	}
	this->mutex->unlock(this->mutex);
	return status;
}

METHOD(kernel_ipsec_t, del_sa, status_t, private_dpsec_ipsec_t *this, kernel_ipsec_sa_id_t *id,
       kernel_ipsec_del_sa_t *data)
{
	Dpsec__Request req = DPSEC__REQUEST__INIT;
	Dpsec__SaId sid;
	Dpsec__Reply *rep;

	sa_id_fill(&sid, id);
	req.body_case = DPSEC__REQUEST__BODY_SA_DEL;
	req.sa_del = &sid;

	this->mutex->lock(this->mutex);
	if (!this->shadow->get_sa(this->shadow, &sid)) {
		/* an SPI get_spi handed out for an SA that never came */
		bool reserved = this->shadow->del_spi(this->shadow, &sid);

		this->mutex->unlock(this->mutex);
		if (!reserved)
			DBG2(DBG_KNL, "dpsec: SA %.8x to delete not found", sid.spi);
		return reserved ? SUCCESS : NOT_FOUND;
	}
	if (dp_call(this, &req, &rep)) {
		if (rep->code != DPSEC__CODE__OK && rep->code != DPSEC__CODE__ENOENT)
			DBG1(DBG_KNL, "dpsec: dataplane refused to delete SA %.8x: %s: %s", sid.spi,
			     chan_code_name(rep->code), reason(rep));
		chan_reply_free(rep);
	}
	this->shadow->del_sa(this->shadow, &sid);
	this->mutex->unlock(this->mutex);
	DBG2(DBG_KNL, "dpsec: deleted SA %.8x to %H", sid.spi, id->dst);
	return SUCCESS;
}

static status_t flush_table(private_dpsec_ipsec_t *this, Dpsec__Flush__What what)
{
	Dpsec__Request req = DPSEC__REQUEST__INIT;
	Dpsec__Flush f = DPSEC__FLUSH__INIT;
	Dpsec__Reply *rep;
	status_t status = SUCCESS;

	f.what = what;
	f.owner = (char *)OWNER;
	req.body_case = DPSEC__REQUEST__BODY_FLUSH;
	req.flush = &f;
	this->mutex->lock(this->mutex);
	if (what == DPSEC__FLUSH__WHAT__SA)
		this->shadow->flush_sas(this->shadow);
	else
		this->shadow->flush_policies(this->shadow);
	if (dp_call(this, &req, &rep)) {
		if (rep->code != DPSEC__CODE__OK) {
			DBG1(DBG_KNL, "dpsec: flush refused: %s: %s", chan_code_name(rep->code),
			     reason(rep));
			status = FAILED;
		}
		chan_reply_free(rep);
	}
	this->mutex->unlock(this->mutex);
	return status;
}

METHOD(kernel_ipsec_t, flush_sas, status_t, private_dpsec_ipsec_t *this)
{
	return flush_table(this, DPSEC__FLUSH__WHAT__SA);
}

/* The dataplane's (selector, direction) for one of charon's policies. */
static bool policy_id_build(kernel_ipsec_policy_id_t *id, selector_buf_t *b, Dpsec__PolicyDel *pid)
{
	if (!selector_build(id->src_ts, id->dst_ts, b))
		return FALSE;
	dpsec__policy_del__init(pid);
	pid->sel = &b->sel;
	pid->dir = id->dir == POLICY_OUT ? DPSEC__DIR__DIR_OUT : DPSEC__DIR__DIR_IN;
	return TRUE;
}

/* Install @b as its policy's SPD entry (replacing whatever the entry held). */
static status_t install_binding(private_dpsec_ipsec_t *this, dpsec_shadow_binding_t *b)
{
	Dpsec__Request req = DPSEC__REQUEST__INIT;
	Dpsec__Reply *rep;
	status_t status = SUCCESS;

	req.body_case = DPSEC__REQUEST__BODY_POLICY_ADD;
	req.policy_add = b->req;
	if (dp_call(this, &req, &rep)) {
		if (rep->code != DPSEC__CODE__OK) {
			DBG1(DBG_KNL, "dpsec: dataplane refused policy: %s: %s",
			     chan_code_name(rep->code), reason(rep));
			status = FAILED;
		}
		chan_reply_free(rep);
	}
	return status;
}

METHOD(kernel_ipsec_t, add_policy, status_t, private_dpsec_ipsec_t *this,
       kernel_ipsec_policy_id_t *id, kernel_ipsec_manage_policy_t *data)
{
	Dpsec__PolicyAdd m = DPSEC__POLICY_ADD__INIT;
	Dpsec__PolicyDel pid;
	dpsec_shadow_policy_t *p;
	dpsec_shadow_binding_t *b;
	selector_buf_t sel;
	status_t status = SUCCESS;

	/* The dataplane checks decrypted traffic against the inbound policy itself;
	 * it has no separate forwarding direction. */
	if (id->dir == POLICY_FWD)
		return SUCCESS;
	if (!policy_id_build(id, &sel, &pid)) {
		DBG1(DBG_KNL, "dpsec: cannot express policy %R === %R", id->src_ts, id->dst_ts);
		return FAILED;
	}
	m.sel = pid.sel;
	m.dir = pid.dir;
	m.owner = (char *)OWNER;
	m.has_priority = TRUE;
	m.priority = dp_priority(data);
	/* we own the SPD: a binding always takes the entry over, whoever held it */
	m.has_replace = m.replace = TRUE;
	switch (data->type) {
	case POLICY_PASS:
		m.action = DPSEC__ACTION__ACT_BYPASS;
		break;
	case POLICY_DROP:
		m.action = DPSEC__ACTION__ACT_DISCARD;
		break;
	case POLICY_IPSEC:
		if (data->sa->ah.use && !data->sa->esp.use) {
			DBG1(DBG_KNL, "dpsec: AH policies are not supported");
			return NOT_SUPPORTED;
		}
		if (!data->sa->esp.spi) {
			/* no SA yet: a trap policy, the first packet raises an ACQUIRE */
			m.action = DPSEC__ACTION__ACT_TRAP;
			break;
		}
		m.action = DPSEC__ACTION__ACT_PROTECT;
		m.has_spi = TRUE;
		m.spi = ntohl(data->sa->esp.spi);
		m.has_sa_dst = TRUE;
		m.sa_dst = host_bytes(data->dst);
		break;
	default:
		return NOT_SUPPORTED;
	}
	INIT(b, .req = dpsec_msg_clone(&m.base), .type = data->type, .prio = data->prio,
	     .cfg = *data->sa, .rank = binding_rank(data, m.priority));

	this->mutex->lock(this->mutex);
	p = this->shadow->get_policy(this->shadow, &pid, TRUE);
	if (this->shadow->add_binding(this->shadow, p, b)) {
		status = install_binding(this, b);
		if (status != SUCCESS) {
			bool was_head;

			this->shadow->del_binding(this->shadow, p, b->type, b->prio, &b->cfg,
						  &was_head);
			dpsec_shadow_binding_destroy(b);
			if (p->bindings->get_count(p->bindings) == 0)
				this->shadow->remove_policy(this->shadow, p);
		}
	}
	this->mutex->unlock(this->mutex);
	if (status == SUCCESS)
		DBG2(DBG_KNL, "dpsec: added policy %R === %R %N", id->src_ts, id->dst_ts,
		     policy_dir_names, id->dir);
	return status;
}

METHOD(kernel_ipsec_t, query_policy, status_t, private_dpsec_ipsec_t *this,
       kernel_ipsec_policy_id_t *id, kernel_ipsec_query_policy_t *data, time_t *use_time)
{
	Dpsec__Request req = DPSEC__REQUEST__INIT;
	Dpsec__PolicyDel pid;
	selector_buf_t sel;
	Dpsec__Reply *rep;
	status_t status = NOT_FOUND;

	/* forwarded traffic is checked against the inbound entry */
	if (!policy_id_build(id, &sel, &pid))
		return FAILED;
	req.body_case = DPSEC__REQUEST__BODY_POLICY_QUERY;
	req.policy_query = &pid;
	this->mutex->lock(this->mutex);
	if (dp_call(this, &req, &rep)) {
		if (rep->code == DPSEC__CODE__OK && rep->n_policies == 1) {
			*use_time = to_monotonic(rep->policies[0]->last_use);
			status = SUCCESS;
		}
		chan_reply_free(rep);
	}
	this->mutex->unlock(this->mutex);
	return status;
}

METHOD(kernel_ipsec_t, del_policy, status_t, private_dpsec_ipsec_t *this,
       kernel_ipsec_policy_id_t *id, kernel_ipsec_manage_policy_t *data)
{
	Dpsec__Request req = DPSEC__REQUEST__INIT;
	Dpsec__PolicyDel pid;
	dpsec_shadow_policy_t *p;
	dpsec_shadow_binding_t *b, *next;
	selector_buf_t sel;
	Dpsec__Reply *rep;
	bool was_head;

	if (id->dir == POLICY_FWD)
		return SUCCESS;
	if (!policy_id_build(id, &sel, &pid))
		return FAILED;
	this->mutex->lock(this->mutex);
	p = this->shadow->get_policy(this->shadow, &pid, FALSE);
	b = p ? this->shadow->del_binding(this->shadow, p, data->type, data->prio, data->sa,
					  &was_head)
	      : NULL;
	if (!b) {
		this->mutex->unlock(this->mutex);
		DBG2(DBG_KNL, "dpsec: policy %R === %R %N to delete not found", id->src_ts,
		     id->dst_ts, policy_dir_names, id->dir);
		return NOT_FOUND;
	}
	dpsec_shadow_binding_destroy(b);
	if (p->bindings->get_first(p->bindings, (void **)&next) == SUCCESS) {
		/* the previous binding takes over (the older CHILD_SA, or the trap) */
		if (was_head)
			install_binding(this, next);
	} else {
		this->shadow->remove_policy(this->shadow, p);
		req.body_case = DPSEC__REQUEST__BODY_POLICY_DEL;
		req.policy_del = &pid;
		if (dp_call(this, &req, &rep)) {
			if (rep->code != DPSEC__CODE__OK && rep->code != DPSEC__CODE__ENOENT)
				DBG1(DBG_KNL, "dpsec: dataplane refused to delete policy: %s: %s",
				     chan_code_name(rep->code), reason(rep));
			chan_reply_free(rep);
		}
	}
	this->mutex->unlock(this->mutex);
	DBG2(DBG_KNL, "dpsec: deleted policy %R === %R %N", id->src_ts, id->dst_ts,
	     policy_dir_names, id->dir);
	return SUCCESS;
}

METHOD(kernel_ipsec_t, flush_policies, status_t, private_dpsec_ipsec_t *this)
{
	return flush_table(this, DPSEC__FLUSH__WHAT__POLICY);
}

METHOD(kernel_ipsec_t, bypass_socket, bool, private_dpsec_ipsec_t *this, int fd, int family)
{
	/* The kernel never does IPsec and the dataplane never encrypts what the
	 * gateway itself sends: IKE always bypasses. */
	return TRUE;
}

METHOD(kernel_ipsec_t, enable_udp_decap, bool, private_dpsec_ipsec_t *this, int fd, int family,
       uint16_t port)
{
	/* ESP-in-UDP ends in the dataplane; only IKE reaches this socket. */
	return TRUE;
}

/* ---- events ---- */

static void on_expire(private_dpsec_ipsec_t *this, const Dpsec__Expire *e)
{
	host_t *dst = bytes_host(&e->sa->dst, 0);

	if (!dst)
		return;
	if (!e->hard) {
		dpsec_shadow_sa_t *s;

		this->mutex->lock(this->mutex);
		s = this->shadow->get_sa(this->shadow, e->sa);
		if (s)
			s->soft_expired = TRUE;
		this->mutex->unlock(this->mutex);
	}
	DBG1(DBG_KNL, "dpsec: %s expire for SA %.8x to %H", e->hard ? "hard" : "soft", e->sa->spi,
	     dst);
	charon->kernel->expire(charon->kernel, e->sa->proto, htonl(e->sa->spi), dst, e->hard);
	dst->destroy(dst);
}

/* reqid of the trap (or, failing that, any) binding of the outbound policy @sel */
static uint32_t trap_reqid(private_dpsec_ipsec_t *this, Dpsec__Selector *sel)
{
	Dpsec__PolicyDel pid = DPSEC__POLICY_DEL__INIT;
	dpsec_shadow_policy_t *p;
	dpsec_shadow_binding_t *b;
	enumerator_t *enumerator;
	uint32_t reqid = 0;

	pid.sel = sel;
	pid.dir = DPSEC__DIR__DIR_OUT;
	this->mutex->lock(this->mutex);
	p = this->shadow->get_policy(this->shadow, &pid, FALSE);
	if (p) {
		enumerator = p->bindings->create_enumerator(p->bindings);
		while (enumerator->enumerate(enumerator, &b)) {
			if (!reqid || b->req->action == DPSEC__ACTION__ACT_TRAP)
				reqid = b->cfg.reqid;
			if (b->req->action == DPSEC__ACTION__ACT_TRAP)
				break;
		}
		enumerator->destroy(enumerator);
	}
	this->mutex->unlock(this->mutex);
	return reqid;
}

static traffic_selector_t *packet_ts(const ProtobufCBinaryData *addr, uint8_t proto)
{
	ts_type_t type = addr->len == 4 ? TS_IPV4_ADDR_RANGE : TS_IPV6_ADDR_RANGE;
	chunk_t a = chunk_create(addr->data, addr->len);

	if (addr->len != 4 && addr->len != 16)
		return NULL;
	return traffic_selector_create_from_bytes(proto, type, a, 0, a, PORT_ANY_HI);
}

static void on_acquire(private_dpsec_ipsec_t *this, const Dpsec__Acquire *a)
{
	kernel_acquire_data_t data = {};
	uint8_t proto = a->has_proto ? a->proto : 0;
	uint32_t reqid = a->sel ? trap_reqid(this, a->sel) : 0;

	if (!reqid) {
		DBG1(DBG_KNL, "dpsec: ACQUIRE for a policy we did not install, ignored");
		return;
	}
	data.src = packet_ts(&a->src, proto);
	data.dst = packet_ts(&a->dst, proto);
	DBG1(DBG_KNL, "dpsec: ACQUIRE for reqid %u (%R === %R)", reqid, data.src, data.dst);
	charon->kernel->acquire(charon->kernel, reqid, &data);
	DESTROY_IF(data.src);
	DESTROY_IF(data.dst);
}

static void on_mapping(private_dpsec_ipsec_t *this, const Dpsec__Mapping *m)
{
	host_t *dst = bytes_host(&m->sa->dst, 0);
	host_t *remote = bytes_host(&m->new_addr, (uint16_t)m->new_port);

	if (dst && remote) {
		DBG1(DBG_KNL, "dpsec: NAT mapping of SA %.8x changed to %#H", m->sa->spi, remote);
		charon->kernel->mapping(charon->kernel, m->sa->proto, htonl(m->sa->spi), dst,
					remote);
	}
	DESTROY_IF(dst);
	DESTROY_IF(remote);
}

/* Bring the dataplane up to date if @epoch says it is not the one holding our
 * state. Returns the epoch that holds it now. */
static uint64_t check_epoch(private_dpsec_ipsec_t *this, uint64_t epoch)
{
	uint64_t current;

	this->mutex->lock(this->mutex);
	if (!this->synced || epoch != this->epoch) {
		/* it answered: try again what failed before */
		this->reachable = TRUE;
		resync(this);
	}
	current = this->synced ? this->epoch : 0;
	this->mutex->unlock(this->mutex);
	return current;
}

static void on_lease(private_dpsec_ipsec_t *this, const Dpsec__Lease *l);

static void on_event(private_dpsec_ipsec_t *this, Dpsec__Event *ev)
{
	if (check_epoch(this, ev->epoch) != ev->epoch)
		return; /* from a dataplane that does not hold our SAs */
	switch (ev->body_case) {
	case DPSEC__EVENT__BODY_EXPIRE:
		on_expire(this, ev->expire);
		break;
	case DPSEC__EVENT__BODY_ACQUIRE:
		on_acquire(this, ev->acquire);
		break;
	case DPSEC__EVENT__BODY_MAPPING:
		on_mapping(this, ev->mapping);
		break;
	case DPSEC__EVENT__BODY_LEASE:
		on_lease(this, ev->lease);
		break;
	default:
		break;
	}
}

/* Subscribe again: a no-op for a dataplane that knows us, the start of the
 * event stream (and its Hello) for one that does not. */
static void heartbeat(private_dpsec_ipsec_t *this)
{
	Dpsec__Request req = DPSEC__REQUEST__INIT;
	Dpsec__Subscribe sub = DPSEC__SUBSCRIBE__INIT;
	Dpsec__Reply *rep;
	char err[ERR_LEN];

	req.body_case = DPSEC__REQUEST__BODY_SUBSCRIBE;
	req.subscribe = &sub;
	if (chan_client_call(this->events, &req, &rep, this->timeout_ms, err, sizeof(err)) < 0) {
		time_t now = time_monotonic(NULL);

		this->mutex->lock(this->mutex);
		if (this->reachable) {
			went_down(this, err);
		} else if (now - this->down_logged >= UNREACHABLE_LOG_S) {
			DBG1(DBG_KNL, "dpsec: dataplane at %s still unreachable (%s); retrying",
			     this->endpoint, err);
			this->down_logged = now;
		}
		this->mutex->unlock(this->mutex);
		return;
	}
	if (rep->code == DPSEC__CODE__OK)
		check_epoch(this, rep->epoch);
	chan_reply_free(rep);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Keep @s's lease ahead of @seq, the last number the dataplane reported sent:
 * once half of it is used, a new one of a few seconds of traffic is recorded
 * in the shadow and then granted (@asked: the dataplane said half is used, so
 * any extension helps). @dp_limit is the dataplane's own limit (0 if unknown);
 * a dataplane behind the shadow is brought up to it. Mutex held.
 */
static void lease_renew(private_dpsec_ipsec_t *this, dpsec_shadow_sa_t *s, uint64_t seq,
			uint64_t dp_limit, bool asked)
{
	Dpsec__Request req = DPSEC__REQUEST__INIT;
	Dpsec__SaLease l = DPSEC__SA_LEASE__INIT;
	Dpsec__SaId id = DPSEC__SA_ID__INIT;
	Dpsec__Reply *rep;
	uint64_t len = lease_len(this, s);

	if (s->req->dir != DPSEC__DIR__DIR_OUT || !s->installed)
		return;
	if (seq + (asked ? len : len / 2) >= s->seq_lease) {
		uint64_t limit = seq_cap(s->req, seq + len);

		if (limit > s->seq_lease) {
			s->seq_lease = limit;
			s->req->has_seq_limit = TRUE;
			s->req->seq_limit = limit;
		}
	} else if (dp_limit == 0 || dp_limit >= s->seq_lease) {
		return;
	}
	id.dst = s->req->dst;
	id.proto = s->req->proto;
	id.spi = s->req->spi;
	l.id = &id;
	l.seq_limit = s->seq_lease;
	req.body_case = DPSEC__REQUEST__BODY_SA_LEASE;
	req.sa_lease = &l;
	/* a resync on the way installs the recorded lease anyway */
	if (dp_call(this, &req, &rep)) {
		if (rep->code != DPSEC__CODE__OK)
			DBG1(DBG_KNL, "dpsec: dataplane refused the lease of SA %.8x: %s: %s",
			     id.spi, chan_code_name(rep->code), reason(rep));
		chan_reply_free(rep);
	}
}

/* The dataplane used half of an SA's lease: renew it now, not at the next poll. */
static void on_lease(private_dpsec_ipsec_t *this, const Dpsec__Lease *l)
{
	dpsec_shadow_sa_t *s;

	this->mutex->lock(this->mutex);
	s = l->sa ? this->shadow->get_sa(this->shadow, l->sa) : NULL;
	if (s) {
		if (l->seq_out > s->seq_out)
			s->seq_out = l->seq_out;
		lease_renew(this, s, l->seq_out, l->seq_limit, TRUE);
	}
	this->mutex->unlock(this->mutex);
}

/* What one SA's counters say: traffic for charon, sequence numbers for resync. */
static void poll_one(private_dpsec_ipsec_t *this, dpsec_shadow_sa_t *s, const Dpsec__SaInfo *info)
{
	int64_t now = now_ms();

	s->bytes = info->bytes;
	s->packets = info->packets;
	if (info->has_seq_in && info->seq_in > s->seq_in)
		s->seq_in = info->seq_in;
	if (!info->has_seq_out)
		return;
	if (info->seq_out > s->seq_out)
		s->seq_out = info->seq_out;
	if (s->rate_ms && now > s->rate_ms && info->seq_out >= s->rate_seq)
		s->rate = (info->seq_out - s->rate_seq) * 1000 / (uint64_t)(now - s->rate_ms);
	s->rate_seq = info->seq_out;
	s->rate_ms = now;
	lease_renew(this, s, info->seq_out, info->sa->has_seq_limit ? info->sa->seq_limit : 0,
		    FALSE);
}

/* Read every SA's counters: outbound leases renewed, inbound replay floors kept. */
static void poll_seq(private_dpsec_ipsec_t *this)
{
	linked_list_t *ids = linked_list_create();
	enumerator_t *enumerator;
	dpsec_shadow_sa_t *s;
	Dpsec__SaId *id;

	this->mutex->lock(this->mutex);
	if (this->synced && this->reachable) {
		enumerator = this->shadow->create_sa_enumerator(this->shadow);
		while (enumerator->enumerate(enumerator, &s)) {
			id = malloc(sizeof(*id));
			dpsec__sa_id__init(id);
			id->proto = s->req->proto;
			id->spi = s->req->spi;
			id->dst.len = s->req->dst.len;
			id->dst.data = malloc(id->dst.len);
			memcpy(id->dst.data, s->req->dst.data, id->dst.len);
			ids->insert_last(ids, id);
		}
		enumerator->destroy(enumerator);
	}
	this->mutex->unlock(this->mutex);

	/* one SA at a time, so charon's threads are never held up for long */
	while (this->running && ids->remove_first(ids, (void **)&id) == SUCCESS) {
		Dpsec__Request req = DPSEC__REQUEST__INIT;
		Dpsec__Reply *rep;

		req.body_case = DPSEC__REQUEST__BODY_SA_QUERY;
		req.sa_query = id;
		this->mutex->lock(this->mutex);
		s = this->shadow->get_sa(this->shadow, id);
		if (s && this->synced && dp_call(this, &req, &rep)) {
			s = this->shadow->get_sa(this->shadow, id);
			if (s && rep->code == DPSEC__CODE__OK && rep->n_sas == 1)
				poll_one(this, s, rep->sas[0]);
			chan_reply_free(rep);
		}
		this->mutex->unlock(this->mutex);
		free(id->dst.data);
		free(id);
	}
	while (ids->remove_first(ids, (void **)&id) == SUCCESS) {
		free(id->dst.data);
		free(id);
	}
	ids->destroy(ids);
}

static void *event_main(private_dpsec_ipsec_t *this)
{
	int64_t next_heartbeat = 0, next_poll = now_ms() + this->seq_poll_ms;

	while (this->running) {
		Dpsec__Event *ev;
		int64_t now = now_ms();

		if (now >= next_heartbeat) {
			heartbeat(this);
			next_heartbeat = now_ms() + this->heartbeat_ms;
		}
		if (now >= next_poll) {
			poll_seq(this);
			next_poll = now_ms() + this->seq_poll_ms;
		}
		while (this->running && chan_client_event(this->events, &ev, EVENT_WAIT_MS) == 1) {
			on_event(this, ev);
			chan_event_free(ev);
			if (now_ms() >= next_heartbeat)
				break;
		}
	}
	return NULL;
}

METHOD(kernel_ipsec_t, destroy, void, private_dpsec_ipsec_t *this)
{
	this->running = FALSE;
	if (this->thread)
		this->thread->join(this->thread);
	chan_client_close(this->events);
	chan_client_close(this->req);
	this->shadow->destroy(this->shadow);
	this->mutex->destroy(this->mutex);
	free(this->endpoint);
	free(this);
}

dpsec_ipsec_t *dpsec_ipsec_create(void)
{
	private_dpsec_ipsec_t *this;
	char err[ERR_LEN];

	INIT(this,
	     .public =
		 {
		     .interface =
			 {
			     .get_features = _get_features,
			     .get_spi = _get_spi,
			     .get_cpi = _get_cpi,
			     .add_sa = _add_sa,
			     .update_sa = _update_sa,
			     .query_sa = _query_sa,
			     .del_sa = _del_sa,
			     .flush_sas = _flush_sas,
			     .add_policy = _add_policy,
			     .query_policy = _query_policy,
			     .del_policy = _del_policy,
			     .flush_policies = _flush_policies,
			     .bypass_socket = _bypass_socket,
			     .enable_udp_decap = _enable_udp_decap,
			     .destroy = _destroy,
			 },
		 },
	     .mutex = mutex_create(MUTEX_TYPE_DEFAULT), .shadow = dpsec_shadow_create(),
	     .reachable = TRUE, .running = TRUE,
	     .endpoint = strdup(lib->settings->get_str(lib->settings, "%s.plugins.dpsec.ctl",
						       CHAN_DEFAULT_ENDPOINT, lib->ns)),
	     .timeout_ms = lib->settings->get_int(lib->settings, "%s.plugins.dpsec.timeout",
						  DEFAULT_TIMEOUT_MS, lib->ns),
	     .heartbeat_ms = lib->settings->get_int(lib->settings, "%s.plugins.dpsec.heartbeat",
						    DEFAULT_HEARTBEAT_MS, lib->ns),
	     .seq_poll_ms = lib->settings->get_int(lib->settings, "%s.plugins.dpsec.seq_poll",
						   DEFAULT_SEQ_POLL_MS, lib->ns),
	     .lease_min = (uint64_t)lib->settings->get_int(
		 lib->settings, "%s.plugins.dpsec.seq_lease", DEFAULT_LEASE_MIN, lib->ns),
	     .lease_s = (uint64_t)lib->settings->get_int(
		 lib->settings, "%s.plugins.dpsec.seq_lease_time", DEFAULT_LEASE_S, lib->ns),
	     .spi_min = (uint32_t)lib->settings->get_int(lib->settings, "%s.spi_min",
							 (int)SPI_MIN_DEFAULT, lib->ns),
	     .spi_max = (uint32_t)lib->settings->get_int(lib->settings, "%s.spi_max",
							 (int)SPI_MAX_DEFAULT, lib->ns), );
	if (this->spi_min < SPI_MIN_VALID)
		this->spi_min = SPI_MIN_VALID;
	if (this->spi_max < this->spi_min)
		this->spi_max = this->spi_min;
	if (this->timeout_ms <= 0)
		this->timeout_ms = DEFAULT_TIMEOUT_MS;
	if (this->lease_min < 1024)
		this->lease_min = 1024;
	if (this->lease_s == 0)
		this->lease_s = DEFAULT_LEASE_S;

	this->events = chan_client_open(this->endpoint, err, sizeof(err));
	if (!this->events) {
		DBG1(DBG_KNL, "dpsec: cannot use dataplane endpoint %s: %s", this->endpoint, err);
		this->running = FALSE;
		destroy(this);
		return NULL;
	}
	DBG1(DBG_KNL, "dpsec: IPsec backend is dpsec-dataplane at %s", this->endpoint);
	this->thread = thread_create((thread_main_t)event_main, this);
	if (!this->thread) {
		DBG1(DBG_KNL, "dpsec: cannot start the event thread");
		this->running = FALSE;
		destroy(this);
		return NULL;
	}
	return &this->public;
}
