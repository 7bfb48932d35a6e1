/*
 * test_rng.c - Philox4x32-10 known answers, golden values from an independent reference,
 * normal moments, stream independence, prefix stability and unbiased integers (core/sampler/rng.c).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "edm.h"

/* Internal to core/sampler/rng.c, exposed for this test. */
void edm_philox4x32_10(const uint32_t ctr[4], uint32_t k0, uint32_t k1, uint32_t out[4]);

static void test_philox_kat(void) {
    /* Random123 tests/kat_vectors, "philox4x32 10": counter[4] key[2] -> output[4]. */
    static const uint32_t kat[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d,
         0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09,
         0x94fdcceb, 0x5001e420, 0x24126ea1},
    };
    for (int i = 0; i < 3; i++) {
        uint32_t out[4];
        edm_philox4x32_10(kat[i], kat[i][4], kat[i][5], out);
        for (int w = 0; w < 4; w++)
            CHECK(out[w] == kat[i][6 + w], "KAT %d word %d: got %08x want %08x", i, w, out[w],
                  kat[i][6 + w]);
    }
}

static void test_golden(void) {
    /* From an independent Python implementation of the layout documented in core/sampler/rng.c
     * (Python floats are IEEE doubles; values rounded to float32). */
    static const float want_a[6] = {0x1.10582ep+1f, 0x1.14a7e6p+1f, -0x1.a211cp-2f,
                                    -0x1.a8e594p+0f, 0x1.02ba96p+1f, -0x1.bb413cp-4f};
    static const float want_b[6] = {0x1.099e34p-5f, 0x1.1a06fcp-1f, 0x1.573a92p+0f,
                                    -0x1.5fc972p+0f, 0x1.dd283cp-2f, -0x1.0acfc6p-1f};
    float got[6];
    edm_rng_normal(42, 1, 0, got, 6);
    for (int i = 0; i < 6; i++)
        CHECK(got[i] == want_a[i], "seed 42 value %d: got %a want %a", i, got[i], want_a[i]);
    edm_rng_normal(0x123456789abcdef0ull, 3, 17, got, 6);
    for (int i = 0; i < 6; i++)
        CHECK(got[i] == want_b[i], "big seed value %d: got %a want %a", i, got[i], want_b[i]);

    static const uint32_t want_u[8] = {86, 198, 350, 96, 479, 144, 988, 374};
    for (uint64_t s = 0; s < 8; s++)
        CHECK(edm_rng_uint(s, 2, 1000) == want_u[s], "uint seed %d: got %u want %u", (int)s,
              edm_rng_uint(s, 2, 1000), want_u[s]);
    CHECK(edm_rng_uint(7, 2, 0x80000001u) == 1941729925u, "uint large bound");
    CHECK(edm_rng_uint(UINT64_MAX, 2, 10) == 9, "uint max seed");
}

static void test_moments(void) {
    const size_t n = 1000000;
    float *z = malloc(n * sizeof *z);
    CHECK(z != NULL, "malloc");
    if (!z) return;
    edm_rng_normal(12345, EDM_RNG_LATENTS, 0, z, n);
    double s1 = 0, s2 = 0, s3 = 0, s4 = 0, mx = 0;
    int finite = 1;
    for (size_t i = 0; i < n; i++) {
        double v = z[i];
        if (!isfinite(v)) finite = 0;
        s1 += v;
    }
    double mean = s1 / (double)n;
    for (size_t i = 0; i < n; i++) {
        double d = z[i] - mean;
        s2 += d * d;
        s3 += d * d * d;
        s4 += d * d * d * d;
        if (fabs(d) > mx) mx = fabs(d);
    }
    double var = s2 / (double)n, skew = s3 / (double)n / pow(var, 1.5),
           kurt = s4 / (double)n / (var * var);
    /* Standard errors at n = 1e6: mean 0.001, var 0.0014, skew 0.0024, kurtosis 0.0049;
     * the bounds are about 5 standard errors. */
    CHECK(finite, "all normals finite");
    CHECK(fabs(mean) < 0.005, "mean %g", mean);
    CHECK(fabs(var - 1) < 0.007, "variance %g", var);
    CHECK(fabs(skew) < 0.012, "skewness %g", skew);
    CHECK(fabs(kurt - 3) < 0.025, "kurtosis %g", kurt);
    CHECK(mx > 4 && mx < 7, "max |z| %g (expect ~4.9 for 1e6 draws)", mx);

    /* Tail mass: P(|z| > 2) = 0.0455. */
    size_t tail = 0;
    for (size_t i = 0; i < n; i++) tail += fabs(z[i]) > 2;
    CHECK(fabs((double)tail / (double)n - 0.0455) < 0.0015, "P(|z|>2) = %g", (double)tail / n);
    free(z);
}

static double corr(const float *a, const float *b, size_t n) {
    double sab = 0, saa = 0, sbb = 0;
    for (size_t i = 0; i < n; i++) {
        sab += (double)a[i] * b[i];
        saa += (double)a[i] * a[i];
        sbb += (double)b[i] * b[i];
    }
    return sab / sqrt(saa * sbb);
}

static void test_independence(void) {
    enum { N = 100000 };
    static float base[N], other[N];
    edm_rng_normal(7, EDM_RNG_STEP_NOISE, 3, base, N);
    struct {
        uint64_t seed;
        uint32_t purpose, step;
        const char *what;
    } cases[] = {
        {8, EDM_RNG_STEP_NOISE, 3, "next seed"},
        {7 + (1ull << 32), EDM_RNG_STEP_NOISE, 3, "seed high word"},
        {7, EDM_RNG_LATENTS, 3, "purpose"},
        {7, EDM_RNG_STEP_NOISE, 4, "step"},
        {7, EDM_RNG_STEP_NOISE, 3 + (1u << 31), "step high bit"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        edm_rng_normal(cases[c].seed, cases[c].purpose, cases[c].step, other, N);
        size_t same = 0;
        for (size_t i = 0; i < N; i++) same += base[i] == other[i];
        double r = corr(base, other, N);
        /* |r| standard error 1/sqrt(N) = 0.0032. */
        CHECK(same < 5, "%s: %zu identical values", cases[c].what, same);
        CHECK(fabs(r) < 0.016, "%s: correlation %g", cases[c].what, r);
    }
    /* Lagged self-correlation inside one stream (within a block and across blocks). */
    for (size_t lag = 1; lag <= 5; lag++) {
        double r = corr(base, base + lag, N - lag);
        CHECK(fabs(r) < 0.016, "lag %zu correlation %g", lag, r);
    }
    /* Same arguments, same values. */
    edm_rng_normal(7, EDM_RNG_STEP_NOISE, 3, other, N);
    CHECK(memcmp(base, other, sizeof base) == 0, "deterministic");
}

static void test_prefix(void) {
    float full[67], part[67];
    edm_rng_normal(99, EDM_RNG_LATENTS, 0, full, 67);
    for (size_t n = 0; n <= 67; n++) {
        for (size_t i = 0; i < 67; i++) part[i] = -1234.0f;
        edm_rng_normal(99, EDM_RNG_LATENTS, 0, part, n);
        CHECK(n == 0 || memcmp(part, full, n * sizeof(float)) == 0, "prefix of %zu differs", n);
        int untouched = 1;
        for (size_t i = n; i < 67; i++) untouched &= part[i] == -1234.0f;
        CHECK(untouched, "n=%zu wrote past the end", n);
    }
    edm_rng_normal(99, EDM_RNG_LATENTS, 0, NULL, 0); /* no-op, must not crash */
    CHECK(1, "n = 0");
}

static void test_uint(void) {
    CHECK(edm_rng_uint(5, EDM_RNG_LABEL, 1) == 0, "bound 1 gives 0");
    /* Coverage and uniformity over seeds for a small bound: chi-square with 9 dof. */
    enum { B = 10, SEEDS = 100000 };
    long count[B] = {0};
    int in_range = 1;
    for (uint64_t s = 0; s < SEEDS; s++) {
        uint32_t v = edm_rng_uint(s, EDM_RNG_LABEL, B);
        if (v >= B) in_range = 0;
        else count[v]++;
    }
    CHECK(in_range, "values < bound");
    double chi2 = 0, expect = (double)SEEDS / B;
    for (int i = 0; i < B; i++) {
        CHECK(count[i] > 0, "value %d never drawn", i);
        chi2 += (count[i] - expect) * (count[i] - expect) / expect;
    }
    CHECK(chi2 < 27.9, "chi-square %g (9 dof, p = 0.001 at 27.9)", chi2);

    /* Every value of a 1000-class label draw is reachable (ImageNet-like label_dim). */
    static unsigned char seen[1000];
    int distinct = 0;
    for (uint64_t s = 0; s < 20000; s++) {
        uint32_t v = edm_rng_uint(s, EDM_RNG_LABEL, 1000);
        if (v < 1000 && !seen[v]) seen[v] = 1, distinct++;
    }
    CHECK(distinct == 1000, "1000-class coverage: %d", distinct);

    /* Bound just above 2^31: half the words are rejected; the result must still be in range
     * and both halves of the range must appear (a modulo-only draw would favour the low one). */
    uint32_t big = 0x80000001u;
    long low = 0, ok = 1;
    for (uint64_t s = 0; s < 20000; s++) {
        uint32_t v = edm_rng_uint(s, EDM_RNG_LABEL, big);
        if (v >= big) ok = 0;
        low += v < big / 2;
    }
    CHECK(ok, "large bound in range");
    CHECK(labs(low - 10000) < 500, "large bound: %ld of 20000 in the lower half", low);
    CHECK(edm_rng_uint(1, EDM_RNG_LABEL, UINT32_MAX) < UINT32_MAX, "bound 2^32-1");

    /* The purpose selects an independent stream: equal draws only by chance (1/1000). */
    int equal = 0;
    for (uint64_t s = 0; s < 10000; s++)
        equal += edm_rng_uint(s, EDM_RNG_LABEL, 1000) == edm_rng_uint(s, EDM_RNG_LATENTS, 1000);
    CHECK(equal < 30, "purpose streams agree on %d of 10000 seeds", equal);
}

int main(void) {
    test_philox_kat();
    test_golden();
    test_moments();
    test_independence();
    test_prefix();
    test_uint();
    return check_finish();
}
