/*
 * params_json.c - the sampler parameter table as JSON Schema words (edm.h,
 * edm_sampler_param_table_json): what `edm params --json` prints, what edmd's /v1/models
 * tells clients about each setting, and what tests/server/test_params.sh compares with the
 * documents written by hand (the OpenAPI description, the web form).
 */
#include <jansson.h>
#include <math.h>

#include "edm.h"

const char *edm_sampler_param_type_name(const edm_sampler_param *d) {
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
    bad |= json_object_set_new(o, "type", json_string(edm_sampler_param_type_name(d)));
    bad |= json_object_set_new(o, "ablation_only", json_boolean(d->ablation_only));
    bad |= json_object_set_new(o, "doc", json_string(d->doc));
    if (d->type == EDM_PARAM_CHOICE) {
        json_t *names = json_array();
        for (int i = 0; d->choices[i]; i++)
            bad |= json_array_append_new(names, json_string(d->choices[i]));
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

char *edm_sampler_param_table_json(int indent) {
    json_t *rows = json_array();
    for (int i = 0; rows && i < EDM_SAMPLER_PARAM_COUNT; i++) {
        json_t *o = row_json(&edm_sampler_param_table[i]);
        if (!o || json_array_append_new(rows, o)) {
            json_decref(rows);
            rows = NULL;
        }
    }
    size_t flags = (indent > 0 ? JSON_INDENT(indent) : JSON_COMPACT) | JSON_REAL_PRECISION(17);
    char *text = rows ? json_dumps(rows, flags) : NULL;
    json_decref(rows);
    return text;
}
