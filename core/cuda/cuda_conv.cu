/*
 * cuda_conv.cu - conv2d and linear on the CUDA backend, as cuBLAS GEMMs.
 *
 * conv2d (NHWC activations, stride 1, zero padding), in the row-major GEMM convention with
 * every output pixel of the batch as a row:
 *     out (N*P x Co) = col (N*P x K) . Wr^T (K x Co),   K = k*k*Ci, P = Ho*Wo
 * where Wr is the weight rearranged to [Co][ky][kx][Ci] (cuda_layout.cu) and col the im2col
 * expansion with K index (ky*k + kx)*Ci + ci: each tap copies a pixel's whole run of
 * channels. In cuBLAS's column-major terms that is one GEMM
 *     out' (Co x N*P) = Wr' (K x Co)^T . col' (K x N*P),   every leading dimension K or Co.
 * A 1x1 convolution without padding needs no im2col: the input already is col (K = Ci). The
 * batch is cut into chunks of images so the column buffer stays within the scratch budget.
 *
 * Epilogue: out = (conv + bias[c] + residual) * out_scale. When the residual is out itself
 * (ops.h allows exactly that alias) the GEMM adds it through beta = 1; otherwise a separate
 * element-wise pass adds bias and residual and scales (edm_cuda_epilogue, bias_residual's).
 *
 * Where cuDNN is loaded (cuda_cudnn.cu: tf32/fp16/bf16), k > 1 convolutions go through its
 * implicit-GEMM kernels instead of im2col + GEMM, on the same NHWC tensors and OHWI weights,
 * with the same beta and epilogue.
 *
 * linear is always fp32 (spec 1.12: the mapping network and affine run in fp32), IEEE
 * (CUBLAS_COMPUTE_32F, no TF32) in every precision: it is tiny next to the convolutions.
 */
#include "cuda_internal.h"

/* col[(n*P + p)*K + tap*Ci + ci] for the images of one chunk, tap = ky*k + kx: one thread per
 * (output pixel, channel) and tap, zero outside the image; reads and writes run along the
 * channels. 32-bit index arithmetic within an image. grid: x = P*Ci, y = tap, z = image. */
template <typename T>
__global__ void __launch_bounds__(EDM_CUDA_THREADS)
    edm_im2col_nhwc_kernel(T *__restrict__ col, const T *__restrict__ in, int Ci, int H, int W,
                           int k, int pad, int Wo, int PCi) {
    const int r = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    if (r >= PCi) return;
    const int tap = (int)blockIdx.y;
    const int p = r / Ci, ci = r - p * Ci;
    const int y = p / Wo, x = p - y * Wo;
    const int iy = y + tap / k - pad, ix = x + tap % k - pad;
    const int kk = k * k;
    T v;
    if (iy >= 0 && iy < H && ix >= 0 && ix < W)
        v = in[(size_t)blockIdx.z * H * W * Ci + ((size_t)iy * W + ix) * Ci + ci];
    else
        edm_put(&v, 0.0f);
    col[((size_t)blockIdx.z * (PCi / Ci) + p) * kk * Ci + (size_t)tap * Ci + ci] = v;
}

/* linear's epilogue: out[n,o] = act(out[n,o] + b[o]). grid: x = o, z = n. */
__global__ void __launch_bounds__(EDM_CUDA_THREADS)
    edm_linear_epilogue_kernel(float *out, const float *__restrict__ b, int act_silu, int O, int n0) {
    const int o = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    if (o >= O) return;
    const size_t i = (size_t)(n0 + blockIdx.z) * O + o;
    float v = out[i];
    if (b) v += b[o];
    if (act_silu) v = edm_silu(v);
    out[i] = v;
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
    if (P * Ci > 0x7fffffff || P * Co > 0x7fffffff || K > 0x7fffffff || (int64_t)H * W * Ci > 0x7fffffff ||
        (int64_t)N * P > 0x7fffffff)
        return edm_cuda_fail(msg, "conv2d too large (N=%d, P=%lld, K=%lld, Ci=%d, Co=%d)", N,
                             (long long)P, (long long)K, Ci, Co);
    const cudaDataType cdt = edm_cuda_dtype(dt);
    const size_t es = edm_cuda_dtype_size(dt);
    const int res_is_out = residual && residual->data == out->data;
    const float beta = res_is_out ? 1.0f : 0.0f;
    const void *wr = edm_cuda_weight_ohwi(c, weight, msg);
    if (!wr) return 1;

    int done = 0;
    if (c->dnn && !(k == 1 && pad == 0)) { /* 1x1 convolutions are plain GEMMs already */
        const int r = edm_cudnn_conv(c, out, in, wr, weight, pad, beta, msg);
        if (r == 1) return 1;
        done = r == 0;
    }
    if (done) {
        /* cuDNN computed out = conv + beta*out */
    } else if (k == 1 && pad == 0) {
        if (edm_cuda_gemm(c, msg, "conv2d 1x1", CUBLAS_OP_T, CUBLAS_OP_N, Co, (int)(N * P), Ci,
                          1.0f, wr, cdt, Ci, 0, in->data, cdt, Ci, 0, beta, out->data, cdt, Co, 0,
                          1, c->act_compute))
            return 1;
    } else {
        const size_t per_image = (size_t)K * (size_t)P * es;
        int64_t chunk = (int64_t)(c->chunk_bytes / per_image);
        if (chunk < 1) chunk = 1;
        if (chunk > N) chunk = N;
        if (chunk > 65535) chunk = 65535; /* grid z */
        void *col = edm_cuda_scratch(c, (size_t)chunk * per_image, msg);
        if (!col) return 1;
        const int PCi = (int)(P * Ci);
        const unsigned th = edm_cuda_row_threads(PCi);
        for (int n0 = 0; n0 < N; n0 += (int)chunk) {
            const int nb = N - n0 < chunk ? N - n0 : (int)chunk;
            EDM_CUDA_DISPATCH(dt, T, {
                const T *src = (const T *)in->data + (int64_t)n0 * H * W * Ci;
                EDM_LAUNCH(edm_im2col_nhwc_kernel<T>, edm_cuda_grid(PCi, th, (unsigned)(k * k), nb),
                           th, 0, c->stream, (T *)col, src, Ci, H, W, k, pad, Wo, PCi);
            });
            if (edm_cuda_check(c, msg, "im2col")) return 1;
            char *dst = (char *)out->data + (size_t)n0 * (size_t)P * (size_t)Co * es;
            if (edm_cuda_gemm(c, msg, "conv2d", CUBLAS_OP_T, CUBLAS_OP_N, Co, (int)(nb * P),
                              (int)K, 1.0f, wr, cdt, (int)K, 0, col, cdt, (int)K, 0, beta, dst,
                              cdt, Co, 0, 1, c->act_compute))
                return 1;
        }
    }

    const edm_tensor *res = res_is_out ? NULL : residual;
    if ((bias || res || out_scale != 1.0f) &&
        edm_cuda_epilogue(c, msg, out, out, bias ? (const float *)bias->data : NULL, res,
                          out_scale))
        return 1;
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
        const unsigned th = edm_cuda_row_threads(O);
        const float *bp = bias ? (const float *)bias->data : (const float *)NULL;
        edm_cuda_for_images(N, [&](int n0, int nz) {
            EDM_LAUNCH(edm_linear_epilogue_kernel, edm_cuda_grid(O, th, 1, nz), th, 0, c->stream,
                       (float *)out->data, bp, act_silu, O, n0);
        });
    }
    return edm_cuda_check(c, msg, "linear");
}
