/*
 * cuda_conv.cu - conv2d and linear on the CUDA backend, as cuBLAS GEMMs.
 *
 * conv2d (NCHW, stride 1, zero padding), per image n, in the row-major GEMM convention:
 *     out[n] (Co x P) = W (Co x K) . col[n] (K x P),   K = Ci*k*k, P = Ho*Wo
 * where col is the im2col expansion, K index = (ci*k + ky)*k + kx: the PyTorch weight layout,
 * so the weights are used as stored. In cuBLAS's column-major terms that is
 *     out'[n] (P x Co) = col'[n] (P x K) . W' (K x Co)
 * one strided-batched GEMM over the images (weight stride 0). A 1x1 convolution without
 * padding needs no im2col: the input already is col. Batches are cut into chunks so the
 * column buffer stays within the backend's scratch budget.
 *
 * Epilogue: out = (conv + bias[c] + residual) * out_scale. When the residual is out itself
 * (ops.h allows exactly that alias) the GEMM adds it through beta = 1; otherwise a separate
 * element-wise pass adds bias and residual and scales.
 *
 * linear is always fp32 (spec 1.12: the mapping network and affine run in fp32), IEEE
 * (CUBLAS_COMPUTE_32F, no TF32) in every precision: it is tiny next to the convolutions.
 */
#include "cuda_internal.h"

/* col[n][kk][p] for the nb images starting at in, zero outside the image. */
template <typename T>
__global__ void __launch_bounds__(EDM_CUDA_THREADS)
    edm_im2col_kernel(T *__restrict__ col, const T *__restrict__ in, int nb, int Ci, int H, int W,
                      int k, int pad, int Ho, int Wo) {
    const int64_t P = (int64_t)Ho * Wo;
    const int64_t K = (int64_t)Ci * k * k;
    const int64_t total = (int64_t)nb * K * P;
    EDM_CUDA_FOR(idx, total) {
        const int64_t p = idx % P;
        const int64_t r = idx / P;
        const int kk = (int)(r % K);
        const int64_t n = r / K;
        const int x = (int)(p % Wo), y = (int)(p / Wo);
        const int kx = kk % k, t = kk / k;
        const int ky = t % k, ci = t / k;
        const int iy = y + ky - pad, ix = x + kx - pad;
        if (iy >= 0 && iy < H && ix >= 0 && ix < W)
            col[idx] = in[((n * Ci + ci) * H + iy) * W + ix];
        else
            edm_put(&col[idx], 0.0f);
    }
}

/* out = (src + bias[c] + res) * scale over [N, C, P]; res may be NULL, bias may be NULL. */
template <typename T>
__global__ void __launch_bounds__(EDM_CUDA_THREADS)
    edm_conv_epilogue_kernel(T *out, const T *src, const float *__restrict__ bias, const T *res,
                             float scale, int64_t total, int C, int64_t P) {
    EDM_CUDA_FOR(i, total) {
        float v = edm_f(src[i]);
        if (bias) v += bias[(i / P) % C];
        if (res) v += edm_f(res[i]);
        edm_put(&out[i], v * scale);
    }
}

/* linear's epilogue: out[n,o] = act(out[n,o] + b[o]). */
__global__ void __launch_bounds__(EDM_CUDA_THREADS)
    edm_linear_epilogue_kernel(float *out, const float *__restrict__ b, int act_silu, int64_t total,
                               int O) {
    EDM_CUDA_FOR(i, total) {
        float v = out[i];
        if (b) v += b[i % O];
        if (act_silu) v = edm_silu(v);
        out[i] = v;
    }
}

int edm_cuda_conv2d(void *ctx, edm_tensor *out, const edm_tensor *in, const edm_tensor *weight,
                    const edm_tensor *bias, int pad, const edm_tensor *residual, float out_scale,
                    char *msg) {
    edm_cuda *c = (edm_cuda *)ctx;
    edm_cuda_oprec r = edm_cuda_rec(EDM_CUDA_OP_CONV2D, out, in, weight, bias, residual, NULL);
    r.i[0] = pad;
    r.f[0] = out_scale;
    const int route = edm_cuda_op_enter(c, &r, msg);
    if (route) return route < 0; /* recorded for a graph replay, or an error */
    if (edm_cuda_enter(c, msg)) return 1;

    const enum edm_dtype dt = out->dtype;
    if (in->dtype != dt || weight->dtype != dt || (residual && residual->dtype != dt) ||
        (bias && bias->dtype != EDM_F32))
        return edm_cuda_fail(msg,
                             "dtypes: in %s, weight %s, out %s, residual %s, bias %s (in, weight, "
                             "out and residual must match; bias is f32)",
                             edm_cuda_dtype_name(in->dtype), edm_cuda_dtype_name(weight->dtype),
                             edm_cuda_dtype_name(dt),
                             residual ? edm_cuda_dtype_name(residual->dtype) : "-",
                             bias ? edm_cuda_dtype_name(bias->dtype) : "-");
    if (in->data == out->data) return edm_cuda_fail(msg, "in and out must not alias");
    if (residual && residual->data != out->data) {
        /* Partial overlap would be read while the GEMM writes out. */
        const char *r0 = (const char *)residual->data, *o0 = (const char *)out->data;
        size_t bytes = (size_t)edm_tensor_numel(out) * edm_cuda_dtype_size(dt);
        if (r0 < o0 + bytes && o0 < r0 + bytes)
            return edm_cuda_fail(msg, "residual overlaps out without being out");
    }

    const int N = in->n, Ci = in->c, H = in->h, W = in->w;
    const int Co = weight->n, k = weight->h, Ho = out->h, Wo = out->w;
    const int64_t P = (int64_t)Ho * Wo, K = (int64_t)Ci * k * k;
    if (P > 0x7fffffff || K > 0x7fffffff)
        return edm_cuda_fail(msg, "conv2d too large for one GEMM (P=%lld, K=%lld)", (long long)P,
                             (long long)K);
    const cudaDataType cdt = edm_cuda_dtype(dt);
    const size_t es = edm_cuda_dtype_size(dt);
    const int res_is_out = residual && residual->data == out->data;
    const float beta = res_is_out ? 1.0f : 0.0f;

    if (k == 1 && pad == 0) {
        if (edm_cuda_gemm(c, msg, "conv2d 1x1", CUBLAS_OP_N, CUBLAS_OP_N, (int)P, Co, Ci, 1.0f,
                          in->data, cdt, (int)P, (long long)Ci * P, weight->data, cdt, Ci, 0, beta,
                          out->data, cdt, (int)P, (long long)Co * P, N, c->act_compute))
            return 1;
    } else {
        const size_t per_image = (size_t)K * (size_t)P * es;
        int64_t chunk = (int64_t)(c->chunk_bytes / per_image);
        if (chunk < 1) chunk = 1;
        if (chunk > N) chunk = N;
        void *col = edm_cuda_scratch(c, (size_t)chunk * per_image, msg);
        if (!col) return 1;
        for (int n0 = 0; n0 < N; n0 += (int)chunk) {
            const int nb = N - n0 < chunk ? N - n0 : (int)chunk;
            const int64_t total = (int64_t)nb * K * P;
            EDM_CUDA_DISPATCH(dt, T, {
                const T *src = (const T *)in->data + (int64_t)n0 * Ci * H * W;
                EDM_LAUNCH(edm_im2col_kernel<T>, edm_cuda_blocks(c, total), EDM_CUDA_THREADS, 0,
                           c->stream, (T *)col, src, nb, Ci, H, W, k, pad, Ho, Wo);
            });
            if (edm_cuda_check(c, msg, "im2col")) return 1;
            char *dst = (char *)out->data + (size_t)n0 * (size_t)Co * (size_t)P * es;
            if (edm_cuda_gemm(c, msg, "conv2d", CUBLAS_OP_N, CUBLAS_OP_N, (int)P, Co, (int)K, 1.0f,
                              col, cdt, (int)P, (long long)K * P, weight->data, cdt, (int)K, 0,
                              beta, dst, cdt, (int)P, (long long)Co * P, nb, c->act_compute))
                return 1;
        }
    }

    const edm_tensor *res = res_is_out ? NULL : residual;
    if (bias || res || out_scale != 1.0f) {
        const int64_t total = edm_tensor_numel(out);
        const float *bp = bias ? (const float *)bias->data : NULL;
        EDM_CUDA_DISPATCH(dt, T, {
            EDM_LAUNCH(edm_conv_epilogue_kernel<T>, edm_cuda_blocks(c, total), EDM_CUDA_THREADS, 0,
                       c->stream, (T *)out->data, (const T *)out->data, bp,
                       res ? (const T *)res->data : (const T *)NULL, out_scale, total, Co, P);
        });
    }
    return edm_cuda_check(c, msg, "conv2d");
}

int edm_cuda_linear(void *ctx, edm_tensor *out, const edm_tensor *in, const edm_tensor *weight,
                    const edm_tensor *bias, float alpha, float beta, int act_silu, char *msg) {
    edm_cuda *c = (edm_cuda *)ctx;
    edm_cuda_oprec r = edm_cuda_rec(EDM_CUDA_OP_LINEAR, out, in, weight, bias, NULL, NULL);
    r.f[0] = alpha;
    r.f[1] = beta;
    r.i[0] = act_silu;
    const int route = edm_cuda_op_enter(c, &r, msg);
    if (route) return route < 0; /* recorded for a graph replay, or an error */
    if (edm_cuda_enter(c, msg)) return 1;
    if (in->dtype != EDM_F32 || out->dtype != EDM_F32 || weight->dtype != EDM_F32 ||
        (bias && bias->dtype != EDM_F32))
        return edm_cuda_fail(msg, "linear runs in f32: every operand must be f32");
    if (in->data == out->data) return edm_cuda_fail(msg, "in and out must not alias");

    const int N = in->n;
    const int64_t K = (int64_t)in->c * in->h * in->w;
    const int O = weight->n;
    /* Row-major out[N,O] = in[N,K] . W[O,K]^T; column-major out' (O x N) = W'^T (O x K) . in' */
    if (edm_cuda_gemm(c, msg, "linear", CUBLAS_OP_T, CUBLAS_OP_N, O, N, (int)K, alpha, weight->data,
                      CUDA_R_32F, (int)K, 0, in->data, CUDA_R_32F, (int)K, 0, beta, out->data,
                      CUDA_R_32F, O, 0, 1, CUBLAS_COMPUTE_32F))
        return 1;
    if (bias || act_silu) {
        const int64_t total = (int64_t)N * O;
        EDM_LAUNCH(edm_linear_epilogue_kernel, edm_cuda_blocks(c, total), EDM_CUDA_THREADS, 0,
                   c->stream, (float *)out->data, bias ? (const float *)bias->data : (const float *)NULL,
                   act_silu, total, O);
    }
    return edm_cuda_check(c, msg, "linear");
}
