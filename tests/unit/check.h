/*
 * check.h - the minimal test harness shared by the unit tests.
 *
 * CHECK(cond, fmt, ...) counts a pass or prints the failure with its location and counts a
 * failure; SKIP(why) counts a skip. check_finish() prints the closing line every test program
 * ends with ("N passed, N failed, N skipped") and returns the exit code.
 */
#ifndef CHECK_H
#define CHECK_H

#include <math.h>
#include <stdio.h>

static int check_passed, check_failed, check_skipped;

#define CHECK(cond, ...)                                                                       \
    do {                                                                                       \
        if (cond) {                                                                            \
            check_passed++;                                                                    \
        } else {                                                                               \
            check_failed++;                                                                    \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                               \
            fprintf(stderr, __VA_ARGS__);                                                      \
            fputc('\n', stderr);                                                               \
        }                                                                                      \
    } while (0)

#define SKIP(...)                                                                              \
    do {                                                                                       \
        check_skipped++;                                                                       \
        fprintf(stderr, "SKIP %s:%d: ", __FILE__, __LINE__);                                   \
        fprintf(stderr, __VA_ARGS__);                                                          \
        fputc('\n', stderr);                                                                   \
    } while (0)

static inline int check_finish(void) {
    printf("%d passed, %d failed, %d skipped\n", check_passed, check_failed, check_skipped);
    return check_failed ? 1 : 0;
}

/* Relative error of a against reference b: max|a-b| / max(max|b|, tiny). */
static inline double check_max_rel(const float *a, const float *b, long n) {
    double num = 0, den = 0;
    for (long i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > num || d != d) num = d != d ? INFINITY : d;
        if (fabs((double)b[i]) > den) den = fabs((double)b[i]);
    }
    return num / (den > 1e-30 ? den : 1e-30);
}

#endif /* CHECK_H */
