/* Common error codes and small helpers shared by every caredesk module. */
#ifndef CD_H
#define CD_H

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

/* Returns a static, human-readable description of an enum cd_error code. */
const char *cd_strerror(int rc);

/* Monotonic clock in microseconds. */
int64_t cd_now_us(void);

/* Wall clock, seconds since the epoch. */
int64_t cd_wall_s(void);

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
void cd_buf_reset(struct cd_buf *b);
void cd_buf_free(struct cd_buf *b);

/* Reads a whole file into a new NUL-terminated buffer the caller frees.
 * Returns NULL (errno set) on failure; *len_out gets the size if not NULL. */
char *cd_read_file(const char *path, size_t *len_out);

/* Duplicates at most n bytes of s into a new NUL-terminated string, or NULL. */
char *cd_strndup(const char *s, size_t n);
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

#endif
