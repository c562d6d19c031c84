/* qtensor: sizes and names of the weight formats (see qtensor.h for the layouts). */
#include "kernels/qtensor.h"

#include <stdlib.h>

static const struct {
    const char *name;
    int bits;
} fmts[QB_FMT_COUNT] = {
    [QB_FMT_F32] = {"f32", 32},  [QB_FMT_F16] = {"f16", 16},  [QB_FMT_BF16] = {"bf16", 16},
    [QB_FMT_E4M3] = {"e4m3", 8}, [QB_FMT_E5M2] = {"e5m2", 8}, [QB_FMT_I8] = {"i8", 8},
    [QB_FMT_I4] = {"i4", 4},     [QB_FMT_I3] = {"i3", 3},     [QB_FMT_I2] = {"i2", 2},
};

int qb_fmt_bits(enum qb_fmt f)
{
    return (unsigned)f < QB_FMT_COUNT ? fmts[f].bits : 0;
}

const char *qb_fmt_name(enum qb_fmt f)
{
    return (unsigned)f < QB_FMT_COUNT ? fmts[f].name : "?";
}

size_t qb_fmt_row_bytes(enum qb_fmt f, int64_t cols, int group, int asym)
{
    size_t sub;
    switch (f) {
    case QB_FMT_I4: sub = QB_SUB_BYTES_I4; break;
    case QB_FMT_I3: sub = QB_SUB_BYTES_I3; break;
    case QB_FMT_I2: sub = QB_SUB_BYTES_I2; break;
    default: return (size_t)cols * (size_t)qb_fmt_bits(f) / 8;
    }
    if (group <= 0)
        return 0;
    /* per group: the header, then group/32 sub-blocks */
    return (size_t)(cols / group) *
           ((asym ? sizeof(struct qb_ghdr_asym) : sizeof(struct qb_ghdr_sym)) +
            (size_t)(group / QB_SUB) * sub);
}

size_t qb_qtensor_bytes(const struct qb_qtensor *t)
{
    size_t b = (size_t)t->rows * t->row_bytes;
    if (t->row_scale)
        b += (size_t)t->rows * sizeof(float);
    if (t->row_sum)
        b += (size_t)t->rows * sizeof(int32_t);
    return b;
}

double qb_qtensor_bpw(const struct qb_qtensor *t)
{
    double n = (double)t->rows * (double)(t->in_cols > 0 ? t->in_cols : t->cols);
    return n > 0 ? 8.0 * (double)qb_qtensor_bytes(t) / n : 0;
}

void qb_qtensor_release(struct qb_qtensor *t)
{
    free(t->owned);
    t->owned = NULL;
    t->data = NULL;
    t->row_scale = NULL;
    t->row_sum = NULL;
}
