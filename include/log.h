/* log: structured logs, one JSON object per line on stderr (or a chosen
 * stream), with a level filter.
 *
 * Every line has "ts" (UTC, milliseconds), "level" and "event" (a short
 * snake_case name such as "listening" or "ws_closed"), then the fields the
 * caller passes. Customer text never goes into a log line unredacted: callers
 * log ids, sizes and codes, not message bodies. The logger is used from the
 * service thread; writes are one fwrite per line, so lines from other threads
 * do not interleave mid-line. */
#ifndef CD_LOG_H
#define CD_LOG_H

#include <stdio.h>

enum log_level {
    LOG_DEBUG = 0,
    LOG_INFO = 1,
    LOG_WARN = 2,
    LOG_ERROR = 3,
    LOG_OFF = 4,
};

/* Sets the minimum level written and the stream (NULL: stderr). */
void log_init(enum log_level level, FILE *out);

/* The current minimum level. */
enum log_level log_get_level(void);

/* Parses "debug", "info", "warn" (or "warning"), "error", "off". Returns the
 * level, or -1 for anything else. */
int log_level_parse(const char *name);

/* Returns 1 if a line at level would be written. */
int log_enabled(enum log_level level);

/* Ends the field list of log_event() (a typed null pointer, as variadic
 * functions need). */
#define LOG_END ((const char *)NULL)

/* Writes one line: event, then fields given as (key, value) pairs ending
 * with LOG_END. A key's suffix gives the value's type: "name:s" const char *
 * (NULL is written as null), "name:i" int, "name:l" long long, "name:u"
 * unsigned long long, "name:f" double, "name:b" int written as true/false.
 * Example: log_event(LOG_INFO, "listening", "port:i", 8080, "bind:s", "::", LOG_END). */
void log_event(enum log_level level, const char *event, ...);

#endif
