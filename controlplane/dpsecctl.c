/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dpsecctl: the operator CLI. One grammar command -> one request over the
 * control channel; `monitor` subscribes and prints events until interrupted.
 * Exit codes: 0 ok, 1 error reply, 2 usage/grammar error, 3 no channel.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel.h"
#include "grammar.h"

#define EXIT_REPLY_ERR	   1
#define EXIT_USAGE	   2
#define EXIT_CHANNEL	   3
#define DEFAULT_TIMEOUT_MS 5000
#define MAX_TIMEOUT_MS	   3600000
#define ERR_MAX		   512
/* A silent monitor re-subscribes this often, so a restarted dataplane is noticed. */
#define MONITOR_RESUBSCRIBE_MS 2000
#define MONITOR_POLL_MS	       500

/* Printers, in dpsecctl_show.c. */
void ctl_print_reply(const Dpsec__Request *req, const Dpsec__Reply *rep, FILE *out);
void ctl_print_event(const Dpsec__Event *ev, FILE *out);
void ctl_print_json(const ProtobufCMessage *m, FILE *out);

struct opts {
	const char *endpoint;
	bool json;
	int timeout_ms;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: dpsecctl [--ctl ENDPOINT] [--json] [--timeout MS] COMMAND...\n"
		"       dpsecctl [--ctl ENDPOINT] [--json] monitor [--count N]\n"
		"COMMAND is a dpsec grammar line, e.g. `show sa`, `sa del dst 192.0.2.2 proto "
		"esp spi 0x100`.\n"
		"ENDPOINT defaults to $DPSEC_CTL or %s.\n",
		CHAN_DEFAULT_ENDPOINT);
}

static int parse_num(const char *opt, const char *s, long min, long max, long *out)
{
	char *end;

	errno = 0;
	*out = s ? strtol(s, &end, 10) : 0;
	if (!s || !*s || *end || errno || *out < min || *out > max) {
		fprintf(stderr, "dpsecctl: %s needs a number from %ld to %ld, not '%s'\n", opt, min,
			max, s ? s : "");
		return -1;
	}
	return 0;
}

/* Value of --opt VALUE or --opt=VALUE; advances *i past it. */
static const char *opt_value(int argc, char **argv, int *i, const char *opt)
{
	size_t n = strlen(opt);

	if (!strncmp(argv[*i], opt, n) && argv[*i][n] == '=')
		return argv[*i] + n + 1;
	if (!strcmp(argv[*i], opt)) {
		if (*i + 1 >= argc)
			return NULL;
		return argv[++*i];
	}
	return NULL;
}

static bool is_opt(const char *arg, const char *opt)
{
	size_t n = strlen(opt);

	return !strncmp(arg, opt, n) && (arg[n] == '\0' || arg[n] == '=');
}

/* Returns the index of the first command word, or -1 (exit code in *rc). */
static int parse_opts(int argc, char **argv, struct opts *o, int *rc)
{
	int i;
	long v;

	o->endpoint = getenv("DPSEC_CTL");
	if (!o->endpoint || !*o->endpoint)
		o->endpoint = CHAN_DEFAULT_ENDPOINT;
	o->timeout_ms = DEFAULT_TIMEOUT_MS;
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--")) {
			i++;
			break;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			*rc = 0;
			return -1;
		} else if (!strcmp(a, "--json")) {
			o->json = true;
		} else if (is_opt(a, "--ctl")) {
			o->endpoint = opt_value(argc, argv, &i, "--ctl");
			if (!o->endpoint || !*o->endpoint) {
				fprintf(stderr, "dpsecctl: --ctl needs an endpoint\n");
				*rc = EXIT_USAGE;
				return -1;
			}
		} else if (is_opt(a, "--timeout")) {
			if (parse_num("--timeout", opt_value(argc, argv, &i, "--timeout"), 1,
				      MAX_TIMEOUT_MS, &v) < 0) {
				*rc = EXIT_USAGE;
				return -1;
			}
			o->timeout_ms = (int)v;
		} else {
			fprintf(stderr, "dpsecctl: unknown option '%s'\n", a);
			usage(stderr);
			*rc = EXIT_USAGE;
			return -1;
		}
	}
	if (i >= argc) {
		usage(stderr);
		*rc = EXIT_USAGE;
		return -1;
	}
	return i;
}

static struct chan_client *connect_or_die(const struct opts *o)
{
	char err[ERR_MAX];
	struct chan_client *c = chan_client_open(o->endpoint, err, sizeof(err));

	if (!c) {
		fprintf(stderr, "dpsecctl: %s\n", err);
		exit(EXIT_CHANNEL);
	}
	return c;
}

static void channel_failed(const struct opts *o, const char *err)
{
	if (strstr(err, "no reply"))
		fprintf(stderr,
			"dpsecctl: no reply from %s within %d ms (is dpsec-dataplane running?)\n",
			o->endpoint, o->timeout_ms);
	else
		fprintf(stderr, "dpsecctl: %s: %s\n", o->endpoint, err);
}

static int run_command(const struct opts *o, int argc, char **argv)
{
	Dpsec__Request *req = NULL;
	Dpsec__Reply *rep = NULL;
	struct chan_client *c;
	char err[ERR_MAX];
	int rc = 0;

	if (gram_parse_argv(argc, argv, &req, err, sizeof(err)) < 0) {
		fprintf(stderr, "dpsecctl: %s\n", err);
		return EXIT_USAGE;
	}
	c = connect_or_die(o);
	if (chan_client_call(c, req, &rep, o->timeout_ms, err, sizeof(err)) < 0) {
		channel_failed(o, err);
		rc = EXIT_CHANNEL;
		goto out;
	}
	if (o->json)
		ctl_print_json(&rep->base, stdout);
	if (rep->code != DPSEC__CODE__OK) {
		fprintf(stderr, "dpsecctl: %s: %s\n", chan_code_name(rep->code),
			rep->reason && *rep->reason ? rep->reason : "(no reason given)");
		rc = EXIT_REPLY_ERR;
	} else if (!o->json) {
		ctl_print_reply(req, rep, stdout);
	}
out:
	chan_reply_free(rep);
	chan_client_close(c);
	gram_request_free(req);
	return rc;
}

static int monitor(const struct opts *o, int argc, char **argv)
{
	struct sigaction sa = {.sa_handler = on_signal};
	uint64_t count = 0, limit = 0, last_seq = 0, epoch = 0;
	int idle_ms = 0, rc = 0;
	bool warned = false;
	struct chan_client *c;
	char err[ERR_MAX];

	for (int i = 1; i < argc; i++) {
		long v;

		if (is_opt(argv[i], "--count") &&
		    !parse_num("--count", opt_value(argc, argv, &i, "--count"), 1, LONG_MAX, &v)) {
			limit = (uint64_t)v;
			continue;
		}
		if (!is_opt(argv[i], "--count"))
			fprintf(stderr, "dpsecctl: monitor: unexpected '%s'\n", argv[i]);
		return EXIT_USAGE;
	}
	/* No SA_RESTART: the signal must interrupt the wait for events. */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	c = connect_or_die(o);
	if (chan_client_subscribe(c, o->timeout_ms, err, sizeof(err)) < 0) {
		channel_failed(o, err);
		chan_client_close(c);
		return EXIT_CHANNEL;
	}
	while (!stop) {
		Dpsec__Event *ev;
		int got = chan_client_event(c, &ev, MONITOR_POLL_MS);

		if (got < 0) {
			fprintf(stderr, "dpsecctl: %s: channel failed\n", o->endpoint);
			rc = EXIT_CHANNEL;
			break;
		}
		if (!got) {
			idle_ms += MONITOR_POLL_MS;
			if (idle_ms < MONITOR_RESUBSCRIBE_MS || stop)
				continue;
			idle_ms = 0;
			/* Harmless to a live server; a restarted one answers with a new Hello. */
			if (chan_client_subscribe(c, o->timeout_ms, err, sizeof(err)) == 0) {
				warned = false;
			} else if (!warned) {
				channel_failed(o, err);
				warned = true;
			}
			continue;
		}
		idle_ms = 0;
		if (ev->body_case == DPSEC__EVENT__BODY_HELLO) {
			epoch = ev->epoch;
		} else if (ev->epoch == epoch && ev->seq != last_seq + 1) {
			fprintf(stderr,
				"dpsecctl: events lost: expected seq %" PRIu64 ", got %" PRIu64
				"\n",
				last_seq + 1, ev->seq);
		}
		last_seq = ev->seq;
		if (o->json)
			ctl_print_json(&ev->base, stdout);
		else
			ctl_print_event(ev, stdout);
		fflush(stdout);
		if (ev->body_case != DPSEC__EVENT__BODY_HELLO && limit && ++count >= limit)
			stop = 1;
		chan_event_free(ev);
	}
	chan_client_close(c);
	return rc;
}

int main(int argc, char **argv)
{
	struct opts o = {0};
	int rc = 0, first = parse_opts(argc, argv, &o, &rc);

	if (first < 0)
		return rc;
	if (!strcmp(argv[first], "monitor"))
		return monitor(&o, argc - first, argv + first);
	return run_command(&o, argc - first, argv + first);
}
