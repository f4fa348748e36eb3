/* intents_check: the author's report on a trained intent set, from what
 * cross-fitting saw (intents_crossfit()): which intents the model confuses,
 * which have too few examples, which examples read as another intent, and
 * where the out-of-scope threshold landed and why. */
#include "intents_check.h"

#include "cd.h"
#include "intents.h"
#include "scope.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct pair {
    int a, b; /* a is read as b */
    int n;
};

static int compare_pairs(const void *x, const void *y)
{
    const struct pair *p = x, *q = y;
    if (p->n != q->n)
        return q->n - p->n;
    if (p->a != q->a)
        return p->a - q->a;
    return p->b - q->b;
}

struct misread {
    int row;
    float p;
};

static int compare_misreads(const void *x, const void *y)
{
    const struct misread *p = x, *q = y;
    return p->p < q->p ? 1 : p->p > q->p ? -1 : p->row - q->row;
}

static double round4(double x)
{
    return round(x * 10000) / 10000;
}

json_t *intents_check(const struct intents *set, const struct intents_check_options *options)
{
    int min_examples = options && options->min_examples > 0 ? options->min_examples : 10;
    int max_items = options && options->max_items > 0 ? options->max_items : 20;
    const struct intents_crossfit *cf = intents_crossfit(set);
    const struct scope_model *sc = intents_scope(set);
    int n_items = intents_count(set);
    json_t *root = json_object();
    json_t *few = json_array(), *pairs = json_array(), *misreads = json_array();
    json_t *per_intent = json_array();
    int *n_rows = calloc((size_t)(n_items ? n_items : 1), sizeof *n_rows);
    int *n_right = calloc((size_t)(n_items ? n_items : 1), sizeof *n_right);
    struct pair *pv = NULL;
    struct misread *mv = NULL;
    if (!root || !few || !pairs || !misreads || !per_intent || !n_rows || !n_right)
        goto fail;

    /* Per intent: examples, and how many of its held-out examples the model
     * read right. */
    for (int r = 0; r < cf->n_rows; r++) {
        n_rows[cf->gold[r]]++;
        n_right[cf->gold[r]] += cf->pred[r] == cf->gold[r];
    }
    for (int i = 0; i < n_items; i++) {
        const struct intent *it = intents_get(set, i);
        if (it->is_oos || it->n_examples == 0)
            continue;
        json_t *o = json_pack("{s:s, s:i, s:o?}", "intent", it->name, "examples", it->n_examples,
                              "cross_validated_accuracy",
                              n_rows[i] ? json_real(round4((double)n_right[i] / n_rows[i])) : NULL);
        json_array_append_new(per_intent, o);
        if (it->n_examples < min_examples)
            json_array_append_new(few, json_pack("{s:s, s:i, s:i}", "intent", it->name, "examples",
                                                 it->n_examples, "suggested", min_examples));
    }

    /* Confused pairs: held-out examples of one intent read as another. */
    pv = malloc((size_t)(cf->n_rows ? cf->n_rows : 1) * sizeof *pv);
    mv = malloc((size_t)(cf->n_rows ? cf->n_rows : 1) * sizeof *mv);
    if (!pv || !mv)
        goto fail;
    int n_pairs = 0, n_mis = 0;
    for (int r = 0; r < cf->n_rows; r++) {
        if (cf->pred[r] < 0 || cf->pred[r] == cf->gold[r])
            continue;
        mv[n_mis].row = r;
        mv[n_mis++].p = cf->p_pred[r];
        int k = 0;
        while (k < n_pairs && !(pv[k].a == cf->gold[r] && pv[k].b == cf->pred[r]))
            k++;
        if (k == n_pairs) {
            pv[n_pairs].a = cf->gold[r];
            pv[n_pairs].b = cf->pred[r];
            pv[n_pairs++].n = 0;
        }
        pv[k].n++;
    }
    qsort(pv, (size_t)n_pairs, sizeof *pv, compare_pairs);
    for (int k = 0; k < n_pairs && k < max_items; k++)
        json_array_append_new(pairs, json_pack("{s:s, s:s, s:i, s:f}", "intent",
                                               intents_get(set, pv[k].a)->name, "read_as",
                                               intents_get(set, pv[k].b)->name, "examples", pv[k].n,
                                               "share", round4((double)pv[k].n / n_rows[pv[k].a])));

    /* Examples that cross-validate to another intent, the surest first:
     * mislabelled, or two intents that overlap. */
    qsort(mv, (size_t)n_mis, sizeof *mv, compare_misreads);
    for (int k = 0; k < n_mis && k < max_items; k++) {
        int r = mv[k].row;
        const struct intent *g = intents_get(set, cf->gold[r]);
        if (cf->example[r] < 0 || cf->example[r] >= g->n_examples)
            continue;
        json_array_append_new(misreads, json_pack("{s:s, s:s, s:s, s:f}", "intent", g->name,
                                                  "example", g->examples[cf->example[r]], "read_as",
                                                  intents_get(set, cf->pred[r])->name,
                                                  "probability", round4(cf->p_pred[r])));
    }

    /* Where the out-of-scope threshold landed, and why. */
    json_t *scope = json_pack(
        "{s:b, s:f, s:i, s:i, s:f, s:f, s:f, s:f, s:f, s:i}", "fitted", sc->is_fitted, "prior_oos",
        sc->prior_oos, "in_scope_rows", sc->n_in, "out_of_scope_rows", sc->n_out, "in_scope_kept",
        round4(sc->in_kept), "out_of_scope_caught", round4(sc->out_caught), "auroc",
        round4(sc->auroc), "top_probability_at_half", round4(sc->p_top_at_half), "temperature",
        round4(intents_temperature(set)), "folds", cf->folds);
    char why[512];
    if (sc->is_fitted)
        snprintf(why, sizeof why,
                 "Each of %d folds held out whole intents and a share of every other intent's "
                 "examples. A message is handed off as out of scope when P(in scope) < 0.5, "
                 "with %.0f%% of traffic assumed out of scope: on the held-out rows that keeps "
                 "%.0f%% of in-scope questions and catches %.0f%% of out-of-scope ones (the "
                 "held-out intents and the shipped background). With all else typical, the "
                 "model's top probability must reach about %.2f.",
                 cf->folds, 100 * sc->prior_oos, 100 * sc->in_kept, 100 * sc->out_caught,
                 sc->p_top_at_half);
    else
        snprintf(why, sizeof why,
                 "Not fitted: cross-fitting needs at least 10 held-out rows of each kind "
                 "(three or more intents with examples). Only rules and the model's own "
                 "probability decide.");
    json_object_set_new(scope, "why", json_string(why));

    json_object_set_new(root, "intents", json_integer(n_items));
    json_object_set_new(root, "cross_validated_accuracy",
                        cf->n_rows ? json_real(round4((double)cf->n_right / cf->n_rows))
                                   : json_null());
    json_object_set_new(root, "out_of_scope", scope);
    json_object_set_new(root, "too_few_examples", few);
    json_object_set_new(root, "confused_pairs", pairs);
    json_object_set_new(root, "misread_examples", misreads);
    json_object_set_new(root, "per_intent", per_intent);
    free(n_rows);
    free(n_right);
    free(pv);
    free(mv);
    return root;
fail:
    json_decref(root);
    json_decref(few);
    json_decref(pairs);
    json_decref(misreads);
    json_decref(per_intent);
    free(n_rows);
    free(n_right);
    free(pv);
    free(mv);
    return NULL;
}
