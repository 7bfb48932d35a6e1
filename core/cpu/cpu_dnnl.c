/*
 * cpu_dnnl.c - conv2d of the CPU backend through oneDNN (Debian's libdnnl), fp32 or bf16,
 * and the cache of conv weights rearranged for it and for the im2col fallback.
 *
 * Why: Debian's OpenBLAS 0.3.21 picks its kernels by CPU model and falls back to the generic
 * SSE3 ("Prescott") SGEMM on processors newer than it knows (Emerald Rapids, model 207),
 * while oneDNN picks its JIT kernels by the ISA the CPU reports (AVX-512, AMX). oneDNN's
 * direct convolution (brgconv) also needs no im2col buffer: it reads each 3x3 input once
 * from channels-last (NHWC) memory. On AMX processors its bf16 kernels run several times the
 * fp32 rate (--precision bf16).
 *
 * How: the backend's activations are NHWC (ops.h "Layouts"), which is what the primitive
 * reads and writes, so a call is one primitive on the tensors themselves, with the whole
 * epilogue fused as post-ops, in the reference's order of operations:
 *     out = ((conv + bias) + residual) * out_scale
 *   bias: the primitive's bias; residual: a sum post-op (dst += conv result), the
 *   residual copied into out first unless it is out; out_scale != 1: an eltwise linear
 *   post-op. (A binary-add post-op reading the residual would save that copy, about 2% of a
 *   3x3 conv's time, but oneDNN 2.6 computes it wrongly in some kernels: gemm:jit and
 *   jit_bf16_1x1 in test_ops' conv cases.)
 * fp32 runs the whole batch in one call. bf16 first rounds the input to bf16 (round to
 * nearest even) into per-backend scratch, chunk by chunk of images so that scratch stays
 * under CHUNK_BYTES (the workspace does not grow with the batch); weights are bf16,
 * accumulation and output fp32.
 * Weights are reordered once into the primitive's blocked layout (and type) and cached by
 * their address, as is the [ky][kx][ci][co] fp32 copy the im2col fallback multiplies by
 * (cpu_conv.c); cpu_free and cpu_upload drop cached copies of memory they free or overwrite
 * (edm_cpu_dnnl_forget). Primitives are cached by shape and epilogue (the cache is emptied
 * when full). Anything oneDNN refuses returns 1 without touching `out`, and cpu_conv.c
 * falls back to im2col + GEMM.
 *
 * Threads: oneDNN is built on the same OpenMP runtime (libgomp) as the backend and uses
 * omp_get_max_threads() threads as of when a primitive is made (fixed from then on), so that
 * is set to the backend's team before primitives are made and run.
 */
#include <malloc.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dnnl.h>

#include "cpu_internal.h"

/* bf16 input per chunk of images: half the NCHW engine's in + out transpose buffers */
#define CHUNK_BYTES ((int64_t)16 << 20)
#define MAX_PRIMS 512

struct dnnl_prim {
    int n, ci, co, h, w, k, pad, bias, bf16, res;
    float scale;
    dnnl_primitive_t prim;
    dnnl_memory_desc_t wmd; /* the weights layout it wants */
};

struct dnnl_weight {
    const void *key; /* the fp32 OIHW weights it was made from */
    dnnl_memory_desc_t md; /* the layout and type made */
    void *data;
};

struct cpu_dnnl {
    dnnl_engine_t eng;
    dnnl_stream_t stream;
    dnnl_stream_t thread_streams[EDM_CPU_MAX_THREADS]; /* one per team thread (attention) */
    struct dnnl_prim prims[MAX_PRIMS];
    int nprims;
    struct dnnl_weight *weights;
    int nweights, capweights;
    void *buf; /* bf16 input | scratchpad */
    size_t buf_cap;
};

static int dnnl_fail(char *msg, const char *what, dnnl_status_t s) {
    snprintf(msg, EDM_OPS_MSG, "oneDNN %s failed (status %d)", what, (int)s);
    return 1;
}

void edm_cpu_dnnl_free(struct cpu_dnnl *d) {
    if (!d) return;
    for (int i = 0; i < d->nprims; i++) dnnl_primitive_destroy(d->prims[i].prim);
    for (int i = 0; i < d->nweights; i++) free(d->weights[i].data);
    free(d->weights);
    free(d->buf);
    if (d->stream) dnnl_stream_destroy(d->stream);
    for (int t = 0; t < EDM_CPU_MAX_THREADS; t++)
        if (d->thread_streams[t]) dnnl_stream_destroy(d->thread_streams[t]);
    if (d->eng) dnnl_engine_destroy(d->eng);
    free(d);
}

void edm_cpu_dnnl_forget(struct cpu_dnnl *d, const void *ptr, size_t bytes) {
    if (!d || !ptr) return;
    const char *lo = ptr, *hi = lo + bytes;
    for (int i = 0; i < d->nweights;) {
        const char *k = d->weights[i].key;
        if (k >= lo && k < hi) {
            free(d->weights[i].data);
            d->weights[i] = d->weights[--d->nweights];
        } else {
            i++;
        }
    }
}

void edm_cpu_dnnl_forget_alloc(struct cpu_dnnl *d, void *ptr) {
    if (ptr) edm_cpu_dnnl_forget(d, ptr, malloc_usable_size(ptr));
}

static struct cpu_dnnl *dnnl_state(struct cpu_ctx *cx) {
    if (cx->dnnl) return cx->dnnl;
    struct cpu_dnnl *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    if (dnnl_engine_create(&d->eng, dnnl_cpu, 0) != dnnl_success ||
        dnnl_stream_create(&d->stream, d->eng, dnnl_stream_default_flags) != dnnl_success) {
        edm_cpu_dnnl_free(d);
        return NULL;
    }
    cx->dnnl = d;
    return d;
}

/* Makes the primitive of pd and keeps it, with its key and the weights layout it wants, in
 * the next free slot; NULL when oneDNN refuses. */
static struct dnnl_prim *prim_add(struct cpu_dnnl *d, const_dnnl_primitive_desc_t pd,
                                  struct dnnl_prim key) {
    struct dnnl_prim *p = &d->prims[d->nprims];
    *p = key;
    p->wmd = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    if (dnnl_primitive_create(&p->prim, pd)) return NULL;
    d->nprims++;
    return p;
}

/* Empties the primitive cache when fewer than `room` slots are left (many batch sizes or
 * shapes): simpler than an LRU, and oneDNN keeps its own cache of the compiled kernels. */
static void prims_make_room(struct cpu_dnnl *d, int room) {
    if (d->nprims <= MAX_PRIMS - room) return;
    for (int i = 0; i < d->nprims; i++) dnnl_primitive_destroy(d->prims[i].prim);
    d->nprims = 0;
}

/* The primitive for one chunk shape and epilogue (res: a sum post-op), made on first use.
 * NULL when oneDNN refuses it. */
static struct dnnl_prim *prim_get(struct cpu_dnnl *d, int n, int ci, int co, int h, int w, int k,
                                  int pad, int bias, int bf16, int res, float scale) {
    for (int i = 0; i < d->nprims; i++) {
        struct dnnl_prim *p = &d->prims[i];
        if (p->n == n && p->ci == ci && p->co == co && p->h == h && p->w == w && p->k == k &&
            p->pad == pad && p->bias == bias && p->bf16 == bf16 && p->res == res &&
            p->scale == scale)
            return p;
    }
    if (d->nprims == MAX_PRIMS) return NULL; /* edm_cpu_dnnl_conv2d empties it first */
    const int ho = h + 2 * pad - k + 1, wo = w + 2 * pad - k + 1;
    dnnl_dims_t sd = {n, ci, h, w}, wd = {co, ci, k, k}, bd = {co}, dd = {n, co, ho, wo};
    dnnl_dims_t strides = {1, 1}, pads = {pad, pad};
    const dnnl_data_type_t t = bf16 ? dnnl_bf16 : dnnl_f32;
    dnnl_memory_desc_t smd, wmd, bmd, dmd;
    dnnl_convolution_desc_t cd;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    struct dnnl_prim *result = NULL;
    if (dnnl_memory_desc_init_by_tag(&smd, 4, sd, t, dnnl_nhwc) ||
        dnnl_memory_desc_init_by_tag(&wmd, 4, wd, t, dnnl_format_tag_any) ||
        dnnl_memory_desc_init_by_tag(&bmd, 1, bd, dnnl_f32, dnnl_a) ||
        dnnl_memory_desc_init_by_tag(&dmd, 4, dd, dnnl_f32, dnnl_nhwc) ||
        dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct,
                                           &smd, &wmd, bias ? &bmd : NULL, &dmd, strides, pads,
                                           pads) ||
        dnnl_primitive_attr_create(&attr) ||
        dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) ||
        dnnl_post_ops_create(&po))
        goto done;
    if ((res && dnnl_post_ops_append_sum(po, 1.0f)) ||
        (scale != 1.0f && dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_linear, scale, 0.0f)) ||
        dnnl_primitive_attr_set_post_ops(attr, po) ||
        dnnl_primitive_desc_create(&pd, &cd, attr, d->eng, NULL))
        goto done;
    result = prim_add(d, pd, (struct dnnl_prim){n, ci, co, h, w, k, pad, bias, bf16, res, scale,
                                                NULL, {0}});
done:
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return result;
}

/* Scratchpad bytes a primitive needs. */
static size_t prim_scratch(const struct dnnl_prim *p) {
    const_dnnl_primitive_desc_t pd;
    if (dnnl_primitive_get_primitive_desc(p->prim, &pd)) return 0;
    return dnnl_memory_desc_get_size(dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0));
}

/* The cached copy of the weights w in the layout md, or NULL. */
static void *weights_find(const struct cpu_dnnl *d, const float *w, const dnnl_memory_desc_t *md) {
    for (int i = 0; i < d->nweights; i++) {
        const struct dnnl_weight *e = &d->weights[i];
        if (e->key == w && dnnl_memory_desc_equal(&e->md, md)) return e->data;
    }
    return NULL;
}

/* Room for one more entry and a buffer of `count` times md's size for it; NULL with msg set. */
static void *weights_alloc_n(struct cpu_dnnl *d, const dnnl_memory_desc_t *md, size_t count,
                             char *msg) {
    if (d->nweights == d->capweights) {
        int cap = d->capweights ? 2 * d->capweights : 64;
        void *nw = realloc(d->weights, sizeof *d->weights * cap);
        if (!nw) goto oom;
        d->weights = nw;
        d->capweights = cap;
    }
    size_t bytes = count * dnnl_memory_desc_get_size(md);
    void *data = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    if (data) return data;
oom:
    snprintf(msg, EDM_OPS_MSG, "out of memory for reordered conv weights");
    return NULL;
}

static void *weights_alloc(struct cpu_dnnl *d, const dnnl_memory_desc_t *md, char *msg) {
    return weights_alloc_n(d, md, 1, msg);
}

/* dst (layout dmd) = src (layout smd), through a reorder primitive. */
static dnnl_status_t reorder_run(struct cpu_dnnl *d, const dnnl_memory_desc_t *smd,
                                 const void *src, const dnnl_memory_desc_t *dmd, void *dst) {
    dnnl_memory_t sm = NULL, dm = NULL;
    dnnl_primitive_desc_t rpd = NULL;
    dnnl_primitive_t r = NULL;
    dnnl_status_t s = dnnl_memory_create(&sm, smd, d->eng, (void *)src);
    if (!s) s = dnnl_memory_create(&dm, dmd, d->eng, dst);
    if (!s) s = dnnl_reorder_primitive_desc_create(&rpd, smd, d->eng, dmd, d->eng, NULL);
    if (!s) s = dnnl_primitive_create(&r, rpd);
    if (!s) {
        dnnl_exec_arg_t args[] = {{DNNL_ARG_FROM, sm}, {DNNL_ARG_TO, dm}};
        s = dnnl_primitive_execute(r, d->stream, 2, args);
        if (!s) s = dnnl_stream_wait(d->stream);
    }
    if (r) dnnl_primitive_destroy(r);
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    if (sm) dnnl_memory_destroy(sm);
    if (dm) dnnl_memory_destroy(dm);
    return s;
}

/* The weights [co, ci, k, k] in the layout (and type) md, reordered from OIHW fp32 on
 * first use. */
static void *weights_get(struct cpu_dnnl *d, const dnnl_memory_desc_t *md, int co, int ci, int k,
                         const float *w, char *msg) {
    void *data = weights_find(d, w, md);
    if (data) return data;
    if (!(data = weights_alloc(d, md, msg))) return NULL;
    dnnl_dims_t wd = {co, ci, k, k};
    dnnl_memory_desc_t smd;
    dnnl_status_t s = dnnl_memory_desc_init_by_tag(&smd, 4, wd, dnnl_f32, dnnl_oihw);
    if (!s) s = reorder_run(d, &smd, w, md, data);
    if (s) {
        free(data);
        dnnl_fail(msg, "weight reorder", s);
        return NULL;
    }
    d->weights[d->nweights++] = (struct dnnl_weight){w, *md, data};
    return data;
}

/* dst[i] = bf16(src[i]) over n values. */
EDM_CPU_CLONES static void to_bf16_block(uint16_t *restrict dst, const float *restrict src,
                                         int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) dst[i] = edm_cpu_bf16(src[i]);
}

/* dst[i] = bf16(src[i]) over n values, across the team. */
static void to_bf16_run(uint16_t *dst, const float *src, int64_t n, int team) {
    const int64_t piece = ((n + team - 1) / team + 15) / 16 * 16;
#pragma omp parallel for num_threads(team) schedule(static)
    for (int t = 0; t < team; t++) {
        const int64_t a = piece * t, e = a + piece < n ? a + piece : n;
        if (a < e) to_bf16_block(dst + a, src + a, e - a);
    }
}

static void copy_run(float *dst, const float *src, int64_t n, int team) {
    const int64_t piece = (n + team - 1) / team;
#pragma omp parallel for num_threads(team) schedule(static)
    for (int t = 0; t < team; t++) {
        const int64_t a = piece * t, e = a + piece < n ? a + piece : n;
        if (a < e) memcpy(dst + a, src + a, (size_t)(e - a) * sizeof(float));
    }
}

/* Grows the shared buffer to `need` bytes. */
static int buf_reserve(struct cpu_ctx *cx, struct cpu_dnnl *d, size_t need, char *msg) {
    if (need <= d->buf_cap) return 0;
    void *nb = aligned_alloc(64, (need + 4095) & ~(size_t)4095);
    if (!nb) {
        snprintf(msg, EDM_OPS_MSG, "out of memory for %zu bytes of conv scratch", need);
        return 1;
    }
    free(d->buf);
    d->buf = nb;
    cx->scratch_allocs++;
    d->buf_cap = (need + 4095) & ~(size_t)4095;
    return 0;
}

/* Runs p on stream st (bias optional); `what` names it in an error. */
static int prim_run_on(struct cpu_dnnl *d, dnnl_stream_t st, const struct dnnl_prim *p, void *src,
                       void *wdata, void *dst, void *bias, void *scratch, const char *what,
                       char *msg) {
    const_dnnl_primitive_desc_t pd;
    dnnl_primitive_get_primitive_desc(p->prim, &pd);
    enum { NM = 5 };
    dnnl_memory_t m[NM] = {0};
    const dnnl_memory_desc_t *md[NM] = {
        dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0),
        dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0),
        dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0),
        dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0),
        dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 1),
    };
    void *h[NM] = {src, wdata, dst, scratch, bias};
    const int arg[NM] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST, DNNL_ARG_SCRATCHPAD,
                         DNNL_ARG_BIAS};
    dnnl_exec_arg_t args[NM];
    int na = 0;
    dnnl_status_t s = dnnl_success;
    for (int i = 0; i < NM && !s; i++) {
        if (i == 4 && !bias) continue;
        s = dnnl_memory_create(&m[i], md[i], d->eng, h[i]);
        args[na++] = (dnnl_exec_arg_t){arg[i], m[i]};
    }
    if (!s) s = dnnl_primitive_execute(p->prim, st, na, args);
    if (!s) s = dnnl_stream_wait(st);
    for (int i = 0; i < NM; i++)
        if (m[i]) dnnl_memory_destroy(m[i]);
    return s ? dnnl_fail(msg, what, s) : 0;
}

static int prim_run(struct cpu_dnnl *d, const struct dnnl_prim *p, void *src, void *wdata,
                    void *dst, void *bias, void *scratch, const char *what, char *msg) {
    return prim_run_on(d, d->stream, p, src, wdata, dst, bias, scratch, what, msg);
}

int edm_cpu_dnnl_conv2d(struct cpu_ctx *cx, edm_tensor *out, const edm_tensor *in,
                        const edm_tensor *weight, const edm_tensor *bias, int pad,
                        const edm_tensor *residual, float out_scale, char *msg) {
    struct cpu_dnnl *d = dnnl_state(cx);
    if (!d) return 1; /* no oneDNN engine: the caller falls back */
    const int N = in->n, Ci = in->c, H = in->h, W = in->w, Co = out->c, k = weight->h;
    const int64_t Pi = (int64_t)H * W, Po = (int64_t)out->h * out->w;
    const int bf16 = cx->bf16;
    int chunk = N;
    if (bf16) {
        chunk = (int)(CHUNK_BYTES / (Pi * Ci * 2));
        chunk = chunk < 1 ? 1 : chunk > N ? N : chunk;
    }
    const int res = residual != NULL;
    /* before the primitives are made: oneDNN fixes a primitive's thread count when it makes it
     * (a backend of 1 thread ran its convolutions on every core) */
    omp_set_num_threads(cx->threads);
    prims_make_room(d, 2);
    /* Equal chunks (at most two primitives per shape: the chunk and the remainder). */
    struct dnnl_prim *pf = prim_get(d, chunk, Ci, Co, H, W, k, pad, bias != NULL, bf16, res,
                                    out_scale);
    struct dnnl_prim *pr = N % chunk ? prim_get(d, N % chunk, Ci, Co, H, W, k, pad, bias != NULL,
                                                bf16, res, out_scale)
                                     : NULL;
    if (!pf || (N % chunk && !pr)) return 1; /* refused: the caller falls back */
    void *wdata = weights_get(d, &pf->wmd, Co, Ci, k, cpu_f(weight), msg);
    void *wdata_r = pr ? weights_get(d, &pr->wmd, Co, Ci, k, cpu_f(weight), msg) : NULL;
    if (!wdata || (pr && !wdata_r)) return -1;

    const size_t in_bytes = bf16 ? ((size_t)(chunk * Pi * Ci * 2) + 63) & ~(size_t)63 : 0;
    size_t sp = prim_scratch(pf);
    if (pr && prim_scratch(pr) > sp) sp = prim_scratch(pr);
    if (buf_reserve(cx, d, in_bytes + sp, msg)) return -1;
    char *xs = d->buf, *sps = xs + in_bytes;
    const int team = edm_cpu_team(cx, (double)chunk * Pi * Ci, 65536.0);

    for (int n0 = 0; n0 < N; n0 += chunk) {
        const int nb = N - n0 < chunk ? N - n0 : chunk;
        const struct dnnl_prim *p = nb == chunk ? pf : pr;
        const float *x = cpu_f(in) + (int64_t)n0 * Pi * Ci;
        float *y = cpu_f(out) + (int64_t)n0 * Po * Co;
        const float *r = residual ? cpu_f(residual) + (int64_t)n0 * Po * Co : NULL;
        if (bf16) to_bf16_run((uint16_t *)xs, x, nb * Pi * Ci, team);
        if (r && r != y) copy_run(y, r, nb * Po * Co, team); /* the sum post-op adds out */
        if (prim_run(d, p, bf16 ? (void *)xs : (void *)x, nb == chunk ? wdata : wdata_r, y,
                     bias ? bias->data : NULL, sps, "convolution", msg))
            return -1;
    }
    return 0;
}

const float *edm_cpu_dnnl_weights_hwio(struct cpu_ctx *cx, const edm_tensor *weight, char *msg) {
    struct cpu_dnnl *d = dnnl_state(cx);
    if (!d) {
        snprintf(msg, EDM_OPS_MSG, "no oneDNN engine to rearrange the conv weights");
        return NULL;
    }
    dnnl_dims_t wd = {weight->n, weight->c, weight->h, weight->w};
    dnnl_memory_desc_t md;
    if (dnnl_memory_desc_init_by_tag(&md, 4, wd, dnnl_f32, dnnl_hwio)) {
        snprintf(msg, EDM_OPS_MSG, "oneDNN refused an hwio weight layout");
        return NULL;
    }
    return weights_get(d, &md, weight->n, weight->c, weight->h, cpu_f(weight), msg);
}

/* ---- Winograd's 16 GEMMs as oneDNN matmuls (cpu_winograd.c) ----------------------------- */

/* The matmul of one e, M[e] (len x Co) = V[e] (len x Ci) . U[e] (Ci x Co), dense rows,
 * weights in the layout oneDNN prefers (blocked: packed once, not at every call); bf16: V
 * and U in bf16, M fp32. Made on first use and kept with the convs' primitives (k = -1
 * marks it). NULL when refused. */
static struct dnnl_prim *wino_prim(struct cpu_dnnl *d, int len, int ci, int co, int bf16) {
    for (int i = 0; i < d->nprims; i++) {
        struct dnnl_prim *p = &d->prims[i];
        if (p->k == -1 && p->n == len && p->ci == ci && p->co == co && p->bf16 == bf16) return p;
    }
    const dnnl_data_type_t t = bf16 ? dnnl_bf16 : dnnl_f32;
    if (d->nprims == MAX_PRIMS) return NULL;
    dnnl_dims_t sd = {len, ci}, wd = {ci, co}, dd = {len, co};
    dnnl_memory_desc_t smd, wmd, dmd;
    dnnl_matmul_desc_t md;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    struct dnnl_prim *result = NULL;
    if (dnnl_memory_desc_init_by_tag(&smd, 2, sd, t, dnnl_ab) ||
        dnnl_memory_desc_init_by_tag(&wmd, 2, wd, t, dnnl_format_tag_any) ||
        dnnl_memory_desc_init_by_tag(&dmd, 2, dd, dnnl_f32, dnnl_ab) ||
        dnnl_matmul_desc_init(&md, &smd, &wmd, NULL, &dmd) || dnnl_primitive_attr_create(&attr) ||
        dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) ||
        dnnl_primitive_desc_create(&pd, &md, attr, d->eng, NULL))
        goto done;
    result = prim_add(d, pd, (struct dnnl_prim){len, ci, co, 0, 0, -1, 0, 0, bf16, 0, 1.0f, NULL,
                                                {0}});
done:
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return result;
}

int edm_cpu_dnnl_wino_gemm(struct cpu_ctx *cx, const edm_tensor *weight, const void *V,
                           float *M, int len, char *msg) {
    struct cpu_dnnl *d = dnnl_state(cx);
    if (!d) {
        snprintf(msg, EDM_OPS_MSG, "no oneDNN engine for Winograd's GEMMs");
        return 1;
    }
    const int ci = weight->c, co = weight->n;
    omp_set_num_threads(cx->threads); /* before the primitive is made, as for the convs */
    prims_make_room(d, 1);
    struct dnnl_prim *p = wino_prim(d, len, ci, co, cx->bf16);
    if (!p) {
        snprintf(msg, EDM_OPS_MSG, "oneDNN refused a [%d,%d] x [%d,%d] %s matmul", len, ci, ci,
                 co, cx->bf16 ? "bf16" : "fp32");
        return 1;
    }
    /* the 16 U[e] in the primitive's weights layout (the same for every len), one after
     * another, made once per weight tensor and kept (keyed by the OIHW original and that 2-D
     * layout: no conv's 4-D one); U itself only while they are made */
    const size_t wbytes = dnnl_memory_desc_get_size(&p->wmd);
    char *w = weights_find(d, cpu_f(weight), &p->wmd);
    if (!w) {
        dnnl_dims_t ud = {ci, co};
        dnnl_memory_desc_t umd;
        float *U = malloc((size_t)16 * ci * co * sizeof(float));
        if (!U || !(w = weights_alloc_n(d, &p->wmd, 16, msg))) {
            free(U);
            snprintf(msg, EDM_OPS_MSG, "out of memory for Winograd's conv weights");
            return 1;
        }
        edm_cpu_winograd_weights(U, cpu_f(weight), co, ci);
        dnnl_status_t st = dnnl_memory_desc_init_by_tag(&umd, 2, ud, dnnl_f32, dnnl_ab);
        for (int e = 0; e < 16 && !st; e++)
            st = reorder_run(d, &umd, U + (size_t)e * ci * co, &p->wmd, w + e * wbytes);
        free(U);
        if (st) {
            free(w);
            return dnnl_fail(msg, "Winograd weight reorder", st);
        }
        d->weights[d->nweights++] = (struct dnnl_weight){cpu_f(weight), p->wmd, w};
    }
    if (buf_reserve(cx, d, prim_scratch(p), msg)) return 1;
    const size_t es = (size_t)len * ci * (cx->bf16 ? 2 : 4); /* bytes between e */
    for (int e = 0; e < 16; e++)
        if (prim_run(d, p, (char *)V + e * es, w + e * wbytes, M + (size_t)e * len * co, NULL,
                     d->buf, "Winograd matmul", msg))
            return 1;
    return 0;
}

/* ---- bf16 attention's matmuls, one thread each (cpu_attention.c) ------------------------ */

/* The matmul of a block of `rows` query rows of one batch-head; which 0: the scores
 * S [rows][P] fp32 = alpha * q [rows][Ch] . k^T (k [P][Ch]: element (c, j) of k^T at
 * j * Ch + c); which 1: o [rows][Ch] fp32 (rows C apart: straight into NHWC) = p [rows][P]
 * . v [P][Ch]; q, k, p, v bf16. Made for one thread (it runs inside the team: see
 * edm_cpu_dnnl_attention_prims) and kept with the convs' primitives (k = -2 - which marks
 * it). NULL when refused, or when oneDNN has it only in its reference code (slower than the
 * fp32 path). */
static struct dnnl_prim *attn_prim(struct cpu_dnnl *d, int which, int rows, int P, int Ch, int C,
                                   float alpha) {
    for (int i = 0; i < d->nprims; i++) {
        struct dnnl_prim *p = &d->prims[i];
        if (p->k == -2 - which && p->n == rows && p->w == P && p->ci == Ch && p->co == C &&
            p->scale == alpha)
            return p;
    }
    if (d->nprims == MAX_PRIMS) return NULL;
    const int64_t cols = which ? Ch : P, inner = which ? P : Ch; /* N and K */
    dnnl_dims_t sd = {rows, inner}, wd = {inner, cols}, dd = {rows, cols};
    dnnl_dims_t ws = {which ? Ch : 1, which ? 1 : Ch}, ds = {which ? C : P, 1};
    dnnl_memory_desc_t smd, wmd, dmd;
    dnnl_matmul_desc_t md;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    struct dnnl_prim *result = NULL;
    const int saved = omp_get_max_threads();
    omp_set_num_threads(1); /* oneDNN blocks a primitive for the threads it will have */
    if (dnnl_memory_desc_init_by_tag(&smd, 2, sd, dnnl_bf16, dnnl_ab) ||
        dnnl_memory_desc_init_by_strides(&wmd, 2, wd, dnnl_bf16, ws) ||
        dnnl_memory_desc_init_by_strides(&dmd, 2, dd, dnnl_f32, ds) ||
        dnnl_matmul_desc_init(&md, &smd, &wmd, NULL, &dmd) || dnnl_primitive_attr_create(&attr) ||
        dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) ||
        (alpha != 1.0f && dnnl_primitive_attr_set_output_scales(attr, 1, 0, &alpha)) ||
        dnnl_primitive_desc_create(&pd, &md, attr, d->eng, NULL))
        goto done;
    const char *impl = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) || !impl ||
        strncmp(impl, "ref", 3) == 0)
        goto done;
    result = prim_add(d, pd, (struct dnnl_prim){rows, Ch, C, 0, P, -2 - which, 0, 0, 1, 0, alpha,
                                                NULL, {0}});
done:
    omp_set_num_threads(saved);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return result;
}

int edm_cpu_dnnl_attention_prims(struct cpu_ctx *cx, int rows, int rows_last, int P, int Ch, int C,
                                 float alpha, struct dnnl_prim *mm[4], size_t *scratch,
                                 char *msg) {
    struct cpu_dnnl *d = dnnl_state(cx);
    if (!d) return 1;
    for (int t = 0; t < cx->threads; t++) {
        if (d->thread_streams[t]) continue;
        const dnnl_status_t s =
            dnnl_stream_create(&d->thread_streams[t], d->eng, dnnl_stream_default_flags);
        if (s) {
            dnnl_fail(msg, "stream creation", s);
            return -1;
        }
    }
    prims_make_room(d, 4);
    mm[0] = attn_prim(d, 0, rows, P, Ch, C, alpha);
    mm[1] = attn_prim(d, 1, rows, P, Ch, C, 1.0f);
    mm[2] = rows_last ? attn_prim(d, 0, rows_last, P, Ch, C, alpha) : NULL;
    mm[3] = rows_last ? attn_prim(d, 1, rows_last, P, Ch, C, 1.0f) : NULL;
    if (!mm[0] || !mm[1] || (rows_last && (!mm[2] || !mm[3]))) return 1;
    *scratch = 0;
    for (int i = 0; i < 4; i++)
        if (mm[i] && prim_scratch(mm[i]) > *scratch) *scratch = prim_scratch(mm[i]);
    return 0;
}

int edm_cpu_dnnl_attention_run(struct cpu_ctx *cx, const struct dnnl_prim *mm, const void *a,
                               const void *b, float *dst, void *scratch, char *msg) {
    struct cpu_dnnl *d = cx->dnnl;
    return prim_run_on(d, d->thread_streams[omp_get_thread_num()], mm, (void *)a, (void *)b, dst,
                       NULL, scratch, "attention matmul", msg);
}
