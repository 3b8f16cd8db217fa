#ifndef ML_CONFIG_SCHEMA_T_H
#define ML_CONFIG_SCHEMA_T_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ml_config_kind {
    ML_KIND_NODE = 0,
    ML_KIND_FLEET,
    ML_KIND_LISTENER,
    ML_KIND_ROUTE,
    ML_KIND_CLUSTER,
    ML_KIND_AUTHZ,
    ML_KIND_COUNT,
};

/* How a value is read (config/validate_*.c have one reader per type). */
enum ml_key_type {
    ML_KT_UINT,         /* MIN..MAX */
    ML_KT_DURATION,     /* MIN..MAX ms; "0" = off with ML_KF_ZERO_OFF */
    ML_KT_SIZE,         /* MIN..MAX bytes */
    ML_KT_PERCENT,      /* 0..100, '%' optional (keys named *_percent) → ppm */
    ML_KT_BOOL,         /* on | off */
    ML_KT_ENUM,         /* one of the key's choices → its position */
    ML_KT_RANGE,        /* DURATION..DURATION within MIN..MAX ms */
    ML_KT_NAME,         /* [A-Za-z0-9_.-]{1,63} */
    ML_KT_NODE_ID,      /* [A-Za-z0-9._:-]{1,64} (fleet/token.h) */
    ML_KT_PATH,         /* a file or directory path */
    ML_KT_STRING,       /* any text, also empty */
    ML_KT_ADDR,         /* IP:PORT */
    ML_KT_ADMIN,        /* IP:PORT | off */
    ML_KT_ACCESS_LOG,   /* off | stderr | syslog | /path */
    ML_KT_URL,          /* ws[s]://HOST[:PORT][/PATH] */
    ML_KT_LISTENER_REF, /* the name of a [listener] */
    ML_KT_GLOB,         /* :authority glob */
    ML_KT_HTTP_PATH,    /* /... */
    ML_KT_HEADER,       /* NAME[: VALUE] */
    ML_KT_SPLIT,        /* CLUSTER [WEIGHT], ... */
    ML_KT_RETRY_ON,     /* comma list of retry conditions */
    ML_KT_FAULT_DELAY,  /* PERCENT DURATION | 0 */
    ML_KT_FAULT_ABORT,  /* PERCENT STATUS | 0 */
    ML_KT_RATE,         /* N/s | N/m [burst N] | 0 */
    ML_KT_ENDPOINT,     /* IP:PORT [weight=N] */
    ML_KT_DNS,          /* HOST:PORT */
    ML_KT_HASH,         /* header:NAME | authority | path */
    ML_KT_HOSTNAME,     /* RFC 1123 host name */
    ML_KT_URI,          /* scheme:rest */
    ML_KT_RULE,         /* PRINCIPAL -> PATH-GLOB */
    ML_KT_LABELS,       /* KEY=VALUE, ... ([node] labels) */
};

enum ml_key_flags {
    ML_KF_REQUIRED = 1u << 0,
    ML_KF_REPEATABLE = 1u << 1,
    ML_KF_ZERO_OFF = 1u << 2, /* "0" alone means off */
};

struct ml_key_def {
    enum ml_config_kind kind;
    const char *name;
    enum ml_key_type type;
    unsigned flags;    /* enum ml_key_flags */
    uint64_t min, max; /* see schema.def */
    const char *dflt;  /* INI text of the default; NULL = none */
    size_t offset;     /* of the field in struct ml_cfg_<kind> */
    bool available;    /* false: the Kconfig feature it needs is off in this build */
    const char *symbol; /* that feature's Kconfig symbol ("CONFIG_ML_FAULT"); NULL: every build */
    const char *help;
};

enum ml_key_id {
#define ML_KEY(kind, key, ...) ML_K_##kind##_##key,
#include "config/schema.def"
#undef ML_KEY
    ML_K_COUNT,
};

#endif
