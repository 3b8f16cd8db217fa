/* admin/-private: what the endpoint says of the process and the node beside the proxy's
 * counters: /server_info, and the build, config and process_* Prometheus metrics. */
#ifndef ML_ADMIN_INFO_H
#define ML_ADMIN_INFO_H

#include "admin/admin.h"

#include <stddef.h>
#include <stdint.h>

/* The process as the kernel counts it (/proc/self); a value it could not read is 0. */
struct ml_admin_process {
    uint64_t cpu_us;        /* user + system CPU time */
    uint64_t rss_bytes;     /* resident memory */
    uint64_t open_fds;      /* fds open now (the one reading them not counted) */
    uint64_t max_fds;       /* RLIMIT_NOFILE's soft limit; 0: unlimited */
    uint64_t start_unix_ms; /* when the process started, wall clock */
};
void ml_admin_process_read(struct ml_admin_process *p);

/* /server_info's body (JSON, one object, a newline after): the length, or -ENOBUFS when
 * out[0..cap) is too small. */
long ml_admin_render_server_info(const struct ml_admin_node_info *ni, char *out, size_t cap);
/* meshlet_build_info, meshlet_config_info and the process_* families: the same. */
long ml_admin_render_info_metrics(const struct ml_admin_node_info *ni, char *out, size_t cap);

#endif
