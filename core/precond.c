/*
 * precond.c - c_skip, c_out, c_in and c_noise of the four preconditioners (spec 2).
 *
 * The reference computes every coefficient in fp32 from the fp32 sigma, combining Python
 * scalars (fp64) with fp32 tensors: each scalar is rounded to fp32 at the operation that
 * uses it. The code below follows the same order of operations so that c_noise (which feeds
 * the embedding's large sin/cos arguments) matches to the last bit where possible.
 */
#include <math.h>

#include "precond.h"

int edm_precond_iddpm_index(const float *u, int u_len, float sigma) {
    int best = 0;
    double best_d = INFINITY;
    for (int j = 0; j < u_len; j++) {
        double d = fabs((double)sigma - (double)u[j]);
        if (d < best_d) best_d = d, best = j;
    }
    return best;
}

double edm_precond_vp_sigma_f32(const edm_config *cfg, double t_in) {
    float t = (float)t_in;
    float a = (float)(0.5 * cfg->beta_d) * (t * t) + (float)cfg->beta_min * t;
    return (double)sqrtf(expf(a) - 1.0f);
}

void edm_precond_coefs_compute(const edm_config *cfg, const float *u, int u_len, float sigma,
                               edm_precond_coefs *out) {
    const float s2 = sigma * sigma;
    switch (cfg->precond) {
    case EDM_PRECOND_VP: {
        /* sigma_inv = (sqrt(beta_min^2 + 2 beta_d ln(1 + sigma^2)) - beta_min) / beta_d */
        float l = logf(1.0f + s2);
        float v = sqrtf((float)(cfg->beta_min * cfg->beta_min) + (float)(2.0 * cfg->beta_d) * l);
        float inv = (v - (float)cfg->beta_min) / (float)cfg->beta_d;
        out->c_skip = 1.0f;
        out->c_out = -sigma;
        out->c_in = 1.0f / sqrtf(s2 + 1.0f);
        out->c_noise = (float)(cfg->M - 1) * inv;
        break;
    }
    case EDM_PRECOND_VE:
        out->c_skip = 1.0f;
        out->c_out = sigma;
        out->c_in = 1.0f;
        out->c_noise = logf(0.5f * sigma);
        break;
    case EDM_PRECOND_IDDPM: {
        int j = edm_precond_iddpm_index(u, u_len, sigma);
        out->c_skip = 1.0f;
        out->c_out = -sigma;
        out->c_in = 1.0f / sqrtf(s2 + 1.0f);
        out->c_noise = (float)(cfg->M - 1) - (float)j;
        break;
    }
    case EDM_PRECOND_EDM: {
        const float sd2 = (float)(cfg->sigma_data * cfg->sigma_data);
        out->c_skip = sd2 / (s2 + sd2);
        out->c_out = sigma * (float)cfg->sigma_data / sqrtf(s2 + sd2);
        out->c_in = 1.0f / sqrtf(sd2 + s2);
        out->c_noise = logf(sigma) / 4.0f;
        break;
    }
    }
}
