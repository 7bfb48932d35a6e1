/*
 * cuda_attention.cu - self-attention over the interleaved qkv layout (spec 1.4, 1.5).
 *
 * qkv [N, 3C, P]: channel o = 3*(hd*Ch + c) + j is head hd, channel c, part j (q, k, v). For
 * the batch-head b = n*heads + hd, part j is a Ch x P row-major matrix starting at
 *     qkv + b*3*Ch*P + j*P   with row stride 3P,
 * so the per-b operands are strided views and a batch of them is one strided-batched GEMM
 * (stride 3*Ch*P), no repacking. Per chunk of batch-heads:
 *   1. S[b] (P x P, fp32) = (q^T k) / sqrt(Ch)   GEMM, fp32 output in every precision;
 *   2. softmax over the keys of every row of S, in fp32, written as the activation type (the
 *      reference casts the weights back to q's dtype);
 *   3. out[b] (Ch x P) = v . W^T                  GEMM into out[n, hd*Ch + c, :].
 * Column-major forms (cuBLAS): S' (j,i) = K'(j,c) . Q'(i,c)^T with K', Q' = P x Ch, ld 3P;
 * out' (i,c) = W'(j,i)^T . V'(j,c) with W' = P x P, ld P.
 * The 1/sqrt(Ch) is applied as the GEMM's alpha instead of to k first: the same in exact
 * arithmetic, within rounding of it in floating point.
 */
#include <math.h>

#include "cuda_internal.h"

#define EDM_ATTN_ROWS_PER_BLOCK (EDM_CUDA_THREADS / 32)

/* One warp per row of S (length P): w = softmax(s) in fp32, stored as TW (may be S itself). */
template <typename TW>
__global__ void __launch_bounds__(EDM_CUDA_THREADS)
    edm_softmax_rows_kernel(TW *w, float *s, int64_t rows, int P) {
    const int lane = (int)(threadIdx.x & 31);
    const int64_t row = (int64_t)blockIdx.x * EDM_ATTN_ROWS_PER_BLOCK + (threadIdx.x >> 5);
    if (row >= rows) return; /* whole warps leave together: no block-wide barrier below */
    float *sr = s + row * P;
    TW *wr = w + row * P;
    float m = -INFINITY;
    for (int j = lane; j < P; j += 32) m = fmaxf(m, sr[j]);
    m = edm_warp_max(m);
    float sum = 0.0f;
    for (int j = lane; j < P; j += 32) {
        const float e = expf(sr[j] - m);
        sr[j] = e;
        sum += e;
    }
    sum = edm_warp_sum(sum);
    for (int j = lane; j < P; j += 32) edm_put(&wr[j], sr[j] / sum);
}

int edm_cuda_attention(void *ctx, edm_tensor *out, const edm_tensor *qkv, int heads, char *msg) {
    edm_cuda *c = (edm_cuda *)ctx;
    edm_cuda_oprec r = edm_cuda_rec(EDM_CUDA_OP_ATTENTION, out, qkv, NULL, NULL, NULL, NULL);
    r.i[0] = heads;
    const int route = edm_cuda_op_enter(c, &r, msg);
    if (route) return route < 0; /* recorded for a graph replay, or an error */
    if (edm_cuda_enter(c, msg)) return 1;

    const enum edm_dtype dt = out->dtype;
    if (qkv->dtype != dt)
        return edm_cuda_fail(msg, "dtypes: qkv %s, out %s (must match)",
                             edm_cuda_dtype_name(qkv->dtype), edm_cuda_dtype_name(dt));
    const int N = out->n, C = out->c, Ch = C / heads;
    const int64_t P64 = (int64_t)out->h * out->w;
    if (P64 * 3 > 0x7fffffff) return edm_cuda_fail(msg, "attention too large (P=%lld)", (long long)P64);
    const int P = (int)P64;
    const int B = N * heads;
    const cudaDataType cdt = edm_cuda_dtype(dt);
    const size_t es = edm_cuda_dtype_size(dt);
    /* Scratch per batch-head: S in fp32, plus W in the activation type when that is narrower. */
    const size_t s_bytes = (size_t)P * P * sizeof(float);
    const size_t w_bytes = dt == EDM_F32 ? 0 : (size_t)P * P * es;
    const size_t per_b = s_bytes + w_bytes;
    int64_t chunk = (int64_t)(c->chunk_bytes / per_b);
    if (chunk < 1) chunk = 1;
    if (chunk > B) chunk = B;
    char *scr = (char *)edm_cuda_scratch(c, (size_t)chunk * per_b, msg);
    if (!scr) return 1;
    float *S = (float *)scr;
    void *Wt = dt == EDM_F32 ? (void *)S : (void *)(scr + (size_t)chunk * s_bytes);

    /* Logits in fp32: tf32 mode may use TF32 products; fp16/bf16 inputs accumulate in fp32. */
    const cublasComputeType_t compute = c->act_compute;
    const float alpha = (float)(1.0 / sqrt((double)Ch));
    const long long sQKV = (long long)3 * Ch * P; /* between batch-heads, in elements */
    for (int b0 = 0; b0 < B; b0 += (int)chunk) {
        const int nb = B - b0 < chunk ? B - b0 : (int)chunk;
        const char *base = (const char *)qkv->data + (size_t)b0 * (size_t)sQKV * es;
        const void *q = base;
        const void *k = base + (size_t)P * es;
        const void *v = base + (size_t)2 * P * es;
        if (edm_cuda_gemm(c, msg, "attention logits", CUBLAS_OP_N, CUBLAS_OP_T, P, P, Ch, alpha, k,
                          cdt, 3 * P, sQKV, q, cdt, 3 * P, sQKV, 0.0f, S, CUDA_R_32F, P,
                          (long long)P * P, nb, compute))
            return 1;
        const int64_t rows = (int64_t)nb * P;
        const int64_t blocks = (rows + EDM_ATTN_ROWS_PER_BLOCK - 1) / EDM_ATTN_ROWS_PER_BLOCK;
        if (blocks > 0x7fffffff) return edm_cuda_fail(msg, "attention: too many rows");
        EDM_CUDA_DISPATCH(dt, TW, {
            EDM_LAUNCH(edm_softmax_rows_kernel<TW>, (unsigned)blocks, EDM_CUDA_THREADS, 0,
                       c->stream, (TW *)Wt, S, rows, P);
        });
        if (edm_cuda_check(c, msg, "attention softmax")) return 1;
        char *o = (char *)out->data + (size_t)b0 * (size_t)Ch * (size_t)P * es;
        if (edm_cuda_gemm(c, msg, "attention output", CUBLAS_OP_T, CUBLAS_OP_N, P, Ch, P, 1.0f, Wt,
                          cdt, P, (long long)P * P, v, cdt, 3 * P, sQKV, 0.0f, o, cdt, P,
                          (long long)Ch * P, nb, compute))
            return 1;
    }
    return edm_cuda_check(c, msg, "attention");
}
