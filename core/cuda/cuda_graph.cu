/*
 * cuda_graph.cu - CUDA graphs for whole forward passes (forward_begin / forward_end hooks).
 *
 * At batch 1 a forward pass is a few hundred small kernels; launching them one by one costs
 * more than running them. A captured graph launches them all at once. Turned on with
 * EDM_CUDA_GRAPHS=1 (off by default until measured on the target GPU).
 *
 * How a pass is matched to a graph, safely
 *  - Every op is folded into a running signature: op code, every tensor's pointer, shape and
 *    dtype, every scalar. The signature after each op is the pass's "prefix" at that op.
 *  - A slot (one learned sequence and its graph) is keyed by the batch size n and the
 *    signature of the pass's first op, so different networks or denoisers on one backend
 *    keep separate graphs. The mode of a pass is chosen at its first op:
 *      no learned sequence -> EAGER, learning: the prefixes are stored;
 *      learned, no graph   -> CAPTURE: the pass is captured, launched at forward_end, and kept
 *                             if its prefixes equal the learned ones;
 *      graph               -> REPLAY: each op is checked against the learned prefix at its
 *                             index and recorded (not run); forward_end launches the graph.
 *  - If a replayed pass diverges (an op differs, or it ends early), the recorded ops are run
 *    eagerly at that point and the rest of the pass runs eagerly: a pass is never lost and
 *    never replaced by a different one. The slot then learns again (a few times at most).
 *  - Host transfers or synchronization inside a bracket cut a capture or replay short the
 *    same way (everything so far is run first), and stop graphs for that slot.
 *  - Captured ops are recorded too: if the capture cannot be ended, instantiated or launched,
 *    the pass runs eagerly from the records and graphs stop for that slot.
 *  - The backend's scratch buffer is not part of the signature: when it moves (grows), every
 *    graph is dropped and captured again on its next pass.
 *  - When the caller frees device memory, every learned sequence is forgotten: addresses are
 *    reused by the next allocations (a new denoiser), and a new model's pass could otherwise
 *    start like an old one's (a harmless but wasted fallback).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_internal.h"

#define EDM_CUDA_MAX_RELEARNS 3
#define FNV_OFFSET 0xcbf29ce484222325ull

static uint64_t mix(uint64_t h, uint64_t v) {
    /* splitmix64 of the word, folded in: a collision would replay the wrong pass. */
    v += 0x9e3779b97f4a7c15ull;
    v = (v ^ (v >> 30)) * 0xbf58476d1ce4e5b9ull;
    v = (v ^ (v >> 27)) * 0x94d049bb133111ebull;
    v ^= v >> 31;
    return (h ^ v) * 0x100000001b3ull + 0x632be59bd9b4e019ull;
}

static uint64_t rec_hash(const edm_cuda_oprec *r) {
    uint64_t h = mix(0, (uint64_t)r->op);
    h = mix(h, (uint64_t)r->has);
    for (int k = 0; k < EDM_CUDA_REC_TENSORS; k++) {
        if (!((r->has >> k) & 1)) continue;
        const edm_tensor *t = &r->t[k];
        h = mix(h, (uint64_t)(uintptr_t)t->data);
        h = mix(h, ((uint64_t)(uint32_t)t->n << 32) | (uint32_t)t->c);
        h = mix(h, ((uint64_t)(uint32_t)t->h << 32) | (uint32_t)t->w);
        h = mix(h, (uint64_t)t->dtype);
    }
    for (int k = 0; k < 3; k++) h = mix(h, (uint64_t)(uint32_t)r->i[k]);
    for (int k = 0; k < 2; k++) {
        uint32_t u;
        memcpy(&u, &r->f[k], sizeof u);
        h = mix(h, u);
    }
    return h;
}

edm_cuda_oprec edm_cuda_rec(int op, const edm_tensor *t0, const edm_tensor *t1,
                            const edm_tensor *t2, const edm_tensor *t3, const edm_tensor *t4,
                            const edm_tensor *t5) {
    edm_cuda_oprec r;
    memset(&r, 0, sizeof r);
    r.op = op;
    const edm_tensor *t[EDM_CUDA_REC_TENSORS] = {t0, t1, t2, t3, t4, t5};
    for (int k = 0; k < EDM_CUDA_REC_TENSORS; k++) {
        if (t[k]) {
            r.t[k] = *t[k];
            r.has |= 1 << k;
        }
    }
    return r;
}

/* Runs a recorded op (with the argument order each op's edm_cuda_rec call uses). */
static int rec_run(edm_cuda *c, edm_cuda_oprec *r, char *msg) {
#define T(k) (((r->has >> (k)) & 1) ? &r->t[k] : (edm_tensor *)NULL)
    switch (r->op) {
    case EDM_CUDA_OP_CONV2D:
        return edm_cuda_conv2d(c, T(0), T(1), T(2), T(3), r->i[0], T(4), r->f[0], msg);
    case EDM_CUDA_OP_FIR_DOWN: return edm_cuda_fir_down(c, T(0), T(1), T(2), r->i[0], msg);
    case EDM_CUDA_OP_FIR_UP: return edm_cuda_fir_up(c, T(0), T(1), T(2), r->i[0], msg);
    case EDM_CUDA_OP_LINEAR:
        return edm_cuda_linear(c, T(0), T(1), T(2), T(3), r->f[0], r->f[1], r->i[0], msg);
    case EDM_CUDA_OP_GROUP_NORM:
        return edm_cuda_group_norm(c, T(0), T(1), T(2), T(3), r->i[0], r->f[0], T(4), T(5),
                                   r->i[1], msg);
    case EDM_CUDA_OP_BIAS_RESIDUAL:
        return edm_cuda_bias_residual(c, T(0), T(1), T(2), T(3), r->f[0], msg);
    case EDM_CUDA_OP_CONCAT: return edm_cuda_concat(c, T(0), T(1), T(2), msg);
    case EDM_CUDA_OP_ATTENTION: return edm_cuda_attention(c, T(0), T(1), r->i[0], msg);
    case EDM_CUDA_OP_EMBED: return edm_cuda_embed(c, T(0), T(1), T(2), r->i[0], msg);
    case EDM_CUDA_OP_SCALE_ROWS: return edm_cuda_scale_rows(c, T(0), T(1), T(2), msg);
    case EDM_CUDA_OP_PRECOND_OUT:
        return edm_cuda_precond_out(c, T(0), T(1), T(2), T(3), T(4), msg);
    }
#undef T
    return edm_cuda_fail(msg, "internal error: unknown recorded op %d", r->op);
}

/* ---- slots --------------------------------------------------------------------------------- */

static void slot_drop_exec(edm_cuda_graph *g) {
    if (g->exec) cudaGraphExecDestroy(g->exec);
    g->exec = NULL;
}

static void slot_clear(edm_cuda_graph *g) {
    slot_drop_exec(g);
    free(g->prefix);
    memset(g, 0, sizeof *g);
}

/* The sequence changed: learn it again on the next pass (a few times, then give up). */
static void slot_relearn(edm_cuda_graph *g) {
    slot_drop_exec(g);
    g->learned = 0;
    g->nops = 0;
    if (++g->relearns > EDM_CUDA_MAX_RELEARNS) g->disabled = 1;
}

static edm_cuda_graph *fwd_graph(edm_cuda *c) {
    return c->fwd_slot >= 0 ? &c->graph[c->fwd_slot] : NULL;
}

static int slot_find(edm_cuda *c, int n, uint64_t key) {
    int lru = 0, free_slot = -1;
    for (int i = 0; i < EDM_CUDA_MAX_GRAPHS; i++) {
        edm_cuda_graph *g = &c->graph[i];
        if (g->n == n && g->key == key) return i;
        if (g->n == 0 && free_slot < 0) free_slot = i;
        if (g->used < c->graph[lru].used) lru = i;
    }
    int s = free_slot >= 0 ? free_slot : lru;
    slot_clear(&c->graph[s]);
    c->graph[s].n = n;
    c->graph[s].key = key;
    return s;
}

void edm_cuda_graphs_invalidate(edm_cuda *c) {
    for (int i = 0; i < EDM_CUDA_MAX_GRAPHS; i++) slot_drop_exec(&c->graph[i]);
}

void edm_cuda_graphs_forget(edm_cuda *c) {
    if (c->fwd_active) return; /* memory freed inside a pass: its slot is still in use */
    for (int i = 0; i < EDM_CUDA_MAX_GRAPHS; i++) slot_clear(&c->graph[i]);
}

void edm_cuda_graphs_free(edm_cuda *c) {
    edm_cuda_fwd_discard(c);
    for (int i = 0; i < EDM_CUDA_MAX_GRAPHS; i++) slot_clear(&c->graph[i]);
    free(c->rec);
    c->rec = NULL;
    c->nrec = c->rec_cap = 0;
}

/* ---- the pass ------------------------------------------------------------------------------ */

/* Runs the recorded ops eagerly; the rest of the pass runs eagerly too. */
static int fwd_flush(edm_cuda *c, char *msg) {
    c->n_fallbacks++;
    c->fwd_mode = EDM_CUDA_EAGER;
    c->fwd_learning = 0;
    c->flushing = 1;
    int rc = 0;
    for (int64_t i = 0; i < c->nrec && !rc; i++) rc = rec_run(c, &c->rec[i], msg);
    c->flushing = 0;
    c->nrec = 0;
    return rc;
}

/* A capture could not be turned into a launched graph. Its ops never ran; they were also
 * recorded, so they run eagerly now, unless the device itself failed or the records are
 * incomplete. Returns 0 when the pass was computed that way. */
static int capture_recover(edm_cuda *c, char *msg, cudaError_t e, const char *what) {
    (void)cudaGetLastError();
    if (c->rec_lost || (c->backend && c->backend->device_lost)) {
        c->nrec = 0;
        return edm_cuda_error(c, msg, e, what);
    }
    if (c->debug)
        fprintf(stderr, "edm cuda graphs: %s: %s; running the pass's %lld ops eagerly\n", what,
                cudaGetErrorString(e), (long long)c->nrec);
    return fwd_flush(c, msg);
}

/* Ends a capture and launches what it holds once. */
static int capture_launch(edm_cuda *c, char *msg, cudaGraphExec_t *keep) {
    cudaGraph_t graph = NULL;
    cudaGraphExec_t exec = NULL;
    cudaError_t e = cudaStreamEndCapture(c->stream, &graph);
    c->fwd_mode = EDM_CUDA_EAGER;
    if (keep) *keep = NULL;
    if (e != cudaSuccess) {
        if (graph) cudaGraphDestroy(graph);
        return capture_recover(c, msg, e, "cudaStreamEndCapture");
    }
    e = cudaGraphInstantiateWithFlags(&exec, graph, 0);
    cudaGraphDestroy(graph);
    if (e != cudaSuccess) return capture_recover(c, msg, e, "cudaGraphInstantiateWithFlags");
    e = cudaGraphLaunch(exec, c->stream);
    if (e != cudaSuccess) {
        cudaGraphExecDestroy(exec);
        return capture_recover(c, msg, e, "cudaGraphLaunch (captured forward pass)");
    }
    c->nrec = 0;
    if (keep) *keep = exec;
    else cudaGraphExecDestroy(exec); /* freed once it has run */
    return 0;
}

void edm_cuda_fwd_discard(edm_cuda *c) {
    if (c->fwd_active && c->fwd_mode == EDM_CUDA_CAPTURE) {
        cudaGraph_t graph = NULL;
        (void)cudaStreamEndCapture(c->stream, &graph);
        if (graph) cudaGraphDestroy(graph);
        (void)cudaGetLastError();
    }
    c->fwd_active = 0;
    c->fwd_mode = EDM_CUDA_EAGER;
    c->fwd_learning = 0;
    c->nrec = 0;
}

int edm_cuda_fwd_cut(edm_cuda *c, char *msg, int disable) {
    if (!c->fwd_active) return 0;
    edm_cuda_graph *g = fwd_graph(c);
    int rc = 0;
    if (c->fwd_mode == EDM_CUDA_CAPTURE) {
        c->n_fallbacks++;
        rc = capture_launch(c, msg, NULL);
    }
    else if (c->fwd_mode == EDM_CUDA_REPLAY) rc = fwd_flush(c, msg);
    c->fwd_mode = EDM_CUDA_EAGER;
    c->fwd_learning = 0;
    if (g) {
        slot_drop_exec(g); /* without disable: captured again on a later pass */
        if (disable) g->disabled = 1;
    }
    return rc;
}

static int learn_push(edm_cuda *c, edm_cuda_graph *g, int64_t idx) {
    if (idx >= g->prefix_cap) {
        int64_t cap = g->prefix_cap ? 2 * g->prefix_cap : 1024;
        while (cap <= idx) cap *= 2;
        uint64_t *p = (uint64_t *)realloc(g->prefix, (size_t)cap * sizeof *p);
        if (!p) return 1;
        g->prefix = p;
        g->prefix_cap = cap;
    }
    g->prefix[idx] = c->fwd_sig;
    g->nops = idx + 1;
    return 0;
}

static int rec_push(edm_cuda *c, const edm_cuda_oprec *r) {
    if (c->nrec == c->rec_cap) {
        int64_t cap = c->rec_cap ? 2 * c->rec_cap : 1024;
        edm_cuda_oprec *p = (edm_cuda_oprec *)realloc(c->rec, (size_t)cap * sizeof *p);
        if (!p) return 1;
        c->rec = p;
        c->rec_cap = cap;
    }
    c->rec[c->nrec++] = *r;
    return 0;
}

/* The first op of a pass picks its mode. */
static void fwd_pick(edm_cuda *c) {
    c->fwd_mode = EDM_CUDA_EAGER;
    if (!c->graphs || c->fwd_io || c->fwd_n <= 0) return;
    int s = slot_find(c, c->fwd_n, c->fwd_sig);
    edm_cuda_graph *g = &c->graph[s];
    c->fwd_slot = s;
    g->used = ++c->lru_clock;
    if (g->disabled) return;
    if (g->exec) {
        c->fwd_mode = EDM_CUDA_REPLAY;
        c->nrec = 0;
        return;
    }
    if (g->learned) {
        if (cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeThreadLocal) == cudaSuccess) {
            c->fwd_mode = EDM_CUDA_CAPTURE;
            c->nrec = 0;
            c->rec_lost = 0;
        } else {
            (void)cudaGetLastError();
            g->disabled = 1;
        }
        return;
    }
    g->nops = 0;
    c->fwd_learning = 1;
}

int edm_cuda_op_enter(edm_cuda *c, const edm_cuda_oprec *r, char *msg) {
    if (!c->fwd_active || c->flushing) return 0;
    c->fwd_sig = mix(c->fwd_sig, rec_hash(r));
    const int64_t idx = c->fwd_nops++;
    if (c->fwd_mode == EDM_CUDA_PENDING) fwd_pick(c);
    edm_cuda_graph *g = fwd_graph(c);
    switch (c->fwd_mode) {
    case EDM_CUDA_REPLAY:
        if (idx < g->nops && g->prefix[idx] == c->fwd_sig && rec_push(c, r) == 0) return 1;
        /* Diverged from the learned sequence: run what was recorded, then go on eagerly. */
        if (c->debug)
            fprintf(stderr, "edm cuda graphs: n=%d slot %d: op %lld (code %d) differs from the "
                    "learned pass (%lld ops); running the %lld recorded ops eagerly\n",
                    c->fwd_n, c->fwd_slot, (long long)idx, r->op, (long long)g->nops,
                    (long long)c->nrec);
        slot_relearn(g);
        return fwd_flush(c, msg) ? -1 : 0;
    case EDM_CUDA_EAGER:
        if (c->fwd_learning && learn_push(c, g, idx)) {
            c->fwd_learning = 0;
            g->disabled = 1; /* out of host memory for the prefixes: no graph */
        }
        return 0;
    default:
        /* CAPTURE: the op is enqueued into the capture, and recorded in case the capture
         * cannot be launched (capture_recover). */
        if (!c->rec_lost && rec_push(c, r)) c->rec_lost = 1;
        return 0;
    }
}

int edm_cuda_io_guard(edm_cuda *c, char *msg) {
    if (!c->fwd_active) return 0;
    c->fwd_io = 1;
    if (c->fwd_mode == EDM_CUDA_PENDING) return 0;
    return edm_cuda_fwd_cut(c, msg, 1);
}

int edm_cuda_forward_begin(void *ctx, int n, char *msg) {
    edm_cuda *c = (edm_cuda *)ctx;
    if (edm_cuda_enter(c, msg)) return 1;
    if (c->fwd_active) edm_cuda_fwd_discard(c); /* the last pass failed before forward_end */
    c->fwd_active = 1;
    c->fwd_n = n;
    c->fwd_mode = EDM_CUDA_PENDING;
    c->fwd_slot = -1;
    c->fwd_io = 0;
    c->fwd_learning = 0;
    c->fwd_nops = 0;
    c->fwd_sig = FNV_OFFSET;
    c->nrec = 0;
    return 0;
}

int edm_cuda_forward_end(void *ctx, int n, char *msg) {
    edm_cuda *c = (edm_cuda *)ctx;
    if (!c->fwd_active) return edm_cuda_fail(msg, "forward_end(%d) without forward_begin", n);
    if (n != c->fwd_n) {
        int was = c->fwd_n;
        edm_cuda_fwd_discard(c);
        return edm_cuda_fail(msg, "forward_end(%d) does not match forward_begin(%d)", n, was);
    }
    if (c->backend->failed) {
        /* An op failed and is recorded: drop what the pass captured or recorded. */
        edm_cuda_fwd_discard(c);
        return 0;
    }
    edm_cuda_graph *g = fwd_graph(c);
    const int mode = c->fwd_mode;
    int rc = 0;
    switch (mode) {
    case EDM_CUDA_CAPTURE: {
        cudaGraphExec_t exec = NULL;
        rc = capture_launch(c, msg, &exec);
        if (rc || !exec) { /* failed, or recovered by running the pass eagerly */
            g->disabled = 1;
            break;
        }
        if (c->fwd_nops == g->nops && g->nops > 0 && c->fwd_sig == g->prefix[g->nops - 1]) {
            g->exec = exec;
            c->n_captures++;
        } else {
            /* This pass differs from the learned one: it ran (the capture recorded it), but
             * its graph is not the slot's. */
            cudaGraphExecDestroy(exec);
            slot_relearn(g);
        }
        break;
    }
    case EDM_CUDA_REPLAY:
        if (c->fwd_nops == g->nops) {
            cudaError_t e = cudaGraphLaunch(g->exec, c->stream);
            c->nrec = 0;
            c->n_replays++;
            if (e != cudaSuccess) rc = edm_cuda_error(c, msg, e, "cudaGraphLaunch (forward pass)");
        } else {
            /* The pass ended before the learned sequence did: run what was recorded. */
            slot_relearn(g);
            rc = fwd_flush(c, msg);
        }
        break;
    case EDM_CUDA_EAGER:
        if (c->fwd_learning && g) {
            if (c->fwd_io) g->disabled = 1;
            else g->learned = g->nops > 0;
        }
        break;
    default: break; /* PENDING: a pass without ops */
    }
    if (c->debug) {
        static const char *const names[] = {"eager", "empty", "capture", "replay"};
        fprintf(stderr, "edm cuda graphs: n=%d slot %d: %s pass of %lld ops%s%s\n", n,
                c->fwd_slot, names[mode], (long long)c->fwd_nops,
                mode == EDM_CUDA_EAGER && c->fwd_learning ? " (learned)" : "",
                g && g->disabled ? " (graphs off for this slot)" : "");
    }
    c->fwd_active = 0;
    c->fwd_mode = EDM_CUDA_EAGER;
    c->fwd_learning = 0;
    if (rc) return rc;
    return edm_cuda_check(c, msg, "forward pass");
}

int edm_cuda_counter(void *ctx, const char *name, long *value) {
    const edm_cuda *c = (const edm_cuda *)ctx;
    if (strcmp(name, "graph_captures") == 0) *value = c->n_captures;
    else if (strcmp(name, "graph_replays") == 0) *value = c->n_replays;
    else if (strcmp(name, "graph_fallbacks") == 0) *value = c->n_fallbacks;
    else return -1;
    return 0;
}
