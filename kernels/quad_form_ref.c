/* quad_form_ref: the scalar reference of gptq's r^T H r (dispatch.h, qb_quad_form_fn), the
 * oracle for kernels/x86/quad_form_{avx2,avx512}.c, which must return its double bit for bit:
 * the clipping searches of GPTQ and AWQ (kernels/gptq.c) compare these errors, so any
 * difference in the last bit could change which header a group gets.
 *
 * The order of the sums is the contract: the diagonal; the lower triangle's rows in blocks of
 * 8 columns into 8 partial sums (lane l takes columns j + l), each term (r_i * h_ij) * r_j,
 * no fused multiply-add; the columns past the last full block of 8 into one scalar sum; then
 * the 8 partial sums added in lane order, and diag + 2 * (low + tail). */
#include "kernels/dispatch.h"

double qb_quad_form_ref(const double *h, int64_t ld, const double *r, int n)
{
    double acc[8] = {0}, diag = 0, tail = 0, low = 0;
    for (int i = 0; i < n; i++) {
        const double *hr = h + i * ld, ri = r[i];
        int j = 0;
        for (; j + 8 <= i; j += 8)
            for (int l = 0; l < 8; l++)
                acc[l] += ri * hr[j + l] * r[j + l];
        for (; j < i; j++)
            tail += ri * hr[j] * r[j];
        diag += ri * hr[i] * ri;
    }
    for (int l = 0; l < 8; l++)
        low += acc[l];
    return diag + 2 * (low + tail);
}
