/*
 * main.c - the `edm` command: dispatches to a subcommand (info, denoise, sample).
 *
 *   edm info MODEL                        what a model file holds and costs
 *   edm denoise --model M --x X.npy ...   one preconditioned evaluation D(x; sigma)
 *   edm sample --model M --seeds 0-63 ... images with the EDM or the ablation sampler
 *   edm params [--json]                   the sampler parameters: names, ranges, defaults
 *
 * Each subcommand parses its own options from its table (cli.h) and prints `edm CMD --help`.
 * Exit status: 0 success, 1 failure (one line on stderr), 2 usage error.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"info", cmd_info, "print a model's configuration, size, FLOPs and memory per image"},
    {"denoise", cmd_denoise, "one network evaluation D(x; sigma) for a batch of NPY inputs"},
    {"sample", cmd_sample, "generate images (EDM sampler, or the generalised ablation sampler)"},
    {"params", cmd_params, "list the sampler parameters (options of sample, fields of edmd)"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: edm COMMAND [options]   (edm COMMAND --help for its options)\n\n"
               "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nbackends (--backend auto takes the first with a device):\n");
    for (int i = 0; i < edm_backend_registry_count(); i++) {
        edm_backend_info bi;
        if (edm_backend_registry_get(i, &bi, NULL) != EDM_OK) continue;
        if (!bi.compiled) fprintf(f, "  %-9s not in this build\n", bi.name);
        else fprintf(f, "  %-9s %d usable device%s\n", bi.name, bi.devices, bi.devices == 1 ? "" : "s");
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc - 2, argv + 2);
    fprintf(stderr, "edm: unknown command '%s' (commands:", argv[1]);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(stderr, "%s %s", i ? "," : "", commands[i].name);
    fprintf(stderr, "; see edm --help)\n");
    return 2;
}
