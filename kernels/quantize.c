/* quantize: round-to-nearest quantization of f32 weight matrices into every format of
 * qtensor.h, the per-group clipping search, and qb_dequantize_row, the reference decoder that
 * every kernel is tested against. The bytes written here must agree exactly with the layouts
 * in qtensor.h (kernels in kernels/qmatmul_*.c and kernels/x86/ read them), the fp8 codes with
 * qb_f32_to_e4m3 / qb_f32_to_e5m2 in fp8.h, and the f16/bf16 rounding with half.h.
 *
 * Choices (see quantize.h for the API):
 *   - Symmetric groups use the signed maximum, as ggml's Q4_0 does: d = v / -2^(b-1) where v is
 *     the weight of largest magnitude, so v is exact at code 0 and the other side reaches
 *     (2^(b-1) - 1) |d|. Against d = max|w| / (2^(b-1) - 1) it leaves 22% (4 bits), 40%
 *     (3 bits) and 65% (2 bits) less squared error on Gaussian weights, and less on Laplace and
 *     Student-t weights too; the price is that a weight of the other sign beyond 7.5 |d| clamps
 *     (error up to |d| instead of |d|/2).
 *   - Asymmetric groups: m = min, d = (max - m) / (2^b - 1).
 *   - Group headers are rounded to f16 first and the codes computed with the rounded d and m,
 *     so dequantization reproduces exactly what was optimised. Codes are
 *     round-half-even((w - m) * (1/d)).
 *   - Clipping search (I3/I2 by default): symmetric groups try d * f for f = 1, 0.975, ..., 0.5
 *     (21 factors); asymmetric groups move min up and max down independently by multiples of
 *     range/40 (together by at most half the range), by coordinate descent: min, then max,
 *     then min again if max moved. Each candidate is scored by the group's squared
 *     reconstruction error with the f16 headers; f = 1 (no clipping) is a candidate and only a
 *     strictly smaller error replaces it, so clipping never makes a group worse.
 *   - Weights must be finite and fit the format (f16 overflow, f16 group headers): otherwise
 *     QB_ERANGE naming the row.
 * Rows are independent, so OpenMP splits them. */
#include "kernels/quantize.h"

#include "kernels/base/bigalloc.h"
#include "kernels/base/err.h"
#include "kernels/fp8.h"
#include "kernels/half.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ALIGN 64
#define CLIP_STEPS 20 /* factors 1 - k/40, k = 0..20 */

/* Why a row failed (returned by the row quantizers). */
enum { ROW_OK = 0, ROW_NONFINITE = 1, ROW_OVERFLOW = 2 };

/* Round half to even for |x| < 2^22 (the caller clamps first): adding 1.5 * 2^23 leaves no
 * fraction bits, so the FPU's default rounding does the work and the loop vectorizes. */
static inline float rne(float x)
{
    return (x + 12582912.0f) - 12582912.0f;
}

static inline float clampf(float x, float lo, float hi)
{
    x = x > lo ? x : lo;
    return x < hi ? x : hi;
}

static inline int is_group_fmt(enum qb_fmt f)
{
    return f == QB_FMT_I4 || f == QB_FMT_I3 || f == QB_FMT_I2;
}

static inline float f16_round(float x)
{
    return qb_f16_to_f32(qb_f32_to_f16(x));
}

/* Largest |w| of n finite weights; ROW_NONFINITE when one is inf or NaN. */
static int row_amax(const float *w, int64_t n, float *amax)
{
    float m = 0;
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        float a = fabsf(w[i]);
        bad |= !(a <= FLT_MAX); /* NaN fails every comparison */
        m = a > m ? a : m;
    }
    *amax = m;
    return bad ? ROW_NONFINITE : ROW_OK;
}

/* ---- fp8 ------------------------------------------------------------------------------- */

/* (cols) -> cols fp8 codes and one scale = max|w| / fmt max; a zero row gets scale 0. */
static int quant_row_fp8(const float *w, int64_t cols, int e5m2, uint8_t *q, float *scale)
{
    float amax, s;
    if (row_amax(w, cols, &amax))
        return ROW_NONFINITE;
    s = amax / (e5m2 ? QB_E5M2_MAX : QB_E4M3_MAX);
    *scale = s;
    if (s == 0) {
        memset(q, 0, (size_t)cols);
        return ROW_OK;
    }
    if (e5m2)
        for (int64_t i = 0; i < cols; i++)
            q[i] = qb_f32_to_e5m2(w[i] / s);
    else
        for (int64_t i = 0; i < cols; i++)
            q[i] = qb_f32_to_e4m3(w[i] / s);
    return ROW_OK;
}

/* ---- int8 ------------------------------------------------------------------------------ */

static int quant_row_i8(const float *w, int64_t cols, int8_t *q, float *scale, int32_t *sum)
{
    float amax, s;
    int32_t acc = 0;
    if (row_amax(w, cols, &amax))
        return ROW_NONFINITE;
    s = amax / 127.0f;
    *scale = s;
    if (s == 0) {
        memset(q, 0, (size_t)cols);
        *sum = 0;
        return ROW_OK;
    }
    for (int64_t i = 0; i < cols; i++) {
        float v = rne(clampf(w[i] / s, -127.0f, 127.0f));
        q[i] = (int8_t)v;
        acc += (int32_t)v;
    }
    *sum = acc;
    return ROW_OK;
}

/* ---- group-wise int4/3/2 --------------------------------------------------------------- */

/* A group header in f32 (the values of its f16 fields) and in bits. */
struct ghdr {
    float d, m; /* m unused for symmetric groups */
    uint16_t d16, m16;
};

static struct ghdr ghdr_make(float d, float m, int asym)
{
    struct ghdr h = {0};
    h.d16 = qb_f32_to_f16(d);
    h.d = qb_f16_to_f32(h.d16);
    if (asym) {
        h.m16 = qb_f32_to_f16(m);
        h.m = qb_f16_to_f32(h.m16);
    }
    return h;
}

/* The code of one weight for header h (id = 1/d, or 0 when d is 0): round((w - m) / d) in
 * [0, qmax] asymmetric; round(w / d) in [-z, z - 1] symmetric, stored as that + z. */
static inline float code_asym(float w, float m, float id, float qmax)
{
    return rne(clampf((w - m) * id, 0.0f, qmax));
}

static inline float code_sym(float w, float id, float z)
{
    return rne(clampf(w * id, -z, z - 1.0f));
}

static inline float inv_d(const struct ghdr *h)
{
    return h->d != 0 ? 1.0f / h->d : 0.0f;
}

/* Squared error header h leaves on one group of n weights (n a multiple of 32), with the
 * dequantizer's own expressions: d * q + m asymmetric, d * (q - z) symmetric. Eight partial
 * sums in a fixed order so the compiler vectorizes it: the clipping search spends its time
 * here. */
static double group_err(const float *w, int n, const struct ghdr *h, int asym, int bits)
{
    const float qmax = (float)((1 << bits) - 1), z = (float)(1 << (bits - 1)), id = inv_d(h);
    const float d = h->d, m = h->m;
    float acc[8] = {0};
    double err = 0;
    if (asym) {
        for (int i = 0; i < n; i += 8)
            for (int l = 0; l < 8; l++) {
                float r = w[i + l] - (d * code_asym(w[i + l], m, id, qmax) + m);
                acc[l] += r * r;
            }
    } else {
        for (int i = 0; i < n; i += 8)
            for (int l = 0; l < 8; l++) {
                float r = w[i + l] - d * code_sym(w[i + l], id, z);
                acc[l] += r * r;
            }
    }
    for (int l = 0; l < 8; l++)
        err += acc[l];
    return err;
}

/* The codes, 0 .. 2^bits - 1, of one group for header h. */
static void group_codes(const float *w, int n, const struct ghdr *h, int asym, int bits, uint8_t *q)
{
    const float qmax = (float)((1 << bits) - 1), z = (float)(1 << (bits - 1)), id = inv_d(h);
    for (int i = 0; i < n; i++)
        q[i] = (uint8_t)(asym ? code_asym(w[i], h->m, id, qmax) : code_sym(w[i], id, z) + z);
}

/* Asymmetric header for the range [lo, hi]: m first, then d from the rounded m, so the top
 * of the range stays reachable. */
static struct ghdr asym_hdr(float lo, float hi, int bits)
{
    float m = f16_round(lo), d = (hi - m) / (float)((1 << bits) - 1);
    return ghdr_make(d > 0 ? d : 0, lo, 1);
}

/* Chooses the header of one group (n weights): RTN, then the clipping search if asked. */
static int group_header(const float *w, int n, int asym, int bits, int clip, struct ghdr *out)
{
    struct ghdr best;
    double best_err;

    if (!asym) {
        float vmax = 0, amax = 0;
        for (int i = 0; i < n; i++)
            if (fabsf(w[i]) > amax) {
                amax = fabsf(w[i]);
                vmax = w[i];
            }
        float d = amax > 0 ? vmax / -(float)(1 << (bits - 1)) : 0.0f;
        best = ghdr_make(d, 0, 0);
        if (isinf(best.d))
            return ROW_OVERFLOW;
        if (!clip || amax == 0) {
            *out = best;
            return ROW_OK;
        }
        best_err = group_err(w, n, &best, 0, bits);
        for (int k = 1; k <= CLIP_STEPS; k++) {
            struct ghdr h = ghdr_make(d * (1.0f - (float)k / (2 * CLIP_STEPS)), 0, 0);
            double e = group_err(w, n, &h, 0, bits);
            if (e < best_err) {
                best_err = e;
                best = h;
            }
        }
        *out = best;
        return ROW_OK;
    }

    float mn = w[0], mx = w[0];
    for (int i = 1; i < n; i++) {
        mn = w[i] < mn ? w[i] : mn;
        mx = w[i] > mx ? w[i] : mx;
    }
    best = asym_hdr(mn, mx, bits);
    if (isinf(best.d) || isinf(best.m))
        return ROW_OVERFLOW;
    if (!clip || mx == mn) {
        *out = best;
        return ROW_OK;
    }
    /* coordinate descent over (k_lo, k_hi): min moves up k_lo * range/40, max down k_hi *
     * range/40, k_lo + k_hi <= 20; passes scan min, max, then min again if max moved */
    {
        const float step = (mx - mn) / (2 * CLIP_STEPS);
        int k_lo = 0, k_hi = 0;
        best_err = group_err(w, n, &best, 1, bits);
        for (int pass = 0; pass < 3; pass++) {
            int moved = 0;
            for (int k = 0; k <= CLIP_STEPS; k++) {
                int lo = pass == 1 ? k_lo : k, hi = pass == 1 ? k : k_hi;
                if (lo + hi > CLIP_STEPS || (lo == k_lo && hi == k_hi))
                    continue;
                struct ghdr h = asym_hdr(mn + (float)lo * step, mx - (float)hi * step, bits);
                double e = group_err(w, n, &h, 1, bits);
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
    }
    *out = best;
    return ROW_OK;
}

/* Packs 32 codes into one sub-block as qtensor.h lays it out. */
static void pack_sub(const uint8_t *q, int bits, uint8_t *dst)
{
    if (bits == 4) {
        for (int i = 0; i < 16; i++)
            dst[i] = (uint8_t)(q[i] | q[i + 16] << 4);
    } else {
        /* I2, and the low 2 bits of I3: byte i holds codes i, i+8, i+16, i+24 */
        for (int i = 0; i < 8; i++)
            dst[i] = (uint8_t)((q[i] & 3) | (q[i + 8] & 3) << 2 | (q[i + 16] & 3) << 4 |
                               (q[i + 24] & 3) << 6);
        if (bits == 3) {
            uint32_t h = 0;
            for (int j = 0; j < 32; j++)
                h |= (uint32_t)((q[j] >> 2) & 1) << j;
            for (int i = 0; i < 4; i++)
                dst[8 + i] = (uint8_t)(h >> (8 * i)); /* little-endian whatever the host */
        }
    }
}

static size_t sub_bytes(int bits)
{
    return bits == 4 ? QB_SUB_BYTES_I4 : bits == 3 ? QB_SUB_BYTES_I3 : QB_SUB_BYTES_I2;
}

static int quant_row_group(const float *w, int64_t cols, int group, int asym, int bits, int clip,
                           uint8_t *dst)
{
    uint8_t q[128];
    float amax;
    const size_t hb = asym ? sizeof(struct qb_ghdr_asym) : sizeof(struct qb_ghdr_sym);
    if (row_amax(w, cols, &amax))
        return ROW_NONFINITE;
    for (int64_t g = 0; g < cols / group; g++) {
        const float *wg = w + g * group;
        struct ghdr h;
        int rc = group_header(wg, group, asym, bits, clip, &h);
        if (rc)
            return rc;
        group_codes(wg, group, &h, asym, bits, q);
        if (asym) {
            struct qb_ghdr_asym a = {h.d16, h.m16};
            memcpy(dst, &a, sizeof a);
        } else {
            struct qb_ghdr_sym s = {h.d16};
            memcpy(dst, &s, sizeof s);
        }
        dst += hb;
        for (int b = 0; b < group / QB_SUB; b++) {
            pack_sub(q + b * QB_SUB, bits, dst);
            dst += sub_bytes(bits);
        }
    }
    return ROW_OK;
}

/* ---- float formats --------------------------------------------------------------------- */

static int quant_row_half(const float *w, int64_t cols, int bf16, uint16_t *h)
{
    float amax;
    int bad = 0;
    if (row_amax(w, cols, &amax))
        return ROW_NONFINITE;
    for (int64_t i = 0; i < cols; i++) {
        uint16_t v = bf16 ? qb_f32_to_bf16(w[i]) : qb_f32_to_f16(w[i]);
        /* exponent all ones: a finite weight overflowed to inf */
        bad |= bf16 ? (v & 0x7f80) == 0x7f80 : (v & 0x7c00) == 0x7c00;
        h[i] = v;
    }
    return bad ? ROW_OVERFLOW : ROW_OK;
}

static int quant_row_f32(const float *w, int64_t cols, float *dst)
{
    float amax;
    if (row_amax(w, cols, &amax))
        return ROW_NONFINITE;
    memcpy(dst, w, (size_t)cols * sizeof(float));
    return ROW_OK;
}

/* ---- driver ---------------------------------------------------------------------------- */

/* Row r of t, written through the tensor's own block: data (rows * row_bytes), then the
 * row scales and sums where the format has them (t's pointers are const for its readers). */
static int quant_row(const struct qb_qtensor *t, uint8_t *data, float *scale, int32_t *sum,
                     const float *w, int clip, int64_t r)
{
    uint8_t *dst = data + (size_t)r * t->row_bytes;
    switch (t->fmt) {
    case QB_FMT_F32: return quant_row_f32(w, t->cols, (float *)dst);
    case QB_FMT_F16: return quant_row_half(w, t->cols, 0, (uint16_t *)dst);
    case QB_FMT_BF16: return quant_row_half(w, t->cols, 1, (uint16_t *)dst);
    case QB_FMT_E4M3: return quant_row_fp8(w, t->cols, 0, dst, &scale[r]);
    case QB_FMT_E5M2: return quant_row_fp8(w, t->cols, 1, dst, &scale[r]);
    case QB_FMT_I8: return quant_row_i8(w, t->cols, (int8_t *)dst, &scale[r], &sum[r]);
    case QB_FMT_I4:
    case QB_FMT_I3:
    case QB_FMT_I2:
        return quant_row_group(w, t->cols, t->group, t->asym, qb_fmt_bits(t->fmt), clip, dst);
    default: return ROW_OK;
    }
}

static size_t align_up(size_t n)
{
    return (n + ALIGN - 1) / ALIGN * ALIGN;
}

int qb_quantize(const float *w, int64_t rows, int64_t cols, enum qb_fmt fmt, int group, int asym,
                const struct qb_quant_opts *opts, struct qb_qtensor *out)
{
    struct qb_qtensor t = {0};
    size_t n, in_bytes, data_bytes, off_scale = 0, off_sum = 0, total;
    int clip, has_scale, has_sum, par, bad_rc = 0;
    int64_t bad_row = -1;
    void *mem = NULL;
    float *scale;
    int32_t *sum;

    if (out)
        memset(out, 0, sizeof *out);
    if (!w || !out)
        return qb_err(QB_EINVAL, "quantize: no %s given", !w ? "weights" : "output tensor");
    if ((unsigned)fmt >= QB_FMT_COUNT)
        return qb_err(QB_EINVAL, "quantize: unknown weight format %d", (int)fmt);
    if (rows <= 0 || cols <= 0)
        return qb_err(QB_EINVAL,
                      "cannot quantize a (%lld, %lld) matrix to '%s': rows and columns "
                      "must be positive",
                      (long long)rows, (long long)cols, qb_fmt_name(fmt));
    /* with the input under SIZE_MAX / 4 bytes nothing below can overflow: packed rows are
     * never larger than the f32 input, and scales and sums take 8 bytes per row */
    if (qb_mul_size((size_t)rows, (size_t)cols, &n) < 0 ||
        qb_mul_size(n, sizeof(float), &in_bytes) < 0 || in_bytes > SIZE_MAX / 4 ||
        cols > INT32_MAX / 127)
        return qb_err(QB_EINVAL, "cannot quantize a (%lld, %lld) matrix to '%s': too large",
                      (long long)rows, (long long)cols, qb_fmt_name(fmt));
    clip = opts ? opts->clip : -1;
    if (clip < -1 || clip > 1)
        return qb_err(QB_EINVAL, "quantize: clip option %d is not -1, 0 or 1", clip);
    if (is_group_fmt(fmt)) {
        if (group != 32 && group != 64 && group != 128)
            return qb_err(QB_EINVAL, "group size %d for '%s' weights: must be 32, 64 or 128", group,
                          qb_fmt_name(fmt));
        if (cols % group)
            return qb_err(QB_EINVAL, "%lld columns do not split into groups of %d for '%s' weights",
                          (long long)cols, group, qb_fmt_name(fmt));
        if (clip < 0)
            clip = fmt != QB_FMT_I4;
        t.group = group;
        t.asym = asym != 0;
    } else {
        clip = 0; /* group and asym mean nothing here */
    }
    t.fmt = fmt;
    t.rows = rows;
    t.cols = cols;
    t.row_bytes = qb_fmt_row_bytes(fmt, cols, t.group, t.asym);

    /* one block: packed rows (64-byte aligned), then row scales, then row sums */
    has_scale = fmt == QB_FMT_E4M3 || fmt == QB_FMT_E5M2 || fmt == QB_FMT_I8;
    has_sum = fmt == QB_FMT_I8;
    data_bytes = (size_t)rows * t.row_bytes;
    total = align_up(data_bytes);
    off_scale = total;
    if (has_scale)
        total = align_up(total + (size_t)rows * sizeof(float));
    off_sum = total;
    if (has_sum)
        total = align_up(total + (size_t)rows * sizeof(int32_t));
    if (!(mem = qb_alloc_big(ALIGN, total)))
        return qb_err(QB_ENOMEM, "out of memory for a (%lld, %lld) '%s' tensor (%zu bytes)",
                      (long long)rows, (long long)cols, qb_fmt_name(fmt), total);
    t.owned = mem;
    t.data = mem;
    scale = has_scale ? (float *)((char *)mem + off_scale) : NULL;
    sum = has_sum ? (int32_t *)((char *)mem + off_sum) : NULL;
    t.row_scale = scale;
    t.row_sum = sum;

    /* rows in parallel, one thread for small work; dynamic chunks because the machine is shared
     * and the clipping search makes rows uneven. The first failing row (lowest index) is
     * reported. */
    par = n >= ((size_t)1 << 16) && rows > 1;
#pragma omp parallel for schedule(dynamic, 8) if (par)
    for (int64_t r = 0; r < rows; r++) {
        int rc = quant_row(&t, mem, scale, sum, w + r * cols, clip, r);
        if (rc) {
#pragma omp critical(qb_quantize_fail)
            if (bad_row < 0 || r < bad_row) {
                bad_row = r;
                bad_rc = rc;
            }
        }
    }
    if (bad_row >= 0) {
        const char *why = bad_rc == ROW_NONFINITE ? "has a non-finite weight"
                          : is_group_fmt(fmt)     ? "has weights too large for f16 group headers"
                                                  : "has weights that overflow the format";
        qb_qtensor_release(&t);
        return qb_err(QB_ERANGE, "cannot quantize to '%s': row %lld %s", qb_fmt_name(fmt),
                      (long long)bad_row, why);
    }
    *out = t;
    return 0;
}

void qb_qtensor_wrap_f32(const float *w, int64_t rows, int64_t cols, struct qb_qtensor *out)
{
    memset(out, 0, sizeof *out);
    out->fmt = QB_FMT_F32;
    out->rows = rows;
    out->cols = cols;
    out->row_bytes = (size_t)cols * sizeof(float);
    out->data = w;
}

/* ---- reference decoder ----------------------------------------------------------------- */

/* Code j (0..31) of a sub-block, straight from the layout in qtensor.h. */
static int sub_code(const uint8_t *sb, int bits, int j)
{
    switch (bits) {
    case 4: return j < 16 ? sb[j] & 15 : sb[j - 16] >> 4;
    case 2: return (sb[j % 8] >> (2 * (j / 8))) & 3;
    default: {
        int lo = (sb[j % 8] >> (2 * (j / 8))) & 3;
        int hi = (sb[8 + j / 8] >> (j % 8)) & 1; /* bit j of the little-endian u32 */
        return lo | hi << 2;
    }
    }
}

void qb_dequantize_row(const struct qb_qtensor *t, int64_t row, float *out)
{
    const uint8_t *p;
    if (!t || !out)
        return;
    if (!t->data || row < 0 || row >= t->rows || (unsigned)t->fmt >= QB_FMT_COUNT ||
        (is_group_fmt(t->fmt) && (t->group < QB_SUB || t->group % QB_SUB || t->cols % t->group))) {
        for (int64_t i = 0; i < t->cols; i++)
            out[i] = NAN; /* misuse shows up in any comparison */
        return;
    }
    p = (const uint8_t *)t->data + (size_t)row * t->row_bytes;
    switch (t->fmt) {
    case QB_FMT_F32: memcpy(out, p, (size_t)t->cols * sizeof(float)); break;
    case QB_FMT_F16:
    case QB_FMT_BF16:
        for (int64_t i = 0; i < t->cols; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            out[i] = t->fmt == QB_FMT_F16 ? qb_f16_to_f32(h) : qb_bf16_to_f32(h);
        }
        break;
    case QB_FMT_E4M3:
        for (int64_t i = 0; i < t->cols; i++)
            out[i] = t->row_scale[row] * qb_e4m3_to_f32(p[i]);
        break;
    case QB_FMT_E5M2:
        for (int64_t i = 0; i < t->cols; i++)
            out[i] = t->row_scale[row] * qb_e5m2_to_f32(p[i]);
        break;
    case QB_FMT_I8:
        for (int64_t i = 0; i < t->cols; i++)
            out[i] = t->row_scale[row] * (float)(int8_t)p[i];
        break;
    case QB_FMT_I4:
    case QB_FMT_I3:
    case QB_FMT_I2: {
        const int bits = qb_fmt_bits(t->fmt), z = 1 << (bits - 1);
        for (int64_t g = 0; g < t->cols / t->group; g++) {
            float d, m = 0;
            if (t->asym) {
                struct qb_ghdr_asym h;
                memcpy(&h, p, sizeof h);
                d = qb_f16_to_f32(h.d);
                m = qb_f16_to_f32(h.m);
                p += sizeof h;
            } else {
                struct qb_ghdr_sym h;
                memcpy(&h, p, sizeof h);
                d = qb_f16_to_f32(h.d);
                p += sizeof h;
            }
            for (int b = 0; b < t->group / QB_SUB; b++) {
                float *o = out + g * t->group + b * QB_SUB;
                for (int j = 0; j < QB_SUB; j++) {
                    int q = sub_code(p, bits, j);
                    o[j] = t->asym ? d * (float)q + m : d * (float)(q - z);
                }
                p += sub_bytes(bits);
            }
        }
        break;
    }
    default: break;
    }
}
