/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The built-in "dpsec" plugin of dpsec-ike: provides charon's kernel-ipsec
 * feature with dpsec_ipsec_t. Registered as static features before charon
 * loads its plugins, so it is the first (and only) kernel-ipsec backend;
 * kernel-netlink, loaded later, serves only kernel-net.
 */
#ifndef DPSEC_PLUGIN_H
#define DPSEC_PLUGIN_H

#include <library.h>

/* Call after libcharon_init(), before charon->initialize(). */
void dpsec_plugin_register(void);

/* TRUE once charon's kernel interface took dpsec_ipsec_t as its IPsec backend. */
bool dpsec_plugin_is_backend(void);

#endif
