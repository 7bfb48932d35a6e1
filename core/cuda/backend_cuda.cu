/*
 * backend_cuda.cu - the CUDA backend: device selection, memory, transfers, errors, the GEMM
 * wrapper. The ops live in cuda_conv.cu (conv2d, linear), cuda_norm.cu (group_norm),
 * cuda_attention.cu and cuda_misc.cu (everything element-wise); CUDA graphs in cuda_graph.cu.
 *
 * Design notes
 *  - Must not crash where there is no driver: cudart is linked statically and loads the driver
 *    itself, so cudaGetDeviceCount simply fails there (the registry row counts 0 devices).
 *  - Precisions (spec 1.12, ops.h dtype rules): fp32 = IEEE fp32 everywhere (cuBLAS compute
 *    32F with the default math mode, which never uses TF32: the conformance path); tf32 = fp32
 *    storage, GEMMs over activations in CUBLAS_COMPUTE_32F_FAST_TF32; fp16 / bf16 = activations
 *    and conv weights stored in that type, GEMMs accumulate in fp32 on the tensor cores. The
 *    mapping network (linear), norm statistics and softmax are fp32 in every mode.
 *  - All work goes to one non-blocking stream owned by the backend, so one backend is one
 *    in-order queue; transfers synchronize it (the host buffers are pageable).
 *  - Errors: every call is checked; messages name the CUDA error and the call, and sticky
 *    errors (illegal address, launch failure, ...) set backend->device_lost: the process must
 *    restart to use the device again.
 *  - CUDA graphs (EDM_CUDA_GRAPHS=1, default off until measured on a GPU): cuda_graph.cu.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_internal.h"
extern "C" {
#include "status.h"
}

#define EDM_CUDA_BLAS_WS_BYTES ((size_t)32 << 20) /* cuBLAS's recommended Hopper workspace */
#define EDM_CUDA_DEFAULT_CHUNK_MB 512

/* ---- errors -------------------------------------------------------------------------------- */

int edm_cuda_fail(char *msg, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, EDM_OPS_MSG, fmt, ap);
    va_end(ap);
    return 1;
}

/* Errors after which the CUDA context is unusable: every later call fails the same way. */
static int edm_cuda_sticky(cudaError_t e) {
    switch (e) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorAssert:
    case cudaErrorLaunchTimeout:
    case cudaErrorECCUncorrectable:
    case cudaErrorContextIsDestroyed:
    case cudaErrorDevicesUnavailable:
    case cudaErrorNoDevice:
    case cudaErrorUnknown: return 1;
    default: return 0;
    }
}

int edm_cuda_error(edm_cuda *c, char *msg, cudaError_t e, const char *what) {
    snprintf(msg, EDM_OPS_MSG, "%s: %s (in %s)", cudaGetErrorName(e), cudaGetErrorString(e), what);
    (void)cudaGetLastError(); /* clear a non-sticky error so later calls are not blamed */
    if (c && c->backend && edm_cuda_sticky(e)) c->backend->device_lost = 1;
    return 1;
}

int edm_cuda_blas_error(edm_cuda *c, char *msg, cublasStatus_t s, const char *what) {
    /* A kernel fault inside cuBLAS shows up as EXECUTION_FAILED; the CUDA error says more. */
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) {
        snprintf(msg, EDM_OPS_MSG, "%s: %s (cuBLAS %s in %s)", cudaGetErrorName(e),
                 cudaGetErrorString(e), cublasGetStatusName(s), what);
        if (c && c->backend && edm_cuda_sticky(e)) c->backend->device_lost = 1;
        return 1;
    }
    snprintf(msg, EDM_OPS_MSG, "%s: %s (in %s)", cublasGetStatusName(s), cublasGetStatusString(s),
             what);
    return 1;
}

int edm_cuda_enter(edm_cuda *c, char *msg) {
    EDM_CUDA_TRY(c, msg, cudaSetDevice(c->device), "cudaSetDevice");
    return 0;
}

int edm_cuda_check(edm_cuda *c, char *msg, const char *what) {
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return edm_cuda_error(c, msg, e, what);
    if (c->sync_each_op && !(c->fwd_active && c->fwd_mode == EDM_CUDA_CAPTURE)) {
        e = cudaStreamSynchronize(c->stream);
        if (e != cudaSuccess) return edm_cuda_error(c, msg, e, what);
    }
    return 0;
}

/* ---- small helpers ------------------------------------------------------------------------- */

size_t edm_cuda_dtype_size(enum edm_dtype t) {
    return t == EDM_F32 ? 4 : 2;
}

cudaDataType edm_cuda_dtype(enum edm_dtype t) {
    switch (t) {
    case EDM_F16: return CUDA_R_16F;
    case EDM_BF16: return CUDA_R_16BF;
    default: return CUDA_R_32F;
    }
}

const char *edm_cuda_dtype_name(enum edm_dtype t) {
    switch (t) {
    case EDM_F16: return "f16";
    case EDM_BF16: return "bf16";
    default: return "f32";
    }
}

unsigned edm_cuda_blocks(const edm_cuda *c, int64_t total) {
    int64_t b = (total + EDM_CUDA_THREADS - 1) / EDM_CUDA_THREADS;
    int64_t cap = (int64_t)(c->sm_count > 0 ? c->sm_count : 1) * 32;
    if (b > cap) b = cap;
    if (b < 1) b = 1;
    return (unsigned)b;
}

static size_t cuda_type_size(cudaDataType t) {
    return t == CUDA_R_32F ? 4 : 2;
}

/* ---- GEMM ---------------------------------------------------------------------------------- */

int edm_cuda_gemm(edm_cuda *c, char *msg, const char *what, cublasOperation_t ta,
                  cublasOperation_t tb, int m, int n, int k, float alpha, const void *A,
                  cudaDataType at, int lda, long long sA, const void *B, cudaDataType bt, int ldb,
                  long long sB, float beta, void *C, cudaDataType ct, int ldc, long long sC,
                  int batch, cublasComputeType_t compute) {
    /* cuBLAS maps the batch to a grid dimension limited to 65535. */
    const int max_batch = 65535;
    for (int b0 = 0; b0 < batch; b0 += max_batch) {
        int nb = batch - b0 < max_batch ? batch - b0 : max_batch;
        const char *Ap = (const char *)A + (size_t)b0 * (size_t)sA * cuda_type_size(at);
        const char *Bp = (const char *)B + (size_t)b0 * (size_t)sB * cuda_type_size(bt);
        char *Cp = (char *)C + (size_t)b0 * (size_t)sC * cuda_type_size(ct);
        cublasStatus_t s = cublasGemmStridedBatchedEx(c->blas, ta, tb, m, n, k, &alpha, Ap, at, lda,
                                                      sA, Bp, bt, ldb, sB, &beta, Cp, ct, ldc, sC,
                                                      nb, compute, CUBLAS_GEMM_DEFAULT);
        if (s != CUBLAS_STATUS_SUCCESS) {
            char where[160];
            snprintf(where, sizeof where, "%s: GEMM m=%d n=%d k=%d batch=%d", what, m, n, k, nb);
            return edm_cuda_blas_error(c, msg, s, where);
        }
    }
    return 0;
}

/* ---- memory ------------------------------------------------------------------------------- */

void *edm_cuda_scratch(edm_cuda *c, size_t bytes, char *msg) {
    if (bytes <= c->scratch_bytes) return c->scratch;
    /* Memory cannot be allocated during a capture: run what it holds, go on eagerly. */
    if (c->fwd_active && c->fwd_mode == EDM_CUDA_CAPTURE && edm_cuda_fwd_cut(c, msg, 0))
        return NULL;
    cudaError_t e = cudaStreamSynchronize(c->stream); /* queued work may still use the old one */
    if (e != cudaSuccess) {
        edm_cuda_error(c, msg, e, "cudaStreamSynchronize (growing scratch)");
        return NULL;
    }
    if (c->scratch) cudaFree(c->scratch);
    c->scratch = NULL;
    c->scratch_bytes = 0;
    edm_cuda_graphs_invalidate(c);
    const size_t mib = (size_t)1 << 20;
    size_t want = bytes + bytes / 4; /* some headroom, so growth is rare */
    want = (want + mib - 1) / mib * mib;
    void *p = NULL;
    e = cudaMalloc(&p, want);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        want = bytes;
        e = cudaMalloc(&p, want);
    }
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        edm_cuda_fail(msg, "out of device memory: the CUDA backend's scratch needs %.1f MiB (%s)",
                      (double)bytes / (double)mib, cudaGetErrorString(e));
        return NULL;
    }
    c->scratch = p;
    c->scratch_bytes = want;
    return p;
}

static void *stage_get(edm_cuda *c, size_t bytes, char *msg) {
    if (bytes <= c->stage_bytes) return c->stage;
    cudaError_t e = cudaStreamSynchronize(c->stream);
    if (e != cudaSuccess) {
        edm_cuda_error(c, msg, e, "cudaStreamSynchronize (growing the staging buffer)");
        return NULL;
    }
    if (c->stage) cudaFree(c->stage);
    c->stage = NULL;
    c->stage_bytes = 0;
    void *p = NULL;
    e = cudaMalloc(&p, bytes);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        edm_cuda_fail(msg, "out of device memory: staging %zu bytes (%s)", bytes,
                      cudaGetErrorString(e));
        return NULL;
    }
    c->stage = p;
    c->stage_bytes = bytes;
    return p;
}

static void *cuda_alloc(void *ctx, size_t bytes) {
    edm_cuda *c = (edm_cuda *)ctx;
    if (cudaSetDevice(c->device) != cudaSuccess) {
        (void)cudaGetLastError();
        return NULL;
    }
    void *p = NULL;
    /* 256-byte minimum: a zero-byte request still gets a distinct, valid pointer. */
    if (cudaMalloc(&p, bytes < 256 ? 256 : bytes) != cudaSuccess) {
        (void)cudaGetLastError(); /* out of memory is not sticky: the caller reports it */
        return NULL;
    }
    return p;
}

static void cuda_free(void *ctx, void *ptr) {
    edm_cuda *c = (edm_cuda *)ctx;
    if (!ptr) return;
    (void)cudaSetDevice(c->device);
    edm_cuda_weights_forget(c, NULL, 0); /* copies of weights that may live in it */
    if (cudaFree(ptr) != cudaSuccess) (void)cudaGetLastError();
    edm_cuda_graphs_forget(c);
}

int edm_cuda_mem_info(size_t *free_bytes, size_t *total_bytes) {
    size_t f = 0, t = 0;
    cudaError_t e = cudaMemGetInfo(&f, &t);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        f = t = 0;
    }
    if (free_bytes) *free_bytes = f;
    if (total_bytes) *total_bytes = t;
    return e == cudaSuccess ? 0 : -1;
}

static int cuda_mem_info(void *ctx, size_t *free_bytes, size_t *total_bytes) {
    edm_cuda *c = (edm_cuda *)ctx;
    if (cudaSetDevice(c->device) != cudaSuccess) {
        (void)cudaGetLastError();
        return -1;
    }
    return edm_cuda_mem_info(free_bytes, total_bytes);
}

/* ---- transfers ----------------------------------------------------------------------------- */

/* Host fp32 -> dst. act: the host is NCHW and dst an NHWC activation (one transpose on the
 * device); else a raw copy, converted to dst's dtype. Through the staging buffer unless a
 * raw f32 copy. */
static int upload_to(edm_cuda *c, edm_tensor *dst, const float *src, int act, char *msg) {
    if (edm_cuda_io_guard(c, msg) || edm_cuda_enter(c, msg)) return 1;
    const int64_t count = edm_tensor_numel(dst);
    const size_t bytes = (size_t)count * sizeof(float);
    edm_cuda_weights_forget(c, dst->data, (size_t)count * edm_cuda_dtype_size(dst->dtype));
    if (!act && dst->dtype == EDM_F32) {
        EDM_CUDA_TRY(c, msg, cudaMemcpyAsync(dst->data, src, bytes, cudaMemcpyHostToDevice, c->stream),
                     "cudaMemcpyAsync host to device");
    } else {
        void *st = stage_get(c, bytes, msg);
        if (!st) return 1;
        EDM_CUDA_TRY(c, msg, cudaMemcpyAsync(st, src, bytes, cudaMemcpyHostToDevice, c->stream),
                     "cudaMemcpyAsync host to device");
        if (act ? edm_cuda_act_transpose(c, msg, dst->data, dst->dtype, st, EDM_F32, dst->n,
                                         dst->c, dst->h * dst->w, 1)
                : edm_cuda_convert(c, msg, dst->data, dst->dtype, st, EDM_F32, count))
            return 1;
    }
    /* The source is pageable host memory: wait, so the caller may reuse it at once. */
    EDM_CUDA_TRY(c, msg, cudaStreamSynchronize(c->stream), "cudaStreamSynchronize after upload");
    return 0;
}

/* src -> host fp32, the inverse of upload_to. */
static int download_from(edm_cuda *c, float *dst, const edm_tensor *src, int act, char *msg) {
    if (edm_cuda_io_guard(c, msg) || edm_cuda_enter(c, msg)) return 1;
    const int64_t count = edm_tensor_numel(src);
    const size_t bytes = (size_t)count * sizeof(float);
    const void *from = src->data;
    if (act || src->dtype != EDM_F32) {
        void *st = stage_get(c, bytes, msg);
        if (!st) return 1;
        if (act ? edm_cuda_act_transpose(c, msg, st, EDM_F32, src->data, src->dtype, src->n,
                                         src->c, src->h * src->w, 0)
                : edm_cuda_convert(c, msg, st, EDM_F32, src->data, src->dtype, count))
            return 1;
        from = st;
    }
    EDM_CUDA_TRY(c, msg, cudaMemcpyAsync(dst, from, bytes, cudaMemcpyDeviceToHost, c->stream),
                 "cudaMemcpyAsync device to host");
    /* Also reports faults of any kernel queued since the last synchronization. */
    EDM_CUDA_TRY(c, msg, cudaStreamSynchronize(c->stream),
                 "cudaStreamSynchronize after download; a fault here may come from an earlier "
                 "kernel: EDM_CUDA_SYNC=1 names it");
    return 0;
}

static int cuda_upload(void *ctx, edm_tensor *dst, const float *src, char *msg) {
    return upload_to((edm_cuda *)ctx, dst, src, 0, msg);
}
static int cuda_download(void *ctx, float *dst, const edm_tensor *src, char *msg) {
    return download_from((edm_cuda *)ctx, dst, src, 0, msg);
}
/* Activations: host NCHW <-> device NHWC (cuda_layout.cu). */
static int cuda_upload_act(void *ctx, edm_tensor *dst, const float *src, char *msg) {
    return upload_to((edm_cuda *)ctx, dst, src, 1, msg);
}
static int cuda_download_act(void *ctx, float *dst, const edm_tensor *src, char *msg) {
    return download_from((edm_cuda *)ctx, dst, src, 1, msg);
}

static int cuda_sync(void *ctx, char *msg) {
    edm_cuda *c = (edm_cuda *)ctx;
    if (edm_cuda_io_guard(c, msg) || edm_cuda_enter(c, msg)) return 1;
    EDM_CUDA_TRY(c, msg, cudaStreamSynchronize(c->stream),
                 "cudaStreamSynchronize; a fault here may come from an earlier kernel: "
                 "EDM_CUDA_SYNC=1 names it");
    return 0;
}

/* ---- lifetime ------------------------------------------------------------------------------ */

static void cuda_destroy(void *ctx) {
    edm_cuda *c = (edm_cuda *)ctx;
    if (!c) return;
    (void)cudaSetDevice(c->device);
    edm_cuda_graphs_free(c);
    if (c->stream) (void)cudaStreamSynchronize(c->stream);
    edm_cudnn_free(c);
    edm_cuda_weights_free(c);
    if (c->blas) cublasDestroy(c->blas);
    if (c->scratch) cudaFree(c->scratch);
    if (c->stage) cudaFree(c->stage);
    if (c->blas_ws) cudaFree(c->blas_ws);
    if (c->stream) cudaStreamDestroy(c->stream);
    (void)cudaGetLastError();
    free(c);
}

static int env_int(const char *name, int def) {
    const char *s = getenv(name);
    if (!s || !*s) return def;
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (*end != '\0' || v < 0 || v > 1 << 20) return def;
    return (int)v;
}

/* Devices of compute capability 8.0 or newer (what the kernels are built for). */
static int cuda_device_count(void) {
    int count = 0, usable = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    for (int i = 0; i < count; i++) {
        cudaDeviceProp p;
        if (cudaGetDeviceProperties(&p, i) == cudaSuccess && p.major >= 8) usable++;
    }
    (void)cudaGetLastError();
    return usable;
}

static enum edm_status cuda_backend_new(const edm_backend_options *opts, edm_backend **out,
                                        edm_error *err) {
    edm_backend_options def;
    if (!opts) {
        edm_backend_options_default(&def);
        opts = &def;
    }
    if (!out) return edm_error_set(err, EDM_EINVAL, "cuda backend: out is NULL");
    *out = NULL;

    enum edm_dtype act;
    cublasComputeType_t compute;
    switch (opts->precision) {
    case EDM_PRECISION_FP32: act = EDM_F32, compute = CUBLAS_COMPUTE_32F; break;
    case EDM_PRECISION_TF32: act = EDM_F32, compute = CUBLAS_COMPUTE_32F_FAST_TF32; break;
    case EDM_PRECISION_FP16: act = EDM_F16, compute = CUBLAS_COMPUTE_32F; break;
    case EDM_PRECISION_BF16: act = EDM_BF16, compute = CUBLAS_COMPUTE_32F; break;
    default: return edm_error_set(err, EDM_EINVAL, "unknown precision %d", (int)opts->precision);
    }

    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return edm_error_set(err, EDM_EDEVICE, "no usable CUDA device: %s: %s",
                             cudaGetErrorName(e), cudaGetErrorString(e));
    }
    if (count <= 0) return edm_error_set(err, EDM_EDEVICE, "no CUDA device found");
    if (opts->device < 0 || opts->device >= count)
        return edm_error_set(err, EDM_EINVAL,
                             "CUDA device %d does not exist: this machine has %d device%s "
                             "(numbered 0 to %d)",
                             opts->device, count, count == 1 ? "" : "s", count - 1);
    cudaDeviceProp prop;
    e = cudaGetDeviceProperties(&prop, opts->device);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return edm_error_set(err, EDM_EDEVICE, "CUDA device %d: %s: %s", opts->device,
                             cudaGetErrorName(e), cudaGetErrorString(e));
    }
    if (prop.major < 8)
        return edm_error_set(err, EDM_EUNSUPPORTED,
                             "CUDA device %d (%s) has compute capability %d.%d; this build "
                             "needs 8.0 or newer",
                             opts->device, prop.name, prop.major, prop.minor);
    e = cudaSetDevice(opts->device);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return edm_error_set(err, EDM_EDEVICE, "CUDA device %d: %s: %s", opts->device,
                             cudaGetErrorName(e), cudaGetErrorString(e));
    }

    edm_backend *b = (edm_backend *)calloc(1, sizeof *b);
    edm_cuda *c = (edm_cuda *)calloc(1, sizeof *c);
    enum edm_status st = EDM_OK;
    cublasStatus_t bs;
    if (!b || !c) {
        st = edm_error_set(err, EDM_ENOMEM, "out of host memory creating the CUDA backend");
        goto fail;
    }
    c->backend = b;
    c->device = opts->device;
    snprintf(c->name, sizeof c->name, "%.120s", prop.name);
    c->cc_major = prop.major;
    c->cc_minor = prop.minor;
    c->sm_count = prop.multiProcessorCount;
    c->precision = opts->precision;
    c->act = act;
    c->act_compute = compute;
    c->sync_each_op = env_int("EDM_CUDA_SYNC", 0) != 0;
    c->graphs = env_int("EDM_CUDA_GRAPHS", 0) != 0;
    c->debug = env_int("EDM_CUDA_DEBUG", 0) != 0;
    c->chunk_bytes = (size_t)env_int("EDM_CUDA_SCRATCH_MB", EDM_CUDA_DEFAULT_CHUNK_MB) << 20;
    if (c->chunk_bytes < ((size_t)16 << 20)) c->chunk_bytes = (size_t)16 << 20;

    e = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking);
    if (e != cudaSuccess) {
        c->stream = NULL;
        st = edm_error_set(err, EDM_EDEVICE, "CUDA device %d: cudaStreamCreate: %s: %s",
                           opts->device, cudaGetErrorName(e), cudaGetErrorString(e));
        goto fail;
    }
    bs = cublasCreate(&c->blas);
    if (bs != CUBLAS_STATUS_SUCCESS) {
        c->blas = NULL;
        st = edm_error_set(err, EDM_EDEVICE, "CUDA device %d: cublasCreate: %s: %s", opts->device,
                           cublasGetStatusName(bs), cublasGetStatusString(bs));
        goto fail;
    }
    e = cudaMalloc(&c->blas_ws, EDM_CUDA_BLAS_WS_BYTES);
    if (e != cudaSuccess) {
        c->blas_ws = NULL;
        st = edm_error_set(err, EDM_ENOMEM, "CUDA device %d: cuBLAS workspace: %s: %s",
                           opts->device, cudaGetErrorName(e), cudaGetErrorString(e));
        goto fail;
    }
    c->blas_ws_bytes = EDM_CUDA_BLAS_WS_BYTES;
    /* A fixed workspace keeps cuBLAS from allocating during graph capture; the default math
     * mode keeps CUBLAS_COMPUTE_32F in true fp32 (no TF32) for the conformance path. */
    if ((bs = cublasSetStream(c->blas, c->stream)) != CUBLAS_STATUS_SUCCESS ||
        (bs = cublasSetWorkspace(c->blas, c->blas_ws, c->blas_ws_bytes)) !=
            CUBLAS_STATUS_SUCCESS ||
        (bs = cublasSetMathMode(c->blas, CUBLAS_DEFAULT_MATH)) != CUBLAS_STATUS_SUCCESS) {
        st = edm_error_set(err, EDM_EDEVICE, "CUDA device %d: cuBLAS setup: %s: %s", opts->device,
                           cublasGetStatusName(bs), cublasGetStatusString(bs));
        goto fail;
    }

    {
        char why[200];
        if (edm_cudnn_init(c, why, sizeof why)) {
            st = edm_error_set(err, EDM_EUNSUPPORTED,
                               "EDM_CUDA_CONV=cudnn, but cuDNN cannot be used: %s", why);
            goto fail;
        }
        if (why[0] && c->debug) fprintf(stderr, "edm cuda: convolutions without cuDNN: %s\n", why);
    }

    c->table.name = "cuda";
    c->table.act_layout = EDM_NHWC; /* cuda_layout.cu */
    c->table.alloc = cuda_alloc;
    c->table.mem_info = cuda_mem_info;
    c->table.counter = edm_cuda_counter;
    c->table.free = cuda_free;
    c->table.upload = cuda_upload;
    c->table.download = cuda_download;
    c->table.upload_act = cuda_upload_act;
    c->table.download_act = cuda_download_act;
    c->table.sync = cuda_sync;
    c->table.conv2d = edm_cuda_conv2d;
    c->table.fir_down = edm_cuda_fir_down;
    c->table.fir_up = edm_cuda_fir_up;
    c->table.linear = edm_cuda_linear;
    c->table.group_norm = edm_cuda_group_norm;
    c->table.bias_residual = edm_cuda_bias_residual;
    c->table.concat = edm_cuda_concat;
    c->table.attention = edm_cuda_attention;
    c->table.embed = edm_cuda_embed;
    c->table.scale_rows = edm_cuda_scale_rows;
    c->table.precond_out = edm_cuda_precond_out;
    c->table.forward_begin = edm_cuda_forward_begin;
    c->table.forward_end = edm_cuda_forward_end;
    c->table.destroy = cuda_destroy;

    b->ops = &c->table;
    b->ctx = c;
    b->precision = opts->precision;
    b->act_dtype = act;
    snprintf(b->description, sizeof b->description,
             "cuda (%.48s, device %d, sm_%d%d, %d SMs, %.0f GiB, %s, conv %s%s)", prop.name,
             opts->device, prop.major, prop.minor, prop.multiProcessorCount,
             (double)prop.totalGlobalMem / (double)((size_t)1 << 30),
             edm_precision_name(opts->precision), c->conv_impl, c->graphs ? ", graphs" : "");
    *out = b;
    return EDM_OK;

fail:
    if (c) cuda_destroy(c);
    free(b);
    return st;
}

extern "C" const edm_backend_reg edm_backend_reg_cuda = {
    "cuda", 1, cuda_device_count, cuda_backend_new,
};
