/* web_static: static files with build-time gzip copies, ETags and revalidation (see
 * web_static.h).
 *
 * DESIGN: the compressed copies are made once, by `make` (gzip -9 -n beside each text file of
 * web/), so the event loop never compresses. A copy is used only while it is at least as new
 * as its file, so an edited file is never served with stale compressed bytes. The ETag is
 * derived from the served bytes' size and modification time, and differs between the plain
 * and the compressed copy, as RFC 9110 asks of a strong validator. */
#include "web_static.h"

#include <libwebsockets.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define WEB_CACHE_CONTROL "no-cache"
#define WEB_MAX_HEADERS   2048

void web_static_etag(char *out, unsigned long long size, long long mtime_ns, const char *encoding)
{
    snprintf(out, 48, "\"%llx-%llx%s%s\"", size, (unsigned long long)mtime_ns, *encoding ? "-" : "",
             encoding);
}

/* The opaque part of an entity tag (between its quotes, W/ dropped): start and length. */
static const char *tag_body(const char *tag, size_t *n)
{
    if (!strncmp(tag, "W/", 2))
        tag += 2;
    *n = 0;
    if (*tag != '"')
        return NULL;
    const char *end = strchr(tag + 1, '"');
    if (!end)
        return NULL;
    *n = (size_t)(end - tag - 1);
    return tag + 1;
}

int web_static_none_match(const char *if_none_match, const char *etag)
{
    size_t n_want;
    const char *want = tag_body(etag, &n_want);
    if (!if_none_match || !want)
        return 0;
    for (const char *p = if_none_match; *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '*')
            return 1;
        size_t n;
        const char *got = tag_body(p, &n);
        if (!got)
            return 0;
        if (n == n_want && !memcmp(got, want, n))
            return 1;
        p = got + n + 1;
    }
    return 0;
}

int web_static_accepts_gzip(const char *accept_encoding)
{
    for (const char *p = accept_encoding; p && (p = strcasestr(p, "gzip")) != NULL; p += 4) {
        if (p > accept_encoding && p[-1] != ' ' && p[-1] != ',' && p[-1] != '\t')
            continue; /* x-gzip and the like */
        const char *q = p + 4;
        while (*q == ' ')
            q++;
        if (*q == ',' || *q == '\0')
            return 1;
        if (*q != ';')
            continue;
        q++;
        while (*q == ' ')
            q++;
        if (strncasecmp(q, "q=", 2))
            return 1;
        q += 2;
        /* q=0, q=0.0, q=0.000: refused; any other weight accepts it */
        if (*q == '0') {
            q++;
            if (*q == '.')
                q++;
            while (*q == '0')
                q++;
            if (*q == '\0' || *q == ',' || *q == ' ' || *q == ';')
                return 0;
        }
        return 1;
    }
    return 0;
}

static long long mtime_ns(const struct stat *st)
{
    return (long long)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
}

static int header(struct lws *wsi, const char *name, const char *value, unsigned char **p,
                  unsigned char *end)
{
    return lws_add_http_header_by_name(wsi, (const unsigned char *)name,
                                       (const unsigned char *)value, (int)strlen(value), p, end);
}

/* 304 Not Modified: the validators and caching headers, no body. */
static int not_modified(struct lws *wsi, const char *etag, int has_variants)
{
    unsigned char buf[LWS_PRE + 512];
    unsigned char *start = &buf[LWS_PRE], *p = start, *end = &buf[sizeof buf - 1];
    if (lws_add_http_header_status(wsi, HTTP_STATUS_NOT_MODIFIED, &p, end) ||
        header(wsi, "etag:", etag, &p, end) ||
        header(wsi, "cache-control:", WEB_CACHE_CONTROL, &p, end) ||
        (has_variants && header(wsi, "vary:", "Accept-Encoding", &p, end)) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    return 1;
}

int web_static_serve(struct lws *wsi, const char *file, const char *content_type,
                     const char *headers, int *status)
{
    char gz[PATH_MAX + 4], accept[256] = "", none_match[512] = "", etag[48];
    struct stat st, st_gz;
    *status = 200;
    if (stat(file, &st))
        return -1;
    snprintf(gz, sizeof gz, "%s.gz", file);
    int has_gz = !stat(gz, &st_gz) && S_ISREG(st_gz.st_mode) && mtime_ns(&st_gz) >= mtime_ns(&st);
    if (has_gz && lws_hdr_copy(wsi, accept, sizeof accept, WSI_TOKEN_HTTP_ACCEPT_ENCODING) < 0)
        accept[0] = '\0';
    int use_gz = has_gz && web_static_accepts_gzip(accept);
    if (use_gz)
        web_static_etag(etag, (unsigned long long)st_gz.st_size, mtime_ns(&st_gz), "gz");
    else
        web_static_etag(etag, (unsigned long long)st.st_size, mtime_ns(&st), "");
    if (lws_hdr_copy(wsi, none_match, sizeof none_match, WSI_TOKEN_HTTP_IF_NONE_MATCH) > 0 &&
        web_static_none_match(none_match, etag)) {
        *status = 304;
        return not_modified(wsi, etag, has_gz);
    }
    char extra[WEB_MAX_HEADERS];
    int n = snprintf(extra, sizeof extra, "%setag: %s\r\ncache-control: %s\r\n%s%s", headers, etag,
                     WEB_CACHE_CONTROL, has_gz ? "vary: Accept-Encoding\r\n" : "",
                     use_gz ? "content-encoding: gzip\r\n" : "");
    if (n < 0 || (size_t)n >= sizeof extra)
        return -1;
    return lws_serve_http_file(wsi, use_gz ? gz : file, content_type, extra, n);
}
