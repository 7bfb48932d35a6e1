/*
 * rng.c - the engine's counter-based random numbers: Philox4x32-10 + Box-Muller.
 *
 * Why counter-based: every value is a pure function of (seed, purpose, step, index), so an
 * image's latents, label and per-step noise depend only on its seed -- never on the batch it
 * was sampled in, the thread that drew it or how many values were asked for (spec 3.3: the
 * official StackedRandomGenerator gives each seed its own stream for the same reason).
 *
 * Generator: Philox4x32 with 10 rounds (Salmon, Moraes, Dror, Shaw, "Parallel random numbers:
 * as easy as 1, 2, 3", SC'11), multipliers 0xD2511F53 / 0xCD9E8D57 and Weyl key increments
 * 0x9E3779B9 / 0xBB67AE85; checked against the Random123 known-answer vectors in
 * tests/unit/test_rng.c.
 *
 * Exact layout (a CUDA kernel or another implementation must use the same to agree):
 *   key     = { seed & 0xffffffff, seed >> 32 }
 *   counter = { block & 0xffffffff, block >> 32, purpose, step }    for edm_rng_normal
 *   counter = { block & 0xffffffff, 0xffffffff,  purpose, 0 }       for edm_rng_uint
 * where block = index / 4 is the 128-bit block holding value `index`; word w = index % 4.
 * (edm_rng_uint marks word 1 with all ones so its draws can never coincide with a normal
 * stream, which would need 2^66 normals to reach that block.)
 *
 * Normals: block b gives words x0..x3 -> uniforms u_w = (x_w + 0.5) / 2^32, which lie strictly
 * inside (0,1) in double (all 32 bits used), then Box-Muller in double precision:
 *   r = sqrt(-2 ln u0), out[4b+0] = r cos(2 pi u1), out[4b+1] = r sin(2 pi u1)
 *   r = sqrt(-2 ln u2), out[4b+2] = r cos(2 pi u3), out[4b+3] = r sin(2 pi u3)
 * each rounded once to float. out[i] depends only on i (a prefix of a longer request is the
 * shorter request). Portability: only integer math and the double log/sqrt/cos/sin of libm
 * (correctly rounded in all but rare cases, so results agree across machines to the last bit
 * of the double, and almost always exactly after rounding to float); -std=c11 disables FMA
 * contraction in GCC, and this file must not be built with -ffast-math.
 *
 * Integers: edm_rng_uint rejects raw words below 2^32 mod bound, then returns word % bound,
 * so every value in [0,bound) has exactly the same probability.
 */
#include <math.h>

#include "edm.h"

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

/* Philox4x32-10 of counter ctr under key (k0, k1); exposed for the known-answer test. */
void edm_philox4x32_10(const uint32_t ctr[4], uint32_t k0, uint32_t k1, uint32_t out[4]);

void edm_philox4x32_10(const uint32_t ctr[4], uint32_t k0, uint32_t k1, uint32_t out[4]) {
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    for (int round = 0; round < 10; round++) {
        if (round > 0) { /* the key schedule bumps before every round but the first */
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

/* (x + 0.5) / 2^32: exact in double, never 0 or 1. */
static double rng_uniform(uint32_t x) {
    return ((double)x + 0.5) * (1.0 / 4294967296.0);
}

static void rng_box_muller(uint32_t a, uint32_t b, double *z0, double *z1) {
    static const double two_pi = 6.283185307179586476925286766559;
    double r = sqrt(-2.0 * log(rng_uniform(a)));
    double theta = two_pi * rng_uniform(b);
    *z0 = r * cos(theta);
    *z1 = r * sin(theta);
}

void edm_rng_normal(uint64_t seed, uint32_t purpose, uint32_t step, float *out, size_t n) {
    EDM_ASSERT(out || n == 0);
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (size_t base = 0; base < n; base += 4) {
        uint64_t block = (uint64_t)(base / 4);
        uint32_t ctr[4] = {(uint32_t)block, (uint32_t)(block >> 32), purpose, step};
        uint32_t x[4];
        edm_philox4x32_10(ctr, k0, k1, x);
        double z[4];
        rng_box_muller(x[0], x[1], &z[0], &z[1]);
        rng_box_muller(x[2], x[3], &z[2], &z[3]);
        size_t m = n - base < 4 ? n - base : 4;
        for (size_t w = 0; w < m; w++) out[base + w] = (float)z[w];
    }
}

uint32_t edm_rng_uint(uint64_t seed, uint32_t purpose, uint32_t bound) {
    EDM_ASSERT(bound > 0);
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    /* 2^32 mod bound, computed in 32 bits: words below it would favour small values. */
    uint32_t threshold = (uint32_t)(-bound) % bound;
    /* Each word is rejected with probability < 1/2, so this ends after a few blocks; the
     * counter space (2^32 blocks) is never exhausted in practice. */
    for (uint32_t block = 0;; block++) {
        uint32_t ctr[4] = {block, 0xffffffffu, purpose, 0};
        uint32_t x[4];
        edm_philox4x32_10(ctr, k0, k1, x);
        for (int w = 0; w < 4; w++)
            if (x[w] >= threshold) return x[w] % bound;
        EDM_ASSERT(block != 0xffffffffu);
    }
}
