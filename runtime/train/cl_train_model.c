/* cl_train_model: the trainable CLIP: parameters, gradients, and one forward with saved
 * activations plus one backward per tower, on the backend's entries.
 * Layout: the parameters live in one backend allocation and the gradients in another with the
 * same offsets; a tower's saved activations live in one arena per tower (grown on demand);
 * the backward's scratch in a third. Texts are packed at their real lengths (up to and
 * including the EOT they pool): with the causal mask, later tokens change neither the pooled
 * output nor any gradient. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cl_train.h"


/* Offsets (in floats) of one residual block's tensors. */
typedef struct blk_off {
  size_t ln1_w, ln1_b, qkv_w, qkv_b, out_w, out_b, ln2_w, ln2_b, fc_w, fc_b, proj_w, proj_b;
} blk_off;

/* A block's tensors, in open_clip's order: name suffix, rows and columns as multiples of the
 * width ('W'), 3 widths ('3') or the MLP width ('M'), '-' for a vector. */
static const struct {
  const char *suffix;
  char rows, cols;
  size_t field;
} block_tensors[] = {
  {"ln_1.weight", 'W', '-', offsetof(blk_off, ln1_w)},
  {"ln_1.bias", 'W', '-', offsetof(blk_off, ln1_b)},
  {"attn.in_proj_weight", '3', 'W', offsetof(blk_off, qkv_w)},
  {"attn.in_proj_bias", '3', '-', offsetof(blk_off, qkv_b)},
  {"attn.out_proj.weight", 'W', 'W', offsetof(blk_off, out_w)},
  {"attn.out_proj.bias", 'W', '-', offsetof(blk_off, out_b)},
  {"ln_2.weight", 'W', '-', offsetof(blk_off, ln2_w)},
  {"ln_2.bias", 'W', '-', offsetof(blk_off, ln2_b)},
  {"mlp.c_fc.weight", 'M', 'W', offsetof(blk_off, fc_w)},
  {"mlp.c_fc.bias", 'M', '-', offsetof(blk_off, fc_b)},
  {"mlp.c_proj.weight", 'W', 'M', offsetof(blk_off, proj_w)},
  {"mlp.c_proj.bias", 'W', '-', offsetof(blk_off, proj_b)},
};

/* The saved activations of one tower for one batch (backend memory, one arena). */
typedef struct tower_acts {
  float *arena;
  size_t cap;
  int T, nseq;
  float *x0;     /* vision: the patch embedding before ln_pre; text: token + position */
  float *layers; /* per layer: xin, h1, qkv, att, xmid, h2, pre, act (see layer_acts) */
  float *xout, *pooled, *lnp, *emb, *pix;
  int32_t *idx; /* host: seq_off [nseq+1], pool [nseq], tok [T], pos [T] */
  size_t idx_cap;
} tower_acts;

typedef struct tower {
  int width, heads, layers, mlp, causal;
  blk_off *blk;
  size_t ln_w, ln_b, proj; /* ln_post / ln_final and the projection */
  tower_acts a;
} tower;

struct cl_train_model {
  cl_clip_config cfg;
  cl_backend *be;
  cl_act act;
  cl_train_param *pv;
  int np, pcap;
  float *params, *grads;
  size_t nfloats;
  tower vis, txt;
  size_t conv, cls, vpos, ln_pre_w, ln_pre_b, tok, tpos, logit_scale;
  float *scratch; /* backward: d [T,W], dh [T,W], dbig [T, max(3W, M)], dsmall [2, n, W], demb [n, E] */
  size_t scratch_cap;
};

/* --- the parameter list --- */

static size_t add_param(cl_train_model *m, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3,
                        const char *name) {
  if (m->np == m->pcap) {
    m->pcap = m->pcap ? 2 * m->pcap : 64;
    m->pv = realloc(m->pv, (size_t)m->pcap * sizeof *m->pv);
    if (!m->pv) abort();
  }
  cl_train_param *p = &m->pv[m->np++];
  memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "%s", name);
  p->ndim = ndim;
  p->shape[0] = d0, p->shape[1] = d1, p->shape[2] = d2, p->shape[3] = d3;
  p->numel = 1;
  for (int i = 0; i < ndim; i++) p->numel *= (size_t)p->shape[i];
  p->off = m->nfloats;
  m->nfloats += (p->numel + 15) & ~(size_t)15; /* 64-byte aligned tensors */
  /* open_clip's exclude(): p.ndim < 2 or "bn", "ln", "bias", "logit_scale" in the name */
  p->decay = ndim >= 2 && !strstr(name, "bn") && !strstr(name, "ln") && !strstr(name, "bias") &&
             !strstr(name, "logit_scale");
  p->trainable = 1;
  return p->off;
}

static int add_tower(cl_train_model *m, tower *tw, int width, int heads, int layers, double mlp_ratio, int causal,
                     const char *prefix, cl_error *e) {
  tw->width = width, tw->heads = heads, tw->layers = layers, tw->causal = causal;
  tw->mlp = (int)(width * mlp_ratio);
  tw->blk = calloc((size_t)layers, sizeof *tw->blk);
  if (!tw->blk) return cl_err(e, CL_ENOMEM, "out of memory");
  for (int l = 0; l < layers; l++)
    for (size_t t = 0; t < sizeof block_tensors / sizeof *block_tensors; t++) {
      int64_t dim[2];
      const char codes[2] = {block_tensors[t].rows, block_tensors[t].cols};
      for (int d = 0; d < 2; d++)
        dim[d] = codes[d] == 'W' ? width : codes[d] == '3' ? 3 * (int64_t)width : codes[d] == 'M' ? tw->mlp : 0;
      char name[112];
      snprintf(name, sizeof name, "%s.resblocks.%d.%s", prefix, l, block_tensors[t].suffix);
      *(size_t *)((char *)&tw->blk[l] + block_tensors[t].field) =
          add_param(m, dim[1] ? 2 : 1, dim[0], dim[1], 0, 0, name);
    }
  return CL_OK;
}

/* open_clip's state dict, in its order. */
static int build_params(cl_train_model *m, cl_error *e) {
  const cl_clip_config *c = &m->cfg;
  const int64_t Wv = c->vision.width, P = c->vision.patch_size, E = c->embed_dim, Wt = c->text.width;
  const int64_t g = c->vision.image_size / P;
  m->tpos = add_param(m, 2, c->text.context_length, Wt, 0, 0, "positional_embedding");
  m->txt.proj = add_param(m, 2, Wt, E, 0, 0, "text_projection");
  m->logit_scale = add_param(m, c->nonscalar_logit_scale ? 1 : 0, 1, 0, 0, 0, "logit_scale");
  m->cls = add_param(m, 1, Wv, 0, 0, 0, "visual.class_embedding");
  m->vpos = add_param(m, 2, 1 + g * g, Wv, 0, 0, "visual.positional_embedding");
  m->vis.proj = add_param(m, 2, Wv, E, 0, 0, "visual.proj");
  m->conv = add_param(m, 4, Wv, 3, P, P, "visual.conv1.weight");
  m->ln_pre_w = add_param(m, 1, Wv, 0, 0, 0, "visual.ln_pre.weight");
  m->ln_pre_b = add_param(m, 1, Wv, 0, 0, 0, "visual.ln_pre.bias");
  CL_TRY(add_tower(m, &m->vis, c->vision.width, c->vision.heads, c->vision.layers, c->vision.mlp_ratio, 0,
                "visual.transformer", e));
  m->vis.ln_w = add_param(m, 1, Wv, 0, 0, 0, "visual.ln_post.weight");
  m->vis.ln_b = add_param(m, 1, Wv, 0, 0, 0, "visual.ln_post.bias");
  m->tok = add_param(m, 2, c->text.vocab_size, Wt, 0, 0, "token_embedding.weight");
  CL_TRY(add_tower(m, &m->txt, c->text.width, c->text.heads, c->text.layers, c->text.mlp_ratio, 1, "transformer", e));
  m->txt.ln_w = add_param(m, 1, Wt, 0, 0, 0, "ln_final.weight");
  m->txt.ln_b = add_param(m, 1, Wt, 0, 0, 0, "ln_final.bias");
  return CL_OK;
}

static int load_params(cl_train_model *m, const cl_tmap *w, float *host, cl_error *e) {
  const char **names = cl_xmalloc((size_t)m->np * sizeof *names);
  int rc = CL_OK;
  for (int i = 0; i < m->np && !rc; i++) {
    const cl_train_param *p = &m->pv[i];
    const cl_tensor *t = NULL;
    names[i] = p->name;
    rc = cl_clip_check_tensor(w, p->name, p->ndim, p->shape, &t, e);
    if (!rc) rc = cl_to_f32(t->dtype, t->data, host + p->off, (int64_t)p->numel, e);
  }
  if (!rc) rc = cl_clip_check_keys(w, names, m->np, e);
  free(names);
  return rc;
}

static int has_training_entries(const cl_backend *be) {
  return be->linear_backward && be->matmul_backward && be->layernorm_backward && be->activate_backward &&
         be->scatter_add_rows && be->attention_backward && be->patch_embed_backward && be->sumsq && be->scale &&
         be->adamw && be->copy && be->zero;
}

int cl_train_model_create(const cl_clip_config *cfg, const cl_tmap *weights, cl_backend *be, cl_train_model **out,
                          cl_error *e) {
  *out = NULL;
  if (!has_training_entries(be))
    return cl_err(e, CL_EUNSUP, "the %s backend has no training kernels (use --backend cpu)", be->name);
  cl_train_model *m = cl_xcalloc(1, sizeof *m);
  m->cfg = *cfg;
  m->be = be;
  m->act = cfg->quick_gelu ? CL_ACT_QUICKGELU : CL_ACT_GELU;
  float *host = NULL;
  int rc = cl_clip_config_check(&m->cfg, e);
  if (!rc) rc = build_params(m, e);
  if (!rc) rc = be->alloc(be, m->nfloats * sizeof(float), (void **)&m->params, e);
  if (!rc) rc = be->alloc(be, m->nfloats * sizeof(float), (void **)&m->grads, e);
  if (rc) goto fail;
  host = be->host_memory ? m->params : calloc(m->nfloats, sizeof(float));
  if (!host) {
    rc = cl_err(e, CL_ENOMEM, "cannot allocate %zu MB for the weights", m->nfloats * 4 >> 20);
    goto fail;
  }
  if (be->host_memory) memset(host, 0, m->nfloats * sizeof(float)); /* the alignment gaps */
  if ((rc = load_params(m, weights, host, e))) goto fail;
  if (!be->host_memory && (rc = be->upload(be, m->params, host, m->nfloats * sizeof(float), e))) goto fail;
  if ((rc = be->zero(be, m->grads, m->nfloats * sizeof(float), e))) goto fail;
  if (host != m->params) free(host);
  *out = m;
  return CL_OK;
fail:
  if (host != m->params) free(host);
  cl_train_model_free(m);
  cl_err_wrap(e, "loading the CLIP model for training");
  return rc;
}

static void free_acts(cl_backend *be, tower_acts *a) {
  if (a->arena) be->free(be, a->arena);
  free(a->idx);
}

void cl_train_model_free(cl_train_model *m) {
  if (!m) return;
  cl_backend *be = m->be;
  if (m->params) be->free(be, m->params);
  if (m->grads) be->free(be, m->grads);
  if (m->scratch) be->free(be, m->scratch);
  free_acts(be, &m->vis.a);
  free_acts(be, &m->txt.a);
  free(m->vis.blk);
  free(m->txt.blk);
  free(m->pv);
  free(m);
}

const cl_clip_config *cl_train_model_config(const cl_train_model *m) { return &m->cfg; }
int cl_train_nparams(const cl_train_model *m) { return m->np; }
cl_train_param *cl_train_param_at(cl_train_model *m, int i) { return i >= 0 && i < m->np ? &m->pv[i] : NULL; }
float *cl_train_params(cl_train_model *m) { return m->params; }
float *cl_train_grads(cl_train_model *m) { return m->grads; }
size_t cl_train_nfloats(const cl_train_model *m) { return m->nfloats; }
cl_backend *cl_train_be(cl_train_model *m) { return m->be; }

/* --- activations --- */

static size_t al16(size_t n) { return (n + 15) & ~(size_t)15; }

static size_t layer_floats(const tower *tw, size_t T) {
  const size_t W = tw->width, M = tw->mlp;
  return al16(T * W) * 5 + al16(T * 3 * W) + 2 * al16(T * M);
}

/* The saved tensors of layer l: input, ln_1 output, qkv, attention output, residual after
 * attention, ln_2 output, c_fc output before and after the activation. */
typedef struct layer_acts {
  float *xin, *h1, *qkv, *att, *xmid, *h2, *pre, *act;
} layer_acts;

static layer_acts acts_of(const tower *tw, int l) {
  const size_t T = (size_t)tw->a.T, W = tw->width, M = tw->mlp;
  float *p = tw->a.layers + layer_floats(tw, T) * l;
  layer_acts a;
  a.xin = p, p += al16(T * W);
  a.h1 = p, p += al16(T * W);
  a.qkv = p, p += al16(T * 3 * W);
  a.att = p, p += al16(T * W);
  a.xmid = p, p += al16(T * W);
  a.h2 = p, p += al16(T * W);
  a.pre = p, p += al16(T * M);
  a.act = p;
  return a;
}

/* Sizes the tower's arena for T tokens in nseq sequences (npix pixel floats to upload). */
static int acts_alloc(cl_train_model *m, tower *tw, int T, int nseq, size_t npix, cl_error *e) {
  tower_acts *a = &tw->a;
  const size_t W = tw->width, E = m->cfg.embed_dim;
  const size_t per = layer_floats(tw, (size_t)T);
  if (per > SIZE_MAX / 4 / (size_t)(tw->layers + 2))
    return cl_err(e, CL_EINVAL, "batch too large (%d tokens)", T);
  const size_t need = al16((size_t)T * W) * 2 + per * tw->layers + 3 * al16((size_t)nseq * W) + al16(nseq * E) +
                      al16(npix);
  if (need > a->cap) {
    if (a->arena) m->be->free(m->be, a->arena);
    a->arena = NULL, a->cap = 0;
    CL_TRY(m->be->alloc(m->be, need * sizeof(float), (void **)&a->arena, e));
    a->cap = need;
  }
  a->T = T, a->nseq = nseq;
  float *p = a->arena;
  a->x0 = p, p += al16((size_t)T * W);
  a->layers = p, p += per * tw->layers;
  a->xout = p, p += al16((size_t)T * W);
  a->pooled = p, p += al16((size_t)nseq * W);
  a->lnp = p, p += al16((size_t)nseq * W);
  a->emb = p, p += al16((size_t)nseq * E);
  a->pix = npix ? p : NULL;
  const size_t nidx = 2 * (size_t)nseq + 1 + 2 * (size_t)T;
  if (nidx > a->idx_cap) {
    free(a->idx);
    a->idx = malloc(nidx * sizeof *a->idx);
    a->idx_cap = a->idx ? nidx : 0;
    if (!a->idx) return cl_err(e, CL_ENOMEM, "out of memory (%zu indices)", nidx);
  }
  return CL_OK;
}

#define P(off) (m->params + (off))
#define G(off) (m->grads + (off))

/* The residual blocks from layer 0's input (already in acts_of(tw, 0).xin) to tw->a.xout,
 * then ln_post / ln_final on the pooled rows and the projection into a.emb. Pre-norm:
 * xmid = xin + out_proj(MHA(ln_1 xin)); xout = xmid + c_proj(act(c_fc(ln_2 xmid))). */
static int tower_forward(cl_train_model *m, tower *tw, cl_error *e) {
  cl_backend *be = m->be;
  tower_acts *A = &tw->a;
  const int T = A->T, n = A->nseq, W = tw->width, M = tw->mlp, E = m->cfg.embed_dim;
  const int32_t *off = A->idx, *pool = A->idx + n + 1;
  for (int l = 0; l < tw->layers; l++) {
    const blk_off *b = &tw->blk[l];
    layer_acts a = acts_of(tw, l);
    float *next = l + 1 < tw->layers ? acts_of(tw, l + 1).xin : A->xout;
    CL_TRY(be->layernorm(be, a.h1, a.xin, P(b->ln1_w), P(b->ln1_b), T, W, CL_CLIP_LN_EPS, e));
    CL_TRY(be->linear(be, a.qkv, a.h1, P(b->qkv_w), P(b->qkv_b), T, W, 3 * W, CL_ACT_NONE, 0, e));
    CL_TRY(be->attention(be, a.att, a.qkv, off, n, W, tw->heads, tw->causal, e));
    CL_TRY(be->linear(be, a.xmid, a.att, P(b->out_w), P(b->out_b), T, W, W, CL_ACT_NONE, 0, e));
    CL_TRY(be->add(be, a.xmid, a.xin, (size_t)T * W, e));
    CL_TRY(be->layernorm(be, a.h2, a.xmid, P(b->ln2_w), P(b->ln2_b), T, W, CL_CLIP_LN_EPS, e));
    CL_TRY(be->linear(be, a.pre, a.h2, P(b->fc_w), P(b->fc_b), T, W, M, CL_ACT_NONE, 0, e));
    CL_TRY(be->copy(be, a.act, a.pre, (size_t)T * M * sizeof(float), e));
    CL_TRY(be->activate(be, a.act, (size_t)T * M, m->act, e));
    CL_TRY(be->linear(be, next, a.act, P(b->proj_w), P(b->proj_b), T, M, W, CL_ACT_NONE, 0, e));
    CL_TRY(be->add(be, next, a.xmid, (size_t)T * W, e));
  }
  CL_TRY(be->gather_rows(be, A->pooled, A->xout, T, pool, n, W, 0, e));
  CL_TRY(be->layernorm(be, A->lnp, A->pooled, P(tw->ln_w), P(tw->ln_b), n, W, CL_CLIP_LN_EPS, e));
  return be->matmul(be, A->emb, A->lnp, P(tw->proj), n, W, E, e);
}

/* Scratch for the backward of a tower: d, dh [T,W], dbig [T, max(3W,M)], dsmall [2,n,W]. */
static int scratch(cl_train_model *m, const tower *tw, float **d, float **dh, float **dbig, float **ds, cl_error *e) {
  const size_t T = tw->a.T, W = tw->width, big = tw->mlp > 3 * tw->width ? (size_t)tw->mlp : 3 * W;
  const size_t need = 2 * al16(T * W) + al16(T * big) + 2 * al16((size_t)tw->a.nseq * W);
  if (need > m->scratch_cap) {
    if (m->scratch) m->be->free(m->be, m->scratch);
    m->scratch = NULL, m->scratch_cap = 0;
    CL_TRY(m->be->alloc(m->be, need * sizeof(float), (void **)&m->scratch, e));
    m->scratch_cap = need;
  }
  *d = m->scratch, *dh = *d + al16(T * W), *dbig = *dh + al16(T * W), *ds = *dbig + al16(T * big);
  return CL_OK;
}

/* From demb [n,E] (backend memory) back through the projection, the final LayerNorm, the
 * pooling and every block: adds every parameter gradient of the tower and leaves
 * d loss / d (layer 0's input) in *dx0 (the scratch's d). */
static int tower_backward(cl_train_model *m, tower *tw, const float *demb, float **dx0, cl_error *e) {
  cl_backend *be = m->be;
  tower_acts *A = &tw->a;
  const int T = A->T, n = A->nseq, W = tw->width, M = tw->mlp, E = m->cfg.embed_dim;
  const int32_t *off = A->idx, *pool = A->idx + n + 1;
  float *d, *dh, *dbig, *ds;
  CL_TRY(scratch(m, tw, &d, &dh, &dbig, &ds, e));
  float *dlnp = ds, *dpooled = ds + al16((size_t)n * W);
  CL_TRY(be->matmul_backward(be, dlnp, G(tw->proj), demb, A->lnp, P(tw->proj), n, W, E, 0, e));
  CL_TRY(be->layernorm_backward(be, dpooled, G(tw->ln_w), G(tw->ln_b), dlnp, A->pooled, P(tw->ln_w), n, W, CL_CLIP_LN_EPS, 0,
                             e));
  CL_TRY(be->zero(be, d, (size_t)T * W * sizeof(float), e));
  CL_TRY(be->scatter_add_rows(be, d, T, pool, dpooled, n, W, e));
  for (int l = tw->layers - 1; l >= 0; l--) {
    const blk_off *b = &tw->blk[l];
    layer_acts a = acts_of(tw, l);
    /* d = d xout: through the MLP into dh, then ln_2 adds into d = d xmid */
    CL_TRY(be->linear_backward(be, dbig, G(b->proj_w), G(b->proj_b), d, a.act, P(b->proj_w), T, M, W, 0, e));
    CL_TRY(be->activate_backward(be, dbig, dbig, a.pre, (size_t)T * M, m->act, e));
    CL_TRY(be->linear_backward(be, dh, G(b->fc_w), G(b->fc_b), dbig, a.h2, P(b->fc_w), T, W, M, 0, e));
    CL_TRY(be->layernorm_backward(be, d, G(b->ln2_w), G(b->ln2_b), dh, a.xmid, P(b->ln2_w), T, W, CL_CLIP_LN_EPS, 1, e));
    /* d = d xmid: through attention into dh, then ln_1 adds into d = d xin */
    CL_TRY(be->linear_backward(be, dh, G(b->out_w), G(b->out_b), d, a.att, P(b->out_w), T, W, W, 0, e));
    CL_TRY(be->attention_backward(be, dbig, dh, a.qkv, off, n, W, tw->heads, tw->causal, e));
    CL_TRY(be->linear_backward(be, dh, G(b->qkv_w), G(b->qkv_b), dbig, a.h1, P(b->qkv_w), T, W, 3 * W, 0, e));
    CL_TRY(be->layernorm_backward(be, d, G(b->ln1_w), G(b->ln1_b), dh, a.xin, P(b->ln1_w), T, W, CL_CLIP_LN_EPS, 1, e));
  }
  *dx0 = d;
  return CL_OK;
}

/* --- the towers' stems --- */

static int image_forward(cl_train_model *m, const float *pixels, int n, cl_error *e) {
  cl_backend *be = m->be;
  const cl_clip_vision_cfg *v = &m->cfg.vision;
  const int g = v->image_size / v->patch_size, S = 1 + g * g, T = n * S;
  const size_t npix = 3 * (size_t)v->image_size * v->image_size * n;
  tower *tw = &m->vis;
  CL_TRY(acts_alloc(m, tw, T, n, be->host_memory ? 0 : npix, e));
  int32_t *off = tw->a.idx, *pool = off + n + 1;
  for (int i = 0; i <= n; i++) off[i] = i * S;
  for (int i = 0; i < n; i++) pool[i] = i * S; /* the class token */
  if (!be->host_memory) {
    CL_TRY(be->upload(be, tw->a.pix, pixels, npix * sizeof(float), e));
    pixels = tw->a.pix;
  } else {
    tw->a.pix = (float *)pixels; /* read again by the backward */
  }
  CL_TRY(be->patch_embed(be, tw->a.x0, pixels, P(m->conv), P(m->cls), P(m->vpos), n, 3, v->image_size, v->patch_size,
                      v->width, e));
  CL_TRY(be->layernorm(be, acts_of(tw, 0).xin, tw->a.x0, P(m->ln_pre_w), P(m->ln_pre_b), T, v->width, CL_CLIP_LN_EPS, e));
  return tower_forward(m, tw, e);
}

static int image_backward(cl_train_model *m, const float *demb, cl_error *e) {
  cl_backend *be = m->be;
  const cl_clip_vision_cfg *v = &m->cfg.vision;
  tower *tw = &m->vis;
  float *d, *dh, *dbig, *ds;
  CL_TRY(tower_backward(m, tw, demb, &d, e));
  CL_TRY(scratch(m, tw, &d, &dh, &dbig, &ds, e));
  CL_TRY(be->layernorm_backward(be, dh, G(m->ln_pre_w), G(m->ln_pre_b), d, tw->a.x0, P(m->ln_pre_w), tw->a.T, v->width,
                             CL_CLIP_LN_EPS, 0, e));
  return be->patch_embed_backward(be, G(m->conv), G(m->cls), G(m->vpos), dh, tw->a.pix, tw->a.nseq, 3, v->image_size,
                                  v->patch_size, v->width, e);
}

static int text_forward(cl_train_model *m, const int32_t *ids, int n, cl_error *e) {
  cl_backend *be = m->be;
  const cl_clip_text_cfg *t = &m->cfg.text;
  const int ctx = t->context_length;
  int T = 0;
  for (int i = 0; i < n; i++) {
    for (int j = 0; j < ctx; j++)
      if (ids[(size_t)i * ctx + j] < 0 || ids[(size_t)i * ctx + j] >= t->vocab_size)
        return cl_err(e, CL_EINVAL, "text %d, position %d: token id %d outside the vocabulary [0,%d)", i, j,
                      ids[(size_t)i * ctx + j], t->vocab_size);
    T += cl_clip_pool_index(ids + (size_t)i * ctx, ctx) + 1;
  }
  tower *tw = &m->txt;
  CL_TRY(acts_alloc(m, tw, T, n, 0, e));
  int32_t *off = tw->a.idx, *pool = off + n + 1, *tok = pool + n, *pos = tok + T;
  off[0] = 0;
  for (int i = 0; i < n; i++) {
    const int32_t *s = ids + (size_t)i * ctx;
    const int len = cl_clip_pool_index(s, ctx) + 1;
    for (int j = 0; j < len; j++) tok[off[i] + j] = s[j], pos[off[i] + j] = j;
    pool[i] = off[i] + len - 1;
    off[i + 1] = off[i] + len;
  }
  float *x = acts_of(tw, 0).xin;
  CL_TRY(be->gather_rows(be, x, P(m->tok), t->vocab_size, tok, T, t->width, 0, e));
  CL_TRY(be->gather_rows(be, x, P(m->tpos), ctx, pos, T, t->width, 1, e));
  return tower_forward(m, tw, e);
}

static int text_backward(cl_train_model *m, const float *demb, cl_error *e) {
  cl_backend *be = m->be;
  const cl_clip_text_cfg *t = &m->cfg.text;
  tower *tw = &m->txt;
  const int n = tw->a.nseq, T = tw->a.T;
  const int32_t *tok = tw->a.idx + 2 * n + 1, *pos = tok + T;
  float *d;
  CL_TRY(tower_backward(m, tw, demb, &d, e));
  CL_TRY(be->scatter_add_rows(be, G(m->tok), t->vocab_size, tok, d, T, t->width, e));
  return be->scatter_add_rows(be, G(m->tpos), t->context_length, pos, d, T, t->width, e);
}

/* --- one step's gradients --- */

int cl_train_forward_backward(cl_train_model *m, const float *pixels, const int32_t *ids, int n, float *loss,
                              cl_train_outputs *outs, cl_error *e) {
  cl_backend *be = m->be;
  const int E = m->cfg.embed_dim;
  if (n < 1 || !pixels || !ids) return cl_err(e, CL_EINVAL, "forward_backward: bad arguments (n = %d)", n);
  const size_t ne = (size_t)n * E;
  float *host = cl_xmalloc(4 * ne * sizeof(float)), *img = host, *txt = host + ne, *dimg = txt + ne, *dtxt = dimg + ne;
  float ls = 0;
  int rc = be->zero(be, m->grads, m->nfloats * sizeof(float), e);
  if (!rc) rc = image_forward(m, pixels, n, e);
  if (!rc) rc = text_forward(m, ids, n, e);
  if (!rc) rc = be->download(be, img, m->vis.a.emb, ne * sizeof(float), e);
  if (!rc) rc = be->download(be, txt, m->txt.a.emb, ne * sizeof(float), e);
  if (!rc) rc = be->download(be, &ls, P(m->logit_scale), sizeof ls, e);
  if (!rc) rc = be->sync(be, e);
  if (!rc) {
    double dls = 0;
    *loss = (float)cl_train_clip_loss(img, txt, n, E, ls, dimg, dtxt, &dls);
    const float g = (float)dls;
    if (outs && outs->image_embeds) memcpy(outs->image_embeds, img, ne * sizeof(float));
    if (outs && outs->text_embeds) memcpy(outs->text_embeds, txt, ne * sizeof(float));
    /* the embeddings' gradients go where the embeddings were (no longer needed) */
    rc = be->upload(be, m->vis.a.emb, dimg, ne * sizeof(float), e);
    if (!rc) rc = be->upload(be, m->txt.a.emb, dtxt, ne * sizeof(float), e);
    if (!rc) rc = be->upload(be, G(m->logit_scale), &g, sizeof g, e);
  }
  if (!rc) rc = image_backward(m, m->vis.a.emb, e);
  if (!rc) rc = text_backward(m, m->txt.a.emb, e);
  if (!rc) rc = be->sync(be, e);
  free(host);
  if (rc) cl_err_wrap(e, "training step on %d pairs", n);
  return rc;
}

int cl_train_export(cl_train_model *m, int grads, const char *prefix, cl_tmap *out, cl_error *e) {
  const float *src = grads ? m->grads : m->params;
  for (int i = 0; i < m->np; i++) {
    const cl_train_param *p = &m->pv[i];
    char name[160];
    snprintf(name, sizeof name, "%s%s", prefix ? prefix : "", p->name);
    cl_tensor *t = cl_tmap_put_copy(out, name, CL_F32, p->ndim, p->shape, NULL);
    if (!t) return cl_err(e, CL_ENOMEM, "out of memory");
    CL_TRY(m->be->download(m->be, t->data, src + p->off, p->numel * sizeof(float), e));
  }
  return m->be->sync(m->be, e);
}
