/*
 * cli.h - the `edm` command's shared pieces: a table-driven option parser (one table per
 * subcommand drives both parsing and --help, as redis does with its config table), and the
 * helpers every subcommand uses (backend flags, model loading, NPY shapes, seed lists).
 *
 * Conventions: a subcommand returns its exit status; every failure has printed exactly one
 * line "edm CMD: message" on stderr (cli_fail) before returning non-zero.
 */
#ifndef EDM_CLI_H
#define EDM_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "edm.h"

/* ---- option tables ---------------------------------------------------------------------- */

enum cli_type {
    CLI_FLAG,   /* int, set to 1; takes no value */
    CLI_STRING, /* const char *, borrowed from argv */
    CLI_INT,    /* int within [min, max] */
    CLI_DOUBLE, /* double; NaN rejected, +-inf accepted only where max/min is infinite */
    CLI_CHOICE, /* int, via parse(): the enum value */
    CLI_SAMPLER /* a row of edm_sampler_param_table, set in the edm_sampler_params at offset */
};

typedef struct cli_option {
    const char *name;  /* long name without dashes: "S-churn" */
    const char *alias; /* the official generate.py spelling ("S_churn") or NULL */
    enum cli_type type;
    size_t offset;     /* of the field in the command's argument struct */
    const char *metavar;
    const char *help;  /* one line; defaults are stated here */
    double min, max;   /* CLI_INT / CLI_DOUBLE range, inclusive */
    int (*parse)(const char *s, int *out); /* CLI_CHOICE: 0 on success */
    const edm_sampler_param *param;        /* CLI_SAMPLER: the table row */
} cli_option;

#define CLI_MAX_OPTIONS 64
#define CLI_MAX_POSITIONAL 4

typedef struct cli_parsed {
    unsigned char given[CLI_MAX_OPTIONS]; /* given[i]: row i appeared on the command line */
    const char *positional[CLI_MAX_POSITIONAL];
    int n_positional;
    int help; /* --help / -h */
} cli_parsed;

/* Parses argv[0..argc) (the arguments after the subcommand name) into `args` following the
 * table (terminated by a row with name NULL). Accepts --name value, --name=value and the
 * alias spellings. Returns 0, or prints one line and returns 2. */
int cli_parse(const char *cmd, const cli_option *table, int argc, char **argv, void *args,
              cli_parsed *parsed);
/* A subcommand's start: cli_parse, and for --help the help text. Returns -1 when the
 * command goes on, else the exit status to return (0 after the help, 2 on a bad option). */
int cli_parse_command(const char *cmd, const cli_option *table, int argc, char **argv,
                      void *args, cli_parsed *parsed, const char *usage, const char *summary);
/* Whether the option named `name` was given. */
int cli_given(const cli_option *table, const cli_parsed *parsed, const char *name);
/* Writes one row per sampler parameter (edm_sampler_param_table, in its order) into rows,
 * which has room for EDM_SAMPLER_PARAM_COUNT: --sigma-min for sigma_min, with generate.py's
 * spelling (--sigma_min) or keyword (--discretization) as the alias; values are parsed by
 * the engine into the edm_sampler_params at `offset` of the argument struct, where an
 * ablation-only option also selects the ablation sampler. The names and help lines live in
 * static storage. Returns the number of rows. */
int cli_sampler_options(cli_option *rows, size_t offset);
/* Prints "usage: edm CMD USAGE", the summary, and one line per option. */
void cli_print_help(const char *cmd, const char *usage, const char *summary,
                    const cli_option *table);

/* Prints "edm CMD: <message>" on stderr; returns 1 (the exit status to pass on). */
int cli_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- backend flags, shared by every subcommand ------------------------------------------ */

typedef struct cli_backend_args {
    int backend;   /* registry index (edm_backend_registry_get), -1 = auto */
    int device;
    int precision; /* enum edm_precision */
    int threads;
} cli_backend_args;

void cli_backend_args_default(cli_backend_args *b);
int cli_parse_backend_name(const char *s, int *out);
int cli_parse_precision(const char *s, int *out);

/* The rows of the backend flags for an argument struct `type` with a `backend` member. */
#define CLI_BACKEND_OPTIONS(type)                                                              \
    {"backend", NULL, CLI_CHOICE, offsetof(type, backend.backend), "auto|cpu|cuda",            \
     "compute backend (default auto: CUDA when a device is usable, else CPU)", 0, 0,          \
     cli_parse_backend_name, NULL},                                                            \
    {"device", NULL, CLI_INT, offsetof(type, backend.device), "N",                            \
     "device ordinal within the backend (default 0)", 0, 1024, NULL, NULL},                   \
    {"precision", NULL, CLI_CHOICE, offsetof(type, backend.precision), "fp32|tf32|fp16|bf16", \
     "arithmetic precision (default fp32; the CPU backend: fp32 or bf16)", 0, 0,               \
     cli_parse_precision, NULL},                                                               \
    {"threads", NULL, CLI_INT, offsetof(type, backend.threads), "N",                          \
     "CPU threads (default 0 = all cores)", 0, 4096, NULL, NULL}

/* Creates the backend and prints its description on stderr. Returns 0 or fails (1). */
int cli_backend_open(const char *cmd, const cli_backend_args *b, edm_backend **out);

/* ---- files and values ---------------------------------------------------------------------- */

/* Loads a model; returns 0 or fails (1). */
int cli_model_load(const char *cmd, const char *path, edm_model **out);
/* Reads an NPY file and checks its rank and (where >= 0) its dimensions; `what` names the
 * option in messages. Returns 0 or fails (1); on failure `a` is cleared. */
int cli_npy_read(const char *cmd, const char *what, const char *path, int ndim,
                 const int64_t *shape, edm_npy *a);

/* Parses a seed list "1,2,5-10" (decimal, ranges inclusive) into a new array (free with
 * free()). Returns 0 or fails (1). */
int cli_parse_seeds(const char *cmd, const char *s, uint64_t **seeds, int *count);

/* Wall-clock seconds (monotonic). */
double cli_now(void);

/* ---- subcommands ------------------------------------------------------------------------ */

int cmd_info(int argc, char **argv);
int cmd_denoise(int argc, char **argv);
int cmd_sample(int argc, char **argv);
int cmd_params(int argc, char **argv);

#endif /* EDM_CLI_H */
