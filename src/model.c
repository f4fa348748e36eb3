/* model: hashed n-gram features and the logistic-regression intent classifier. */
#if defined(__GNUC__) && !defined(__clang__)
/* The per-class loops are the hot path of training and deciding; O3 vectorises them. */
#pragma GCC optimize("O3")
#endif
#include "model.h"

#include "cd.h"
#include "text.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GROUP_WORD 0
#define GROUP_CHAR 1
#define N_GROUPS   2
/* A word pair: weighted and normalised with the words (GROUP_WORD), told
 * apart only to count which words of a message training has seen. */
#define GROUP_PAIR    2
#define NORM_GROUP(g) ((g) == GROUP_CHAR ? GROUP_CHAR : GROUP_WORD)

struct model {
    int n_classes;
    int hash_bits;
    int n_features;
    int32_t *bucket_feature; /* 2^hash_bits entries: feature index or -1 */
    float *idf;              /* per feature */
    float *weights;          /* n_features x n_classes, row per feature */
    float *bias;             /* n_classes */
};

/* Norm of each feature group's part of the vector. 2 rather than 1 acts as a
 * weaker prior (measured on a split of BANKING77 train and on CLINC150 val). */
static const float group_weight[N_GROUPS] = {2.0f, 2.0f};

static uint32_t hash_finish(uint64_t h, int bits)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return (uint32_t)(h >> (64 - bits));
}

void model_feats_free(struct model_feats *f)
{
    if (!f)
        return;
    free(f->bucket);
    free(f->count);
    free(f->group);
    free(f->slot);
    memset(f, 0, sizeof *f);
}

void model_scratch_free(struct model_scratch *s)
{
    if (!s)
        return;
    model_feats_free(&s->feats);
    free(s->feat);
    free(s->value);
    free(s->sums);
    free(s->acc);
    free(s->touched);
    memset(s, 0, sizeof *s);
}

static int feats_grow(struct model_feats *f)
{
    int cap = f->cap ? f->cap * 2 : 256;
    if (cd_resize(&f->bucket, (size_t)cap, sizeof *f->bucket) ||
        cd_resize(&f->count, (size_t)cap, sizeof *f->count) ||
        cd_resize(&f->group, (size_t)cap, sizeof *f->group))
        return CD_ENOMEM;
    int32_t *slot = malloc((size_t)cap * 2 * sizeof *slot);
    if (!slot)
        return CD_ENOMEM;
    free(f->slot);
    f->slot = slot;
    f->cap = cap;
    /* Re-index what is there. */
    memset(f->slot, 0xff, (size_t)cap * 2 * sizeof *slot);
    uint32_t mask = (uint32_t)cap * 2 - 1;
    for (int i = 0; i < f->n; i++) {
        uint32_t h = (f->bucket[i] * 2654435761u) & mask;
        while (f->slot[h] >= 0)
            h = (h + 1) & mask;
        f->slot[h] = i;
    }
    return 0;
}

/* Adds one occurrence of a hashed feature (bucket, group). */
static int feats_add(struct model_feats *f, uint32_t bucket, int group)
{
    if (f->n * 2 >= f->cap && feats_grow(f))
        return CD_ENOMEM;
    uint32_t mask = (uint32_t)f->cap * 2 - 1;
    uint32_t h = (bucket * 2654435761u) & mask;
    while (f->slot[h] >= 0) {
        int i = f->slot[h];
        if (f->bucket[i] == bucket && f->group[i] == group) {
            f->count[i] += 1.0f;
            return 0;
        }
        h = (h + 1) & mask;
    }
    f->slot[h] = f->n;
    f->bucket[f->n] = bucket;
    f->count[f->n] = 1.0f;
    f->group[f->n] = (uint8_t)group;
    f->n++;
    return 0;
}

struct featurize_ctx {
    struct model_feats *f;
    int bits;
    char prev[TEXT_MAX_TOKEN + 1];
    int n_prev;
    int rc;
};

static int on_word(void *ctx, const char *token, int n_token, int start, int end)
{
    struct featurize_ctx *c = ctx;
    (void)start;
    (void)end;
    uint64_t h = cd_fnv1a64(CD_FNV64_INIT, "w", 1);
    h = cd_fnv1a64(h, token, (size_t)n_token);
    if ((c->rc = feats_add(c->f, hash_finish(h, c->bits), GROUP_WORD)))
        return 1;
    /* Bigram with the previous word ("^" at the start of the message). */
    uint64_t b = cd_fnv1a64(CD_FNV64_INIT, "b", 1);
    b = cd_fnv1a64(b, c->prev, (size_t)c->n_prev);
    b = cd_fnv1a64(b, " ", 1);
    b = cd_fnv1a64(b, token, (size_t)n_token);
    if ((c->rc = feats_add(c->f, hash_finish(b, c->bits), GROUP_PAIR)))
        return 1;
    memcpy(c->prev, token, (size_t)n_token);
    c->n_prev = n_token;
    return 0;
}

static int on_chars(void *ctx, const char *token, int n_token, int start, int end)
{
    struct featurize_ctx *c = ctx;
    (void)start;
    (void)end;
    char w[TEXT_MAX_TOKEN + 3];
    int n = 0;
    w[n++] = '<';
    memcpy(w + n, token, (size_t)n_token);
    n += n_token;
    w[n++] = '>';
    for (int len = 3; len <= 4; len++)
        for (int i = 0; i + len <= n; i++) {
            /* Skip n-grams that start inside a UTF-8 sequence. */
            if (((unsigned char)w[i] & 0xc0) == 0x80)
                continue;
            uint64_t h = cd_fnv1a64(CD_FNV64_INIT, "c", 1);
            h = cd_fnv1a64(h, w + i, (size_t)len);
            if ((c->rc = feats_add(c->f, hash_finish(h, c->bits), GROUP_CHAR)))
                return 1;
        }
    return 0;
}

int model_featurize_analysed(const struct text_analysis *a, int hash_bits, struct model_feats *f)
{
    struct featurize_ctx c = {.f = f, .bits = hash_bits, .prev = "^", .n_prev = 1};
    if (f->n && f->slot)
        memset(f->slot, 0xff, (size_t)f->cap * 2 * sizeof *f->slot);
    f->n = 0;
    text_analysis_tokens(a, TEXT_KEEP_STOPWORDS, on_word, &c);
    if (c.rc)
        return c.rc;
    if (c.n_prev > 1 || c.prev[0] != '^') {
        uint64_t b = cd_fnv1a64(CD_FNV64_INIT, "b", 1);
        b = cd_fnv1a64(b, c.prev, (size_t)c.n_prev);
        b = cd_fnv1a64(b, " $", 2);
        if ((c.rc = feats_add(f, hash_finish(b, hash_bits), GROUP_PAIR)))
            return c.rc;
    }
    text_analysis_tokens(a, TEXT_KEEP_STOPWORDS | TEXT_NO_STEM, on_chars, &c);
    return c.rc;
}

int model_featurize(struct text_tokenizer *tok, const char *text, size_t n, int hash_bits,
                    struct model_feats *f)
{
    struct text_analysis a = {0};
    int rc = text_analyse(tok, text, n, &a);
    if (rc == 0)
        rc = model_featurize_analysed(&a, hash_bits, f);
    text_analysis_free(&a);
    return rc;
}

/* Maps raw features to model features with weights (log-count x IDF, L2 per
 * group, times the group weight). Returns how many are known. */
static int vectorize(const struct model *m, const struct model_feats *f, int *feat, float *value)
{
    double norm[N_GROUPS] = {0, 0};
    int k = 0;
    for (int i = 0; i < f->n; i++) {
        int32_t j = m->bucket_feature[f->bucket[i]];
        if (j < 0)
            continue;
        float v = (f->count[i] > 1.0f ? 1.0f + logf(f->count[i]) : 1.0f) * m->idf[j];
        feat[k] = j;
        value[k] = v;
        norm[NORM_GROUP(f->group[i])] += (double)v * v;
        k++;
    }
    float scale[N_GROUPS];
    for (int g = 0; g < N_GROUPS; g++)
        scale[g] = norm[g] > 0 ? group_weight[g] / (float)sqrt(norm[g]) : 0;
    int k2 = 0;
    for (int i = 0; i < f->n; i++) {
        if (m->bucket_feature[f->bucket[i]] < 0)
            continue;
        value[k2] *= scale[NORM_GROUP(f->group[i])];
        k2++;
    }
    return k;
}

static int scratch_reserve(struct model_scratch *s, int n, int n_classes)
{
    if (n > s->cap) {
        if (cd_resize(&s->feat, (size_t)n, sizeof *s->feat) ||
            cd_resize(&s->value, (size_t)n, sizeof *s->value))
            return CD_ENOMEM;
        s->cap = n;
    }
    if (n_classes > s->n_sums) {
        if (cd_resize(&s->sums, (size_t)n_classes, sizeof *s->sums))
            return CD_ENOMEM;
        s->n_sums = n_classes;
    }
    return 0;
}

int model_logits(const struct model *m, const struct model_feats *f, struct model_scratch *s,
                 double *logits)
{
    int K = m->n_classes;
    for (int k = 0; k < K; k++)
        logits[k] = m->bias[k];
    if (scratch_reserve(s, f->n, K))
        return 0;
    /* Float sums so the per-feature loop over classes vectorises. */
    float *restrict z = s->sums;
    for (int k = 0; k < K; k++)
        z[k] = 0;
    int n = vectorize(m, f, s->feat, s->value);
    for (int i = 0; i < n; i++) {
        const float *restrict w = m->weights + (size_t)s->feat[i] * K;
        float v = s->value[i];
        for (int k = 0; k < K; k++)
            z[k] += v * w[k];
    }
    for (int k = 0; k < K; k++)
        logits[k] += z[k];
    return n;
}

double model_known_share(const struct model *m, const struct model_feats *f)
{
    int n = 0, k = 0;
    for (int i = 0; i < f->n; i++)
        if (f->group[i] != GROUP_CHAR) {
            n++;
            k += m->bucket_feature[f->bucket[i]] >= 0;
        }
    return n ? (double)k / n : 1.0;
}

int model_unknown_words(const struct model *m, const struct model_feats *f, int *n_words)
{
    int n = 0, k = 0;
    for (int i = 0; i < f->n; i++)
        if (f->group[i] == GROUP_WORD) {
            n++;
            k += m->bucket_feature[f->bucket[i]] < 0;
        }
    if (n_words)
        *n_words = n;
    return k;
}

void model_softmax(const double *logits, int n, double temperature, double *p)
{
    double mx = -INFINITY;
    for (int k = 0; k < n; k++)
        if (logits[k] > mx)
            mx = logits[k];
    double sum = 0;
    for (int k = 0; k < n; k++) {
        p[k] = exp((logits[k] - mx) / temperature);
        sum += p[k];
    }
    for (int k = 0; k < n; k++)
        p[k] /= sum;
}

static double nll_at(const double *logits, const int *labels, int n, int K, double t)
{
    double total = 0;
    for (int i = 0; i < n; i++) {
        const double *z = logits + (size_t)i * K;
        double mx = -INFINITY;
        for (int k = 0; k < K; k++)
            if (z[k] > mx)
                mx = z[k];
        /* The label's own term is exp(0) at most: sum >= its share > 0. */
        double sum = 1e-300;
        for (int k = 0; k < K; k++)
            sum += exp((z[k] - mx) / t);
        total += log(sum) - (z[labels[i]] - mx) / t;
    }
    return total;
}

double model_fit_temperature(const double *logits, const int *labels, int n, int n_classes)
{
    if (n <= 0)
        return 1.0;
    /* The NLL is unimodal in log(t): golden-section search over [0.05, 20]. */
    double lo = log(0.05), hi = log(20.0);
    const double g = 0.6180339887498949;
    double a = hi - g * (hi - lo), b = lo + g * (hi - lo);
    double fa = nll_at(logits, labels, n, n_classes, exp(a));
    double fb = nll_at(logits, labels, n, n_classes, exp(b));
    for (int it = 0; it < 40; it++) {
        if (fa < fb) {
            hi = b;
            b = a;
            fb = fa;
            a = hi - g * (hi - lo);
            fa = nll_at(logits, labels, n, n_classes, exp(a));
        } else {
            lo = a;
            a = b;
            fa = fb;
            b = lo + g * (hi - lo);
            fb = nll_at(logits, labels, n, n_classes, exp(b));
        }
    }
    return exp((lo + hi) / 2);
}

static uint32_t rng_next(uint64_t *state)
{
    *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(*state >> 33);
}

void model_free(struct model *m)
{
    if (!m)
        return;
    free(m->bucket_feature);
    free(m->idf);
    free(m->weights);
    free(m->bias);
    free(m);
}

int model_n_classes(const struct model *m)
{
    return m->n_classes;
}

int model_hash_bits(const struct model *m)
{
    return m->hash_bits;
}

int model_n_features(const struct model *m)
{
    return m->n_features;
}

/* One SGD step on example (feat, value, n) of class label. */
static void train_step(struct model *m, const int *feat, const float *value, int n, int label,
                       double lr, double *scale, double l2, float *restrict z, int *active)
{
    int K = m->n_classes;
    for (int k = 0; k < K; k++)
        z[k] = m->bias[k];
    for (int a = 0; a < n; a++) {
        const float *restrict w = m->weights + (size_t)feat[a] * K;
        float v = (float)(value[a] * *scale);
        for (int k = 0; k < K; k++)
            z[k] += v * w[k];
    }
    float mx = z[0];
    for (int k = 1; k < K; k++)
        if (z[k] > mx)
            mx = z[k];
    float sum = 0;
    for (int k = 0; k < K; k++) {
        z[k] = expf(z[k] - mx);
        sum += z[k];
    }
    int n_active = 0;
    for (int k = 0; k < K; k++) {
        z[k] /= sum;
        if (k == label)
            z[k] -= 1.0f;
        if (z[k] > 1e-4f || z[k] < -1e-4f)
            active[n_active++] = k;
    }
    *scale *= 1.0 - lr * l2;
    for (int a = 0; a < n; a++) {
        float *restrict w = m->weights + (size_t)feat[a] * K;
        float v = (float)(lr * value[a] / *scale);
        if (n_active * 4 < K) {
            for (int q = 0; q < n_active; q++)
                w[active[q]] -= v * z[active[q]];
        } else {
            for (int k = 0; k < K; k++)
                w[k] -= v * z[k];
        }
    }
    for (int q = 0; q < n_active; q++)
        m->bias[active[q]] -= (float)(lr * z[active[q]]);
    if (*scale < 1e-3) {
        size_t nw = (size_t)m->n_features * K;
        for (size_t q = 0; q < nw; q++)
            m->weights[q] *= (float)*scale;
        *scale = 1.0;
    }
}

/* Builds the feature map and IDF from the training examples. */
static int build_vocabulary(struct model *m, const struct model_feats *feats, int n, int min_df)
{
    size_t n_buckets = (size_t)1 << m->hash_bits;
    int32_t *df = calloc(n_buckets, sizeof *df);
    if (!df)
        return CD_ENOMEM;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < feats[i].n; j++)
            df[feats[i].bucket[j]]++;
    int n_features = 0;
    for (size_t b = 0; b < n_buckets; b++)
        if (df[b] >= min_df)
            n_features++;
    m->idf = malloc((size_t)(n_features ? n_features : 1) * sizeof *m->idf);
    if (!m->idf) {
        free(df);
        return CD_ENOMEM;
    }
    int j = 0;
    for (size_t b = 0; b < n_buckets; b++) {
        if (df[b] >= min_df) {
            m->idf[j] = (float)(log((1.0 + n) / (1.0 + df[b])) + 1.0);
            m->bucket_feature[b] = j++;
        } else {
            m->bucket_feature[b] = -1;
        }
    }
    m->n_features = n_features;
    free(df);
    return 0;
}

static void resolve_options(const struct model_options *options, struct model_options *o)
{
    struct model_options d = {
        .epochs = 12, .hash_bits = 18, .l2 = 1e-6, .lr = 0.5, .seed = 1, .min_df = 1};
    *o = d;
    if (!options)
        return;
    if (options->epochs > 0)
        o->epochs = options->epochs;
    if (options->hash_bits >= 10 && options->hash_bits <= 24)
        o->hash_bits = options->hash_bits;
    if (options->l2 > 0)
        o->l2 = options->l2;
    if (options->lr > 0)
        o->lr = options->lr;
    if (options->seed)
        o->seed = options->seed;
    if (options->min_df > 0)
        o->min_df = options->min_df;
}

struct model *model_new(const struct model_feats *feats, int n, int n_classes,
                        const struct model_options *options)
{
    struct model_options o;
    resolve_options(options, &o);
    if (n <= 0 || n_classes <= 0)
        return NULL;
    struct model *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->n_classes = n_classes;
    m->hash_bits = o.hash_bits;
    m->bucket_feature = malloc(((size_t)1 << o.hash_bits) * sizeof *m->bucket_feature);
    m->bias = calloc((size_t)n_classes, sizeof *m->bias);
    if (!m->bucket_feature || !m->bias || build_vocabulary(m, feats, n, o.min_df))
        goto fail;
    m->weights = calloc((size_t)m->n_features * n_classes + 1, sizeof *m->weights);
    if (!m->weights)
        goto fail;
    return m;
fail:
    model_free(m);
    return NULL;
}

int model_fit(struct model *m, const struct model_feats *feats, const int *labels, int n,
              int epochs, double lr0, const struct model_options *options)
{
    struct model_options o;
    resolve_options(options, &o);
    int K = m->n_classes, rc = CD_ENOMEM;
    int **x_feat = calloc((size_t)(n ? n : 1), sizeof *x_feat);
    float **x_value = calloc((size_t)(n ? n : 1), sizeof *x_value);
    int *x_n = calloc((size_t)(n ? n : 1), sizeof *x_n);
    int *order = malloc((size_t)(n ? n : 1) * sizeof *order);
    float *pf = malloc((size_t)K * sizeof *pf);
    int *active = malloc((size_t)K * sizeof *active);
    if (!x_feat || !x_value || !x_n || !order || !pf || !active)
        goto done;
    for (int i = 0; i < n; i++) {
        int cap = feats[i].n ? feats[i].n : 1;
        x_feat[i] = malloc((size_t)cap * sizeof **x_feat);
        x_value[i] = malloc((size_t)cap * sizeof **x_value);
        if (!x_feat[i] || !x_value[i])
            goto done;
        x_n[i] = vectorize(m, &feats[i], x_feat[i], x_value[i]);
        order[i] = i;
    }

    /* SGD on the softmax cross-entropy, the rate decaying linearly to 0; L2
     * as a shared scale on the weights (w_true = scale * w_stored) so each
     * step stays sparse. Scores are floats so the per-feature loops over
     * classes vectorise. */
    uint64_t rng = o.seed;
    long total = (long)epochs * n, step = 0;
    double scale = 1.0;
    for (int epoch = 0; epoch < epochs; epoch++) {
        for (int i = n - 1; i > 0; i--) {
            int j = (int)(rng_next(&rng) % (uint32_t)(i + 1));
            int t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        for (int r = 0; r < n; r++, step++) {
            int i = order[r];
            double lr = lr0 * (1.0 - (double)step / (double)total);
            if (lr < lr0 * 1e-3)
                lr = lr0 * 1e-3;
            train_step(m, x_feat[i], x_value[i], x_n[i], labels[i], lr, &scale, o.l2, pf, active);
        }
    }
    size_t nw = (size_t)m->n_features * K;
    for (size_t q = 0; q < nw; q++)
        m->weights[q] *= (float)scale;
    rc = 0;
done:
    for (int i = 0; i < n && x_feat && x_value; i++) {
        free(x_feat[i]);
        free(x_value[i]);
    }
    free(x_feat);
    free(x_value);
    free(x_n);
    free(order);
    free(pf);
    free(active);
    return rc;
}

struct model *model_train(const struct model_feats *feats, const int *labels, int n, int n_classes,
                          const struct model_options *options)
{
    struct model_options o;
    resolve_options(options, &o);
    struct model *m = model_new(feats, n, n_classes, &o);
    if (m && model_fit(m, feats, labels, n, o.epochs, o.lr, &o)) {
        model_free(m);
        m = NULL;
    }
    return m;
}

struct model_index {
    int n_examples;
    int *start;   /* n_features + 1: feature j's postings are [start[j], start[j + 1]) */
    int *example; /* posting: example */
    float *value; /* posting: the example's unit-normalised weight */
};

void model_index_free(struct model_index *ix)
{
    if (!ix)
        return;
    free(ix->start);
    free(ix->example);
    free(ix->value);
    free(ix);
}

/* Unit-normalises the k weighted values (vectorize()) in place. */
static void unit_normalise(float *value, int k)
{
    double ss = 0;
    for (int i = 0; i < k; i++)
        ss += (double)value[i] * value[i];
    float inv = ss > 0 ? (float)(1.0 / sqrt(ss)) : 0;
    for (int i = 0; i < k; i++)
        value[i] *= inv;
}

struct model_index *model_index_new(const struct model *m, const struct model_feats *feats, int n)
{
    struct model_index *ix = calloc(1, sizeof *ix);
    int max_n = 1;
    for (int i = 0; i < n; i++)
        if (feats[i].n > max_n)
            max_n = feats[i].n;
    int *feat = malloc((size_t)max_n * sizeof *feat);
    float *value = malloc((size_t)max_n * sizeof *value);
    if (!ix || !feat || !value)
        goto fail;
    ix->n_examples = n;
    ix->start = calloc((size_t)m->n_features + 1, sizeof *ix->start);
    if (!ix->start)
        goto fail;
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        int k = vectorize(m, &feats[i], feat, value);
        for (int a = 0; a < k; a++)
            ix->start[feat[a] + 1]++;
        total += (size_t)k;
    }
    for (int j = 0; j < m->n_features; j++)
        ix->start[j + 1] += ix->start[j];
    ix->example = malloc((total ? total : 1) * sizeof *ix->example);
    ix->value = malloc((total ? total : 1) * sizeof *ix->value);
    int *fill = malloc(((size_t)m->n_features + 1) * sizeof *fill);
    if (!ix->example || !ix->value || !fill) {
        free(fill);
        goto fail;
    }
    memcpy(fill, ix->start, ((size_t)m->n_features + 1) * sizeof *fill);
    for (int i = 0; i < n; i++) {
        int k = vectorize(m, &feats[i], feat, value);
        unit_normalise(value, k);
        for (int a = 0; a < k; a++) {
            int q = fill[feat[a]]++;
            ix->example[q] = i;
            ix->value[q] = value[a];
        }
    }
    free(fill);
    free(feat);
    free(value);
    return ix;
fail:
    free(feat);
    free(value);
    model_index_free(ix);
    return NULL;
}

double model_index_nearest(const struct model_index *ix, const struct model *m,
                           const struct model_feats *f, struct model_scratch *s)
{
    if (!ix || ix->n_examples == 0 || scratch_reserve(s, f->n, m->n_classes))
        return 0;
    if (s->n_acc < ix->n_examples) {
        if (cd_resize_zeroed(&s->acc, (size_t)s->n_acc, (size_t)ix->n_examples, sizeof *s->acc) ||
            cd_resize(&s->touched, (size_t)ix->n_examples, sizeof *s->touched))
            return 0;
        s->n_acc = ix->n_examples;
    }
    int k = vectorize(m, f, s->feat, s->value);
    unit_normalise(s->value, k);
    int n_touched = 0;
    for (int a = 0; a < k; a++) {
        float v = s->value[a];
        for (int q = ix->start[s->feat[a]]; q < ix->start[s->feat[a] + 1]; q++) {
            int e = ix->example[q];
            if (s->acc[e] == 0)
                s->touched[n_touched++] = e;
            s->acc[e] += v * ix->value[q];
        }
    }
    float best = 0;
    for (int t = 0; t < n_touched; t++) {
        if (s->acc[s->touched[t]] > best)
            best = s->acc[s->touched[t]];
        s->acc[s->touched[t]] = 0;
    }
    return best > 1 ? 1.0 : (double)best;
}
