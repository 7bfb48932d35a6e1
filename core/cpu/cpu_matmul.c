/*
 * cpu_matmul.c - linear of the CPU backend (spec 1.1, 1.5 step 5; ops.h): one GEMM
 * (Y[N,O] = alpha X[N,K] . W[O,K]^T + beta Y) split across the team by edm_cpu_sgemm, then a
 * bias/silu pass. It always runs in fp32 (the mapping network).
 */
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
