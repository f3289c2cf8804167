/* SPDX-License-Identifier: BSD-3-Clause */
/* SA lifetimes: the control thread's periodic check and the EXPIRE events it raises. */
#ifndef DPSEC_LIFETIME_H
#define DPSEC_LIFETIME_H

struct chan_server;

/* Check every SA at most every LIFETIME_PERIOD_MS; raise soft/hard EXPIRE once each. */
#define LIFETIME_PERIOD_MS 100

void lifetime_tick(struct chan_server *srv);

#endif
