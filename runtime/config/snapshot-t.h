/* The validated configuration: an immutable, refcounted snapshot. Everything it points to lives
 * in its arena and dies with the last reference. Routes, clusters and listeners refer to each
 * other by index into the snapshot's arrays (resolved and checked by the validator). */
#ifndef ML_CONFIG_SNAPSHOT_T_H
#define ML_CONFIG_SNAPSHOT_T_H

#include "config/schema-t.h"
#include "core/arena-t.h"

#include <stdbool.h>
#include <stdint.h>

/* Bounds of [node] admin_token's content: shorter is guessable, longer is not a token. */
#define ML_CFG_ADMIN_TOKEN_MIN_BYTES 16
#define ML_CFG_ADMIN_TOKEN_MAX_BYTES 256

/* [node] labels: at most ML_CFG_LABELS_MAX "key=value" pairs, key and value each 1 to
 * ML_CFG_LABEL_PART_MAX of [A-Za-z0-9._-]: they travel in the fleet Hello (bounded there the
 * same: fleet/envelope.h ML_FLEET_LABELS_MAX) and name rollout groups on the controller. */
#define ML_CFG_LABELS_MAX 16
#define ML_CFG_LABEL_PART_MAX 31

/* An IP literal and port, as given in the INI (bind, admin, endpoint). */
struct ml_cfg_addr {
    bool set;         /* false for "off" (admin) */
    uint8_t family;   /* AF_INET or AF_INET6 */
    uint16_t port;    /* host byte order, 1..65535 */
    uint8_t ip[16];   /* network byte order; 4 bytes used for AF_INET */
    const char *text; /* "127.0.0.1:15001" / "[::1]:15001" as written, arena-owned */
};

struct ml_cfg_range_ms {
    uint32_t from_ms;
    uint32_t to_ms; /* >= from_ms */
};

enum ml_cfg_tls {
    ML_CFG_TLS_OFF = 0,
    ML_CFG_TLS_ON,
    ML_CFG_TLS_MTLS,
    ML_CFG_TLS_PERMISSIVE, /* listeners only: TLS and plaintext h2 on one port */
};

enum ml_cfg_access_log {
    ML_CFG_ACCESS_LOG_OFF = 0,
    ML_CFG_ACCESS_LOG_STDERR,
    ML_CFG_ACCESS_LOG_SYSLOG,
    ML_CFG_ACCESS_LOG_FILE,
    ML_CFG_ACCESS_LOG_STDOUT, /* apart from the node's log (stderr) without a file */
};

/* [node] access_log_format: the choices' order in schema.def. */
enum ml_cfg_access_log_format {
    ML_CFG_ACCESS_LOG_LOGFMT = 0,
    ML_CFG_ACCESS_LOG_JSON,
};

struct ml_cfg_node {
    int line;     /* the [node] header line; 0: no [node] section */
    int end_line; /* the next section's header line as the parser read it; 0: to the end */
    int id_line;  /* the line of id; 0: not given (the host name is used; a fleet push keeps ours) */
    const char *id;
    struct ml_cfg_addr admin; /* admin.set == false: admin = off */
    int admin_line;           /* the line of admin; 0: the default */
    bool admin_remote;
    /* admin_token: the file's path as given (NULL: no token, admin requests are not checked);
     * its content is read when the config is checked, so every apply (start, SIGHUP, push,
     * POST /config) reads the file again. The token is secret: never logged, never shown. */
    const char *admin_token;
    const char *admin_token_value; /* arena-owned, NUL-terminated, the trailing newline cut */
    size_t admin_token_bytes;      /* ML_CFG_ADMIN_TOKEN_MIN_BYTES..ML_CFG_ADMIN_TOKEN_MAX_BYTES */
    int log_level; /* enum ml_log_level */
    int log_target; /* enum ml_log_target: the choices' order in schema.def */
    enum ml_cfg_access_log access_log;
    const char *access_log_path; /* ML_CFG_ACCESS_LOG_FILE only */
    int access_log_format;       /* enum ml_cfg_access_log_format */
    const char *state_dir;
    uint32_t drain_timeout_ms;
    /* event loops, one thread each (node/workers.c); bootstrap, read at start only */
    uint32_t workers;
    int workers_line; /* the line of workers; 0: the default */
    /* labels as one canonical text, "k=v,k2=v2" (no spaces; NULL: none), compared by a push's
     * bootstrap check; and each "k=v" alone, for the fleet Hello. Arena-owned. */
    const char *labels;
    const char *label[ML_CFG_LABELS_MAX];
    uint32_t n_labels;
};

struct ml_cfg_fleet {
    bool present; /* the config has a [fleet] section */
    int line;     /* its header line */
    int end_line; /* the next section's header line as the parser read it; 0: to the end */
    const char *url;
    bool url_tls;         /* wss:// or mqtts:// */
    bool url_mqtt;        /* mqtt:// or mqtts:// (fleet/mqtt.c) */
    const char *url_host; /* host part of url, arena-owned */
    uint16_t url_port;
    const char *url_path;
    const char *ca, *cert, *key; /* NULL when not given */
    struct ml_cfg_range_ms backoff;
    uint32_t report_interval_ms;
    bool insecure;
};

struct ml_cfg_listener {
    const char *name;
    int line;
    struct ml_cfg_addr bind;
    enum ml_cfg_tls tls;
    const char *cert, *key, *ca;
    int file_line[3]; /* the lines of cert, key, ca (0: not given), for findings about them */
    uint32_t max_connections;
    uint32_t max_streams;
    uint32_t window_bytes;
    uint32_t idle_timeout_ms;         /* 0 = off */
    uint32_t max_connection_age_ms;   /* 0 = off */
    uint32_t stream_stall_timeout_ms; /* 0 = off */
};

struct ml_cfg_header_match {
    const char *name;  /* lower case */
    const char *value; /* NULL: the header only has to be present */
};

struct ml_cfg_split {
    const char *cluster_name;
    int cluster;     /* index into snapshot->clusters */
    uint32_t weight; /* relative; the route's weights sum to > 0 */
};

/* Bits of ml_cfg_route.retry_on. */
enum ml_cfg_retry_on {
    ML_CFG_RETRY_UNAVAILABLE = 1u << 0,
    ML_CFG_RETRY_RESET = 1u << 1,
    ML_CFG_RETRY_CONNECT_FAILURE = 1u << 2,
    ML_CFG_RETRY_RESOURCE_EXHAUSTED = 1u << 3,
    ML_CFG_RETRY_CANCELLED = 1u << 4,
    ML_CFG_RETRY_DEADLINE_EXCEEDED = 1u << 5,
};

/* Shares are in parts per million (5% = 50000) so a seeded random draw decides exactly. */
#define ML_CFG_PPM 1000000u

struct ml_cfg_route {
    const char *name;
    int line;
    const char *listener_name;
    int listener;          /* index into snapshot->listeners */
    const char *authority; /* glob, "*" = any */
    const char *prefix;    /* NULL or starts with '/' */
    const char *path;      /* NULL or starts with '/'; never both prefix and path */
    struct ml_cfg_header_match *headers;
    uint32_t n_headers;
    struct ml_cfg_split *split;
    uint32_t n_split;
    uint32_t timeout_ms; /* 0 = none */
    uint32_t retry_on;   /* enum ml_cfg_retry_on bits */
    uint32_t retries;
    struct ml_cfg_range_ms retry_backoff;
    uint32_t fault_delay_ppm;
    uint32_t fault_delay_ms;
    uint32_t fault_abort_ppm;
    int fault_abort_status; /* gRPC status code */
    bool fault_headers;
    uint32_t rate_per_min; /* tokens per minute; 0 = no rate limit */
    uint32_t rate_burst;   /* bucket size */
};

enum ml_cfg_lb {
    ML_CFG_LB_ROUND_ROBIN = 0,
    ML_CFG_LB_LEAST_REQUEST,
    ML_CFG_LB_RANDOM,
    ML_CFG_LB_RING_HASH,
    ML_CFG_LB_MAGLEV,
};

enum ml_cfg_hash {
    ML_CFG_HASH_NONE = 0, /* a random endpoint */
    ML_CFG_HASH_HEADER,
    ML_CFG_HASH_AUTHORITY,
    ML_CFG_HASH_PATH,
};

enum ml_cfg_health {
    ML_CFG_HEALTH_OFF = 0,
    ML_CFG_HEALTH_TCP,
    ML_CFG_HEALTH_GRPC,
};

struct ml_cfg_endpoint {
    struct ml_cfg_addr addr;
    uint32_t weight; /* 1..128 */
};

struct ml_cfg_cluster {
    const char *name;
    int line;
    struct ml_cfg_endpoint *endpoints;
    uint32_t n_endpoints;
    const char *dns_host; /* NULL unless dns = HOST:PORT */
    uint16_t dns_port;
    uint32_t dns_refresh_ms;
    enum ml_cfg_lb lb;
    enum ml_cfg_hash hash;
    const char *hash_header; /* ML_CFG_HASH_HEADER: lower-case header name */
    enum ml_cfg_tls tls;
    const char *sni, *identity;  /* NULL unless given */
    const char *ca, *cert, *key; /* PEM paths (tls = on | mtls); NULL unless given */
    int file_line[3];            /* the lines of cert, key, ca (0: not given), for findings */
    uint32_t connect_timeout_ms;
    uint32_t keepalive_ms; /* 0 = off */
    uint32_t max_connections;
    uint32_t max_streams_per_connection;
    uint32_t max_pending;
    uint32_t max_requests;
    uint32_t max_retries;
    uint32_t max_share_percent; /* 1..100: of the slots and of max_pending, per downstream conn */
    enum ml_cfg_health health_check;
    const char *health_service; /* "" = the whole server */
    uint32_t health_interval_ms;
    uint32_t health_timeout_ms;
    uint32_t healthy_threshold;
    uint32_t unhealthy_threshold;
    uint32_t outlier_errors; /* 0 = off */
    uint32_t outlier_ejection_ms;
    uint32_t outlier_max_ppm;
};

struct ml_cfg_authz_rule {
    bool allow;
    const char *principal; /* glob on the peer's principal, "-" = none (proxy/authz.h) */
    const char *path;      /* glob on :path */
};

struct ml_cfg_authz {
    const char *name; /* = the listener's name */
    int line;
    int listener;
    struct ml_cfg_authz_rule *rules;
    uint32_t n_rules;
    int default_allow; /* 0 = deny, 1 = allow (the `default` key) */
};

/* "local-" + 12 hex digits, or a controller's version string (bounded by the fleet protocol). */
#define ML_CFG_VERSION_MAX 128

struct ml_snapshot {
    int refcount; /* changed with atomic builtins only: every worker's calls hold references */
    struct ml_arena arena; /* owns every string and array below */
    char version[ML_CFG_VERSION_MAX + 1];
    const char *text; /* the INI text as given, NUL-terminated (admin /config, state_dir) */
    uint32_t text_bytes;
    bool remote; /* a push or POST (ML_CONFIG_REMOTE): [node]'s files were not read */

    struct ml_cfg_node node;
    struct ml_cfg_fleet fleet;
    /* The line each [node] and [fleet] key is set on (0: not set, its default or nothing): a
     * push may only repeat the running bootstrap, and its refusal names the key's line. */
    int bootstrap_line[ML_K_COUNT];
    struct ml_cfg_listener *listeners;
    uint32_t n_listeners;
    struct ml_cfg_route *routes; /* file order: the order routes are tried */
    uint32_t n_routes;
    struct ml_cfg_cluster *clusters;
    uint32_t n_clusters;
    struct ml_cfg_authz *authz;
    uint32_t n_authz;
};

#endif
