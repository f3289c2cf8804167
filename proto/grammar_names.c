/* SPDX-License-Identifier: BSD-3-Clause */
/* Algorithm, action and protocol names of the grammar and their key lengths. */
#include <string.h>

#include "grammar_priv.h"

#define SALT_LEN 4 /* RFC 4106/7634 salt, RFC 3686 nonce: carried at the key's end */

struct alg {
	const char *name;
	int id;
	size_t key_len;
};

static const struct alg aeads[] = {
    {"aes-gcm-128", DPSEC__AEAD__AES_GCM_128, 16 + SALT_LEN},
    {"aes-gcm-256", DPSEC__AEAD__AES_GCM_256, 32 + SALT_LEN},
    {"chacha20-poly1305", DPSEC__AEAD__CHACHA20_POLY1305, 32 + SALT_LEN},
};

static const struct alg ciphers[] = {
    {"aes-cbc-128", DPSEC__CIPHER__AES_CBC_128, 16},
    {"aes-cbc-256", DPSEC__CIPHER__AES_CBC_256, 32},
    {"aes-ctr-128", DPSEC__CIPHER__AES_CTR_128, 16 + SALT_LEN},
    {"null", DPSEC__CIPHER__CIPHER_NULL, 0},
};

static const struct alg integs[] = {
    {"hmac-sha1-96", DPSEC__INTEG__HMAC_SHA1_96, 20},
    {"hmac-sha256-128", DPSEC__INTEG__HMAC_SHA256_128, 32},
    {"hmac-sha384-192", DPSEC__INTEG__HMAC_SHA384_192, 48},
    {"hmac-sha512-256", DPSEC__INTEG__HMAC_SHA512_256, 64},
    {"hmac-md5-96", DPSEC__INTEG__HMAC_MD5_96, 16},
};

static const struct alg actions[] = {
    {"protect", DPSEC__ACTION__ACT_PROTECT, 0},
    {"bypass", DPSEC__ACTION__ACT_BYPASS, 0},
    {"discard", DPSEC__ACTION__ACT_DISCARD, 0},
    {"trap", DPSEC__ACTION__ACT_TRAP, 0},
};

#define N(t) (sizeof(t) / sizeof((t)[0]))

static const struct alg *by_id(const struct alg *t, size_t n, int id)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (t[i].id == id)
			return &t[i];
	return NULL;
}

static int by_name(const struct alg *t, size_t n, const char *s, int *id)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(t[i].name, s)) {
			*id = t[i].id;
			return 0;
		}
	return -1;
}

const char *gram_aead_name(Dpsec__Aead a)
{
	const struct alg *e = by_id(aeads, N(aeads), a);

	return e ? e->name : NULL;
}

const char *gram_cipher_name(Dpsec__Cipher c)
{
	const struct alg *e = by_id(ciphers, N(ciphers), c);

	return e ? e->name : NULL;
}

const char *gram_integ_name(Dpsec__Integ i)
{
	const struct alg *e = by_id(integs, N(integs), i);

	return e ? e->name : NULL;
}

const char *gram_action_name(Dpsec__Action a)
{
	const struct alg *e = by_id(actions, N(actions), a);

	return e ? e->name : NULL;
}

size_t gram_aead_key_len(Dpsec__Aead a)
{
	const struct alg *e = by_id(aeads, N(aeads), a);

	return e ? e->key_len : 0;
}

size_t gram_cipher_key_len(Dpsec__Cipher c)
{
	const struct alg *e = by_id(ciphers, N(ciphers), c);

	return e ? e->key_len : 0;
}

size_t gram_integ_key_len(Dpsec__Integ i)
{
	const struct alg *e = by_id(integs, N(integs), i);

	return e ? e->key_len : 0;
}

int gram_lookup_aead(const char *s, Dpsec__Aead *out)
{
	int id;

	if (by_name(aeads, N(aeads), s, &id))
		return -1;
	*out = (Dpsec__Aead)id;
	return 0;
}

int gram_lookup_cipher(const char *s, Dpsec__Cipher *out)
{
	int id;

	if (by_name(ciphers, N(ciphers), s, &id))
		return -1;
	*out = (Dpsec__Cipher)id;
	return 0;
}

int gram_lookup_integ(const char *s, Dpsec__Integ *out)
{
	int id;

	if (by_name(integs, N(integs), s, &id))
		return -1;
	*out = (Dpsec__Integ)id;
	return 0;
}

int gram_lookup_action(const char *s, Dpsec__Action *out)
{
	int id;

	if (by_name(actions, N(actions), s, &id))
		return -1;
	*out = (Dpsec__Action)id;
	return 0;
}

const char *gram_key_note(const char *alg)
{
	if (!strncmp(alg, "aes-gcm-", 8) || !strcmp(alg, "chacha20-poly1305"))
		return !strcmp(alg, "aes-gcm-128") ? " (16-byte key + 4-byte salt)"
						   : " (32-byte key + 4-byte salt)";
	if (!strcmp(alg, "aes-ctr-128"))
		return " (16-byte key + 4-byte nonce)";
	return "";
}

static const struct alg protos[] = {
    {"icmp", 1, 0}, {"tcp", 6, 0}, {"udp", 17, 0}, {"ipv6-icmp", 58, 0}, {"sctp", 132, 0},
};

const char *gram_proto_name(uint32_t proto)
{
	const struct alg *e = by_id(protos, N(protos), (int)proto);

	return e ? e->name : NULL;
}

int gram_proto_lookup(const char *s, uint32_t *out)
{
	int id;

	if (by_name(protos, N(protos), s, &id))
		return -1;
	*out = (uint32_t)id;
	return 0;
}
