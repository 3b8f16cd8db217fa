/* Kconfig features as 0/1 constants, so tables and plain `if`s can use them (the code stays
 * compiled and checked either way; the optimiser drops what is off). FAULT, RATE_LIMIT,
 * DNS has no code yet: with it on, its keys are
 * parsed and refused unless off (config/unimplemented.c); with them off, refused as not in this
 * build. Neither way are they listed as features (core/build_info.c). */
#ifndef ML_CONFIG_FEATURES_H
#define ML_CONFIG_FEATURES_H

#include "meshlet_config.h"

#ifdef CONFIG_ML_FLEET
#define ML_HAVE_FLEET 1
#else
#define ML_HAVE_FLEET 0
#endif
#ifdef CONFIG_ML_FAULT
#define ML_HAVE_FAULT 1
#else
#define ML_HAVE_FAULT 0
#endif
#ifdef CONFIG_ML_RATE_LIMIT
#define ML_HAVE_RATE_LIMIT 1
#else
#define ML_HAVE_RATE_LIMIT 0
#endif
#ifdef CONFIG_ML_HEALTH_CHECK
#define ML_HAVE_HEALTH_CHECK 1
#else
#define ML_HAVE_HEALTH_CHECK 0
#endif
#ifdef CONFIG_ML_LB_RING_HASH
#define ML_HAVE_LB_RING_HASH 1
#else
#define ML_HAVE_LB_RING_HASH 0
#endif
#ifdef CONFIG_ML_LB_MAGLEV
#define ML_HAVE_LB_MAGLEV 1
#else
#define ML_HAVE_LB_MAGLEV 0
#endif
#ifdef CONFIG_ML_DNS
#define ML_HAVE_DNS 1
#else
#define ML_HAVE_DNS 0
#endif
#ifdef CONFIG_ML_ADMIN
#define ML_HAVE_ADMIN 1
#else
#define ML_HAVE_ADMIN 0
#endif
/* Data-plane TLS is not implemented yet: tls = on|mtls is refused whatever Kconfig says, so a
 * listener or cluster is never served in plaintext when the config asks for TLS. */
#define ML_HAVE_DATA_TLS 0

#endif
