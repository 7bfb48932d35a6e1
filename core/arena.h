/*
 * arena.h - the activation workspace of a forward pass: one allocation, bump pointer, marks.
 *
 * The denoiser sizes the arena once for its largest batch by running the forward pass on the
 * null backend with a measuring arena (base == NULL: pointers are fake offsets that nothing
 * dereferences), then allocates it once. Nothing is allocated per network call, and for a
 * given batch size every forward pass sees the same pointers (which CUDA graphs rely on).
 */
#ifndef EDM_ARENA_H
#define EDM_ARENA_H

#include <stddef.h>
#include <stdint.h>

#include "ops.h"

typedef struct edm_arena {
    char *base;  /* backend memory, or NULL while measuring */
    size_t size; /* capacity (ignored while measuring) */
    size_t used;
    size_t peak;
    int overflow; /* set when an allocation did not fit */
} edm_arena;

#define EDM_ARENA_ALIGN 256

/* Gives t (whose shape and dtype are set) memory from the arena. On overflow t->data is NULL,
 * a->overflow is set and the backend's status is failed, so later ops do nothing. */
static inline void edm_arena_alloc(edm_arena *a, edm_backend *b, edm_tensor *t) {
    size_t bytes = (size_t)edm_tensor_numel(t) * edm_dtype_size(t->dtype);
    bytes = (bytes + EDM_ARENA_ALIGN - 1) & ~(size_t)(EDM_ARENA_ALIGN - 1);
    if (a->base && a->used + bytes > a->size) {
        a->overflow = 1;
        t->data = NULL;
        edm_backend_fail(b, "arena", "workspace of %zu bytes exhausted", a->size);
        return;
    }
    /* While measuring, hand out distinct fake addresses (never dereferenced). */
    t->data = a->base ? (void *)(a->base + a->used) : (void *)(uintptr_t)(EDM_ARENA_ALIGN + a->used);
    a->used += bytes;
    if (a->used > a->peak) a->peak = a->used;
}

static inline size_t edm_arena_mark(const edm_arena *a) {
    return a->used;
}

static inline void edm_arena_reset(edm_arena *a, size_t mark) {
    EDM_ASSERT(mark <= a->used); /* marks are released in reverse order */
    a->used = mark;
}

#endif /* EDM_ARENA_H */
