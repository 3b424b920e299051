/* cl_clip: loading an open_clip CLIP state dict and running both towers on a backend.
 * Layout: every tensor lives in one backend allocation (weights) and every activation in
 * another (the arena, grown on demand and reused). A batch is cut into chunks of at most
 * max_tokens tokens; within a chunk all sequences are packed row after row, so each GEMM
 * runs over every token of the chunk at once. Texts are packed at their real lengths. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cl_clip.h"

#define LN_EPS CL_CLIP_LN_EPS
#define TRY(x)                   \
  do {                           \
    int _rc = (x);               \
    if (_rc) return _rc;         \
  } while (0)

typedef struct clip_block {
  const float *ln1_w, *ln1_b, *qkv_w, *qkv_b, *out_w, *out_b;
  const float *ln2_w, *ln2_b, *fc_w, *fc_b, *proj_w, *proj_b;
} clip_block;

typedef struct clip_tower {
  int width, heads, layers, mlp;
  clip_block *blk;
} clip_tower;

struct cl_clip {
  cl_clip_config cfg;
  cl_backend *be;
  cl_act act;
  float logit_scale;
  float *weights; /* backend memory: every parameter, F32 */
  size_t nweights;
  clip_tower vis, txt;
  const float *v_conv, *v_cls, *v_pos, *v_ln_pre_w, *v_ln_pre_b, *v_ln_post_w, *v_ln_post_b, *v_proj;
  const float *t_tok, *t_pos, *t_ln_w, *t_ln_b, *t_proj;
  /* activations (backend memory) carved from one arena: the residual stream x [T,W], h [T,W]
   * (LayerNorm output, then attention output), big [T, max(3W, mlp)] (qkv, then the MLP
   * hidden), in (pixels), pool [n,W], emb [n,E] */
  float *arena;
  size_t arena_cap;
  float *x, *h, *big, *in, *pool, *emb;
  int32_t *idx; /* host index arrays for the backend */
  size_t idx_cap;
  int full_context, max_tokens;
};

/* --- the state dict a config implies --- */

typedef struct wspec {
  char name[112];
  int ndim;
  int64_t shape[4];
  const float **slot; /* where the F32 pointer goes; NULL for logit_scale */
  const cl_tensor *t;
  size_t off; /* in floats, within the weights allocation */
} wspec;

typedef struct wlist {
  wspec *v;
  int n, cap;
} wlist;

static void spec(wlist *l, const float **slot, int ndim, int64_t d0, int64_t d1, int64_t d2,
                 int64_t d3, const char *fmt, ...) __attribute__((format(printf, 8, 9)));
static void spec(wlist *l, const float **slot, int ndim, int64_t d0, int64_t d1, int64_t d2,
                 int64_t d3, const char *fmt, ...) {
  if (l->n == l->cap) {
    l->cap = l->cap ? 2 * l->cap : 256;
    l->v = realloc(l->v, (size_t)l->cap * sizeof *l->v);
    if (!l->v) abort();
  }
  wspec *s = &l->v[l->n++];
  memset(s, 0, sizeof *s);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->name, sizeof s->name, fmt, ap);
  va_end(ap);
  s->ndim = ndim;
  s->shape[0] = d0, s->shape[1] = d1, s->shape[2] = d2, s->shape[3] = d3;
  s->slot = slot;
}

static void spec_tower(wlist *l, clip_tower *tw, const char *prefix) {
  const int64_t W = tw->width, M = tw->mlp;
  for (int i = 0; i < tw->layers; i++) {
    clip_block *b = &tw->blk[i];
    spec(l, &b->ln1_w, 1, W, 0, 0, 0, "%s.resblocks.%d.ln_1.weight", prefix, i);
    spec(l, &b->ln1_b, 1, W, 0, 0, 0, "%s.resblocks.%d.ln_1.bias", prefix, i);
    spec(l, &b->qkv_w, 2, 3 * W, W, 0, 0, "%s.resblocks.%d.attn.in_proj_weight", prefix, i);
    spec(l, &b->qkv_b, 1, 3 * W, 0, 0, 0, "%s.resblocks.%d.attn.in_proj_bias", prefix, i);
    spec(l, &b->out_w, 2, W, W, 0, 0, "%s.resblocks.%d.attn.out_proj.weight", prefix, i);
    spec(l, &b->out_b, 1, W, 0, 0, 0, "%s.resblocks.%d.attn.out_proj.bias", prefix, i);
    spec(l, &b->ln2_w, 1, W, 0, 0, 0, "%s.resblocks.%d.ln_2.weight", prefix, i);
    spec(l, &b->ln2_b, 1, W, 0, 0, 0, "%s.resblocks.%d.ln_2.bias", prefix, i);
    spec(l, &b->fc_w, 2, M, W, 0, 0, "%s.resblocks.%d.mlp.c_fc.weight", prefix, i);
    spec(l, &b->fc_b, 1, M, 0, 0, 0, "%s.resblocks.%d.mlp.c_fc.bias", prefix, i);
    spec(l, &b->proj_w, 2, W, M, 0, 0, "%s.resblocks.%d.mlp.c_proj.weight", prefix, i);
    spec(l, &b->proj_b, 1, W, 0, 0, 0, "%s.resblocks.%d.mlp.c_proj.bias", prefix, i);
  }
}

/* In forward order: the first mismatch reported is the first the model would hit. */
static void spec_model(wlist *l, cl_clip *m) {
  const cl_clip_config *c = &m->cfg;
  const int64_t Wv = c->vision.width, P = c->vision.patch_size, E = c->embed_dim;
  const int64_t g = c->vision.image_size / P, Wt = c->text.width;
  spec(l, &m->v_conv, 4, Wv, 3, P, P, "visual.conv1.weight");
  spec(l, &m->v_cls, 1, Wv, 0, 0, 0, "visual.class_embedding");
  spec(l, &m->v_pos, 2, 1 + g * g, Wv, 0, 0, "visual.positional_embedding");
  spec(l, &m->v_ln_pre_w, 1, Wv, 0, 0, 0, "visual.ln_pre.weight");
  spec(l, &m->v_ln_pre_b, 1, Wv, 0, 0, 0, "visual.ln_pre.bias");
  spec_tower(l, &m->vis, "visual.transformer");
  spec(l, &m->v_ln_post_w, 1, Wv, 0, 0, 0, "visual.ln_post.weight");
  spec(l, &m->v_ln_post_b, 1, Wv, 0, 0, 0, "visual.ln_post.bias");
  spec(l, &m->v_proj, 2, Wv, E, 0, 0, "visual.proj");
  spec(l, &m->t_tok, 2, c->text.vocab_size, Wt, 0, 0, "token_embedding.weight");
  spec(l, &m->t_pos, 2, c->text.context_length, Wt, 0, 0, "positional_embedding");
  spec_tower(l, &m->txt, "transformer");
  spec(l, &m->t_ln_w, 1, Wt, 0, 0, 0, "ln_final.weight");
  spec(l, &m->t_ln_b, 1, Wt, 0, 0, 0, "ln_final.bias");
  spec(l, &m->t_proj, 2, Wt, E, 0, 0, "text_projection");
  spec(l, NULL, c->nonscalar_logit_scale ? 1 : 0, 1, 0, 0, 0, "logit_scale");
}

static int is_float(cl_dtype t) { return t == CL_F32 || t == CL_F16 || t == CL_BF16 || t == CL_F64; }

int cl_clip_check_tensor(const cl_tmap *w, const char *name, int ndim, const int64_t *shape, const cl_tensor **out,
                         cl_error *e) {
  const cl_tensor *t = cl_tmap_get(w, name);
  if (!t) return cl_err(e, CL_ESHAPE, "missing key %s", name);
  char want[96], got[96];
  cl_tensor ref = {.ndim = ndim};
  memcpy(ref.shape, shape, (size_t)ndim * sizeof *shape);
  if (!cl_shape_eq(t, ndim, shape))
    return cl_err(e, CL_ESHAPE, "%s: expected %s, got %s", name, cl_shape_str(&ref, want, sizeof want),
                  cl_shape_str(t, got, sizeof got));
  if (!is_float(t->dtype))
    return cl_err(e, CL_EFORMAT, "%s: dtype %s, expected a float dtype (F32, F16, BF16, F64)", name,
                  cl_dtype_name(t->dtype));
  if (out) *out = t;
  return CL_OK;
}

int cl_clip_check_keys(const cl_tmap *w, const char *const *names, int n, cl_error *e) {
  for (int i = 0; i < w->n; i++) {
    int found = 0;
    for (int j = 0; j < n && !found; j++) found = !strcmp(w->v[i].name, names[j]);
    if (!found)
      return cl_err(e, CL_ESHAPE, "unexpected key %s (not part of a model with this config)", w->v[i].name);
  }
  return CL_OK;
}

/* Keys of w outside names: refused, or (unused non-NULL) left unused and listed in *unused
 * when they are no other architecture's (no transformer block of another depth or tower). */
static int unused_keys(const cl_tmap *w, const char *const *names, int n, char **unused, cl_error *e) {
  if (!unused) return cl_clip_check_keys(w, names, n, e);
  for (int i = 0; i < w->n; i++) {
    const char *k = w->v[i].name;
    int found = 0;
    for (int j = 0; j < n && !found; j++) found = !strcmp(k, names[j]);
    if (found) continue;
    if (strstr(k, "resblocks."))
      return cl_err(e, CL_ESHAPE, "unexpected key %s (not part of a model with this config)", k);
    char *old = *unused;
    *unused = old ? cl_asprintf("%s, %s", old, k) : cl_strdup(k);
    free(old);
  }
  return CL_OK;
}

/* Checks every key against the map; fills s->t and s->off; returns the total floats. */
static int check_weights(wlist *l, const cl_tmap *wm, size_t *total, char **unused, cl_error *e) {
  size_t off = 0;
  const char **names = cl_xmalloc((size_t)(l->n ? l->n : 1) * sizeof *names);
  for (int i = 0; i < l->n; i++) {
    wspec *s = &l->v[i];
    names[i] = s->name;
    if (cl_clip_check_tensor(wm, s->name, s->ndim, s->shape, &s->t, e)) return free(names), e->code;
    s->off = off;
    off += ((size_t)cl_tensor_numel(s->t) + 15) & ~(size_t)15; /* 64-byte aligned tensors */
  }
  int rc = unused_keys(wm, names, l->n, unused, e);
  free(names);
  *total = off;
  return rc;
}

/* Converts every tensor into dst, in chunks so that threads share the big ones. */
static int convert_weights(const wlist *l, float *dst, cl_error *e) {
  enum { CHUNK = 1 << 20 };
  int nchunks = 0;
  for (int i = 0; i < l->n; i++) nchunks += (int)((cl_tensor_numel(l->v[i].t) + CHUNK - 1) / CHUNK);
  int failed = 0;
#pragma omp parallel for schedule(dynamic) reduction(| : failed)
  for (int c = 0; c < nchunks; c++) {
    int i = 0, k = c; /* chunk c is chunk k of tensor i */
    for (;; i++) {
      int nk = (int)((cl_tensor_numel(l->v[i].t) + CHUNK - 1) / CHUNK);
      if (k < nk) break;
      k -= nk;
    }
    const wspec *s = &l->v[i];
    int64_t start = (int64_t)k * CHUNK, n = cl_tensor_numel(s->t) - start;
    if (n > CHUNK) n = CHUNK;
    const char *src = (const char *)s->t->data + (size_t)start * cl_dtype_size(s->t->dtype);
    failed |= cl_to_f32(s->t->dtype, src, dst + s->off + start, n, NULL) != CL_OK;
  }
  if (failed) return cl_err(e, CL_EFORMAT, "weights: dtype conversion failed");
  return CL_OK;
}

static int init_tower(clip_tower *tw, int width, int heads, int layers, double mlp_ratio, cl_error *e) {
  tw->width = width, tw->heads = heads, tw->layers = layers;
  tw->mlp = (int)(width * mlp_ratio);
  tw->blk = calloc((size_t)layers, sizeof *tw->blk);
  if (!tw->blk) return cl_err(e, CL_ENOMEM, "out of memory");
  return CL_OK;
}

/* Hands every nn.Linear weight to the backend once (ops/cl_ops.h: prepare_linear); they are
 * the backend's from then on, valid only as linear() weights. The weights allocation is ours
 * (not const): the slots are const only for the forward code. */
static int prepare_tower(cl_backend *be, const clip_tower *tw, cl_error *e) {
  if (!be->prepare_linear) return CL_OK;
  const int W = tw->width, M = tw->mlp;
  for (int i = 0; i < tw->layers; i++) {
    const clip_block *b = &tw->blk[i];
    TRY(be->prepare_linear(be, (float *)b->qkv_w, 3 * W, W, e));
    TRY(be->prepare_linear(be, (float *)b->out_w, W, W, e));
    TRY(be->prepare_linear(be, (float *)b->fc_w, M, W, e));
    TRY(be->prepare_linear(be, (float *)b->proj_w, W, M, e));
  }
  return CL_OK;
}

int cl_clip_load(const cl_clip_config *cfg, const cl_tmap *weights, cl_backend *be, cl_clip **out,
                 cl_error *e) {
  return cl_clip_load_unused(cfg, weights, be, out, NULL, e);
}

int cl_clip_load_unused(const cl_clip_config *cfg, const cl_tmap *weights, cl_backend *be, cl_clip **out,
                        char **unused, cl_error *e) {
  *out = NULL;
  if (unused) *unused = NULL;
  cl_clip *m = calloc(1, sizeof *m);
  if (!m) return cl_err(e, CL_ENOMEM, "out of memory");
  m->cfg = *cfg;
  m->be = be;
  m->max_tokens = CL_CLIP_MAX_TOKENS;
  m->act = cfg->quick_gelu ? CL_ACT_QUICKGELU : CL_ACT_GELU;
  wlist l = {0};
  float *host = NULL;
  size_t total = 0;
  int rc = cl_clip_config_check(&m->cfg, e);
  const cl_clip_config *c = &m->cfg;
  if (!rc) rc = init_tower(&m->vis, c->vision.width, c->vision.heads, c->vision.layers, c->vision.mlp_ratio, e);
  if (!rc) rc = init_tower(&m->txt, c->text.width, c->text.heads, c->text.layers, c->text.mlp_ratio, e);
  if (rc) goto fail;
  spec_model(&l, m);
  if ((rc = check_weights(&l, weights, &total, unused, e))) goto fail;
  if ((rc = be->alloc(be, total * sizeof(float), (void **)&m->weights, e))) goto fail;
  m->nweights = total;
  /* a host-memory backend gets converted in place; others get one upload */
  host = be->host_memory ? m->weights : malloc(total * sizeof(float));
  if (!host) {
    rc = cl_err(e, CL_ENOMEM, "cannot allocate %zu MB to convert the weights", total * 4 >> 20);
    goto fail;
  }
  if ((rc = convert_weights(&l, host, e))) goto fail;
  for (int i = 0; i < l.n; i++)
    if (l.v[i].slot) *l.v[i].slot = m->weights + l.v[i].off;
    else m->logit_scale = host[l.v[i].off];
  if (!be->host_memory && (rc = be->upload(be, m->weights, host, total * sizeof(float), e))) goto fail;
  if (host != m->weights) free(host);
  host = NULL;
  if ((rc = prepare_tower(be, &m->vis, e)) || (rc = prepare_tower(be, &m->txt, e))) goto fail;
  free(l.v);
  *out = m;
  return CL_OK;
fail:
  if (host != m->weights) free(host);
  if (unused) free(*unused), *unused = NULL;
  free(l.v);
  cl_clip_free(m);
  cl_err_wrap(e, "loading the CLIP model");
  return rc;
}

void cl_clip_free(cl_clip *m) {
  if (!m) return;
  if (m->weights) m->be->free(m->be, m->weights);
  if (m->arena) m->be->free(m->be, m->arena);
  free(m->vis.blk);
  free(m->txt.blk);
  free(m->idx);
  free(m);
}

float cl_clip_logit_scale(const cl_clip *m) { return m->logit_scale; }
int cl_clip_embed_dim(const cl_clip *m) { return m->cfg.embed_dim; }
const cl_clip_config *cl_clip_get_config(const cl_clip *m) { return &m->cfg; }
void cl_clip_set_full_context(cl_clip *m, int on) { m->full_context = on != 0; }
void cl_clip_set_max_tokens(cl_clip *m, int max_tokens) {
  /* bounded so that token counts and index arrays stay far from int overflow */
  m->max_tokens = max_tokens < 1 ? 1 : max_tokens > (1 << 24) ? (1 << 24) : max_tokens;
}

/* --- forward --- */

static size_t al16(size_t n) { return (n + 15) & ~(size_t)15; }

/* Carves the arena for a chunk of T tokens and nseq sequences, growing it if needed. */
static int arena(cl_clip *m, const clip_tower *tw, size_t T, size_t nseq, size_t npix, cl_error *e) {
  const size_t W = tw->width, big = tw->mlp > 3 * tw->width ? (size_t)tw->mlp : 3 * W;
  const size_t sz[6] = {al16(T * W), al16(T * W), al16(T * big), al16(npix), al16(nseq * W),
                        al16(nseq * m->cfg.embed_dim)};
  size_t need = 0;
  for (int i = 0; i < 6; i++) need += sz[i];
  if (need > m->arena_cap) {
    m->be->free(m->be, m->arena);
    m->arena = NULL;
    m->arena_cap = 0;
    TRY(m->be->alloc(m->be, need * sizeof(float), (void **)&m->arena, e));
    m->arena_cap = need;
  }
  float **bufs[6] = {&m->x, &m->h, &m->big, &m->in, &m->pool, &m->emb};
  float *p = m->arena;
  for (int i = 0; i < 6; i++) *bufs[i] = p, p += sz[i];
  return CL_OK;
}

static int32_t *host_idx(cl_clip *m, size_t n, cl_error *e) {
  if (n > m->idx_cap) {
    free(m->idx);
    m->idx = malloc(n * sizeof *m->idx);
    m->idx_cap = m->idx ? n : 0;
    if (!m->idx) cl_err(e, CL_ENOMEM, "out of memory (%zu indices)", n);
  }
  return m->idx;
}

/* The residual blocks over T packed tokens in m->x. Pre-norm:
 * x += out_proj(MHA(ln_1 x)); x += c_proj(act(c_fc(ln_2 x))).
 * Only the pooled token of each sequence (pool_idx) leaves the tower, so the last block
 * runs its attention over every token (their keys and values are needed) but the rest only
 * for the nseq pooled rows: the same numbers for those rows, about 6% fewer FLOPs. On
 * return the pooled rows' outputs are m->h[0 .. nseq). */
static int run_tower(cl_clip *m, const clip_tower *tw, int T, const int32_t *off, const int32_t *pool_idx,
                     int nseq, int causal, cl_error *e) {
  cl_backend *be = m->be;
  const int W = tw->width, M = tw->mlp;
  for (int i = 0; i < tw->layers; i++) {
    const clip_block *b = &tw->blk[i];
    TRY(be->layernorm(be, m->h, m->x, b->ln1_w, b->ln1_b, T, W, LN_EPS, e));
    TRY(be->linear(be, m->big, m->h, b->qkv_w, b->qkv_b, T, W, 3 * W, CL_ACT_NONE, 0, e));
    TRY(be->attention(be, m->h, m->big, off, nseq, W, tw->heads, causal, e));
    if (i == tw->layers - 1) break;
    TRY(be->linear(be, m->x, m->h, b->out_w, b->out_b, T, W, W, CL_ACT_NONE, 1, e));
    TRY(be->layernorm(be, m->h, m->x, b->ln2_w, b->ln2_b, T, W, LN_EPS, e));
    TRY(be->linear(be, m->big, m->h, b->fc_w, b->fc_b, T, W, M, m->act, 0, e));
    TRY(be->linear(be, m->x, m->big, b->proj_w, b->proj_b, T, M, W, CL_ACT_NONE, 1, e));
  }
  /* the last block's tail on the pooled rows: attention rows -> big, residual rows -> h */
  const clip_block *b = &tw->blk[tw->layers - 1];
  TRY(be->gather_rows(be, m->big, m->h, T, pool_idx, nseq, W, 0, e));
  TRY(be->gather_rows(be, m->h, m->x, T, pool_idx, nseq, W, 0, e));
  TRY(be->linear(be, m->h, m->big, b->out_w, b->out_b, nseq, W, W, CL_ACT_NONE, 1, e));
  TRY(be->layernorm(be, m->x, m->h, b->ln2_w, b->ln2_b, nseq, W, LN_EPS, e));
  TRY(be->linear(be, m->big, m->x, b->fc_w, b->fc_b, nseq, W, M, m->act, 0, e));
  TRY(be->linear(be, m->h, m->big, b->proj_w, b->proj_b, nseq, M, W, CL_ACT_NONE, 1, e));
  return CL_OK;
}

/* LayerNorm the pooled rows (m->h after run_tower), project them, copy them out. */
static int pool_project(cl_clip *m, const clip_tower *tw, int nseq, const float *ln_w, const float *ln_b,
                        const float *proj, float *out, cl_error *e) {
  cl_backend *be = m->be;
  const int W = tw->width, E = m->cfg.embed_dim;
  TRY(be->layernorm(be, m->pool, m->h, ln_w, ln_b, nseq, W, LN_EPS, e));
  TRY(be->matmul(be, m->emb, m->pool, proj, nseq, W, E, e));
  return be->download(be, out, m->emb, (size_t)nseq * E * sizeof(float), e);
}

static int encode_images(cl_clip *m, const float *pixels, int n, float *out, cl_error *e) {
  cl_backend *be = m->be;
  const cl_clip_vision_cfg *v = &m->cfg.vision;
  const int g = v->image_size / v->patch_size, S = 1 + g * g;
  const size_t per_img = 3 * (size_t)v->image_size * v->image_size;
  const int per_chunk = m->max_tokens / S > 0 ? m->max_tokens / S : 1;
  for (int start = 0; start < n;) {
    const int cnt = n - start < per_chunk ? n - start : per_chunk, T = cnt * S;
    TRY(arena(m, &m->vis, (size_t)T, (size_t)cnt, be->host_memory ? 0 : cnt * per_img, e));
    int32_t *off = host_idx(m, 2 * (size_t)cnt + 1, e), *pool = off + cnt + 1;
    if (!off) return CL_ENOMEM;
    for (int i = 0; i <= cnt; i++) off[i] = i * S;
    for (int i = 0; i < cnt; i++) pool[i] = i * S; /* the class token */
    const float *px = pixels + (size_t)start * per_img;
    if (!be->host_memory) { /* host-memory backends read the caller's pixels directly */
      TRY(be->upload(be, m->in, px, cnt * per_img * sizeof(float), e));
      px = m->in;
    }
    TRY(be->patch_embed(be, m->x, px, m->v_conv, m->v_cls, m->v_pos, cnt, 3, v->image_size,
                        v->patch_size, v->width, e));
    TRY(be->layernorm(be, m->x, m->x, m->v_ln_pre_w, m->v_ln_pre_b, T, v->width, LN_EPS, e));
    TRY(run_tower(m, &m->vis, T, off, pool, cnt, 0, e));
    TRY(pool_project(m, &m->vis, cnt, m->v_ln_post_w, m->v_ln_post_b, m->v_proj,
                     out + (size_t)start * m->cfg.embed_dim, e));
    start += cnt;
  }
  return be->sync(be, e);
}

int cl_clip_encode_images(cl_clip *m, const float *pixels, int n, float *out, cl_error *e) {
  if (n < 0 || (n > 0 && (!pixels || !out)))
    return cl_err(e, CL_EINVAL, "encode_images: bad arguments (n = %d)", n);
  int rc = encode_images(m, pixels, n, out, e);
  if (rc) cl_err_wrap(e, "encoding %d images", n);
  return rc;
}

int cl_clip_pool_index(const int32_t *ids, int n) {
  int best = 0;
  for (int j = 1; j < n; j++)
    if (ids[j] > ids[best]) best = j;
  return best;
}

static int encode_texts(cl_clip *m, const int32_t *ids, int n, float *out, cl_error *e) {
  cl_backend *be = m->be;
  const cl_clip_text_cfg *t = &m->cfg.text;
  const int ctx = t->context_length;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < ctx; j++)
      if (ids[(size_t)i * ctx + j] < 0 || ids[(size_t)i * ctx + j] >= t->vocab_size)
        return cl_err(e, CL_EINVAL, "text %d, position %d: token id %d outside the vocabulary [0,%d)",
                      i, j, ids[(size_t)i * ctx + j], t->vocab_size);
  for (int start = 0; start < n;) {
    /* a chunk: as many texts as fit in max_tokens at their real lengths (at least one);
     * the causal mask means tokens after the pooled one never influence it */
    int cnt = 0, T = 0;
    while (start + cnt < n) {
      const int32_t *s = ids + (size_t)(start + cnt) * ctx;
      int len = m->full_context ? ctx : cl_clip_pool_index(s, ctx) + 1;
      if (cnt > 0 && T + len > m->max_tokens) break;
      T += len, cnt++;
    }
    int32_t *tok = host_idx(m, 2 * (size_t)T + 2 * (size_t)cnt + 1, e);
    if (!tok) return CL_ENOMEM;
    int32_t *pos = tok + T, *off = pos + T, *pool = off + cnt + 1;
    off[0] = 0;
    for (int i = 0; i < cnt; i++) {
      const int32_t *s = ids + (size_t)(start + i) * ctx;
      int eot = cl_clip_pool_index(s, ctx), len = m->full_context ? ctx : eot + 1;
      for (int j = 0; j < len; j++) tok[off[i] + j] = s[j], pos[off[i] + j] = j;
      pool[i] = off[i] + eot;
      off[i + 1] = off[i] + len;
    }
    TRY(arena(m, &m->txt, (size_t)T, (size_t)cnt, 0, e));
    TRY(be->gather_rows(be, m->x, m->t_tok, t->vocab_size, tok, T, t->width, 0, e));
    TRY(be->gather_rows(be, m->x, m->t_pos, ctx, pos, T, t->width, 1, e));
    TRY(run_tower(m, &m->txt, T, off, pool, cnt, 1, e));
    TRY(pool_project(m, &m->txt, cnt, m->t_ln_w, m->t_ln_b, m->t_proj,
                     out + (size_t)start * m->cfg.embed_dim, e));
    start += cnt;
  }
  return be->sync(be, e);
}

int cl_clip_encode_texts(cl_clip *m, const int32_t *ids, int n, float *out, cl_error *e) {
  if (n < 0 || (n > 0 && (!ids || !out)))
    return cl_err(e, CL_EINVAL, "encode_texts: bad arguments (n = %d)", n);
  int rc = encode_texts(m, ids, n, out, e);
  if (rc) cl_err_wrap(e, "encoding %d texts", n);
  return rc;
}
