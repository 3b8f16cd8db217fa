/* Text that comes from nodes, before it is used: which node ids are accepted, and how any text a
 * node sent is made safe for a log line. */
#include "controller/controller_int.h"

#include <stdio.h>
#include <string.h>

bool ml_ctl_node_id_safe(const char *id)
{
    size_t n = strnlen(id, ML_CTL_NODE_ID_MAX + 1);

    /* A leading '.' would make "." and ".." (and hidden files) out of DIR/ID.ini. */
    if (n == 0 || n > ML_CTL_NODE_ID_MAX || id[0] == '.') {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = id[i];

        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-')) {
            return false;
        }
    }
    return true;
}

/* 1..ML_CTL_LABEL_PART_MAX of [A-Za-z0-9._-]: the rule of [node] labels (config/README.md). */
static bool label_part(const char *s, size_t n)
{
    if (n == 0 || n > ML_CTL_LABEL_PART_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-')) {
            return false;
        }
    }
    return true;
}

bool ml_ctl_label_safe(const char *label)
{
    const char *eq = strchr(label, '=');

    /* It names DIR/label=KEY=VALUE.ini: no '/', and a part is never "." or ".." alone with
     * the prefix around it, so the rule above is enough. */
    return eq != NULL && label_part(label, (size_t)(eq - label)) &&
           label_part(eq + 1, strlen(eq + 1));
}

void ml_ctl_text_printable(const char *s, size_t n_max, char *out, size_t cap)
{
    size_t o = 0;

    if (cap == 0) {
        return;
    }
    for (size_t i = 0; i < n_max && s[i] != '\0'; i++) {
        unsigned char c = (unsigned char)s[i];
        size_t need = c >= 0x20 && c < 0x7f && c != '\\' ? 1 : 4;

        /* Room for this, and for "..." should more follow. */
        if (o + need + 3 + 1 > cap) {
            snprintf(out + o, cap - o, "...");
            return;
        }
        if (need == 1) {
            out[o++] = (char)c;
        } else {
            snprintf(out + o, cap - o, "\\x%02x", c);
            o += 4;
        }
    }
    out[o] = '\0';
}
