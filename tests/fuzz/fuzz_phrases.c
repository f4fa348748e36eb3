/* libFuzzer target for a deployment's wording (setting 'phrases', triage_set_phrases()): an
 * operator's JSON file. Invariants (abort() on failure): it is taken whole (0) or refused
 * with a reason (CD_EINVAL and a message) and the wording in place is unchanged; every
 * sentence then said, in any language, is 1 to 1,000 bytes of valid UTF-8. */
#include "cd.h"
#include "triage.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const langs[] = {"en", "es", "es-MX", "fr", "pt-BR", "de", "zz", NULL};

static void check_sentences(const struct triage *t)
{
    for (int p = TRIAGE_SAY_HANDOFF; p <= TRIAGE_SAY_PERSON; p++)
        for (int i = 0; i < 8; i++) {
            const char *s = triage_phrase(t, (enum triage_phrase)p, langs[i]);
            size_t n = s ? strlen(s) : 0;
            if (n == 0 || n > 1000 || !cd_utf8_valid(s, n))
                abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct triage *t;
    if (!t && !(t = triage_new(NULL, NULL, NULL)))
        abort();
    static const char known[] = "{\"fr\": {\"handoff\": \"Je vous passe une personne.\"}}";
    char *err = NULL;
    if (triage_set_phrases(t, known, sizeof known - 1, &err))
        abort();
    const char *before = triage_phrase(t, TRIAGE_SAY_HANDOFF, "fr");
    int rc = triage_set_phrases(t, (const char *)data, size, &err);
    if (rc == CD_EINVAL) {
        if (!err || !*err || strcmp(triage_phrase(t, TRIAGE_SAY_HANDOFF, "fr"), before))
            abort();
    } else if (rc != 0 && rc != CD_ENOMEM) {
        abort();
    }
    free(err);
    check_sentences(t);
    return 0;
}
