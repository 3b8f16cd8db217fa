/* Kconfig features as 0/1 constants, so tables and plain `if`s can use them, and the Kconfig
 * symbol behind each, so a refusal can name what to turn on. A feature's sources are compiled
 * only when its symbol is on (ml_sources_ifdef in CMakeLists.txt); its config keys are then
 * refused by the parser (config/schema.def's FEATURE column), naming the symbol. */
#ifndef ML_CONFIG_FEATURES_H
#define ML_CONFIG_FEATURES_H

#include "core/kconfig.h"

#define ML_HAVE_ADMIN IS_ENABLED(CONFIG_ML_ADMIN)
#define ML_HAVE_FLEET IS_ENABLED(CONFIG_ML_FLEET)
/* [fleet] url = mqtts:// (fleet/mqtt.c); off: such a url is refused naming the symbol. */
#define ML_HAVE_FLEET_MQTT IS_ENABLED(CONFIG_ML_FLEET_MQTT)
#define ML_HAVE_FAULT IS_ENABLED(CONFIG_ML_FAULT)
#define ML_HAVE_RATE_LIMIT IS_ENABLED(CONFIG_ML_RATE_LIMIT)
#define ML_HAVE_HEALTH_CHECK IS_ENABLED(CONFIG_ML_HEALTH_CHECK)
#define ML_HAVE_LB_RING_HASH IS_ENABLED(CONFIG_ML_LB_RING_HASH)
#define ML_HAVE_LB_MAGLEV IS_ENABLED(CONFIG_ML_LB_MAGLEV)
#define ML_HAVE_DNS IS_ENABLED(CONFIG_ML_DNS)
/* Data-plane TLS on listeners (tls/tls_server.c). Without it tls = on|mtls|permissive is refused,
 * so a listener is never served in plaintext when the config asks for TLS. TLS to clusters is
 * refused whatever Kconfig says (not implemented yet). */
#define ML_HAVE_DATA_TLS IS_ENABLED(CONFIG_ML_TLS)

/* The symbol's name for each FEATURE of config/schema.def: config/schema.c pastes the column's
 * token onto ML_SYMBOL_ (ML_SYMBOL_ML_HAVE_FAULT), before it is expanded to 0 or 1. 1 = a key
 * of every build: no symbol. */
#define ML_SYMBOL_1 NULL
#define ML_SYMBOL_ML_HAVE_ADMIN "CONFIG_ML_ADMIN"
#define ML_SYMBOL_ML_HAVE_FLEET "CONFIG_ML_FLEET"
#define ML_SYMBOL_ML_HAVE_FLEET_MQTT "CONFIG_ML_FLEET_MQTT"
#define ML_SYMBOL_ML_HAVE_FAULT "CONFIG_ML_FAULT"
#define ML_SYMBOL_ML_HAVE_RATE_LIMIT "CONFIG_ML_RATE_LIMIT"
#define ML_SYMBOL_ML_HAVE_HEALTH_CHECK "CONFIG_ML_HEALTH_CHECK"
#define ML_SYMBOL_ML_HAVE_LB_RING_HASH "CONFIG_ML_LB_RING_HASH"
#define ML_SYMBOL_ML_HAVE_LB_MAGLEV "CONFIG_ML_LB_MAGLEV"
#define ML_SYMBOL_ML_HAVE_DNS "CONFIG_ML_DNS"
#define ML_SYMBOL_ML_HAVE_DATA_TLS "CONFIG_ML_TLS"

#endif
