/* attend: the scalar reference of the attention kernel (see attend.h for the summation
 * order every variant follows) and the choice of variant by instruction set. It is the
 * oracle for kernels/x86/attend_*.c and the fallback on CPUs without AVX2. */
#include "kernels/attend.h"

#include <math.h>
#include <string.h>

/* Cephes' expf: n = round(x / ln 2) by adding and subtracting 1.5 * 2^23, r = x - n ln 2 in
 * two steps (ln 2's head has 9 bits, so n * head is exact), a degree-6 polynomial for e^r on
 * [-ln 2 / 2, ln 2 / 2], then 2^n put into the exponent field. Each product is rounded, then
 * added (no FMA), so the AVX2 / AVX-512 twins (exp8, exp16) give the same bits. */
float qb_attend_exp(float x)
{
    const float magic = 12582912.0f; /* 1.5 * 2^23: its ulp is 1 */
    float t, n, r, p;
    uint32_t tb, eb;
    float two_n;

    if (!(x >= QB_ATTEND_EXP_MIN)) /* NaN too */
        return 0;
    t = x * 1.44269504088896341f + magic;
    n = t - magic;
    r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    memcpy(&tb, &t, sizeof tb);
    eb = (tb - 0x4b400000u + 127u) << 23; /* the low bits of t hold n */
    memcpy(&two_n, &eb, sizeof two_n);
    return p * two_n;
}

float qb_attend_softmax(float *s, int64_t len)
{
    float mx = -INFINITY, sum = 0;
    for (int64_t p = 0; p < len; p++)
        mx = s[p] > mx ? s[p] : mx;
    for (int64_t p = 0; p < len; p++) {
        s[p] = qb_attend_exp(s[p] - mx);
        sum += s[p];
    }
    return sum;
}

void qb_attend_ref(const float *q, const float *kt, int64_t ld, const float *vc, int64_t stride,
                   int64_t len, int64_t hd, float scale, float *s, float *out)
{
    const int64_t hd16 = hd - hd % 16, len4 = len - len % 4;
    float sum;

    for (int64_t p = 0; p < len; p++) {
        float d = 0;
        for (int64_t i = 0; i < hd; i++)
            d += q[i] * kt[i * ld + p];
        s[p] = d * scale;
    }
    sum = qb_attend_softmax(s, len);
    /* dimensions in blocks of 16: four partial sums over the positions (attend.h) */
    for (int64_t i = 0; i < hd16; i++) {
        float a[4] = {0, 0, 0, 0};
        int64_t p = 0;
        for (; p < len4; p += 4)
            for (int j = 0; j < 4; j++)
                a[j] += s[p + j] * vc[(p + j) * stride + i];
        for (; p < len; p++)
            a[0] += s[p] * vc[p * stride + i];
        out[i] = (a[0] + a[1] + a[2] + a[3]) / sum;
    }
    for (int64_t i = hd16; i < hd; i++) {
        float a = 0;
        for (int64_t p = 0; p < len; p++)
            a += s[p] * vc[p * stride + i];
        out[i] = a / sum;
    }
}

qb_attend_fn qb_attend_for(const char *isa)
{
#if defined(__x86_64__)
    if (isa && !strcmp(isa, "avx512"))
        return qb_attend_avx512;
    if (isa && !strcmp(isa, "avx2"))
        return qb_attend_avx2;
#else
    (void)isa;
#endif
    return qb_attend_ref;
}

qb_attend_heads_fn qb_attend_heads_for(const char *isa)
{
#if defined(__x86_64__)
    if (isa && !strcmp(isa, "avx512"))
        return qb_attend_heads_avx512;
#else
    (void)isa;
#endif
    return NULL;
}
