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
 */
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
};

/* Draws eps_i and forms x_hat for step s->step (spec 3.1 / 3.2 step 7, first two bullets). */
static void sample_begin_step(edm_sample *s) {
    const edm_plan_step *st = &s->plan->steps[s->step];
    const size_t n = s->n;
    const float *eps = s->eps;
    if (s->noise)
        eps = s->noise + (size_t)s->step * n;
    else
        edm_rng_normal(s->seed, EDM_RNG_STEP_NOISE, (uint32_t)s->step, s->eps, n);
    for (size_t k = 0; k < n; k++) s->x_hat[k] = st->x_scale * s->x[k] + st->noise_coef * eps[k];
}

void edm_sample_free(edm_sample *s) {
    if (!s) return;
    free(s->buf);
    free(s);
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

    const float *latents = init->latents;
    if (!latents) {
        edm_rng_normal(init->seed, EDM_RNG_LATENTS, 0, s->eps, n);
        latents = s->eps;
    }
    for (size_t k = 0; k < n; k++) s->x[k] = (double)latents[k] * plan->x_init_scale;
    sample_begin_step(s);
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
    if (edm_sample_pending(s)) sample_begin_step(s);
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
