/* core/glob.h: the glob matcher. */
#include "core/glob.h"

#include <ctype.h>
#include <stdint.h>

static bool same(char p, uint8_t c, enum ml_glob_case mode)
{
    if (mode == ML_GLOB_FOLD_CASE) {
        return tolower((unsigned char)p) == tolower(c);
    }
    return (uint8_t)p == c;
}

bool ml_glob_match(const char *pattern, struct ml_slice s, enum ml_glob_case mode)
{
    const char *star = NULL; /* the last '*' seen, to backtrack to */
    size_t i = 0, star_i = 0;

    while (i < s.n) {
        if (*pattern == '*') {
            star = pattern++;
            star_i = i;
        } else if (*pattern != '\0' && (*pattern == '?' || same(*pattern, s.p[i], mode))) {
            pattern++;
            i++;
        } else if (star != NULL) {
            pattern = star + 1;
            i = ++star_i;
        } else {
            return false;
        }
    }
    while (*pattern == '*') {
        pattern++;
    }
    return *pattern == '\0';
}
