/* cl_clip_random: deterministic random CLIP weights (see the header for the rules).
 * Element j of a tensor is a standard normal from a Box-Muller pair whose two uniforms are
 * splitmix64 of (seed, FNV-1a of the key, j / 2): counter-based, so every chunk of every
 * tensor is drawn independently and threads change nothing. */
#define _GNU_SOURCE
#include "cl_clip_random.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

static uint64_t fnv1a(const char *s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
  return h;
}

typedef enum { R_NORMAL, R_ONE, R_LOGIT } rkind;

/* x[j] = offset + s * N(0,1), j < n */
static void fill(float *x, int64_t n, uint64_t stream, rkind kind, double s) {
  const double off = kind == R_ONE ? 1.0 : kind == R_LOGIT ? log(1 / 0.07) : 0.0;
  const int64_t pairs = (n + 1) / 2;
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t p = 0; p < pairs; p++) {
    uint64_t a = splitmix64(stream + 2 * (uint64_t)p), b = splitmix64(stream + 2 * (uint64_t)p + 1);
    double u1 = ((a >> 11) + 1) * 0x1.0p-53, u2 = (b >> 11) * 0x1.0p-53; /* u1 in (0,1] */
    double r = sqrt(-2.0 * log(u1)), c = cos(2 * M_PI * u2), sn = sin(2 * M_PI * u2);
    x[2 * p] = (float)(off + s * r * c);
    if (2 * p + 1 < n) x[2 * p + 1] = (float)(off + s * r * sn);
  }
}

static void put(cl_tmap *m, uint64_t seed, const char *name, rkind kind, double s, int ndim, int64_t d0,
                int64_t d1, int64_t d2, int64_t d3) {
  int64_t shape[4] = {d0, d1, d2, d3}, n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  float *x = cl_tmap_own(m, cl_xmalloc((size_t)(n ? n : 1) * sizeof(float)));
  fill(x, n, splitmix64(seed ^ fnv1a(name)), kind, s);
  cl_tensor t = {.dtype = CL_F32, .ndim = ndim, .data = x};
  for (int i = 0; i < ndim; i++) t.shape[i] = shape[i];
  cl_tmap_put(m, name, t);
}

static void tower(cl_tmap *m, uint64_t seed, const char *prefix, int64_t W, int64_t M, int layers) {
  char k[160];
#define P(suffix) (snprintf(k, sizeof k, "%s.resblocks.%d." suffix, prefix, i), k)
  for (int i = 0; i < layers; i++) {
    put(m, seed, P("ln_1.weight"), R_ONE, 0.1, 1, W, 0, 0, 0);
    put(m, seed, P("ln_1.bias"), R_NORMAL, 0.1, 1, W, 0, 0, 0);
    put(m, seed, P("attn.in_proj_weight"), R_NORMAL, 1 / sqrt((double)W), 2, 3 * W, W, 0, 0);
    put(m, seed, P("attn.in_proj_bias"), R_NORMAL, 0.1, 1, 3 * W, 0, 0, 0);
    put(m, seed, P("attn.out_proj.weight"), R_NORMAL, 1 / sqrt((double)W), 2, W, W, 0, 0);
    put(m, seed, P("attn.out_proj.bias"), R_NORMAL, 0.1, 1, W, 0, 0, 0);
    put(m, seed, P("ln_2.weight"), R_ONE, 0.1, 1, W, 0, 0, 0);
    put(m, seed, P("ln_2.bias"), R_NORMAL, 0.1, 1, W, 0, 0, 0);
    put(m, seed, P("mlp.c_fc.weight"), R_NORMAL, 1 / sqrt((double)W), 2, M, W, 0, 0);
    put(m, seed, P("mlp.c_fc.bias"), R_NORMAL, 0.1, 1, M, 0, 0, 0);
    put(m, seed, P("mlp.c_proj.weight"), R_NORMAL, 1 / sqrt((double)M), 2, W, M, 0, 0);
    put(m, seed, P("mlp.c_proj.bias"), R_NORMAL, 0.1, 1, W, 0, 0, 0);
  }
#undef P
}

int cl_clip_random_weights(const cl_clip_config *cfg, uint64_t seed, cl_tmap *m, cl_error *e) {
  cl_tmap_init(m);
  cl_clip_config c = *cfg;
  if (cl_clip_config_check(&c, e) != CL_OK) return e ? e->code : CL_EINVAL;
  const cl_clip_vision_cfg *v = &c.vision;
  const cl_clip_text_cfg *t = &c.text;
  const int64_t Wv = v->width, P = v->patch_size, g = v->image_size / P, E = c.embed_dim, Wt = t->width;
  put(m, seed, "visual.conv1.weight", R_NORMAL, 1 / sqrt(3.0 * P * P), 4, Wv, 3, P, P);
  put(m, seed, "visual.class_embedding", R_NORMAL, 0.5, 1, Wv, 0, 0, 0);
  put(m, seed, "visual.positional_embedding", R_NORMAL, 0.2, 2, 1 + g * g, Wv, 0, 0);
  put(m, seed, "visual.ln_pre.weight", R_ONE, 0.1, 1, Wv, 0, 0, 0);
  put(m, seed, "visual.ln_pre.bias", R_NORMAL, 0.1, 1, Wv, 0, 0, 0);
  tower(m, seed, "visual.transformer", Wv, (int64_t)(v->width * v->mlp_ratio), v->layers);
  put(m, seed, "visual.ln_post.weight", R_ONE, 0.1, 1, Wv, 0, 0, 0);
  put(m, seed, "visual.ln_post.bias", R_NORMAL, 0.1, 1, Wv, 0, 0, 0);
  put(m, seed, "visual.proj", R_NORMAL, 1 / sqrt((double)Wv), 2, Wv, E, 0, 0);
  put(m, seed, "token_embedding.weight", R_NORMAL, 0.5, 2, t->vocab_size, Wt, 0, 0);
  put(m, seed, "positional_embedding", R_NORMAL, 0.2, 2, t->context_length, Wt, 0, 0);
  tower(m, seed, "transformer", Wt, (int64_t)(t->width * t->mlp_ratio), t->layers);
  put(m, seed, "ln_final.weight", R_ONE, 0.1, 1, Wt, 0, 0, 0);
  put(m, seed, "ln_final.bias", R_NORMAL, 0.1, 1, Wt, 0, 0, 0);
  put(m, seed, "text_projection", R_NORMAL, 1 / sqrt((double)Wt), 2, Wt, E, 0, 0);
  if (c.nonscalar_logit_scale) put(m, seed, "logit_scale", R_LOGIT, 0.5, 1, 1, 0, 0, 0);
  else put(m, seed, "logit_scale", R_LOGIT, 0.5, 0, 0, 0, 0, 0);
  return CL_OK;
}

int cl_clip_random_load(const cl_clip_config *cfg, uint64_t seed, cl_backend *be, cl_clip **out,
                        cl_error *e) {
  cl_tmap w;
  int rc = cl_clip_random_weights(cfg, seed, &w, e);
  if (rc == CL_OK) rc = cl_clip_load(cfg, &w, be, out, e);
  cl_tmap_free(&w);
  return rc;
}
