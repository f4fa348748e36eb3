/* kb_search: turning a customer's question into a query (terms, joined words, typo repair,
 * the phrases worth matching), both stage-one paths (the in-memory postings and FTS5 with the
 * kb_rank() auxiliary function, which give the same hits and scores), BM25F with proximity,
 * and stage two: rescoring the best candidates by how closely the question matches each
 * article's phrasings. Customer text never reaches FTS5 as syntax. */
#include "kb_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- kb_rank(): the stage-one FTS5 auxiliary ranking function --------------------------- */

/* Fills the query's idf (from each term's df), its norms, and each column's average length
 * and BM25 length norm, for an index of n_rows rows with totals[c] tokens in column c. Both
 * stage-one paths (kb_rank() and search_memory()) weigh a query here. */
static void query_set_weights(struct kb_query *q, int64_t n_rows, const int64_t *totals)
{
    if (n_rows < 1)
        n_rows = 1;
    q->idf_sum = q->idf2_sum = 0;
    q->n_rows = n_rows;
    for (int i = 0; i < q->n_terms; i++) {
        double df = (double)q->terms[i].df;
        if (df > (double)n_rows)
            df = (double)n_rows;
        double idf = log(1.0 + ((double)n_rows - df + 0.5) / (df + 0.5));
        q->terms[i].idf = idf > 1e-6 ? idf : 1e-6;
        q->idf_sum += q->terms[i].idf;
        q->idf2_sum += q->terms[i].idf * q->terms[i].idf;
    }
    for (int c = 0; c < KB_N_COLS; c++) {
        q->avg_len[c] = (double)totals[c] / (double)n_rows;
        if (q->avg_len[c] < 1)
            q->avg_len[c] = 1;
        q->norm_a[c] = 1.0 - q->tune->b_col[c];
        q->norm_k[c] = q->tune->b_col[c] / q->avg_len[c];
    }
    q->has_idf = 1;
}

/* query_set_weights() from FTS5's row count and column totals. */
static int query_prepare_idf(const Fts5ExtensionApi *api, Fts5Context *fts, struct kb_query *q)
{
    sqlite3_int64 n_rows = 0;
    int64_t totals[KB_N_COLS];
    int rc = api->xRowCount(fts, &n_rows);
    for (int c = 0; c < KB_N_COLS && rc == SQLITE_OK; c++) {
        sqlite3_int64 total = 0;
        rc = api->xColumnTotalSize(fts, c, &total);
        totals[c] = total;
    }
    if (rc != SQLITE_OK)
        return rc;
    query_set_weights(q, n_rows, totals);
    return SQLITE_OK;
}

/* One row's score, summed over its instances of the query's terms as they come in column,
 * then offset order: BM25F term frequencies and the proximity bonus. */
struct row_score {
    double norm[KB_N_COLS];
    double tf[KB_MAX_QUERY_TERMS];
    double proximity;
    int prev_term, prev_col, prev_off;
};

static void row_score_begin(const struct kb_query *q, struct row_score *r, const int *lens)
{
    for (int c = 0; c < KB_N_COLS; c++)
        r->norm[c] = q->norm_a[c] + q->norm_k[c] * (double)lens[c];
    for (int t = 0; t < q->n_terms; t++)
        r->tf[t] = 0;
    r->proximity = 0;
    r->prev_term = r->prev_col = -1;
    r->prev_off = -10;
}

static void row_score_add(const struct kb_query *q, struct row_score *r, int term, int col, int off)
{
    r->tf[term] += q->tune->w_col[col] / r->norm[col];
    /* Reward two different query terms within two positions of each other (stop words are
     * not counted). */
    if (col == r->prev_col && term != r->prev_term && off - r->prev_off <= 2) {
        double a = q->terms[term].idf, b = q->terms[r->prev_term].idf;
        r->proximity += a < b ? a : b;
    }
    r->prev_term = term;
    r->prev_col = col;
    r->prev_off = off;
}

/* BM25F times coverage, plus proximity, normalised by the best any article could score for
 * this question, so scores compare across questions: each part is in [0, 1]. */
static double row_score_end(const struct kb_query *q, const struct row_score *r)
{
    const struct kb_tune *tn = q->tune;
    double bm25 = 0, covered = 0;
    for (int t = 0; t < q->n_terms; t++) {
        if (r->tf[t] <= 0)
            continue;
        bm25 += q->terms[t].idf * r->tf[t] * (tn->k1 + 1) / (tn->k1 + r->tf[t]);
        covered += q->terms[t].idf;
    }
    double coverage = q->idf_sum > 0 ? covered / q->idf_sum : 0;
    double best = q->idf_sum * (tn->k1 + 1);
    double score = best > 0 ? bm25 / best : 0;
    if (tn->coverage_pow != 0)
        score *= pow(coverage, tn->coverage_pow);
    double prox = q->idf_sum > 0 ? r->proximity / q->idf_sum : 0;
    score += tn->proximity * (prox < 1 ? prox : 1);
    return score;
}

/* kb_rank(fts_table, query_pointer): BM25F times coverage, plus proximity. Higher is better. */
void kb_rank_fn(const Fts5ExtensionApi *api, Fts5Context *fts, sqlite3_context *ctx, int n_args,
                sqlite3_value **args)
{
    struct kb_query *q = n_args == 1 ? sqlite3_value_pointer(args[0], "kb_query") : NULL;
    if (!q || q->n_terms == 0) {
        sqlite3_result_double(ctx, 0);
        return;
    }
    int rc = SQLITE_OK;
    if (!q->has_idf && (rc = query_prepare_idf(api, fts, q)) != SQLITE_OK) {
        sqlite3_result_error_code(ctx, rc);
        return;
    }
    sqlite3_int64 rid = api->xRowid(fts);
    const struct df_map *m = q->stats;
    int lens[KB_N_COLS];
    for (int c = 0; c < KB_N_COLS; c++) {
        lens[c] = 0;
        if (m && m->is_valid && rid >= 0 && rid < m->n_lens)
            lens[c] = m->lens[rid].len[c];
        else if ((rc = api->xColumnSize(fts, c, &lens[c])) != SQLITE_OK) {
            sqlite3_result_error_code(ctx, rc);
            return;
        }
    }
    struct row_score r;
    row_score_begin(q, &r, lens);
    int n_inst = 0;
    if ((rc = api->xInstCount(fts, &n_inst)) != SQLITE_OK) {
        sqlite3_result_error_code(ctx, rc);
        return;
    }
    for (int i = 0; i < n_inst; i++) {
        int phrase, col, off;
        if (api->xInst(fts, i, &phrase, &col, &off) != SQLITE_OK)
            break;
        if (phrase < 0 || phrase >= q->n_phrases || col < 0 || col >= KB_N_COLS)
            continue;
        row_score_add(q, &r, q->phrase_term[phrase], col, off);
    }
    double score = row_score_end(q, &r);
    sqlite3_result_double(ctx, score);
}

/* ---- search ----------------------------------------------------------------------------- */

#define KB_MAX_JOINS 4 /* pairs of neighbouring words tried as one ("git hub") */

static uint64_t stem_bit(const char *s, size_t n)
{
    return 1ull << (((unsigned char)s[0] * 31u + (unsigned)n) & 63);
}

/* Sets the query's stem mask: its terms are final (choose_phrases() has run). */
static void query_seal(struct kb_query *q)
{
    q->stem_mask = 0;
    for (int i = 0; i < q->n_terms; i++)
        q->stem_mask |= stem_bit(q->terms[i].stem, (size_t)q->terms[i].n_stem);
    q->has_mask = 1;
}

/* Returns the index of the term with stem s, or -1. Passages and phrasings ask for every stem
 * they have, mostly absent ones: the mask turns most of those away at once. */
int kb_find_stem(const struct kb_query *q, const char *s, size_t n)
{
    if (n == 0 || (q->has_mask && !(q->stem_mask & stem_bit(s, n))))
        return -1;
    for (int i = 0; i < q->n_terms; i++)
        if ((size_t)q->terms[i].n_stem == n && q->terms[i].stem[0] == s[0] &&
            !memcmp(q->terms[i].stem, s, n))
            return i;
    return -1;
}

static int64_t entry_df(const struct df_entry *e)
{
    int64_t df = 0;
    for (int c = 0; c < KB_N_COLS; c++)
        if (e->col_df[c] > df)
            df = e->col_df[c];
    return df;
}

struct first_stem {
    char stem[TEXT_MAX_TOKEN + 1];
    int n;
};

static int first_stem_cb(void *ctx, const char *token, int n_token, int start, int end)
{
    (void)start;
    (void)end;
    struct first_stem *f = ctx;
    if (f->n || n_token > TEXT_MAX_TOKEN)
        return 1;
    memcpy(f->stem, token, (size_t)n_token);
    f->stem[n_token] = '\0';
    f->n = n_token;
    return 1;
}

struct query_build {
    struct kb_query *q;
    const char *text;
    int prev_start, prev_end; /* the previous word, -1 before the first */
    int n_joins;
    int join[KB_MAX_JOINS][3]; /* start of the first word, end of the first, end of second */
};

static int query_term_cb(void *ctx, const char *token, int n_token, int start, int end)
{
    struct query_build *b = ctx;
    struct kb_query *q = b->q;
    if (n_token <= 0 || n_token > TEXT_MAX_TOKEN)
        return 0;
    /* Two words with only a space or a hyphen between them may be one split word. */
    if (b->prev_start >= 0 && b->n_joins < KB_MAX_JOINS && start - b->prev_end == 1 &&
        (b->text[b->prev_end] == ' ' || b->text[b->prev_end] == '-')) {
        int *j = b->join[b->n_joins++];
        j[0] = b->prev_start;
        j[1] = b->prev_end;
        j[2] = end;
    }
    b->prev_start = start;
    b->prev_end = end;
    for (int i = 0; i < q->n_terms; i++)
        if (q->terms[i].n_stem == n_token && !memcmp(q->terms[i].stem, token, (size_t)n_token))
            return 0;
    if (q->n_terms == KB_MAX_QUERY_TERMS) {
        q->is_truncated = 1;
        return 1; /* stop: enough terms */
    }
    struct kb_term *t = &q->terms[q->n_terms++];
    memcpy(t->stem, token, (size_t)n_token);
    t->stem[n_token] = '\0';
    t->n_stem = n_token;
    t->start = start;
    t->end = end;
    t->idf = 1;
    return 0;
}

/* Adds the stem of each pair of neighbouring words written as one ("git hub" -> "github",
 * "e-mail" -> "email") when the KB has that word and the question does not. */
static void add_joined_words(struct kb_lang_index *li, struct query_build *b)
{
    struct kb_query *q = b->q;
    if (!li->df_map->is_valid && kb_df_map_build(li) != 0)
        return;
    for (int i = 0; i < b->n_joins && q->n_terms < KB_MAX_QUERY_TERMS; i++) {
        char word[2 * TEXT_MAX_TOKEN + 8];
        int *j = b->join[i];
        int n1 = j[1] - j[0], n2 = j[2] - (j[1] + 1);
        if (n1 + n2 >= (int)sizeof word || n1 <= 0 || n2 <= 0)
            continue;
        memcpy(word, b->text + j[0], (size_t)n1);
        memcpy(word + n1, b->text + j[1] + 1, (size_t)n2);
        struct first_stem f = {.n = 0};
        kb_tok_tokenize(li->tok, word, (size_t)(n1 + n2), first_stem_cb, &f);
        if (f.n == 0 || kb_find_stem(q, f.stem, (size_t)f.n) >= 0)
            continue;
        const struct df_entry *e = kb_df_find(li->df_map, f.stem, (size_t)f.n, 0);
        if (!e || entry_df(e) == 0)
            continue;
        struct kb_term *t = &q->terms[q->n_terms++];
        memset(t, 0, sizeof *t);
        memcpy(t->stem, f.stem, (size_t)f.n);
        t->n_stem = f.n;
        t->idf = 1;
    }
}

/* Builds the FTS5 MATCH expression: each chosen term's stem as a quoted raw-stem string,
 * OR-joined, some limited to the title and question columns. Nothing else gets in. */
static int build_match(const struct kb_query *q, struct cd_buf *m)
{
    cd_buf_reset(m);
    for (int i = 0; i < q->n_phrases; i++) {
        const struct kb_term *t = &q->terms[q->phrase_term[i]];
        if (i && cd_buf_puts(m, " OR "))
            return CD_ENOMEM;
        if (q->is_head_only[i] && cd_buf_puts(m, "{title questions learned} : "))
            return CD_ENOMEM;
        char raw = KB_RAW_STEM;
        if (cd_buf_append(m, "\"", 1) || cd_buf_append(m, &raw, 1))
            return CD_ENOMEM;
        for (int k = 0; k < t->n_stem; k++) {
            if (t->stem[k] == '"' && cd_buf_append(m, "\"", 1))
                return CD_ENOMEM;
            if (cd_buf_append(m, &t->stem[k], 1))
                return CD_ENOMEM;
        }
        if (cd_buf_append(m, "\"", 1))
            return CD_ENOMEM;
    }
    return 0;
}

struct kb_candidate {
    sqlite3_int64 rid;
    double stage1;
    double phrasing;
    double match; /* the best single phrasing's similarity */
    double score;
    int lang_rank; /* 0 for the requested language's table */
};

/* How well the question matches one phrasing (a line of stems): the harmonic mean of the
 * question weight it covers and the share of its own stems the question has. */
static double phrasing_similarity(const struct kb_query *q, const char *line, size_t n)
{
    double covered = 0;
    int n_stems = 0, n_matched = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && line[j] != ' ')
            j++;
        if (j > i) {
            n_stems++;
            int t = kb_find_stem(q, line + i, j - i);
            if (t >= 0) {
                covered += q->terms[t].idf;
                n_matched++;
            }
        }
        i = j + 1;
    }
    if (n_matched == 0 || q->idf_sum <= 0)
        return 0;
    double a = covered / q->idf_sum, b = (double)n_matched / n_stems;
    return 2 * a * b / (a + b);
}

/* The cosine of the question and one phrasing (a line of stems), both weighted by idf. */
static double phrasing_cosine(const struct kb_query *q, const char *line, size_t n)
{
    double dot = 0, norm = 0, n_rows = (double)(q->n_rows > 0 ? q->n_rows : 1);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && line[j] != ' ')
            j++;
        if (j > i) {
            int t = kb_find_stem(q, line + i, j - i);
            double idf;
            if (t >= 0) {
                idf = q->terms[t].idf;
                dot += idf * idf;
            } else {
                const struct df_entry *e =
                    q->stats ? kb_df_find((struct df_map *)q->stats, line + i, j - i, 0) : NULL;
                double df = 0;
                for (int c = 0; e && c < KB_N_COLS; c++)
                    if (e->col_df[c] > df)
                        df = e->col_df[c];
                idf = log(1.0 + (n_rows - df + 0.5) / (df + 0.5));
            }
            norm += idf * idf;
        }
        i = j + 1;
    }
    if (dot <= 0 || norm <= 0 || q->idf2_sum <= 0)
        return 0;
    return dot / sqrt(norm * q->idf2_sum);
}

/* best + phrasing_second x second-best similarity over the article's phrasings; the best
 * alone into *top. */
static double best_phrasing(const struct kb_query *q, const char *qterms, double *top)
{
    double best = 0, second = 0;
    for (const char *p = qterms; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        double s =
            q->tune->phrasing_cos > 0 ? phrasing_cosine(q, p, len) : phrasing_similarity(q, p, len);
        if (s > best) {
            second = best;
            best = s;
        } else if (s > second)
            second = s;
        if (!nl)
            break;
        p = nl + 1;
    }
    *top = best;
    return best + q->tune->phrasing_second * second;
}

static int cmp_candidates(const void *x, const void *y)
{
    const struct kb_candidate *a = x, *b = y;
    if (a->lang_rank != b->lang_rank)
        return a->lang_rank - b->lang_rank;
    if (a->score != b->score)
        return a->score < b->score ? 1 : -1;
    return a->rid < b->rid ? -1 : a->rid > b->rid;
}

/* Returns 1 if a and b differ by at most one insertion, deletion, substitution or swap of
 * two neighbouring bytes. */
static int within_one_edit(const char *a, size_t na, const char *b, size_t nb)
{
    if (na > nb + 1 || nb > na + 1)
        return 0;
    size_t i = 0;
    while (i < na && i < nb && a[i] == b[i])
        i++;
    if (na == nb)
        return i == na || !memcmp(a + i + 1, b + i + 1, na - i - 1) ||
               (i + 1 < na && a[i] == b[i + 1] && a[i + 1] == b[i] &&
                !memcmp(a + i + 2, b + i + 2, na - i - 2));
    if (na > nb)
        return !memcmp(a + i + 1, b + i, nb - i);
    return !memcmp(a + i, b + i + 1, na - i);
}

static int stem_cmp(const char *a, size_t na, const char *b, size_t nb)
{
    int cmp = memcmp(a, b, na < nb ? na : nb);
    return cmp ? cmp : (na > nb) - (na < nb);
}

/* The known stem a word no article has would be read as, if it is a typo: the most frequent
 * stem one edit away (then the first in byte order), for words of five bytes or more; NULL if
 * there is none. */
static const struct df_entry *typo_of(const struct df_map *m, const char *s, size_t n)
{
    if (n < 5 || n > TEXT_MAX_TOKEN)
        return NULL;
    const struct df_entry *best = NULL;
    int64_t best_df = 0;
    /* Known stems one byte shorter, as long, or one longer. */
    uint32_t sig = kb_byte_sig(s, n);
    for (size_t len = n - 1; len <= n + 1 && len <= TEXT_MAX_TOKEN; len++) {
        for (uint32_t k = 0; k < m->by_len[len].n; k++) {
            uint32_t diff = sig ^ m->by_len[len].sig[k];
            diff &= diff - 1;
            if (diff & (diff - 1))
                continue; /* three bits or more differ */
            const char *stem = m->pool.data + m->by_len[len].at[k];
            if (!within_one_edit(s, n, stem, len))
                continue;
            const struct df_entry *e = kb_df_find((struct df_map *)m, stem, len, 0);
            int64_t df = e ? entry_df(e) : 0;
            if (df > best_df ||
                (df == best_df && df > 0 &&
                 stem_cmp(stem, len, m->pool.data + best->stem_at, best->n_stem) < 0))
                best = e, best_df = df;
        }
    }
    return best;
}

/* A term no article has may be a typo: replaces it with typo_of() it, if there is one (a few
 * per question). */
static void fix_typos(const struct df_map *m, struct kb_query *q)
{
    int n_fixes = 0;
    for (int i = 0; i < q->n_terms && n_fixes < KB_MAX_FIXES; i++) {
        struct kb_term *t = &q->terms[i];
        /* A stem the map holds with no article left (a learned phrasing dropped or an
         * article edited since) is as unknown as one it never held, as after a restart. */
        const struct df_entry *e = kb_df_find((struct df_map *)m, t->stem, (size_t)t->n_stem, 0);
        if ((e && entry_df(e) > 0) || t->n_stem < 5)
            continue;
        n_fixes++;
        const struct df_entry *best = typo_of(m, t->stem, (size_t)t->n_stem);
        if (best && kb_find_stem(q, m->pool.data + best->stem_at, best->n_stem) < 0) {
            memcpy(t->stem, m->pool.data + best->stem_at, best->n_stem);
            t->stem[best->n_stem] = '\0';
            t->n_stem = best->n_stem;
        }
    }
}

_Static_assert(sizeof((struct kb_word *)0)->stem > TEXT_MAX_TOKEN, "kb_word.stem holds a stem");

int kb_word_df(struct kb *kb, const char *lang, const char *stem, size_t n, int try_typo,
               struct kb_word *out)
{
    memset(out, 0, sizeof *out);
    if (!kb || !stem || n == 0 || n > TEXT_MAX_TOKEN)
        return CD_EINVAL;
    memcpy(out->stem, stem, n);
    out->n_stem = (int)n;
    char code[8];
    int rc = 0;
    struct kb_lang_index *li = NULL;
    if (text_lang_code(lang && *lang ? lang : "en", code))
        li = kb_lang_index_get(kb, code, 0, &rc);
    if (!li)
        return rc;
    if (!li->df_map->is_valid && (rc = kb_df_map_build(li)))
        return rc;
    const struct df_map *m = li->df_map;
    out->n_articles = m->n_rows;
    const struct df_entry *e = kb_df_find((struct df_map *)m, stem, n, 0);
    if (e && entry_df(e) > 0) {
        out->df = entry_df(e);
        return 0;
    }
    if (try_typo && kb->tune.fix_typos > 0 && (e = typo_of(m, stem, n)) != NULL) {
        out->df = entry_df(e);
        out->is_typo = 1;
        memcpy(out->stem, m->pool.data + e->stem_at, e->n_stem);
        out->n_stem = e->n_stem;
    }
    return 0;
}

/* Looks up how many articles have each term (fts5vocab, per column), then picks the terms the
 * FTS5 query matches on so that it scores about KB_ROW_BUDGET rows at most, however large the
 * KB: rare terms first, in every column; a term too common for the budget matches only in
 * the title, questions and learned questions; one still too common is left out of the match
 * (it still counts in the question's weight and in stage two). A term matched only in those
 * columns still makes FTS5 read its whole doclist (the column filter is applied entry by
 * entry), which costs more than scoring the rows it finds: the terms matched may read about
 * KB_WALK_BUDGET doclist entries in all. The rarest term is always matched, so a question
 * with any known word finds something. */
static int choose_phrases(struct kb_lang_index *li, struct kb_query *q)
{
    int order[KB_MAX_QUERY_TERMS] = {0};
    if (!li->df_map->is_valid) {
        int rc = kb_df_map_build(li);
        if (rc)
            return rc;
    }
    if (q->tune->fix_typos > 0)
        fix_typos(li->df_map, q);
    for (int i = 0; i < q->n_terms; i++) {
        struct kb_term *t = &q->terms[i];
        const struct df_entry *e = kb_df_find(li->df_map, t->stem, (size_t)t->n_stem, 0);
        t->df = t->cost_head = 0;
        for (int c = 0; e && c < KB_N_COLS; c++) {
            if (e->col_df[c] > t->df)
                t->df = e->col_df[c]; /* at least this many articles have it */
            if (c < 3)
                t->cost_head += e->col_df[c];
        }
        /* Insertion sort by document frequency, rarest first. */
        int k = i;
        while (k > 0 && q->terms[order[k - 1]].df > t->df) {
            order[k] = order[k - 1];
            k--;
        }
        order[k] = i;
    }
    int64_t used = 0, walked = 0;
    q->n_phrases = 0;
    q->stats = li->df_map;
    int is_small = li->df_map->n_rows <= KB_ROW_BUDGET; /* all of it is within budget */
    for (int k = 0; k < q->n_terms; k++) {
        const struct kb_term *t = &q->terms[order[k]];
        int is_first = q->n_phrases == 0, head_only;
        if (t->df == 0)
            continue; /* in no article: nothing to match */
        if (is_small || used + t->df <= KB_ROW_BUDGET || (is_first && t->cost_head == 0))
            head_only = 0;
        else if ((used + t->cost_head <= KB_ROW_BUDGET && walked + t->df <= KB_WALK_BUDGET) ||
                 is_first)
            head_only = 1;
        else
            continue;
        walked += t->df;
        used += head_only ? t->cost_head : t->df;
        q->is_head_only[q->n_phrases] = head_only;
        q->phrase_term[q->n_phrases++] = order[k];
    }
    query_seal(q);
    return 0;
}

/* One matched phrase's walk through its term's postings. */
struct post_cursor {
    const uint32_t *at, *end;        /* the current entry; the list's end */
    const uint32_t *inst, *inst_end; /* the instances of the row being scored */
    int term;
    int is_head_only;
};

/* Scores one row from the instances of the phrases it has (cursors with inst set), exactly as
 * kb_rank_fn() scores it from FTS5's; returns -1 if no instance counts (a head-only term
 * found only in the tags or body). */
static double score_row(const struct kb_query *q, const struct df_map *m, uint32_t rid,
                        struct post_cursor *cur, int n_cur)
{
    /* Most rows a head-only phrase walks have the term only in the tags or body. */
    int is_counted = 0;
    for (int i = 0; i < n_cur && !is_counted; i++)
        is_counted = cur[i].inst && (!cur[i].is_head_only || (*cur[i].inst >> POST_COL_SHIFT) < 3);
    if (!is_counted)
        return -1;
    int lens[KB_N_COLS];
    for (int c = 0; c < KB_N_COLS; c++)
        lens[c] = rid < m->n_lens ? m->lens[rid].len[c] : 0;
    struct row_score r;
    row_score_begin(q, &r, lens);
    int n_inst = 0;
    for (;;) {
        /* The next instance in column, then offset order over every phrase. */
        int best = -1;
        uint32_t best_v = UINT32_MAX;
        for (int i = 0; i < n_cur; i++) {
            struct post_cursor *p = &cur[i];
            if (!p->inst || p->inst == p->inst_end)
                continue;
            if (p->is_head_only && (*p->inst >> POST_COL_SHIFT) >= 3) {
                p->inst = p->inst_end; /* instances are in column order: no more */
                continue;
            }
            if (*p->inst < best_v) {
                best_v = *p->inst;
                best = i;
            }
        }
        if (best < 0)
            break;
        cur[best].inst++;
        n_inst++;
        int col = (int)(best_v >> POST_COL_SHIFT);
        if (col < KB_N_COLS)
            row_score_add(q, &r, cur[best].term, col, (int)(best_v & POST_MAX_OFF));
    }
    return n_inst ? row_score_end(q, &r) : -1;
}

/* Stage one from the in-memory postings: the rows any chosen phrase matches, each scored by
 * score_row(), the best KB_CANDIDATES kept (higher score first, then lower rowid). Gives the
 * same candidates and scores as the FTS5 query (test_kb checks), without reading doclists. */
static void search_memory(const struct df_map *m, struct kb_query *q, int lang_rank,
                          struct kb_candidate *cands, int *n_cands, int max_cands)
{
    struct post_cursor cur[KB_MAX_QUERY_TERMS];
    int n_cur = 0;
    query_set_weights(q, m->n_rows, m->tot_len);
    for (int i = 0; i < q->n_phrases; i++) {
        const struct kb_term *t = &q->terms[q->phrase_term[i]];
        const struct df_entry *e = kb_df_find((struct df_map *)m, t->stem, (size_t)t->n_stem, 0);
        if (!e || m->posts[e->term_id].n == 0)
            continue;
        const struct postings *p = &m->posts[e->term_id];
        cur[n_cur] = (struct post_cursor){p->w, p->w + p->n,       NULL,
                                          NULL, q->phrase_term[i], q->is_head_only[i]};
        n_cur++;
    }
    struct kb_candidate top[KB_CANDIDATES];
    int n_top = 0, room = max_cands - *n_cands;
    if (room > KB_CANDIDATES)
        room = KB_CANDIDATES;
    for (;;) {
        uint32_t rid = UINT32_MAX;
        for (int i = 0; i < n_cur; i++)
            if (cur[i].at < cur[i].end && cur[i].at[0] < rid)
                rid = cur[i].at[0];
        if (rid == UINT32_MAX)
            break;
        for (int i = 0; i < n_cur; i++) {
            struct post_cursor *p = &cur[i];
            p->inst = p->inst_end = NULL;
            if (p->at < p->end && p->at[0] == rid) {
                p->inst = p->at + 2;
                p->inst_end = p->inst + p->at[1];
                p->at = p->inst_end;
            }
        }
        double score = score_row(q, m, rid, cur, n_cur);
        if (score < 0 || room <= 0)
            continue;
        /* Rows come in rowid order: a tie keeps the earlier row ahead. */
        if (n_top == room && score <= top[n_top - 1].stage1)
            continue;
        int k = n_top < room ? n_top++ : n_top - 1;
        while (k > 0 && top[k - 1].stage1 < score) {
            top[k] = top[k - 1];
            k--;
        }
        top[k] = (struct kb_candidate){.rid = rid, .stage1 = score, .lang_rank = lang_rank};
    }
    for (int i = 0; i < n_top; i++)
        cands[(*n_cands)++] = top[i];
}

int kb_query_build(struct kb *kb, struct kb_lang_index *li, const struct text_analysis *question,
                   struct kb_query *q)
{
    memset(q, 0, sizeof *q);
    q->tune = &kb->tune;
    struct query_build b = {.q = q, .text = question->text};
    b.prev_start = b.prev_end = -1;
    if (text_analysis_is_for(question, li->lang))
        text_analysis_tokens(question, 0, query_term_cb, &b);
    else
        kb_tok_tokenize(li->tok, question->text, question->n, query_term_cb, &b);
    if (q->n_terms == 0)
        return 0;
    if (q->tune->join_words > 0)
        add_joined_words(li, &b);
    return choose_phrases(li, q);
}

void kb_query_weigh(struct kb_query *q)
{
    if (q->stats)
        query_set_weights(q, q->stats->n_rows, q->stats->tot_len);
}

/* Runs stage one on one language's table, appending candidates. */
static int search_lang(struct kb *kb, struct kb_lang_index *li,
                       const struct text_analysis *question, int lang_rank, struct kb_query *q,
                       struct kb_candidate *cands, int *n_cands, int max_cands)
{
    int rc = kb_query_build(kb, li, question, q);
    if (rc || q->n_phrases == 0)
        return rc;
    if (q->tune->mem_index > 0 && li->df_map->is_valid) {
        search_memory(li->df_map, q, lang_rank, cands, n_cands, max_cands);
        return 0;
    }
    struct cd_buf match = {0};
    rc = build_match(q, &match);
    if (rc) {
        cd_buf_free(&match);
        return rc;
    }
    sqlite3_stmt *st = li->search;
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, match.data, (int)match.len, SQLITE_STATIC);
    sqlite3_bind_pointer(st, 2, q, "kb_query", NULL);
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW && *n_cands < max_cands) {
        struct kb_candidate *c = &cands[(*n_cands)++];
        c->rid = sqlite3_column_int64(st, 0);
        c->stage1 = sqlite3_column_double(st, 1);
        c->lang_rank = lang_rank;
    }
    /* A query FTS5 cannot parse is a question with no answer, never an error. */
    rc = step == SQLITE_ROW || step == SQLITE_DONE || step == SQLITE_ERROR ? 0 : sql_rc(step);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    cd_buf_free(&match);
    return rc;
}

/* Stage two for the candidates of one language: phrasing similarity, then the final score,
 * scaled to about [0, 1]. */
static int rescore(struct kb *kb, const struct kb_query *q, struct kb_candidate *cands, int n)
{
    const struct kb_tune *tn = &kb->tune;
    double scale = tn->w_stage1 * (1 + tn->proximity) + tn->w_phrasing * (1 + tn->phrasing_second);
    const struct df_map *m = q->stats && q->stats->is_valid ? q->stats : NULL;
    for (int i = 0; i < n; i++) {
        int64_t rid = cands[i].rid;
        cands[i].match = 0;
        if (m && rid >= 0 && rid < m->n_qterms && m->qterms[rid]) {
            cands[i].phrasing = best_phrasing(q, m->qterms[rid], &cands[i].match);
        } else {
            sqlite3_stmt *st = kb_stmt(kb, ST_HIT_INFO);
            sqlite3_bind_int64(st, 1, rid);
            if (sqlite3_step(st) == SQLITE_ROW)
                cands[i].phrasing = best_phrasing(q, sql_text(st, 0), &cands[i].match);
            sqlite3_reset(st);
        }
        cands[i].score = tn->w_stage1 * cands[i].stage1 + tn->w_phrasing * cands[i].phrasing;
        if (scale > 0)
            cands[i].score /= scale;
    }
    return 0;
}

/* Fills hit from candidate c of search q (its passage too when with_passage). */
static int fill_hit(struct kb *kb, const struct kb_query *q, const struct kb_candidate *c,
                    int with_passage, struct kb_hit *hit)
{
    memset(hit, 0, sizeof *hit);
    sqlite3_stmt *st = kb_stmt(kb, ST_HIT_BODY);
    sqlite3_bind_int64(st, 1, c->rid);
    int rc = CD_ENOTFOUND;
    if (sqlite3_step(st) == SQLITE_ROW) {
        snprintf(hit->id, sizeof hit->id, "%s", sql_text(st, 0));
        snprintf(hit->lang, sizeof hit->lang, "%s", sql_text(st, 2));
        hit->title = cd_strdup(sql_text(st, 1));
        hit->score = c->score;
        hit->match = c->match;
        hit->search = kb->n_searches;
        hit->rid = c->rid;
        hit->lang_rank = c->lang_rank;
        rc = !hit->title    ? CD_ENOMEM
             : with_passage ? kb_best_passage(q, sql_text(st, 3), sql_text(st, 4), &hit->passage)
                            : 0;
    }
    sqlite3_reset(st);
    if (rc) {
        free(hit->title);
        free(hit->passage);
        memset(hit, 0, sizeof *hit);
    }
    return rc;
}

int kb_hit_passage(struct kb *kb, struct kb_hit *hit)
{
    if (hit->passage)
        return 0;
    if (hit->search != kb->n_searches || hit->lang_rank < 0 || hit->lang_rank >= kb->n_last_queries)
        return CD_ESTATE;
    sqlite3_stmt *st = kb_stmt(kb, ST_HIT_BODY);
    sqlite3_bind_int64(st, 1, hit->rid);
    int step = sqlite3_step(st);
    int rc = step == SQLITE_ROW    ? kb_best_passage(&kb->last_queries[hit->lang_rank],
                                                     sql_text(st, 3), sql_text(st, 4), &hit->passage)
             : step == SQLITE_DONE ? CD_ENOTFOUND
                                   : CD_EIO;
    sqlite3_reset(st);
    return rc;
}

int kb_search(struct kb *kb, const char *question, const char *lang, struct kb_hit *hits,
              int max_hits, int *n_hits)
{
    /* No analysis: each language's tokenizer splits the text (text.h). */
    struct text_analysis text = {.text = question, .n = question ? strlen(question) : 0};
    if (!question) {
        if (n_hits)
            *n_hits = 0;
        return CD_EINVAL;
    }
    return kb_search_analysed(kb, &text, lang, hits, max_hits, n_hits);
}

int kb_search_analysed(struct kb *kb, const struct text_analysis *question, const char *lang,
                       struct kb_hit *hits, int max_hits, int *n_hits)
{
    return kb_search_hits(kb, question, lang, hits, max_hits, max_hits, n_hits);
}

int kb_search_hits(struct kb *kb, const struct text_analysis *question, const char *lang,
                   struct kb_hit *hits, int max_hits, int n_passages, int *n_hits)
{
    if (n_hits)
        *n_hits = 0;
    if (!kb || !question || !hits || !n_hits || max_hits < 0)
        return CD_EINVAL;
    if (max_hits == 0 || kb->n_langs == 0)
        return 0;
    if (max_hits > KB_CANDIDATES)
        max_hits = KB_CANDIDATES;
    /* The requested language first (English when none was asked for or it has no articles);
     * with no language asked for, the other languages' tables follow. */
    int rc = 0;
    struct kb_lang_index *first = NULL;
    char code[8];
    if (lang && *lang && text_lang_code(lang, code))
        first = kb_lang_index_get(kb, code, 0, &rc);
    if (!first)
        first = kb_lang_index_get(kb, "en", 0, &rc);
    struct kb_lang_index *order[KB_MAX_LANGS];
    int n_order = 0;
    if (first)
        order[n_order++] = first;
    if (!lang || !*lang || !first)
        for (int i = 0; i < kb->n_langs; i++)
            if (&kb->langs[i] != first)
                order[n_order++] = &kb->langs[i];
    struct kb_candidate cands[KB_CANDIDATES * 2];
    struct kb_query *queries = calloc((size_t)n_order, sizeof *queries);
    if (!queries)
        return CD_ENOMEM;
    kb->n_searches++; /* the hits of earlier searches choose no passage any more */
    int n_cands = 0, n = 0;
    /* One read transaction for the whole search: one snapshot, one lock. */
    int own_txn = sqlite3_get_autocommit(kb->db) && sql_run(kb_stmt(kb, ST_READ_BEGIN)) == 0;
    /* Another connection changed an index: the postings and counts must be read again. */
    sqlite3_stmt *gen = kb_stmt(kb, ST_GENERATION);
    if (sqlite3_step(gen) == SQLITE_ROW) {
        int64_t v = sqlite3_column_int64(gen, 0);
        if (v != kb->generation)
            kb_invalidate_counts(kb);
        kb->generation = v;
    }
    sqlite3_reset(gen);
    for (int l = 0; l < n_order && n_cands < max_hits; l++) {
        int before = n_cands;
        rc = search_lang(kb, order[l], question, l, &queries[l], cands, &n_cands,
                         before + KB_CANDIDATES);
        if (rc)
            goto done;
        rescore(kb, &queries[l], cands + before, n_cands - before);
    }
    qsort(cands, (size_t)n_cands, sizeof cands[0], cmp_candidates);
    for (int i = 0; i < n_cands && n < max_hits; i++) {
        rc = fill_hit(kb, &queries[cands[i].lang_rank], &cands[i], n < n_passages, &hits[n]);
        if (rc == CD_ENOTFOUND)
            continue;
        if (rc)
            goto done;
        n++;
    }
    rc = 0;
done:
    if (own_txn)
        sql_run(kb_stmt(kb, ST_READ_END));
    if (rc) {
        kb_hits_clear(hits, n);
        n = 0;
    }
    *n_hits = n;
    free(kb->last_queries); /* the queries stay for kb_hit_passage() */
    kb->last_queries = queries;
    kb->n_last_queries = n_order;
    return rc;
}

void kb_hits_clear(struct kb_hit *hits, int n_hits)
{
    if (!hits)
        return;
    for (int i = 0; i < n_hits; i++) {
        free(hits[i].title);
        free(hits[i].passage);
        hits[i].title = NULL;
        hits[i].passage = NULL;
    }
}
