/* gptq: GPTQ (Frantar et al. 2022, arXiv 2210.17323, Algorithm 1 with the lazy block updates
 * and the Cholesky reformulation of section 3) for the integer formats of qtensor.h. See
 * gptq.h for the algorithm as implemented. The bytes written must agree with the layouts in
 * qtensor.h and with what kernels/quantize.c writes for the same codes: group headers are
 * f16, codes round half to even, and the header rules (signed-max symmetric scale, min/max
 * asymmetric range, the clipping search over 21 candidates) are those of quantize.c, so that
 * with nothing to propagate (H diagonal) the result is RTN's, byte for byte (a test checks).
 *
 * Numerics: H, its Cholesky factor and the inverse are double; U and the weights being
 * updated are f32 (as the reference implementation runs them). */
#include "kernels/gptq.h"

#include "kernels/base/err.h"
#include "kernels/half.h"
#include "kernels/dispatch.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK 128     /* columns per lazy-update block; every group size divides it */
#define TILE 16       /* rows a thread updates together, reading U once per tile */
#define CLIP_STEPS 20 /* as quantize.c: factors 1 - k/40, k = 0..20 */
#define ALIGN 64

static inline float rne(float x)
{
    return (x + 12582912.0f) - 12582912.0f; /* round half even for |x| < 2^22 */
}

static inline float clampf(float x, float lo, float hi)
{
    x = x > lo ? x : lo;
    return x < hi ? x : hi;
}

/* ---- the grid: one group header (or an int8 row scale) -------------------------------- */

struct hdr {
    float d, m;        /* the f16 values as f32; for int8 d is the row scale */
    uint16_t d16, m16; /* group formats: the stored f16 bits */
};

static struct hdr hdr_make(float d, float m, int asym)
{
    struct hdr h = {0};
    h.d16 = qb_f32_to_f16(d);
    h.d = qb_f16_to_f32(h.d16);
    if (asym) {
        h.m16 = qb_f32_to_f16(m);
        h.m = qb_f16_to_f32(h.m16);
    }
    return h;
}

/* What quantizes one weight: the format's grid and the header in force. */
struct grid {
    int bits, asym, is_i8;
    float qmax, z; /* group formats: 2^b - 1 and 2^(b-1) */
};

/* Code (0..2^b-1 for groups, -127..127 for int8) and the value it decodes to. */
static inline int quant_one(const struct grid *g, const struct hdr *h, float w, float *value)
{
    if (g->is_i8) {
        float q = h->d != 0 ? rne(clampf(w / h->d, -127.0f, 127.0f)) : 0.0f;
        *value = h->d * q;
        return (int)q;
    }
    const float id = h->d != 0 ? 1.0f / h->d : 0.0f;
    if (g->asym) {
        float q = rne(clampf((w - h->m) * id, 0.0f, g->qmax));
        *value = h->d * q + h->m;
        return (int)q;
    }
    float q = rne(clampf(w * id, -g->z, g->z - 1.0f));
    *value = h->d * q;
    return (int)(q + g->z);
}

/* Squared error of one group (n a multiple of 8) under h, summed in the order quantize.c
 * sums it, so the clipping search makes the same choices on the same weights; with cw, each
 * weight's error counts cw[i] times (the clipping search weighted by input energy). */
static double group_err(const struct grid *g, const float *w, const float *cw, int n,
                        const struct hdr *h)
{
    float acc[8] = {0}, v;
    double e = 0;
    for (int i = 0; i < n; i += 8)
        for (int l = 0; l < 8; l++) {
            quant_one(g, h, w[i + l], &v);
            float r = w[i + l] - v;
            acc[l] += cw ? cw[i + l] * r * r : r * r;
        }
    for (int l = 0; l < 8; l++)
        e += acc[l];
    return e;
}

/* The expected output error of one group: r^T H_gg r, r = w - q, H_gg (n, n) at hb with
 * leading dimension ld. Most of AWQ's time is in the quad_form kernel (kernels/dispatch.h:
 * the table in force, so --isa reaches it; every variant gives the same bits). */
static double group_err_h(const struct grid *g, const float *w, const double *hb, int64_t ld, int n,
                          const struct hdr *h)
{
    double r[128];
    float v;
    for (int i = 0; i < n; i++) {
        quant_one(g, h, w[i], &v);
        r[i] = (double)w[i] - v;
    }
    return qb_kernels()->quad_form(hb, ld, r, n);
}

static struct hdr asym_hdr(float lo, float hi, int bits)
{
    float m = qb_f16_to_f32(qb_f32_to_f16(lo)), d = (hi - m) / (float)((1 << bits) - 1);
    return hdr_make(d > 0 ? d : 0, lo, 1);
}

/* With the codes c of header *best fixed, the scale and minimum (d, m) that minimise the
 * expected output error (w - d c - m)^T H (w - d c - m) solve a 2 x 2 system; the codes are
 * then rounded again under the new header. A few rounds, each kept only when it lowers the
 * error (*best_err): the clipping search's grid, refined to the point it was looking for. */
static void refit_asym(const struct grid *g, const float *w, const double *hb, int64_t ld, int n,
                       struct hdr *best, double *best_err)
{
    /* H 1, H w and the terms of the system that do not depend on the codes */
    double h1[128], hw[128], a22 = 0, b2 = 0;
    for (int i = 0; i < n; i++) {
        h1[i] = hw[i] = 0;
        for (int j = 0; j < n; j++) {
            h1[i] += hb[i * ld + j];
            hw[i] += hb[i * ld + j] * w[j];
        }
        a22 += h1[i];
        b2 += w[i] * h1[i];
    }
    for (int round = 0; round < 4; round++) {
        double a12 = 0, b1 = 0, c[128];
        float v;
        for (int i = 0; i < n; i++) {
            c[i] = quant_one(g, best, w[i], &v);
            a12 += c[i] * h1[i];
            b1 += c[i] * hw[i]; /* w^T H c */
        }
        const double a11 = qb_kernels()->quad_form(hb, ld, c, n);
        const double det = a11 * a22 - a12 * a12;
        if (!(fabs(det) > 1e-30 * fabs(a11 * a22)) || !(a22 > 0))
            return;
        const double d = (b1 * a22 - b2 * a12) / det, m = (a11 * b2 - a12 * b1) / det;
        if (!(d > 0) || !isfinite(m))
            return;
        struct hdr h = hdr_make((float)d, (float)m, 1);
        if (isinf(h.d) || isinf(h.m))
            return;
        const double e = group_err_h(g, w, hb, ld, n, &h);
        if (!(e < *best_err))
            return;
        *best_err = e;
        *best = h;
    }
}

/* The header of one group of n weights: the rules of quantize.c (see its header comment).
 * -1 when it overflows f16. */
static int group_header(const struct grid *g, const float *w, const float *cw, const double *hb,
                        int64_t ld, int n, int clip, struct hdr *out)
{
    struct hdr best;
    double best_err;
    if (!g->asym) {
        float vmax = 0, amax = 0;
        for (int i = 0; i < n; i++)
            if (fabsf(w[i]) > amax) {
                amax = fabsf(w[i]);
                vmax = w[i];
            }
        float d = amax > 0 ? vmax / -g->z : 0.0f;
        best = hdr_make(d, 0, 0);
        if (isinf(best.d))
            return -1;
        if (clip && amax > 0) {
            best_err = (hb ? group_err_h(g, w, hb, ld, n, &best) : group_err(g, w, cw, n, &best));
            for (int k = 1; k <= CLIP_STEPS; k++) {
                struct hdr h = hdr_make(d * (1.0f - (float)k / (2 * CLIP_STEPS)), 0, 0);
                double e = hb ? group_err_h(g, w, hb, ld, n, &h) : group_err(g, w, cw, n, &h);
                if (e < best_err) {
                    best_err = e;
                    best = h;
                }
            }
        }
        *out = best;
        return 0;
    }
    float mn = w[0], mx = w[0];
    for (int i = 1; i < n; i++) {
        mn = w[i] < mn ? w[i] : mn;
        mx = w[i] > mx ? w[i] : mx;
    }
    best = asym_hdr(mn, mx, g->bits);
    if (isinf(best.d) || isinf(best.m))
        return -1;
    if (clip && mx != mn) {
        /* coordinate descent: min up by k_lo steps, max down by k_hi, k_lo + k_hi <= 20 */
        const float step = (mx - mn) / (2 * CLIP_STEPS);
        int k_lo = 0, k_hi = 0;
        best_err = (hb ? group_err_h(g, w, hb, ld, n, &best) : group_err(g, w, cw, n, &best));
        for (int pass = 0; pass < 3; pass++) {
            int moved = 0;
            for (int k = 0; k <= CLIP_STEPS; k++) {
                int lo = pass == 1 ? k_lo : k, hi = pass == 1 ? k : k_hi;
                if (lo + hi > CLIP_STEPS || (lo == k_lo && hi == k_hi))
                    continue;
                struct hdr h = asym_hdr(mn + (float)lo * step, mx - (float)hi * step, g->bits);
                double e = hb ? group_err_h(g, w, hb, ld, n, &h) : group_err(g, w, cw, n, &h);
                if (e < best_err) {
                    best_err = e;
                    best = h;
                    k_lo = lo;
                    k_hi = hi;
                    moved = 1;
                }
            }
            if (pass > 0 && !moved)
                break;
        }
        if (hb)
            refit_asym(g, w, hb, ld, n, &best, &best_err);
    }
    *out = best;
    return 0;
}

/* ---- H^-1 and its Cholesky factor ------------------------------------------------------ */

/* In place: a (n, n) -> its lower Cholesky factor (a = L L^T); -1 when not positive
 * definite. Column by column; row i of column j is a dot product of two row prefixes. */
static int chol_lower(double *a, int64_t n)
{
    for (int64_t j = 0; j < n; j++) {
        double *aj = a + j * n, s = aj[j];
        for (int64_t k = 0; k < j; k++)
            s -= aj[k] * aj[k];
        if (!(s > 0) || !isfinite(s))
            return -1;
        const double djj = sqrt(s);
        aj[j] = djj;
#pragma omp parallel for schedule(static) if ((n - j) * j >= (1 << 16))
        for (int64_t i = j + 1; i < n; i++) {
            double *ai = a + i * n, t = ai[j];
            for (int64_t k = 0; k < j; k++)
                t -= ai[k] * aj[k];
            ai[j] = t / djj;
        }
    }
    return 0;
}

int qb_gptq_hinv_chol(const double *h, int64_t n, double damp, float *u)
{
    double *k = NULL, *y = NULL;
    size_t nn;
    int rc = 0;
    if (n <= 0 || qb_mul_size((size_t)n, (size_t)n, &nn) < 0 || nn > SIZE_MAX / sizeof(double))
        return qb_err(QB_EINVAL, "gptq: bad matrix size %lld", (long long)n);
    if (!(k = malloc(nn * sizeof *k)) || !(y = malloc(nn * sizeof *y))) {
        rc = qb_err(QB_ENOMEM, "gptq: out of memory for a %lld x %lld Hessian", (long long)n,
                    (long long)n);
        goto out;
    }
    /* Reversing the order (J, the exchange matrix): J H J = C C^T with C lower, so
     * H = R R^T with R = J C J upper, and H^-1 = (R^-1)^T R^-1: U = R^-1 = J C^-1 J is the
     * upper factor wanted, from one Cholesky and one triangular inverse. */
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++)
            k[i * n + j] = h[(n - 1 - i) * n + (n - 1 - j)] + (i == j ? damp : 0.0);
    if (chol_lower(k, n) < 0) {
        rc = qb_err(QB_ERANGE, "gptq: the Hessian is not positive definite");
        goto out;
    }
    /* y = (C^-1)^T: row j of y is column j of C^-1, by forward substitution */
#pragma omp parallel for schedule(dynamic, 16) if (n >= 64)
    for (int64_t j = 0; j < n; j++) {
        double *yj = y + j * n;
        memset(yj, 0, (size_t)j * sizeof *yj);
        yj[j] = 1.0 / k[j * n + j];
        for (int64_t i = j + 1; i < n; i++) {
            const double *ci = k + i * n;
            double t = 0;
            for (int64_t kk = j; kk < i; kk++)
                t += ci[kk] * yj[kk];
            yj[i] = -t / ci[i];
        }
    }
    /* U_ij = (C^-1)_{n-1-i, n-1-j} = y_{n-1-j, n-1-i}, j >= i */
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++)
            u[i * n + j] = j >= i ? (float)y[(n - 1 - j) * n + (n - 1 - i)] : 0.0f;
out:
    free(k);
    free(y);
    return rc;
}

struct diag_idx {
    double d;
    int64_t i;
};

static int by_diag_desc(const void *a, const void *b)
{
    const struct diag_idx *x = a, *y = b;
    if (x->d != y->d)
        return x->d > y->d ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

void qb_gptq_act_order(const double *h, int64_t n, int64_t *perm)
{
    struct diag_idx *v = malloc((size_t)n * sizeof *v);
    if (!v) { /* no memory for the sort: the identity is a valid (if plain) order */
        for (int64_t i = 0; i < n; i++)
            perm[i] = i;
        return;
    }
    for (int64_t i = 0; i < n; i++)
        v[i] = (struct diag_idx){h[i * n + i], i};
    qsort(v, (size_t)n, sizeof *v, by_diag_desc);
    for (int64_t i = 0; i < n; i++)
        perm[i] = v[i].i;
    free(v);
}

/* ---- the column loop ------------------------------------------------------------------- */

struct job {
    int64_t rows, n, group, n_groups;
    const float *w;      /* (rows, n), dead columns zeroed */
    const float *u;      /* (n, n) upper, in processing order */
    const int64_t *perm; /* (n) processing position -> column */
    const float *cw;     /* (n) per column, in column order: the clipping search's weights,
                            or NULL for plain squared error */
    const double *hw;    /* (n, n) or NULL: the search scores r^T H_gg r instead */
    struct grid g;
    int clip, act_order;
    struct hdr *hdr; /* (rows, n_groups) group formats; (rows) int8 */
    uint8_t *codes;  /* (rows, n) in column order: the code (+128 for int8) */
};

/* Rows r0 .. r0+nr through every column; wt (TILE, n) and err (TILE, BLOCK) are scratch.
 * -1 when a group header overflows f16. */
static int run_tile(const struct job *J, int64_t r0, int64_t nr, float *wt, float *err)
{
    const int64_t n = J->n;
    for (int64_t r = 0; r < nr; r++)
        for (int64_t i = 0; i < n; i++)
            wt[r * n + i] = J->w[(r0 + r) * n + J->perm[i]];
    for (int64_t i1 = 0; i1 < n; i1 += BLOCK) {
        const int64_t i2 = i1 + BLOCK < n ? i1 + BLOCK : n;
        for (int64_t i = i1; i < i2; i++) {
            const float *ui = J->u ? J->u + i * n : NULL;
            const float dinv = ui ? 1.0f / ui[i] : 0.0f;
            const int64_t col = J->perm[i];
            for (int64_t r = 0; r < nr; r++) {
                float *w = wt + r * n, v;
                struct hdr *h;
                if (J->g.is_i8) {
                    h = &J->hdr[r0 + r];
                } else {
                    h = &J->hdr[(r0 + r) * J->n_groups + col / J->group];
                    /* without act-order the group's columns are i .. i+group-1, all in
                     * this block (group divides BLOCK), with every update so far applied */
                    if (!J->act_order && i % J->group == 0 &&
                        group_header(&J->g, w + i, J->cw ? J->cw + col : NULL,
                                     J->hw ? J->hw + col * J->n + col : NULL, J->n, (int)J->group,
                                     J->clip, h) < 0)
                        return -1;
                }
                int q = quant_one(&J->g, h, w[i], &v);
                J->codes[(r0 + r) * n + col] = (uint8_t)(J->g.is_i8 ? q + 128 : q);
                if (!ui)
                    continue; /* weighted round-to-nearest: nothing to propagate */
                const float e = (w[i] - v) * dinv;
                err[r * BLOCK + (i - i1)] = e;
                for (int64_t j = i + 1; j < i2; j++)
                    w[j] -= e * ui[j];
            }
        }
        /* the block's errors onto every later column: W[:, i2:] -= E U[i1:i2, i2:] */
        if (i2 < n && J->u)
            for (int64_t r = 0; r < nr; r++) {
                float *w = wt + r * n;
                for (int64_t k = i1; k < i2; k++) {
                    const float e = err[r * BLOCK + (k - i1)];
                    const float *uk = J->u + k * n;
                    if (e == 0)
                        continue;
                    for (int64_t j = i2; j < n; j++)
                        w[j] -= e * uk[j];
                }
            }
    }
    return 0;
}

/* ---- packing (the layouts of qtensor.h) ------------------------------------------------ */

static void pack_sub(const uint8_t *q, int bits, uint8_t *dst)
{
    if (bits == 4) {
        for (int i = 0; i < 16; i++)
            dst[i] = (uint8_t)(q[i] | q[i + 16] << 4);
        return;
    }
    for (int i = 0; i < 8; i++) /* byte i: codes i, i+8, i+16, i+24, two bits each */
        dst[i] = (uint8_t)((q[i] & 3) | (q[i + 8] & 3) << 2 | (q[i + 16] & 3) << 4 |
                           (q[i + 24] & 3) << 6);
    if (bits == 3) { /* then bit 2 of code j at bit j of a little-endian u32 */
        uint32_t hb = 0;
        for (int j = 0; j < 32; j++)
            hb |= (uint32_t)((q[j] >> 2) & 1) << j;
        for (int i = 0; i < 4; i++)
            dst[8 + i] = (uint8_t)(hb >> (8 * i));
    }
}

static size_t align_up(size_t x)
{
    return (x + ALIGN - 1) / ALIGN * ALIGN;
}

/* Allocates out as quantize.c lays a tensor out (one block: rows, scales, sums) and packs
 * the codes into it. */
static int pack(const struct job *J, enum qb_fmt fmt, struct qb_qtensor *out)
{
    struct qb_qtensor t = {0};
    const int64_t rows = J->rows, n = J->n;
    size_t total, off_scale, off_sum;
    void *mem;

    t.fmt = fmt;
    t.rows = rows;
    t.cols = n;
    t.group = J->g.is_i8 ? 0 : (int)J->group;
    t.asym = J->g.is_i8 ? 0 : J->g.asym;
    t.row_bytes = qb_fmt_row_bytes(fmt, n, t.group, t.asym);
    total = align_up((size_t)rows * t.row_bytes);
    off_scale = total;
    if (J->g.is_i8)
        total = align_up(total + (size_t)rows * sizeof(float));
    off_sum = total;
    if (J->g.is_i8)
        total = align_up(total + (size_t)rows * sizeof(int32_t));
    if (!(mem = aligned_alloc(ALIGN, total)))
        return qb_err(QB_ENOMEM, "gptq: out of memory for a (%lld, %lld) '%s' tensor",
                      (long long)rows, (long long)n, qb_fmt_name(fmt));
    t.owned = mem;
    t.data = mem;
    if (J->g.is_i8) {
        float *scale = (float *)((char *)mem + off_scale);
        int32_t *sum = (int32_t *)((char *)mem + off_sum);
        for (int64_t r = 0; r < rows; r++) {
            int8_t *dst = (int8_t *)mem + (size_t)r * t.row_bytes;
            int32_t acc = 0;
            for (int64_t i = 0; i < n; i++) {
                dst[i] = (int8_t)((int)J->codes[r * n + i] - 128);
                acc += dst[i];
            }
            scale[r] = J->hdr[r].d;
            sum[r] = acc;
        }
        t.row_scale = scale;
        t.row_sum = sum;
    } else {
        const size_t sb = J->g.bits == 4   ? QB_SUB_BYTES_I4
                          : J->g.bits == 3 ? QB_SUB_BYTES_I3
                                           : QB_SUB_BYTES_I2;
        for (int64_t r = 0; r < rows; r++) {
            uint8_t *dst = (uint8_t *)mem + (size_t)r * t.row_bytes;
            for (int64_t g = 0; g < J->n_groups; g++) {
                const struct hdr *h = &J->hdr[r * J->n_groups + g];
                if (J->g.asym) {
                    struct qb_ghdr_asym a = {h->d16, h->m16};
                    memcpy(dst, &a, sizeof a);
                    dst += sizeof a;
                } else {
                    struct qb_ghdr_sym s = {h->d16};
                    memcpy(dst, &s, sizeof s);
                    dst += sizeof s;
                }
                for (int64_t b = 0; b < J->group / QB_SUB; b++) {
                    pack_sub(J->codes + r * n + g * J->group + b * QB_SUB, J->g.bits, dst);
                    dst += sb;
                }
            }
        }
    }
    *out = t;
    return 0;
}

/* Headers fixed before the column loop (int8 row scales; act-order's static groups), the
 * row tiles in parallel, then the packing. J->w, u (NULL: no error propagation), perm set. */
static int run_job(struct job *J, enum qb_fmt fmt, struct qb_qtensor *out)
{
    const int64_t rows = J->rows, cols = J->n;
    int64_t bad_row = -1;
    int rc = 0;
    /* headers fixed before the column loop: int8 row scales, static groups for act-order */
    for (int64_t r = 0; r < rows && bad_row < 0; r++) {
        const float *wr = J->w + r * cols;
        if (J->g.is_i8) {
            float amax = 0;
            for (int64_t i = 0; i < cols; i++)
                amax = fabsf(wr[i]) > amax ? fabsf(wr[i]) : amax;
            J->hdr[r].d = amax / 127.0f;
        } else if (J->act_order) {
            for (int64_t g = 0; g < J->n_groups; g++)
                if (group_header(&J->g, wr + g * J->group, J->cw ? J->cw + g * J->group : NULL,
                                 J->hw ? J->hw + g * J->group * (J->n + 1) : NULL, J->n,
                                 (int)J->group, J->clip, &J->hdr[r * J->n_groups + g]) < 0)
                    bad_row = r;
        }
    }
    if (bad_row < 0) {
        const int64_t n_tiles = (rows + TILE - 1) / TILE;
#pragma omp parallel
        {
            float *wt = malloc((size_t)TILE * (size_t)cols * sizeof *wt);
            float *err = malloc((size_t)TILE * BLOCK * sizeof *err);
#pragma omp for schedule(dynamic, 1)
            for (int64_t t = 0; t < n_tiles; t++) {
                int64_t r0 = t * TILE, nr = rows - r0 < TILE ? rows - r0 : TILE;
                int bad = !wt || !err ? -2 : run_tile(J, r0, nr, wt, err);
                if (bad) {
#pragma omp critical(qb_gptq_fail)
                    if (bad_row < 0 || r0 < bad_row) {
                        bad_row = r0;
                        rc = bad == -2 ? QB_ENOMEM : QB_ERANGE;
                    }
                }
            }
            free(wt);
            free(err);
        }
    }
    if (bad_row >= 0)
        return rc == QB_ENOMEM ? qb_err(QB_ENOMEM, "gptq: out of memory")
                               : qb_err(QB_ERANGE,
                                        "cannot quantize to '%s': rows from %lld have "
                                        "weights too large for f16 group headers",
                                        qb_fmt_name(fmt), (long long)bad_row);
    return pack(J, fmt, out);
}

/* ---- driver ---------------------------------------------------------------------------- */

int qb_gptq_quantize(const float *w, int64_t rows, int64_t cols, const double *h, enum qb_fmt fmt,
                     int group, int asym, const struct qb_gptq_opts *opts, struct qb_qtensor *out)
{
    struct qb_gptq_opts o = QB_GPTQ_OPTS_INIT;
    struct job J = {0};
    float *wc = NULL, *u = NULL, *cw = NULL;
    double *hd = NULL, mean = 0, damp;
    int64_t *perm = NULL;
    size_t nn, nw;
    int rc = 0, bits;

    if (out)
        memset(out, 0, sizeof *out);
    if (!w || !h || !out)
        return qb_err(QB_EINVAL, "gptq: no %s given", !w ? "weights" : !h ? "Hessian" : "output");
    if (opts)
        o = *opts;
    if (o.damp <= 0)
        o.damp = 0.01;
    if (fmt != QB_FMT_I8 && fmt != QB_FMT_I4 && fmt != QB_FMT_I3 && fmt != QB_FMT_I2)
        return qb_err(QB_EINVAL, "gptq quantizes to int8/int4/int3/int2, not '%s'",
                      qb_fmt_name(fmt));
    if (rows <= 0 || cols <= 0 || qb_mul_size((size_t)rows, (size_t)cols, &nw) < 0 ||
        qb_mul_size((size_t)cols, (size_t)cols, &nn) < 0 || nn > SIZE_MAX / 8 || nw > SIZE_MAX / 8)
        return qb_err(QB_EINVAL, "gptq: cannot quantize a (%lld, %lld) matrix", (long long)rows,
                      (long long)cols);
    bits = qb_fmt_bits(fmt);
    if (fmt != QB_FMT_I8) {
        if (group != 32 && group != 64 && group != 128)
            return qb_err(QB_EINVAL, "group size %d for '%s' weights: must be 32, 64 or 128", group,
                          qb_fmt_name(fmt));
        if (cols % group)
            return qb_err(QB_EINVAL, "%lld columns do not split into groups of %d for '%s' weights",
                          (long long)cols, group, qb_fmt_name(fmt));
    }
    if (o.clip < 0)
        o.clip = fmt == QB_FMT_I3 || fmt == QB_FMT_I2;
    J.rows = rows;
    J.n = cols;
    J.group = fmt == QB_FMT_I8 ? cols : group;
    J.n_groups = cols / J.group;
    J.g = (struct grid){bits, fmt == QB_FMT_I8 ? 0 : asym != 0, fmt == QB_FMT_I8,
                        (float)((1 << bits) - 1), (float)(1 << (bits - 1))};
    J.clip = o.clip;
    J.act_order = o.act_order;

    if (!(wc = malloc(nw * sizeof *wc)) || !(hd = malloc(nn * sizeof *hd)) ||
        !(u = malloc(nn * sizeof *u)) || !(perm = malloc((size_t)cols * sizeof *perm)) ||
        !(J.codes = malloc(nw)) ||
        !(J.hdr = calloc((size_t)rows * (size_t)J.n_groups, sizeof *J.hdr))) {
        rc = qb_err(QB_ENOMEM, "gptq: out of memory for a (%lld, %lld) matrix", (long long)rows,
                    (long long)cols);
        goto out;
    }
    for (size_t i = 0; i < nw; i++)
        if (!isfinite(w[i])) {
            rc = qb_err(QB_ERANGE, "cannot quantize to '%s': row %lld has a non-finite weight",
                        qb_fmt_name(fmt), (long long)(i / (size_t)cols));
            goto out;
        }
    for (size_t i = 0; i < nn; i++)
        if (!isfinite(h[i])) {
            rc = qb_err(QB_ERANGE, "gptq: the Hessian has a non-finite entry");
            goto out;
        }
    memcpy(wc, w, nw * sizeof *wc);
    memcpy(hd, h, nn * sizeof *hd);
    /* dead inputs: always zero in the calibration data, so their weights do not matter */
    for (int64_t i = 0; i < cols; i++)
        if (hd[i * cols + i] == 0) {
            hd[i * cols + i] = 1;
            for (int64_t r = 0; r < rows; r++)
                wc[r * cols + i] = 0;
        }
    for (int64_t i = 0; i < cols; i++)
        mean += hd[i * cols + i];
    mean /= (double)cols;

    if (o.act_order) {
        double *hp = malloc(nn * sizeof *hp);
        if (!hp) {
            rc = qb_err(QB_ENOMEM, "gptq: out of memory");
            goto out;
        }
        qb_gptq_act_order(hd, cols, perm);
        for (int64_t i = 0; i < cols; i++)
            for (int64_t j = 0; j < cols; j++)
                hp[i * cols + j] = hd[perm[i] * cols + perm[j]];
        free(hd);
        hd = hp;
    } else {
        for (int64_t i = 0; i < cols; i++)
            perm[i] = i;
    }

    /* damping: a larger one only when H is numerically indefinite */
    for (damp = o.damp;; damp *= 10) {
        rc = qb_gptq_hinv_chol(hd, cols, damp * mean, u);
        if (rc != QB_ERANGE || damp >= 1)
            break;
    }
    if (rc < 0)
        goto out;

    /* the clipping search weighs each column's error by 1 / U_ii^2, the loss GPTQ attributes
     * to rounding that column (the OBS error (w - q)^2 / [H^-1]_ii with H^-1 factored) */
    if (o.clip_weighted && J.clip) {
        if (!(cw = malloc((size_t)cols * sizeof *cw))) {
            rc = qb_err(QB_ENOMEM, "gptq: out of memory");
            goto out;
        }
        for (int64_t i = 0; i < cols; i++)
            cw[perm[i]] = 1.0f / (u[i * cols + i] * u[i * cols + i]);
        J.cw = cw;
    }
    J.w = wc;
    J.u = u;
    J.perm = perm;
    rc = run_job(&J, fmt, out);
out:
    free(wc);
    free(hd);
    free(u);
    free(perm);
    free(J.codes);
    free(J.hdr);
    free(cw);
    return rc;
}

int qb_quantize_weighted(const float *w, int64_t rows, int64_t cols, const float *col_weight,
                         const double *h, enum qb_fmt fmt, int group, int asym, int clip,
                         struct qb_qtensor *out)
{
    struct job J = {0};
    int64_t *perm = NULL;
    int rc;
    size_t nw;
    if (out)
        memset(out, 0, sizeof *out);
    if (!w || (!col_weight && !h) || !out)
        return qb_err(QB_EINVAL, "weighted quantization: missing argument");
    if ((fmt != QB_FMT_I4 && fmt != QB_FMT_I3 && fmt != QB_FMT_I2) ||
        (group != 32 && group != 64 && group != 128) || rows <= 0 || cols <= 0 || cols % group ||
        qb_mul_size((size_t)rows, (size_t)cols, &nw) < 0)
        return qb_err(QB_EINVAL, "weighted quantization: '%s' groups of %d over %lld columns",
                      qb_fmt_name(fmt), group, (long long)cols);
    for (size_t i = 0; i < nw; i++)
        if (!isfinite(w[i]))
            return qb_err(QB_ERANGE, "cannot quantize to '%s': row %lld has a non-finite weight",
                          qb_fmt_name(fmt), (long long)(i / (size_t)cols));
    const int bits = qb_fmt_bits(fmt);
    J.rows = rows;
    J.n = cols;
    J.group = group;
    J.n_groups = cols / group;
    J.g = (struct grid){bits, asym != 0, 0, (float)((1 << bits) - 1), (float)(1 << (bits - 1))};
    J.clip = clip < 0 ? fmt != QB_FMT_I4 : clip;
    J.w = w;
    J.cw = h ? NULL : col_weight;
    J.hw = h;
    if (!(perm = malloc((size_t)cols * sizeof *perm)) || !(J.codes = malloc(nw)) ||
        !(J.hdr = calloc((size_t)rows * (size_t)J.n_groups, sizeof *J.hdr))) {
        rc = qb_err(QB_ENOMEM, "out of memory for a (%lld, %lld) matrix", (long long)rows,
                    (long long)cols);
        goto out;
    }
    for (int64_t i = 0; i < cols; i++)
        perm[i] = i;
    J.perm = perm;
    rc = run_job(&J, fmt, out);
out:
    free(perm);
    free(J.codes);
    free(J.hdr);
    return rc;
}
