/*
 * precond.h - the preconditioners' coefficients and noise ranges (spec 2).
 */
#ifndef EDM_PRECOND_H
#define EDM_PRECOND_H

#include "edm.h"

typedef struct edm_precond_coefs {
    float c_skip, c_out, c_in, c_noise;
} edm_precond_coefs;

/* Coefficients for one fp32 sigma, in fp32 arithmetic in the reference's order of operations.
 * u/u_len: iDDPM's u table (NULL otherwise). */
void edm_precond_coefs_compute(const edm_config *cfg, const float *u, int u_len, float sigma,
                               edm_precond_coefs *out);
/* iDDPM: the index j minimising |sigma - u[j]| (exact, in fp64; first index on ties). */
int edm_precond_iddpm_index(const float *u, int u_len, float sigma);
/* VP: sigma(t) in fp32 as the reference computes its sigma_min/sigma_max attributes. */
double edm_precond_vp_sigma_f32(const edm_config *cfg, double t);

#endif /* EDM_PRECOND_H */
