/* redact: masks card numbers (Luhn-checked, with spaces or dashes) and
 * configured patterns (email addresses, national ID formats ...) in customer
 * and agent text before it is stored, logged or shown to an agent. */
#ifndef CD_REDACT_H
#define CD_REDACT_H

#include <stddef.h>

struct redactor;

/* Creates a redactor that masks card numbers plus each of n_patterns POSIX
 * extended regular expressions (matched case-insensitively). Returns NULL on
 * failure with, if err is not NULL, a malloc'd message naming the bad pattern. */
struct redactor *redact_new(const char *const *patterns, int n_patterns, char **err);
void redact_free(struct redactor *r);

/* Returns a malloc'd, NUL-terminated copy of the n bytes at text with every
 * match masked (a card keeps only its last four digits: "**** **** **** 4242";
 * a pattern match becomes "[redacted]"), or NULL when out of memory.
 * *n_masked (if not NULL) gets the number of masked spans. */
char *redact_text(const struct redactor *r, const char *text, size_t n, int *n_masked);

/* Returns a malloc'd copy of a customer's email field as it may be stored: an email address
 * (the whole value matches REDACT_EMAIL_PATTERN) keeps its address, with only card numbers
 * masked; any other value is masked like text by redact_text(). NULL when value is NULL or out
 * of memory. */
char *redact_email_field(const struct redactor *r, const char *value);

/* The suggested default pattern for e-mail addresses (POSIX extended), and the list of
 * suggested default patterns that a configuration without its own list can pass to
 * redact_new(). */
#define REDACT_EMAIL_PATTERN "[[:alnum:]._%+-]+@[[:alnum:].-]+\\.[[:alpha:]]{2,}"
extern const char *const redact_default_patterns[];
extern const int redact_n_default_patterns;

/* Returns 1 if the n digits at digits pass the Luhn check, else 0. */
int redact_luhn_ok(const char *digits, size_t n);

#endif
