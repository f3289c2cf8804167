/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The config.h strongSwan's headers expect, force-included (-include) into
 * every dpsec-ike object. Debian ships no libcharon-dev, so these must match
 * how Debian 12 built strongSwan 5.9.8 (DESIGN.md, "IKE daemon"): a define
 * that differs changes struct layouts (ME adds daemon_t and ike_sa_t members)
 * and the daemon then crashes at start.
 */
#ifndef DPSEC_IKE_CONFIG_H
#define DPSEC_IKE_CONFIG_H

#define CONFIG_H_INCLUDED
#define VERSION "5.9.8"

/* Debian configures --enable-mediation: daemon_t carries the mediation manager. */
#define ME	  1
#define USE_IKEV1 1
#define USE_IKEV2 1

#define CAPABILITIES		      1
#define CAPABILITIES_LIBCAP	      1
#define HAVE_STDBOOL_H		      1
#define HAVE__BOOL		      1
#define HAVE_INT128		      1
#define HAVE_CLOCK_GETTIME	      1
#define HAVE_CONDATTR_CLOCK_MONOTONIC 1
#define HAVE_SIGWAITINFO	      1
#define HAVE_CLOSEFROM		      1
#define HAVE_EXPLICIT_BZERO	      1
#define HAVE_MEMRCHR		      1
#define HAVE_FMEMOPEN		      1
#define HAVE_ALLOCA_H		      1
#define HAVE_SYS_PARAM_H	      1

#endif
