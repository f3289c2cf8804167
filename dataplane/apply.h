/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The one apply path: every state change — config file line, dpsecctl, the
 * IKE daemon — is a Dpsec__Request handled here, on the control thread.
 */
#ifndef DPSEC_APPLY_H
#define DPSEC_APPLY_H

#include <stdbool.h>

#include "dpsec.pb-c.h"

/* Set once the config is applied and the ports run: ports are fixed from then on. */
extern bool apply_running;

/* Channel handler signature (proto/channel.h); @ctx unused. */
void apply_request(const Dpsec__Request *req, Dpsec__Reply *rep, void *ctx);

/* A malloc'd deep copy of @m that a reply can own. */
void *apply_msg_clone(const ProtobufCMessage *m);

/* SAD <-> SPD glue: policies find their SA, SA changes repoint policies. */
void apply_bind_init(void);

/* `show ...` replies (show.c). */
void show_reply(const Dpsec__Show *s, Dpsec__Reply *rep);

#endif
