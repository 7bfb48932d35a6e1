/*
 * sampler.c - one image's sampler as a state machine (edm.h "Samplers"; spec 3.1, 3.2).
 *
 * The reference samplers are loops that call the network once or twice per step. Here the
 * loop is turned inside out so that a scheduler can batch the network evaluations of many
 * images, each at its own step and with its own settings:
 *
 *   new:      x = latents * x_init_scale, then begin step 0
 *   begin i:  x_hat = x_scale * x + noise_coef * eps_i          (eps_i drawn on every step)
 *   stage 0:  input x_hat / s(t_hat) at sigma(t_hat); D -> d_cur;
 *             x_p = x_hat + alpha h d_cur (predictor); Euler or the last step: x = x_hat + h d_cur
 *   stage 1:  (Heun, i < N-1) input x_p / s(t_p) at sigma(t_p); D -> d_p;
 *             x = x_hat + h ((1 - 1/(2 alpha)) d_cur + 1/(2 alpha) d_p)
 *
 * edm_sampler (Algorithm 2) keeps its own form d = (x - D) / t and the 0.5 / 0.5 average, so
 * that it rounds exactly as the reference; the ablation sampler uses d = a x - b D with the
 * plan's a = sigma'/sigma + s'/s and b = sigma' s / sigma. The state is fp64 throughout; only
 * the network's input and output are fp32.
 *
 * Randomness is per image and per step (edm.h "Randomness"), so an image does not depend on
 * which other images share its batches.
 *
 * Starting from an image y (edm.h edm_sample_init): x = s_0 (y + sigma_0 n) instead of
 * s_0 sigma_0 n. Inpainting with a mask m (1 = repaint): before each network evaluation, at
 * level sigma with scale s, the input array becomes m x + (1 - m) s (y + sigma n_v), n_v the
 * known-region noise of visit v (the v-th step begun; v = i without resampling); the final x
 * becomes m x + (1 - m) y. RePaint resampling: after a step reaches a jump level L (edm.h),
 * x is renoised to level L - j, x' = (s_{L-j} / s_L) x + s_{L-j} sqrt(sigma_{L-j}^2 -
 * sigma_L^2) z, and steps L-j .. L-1 run again, resample_count - 1 times.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sampler.h"
#include "status.h"

struct edm_sample {
    const edm_plan *plan; /* borrowed */
    uint64_t seed;
    int class_label;      /* -1 for unconditional models */
    const float *noise;   /* borrowed [N][n], or NULL: drawn from the seed */
    size_t n;             /* C * R * R */
    int step;             /* completed steps i */
    int stage;            /* 0: D(x_hat) next; 1: D(x_p) next (Heun correction) */
    int nfe_done;
    edm_error failure;    /* status EDM_OK until the image fails (edm_sample_fail) */
    double *x, *x_hat, *d_cur, *x_p; /* [n] each, views of `buf` */
    float *eps;                      /* [n] this step's noise, view of `buf` */
    void *buf;                       /* owned: the arrays above */
    /* From an image (NULL otherwise), owned: y [n]; the mask [n] (per channel) and the
     * known-region noise n_v [n] of the current visit, when inpainting. */
    double *y, *mask;
    float *known_noise;
    int visit;            /* steps begun, revisits included (the known-noise counter) */
    int jump_level, jumps_done, jumps_total; /* RePaint: the current jump point's count */
    int nothing_to_repaint; /* the mask is 0 everywhere */
};

/* Inpainting: the known region of a (at level `level`'s noise sigma, scale scale) reset to
 * s (y + sigma n_v), blended by the mask. */
static void sample_reset_known(edm_sample *s, double *a, double sigma, double scale) {
    if (!s->mask) return;
    for (size_t k = 0; k < s->n; k++) {
        const double m = s->mask[k];
        a[k] = m * a[k] + (1 - m) * scale * (s->y[k] + sigma * (double)s->known_noise[k]);
    }
}

/* Draws eps_i and forms x_hat for step s->step (spec 3.1 / 3.2 step 7, first two bullets). */
static void sample_begin_step(edm_sample *s) {
    const edm_plan_step *st = &s->plan->steps[s->step];
    const size_t n = s->n;
    const float *eps = s->eps;
    if (s->noise)
        eps = s->noise + (size_t)s->step * n;
    else
        edm_rng_normal(s->seed, EDM_RNG_STEP_NOISE, (uint32_t)s->visit, s->eps, n);
    for (size_t k = 0; k < n; k++) s->x_hat[k] = st->x_scale * s->x[k] + st->noise_coef * eps[k];
    if (s->mask) {
        edm_rng_normal(s->seed, EDM_RNG_KNOWN_NOISE, (uint32_t)s->visit, s->known_noise, n);
        sample_reset_known(s, s->x_hat, st->sigma_hat, st->s_hat);
    }
    s->visit++;
}

/* RePaint: after reaching level L = s->step, jump back when L is a jump point with passes
 * left. Returns 1 when it jumped. */
static int sample_resample(edm_sample *s) {
    const edm_plan *plan = s->plan;
    const int j = plan->params.resample_jump, L = s->step;
    if (edm_sampler_resample_points(&plan->params) == 0 || L % j != 0 ||
        L >= plan->num_steps)
        return 0;
    if (s->jump_level != L) s->jump_level = L, s->jumps_done = 0;
    if (s->jumps_done >= plan->params.resample_count - 1) return 0;
    s->jumps_done++;
    const int to = L - j;
    const double sigma_from = plan->sigma[L], sigma_to = plan->sigma[to];
    const double ratio = plan->s_level[to] / plan->s_level[L];
    const double coef = plan->s_level[to] * sqrt(fmax(sigma_to * sigma_to - sigma_from * sigma_from, 0));
    edm_rng_normal(s->seed, EDM_RNG_RESAMPLE_NOISE, (uint32_t)s->jumps_total++, s->eps, s->n);
    for (size_t k = 0; k < s->n; k++) s->x[k] = ratio * s->x[k] + coef * (double)s->eps[k];
    s->step = to;
    return 1;
}

void edm_sample_free(edm_sample *s) {
    if (!s) return;
    free(s->buf);
    free(s->y);
    free(s->mask);
    free(s->known_noise);
    free(s);
}

/* Copies the init image and the mask (edm_sample_init), checking them. */
static enum edm_status sample_init_image(edm_sample *s, const edm_sample_init *init,
                                         edm_error *err) {
    const edm_sampler_params *p = &s->plan->params;
    const size_t n = s->n, plane = (size_t)s->plan->R * s->plan->R;
    if (!(init->variation_strength >= 0 && init->variation_strength <= 1))
        return edm_error_set_field(err, EDM_EINVAL, "variation_strength",
                                   "variation_strength must be in [0, 1] (got %g)",
                                   init->variation_strength);
    if (!init->init_image) {
        if (init->mask)
            return edm_error_set_field(err, EDM_EINVAL, "mask", "a mask needs an init image");
        if (!isnan(p->strength) || !isnan(p->sigma_start))
            return edm_error_set_field(err, EDM_EINVAL, isnan(p->strength) ? "sigma_start" : "strength",
                                       "%s needs an init image",
                                       isnan(p->strength) ? "sigma_start" : "strength");
        return EDM_OK;
    }
    s->y = malloc(n * sizeof *s->y);
    if (!s->y) return edm_error_set(err, EDM_ENOMEM, "out of memory for an init image");
    for (size_t k = 0; k < n; k++) {
        const float v = init->init_image[k];
        if (!(v >= -1 && v <= 1))
            return edm_error_set_field(err, EDM_EINVAL, "init_image",
                                       "init image value %g at %zu is outside [-1, 1]", (double)v, k);
        s->y[k] = v;
    }
    if (!init->mask) return EDM_OK;
    s->mask = malloc(n * sizeof *s->mask);
    s->known_noise = malloc(n * sizeof *s->known_noise);
    if (!s->mask || !s->known_noise)
        return edm_error_set(err, EDM_ENOMEM, "out of memory for a mask");
    s->nothing_to_repaint = 1;
    for (size_t k = 0; k < plane; k++) {
        const float m = init->mask[k];
        if (!(m >= 0 && m <= 1))
            return edm_error_set_field(err, EDM_EINVAL, "mask",
                                       "mask value %g at %zu is outside [0, 1]", (double)m, k);
        if (m > 0) s->nothing_to_repaint = 0;
        for (size_t c = 0; c < n / plane; c++) s->mask[c * plane + k] = m;
    }
    return EDM_OK;
}

void edm_latents_slerp(const float *a, const float *b, size_t n, double t, float *out) {
    double ab = 0, aa = 0, bb = 0;
    for (size_t k = 0; k < n; k++) {
        ab += (double)a[k] * b[k];
        aa += (double)a[k] * a[k];
        bb += (double)b[k] * b[k];
    }
    const double cos_w = aa > 0 && bb > 0 ? fmax(-1, fmin(1, ab / sqrt(aa * bb))) : 1;
    const double w = acos(cos_w), sin_w = sin(w);
    double ca = 1 - t, cb = t; /* nearly parallel: linear */
    if (sin_w > 1e-6) ca = sin((1 - t) * w) / sin_w, cb = sin(t * w) / sin_w;
    for (size_t k = 0; k < n; k++) out[k] = (float)(ca * a[k] + cb * b[k]);
}

enum edm_status edm_sample_new(const edm_plan *plan, const edm_sample_init *init, edm_sample **out,
                               edm_error *err) {
    *out = NULL;
    int class_label = -1;
    if (plan->label_dim > 0) {
        if (init->class_label >= plan->label_dim)
            return edm_error_set_field(err, EDM_EINVAL, "class_label",
                                       "class label %d out of range 0..%d", init->class_label,
                                       plan->label_dim - 1);
        class_label = init->class_label >= 0
                          ? init->class_label
                          : (int)edm_rng_uint(init->seed, EDM_RNG_LABEL, (uint32_t)plan->label_dim);
    }

    edm_sample *s = calloc(1, sizeof *s);
    if (!s) return edm_error_set(err, EDM_ENOMEM, "out of memory for a sample");
    const size_t n = (size_t)plan->C * plan->R * plan->R;
    s->buf = malloc(n * (4 * sizeof(double) + sizeof(float)));
    if (!s->buf) {
        free(s);
        return edm_error_set(err, EDM_ENOMEM, "out of memory for a sample (%zu values)", n);
    }
    s->plan = plan;
    s->seed = init->seed;
    s->class_label = class_label;
    s->noise = init->noise;
    s->n = n;
    s->x = s->buf;
    s->x_hat = s->x + n;
    s->d_cur = s->x_hat + n;
    s->x_p = s->d_cur + n;
    s->eps = (float *)(s->x_p + n);
    s->jump_level = -1;

    enum edm_status st = sample_init_image(s, init, err);
    if (st != EDM_OK) {
        edm_sample_free(s);
        return st;
    }
    const float *latents = init->latents;
    if (!latents) {
        edm_rng_normal(init->seed, EDM_RNG_LATENTS, 0, s->eps, n);
        latents = s->eps;
        if (init->variation_strength > 0) {
            /* x_hat is free until the first step: it holds the other seed's latents */
            float *other = (float *)s->x_hat;
            edm_rng_normal(init->variation_seed, EDM_RNG_LATENTS, 0, other, n);
            edm_latents_slerp(s->eps, other, n, init->variation_strength, s->eps);
        }
    }
    if (s->y) {
        const double s0 = plan->s_level[0], sigma0 = plan->sigma[0];
        for (size_t k = 0; k < n; k++) s->x[k] = s0 * (s->y[k] + sigma0 * (double)latents[k]);
    } else {
        for (size_t k = 0; k < n; k++) s->x[k] = (double)latents[k] * plan->x_init_scale;
    }
    if (s->mask && s->nothing_to_repaint) {
        memcpy(s->x, s->y, n * sizeof *s->x); /* finished: the input unchanged */
        s->step = plan->num_steps;
    } else {
        sample_begin_step(s);
    }
    *out = s;
    return edm_error_set(err, EDM_OK, NULL);
}

int edm_sample_pending(const edm_sample *s) {
    return s->failure.status == EDM_OK && s->step < s->plan->num_steps;
}

void edm_sample_fail(edm_sample *s, enum edm_status st, const char *fmt, ...) {
    if (s->failure.status != EDM_OK) return; /* the first failure is the one to report */
    s->failure.status = st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->failure.message, sizeof s->failure.message, fmt, ap);
    va_end(ap);
}

enum edm_status edm_sample_status(const edm_sample *s, edm_error *err) {
    if (err) *err = s->failure;
    return s->failure.status;
}

/* The array and the divisor s(t) of the next network input. */
static void sample_input(const edm_sample *s, const double **x, double *scale, double *sigma) {
    EDM_ASSERT(edm_sample_pending(s));
    const edm_plan_step *st = &s->plan->steps[s->step];
    if (s->stage == 0) {
        *x = s->x_hat, *scale = st->s_hat, *sigma = st->sigma_hat;
    } else {
        *x = s->x_p, *scale = st->s_prime, *sigma = st->sigma_prime;
    }
}

void edm_sample_next_input_f64(const edm_sample *s, double *x, double *sigma) {
    const double *src;
    double scale;
    sample_input(s, &src, &scale, sigma);
    for (size_t k = 0; k < s->n; k++) x[k] = src[k] / scale;
}

void edm_sample_next_input(const edm_sample *s, float *x, double *sigma) {
    const double *src;
    double scale;
    sample_input(s, &src, &scale, sigma);
    for (size_t k = 0; k < s->n; k++) x[k] = (float)(src[k] / scale);
}

/* Advances with D given either as fp32 (Df) or fp64 (Dd). */
static void sample_advance(edm_sample *s, const float *Df, const double *Dd) {
    EDM_ASSERT(edm_sample_pending(s));
    EDM_ASSERT((Df != NULL) != (Dd != NULL));
#define D_AT(k) (Df ? (double)Df[k] : Dd[k])
    const edm_plan *plan = s->plan;
    const edm_plan_step *st = &plan->steps[s->step];
    const int edm = !plan->params.ablation;
    const size_t n = s->n;
    double *x = s->x, *x_hat = s->x_hat, *d_cur = s->d_cur, *x_p = s->x_p;
    s->nfe_done++;

    if (s->stage == 0) {
        if (edm) {
            for (size_t k = 0; k < n; k++) {
                d_cur[k] = (x_hat[k] - D_AT(k)) / st->t_hat;
                x_p[k] = x_hat[k] + st->h * d_cur[k];
            }
        } else {
            for (size_t k = 0; k < n; k++) {
                d_cur[k] = st->a_hat * x_hat[k] - st->b_hat * D_AT(k);
                x_p[k] = x_hat[k] + st->alpha_h * d_cur[k];
            }
        }
        if (st->heun) {
            sample_reset_known(s, x_p, st->sigma_prime, st->s_prime);
            s->stage = 1;
            return;
        }
        if (edm)
            memcpy(x, x_p, n * sizeof *x); /* x_p is already x_hat + h d_cur */
        else
            for (size_t k = 0; k < n; k++) x[k] = x_hat[k] + st->h * d_cur[k];
    } else {
        if (edm) {
            for (size_t k = 0; k < n; k++) {
                double d_prime = (x_p[k] - D_AT(k)) / st->t_next;
                x[k] = x_hat[k] + st->h * (0.5 * d_cur[k] + 0.5 * d_prime);
            }
        } else {
            for (size_t k = 0; k < n; k++) {
                double d_prime = st->a_prime * x_p[k] - st->b_prime * D_AT(k);
                x[k] = x_hat[k] + st->h * (plan->c_1 * d_cur[k] + plan->c_2 * d_prime);
            }
        }
    }
#undef D_AT
    s->stage = 0;
    s->step++;
    sample_resample(s);
    if (edm_sample_pending(s)) sample_begin_step(s);
    else if (s->mask)
        for (size_t k = 0; k < n; k++) x[k] = s->mask[k] * x[k] + (1 - s->mask[k]) * s->y[k];
}

void edm_sample_advance(edm_sample *s, const float *denoised) { sample_advance(s, denoised, NULL); }
void edm_sample_advance_f64(edm_sample *s, const double *denoised) {
    sample_advance(s, NULL, denoised);
}

int edm_sample_class_label(const edm_sample *s) { return s->class_label; }
uint64_t edm_sample_seed(const edm_sample *s) { return s->seed; }
int edm_sample_step(const edm_sample *s) { return s->step; }
int edm_sample_nfe_done(const edm_sample *s) { return s->nfe_done; }
const double *edm_sample_x(const edm_sample *s) { return s->x; }
