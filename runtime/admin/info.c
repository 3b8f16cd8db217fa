/* /server_info and the info and process metrics (admin/info.h). The process figures are read
 * from /proc/self when asked: nothing is kept or sampled in between. */
#include "admin/info.h"

#include "core/alloc.h"
#include "core/build_info.h"
#include "core/out.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* /proc/self/stat is one line: pid, (comm, which may hold spaces and parens), then fields. */
#define INFO_STAT_LINE_BYTES 1024

/* Seconds since the epoch when the system booted (/proc/stat btime); 0 when unknown. */
static uint64_t boot_time_s(void)
{
    char line[256];
    unsigned long long bt = 0;
    FILE *f = fopen("/proc/stat", "re");

    if (f == NULL) {
        return 0;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "btime %llu", &bt) == 1) {
            break;
        }
    }
    fclose(f);
    return bt;
}

static uint64_t count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    uint64_t n = 0;

    if (d == NULL) {
        return 0;
    }
    while ((e = readdir(d)) != NULL) {
        n += e->d_name[0] != '.';
    }
    closedir(d);
    return n > 0 ? n - 1 : 0; /* the directory's own fd */
}

void ml_admin_process_read(struct ml_admin_process *p)
{
    char line[INFO_STAT_LINE_BYTES];
    unsigned long long utime, stime, start_ticks;
    long rss_pages, tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    const char *after;
    struct rlimit lim;
    FILE *f;

    memset(p, 0, sizeof(*p));
    p->open_fds = count_fds();
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY) {
        p->max_fds = (uint64_t)lim.rlim_cur;
    }
    if ((f = fopen("/proc/self/stat", "re")) == NULL) {
        return;
    }
    if (fgets(line, sizeof(line), f) == NULL) {
        line[0] = '\0';
    }
    fclose(f);
    /* fields 14, 15 (utime, stime), 22 (starttime), 24 (rss) after the ") " of comm (field 2) */
    if ((after = strrchr(line, ')')) == NULL || tick <= 0 ||
        sscanf(after + 2,
               "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d "
               "%llu %*u %ld",
               &utime, &stime, &start_ticks, &rss_pages) != 4) {
        return;
    }
    p->cpu_us = (utime + stime) * 1000000ull / (unsigned long long)tick;
    p->rss_bytes = (uint64_t)rss_pages * (uint64_t)(page > 0 ? page : 4096);
    p->start_unix_ms = boot_time_s() * 1000 + start_ticks * 1000ull / (unsigned long long)tick;
}

/* ---- output ---------------------------------------------------------------------------------- */

static void iso_time(char *buf, size_t cap, uint64_t unix_ms)
{
    time_t t = (time_t)(unix_ms / 1000);
    struct tm tm;
    size_t k;

    gmtime_r(&t, &tm);
    k = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + k, cap - k, ".%03uZ", (unsigned)(unix_ms % 1000));
}

static const char *apply_result(enum ml_admin_apply_result r)
{
    return r == ML_ADMIN_APPLY_OK ? "applied" : r == ML_ADMIN_APPLY_REFUSED ? "refused" : "none";
}

long ml_admin_render_server_info(const struct ml_admin_node_info *ni, char *out, size_t cap)
{
    struct ml_out o = {.p = out, .cap = cap};
    const char *const *f = ml_build_features();
    struct ml_admin_process pr;
    char ts[40];

    if (cap == 0) {
        return -ENOBUFS;
    }
    ml_admin_process_read(&pr);
    ml_out_printf(&o, "{\"id\":");
    ml_out_json_str(&o, ni->id);
    ml_out_printf(&o, ",\"version\":");
    ml_out_json_str(&o, ml_build_version());
    ml_out_printf(&o, ",\"board\":");
    ml_out_json_str(&o, ml_build_board());
    ml_out_printf(&o, ",\"features\":[");
    for (int i = 0; f[i] != NULL; i++) {
        ml_out_printf(&o, "%s", i > 0 ? "," : "");
        ml_out_json_str(&o, f[i]);
    }
    iso_time(ts, sizeof(ts), pr.start_unix_ms);
    ml_out_printf(&o, "],\"start_time\":\"%s\",\"start_time_unix_ms\":%llu,\"uptime_ms\":%llu", ts,
                  (unsigned long long)pr.start_unix_ms, (unsigned long long)ni->uptime_ms);
    ml_out_printf(&o, ",\"workers\":%u", ni->workers > 0 ? ni->workers : 1u);
    ml_out_printf(&o, ",\"config\":{\"version\":");
    ml_out_json_str(&o, ni->config_version);
    ml_out_printf(&o, ",\"source\":");
    ml_out_json_str(&o, ni->config_source);
    ml_out_printf(&o, "},\"last_apply\":{\"result\":\"%s\"", apply_result(ni->last_apply));
    if (ni->last_apply != ML_ADMIN_APPLY_NONE) {
        iso_time(ts, sizeof(ts), ni->last_apply_unix_ms);
        ml_out_printf(&o, ",\"source\":");
        ml_out_json_str(&o, ni->last_apply_source);
        ml_out_printf(&o, ",\"version\":");
        ml_out_json_str(&o, ni->last_apply_version);
        ml_out_printf(&o, ",\"time\":\"%s\",\"error\":", ts);
        ml_out_json_str(&o, ni->last_apply_error);
    }
    ml_out_printf(&o, "}}\n");
    return ml_out_finish(&o);
}

long ml_admin_render_info_metrics(const struct ml_admin_node_info *ni, char *out, size_t cap)
{
    struct ml_out o = {.p = out, .cap = cap};
    const char *const *f = ml_build_features();
    struct ml_admin_process pr;

    if (cap == 0) {
        return -ENOBUFS;
    }
    ml_admin_process_read(&pr);
    ml_out_printf(&o,
                  "# HELP meshlet_build_info What this binary is: version, board, features (always "
                  "1).\n# TYPE meshlet_build_info gauge\nmeshlet_build_info{version=\"");
    ml_out_prom_label(&o, ml_build_version());
    ml_out_printf(&o, "\",board=\"");
    ml_out_prom_label(&o, ml_build_board());
    ml_out_printf(&o, "\",features=\"");
    for (int i = 0; f[i] != NULL; i++) {
        ml_out_printf(&o, "%s", i > 0 ? "," : "");
        ml_out_prom_label(&o, f[i]);
    }
    ml_out_printf(&o, "\"} 1\n");
    ml_out_printf(
        &o, "# HELP meshlet_config_info The running configuration's version and where it came "
            "from (always 1).\n# TYPE meshlet_config_info gauge\nmeshlet_config_info{version=\"");
    ml_out_prom_label(&o, ni->config_version);
    ml_out_printf(&o, "\",source=\"");
    ml_out_prom_label(&o, ni->config_source);
    ml_out_printf(&o, "\"} 1\n");
    ml_out_printf(
        &o,
        "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
        "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %llu.%06llu\n"
        "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
        "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %llu\n"
        "# HELP process_open_fds Number of open file descriptors.\n"
        "# TYPE process_open_fds gauge\nprocess_open_fds %llu\n"
        "# HELP process_max_fds Maximum number of open file descriptors.\n"
        "# TYPE process_max_fds gauge\nprocess_max_fds %llu\n"
        "# HELP process_start_time_seconds Start time of the process since unix epoch in "
        "seconds.\n"
        "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %llu.%03llu\n",
        (unsigned long long)(pr.cpu_us / 1000000), (unsigned long long)(pr.cpu_us % 1000000),
        (unsigned long long)pr.rss_bytes, (unsigned long long)pr.open_fds,
        (unsigned long long)pr.max_fds, (unsigned long long)(pr.start_unix_ms / 1000),
        (unsigned long long)(pr.start_unix_ms % 1000));
    ml_out_printf(&o,
                  "# HELP meshlet_heap_allocations_total Heap allocations made since the start "
                  "(a warm call path makes none).\n# TYPE meshlet_heap_allocations_total "
                  "counter\nmeshlet_heap_allocations_total %lu\n",
                  ml_alloc_count());
    return ml_out_finish(&o);
}
