/*
 * cpu_matmul.c - linear and attention of the CPU backend (spec 1.1, 1.4, 1.5 step 5; ops.h).
 *
 * linear is one GEMM (Y[N,O] = alpha X[N,K] . W[O,K]^T + beta Y) split across the team by
 * edm_cpu_sgemm, then a bias/silu pass. It always runs in fp32 (the mapping network).
 *
 * attention on NHWC activations: for batch-head b = (n, hd), channel c of q at pixel p is
 * qkv[n, p, 3*(hd*Ch + c) + 0], a stride of 3 inside the pixel, which no GEMM takes; so
 * each thread gathers q (its query rows), k and v into contiguous [rows|P, Ch] matrices
 * (3*P*Ch copies against 4*P*P*Ch flops; k and v are kept while the thread stays on the
 * same batch-head). Work items are (b, block of query rows); each thread computes
 *     S[rows, P] = (q[rows, :] . k^T) / sqrt(Ch)           (GEMM, M = rows, K = Ch)
 *     S = softmax over keys, in fp32 with max subtraction and a double sum
 *     out[n, rows, hd*Ch + c] = S . v                       (GEMM, M = rows, N = Ch, K = P,
 *                                                            ldc = C: straight into NHWC)
 * S lives in the thread's scratch; the block height caps it at 16 MiB per thread.
 * The 1/sqrt(Ch) is applied as the GEMM's alpha rather than to k first (spec 1.4): the two
 * differ by an fp32 rounding of the product, far below the test tolerance.
 */
#include <math.h>
#include <omp.h>

#include "cpu_internal.h"

int edm_cpu_linear(void *ctx, edm_tensor *out, const edm_tensor *in, const edm_tensor *weight,
                   const edm_tensor *bias, float alpha, float beta, int act_silu, char *msg) {
    struct cpu_ctx *cx = ctx;
    CPU_CHECK_F32(msg, out, in, weight, bias);
    const int N = in->n, O = weight->n;
    const int K = in->c * in->h * in->w;
    float *y = cpu_f(out);
    /* beta is exactly 0 or 1 (checked by ops.c); with 0 BLAS never reads out (NaN-safe). */
    edm_cpu_sgemm(cx, 0, 1, N, O, K, alpha, cpu_f(in), K, cpu_f(weight), K, beta, y, O);
    if (bias || act_silu) {
        const float *b = bias ? cpu_f(bias) : NULL;
        for (int n = 0; n < N; n++) {
            float *r = y + (int64_t)n * O;
            if (b)
#pragma omp simd
                for (int o = 0; o < O; o++) r[o] += b[o];
            if (act_silu) edm_cpu_silu_inplace(r, O);
        }
    }
    return 0;
}

#define ATTN_SCORE_FLOATS ((int64_t)1 << 22) /* 16 MiB of scores per thread at most */

int edm_cpu_attention(void *ctx, edm_tensor *out, const edm_tensor *qkv, int heads, char *msg) {
    struct cpu_ctx *cx = ctx;
    CPU_CHECK_F32(msg, out, qkv);
    const int C = out->c, Ch = C / heads, B = out->n * heads;
    const int64_t P = (int64_t)out->h * out->w;
    const float alpha = (float)(1.0 / sqrt((double)Ch));
    const double flops = 4.0 * B * (double)P * P * Ch;
    const int team = edm_cpu_team(cx, flops, 2e6);

    /* Blocks of query rows: enough items to keep the team busy, bounded scratch. */
    int64_t nblk = B >= team ? 1 : (team + B - 1) / B;
    int64_t rb = (P + nblk - 1) / nblk;
    if (rb * P > ATTN_SCORE_FLOATS) rb = ATTN_SCORE_FLOATS / P > 16 ? ATTN_SCORE_FLOATS / P : 16;
    if (rb > P) rb = P;
    nblk = (P + rb - 1) / rb;
    /* per thread: S [rb, P], then q [rb, Ch], k [P, Ch], v [P, Ch] */
    if (edm_cpu_scratch_reserve(cx, (size_t)(rb * P + (rb + 2 * P) * Ch), msg)) return 1;

    const float *src = cpu_f(qkv);
    float *y = cpu_f(out);
    const int64_t items = (int64_t)B * nblk;
#pragma omp parallel num_threads(team)
    {
        float *S = cx->scratch[omp_get_thread_num()];
        float *q = S + rb * P, *k = q + rb * Ch, *v = k + P * Ch;
        int have = -1; /* the batch-head whose k and v are gathered */
#pragma omp for schedule(static)
        for (int64_t it = 0; it < items; it++) {
            const int b = (int)(it / nblk), n = b / heads, hd = b % heads;
            const int64_t i0 = (it % nblk) * rb, rows = P - i0 < rb ? P - i0 : rb;
            /* channel 3*(hd*Ch + c) + j of pixel p */
            const float *base = src + (int64_t)n * P * 3 * C + 3 * (int64_t)hd * Ch;
            if (have != b) {
                for (int64_t p = 0; p < P; p++) {
                    const float *r = base + p * 3 * C;
                    for (int c = 0; c < Ch; c++) {
                        k[p * Ch + c] = r[3 * c + 1];
                        v[p * Ch + c] = r[3 * c + 2];
                    }
                }
                have = b;
            }
            for (int64_t i = 0; i < rows; i++) {
                const float *r = base + (i0 + i) * 3 * C;
                for (int c = 0; c < Ch; c++) q[i * Ch + c] = r[3 * c];
            }
            edm_cpu_gemm1(cx, 0, 1, (int)rows, (int)P, Ch, alpha, q, Ch, k, Ch, 0.0f, S, (int)P);
            for (int64_t i = 0; i < rows; i++) edm_cpu_softmax_row(S + i * P, P);
            float *o = y + ((int64_t)n * P + i0) * C + (int64_t)hd * Ch;
            edm_cpu_gemm1(cx, 0, 0, (int)rows, Ch, (int)P, 1.0f, S, (int)P, v, Ch, 0.0f, o, C);
        }
    }
    return 0;
}
