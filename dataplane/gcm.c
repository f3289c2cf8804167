/* SPDX-License-Identifier: BSD-3-Clause */
#include <string.h>

#include <rte_branch_prediction.h>
#include <rte_esp.h>
#include <rte_ip.h>
#include <rte_prefetch.h>
#include <rte_udp.h>

#include "aesgcm.h"
#include "aesgcm512.h"
#include "gcm.h"
#include "ipsecmb.h"
#include "mbuf.h"

#define ESP_ALIGN   4 /* RFC 4303: the trailer ends on a 4-byte boundary (GCM has no block) */
#define NEXT_IPV4   4 /* ESP next header: the tunnel carries IPv4 (out_pre checked) */
#define GCM_ICV_MAX 16

/* The outer header's length, IP and UDP: the SA's template, as sad.c built it. */
static inline uint8_t outer_len(const struct sa *sa)
{
	return (uint8_t)((sa->family == AF_INET ? sizeof(struct rte_ipv4_hdr)
						: sizeof(struct rte_ipv6_hdr)) +
			 (sa->natt ? sizeof(struct rte_udp_hdr) : 0));
}

/* Where one packet's pieces go, worked out before any byte is written. */
struct layout {
	uint8_t *outer;	  /* the new start: template header, then ESP header and IV */
	uint8_t *payload; /* inner packet, then pad, pad length, next header */
	uint32_t clen;	  /* bytes GCM encrypts */
	uint8_t pad;
};

static inline bool place(struct rte_mbuf *m, uint8_t hl, uint8_t icv, struct layout *l)
{
	uint32_t plen = rte_pktmbuf_pkt_len(m);
	uint32_t clen = RTE_ALIGN_CEIL(plen + sizeof(struct rte_esp_tail), ESP_ALIGN);
	uint32_t hlen = hl + sizeof(struct rte_esp_hdr) + ESP_IV_LEN;
	uint32_t tlen = clen - plen + icv;

	if (unlikely(m->nb_segs != 1 || rte_pktmbuf_tailroom(m) < tlen ||
		     rte_pktmbuf_headroom(m) < hlen || plen + hlen + tlen > UINT16_MAX))
		return false;
	l->payload = rte_pktmbuf_mtod(m, uint8_t *);
	l->outer = (uint8_t *)rte_pktmbuf_prepend(m, (uint16_t)hlen);
	rte_pktmbuf_append(m, (uint16_t)tlen);
	l->clen = clen;
	l->pad = (uint8_t)(clen - plen - sizeof(struct rte_esp_tail));
	return true;
}

/*
 * The template header, by its four lengths: a copy of a length only known at run time
 * compiled to rep movsq, whose start-up took 65 % of gcm_encrypt's samples at 64 B.
 */
static inline void copy_outer(uint8_t *dst, const uint8_t *hdr, uint8_t hl)
{
	switch (hl) {
	case sizeof(struct rte_ipv4_hdr):
		memcpy(dst, hdr, sizeof(struct rte_ipv4_hdr));
		break;
	case sizeof(struct rte_ipv4_hdr) + sizeof(struct rte_udp_hdr):
		memcpy(dst, hdr, sizeof(struct rte_ipv4_hdr) + sizeof(struct rte_udp_hdr));
		break;
	case sizeof(struct rte_ipv6_hdr):
		memcpy(dst, hdr, sizeof(struct rte_ipv6_hdr));
		break;
	default:
		memcpy(dst, hdr, sizeof(struct rte_ipv6_hdr) + sizeof(struct rte_udp_hdr));
		break;
	}
}

/* Template, lengths, IPv4 id, ESP header, IV and trailer of one packet with number @seq. */
static inline void build(const struct sa *sa, struct rte_mbuf *m, uint8_t hl,
			 const struct layout *l, uint64_t seq)
{
	uint16_t tot = (uint16_t)rte_pktmbuf_pkt_len(m);
	struct rte_esp_hdr *esp = (struct rte_esp_hdr *)(l->outer + hl);
	uint64_t iv = rte_cpu_to_be_64(seq);
	uint8_t *t = l->payload + l->clen - sizeof(struct rte_esp_tail) - l->pad;

	copy_outer(l->outer, sa->gcm.out.hdr, hl);
	if (sa->family == AF_INET) {
		struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)l->outer;

		ip->total_length = rte_cpu_to_be_16(tot);
		ip->packet_id = rte_cpu_to_be_16((uint16_t)seq);
		if (sa->natt)
			((struct rte_udp_hdr *)(ip + 1))->dgram_len =
			    rte_cpu_to_be_16((uint16_t)(tot - sizeof(*ip)));
	} else {
		struct rte_ipv6_hdr *ip = (struct rte_ipv6_hdr *)l->outer;

		ip->payload_len = rte_cpu_to_be_16((uint16_t)(tot - sizeof(*ip)));
		if (sa->natt)
			((struct rte_udp_hdr *)(ip + 1))->dgram_len = ip->payload_len;
	}
	esp->spi = sa->gcm.out.spi;
	esp->seq = rte_cpu_to_be_32((uint32_t)seq);
	memcpy(esp + 1, &iv, ESP_IV_LEN);
	/* RFC 4303 2.4: pad bytes count up from 1 */
	for (uint8_t i = 0; i < l->pad; i++)
		t[i] = (uint8_t)(i + 1);
	t[l->pad] = l->pad;
	t[l->pad + 1] = NEXT_IPV4;
	mbuf_set_lens(m, 0, hl);
}

/*
 * A packet's nonce and AAD, written a pass before ipsec-mb reads them: read
 * right after they were stored, they cannot be forwarded from the store
 * buffer to the library's wider (masked) loads, and each call waited for the
 * stores to reach L1. Measured here in a loop of one-shot calls on 48 bytes:
 * 18.5 ns a call, 34.4 ns with the IV and AAD stored just before it, 18.1 ns
 * with a burst's stored a pass ahead.
 */
struct gcm_op {
	uint8_t nonce[16] __rte_aligned(16); /* RFC 4106: salt | IV */
	uint32_t aad[3];		     /* RFC 4303 2.2.1: SPI | [seq high |] seq low */
	uint8_t *p;			     /* what GCM encrypts or decrypts */
	uint32_t len;
	const uint8_t *iv, *ad; /* the nonce and AAD the call reads */
};

/* Tags short_ops() may return at once (aesgcm512.h takes the most). */
#define GCM_SHORT_MAX AESGCM512_LANES_MAX

/*
 * Short payloads from @o (of @left; o[0] aesgcm_fits()): up to eight that
 * aesgcm512.h takes in one call where the SA may use it; else o[0] and, when
 * it has as many blocks, o[1] through aesgcm.h. Returns how many it took,
 * their tags in @tag.
 */
static inline AESGCM_TARGET __attribute__((always_inline)) unsigned
short_ops(const struct sa *sa, const struct gcm_op *o, uint16_t left, bool enc,
	  uint8_t tag[GCM_SHORT_MAX][16])
{
	const struct ipsecmb_sa *k = &sa->mb;
	const uint8_t *rk = k->k.gcm.expanded_keys;
	unsigned rounds = aesgcm_rounds(k->key_len), nb, nl = 0;
	struct aesgcm_lane ln[GCM_SHORT_MAX];
	__m128i t[AESGCM_LANES_MAX];

	/*
	 * Against aesgcm.h, 64 B: encrypting 1.085x (4 of 4 pairs); decrypting
	 * 1.045x (9 of 10) at 1 SA, 0.998x at 32 SAs and 0.979x at 10k (one
	 * packet a call; the same build without it read 0.985x at 10k: noise).
	 */
	if (sa->gcm_short == SA_GCM_AVX512 && aesgcm512_fits(o[0].len, k->tag_len)) {
		do {
			ln[nl] = (struct aesgcm_lane){o[nl].iv, o[nl].ad, o[nl].p, o[nl].len};
			nl++;
		} while (nl < RTE_MIN((unsigned)left, AESGCM512_LANES_MAX) &&
			 aesgcm512_fits(o[nl].len, k->tag_len));
		aesgcm512_run(rk, rounds, &sa->gcm_h, k->aad_len, enc, ln, nl, tag);
		return nl;
	}
	RTE_BUILD_BUG_ON(AESGCM_LANES_MAX != 2 || GCM_SHORT_MAX < AESGCM_LANES_MAX);
	nb = aesgcm_nb(o[0].len);
	ln[0] = (struct aesgcm_lane){o[0].iv, o[0].ad, o[0].p, o[0].len};
	if (left > 1 && aesgcm_fits(o[1].len, k->tag_len) && aesgcm_nb(o[1].len) == nb) {
		ln[1] = (struct aesgcm_lane){o[1].iv, o[1].ad, o[1].p, o[1].len};
		aesgcm_run(rk, rounds, &sa->gcm_h, k->aad_len, enc, ln, t, 2, nb);
		nl = 2;
	} else {
		aesgcm_run(rk, rounds, &sa->gcm_h, k->aad_len, enc, ln, t, 1, nb);
		nl = 1;
	}
	for (unsigned j = 0; j < nl; j++)
		_mm_store_si128((__m128i *)tag[j], t[j]);
	return nl;
}

AESGCM_TARGET uint16_t gcm_encrypt(const struct sa *sa, struct rte_mbuf *mb[], uint16_t n,
				   unsigned worker, uint64_t seq, uint16_t *no_room)
{
	uint8_t hl = outer_len(sa);
	IMB_MGR *mgr = ipsecmb_mgr(worker);
	const struct ipsecmb_sa *k = &sa->mb;
	struct rte_mbuf *bad[n];
	struct gcm_op op[n];
	struct gcm_context_data ctx;
	bool used_ctx = false;
	uint16_t ok = 0, nb = 0;
	uint64_t last = sa->esn ? UINT64_MAX : UINT32_MAX;

	*no_room = 0;
	for (uint16_t i = 0; i < n; i++, seq++) {
		struct rte_mbuf *m = mb[i];
		struct gcm_op *o = &op[ok];
		struct layout l;
		uint64_t iv = rte_cpu_to_be_64(seq);

		if (i + 1 < n)
			rte_prefetch0(rte_pktmbuf_mtod(mb[i + 1], void *));
		if (unlikely(seq > last || seq == 0)) {
			bad[nb++] = m;
			continue;
		}
		if (unlikely(!place(m, hl, k->tag_len, &l))) {
			(*no_room)++;
			bad[nb++] = m;
			continue;
		}
		build(sa, m, hl, &l, seq);
		memcpy(o->nonce, sa->gcm.out.salt, sizeof(sa->gcm.out.salt));
		memcpy(o->nonce + sizeof(sa->gcm.out.salt), &iv, ESP_IV_LEN);
		o->aad[0] = sa->gcm.out.spi;
		if (sa->esn) {
			o->aad[1] = rte_cpu_to_be_32((uint32_t)(seq >> 32));
			o->aad[2] = rte_cpu_to_be_32((uint32_t)seq);
		} else {
			o->aad[1] = rte_cpu_to_be_32((uint32_t)seq);
		}
		o->p = l.payload;
		o->len = l.clen;
		o->iv = o->nonce;
		o->ad = (const uint8_t *)o->aad;
		mb[ok++] = m;
	}
	for (uint16_t i = 0; i < ok;) {
		const struct gcm_op *o = &op[i];

		if (sa->gcm_short && aesgcm_fits(o->len, k->tag_len)) {
			uint8_t tag[GCM_SHORT_MAX][16] __rte_aligned(16);
			unsigned nl = short_ops(sa, o, ok - i, true, tag);

			for (unsigned j = 0; j < nl; j++) {
				if (likely(k->tag_len == 16))
					_mm_storeu_si128((__m128i *)(o[j].p + o[j].len),
							 _mm_load_si128((const __m128i *)tag[j]));
				else
					memcpy(o[j].p + o[j].len, tag[j], k->tag_len);
			}
			i += nl; /* (the tags go on the wire: nothing to wipe) */
			continue;
		}
		used_ctx = true;
		if (k->key_len == 16)
			IMB_AES128_GCM_ENC(mgr, &k->k.gcm, &ctx, o->p, o->p, o->len, o->iv, o->ad,
					   k->aad_len, o->p + o->len, k->tag_len);
		else
			IMB_AES256_GCM_ENC(mgr, &k->k.gcm, &ctx, o->p, o->p, o->len, o->iv, o->ad,
					   k->aad_len, o->p + o->len, k->tag_len);
		i++;
	}
	if (used_ctx) /* GHASH state of the data; short payloads never touch it */
		explicit_bzero(&ctx, sizeof(ctx));
	memcpy(&mb[ok], bad, nb * sizeof(*bad));
	return ok;
}

/*
 * RFC 4303 appendix A2.2: the whole number of a packet whose low half is @lo,
 * for a window of @w numbers ending at @top (without a window, half the space
 * either side of it).
 */
static inline uint64_t esn_of(uint64_t top, uint32_t lo, uint32_t w)
{
	uint32_t tl = (uint32_t)top, th = (uint32_t)(top >> 32);
	uint32_t bottom;

	if (w == 0)
		w = 1u << 31;
	bottom = tl - w + 1;
	if (tl >= w - 1)
		th += lo < bottom; /* the window lies in one 2^32 span: below it is the next span */
	else if (th != 0)
		th -= lo >= bottom; /* it straddles two: above its bottom is the span before */
	return (uint64_t)th << 32 | lo;
}

/* 0 if @seq may still come in, else why not. Reads what a locked writer updates. */
static inline enum sa_drop window_check(const struct sa_gcm *g, uint64_t seq)
{
	uint64_t top = __atomic_load_n(&g->in.top, __ATOMIC_RELAXED), w;

	if (g->in.size == 0 || seq > top)
		return SA_DROP_MAX;
	if (seq == 0 || seq + g->in.size < top)
		return SA_DROP_LATE;
	w = __atomic_load_n(&g->in.bits[(seq >> 6) & g->in.mask], __ATOMIC_RELAXED);
	return (w >> (seq & 63)) & 1 ? SA_DROP_REPLAY : SA_DROP_MAX;
}

/* Take @seq into the window (it passed window_check under the same lock). */
static inline void window_take(struct sa_gcm *g, uint64_t seq)
{
	uint64_t top = g->in.top, *b;

	if (seq > top) {
		/* buckets the window slid past start empty */
		uint64_t from = top >> 6, to = seq >> 6;

		for (uint64_t i = 1;
		     g->in.size && i <= RTE_MIN(to - from, (uint64_t)g->in.mask + 1); i++)
			__atomic_store_n(&g->in.bits[(from + i) & g->in.mask], 0, __ATOMIC_RELAXED);
		__atomic_store_n(&g->in.top, seq, __ATOMIC_RELAXED);
	}
	if (g->in.size == 0)
		return;
	b = &g->in.bits[(seq >> 6) & g->in.mask];
	__atomic_store_n(b, *b | 1ull << (seq & 63), __ATOMIC_RELAXED);
}

/* The trailer of a decrypted payload of @clen bytes at @p: its length, or -1 if malformed. */
static inline int trailer(const uint8_t *p, uint32_t clen)
{
	const struct rte_esp_tail *t = (const void *)(p + clen - sizeof(*t));
	uint8_t bad = t->next_proto != NEXT_IPV4;

	if (t->pad_len + sizeof(*t) > clen)
		return -1;
	/* RFC 4303 2.4: the receiver checks the pad bytes are 1, 2, ... */
	for (uint8_t i = 0; i < t->pad_len; i++)
		bad |= p[clen - sizeof(*t) - t->pad_len + i] != (uint8_t)(i + 1);
	return bad ? -1 : (int)(t->pad_len + sizeof(*t));
}

/*
 * An authenticated packet: its number into the window (@track), unless an
 * earlier packet of the burst had it (returns that reason); then cut to the
 * inner packet.
 */
static inline enum sa_drop window_accept(struct sa_gcm *g, bool track, struct rte_mbuf *m,
					 uint64_t seq, uint16_t cut, uint64_t *seq_max,
					 uint64_t *bytes)
{
	enum sa_drop r = track ? window_check(g, seq) : SA_DROP_MAX;

	if (unlikely(r != SA_DROP_MAX))
		return r;
	if (track)
		window_take(g, seq);
	*seq_max = RTE_MAX(*seq_max, seq);
	rte_pktmbuf_adj(m, (uint16_t)(m->l3_len + sizeof(struct rte_esp_hdr) + ESP_IV_LEN));
	rte_pktmbuf_trim(m, cut);
	*bytes += m->pkt_len;
	m->packet_type = RTE_PTYPE_UNKNOWN;
	mbuf_set_lens(m, 0, 0);
	return SA_DROP_MAX;
}

AESGCM_TARGET uint16_t gcm_decrypt(struct sa *sa, struct rte_mbuf *mb[], const uint32_t sq[],
				   uint16_t n, unsigned worker, uint8_t why[], uint64_t *seq_max,
				   uint64_t *bytes)
{
	IMB_MGR *mgr = ipsecmb_mgr(worker);
	const struct ipsecmb_sa *k = &sa->mb;
	struct sa_gcm *g = &sa->gcm;
	struct gcm_context_data ctx;
	bool used_ctx = false, forged = false;
	uint8_t tag[GCM_SHORT_MAX][GCM_ICV_MAX] __rte_aligned(16);
	uint64_t seq[n], top = __atomic_load_n(&g->in.top, __ATOMIC_RELAXED);
	uint16_t cut[n];
	struct rte_mbuf *bad[n], *in[n];
	struct gcm_op op[n];
	uint8_t bad_why[n];
	uint16_t ok = 0, nb = 0, nc = 0, ni = 0;
	bool track = g->in.size != 0 || sa->esn;
	/* several workers share the window: their updates take turns, after the crypto
	 * (sad.c sets window_lock only where there is something to track) */
	bool locked = sa->window_lock;

	/* check the lengths and the window; nonces and AADs for the next pass */
	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *m = mb[i];
		uint8_t *esp = rte_pktmbuf_mtod_offset(m, uint8_t *, m->l3_len);
		int32_t clen = (int32_t)rte_pktmbuf_pkt_len(m) - (int32_t)m->l3_len -
			       (int32_t)(sizeof(struct rte_esp_hdr) + ESP_IV_LEN + k->tag_len);
		struct gcm_op *o = &op[ni];
		enum sa_drop r;
		uint32_t lo;

		if (i + 1 < n)
			rte_prefetch0(rte_pktmbuf_mtod(mb[i + 1], void *));
		if (unlikely(m->nb_segs != 1 || clen < (int32_t)sizeof(struct rte_esp_tail) ||
			     (clen & (ESP_ALIGN - 1)) != 0)) {
			r = SA_DROP_OTHER;
			goto drop;
		}
		lo = sq != NULL ? sq[i] : rte_be_to_cpu_32(((const struct rte_esp_hdr *)esp)->seq);
		seq[ni] = sa->esn ? esn_of(top, lo, g->in.size) : lo;
		r = window_check(g, seq[ni]);
		if (unlikely(r != SA_DROP_MAX))
			goto drop;
		/* staged by gcm_stage() (inbound.c) for short calls, checked: admission
		 * may have shrunk a group staged by its size before, and tests stage none */
		o->iv = n < GCM_STAGE_BELOW ? gcm_nonce_at(m) : NULL;
		if (o->iv == NULL || !gcm_nonce_is(o->iv, sa, esp)) {
			gcm_nonce_fill(o->nonce, sa, esp);
			o->iv = o->nonce;
		}
		/* without ESN the AAD is the ESP header as it came: nothing to store */
		o->ad = esp;
		if (sa->esn) {
			memcpy(&o->aad[0], esp, 4); /* the SPI */
			o->aad[1] = rte_cpu_to_be_32((uint32_t)(seq[ni] >> 32));
			memcpy(&o->aad[2], esp + 4, 4);
			o->ad = (const uint8_t *)o->aad;
		}
		o->p = esp + sizeof(struct rte_esp_hdr) + ESP_IV_LEN;
		o->len = (uint32_t)clen;
		in[ni++] = m;
		continue;
	drop:
		bad_why[nb] = (uint8_t)r;
		bad[nb++] = m;
	}
	/* authenticate and decrypt, check the trailer */
	for (uint16_t i = 0; i < ni;) {
		unsigned nl = 1;

		if (sa->gcm_short && aesgcm_fits(op[i].len, k->tag_len)) {
			nl = short_ops(sa, &op[i], ni - i, false, tag);
		} else {
			used_ctx = true;
			if (k->key_len == 16)
				IMB_AES128_GCM_DEC(mgr, &k->k.gcm, &ctx, op[i].p, op[i].p,
						   op[i].len, op[i].iv, op[i].ad, k->aad_len,
						   tag[0], k->tag_len);
			else
				IMB_AES256_GCM_DEC(mgr, &k->k.gcm, &ctx, op[i].p, op[i].p,
						   op[i].len, op[i].iv, op[i].ad, k->aad_len,
						   tag[0], k->tag_len);
		}
		for (unsigned j = 0; j < nl; j++, i++) {
			const struct gcm_op *o = &op[i];
			enum sa_drop r;
			int tl;

			if (unlikely(!ipsecmb_tag_equal(tag[j], o->p + o->len, k->tag_len))) {
				r = SA_DROP_AUTH;
				forged = true;
				goto bad;
			}
			tl = trailer(o->p, o->len);
			if (unlikely(tl < 0)) {
				r = SA_DROP_TRAILER;
				goto bad;
			}
			if (unlikely(locked)) {
				seq[nc] = seq[i];
				cut[nc] = (uint16_t)(tl + k->tag_len);
				mb[nc++] = in[i];
				continue;
			}
			r = window_accept(g, track, in[i], seq[i], (uint16_t)(tl + k->tag_len),
					  seq_max, bytes);
			if (likely(r == SA_DROP_MAX)) {
				mb[ok++] = in[i];
				continue;
			}
		bad:
			bad_why[nb] = (uint8_t)r;
			bad[nb++] = in[i];
		}
	}
	/* a forgery's true tag; an authentic packet's is the one it carries (with 10k
	 * SAs a call is one packet, and the wipe a library call each) */
	if (unlikely(forged))
		explicit_bzero(tag, sizeof(tag));
	if (used_ctx)
		explicit_bzero(&ctx, sizeof(ctx));
	/* only authenticated numbers move the window, one worker at a time */
	if (unlikely(locked)) {
		rte_spinlock_lock(&sa->in_lock);
		for (uint16_t i = 0; i < nc; i++) {
			enum sa_drop r =
			    window_accept(g, true, mb[i], seq[i], cut[i], seq_max, bytes);

			if (likely(r == SA_DROP_MAX)) {
				mb[ok++] = mb[i];
				continue;
			}
			bad_why[nb] = (uint8_t)r;
			bad[nb++] = mb[i];
		}
		rte_spinlock_unlock(&sa->in_lock);
	}
	memcpy(&mb[ok], bad, nb * sizeof(*bad));
	memcpy(why, bad_why, nb);
	return ok;
}
