/*
 * net.h - the network description shared by model loading, weight binding and the forward pass.
 *
 * A network is built from an edm_config alone (net_build in net_song.c / net_dhariwal.c):
 * the modules in execution order, and a parameter list in state_dict order (spec 1.10) with
 * every tensor's name and expected shape. Loading a model validates the file against that
 * list; binding a model to a backend fills each parameter's edm_tensor with backend memory;
 * the forward pass is a straight sequence of ops over the modules.
 */
#ifndef EDM_NET_H
#define EDM_NET_H

#include "arena.h"
#include "edm.h"
#include "ops.h"

#define EDM_NAME_MAX 96

/* One tensor of the state dict. */
typedef struct edm_param {
    char name[EDM_NAME_MAX];
    int ndim;
    int shape[4];
    int act_dtype;     /* stored in the backend's activation dtype (conv weights), else F32 */
    int fourier_freqs; /* map_noise.freqs: bound as fl32(2*pi) * freqs, as the reference */
    edm_tensor *t;     /* where the bound tensor goes (points into the owning layer) */
} edm_param;

typedef struct edm_linear {
    edm_tensor weight, bias;
    int in, out, has_bias;
} edm_linear;

typedef struct edm_conv {
    edm_tensor weight, bias, filter;
    int in, out, kernel, up, down, fused, has_bias, filter_len;
} edm_conv;

typedef struct edm_gnorm {
    edm_tensor weight, bias;
    int channels, groups;
    float eps;
} edm_gnorm;

typedef struct edm_block {
    edm_gnorm norm0, norm1, norm2;
    edm_conv conv0, conv1, skip, qkv, proj;
    edm_linear affine;
    int in, out, up, down, heads, has_skip, adaptive_scale;
    float skip_scale;
} edm_block;

enum edm_module_kind {
    EDM_MOD_CONV,         /* enc.*_conv: x = conv(x), pushed */
    EDM_MOD_BLOCK,        /* UNetBlock: x = block(x, emb) (decoder: concat a skip first) */
    EDM_MOD_AUX_DOWN,     /* aux = fir_down(aux) */
    EDM_MOD_AUX_SKIP,     /* x = skips[-1] = x + conv1x1(aux) */
    EDM_MOD_AUX_RESIDUAL, /* x = skips[-1] = aux = (x + fused_down_conv(aux)) / sqrt(2) */
    EDM_MOD_AUX_UP,       /* aux = fir_up(aux) */
    EDM_MOD_AUX_NORM,     /* tmp = silu(norm(x)) (the silu of aux_conv, fused) */
    EDM_MOD_AUX_CONV      /* tmp = conv(tmp); aux = aux ? tmp + aux : tmp */
};

typedef struct edm_module {
    enum edm_module_kind kind;
    char name[48]; /* e.g. "16x16_block0" */
    int res;       /* input resolution */
    int concat;    /* decoder blocks: channels of the skip to concatenate, else 0 */
    edm_conv conv;
    edm_gnorm norm;
    edm_block block;
} edm_module;

#define EDM_MAX_MODULES 128
#define EDM_MAX_PARAMS 2048

typedef struct edm_net {
    edm_config cfg;
    int in_channels, out_channels; /* out is 2C for iDDPM */
    int noise_channels;            /* width of the noise embedding */
    int emb_channels;              /* E = mc * channel_mult_emb */
    edm_tensor freqs;              /* embedding frequencies [noise_channels/2] */
    float *positional_freqs;       /* host values for the positional embedding (owned) */
    int has_label, has_augment;
    edm_linear map_label, map_augment, map_layer0, map_layer1;
    int n_enc, n_dec;
    edm_module *enc, *dec; /* owned */
    edm_gnorm out_norm;    /* Dhariwal only */
    edm_conv out_conv;     /* Dhariwal only */
    edm_tensor u;          /* iDDPM's u table (state dict key "u"); bound but unused on device */
    int n_params;
    edm_param *params; /* owned, state_dict order */
} edm_net;

/* Builds the description for cfg. Returns a new net (free with edm_net_free). */
enum edm_status edm_net_build(const edm_config *cfg, edm_net **out, edm_error *err);
void edm_net_free(edm_net *net);

/* Architecture-specific builders (net_song.c, net_dhariwal.c), called by edm_net_build. */
enum edm_status edm_net_build_song(edm_net *net, edm_error *err);
enum edm_status edm_net_build_dhariwal(edm_net *net, edm_error *err);

/* Registration helpers (net_build.c) used by the builders. */
enum edm_status edm_net_param(edm_net *net, edm_error *err, edm_tensor *t, int act_dtype,
                              const char *name, int ndim, int d0, int d1, int d2, int d3);
enum edm_status edm_net_linear(edm_net *net, edm_error *err, edm_linear *l, const char *prefix,
                               int in, int out, int bias);
/* The options of a Conv2d (spec 1.2) by name. A field left 0 is off, so a caller names only
 * what it uses: (edm_conv_opts){.kernel = 3, .bias = 1} is a plain 3x3 conv. */
typedef struct edm_conv_opts {
    int kernel;     /* kernel size; 0: no weight (a pure FIR resampling, aux_down / aux_up) */
    int bias;       /* 1: a bias (only with a kernel) */
    int up, down;   /* 1: resample by 2 with the FIR filter */
    int fused;      /* 1: the resampling is fused into the conv (fused_resample) */
    int filter_len; /* FIR taps with up or down: 2 ([1,1]) or 4 ([1,3,3,1]) */
} edm_conv_opts;
enum edm_status edm_net_conv(edm_net *net, edm_error *err, edm_conv *c, const char *prefix, int in,
                             int out, const edm_conv_opts *o);
enum edm_status edm_net_gnorm(edm_net *net, edm_error *err, edm_gnorm *g, const char *prefix,
                              int channels, float eps);
/* Appends a module "{res}x{res}_{suffix}" to the encoder or decoder; prefix gets its
 * state_dict prefix ("model.enc.32x32_block0"). */
enum edm_status edm_net_module(edm_net *net, edm_error *err, int decoder,
                               enum edm_module_kind kind, int res, const char *suffix,
                               edm_module **out, char prefix[EDM_NAME_MAX]);
int edm_config_has_attn(const edm_config *cfg, int res);

typedef struct edm_block_opts {
    int emb, up, down, attention, num_heads, channels_per_head, adaptive_scale, resample_proj;
    int filter_len;
    float skip_scale, eps;
} edm_block_opts;
enum edm_status edm_net_block(edm_net *net, edm_error *err, edm_block *b, const char *prefix,
                              int in, int out, const edm_block_opts *o);
/* The first decoder modules of a level: in0 (attention) and in1 at the deepest level, else
 * an up block; channels in = out. bo is copied (its attention/up are set here). */
enum edm_status edm_net_decoder_head(edm_net *net, edm_error *err, int deepest, int res,
                                     int channels, edm_block_opts bo);
/* A level's first encoder module: the input conv *cout -> first_out at level 0, else a down
 * block; its output is pushed on skips. */
enum edm_status edm_net_encoder_head(edm_net *net, edm_error *err, int level, int res,
                                     int first_out, int *cout, edm_block_opts bo, int *skips,
                                     int *n_skips);
/* A level's num_blocks encoder blocks *cout -> out (attention per attn_resolutions), each
 * output pushed on skips; *cout becomes out. */
enum edm_status edm_net_encoder_blocks(edm_net *net, edm_error *err, int res, int *cout,
                                       int out, edm_block_opts bo, int *skips, int *n_skips);
/* A level's num_blocks+1 decoder blocks, each concatenating a popped skip: attention at
 * attn_resolutions on every block (DhariwalUNet) or on the last only (SongUNet). */
enum edm_status edm_net_decoder_blocks(edm_net *net, edm_error *err, int res, int *cout, int out,
                                       edm_block_opts bo, int attn_last_only, const int *skips,
                                       int *n_skips);

/* ---- forward pass (net_forward.c, unet_block.c) --------------------------------------- */

/* The inputs of one network evaluation, already in backend memory. */
typedef struct edm_net_inputs {
    edm_tensor x;       /* [N, Cin, R, R] = c_in * x, act dtype */
    edm_tensor c_noise; /* [N] F32 */
    edm_tensor labels;  /* [N, label_dim] F32, data NULL if none */
    edm_tensor augment; /* [N, augment_dim] F32, data NULL if not given */
} edm_net_inputs;

/* F = model(c_in*x, c_noise, labels, augment) into out [N, Cout, R, R] (act dtype). */
void edm_net_forward(const edm_net *net, edm_backend *b, edm_arena *a, const edm_net_inputs *in,
                     edm_tensor *out);
void edm_block_forward(const edm_block *blk, edm_backend *b, edm_arena *a, edm_tensor *out,
                       const edm_tensor *x, const edm_tensor *emb);
/* A Conv2d module's forward (resampling paths included): out = conv(in) [+ residual]*scale. */
void edm_conv_forward(const edm_conv *c, edm_backend *b, edm_arena *a, edm_tensor *out,
                      const edm_tensor *in, const edm_tensor *residual, float scale);

static inline edm_tensor edm_tensor_shape(int n, int c, int h, int w, enum edm_dtype dt) {
    edm_tensor t = {NULL, n, c, h, w, dt};
    return t;
}

#endif /* EDM_NET_H */
