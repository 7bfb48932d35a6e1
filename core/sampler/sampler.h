/*
 * sampler.h - internal view of the samplers (edm.h "Samplers"): the plan's layout, shared by
 * schedule.c (which builds plans) and sampler.c (which runs one image's state machine), and
 * the model-free entry points the unit tests use.
 *
 * A plan precomputes every scalar of every step (t_i, t_hat, sigma(t), s(t), the ODE
 * coefficients), so advancing an image is a handful of fp64 vector updates and images never
 * need the model or round_sigma again.
 */
#ifndef EDM_SAMPLER_H
#define EDM_SAMPLER_H

#include "edm.h"

/* Per-step scalars of step i (t_cur = t_i -> t_next = t_{i+1}), spec 3.1 / 3.2. */
typedef struct edm_plan_step {
    double t_cur, t_next, t_hat;
    /* Start of the step: x_hat = x_scale * x + noise_coef * eps_i. */
    double x_scale, noise_coef;
    /* First evaluation D(x_hat / s_hat; sigma_hat). */
    double sigma_hat, s_hat;
    /* Ablation: d = a_hat * x_hat - b_hat * D. (edm_sampler: d = (x_hat - D) / t_hat.) */
    double a_hat, b_hat;
    /* h = t_next - t_hat; ablation predictor x_p = x_hat + alpha_h * d at t_prime. */
    double h, alpha_h, t_prime;
    /* Second evaluation D(x_p / s_prime; sigma_prime), d_p = a_prime * x_p - b_prime * D. */
    double sigma_prime, s_prime, a_prime, b_prime;
    int heun; /* 1 when this step takes a second evaluation */
} edm_plan_step;

struct edm_plan {
    edm_sampler_params params; /* as given, validated */
    int C, R, label_dim;
    int num_steps;             /* N */
    int nfe;                   /* evaluations per image */
    double sigma_lo, sigma_hi; /* the sigma range after defaults and clamping */
    double sigma_start;        /* sigma_0: sigma_hi, or the start from an image (strength) */
    double *s_level;           /* [N+1] s(t_i): the scale of x at level i */
    double vp_beta_d, vp_beta_min; /* ablation: re-derived VP betas (spec 3.2 step 2) */
    double x_init_scale;       /* x = latents * x_init_scale: t_0 (edm), sigma(t_0) s(t_0) */
    double *sigma;             /* [N+1] sigma(t_i), sigma_N = 0 */
    double *t;                 /* [N+1] t_i, t_N = 0 */
    edm_plan_step *steps;      /* [N] */
    double c_1, c_2;           /* ablation Heun weights 1 - 1/(2 alpha), 1/(2 alpha) */
};

/* The network facts a plan needs, without a model (unit tests; edm_plan_new fills it from
 * the model). round_sigma NULL means identity; sigma_usable NULL means any noise level that
 * is positive and finite in fp32. Both get round_ctx. */
typedef struct edm_plan_net {
    double sigma_min, sigma_max; /* net.sigma_min / net.sigma_max (may be 0 / +inf) */
    double (*round_sigma)(void *ctx, double sigma);
    int (*sigma_usable)(void *ctx, double sigma);
    void *round_ctx;
    int C, R, label_dim;
} edm_plan_net;

/* Builds a plan for `net` (see edm_plan_new). Returns a new plan (free with edm_plan_free). */
enum edm_status edm_plan_new_custom(const edm_sampler_params *p, const edm_plan_net *net,
                                    edm_plan **out, edm_error *err);

/* The fp64 ablation sampler's own iDDPM table u[0..M] (spec 3.2 step 3): fp64 recurrence with
 * alpha_bar evaluated in fp32, as the reference does. u must hold M+1 values. */
void edm_plan_iddpm_u(int M, double C_1, double C_2, double *u);

/* The number of RePaint jump points (levels j, 2j, .. < N), 0 when resampling is off. */
int edm_sampler_resample_points(const edm_sampler_params *p);

/* fp64 versions of edm_sample_next_input / edm_sample_advance: the state machine itself.
 * The public functions convert to and from fp32 around these (the network is fp32). */
void edm_sample_next_input_f64(const edm_sample *s, double *x, double *sigma);
void edm_sample_advance_f64(edm_sample *s, const double *denoised);

/* Marks the image failed (it is no longer pending; edm_sample_status reports the first
 * failure). For the denoiser, when this image's own network input or output is unusable. */
void edm_sample_fail(edm_sample *s, enum edm_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif /* EDM_SAMPLER_H */
