/* cl_vit: timm ViT loading (with CLIBD's LoRA merge) and forward (see cl_vit.h). The conv
 * bias is folded into pos_embed rows 1.. at load, since the backend's patch_embed has none. */
#include "cl_vit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cl_weights.h"

#define TRY(x)                 \
  do {                         \
    int _rc = (x);             \
    if (_rc) return _rc;       \
  } while (0)

#define VIT_MAX_TOKENS (32 * 197)

void cl_vit_config_default(cl_vit_config *c) {
  *c = (cl_vit_config){.img_size = 224, .patch_size = 16, .in_chans = 3, .embed_dim = 768, .depth = 12,
                       .num_heads = 12, .mlp_ratio = 4.0, .layer_norm_eps = 1e-6};
}

int cl_vit_config_check(const cl_vit_config *c, const char *where, cl_error *e) {
  if (c->patch_size < 1 || c->img_size < c->patch_size || c->img_size > 8192 || c->img_size % c->patch_size)
    return cl_err(e, CL_EINVAL, "%s.patch_size %d does not divide img_size %d", where, c->patch_size, c->img_size);
  if (c->in_chans != 3) return cl_err(e, CL_EUNSUP, "%s.in_chans = %d: only 3 (RGB) is implemented", where, c->in_chans);
  if (c->embed_dim < 1 || c->embed_dim > 65536 || c->num_heads < 1 || c->embed_dim % c->num_heads)
    return cl_err(e, CL_EINVAL, "%s.num_heads %d does not divide embed_dim %d", where, c->num_heads, c->embed_dim);
  if (c->depth < 1 || c->depth > 1024) return cl_err(e, CL_EINVAL, "%s.depth = %d: expected 1 to 1024", where, c->depth);
  if (!(c->mlp_ratio > 0) || c->embed_dim * c->mlp_ratio < 1 || c->embed_dim * c->mlp_ratio > (1 << 20))
    return cl_err(e, CL_EINVAL, "%s.mlp_ratio = %g is invalid", where, c->mlp_ratio);
  if (!(c->layer_norm_eps > 0 && c->layer_norm_eps < 1))
    return cl_err(e, CL_EINVAL, "%s.layer_norm_eps = %g: expected a small positive number", where, c->layer_norm_eps);
  return CL_OK;
}

typedef struct vit_block {
  const float *ln1_w, *ln1_b, *qkv_w, *qkv_b, *proj_w, *proj_b, *ln2_w, *ln2_b, *fc1_w, *fc1_b, *fc2_w, *fc2_b;
  int qkv_wi, aq, bq, av, bv; /* staging indices for the LoRA merge */
} vit_block;

struct cl_vit {
  cl_vit_config cfg;
  cl_backend *be;
  float *weights;
  vit_block *blk;
  int lora, mlp, out_dim;
  const float *conv_w, *cls, *pos, *norm_w, *norm_b, *head_w, *head_b;
  int pos_i, bias_i, posf_i; /* staging: pos_embed, conv bias, the folded table */
  cl_arena arena;
};

int cl_vit_out_dim(const cl_vit *m) { return m->out_dim; }
int cl_vit_has_lora(const cl_vit *m) { return m->lora; }
const cl_vit_config *cl_vit_get_config(const cl_vit *m) { return &m->cfg; }

static int fixup(void *ud, cl_wset *s, cl_error *e) {
  cl_vit *m = ud;
  const int W = m->cfg.embed_dim, g = m->cfg.img_size / m->cfg.patch_size;
  float *pf = cl_wset_host(s, m->posf_i);
  const float *pos = cl_wset_host(s, m->pos_i), *b = cl_wset_host(s, m->bias_i);
  memcpy(pf, pos, (size_t)W * sizeof(float));
  for (int r = 1; r <= g * g; r++)
    for (int j = 0; j < W; j++) pf[(size_t)r * W + j] = pos[(size_t)r * W + j] + b[j];
  for (int i = 0; m->lora && i < m->cfg.depth; i++) {
    const vit_block *k = &m->blk[i];
    float *w = cl_wset_host(s, k->qkv_wi);
    const int r = (int)s->v[k->aq].shape[0];
    cl_wset_lora_merge(w, cl_wset_host(s, k->bq), cl_wset_host(s, k->aq), W, W, r);
    cl_wset_lora_merge(w + 2 * (size_t)W * W, cl_wset_host(s, k->bv), cl_wset_host(s, k->av), W, W, r);
  }
  (void)e;
  return CL_OK;
}

int cl_vit_load(const cl_vit_config *cfg, const cl_tmap *w, const char *p, cl_backend *be, cl_vit **out,
                cl_error *e) {
  *out = NULL;
  TRY(cl_vit_config_check(cfg, "image", e));
  cl_vit *m = cl_xcalloc(1, sizeof *m);
  m->cfg = *cfg;
  m->be = be;
  const int W = cfg->embed_dim, P = cfg->patch_size, g = cfg->img_size / P, D = cfg->depth;
  m->mlp = (int)(W * cfg->mlp_ratio);
  m->blk = cl_xcalloc((size_t)D, sizeof *m->blk);
  cl_wset s = {0};
  int rc = CL_OK;
  char k[512];
  snprintf(k, sizeof k, "%shead.weight", p);
  const cl_tensor *ht = cl_tmap_get(w, k);
  /* the head's rows are the output size; a bad shape is reported in key order */
  m->out_dim = ht && ht->ndim == 2 && ht->shape[0] >= 1 && ht->shape[0] <= (1 << 20) ? (int)ht->shape[0] : 1;
  snprintf(k, sizeof k, "%sblocks.0.attn.qkv.linear_a_q.weight", p);
  const cl_tensor *at = cl_tmap_get(w, k);
  m->lora = at != NULL;
  const int r = at && at->ndim == 2 ? (int)at->shape[0] : 1;
  const int64_t w1[1] = {W}, ww[2] = {W, W}, q3[2] = {3 * W, W}, b3[1] = {3 * W}, m1[1] = {m->mlp},
                mw[2] = {m->mlp, W}, wm[2] = {W, m->mlp}, ra[2] = {r, W}, rb[2] = {W, r};
  cl_wset_addf(&s, &m->cls, 0, 3, (int64_t[]){1, 1, W}, "%scls_token", p);
  m->pos_i = cl_wset_addf(&s, NULL, CL_W_HOST, 3, (int64_t[]){1, 1 + g * g, W}, "%spos_embed", p);
  cl_wset_addf(&s, &m->conv_w, 0, 4, (int64_t[]){W, 3, P, P}, "%spatch_embed.proj.weight", p);
  m->bias_i = cl_wset_addf(&s, NULL, CL_W_HOST, 1, w1, "%spatch_embed.proj.bias", p);
  m->posf_i = cl_wset_add(&s, &m->pos, 0, 2, (int64_t[]){1 + g * g, W}, NULL);
  for (int i = 0; i < D; i++) {
    vit_block *b = &m->blk[i];
    const char *qkv = m->lora ? "attn.qkv.qkv" : "attn.qkv";
    cl_wset_addf(&s, &b->ln1_w, 0, 1, w1, "%sblocks.%d.norm1.weight", p, i);
    cl_wset_addf(&s, &b->ln1_b, 0, 1, w1, "%sblocks.%d.norm1.bias", p, i);
    b->qkv_wi = cl_wset_addf(&s, &b->qkv_w, 0, 2, q3, "%sblocks.%d.%s.weight", p, i, qkv);
    cl_wset_addf(&s, &b->qkv_b, 0, 1, b3, "%sblocks.%d.%s.bias", p, i, qkv);
    if (m->lora) {
      b->aq = cl_wset_addf(&s, NULL, CL_W_HOST, 2, ra, "%sblocks.%d.attn.qkv.linear_a_q.weight", p, i);
      b->bq = cl_wset_addf(&s, NULL, CL_W_HOST, 2, rb, "%sblocks.%d.attn.qkv.linear_b_q.weight", p, i);
      b->av = cl_wset_addf(&s, NULL, CL_W_HOST, 2, ra, "%sblocks.%d.attn.qkv.linear_a_v.weight", p, i);
      b->bv = cl_wset_addf(&s, NULL, CL_W_HOST, 2, rb, "%sblocks.%d.attn.qkv.linear_b_v.weight", p, i);
    }
    cl_wset_addf(&s, &b->proj_w, 0, 2, ww, "%sblocks.%d.attn.proj.weight", p, i);
    cl_wset_addf(&s, &b->proj_b, 0, 1, w1, "%sblocks.%d.attn.proj.bias", p, i);
    cl_wset_addf(&s, &b->ln2_w, 0, 1, w1, "%sblocks.%d.norm2.weight", p, i);
    cl_wset_addf(&s, &b->ln2_b, 0, 1, w1, "%sblocks.%d.norm2.bias", p, i);
    cl_wset_addf(&s, &b->fc1_w, 0, 2, mw, "%sblocks.%d.mlp.fc1.weight", p, i);
    cl_wset_addf(&s, &b->fc1_b, 0, 1, m1, "%sblocks.%d.mlp.fc1.bias", p, i);
    cl_wset_addf(&s, &b->fc2_w, 0, 2, wm, "%sblocks.%d.mlp.fc2.weight", p, i);
    cl_wset_addf(&s, &b->fc2_b, 0, 1, w1, "%sblocks.%d.mlp.fc2.bias", p, i);
  }
  cl_wset_addf(&s, &m->norm_w, 0, 1, w1, "%snorm.weight", p);
  cl_wset_addf(&s, &m->norm_b, 0, 1, w1, "%snorm.bias", p);
  cl_wset_addf(&s, &m->head_w, 0, 2, (int64_t[]){m->out_dim, W}, "%shead.weight", p);
  cl_wset_addf(&s, &m->head_b, 0, 1, (int64_t[]){m->out_dim}, "%shead.bias", p);
  const char *owner[2] = {p, NULL};
  if ((rc = cl_wset_check(&s, w, owner, NULL, NULL, e))) goto fail;
  if ((rc = cl_wset_load(&s, be, fixup, m, &m->weights, e))) goto fail;
  for (int i = 0; i < D && be->prepare_linear && !rc; i++) {
    const vit_block *b = &m->blk[i];
    if (!rc) rc = be->prepare_linear(be, (float *)b->qkv_w, 3 * W, W, e);
    if (!rc) rc = be->prepare_linear(be, (float *)b->proj_w, W, W, e);
    if (!rc) rc = be->prepare_linear(be, (float *)b->fc1_w, m->mlp, W, e);
    if (!rc) rc = be->prepare_linear(be, (float *)b->fc2_w, W, m->mlp, e);
  }
  if (!rc && be->prepare_linear) rc = be->prepare_linear(be, (float *)m->head_w, m->out_dim, W, e);
  if (rc) goto fail;
  cl_wset_free(&s);
  *out = m;
  return CL_OK;
fail:
  cl_wset_free(&s);
  cl_vit_free(m);
  return rc;
}

void cl_vit_free(cl_vit *m) {
  if (!m) return;
  if (m->weights) m->be->free(m->be, m->weights);
  cl_arena_free(&m->arena, m->be);
  free(m->blk);
  free(m);
}

int cl_vit_encode(cl_vit *m, const float *pixels, int n, float *out, float *pre_logits, cl_error *e) {
  if (n < 0 || (n > 0 && (!pixels || !out))) return cl_err(e, CL_EINVAL, "vit: bad arguments (n = %d)", n);
  cl_backend *be = m->be;
  const cl_vit_config *c = &m->cfg;
  const int W = c->embed_dim, M = m->mlp, g = c->img_size / c->patch_size, S = 1 + g * g, O = m->out_dim;
  const float eps = (float)c->layer_norm_eps;
  const size_t per_img = 3 * (size_t)c->img_size * c->img_size;
  const int per_chunk = VIT_MAX_TOKENS / S > 0 ? VIT_MAX_TOKENS / S : 1;
  const size_t wide = 3 * (size_t)W > (size_t)M ? 3 * (size_t)W : (size_t)M;
  int rc = CL_OK;
  for (int start = 0; start < n && !rc; start += per_chunk) {
    const int cnt = n - start < per_chunk ? n - start : per_chunk, T = cnt * S;
    const size_t sz[6] = {(size_t)T * W, (size_t)T * W, (size_t)T * wide, be->host_memory ? 0 : cnt * per_img,
                          (size_t)cnt * W, (size_t)cnt * O};
    float *x, *h, *big, *in, *pool, *emb;
    float **const bufs[6] = {&x, &h, &big, &in, &pool, &emb};
    int32_t *off = cl_arena_idx(&m->arena, (size_t)cnt * 2 + 1, e), *clsrow = off ? off + cnt + 1 : NULL;
    if (!off || (rc = cl_arena_carve(&m->arena, be, 6, sz, bufs, e))) {
      rc = rc ? rc : CL_ENOMEM;
      break;
    }
    for (int i = 0; i <= cnt; i++) off[i] = i * S;
    for (int i = 0; i < cnt; i++) clsrow[i] = i * S;
    const float *px = pixels + (size_t)start * per_img;
    if (!be->host_memory) {
      if ((rc = be->upload(be, in, px, cnt * per_img * sizeof(float), e))) break;
      px = in;
    }
#define STEP(x)                   \
  if ((rc = (x)) != CL_OK) break;
    STEP(be->patch_embed(be, x, px, m->conv_w, m->cls, m->pos, cnt, 3, c->img_size, c->patch_size, W, e));
    for (int i = 0; i < c->depth; i++) {
      const vit_block *b = &m->blk[i];
      STEP(be->layernorm(be, h, x, b->ln1_w, b->ln1_b, T, W, eps, e));
      STEP(be->linear(be, big, h, b->qkv_w, b->qkv_b, T, W, 3 * W, CL_ACT_NONE, 0, e));
      STEP(be->attention(be, h, big, off, cnt, W, c->num_heads, 0, e));
      STEP(be->linear(be, x, h, b->proj_w, b->proj_b, T, W, W, CL_ACT_NONE, 1, e));
      STEP(be->layernorm(be, h, x, b->ln2_w, b->ln2_b, T, W, eps, e));
      STEP(be->linear(be, big, h, b->fc1_w, b->fc1_b, T, W, M, CL_ACT_GELU, 0, e));
      STEP(be->linear(be, x, big, b->fc2_w, b->fc2_b, T, M, W, CL_ACT_NONE, 1, e));
    }
    if (rc) break;
    STEP(be->gather_rows(be, h, x, T, clsrow, cnt, W, 0, e));
    STEP(be->layernorm(be, pool, h, m->norm_w, m->norm_b, cnt, W, eps, e));
    STEP(be->linear(be, emb, pool, m->head_w, m->head_b, cnt, W, O, CL_ACT_NONE, 0, e));
    STEP(be->download(be, out + (size_t)start * O, emb, (size_t)cnt * O * sizeof(float), e));
    if (pre_logits) STEP(be->download(be, pre_logits + (size_t)start * W, pool, (size_t)cnt * W * sizeof(float), e));
#undef STEP
  }
  if (!rc) rc = be->sync(be, e);
  if (rc) cl_err_wrap(e, "encoding %d images (ViT)", n);
  return rc;
}
