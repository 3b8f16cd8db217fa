/* The fleet's WebSocket transport (transport.h): one binary frame per envelope, subprotocol
 * meshlet.fleet.v1, to the controller at [fleet] url = wss://HOST[:PORT][/PATH]. The lws traps
 * met on this path are listed at the top of client.c. */
#include "fleet/transport.h"

#include <stdio.h>
#include <string.h>

#define FLEET_PROTOCOL "meshlet.fleet.v1"

/* A connection with nothing from the controller for PING_AFTER_S gets a WebSocket PING; with no
 * answer (or anything else) by HANGUP_AFTER_S it is dropped: behind NAT a dead path otherwise
 * looks alive until TCP gives up on a Status, many minutes later. */
#define PING_AFTER_S 30
#define HANGUP_AFTER_S 90

static const lws_retry_bo_t keepalive = {
    .secs_since_valid_ping = PING_AFTER_S,
    .secs_since_valid_hangup = HANGUP_AFTER_S,
};

static int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                       size_t len)
{
    struct ml_fleet_client *c = ml_fleet_conn_enter(wsi);
    int rv = 0;

    (void)user;
    if (c == NULL) {
        return 0;
    }
    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        ml_fleet_conn_failed(c, wsi, in, len);
        break;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        ml_fleet_conn_established(c, wsi);
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        rv = ml_fleet_conn_receive(c, wsi, in, len, lws_is_first_fragment(wsi) != 0,
                                   lws_is_final_fragment(wsi) != 0, lws_frame_is_binary(wsi) != 0);
        break;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        rv = ml_fleet_conn_writeable(c, wsi);
        break;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (len >= 2 && in != NULL) {
            const uint8_t *p = in;
            char words[84], said[128]; /* the controller's words, escaped: they go into a log */

            ml_fleet_printable(p + 2, len - 2, words, sizeof(words));
            snprintf(said, sizeof(said), "closed by the controller (%u%s%s)",
                     (unsigned)(p[0] << 8 | p[1]), len > 2 ? ": " : "", words);
            ml_fleet_conn_peer_said(c, said);
        }
        break;
    case LWS_CALLBACK_CLIENT_CLOSED:
        ml_fleet_conn_closed(c, "closed by the controller (or no answer to pings for 90 s)");
        break;
    case LWS_CALLBACK_WSI_DESTROY:
        ml_fleet_conn_destroyed(c, wsi);
        break;
    default:
        break;
    }
    return ml_fleet_conn_leave(c, rv);
}

static const struct lws_protocols ws_protocols[] = {
    {
        .name = FLEET_PROTOCOL,
        .callback = ws_callback,
        .rx_buffer_size = 16 * 1024, /* chunks; messages are reassembled by client.c */
    },
    LWS_PROTOCOL_LIST_TERM,
};

static void ws_connect_info(void *st, const char *node_id, const struct ml_cfg_fleet *cfg,
                            struct lws_client_connect_info *ci)
{
    (void)st;
    (void)node_id;
    ci->path = cfg->url_path;
    ci->origin = cfg->url_host;               /* Host header: ci->host */
    ci->protocol = FLEET_PROTOCOL;            /* Sec-WebSocket-Protocol we ask for */
    ci->local_protocol_name = FLEET_PROTOCOL; /* our lws_protocols entry */
    ci->retry_and_idle_policy = &keepalive;
}

static int ws_write(void *st, struct lws *wsi, uint8_t *buf, size_t n, enum ml_fleet_msg_kind kind)
{
    (void)st;
    (void)kind;
    return lws_write(wsi, buf + LWS_PRE, n, LWS_WRITE_BINARY) < 0 ? -1 : ML_FLEET_WRITE_SENT;
}

const struct ml_fleet_transport ml_fleet_ws_transport = {
    .name = "WebSocket",
    .scheme = "ws://",
    .scheme_tls = "wss://",
    .protocols = ws_protocols,
    .bad_message_fatal = true,
    .state_size = 0,
    .connect_info = ws_connect_info,
    .write = ws_write,
};
