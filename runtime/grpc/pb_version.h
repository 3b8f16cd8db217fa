#ifndef ML_GRPC_PB_VERSION_H
#define ML_GRPC_PB_VERSION_H

/* "nanopb 0.4.9.1"; static storage. */
const char *ml_pb_library_version(void);

#endif
