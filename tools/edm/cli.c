/*
 * cli.c - the `edm` command's option parser and shared helpers (see cli.h).
 *
 * One table per subcommand: each row names an option, its generate.py alias, its type, the
 * field it fills and its help line, so parsing, validation of the value's syntax and --help
 * can never disagree. The sampler's rows come from the engine's parameter table
 * (cli_sampler_options), which also parses their values. Semantic checks (ranges of sampler
 * parameters, shapes against the model) happen later, in the engine or the subcommand, with
 * one-line messages.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

#define MAX_SEEDS 10000000 /* a bound on a seed list's length: memory, not policy */

int cli_fail(const char *cmd, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* keep it one line whatever the message holds */
    for (char *c = msg; *c; c++)
        if (*c == '\n' || *c == '\r') *c = ' ';
    fprintf(stderr, "edm %s: %s\n", cmd, msg);
    return 1;
}

double cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- values ---------------------------------------------------------------------------- */

static int parse_double(const char *s, double *out) {
    if (!*s) return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end || isnan(v) || (errno == ERANGE && isfinite(v) && v != 0)) return -1;
    *out = v;
    return 0;
}

static int parse_long(const char *s, long *out) {
    if (!*s) return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*end || errno == ERANGE) return -1;
    *out = v;
    return 0;
}

/* A plain non-negative decimal: digits only (no sign, space or base prefix). */
static int parse_u64(const char *s, size_t len, uint64_t *out) {
    if (len == 0 || len > 20) return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int cli_parse_seeds(const char *cmd, const char *s, uint64_t **seeds, int *count) {
    *seeds = NULL;
    *count = 0;
    /* first pass counts, second fills */
    uint64_t *list = NULL;
    size_t total = 0;
    for (int pass = 0; pass < 2; pass++) {
        size_t k = 0;
        const char *p = s;
        for (;;) {
            const char *comma = strchr(p, ',');
            size_t len = comma ? (size_t)(comma - p) : strlen(p);
            const char *dash = memchr(p, '-', len);
            uint64_t a, b;
            int bad = dash ? parse_u64(p, (size_t)(dash - p), &a) ||
                                 parse_u64(dash + 1, len - (size_t)(dash - p) - 1, &b)
                           : parse_u64(p, len, &a);
            if (!dash) b = a;
            if (bad || b < a) {
                free(list);
                return cli_fail(cmd, "--seeds: bad element '%.*s' in '%s' (expected a list like "
                                     "1,2,5-10 of non-negative integers)",
                                (int)len, p, s);
            }
            if (b - a >= MAX_SEEDS || k + (size_t)(b - a) + 1 > MAX_SEEDS) {
                free(list);
                return cli_fail(cmd, "--seeds: '%s' lists more than %d seeds", s, MAX_SEEDS);
            }
            for (uint64_t v = a;; v++) {
                if (pass == 1) list[k] = v;
                k++;
                if (v == b) break;
            }
            if (!comma) break;
            p = comma + 1;
        }
        if (pass == 0) {
            total = k;
            list = malloc(total * sizeof *list);
            if (!list) return cli_fail(cmd, "out of memory for %zu seeds", total);
        }
    }
    *seeds = list;
    *count = (int)total;
    return 0;
}

/* ---- option tables --------------------------------------------------------------------- */

static int table_size(const cli_option *table) {
    int n = 0;
    while (table[n].name) n++;
    return n;
}

/* Finds the row whose name or alias equals key[0..len). */
static int table_find(const cli_option *table, const char *key, size_t len) {
    for (int i = 0; table[i].name; i++) {
        if (strlen(table[i].name) == len && strncmp(table[i].name, key, len) == 0) return i;
        if (table[i].alias && strlen(table[i].alias) == len && strncmp(table[i].alias, key, len) == 0)
            return i;
    }
    return -1;
}

static int option_set(const char *cmd, const cli_option *o, const char *value, void *args) {
    char *field = (char *)args + o->offset;
    switch (o->type) {
    case CLI_FLAG: *(int *)field = 1; return 0;
    case CLI_STRING:
        if (!*value) return cli_fail(cmd, "--%s: empty value", o->name);
        *(const char **)field = value;
        return 0;
    case CLI_INT: {
        long v;
        if (parse_long(value, &v)) return cli_fail(cmd, "--%s: '%s' is not an integer", o->name, value);
        if (v < o->min || v > o->max)
            return cli_fail(cmd, "--%s: %ld is out of range %.0f..%.0f", o->name, v, o->min, o->max);
        *(int *)field = (int)v;
        return 0;
    }
    case CLI_DOUBLE: {
        double v;
        if (parse_double(value, &v)) return cli_fail(cmd, "--%s: '%s' is not a number", o->name, value);
        if (v < o->min || v > o->max)
            return cli_fail(cmd, "--%s: %s is out of range [%g, %g]", o->name, value, o->min, o->max);
        *(double *)field = v;
        return 0;
    }
    case CLI_CHOICE: {
        int v;
        if (o->parse(value, &v))
            return cli_fail(cmd, "--%s: '%s' is not one of %s", o->name, value, o->metavar);
        *(int *)field = v;
        return 0;
    }
    case CLI_SAMPLER: {
        edm_error err; /* the engine's message names the parameter */
        if (edm_sampler_param_parse((edm_sampler_params *)field, o->param, value, &err) != EDM_OK)
            return cli_fail(cmd, "%s", err.message);
        return 0;
    }
    }
    return cli_fail(cmd, "--%s: bad option type", o->name);
}

int cli_parse(const char *cmd, const cli_option *table, int argc, char **argv, void *args,
              cli_parsed *parsed) {
    memset(parsed, 0, sizeof *parsed);
    if (table_size(table) > CLI_MAX_OPTIONS) return cli_fail(cmd, "too many options in the table");
    int only_positional = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (only_positional || a[0] != '-' || a[1] == '\0') {
            if (parsed->n_positional == CLI_MAX_POSITIONAL)
                return cli_fail(cmd, "too many arguments ('%s'); see edm %s --help", a, cmd) + 1;
            parsed->positional[parsed->n_positional++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_positional = 1;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            parsed->help = 1;
            continue;
        }
        if (a[1] != '-')
            return cli_fail(cmd, "unknown option '%s'; see edm %s --help", a, cmd) + 1;
        const char *key = a + 2, *eq = strchr(key, '=');
        size_t len = eq ? (size_t)(eq - key) : strlen(key);
        int row = table_find(table, key, len);
        if (row < 0)
            return cli_fail(cmd, "unknown option '--%.*s'; see edm %s --help", (int)len, key, cmd) + 1;
        const cli_option *o = &table[row];
        const char *value = NULL;
        if (o->type == CLI_FLAG) {
            if (eq) return cli_fail(cmd, "--%s takes no value", o->name) + 1;
        } else if (eq) {
            value = eq + 1;
        } else {
            if (i + 1 >= argc) return cli_fail(cmd, "--%s needs a value (%s)", o->name, o->metavar) + 1;
            value = argv[++i];
        }
        if (option_set(cmd, o, value, args)) return 2;
        parsed->given[row] = 1;
    }
    return 0;
}

int cli_parse_command(const char *cmd, const cli_option *table, int argc, char **argv,
                      void *args, cli_parsed *parsed, const char *usage, const char *summary) {
    int rc = cli_parse(cmd, table, argc, argv, args, parsed);
    if (rc) return rc;
    if (!parsed->help) return -1;
    cli_print_help(cmd, usage, summary, table);
    return 0;
}

int cli_given(const cli_option *table, const cli_parsed *parsed, const char *name) {
    int row = table_find(table, name, strlen(name));
    return row >= 0 && parsed->given[row];
}

int cli_sampler_options(cli_option *rows, size_t offset) {
    /* names, metavars and help lines of the rows (the table is static, so are they) */
    static char text[EDM_SAMPLER_PARAM_COUNT][3][160];
    for (int i = 0; i < EDM_SAMPLER_PARAM_COUNT; i++) {
        const edm_sampler_param *d = &edm_sampler_param_table[i];
        char *name = text[i][0], *metavar = text[i][1], *help = text[i][2];
        snprintf(name, sizeof text[i][0], "%s", d->name);
        for (char *c = name; *c; c++)
            if (*c == '_') *c = '-';
        if (d->type == EDM_PARAM_CHOICE)
            edm_sampler_param_choices(d, "|", metavar, sizeof text[i][1]);
        else snprintf(metavar, sizeof text[i][1], "%s", d->type == EDM_PARAM_INT ? "N" : "X");
        char def[40] = " ";
        if (isnan(d->def)) snprintf(def, sizeof def, d->optional ? ": unset" : ": per sampler");
        else edm_sampler_param_format(d, d->def, def + 1, sizeof def - 1);
        snprintf(help, sizeof text[i][2], "%s%s (default%s)", d->ablation_only ? "ablation: " : "",
                 d->doc, def);
        EDM_ASSERT(strcmp(name, d->name) == 0 || !d->alias); /* a row has one alias */
        rows[i] = (cli_option){
            .name = name,
            .alias = strcmp(name, d->name) != 0 ? d->name : d->alias,
            .type = CLI_SAMPLER,
            .offset = offset,
            .metavar = metavar,
            .help = help,
            .param = d,
        };
    }
    return EDM_SAMPLER_PARAM_COUNT;
}

void cli_print_help(const char *cmd, const char *usage, const char *summary,
                    const cli_option *table) {
    printf("usage: edm %s %s\n\n%s\n\noptions:\n", cmd, usage, summary);
    for (int i = 0; table[i].name; i++) {
        const cli_option *o = &table[i];
        char left[128];
        int n = snprintf(left, sizeof left, "  --%s", o->name);
        if (o->alias) n += snprintf(left + n, sizeof left - (size_t)n, ", --%s", o->alias);
        if (o->type != CLI_FLAG) snprintf(left + n, sizeof left - (size_t)n, " %s", o->metavar);
        if (strlen(left) > 37)
            printf("%s\n%-38s %s\n", left, "", o->help);
        else
            printf("%-38s %s\n", left, o->help);
    }
    printf("%-38s %s\n", "  -h, --help", "print this help");
    printf("\nValues may be given as --opt value or --opt=value.\n");
}

/* ---- backend --------------------------------------------------------------------------- */

void cli_backend_args_default(cli_backend_args *b) {
    edm_backend_options o;
    edm_backend_options_default(&o);
    b->backend = -1;
    b->device = o.device;
    b->precision = (int)o.precision;
    b->threads = o.threads;
}

int cli_parse_backend_name(const char *s, int *out) {
    if (strcmp(s, "auto") == 0) {
        *out = -1;
        return 0;
    }
    for (int i = 0; i < edm_backend_registry_count(); i++) {
        edm_backend_info bi;
        if (edm_backend_registry_get(i, &bi, NULL) == EDM_OK && strcmp(s, bi.name) == 0) {
            *out = i;
            return 0;
        }
    }
    return -1;
}

int cli_parse_precision(const char *s, int *out) {
    enum edm_precision p;
    if (edm_precision_parse(s, &p) != EDM_OK) return -1;
    *out = (int)p;
    return 0;
}

int cli_backend_open(const char *cmd, const cli_backend_args *b, edm_backend **out) {
    edm_backend_options o;
    edm_backend_options_default(&o);
    edm_backend_info bi;
    if (b->backend >= 0 && edm_backend_registry_get(b->backend, &bi, NULL) == EDM_OK)
        o.name = bi.name;
    o.device = b->device;
    o.precision = (enum edm_precision)b->precision;
    o.threads = b->threads;
    edm_error err;
    if (edm_backend_new(&o, out, &err) != EDM_OK) return cli_fail(cmd, "backend: %s", err.message);
    fprintf(stderr, "edm %s: backend %s\n", cmd, edm_backend_describe(*out));
    return 0;
}

/* ---- files ------------------------------------------------------------------------------ */

int cli_model_load(const char *cmd, const char *path, edm_model **out) {
    edm_error err;
    if (!path) return cli_fail(cmd, "no model given (--model M)");
    if (edm_model_load(path, out, &err) != EDM_OK) return cli_fail(cmd, "%s: %s", path, err.message);
    return 0;
}

static void shape_str(char *buf, size_t size, int ndim, const int64_t *shape) {
    size_t n = (size_t)snprintf(buf, size, "(");
    for (int d = 0; d < ndim && n < size; d++)
        n += (size_t)snprintf(buf + n, size - n, d ? ", %lld" : "%lld", (long long)shape[d]);
    if (n < size) snprintf(buf + n, size - n, ndim == 1 ? ",)" : ")");
}

int cli_npy_read(const char *cmd, const char *what, const char *path, int ndim,
                 const int64_t *shape, edm_npy *a) {
    edm_error err;
    if (edm_npy_read(path, a, &err) != EDM_OK) return cli_fail(cmd, "%s %s: %s", what, path, err.message);
    int ok = a->ndim == ndim;
    for (int d = 0; ok && d < ndim; d++) ok = shape[d] < 0 || a->shape[d] == shape[d];
    if (!ok) {
        char got[160], want[160];
        shape_str(got, sizeof got, a->ndim, a->shape);
        /* the expected shape, with -1 shown as N */
        size_t n = (size_t)snprintf(want, sizeof want, "(");
        for (int d = 0; d < ndim && n < sizeof want; d++) {
            if (shape[d] < 0)
                n += (size_t)snprintf(want + n, sizeof want - n, d ? ", N" : "N");
            else
                n += (size_t)snprintf(want + n, sizeof want - n, d ? ", %lld" : "%lld",
                                      (long long)shape[d]);
        }
        if (n < sizeof want) snprintf(want + n, sizeof want - n, ndim == 1 ? ",)" : ")");
        edm_npy_clear(a);
        return cli_fail(cmd, "%s %s: shape %s, expected %s", what, path, got, want);
    }
    return 0;
}
