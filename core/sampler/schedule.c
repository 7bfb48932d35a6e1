/*
 * schedule.c - sampler plans: the time steps of edm_sampler (EDM paper, Algorithm 2; spec 3.1)
 * and of the generalised ablation_sampler (spec 3.2) for one network and one parameter set.
 *
 * Everything is fp64, as in the reference generate.py, and the formulas are evaluated in the
 * reference's order so that the steps agree with it to the last bits:
 *   1. the sigma range: the sampler's defaults (per discretization for the ablation sampler),
 *      then clamped to the network's [sigma_min, sigma_max];
 *   2. (ablation) the VP betas re-derived from the clamped range and epsilon_s, so that
 *      sigma(1) = sigma_max and sigma(epsilon_s) = sigma_min;
 *   3. the step noise levels sigma_i of the discretization (vp / ve / iddpm / edm), snapped by
 *      the network's round_sigma and mapped to times t_i = sigma^-1(sigma_i), with t_N = 0;
 *   4. per step, the churn gamma_i, t_hat, and every scalar the state machine needs
 *      (sigma(t), s(t), the ODE coefficients), so that images never need the model again.
 *
 * The ablation sampler's iDDPM discretization builds its own fp64 table u with alpha_bar
 * evaluated in fp32 (the reference's j is an integer tensor, which makes the sine fp32), and
 * picks u_filtered[round_half_even((K-1)/(N-1) i)].
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "model/model.h"
#include "sampler.h"
#include "status.h"

/* ---- sigma(t), sigma'(t), sigma^-1, s(t), s'(t) (spec 3.2 steps 4 and 5) ------------------- */

typedef struct edm_sched {
    enum edm_schedule schedule;
    enum edm_scaling scaling;
    double beta_d, beta_min; /* VP schedule: the re-derived betas */
} edm_sched;

/* sigma_VP(t) = sqrt(e^(beta_d t^2 / 2 + beta_min t) - 1); e ** x as the reference writes it. */
static double vp_sigma(double beta_d, double beta_min, double t) {
    return sqrt(pow(M_E, 0.5 * beta_d * (t * t) + beta_min * t) - 1);
}

static double sched_sigma(const edm_sched *k, double t) {
    switch (k->schedule) {
    case EDM_SCHEDULE_VP: return vp_sigma(k->beta_d, k->beta_min, t);
    case EDM_SCHEDULE_VE: return sqrt(t);
    case EDM_SCHEDULE_LINEAR: return t;
    }
    EDM_ASSERT(!"bad schedule");
    return NAN;
}

static double sched_sigma_deriv(const edm_sched *k, double t) {
    switch (k->schedule) {
    case EDM_SCHEDULE_VP: {
        double sigma = sched_sigma(k, t);
        return 0.5 * (k->beta_min + k->beta_d * t) * (sigma + 1 / sigma);
    }
    case EDM_SCHEDULE_VE: return 0.5 / sqrt(t);
    case EDM_SCHEDULE_LINEAR: return 1;
    }
    EDM_ASSERT(!"bad schedule");
    return NAN;
}

static double sched_sigma_inv(const edm_sched *k, double sigma) {
    switch (k->schedule) {
    case EDM_SCHEDULE_VP:
        return (sqrt(k->beta_min * k->beta_min + 2 * k->beta_d * log(sigma * sigma + 1)) -
                k->beta_min) /
               k->beta_d;
    case EDM_SCHEDULE_VE: return sigma * sigma;
    case EDM_SCHEDULE_LINEAR: return sigma;
    }
    EDM_ASSERT(!"bad schedule");
    return NAN;
}

static double sched_s(const edm_sched *k, double t) {
    if (k->scaling == EDM_SCALING_NONE) return 1;
    double sigma = sched_sigma(k, t);
    return 1 / sqrt(1 + sigma * sigma);
}

static double sched_s_deriv(const edm_sched *k, double t) {
    if (k->scaling == EDM_SCALING_NONE) return 0;
    double s = sched_s(k, t);
    return -sched_sigma(k, t) * sched_sigma_deriv(k, t) * (s * s * s);
}

/* The ODE in the generalised form (spec 3.2 step 7): d = a x - b D with
 * a = sigma'/sigma + s'/s and b = sigma' s / sigma, at time t. */
static void sched_ode_coefs(const edm_sched *k, double t, double *a, double *b) {
    double sigma = sched_sigma(k, t), sigma_deriv = sched_sigma_deriv(k, t);
    double s = sched_s(k, t), s_deriv = sched_s_deriv(k, t);
    *a = sigma_deriv / sigma + s_deriv / s;
    *b = sigma_deriv * s / sigma;
}

/* The parameter to name when the sigma range is unusable: one the caller gave (sigma_min
 * first), else none (the defaults and the network's range are nobody's input). */
static const char *sigma_field(const edm_sampler_params *p) {
    return !isnan(p->sigma_min) ? "sigma_min" : !isnan(p->sigma_max) ? "sigma_max" : NULL;
}

/* ---- discretizations (spec 3.1 step 2, 3.2 step 3) ------------------------------------------ */

void edm_plan_iddpm_u(int M, double C_1, double C_2, double *u) {
    EDM_ASSERT(M >= 1);
    /* alpha_bar(j) = sin(pi/2 j / M / (C_2 + 1))^2, every operation in fp32 as the reference
     * (an integer tensor times a Python float gives fp32); the ratio is clipped in fp32 and
     * only then joins the fp64 recurrence. */
    const float half_pi = (float)(0.5 * M_PI), Mf = (float)M, c2f = (float)(C_2 + 1);
    const float c1f = (float)C_1;
    u[M] = 0;
    float ab_next = 0; /* alpha_bar(j) for the j of the loop below */
    {
        float a = sinf((float)M * half_pi / Mf / c2f);
        ab_next = a * a;
    }
    for (int j = M; j >= 1; j--) {
        float a = sinf((float)(j - 1) * half_pi / Mf / c2f);
        float ab_prev = a * a; /* alpha_bar(j - 1) */
        float ratio = ab_prev / ab_next;
        if (ratio < c1f) ratio = c1f; /* clip(min=C_1) */
        u[j - 1] = sqrt((u[j] * u[j] + 1) / (double)ratio - 1);
        ab_next = ab_prev;
    }
}

/* Fills sigma_steps[0..N) for the ablation sampler's discretization over [lo, hi]. */
static enum edm_status disc_sigmas(const edm_sampler_params *p, double lo, double hi,
                                   double vp_beta_d, double vp_beta_min, double *sigma_steps,
                                   edm_error *err) {
    const int N = p->num_steps;
    switch (p->disc) {
    case EDM_DISC_VP:
        for (int i = 0; i < N; i++) {
            double t = 1 + (double)i / (N - 1) * (p->epsilon_s - 1);
            sigma_steps[i] = vp_sigma(vp_beta_d, vp_beta_min, t);
        }
        return EDM_OK;
    case EDM_DISC_VE:
        for (int i = 0; i < N; i++) {
            double t = (hi * hi) * pow(lo * lo / (hi * hi), (double)i / (N - 1));
            sigma_steps[i] = sqrt(t);
        }
        return EDM_OK;
    case EDM_DISC_IDDPM: {
        double *u = malloc((size_t)(p->M + 1) * sizeof *u);
        if (!u) return edm_error_set(err, EDM_ENOMEM, "out of memory for the iDDPM table");
        edm_plan_iddpm_u(p->M, p->C_1, p->C_2, u);
        int K = 0; /* compact u_filtered (decreasing) into the front of u */
        for (int j = 0; j <= p->M; j++)
            if (u[j] >= lo && u[j] <= hi) u[K++] = u[j];
        if (K == 0) {
            free(u);
            return edm_error_set_field(
                err, EDM_EINVAL, sigma_field(p),
                "no iDDPM noise level lies in [sigma_min, sigma_max] = [%g, %g]", lo, hi);
        }
        for (int i = 0; i < N; i++) {
            double pos = (double)(K - 1) / (N - 1) * i;
            long idx = lrint(pos); /* round half to even in the default rounding mode */
            EDM_ASSERT(idx >= 0 && idx < K);
            sigma_steps[i] = u[idx];
        }
        free(u);
        return EDM_OK;
    }
    case EDM_DISC_EDM:
        for (int i = 0; i < N; i++) {
            double a = pow(hi, 1 / p->rho), b = pow(lo, 1 / p->rho);
            sigma_steps[i] = pow(a + (double)i / (N - 1) * (b - a), p->rho);
        }
        return EDM_OK;
    }
    EDM_ASSERT(!"bad discretization");
    return EDM_EINVAL;
}

/* ---- plans ------------------------------------------------------------------------------- */

static double net_round(const edm_plan_net *net, double sigma) {
    return net->round_sigma ? net->round_sigma(net->round_ctx, sigma) : sigma;
}

void edm_plan_free(edm_plan *plan) {
    if (!plan) return;
    free(plan->sigma);
    free(plan->t);
    free(plan->s_level);
    free(plan->steps);
    free(plan);
}

/* A noise level the network can take: the model's own check, or positive and finite once
 * rounded to fp32. */
static int net_sigma_ok(const edm_plan_net *net, double sigma) {
    if (net->sigma_usable) return net->sigma_usable(net->round_ctx, sigma);
    const float f = (float)sigma;
    return f > 0 && isfinite(f);
}

/*
 * Admission check of a built plan: every noise level the network will see is a positive
 * finite fp32 value, the sigmas never increase, and every per-step scalar is finite. Settings
 * that pass the range checks can still break this in combination (a sigma_max beyond fp32,
 * a rho that overflows sigma^(1/rho), a sigma_min the VP schedule cannot invert), and a
 * plan that breaks it would fail the batch it joins. The message names the setting that
 * most likely caused it and the offending value, so the caller can answer 400.
 */
/* The end of the sigma range to blame: the one the failure points at (the start when
 * at_start), unless only the other one was given (NaN = the sampler's default). */
static const char *range_field(const edm_sampler_params *p, int at_start) {
    if (at_start) return isnan(p->sigma_max) && !isnan(p->sigma_min) ? "sigma_min" : "sigma_max";
    return isnan(p->sigma_min) && !isnan(p->sigma_max) ? "sigma_max" : "sigma_min";
}

static enum edm_status plan_check(const edm_plan *plan, const edm_plan_net *net, edm_error *err) {
    const edm_sampler_params *p = &plan->params;
    const int N = plan->num_steps;
    if (!net_sigma_ok(net, plan->sigma_hi))
        return edm_error_set_field(err, EDM_EINVAL, "sigma_max",
                                   "sigma_max = %g is more noise than the network can take in fp32",
                                   plan->sigma_hi);
    if (!(plan->sigma_lo >= FLT_MIN))
        return edm_error_set_field(err, EDM_EINVAL, "sigma_min",
                                   "sigma_min = %g is below the network's fp32 range (at least %g)",
                                   plan->sigma_lo, (double)FLT_MIN);
    for (int i = 0; i < N; i++) {
        const edm_plan_step *s = &plan->steps[i];
        const char *bad = NULL;
        double v = 0;
        if (!net_sigma_ok(net, s->sigma_hat)) bad = "noise level", v = s->sigma_hat;
        else if (s->heun && !net_sigma_ok(net, s->sigma_prime))
            bad = "noise level", v = s->sigma_prime;
        else if (!(isfinite(plan->sigma[i]) && plan->sigma[i] >= plan->sigma[i + 1]))
            bad = "sigma (not decreasing)", v = plan->sigma[i];
        else if (!(isfinite(s->t_hat) && isfinite(s->x_scale) && isfinite(s->noise_coef) &&
                   isfinite(s->s_hat) && s->s_hat != 0 && isfinite(s->h) && isfinite(s->alpha_h)))
            bad = "step coefficient", v = NAN;
        else if (p->ablation && !(isfinite(s->a_hat) && isfinite(s->b_hat)))
            bad = "ODE coefficient", v = NAN;
        else if (p->ablation && s->heun &&
                 !(isfinite(s->a_prime) && isfinite(s->b_prime) && isfinite(s->s_prime) &&
                   s->s_prime != 0))
            bad = "ODE coefficient", v = NAN;
        /* The churn noise (S_noise) and the carried x must stay finite as fp32 inputs. */
        const char *field = NULL;
        if (!bad &&
            !isfinite((float)(16 * (s->noise_coef + s->x_scale * plan->sigma[i]) / fabs(s->s_hat))))
            bad = "noise scale", v = s->noise_coef, field = "S_noise";
        if (!bad) continue;
        /* The EDM schedule interpolates sigma^(1/rho): a tiny rho overflows it. */
        if (!field)
            field = (!p->ablation || p->disc == EDM_DISC_EDM) &&
                            !(isfinite(pow(plan->sigma_hi, 1 / p->rho)) &&
                              pow(plan->sigma_lo, 1 / p->rho) > 0)
                        ? "rho"
                    : range_field(p, i == 0);
        return edm_error_set_field(err, EDM_EINVAL, field,
                                   "%s: these settings give step %d of %d an unusable %s (%g; "
                                   "sigma range [%g, %g], rho %g)",
                                   field, i, N, bad, v, plan->sigma_lo, plan->sigma_hi, p->rho);
    }
    if (!(isfinite(plan->x_init_scale) && plan->x_init_scale > 0))
        return edm_error_set_field(
            err, EDM_EINVAL, "sigma_max",
            "sigma_max: these settings give an unusable initial noise scale %g",
            plan->x_init_scale);
    return EDM_OK;
}

/*
 * A start from an image (edm.h, strength / sigma_start): the top of the schedule becomes
 * sigma_start, so the N steps run from there to sigma_min. strength s maps to the level at
 * fraction s of the way from sigma_min to sigma_max in sigma^(1/rho), the space in which the
 * EDM schedule spaces its steps evenly:
 *   sigma_start = (lo^(1/rho) + s (hi^(1/rho) - lo^(1/rho)))^rho
 * so strength 1 is sigma_max (the full schedule) and strength -> 0 tends to sigma_min.
 */
static enum edm_status plan_start(const edm_sampler_params *p, double lo, double *hi,
                                  edm_error *err) {
    if (!isnan(p->sigma_start)) {
        if (!(p->sigma_start > lo && p->sigma_start <= *hi))
            return edm_error_set_field(err, EDM_EINVAL, "sigma_start",
                                       "sigma_start must be in (%g, %g], the sigma range (got %g)",
                                       lo, *hi, p->sigma_start);
        *hi = p->sigma_start;
    } else if (!isnan(p->strength)) {
        const double a = pow(lo, 1 / p->rho), b = pow(*hi, 1 / p->rho);
        const double start = fmin(pow(a + p->strength * (b - a), p->rho), *hi);
        if (!(start > lo))
            return edm_error_set_field(err, EDM_EINVAL, "strength",
                                       "strength %g gives no noise above sigma_min = %g",
                                       p->strength, lo);
        *hi = start;
    }
    return EDM_OK;
}

enum edm_status edm_plan_new_custom(const edm_sampler_params *p, const edm_plan_net *net,
                                    edm_plan **out, edm_error *err) {
    *out = NULL;
    enum edm_status st = edm_sampler_params_validate(p, err);
    if (st != EDM_OK) return st;
    EDM_ASSERT(net->C > 0 && net->R > 0 && net->label_dim >= 0);

    const int N = p->num_steps;
    edm_plan *plan = calloc(1, sizeof *plan);
    if (!plan) return edm_error_set(err, EDM_ENOMEM, "out of memory for a sampler plan");
    plan->params = *p;
    plan->C = net->C;
    plan->R = net->R;
    plan->label_dim = net->label_dim;
    plan->num_steps = N;
    plan->nfe = edm_sampler_params_nfe(p);
    plan->sigma = calloc((size_t)N + 1, sizeof *plan->sigma);
    plan->t = calloc((size_t)N + 1, sizeof *plan->t);
    plan->s_level = calloc((size_t)N + 1, sizeof *plan->s_level);
    plan->steps = calloc((size_t)N, sizeof *plan->steps);
    if (!plan->sigma || !plan->t || !plan->s_level || !plan->steps) {
        st = edm_error_set(err, EDM_ENOMEM, "out of memory for a sampler plan");
        goto fail;
    }

    /* 1. The sigma range: the sampler's default where not given, clamped to the net's. */
    double lo, hi;
    if (!p->ablation) {
        lo = 0.002;
        hi = 80;
    } else {
        switch (p->disc) {
        case EDM_DISC_VP:
            lo = vp_sigma(19.9, 0.1, p->epsilon_s);
            hi = vp_sigma(19.9, 0.1, 1);
            break;
        case EDM_DISC_VE: lo = 0.02, hi = 100; break;
        case EDM_DISC_IDDPM: lo = 0.002, hi = 81; break;
        default: lo = 0.002, hi = 80; break;
        }
    }
    if (!isnan(p->sigma_min)) lo = p->sigma_min;
    if (!isnan(p->sigma_max)) hi = p->sigma_max;
    if (net->sigma_min > lo) lo = net->sigma_min;
    if (net->sigma_max < hi) hi = net->sigma_max;
    if (!(lo > 0 && lo < hi && isfinite(hi))) {
        st = edm_error_set_field(err, EDM_EINVAL, sigma_field(p),
                                 "sigma range [%g, %g] is empty after clamping to the network's "
                                 "range [%g, %g]",
                                 lo, hi, net->sigma_min, net->sigma_max);
        goto fail;
    }
    plan->sigma_lo = lo;
    plan->sigma_hi = hi;
    if ((st = plan_start(p, lo, &hi, err)) != EDM_OK) goto fail;
    plan->sigma_start = hi;

    /* 2. Re-derived VP betas (always computed, used by the vp discretization and schedule). */
    const double eps_s = p->epsilon_s;
    plan->vp_beta_d = 2 * (log(lo * lo + 1) / eps_s - log(hi * hi + 1)) / (eps_s - 1);
    plan->vp_beta_min = log(hi * hi + 1) - 0.5 * plan->vp_beta_d;

    edm_sched k = {EDM_SCHEDULE_LINEAR, EDM_SCALING_NONE, plan->vp_beta_d, plan->vp_beta_min};
    if (p->ablation) {
        k.schedule = p->schedule;
        k.scaling = p->scaling;
    }

    /* 3. Step noise levels -> t_i (plan->sigma holds sigma_steps for a moment). */
    if (!p->ablation) {
        const double a = pow(hi, 1 / p->rho), b = pow(lo, 1 / p->rho);
        for (int i = 0; i < N; i++)
            plan->t[i] = net_round(net, pow(a + (double)i / (N - 1) * (b - a), p->rho));
    } else {
        st = disc_sigmas(p, lo, hi, plan->vp_beta_d, plan->vp_beta_min, plan->sigma, err);
        if (st != EDM_OK) goto fail;
        for (int i = 0; i < N; i++) plan->t[i] = sched_sigma_inv(&k, net_round(net, plan->sigma[i]));
    }
    plan->t[N] = 0;
    for (int i = 0; i <= N; i++) {
        plan->sigma[i] = sched_sigma(&k, plan->t[i]);
        plan->s_level[i] = sched_s(&k, plan->t[i]);
    }
    plan->x_init_scale = plan->sigma[0] * sched_s(&k, plan->t[0]);

    /* 4. Per-step scalars. */
    const double gamma_max = fmin(p->S_churn / N, M_SQRT2 - 1);
    for (int i = 0; i < N; i++) {
        edm_plan_step *st_i = &plan->steps[i];
        const double t_cur = plan->t[i], t_next = plan->t[i + 1];
        const double sigma_cur = plan->sigma[i];
        const double gamma = (p->S_min <= sigma_cur && sigma_cur <= p->S_max) ? gamma_max : 0;
        st_i->t_cur = t_cur;
        st_i->t_next = t_next;
        if (!p->ablation) {
            /* Algorithm 2: t_hat = round(t + gamma t); x_hat = x + sqrt(t_hat^2 - t^2) S_noise eps */
            const double t_hat = net_round(net, t_cur + gamma * t_cur);
            st_i->t_hat = t_hat;
            st_i->x_scale = 1;
            st_i->noise_coef = sqrt(fmax(t_hat * t_hat - t_cur * t_cur, 0)) * p->S_noise;
            st_i->sigma_hat = t_hat;
            st_i->s_hat = 1;
            st_i->h = t_next - t_hat;
            st_i->alpha_h = st_i->h;
            st_i->t_prime = t_next;
            st_i->sigma_prime = t_next;
            st_i->s_prime = 1;
            st_i->heun = i < N - 1;
            /* a/b are unused: edm_sampler uses d = (x - D) / t directly */
            st_i->a_hat = st_i->b_hat = st_i->a_prime = st_i->b_prime = NAN;
        } else {
            const double t_hat = sched_sigma_inv(&k, net_round(net, sigma_cur + gamma * sigma_cur));
            const double sigma_hat = sched_sigma(&k, t_hat), s_hat = sched_s(&k, t_hat);
            st_i->t_hat = t_hat;
            st_i->x_scale = s_hat / sched_s(&k, t_cur);
            st_i->noise_coef =
                sqrt(fmax(sigma_hat * sigma_hat - sigma_cur * sigma_cur, 0)) * s_hat * p->S_noise;
            st_i->sigma_hat = sigma_hat;
            st_i->s_hat = s_hat;
            sched_ode_coefs(&k, t_hat, &st_i->a_hat, &st_i->b_hat);
            st_i->h = t_next - t_hat;
            st_i->alpha_h = p->alpha * st_i->h;
            st_i->t_prime = t_hat + p->alpha * st_i->h;
            st_i->heun = p->solver == EDM_SOLVER_HEUN && i < N - 1;
            if (st_i->heun) {
                st_i->sigma_prime = sched_sigma(&k, st_i->t_prime);
                st_i->s_prime = sched_s(&k, st_i->t_prime);
                sched_ode_coefs(&k, st_i->t_prime, &st_i->a_prime, &st_i->b_prime);
            } else {
                st_i->sigma_prime = st_i->s_prime = st_i->a_prime = st_i->b_prime = NAN;
            }
        }
    }
    plan->c_1 = 1 - 1 / (2 * p->alpha);
    plan->c_2 = 1 / (2 * p->alpha);
    if ((st = plan_check(plan, net, err)) != EDM_OK) goto fail;
    *out = plan;
    return edm_error_set(err, EDM_OK, NULL);

fail:
    edm_plan_free(plan);
    return st;
}

/* net.round_sigma through the model (the callback's context is the model). */
static double model_round_sigma(void *ctx, double sigma) {
    return edm_model_round_sigma((const edm_model *)ctx, sigma);
}

static int model_sigma_usable(void *ctx, double sigma) {
    return edm_model_sigma_usable((const edm_model *)ctx, sigma);
}

enum edm_status edm_plan_new(const edm_model *model, const edm_sampler_params *p, edm_plan **out,
                             edm_error *err) {
    const edm_config *cfg = edm_model_config(model);
    edm_plan_net net = {
        .sigma_min = edm_model_sigma_min(model),
        .sigma_max = edm_model_sigma_max(model),
        .round_sigma = model_round_sigma,
        .sigma_usable = model_sigma_usable,
        .round_ctx = (void *)model,
        .C = cfg->img_channels,
        .R = cfg->img_resolution,
        .label_dim = cfg->label_dim,
    };
    return edm_plan_new_custom(p, &net, out, err);
}

int edm_plan_num_steps(const edm_plan *plan) { return plan->num_steps; }
int edm_plan_nfe(const edm_plan *plan) { return plan->nfe; }

double edm_plan_sigma(const edm_plan *plan, int i) {
    EDM_ASSERT(i >= 0 && i <= plan->num_steps);
    return plan->sigma[i];
}
