/* web_static: how one static file of the web root goes out: the copy gzip-compressed at build
 * time (FILE.gz, made by `make`) when the client accepts gzip and the copy is current, an ETag,
 * a Cache-Control that makes browsers revalidate, and 304 Not Modified when the client's
 * If-None-Match names the file's current ETag. */
#ifndef CD_WEB_STATIC_H
#define CD_WEB_STATIC_H

struct lws;

/* Sends file (a regular file already resolved inside the web root) as content_type, with
 * headers (zero or more "name: value\r\n" lines) added to every response. *status gets the
 * status sent (200 or 304). Returns what lws_serve_http_file() does: < 0 to close the
 * connection, 0 while the body is still being sent, > 0 when the transaction is complete
 * (the caller then calls lws_http_transaction_completed()). */
int web_static_serve(struct lws *wsi, const char *file, const char *content_type,
                     const char *headers, int *status);

/* The ETag of a file of size bytes last modified at mtime_ns, in the encoding named by
 * encoding ("" for the file as it is, "gz"), into out (at least 48 bytes), quotes included. */
void web_static_etag(char *out, unsigned long long size, long long mtime_ns, const char *encoding);

/* Returns 1 when an If-None-Match header value matches etag ("*", or a list holding it,
 * compared weakly as RFC 9110 asks), else 0. */
int web_static_none_match(const char *if_none_match, const char *etag);

/* Returns 1 when an Accept-Encoding header value accepts gzip (not "gzip;q=0"), else 0. */
int web_static_accepts_gzip(const char *accept_encoding);

#endif
