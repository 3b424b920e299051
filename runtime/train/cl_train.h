/* cl_train: contrastive training of open_clip's CLIP in C, matching open_clip v2.32 +
 * PyTorch 1.13 in fp32.
 * Owns: the trainable model (every parameter in one backend allocation, every gradient in
 * another, the saved activations of one batch), open_clip's ClipLoss, and the optimizer:
 * AdamW exactly as PyTorch's with open_clip's parameter groups, cosine_lr with warmup,
 * clip_grad_norm_, frozen prefixes, "projections only" and the logit_scale clamp.
 * One forward (with saved activations) and one backward per tower, on the backend's
 * backward entries (ops/cl_ops.h). */
#ifndef CL_TRAIN_H
#define CL_TRAIN_H
#include <stdint.h>

#include "cl_ops.h"
#include "core/cl_core.h"
#include "model/cl_clip.h"
#include "tensor/cl_tensor.h"

/* One parameter, by its open_clip state-dict name. */
typedef struct cl_train_param {
  char name[112];
  int ndim;
  int64_t shape[4];
  size_t off, numel; /* in floats, within the parameter (and gradient) allocation */
  int decay;         /* open_clip's groups: ndim >= 2 and no "bn", "ln", "bias", "logit_scale" */
  int trainable;     /* 1 unless frozen by the optimizer's options */
} cl_train_param;

typedef struct cl_train_model cl_train_model;

/* Copies an open_clip state dict (same checks as cl_clip_load: every key, exact shapes,
 * float dtypes, no extra key) into the model's parameters. be must outlive the model and
 * have the backward entries. */
int cl_train_model_create(const cl_clip_config *cfg, const cl_tmap *weights, cl_backend *be,
                          cl_train_model **out, cl_error *e);
void cl_train_model_free(cl_train_model *m);
const cl_clip_config *cl_train_model_config(const cl_train_model *m);
int cl_train_nparams(const cl_train_model *m);
cl_train_param *cl_train_param_at(cl_train_model *m, int i);
/* Backend memory (host memory on the CPU): the parameters and the gradients, as laid out
 * by cl_train_param.off. */
float *cl_train_params(cl_train_model *m);
float *cl_train_grads(cl_train_model *m);
size_t cl_train_nfloats(const cl_train_model *m);
cl_backend *cl_train_be(cl_train_model *m);

/* What one forward and backward returns besides the gradients (host arrays the caller may
 * pass NULL for): the raw tower outputs [n, embed_dim]. */
typedef struct cl_train_outputs {
  float *image_embeds, *text_embeds;
} cl_train_outputs;

/* One forward and backward of open_clip's ClipLoss over the pairs (image i, text i):
 * pixels host [n,3,S,S] (normalised), ids host [n, context_length] (SOT ... EOT, zero padded).
 * Zeroes the gradients, then leaves d loss / d parameter in them; *loss = the loss. n >= 1. */
int cl_train_forward_backward(cl_train_model *m, const float *pixels, const int32_t *ids, int n, float *loss,
                              cl_train_outputs *outs, cl_error *e);

/* ClipLoss on raw embeddings img, txt [n, E] (host): normalise, logits = exp(logit_scale)
 * img txt^T, the mean of the row-wise and column-wise cross-entropies with target i for row
 * i. Computed in double. Fills dimg, dtxt [n, E] = d loss / d raw embeddings and
 * *dlogit_scale; returns the loss. */
double cl_train_clip_loss(const float *img, const float *txt, int n, int E, float logit_scale, float *dimg,
                          float *dtxt, double *dlogit_scale);

/* Host copies of every parameter (grads = 0) or gradient (grads = 1) into out (initialised
 * by the caller), named prefix + open_clip name; logit_scale is [] (or [1] where the config
 * says nonscalar_logit_scale), as open_clip saves it. */
int cl_train_export(cl_train_model *m, int grads, const char *prefix, cl_tmap *out, cl_error *e);

/* --- the optimizer --- */

typedef struct cl_train_opts {
  double lr, weight_decay, beta1, beta2, eps;
  int steps, warmup;  /* cosine_lr's horizon and warmup (0: none) */
  double clip_grad;   /* clip_grad_norm_ max norm; 0: no clipping */
  const char *const *freeze; /* parameter-name prefixes that get no update */
  int nfreeze;
  int projections_only; /* train only visual.proj, text_projection and logit_scale */
  int batch_size;       /* recorded with the state only */
} cl_train_opts;

/* open_clip's defaults for ViT models: lr 5e-4, weight decay 0.2, betas (0.9, 0.98), eps 1e-6,
 * warmup 0, no clipping, nothing frozen. steps must be set. */
void cl_train_opts_default(cl_train_opts *o);

/* open_clip's cosine_lr for the 0-based step: base * (step+1) / warmup during the warmup,
 * then 0.5 * (1 + cos(pi * (step - warmup) / (steps - warmup))) * base. */
double cl_train_cosine_lr(double base, int warmup, int steps, int step);

typedef struct cl_train_optim cl_train_optim;

/* Marks the model's parameters trainable or frozen from the options (a freeze prefix that
 * matches no parameter is an error naming it) and allocates the moments (zero). */
int cl_train_optim_create(cl_train_model *m, const cl_train_opts *o, cl_train_optim **out, cl_error *e);
void cl_train_optim_free(cl_train_optim *o);
/* Steps taken so far (the next step's 0-based index). */
int cl_train_optim_steps(const cl_train_optim *o);
/* One optimizer step on the gradients cl_train_forward_backward left: lr = cosine_lr(step),
 * optional clipping by the global norm of the trainable gradients (*grad_norm: that norm
 * before clipping, or -1 without clipping), AdamW, then logit_scale clamped to [0, ln 100]. */
int cl_train_optim_step(cl_train_optim *o, double *lr, double *grad_norm, cl_error *e);
/* The optimizer state as tensors: exp_avg.<name> and exp_avg_sq.<name> of every trainable
 * parameter, and `step` (I64 []); import checks names and shapes against the model. */
int cl_train_optim_export(cl_train_optim *o, cl_tmap *out, cl_error *e);
int cl_train_optim_import(cl_train_optim *o, const cl_tmap *in, cl_error *e);
/* The options and the step as a JSON object (malloc'd text): step, steps, lr, weight_decay,
 * betas, eps, warmup, batch_size, clip_grad, projections_only, freeze. */
char *cl_train_optim_json(const cl_train_optim *o);

/* --- checkpoints --- */

/* Writes tensors to path through a temporary file beside it and a rename (metadata as
 * cl_st_save takes it, or NULL). */
int cl_train_save_tensors(const char *path, const cl_tmap *t, const char *metadata_json, cl_error *e);
/* The open_clip hub folder dir (which must exist): open_clip_model.safetensors (every
 * parameter, F32, open_clip names), open_clip_config.json (cl_clip_config_to_json) and
 * optimizer.safetensors (cl_train_optim_export, with cl_train_optim_json as its metadata
 * "json"), each written atomically. */
int cl_train_save(cl_train_model *m, cl_train_optim *o, const char *dir, cl_error *e);

#endif
