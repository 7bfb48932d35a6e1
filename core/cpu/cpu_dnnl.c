/*
 * cpu_dnnl.c - conv2d of the CPU backend through oneDNN (Debian's libdnnl), fp32 or bf16.
 *
 * Why: Debian's OpenBLAS 0.3.21 picks its kernels by CPU model and falls back to the generic
 * SSE3 ("Prescott") SGEMM on processors newer than it knows (Emerald Rapids, model 207),
 * while oneDNN picks its JIT kernels by the ISA the CPU reports (AVX-512, AMX). oneDNN's
 * direct convolution (brgconv) also needs no im2col buffer: it reads each 3x3 input once
 * from channels-last (NHWC) memory. On AMX processors its bf16 kernels run several times the
 * fp32 rate (--precision bf16).
 *
 * How: the op interface is NCHW, so a call
 *   1. transposes the input NCHW -> NHWC into per-backend scratch (converting to bf16 for the
 *      bf16 precision: round to nearest even),
 *   2. runs the oneDNN convolution with the bias fused (NHWC fp32 out, fp32 accumulation),
 *   3. transposes the result back to NCHW with the rest of the epilogue fused:
 *      out = ((acc + bias) + residual) * out_scale, the reference's order of operations.
 * The batch is cut into chunks of images so the two NHWC buffers stay under CHUNK_BYTES
 * (the workspace does not grow with the batch). Weights are reordered once into the
 * primitive's blocked layout (and type) and cached by their address; cpu_free and
 * cpu_upload drop cached copies of memory they free or overwrite (edm_cpu_dnnl_forget).
 * Primitives are cached by shape. Anything oneDNN refuses returns 1 without touching
 * `out`, and cpu_conv.c falls back to im2col + OpenBLAS.
 *
 * Threads: oneDNN is built on the same OpenMP runtime (libgomp) as the backend and uses
 * omp_get_max_threads() threads, which is set to the backend's team before each call.
 */
#include <malloc.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dnnl.h>

#include "cpu_internal.h"

#define CHUNK_BYTES ((int64_t)32 << 20) /* NHWC in + out per chunk of images */
#define MAX_PRIMS 512

struct dnnl_prim {
    int n, ci, co, h, w, k, pad, bias, bf16;
    dnnl_primitive_t prim;
    dnnl_memory_desc_t wmd; /* the weights layout it wants */
};

struct dnnl_weight {
    const void *key; /* the fp32 OIHW weights it was made from */
    int bf16;
    dnnl_memory_desc_t md;
    void *data;
};

struct cpu_dnnl {
    dnnl_engine_t eng;
    dnnl_stream_t stream;
    struct dnnl_prim prims[MAX_PRIMS];
    int nprims;
    struct dnnl_weight *weights;
    int nweights, capweights;
    void *buf; /* NHWC in | NHWC out | scratchpad */
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

/* The primitive for one chunk shape, made on first use. NULL when oneDNN refuses it. */
static struct dnnl_prim *prim_get(struct cpu_dnnl *d, int n, int ci, int co, int h, int w, int k,
                                  int pad, int bias, int bf16) {
    for (int i = 0; i < d->nprims; i++) {
        struct dnnl_prim *p = &d->prims[i];
        if (p->n == n && p->ci == ci && p->co == co && p->h == h && p->w == w && p->k == k &&
            p->pad == pad && p->bias == bias && p->bf16 == bf16)
            return p;
    }
    if (d->nprims == MAX_PRIMS) return NULL;
    const int ho = h + 2 * pad - k + 1, wo = w + 2 * pad - k + 1;
    dnnl_dims_t sd = {n, ci, h, w}, wd = {co, ci, k, k}, bd = {co}, dd = {n, co, ho, wo};
    dnnl_dims_t strides = {1, 1}, pads = {pad, pad};
    const dnnl_data_type_t t = bf16 ? dnnl_bf16 : dnnl_f32;
    dnnl_memory_desc_t smd, wmd, bmd, dmd;
    dnnl_convolution_desc_t cd;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    struct dnnl_prim *res = NULL;
    if (dnnl_memory_desc_init_by_tag(&smd, 4, sd, t, dnnl_nhwc) ||
        dnnl_memory_desc_init_by_tag(&wmd, 4, wd, t, dnnl_format_tag_any) ||
        dnnl_memory_desc_init_by_tag(&bmd, 1, bd, dnnl_f32, dnnl_a) ||
        dnnl_memory_desc_init_by_tag(&dmd, 4, dd, dnnl_f32, dnnl_nhwc) ||
        dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct,
                                           &smd, &wmd, bias ? &bmd : NULL, &dmd, strides, pads,
                                           pads) ||
        dnnl_primitive_attr_create(&attr) ||
        dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) ||
        dnnl_primitive_desc_create(&pd, &cd, attr, d->eng, NULL))
        goto done;
    struct dnnl_prim *p = &d->prims[d->nprims];
    *p = (struct dnnl_prim){n, ci, co, h, w, k, pad, bias, bf16, NULL, {0}};
    p->wmd = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    if (dnnl_primitive_create(&p->prim, pd)) goto done;
    d->nprims++;
    res = p;
done:
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return res;
}

/* Scratchpad bytes a primitive needs. */
static size_t prim_scratch(const struct dnnl_prim *p) {
    const_dnnl_primitive_desc_t pd;
    if (dnnl_primitive_get_primitive_desc(p->prim, &pd)) return 0;
    return dnnl_memory_desc_get_size(dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0));
}

/* The weights in the layout p wants, reordered from OIHW fp32 on first use. */
static void *weights_get(struct cpu_dnnl *d, const struct dnnl_prim *p, const float *w, char *msg) {
    for (int i = 0; i < d->nweights; i++) {
        struct dnnl_weight *e = &d->weights[i];
        if (e->key == w && e->bf16 == p->bf16 && dnnl_memory_desc_equal(&e->md, &p->wmd))
            return e->data;
    }
    if (d->nweights == d->capweights) {
        int cap = d->capweights ? 2 * d->capweights : 64;
        void *nw = realloc(d->weights, sizeof *d->weights * cap);
        if (!nw) goto oom;
        d->weights = nw;
        d->capweights = cap;
    }
    size_t bytes = dnnl_memory_desc_get_size(&p->wmd);
    void *data = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    if (!data) goto oom;
    dnnl_dims_t wd = {p->co, p->ci, p->k, p->k};
    dnnl_memory_desc_t smd;
    dnnl_memory_t sm = NULL, dm = NULL;
    dnnl_primitive_desc_t rpd = NULL;
    dnnl_primitive_t r = NULL;
    dnnl_status_t s = dnnl_memory_desc_init_by_tag(&smd, 4, wd, dnnl_f32, dnnl_oihw);
    if (!s) s = dnnl_memory_create(&sm, &smd, d->eng, (void *)w);
    if (!s) s = dnnl_memory_create(&dm, &p->wmd, d->eng, data);
    if (!s) s = dnnl_reorder_primitive_desc_create(&rpd, &smd, d->eng, &p->wmd, d->eng, NULL);
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
    if (s) {
        free(data);
        dnnl_fail(msg, "weight reorder", s);
        return NULL;
    }
    d->weights[d->nweights++] = (struct dnnl_weight){w, p->bf16, p->wmd, data};
    return data;
oom:
    snprintf(msg, EDM_OPS_MSG, "out of memory for reordered conv weights");
    return NULL;
}

static inline uint16_t to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7f800000u) == 0x7f800000u) return (uint16_t)((u >> 16) | ((u & 0xffff) ? 0x40 : 0));
    u += 0x7fffu + ((u >> 16) & 1u); /* round to nearest even */
    return (uint16_t)(u >> 16);
}

#define TB 32 /* transpose tile: TB channels x TB pixels */

/* One transpose between NCHW [n, C, P] and NHWC [n, P, C] for `n` images, tile by tile. */
struct xpose {
    enum { TO_NHWC_F32, TO_NHWC_BF16, FROM_NHWC } kind;
    void *dst;
    const float *src;
    const float *res; /* FROM_NHWC: NCHW residual or NULL */
    float s;          /* FROM_NHWC: out_scale */
    int C;
    int64_t P;
};

/* Image i, channels [c0, c1), pixels [p0, p1):
 *   TO_NHWC_*: dst (NHWC, fp32 or bf16) = src (NCHW);
 *   FROM_NHWC: dst (NCHW) = (src (NHWC, bias already added) + res) * s. res may be dst
 *   itself: each element is read before it is written. */
static void xpose_tile(const struct xpose *x, int64_t i, int c0, int c1, int64_t p0, int64_t p1) {
    const int C = x->C;
    const int64_t P = x->P, base = i * C * P;
    const float *s = x->src + base;
    if (x->kind == TO_NHWC_BF16) {
        uint16_t *o = (uint16_t *)x->dst + base;
        for (int64_t p = p0; p < p1; p++)
            for (int c = c0; c < c1; c++) o[p * C + c] = to_bf16(s[(int64_t)c * P + p]);
    } else if (x->kind == TO_NHWC_F32) {
        float *o = (float *)x->dst + base;
        for (int64_t p = p0; p < p1; p++)
            for (int c = c0; c < c1; c++) o[p * C + c] = s[(int64_t)c * P + p];
    } else {
        for (int c = c0; c < c1; c++) {
            float *orow = (float *)x->dst + base + (int64_t)c * P;
            const float *rrow = x->res ? x->res + base + (int64_t)c * P : NULL;
            for (int64_t p = p0; p < p1; p++) {
                float v = s[p * C + c];
                if (rrow) v = v + rrow[p];
                orow[p] = x->s == 1.0f ? v : v * x->s;
            }
        }
    }
}

static void xpose_run(const struct xpose *x, int64_t n, int team) {
    const int C = x->C;
    const int64_t P = x->P, ct = (C + TB - 1) / TB, pt = (P + TB - 1) / TB;
#pragma omp parallel for num_threads(team) schedule(static) collapse(2)
    for (int64_t i = 0; i < n; i++) {
        for (int64_t tile = 0; tile < ct * pt; tile++) {
            const int c0 = (int)(tile / pt) * TB;
            const int64_t p0 = tile % pt * TB;
            xpose_tile(x, i, c0, c0 + TB < C ? c0 + TB : C, p0, p0 + TB < P ? p0 + TB : P);
        }
    }
}

int edm_cpu_dnnl_conv2d(struct cpu_ctx *cx, edm_tensor *out, const edm_tensor *in,
                        const edm_tensor *weight, const edm_tensor *bias, int pad,
                        const edm_tensor *residual, float out_scale, char *msg) {
    struct cpu_dnnl *d = dnnl_state(cx);
    if (!d) return 1; /* no oneDNN engine: the caller falls back */
    const int N = in->n, Ci = in->c, H = in->h, W = in->w, Co = out->c, k = weight->h;
    const int64_t Pi = (int64_t)H * W, Po = (int64_t)out->h * out->w;
    const int bf16 = cx->bf16, esz = bf16 ? 2 : 4;
    const int64_t per_img = Pi * Ci * esz + Po * Co * 4;
    int chunk = (int)(CHUNK_BYTES / per_img);
    chunk = chunk < 1 ? 1 : chunk > N ? N : chunk;
    /* Equal chunks (at most two primitives per shape: the chunk and the remainder). */
    struct dnnl_prim *pf = prim_get(d, chunk, Ci, Co, H, W, k, pad, bias != NULL, bf16);
    struct dnnl_prim *pr = N % chunk ? prim_get(d, N % chunk, Ci, Co, H, W, k, pad, bias != NULL,
                                                bf16)
                                     : NULL;
    if (!pf || (N % chunk && !pr)) return 1; /* refused: the caller falls back */
    void *wdata = weights_get(d, pf, cpu_f(weight), msg);
    void *wdata_r = pr ? weights_get(d, pr, cpu_f(weight), msg) : NULL;
    if (!wdata || (pr && !wdata_r)) return -1;

    const size_t in_bytes = ((size_t)(chunk * Pi * Ci * esz) + 63) & ~(size_t)63;
    const size_t out_bytes = ((size_t)(chunk * Po * Co * 4) + 63) & ~(size_t)63;
    size_t sp = prim_scratch(pf);
    if (pr && prim_scratch(pr) > sp) sp = prim_scratch(pr);
    const size_t need = in_bytes + out_bytes + sp;
    if (need > d->buf_cap) {
        void *nb = aligned_alloc(64, (need + 4095) & ~(size_t)4095);
        if (!nb) {
            snprintf(msg, EDM_OPS_MSG, "out of memory for %zu bytes of conv scratch", need);
            return -1;
        }
        free(d->buf);
        d->buf = nb;
        cx->scratch_allocs++;
        d->buf_cap = (need + 4095) & ~(size_t)4095;
    }
    char *xs = d->buf, *ys = xs + in_bytes, *sps = ys + out_bytes;
    const int team = edm_cpu_team(cx, (double)chunk * (Pi * Ci + Po * Co), 65536.0);
    omp_set_num_threads(cx->threads);

    for (int n0 = 0; n0 < N; n0 += chunk) {
        const int nb = N - n0 < chunk ? N - n0 : chunk;
        const struct dnnl_prim *p = nb == chunk ? pf : pr;
        void *wd = nb == chunk ? wdata : wdata_r;
        const struct xpose xin = {bf16 ? TO_NHWC_BF16 : TO_NHWC_F32, xs,
                                  cpu_f(in) + (int64_t)n0 * Ci * Pi, NULL, 1.0f, Ci, Pi};
        xpose_run(&xin, nb, team);
        const_dnnl_primitive_desc_t pd;
        dnnl_primitive_get_primitive_desc(p->prim, &pd);
        dnnl_memory_t m[5] = {0};
        const dnnl_query_t q[5] = {dnnl_query_src_md, dnnl_query_weights_md, dnnl_query_dst_md,
                                   dnnl_query_scratchpad_md, dnnl_query_weights_md};
        void *h[5] = {xs, wd, ys, sps, bias ? bias->data : NULL};
        const int idx[5] = {0, 0, 0, 0, 1};
        const int nm = bias ? 5 : 4;
        dnnl_status_t s = dnnl_success;
        for (int i = 0; i < nm && !s; i++)
            s = dnnl_memory_create(&m[i], dnnl_primitive_desc_query_md(pd, q[i], idx[i]), d->eng,
                                   h[i]);
        if (!s) {
            dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, m[0]},
                                       {DNNL_ARG_WEIGHTS, m[1]},
                                       {DNNL_ARG_DST, m[2]},
                                       {DNNL_ARG_SCRATCHPAD, m[3]},
                                       {DNNL_ARG_BIAS, m[4]}};
            s = dnnl_primitive_execute(p->prim, d->stream, nm, args);
            if (!s) s = dnnl_stream_wait(d->stream);
        }
        for (int i = 0; i < nm; i++)
            if (m[i]) dnnl_memory_destroy(m[i]);
        if (s) return -dnnl_fail(msg, "convolution", s);
        const int64_t o = (int64_t)n0 * Co * Po;
        const struct xpose xout = {FROM_NHWC, cpu_f(out) + o, (const float *)ys,
                                   residual ? cpu_f(residual) + o : NULL, out_scale, Co, Po};
        xpose_run(&xout, nb, team);
    }
    return 0;
}
