/* cl_clip: open_clip's CLIP (ViT image tower + causal text tower) on a cl_backend.
 * Owns: model configs (open_clip JSON, built-in names), checking a state dict against a
 * config, the weights (one backend allocation) and the reused activation buffers.
 * Matches open_clip v2.32 in fp32: same keys, shapes, math; embeddings are raw (not
 * normalised); logit_scale is the stored log. */
#ifndef CL_CLIP_H
#define CL_CLIP_H
#include <stdint.h>

#include "cl_ops.h"
#include "core/cl_core.h"
#include "tensor/cl_tensor.h"

typedef struct cl_clip_vision_cfg {
  int image_size, patch_size; /* square images; image_size % patch_size == 0 */
  int width, layers;
  int head_width;  /* default 64 */
  int heads;       /* width / head_width, derived */
  double mlp_ratio; /* default 4; MLP width = (int)(width * mlp_ratio) */
} cl_clip_vision_cfg;

typedef struct cl_clip_text_cfg {
  int context_length, vocab_size; /* 77, 49408 */
  int width, heads, layers;        /* 512, 8, 12 */
  double mlp_ratio;                /* 4 */
} cl_clip_text_cfg;

typedef struct cl_clip_config {
  int embed_dim;
  cl_clip_vision_cfg vision;
  cl_clip_text_cfg text;
  int quick_gelu;           /* 0: exact erf GELU (open_clip's default); 1: QuickGELU */
  int nonscalar_logit_scale; /* logit_scale stored as [1] rather than [] */
  float mean[3], std[3];    /* preprocessing; OpenAI's unless the config says otherwise */
} cl_clip_config;

/* open_clip's defaults: ViT-B/16 towers, GELU, OpenAI mean/std, embed_dim 0 (unset). */
void cl_clip_config_default(cl_clip_config *c);
/* "ViT-B-16" (GELU, as BioCLIP's released config), "ViT-B-16-quickgelu", "ViT-L-14",
 * "ViT-L-14-quickgelu". */
int cl_clip_config_builtin(const char *name, cl_clip_config *c, cl_error *e);
/* A bare model_cfg object or the hub wrapper {"model_cfg": ..., "preprocess_cfg": {mean,
 * std}}. Omitted keys take open_clip's defaults; a bad value, an unknown key or an option
 * that changes the architecture in ways not implemented is an error naming the key. */
int cl_clip_config_parse(const char *json, cl_clip_config *c, cl_error *e);
int cl_clip_config_load(const char *path, cl_clip_config *c, cl_error *e);
/* The hub's open_clip_config.json for c: {"model_cfg": {...}, "preprocess_cfg": {mean, std}},
 * every architecture key explicit (quick_gelu true or false: open_clip's default is GELU).
 * cl_clip_config_parse reads it back to the same config. malloc'd text. */
char *cl_clip_config_to_json(const cl_clip_config *c);
/* Derives vision.heads and checks the sizes fit together (called by parse and load). */
int cl_clip_config_check(cl_clip_config *c, cl_error *e);

/* open_clip's LayerNorm eps. */
#define CL_CLIP_LN_EPS 1e-5f

/* State-dict checks shared by every loader of these weights, errors naming the key: the
 * tensor `name` of w exists with exactly this shape and a float dtype (F32/F16/BF16/F64);
 * and every key of w is one of the n expected names (no other architecture's key). */
int cl_clip_check_tensor(const cl_tmap *w, const char *name, int ndim, const int64_t *shape, const cl_tensor **out,
                         cl_error *e);
int cl_clip_check_keys(const cl_tmap *w, const char *const *names, int n, cl_error *e);
/* The position open_clip pools a text at: argmax(ids), the first EOT (the largest id). */
int cl_clip_pool_index(const int32_t *ids, int n);

/* A model is used by one thread at a time (it reuses its activation buffers). */
typedef struct cl_clip cl_clip;

/* Builds a model from an open_clip state dict. Every expected key must be present with its
 * exact shape and a float dtype (F32/F16/BF16/F64, converted to F32); extra keys are an
 * error too (a different architecture). The first problem is reported by key name.
 * The weights are copied, so the map may be freed afterwards. be must outlive the model. */
int cl_clip_load(const cl_clip_config *cfg, const cl_tmap *weights, cl_backend *be,
                 cl_clip **out, cl_error *e);
/* As cl_clip_load, but a key outside the model that is no other architecture's (no
 * transformer block), such as BioCLIP 2's training-only second projector
 * `visual.continual_proj`, is left unused, as open_clip's model has no parameter for it, and
 * named in *unused (malloc'd, ", "-separated; NULL when every key is used). */
int cl_clip_load_unused(const cl_clip_config *cfg, const cl_tmap *weights, cl_backend *be, cl_clip **out,
                        char **unused, cl_error *e);
void cl_clip_free(cl_clip *m);

/* pixels: normalised [n, 3, image_size, image_size] host floats; out: [n, embed_dim]. */
int cl_clip_encode_images(cl_clip *m, const float *pixels, int n, float *out, cl_error *e);
/* ids: [n, context_length] token ids (SOT ... EOT, zero padded); out: [n, embed_dim].
 * Pools the token at argmax(ids) (the first EOT) and runs each sequence only up to it. */
int cl_clip_encode_texts(cl_clip *m, const int32_t *ids, int n, float *out, cl_error *e);

float cl_clip_logit_scale(const cl_clip *m); /* the stored log; scores use exp() */
int cl_clip_embed_dim(const cl_clip *m);
const cl_clip_config *cl_clip_get_config(const cl_clip *m);

/* Knobs. full_context: run every text over all context_length tokens (the reference path
 * the real-length path is tested against). max_tokens: tokens per batch chunk, bounding
 * activation memory (default CL_CLIP_MAX_TOKENS; at least one image/text per chunk). */
#define CL_CLIP_MAX_TOKENS (32 * 197)
void cl_clip_set_full_context(cl_clip *m, int on);
void cl_clip_set_max_tokens(cl_clip *m, int max_tokens);

#endif
