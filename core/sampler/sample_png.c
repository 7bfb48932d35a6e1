/*
 * sample_png.c - a finished image as a PNG that says how to make it again (edm.h,
 * edm_sample_png): edmd's encoder and `edm sample --png-dir` both write it, so the two carry
 * the same text.
 *
 * Text chunks: Software; Model, Seed, Class and Steps for people; Sampler, the plan's one-line
 * description (edm_plan_describe); and Request, the complete resolved settings as JSON
 * (edm_plan_record_json), which POSTed to edmd's /v1/images/generations makes the same
 * pixels (tests/server/test_reproduce.sh); for a start from an image, given the same files
 * as init_image and mask, whose SHA-256 it names (and so do the init_image_sha256 and
 * mask_sha256 texts; variation for a variation of a seed). An image whose noise came from
 * files (`edm sample --latents/--noise`), or whose inputs were NPY arrays, cannot be made
 * from a request, and gets no Request text.
 */
#include <stdio.h>
#include <stdlib.h>

#include "edm.h"
#include "sampler.h"
#include "status.h"

enum edm_status edm_sample_png(const edm_plan *plan, const edm_sample *s, const edm_png_info *info,
                               uint8_t **png, size_t *png_len, edm_error *err) {
    const int C = plan->C, R = plan->R;
    const edm_record rec = {info->model,
                            info->model_sha256,
                            edm_sample_seed(s),
                            edm_sample_class_label(s),
                            info->init_image_sha256,
                            info->mask_sha256,
                            info->variation_seed,
                            info->variation_strength};
    char seed[24], label[16], steps[16], sampler[512], variation[80];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)rec.seed);
    snprintf(label, sizeof label, "%d", rec.class_label);
    snprintf(steps, sizeof steps, "%d", plan->num_steps);
    edm_plan_describe(plan, sampler, sizeof sampler);
    int need = edm_plan_record_json(plan, &rec, NULL, 0);
    char *request = malloc((size_t)need + 1);
    uint8_t *hwc = malloc((size_t)C * R * R);
    if (!request || !hwc) {
        free(request);
        free(hwc);
        return edm_error_set(err, EDM_ENOMEM, "out of memory encoding a PNG");
    }
    edm_plan_record_json(plan, &rec, request, (size_t)need + 1);
    edm_image_to_u8(edm_sample_x(s), C, R, R, hwc);
    const char *keys[10 + EDM_PNG_MAX_EXTRA] = {"Software", "Model", "Seed",   "Class",
                                                "Steps",    "Sampler", "Request"};
    const char *values[10 + EDM_PNG_MAX_EXTRA] = {
        info->software, info->model, seed,   rec.class_label >= 0 ? label : "none",
        steps,          sampler,     request};
    int n = info->no_request ? 6 : 7;
    if (info->init_image_sha256 && info->init_image_sha256[0])
        keys[n] = "init_image_sha256", values[n++] = info->init_image_sha256;
    if (info->mask_sha256 && info->mask_sha256[0])
        keys[n] = "mask_sha256", values[n++] = info->mask_sha256;
    if (info->variation_strength > 0) {
        snprintf(variation, sizeof variation, "variation_seed=%llu variation_strength=%.17g",
                 (unsigned long long)info->variation_seed, info->variation_strength);
        keys[n] = "variation", values[n++] = variation;
    }
    for (int i = 0; i < info->n_extra && i < EDM_PNG_MAX_EXTRA; i++, n++)
        keys[n] = info->extra_keys[i], values[n] = info->extra_values[i];
    enum edm_status st =
        edm_png_encode(hwc, R, R, C, keys, values, n, info->level, png, png_len, err);
    free(request);
    free(hwc);
    return st;
}
