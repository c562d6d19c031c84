/* test_qspec: the config-spec grammar of qspec.h: every example parses to the config it names
 * and prints back unchanged, every valid config survives format -> parse -> format, and bad
 * specs are refused with one line that quotes them and lists the valid forms. */
#include "collector/model/qspec.h"

#include "kernels/base/err.h"
#include "tests/check.h"

#include <string.h>

#define N_OF(a) (int)(sizeof(a) / sizeof *(a))

static int parse_ok(const char *s, struct qb_qspec *q)
{
    int rc = qb_qspec_parse(s, q);
    if (rc < 0)
        fprintf(stderr, "  '%s': %s\n", s, qb_errmsg());
    return rc == 0;
}

static int same_base(const struct qb_qbase *a, const struct qb_qbase *b)
{
    return a->fmt == b->fmt && a->group == b->group && a->asym == b->asym && a->act == b->act;
}

static int same_spec(const struct qb_qspec *a, const struct qb_qspec *b)
{
    if (!same_base(&a->base, &b->base) || a->method != b->method ||
        a->n_overrides != b->n_overrides)
        return 0;
    for (int i = 0; i < a->n_overrides; i++)
        if (a->overrides[i].target != b->overrides[i].target ||
            !same_base(&a->overrides[i].base, &b->overrides[i].base))
            return 0;
    return 1;
}

/* The examples of qspec.h (and of the brief), each with the config it must name. */
static void test_examples(void)
{
    static const struct {
        const char *s;
        struct qb_qbase b;
        enum qb_method m;
    } ex[] = {
        {"f32", {QB_FMT_F32, 0, 0, QB_ACT_F32}, QB_METHOD_RTN},
        {"f16", {QB_FMT_F16, 0, 0, QB_ACT_F32}, QB_METHOD_RTN},
        {"bf16", {QB_FMT_BF16, 0, 0, QB_ACT_F32}, QB_METHOD_RTN},
        {"fp8", {QB_FMT_E4M3, 0, 0, QB_ACT_F32}, QB_METHOD_RTN},
        {"fp8-a8", {QB_FMT_E4M3, 0, 0, QB_ACT_FP8}, QB_METHOD_RTN},
        {"fp8-e5m2", {QB_FMT_E5M2, 0, 0, QB_ACT_F32}, QB_METHOD_RTN},
        {"w8", {QB_FMT_I8, 0, 0, QB_ACT_F32}, QB_METHOD_RTN},
        {"w8a8", {QB_FMT_I8, 0, 0, QB_ACT_I8}, QB_METHOD_RTN},
        {"w4g128", {QB_FMT_I4, 128, 1, QB_ACT_F32}, QB_METHOD_RTN},
        {"w4g32-sym", {QB_FMT_I4, 32, 0, QB_ACT_F32}, QB_METHOD_RTN},
        {"w4g128-a8", {QB_FMT_I4, 128, 1, QB_ACT_I8}, QB_METHOD_RTN},
        {"w4g64-sym-a8", {QB_FMT_I4, 64, 0, QB_ACT_I8}, QB_METHOD_RTN},
        {"w3g64", {QB_FMT_I3, 64, 1, QB_ACT_F32}, QB_METHOD_RTN},
        {"w3g32-sym-a8", {QB_FMT_I3, 32, 0, QB_ACT_I8}, QB_METHOD_RTN},
        {"w2g32", {QB_FMT_I2, 32, 1, QB_ACT_F32}, QB_METHOD_RTN},
        {"w2g128-sym", {QB_FMT_I2, 128, 0, QB_ACT_F32}, QB_METHOD_RTN},
        {"w4g128-gptq", {QB_FMT_I4, 128, 1, QB_ACT_F32}, QB_METHOD_GPTQ},
        {"w8a8-gptq", {QB_FMT_I8, 0, 0, QB_ACT_I8}, QB_METHOD_GPTQ},
        {"w4g128-awq", {QB_FMT_I4, 128, 1, QB_ACT_F32}, QB_METHOD_AWQ},
        {"w8-awq", {QB_FMT_I8, 0, 0, QB_ACT_F32}, QB_METHOD_AWQ},
        {"w8a8-smooth", {QB_FMT_I8, 0, 0, QB_ACT_I8}, QB_METHOD_SMOOTH},
        {"w4g128-a8-smooth", {QB_FMT_I4, 128, 1, QB_ACT_I8}, QB_METHOD_SMOOTH},
        {"fp8-a8-smooth", {QB_FMT_E4M3, 0, 0, QB_ACT_FP8}, QB_METHOD_SMOOTH},
    };
    for (int i = 0; i < N_OF(ex); i++) {
        struct qb_qspec q;
        char buf[QB_QSPEC_MAX];
        if (!parse_ok(ex[i].s, &q)) {
            CHECK(0);
            continue;
        }
        CHECK(same_base(&q.base, &ex[i].b));
        CHECK(q.method == ex[i].m && q.n_overrides == 0);
        qb_qspec_format(&q, buf, sizeof buf);
        if (strcmp(buf, ex[i].s)) {
            fprintf(stderr, "  '%s' printed as '%s'\n", ex[i].s, buf);
            CHECK(0);
        }
    }

    /* with overrides, printed in the order given */
    struct qb_qspec q;
    char buf[QB_QSPEC_MAX];
    CHECK(parse_ok("w4g128-gptq+output=w8", &q));
    CHECK(q.base.fmt == QB_FMT_I4 && q.base.group == 128 && q.method == QB_METHOD_GPTQ);
    CHECK(q.n_overrides == 1 && q.overrides[0].target == QB_TGT_OUTPUT);
    CHECK(q.overrides[0].base.fmt == QB_FMT_I8 && q.overrides[0].base.act == QB_ACT_F32);
    qb_qspec_format(&q, buf, sizeof buf);
    CHECK(strcmp(buf, "w4g128-gptq+output=w8") == 0);

    CHECK(parse_ok("w4g32-sym+embed=f16+down=w8a8+attn=fp8-a8", &q));
    CHECK(q.n_overrides == 3 && q.overrides[0].target == QB_TGT_EMBED &&
          q.overrides[1].target == QB_TGT_DOWN && q.overrides[2].target == QB_TGT_ATTN);
    CHECK(q.overrides[2].base.fmt == QB_FMT_E4M3 && q.overrides[2].base.act == QB_ACT_FP8);
    qb_qspec_format(&q, buf, sizeof buf);
    CHECK(strcmp(buf, "w4g32-sym+embed=f16+down=w8a8+attn=fp8-a8") == 0);
}

/* Accepted spellings that are not canonical print in the one canonical form. */
static void test_canonical_printing(void)
{
    static const char *const pairs[][2] = {
        {"w4g128-rtn", "w4g128"},
        {"f32-rtn", "f32"},
        {"w4g32-a8-sym", "w4g32-sym-a8"},
        {"w4g32-gptq-sym", "w4g32-sym-gptq"},
        {"w3g64-smooth-a8", "w3g64-a8-smooth"},
        {"fp8-smooth-a8", "fp8-a8-smooth"},
        {"w2g32-rtn+output=w8", "w2g32+output=w8"},
        {"w4g128+ffn=w4g32-a8-sym", "w4g128+ffn=w4g32-sym-a8"},
    };
    for (int i = 0; i < N_OF(pairs); i++) {
        struct qb_qspec q, q2;
        char buf[QB_QSPEC_MAX], buf2[QB_QSPEC_MAX];
        if (!parse_ok(pairs[i][0], &q)) {
            CHECK(0);
            continue;
        }
        qb_qspec_format(&q, buf, sizeof buf);
        if (strcmp(buf, pairs[i][1])) {
            fprintf(stderr, "  '%s' printed as '%s', not '%s'\n", pairs[i][0], buf, pairs[i][1]);
            CHECK(0);
        }
        CHECK(parse_ok(buf, &q2) && same_spec(&q, &q2));
        qb_qspec_format(&q2, buf2, sizeof buf2);
        CHECK(strcmp(buf, buf2) == 0);
    }
}

/* Every valid base. */
static int all_bases(struct qb_qbase *b)
{
    static const enum qb_fmt ints[] = {QB_FMT_I4, QB_FMT_I3, QB_FMT_I2};
    int n = 0;
    b[n++] = (struct qb_qbase){QB_FMT_F32, 0, 0, QB_ACT_F32};
    b[n++] = (struct qb_qbase){QB_FMT_F16, 0, 0, QB_ACT_F32};
    b[n++] = (struct qb_qbase){QB_FMT_BF16, 0, 0, QB_ACT_F32};
    b[n++] = (struct qb_qbase){QB_FMT_E4M3, 0, 0, QB_ACT_F32};
    b[n++] = (struct qb_qbase){QB_FMT_E4M3, 0, 0, QB_ACT_FP8};
    b[n++] = (struct qb_qbase){QB_FMT_E5M2, 0, 0, QB_ACT_F32};
    b[n++] = (struct qb_qbase){QB_FMT_I8, 0, 0, QB_ACT_F32};
    b[n++] = (struct qb_qbase){QB_FMT_I8, 0, 0, QB_ACT_I8};
    for (int f = 0; f < 3; f++)
        for (int g = 32; g <= 128; g *= 2)
            for (int asym = 0; asym < 2; asym++)
                for (int a8 = 0; a8 < 2; a8++)
                    b[n++] = (struct qb_qbase){ints[f], g, asym, a8 ? QB_ACT_I8 : QB_ACT_F32};
    return n;
}

static int method_fits(enum qb_method m, const struct qb_qbase *b)
{
    int is_int =
        b->fmt == QB_FMT_I8 || b->fmt == QB_FMT_I4 || b->fmt == QB_FMT_I3 || b->fmt == QB_FMT_I2;
    switch (m) {
    case QB_METHOD_GPTQ: return is_int;
    case QB_METHOD_AWQ: return is_int && b->act == QB_ACT_F32;
    case QB_METHOD_SMOOTH: return b->act != QB_ACT_F32;
    default: return 1;
    }
}

/* format -> parse gives the same config back, and printing it again gives the same name. */
static int round_trip(const struct qb_qspec *x)
{
    struct qb_qspec y;
    char a[QB_QSPEC_MAX], b[QB_QSPEC_MAX];
    qb_qspec_format(x, a, sizeof a);
    if (qb_qspec_parse(a, &y) < 0) {
        fprintf(stderr, "  '%s' does not parse: %s\n", a, qb_errmsg());
        return 0;
    }
    qb_qspec_format(&y, b, sizeof b);
    if (!same_spec(x, &y) || strcmp(a, b)) {
        fprintf(stderr, "  '%s' came back as '%s'\n", a, b);
        return 0;
    }
    return 1;
}

static void test_round_trips(void)
{
    struct qb_qbase bases[64];
    int nb = all_bases(bases), n = 0, bad = 0, rejected_method = 0, unfit = 0;
    CHECK(nb == 44);
    for (int i = 0; i < nb; i++)
        for (int m = QB_METHOD_RTN; m <= QB_METHOD_SMOOTH; m++) {
            struct qb_qspec x = {.base = bases[i], .method = (enum qb_method)m};
            char s[QB_QSPEC_MAX];
            if (!method_fits(x.method, &x.base)) {
                /* the invalid pairs are refused, naming the method */
                struct qb_qspec y;
                qb_qspec_format(&x, s, sizeof s);
                unfit++;
                rejected_method += qb_qspec_parse(s, &y) == QB_EINVAL && strstr(qb_errmsg(), s);
                continue;
            }
            bad += !round_trip(&x);
            n++;
            /* one override of every target with every base */
            for (int t = 0; t < QB_TGT_COUNT; t++)
                for (int j = 0; j < nb; j++) {
                    x.n_overrides = 1;
                    x.overrides[0].target = (enum qb_target)t;
                    x.overrides[0].base = bases[j];
                    bad += !round_trip(&x);
                    n++;
                }
            /* two overrides: every ordered pair of distinct targets */
            for (int t = 0; t < QB_TGT_COUNT; t++)
                for (int u = 0; u < QB_TGT_COUNT; u++) {
                    if (t == u)
                        continue;
                    x.n_overrides = 2;
                    x.overrides[0].target = (enum qb_target)t;
                    x.overrides[0].base = bases[(i + t) % nb];
                    x.overrides[1].target = (enum qb_target)u;
                    x.overrides[1].base = bases[(i + u * 7) % nb];
                    bad += !round_trip(&x);
                    n++;
                }
        }
    CHECK(bad == 0);
    CHECK(unfit == 55 && rejected_method == unfit); /* 121 valid (base, method) pairs */
    CHECK(n > 50000);

    /* eight overrides, as many as fit */
    {
        struct qb_qspec x = {.base = {QB_FMT_I4, 128, 1, QB_ACT_F32}, .n_overrides = 8};
        for (int i = 0; i < 8; i++) {
            x.overrides[i].target = (enum qb_target)(QB_TGT_Q + (i % 7));
            x.overrides[i].base = (struct qb_qbase){QB_FMT_I8, 0, 0, QB_ACT_F32};
        }
        x.overrides[7].target = QB_TGT_OUTPUT;
        CHECK(round_trip(&x));
    }
}

static void expect_bad(const char *s, const char *needle)
{
    struct qb_qspec q;
    char quoted[256];
    const char *msg;
    memset(&q, 0x5a, sizeof q);
    CHECK(qb_qspec_parse(s, &q) == QB_EINVAL);
    msg = qb_errmsg();
    snprintf(quoted, sizeof quoted, "'%s'", s);
    if (!strstr(msg, quoted) || !strstr(msg, "valid forms are f32, f16, bf16") ||
        strchr(msg, '\n') || (needle && !strstr(msg, needle))) {
        fprintf(stderr, "  spec '%s': message \"%s\" (wanted %s)\n", s, msg,
                needle ? needle : "the spec quoted and the valid forms");
        CHECK(0);
    }
    CHECK(q.n_overrides == 0 && q.base.fmt == QB_FMT_F32); /* out is cleared */
}

static void test_bad_specs(void)
{
    static const struct {
        const char *s, *why;
    } bad[] = {
        {"", NULL},
        {"w5", "unknown config 'w5': valid forms"},
        {"w4", NULL},
        {"w4g", "group size"},
        {"w4g48", "32, 64 or 128"},
        {"w4g032", "group size"},
        {"w4g1280", "group size"},
        {"w1g32", NULL},
        {"w5g32", NULL},
        {"fp16", NULL},
        {"W4G128", NULL},
        {" w4g128", NULL},
        {"w4g128 ", "group size"},
        {"w4g128x", "group size"},
        {"f32x", NULL},
        {"w4g128-", "empty suffix"},
        {"w4g128--sym", "empty suffix"},
        {"w4g128-foo", "unknown suffix '-foo'"},
        {"w4g128-sym-sym", "given twice"},
        {"w4g128-a8-a8", "given twice"},
        {"w4g128-a8-sym-a8", "given twice"},
        {"fp8-e5m2-e5m2", "given twice"},
        {"fp8-e5m2-a8", "fp8-e5m2 has no -a8"},
        {"fp8-a8-e5m2", "fp8-e5m2 has no -a8"},
        {"fp8-sym", "-sym"},
        {"w8-a8", "w8a8"},
        {"w8a8-a8", "-a8"},
        {"w8-sym", "-sym"},
        {"f16-a8", "-a8"},
        {"bf16-e5m2", "-e5m2"},
        {"w4g128-e5m2", "-e5m2"},
        {"w4g128-gptq-awq", "more than one method"},
        {"w4g128-rtn-rtn", "more than one method"},
        {"w4g128-gptq-gptq", "more than one method"},
        {"f16-gptq", "gptq needs an integer base"},
        {"fp8-gptq", "gptq"},
        {"f32-awq", "awq"},
        {"w4g128-a8-awq", "awq needs a weight-only"},
        {"w8a8-awq", "awq"},
        {"w4g128-smooth", "smooth needs quantized activations"},
        {"w8-smooth", "smooth"},
        {"fp8-smooth", "smooth"},
        {"bf16-smooth", "smooth"},
        {"w4g128+output=w8-gptq", "an override takes no method"},
        {"w4g128+output=w8-rtn", "an override takes no method"},
        {"w4g128+outptu=w8", "unknown override target 'outptu'"},
        {"w4g128+output", "not TARGET=BASE"},
        {"w4g128+", "not TARGET=BASE"},
        {"w4g128+=w8", "unknown override target ''"},
        {"w4g128+output=", "unknown precision ''"},
        {"w4g128+output=w9", "unknown precision 'w9'"},
        {"w4g128+output=w8x", "unknown precision 'w8x'"},
        {"w4g128+output=w8=f16", "unknown precision"},
        {"w4g128+output=w4g100", "32, 64 or 128"},
        {"w4g128+output=fp8-e5m2-a8", "fp8-e5m2 has no -a8"},
        {"w4g128+output=w8+output=f16", "given twice"},
        {"w4g128++output=w8", "not TARGET=BASE"},
        {"+output=w8", NULL},
        {"w4g128-gptq+Output=w8", "unknown override target"},
        {"w4g128-sym-a8-smooth+q=w4g128-sym-a8+k=w4g128-sym-a8+v=w4g128-sym-a8+o=w4g128-sym-a8"
         "+gate=w4g128-sym-a8+up=w4g128-sym-a8+down=w4g128-sym-a8",
         "more than 127"},
    };
    for (int i = 0; i < N_OF(bad); i++)
        expect_bad(bad[i].s, bad[i].why);

    /* more overrides than QB_QSPEC_MAX_OVERRIDES: 33 layer ranges that cannot merge */
    {
        char many[512];
        size_t n = (size_t)snprintf(many, sizeof many, "f32");
        for (int l = 0; l <= QB_QSPEC_MAX_OVERRIDES; l++)
            n += (size_t)snprintf(many + n, sizeof many - n, "+L%d.q=%s", l, l % 2 ? "f16" : "w8");
        expect_bad(many, "more than 32 overrides");
    }

    /* the bare unknown form reads exactly as documented */
    struct qb_qspec q;
    CHECK(qb_qspec_parse("w5", &q) == QB_EINVAL);
    CHECK(strncmp(qb_errmsg(),
                  "unknown config 'w5': valid forms are f32, f16, bf16, "
                  "fp8[-e5m2][-a8], w8, w8a8, w4g{32,64,128}[-sym][-a8]",
                  100) == 0);
    CHECK(qb_qspec_parse(NULL, &q) == QB_EINVAL);
    CHECK(qb_qspec_parse("w8", NULL) == QB_EINVAL);
}

/* The last matching override wins; attn covers q, k, v, o and ffn covers gate, up, down. */
static void test_for(void)
{
    struct qb_qspec q;
    CHECK(parse_ok("w4g128+attn=w8+q=f16+ffn=w8a8+output=bf16", &q));
    CHECK(qb_qspec_for(&q, QB_TGT_Q)->fmt == QB_FMT_F16);
    CHECK(qb_qspec_for(&q, QB_TGT_K)->fmt == QB_FMT_I8);
    CHECK(qb_qspec_for(&q, QB_TGT_O)->fmt == QB_FMT_I8 && qb_qspec_for(&q, QB_TGT_O)->act == 0);
    CHECK(qb_qspec_for(&q, QB_TGT_GATE)->act == QB_ACT_I8);
    CHECK(qb_qspec_for(&q, QB_TGT_DOWN)->act == QB_ACT_I8);
    CHECK(qb_qspec_for(&q, QB_TGT_OUTPUT)->fmt == QB_FMT_BF16);
    CHECK(qb_qspec_for(&q, QB_TGT_EMBED) == &q.base);

    CHECK(parse_ok("w4g64-sym+q=f16+attn=w8+down=f32", &q));
    CHECK(qb_qspec_for(&q, QB_TGT_Q)->fmt == QB_FMT_I8); /* attn comes later */
    CHECK(qb_qspec_for(&q, QB_TGT_V)->fmt == QB_FMT_I8);
    CHECK(qb_qspec_for(&q, QB_TGT_DOWN)->fmt == QB_FMT_F32);
    CHECK(qb_qspec_for(&q, QB_TGT_UP) == &q.base);
    CHECK(qb_qspec_for(&q, QB_TGT_UP)->group == 64 && !qb_qspec_for(&q, QB_TGT_UP)->asym);
    CHECK(qb_qspec_for(&q, QB_TGT_OUTPUT) == &q.base);
}

/* A short buffer gets a truncated, terminated name. */
static void test_format_cap(void)
{
    struct qb_qspec q;
    char buf[8];
    CHECK(parse_ok("w4g128-gptq+output=w8", &q));
    memset(buf, 'x', sizeof buf);
    qb_qspec_format(&q, buf, sizeof buf);
    CHECK(strcmp(buf, "w4g128-") == 0);
    qb_qbase_format(&q.overrides[0].base, buf, 2);
    CHECK(strcmp(buf, "w") == 0);
}

int main(void)
{
    RUN(test_examples);
    RUN(test_canonical_printing);
    RUN(test_round_trips);
    RUN(test_bad_specs);
    RUN(test_for);
    RUN(test_format_cap);
    return check_summary();
}
