/* Tests for auth.c: SHA-256 against known vectors, token format and
 * hashing, constant-time comparison, roles and skills, account creation and
 * checks, throttling of bad tokens. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth.h"
#include "store.h"
#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void hex(const unsigned char *h, char *out)
{
    for (int i = 0; i < AUTH_HASH_LEN; i++)
        sprintf(out + 2 * i, "%02x", h[i]);
}

static void test_sha256_vectors(void **state)
{
    (void)state;
    unsigned char h[AUTH_HASH_LEN];
    char s[65];
    auth_sha256("", 0, h);
    hex(h, s);
    assert_string_equal(s, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    auth_sha256("abc", 3, h);
    hex(h, s);
    assert_string_equal(s, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"; /* 56 bytes */
    auth_sha256(two, strlen(two), h);
    hex(h, s);
    assert_string_equal(s, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    char *million = malloc(1000000);
    assert_non_null(million);
    memset(million, 'a', 1000000);
    auth_sha256(million, 1000000, h);
    free(million);
    hex(h, s);
    assert_string_equal(s, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void test_equal(void **state)
{
    (void)state;
    assert_true(auth_equal("abcd", "abcd", 4));
    assert_false(auth_equal("abcd", "abce", 4));
    assert_false(auth_equal("xbcd", "abcd", 4));
    assert_true(auth_equal("a", "b", 0));
}

static void test_tokens(void **state)
{
    (void)state;
    char t1[AUTH_TOKEN_HEX + 1], t2[AUTH_TOKEN_HEX + 1];
    unsigned char h1[AUTH_HASH_LEN], h2[AUTH_HASH_LEN], h3[AUTH_HASH_LEN];
    assert_int_equal(auth_token_new(t1, h1), 0);
    assert_int_equal(auth_token_new(t2, h2), 0);
    assert_int_equal(strlen(t1), AUTH_TOKEN_HEX);
    assert_string_not_equal(t1, t2);
    for (int i = 0; i < AUTH_TOKEN_HEX; i++)
        assert_non_null(strchr("0123456789abcdef", t1[i]));
    assert_int_equal(auth_token_hash(t1, strlen(t1), h3), 0);
    assert_memory_equal(h1, h3, AUTH_HASH_LEN);
    /* Upper-case hex is the same token. */
    char up[AUTH_TOKEN_HEX + 1];
    for (int i = 0; i <= AUTH_TOKEN_HEX; i++)
        up[i] = (char)(t1[i] >= 'a' && t1[i] <= 'f' ? t1[i] - 32 : t1[i]);
    assert_int_equal(auth_token_hash(up, AUTH_TOKEN_HEX, h3), 0);
    assert_memory_equal(h1, h3, AUTH_HASH_LEN);
    /* Truncated, extended, non-hex. */
    assert_int_equal(auth_token_hash(t1, AUTH_TOKEN_HEX - 1, h3), CD_EINVAL);
    char longer[AUTH_TOKEN_HEX + 2];
    snprintf(longer, sizeof longer, "%s0", t1);
    assert_int_equal(auth_token_hash(longer, strlen(longer), h3), CD_EINVAL);
    char bad[AUTH_TOKEN_HEX + 1];
    memcpy(bad, t1, sizeof bad);
    bad[10] = 'g';
    assert_int_equal(auth_token_hash(bad, AUTH_TOKEN_HEX, h3), CD_EINVAL);
    assert_int_equal(auth_token_hash(NULL, 0, h3), CD_EINVAL);
}

static void test_roles_skills(void **state)
{
    (void)state;
    assert_int_equal(auth_role_parse("agent"), AUTH_ROLE_AGENT);
    assert_int_equal(auth_role_parse("author"), AUTH_ROLE_AUTHOR);
    assert_int_equal(auth_role_parse("admin"), AUTH_ROLE_ADMIN);
    assert_int_equal(auth_role_parse("supervisor"), AUTH_ROLE_SUPERVISOR);
    assert_string_equal(auth_role_name(AUTH_ROLE_SUPERVISOR), "supervisor");
    assert_int_equal(auth_role_parse("root"), -1);
    assert_int_equal(auth_role_parse(NULL), -1);
    assert_string_equal(auth_role_name(AUTH_ROLE_AUTHOR), "author");
    /* Every role's name parses back to it; a set of roles has no one name. */
    for (int role = AUTH_ROLE_AGENT; role <= AUTH_ROLE_SUPERVISOR; role <<= 1)
        assert_int_equal(auth_role_parse(auth_role_name(role)), role);
    assert_string_equal(auth_role_name(AUTH_ROLE_AGENT | AUTH_ROLE_ADMIN), "unknown");
    assert_string_equal(auth_role_name(0), "unknown");
    static const struct testlib_case skills[] = {
        {"", 1},         {"billing", 1},  {"billing,orders,tech-2", 1},
        {"billing,", 0}, {",billing", 0}, {"billing,,orders", 0},
        {"Billing", 0},  {"bill ing", 0}, {NULL, 0},
    };
    TESTLIB_CHECK_CASES(auth_skills_valid, skills);
    static const struct testlib_case2 held[] = {
        {"billing,orders", "orders", 1},
        {"billing,orders", "billing", 1},
        {"billing,orders", "order", 0},
        {"billing,orders", "bill", 0},
        {"", "billing", 0},
    };
    TESTLIB_CHECK_CASES2(auth_has_skill, held);
}

static void test_user_create_and_check(void **state)
{
    (void)state;
    struct store *s = testlib_store(":memory:");
    char token[AUTH_TOKEN_HEX + 1];
    struct auth_user u;
    assert_int_equal(auth_user_create(s, "Ana Lopez", AUTH_ROLE_AGENT, "billing,orders", token, &u),
                     0);
    assert_true(u.id > 0);
    assert_int_equal(auth_user_create(s, "Ana Lopez", AUTH_ROLE_ADMIN, "", token, &u), CD_EEXIST);
    assert_int_equal(auth_user_create(s, "", AUTH_ROLE_AGENT, "", token, &u), CD_EINVAL);
    assert_int_equal(auth_user_create(s, "x;drop", AUTH_ROLE_AGENT, "", token, &u), CD_EINVAL);
    assert_int_equal(auth_user_create(s, "bo", 3, "", token, &u), CD_EINVAL);
    assert_int_equal(auth_user_create(s, "bo", AUTH_ROLE_AGENT, "Bad Skill", token, &u), CD_EINVAL);
    char author_token[AUTH_TOKEN_HEX + 1];
    assert_int_equal(auth_user_create(s, "kim", AUTH_ROLE_AUTHOR, "", author_token, &u), 0);

    /* The stored hash is not the token. */
    struct store_user su;
    unsigned char h[AUTH_HASH_LEN];
    assert_int_equal(auth_token_hash(author_token, AUTH_TOKEN_HEX, h), 0);
    assert_int_equal(store_user_by_token(s, h, &su), 0);
    assert_memory_not_equal(su.token_hash, author_token, AUTH_HASH_LEN);

    struct auth_user got;
    assert_int_equal(auth_check_user(s, NULL, NULL, author_token, AUTH_TOKEN_HEX, 0, &got), 0);
    assert_string_equal(got.name, "kim");
    assert_int_equal(got.role, AUTH_ROLE_AUTHOR);
    /* A supervisor account signs in with its role. */
    char sup_token[AUTH_TOKEN_HEX + 1];
    assert_int_equal(auth_user_create(s, "sue", AUTH_ROLE_SUPERVISOR, "billing", sup_token, &u), 0);
    assert_int_equal(auth_check_user(s, NULL, NULL, sup_token, AUTH_TOKEN_HEX, 0, &got), 0);
    assert_int_equal(got.role, AUTH_ROLE_SUPERVISOR);
    assert_string_equal(got.skills, "billing");
    /* A replayed token of a removed user, a truncated token. */
    assert_int_equal(store_user_remove(s, "kim"), 0);
    assert_int_equal(auth_check_user(s, NULL, NULL, author_token, AUTH_TOKEN_HEX, 0, &got),
                     CD_EPERM);
    assert_int_equal(auth_check_user(s, NULL, NULL, token, 20, 0, &got), CD_EPERM);
    assert_int_equal(auth_check_user(s, NULL, NULL, token, AUTH_TOKEN_HEX, 0, &got), 0);
    assert_string_equal(got.name, "Ana Lopez");
    assert_string_equal(got.skills, "billing,orders");
    store_close(s);
}

static void test_throttle(void **state)
{
    (void)state;
    struct store *s = store_open(":memory:", NULL, NULL);
    struct auth_throttle *t = auth_throttle_new(3, 60);
    assert_non_null(t);
    char token[AUTH_TOKEN_HEX + 1];
    struct auth_user u;
    assert_int_equal(auth_user_create(s, "ana", AUTH_ROLE_AGENT, "", token, &u), 0);
    const char *wrong = "0000000000000000000000000000000000000000000000000000000000000000";
    for (int i = 0; i < 3; i++)
        assert_int_equal(auth_check_user(s, t, "10.0.0.1", wrong, 64, 1000, &u), CD_EPERM);
    /* Blocked now, even with the right token; other addresses are not. */
    assert_int_equal(auth_check_user(s, t, "10.0.0.1", token, 64, 1001, &u), CD_EBUSY);
    assert_int_equal(auth_check_user(s, t, "10.0.0.2", token, 64, 1001, &u), 0);
    /* After the window the address may try again. */
    assert_int_equal(auth_check_user(s, t, "10.0.0.1", token, 64, 1061, &u), 0);
    /* Many addresses do not grow memory or break lookups. */
    char addr[32];
    for (int i = 0; i < 10000; i++) {
        snprintf(addr, sizeof addr, "192.168.%d.%d", i / 256, i % 256);
        auth_throttle_fail(t, addr, 2000);
    }
    for (int i = 0; i < 3; i++)
        auth_throttle_fail(t, "10.9.9.9", 2000);
    assert_true(auth_throttle_blocked(t, "10.9.9.9", 2001));
    assert_false(auth_throttle_blocked(t, "10.9.9.8", 2001));
    auth_throttle_free(t);
    auth_throttle_free(NULL);
    store_close(s);
}

int main(void)
{
    TESTLIB_RUN(NULL, NULL,
                {
                    cmocka_unit_test(test_sha256_vectors),
                    cmocka_unit_test(test_equal),
                    cmocka_unit_test(test_tokens),
                    cmocka_unit_test(test_roles_skills),
                    cmocka_unit_test(test_user_create_and_check),
                    cmocka_unit_test(test_throttle),
                });
}
