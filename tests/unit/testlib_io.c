/* testlib_io: testlib.h's fake chat transport, kept apart from cmocka so that the chat
 * fuzzer (tests/fuzz/fuzz_chat.c) records frames with the same code as the unit tests. On a
 * failure (out of memory, a close when is_close_fatal) it calls testlib_fail(), which each
 * program that links it defines. */
#include "testlib.h"

#include <stdlib.h>
#include <string.h>

/* Makes room in the array at items (capacity *cap) for element number n; doubles, from first. */
static void grow(void *items, int *cap, int n, size_t size, int first)
{
    if (n < *cap)
        return;
    int want = *cap ? *cap * 2 : first;
    if (cd_resize(items, (size_t)want, size))
        testlib_fail("fake transport: out of memory");
    *cap = want;
}

static void io_send(void *ctx, uint64_t conn, const char *frame, size_t len)
{
    struct testlib_io *io = ctx;
    grow(&io->frames, &io->cap, io->n, sizeof *io->frames, 256);
    char *text = cd_strndup(frame, len);
    if (!text)
        testlib_fail("fake transport: out of memory");
    io->frames[io->n++] = (struct testlib_frame){conn, text, len};
}

static void io_close(void *ctx, uint64_t conn, int code, const char *reason)
{
    struct testlib_io *io = ctx;
    if (io->is_close_fatal)
        testlib_fail("connection %llu closed with %d (%s)", (unsigned long long)conn, code,
                     reason ? reason : "");
    grow(&io->closes, &io->cap_closed, io->n_closed, sizeof *io->closes, 16);
    io->closes[io->n_closed++] = (struct testlib_close){conn, code, io->n};
}

struct chat_io testlib_chat_io(struct testlib_io *io)
{
    struct chat_io c;
    memset(&c, 0, sizeof c);
    c.send = io_send;
    c.close = io_close;
    c.ctx = io;
    return c;
}

void testlib_io_reset(struct testlib_io *io)
{
    for (int i = 0; i < io->n; i++)
        free(io->frames[i].text);
    free(io->frames);
    free(io->closes);
    int is_close_fatal = io->is_close_fatal;
    memset(io, 0, sizeof *io);
    io->is_close_fatal = is_close_fatal;
}
