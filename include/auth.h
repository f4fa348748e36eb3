/* auth: secret tokens (agent/author/admin accounts and customer conversations),
 * their hashes, roles and skills, and throttling of repeated bad tokens.
 *
 * DESIGN. A token is 256 random bits from getrandom(), shown once as 64
 * lowercase hex characters and stored only as its SHA-256 hash, so a copy of
 * the database does not let anyone in. Lookups go by hash; the final check
 * compares hashes in constant time. Addresses that present bad tokens too
 * often are refused for a while (struct auth_throttle), before any lookup. */
#ifndef CD_AUTH_H
#define CD_AUTH_H

#include <stddef.h>
#include <stdint.h>

struct store;

#define AUTH_TOKEN_BYTES 32
#define AUTH_TOKEN_HEX   64 /* characters, without the NUL */
#define AUTH_HASH_LEN    32

/* Roles as bits, so a route can accept several: AUTH_ROLE_AGENT | AUTH_ROLE_ADMIN. */
enum auth_role {
    AUTH_ROLE_AGENT = 1,
    AUTH_ROLE_AUTHOR = 2,
    AUTH_ROLE_ADMIN = 4,
    AUTH_ROLE_SUPERVISOR = 8, /* QA audits, reports, the dashboard; takes no chats */
};

/* "agent", "author", "admin", "supervisor" -> the role bit; -1 for anything else. */
int auth_role_parse(const char *name);
const char *auth_role_name(int role);

/* SHA-256 of n bytes. */
void auth_sha256(const void *data, size_t n, unsigned char out[AUTH_HASH_LEN]);

/* Returns 1 if the n bytes at a and b are equal, else 0, in time that
 * depends only on n. */
int auth_equal(const void *a, const void *b, size_t n);

/* Makes a new random token: hex gets 64 hex characters and a NUL, hash its
 * SHA-256 (of the hex text). Returns 0 or CD_EIO (no randomness). */
int auth_token_new(char hex[AUTH_TOKEN_HEX + 1], unsigned char hash[AUTH_HASH_LEN]);

/* Hashes a token presented by a client (n bytes). Returns 0, or CD_EINVAL if
 * it is not 64 hex characters (then nothing needs to be looked up). */
int auth_token_hash(const char *token, size_t n, unsigned char hash[AUTH_HASH_LEN]);

/* Returns 1 if skills is "" or a comma-separated list of names made of
 * [a-z0-9_-] (each 1-31 characters), else 0. */
int auth_skills_valid(const char *skills);

/* Returns 1 if the comma-separated skills list contains skill, else 0. */
int auth_has_skill(const char *skills, const char *skill);

/* An authenticated account. */
struct auth_user {
    int64_t id;
    char name[64];
    int role; /* enum auth_role bit */
    char skills[256];
};

/* Creates an account and its token (printed once by the caller, never
 * stored). name: 1-63 characters [A-Za-z0-9 ._@-]; role: one auth_role bit;
 * skills: as auth_skills_valid. token_hex and out (may be NULL) are written
 * only on success. Returns 0, CD_EINVAL, CD_EEXIST or CD_E*.
 * Writes an audit event "user_add". */
int auth_user_create(struct store *s, const char *name, int role, const char *skills,
                     char token_hex[AUTH_TOKEN_HEX + 1], struct auth_user *out);

/* Throttles addresses that present bad tokens: after max_failures failures
 * within window_s seconds, the address is refused until the window passes. */
struct auth_throttle;

/* 0 values mean the defaults: 5 failures per 60 s. Tracks at most 4096
 * addresses (the oldest are forgotten first). NULL when out of memory. */
struct auth_throttle *auth_throttle_new(int max_failures, int window_s);
void auth_throttle_free(struct auth_throttle *t);
/* Returns 1 if address is currently refused. */
int auth_throttle_blocked(struct auth_throttle *t, const char *address, int64_t now_s);
/* Records a bad token from address. */
void auth_throttle_fail(struct auth_throttle *t, const char *address, int64_t now_s);

/* Checks an account token from address: throttled addresses are refused
 * before any lookup; a bad token counts against the address. Fills *out.
 * Returns 0, CD_EBUSY (throttled), CD_EPERM (bad or unknown token) or CD_E*.
 * t and address may be NULL (no throttling). */
int auth_check_user(struct store *s, struct auth_throttle *t, const char *address,
                    const char *token, size_t n, int64_t now_s, struct auth_user *out);

#endif
