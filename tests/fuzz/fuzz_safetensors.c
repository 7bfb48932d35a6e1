/*
 * fuzz_safetensors.c - libFuzzer target: the safetensors header validator and reader
 * (core/io/safetensors.c) on arbitrary bytes.
 *
 * Invariants checked (abort on violation, so libFuzzer and the replay driver see a crash):
 * a failure is EDM_EFORMAT with a message and *out NULL; on success every tensor lies inside
 * the data section, tensors tile it in order, every name is found by edm_st_find, and every
 * tensor converts to fp32. Built by make: `make fuzz` (clang, run by
 * tests/fuzz/fuzz.sh) and `make` (replay_safetensors, run by test_replay.sh).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "io/safetensors.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    edm_st_file *f = (edm_st_file *)1;
    edm_error err = {0};
    enum edm_status st = edm_st_open_mem(data, size, "fuzz", &f, &err);
    if (st != EDM_OK) {
        FUZZ_ASSERT(st == EDM_EFORMAT || st == EDM_ENOMEM);
        FUZZ_ASSERT(f == NULL && err.status == st && err.message[0]);
        return 0;
    }
    uint64_t header = 0;
    for (int i = 7; i >= 0; i--) header = header << 8 | data[i];
    uint64_t data_len = size - 8 - header, at = 0;
    for (int i = 0; i < edm_st_count(f); i++) {
        const edm_st_tensor *t = edm_st_at(f, i);
        FUZZ_ASSERT(t->begin == at && t->end >= t->begin && t->end <= data_len);
        at = t->end;
        FUZZ_ASSERT(t->ndim >= 0 && t->ndim <= EDM_ST_MAX_DIMS && t->numel >= 0);
        FUZZ_ASSERT(edm_st_find(f, t->name) != NULL);
        FUZZ_ASSERT(!strcmp(edm_st_find(f, t->name)->name, t->name));
        size_t n = (size_t)t->numel;
        float *v = malloc((n ? n : 1) * sizeof *v);
        FUZZ_ASSERT(v != NULL);
        FUZZ_ASSERT(edm_st_read_f32(f, t, v, n, &err) == EDM_OK);
        free(v);
    }
    FUZZ_ASSERT(at == data_len);
    for (int i = 0; i < edm_st_metadata_count(f); i++) {
        const char *k, *v;
        edm_st_metadata_at(f, i, &k, &v);
        FUZZ_ASSERT(k && v && edm_st_metadata(f, k) != NULL);
    }
    edm_st_close(f);
    return 0;
}

/* For replay.c --expect-reject: whether the reader accepts the input. */
int edm_fuzz_accepts(const uint8_t *data, size_t size) {
    edm_st_file *f = NULL;
    enum edm_status st = edm_st_open_mem(data, size, "replay", &f, NULL);
    edm_st_close(f);
    return st == EDM_OK;
}
