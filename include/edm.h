/*
 * edm.h - the public API of the EDM engine (libedm).
 *
 * This header is the only way the daemon (server/) and the tools reach the engine (core/).
 * It uses plain C types only: no CUDA, libmicrohttpd, jansson or libpng types leak out.
 *
 * Conventions
 *  - Every fallible function returns an enum edm_status and, when err is not NULL, fills
 *    err->message with a sentence naming the problem, and err->field with the name of the
 *    parameter at fault where there is one (so callers need not parse the text). EDM_OK is 0.
 *  - Objects made by edm_X_new/edm_X_load are freed by edm_X_free; edm_X_free(NULL) is a no-op.
 *  - Images are NCHW float arrays, pixels row-major inside a channel (spec: edm-spec.md).
 *  - Thread safety: a model is immutable after loading and may be shared by any number of
 *    threads. A backend and a denoiser belong to one thread at a time.
 */
#ifndef EDM_H
#define EDM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of edm-serve: the engine, `edm` and `edmd` (also in each PNG's Request text). */
#define EDM_VERSION "0.1.0"

/* ---------------------------------------------------------------------------------------- */
/* Errors                                                                                     */

enum edm_status {
    EDM_OK = 0,
    EDM_EINVAL,      /* a caller-supplied value is out of range or inconsistent */
    EDM_EIO,         /* a file could not be opened, read or written */
    EDM_EFORMAT,     /* a file is malformed (model file, NPY, configuration) */
    EDM_ENOMEM,      /* host or device memory exhausted */
    EDM_EDEVICE,     /* the compute device failed or is unavailable */
    EDM_EUNSUPPORTED /* valid request this build or backend cannot serve */
};

typedef struct edm_error {
    enum edm_status status;
    /* The parameter at fault, or "": for sampler parameters the name in the parameter table
     * ("steps", "S_churn"), for others the struct field ("class_label"). */
    char field[32];
    char message[512];
} edm_error;

/* A short lower-case name for a status ("invalid argument", ...). Never NULL. */
const char *edm_status_name(enum edm_status status);

/* Programming errors. EDM_ASSERT(cond) states an invariant that only a bug can break, never
 * a check of input (input gets a status: DESIGN.md). It stays on in every build (NDEBUG does
 * not remove it): when cond is false it prints "FILE:LINE: FUNCTION: assertion failed: cond"
 * on stderr and aborts. The engine, edmd and the tools all use it. */
#define EDM_ASSERT(cond) ((cond) ? (void)0 : edm_assert_fail(__FILE__, __LINE__, __func__, #cond))
void edm_assert_fail(const char *file, int line, const char *func, const char *cond)
    __attribute__((noreturn, cold));

/* ---------------------------------------------------------------------------------------- */
/* Models (edm-safetensors/1, spec section 0)                                                */

enum edm_precond { EDM_PRECOND_VP, EDM_PRECOND_VE, EDM_PRECOND_IDDPM, EDM_PRECOND_EDM };
enum edm_arch { EDM_ARCH_SONG, EDM_ARCH_DHARIWAL };
enum edm_embedding { EDM_EMBED_POSITIONAL, EDM_EMBED_FOURIER };
enum edm_encoder { EDM_ENCODER_STANDARD, EDM_ENCODER_SKIP, EDM_ENCODER_RESIDUAL };
enum edm_decoder { EDM_DECODER_STANDARD, EDM_DECODER_SKIP };

#define EDM_MAX_LEVELS 8
#define EDM_MAX_ATTN_RES 8

/* The full configuration of a model, every default filled in. */
typedef struct edm_config {
    enum edm_precond precond;
    enum edm_arch arch;
    int img_resolution, img_channels, label_dim, use_fp16;
    /* preconditioner scalars (only those of `precond` are meaningful) */
    double beta_d, beta_min, M, epsilon_t; /* vp (M also iddpm) */
    double C_1, C_2;                       /* iddpm */
    double sigma_min, sigma_max;           /* ve and edm kwargs; vp/iddpm: derived (fp32) */
    double sigma_data;                     /* edm */
    /* network */
    int model_channels, channel_mult_emb, num_blocks, augment_dim;
    int num_levels, channel_mult[EDM_MAX_LEVELS];
    int num_attn_res, attn_resolutions[EDM_MAX_ATTN_RES];
    double dropout, label_dropout; /* training only; kept for `edm info` */
    enum edm_embedding embedding_type; /* SongUNet only */
    int channel_mult_noise;            /* SongUNet only */
    enum edm_encoder encoder_type;     /* SongUNet only */
    enum edm_decoder decoder_type;     /* SongUNet only */
    int resample_filter_len, resample_filter[4]; /* SongUNet only: [1,1] or [1,3,3,1] */
} edm_config;

typedef struct edm_model edm_model;

/* Loads and validates a model file. Every tensor name, dtype, shape and offset is checked
 * against the configuration before use. Returns a new model (free with edm_model_free). */
enum edm_status edm_model_load(const char *path, edm_model **out, edm_error *err);
void edm_model_free(edm_model *model);

/* A model with random weights of a sensible scale for cfg (benchmarks and tests; the
 * buffers - resample filters, iDDPM's u - are computed as the official constructors do).
 * Returns a new model (free with edm_model_free). */
enum edm_status edm_model_new_random(const edm_config *cfg, uint64_t seed, edm_model **out,
                                     edm_error *err);
/* Fills cfg with a published network's configuration: "cifar10-ddpmpp" (edm-cifar10-32x32-
 * cond-vp), "cifar10-ncsnpp" (-cond-ve), "ffhq64-ddpmpp" (edm-ffhq-64x64-uncond-vp),
 * "imagenet64-adm" (edm-imagenet-64x64-cond-adm). */
enum edm_status edm_config_preset(const char *name, edm_config *cfg, edm_error *err);
/* Writes cfg as the edm_config JSON of spec 0. Returns a new string (free with free()). */
char *edm_config_to_json(const edm_config *cfg);

/* Borrowed pointer, valid while the model lives. */
const edm_config *edm_model_config(const edm_model *model);
/* A metadata string of the file (for example "name", "description"), or NULL. Borrowed. */
const char *edm_model_metadata(const edm_model *model, const char *key);
/* The SHA-256 of the model file's bytes, 64 lower-case hex digits (a random-weight model: of
 * the file it was built as). Borrowed. */
const char *edm_model_sha256(const edm_model *model);
int64_t edm_model_param_count(const edm_model *model);
/* Floating-point operations of one network evaluation of one image (multiply-add = 2). */
double edm_model_flops_per_image(const edm_model *model);
/* Activation workspace bytes per image in one fp32 forward pass (weights excluded). */
size_t edm_model_workspace_bytes_per_image(const edm_model *model);
/* The network's own sigma range (net.sigma_min / net.sigma_max; may be +inf). */
double edm_model_sigma_min(const edm_model *model);
double edm_model_sigma_max(const edm_model *model);
/* net.round_sigma: identity except iDDPM, which snaps to the nearest u[j]. */
double edm_model_round_sigma(const edm_model *model, double sigma);

/* ---------------------------------------------------------------------------------------- */
/* Backends                                                                                   */

/*
 * Backends come from a registry (core/backend.c): each entry has a name ("cuda", "cpu"), says
 * how many usable devices it sees now and makes instances. "auto" takes the first entry with
 * a device, in registry order (the GPU before the CPU). Every build lists the same entries;
 * one this build left out has compiled = 0, and creating it says how to build it in.
 */
enum edm_precision { EDM_PRECISION_FP32, EDM_PRECISION_TF32, EDM_PRECISION_FP16, EDM_PRECISION_BF16 };

typedef struct edm_backend_options {
    const char *name;             /* "auto" (the default; NULL too) or a registry name; borrowed */
    int device;                   /* device ordinal within the backend (the CPU has one: 0) */
    enum edm_precision precision; /* CPU: fp32, or bf16 (conv operands; oneDNN) */
    int threads;                  /* CPU threads; 0 = all cores */
} edm_backend_options;

void edm_backend_options_default(edm_backend_options *opts);

typedef struct edm_backend_info {
    const char *name; /* static */
    int compiled;     /* 0: this build does not have it */
    int devices;      /* usable devices now; 0 = unavailable */
} edm_backend_info;

/* The number of registry entries, and entry i (0 <= i < count) in the order auto tries them. */
int edm_backend_registry_count(void);
enum edm_status edm_backend_registry_get(int i, edm_backend_info *out, edm_error *err);
/* The entry a name selects ("auto" resolves to the first with a device). EDM_EINVAL for an
 * unknown name (the message lists the known ones), EDM_EDEVICE when auto finds no device. */
enum edm_status edm_backend_lookup(const char *name, edm_backend_info *out, edm_error *err);

typedef struct edm_backend edm_backend;

/* Creates a backend on opts->device of the entry opts->name selects.
 * Returns a new backend (free with edm_backend_free). */
enum edm_status edm_backend_new(const edm_backend_options *opts, edm_backend **out, edm_error *err);
void edm_backend_free(edm_backend *backend);
/* A one-line description, e.g. "cpu (OpenBLAS, 2 threads, fp32)". Borrowed. */
const char *edm_backend_describe(const edm_backend *backend);
/* Its registry name ("cpu", "cuda"). Static. */
const char *edm_backend_name(const edm_backend *backend);
/* Non-zero once the device has failed unrecoverably (the process must restart to use it). */
int edm_backend_device_lost(const edm_backend *backend);
/* Free and total bytes of the backend's device memory now; EDM_EUNSUPPORTED where it is not
 * known (host memory). */
enum edm_status edm_backend_mem_info(const edm_backend *backend, size_t *free_bytes,
                                     size_t *total_bytes, edm_error *err);
/* A named counter of the backend since its creation, for tests and benchmarks (CUDA:
 * "graph_captures", "graph_replays", "graph_fallbacks"); EDM_EUNSUPPORTED when it has none of
 * that name. */
enum edm_status edm_backend_counter(const edm_backend *backend, const char *name, long *value,
                                    edm_error *err);

enum edm_status edm_precision_parse(const char *s, enum edm_precision *out);
const char *edm_precision_name(enum edm_precision p);

/* ---------------------------------------------------------------------------------------- */
/* Denoiser: a model bound to a backend with a workspace for up to max_batch images.         */

typedef struct edm_denoiser edm_denoiser;

/* Uploads the weights and sizes the workspace for max_batch images.
 * The model must outlive the denoiser. Returns a new denoiser (free with edm_denoiser_free). */
enum edm_status edm_denoiser_new(const edm_model *model, edm_backend *backend, int max_batch,
                                 edm_denoiser **out, edm_error *err);
void edm_denoiser_free(edm_denoiser *den);
int edm_denoiser_max_batch(const edm_denoiser *den);
const edm_model *edm_denoiser_model(const edm_denoiser *den);

/* D(x; sigma) for n <= max_batch images, exactly as the official preconditioner's forward:
 *   x       [n, C, R, R] fp32
 *   sigma   [n]          (rounded to fp32 before use, as the reference does)
 *   labels  [n, label_dim] one-hot (or any) fp32, or NULL (= zeros, as the reference)
 *   augment [n, augment_dim] fp32, or NULL (map_augment skipped)
 *   out     [n, C, R, R] fp32
 * All arrays are host memory. */
enum edm_status edm_denoiser_eval(edm_denoiser *den, int n, const float *x, const double *sigma,
                                  const float *labels, const float *augment, float *out,
                                  edm_error *err);

/* ---------------------------------------------------------------------------------------- */
/* Randomness: Philox4x32-10 keyed by the seed, counter (purpose, step, index); Box-Muller.  */
/* One image's latents, label and step noise depend only on its seed.                        */

enum edm_rng_purpose {
    EDM_RNG_LATENTS = 1,    /* the initial noise n (also img2img's x = y + sigma_start n) */
    EDM_RNG_LABEL = 2,
    EDM_RNG_STEP_NOISE = 3, /* churn noise eps_i */
    EDM_RNG_KNOWN_NOISE = 4,   /* inpainting: the known region's noise n_i, step = visit i */
    EDM_RNG_RESAMPLE_NOISE = 5 /* inpainting: RePaint's jump-back noise, step = jump number */
};

/* Fills out[0..n) with N(0,1) samples for (seed, purpose, step). */
void edm_rng_normal(uint64_t seed, uint32_t purpose, uint32_t step, float *out, size_t n);
/* A uniform integer in [0, bound) for (seed, purpose). bound > 0. */
uint32_t edm_rng_uint(uint64_t seed, uint32_t purpose, uint32_t bound);

/* ---------------------------------------------------------------------------------------- */
/* Samplers (spec section 3). Each image is its own state machine, so images at different   */
/* steps, with different settings, can share one batched network evaluation.                */

enum edm_solver { EDM_SOLVER_EULER, EDM_SOLVER_HEUN };
enum edm_disc { EDM_DISC_VP, EDM_DISC_VE, EDM_DISC_IDDPM, EDM_DISC_EDM };
enum edm_schedule { EDM_SCHEDULE_VP, EDM_SCHEDULE_VE, EDM_SCHEDULE_LINEAR };
enum edm_scaling { EDM_SCALING_VP, EDM_SCALING_NONE };

typedef struct edm_sampler_params {
    int num_steps;           /* N >= 2; default 18 */
    double sigma_min;        /* NaN = the sampler's default */
    double sigma_max;        /* NaN = the sampler's default */
    double rho;              /* 7 */
    double S_churn, S_min, S_max, S_noise; /* 0, 0, inf, 1 */
    int ablation;            /* 0: edm_sampler (Algorithm 2); 1: ablation_sampler */
    enum edm_solver solver;  /* ablation only; default heun */
    enum edm_disc disc;      /* ablation only; default edm */
    enum edm_schedule schedule; /* ablation only; default linear */
    enum edm_scaling scaling;   /* ablation only; default none */
    double alpha;            /* ablation only; default 1 */
    double epsilon_s, C_1, C_2; /* ablation only; 1e-3, 0.001, 0.008 */
    int M;                   /* ablation only; 1000 */
    /* Starting from an image (edm_sample_init.init_image); rows of the table below marked
     * `optional`. At most one of strength / sigma_start; both NaN: the full schedule
     * (strength 1). The step count stays num_steps: the plan's N steps run from sigma_start
     * (instead of sigma_max) down to sigma_min, so NFE is not cut by a low strength. */
    double strength;    /* (0, 1]: sigma_start = (lo^(1/rho) + strength (hi^(1/rho) -
                           lo^(1/rho)))^rho over the resolved [sigma_min, sigma_max]; NaN */
    double sigma_start; /* (sigma_min, sigma_max] as resolved; NaN */
    /* RePaint resampling (Lugmayr et al. 2022) for inpainting: after the steps that reach
     * levels resample_jump, 2 resample_jump, ... (< N), the image is renoised back
     * resample_jump levels and those steps run again, resample_count - 1 times each.
     * 0 / 1: off. Meant for inpainting, but a plan's setting: every image of the plan
     * resamples (so the plan's NFE is each image's). The extra evaluations are counted in
     * edm_sampler_params_nfe. */
    int resample_jump;  /* 0 (off) or 1..num_steps-1 */
    int resample_count; /* 1 (off) .. EDM_MAX_RESAMPLE_COUNT */
} edm_sampler_params;

#define EDM_MAX_RESAMPLE_COUNT 100
/* The strength `edm sample --init-image` (and the HTTP API) uses for img2img / variations of
 * an image when neither strength nor sigma_start is given and there is no mask. */
#define EDM_IMG2IMG_DEFAULT_STRENGTH 0.5

/* Every field at its default: the table's (below), then ablation 0 and generate.py's
 * constants epsilon_s, C_1, C_2, M. */
void edm_sampler_params_default(edm_sampler_params *p);
/* Checks every table row's range, then sigma_min < sigma_max and S_min <= S_max, then the
 * fields no interface sets; err->field names the bad parameter (the table's name). */
enum edm_status edm_sampler_params_validate(const edm_sampler_params *p, edm_error *err);
/* Number of network evaluations per image: N (euler) or 2N-1 (heun) for the N steps, plus
 * those of the steps RePaint resampling runs again (each Heun step 2 but the last, 1). An
 * image whose mask has nothing to repaint takes none (edm_sample_nfe_done says 0). */
int edm_sampler_params_nfe(const edm_sampler_params *p);

/*
 * The sampler parameters a user sets, one row each. This table is the one list behind the
 * `edm sample` options, the request fields of the HTTP API, the validation above and the
 * settings written into PNG text (edm_plan_describe); the OpenAPI document and the web form
 * are checked against it (tests/server/test_params.sh, which reads `edm params --json`).
 * The other fields of edm_sampler_params (ablation, epsilon_s, C_1, C_2, M) are constants of
 * generate.py that no interface sets.
 */
enum edm_param_type {
    EDM_PARAM_INT,    /* an int field */
    EDM_PARAM_NUMBER, /* a double field */
    EDM_PARAM_CHOICE  /* an enum field: one of choices[] */
};

typedef struct edm_sampler_param {
    const char *name;  /* "S_churn": the request field, generate.py's option (--S_churn), the
                          key in PNG text and in edm_error.field; `edm` also takes --S-churn */
    const char *alias; /* generate.py's keyword argument where it differs ("num_steps",
                          "discretization"), else NULL; `edm` takes it as an option too */
    enum edm_param_type type;
    int ablation_only; /* 1: only ablation_sampler has it, and setting it selects that sampler */
    double min, max;   /* INT and NUMBER: the valid range, both ends included except below */
    int min_open;      /* NUMBER: min itself is excluded (rho > 0) */
    int inf_ok;        /* NUMBER: +inf is accepted (written "inf"); otherwise values are finite */
    double def;        /* the default (CHOICE: the enum value); NaN: none here, the sampler
                          picks it (sigma_min / sigma_max depend on the sampler and disc), or
                          (optional rows) unset */
    const char *const *choices; /* CHOICE: the names in enum order, NULL-terminated */
    const char *doc;            /* one line, without the default */
    size_t offset;              /* of the field in edm_sampler_params */
    int optional;      /* 1: a setting of a start from an image (strength, sigma_start,
                          resample_jump, resample_count): the plan's text (edm_plan_describe,
                          edm_plan_record_json) holds it only while it is in effect, so the
                          text of a plan from noise is as it always was */
} edm_sampler_param;

#define EDM_SAMPLER_PARAM_COUNT 17
extern const edm_sampler_param edm_sampler_param_table[EDM_SAMPLER_PARAM_COUNT];

/* The row whose name or alias is `name`, or NULL. */
const edm_sampler_param *edm_sampler_param_find(const char *name);
/* Sets row d of p to a number (INT: an integral value; not for CHOICE rows). The range is
 * left to edm_sampler_params_validate; an ablation-only row selects the ablation sampler. */
enum edm_status edm_sampler_param_set(edm_sampler_params *p, const edm_sampler_param *d,
                                      double value, edm_error *err);
/* The same from text: a number ("0.5", "1e-3", "inf") or one of the row's choices. */
enum edm_status edm_sampler_param_parse(edm_sampler_params *p, const edm_sampler_param *d,
                                        const char *text, edm_error *err);
/* Row d's value in p as a double (CHOICE: the enum value). */
double edm_sampler_param_get(const edm_sampler_params *p, const edm_sampler_param *d);
/* Writes a value of row d as text that edm_sampler_param_parse reads back: "18", "0.002",
 * "inf", "heun"; NaN (no default) as "none". Returns the length snprintf would. */
int edm_sampler_param_format(const edm_sampler_param *d, double value, char *buf, size_t size);
/* Writes a CHOICE row's names joined by sep ("euler, heun"). Returns the length snprintf would. */
int edm_sampler_param_choices(const edm_sampler_param *d, const char *sep, char *buf, size_t size);

enum edm_status edm_solver_parse(const char *s, enum edm_solver *out);
enum edm_status edm_disc_parse(const char *s, enum edm_disc *out);
enum edm_status edm_schedule_parse(const char *s, enum edm_schedule *out);
enum edm_status edm_scaling_parse(const char *s, enum edm_scaling *out);
const char *edm_solver_name(enum edm_solver v);
const char *edm_disc_name(enum edm_disc v);
const char *edm_schedule_name(enum edm_schedule v);
const char *edm_scaling_name(enum edm_scaling v);

/* A sampler plan: the time steps for one model and one set of parameters, shared by images. */
typedef struct edm_plan edm_plan;
enum edm_status edm_plan_new(const edm_model *model, const edm_sampler_params *p, edm_plan **out,
                             edm_error *err);
void edm_plan_free(edm_plan *plan);
int edm_plan_num_steps(const edm_plan *plan);
int edm_plan_nfe(const edm_plan *plan);
/* sigma(t_i) for i = 0..N (the last is 0). */
double edm_plan_sigma(const edm_plan *plan, int i);
/* The settings the plan runs, one line for logs and PNG text: the sampler ("edm" or
 * "ablation"), then name=value for steps, nfe and each table row that sampler has, with
 * sigma_min / sigma_max as resolved (defaults and the network's range applied), e.g.
 * "edm steps=18 nfe=35 sigma_min=0.002 sigma_max=80 rho=7 S_churn=0 ...". Returns the
 * length snprintf would. */
int edm_plan_describe(const edm_plan *plan, char *buf, size_t size);
/* The resolved sigma range of the plan (the values edm_plan_describe writes). */
void edm_plan_sigma_range(const edm_plan *plan, double *sigma_min, double *sigma_max);

/* What names one image besides its plan: the model, the image's own seed and class, and
 * what it started from. */
typedef struct edm_record {
    const char *model;        /* the model's name (as the API serves it) */
    const char *model_sha256; /* edm_model_sha256 of the model */
    uint64_t seed;
    int class_label; /* -1: none (unconditional) */
    /* A start from an image: the SHA-256 (64 hex digits) of the init image's and the mask's
     * PNG files, or NULL / "" for none. */
    const char *init_image_sha256, *mask_sha256;
    /* Variations from seeds (edm_sample_init): written when variation_strength > 0. */
    uint64_t variation_seed;
    double variation_strength;
} edm_record;
/* One image's complete settings as a JSON object that is also a generation request of the
 * HTTP API reproducing it (PNG text "Request"): model, model_sha256, seed, class_label, every
 * sampler setting the plan runs with defaults filled in (sigma_min / sigma_max resolved; the
 * ablation-only ones only for the ablation sampler, whose choice they imply; the optional ones
 * while in effect: strength or the sigma_start given, resample_jump and resample_count while
 * resampling), the inputs' init_image_sha256 / mask_sha256 (the request must send those
 * files as init_image / mask) and variation_seed / variation_strength when set, nfe and
 * edm_serve_version. Numbers are written so that they read back exactly; S_max's infinity is
 * "inf". Returns the length snprintf would (buf may be too small: then truncated). */
int edm_plan_record_json(const edm_plan *plan, const edm_record *rec, char *buf, size_t size);
/* The parameter table as a JSON array, one object per row in JSON Schema words (name, alias,
 * type, minimum or exclusiveMinimum, maximum, inf_ok, enum, default, ablation_only, doc), as
 * `edm params --json` prints it. indent: spaces per level, 0 for one line. Returns a new
 * string (free with free()), or NULL when out of memory. */
char *edm_sampler_param_table_json(int indent);
/* Row d's type in JSON Schema words: "integer", "number" or "string" (a choice). Static. */
const char *edm_sampler_param_type_name(const edm_sampler_param *d);

/* One image being sampled. The plan must outlive it. */
typedef struct edm_sample edm_sample;

typedef struct edm_sample_init {
    uint64_t seed;
    int class_label;        /* -1: drawn from the seed (conditional models), ignored otherwise */
    const float *latents;   /* [C,R,R] N(0,1) or NULL: drawn from the seed */
    const float *noise;     /* [N][C,R,R] per-step N(0,1) or NULL: drawn from the seed; borrowed,
                               must outlive the sample */
    /* Starting from an image (img2img / SDEdit): x_0 = s(t_0) (y + sigma_0 n), n the latents
     * (seed's, slerped with variation_seed's, or given), sigma_0 the plan's first level
     * (sigma_start). Copied: need not outlive edm_sample_new. */
    const float *init_image; /* [C,R,R] y in the data range [-1,1], or NULL: from noise */
    /* Inpainting (needs init_image): [R,R] in [0,1], 1 = repaint, 0 = keep, between = blend.
     * Before every network evaluation at level sigma the input becomes
     *   m x + (1 - m) s (y + sigma n_v)      (n_v: EDM_RNG_KNOWN_NOISE, step = visit v)
     * and the final image m x + (1 - m) y, so pixels with m = 0 are exactly y. A mask that is
     * 0 everywhere finishes at once with x = y and no network evaluation. NULL: repaint all. */
    const float *mask;
    /* Variations from seeds: the latents are slerp(n(seed), n(variation_seed), t) with
     * t = variation_strength in [0,1] (0: off; 1: variation_seed's latents); spherical, so
     * the mix keeps the norm that a plain linear mix shrinks. Step, known-region and class
     * draws stay the seed's. Ignored with `latents`. */
    uint64_t variation_seed;
    double variation_strength;
} edm_sample_init;

/* slerp(a, b, t) of two latents of n values, computed in fp64 per the angle of the whole
 * vectors: (sin((1-t) w) a + sin(t w) b) / sin w, w = angle(a, b); linear where w ~ 0. */
void edm_latents_slerp(const float *a, const float *b, size_t n, double t, float *out);

/* Returns a new sample (free with edm_sample_free). */
enum edm_status edm_sample_new(const edm_plan *plan, const edm_sample_init *init, edm_sample **out,
                               edm_error *err);
void edm_sample_free(edm_sample *s);
/* 1 when the image needs another network evaluation, 0 when it is finished or failed. */
int edm_sample_pending(const edm_sample *s);
/* EDM_OK, or why this image failed (its network output was not finite, say); err gets the
 * message. A failed image is not pending; the other images of its batches are not affected. */
enum edm_status edm_sample_status(const edm_sample *s, edm_error *err);
/* The input of the next network evaluation: x [C,R,R] fp32 and sigma (fp64; the denoiser
 * rounds it to fp32). Only while pending. */
void edm_sample_next_input(const edm_sample *s, float *x, double *sigma);
/* Consumes D(x; sigma) of the input above [C,R,R] and advances the state machine. */
void edm_sample_advance(edm_sample *s, const float *denoised);
int edm_sample_class_label(const edm_sample *s); /* -1 for unconditional models */
uint64_t edm_sample_seed(const edm_sample *s);
int edm_sample_step(const edm_sample *s);       /* completed steps, 0..N */
int edm_sample_nfe_done(const edm_sample *s);   /* network evaluations consumed so far */
/* The current x [C,R,R] in fp64 (the final image once finished). Borrowed. */
const double *edm_sample_x(const edm_sample *s);

/* Runs up to den's max_batch pending samples of `samples` through one batched network
 * evaluation and advances each. Samples may come from different plans (same model).
 * *evaluated gets the number of images in the batch (0 when none were pending).
 * Failures are isolated: an image whose own input or output is not finite fails alone
 * (edm_sample_status) and the others advance exactly as without it; the call itself fails
 * only when the whole batch did (the device, memory). */
enum edm_status edm_denoiser_step(edm_denoiser *den, edm_sample *const *samples, int n,
                                  int *evaluated, edm_error *err);

/* ---------------------------------------------------------------------------------------- */
/* Images and files                                                                           */

/* uint8 conversion as the official generate.py: clip(x*127.5 + 128, 0, 255) truncated,
 * written HWC. x is [C,H,W]. */
void edm_image_to_u8(const double *x, int C, int H, int W, uint8_t *hwc);
void edm_image_to_u8_f32(const float *x, int C, int H, int W, uint8_t *hwc);

/* Encodes a PNG (grayscale for 1 channel, RGB for 3) with tEXt chunks keys[i]=values[i].
 * level: zlib level 0..9. On success *png is a new buffer (free with free()). */
enum edm_status edm_png_encode(const uint8_t *hwc, int W, int H, int C, const char *const *keys,
                               const char *const *values, int n_text, int level, uint8_t **png,
                               size_t *png_len, edm_error *err);

/* A finished sample as a PNG whose text says how to make it again: Software, Model, Seed,
 * Class, Steps, Sampler (edm_plan_describe), Request (edm_plan_record_json, which POSTed to
 * edmd with the same input files reproduces the pixels; left out when info->no_request), and
 * for a start from an image or a variation init_image_sha256, mask_sha256 and variation
 * ("variation_seed=S variation_strength=T"). s must come from plan. On success *png is a new
 * buffer (free with free()). */
typedef struct edm_png_info {
    const char *software;     /* "edm-serve edmd" */
    const char *model;        /* the model's name */
    const char *model_sha256; /* edm_model_sha256 */
    int level;                /* zlib level 0..9 */
    int no_request;           /* 1: no Request text (a request cannot remake it: the noise
                                 came from files, or the inputs were NPY arrays) */
    /* the inputs, as edm_record has them (NULL / 0: none); the text of the hashes may be
       another form ("HEX[i]": row i of an NPY) when no_request */
    const char *init_image_sha256, *mask_sha256;
    uint64_t variation_seed;
    double variation_strength;
    /* further text after those: at most EDM_PNG_MAX_EXTRA */
    const char *const *extra_keys, *const *extra_values;
    int n_extra;
} edm_png_info;
#define EDM_PNG_MAX_EXTRA 8
enum edm_status edm_sample_png(const edm_plan *plan, const edm_sample *s, const edm_png_info *info,
                               uint8_t **png, size_t *png_len, edm_error *err);

/* PNG decoding (core/io/png_read.c), for init images and masks. Strict limits: at most
 * EDM_PNG_MAX_SIDE pixels a side (or the caller's max_side, below), EDM_PNG_MAX_PIXELS pixels
 * and EDM_PNG_MAX_BYTES of input, every chunk within the input and an ancillary chunk (text,
 * metadata) at most 1 MiB, checked before libpng reads any of it;
 * 1, 2, 4, 8 or 16-bit gray, gray+alpha, RGB, RGBA or palette, interlaced or not. The colour
 * is as stored (not blended with alpha); alpha (an alpha channel, or tRNS) comes apart.
 * Anything else, or a malformed file, is EDM_EFORMAT. */
#define EDM_PNG_MAX_SIDE 4096
#define EDM_PNG_MAX_PIXELS (4096 * 4096)
#define EDM_PNG_MAX_BYTES (64u << 20)
typedef struct edm_png_image {
    int W, H, C;   /* C: 1 (gray) or 3 (RGB), as stored (palette -> RGB) */
    float *data;   /* [C,H,W] in [0,1]: value / (2^bit_depth - 1); owned */
    float *alpha;  /* [H,W] in [0,1] (1 = opaque) when the PNG has alpha, else NULL; owned */
} edm_png_image;
/* Decodes png[0..len). max_side: the caller's own cap on either side (a server's, say);
 * 0 is EDM_PNG_MAX_SIDE, and a larger value is clamped to EDM_PNG_MAX_SIDE (the engine's
 * limits always hold). A file past the cap is refused from its header, before any pixel
 * memory is allocated: EDM_EFORMAT with err->field "max_side" and a message naming its
 * size and the cap. On success *out holds a new image (free with edm_png_image_clear). */
enum edm_status edm_png_decode(const uint8_t *png, size_t len, size_t max_side,
                               edm_png_image *out, edm_error *err);
void edm_png_image_clear(edm_png_image *img);

/* Resamples [C,H,W] to [C,R,R] with a separable triangle (bilinear) filter whose support is
 * widened by the scale factor when shrinking (antialiased, as PIL's Image.resize BILINEAR);
 * pixel centres aligned ((i + 0.5) / R * H - 0.5). Same size: an exact copy. */
void edm_image_resize(const float *src, int C, int H, int W, int R, float *dst);

/* A decoded PNG as a model's input, resized to R x R (edm_image_resize) when its size
 * differs: init images [C,R,R] in [-1,1] (2 u - 1) with RGB -> gray by luminance
 * 0.299 R + 0.587 G + 0.114 B (ITU-R 601, PIL's "L") and gray -> RGB by replication, alpha
 * ignored; masks [R,R] in [0,1], 1 = repaint: where the PNG has transparent pixels (alpha < 1
 * anywhere), 1 - alpha (OpenAI's convention: transparent = repaint), otherwise the luminance
 * (white = repaint; an opaque RGBA mask, as a canvas exports, counts by its colour).
 * out has room for C*R*R / R*R floats. */
enum edm_status edm_png_to_init_image(const edm_png_image *img, int C, int R, float *out,
                                      edm_error *err);
enum edm_status edm_png_to_mask(const edm_png_image *img, int R, float *out, edm_error *err);
/* 1 when the image has alpha and some pixel is not fully opaque (its mask is 1 - alpha). */
int edm_png_transparent(const edm_png_image *img);

/* SHA-256 of data, as 64 lower-case hex digits and a NUL (PNG text: the init image's and the
 * mask's hashes). */
void edm_sha256_hex(const void *data, size_t len, char hex[65]);

/* NPY v1.0 float32 / little-endian / C-order arrays (spec section 0). */
#define EDM_NPY_MAX_DIMS 8
typedef struct edm_npy {
    int ndim;
    int64_t shape[EDM_NPY_MAX_DIMS];
    float *data; /* owned */
} edm_npy;
/* Reads a float32 array (also accepts float64, converted). Free with edm_npy_clear. */
enum edm_status edm_npy_read(const char *path, edm_npy *out, edm_error *err);
enum edm_status edm_npy_write(const char *path, const float *data, int ndim, const int64_t *shape,
                              edm_error *err);
void edm_npy_clear(edm_npy *a);
int64_t edm_npy_numel(const edm_npy *a);

#ifdef __cplusplus
}
#endif
#endif /* EDM_H */
