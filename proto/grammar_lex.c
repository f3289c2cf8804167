/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Word -> value converters for the grammar. Every word is untrusted: each
 * converter checks syntax and range and names the offending word on error.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grammar_priv.h"

int gram_err(struct gram_cur *c, const char *fmt, ...)
{
	va_list ap;
	int n = 0;

	if (c->errlen == 0)
		return -1;
	if (c->cmd)
		n = snprintf(c->err, c->errlen, "%s: ", c->cmd);
	if (n < 0 || (size_t)n >= c->errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(c->err + n, c->errlen - n, fmt, ap);
	va_end(ap);
	return -1;
}

const char *gram_word(const char *w, char *buf, size_t len)
{
	size_t i, o = 0;

	if (len == 0)
		return "";
	for (i = 0; w[i] && o + 4 < len; i++) {
		if (i == GRAM_WORD_SHOW) {
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		buf[o++] = isprint((unsigned char)w[i]) && w[i] != '"' ? w[i] : '?';
	}
	buf[o] = '\0';
	return buf;
}

const char *gram_value(struct gram_cur *c, const char *kw)
{
	const char *v = gram_take(c);

	if (!v)
		gram_err(c, "missing value after \"%s\"", kw);
	return v;
}

int gram_once(struct gram_cur *c, uint32_t *seen, unsigned int bit, const char *kw)
{
	if (*seen & (1u << bit))
		return gram_err(c, "\"%s\" given twice", kw);
	*seen |= 1u << bit;
	return 0;
}

int gram_unknown(struct gram_cur *c, const char *w)
{
	return gram_err(c, "unknown word \"%s\"", GW(w));
}

int gram_trailing(struct gram_cur *c)
{
	const char *w = gram_peek(c);

	return w ? gram_unknown(c, w) : 0;
}

/* Decimal or 0x-hex, digits only: strtoull alone would take "-1", " 1" and "+1". */
static int parse_u64(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;
	int base = 10;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		if (!isxdigit((unsigned char)s[2]))
			return -1;
	} else if (!isdigit((unsigned char)s[0])) {
		return -1;
	}
	errno = 0;
	v = strtoull(s, &end, base);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

int gram_u64(struct gram_cur *c, const char *kw, const char *s, uint64_t lo, uint64_t hi,
	     uint64_t *out)
{
	uint64_t v;

	if (parse_u64(s, &v) || v < lo || v > hi)
		return gram_err(c, "bad value \"%s\" for \"%s\" (%llu..%llu)", GW(s), kw,
				(unsigned long long)lo, (unsigned long long)hi);
	*out = v;
	return 0;
}

int gram_u32(struct gram_cur *c, const char *kw, const char *s, uint32_t lo, uint32_t hi,
	     uint32_t *out)
{
	uint64_t v;

	if (gram_u64(c, kw, s, lo, hi, &v))
		return -1;
	*out = (uint32_t)v;
	return 0;
}

int gram_spi(struct gram_cur *c, const char *s, uint32_t *out)
{
	uint64_t v;

	if (parse_u64(s, &v) || v > UINT32_MAX)
		return gram_err(c, "bad SPI \"%s\" (256..0xffffffff)", GW(s));
	if (v < GRAM_SPI_MIN)
		return gram_err(c, "SPI %s is reserved (RFC 4303: 0-255 are not for SAs)", GW(s));
	*out = (uint32_t)v;
	return 0;
}

int gram_dir(struct gram_cur *c, const char *s, Dpsec__Dir *out)
{
	if (!strcmp(s, "in"))
		*out = DPSEC__DIR__DIR_IN;
	else if (!strcmp(s, "out"))
		*out = DPSEC__DIR__DIR_OUT;
	else
		return gram_err(c, "bad dir \"%s\" (in or out)", GW(s));
	return 0;
}

int gram_name(struct gram_cur *c, const char *kw, const char *s, char **out)
{
	size_t i, n = strlen(s);

	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
			break;
	if (n == 0 || n > GRAM_NAME_MAX || i < n)
		return gram_err(c, "bad %s \"%s\" (1-%d of A-Z a-z 0-9 _ -)", kw, GW(s),
				GRAM_NAME_MAX);
	free(*out);
	*out = strdup(s);
	if (!*out)
		return gram_err(c, "out of memory");
	return 0;
}

int gram_bin_dup(ProtobufCBinaryData *out, const void *p, size_t n)
{
	uint8_t *d = malloc(n ? n : 1);

	if (!d)
		return -1;
	if (n)
		memcpy(d, p, n);
	free(out->data);
	out->data = d;
	out->len = n;
	return 0;
}

int gram_addr_bin(struct gram_cur *c, const char *kw, const char *s, ProtobufCBinaryData *out)
{
	uint8_t a[16];
	size_t n;

	if (gram_addr_parse(s, a, &n))
		return gram_err(c, "bad address \"%s\" after \"%s\"", GW(s), kw);
	if (gram_bin_dup(out, a, n))
		return gram_err(c, "out of memory");
	return 0;
}

int gram_prefix_msg(struct gram_cur *c, const char *s, bool strict, Dpsec__Prefix **out)
{
	Dpsec__Prefix *p;
	uint8_t a[16];
	size_t n;
	uint32_t plen;

	if (gram_prefix_parse(s, a, &n, &plen))
		return gram_err(c, "bad prefix \"%s\"", GW(s));
	if (strict && gram_prefix_host_bits(a, n, plen))
		return gram_err(c, "%s: host bits set", GW(s));
	p = malloc(sizeof(*p));
	if (!p)
		return gram_err(c, "out of memory");
	dpsec__prefix__init(p);
	p->len = plen;
	if (gram_bin_dup(&p->addr, a, n)) {
		free(p);
		return gram_err(c, "out of memory");
	}
	if (*out)
		dpsec__prefix__free_unpacked(*out, NULL);
	*out = p;
	return 0;
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch = (char)tolower((unsigned char)ch);
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/*
 * Keys end up in logs through error messages: show at most the first few
 * digits of a key we refuse.
 */
static int bad_key(struct gram_cur *c, const char *s, const char *why)
{
	char shown[8];
	size_t n = strlen(s);

	snprintf(shown, sizeof(shown), "%s", s);
	return gram_err(c, "bad hex key \"%s%s\": %s", GW(shown), n >= sizeof(shown) ? "..." : "",
			why);
}

int gram_hexkey(struct gram_cur *c, const char *s, ProtobufCBinaryData *out)
{
	uint8_t key[GRAM_KEY_MAX];
	size_t i, n, digits;

	if (s[0] != '0' || (s[1] != 'x' && s[1] != 'X'))
		return bad_key(c, s, "must start with 0x");
	digits = strlen(s + 2);
	if (digits % 2)
		return bad_key(c, s, "odd number of hex digits");
	n = digits / 2;
	if (n > GRAM_KEY_MAX)
		return bad_key(c, s, "longer than any algorithm's key");
	for (i = 0; i < n; i++) {
		int hi = hexval(s[2 + 2 * i]), lo = hexval(s[3 + 2 * i]);

		if (hi < 0 || lo < 0) {
			explicit_bzero(key, sizeof(key));
			return bad_key(c, s, "not a hex digit");
		}
		key[i] = (uint8_t)(hi << 4 | lo);
	}
	i = gram_bin_dup(out, key, n);
	explicit_bzero(key, sizeof(key));
	if (i)
		return gram_err(c, "out of memory");
	return 0;
}

int gram_mac(struct gram_cur *c, const char *s, ProtobufCBinaryData *out)
{
	uint8_t mac[6];
	size_t i;

	/* exactly xx:xx:xx:xx:xx:xx; sscanf would accept "2:0:0:0:0:1x" */
	if (strlen(s) != 17)
		goto bad;
	for (i = 0; i < 6; i++) {
		int hi = hexval(s[3 * i]), lo = hexval(s[3 * i + 1]);

		if (hi < 0 || lo < 0 || (i < 5 && s[3 * i + 2] != ':'))
			goto bad;
		mac[i] = (uint8_t)(hi << 4 | lo);
	}
	if (mac[0] & 1)
		return gram_err(c, "lladdr %s is a multicast address", GW(s));
	if (gram_bin_dup(out, mac, sizeof(mac)))
		return gram_err(c, "out of memory");
	return 0;
bad:
	return gram_err(c, "bad MAC \"%s\" (xx:xx:xx:xx:xx:xx)", GW(s));
}
