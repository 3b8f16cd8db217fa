/* What a node id and a config version may be (runtime/fleet/README.md "Names and versions").
 *
 * Both travel far from where they were made: into log lines, /stats and GET /fleet, the
 * admin's `version: V` answer, a controller's DIR/NODE_ID.ini and the file state_dir keeps.
 * So they are printable ASCII from one small set, with a named bound: no control byte, space,
 * quote, slash or non-ASCII byte ever gets there from a controller or a host name. Header only,
 * no dependencies: config/validate_node.c checks [node] id with it too. */
#ifndef ML_FLEET_TOKEN_H
#define ML_FLEET_TOKEN_H

#include <stdbool.h>
#include <stddef.h>

#define ML_FLEET_ID_CHARS_MAX 64       /* a node id: 1..64 characters */
#define ML_FLEET_VERSION_CHARS_MAX 128 /* a config version: 1..128 characters */
/* For messages: the set, as people read it. */
#define ML_FLEET_TOKEN_CHARSET "A-Z a-z 0-9 . _ : -"
/* For messages: the whole node id rule. */
#define ML_FLEET_NODE_ID_RULE "1..64 characters from A-Z a-z 0-9 . _ : -, not starting with ."

static inline bool ml_fleet_token_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == ':' || c == '-';
}

/* s[0..n) is 1..max characters of the set. */
static inline bool ml_fleet_token_valid(const char *s, size_t n, size_t max)
{
    if (s == NULL || n < 1 || n > max) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!ml_fleet_token_char(s[i])) {
            return false;
        }
    }
    return true;
}

/* s[0..n) is a node id: a token of at most ML_FLEET_ID_CHARS_MAX that does not start with '.'
 * (a controller keeps DIR/NODE_ID.ini: no ".", "..", or hidden file). */
static inline bool ml_fleet_node_id_valid(const char *s, size_t n)
{
    return ml_fleet_token_valid(s, n, ML_FLEET_ID_CHARS_MAX) && s[0] != '.';
}

#endif
