/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * SPD unit tests: control semantics (add/del/replace/flush/batch), classification of
 * IPv4 and IPv6 packets built here byte by byte, and a reader thread classifying while
 * the control thread replaces and deletes policies under RCU.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <cmocka.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>

#include "spd.h"

#define IN	  DPSEC__DIR__DIR_IN
#define OUT	  DPSEC__DIR__DIR_OUT
#define PROTECT	  DPSEC__ACTION__ACT_PROTECT
#define BYPASS	  DPSEC__ACTION__ACT_BYPASS
#define DISCARD	  DPSEC__ACTION__ACT_DISCARD
#define TRAP	  DPSEC__ACTION__ACT_TRAP
#define ANY	  0, 0, 0, 0, 0 /* proto and port ranges */
#define READER_ID 1
#define N_BATCH	  10000

static struct rte_rcu_qsbr *qs;
static char err[256];

/* ---- building requests ---- */

struct pol {
	const char *src, *dst;
	unsigned proto, slo, shi, dlo, dhi;
	int dir, action;
	uint32_t spi, prio;
	bool replace;
};

struct req {
	Dpsec__PolicyAdd add;
	Dpsec__PolicyDel del;
	Dpsec__Selector sel;
	Dpsec__Prefix src, dst;
	uint8_t sa[16], da[16];
};

static void prefix(Dpsec__Prefix *p, uint8_t *buf, const char *s)
{
	char a[64];
	char *slash;

	dpsec__prefix__init(p);
	snprintf(a, sizeof(a), "%s", s);
	slash = strchr(a, '/');
	assert_non_null(slash);
	*slash = 0;
	p->len = (uint32_t)atoi(slash + 1);
	if (inet_pton(AF_INET, a, buf) == 1) {
		p->addr.len = 4;
	} else {
		assert_int_equal(inet_pton(AF_INET6, a, buf), 1);
		p->addr.len = 16;
	}
	p->addr.data = buf;
}

static void req_fill(struct req *r, const struct pol *p)
{
	dpsec__selector__init(&r->sel);
	prefix(&r->src, r->sa, p->src);
	prefix(&r->dst, r->da, p->dst);
	r->sel.src = &r->src;
	r->sel.dst = &r->dst;
	if (p->proto) {
		r->sel.has_proto = true;
		r->sel.proto = p->proto;
	}
	if (p->slo || p->shi) {
		r->sel.has_sport_lo = r->sel.has_sport_hi = true;
		r->sel.sport_lo = p->slo;
		r->sel.sport_hi = p->shi;
	}
	if (p->dlo || p->dhi) {
		r->sel.has_dport_lo = r->sel.has_dport_hi = true;
		r->sel.dport_lo = p->dlo;
		r->sel.dport_hi = p->dhi;
	}
	dpsec__policy_add__init(&r->add);
	r->add.sel = &r->sel;
	r->add.dir = p->dir;
	r->add.action = p->action;
	if (p->spi) {
		r->add.has_spi = true;
		r->add.spi = p->spi;
	}
	if (p->prio) {
		r->add.has_priority = true;
		r->add.priority = p->prio;
	}
	r->add.has_replace = p->replace;
	r->add.replace = p->replace;
	dpsec__policy_del__init(&r->del);
	r->del.sel = &r->sel;
	r->del.dir = p->dir;
}

static int add(struct pol p)
{
	struct req r;

	req_fill(&r, &p);
	return spd_add(&r.add, err, sizeof(err));
}

static int del(const char *src, const char *dst, unsigned proto, unsigned slo, unsigned shi,
	       unsigned dlo, unsigned dhi, int dir)
{
	struct pol p = {src, dst, proto, slo, shi, dlo, dhi, dir, 0, 0, 0, false};
	struct req r;

	req_fill(&r, &p);
	return spd_del(&r.del, err, sizeof(err));
}

/* ---- building packets ---- */

struct pkt {
	uint8_t b[128];
	uint16_t len;
	int family;
};

static void ports(uint8_t *l4, unsigned sport, unsigned dport)
{
	l4[0] = (uint8_t)(sport >> 8);
	l4[1] = (uint8_t)sport;
	l4[2] = (uint8_t)(dport >> 8);
	l4[3] = (uint8_t)dport;
}

/* IPv4 with @opt_words 32-bit words of options and a fragment offset (8-byte units). */
static struct pkt pkt4x(const char *src, const char *dst, unsigned proto, unsigned sport,
			unsigned dport, unsigned opt_words, unsigned frag_off)
{
	struct pkt p = {.family = AF_INET};
	unsigned ihl = 20 + 4 * opt_words;

	p.b[0] = (uint8_t)(0x40 | (ihl / 4));
	p.b[6] = (uint8_t)(frag_off >> 8);
	p.b[7] = (uint8_t)frag_off;
	p.b[8] = 64;
	p.b[9] = (uint8_t)proto;
	assert_int_equal(inet_pton(AF_INET, src, p.b + 12), 1);
	assert_int_equal(inet_pton(AF_INET, dst, p.b + 16), 1);
	memset(p.b + 20, 0x01, ihl - 20); /* NOP options */
	ports(p.b + ihl, sport, dport);
	p.len = (uint16_t)(ihl + 8);
	return p;
}

static struct pkt pkt4(const char *src, const char *dst, unsigned proto, unsigned sport,
		       unsigned dport)
{
	return pkt4x(src, dst, proto, sport, dport, 0, 0);
}

/* IPv6; @ext: 0 none, 1 hop-by-hop, 2 first fragment, 3 non-first fragment. */
static struct pkt pkt6x(const char *src, const char *dst, unsigned proto, unsigned sport,
			unsigned dport, int ext)
{
	struct pkt p = {.family = AF_INET6};
	unsigned off = 40;

	p.b[0] = 0x60;
	p.b[7] = 64;
	assert_int_equal(inet_pton(AF_INET6, src, p.b + 8), 1);
	assert_int_equal(inet_pton(AF_INET6, dst, p.b + 24), 1);
	if (ext == 0) {
		p.b[6] = (uint8_t)proto;
	} else {
		p.b[6] = ext == 1 ? 0 : 44;
		p.b[off] = (uint8_t)proto;
		p.b[off + 1] = 0; /* 8 bytes */
		if (ext == 3)
			p.b[off + 3] = 0x08; /* offset 1 (8 bytes) */
		else if (ext == 2)
			p.b[off + 3] = 0x01; /* more fragments */
		off += 8;
	}
	ports(p.b + off, sport, dport);
	p.len = (uint16_t)(off + 8);
	return p;
}

static struct pkt pkt6(const char *src, const char *dst, unsigned proto, unsigned sport,
		       unsigned dport)
{
	return pkt6x(src, dst, proto, sport, dport, 0);
}

/* @sa (unless NULL): the SA spd_classify() handed out with the match, which must be the
 * policy's own, cached or not, as must the action */
static struct spd_policy *classify_sa(int dir, const struct pkt *p, unsigned worker, void **sa)
{
	const uint8_t *l3[1] = {p->b};
	uint16_t len[1] = {p->len};
	struct spd_policy *out[1];
	struct spd_verdict v[1];

	spd_classify(dir, p->family, l3, len, 1, worker, rte_rdtsc(), out, v);
	assert_ptr_equal(v[0].sa, out[0] != NULL ? spd_policy_sa(out[0]) : NULL);
	assert_int_equal(v[0].action, out[0] != NULL ? out[0]->action : 0);
	if (sa != NULL)
		*sa = v[0].sa;
	return out[0];
}

static struct spd_policy *classify_on(int dir, const struct pkt *p, unsigned worker)
{
	return classify_sa(dir, p, worker, NULL);
}

static void *sa_on(int dir, const struct pkt *p, unsigned worker)
{
	void *sa;

	classify_sa(dir, p, worker, &sa);
	return sa;
}

static struct spd_policy *classify(int dir, struct pkt p)
{
	return classify_on(dir, &p, 0);
}

/* spi of the matching policy, 0 for "no match" */
static uint32_t spi_of(int dir, struct pkt p)
{
	struct spd_policy *r = classify(dir, p);

	return r ? r->spi : 0;
}

/* ---- fixtures ---- */

static int group_setup(void **state)
{
	char *argv[] = {"test_spd", "--no-huge", "-m",
			"256",	    "--no-pci",	 "--no-shconf",
			"-l",	    "0",	 "--log-level=error"};
	size_t sz;

	(void)state;
	if (rte_eal_init(RTE_DIM(argv), argv) < 0)
		return -1;
	sz = rte_rcu_qsbr_get_memsize(2);
	qs = rte_zmalloc("test_spd_qs", sz, RTE_CACHE_LINE_SIZE);
	if (qs == NULL || rte_rcu_qsbr_init(qs, 2) != 0)
		return -1;
	return spd_init(qs, READER_ID + 1, err, sizeof(err)) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	spd_fini();
	rte_free(qs);
	rte_eal_cleanup();
	return 0;
}

static int test_setup(void **state)
{
	(void)state;
	spd_flush(NULL, NULL, 0);
	return 0;
}

/* ---- tests ---- */

static void test_add_del_errors(void **state)
{
	Dpsec__PolicyInfo **v;
	size_t n;

	(void)state;
	assert_int_equal(add((struct pol){"10.1.0.0/24", "10.2.0.0/24", ANY, OUT, PROTECT, 0x100}),
			 0);
	assert_int_equal(add((struct pol){"10.1.0.0/24", "10.2.0.0/24", ANY, OUT, PROTECT, 0x101}),
			 -EEXIST);
	assert_non_null(strstr(err, "policy src 10.1.0.0/24 dst 10.2.0.0/24 dir out exists"));
	/* host bits do not make a different selector */
	assert_int_equal(add((struct pol){"10.1.0.7/24", "10.2.0.0/24", ANY, OUT, BYPASS}),
			 -EEXIST);
	/* same selector, other direction: a different policy */
	assert_int_equal(add((struct pol){"10.1.0.0/24", "10.2.0.0/24", ANY, IN, PROTECT, 0x200}),
			 0);
	assert_int_equal(spi_of(OUT, pkt4("10.1.0.5", "10.2.0.9", 17, 1, 2)), 0x100);
	assert_int_equal(spi_of(IN, pkt4("10.1.0.5", "10.2.0.9", 17, 1, 2)), 0x200);

	assert_int_equal(add((struct pol){"10.1.0.0/24", "10.2.0.0/24", ANY, OUT, PROTECT, 0x102,
					  .replace = true}),
			 0);
	assert_int_equal(spi_of(OUT, pkt4("10.1.0.5", "10.2.0.9", 17, 1, 2)), 0x102);
	/* replace of a missing selector is a plain add */
	assert_int_equal(
	    add((struct pol){"10.3.0.0/24", "10.4.0.0/24", ANY, OUT, DISCARD, .replace = true}), 0);
	n = spd_dump(&v);
	assert_int_equal(n, 3);
	spd_dump_free(v, n);

	assert_int_equal(del("10.1.0.0/24", "10.2.0.0/24", ANY, OUT), 0);
	assert_int_equal(del("10.1.0.0/24", "10.2.0.0/24", ANY, OUT), -ENOENT);
	assert_non_null(strstr(err, "policy src 10.1.0.0/24 dst 10.2.0.0/24 dir out not found"));
	assert_int_equal(del("10.1.0.0/24", "10.2.0.0/24", 17, 0, 0, 0, 0, IN), -ENOENT);
	assert_null(classify(OUT, pkt4("10.1.0.5", "10.2.0.9", 17, 1, 2)));

	/* malformed requests change nothing */
	assert_int_equal(add((struct pol){"10.1.0.0/33", "10.2.0.0/24", ANY, OUT, BYPASS}),
			 -EINVAL);
	assert_non_null(strstr(err, "prefix length"));
	assert_int_equal(add((struct pol){"10.1.0.0/24", "fd00::/64", ANY, OUT, BYPASS}), -EINVAL);
	assert_int_equal(add((struct pol){"10.1.0.0/24", "10.2.0.0/24", ANY, OUT, PROTECT}),
			 -EINVAL);
	assert_non_null(strstr(err, "needs an spi"));
	assert_int_equal(
	    add((struct pol){"10.1.0.0/24", "10.2.0.0/24", 17, 2000, 1000, 0, 0, OUT, BYPASS}),
	    -EINVAL);
	assert_int_equal(
	    add((struct pol){"10.1.0.0/24", "10.2.0.0/24", 300, 0, 0, 0, 0, OUT, BYPASS}), -EINVAL);
	assert_int_equal(
	    add((struct pol){"10.1.0.0/24", "10.2.0.0/24", 6, 0, 0, 1, 70000, OUT, BYPASS}),
	    -EINVAL);
	n = spd_dump(&v);
	assert_int_equal(n, 2);
	spd_dump_free(v, n);

	spd_flush(NULL, NULL, 0);
	n = spd_dump(&v);
	assert_int_equal(n, 0);
	spd_dump_free(v, n);
	assert_null(classify(IN, pkt4("10.1.0.5", "10.2.0.9", 17, 1, 2)));
	assert_int_equal(del("10.3.0.0/24", "10.4.0.0/24", ANY, OUT), -ENOENT);
}

static void test_lookup4(void **state)
{
	(void)state;
	/* prefixes: the longer one wins at equal priority, whatever the order of adding */
	assert_int_equal(add((struct pol){"10.1.0.0/16", "10.2.0.0/16", ANY, OUT, PROTECT, 1}), 0);
	assert_int_equal(add((struct pol){"10.1.2.0/24", "10.2.0.0/16", ANY, OUT, PROTECT, 2}), 0);
	assert_int_equal(add((struct pol){"10.1.2.128/25", "10.2.3.4/32", ANY, OUT, PROTECT, 3}),
			 0);
	/* protocols and port ranges */
	assert_int_equal(add((struct pol){"10.5.0.0/16", "10.6.0.0/16", ANY, OUT, PROTECT, 10}), 0);
	assert_int_equal(
	    add((struct pol){"10.5.0.0/16", "10.6.0.0/16", 17, 0, 0, 0, 0, OUT, PROTECT, 11}), 0);
	assert_int_equal(add((struct pol){"10.5.0.0/16", "10.6.0.0/16", 17, 1000, 2000, 53, 53, OUT,
					  PROTECT, 12}),
			 0);
	assert_int_equal(
	    add((struct pol){"10.5.0.0/16", "10.6.0.0/16", 6, 0, 0, 443, 443, OUT, PROTECT, 13}),
	    0);
	/* priority beats specificity; equal everything: first added wins */
	assert_int_equal(add((struct pol){"10.7.0.0/16", "10.8.1.0/24", ANY, OUT, PROTECT, 20}), 0);
	assert_int_equal(add((struct pol){"0.0.0.0/0", "10.8.0.0/16", ANY, OUT, DISCARD, 0, 100}),
			 0);
	assert_int_equal(add((struct pol){"10.9.0.0/16", "0.0.0.0/0", ANY, OUT, PROTECT, 30, 500}),
			 0);
	assert_int_equal(add((struct pol){"0.0.0.0/0", "10.9.0.0/16", ANY, OUT, PROTECT, 31, 500}),
			 0);

	assert_int_equal(spi_of(OUT, pkt4("10.1.9.9", "10.2.9.9", 17, 1, 2)), 1);
	assert_int_equal(spi_of(OUT, pkt4("10.1.2.9", "10.2.9.9", 17, 1, 2)), 2);
	assert_int_equal(spi_of(OUT, pkt4("10.1.2.200", "10.2.3.4", 1, 0, 0)), 3);
	assert_int_equal(spi_of(OUT, pkt4("10.1.2.200", "10.2.3.5", 1, 0, 0)), 2);
	assert_int_equal(spi_of(OUT, pkt4("10.1.2.200", "10.3.3.4", 1, 0, 0)), 0);
	assert_int_equal(spi_of(IN, pkt4("10.1.9.9", "10.2.9.9", 17, 1, 2)), 0);

	assert_int_equal(spi_of(OUT, pkt4("10.5.0.1", "10.6.0.1", 1, 0, 0)), 10);
	assert_int_equal(spi_of(OUT, pkt4("10.5.0.1", "10.6.0.1", 17, 999, 53)), 11);
	assert_int_equal(spi_of(OUT, pkt4("10.5.0.1", "10.6.0.1", 17, 1000, 53)), 12);
	assert_int_equal(spi_of(OUT, pkt4("10.5.0.1", "10.6.0.1", 17, 2000, 53)), 12);
	assert_int_equal(spi_of(OUT, pkt4("10.5.0.1", "10.6.0.1", 17, 2001, 53)), 11);
	assert_int_equal(spi_of(OUT, pkt4("10.5.0.1", "10.6.0.1", 17, 1500, 54)), 11);
	assert_int_equal(spi_of(OUT, pkt4("10.5.0.1", "10.6.0.1", 6, 1500, 443)), 13);
	assert_int_equal(spi_of(OUT, pkt4("10.5.0.1", "10.6.0.1", 6, 1500, 444)), 10);
	assert_int_equal(spi_of(OUT, pkt4("10.5.0.1", "10.6.0.1", 132, 1500, 443)), 10);

	assert_int_equal(classify(OUT, pkt4("10.7.0.1", "10.8.1.1", 6, 1, 1))->action, DISCARD);
	assert_int_equal(spi_of(OUT, pkt4("10.7.0.1", "10.8.2.1", 6, 1, 1)), 0);
	assert_int_equal(spi_of(OUT, pkt4("10.9.0.1", "10.9.0.2", 6, 1, 1)), 30);

	/* a burst mixing hits and misses, longer than one internal chunk */
	{
		struct pkt p[SPD_BURST * 2 + 3];
		const uint8_t *l3[RTE_DIM(p)];
		uint16_t len[RTE_DIM(p)];
		struct spd_policy *out[RTE_DIM(p)];
		unsigned i;

		for (i = 0; i < RTE_DIM(p); i++) {
			p[i] = pkt4(i % 3 ? "10.1.9.9" : "10.1.2.9",
				    i % 5 ? "10.2.0.1" : "10.3.0.1", 17, 1, 2);
			l3[i] = p[i].b;
			len[i] = p[i].len;
		}
		spd_classify(OUT, AF_INET, l3, len, RTE_DIM(p), 0, rte_rdtsc(), out, NULL);
		for (i = 0; i < RTE_DIM(p); i++) {
			if (i % 5 == 0)
				assert_null(out[i]);
			else
				assert_int_equal(out[i]->spi, i % 3 ? 1 : 2);
		}
	}
}

/* Repeated lookups of one flow come from the worker's flow cache: every change of the SPD
 * must show on the very next one, in each worker's cache, for hits and misses alike. */
static void test_flow_cache_follows_changes(void **state)
{
	struct pkt flow = pkt4("10.1.2.3", "10.2.3.4", 17, 4000, 53);

	(void)state;
	for (unsigned w = 0; w < 2; w++) {
		assert_null(classify_on(OUT, &flow, w));
		assert_null(classify_on(OUT, &flow, w));
	}
	assert_int_equal(add((struct pol){"10.0.0.0/8", "10.2.0.0/16", ANY, OUT, PROTECT, 1}), 0);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(spi_of(OUT, flow), 1);
	assert_int_equal(
	    add((struct pol){"10.1.0.0/16", "10.2.3.0/24", 17, 0, 0, 53, 53, OUT, PROTECT, 2}), 0);
	assert_int_equal(spi_of(OUT, flow), 2);
	assert_int_equal(classify_on(OUT, &flow, 1)->spi, 2);
	/* same selector, rebound in place */
	assert_int_equal(add((struct pol){"10.1.0.0/16", "10.2.3.0/24", 17, 0, 0, 53, 53, OUT,
					  PROTECT, 3, 0, true}),
			 0);
	assert_int_equal(spi_of(OUT, flow), 3);
	assert_int_equal(del("10.1.0.0/16", "10.2.3.0/24", 17, 0, 0, 53, 53, OUT), 0);
	assert_int_equal(spi_of(OUT, flow), 1);
	assert_int_equal(classify_on(OUT, &flow, 1)->spi, 1);
	/* the other direction has its own entries */
	assert_null(classify(IN, flow));
	assert_int_equal(spd_flush(NULL, err, sizeof(err)), 0);
	assert_null(classify(OUT, flow));
	assert_null(classify_on(OUT, &flow, 1));
}

static void test_lookup6(void **state)
{
	(void)state;
	assert_int_equal(add((struct pol){"fd01::/48", "fd02::/48", ANY, OUT, PROTECT, 1}), 0);
	assert_int_equal(add((struct pol){"fd01:0:0:1::/64", "fd02::/48", ANY, OUT, PROTECT, 2}),
			 0);
	assert_int_equal(add((struct pol){"fd01:0:0:1::/64", "fd02::1:2:3:4/128", 17, 0, 0, 4500,
					  4500, OUT, PROTECT, 3}),
			 0);
	assert_int_equal(add((struct pol){"::/0", "fd02:0:0:ff00::/57", ANY, OUT, BYPASS}), 0);
	/* a v4 policy never matches v6 traffic and vice versa */
	assert_int_equal(add((struct pol){"0.0.0.0/0", "0.0.0.0/0", ANY, OUT, DISCARD}), 0);

	assert_int_equal(spi_of(OUT, pkt6("fd01::9", "fd02::9", 6, 1, 2)), 1);
	assert_int_equal(spi_of(OUT, pkt6("fd01:0:0:1::9", "fd02::9", 6, 1, 2)), 2);
	assert_int_equal(spi_of(OUT, pkt6("fd01:0:0:1::9", "fd02::1:2:3:4", 17, 1, 4500)), 3);
	assert_int_equal(spi_of(OUT, pkt6("fd01:0:0:1::9", "fd02::1:2:3:4", 17, 1, 4501)), 2);
	assert_int_equal(spi_of(OUT, pkt6("fd01:0:1::9", "fd02::9", 6, 1, 2)), 0);
	assert_int_equal(spi_of(OUT, pkt6("fd01::9", "fd03::9", 6, 1, 2)), 0);
	assert_int_equal(classify(OUT, pkt6("fd09::9", "fd02:0:0:ff7f::1", 6, 1, 2))->action,
			 BYPASS);
	assert_null(classify(OUT, pkt6("fd09::9", "fd02:0:0:ff80::1", 6, 1, 2)));
	assert_int_equal(classify(OUT, pkt4("1.2.3.4", "5.6.7.8", 6, 1, 2))->action, DISCARD);

	assert_int_equal(del("fd01:0:0:1::/64", "fd02::/48", ANY, OUT), 0);
	assert_int_equal(spi_of(OUT, pkt6("fd01:0:0:1::9", "fd02::9", 6, 1, 2)), 1);
}

static void test_fragments_and_options(void **state)
{
	(void)state;
	assert_int_equal(
	    add((struct pol){"10.1.0.0/16", "10.2.0.0/16", 17, 0, 0, 53, 53, OUT, PROTECT, 53}), 0);
	assert_int_equal(
	    add((struct pol){"10.1.0.0/16", "10.2.0.0/16", 17, 0, 0, 0, 0, OUT, PROTECT, 17}), 0);
	assert_int_equal(add((struct pol){"10.1.0.0/16", "10.2.0.0/16", ANY, OUT, PROTECT, 99}), 0);

	/* first fragment (MF set, offset 0) carries the ports */
	assert_int_equal(spi_of(OUT, pkt4x("10.1.0.1", "10.2.0.1", 17, 9, 53, 0, 0x2000)), 53);
	/* non-first fragment: bytes after the header are payload, not ports */
	assert_int_equal(spi_of(OUT, pkt4x("10.1.0.1", "10.2.0.1", 17, 9, 53, 0, 0x0010)), 17);
	assert_int_equal(spi_of(OUT, pkt4x("10.1.0.1", "10.2.0.1", 17, 9, 53, 0, 0x2010)), 17);
	/* options move the ports */
	assert_int_equal(spi_of(OUT, pkt4x("10.1.0.1", "10.2.0.1", 17, 9, 53, 1, 0)), 53);
	assert_int_equal(spi_of(OUT, pkt4x("10.1.0.1", "10.2.0.1", 17, 9, 54, 10, 0)), 17);
	/* protocols without ports: type/code bytes are not ports */
	assert_int_equal(spi_of(OUT, pkt4("10.1.0.1", "10.2.0.1", 1, 0x0800, 53)), 99);
	/* truncated L4 header: matches as ports 0 */
	{
		struct pkt p = pkt4("10.1.0.1", "10.2.0.1", 17, 9, 53);

		p.len = 22;
		assert_int_equal(spi_of(OUT, p), 17);
		p.len = 19;
		assert_null(classify(OUT, p));
	}

	assert_int_equal(
	    add((struct pol){"fd01::/16", "fd02::/16", 17, 0, 0, 53, 53, OUT, PROTECT, 653}), 0);
	assert_int_equal(add((struct pol){"fd01::/16", "fd02::/16", ANY, OUT, PROTECT, 699}), 0);
	assert_int_equal(spi_of(OUT, pkt6x("fd01::1", "fd02::1", 17, 9, 53, 0)), 653);
	assert_int_equal(spi_of(OUT, pkt6x("fd01::1", "fd02::1", 17, 9, 53, 1)), 653);
	assert_int_equal(spi_of(OUT, pkt6x("fd01::1", "fd02::1", 17, 9, 53, 2)), 653);
	assert_int_equal(spi_of(OUT, pkt6x("fd01::1", "fd02::1", 17, 9, 53, 3)), 699);
	assert_int_equal(spi_of(OUT, pkt6x("fd01::1", "fd02::1", 17, 9, 54, 1)), 699);
}

static void *fake_sa(int dir, uint32_t spi, const uint8_t *sa_dst, size_t sa_len)
{
	(void)sa_dst;
	(void)sa_len;
	return spi == 0x100 && dir == DPSEC__DIR__DIR_OUT ? (void *)0x1000 : NULL;
}

static void test_counters_dump_sa(void **state)
{
	struct pol p = {"10.1.0.0/24", "10.2.0.0/24", ANY, OUT, PROTECT, 0x100};
	struct pkt k = pkt4("10.1.0.1", "10.2.0.1", 6, 1, 2);
	Dpsec__PolicyInfo **v, *q;
	struct req r;
	uint8_t d[4] = {192, 0, 2, 2};
	size_t n;

	(void)state;
	spd_set_sa_resolver(fake_sa);
	assert_int_equal(add(p), 0);
	assert_ptr_equal(spd_policy_sa(classify_on(OUT, &k, 0)), (void *)0x1000);
	classify_on(OUT, &k, 3);
	classify_on(OUT, &k, SPD_MAX_WORKERS - 1);
	/* counts survive replace (make-before-break keeps the policy's history) */
	p.spi = 0x101;
	p.replace = true;
	assert_int_equal(add(p), 0);
	assert_null(spd_policy_sa(classify_on(OUT, &k, 1)));
	/* an inbound SA with the same SPI must not capture an outbound policy */
	assert_int_equal(spd_bind_sa(DPSEC__DIR__DIR_IN, 0x101, d, 4, (void *)0x3000), 0);
	/* worker 1's flow cache now holds the flow with no SA: binds must not leave it stale */
	assert_null(sa_on(OUT, &k, 1));
	assert_int_equal(spd_bind_sa(DPSEC__DIR__DIR_OUT, 0x101, d, 4, (void *)0x2000), 1);
	assert_ptr_equal(sa_on(OUT, &k, 1), (void *)0x2000); /* refilled after the bind */
	assert_ptr_equal(sa_on(OUT, &k, 1), (void *)0x2000); /* and now a cache hit */
	assert_int_equal(spd_replace_sa((void *)0x2000, (void *)0x4000), 1);
	assert_ptr_equal(sa_on(OUT, &k, 1), (void *)0x4000);
	assert_int_equal(spd_replace_sa((void *)0x4000, NULL), 1);
	assert_null(sa_on(OUT, &k, 1));
	assert_int_equal(spd_bind_sa(DPSEC__DIR__DIR_OUT, 0x101, d, 4, NULL), 1);
	assert_int_equal(spd_bind_sa(DPSEC__DIR__DIR_OUT, 0x102, d, 4, NULL), 0);
	spd_set_sa_resolver(NULL);

	assert_int_equal(
	    add((struct pol){"fd01::/64", "fd02::/64", 17, 5, 6, 7, 8, IN, TRAP, 0, 7}), 0);
	n = spd_dump(&v);
	assert_int_equal(n, 2);
	/* in before out */
	assert_int_equal(v[0]->policy->dir, IN);
	assert_int_equal(v[0]->policy->action, TRAP);
	assert_int_equal(v[0]->policy->priority, 7);
	assert_int_equal(v[0]->policy->sel->src->addr.len, 16);
	assert_int_equal(v[0]->policy->sel->proto, 17);
	assert_int_equal(v[0]->policy->sel->sport_lo, 5);
	assert_int_equal(v[0]->policy->sel->dport_hi, 8);
	assert_int_equal(v[0]->packets, 0);
	assert_int_equal(v[0]->last_use, 0);
	assert_int_equal(v[1]->policy->spi, 0x101);
	assert_int_equal(v[1]->policy->priority, 1000);
	assert_int_equal(v[1]->policy->sel->dst->len, 24);
	assert_false(v[1]->policy->sel->has_sport_lo);
	assert_int_equal(v[1]->packets, 9);
	assert_true(v[1]->last_use >= (uint64_t)time(NULL) - 5);
	spd_dump_free(v, n);

	req_fill(&r, &p);
	assert_int_equal(spd_query(&r.del, &q, err, sizeof(err)), 0);
	assert_int_equal(q->packets, 9);
	dpsec__policy_info__free_unpacked(q, NULL);
	r.del.dir = IN;
	assert_int_equal(spd_query(&r.del, &q, err, sizeof(err)), -ENOENT);
	assert_null(q);
}

static void test_trap_rate_limit(void **state)
{
	struct spd_policy *p;
	uint64_t t, hz = rte_get_tsc_hz();

	(void)state;
	assert_int_equal(add((struct pol){"10.1.0.0/24", "10.2.0.0/24", ANY, OUT, TRAP}), 0);
	p = classify(OUT, pkt4("10.1.0.1", "10.2.0.1", 6, 1, 2));
	assert_non_null(p);
	assert_int_equal(p->action, TRAP);
	t = rte_rdtsc();
	assert_true(spd_trap_should_raise(p, 0, t));
	assert_false(spd_trap_should_raise(p, 0, t + 1));
	assert_false(spd_trap_should_raise(p, 0, t + hz - 1));
	/* workers keep their own state: no shared writes */
	assert_true(spd_trap_should_raise(p, 1, t + 10));
	assert_true(spd_trap_should_raise(p, 0, t + hz));
	assert_false(spd_trap_should_raise(p, 0, t + hz + hz / 2));
	assert_true(spd_trap_should_raise(p, 0, t + 3 * hz));
}

static void test_batch_10k(void **state)
{
	uint64_t builds;
	struct timespec a, b;
	unsigned i;
	char s[32], d[32];

	(void)state;
	clock_gettime(CLOCK_MONOTONIC, &a);
	builds = spd_build_count();
	spd_begin();
	for (i = 0; i < N_BATCH; i++) {
		snprintf(s, sizeof(s), "10.%u.%u.0/24", 100 + i / 256, i % 256);
		snprintf(d, sizeof(d), "172.%u.%u.0/24", 16 + i / 256, i % 256);
		assert_int_equal(add((struct pol){s, d, ANY, OUT, PROTECT, 0x1000 + i}), 0);
	}
	/* staged changes behave like committed ones for the control API ... */
	assert_int_equal(add((struct pol){"10.100.0.0/24", "172.16.0.0/24", ANY, OUT, PROTECT, 1}),
			 -EEXIST);
	assert_int_equal(add((struct pol){"10.100.1.0/24", "172.16.1.0/24", ANY, OUT, PROTECT, 7,
					  .replace = true}),
			 0);
	assert_int_equal(del("10.100.2.0/24", "172.16.2.0/24", ANY, OUT), 0);
	/* ... but nothing is built or visible before commit */
	assert_int_equal(spd_build_count(), builds);
	assert_null(classify(OUT, pkt4("10.100.0.1", "172.16.0.1", 6, 1, 2)));
	assert_int_equal(spd_commit(err, sizeof(err)), 0);
	clock_gettime(CLOCK_MONOTONIC, &b);
	assert_int_equal(spd_build_count(), builds + 1);
	print_message("10,000 policies staged and built in %.2f s\n",
		      (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9);

	for (i = 0; i < N_BATCH; i += 7) {
		char sa[32], da[32];
		uint32_t want = i == 1 ? 7 : i == 2 ? 0 : 0x1000 + i;

		snprintf(sa, sizeof(sa), "10.%u.%u.77", 100 + i / 256, i % 256);
		snprintf(da, sizeof(da), "172.%u.%u.33", 16 + i / 256, i % 256);
		assert_int_equal(spi_of(OUT, pkt4(sa, da, 17, 1, 2)), want);
		/* crossing two selectors' halves matches neither */
		snprintf(da, sizeof(da), "172.%u.%u.33", 16 + i / 256, (i + 1) % 256);
		assert_int_equal(spi_of(OUT, pkt4(sa, da, 17, 1, 2)), 0);
	}
	assert_int_equal(spi_of(OUT, pkt4("10.100.1.1", "172.16.1.1", 17, 1, 2)), 7);
	assert_int_equal(spi_of(OUT, pkt4("10.100.2.1", "172.16.2.1", 17, 1, 2)), 0);

	/* a batch that only deletes rebuilds once too */
	builds = spd_build_count();
	spd_begin();
	for (i = 3; i < N_BATCH; i++) {
		snprintf(s, sizeof(s), "10.%u.%u.0/24", 100 + i / 256, i % 256);
		snprintf(d, sizeof(d), "172.%u.%u.0/24", 16 + i / 256, i % 256);
		assert_int_equal(del(s, d, ANY, OUT), 0);
	}
	assert_int_equal(spd_commit(err, sizeof(err)), 0);
	assert_int_equal(spd_build_count(), builds + 1);
	assert_int_equal(spi_of(OUT, pkt4("10.100.0.1", "172.16.0.1", 6, 1, 2)), 0x1000);
	assert_int_equal(spi_of(OUT, pkt4("10.100.3.1", "172.16.3.1", 6, 1, 2)), 0);
}

/* ---- RCU: a reader classifying while the control thread churns ---- */

#define SPI_A1	   0xa1
#define SPI_A2	   0xa2
#define SPI_B	   0xb0
#define SPI_C	   0xc0
#define RCU_ROUNDS 300 /* x5 commits, each waiting for the reader */

static volatile bool reader_stop;
static uint64_t reader_loops, reader_errors, reader_seen_b;

static uint8_t net_a[2][4], net_b[2][4], net_c[2][4]; /* src, dst of A, B, C */

static bool policy_is(const struct spd_policy *p, const uint8_t net[2][4], unsigned plen)
{
	return p->family == 4 && p->src_len == plen && p->dst_len == plen &&
	       memcmp(p->src, net[0], 4) == 0 && memcmp(p->dst, net[1], 4) == 0 &&
	       p->action == PROTECT;
}

static void *reader(void *arg)
{
	struct pkt pa = pkt4("10.1.0.1", "10.2.0.1", 6, 1, 2);
	struct pkt pb = pkt4("10.3.0.1", "10.4.0.1", 6, 1, 2);
	const uint8_t *l3[2] = {pa.b, pb.b};
	uint16_t len[2] = {pa.len, pb.len};
	struct spd_policy *out[2];

	(void)arg;
	rte_rcu_qsbr_thread_register(qs, READER_ID);
	rte_rcu_qsbr_thread_online(qs, READER_ID);
	while (!__atomic_load_n(&reader_stop, __ATOMIC_RELAXED)) {
		spd_classify(OUT, AF_INET, l3, len, 2, READER_ID, rte_rdtsc(), out, NULL);
		/* A is always there, with one of its two SAs */
		if (out[0] == NULL || !policy_is(out[0], net_a, 24) ||
		    (out[0]->spi != SPI_A1 && out[0]->spi != SPI_A2))
			reader_errors++;
		/* B comes and goes above the fallback C; nothing else may ever show up */
		if (out[1] && policy_is(out[1], net_b, 24) && out[1]->spi == SPI_B)
			reader_seen_b++;
		else if (out[1] == NULL || !policy_is(out[1], net_c, 16) || out[1]->spi != SPI_C)
			reader_errors++;
		reader_loops++;
		rte_rcu_qsbr_quiescent(qs, READER_ID);
	}
	rte_rcu_qsbr_thread_offline(qs, READER_ID);
	rte_rcu_qsbr_thread_unregister(qs, READER_ID);
	return NULL;
}

static void test_rcu_reader(void **state)
{
	pthread_t t;
	unsigned i;
	char s[32];

	(void)state;
	assert_int_equal(add((struct pol){"10.1.0.0/24", "10.2.0.0/24", ANY, OUT, PROTECT, SPI_A1}),
			 0);
	assert_int_equal(add((struct pol){"10.3.0.0/16", "10.4.0.0/16", ANY, OUT, PROTECT, SPI_C}),
			 0);
	inet_pton(AF_INET, "10.1.0.0", net_a[0]);
	inet_pton(AF_INET, "10.2.0.0", net_a[1]);
	inet_pton(AF_INET, "10.3.0.0", net_b[0]);
	inet_pton(AF_INET, "10.4.0.0", net_b[1]);
	memcpy(net_c, net_b, sizeof(net_c));
	reader_stop = false;
	assert_int_equal(pthread_create(&t, NULL, reader, NULL), 0);
	for (i = 0; i < RCU_ROUNDS; i++) {
		assert_int_equal(add((struct pol){"10.1.0.0/24", "10.2.0.0/24", ANY, OUT, PROTECT,
						  i % 2 ? SPI_A1 : SPI_A2, .replace = true}),
				 0);
		assert_int_equal(
		    add((struct pol){"10.3.0.0/24", "10.4.0.0/24", ANY, OUT, PROTECT, SPI_B}), 0);
		/* churn slots so a freed record would quickly hold some other selector */
		snprintf(s, sizeof(s), "10.200.%u.0/24", i % 200);
		assert_int_equal(add((struct pol){s, "10.2.0.0/24", ANY, OUT, DISCARD}), 0);
		assert_int_equal(del("10.3.0.0/24", "10.4.0.0/24", ANY, OUT), 0);
		assert_int_equal(del(s, "10.2.0.0/24", ANY, OUT), 0);
	}
	__atomic_store_n(&reader_stop, true, __ATOMIC_RELAXED);
	pthread_join(t, NULL);
	print_message("reader: %" PRIu64 " bursts, %" PRIu64 " saw B, %" PRIu64 " errors\n",
		      reader_loops, reader_seen_b, reader_errors);
	assert_int_equal(reader_errors, 0);
	assert_true(reader_loops > RCU_ROUNDS);
	assert_true(reader_seen_b > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_add_del_errors, test_setup),
	    cmocka_unit_test_setup(test_lookup4, test_setup),
	    cmocka_unit_test_setup(test_flow_cache_follows_changes, test_setup),
	    cmocka_unit_test_setup(test_lookup6, test_setup),
	    cmocka_unit_test_setup(test_fragments_and_options, test_setup),
	    cmocka_unit_test_setup(test_counters_dump_sa, test_setup),
	    cmocka_unit_test_setup(test_trap_rate_limit, test_setup),
	    cmocka_unit_test_setup(test_batch_10k, test_setup),
	    cmocka_unit_test_setup(test_rcu_reader, test_setup),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
