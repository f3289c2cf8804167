/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Grammar entry points: split a line into words, dispatch on the command
 * word, free what a parse built. The commands live in grammar_{net,sa,policy}.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grammar_priv.h"

#define WS " \t\r\n\v\f"

static const char *const show_names[] = {
    [DPSEC__SHOW__WHAT__SA] = "sa",	  [DPSEC__SHOW__WHAT__POLICY] = "policy",
    [DPSEC__SHOW__WHAT__ROUTE] = "route", [DPSEC__SHOW__WHAT__NEIGH] = "neigh",
    [DPSEC__SHOW__WHAT__ADDR] = "addr",	  [DPSEC__SHOW__WHAT__PORTS] = "ports",
    [DPSEC__SHOW__WHAT__STATS] = "stats",
};

const char *gram_show_name(Dpsec__Show__What w)
{
	return (unsigned int)w < sizeof(show_names) / sizeof(show_names[0]) ? show_names[w] : NULL;
}

static int parse_show(struct gram_cur *c, Dpsec__Request *req)
{
	const char *w = gram_take(c);
	size_t i;

	c->cmd = "show";
	req->show = malloc(sizeof(*req->show));
	if (!req->show)
		return gram_err(c, "out of memory");
	dpsec__show__init(req->show);
	req->body_case = DPSEC__REQUEST__BODY_SHOW;
	if (!w)
		return gram_err(
		    c, "missing what to show (sa, policy, route, neigh, addr, ports, stats)");
	for (i = 0; i < sizeof(show_names) / sizeof(show_names[0]); i++)
		if (!strcmp(w, show_names[i]))
			break;
	if (i == sizeof(show_names) / sizeof(show_names[0]))
		return gram_err(c,
				"unknown object \"%s\" (sa, policy, route, neigh, addr, ports, "
				"stats)",
				GW(w));
	req->show->what = (Dpsec__Show__What)i;
	return gram_trailing(c);
}

int gram_parse_argv(int argc, char *const argv[], Dpsec__Request **out, char *err, size_t errlen)
{
	struct gram_cur c = {.argc = argc, .argv = argv, .err = err, .errlen = errlen};
	Dpsec__Request *req;
	const char *w;
	int rc;

	*out = NULL;
	if (errlen)
		err[0] = '\0';
	if (argc <= 0 || !argv)
		return gram_err(&c, "empty command");
	req = malloc(sizeof(*req));
	if (!req)
		return gram_err(&c, "out of memory");
	dpsec__request__init(req);
	w = gram_take(&c);
	if (!strcmp(w, "port"))
		rc = gram_parse_port(&c, req);
	else if (!strcmp(w, "addr"))
		rc = gram_parse_addr(&c, req);
	else if (!strcmp(w, "route"))
		rc = gram_parse_route(&c, req);
	else if (!strcmp(w, "neigh"))
		rc = gram_parse_neigh(&c, req);
	else if (!strcmp(w, "sa"))
		rc = gram_parse_sa(&c, req);
	else if (!strcmp(w, "spi"))
		rc = gram_parse_spi(&c, req);
	else if (!strcmp(w, "policy"))
		rc = gram_parse_policy(&c, req);
	else if (!strcmp(w, "show"))
		rc = parse_show(&c, req);
	else
		rc = gram_err(&c,
			      "unknown command \"%s\" (port, addr, route, neigh, sa, spi, "
			      "policy, show)",
			      GW(w));
	if (rc) {
		gram_request_free(req);
		return -1;
	}
	*out = req;
	return 0;
}

int gram_parse_line(const char *line, Dpsec__Request **req, char *err, size_t errlen)
{
	char *copy, *hash, *save = NULL, *w;
	char **argv;
	size_t len, max;
	int argc = 0, rc;

	*req = NULL;
	if (errlen)
		err[0] = '\0';
	copy = strdup(line);
	if (!copy) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	hash = strchr(copy, '#');
	if (hash)
		*hash = '\0';
	len = strlen(copy);
	max = len / 2 + 1; /* words need at least one separator each */
	argv = calloc(max, sizeof(*argv));
	if (!argv) {
		free(copy);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (w = strtok_r(copy, WS, &save); w && (size_t)argc < max; w = strtok_r(NULL, WS, &save))
		argv[argc++] = w;
	rc = argc ? gram_parse_argv(argc, argv, req, err, errlen) : 1;
	/* the line may carry keys */
	explicit_bzero(copy, len);
	free(copy);
	free(argv);
	return rc;
}

void gram_request_free(Dpsec__Request *req)
{
	Dpsec__SaAdd *sa;

	if (!req)
		return;
	sa = req->body_case == DPSEC__REQUEST__BODY_SA_ADD ? req->sa_add : NULL;
	if (sa && sa->enc_key.data)
		explicit_bzero(sa->enc_key.data, sa->enc_key.len);
	if (sa && sa->auth_key.data)
		explicit_bzero(sa->auth_key.data, sa->auth_key.len);
	protobuf_c_message_free_unpacked(&req->base, NULL);
}

/* sa flush | policy flush [owner NAME] */
int gram_parse_flush(struct gram_cur *c, Dpsec__Request *req, Dpsec__Flush__What what)
{
	const char *w, *v;

	req->flush = malloc(sizeof(*req->flush));
	if (!req->flush)
		return gram_err(c, "out of memory");
	dpsec__flush__init(req->flush);
	req->body_case = DPSEC__REQUEST__BODY_FLUSH;
	req->flush->what = what;
	w = gram_take(c);
	if (w == NULL)
		return 0;
	if (strcmp(w, "owner") != 0)
		return gram_unknown(c, w);
	v = gram_value(c, w);
	if (v == NULL || gram_name(c, "owner", v, &req->flush->owner))
		return -1;
	return gram_trailing(c);
}
