/*
 * test_sampler.c - the samplers (core/sampler/: schedule.c, sampler.c, sampler_params.c)
 * without a network.
 *
 * The denoiser is analytic: for data ~ N(0, s^2 I), D(x; sigma) = s^2 / (s^2 + sigma^2) x
 * exactly, and the probability-flow ODE dx/dsigma = (x - D)/sigma has the closed form
 *     x(sigma) = x(sigma_0) sqrt((s^2 + sigma^2) / (s^2 + sigma_0^2)),
 * (with scaling s(t): x(t) = s(t) x~(sigma(t))). This checks:
 *   - the default 18-step EDM schedule against spec 3.1, NFE counts;
 *   - full trajectories against the official generate.py samplers run with a fake net
 *     (reference vectors below);
 *   - observed convergence orders (Euler ~1, Heun ~2) for edm, vp and ve settings;
 *   - that stochastic sampling keeps the N(0, s^2 + sigma^2) marginal;
 *   - per-seed randomness that does not depend on the other images;
 *   - parameter validation, one bad field at a time;
 *   - the parameter table: names, defaults, ranges, text round trips, a plan's description;
 *   - that EDM_ASSERT stays on (a caller's bug aborts with file, line and condition).
 */
#include <float.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "edm.h"
#include "sampler/sampler.h"

#define SD 0.5 /* data standard deviation of the analytic denoiser */

static void analytic_D(const double *x, double sigma, double *out, size_t n) {
    for (size_t k = 0; k < n; k++) out[k] = x[k] * (SD * SD / (SD * SD + sigma * sigma));
}

static edm_plan_net make_net(double lo, double hi, int C, int R, int label_dim) {
    edm_plan_net net = {.sigma_min = lo, .sigma_max = hi, .round_sigma = NULL, .round_ctx = NULL,
                        .C = C, .R = R, .label_dim = label_dim};
    return net;
}

static edm_plan *plan_or_die(const edm_sampler_params *p, const edm_plan_net *net) {
    edm_plan *plan = NULL;
    edm_error err;
    enum edm_status st = edm_plan_new_custom(p, net, &plan, &err);
    if (st != EDM_OK) {
        fprintf(stderr, "plan: %s\n", err.message);
        abort();
    }
    return plan;
}

static double rel_diff(double a, double b) {
    double den = fabs(b) > 1e-300 ? fabs(b) : 1e-300;
    return fabs(a - b) / den;
}

/* ---- schedule and NFE ------------------------------------------------------------------ */

static void test_default_schedule(void) {
    static const double spec[19] = {80,        57.58598,  40.78557,  28.37458,  19.35245,
                                    12.91008,  8.40094,   5.31519,   3.25682,   1.92334,
                                    1.08817,   0.585348,  0.296442,  0.139516,  0.0599473,
                                    0.0229345, 0.00752802, 0.002,    0};
    edm_sampler_params p;
    edm_sampler_params_default(&p);
    edm_plan_net net = make_net(0, INFINITY, 3, 8, 0);
    edm_plan *plan = plan_or_die(&p, &net);
    CHECK(edm_plan_num_steps(plan) == 18, "steps %d", edm_plan_num_steps(plan));
    CHECK(edm_plan_nfe(plan) == 35, "nfe %d", edm_plan_nfe(plan));
    double worst = 0;
    for (int i = 0; i < 18; i++) worst = fmax(worst, rel_diff(edm_plan_sigma(plan, i), spec[i]));
    CHECK(worst < 1e-5, "default schedule differs from spec 3.1 by %g (relative)", worst);
    CHECK(edm_plan_sigma(plan, 18) == 0, "sigma_N = %g", edm_plan_sigma(plan, 18));
    CHECK(edm_plan_sigma(plan, 0) == 80 && fabs(edm_plan_sigma(plan, 17) - 0.002) < 1e-15,
          "end points %.17g %.17g", edm_plan_sigma(plan, 0), edm_plan_sigma(plan, 17));
    edm_plan_free(plan);

    /* The net's range clamps the sampler's: a VE net (0.02, 100) raises sigma_min. */
    net = make_net(0.02, 100, 3, 8, 0);
    plan = plan_or_die(&p, &net);
    CHECK(fabs(edm_plan_sigma(plan, 17) - 0.02) < 1e-15, "clamped sigma_min %.17g",
          edm_plan_sigma(plan, 17));
    edm_plan_free(plan);
}

/* Runs one sample through the f64 state machine with the analytic denoiser; returns the NFE
 * and checks that the input sigmas follow the plan when there is no churn. */
static int run_count_nfe(const edm_sampler_params *p) {
    edm_plan_net net = make_net(0, INFINITY, 1, 2, 0);
    edm_plan *plan = plan_or_die(p, &net);
    edm_sample_init init = {.seed = 1, .class_label = -1, .latents = NULL, .noise = NULL};
    edm_sample *s = NULL;
    edm_error err;
    CHECK(edm_sample_new(plan, &init, &s, &err) == EDM_OK, "%s", err.message);
    double x[4], D[4], sigma;
    int calls = 0, sigmas_ok = 1;
    while (edm_sample_pending(s)) {
        int i = edm_sample_step(s), stage0 = edm_sample_nfe_done(s) == calls;
        edm_sample_next_input_f64(s, x, &sigma);
        /* no churn: every evaluation is at a plan sigma: sigma_i first, sigma_{i+1} for Heun's
         * correction with alpha = 1 */
        if (stage0 && p->alpha == 1 && sigma != edm_plan_sigma(plan, i) &&
            sigma != edm_plan_sigma(plan, i + 1))
            sigmas_ok = 0;
        analytic_D(x, sigma, D, 4);
        edm_sample_advance_f64(s, D);
        calls++;
    }
    CHECK(sigmas_ok, "evaluations at the plan's sigmas");
    CHECK(edm_sample_nfe_done(s) == calls, "nfe_done %d calls %d", edm_sample_nfe_done(s), calls);
    CHECK(edm_sample_step(s) == p->num_steps, "steps done %d", edm_sample_step(s));
    CHECK(edm_plan_nfe(plan) == calls, "plan nfe %d, counted %d", edm_plan_nfe(plan), calls);
    edm_sample_free(s);
    edm_plan_free(plan);
    return calls;
}

static void test_nfe(void) {
    edm_sampler_params p;
    edm_sampler_params_default(&p);
    static const int steps[] = {2, 18, 40, 256};
    static const int heun_nfe[] = {3, 35, 79, 511};
    for (int k = 0; k < 4; k++) {
        p.num_steps = steps[k];
        p.ablation = 0;
        CHECK(edm_sampler_params_nfe(&p) == heun_nfe[k], "edm nfe for %d steps", steps[k]);
        CHECK(run_count_nfe(&p) == heun_nfe[k], "edm counted nfe for %d steps", steps[k]);
        p.ablation = 1;
        p.solver = EDM_SOLVER_EULER;
        CHECK(edm_sampler_params_nfe(&p) == steps[k], "euler nfe for %d steps", steps[k]);
        CHECK(run_count_nfe(&p) == steps[k], "euler counted nfe for %d steps", steps[k]);
        p.solver = EDM_SOLVER_HEUN;
        p.alpha = 0.5; /* alpha does not change the NFE */
        CHECK(run_count_nfe(&p) == heun_nfe[k], "heun counted nfe for %d steps", steps[k]);
        p.alpha = 1;
    }
}

/* ---- reference trajectories from the official code -------------------------------------- */

/*
 * Produced by running the official generate.py (NVlabs/edm 008a4e5) samplers with a fake net
 * whose forward is the analytic denoiser in fp64 (s = 0.5) and records each sigma it is called
 * with; latents (1,1,2,2) = [0.5, -1.25, 2, -0.75] in fp32; randn_like returns, on its i-th
 * call, noise[k] = (((4 i + k) * 37) % 17 - 8) / 8. Command (with a stub tqdm module on the path):
 *
 *   class Net:
 *       def __init__(self, lo, hi): self.sigma_min, self.sigma_max, self.calls = lo, hi, []
 *       def round_sigma(self, s): return torch.as_tensor(s)
 *       def __call__(self, x, sigma, labels=None):
 *           sigma = torch.as_tensor(sigma, dtype=torch.float64); self.calls.append(float(sigma))
 *           return x.to(torch.float64) * (0.25 / (0.25 + sigma**2))
 *   x = generate.<sampler>(Net(lo, hi), latents, None, randn_like=randn_like, num_steps=6, **kw)
 *   print x.flatten() and net.calls with '%.17g'
 */
typedef struct ref_case {
    const char *name;
    double net_lo, net_hi;
    int ablation;
    enum edm_solver solver;
    enum edm_disc disc;
    enum edm_schedule schedule;
    enum edm_scaling scaling;
    double alpha, S_churn, S_min, S_max, S_noise;
    double x[4];
    int ncalls;
    double calls[11];
    double tol_x, tol_sigma;
} ref_case;

static const ref_case ref_cases[] = {
    {"edm_sampler defaults", 0, INFINITY, 0, EDM_SOLVER_HEUN, EDM_DISC_EDM, EDM_SCHEDULE_LINEAR,
     EDM_SCALING_NONE, 1, 0, 0, INFINITY, 1,
     {0.4265128009374371, -1.0662820023435902, 1.7060512037497484, -0.63976920140615645},
     11,
     {80, 24.408341786580095, 24.408341786580095, 5.8389476310118864, 5.8389476310118864,
      0.96541692633189546, 0.96541692633189546, 0.085087202689390212, 0.085087202689390212,
      0.0020000000000000031, 0.0020000000000000031},
     1e-13, 1e-14},
    {"edm_sampler S_churn=30 S_min=0.01 S_max=10 S_noise=1.007", 0, INFINITY, 0,
     EDM_SOLVER_HEUN, EDM_DISC_EDM, EDM_SCHEDULE_LINEAR, EDM_SCALING_NONE, 1, 30, 0.01, 10,
     1.007,
     {-0.087772366153865383, -0.9173908526484017, 1.6225592386153052, 0.33153542048092188},
     11,
     {80, 24.408341786580095, 24.408341786580095, 5.8389476310118864, 8.2575189297632647,
      0.96541692633189546, 1.3653057105631139, 0.085087202689390212, 0.12033147602772414,
      0.0020000000000000031, 0.0020000000000000031},
     1e-13, 1e-14},
    {"ablation euler/vp/vp/vp, VP net range", 0.0009765625, 152.16697692871094, 1,
     EDM_SOLVER_EULER, EDM_DISC_VP, EDM_SCHEDULE_VP, EDM_SCALING_VP, 1, 0, 0, INFINITY, 1,
     {0.25335391206884694, -0.63338478017211741, 1.0134156482753878, -0.38003086810327041},
     6,
     {152.16697028394634, 25.148852404503927, 6.1116625060472884, 2.0344293401724722,
      0.72380676668131061, 0.010485992786706403},
     1e-12, 1e-13},
    {"ablation heun/ve/ve/none S_churn=10, VE net range", 0.02, 100, 1, EDM_SOLVER_HEUN,
     EDM_DISC_VE, EDM_SCHEDULE_VE, EDM_SCALING_NONE, 1, 10, 0, INFINITY, 1,
     {3177.45486651482, 11746.179810709575, -10976.926905561097, 3779.7829200512851},
     11,
     {141.42135623730951, 18.205642030260822, 25.746665870904476, 3.3144540173399917,
      4.6873458231841978, 0.60341763365451639, 0.85336140128929694, 0.10985605433061195,
      0.15535992194314668, 0.020000000000000025, 0.028284271247461905},
     1e-11, 1e-13},
    /* iddpm: the reference's fp32 sine cannot be reproduced bit for bit (spec 3.2) */
    {"ablation heun/iddpm/linear/none alpha=0.5", 0, INFINITY, 1, EDM_SOLVER_HEUN,
     EDM_DISC_IDDPM, EDM_SCHEDULE_LINEAR, EDM_SCALING_NONE, 0.5, 0, 0, INFINITY, 1,
     {0.24524918504606125, -0.61312296261515398, 0.98099674018424499, -0.36787377756909029},
     11,
     {80.203671387116742, 41.60538675324883, 3.0071021193809164, 2.1898590125177697,
      1.3726159056546228, 1.0516447299067297, 0.73067355415883672, 0.53233176194703913,
      0.33398996973524148, 0.17020621965821997, 0.0064224695811984575},
     1e-4, 1e-4},
    {"ablation heun/edm/vp/vp S_churn=5 S_noise=1.01", 0, INFINITY, 1, EDM_SOLVER_HEUN,
     EDM_DISC_EDM, EDM_SCHEDULE_VP, EDM_SCALING_VP, 1, 5, 0, INFINITY, 1.01,
     {-0.26129049953579903, -0.2589642260333096, 0.20039295234794599, 0.2337908157658472},
     11,
     {113.13708498984768, 24.408341786580078, 34.518607989619468, 5.8389476310118864,
      8.2575189297632665, 0.96541692633189558, 1.3653057105631135, 0.085087202689390781,
      0.12033147602772493, 0.0019999999999732445, 0.0028284271247083523},
     1e-12, 1e-12},
};

static void test_reference_trajectories(void) {
    static const float latents[4] = {0.5f, -1.25f, 2.0f, -0.75f};
    float noise[6 * 4];
    for (int i = 0; i < 6; i++)
        for (int k = 0; k < 4; k++) noise[i * 4 + k] = (float)(((i * 4 + k) * 37 % 17 - 8) / 8.0);
    for (size_t c = 0; c < sizeof ref_cases / sizeof ref_cases[0]; c++) {
        const ref_case *rc = &ref_cases[c];
        edm_sampler_params p;
        edm_sampler_params_default(&p);
        p.num_steps = 6;
        p.ablation = rc->ablation;
        p.solver = rc->solver;
        p.disc = rc->disc;
        p.schedule = rc->schedule;
        p.scaling = rc->scaling;
        p.alpha = rc->alpha;
        p.S_churn = rc->S_churn;
        p.S_min = rc->S_min;
        p.S_max = rc->S_max;
        p.S_noise = rc->S_noise;
        edm_plan_net net = make_net(rc->net_lo, rc->net_hi, 1, 2, 0);
        edm_plan *plan = plan_or_die(&p, &net);
        edm_sample_init init = {.seed = 5, .class_label = -1, .latents = latents, .noise = noise};
        edm_sample *s = NULL;
        edm_error err;
        CHECK(edm_sample_new(plan, &init, &s, &err) == EDM_OK, "%s", err.message);
        double x[4], D[4], sigma, worst_sigma = 0;
        int calls = 0;
        while (edm_sample_pending(s)) {
            edm_sample_next_input_f64(s, x, &sigma);
            if (calls < rc->ncalls) worst_sigma = fmax(worst_sigma, rel_diff(sigma, rc->calls[calls]));
            calls++;
            analytic_D(x, sigma, D, 4);
            edm_sample_advance_f64(s, D);
        }
        const double *xf = edm_sample_x(s);
        double num = 0, den = 0;
        for (int k = 0; k < 4; k++) {
            num = fmax(num, fabs(xf[k] - rc->x[k]));
            den = fmax(den, fabs(rc->x[k]));
        }
        CHECK(calls == rc->ncalls, "%s: %d evaluations, reference %d", rc->name, calls, rc->ncalls);
        CHECK(worst_sigma <= rc->tol_sigma, "%s: sigmas differ by %g (relative)", rc->name,
              worst_sigma);
        CHECK(num / den <= rc->tol_x, "%s: final x differs by %g (relative)", rc->name, num / den);
        edm_sample_free(s);
        edm_plan_free(plan);
    }
}

/* The ablation sampler's own iDDPM table. Ours differs from the reference's (torch's fp32
 * sine is not libm's sinf) by about 2e-7 relative over most of the table and up to 2.3e-4
 * near j = 995, where the recurrence subtracts nearly equal numbers (spec 3.2). */
static void test_iddpm_table(void) {
    double u[1001];
    edm_plan_iddpm_u(1000, 0.001, 0.008, u);
    /* spec 2.3 (fp32 table of the network; ours is fp64 with fp32 alpha_bar) */
    CHECK(rel_diff(u[0], 20291.14453125) < 1e-4, "u[0] = %.9g", u[0]);
    CHECK(rel_diff(u[1], 641.66) < 1e-4, "u[1] = %.9g", u[1]);
    CHECK(rel_diff(u[999], 0.006422337144613266) < 1e-4, "u[999] = %.9g", u[999]);
    CHECK(u[1000] == 0, "u[1000] = %g", u[1000]);
    int monotone = 1;
    for (int j = 0; j < 1000; j++) monotone &= u[j] > u[j + 1];
    CHECK(monotone, "u decreases with the index");
}

/* ---- convergence orders ---------------------------------------------------------------- */

/* Error at t_{N-1} (the last step to sigma = 0 is Euler and its size does not shrink with N,
 * so it is left out) against the closed-form ODE solution; relative to max |x|. */
static double ode_error(edm_sampler_params p, int N) {
    p.num_steps = N;
    enum { R = 4, n = R * R };
    edm_plan_net net = make_net(0, INFINITY, 1, R, 0);
    edm_plan *plan = plan_or_die(&p, &net);
    float latents[n];
    for (int k = 0; k < n; k++) latents[k] = (float)(0.25 * (k - 7.5));
    edm_sample_init init = {.seed = 3, .class_label = -1, .latents = latents, .noise = NULL};
    edm_sample *s = NULL;
    edm_error err;
    if (edm_sample_new(plan, &init, &s, &err) != EDM_OK) abort();
    double x[n], D[n], sigma;
    while (edm_sample_step(s) < N - 1) {
        edm_sample_next_input_f64(s, x, &sigma);
        analytic_D(x, sigma, D, n);
        edm_sample_advance_f64(s, D);
    }
    const double sigma0 = edm_plan_sigma(plan, 0), sigma1 = edm_plan_sigma(plan, N - 1);
    const double scale1 = p.ablation && p.scaling == EDM_SCALING_VP ? 1 / sqrt(1 + sigma1 * sigma1) : 1;
    const double *xs = edm_sample_x(s);
    double num = 0, den = 0;
    for (int k = 0; k < n; k++) {
        double exact = scale1 * latents[k] * sigma0 *
                       sqrt((SD * SD + sigma1 * sigma1) / (SD * SD + sigma0 * sigma0));
        num = fmax(num, fabs(xs[k] - exact));
        den = fmax(den, fabs(exact));
    }
    edm_sample_free(s);
    edm_plan_free(plan);
    return num / den;
}

/* Asserts observed orders within 15% of `expect`, or (at_least) no lower than 85% of it. */
static void check_order(const char *name, edm_sampler_params p, int N0, double expect,
                        int at_least) {
    double e[4];
    for (int j = 0; j < 4; j++) e[j] = ode_error(p, N0 << j);
    printf("%-34s", name);
    for (int j = 0; j < 4; j++) printf(" e(%d)=%.3e", N0 << j, e[j]);
    double worst = 0;
    printf("  orders");
    for (int j = 0; j < 3; j++) {
        double order = log2(e[j] / e[j + 1]);
        printf(" %.3f", order);
        worst = fmax(worst, at_least ? expect - order : fabs(order - expect));
    }
    printf("\n");
    CHECK(worst < 0.15 * expect, "%s: observed orders stray from %g by %g", name, expect, worst);
}

static void test_convergence(void) {
    edm_sampler_params p;
    edm_sampler_params_default(&p);
    check_order("edm_sampler (heun, edm)", p, 32, 2, 0);
    p.ablation = 1;
    p.solver = EDM_SOLVER_EULER;
    check_order("ablation euler edm/linear/none", p, 16, 1, 0);
    p.solver = EDM_SOLVER_HEUN;
    check_order("ablation heun edm/linear/none", p, 32, 2, 0);
    p.alpha = 0.5;
    /* alpha = 1/2 is the explicit midpoint rule; on this linear ODE and the rho = 7 grid its
     * leading error term happens to cancel (observed order 3), so only a lower bound. */
    check_order("ablation heun alpha=0.5 edm", p, 32, 2, 1);
    p.alpha = 1;
    p.disc = EDM_DISC_VP, p.schedule = EDM_SCHEDULE_VP, p.scaling = EDM_SCALING_VP;
    check_order("ablation heun vp/vp/vp", p, 16, 2, 0);
    p.alpha = 0.5;
    check_order("ablation heun alpha=0.5 vp/vp/vp", p, 16, 2, 0);
    p.alpha = 1;
    p.solver = EDM_SOLVER_EULER;
    check_order("ablation euler vp/vp/vp", p, 32, 1, 0);
    p.disc = EDM_DISC_VE, p.schedule = EDM_SCHEDULE_VE, p.scaling = EDM_SCALING_NONE;
    check_order("ablation euler ve/ve/none", p, 64, 1, 0);
    p.solver = EDM_SOLVER_HEUN;
    check_order("ablation heun ve/ve/none", p, 64, 2, 0);
}

/* ---- stochastic sampling keeps the marginal ------------------------------------------------ */

/* With the exact denoiser, x_i ~ N(0, s^2 + t_i^2) at every step up to discretization error:
 * churn adds exactly the variance that raises t_i to t_hat, and the ODE step maps
 * N(0, s^2 + t_hat^2) to N(0, s^2 + t_{i+1}^2). Since D is linear, each step is x <- a_i x_hat
 * and the sampler's own variance follows v <- a_i^2 (v + t_hat^2 - t_i^2) exactly; that
 * recursion (written here from Algorithm 2, independently of the plan) is the expectation,
 * and it is itself within 6% of s^2 + t^2 at 64 steps. Checked on 8 x 4096 pixels (the
 * standard error of a variance estimate is about 0.8%). */
static void test_stochastic_marginal(void) {
    enum { R = 64, n = R * R, IMAGES = 8, N = 64 };
    const double S_churn = 40, S_min = 0.05, S_max = 50;
    edm_sampler_params p;
    edm_sampler_params_default(&p);
    p.num_steps = N;
    p.S_churn = S_churn, p.S_min = S_min, p.S_max = S_max, p.S_noise = 1;
    edm_plan_net net = make_net(0, INFINITY, 1, R, 0);
    edm_plan *plan = plan_or_die(&p, &net);
    edm_sample *samples[IMAGES];
    edm_error err;
    for (int m = 0; m < IMAGES; m++) {
        edm_sample_init init = {.seed = 100 + m, .class_label = -1, .latents = NULL, .noise = NULL};
        CHECK(edm_sample_new(plan, &init, &samples[m], &err) == EDM_OK, "%s", err.message);
    }
    double v_expect = 80.0 * 80.0, worst_marginal = 0;
    static double x[n], D[n];
    double worst = 0, worst_mean = 0;
    int worst_step = -1, churned = 0;
    for (int i = 0; i <= N; i++) {
        /* every sample is at the start of step i: check Var(x) against s^2 + t_i^2 */
        double sum = 0, sum2 = 0;
        for (int m = 0; m < IMAGES; m++) {
            const double *xs = edm_sample_x(samples[m]);
            for (int k = 0; k < n; k++) sum += xs[k], sum2 += xs[k] * xs[k];
        }
        const double cnt = (double)n * IMAGES, t = edm_plan_sigma(plan, i);
        const double var = sum2 / cnt - (sum / cnt) * (sum / cnt);
        if (fabs(var / v_expect - 1) > worst) worst = fabs(var / v_expect - 1), worst_step = i;
        worst_mean = fmax(worst_mean, fabs(sum / cnt) / sqrt(v_expect));
        if (i > 0 && i < N)
            worst_marginal = fmax(worst_marginal, fabs(v_expect / (SD * SD + t * t) - 1));
        if (i == N) break;
        /* the expected variance after step i (Algorithm 2 with D(x) = x s^2/(s^2+sigma^2)) */
        const double t_next = edm_plan_sigma(plan, i + 1);
        const double gamma = (S_min <= t && t <= S_max) ? fmin(S_churn / N, sqrt(2) - 1) : 0;
        const double t_hat = t + gamma * t;
        const double d_cur = (1 - SD * SD / (SD * SD + t_hat * t_hat)) / t_hat; /* d = d_cur x */
        double a = 1 + (t_next - t_hat) * d_cur;
        if (i < N - 1) {
            const double d_prime = (1 - SD * SD / (SD * SD + t_next * t_next)) / t_next * a;
            a = 1 + (t_next - t_hat) * (0.5 * d_cur + 0.5 * d_prime);
        }
        v_expect = a * a * (v_expect + t_hat * t_hat - t * t);
        for (int m = 0; m < IMAGES; m++) {
            while (edm_sample_pending(samples[m]) && edm_sample_step(samples[m]) == i) {
                double sigma;
                edm_sample_next_input_f64(samples[m], x, &sigma);
                if (sigma > edm_plan_sigma(plan, i) * (1 + 1e-12)) churned++;
                analytic_D(x, sigma, D, n);
                edm_sample_advance_f64(samples[m], D);
            }
        }
    }
    printf("stochastic (S_churn=40, %d steps): worst |Var/expected - 1| = %.4f at step %d, "
           "worst |mean|/std = %.4f, expected vs s^2+t^2 within %.4f\n",
           N, worst, worst_step, worst_mean, worst_marginal);
    CHECK(churned > 0, "S_churn raised no noise level");
    CHECK(worst < 0.03, "variance drifts from the expected by %.3f at step %d", worst, worst_step);
    CHECK(worst_marginal < 0.07, "the marginal drifts from s^2 + t^2 by %.3f", worst_marginal);
    CHECK(worst_mean < 0.03, "mean drifts by %.3f std", worst_mean);
    for (int m = 0; m < IMAGES; m++) edm_sample_free(samples[m]);
    edm_plan_free(plan);
}

/* ---- randomness per seed ------------------------------------------------------------------ */

static void run_to_end(edm_sample *s, size_t n) {
    double *x = malloc(n * sizeof *x), *D = malloc(n * sizeof *D), sigma;
    while (edm_sample_pending(s)) {
        edm_sample_next_input_f64(s, x, &sigma);
        analytic_D(x, sigma, D, n);
        edm_sample_advance_f64(s, D);
    }
    free(x);
    free(D);
}

static void test_seed_independence(void) {
    enum { C = 3, R = 8, n = C * R * R, N = 10 };
    edm_sampler_params p;
    edm_sampler_params_default(&p);
    p.num_steps = N;
    p.S_churn = 20; /* step noise matters */
    edm_plan_net net = make_net(0, INFINITY, C, R, 10);
    edm_plan *plan = plan_or_die(&p, &net);
    edm_error err;

    /* x starts as latents(seed) * t_0 */
    float lat[n];
    edm_rng_normal(42, EDM_RNG_LATENTS, 0, lat, n);
    edm_sample_init init = {.seed = 42, .class_label = -1, .latents = NULL, .noise = NULL};
    edm_sample *alone = NULL;
    CHECK(edm_sample_new(plan, &init, &alone, &err) == EDM_OK, "%s", err.message);
    int same = 1;
    for (int k = 0; k < n; k++) same &= edm_sample_x(alone)[k] == (double)lat[k] * 80;
    CHECK(same, "initial x is latents(seed) * sigma_max");
    CHECK(edm_sample_seed(alone) == 42, "seed");
    CHECK(edm_sample_class_label(alone) == (int)edm_rng_uint(42, EDM_RNG_LABEL, 10),
          "class label drawn from the seed: %d", edm_sample_class_label(alone));
    run_to_end(alone, n);

    /* the same seed among others, advanced in an interleaved order, gives the same image */
    edm_sample *group[3];
    const uint64_t seeds[3] = {7, 42, 1u << 20};
    for (int m = 0; m < 3; m++) {
        edm_sample_init gi = {.seed = seeds[m], .class_label = -1, .latents = NULL, .noise = NULL};
        CHECK(edm_sample_new(plan, &gi, &group[m], &err) == EDM_OK, "%s", err.message);
    }
    double x[n], D[n], sigma;
    for (int round = 0; round < 3 * edm_plan_nfe(plan); round++) {
        edm_sample *s = group[(round * 7 + round / 5) % 3]; /* an irregular order */
        if (!edm_sample_pending(s)) continue;
        edm_sample_next_input_f64(s, x, &sigma);
        analytic_D(x, sigma, D, n);
        edm_sample_advance_f64(s, D);
    }
    for (int m = 0; m < 3; m++) run_to_end(group[m], n);
    CHECK(memcmp(edm_sample_x(alone), edm_sample_x(group[1]), n * sizeof(double)) == 0,
          "seed 42 alone and in a group differ");
    CHECK(memcmp(edm_sample_x(group[0]), edm_sample_x(group[1]), n * sizeof(double)) != 0,
          "different seeds gave the same image");

    /* explicit noise equal to the generator's gives the same image as none */
    float *noise = malloc((size_t)N * n * sizeof *noise);
    for (int i = 0; i < N; i++) edm_rng_normal(42, EDM_RNG_STEP_NOISE, (uint32_t)i, noise + (size_t)i * n, n);
    edm_sample_init ni = {.seed = 999, .class_label = 3, .latents = lat, .noise = noise};
    edm_sample *given = NULL;
    CHECK(edm_sample_new(plan, &ni, &given, &err) == EDM_OK, "%s", err.message);
    CHECK(edm_sample_class_label(given) == 3, "given class label kept");
    edm_sample *bad_label = NULL;
    edm_sample_init bi = {.seed = 1, .class_label = 1000};
    CHECK(edm_sample_new(plan, &bi, &bad_label, &err) == EDM_EINVAL && !bad_label &&
              strcmp(err.field, "class_label") == 0,
          "class label out of range: field '%s'", err.field);
    run_to_end(given, n);
    CHECK(memcmp(edm_sample_x(alone), edm_sample_x(given), n * sizeof(double)) == 0,
          "explicit latents and noise differ from the seed's");
    free(noise);

    /* the fp32 interface is the fp64 one rounded */
    edm_sample *a = NULL;
    CHECK(edm_sample_new(plan, &init, &a, &err) == EDM_OK, "%s", err.message);
    float xf[n], Df[n];
    double sf, sd;
    edm_sample_next_input(a, xf, &sf);
    edm_sample_next_input_f64(a, x, &sd);
    int rounded = sf == sd;
    for (int k = 0; k < n; k++) rounded &= xf[k] == (float)x[k];
    CHECK(rounded, "fp32 next_input is the fp64 input rounded");
    for (int k = 0; k < n; k++) Df[k] = (float)(0.1 * xf[k]);
    edm_sample_advance(a, Df);
    CHECK(edm_sample_nfe_done(a) == 1 && edm_sample_step(a) == 0, "one evaluation, Heun stage");

    /* class labels: out of range rejected, unconditional models give -1 */
    edm_sample *bad = NULL;
    init.class_label = 10;
    CHECK(edm_sample_new(plan, &init, &bad, &err) == EDM_EINVAL && bad == NULL,
          "class label 10 of 10 accepted");
    CHECK(strstr(err.message, "class") != NULL, "message: %s", err.message);
    edm_plan_net uncond = make_net(0, INFINITY, C, R, 0);
    edm_plan *plan_u = plan_or_die(&p, &uncond);
    init.class_label = 5;
    edm_sample *u = NULL;
    CHECK(edm_sample_new(plan_u, &init, &u, &err) == EDM_OK, "%s", err.message);
    CHECK(u && edm_sample_class_label(u) == -1, "unconditional class label");

    edm_sample_free(u);
    edm_plan_free(plan_u);
    edm_sample_free(a);
    edm_sample_free(given);
    for (int m = 0; m < 3; m++) edm_sample_free(group[m]);
    edm_sample_free(alone);
    edm_plan_free(plan);
    edm_sample_free(NULL);
    edm_plan_free(NULL);
}

/* ---- validation --------------------------------------------------------------------------- */

typedef struct bad_case {
    const char *field; /* expected in err.field and in the message */
    void (*apply)(edm_sampler_params *p);
} bad_case;

#define BAD(name, field, stmt)                                                                 \
    static void name(edm_sampler_params *p) { stmt; }
BAD(bad_steps1, "steps", p->num_steps = 1)
BAD(bad_steps0, "steps", p->num_steps = 0)
BAD(bad_steps_big, "steps", p->num_steps = 10001)
BAD(bad_rho0, "rho", p->rho = 0)
BAD(bad_rho_nan, "rho", p->rho = NAN)
BAD(bad_rho_inf, "rho", p->rho = INFINITY)
BAD(bad_smin0, "sigma_min", p->sigma_min = 0)
BAD(bad_smin_neg, "sigma_min", p->sigma_min = -1)
BAD(bad_smin_inf, "sigma_min", p->sigma_min = INFINITY)
BAD(bad_smax_inf, "sigma_max", p->sigma_max = INFINITY)
BAD(bad_smax0, "sigma_max", p->sigma_max = 0)
BAD(bad_order, "sigma_max", (p->sigma_min = 1, p->sigma_max = 0.5))
BAD(bad_equal, "sigma_max", (p->sigma_min = 1, p->sigma_max = 1))
BAD(bad_churn, "S_churn", p->S_churn = -0.1)
BAD(bad_churn_nan, "S_churn", p->S_churn = NAN)
BAD(bad_noise, "S_noise", p->S_noise = -1)
BAD(bad_noise_inf, "S_noise", p->S_noise = INFINITY)
BAD(bad_Smin, "S_min", p->S_min = -1)
BAD(bad_Smax_nan, "S_max", p->S_max = NAN)
BAD(bad_Sorder, "S_min", (p->S_min = 2, p->S_max = 1))
BAD(bad_alpha0, "alpha", p->alpha = 0)
BAD(bad_alpha_big, "alpha", p->alpha = 1.5)
BAD(bad_alpha_nan, "alpha", p->alpha = NAN)
BAD(bad_solver, "solver", p->solver = (enum edm_solver)7)
BAD(bad_disc, "disc", p->disc = (enum edm_disc)-1)
BAD(bad_schedule, "schedule", p->schedule = (enum edm_schedule)3)
BAD(bad_scaling, "scaling", p->scaling = (enum edm_scaling)2)
BAD(bad_ablation, "ablation", p->ablation = 2)
BAD(bad_eps, "epsilon_s", p->epsilon_s = 0)
BAD(bad_C1, "C_1", p->C_1 = 0)
BAD(bad_C2, "C_2", p->C_2 = -1)
BAD(bad_M, "M", p->M = 0)

static void test_validation(void) {
    static const bad_case cases[] = {
        {"steps", bad_steps1}, {"steps", bad_steps0}, {"steps", bad_steps_big},
        {"rho", bad_rho0},         {"rho", bad_rho_nan},      {"rho", bad_rho_inf},
        {"sigma_min", bad_smin0},  {"sigma_min", bad_smin_neg}, {"sigma_min", bad_smin_inf},
        {"sigma_max", bad_smax_inf}, {"sigma_max", bad_smax0}, {"sigma_max", bad_order},
        {"sigma_max", bad_equal},  {"S_churn", bad_churn},    {"S_churn", bad_churn_nan},
        {"S_noise", bad_noise},    {"S_noise", bad_noise_inf}, {"S_min", bad_Smin},
        {"S_max", bad_Smax_nan},   {"S_min", bad_Sorder},     {"alpha", bad_alpha0},
        {"alpha", bad_alpha_big},  {"alpha", bad_alpha_nan},  {"solver", bad_solver},
        {"disc", bad_disc},        {"schedule", bad_schedule}, {"scaling", bad_scaling},
        {"ablation", bad_ablation}, {"epsilon_s", bad_eps},   {"C_1", bad_C1},
        {"C_2", bad_C2},           {"M", bad_M},
    };
    edm_sampler_params p;
    edm_error err;
    edm_sampler_params_default(&p);
    CHECK(edm_sampler_params_validate(&p, &err) == EDM_OK, "defaults rejected: %s", err.message);
    CHECK(edm_sampler_params_validate(&p, NULL) == EDM_OK, "NULL err");
    p.num_steps = 2, p.S_max = 0, p.sigma_min = 0.5, p.sigma_max = 0.6, p.alpha = 1e-9;
    CHECK(edm_sampler_params_validate(&p, &err) == EDM_OK, "edge values rejected: %s",
          err.message);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        edm_sampler_params_default(&p);
        cases[c].apply(&p);
        enum edm_status st = edm_sampler_params_validate(&p, &err);
        CHECK(st == EDM_EINVAL, "case %zu (%s) accepted", c, cases[c].field);
        CHECK(strstr(err.message, cases[c].field) != NULL, "case %zu: '%s' does not name %s", c,
              err.message, cases[c].field);
        CHECK(strcmp(err.field, cases[c].field) == 0, "case %zu: field '%s', want '%s'", c,
              err.field, cases[c].field);
        edm_plan *plan = (edm_plan *)&p; /* poisoned: must be set to NULL */
        edm_plan_net net = make_net(0, INFINITY, 1, 2, 0);
        CHECK(edm_plan_new_custom(&p, &net, &plan, &err) == EDM_EINVAL && plan == NULL,
              "case %zu: plan accepted", c);
    }

    /* ranges that are empty only after clamping to the network's */
    edm_sampler_params_default(&p);
    p.sigma_min = 200; /* above the default sigma_max 80 */
    edm_plan *plan = NULL;
    edm_plan_net net = make_net(0, INFINITY, 1, 2, 0);
    CHECK(edm_plan_new_custom(&p, &net, &plan, &err) == EDM_EINVAL && !plan, "sigma_min 200");
    CHECK(strstr(err.message, "sigma") != NULL, "message: %s", err.message);
    CHECK(strcmp(err.field, "sigma_min") == 0, "field '%s'", err.field);
    edm_sampler_params_default(&p);
    p.sigma_max = 0.01; /* below a VE net's sigma_min 0.02 */
    net = make_net(0.02, 100, 1, 2, 0);
    CHECK(edm_plan_new_custom(&p, &net, &plan, &err) == EDM_EINVAL && !plan, "sigma_max 0.01");
    CHECK(strcmp(err.field, "sigma_max") == 0, "field '%s'", err.field);
    edm_sampler_params_default(&p);
    p.ablation = 1, p.disc = EDM_DISC_IDDPM, p.sigma_min = 0.2, p.sigma_max = 0.2001;
    net = make_net(0, INFINITY, 1, 2, 0);
    CHECK(edm_plan_new_custom(&p, &net, &plan, &err) == EDM_EINVAL && !plan,
          "iddpm with no u in range");
    CHECK(strstr(err.message, "iDDPM") != NULL, "message: %s", err.message);
    CHECK(strcmp(err.field, "sigma_min") == 0, "field '%s'", err.field);
    CHECK(edm_sampler_params_validate(&p, &err) == EDM_OK && err.field[0] == '\0',
          "success clears the field");
}

static void test_names(void) {
    static const char *const solvers[] = {"euler", "heun"};
    static const char *const discs[] = {"vp", "ve", "iddpm", "edm"};
    static const char *const schedules[] = {"vp", "ve", "linear"};
    static const char *const scalings[] = {"vp", "none"};
    for (int i = 0; i < 2; i++) {
        enum edm_solver v;
        CHECK(edm_solver_parse(solvers[i], &v) == EDM_OK && (int)v == i, "solver %s", solvers[i]);
        CHECK(strcmp(edm_solver_name(v), solvers[i]) == 0, "solver name %d", i);
    }
    for (int i = 0; i < 4; i++) {
        enum edm_disc v;
        CHECK(edm_disc_parse(discs[i], &v) == EDM_OK && (int)v == i, "disc %s", discs[i]);
        CHECK(strcmp(edm_disc_name(v), discs[i]) == 0, "disc name %d", i);
    }
    for (int i = 0; i < 3; i++) {
        enum edm_schedule v;
        CHECK(edm_schedule_parse(schedules[i], &v) == EDM_OK && (int)v == i, "schedule %s",
              schedules[i]);
        CHECK(strcmp(edm_schedule_name(v), schedules[i]) == 0, "schedule name %d", i);
    }
    for (int i = 0; i < 2; i++) {
        enum edm_scaling v;
        CHECK(edm_scaling_parse(scalings[i], &v) == EDM_OK && (int)v == i, "scaling %s",
              scalings[i]);
        CHECK(strcmp(edm_scaling_name(v), scalings[i]) == 0, "scaling name %d", i);
    }
    enum edm_solver sv = EDM_SOLVER_HEUN;
    enum edm_disc dv = EDM_DISC_EDM;
    CHECK(edm_solver_parse("Heun", &sv) == EDM_EINVAL && sv == EDM_SOLVER_HEUN, "case matters");
    CHECK(edm_solver_parse("", &sv) == EDM_EINVAL, "empty");
    CHECK(edm_solver_parse(NULL, &sv) == EDM_EINVAL, "NULL");
    CHECK(edm_disc_parse("edm ", &dv) == EDM_EINVAL, "trailing space");
    CHECK(strcmp(edm_disc_name((enum edm_disc)9), "?") == 0, "out-of-range name");
}

/* The table drives defaults, validation and text: every row checked against the struct. */
static void test_param_table(void) {
    edm_sampler_params def, p;
    edm_error err;
    edm_sampler_params_default(&def);
    for (int i = 0; i < EDM_SAMPLER_PARAM_COUNT; i++) {
        const edm_sampler_param *d = &edm_sampler_param_table[i];
        CHECK(edm_sampler_param_find(d->name) == d, "find %s", d->name);
        CHECK(!d->alias || edm_sampler_param_find(d->alias) == d, "find alias of %s", d->name);
        for (int j = 0; j < i; j++)
            CHECK(strcmp(edm_sampler_param_table[j].name, d->name) != 0, "%s twice", d->name);
        double v = edm_sampler_param_get(&def, d);
        CHECK(v == d->def || (isnan(v) && isnan(d->def)), "%s: default %g, table %g", d->name, v,
              d->def);
        CHECK(d->doc && d->doc[0], "%s: no doc", d->name);
        /* the default as text reads back (NaN: "none" is no value) */
        char text[64];
        edm_sampler_param_format(d, d->def, text, sizeof text);
        p = def;
        if (!isnan(d->def)) {
            CHECK(edm_sampler_param_parse(&p, d, text, &err) == EDM_OK, "%s: parse '%s': %s",
                  d->name, text, err.message);
            CHECK(edm_sampler_param_get(&p, d) == d->def, "%s: '%s' round trip", d->name, text);
        }
        CHECK(p.ablation == d->ablation_only || isnan(d->def), "%s: ablation %d", d->name,
              p.ablation);
        /* bad text names the row */
        p = def;
        CHECK(edm_sampler_param_parse(&p, d, "x1", &err) == EDM_EINVAL &&
                  strcmp(err.field, d->name) == 0 && strstr(err.message, d->name),
              "%s: parse 'x1': field '%s', %s", d->name, err.field, err.message);
        if (d->type == EDM_PARAM_CHOICE) {
            int n = 0;
            for (; d->choices[n]; n++) {
                p = def;
                CHECK(edm_sampler_param_parse(&p, d, d->choices[n], &err) == EDM_OK &&
                          edm_sampler_param_get(&p, d) == n,
                      "%s: choice %s", d->name, d->choices[n]);
                edm_sampler_param_format(d, n, text, sizeof text);
                CHECK(strcmp(text, d->choices[n]) == 0, "%s: format %d = %s", d->name, n, text);
            }
            CHECK(d->def >= 0 && d->def < n, "%s: default choice", d->name);
            continue;
        }
        /* the range ends: min (unless open) and max accepted, beyond them refused */
        double below = d->type == EDM_PARAM_INT ? d->min - 1 : nextafter(d->min, -INFINITY);
        double lo_ok = d->min_open ? nextafter(d->min, INFINITY) : d->min;
        double hi_ok = isinf(d->max) ? (d->inf_ok ? INFINITY : DBL_MAX) : d->max;
        double probes[][2] = {{lo_ok, 1},
                              {hi_ok, 1},
                              {d->min_open ? d->min : below, 0},
                              {isinf(d->max) ? (d->inf_ok ? -1 : INFINITY) : d->max + 1, 0}};
        for (int k = 0; k < 4; k++) {
            if (d->type == EDM_PARAM_INT && probes[k][0] != floor(probes[k][0])) continue;
            p = def;
            /* sigma_max must stay above sigma_min and S_max at or above S_min; resample_jump
             * below steps, and resample_count > 1 needs a jump */
            p.sigma_min = NAN, p.sigma_max = NAN, p.S_max = INFINITY;
            p.num_steps = (int)edm_sampler_param_find("steps")->max, p.resample_jump = 1;
            enum edm_status st = edm_sampler_param_set(&p, d, probes[k][0], &err);
            if (st == EDM_OK) st = edm_sampler_params_validate(&p, &err);
            CHECK((st == EDM_OK) == (probes[k][1] != 0), "%s = %g: %s", d->name, probes[k][0],
                  st == EDM_OK ? "accepted" : err.message);
            if (st != EDM_OK)
                CHECK(strcmp(err.field, d->name) == 0, "%s = %g: field '%s'", d->name, probes[k][0],
                      err.field);
        }
        p = def;
        CHECK(edm_sampler_param_set(&p, d, NAN, &err) == EDM_EINVAL, "%s = NaN", d->name);
    }
    const edm_sampler_param *steps = edm_sampler_param_find("num_steps");
    p = def;
    CHECK(steps && edm_sampler_param_set(&p, steps, 2.5, &err) == EDM_EINVAL &&
              strstr(err.message, "integer"),
          "steps 2.5: %s", err.message);
    CHECK(steps && edm_sampler_param_parse(&p, steps, "1e3", &err) == EDM_EINVAL, "steps 1e3");
    CHECK(steps && edm_sampler_param_parse(&p, steps, "40", &err) == EDM_OK && p.num_steps == 40,
          "steps 40");
    CHECK(edm_sampler_param_find("S_churn ") == NULL && edm_sampler_param_find(NULL) == NULL &&
              edm_sampler_param_find("epsilon_s") == NULL,
          "find unknown");
    char text[64];
    const edm_sampler_param *S_noise = edm_sampler_param_find("S_noise");
    edm_sampler_param_format(S_noise, 1.007, text, sizeof text);
    CHECK(strcmp(text, "1.007") == 0, "shortest text: %s", text);
    edm_sampler_param_format(S_noise, 0.1 + 0.2, text, sizeof text);
    CHECK(strtod(text, NULL) == 0.1 + 0.2, "exact text: %s", text);
    const edm_sampler_param *disc = edm_sampler_param_find("discretization");
    CHECK(disc && edm_sampler_param_choices(disc, "|", text, sizeof text) == 15 &&
              strcmp(text, "vp|ve|iddpm|edm") == 0,
          "choices: %s", text);
    CHECK(edm_sampler_param_choices(disc, "|", text, 4) == 15 && strcmp(text, "vp|") == 0,
          "choices truncated: %s", text);

    /* a plan's settings as text: resolved sigmas, ablation rows only for that sampler */
    edm_plan_net net = make_net(0.002, 80, 1, 2, 0);
    edm_plan *plan = plan_or_die(&def, &net);
    char line[512];
    int len = plan ? edm_plan_describe(plan, line, sizeof line) : 0;
    CHECK(plan && len == (int)strlen(line) &&
              strcmp(line, "edm steps=18 nfe=35 sigma_min=0.002 sigma_max=80 rho=7 S_churn=0 "
                           "S_min=0 S_max=inf S_noise=1") == 0,
          "describe: %s", line);
    edm_plan_free(plan);
    p = def;
    edm_sampler_param_parse(&p, edm_sampler_param_find("solver"), "euler", NULL);
    p.num_steps = 4;
    net = make_net(0.02, 100, 1, 2, 0);
    plan = plan_or_die(&p, &net);
    if (plan) edm_plan_describe(plan, line, sizeof line);
    CHECK(plan && strcmp(line, "ablation steps=4 nfe=4 sigma_min=0.02 sigma_max=80 rho=7 "
                               "S_churn=0 S_min=0 S_max=inf S_noise=1 solver=euler disc=edm "
                               "schedule=linear scaling=none alpha=1") == 0,
          "describe ablation: %s", line);
    CHECK(plan && edm_plan_describe(plan, line, 10) > 10 && strlen(line) == 9, "truncated");
    edm_plan_free(plan);
}

/* A step index past the plan is a caller's bug: EDM_ASSERT aborts, whatever NDEBUG says, after
 * one line naming the file, the function and the condition. Run in a child process. */
static void test_assert_stays_on(void) {
    edm_sampler_params p;
    edm_sampler_params_default(&p);
    edm_plan_net net = make_net(0, INFINITY, 1, 2, 0);
    edm_plan *plan = plan_or_die(&p, &net);
    int fds[2];
    if (!plan || pipe(fds) != 0) {
        CHECK(0, "setup");
        edm_plan_free(plan);
        return;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        (void)edm_plan_sigma(plan, p.num_steps + 1);
        _exit(0); /* not reached when the assertion is on */
    }
    close(fds[1]);
    char text[512] = {0};
    size_t len = 0;
    ssize_t k;
    while (len < sizeof text - 1 && (k = read(fds[0], text + len, sizeof text - 1 - len)) > 0)
        len += (size_t)k;
    close(fds[0]);
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid, "fork/wait");
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "no abort (status %#x)", status);
    CHECK(strstr(text, "schedule.c:") && strstr(text, "edm_plan_sigma") &&
              strstr(text, "assertion failed: i >= 0 && i <= plan->num_steps"),
          "message: %s", text);
    edm_plan_free(plan);
}

int main(void) {
    test_default_schedule();
    test_nfe();
    test_reference_trajectories();
    test_iddpm_table();
    test_convergence();
    test_stochastic_marginal();
    test_seed_independence();
    test_validation();
    test_names();
    test_param_table();
    test_assert_stays_on();
    return check_finish();
}
