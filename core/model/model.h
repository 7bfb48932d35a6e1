/*
 * model.h - the engine's view of a loaded model (internal).
 */
#ifndef EDM_MODEL_H
#define EDM_MODEL_H

#include "edm.h"
#include "net/net.h"
#include "io/safetensors.h"

struct edm_model {
    edm_config cfg;
    edm_st_file *file; /* the whole file, kept for weight binding and metadata */
    edm_net *net;      /* the description, validated against the file */
    float *u;          /* iDDPM's u table (owned), else NULL */
    int u_len;
    double sigma_min, sigma_max;
    int64_t param_count;
    double flops_per_image;
    size_t workspace_per_image;
    char sha256[65]; /* of the file's bytes (edm_model_sha256) */
};

/* Builds a model from an opened file (takes ownership of file, also on failure). `what`
 * names the source in messages. */
enum edm_status edm_model_from_file(edm_st_file *file, const char *what, edm_model **out,
                                    edm_error *err);

/* Whether the network can take the noise level sigma: positive, finite in fp32 with room for
 * the input x = sigma * z, and with finite preconditioner coefficients. */
int edm_model_sigma_usable(const edm_model *model, double sigma);

/* Measures one denoiser pass for batch n on the null backend: workspace bytes and FLOPs. */
enum edm_status edm_denoiser_measure(const edm_net *net, int n, size_t *bytes, double *flops,
                                     edm_error *err);

#endif /* EDM_MODEL_H */
