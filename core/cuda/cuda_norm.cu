/*
 * cuda_norm.cu - group_norm on the CUDA backend, fused with pre_add, scale_shift and silu.
 *
 * One block per (sample, group). In NHWC a group is a run of C/G channels in every pixel:
 * item i of the group is channel c0 + i % cpg of pixel i / cpg, so consecutive threads read
 * a pixel's run, then the next pixel's. Groups of up to 8192 values are read once into
 * shared memory (edm_group_norm_smem_kernel); larger ones are read three times: the sum
 * (mean), the sum of squared deviations (biased variance, the two-pass form: no
 * cancellation), then the normalisation and write. The second and third reads mostly hit L2
 * (a CIFAR-10 group is 8 channels x 32x32).
 * Statistics are fp32 whatever the storage type (spec 1.12); out may alias in (each element is
 * read and written by the same thread, after the statistics are complete).
 */
#include "cuda_internal.h"

template <typename T>
__global__ void __launch_bounds__(EDM_CUDA_THREADS)
    edm_group_norm_kernel(T *out, const T *in, const float *__restrict__ gamma,
                          const float *__restrict__ beta, const float *__restrict__ pre_add,
                          const float *__restrict__ scale_shift, int C, int G, int HW, float eps,
                          int act_silu) {
    __shared__ float red[32];
    const int g = (int)(blockIdx.x % (unsigned)G);
    const int n = (int)(blockIdx.x / (unsigned)G);
    const int cpg = C / G;
    const int c0 = g * cpg;
    const int len = cpg * HW; /* 32-bit: the index arithmetic below runs per element */
    const size_t base = (size_t)n * HW * C + c0;
    const float *pre = pre_add ? pre_add + (int64_t)n * C + c0 : NULL;

    float s = 0.0f;
    for (int i = (int)threadIdx.x; i < len; i += (int)blockDim.x) {
        const int px = i / cpg, cl = i - px * cpg;
        float v = edm_f(in[base + (size_t)px * C + cl]);
        if (pre) v += pre[cl];
        s += v;
    }
    const float mean = edm_block_sum(s, red) / (float)len;

    float q = 0.0f;
    for (int i = (int)threadIdx.x; i < len; i += (int)blockDim.x) {
        const int px = i / cpg, cl = i - px * cpg;
        float v = edm_f(in[base + (size_t)px * C + cl]);
        if (pre) v += pre[cl];
        const float d = v - mean;
        q += d * d;
    }
    const float var = edm_block_sum(q, red) / (float)len;
    const float rstd = 1.0f / sqrtf(var + eps);

    const float *scale = scale_shift ? scale_shift + (int64_t)n * 2 * C : NULL;
    for (int i = (int)threadIdx.x; i < len; i += (int)blockDim.x) {
        const int px = i / cpg, cl = i - px * cpg;
        const int ch = c0 + cl;
        float v = edm_f(in[base + (size_t)px * C + cl]);
        if (pre) v += pre[cl];
        float y = (v - mean) * rstd * gamma[ch] + beta[ch];
        if (scale) y = scale[C + ch] + y * (scale[ch] + 1.0f);
        if (act_silu) y = edm_silu(y);
        edm_put(&out[base + (size_t)px * C + cl], y);
    }
}

/* The same for groups of at most EDM_GN_SMEM values (every group of the CIFAR-10 and FFHQ
 * networks): the group is read from memory once into shared memory, so the statistics and the
 * normalisation cost one read and one write instead of three reads and a write. Each thread
 * only ever touches its own entries of vals, so no extra barrier is needed around them. */
#define EDM_GN_SMEM 8192
template <typename T>
__global__ void __launch_bounds__(EDM_CUDA_THREADS)
    edm_group_norm_smem_kernel(T *out, const T *in, const float *__restrict__ gamma,
                               const float *__restrict__ beta, const float *__restrict__ pre_add,
                               const float *__restrict__ scale_shift, int C, int G, int HW,
                               float eps, int act_silu) {
    __shared__ float red[32];
    __shared__ float vals[EDM_GN_SMEM];
    const int g = (int)(blockIdx.x % (unsigned)G);
    const int n = (int)(blockIdx.x / (unsigned)G);
    const int cpg = C / G;
    const int c0 = g * cpg;
    const int len = cpg * HW;
    const size_t base = (size_t)n * HW * C + c0;
    const float *pre = pre_add ? pre_add + (size_t)n * C + c0 : NULL;

    float s = 0.0f;
    for (int i = (int)threadIdx.x; i < len; i += (int)blockDim.x) {
        const int px = i / cpg, cl = i - px * cpg;
        float v = edm_f(in[base + (size_t)px * C + cl]);
        if (pre) v += pre[cl];
        vals[i] = v;
        s += v;
    }
    const float mean = edm_block_sum(s, red) / (float)len;
    float q = 0.0f;
    for (int i = (int)threadIdx.x; i < len; i += (int)blockDim.x) {
        const float d = vals[i] - mean;
        q += d * d;
    }
    const float var = edm_block_sum(q, red) / (float)len;
    const float rstd = 1.0f / sqrtf(var + eps);
    const float *scale = scale_shift ? scale_shift + (size_t)n * 2 * C : NULL;
    for (int i = (int)threadIdx.x; i < len; i += (int)blockDim.x) {
        const int px = i / cpg, cl = i - px * cpg;
        const int ch = c0 + cl;
        float y = (vals[i] - mean) * rstd * gamma[ch] + beta[ch];
        if (scale) y = scale[C + ch] + y * (scale[ch] + 1.0f);
        if (act_silu) y = edm_silu(y);
        edm_put(&out[base + (size_t)px * C + cl], y);
    }
}

int edm_cuda_group_norm(void *ctx, edm_tensor *out, const edm_tensor *in, const edm_tensor *gamma,
                        const edm_tensor *beta, int groups, float eps, const edm_tensor *pre_add,
                        const edm_tensor *scale_shift, int act_silu, char *msg) {
    edm_cuda *c = (edm_cuda *)ctx;
    edm_cuda_oprec r = edm_cuda_rec(EDM_CUDA_OP_GROUP_NORM, out, in, gamma, beta, pre_add, scale_shift);
    r.i[0] = groups;
    r.f[0] = eps;
    r.i[1] = act_silu;
    const int route = edm_cuda_op_enter(c, &r, msg);
    if (route) return route < 0; /* recorded for a graph replay, or an error */
    if (edm_cuda_enter(c, msg)) return 1;

    if (in->dtype != out->dtype || gamma->dtype != EDM_F32 || beta->dtype != EDM_F32 ||
        (pre_add && pre_add->dtype != EDM_F32) || (scale_shift && scale_shift->dtype != EDM_F32))
        return edm_cuda_fail(msg,
                             "dtypes: in %s, out %s (must match); gamma, beta, pre_add and "
                             "scale_shift must be f32",
                             edm_cuda_dtype_name(in->dtype), edm_cuda_dtype_name(out->dtype));
    const int N = in->n, C = in->c;
    const int HW = in->h * in->w;
    const int64_t blocks = (int64_t)N * groups;
    if (blocks > 0x7fffffff || (int64_t)C * HW > 0x7fffffff)
        return edm_cuda_fail(msg, "group_norm too large (%lld groups, %d x %d per image)",
                             (long long)blocks, C, HW);
    const float *pa = pre_add ? (const float *)pre_add->data : NULL;
    const float *ss = scale_shift ? (const float *)scale_shift->data : NULL;
    const int small = (int64_t)(C / groups) * HW <= EDM_GN_SMEM;
    EDM_CUDA_DISPATCH(out->dtype, T, {
        if (small)
            EDM_LAUNCH(edm_group_norm_smem_kernel<T>, (unsigned)blocks, EDM_CUDA_THREADS, 0,
                       c->stream, (T *)out->data, (const T *)in->data, (const float *)gamma->data,
                       (const float *)beta->data, pa, ss, C, groups, HW, eps, act_silu);
        else
            EDM_LAUNCH(edm_group_norm_kernel<T>, (unsigned)blocks, EDM_CUDA_THREADS, 0, c->stream,
                       (T *)out->data, (const T *)in->data, (const float *)gamma->data,
                       (const float *)beta->data, pa, ss, C, groups, HW, eps, act_silu);
    });
    return edm_cuda_check(c, msg, "group_norm");
}
