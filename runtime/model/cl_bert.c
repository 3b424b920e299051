/* cl_bert: loading a Hugging Face BERT and running it on a backend (see cl_bert.h).
 * Layout as cl_clip: all weights in one backend allocation (query, key and value fused into
 * one [3H, H] weight per layer so that one GEMM and the backend's packed attention serve
 * them), activations in a reused arena, sequences packed row after row.
 * Padding mask: the backend's attention has no key mask, so with right padding a sequence's
 * real rows form one attention sequence, and each padding row (whose query must see only the
 * real keys, as the additive -inf mask gives) a sequence of its own made of r rows
 * [its q | real k_j | real v_j], whose r identical outputs are its attention row; two row
 * gathers build that packing and bring the rows back in order. The same numbers as the mask. */
#include "cl_bert.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cl_weights.h"
#include "io/cl_ckpt.h"

#define TRY(x)                 \
  do {                         \
    int _rc = (x);             \
    if (_rc) return _rc;       \
  } while (0)

/* --- config --- */

void cl_bert_config_default(cl_bert_config *c) {
  *c = (cl_bert_config){.vocab_size = 30522, .hidden_size = 768, .num_hidden_layers = 12,
                        .num_attention_heads = 12, .intermediate_size = 3072,
                        .max_position_embeddings = 512, .type_vocab_size = 2, .layer_norm_eps = 1e-12};
}

int cl_bert_config_check(const cl_bert_config *c, const char *where, cl_error *e) {
  const struct { const char *k; int v; } iv[] = {
      {"vocab_size", c->vocab_size}, {"hidden_size", c->hidden_size}, {"num_hidden_layers", c->num_hidden_layers},
      {"num_attention_heads", c->num_attention_heads}, {"intermediate_size", c->intermediate_size},
      {"max_position_embeddings", c->max_position_embeddings}, {"type_vocab_size", c->type_vocab_size}};
  for (size_t i = 0; i < sizeof iv / sizeof *iv; i++)
    if (iv[i].v < 1 || iv[i].v > (1 << 20))
      return cl_err(e, CL_EINVAL, "%s.%s = %d: expected 1 to %d", where, iv[i].k, iv[i].v, 1 << 20);
  if (c->hidden_size % c->num_attention_heads)
    return cl_err(e, CL_EINVAL, "%s.num_attention_heads = %d does not divide hidden_size %d", where,
                  c->num_attention_heads, c->hidden_size);
  if (!(c->layer_norm_eps > 0 && c->layer_norm_eps < 1))
    return cl_err(e, CL_EINVAL, "%s.layer_norm_eps = %g: expected a small positive number", where, c->layer_norm_eps);
  return CL_OK;
}

static int get_int(const cJSON *o, const char *k, const char *where, int *out, cl_error *e) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  if (!v) return CL_OK;
  if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < 1 || v->valuedouble > (1 << 20))
    return cl_err(e, CL_EINVAL, "%s.%s: expected an integer from 1 to %d", where, k, 1 << 20);
  *out = (int)v->valuedouble;
  return CL_OK;
}

int cl_bert_config_parse(const void *obj, const char *where, cl_bert_config *c, cl_error *e) {
  const cJSON *o = obj;
  if (!cJSON_IsObject(o)) return cl_err(e, CL_EFORMAT, "%s: expected an object", where);
  TRY(get_int(o, "vocab_size", where, &c->vocab_size, e));
  TRY(get_int(o, "hidden_size", where, &c->hidden_size, e));
  TRY(get_int(o, "num_hidden_layers", where, &c->num_hidden_layers, e));
  TRY(get_int(o, "num_attention_heads", where, &c->num_attention_heads, e));
  TRY(get_int(o, "intermediate_size", where, &c->intermediate_size, e));
  TRY(get_int(o, "max_position_embeddings", where, &c->max_position_embeddings, e));
  TRY(get_int(o, "type_vocab_size", where, &c->type_vocab_size, e));
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "layer_norm_eps");
  if (v && !cJSON_IsNumber(v)) return cl_err(e, CL_EINVAL, "%s.layer_norm_eps: expected a number", where);
  if (v) c->layer_norm_eps = v->valuedouble;
  v = cJSON_GetObjectItemCaseSensitive(o, "hidden_act");
  if (v && !(cJSON_IsString(v) && !strcmp(v->valuestring, "gelu")))
    return cl_err(e, CL_EUNSUP, "%s.hidden_act: only \"gelu\" (exact erf GELU) is implemented", where);
  v = cJSON_GetObjectItemCaseSensitive(o, "position_embedding_type");
  if (v && !(cJSON_IsString(v) && !strcmp(v->valuestring, "absolute")))
    return cl_err(e, CL_EUNSUP, "%s.position_embedding_type: only \"absolute\" is implemented", where);
  v = cJSON_GetObjectItemCaseSensitive(o, "is_decoder");
  if (v && cJSON_IsTrue(v)) return cl_err(e, CL_EUNSUP, "%s.is_decoder: a decoder BERT is not implemented", where);
  return cl_bert_config_check(c, where, e);
}

static int parse_text(const char *json, const char *path, const char *key, cl_bert_config *c, cl_error *e) {
  cJSON *root = cJSON_Parse(json);
  if (!root) return cl_err(e, CL_EFORMAT, "%s: not valid JSON", path);
  const cJSON *o = key ? cJSON_GetObjectItemCaseSensitive(root, key) : root;
  char where[4200];
  snprintf(where, sizeof where, "%s: %s", path, key ? key : "config");
  int rc = o ? cl_bert_config_parse(o, where, c, e) : cl_err(e, CL_EFORMAT, "%s: no '%s' entry", path, key);
  cJSON_Delete(root);
  return rc;
}

int cl_bert_config_from_ckpt(const cl_tmap *m, const char *path, cl_bert_config *c, cl_error *e) {
  cl_bert_config_default(c);
  if (!m->metadata_json) return cl_err(e, CL_EFORMAT, "%s: the checkpoint has no bert_config entry", path);
  return parse_text(m->metadata_json, path, "bert_config", c, e);
}

int cl_bert_config_load(const char *path, cl_bert_config *c, cl_error *e) {
  char *buf;
  size_t len;
  TRY(cl_read_file(path, &buf, &len, e));
  size_t i = 0;
  while (i < len && (buf[i] == ' ' || buf[i] == '\n' || buf[i] == '\r' || buf[i] == '\t')) i++;
  int rc;
  if (i < len && buf[i] == '{') {
    cl_bert_config_default(c);
    rc = parse_text(buf, path, NULL, c, e);
  } else {
    cl_tmap m;
    rc = cl_ckpt_load(path, &m, e);
    if (!rc) rc = cl_bert_config_from_ckpt(&m, path, c, e);
    if (!rc) cl_tmap_free(&m);
  }
  free(buf);
  return rc;
}

/* --- weights --- */

typedef struct bert_layer {
  const float *qkv_w, *qkv_b, *ao_w, *ao_b, *ln1_w, *ln1_b, *in_w, *in_b, *out_w, *out_b, *ln2_w, *ln2_b;
  int q[4], k[2], v[4]; /* staging indices of the keyed q/k/v parameters (LoRA: w, b, a, b) */
  int qkv_wi, qkv_bi;   /* the fused ones */
} bert_layer;

struct cl_bert {
  cl_bert_config cfg;
  cl_backend *be;
  float *weights;
  bert_layer *lay;
  int lora, head_dim;
  const float *word, *pos, *type, *eln_w, *eln_b;
  const float *hd_w, *hd_b, *hln_w, *hln_b, *dec_w, *dec_b;
  cl_arena arena;
};

const cl_bert_config *cl_bert_get_config(const cl_bert *m) { return &m->cfg; }
int cl_bert_head_dim(const cl_bert *m) { return m->head_dim; }
int cl_bert_has_lora(const cl_bert *m) { return m->lora; }

/* Adds q, k or v of layer i: plain (weight, bias) or LoRA (w.weight, w.bias, w_a, w_b). */
static void add_proj(cl_wset *s, const char *p, int i, const char *which, int lora, int H, int r, int *ix) {
  const int64_t w[2] = {H, H}, b[1] = {H}, a[2] = {r, H}, bb[2] = {H, r};
  const char *sfx = lora ? ".w" : "";
  ix[0] = cl_wset_addf(s, NULL, CL_W_HOST, 2, w, "%sencoder.layer.%d.attention.self.%s%s.weight", p, i, which, sfx);
  ix[1] = cl_wset_addf(s, NULL, CL_W_HOST, 1, b, "%sencoder.layer.%d.attention.self.%s%s.bias", p, i, which, sfx);
  if (!lora) return;
  ix[2] = cl_wset_addf(s, NULL, CL_W_HOST, 2, a, "%sencoder.layer.%d.attention.self.%s.w_a.weight", p, i, which);
  ix[3] = cl_wset_addf(s, NULL, CL_W_HOST, 2, bb, "%sencoder.layer.%d.attention.self.%s.w_b.weight", p, i, which);
}

/* Fused qkv = [q; k; v] with LoRA merged into q and v. */
static int fuse_qkv(void *ud, cl_wset *s, cl_error *e) {
  cl_bert *m = ud;
  const int H = m->cfg.hidden_size;
  const size_t HH = (size_t)H * H;
  for (int i = 0; i < m->cfg.num_hidden_layers; i++) {
    bert_layer *l = &m->lay[i];
    float *w = cl_wset_host(s, l->qkv_wi), *b = cl_wset_host(s, l->qkv_bi);
    const int *src[3] = {l->q, l->k, l->v};
    for (int j = 0; j < 3; j++) {
      memcpy(w + j * HH, cl_wset_host(s, src[j][0]), HH * sizeof(float));
      memcpy(b + (size_t)j * H, cl_wset_host(s, src[j][1]), (size_t)H * sizeof(float));
      if (m->lora && j != 1) {
        const cl_wparam *a = &s->v[src[j][2]];
        cl_wset_lora_merge(w + j * HH, cl_wset_host(s, src[j][3]), cl_wset_host(s, src[j][2]), H, H, (int)a->shape[0]);
      }
    }
  }
  (void)e;
  return CL_OK;
}

/* The LoRA rank from layer 0's query.w_a, or 0 without LoRA; -1 on a bad shape. */
static int lora_rank(const cl_tmap *w, const char *p, int H) {
  char k[512];
  snprintf(k, sizeof k, "%sencoder.layer.0.attention.self.query.w_a.weight", p);
  const cl_tensor *t = cl_tmap_get(w, k);
  if (!t) return 0;
  return t->ndim == 2 && t->shape[1] == H && t->shape[0] >= 1 && t->shape[0] <= H ? (int)t->shape[0] : -1;
}

int cl_bert_load(const cl_bert_config *cfg, const cl_tmap *w, const cl_bert_keys *keys, cl_backend *be,
                 cl_bert **out, char **ignored, cl_error *e) {
  *out = NULL;
  TRY(cl_bert_config_check(cfg, "bert_config", e));
  cl_bert *m = cl_xcalloc(1, sizeof *m);
  m->cfg = *cfg;
  m->be = be;
  const int H = cfg->hidden_size, I = cfg->intermediate_size, NL = cfg->num_hidden_layers;
  const char *p = keys->prefix ? keys->prefix : "", *hp = keys->head_prefix;
  m->lay = cl_xcalloc((size_t)NL, sizeof *m->lay);
  cl_wset s = {0};
  int rc = CL_OK;
  int r = lora_rank(w, p, H);
  if (r < 0) {
    rc = cl_err(e, CL_ESHAPE, "%sencoder.layer.0.attention.self.query.w_a.weight: expected [r,%d]", p, H);
    goto fail;
  }
  m->lora = r > 0;
  const int64_t h1[1] = {H}, hh[2] = {H, H}, i1[1] = {I}, ih[2] = {I, H}, hi[2] = {H, I}, q3[2] = {3 * H, H},
                b3[1] = {3 * H};
  cl_wset_addf(&s, &m->word, 0, 2, (int64_t[]){cfg->vocab_size, H}, "%sembeddings.word_embeddings.weight", p);
  cl_wset_addf(&s, &m->pos, 0, 2, (int64_t[]){cfg->max_position_embeddings, H},
               "%sembeddings.position_embeddings.weight", p);
  cl_wset_addf(&s, &m->type, 0, 2, (int64_t[]){cfg->type_vocab_size, H}, "%sembeddings.token_type_embeddings.weight", p);
  cl_wset_addf(&s, &m->eln_w, 0, 1, h1, "%sembeddings.LayerNorm.weight", p);
  cl_wset_addf(&s, &m->eln_b, 0, 1, h1, "%sembeddings.LayerNorm.bias", p);
  for (int i = 0; i < NL; i++) {
    bert_layer *l = &m->lay[i];
    add_proj(&s, p, i, "query", m->lora, H, r, l->q);
    add_proj(&s, p, i, "key", 0, H, r, l->k);
    add_proj(&s, p, i, "value", m->lora, H, r, l->v);
    l->qkv_wi = cl_wset_add(&s, &l->qkv_w, 0, 2, q3, NULL);
    l->qkv_bi = cl_wset_add(&s, &l->qkv_b, 0, 1, b3, NULL);
    const char *L = "encoder.layer";
    cl_wset_addf(&s, &l->ao_w, 0, 2, hh, "%s%s.%d.attention.output.dense.weight", p, L, i);
    cl_wset_addf(&s, &l->ao_b, 0, 1, h1, "%s%s.%d.attention.output.dense.bias", p, L, i);
    cl_wset_addf(&s, &l->ln1_w, 0, 1, h1, "%s%s.%d.attention.output.LayerNorm.weight", p, L, i);
    cl_wset_addf(&s, &l->ln1_b, 0, 1, h1, "%s%s.%d.attention.output.LayerNorm.bias", p, L, i);
    cl_wset_addf(&s, &l->in_w, 0, 2, ih, "%s%s.%d.intermediate.dense.weight", p, L, i);
    cl_wset_addf(&s, &l->in_b, 0, 1, i1, "%s%s.%d.intermediate.dense.bias", p, L, i);
    cl_wset_addf(&s, &l->out_w, 0, 2, hi, "%s%s.%d.output.dense.weight", p, L, i);
    cl_wset_addf(&s, &l->out_b, 0, 1, h1, "%s%s.%d.output.dense.bias", p, L, i);
    cl_wset_addf(&s, &l->ln2_w, 0, 1, h1, "%s%s.%d.output.LayerNorm.weight", p, L, i);
    cl_wset_addf(&s, &l->ln2_b, 0, 1, h1, "%s%s.%d.output.LayerNorm.bias", p, L, i);
  }
  if (hp) {
    char k[512];
    snprintf(k, sizeof k, "%sdecoder.weight", hp);
    const cl_tensor *dt = cl_tmap_get(w, k);
    /* the decoder's rows are the head's output size; a bad shape is reported in key order */
    m->head_dim = dt && dt->ndim == 2 && dt->shape[0] >= 1 && dt->shape[0] <= (1 << 20) ? (int)dt->shape[0] : 1;
    cl_wset_addf(&s, &m->hd_w, 0, 2, hh, "%stransform.dense.weight", hp);
    cl_wset_addf(&s, &m->hd_b, 0, 1, h1, "%stransform.dense.bias", hp);
    cl_wset_addf(&s, &m->hln_w, 0, 1, h1, "%stransform.LayerNorm.weight", hp);
    cl_wset_addf(&s, &m->hln_b, 0, 1, h1, "%stransform.LayerNorm.bias", hp);
    cl_wset_addf(&s, &m->dec_w, 0, 2, (int64_t[]){m->head_dim, H}, "%sdecoder.weight", hp);
    cl_wset_addf(&s, &m->dec_b, 0, 1, (int64_t[]){m->head_dim}, "%sdecoder.bias", hp);
  }
  const char *owner[2] = {keys->owner ? keys->owner : p, NULL};
  static const char *const tolerated[] = {"position_ids", "pooler.", "cls.predictions.bias", NULL};
  if ((rc = cl_wset_check(&s, w, owner, tolerated, ignored, e))) goto fail;
  if ((rc = cl_wset_load(&s, be, fuse_qkv, m, &m->weights, e))) goto fail;
  for (int i = 0; i < NL && be->prepare_linear && !rc; i++) {
    const bert_layer *l = &m->lay[i];
    if (!rc) rc = be->prepare_linear(be, (float *)l->qkv_w, 3 * H, H, e);
    if (!rc) rc = be->prepare_linear(be, (float *)l->ao_w, H, H, e);
    if (!rc) rc = be->prepare_linear(be, (float *)l->in_w, I, H, e);
    if (!rc) rc = be->prepare_linear(be, (float *)l->out_w, H, I, e);
  }
  if (!rc && hp && be->prepare_linear) rc = be->prepare_linear(be, (float *)m->hd_w, H, H, e);
  if (!rc && hp && be->prepare_linear) rc = be->prepare_linear(be, (float *)m->dec_w, m->head_dim, H, e);
  if (rc) goto fail;
  cl_wset_free(&s);
  *out = m;
  return CL_OK;
fail:
  cl_wset_free(&s);
  cl_bert_free(m);
  return rc;
}

void cl_bert_free(cl_bert *m) {
  if (!m) return;
  if (m->weights) m->be->free(m->be, m->weights);
  cl_arena_free(&m->arena, m->be);
  free(m->lay);
  free(m);
}

/* --- forward --- */

/* Activations for T tokens, Q packed attention rows: x, h [T,H]; big [T, max(3H, I, head)];
 * qkv2 [Q,3H], att [Q,H] (padding only). */
static int arena(cl_bert *m, size_t T, size_t Q, float **x, float **h, float **big, float **qkv2, float **att,
                 cl_error *e) {
  const size_t H = m->cfg.hidden_size, I = m->cfg.intermediate_size, hd = m->head_dim;
  size_t wide = 3 * H > I ? 3 * H : I;
  if (hd > wide) wide = hd;
  const size_t sz[5] = {T * H, T * H, T * wide, Q * 3 * H, Q * H};
  float **const b[5] = {x, h, big, qkv2, att};
  return cl_arena_carve(&m->arena, m->be, 5, sz, b, e);
}

/* One chunk of cnt sequences of L tokens, real lengths len[]. */
static int forward_chunk(cl_bert *m, const int32_t *ids, const int *len, int cnt, int L, int head, float *out,
                         cl_error *e) {
  cl_backend *be = m->be;
  const cl_bert_config *c = &m->cfg;
  const int H = c->hidden_size, I = c->intermediate_size, T = cnt * L;
  const float eps = (float)c->layer_norm_eps;
  int padded = 0;
  size_t Q = 0; /* packed attention rows: each sequence's real rows, then r per padding row */
  for (int s = 0; s < cnt; s++) {
    Q += (size_t)len[s] + (size_t)(L - len[s]) * len[s];
    padded |= len[s] < L;
  }
  if (!padded) Q = 0;
  if (Q > (size_t)INT32_MAX / 4) /* row indices and counts are int32 in the backend's calls */
    return cl_err(e, CL_EINVAL, "bert: %d padded sequences of %d tokens are too many rows for the padding mask", cnt, L);
  float *x, *h, *big, *qkv2, *att;
  TRY(arena(m, (size_t)T, Q, &x, &h, &big, &qkv2, &att, e));
  /* host indices: tok [T], pos [T], type [T], off [cnt+1 or Q-groups+1], gather3 [3Q], back [T] */
  size_t ngroups = (size_t)cnt + (padded ? (size_t)T : 0); /* at most: attention sequences */
  int32_t *tok = cl_arena_idx(&m->arena, 3 * (size_t)T + ngroups + 1 + 3 * Q + (size_t)T, e);
  if (!tok) return CL_ENOMEM;
  int32_t *pos = tok + T, *typ = pos + T, *off = typ + T, *g3 = off + ngroups + 1, *back = g3 + 3 * Q;
  for (int s = 0; s < cnt; s++)
    for (int j = 0; j < L; j++) tok[s * L + j] = ids[(size_t)s * L + j], pos[s * L + j] = j, typ[s * L + j] = 0;
  int nseq = 0;
  if (!padded) {
    for (int s = 0; s <= cnt; s++) off[s] = s * L;
    nseq = cnt;
  } else {
    int32_t q = 0; /* row in qkv2 */
    off[0] = 0;
    for (int s = 0; s < cnt; s++) {
      const int r = len[s], base = s * L;
      for (int j = 0; j < r; j++) { /* the real rows, as they are */
        for (int k = 0; k < 3; k++) g3[3 * (size_t)(q + j) + k] = 3 * (base + j) + k;
        back[base + j] = q + j;
      }
      q += r;
      off[++nseq] = q;
      for (int pr = r; pr < L; pr++) { /* a padding row: its query against the real keys/values */
        for (int j = 0; j < r; j++) {
          g3[3 * (size_t)(q + j)] = 3 * (base + pr);
          g3[3 * (size_t)(q + j) + 1] = 3 * (base + j) + 1;
          g3[3 * (size_t)(q + j) + 2] = 3 * (base + j) + 2;
        }
        back[base + pr] = q;
        q += r;
        off[++nseq] = q;
      }
    }
  }
  TRY(be->gather_rows(be, x, m->word, c->vocab_size, tok, T, H, 0, e));
  TRY(be->gather_rows(be, x, m->type, c->type_vocab_size, typ, T, H, 1, e));
  TRY(be->gather_rows(be, x, m->pos, c->max_position_embeddings, pos, T, H, 1, e));
  TRY(be->layernorm(be, x, x, m->eln_w, m->eln_b, T, H, eps, e));
  for (int i = 0; i < c->num_hidden_layers; i++) {
    const bert_layer *l = &m->lay[i];
    TRY(be->linear(be, big, x, l->qkv_w, l->qkv_b, T, H, 3 * H, CL_ACT_NONE, 0, e));
    if (!padded) {
      TRY(be->attention(be, h, big, off, nseq, H, c->num_attention_heads, 0, e));
    } else {
      TRY(be->gather_rows(be, qkv2, big, 3 * T, g3, (int)(3 * Q), H, 0, e));
      TRY(be->attention(be, att, qkv2, off, nseq, H, c->num_attention_heads, 0, e));
      TRY(be->gather_rows(be, h, att, (int)Q, back, T, H, 0, e));
    }
    TRY(be->linear(be, x, h, l->ao_w, l->ao_b, T, H, H, CL_ACT_NONE, 1, e));
    TRY(be->layernorm(be, x, x, l->ln1_w, l->ln1_b, T, H, eps, e));
    TRY(be->linear(be, big, x, l->in_w, l->in_b, T, H, I, CL_ACT_GELU, 0, e));
    TRY(be->linear(be, x, big, l->out_w, l->out_b, T, I, H, CL_ACT_NONE, 1, e));
    TRY(be->layernorm(be, x, x, l->ln2_w, l->ln2_b, T, H, eps, e));
  }
  if (!head) return be->download(be, out, x, (size_t)T * H * sizeof(float), e);
  TRY(be->linear(be, h, x, m->hd_w, m->hd_b, T, H, H, CL_ACT_GELU, 0, e));
  TRY(be->layernorm(be, h, h, m->hln_w, m->hln_b, T, H, eps, e));
  TRY(be->linear(be, big, h, m->dec_w, m->dec_b, T, H, m->head_dim, CL_ACT_NONE, 0, e));
  return be->download(be, out, big, (size_t)T * m->head_dim * sizeof(float), e);
}

int cl_bert_forward(cl_bert *m, const int32_t *ids, const int32_t *mask, int n, int L, int head, float *out,
                    cl_error *e) {
  const cl_bert_config *c = &m->cfg;
  if (n < 0 || L < 1 || (n > 0 && (!ids || !out)))
    return cl_err(e, CL_EINVAL, "bert: bad arguments (n = %d, length %d)", n, L);
  if (L > CL_BERT_MAX_LEN)
    return cl_err(e, CL_EINVAL, "bert: sequences of %d tokens, more than %d", L, CL_BERT_MAX_LEN);
  if (L > c->max_position_embeddings)
    return cl_err(e, CL_EINVAL, "bert: sequences of %d tokens, more than max_position_embeddings %d", L,
                  c->max_position_embeddings);
  if (head && !m->head_dim) return cl_err(e, CL_EINVAL, "bert: this model has no prediction head");
  int *len = cl_xmalloc((size_t)(n > 0 ? n : 1) * sizeof *len);
  int rc = CL_OK;
  for (int s = 0; s < n && !rc; s++) {
    len[s] = L;
    for (int j = 0; j < L && !rc; j++) {
      int32_t id = ids[(size_t)s * L + j];
      if (id < 0 || id >= c->vocab_size)
        rc = cl_err(e, CL_EINVAL, "sequence %d, position %d: token id %d outside the vocabulary [0,%d)", s, j, id,
                    c->vocab_size);
    }
    if (!mask || rc) continue;
    const int32_t *mk = mask + (size_t)s * L;
    int r = 0;
    while (r < L && mk[r] == 1) r++;
    for (int j = r; j < L && !rc; j++)
      if (mk[j] != 0) rc = cl_err(e, CL_EUNSUP, "sequence %d: attention mask not ones then zeros at %d", s, j);
    if (!rc && r == 0) rc = cl_err(e, CL_EINVAL, "sequence %d: attention mask has no 1", s);
    len[s] = r;
  }
  const int per_chunk = CL_BERT_MAX_TOKENS / L > 0 ? CL_BERT_MAX_TOKENS / L : 1;
  const size_t row = head ? (size_t)m->head_dim : (size_t)c->hidden_size;
  for (int start = 0; start < n && !rc; start += per_chunk) {
    int cnt = n - start < per_chunk ? n - start : per_chunk;
    rc = forward_chunk(m, ids + (size_t)start * L, len + start, cnt, L, head, out + (size_t)start * L * row, e);
  }
  if (!rc) rc = m->be->sync(m->be, e);
  free(len);
  if (rc) cl_err_wrap(e, "bert forward (%d sequences)", n);
  return rc;
}
