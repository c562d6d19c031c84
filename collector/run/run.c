/* run: `qbrief run` as a library function -- the order of work and the meaning of every
 * number are documented in run.h and must agree with it. */
#include "collector/run/run.h"

#include "collector/quant/calib.h"
#include "collector/engine/engine.h"
#include "kernels/base/err.h"
#include "kernels/base/progress.h"
#include "kernels/base/fileio.h"
#include "collector/eval/metrics.h"
#include "collector/model/chat.h"
#include "collector/model/model.h"
#include "collector/eval/probe.h"
#include "collector/run/run_device.h"
#include "collector/model/qmodel.h"
#include "collector/engine/sampler.h"
#include "collector/run/shard.h"
#include "collector/store/settings.h"
#include "collector/store/store.h"
#include "collector/eval/suite.h"
#include "collector/tokenizer/tokenizer.h"
#include "collector/model/qspec.h"

#include <ctype.h>
#include <errno.h>
#include <glib.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The commit qbrief was built from (the Makefile passes it; empty outside a git checkout) */
#ifndef QB_GIT_COMMIT
#define QB_GIT_COMMIT ""
#endif

/* Rows of logits per forward when every position is scored: as many as 64 MiB of logits
 * hold, a multiple of 32 between 32 and 256, so an item of a few hundred tokens streams the
 * weights once or twice instead of once per 32 tokens. Every pass but the last is a multiple
 * of 32 tokens and the last is the n % 32 tokens it was with passes of 32: the kernels tile
 * tokens in aligned groups of up to 32, so each row's numbers are those of passes of 32
 * (an integer kernel's tail of a few tokens alone takes another path than the same tokens
 * at the end of a long batch, and would change the last digits). */
#define CHUNK_MIN 32
#define CHUNK_MAX 256
#define CHUNK_BYTES ((int64_t)64 << 20)

/* One item, tokenized once. */
struct titem {
    int32_t *ids; /* formatted prompt (or the text) */
    int64_t n;
    int32_t **cids; /* choice: each choice's tokens, cn[c] of them */
    int64_t *cn;
    int64_t n_choices;
    int skip;
    char *why; /* why it is skipped (g_malloc'd) */
    int64_t item_id;
};

/* The baseline's top-k at the scored positions of one item (read back for other configs). */
struct btopk {
    int64_t *pos;
    int32_t *ids; /* (n, QB_RUN_TOPK) */
    float *lps;   /* (n, QB_RUN_TOPK) */
    int *k;
    int64_t n, cap;
};

/* Sums over an item's scored positions. */
struct acc {
    double nll_sum;
    int64_t n_nll;
    double kl_sum;
    int64_t n_kl, n_agree, n_pos;
};

struct runner {
    const struct qb_run_opts *o;
    struct qb_model *m;
    struct qb_engine *e;
    struct qb_store *s;
    int64_t run_id;
    int64_t vocab;
    int is_base;
    struct btopk base; /* this item's baseline top-k (non-baseline configs) */
    int64_t cursor;    /* next entry of base to match */
    /* baseline: pending top-k rows of this item */
    int64_t *ppos;
    int32_t *pids;
    float *plps;
    int64_t pn, pcap;
    float *rows;             /* (chunk, vocab) */
    int64_t chunk;           /* CHUNK_MIN..CHUNK_MAX */
    void (*tick)(void *ctx); /* after every forward of an item: progress within long items */
    void *tick_ctx;
};

/* log(sum(exp(x))); *arg_out: the first index of the largest logit, as qb_argmax finds it
 * (the same comparisons), so the argmax costs no pass of its own. */
static double log_sum_exp(const float *x, int64_t n, int32_t *arg_out)
{
    float mx = x[0];
    int64_t arg = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > mx) {
            mx = x[i];
            arg = i;
        }
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += exp((double)x[i] - mx);
    *arg_out = (int32_t)arg;
    return mx + log(s);
}

/* Top-k by logit, ties to the lower id (so ids[0] is qb_argmax). Returns k. */
static int top_k(const float *x, int64_t n, int kmax, int32_t *ids)
{
    int k = 0;
    for (int64_t i = 0; i < n; i++) {
        if (k == kmax && !(x[i] > x[ids[k - 1]]))
            continue;
        int j = k < kmax ? k++ : kmax - 1;
        while (j > 0 && x[i] > x[ids[j - 1]]) {
            ids[j] = ids[j - 1];
            j--;
        }
        ids[j] = (int32_t)i;
    }
    return k;
}

static int grow(void **p, int64_t *cap, int64_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    int64_t nc = *cap ? *cap * 2 : 64;
    while (nc < need)
        nc *= 2;
    void *q = realloc(*p, (size_t)nc * elem);
    if (!q)
        return qb_err(QB_ENOMEM, "out of memory");
    *p = q;
    *cap = nc;
    return 0;
}

/* Grows per-position arrays (positions, QB_RUN_TOPK ids and log-probs, optional k) together. */
static int grow_rows(int64_t *cap, int64_t **pos, int32_t **ids, float **lps, int **k)
{
    int64_t nc = *cap ? *cap * 2 : 64;
    void *a = realloc(*pos, (size_t)nc * sizeof **pos);
    if (a)
        *pos = a;
    void *b = a ? realloc(*ids, (size_t)nc * QB_RUN_TOPK * sizeof **ids) : NULL;
    if (b)
        *ids = b;
    void *c = b ? realloc(*lps, (size_t)nc * QB_RUN_TOPK * sizeof **lps) : NULL;
    if (c)
        *lps = c;
    void *d = c && k ? realloc(*k, (size_t)nc * sizeof **k) : c;
    if (d && k)
        *k = d;
    if (!d)
        return qb_err(QB_ENOMEM, "out of memory");
    *cap = nc;
    return 0;
}

/* Scores one position: returns the log-probability of target (0 when target < 0). When
 * record is set the position counts for NLL, KL and agreement (baseline: its top-k is kept
 * for the unit's transaction). */
static int score_pos(struct runner *r, struct acc *a, const float *logits, int32_t target,
                     int64_t pos, int record, double *lp_out)
{
    int32_t arg;
    double lse = log_sum_exp(logits, r->vocab, &arg);
    double lp = target >= 0 ? logits[target] - lse : 0;
    int rc = 0;
    *lp_out = lp;
    if (!record)
        return 0;
    if (target >= 0) {
        a->nll_sum -= lp;
        a->n_nll++;
    }
    a->n_pos++;
    if (r->is_base) {
        if (r->pn == r->pcap && (rc = grow_rows(&r->pcap, &r->ppos, &r->pids, &r->plps, NULL)) < 0)
            return rc;
        int32_t *ids = r->pids + r->pn * QB_RUN_TOPK;
        float *lps = r->plps + r->pn * QB_RUN_TOPK;
        int k = top_k(logits, r->vocab, QB_RUN_TOPK, ids);
        for (int i = 0; i < k; i++)
            lps[i] = (float)(logits[ids[i]] - lse);
        for (int i = k; i < QB_RUN_TOPK; i++) {
            ids[i] = -1;
            lps[i] = -INFINITY;
        }
        r->ppos[r->pn++] = pos;
        a->n_agree++;
        return 0;
    }
    /* match the baseline's entry for this position (positions come in increasing order) */
    while (r->cursor < r->base.n && r->base.pos[r->cursor] < pos)
        r->cursor++;
    if (r->cursor >= r->base.n || r->base.pos[r->cursor] != pos)
        return 0; /* the baseline did not score it: no KL here */
    const int32_t *bid = r->base.ids + r->cursor * QB_RUN_TOPK;
    const float *blp = r->base.lps + r->cursor * QB_RUN_TOPK;
    int k = r->base.k[r->cursor];
    double kl = 0, psum = 0, qsum = 0;
    for (int i = 0; i < k; i++) {
        if (bid[i] < 0 || bid[i] >= r->vocab)
            continue;
        double p = exp((double)blp[i]), lq = logits[bid[i]] - lse;
        psum += p;
        qsum += exp(lq);
        if (p > 0)
            kl += p * ((double)blp[i] - lq);
    }
    double prest = 1 - psum, qrest = 1 - qsum;
    if (prest > 1e-12)
        kl += prest * (log(prest) - log(qrest > 1e-30 ? qrest : 1e-30));
    a->kl_sum += kl > 0 ? kl : 0;
    a->n_kl++;
    if (k > 0 && arg == bid[0])
        a->n_agree++;
    return 0;
}

/* qb_engine_forward, then the runner's tick */
static int item_forward(struct runner *r, const int32_t *toks, int64_t n, float *logits)
{
    int rc = qb_engine_forward(r->e, toks, n, logits);
    if (rc == 0 && r->tick)
        r->tick(r->tick_ctx);
    return rc;
}

/* Forwards toks[0..n) (the engine at position pos0) and scores row i against targets[i]
 * at position pos0 + i; *lp_sum receives the summed log-probabilities. */
static int forward_scored(struct runner *r, struct acc *a, const int32_t *toks,
                          const int32_t *targets, int64_t n, int64_t pos0, int record,
                          double *lp_sum)
{
    int rc;
    *lp_sum = 0;
    for (int64_t off = 0, c; off < n; off += c) {
        c = n - off < r->chunk ? n - off : r->chunk;
        if (c > CHUNK_MIN && c % CHUNK_MIN) /* the tail as passes of CHUNK_MIN left it */
            c -= c % CHUNK_MIN;
        if ((rc = item_forward(r, toks + off, c, r->rows)) < 0)
            return rc;
        for (int64_t i = 0; i < c; i++) {
            double lp;
            if ((rc = score_pos(r, a, r->rows + i * r->vocab, targets[off + i], pos0 + off + i,
                                record, &lp)) < 0)
                return rc;
            *lp_sum += lp;
        }
    }
    return 0;
}

static int on_topk(void *ctx, int64_t position, int k, const int32_t *ids, const float *lps)
{
    struct btopk *b = ctx;
    int rc;
    if (b->n == b->cap && (rc = grow_rows(&b->cap, &b->pos, &b->ids, &b->lps, &b->k)) < 0)
        return rc;
    int kk = k < QB_RUN_TOPK ? k : QB_RUN_TOPK;
    memcpy(b->ids + b->n * QB_RUN_TOPK, ids, (size_t)kk * sizeof *ids);
    memcpy(b->lps + b->n * QB_RUN_TOPK, lps, (size_t)kk * sizeof *lps);
    b->k[b->n] = kk;
    b->pos[b->n++] = position;
    return 0;
}

struct result_out {
    int correct;
    double score;
    char *output; /* malloc'd or NULL */
};

static int eval_generate(struct runner *r, const struct qb_suite_item *it, const struct titem *ti,
                         struct acc *a, struct result_out *res)
{
    const struct qb_tokenizer *tok = r->m->tok;
    int32_t eos = qb_tok_eos(tok), bos = qb_tok_bos(tok);
    GString *text = g_string_new(NULL);
    int32_t *tf = NULL;
    int stopped = 0, rc;
    int32_t prev = ti->ids[ti->n - 1];
    double lp;

    qb_engine_reset(r->e);
    if ((rc = item_forward(r, ti->ids, ti->n, NULL)) < 0)
        goto out;
    for (int64_t j = 0; j < it->max_tokens && !stopped; j++) {
        const float *lg = qb_engine_logits(r->e);
        int32_t next = qb_argmax(lg, r->vocab);
        /* the baseline scores its own decisions as it makes them */
        if (r->is_base && (rc = score_pos(r, a, lg, next, ti->n - 1 + j, 1, &lp)) < 0)
            goto out;
        if (next == eos || next == bos)
            break;
        char buf[256];
        size_t n = qb_tok_decode_piece(tok, prev, next, buf, sizeof buf);
        if (n > sizeof buf) {
            char *big = malloc(n);
            if (!big) {
                rc = qb_err(QB_ENOMEM, "out of memory");
                goto out;
            }
            qb_tok_decode_piece(tok, prev, next, big, n);
            g_string_append_len(text, big, (gssize)n);
            free(big);
        } else {
            g_string_append_len(text, buf, (gssize)n);
        }
        if (it->stop && *it->stop) {
            char *hit = strstr(text->str, it->stop);
            if (hit) {
                g_string_truncate(text, (gsize)(hit - text->str));
                stopped = 1;
            }
        }
        prev = next;
        if (!stopped && j + 1 < it->max_tokens && (rc = item_forward(r, &next, 1, NULL)) < 0)
            goto out;
    }
    if ((rc = qb_metric_score(it, text->str, text->len, &res->score)) < 0)
        goto out;
    res->correct = res->score >= 0.5;
    if (!r->is_base && r->base.n > 0) {
        /* teacher-force the baseline's output: its tokens are the top-1 of its top-k */
        int64_t m = r->base.n;
        if (!(tf = malloc((size_t)(m + 1) * 2 * sizeof *tf))) {
            rc = qb_err(QB_ENOMEM, "out of memory");
            goto out;
        }
        int32_t *targets = tf + m + 1;
        tf[0] = ti->ids[ti->n - 1];
        for (int64_t j = 0; j < m; j++) {
            targets[j] = r->base.ids[j * QB_RUN_TOPK];
            tf[j + 1] = targets[j];
        }
        if ((rc = qb_engine_truncate(r->e, ti->n - 1)) < 0 ||
            (rc = forward_scored(r, a, tf, targets, m, ti->n - 1, 1, &lp)) < 0)
            goto out;
    }
    res->output = g_strdup(text->str);
out:
    free(tf);
    g_string_free(text, TRUE);
    return rc;
}

static int eval_choice(struct runner *r, const struct qb_suite_item *it, const struct titem *ti,
                       struct acc *a, struct result_out *res)
{
    double *ll = calloc((size_t)it->n_choices, sizeof *ll);
    float *last = malloc((size_t)r->vocab * sizeof *last);
    int rc;

    if (!ll || !last) {
        rc = qb_err(QB_ENOMEM, "out of memory");
        goto out;
    }
    qb_engine_reset(r->e);
    if ((rc = item_forward(r, ti->ids, ti->n, NULL)) < 0)
        goto out;
    memcpy(last, qb_engine_logits(r->e), (size_t)r->vocab * sizeof *last);
    for (int64_t c = 0; c < it->n_choices; c++) {
        int record = c == it->target_index;
        double lp0, rest = 0;
        if (ti->cn[c] == 0) {
            ll[c] = -INFINITY;
            continue;
        }
        if ((rc = score_pos(r, a, last, ti->cids[c][0], ti->n - 1, record, &lp0)) < 0)
            goto out;
        if (ti->cn[c] > 1) {
            if ((rc = qb_engine_truncate(r->e, ti->n)) < 0 ||
                (rc = forward_scored(r, a, ti->cids[c], ti->cids[c] + 1, ti->cn[c] - 1, ti->n,
                                     record, &rest)) < 0)
                goto out;
        }
        ll[c] = lp0 + rest;
    }
    if ((rc = qb_choice_score(it, ll, NULL, &res->score)) < 0)
        goto out;
    res->correct = res->score >= 0.5;
    int64_t pick = it->metric == QB_METRIC_ACCURACY_NORM ? -1 : qb_choice_argmax(ll, it->n_choices);
    if (pick < 0) {
        double *len = malloc((size_t)it->n_choices * sizeof *len);
        if (len) {
            for (int64_t c = 0; c < it->n_choices; c++)
                len[c] = (double)strlen(it->choices[c]);
            pick = qb_choice_argmax_norm(ll, len, it->n_choices);
            free(len);
        }
    }
    if (pick >= 0)
        res->output = g_strdup(it->choices[pick]);
out:
    free(ll);
    free(last);
    return rc;
}

static int eval_perplexity(struct runner *r, const struct titem *ti, struct acc *a,
                           struct result_out *res)
{
    double lp;
    int rc;
    qb_engine_reset(r->e);
    if ((rc = forward_scored(r, a, ti->ids, ti->ids + 1, ti->n - 1, 0, 1, &lp)) < 0)
        return rc;
    res->correct = -1;
    res->score = a->n_nll ? a->nll_sum / (double)a->n_nll : NAN;
    return 0;
}

struct done_ctx {
    GHashTable *h;
    int64_t config_id;
};

static int on_done(void *ctx, int64_t config_id, int64_t item_id)
{
    struct done_ctx *d = ctx;
    if (config_id == d->config_id)
        g_hash_table_add(d->h, g_memdup2(&item_id, sizeof item_id));
    return 0;
}

/* base_correct maps an item to its baseline correct + 2 (1..3); an item whose baseline row
 * was skipped or failed maps to 4: the configs then skip it too, having nothing to compare. */
#define BASE_NOT_OK 4
static int on_base_result(void *ctx, const struct qb_store_result *res)
{
    GHashTable *h = ctx;
    int ok = !res->status || !strcmp(res->status, "ok");
    g_hash_table_insert(h, g_memdup2(&res->item_id, sizeof res->item_id),
                        GINT_TO_POINTER(ok ? res->correct + 2 : BASE_NOT_OK));
    return 0;
}

static int on_latency_count(void *ctx, const struct qb_store_latency *l)
{
    (void)l;
    (*(int64_t *)ctx)++;
    return 0;
}

static int on_memory_ctx(void *ctx, const struct qb_store_memory *m)
{
    int64_t *want = ctx;
    if (m->context == want[0])
        want[1] = 1;
    return 0;
}

struct lat_buf {
    struct qb_store_latency *v;
    int64_t n, cap;
};

static int on_sample(void *ctx, const struct qb_latency_sample *s)
{
    struct lat_buf *b = ctx;
    int rc;
    if ((rc = grow((void **)&b->v, &b->cap, b->n + 1, sizeof *b->v)) < 0)
        return rc;
    b->v[b->n++] = (struct qb_store_latency){.prompt_len = s->prompt_len,
                                             .gen_len = s->gen_len,
                                             .batch = s->batch,
                                             .repetition = s->repetition,
                                             .ttft_ms = s->ttft_ms,
                                             .tpot_ms = s->tpot_ms,
                                             .e2e_ms = s->e2e_ms,
                                             .decode_tok_s = s->decode_tok_s};
    return 0;
}

/* sha256 of a model file, or of a directory's config.json then its *.safetensors in name order. */
static int hash_file(GChecksum *ck, const char *path)
{
    FILE *f = NULL;
    if (qb_fopen_regular(path, &f, NULL) < 0) /* a FIFO or device would never end */
        return QB_EIO;
    unsigned char *buf = malloc(1 << 20);
    size_t n;
    int64_t mib = 0, total = 0;
    int rc = 0;
    if (!buf) {
        fclose(f);
        return qb_err(QB_ENOMEM, "out of memory");
    }
    if (fseeko(f, 0, SEEK_END) == 0) /* MiB, for the progress of a large model's hash */
        total = ((int64_t)ftello(f) + (1 << 20) - 1) >> 20;
    rewind(f);
    while ((n = fread(buf, 1, 1 << 20, f)) > 0) {
        g_checksum_update(ck, buf, (gssize)n);
        if (++mib <= total)
            qb_progress("hashing", mib, total);
    }
    if (ferror(f))
        rc = qb_err(QB_EIO, "cannot read '%s'", path);
    free(buf);
    fclose(f);
    return rc;
}

static int cmp_str(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int model_sha256(const char *path, char out[65])
{
    GChecksum *ck = g_checksum_new(G_CHECKSUM_SHA256);
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
    GDir *d = NULL;
    int rc = 0;
    if (g_file_test(path, G_FILE_TEST_IS_DIR)) {
        char *cfg = g_build_filename(path, "config.json", NULL);
        rc = hash_file(ck, cfg);
        g_free(cfg);
        if (rc < 0)
            goto out;
        if (!(d = g_dir_open(path, 0, NULL))) {
            rc = qb_err(QB_EIO, "cannot list '%s'", path);
            goto out;
        }
        const char *n;
        while ((n = g_dir_read_name(d)))
            if (g_str_has_suffix(n, ".safetensors"))
                g_ptr_array_add(names, g_strdup(n));
        g_ptr_array_sort(names, cmp_str);
        for (guint i = 0; i < names->len; i++) {
            char *p = g_build_filename(path, (char *)names->pdata[i], NULL);
            rc = hash_file(ck, p);
            g_free(p);
            if (rc < 0)
                goto out;
        }
    } else if ((rc = hash_file(ck, path)) < 0) {
        goto out;
    }
    g_strlcpy(out, g_checksum_get_string(ck), 65);
out:
    if (d)
        g_dir_close(d);
    g_ptr_array_free(names, TRUE);
    g_checksum_free(ck);
    return rc;
}

/* Words of a text for n-gram overlap: runs of letters and digits (any non-ASCII byte counts as
 * a letter), lowercased, each hashed (FNV-1a); the hashes go to out. */
static void text_words(const char *t, GArray *out)
{
    g_array_set_size(out, 0);
    for (const unsigned char *p = (const unsigned char *)t; *p;) {
        if (!(isalnum(*p) || *p >= 0x80)) {
            p++;
            continue;
        }
        uint64_t h = 1469598103934665603ull;
        for (; *p && (isalnum(*p) || *p >= 0x80); p++)
            h = (h ^ (uint64_t)tolower(*p)) * 1099511628211ull;
        g_array_append_val(out, h);
    }
}

static uint64_t ngram_hash(const uint64_t *w, int n)
{
    uint64_t h = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < n; i++)
        h = (h ^ w[i]) * 0x100000001b3ull + (h >> 29);
    return h;
}

/* One word n-gram of a suite item: its hash and the item. */
struct gram {
    uint64_t h;
    int64_t item;
};

static int gram_cmp(const void *a, const void *b)
{
    const struct gram *x = a, *y = b;
    return x->h < y->h ? -1 : x->h > y->h ? 1 : x->item < y->item ? -1 : x->item > y->item;
}

/* Every word n-gram of the suite (prompt, target and choices of each item), sorted by hash,
 * and a table from each distinct hash to its first entry (index + 1). */
static void suite_grams(const struct qb_suite *su, GArray *grams, GHashTable *first)
{
    GArray *w = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    for (int64_t k = 0; k < su->n_items; k++) {
        const struct qb_suite_item *it = &su->items[k];
        GString *g = g_string_new(it->prompt);
        if (it->target)
            g_string_append_printf(g, " %s", it->target);
        for (int64_t c = 0; c < it->n_choices; c++)
            g_string_append_printf(g, " %s", it->choices[c]);
        text_words(g->str, w);
        g_string_free(g, TRUE);
        for (guint i = 0; i + QB_RUN_OVERLAP_NGRAM <= w->len; i++) {
            struct gram e = {ngram_hash(&g_array_index(w, uint64_t, i), QB_RUN_OVERLAP_NGRAM), k};
            g_array_append_val(grams, e);
        }
    }
    g_array_free(w, TRUE);
    g_array_sort(grams, gram_cmp);
    for (guint i = 0; i < grams->len; i++)
        if (i == 0 ||
            g_array_index(grams, struct gram, i).h != g_array_index(grams, struct gram, i - 1).h)
            g_hash_table_insert(first, &g_array_index(grams, struct gram, i).h,
                                GUINT_TO_POINTER(i + 1));
}

/* The n-gram streaming through the calibration text: the last QB_RUN_OVERLAP_NGRAM word
 * hashes in a ring, the word being read, and the suite items hit so far. */
struct stream_words {
    uint64_t ring[QB_RUN_OVERLAP_NGRAM], h;
    int64_t n_words;
    int in_word;
    const GArray *grams;
    GHashTable *first;
    unsigned char *hit; /* per suite item */
};

static void end_word(struct stream_words *sw)
{
    uint64_t w[QB_RUN_OVERLAP_NGRAM];
    sw->ring[sw->n_words++ % QB_RUN_OVERLAP_NGRAM] = sw->h;
    sw->in_word = 0;
    if (sw->n_words < QB_RUN_OVERLAP_NGRAM)
        return;
    for (int i = 0; i < QB_RUN_OVERLAP_NGRAM; i++) /* oldest first, as text_words lists them */
        w[i] = sw->ring[(sw->n_words + i) % QB_RUN_OVERLAP_NGRAM];
    uint64_t h = ngram_hash(w, QB_RUN_OVERLAP_NGRAM);
    guint at = GPOINTER_TO_UINT(g_hash_table_lookup(sw->first, &h));
    for (guint i = at ? at - 1 : sw->grams->len;
         i < sw->grams->len && g_array_index(sw->grams, struct gram, i).h == h; i++)
        sw->hit[g_array_index(sw->grams, struct gram, i).item] = 1;
}

/* How many suite items (prompt, target and choices) share a run of QB_RUN_OVERLAP_NGRAM
 * words with the calibration text: calibration that contains the test flatters calibrated
 * configs, so the brief says how much of it there was. Words as text_words reads them, up
 * to the first NUL byte. Memory: the suite's n-grams (16 bytes each) and a 64 KiB buffer;
 * the calibration text streams through, however large. */
static int calib_overlap(const char *calib_path, const struct qb_suite *su, int64_t *hits)
{
    GArray *grams = g_array_new(FALSE, FALSE, sizeof(struct gram));
    GHashTable *first = g_hash_table_new(g_int64_hash, g_int64_equal);
    struct stream_words sw = {.grams = grams, .first = first};
    unsigned char *buf = malloc(1 << 16);
    FILE *f = fopen(calib_path, "rb");
    size_t n;
    int rc = 0, nul = 0;

    *hits = 0;
    if (!buf || !(sw.hit = calloc((size_t)su->n_items + 1, 1))) {
        rc = qb_err(QB_ENOMEM, "out of memory");
        goto out;
    }
    if (!f) {
        rc = qb_err(QB_EIO, "cannot read '%s': %s", calib_path, strerror(errno));
        goto out;
    }
    suite_grams(su, grams, first);
    while (!nul && (n = fread(buf, 1, 1 << 16, f)) > 0)
        for (size_t i = 0; i < n && !(nul = !buf[i]); i++) {
            unsigned char ch = buf[i];
            if (isalnum(ch) || ch >= 0x80) {
                if (!sw.in_word)
                    sw.h = 1469598103934665603ull, sw.in_word = 1;
                sw.h = (sw.h ^ (uint64_t)tolower(ch)) * 1099511628211ull;
            } else if (sw.in_word) {
                end_word(&sw);
            }
        }
    if (ferror(f)) {
        rc = qb_err(QB_EIO, "cannot read '%s': %s", calib_path, strerror(errno));
        goto out;
    }
    if (sw.in_word)
        end_word(&sw);
    for (int64_t k = 0; k < su->n_items; k++)
        *hits += sw.hit[k];
out:
    if (f)
        fclose(f);
    free(buf);
    free(sw.hit);
    g_hash_table_destroy(first);
    g_array_free(grams, TRUE);
    return rc;
}

static char *base_name_noext(const char *path)
{
    char *p = g_strdup(path);
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/')
        p[--n] = 0;
    char *b = g_path_get_basename(p);
    char *dot = strrchr(b, '.');
    if (dot && dot != b)
        *dot = 0;
    g_free(p);
    return b;
}

static void titems_free(struct titem *t, int64_t n)
{
    if (!t)
        return;
    for (int64_t i = 0; i < n; i++) {
        free(t[i].ids);
        if (t[i].cids) {
            for (int64_t c = 0; c < t[i].n_choices; c++)
                free(t[i].cids[c]);
            free(t[i].cids);
        }
        free(t[i].cn);
        g_free(t[i].why);
    }
    free(t);
}

/* Writes one unit: the result and, for the baseline, its top-k rows, in one transaction. */
static int write_unit(struct runner *r, const struct qb_store_result *res, int64_t item_id)
{
    int rc;
    if ((rc = qb_store_begin(r->s)) < 0)
        return rc;
    if ((rc = qb_store_put_result(r->s, r->run_id, res)) < 0)
        goto fail;
    for (int64_t i = 0; r->is_base && i < r->pn; i++) {
        int k = 0;
        while (k < QB_RUN_TOPK && r->pids[i * QB_RUN_TOPK + k] >= 0)
            k++;
        if ((rc = qb_store_put_topk(r->s, r->run_id, item_id, r->ppos[i], k,
                                    r->pids + i * QB_RUN_TOPK, r->plps + i * QB_RUN_TOPK)) < 0)
            goto fail;
    }
    return qb_store_commit(r->s);
fail:
    qb_store_rollback(r->s);
    return rc;
}

/* ---- the run, phase by phase ---- */

/* Everything one qb_run holds between its phases. Each phase fills its part; run_release
 * frees it all, whatever phase failed (every field starts zero or NULL). */
struct run_ctx {
    const struct qb_run_opts *o;
    struct qb_run_stats st;
    /* checks: the configs (baseline first), the suite, what the model is */
    struct qb_qspec *specs;      /* (n_cfg) */
    char (*names)[QB_QSPEC_MAX]; /* (n_cfg) canonical spec strings */
    int64_t n_cfg;
    struct qb_suite *su;
    struct qb_load_opts lo;
    struct qb_calib *cal; /* tokenized calibration text, when a config has a method */
    char sha[65], calib_sha[65];
    char *arch, *fmt;
    int64_t n_params, ctx, calib_hits;
    /* latency settings, capped to the context */
    int64_t lens[16], gen_len;
    int n_lens;
    /* the store */
    char *name, *settings, *machine;
    int64_t suite_id;
    int64_t *cfg_ids, *item_ids; /* (n_cfg), (su->n_items) */
    /* evaluation */
    struct runner r;          /* the model, the store and the engine of the config evaluated */
    struct qb_qmodel *qm;     /* the config evaluated */
    struct titem *ti;         /* (su->n_items) */
    struct qb_run_device dv;  /* where the engines run and the measurements are taken */
    GHashTable *done;         /* ids of the items this config already has in the store */
    GHashTable *base_correct; /* item id -> the baseline's correct + 2, or BASE_NOT_OK */
    struct lat_buf lb;
    /* a shard: the items it owns (NULL: every item), and how many */
    unsigned char *mine;
    int64_t n_mine;
    /* the long phase under way (kernels/base/progress.h): which, since when, last event */
    int64_t cur_ci;
    struct pass *cur_pass; /* the config's items while they are evaluated (item_tick) */
    double last_tick;
    const char *ph_name;
    int64_t ph_done0, ph_done;
    double ph_t0, ph_last;
    int ph_told;
};

static int sharded(const struct qb_run_opts *o)
{
    return o->shard_count > 0 || o->shard_index < 0;
}

/* Whether item i is this run's to evaluate. */
static int owns(const struct run_ctx *c, int64_t i)
{
    return !c->mine || c->mine[i];
}

/* One config's pass over the items: counts for the progress events. */
struct pass {
    int64_t ci;
    int64_t n_now, n_resumed; /* items done by now (all ways), and those found in the store */
    double t0;                /* seconds (monotonic) when the pass began */
};

static double now_s(void)
{
    return (double)g_get_monotonic_time() / 1e6;
}

static void emit(const struct run_ctx *c, const struct qb_run_event *ev)
{
    if (c->o->on_event)
        c->o->on_event(c->o->on_event_ctx, ev);
}

static void say(const struct run_ctx *c, enum qb_run_event_kind kind, int64_t ci, const char *item,
                const char *fmt, ...) G_GNUC_PRINTF(5, 6);

/* A warning or note; ci (-1: none) and item (may be NULL) say what it concerns. */
static void say(const struct run_ctx *c, enum qb_run_event_kind kind, int64_t ci, const char *item,
                const char *fmt, ...)
{
    va_list ap;
    char *msg;
    if (!c->o->on_event)
        return;
    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    struct qb_run_event ev = {.kind = kind,
                              .config = ci >= 0 ? c->names[ci] : NULL,
                              .config_index = ci,
                              .n_configs = c->n_cfg,
                              .item = item,
                              .message = msg};
    emit(c, &ev);
    g_free(msg);
}

/* A config's progress: p->n_now of the items done, p->n_resumed of them already in the
 * store (the rate counts only the items evaluated now). */
static void progress(const struct run_ctx *c, enum qb_run_event_kind kind, const struct pass *p)
{
    if (!c->o->on_event)
        return;
    double dt = now_s() - p->t0;
    double rate = dt > 0 ? (double)(p->n_now - p->n_resumed) / dt : 0;
    struct qb_run_event ev = {.kind = kind,
                              .config = c->names[p->ci],
                              .config_index = p->ci,
                              .n_configs = c->n_cfg,
                              .done = p->n_now,
                              .resumed = p->n_resumed,
                              .total = c->n_mine,
                              .rate = rate,
                              .eta = rate > 0 ? (double)(c->n_mine - p->n_now) / rate : 0};
    emit(c, &ev);
}

/* Within an item: the config's progress again at most once a second (its listener decides
 * how often to print), so an item of many forwards does not leave the run silent. */
static void item_tick(void *ctx)
{
    struct run_ctx *c = ctx;
    double t = now_s();
    if (!c->cur_pass || t - c->last_tick < 1.0)
        return;
    c->last_tick = t;
    progress(c, QB_RUN_EV_PROGRESS, c->cur_pass);
}

/* The progress listener (kernels/base/progress.h): a PHASE event every
 * QB_RUN_PHASE_EVERY_S seconds of a phase, and one at its end when it had one before; the
 * rate counts the units since the phase's first report. */
static void on_phase(void *ctx, const char *phase, int64_t done, int64_t total)
{
    struct run_ctx *c = ctx;
    double t = now_s();
    if (!c->ph_name || strcmp(c->ph_name, phase) || done < c->ph_done) {
        c->ph_name = phase;
        c->ph_done0 = done;
        c->ph_t0 = c->ph_last = t;
        c->ph_told = 0;
    }
    c->ph_done = done;
    double every = c->o->phase_every_s > 0 ? c->o->phase_every_s : QB_RUN_PHASE_EVERY_S;
    if (t - c->ph_last < every && !(done >= total && c->ph_told))
        return;
    double rate = t > c->ph_t0 ? (double)(done - c->ph_done0) / (t - c->ph_t0) : 0;
    /* the model is loaded and hashed once for all configs */
    int per_config = strcmp(phase, "loading") && strcmp(phase, "hashing");
    struct qb_run_event ev = {.kind = QB_RUN_EV_PHASE,
                              .config = c->names && per_config ? c->names[c->cur_ci] : NULL,
                              .config_index = c->names ? c->cur_ci : -1,
                              .n_configs = c->n_cfg,
                              .phase = phase,
                              .done = done,
                              .total = total,
                              .rate = rate,
                              .eta = rate > 0 ? (double)(total - done) / rate : 0};
    c->ph_last = t;
    c->ph_told = done < total;
    emit(c, &ev);
}

/* 1. configs: canonical, distinct, baseline first */
static int parse_configs(struct run_ctx *c)
{
    const struct qb_run_opts *o = c->o;
    int rc;
    if (!(c->specs = calloc((size_t)o->n_configs + 1, sizeof *c->specs)) ||
        !(c->names = calloc((size_t)o->n_configs + 1, sizeof *c->names)))
        return qb_err(QB_ENOMEM, "out of memory");
    if ((rc = qb_qspec_parse(o->baseline ? o->baseline : "f32", &c->specs[0])) < 0)
        return rc;
    qb_qspec_format(&c->specs[0], c->names[0], QB_QSPEC_MAX);
    c->n_cfg = 1;
    for (int64_t i = 0; i < o->n_configs; i++) {
        struct qb_qspec sp;
        char nm[QB_QSPEC_MAX];
        int dup = 0;
        if ((rc = qb_qspec_parse(o->configs[i], &sp)) < 0)
            return rc;
        qb_qspec_format(&sp, nm, sizeof nm);
        for (int64_t j = 0; j < c->n_cfg; j++)
            dup |= !strcmp(c->names[j], nm);
        if (dup)
            continue;
        c->specs[c->n_cfg] = sp;
        memcpy(c->names[c->n_cfg++], nm, sizeof nm);
    }
    return 0;
}

/* prompt_template "chat": prompts go through the model's chat template */
static int is_chat(const struct qb_run_opts *o)
{
    return o->prompt_template && !strcmp(o->prompt_template, "chat");
}

/* 2. suite, 3. model (loaded to validate and describe it, then freed), 4. its hash */
static int check_inputs(struct run_ctx *c)
{
    const struct qb_run_opts *o = c->o;
    struct qb_suite_opts so = QB_SUITE_OPTS_INIT;
    struct qb_model *m;
    int rc;

    /* "chat": the model's chat template wraps each prompt (tokenize_item) */
    so.prompt_template = is_chat(o) ? NULL : o->prompt_template;
    if ((rc = qb_run_device_open(&c->dv, o->device)) < 0 ||
        (rc = qb_suite_load(o->suite_path, &so, &c->su)) < 0)
        return rc;
    for (int64_t i = 0; i < c->su->n_warnings; i++)
        say(c, QB_RUN_EV_WARNING, -1, NULL, "%s", c->su->warnings[i]);
    if ((rc = qb_model_load(o->model_path, &c->lo, &c->r.m)) < 0)
        return rc;
    m = c->r.m;
    if (!m->tok)
        return qb_err(QB_EINVAL, "'%s': the model has no tokenizer; pass --tokenizer FILE",
                      m->path);
    for (int64_t i = 0; i < c->n_cfg; i++) /* a layer override beyond the model */
        if ((rc = qb_qspec_check_layers(&c->specs[i], m->cfg.n_layers)) < 0)
            return qb_err_prefix(rc, "'%s'", m->path);
    if (is_chat(o)) { /* a model without a template it can apply is refused now */
        char *probe = NULL;
        const char *fam = NULL;
        if ((rc = qb_chat_prompt(m, "", &probe, &fam)) < 0)
            return rc;
        free(probe);
        say(c, QB_RUN_EV_NOTE, -1, NULL, "prompts go through the model's %s chat template", fam);
    }
    if (c->dv.on_device)
        say(c, QB_RUN_EV_NOTE, -1, NULL, "evaluating, timing and measuring memory on %s",
            c->dv.desc);
    /* the evaluation's engines hold the model's whole context */
    if ((rc = qb_run_device_fit(&c->dv, m, c->specs, (const char(*)[QB_QSPEC_MAX])c->names,
                                c->n_cfg, m->cfg.max_seq_len)) < 0)
        return rc;
    /* calibrated configs (-gptq, -awq, -smooth): the text is tokenized now, so a missing or
     * empty file is refused before the store is touched; the tokens serve the evaluation */
    for (int64_t i = 0; i < c->n_cfg && !c->cal; i++)
        if (c->specs[i].method != QB_METHOD_RTN) {
            if (!o->calib_path)
                return qb_err(QB_EINVAL,
                              "config '%s' needs calibration data (plan key "
                              "calibration: or --calib FILE)",
                              c->names[i]);
            if ((rc = qb_calib_load(o->calib_path, m->tok, o->calib_sequences, o->calib_seq_len,
                                    m->cfg.max_seq_len, &c->cal)) < 0)
                return rc;
        }
    c->arch = g_strdup(m->cfg.arch);
    c->fmt = g_strdup(m->format);
    c->n_params = qb_model_n_params(m);
    c->ctx = m->cfg.max_seq_len;
    /* the memory probe forks children that must not inherit a loaded model; without one
     * (--no-memory, or a device measuring after each config) the model stays for the
     * evaluation (load_model), loaded once instead of twice */
    if (!o->no_memory && !c->dv.on_device) {
        qb_model_free(m);
        c->r.m = NULL;
    }
    return model_sha256(o->model_path, c->sha);
}

/* The calibration file's hash, and how much of the suite it contains (a warning when any). */
static int check_calibration(struct run_ctx *c)
{
    const struct qb_run_opts *o = c->o;
    GChecksum *ck;
    int rc;
    if (!o->calib_path)
        return 0;
    ck = g_checksum_new(G_CHECKSUM_SHA256);
    if ((rc = hash_file(ck, o->calib_path)) >= 0)
        g_strlcpy(c->calib_sha, g_checksum_get_string(ck), sizeof c->calib_sha);
    g_checksum_free(ck);
    if (rc < 0 || (rc = calib_overlap(o->calib_path, c->su, &c->calib_hits)) < 0)
        return qb_err_prefix(rc, "calibration file");
    if (c->calib_hits)
        say(c, QB_RUN_EV_WARNING, -1, NULL,
            "'%s' shares a run of %d words with %lld of the %lld suite items", o->calib_path,
            QB_RUN_OVERLAP_NGRAM, (long long)c->calib_hits, (long long)c->su->n_items);
    return 0;
}

/* Latency settings, capped to the context, with a note for every value changed (gen_len
 * halved to fit, a prompt length capped, or dropped as a repeat once capped): what is timed
 * is what the run records. QB_EINVAL for a gen_len of 1 (the time per output token is
 * measured on the tokens after the first) or more prompt lengths than a run times. */
static int latency_settings(struct run_ctx *c)
{
    static const int64_t defl[] = {128, 512};
    const struct qb_run_opts *o = c->o;
    const int64_t *pl = o->n_prompt_lens > 0 ? o->prompt_lens : defl;
    int npl = o->n_prompt_lens > 0 ? o->n_prompt_lens : 2;
    int max = (int)(sizeof c->lens / sizeof *c->lens), quiet = o->no_latency;
    int64_t ctx = c->ctx;

    if (o->gen_len < 0 || o->gen_len == 1)
        return qb_err(QB_EINVAL,
                      "latency gen_len is %lld; it must be at least 2 (the time per output token "
                      "is measured on the tokens after the first)",
                      (long long)o->gen_len);
    if (npl > max)
        return qb_err(QB_EINVAL, "%d latency prompt lengths; a run times at most %d", npl, max);
    c->gen_len = o->gen_len > 1 ? o->gen_len : 128;
    if (c->gen_len > ctx / 2) {
        int64_t g = ctx / 2 > 1 ? ctx / 2 : 2;
        if (!quiet)
            say(c, QB_RUN_EV_NOTE, -1, NULL,
                "latency gen_len %lld capped to %lld (half the context of %lld)",
                (long long)c->gen_len, (long long)g, (long long)ctx);
        c->gen_len = g;
    }
    for (int i = 0; i < npl; i++) {
        int64_t L = pl[i], cap = ctx - c->gen_len + 1, dup = 0;
        if (L > cap) {
            if (!quiet)
                say(c, QB_RUN_EV_NOTE, -1, NULL,
                    "latency prompt length %lld capped to %lld (context %lld, %lld generated)",
                    (long long)L, (long long)cap, (long long)ctx, (long long)c->gen_len);
            L = cap;
        }
        for (int j = 0; j < c->n_lens; j++)
            dup |= c->lens[j] == L;
        if (dup && !quiet)
            say(c, QB_RUN_EV_NOTE, -1, NULL, "latency prompt length %lld is timed once",
                (long long)L);
        if (L >= 1 && !dup)
            c->lens[c->n_lens++] = L;
    }
    return 0;
}

/* The run's settings_json: the plan's settings (none for a run from flags) completed with
 * what this run decided (collector/store/settings.h); set borrows every string. */
static int run_settings(struct run_ctx *c)
{
    const struct qb_run_opts *o = c->o;
    struct qb_settings set;
    char **cfgv = calloc((size_t)c->n_cfg + 1, sizeof *cfgv);
    char *cfile = g_strdup(o->calib_path);
    int rc;

    if (o->settings)
        set = *o->settings;
    else
        qb_settings_init(&set);
    for (int64_t i = 0; cfgv && i < c->n_cfg; i++)
        cfgv[i] = c->names[i];
    set.configs = cfgv;
    set.n_configs = c->n_cfg;
    set.baseline = c->names[0];
    set.threads = o->threads;
    set.topk = QB_RUN_TOPK;
    set.latency.measured = !o->no_latency;
    set.latency.prompt_lens = c->lens;
    set.latency.n_prompt_lens = c->n_lens;
    set.latency.gen_len = c->gen_len;
    set.latency.batch = o->n_prompt_lens ? o->batch : 4; /* as the latency phase times */
    set.latency.repetitions = o->n_prompt_lens ? o->repetitions : 5;
    set.latency.warmup = o->n_prompt_lens ? o->warmup : 1;
    memset(&set.calibration, 0, sizeof set.calibration);
    set.calibration.overlap_items = -1;
    if (c->calib_sha[0]) {
        set.calibration.file = cfile;
        set.calibration.sha256 = c->calib_sha;
        set.calibration.sequences = o->calib_sequences > 0 ? o->calib_sequences : 128;
        set.calibration.seq_len = o->calib_seq_len > 0 ? o->calib_seq_len : 512;
        set.calibration.overlap_ngram = QB_RUN_OVERLAP_NGRAM;
        set.calibration.overlap_items = c->calib_hits;
        set.calibration.overlap_of = c->su->n_items;
    }
    rc = cfgv ? qb_settings_write(&set, &c->settings) : qb_err(QB_ENOMEM, "out of memory");
    free(cfgv);
    g_free(cfile);
    return rc;
}

/* 4b. a shard: the items it owns (collector/run/shard.h) */
static int shard_items(struct run_ctx *c)
{
    const struct qb_run_opts *o = c->o;
    c->n_mine = c->su->n_items;
    if (!sharded(o))
        return 0;
    struct qb_shard sh = {o->shard_index, o->shard_count};
    int64_t nm = o->n_models > 0 ? o->n_models : 1;
    return qb_shard_items(c->su, o->model_index, nm, &sh, &c->mine, &c->n_mine);
}

/* The shard's record in its store: a token that tells this shard's run from another run
 * of the same shard, and the plan's hash (or the config list's, for a run from flags). */
static int record_shard(struct run_ctx *c, const char *host)
{
    const struct qb_run_opts *o = c->o;
    char plan_sha[65], *token;
    int rc;
    if (!sharded(o))
        return 0;
    if (o->plan_sha256) {
        snprintf(plan_sha, sizeof plan_sha, "%s", o->plan_sha256);
    } else {
        GChecksum *ck = g_checksum_new(G_CHECKSUM_SHA256);
        g_checksum_update(ck, (const guchar *)"configs:", 8);
        for (int64_t i = 0; i < c->n_cfg; i++)
            g_checksum_update(ck, (const guchar *)c->names[i], (gssize)strlen(c->names[i]) + 1);
        snprintf(plan_sha, sizeof plan_sha, "%s", g_checksum_get_string(ck));
        g_checksum_free(ck);
    }
    token = g_strdup_printf("%s-%d-%lld-%08x%08x", host ? host : "?", (int)getpid(),
                            (long long)g_get_real_time(), g_random_int(), g_random_int());
    struct qb_store_shard row = {.shard_index = o->shard_index,
                                 .shard_count = o->shard_count,
                                 .plan_sha256 = plan_sha,
                                 .token = token,
                                 .n_units = c->n_mine * c->n_cfg,
                                 .probe = o->probe,
                                 .host = host,
                                 .machine_json = c->machine};
    rc = qb_store_put_shard(c->r.s, c->r.run_id, &row);
    g_free(token);
    return rc;
}

/* 5. the store: created only now; the run opened (or found again, to resume) */
static int open_store(struct run_ctx *c)
{
    const struct qb_run_opts *o = c->o;
    struct qb_machine mi;
    int rc;

    if (o->name) {
        c->name = g_strdup(o->name);
    } else {
        char *a = base_name_noext(o->model_path), *b = base_name_noext(o->suite_path);
        c->name = g_strdup_printf("%s-%s", a, b);
        g_free(a);
        g_free(b);
    }
    qb_machine_info(&mi);
    if ((rc = qb_machine_json(&mi, &c->machine)) < 0)
        return rc;
    if ((rc = qb_store_open(o->db_path ? o->db_path : "qbrief.db", 0, &c->r.s)) < 0)
        return rc;
    struct qb_store_run run = {.name = c->name,
                               .qbrief_version = "0.1.0",
                               .git_commit = QB_GIT_COMMIT[0] ? QB_GIT_COMMIT : NULL,
                               .command_line = o->command_line,
                               .host = mi.hostname,
                               .machine_json = c->machine,
                               .baseline_config = c->names[0],
                               .settings_json = c->settings,
                               .device = c->dv.desc,
                               .device_json = c->dv.json};
    struct qb_store_model sm = {.path = o->model_path,
                                .sha256 = c->sha,
                                .architecture = c->arch,
                                .format = c->fmt,
                                .n_params = c->n_params};
    struct qb_store_suite ss = {
        .path = c->su->path, .sha256 = c->su->sha256, .n_items = c->su->n_items};
    if ((rc = qb_store_run_open(c->r.s, &run, &sm, &ss, &c->r.run_id, &c->suite_id)) < 0 ||
        (rc = record_shard(c, mi.hostname)) < 0)
        return rc;
    if (c->calib_sha[0]) {
        struct qb_store_calib cr = {0, c->calib_sha,
                                    o->calib_sequences > 0 ? o->calib_sequences : 128,
                                    o->calib_seq_len > 0 ? o->calib_seq_len : 512};
        if ((rc = qb_store_put_calibration(c->r.s, c->r.run_id, &cr)) < 0)
            return rc;
    }
    return 0;
}

/* Every item and a placeholder row per config (measurements filled once its qmodel is
 * built): their ids key the results. */
static int register_items(struct run_ctx *c)
{
    const struct qb_suite *su = c->su;
    int rc;
    if (!(c->item_ids = calloc((size_t)su->n_items + 1, sizeof *c->item_ids)) ||
        !(c->cfg_ids = calloc((size_t)c->n_cfg, sizeof *c->cfg_ids)))
        return qb_err(QB_ENOMEM, "out of memory");
    for (int64_t i = 0; i < su->n_items; i++) {
        const struct qb_suite_item *it = &su->items[i];
        char *p = NULL, *h;
        if ((rc = qb_suite_format_prompt(su, it, &p)) < 0)
            return rc;
        h = g_compute_checksum_for_string(G_CHECKSUM_SHA256, p, -1);
        struct qb_store_item row = {.key = it->id,
                                    .slice = it->slice,
                                    .kind = qb_suite_kind_name(it->kind),
                                    .metric = qb_metric_name(it->metric),
                                    .prompt_sha256 = h,
                                    .prompt = p,
                                    .line = it->line};
        rc = qb_store_put_item(c->r.s, c->suite_id, &row, &c->item_ids[i]);
        g_free(h);
        free(p);
        if (rc < 0)
            return rc;
    }
    for (int64_t i = 0; i < c->n_cfg; i++) {
        struct qb_store_config row = {
            .spec = c->names[i], .bits_per_weight = NAN, .weight_bytes = -1, .quant_seconds = NAN};
        if ((rc = qb_store_put_config(c->r.s, c->r.run_id, &row, &c->cfg_ids[i])) < 0)
            return rc;
    }
    return 0;
}

/* The memory of config ci at the longest latency request's context, unless its row is
 * there: on the CPU in a forked child (this process holding no model), on a device in this
 * process with the config's qmodel (c->qm), as the device's backend reports it. */
static int memory_of(struct run_ctx *c, int64_t ci)
{
    c->cur_ci = ci;
    int64_t mctx = c->gen_len, want[2];
    struct qb_mem_result mr;
    int rc;

    for (int i = 0; i < c->n_lens; i++)
        if (c->lens[i] + c->gen_len > mctx)
            mctx = c->lens[i] + c->gen_len;
    if (mctx > c->ctx)
        mctx = c->ctx;
    want[0] = mctx, want[1] = 0;
    if ((rc = qb_store_list_memory(c->r.s, c->r.run_id, c->cfg_ids[ci], on_memory_ctx, want)) < 0)
        return rc;
    if (want[1])
        return 0;
    struct qb_run_event ev = {.kind = QB_RUN_EV_MEMORY,
                              .config = c->names[ci],
                              .config_index = ci,
                              .n_configs = c->n_cfg,
                              .context = mctx};
    emit(c, &ev);
    if ((rc = c->dv.on_device
                  ? qb_probe_device_memory(c->qm, &c->dv.eo, mctx, &mr)
                  : qb_probe_memory(c->o->model_path, &c->lo, &c->specs[ci], mctx, &mr)) < 0)
        return rc;
    struct qb_store_memory sm = {mctx,       mr.weight_bytes, mr.kv_cache_bytes, mr.peak_rss_bytes,
                                 c->dv.host, c->dv.desc};
    return qb_store_put_memory(c->r.s, c->r.run_id, c->cfg_ids[ci], &sm);
}

/* 6. memory, in forked children, while this process holds no model; configs that have
 * their row at this context already are skipped */
static int measure_memory(struct run_ctx *c)
{
    int rc;
    if (c->o->no_memory || c->dv.on_device) /* a device's: after each config's evaluation */
        return 0;
    for (int64_t ci = 0; ci < c->n_cfg; ci++)
        if ((rc = memory_of(c, ci)) < 0)
            return rc;
    return 0;
}

/* Tokenizes item i into t; items that do not fit the context (or perplexity texts under 2
 * tokens) are marked skipped, with the reason, and warned about. */
static int tokenize_item(struct run_ctx *c, int64_t i, struct titem *t)
{
    const struct qb_suite_item *it = &c->su->items[i];
    const struct qb_model *m = c->r.m;
    int64_t ctx = m->cfg.max_seq_len, need;
    char *p = NULL;
    int rc;

    if ((rc = qb_suite_format_prompt(c->su, it, &p)) < 0)
        return rc;
    if (is_chat(c->o)) { /* the template holds the BOS it wants (collector/model/chat.h) */
        char *q = NULL;
        rc = qb_chat_prompt(m, p, &q, NULL);
        free(p);
        if (rc < 0)
            return rc;
        p = q;
    }
    rc = qb_tok_encode(m->tok, p, strlen(p), is_chat(c->o) ? QB_TOK_NO_BOS : QB_TOK_DEFAULT,
                       &t->ids, &t->n);
    free(p);
    if (rc < 0)
        return qb_err_prefix(rc, "item '%s'", it->id);
    need = t->n + it->max_tokens;
    if (it->kind == QB_KIND_CHOICE) {
        if (!(t->cn = calloc((size_t)it->n_choices, sizeof *t->cn)) ||
            !(t->cids = calloc((size_t)it->n_choices, sizeof *t->cids)))
            return qb_err(QB_ENOMEM, "out of memory");
        t->n_choices = it->n_choices;
        for (int64_t k = 0; k < it->n_choices; k++) {
            if ((rc = qb_tok_encode(m->tok, it->choices[k], strlen(it->choices[k]), QB_TOK_NO_BOS,
                                    &t->cids[k], &t->cn[k])) < 0)
                return qb_err_prefix(rc, "item '%s'", it->id);
            if (t->n + t->cn[k] > need)
                need = t->n + t->cn[k];
        }
    }
    if (t->n == 0 || need > ctx || (it->kind == QB_KIND_PERPLEXITY && t->n < 2)) {
        t->skip = 1;
        c->st.n_skipped_items++;
        if (need > ctx)
            t->why = g_strdup_printf("%lld tokens do not fit the context of %lld", (long long)need,
                                     (long long)ctx);
        else
            t->why = g_strdup_printf("%lld tokens: too short to score", (long long)t->n);
        say(c, QB_RUN_EV_WARNING, -1, it->id, "item '%s' skipped: %s", it->id, t->why);
    }
    return 0;
}

/* 7. the model, loaded once for every config, and the items tokenized with it */
static int load_model(struct run_ctx *c)
{
    int rc;
    if (c->o->threads > 0)
        omp_set_num_threads(c->o->threads);
    if (!c->r.m && (rc = qb_model_load(c->o->model_path, &c->lo, &c->r.m)) < 0)
        return rc;
    c->r.vocab = c->r.m->cfg.vocab_size;
    c->r.chunk = CHUNK_BYTES / (c->r.vocab * (int64_t)sizeof(float));
    c->r.chunk = c->r.chunk < CHUNK_MIN   ? CHUNK_MIN
                 : c->r.chunk > CHUNK_MAX ? CHUNK_MAX
                                          : c->r.chunk;
    c->r.chunk -= c->r.chunk % CHUNK_MIN;
    if (!(c->ti = calloc((size_t)c->su->n_items + 1, sizeof *c->ti)) ||
        !(c->r.rows = malloc((size_t)c->r.chunk * (size_t)c->r.vocab * sizeof *c->r.rows)) ||
        !(c->base_correct = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL)))
        return qb_err(QB_ENOMEM, "out of memory");
    c->st.n_skipped_items = 0;
    for (int64_t i = 0; i < c->su->n_items; i++)
        if (owns(c, i) && (rc = tokenize_item(c, i, &c->ti[i])) < 0)
            return rc;
    return 0;
}

/* A row that says why item i has no result in config ci: status "skipped" or "error". It
 * is written all the same, so the brief counts it and a resume does not retry it. */
static int status_row(struct run_ctx *c, int64_t ci, int64_t i, const char *status, const char *why)
{
    struct qb_store_result sr = {.config_id = c->cfg_ids[ci],
                                 .item_id = c->item_ids[i],
                                 .correct = -1,
                                 .score = NAN,
                                 .nll = NAN,
                                 .n_tokens = -1,
                                 .mean_kl = NAN,
                                 .top1_agreement = NAN,
                                 .flipped = -1,
                                 .status = status,
                                 .error = why};
    c->r.pn = 0;
    return write_unit(&c->r, &sr, c->item_ids[i]);
}

/* Scores item i in the config of pass p (the engine is built) and writes its row; an item
 * that fails (anything but out-of-memory or an I/O error) gets an error row instead. */
static int evaluate_item(struct run_ctx *c, struct pass *p, int64_t i)
{
    const struct qb_suite_item *it = &c->su->items[i];
    struct runner *r = &c->r;
    struct acc a = {0};
    struct result_out res = {.correct = -1, .score = NAN};
    double t1;
    int rc;

    r->pn = 0;
    r->cursor = 0;
    r->base.n = 0;
    if (!r->is_base &&
        (rc = qb_store_list_topk(r->s, r->run_id, c->item_ids[i], on_topk, &r->base)) < 0)
        return rc;
    t1 = now_s();
    if (it->kind == QB_KIND_GENERATE)
        rc = eval_generate(r, it, &c->ti[i], &a, &res);
    else if (it->kind == QB_KIND_CHOICE)
        rc = eval_choice(r, it, &c->ti[i], &a, &res);
    else
        rc = eval_perplexity(r, &c->ti[i], &a, &res);
    if (rc == QB_ENOMEM || rc == QB_EIO) {
        free(res.output);
        return qb_err_prefix(rc, "config '%s', item '%s'", c->names[p->ci], it->id);
    }
    if (rc < 0) {
        /* this item failed (e.g. its output overran the context): record why and go on,
         * so one bad item costs one row, not the run */
        char *why = g_strdup(qb_errmsg());
        free(res.output);
        say(c, QB_RUN_EV_WARNING, p->ci, it->id, "config '%s', item '%s' failed: %s",
            c->names[p->ci], it->id, why);
        rc = status_row(c, p->ci, i, "error", why);
        g_free(why);
        if (rc < 0)
            return rc;
        c->st.n_errors++;
        p->n_now++;
        return 0;
    }
    int flipped = -1;
    if (!r->is_base && res.correct >= 0) {
        gpointer v = g_hash_table_lookup(c->base_correct, &c->item_ids[i]);
        if (v && GPOINTER_TO_INT(v) - 2 >= 0)
            flipped = res.correct != GPOINTER_TO_INT(v) - 2;
    }
    struct qb_store_result sr = {.config_id = c->cfg_ids[p->ci],
                                 .item_id = c->item_ids[i],
                                 .correct = res.correct,
                                 .score = res.score,
                                 .output = res.output,
                                 .nll = a.n_nll ? a.nll_sum / (double)a.n_nll : NAN,
                                 .n_tokens = a.n_nll,
                                 .mean_kl = r->is_base ? NAN
                                            : a.n_kl   ? a.kl_sum / (double)a.n_kl
                                                       : NAN,
                                 .top1_agreement =
                                     a.n_pos ? (double)a.n_agree / (double)a.n_pos : NAN,
                                 .flipped = flipped};
    if (!r->is_base && a.n_kl)
        sr.top1_agreement = (double)a.n_agree / (double)a.n_kl;
    rc = write_unit(r, &sr, c->item_ids[i]);
    free(res.output);
    if (rc < 0)
        return rc;
    c->st.n_evaluated++;
    c->st.n_kind[it->kind]++;
    c->st.seconds_kind[it->kind] += now_s() - t1;
    p->n_now++;
    progress(c, QB_RUN_EV_PROGRESS, p);
    if (c->o->on_unit && c->o->on_unit(c->o->on_unit_ctx, c->st.n_evaluated))
        return qb_err(QB_EINVAL, "run '%s' stopped", c->name);
    return 0;
}

/* 8. config ci: quantized (the baseline first), then every item not yet in the store;
 * the engine and qmodel stay for its latency */
static int evaluate_config(struct run_ctx *c, int64_t ci)
{
    struct runner *r = &c->r;
    struct pass p = {.ci = ci};
    int rc;

    struct qb_run_event ev = {.kind = QB_RUN_EV_CONFIG_START,
                              .config = c->names[ci],
                              .config_index = ci,
                              .n_configs = c->n_cfg,
                              .total = c->n_mine};
    emit(c, &ev);
    c->cur_ci = ci;
    r->is_base = ci == 0;
    if ((rc = qb_qmodel_new_calib(r->m, &c->specs[ci], c->cal, &c->qm)) < 0 ||
        (rc = qb_engine_new_opts(c->qm, &c->dv.eo, &r->e)) < 0)
        return rc;
    struct qb_store_config row = {.spec = c->names[ci],
                                  .bits_per_weight = qb_qmodel_bpw(c->qm),
                                  .weight_bytes = (int64_t)qb_qmodel_bytes(c->qm),
                                  .quant_seconds = c->qm->quant_seconds};
    if ((rc = qb_store_put_config(r->s, r->run_id, &row, &c->cfg_ids[ci])) < 0)
        return rc;
    c->done = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
    struct done_ctx dc = {c->done, c->cfg_ids[ci]};
    if ((rc = qb_store_list_done(r->s, r->run_id, on_done, &dc)) < 0)
        return rc;
    p.t0 = c->last_tick = now_s();
    c->cur_pass = &p;
    r->tick = c->o->on_event ? item_tick : NULL;
    r->tick_ctx = c;
    for (int64_t i = 0; i < c->su->n_items; i++) {
        if (!owns(c, i)) {
            continue; /* another shard's */
        } else if (g_hash_table_contains(c->done, &c->item_ids[i])) {
            c->st.n_resumed++;
            p.n_resumed++;
            p.n_now++;
        } else if (c->ti[i].skip ||
                   (!r->is_base && GPOINTER_TO_INT(g_hash_table_lookup(
                                       c->base_correct, &c->item_ids[i])) == BASE_NOT_OK)) {
            if ((rc = status_row(c, ci, i, "skipped",
                                 c->ti[i].skip ? c->ti[i].why
                                               : "the baseline has no result for this item")) < 0)
                return rc;
            p.n_now++;
        } else if ((rc = evaluate_item(c, &p, i)) < 0) {
            return rc;
        }
    }
    c->cur_pass = NULL;
    r->tick = NULL;
    progress(c, QB_RUN_EV_CONFIG_DONE, &p);
    g_hash_table_destroy(c->done);
    c->done = NULL;
    if (r->is_base)
        return qb_store_list_results(r->s, r->run_id, c->cfg_ids[0], on_base_result,
                                     c->base_correct);
    return 0;
}

/* 9. latency of config ci, its samples in one transaction; skipped when it has some */
static int measure_latency(struct run_ctx *c, int64_t ci)
{
    const struct qb_run_opts *o = c->o;
    int64_t have = 0;
    int rc;

    if (o->no_latency || c->n_lens <= 0)
        return 0;
    if ((rc = qb_store_list_latency(c->r.s, c->r.run_id, c->cfg_ids[ci], on_latency_count, &have)) <
        0)
        return rc;
    if (have)
        return 0;
    struct qb_latency_opts lopt = {.prompt_lens = c->lens,
                                   .n_prompt_lens = c->n_lens,
                                   .gen_len = c->gen_len,
                                   .warmup = o->n_prompt_lens ? o->warmup : 1,
                                   .repetitions = o->n_prompt_lens ? o->repetitions : 5,
                                   .batch = o->n_prompt_lens ? o->batch : 4,
                                   .seed = 1,
                                   .engine = &c->dv.eo};
    if (lopt.repetitions < 1)
        lopt.repetitions = 1;
    c->lb.n = 0;
    struct qb_run_event ev = {.kind = QB_RUN_EV_LATENCY,
                              .config = c->names[ci],
                              .config_index = ci,
                              .n_configs = c->n_cfg,
                              .n_prompt_lens = c->n_lens,
                              .gen_len = c->gen_len,
                              .repetitions = lopt.repetitions,
                              .batch = lopt.batch};
    emit(c, &ev);
    if ((rc = qb_probe_latency(c->qm, &lopt, on_sample, &c->lb)) < 0)
        return rc;
    if ((rc = qb_store_begin(c->r.s)) < 0)
        return rc;
    for (int64_t i = 0; i < c->lb.n; i++) {
        c->lb.v[i].host = c->dv.host, c->lb.v[i].device = c->dv.desc;
        if ((rc = qb_store_put_latency(c->r.s, c->r.run_id, c->cfg_ids[ci], &c->lb.v[i])) < 0) {
            qb_store_rollback(c->r.s);
            return rc;
        }
    }
    if ((rc = qb_store_commit(c->r.s)) < 0)
        return rc;
    c->st.n_latency_configs++;
    ev = (struct qb_run_event){.kind = QB_RUN_EV_LATENCY_DONE,
                               .config = c->names[ci],
                               .config_index = ci,
                               .n_configs = c->n_cfg,
                               .n_samples = c->lb.n};
    emit(c, &ev);
    return 0;
}

/* The config evaluated is done with: its engine and qmodel go. */
static void release_config(struct run_ctx *c)
{
    qb_engine_free(c->r.e);
    c->r.e = NULL;
    qb_qmodel_free(c->qm);
    c->qm = NULL;
}

static void run_release(struct run_ctx *c)
{
    if (c->done)
        g_hash_table_destroy(c->done);
    if (c->base_correct)
        g_hash_table_destroy(c->base_correct);
    free(c->lb.v);
    release_config(c);
    if (c->su)
        titems_free(c->ti, c->su->n_items);
    free(c->r.rows);
    free(c->r.ppos);
    free(c->r.pids);
    free(c->r.plps);
    free(c->r.base.pos);
    free(c->r.base.ids);
    free(c->r.base.lps);
    free(c->r.base.k);
    qb_store_close(c->r.s);
    qb_model_free(c->r.m);
    qb_calib_free(c->cal);
    qb_suite_free(c->su);
    free(c->specs);
    free(c->names);
    free(c->cfg_ids);
    free(c->item_ids);
    free(c->mine);
    free(c->machine);
    g_free(c->name);
    g_free(c->arch);
    g_free(c->fmt);
    free(c->settings);
    qb_run_device_release(&c->dv);
}

int qb_run(const struct qb_run_opts *o, struct qb_run_stats *st_out)
{
    struct run_ctx c = {.o = o, .lo = {.tokenizer_path = o->tokenizer_path}, .r = {.o = o}};
    int rc;

    if (!o->model_path || !o->suite_path || o->n_configs < 0)
        return qb_err(QB_EINVAL, "a run needs a model, a suite and configs");
    if (o->threads > 0) /* the model may be loaded (converted in parallel) by check_inputs */
        omp_set_num_threads(o->threads);
    /* everything that can be refused is checked before the store is created or touched */
    if (o->on_event) /* from here: check_inputs loads the model */
        qb_progress_set(on_phase, &c);
    if ((rc = parse_configs(&c)) < 0 || (rc = check_inputs(&c)) < 0 || (rc = shard_items(&c)) < 0 ||
        (rc = check_calibration(&c)) < 0)
        goto out;
    if ((rc = latency_settings(&c)) < 0 || (rc = run_settings(&c)) < 0 ||
        (rc = open_store(&c)) < 0 || (rc = register_items(&c)) < 0 ||
        (rc = measure_memory(&c)) < 0 || (rc = load_model(&c)) < 0)
        goto out;
    for (int64_t ci = 0; ci < c.n_cfg; ci++) {
        if ((rc = evaluate_config(&c, ci)) < 0 || (rc = measure_latency(&c, ci)) < 0 ||
            (c.dv.on_device && !o->no_memory && (rc = memory_of(&c, ci)) < 0))
            goto out;
        release_config(&c);
    }
    rc = qb_store_run_finish(c.r.s, c.r.run_id);
out:
    qb_progress_set(NULL, NULL);
    if (st_out)
        *st_out = c.st;
    run_release(&c);
    return rc;
}

int qb_run_model_sha256(const char *path, char out[65])
{
    return model_sha256(path, out);
}
