/*
 * cpu_attention.c - attention of the CPU backend (spec 1.4, 1.5 step 5; ops.h) on NHWC
 * activations: for batch-head b = (n, hd), channel c of q at pixel p is
 * qkv[n, p, 3*(hd*Ch + c) + 0] (k: + 1, v: + 2), a stride of 3 inside the pixel, which no
 * GEMM takes, so both paths first gather q, k and v into contiguous [P, Ch] matrices
 * (3*P*Ch copies against 4*P*P*Ch flops).
 *
 * fp32: work items are (b, block of query rows); each thread computes
 *     S[rows, P] = (q[rows, :] . k^T) / sqrt(Ch)           (GEMM, M = rows, K = Ch)
 *     S = softmax over keys, in fp32 with max subtraction and a double sum
 *     out[n, rows, hd*Ch + c] = S . v                       (GEMM, M = rows, N = Ch, K = P,
 *                                                            ldc = C: straight into NHWC)
 * S lives in the thread's scratch; the block height caps it at 16 MiB per thread (k and v
 * are kept while the thread stays on the same batch-head).
 *
 * bf16 (precision bf16): the same work items, but q, k and v are rounded to bf16 as they are
 * gathered and both GEMMs are oneDNN bf16 matmuls (AMX, else AVX512_BF16; fp32
 * accumulation), one thread each, with blocks small enough that a block's scores (fp32, then
 * the probabilities in bf16) stay in the core's L2 (ATTN_BF16_BLOCK_BYTES). A first version
 * ran batched matmuls over whole images and streamed the scores through memory: no faster
 * than fp32. The softmax is edm_cpu_softmax_row_bf16, of bf16 accuracy. ImageNet-64 ADM's
 * 32x32 attention (batch 8, 6 heads, 2 threads): 45 ms against 108 ms in fp32. Where oneDNN
 * refuses the matmuls, bf16 attention runs the fp32 path.
 *
 * The 1/sqrt(Ch) is applied as the GEMM's alpha (an output scale in bf16) rather than to k
 * first (spec 1.4): the two differ by a rounding of the product, far below the tolerance.
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>

#include "cpu_internal.h"

#define ATTN_SCORE_FLOATS ((int64_t)1 << 22) /* fp32: 16 MiB of scores per thread at most */
#define ATTN_BF16_BLOCK_BYTES ((int64_t)768 << 10) /* bf16: a block's scores, fp32 + bf16 */
/* Blocks of query rows: enough work items (batch-head, block) to keep the team busy, at
 * most max_rows rows (at least 16) each. */
static void row_blocks(int64_t P, int B, int team, int64_t max_rows, int64_t *rb, int64_t *nblk) {
    int64_t n = B >= team ? 1 : (team + B - 1) / B;
    int64_t r = (P + n - 1) / n;
    if (r > max_rows) r = max_rows > 16 ? max_rows : 16;
    if (r > P) r = P;
    *rb = r;
    *nblk = (P + r - 1) / r;
}

static int attention_f32(struct cpu_ctx *cx, edm_tensor *out, const edm_tensor *qkv, int heads,
                         char *msg) {
    const int C = out->c, Ch = C / heads, B = out->n * heads;
    const int64_t P = (int64_t)out->h * out->w;
    const float alpha = (float)(1.0 / sqrt((double)Ch));
    const double flops = 4.0 * B * (double)P * P * Ch;
    const int team = edm_cpu_team(cx, flops, 2e6);

    int64_t rb, nblk;
    row_blocks(P, B, team, ATTN_SCORE_FLOATS / P, &rb, &nblk);
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

/* The q, or the k and v, of one pixel's Ch channels (r: the pixel's q of channel 0), rounded
 * to bf16. */
EDM_CPU_CLONES static void gather_q_bf16(uint16_t *restrict q, const float *restrict r, int Ch) {
#pragma omp simd
    for (int c = 0; c < Ch; c++) q[c] = edm_cpu_bf16(r[3 * c]);
}

EDM_CPU_CLONES static void gather_kv_bf16(uint16_t *restrict k, uint16_t *restrict v,
                                          const float *restrict r, int Ch) {
#pragma omp simd
    for (int c = 0; c < Ch; c++) {
        k[c] = edm_cpu_bf16(r[3 * c + 1]);
        v[c] = edm_cpu_bf16(r[3 * c + 2]);
    }
}

/* bf16 attention (see the file comment): 0 done, 1 refused by oneDNN (nothing written),
 * -1 an error (msg set). */
static int attention_bf16(struct cpu_ctx *cx, edm_tensor *out, const edm_tensor *qkv, int heads,
                          char *msg) {
    const int C = out->c, Ch = C / heads, B = out->n * heads, P = out->h * out->w;
    const float alpha = (float)(1.0 / sqrt((double)Ch));
    const int team = edm_cpu_team(cx, 4.0 * B * (double)P * P * Ch, 2e6);
    int64_t rb, nblk;
    row_blocks(P, B, team, ATTN_BF16_BLOCK_BYTES / (6 * (int64_t)P), &rb, &nblk);
    struct dnnl_prim *mm[4];
    size_t dnnl_scratch;
    const int rc = edm_cpu_dnnl_attention_prims(cx, (int)rb, (int)(P % rb), P, Ch, C, alpha, mm,
                                                &dnnl_scratch, msg);
    if (rc) return rc;
    /* per thread, each 64-byte aligned: S fp32 [rb][P] | p [rb][P] | q [rb][Ch] | k, v [P][Ch]
     * bf16 | oneDNN's scratchpad */
#define A64(bytes) (((size_t)(bytes) + 63) & ~(size_t)63)
    const size_t o_p = A64(rb * P * 4), o_q = o_p + A64(rb * P * 2), o_k = o_q + A64(rb * Ch * 2),
                 o_v = o_k + A64((int64_t)P * Ch * 2), o_s = o_v + A64((int64_t)P * Ch * 2);
#undef A64
    if (edm_cpu_scratch_reserve(cx, (o_s + dnnl_scratch) / 4 + 1, msg)) return -1;

    const float *src = cpu_f(qkv);
    float *y = cpu_f(out);
    const int64_t items = (int64_t)B * nblk;
    int failed = 0;
#pragma omp parallel num_threads(team)
    {
        char *base = (char *)cx->scratch[omp_get_thread_num()];
        float *S = (float *)base;
        uint16_t *p = (uint16_t *)(base + o_p), *q = (uint16_t *)(base + o_q),
                 *k = (uint16_t *)(base + o_k), *v = (uint16_t *)(base + o_v);
        char emsg[EDM_OPS_MSG];
        int have = -1; /* the batch-head whose k and v are gathered */
#pragma omp for schedule(static)
        for (int64_t it = 0; it < items; it++) {
            int stop;
#pragma omp atomic read
            stop = failed;
            if (stop) continue; /* the team finishes its loop; nothing more is computed */
            const int b = (int)(it / nblk), n = b / heads, hd = b % heads;
            const int64_t i0 = (it % nblk) * rb, rows = P - i0 < rb ? P - i0 : rb;
            struct dnnl_prim *const *m = rows == rb ? mm : mm + 2;
            /* channel 3*(hd*Ch + c) + j of pixel i */
            const float *at = src + (int64_t)n * P * 3 * C + 3 * (int64_t)hd * Ch;
            if (have != b) {
                for (int64_t i = 0; i < P; i++)
                    gather_kv_bf16(k + i * Ch, v + i * Ch, at + i * 3 * C, Ch);
                have = b;
            }
            for (int64_t i = 0; i < rows; i++)
                gather_q_bf16(q + i * Ch, at + (i0 + i) * 3 * C, Ch);
            float *o = y + ((int64_t)n * P + i0) * C + (int64_t)hd * Ch;
            int bad = edm_cpu_dnnl_attention_run(cx, m[0], q, k, S, base + o_s, emsg);
            if (!bad) {
                for (int64_t i = 0; i < rows; i++)
                    edm_cpu_softmax_row_bf16(S + i * P, p + i * P, P);
                bad = edm_cpu_dnnl_attention_run(cx, m[1], p, v, o, base + o_s, emsg);
            }
            if (bad) {
#pragma omp critical(edm_cpu_attention_error)
                snprintf(msg, EDM_OPS_MSG, "%s", emsg);
#pragma omp atomic write
                failed = 1;
            }
        }
    }
    return failed ? -1 : 0;
}

int edm_cpu_attention(void *ctx, edm_tensor *out, const edm_tensor *qkv, int heads, char *msg) {
    struct cpu_ctx *cx = ctx;
    CPU_CHECK_F32(msg, out, qkv);
    if (cx->bf16 && !cx->attn_bf16_refused) {
        const int rc = attention_bf16(cx, out, qkv, heads, msg);
        cx->attn_bf16_calls += rc == 0;
        if (rc <= 0) return -rc;
        cx->attn_bf16_refused = 1; /* the fp32 path from now on */
    }
    return attention_f32(cx, out, qkv, heads, msg);
}
