/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ESP tunnel mode on bursts, for the workers. rte_ipsec builds and checks the
 * packets, or gcm.c those of AES-GCM SAs on ipsec-mb (own_esp); this file
 * drives them, hands out sequence numbers, finishes the outer header, sorts
 * failures by reason and keeps the SA's per-worker counters.
 */
#define ALLOW_EXPERIMENTAL_API 1 /* rte_security.h (via rte_ipsec.h) has experimental inlines */

#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include <rte_branch_prediction.h>
#include <rte_cryptodev.h>
#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_esp.h>
#include <rte_ip.h>
#include <rte_pause.h>
#include <rte_prefetch.h>
#include <rte_udp.h>

#include "crypto.h"
#include "esp.h"
#include "gcm.h"
#include "mbuf.h"

#define IPPROTO_ESP_NUM 50
/*
 * Marks a packet handed to rte_ipsec_pkt_process(): the library resets
 * packet_type on every packet it decapsulated, so a failed packet that still
 * carries the mark was rejected by the trailer check, not the replay update.
 */
#define ESP_PTYPE_MARK (RTE_PTYPE_TUNNEL_ESP | RTE_PTYPE_L3_IPV4)

/*
 * bulk() loads an SA's state this many jobs before its turn. All at once (as
 * the burst was sorted) a burst of 32 SAs asked for ~450 lines together and
 * waited on the core's fill buffers; 10k SAs, 64 B: 1.47x decrypt at 4 ahead,
 * 8 ahead 1.12x more, 12 and 16 no better; encrypt 1.13x.
 */
#define ESP_PREFETCH_AHEAD 8

/* Where each packet of a burst ended up: [0,ok) good, [ok,proc) rejected by
 * rte_ipsec_pkt_process, [proc,prep) refused by the device, [prep,n) by prepare. */
struct stage {
	uint16_t ok, proc, prep;
	bool no_ops; /* lookaside: no crypto ops left, so prepare never saw the burst */
	/* inbound with window_lock: the burst's numbers in, the window's top before it out */
	struct rte_mbuf *const *orig;
	const uint32_t *sq;
	uint64_t top;
};

/* Move mb[i] for which bad[i] is set behind the others, keeping both orders. */
static uint16_t partition(struct rte_mbuf *mb[], const uint8_t bad[], uint16_t n)
{
	struct rte_mbuf *tail[ESP_BURST_MAX];
	uint16_t k = 0, t = 0;

	for (uint16_t i = 0; i < n; i++) {
		if (bad[i])
			tail[t++] = mb[i];
		else
			mb[k++] = mb[i];
	}
	memcpy(&mb[k], tail, t * sizeof(*tail));
	return k;
}

/*
 * The 64-bit number of a packet from its 32 bits on the wire: the window
 * rte_ipsec checks against is near top, so a low half far below top's has
 * wrapped forwards, one far above it backwards (RFC 4303 appendix A, simplified).
 */
static inline uint64_t seq_near(const struct sa *sa, uint64_t top, uint32_t lo)
{
	uint64_t v;

	if (!sa->esn)
		return lo;
	v = (top & ~(uint64_t)UINT32_MAX) | lo;
	if (v + (1ull << 31) < top)
		v += 1ull << 32;
	else if (v > top + (1ull << 31) && v >= (1ull << 32))
		v -= 1ull << 32;
	return v;
}

/*
 * rte_ipsec's SQN_ATOM window copy protects readers (prepare) from one
 * writer, not writers from each other: when two workers hold bursts of one
 * inbound SA, their window updates take turns. Uncontended, that is one
 * atomic per burst on a line process writes anyway. The top it leaves is
 * kept beside it, so a refusal can tell late from seen before.
 */
static inline uint16_t process(struct sa *sa, const struct rte_ipsec_session *ss,
			       struct rte_mbuf *mb[], uint16_t n, struct stage *st)
{
	uint64_t top;
	uint16_t ok;

	if (likely(!sa->window_lock))
		return rte_ipsec_pkt_process(ss, mb, n);
	rte_spinlock_lock(&sa->in_lock);
	st->top = top = sa->win_top;
	ok = rte_ipsec_pkt_process(ss, mb, n);
	/* good packets keep their relative order */
	for (uint16_t i = 0, j = 0; i < ok; i++) {
		while (st->orig[j] != mb[i])
			j++;
		top = RTE_MAX(top, seq_near(sa, top, st->sq[j]));
	}
	sa->win_top = top;
	rte_spinlock_unlock(&sa->in_lock);
	return ok;
}

static void run_cpu(struct sa *sa, struct rte_mbuf *mb[], uint16_t n, struct stage *st)
{
	st->prep = rte_ipsec_pkt_cpu_prepare(&sa->ss, mb, n);
	st->proc = st->prep;
	st->ok = st->prep ? process(sa, &sa->ss, mb, st->prep, st) : 0;
}

/*
 * Lookaside: enqueue on this worker's queue pair and wait for every op, so
 * the burst leaves this function finished and the qp holds nothing of ours.
 */
static void run_lookaside(struct sa *sa, struct rte_mbuf *mb[], uint16_t n, unsigned worker,
			  struct stage *st)
{
	struct rte_crypto_op *cop[ESP_BURST_MAX];
	struct rte_mbuf *out[ESP_BURST_MAX];
	struct rte_ipsec_group grp[ESP_BURST_MAX];
	uint8_t dev = sa->ss.crypto.dev_id;
	uint16_t okc[ESP_BURST_MAX];
	uint16_t k, enq, got = 0, ng, ok, pos = 0;

	st->ok = st->proc = st->prep = 0;
	if (rte_crypto_op_bulk_alloc(crypto_op_pool, RTE_CRYPTO_OP_TYPE_SYMMETRIC, cop, n) == 0) {
		st->no_ops = true;
		return;
	}
	k = rte_ipsec_pkt_crypto_prepare(&sa->ss, mb, cop, n);
	enq = k ? rte_cryptodev_enqueue_burst(dev, (uint16_t)worker, cop, k) : 0;
	if (enq < n)
		rte_mempool_put_bulk(crypto_op_pool, (void **)&cop[enq], n - enq);
	/* software PMDs finish inside enqueue; a hardware device is worth the wait */
	while (got < enq) {
		got += rte_cryptodev_dequeue_burst(dev, (uint16_t)worker, &cop[got], enq - got);
		if (got < enq)
			rte_pause();
	}
	ng = rte_ipsec_pkt_crypto_group((const struct rte_crypto_op **)cop, out, grp, got);
	rte_mempool_put_bulk(crypto_op_pool, (void **)cop, got);
	/* one SA means one session, but stay correct if a device split the burst */
	for (uint16_t g = 0; g < ng; g++) {
		okc[g] = process(sa, grp[g].id.ptr, grp[g].m, (uint16_t)grp[g].cnt, st);
		memcpy(&mb[pos], grp[g].m, okc[g] * sizeof(*mb));
		pos += okc[g];
	}
	ok = pos;
	/* then each group's failures, which rte_ipsec moved behind its good ones */
	for (uint16_t g = 0; g < ng; g++) {
		uint16_t nf = (uint16_t)grp[g].cnt - okc[g];

		memcpy(&mb[pos], grp[g].m + okc[g], nf * sizeof(*mb));
		pos += nf;
	}
	st->ok = ok;
	st->proc = got;
	st->prep = k;
}

/* intel-ipsec-mb on the ops rte_ipsec prepared for a cryptodev that never sees them. */
static void run_mb(struct sa *sa, struct rte_mbuf *mb[], uint16_t n, unsigned worker,
		   struct stage *st)
{
	struct rte_crypto_op **cop = crypto_worker_ops(worker);

	RTE_BUILD_BUG_ON(ESP_BURST_MAX > CRYPTO_WORKER_OPS);
	for (uint16_t i = 0; i < n; i++)
		mb[i]->ol_flags &= ~RTE_MBUF_F_RX_SEC_OFFLOAD_FAILED;
	st->prep = rte_ipsec_pkt_crypto_prepare(&sa->ss, mb, cop, n);
	st->proc = st->prep;
	if (st->prep == 0) {
		st->ok = 0;
		return;
	}
	ipsecmb_process(worker, &sa->mb, cop, st->prep);
	st->ok = process(sa, &sa->ss, mb, st->prep, st);
}

static inline void run(struct sa *sa, struct rte_mbuf *mb[], uint16_t n, unsigned worker,
		       struct stage *st)
{
	st->no_ops = false;
	if (likely(sa->mb.kind != IPSECMB_NONE))
		run_mb(sa, mb, n, worker, st);
	else if (likely(sa->ss.type == RTE_SECURITY_ACTION_TYPE_CPU_CRYPTO))
		run_cpu(sa, mb, n, st);
	else
		run_lookaside(sa, mb, n, worker, st);
}

/*
 * rte_ipsec leaves the outer checksum to the NIC; we are the NIC here. Only the
 * length and the id differ from the SA's template, whose sum sad.c kept.
 */
static inline void finish_outer(const struct sa *sa, struct rte_mbuf *m)
{
	if (sa->family == AF_INET) {
		struct rte_ipv4_hdr *ip = rte_pktmbuf_mtod(m, struct rte_ipv4_hdr *);
		uint32_t s = (uint32_t)sa->outer_sum + ip->total_length + ip->packet_id;

		s = (s & 0xffff) + (s >> 16);
		s = (s & 0xffff) + (s >> 16);
		ip->hdr_checksum = (uint16_t)~s;
	} else if (sa->natt) {
		/* a zero UDP checksum is not allowed over IPv6 (RFC 8200 8.1) */
		struct rte_ipv6_hdr *ip = rte_pktmbuf_mtod(m, struct rte_ipv6_hdr *);
		struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip + 1);

		udp->dgram_cksum = 0;
		udp->dgram_cksum = rte_ipv6_udptcp_cksum_mbuf(m, ip, sizeof(*ip));
	}
}

/* Before crypto: packets that are not IPv4 go behind the others; note the rest's lengths. */
static uint16_t out_pre(struct sa *sa, struct rte_mbuf *mb[], uint16_t n, unsigned worker,
			struct rte_mbuf *orig[], uint32_t len[])
{
	uint8_t bad[ESP_BURST_MAX];
	uint16_t k, nb = 0;

	for (uint16_t i = 0; i < n; i++) {
		const uint8_t *ip = rte_pktmbuf_mtod(mb[i], const uint8_t *);

		if (i + 1 < n)
			rte_prefetch0(rte_pktmbuf_mtod(mb[i + 1], void *));
		/* the SA's ESP next-header says IPv4 (sad.c); anything else would be mislabelled */
		bad[i] = (ip[0] >> 4) != 4;
		nb += bad[i];
		mb[i]->l2_len = 0;
	}
	k = nb ? partition(mb, bad, n) : n;
	if (unlikely(k < n)) /* the drop counters' line is not prefetched */
		sad_cnt(sa)[worker].drops[SA_DROP_OTHER] += n - k;
	for (uint16_t i = 0; i < k; i++) {
		orig[i] = mb[i];
		len[i] = mb[i]->pkt_len;
	}
	return k;
}

/* After crypto: counters and the outer checksum of the good ones; @exhausted of the
 * failures found no sequence number left. */
static uint16_t out_post(struct sa *sa, struct rte_mbuf *mb[], uint16_t k, unsigned worker,
			 const struct stage *st, uint16_t exhausted, struct rte_mbuf *const orig[],
			 const uint32_t len[], uint64_t now)
{
	struct sa_counters *c = &sad_cnt(sa)[worker];
	uint64_t bytes = 0;

	c->seq_used += k;
	if (unlikely(st->ok < k)) {
		if (exhausted)
			c->seq_exhausted = true;
		c->drops[SA_DROP_EXPIRED] += exhausted;
		c->drops[SA_DROP_OTHER] += k - st->ok - exhausted;
	}
	/* good packets keep their relative order, so walk both lists once */
	for (uint16_t i = 0, j = 0; i < st->ok; i++) {
		while (orig[j] != mb[i])
			j++;
		bytes += len[j];
		finish_outer(sa, mb[i]);
	}
	if (st->ok) {
		c->packets += st->ok;
		c->bytes += bytes;
		c->last_tsc = now;
	}
	return st->ok;
}

static uint16_t outbound_burst(struct sa *sa, struct rte_mbuf *mb[], uint16_t n, unsigned worker,
			       uint64_t now)
{
	struct rte_mbuf *orig[ESP_BURST_MAX];
	uint32_t len[ESP_BURST_MAX];
	struct stage st;
	uint16_t k = out_pre(sa, mb, n, worker, orig, len);

	rte_errno = 0;
	run(sa, mb, k, worker, &st);
	return out_post(sa, mb, k, worker, &st, rte_errno == EOVERFLOW ? k - st.ok : 0, orig, len,
			now);
}

/* Set l3_len to the bytes before ESP (outer IP, plus UDP for NAT-T). */
static inline bool inbound_parse(const struct sa *sa, struct rte_mbuf *m)
{
	const uint8_t *p = rte_pktmbuf_mtod(m, const uint8_t *);
	uint32_t hl;
	uint8_t proto;

	if (sa->family == AF_INET) {
		const struct rte_ipv4_hdr *ip = (const struct rte_ipv4_hdr *)p;

		if ((ip->version_ihl >> 4) != 4)
			return false;
		hl = (ip->version_ihl & RTE_IPV4_HDR_IHL_MASK) * RTE_IPV4_IHL_MULTIPLIER;
		proto = ip->next_proto_id;
	} else {
		const struct rte_ipv6_hdr *ip = (const struct rte_ipv6_hdr *)p;

		if ((p[0] >> 4) != 6)
			return false;
		hl = sizeof(*ip);
		proto = ip->proto;
	}
	if (proto == IPPROTO_UDP)
		hl += sizeof(struct rte_udp_hdr);
	else if (proto != IPPROTO_ESP_NUM)
		return false;
	if (m->data_len < hl + sizeof(struct rte_esp_hdr))
		return false;
	mbuf_set_lens(m, 0, hl);
	m->packet_type = ESP_PTYPE_MARK;
	return true;
}

/* Why prepare refused a packet: it cannot say, so recheck what it checks. */
static inline enum sa_drop prepare_reason(const struct sa *sa, const struct rte_mbuf *m)
{
	int32_t clen = (int32_t)(m->pkt_len - m->l3_len) -
		       (int32_t)(sizeof(struct rte_esp_hdr) + sa->iv_len + sa->icv_len);
	const struct rte_mbuf *last = rte_pktmbuf_lastseg((struct rte_mbuf *)(uintptr_t)m);

	if (clen < 0 || (clen & (sa->pad_align - 1)) != 0 || rte_pktmbuf_tailroom(last) < 16)
		return SA_DROP_OTHER;
	return SA_DROP_REPLAY;
}

static inline void seq_seen(struct sa_counters *c, const struct sa *sa, uint32_t lo)
{
	uint64_t v = seq_near(sa, RTE_MAX(c->seq_in, sa->seq_in_base), lo);

	if (v > c->seq_in)
		c->seq_in = v;
}

/*
 * The right edge of rte_ipsec's window (only a refusal needs it). One worker:
 * its highest accepted number, or one window above a resynced SA's floor.
 * Several: what the last update under the lock left.
 */
static uint64_t window_top(struct sa *sa)
{
	uint64_t top = sa->seq_in_base;

	if (sa->window_lock) {
		rte_spinlock_lock(&sa->in_lock);
		top = sa->win_top;
		rte_spinlock_unlock(&sa->in_lock);
		return top;
	}
	if (top && sa->replay_window)
		top += sa->replay_window + 1ull;
	return RTE_MAX(top, sad_cnt(sa)[0].seq_in);
}

/*
 * A number the window refused: left of the window it came too late (reordered
 * or delayed past the window), inside it the number was seen before. The same
 * split as Linux's replay_window and replay counters.
 */
static inline enum sa_drop window_reason(const struct sa *sa, uint64_t top, uint32_t lo)
{
	return seq_near(sa, top, lo) + sa->replay_window < top ? SA_DROP_LATE : SA_DROP_REPLAY;
}

/* Refused packets are rare: finding one's number by a scan costs nothing that matters. */
static uint32_t lost_seq(struct rte_mbuf *const orig[], const uint32_t sq[],
			 const struct rte_mbuf *m)
{
	uint16_t j = 0;

	while (orig[j] != m)
		j++;
	return sq[j];
}

/* The window's top when rte_ipsec reached m: the burst's accepted packets before it moved it. */
static uint64_t burst_top(const struct sa *sa, struct rte_mbuf *const mb[], uint16_t ok,
			  struct rte_mbuf *const orig[], const uint32_t sq[],
			  const struct rte_mbuf *m, uint64_t top)
{
	for (uint16_t j = 0; orig[j] != m; j++)
		for (uint16_t i = 0; i < ok; i++)
			if (mb[i] == orig[j]) {
				top = RTE_MAX(top, seq_near(sa, top, sq[j]));
				break;
			}
	return top;
}

/* Before crypto: what is not ESP for this SA goes behind; note the rest's sequence numbers. */
static uint16_t in_pre(struct sa *sa, struct rte_mbuf *mb[], uint16_t n, unsigned worker,
		       struct rte_mbuf *orig[], uint32_t sq[])
{
	uint8_t bad[ESP_BURST_MAX];
	uint16_t k, nb = 0;

	for (uint16_t i = 0; i < n; i++) {
		if (i + 1 < n)
			rte_prefetch0(rte_pktmbuf_mtod(mb[i + 1], void *));
		bad[i] = !inbound_parse(sa, mb[i]);
		nb += bad[i];
	}
	k = nb ? partition(mb, bad, n) : n;
	if (unlikely(k < n)) /* the drop counters' line is not prefetched */
		sad_cnt(sa)[worker].drops[SA_DROP_OTHER] += n - k;
	for (uint16_t i = 0; i < k; i++) {
		const struct rte_esp_hdr *esp =
		    rte_pktmbuf_mtod_offset(mb[i], const struct rte_esp_hdr *, mb[i]->l3_len);

		orig[i] = mb[i];
		sq[i] = rte_be_to_cpu_32(esp->seq);
	}
	return k;
}

/* After crypto: drops by reason, counters, the highest number accepted. */
static uint16_t in_post(struct sa *sa, struct rte_mbuf *mb[], uint16_t k, unsigned worker,
			const struct stage *st, struct rte_mbuf *const orig[], const uint32_t sq[],
			uint64_t now)
{
	struct sa_counters *c = &sad_cnt(sa)[worker];
	uint64_t bytes = 0, top0 = 0;

	if (unlikely(st->ok < k))
		top0 = window_top(sa); /* one worker: before this burst's numbers move it */
	/* good packets keep their relative order: the highest accepted number, for resync */
	for (uint16_t i = 0, j = 0; i < st->ok; i++) {
		while (orig[j] != mb[i])
			j++;
		seq_seen(c, sa, sq[j]);
	}
	for (uint16_t i = st->ok; i < st->proc; i++) {
		const struct rte_mbuf *m = mb[i];

		if (m->ol_flags & RTE_MBUF_F_RX_SEC_OFFLOAD_FAILED)
			c->drops[SA_DROP_AUTH]++;
		else if (m->packet_type == ESP_PTYPE_MARK)
			c->drops[SA_DROP_TRAILER]++;
		else /* passed prepare, lost the window update to one before it in this burst */
			c->drops[window_reason(sa,
					       burst_top(sa, mb, st->ok, orig, sq, m,
							 sa->window_lock ? st->top : top0),
					       lost_seq(orig, sq, m))]++;
	}
	if (unlikely(st->proc < st->prep))
		c->drops[SA_DROP_OTHER] += st->prep - st->proc;
	for (uint16_t i = st->prep; i < k; i++) {
		enum sa_drop r = st->no_ops ? SA_DROP_OTHER : prepare_reason(sa, mb[i]);

		if (r == SA_DROP_REPLAY)
			r = window_reason(sa, top0, lost_seq(orig, sq, mb[i]));
		c->drops[r]++;
	}
	for (uint16_t i = 0; i < st->ok; i++)
		bytes += mb[i]->pkt_len;
	if (st->ok) {
		c->packets += st->ok;
		c->bytes += bytes;
		c->last_tsc = now;
	}
	return st->ok;
}

static uint16_t inbound_burst(struct sa *sa, struct rte_mbuf *mb[], uint16_t n, unsigned worker,
			      uint64_t now)
{
	struct rte_mbuf *orig[ESP_BURST_MAX];
	uint32_t sq[ESP_BURST_MAX];
	struct stage st;
	uint16_t k = in_pre(sa, mb, n, worker, orig, sq);

	st.orig = orig;
	st.sq = sq;
	run(sa, mb, k, worker, &st);
	return in_post(sa, mb, k, worker, &st, orig, sq, now);
}

/* gcm.c decrypted @k of @sa's packets, @ok of them good: the counters. */
static uint16_t gcm_in_count(struct sa *sa, unsigned worker, uint16_t k, uint16_t ok,
			     const uint8_t why[], uint64_t seq_max, uint64_t bytes, uint64_t now)
{
	struct sa_counters *c = &sad_cnt(sa)[worker];

	for (uint16_t i = ok; i < k; i++)
		c->drops[why[i - ok]]++;
	if (ok == 0)
		return 0;
	c->seq_in = RTE_MAX(c->seq_in, seq_max);
	c->packets += ok;
	c->bytes += bytes;
	c->last_tsc = now;
	return ok;
}

/* An own_esp SA's inbound burst: gcm.c checks and decrypts, the counters are kept here. */
static uint16_t gcm_in_burst(struct sa *sa, struct rte_mbuf *mb[], uint16_t n, unsigned worker,
			     uint64_t now)
{
	struct rte_mbuf *orig[ESP_BURST_MAX];
	uint32_t sq[ESP_BURST_MAX];
	uint8_t why[ESP_BURST_MAX];
	uint64_t bytes = 0, seq_max = 0;
	uint16_t k = in_pre(sa, mb, n, worker, orig, sq), ok;

	ok = k ? gcm_decrypt(sa, mb, sq, k, worker, why, &seq_max, &bytes) : 0;
	return gcm_in_count(sa, worker, k, ok, why, seq_max, bytes, now);
}

/* The same for packets the caller parsed and staged (esp_job.parsed): no in_pre pass. */
static uint16_t gcm_in_parsed(struct sa *sa, struct rte_mbuf *mb[], uint16_t n, unsigned worker,
			      uint64_t now)
{
	uint8_t why[ESP_BURST_MAX];
	uint64_t bytes = 0, seq_max = 0;
	uint16_t ok = gcm_decrypt(sa, mb, NULL, n, worker, why, &seq_max, &bytes);

	return gcm_in_count(sa, worker, n, ok, why, seq_max, bytes, now);
}

typedef uint16_t (*burst_fn)(struct sa *, struct rte_mbuf *[], uint16_t, unsigned, uint64_t);

/* Split long bursts and keep the contract: all good ones first, in order. */
static uint16_t split(burst_fn fn, struct sa *sa, struct rte_mbuf *mb[], uint16_t n,
		      unsigned worker, uint64_t now)
{
	struct rte_mbuf *tmp[ESP_BURST_MAX];
	uint16_t k1, k2, bad1;

	if (n <= ESP_BURST_MAX)
		return fn(sa, mb, n, worker, now);
	k1 = fn(sa, mb, ESP_BURST_MAX, worker, now);
	k2 = split(fn, sa, mb + ESP_BURST_MAX, n - ESP_BURST_MAX, worker, now);
	bad1 = ESP_BURST_MAX - k1;
	if (bad1 && k2) {
		memcpy(tmp, &mb[k1], bad1 * sizeof(*mb));
		memmove(&mb[k1], &mb[ESP_BURST_MAX], k2 * sizeof(*mb));
		memcpy(&mb[k1 + k2], tmp, bad1 * sizeof(*mb));
	}
	return k1 + k2;
}

static inline bool expired(struct sa *sa, uint16_t n, unsigned worker)
{
	if (likely(!__atomic_load_n(&sa->expired_hard, __ATOMIC_ACQUIRE)))
		return false;
	sad_cnt(sa)[worker].drops[SA_DROP_EXPIRED] += n;
	return true;
}

/*
 * Hard packet and byte limits hold exactly: the control thread only notices
 * them on its next tick, by which time a burst would have overshot. Only SAs
 * with such limits pay for reading the other workers' counters.
 */
static inline uint16_t within_limits(struct sa *sa, struct rte_mbuf *mb[], uint16_t n,
				     unsigned worker)
{
	uint64_t packets = 0, bytes = 0;
	uint16_t k = n;

	if (likely(sa->hard_packets == 0 && sa->hard_bytes == 0))
		return n;
	for (unsigned w = 0; w < sad_workers; w++) {
		packets += sad_cnt(sa)[w].packets;
		bytes += sad_cnt(sa)[w].bytes;
	}
	if (sa->hard_packets != 0)
		k = packets >= sa->hard_packets ? 0
						: RTE_MIN((uint64_t)k, sa->hard_packets - packets);
	if (sa->hard_bytes != 0)
		for (uint16_t i = 0; i < k; i++) {
			bytes += mb[i]->pkt_len;
			if (bytes > sa->hard_bytes) {
				k = i;
				break;
			}
		}
	if (k < n)
		sad_cnt(sa)[worker].drops[SA_DROP_EXPIRED] += n - k;
	return k;
}

/*
 * Take sequence numbers for @n packets from the SA's lease: never more than
 * dpsec-ike has recorded, so a restarted dataplane can resume above every one
 * ever sent (a reused sequence number is a reused AES-GCM nonce). Exactly the
 * count returned is taken, numbers seq_first + *@t onwards: gcm.c sends those
 * very numbers, rte_ipsec its own (never more). Several workers share the
 * counter atomically, as rte_ipsec shares its own.
 */
static inline uint16_t lease_take(struct sa *sa, uint16_t n, unsigned worker, uint64_t *t)
{
	uint64_t max = __atomic_load_n(&sa->seq_max, __ATOMIC_ACQUIRE);
	uint64_t v = __atomic_load_n(&sa->seq_taken, __ATOMIC_RELAXED);
	uint16_t k;

	do {
		k = v >= max ? 0 : (uint16_t)RTE_MIN((uint64_t)n, max - v);
		if (k == 0)
			break;
		if (sad_workers == 1) {
			__atomic_store_n(&sa->seq_taken, v + k, __ATOMIC_RELAXED);
			break;
		}
	} while (!__atomic_compare_exchange_n(&sa->seq_taken, &v, v + k, true, __ATOMIC_RELAXED,
					      __ATOMIC_RELAXED));
	*t = v;
	if (unlikely(k < n))
		sad_cnt(sa)[worker].drops[SA_DROP_LEASE] += n - k;
	return k;
}

/* An own_esp SA's burst: numbers from the lease, packets from gcm.c, counters as rte_ipsec's. */
static uint16_t gcm_out_burst(struct sa *sa, struct rte_mbuf *mb[], uint16_t n, unsigned worker,
			      uint64_t now)
{
	struct rte_mbuf *orig[ESP_BURST_MAX];
	uint32_t len[ESP_BURST_MAX];
	struct stage st = {.ok = 0};
	uint64_t t;
	uint16_t taken = lease_take(sa, n, worker, &t), k, no_room;

	if (taken == 0)
		return 0;
	k = out_pre(sa, mb, taken, worker, orig, len);
	/* numbers of packets out_pre refused stay unsent, but are used up all the same */
	sad_cnt(sa)[worker].seq_used += taken - k;
	st.ok = gcm_encrypt(sa, mb, k, worker, sa->gcm.out.seq_first + t, &no_room);
	return out_post(sa, mb, k, worker, &st, (uint16_t)(k - st.ok - no_room), orig, len, now);
}

uint16_t esp_outbound(struct sa *sa, struct rte_mbuf *mb[], uint16_t n, unsigned worker,
		      uint64_t now_tsc)
{
	uint64_t t;

	if (unlikely(n == 0 || expired(sa, n, worker)))
		return 0;
	n = within_limits(sa, mb, n, worker);
	if (sa->own_esp)
		return n ? split(gcm_out_burst, sa, mb, n, worker, now_tsc) : 0;
	n = n ? lease_take(sa, n, worker, &t) : 0;
	return n ? split(outbound_burst, sa, mb, n, worker, now_tsc) : 0;
}

static uint16_t in_run(struct sa *sa, struct rte_mbuf *mb[], uint16_t n, unsigned worker,
		       uint64_t now_tsc, bool parsed)
{
	if (unlikely(n == 0 || expired(sa, n, worker)))
		return 0;
	n = within_limits(sa, mb, n, worker);
	if (n == 0)
		return 0;
	if (!sa->own_esp)
		return split(inbound_burst, sa, mb, n, worker, now_tsc);
	return split(parsed ? gcm_in_parsed : gcm_in_burst, sa, mb, n, worker, now_tsc);
}

uint16_t esp_inbound(struct sa *sa, struct rte_mbuf *mb[], uint16_t n, unsigned worker,
		     uint64_t now_tsc)
{
	return in_run(sa, mb, n, worker, now_tsc, false);
}

/*
 * A job's SA state, a few jobs ahead of its turn: whether its first packet's
 * payload is one aesgcm.h takes, so that ipsec-mb's GHASH keys stay out (10k
 * SAs at 64 B, 10 pairs each: decrypt 1.07x, encrypt 1.08x).
 */
static inline void prefetch_job(const struct esp_job *j, unsigned worker, bool in)
{
	const struct sa *sa = j->sa;
	const struct rte_mbuf *m = j->mb[0];
	bool short_gcm = false;

	if (sa->gcm_short != SA_GCM_LONG && j->n != 0 && (!in || j->parsed)) {
		/* what GCM covers, as gcm.c sizes it: what follows ESP header and IV (a runt
		 * wraps to a length that does not fit), or inner packet and trailer */
		uint32_t clen = in ? m->pkt_len - m->l3_len - sizeof(struct rte_esp_hdr) -
					 sa->iv_len - sa->icv_len
				   : RTE_ALIGN_CEIL(m->pkt_len + sizeof(struct rte_esp_tail), 4);

		short_gcm = aesgcm_fits(clen, sa->icv_len);
	}
	sad_prefetch_state(sa, worker, short_gcm);
}

/*
 * The SAs whose crypto runs on the job manager (CBC+HMAC and friends) go
 * through it together: each one's packets are prepared and submitted, one
 * flush finishes all of them, then each is completed. Ten thousand SAs of one
 * packet each fill the multi-buffer lanes as one SA of a whole burst does.
 */
static void bulk(struct esp_job *jobs, uint16_t nj, unsigned worker, bool in, uint64_t now)
{
	struct rte_crypto_op **cop = crypto_worker_ops(worker);
	struct rte_mbuf *orig[CRYPTO_WORKER_OPS];
	uint32_t aux[CRYPTO_WORKER_OPS];
	struct stage st[ESP_JOBS_MAX];
	uint16_t k[ESP_JOBS_MAX], off[ESP_JOBS_MAX];
	bool deferred[ESP_JOBS_MAX];
	int err[ESP_JOBS_MAX];
	uint16_t used = 0, nd = 0;
	uint64_t seq0;

	RTE_ASSERT(nj <= ESP_JOBS_MAX);
	for (uint16_t i = 0; i < RTE_MIN(nj, ESP_PREFETCH_AHEAD); i++)
		prefetch_job(&jobs[i], worker, in);
	for (uint16_t i = 0; i < nj; i++) {
		struct esp_job *j = &jobs[i];
		struct sa *sa = j->sa;
		uint16_t n = j->n;

		if (i + ESP_PREFETCH_AHEAD < nj)
			prefetch_job(&jobs[i + ESP_PREFETCH_AHEAD], worker, in);
		deferred[i] = false;
		if (sa->mb.kind != IPSECMB_JOB || n > ESP_BURST_MAX ||
		    used + n > CRYPTO_WORKER_OPS) {
			j->ok = in ? in_run(sa, j->mb, n, worker, now, j->parsed)
				   : esp_outbound(sa, j->mb, n, worker, now);
			continue;
		}
		j->ok = 0;
		if (unlikely(n == 0 || expired(sa, n, worker)))
			continue;
		n = within_limits(sa, j->mb, n, worker);
		if (!in && n)
			n = lease_take(sa, n, worker, &seq0);
		if (n == 0)
			continue;
		k[i] = in ? in_pre(sa, j->mb, n, worker, orig + used, aux + used)
			  : out_pre(sa, j->mb, n, worker, orig + used, aux + used);
		st[i].orig = orig + used;
		st[i].sq = aux + used;
		st[i].no_ops = false;
		for (uint16_t p = 0; p < k[i]; p++)
			j->mb[p]->ol_flags &= ~RTE_MBUF_F_RX_SEC_OFFLOAD_FAILED;
		rte_errno = 0;
		st[i].prep =
		    k[i] ? rte_ipsec_pkt_crypto_prepare(&sa->ss, j->mb, cop + used, k[i]) : 0;
		err[i] = rte_errno;
		st[i].proc = st[i].prep;
		if (st[i].prep)
			ipsecmb_submit(worker, &sa->mb, cop + used, st[i].prep);
		off[i] = used;
		used += k[i];
		deferred[i] = true;
		nd++;
	}
	if (nd == 0)
		return;
	ipsecmb_flush(worker);
	for (uint16_t i = 0; i < nj; i++) {
		struct esp_job *j = &jobs[i];

		if (!deferred[i])
			continue;
		st[i].ok = st[i].prep ? process(j->sa, &j->sa->ss, j->mb, st[i].prep, &st[i]) : 0;
		j->ok = in ? in_post(j->sa, j->mb, k[i], worker, &st[i], orig + off[i],
				     aux + off[i], now)
			   : out_post(j->sa, j->mb, k[i], worker, &st[i],
				      err[i] == EOVERFLOW ? k[i] - st[i].ok : 0, orig + off[i],
				      aux + off[i], now);
	}
}

void esp_outbound_bulk(struct esp_job *jobs, uint16_t nj, unsigned worker, uint64_t now_tsc)
{
	bulk(jobs, nj, worker, false, now_tsc);
}

void esp_inbound_bulk(struct esp_job *jobs, uint16_t nj, unsigned worker, uint64_t now_tsc)
{
	bulk(jobs, nj, worker, true, now_tsc);
}
