/* redact: owns the masking of card numbers and configured patterns in chat text.
 *
 * DESIGN: every span to mask is found on the original text first (card numbers by a scan,
 * each pattern by regexec), then overlapping or touching spans are merged and the copy is
 * written once, so a pattern match that overlaps a card, or two patterns that overlap, never
 * leave a fragment unmasked and never mask twice. A card number is 13-19 ASCII digits in
 * groups separated by single spaces or by single dashes (one kind per number), groups of at
 * least 3 digits when there is more than one, starting with 2-6 (the issuer ranges of Visa,
 * Mastercard, Amex, Discover, JCB, UnionPay, Maestro), and passing the Luhn check. The group
 * rule keeps dates ("2024-01-15 2024-02-15") and most phone numbers out; the Luhn check keeps
 * 9 in 10 random order numbers out. A card keeps its separators and last four digits.
 *
 * Must never happen: a read outside the input, a card digit other than the last four left in
 * the output, or a pattern match left partly visible. A redactor is read-only after
 * redact_new(), so threads may share one. */
#include "redact.h"

#include "cd.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CARD_MIN_DIGITS 13
#define CARD_MAX_DIGITS 19
#define CARD_MIN_GROUP  3
#define REDACT_MARK     "[redacted]"

const char *const redact_default_patterns[] = {
    REDACT_EMAIL_PATTERN,
};
const int redact_n_default_patterns =
    (int)(sizeof redact_default_patterns / sizeof redact_default_patterns[0]);

struct redactor {
    regex_t *patterns;
    int n_patterns;
    regex_t email; /* REDACT_EMAIL_PATTERN anchored at both ends */
    int has_email;
};

/* A byte range [start, end) to mask; is_card spans keep their last four digits. */
struct span {
    size_t start;
    size_t end;
    int is_card;
};

struct span_list {
    struct span *items;
    size_t n;
    size_t cap;
};

static int span_add(struct span_list *l, size_t start, size_t end, int is_card)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        struct span *p = realloc(l->items, cap * sizeof *p);
        if (!p)
            return CD_ENOMEM;
        l->items = p;
        l->cap = cap;
    }
    l->items[l->n].start = start;
    l->items[l->n].end = end;
    l->items[l->n].is_card = is_card;
    l->n++;
    return 0;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

int redact_luhn_ok(const char *digits, size_t n)
{
    int sum = 0;
    int is_double = 0;

    if (!digits || n == 0)
        return 0;
    for (size_t i = n; i-- > 0;) {
        if (!is_digit(digits[i]))
            return 0;
        int d = digits[i] - '0';
        if (is_double) {
            d *= 2;
            if (d > 9)
                d -= 9;
        }
        sum += d;
        is_double = !is_double;
    }
    return sum % 10 == 0;
}

/* Looks for the longest card number starting at the group that begins at s[p]; returns the
 * end offset of that card, or 0 if none starts there. */
static size_t card_at(const char *s, size_t n, size_t p)
{
    char digits[CARD_MAX_DIGITS];
    size_t n_digits = 0;
    size_t n_groups = 0;
    size_t best_end = 0;
    char sep = 0;
    int is_short_group = 0;
    size_t i = p;

    if (s[p] < '2' || s[p] > '6')
        return 0;
    for (;;) {
        size_t group_len = 0;
        while (i < n && is_digit(s[i])) {
            if (n_digits == CARD_MAX_DIGITS)
                return best_end;
            digits[n_digits++] = s[i++];
            group_len++;
        }
        n_groups++;
        if (group_len < CARD_MIN_GROUP)
            is_short_group = 1;
        if (n_digits >= CARD_MIN_DIGITS && !(n_groups > 1 && is_short_group) &&
            redact_luhn_ok(digits, n_digits))
            best_end = i;
        if (n_groups > 1 && is_short_group)
            return best_end;
        /* Another group follows after exactly one separator of the same kind. */
        if (i + 1 >= n || (s[i] != ' ' && s[i] != '-') || !is_digit(s[i + 1]))
            return best_end;
        if (sep && s[i] != sep)
            return best_end;
        sep = s[i];
        i++;
    }
}

static int find_cards(const char *s, size_t n, struct span_list *spans)
{
    size_t i = 0;

    while (i < n) {
        if (!is_digit(s[i]) || (i > 0 && is_digit(s[i - 1]))) {
            i++;
            continue;
        }
        size_t end = card_at(s, n, i);
        if (end) {
            if (span_add(spans, i, end, 1))
                return CD_ENOMEM;
            i = end;
        } else {
            while (i < n && is_digit(s[i]))
                i++;
        }
    }
    return 0;
}

/* Adds every non-empty match of re in the NUL-terminated copy (n bytes, which may contain
 * NUL bytes: each NUL-free segment is searched separately). */
static int find_pattern(const regex_t *re, const char *copy, size_t n, struct span_list *spans)
{
    size_t seg = 0;

    while (seg <= n) {
        size_t seg_len = strlen(copy + seg);
        size_t off = 0;
        while (off <= seg_len) {
            regmatch_t m;
            if (regexec(re, copy + seg + off, 1, &m, off ? REG_NOTBOL : 0) != 0)
                break;
            if (m.rm_so < 0 || m.rm_eo <= m.rm_so) {
                off += (size_t)(m.rm_so < 0 ? 0 : m.rm_so) + 1; /* empty match: step on */
                continue;
            }
            if (span_add(spans, seg + off + (size_t)m.rm_so, seg + off + (size_t)m.rm_eo, 0))
                return CD_ENOMEM;
            off += (size_t)m.rm_eo;
        }
        seg += seg_len + 1;
    }
    return 0;
}

static int span_cmp(const void *a, const void *b)
{
    const struct span *x = a;
    const struct span *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return 0;
}

/* Appends the card span s[start, end) with every digit but the last four as '*'. */
static int put_card(struct cd_buf *out, const char *s, size_t start, size_t end)
{
    size_t n_digits = 0;
    for (size_t i = start; i < end; i++)
        n_digits += is_digit(s[i]);
    for (size_t i = start; i < end; i++) {
        char c = s[i];
        if (is_digit(c)) {
            if (n_digits > 4)
                c = '*';
            n_digits--;
        }
        if (cd_buf_append(out, &c, 1))
            return CD_ENOMEM;
    }
    return 0;
}

struct redactor *redact_new(const char *const *patterns, int n_patterns, char **err)
{
    struct redactor *r = calloc(1, sizeof *r);
    int rc = CD_ENOMEM;

    if (err)
        *err = NULL;
    if (!r)
        goto fail;
    if (n_patterns < 0 || (n_patterns > 0 && !patterns)) {
        rc = CD_EINVAL;
        goto fail;
    }
    if (n_patterns > 0) {
        r->patterns = calloc((size_t)n_patterns, sizeof *r->patterns);
        if (!r->patterns)
            goto fail;
    }
    for (int i = 0; i < n_patterns; i++) {
        const char *p = patterns[i] ? patterns[i] : "";
        char why[128];
        int is_unsafe = *p && cd_regex_check(p, why, sizeof why);
        int rerr =
            *p && !is_unsafe ? regcomp(&r->patterns[i], p, REG_EXTENDED | REG_ICASE) : REG_BADPAT;
        if (rerr) {
            if (!*p)
                snprintf(why, sizeof why, "empty pattern");
            else if (!is_unsafe)
                regerror(rerr, NULL, why, sizeof why);
            if (err) {
                struct cd_buf msg = {0};
                if (cd_buf_printf(&msg, "redact pattern %d \"%s\": %s", i + 1, p, why) == 0)
                    *err = msg.data;
            }
            rc = CD_EINVAL;
            goto fail;
        }
        r->n_patterns = i + 1;
    }
    if (regcomp(&r->email, "^(" REDACT_EMAIL_PATTERN ")$", REG_EXTENDED | REG_ICASE | REG_NOSUB))
        goto fail;
    r->has_email = 1;
    return r;

fail:
    if (err && !*err && rc == CD_ENOMEM)
        *err = cd_strndup("redact: out of memory", 21);
    if (err && !*err && rc == CD_EINVAL)
        *err = cd_strndup("redact: invalid pattern list", 28);
    redact_free(r);
    return NULL;
}

void redact_free(struct redactor *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->n_patterns; i++)
        regfree(&r->patterns[i]);
    free(r->patterns);
    if (r->has_email)
        regfree(&r->email);
    free(r);
}

char *redact_text(const struct redactor *r, const char *text, size_t n, int *n_masked)
{
    struct span_list spans = {0};
    struct cd_buf out = {0};
    char *copy = NULL;
    char *result = NULL;
    int count = 0;

    if (n_masked)
        *n_masked = 0;
    if (!text)
        n = 0;
    if (find_cards(text, n, &spans))
        goto done;
    if (r && r->n_patterns > 0) {
        copy = cd_strndup(n ? text : "", n);
        if (!copy)
            goto done;
        for (int i = 0; i < r->n_patterns; i++) {
            if (find_pattern(&r->patterns[i], copy, n, &spans))
                goto done;
        }
    }
    if (spans.n > 1)
        qsort(spans.items, spans.n, sizeof *spans.items, span_cmp);

    size_t pos = 0;
    size_t k = 0;
    while (k < spans.n) {
        /* Merge every span that overlaps the current one. */
        size_t start = spans.items[k].start;
        size_t end = spans.items[k].end;
        int is_card = spans.items[k].is_card;
        for (k++; k < spans.n && spans.items[k].start < end; k++) {
            if (spans.items[k].end > end)
                end = spans.items[k].end;
            is_card = is_card && spans.items[k].is_card;
        }
        if (cd_buf_append(&out, text + pos, start - pos))
            goto done;
        if (is_card ? put_card(&out, text, start, end) : cd_buf_puts(&out, REDACT_MARK))
            goto done;
        pos = end;
        count++;
    }
    if (cd_buf_append(&out, text ? text + pos : "", n - pos))
        goto done;
    result = out.data;
    out.data = NULL;
    if (n_masked)
        *n_masked = count;

done:
    cd_buf_free(&out);
    free(copy);
    free(spans.items);
    return result;
}

char *redact_email_field(const struct redactor *r, const char *value)
{
    if (!value)
        return NULL;
    size_t n = strlen(value);
    if (!r || !r->has_email || regexec(&r->email, value, 0, NULL, 0) != 0)
        return redact_text(r, value, n, NULL);
    struct redactor cards_only = {NULL, 0, {0}, 0};
    return redact_text(&cards_only, value, n, NULL);
}
