/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The startup config file: a list of commands, all parsed before any is
 * applied, so a bad line leaves the gateway untouched (DESIGN.md).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grammar_priv.h"

#define LINE_MAX_BYTES (64 * 1024)
#define FILE_MAX_BYTES (16 * 1024 * 1024)

struct loader {
	const char *path;
	char *err;
	size_t errlen;
	struct gram_config *cfg;
	size_t cap;
};

static int fail(struct loader *l, unsigned int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct loader *l, unsigned int line, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (l->errlen == 0)
		return -1;
	if (line)
		n = snprintf(l->err, l->errlen, "%s:%u: ", l->path, line);
	else
		n = snprintf(l->err, l->errlen, "%s: ", l->path);
	if (n < 0 || (size_t)n >= l->errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(l->err + n, l->errlen - n, fmt, ap);
	va_end(ap);
	return -1;
}

/* The whole file, NUL-terminated; refuses files over FILE_MAX_BYTES. */
static char *slurp(struct loader *l, size_t *size)
{
	size_t cap = 64 * 1024, n = 0, got;
	char *buf = NULL, *nb;
	FILE *f = fopen(l->path, "re");

	if (!f) {
		fail(l, 0, "%s", strerror(errno));
		return NULL;
	}
	for (;;) {
		nb = malloc(cap + 1);
		if (!nb) {
			fail(l, 0, "out of memory");
			goto err;
		}
		if (buf) {
			memcpy(nb, buf, n);
			explicit_bzero(buf, n);
			free(buf);
		}
		buf = nb;
		got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (ferror(f)) {
			fail(l, 0, "read error: %s", strerror(errno));
			goto err;
		}
		if (n > FILE_MAX_BYTES) {
			fail(l, 0, "file larger than %d bytes", FILE_MAX_BYTES);
			goto err;
		}
		if (feof(f))
			break;
		cap *= 2;
	}
	fclose(f);
	buf[n] = '\0';
	*size = n;
	return buf;
err:
	if (buf) {
		explicit_bzero(buf, n);
		free(buf);
	}
	fclose(f);
	return NULL;
}

static int add_request(struct loader *l, Dpsec__Request *req, unsigned int line)
{
	struct gram_config *cfg = l->cfg;

	if (cfg->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		Dpsec__Request **r = realloc(cfg->reqs, cap * sizeof(*r));
		unsigned int *ln;

		if (!r)
			return -1;
		cfg->reqs = r;
		ln = realloc(cfg->lineno, cap * sizeof(*ln));
		if (!ln)
			return -1;
		cfg->lineno = ln;
		l->cap = cap;
	}
	cfg->reqs[cfg->n] = req;
	cfg->lineno[cfg->n++] = line;
	return 0;
}

/*
 * Commands that only read state: a config file changes state before any
 * port runs, so nobody would see their answer.
 */
static const char *query_name(Dpsec__Request__BodyCase body)
{
	switch (body) {
	case DPSEC__REQUEST__BODY_SHOW:
		return "show";
	case DPSEC__REQUEST__BODY_SA_QUERY:
		return "sa get";
	case DPSEC__REQUEST__BODY_POLICY_QUERY:
		return "policy get";
	case DPSEC__REQUEST__BODY_SPI_ALLOC:
		return "spi alloc";
	default:
		return NULL;
	}
}

static int parse_logical(struct loader *l, const char *text, unsigned int line)
{
	char perr[GRAM_ERR_MAX];
	Dpsec__Request *req;
	const char *query;
	int rc = gram_parse_line(text, &req, perr, sizeof(perr));

	if (rc < 0)
		return fail(l, line, "%s", perr);
	if (rc > 0)
		return 0;
	query = query_name(req->body_case);
	if (query) {
		gram_request_free(req);
		return fail(l, line, "\"%s\" is a query, not allowed in a config file", query);
	}
	if (add_request(l, req, line)) {
		gram_request_free(req);
		return fail(l, line, "out of memory");
	}
	return 0;
}

/*
 * Walk physical lines, dropping comments and joining backslash continuations
 * into @logical; each logical line is parsed as soon as it is complete.
 */
static int parse_text(struct loader *l, const char *text, size_t size, char *logical)
{
	size_t off = 0, used = 0, plen;
	unsigned int line = 0, start = 0;
	const char *p, *nl;
	char *s, *hash;
	bool cont;

	for (p = text; p < text + size; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(text + size - p));
		if (!nl)
			nl = text + size;
		plen = (size_t)(nl - p);
		line++;
		if (plen > LINE_MAX_BYTES)
			return fail(l, line, "line longer than %d bytes", LINE_MAX_BYTES);
		if (memchr(p, '\0', plen))
			return fail(l, line, "NUL byte in line");
		if (used + plen + 1 > LINE_MAX_BYTES)
			return fail(l, start, "continued line longer than %d bytes",
				    LINE_MAX_BYTES);
		if (!used)
			start = line;
		s = logical + used;
		memcpy(s, p, plen);
		s[plen] = '\0';
		hash = strchr(s, '#');
		if (hash)
			*hash = '\0';
		off = strlen(s);
		while (off && strchr(" \t\r\v\f", s[off - 1]))
			off--;
		cont = off && s[off - 1] == '\\';
		if (cont)
			off--;
		s[off] = cont ? ' ' : '\0';
		used += off + (cont ? 1 : 0);
		if (cont)
			continue;
		logical[used] = '\0';
		if (parse_logical(l, logical, start))
			return -1;
		used = 0;
	}
	if (used)
		return fail(l, start, "file ends inside a continued line");
	return 0;
}

int gram_config_load(const char *path, struct gram_config *cfg, char *err, size_t errlen)
{
	struct loader l = {.path = path, .err = err, .errlen = errlen, .cfg = cfg};
	char *text, *logical;
	size_t size = 0;
	int rc = -1;

	memset(cfg, 0, sizeof(*cfg));
	if (errlen)
		err[0] = '\0';
	text = slurp(&l, &size);
	if (!text)
		return -1;
	logical = malloc(LINE_MAX_BYTES + 1);
	if (!logical)
		fail(&l, 0, "out of memory");
	else
		rc = parse_text(&l, text, size, logical);
	/* both buffers held key material */
	if (logical) {
		explicit_bzero(logical, LINE_MAX_BYTES + 1);
		free(logical);
	}
	explicit_bzero(text, size);
	free(text);
	if (rc)
		gram_config_free(cfg);
	return rc;
}

void gram_config_free(struct gram_config *cfg)
{
	size_t i;

	if (!cfg)
		return;
	for (i = 0; i < cfg->n; i++)
		gram_request_free(cfg->reqs[i]);
	free(cfg->reqs);
	free(cfg->lineno);
	memset(cfg, 0, sizeof(*cfg));
}
