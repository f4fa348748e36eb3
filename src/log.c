/* log: one JSON object per line, with a level filter (see log.h). */
#include "log.h"

#include "cd.h"

#include <stdarg.h>
#include <string.h>

static enum log_level log_min = LOG_INFO;
static FILE *log_out;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void log_init(enum log_level level, FILE *out)
{
    log_min = level;
    log_out = out;
}

enum log_level log_get_level(void)
{
    return log_min;
}

int log_level_parse(const char *name)
{
    if (!name)
        return -1;
    for (int i = 0; i <= LOG_OFF; i++)
        if (!strcmp(name, level_names[i]))
            return i;
    if (!strcmp(name, "warning"))
        return LOG_WARN;
    return -1;
}

int log_enabled(enum log_level level)
{
    return level >= log_min && level < LOG_OFF;
}

static int append_head(struct cd_buf *b, enum log_level level)
{
    char ts[CD_ISO_TIME_MAX];
    cd_iso_time_ms(cd_wall_ms(), ts, sizeof ts);
    return cd_buf_printf(b, "{\"ts\":\"%s\",\"level\":\"%s\",\"event\":", ts, level_names[level]);
}

void log_event(enum log_level level, const char *event, ...)
{
    if (!log_enabled(level))
        return;
    char stack[128];
    struct cd_buf b = {0};
    int rc = append_head(&b, level);
    if (!rc)
        rc = cd_json_string(&b, event ? event : "", event ? strlen(event) : 0,
                            CD_JSON_REPLACE_INVALID);
    va_list ap;
    va_start(ap, event);
    const char *key;
    while (!rc && (key = va_arg(ap, const char *)) != NULL) {
        const char *colon = strrchr(key, ':');
        size_t n_key = colon ? (size_t)(colon - key) : strlen(key);
        char type = colon ? colon[1] : 's';
        rc = cd_buf_append(&b, ",", 1);
        if (!rc)
            rc = cd_json_string(&b, key, n_key, CD_JSON_REPLACE_INVALID);
        if (!rc)
            rc = cd_buf_append(&b, ":", 1);
        if (rc)
            break;
        switch (type) {
        case 'i':
            rc = cd_buf_printf(&b, "%d", va_arg(ap, int));
            break;
        case 'l':
            rc = cd_buf_printf(&b, "%lld", va_arg(ap, long long));
            break;
        case 'u':
            rc = cd_buf_printf(&b, "%llu", va_arg(ap, unsigned long long));
            break;
        case 'f': {
            double v = va_arg(ap, double);
            if (v != v || v > 1e300 || v < -1e300)
                rc = cd_buf_puts(&b, "null");
            else
                rc = cd_buf_printf(&b, "%.6g", v);
            break;
        }
        case 'b':
            rc = cd_buf_puts(&b, va_arg(ap, int) ? "true" : "false");
            break;
        default: {
            const char *v = va_arg(ap, const char *);
            rc = v ? cd_json_string(&b, v, strlen(v), CD_JSON_REPLACE_INVALID)
                   : cd_buf_puts(&b, "null");
            break;
        }
        }
    }
    va_end(ap);
    if (!rc)
        rc = cd_buf_append(&b, "}\n", 2);
    FILE *out = log_out ? log_out : stderr;
    if (!rc) {
        fwrite(b.data, 1, b.len, out);
    } else {
        int n = snprintf(stack, sizeof stack,
                         "{\"level\":\"error\",\"event\":\"log_out_of_memory\"}\n");
        fwrite(stack, 1, (size_t)n, out);
    }
    fflush(out);
    cd_buf_free(&b);
}
