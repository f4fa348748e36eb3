/* auth: random 256-bit tokens, their SHA-256 hashes, constant-time checks,
 * roles and skills, and throttling of addresses that present bad tokens.
 *
 * DESIGN. SHA-256 is implemented here (FIPS 180-4, a page of code) so the
 * project depends on no TLS library for it; a token is hashed once per
 * connection, so its speed does not matter. Randomness comes only from
 * getrandom(); if the kernel cannot give it, no token is made. The throttle
 * is a small fixed table with oldest-first replacement, so a flood of
 * addresses cannot grow memory. */
#include "auth.h"

#include "cd.h"
#include "store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* ---- SHA-256 ---- */

struct sha256 {
    uint32_t h[8];
    uint64_t n_bytes;
    unsigned char block[64];
    size_t n_block;
};

static const uint32_t sha256_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static uint32_t ror32(uint32_t x, int n)
{
    return (x >> n) | (x << (32 - n));
}

static void sha256_block(struct sha256 *c, const unsigned char *p)
{
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ror32(w[i - 15], 7) ^ ror32(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ror32(w[i - 2], 17) ^ ror32(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = c->h[0], b = c->h[1], cc = c->h[2], d = c->h[3];
    uint32_t e = c->h[4], f = c->h[5], g = c->h[6], h = c->h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t s1 = ror32(e, 6) ^ ror32(e, 11) ^ ror32(e, 25);
        uint32_t ch = (e & f) ^ (~e & g);
        uint32_t t1 = h + s1 + ch + sha256_k[i] + w[i];
        uint32_t s0 = ror32(a, 2) ^ ror32(a, 13) ^ ror32(a, 22);
        uint32_t maj = (a & b) ^ (a & cc) ^ (b & cc);
        uint32_t t2 = s0 + maj;
        h = g;
        g = f;
        f = e;
        e = d + t1;
        d = cc;
        cc = b;
        b = a;
        a = t1 + t2;
    }
    c->h[0] += a;
    c->h[1] += b;
    c->h[2] += cc;
    c->h[3] += d;
    c->h[4] += e;
    c->h[5] += f;
    c->h[6] += g;
    c->h[7] += h;
}

void auth_sha256(const void *data, size_t n, unsigned char out[AUTH_HASH_LEN])
{
    struct sha256 c = {{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c,
                        0x1f83d9ab, 0x5be0cd19},
                       0,
                       {0},
                       0};
    const unsigned char *p = data;
    c.n_bytes = n;
    while (n >= 64) {
        sha256_block(&c, p);
        p += 64;
        n -= 64;
    }
    memcpy(c.block, p, n);
    c.n_block = n;
    c.block[c.n_block++] = 0x80;
    if (c.n_block > 56) {
        memset(c.block + c.n_block, 0, 64 - c.n_block);
        sha256_block(&c, c.block);
        c.n_block = 0;
    }
    memset(c.block + c.n_block, 0, 56 - c.n_block);
    uint64_t bits = c.n_bytes * 8;
    for (int i = 0; i < 8; i++)
        c.block[56 + i] = (unsigned char)(bits >> (56 - 8 * i));
    sha256_block(&c, c.block);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (unsigned char)(c.h[i] >> 24);
        out[4 * i + 1] = (unsigned char)(c.h[i] >> 16);
        out[4 * i + 2] = (unsigned char)(c.h[i] >> 8);
        out[4 * i + 3] = (unsigned char)c.h[i];
    }
}

int auth_equal(const void *a, const void *b, size_t n)
{
    const volatile unsigned char *x = a;
    const volatile unsigned char *y = b;
    unsigned char diff = 0;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(x[i] ^ y[i]);
    return diff == 0;
}

/* ---- tokens ---- */

int auth_token_new(char hex[AUTH_TOKEN_HEX + 1], unsigned char hash[AUTH_HASH_LEN])
{
    unsigned char raw[AUTH_TOKEN_BYTES];
    size_t got = 0;
    while (got < sizeof raw) {
        ssize_t n = getrandom(raw + got, sizeof raw - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return CD_EIO;
        }
        got += (size_t)n;
    }
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < AUTH_TOKEN_BYTES; i++) {
        hex[2 * i] = digits[raw[i] >> 4];
        hex[2 * i + 1] = digits[raw[i] & 15];
    }
    hex[AUTH_TOKEN_HEX] = '\0';
    memset(raw, 0, sizeof raw);
    auth_sha256(hex, AUTH_TOKEN_HEX, hash);
    return 0;
}

int auth_token_hash(const char *token, size_t n, unsigned char hash[AUTH_HASH_LEN])
{
    char lower[AUTH_TOKEN_HEX];
    if (!token || n != AUTH_TOKEN_HEX)
        return CD_EINVAL;
    for (size_t i = 0; i < n; i++) {
        char c = token[i];
        if (c >= 'A' && c <= 'F')
            c = (char)(c - 'A' + 'a');
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return CD_EINVAL;
        lower[i] = c;
    }
    auth_sha256(lower, n, hash);
    return 0;
}

/* ---- roles and skills ---- */

/* The one list of roles and their names, for parsing and naming. */
static const struct {
    int role;
    const char *name;
} roles[] = {
    {AUTH_ROLE_AGENT, "agent"},
    {AUTH_ROLE_AUTHOR, "author"},
    {AUTH_ROLE_ADMIN, "admin"},
    {AUTH_ROLE_SUPERVISOR, "supervisor"},
};

int auth_role_parse(const char *name)
{
    for (size_t i = 0; name && i < sizeof roles / sizeof roles[0]; i++)
        if (!strcmp(name, roles[i].name))
            return roles[i].role;
    return -1;
}

const char *auth_role_name(int role)
{
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
        if (role == roles[i].role)
            return roles[i].name;
    return "unknown";
}

int auth_skills_valid(const char *skills)
{
    if (!skills)
        return 0;
    size_t len = strlen(skills);
    if (len >= 256)
        return 0;
    int n_word = 0;
    for (const char *p = skills;; p++) {
        char c = *p;
        if (c == ',' || c == '\0') {
            if (n_word == 0 && (c == ',' || p != skills))
                return 0; /* empty item */
            if (c == '\0')
                return 1;
            n_word = 0;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return 0;
        if (++n_word > 31)
            return 0;
    }
}

int auth_has_skill(const char *skills, const char *skill)
{
    if (!skills || !skill || !*skill)
        return 0;
    size_t n = strlen(skill);
    for (const char *p = skills; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && !memcmp(p, skill, n))
            return 1;
        if (!end)
            break;
        p = end + 1;
    }
    return 0;
}

static int name_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == ' ' || c == '.' || c == '_' || c == '@' || c == '-'))
            return 0;
    }
    return name[0] != ' ' && name[n - 1] != ' ';
}

static void user_from_store(const struct store_user *su, struct auth_user *out)
{
    memset(out, 0, sizeof *out);
    out->id = su->id;
    snprintf(out->name, sizeof out->name, "%s", su->name);
    int role = auth_role_parse(su->role);
    out->role = role < 0 ? 0 : role;
    snprintf(out->skills, sizeof out->skills, "%s", su->skills);
}

int auth_user_create(struct store *s, const char *name, int role, const char *skills,
                     char token_hex[AUTH_TOKEN_HEX + 1], struct auth_user *out)
{
    if (!name_valid(name) || !auth_skills_valid(skills ? skills : "") ||
        (role != AUTH_ROLE_AGENT && role != AUTH_ROLE_AUTHOR && role != AUTH_ROLE_ADMIN &&
         role != AUTH_ROLE_SUPERVISOR))
        return CD_EINVAL;
    struct store_user u;
    memset(&u, 0, sizeof u);
    snprintf(u.name, sizeof u.name, "%s", name);
    snprintf(u.role, sizeof u.role, "%s", auth_role_name(role));
    snprintf(u.skills, sizeof u.skills, "%s", skills ? skills : "");
    char fresh[AUTH_TOKEN_HEX + 1];
    int rc = auth_token_new(fresh, u.token_hash);
    if (rc)
        return rc;
    int was_in_tx = store_in_transaction(s);
    rc = store_begin(s);
    if (rc)
        return rc;
    rc = store_user_add(s, &u);
    if (!rc) {
        char detail[160];
        snprintf(detail, sizeof detail, "{\"role\":\"%s\",\"user\":%lld}", u.role, (long long)u.id);
        rc = store_event_add(s, "user_add", 0, u.id, detail);
    }
    if (rc) {
        if (!was_in_tx) /* inside the caller's group, its own failure handling rules */
            store_rollback(s);
        return rc;
    }
    if (!was_in_tx)
        rc = store_commit(s);
    if (!rc) {
        memcpy(token_hex, fresh, sizeof fresh);
        if (out)
            user_from_store(&u, out);
    }
    memset(fresh, 0, sizeof fresh);
    return rc;
}

/* ---- throttling ---- */

#define THROTTLE_SLOTS    4096
#define THROTTLE_ADDR_MAX 64

struct throttle_slot {
    char address[THROTTLE_ADDR_MAX];
    int64_t window_start_s;
    int64_t last_s;
    int n_failures;
};

struct auth_throttle {
    int max_failures;
    int window_s;
    struct throttle_slot slots[THROTTLE_SLOTS];
};

struct auth_throttle *auth_throttle_new(int max_failures, int window_s)
{
    struct auth_throttle *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->max_failures = max_failures > 0 ? max_failures : 5;
    t->window_s = window_s > 0 ? window_s : 60;
    return t;
}

void auth_throttle_free(struct auth_throttle *t)
{
    free(t);
}

static uint32_t addr_hash(const char *address)
{
    return cd_fnv1a32(CD_FNV32_INIT, address, strlen(address));
}

/* Finds the slot of address among 8 probes, or (if create) the probe to
 * reuse: an empty one, an expired one, or the least recently used. */
static struct throttle_slot *throttle_slot(struct auth_throttle *t, const char *address,
                                           int64_t now_s, int is_create)
{
    uint32_t h = addr_hash(address);
    struct throttle_slot *victim = NULL;
    int is_victim_free = 0;
    for (int i = 0; i < 8; i++) {
        struct throttle_slot *sl = &t->slots[(h + (uint32_t)i) % THROTTLE_SLOTS];
        if (sl->address[0] && !strncmp(sl->address, address, THROTTLE_ADDR_MAX - 1))
            return sl;
        int is_free = !sl->address[0] || now_s - sl->last_s > t->window_s;
        if (is_free) {
            if (!is_victim_free) {
                victim = sl;
                is_victim_free = 1;
            }
        } else if (!is_victim_free && (!victim || sl->last_s < victim->last_s)) {
            victim = sl;
        }
    }
    if (!is_create)
        return NULL;
    memset(victim, 0, sizeof *victim);
    snprintf(victim->address, sizeof victim->address, "%s", address);
    victim->window_start_s = now_s;
    victim->last_s = now_s;
    return victim;
}

int auth_throttle_blocked(struct auth_throttle *t, const char *address, int64_t now_s)
{
    if (!t || !address)
        return 0;
    struct throttle_slot *sl = throttle_slot(t, address, now_s, 0);
    if (!sl)
        return 0;
    if (now_s - sl->window_start_s >= t->window_s)
        return 0;
    return sl->n_failures >= t->max_failures;
}

void auth_throttle_fail(struct auth_throttle *t, const char *address, int64_t now_s)
{
    if (!t || !address)
        return;
    struct throttle_slot *sl = throttle_slot(t, address, now_s, 1);
    if (now_s - sl->window_start_s >= t->window_s) {
        sl->window_start_s = now_s;
        sl->n_failures = 0;
    }
    sl->n_failures++;
    sl->last_s = now_s;
}

int auth_check_user(struct store *s, struct auth_throttle *t, const char *address,
                    const char *token, size_t n, int64_t now_s, struct auth_user *out)
{
    if (auth_throttle_blocked(t, address, now_s))
        return CD_EBUSY;
    unsigned char hash[AUTH_HASH_LEN];
    int rc = auth_token_hash(token, n, hash);
    struct store_user u;
    if (!rc) {
        rc = store_user_by_token(s, hash, &u);
        if (!rc && !auth_equal(u.token_hash, hash, AUTH_HASH_LEN))
            rc = CD_EPERM;
    }
    if (rc == CD_EINVAL || rc == CD_ENOTFOUND)
        rc = CD_EPERM;
    if (rc == CD_EPERM) {
        auth_throttle_fail(t, address, now_s);
        return rc;
    }
    if (rc)
        return rc;
    user_from_store(&u, out);
    return 0;
}
