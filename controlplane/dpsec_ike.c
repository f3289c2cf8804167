/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dpsec-ike: strongSwan's IKE daemon (libcharon) with the dataplane as its
 * IPsec backend. Settings come from the `dpsec-ike { }` section of
 * strongswan.conf (STRONGSWAN_CONF overrides the file); peers are managed
 * through vici (swanctl --uri unix:///run/dpsec/charon.vici ...).
 *
 * Runs in the foreground; SIGTERM/SIGINT stop it, SIGHUP reloads settings,
 * loggers and plugins.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <daemon.h>
#include <library.h>
#include <threading/thread.h>
#include <utils/backtrace.h>

#include "dpsec_plugin.h"

#define DAEMON_NAME "dpsec-ike"
/*
 * Our own list, never Debian's modular `charon` one: crypto (kdf before openssl:
 * with OpenSSL 3, strongSwan 5.9.8's openssl PRF+ fails for some PRFs), IKE
 * sockets, kernel-netlink for addresses and routes only (our built-in plugin
 * already is the kernel-ipsec backend), vici for swanctl, updown for scripts.
 */
#define DEFAULT_PLUGINS                                                                            \
	"random nonce aes sha2 md5 hmac gcm chapoly kdf openssl pem pkcs1 pkcs8 x509 revocation "  \
	"constraints pubkey gmp curve25519 attr socket-default kernel-netlink vici updown"
/*
 * strongSwan's sha1 plugin exports SHA1Update(); libzmq pulls in libbsd and with it libmd,
 * whose SHA1Update() (another context layout) then wins symbol resolution: the plugin
 * hashes garbage lengths and a thread spins forever in NAT detection. openssl provides
 * SHA-1 instead.
 */
#define BROKEN_PLUGIN	 "sha1"
#define DEFAULT_VICI_URI "unix:///run/dpsec/charon.vici"
#define UNIX_URI	 "unix://"
#define RUNDIR_MODE	 0770
#define DEFAULT_LEVEL	 1

extern void (*dbg)(debug_t group, level_t level, char *fmt, ...);

static level_t stderr_level = DEFAULT_LEVEL;

/* Until charon's loggers are up, library messages go to stderr. */
static void dbg_stderr(debug_t group, level_t level, char *fmt, ...)
{
	va_list args;

	if (level <= stderr_level) {
		va_start(args, fmt);
		fprintf(stderr, "00[%s] ", enum_to_name(debug_names, group));
		vfprintf(stderr, fmt, args);
		fprintf(stderr, "\n");
		va_end(args);
	}
}

static void usage(FILE *out)
{
	fprintf(out, "usage: " DAEMON_NAME " [--debug LEVEL] [--version] [--help]\n"
		     "  settings: section `" DAEMON_NAME " { }` of strongswan.conf "
		     "($STRONGSWAN_CONF overrides the file)\n"
		     "  --debug LEVEL  log level of every group when no logger is configured "
		     "(-1..4, default 1)\n");
}

/* The plugin list without BROKEN_PLUGIN (allocated). */
static char *plugin_list(void)
{
	char *list = lib->settings->get_str(lib->settings, "%s.load", DEFAULT_PLUGINS, lib->ns);
	char *out = calloc(1, strlen(list) + 1), *copy = strdup(list), *tok, *save = NULL;

	for (tok = strtok_r(copy, " \t,", &save); tok; tok = strtok_r(NULL, " \t,", &save)) {
		if (streq(tok, BROKEN_PLUGIN)) {
			DBG1(DBG_DMN,
			     "not loading plugin '%s': its SHA1Update() clashes with "
			     "libmd's (via libzmq); openssl provides SHA-1",
			     tok);
			continue;
		}
		if (*out)
			strcat(out, " ");
		strcat(out, tok);
	}
	free(copy);
	return out;
}

/* Defaults that make this a dataplane gateway, unless strongswan.conf says otherwise. */
static void set_defaults(void)
{
	/* charon's defaults put the vici socket where Debian's charon has its own */
	lib->settings->set_default_str(lib->settings, "%s.plugins.vici.socket", DEFAULT_VICI_URI,
				       lib->ns);
	/* The dataplane routes; no XFRM-style routing table, rules or virtual IP routes. */
	lib->settings->set_default_str(lib->settings, "%s.install_routes", "no", lib->ns);
	lib->settings->set_default_str(lib->settings, "%s.install_virtual_ip", "no", lib->ns);
	lib->settings->set_default_str(lib->settings, "%s.routing_table", "0", lib->ns);
}

/* vici binds its socket but does not create the directory it lives in. */
static bool make_vici_dir(void)
{
	char *uri = lib->settings->get_str(lib->settings, "%s.plugins.vici.socket",
					   DEFAULT_VICI_URI, lib->ns);
	char path[PATH_MAX], *slash;

	if (strncmp(uri, UNIX_URI, strlen(UNIX_URI)))
		return TRUE;
	snprintf(path, sizeof(path), "%s", uri + strlen(UNIX_URI));
	slash = strrchr(path, '/');
	if (!slash || slash == path)
		return TRUE;
	*slash = '\0';
	if (!mkdir_p(path, RUNDIR_MODE)) {
		DBG1(DBG_DMN, "cannot create %s for the vici socket: %s", path, strerror(errno));
		return FALSE;
	}
	return TRUE;
}

static void segv_handler(int signal)
{
	backtrace_t *backtrace;

	DBG1(DBG_DMN, "thread %u received %d", thread_current_id(), signal);
	backtrace = backtrace_create(2);
	backtrace->log(backtrace, NULL, TRUE);
	backtrace->log(backtrace, stderr, TRUE);
	backtrace->destroy(backtrace);
	DBG1(DBG_DMN, "killing ourself, received critical signal");
	abort();
}

static int run(sigset_t *set)
{
	for (;;) {
		int sig = sigwaitinfo(set, NULL);

		if (sig == -1) {
			if (errno == EINTR)
				continue;
			DBG1(DBG_DMN, "waiting for signal failed: %s", strerror(errno));
			return SS_RC_INITIALIZATION_FAILED;
		}
		if (sig == SIGHUP) {
			DBG1(DBG_DMN, "SIGHUP received, reloading configuration");
			if (lib->settings->load_files(lib->settings, lib->conf, FALSE)) {
				charon->load_loggers(charon);
				lib->plugins->reload(lib->plugins, NULL);
			} else {
				DBG1(DBG_DMN, "reloading config failed, keeping old");
			}
			continue;
		}
		DBG1(DBG_DMN, "%s received, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
		charon->bus->alert(charon->bus, ALERT_SHUTDOWN_SIGNAL, sig);
		return 0;
	}
}

int main(int argc, char *argv[])
{
	static const struct option longopts[] = {
	    {"debug", required_argument, NULL, 'd'},
	    {"version", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	level_t levels[DBG_MAX];
	struct sigaction action;
	sigset_t set;
	char *plugins;
	int status = SS_RC_INITIALIZATION_FAILED, c;

	for (;;) {
		c = getopt_long(argc, argv, "", longopts, NULL);
		if (c == -1)
			break;
		switch (c) {
		case 'd':
			stderr_level = atoi(optarg);
			break;
		case 'v':
			printf(DAEMON_NAME " (strongSwan %s)\n", VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return SS_RC_INITIALIZATION_FAILED;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return SS_RC_INITIALIZATION_FAILED;
	}

	/*
	 * Block the signals run() waits for before any thread exists: every thread
	 * (charon's, ZeroMQ's I/O threads) inherits the mask, so none of them can
	 * take SIGTERM's default action behind sigwaitinfo()'s back.
	 */
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	dbg = dbg_stderr;
	atexit(library_deinit);
	/* lib->ns = "dpsec-ike": no fallback to the `charon` section, on purpose */
	if (!library_init(NULL, DAEMON_NAME)) {
		fprintf(stderr, DAEMON_NAME ": libstrongswan initialization failed\n");
		return SS_RC_INITIALIZATION_FAILED;
	}
	if (lib->integrity && !lib->integrity->check_file(lib->integrity, DAEMON_NAME, argv[0])) {
		fprintf(stderr, DAEMON_NAME ": integrity check failed\n");
		return SS_RC_INITIALIZATION_FAILED;
	}
	if (!libcharon_init()) {
		fprintf(stderr, DAEMON_NAME ": libcharon initialization failed\n");
		goto out;
	}
	set_defaults();
	for (c = 0; c < DBG_MAX; c++)
		levels[c] = stderr_level;
	charon->set_default_loggers(charon, levels, TRUE);
	charon->load_loggers(charon);

	if (!make_vici_dir())
		goto out;
	dpsec_plugin_register();
	plugins = plugin_list();
	if (!charon->initialize(charon, plugins)) {
		DBG1(DBG_DMN, "charon initialization failed");
		free(plugins);
		goto out;
	}
	free(plugins);
	if (!dpsec_plugin_is_backend()) {
		DBG1(DBG_DMN, "the dataplane is not charon's IPsec backend, refusing to start");
		goto out;
	}
	lib->plugins->status(lib->plugins, LEVEL_CTRL);
	if (!lib->caps->drop(lib->caps)) {
		DBG1(DBG_DMN, "dropping capabilities failed");
		goto out;
	}

	action.sa_flags = 0;
	sigemptyset(&action.sa_mask);
	sigaddset(&action.sa_mask, SIGINT);
	sigaddset(&action.sa_mask, SIGTERM);
	sigaddset(&action.sa_mask, SIGHUP);
	action.sa_handler = segv_handler;
	sigaction(SIGSEGV, &action, NULL);
	sigaction(SIGILL, &action, NULL);
	sigaction(SIGBUS, &action, NULL);
	action.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &action, NULL);

	charon->start(charon);
	DBG1(DBG_DMN, DAEMON_NAME " running (strongSwan %s), pid %d", VERSION, getpid());
	status = run(&set);
out:
	libcharon_deinit();
	return status;
}
