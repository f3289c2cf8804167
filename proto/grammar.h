/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The dpsec text grammar (DESIGN.md, "One grammar, one apply path"):
 * one command line -> one Dpsec__Request. Shared by the config file loader,
 * dpsecctl and the tests, so every state change has a single spelling.
 */
#ifndef DPSEC_GRAMMAR_H
#define DPSEC_GRAMMAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dpsec.pb-c.h"

#define GRAM_ERR_MAX 256

/*
 * Parse the words of one command. Returns 0 with *req set (free with
 * gram_request_free()), or -1 with a human-readable reason in @err.
 * Request ids are left 0.
 */
int gram_parse_argv(int argc, char *const argv[], Dpsec__Request **req, char *err, size_t errlen);
/* Same for one text line (comments '#' and blank lines give 1 and no request). */
int gram_parse_line(const char *line, Dpsec__Request **req, char *err, size_t errlen);
void gram_request_free(Dpsec__Request *req);

/* gram_format_request() never needs more than this for a request the grammar accepts. */
#define GRAM_FMT_MAX 2048
/* Print keys as "0x(hidden)" so a line can go to a log; such a line does not parse back. */
#define GRAM_FMT_HIDE_KEYS 0x1u

/*
 * Print @req back as one grammar line (keys as 0x-hex), so that parsing the
 * result gives the same request. Only subscribe, which is no command, gets a
 * line ("subscribe") that does not parse back.
 * Returns the length written, or -1 if @req is malformed (missing parts,
 * bad names or addresses) or @buf is too small.
 */
int gram_format_request(const Dpsec__Request *req, char *buf, size_t len);
int gram_format_request_flags(const Dpsec__Request *req, char *buf, size_t len, unsigned int flags);

/* A config file: every line parsed before anything is applied. */
struct gram_config {
	size_t n;
	Dpsec__Request **reqs;
	unsigned *lineno; /* line where each request starts */
};
/*
 * Load @path: '#' comments, blank lines, backslash-newline continuation.
 * Queries (`show`, `sa get`, `policy get`, `spi alloc`) are refused in a config file. On error
 * returns -1 with "PATH:LINE: reason" in @err and nothing in @cfg.
 */
int gram_config_load(const char *path, struct gram_config *cfg, char *err, size_t errlen);
void gram_config_free(struct gram_config *cfg);

/* Address helpers shared by every program: 4- or 16-byte network-order addresses. */
int gram_addr_parse(const char *s, uint8_t out[16], size_t *len);
int gram_prefix_parse(const char *s, uint8_t out[16], size_t *len, uint32_t *plen);
/* Format into @buf (INET6_ADDRSTRLEN + 4 is always enough). */
const char *gram_addr_fmt(const ProtobufCBinaryData *a, char *buf, size_t len);
const char *gram_prefix_fmt(const Dpsec__Prefix *p, char *buf, size_t len);

/* Names used by the grammar, for printing (NULL if unknown). */
const char *gram_aead_name(Dpsec__Aead a);
const char *gram_cipher_name(Dpsec__Cipher c);
const char *gram_integ_name(Dpsec__Integ i);
const char *gram_action_name(Dpsec__Action a);
/* Key length in bytes an algorithm needs (AEAD: key + 4-byte salt). */
size_t gram_aead_key_len(Dpsec__Aead a);
size_t gram_cipher_key_len(Dpsec__Cipher c);
size_t gram_integ_key_len(Dpsec__Integ i);

#endif
