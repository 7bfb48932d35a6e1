/*
 * cudnn_sim.h - the cuDNN subset of core/cuda/cuda_cudnn.cu, emulated on the host for the CUDA
 * simulator (included by cuda_cudnn.cu when EDM_CUDA_SIM is defined, after the declarations).
 *
 * cudnnConvolutionForward computes y = alpha*conv(x, w) + beta*y (y not read when beta is 0)
 * with fp32 accumulation, NCHW or NHWC (tensors and filters each by their descriptor's
 * format), cross-correlation, on the handle's stream (so it is captured
 * into graphs like a kernel). The heuristics return one algorithm with a small workspace, so
 * the workspace path runs too. EDM_SIM_NO_CUDNN=1 makes cuDNN "missing".
 */
#ifndef EDM_CUDNN_SIM_H
#define EDM_CUDNN_SIM_H

struct cudnnContext {
    cudaStream_t stream;
};
struct cudnnTensorStruct {
    int dt, n, c, h, w, nhwc;
};
struct cudnnFilterStruct {
    int dt, k, c, h, w, nhwc;
};

/* Element (n, c, y, x) of a 4-d array of shape (N, C, H, W) in NCHW or NHWC memory order. */
static int64_t sim_dnn_at(int nhwc, int C, int H, int W, int n, int c, int y, int x) {
    return nhwc ? (((int64_t)n * H + y) * W + x) * C + c : (((int64_t)n * C + c) * H + y) * W + x;
}
struct cudnnConvolutionStruct {
    int pad_h, pad_w, u, v, dh, dw, mode, compute, math;
};

static int sim_cudnn_missing(void) {
    const char *s = getenv("EDM_SIM_NO_CUDNN");
    return s && *s == '1';
}

static cudaDataType sim_dnn_type(int dt) {
    return dt == CUDNN_DATA_HALF ? CUDA_R_16F : dt == CUDNN_DATA_BFLOAT16 ? CUDA_R_16BF : CUDA_R_32F;
}

extern "C" {
size_t cudnnGetVersion(void) {
    return 91900;
}
const char *cudnnGetErrorString(cudnnStatus_t status) {
    return status == CUDNN_STATUS_SUCCESS ? "CUDNN_STATUS_SUCCESS" : "CUDNN_STATUS_BAD_PARAM";
}
cudnnStatus_t cudnnCreate(cudnnHandle_t *handle) {
    *handle = new cudnnContext();
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroy(cudnnHandle_t handle) {
    delete handle;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetStream(cudnnHandle_t handle, cudaStream_t stream) {
    handle->stream = stream;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t *d) {
    *d = new cudnnTensorStruct();
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t d) {
    delete d;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t d, cudnnTensorFormat_t format,
                                         cudnnDataType_t dataType, int n, int c, int h, int w) {
    if ((format != CUDNN_TENSOR_NCHW && format != CUDNN_TENSOR_NHWC) || n <= 0 || c <= 0 ||
        h <= 0 || w <= 0)
        return 3;
    *d = {dataType, n, c, h, w, format == CUDNN_TENSOR_NHWC};
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t *d) {
    *d = new cudnnFilterStruct();
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t d) {
    delete d;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t d, cudnnDataType_t dataType,
                                         cudnnTensorFormat_t format, int k, int c, int h, int w) {
    if ((format != CUDNN_TENSOR_NCHW && format != CUDNN_TENSOR_NHWC) || k <= 0 || c <= 0 ||
        h <= 0 || w <= 0)
        return 3;
    *d = {dataType, k, c, h, w, format == CUDNN_TENSOR_NHWC};
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t *d) {
    *d = new cudnnConvolutionStruct();
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t d) {
    delete d;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t d, int pad_h, int pad_w,
                                              int u, int v, int dilation_h, int dilation_w,
                                              cudnnConvolutionMode_t mode,
                                              cudnnDataType_t computeType) {
    d->pad_h = pad_h, d->pad_w = pad_w, d->u = u, d->v = v, d->dh = dilation_h, d->dw = dilation_w;
    d->mode = mode, d->compute = computeType;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t d, cudnnMathType_t m) {
    d->math = m;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t srcDesc,
    const cudnnFilterDescriptor_t filterDesc, const cudnnConvolutionDescriptor_t convDesc,
    const cudnnTensorDescriptor_t destDesc, const int requestedAlgoCount, int *returnedAlgoCount,
    cudnnConvolutionFwdAlgoPerf_t *perfResults) {
    (void)handle, (void)srcDesc, (void)filterDesc, (void)destDesc;
    if (requestedAlgoCount < 1) return 3;
    memset(perfResults, 0, sizeof *perfResults);
    perfResults[0].algo = 1; /* IMPLICIT_PRECOMP_GEMM */
    perfResults[0].memory = 4096;
    perfResults[0].mathType = convDesc->math;
    *returnedAlgoCount = 1;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc, const cudnnFilterDescriptor_t wDesc,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnTensorDescriptor_t yDesc,
    cudnnConvolutionFwdAlgo_t algo, size_t *sizeInBytes) {
    (void)handle, (void)xDesc, (void)wDesc, (void)convDesc, (void)yDesc, (void)algo;
    *sizeInBytes = 4096;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t handle, const void *alpha,
                                      const cudnnTensorDescriptor_t xDesc, const void *x,
                                      const cudnnFilterDescriptor_t wDesc, const void *w,
                                      const cudnnConvolutionDescriptor_t convDesc,
                                      cudnnConvolutionFwdAlgo_t algo, void *workSpace,
                                      size_t workSpaceSizeInBytes, const void *beta,
                                      const cudnnTensorDescriptor_t yDesc, void *y) {
    (void)algo;
    const cudnnTensorStruct X = *xDesc, Y = *yDesc;
    const cudnnFilterStruct Wf = *wDesc;
    const cudnnConvolutionStruct cv = *convDesc;
    if (X.c != Wf.c || Y.c != Wf.k || X.n != Y.n || cv.u != 1 || cv.v != 1 || cv.dh != 1 ||
        cv.dw != 1 || cv.mode != CUDNN_CROSS_CORRELATION ||
        Y.h != X.h + 2 * cv.pad_h - Wf.h + 1 || Y.w != X.w + 2 * cv.pad_w - Wf.w + 1 ||
        X.dt != Y.dt || X.dt != Wf.dt || (workSpaceSizeInBytes && !workSpace))
        return 3; /* CUDNN_STATUS_BAD_PARAM */
    const float al = *(const float *)alpha, be = *(const float *)beta;
    const cudaDataType t = sim_dnn_type(X.dt);
    sim_enqueue(handle->stream, [=]() {
        for (int n = 0; n < Y.n; n++)
            for (int k = 0; k < Y.c; k++)
                for (int oy = 0; oy < Y.h; oy++)
                    for (int ox = 0; ox < Y.w; ox++) {
                        float acc = 0.0f;
                        for (int c = 0; c < X.c; c++)
                            for (int r = 0; r < Wf.h; r++)
                                for (int s = 0; s < Wf.w; s++) {
                                    const int iy = oy + r - cv.pad_h, ix = ox + s - cv.pad_w;
                                    if (iy < 0 || iy >= X.h || ix < 0 || ix >= X.w) continue;
                                    acc += sim_load(x, t, sim_dnn_at(X.nhwc, X.c, X.h, X.w, n, c, iy, ix)) *
                                           sim_load(w, t, sim_dnn_at(Wf.nhwc, Wf.c, Wf.h, Wf.w, k, c, r, s));
                                }
                        const int64_t iy = sim_dnn_at(Y.nhwc, Y.c, Y.h, Y.w, n, k, oy, ox);
                        float v = al * acc;
                        if (be != 0.0f) v += be * sim_load(y, t, iy);
                        sim_store(y, t, iy, v);
                    }
    });
    return CUDNN_STATUS_SUCCESS;
}
}

#endif /* EDM_CUDNN_SIM_H */
