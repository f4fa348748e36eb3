/* libFuzzer target for kb_apply(): the KB changes other nodes journal in a shared PostgreSQL
 * database (kb.h), read back as JSON and made here. A damaged or hostile row must not take a
 * node down. Each input is applied to an in-memory KB that keeps what earlier inputs put (as a
 * node keeps its index) and is recreated every 256 inputs. Invariants (abort() on failure):
 * kb_apply() returns 0 or a CD_E* code; the KB stays searchable; an input that put an article
 * (0 returned for a "put") makes it readable with kb_get(). */
#include "cd.h"
#include "kb.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct kb *kb;
static int n_inputs;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!kb || ++n_inputs % 256 == 0) {
        kb_close(kb);
        kb = kb_open(":memory:", NULL);
        if (!kb)
            abort();
    }
    int rc = kb_apply(kb, (const char *)data, size);
    if (rc > 0 || rc < CD_ESTATE)
        abort();
    json_t *o = json_loadb((const char *)data, size, 0, NULL);
    const char *op = json_string_value(json_object_get(o, "op"));
    const char *id = json_string_value(json_object_get(json_object_get(o, "article"), "id"));
    if (rc == 0 && op && !strcmp(op, "put") && id) {
        struct kb_article a;
        if (kb_get(kb, id, &a) != 0)
            abort();
        kb_article_clear(&a);
    }
    json_decref(o);
    struct kb_hit hits[3];
    int n_hits = 0;
    if (kb_search(kb, "how do I return it", NULL, hits, 3, &n_hits) != 0)
        abort();
    kb_hits_clear(hits, n_hits);
    return 0;
}
