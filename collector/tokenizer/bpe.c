/* tok_bpe: merge-rank BPE and the Hugging Face pipeline around it (normalizers,
 * pre-tokenizers, decoders), shared by tokenizer.json (tok_hf.c) and GGUF "gpt2"
 * vocabularies (tokenizer.c builds a Split-regex + ByteLevel pipeline for those).
 *
 * Must agree with HF tokenizers (normalizer -> normalized added tokens -> pre-tokenizer
 * -> BPE `Word::merge_all` -> decoders) and with GPT-2's byte-to-unicode mapping.
 * Merging keeps a heap of adjacent pairs keyed by merge rank (lowest first, leftmost on
 * ties) like HF, so a long word costs O(n log n). Decoding is per token (streaming):
 * byte-fallback and byte-level tokens give raw bytes, never U+FFFD, so a sequence that
 * splits a UTF-8 character across tokens still decodes to the original bytes. */
#include "kernels/base/err.h"
#include "collector/tokenizer/tokenizer_int.h"

#include <glib.h>
#include <stdlib.h>
#include <string.h>

const char tok_re_gpt2[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
const char tok_re_llama3[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,"
                             "3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
                             "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char tok_re_qwen2[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
                            "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
                            "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

const char *tok_regex_gguf_name(const char *re, size_t len)
{
    if (len == sizeof tok_re_gpt2 - 1 && !memcmp(re, tok_re_gpt2, len))
        return "gpt-2";
    if (len == sizeof tok_re_llama3 - 1 && !memcmp(re, tok_re_llama3, len))
        return "llama-bpe";
    if (len == sizeof tok_re_qwen2 - 1 && !memcmp(re, tok_re_qwen2, len))
        return "qwen2";
    return NULL;
}

/* ---- growable byte buffer ---- */

struct dbuf {
    char *p;
    size_t n, cap;
};

static int db_put(struct dbuf *b, const char *s, size_t n)
{
    if (n > b->cap - b->n || !b->p) {
        size_t ncap = b->cap ? b->cap : 64;
        char *np;
        while (ncap - b->n < n + 1)
            ncap *= 2;
        np = realloc(b->p, ncap);
        if (!np)
            return qb_err(QB_ENOMEM, "tokenizer: out of memory");
        b->p = np;
        b->cap = ncap;
    }
    if (n)
        memcpy(b->p + b->n, s, n);
    b->n += n;
    return 0;
}

static void db_swap(struct dbuf *a, struct dbuf *b)
{
    struct dbuf t = *a;
    *a = *b;
    *b = t;
}

/* ---- GPT-2 byte <-> unicode: printable Latin-1 bytes stand for themselves, the other
 * 68 bytes (0-32, 127-160, 173) are moved to U+0100.. in order ---- */

static int32_t byte_to_cp(unsigned b)
{
    if (b <= 32)
        return 256 + (int32_t)b;
    if (b >= 127 && b <= 160)
        return 256 + 33 + (int32_t)(b - 127);
    if (b == 173)
        return 256 + 67;
    return (int32_t)b;
}

static int cp_to_byte(int32_t cp)
{
    if ((cp >= 33 && cp <= 126) || (cp >= 161 && cp <= 172) || (cp >= 174 && cp <= 255))
        return cp;
    if (cp >= 256 && cp <= 288)
        return cp - 256;
    if (cp >= 289 && cp <= 322)
        return cp - 289 + 127;
    if (cp == 323)
        return 173;
    return -1;
}

static size_t put_cp(char *o, int32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    o[0] = (char)(0xC0 | (cp >> 6)); /* every mapped code point is below U+0800 */
    o[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

static int bytelevel_map(const char *s, size_t n, struct dbuf *out)
{
    char tmp[2];
    int rc;
    for (size_t i = 0; i < n; i++)
        if ((rc = db_put(out, tmp, put_cp(tmp, byte_to_cp((unsigned char)s[i])))) < 0)
            return rc;
    return 0;
}

/* ---- regex ---- */

int tok_scratch_init(struct tok_scratch *sc)
{
    memset(sc, 0, sizeof *sc);
    sc->md = pcre2_match_data_create(8, NULL);
    sc->mctx = pcre2_match_context_create(NULL);
    sc->jit = pcre2_jit_stack_create(32 * 1024, 1024 * 1024, NULL);
    if (!sc->md || !sc->mctx) {
        tok_scratch_release(sc);
        return qb_err(QB_ENOMEM, "tokenizer: out of memory");
    }
    /* a hostile tokenizer.json may bring a pattern that backtracks forever */
    pcre2_set_match_limit(sc->mctx, 10000000);
    pcre2_set_depth_limit(sc->mctx, 100000);
    pcre2_set_heap_limit(sc->mctx, 64 * 1024);
    if (sc->jit)
        pcre2_jit_stack_assign(sc->mctx, NULL, sc->jit);
    return 0;
}

void tok_scratch_release(struct tok_scratch *sc)
{
    pcre2_match_data_free(sc->md);
    pcre2_match_context_free(sc->mctx);
    pcre2_jit_stack_free(sc->jit);
    memset(sc, 0, sizeof *sc);
}

int tok_regex_compile(const char *pat, size_t len, const char *src, const char *what,
                      pcre2_code **out)
{
    int err;
    PCRE2_SIZE off;
    pcre2_code *re;

    *out = NULL;
    if (len > TOK_MAX_PATTERN)
        return qb_err(QB_EFORMAT, "'%s': %s is %zu bytes long (at most %d)", src, what, len,
                      TOK_MAX_PATTERN);
    re = pcre2_compile((PCRE2_SPTR)pat, len, PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err,
                       &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return qb_err(QB_EFORMAT, "'%s': %s '%.*s' does not compile: %s at offset %zu", src, what,
                      (int)(len > 80 ? 80 : len), pat, (const char *)msg, (size_t)off);
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* the interpreter remains if JIT is unavailable */
    *out = re;
    return 0;
}

void tok_pattern_release(struct tok_pattern *p)
{
    free(p->lit);
    pcre2_code_free(p->re);
    memset(p, 0, sizeof *p);
}

void tok_pipeline_release(struct qb_tokenizer *t)
{
    for (int i = 0; i < t->n_norm; i++) {
        tok_pattern_release(&t->norm[i].pat);
        free(t->norm[i].str);
    }
    for (int i = 0; i < t->n_pre; i++)
        tok_pattern_release(&t->pre[i].pat);
    for (int i = 0; i < t->n_dec; i++) {
        tok_pattern_release(&t->dec[i].pat);
        free(t->dec[i].str);
    }
    free(t->norm);
    free(t->pre);
    free(t->dec);
    t->norm = NULL;
    t->pre = NULL;
    t->dec = NULL;
    t->n_norm = t->n_pre = t->n_dec = 0;
}

/* byte ranges of a string: matched (m = 1) or between matches */
struct range {
    size_t s, e;
    int m;
};
struct ranges {
    struct range *v;
    size_t n, cap;
};

static int rg_add(struct ranges *r, size_t s, size_t e, int m)
{
    if (r->n == r->cap) {
        size_t ncap = r->cap ? r->cap * 2 : 32;
        struct range *nv = realloc(r->v, ncap * sizeof *nv);
        if (!nv)
            return qb_err(QB_ENOMEM, "tokenizer: out of memory");
        r->v = nv;
        r->cap = ncap;
    }
    r->v[r->n++] = (struct range){s, e, m};
    return 0;
}

/* Covers s[0..n) with ranges: the non-empty, non-overlapping matches of p (leftmost
 * first) and the gaps between them. */
static int find_ranges(const struct tok_pattern *p, struct tok_scratch *sc, const char *s, size_t n,
                       struct ranges *out)
{
    size_t pos = 0, at = 0;
    int rc;

    out->n = 0;
    for (;;) {
        size_t ms, me;
        if (p->re) {
            PCRE2_SIZE *ov;
            int m;
            if (at > n)
                break;
            m = pcre2_match(p->re, (PCRE2_SPTR)s, n, at, 0, sc->md, sc->mctx);
            if (m == PCRE2_ERROR_NOMATCH)
                break;
            if (m < 0) {
                PCRE2_UCHAR msg[256];
                pcre2_get_error_message(m, msg, sizeof msg);
                return qb_err(QB_EFORMAT, "tokenizer regex failed: %s", (const char *)msg);
            }
            ov = pcre2_get_ovector_pointer(sc->md);
            ms = ov[0];
            me = ov[1];
            if (me <= ms || ms < at) { /* empty match (or \K trickery): step one character */
                if (at >= n)
                    break;
                at += tok_utf8_len((const unsigned char *)s + at, n - at);
                continue;
            }
            at = me;
        } else {
            const char *f;
            if (p->lit_len == 0 || at >= n)
                break;
            f = memmem(s + at, n - at, p->lit, p->lit_len);
            if (!f)
                break;
            ms = (size_t)(f - s);
            me = ms + p->lit_len;
            at = me;
        }
        if (ms > pos && (rc = rg_add(out, pos, ms, 0)) < 0)
            return rc;
        if ((rc = rg_add(out, ms, me, 1)) < 0)
            return rc;
        pos = me;
    }
    if (pos < n && (rc = rg_add(out, pos, n, 0)) < 0)
        return rc;
    return 0;
}

/* Applies an HF SplitDelimiterBehavior to the ranges, in place. */
static void apply_behavior(struct ranges *r, enum tok_split_behavior b, int invert)
{
    size_t k = 0;
    int prev = 0;

    if (invert)
        for (size_t i = 0; i < r->n; i++)
            r->v[i].m = !r->v[i].m;
    switch (b) {
    case TOK_SPLIT_REMOVED:
        for (size_t i = 0; i < r->n; i++)
            if (!r->v[i].m)
                r->v[k++] = r->v[i];
        r->n = k;
        break;
    case TOK_SPLIT_ISOLATED: break;
    case TOK_SPLIT_MERGED_PREV:
        for (size_t i = 0; i < r->n; i++) {
            struct range x = r->v[i];
            if (x.m && !prev && k > 0)
                r->v[k - 1].e = x.e;
            else
                r->v[k++] = x;
            prev = x.m;
        }
        r->n = k;
        break;
    case TOK_SPLIT_MERGED_NEXT:
        /* HF folds from the end: a match joins the range after it unless that one is a
         * match too; rebuild from the back and keep the output at the top end */
        k = r->n;
        for (size_t i = r->n; i-- > 0;) {
            struct range x = r->v[i];
            if (x.m && !prev && k < r->n)
                r->v[k].s = x.s;
            else
                r->v[--k] = x;
            prev = x.m;
        }
        memmove(r->v, r->v + k, (r->n - k) * sizeof *r->v);
        r->n -= k;
        break;
    case TOK_SPLIT_CONTIGUOUS:
        for (size_t i = 0; i < r->n; i++) {
            struct range x = r->v[i];
            if (x.m == prev && k > 0)
                r->v[k - 1].e = x.e;
            else
                r->v[k++] = x;
            prev = x.m;
        }
        r->n = k;
        break;
    }
}

/* ---- pre-tokenized splits: every split's bytes live in one buffer ---- */

struct split {
    size_t off, len;
    int at0; /* begins at offset 0 of the original text (Metaspace prepend_scheme first) */
};
struct splits {
    struct dbuf b;
    struct split *v;
    size_t n, cap;
};

static int sp_end(struct splits *ss, size_t start, int at0)
{
    if (ss->b.n == start)
        return 0; /* HF drops empty splits */
    if (ss->n == ss->cap) {
        size_t ncap = ss->cap ? ss->cap * 2 : 32;
        struct split *nv = realloc(ss->v, ncap * sizeof *nv);
        if (!nv)
            return qb_err(QB_ENOMEM, "tokenizer: out of memory");
        ss->v = nv;
        ss->cap = ncap;
    }
    ss->v[ss->n++] = (struct split){start, ss->b.n - start, at0};
    return 0;
}

static void sp_clear(struct splits *ss)
{
    ss->b.n = 0;
    ss->n = 0;
}

static void sp_release(struct splits *ss)
{
    free(ss->b.p);
    free(ss->v);
}

struct work {
    struct tok_scratch *sc;
    struct splits a, b; /* pre-tokenizer input and output */
    struct dbuf tmp;
    struct ranges rg;
    struct tok_heap heap;
    struct tok_sym *sym;
    size_t sym_cap;
};

static int pre_split(const struct tok_pre *p, struct work *w, const char *s, size_t n, int at0)
{
    int rc;
    if ((rc = find_ranges(&p->pat, w->sc, s, n, &w->rg)) < 0)
        return rc;
    apply_behavior(&w->rg, p->behavior, p->invert);
    for (size_t i = 0; i < w->rg.n; i++) {
        size_t start = w->b.b.n;
        if ((rc = db_put(&w->b.b, s + w->rg.v[i].s, w->rg.v[i].e - w->rg.v[i].s)) < 0 ||
            (rc = sp_end(&w->b, start, at0 && w->rg.v[i].s == 0)) < 0)
            return rc;
    }
    return 0;
}

static int pre_bytelevel(const struct tok_pre *p, struct work *w, const char *s, size_t n, int at0)
{
    int rc;
    w->tmp.n = 0;
    if (p->add_prefix_space && !(n > 0 && s[0] == ' ') && (rc = db_put(&w->tmp, " ", 1)) < 0)
        return rc;
    if ((rc = db_put(&w->tmp, s, n)) < 0)
        return rc;
    if (p->use_regex) {
        if ((rc = find_ranges(&p->pat, w->sc, w->tmp.p, w->tmp.n, &w->rg)) < 0)
            return rc;
    } else {
        w->rg.n = 0;
        if (w->tmp.n && (rc = rg_add(&w->rg, 0, w->tmp.n, 0)) < 0)
            return rc;
    }
    for (size_t i = 0; i < w->rg.n; i++) {
        size_t start = w->b.b.n;
        if ((rc = bytelevel_map(w->tmp.p + w->rg.v[i].s, w->rg.v[i].e - w->rg.v[i].s, &w->b.b)) <
                0 ||
            (rc = sp_end(&w->b, start, at0 && i == 0)) < 0)
            return rc;
    }
    return 0;
}

static int pre_metaspace(const struct tok_pre *p, struct work *w, const char *s, size_t n, int at0)
{
    const char *r = p->repl;
    size_t rl = p->repl_len, start, i;
    int rc;

    w->tmp.n = 0;
    for (i = 0; i < n; i++) {
        rc = s[i] == ' ' ? db_put(&w->tmp, r, rl) : db_put(&w->tmp, s + i, 1);
        if (rc < 0)
            return rc;
    }
    if ((p->prepend == TOK_PREPEND_ALWAYS || (p->prepend == TOK_PREPEND_FIRST && at0)) &&
        !(w->tmp.n >= rl && memcmp(w->tmp.p, r, rl) == 0)) {
        if ((rc = db_put(&w->tmp, r, rl)) < 0)
            return rc;
        memmove(w->tmp.p + rl, w->tmp.p, w->tmp.n - rl);
        memcpy(w->tmp.p, r, rl);
    }
    /* split=true: MergedWithNext on the replacement, i.e. cut before each one */
    start = w->b.b.n;
    for (i = 0; i < w->tmp.n;) {
        size_t j = i + 1;
        while (j < w->tmp.n &&
               !(p->split && w->tmp.n - j >= rl && memcmp(w->tmp.p + j, r, rl) == 0))
            j++;
        if ((rc = db_put(&w->b.b, w->tmp.p + i, j - i)) < 0 ||
            (rc = sp_end(&w->b, start, at0 && i == 0)) < 0)
            return rc;
        start = w->b.b.n;
        i = j;
    }
    return 0;
}

/* ---- the BPE model ---- */

int tok_pairmap_init(struct tok_pairmap *m, int64_t n)
{
    uint64_t cap = 16;
    while (cap < (uint64_t)n * 2)
        cap <<= 1;
    m->key = malloc(cap * sizeof *m->key);
    m->rank = malloc(cap * sizeof *m->rank);
    m->id = malloc(cap * sizeof *m->id);
    if (!m->key || !m->rank || !m->id)
        return qb_err(QB_ENOMEM, "tokenizer: out of memory for %lld merges", (long long)n);
    memset(m->key, 0xff, cap * sizeof *m->key);
    m->mask = cap - 1;
    m->n = 0;
    return 0;
}

static uint64_t pair_hash(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return k;
}

void tok_pairmap_add(struct tok_pairmap *m, int32_t left, int32_t right, int32_t rank, int32_t id)
{
    uint64_t k = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    for (uint64_t i = pair_hash(k) & m->mask;; i = (i + 1) & m->mask) {
        if (m->key[i] == k)
            return; /* duplicate merge: the first (lowest rank) stays */
        if (m->key[i] == UINT64_MAX) {
            m->key[i] = k;
            m->rank[i] = rank;
            m->id[i] = id;
            m->n++;
            return;
        }
    }
}

static int pair_get(const struct tok_pairmap *m, int32_t left, int32_t right, int32_t *rank,
                    int32_t *id)
{
    uint64_t k = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    if (!m->key || m->n == 0)
        return 0;
    for (uint64_t i = pair_hash(k) & m->mask;; i = (i + 1) & m->mask) {
        if (m->key[i] == k) {
            *rank = m->rank[i];
            *id = m->id[i];
            return 1;
        }
        if (m->key[i] == UINT64_MAX)
            return 0;
    }
}

static int32_t model_lookup(const struct qb_tokenizer *t, const char *s, size_t n)
{
    int32_t id = tok_lookup(t, s, n);
    return id < t->n_model ? id : -1;
}

static int bpe_try(const struct qb_tokenizer *t, struct work *w, int32_t l, int32_t r)
{
    struct tok_pair p;
    int32_t rank, id;
    if (l < 0 || r < 0 || w->sym[l].frozen || w->sym[r].frozen)
        return 0;
    if (!pair_get(&t->merges, w->sym[l].id, w->sym[r].id, &rank, &id))
        return 0;
    p.key = -(double)rank;
    p.left = l;
    p.right = r;
    p.id = id;
    p.size = w->sym[l].len + w->sym[r].len;
    return tok_heap_push(&w->heap, p);
}

static int bpe_word(const struct qb_tokenizer *t, struct work *w, const char *s, size_t n,
                    struct tok_ids *out)
{
    struct tok_pair p;
    int32_t n_sym = 0, last_unk = -1;
    int rc;

    if (n == 0)
        return 0;
    if (n > INT32_MAX / 2)
        return qb_err(QB_EINVAL, "'%s': a word of %zu bytes is too long to tokenize", t->src, n);
    if (t->ignore_merges) {
        int32_t id = model_lookup(t, s, n);
        if (id >= 0)
            return tok_ids_push(out, id);
    }
    if (n > w->sym_cap) {
        struct tok_sym *ns = realloc(w->sym, n * sizeof *ns);
        if (!ns)
            return qb_err(QB_ENOMEM, "tokenizer: out of memory");
        w->sym = ns;
        w->sym_cap = n;
    }
    for (size_t i = 0; i < n;) {
        size_t l = tok_utf8_len((const unsigned char *)s + i, n - i);
        int32_t id = model_lookup(t, s + i, l);
        if (id >= 0) {
            w->sym[n_sym] = (struct tok_sym){n_sym - 1, n_sym + 1, (uint32_t)i, (uint32_t)l, id, 0};
            n_sym++;
            last_unk = -1;
        } else {
            size_t k;
            for (k = 0; t->byte_fallback && k < l; k++)
                if (t->byte_id[(unsigned char)s[i + k]] < 0 ||
                    t->byte_id[(unsigned char)s[i + k]] >= t->n_model)
                    break;
            if (t->byte_fallback && k == l) {
                for (k = 0; k < l; k++) {
                    w->sym[n_sym] = (struct tok_sym){n_sym - 1,
                                                     n_sym + 1,
                                                     (uint32_t)(i + k),
                                                     1,
                                                     t->byte_id[(unsigned char)s[i + k]],
                                                     0};
                    n_sym++;
                }
                last_unk = -1;
            } else if (t->unk >= 0) {
                if (t->fuse_unk && last_unk >= 0) {
                    w->sym[last_unk].len += (uint32_t)l;
                } else {
                    w->sym[n_sym] =
                        (struct tok_sym){n_sym - 1, n_sym + 1, (uint32_t)i, (uint32_t)l, t->unk, 0};
                    last_unk = n_sym++;
                }
            } /* else HF drops the character */
        }
        i += l;
    }
    if (n_sym == 0)
        return 0;
    w->sym[n_sym - 1].next = -1;
    w->heap.n = 0;
    for (int32_t k = 0; k + 1 < n_sym; k++)
        if ((rc = bpe_try(t, w, k, k + 1)) < 0)
            return rc;
    while (tok_heap_pop(&w->heap, &p)) {
        const struct tok_sym *l = &w->sym[p.left];
        if (!tok_sym_merge(w->sym, &p))
            continue;
        if ((rc = bpe_try(t, w, l->prev, p.left)) < 0 || (rc = bpe_try(t, w, p.left, l->next)) < 0)
            return rc;
    }
    for (int32_t k = 0; k >= 0; k = w->sym[k].next)
        if ((rc = tok_ids_push(out, w->sym[k].id)) < 0)
            return rc;
    return 0;
}

/* ---- normalizers ---- */

/* NFC/NFKC/... or lowercase over the valid UTF-8 runs of s; invalid bytes and NULs
 * (which glib would stop at) pass through unchanged. */
static int norm_glib(const char *s, size_t n, int mode, int lower, struct dbuf *out)
{
    size_t p = 0;
    int rc;
    while (p < n) {
        const gchar *end;
        size_t v;
        g_utf8_validate(s + p, (gssize)(n - p), &end);
        v = (size_t)(end - (s + p));
        if (v > 0) {
            gchar *r = lower ? g_utf8_strdown(s + p, (gssize)v)
                             : g_utf8_normalize(s + p, (gssize)v, (GNormalizeMode)mode);
            if (!r)
                return qb_err(QB_ENOMEM, "tokenizer: unicode normalization failed");
            rc = db_put(out, r, strlen(r));
            g_free(r);
            if (rc < 0)
                return rc;
            p += v;
        }
        if (p < n) {
            if ((rc = db_put(out, s + p, 1)) < 0)
                return rc;
            p++;
        }
    }
    return 0;
}

static int normalize_one(const struct tok_norm *nm, struct tok_scratch *sc, struct ranges *rg,
                         const char *s, size_t n, struct dbuf *out)
{
    int rc;
    size_t a, b;

    switch (nm->kind) {
    case TOK_NORM_PREPEND:
        if (n > 0 && (rc = db_put(out, nm->str, nm->str_len)) < 0)
            return rc;
        return db_put(out, s, n);
    case TOK_NORM_REPLACE:
        if ((rc = find_ranges(&nm->pat, sc, s, n, rg)) < 0)
            return rc;
        for (size_t i = 0; i < rg->n; i++) {
            rc = rg->v[i].m ? db_put(out, nm->str, nm->str_len)
                            : db_put(out, s + rg->v[i].s, rg->v[i].e - rg->v[i].s);
            if (rc < 0)
                return rc;
        }
        return db_put(out, "", 0);
    case TOK_NORM_NFC: return norm_glib(s, n, G_NORMALIZE_NFC, 0, out);
    case TOK_NORM_NFKC: return norm_glib(s, n, G_NORMALIZE_NFKC, 0, out);
    case TOK_NORM_NFD: return norm_glib(s, n, G_NORMALIZE_NFD, 0, out);
    case TOK_NORM_NFKD: return norm_glib(s, n, G_NORMALIZE_NFKD, 0, out);
    case TOK_NORM_LOWER: return norm_glib(s, n, 0, 1, out);
    case TOK_NORM_STRIP:
        a = 0;
        b = n;
        if (nm->left) {
            while (a < n) {
                size_t l = tok_utf8_len((const unsigned char *)s + a, n - a);
                if (!tok_is_space(tok_utf8_decode((const unsigned char *)s + a, l)))
                    break;
                a += l;
            }
        }
        if (nm->right) {
            size_t i = a;
            b = a;
            while (i < n) {
                size_t l = tok_utf8_len((const unsigned char *)s + i, n - i);
                if (!tok_is_space(tok_utf8_decode((const unsigned char *)s + i, l)))
                    b = i + l;
                i += l;
            }
        }
        return db_put(out, s + a, b - a);
    }
    return 0;
}

/* ---- encode ---- */

static int pre_and_model(const struct qb_tokenizer *t, void *ctx, const char *s, size_t n,
                         int at_start, struct tok_ids *out)
{
    struct work *w = ctx;
    int rc;

    sp_clear(&w->a);
    if ((rc = db_put(&w->a.b, s, n)) < 0 || (rc = sp_end(&w->a, 0, at_start)) < 0)
        return rc;
    for (int k = 0; k < t->n_pre; k++) {
        const struct tok_pre *p = &t->pre[k];
        sp_clear(&w->b);
        for (size_t i = 0; i < w->a.n; i++) {
            const char *x = w->a.b.p + w->a.v[i].off;
            size_t xn = w->a.v[i].len;
            int at0 = w->a.v[i].at0;
            switch (p->kind) {
            case TOK_PRE_SPLIT: rc = pre_split(p, w, x, xn, at0); break;
            case TOK_PRE_BYTELEVEL: rc = pre_bytelevel(p, w, x, xn, at0); break;
            case TOK_PRE_METASPACE: rc = pre_metaspace(p, w, x, xn, at0); break;
            }
            if (rc < 0)
                return rc;
        }
        struct splits tmp = w->a;
        w->a = w->b;
        w->b = tmp;
    }
    for (size_t i = 0; i < w->a.n; i++)
        if ((rc = bpe_word(t, w, w->a.b.p + w->a.v[i].off, w->a.v[i].len, out)) < 0)
            return rc;
    return 0;
}

/* Runs the normalizers over s[0..n) into x (y is scratch). */
static int normalize_all(const struct qb_tokenizer *t, struct tok_scratch *sc, struct ranges *rg,
                         const char *s, size_t n, struct dbuf *x, struct dbuf *y)
{
    int rc;
    x->n = 0;
    if ((rc = db_put(x, s, n)) < 0)
        return rc;
    for (int k = 0; k < t->n_norm; k++) {
        y->n = 0;
        if ((rc = db_put(y, "", 0)) < 0 ||
            (rc = normalize_one(&t->norm[k], sc, rg, x->p, x->n, y)) < 0)
            return rc;
        db_swap(x, y);
        /* a Replace may grow the text; keep the sizes the merging code indexes with 32 bits */
        if (x->n > TOK_MAX_TEXT * 4)
            return qb_err(QB_EINVAL, "'%s': text grows past %zu bytes in normalization", t->src,
                          TOK_MAX_TEXT * 4);
    }
    return 0;
}

int tok_normalize_added(struct qb_tokenizer *t)
{
    struct tok_scratch sc = {0};
    struct ranges rg = {0};
    struct dbuf x = {0}, y = {0};
    int rc = 0, any = 0;

    for (int64_t k = 0; k < t->n_added; k++)
        any |= t->added[k].normalized;
    if (!any || t->n_norm == 0)
        return 0;
    if ((rc = tok_scratch_init(&sc)) < 0)
        return rc;
    for (int64_t k = 0; k < t->n_added && rc == 0; k++) {
        struct tok_added *a = &t->added[k];
        char *ns;
        if (!a->normalized)
            continue;
        if ((rc = normalize_all(t, &sc, &rg, a->s, a->len, &x, &y)) < 0)
            break;
        if (x.n == 0 || x.n > TOK_MAX_PIECE) {
            a->len = 0; /* normalizes to nothing: never matched */
            continue;
        }
        if (!(ns = malloc(x.n + 1))) {
            rc = qb_err(QB_ENOMEM, "'%s': out of memory", t->src);
            break;
        }
        memcpy(ns, x.p, x.n);
        ns[x.n] = '\0';
        free(a->s);
        a->s = ns;
        a->len = x.n;
    }
    tok_scratch_release(&sc);
    free(rg.v);
    free(x.p);
    free(y.p);
    return rc < 0 ? rc : tok_sort_added(t);
}

int tok_bpe_encode(const struct qb_tokenizer *t, struct tok_scratch *sc, const char *text,
                   size_t len, int at_start, int flags, struct tok_ids *out)
{
    struct work w = {0};
    struct dbuf x = {0}, y = {0};
    int rc;

    w.sc = sc;
    if ((rc = normalize_all(t, sc, &w.rg, text, len, &x, &y)) == 0)
        rc = tok_split_added(t, x.p, x.n, at_start, 1, flags, pre_and_model, &w, out);
    free(x.p);
    free(y.p);
    sp_release(&w.a);
    sp_release(&w.b);
    free(w.tmp.p);
    free(w.rg.v);
    free(w.heap.v);
    free(w.sym);
    return rc;
}

/* ---- decode: the decoder chain run on one token ---- */

static int dec_bytelevel(const char *s, size_t n, struct dbuf *out)
{
    size_t start = out->n;
    int rc;
    for (size_t i = 0; i < n;) {
        size_t l = tok_utf8_len((const unsigned char *)s + i, n - i);
        int b = cp_to_byte(tok_utf8_decode((const unsigned char *)s + i, l));
        char c = (char)b;
        if (b < 0) { /* not byte-level text (an added token): HF keeps it as it is */
            out->n = start;
            return db_put(out, s, n);
        }
        if ((rc = db_put(out, &c, 1)) < 0)
            return rc;
        i += l;
    }
    return 0;
}

static int dec_replace(const char *s, size_t n, const char *from, size_t fl, const char *to,
                       size_t tl, struct dbuf *out)
{
    int rc;
    for (size_t i = 0; i < n;) {
        if (fl && n - i >= fl && memcmp(s + i, from, fl) == 0) {
            if ((rc = db_put(out, to, tl)) < 0)
                return rc;
            i += fl;
        } else {
            if ((rc = db_put(out, s + i, 1)) < 0)
                return rc;
            i++;
        }
    }
    return 0;
}

static int run_decoders(const struct qb_tokenizer *t, struct tok_scratch *sc, struct ranges *rg,
                        int first, struct dbuf *x, struct dbuf *y)
{
    int fused = 0, rc = 0;
    for (int k = 0; k < t->n_dec; k++) {
        const struct tok_dec *d = &t->dec[k];
        unsigned char b;
        y->n = 0;
        switch (d->kind) {
        case TOK_DEC_BYTELEVEL:
            rc = dec_bytelevel(x->p, x->n, y);
            fused = 1; /* HF's ByteLevel decoder joins every token into one */
            break;
        case TOK_DEC_METASPACE:
            rc = dec_replace(x->p, x->n, d->repl, d->repl_len, " ", 1, y);
            if (rc == 0 && first && d->prepend != TOK_PREPEND_NEVER && y->n > 0 && y->p[0] == ' ') {
                memmove(y->p, y->p + 1, y->n - 1);
                y->n--;
            }
            break;
        case TOK_DEC_REPLACE:
            if (d->pat.re) {
                if ((rc = find_ranges(&d->pat, sc, x->p, x->n, rg)) < 0)
                    return rc;
                for (size_t i = 0; i < rg->n && rc == 0; i++)
                    rc = rg->v[i].m ? db_put(y, d->str, d->str_len)
                                    : db_put(y, x->p + rg->v[i].s, rg->v[i].e - rg->v[i].s);
            } else {
                rc = dec_replace(x->p, x->n, d->pat.lit, d->pat.lit_len, d->str, d->str_len, y);
            }
            break;
        case TOK_DEC_BYTEFALLBACK:
            if (tok_parse_byte_piece(x->p, x->n, &b))
                rc = db_put(y, (const char *)&b, 1);
            else
                rc = db_put(y, x->p, x->n);
            break;
        case TOK_DEC_FUSE:
            fused = 1;
            rc = db_put(y, x->p, x->n);
            break;
        case TOK_DEC_STRIP: {
            size_t a = 0, e = x->n, cl = d->str_len;
            if (!fused || first)
                for (int64_t i = 0;
                     i < d->start && cl && e - a >= cl && memcmp(x->p + a, d->str, cl) == 0; i++)
                    a += cl;
            if (!fused) /* after Fuse the end of the text is not known here */
                for (int64_t i = 0;
                     i < d->stop && cl && e - a >= cl && memcmp(x->p + e - cl, d->str, cl) == 0;
                     i++)
                    e -= cl;
            rc = db_put(y, x->p + a, e - a);
            break;
        }
        }
        if (rc < 0)
            return rc;
        db_swap(x, y);
    }
    return 0;
}

size_t tok_bpe_decode_piece(const struct qb_tokenizer *t, int32_t prev, int32_t id, char *buf,
                            size_t cap)
{
    const char *s = t->arena + t->off[id];
    size_t len = t->len[id], n = 0;
    struct dbuf x = {0}, y = {0};
    struct ranges rg = {0};
    struct tok_scratch sc = {0};
    int need_sc = 0;

    switch (t->types[id]) {
    case QB_TT_CONTROL:
    case QB_TT_UNKNOWN:
    case QB_TT_UNUSED: return 0;
    case QB_TT_USER_DEFINED:
        if (cap)
            memcpy(buf, s, len < cap ? len : cap);
        return len;
    }
    for (int k = 0; k < t->n_dec; k++)
        if (t->dec[k].kind == TOK_DEC_REPLACE && t->dec[k].pat.re)
            need_sc = 1;
    /* both buffers allocated, so that no step sees a NULL pointer for empty text */
    if ((need_sc && tok_scratch_init(&sc) < 0) || db_put(&x, s, len) < 0 || db_put(&y, "", 0) < 0 ||
        run_decoders(t, &sc, &rg, prev < 0 || prev == t->bos, &x, &y) < 0)
        goto out; /* out of memory: nothing */
    n = x.n;
    if (cap && n)
        memcpy(buf, x.p, n < cap ? n : cap);
out:
    if (need_sc)
        tok_scratch_release(&sc);
    free(x.p);
    free(y.p);
    free(rg.v);
    return n;
}
