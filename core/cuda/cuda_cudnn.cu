/*
 * cuda_cudnn.cu - convolutions through cuDNN when libcudnn.so.9 can be loaded at run time.
 *
 * Why: im2col + GEMM writes and reads every input 9 times for a 3x3 convolution; cuDNN's
 * implicit-GEMM kernels read it once, on the tensor cores. cuDNN is optional and found with
 * dlopen, so the build and the binary need no cuDNN. It is opt-in (EDM_CUDA_CONV=cudnn, where a
 * missing cuDNN is an error at backend creation): on an H200 (bench/GPU_RESULTS.md) its fp16
 * network ran 125 img/s at batch 64 but 27 img/s at batch 512 and 6.6 ms per evaluation at
 * batch 1, against 107 img/s and 2.9 ms through im2col + cuBLAS (cuda_conv.cu), the default.
 * Where cuDNN refuses a shape, conv2d falls back to im2col as well.
 *
 * Design notes
 *  - Only the legacy convolution API (cuDNN 9 keeps it): y = alpha*conv(x, w) + beta*y on
 *    the backend's NHWC tensors with the OHWI (KRSC) copy of the weights, the formats its
 *    tensor-core kernels read without transposes; cross-correlation, stride 1, zero padding. Bias, a separate residual and
 *    out_scale stay in the conv epilogue kernel; a residual that is the output itself is
 *    beta = 1, as on the GEMM path.
 *  - Precisions: fp32 never uses cuDNN (the conformance path stays IEEE fp32 GEMMs, with no
 *    doubt about TF32 kernels); tf32 = float data with tensor-op math; fp16/bf16 = half/bf16
 *    data, fp32 accumulation (compute type float), tensor-op math.
 *  - One descriptor set and algorithm per shape (batch, channels, size, kernel, padding,
 *    dtype), chosen once by cuDNN's heuristics (no benchmarking) and cached; the workspace
 *    comes from the backend's scratch buffer.
 *  - Types and signatures come from cudnn.h when the compiler finds it (the function pointer
 *    types are then exact); otherwise from the small declaration block below (the ABI of
 *    cuDNN 9: enums are ints, handles are opaque pointers), which the simulator also uses.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_internal.h"

#if !defined(EDM_CUDA_SIM)
#include <dlfcn.h>
#endif

#if !defined(EDM_CUDA_SIM) && defined(__has_include)
#if __has_include(<cudnn.h>)
#include <cudnn.h>
#define EDM_HAVE_CUDNN_H 1
#endif
#endif

#ifndef EDM_HAVE_CUDNN_H
/* The cuDNN 9 subset used here, as in cudnn_graph.h / cudnn_ops.h / cudnn_cnn.h. */
extern "C" {
typedef int cudnnStatus_t;
typedef int cudnnDataType_t;
typedef int cudnnTensorFormat_t;
typedef int cudnnConvolutionMode_t;
typedef int cudnnMathType_t;
typedef int cudnnConvolutionFwdAlgo_t;
typedef int cudnnDeterminism_t;
typedef struct cudnnContext *cudnnHandle_t;
typedef struct cudnnTensorStruct *cudnnTensorDescriptor_t;
typedef struct cudnnFilterStruct *cudnnFilterDescriptor_t;
typedef struct cudnnConvolutionStruct *cudnnConvolutionDescriptor_t;
typedef struct cudnnConvolutionFwdAlgoPerfStruct {
    cudnnConvolutionFwdAlgo_t algo;
    cudnnStatus_t status;
    float time;
    size_t memory;
    cudnnDeterminism_t determinism;
    cudnnMathType_t mathType;
    int reserved[3];
} cudnnConvolutionFwdAlgoPerf_t;
#define CUDNN_STATUS_SUCCESS 0
#define CUDNN_DATA_FLOAT 0
#define CUDNN_DATA_HALF 2
#define CUDNN_DATA_BFLOAT16 9
#define CUDNN_TENSOR_NCHW 0
#define CUDNN_TENSOR_NHWC 1
#define CUDNN_CROSS_CORRELATION 1
#define CUDNN_DEFAULT_MATH 0
#define CUDNN_TENSOR_OP_MATH 1
#define CUDNN_FMA_MATH 3
size_t cudnnGetVersion(void);
const char *cudnnGetErrorString(cudnnStatus_t status);
cudnnStatus_t cudnnCreate(cudnnHandle_t *handle);
cudnnStatus_t cudnnDestroy(cudnnHandle_t handle);
cudnnStatus_t cudnnSetStream(cudnnHandle_t handle, cudaStream_t stream);
cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t *d);
cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t d);
cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t d, cudnnTensorFormat_t format,
                                         cudnnDataType_t dataType, int n, int c, int h, int w);
cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t *d);
cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t d);
cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t d, cudnnDataType_t dataType,
                                         cudnnTensorFormat_t format, int k, int c, int h, int w);
cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t *d);
cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t d);
cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t d, int pad_h, int pad_w,
                                              int u, int v, int dilation_h, int dilation_w,
                                              cudnnConvolutionMode_t mode,
                                              cudnnDataType_t computeType);
cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t d, cudnnMathType_t m);
cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t srcDesc,
    const cudnnFilterDescriptor_t filterDesc, const cudnnConvolutionDescriptor_t convDesc,
    const cudnnTensorDescriptor_t destDesc, const int requestedAlgoCount, int *returnedAlgoCount,
    cudnnConvolutionFwdAlgoPerf_t *perfResults);
cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc, const cudnnFilterDescriptor_t wDesc,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnTensorDescriptor_t yDesc,
    cudnnConvolutionFwdAlgo_t algo, size_t *sizeInBytes);
cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t handle, const void *alpha,
                                      const cudnnTensorDescriptor_t xDesc, const void *x,
                                      const cudnnFilterDescriptor_t wDesc, const void *w,
                                      const cudnnConvolutionDescriptor_t convDesc,
                                      cudnnConvolutionFwdAlgo_t algo, void *workSpace,
                                      size_t workSpaceSizeInBytes, const void *beta,
                                      const cudnnTensorDescriptor_t yDesc, void *y);
}
#endif

#ifdef EDM_CUDA_SIM
#include "cudnn_sim.h"
#endif

#define DNN_FN(name) decltype(&::name) name
struct edm_dnn_api {
    DNN_FN(cudnnGetVersion);
    DNN_FN(cudnnGetErrorString);
    DNN_FN(cudnnCreate);
    DNN_FN(cudnnDestroy);
    DNN_FN(cudnnSetStream);
    DNN_FN(cudnnCreateTensorDescriptor);
    DNN_FN(cudnnDestroyTensorDescriptor);
    DNN_FN(cudnnSetTensor4dDescriptor);
    DNN_FN(cudnnCreateFilterDescriptor);
    DNN_FN(cudnnDestroyFilterDescriptor);
    DNN_FN(cudnnSetFilter4dDescriptor);
    DNN_FN(cudnnCreateConvolutionDescriptor);
    DNN_FN(cudnnDestroyConvolutionDescriptor);
    DNN_FN(cudnnSetConvolution2dDescriptor);
    DNN_FN(cudnnSetConvolutionMathType);
    DNN_FN(cudnnGetConvolutionForwardAlgorithm_v7);
    DNN_FN(cudnnGetConvolutionForwardWorkspaceSize);
    DNN_FN(cudnnConvolutionForward);
};
#undef DNN_FN

#define DNN_CACHE 96

/* One convolution shape: descriptors, algorithm, workspace. */
typedef struct dnn_entry {
    int key[8]; /* N, Ci, H, W, Co, k, pad, dtype; key[0] == 0: free */
    int ok;     /* 0: cuDNN refused this shape, use im2col */
    cudnnTensorDescriptor_t x, y;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
    cudnnConvolutionFwdAlgo_t algo;
    size_t ws;
    uint64_t used;
} dnn_entry;

struct edm_cudnn {
    void *lib;
    edm_dnn_api api;
    cudnnHandle_t handle;
    dnn_entry e[DNN_CACHE];
    uint64_t clock;
};

static void entry_clear(edm_cudnn *d, dnn_entry *e) {
    if (e->x) d->api.cudnnDestroyTensorDescriptor(e->x);
    if (e->y) d->api.cudnnDestroyTensorDescriptor(e->y);
    if (e->w) d->api.cudnnDestroyFilterDescriptor(e->w);
    if (e->conv) d->api.cudnnDestroyConvolutionDescriptor(e->conv);
    memset(e, 0, sizeof *e);
}

void edm_cudnn_free(edm_cuda *c) {
    edm_cudnn *d = c->dnn;
    if (!d) return;
    for (int i = 0; i < DNN_CACHE; i++) entry_clear(d, &d->e[i]);
    if (d->handle) d->api.cudnnDestroy(d->handle);
#ifndef EDM_CUDA_SIM
    /* The library stays loaded: cuDNN keeps process-wide state, and unloading buys nothing. */
#endif
    free(d);
    c->dnn = NULL;
}

/* Loads cuDNN and makes a handle on the backend's stream. Returns 0, or 1 with why set. */
static int dnn_load(edm_cuda *c, char *why, size_t why_len) {
    edm_cudnn *d = (edm_cudnn *)calloc(1, sizeof *d);
    if (!d) {
        snprintf(why, why_len, "out of host memory");
        return 1;
    }
#ifdef EDM_CUDA_SIM
    if (sim_cudnn_missing()) {
        snprintf(why, why_len, "libcudnn.so.9 not found (simulated)");
        free(d);
        return 1;
    }
#define DNN_GET(name) d->api.name = &::name
#else
    const char *env_path = getenv("EDM_CUDNN_PATH");
    const char *const names[] = {env_path, "libcudnn.so.9", "/usr/local/cuda/lib64/libcudnn.so.9",
                                 "/usr/local/cuda/lib/libcudnn.so.9", "libcudnn.so"};
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !d->lib; i++)
        if (names[i] && *names[i]) d->lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!d->lib) {
        const char *e = dlerror();
        snprintf(why, why_len, "libcudnn.so.9 not found (%.120s)", e ? e : "dlopen failed");
        free(d);
        return 1;
    }
    int missing = 0;
#define DNN_GET(name)                                                                              \
    do {                                                                                           \
        d->api.name = (decltype(d->api.name))dlsym(d->lib, #name);                                 \
        if (!d->api.name && !missing) {                                                            \
            missing = 1;                                                                           \
            snprintf(why, why_len, "libcudnn.so.9 has no %s", #name);                              \
        }                                                                                          \
    } while (0)
#endif
    DNN_GET(cudnnGetVersion);
    DNN_GET(cudnnGetErrorString);
    DNN_GET(cudnnCreate);
    DNN_GET(cudnnDestroy);
    DNN_GET(cudnnSetStream);
    DNN_GET(cudnnCreateTensorDescriptor);
    DNN_GET(cudnnDestroyTensorDescriptor);
    DNN_GET(cudnnSetTensor4dDescriptor);
    DNN_GET(cudnnCreateFilterDescriptor);
    DNN_GET(cudnnDestroyFilterDescriptor);
    DNN_GET(cudnnSetFilter4dDescriptor);
    DNN_GET(cudnnCreateConvolutionDescriptor);
    DNN_GET(cudnnDestroyConvolutionDescriptor);
    DNN_GET(cudnnSetConvolution2dDescriptor);
    DNN_GET(cudnnSetConvolutionMathType);
    DNN_GET(cudnnGetConvolutionForwardAlgorithm_v7);
    DNN_GET(cudnnGetConvolutionForwardWorkspaceSize);
    DNN_GET(cudnnConvolutionForward);
#undef DNN_GET
#ifndef EDM_CUDA_SIM
    if (missing) {
        free(d);
        return 1;
    }
#endif
    size_t ver = d->api.cudnnGetVersion();
    if (ver < 90000) {
        snprintf(why, why_len, "cuDNN %zu is older than 9.0", ver);
        free(d);
        return 1;
    }
    cudnnStatus_t st = d->api.cudnnCreate(&d->handle);
    if (st != CUDNN_STATUS_SUCCESS) {
        snprintf(why, why_len, "cudnnCreate: %s", d->api.cudnnGetErrorString(st));
        (void)cudaGetLastError();
        free(d);
        return 1;
    }
    st = d->api.cudnnSetStream(d->handle, c->stream);
    if (st != CUDNN_STATUS_SUCCESS) {
        snprintf(why, why_len, "cudnnSetStream: %s", d->api.cudnnGetErrorString(st));
        d->api.cudnnDestroy(d->handle);
        free(d);
        return 1;
    }
    c->dnn = d;
    snprintf(c->conv_impl, sizeof c->conv_impl, "cudnn %zu.%zu", ver / 10000, ver / 100 % 100);
    return 0;
}

int edm_cudnn_init(edm_cuda *c, char *why, size_t why_len) {
    const char *mode = getenv("EDM_CUDA_CONV");
    snprintf(c->conv_impl, sizeof c->conv_impl, "im2col+cublas");
    why[0] = '\0';
    if (!mode || strcmp(mode, "cudnn") != 0) return 0; /* opt-in: see the note at the top */
    if (c->precision == EDM_PRECISION_FP32) return 0; /* IEEE GEMMs, see above */
    return dnn_load(c, why, why_len) ? 1 : 0;
}

static dnn_entry *entry_get(edm_cuda *c, const int key[8], char *msg, int *err) {
    edm_cudnn *d = c->dnn;
    *err = 0;
    dnn_entry *lru = &d->e[0];
    for (int i = 0; i < DNN_CACHE; i++) {
        dnn_entry *e = &d->e[i];
        if (e->key[0] && memcmp(e->key, key, sizeof e->key) == 0) {
            e->used = ++d->clock;
            return e;
        }
        if (e->used < lru->used) lru = e;
    }
    /* A new shape: descriptors and the heuristics' first algorithm that fits. Never during a
     * capture (cuDNN may allocate); a capture reaches only shapes its learning pass saw, unless
     * the cache was evicted in between, and then the capture is cut first. */
    if (c->fwd_active && c->fwd_mode == EDM_CUDA_CAPTURE && edm_cuda_fwd_cut(c, msg, 0)) {
        *err = 1;
        return NULL;
    }
    dnn_entry *e = lru;
    entry_clear(d, e);
    memcpy(e->key, key, sizeof e->key);
    e->used = ++d->clock;
    const int N = key[0], Ci = key[1], H = key[2], W = key[3], Co = key[4], k = key[5],
              pad = key[6];
    const int Ho = H + 2 * pad - k + 1, Wo = W + 2 * pad - k + 1;
    const enum edm_dtype dt = (enum edm_dtype)key[7];
    const cudnnDataType_t ddt = dt == EDM_F16    ? CUDNN_DATA_HALF
                                : dt == EDM_BF16 ? CUDNN_DATA_BFLOAT16
                                                 : CUDNN_DATA_FLOAT;
    const cudnnMathType_t math = CUDNN_TENSOR_OP_MATH; /* tf32 for float, fp16/bf16 tensor cores */
    const edm_dnn_api *a = &d->api;
    cudnnConvolutionFwdAlgoPerf_t perf[8];
    int got = 0;
    if (a->cudnnCreateTensorDescriptor(&e->x) || a->cudnnCreateTensorDescriptor(&e->y) ||
        a->cudnnCreateFilterDescriptor(&e->w) || a->cudnnCreateConvolutionDescriptor(&e->conv) ||
        a->cudnnSetTensor4dDescriptor(e->x, CUDNN_TENSOR_NHWC, ddt, N, Ci, H, W) ||
        a->cudnnSetTensor4dDescriptor(e->y, CUDNN_TENSOR_NHWC, ddt, N, Co, Ho, Wo) ||
        a->cudnnSetFilter4dDescriptor(e->w, ddt, CUDNN_TENSOR_NHWC, Co, Ci, k, k) ||
        a->cudnnSetConvolution2dDescriptor(e->conv, pad, pad, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION,
                                           CUDNN_DATA_FLOAT) ||
        a->cudnnSetConvolutionMathType(e->conv, math) ||
        a->cudnnGetConvolutionForwardAlgorithm_v7(d->handle, e->x, e->w, e->conv, e->y, 8, &got,
                                                  perf)) {
        (void)cudaGetLastError();
        return e; /* ok = 0: this shape uses im2col */
    }
    for (int i = 0; i < got && !e->ok; i++) {
        if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].memory > c->chunk_bytes) continue;
        size_t ws = 0;
        if (a->cudnnSetConvolutionMathType(e->conv, perf[i].mathType) ||
            a->cudnnGetConvolutionForwardWorkspaceSize(d->handle, e->x, e->w, e->conv, e->y,
                                                       perf[i].algo, &ws) ||
            ws > c->chunk_bytes)
            continue;
        e->algo = perf[i].algo;
        e->ws = ws;
        e->ok = 1;
    }
    (void)cudaGetLastError();
    if (c->debug)
        fprintf(stderr, "edm cudnn: conv N%d Ci%d %dx%d Co%d k%d pad%d %s: %s algo %d, %zu B ws\n",
                N, Ci, H, W, Co, k, pad, edm_cuda_dtype_name(dt), e->ok ? "cudnn" : "im2col",
                (int)e->algo, e->ws);
    return e;
}

int edm_cudnn_conv(edm_cuda *c, edm_tensor *out, const edm_tensor *in, const void *w_ohwi,
                   const edm_tensor *weight, int pad, float beta, char *msg) {
    edm_cudnn *d = c->dnn;
    if (!d) return 2;
    const int key[8] = {in->n, in->c, in->h, in->w, weight->n, weight->h, pad, (int)in->dtype};
    int err = 0;
    dnn_entry *e = entry_get(c, key, msg, &err);
    if (err) return 1;
    if (!e->ok) return 2;
    void *ws = NULL;
    if (e->ws) {
        ws = edm_cuda_scratch(c, e->ws, msg);
        if (!ws) return 1;
    }
    const float alpha = 1.0f;
    cudnnStatus_t st = d->api.cudnnConvolutionForward(d->handle, &alpha, e->x, in->data, e->w,
                                                      w_ohwi, e->conv, e->algo, ws, e->ws,
                                                      &beta, e->y, out->data);
    if (st != CUDNN_STATUS_SUCCESS) {
        cudaError_t ce = cudaGetLastError();
        if (ce != cudaSuccess) return edm_cuda_error(c, msg, ce, "cudnnConvolutionForward");
        /* cuDNN refused without a device error (nothing was queued): this shape uses im2col
         * from now on, starting with this call. */
        if (c->debug)
            fprintf(stderr, "edm cudnn: cudnnConvolutionForward: %s (algo %d); using im2col\n",
                    d->api.cudnnGetErrorString(st), (int)e->algo);
        e->ok = 0;
        return 2;
    }
    return 0;
}
