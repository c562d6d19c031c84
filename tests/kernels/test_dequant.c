/* test_dequant: the scalar F16/BF16/Q8_0/Q4_0 -> f32 conversions against blocks written by
 * hand from ggml's layout (ggml-common.h), at unaligned addresses too. */
#include "kernels/dequant.h"
#include "kernels/half.h"
#include "tests/check.h"

#include <string.h>

static void test_q8_0_block(void)
{
    unsigned char buf[1 + 2 * 34];
    float out[64];
    unsigned char *blk = buf + 1; /* odd address: the source need not be aligned */
    for (int b = 0; b < 2; b++) {
        uint16_t d = b ? 0xb400 : 0x3800; /* -0.25, 0.5 */
        memcpy(blk + 34 * b, &d, 2);
        for (int j = 0; j < 32; j++)
            blk[34 * b + 2 + j] = (unsigned char)(int8_t)(j * 8 - 128);
    }
    memset(out, 0, sizeof out);
    qb_dequant_q8_0(blk, out, 64);
    for (int j = 0; j < 32; j++) {
        CHECK(out[j] == 0.5f * (float)(j * 8 - 128));
        CHECK(out[32 + j] == -0.25f * (float)(j * 8 - 128));
    }
}

static void test_q4_0_block(void)
{
    unsigned char buf[3 + 18];
    float out[32];
    unsigned char *blk = buf + 3;
    uint16_t d = 0x3400; /* 0.25 */
    memcpy(blk, &d, 2);
    for (int j = 0; j < 16; j++)
        blk[2 + j] = (unsigned char)(j | ((15 - j) << 4)); /* low: element j, high: 16 + j */
    qb_dequant_q4_0(blk, out, 32);
    for (int j = 0; j < 16; j++) {
        CHECK(out[j] == 0.25f * (float)(j - 8));
        CHECK(out[16 + j] == 0.25f * (float)(15 - j - 8));
    }
}

/* A partial trailing block is neither read nor written. */
static void test_whole_blocks_only(void)
{
    unsigned char blk[34] = {0};
    float out[40];
    for (int i = 0; i < 40; i++)
        out[i] = 7.0f;
    qb_dequant_q8_0(blk, out, 40);
    CHECK(out[0] == 0.0f && out[31] == 0.0f && out[32] == 7.0f && out[39] == 7.0f);
}

static void test_f16_bf16(void)
{
    static const uint16_t h[] = {0x3c00, 0xc000, 0x0001, 0x7c00, 0x3555, 0x8000};
    static const float hf[] = {1.0f, -2.0f, 0x1p-24f, INFINITY, 0.333251953125f, -0.0f};
    static const uint16_t b[] = {0x3f80, 0xc040, 0x0001, 0xff80};
    static const float bf[] = {1.0f, -3.0f, 0x1p-133f, -INFINITY};
    unsigned char buf[1 + sizeof h];
    float out[6];
    memcpy(buf + 1, h, sizeof h);
    qb_dequant_f16(buf + 1, out, 6);
    for (int i = 0; i < 6; i++)
        CHECK(memcmp(&out[i], &hf[i], 4) == 0);
    memcpy(buf + 1, b, sizeof b);
    qb_dequant_bf16(buf + 1, out, 4);
    for (int i = 0; i < 4; i++)
        CHECK(memcmp(&out[i], &bf[i], 4) == 0);
}

int main(void)
{
    RUN(test_q8_0_block);
    RUN(test_q4_0_block);
    RUN(test_whole_blocks_only);
    RUN(test_f16_bf16);
    return check_summary();
}
