/*
 * cuda_layout.cu - the CUDA backend's memory orders: activations are channels-last (NHWC,
 * ops.h "Layouts"), conv weights are used as [Co][ky][kx][Ci] (OHWI).
 *
 * Why channels-last: the channels of a pixel are contiguous, so a 3x3 convolution's im2col
 * copies whole runs of channels (coalesced reads and writes), a 1x1 convolution is one GEMM
 * over every pixel of the batch with no expansion at all, and cuDNN's tensor-core
 * convolutions take the tensors as they are (they want NHWC data and KRSC filters; NCHW
 * costs them a transpose each way).
 *
 * Activations: the host side is NCHW fp32 (edm_op_upload_act / edm_op_download_act); the
 * transfer goes through the staging buffer and one transpose kernel that also converts the
 * dtype. Conv weights arrive in the model file's OIHW order and are rearranged once, on
 * first use, into a copy cached by the address of the original (a 1x1 kernel is the same in
 * both orders and is used as stored). cuda_upload drops cached copies of memory it
 * overwrites; cuda_free drops them all (an allocation's extent is not known, and frees are
 * rare: they already forget every learned graph).
 */
#include <stdlib.h>
#include <string.h>

#include "cuda_internal.h"

/* NCHW <-> NHWC, image by image: to_nhwc dst[n][p][c] = src[n][c][p], else the inverse;
 * any dtypes. One thread per element, numbered in the destination's order (coalesced
 * writes; the reads are strided, and these run once per forward pass at most). */
__global__ void __launch_bounds__(EDM_CUDA_THREADS)
    edm_act_transpose_kernel(void *dst, int ddt, const void *src, int sdt, int C, int P,
                             int to_nhwc, int n0) {
    const int r = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    if (r >= C * P) return;
    const int64_t base = (int64_t)(n0 + blockIdx.z) * C * P;
    int from;
    if (to_nhwc) {
        const int p = r / C, c = r - p * C;
        from = c * P + p;
    } else {
        const int c = r / P, p = r - c * P;
        from = p * C + c;
    }
    edm_st(dst, ddt, base + r, edm_ld(src, sdt, base + from));
}

int edm_cuda_act_transpose(edm_cuda *c, char *msg, void *dst, enum edm_dtype dt, const void *src,
                           enum edm_dtype st, int N, int C, int P, int to_nhwc) {
    if ((int64_t)C * P > 0x7fffffff)
        return edm_cuda_fail(msg, "activation too large to transpose (%d x %d)", C, P);
    const unsigned th = edm_cuda_row_threads((int64_t)C * P);
    edm_cuda_for_images(N, [&](int n0, int nz) {
        EDM_LAUNCH(edm_act_transpose_kernel, edm_cuda_grid((int64_t)C * P, th, 1, nz), th, 0,
                   c->stream, dst, (int)dt, src, (int)st, C, P, to_nhwc, n0);
    });
    return edm_cuda_check(c, msg, "activation transpose");
}

/* dst[co][ky][kx][ci] = src[co][ci][ky][kx]: one thread per element of dst. */
template <typename T>
__global__ void __launch_bounds__(EDM_CUDA_THREADS)
    edm_weight_ohwi_kernel(T *__restrict__ dst, const T *__restrict__ src, int Ci, int kk,
                           int64_t total) {
    EDM_CUDA_FOR(i, total) {
        const int64_t co = i / ((int64_t)kk * Ci);
        const int r = (int)(i - co * kk * Ci);
        const int tap = r / Ci, ci = r - tap * Ci;
        dst[i] = src[(co * Ci + ci) * kk + tap];
    }
}

const void *edm_cuda_weight_ohwi(edm_cuda *c, const edm_tensor *w, char *msg) {
    if (w->h == 1 && w->w == 1) return w->data; /* a 1x1 kernel: OIHW is OHWI */
    for (int i = 0; i < c->nweights; i++) {
        const edm_cuda_weight *e = &c->weights[i];
        if (e->key == w->data && e->dtype == w->dtype && e->n == w->n && e->c == w->c &&
            e->k == w->h)
            return e->data;
    }
    /* Memory cannot be allocated during a capture: run what it holds, go on eagerly. A
     * capture only meets weights its learning pass cached, unless a free dropped them. */
    if (c->fwd_active && c->fwd_mode == EDM_CUDA_CAPTURE && edm_cuda_fwd_cut(c, msg, 0))
        return NULL;
    if (c->nweights == c->capweights) {
        const int cap = c->capweights ? 2 * c->capweights : 64;
        edm_cuda_weight *nw =
            (edm_cuda_weight *)realloc(c->weights, (size_t)cap * sizeof *c->weights);
        if (!nw) {
            edm_cuda_fail(msg, "out of host memory caching rearranged conv weights");
            return NULL;
        }
        c->weights = nw;
        c->capweights = cap;
    }
    const int64_t total = edm_tensor_numel(w);
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, (size_t)total * edm_cuda_dtype_size(w->dtype));
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        edm_cuda_fail(msg, "out of device memory: rearranged conv weights [%d,%d,%d,%d] (%s)",
                      w->n, w->c, w->h, w->w, cudaGetErrorString(e));
        return NULL;
    }
    EDM_CUDA_DISPATCH(w->dtype, T, {
        EDM_LAUNCH(edm_weight_ohwi_kernel<T>, edm_cuda_blocks(c, total), EDM_CUDA_THREADS, 0,
                   c->stream, (T *)p, (const T *)w->data, w->c, w->h * w->w, total);
    });
    if (edm_cuda_check(c, msg, "conv weight rearrangement")) {
        cudaFree(p);
        return NULL;
    }
    edm_cuda_weight *ent = &c->weights[c->nweights++];
    ent->key = w->data;
    ent->dtype = w->dtype;
    ent->n = w->n;
    ent->c = w->c;
    ent->k = w->h;
    ent->bytes = (size_t)total * edm_cuda_dtype_size(w->dtype);
    ent->data = p;
    return p;
}

void edm_cuda_weights_forget(edm_cuda *c, const void *ptr, size_t bytes) {
    const char *lo = (const char *)ptr, *hi = lo + bytes;
    int dropped = 0;
    for (int i = 0; i < c->nweights;) {
        const char *k = (const char *)c->weights[i].key;
        if (!ptr || (k < hi && k + c->weights[i].bytes > lo)) {
            /* The copy may still be read by queued kernels: cudaFree waits for the device. */
            cudaFree(c->weights[i].data);
            c->weights[i] = c->weights[--c->nweights];
            dropped = 1;
        } else {
            i++;
        }
    }
    (void)cudaGetLastError();
    /* Captured graphs read the copies by address: none may outlive one. */
    if (dropped) edm_cuda_graphs_invalidate(c);
}

void edm_cuda_weights_free(edm_cuda *c) {
    edm_cuda_weights_forget(c, NULL, 0);
    free(c->weights);
    c->weights = NULL;
    c->capweights = 0;
}
