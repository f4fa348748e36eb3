/* store_int: what the store's own files share: store.c (the backend-neutral part: every
 * query, written once over db.h), store_sqlite.c and store_pg.c (opening, schema and
 * migrations, housekeeping of each backend) and store_outbox.c. Not for callers: they use
 * store.h, which names no database type. */
#ifndef CD_STORE_INT_H
#define CD_STORE_INT_H

#include "db.h"
#include "store.h"
#include "store_outbox.h"

/* Room for store.c's prepared statements (it checks its count against this). */
#define STORE_MAX_STMT 64
/* Questions and replies in flight at once (store_message_pair_send()), each on its own
 * copy of the statement. */
#define STORE_TICKETS 16

struct store_sqlite; /* store_sqlite.c: the checkpoint thread */

struct store {
    struct db *db;
    struct db_stmt *stmt[STORE_MAX_STMT];
    store_observer_fn observer; /* store_outbox.h: told of each conversation and message write */
    void *observer_ctx;
    void *outbox; /* store_outbox.c's statements */
    int is_in_tx;
    int is_marked;
    struct store_sqlite *sqlite; /* NULL on PostgreSQL */
    char node[24];               /* store_set_node(), "" if none */
    int64_t last_reconnect_s;    /* PostgreSQL: reconnects are tried at most once a second */
    int is_notify_due;           /* PostgreSQL: the open group stored messages */
    /* PostgreSQL: store_message_send()'s message: held (to go in one statement with the
     * bot's reply, or alone before any other statement), then sent alone (its result read
     * from ST_MSG_APPEND_AT), or stored with the reply (ahead_rc says how it went). */
    struct store_message *ahead;
    enum { AHEAD_NONE, AHEAD_HELD, AHEAD_SENT, AHEAD_DONE } ahead_state;
    int ahead_rc;
    /* PostgreSQL: store_message_pair_send()'s statements (without and with the triage
     * columns) and whether each is in flight. */
    struct db_stmt *pair[STORE_TICKETS][2];
    int is_ticket_used[STORE_TICKETS];
};

/* Both backends: 0 when a database at schema version can be used by this build (it is not
 * newer than STORE_SCHEMA_VERSION), else CD_EINVAL with *err (when err is not NULL) saying
 * so, malloc'd. */
int store_schema_check(int version, char **err);

/* SQLite: opens (creating and migrating) the file at path and sets s->db and s->sqlite.
 * Returns 0 or CD_E* with *err set. */
int store_sqlite_open(struct store *s, const char *path, const struct store_options *options,
                      char **err);
/* Stops the housekeeping thread and closes the connection (after s->db's statements went). */
void store_sqlite_close(struct store *s);
/* Before a group begins: the committing thread's share of the housekeeping. */
void store_sqlite_before_begin(struct store *s);
int store_sqlite_schema_version(struct store *s);
int store_sqlite_purge_erased(struct store *s);
int64_t store_sqlite_housekeeping_runs(struct store *s);
int store_sqlite_migrate_to(const char *path, int version);

/* PostgreSQL: connects to uri and brings its schema up to date (one node at a time). Sets
 * s->db. Returns 0 or CD_E* with *err set. */
int store_pg_open(struct store *s, const char *uri, char **err);
int store_pg_schema_version(struct store *s);
int store_pg_migrate_to(const char *uri, int version);

/* Where store_outbox.c keeps its prepared statements for s (freed by store_outbox_free()). */
void **store_outbox_slot(struct store *s);

#endif
