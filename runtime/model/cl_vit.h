/* cl_vit: timm's VisionTransformer (vit_base_patch16_224 and its sizes) on a cl_backend, as
 * timm 1.0 computes it in fp32: conv patch embedding with bias, class token first, + pos_embed,
 * pre-LN blocks (LayerNorm eps from the config, qkv with bias, exact erf GELU MLP), final
 * `norm`, token 0 (global_pool "token", no fc_norm), `head` (Linear with bias).
 * Key names are timm's under a prefix: `cls_token`, `pos_embed`, `patch_embed.proj`,
 * `blocks.N.norm1|attn.qkv|attn.proj|norm2|mlp.fc1|mlp.fc2`, `norm`, `head`. CLIBD's LoRA layout
 * (`blocks.N.attn.qkv.qkv.weight|bias` with `attn.qkv.linear_a_q|linear_b_q|linear_a_v|
 * linear_b_v.weight`) is merged into qkv at load: rows 0..W-1 += B_q A_q, rows 2W..3W-1 +=
 * B_v A_v (no scaling; the bias unchanged).
 * Owns: the weights (one backend allocation) and the activation arena. One thread at a time. */
#ifndef CL_VIT_H
#define CL_VIT_H
#include "cl_ops.h"
#include "core/cl_core.h"
#include "tensor/cl_tensor.h"

typedef struct cl_vit_config {
  int img_size, patch_size, in_chans; /* 224, 16, 3 */
  int embed_dim, depth, num_heads;    /* 768, 12, 12 */
  double mlp_ratio;                   /* 4 */
  double layer_norm_eps;              /* 1e-6 */
} cl_vit_config;

void cl_vit_config_default(cl_vit_config *c); /* vit_base_patch16_224 */
/* Sizes fit together; errors name where.key. */
int cl_vit_config_check(const cl_vit_config *c, const char *where, cl_error *e);

typedef struct cl_vit cl_vit;

/* From a state dict with keys under prefix; keys under prefix that timm's model holds and the
 * forward does not use are an error (another architecture). The head's output size is read from
 * head.weight [out, W]. */
int cl_vit_load(const cl_vit_config *cfg, const cl_tmap *w, const char *prefix, cl_backend *be, cl_vit **out,
                cl_error *e);
void cl_vit_free(cl_vit *m);
int cl_vit_out_dim(const cl_vit *m);
int cl_vit_has_lora(const cl_vit *m);
const cl_vit_config *cl_vit_get_config(const cl_vit *m);

/* pixels: [n, in_chans, img_size, img_size] host floats as the model takes them; out [n, out]
 * (the head's output); pre_logits [n, W] (token 0 after norm) when non-NULL. */
int cl_vit_encode(cl_vit *m, const float *pixels, int n, float *out, float *pre_logits, cl_error *e);

#endif
