/*
 * cpu_matmul.c - linear and attention of the CPU backend (spec 1.1, 1.4, 1.5 step 5; ops.h).
 *
 * linear is one GEMM (Y[N,O] = alpha X[N,K] . W[O,K]^T + beta Y) split across the team by
 * edm_cpu_sgemm, then a bias/silu pass. It always runs in fp32 (the mapping network).
 *
 * attention reads q, k and v straight out of the interleaved qkv tensor: for batch-head
 * b = (n, hd), channel c of q is the row qkv[n, 3*(hd*Ch + c) + 0, :], so q, k and v are
 * [Ch, P] matrices with a row stride of 3P, which BLAS takes as a leading dimension; no
 * repacking. Work items are (b, block of query rows); each thread computes
 *     S[rows, P] = (q[:, rows]^T . k) / sqrt(Ch)           (GEMM, M = rows, K = Ch)
 *     S = softmax over keys, in fp32 with max subtraction and a double sum
 *     out[n, hd*Ch + c, rows] = v . S^T                     (GEMM, M = Ch, K = P)
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
    if (edm_cpu_scratch_reserve(cx, (size_t)(rb * P), msg)) return 1;

    const float *src = cpu_f(qkv);
    float *y = cpu_f(out);
    const int64_t items = (int64_t)B * nblk;
#pragma omp parallel for num_threads(team) schedule(static)
    for (int64_t it = 0; it < items; it++) {
        float *S = cx->scratch[omp_get_thread_num()];
        const int b = (int)(it / nblk), n = b / heads, hd = b % heads;
        const int64_t i0 = (it % nblk) * rb, rows = P - i0 < rb ? P - i0 : rb;
        const float *q = src + ((int64_t)n * 3 * C + 3 * (int64_t)hd * Ch) * P; /* row c: +3cP */
        const float *k = q + P, *v = q + 2 * P;
        const int ld = (int)(3 * P);
        edm_cpu_gemm1(cx, 1, 0, (int)rows, (int)P, Ch, alpha, q + i0, ld, k, ld, 0.0f, S, (int)P);
        for (int64_t i = 0; i < rows; i++) edm_cpu_softmax_row(S + i * P, P);
        float *o = y + ((int64_t)n * C + (int64_t)hd * Ch) * P + i0;
        edm_cpu_gemm1(cx, 0, 1, Ch, (int)rows, (int)P, 1.0f, v, ld, S, (int)P, 0.0f, o, (int)P);
    }
    return 0;
}
