/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Internals shared by the grammar's files: a cursor over the words of one
 * command and the word -> value converters. Not for use outside proto/grammar*.c.
 */
#ifndef DPSEC_GRAMMAR_PRIV_H
#define DPSEC_GRAMMAR_PRIV_H

#include <stdarg.h>

#include "grammar.h"

#define GRAM_PORT_MAX	15
#define GRAM_NAME_MAX	12
#define GRAM_REPLAY_MAX 4096
/* RFC 4303 2.1: SPIs 1..255 are reserved by IANA, 0 is local use only. */
#define GRAM_SPI_MIN   256
#define GRAM_PROTO_ESP 50
#define GRAM_KEY_MAX   128
/* Words are echoed in errors: cap them so a hostile line cannot fill a log. */
#define GRAM_WORD_SHOW 40
#define GRAM_WORD_BUF  (GRAM_WORD_SHOW * 4 + 8)

struct gram_cur {
	int argc;
	char *const *argv;
	int i;
	const char *cmd; /* "sa add": prefixes every error */
	char *err;
	size_t errlen;
};

/* Always returns -1 so callers can `return gram_err(...)`. */
int gram_err(struct gram_cur *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A word made safe to print: non-printable bytes become '?', long words are cut. */
const char *gram_word(const char *w, char *buf, size_t len);
#define GW(w) gram_word((w), (char[GRAM_WORD_BUF]){0}, GRAM_WORD_BUF)

static inline const char *gram_peek(const struct gram_cur *c)
{
	return c->i < c->argc ? c->argv[c->i] : NULL;
}

static inline const char *gram_take(struct gram_cur *c)
{
	return c->i < c->argc ? c->argv[c->i++] : NULL;
}

/* The word after keyword @kw, or an error "missing value after". */
const char *gram_value(struct gram_cur *c, const char *kw);
/* Refuse a keyword seen twice; @bit is the keyword's slot in @seen. */
int gram_once(struct gram_cur *c, uint32_t *seen, unsigned int bit, const char *kw);
int gram_unknown(struct gram_cur *c, const char *w);
int gram_trailing(struct gram_cur *c);

int gram_u32(struct gram_cur *c, const char *kw, const char *s, uint32_t lo, uint32_t hi,
	     uint32_t *out);
int gram_u64(struct gram_cur *c, const char *kw, const char *s, uint64_t lo, uint64_t hi,
	     uint64_t *out);
int gram_spi(struct gram_cur *c, const char *s, uint32_t *out);
int gram_dir(struct gram_cur *c, const char *s, Dpsec__Dir *out);
int gram_name(struct gram_cur *c, const char *kw, const char *s, char **out);
int gram_addr_bin(struct gram_cur *c, const char *kw, const char *s, ProtobufCBinaryData *out);
/* @strict: host bits must be clear (routes, selectors). */
int gram_prefix_msg(struct gram_cur *c, const char *s, bool strict, Dpsec__Prefix **out);
int gram_hexkey(struct gram_cur *c, const char *s, ProtobufCBinaryData *out);
int gram_mac(struct gram_cur *c, const char *s, ProtobufCBinaryData *out);
int gram_bin_dup(ProtobufCBinaryData *out, const void *p, size_t n);

bool gram_prefix_host_bits(const uint8_t *addr, size_t alen, uint32_t plen);

int gram_lookup_aead(const char *s, Dpsec__Aead *out);
int gram_lookup_cipher(const char *s, Dpsec__Cipher *out);
int gram_lookup_integ(const char *s, Dpsec__Integ *out);
int gram_lookup_action(const char *s, Dpsec__Action *out);
const char *gram_proto_name(uint32_t proto);
const char *gram_show_name(Dpsec__Show__What w);
int gram_proto_lookup(const char *s, uint32_t *out);
/* "16-byte key + 4-byte salt" style explanation of a key length, "" if none. */
const char *gram_key_note(const char *alg);

int gram_parse_port(struct gram_cur *c, Dpsec__Request *req);
int gram_parse_addr(struct gram_cur *c, Dpsec__Request *req);
int gram_parse_route(struct gram_cur *c, Dpsec__Request *req);
int gram_parse_neigh(struct gram_cur *c, Dpsec__Request *req);
int gram_parse_flush(struct gram_cur *c, Dpsec__Request *req, Dpsec__Flush__What what);
int gram_parse_sa(struct gram_cur *c, Dpsec__Request *req);
int gram_parse_spi(struct gram_cur *c, Dpsec__Request *req);
int gram_parse_policy(struct gram_cur *c, Dpsec__Request *req);

#endif
