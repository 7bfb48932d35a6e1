/*
 * sampler_params.c - sampler parameters: defaults, validation, NFE, and the names of the
 * solver / discretization / schedule / scaling choices (edm.h "Samplers").
 *
 * Defaults are those of the official generate.py (spec 3.1 and 3.2): 18 steps, rho 7, no
 * churn, S_max = inf, S_noise 1, and for the ablation sampler heun / edm / linear / none,
 * alpha 1, epsilon_s 1e-3, C_1 0.001, C_2 0.008, M 1000. sigma_min / sigma_max are NaN,
 * meaning "the sampler's own default", because that default depends on the sampler and
 * (ablation) on the discretization.
 *
 * Validation names the bad field in its message so that the CLI and the HTTP API can pass
 * it on unchanged.
 */
#include <math.h>
#include <string.h>

#include "edm.h"
#include "status.h"

#define EDM_MAX_STEPS 10000
#define EDM_MAX_IDDPM_M 1000000

void edm_sampler_params_default(edm_sampler_params *p) {
    memset(p, 0, sizeof *p);
    p->num_steps = 18;
    p->sigma_min = NAN;
    p->sigma_max = NAN;
    p->rho = 7;
    p->S_churn = 0;
    p->S_min = 0;
    p->S_max = INFINITY;
    p->S_noise = 1;
    p->ablation = 0;
    p->solver = EDM_SOLVER_HEUN;
    p->disc = EDM_DISC_EDM;
    p->schedule = EDM_SCHEDULE_LINEAR;
    p->scaling = EDM_SCALING_NONE;
    p->alpha = 1;
    p->epsilon_s = 1e-3;
    p->C_1 = 0.001;
    p->C_2 = 0.008;
    p->M = 1000;
}

enum edm_status edm_sampler_params_validate(const edm_sampler_params *p, edm_error *err) {
    if (p->num_steps < 2 || p->num_steps > EDM_MAX_STEPS)
        return edm_error_set_field(err, EDM_EINVAL, "steps", "num_steps must be in 2..%d (got %d)",
                                   EDM_MAX_STEPS, p->num_steps);
    int have_min = !isnan(p->sigma_min), have_max = !isnan(p->sigma_max);
    if (have_min && !(isfinite(p->sigma_min) && p->sigma_min > 0))
        return edm_error_set_field(err, EDM_EINVAL, "sigma_min",
                                   "sigma_min must be a finite number > 0 (got %g)", p->sigma_min);
    if (have_max && !(isfinite(p->sigma_max) && p->sigma_max > 0))
        return edm_error_set_field(err, EDM_EINVAL, "sigma_max",
                                   "sigma_max must be a finite number > 0 (got %g)", p->sigma_max);
    if (have_min && have_max && !(p->sigma_max > p->sigma_min))
        return edm_error_set_field(err, EDM_EINVAL, "sigma_max",
                                   "sigma_max must be greater than sigma_min (got %g <= %g)",
                                   p->sigma_max, p->sigma_min);
    if (!(isfinite(p->rho) && p->rho > 0))
        return edm_error_set_field(err, EDM_EINVAL, "rho",
                                   "rho must be a finite number > 0 (got %g)", p->rho);
    if (!(isfinite(p->S_churn) && p->S_churn >= 0))
        return edm_error_set_field(err, EDM_EINVAL, "S_churn",
                                   "S_churn must be a finite number >= 0 (got %g)", p->S_churn);
    if (!(isfinite(p->S_min) && p->S_min >= 0))
        return edm_error_set_field(err, EDM_EINVAL, "S_min",
                                   "S_min must be a finite number >= 0 (got %g)", p->S_min);
    if (isnan(p->S_max) || p->S_max < 0) /* +inf allowed (the default) */
        return edm_error_set_field(err, EDM_EINVAL, "S_max",
                                   "S_max must be a number >= 0 or inf (got %g)", p->S_max);
    if (!(p->S_min <= p->S_max))
        return edm_error_set_field(err, EDM_EINVAL, "S_min",
                                   "S_min must not exceed S_max (got %g > %g)", p->S_min, p->S_max);
    if (!(isfinite(p->S_noise) && p->S_noise >= 0))
        return edm_error_set_field(err, EDM_EINVAL, "S_noise",
                                   "S_noise must be a finite number >= 0 (got %g)", p->S_noise);
    if (p->ablation != 0 && p->ablation != 1)
        return edm_error_set_field(err, EDM_EINVAL, "ablation", "ablation must be 0 or 1 (got %d)",
                                   p->ablation);
    /* The ablation-only fields are checked even for edm_sampler: they must be sane anyway,
     * and a caller that flips `ablation` later gets no surprise. */
    if ((unsigned)p->solver > EDM_SOLVER_HEUN)
        return edm_error_set_field(err, EDM_EINVAL, "solver", "solver out of range (%d)",
                                   (int)p->solver);
    if ((unsigned)p->disc > EDM_DISC_EDM)
        return edm_error_set_field(err, EDM_EINVAL, "disc", "disc out of range (%d)", (int)p->disc);
    if ((unsigned)p->schedule > EDM_SCHEDULE_LINEAR)
        return edm_error_set_field(err, EDM_EINVAL, "schedule", "schedule out of range (%d)",
                                   (int)p->schedule);
    if ((unsigned)p->scaling > EDM_SCALING_NONE)
        return edm_error_set_field(err, EDM_EINVAL, "scaling", "scaling out of range (%d)",
                                   (int)p->scaling);
    if (!(p->alpha > 0 && p->alpha <= 1))
        return edm_error_set_field(err, EDM_EINVAL, "alpha", "alpha must be in (0, 1] (got %g)",
                                   p->alpha);
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
    return edm_error_set(err, EDM_OK, NULL);
}

int edm_sampler_params_nfe(const edm_sampler_params *p) {
    int heun = !p->ablation || p->solver == EDM_SOLVER_HEUN;
    return heun ? 2 * p->num_steps - 1 : p->num_steps;
}

/* ---- names ---------------------------------------------------------------------------- */

static const char *const solver_names[] = {"euler", "heun"};
static const char *const disc_names[] = {"vp", "ve", "iddpm", "edm"};
static const char *const schedule_names[] = {"vp", "ve", "linear"};
static const char *const scaling_names[] = {"vp", "none"};

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

static int name_index(const char *const *names, int n, const char *s) {
    if (s)
        for (int i = 0; i < n; i++)
            if (strcmp(names[i], s) == 0) return i;
    return -1;
}

static const char *index_name(const char *const *names, int n, int v) {
    return v >= 0 && v < n ? names[v] : "?";
}

/* The name tables follow the enum order (edm.h). */
_Static_assert(EDM_SOLVER_HEUN == 1 && EDM_DISC_EDM == 3 && EDM_SCHEDULE_LINEAR == 2 &&
                   EDM_SCALING_NONE == 1,
               "name tables follow the enum order");

#define DEFINE_PARSE(fn, type, names)                                                          \
    enum edm_status fn(const char *s, type *out) {                                            \
        int i = name_index(names, COUNT(names), s);                                           \
        if (i < 0) return EDM_EINVAL;                                                         \
        *out = (type)i;                                                                       \
        return EDM_OK;                                                                        \
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
