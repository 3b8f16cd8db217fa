/* Parsers for the value syntax of config/README.md ("Syntax"): pure functions over one
 * NUL-terminated value, no allocation. Each returns 0, or -EINVAL (bad form) / -ERANGE (number too
 * large); the caller words the error, since it knows the key's range. */
#ifndef ML_CONFIG_VALUE_H
#define ML_CONFIG_VALUE_H

#include "config/snapshot-t.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest text the value parsers are asked about: inih's line buffer bounds any value. */
#define ML_VALUE_MAX 1024

/* A decimal integer, digits only (no sign, no spaces). */
int ml_value_uint(const char *s, uint64_t *out);
/* "250ms", "2s", "5m", "1h" → milliseconds; "0" alone → 0. A bare number other than 0 is -EINVAL. */
int ml_value_duration(const char *s, uint64_t *out_ms);
/* "65536", "64KiB", "4MiB", "1GiB" → bytes. */
int ml_value_size(const char *s, uint64_t *out_bytes);
/* "5%", "12.5%", and without '%' when percent_optional → parts per million (0..1000000). */
int ml_value_percent(const char *s, bool percent_optional, uint32_t *out_ppm);
/* "on" / "off". */
int ml_value_bool(const char *s, bool *out);
/* "25ms..250ms" (from <= to, else -ERANGE). */
int ml_value_duration_range(const char *s, uint64_t *from_ms, uint64_t *to_ms);
/* "127.0.0.1:15001" or "[::1]:15001": an IP literal and a port 1..65535. a->text is not set. */
int ml_value_addr(const char *s, struct ml_cfg_addr *a);
/* true when binding both would collide: the same port and the same address, or a wildcard
 * (0.0.0.0 covers every IPv4 address; [::] every address, since Linux binds it dual-stack). */
bool ml_value_addr_overlaps(const struct ml_cfg_addr *a, const struct ml_cfg_addr *b);
/* true for 127.0.0.0/8 and ::1. */
bool ml_value_addr_is_loopback(const struct ml_cfg_addr *a);
/* "host.name:port" (RFC 1123 host name, or an IP literal) → host length and port. */
int ml_value_host_port(const char *s, size_t *host_len, uint16_t *port);
/* RFC 1123 host name of n bytes (labels of 1..63 of [A-Za-z0-9-], total 1..253). */
bool ml_value_is_hostname(const char *s, size_t n);
/* [A-Za-z0-9_.-]{1,63}: section names and node ids. */
bool ml_value_is_name(const char *s, size_t n);
/* An HTTP header name in RFC 9110 token characters (no pseudo-headers). */
bool ml_value_is_header_name(const char *s, size_t n);

/* Spell a duration / size the way the INI takes it back ("250ms", "5m", "64KiB"). */
void ml_value_format_duration(uint64_t ms, char *buf, size_t cap);
void ml_value_format_size(uint64_t bytes, char *buf, size_t cap);

#endif
