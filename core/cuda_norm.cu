/*
 * cuda_norm.cu - group_norm on the CUDA backend, fused with pre_add, scale_shift and silu.
 *
 * One block per (sample, group). A group is contiguous in NCHW ((C/G)*H*W values), so the
 * block reads it with coalesced loads three times: the sum (mean), the sum of squared
 * deviations (biased variance, the two-pass form: no cancellation), then the normalisation
 * and write. The second and third reads mostly hit L2 (a CIFAR-10 group is 8 channels x 32x32).
 * Statistics are fp32 whatever the storage type (spec 1.12); out may alias in (each element is
 * read and written by the same thread, after the statistics are complete).
 */
#include "cuda_internal.h"

template <typename T>
__global__ void __launch_bounds__(EDM_CUDA_THREADS)
    edm_group_norm_kernel(T *out, const T *in, const float *__restrict__ gamma,
                          const float *__restrict__ beta, const float *__restrict__ pre_add,
                          const float *__restrict__ scale_shift, int C, int G, int64_t HW,
                          float eps, int act_silu) {
    __shared__ float red[32];
    const int g = (int)(blockIdx.x % (unsigned)G);
    const int n = (int)(blockIdx.x / (unsigned)G);
    const int cpg = C / G;
    const int c0 = g * cpg;
    const int64_t len = (int64_t)cpg * HW;
    const int64_t base = ((int64_t)n * C + c0) * HW;
    const float *pre = pre_add ? pre_add + (int64_t)n * C + c0 : NULL;

    float s = 0.0f;
    for (int64_t i = threadIdx.x; i < len; i += blockDim.x) {
        float v = edm_f(in[base + i]);
        if (pre) v += pre[i / HW];
        s += v;
    }
    const float mean = edm_block_sum(s, red) / (float)len;

    float q = 0.0f;
    for (int64_t i = threadIdx.x; i < len; i += blockDim.x) {
        float v = edm_f(in[base + i]);
        if (pre) v += pre[i / HW];
        const float d = v - mean;
        q += d * d;
    }
    const float var = edm_block_sum(q, red) / (float)len;
    const float rstd = 1.0f / sqrtf(var + eps);

    const float *scale = scale_shift ? scale_shift + (int64_t)n * 2 * C : NULL;
    for (int64_t i = threadIdx.x; i < len; i += blockDim.x) {
        const int cl = (int)(i / HW);
        const int ch = c0 + cl;
        float v = edm_f(in[base + i]);
        if (pre) v += pre[cl];
        float y = (v - mean) * rstd * gamma[ch] + beta[ch];
        if (scale) y = scale[C + ch] + y * (scale[ch] + 1.0f);
        if (act_silu) y = edm_silu(y);
        edm_put(&out[base + i], y);
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
    const int64_t HW = (int64_t)in->h * in->w;
    const int64_t blocks = (int64_t)N * groups;
    if (blocks > 0x7fffffff) return edm_cuda_fail(msg, "too many groups (%lld)", (long long)blocks);
    const float *pa = pre_add ? (const float *)pre_add->data : NULL;
    const float *ss = scale_shift ? (const float *)scale_shift->data : NULL;
    EDM_CUDA_DISPATCH(out->dtype, T, {
        EDM_LAUNCH(edm_group_norm_kernel<T>, (unsigned)blocks, EDM_CUDA_THREADS, 0, c->stream,
                   (T *)out->data, (const T *)in->data, (const float *)gamma->data,
                   (const float *)beta->data, pa, ss, C, groups, HW, eps, act_silu);
    });
    return edm_cuda_check(c, msg, "group_norm");
}
