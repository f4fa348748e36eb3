/* libFuzzer target for the customer and agent protocol decoders: a sequence of frames on
 * three customer and three agent connections, driven through chat.h with a fake transport
 * over an in-memory store emptied for every input, with the real triage engine.
 *
 * Input: frames separated by '\n'. A frame's first byte picks the connection (byte % 6:
 * 0-2 customers, 3-5 agents) and what happens (byte / 6 % 8: 0-5 send the rest of the
 * frame as a text frame, 6 close the connection, 7 run chat_tick a minute later). In the
 * frame, "$A", "$K" and "$R" become the tokens of an agent, an author and an admin, and
 * "$T" the token of the last conversation welcomed, so that resume and authentication
 * paths are reachable. One shared-cache in-memory database serves every input (opening and
 * migrating one per input took most of the time); it is emptied between inputs, keeping
 * the accounts. The transport is the unit tests' recording one (tests/unit/testlib_io.c);
 * after every flush the frames it recorded are checked. Invariants (abort() on failure):
 * every frame chat.c sends is a JSON object with a string "type", sent to a connection that
 * is open, with at most one "welcome" per customer connection, sent before anything else but
 * errors; a close is for an open connection, with a code from 1000 to 4999. */
#include "auth.h"
#include "chat.h"
#include "intents.h"
#include "store.h"
#include "testlib.h"
#include "triage.h"

#include <jansson.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define N_CONNS 6

static const char *const intent_defs =
    "[{\"name\":\"returns\",\"description\":\"Return an item\",\"examples\":[\"how do I return "
    "shoes\",\"return an item\",\"send back my purchase\"],\"patterns\":[\"return\"],"
    "\"response\":\"You can return any item within 30 days.\"},"
    "{\"name\":\"human\",\"description\":\"Talk to a person\",\"examples\":[\"talk to a "
    "person\",\"I want a human\",\"agent please\"],\"patterns\":[\"human\"],"
    "\"action\":\"handoff\",\"queue\":\"general\"},"
    "{\"name\":\"billing_dispute\",\"description\":\"A charge I do not recognise\",\"examples\":"
    "[\"charged twice\",\"double charge on my card\"],\"patterns\":[\"charged twice\"],"
    "\"action\":\"handoff\",\"queue\":\"billing\",\"sensitive\":true,\"priority\":2},"
    "{\"name\":\"order_number\",\"description\":\"Missing parcel\",\"examples\":[\"my parcel "
    "never arrived\",\"package lost\"],\"action\":\"collect\",\"queue\":\"orders\",\"collect\":"
    "{\"field\":\"order\",\"prompt\":\"What is your order number?\",\"regex\":\"[0-9]{5,}\"}},"
    "{\"name\":\"order_status\",\"description\":\"Where is my order?\",\"examples\":[\"where is "
    "my order\",\"track my package\",\"order status\"],\"response\":\"Track it on the Orders "
    "page.\"}]";

static struct triage *triage;
static struct store *store;
static sqlite3 *wiper; /* a second connection to the same memory database */
static char agent[AUTH_TOKEN_HEX + 1], author[AUTH_TOKEN_HEX + 1], admin[AUTH_TOKEN_HEX + 1];

struct conn_state {
    int is_open;
    int is_closed_by_server;
    int n_frames;
    int has_welcome;
};

static struct conn_state conns[N_CONNS + 1];
static char last_token[AUTH_TOKEN_HEX + 1];

void testlib_fail(const char *fmt, ...)
{
    (void)fmt;
    abort();
}

/* Checks one frame chat.c sent. */
static void check_frame(uint64_t conn, const char *frame, size_t len)
{
    if (conn < 1 || conn > N_CONNS || !conns[conn].is_open)
        abort(); /* a frame for a connection that is not open */
    json_t *o = json_loadb(frame, len, 0, NULL);
    if (!o || !json_is_object(o))
        abort();
    const char *type = json_string_value(json_object_get(o, "type"));
    if (!type)
        abort();
    struct conn_state *k = &conns[conn];
    if (conn <= 3) {
        if (!strcmp(type, "welcome")) {
            if (k->has_welcome)
                abort(); /* one welcome per connection */
            k->has_welcome = 1;
            const char *t = json_string_value(json_object_get(o, "token"));
            if (!t || strlen(t) != AUTH_TOKEN_HEX)
                abort();
            memcpy(last_token, t, AUTH_TOKEN_HEX + 1);
        } else if (!k->has_welcome && strcmp(type, "error")) {
            abort(); /* welcome comes before anything but errors */
        }
    }
    k->n_frames++;
    json_decref(o);
}

/* Checks one close chat.c asked for, and marks its connection for closing. */
static void check_close(uint64_t conn, int code)
{
    if (conn < 1 || conn > N_CONNS || !conns[conn].is_open)
        abort();
    if (code < 1000 || code > 4999)
        abort();
    conns[conn].is_closed_by_server = 1;
}

/* Checks what io recorded since the last call, then forgets it. */
static void check_sent(struct testlib_io *io)
{
    for (int i = 0; i < io->n; i++)
        check_frame(io->frames[i].conn, io->frames[i].text, io->frames[i].len);
    for (int i = 0; i < io->n_closed; i++)
        check_close(io->closes[i].conn, io->closes[i].code);
    testlib_io_reset(io);
}

static void init(void)
{
    struct intents *set = intents_new();
    if (!set || intents_load_json(set, intent_defs, strlen(intent_defs), "fuzz", NULL) != 0)
        abort();
    struct intents_train_options o = {0};
    o.is_quiet = 1;
    o.epochs = 4;
    if (intents_train(set, &o) != 0)
        abort();
    triage = triage_new(NULL, set, NULL);
    if (!triage)
        abort();
    static const char db[] = "file:fuzz_chat?mode=memory&cache=shared";
    sqlite3_config(SQLITE_CONFIG_URI, 1);
    if (sqlite3_open_v2(db, &wiper, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI,
                        NULL) != SQLITE_OK)
        abort();
    store = store_open(db, NULL, NULL);
    if (!store)
        abort();
    if (auth_user_create(store, "Ana", AUTH_ROLE_AGENT, "billing", agent, NULL) ||
        auth_user_create(store, "Kim", AUTH_ROLE_AUTHOR, "", author, NULL) ||
        auth_user_create(store, "Root", AUTH_ROLE_ADMIN, "", admin, NULL))
        abort();
}

/* Empties the database for the next input; the accounts stay. */
static void wipe(void)
{
    if (store_in_transaction(store))
        store_commit(store);
    if (sqlite3_exec(wiper,
                     "DELETE FROM feedback; DELETE FROM unanswered; DELETE FROM messages;"
                     " DELETE FROM conversations; DELETE FROM events;",
                     NULL, NULL, NULL) != SQLITE_OK)
        abort();
}

/* Copies the frame with the $-placeholders replaced; the caller frees. */
static char *substitute(const char *s, size_t n, const char *agent, const char *author,
                        const char *admin, size_t *out_len)
{
    char *out = malloc(n * (AUTH_TOKEN_HEX / 2) + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        const char *rep = NULL;
        if (s[i] == '$' && i + 1 < n) {
            switch (s[i + 1]) {
            case 'A':
                rep = agent;
                break;
            case 'K':
                rep = author;
                break;
            case 'R':
                rep = admin;
                break;
            case 'T':
                rep = last_token;
                break;
            }
        }
        if (rep) {
            size_t r = strlen(rep);
            memcpy(out + o, rep, r);
            o += r;
            i++;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    *out_len = o;
    return out;
}

static void close_conn(struct chat *chat, int c)
{
    if (!conns[c].is_open)
        return;
    if (c <= 3)
        chat_customer_closed(chat, (uint64_t)c);
    else
        chat_agent_closed(chat, (uint64_t)c);
    memset(&conns[c], 0, sizeof conns[c]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!triage)
        init();
    memset(conns, 0, sizeof conns);
    memset(last_token, 0, sizeof last_token);
    struct chat_settings settings;
    memset(&settings, 0, sizeof settings);
    settings.max_message_bytes = 512;
    struct testlib_io sent = {0};
    struct chat_io io = testlib_chat_io(&sent);
    struct chat *chat = chat_new(&settings, store, NULL, triage, &io);
    if (!chat)
        abort();
    int64_t now = 1800000000;

    const char *p = (const char *)data, *end = p + size;
    int n_frames = 0;
    while (p < end && n_frames++ < 64) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *frame_end = nl ? nl : end;
        if (frame_end > p) {
            unsigned sel = (unsigned char)p[0];
            int c = 1 + (int)(sel % N_CONNS);
            int action = (int)(sel / N_CONNS % 8);
            if (action == 6) {
                close_conn(chat, c);
            } else if (action == 7) {
                now += 60;
                chat_tick(chat, now);
            } else {
                if (!conns[c].is_open) {
                    struct chat_peer peer = {"192.0.2.7", NULL, "fuzz"};
                    conns[c].is_open = 1;
                    if (c <= 3)
                        chat_customer_open(chat, (uint64_t)c, &peer);
                    else
                        chat_agent_open(chat, (uint64_t)c, &peer);
                }
                size_t len = 0;
                char *text =
                    substitute(p + 1, (size_t)(frame_end - p - 1), agent, author, admin, &len);
                if (text) {
                    if (c <= 3)
                        chat_customer_frame(chat, (uint64_t)c, text, len);
                    else
                        chat_agent_frame(chat, (uint64_t)c, text, len);
                    free(text);
                }
            }
        }
        chat_flush(chat);
        check_sent(&sent);
        /* The server closes what chat.c asked it to close, then tells chat.c. */
        for (int k = 1; k <= N_CONNS; k++)
            if (conns[k].is_closed_by_server)
                close_conn(chat, k);
        p = nl ? nl + 1 : end;
    }
    for (int k = 1; k <= N_CONNS; k++)
        close_conn(chat, k);
    chat_flush(chat);
    check_sent(&sent);
    chat_free(chat);
    wipe();
    return 0;
}
