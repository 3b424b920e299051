/* cl_clibd: CLIBD's three towers and the bundle (see cl_clibd.h). The encoders are cl_vit
 * and cl_bert; this file adds CLIBD's key prefixes, tokenizers, pooling and projection. */
#include "cl_clibd.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cl_weights.h"
#include "image/cl_image.h"
#include "io/cl_ckpt.h"
#include "store/cl_store.h"
#include "text/cl_wordpiece.h"

#define TRY(x)                 \
  do {                         \
    int _rc = (x);             \
    if (_rc) return _rc;       \
  } while (0)

#define P_IMAGE "image_encoder.base_image_encoder."
#define P_DNA "dna_encoder.base_dna_encoder."
#define P_TEXT "language_encoder.base_language_encoder."
#define P_PROJ "language_encoder.proj."
#define IMAGE_BATCH 32

static const char *const tower_name[3] = {"image", "dna", "text"};
static const char *const tower_prefix[3] = {P_IMAGE, P_DNA, P_TEXT};
static const char *const tower_probe[3] = {P_IMAGE "cls_token", P_DNA "bert.embeddings.word_embeddings.weight",
                                           P_TEXT "embeddings.word_embeddings.weight"};

int cl_clibd_rename_keys(cl_tmap *w) {
  static const char *from[3] = {"lora_vit", "lora_barcode_bert", "lora_bert"};
  static const char *to[3] = {"base_image_encoder", "base_dna_encoder", "base_language_encoder"};
  int n = 0;
  for (int i = 0; i < w->n; i++) {
    char *name = w->v[i].name;
    int changed = 0;
    for (int r = 0; r < 3; r++) { /* Python's str.replace: every occurrence, left to right */
      char *hit;
      while ((hit = strstr(name, from[r]))) {
        char *nn = cl_asprintf("%.*s%s%s", (int)(hit - name), name, to[r], hit + strlen(from[r]));
        free(name);
        name = nn;
        changed = 1;
      }
    }
    w->v[i].name = name;
    n += changed;
  }
  return n;
}

static int check_dim(const char *tower, int got, int want, int output_dim, cl_error *e) {
  if (want && got != want)
    return cl_err(e, CL_ESHAPE, "%s tower: the checkpoint's output is %d wide, the config's %s.out_dim %d", tower, got,
                  tower, want);
  if (output_dim && got != output_dim)
    return cl_err(e, CL_ESHAPE, "%s tower: the checkpoint's output is %d wide, the config's output_dim %d", tower, got,
                  output_dim);
  return CL_OK;
}

/* --- image --- */

struct cl_clibd_image {
  cl_vit *vit;
  int resize, crop;
};

int cl_clibd_image_open(const cl_clibd_config *c, const cl_tmap *w, cl_backend *be, cl_clibd_image **out,
                        char **ignored, cl_error *e) {
  (void)ignored;
  *out = NULL;
  if (!(c->towers & CL_CLIBD_IMAGE)) return cl_err(e, CL_EINVAL, "the config has no image section");
  cl_clibd_image *t = cl_xcalloc(1, sizeof *t);
  t->resize = c->image_resize, t->crop = c->image_crop;
  int rc = cl_vit_load(&c->image, w, P_IMAGE, be, &t->vit, e);
  if (!rc) rc = check_dim("image", cl_vit_out_dim(t->vit), c->image_out, c->output_dim, e);
  if (rc) {
    cl_clibd_image_free(t);
    return rc;
  }
  *out = t;
  return CL_OK;
}

void cl_clibd_image_free(cl_clibd_image *t) {
  if (!t) return;
  cl_vit_free(t->vit);
  free(t);
}

int cl_clibd_image_dim(const cl_clibd_image *t) { return cl_vit_out_dim(t->vit); }
int cl_clibd_image_size(const cl_clibd_image *t) { return t->crop; }

int cl_clibd_image_preprocess_file(const cl_clibd_image *t, const char *path, float *chw, cl_error *e) {
  return cl_img_clibd_preprocess_file(path, t->resize, t->crop, chw, e);
}

int cl_clibd_image_encode(cl_clibd_image *t, const float *pixels, int n, float *out, float *pre_logits, cl_error *e) {
  return cl_vit_encode(t->vit, pixels, n, out, pre_logits, e);
}

int cl_clibd_image_encode_files(cl_clibd_image *t, const char *const *paths, int n, float *out, cl_error *e) {
  const size_t per = 3 * (size_t)t->crop * t->crop;
  const int D = cl_vit_out_dim(t->vit);
  float *px = malloc((size_t)(n < IMAGE_BATCH ? (n ? n : 1) : IMAGE_BATCH) * per * sizeof *px);
  if (!px) return cl_err(e, CL_ENOMEM, "out of memory (image batch)");
  int rc = CL_OK;
  for (int s = 0; s < n && !rc; s += IMAGE_BATCH) {
    int cnt = n - s < IMAGE_BATCH ? n - s : IMAGE_BATCH, failed = 0;
    cl_error first = {0};
#pragma omp parallel for schedule(dynamic)
    for (int i = 0; i < cnt; i++) {
      cl_error ie = {0};
      if (cl_img_clibd_preprocess_file(paths[s + i], t->resize, t->crop, px + (size_t)i * per, &ie) != CL_OK) {
#pragma omp critical
        if (!failed++) first = ie;
      }
    }
    if (failed) {
      if (e) *e = first;
      rc = first.code ? first.code : CL_EFORMAT;
      break;
    }
    rc = cl_vit_encode(t->vit, px, cnt, out + (size_t)s * D, NULL, e);
  }
  free(px);
  return rc;
}

/* --- DNA --- */

struct cl_clibd_dna {
  cl_bert *bert;
  cl_dna_cfg tok;
  int L, D;
};

int cl_clibd_dna_open(const cl_clibd_config *c, const cl_tmap *w, cl_backend *be, cl_clibd_dna **out, char **ignored,
                      cl_error *e) {
  *out = NULL;
  if (!(c->towers & CL_CLIBD_DNA)) return cl_err(e, CL_EINVAL, "the config has no dna section");
  cl_clibd_dna *t = cl_xcalloc(1, sizeof *t);
  t->tok = c->dna;
  t->L = cl_dna_ntokens(&c->dna);
  const cl_bert_keys keys = {.prefix = P_DNA "bert.", .head_prefix = P_DNA "cls.predictions.", .owner = P_DNA};
  int rc = cl_bert_load(&c->dna_bert, w, &keys, be, &t->bert, ignored, e);
  if (!rc) rc = check_dim("dna", t->D = cl_bert_head_dim(t->bert), c->dna_out, c->output_dim, e);
  if (rc) {
    cl_clibd_dna_free(t);
    return rc;
  }
  *out = t;
  return CL_OK;
}

void cl_clibd_dna_free(cl_clibd_dna *t) {
  if (!t) return;
  cl_bert_free(t->bert);
  free(t);
}

int cl_clibd_dna_dim(const cl_clibd_dna *t) { return t->D; }
int cl_clibd_dna_ntokens(const cl_clibd_dna *t) { return t->L; }
const cl_dna_cfg *cl_clibd_dna_tokenizer(const cl_clibd_dna *t) { return &t->tok; }

#define DNA_CHUNK 64 /* sequences per forward: bounds the host logits buffer */

int cl_clibd_dna_encode_ids(cl_clibd_dna *t, const int32_t *ids, int n, float *out, float *logits, cl_error *e) {
  const int L = t->L, D = t->D;
  float *lg = logits ? NULL : malloc((size_t)(n < DNA_CHUNK ? (n ? n : 1) : DNA_CHUNK) * L * D * sizeof *lg);
  if (!logits && !lg) return cl_err(e, CL_ENOMEM, "out of memory (DNA logits)");
  int rc = CL_OK;
  for (int s = 0; s < n && !rc; s += DNA_CHUNK) {
    const int cnt = n - s < DNA_CHUNK ? n - s : DNA_CHUNK;
    float *l = logits ? logits + (size_t)s * L * D : lg;
    if ((rc = cl_bert_forward(t->bert, ids + (size_t)s * L, NULL, cnt, L, 1, l, e))) break;
    /* softmax over the D outputs at each position, then the mean over all L positions */
    for (int i = 0; i < cnt; i++) {
      double *acc = cl_xcalloc((size_t)D, sizeof *acc);
      for (int p = 0; p < L; p++) {
        const float *x = l + ((size_t)i * L + p) * D;
        float mx = x[0], sum = 0.0f;
        for (int d = 1; d < D; d++) mx = x[d] > mx ? x[d] : mx;
        for (int d = 0; d < D; d++) sum += expf(x[d] - mx);
        for (int d = 0; d < D; d++) acc[d] += expf(x[d] - mx) / sum;
      }
      for (int d = 0; d < D; d++) out[(size_t)(s + i) * D + d] = (float)(acc[d] / L);
      free(acc);
    }
  }
  free(lg);
  if (rc) cl_err_wrap(e, "DNA tower");
  return rc;
}

int cl_clibd_dna_encode(cl_clibd_dna *t, const char *const *seqs, int n, float *out, int32_t *ids_out, cl_error *e) {
  int32_t *ids = cl_xmalloc((size_t)(n ? n : 1) * t->L * sizeof *ids);
  int rc = CL_OK;
  for (int i = 0; i < n && !rc; i++)
    if ((rc = cl_dna_encode(&t->tok, seqs[i], strlen(seqs[i]), ids + (size_t)i * t->L, e)))
      cl_err_wrap(e, "sequence %d", i + 1);
  if (!rc) rc = cl_clibd_dna_encode_ids(t, ids, n, out, NULL, e);
  if (!rc && ids_out) memcpy(ids_out, ids, (size_t)n * t->L * sizeof *ids);
  free(ids);
  return rc;
}

/* --- text --- */

struct cl_clibd_text {
  cl_bert *bert;
  cl_wp *wp;
  char vocab_hash[41]; /* the vocabulary's content hash: part of the model's identity */
  cl_backend *be;
  float *weights; /* proj */
  const float *proj_w, *proj_b;
  int L, H, D;
};

int cl_clibd_text_open(const cl_clibd_config *c, const cl_tmap *w, cl_backend *be, cl_clibd_text **out,
                       char **ignored, cl_error *e) {
  *out = NULL;
  if (!(c->towers & CL_CLIBD_TEXT)) return cl_err(e, CL_EINVAL, "the config has no text section");
  cl_clibd_text *t = cl_xcalloc(1, sizeof *t);
  t->be = be;
  t->L = c->text_max_length;
  t->H = c->text_bert.hidden_size;
  const cl_bert_keys keys = {.prefix = P_TEXT, .owner = P_TEXT};
  cl_wset s = {0};
  int rc = cl_wp_load(c->vocab_file, c->text_lower, c->text_strip_accents, &t->wp, e);
  if (!rc) rc = cl_hash_file(c->vocab_file, t->vocab_hash, e);
  if (!rc && cl_wp_vocab_size(t->wp) != c->text_bert.vocab_size)
    rc = cl_err(e, CL_EINVAL, "%s: %d tokens, but text.bert_config.vocab_size is %d", c->vocab_file,
                cl_wp_vocab_size(t->wp), c->text_bert.vocab_size);
  if (!rc) rc = cl_bert_load(&c->text_bert, w, &keys, be, &t->bert, ignored, e);
  const cl_tensor *pw = cl_tmap_get(w, P_PROJ "weight");
  if (!rc && !pw) rc = cl_err(e, CL_ESHAPE, "missing key " P_PROJ "weight");
  if (!rc && (pw->ndim != 2 || pw->shape[1] != t->H || pw->shape[0] < 1 || pw->shape[0] > (1 << 20))) {
    char got[96];
    rc = cl_err(e, CL_ESHAPE, P_PROJ "weight: expected [out,%d], got %s", t->H, cl_shape_str(pw, got, sizeof got));
  }
  if (!rc) {
    t->D = (int)pw->shape[0];
    cl_wset_add(&s, &t->proj_w, 0, 2, (int64_t[]){t->D, t->H}, P_PROJ "weight");
    cl_wset_add(&s, &t->proj_b, 0, 1, (int64_t[]){t->D}, P_PROJ "bias");
    const char *owner[2] = {P_PROJ, NULL};
    rc = cl_wset_check(&s, w, owner, NULL, NULL, e);
  }
  if (!rc) rc = cl_wset_load(&s, be, NULL, NULL, &t->weights, e);
  if (!rc && be->prepare_linear) rc = be->prepare_linear(be, (float *)t->proj_w, t->D, t->H, e);
  if (!rc) rc = check_dim("text", t->D, c->text_out, c->output_dim, e);
  cl_wset_free(&s);
  if (rc) {
    cl_clibd_text_free(t);
    return rc;
  }
  *out = t;
  return CL_OK;
}

void cl_clibd_text_free(cl_clibd_text *t) {
  if (!t) return;
  cl_bert_free(t->bert);
  cl_wp_free(t->wp);
  if (t->weights) t->be->free(t->be, t->weights);
  free(t);
}

int cl_clibd_text_dim(const cl_clibd_text *t) { return t->D; }
const char *cl_clibd_text_vocab_hash(const cl_clibd_text *t) { return t->vocab_hash; }
int cl_clibd_text_length(const cl_clibd_text *t) { return t->L; }

int cl_clibd_text_tokenize(const cl_clibd_text *t, const char *text, int32_t *ids, int32_t *mask, cl_error *e) {
  int r = cl_wp_encode(t->wp, text, t->L, ids, mask, e);
  return r < 0 ? -r : CL_OK;
}

int cl_clibd_text_encode_ids(cl_clibd_text *t, const int32_t *ids, const int32_t *mask, int n, float *out,
                             float *hidden, cl_error *e) {
  const int L = t->L, H = t->H, D = t->D;
  cl_backend *be = t->be;
  const size_t nn = (size_t)(n ? n : 1);
  float *hid = hidden ? hidden : malloc(nn * L * H * sizeof *hid), *pooled = cl_xmalloc(nn * H * sizeof *pooled);
  float *dev = NULL;
  int rc = hid ? cl_bert_forward(t->bert, ids, mask, n, L, 0, hid, e) : cl_err(e, CL_ENOMEM, "out of memory (%d texts)", n);
  /* the mean over all L positions, padding included, then proj */
  for (int i = 0; i < n && !rc; i++)
    for (int d = 0; d < H; d++) {
      double acc = 0;
      for (int p = 0; p < L; p++) acc += hid[((size_t)i * L + p) * H + d];
      pooled[(size_t)i * H + d] = (float)(acc / L);
    }
  if (!rc && n > 0) rc = be->alloc(be, nn * (H + D) * sizeof(float), (void **)&dev, e);
  if (!rc && n > 0) rc = be->upload(be, dev, pooled, (size_t)n * H * sizeof(float), e);
  if (!rc && n > 0) rc = be->linear(be, dev + (size_t)n * H, dev, t->proj_w, t->proj_b, n, H, D, CL_ACT_NONE, 0, e);
  if (!rc && n > 0) rc = be->download(be, out, dev + (size_t)n * H, (size_t)n * D * sizeof(float), e);
  if (!rc) rc = be->sync(be, e);
  if (dev) be->free(be, dev);
  if (!hidden) free(hid);
  free(pooled);
  if (rc) cl_err_wrap(e, "text tower");
  return rc;
}

int cl_clibd_text_encode(cl_clibd_text *t, const char *const *texts, int n, float *out, int32_t *ids_out,
                         int32_t *mask_out, float *hidden, cl_error *e) {
  const size_t nn = (size_t)(n ? n : 1), L = (size_t)t->L;
  int32_t *ids = cl_xmalloc(nn * L * sizeof *ids), *mask = cl_xmalloc(nn * L * sizeof *mask);
  int rc = CL_OK;
  for (int i = 0; i < n && !rc; i++)
    if ((rc = cl_clibd_text_tokenize(t, texts[i], ids + i * L, mask + i * L, e))) cl_err_wrap(e, "text %d", i + 1);
  if (!rc) rc = cl_clibd_text_encode_ids(t, ids, mask, n, out, hidden, e);
  if (!rc && ids_out) memcpy(ids_out, ids, (size_t)n * L * sizeof *ids);
  if (!rc && mask_out) memcpy(mask_out, mask, (size_t)n * L * sizeof *mask);
  free(ids);
  free(mask);
  return rc;
}

void cl_clibd_identity(const cl_clibd *b, char *buf, size_t n) {
  const cl_clibd_config *c = &b->cfg;
  const cl_vit_config *v = &c->image;
  const cl_bert_config *d = &c->dna_bert, *x = &c->text_bert;
  snprintf(buf, n,
           "clibd/1|towers=%d|image=%d,%d,%d,%d,%d,%.6g,%.3g,resize=%d,crop=%d,aa-bilinear|dna=%d,%d,%d,%d,%d,%d,%.3g,"
           "k=%d,%d,%d,%u,%d|text=%d,%d,%d,%d,%d,%d,%.3g,len=%d,lower=%d,strip=%d,vocab=%s",
           (b->image ? 1 : 0) | (b->dna ? 2 : 0) | (b->text ? 4 : 0), v->img_size, v->patch_size, v->embed_dim,
           v->depth, v->num_heads, v->mlp_ratio, v->layer_norm_eps, c->image_resize, c->image_crop, d->vocab_size,
           d->hidden_size, d->num_hidden_layers, d->num_attention_heads, d->intermediate_size,
           d->max_position_embeddings, d->layer_norm_eps, c->dna.k, c->dna.stride, c->dna.max_len, c->dna.pad_char,
           c->dna.leading_id, x->vocab_size, x->hidden_size, x->num_hidden_layers, x->num_attention_heads,
           x->intermediate_size, x->max_position_embeddings, x->layer_norm_eps, c->text_max_length, c->text_lower,
           c->text_strip_accents, b->text ? cl_clibd_text_vocab_hash(b->text) : "-");
}

/* --- the bundle --- */

static int is_dir(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

int cl_clibd_resolve(const char *path, const char *config, char *ckpt, size_t nckpt, char *cfg, size_t ncfg,
                     cl_error *e) {
  if (!path) return cl_err(e, CL_EINVAL, "model: no path given");
  if (is_dir(path)) {
    /* CLIBD's best.pth, else a safetensors state dict (clade synth's sample model) */
    struct stat st;
    snprintf(ckpt, nckpt, "%s/best.pth", path);
    if (stat(ckpt, &st) != 0) {
      char *alt = cl_asprintf("%s/model.safetensors", path);
      if (stat(alt, &st) == 0) snprintf(ckpt, nckpt, "%s", alt);
      free(alt);
    }
    if (config) snprintf(cfg, ncfg, "%s", config);
    else snprintf(cfg, ncfg, "%s/config.json", path);
  } else {
    snprintf(ckpt, nckpt, "%s", path);
    const char *slash = strrchr(path, '/');
    if (config) snprintf(cfg, ncfg, "%s", config);
    else if (slash) snprintf(cfg, ncfg, "%.*s/config.json", (int)(slash - path), path);
    else snprintf(cfg, ncfg, "config.json");
  }
  return CL_OK;
}

/* Appends a key to the ignored list. */
static void note(char **list, const char *k) {
  char *old = *list;
  *list = old ? cl_asprintf("%s, %s", old, k) : cl_strdup(k);
  free(old);
}

/* The first key of a tower that a load would miss (its probe key names the tower's absence). */
static int missing_tower(int i, const char *ckpt, cl_error *e) {
  return cl_err(e, CL_ESHAPE, "%s: no %s tower: missing key %s", ckpt, tower_name[i], tower_probe[i]);
}

int cl_clibd_open(const char *path, const char *config, int needs, cl_backend *be, int quiet, cl_clibd **out,
                  cl_error *e) {
  *out = NULL;
  cl_clibd *b = cl_xcalloc(1, sizeof *b);
  char cfgpath[4200];
  cl_tmap w;
  cl_tmap_init(&w);
  char *ignored = NULL;
  int rc = cl_clibd_resolve(path, config, b->checkpoint, sizeof b->checkpoint, cfgpath, sizeof cfgpath, e);
  if (!rc) rc = cl_clibd_config_load(cfgpath, &b->cfg, e);
  for (int i = 0; i < 3 && !rc; i++)
    if ((needs & (1 << i)) && !(b->cfg.towers & (1 << i)))
      rc = cl_err(e, CL_EINVAL, "%s: no %s section: the %s tower is needed", cfgpath, tower_name[i], tower_name[i]);
  if (!rc) rc = cl_ckpt_load(b->checkpoint, &w, e);
  if (!rc) cl_clibd_rename_keys(&w);
  int loaded = 0;
  for (int i = 0; i < 3 && !rc; i++) {
    const int bit = 1 << i, present = cl_tmap_get(&w, tower_probe[i]) != NULL;
    if (!present && (needs & bit)) {
      rc = missing_tower(i, b->checkpoint, e);
      break;
    }
    if (!present) b->absent[i] = cl_asprintf("missing key %s", tower_probe[i]);
    else if (!(b->cfg.towers & bit)) b->absent[i] = cl_asprintf("%s has no %s section", cfgpath, tower_name[i]);
    if (!present || !(b->cfg.towers & bit)) continue;
    rc = i == 0 ? cl_clibd_image_open(&b->cfg, &w, be, &b->image, &ignored, e)
       : i == 1 ? cl_clibd_dna_open(&b->cfg, &w, be, &b->dna, &ignored, e)
                : cl_clibd_text_open(&b->cfg, &w, be, &b->text, &ignored, e);
    if (rc) cl_err_wrap(e, "%s: %s tower", b->checkpoint, tower_name[i]);
    else loaded |= bit;
  }
  /* every key belongs to a tower (loaded, or listed as unused) or is logit_scale */
  for (int k = 0; k < w.n && !rc; k++) {
    const char *name = w.v[k].name;
    int tower = -1;
    for (int i = 0; i < 3; i++)
      if (!strncmp(name, tower_prefix[i], strlen(tower_prefix[i]))) tower = i;
    if (!strncmp(name, P_PROJ, strlen(P_PROJ))) tower = 2;
    if (!strcmp(name, "logit_scale")) {
      const cl_tensor *t = &w.v[k].t;
      if (cl_tensor_numel(t) == 1) cl_to_f32(t->dtype, t->data, &b->logit_scale, 1, NULL);
      if (loaded != CL_CLIBD_ALL) note(&ignored, name);
    } else if (tower < 0) {
      rc = cl_err(e, CL_ESHAPE, "%s: unexpected key %s (not part of a CLIBD model)", b->checkpoint, name);
    } else if (!(loaded & (1 << tower))) {
      note(&ignored, name);
    }
  }
  if (!rc && !loaded) rc = cl_err(e, CL_ESHAPE, "%s: no tower of %s in the checkpoint", b->checkpoint, cfgpath);
  if (!rc && ignored && !quiet) fprintf(stderr, "clade: %s: keys not used: %s\n", b->checkpoint, ignored);
  free(ignored);
  cl_tmap_free(&w);
  if (rc) {
    cl_clibd_close(b);
    return rc;
  }
  *out = b;
  return CL_OK;
}

const char *cl_clibd_absent(const cl_clibd *b, const char *modality) {
  for (int i = 0; i < 3; i++)
    if (!strcmp(modality, tower_name[i]) && b->absent[i]) return b->absent[i];
  return NULL;
}

void cl_clibd_close(cl_clibd *b) {
  if (!b) return;
  cl_clibd_image_free(b->image);
  cl_clibd_dna_free(b->dna);
  cl_clibd_text_free(b->text);
  for (int i = 0; i < 3; i++) free(b->absent[i]);
  free(b);
}
