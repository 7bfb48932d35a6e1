/*
 * cmd_params.c - `edm params`: the sampler parameter table (edm_sampler_param_table), the one
 * list behind the options of `edm sample`, the request fields of edmd and the PNG text.
 *
 * Text for people (name, type, range, default, which sampler, doc), or with --json one
 * object per row in JSON Schema words (type, minimum / exclusiveMinimum, maximum, enum,
 * default), which tests/server/test_params.sh compares with the documents that cannot read
 * the table themselves: the OpenAPI description and the web form.
 */
#include <jansson.h>
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

static const char *type_name(const edm_sampler_param *d) {
    switch (d->type) {
    case EDM_PARAM_INT: return "integer";
    case EDM_PARAM_NUMBER: return "number";
    case EDM_PARAM_CHOICE: return "string";
    }
    return "?";
}

/* A number as JSON: integral values as integers (18, not 18.0). */
static json_t *number(double v) {
    return v == floor(v) && fabs(v) < 9007199254740992.0 ? json_integer((json_int_t)v)
                                                           : json_real(v);
}

/* One row as a JSON object; NULL when out of memory. */
static json_t *row_json(const edm_sampler_param *d) {
    json_t *o = json_object();
    if (!o) return NULL;
    int bad = json_object_set_new(o, "name", json_string(d->name));
    bad |= json_object_set_new(o, "alias", d->alias ? json_string(d->alias) : json_null());
    bad |= json_object_set_new(o, "type", json_string(type_name(d)));
    bad |= json_object_set_new(o, "ablation_only", json_boolean(d->ablation_only));
    bad |= json_object_set_new(o, "doc", json_string(d->doc));
    if (d->type == EDM_PARAM_CHOICE) {
        json_t *names = json_array();
        for (int i = 0; d->choices[i]; i++) bad |= json_array_append_new(names, json_string(d->choices[i]));
        bad |= json_object_set_new(o, "enum", names);
        bad |= json_object_set_new(o, "default", json_string(d->choices[(int)d->def]));
        return bad ? (json_decref(o), NULL) : o;
    }
    bad |= json_object_set_new(o, d->min_open ? "exclusiveMinimum" : "minimum", number(d->min));
    if (isfinite(d->max)) bad |= json_object_set_new(o, "maximum", number(d->max));
    bad |= json_object_set_new(o, "inf_ok", json_boolean(d->inf_ok));
    if (isinf(d->def)) bad |= json_object_set_new(o, "default", json_string("inf"));
    else if (!isnan(d->def)) bad |= json_object_set_new(o, "default", number(d->def));
    return bad ? (json_decref(o), NULL) : o;
}

static int print_json(const char *cmd) {
    json_t *rows = json_array();
    for (int i = 0; rows && i < EDM_SAMPLER_PARAM_COUNT; i++) {
        json_t *o = row_json(&edm_sampler_param_table[i]);
        if (!o || json_array_append_new(rows, o)) {
            json_decref(rows);
            rows = NULL;
        }
    }
    char *text = rows ? json_dumps(rows, JSON_INDENT(1) | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(rows);
    if (!text) return cli_fail(cmd, "out of memory");
    puts(text);
    free(text);
    return 0;
}

static void print_text(void) {
    printf("%-10s %-7s %-9s %-16s %-12s %s\n", "name", "type", "sampler", "range", "default",
           "doc");
    for (int i = 0; i < EDM_SAMPLER_PARAM_COUNT; i++) {
        const edm_sampler_param *d = &edm_sampler_param_table[i];
        char range[64], hi[32], def[40];
        if (isfinite(d->max)) snprintf(hi, sizeof hi, "%g]", d->max);
        else snprintf(hi, sizeof hi, "inf%c", d->inf_ok ? ']' : ')');
        if (d->type == EDM_PARAM_CHOICE) edm_sampler_param_choices(d, "|", range, sizeof range);
        else if (d->type == EDM_PARAM_INT) snprintf(range, sizeof range, "%g..%g", d->min, d->max);
        else snprintf(range, sizeof range, "%c%g, %s", d->min_open ? '(' : '[', d->min, hi);
        if (isnan(d->def)) snprintf(def, sizeof def, "per sampler");
        else edm_sampler_param_format(d, d->def, def, sizeof def);
        printf("%-10s %-7s %-9s %-16s %-12s %s", d->name, type_name(d),
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
