#ifndef ML_GRPC_FRAMING_T_H
#define ML_GRPC_FRAMING_T_H

#include <stdint.h>

/* gRPC's length-prefixed messages (1-byte compressed flag, 4-byte big-endian length, message)
 * followed over a body that arrives in pieces of any size. It only counts: the bytes stay where
 * they are (the proxy relays them untouched). */
struct ml_grpc_framer {
    uint64_t n_in;       /* body bytes fed so far */
    uint64_t boundary;   /* n_in where the last whole message ended (0: none yet) */
    uint64_t n_messages; /* whole messages seen */
    uint32_t msg_left;   /* bytes left of the message being read; 0 while in a prefix */
    uint8_t prefix[5];   /* the prefix being read */
    uint8_t prefix_n;    /* bytes of it read */
};

#define ML_GRPC_PREFIX_BYTES 5

#endif
