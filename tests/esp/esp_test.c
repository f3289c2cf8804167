/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Standalone driver for the ESP building blocks (crypto.c, sad.c, esp.c).
 *
 *   esp_test [EAL args] -- selftest
 *       SAD semantics: duplicates, replace, delete, lookups, RCU-deferred
 *       frees, dump without keys, lifetimes, sequence-number exhaustion.
 *   esp_test [EAL args] -- cases FILE
 *       One SA per line of FILE, packets from a pcap through esp_outbound or
 *       esp_inbound into another pcap, then one "result" line per case with
 *       the SA's counters; check_esp.py writes FILE and judges the output.
 *   esp_test [EAL args] -- bench [SECONDS]
 *       AES-128-GCM outbound and inbound Mpps, CPU crypto against lookaside.
 *
 * Case line: dir=in|out name=N spi=0x.. src=A dst=A [aead=N | cipher=N integ=N]
 *   ek=HEX [ak=HEX] [natt=SPORT:DPORT] [esn=1] [win=N] [seq=N] [seqin=N]
 *   [mode=cpu|lookaside] *   [burst=N] in=PCAP out=PCAP      (algorithm numbers are the proto
 * enums)
 */
#define ALLOW_EXPERIMENTAL_API 1

#include <arpa/inet.h>
#include <errno.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_rcu_qsbr.h>

#include "crypto.h"
#include "esp.h"
#include "sad.h"

#define N_WORKERS   1
#define WORKER	    0
#define POOL_SIZE   8191
#define PKTS_MAX    4096
#define LINE_MAX_   4096
#define BENCH_BURST 32

static struct rte_mempool *pool;
static struct rte_rcu_qsbr *qs;
static int failures;

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			failures++;                                                                \
			printf("FAIL %s:%d: ", __FILE__, __LINE__);                                \
			printf(__VA_ARGS__);                                                       \
			printf("\n");                                                              \
		}                                                                                  \
	} while (0)

static size_t hex_parse(const char *s, uint8_t *out, size_t max)
{
	size_t n = 0;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		s += 2;
	while (s[0] && s[1] && n < max) {
		unsigned v;

		if (sscanf(s, "%2x", &v) != 1)
			break;
		out[n++] = (uint8_t)v;
		s += 2;
	}
	return n;
}

/* A Dpsec__SaAdd with its own storage, as the channel would deliver it. */
struct sa_msg {
	Dpsec__SaAdd m;
	Dpsec__Encap encap;
	Dpsec__Lifetime life;
	uint8_t src[16], dst[16], ek[64], ak[64];
};

static void msg_init(struct sa_msg *s, const char *src, const char *dst, uint32_t spi, bool in)
{
	int af = strchr(dst, ':') ? AF_INET6 : AF_INET;
	size_t alen = af == AF_INET ? 4 : 16;

	memset(s, 0, sizeof(*s));
	dpsec__sa_add__init(&s->m);
	inet_pton(af, src, s->src);
	inet_pton(af, dst, s->dst);
	s->m.src = (ProtobufCBinaryData){alen, s->src};
	s->m.dst = (ProtobufCBinaryData){alen, s->dst};
	s->m.proto = 50;
	s->m.spi = spi;
	s->m.dir = in ? DPSEC__DIR__DIR_IN : DPSEC__DIR__DIR_OUT;
	s->m.mode = DPSEC__MODE__MODE_TUNNEL;
}

static void msg_aead(struct sa_msg *s, Dpsec__Aead a, const char *key)
{
	s->m.has_aead = true;
	s->m.aead = a;
	s->m.has_enc_key = true;
	s->m.enc_key = (ProtobufCBinaryData){hex_parse(key, s->ek, sizeof(s->ek)), s->ek};
}

static void msg_natt(struct sa_msg *s, uint32_t sport, uint32_t dport)
{
	dpsec__encap__init(&s->encap);
	s->encap.sport = sport;
	s->encap.dport = dport;
	s->m.encap = &s->encap;
}

/* ---------- pcap in/out ---------- */

static unsigned pcap_load(const char *path, struct rte_mbuf *mb[], unsigned max)
{
	char eb[PCAP_ERRBUF_SIZE];
	struct pcap_pkthdr *h;
	const u_char *d;
	unsigned n = 0;
	pcap_t *p = pcap_open_offline(path, eb);

	if (p == NULL) {
		printf("FAIL pcap %s: %s\n", path, eb);
		failures++;
		return 0;
	}
	while (n < max && pcap_next_ex(p, &h, &d) == 1) {
		struct rte_mbuf *m = rte_pktmbuf_alloc(pool);
		char *dst;

		if (m == NULL)
			break;
		dst = rte_pktmbuf_append(m, h->caplen);
		if (dst == NULL) {
			rte_pktmbuf_free(m);
			continue;
		}
		memcpy(dst, d, h->caplen);
		mb[n++] = m;
	}
	pcap_close(p);
	return n;
}

static void pcap_save(const char *path, struct rte_mbuf *mb[], unsigned n)
{
	pcap_t *p = pcap_open_dead(DLT_RAW, 65535);
	pcap_dumper_t *d = pcap_dump_open(p, path);

	for (unsigned i = 0; d != NULL && i < n; i++) {
		struct pcap_pkthdr h = {.caplen = rte_pktmbuf_pkt_len(mb[i]),
					.len = rte_pktmbuf_pkt_len(mb[i])};
		uint8_t buf[RTE_MBUF_DEFAULT_BUF_SIZE * 2];
		const void *data = rte_pktmbuf_read(mb[i], 0, h.caplen, buf);

		pcap_dump((u_char *)d, &h, data);
	}
	if (d != NULL)
		pcap_dump_close(d);
	pcap_close(p);
}

/* ---------- cases ---------- */

static const char *kv(char *line, const char *key, char *buf, size_t len)
{
	size_t kl = strlen(key);

	for (char *t = line; (t = strstr(t, key)) != NULL; t += kl) {
		if ((t == line || t[-1] == ' ') && t[kl] == '=') {
			size_t n = strcspn(t + kl + 1, " \n");

			snprintf(buf, len, "%.*s", (int)n, t + kl + 1);
			return buf;
		}
	}
	return NULL;
}

static void print_result(const char *name, const Dpsec__SaAdd *id, uint16_t ok)
{
	Dpsec__SaId sid = {.dst = id->dst, .proto = id->proto, .spi = id->spi};
	struct sa *sa = sad_find(&sid);
	Dpsec__SaInfo **info;
	size_t n = sad_dump(&info);

	printf("result name=%s ok=%u dev=%s mode=%s", name, ok, sa ? sa->dev_name : "?",
	       sa == NULL					    ? "?"
	       : sa->mb.kind != IPSECMB_NONE			    ? "ipsec-mb"
	       : sa->ss.type == RTE_SECURITY_ACTION_TYPE_CPU_CRYPTO ? "cpu"
								    : "lookaside");
	for (size_t i = 0; i < n; i++) {
		if (info[i]->sa->spi != id->spi)
			continue;
		printf(" packets=%llu bytes=%llu", (unsigned long long)info[i]->packets,
		       (unsigned long long)info[i]->bytes);
		for (size_t d = 0; d < info[i]->n_drops; d++)
			printf(" %s=%llu", info[i]->drops[d]->name,
			       (unsigned long long)info[i]->drops[d]->value);
		if (info[i]->has_seq_out)
			printf(" seq_out=%llu", (unsigned long long)info[i]->seq_out);
		printf(" has_key=%d", info[i]->sa->has_enc_key || info[i]->sa->has_auth_key);
	}
	printf("\n");
	sad_dump_free(info, n);
}

static int run_case(char *line)
{
	char v[LINE_MAX_], name[128], src[64], dst[64], in[512], out[512];
	static struct rte_mbuf *mb[PKTS_MAX];
	struct sa_msg s;
	struct sa *sa;
	char err[256];
	bool inbound;
	unsigned n, burst = 32, good = 0;
	int rc;

	if (!kv(line, "dir", v, sizeof(v)))
		return 0;
	inbound = strcmp(v, "in") == 0;
	if (!kv(line, "name", name, sizeof(name)) || !kv(line, "src", src, sizeof(src)) ||
	    !kv(line, "dst", dst, sizeof(dst)) || !kv(line, "in", in, sizeof(in)) ||
	    !kv(line, "out", out, sizeof(out)) || !kv(line, "spi", v, sizeof(v))) {
		printf("FAIL bad case line: %s", line);
		failures++;
		return -1;
	}
	msg_init(&s, src, dst, (uint32_t)strtoul(v, NULL, 0), inbound);
	if (kv(line, "aead", v, sizeof(v))) {
		s.m.has_aead = true;
		s.m.aead = atoi(v);
	}
	if (kv(line, "cipher", v, sizeof(v))) {
		s.m.has_cipher = true;
		s.m.cipher = atoi(v);
	}
	if (kv(line, "integ", v, sizeof(v))) {
		s.m.has_integ = true;
		s.m.integ = atoi(v);
	}
	if (kv(line, "ek", v, sizeof(v))) {
		s.m.has_enc_key = true;
		s.m.enc_key = (ProtobufCBinaryData){hex_parse(v, s.ek, sizeof(s.ek)), s.ek};
	}
	if (kv(line, "ak", v, sizeof(v))) {
		s.m.has_auth_key = true;
		s.m.auth_key = (ProtobufCBinaryData){hex_parse(v, s.ak, sizeof(s.ak)), s.ak};
	}
	if (kv(line, "natt", v, sizeof(v))) {
		unsigned sp, dp;

		sscanf(v, "%u:%u", &sp, &dp);
		msg_natt(&s, sp, dp);
	}
	if (kv(line, "esn", v, sizeof(v))) {
		s.m.has_esn = true;
		s.m.esn = atoi(v) != 0;
	}
	if (kv(line, "win", v, sizeof(v))) {
		s.m.has_replay_window = true;
		s.m.replay_window = (uint32_t)atoi(v);
	}
	if (kv(line, "seq", v, sizeof(v))) {
		s.m.has_seq_out = true;
		s.m.seq_out = strtoull(v, NULL, 0);
	}
	if (kv(line, "seqin", v, sizeof(v))) {
		s.m.has_seq_in = true;
		s.m.seq_in = strtoull(v, NULL, 0);
	}
	if (kv(line, "burst", v, sizeof(v)))
		burst = (unsigned)atoi(v);
	{
		enum crypto_mode mode = CRYPTO_MODE_AUTO;

		if (kv(line, "mode", v, sizeof(v)) && crypto_mode_parse(v, &mode) != 0) {
			printf("result name=%s add_error=-22 reason=\"bad mode %s\"\n", name, v);
			return 0;
		}
		crypto_set_mode(mode);
	}
	rc = sad_add(&s.m, err, sizeof(err));
	if (rc != 0) {
		printf("result name=%s add_error=%d reason=\"%s\"\n", name, rc, err);
		return 0;
	}
	sa = sad_lookup(htonl(s.m.spi), s.dst, s.m.dst.len == 4 ? AF_INET : AF_INET6);
	CHECK(sa != NULL, "%s: lookup after add", name);
	n = pcap_load(in, mb, PKTS_MAX);
	/* bursts in file order; successes are written in order, failures freed */
	static struct rte_mbuf *okp[PKTS_MAX];
	for (unsigned i = 0; sa != NULL && i < n; i += burst) {
		uint16_t b = (uint16_t)RTE_MIN(burst, n - i);
		uint16_t k = inbound ? esp_inbound(sa, &mb[i], b, WORKER, rte_get_timer_cycles())
				     : esp_outbound(sa, &mb[i], b, WORKER, rte_get_timer_cycles());

		memcpy(&okp[good], &mb[i], k * sizeof(*mb));
		good += k;
		rte_pktmbuf_free_bulk(&mb[i + k], b - k);
	}
	pcap_save(out, okp, good);
	rte_pktmbuf_free_bulk(okp, good);
	print_result(name, &s.m, (uint16_t)good);
	return 0;
}

static int run_cases(const char *path)
{
	char line[LINE_MAX_];
	FILE *f = fopen(path, "r");

	if (f == NULL) {
		printf("FAIL open %s\n", path);
		return 1;
	}
	while (fgets(line, sizeof(line), f) != NULL)
		if (line[0] != '#')
			run_case(line);
	fclose(f);
	sad_flush(NULL);
	sad_reclaim();
	return failures != 0;
}

/* ---------- selftest ---------- */

#define GCM128_KEY "0x000102030405060708090a0b0c0d0e0f10111213"

static unsigned n_soft, n_hard;

static unsigned n_lease;
static uint64_t lease_seq, lease_limit;

static void on_lease(const struct sa *sa, uint64_t seq_out, uint64_t seq_limit, void *arg)
{
	RTE_SET_USED(sa);
	RTE_SET_USED(arg);
	n_lease++;
	lease_seq = seq_out;
	lease_limit = seq_limit;
}

static void on_expire(const struct sa *sa, bool hard, void *arg)
{
	RTE_SET_USED(sa);
	RTE_SET_USED(arg);
	if (hard)
		n_hard++;
	else
		n_soft++;
}

/* n small IPv4/UDP packets starting at the inner header */
static unsigned make_pkts(struct rte_mbuf *mb[], unsigned n, unsigned len)
{
	for (unsigned i = 0; i < n; i++) {
		uint8_t *p;

		mb[i] = rte_pktmbuf_alloc(pool);
		p = (uint8_t *)rte_pktmbuf_append(mb[i], len);
		memset(p, 0, len);
		p[0] = 0x45;
		p[2] = (uint8_t)(len >> 8);
		p[3] = (uint8_t)len;
		p[8] = 64;
		p[9] = 17;
		p[12] = 10, p[13] = 1, p[15] = 2;
		p[16] = 10, p[17] = 2, p[19] = 2;
	}
	return n;
}

static uint16_t send_out(struct sa *sa, unsigned n)
{
	struct rte_mbuf *mb[64];
	uint16_t k;

	make_pkts(mb, n, 100);
	k = esp_outbound(sa, mb, (uint16_t)n, WORKER, rte_get_timer_cycles());
	rte_pktmbuf_free_bulk(mb, n);
	return k;
}

/* The key lines @lines of @sa cover bytes [@p, @p + @len) of its key block */
static bool covers(uint16_t lines, const struct sa *sa, const void *p, size_t len)
{
	size_t o = (size_t)((const uint8_t *)p - (const uint8_t *)&sa->mb);

	for (size_t l = o / RTE_CACHE_LINE_SIZE; l <= (o + len - 1) / RTE_CACHE_LINE_SIZE; l++)
		if (!((lines >> l) & 1))
			return false;
	return true;
}

/* sad_prefetch_state()'s plan for @sa covers bytes [@p, @p + @len) of its key block */
static bool plans(const struct sa *sa, const void *p, size_t len)
{
	return covers(sa->key_lines, sa, p, len);
}

/* ipsecmb_sa_lines(): what the crypto reads and no more (each extra line is a memory trip
 * with many SAs); an SA on a cryptodev only has its key block's header read */
static void check_key_lines(const struct sa *sa, bool cbc_in)
{
	const struct ipsecmb_sa *k = &sa->mb;
	unsigned n = (unsigned)__builtin_popcount(sa->key_lines);

	if (k->kind == IPSECMB_NONE) {
		CHECK(sa->key_lines == 1, "cryptodev SA: key lines %#x", sa->key_lines);
		return;
	}
	CHECK(plans(sa, k, offsetof(struct ipsecmb_sa, k)), "header line: %#x", sa->key_lines);
	if (!cbc_in) {
		/* GCM-128: three lines of round keys (not AES-256's fourth), two of GHASH keys */
		CHECK(k->kind == IPSECMB_GCM && plans(sa, k->k.gcm.expanded_keys, 11 * 16) &&
			  !((sa->key_lines >> 3) & 1) && n == 5,
		      "gcm-128 key lines %#x", sa->key_lines);
		/* short payloads (aesgcm.h): header and round keys, the two GHASH lines left out */
		CHECK(sa->key_lines & ipsecmb_ghash_lines &&
			  covers(sa->key_lines & ~ipsecmb_ghash_lines, sa, k, 16 + 11 * 16) &&
			  __builtin_popcount(sa->key_lines & ~ipsecmb_ghash_lines) == 3,
		      "gcm-128 short key lines %#x, GHASH lines %#x", sa->key_lines,
		      ipsecmb_ghash_lines);
		return;
	}
	/* CBC-128 decrypt + HMAC: header, decryption round keys, HMAC states; no encryption keys */
	CHECK(k->kind == IPSECMB_JOB && plans(sa, k->k.cbc.dec, 11 * 16) &&
		  plans(sa, k->k.cbc.ipad, 2 * sizeof(k->k.cbc.ipad)) && !(sa->key_lines & 0x6) &&
		  n == 7,
	      "cbc-128 inbound key lines %#x", sa->key_lines);
}

static int selftest(void)
{
	struct sa_msg s;
	Dpsec__SaId id;
	struct sa *sa, *sa2;
	char err[256];
	int rc;

	/* add, duplicate, replace */
	msg_init(&s, "192.0.2.1", "192.0.2.2", 0x100, false);
	msg_aead(&s, DPSEC__AEAD__AES_GCM_128, GCM128_KEY);
	CHECK(sad_add(&s.m, err, sizeof(err)) == 0, "add: %s", err);
	rc = sad_add(&s.m, err, sizeof(err));
	CHECK(rc == -EEXIST && strstr(err, "spi 0x00000100"), "dup: %d %s", rc, err);
	sa = sad_lookup(htonl(0x100), s.dst, AF_INET);
	CHECK(sa != NULL, "lookup");
	s.m.has_replace = s.m.replace = true;
	CHECK(sad_add(&s.m, err, sizeof(err)) == 0, "replace: %s", err);
	sa2 = sad_lookup(htonl(0x100), s.dst, AF_INET);
	CHECK(sa2 != NULL && sa2 != sa, "replace gives a new record");
	check_key_lines(sa2, false);

	/* same SPI, other destination: a different SA */
	msg_init(&s, "192.0.2.1", "192.0.2.3", 0x100, false);
	msg_aead(&s, DPSEC__AEAD__AES_GCM_128, GCM128_KEY);
	CHECK(sad_add(&s.m, err, sizeof(err)) == 0, "same spi other dst: %s", err);

	/* bulk lookup with one miss */
	{
		uint8_t d2[4] = {192, 0, 2, 2}, d3[4] = {192, 0, 2, 3}, d9[4] = {192, 0, 2, 9};
		uint32_t spis[3] = {htonl(0x100), htonl(0x100), htonl(0x100)};
		const void *dsts[3] = {d2, d9, d3};
		int fam[3] = {AF_INET, AF_INET, AF_INET};
		struct sa *out[3];

		CHECK(sad_lookup_bulk(spis, dsts, fam, 3, out) == 2, "bulk hits");
		CHECK(out[0] == sa2 && out[1] == NULL && out[2] != NULL, "bulk results");
	}

	/* delete: unknown, then RCU-deferred free while a reader is online */
	{
		uint8_t d[4] = {192, 0, 2, 9};

		id = (Dpsec__SaId)DPSEC__SA_ID__INIT;
		id.dst = (ProtobufCBinaryData){4, d};
		id.proto = 50;
		id.spi = 0x999;
		rc = sad_del(&id, err, sizeof(err));
		CHECK(rc == -ENOENT &&
			  strcmp(err, "no SA dst 192.0.2.9 proto esp spi 0x00000999") == 0,
		      "del unknown: %d '%s'", rc, err);
	}
	sad_reclaim();
	rte_rcu_qsbr_thread_register(qs, 0);
	rte_rcu_qsbr_thread_online(qs, 0);
	CHECK(sad_lookup(htonl(0x100), (uint8_t[]){192, 0, 2, 3}, AF_INET) != NULL, "reader");
	id.dst = (ProtobufCBinaryData){4, (uint8_t[]){192, 0, 2, 3}};
	id.spi = 0x100;
	CHECK(sad_del(&id, err, sizeof(err)) == 0, "del: %s", err);
	CHECK(sad_lookup(htonl(0x100), (uint8_t[]){192, 0, 2, 3}, AF_INET) == NULL, "gone");
	CHECK(sad_reclaim() == 1, "record must wait for the online reader");
	rte_rcu_qsbr_quiescent(qs, 0);
	CHECK(sad_reclaim() == 0, "record freed after quiescent state");
	rte_rcu_qsbr_thread_offline(qs, 0);
	rte_rcu_qsbr_thread_unregister(qs, 0);

	/* validation */
	msg_init(&s, "192.0.2.1", "192.0.2.2", 0x200, true);
	msg_aead(&s, DPSEC__AEAD__AES_GCM_128, "0x00112233445566778899aabbccddeeff");
	rc = sad_add(&s.m, err, sizeof(err));
	CHECK(rc == -EINVAL && strstr(err, "salt"), "short aead key: %d %s", rc, err);
	msg_init(&s, "192.0.2.1", "192.0.2.2", 0x200, true);
	s.m.has_cipher = true;
	s.m.cipher = DPSEC__CIPHER__AES_CBC_128;
	s.m.has_enc_key = true;
	s.m.enc_key = (ProtobufCBinaryData){16, s.ek};
	rc = sad_add(&s.m, err, sizeof(err));
	CHECK(rc == -EINVAL, "cbc without auth: %d %s", rc, err);
	s.m.has_integ = true;
	s.m.integ = DPSEC__INTEG__HMAC_SHA256_128;
	s.m.has_auth_key = true;
	s.m.auth_key = (ProtobufCBinaryData){32, s.ak};
	CHECK(sad_add(&s.m, err, sizeof(err)) == 0, "cbc+hmac in: %s", err);
	sa = sad_lookup(htonl(0x200), s.dst, AF_INET);
	CHECK(sa != NULL, "cbc+hmac in: lookup");
	if (sa != NULL)
		check_key_lines(sa, true);
	id.dst = (ProtobufCBinaryData){4, s.dst};
	id.spi = 0x200;
	CHECK(sad_del(&id, err, sizeof(err)) == 0, "cbc+hmac in: del: %s", err);
	sad_reclaim();
	msg_init(&s, "192.0.2.1", "192.0.2.2", 0x200, true);
	msg_aead(&s, DPSEC__AEAD__AES_GCM_128, GCM128_KEY);
	s.m.has_replay_window = true;
	s.m.replay_window = 5000;
	rc = sad_add(&s.m, err, sizeof(err));
	CHECK(rc == -EINVAL, "window 5000: %d %s", rc, err);
	s.m.replay_window = 4096;
	CHECK(sad_add(&s.m, err, sizeof(err)) == 0, "window 4096: %s", err);

	/* lifetimes: soft at 5 packets, hard at 10, each raised once */
	msg_init(&s, "192.0.2.1", "192.0.2.2", 0x300, false);
	msg_aead(&s, DPSEC__AEAD__AES_GCM_128, GCM128_KEY);
	dpsec__lifetime__init(&s.life);
	s.life.has_soft_packets = s.life.has_hard_packets = true;
	s.life.soft_packets = 5;
	s.life.hard_packets = 10;
	s.m.lifetime = &s.life;
	CHECK(sad_add(&s.m, err, sizeof(err)) == 0, "lifetime sa: %s", err);
	sa = sad_lookup(htonl(0x300), s.dst, AF_INET);
	CHECK(send_out(sa, 6) == 6, "6 before soft");
	sad_check_lifetimes(rte_get_timer_cycles(), on_expire, on_lease, NULL);
	sad_check_lifetimes(rte_get_timer_cycles(), on_expire, on_lease, NULL);
	CHECK(n_soft == 1 && n_hard == 0, "soft once: %u %u", n_soft, n_hard);
	/* the hard limit holds exactly, before the control thread's next check */
	CHECK(send_out(sa, 5) == 4 && sad_cnt(sa)[WORKER].drops[SA_DROP_EXPIRED] == 1,
	      "only 4 of 5 more");
	sad_check_lifetimes(rte_get_timer_cycles(), on_expire, on_lease, NULL);
	sad_check_lifetimes(rte_get_timer_cycles(), on_expire, on_lease, NULL);
	CHECK(n_soft == 1 && n_hard == 1, "hard once: %u %u", n_soft, n_hard);
	CHECK(send_out(sa, 4) == 0 && sad_cnt(sa)[WORKER].drops[SA_DROP_EXPIRED] == 5,
	      "hard-expired SA drops");

	/* sequence numbers run out: a hard expiry */
	msg_init(&s, "192.0.2.1", "192.0.2.2", 0x400, false);
	msg_aead(&s, DPSEC__AEAD__AES_GCM_128, GCM128_KEY);
	s.m.has_seq_out = true;
	s.m.seq_out = 0xfffffffcull;
	CHECK(sad_add(&s.m, err, sizeof(err)) == 0, "seq sa: %s", err);
	sa = sad_lookup(htonl(0x400), s.dst, AF_INET);
	rc = send_out(sa, 5);
	CHECK(rc > 0 && rc < 5 && sad_cnt(sa)[WORKER].seq_exhausted, "seq overflow: %d ok", rc);
	sad_check_lifetimes(rte_get_timer_cycles(), on_expire, on_lease, NULL);
	CHECK(n_hard == 2 && sa->expired_hard, "seq exhaustion is hard expiry");

	/* sequence lease: never beyond it; one LEASE event at half; extended, it goes on */
	msg_init(&s, "192.0.2.1", "192.0.2.2", 0x500, false);
	msg_aead(&s, DPSEC__AEAD__AES_GCM_128, GCM128_KEY);
	s.m.has_seq_out = true;
	s.m.seq_out = 100;
	s.m.has_seq_limit = true;
	s.m.seq_limit = 110;
	CHECK(sad_add(&s.m, err, sizeof(err)) == 0, "lease sa: %s", err);
	sa = sad_lookup(htonl(0x500), s.dst, AF_INET);
	CHECK(send_out(sa, 4) == 4, "4 of a 10-number lease");
	sad_check_lifetimes(rte_get_timer_cycles(), on_expire, on_lease, NULL);
	CHECK(n_lease == 0, "no LEASE before half: %u", n_lease);
	CHECK(send_out(sa, 2) == 2, "6 of 10");
	sad_check_lifetimes(rte_get_timer_cycles(), on_expire, on_lease, NULL);
	sad_check_lifetimes(rte_get_timer_cycles(), on_expire, on_lease, NULL);
	CHECK(n_lease == 1 && lease_seq == 106 && lease_limit == 110,
	      "one LEASE at half: %u seq %llu limit %llu", n_lease, (unsigned long long)lease_seq,
	      (unsigned long long)lease_limit);
	CHECK(send_out(sa, 8) == 4 && sad_cnt(sa)[WORKER].drops[SA_DROP_LEASE] == 4,
	      "stops at seq-limit 110");
	{
		Dpsec__SaLease l = DPSEC__SA_LEASE__INIT;
		Dpsec__SaId id = DPSEC__SA_ID__INIT;

		id.dst = s.m.dst;
		id.proto = s.m.proto;
		id.spi = s.m.spi;
		l.id = &id;
		l.seq_limit = 200;
		CHECK(sad_lease(&l, err, sizeof(err)) == 0, "lease to 200: %s", err);
		CHECK(send_out(sa, 8) == 8, "8 more after the lease moved");
		id.spi = 0x200; /* the inbound SA above */
		rc = sad_lease(&l, err, sizeof(err));
		CHECK(rc == -EINVAL && strstr(err, "inbound"), "no lease for an inbound SA: %d %s",
		      rc, err);
	}

	/* dump: keys never, counters summed */
	{
		Dpsec__SaInfo **info;
		size_t n = sad_dump(&info);
		bool keys = false;

		for (size_t i = 0; i < n; i++)
			keys |= info[i]->sa->has_enc_key || info[i]->sa->has_auth_key;
		CHECK(n == 5 && !keys, "dump %zu SAs, keys %d", n, keys);
		sad_dump_free(info, n);
	}
	sad_flush(NULL);
	CHECK(sad_reclaim() == 0, "flush reclaimed");
	{
		Dpsec__SaInfo **info;

		CHECK(sad_dump(&info) == 0, "empty after flush");
		free(info);
	}
	printf("selftest %s (%d failures)\n", failures ? "FAILED" : "passed", failures);
	return failures != 0;
}

/* ---------- bench ---------- */

static double bench_one(bool in, enum crypto_mode mode, unsigned len, double secs)
{
	struct rte_mbuf *mb[BENCH_BURST], *enc[BENCH_BURST];
	struct sa_msg so, si;
	struct sa *out, *insa;
	char err[256];
	uint64_t t0, t1, pkts = 0, hz = rte_get_timer_hz();

	crypto_set_mode(mode);
	msg_init(&so, "192.0.2.1", "192.0.2.2", 0x1000, false);
	msg_aead(&so, DPSEC__AEAD__AES_GCM_128, GCM128_KEY);
	msg_init(&si, "192.0.2.1", "192.0.2.2", 0x1000, true);
	msg_aead(&si, DPSEC__AEAD__AES_GCM_128, GCM128_KEY);
	si.m.dst.data[3] = 3; /* same keys, separate identity */
	if (sad_add(&so.m, err, sizeof(err)) || sad_add(&si.m, err, sizeof(err))) {
		printf("bench add: %s\n", err);
		return 0;
	}
	out = sad_lookup(htonl(0x1000), so.dst, AF_INET);
	insa = sad_lookup(htonl(0x1000), si.dst, AF_INET);
	make_pkts(mb, BENCH_BURST, len);
	if (in) {
		/* encrypt once, then restore the ciphertext before every burst */
		esp_outbound(out, mb, BENCH_BURST, WORKER, rte_get_timer_cycles());
		for (unsigned i = 0; i < BENCH_BURST; i++)
			enc[i] = rte_pktmbuf_copy(mb[i], pool, 0, UINT32_MAX);
	}
	t0 = rte_get_timer_cycles();
	t1 = t0 + (uint64_t)(secs * hz);
	while (rte_get_timer_cycles() < t1) {
		for (unsigned it = 0; it < 64; it++) {
			if (in) {
				for (unsigned i = 0; i < BENCH_BURST; i++) {
					rte_pktmbuf_reset(mb[i]);
					rte_memcpy(rte_pktmbuf_append(mb[i], enc[i]->pkt_len),
						   rte_pktmbuf_mtod(enc[i], void *),
						   enc[i]->pkt_len);
				}
				/* the replay window would refuse the same numbers again */
				pkts += esp_inbound(insa, mb, BENCH_BURST, WORKER,
						    rte_get_timer_cycles());
			} else {
				pkts += esp_outbound(out, mb, BENCH_BURST, WORKER,
						     rte_get_timer_cycles());
				for (unsigned i = 0; i < BENCH_BURST; i++) {
					rte_pktmbuf_adj(mb[i], mb[i]->l3_len + 16);
					rte_pktmbuf_trim(mb[i], mb[i]->pkt_len - len);
					*rte_pktmbuf_mtod(mb[i], uint8_t *) = 0x45;
				}
			}
		}
	}
	t1 = rte_get_timer_cycles();
	rte_pktmbuf_free_bulk(mb, BENCH_BURST);
	if (in)
		rte_pktmbuf_free_bulk(enc, BENCH_BURST);
	sad_flush(NULL);
	sad_reclaim();
	return (double)pkts / ((double)(t1 - t0) / hz) / 1e6;
}

static int bench(double secs)
{
	static const unsigned sizes[] = {64, 512, 1400};

	printf("bench aes-gcm-128, 1 worker, burst %u (inbound includes a memcpy restore)\n",
	       BENCH_BURST);
	for (unsigned d = 0; d < 2; d++)
		for (size_t i = 0; i < RTE_DIM(sizes); i++) {
			double cpu = bench_one(d, CRYPTO_MODE_AUTO, sizes[i], secs);
			double lk = bench_one(d, CRYPTO_MODE_LOOKASIDE, sizes[i], secs);

			printf("bench dir=%s size=%u cpu_crypto=%.3f Mpps lookaside=%.3f Mpps "
			       "ratio=%.2f\n",
			       d ? "in" : "out", sizes[i], cpu, lk, lk > 0 ? cpu / lk : 0);
		}
	return 0;
}

int main(int argc, char **argv)
{
	char err[256];
	int n, rc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	n = rte_eal_init(argc, argv);
	if (n < 0) {
		fprintf(stderr, "EAL init failed\n");
		return 2;
	}
	argc -= n;
	argv += n;
	if (argc < 2) {
		fprintf(stderr, "usage: esp_test [EAL] -- selftest | cases FILE | bench [S]\n");
		return 2;
	}
	pool = rte_pktmbuf_pool_create("esp_test_pool", POOL_SIZE, 256, 0,
				       RTE_MBUF_DEFAULT_BUF_SIZE, rte_socket_id());
	qs = rte_zmalloc(NULL, rte_rcu_qsbr_get_memsize(N_WORKERS), RTE_CACHE_LINE_SIZE);
	if (pool == NULL || qs == NULL || rte_rcu_qsbr_init(qs, N_WORKERS) != 0) {
		fprintf(stderr, "pool/qsbr\n");
		return 2;
	}
	if (crypto_init(N_WORKERS, err, sizeof(err)) != 0 ||
	    sad_init(qs, N_WORKERS, err, sizeof(err)) != 0) {
		fprintf(stderr, "init: %s\n", err);
		return 2;
	}
	if (strcmp(argv[1], "selftest") == 0)
		rc = selftest();
	else if (strcmp(argv[1], "cases") == 0 && argc > 2)
		rc = run_cases(argv[2]);
	else if (strcmp(argv[1], "bench") == 0)
		rc = bench(argc > 2 ? atof(argv[2]) : 1.0);
	else
		rc = 2;
	sad_fini();
	crypto_fini();
	rte_eal_cleanup();
	return rc;
}
