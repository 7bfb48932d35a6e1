/*
 * replay.c - a plain main() for fuzz_request.c, so `make test` replays the corpus without
 * clang: replay PATH... (files, or directories of files). Each input runs in a child
 * process, so a crash is named and counted instead of ending the run.
 * Ends with "N passed, N failed, N skipped".
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int passed, failed, skipped;

static void run_one(const char *path) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        failed++;
        return;
    }
    if (pid == 0) {
        FILE *f = fopen(path, "rb");
        if (!f) _exit(3);
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
        if (!buf || (n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n)) _exit(3);
        fclose(f);
        LLVMFuzzerTestOneInput(buf, (size_t)n);
        free(buf);
        _exit(0);
    }
    int status;
    if (waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        passed++;
    } else {
        failed++;
        fprintf(stderr, "FAIL %s: %s %d\n", path, WIFSIGNALED(status) ? "signal" : "exit",
                WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    }
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void run_path(const char *path) {
    struct stat sb;
    if (stat(path, &sb) != 0) {
        fprintf(stderr, "SKIP %s: not found\n", path);
        skipped++;
        return;
    }
    if (!S_ISDIR(sb.st_mode)) {
        run_one(path);
        return;
    }
    DIR *d = opendir(path);
    if (!d) {
        failed++;
        return;
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') continue;
        char **nn = realloc(names, sizeof *names * (n + 1));
        if (!nn) break;
        names = nn;
        names[n] = malloc(strlen(path) + strlen(de->d_name) + 2);
        if (!names[n]) break;
        sprintf(names[n], "%s/%s", path, de->d_name);
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof *names, by_name);
    for (size_t i = 0; i < n; i++) {
        run_one(names[i]);
        free(names[i]);
    }
    free(names);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) run_path(argv[i]);
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed ? 1 : 0;
}
