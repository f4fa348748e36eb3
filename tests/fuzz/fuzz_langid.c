/* libFuzzer target for langid: detects the language of arbitrary bytes against a small
 * English/Spanish profile, and builds a profile of its own from them. */
#include "langid.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct langid *id;
    if (!id) {
        static const char en[] = "where is my order, I want a refund";
        static const char es[] = "dónde está mi pedido, quiero un reembolso";
        id = langid_new();
        if (!id || langid_add(id, "en", en, sizeof en - 1) ||
            langid_add(id, "es", es, sizeof es - 1) || langid_train(id))
            abort();
    }
    /* A copy of exactly the input bytes, so ASan catches any read past the end. */
    char *s = malloc(size ? size : 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    struct langid_result r;
    langid_detect(id, s, size, &r);
    if (!(r.confidence >= 0 && r.confidence <= 1) || (strcmp(r.lang, "en") && strcmp(r.lang, "es")))
        abort();
    /* Building a profile costs about a millisecond: from every eighth input only. */
    struct langid *own = size % 8 == 0 ? langid_new() : NULL;
    if (own) {
        langid_add(own, "xx", s, size);
        langid_add(own, "yy", s, size / 2);
        langid_train(own);
        langid_detect(own, s, size, &r);
        if (!(r.confidence >= 0 && r.confidence <= 1))
            abort();
        langid_free(own);
    }
    free(s);
    return 0;
}
