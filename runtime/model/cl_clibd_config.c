/* cl_clibd_config: CLIBD config.json (the format of shared/fixtures/clibd/config.json):
 * "format": "clibd", "output_dim", and the sections "image" (timm ViT settings and the
 * preprocessing), "dna" (a Hugging Face bert_config, the k-mer settings) and "text" (a
 * bert_config, vocab_file, lower-casing, max_length). Values that would change what is
 * computed are checked against what is implemented; descriptive strings are not read. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cl_clibd.h"

#define TRY(x)                 \
  do {                         \
    int _rc = (x);             \
    if (_rc) return _rc;       \
  } while (0)

typedef struct ctx {
  const char *path, *sec;
  cl_error *e;
} ctx;

static const cJSON *item(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

static int get_int(ctx *c, const cJSON *o, const char *k, int lo, int hi, int *out) {
  const cJSON *v = item(o, k);
  if (!v) return CL_OK;
  if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < lo || v->valuedouble > hi)
    return cl_err(c->e, CL_EINVAL, "%s: %s.%s: expected an integer from %d to %d", c->path, c->sec, k, lo, hi);
  *out = (int)v->valuedouble;
  return CL_OK;
}

static int get_num(ctx *c, const cJSON *o, const char *k, double *out) {
  const cJSON *v = item(o, k);
  if (!v) return CL_OK;
  if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
    return cl_err(c->e, CL_EINVAL, "%s: %s.%s: expected a number", c->path, c->sec, k);
  *out = v->valuedouble;
  return CL_OK;
}

static int get_bool(ctx *c, const cJSON *o, const char *k, int *out) {
  const cJSON *v = item(o, k);
  if (!v) return CL_OK;
  if (!cJSON_IsBool(v)) return cl_err(c->e, CL_EINVAL, "%s: %s.%s: expected true or false", c->path, c->sec, k);
  *out = cJSON_IsTrue(v);
  return CL_OK;
}

/* A setting only one value of which is implemented. */
static int want_bool(ctx *c, const cJSON *o, const char *k, int want) {
  int v = want;
  TRY(get_bool(c, o, k, &v));
  if (v != want)
    return cl_err(c->e, CL_EUNSUP, "%s: %s.%s = %s: only %s is implemented", c->path, c->sec, k, v ? "true" : "false",
                  want ? "true" : "false");
  return CL_OK;
}

static int want_str(ctx *c, const cJSON *o, const char *k, const char *want) {
  const cJSON *v = item(o, k);
  if (v && !(cJSON_IsString(v) && !strcmp(v->valuestring, want)))
    return cl_err(c->e, CL_EUNSUP, "%s: %s.%s: only \"%s\" is implemented", c->path, c->sec, k, want);
  return CL_OK;
}

static int parse_bert(ctx *c, const cJSON *o, cl_bert_config *b) {
  const cJSON *bc = item(o, "bert_config");
  if (!bc) return cl_err(c->e, CL_EINVAL, "%s: %s: no bert_config", c->path, c->sec);
  char where[4200];
  snprintf(where, sizeof where, "%s: %s.bert_config", c->path, c->sec);
  cl_bert_config_default(b);
  return cl_bert_config_parse(bc, where, b, c->e);
}

static int parse_image(ctx *c, const cJSON *o, cl_clibd_config *cf) {
  cl_vit_config *v = &cf->image;
  cl_vit_config_default(v);
  TRY(get_int(c, o, "img_size", 1, 8192, &v->img_size));
  TRY(get_int(c, o, "patch_size", 1, 8192, &v->patch_size));
  TRY(get_int(c, o, "in_chans", 1, 4, &v->in_chans));
  TRY(get_int(c, o, "embed_dim", 1, 65536, &v->embed_dim));
  TRY(get_int(c, o, "depth", 1, 1024, &v->depth));
  TRY(get_int(c, o, "num_heads", 1, 65536, &v->num_heads));
  TRY(get_num(c, o, "mlp_ratio", &v->mlp_ratio));
  TRY(get_num(c, o, "layer_norm_eps", &v->layer_norm_eps));
  TRY(get_int(c, o, "out_dim", 1, 1 << 20, &cf->image_out));
  TRY(want_bool(c, o, "qkv_bias", 1));
  TRY(want_bool(c, o, "class_token", 1));
  TRY(want_str(c, o, "global_pool", "token"));
  char where[4200];
  snprintf(where, sizeof where, "%s: image", c->path);
  TRY(cl_vit_config_check(v, where, c->e));
  cf->image_resize = 256, cf->image_crop = 224;
  const cJSON *pp = item(o, "preprocess");
  if (pp) {
    ctx p = {c->path, "image.preprocess", c->e};
    TRY(get_int(&p, pp, "resize_short_side", 1, 65536, &cf->image_resize));
    TRY(get_int(&p, pp, "center_crop", 1, 65536, &cf->image_crop));
    TRY(want_str(&p, pp, "interpolation", "bilinear"));
    TRY(want_bool(&p, pp, "antialias", 1));
    const cJSON *nv = item(pp, "normalize");
    if (nv && !cJSON_IsNull(nv))
      return cl_err(c->e, CL_EUNSUP, "%s: image.preprocess.normalize: CLIBD's transform has none (null)", c->path);
  }
  if (cf->image_crop != v->img_size || cf->image_crop > cf->image_resize)
    return cl_err(c->e, CL_EINVAL, "%s: image.preprocess.center_crop %d must equal img_size %d and not exceed %d",
                  c->path, cf->image_crop, v->img_size, cf->image_resize);
  return CL_OK;
}

static int parse_dna(ctx *c, const cJSON *o, cl_clibd_config *cf) {
  TRY(parse_bert(c, o, &cf->dna_bert));
  cl_dna_cfg *d = &cf->dna;
  cl_dna_cfg_default(d);
  TRY(get_int(c, o, "k", 1, 12, &d->k));
  TRY(get_int(c, o, "stride", 1, 1000000, &d->stride));
  TRY(get_int(c, o, "max_len", 1, 1000000, &d->max_len));
  TRY(get_int(c, o, "leading_id", 0, 2, &d->leading_id));
  TRY(get_int(c, o, "out_dim", 1, 1 << 20, &cf->dna_out));
  const cJSON *pc = item(o, "pad_char");
  if (pc && !(cJSON_IsString(pc) && strlen(pc->valuestring) == 1))
    return cl_err(c->e, CL_EINVAL, "%s: dna.pad_char: expected one ASCII character", c->path);
  if (pc) d->pad_char = (unsigned char)pc->valuestring[0];
  int unk = CL_DNA_UNK_ID;
  TRY(get_int(c, o, "unk_id", 0, 1 << 20, &unk));
  if (unk != CL_DNA_UNK_ID) return cl_err(c->e, CL_EUNSUP, "%s: dna.unk_id = %d: CLIBD's is 2", c->path, unk);
  const cJSON *sp = item(o, "specials");
  static const char *specials[] = {"<MASK>", "<CLS>", "<UNK>"};
  if (sp) {
    int ok = cJSON_IsArray(sp) && cJSON_GetArraySize(sp) == 3;
    for (int i = 0; ok && i < 3; i++) {
      const cJSON *s = cJSON_GetArrayItem(sp, i);
      ok = cJSON_IsString(s) && !strcmp(s->valuestring, specials[i]);
    }
    if (!ok) return cl_err(c->e, CL_EUNSUP, "%s: dna.specials: only [\"<MASK>\", \"<CLS>\", \"<UNK>\"] is implemented", c->path);
  }
  if (cl_dna_cfg_check(d, c->e)) return cl_err_wrap(c->e, "%s", c->path);
  if (cl_dna_vocab_size(d) != cf->dna_bert.vocab_size)
    return cl_err(c->e, CL_EINVAL, "%s: dna.bert_config.vocab_size %d, but %d-mers give %d ids", c->path,
                  cf->dna_bert.vocab_size, d->k, cl_dna_vocab_size(d));
  if (cl_dna_ntokens(d) > cf->dna_bert.max_position_embeddings)
    return cl_err(c->e, CL_EINVAL, "%s: dna: %d tokens, more than bert_config.max_position_embeddings %d", c->path,
                  cl_dna_ntokens(d), cf->dna_bert.max_position_embeddings);
  return CL_OK;
}

static int parse_text(ctx *c, const cJSON *o, cl_clibd_config *cf) {
  TRY(parse_bert(c, o, &cf->text_bert));
  const cJSON *vf = item(o, "vocab_file");
  if (!vf || !cJSON_IsString(vf) || !*vf->valuestring)
    return cl_err(c->e, CL_EINVAL, "%s: text.vocab_file: expected a file name (relative to the config's folder)", c->path);
  const char *slash = strrchr(c->path, '/');
  if (vf->valuestring[0] == '/' || !slash) snprintf(cf->vocab_file, sizeof cf->vocab_file, "%s", vf->valuestring);
  else snprintf(cf->vocab_file, sizeof cf->vocab_file, "%.*s/%s", (int)(slash - c->path), c->path, vf->valuestring);
  cf->text_lower = 1, cf->text_strip_accents = -1, cf->text_max_length = 20;
  TRY(get_bool(c, o, "do_lower_case", &cf->text_lower));
  const cJSON *sa = item(o, "strip_accents");
  if (sa && !cJSON_IsNull(sa)) TRY(get_bool(c, o, "strip_accents", &cf->text_strip_accents));
  TRY(get_int(c, o, "max_length", 2, 1 << 20, &cf->text_max_length));
  TRY(get_int(c, o, "out_dim", 1, 1 << 20, &cf->text_out));
  TRY(want_str(c, o, "padding", "max_length"));
  TRY(want_bool(c, o, "truncation", 1));
  if (cf->text_max_length > cf->text_bert.max_position_embeddings)
    return cl_err(c->e, CL_EINVAL, "%s: text.max_length %d exceeds bert_config.max_position_embeddings %d", c->path,
                  cf->text_max_length, cf->text_bert.max_position_embeddings);
  return CL_OK;
}

static int parse(const cJSON *root, const char *path, cl_clibd_config *cf, cl_error *e) {
  memset(cf, 0, sizeof *cf);
  ctx c = {path, "config", e};
  if (!cJSON_IsObject(root)) return cl_err(e, CL_EFORMAT, "%s: expected a JSON object", path);
  const cJSON *f = item(root, "format");
  if (!f || !cJSON_IsString(f) || strcmp(f->valuestring, "clibd"))
    return cl_err(e, CL_EFORMAT, "%s: not a CLIBD config (\"format\": \"clibd\" missing)", path);
  TRY(get_int(&c, root, "output_dim", 1, 1 << 20, &cf->output_dim));
  static const char *secs[3] = {"image", "dna", "text"};
  for (int i = 0; i < 3; i++) {
    const cJSON *o = item(root, secs[i]);
    if (!o) continue;
    if (!cJSON_IsObject(o)) return cl_err(e, CL_EFORMAT, "%s: %s: expected an object", path, secs[i]);
    c.sec = secs[i];
    TRY(i == 0 ? parse_image(&c, o, cf) : i == 1 ? parse_dna(&c, o, cf) : parse_text(&c, o, cf));
    cf->towers |= 1 << i;
  }
  if (!cf->towers) return cl_err(e, CL_EFORMAT, "%s: no tower (image, dna or text section)", path);
  return CL_OK;
}

int cl_clibd_config_load(const char *path, cl_clibd_config *c, cl_error *e) {
  char *buf;
  size_t len;
  TRY(cl_read_file(path, &buf, &len, e));
  cJSON *root = cJSON_Parse(buf);
  free(buf);
  if (!root) return cl_err(e, CL_EFORMAT, "%s: not valid JSON", path);
  int rc = parse(root, path, c, e);
  cJSON_Delete(root);
  return rc;
}

int cl_clibd_config_is(const char *path) {
  char *buf;
  size_t len;
  if (cl_read_file(path, &buf, &len, NULL)) return 0;
  cJSON *root = cJSON_Parse(buf);
  free(buf);
  const cJSON *f = root ? item(root, "format") : NULL;
  int is = f && cJSON_IsString(f) && !strcmp(f->valuestring, "clibd");
  cJSON_Delete(root);
  return is;
}
