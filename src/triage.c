/* triage: the answer / clarify / handoff decision for one customer message.
 *
 * DESIGN. The policy runs from the safest rule down (see triage.h): signals
 * that the customer wants or needs a person are checked before any score, so
 * no threshold setting can keep a customer who asked for a human away from
 * one. Scores come from intents_classify() (rules, then the calibrated model)
 * and, when a KB is attached, from kb_search(): a how-to question whose best
 * passage covers most of its words is answered from the KB even when no
 * intent matched. Nothing here blocks: the model is in memory and the KB
 * query is bounded to a few hits. */
#include "triage.h"

#include "scope.h"

#include "text.h"

#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Built-in phrasings, on folded text, so the policy works with any intents. */
static const char *const person_request_re[] = {
    "(^|[^a-z])(talk|speak|chat|connect|transfer|put)( me)?( through)? (to|with) (a |an |some |"
    "your |the )?(real |live |actual )?(human|person|agent|representative|rep|operator|someone|"
    "somebody|staff|employee|manager|supervisor|customer service)",
    "(^|[^a-z])(real|live|actual) (human|person|agent)",
    "(^|[^a-z])(i want|i need|id like|i would like|get me|give me|can i (get|have)) (a |an |to "
    "(talk|speak) to )?(human|person|agent|representative|operator|someone real)",
    "^ *(human|agent|operator|representative|a human|a person|person|live agent|human please|"
    "agent please)[ .!?]*$",
    "(^|[^a-z])(human|agent|representative|operator) (please|pls|now)",
    "(^|[^a-z])(not|stop talking to|tired of|no more) (a |the |this )?(bot|robot|machine)",
    "(^|[^a-z])(dont|do not) want (a |the |this |to (talk|speak|chat) (to|with) (a |the )?)?"
    "(bot|robot|machine)",
    /* Spanish, folded: "hablar con una persona", "quiero un agente humano". */
    "(^|[^a-z])(hablar|comunicarme|atender|atienda|pasame|pasar) (con )?(una |un |algun |alguna )?"
    "(persona|humano|agente|asesor|operador|alguien)",
    "(^|[^a-z])(persona|agente|humano) real",
    NULL,
};

/* "That didn't help": about the bot's answer, not the customer's product
 * ("my card doesn't work" is a question, "that didn't work" is feedback). */
static const char *const not_helped_re[] = {
    "(^|[^a-z])(that|this|your (answer|reply|article|suggestion|link)|the (answer|reply|"
    "article|link|suggestion)) (didnt|did not|doesnt|does not|isnt|is not|wasnt|was not) "
    "(help|work|answer|solve|fix)",
    "(^|[^a-z])(didnt|did not|doesnt|does not|not) help(ful|ed|ing)?([^a-z]|$)",
    "(^|[^a-z])unhelpful",
    "(^|[^a-z])(wrong|useless|irrelevant) (answer|reply|response|article|link)",
    "(^|[^a-z])not what i (asked|meant|said|need|needed|wanted|was asking)",
    "(^|[^a-z])(thats|that is|this is|its) not (it|what i)",
    "(^|[^a-z])you (are|re|arent|are not) not (helping|listening|understanding)",
    "(^|[^a-z])you (arent|are not) (helping|listening|understanding)",
    NULL,
};

/* Each regex above needs one of these substrings to match. */
static const char *const person_words[] = {
    "human",    "person", "agent",    "rep",     "operator",   "someone",
    "somebody", "staff",  "employee", "manager", "supervisor", "customer service",
    "bot",      "robot",  "machine",  NULL,
};
static const char *const not_helped_words[] = {
    "help", "work", "answer", "solv", "fix", "wrong", "useless", "irrelevant", "not ", "nt ", NULL,
};

static int contains_any(const char *s, const char *const *words)
{
    for (int i = 0; words[i]; i++)
        if (strstr(s, words[i]))
            return 1;
    return 0;
}

/* Anger words (folded). Strong ones count double. */
static const char *const anger_words[] = {
    "ridiculous", "unacceptable", "furious",     "angry",    "outraged",    "terrible", "horrible",
    "awful",      "worst",        "useless",     "pathetic", "disgusting",  "disgrace", "scam",
    "fraud",      "incompetent",  "joke",        "livid",    "fed up",      "sick of",  "enough",
    "annoyed",    "frustrated",   "frustrating", "hate",     "never again", "lawyer",   "sue",
    "report you", "rip off",      "ripoff",      "stupid",   "idiot",       "idiots",   "nonsense",
    "wtf",        "garbage",      "rubbish",     NULL,
};
static const char *const swear_words[] = {
    "fuck",     "fucking", "fucked",   "shit",    "shitty", "damn",   "crap",
    "bullshit", "bastard", "bastards", "asshole", "piss",   "pissed", NULL,
};

static const char *const howto_starts[] = {
    "how",       "where",   "when",   "what",  "which",          "can i",
    "could i",   "do i",    "do you", "does",  "is it possible", "is there",
    "are there", "can you", "how do", "may i", "should i",       "why",
    "who",       "will",    "is",     "are",   "como",           "donde",
    "cuando",    "que",     "puedo",  NULL,
};

struct triage {
    struct triage_settings settings;
    char default_queue[32];
    struct intents *intents;
    struct intents_scratch *scratch;
    struct kb *kb;
    struct text_tokenizer *tok; /* the current language's, one of toks */
    struct text_tokenizers toks;
    regex_t person_re[12];
    int n_person_re;
    regex_t not_helped_re[8];
    int n_not_helped_re;
    struct text_analysis analysis; /* the message being decided, analysed once */
    char *folded;                  /* its folded text, squeezed (fold_message()) */
    size_t cap_folded;
    struct triage_kb_calibration kb_cal; /* triage_calibrate_kb() */
    unsigned intents_generation;         /* triage_swap_intents() so far */
    struct scope_prior prior;            /* the traffic's out-of-scope share, measured */
    int lead_end; /* compute_signals(): where the words that make the message a question
                   * ("how", "can you", "is there") end in it, 0 if none do */
    struct triage_wording *wording; /* triage_set_phrases(); NULL: the built-in only */
    int n_wording;
};

/* A deployment's sentences for one language (NULL: none of its own). */
struct triage_wording {
    char lang[16];
    char *text[TRIAGE_SAY_PERSON + 1];
};

void triage_settings_default(struct triage_settings *s)
{
    memset(s, 0, sizeof *s);
    s->t_answer = 0.55;
    s->t_clarify = 0.2;
    s->t_kb = 0.6;
    s->t_oos = 0.5;
    s->t_in_scope = 0.5;
    s->t_clarify_mass = 0.5;
    s->max_clarify = 1;
    s->max_not_helped = 1;
    s->max_repeats = 1;
    s->anger_handoff = 2;
    s->n_candidates = 3;
    s->default_queue = "general";
}

static void apply_settings(struct triage *t, const struct triage_settings *in)
{
    struct triage_settings d;
    triage_settings_default(&d);
    struct triage_settings s = in ? *in : d;
    if (s.t_answer <= 0 || s.t_answer > 1)
        s.t_answer = d.t_answer;
    if (s.t_clarify <= 0 || s.t_clarify > s.t_answer)
        s.t_clarify = s.t_answer < d.t_clarify ? s.t_answer : d.t_clarify;
    if (s.t_kb <= 0 || s.t_kb > 1)
        s.t_kb = d.t_kb;
    if (s.t_oos <= 0 || s.t_oos > 1)
        s.t_oos = d.t_oos;
    if (s.t_in_scope < 0 || s.t_in_scope > 1)
        s.t_in_scope = d.t_in_scope;
    if (s.t_known < 0 || s.t_known > 1)
        s.t_known = 0;
    if (s.t_clarify_mass <= 0 || s.t_clarify_mass > 1)
        s.t_clarify_mass = d.t_clarify_mass;
    if (s.max_clarify <= 0)
        s.max_clarify = d.max_clarify;
    if (s.max_not_helped <= 0)
        s.max_not_helped = d.max_not_helped;
    if (s.max_repeats <= 0)
        s.max_repeats = d.max_repeats;
    if (s.anger_handoff <= 0 || s.anger_handoff > 3)
        s.anger_handoff = d.anger_handoff;
    if (s.n_candidates < 2 || s.n_candidates > TRIAGE_MAX_CANDIDATES)
        s.n_candidates = d.n_candidates;
    cd_strlcpy(t->default_queue, sizeof t->default_queue,
               s.default_queue && s.default_queue[0] ? s.default_queue : "general");
    s.default_queue = t->default_queue;
    t->settings = s;
}

struct triage *triage_new(const struct triage_settings *settings, struct intents *intents,
                          struct kb *kb)
{
    if (intents && !intents_is_trained(intents)) {
        intents_free(intents);
        return NULL;
    }
    struct triage *t = calloc(1, sizeof *t);
    if (!t) {
        intents_free(intents);
        return NULL;
    }
    t->intents = intents;
    t->kb = kb;
    scope_prior_reset(&t->prior, intents ? intents_scope(intents)->prior_oos : 0.5);
    apply_settings(t, settings);
    for (int i = 0; person_request_re[i] && t->n_person_re < 12; i++)
        if (regcomp(&t->person_re[t->n_person_re], person_request_re[i],
                    REG_EXTENDED | REG_NOSUB) == 0)
            t->n_person_re++;
    for (int i = 0; not_helped_re[i] && t->n_not_helped_re < 8; i++)
        if (regcomp(&t->not_helped_re[t->n_not_helped_re], not_helped_re[i],
                    REG_EXTENDED | REG_NOSUB) == 0)
            t->n_not_helped_re++;
    t->scratch = intents_scratch_new();
    if (!t->scratch) {
        triage_free(t);
        return NULL;
    }
    return t;
}

static void wording_free(struct triage_wording *w, int n)
{
    for (int i = 0; i < n; i++)
        for (int p = 0; p <= TRIAGE_SAY_PERSON; p++)
            free(w[i].text[p]);
    free(w);
}

void triage_free(struct triage *t)
{
    if (!t)
        return;
    intents_free(t->intents);
    intents_scratch_free(t->scratch);
    text_tokenizers_free(&t->toks);
    for (int i = 0; i < t->n_person_re; i++)
        regfree(&t->person_re[i]);
    for (int i = 0; i < t->n_not_helped_re; i++)
        regfree(&t->not_helped_re[i]);
    text_analysis_free(&t->analysis);
    free(t->folded);
    wording_free(t->wording, t->n_wording);
    free(t);
}

struct intents *triage_swap_intents(struct triage *t, struct intents *fresh)
{
    if (!fresh || !intents_is_trained(fresh))
        return NULL;
    struct intents *old = t->intents;
    t->intents = fresh;
    t->intents_generation++;
    /* The P(in scope) kept were the old model's outputs; the share measured
     * on them is the traffic's, and stays until the new model measures it. */
    int is_measured = scope_prior_is_measured(&t->prior);
    double share = t->prior.estimate;
    int n_measured = scope_prior_measured_on(&t->prior);
    scope_prior_reset(&t->prior, intents_scope(fresh)->prior_oos);
    if (is_measured)
        scope_prior_carry(&t->prior, share, n_measured);
    return old;
}

const struct triage_settings *triage_get_settings(const struct triage *t)
{
    return &t->settings;
}

void triage_set_settings(struct triage *t, const struct triage_settings *settings)
{
    apply_settings(t, settings);
}

unsigned triage_intents_generation(const struct triage *t)
{
    return t->intents_generation;
}

const struct intents *triage_intents(const struct triage *t)
{
    return t->intents;
}

const char *triage_action_name(enum triage_action a)
{
    switch (a) {
    case TRIAGE_ANSWER:
        return "answer";
    case TRIAGE_CLARIFY:
        return "clarify";
    case TRIAGE_HANDOFF:
        return "handoff";
    }
    return "handoff";
}

/* ---- signals ----------------------------------------------------------- */

/* Makes t->tok the tokenizer for lang; a few languages stay cached, since
 * conversations in different languages interleave. */
static int tokenizer_for(struct triage *t, const char *lang)
{
    struct text_tokenizer *tok = text_tokenizers_get(&t->toks, lang);
    if (!tok)
        return CD_ENOMEM;
    t->tok = tok;
    return 0;
}

/* Analyses the message with t->tok into t->analysis, the one analysis of it that the
 * signals, the rules, the model and the KB all read. Returns 0 or CD_ENOMEM. */
static int analyse_message(struct triage *t, const char *text, size_t n)
{
    return text_analyse(t->tok, text, n, &t->analysis);
}

/* The analysed message's folded text copied into t->folded with apostrophes
 * removed ("didn't" -> "didnt") and runs of spaces squeezed. Returns the
 * folded string or NULL. */
static const char *fold_message(struct triage *t, const struct text_analysis *a)
{
    const char *folded = text_analysis_folded(a);
    if (!folded)
        return NULL;
    size_t cap = (size_t)a->n_folded + 1;
    if (t->cap_folded < cap) {
        if (cd_resize(&t->folded, cap, 1))
            return NULL;
        t->cap_folded = cap;
    }
    char *w = t->folded;
    for (const char *r = folded; *r; r++) {
        if (*r == '\'' || (r[0] == '\xe2' && r[1] == '\x80' && r[2] == '\x99')) {
            if (*r != '\'')
                r += 2;
            continue;
        }
        char c = (*r == '\n' || *r == '\t' || *r == '\r') ? ' ' : *r;
        if (c == ' ' && w > t->folded && w[-1] == ' ')
            continue;
        *w++ = c;
    }
    *w = '\0';
    return t->folded;
}

static int has_word(const char *folded, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = strstr(folded, word); p; p = strstr(p + 1, word)) {
        int left =
            p == folded || !((p[-1] >= 'a' && p[-1] <= 'z') || (p[-1] >= '0' && p[-1] <= '9'));
        char r = p[n];
        int right = !((r >= 'a' && r <= 'z') || (r >= '0' && r <= '9'));
        if (left && right)
            return 1;
    }
    return 0;
}

static int starts_with_words(const char *s, const char *prefix)
{
    while (*s == ' ')
        s++;
    size_t n = strlen(prefix);
    return !strncmp(s, prefix, n) &&
           !((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9'));
}

struct key_ctx {
    uint64_t h;
    int n;
};

static int on_key_token(void *ctx, const char *token, int n_token, int start, int end)
{
    struct key_ctx *k = ctx;
    (void)start;
    (void)end;
    k->h = cd_fnv1a64(cd_fnv1a64(k->h, token, (size_t)n_token), " ", 1);
    k->n++;
    return 0;
}

/* The signals of the analysed message a; folded is fold_message(t, a). */
static void compute_signals(struct triage *t, const struct text_analysis *a, const char *folded,
                            struct triage_signals *out)
{
    const char *text = a->text;
    size_t n = a->n;
    memset(out, 0, sizeof *out);
    if (!folded)
        return;
    /* Cheap word checks first: most messages need no regex at all. */
    if (contains_any(folded, person_words))
        for (int i = 0; i < t->n_person_re && !out->is_person_request; i++)
            out->is_person_request = regexec(&t->person_re[i], folded, 0, NULL, 0) == 0;
    if (contains_any(folded, not_helped_words))
        for (int i = 0; i < t->n_not_helped_re && !out->is_not_helped; i++)
            out->is_not_helped = regexec(&t->not_helped_re[i], folded, 0, NULL, 0) == 0;

    int points = 0;
    for (int i = 0; anger_words[i]; i++)
        points += has_word(folded, anger_words[i]);
    for (int i = 0; swear_words[i]; i++)
        points += 2 * has_word(folded, swear_words[i]);
    int n_upper = 0, n_letters = 0, n_bang = 0;
    for (size_t i = 0; i < n; i++) {
        char c = text[i];
        if (c >= 'A' && c <= 'Z')
            n_upper++;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))
            n_letters++;
        if (c == '!')
            n_bang++;
    }
    int is_shouting = n_letters >= 12 && n_upper * 10 >= n_letters * 7;
    if (is_shouting)
        points += 1;
    if (n_bang >= 3)
        points += 1;
    out->anger = points >= 4 ? 3 : points >= 2 ? 2 : points >= 1 ? 1 : 0;

    t->lead_end = 0;
    for (int i = 0; howto_starts[i]; i++) {
        if (!starts_with_words(folded, howto_starts[i]))
            continue;
        out->is_howto = 1;
        int n_lead = 1; /* the longest start that matches ("how do" over "how") */
        for (const char *p = howto_starts[i]; *p; p++)
            n_lead += *p == ' ';
        if (n_lead <= a->n_words && a->words[n_lead - 1].end > t->lead_end)
            t->lead_end = a->words[n_lead - 1].end;
    }
    if (!out->is_howto && strchr(folded, '?'))
        out->is_howto = 1;

    struct key_ctx k = {.h = CD_FNV64_INIT};
    text_analysis_tokens(a, 0, on_key_token, &k);
    out->text_key = k.n ? k.h : 0;
}

void triage_signals(struct triage *t, const char *text, size_t n, const char *lang,
                    struct triage_signals *out)
{
    memset(out, 0, sizeof *out);
    if (tokenizer_for(t, lang) || analyse_message(t, text, n))
        return;
    compute_signals(t, &t->analysis, fold_message(t, &t->analysis), out);
}

/* ---- decision ---------------------------------------------------------- */

void triage_decision_clear(struct triage_decision *d)
{
    if (!d)
        return;
    free(d->answer);
    for (int i = 0; i < d->n_articles; i++)
        free(d->articles[i].title);
    for (int i = 0; i < d->n_candidates; i++)
        free(d->candidates[i].label);
    for (int i = 0; i < d->evidence.n_model; i++)
        free(d->evidence.model[i].label);
    free(d->collect_field);
    free(d->collect_prompt);
    memset(d, 0, sizeof *d);
}

static const char *intent_label(const struct intent *it)
{
    return it->description && it->description[0] ? it->description : it->name;
}

static int set_candidate(struct triage_candidate *c, const struct intent *it, double p)
{
    cd_strlcpy(c->intent, sizeof c->intent, it->name);
    c->probability = p;
    c->label = strdup(intent_label(it));
    return c->label ? 0 : CD_ENOMEM;
}

static int add_article(struct triage_decision *d, const char *id, const char *title, double score)
{
    for (int i = 0; i < d->n_articles; i++)
        if (!strcmp(d->articles[i].id, id))
            return 0;
    if (d->n_articles == TRIAGE_MAX_ARTICLES)
        return 0;
    struct triage_article *a = &d->articles[d->n_articles];
    cd_strlcpy(a->id, sizeof a->id, id);
    snprintf(a->url, sizeof a->url, "/kb/%s", id);
    a->score = score;
    a->title = strdup(title && title[0] ? title : id);
    if (!a->title)
        return CD_ENOMEM;
    d->n_articles++;
    return 0;
}

/* FNV-1a of a token. */
static uint64_t token_hash(const char *token, int n_token)
{
    return cd_fnv1a64(CD_FNV64_INIT, token, (size_t)n_token);
}

struct coverage_ctx {
    uint64_t q[32];
    double w[32]; /* each word's weight (coverage_start()) */
    int n_q;
    uint8_t seen[32];
    int is_query;
    struct triage *t;
    const char *lang;
    int skip_before;  /* question words starting before this byte are not counted */
    int n_typo_tries; /* unknown words tried as typos so far (at most KB_TYPO_TRIES) */
};

/* The weight of a question word in lang's articles: its smoothed inverse document frequency,
 * 1 + ln((N + 1) / (df + 1)), as if the question were one more document (so a word no article
 * has weighs most, 1 + ln(N + 1), and one every article has weighs 1). A word is what the
 * question is about in proportion to how rare it is: "when does napa close" asks about napa,
 * which no article of a shop has, not about closing. A small KB cannot tell rare words from
 * common ones, and the weights stay close to equal (1.7 against 1 with one article). A typo
 * kb_search() would repair counts as the word it is read as; a number no article has (an
 * order, an amount, a date) says nothing of the subject and weighs 1. */
static double word_weight(struct coverage_ctx *c, const char *token, int n_token, uint64_t *h)
{
    struct kb_word kw;
    int try_typo = c->n_typo_tries < KB_TYPO_TRIES;
    if (kb_word_df(c->t->kb, c->lang, token, (size_t)n_token, try_typo, &kw) || kw.n_articles <= 0)
        return 1.0;
    if ((kw.df == 0 || kw.is_typo) && n_token >= 5)
        c->n_typo_tries++;
    if (kw.is_typo)
        *h = token_hash(kw.stem, kw.n_stem);
    if (kw.df == 0)
        for (int i = 0; i < n_token; i++)
            if (token[i] >= '0' && token[i] <= '9')
                return 1.0;
    double n = (double)kw.n_articles, df = kw.df < kw.n_articles ? (double)kw.df : n;
    return 1.0 + log((n + 1.0) / (df + 1.0));
}

static int on_coverage_token(void *ctx, const char *token, int n_token, int start, int end)
{
    struct coverage_ctx *c = ctx;
    (void)end;
    uint64_t h = token_hash(token, n_token);
    if (c->is_query) {
        if (start < c->skip_before)
            return 0;
        double w = c->t ? word_weight(c, token, n_token, &h) : 1.0;
        for (int i = 0; i < c->n_q; i++)
            if (c->q[i] == h)
                return 0;
        if (c->n_q < 32) {
            c->w[c->n_q] = w;
            c->q[c->n_q++] = h;
        }
        return 0;
    }
    for (int i = 0; i < c->n_q; i++)
        if (c->q[i] == h)
            c->seen[i] = 1;
    return 0;
}

/* Prepares c with the analysed question's content words (stemmed, no stop words), each
 * weighed by word_weight() in lang's articles (lang: the language of the hits the coverage
 * is of; equal weights when the analysis is another language's). The words that make the
 * message a question (t->lead_end, from compute_signals() of the same analysis) are left out:
 * they say what kind of question it is, not what it is about, and a passage rarely repeats
 * them. */
static void coverage_start(struct triage *t, const struct text_analysis *question, const char *lang,
                           struct coverage_ctx *c)
{
    memset(c, 0, sizeof *c);
    if (t->kb && text_analysis_is_for(question, lang)) {
        c->t = t;
        c->lang = lang;
    }
    c->skip_before = t->lead_end;
    c->is_query = 1;
    text_analysis_tokens(question, 0, on_coverage_token, c);
    c->is_query = 0;
}

/* The weighed share of the question's content words found in the texts a and b, in [0, 1].
 * FTS5 ranks are only comparable within one result list; this is comparable across
 * questions. One- and two-word questions are too thin to trust alone and score lower. */
static double coverage_of(struct triage *t, struct coverage_ctx *c, const char *a, size_t n_a,
                          const char *b, size_t n_b)
{
    if (c->n_q == 0)
        return 0;
    memset(c->seen, 0, sizeof c->seen);
    if (a)
        text_tokenize(t->tok, a, n_a, 0, on_coverage_token, c);
    if (b)
        text_tokenize(t->tok, b, n_b, 0, on_coverage_token, c);
    double w_seen = 0, w_all = 0;
    for (int i = 0; i < c->n_q; i++) {
        w_seen += c->seen[i] ? c->w[i] : 0;
        w_all += c->w[i];
    }
    double cov = w_all > 0 ? w_seen / w_all : 0;
    if (c->n_q < 3)
        cov *= c->n_q == 1 ? 0.5 : 0.8;
    return cov;
}

static double kb_coverage(struct triage *t, struct coverage_ctx *c, const struct kb_hit *hit)
{
    return coverage_of(t, c, hit->title, hit->title ? strlen(hit->title) : 0, hit->passage,
                       hit->passage ? strlen(hit->passage) : 0);
}

static int set_answer(struct triage_decision *d, const char *text)
{
    free(d->answer);
    d->answer = strdup(text ? text : "");
    return d->answer ? 0 : CD_ENOMEM;
}

static void set_handoff(struct triage_decision *d, const struct intent *it, const char *queue,
                        const char *reason)
{
    d->action = TRIAGE_HANDOFF;
    cd_strlcpy(d->queue, sizeof d->queue, it && it->queue ? it->queue : queue);
    d->priority = it ? it->priority : 3;
    d->evidence.reason = reason;
}

/* The answer for an "answer" intent: its response, else the passage of its
 * article that best answers the question (kb_passage(), the KB's one passage
 * rule), else its label; plus the article link. */
static int answer_intent(struct triage *t, struct triage_decision *d, const struct intent *it,
                         const struct text_analysis *question)
{
    int rc = 0;
    if (it->article) {
        struct kb_article art = {0};
        int have_article = t->kb && kb_get(t->kb, it->article, &art) == 0;
        if (!it->response && have_article && art.body) {
            free(d->answer);
            d->answer = NULL;
            rc = kb_passage_analysed(t->kb, it->article, question, &d->answer);
            if (rc == CD_ENOTFOUND) /* deleted since kb_get(): the label answers */
                rc = 0;
        }
        /* Without a KB the link is still given; with one, only if it exists. */
        if (rc == 0 && (!t->kb || have_article))
            rc = add_article(d, it->article, have_article ? art.title : NULL, 1.0);
        if (have_article)
            kb_article_clear(&art);
        if (rc)
            return rc;
    }
    if (it->response)
        return set_answer(d, it->response);
    if (d->answer && d->answer[0])
        return 0;
    return set_answer(d, intent_label(it));
}

int triage_decide(struct triage *t, const char *text, size_t n, const char *lang,
                  const struct triage_context *ctx, struct triage_decision *out)
{
    memset(out, 0, sizeof *out);
    out->action = TRIAGE_HANDOFF;
    out->priority = 3;
    cd_strlcpy(out->queue, sizeof out->queue, t->default_queue);
    out->evidence.reason = "low_confidence";
    if (!cd_utf8_valid(text, n))
        return CD_EINVAL;
    const char *handoff_text = triage_phrase(t, TRIAGE_SAY_HANDOFF, lang);
    struct triage_context none = {0};
    if (!ctx)
        ctx = &none;
    /* The message is split, folded and stemmed once, here; the signals, the
     * rules, the model and the KB all read this one analysis. */
    int rc = tokenizer_for(t, lang);
    if (rc || (rc = analyse_message(t, text, n)))
        return rc;
    const struct text_analysis *a = &t->analysis;
    compute_signals(t, a, fold_message(t, a), &out->signals);
    const struct triage_settings *s = &t->settings;
    const struct intents *set = t->intents;

    struct intents_result r;
    if (set) {
        if ((rc = intents_classify_analysed(set, t->scratch, a, lang, &r)))
            return rc;
    } else {
        /* A KB-only triage: no rules, no model. */
        memset(&r, 0, sizeof r);
        r.rule_intent = -1;
        r.p_in = 1;
        r.known_share = 1;
        r.n_tokens = a->n_words;
    }
    out->evidence.p_oos = r.p_oos;
    out->evidence.known_share = r.known_share;
    /* P(in scope) was learned at an assumed out-of-scope share; re-weighed to
     * the share measured on the traffic so far (scope.h). */
    if (triage_measures_share(t)) {
        if (!ctx->is_again) {
            out->is_scored = 1;
            scope_prior_add(&t->prior, r.p_in);
        }
        r.p_in = scope_prior_adjust(&t->prior, r.p_in);
    }
    out->evidence.p_in = r.p_in;
    out->evidence.oos_share = t->prior.estimate;
    /* Out of scope: unlike what the intents' examples ask (P(in scope),
     * learned by cross-fitting with whole intents held out), the model's
     * out-of-scope class, or a message whose words the examples never use. */
    int is_oos = r.p_in < s->t_in_scope || r.p_oos >= s->t_oos || r.known_share < s->t_known;
    if (r.rule_intent >= 0) {
        cd_strlcpy(out->evidence.rule_intent, sizeof out->evidence.rule_intent,
                   intents_get(set, r.rule_intent)->name);
        cd_strlcpy(out->evidence.rule, sizeof out->evidence.rule, r.rule_what);
    }
    for (int i = 0; i < r.n_top && i < TRIAGE_MAX_CANDIDATES; i++) {
        if ((rc = set_candidate(&out->evidence.model[i], intents_get(set, r.top[i]), r.top_p[i])))
            return rc;
        out->evidence.n_model++;
    }

    struct kb_hit hits[TRIAGE_MAX_ARTICLES];
    int n_hits = 0;
    double kb_score = 0;
    struct coverage_ctx cov;

    const struct intent *rule_it = r.rule_intent >= 0 ? intents_get(set, r.rule_intent) : NULL;
    const struct intent *top_it = r.n_top > 0 ? intents_get(set, r.top[0]) : NULL;
    double p_top = r.n_top > 0 ? r.top_p[0] : 0;
    const struct intent *chosen = NULL;
    double confidence = 0;

    /* 1. The customer asks for a person: always a handoff. */
    if (out->signals.is_person_request || (rule_it && rule_it->is_person_request)) {
        /* Name it after the person-request intent that matched, else the
         * model's best one, else the first one in the message's language. */
        const struct intent *person = rule_it && rule_it->is_person_request ? rule_it : NULL;
        for (int i = 0; !person && i < r.n_top; i++)
            if (intents_get(set, r.top[i])->is_person_request && r.top_p[i] >= 0.05)
                person = intents_get(set, r.top[i]);
        const char *want = lang && lang[0] ? lang : "en";
        for (int i = 0; set && !person && i < intents_count(set); i++)
            if (intents_get(set, i)->is_person_request && !strcmp(intents_get(set, i)->lang, want))
                person = intents_get(set, i);
        for (int i = 0; set && !person && i < intents_count(set); i++)
            if (intents_get(set, i)->is_person_request)
                person = intents_get(set, i);
        cd_strlcpy(out->intent, sizeof out->intent, person ? person->name : "human");
        out->confidence = 1.0;
        set_handoff(out, person, t->default_queue, "person_request");
        out->signals.is_person_request = 1;
        rc = set_answer(out, person && person->response ? person->response : handoff_text);
        goto done;
    }

    /* Nothing to go on (no words at all, only emoji or symbols): nothing the
     * bot can answer, so a person looks at it. */
    if (r.n_tokens == 0) {
        set_handoff(out, NULL, t->default_queue, "empty");
        rc = set_answer(out, handoff_text);
        goto done;
    }

    /* 2. What the message is about: a rule hit, else a confident model. A
     * rule's words in a message the model finds four times as likely out of
     * scope as in it at the default t_in_scope ("can you look up grocery
     * coupons" for a rule on "coupon") are not the author's question: the rule
     * does not answer it; the KB may (step 5), else a person, routed by the
     * rule's intent (steps 3 and 7). The
     * rule's own match is evidence of scope the model does not see, hence
     * half the model's bar. A rule that hands off anyway keeps its route. */
    int is_rule_doubted = rule_it && !rule_it->is_oos && rule_it->action == INTENT_ANSWER &&
                          !rule_it->is_sensitive && r.p_in < s->t_in_scope / 2;
    if (rule_it && !rule_it->is_oos && !is_rule_doubted) {
        chosen = rule_it;
        double p_rule = 0;
        for (int i = 0; i < r.n_top; i++)
            if (intents_get(set, r.top[i]) == rule_it)
                p_rule = r.top_p[i];
        /* A hand-written rule is right about 9 times in 10; the model's
         * agreement raises that. */
        confidence = 1.0 - 0.1 * (1.0 - p_rule);
        out->evidence.reason = "rule";
        /* The model confidently sees something that needs a person (a
         * sensitive or handoff intent) where a rule sees an answer: the
         * safer reading wins, since a wrong answer costs more. */
        if (top_it && top_it != rule_it && p_top >= s->t_answer && !top_it->is_oos &&
            rule_it->action == INTENT_ANSWER && !rule_it->is_sensitive &&
            (top_it->is_sensitive || top_it->action != INTENT_ANSWER)) {
            chosen = top_it;
            confidence = p_top;
            out->evidence.reason = "model";
        }
    } else if (top_it && p_top >= s->t_answer &&
               (top_it->is_sensitive || top_it->action != INTENT_ANSWER)) {
        /* A handoff either way: the model's intent picks the queue, even for
         * a message that looks out of scope (a person reads it all the same). */
        chosen = top_it;
        confidence = r.p_in * p_top;
        out->evidence.reason = "model";
    } else if (top_it && !is_oos && p_top >= s->t_answer) {
        /* In scope (above) and the model's intent: the confidence is the
         * chance the answer is right, that the message is about one of the
         * intents at all times that it is about this one. */
        chosen = top_it;
        confidence = r.p_in * p_top;
        out->evidence.reason = "model";
    }

    /* 3. The conversation is going badly: hand off before trying again. */
    int anger = out->signals.anger > ctx->anger ? out->signals.anger : ctx->anger;
    const char *escalation = NULL;
    if (anger >= s->anger_handoff)
        escalation = "anger";
    else if (out->signals.is_not_helped || ctx->n_not_helped >= s->max_not_helped)
        escalation = "not_helped";
    else if (ctx->n_repeats >= s->max_repeats)
        escalation = "repeated";
    if (escalation) {
        /* Routed as the message would be otherwise: by its intent, or by the rule a
         * message clearly out of scope took its words from (step 7). */
        const struct intent *guess = chosen ? chosen : is_rule_doubted ? rule_it : NULL;
        cd_strlcpy(out->intent, sizeof out->intent, guess ? guess->name : "");
        out->confidence = chosen ? confidence : is_rule_doubted ? r.p_in : p_top;
        set_handoff(out, guess, t->default_queue, escalation);
        if (anger >= 3 || (guess && guess->priority > 2))
            out->priority = anger >= 3 ? 1 : 2;
        rc = set_answer(out, handoff_text);
        goto done;
    }

    if (chosen) {
        cd_strlcpy(out->intent, sizeof out->intent, chosen->name);
        out->confidence = confidence;
        out->is_sensitive = chosen->is_sensitive;
        if (chosen->is_sensitive) {
            /* 4. Account changes, cancellations, disputes: a verified person. */
            set_handoff(out, chosen, t->default_queue, "sensitive");
            rc = set_answer(out, chosen->response ? chosen->response : handoff_text);
        } else if (chosen->action == INTENT_HANDOFF || chosen->is_oos) {
            set_handoff(out, chosen, t->default_queue, out->evidence.reason);
            rc = set_answer(out, chosen->response ? chosen->response : handoff_text);
        } else if (chosen->action == INTENT_COLLECT) {
            set_handoff(out, chosen, t->default_queue, out->evidence.reason);
            out->collect_field = strdup(chosen->collect.field ? chosen->collect.field : "");
            out->collect_prompt = strdup(chosen->collect.prompt ? chosen->collect.prompt : "");
            if (!out->collect_field || !out->collect_prompt)
                rc = CD_ENOMEM;
            else
                rc = set_answer(out, chosen->collect.prompt);
        } else {
            out->action = TRIAGE_ANSWER;
            out->queue[0] = '\0';
            rc = answer_intent(t, out, chosen, a);
        }
        goto done;
    }

    /* KB evidence, searched only now that no intent settled the message (a
     * search costs more than everything above): the best article and how
     * much of the question it covers. Only the best hit's passage is chosen
     * now: the others matter only to an answer (below). */
    if (t->kb) {
        if (kb_search_hits(t->kb, a, lang, hits, TRIAGE_MAX_ARTICLES, 1, &n_hits) != 0)
            n_hits = 0;
        if (n_hits > 0) {
            coverage_start(t, a, hits[0].lang, &cov);
            kb_score = kb_coverage(t, &cov, &hits[0]);
            cd_strlcpy(out->evidence.kb_article, sizeof out->evidence.kb_article, hits[0].id);
            out->evidence.kb_score = kb_score;
            out->evidence.kb_match = hits[0].match;
        }
    }

    /* 5. No confident intent: the KB answers a question it was taught or
     * written with (the same words as the article's title, one of its
     * questions or a learned phrasing), or a how-to question its best
     * passage covers at least as well as the calibrated threshold. */
    double t_kb =
        t->kb_cal.is_fitted && t->kb_cal.t_coverage > s->t_kb ? t->kb_cal.t_coverage : s->t_kb;
    int is_taught = n_hits > 0 && hits[0].match >= TRIAGE_KB_MATCH;
    if (n_hits > 0 && (is_taught || (kb_score >= t_kb && out->signals.is_howto))) {
        out->action = TRIAGE_ANSWER;
        out->queue[0] = '\0';
        out->confidence = is_taught && hits[0].match > kb_score ? hits[0].match : kb_score;
        out->evidence.reason = "kb";
        cd_strlcpy(out->intent, sizeof out->intent,
                   top_it && !is_oos && p_top >= s->t_clarify ? top_it->name : "");
        if ((rc = set_answer(out, hits[0].passage)))
            goto done;
        for (int i = 0; i < n_hits && rc == 0; i++) {
            /* A later hit whose passage cannot be read now is not listed. */
            if (i > 0 && kb_hit_passage(t->kb, &hits[i]) == CD_ENOMEM)
                rc = CD_ENOMEM;
            else if (i == 0 || (hits[i].passage && kb_coverage(t, &cov, &hits[i]) >= t_kb))
                rc = add_article(out, hits[i].id, hits[i].title, hits[i].score);
        }
        goto done;
    }

    /* 6. A few close intents: ask which one (once). Only when the choices
     * together are likely; a spread over many intents is not "a few". */
    double mass = 0;
    for (int i = 0; i < r.n_top && i < s->n_candidates; i++)
        mass += r.top_p[i];
    if (!is_oos && top_it && p_top >= s->t_clarify && mass >= s->t_clarify_mass) {
        cd_strlcpy(out->intent, sizeof out->intent, top_it->name);
        out->confidence = p_top;
        if (ctx->n_clarify >= s->max_clarify) {
            set_handoff(out, top_it, t->default_queue, "clarify_limit");
            rc = set_answer(out, handoff_text);
            goto done;
        }
        out->action = TRIAGE_CLARIFY;
        out->queue[0] = '\0';
        out->evidence.reason = "clarify";
        struct cd_buf b = {0};
        rc = cd_buf_puts(&b, triage_phrase(t, TRIAGE_SAY_CLARIFY, lang));
        for (int i = 0; i < r.n_top && i < s->n_candidates && rc == 0; i++) {
            /* Keep choices that are plausible; always offer at least two. */
            if (i >= 2 && r.top_p[i] < 0.05)
                break;
            const struct intent *it = intents_get(set, r.top[i]);
            if ((rc = set_candidate(&out->candidates[out->n_candidates], it, r.top_p[i])))
                break;
            out->n_candidates++;
            rc = cd_buf_printf(&b, "\n%d. %s", out->n_candidates, intent_label(it));
        }
        if (rc == 0) {
            free(out->answer);
            out->answer = b.data;
        } else {
            cd_buf_free(&b);
        }
        goto done;
    }

    /* 7. Out of scope or unsure: a person, routed by the best guess. */
    const struct intent *guess = is_rule_doubted                                  ? rule_it
                                 : top_it && p_top >= s->t_clarify / 2 && !is_oos ? top_it
                                                                                  : NULL;
    cd_strlcpy(out->intent, sizeof out->intent,
               is_rule_doubted     ? rule_it->name
               : top_it && !is_oos ? top_it->name
                                   : "");
    out->confidence = is_rule_doubted ? r.p_in : p_top;
    set_handoff(out, guess, t->default_queue, is_oos ? "out_of_scope" : "low_confidence");
    rc = set_answer(out, handoff_text);
done:
    if (n_hits)
        kb_hits_clear(hits, n_hits);
    if (rc == 0 && !out->answer)
        rc = set_answer(out, handoff_text);
    if (out->confidence < 0)
        out->confidence = 0;
    if (out->confidence > 1)
        out->confidence = 1;
    return rc;
}

/* ---- the KB's threshold --------------------------------------------------- */

const struct scope_prior *triage_oos_share(const struct triage *t)
{
    return &t->prior;
}

int triage_measures_share(const struct triage *t)
{
    return t->intents && intents_scope(t->intents)->is_fitted && !t->settings.is_fixed_prior;
}

int triage_add_traffic(struct triage *t, const char *text, size_t n, const char *lang)
{
    const struct intents *set = t->intents;
    if (!triage_measures_share(t))
        return 0;
    if (!cd_utf8_valid(text, n))
        return CD_EINVAL;
    struct intents_result r;
    int rc = tokenizer_for(t, lang);
    if (rc || (rc = analyse_message(t, text, n)) ||
        (rc = intents_classify_analysed(set, t->scratch, &t->analysis, lang, &r)))
        return rc;
    scope_prior_add(&t->prior, r.p_in);
    return 0;
}

const struct triage_kb_calibration *triage_kb_calibration(const struct triage *t)
{
    return &t->kb_cal;
}

/* Adds the coverage of the best hit for the analysed question (the first hit
 * not named skip) to cov[]; *n_cov counts. A hit that matches a phrasing
 * closely enough to be answered whatever its coverage counts as 2. */
static int kb_probe(struct triage *t, const struct text_analysis *question, const char *lang,
                    const char *skip, double *cov, int *n_cov)
{
    struct kb_hit hits[4];
    int n_hits = 0;
    if (kb_search_analysed(t->kb, question, lang, hits, 4, &n_hits))
        return 0;
    for (int i = 0; i < n_hits; i++) {
        if (skip && !strcmp(hits[i].id, skip))
            continue;
        struct coverage_ctx c;
        coverage_start(t, question, hits[i].lang, &c);
        cov[(*n_cov)++] = hits[i].match >= TRIAGE_KB_MATCH ? 2.0 : kb_coverage(t, &c, &hits[i]);
        break;
    }
    kb_hits_clear(hits, n_hits);
    return 0;
}

/* Share of the n sorted values >= v. */
static double share_at_least(const double *v, int n, double x)
{
    return n ? (double)(n - cd_lower_bound(v, n, x)) / n : 0;
}

int triage_calibrate_kb(struct triage *t, double max_false)
{
    if (!t->kb)
        return CD_ESTATE;
    if (!(max_false > 0 && max_false < 1))
        max_false = 0.05;
    int n_bg_rows = 0;
    for (int b = 0; scope_background[b].text; b++)
        n_bg_rows++;
    double *bg = malloc((size_t)(n_bg_rows ? n_bg_rows : 1) * sizeof *bg);
    if (!bg)
        return CD_ENOMEM;
    int n_bg = 0;
    /* The background's how-to questions (the only ones answered by
     * coverage) in the KB's languages: questions about anything else. */
    for (int b = 0; scope_background[b].text; b++) {
        const char *lang = scope_background[b].lang, *text = scope_background[b].text;
        if (!kb_has_lang(t->kb, lang) || tokenizer_for(t, lang) ||
            analyse_message(t, text, strlen(text)))
            continue;
        struct triage_signals sig;
        compute_signals(t, &t->analysis, fold_message(t, &t->analysis), &sig);
        if (sig.is_howto)
            kb_probe(t, &t->analysis, lang, NULL, bg, &n_bg);
    }
    qsort(bg, (size_t)n_bg, sizeof *bg, cd_compare_doubles);
    /* The lowest threshold (in steps of 0.01) that lets through at most
     * max_false of them. (An article's own question searched without its
     * article was tried too: a sibling article often answers it rightly, so
     * it overstated what gets through and held back good answers.) */
    double best = 1.01, rate = 0;
    for (int k = 100; k >= 0; k--) {
        double f = share_at_least(bg, n_bg, k / 100.0);
        if (f > max_false)
            break;
        best = k / 100.0;
        rate = f;
    }
    t->kb_cal.is_fitted = n_bg >= 20;
    t->kb_cal.t_coverage = best;
    t->kb_cal.max_false = max_false;
    t->kb_cal.false_rate = rate;
    t->kb_cal.n_background = n_bg;
    free(bg);
    return 0;
}

/* ---- JSON -------------------------------------------------------------- */

static json_t *candidate_json(const struct triage_candidate *c)
{
    return json_pack("{s:s, s:s, s:f}", "intent", c->intent, "label", c->label ? c->label : "",
                     "probability", round(c->probability * 10000) / 10000);
}

int triage_decision_to_json(const struct triage_decision *d, struct cd_buf *out)
{
    json_t *articles = json_array(), *candidates = json_array(), *model = json_array();
    json_t *root = NULL;
    int rc = CD_ENOMEM;
    if (!articles || !candidates || !model)
        goto done;
    for (int i = 0; i < d->n_articles; i++)
        json_array_append_new(
            articles, json_pack("{s:s, s:s, s:s}", "id", d->articles[i].id, "title",
                                d->articles[i].title ? d->articles[i].title : d->articles[i].id,
                                "url", d->articles[i].url));
    for (int i = 0; i < d->n_candidates; i++)
        json_array_append_new(candidates, candidate_json(&d->candidates[i]));
    for (int i = 0; i < d->evidence.n_model; i++)
        json_array_append_new(model, candidate_json(&d->evidence.model[i]));
    json_t *evidence = json_pack("{s:s, s:s?, s:s?, s:O, s:f, s:f, s:f, s:s?, s:f, s:f}", "reason",
                                 d->evidence.reason ? d->evidence.reason : "", "rule_intent",
                                 d->evidence.rule_intent[0] ? d->evidence.rule_intent : NULL,
                                 "rule", d->evidence.rule[0] ? d->evidence.rule : NULL, "model",
                                 model, "p_oos", round(d->evidence.p_oos * 10000) / 10000, "p_in",
                                 round(d->evidence.p_in * 10000) / 10000, "known_share",
                                 round(d->evidence.known_share * 10000) / 10000, "kb_article",
                                 d->evidence.kb_article[0] ? d->evidence.kb_article : NULL,
                                 "kb_score", round(d->evidence.kb_score * 10000) / 10000,
                                 "kb_match", round(d->evidence.kb_match * 10000) / 10000);
    json_t *signals = json_pack(
        "{s:b, s:b, s:i, s:b}", "person_request", d->signals.is_person_request, "not_helped",
        d->signals.is_not_helped, "anger", d->signals.anger, "howto", d->signals.is_howto);
    root = json_pack("{s:s, s:s?, s:f, s:s?, s:i, s:b, s:s, s:O, s:O, s:o, s:o}", "action",
                     triage_action_name(d->action), "intent", d->intent[0] ? d->intent : NULL,
                     "confidence", round(d->confidence * 10000) / 10000, "queue",
                     d->queue[0] ? d->queue : NULL, "priority", d->priority, "sensitive",
                     d->is_sensitive, "answer", d->answer ? d->answer : "", "articles", articles,
                     "candidates", candidates, "signals", signals, "evidence", evidence);
    if (!root)
        goto done;
    if (d->collect_prompt && json_object_set_new(root, "collect",
                                                 json_pack("{s:s, s:s}", "field",
                                                           d->collect_field ? d->collect_field : "",
                                                           "prompt", d->collect_prompt)))
        goto done;
    char *s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(4));
    if (!s)
        goto done;
    rc = cd_buf_puts(out, s);
    free(s);
done:
    json_decref(articles);
    json_decref(candidates);
    json_decref(model);
    json_decref(root);
    return rc;
}

/* ==== Turns decided outside triage_decide(), and the bot's wording ==========================
 * chat.c's protocol code asks here for every decision it makes itself (a clicked clarify
 * choice, a KB-only deployment, "that didn't help", a request for a person) and for every
 * sentence the bot says, so that policy and wording have one home. This section is separate
 * from the classification and threshold code above and does not touch it. */

/* The bot's sentences, one row a language: English first (the fallback), then Spanish. */
static const struct {
    const char *lang;
    const char *text[TRIAGE_SAY_PERSON + 1];
} phrases[] = {
    {"en",
     {
         [TRIAGE_SAY_HANDOFF] = "I'm connecting you with a member of our team who can help with "
                                "this. Please stay in the chat; they will see everything you've "
                                "written so far.",
         [TRIAGE_SAY_CHOICE_HANDOFF] = "I'm passing you to a colleague who can help with this.",
         [TRIAGE_SAY_NO_ANSWER_HANDOFF] = "Let me connect you with a person who can help.",
         [TRIAGE_SAY_COLLECTED] = "Thank you. I'm passing you to a colleague now.",
         [TRIAGE_SAY_COLLECT_AGAIN] = "Sorry, I could not read that.",
         [TRIAGE_SAY_NOT_HELPED_CLARIFY] = "Sorry about that. Which of these is closest?",
         [TRIAGE_SAY_NOT_HELPED_HANDOFF] =
             "Sorry that did not help. Let me connect you with a person.",
         [TRIAGE_SAY_CLARIFY] = "I want to get this right. Which of these do you mean?",
         [TRIAGE_SAY_PERSON] = "I'm connecting you with a person.",
     }},
    {"es",
     {
         [TRIAGE_SAY_HANDOFF] = "Te paso con una persona de nuestro equipo que puede ayudarte con "
                                "esto. Quédate en el chat: verá todo lo que has escrito hasta "
                                "ahora.",
         [TRIAGE_SAY_CHOICE_HANDOFF] = "Te paso con un compañero que puede ayudarte con esto.",
         [TRIAGE_SAY_NO_ANSWER_HANDOFF] = "Te pongo en contacto con una persona que pueda "
                                          "ayudarte.",
         [TRIAGE_SAY_COLLECTED] = "Gracias. Ahora te paso con un compañero.",
         [TRIAGE_SAY_COLLECT_AGAIN] = "Perdona, no he podido leerlo.",
         [TRIAGE_SAY_NOT_HELPED_CLARIFY] = "Lo siento. ¿Cuál de estas opciones se acerca más?",
         [TRIAGE_SAY_NOT_HELPED_HANDOFF] =
             "Siento que no te haya servido. Te pongo en contacto con una persona.",
         [TRIAGE_SAY_CLARIFY] = "Quiero acertar. ¿A cuál de estas te refieres?",
         [TRIAGE_SAY_PERSON] = "Te pongo en contacto con una persona.",
     }},
};

const char *triage_say(enum triage_phrase p, const char *lang)
{
    return triage_phrase(NULL, p, lang); /* no wording of a deployment's own: the built-in */
}

static const char *const phrase_names[TRIAGE_SAY_PERSON + 1] = {
    [TRIAGE_SAY_HANDOFF] = "handoff",
    [TRIAGE_SAY_CHOICE_HANDOFF] = "choice_handoff",
    [TRIAGE_SAY_NO_ANSWER_HANDOFF] = "no_answer_handoff",
    [TRIAGE_SAY_COLLECTED] = "collected",
    [TRIAGE_SAY_COLLECT_AGAIN] = "collect_again",
    [TRIAGE_SAY_NOT_HELPED_CLARIFY] = "not_helped_clarify",
    [TRIAGE_SAY_NOT_HELPED_HANDOFF] = "not_helped_handoff",
    [TRIAGE_SAY_CLARIFY] = "clarify",
    [TRIAGE_SAY_PERSON] = "person",
};

const char *triage_phrase_name(enum triage_phrase p)
{
    return (int)p >= 0 && p <= TRIAGE_SAY_PERSON ? phrase_names[p] : NULL;
}

#define PHRASE_MAX_BYTES 1000

__attribute__((format(printf, 2, 3))) static int phrases_error(char **err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && vasprintf(err, fmt, ap) < 0)
        *err = NULL;
    va_end(ap);
    return CD_EINVAL;
}

/* Reads one language's object into w. Returns 0, CD_EINVAL (with *err) or CD_ENOMEM. */
static int read_wording(const char *tag, json_t *obj, struct triage_wording *w, char **err)
{
    if (!json_is_object(obj))
        return phrases_error(err, "'%s': must be an object of phrase names to sentences", tag);
    const char *name;
    json_t *v;
    json_object_foreach(obj, name, v)
    {
        /* no_answer_handoff is said only without a triage (triage_decide_kb_only()). */
        int p = 0;
        while (p <= TRIAGE_SAY_PERSON &&
               (p == TRIAGE_SAY_NO_ANSWER_HANDOFF || strcmp(phrase_names[p], name)))
            p++;
        if (p > TRIAGE_SAY_PERSON)
            return phrases_error(err,
                                 "'%s': no phrase '%s' (handoff, choice_handoff, collected, "
                                 "collect_again, not_helped_clarify, not_helped_handoff, "
                                 "clarify, person)",
                                 tag, name);
        const char *text = json_string_value(v);
        size_t len = text ? json_string_length(v) : 0;
        if (!text || len == 0 || len > PHRASE_MAX_BYTES || memchr(text, 0, len))
            return phrases_error(err, "'%s'.'%s': must be a sentence of 1 to 1000 bytes", tag,
                                 name);
        if (!(w->text[p] = strdup(text)))
            return CD_ENOMEM;
    }
    return 0;
}

int triage_set_phrases(struct triage *t, const char *json, size_t n, char **err)
{
    if (err)
        *err = NULL;
    json_error_t je;
    json_t *root = json_loadb(json, n, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        return phrases_error(err, "not JSON (line %d: %s)", je.line, je.text);
    }
    int rc = 0;
    size_t n_langs = json_is_object(root) ? json_object_size(root) : 0;
    struct triage_wording *w = calloc(n_langs ? n_langs : 1, sizeof *w);
    int n_w = 0;
    if (!json_is_object(root)) {
        rc = phrases_error(err, "must be an object of language tags (\"en\", \"fr\", ...)");
    } else if (!w) {
        rc = CD_ENOMEM;
    } else {
        const char *tag;
        json_t *v;
        json_object_foreach(root, tag, v)
        {
            struct triage_wording *row = &w[n_w];
            if (!text_lang_code(tag, row->lang)) {
                rc = phrases_error(err, "'%s': not a language tag (\"en\", \"pt-BR\", ...)", tag);
                break;
            }
            for (int i = 0; i < n_w && !rc; i++)
                if (!strcmp(w[i].lang, row->lang))
                    rc = phrases_error(err, "'%s': language '%s' given twice", tag, row->lang);
            n_w++;
            if (rc || (rc = read_wording(tag, v, row, err)))
                break;
        }
    }
    json_decref(root);
    if (rc) {
        wording_free(w, n_w);
        return rc;
    }
    wording_free(t->wording, t->n_wording);
    t->wording = w;
    t->n_wording = n_w;
    return 0;
}

static const char *own_phrase(const struct triage *t, enum triage_phrase p, const char *code)
{
    for (int i = 0; t && i < t->n_wording; i++)
        if (!strcmp(t->wording[i].lang, code))
            return t->wording[i].text[p];
    return NULL;
}

const char *triage_phrase(const struct triage *t, enum triage_phrase p, const char *lang)
{
    if ((int)p < 0 || p > TRIAGE_SAY_PERSON)
        return "";
    char code[16] = "en";
    if (!lang || !text_lang_code(lang, code))
        snprintf(code, sizeof code, "en");
    const char *s = own_phrase(t, p, code);
    if (s)
        return s;
    /* The built-in wording of that language, if there is one; else the deployment's English,
     * else the built-in English. */
    for (size_t i = 1; i < sizeof phrases / sizeof phrases[0]; i++)
        if (!strcmp(phrases[i].lang, code))
            return phrases[i].text[p];
    s = own_phrase(t, p, "en");
    return s ? s : phrases[0].text[p];
}

int triage_decide_choice(const struct triage *t, struct kb *kb, const char *intent_name,
                         struct triage_decision *d)
{
    if (!t)
        return CD_ENOTFOUND;
    const struct intents *set = triage_intents(t);
    int i = set ? intents_find(set, intent_name) : -1;
    if (i < 0)
        return CD_ENOTFOUND;
    const struct intent *in = intents_get(set, i);
    memset(d, 0, sizeof *d);
    snprintf(d->intent, sizeof d->intent, "%s", in->name);
    d->confidence = 1.0;
    d->priority = in->priority > 0 ? in->priority : 3;
    d->is_sensitive = in->is_sensitive;
    snprintf(d->queue, sizeof d->queue, "%s", in->queue ? in->queue : "general");
    d->evidence.reason = "choice";
    if (in->action != INTENT_ANSWER || in->is_sensitive || in->is_person_request) {
        d->action = TRIAGE_HANDOFF;
        if (in->action == INTENT_COLLECT && in->collect.prompt) {
            d->collect_field = strdup(in->collect.field ? in->collect.field : "detail");
            d->collect_prompt = strdup(in->collect.prompt);
        }
        d->answer = strdup(triage_phrase(t, TRIAGE_SAY_CHOICE_HANDOFF, in->lang));
        return d->answer ? 0 : CD_ENOMEM;
    }
    d->action = TRIAGE_ANSWER;
    char *passage = NULL;
    if (in->article && kb) {
        struct kb_article a;
        memset(&a, 0, sizeof a);
        if (kb_get(kb, in->article, &a) == 0) {
            snprintf(d->articles[0].id, sizeof d->articles[0].id, "%s", a.id);
            d->articles[0].title = cd_strdup(a.title);
            snprintf(d->articles[0].url, sizeof d->articles[0].url, "/kb/%s", a.id);
            d->n_articles = 1;
            if (!in->response) /* no question to match: the first paragraph */
                kb_passage(kb, a.id, NULL, &passage);
            kb_article_clear(&a);
        }
    }
    if (in->response)
        d->answer = strdup(in->response);
    else if (passage)
        d->answer = passage, passage = NULL;
    else
        d->answer = strdup(in->description ? in->description : in->name);
    free(passage);
    return d->answer ? 0 : CD_ENOMEM;
}

int triage_decide_kb_only(struct kb *kb, const char *text, const char *lang,
                          struct triage_decision *d)
{
    memset(d, 0, sizeof *d);
    snprintf(d->queue, sizeof d->queue, "general");
    d->priority = 3;
    struct kb_hit hits[3];
    int n = 0;
    /* Only the best hit's passage is shown; the others are listed by title. */
    struct text_analysis q = {.text = text, .n = text ? strlen(text) : 0};
    if (kb && text && kb_search_hits(kb, &q, lang, hits, 3, 1, &n) == 0 && n > 0) {
        d->action = TRIAGE_ANSWER;
        d->confidence = 0.5;
        d->answer = strdup(hits[0].passage ? hits[0].passage : "");
        for (int i = 0; i < n && i < TRIAGE_MAX_ARTICLES; i++) {
            snprintf(d->articles[i].id, sizeof d->articles[i].id, "%.*s", KB_ID_MAX - 1,
                     hits[i].id);
            d->articles[i].title = cd_strdup(hits[i].title);
            snprintf(d->articles[i].url, sizeof d->articles[i].url, "/kb/%.*s", KB_ID_MAX - 1,
                     hits[i].id);
            d->n_articles++;
        }
        kb_hits_clear(hits, n);
    } else {
        d->action = TRIAGE_HANDOFF;
        d->answer = strdup(triage_say(TRIAGE_SAY_NO_ANSWER_HANDOFF, lang));
    }
    d->evidence.reason = "kb";
    return d->answer ? 0 : CD_ENOMEM;
}

int triage_not_helped(const struct triage *t, struct triage_decision *d, const char *lang)
{
    if (d->action != TRIAGE_ANSWER)
        return 0;
    if (d->n_candidates >= 2) {
        d->action = TRIAGE_CLARIFY;
        free(d->answer);
        d->answer = strdup(triage_phrase(t, TRIAGE_SAY_NOT_HELPED_CLARIFY, lang));
        d->n_articles = 0;
    } else {
        d->action = TRIAGE_HANDOFF;
        free(d->answer);
        d->answer = strdup(triage_phrase(t, TRIAGE_SAY_NOT_HELPED_HANDOFF, lang));
    }
    return d->answer ? 0 : CD_ENOMEM;
}

/* The priority of a customer's explicit request for a person: that of the person-request
 * intent (in lang if there is one), so the "Talk to a person" button and typing "I want to
 * talk to a person" queue alike; 3 without such an intent. */
static int person_request_priority(const struct triage *t, const char *lang)
{
    const struct intents *set = t ? triage_intents(t) : NULL;
    int priority = 0, n = set ? intents_count(set) : 0;
    for (int i = 0; i < n; i++) {
        const struct intent *in = intents_get(set, i);
        if (!in || !in->is_person_request || in->priority <= 0)
            continue;
        if (in->lang && lang && !strcmp(in->lang, lang))
            return in->priority;
        if (!priority)
            priority = in->priority;
    }
    return priority > 0 ? priority : 3;
}

int triage_person_request(const struct triage *t, const char *last_intent, const char *lang,
                          const char *fallback_queue, struct triage_decision *d)
{
    memset(d, 0, sizeof *d);
    d->action = TRIAGE_HANDOFF;
    snprintf(d->intent, sizeof d->intent, "human");
    d->confidence = 1.0;
    d->priority = person_request_priority(t, lang);
    /* Route by what the conversation is about, if the bot knows; the priority is that of
     * the request itself, not of the intent before it (a greeting is not urgent, nor is it
     * a reason to wait longer). */
    const char *q = fallback_queue && *fallback_queue ? fallback_queue : "general";
    if (t && last_intent && *last_intent) {
        const struct intents *set = triage_intents(t);
        int i = set ? intents_find(set, last_intent) : -1;
        const struct intent *in = i >= 0 ? intents_get(set, i) : NULL;
        if (in && in->queue)
            q = in->queue;
    }
    snprintf(d->queue, sizeof d->queue, "%s", q);
    d->answer = strdup(triage_phrase(t, TRIAGE_SAY_PERSON, lang));
    return d->answer ? 0 : CD_ENOMEM;
}
