/* sens: the sensitivity scan (see sens.h). */
#include "collector/run/sens.h"

#include "collector/engine/engine.h"
#include "collector/engine/generate.h"
#include "collector/eval/metrics.h"
#include "collector/eval/suite.h"
#include "collector/model/model.h"
#include "collector/model/qmodel.h"
#include "collector/quant/calib.h"
#include "collector/run/run.h"
#include "collector/store/store_sens.h"
#include "collector/tokenizer/tokenizer.h"
#include "kernels/base/err.h"

#include <glib.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_BASE_FLOATS ((int64_t)1 << 28) /* 1 GiB of baseline log-probabilities */

static const char *const kind_names[] = {"q",  "k",    "v",     "o",      "gate",
                                         "up", "down", "layer", "output", "embed"};

/* One scored sequence: positions s0 .. n-2 predict ids[s0+1 .. n-1]. */
struct seq {
    int32_t *ids;
    int64_t n, s0;
};

/* A suite item the accuracy is measured on. */
struct sitem {
    const struct qb_suite_item *it;
    int32_t *ids; /* the formatted prompt */
    int64_t n;
    int32_t **cids; /* choice: each choice's tokens */
    int64_t *cn;
};

struct scan {
    const struct qb_sens_opts *o;
    struct qb_model *m;
    struct qb_qmodel *base, *low, *keep;
    struct qb_suite *su;
    struct seq *seqs;
    int64_t n_seqs, n_pos, vocab;
    struct sitem *items;
    int64_t n_items;
    float *base_lp; /* (n_pos, vocab) the baseline's log-probabilities, in sequence order */
    float *logits;  /* (max seq, vocab) scratch */
    int64_t max_n;
};

static void log_softmax(float *v, int64_t n)
{
    float mx = v[0];
    double s = 0;
    for (int64_t i = 1; i < n; i++)
        mx = v[i] > mx ? v[i] : mx;
    for (int64_t i = 0; i < n; i++)
        s += exp((double)(v[i] - mx));
    float lse = mx + (float)log(s);
    for (int64_t i = 0; i < n; i++)
        v[i] -= lse;
}

/* ---- the qmodel that borrows the baseline's tensors but the units' --------------------- */

static void view_free(struct qb_qmodel *v)
{
    if (v)
        free(v->lin);
    free(v);
}

static int view_new(const struct scan *S, const struct qb_sens_unit *const *u, int n,
                    struct qb_qmodel **out)
{
    const int64_t nl = S->m->cfg.n_layers;
    struct qb_qmodel *v = malloc(sizeof *v);
    *out = NULL;
    if (!v || !(memcpy(v, S->base, sizeof *v),
                v->lin = malloc((size_t)nl * QB_LIN_COUNT * sizeof *v->lin))) {
        free(v);
        return qb_err(QB_ENOMEM, "out of memory");
    }
    memcpy(v->lin, S->base->lin, (size_t)nl * QB_LIN_COUNT * sizeof *v->lin);
    for (int i = 0; i < n; i++) {
        int64_t l = u[i]->layer;
        if (u[i]->kind < QB_LIN_COUNT)
            v->lin[l * QB_LIN_COUNT + u[i]->kind] = S->low->lin[l * QB_LIN_COUNT + u[i]->kind];
        else if (u[i]->kind == 7)
            memcpy(v->lin + l * QB_LIN_COUNT, S->low->lin + l * QB_LIN_COUNT,
                   QB_LIN_COUNT * sizeof *v->lin);
        else if (u[i]->kind == 8)
            v->output = S->low->output, v->embed_shares_output = 0;
        else {
            v->embed = S->low->embed, v->embed_shares_output = 0;
            v->embed.act = QB_ACT_F32;
        }
    }
    *out = v;
    return 0;
}

/* ---- what is measured ---------------------------------------------------------------- */

/* Mean KL from the baseline over every scored position, on engine e. */
static int measure_kl(struct scan *S, struct qb_engine *e, double *kl)
{
    double sum = 0;
    int64_t p = 0;
    int rc;
    for (int64_t i = 0; i < S->n_seqs; i++) {
        const struct seq *q = &S->seqs[i];
        qb_engine_reset(e);
        if ((rc = qb_engine_forward(e, q->ids, q->n, S->logits)) < 0)
            return rc;
        for (int64_t t = q->s0; t < q->n - 1; t++, p++) {
            float *lq = S->logits + t * S->vocab;
            const float *lb = S->base_lp + p * S->vocab;
            double k = 0;
            log_softmax(lq, S->vocab);
            for (int64_t j = 0; j < S->vocab; j++)
                k += exp((double)lb[j]) * ((double)lb[j] - (double)lq[j]);
            sum += k;
        }
    }
    *kl = S->n_pos ? sum / (double)S->n_pos : NAN;
    return 0;
}

/* Summed log-probability of cont (n) after the prompt of item si. */
static int choice_ll(struct scan *S, struct qb_engine *e, const struct sitem *si,
                     const int32_t *cont, int64_t n, double *ll)
{
    int64_t len = si->n + n;
    int32_t *ids = malloc((size_t)len * sizeof *ids);
    int rc;
    if (!ids)
        return qb_err(QB_ENOMEM, "out of memory");
    memcpy(ids, si->ids, (size_t)si->n * sizeof *ids);
    memcpy(ids + si->n, cont, (size_t)n * sizeof *ids);
    qb_engine_reset(e);
    *ll = 0;
    if ((rc = qb_engine_forward(e, ids, len, S->logits)) == 0)
        for (int64_t t = si->n - 1; t < len - 1; t++) {
            float *lg = S->logits + t * S->vocab;
            log_softmax(lg, S->vocab);
            *ll += lg[ids[t + 1]];
        }
    free(ids);
    return rc;
}

/* One item's score on engine e; gen (may be NULL) receives a generate item's output ids. */
static int score_item(struct scan *S, struct qb_engine *e, const struct sitem *si, double *score,
                      struct qb_gen_result *gen)
{
    const struct qb_suite_item *it = si->it;
    int rc;
    if (it->kind == QB_KIND_GENERATE) {
        struct qb_gen_opts go = QB_GEN_OPTS_INIT;
        struct qb_gen_result g;
        go.max_tokens = it->max_tokens;
        go.stop = it->stop;
        qb_engine_reset(e);
        if ((rc = qb_generate(e, S->m->tok, S->vocab, si->ids, si->n, &go, NULL, NULL, &g)) < 0)
            return rc;
        rc = qb_metric_score(it, g.text, g.n_text, score);
        if (gen)
            *gen = g;
        else
            qb_gen_result_release(&g);
        return rc;
    }
    if (it->kind == QB_KIND_CHOICE) {
        double *ll = calloc((size_t)it->n_choices, sizeof *ll);
        if (!ll)
            return qb_err(QB_ENOMEM, "out of memory");
        rc = 0;
        for (int64_t c = 0; c < it->n_choices && rc == 0; c++)
            rc = si->cn[c] ? choice_ll(S, e, si, si->cids[c], si->cn[c], &ll[c])
                           : (ll[c] = -INFINITY, 0);
        if (rc == 0)
            rc = qb_choice_score(it, ll, NULL, score);
        free(ll);
        return rc;
    }
    *score = NAN;
    return 0;
}

/* Accuracy in points over the items that score (NAN when none). */
static int measure_acc(struct scan *S, struct qb_engine *e, double *acc)
{
    int64_t n = 0, right = 0;
    int rc;
    for (int64_t i = 0; i < S->n_items; i++) {
        double sc;
        if ((rc = score_item(S, e, &S->items[i], &sc, NULL)) < 0)
            return rc;
        if (!isnan(sc))
            n++, right += sc >= 0.5;
    }
    *acc = n ? 100.0 * (double)right / (double)n : NAN;
    return 0;
}

/* Quantizes units u[0..n) (none: the baseline; NULL with n -1: the whole config) and
 * measures them. */
static int measure(struct scan *S, const struct qb_sens_unit *const *u, int n, double *kl,
                   double *acc)
{
    struct qb_qmodel *v = NULL;
    struct qb_engine *e = NULL;
    int rc;
    *kl = *acc = NAN;
    if (n >= 0 && (rc = view_new(S, u, n, &v)) < 0)
        return rc;
    if ((rc = qb_engine_new_q(n >= 0 ? v : S->low, 0, &e)) == 0 &&
        (rc = measure_kl(S, e, kl)) == 0 && acc && S->n_items)
        rc = measure_acc(S, e, acc);
    qb_engine_free(e);
    view_free(v);
    return rc;
}

/* ---- what is measured on: calibration sequences or suite items ---------------------- */

static int add_seq(struct scan *S, int32_t *ids, int64_t n, int64_t s0)
{
    struct seq *g = realloc(S->seqs, (size_t)(S->n_seqs + 1) * sizeof *g);
    if (!g) {
        free(ids);
        return qb_err(QB_ENOMEM, "out of memory");
    }
    S->seqs = g;
    S->seqs[S->n_seqs++] = (struct seq){ids, n, s0};
    S->n_pos += n - 1 - s0;
    S->max_n = n > S->max_n ? n : S->max_n;
    return 0;
}

static int calib_seqs(struct scan *S)
{
    const struct qb_sens_opts *o = S->o;
    struct qb_calib *cal = NULL;
    int rc =
        qb_calib_load(o->calib_path, S->m->tok, o->calib_sequences > 0 ? o->calib_sequences : 8,
                      o->calib_seq_len > 0 ? o->calib_seq_len : 256, S->m->cfg.max_seq_len, &cal);
    for (int64_t i = 0; rc == 0 && i < cal->n_seq; i++) {
        int32_t *ids = malloc((size_t)cal->seq_len * sizeof *ids);
        if (!ids) {
            rc = qb_err(QB_ENOMEM, "out of memory");
            break;
        }
        memcpy(ids, cal->tokens + i * cal->seq_len, (size_t)cal->seq_len * sizeof *ids);
        rc = add_seq(S, ids, cal->seq_len, 0);
    }
    qb_calib_free(cal);
    return rc;
}

static void sitem_release(struct sitem *si)
{
    free(si->ids);
    for (int64_t c = 0; si->cids && c < si->it->n_choices; c++)
        free(si->cids[c]);
    free(si->cids);
    free(si->cn);
    memset(si, 0, sizeof *si);
}

/* Tokenizes item it into si; 1 when it does not fit the context (skipped). */
static int tokenize(struct scan *S, const struct qb_suite_item *it, struct sitem *si)
{
    char *p = NULL;
    int64_t need;
    int rc;
    si->it = it;
    if ((rc = qb_suite_format_prompt(S->su, it, &p)) < 0)
        return rc;
    rc = qb_tok_encode(S->m->tok, p, strlen(p), QB_TOK_DEFAULT, &si->ids, &si->n);
    free(p);
    if (rc < 0)
        return qb_err_prefix(rc, "item '%s'", it->id);
    need = si->n + it->max_tokens;
    if (it->kind == QB_KIND_CHOICE) {
        if (!(si->cids = calloc((size_t)it->n_choices, sizeof *si->cids)) ||
            !(si->cn = calloc((size_t)it->n_choices, sizeof *si->cn)))
            return qb_err(QB_ENOMEM, "out of memory");
        for (int64_t c = 0; c < it->n_choices; c++) {
            if ((rc = qb_tok_encode(S->m->tok, it->choices[c], strlen(it->choices[c]),
                                    QB_TOK_NO_BOS, &si->cids[c], &si->cn[c])) < 0)
                return qb_err_prefix(rc, "item '%s'", it->id);
            need = si->n + si->cn[c] > need ? si->n + si->cn[c] : need;
        }
    }
    return si->n < 2 || need > S->m->cfg.max_seq_len;
}

/* The scored sequence of item si as the baseline answers it (g: its generation). */
static int item_seq(struct scan *S, const struct sitem *si, const struct qb_gen_result *g)
{
    const struct qb_suite_item *it = si->it;
    int64_t extra = 0, s0 = si->n - 1;
    const int32_t *cont = NULL;
    int eos = 0;
    if (it->kind == QB_KIND_GENERATE)
        cont = g->ids, extra = g->n_ids, eos = g->end == QB_GEN_END_EOS;
    else if (it->kind == QB_KIND_CHOICE && it->target_index >= 0)
        cont = si->cids[it->target_index], extra = si->cn[it->target_index];
    else
        s0 = 0;
    int32_t *ids = malloc((size_t)(si->n + extra + 1) * sizeof *ids);
    if (!ids)
        return qb_err(QB_ENOMEM, "out of memory");
    memcpy(ids, si->ids, (size_t)si->n * sizeof *ids);
    if (extra)
        memcpy(ids + si->n, cont, (size_t)extra * sizeof *ids);
    if (eos)
        ids[si->n + extra++] = qb_tok_eos(S->m->tok);
    if (si->n + extra - 1 <= s0) { /* nothing to score */
        free(ids);
        return 0;
    }
    return add_seq(S, ids, si->n + extra, s0);
}

/* The suite's items of the slice, the baseline's answers and accuracy. */
static int suite_seqs(struct scan *S, struct qb_engine *base, double *base_acc)
{
    const struct qb_sens_opts *o = S->o;
    struct qb_suite_opts so = QB_SUITE_OPTS_INIT;
    int64_t n = 0, right = 0;
    int rc;
    so.prompt_template = o->prompt_template;
    so.min_slice_items = 0;
    if ((rc = qb_suite_load(o->suite_path, &so, &S->su)) < 0)
        return rc;
    if (!(S->items = calloc((size_t)S->su->n_items, sizeof *S->items)))
        return qb_err(QB_ENOMEM, "out of memory");
    for (int64_t i = 0; i < S->su->n_items; i++) {
        const struct qb_suite_item *it = &S->su->items[i];
        struct sitem *si = &S->items[S->n_items];
        struct qb_gen_result g = {0};
        double sc;
        if (o->slice && strcmp(it->slice, o->slice))
            continue;
        if ((rc = tokenize(S, it, si)) != 0) {
            sitem_release(si); /* 1: it does not fit the context */
            if (rc < 0)
                return rc;
            continue;
        }
        S->n_items++;
        if ((rc = score_item(S, base, si, &sc, &g)) == 0)
            rc = item_seq(S, si, &g);
        qb_gen_result_release(&g);
        if (rc < 0)
            return rc;
        if (!isnan(sc))
            n++, right += sc >= 0.5;
    }
    if (!S->n_items)
        return qb_err(QB_EINVAL, "'%s': no item of slice '%s' fits the model's context",
                      o->suite_path, o->slice ? o->slice : "(any)");
    *base_acc = n ? 100.0 * (double)right / (double)n : NAN;
    return 0;
}

/* The baseline's log-probabilities at every scored position, once. */
static int base_logprobs(struct scan *S, struct qb_engine *e)
{
    int64_t p = 0;
    int rc;
    if (S->n_pos * S->vocab > MAX_BASE_FLOATS)
        return qb_err(QB_ERANGE,
                      "%lld scored positions x %lld tokens of vocabulary is too much to keep: use "
                      "fewer calibration sequences or a smaller slice",
                      (long long)S->n_pos, (long long)S->vocab);
    if (!(S->base_lp = malloc((size_t)(S->n_pos * S->vocab) * sizeof(float))))
        return qb_err(QB_ENOMEM, "out of memory");
    for (int64_t i = 0; i < S->n_seqs; i++) {
        const struct seq *q = &S->seqs[i];
        qb_engine_reset(e);
        if ((rc = qb_engine_forward(e, q->ids, q->n, S->logits)) < 0)
            return rc;
        for (int64_t t = q->s0; t < q->n - 1; t++, p++) {
            float *row = S->base_lp + p * S->vocab;
            memcpy(row, S->logits + t * S->vocab, (size_t)S->vocab * sizeof *row);
            log_softmax(row, S->vocab);
        }
    }
    return 0;
}

/* ---- the scan ------------------------------------------------------------------------ */

static int qmodel_of(const struct qb_model *m, const char *spec_s, const char *what,
                     struct qb_qmodel **qm, char name[QB_QSPEC_MAX])
{
    struct qb_qspec sp;
    int rc;
    if ((rc = qb_qspec_parse(spec_s, &sp)) < 0)
        return qb_err_prefix(rc, "%s", what);
    if (sp.method != QB_METHOD_RTN)
        return qb_err(QB_EUNSUP,
                      "%s '%s': the sensitivity scan borrows round-to-nearest tensors one unit at "
                      "a time; calibrated configs (-gptq, -awq, -smooth) change several at once",
                      what, spec_s);
    qb_qspec_format(&sp, name, QB_QSPEC_MAX);
    return qb_qmodel_new(m, &sp, qm);
}

static int setup(struct scan *S, struct qb_sens_result *r)
{
    const struct qb_sens_opts *o = S->o;
    struct qb_load_opts lo = {0};
    int rc;
    if (!o->model_path || !o->config)
        return qb_err(QB_EINVAL, "sensitivity: needs a model and a config");
    if (!!o->calib_path == !!o->suite_path)
        return qb_err(QB_EINVAL, "sensitivity: needs calibration text or a suite (one of them)");
    lo.tokenizer_path = o->tokenizer_path;
    if ((rc = qb_model_load(o->model_path, &lo, &S->m)) < 0)
        return rc;
    if (!S->m->tok)
        return qb_err(QB_EINVAL, "'%s': the model has no tokenizer; pass --tokenizer FILE",
                      S->m->path);
    S->vocab = S->m->cfg.vocab_size;
    if ((rc = qmodel_of(S->m, o->config, "config", &S->low, r->config)) < 0 ||
        (rc = qmodel_of(S->m, o->baseline ? o->baseline : "f32", "baseline", &S->base,
                        r->baseline)) < 0 ||
        (rc = qmodel_of(S->m, o->keep ? o->keep : "w8", "keep", &S->keep, r->keep)) < 0)
        return rc;
    if (!(S->logits = malloc((size_t)(S->m->cfg.max_seq_len * S->vocab) * sizeof(float))))
        return qb_err(QB_ENOMEM, "out of memory");
    r->config_bytes = (int64_t)qb_qmodel_bytes(S->low);
    return qb_run_model_sha256(o->model_path, r->model_sha256);
}

/* The bytes keeping unit u at `keep` adds over the config. */
static int64_t extra_bytes(const struct scan *S, const struct qb_sens_unit *u)
{
    int64_t b = 0;
    if (u->kind < QB_LIN_COUNT || u->kind == 7)
        for (int k = 0; k < QB_LIN_COUNT; k++) {
            int64_t i = u->layer * QB_LIN_COUNT + k;
            if (u->kind == 7 || u->kind == k)
                b += (int64_t)qb_qtensor_bytes(&S->keep->lin[i].t) -
                     (int64_t)qb_qtensor_bytes(&S->low->lin[i].t);
        }
    else if (u->kind == 8)
        b = (int64_t)qb_qtensor_bytes(&S->keep->output.t) -
            (int64_t)qb_qtensor_bytes(&S->low->output.t);
    else /* a shared embedding tensor becomes a tensor of its own */
        b = (int64_t)qb_qtensor_bytes(&S->keep->embed.t) -
            (S->low->embed_shares_output ? 0 : (int64_t)qb_qtensor_bytes(&S->low->embed.t));
    return b;
}

static int make_units(struct scan *S, struct qb_sens_result *r)
{
    const int64_t nl = S->m->cfg.n_layers, per = S->o->by_layer ? 1 : QB_LIN_COUNT;
    if (!(r->units = calloc((size_t)(nl * per + 2), sizeof *r->units)))
        return qb_err(QB_ENOMEM, "out of memory");
    for (int64_t l = 0; l < nl; l++)
        for (int64_t k = 0; k < per; k++) {
            struct qb_sens_unit *u = &r->units[r->n_units++];
            u->layer = l;
            u->kind = S->o->by_layer ? 7 : (int)k;
            if (S->o->by_layer)
                snprintf(u->name, sizeof u->name, "L%lld", (long long)l);
            else
                snprintf(u->name, sizeof u->name, "L%lld.%s", (long long)l, kind_names[k]);
        }
    for (int k = 8; k <= 9; k++) {
        struct qb_sens_unit *u = &r->units[r->n_units++];
        u->layer = -1, u->kind = k;
        snprintf(u->name, sizeof u->name, "%s", kind_names[k]);
    }
    for (int64_t i = 0; i < r->n_units; i++)
        r->units[i].extra_bytes = extra_bytes(S, &r->units[i]);
    return 0;
}

static int by_kl(const void *a, const void *b)
{
    double x = ((const struct qb_sens_unit *)a)->kl, y = ((const struct qb_sens_unit *)b)->kl;
    return (y > x) - (y < x);
}

static double ratio(const struct qb_sens_unit *u)
{
    return u->kl / (double)(u->extra_bytes > 0 ? u->extra_bytes : 1);
}

static int by_ratio(const void *a, const void *b)
{
    double x = ratio(*(const struct qb_sens_unit *const *)a);
    double y = ratio(*(const struct qb_sens_unit *const *)b);
    return (y > x) - (y < x);
}

/* The config plus `keep` for the units chosen, canonical; 1 when it does not parse (too
 * long a name), so the budget is left out. */
static int candidate_spec(const struct qb_sens_result *r, struct qb_sens_unit *const *pick, int n,
                          char out[QB_QSPEC_MAX])
{
    GString *s = g_string_new(r->config);
    struct qb_qspec sp;
    int rc;
    for (int i = 0; i < n; i++)
        g_string_append_printf(s, "+%s=%s", pick[i]->name, r->keep);
    rc = qb_qspec_parse(s->str, &sp) < 0 ? 1 : 0;
    if (rc == 0)
        qb_qspec_format(&sp, out, QB_QSPEC_MAX);
    g_string_free(s, TRUE);
    return rc;
}

/* Greedy by damage per extra byte under each budget. */
static int make_candidates(const struct qb_sens_opts *o, struct qb_sens_result *r)
{
    static const double defaults[] = {10, 25, 50};
    int nb = o->n_budgets > 0 ? o->n_budgets : 3;
    const double *budgets = o->n_budgets > 0 ? o->budgets : defaults;
    struct qb_sens_unit **order = calloc((size_t)r->n_units, sizeof *order);
    struct qb_sens_unit **pick = calloc((size_t)r->n_units, sizeof *pick);
    int64_t gap = 0, prev = -1;
    int rc = 0;
    r->candidates = calloc((size_t)nb, sizeof *r->candidates);
    r->candidate_extra = calloc((size_t)nb, sizeof *r->candidate_extra);
    if (!order || !pick || !r->candidates || !r->candidate_extra) {
        rc = qb_err(QB_ENOMEM, "out of memory");
        goto out;
    }
    for (int64_t i = 0; i < r->n_units; i++) {
        order[i] = &r->units[i];
        gap += r->units[i].extra_bytes > 0 ? r->units[i].extra_bytes : 0;
    }
    qsort(order, (size_t)r->n_units, sizeof *order, by_ratio);
    for (int b = 0; b < nb; b++) {
        double cap = budgets[b] / 100.0 * (double)gap;
        int64_t used = 0;
        int n = 0;
        for (int64_t i = 0; i < r->n_units; i++)
            if (order[i]->kl > 0 && order[i]->extra_bytes > 0 &&
                (double)(used + order[i]->extra_bytes) <= cap)
                used += order[i]->extra_bytes, pick[n++] = order[i];
        if (n == 0 || used == prev)
            continue;
        if (candidate_spec(r, pick, n, r->candidates[r->n_candidates]) == 0) {
            r->candidate_extra[r->n_candidates++] = used;
            prev = used;
        }
    }
out:
    free(order);
    free(pick);
    return rc;
}

/* How the damages add: the top-k units together, measured, beside their summed damage. */
static int additivity(struct scan *S, struct qb_sens_result *r)
{
    const struct qb_sens_unit *top[16];
    double acc;
    int k = S->o->topk > 0 ? S->o->topk : 3;
    k = k > 16 ? 16 : k;
    k = k > r->n_units ? (int)r->n_units : k;
    r->topk = k;
    r->topk_summed_kl = 0;
    for (int i = 0; i < k; i++)
        top[i] = &r->units[i], r->topk_summed_kl += r->units[i].kl;
    return measure(S, top, k, &r->topk_measured_kl, &acc);
}

static void scan_release(struct scan *S)
{
    for (int64_t i = 0; i < S->n_seqs; i++)
        free(S->seqs[i].ids);
    free(S->seqs);
    for (int64_t i = 0; i < S->n_items; i++)
        sitem_release(&S->items[i]);
    free(S->items);
    free(S->base_lp);
    free(S->logits);
    qb_suite_free(S->su);
    qb_qmodel_free(S->low);
    qb_qmodel_free(S->base);
    qb_qmodel_free(S->keep);
    qb_model_free(S->m);
}

static int hash_path(const char *path, char out[65])
{
    gchar *data = NULL;
    gsize len = 0;
    if (!g_file_get_contents(path, &data, &len, NULL))
        return qb_err(QB_EIO, "cannot read '%s'", path);
    gchar *h = g_compute_checksum_for_data(G_CHECKSUM_SHA256, (const guchar *)data, len);
    g_strlcpy(out, h, 65);
    g_free(h);
    g_free(data);
    return 0;
}

static int scan_units(struct scan *S, struct qb_sens_result *r)
{
    int rc;
    for (int64_t i = 0; i < r->n_units; i++) {
        const struct qb_sens_unit *u = &r->units[i];
        if ((rc = measure(S, &u, 1, &r->units[i].kl, &r->units[i].accuracy)) < 0)
            return qb_err_prefix(rc, "unit %s", u->name);
        if (S->o->on_unit)
            S->o->on_unit(S->o->ctx, i, r->n_units, u->name, u->kl, u->accuracy);
    }
    qsort(r->units, (size_t)r->n_units, sizeof *r->units, by_kl);
    return 0;
}

int qb_sens_scan(const struct qb_sens_opts *o, struct qb_sens_result *out)
{
    struct scan S = {.o = o};
    struct qb_engine *e = NULL;
    double t0 = omp_get_wtime();
    int rc;

    memset(out, 0, sizeof *out);
    out->base_accuracy = out->config_accuracy = out->config_kl = NAN;
    if (o->threads > 0)
        omp_set_num_threads(o->threads);
    out->threads = omp_get_max_threads();
    if ((rc = setup(&S, out)) < 0 || (rc = qb_engine_new_q(S.base, 0, &e)) < 0)
        goto out;
    /* the text is read (and refused when it is not a file) before it is hashed */
    if ((rc = o->calib_path ? calib_seqs(&S) : suite_seqs(&S, e, &out->base_accuracy)) < 0 ||
        (rc = hash_path(o->calib_path ? o->calib_path : o->suite_path, out->source_sha256)) < 0 ||
        (rc = base_logprobs(&S, e)) < 0 || (rc = make_units(&S, out)) < 0 ||
        (rc = scan_units(&S, out)) < 0 ||
        (rc = measure(&S, NULL, -1, &out->config_kl, &out->config_accuracy)) < 0 ||
        (rc = additivity(&S, out)) < 0 || (rc = make_candidates(o, out)) < 0)
        goto out;
    out->n_sequences = S.n_seqs;
    out->n_positions = S.n_pos;
    out->n_items = S.n_items;
    out->seconds = omp_get_wtime() - t0;
out:
    qb_engine_free(e);
    scan_release(&S);
    if (rc < 0)
        qb_sens_result_release(out);
    return rc;
}

void qb_sens_result_release(struct qb_sens_result *r)
{
    if (!r)
        return;
    free(r->units);
    free(r->candidates);
    free(r->candidate_extra);
    r->units = NULL, r->candidates = NULL, r->candidate_extra = NULL;
    r->n_units = 0, r->n_candidates = 0;
}

int qb_sens_store(const struct qb_sens_opts *o, const struct qb_sens_result *r, const char *db_path,
                  int64_t *id)
{
    struct qb_store_sens_unit *u = calloc((size_t)r->n_units + 1, sizeof *u);
    GString *cands = g_string_new("[");
    char host[256] = "";
    int rc;
    if (!u) {
        g_string_free(cands, TRUE);
        return qb_err(QB_ENOMEM, "out of memory");
    }
    gethostname(host, sizeof host - 1);
    for (int i = 0; i < r->n_candidates; i++)
        g_string_append_printf(cands, "%s\"%s\"", i ? ", " : "", r->candidates[i]);
    g_string_append(cands, "]");
    for (int64_t i = 0; i < r->n_units; i++)
        u[i] = (struct qb_store_sens_unit){
            r->units[i].name, kind_names[r->units[i].kind], r->units[i].layer,      i + 1,
            r->units[i].kl,   r->units[i].accuracy,         r->units[i].extra_bytes};
    struct qb_store_sens_scan sc = {
        .model_sha256 = r->model_sha256,
        .model_path = o->model_path,
        .config = r->config,
        .baseline = r->baseline,
        .keep = r->keep,
        .granularity = o->by_layer ? "layer" : "tensor",
        .source = o->calib_path ? "calib" : "suite",
        .source_path = o->calib_path ? o->calib_path : o->suite_path,
        .source_sha256 = r->source_sha256,
        .slice = o->calib_path ? NULL : o->slice,
        .n_sequences = r->n_sequences,
        .n_positions = r->n_positions,
        .base_accuracy = r->base_accuracy,
        .config_kl = r->config_kl,
        .config_accuracy = r->config_accuracy,
        .topk = r->topk,
        .topk_summed_kl = r->topk_summed_kl,
        .topk_measured_kl = r->topk_measured_kl,
        .seconds = r->seconds,
        .threads = r->threads,
        .host = host,
        .run_name = o->run_name,
        .candidates_json = cands->str,
    };
    rc = qb_store_sens_put(db_path, &sc, u, r->n_units, id);
    free(u);
    g_string_free(cands, TRUE);
    return rc;
}
