/*
 * cmd_sample.c - `edm sample`: images from a model, as the official generate.py (spec 3.3).
 *
 * Which sampler: if any of --solver/--disc/--schedule/--scaling (or --alpha, which only the
 * generalised sampler has) is given, ablation_sampler runs with the others at their ablation
 * defaults (heun, edm, linear, none); otherwise edm_sampler (Algorithm 2). Options left unset
 * keep each sampler's own defaults (sigma_min/sigma_max depend on the sampler and disc).
 * The sampler's options, their ranges, defaults and help, and that rule all come from the
 * engine's parameter table (edm_sampler_param_table, through cli_sampler_options).
 *
 * Images: one per seed (--seeds, default 0-63), or one per row of --latents (N,C,H,W) N(0,1)
 * noise, named by batch index unless --seeds is given as well. Per-step noise comes from the
 * seed's generator or from --noise (steps,N,C,H,W). Classes: --class K for every image,
 * --class-labels (N,label_dim) one-hot (argmax), or drawn from the seed.
 *
 * Batching: the images are split into ceil(N/batch) near-equal consecutive chunks, as
 * generate.py does; each chunk's samples share batched network evaluations through
 * edm_denoiser_step until all are finished. Images do not depend on the batching.
 *
 * Starting from an image (edm.h edm_sample_init): --init-image PNG (every image; resized to
 * the model's resolution, RGB -> gray by luminance, gray -> RGB by replication) or X.npy
 * (N,C,R,R) in [-1,1], one per image (or (1,C,R,R) for all); --mask PNG (white = repaint)
 * or M.npy (N,R,R) / (1,R,R) in [0,1] (a PNG with transparent pixels: 1 - alpha, OpenAI's
 * convention). --strength S or --sigma-start X choose the start; without either, inpainting
 * (a mask) runs the full schedule and img2img uses strength EDM_IMG2IMG_DEFAULT_STRENGTH
 * (0.5): with fresh seeds, that is "variations of an image". The step count stays --steps
 * (NFE 2N-1 for Heun, whatever the strength). --resample-jump and --resample-count add
 * RePaint resampling. These four are rows of the parameter table (optional ones), so they
 * come with the sampler's options. --variation-seed S --variation-strength T mix each seed's
 * latents with S's (slerp): variations of a seed, or seed travel.
 *
 * Output: per image a line (seed, class, NFE, wall time), a summary (images/s, ms per NFE),
 * --out X.npy (final x as float32) and --png-dir DIR (%06d.png, with the generation
 * parameters in tEXt chunks, as edmd writes them: edm_sample_png, whose Request chunk POSTed
 * to edmd makes the same image, from an image with the same PNG files as init_image / mask;
 * the SHA-256 of the init image and mask files, with "[i]" for row i of an NPY and then no
 * Request, and the variation settings).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

typedef struct sample_args {
    const char *model, *latents, *seeds, *labels, *noise, *out, *png_dir;
    const char *init_image, *mask, *variation_seed;
    double variation_strength;
    int class_idx, batch, subdirs;
    edm_sampler_params params; /* the sampler's options (cli_sampler_options) */
    cli_backend_args backend;
} sample_args;

/* The options: these, then one per sampler parameter, then the output and backend ones. */
static const cli_option input_options[] = {
    {"model", "network", CLI_STRING, offsetof(sample_args, model), "PATH",
     "the model file (edm-safetensors/1)", 0, 0, NULL, NULL},
    {"seeds", NULL, CLI_STRING, offsetof(sample_args, seeds), "LIST",
     "random seeds, e.g. 1,2,5-10 (default 0-63, or 0..N-1 with --latents)", 0, 0, NULL, NULL},
    {"latents", NULL, CLI_STRING, offsetof(sample_args, latents), "Z.npy",
     "initial N(0,1) noise (N,C,H,W) instead of the seeds' (before scaling by sigma_0)", 0, 0,
     NULL, NULL},
    {"noise", NULL, CLI_STRING, offsetof(sample_args, noise), "E.npy",
     "per-step N(0,1) noise (steps,N,C,H,W) instead of the seeds'", 0, 0, NULL, NULL},
    {"class", NULL, CLI_INT, offsetof(sample_args, class_idx), "K",
     "class of every image (default: drawn from each seed)", 0, 1 << 30, NULL, NULL},
    {"class-labels", "class_labels", CLI_STRING, offsetof(sample_args, labels), "L.npy",
     "one-hot classes (N,label_dim); the argmax of each row", 0, 0, NULL, NULL},
    {"init-image", "init_image", CLI_STRING, offsetof(sample_args, init_image), "PNG|X.npy",
     "start from this image (PNG for every image, or (N,C,R,R) in [-1,1])", 0, 0, NULL, NULL},
    {"mask", NULL, CLI_STRING, offsetof(sample_args, mask), "PNG|M.npy",
     "inpainting mask, white/1 = repaint (PNG, or (N,R,R) in [0,1]); needs --init-image", 0, 0,
     NULL, NULL},
    {"variation-seed", "variation_seed", CLI_STRING, offsetof(sample_args, variation_seed), "S",
     "mix every image's latents with this seed's (slerp)", 0, 0, NULL, NULL},
    {"variation-strength", "variation_strength", CLI_DOUBLE,
     offsetof(sample_args, variation_strength), "T",
     "weight of --variation-seed in [0,1] (default 0)", 0, 1, NULL, NULL},
};
static const cli_option output_options[] = {
    {"batch", NULL, CLI_INT, offsetof(sample_args, batch), "B",
     "maximum images per batch (default 64)", 1, 65536, NULL, NULL},
    {"out", NULL, CLI_STRING, offsetof(sample_args, out), "X.npy",
     "write the final images (N,C,H,W) float32", 0, 0, NULL, NULL},
    {"png-dir", "outdir", CLI_STRING, offsetof(sample_args, png_dir), "DIR",
     "write one PNG per image, DIR/%06d.png by seed (or batch index with --latents)", 0, 0,
     NULL, NULL},
    {"subdirs", NULL, CLI_FLAG, offsetof(sample_args, subdirs), "",
     "PNGs in a subdirectory per 1000 seeds (DIR/000000/, DIR/001000/, ...)", 0, 0, NULL, NULL},
    CLI_BACKEND_OPTIONS(sample_args),
    {NULL, NULL, CLI_FLAG, 0, NULL, NULL, 0, 0, NULL, NULL},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
static cli_option sample_options[COUNT(input_options) + EDM_SAMPLER_PARAM_COUNT +
                                 COUNT(output_options)];

static void sample_options_build(void) {
    cli_option *o = sample_options;
    memcpy(o, input_options, sizeof input_options);
    o += COUNT(input_options);
    o += cli_sampler_options(o, offsetof(sample_args, params));
    memcpy(o, output_options, sizeof output_options);
}

/* mkdir -p */
static int make_dirs(const char *path) {
    char buf[4096];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof buf) return -1;
    memcpy(buf, path, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char saved = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST) return -1;
            buf[i] = saved;
        }
    }
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : -1;
}

static int write_file(const char *path, const uint8_t *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(data, 1, len, f);
    int bad = ferror(f);
    if (fclose(f) != 0) bad = 1;
    return w == len && !bad ? 0 : -1;
}

typedef struct sample_job {
    const char *cmd;
    const sample_args *a;
    const edm_model *model;
    char model_name[256]; /* as edmd serves it: the metadata's name, else the file's */
    const edm_plan *plan;
    edm_denoiser *den;
    int N;               /* images */
    const uint64_t *seeds; /* [N] */
    int name_by_seed;    /* PNG names: seed, or batch index */
    const int *classes;  /* [N] or NULL (drawn from the seed) */
    const float *latents; /* [N][n] or NULL */
    const float *noise;  /* [N][steps][n] (transposed from the file) or NULL */
    const float *init, *mask; /* [1 or N][n] / [1 or N][R*R], or NULL */
    int init_many, mask_many; /* one per image (NPY rows) rather than one for all */
    int npy_input;       /* an init image or mask came from an NPY: no request remakes it */
    char init_hash[65], mask_hash[65];
    uint64_t variation_seed;
    float *out;          /* [N][n] or NULL */
    size_t n;            /* C*R*R */
    /* totals */
    long long evaluations, image_nfe;
} sample_job;

/* "HEX", or "HEX[i]" for row i of an NPY of many. */
static void input_hash(char *buf, size_t size, const char *hex, int many, int idx) {
    if (many) snprintf(buf, size, "%s[%d]", hex, idx);
    else snprintf(buf, size, "%s", hex);
}

static int save_png(sample_job *job, int idx, const edm_sample *s) {
    char path[4200];
    unsigned long long id = job->name_by_seed ? (unsigned long long)job->seeds[idx]
                                              : (unsigned long long)idx;
    if (job->a->subdirs) {
        snprintf(path, sizeof path, "%s/%06llu", job->a->png_dir, id - id % 1000);
        if (make_dirs(path))
            return cli_fail(job->cmd, "cannot create %s: %s", path, strerror(errno));
        snprintf(path + strlen(path), sizeof path - strlen(path), "/%06llu.png", id);
    } else {
        snprintf(path, sizeof path, "%s/%06llu.png", job->a->png_dir, id);
    }
    char init_s[80] = "", mask_s[80] = "";
    if (job->init) input_hash(init_s, sizeof init_s, job->init_hash, job->init_many, idx);
    if (job->mask) input_hash(mask_s, sizeof mask_s, job->mask_hash, job->mask_many, idx);
    /* The Request JSON remakes an image from its seed and the PNGs it names: not one whose
     * noise or inputs came from arrays. */
    const edm_png_info info = {.software = "edm-serve (edm sample) " EDM_VERSION,
                               .model = job->model_name,
                               .model_sha256 = edm_model_sha256(job->model),
                               .level = 6,
                               .no_request = job->latents || job->noise || job->npy_input,
                               .init_image_sha256 = init_s,
                               .mask_sha256 = mask_s,
                               .variation_seed = job->variation_seed,
                               .variation_strength = job->a->variation_strength};
    uint8_t *png = NULL;
    size_t png_len = 0;
    edm_error err;
    if (edm_sample_png(job->plan, s, &info, &png, &png_len, &err) != EDM_OK)
        return cli_fail(job->cmd, "PNG for image %d: %s", idx, err.message);
    int bad = write_file(path, png, png_len);
    free(png);
    if (bad) return cli_fail(job->cmd, "cannot write %s: %s", path, strerror(errno));
    return 0;
}

/* Runs images [first, first+count) as one batch. */
static int run_batch(sample_job *job, int first, int count) {
    edm_sample **samples = calloc((size_t)count, sizeof *samples);
    double *finish = calloc((size_t)count, sizeof *finish);
    int rc = 1;
    edm_error err;
    if (!samples || !finish) {
        cli_fail(job->cmd, "out of memory for a batch of %d", count);
        goto done;
    }
    const int steps = edm_plan_num_steps(job->plan);
    for (int j = 0; j < count; j++) {
        const int idx = first + j;
        edm_sample_init init = {
            .seed = job->seeds[idx],
            .class_label = job->classes ? job->classes[idx] : -1,
            .latents = job->latents ? job->latents + (size_t)idx * job->n : NULL,
            .noise = job->noise ? job->noise + (size_t)idx * (size_t)steps * job->n : NULL,
            .init_image = job->init ? job->init + (job->init_many ? (size_t)idx * job->n : 0) : NULL,
            .mask = job->mask ? job->mask + (job->mask_many ? (size_t)idx * (job->n / (size_t)
                                  edm_model_config(job->model)->img_channels) : 0) : NULL,
            .variation_seed = job->variation_seed,
            .variation_strength = job->a->variation_strength,
        };
        if (edm_sample_new(job->plan, &init, &samples[j], &err) != EDM_OK) {
            cli_fail(job->cmd, "image %d: %s", idx, err.message);
            goto done;
        }
    }
    const double t0 = cli_now();
    for (;;) {
        int evaluated = 0;
        if (edm_denoiser_step(job->den, samples, count, &evaluated, &err) != EDM_OK) {
            cli_fail(job->cmd, "%s", err.message);
            goto done;
        }
        if (evaluated == 0) break;
        job->evaluations++;
        const double now = cli_now();
        for (int j = 0; j < count; j++)
            if (finish[j] == 0 && !edm_sample_pending(samples[j])) finish[j] = now - t0;
    }
    for (int j = 0; j < count; j++) {
        if (edm_sample_status(samples[j], &err) != EDM_OK) {
            cli_fail(job->cmd, "image %d: %s", first + j, err.message);
            goto done;
        }
    }
    for (int j = 0; j < count; j++) {
        const int idx = first + j;
        const edm_sample *s = samples[j];
        job->image_nfe += edm_sample_nfe_done(s);
        printf("image %d seed %llu class %d nfe %d time %.3f s\n", idx,
               (unsigned long long)edm_sample_seed(s), edm_sample_class_label(s),
               edm_sample_nfe_done(s), finish[j]);
        if (job->out) {
            const double *x = edm_sample_x(s);
            float *dst = job->out + (size_t)idx * job->n;
            for (size_t k = 0; k < job->n; k++) dst[k] = (float)x[k];
        }
        if (job->a->png_dir && save_png(job, idx, s)) goto done;
    }
    fflush(stdout);
    rc = 0;
done:
    if (samples)
        for (int j = 0; j < count; j++) edm_sample_free(samples[j]);
    free(samples);
    free(finish);
    return rc;
}

/* Reads a whole file into a new buffer (free with free()); 0 on success. */
static int read_whole(const char *cmd, const char *what, const char *path, uint8_t **buf,
                      size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return cli_fail(cmd, "%s %s: %s", what, path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    uint8_t *b = malloc(cap);
    for (;;) {
        if (!b) {
            fclose(f);
            return cli_fail(cmd, "%s %s: out of memory", what, path);
        }
        n += fread(b + n, 1, cap - n, f);
        if (n < cap || cap > EDM_PNG_MAX_BYTES) break;
        uint8_t *bigger = realloc(b, cap * 2);
        if (!bigger) free(b);
        b = bigger, cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(b);
        return cli_fail(cmd, "%s %s: read error", what, path);
    }
    *buf = b, *len = n;
    return 0;
}

/* An init image (channels C) or a mask (is_mask, 1 channel): a PNG for every image, or an
 * NPY of one or N rows, into a new [rows][channels*R*R] array; *many: one row per image;
 * *npy set when an NPY; hex: SHA-256 of the file. */
static int load_input(const char *cmd, const char *what, const char *path, int C, int R, int N,
                      int is_mask, float **out, int *many, int *npy, char hex[65]) {
    uint8_t *buf = NULL;
    size_t len = 0;
    edm_error err;
    if (read_whole(cmd, what, path, &buf, &len)) return 1;
    edm_sha256_hex(buf, len, hex);
    const size_t n = (size_t)C * R * R;
    size_t plen = strlen(path);
    *many = 0;
    if (plen >= 4 && strcmp(path + plen - 4, ".npy") == 0) {
        free(buf);
        edm_npy a = {0};
        int64_t shape4[4] = {-1, C, R, R}, shape3[3] = {-1, R, R};
        if (cli_npy_read(cmd, what, path, is_mask ? 3 : 4, is_mask ? shape3 : shape4, &a))
            return 1;
        if (a.shape[0] != 1 && a.shape[0] != N) {
            edm_npy_clear(&a);
            return cli_fail(cmd, "%s %s: %lld rows for %d images", what, path,
                            (long long)a.shape[0], N);
        }
        *many = a.shape[0] > 1;
        *npy = 1;
        *out = a.data; /* owned now */
        return 0;
    }
    edm_png_image img;
    enum edm_status st = edm_png_decode(buf, len, 0, &img, &err);
    free(buf);
    if (st != EDM_OK) return cli_fail(cmd, "%s %s: %s", what, path, err.message);
    *out = malloc(n * sizeof **out);
    if (!*out) {
        edm_png_image_clear(&img);
        return cli_fail(cmd, "%s %s: out of memory", what, path);
    }
    if (is_mask) st = edm_png_to_mask(&img, R, *out, &err);
    else st = edm_png_to_init_image(&img, C, R, *out, &err);
    if (st == EDM_OK && (img.W != R || img.H != R))
        fprintf(stderr, "edm sample: %s %s: %dx%d resized to %dx%d (bilinear, antialiased)\n", what,
                path, img.W, img.H, R, R);
    edm_png_image_clear(&img);
    if (st != EDM_OK) return cli_fail(cmd, "%s %s: %s", what, path, err.message);
    return 0;
}

int cmd_sample(int argc, char **argv) {
    static const char *cmd = "sample";
    sample_args a = {0};
    a.class_idx = -1;
    a.batch = 64;
    a.variation_strength = 0;
    edm_sampler_params_default(&a.params);
    cli_backend_args_default(&a.backend);
    sample_options_build();
    cli_parsed parsed;
    int rc = cli_parse_command(cmd, sample_options, argc, argv, &a, &parsed,
                               "--model M (--seeds LIST | --latents Z.npy) [options]",
                               "Generates images with the EDM sampler (Algorithm 2) or, when any of\n"
                               "--solver/--disc/--schedule/--scaling/--alpha is given, the generalised\n"
                               "ablation sampler (the others at heun/edm/linear/none, alpha 1).\n"
                               "From an image: --init-image with --strength (default 0.5, or 1 with\n"
                               "--mask) or --sigma-start; the step count is kept at any strength.");
    if (rc >= 0) return rc;
    if (parsed.n_positional)
        return cli_fail(cmd, "unexpected argument '%s'; see edm sample --help",
                        parsed.positional[0]) + 1;
    if (!a.model) return cli_fail(cmd, "no model given (--model M)") + 1;
    if (cli_given(sample_options, &parsed, "class") &&
        cli_given(sample_options, &parsed, "class-labels"))
        return cli_fail(cmd, "give either --class or --class-labels, not both") + 1;

    if (a.mask && !a.init_image) return cli_fail(cmd, "--mask needs --init-image") + 1;
    if ((cli_given(sample_options, &parsed, "strength") ||
         cli_given(sample_options, &parsed, "sigma-start")) && !a.init_image)
        return cli_fail(cmd, "--strength / --sigma-start need --init-image") + 1;
    if (a.init_image && !a.mask && isnan(a.params.strength) && isnan(a.params.sigma_start))
        a.params.strength = EDM_IMG2IMG_DEFAULT_STRENGTH;
    uint64_t variation_seed = 0;
    if (a.variation_seed) {
        char *end;
        errno = 0;
        variation_seed = strtoull(a.variation_seed, &end, 10);
        if (!*a.variation_seed || *end || errno || *a.variation_seed == '-')
            return cli_fail(cmd, "--variation-seed '%s' is not a seed", a.variation_seed) + 1;
    } else if (a.variation_strength > 0) {
        return cli_fail(cmd, "--variation-strength needs --variation-seed") + 1;
    }

    /* Sampler parameters: options left unset keep the sampler's defaults; an ablation-only
     * option has selected the ablation sampler while parsing. */
    const edm_sampler_params p = a.params;
    edm_error err;
    if (edm_sampler_params_validate(&p, &err) != EDM_OK) return cli_fail(cmd, "%s", err.message) + 1;

    edm_model *model = NULL;
    edm_backend *backend = NULL;
    edm_denoiser *den = NULL;
    edm_plan *plan = NULL;
    edm_npy latents = {0}, labels = {0}, noise = {0};
    float *init = NULL, *mask = NULL;
    int init_many = 0, mask_many = 0, npy_input = 0;
    char init_hash[65] = "", mask_hash[65] = "";
    uint64_t *seeds = NULL;
    int *classes = NULL, n_seeds = 0;
    float *noise_t = NULL, *out = NULL;
    rc = 1;

    /* Images: seeds and/or latents. */
    if (a.seeds || !a.latents) {
        if (cli_parse_seeds(cmd, a.seeds ? a.seeds : "0-63", &seeds, &n_seeds)) goto done;
    }
    if (cli_model_load(cmd, a.model, &model)) goto done;
    const edm_config *c = edm_model_config(model);
    const int C = c->img_channels, R = c->img_resolution;
    const size_t n = (size_t)C * R * R;
    int N = n_seeds;
    if (a.latents) {
        const int64_t shape[4] = {-1, C, R, R};
        if (cli_npy_read(cmd, "--latents", a.latents, 4, shape, &latents)) goto done;
        if (latents.shape[0] < 1 || latents.shape[0] > (1 << 24)) {
            cli_fail(cmd, "--latents %s: %lld images", a.latents, (long long)latents.shape[0]);
            goto done;
        }
        if (seeds && n_seeds != latents.shape[0]) {
            cli_fail(cmd, "--latents %s has %lld images but --seeds lists %d", a.latents,
                     (long long)latents.shape[0], n_seeds);
            goto done;
        }
        N = (int)latents.shape[0];
        if (!seeds) {
            seeds = malloc((size_t)N * sizeof *seeds);
            if (!seeds) {
                cli_fail(cmd, "out of memory");
                goto done;
            }
            for (int i = 0; i < N; i++) seeds[i] = (uint64_t)i;
        }
    }

    /* Classes. */
    if (cli_given(sample_options, &parsed, "class") || a.labels) {
        if (c->label_dim == 0) {
            cli_fail(cmd, "%s given but the model is unconditional",
                     a.labels ? "--class-labels" : "--class");
            goto done;
        }
        classes = malloc((size_t)N * sizeof *classes);
        if (!classes) {
            cli_fail(cmd, "out of memory");
            goto done;
        }
        if (a.labels) {
            const int64_t shape[2] = {N, c->label_dim};
            if (cli_npy_read(cmd, "--class-labels", a.labels, 2, shape, &labels)) goto done;
            for (int i = 0; i < N; i++) {
                const float *row = labels.data + (size_t)i * (size_t)c->label_dim;
                int best = 0;
                for (int k = 1; k < c->label_dim; k++)
                    if (row[k] > row[best]) best = k;
                classes[i] = best;
            }
        } else {
            if (a.class_idx >= c->label_dim) {
                cli_fail(cmd, "--class %d is out of range 0..%d", a.class_idx, c->label_dim - 1);
                goto done;
            }
            for (int i = 0; i < N; i++) classes[i] = a.class_idx;
        }
    }

    /* Per-step noise (steps, N, C, H, W) -> per image [steps][n]. */
    if (a.noise) {
        const int64_t shape[5] = {p.num_steps, N, C, R, R};
        if (cli_npy_read(cmd, "--noise", a.noise, 5, shape, &noise)) goto done;
        noise_t = malloc((size_t)N * (size_t)p.num_steps * n * sizeof *noise_t);
        if (!noise_t) {
            cli_fail(cmd, "out of memory for the noise");
            goto done;
        }
        for (int i = 0; i < p.num_steps; i++)
            for (int m = 0; m < N; m++)
                memcpy(noise_t + ((size_t)m * (size_t)p.num_steps + (size_t)i) * n,
                       noise.data + ((size_t)i * (size_t)N + (size_t)m) * n, n * sizeof(float));
        edm_npy_clear(&noise);
    }

    if (a.init_image &&
        load_input(cmd, "--init-image", a.init_image, C, R, N, 0, &init, &init_many, &npy_input,
                   init_hash))
        goto done;
    if (a.mask &&
        load_input(cmd, "--mask", a.mask, 1, R, N, 1, &mask, &mask_many, &npy_input, mask_hash))
        goto done;

    if (edm_plan_new(model, &p, &plan, &err) != EDM_OK) {
        cli_fail(cmd, "%s", err.message);
        goto done;
    }
    if (a.out) {
        out = malloc((size_t)N * n * sizeof *out);
        if (!out) {
            cli_fail(cmd, "out of memory for --out (%d images)", N);
            goto done;
        }
    }
    if (a.png_dir) {
        if (make_dirs(a.png_dir)) {
            cli_fail(cmd, "--png-dir %s: cannot create the directory: %s", a.png_dir,
                     strerror(errno));
            goto done;
        }
    }
    /* the name edmd serves the model under without NAME=PATH: the metadata's, else the
     * file's name without its extension */
    const char *meta_name = edm_model_metadata(model, "name"), *file = strrchr(a.model, '/');
    file = file ? file + 1 : a.model;
    const char *dot = strrchr(file, '.');
    int file_len = dot && dot != file ? (int)(dot - file) : (int)strlen(file);

    /* generate.py's batching: ceil(N/batch) near-equal consecutive chunks */
    const int num_batches = (N - 1) / a.batch + 1;
    const int base = N / num_batches, extra = N % num_batches;
    const int max_batch = base + (extra ? 1 : 0);
    if (cli_backend_open(cmd, &a.backend, &backend)) goto done;
    if (edm_denoiser_new(model, backend, max_batch, &den, &err) != EDM_OK) {
        cli_fail(cmd, "%s", err.message);
        goto done;
    }
    char desc[512];
    edm_plan_describe(plan, desc, sizeof desc);
    fprintf(stderr, "edm sample: %d images in %d batches of up to %d; sampler %s\n", N,
            num_batches, max_batch, desc);

    sample_job job = {
        .cmd = cmd, .a = &a, .model = model, .plan = plan, .den = den, .N = N,
        .seeds = seeds, .name_by_seed = a.seeds != NULL || !a.latents, .classes = classes,
        .latents = a.latents ? latents.data : NULL, .noise = noise_t, .out = out, .n = n,
        .init = init, .mask = mask, .init_many = init_many, .mask_many = mask_many,
        .npy_input = npy_input, .variation_seed = variation_seed,
    };
    if (meta_name) snprintf(job.model_name, sizeof job.model_name, "%s", meta_name);
    else snprintf(job.model_name, sizeof job.model_name, "%.*s", file_len, file);
    memcpy(job.init_hash, init_hash, sizeof init_hash);
    memcpy(job.mask_hash, mask_hash, sizeof mask_hash);
    const double t0 = cli_now();
    for (int b = 0, first = 0; b < num_batches; b++) {
        const int count = base + (b < extra ? 1 : 0);
        if (run_batch(&job, first, count)) goto done;
        first += count;
    }
    const double dt = cli_now() - t0;
    printf("sampled %d images in %.3f s: %.3f images/s, %.3f ms per NFE (%lld batched "
           "evaluations), %.3f ms per image-NFE\n",
           N, dt, N / dt, 1e3 * dt / (double)job.evaluations, job.evaluations,
           1e3 * dt / (double)job.image_nfe);
    if (a.out) {
        const int64_t shape[4] = {N, C, R, R};
        if (edm_npy_write(a.out, out, 4, shape, &err) != EDM_OK) {
            cli_fail(cmd, "--out %s: %s", a.out, err.message);
            goto done;
        }
    }
    rc = 0;

done:
    free(init);
    free(mask);
    free(out);
    free(noise_t);
    free(classes);
    free(seeds);
    edm_npy_clear(&noise);
    edm_npy_clear(&labels);
    edm_npy_clear(&latents);
    edm_plan_free(plan);
    edm_denoiser_free(den);
    edm_backend_free(backend);
    edm_model_free(model);
    return rc;
}
