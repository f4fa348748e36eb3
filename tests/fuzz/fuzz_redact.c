/* libFuzzer target for redact: masks arbitrary bytes with the card-only redactor and with
 * the default patterns plus a few more, and checks what card masking must preserve. */
#include "redact.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct redactor *cards;
    static struct redactor *patterns;
    if (!cards) {
        const char *extra[] = {REDACT_EMAIL_PATTERN, "[0-9]{3}-[0-9]{2}-[0-9]{4}", "x*",
                               "(ab|b)+c"};
        cards = redact_new(NULL, 0, NULL);
        patterns = redact_new(extra, 4, NULL);
        if (!cards || !patterns)
            abort();
    }
    char *s = malloc(size ? size : 1);
    if (!s)
        return 0;
    memcpy(s, data, size);

    int n_masked = -1;
    char *out = redact_text(cards, s, size, &n_masked);
    if (!out || n_masked < 0)
        abort();
    /* Card masking keeps the length and every byte that is not a digit. */
    if (out[size] != '\0')
        abort();
    for (size_t i = 0; i < size; i++) {
        int is_digit = s[i] >= '0' && s[i] <= '9';
        if ((!is_digit && out[i] != s[i]) || (is_digit && out[i] != s[i] && out[i] != '*'))
            abort();
    }
    free(out);

    out = redact_text(patterns, s, size, &n_masked);
    if (!out || n_masked < 0)
        abort();
    free(out);
    (void)redact_luhn_ok(s, size);
    free(s);
    return 0;
}
