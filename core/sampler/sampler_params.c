/*
 * sampler_params.c - sampler parameters: the table of the ones users set, defaults,
 * validation, NFE, values as text, and the names of the solver / discretization / schedule /
 * scaling choices (edm.h "Samplers").
 *
 * The table (edm_sampler_param_table) is the one list of parameter names, types, ranges,
 * defaults and docs: the `edm` command builds its options from it, the HTTP API its request
 * fields, and defaults and validation below are driven by it, so a row added here reaches
 * every interface. Tests check the documents that cannot read it at run time (OpenAPI, the
 * web form) against `edm params --json`.
 *
 * Defaults are those of the official generate.py (spec 3.1 and 3.2): 18 steps, rho 7, no
 * churn, S_max = inf, S_noise 1, and for the ablation sampler heun / edm / linear / none,
 * alpha 1, epsilon_s 1e-3, C_1 0.001, C_2 0.008, M 1000. sigma_min / sigma_max are NaN,
 * meaning "the sampler's own default", because that default depends on the sampler and
 * (ablation) on the discretization.
 *
 * Errors name the bad parameter in err->field (and in the message) so that the CLI and the
 * HTTP API can pass them on unchanged.
 */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edm.h"
#include "sampler.h"
#include "status.h"

#define EDM_MAX_STEPS 10000
#define EDM_MAX_IDDPM_M 1000000

/* ---- names ------------------------------------------------------------------------------ */

/* In enum order (edm.h), NULL-terminated for the table. */
static const char *const solver_names[] = {"euler", "heun", NULL};
static const char *const disc_names[] = {"vp", "ve", "iddpm", "edm", NULL};
static const char *const schedule_names[] = {"vp", "ve", "linear", NULL};
static const char *const scaling_names[] = {"vp", "none", NULL};

_Static_assert(EDM_SOLVER_HEUN == 1 && EDM_DISC_EDM == 3 && EDM_SCHEDULE_LINEAR == 2 &&
                   EDM_SCALING_NONE == 1,
               "name tables follow the enum order");
/* CHOICE rows are read and written as int. */
_Static_assert(sizeof(enum edm_solver) == sizeof(int) && sizeof(enum edm_disc) == sizeof(int) &&
                   sizeof(enum edm_schedule) == sizeof(int) &&
                   sizeof(enum edm_scaling) == sizeof(int),
               "enums are int-sized");

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])) - 1) /* without the NULL */

static int name_index(const char *const *names, const char *s) {
    if (s)
        for (int i = 0; names[i]; i++)
            if (strcmp(names[i], s) == 0) return i;
    return -1;
}

static const char *index_name(const char *const *names, int n, int v) {
    return v >= 0 && v < n ? names[v] : "?";
}

#define DEFINE_PARSE(fn, type, names)                                                              \
    enum edm_status fn(const char *s, type *out) {                                                 \
        int i = name_index(names, s);                                                              \
        if (i < 0) return EDM_EINVAL;                                                              \
        *out = (type)i;                                                                            \
        return EDM_OK;                                                                             \
    }

DEFINE_PARSE(edm_solver_parse, enum edm_solver, solver_names)
DEFINE_PARSE(edm_disc_parse, enum edm_disc, disc_names)
DEFINE_PARSE(edm_schedule_parse, enum edm_schedule, schedule_names)
DEFINE_PARSE(edm_scaling_parse, enum edm_scaling, scaling_names)

const char *edm_solver_name(enum edm_solver v) {
    return index_name(solver_names, COUNT(solver_names), (int)v);
}
const char *edm_disc_name(enum edm_disc v) {
    return index_name(disc_names, COUNT(disc_names), (int)v);
}
const char *edm_schedule_name(enum edm_schedule v) {
    return index_name(schedule_names, COUNT(schedule_names), (int)v);
}
const char *edm_scaling_name(enum edm_scaling v) {
    return index_name(scaling_names, COUNT(scaling_names), (int)v);
}

/* ---- the table -------------------------------------------------------------------------- */

#define OFF(field) offsetof(edm_sampler_params, field)
#define INT_ROW(name, alias, lo, hi, def, doc, field)                                              \
    { name, alias, EDM_PARAM_INT, 0, lo, hi, 0, 0, def, NULL, doc, OFF(field), 0 }
/* a number in [lo, hi] ((lo, hi] with min_open), finite unless inf_ok; field = name */
#define NUM_ROW(field, abl, lo, min_open, hi, inf_ok, def, doc)                                    \
    { #field, NULL, EDM_PARAM_NUMBER, abl, lo, hi, min_open, inf_ok, def, NULL, doc, OFF(field), 0 }
#define CHOICE_ROW(name, alias, names, def, doc, field)                                            \
    { name, alias, EDM_PARAM_CHOICE, 1, 0, 0, 0, 0, def, names, doc, OFF(field), 0 }
/* a start from an image (optional: in the plan's text while in effect); field = name */
#define IMAGE_NUM_ROW(field, hi, doc)                                                              \
    { #field, NULL, EDM_PARAM_NUMBER, 0, 0, hi, 1, 0, NAN, NULL, doc, OFF(field), 1 }
#define IMAGE_INT_ROW(field, lo, hi, def, doc)                                                     \
    { #field, NULL, EDM_PARAM_INT, 0, lo, hi, 0, 0, def, NULL, doc, OFF(field), 1 }

const edm_sampler_param edm_sampler_param_table[EDM_SAMPLER_PARAM_COUNT] = {
    INT_ROW("steps", "num_steps", 2, EDM_MAX_STEPS, 18, "number of sampling steps N", num_steps),
    NUM_ROW(sigma_min, 0, 0, 1, INFINITY, 0, NAN, "lowest noise level"),
    NUM_ROW(sigma_max, 0, 0, 1, INFINITY, 0, NAN, "highest noise level"),
    NUM_ROW(rho, 0, 0, 1, INFINITY, 0, 7, "time step exponent"),
    NUM_ROW(S_churn, 0, 0, 0, INFINITY, 0, 0, "stochasticity strength"),
    NUM_ROW(S_min, 0, 0, 0, INFINITY, 0, 0, "stochasticity min noise level"),
    NUM_ROW(S_max, 0, 0, 0, INFINITY, 1, INFINITY, "stochasticity max noise level"),
    NUM_ROW(S_noise, 0, 0, 0, INFINITY, 0, 1, "stochasticity noise inflation"),
    CHOICE_ROW("solver", NULL, solver_names, EDM_SOLVER_HEUN, "ODE solver", solver),
    CHOICE_ROW("disc", "discretization", disc_names, EDM_DISC_EDM, "time step discretization",
               disc),
    CHOICE_ROW("schedule", NULL, schedule_names, EDM_SCHEDULE_LINEAR, "noise schedule sigma(t)",
               schedule),
    CHOICE_ROW("scaling", NULL, scaling_names, EDM_SCALING_NONE, "signal scaling s(t)", scaling),
    NUM_ROW(alpha, 1, 0, 1, 1, 0, 1, "Heun's intermediate step position"),
    IMAGE_NUM_ROW(strength, 1,
                  "start from the init image at this fraction of the noise schedule (steps are "
                  "kept)"),
    IMAGE_NUM_ROW(sigma_start, INFINITY,
                  "start from the init image at this noise level instead of a strength"),
    IMAGE_INT_ROW(resample_jump, 0, EDM_MAX_STEPS - 1, 0,
                  "RePaint resampling: steps to go back and run again (0: off)"),
    IMAGE_INT_ROW(resample_count, 1, EDM_MAX_RESAMPLE_COUNT, 1,
                  "RePaint resampling: passes over each stretch (1: off)"),
};
#undef INT_ROW
#undef NUM_ROW
#undef CHOICE_ROW
#undef IMAGE_NUM_ROW
#undef IMAGE_INT_ROW
#undef OFF

const edm_sampler_param *edm_sampler_param_find(const char *name) {
    if (!name) return NULL;
    for (int i = 0; i < EDM_SAMPLER_PARAM_COUNT; i++) {
        const edm_sampler_param *d = &edm_sampler_param_table[i];
        if (strcmp(d->name, name) == 0 || (d->alias && strcmp(d->alias, name) == 0)) return d;
    }
    return NULL;
}

static int choice_count(const edm_sampler_param *d) {
    int n = 0;
    while (d->choices[n]) n++;
    return n;
}

double edm_sampler_param_get(const edm_sampler_params *p, const edm_sampler_param *d) {
    const char *field = (const char *)p + d->offset;
    if (d->type == EDM_PARAM_NUMBER) return *(const double *)field;
    return *(const int *)field;
}

/* Stores v (already checked to suit the row's type). */
static void param_store(edm_sampler_params *p, const edm_sampler_param *d, double v) {
    char *field = (char *)p + d->offset;
    if (d->type == EDM_PARAM_NUMBER) *(double *)field = v;
    else *(int *)field = (int)v;
    if (d->ablation_only) p->ablation = 1;
}

enum edm_status edm_sampler_param_set(edm_sampler_params *p, const edm_sampler_param *d,
                                      double value, edm_error *err) {
    EDM_ASSERT(d && d->type != EDM_PARAM_CHOICE);
    if (isnan(value))
        return edm_error_set_field(err, EDM_EINVAL, d->name, "%s: not a number", d->name);
    if (d->type == EDM_PARAM_INT) {
        if (value != floor(value))
            return edm_error_set_field(err, EDM_EINVAL, d->name, "%s must be an integer (got %g)",
                                       d->name, value);
        if (!(value >= d->min && value <= d->max)) /* also keeps (int)value defined */
            return edm_error_set_field(err, EDM_EINVAL, d->name,
                                       "%s must be in %.0f..%.0f (got %.0f)", d->name, d->min,
                                       d->max, value);
    }
    param_store(p, d, value);
    return edm_error_set(err, EDM_OK, NULL);
}

enum edm_status edm_sampler_param_parse(edm_sampler_params *p, const edm_sampler_param *d,
                                        const char *text, edm_error *err) {
    EDM_ASSERT(d && text);
    if (d->type == EDM_PARAM_CHOICE) {
        int i = name_index(d->choices, text);
        if (i < 0) {
            char names[128];
            edm_sampler_param_choices(d, ", ", names, sizeof names);
            return edm_error_set_field(err, EDM_EINVAL, d->name, "%s: '%.64s' is not one of %s",
                                       d->name, text, names);
        }
        param_store(p, d, i);
        return edm_error_set(err, EDM_OK, NULL);
    }
    char *end;
    double v = strtod(text, &end);
    int bad = !*text || *end || isnan(v);
    if (!bad && d->type == EDM_PARAM_INT) {
        /* decimal digits only: no 2.5, 1e3 or 0x10 for a count */
        const char *c = text + (*text == '-' || *text == '+');
        bad = !*c || strspn(c, "0123456789") != strlen(c);
    }
    if (bad)
        return edm_error_set_field(err, EDM_EINVAL, d->name, "%s: '%.64s' is not %s", d->name, text,
                                   d->type == EDM_PARAM_INT ? "an integer" : "a number");
    return edm_sampler_param_set(p, d, v, err);
}

/* The shortest of %.15g / %.17g that reads back as v. */
static int format_double(double v, char *buf, size_t size) {
    char tmp[40];
    snprintf(tmp, sizeof tmp, "%.15g", v);
    if (strtod(tmp, NULL) != v) snprintf(tmp, sizeof tmp, "%.17g", v);
    return snprintf(buf, size, "%s", tmp);
}

int edm_sampler_param_format(const edm_sampler_param *d, double value, char *buf, size_t size) {
    if (isnan(value)) return snprintf(buf, size, "none");
    if (isinf(value)) return snprintf(buf, size, value > 0 ? "inf" : "-inf");
    if (d->type == EDM_PARAM_CHOICE) {
        int i = (int)value;
        return snprintf(buf, size, "%s", index_name(d->choices, choice_count(d), i));
    }
    if (d->type == EDM_PARAM_INT) return snprintf(buf, size, "%.0f", value);
    return format_double(value, buf, size);
}

/* snprintf at the end of what buf holds, *total counting the full length as snprintf does
 * (buf may be too small, then it keeps a truncated, terminated prefix). */
__attribute__((format(printf, 4, 5))) static void append(char *buf, size_t size, int *total,
                                                         const char *fmt, ...) {
    size_t at = (size_t)*total < size ? (size_t)*total : size;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(size ? buf + at : buf, size - at, fmt, ap);
    va_end(ap);
    if (k > 0) *total += k;
}

int edm_sampler_param_choices(const edm_sampler_param *d, const char *sep, char *buf, size_t size) {
    int total = 0;
    if (size) buf[0] = '\0';
    for (int i = 0; d->choices && d->choices[i]; i++)
        append(buf, size, &total, "%s%s", i ? sep : "", d->choices[i]);
    return total;
}

/* ---- defaults, validation, NFE ---------------------------------------------------------- */

void edm_sampler_params_default(edm_sampler_params *p) {
    memset(p, 0, sizeof *p);
    for (int i = 0; i < EDM_SAMPLER_PARAM_COUNT; i++) {
        const edm_sampler_param *d = &edm_sampler_param_table[i];
        char *field = (char *)p + d->offset;
        if (d->type == EDM_PARAM_NUMBER) *(double *)field = d->def;
        else *(int *)field = (int)d->def;
    }
    p->ablation = 0;
    p->epsilon_s = 1e-3;
    p->C_1 = 0.001;
    p->C_2 = 0.008;
    p->M = 1000;
}

/* Row d's range check, with a message that states the range. */
static enum edm_status check_row(const edm_sampler_params *p, const edm_sampler_param *d,
                                 edm_error *err) {
    const double v = edm_sampler_param_get(p, d);
    const char *name = d->name;
    switch (d->type) {
    case EDM_PARAM_INT:
        if (v < d->min || v > d->max)
            return edm_error_set_field(err, EDM_EINVAL, name, "%s must be in %.0f..%.0f (got %.0f)",
                                       name, d->min, d->max, v);
        return EDM_OK;
    case EDM_PARAM_CHOICE:
        if (v < 0 || v >= choice_count(d))
            return edm_error_set_field(err, EDM_EINVAL, name, "%s out of range (%.0f)", name, v);
        return EDM_OK;
    case EDM_PARAM_NUMBER:
        if (isnan(v) && isnan(d->def)) return EDM_OK; /* NaN: the sampler's default */
        if (!isnan(v) && (d->min_open ? v > d->min : v >= d->min) && v <= d->max &&
            (isfinite(v) || d->inf_ok))
            return EDM_OK;
        if (isfinite(d->max))
            return edm_error_set_field(err, EDM_EINVAL, name, "%s must be in %c%g, %g] (got %g)",
                                       name, d->min_open ? '(' : '[', d->min, d->max, v);
        return edm_error_set_field(err, EDM_EINVAL, name, "%s must be a %snumber %s %g%s (got %g)",
                                   name, d->inf_ok ? "" : "finite ",
                                   d->min_open ? ">" : ">=", d->min, d->inf_ok ? " or inf" : "", v);
    }
    EDM_ASSERT(!"bad parameter type");
    return EDM_EINVAL;
}

/* The settings of a start from an image together (edm.h; each row's own range is the
 * table's); the range of sigma_start against the resolved sigma range is the plan's check. */
static enum edm_status init_params_validate(const edm_sampler_params *p, edm_error *err) {
    if (!isnan(p->strength) && !isnan(p->sigma_start))
        return edm_error_set_field(err, EDM_EINVAL, "sigma_start",
                                   "give either strength or sigma_start, not both");
    if (p->resample_jump >= p->num_steps)
        return edm_error_set_field(err, EDM_EINVAL, "resample_jump",
                                   "resample_jump must be in 0..%d (steps - 1; got %d)",
                                   p->num_steps - 1, p->resample_jump);
    if (p->resample_count > 1 && p->resample_jump == 0)
        return edm_error_set_field(err, EDM_EINVAL, "resample_jump",
                                   "resample_count %d needs a resample_jump of at least 1",
                                   p->resample_count);
    return edm_error_set(err, EDM_OK, NULL);
}

enum edm_status edm_sampler_params_validate(const edm_sampler_params *p, edm_error *err) {
    enum edm_status st;
    for (int i = 0; i < EDM_SAMPLER_PARAM_COUNT; i++)
        if ((st = check_row(p, &edm_sampler_param_table[i], err)) != EDM_OK) return st;
    if (!isnan(p->sigma_min) && !isnan(p->sigma_max) && !(p->sigma_max > p->sigma_min))
        return edm_error_set_field(err, EDM_EINVAL, "sigma_max",
                                   "sigma_max must be greater than sigma_min (got %g <= %g)",
                                   p->sigma_max, p->sigma_min);
    if (!(p->S_min <= p->S_max))
        return edm_error_set_field(err, EDM_EINVAL, "S_min",
                                   "S_min must not exceed S_max (got %g > %g)", p->S_min, p->S_max);
    /* The fields no interface sets: checked all the same (a caller may fill the struct), and
     * for edm_sampler too, so that a caller that flips `ablation` later gets no surprise. */
    if (p->ablation != 0 && p->ablation != 1)
        return edm_error_set_field(err, EDM_EINVAL, "ablation", "ablation must be 0 or 1 (got %d)",
                                   p->ablation);
    if (!(p->epsilon_s > 0 && p->epsilon_s < 1))
        return edm_error_set_field(err, EDM_EINVAL, "epsilon_s",
                                   "epsilon_s must be in (0, 1) (got %g)", p->epsilon_s);
    if (!(p->C_1 > 0 && p->C_1 <= 1))
        return edm_error_set_field(err, EDM_EINVAL, "C_1", "C_1 must be in (0, 1] (got %g)",
                                   p->C_1);
    if (!(isfinite(p->C_2) && p->C_2 >= 0))
        return edm_error_set_field(err, EDM_EINVAL, "C_2",
                                   "C_2 must be a finite number >= 0 (got %g)", p->C_2);
    if (p->M < 1 || p->M > EDM_MAX_IDDPM_M)
        return edm_error_set_field(err, EDM_EINVAL, "M", "M must be in 1..%d (got %d)",
                                   EDM_MAX_IDDPM_M, p->M);
    return init_params_validate(p, err);
}

int edm_sampler_resample_points(const edm_sampler_params *p) {
    return p->resample_jump > 0 && p->resample_count > 1 ? (p->num_steps - 1) / p->resample_jump
                                                         : 0;
}

int edm_sampler_params_nfe(const edm_sampler_params *p) {
    int heun = !p->ablation || p->solver == EDM_SOLVER_HEUN;
    int nfe = heun ? 2 * p->num_steps - 1 : p->num_steps;
    /* Each jump point L = j, 2j, .. < N reruns steps L-j .. L-1 (none of them the last step,
     * so each costs 2 with Heun), resample_count - 1 times. */
    return nfe + edm_sampler_resample_points(p) * (p->resample_count - 1) * p->resample_jump *
                     (heun ? 2 : 1);
}

/* ---- a plan's settings as text ---------------------------------------------------------- */

/* Row d's value as the plan runs it: sigma_min / sigma_max resolved (the sampler's default,
 * then the network's range), the others as given. */
static double plan_value(const edm_plan *plan, const edm_sampler_param *d) {
    if (d->offset == offsetof(edm_sampler_params, sigma_min)) return plan->sigma_lo;
    if (d->offset == offsetof(edm_sampler_params, sigma_max)) return plan->sigma_hi;
    return edm_sampler_param_get(&plan->params, d);
}

/* Whether the plan's sampler has row d (the ablation-only rows belong to ablation_sampler). */
static int plan_has(const edm_plan *plan, const edm_sampler_param *d) {
    return !d->ablation_only || plan->params.ablation;
}

/* Row d's value in the plan's text: plan_value, or for an optional row NaN (left out) while it
 * is not in effect. sigma_start: the description gives the level resolved from either way of
 * setting it, a Request the one given (it must not hold strength and sigma_start both).
 * RePaint's rows: only while the plan resamples. */
static double text_value(const edm_plan *plan, const edm_sampler_param *d, int request) {
    const edm_sampler_params *p = &plan->params;
    if (!d->optional) return plan_value(plan, d);
    if (d->offset == offsetof(edm_sampler_params, sigma_start)) {
        if (request) return isnan(p->strength) ? p->sigma_start : NAN;
        return isnan(p->strength) && isnan(p->sigma_start) ? NAN : plan->sigma_start;
    }
    if (d->type == EDM_PARAM_INT) /* resample_jump, resample_count */
        return edm_sampler_resample_points(p) > 0 ? edm_sampler_param_get(p, d) : NAN;
    return edm_sampler_param_get(p, d); /* strength: NaN when unset */
}

void edm_plan_sigma_range(const edm_plan *plan, double *sigma_min, double *sigma_max) {
    *sigma_min = plan->sigma_lo;
    *sigma_max = plan->sigma_hi;
}

int edm_plan_describe(const edm_plan *plan, char *buf, size_t size) {
    const edm_sampler_params *p = &plan->params;
    int total = 0;
    if (size) buf[0] = '\0';
    append(buf, size, &total, "%s", p->ablation ? "ablation" : "edm");
    for (int i = 0; i < EDM_SAMPLER_PARAM_COUNT; i++) {
        const edm_sampler_param *d = &edm_sampler_param_table[i];
        const double v = text_value(plan, d, 0);
        if (!plan_has(plan, d) || (d->optional && isnan(v))) continue;
        char value[40];
        edm_sampler_param_format(d, v, value, sizeof value);
        append(buf, size, &total, " %s=%s", d->name, value);
        if (d->offset == offsetof(edm_sampler_params, num_steps)) /* nfe follows steps */
            append(buf, size, &total, " nfe=%d", plan->nfe);
    }
    return total;
}

/* A JSON string: quotes, backslashes and control characters escaped (other bytes pass). */
static void append_json_string(char *buf, size_t size, int *total, const char *s) {
    append(buf, size, total, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') append(buf, size, total, "\\%c", c);
        else if (c < 0x20) append(buf, size, total, "\\u%04x", c);
        else append(buf, size, total, "%c", c);
    }
    append(buf, size, total, "\"");
}

int edm_plan_record_json(const edm_plan *plan, const edm_record *rec, char *buf, size_t size) {
    int total = 0;
    if (size) buf[0] = '\0';
    append(buf, size, &total, "{\"model\":");
    append_json_string(buf, size, &total, rec->model ? rec->model : "");
    append(buf, size, &total, ",\"model_sha256\":");
    append_json_string(buf, size, &total, rec->model_sha256 ? rec->model_sha256 : "");
    append(buf, size, &total, ",\"seed\":%llu,\"class_label\":", (unsigned long long)rec->seed);
    if (rec->class_label >= 0) append(buf, size, &total, "%d", rec->class_label);
    else append(buf, size, &total, "null");
    for (int i = 0; i < EDM_SAMPLER_PARAM_COUNT; i++) {
        const edm_sampler_param *d = &edm_sampler_param_table[i];
        const double v = text_value(plan, d, 1);
        if (!plan_has(plan, d) || (d->optional && isnan(v))) continue;
        char value[40];
        edm_sampler_param_format(d, v, value, sizeof value);
        /* choices and infinity are strings in JSON, numbers are bare */
        int quoted = d->type == EDM_PARAM_CHOICE || isinf(v);
        append(buf, size, &total, ",\"%s\":%s%s%s", d->name, quoted ? "\"" : "", value,
               quoted ? "\"" : "");
    }
    /* the inputs: the files the request must send again, and a variation's seed */
    const char *const hashes[2][2] = {{"init_image_sha256", rec->init_image_sha256},
                                      {"mask_sha256", rec->mask_sha256}};
    for (int k = 0; k < 2; k++)
        if (hashes[k][1] && hashes[k][1][0]) {
            append(buf, size, &total, ",\"%s\":", hashes[k][0]);
            append_json_string(buf, size, &total, hashes[k][1]);
        }
    if (rec->variation_strength > 0) {
        char value[40];
        format_double(rec->variation_strength, value, sizeof value);
        append(buf, size, &total, ",\"variation_seed\":%llu,\"variation_strength\":%s",
               (unsigned long long)rec->variation_seed, value);
    }
    append(buf, size, &total, ",\"nfe\":%d,\"edm_serve_version\":\"%s\"}", plan->nfe, EDM_VERSION);
    return total;
}
