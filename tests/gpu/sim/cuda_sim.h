/*
 * cuda_sim.h - a small host emulator of the CUDA runtime, cuda_fp16/bf16 and cuBLAS subset
 * that the CUDA backend uses, so core/backend_cuda.cu and core/cuda_*.cu compile with g++
 * (-DEDM_CUDA_SIM) and run on a machine without a GPU (tests/gpu/sim/build.sh).
 *
 * What is emulated, and how faithfully
 *  - Kernels: every block runs with blockDim real threads (std::thread), so __syncthreads
 *    (std::barrier), warp shuffles (per-warp barriers) and static __shared__ memory (a static
 *    local: blocks run one after another) behave as on the device. Blocks run in order.
 *  - Memory: cudaMalloc is host memory filled with 0xff bytes (NaN in every float type), so a
 *    read of never-written memory shows up as NaN in the results.
 *  - Streams run work at once, in order; stream capture records kernels, device-to-device
 *    copies and GEMMs as closures that a graph launch replays. Host transfers, synchronization
 *    and allocation during capture fail as on the device (cudaErrorStreamCaptureUnsupported).
 *  - cuBLAS: cublasGemmStridedBatchedEx checks arguments as cuBLAS does (leading dimensions,
 *    type combinations) and computes with fp32 accumulation; TF32 compute rounds the inputs to
 *    10 mantissa bits; outputs are rounded to their type.
 * Not emulated: timing, concurrency between blocks, races across blocks, asynchronous faults.
 */
#ifndef EDM_CUDA_SIM_H
#define EDM_CUDA_SIM_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <barrier>
#include <condition_variable>
#include <mutex>
#include <functional>
#include <memory>
#include <thread>
#include <tuple>
#include <type_traits>
#include <vector>

/* ---- qualifiers and built-in variables ---------------------------------------------------- */

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(...)

struct dim3 {
    unsigned x, y, z;
    dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};
struct sim_uint3 {
    unsigned x, y, z;
};
inline thread_local sim_uint3 threadIdx;
inline thread_local sim_uint3 blockIdx;
inline thread_local unsigned sim_tid;
inline thread_local int sim_block_synced;
inline dim3 blockDim, gridDim;

/* ---- fp16 / bf16 ------------------------------------------------------------------------- */

struct __half {
    uint16_t x;
};
struct __nv_bfloat16 {
    uint16_t x;
};

inline float sim_bits_to_float(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}
inline uint32_t sim_float_to_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

inline float __half2float(__half h) {
    uint32_t sign = (uint32_t)(h.x & 0x8000u) << 16;
    uint32_t e = (h.x >> 10) & 0x1fu, m = h.x & 0x3ffu;
    if (e == 0) {
        float v = ldexpf((float)m, -24);
        return sign ? -v : v;
    }
    if (e == 31) return sim_bits_to_float(sign | 0x7f800000u | (m << 13));
    return sim_bits_to_float(sign | ((e - 15 + 127) << 23) | (m << 13));
}

inline __half __float2half_rn(float f) {
    uint32_t x = sim_float_to_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t a = x & 0x7fffffffu;
    __half h;
    if (a > 0x7f800000u) {
        h.x = (uint16_t)(sign | 0x7e00u);
        return h;
    }
    if (a >= 0x47800000u) { /* >= 65536 (or inf): inf */
        h.x = (uint16_t)(sign | 0x7c00u);
        return h;
    }
    if (a < 0x38800000u) { /* below 2^-14: subnormal half (exact scaling, then RNE) */
        float v = sim_bits_to_float(a) * 16777216.0f;
        h.x = (uint16_t)(sign | (uint16_t)nearbyintf(v));
        return h;
    }
    uint32_t m = a & 0x7fffffu;
    uint32_t e = (a >> 23) - 127 + 15;
    uint32_t r = (e << 10) | (m >> 13);
    uint32_t rem = m & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) r++;
    h.x = (uint16_t)(sign | r);
    return h;
}

inline float __bfloat162float(__nv_bfloat16 b) {
    return sim_bits_to_float((uint32_t)b.x << 16);
}

inline __nv_bfloat16 __float2bfloat16_rn(float f) {
    uint32_t u = sim_float_to_bits(f);
    __nv_bfloat16 b;
    if ((u & 0x7fffffffu) > 0x7f800000u) {
        b.x = (uint16_t)((u >> 16) | 0x40u);
        return b;
    }
    u += 0x7fffu + ((u >> 16) & 1u);
    b.x = (uint16_t)(u >> 16);
    return b;
}

/* ---- errors ------------------------------------------------------------------------------- */

enum cudaError_t {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInsufficientDriver = 35,
    cudaErrorDevicesUnavailable = 46,
    cudaErrorInvalidDevice = 101,
    cudaErrorNoDevice = 100,
    cudaErrorECCUncorrectable = 214,
    cudaErrorStreamCaptureUnsupported = 900,
    cudaErrorStreamCaptureInvalidated = 901,
    cudaErrorIllegalAddress = 700,
    cudaErrorLaunchTimeout = 702,
    cudaErrorContextIsDestroyed = 709,
    cudaErrorAssert = 710,
    cudaErrorHardwareStackError = 714,
    cudaErrorIllegalInstruction = 715,
    cudaErrorMisalignedAddress = 716,
    cudaErrorInvalidAddressSpace = 717,
    cudaErrorInvalidPc = 718,
    cudaErrorLaunchFailure = 719,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorUnknown = 999
};
inline cudaError_t sim_last_error = cudaSuccess;

inline const char *cudaGetErrorName(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
    case cudaErrorStreamCaptureInvalidated: return "cudaErrorStreamCaptureInvalidated";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    default: return "cudaErrorOther";
    }
}
inline const char *cudaGetErrorString(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorStreamCaptureUnsupported:
        return "operation not permitted when stream is capturing";
    default: return "simulated error";
    }
}
inline cudaError_t sim_set_error(cudaError_t e) {
    if (e != cudaSuccess) sim_last_error = e;
    return e;
}
inline cudaError_t cudaGetLastError(void) {
    cudaError_t e = sim_last_error;
    sim_last_error = cudaSuccess;
    return e;
}
inline cudaError_t cudaPeekAtLastError(void) {
    return sim_last_error;
}

/* ---- streams, graphs ------------------------------------------------------------------------ */

struct sim_stream {
    bool capturing = false;
    bool invalidated = false;
    std::vector<std::function<void()>> rec;
};
typedef sim_stream *cudaStream_t;
struct sim_graph {
    std::vector<std::function<void()>> ops;
};
typedef sim_graph *cudaGraph_t;
typedef sim_graph *cudaGraphExec_t;

enum cudaStreamCaptureMode {
    cudaStreamCaptureModeGlobal = 0,
    cudaStreamCaptureModeThreadLocal = 1,
    cudaStreamCaptureModeRelaxed = 2
};
#define cudaStreamNonBlocking 0x01u
enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
    cudaMemcpyDefault = 4
};

/* Counters the sim tests read. */
inline long sim_kernel_launches = 0, sim_graph_launches = 0, sim_mallocs = 0;
inline bool sim_capturing_any = false;

inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags) {
    (void)flags;
    *s = new sim_stream();
    return cudaSuccess;
}
inline cudaError_t cudaStreamDestroy(cudaStream_t s) {
    delete s;
    return cudaSuccess;
}
inline cudaError_t cudaStreamSynchronize(cudaStream_t s) {
    if (s && s->capturing) {
        s->invalidated = true;
        return sim_set_error(cudaErrorStreamCaptureUnsupported);
    }
    return cudaSuccess;
}
inline cudaError_t cudaDeviceSynchronize(void) {
    return sim_capturing_any ? sim_set_error(cudaErrorStreamCaptureUnsupported) : cudaSuccess;
}
/* Runs op now, or records it when s is capturing. */
inline void sim_enqueue(cudaStream_t s, std::function<void()> op) {
    if (s && s->capturing) s->rec.push_back(std::move(op));
    else op();
}
inline cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode) {
    (void)mode;
    if (!s || s->capturing) return sim_set_error(cudaErrorInvalidValue);
    s->capturing = true;
    s->invalidated = false;
    s->rec.clear();
    sim_capturing_any = true;
    return cudaSuccess;
}
inline cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *g) {
    *g = NULL;
    if (!s || !s->capturing) return sim_set_error(cudaErrorInvalidValue);
    s->capturing = false;
    sim_capturing_any = false;
    const char *fail = getenv("EDM_SIM_FAIL_END_CAPTURE"); /* tests the recovery path */
    if (fail && *fail == '1') s->invalidated = true;
    if (s->invalidated) {
        s->rec.clear();
        return sim_set_error(cudaErrorStreamCaptureInvalidated);
    }
    *g = new sim_graph{std::move(s->rec)};
    s->rec.clear();
    return cudaSuccess;
}
inline cudaError_t cudaGraphInstantiateWithFlags(cudaGraphExec_t *e, cudaGraph_t g,
                                                 unsigned long long flags) {
    (void)flags;
    *e = new sim_graph{g->ops};
    return cudaSuccess;
}
inline cudaError_t cudaGraphLaunch(cudaGraphExec_t e, cudaStream_t s) {
    sim_graph_launches++;
    sim_graph copy = *e;
    sim_enqueue(s, [copy]() {
        for (auto &op : copy.ops) op();
    });
    return cudaSuccess;
}
inline cudaError_t cudaGraphDestroy(cudaGraph_t g) {
    delete g;
    return cudaSuccess;
}
inline cudaError_t cudaGraphExecDestroy(cudaGraphExec_t e) {
    delete e;
    return cudaSuccess;
}

/* ---- device, memory ----------------------------------------------------------------------- */

struct cudaDeviceProp {
    char name[256];
    int major, minor, multiProcessorCount;
    size_t totalGlobalMem;
};

inline int sim_no_device(void) {
    const char *s = getenv("EDM_SIM_NO_DEVICE");
    return s && *s == '1';
}
inline cudaError_t cudaGetDeviceCount(int *n) {
    if (sim_no_device()) {
        *n = 0;
        return sim_set_error(cudaErrorNoDevice);
    }
    *n = 1;
    return cudaSuccess;
}
inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int d) {
    if (d != 0) return sim_set_error(cudaErrorInvalidDevice);
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "EDM CUDA simulator");
    p->major = 9;
    p->minor = 0;
    p->multiProcessorCount = 1;
    p->totalGlobalMem = (size_t)8 << 30;
    return cudaSuccess;
}
inline cudaError_t cudaSetDevice(int d) {
    return d == 0 ? cudaSuccess : sim_set_error(cudaErrorInvalidDevice);
}
inline cudaError_t cudaMemGetInfo(size_t *f, size_t *t) {
    *f = (size_t)6 << 30;
    *t = (size_t)8 << 30;
    return cudaSuccess;
}
inline cudaError_t cudaMalloc(void **p, size_t bytes) {
    *p = NULL;
    if (sim_capturing_any) return sim_set_error(cudaErrorStreamCaptureUnsupported);
    size_t b = (bytes + 255) / 256 * 256;
    if (b == 0) b = 256;
    void *q = aligned_alloc(256, b);
    if (!q) return sim_set_error(cudaErrorMemoryAllocation);
    memset(q, 0xff, b); /* NaN in f32, f16 and bf16: unwritten outputs show */
    sim_mallocs++;
    *p = q;
    return cudaSuccess;
}
template <typename T> inline cudaError_t cudaMalloc(T **p, size_t bytes) {
    return cudaMalloc((void **)p, bytes);
}
inline cudaError_t cudaFree(void *p) {
    if (sim_capturing_any) return sim_set_error(cudaErrorStreamCaptureUnsupported);
    free(p);
    return cudaSuccess;
}
inline cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind k,
                                   cudaStream_t s) {
    if (s && s->capturing && k != cudaMemcpyDeviceToDevice) {
        s->invalidated = true;
        return sim_set_error(cudaErrorStreamCaptureUnsupported);
    }
    sim_enqueue(s, [=]() { memcpy(dst, src, bytes); });
    return cudaSuccess;
}

/* ---- kernels ------------------------------------------------------------------------------ */

inline std::unique_ptr<std::barrier<>> sim_block_barrier;
inline std::vector<std::unique_ptr<std::barrier<>>> sim_warp_barriers;
inline std::vector<float> sim_shfl_slots;

inline void __syncthreads(void) {
    sim_block_synced = 1;
    sim_block_barrier->arrive_and_wait();
}

inline float __shfl_xor_sync(unsigned mask, float v, int lane_mask) {
    (void)mask;
    const unsigned t = sim_tid, w = t / 32, lane = t % 32;
    sim_shfl_slots[t] = v;
    sim_warp_barriers[w]->arrive_and_wait();
    float r = sim_shfl_slots[w * 32 + (lane ^ (unsigned)lane_mask)];
    sim_warp_barriers[w]->arrive_and_wait();
    return r;
}

/* A persistent pool of "CUDA threads" (creating blockDim threads per launch dominated the
 * run time). Never destroyed: its threads are detached and end with the process. */
struct sim_pool {
    std::mutex m;
    std::condition_variable cv_start, cv_done;
    unsigned long gen = 0;
    unsigned active = 0, remaining = 0, spawned = 0;
    const std::function<void()> *fn = NULL;
    dim3 grid, block;
};
inline sim_pool *sim_the_pool = new sim_pool();

inline void sim_worker(unsigned t) {
    sim_pool &P = *sim_the_pool;
    unsigned long seen = 0;
    for (;;) {
        std::unique_lock<std::mutex> lk(P.m);
        P.cv_start.wait(lk, [&] { return P.gen != seen && t < P.active; });
        seen = P.gen;
        const dim3 grid = P.grid, block = P.block;
        const std::function<void()> &fn = *P.fn;
        lk.unlock();
        const unsigned nb = grid.x * grid.y * grid.z;
        sim_tid = t;
        threadIdx = {t % block.x, (t / block.x) % block.y, t / (block.x * block.y)};
        for (unsigned b = 0; b < nb; b++) {
            blockIdx = {b % grid.x, (b / grid.x) % grid.y, b / (grid.x * grid.y)};
            sim_block_synced = 0;
            fn();
            /* Blocks that use __syncthreads share static __shared__ memory: keep them apart.
             * (Every thread of such a block synced, so all of them take this barrier.) */
            if (sim_block_synced) sim_block_barrier->arrive_and_wait();
        }
        lk.lock();
        if (--P.remaining == 0) P.cv_done.notify_all();
    }
}

inline void sim_run_kernel(dim3 grid, dim3 block, const std::function<void()> &fn) {
    const unsigned nt = block.x * block.y * block.z;
    const unsigned nb = grid.x * grid.y * grid.z;
    if (nt == 0 || nt > 1024 || nb == 0) {
        sim_set_error(cudaErrorInvalidConfiguration);
        return;
    }
    sim_kernel_launches++;
    gridDim = grid;
    blockDim = block;
    sim_block_barrier = std::make_unique<std::barrier<>>((ptrdiff_t)nt);
    sim_warp_barriers.clear();
    for (unsigned w = 0; w * 32 < nt; w++) {
        unsigned size = nt - w * 32 < 32 ? nt - w * 32 : 32;
        sim_warp_barriers.push_back(std::make_unique<std::barrier<>>((ptrdiff_t)size));
    }
    sim_shfl_slots.assign(nt, 0.0f);
    sim_pool &P = *sim_the_pool;
    std::unique_lock<std::mutex> lk(P.m);
    while (P.spawned < nt) std::thread(sim_worker, P.spawned++).detach();
    P.fn = &fn;
    P.grid = grid;
    P.block = block;
    P.active = nt;
    P.remaining = nt;
    P.gen++;
    P.cv_start.notify_all();
    P.cv_done.wait(lk, [&] { return P.remaining == 0; });
    P.active = 0;
}

/* Kernel arguments are converted and copied at launch, as the runtime does, so a captured
 * launch replays with the values it was given (not with whatever they point at later). */
template <typename G, typename B, typename... P, typename... A>
inline void sim_launch(G grid, B block, size_t smem, cudaStream_t s, void (*kernel)(P...),
                       A &&...args) {
    (void)smem;
    static_assert(sizeof...(P) == sizeof...(A), "kernel argument count");
    dim3 g(grid), bl(block);
    std::tuple<std::decay_t<P>...> bound(std::forward<A>(args)...);
    sim_enqueue(s, [g, bl, kernel, bound]() {
        sim_run_kernel(g, bl, [&]() { std::apply(kernel, bound); });
    });
}

/* ---- cuBLAS ------------------------------------------------------------------------------- */

enum cublasStatus_t {
    CUBLAS_STATUS_SUCCESS = 0,
    CUBLAS_STATUS_NOT_INITIALIZED = 1,
    CUBLAS_STATUS_ALLOC_FAILED = 3,
    CUBLAS_STATUS_INVALID_VALUE = 7,
    CUBLAS_STATUS_EXECUTION_FAILED = 13,
    CUBLAS_STATUS_NOT_SUPPORTED = 15
};
enum cublasOperation_t { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 };
enum cublasComputeType_t {
    CUBLAS_COMPUTE_32F = 68,
    CUBLAS_COMPUTE_32F_PEDANTIC = 69,
    CUBLAS_COMPUTE_32F_FAST_TF32 = 77
};
enum cudaDataType { CUDA_R_32F = 0, CUDA_R_16F = 2, CUDA_R_16BF = 14 };
enum cublasGemmAlgo_t { CUBLAS_GEMM_DEFAULT = -1 };
enum cublasMath_t { CUBLAS_DEFAULT_MATH = 0, CUBLAS_TF32_TENSOR_OP_MATH = 3 };

struct sim_blas {
    cudaStream_t stream = NULL;
    void *ws = NULL;
    size_t ws_bytes = 0;
};
typedef sim_blas *cublasHandle_t;

inline long sim_gemm_calls = 0;

inline cublasStatus_t cublasCreate(cublasHandle_t *h) {
    *h = new sim_blas();
    return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasDestroy(cublasHandle_t h) {
    delete h;
    return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s) {
    h->stream = s;
    return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasSetWorkspace(cublasHandle_t h, void *ws, size_t bytes) {
    h->ws = ws;
    h->ws_bytes = bytes;
    return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t m) {
    (void)h;
    (void)m;
    return CUBLAS_STATUS_SUCCESS;
}
inline const char *cublasGetStatusName(cublasStatus_t s) {
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    default: return "CUBLAS_STATUS_OTHER";
    }
}
inline const char *cublasGetStatusString(cublasStatus_t s) {
    switch (s) {
    case CUBLAS_STATUS_INVALID_VALUE: return "an invalid value was used as an argument";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
    default: return "simulated cuBLAS status";
    }
}

inline float sim_load(const void *p, cudaDataType t, int64_t i) {
    if (t == CUDA_R_16F) return __half2float(((const __half *)p)[i]);
    if (t == CUDA_R_16BF) return __bfloat162float(((const __nv_bfloat16 *)p)[i]);
    return ((const float *)p)[i];
}
inline void sim_store(void *p, cudaDataType t, int64_t i, float v) {
    if (t == CUDA_R_16F) ((__half *)p)[i] = __float2half_rn(v);
    else if (t == CUDA_R_16BF) ((__nv_bfloat16 *)p)[i] = __float2bfloat16_rn(v);
    else ((float *)p)[i] = v;
}
inline float sim_tf32(float v) { /* round to 10 mantissa bits, nearest even */
    uint32_t u = sim_float_to_bits(v);
    if ((u & 0x7f800000u) == 0x7f800000u) return v;
    u += 0xfffu + ((u >> 13) & 1u);
    return sim_bits_to_float(u & 0xffffe000u);
}

inline cublasStatus_t cublasGemmStridedBatchedEx(
    cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
    const void *alpha, const void *A, cudaDataType at, int lda, long long sA, const void *B,
    cudaDataType bt, int ldb, long long sB, const void *beta, void *C, cudaDataType ct, int ldc,
    long long sC, int batch, cublasComputeType_t compute, cublasGemmAlgo_t algo) {
    (void)algo;
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    /* Argument rules of cublasGemmEx (column-major). */
    const int rowsA = ta == CUBLAS_OP_N ? m : k, rowsB = tb == CUBLAS_OP_N ? k : n;
    if (m < 0 || n < 0 || k < 0 || batch < 0 || lda < (rowsA > 1 ? rowsA : 1) ||
        ldb < (rowsB > 1 ? rowsB : 1) || ldc < (m > 1 ? m : 1))
        return CUBLAS_STATUS_INVALID_VALUE;
    if (at != bt) return CUBLAS_STATUS_NOT_SUPPORTED;
    if (compute == CUBLAS_COMPUTE_32F_FAST_TF32 && (at != CUDA_R_32F || ct != CUDA_R_32F))
        return CUBLAS_STATUS_NOT_SUPPORTED;
    if (at == CUDA_R_32F && ct != CUDA_R_32F) return CUBLAS_STATUS_NOT_SUPPORTED;
    if (at != CUDA_R_32F && ct != at && ct != CUDA_R_32F) return CUBLAS_STATUS_NOT_SUPPORTED;
    const float al = *(const float *)alpha, be = *(const float *)beta;
    const bool tf32 = compute == CUBLAS_COMPUTE_32F_FAST_TF32;
    sim_gemm_calls++;
    sim_enqueue(h->stream, [=]() {
        for (int b = 0; b < batch; b++) {
            const int64_t oa = (int64_t)b * sA, ob = (int64_t)b * sB, oc = (int64_t)b * sC;
            for (int j = 0; j < n; j++) {
                for (int i = 0; i < m; i++) {
                    float acc = 0.0f;
                    for (int l = 0; l < k; l++) {
                        int64_t ia = ta == CUBLAS_OP_N ? (int64_t)i + (int64_t)l * lda
                                                       : (int64_t)l + (int64_t)i * lda;
                        int64_t ib = tb == CUBLAS_OP_N ? (int64_t)l + (int64_t)j * ldb
                                                       : (int64_t)j + (int64_t)l * ldb;
                        float x = sim_load(A, at, oa + ia), y = sim_load(B, bt, ob + ib);
                        if (tf32) x = sim_tf32(x), y = sim_tf32(y);
                        acc += x * y;
                    }
                    const int64_t icc = oc + (int64_t)i + (int64_t)j * ldc;
                    float v = al * acc;
                    if (be != 0.0f) v += be * sim_load(C, ct, icc); /* beta 0: C is not read */
                    sim_store(C, ct, icc, v);
                }
            }
        }
    });
    return CUBLAS_STATUS_SUCCESS;
}

#endif /* EDM_CUDA_SIM_H */
