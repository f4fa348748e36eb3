/* scope: P(in scope) from cross-fitted rows (see scope.h). */
#include "scope.h"

#include "cd.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void scope_features(const double *raw, const double *p, const unsigned char *is_oos,
                    const unsigned char *is_off, int K, double known_share, int unknown,
                    int n_words, double f[SCOPE_N_FEATS])
{
    double p1 = 0, p2 = 0, p_oos = 0, mx = -INFINITY;
    for (int k = 0; k < K; k++) {
        if (is_off && is_off[k])
            continue;
        if (is_oos && is_oos[k]) {
            p_oos += p[k];
            continue;
        }
        if (p[k] > p1) {
            p2 = p1;
            p1 = p[k];
        } else if (p[k] > p2) {
            p2 = p[k];
        }
        if (raw[k] > mx)
            mx = raw[k];
    }
    double sum = 0;
    for (int k = 0; k < K; k++)
        if (!(is_off && is_off[k]) && !(is_oos && is_oos[k]))
            sum += exp(raw[k] - mx);
    if (!isfinite(mx)) {
        mx = 0;
        sum = 1;
    }
    f[0] = log(p1 > 1e-6 ? p1 : 1e-6);
    f[1] = f[0] - log(p2 > 1e-6 ? p2 : 1e-6);
    f[2] = mx;
    f[3] = mx + log(sum);
    f[4] = known_share;
    f[5] = log(p_oos + 1e-4);
    f[6] = n_words ? (double)unknown / n_words : 0;
}

static double sigmoid(double z)
{
    return z >= 0 ? 1.0 / (1.0 + exp(-z)) : exp(z) / (1.0 + exp(z));
}

static double linear(const struct scope_model *m, const double *f)
{
    double z = m->w[SCOPE_N_FEATS];
    for (int j = 0; j < SCOPE_N_FEATS; j++)
        if (m->sd[j] > 0)
            z += m->w[j] * (f[j] - m->mean[j]) / m->sd[j];
    return z;
}

double scope_p_in(const struct scope_model *m, const double f[SCOPE_N_FEATS])
{
    if (!m || !m->is_fitted)
        return 1.0;
    return sigmoid(linear(m, f));
}

/* Solves the D x D system a x = b in place by Gaussian elimination with
 * partial pivoting. Returns -1 when singular. */
static int solve(double *a, double *b, int d)
{
    for (int c = 0; c < d; c++) {
        int piv = c;
        for (int r = c + 1; r < d; r++)
            if (fabs(a[r * d + c]) > fabs(a[piv * d + c]))
                piv = r;
        if (fabs(a[piv * d + c]) < 1e-12)
            return -1;
        if (piv != c) {
            for (int k = 0; k < d; k++) {
                double t = a[c * d + k];
                a[c * d + k] = a[piv * d + k];
                a[piv * d + k] = t;
            }
            double t = b[c];
            b[c] = b[piv];
            b[piv] = t;
        }
        for (int r = c + 1; r < d; r++) {
            double q = a[r * d + c] / a[c * d + c];
            for (int k = c; k < d; k++)
                a[r * d + k] -= q * a[c * d + k];
            b[r] -= q * b[c];
        }
    }
    for (int c = d - 1; c >= 0; c--) {
        double s = b[c];
        for (int k = c + 1; k < d; k++)
            s -= a[c * d + k] * b[k];
        b[c] = s / a[c * d + c];
    }
    return 0;
}

struct ranked {
    double score;
    int is_in;
};

static int compare_ranked(const void *a, const void *b)
{
    double x = ((const struct ranked *)a)->score, y = ((const struct ranked *)b)->score;
    return x < y ? -1 : x > y;
}

/* Area under the ROC curve of the scores, in-scope rows as positives (ties
 * count a half). */
static double auroc(struct ranked *r, int n)
{
    qsort(r, (size_t)n, sizeof *r, compare_ranked);
    double n_pos = 0, n_neg = 0, rank_sum = 0;
    for (int i = 0; i < n;) {
        int j = i;
        while (j < n && r[j].score == r[i].score)
            j++;
        double mid = (i + j + 1) / 2.0; /* mean 1-based rank of the tie group */
        for (int k = i; k < j; k++)
            if (r[k].is_in) {
                rank_sum += mid;
                n_pos++;
            } else {
                n_neg++;
            }
        i = j;
    }
    if (n_pos == 0 || n_neg == 0)
        return 0.5;
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg);
}

int scope_fit(struct scope_model *m, const struct scope_row *rows, int n, double prior_oos)
{
    memset(m, 0, sizeof *m);
    if (!(prior_oos > 0 && prior_oos < 1))
        prior_oos = 0.5;
    m->prior_oos = prior_oos;
    int count[3] = {0, 0, 0};
    for (int i = 0; i < n; i++)
        count[rows[i].kind]++;
    int n_in = count[SCOPE_IN], n_out = n - n_in;
    m->n_in = n_in;
    m->n_out = n_out;
    if (n_in < 10 || n_out < 10)
        return 0;
    /* Each side weighs its share of traffic in total, and the whole weighs as
     * many rows as there are (so the ridge below means the same at any size). */
    double wk[3];
    wk[SCOPE_IN] = (1 - prior_oos) * n / n_in;
    int n_kinds = (count[SCOPE_HELD_OUT] > 0) + (count[SCOPE_BACKGROUND] > 0);
    for (int k = SCOPE_HELD_OUT; k <= SCOPE_BACKGROUND; k++)
        wk[k] = count[k] ? prior_oos / n_kinds * n / count[k] : 0;
    for (int j = 0; j < SCOPE_N_FEATS; j++) {
        double s = 0, ss = 0;
        for (int i = 0; i < n; i++)
            s += rows[i].f[j];
        double mean = s / n;
        for (int i = 0; i < n; i++)
            ss += (rows[i].f[j] - mean) * (rows[i].f[j] - mean);
        m->mean[j] = mean;
        m->sd[j] = sqrt(ss / n) > 1e-9 ? sqrt(ss / n) : 0;
    }
    /* Newton's method on the weighted log-loss with a small ridge: a
     * handful of features, so each step is a 7 x 7 solve. */
    enum { D = SCOPE_N_FEATS + 1 };
    const double ridge = 1.0;
    double x[D];
    for (int it = 0; it < 30; it++) {
        double h[D * D] = {0}, g[D] = {0};
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < SCOPE_N_FEATS; j++)
                x[j] = m->sd[j] > 0 ? (rows[i].f[j] - m->mean[j]) / m->sd[j] : 0;
            x[SCOPE_N_FEATS] = 1;
            double p = sigmoid(linear(m, rows[i].f));
            int is_in = rows[i].kind == SCOPE_IN;
            double wt = wk[rows[i].kind];
            double r = p - (is_in ? 1.0 : 0.0);
            for (int a = 0; a < D; a++) {
                g[a] += wt * r * x[a];
                for (int b = 0; b <= a; b++)
                    h[a * D + b] += wt * p * (1 - p) * x[a] * x[b];
            }
        }
        for (int a = 0; a < D; a++) {
            for (int b = a + 1; b < D; b++)
                h[a * D + b] = h[b * D + a];
            if (a < SCOPE_N_FEATS) {
                h[a * D + a] += ridge;
                g[a] += ridge * m->w[a];
            }
        }
        if (solve(h, g, D))
            break;
        double step = 0;
        for (int a = 0; a < D; a++) {
            m->w[a] -= g[a];
            step += fabs(g[a]);
        }
        if (step < 1e-8)
            break;
    }
    m->is_fitted = 1;

    struct ranked *r = malloc((size_t)n * sizeof *r);
    if (!r) {
        m->is_fitted = 0;
        return CD_ENOMEM;
    }
    int kept = 0, caught = 0;
    double fin[SCOPE_N_FEATS] = {0};
    for (int i = 0; i < n; i++) {
        r[i].score = linear(m, rows[i].f);
        r[i].is_in = rows[i].kind == SCOPE_IN;
        if (r[i].is_in) {
            kept += r[i].score >= 0;
            for (int j = 0; j < SCOPE_N_FEATS; j++)
                fin[j] += rows[i].f[j] / n_in;
        } else {
            caught += r[i].score < 0;
        }
    }
    m->in_kept = (double)kept / n_in;
    m->out_caught = (double)caught / n_out;
    m->auroc = auroc(r, n);
    free(r);
    /* Where the top probability alone moves P(in scope) across 0.5. */
    m->p_top_at_half = 1.0;
    if (m->sd[0] > 0 && m->w[0] > 0) {
        double z = linear(m, fin) - m->w[0] * (fin[0] - m->mean[0]) / m->sd[0];
        double f0 = m->mean[0] - z * m->sd[0] / m->w[0];
        m->p_top_at_half = f0 < 0 ? exp(f0) : 1.0;
    }
    return 0;
}

/* ---- the traffic's out-of-scope share -------------------------------------------------- */

void scope_prior_reset(struct scope_prior *sp, double assumed)
{
    memset(sp, 0, sizeof *sp);
    sp->assumed = assumed > 0 && assumed < 1 ? assumed : 0.5;
    sp->estimate = sp->assumed;
}

void scope_prior_carry(struct scope_prior *sp, double share, int n_messages)
{
    if (!(share >= SCOPE_PRIOR_LOW && share <= SCOPE_PRIOR_HIGH))
        return;
    sp->estimate = share;
    sp->is_carried = 1;
    sp->n_carried = n_messages;
}

int scope_prior_is_measured(const struct scope_prior *sp)
{
    return sp->n_estimates > 0 || sp->is_carried;
}

int scope_prior_measured_on(const struct scope_prior *sp)
{
    return sp->n_estimates ? sp->n : sp->is_carried ? sp->n_carried : sp->n;
}

/* P(in scope) p, given at out-of-scope share from, at share to. */
static double reweigh(double p, double from, double to)
{
    double a = p * (1 - to) / (1 - from), b = (1 - p) * to / from;
    return a + b > 0 ? a / (a + b) : p;
}

static void measure(struct scope_prior *sp)
{
    double pi = sp->estimate;
    for (int it = 0; it < 100; it++) {
        double in = 0;
        for (int i = 0; i < sp->n; i++)
            in += reweigh(sp->p[i], sp->assumed, pi);
        double next = 1 - in / sp->n;
        if (next < SCOPE_PRIOR_LOW)
            next = SCOPE_PRIOR_LOW;
        if (next > SCOPE_PRIOR_HIGH)
            next = SCOPE_PRIOR_HIGH;
        int is_done = fabs(next - pi) < 1e-4;
        pi = next;
        if (is_done)
            break;
    }
    sp->estimate = pi;
    sp->n_estimates++;
}

void scope_prior_add(struct scope_prior *sp, double p_in)
{
    if (!(p_in >= 0 && p_in <= 1))
        return;
    sp->p[sp->next] = (float)p_in;
    sp->next = (sp->next + 1) % SCOPE_PRIOR_WINDOW;
    if (sp->n < SCOPE_PRIOR_WINDOW)
        sp->n++;
    if (++sp->since >= SCOPE_PRIOR_EVERY && sp->n >= SCOPE_PRIOR_MIN) {
        sp->since = 0;
        measure(sp);
    }
}

double scope_prior_adjust(const struct scope_prior *sp, double p_in)
{
    if (!sp->n_estimates && !sp->is_carried)
        return p_in;
    return reweigh(p_in, sp->assumed, sp->estimate);
}
