/* libFuzzer target: a peer certificate's names against a node id (tls/peer_id.c,
 * ml_tls_cert_id_check), for `meshlet controller --ca`. The handshake has verified the chain
 * before this runs, but the names are still the peer's bytes. Whatever the input: no crash, no
 * leak, one of the documented codes, and a description that is NUL-terminated printable text.
 *
 * Input: a DER certificate. In memory, deterministic. Seeds: tests/fuzz/corpus/tls_peer_id/. */
#include "tls/peer_id.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *ids[] = {"edge-1", "urn:meshlet:gw-7"};
    char seen[160];

    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        int rv;

        memset(seen, 0x55, sizeof(seen));
        rv = ml_tls_cert_id_check(data, size, ids[i], seen, sizeof(seen));
        if (rv != 0 && rv != -EACCES && rv != -EPROTO) {
            abort(); /* invariant broken: an undocumented code */
        }
        if (memchr(seen, '\0', sizeof(seen)) == NULL && rv != 0) {
            abort(); /* invariant broken: the description is not terminated */
        }
        if (rv != 0) {
            for (const char *c = seen; *c != '\0'; c++) {
                if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f) {
                    abort(); /* invariant broken: a raw byte of the certificate in a log line */
                }
            }
        }
    }
    return 0;
}
