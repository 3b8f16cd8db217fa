/* A section header longer than the parser keeps is reported with its start quoted, and that
 * start is cut at a UTF-8 boundary: error lines are UTF-8 whatever the input's length (found by
 * tests/fuzz/long.sh, config_fuzz: a 4-byte character across the cut left a lone lead byte). */
#include "config/errors.h"
#include "config/snapshot.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

/* Longer than any header the parser keeps (127 bytes), so every cut below lands in the text. */
#define HEADER_BYTES 200

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 when there is none. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    size_t len = s[0] < 0x80             ? 1
                 : (s[0] & 0xe0) == 0xc0 ? 2
                 : (s[0] & 0xf0) == 0xe0 ? 3
                 : (s[0] & 0xf8) == 0xf0 ? 4
                                         : 0;

    if (len == 0 || len > n) {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }
    }
    return len;
}

static void assert_utf8(const char *text)
{
    size_t n = strlen(text);

    for (size_t i = 0; i < n;) {
        size_t l = utf8_seq((const unsigned char *)text + i, n - i);
        if (l == 0) {
            fail_msg("not UTF-8 at byte %zu of: %s", i, text);
        }
        i += l;
    }
}

/* "[" + pad ASCII bytes + 4-byte characters up to HEADER_BYTES + "]": with pad 0..3 the cut
 * falls on each byte of a character in turn. */
static void test_a_too_long_header_is_quoted_as_utf8_whatever_byte_the_cut_falls_on(void **state)
{
    static const char emoji[] = "\xf0\x9f\x98\x80"; /* U+1F600 */
    char text[HEADER_BYTES + 16];

    (void)state;
    for (size_t pad = 0; pad < 4; pad++) {
        struct ml_config_errors errs;
        struct ml_snapshot *snap = NULL;
        size_t n = 0;

        text[n++] = '[';
        memset(text + n, 'Z', pad);
        n += pad;
        while (n + 4 <= HEADER_BYTES) {
            memcpy(text + n, emoji, 4);
            n += 4;
        }
        memcpy(text + n, "]\n", 3);
        n += 2;

        ml_config_errors_init(&errs);
        assert_int_equal(ml_config_load_text(text, n, NULL, &errs, &snap), -EINVAL);
        assert_null(snap);
        assert_true(errs.n >= 1);
        assert_non_null(strstr(errs.v[0].text, "expected a section header of at most"));
        for (size_t i = 0; i < errs.n; i++) {
            assert_utf8(errs.v[i].text);
        }
        ml_config_errors_deinit(&errs);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_too_long_header_is_quoted_as_utf8_whatever_byte_the_cut_falls_on),
    };
    return cmocka_run_group_tests_name("config/long_header_utf8", tests, NULL, NULL);
}
