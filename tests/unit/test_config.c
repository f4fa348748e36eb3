/* Tests for config.c: defaults, each layer, precedence, and errors that
 * name the setting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cd.h"
#include "config.h"
#include "queue.h"
#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_defaults(void **state)
{
    (void)state;
    struct config c;
    assert_int_equal(config_init(&c), 0);
    assert_int_equal(c.port, 8080);
    assert_string_equal(c.bind, "");
    assert_string_equal(c.db_path, "./caredesk.db");
    assert_string_equal(c.kb_path, "./kb");
    assert_string_equal(c.intents_path, "./intents");
    assert_string_equal(c.web_root, "./web");
    assert_int_equal(c.max_message_bytes, 4096);
    assert_int_equal(c.pickup_target_s, 60); /* the defaults are queue.h's, once */
    assert_int_equal(c.pickup_target_s, QUEUE_DEFAULT_PICKUP_TARGET_S);
    assert_int_equal(c.agent_capacity, QUEUE_DEFAULT_AGENT_CAPACITY);
    assert_string_equal(c.queues, QUEUE_DEFAULT_NAMES);
    assert_int_equal(c.durability, CONFIG_DURABILITY_NORMAL);
    assert_string_equal(c.log_level, "info");
    char *err = NULL;
    assert_int_equal(config_validate(&c, &err), 0);
    assert_null(err);
    config_clear(&c);
    config_clear(NULL);
}

/* Fails the test unless *err is a message naming what (NULL: any message); frees it and
 * clears *err. */
static void assert_error(char **err, const char *what)
{
    assert_non_null(*err);
    if (what && !strstr(*err, what))
        fail_msg("'%s' does not name %s", *err, what);
    free(*err);
    *err = NULL;
}

static void test_set_and_errors(void **state)
{
    (void)state;
    struct config c;
    assert_int_equal(config_init(&c), 0);
    char *err = NULL;
    assert_int_equal(config_set(&c, "max_message_bytes", "100", "test", &err), 0);
    assert_int_equal(c.max_message_bytes, 100);
    assert_int_equal(config_set(&c, "RATE-LIMIT", "0", "test", &err), 0);
    assert_int_equal(c.rate_limit, 0);

    /* A bad value names the setting and leaves the old value. */
    assert_int_equal(config_set(&c, "port", "80x", "flag --port", &err), CD_EINVAL);
    assert_non_null(strstr(err, "'port'"));
    assert_error(&err, "flag --port");
    assert_int_equal(c.port, 8080);
    /* Refused values, and what the message names (NULL: not checked). */
    static const struct {
        const char *name, *value, *says;
    } bad[] = {
        {"port", "70000", NULL},
        {"answer-threshold", "1.5", "answer-threshold"},
        {"durability", "sometimes", "durability"},
        {"log-level", "loud", NULL},
        {"no-such-thing", "1", "no-such-thing"},
        {"auto-assign", "maybe", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(config_set(&c, bad[i].name, bad[i].value, "x", &err), CD_EINVAL);
        assert_non_null(err);
        if (bad[i].says && !strstr(err, bad[i].says))
            fail_msg("%s=%s: '%s' does not name %s", bad[i].name, bad[i].value, err, bad[i].says);
        free(err);
        err = NULL;
    }
    assert_int_equal(config_set(&c, "durability", "full", "x", &err), 0);
    assert_int_equal(c.durability, CONFIG_DURABILITY_FULL);
    assert_int_equal(config_set(&c, "auto-assign", "yes", "x", &err), 0);
    assert_int_equal(c.is_auto_assign, 1);
    config_clear(&c);
}

/* config_validate() refuses c with a message that names what. */
static void assert_invalid(struct config *c, const char *what)
{
    char *err = NULL;
    assert_int_equal(config_validate(c, &err), CD_EINVAL);
    assert_error(&err, what);
}

static void test_validate(void **state)
{
    (void)state;
    struct config c;
    char *err = NULL;
    assert_int_equal(config_init(&c), 0);
    assert_int_equal(config_set(&c, "clarify-threshold", "0.9", "x", NULL), 0);
    assert_invalid(&c, "clarify-threshold");
    config_clear(&c);

    assert_int_equal(config_init(&c), 0);
    assert_int_equal(config_set(&c, "tls-cert", "/nonexistent/cert.pem", "x", NULL), 0);
    assert_invalid(&c, "tls-key");
    assert_int_equal(config_set(&c, "tls-key", "/nonexistent/key.pem", "x", NULL), 0);
    assert_invalid(&c, "tls-cert");
    config_clear(&c);

    assert_int_equal(config_init(&c), 0);
    assert_int_equal(config_set(&c, "business-hours", "mon-fri 09:00-17:30", "x", NULL), 0);
    assert_int_equal(config_validate(&c, &err), 0);
    assert_int_equal(c.business_open_min, 9 * 60);
    assert_int_equal(c.business_close_min, 17 * 60 + 30);
    assert_int_equal(c.business_days_mask, 0x3e);
    assert_int_equal(config_set(&c, "business-hours", "17:00-09:00", "x", NULL), 0);
    assert_invalid(&c, "business-hours");
    assert_int_equal(config_set(&c, "business-hours", "", "x", NULL), 0);
    assert_int_equal(config_set(&c, "queues", "billing,,orders", "x", NULL), 0);
    assert_invalid(&c, "queues");
    assert_int_equal(config_set(&c, "queues", "billing,orders", "x", NULL), 0);
    assert_int_equal(config_set(&c, "max-frame-bytes", "1000", "x", NULL), 0);
    assert_invalid(&c, "max-frame-bytes");
    config_clear(&c);
}

static void test_business_hours(void **state)
{
    (void)state;
    int o, cl, mask;
    assert_int_equal(config_parse_business_hours("always", &o, &cl, &mask), 0);
    assert_int_equal(o, cl);
    assert_int_equal(config_parse_business_hours("08:00-18:00", &o, &cl, &mask), 0);
    assert_int_equal(mask, 0);
    assert_int_equal(config_parse_business_hours("sat,sun 10:00-14:00", &o, &cl, &mask), 0);
    assert_int_equal(mask, 0x41);
    assert_int_equal(config_parse_business_hours("fri-mon 10:00-14:00", &o, &cl, &mask), 0);
    assert_int_equal(mask, 0x63);
    assert_int_equal(config_parse_business_hours("funday 10:00-14:00", &o, &cl, &mask), CD_EINVAL);
    assert_int_equal(config_parse_business_hours("mon-fri 9-5", &o, &cl, &mask), CD_EINVAL);
    assert_int_equal(config_parse_business_hours("25:00-26:00", &o, &cl, &mask), CD_EINVAL);
}

static char *write_temp(const char *text)
{
    char *path = strdup("/tmp/caredesk-config-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (int)strlen(text));
    close(fd);
    return path;
}

static void test_precedence(void **state)
{
    (void)state;
    char *file = write_temp("# a comment\n\nport = 9000\nbind = \"127.0.0.1\"\n"
                            "rate_limit = 7\nlog-level = debug\nmax-connections = 50\n");
    char flag_config[300];
    snprintf(flag_config, sizeof flag_config, "--config=%s", file);
    char *argv[] = {"serve", flag_config, "--port", "9002", "--auto-assign", NULL};
    char *envp[] = {"PATH=/bin", "CAREDESK_PORT=9001", "CAREDESK_RATE_LIMIT=8",
                    "CAREDESK_BIN=/x/caredesk", NULL};
    struct config c;
    char *err = NULL;
    assert_int_equal(config_init(&c), 0);
    assert_int_equal(config_load(&c, 5, argv, 1, envp, &err), 0);
    assert_null(err);
    assert_int_equal(c.port, 9002);           /* flag beats env and file */
    assert_int_equal(c.rate_limit, 8);        /* env beats file */
    assert_string_equal(c.bind, "127.0.0.1"); /* file beats default, quotes removed */
    assert_string_equal(c.log_level, "debug");
    assert_int_equal(c.max_connections, 50);
    assert_int_equal(c.is_auto_assign, 1);
    config_clear(&c);

    /* An unknown CAREDESK_ variable is an error naming it. */
    char *bad_env[] = {"CAREDESK_PROT=1", NULL};
    assert_int_equal(config_init(&c), 0);
    assert_int_equal(config_load(&c, 1, argv, 1, bad_env, &err), CD_EINVAL);
    assert_error(&err, "CAREDESK_PROT");
    config_clear(&c);

    /* A bad line in the file names the file, the line and the setting. */
    char *bad = write_temp("port = 1\nmax-message-bytes = lots\n");
    assert_int_equal(config_init(&c), 0);
    assert_int_equal(config_load_file(&c, bad, &err), CD_EINVAL);
    assert_non_null(strstr(err, ":2"));
    assert_error(&err, "max-message-bytes");
    assert_int_equal(config_load_file(&c, "/nonexistent/caredesk.conf", &err), CD_EIO);
    assert_error(&err, "config");
    char *garbage = write_temp("this line has no equals sign\n");
    assert_int_equal(config_load_file(&c, garbage, &err), CD_EINVAL);
    assert_error(&err, NULL);
    config_clear(&c);

    /* Flags: unknown option, missing value, stray argument. */
    char *argv2[] = {"serve", "--max-connections", NULL};
    assert_int_equal(config_init(&c), 0);
    assert_int_equal(config_parse_args(&c, 2, argv2, 1, &err), CD_EINVAL);
    assert_error(&err, "max-connections");
    char *argv3[] = {"serve", "--colour", "red", NULL};
    assert_int_equal(config_parse_args(&c, 3, argv3, 1, &err), CD_EINVAL);
    assert_error(&err, "colour");
    char *argv4[] = {"serve", "8080", NULL};
    assert_int_equal(config_parse_args(&c, 2, argv4, 1, &err), CD_EINVAL);
    assert_error(&err, NULL);
    config_clear(&c);

    unlink(file);
    unlink(bad);
    unlink(garbage);
    free(file);
    free(bad);
    free(garbage);
}

static void test_print(void **state)
{
    (void)state;
    struct config c;
    assert_int_equal(config_init(&c), 0);
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    config_print(&c, f);
    fclose(f);
    assert_non_null(strstr(buf, "port = 8080\n"));
    assert_non_null(strstr(buf, "durability = normal\n"));
    free(buf);
    buf = NULL;
    f = open_memstream(&buf, &n);
    config_print_help(f);
    fclose(f);
    assert_non_null(strstr(buf, "--rate-limit"));
    assert_non_null(strstr(buf, "CAREDESK_MAX_CONNECTIONS"));
    free(buf);
    config_clear(&c);
}

int main(void)
{
    TESTLIB_RUN(NULL, NULL,
                {
                    cmocka_unit_test(test_defaults),
                    cmocka_unit_test(test_set_and_errors),
                    cmocka_unit_test(test_validate),
                    cmocka_unit_test(test_business_hours),
                    cmocka_unit_test(test_precedence),
                    cmocka_unit_test(test_print),
                });
}
