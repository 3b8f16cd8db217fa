/* `meshlet controller` inside: what its files share (folder-private).
 *
 *   controller.c  arguments, start, the poll timer, stop
 *   configs.c     the watched directory: one struct ml_ctl_file per INI file, re-read on change
 *   nodes.c       the node table and what each message does to it; when to push
 *   rollout.c     which file serves a node (own, label, default); staged rollouts, halts,
 *                 rollback, transient retries
 *   state.c       the --state directory: what survives a restart
 *   json.c        GET /fleet (with filters and the per-node state), GET /stats
 *   metrics.c     GET /metrics (Prometheus text) and GET /fleet/status (one line per node)
 *   status_cli.c  `meshlet fleet status|rollback` (a separate command: shares no state here)
 *   status_tls.c  its https:// side (mbedTLS)
 *   text.c        text from nodes: the node id rule, text made safe for log lines
 *   msg.c         envelopes in and out (the only file here that sees nanopb's types)
 *   ws.c          libwebsockets: the vhost, the fleet WebSocket protocol and plain HTTP
 *   mqtt.c        --mqtt: the nodes through an MQTT broker instead of WebSockets
 *
 * nodes.c and rollout.c reach a node through struct ml_ctl_conn (below), whichever of ws.c and
 * mqtt.c carries it.
 *
 * Who owns what: struct ml_ctl owns the node table, the files and the vhost; lws owns each
 * connection and its struct ml_ctl_conn (per-session data), which owns its receive and send
 * buffers. A node and its connection point at each other while it is connected; ws.c breaks the
 * link when the connection closes. */
#ifndef ML_CONTROLLER_CONTROLLER_INT_H
#define ML_CONTROLLER_CONTROLLER_INT_H

#include "core/fd_budget.h"
#include "core/loop-t.h"
#include "core/slice-t.h"

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Nodes the table remembers, connected or not. A Hello from a new node when the table is full
 * takes the slot of the node that has been disconnected longest; when every slot is a connected
 * node, the new connection is closed with a logged reason. */
#define ML_CTL_MAX_NODES 1024
/* A node disconnected this long is forgotten (its record leaves GET /fleet): a fleet that renames
 * or retires nodes does not keep their records for ever. */
#define ML_CTL_FORGET_AFTER_S (7u * 24 * 3600)
/* Connections of any kind (WebSocket, HTTP, a socket that says nothing) open at once; one more is
 * closed as it is accepted and counted, so idle sockets cannot take every fd of the loop (whose
 * libwebsockets context has ML_FD_BUDGET_TOTAL = 1024: core/fd_budget.h). A controller process
 * runs no data plane and no admin endpoint, so their shares are free in it: it keeps
 * ML_CTL_FDS_RESERVED for stdio, the listener, libwebsockets' event pipe, the files it reads
 * and the state it writes, and one socket being accepted over the cap, and gives nodes the
 * rest: 1008, so a fleet of 1000 nodes fits one controller with room for a few GET /fleet
 * (was 768, which did not). */
#define ML_CTL_FDS_RESERVED 16
#define ML_CTL_MAX_CONNS (ML_FD_BUDGET_TOTAL - ML_CTL_FDS_RESERVED)
/* A Hello's node id: 1 to 64 bytes of [A-Za-z0-9._:-], not starting with '.' (it names
 * DIR/ID.ini, a log line and a certificate name). */
#define ML_CTL_NODE_ID_MAX 64
/* How often the configuration directory is looked at (stat; re-read only what changed). */
#define ML_CTL_POLL_MS 500
/* Version: the first 16 hex digits of the file's SHA-256 (runtime/fleet/README.md). */
#define ML_CTL_VERSION_HEX 16
/* Largest GET /fleet body; past it the answer is 500 and a logged line. json.c bounds each
 * node's record (ML_CTL_JSON_NODE_MAX_BYTES) so that a full table stays under it. */
#define ML_CTL_MAX_JSON_BYTES (32u * 1024 * 1024)
/* A Nack's error in GET /fleet: at most this many bytes of escaped JSON text, then
 * ML_CTL_JSON_CUT_MARKER (the whole error is in the controller's log). */
#define ML_CTL_JSON_ERROR_MAX_BYTES 1024
#define ML_CTL_JSON_CUT_MARKER "\u2026 [cut]"
/* The most one node's record takes in GET /fleet, whatever its strings hold (json.c checks the
 * worst case fits). */
#define ML_CTL_JSON_NODE_MAX_BYTES (24u * 1024)

/* Labels a node may send (fleet/envelope.h ML_FLEET_LABELS_MAX, "key=value" each). */
#define ML_CTL_LABELS_MAX 16
#define ML_CTL_LABEL_MAX 63
#define ML_CTL_LABEL_PART_MAX 31
/* DIR/label=KEY=VALUE.ini files the controller watches: one per label some node has named; a
 * label beyond this many is not looked up (logged once), so Hellos cannot grow the table. */
#define ML_CTL_MAX_LABEL_FILES 128
/* Rollout stages (--stages), at most this many. By default one: a changed file goes to every
 * connected node it serves at once, as the fleet protocol has it; a fleet that wants a canary
 * first says so (--stages 1,10%,100%). */
#define ML_CTL_MAX_STAGES 8
#define ML_CTL_DEFAULT_STAGES "100%"
/* How long every node of a stage must stay acked, reporting and healthy before the next stage
 * (--soak); and how long without any message makes a node "stopped reporting" (--stale). */
#define ML_CTL_DEFAULT_SOAK_MS (60u * 1000)
#define ML_CTL_DEFAULT_STALE_MS (60u * 1000)
/* A transient Nack (Nack.transient: a bind, a save) is retried after RETRY_BASE, doubling up to
 * RETRY_MAX; after RETRY_LIMIT tries it counts as a Nack (the rollout halts). */
#define ML_CTL_RETRY_BASE_MS 1000u
#define ML_CTL_RETRY_MAX_MS (60u * 1000)
#define ML_CTL_RETRY_LIMIT 8
/* A halted rollout's reason as shown: the node, its error lines cut here. */
#define ML_CTL_HALT_TEXT_MAX 1024

/* Text bounds of the fleet fields, without the NUL; msg.c checks they match the wire's
 * (fleet/envelope.h ML_FLEET_*). */
#define ML_CTL_TEXT_MAX 128 /* node id, board, meshlet version, config version */
#define ML_CTL_FEATURES_MAX 16
#define ML_CTL_FEATURE_MAX 31
#define ML_CTL_ERROR_MAX 4096

struct ml_ctl_conn;
struct ml_ctl_mqtt;
struct ml_ctl_saved;
struct ml_timer;
struct lws_vhost;

/* How nodes.c and rollout.c reach a node, whatever carries the fleet: ws.c (a node's WebSocket)
 * and mqtt.c (a node known from its retained Hello on the broker) each embed struct
 * ml_ctl_conn first in their own record and fill ops. */
struct ml_ctl_conn_ops {
    size_t pre; /* bytes a send buffer keeps free in front of the message (ml_ctl_msg_push) */
    /* Queues a whole envelope (buf from ml_ctl_msg_push, taken) for the node, replacing one not
     * yet sent (a newer config supersedes it). */
    void (*send_take)(struct ml_ctl_conn *conn, uint8_t *buf, size_t n);
};

struct ml_ctl_conn {
    const struct ml_ctl_conn_ops *ops;
    struct ml_ctl_node *node; /* set by nodes.c on Hello; NULL before and once gone */
    unsigned id;              /* for log lines: "c%u" */
};

/* A version the controller may push: its hash and its bytes (ml_malloc'd; NULL: none). */
struct ml_ctl_rev {
    char version[ML_CTL_VERSION_HEX + 1]; /* "" = none */
    uint8_t *ini;
    size_t n;
};

enum ml_ctl_ro_state {
    ML_CTL_RO_NONE = 0,    /* nothing rolling: every node gets stable */
    ML_CTL_RO_ROLLING,     /* target goes out stage by stage */
    ML_CTL_RO_HALTED,      /* a Nack or a silent node stopped it: halt says why */
    ML_CTL_RO_ROLLED_BACK, /* rollback: stable everywhere until the file changes */
};

/* A file's rollout (rollout.c). stable is what nodes outside the rollout run; target is the
 * file's new content going out; previous is the stable before, for one rollback. */
struct ml_ctl_rollout {
    enum ml_ctl_ro_state state;
    struct ml_ctl_rev stable, target, previous;
    char blocked[ML_CTL_VERSION_HEX + 1]; /* rolled back from: not rolled out again */
    unsigned stage;                       /* ROLLING/HALTED: the stage under way (0-based) */
    uint64_t stage_ok_ms;                 /* when every node of the stage was last found good */
    char halt[ML_CTL_HALT_TEXT_MAX + 1];  /* HALTED: which node, and its error lines */
    size_t members, done;                 /* nodes chosen so far, and of them synced */
};

/* One INI file of the directory as last seen. */
struct ml_ctl_file {
    char path[PATH_MAX];
    /* What stat said last time, to tell a change without reading: */
    bool seen;    /* stat has run at least once */
    bool present; /* the file exists */
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    struct timespec ctime;
    /* The content, when usable: */
    int error; /* 0 = usable; else why it is not pushed (-errno, -EFBIG, -EINVAL = invalid) */
    char version[ML_CTL_VERSION_HEX + 1];
    uint8_t *ini; /* the file's bytes (ml_file_read_all's, free()); NULL when not usable */
    size_t n;
    const char *name;         /* path's last part, for /fleet, /metrics and the state file */
    struct ml_ctl_rollout ro; /* rollout.c */
    bool ro_loaded;           /* ro came from the state file (state.c) */
};

struct ml_ctl_status {
    char config_version[ML_CTL_TEXT_MAX + 1];
    uint64_t uptime_s;
    uint64_t calls_total;
    uint64_t calls_failed;
    uint32_t endpoints_healthy;
    uint32_t endpoints_total;
};

struct ml_ctl_node {
    char id[ML_CTL_TEXT_MAX + 1];
    char board[ML_CTL_TEXT_MAX + 1];
    char version[ML_CTL_TEXT_MAX + 1]; /* meshlet's */
    char features[ML_CTL_FEATURES_MAX][ML_CTL_FEATURE_MAX + 1];
    size_t n_features;
    char config_version[ML_CTL_TEXT_MAX + 1]; /* what the node says it runs ("" = its local file) */
    struct ml_ctl_conn *conn;                 /* NULL: disconnected */
    uint64_t disconnected_ms;                 /* when conn went NULL (monotonic), for eviction */
    char pushed_version[ML_CTL_VERSION_HEX + 1]; /* sent on this connection, no answer yet; "" */
    uint64_t pushed_nonce;
    bool has_nack;
    char nack_version[ML_CTL_TEXT_MAX + 1]; /* never pushed to this node again */
    char nack_error[ML_CTL_ERROR_MAX + 1];
    bool nack_transient;
    bool has_status;
    struct ml_ctl_status status;
    struct ml_ctl_file own; /* DIR/ID.ini; when absent, a label file, then DIR/default.ini */
    char labels[ML_CTL_LABELS_MAX][ML_CTL_LABEL_MAX + 1];
    size_t n_labels;
    struct ml_ctl_file *serving; /* the file that serves it now (rollout.c); NULL: none */
    char member_of[ML_CTL_VERSION_HEX + 1]; /* the target version it was chosen for; "" */
    uint64_t connected_since_s;             /* wall clock, of the last Hello */
    uint64_t last_seen_s;                   /* wall clock, of the last message */
    uint64_t last_seen_ms;                  /* monotonic, for --stale */
    uint64_t unhealthy_ms;        /* monotonic: since when its Status says no endpoint is healthy
                                     (0: healthy); --stale of it halts a rollout */
    unsigned retries;             /* transient Nacks of nack_version in a row */
    uint64_t retry_at_ms;         /* monotonic: not pushed again before */
};

/* What the controller refused or ignored, and why (GET /stats). */
struct ml_ctl_counters {
    uint64_t conns_active;           /* sockets open on the listener now */
    uint64_t conns_refused_over_cap; /* closed as accepted: ML_CTL_MAX_CONNS were open */
    uint64_t hello_refused_bad_id;   /* node id outside the rule (ML_CTL_NODE_ID_MAX, charset) */
    uint64_t hello_refused_identity; /* with --ca: the certificate names another node */
    uint64_t hello_refused_in_use;   /* the id is connected on another connection */
    uint64_t hello_refused_table_full;
    uint64_t answers_ignored; /* Ack/Nack not for the push outstanding on that connection */
    uint64_t nodes_forgotten; /* disconnected longer than ML_CTL_FORGET_AFTER_S, or table full */
    uint64_t pushes;          /* Push envelopes sent */
    uint64_t acks, nacks, nacks_transient, retries;
    uint64_t rollouts_started, rollouts_done, rollouts_halted, rollbacks;
    uint64_t state_save_failures;
    /* --mqtt (mqtt.c): connected now (0/1), connections made, PUBACKs of pushes, and PUBLISHes
     * dropped unread or undecodable (over ML_CTL_MAX_NODE_MESSAGE_BYTES, not an Envelope, a
     * topic that is no node's). */
    uint64_t mqtt_connected, mqtt_connects, mqtt_pubacks, mqtt_dropped;
    /* state-changing HTTP requests (POST /rollback) refused for a missing or wrong
     * --admin-token */
    uint64_t http_unauthorized;
};

/* A stage: a node count, or a percent of the file's nodes. */
struct ml_ctl_stage {
    bool percent;
    unsigned value;
};

struct ml_ctl {
    struct ml_loop *loop;
    struct ml_ctl_counters counters;
    struct lws_vhost *vh;
    struct ml_timer *poll;
    bool client_certs; /* --ca: every connection must show a certificate that chains to it */
    char dir[PATH_MAX];
    struct ml_ctl_file fallback;                 /* DIR/default.ini */
    struct ml_ctl_node *nodes[ML_CTL_MAX_NODES]; /* ml_calloc'd; the first n_nodes are used */
    size_t n_nodes;
    uint64_t next_nonce;
    unsigned next_conn_id; /* for log lines: "c%u" */
    struct ml_ctl_file *label_files[ML_CTL_MAX_LABEL_FILES]; /* ml_calloc'd, n_label_files */
    size_t n_label_files;
    struct ml_ctl_stage stages[ML_CTL_MAX_STAGES];
    size_t n_stages;
    uint32_t soak_ms, stale_ms;
    char state_dir[PATH_MAX]; /* "" = no --state: nothing survives a restart */
    bool state_dirty;
    struct ml_ctl_saved *saved; /* state.c: what the state file said, until used */
    struct ml_ctl_mqtt *mqtt;   /* --mqtt: the broker client (mqtt.c); NULL: WebSockets */
    /* --admin-token FILE: what a state-changing request must send as "Bearer TOKEN"
     * (ml_malloc'd, admin_token_n bytes; NULL: none required) */
    char *admin_token;
    size_t admin_token_n;
};

/* A Hello, Ack, Nack or Status as received; strings NUL-terminated. */
enum ml_ctl_msg_kind {
    ML_CTL_MSG_UNKNOWN = 0, /* well formed, a kind this controller does not know: ignored */
    ML_CTL_MSG_HELLO,
    ML_CTL_MSG_PUSH, /* a node never sends one */
    ML_CTL_MSG_ACK,
    ML_CTL_MSG_NACK,
    ML_CTL_MSG_STATUS,
};

struct ml_ctl_msg {
    enum ml_ctl_msg_kind kind;
    struct {
        char node_id[ML_CTL_TEXT_MAX + 1];
        char board[ML_CTL_TEXT_MAX + 1];
        char version[ML_CTL_TEXT_MAX + 1];
        char config_version[ML_CTL_TEXT_MAX + 1];
        char features[ML_CTL_FEATURES_MAX][ML_CTL_FEATURE_MAX + 1];
        size_t n_features;
        char labels[ML_CTL_LABELS_MAX][ML_CTL_LABEL_MAX + 1];
        size_t n_labels;
    } hello;
    struct {
        char version[ML_CTL_TEXT_MAX + 1];
        uint64_t nonce;
        char error[ML_CTL_ERROR_MAX + 1]; /* Nack only */
        bool transient;                   /* Nack only */
    } answer;
    struct ml_ctl_status status;
};

/* msg.c. Decodes one whole message p[0..n) into *out: 0; -EMSGSIZE over the message cap;
 * -EPROTO for bytes that are not an Envelope. */
int ml_ctl_msg_decode(const uint8_t *p, size_t n, struct ml_ctl_msg *out);
/* A Push envelope into a new ml_malloc'd buffer with LWS_PRE bytes free in front (*out, the
 * envelope at *out + pre, *n_out bytes). 0; -ENOBUFS when it would pass the message cap;
 * -ENOMEM. */
int ml_ctl_msg_push(const char *version, uint64_t nonce, struct ml_slice ini, size_t pre,
                    uint8_t **out, size_t *n_out);
/* The largest message a node accepts (ML_FLEET_MAX_MESSAGE_BYTES). */
size_t ml_ctl_msg_max_bytes(void);
/* The largest message a node may send: a Hello (id, board, version, features), a Status, or an
 * Ack/Nack whose error a node cuts at 4 KiB. Far below what a node accepts (a whole config), so
 * that ML_CTL_MAX_CONNS hostile sockets cannot make the controller buffer a config's size each. */
#define ML_CTL_MAX_NODE_MESSAGE_BYTES (16u * 1024u)

/* text.c. true for a node id that follows the rule (ML_CTL_NODE_ID_MAX): it can name a file in
 * DIR and be printed as it is. */
bool ml_ctl_node_id_safe(const char *id);
/* true for a Hello label that follows [node] labels' rule: "KEY=VALUE", each part 1 to
 * ML_CTL_LABEL_PART_MAX of [A-Za-z0-9._-] (it names DIR/label=KEY=VALUE.ini). */
bool ml_ctl_label_safe(const char *label);
/* At most n_max bytes of s (NUL-terminated or not) into out[cap] for a log line: printable ASCII
 * as it is, anything else (and '\\') as \xHH, "..." when it does not fit. */
void ml_ctl_text_printable(const char *s, size_t n_max, char *out, size_t cap);

/* configs.c. Sets up f for dir/name (nothing is read yet). -ENAMETOOLONG. */
int ml_ctl_file_init(struct ml_ctl_file *f, const char *dir, const char *name);
void ml_ctl_file_deinit(struct ml_ctl_file *f);
/* Stats f's file and re-reads it when it changed (logging a new version, or why it is not
 * usable, once per change). true when what the file offers changed since the last call. */
bool ml_ctl_file_refresh(struct ml_ctl_file *f);

/* nodes.c: what the messages do. ml_ctl_on_hello takes a Hello whose node id is safe (and, with
 * --ca, is the certificate's): 0, or -1 when the connection must close (the reason in why[cap]).
 * Two connections never share a node: while one is connected, a Hello with its id on another
 * connection is refused, so two peers using one id cannot take the record back and forth. */
int ml_ctl_on_hello(struct ml_ctl *ctl, struct ml_ctl_conn *conn, const struct ml_ctl_msg *m,
                    char *why, size_t cap);
/* An Ack or Nack from conn, the connection of node: it counts only when it names the version and
 * nonce of the push outstanding on that connection; anything else is ignored and counted. */
void ml_ctl_on_answer(struct ml_ctl *ctl, struct ml_ctl_conn *conn, struct ml_ctl_node *node,
                      const struct ml_ctl_msg *m);
/* A Status from conn: counts only when conn is node's connection. */
void ml_ctl_on_status(struct ml_ctl *ctl, struct ml_ctl_conn *conn, struct ml_ctl_node *node,
                      const struct ml_ctl_msg *m);
/* The connection of node closed. */
void ml_ctl_on_gone(struct ml_ctl *ctl, struct ml_ctl_node *node);
/* Looks at the directory again and pushes what changed to the connected nodes. */
void ml_ctl_sync_all(struct ml_ctl *ctl);
void ml_ctl_nodes_free(struct ml_ctl *ctl);

/* rollout.c. Every tick: files refreshed, each node's file chosen, rollouts advanced, and what
 * a node should run pushed when the push rule says so. */
void ml_ctl_rollout_tick(struct ml_ctl *ctl, bool poll);
/* poll: files are stat'ed (the poll timer); else only the rollouts and pushes move (after a
 * message). ml_ctl_rollout_refresh_node: node's own and label files, and which one serves it. */
void ml_ctl_rollout_refresh_node(struct ml_ctl *ctl, struct ml_ctl_node *node);
/* The version node should run now (its file's stable or target), or NULL when none. */
const struct ml_ctl_rev *ml_ctl_rollout_desired(const struct ml_ctl *ctl,
                                                const struct ml_ctl_node *node);
/* A Nack of node for its file's target: halts a rollout (not a transient one). */
void ml_ctl_rollout_on_nack(struct ml_ctl *ctl, struct ml_ctl_node *node);
/* POST /rollback: every file back to its previous version (or its stable, when a rollout is
 * under way or halted). How many files changed; what was done in msg[cap]. */
int ml_ctl_rollout_rollback(struct ml_ctl *ctl, char *msg, size_t cap);
/* The label file for "key=value" (created on first use); NULL when the table is full. */
struct ml_ctl_file *ml_ctl_label_file(struct ml_ctl *ctl, const char *label);
void ml_ctl_rollout_free(struct ml_ctl *ctl);
const char *ml_ctl_ro_state_name(enum ml_ctl_ro_state s);
/* "SYNCED", "STALE", "NACKED" or "OFFLINE" (runtime/fleet/README.md). */
const char *ml_ctl_node_state(const struct ml_ctl *ctl, const struct ml_ctl_node *node);
void ml_ctl_rev_set(struct ml_ctl_rev *dst, const struct ml_ctl_rev *src);
void ml_ctl_rev_clear(struct ml_ctl_rev *r);
uint64_t ml_ctl_wall_s(void);

/* state.c. --state DIR: checked (made) at start, loaded, then saved after every change of a
 * rollout or a Nack (atomically: config/store.c). 0 or -errno with why. */
int ml_ctl_state_open(struct ml_ctl *ctl, const char *dir, char *why, size_t cap);
/* Applies what the state file says about f (by name) and node records, once. */
void ml_ctl_state_restore_file(struct ml_ctl *ctl, struct ml_ctl_file *f);
void ml_ctl_state_restore_node(struct ml_ctl *ctl, struct ml_ctl_node *node);
/* Writes the state when something changed since the last save. */
void ml_ctl_state_save(struct ml_ctl *ctl);
void ml_ctl_state_free(struct ml_ctl *ctl);

/* metrics.c. GET /metrics and GET /fleet/status bodies, ml_malloc'd. 0; -ENOMEM; -ENOBUFS. */
int ml_ctl_metrics(const struct ml_ctl *ctl, char **out, size_t *n_out);
int ml_ctl_status_text(const struct ml_ctl *ctl, const char *label, const char *state, char **out,
                       size_t *n_out);
/* Whether node has the label "key=value" (NULL: any) and is in state (NULL: any). */
bool ml_ctl_node_matches(const struct ml_ctl *ctl, const struct ml_ctl_node *node,
                         const char *label, const char *state);

/* json.c. The GET /fleet body, ml_malloc'd, in *out (*n_out bytes). 0; -ENOBUFS past
 * ML_CTL_MAX_JSON_BYTES; -ENOMEM. */
int ml_ctl_json_fleet(const struct ml_ctl *ctl, const char *label, const char *state, char **out,
                      size_t *n_out);
/* The GET /stats body (text, one "name value" per line), ml_malloc'd. 0; -ENOMEM. */
int ml_ctl_json_stats(const struct ml_ctl *ctl, char **out, size_t *n_out);

/* ws.c */
struct ml_ctl_listen {
    const char *iface; /* an IP literal */
    uint16_t port;
    const char *cert, *key, *ca; /* NULL: plain / no client certificates */
};
/* Creates the vhost on ctl->loop: the fleet's WebSockets (unless fleet_ws is false: --mqtt)
 * and the HTTP endpoints. 0, or a negative errno with the reason in why[cap]. */
int ml_ctl_ws_listen(struct ml_ctl *ctl, const struct ml_ctl_listen *l, bool fleet_ws, char *why,
                     size_t cap);

/* mqtt.c: the fleet through an MQTT broker (runtime/fleet/README.md, "The fleet over MQTT"). */
struct ml_ctl_mqtt_opts {
    const char *url;             /* mqtts://HOST[:PORT] or mqtt://HOST[:PORT], empty path */
    const char *ca, *cert, *key; /* --mqtt-ca/-cert/-key (mqtts://) */
    const char *client_id;       /* NULL: ML_CTL_MQTT_CLIENT_ID */
    bool insecure;               /* --mqtt-insecure: mqtt:// allowed */
};
#define ML_CTL_MQTT_CLIENT_ID "meshlet-controller"
/* Checks opts (URL, files) and starts connecting to the broker on ctl->loop; it reconnects with
 * a backoff for as long as the loop runs. 0, or a negative errno with the reason in why[cap]. */
int ml_ctl_mqtt_start(struct ml_ctl *ctl, const struct ml_ctl_mqtt_opts *opts, char *why,
                      size_t cap);
/* Before the loop is freed: no reconnect is started any more, its timers are freed. */
void ml_ctl_mqtt_stop(struct ml_ctl *ctl);
/* After the loop is freed (no callback runs any more): frees what ml_ctl_mqtt_start made. */
void ml_ctl_mqtt_free(struct ml_ctl *ctl);

#endif
