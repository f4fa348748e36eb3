/* cd: what every caredesk module shares: the error codes (CD_E*, cd_strerror()), clocks,
 * growable buffers, intrusive lists, string copies, UTF-8 validation, the one string hash
 * (FNV-1a), the one file-suffix check and the one JSON text writer. Functions returning int
 * return 0 or a negative CD_E* code and leave their output unchanged on failure unless said
 * otherwise. */
#ifndef CD_H
#define CD_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* Functions return 0 on success or one of these negative codes. */
enum cd_error {
    CD_OK = 0,
    CD_ENOMEM = -1,    /* out of memory */
    CD_EINVAL = -2,    /* invalid argument or input */
    CD_EIO = -3,       /* file or database I/O failed */
    CD_ENOTFOUND = -4, /* no such article, conversation, user ... */
    CD_EEXIST = -5,    /* already exists */
    CD_EFULL = -6,     /* disk or database full */
    CD_EBUSY = -7,     /* resource busy, try again */
    CD_EPERM = -8,     /* not allowed for this role or token */
    CD_ETOOBIG = -9,   /* input over a configured limit */
    CD_EPARSE = -10,   /* malformed input (JSON, front matter, ...) */
    CD_ESTATE = -11,   /* not allowed in the current state */
};

/* Intrusive doubly linked lists (the agents' connections, a database's statements): head is
 * the first node (NULL: empty), prev and next name a node's own two links. CD_LIST_PUSH puts
 * node first; CD_LIST_UNLINK takes node out of the list wherever it stands. The arguments are
 * evaluated more than once. */
#define CD_LIST_PUSH(head, node, prev, next)                                                       \
    do {                                                                                           \
        (node)->prev = NULL;                                                                       \
        (node)->next = (head);                                                                     \
        if (head)                                                                                  \
            (head)->prev = (node);                                                                 \
        (head) = (node);                                                                           \
    } while (0)
#define CD_LIST_UNLINK(head, node, prev, next)                                                     \
    do {                                                                                           \
        if ((node)->prev)                                                                          \
            (node)->prev->next = (node)->next;                                                     \
        else                                                                                       \
            (head) = (node)->next;                                                                 \
        if ((node)->next)                                                                          \
            (node)->next->prev = (node)->prev;                                                     \
    } while (0)

/* CD_XSTR(MACRO): the value of MACRO as a string literal (a default number in a settings table). */
#define CD_STR(x)  #x
#define CD_XSTR(x) CD_STR(x)

/* Returns a static, human-readable description of an enum cd_error code. */
const char *cd_strerror(int rc);

/* Monotonic clock in microseconds. */
int64_t cd_now_us(void);

/* Wall clock, seconds since the epoch. */
int64_t cd_wall_s(void);

/* Wall clock, milliseconds since the epoch. */
int64_t cd_wall_ms(void);

/* The first index i in the ascending v[0..n) with v[i] >= x (n if none): a
 * lower bound by bisection. */
int cd_lower_bound(const double *v, int n, double x);

/* A growable byte buffer; always NUL-terminated once anything is appended. */
struct cd_buf {
    char *data;
    size_t len;
    size_t cap;
};

/* Appends n bytes; returns 0 or CD_ENOMEM (the buffer is unchanged then). */
int cd_buf_append(struct cd_buf *b, const char *s, size_t n);
int cd_buf_puts(struct cd_buf *b, const char *s);
int cd_buf_printf(struct cd_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cd_buf_vprintf(struct cd_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
void cd_buf_reset(struct cd_buf *b);
void cd_buf_free(struct cd_buf *b);

/* Writes ms (milliseconds since the epoch) as UTC in ISO 8601 with milliseconds,
 * "2026-12-06T08:27:26.123Z", into out (cap bytes, at least CD_ISO_TIME_MAX). Returns out. */
#define CD_ISO_TIME_MAX 32
char *cd_iso_time_ms(int64_t ms, char *out, size_t cap);

/* Appends the n bytes at s to b with & < > " ' escaped as HTML (and XML) entities. Returns 0
 * or CD_ENOMEM. */
int cd_html_escape(struct cd_buf *b, const char *s, size_t n);

/* Resizes the array whose pointer is at items (a T **, passed as void *) to n elements of
 * size bytes each. Returns 0, or CD_ENOMEM (the product overflows or realloc fails) with the
 * array unchanged. Grows the parallel arrays of a table one call each:
 * `if (cd_resize(&q->items, cap, sizeof *q->items)) return CD_ENOMEM;` */
int cd_resize(void *items, size_t n, size_t size);

/* Room for one more element in the array whose pointer is at items (a T **, passed as
 * void *) holding n elements of size bytes with room for *cap: when it is full, *cap doubles
 * (to first when it is 0) and the array is resized. Returns 0, or CD_ENOMEM with the array
 * and *cap unchanged:
 * `if (cd_grow(&q->agents, &q->cap_agents, q->n_agents, sizeof *q->agents, 16)) return ...;`
 * Parallel arrays sharing one capacity grow with cd_grow_each(). */
int cd_grow(void *items, int *cap, int n, size_t size, int first);

/* cd_grow() for the parallel arrays of a table, which share one capacity: after n and first
 * come pairs of an array's pointer's address (a T **) and its element size, ended by NULL.
 * Returns 0, or CD_ENOMEM with *cap unchanged (an array already resized only has more room):
 * `if (cd_grow_each(&q->cap, q->n, 32, &q->items, sizeof *q->items, &q->arrival,
 *                   sizeof *q->arrival, (void *)NULL)) return CD_ENOMEM;` */
int cd_grow_each(int *cap, int n, int first, ...) __attribute__((sentinel));

/* cd_resize() from n_old to n elements with the elements past n_old, when it grows, zeroed. */
int cd_resize_zeroed(void *items, size_t n_old, size_t n, size_t size);

/* Reads a whole file into a new NUL-terminated buffer the caller frees.
 * Returns NULL (errno set) on failure; *len_out gets the size if not NULL. */
char *cd_read_file(const char *path, size_t *len_out);

/* Duplicates at most n bytes of s into a new NUL-terminated string, or NULL. */
char *cd_strndup(const char *s, size_t n);

/* A copy of s that the caller frees: NULL when s is NULL (or memory runs out). */
char *cd_strdup(const char *s);
/* Copies src into dst (cap bytes, cap > 0), cut to fit and always terminated, like
 * snprintf(dst, cap, "%s", src) without the format parsing. Returns dst. */
char *cd_strlcpy(char *dst, size_t cap, const char *src);

/* What a jansson value is, for error messages that name the type a field got: "a string",
 * "an integer", "a number with a fraction", "true/false", "null", "an array" or "an object".
 * The returned string is static. */
struct json_t;
const char *cd_json_kind(const struct json_t *v);

/* Returns 1 when the n bytes at s are valid UTF-8 (no overlongs, no
 * surrogates), else 0. */
int cd_utf8_valid(const char *s, size_t n);

/* FNV-1a, the one string hash for in-memory tables and hashed features: continues hash h (start
 * from CD_FNV32_INIT or CD_FNV64_INIT) over the n bytes at s. Inline: it runs per token. The
 * values are part of nothing stored, but trained models and tables depend on them staying
 * the same within a process. */
#define CD_FNV32_INIT 2166136261u
#define CD_FNV64_INIT 0xcbf29ce484222325ULL
static inline uint32_t cd_fnv1a32(uint32_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}
static inline uint64_t cd_fnv1a64(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
    return h;
}

/* Checks a POSIX extended regular expression from outside (an intent's regex or collect
 * regex, a redact pattern) before regcomp() sees it, for what makes glibc's compiler take
 * gigabytes: more than CD_REGEX_SIZE atoms once every repetition is written out
 * ((a{100}){100} is 10,000; a repetition of a repetition multiplies), a bound over
 * CD_REGEX_DUP_MAX, or groups nested deeper than CD_REGEX_DEPTH; and for a back-reference
 * (\1, glibc's extension), which can make matching a customer's message take exponential
 * time. An unclosed bracket expression is refused; other syntax errors are left to regcomp().
 * Returns 0, or -1 with why (cap bytes) saying what to change. */
#define CD_REGEX_DUP_MAX 255
#define CD_REGEX_DEPTH   32
#define CD_REGEX_SIZE    4096
int cd_regex_check(const char *re, char *why, size_t cap);

/* The one reading of a whole number from text (a setting, a command's option, a query
 * argument): decimal, white space around it allowed, nothing else, from lo to hi. Returns 0
 * with *out set, or -1 (out unchanged). */
int cd_parse_int(const char *s, int lo, int hi, int *out);

/* The one rule for an email address a customer, an agent or an operator gives (chat 'hello'
 * and 'contact', the export and erasure routes and commands): an '@' with text before and after
 * it, at most CD_EMAIL_MAX bytes (the longest path SMTP carries). Returns 1 or 0 (NULL: 0). */
#define CD_EMAIL_MAX 254
int cd_is_email(const char *s);

/* Returns 1 when the string s ends with suffix (a file name's ".md", ".jsonl" ...), else 0. */
int cd_has_suffix(const char *s, const char *suffix);

/* qsort() comparison of two doubles, ascending. */
int cd_compare_doubles(const void *a, const void *b);

/* JSON text written straight into a buffer, byte for byte as jansson's json_dumps() with
 * JSON_COMPACT writes the same value (the reply frames and the log lines use them, so that the
 * hot paths build no json_t tree). */

/* Appends the n bytes at s as a JSON string: quotes, backslash, \b \f \n \r \t and \uXXXX for
 * the other control bytes. Invalid UTF-8 gives CD_EINVAL and appends nothing, as json_string()
 * refuses it, unless flags has CD_JSON_REPLACE_INVALID: then each bad byte is written as
 * \ufffd and DEL as \u007F (for log lines, which must never fail). Returns 0, CD_EINVAL or
 * CD_ENOMEM. */
#define CD_JSON_REPLACE_INVALID 1
int cd_json_string(struct cd_buf *b, const char *s, size_t n, int flags);
/* Appends a real as jansson does: %.17g, always with a '.' or an exponent, the exponent
 * without '+' or leading zeros. CD_EINVAL for NaN or infinity. */
int cd_json_real(struct cd_buf *b, double v);
/* Appends an integer in decimal. */
int cd_json_int(struct cd_buf *b, long long v);

#endif
