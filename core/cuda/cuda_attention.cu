/*
 * cuda_attention.cu - self-attention over the interleaved qkv layout (spec 1.4, 1.5).
 *
 * qkv [N, P, 3C] (NHWC): channel o = 3*(hd*Ch + c) + j of a pixel is head hd, channel c, part
 * j (q, k, v). Within a pixel a head's q channels are 3 apart, which no GEMM can read as a
 * matrix, so each chunk of images is first repacked (one pass) into three arrays
 *     Q[b][i][c], K[b][j][c], V[b][j][c]   b = image*heads + hd (within the chunk), c < Ch
 * and then, per chunk:
 *   1. S[b] (fp32) = (q . k) / sqrt(Ch), one strided-batched GEMM over the batch-heads;
 *   2. softmax over the keys of every row of S, in fp32, written as the activation type (the
 *      reference casts the weights back to q's dtype);
 *   3. out[n, i, hd*Ch + c] = sum_j w[b,i,j] v[b,j,c], written straight into the NHWC output:
 *      one strided-batched GEMM per head over the chunk's images.
 * Column-major forms (cuBLAS): S' (j,i) = K'(c,j)^T . Q'(c,i), both Ch x P with ld Ch, S' ld P
 * (so a row i of the softmax is contiguous); out' (c,i) = V'(c,j) . W'(j,i) with ld C, at
 * offset hd*Ch of each pixel.
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

/* Q, K, V [nb*heads][P][Ch] (parts 0, 1, 2, each part_len = nb*P*C apart) from qkv
 * [nb][P][3C]: one thread per element of qkv, in its order. grid: x = P*3C, z = image. */
template <typename T>
__global__ void __launch_bounds__(EDM_CUDA_THREADS)
    edm_qkv_repack_kernel(T *__restrict__ dst, const T *__restrict__ qkv, int P, int C, int Ch,
                          size_t part_len) {
    const int C3 = 3 * C;
    const int r = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    if (r >= P * C3) return;
    const int p = r / C3, o = r - p * C3;
    const int hc = o / 3, j = o - hc * 3;
    const int hd = hc / Ch, c = hc - hd * Ch;
    const int heads = C / Ch;
    const size_t b = (size_t)blockIdx.z * heads + hd;
    dst[(size_t)j * part_len + (b * P + p) * Ch + c] = qkv[(size_t)blockIdx.z * P * C3 + r];
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
    if (P64 * 3 * C > 0x7fffffff)
        return edm_cuda_fail(msg, "attention too large (P=%lld, C=%d)", (long long)P64, C);
    const int P = (int)P64;
    const cudaDataType cdt = edm_cuda_dtype(dt);
    const size_t es = edm_cuda_dtype_size(dt);
    /* Scratch per image: Q, K, V; per batch-head S in fp32, plus W in the activation type
     * when that is narrower. */
    const size_t qkv_bytes = (size_t)3 * P * C * es;
    const size_t s_bytes = (size_t)P * P * sizeof(float);
    const size_t w_bytes = dt == EDM_F32 ? 0 : (size_t)P * P * es;
    const size_t per_image = qkv_bytes + (size_t)heads * (s_bytes + w_bytes);
    int64_t chunk = (int64_t)(c->chunk_bytes / per_image);
    if (chunk < 1) chunk = 1;
    if (chunk > N) chunk = N;
    if (chunk > 65535) chunk = 65535; /* grid z */
    char *scr = (char *)edm_cuda_scratch(c, (size_t)chunk * per_image, msg);
    if (!scr) return 1;
    float *S = (float *)scr;
    char *Wt = dt == EDM_F32 ? (char *)S : scr + (size_t)chunk * heads * s_bytes;
    char *Q = scr + (size_t)chunk * heads * (s_bytes + w_bytes);
    const size_t part_len = (size_t)chunk * P * C; /* elements of each of Q, K, V */
    const char *K = Q + part_len * es, *V = Q + 2 * part_len * es;

    /* Logits in fp32: tf32 mode may use TF32 products; fp16/bf16 inputs accumulate in fp32. */
    const cublasComputeType_t compute = c->act_compute;
    const float alpha = (float)(1.0 / sqrt((double)Ch));
    const long long sQ = (long long)P * Ch, sS = (long long)P * P;
    const unsigned th = edm_cuda_row_threads((int64_t)P * 3 * C);
    for (int n0 = 0; n0 < N; n0 += (int)chunk) {
        const int nb = N - n0 < chunk ? N - n0 : (int)chunk;
        const int B = nb * heads;
        EDM_CUDA_DISPATCH(dt, T, {
            EDM_LAUNCH(edm_qkv_repack_kernel<T>, edm_cuda_grid((int64_t)P * 3 * C, th, 1, nb), th,
                       0, c->stream, (T *)Q, (const T *)qkv->data + (size_t)n0 * P * 3 * C, P, C,
                       Ch, part_len);
        });
        if (edm_cuda_check(c, msg, "attention repack")) return 1;
        if (edm_cuda_gemm(c, msg, "attention logits", CUBLAS_OP_T, CUBLAS_OP_N, P, P, Ch, alpha, K,
                          cdt, Ch, sQ, Q, cdt, Ch, sQ, 0.0f, S, CUDA_R_32F, P, sS, B, compute))
            return 1;
        const int64_t rows = (int64_t)B * P;
        const int64_t blocks = (rows + EDM_ATTN_ROWS_PER_BLOCK - 1) / EDM_ATTN_ROWS_PER_BLOCK;
        if (blocks > 0x7fffffff) return edm_cuda_fail(msg, "attention: too many rows");
        EDM_CUDA_DISPATCH(dt, TW, {
            EDM_LAUNCH(edm_softmax_rows_kernel<TW>, (unsigned)blocks, EDM_CUDA_THREADS, 0,
                       c->stream, (TW *)Wt, S, rows, P);
        });
        if (edm_cuda_check(c, msg, "attention softmax")) return 1;
        for (int hd = 0; hd < heads; hd++) {
            char *o = (char *)out->data + ((size_t)n0 * P * C + (size_t)hd * Ch) * es;
            if (edm_cuda_gemm(c, msg, "attention output", CUBLAS_OP_N, CUBLAS_OP_N, Ch, P, P, 1.0f,
                              V + (size_t)hd * sQ * es, cdt, Ch, (long long)heads * sQ,
                              Wt + (size_t)hd * sS * es, cdt, P, (long long)heads * sS, 0.0f, o,
                              cdt, C, (long long)P * C, nb, compute))
                return 1;
        }
    }
    return edm_cuda_check(c, msg, "attention");
}
