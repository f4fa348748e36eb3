/* Error strings, clocks, growable buffers and file helpers shared by every module. */
#include "cd.h"

#include <jansson.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *cd_strerror(int rc)
{
    switch (rc) {
    case CD_OK:
        return "success";
    case CD_ENOMEM:
        return "out of memory";
    case CD_EINVAL:
        return "invalid argument";
    case CD_EIO:
        return "I/O error";
    case CD_ENOTFOUND:
        return "not found";
    case CD_EEXIST:
        return "already exists";
    case CD_EFULL:
        return "storage full";
    case CD_EBUSY:
        return "busy";
    case CD_EPERM:
        return "permission denied";
    case CD_ETOOBIG:
        return "too large";
    case CD_EPARSE:
        return "malformed input";
    case CD_ESTATE:
        return "not allowed in this state";
    }
    return "unknown error";
}

int64_t cd_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t cd_wall_s(void)
{
    return (int64_t)time(NULL);
}

int64_t cd_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cd_lower_bound(const double *v, int n, double x)
{
    int lo = 0, hi = n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (v[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int cd_html_escape(struct cd_buf *b, const char *s, size_t n)
{
    int rc = 0;
    size_t run = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        const char *e = NULL;
        switch (s[i]) {
        case '&':
            e = "&amp;";
            break;
        case '<':
            e = "&lt;";
            break;
        case '>':
            e = "&gt;";
            break;
        case '"':
            e = "&quot;";
            break;
        case '\'':
            e = "&#39;";
            break;
        default:
            break;
        }
        if (e) {
            rc = cd_buf_append(b, s + run, i - run);
            if (!rc)
                rc = cd_buf_puts(b, e);
            run = i + 1;
        }
    }
    if (!rc)
        rc = cd_buf_append(b, s + run, n - run);
    return rc;
}

char *cd_iso_time_ms(int64_t ms, char *out, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, cap - n, ".%03dZ", (int)(ms % 1000));
    return out;
}

int cd_resize(void *items, size_t n, size_t size)
{
    void *old, *grown;
    if (size && n > SIZE_MAX / size)
        return CD_ENOMEM;
    memcpy(&old, items, sizeof old); /* items is a T **: its pointer read without aliasing */
    grown = realloc(old, n * size);
    if (!grown && n && size)
        return CD_ENOMEM;
    memcpy(items, &grown, sizeof grown); /* the caller's pointer owns it now */
    /* cppcheck-suppress memleak */
    return 0;
}

int cd_grow(void *items, int *cap, int n, size_t size, int first)
{
    return cd_grow_each(cap, n, first, items, size, (void *)NULL);
}

int cd_grow_each(int *cap, int n, int first, ...)
{
    if (n < *cap)
        return 0;
    if (*cap > INT_MAX / 2)
        return CD_ENOMEM;
    int grown = *cap ? *cap * 2 : first;
    va_list ap;
    va_start(ap, first);
    int rc = 0;
    for (void *items; !rc && (items = va_arg(ap, void *));)
        rc = cd_resize(items, (size_t)grown, va_arg(ap, size_t));
    va_end(ap);
    if (!rc)
        *cap = grown;
    return rc;
}

int cd_resize_zeroed(void *items, size_t n_old, size_t n, size_t size)
{
    int rc = cd_resize(items, n, size);
    if (!rc && n > n_old) {
        char *p;
        memcpy(&p, items, sizeof p);
        memset(p + n_old * size, 0, (n - n_old) * size);
    }
    return rc;
}

static int buf_reserve(struct cd_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return CD_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int cd_buf_append(struct cd_buf *b, const char *s, size_t n)
{
    if (buf_reserve(b, n))
        return CD_ENOMEM;
    if (n)
        memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int cd_buf_puts(struct cd_buf *b, const char *s)
{
    return cd_buf_append(b, s, strlen(s));
}

int cd_buf_vprintf(struct cd_buf *b, const char *fmt, va_list ap)
{
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    if (n < 0 || buf_reserve(b, (size_t)n)) {
        va_end(again);
        return n < 0 ? CD_EINVAL : CD_ENOMEM;
    }
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, again);
    va_end(again);
    b->len += (size_t)n;
    return 0;
}

int cd_buf_printf(struct cd_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = cd_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void cd_buf_reset(struct cd_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void cd_buf_free(struct cd_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

char *cd_read_file(const char *path, size_t *len_out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct cd_buf b = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (cd_buf_append(&b, chunk, n)) {
            fclose(f);
            cd_buf_free(&b);
            errno = ENOMEM;
            return NULL;
        }
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        cd_buf_free(&b);
        errno = EIO;
        return NULL;
    }
    if (!b.data && cd_buf_append(&b, "", 0)) {
        errno = ENOMEM;
        return NULL;
    }
    if (len_out)
        *len_out = b.len;
    return b.data;
}

char *cd_strndup(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (!p)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *cd_strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

int cd_utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        unsigned cp;
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (i + len > n)
            return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += len;
    }
    return 1;
}

char *cd_strlcpy(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
    return dst;
}

int cd_compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The end of the bracket expression that starts at p ('['), or NULL when it is not closed. A
 * collating symbol, equivalence class or character class inside ([.x.] [=x=] [:x:]) ends at
 * the first ".]", "=]" or ":]" after its opening. */
static const char *bracket_end(const char *p)
{
    p++;
    if (*p == '^')
        p++;
    if (*p == ']') /* a ']' first is one of the set */
        p++;
    for (; *p && *p != ']'; p++) {
        if (*p == '[' && (p[1] == ':' || p[1] == '.' || p[1] == '=')) {
            const char *close = p + 2;
            while (*close && !(close[0] == p[1] && close[1] == ']'))
                close++;
            if (!*close)
                return NULL;
            p = close + 1;
        }
    }
    return *p ? p : NULL;
}

/* The copies of what precedes it that the interval at p ('{') writes out, its end in *end:
 * {n}, {n,m}, {n,} (n copies and a star), {,m} (as {0,m}); -1 when p starts no interval
 * (regcomp() then takes '{' as a character or refuses it). */
static long interval_copies(const char *p, const char **end)
{
    const char *q = p + 1;
    char *e;
    long lo = 0, hi;
    if (*q >= '0' && *q <= '9') {
        lo = strtol(q, &e, 10);
        q = e;
    } else if (*q != ',') {
        return -1;
    }
    hi = lo;
    if (*q == ',') {
        q++;
        if (*q >= '0' && *q <= '9') {
            hi = strtol(q, &e, 10);
            q = e;
        } else {
            hi = lo + 1;
        }
    }
    if (*q != '}')
        return -1;
    *end = q;
    return hi > lo ? hi : lo;
}

int cd_regex_check(const char *re, char *why, size_t cap)
{
    double size[CD_REGEX_DEPTH + 1] = {0}; /* atoms written out, per open group */
    double last = 0;                       /* the size of what a repetition here repeats */
    int depth = 0;
    for (const char *p = re; *p; p++) {
        double n = 1;
        switch (*p) {
        case '\\':
            if (p[1] >= '1' && p[1] <= '9') {
                snprintf(why, cap,
                         "a back-reference (\\%c): matching one can take exponential time", p[1]);
                return -1;
            }
            if (p[1])
                p++;
            break;
        case '[':
            if (!(p = bracket_end(p))) {
                snprintf(why, cap, "a bracket expression ('[') that is not closed");
                return -1;
            }
            break;
        case '(':
            if (depth == CD_REGEX_DEPTH) {
                snprintf(why, cap, "groups nested more than %d deep", CD_REGEX_DEPTH);
                return -1;
            }
            size[++depth] = 0;
            last = 0;
            continue;
        case ')':
            if (depth)
                n = size[depth--];
            break;
        case '|':
            last = 0;
            continue;
        case '*':
        case '+':
        case '?':
        case '{': {
            /* a* and a? are written out as two nodes, a+ as aa*; a repetition of a
             * repetition multiplies (a++ is four). */
            long times = 2;
            const char *end = p;
            if (*p == '{' && (times = interval_copies(p, &end)) < 0)
                break; /* a '{' that starts no interval */
            if (times > CD_REGEX_DUP_MAX) {
                snprintf(why, cap, "a repetition of more than %d", CD_REGEX_DUP_MAX);
                return -1;
            }
            size[depth] += last * (double)(times > 1 ? times - 1 : 0);
            last *= (double)times;
            p = end;
            if (size[depth] > CD_REGEX_SIZE)
                goto too_large;
            continue;
        }
        default:
            break;
        }
        size[depth] += n;
        last = n;
        if (size[depth] > CD_REGEX_SIZE)
            goto too_large;
    }
    return 0;
too_large:
    snprintf(why, cap, "more than %d characters and groups once its repetitions are written out",
             CD_REGEX_SIZE);
    return -1;
}

int cd_parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || end == s || errno)
        return -1;
    while (isspace((unsigned char)*end))
        end++;
    if (*end || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

int cd_is_email(const char *s)
{
    const char *at = s ? strchr(s, '@') : NULL;
    return at && at > s && at[1] && strlen(s) <= CD_EMAIL_MAX;
}

int cd_has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* ---- JSON text ---- */

int cd_json_string(struct cd_buf *b, const char *s, size_t n, int flags)
{
    int lenient = flags & CD_JSON_REPLACE_INVALID;
    if (!lenient && !cd_utf8_valid(s, n))
        return CD_EINVAL;
    int rc = cd_buf_append(b, "\"", 1);
    size_t run = 0; /* start of the run of bytes copied as they are */
    for (size_t i = 0; i < n && !rc;) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch >= 0x20 && ch != '"' && ch != '\\' && ch < 0x7f) || (ch >= 0x80 && !lenient) ||
            (ch == 0x7f && !lenient)) {
            i++;
            continue;
        }
        size_t len = 1;
        char esc[8];
        if (ch >= 0x80) {
            len = ch >= 0xF0 ? 4 : ch >= 0xE0 ? 3 : 2;
            if (i + len <= n && cd_utf8_valid(s + i, len)) {
                i += len;
                continue;
            }
            len = 1;
            memcpy(esc, "\\ufffd", 7);
        } else if (ch == '"' || ch == '\\') {
            esc[0] = '\\';
            esc[1] = (char)ch;
            esc[2] = '\0';
        } else if (ch == '\b' || ch == '\f' || ch == '\n' || ch == '\r' || ch == '\t') {
            esc[0] = '\\';
            esc[1] = ch == '\b'   ? 'b'
                     : ch == '\f' ? 'f'
                     : ch == '\n' ? 'n'
                     : ch == '\r' ? 'r'
                                  : 't';
            esc[2] = '\0';
        } else {
            static const char hex[] = "0123456789ABCDEF";
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[ch >> 4];
            esc[5] = hex[ch & 15];
            esc[6] = '\0';
        }
        rc = cd_buf_append(b, s + run, i - run);
        if (!rc)
            rc = cd_buf_puts(b, esc);
        i += len;
        run = i;
    }
    if (!rc && run < n)
        rc = cd_buf_append(b, s + run, n - run);
    return rc ? rc : cd_buf_append(b, "\"", 1);
}

int cd_json_real(struct cd_buf *b, double v)
{
    if (!isfinite(v))
        return CD_EINVAL;
    char num[48];
    int n = snprintf(num, sizeof num, "%.17g", v);
    if (n < 0 || (size_t)n >= sizeof num - 3)
        return CD_EINVAL;
    if (!strchr(num, '.') && !strchr(num, 'e')) {
        memcpy(num + n, ".0", 3);
        n += 2;
    }
    char *e = strchr(num, 'e');
    if (e) {
        char *start = e + 1, *end = e + 2;
        if (*start == '-')
            start++;
        while (*end == '0')
            end++;
        if (end != start) {
            memmove(start, end, (size_t)(num + n - end) + 1);
            n -= (int)(end - start);
        }
    }
    return cd_buf_append(b, num, (size_t)n);
}

int cd_json_int(struct cd_buf *b, long long v)
{
    char num[24];
    char *p = num + sizeof num;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    return cd_buf_append(b, p, (size_t)(num + sizeof num - p));
}

const char *cd_json_kind(const struct json_t *v)
{
    switch (v ? json_typeof(v) : JSON_NULL) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number with a fraction";
    case JSON_TRUE:
    case JSON_FALSE:
        return "true/false";
    default:
        return "null";
    }
}
