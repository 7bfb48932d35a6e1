/*
 * cmd_info.c - `edm info MODEL`: what a model file holds and what one evaluation costs.
 *
 * Prints the metadata name and description, the preconditioner and network configuration
 * (every default filled in, spec 0), the parameter count, FLOPs of one network evaluation
 * of one image (multiply-add = 2), the activation memory per image of an fp32 forward pass,
 * the network's sigma range and the default sampler's cost. The backend flags are accepted
 * for uniformity with the other subcommands; no backend is needed here.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

typedef struct info_args {
    const char *model;
    cli_backend_args backend;
} info_args;

static const cli_option info_options[] = {
    {"model", "network", CLI_STRING, offsetof(info_args, model), "PATH",
     "the model file (edm-safetensors/1); may also be given as the argument", 0, 0, NULL, NULL},
    CLI_BACKEND_OPTIONS(info_args),
    {NULL, NULL, CLI_FLAG, 0, NULL, NULL, 0, 0, NULL, NULL},
};

static const char *precond_name(enum edm_precond p) {
    switch (p) {
    case EDM_PRECOND_VP: return "vp";
    case EDM_PRECOND_VE: return "ve";
    case EDM_PRECOND_IDDPM: return "iddpm";
    case EDM_PRECOND_EDM: return "edm";
    }
    return "?";
}

static void print_int_list(const char *label, const int *v, int n) {
    printf("%s[", label);
    for (int i = 0; i < n; i++) printf(i ? ", %d" : "%d", v[i]);
    printf("]");
}

int cmd_info(int argc, char **argv) {
    static const char *cmd = "info";
    info_args a = {0};
    cli_backend_args_default(&a.backend);
    cli_parsed parsed;
    int rc = cli_parse_command(cmd, info_options, argc, argv, &a, &parsed,
                               "MODEL [options]",
                               "Prints a model's configuration, parameter count, FLOPs per network "
                               "evaluation and memory per image.");
    if (rc >= 0) return rc;
    if (parsed.n_positional > 1 || (parsed.n_positional == 1 && a.model))
        return cli_fail(cmd, "give one model (edm info MODEL)") + 1;
    if (parsed.n_positional == 1) a.model = parsed.positional[0];
    if (!a.model) return cli_fail(cmd, "no model given (edm info MODEL)") + 1;

    edm_model *model = NULL;
    if (cli_model_load(cmd, a.model, &model)) return 1;
    const edm_config *c = edm_model_config(model);
    const char *name = edm_model_metadata(model, "name");
    const char *description = edm_model_metadata(model, "description");

    printf("model:        %s\n", a.model);
    if (name) printf("name:         %s\n", name);
    if (description) printf("description:  %s\n", description);
    printf("sha256:       %s\n", edm_model_sha256(model));
    const char *classes = edm_model_metadata(model, "class_names");
    if (classes) printf("class names:  %s\n", classes);
    printf("precond:      %s", precond_name(c->precond));
    switch (c->precond) {
    case EDM_PRECOND_VP:
        printf(" (beta_d %g, beta_min %g, M %g, epsilon_t %g)\n", c->beta_d, c->beta_min, c->M,
               c->epsilon_t);
        break;
    case EDM_PRECOND_VE: printf(" (sigma_min %g, sigma_max %g)\n", c->sigma_min, c->sigma_max); break;
    case EDM_PRECOND_IDDPM: printf(" (C_1 %g, C_2 %g, M %g)\n", c->C_1, c->C_2, c->M); break;
    case EDM_PRECOND_EDM:
        printf(" (sigma_min %g, sigma_max %g, sigma_data %g)\n", c->sigma_min, c->sigma_max,
               c->sigma_data);
        break;
    }
    printf("network:      %s, %dx%d, %d channels, label_dim %d, augment_dim %d, use_fp16 %d\n",
           c->arch == EDM_ARCH_SONG ? "SongUNet" : "DhariwalUNet", c->img_resolution,
           c->img_resolution, c->img_channels, c->label_dim, c->augment_dim, c->use_fp16);
    printf("              model_channels %d, ", c->model_channels);
    print_int_list("channel_mult ", c->channel_mult, c->num_levels);
    printf(", channel_mult_emb %d, num_blocks %d, ", c->channel_mult_emb, c->num_blocks);
    print_int_list("attn_resolutions ", c->attn_resolutions, c->num_attn_res);
    printf("\n");
    if (c->arch == EDM_ARCH_SONG) {
        static const char *const enc[] = {"standard", "skip", "residual"};
        printf("              embedding %s, channel_mult_noise %d, encoder %s, decoder %s, ",
               c->embedding_type == EDM_EMBED_POSITIONAL ? "positional" : "fourier",
               c->channel_mult_noise, enc[c->encoder_type],
               c->decoder_type == EDM_DECODER_STANDARD ? "standard" : "skip");
        print_int_list("resample_filter ", c->resample_filter, c->resample_filter_len);
        printf("\n");
    }
    printf("              dropout %g, label_dropout %g (training only)\n", c->dropout,
           c->label_dropout);

    const int64_t params = edm_model_param_count(model);
    const double flops = edm_model_flops_per_image(model);
    const size_t ws = edm_model_workspace_bytes_per_image(model);
    printf("parameters:   %lld (%.2f M, %.1f MiB as fp32)\n", (long long)params, params / 1e6,
           params * 4.0 / (1 << 20));
    printf("FLOPs:        %.4g GFLOP per network evaluation per image\n", flops / 1e9);
    printf("memory:       %.2f MiB of activations per image (fp32 forward pass)\n",
           (double)ws / (1 << 20));
    printf("sigma range:  [%g, %g] (network)\n", edm_model_sigma_min(model),
           edm_model_sigma_max(model));

    edm_sampler_params sp;
    edm_sampler_params_default(&sp);
    edm_plan *plan = NULL;
    edm_error err;
    if (edm_plan_new(model, &sp, &plan, &err) == EDM_OK) {
        int nfe = edm_plan_nfe(plan);
        printf("sampling:     default EDM sampler: %d steps, sigma %g .. %g, %d NFE = %.4g "
               "GFLOP per image\n",
               edm_plan_num_steps(plan), edm_plan_sigma(plan, 0),
               edm_plan_sigma(plan, edm_plan_num_steps(plan) - 1), nfe, nfe * flops / 1e9);
        edm_plan_free(plan);
    }
    char *json = edm_config_to_json(c);
    if (json) {
        printf("edm_config:   %s\n", json);
        free(json);
    }
    edm_model_free(model);
    return 0;
}
