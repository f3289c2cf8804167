/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The dpsec control channel: protobuf-c messages over ZeroMQ.
 *
 * Server (the dataplane) binds a ROUTER socket; clients connect a DEALER.
 * Every request gets exactly one reply carrying the request's id and the
 * server's epoch. Events go to subscribed clients only, numbered per client;
 * the server queues them rather than letting ZeroMQ drop them, so nothing is
 * lost while a client stays connected.
 */
#ifndef DPSEC_CHANNEL_H
#define DPSEC_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dpsec.pb-c.h"

#define CHAN_DEFAULT_ENDPOINT "ipc:///run/dpsec/ctl.sock"
/* Largest request (or event) either side accepts; larger ones get ETOOBIG. */
#define CHAN_MSG_MAX (1024 * 1024)
/* Largest reply: `show sa` of 10,000 tunnels is a few MB; the dataplane makes replies
 * itself, so only its own size bounds them. */
#define CHAN_REPLY_MAX (64 * 1024 * 1024)
/* Events queued for one subscriber before it is considered gone. */
#define CHAN_EVENT_QUEUE_MAX 65536

struct chan_server;
struct chan_client;

/*
 * Handler for one request. @rep arrives initialised (id, epoch, code OK).
 * Everything the handler hangs off @rep must be malloc'd (strings, arrays,
 * sub-messages): the server frees the reply with
 * protobuf_c_message_free_unpacked() after sending it.
 */
typedef void (*chan_handler_fn)(const Dpsec__Request *req, Dpsec__Reply *rep, void *ctx);

/* Bind @endpoint (ipc:// files get mode 0660, group "dpsec" if it exists). */
struct chan_server *chan_server_open(const char *endpoint, uint64_t epoch, char *err,
				     size_t errlen);
/* File descriptor that becomes readable when the socket may have work (ZMQ_FD). */
int chan_server_fd(const struct chan_server *s);
/* Serve every pending request and flush queued events; never blocks.
 * Returns the number of requests handled. */
int chan_server_process(struct chan_server *s, chan_handler_fn fn, void *ctx);
/* Queue @ev (seq and epoch are filled in per subscriber) for every subscriber.
 * The caller keeps ownership of @ev. Returns how many subscribers it went to. */
size_t chan_server_event(struct chan_server *s, const Dpsec__Event *ev);
/* Counters for `show stats`: requests, bad frames, events sent/queued. */
void chan_server_counters(const struct chan_server *s, uint64_t *requests, uint64_t *bad_frames,
			  uint64_t *events_sent, uint64_t *events_queued);
void chan_server_close(struct chan_server *s);

/* Fill @rep with an error code and a printf-style reason (malloc'd). */
void chan_reply_error(Dpsec__Reply *rep, Dpsec__Code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

struct chan_client *chan_client_open(const char *endpoint, char *err, size_t errlen);
/*
 * Send @req (its id is assigned here) and wait up to @timeout_ms for its reply.
 * Events received meanwhile are queued for chan_client_event().
 * Returns 0 and a reply to free with chan_reply_free(), or -1 with @err set
 * (timeout, channel failure).
 */
int chan_client_call(struct chan_client *c, Dpsec__Request *req, Dpsec__Reply **rep, int timeout_ms,
		     char *err, size_t errlen);
/* Send raw bytes as one frame and wait for the reply (tests of bad frames). */
int chan_client_call_raw(struct chan_client *c, const void *buf, size_t len, Dpsec__Reply **rep,
			 int timeout_ms, char *err, size_t errlen);
/* Subscribe to events (one request/reply). */
int chan_client_subscribe(struct chan_client *c, int timeout_ms, char *err, size_t errlen);
/* Next event, waiting up to @timeout_ms (0 = poll). 1 = got one, 0 = none, -1 = error. */
int chan_client_event(struct chan_client *c, Dpsec__Event **ev, int timeout_ms);
/* ZMQ_FD of the client socket, for daemons that poll. */
int chan_client_fd(const struct chan_client *c);
void chan_client_close(struct chan_client *c);

void chan_reply_free(Dpsec__Reply *rep);
void chan_event_free(Dpsec__Event *ev);

const char *chan_code_name(Dpsec__Code code);

#endif
