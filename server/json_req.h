/*
 * json_req.h - parsing and validating a generation request body (the libFuzzer target).
 *
 * The parser is pure: bytes, the catalog of served models and the limits in; a complete,
 * validated request or an error naming the field out. It allocates only what it returns,
 * touches no global state, and never calls the network, so the fuzzer can run it millions
 * of times. Field names are those of the `edm` command and the official generate.py, plus
 * OpenAI's Images API (prompt, size, response_format, output_format, quality, style, user),
 * so that its SDKs work unchanged, and the informational fields of a PNG's Request text
 * (model_sha256, nfe, edm_serve_version), so that the text POSTed back reproduces the image;
 * and a start from an image (init_image, mask as base64 PNGs; their hashes from a Request
 * text) or a variation of a seed (variation_seed, variation_strength).
 */
#ifndef SRV_JSON_REQ_H
#define SRV_JSON_REQ_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "edm.h"
#include "errors.h"
#include "image_req.h"

/* One name of a class (a class may have several: "7", "seven"), matched case-insensitively
 * by the request's prompt. */
struct srv_class_name {
    const char *name;
    int label;
};

/* What the parser needs to know about a served model. */
struct srv_catalog_entry {
    const char *name;
    int label_dim;     /* 0: unconditional */
    int default_steps; /* steps when the request gives none */
    int resolution;    /* the one image size it makes ("RxR"); 0: not checked */
    const char *sha256; /* of the model file (a request's model_sha256 must match), or NULL */
    const struct srv_class_name *class_names; /* [n_class_names], in label order */
    int n_class_names;
    int channels;      /* of its images: an init image is converted to them */
};

struct srv_catalog {
    const struct srv_catalog_entry *models; /* [0] is the default model */
    int n;
};

struct srv_req_limits {
    int max_n, max_steps;
    long default_timeout_ms, max_timeout_ms;
};

struct srv_gen_request {
    int model;              /* index into the catalog */
    int n;                  /* images */
    uint64_t *seeds;        /* [n], owned */
    int seeds_given;        /* 0: no seed in the body; srv_gen_request_fill_seeds chooses */
    int *class_labels;      /* [n], owned; -1: drawn from the seed (or unconditional) */
    edm_sampler_params params;
    long timeout_ms;
    int want_url; /* response_format "url": images as URLs, kept for the job TTL */
    struct srv_req_image image; /* a start from an image (converted for the model), owned */
    uint64_t variation_seed;    /* variations from seeds (edm_sample_init) */
    double variation_strength;  /* 0: off */
};

/* Parses body[0..len) into out (which the caller zero-initialises or clears first).
 * Returns SRV_OK, or an error with the field in err->param (400, or 404 for the model).
 * On error out holds nothing that needs freeing. The images of init_image / mask (base64 or
 * data URLs) are decoded and converted for the model here (image_req.h), so that every 400 a
 * request can earn comes from the parser; without a mask or strength / sigma_start, an
 * init image gets strength EDM_IMG2IMG_DEFAULT_STRENGTH. */
enum srv_err srv_json_req_parse_generate(const char *body, size_t len, const struct srv_catalog *cat,
                                         const struct srv_req_limits *lim,
                                         struct srv_gen_request *out, struct srv_error *err);
/* The same from the fields of a JSON object (borrowed) whose images came apart, as a form's
 * file parts (images: their bytes and names; then init_image and mask are not fields). */
enum srv_err srv_json_req_parse_object(json_t *root, const struct srv_image_src *images,
                                       const struct srv_catalog *cat, const struct srv_req_limits *lim,
                                       struct srv_gen_request *out, struct srv_error *err);

/* Seeds base, base+1, ... for a request without seeds (generate.py's seed ranges). */
void srv_gen_request_fill_seeds(struct srv_gen_request *r, uint64_t base);
void srv_gen_request_clear(struct srv_gen_request *r);

#endif /* SRV_JSON_REQ_H */
