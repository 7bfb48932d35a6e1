/*
 * fuzz.h - what every fuzz target here defines, and how it reports a broken invariant.
 *
 * A target is built either with libFuzzer (clang -fsanitize=fuzzer: fuzz.sh) or with the
 * plain replay driver (replay.c: test_replay.sh), which also asks edm_fuzz_accepts() so
 * that a corpus file meant to be rejected is checked to be rejected.
 */
#ifndef EDM_TESTS_FUZZ_H
#define EDM_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Whether the code under test accepts the input (1) or rejects it cleanly (0). */
int edm_fuzz_accepts(const uint8_t *data, size_t size);

/* Aborts, so that libFuzzer and the replay driver both see a crash. */
#define FUZZ_ASSERT(c)                                                                         \
    do {                                                                                       \
        if (!(c)) {                                                                            \
            fprintf(stderr, "fuzz invariant failed: %s (%s:%d)\n", #c, __FILE__, __LINE__);   \
            abort();                                                                           \
        }                                                                                      \
    } while (0)

#endif
