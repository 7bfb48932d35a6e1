/*
 * cmd_params.c - `edm params`: the sampler parameter table (edm_sampler_param_table), the one
 * list behind the options of `edm sample`, the request fields of edmd and the PNG text.
 *
 * Text for people (name, type, range, default, which sampler, doc), or with --json one
 * object per row in JSON Schema words (type, minimum / exclusiveMinimum, maximum, enum,
 * default; edm_sampler_param_table_json), which tests/server/test_params.sh compares with the
 * documents that cannot read the table themselves: the OpenAPI description and the web form.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

typedef struct params_args {
    int json;
} params_args;

static const cli_option params_options[] = {
    {"json", NULL, CLI_FLAG, offsetof(params_args, json), "",
     "print a JSON array (JSON Schema words: type, minimum, exclusiveMinimum, maximum, enum, "
     "default)",
     0, 0, NULL, NULL},
    {NULL, NULL, CLI_FLAG, 0, NULL, NULL, 0, 0, NULL, NULL},
};

static int print_json(const char *cmd) {
    char *text = edm_sampler_param_table_json(1);
    if (!text) return cli_fail(cmd, "out of memory");
    puts(text);
    free(text);
    return 0;
}

static void print_text(void) {
    printf("%-14s %-7s %-9s %-16s %-12s %s\n", "name", "type", "sampler", "range", "default",
           "doc");
    for (int i = 0; i < EDM_SAMPLER_PARAM_COUNT; i++) {
        const edm_sampler_param *d = &edm_sampler_param_table[i];
        char range[64], hi[32], def[40];
        if (isfinite(d->max)) snprintf(hi, sizeof hi, "%g]", d->max);
        else snprintf(hi, sizeof hi, "inf%c", d->inf_ok ? ']' : ')');
        if (d->type == EDM_PARAM_CHOICE) edm_sampler_param_choices(d, "|", range, sizeof range);
        else if (d->type == EDM_PARAM_INT) snprintf(range, sizeof range, "%g..%g", d->min, d->max);
        else snprintf(range, sizeof range, "%c%g, %s", d->min_open ? '(' : '[', d->min, hi);
        if (isnan(d->def)) snprintf(def, sizeof def, "%s", d->optional ? "unset" : "per sampler");
        else edm_sampler_param_format(d, d->def, def, sizeof def);
        printf("%-14s %-7s %-9s %-16s %-12s %s", d->name, edm_sampler_param_type_name(d),
               d->ablation_only ? "ablation" : "both", range, def, d->doc);
        if (d->alias) printf(" (generate.py: %s)", d->alias);
        printf("\n");
    }
}

int cmd_params(int argc, char **argv) {
    static const char *cmd = "params";
    params_args a = {0};
    cli_parsed parsed;
    int rc = cli_parse_command(cmd, params_options, argc, argv, &a, &parsed, "[--json]",
                               "Lists the sampler parameters: the options of edm sample (also\n"
                               "spelled with '-' for '_'), the request fields of edmd and the\n"
                               "keys of the PNG text. Setting an ablation-only one selects the\n"
                               "generalised ablation sampler.");
    if (rc >= 0) return rc;
    if (parsed.n_positional)
        return cli_fail(cmd, "unexpected argument '%s'; see edm params --help",
                        parsed.positional[0]) + 1;
    if (a.json) return print_json(cmd);
    print_text();
    return 0;
}
