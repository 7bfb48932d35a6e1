/*
 * replay.c - a plain main() for the libFuzzer targets, so corpora replay without clang.
 *
 *   replay_<target> [--expect-reject | --expect-accept | --any] PATH...
 * Each PATH is a file or a directory (its regular files, not recursive). Every input runs in
 * its own child process, so a crashing input is named and counted instead of ending the run.
 * Each input must not crash or break the target's invariants; after --expect-reject (or
 * --expect-accept) the following inputs must also be rejected (accepted) by the parser: the
 * targets return 0 either way, so the driver asks edm_fuzz_accepts(), which each target
 * file defines. --any switches the extra check off again.
 * Ends with the project's closing line: "N passed, N failed, N skipped".
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fuzz.h"

static int passed, failed, skipped;

static int read_file(const char *path, uint8_t **buf, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t cap = 4096, n = 0;
    uint8_t *b = malloc(cap);
    for (;;) {
        if (!b) break;
        n += fread(b + n, 1, cap - n, f);
        if (n < cap) break;
        uint8_t *nb = realloc(b, cap * 2);
        if (!nb) {
            free(b);
            b = NULL;
            break;
        }
        b = nb;
        cap *= 2;
    }
    int bad = ferror(f) || !b;
    fclose(f);
    if (bad) {
        free(b);
        return -1;
    }
    *buf = b;
    *len = n;
    return 0;
}

/* expect: 0 any outcome, 1 must accept, -1 must reject */
static void run_one(const char *path, int expect) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        failed++;
        return;
    }
    if (pid == 0) {
        uint8_t *buf;
        size_t len;
        if (read_file(path, &buf, &len) != 0) _exit(3);
        LLVMFuzzerTestOneInput(buf, len);
        int rc = 0;
        if (expect != 0) {
            int accepted = edm_fuzz_accepts(buf, len);
            if (expect < 0 && accepted) rc = 4;
            if (expect > 0 && !accepted) rc = 5;
        }
        free(buf);
        _exit(rc);
    }
    int status;
    if (waitpid(pid, &status, 0) < 0) {
        failed++;
        return;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        passed++;
    } else {
        failed++;
        if (WIFSIGNALED(status))
            fprintf(stderr, "FAIL %s: crashed (signal %d)\n", path, WTERMSIG(status));
        else if (WEXITSTATUS(status) == 3)
            fprintf(stderr, "FAIL %s: cannot read\n", path);
        else if (WEXITSTATUS(status) == 4)
            fprintf(stderr, "FAIL %s: accepted but expected to be rejected\n", path);
        else if (WEXITSTATUS(status) == 5)
            fprintf(stderr, "FAIL %s: rejected but expected to be accepted\n", path);
        else
            fprintf(stderr, "FAIL %s: exit %d\n", path, WEXITSTATUS(status));
    }
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void run_path(const char *path, int expect) {
    struct stat sb;
    if (stat(path, &sb) != 0) {
        fprintf(stderr, "SKIP %s: not found\n", path);
        skipped++;
        return;
    }
    if (!S_ISDIR(sb.st_mode)) {
        run_one(path, expect);
        return;
    }
    DIR *d = opendir(path);
    if (!d) {
        fprintf(stderr, "FAIL %s: cannot open directory\n", path);
        failed++;
        return;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **nn = realloc(names, cap * sizeof *names);
            if (!nn) break;
            names = nn;
        }
        size_t l = strlen(path) + strlen(e->d_name) + 2;
        names[n] = malloc(l);
        if (!names[n]) break;
        snprintf(names[n], l, "%s/%s", path, e->d_name);
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof *names, by_name); /* stable report order */
    for (size_t i = 0; i < n; i++) {
        if (stat(names[i], &sb) == 0 && S_ISREG(sb.st_mode)) run_one(names[i], expect);
        free(names[i]);
    }
    free(names);
}

int main(int argc, char **argv) {
    int expect = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--expect-reject")) expect = -1;
        else if (!strcmp(argv[i], "--expect-accept")) expect = 1;
        else if (!strcmp(argv[i], "--any")) expect = 0;
        else run_path(argv[i], expect);
    }
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed ? 1 : 0;
}
