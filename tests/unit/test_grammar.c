/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests for the text grammar (proto/grammar*.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "grammar.h"

#define K16 "00112233445566778899aabbccddeeff"
#define K4  "a1b2c3d4"

/* Packed bytes of a request, to compare two requests field by field. */
static uint8_t *pack(const Dpsec__Request *r, size_t *n)
{
	uint8_t *b;

	*n = protobuf_c_message_get_packed_size(&r->base);
	b = malloc(*n + 1);
	assert_non_null(b);
	assert_int_equal(protobuf_c_message_pack(&r->base, b), *n);
	return b;
}

/* parse -> format -> parse must give the same request */
static void roundtrip(const Dpsec__Request *r)
{
	char line[GRAM_FMT_MAX], err[GRAM_ERR_MAX];
	Dpsec__Request *again = NULL;
	uint8_t *a, *b;
	size_t na, nb;
	int n = gram_format_request(r, line, sizeof(line));

	if (n < 0)
		fail_msg("format failed");
	assert_int_equal((size_t)n, strlen(line));
	if (gram_parse_line(line, &again, err, sizeof(err)) != 0)
		fail_msg("formatted line \"%s\" does not parse: %s", line, err);
	a = pack(r, &na);
	b = pack(again, &nb);
	if (na != nb || memcmp(a, b, na))
		fail_msg("round trip of \"%s\" changed the request", line);
	free(a);
	free(b);
	gram_request_free(again);
}

static Dpsec__Request *ok(const char *line)
{
	char err[GRAM_ERR_MAX] = "";
	Dpsec__Request *r = NULL;
	int rc = gram_parse_line(line, &r, err, sizeof(err));

	if (rc != 0)
		fail_msg("\"%s\" rejected: %s", line, err);
	assert_non_null(r);
	assert_int_equal(r->id, 0);
	roundtrip(r);
	return r;
}

static void bad(const char *line, const char *want)
{
	char err[GRAM_ERR_MAX] = "";
	Dpsec__Request *r = (Dpsec__Request *)&r; /* must be reset to NULL */
	int rc = gram_parse_line(line, &r, err, sizeof(err));

	if (rc != -1)
		fail_msg("\"%s\" accepted (rc %d)", line, rc);
	assert_null(r);
	if (!strstr(err, want))
		fail_msg("\"%s\": error \"%s\" lacks \"%s\"", line, err, want);
}

static void assert_addr(const ProtobufCBinaryData *a, const char *want)
{
	char buf[64];

	assert_string_equal(gram_addr_fmt(a, buf, sizeof(buf)), want);
}

static void assert_prefix(const Dpsec__Prefix *p, const char *want)
{
	char buf[64];

	assert_non_null(p);
	assert_string_equal(gram_prefix_fmt(p, buf, sizeof(buf)), want);
}

static void assert_hex(const ProtobufCBinaryData *b, const char *hex)
{
	char s[300];
	size_t i;

	assert_true(b->len * 2 < sizeof(s));
	for (i = 0; i < b->len; i++)
		sprintf(s + 2 * i, "%02x", b->data[i]);
	s[2 * b->len] = '\0';
	assert_string_equal(s, hex);
}

/* "0x" followed by @n bytes of 0x11 */
static char *key(size_t n)
{
	static char buf[4][300];
	static int k;
	char *s = buf[k++ % 4];
	size_t i;

	strcpy(s, "0x");
	for (i = 0; i < n; i++)
		strcpy(s + 2 + 2 * i, "11");
	return s;
}

/* ---- port, addr, route, neigh ---- */

static void test_port(void **state)
{
	Dpsec__Request *r;

	(void)state;
	r = ok("port 0 name inside");
	assert_int_equal(r->body_case, DPSEC__REQUEST__BODY_PORT);
	assert_int_equal(r->port->port_id, 0);
	assert_string_equal(r->port->name, "inside");
	gram_request_free(r);
	r = ok("  port\t15 name a_b-C9012345  ");
	assert_int_equal(r->port->port_id, 15);
	assert_string_equal(r->port->name, "a_b-C9012345");
	gram_request_free(r);

	bad("port 16 name x", "bad value \"16\" for \"port\"");
	bad("port -1 name x", "bad value \"-1\"");
	bad("port x name x", "bad value \"x\"");
	bad("port 1 name abcdefghijklm", "bad name \"abcdefghijklm\"");
	bad("port 1 name in.side", "bad name");
	bad("port 1", "missing \"name\"");
	bad("port", "missing port number");
	bad("port 1 name", "missing value after \"name\"");
	bad("port 1 name a name b", "\"name\" given twice");
	bad("port 1 name a foo", "unknown word \"foo\"");
}

static void test_addr(void **state)
{
	Dpsec__Request *r;

	(void)state;
	r = ok("addr add 10.1.0.1/24 dev inside");
	assert_int_equal(r->body_case, DPSEC__REQUEST__BODY_ADDR);
	assert_true(r->addr->add);
	assert_prefix(r->addr->prefix, "10.1.0.1/24");
	assert_int_equal(r->addr->prefix->addr.len, 4);
	assert_string_equal(r->addr->dev, "inside");
	gram_request_free(r);
	r = ok("addr del 2001:db8::1/64 dev outside");
	assert_false(r->addr->add);
	assert_int_equal(r->addr->prefix->addr.len, 16);
	assert_prefix(r->addr->prefix, "2001:db8::1/64");
	gram_request_free(r);

	bad("addr add 10.1.0.0/33 dev x", "bad prefix \"10.1.0.0/33\"");
	bad("addr add 10.1.0.1 dev x", "bad prefix \"10.1.0.1\"");
	bad("addr add 10.1.0.1/ dev x", "bad prefix");
	bad("addr add 10.1.0.1/2x dev x", "bad prefix");
	bad("addr add 2001:db8::1/129 dev x", "bad prefix \"2001:db8::1/129\"");
	bad("addr add 10.1/16 dev x", "bad prefix");
	bad("addr add 10.1.0.1/24", "missing \"dev\"");
	bad("addr add 10.1.0.1/24 dev", "missing value after \"dev\"");
	bad("addr add", "missing prefix");
	bad("addr foo 10.1.0.1/24 dev x", "expected \"add\" or \"del\"");
	bad("addr add 10.1.0.1/24 dev x dev y", "\"dev\" given twice");
}

static void test_route(void **state)
{
	Dpsec__Request *r;

	(void)state;
	r = ok("route add 10.9.0.0/16 via 10.1.0.254 dev inside metric 7");
	assert_int_equal(r->body_case, DPSEC__REQUEST__BODY_ROUTE);
	assert_true(r->route->add);
	assert_prefix(r->route->dst, "10.9.0.0/16");
	assert_true(r->route->has_via);
	assert_addr(&r->route->via, "10.1.0.254");
	assert_string_equal(r->route->dev, "inside");
	assert_true(r->route->has_metric);
	assert_int_equal(r->route->metric, 7);
	gram_request_free(r);

	r = ok("route add default via 192.0.2.254");
	assert_prefix(r->route->dst, "0.0.0.0/0");
	assert_null(r->route->dev);
	assert_false(r->route->has_metric);
	gram_request_free(r);
	r = ok("route add default dev outside");
	assert_prefix(r->route->dst, "0.0.0.0/0");
	gram_request_free(r);
	r = ok("route add default via fe80::1 dev outside");
	assert_prefix(r->route->dst, "::/0");
	gram_request_free(r);
	r = ok("route add 2001:db8:9::/48 via 2001:db8::fe metric 4294967295");
	assert_prefix(r->route->dst, "2001:db8:9::/48");
	assert_addr(&r->route->via, "2001:db8::fe");
	assert_int_equal(r->route->metric, 4294967295u);
	gram_request_free(r);
	r = ok("route del 10.9.0.0/16");
	assert_false(r->route->add);
	assert_false(r->route->has_via);
	gram_request_free(r);

	bad("route add 10.1.0.1/24 dev x", "10.1.0.1/24: host bits set");
	bad("route add 2001:db8::1/64 dev x", "2001:db8::1/64: host bits set");
	bad("route add 10.9.0.0/16", "needs \"via\" or \"dev\"");
	bad("route add 10.9.0.0/16 via 2001:db8::1", "families differ");
	bad("route add 10.9.0.0/16 via 10.1.0.300", "bad address \"10.1.0.300\"");
	bad("route add 10.9.0.0/16 dev x metric -1", "bad value \"-1\" for \"metric\"");
	bad("route add 10.9.0.0/16 dev x metric 4294967296", "bad value");
	bad("route add 10.9.0.0/16 dev x metric 1 metric 2", "\"metric\" given twice");
	bad("route add 10.9.0.0/16 dev x via", "missing value after \"via\"");
	bad("route add 10.9.0.0/16 dev x gw 1.2.3.4", "unknown word \"gw\"");
}

static void test_neigh(void **state)
{
	Dpsec__Request *r;
	const uint8_t mac[6] = {0x02, 0, 0, 0, 0, 0xab};

	(void)state;
	r = ok("neigh add 192.0.2.2 lladdr 02:00:00:00:00:AB dev outside");
	assert_int_equal(r->body_case, DPSEC__REQUEST__BODY_NEIGH);
	assert_true(r->neigh->add);
	assert_addr(&r->neigh->addr, "192.0.2.2");
	assert_true(r->neigh->has_lladdr);
	assert_int_equal(r->neigh->lladdr.len, 6);
	assert_memory_equal(r->neigh->lladdr.data, mac, 6);
	assert_string_equal(r->neigh->dev, "outside");
	gram_request_free(r);
	r = ok("neigh add 2001:db8::2 dev outside lladdr 02:00:00:00:00:ab");
	assert_addr(&r->neigh->addr, "2001:db8::2");
	gram_request_free(r);
	r = ok("neigh del 192.0.2.2 dev outside");
	assert_false(r->neigh->add);
	assert_false(r->neigh->has_lladdr);
	gram_request_free(r);

	bad("neigh add 192.0.2.2 dev x", "missing \"lladdr\"");
	bad("neigh add 192.0.2.2 lladdr 02:00:00:00:00:01", "missing \"dev\"");
	bad("neigh add 192.0.2.2 lladdr 02:00:00:00:00 dev x", "bad MAC");
	bad("neigh add 192.0.2.2 lladdr 02:00:00:00:00:0g dev x", "bad MAC");
	bad("neigh add 192.0.2.2 lladdr 02-00-00-00-00-01 dev x", "bad MAC");
	bad("neigh add 192.0.2.2 lladdr 01:00:5e:00:00:01 dev x", "multicast");
	bad("neigh add 192.0.2.0/24 lladdr 02:00:00:00:00:01 dev x", "bad address");
}

/* ---- sa ---- */

static void test_sa_add_aead_full(void **state)
{
	Dpsec__Request *r;
	Dpsec__SaAdd *m;

	(void)state;
	r = ok("sa add src 192.0.2.1 dst 192.0.2.2 proto esp spi 0x00000100 dir out mode tunnel "
	       "aead aes-gcm-128 0x" K16 K4 " replay-window 64 esn encap udp sport 4500 dport 4501 "
	       "lifetime soft bytes 1000 packets 10 seconds 30 hard bytes 2000 packets 20 "
	       "seconds 60");
	assert_int_equal(r->body_case, DPSEC__REQUEST__BODY_SA_ADD);
	m = r->sa_add;
	assert_addr(&m->src, "192.0.2.1");
	assert_addr(&m->dst, "192.0.2.2");
	assert_int_equal(m->proto, 50);
	assert_int_equal(m->spi, 0x100);
	assert_int_equal(m->dir, DPSEC__DIR__DIR_OUT);
	assert_int_equal(m->mode, DPSEC__MODE__MODE_TUNNEL);
	assert_true(m->has_aead);
	assert_int_equal(m->aead, DPSEC__AEAD__AES_GCM_128);
	assert_false(m->has_cipher);
	assert_false(m->has_integ);
	assert_false(m->has_auth_key);
	assert_true(m->has_enc_key);
	assert_hex(&m->enc_key, K16 K4);
	assert_true(m->has_replay_window);
	assert_int_equal(m->replay_window, 64);
	assert_true(m->has_esn && m->esn);
	assert_non_null(m->encap);
	assert_int_equal(m->encap->sport, 4500);
	assert_int_equal(m->encap->dport, 4501);
	assert_non_null(m->lifetime);
	assert_true(m->lifetime->has_soft_bytes && m->lifetime->has_hard_seconds);
	assert_int_equal(m->lifetime->soft_bytes, 1000);
	assert_int_equal(m->lifetime->soft_packets, 10);
	assert_int_equal(m->lifetime->soft_seconds, 30);
	assert_int_equal(m->lifetime->hard_bytes, 2000);
	assert_int_equal(m->lifetime->hard_packets, 20);
	assert_int_equal(m->lifetime->hard_seconds, 60);
	assert_false(m->has_seq_out);
	assert_false(m->has_replace);
	gram_request_free(r);

	/* minimal, IPv6, decimal SPI, words in another order, only some lifetime units */
	r = ok("sa add dir in mode transport spi 4294967295 proto esp dst 2001:db8::2 "
	       "src 2001:db8::1 aead chacha20-poly1305 0x" K16 K16 K4 " lifetime hard packets 5");
	m = r->sa_add;
	assert_addr(&m->src, "2001:db8::1");
	assert_addr(&m->dst, "2001:db8::2");
	assert_int_equal(m->spi, 0xffffffffu);
	assert_int_equal(m->dir, DPSEC__DIR__DIR_IN);
	assert_int_equal(m->mode, DPSEC__MODE__MODE_TRANSPORT);
	assert_int_equal(m->aead, DPSEC__AEAD__CHACHA20_POLY1305);
	assert_int_equal(m->enc_key.len, 36);
	assert_false(m->has_replay_window);
	assert_false(m->has_esn);
	assert_null(m->encap);
	assert_false(m->lifetime->has_soft_bytes);
	assert_false(m->lifetime->has_hard_bytes);
	assert_true(m->lifetime->has_hard_packets);
	assert_int_equal(m->lifetime->hard_packets, 5);
	gram_request_free(r);

	r = ok("sa add src 192.0.2.1 dst 192.0.2.2 proto esp spi 256 dir out mode tunnel "
	       "aead aes-gcm-256 0X" K16 K16 K4 " replay-window 0 seq-out 12345 replace reqid 7");
	m = r->sa_add;
	assert_true(m->has_reqid);
	assert_int_equal(m->reqid, 7);
	assert_int_equal(m->spi, 256);
	assert_int_equal(m->aead, DPSEC__AEAD__AES_GCM_256);
	assert_int_equal(m->enc_key.len, 36);
	assert_true(m->has_replay_window);
	assert_int_equal(m->replay_window, 0);
	assert_true(m->has_seq_out);
	assert_int_equal(m->seq_out, 12345);
	assert_true(m->has_replace && m->replace);
	gram_request_free(r);
}

static void test_sa_add_enc_auth(void **state)
{
	static const struct {
		const char *name;
		Dpsec__Cipher id;
		size_t len;
	} ciphers[] = {{"aes-cbc-128", DPSEC__CIPHER__AES_CBC_128, 16},
		       {"aes-cbc-256", DPSEC__CIPHER__AES_CBC_256, 32},
		       {"aes-ctr-128", DPSEC__CIPHER__AES_CTR_128, 20}};
	static const struct {
		const char *name;
		Dpsec__Integ id;
		size_t len;
	} integs[] = {{"hmac-sha1-96", DPSEC__INTEG__HMAC_SHA1_96, 20},
		      {"hmac-sha256-128", DPSEC__INTEG__HMAC_SHA256_128, 32},
		      {"hmac-sha384-192", DPSEC__INTEG__HMAC_SHA384_192, 48},
		      {"hmac-sha512-256", DPSEC__INTEG__HMAC_SHA512_256, 64},
		      {"hmac-md5-96", DPSEC__INTEG__HMAC_MD5_96, 16}};
	char line[1024];
	Dpsec__Request *r;
	size_t c, i;

	(void)state;
	for (c = 0; c < 3; c++) {
		for (i = 0; i < 5; i++) {
			snprintf(line, sizeof(line),
				 "sa add src 192.0.2.2 dst 192.0.2.1 proto esp spi 0x200 dir in "
				 "mode tunnel enc %s %s auth %s %s",
				 ciphers[c].name, key(ciphers[c].len), integs[i].name,
				 key(integs[i].len));
			r = ok(line);
			assert_true(r->sa_add->has_cipher && r->sa_add->has_integ);
			assert_false(r->sa_add->has_aead);
			assert_int_equal(r->sa_add->cipher, ciphers[c].id);
			assert_int_equal(r->sa_add->integ, integs[i].id);
			assert_int_equal(r->sa_add->enc_key.len, ciphers[c].len);
			assert_int_equal(r->sa_add->auth_key.len, integs[i].len);
			assert_int_equal(r->sa_add->auth_key.data[0], 0x11);
			gram_request_free(r);
		}
	}
	/* null cipher: key omitted or written as 0x; integrity still required */
	r = ok("sa add src 192.0.2.2 dst 192.0.2.1 proto esp spi 0x200 dir in mode tunnel "
	       "enc null auth hmac-sha256-128 0x" K16 K16);
	assert_int_equal(r->sa_add->cipher, DPSEC__CIPHER__CIPHER_NULL);
	assert_false(r->sa_add->has_enc_key);
	assert_hex(&r->sa_add->auth_key, K16 K16);
	gram_request_free(r);
	r = ok("sa add src 192.0.2.2 dst 192.0.2.1 proto esp spi 0x200 dir in mode tunnel "
	       "enc null 0x auth hmac-sha1-96 0x" K16 K4);
	assert_int_equal(r->sa_add->cipher, DPSEC__CIPHER__CIPHER_NULL);
	assert_false(r->sa_add->has_enc_key);
	gram_request_free(r);
}

#define SA_HEAD "sa add src 192.0.2.1 dst 192.0.2.2 proto esp spi 0x100 dir out mode tunnel "
#define SA_GCM	SA_HEAD "aead aes-gcm-128 0x" K16 K4

static void test_sa_add_bad(void **state)
{
	static const struct {
		const char *kw, *alg;
		size_t len;
		const char *note;
	} algs[] = {
	    {"aead", "aes-gcm-128", 20, " (16-byte key + 4-byte salt)"},
	    {"aead", "aes-gcm-256", 36, " (32-byte key + 4-byte salt)"},
	    {"aead", "chacha20-poly1305", 36, " (32-byte key + 4-byte salt)"},
	    {"enc", "aes-cbc-128", 16, ""},
	    {"enc", "aes-cbc-256", 32, ""},
	    {"enc", "aes-ctr-128", 20, " (16-byte key + 4-byte nonce)"},
	    {"auth", "hmac-sha1-96", 20, ""},
	    {"auth", "hmac-sha256-128", 32, ""},
	    {"auth", "hmac-sha384-192", 48, ""},
	    {"auth", "hmac-sha512-256", 64, ""},
	    {"auth", "hmac-md5-96", 16, ""},
	};
	char line[1024], want[128];
	size_t i;

	(void)state;
	bad(SA_HEAD "aead aes-gcm-128 0x" K16,
	    "sa add: key for aes-gcm-128 must be 20 bytes (16-byte key + 4-byte salt), got 16");
	for (i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
		const char *pre = !strcmp(algs[i].kw, "auth") ? "enc aes-cbc-128 0x" K16 " " : "";

		snprintf(line, sizeof(line), SA_HEAD "%s%s %s %s", pre, algs[i].kw, algs[i].alg,
			 key(algs[i].len - 1));
		snprintf(want, sizeof(want), "key for %s must be %zu bytes%s, got %zu", algs[i].alg,
			 algs[i].len, algs[i].note, algs[i].len - 1);
		bad(line, want);
		snprintf(line, sizeof(line), SA_HEAD "%s%s %s %s", pre, algs[i].kw, algs[i].alg,
			 key(algs[i].len + 1));
		bad(line, "must be");
	}
	bad(SA_HEAD "enc null 0x00 auth hmac-md5-96 0x" K16, "key for null must be 0 bytes");
	bad(SA_HEAD "aead aes-gcm-128 0xzz", "bad hex key \"0xzz\"");
	bad(SA_HEAD "aead aes-gcm-128 0x123", "odd number of hex digits");
	bad(SA_HEAD "aead aes-gcm-128 " K16 K4, "must start with 0x");
	bad(SA_HEAD "aead aes-gcm-128", "missing key after \"aes-gcm-128\"");
	bad(SA_HEAD "aead aes-gcm-512 0x" K16 K4, "unknown algorithm \"aes-gcm-512\"");
	bad(SA_HEAD "enc des 0x" K16, "unknown algorithm \"des\"");
	bad(SA_HEAD "enc aes-cbc-128 0x" K16 " auth hmac-sha3 0x" K16, "unknown algorithm");
	bad(SA_HEAD "aead", "missing value after \"aead\"");
	/* a bad key is not echoed in full into logs */
	bad(SA_HEAD "aead aes-gcm-128 0x" K16 "zzzzzzzz", "bad hex key \"0x00112...\"");

	bad("sa add src 192.0.2.1 dst 192.0.2.2 proto esp spi 255 dir out mode tunnel",
	    "SPI 255 is reserved");
	bad("sa add src 192.0.2.1 dst 192.0.2.2 proto esp spi 0x1 dir out mode tunnel", "reserved");
	bad("sa add src 192.0.2.1 dst 192.0.2.2 proto esp spi 0 dir out mode tunnel", "reserved");
	bad("sa add spi 0x100000000", "bad SPI");
	bad("sa add spi -256", "bad SPI");
	bad("sa add spi 0xg", "bad SPI");
	bad("sa add src 192.0.2.1 dst 2001:db8::2 proto esp spi 0x100 dir out mode tunnel "
	    "aead aes-gcm-128 0x" K16 K4,
	    "src and dst address families differ");
	bad(SA_HEAD "enc aes-cbc-128 0x" K16, "\"enc\" needs \"auth\"");
	bad(SA_HEAD "enc null", "\"enc\" needs \"auth\"");
	bad(SA_GCM " auth hmac-sha1-96 0x" K16 K4, "\"auth\" cannot be used with \"aead\"");
	bad(SA_GCM " enc aes-cbc-128 0x" K16, "\"aead\" and \"enc\" are exclusive");
	bad(SA_HEAD "auth hmac-sha1-96 0x" K16 K4, "\"auth\" needs \"enc\"");
	bad(SA_HEAD, "missing \"aead\" or \"enc\"");
	bad("sa add src 192.0.2.1 dst 192.0.2.2 proto esp spi 0x100 mode tunnel",
	    "missing \"dir\"");
	bad("sa add dst 192.0.2.2 proto esp spi 0x100 dir out mode tunnel", "missing \"src\"");
	bad("sa add src 192.0.2.1 dst 192.0.2.2 spi 0x100 dir out mode tunnel",
	    "missing \"proto\"");
	bad("sa add src 192.0.2.1 dst 192.0.2.2 proto esp dir out mode tunnel", "missing \"spi\"");
	bad("sa add src 192.0.2.1 dst 192.0.2.2 proto esp spi 0x100 dir out", "missing \"mode\"");
	bad(SA_GCM " dir in", "\"dir\" given twice");
	bad(SA_GCM " esn esn", "\"esn\" given twice");
	bad("sa add src 192.0.2.1 spi", "missing value after \"spi\"");
	bad(SA_GCM " foo", "unknown word \"foo\"");
	bad("sa add src 192.0.2.1 dst 192.0.2.2 proto ah", "unsupported proto \"ah\"");
	bad("sa add dir sideways", "bad dir \"sideways\"");
	bad("sa add mode beet", "bad mode \"beet\"");
	bad("sa add src 192.0.2", "bad address \"192.0.2\"");
	bad(SA_GCM " replay-window 4097", "bad value \"4097\" for \"replay-window\"");
	bad(SA_GCM " reqid 0", "bad value \"0\" for \"reqid\"");
	bad(SA_GCM " reqid", "missing value after \"reqid\"");
	bad(SA_GCM " encap udp sport 0 dport 4500", "bad value \"0\" for \"sport\"");
	bad(SA_GCM " encap udp sport 4500 dport 65536", "bad value \"65536\" for \"dport\"");
	bad(SA_GCM " encap udp sport 4500", "missing \"dport\"");
	bad(SA_GCM " encap tcp sport 4500 dport 4500", "unsupported encap \"tcp\"");
	bad(SA_GCM " lifetime soft bytes 2000 hard bytes 1000",
	    "soft bytes 2000 exceeds hard bytes 1000");
	bad(SA_GCM " lifetime hard seconds 10 soft seconds 11", "soft seconds 11 exceeds hard");
	bad(SA_GCM " lifetime", "\"lifetime\" needs \"soft\" or \"hard\"");
	bad(SA_GCM " lifetime soft", "\"soft\" needs bytes, packets or seconds");
	bad(SA_GCM " lifetime soft bytes", "missing value after \"bytes\"");
	bad(SA_GCM " lifetime soft bytes 0", "bad value \"0\" for \"soft bytes\"");
	bad(SA_GCM " lifetime soft bytes 5 soft bytes 6", "\"soft bytes\" given twice");
	bad(SA_GCM " lifetime soft bytes 5 bytes 6", "\"soft bytes\" given twice");
	bad(SA_GCM " lifetime soft bytes 18446744073709551616", "bad value");
	bad(SA_GCM " lifetime soft bytes 5 lifetime hard bytes 6", "\"lifetime\" given twice");
}

static void test_sa_del_flush(void **state)
{
	Dpsec__Request *r;

	(void)state;
	r = ok("sa del dst 192.0.2.2 proto esp spi 0x00000100");
	assert_int_equal(r->body_case, DPSEC__REQUEST__BODY_SA_DEL);
	assert_addr(&r->sa_del->dst, "192.0.2.2");
	assert_int_equal(r->sa_del->proto, 50);
	assert_int_equal(r->sa_del->spi, 0x100);
	gram_request_free(r);
	r = ok("sa del spi 1000 proto esp dst 2001:db8::2");
	assert_addr(&r->sa_del->dst, "2001:db8::2");
	assert_int_equal(r->sa_del->spi, 1000);
	gram_request_free(r);
	r = ok("sa flush");
	assert_int_equal(r->body_case, DPSEC__REQUEST__BODY_FLUSH);
	assert_int_equal(r->flush->what, DPSEC__FLUSH__WHAT__SA);
	gram_request_free(r);

	bad("sa del dst 192.0.2.2 proto esp", "sa del: missing \"spi\"");
	bad("sa del dst 192.0.2.2 spi 0x100", "missing \"proto\"");
	bad("sa del dst 192.0.2.2 proto esp spi 0x100 src 1.2.3.4", "unknown word \"src\"");
	bad("sa del dst 192.0.2.2 proto esp spi 0x10", "reserved");
	r = ok("sa flush owner ike");
	assert_string_equal(r->flush->owner, "ike");
	gram_request_free(r);

	bad("sa flush now", "unknown word \"now\"");
	bad("sa flush owner", "missing value after \"owner\"");
	bad("sa flush owner a.b", "bad owner \"a.b\"");
	bad("sa flush owner ike x", "unknown word \"x\"");
	bad("sa", "expected \"add\", \"del\", \"update\", \"lease\", \"get\" or \"flush\"");
	bad("sa list", "got \"list\"");
}

static void test_sa_lease(void **state)
{
	Dpsec__Request *r;

	(void)state;
	r = ok("sa lease dst 192.0.2.2 proto esp spi 0x100 seq-limit 5000000");
	assert_int_equal(r->body_case, DPSEC__REQUEST__BODY_SA_LEASE);
	assert_addr(&r->sa_lease->id->dst, "192.0.2.2");
	assert_int_equal(r->sa_lease->id->spi, 0x100);
	assert_int_equal(r->sa_lease->seq_limit, 5000000);
	gram_request_free(r);
	r = ok("sa lease seq-limit 18446744073709551615 spi 300 dst 2001:db8::2 proto esp");
	assert_true(r->sa_lease->seq_limit == UINT64_MAX);
	gram_request_free(r);

	r = ok("sa add src 192.0.2.1 dst 192.0.2.2 proto esp spi 0x100 dir out mode tunnel "
	       "aead aes-gcm-128 0x" K16 K4 " seq-out 10 seq-limit 1000 owner ike");
	assert_true(r->sa_add->has_seq_limit);
	assert_int_equal(r->sa_add->seq_limit, 1000);
	assert_string_equal(r->sa_add->owner, "ike");
	gram_request_free(r);

	bad("sa lease dst 192.0.2.2 proto esp spi 0x100", "sa lease: missing \"seq-limit\"");
	bad("sa lease dst 192.0.2.2 proto esp seq-limit 1", "missing \"spi\"");
	bad("sa lease dst 192.0.2.2 proto esp spi 0x100 seq-limit -1",
	    "bad value \"-1\" for \"seq-limit\"");
	bad("sa lease dst 192.0.2.2 proto esp spi 0x100 seq-limit 1 seq-limit 2",
	    "\"seq-limit\" given twice");
	bad("sa lease dst 192.0.2.2 proto esp spi 0x100 seq-limit 1 new-src 1.2.3.4",
	    "unknown word \"new-src\"");
	bad("sa add src 192.0.2.2 dst 192.0.2.1 proto esp spi 0x100 dir in mode tunnel "
	    "aead aes-gcm-128 0x" K16 K4 " seq-limit 9",
	    "\"seq-limit\" is only for dir out");
	bad("sa add src 192.0.2.1 dst 192.0.2.2 proto esp spi 0x100 dir out mode tunnel "
	    "aead aes-gcm-128 0x" K16 K4 " seq-out 10 seq-limit 9",
	    "seq-limit 9 is below seq-out 10");
	r = ok("sa add src 192.0.2.2 dst 192.0.2.1 proto esp spi 0x100 dir in mode tunnel "
	       "aead aes-gcm-128 0x" K16 K4 " replay-window 64 seq-in 4000000000");
	assert_true(r->sa_add->has_seq_in);
	assert_int_equal(r->sa_add->seq_in, 4000000000u);
	gram_request_free(r);
	bad(SA_GCM " seq-in 5", "\"seq-in\" is only for dir in");
	bad("sa add src 192.0.2.2 dst 192.0.2.1 proto esp spi 0x100 dir in mode tunnel "
	    "aead aes-gcm-128 0x" K16 K4 " seq-out 5",
	    "\"seq-out\" is only for dir out");
	bad(SA_GCM " owner", "missing value after \"owner\"");
	bad(SA_GCM " owner way-too-long-owner-name", "bad owner");
}

#define SA_ID "dst 192.0.2.2 proto esp spi 0x100"

static void test_sa_update(void **state)
{
	Dpsec__Request *r;
	Dpsec__SaUpdate *u;

	(void)state;
	r = ok("sa update " SA_ID " new-src 198.51.100.1 new-dst 203.0.113.2 "
	       "encap udp sport 4500 dport 1234");
	assert_int_equal(r->body_case, DPSEC__REQUEST__BODY_SA_UPDATE);
	u = r->sa_update;
	assert_addr(&u->id->dst, "192.0.2.2");
	assert_int_equal(u->id->proto, 50);
	assert_int_equal(u->id->spi, 0x100);
	assert_true(u->has_new_src && u->has_new_dst);
	assert_addr(&u->new_src, "198.51.100.1");
	assert_addr(&u->new_dst, "203.0.113.2");
	assert_non_null(u->new_encap);
	assert_int_equal(u->new_encap->sport, 4500);
	assert_int_equal(u->new_encap->dport, 1234);
	gram_request_free(r);

	/* any one change is enough, in any order */
	r = ok("sa update new-dst 192.0.2.7 spi 300 proto esp dst 192.0.2.2");
	u = r->sa_update;
	assert_false(u->has_new_src);
	assert_null(u->new_encap);
	assert_addr(&u->new_dst, "192.0.2.7");
	gram_request_free(r);
	r = ok("sa update " SA_ID " new-src 192.0.2.9");
	assert_false(r->sa_update->has_new_dst);
	assert_addr(&r->sa_update->new_src, "192.0.2.9");
	gram_request_free(r);
	r = ok("sa update encap udp sport 4500 dport 4500 " SA_ID);
	assert_false(r->sa_update->has_new_src || r->sa_update->has_new_dst);
	assert_int_equal(r->sa_update->new_encap->dport, 4500);
	gram_request_free(r);
	r = ok("sa update dst 2001:db8::2 proto esp spi 0x100 new-src 2001:db8::9");
	assert_addr(&r->sa_update->new_src, "2001:db8::9");
	gram_request_free(r);

	bad("sa update " SA_ID, "sa update: nothing to change: give \"new-src\"");
	bad("sa update dst 192.0.2.2 proto esp new-src 1.2.3.4", "missing \"spi\"");
	bad("sa update dst 192.0.2.2 spi 0x100 new-src 1.2.3.4", "missing \"proto\"");
	bad("sa update proto esp spi 0x100 new-src 1.2.3.4", "missing \"dst\"");
	bad("sa update " SA_ID " new-src 2001:db8::1", "new-src and dst address families differ");
	bad("sa update " SA_ID " new-dst 2001:db8::1", "new-dst and dst address families differ");
	bad("sa update dst 2001:db8::2 proto esp spi 0x100 new-dst 192.0.2.1",
	    "new-dst and dst address families differ");
	bad("sa update " SA_ID " new-src 1.2.3.4 new-src 1.2.3.5", "\"new-src\" given twice");
	bad("sa update " SA_ID " new-dst 1.2.3.4 dst 1.2.3.5", "\"dst\" given twice");
	bad("sa update " SA_ID " new-src", "missing value after \"new-src\"");
	bad("sa update " SA_ID " new-src 1.2.3", "1.2.3");
	bad("sa update " SA_ID " new-src 10.0.0.0/8", "10.0.0.0/8");
	bad("sa update " SA_ID " encap tcp sport 1 dport 2", "unsupported encap \"tcp\"");
	bad("sa update " SA_ID " encap udp dport 2", "missing \"sport\" in \"encap udp");
	bad("sa update " SA_ID " encap udp sport 0 dport 2", "bad value \"0\" for \"sport\"");
	bad("sa update " SA_ID " encap udp sport 1 dport 2 encap udp sport 1 dport 2",
	    "\"encap\" given twice");
	bad("sa update " SA_ID " new-src 1.2.3.4 src 1.2.3.4", "unknown word \"src\"");
	bad("sa update " SA_ID " new-src 1.2.3.4 dir out", "unknown word \"dir\"");
	bad("sa update dst 192.0.2.2 proto ah spi 0x100 new-src 1.2.3.4",
	    "unsupported proto \"ah\"");
	bad("sa update dst 192.0.2.2 proto esp spi 7 new-src 1.2.3.4", "SPI 7 is reserved");
	/* new-* words belong to sa update only */
	bad(SA_GCM " new-src 1.2.3.4", "sa add: unknown word \"new-src\"");
	bad("sa del " SA_ID " new-dst 1.2.3.4", "sa del: unknown word \"new-dst\"");
}

static void test_sa_get(void **state)
{
	Dpsec__Request *r;

	(void)state;
	r = ok("sa get " SA_ID);
	assert_int_equal(r->body_case, DPSEC__REQUEST__BODY_SA_QUERY);
	assert_addr(&r->sa_query->dst, "192.0.2.2");
	assert_int_equal(r->sa_query->proto, 50);
	assert_int_equal(r->sa_query->spi, 0x100);
	gram_request_free(r);
	r = ok("sa get spi 4294967295 dst 2001:db8::2 proto esp");
	assert_addr(&r->sa_query->dst, "2001:db8::2");
	assert_int_equal(r->sa_query->spi, 0xffffffffu);
	gram_request_free(r);

	bad("sa get", "sa get: missing \"dst\"");
	bad("sa get dst 192.0.2.2 proto esp", "sa get: missing \"spi\"");
	bad("sa get " SA_ID " dir in", "sa get: unknown word \"dir\"");
	bad("sa get " SA_ID " spi 0x200", "\"spi\" given twice");
	bad("sa get dst 192.0.2.2 proto esp spi 0x100000000", "bad SPI \"0x100000000\"");
	bad("sa get dst 192.0.2.0/24 proto esp spi 0x100", "192.0.2.0/24");
	bad("sa get " SA_ID " new-src 1.2.3.4", "unknown word \"new-src\"");
}

static void test_spi_alloc(void **state)
{
	Dpsec__Request *r;
	Dpsec__SpiAlloc *a;

	(void)state;
	r = ok("spi alloc dst 192.0.2.2 proto esp");
	assert_int_equal(r->body_case, DPSEC__REQUEST__BODY_SPI_ALLOC);
	a = r->spi_alloc;
	assert_addr(&a->dst, "192.0.2.2");
	assert_int_equal(a->proto, 50);
	assert_false(a->has_min || a->has_max);
	gram_request_free(r);
	r = ok("spi alloc max 0xc0000000 min 0x100 proto esp dst 2001:db8::2");
	a = r->spi_alloc;
	assert_addr(&a->dst, "2001:db8::2");
	assert_true(a->has_min && a->has_max);
	assert_int_equal(a->min, 0x100);
	assert_int_equal(a->max, 0xc0000000u);
	gram_request_free(r);
	r = ok("spi alloc dst 192.0.2.2 proto esp min 4096 max 4096");
	assert_int_equal(r->spi_alloc->min, 4096);
	assert_int_equal(r->spi_alloc->max, 4096);
	gram_request_free(r);
	r = ok("spi alloc dst 192.0.2.2 proto esp max 256");
	assert_false(r->spi_alloc->has_min);
	gram_request_free(r);

	bad("spi", "spi: expected \"alloc\"");
	bad("spi free dst 192.0.2.2 proto esp", "expected \"alloc\", got \"free\"");
	bad("spi alloc proto esp", "spi alloc: missing \"dst\"");
	bad("spi alloc dst 192.0.2.2", "spi alloc: missing \"proto\"");
	bad("spi alloc dst 192.0.2.2 proto udp", "unsupported proto \"udp\"");
	bad("spi alloc dst 192.0.2.2 proto esp min 255", "bad value \"255\" for \"min\"");
	bad("spi alloc dst 192.0.2.2 proto esp max 0xff", "bad value \"0xff\" for \"max\"");
	bad("spi alloc dst 192.0.2.2 proto esp max 0x100000000", "bad value \"0x100000000\"");
	bad("spi alloc dst 192.0.2.2 proto esp min -1", "bad value \"-1\" for \"min\"");
	bad("spi alloc dst 192.0.2.2 proto esp min 0x2000 max 0x1000",
	    "min 0x00002000 exceeds max 0x00001000");
	bad("spi alloc dst 192.0.2.2 proto esp min 300 min 400", "\"min\" given twice");
	bad("spi alloc dst 192.0.2.2 proto esp min", "missing value after \"min\"");
	bad("spi alloc dst 192.0.2.2 proto esp spi 0x100", "unknown word \"spi\"");
	bad("spi alloc dst 10.0.0.0/8 proto esp", "10.0.0.0/8");
}

/* ---- policy ---- */

static void test_policy_add(void **state)
{
	Dpsec__Request *r;
	Dpsec__PolicyAdd *m;

	(void)state;
	r = ok("policy add src 10.1.0.0/24 dst 10.2.0.0/24 proto udp sport 1000-2000 dport 53 "
	       "dir out action protect spi 0x00000100 priority 100 sa-dst 192.0.2.2 replace");
	assert_int_equal(r->body_case, DPSEC__REQUEST__BODY_POLICY_ADD);
	m = r->policy_add;
	assert_prefix(m->sel->src, "10.1.0.0/24");
	assert_prefix(m->sel->dst, "10.2.0.0/24");
	assert_true(m->sel->has_proto);
	assert_int_equal(m->sel->proto, 17);
	assert_true(m->sel->has_sport_lo && m->sel->has_sport_hi);
	assert_int_equal(m->sel->sport_lo, 1000);
	assert_int_equal(m->sel->sport_hi, 2000);
	assert_int_equal(m->sel->dport_lo, 53);
	assert_int_equal(m->sel->dport_hi, 53);
	assert_int_equal(m->dir, DPSEC__DIR__DIR_OUT);
	assert_int_equal(m->action, DPSEC__ACTION__ACT_PROTECT);
	assert_true(m->has_spi);
	assert_int_equal(m->spi, 0x100);
	assert_true(m->has_priority);
	assert_int_equal(m->priority, 100);
	assert_true(m->has_sa_dst);
	assert_addr(&m->sa_dst, "192.0.2.2");
	assert_true(m->has_replace && m->replace);
	gram_request_free(r);

	r = ok("policy add src 10.2.0.0/24 dst 10.1.0.0/24 dir in action protect spi 0x200");
	m = r->policy_add;
	assert_false(m->sel->has_proto);
	assert_false(m->sel->has_sport_lo || m->sel->has_dport_lo);
	assert_int_equal(m->dir, DPSEC__DIR__DIR_IN);
	assert_false(m->has_priority || m->has_replace || m->has_sa_dst);
	gram_request_free(r);

	r = ok("policy add src 0.0.0.0/0 dst 10.3.0.0/16 dir out action discard");
	assert_int_equal(r->policy_add->action, DPSEC__ACTION__ACT_DISCARD);
	assert_false(r->policy_add->has_spi);
	gram_request_free(r);
	r = ok("policy add action bypass dir out dst 10.3.0.0/16 src 0.0.0.0/0 proto tcp dport 22");
	assert_int_equal(r->policy_add->action, DPSEC__ACTION__ACT_BYPASS);
	assert_int_equal(r->policy_add->sel->proto, 6);
	gram_request_free(r);
	r = ok("policy add src 2001:db8:1::/48 dst 2001:db8:2::/48 proto ipv6-icmp dir out "
	       "action trap");
	assert_int_equal(r->policy_add->action, DPSEC__ACTION__ACT_TRAP);
	assert_prefix(r->policy_add->sel->src, "2001:db8:1::/48");
	assert_int_equal(r->policy_add->sel->proto, 58);
	gram_request_free(r);
	r = ok("policy add src ::/0 dst 2001:db8:2::/48 proto sctp sport 9 dport 10-11 dir in "
	       "action protect spi 300 sa-dst 192.0.2.1");
	assert_int_equal(r->policy_add->sel->proto, 132);
	assert_addr(&r->policy_add->sa_dst, "192.0.2.1");
	gram_request_free(r);
	r = ok("policy add src 10.1.0.0/24 dst 10.2.0.0/24 proto 47 dir out action bypass");
	assert_int_equal(r->policy_add->sel->proto, 47);
	gram_request_free(r);
	r = ok("policy add src 10.1.0.0/24 dst 10.2.0.0/24 proto icmp dir out action bypass");
	assert_int_equal(r->policy_add->sel->proto, 1);
	gram_request_free(r);
	r = ok("policy add src 10.1.0.0/24 dst 10.2.0.0/24 proto any dir out action bypass");
	assert_false(r->policy_add->sel->has_proto);
	gram_request_free(r);
}

#define POL "policy add src 10.1.0.0/24 dst 10.2.0.0/24 "

static void test_policy_bad(void **state)
{
	(void)state;
	bad(POL "dir out action protect", "action protect needs \"spi\"");
	bad(POL "dir out action bypass spi 0x100", "\"spi\" is only for action protect");
	bad(POL "dir out action discard sa-dst 1.2.3.4", "\"sa-dst\" is only for action protect");
	bad(POL "proto icmp dport 53 dir out action bypass", "\"dport\" needs proto tcp, udp");
	bad(POL "sport 53 dir out action bypass", "\"sport\" needs proto tcp, udp");
	bad(POL "proto udp sport 2000-1000 dir out action bypass",
	    "bad port range \"2000-1000\" (low > high)");
	bad(POL "proto udp sport 70000 dir out action bypass", "bad value \"70000\"");
	bad(POL "proto udp sport 1- dir out action bypass", "bad value");
	bad(POL "proto udp sport 1-2-3 dir out action bypass", "bad value");
	bad(POL "proto gre dir out action bypass", "unknown proto \"gre\"");
	bad(POL "proto 256 dir out action bypass", "bad value \"256\" for \"proto\"");
	bad("policy add src 10.1.0.0/24 dst 2001:db8::/32 dir out action bypass",
	    "src and dst address families differ");
	bad("policy add src 10.1.0.1/24 dst 10.2.0.0/24 dir out action bypass",
	    "10.1.0.1/24: host bits set");
	bad("policy add src 10.1.0.0/24 dst 10.2.0.0/40 dir out action bypass",
	    "bad prefix \"10.2.0.0/40\"");
	bad(POL "dir out", "missing \"action\"");
	bad(POL "action bypass", "missing \"dir\"");
	bad("policy add dst 10.2.0.0/24 dir out action bypass", "missing \"src\"");
	bad(POL "dir out action allow", "bad action \"allow\"");
	bad(POL "dir out action bypass priority x", "bad value \"x\" for \"priority\"");
	bad(POL "src 10.3.0.0/24 dir out action bypass", "\"src\" given twice");
	bad(POL "dir out action bypass weight 3", "unknown word \"weight\"");
	bad(POL "dir out action", "missing value after \"action\"");
}

static void test_policy_del_flush(void **state)
{
	Dpsec__Request *r;

	(void)state;
	r = ok("policy del src 10.1.0.0/24 dst 10.2.0.0/24 dir out");
	assert_int_equal(r->body_case, DPSEC__REQUEST__BODY_POLICY_DEL);
	assert_prefix(r->policy_del->sel->src, "10.1.0.0/24");
	assert_prefix(r->policy_del->sel->dst, "10.2.0.0/24");
	assert_int_equal(r->policy_del->dir, DPSEC__DIR__DIR_OUT);
	gram_request_free(r);
	r = ok("policy del src 2001:db8:1::/48 dst 2001:db8:2::/48 proto tcp sport 1-2 dport 3 "
	       "dir in");
	assert_int_equal(r->policy_del->dir, DPSEC__DIR__DIR_IN);
	assert_int_equal(r->policy_del->sel->proto, 6);
	assert_int_equal(r->policy_del->sel->sport_hi, 2);
	assert_int_equal(r->policy_del->sel->dport_lo, 3);
	gram_request_free(r);
	r = ok("policy add src 10.1.0.0/24 dst 10.2.0.0/24 dir out action discard owner ike");
	assert_string_equal(r->policy_add->owner, "ike");
	gram_request_free(r);
	r = ok("policy flush owner ike");
	assert_string_equal(r->flush->owner, "ike");
	gram_request_free(r);
	r = ok("policy flush");
	assert_int_equal(r->flush->what, DPSEC__FLUSH__WHAT__POLICY);
	gram_request_free(r);

	bad("policy del src 10.1.0.0/24 dst 10.2.0.0/24", "policy del: missing \"dir\"");
	bad("policy del src 10.1.0.0/24 dst 10.2.0.0/24 dir out action bypass",
	    "unknown word \"action\"");
	bad("policy del src 10.1.0.0/24 dst 10.2.0.0/24 dir out spi 0x100", "unknown word \"spi\"");
	bad("policy del src 10.1.0.0/24 dst 10.2.0.0/24 dport 5 dir out", "needs proto tcp");
}

static void test_policy_get(void **state)
{
	Dpsec__Request *r;
	Dpsec__PolicyDel *q;

	(void)state;
	r = ok("policy get src 10.1.0.0/24 dst 10.2.0.0/24 dir out");
	assert_int_equal(r->body_case, DPSEC__REQUEST__BODY_POLICY_QUERY);
	q = r->policy_query;
	assert_prefix(q->sel->src, "10.1.0.0/24");
	assert_prefix(q->sel->dst, "10.2.0.0/24");
	assert_false(q->sel->has_proto || q->sel->has_sport_lo || q->sel->has_dport_lo);
	assert_int_equal(q->dir, DPSEC__DIR__DIR_OUT);
	gram_request_free(r);
	r = ok("policy get dir in proto udp dport 500-4500 sport 53 dst 2001:db8:1::/48 "
	       "src 2001:db8:2::/48");
	q = r->policy_query;
	assert_int_equal(q->dir, DPSEC__DIR__DIR_IN);
	assert_int_equal(q->sel->proto, 17);
	assert_int_equal(q->sel->sport_lo, 53);
	assert_int_equal(q->sel->sport_hi, 53);
	assert_int_equal(q->sel->dport_lo, 500);
	assert_int_equal(q->sel->dport_hi, 4500);
	gram_request_free(r);

	bad("policy get src 10.1.0.0/24 dst 10.2.0.0/24", "policy get: missing \"dir\"");
	bad("policy get dst 10.2.0.0/24 dir out", "policy get: missing \"src\"");
	bad("policy get src 10.1.0.0/24 dst 10.2.0.0/24 dir out action bypass",
	    "policy get: unknown word \"action\"");
	bad("policy get src 10.1.0.0/24 dst 10.2.0.0/24 dir out priority 5",
	    "unknown word \"priority\"");
	bad("policy get src 10.1.0.0/24 dst 10.2.0.0/24 dport 5 dir out", "needs proto tcp");
	bad("policy get src 10.1.0.1/24 dst 10.2.0.0/24 dir out", "host bits set");
	bad("policy get src 10.1.0.0/24 dst 2001:db8::/32 dir out",
	    "src and dst address families differ");
	bad("policy get src 10.1.0.0/24 dst 10.2.0.0/24 dir sideways", "sideways");
	bad("policy get src 10.1.0.0/24 dst 10.2.0.0/24 dir in dir out", "\"dir\" given twice");
	bad("policy", "expected \"add\", \"del\", \"get\" or \"flush\"");
	bad("policy list", "got \"list\"");
}

/* ---- show, lines ---- */

static void test_show(void **state)
{
	static const char *const what[] = {"sa",   "policy", "route", "neigh",
					   "addr", "ports",  "stats"};
	char line[64];
	Dpsec__Request *r;
	size_t i;

	(void)state;
	for (i = 0; i < 7; i++) {
		snprintf(line, sizeof(line), "show %s", what[i]);
		r = ok(line);
		assert_int_equal(r->body_case, DPSEC__REQUEST__BODY_SHOW);
		assert_int_equal(r->show->what, i);
		gram_request_free(r);
	}
	bad("show", "missing what to show");
	bad("show tunnels", "unknown object \"tunnels\"");
	bad("show sa all", "unknown word \"all\"");
}

static void test_lines(void **state)
{
	char err[GRAM_ERR_MAX];
	Dpsec__Request *r = NULL;
	char *argv[] = {"port", "3", "name", "x"};

	(void)state;
	assert_int_equal(gram_parse_line("", &r, err, sizeof(err)), 1);
	assert_null(r);
	assert_int_equal(gram_parse_line("   \t  ", &r, err, sizeof(err)), 1);
	assert_int_equal(gram_parse_line("# port 0 name x", &r, err, sizeof(err)), 1);
	assert_null(r);
	r = ok("port 1 name x # port 2 name y");
	assert_int_equal(r->port->port_id, 1);
	gram_request_free(r);
	r = ok("port 1 name x#comment");
	assert_string_equal(r->port->name, "x");
	gram_request_free(r);

	assert_int_equal(gram_parse_argv(4, argv, &r, err, sizeof(err)), 0);
	assert_int_equal(r->port->port_id, 3);
	gram_request_free(r);
	assert_int_equal(gram_parse_argv(0, argv, &r, err, sizeof(err)), -1);
	assert_null(r);
	assert_non_null(strstr(err, "empty command"));

	bad("ports 0 name x", "unknown command \"ports\"");
	/* control bytes are not echoed raw */
	bad("port 0 name a\x1b[2J", "bad name \"a?[2J\"");
	/* a tiny error buffer truncates but never overflows */
	assert_int_equal(gram_parse_line("bogus", &r, err, 8), -1);
	assert_int_equal(strlen(err), 7);
}

/* ---- format ---- */

static void fmt_is(const char *line, const char *want)
{
	char buf[GRAM_FMT_MAX];
	Dpsec__Request *r = ok(line);

	assert_int_equal(gram_format_request(r, buf, sizeof(buf)), strlen(want));
	assert_string_equal(buf, want);
	gram_request_free(r);
}

static void test_format(void **state)
{
	char buf[GRAM_FMT_MAX];
	Dpsec__Request *r;
	Dpsec__Request empty = DPSEC__REQUEST__INIT;

	(void)state;
	fmt_is("port  3   name x", "port 3 name x");
	fmt_is("route add default via 10.0.0.1", "route add 0.0.0.0/0 via 10.0.0.1");
	fmt_is("neigh add 2001:db8::2 lladdr 02:00:00:00:00:AB dev o",
	       "neigh add 2001:db8::2 lladdr 02:00:00:00:00:ab dev o");
	fmt_is("sa add dst 192.0.2.2 src 192.0.2.1 spi 256 proto esp mode tunnel dir out "
	       "aead aes-gcm-128 0x" K16 K4 " lifetime hard bytes 9 soft bytes 8 esn",
	       "sa add src 192.0.2.1 dst 192.0.2.2 proto esp spi 0x00000100 dir out mode tunnel "
	       "aead aes-gcm-128 0x" K16 K4 " esn lifetime soft bytes 8 hard bytes 9");
	fmt_is("sa add src 192.0.2.1 dst 192.0.2.2 proto esp spi 0x100 dir in mode tunnel "
	       "enc null 0x auth hmac-md5-96 0x" K16,
	       "sa add src 192.0.2.1 dst 192.0.2.2 proto esp spi 0x00000100 dir in mode tunnel "
	       "enc null auth hmac-md5-96 0x" K16);
	fmt_is("policy add src 10.1.0.0/24 dst 10.2.0.0/24 proto 17 sport 5-5 dir out action "
	       "trap",
	       "policy add src 10.1.0.0/24 dst 10.2.0.0/24 proto udp sport 5 dir out action trap");
	fmt_is("sa update new-dst 192.0.2.7 encap udp sport 4500 dport 4501 spi 256 dst "
	       "192.0.2.2 new-src 192.0.2.1 proto esp",
	       "sa update dst 192.0.2.2 proto esp spi 0x00000100 new-src 192.0.2.1 new-dst "
	       "192.0.2.7 encap udp sport 4500 dport 4501");
	fmt_is("sa get spi 0x1000 dst 2001:db8::2 proto esp",
	       "sa get dst 2001:db8::2 proto esp spi 0x00001000");
	fmt_is("policy get dir in dst 10.2.0.0/24 src 10.1.0.0/24 proto tcp dport 1-2",
	       "policy get src 10.1.0.0/24 dst 10.2.0.0/24 proto tcp dport 1-2 dir in");
	fmt_is("spi alloc proto esp max 65535 min 4096 dst 192.0.2.2",
	       "spi alloc dst 192.0.2.2 proto esp min 0x00001000 max 0x0000ffff");
	fmt_is("spi alloc dst 192.0.2.2 proto esp", "spi alloc dst 192.0.2.2 proto esp");
	fmt_is("sa flush", "sa flush");
	fmt_is("show ports", "show ports");

	/* keys can be kept out of logs */
	r = ok(SA_GCM);
	assert_true(gram_format_request_flags(r, buf, sizeof(buf), GRAM_FMT_HIDE_KEYS) > 0);
	assert_non_null(strstr(buf, "aead aes-gcm-128 0x(hidden)"));
	assert_null(strstr(buf, K16));
	/* too small a buffer: -1 and an empty string, not a cut line */
	assert_int_equal(gram_format_request(r, buf, 40), -1);
	assert_string_equal(buf, "");
	gram_request_free(r);

	/* malformed requests (as they may arrive from the wire) are refused */
	assert_int_equal(gram_format_request(&empty, buf, sizeof(buf)), -1);
	assert_int_equal(gram_format_request(NULL, buf, sizeof(buf)), -1);
	r = ok("port 1 name x");
	r->port->name[0] = ' ';
	assert_int_equal(gram_format_request(r, buf, sizeof(buf)), -1);
	gram_request_free(r);
	r = ok("addr add 10.0.0.1/8 dev x");
	r->addr->prefix->addr.len = 3;
	assert_int_equal(gram_format_request(r, buf, sizeof(buf)), -1);
	r->addr->prefix->addr.len = 4;
	r->addr->prefix->len = 33;
	assert_int_equal(gram_format_request(r, buf, sizeof(buf)), -1);
	gram_request_free(r);
}

/* ---- helpers and tables ---- */

static void test_helpers(void **state)
{
	uint8_t a[16];
	size_t len;
	uint32_t plen;
	char buf[64];
	ProtobufCBinaryData bin = {4, a};
	Dpsec__Prefix p = DPSEC__PREFIX__INIT;

	(void)state;
	assert_int_equal(gram_addr_parse("192.0.2.1", a, &len), 0);
	assert_int_equal(len, 4);
	assert_int_equal(a[0], 192);
	assert_int_equal(a[3], 1);
	assert_string_equal(gram_addr_fmt(&bin, buf, sizeof(buf)), "192.0.2.1");
	assert_int_equal(gram_addr_parse("::ffff:1.2.3.4", a, &len), 0);
	assert_int_equal(len, 16);
	assert_int_equal(gram_addr_parse("1.2.3", a, &len), -1);
	assert_int_equal(gram_addr_parse("01.2.3.4", a, &len), -1);
	assert_int_equal(gram_addr_parse("fe80::1%eth0", a, &len), -1);
	assert_int_equal(gram_addr_parse("", a, &len), -1);

	assert_int_equal(gram_prefix_parse("2001:db8::/32", a, &len, &plen), 0);
	assert_int_equal(len, 16);
	assert_int_equal(plen, 32);
	assert_int_equal(gram_prefix_parse("10.0.0.0/0", a, &len, &plen), 0);
	assert_int_equal(plen, 0);
	assert_int_equal(gram_prefix_parse("10.0.0.0/32", a, &len, &plen), 0);
	assert_int_equal(gram_prefix_parse("10.0.0.0/-1", a, &len, &plen), -1);
	assert_int_equal(gram_prefix_parse("10.0.0.0/+8", a, &len, &plen), -1);
	assert_int_equal(gram_prefix_parse("10.0.0.0/0008", a, &len, &plen), -1);
	assert_int_equal(gram_prefix_parse("/8", a, &len, &plen), -1);
	assert_int_equal(gram_prefix_parse("::/129", a, &len, &plen), -1);

	p.addr.data = a;
	p.addr.len = 16;
	p.len = 32;
	gram_prefix_parse("2001:db8::/32", a, &len, &plen);
	assert_string_equal(gram_prefix_fmt(&p, buf, sizeof(buf)), "2001:db8::/32");
	bin.len = 5;
	assert_string_equal(gram_addr_fmt(&bin, buf, sizeof(buf)), "?");
	bin.len = 16;
	assert_string_equal(gram_addr_fmt(&bin, buf, 4), "?");

	assert_string_equal(gram_aead_name(DPSEC__AEAD__AES_GCM_128), "aes-gcm-128");
	assert_string_equal(gram_aead_name(DPSEC__AEAD__CHACHA20_POLY1305), "chacha20-poly1305");
	assert_null(gram_aead_name(DPSEC__AEAD__AEAD_NONE));
	assert_string_equal(gram_cipher_name(DPSEC__CIPHER__CIPHER_NULL), "null");
	assert_string_equal(gram_cipher_name(DPSEC__CIPHER__AES_CTR_128), "aes-ctr-128");
	assert_null(gram_cipher_name((Dpsec__Cipher)99));
	assert_string_equal(gram_integ_name(DPSEC__INTEG__HMAC_SHA512_256), "hmac-sha512-256");
	assert_null(gram_integ_name(DPSEC__INTEG__INTEG_NONE));
	assert_string_equal(gram_action_name(DPSEC__ACTION__ACT_TRAP), "trap");
	assert_string_equal(gram_action_name(DPSEC__ACTION__ACT_PROTECT), "protect");
	assert_int_equal(gram_aead_key_len(DPSEC__AEAD__AES_GCM_256), 36);
	assert_int_equal(gram_cipher_key_len(DPSEC__CIPHER__AES_CBC_128), 16);
	assert_int_equal(gram_cipher_key_len(DPSEC__CIPHER__CIPHER_NULL), 0);
	assert_int_equal(gram_integ_key_len(DPSEC__INTEG__HMAC_SHA384_192), 48);
	assert_int_equal(gram_integ_key_len(DPSEC__INTEG__INTEG_NONE), 0);
}

/* ---- config files ---- */

static char dir[64];

static int mkdir_setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/test_grammar.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int rmdir_teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static const char *write_conf(const char *name, const char *text, size_t len)
{
	static char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	fclose(f);
	return path;
}

static void load_bad(const char *text, size_t len, const char *want)
{
	struct gram_config cfg;
	char err[GRAM_ERR_MAX + 128] = "";
	const char *path = write_conf("x.conf", text, len);

	memset(&cfg, 0x5a, sizeof(cfg));
	if (gram_config_load(path, &cfg, err, sizeof(err)) != -1) {
		gram_config_free(&cfg);
		fail_msg("config accepted, wanted \"%s\"", want);
	}
	assert_int_equal(cfg.n, 0);
	assert_null(cfg.reqs);
	assert_null(cfg.lineno);
	if (!strstr(err, want))
		fail_msg("error \"%s\" lacks \"%s\"", err, want);
	/* the path leads the message */
	assert_int_equal(strncmp(err, path, strlen(path)), 0);
}

static void test_config_ok(void **state)
{
	static const char text[] =
	    "# dpsec config\n"
	    "port 0 name inside\r\n"
	    "\n"
	    "port 1 name outside   # the wire\n"
	    "sa add src 192.0.2.1 dst 192.0.2.2 proto esp spi 0x100 \\\n"
	    "       dir out mode tunnel \\   # trailing comment\n"
	    "\taead aes-gcm-128 0x" K16 K4 "\n"
	    "   # indented comment \\\n"
	    "policy add src 10.1.0.0/24 dst 10.2.0.0/24 dir out \\\n"
	    "  action protect spi 0x100\n"
	    "sa update dst 192.0.2.2 proto esp spi 0x100 new-src 192.0.2.9\n";
	struct gram_config cfg;
	char err[GRAM_ERR_MAX + 128];
	const char *path = write_conf("ok.conf", text, sizeof(text) - 1);

	(void)state;
	if (gram_config_load(path, &cfg, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(cfg.n, 5);
	assert_int_equal(cfg.reqs[0]->body_case, DPSEC__REQUEST__BODY_PORT);
	assert_string_equal(cfg.reqs[0]->port->name, "inside");
	assert_int_equal(cfg.lineno[0], 2);
	assert_string_equal(cfg.reqs[1]->port->name, "outside");
	assert_int_equal(cfg.lineno[1], 4);
	assert_int_equal(cfg.reqs[2]->body_case, DPSEC__REQUEST__BODY_SA_ADD);
	assert_int_equal(cfg.reqs[2]->sa_add->dir, DPSEC__DIR__DIR_OUT);
	assert_hex(&cfg.reqs[2]->sa_add->enc_key, K16 K4);
	assert_int_equal(cfg.lineno[2], 5);
	assert_int_equal(cfg.reqs[3]->body_case, DPSEC__REQUEST__BODY_POLICY_ADD);
	assert_int_equal(cfg.lineno[3], 9);
	assert_int_equal(cfg.reqs[4]->body_case, DPSEC__REQUEST__BODY_SA_UPDATE);
	assert_int_equal(cfg.lineno[4], 11);
	gram_config_free(&cfg);
	assert_int_equal(cfg.n, 0);
	assert_null(cfg.reqs);

	path = write_conf("empty.conf", "", 0);
	assert_int_equal(gram_config_load(path, &cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.n, 0);
	gram_config_free(&cfg);
}

static void test_config_bad(void **state)
{
	static const char bad3[] = "port 0 name inside\n"
				   "port 1 name outside\n"
				   "route add 10.1.0.1/24 dev inside\n"
				   "port 2 name third\n";
	static const char show[] = "port 0 name inside\n# x\nshow sa\n";
	static const char cont[] = "port 0 name a\n"
				   "sa add src 192.0.2.1 dst 192.0.2.2 \\\n"
				   "  proto esp spi 0x10\n";
	char *big;
	size_t n;

	(void)state;
	load_bad(bad3, sizeof(bad3) - 1, "x.conf:3: route add: 10.1.0.1/24: host bits set");
	load_bad(show, sizeof(show) - 1,
		 "x.conf:3: \"show\" is a query, not allowed in a config file");
	load_bad("sa get dst 192.0.2.2 proto esp spi 0x100\n", 41,
		 "x.conf:1: \"sa get\" is a query, not allowed in a config file");
	load_bad("\npolicy get src 10.1.0.0/24 dst 10.2.0.0/24 dir out\n", 52,
		 "x.conf:2: \"policy get\" is a query, not allowed in a config file");
	load_bad("spi alloc dst 192.0.2.2 proto esp\n", 34,
		 "x.conf:1: \"spi alloc\" is a query, not allowed in a config file");
	load_bad(cont, sizeof(cont) - 1, "x.conf:2: sa add: SPI 0x10 is reserved");
	load_bad("port 0 name a\nport 1 name b \\\n", 30, "x.conf:2: file ends inside");
	load_bad("port 0 name a\nport 1\0 name b\n", 29, "x.conf:2: NUL byte");
	load_bad("\n\n\nfrobnicate\n", 15, "x.conf:4: unknown command \"frobnicate\"");

	/* a physical line over 64 KiB */
	n = 64 * 1024 + 100;
	big = malloc(n);
	assert_non_null(big);
	memset(big, ' ', n);
	memcpy(big, "port 0 name a\n", 14);
	big[n - 1] = '\n';
	load_bad(big, n, "x.conf:2: line longer than 65536 bytes");
	free(big);
	/* a logical line over 64 KiB made of short continued pieces */
	n = 80 * 1024;
	big = malloc(n);
	assert_non_null(big);
	memset(big, 'a', n);
	for (size_t i = 0; i + 20 < n; i += 20)
		memcpy(big + i + 17, " \\\n", 3);
	big[n - 1] = '\n';
	load_bad(big, n, "x.conf:1: continued line longer than 65536 bytes");
	free(big);

	/* a file over 16 MiB (comments only, so only the size can fail it) */
	n = 16 * 1024 * 1024 + 1;
	big = malloc(n);
	assert_non_null(big);
	memset(big, '#', n);
	for (size_t i = 100; i < n; i += 100)
		big[i] = '\n';
	load_bad(big, n, "x.conf: file larger than 16777216 bytes");
	free(big);
}

static void test_config_io(void **state)
{
	struct gram_config cfg;
	char err[GRAM_ERR_MAX + 128] = "";

	(void)state;
	assert_int_equal(gram_config_load("/nonexistent/dpsec.conf", &cfg, err, sizeof(err)), -1);
	assert_string_equal(err, "/nonexistent/dpsec.conf: No such file or directory");
	assert_int_equal(cfg.n, 0);
	assert_int_equal(gram_config_load(dir, &cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "read error"));
	gram_config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_port),
	    cmocka_unit_test(test_addr),
	    cmocka_unit_test(test_route),
	    cmocka_unit_test(test_neigh),
	    cmocka_unit_test(test_sa_add_aead_full),
	    cmocka_unit_test(test_sa_add_enc_auth),
	    cmocka_unit_test(test_sa_add_bad),
	    cmocka_unit_test(test_sa_del_flush),
	    cmocka_unit_test(test_sa_update),
	    cmocka_unit_test(test_sa_lease),
	    cmocka_unit_test(test_sa_get),
	    cmocka_unit_test(test_spi_alloc),
	    cmocka_unit_test(test_policy_add),
	    cmocka_unit_test(test_policy_bad),
	    cmocka_unit_test(test_policy_del_flush),
	    cmocka_unit_test(test_policy_get),
	    cmocka_unit_test(test_show),
	    cmocka_unit_test(test_lines),
	    cmocka_unit_test(test_format),
	    cmocka_unit_test(test_helpers),
	    cmocka_unit_test_setup_teardown(test_config_ok, mkdir_setup, rmdir_teardown),
	    cmocka_unit_test_setup_teardown(test_config_bad, mkdir_setup, rmdir_teardown),
	    cmocka_unit_test_setup_teardown(test_config_io, mkdir_setup, rmdir_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
