/* cl_clip_config: open_clip model configs: defaults, built-in names, JSON parsing.
 * open_clip builds its CLIPVisionCfg/CLIPTextCfg dataclasses from these keys, so an
 * unknown key is an error there too; options that change the architecture are accepted
 * only at the values that leave it as implemented here. */
#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cl_clip.h"

static const float openai_mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
static const float openai_std[3] = {0.26862954f, 0.26130258f, 0.27577711f};

void cl_clip_config_default(cl_clip_config *c) {
  memset(c, 0, sizeof *c);
  c->vision = (cl_clip_vision_cfg){.image_size = 224, .patch_size = 16, .width = 768,
                                   .layers = 12, .head_width = 64, .mlp_ratio = 4.0};
  c->text = (cl_clip_text_cfg){.context_length = 77, .vocab_size = 49408, .width = 512,
                               .heads = 8, .layers = 12, .mlp_ratio = 4.0};
  memcpy(c->mean, openai_mean, sizeof c->mean);
  memcpy(c->std, openai_std, sizeof c->std);
}

int cl_clip_config_check(cl_clip_config *c, cl_error *e) {
  cl_clip_vision_cfg *v = &c->vision;
  cl_clip_text_cfg *t = &c->text;
  if (c->embed_dim < 1) return cl_err(e, CL_EINVAL, "model config: embed_dim must be set (got %d)", c->embed_dim);
  if (v->patch_size < 1 || v->image_size < v->patch_size || v->image_size % v->patch_size)
    return cl_err(e, CL_EINVAL, "model config: vision_cfg.patch_size %d does not divide vision_cfg.image_size %d",
                  v->patch_size, v->image_size);
  if (v->width < 1 || v->head_width < 1 || v->width % v->head_width)
    return cl_err(e, CL_EINVAL, "model config: vision_cfg.head_width %d does not divide vision_cfg.width %d",
                  v->head_width, v->width);
  v->heads = v->width / v->head_width;
  if (v->layers < 1) return cl_err(e, CL_EINVAL, "model config: vision_cfg.layers must be >= 1");
  /* compared as a double first: (int) of a product past INT_MAX is undefined */
  if (!(v->mlp_ratio > 0) || !(v->width * v->mlp_ratio < INT_MAX / 4) ||
      (int)(v->width * v->mlp_ratio) < 1)
    return cl_err(e, CL_EINVAL, "model config: vision_cfg.mlp_ratio %g is invalid", v->mlp_ratio);
  if (t->width < 1 || t->heads < 1 || t->width % t->heads)
    return cl_err(e, CL_EINVAL, "model config: text_cfg.heads %d does not divide text_cfg.width %d",
                  t->heads, t->width);
  if (t->layers < 1) return cl_err(e, CL_EINVAL, "model config: text_cfg.layers must be >= 1");
  if (t->context_length < 1 || t->vocab_size < 1)
    return cl_err(e, CL_EINVAL, "model config: text_cfg.context_length %d / vocab_size %d invalid",
                  t->context_length, t->vocab_size);
  /* compared as a double first: (int) of a product past INT_MAX is undefined */
  if (!(t->mlp_ratio > 0) || !(t->width * t->mlp_ratio < INT_MAX / 4) ||
      (int)(t->width * t->mlp_ratio) < 1)
    return cl_err(e, CL_EINVAL, "model config: text_cfg.mlp_ratio %g is invalid", t->mlp_ratio);
  for (int i = 0; i < 3; i++)
    if (!(c->std[i] > 0) || !isfinite(c->mean[i]))
      return cl_err(e, CL_EINVAL, "model config: preprocessing mean/std invalid (std[%d] = %g)", i, c->std[i]);
  return CL_OK;
}

/* The built-in architectures (open_clip's model_configs of the same names), one row each. */
static const struct builtin {
  const char *name;
  int embed, v_width, v_layers, v_patch, t_width, t_heads, t_layers, quick;
} builtins[] = {
    {"ViT-B-16", 512, 768, 12, 16, 512, 8, 12, 0},          /* BioCLIP's released config */
    {"ViT-B-16-quickgelu", 512, 768, 12, 16, 512, 8, 12, 1}, /* OpenAI CLIP */
    {"ViT-L-14", 768, 1024, 24, 14, 768, 12, 12, 0},         /* BioCLIP 2 */
    {"ViT-L-14-quickgelu", 768, 1024, 24, 14, 768, 12, 12, 1},
};

int cl_clip_config_builtin(const char *name, cl_clip_config *c, cl_error *e) {
  cl_clip_config_default(c);
  const int n = (int)(sizeof builtins / sizeof *builtins);
  int i = 0;
  while (i < n && strcmp(name, builtins[i].name)) i++;
  if (i == n) {
    char known[256] = "";
    for (int j = 0, off = 0; j < n && off < (int)sizeof known; j++)
      off += snprintf(known + off, sizeof known - off, "%s%s", j ? ", " : "", builtins[j].name);
    return cl_err(e, CL_EINVAL, "unknown model name \"%s\" (built in: %s)", name, known);
  }
  const struct builtin *b = &builtins[i];
  c->embed_dim = b->embed;
  c->vision.width = b->v_width, c->vision.layers = b->v_layers, c->vision.patch_size = b->v_patch;
  c->text.width = b->t_width, c->text.heads = b->t_heads, c->text.layers = b->t_layers;
  c->quick_gelu = b->quick;
  return cl_clip_config_check(c, e);
}

/* --- JSON helpers: each names the key it rejects and shows the value --- */

static int bad(cl_error *e, int code, const char *path, const char *want, const cJSON *it) {
  char *s = it ? cJSON_PrintUnformatted(it) : NULL;
  cl_err(e, code, "model config: %s %s, got %.200s", path, want, s ? s : "nothing");
  free(s);
  return code;
}

static int want_int(const cJSON *it, const char *path, int min, int *out, cl_error *e) {
  if (!cJSON_IsNumber(it) || it->valuedouble != floor(it->valuedouble) || it->valuedouble < min ||
      it->valuedouble > INT_MAX / 4) {
    char want[64];
    snprintf(want, sizeof want, "must be an integer >= %d", min);
    return bad(e, CL_EINVAL, path, want, it);
  }
  *out = (int)it->valuedouble;
  return CL_OK;
}

static int want_pos(const cJSON *it, const char *path, double *out, cl_error *e) {
  if (!cJSON_IsNumber(it) || !(it->valuedouble > 0) || !isfinite(it->valuedouble))
    return bad(e, CL_EINVAL, path, "must be a positive number", it);
  *out = it->valuedouble;
  return CL_OK;
}

static int want_bool(const cJSON *it, const char *path, int *out, cl_error *e) {
  if (!cJSON_IsBool(it)) return bad(e, CL_EINVAL, path, "must be true or false", it);
  if (out) *out = cJSON_IsTrue(it);
  return CL_OK;
}

/* An option whose only implemented value is "off": null, false or "". */
static int want_off(const cJSON *it, const char *path, cl_error *e) {
  if (cJSON_IsNull(it) || cJSON_IsFalse(it) || (cJSON_IsString(it) && !it->valuestring[0]))
    return CL_OK;
  return bad(e, CL_EUNSUP, path, "is not supported (only null/false)", it);
}

/* A string option of which only one value (or null, meaning the default) is implemented. */
static int want_str(const cJSON *it, const char *path, const char *only, cl_error *e) {
  if (cJSON_IsNull(it) || (cJSON_IsString(it) && !strcmp(it->valuestring, only))) return CL_OK;
  char want[96];
  snprintf(want, sizeof want, "is not supported (only \"%s\")", only);
  return bad(e, cJSON_IsString(it) ? CL_EUNSUP : CL_EINVAL, path, want, it);
}

/* act_kwargs / norm_kwargs: only the defaults (none). */
static int want_no_kwargs(const cJSON *it, const char *path, cl_error *e) {
  if (cJSON_IsNull(it) || (cJSON_IsObject(it) && !it->child)) return CL_OK;
  return bad(e, CL_EUNSUP, path, "is not supported (only null or {})", it);
}

static int want_rgb(const cJSON *it, const char *path, float *out, cl_error *e) {
  if (!it || cJSON_IsNull(it)) return CL_OK;
  if (!cJSON_IsArray(it) || cJSON_GetArraySize(it) != 3)
    return bad(e, CL_EINVAL, path, "must be a list of 3 numbers", it);
  float v[3];
  for (int i = 0; i < 3; i++) {
    const cJSON *x = cJSON_GetArrayItem(it, i);
    if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble))
      return bad(e, CL_EINVAL, path, "must be a list of 3 numbers", it);
    v[i] = (float)x->valuedouble;
  }
  memcpy(out, v, sizeof v);
  return CL_OK;
}

static int in_list(const char *k, const char *const *list) {
  for (; *list; list++)
    if (!strcmp(k, *list)) return 1;
  return 0;
}

/* Keys that only matter for training, tokenizing, or with an option we reject anyway. */
static const char *const vision_ignored[] = {
  "patch_dropout", "attn_pooler_queries", "attn_pooler_heads", "output_tokens",
  "timm_model_pretrained", "timm_pool", "timm_proj", "timm_proj_bias", "timm_drop",
  "timm_drop_path", "interpolation", "resize_mode", NULL};
static const char *const vision_off[] = {
  "ls_init_value", "attentional_pool", "no_ln_pre", "timm_model_name", "is_continual",
  "qk_norm", "scaled_cosine_attn", "scale_heads", "scale_attn_inner", "scale_attn", "scale_fc",
  NULL};
static const char *const text_ignored[] = {
  "hf_tokenizer_name", "tokenizer_kwargs", "tokenizer_mode", "pad_id", "eos_id",
  "output_tokens", "hf_model_pretrained", "hf_proj_type", "hf_pooler_type", NULL};
static const char *const text_off[] = {
  "ls_init_value", "embed_cls", "no_causal_mask", "proj_bias", "hf_model_name", "qk_norm",
  "scaled_cosine_attn", "scale_heads", "scale_attn_inner", "scale_attn", "scale_fc", NULL};

static int parse_vision(const cJSON *o, cl_clip_config *c, cl_error *e) {
  cl_clip_vision_cfg *v = &c->vision;
  if (!cJSON_IsObject(o)) return bad(e, CL_EINVAL, "vision_cfg", "must be an object", o);
  for (const cJSON *it = o->child; it; it = it->next) {
    const char *k = it->string;
    char path[160];
    snprintf(path, sizeof path, "vision_cfg.%s", k);
    int rc = CL_OK;
    if (!strcmp(k, "layers")) {
      if (cJSON_IsArray(it)) rc = bad(e, CL_EUNSUP, path, "is not supported (ModifiedResNet)", it);
      else rc = want_int(it, path, 1, &v->layers, e);
    } else if (!strcmp(k, "width")) rc = want_int(it, path, 1, &v->width, e);
    else if (!strcmp(k, "head_width")) rc = want_int(it, path, 1, &v->head_width, e);
    else if (!strcmp(k, "patch_size")) rc = want_int(it, path, 1, &v->patch_size, e);
    else if (!strcmp(k, "image_size")) {
      if (cJSON_IsArray(it)) { /* (h, w): only square */
        const cJSON *h = cJSON_GetArrayItem(it, 0), *w = cJSON_GetArrayItem(it, 1);
        if (cJSON_GetArraySize(it) != 2 || !cJSON_IsNumber(h) || !cJSON_IsNumber(w) ||
            h->valuedouble != w->valuedouble)
          rc = bad(e, CL_EUNSUP, path, "is not supported (only square images)", it);
        else rc = want_int(h, path, 1, &v->image_size, e);
      } else rc = want_int(it, path, 1, &v->image_size, e);
    } else if (!strcmp(k, "mlp_ratio")) rc = want_pos(it, path, &v->mlp_ratio, e);
    else if (!strcmp(k, "pos_embed_type")) rc = want_str(it, path, "learnable", e);
    else if (!strcmp(k, "pool_type")) rc = want_str(it, path, "tok", e);
    else if (!strcmp(k, "block_type")) rc = want_str(it, path, "default", e);
    /* LayerNorm is per token, so with token pooling it commutes with the pooling */
    else if (!strcmp(k, "final_ln_after_pool")) rc = want_bool(it, path, NULL, e);
    else if (!strcmp(k, "act_kwargs") || !strcmp(k, "norm_kwargs")) rc = want_no_kwargs(it, path, e);
    else if (!strcmp(k, "image_mean")) rc = want_rgb(it, path, c->mean, e);
    else if (!strcmp(k, "image_std")) rc = want_rgb(it, path, c->std, e);
    else if (in_list(k, vision_off)) rc = want_off(it, path, e);
    else if (!in_list(k, vision_ignored))
      rc = cl_err(e, CL_EINVAL, "model config: unknown key %s", path);
    if (rc) return rc;
  }
  return CL_OK;
}

static int parse_text(const cJSON *o, cl_clip_config *c, cl_error *e) {
  cl_clip_text_cfg *t = &c->text;
  if (!cJSON_IsObject(o)) return bad(e, CL_EINVAL, "text_cfg", "must be an object", o);
  for (const cJSON *it = o->child; it; it = it->next) {
    const char *k = it->string;
    char path[160];
    snprintf(path, sizeof path, "text_cfg.%s", k);
    int rc = CL_OK;
    if (!strcmp(k, "context_length")) rc = want_int(it, path, 1, &t->context_length, e);
    else if (!strcmp(k, "vocab_size")) rc = want_int(it, path, 1, &t->vocab_size, e);
    else if (!strcmp(k, "width")) rc = want_int(it, path, 1, &t->width, e);
    else if (!strcmp(k, "heads")) rc = want_int(it, path, 1, &t->heads, e);
    else if (!strcmp(k, "layers")) rc = want_int(it, path, 1, &t->layers, e);
    else if (!strcmp(k, "mlp_ratio")) rc = want_pos(it, path, &t->mlp_ratio, e);
    else if (!strcmp(k, "pool_type")) rc = want_str(it, path, "argmax", e);
    else if (!strcmp(k, "proj_type")) rc = want_str(it, path, "linear", e);
    else if (!strcmp(k, "block_type")) rc = want_str(it, path, "default", e);
    else if (!strcmp(k, "final_ln_after_pool")) rc = want_bool(it, path, NULL, e);
    else if (!strcmp(k, "act_kwargs") || !strcmp(k, "norm_kwargs")) rc = want_no_kwargs(it, path, e);
    else if (in_list(k, text_off)) rc = want_off(it, path, e);
    else if (!in_list(k, text_ignored))
      rc = cl_err(e, CL_EINVAL, "model config: unknown key %s", path);
    if (rc) return rc;
  }
  return CL_OK;
}

static int parse_model_cfg(const cJSON *o, cl_clip_config *c, cl_error *e) {
  if (!cJSON_IsObject(o)) return bad(e, CL_EINVAL, "model_cfg", "must be an object", o);
  int have_embed = 0;
  for (const cJSON *it = o->child; it; it = it->next) {
    const char *k = it->string;
    int rc = CL_OK;
    if (!strcmp(k, "embed_dim")) rc = want_int(it, k, 1, &c->embed_dim, e), have_embed = 1;
    else if (!strcmp(k, "quick_gelu")) rc = want_bool(it, k, &c->quick_gelu, e);
    else if (!strcmp(k, "nonscalar_logit_scale")) rc = want_bool(it, k, &c->nonscalar_logit_scale, e);
    else if (!strcmp(k, "vision_cfg")) rc = parse_vision(it, c, e);
    else if (!strcmp(k, "text_cfg")) rc = parse_text(it, c, e);
    else if (!strcmp(k, "custom_text") || !strcmp(k, "init_logit_bias") || !strcmp(k, "multimodal_cfg"))
      rc = want_off(it, k, e);
    else if (!strcmp(k, "init_logit_scale") || !strcmp(k, "cast_dtype") || !strcmp(k, "output_dict"))
      rc = CL_OK; /* initialisation / training only */
    else rc = cl_err(e, CL_EINVAL, "model config: unknown key %s", k);
    if (rc) return rc;
  }
  if (!have_embed) return cl_err(e, CL_EINVAL, "model config: missing key embed_dim");
  return CL_OK;
}

int cl_clip_config_parse(const char *json, cl_clip_config *c, cl_error *e) {
  cl_clip_config_default(c);
  cJSON *root = cJSON_Parse(json);
  if (!root) {
    const char *at = cJSON_GetErrorPtr();
    return cl_err(e, CL_EFORMAT, "model config: invalid JSON near \"%.40s\"", at ? at : "");
  }
  int rc;
  const cJSON *mc = cJSON_GetObjectItemCaseSensitive(root, "model_cfg");
  if (mc) { /* the hub's open_clip_config.json */
    rc = parse_model_cfg(mc, c, e);
    const cJSON *pp = cJSON_GetObjectItemCaseSensitive(root, "preprocess_cfg");
    if (!rc && pp && !cJSON_IsNull(pp)) {
      if (!cJSON_IsObject(pp)) rc = bad(e, CL_EINVAL, "preprocess_cfg", "must be an object", pp);
      if (!rc) rc = want_rgb(cJSON_GetObjectItemCaseSensitive(pp, "mean"), "preprocess_cfg.mean", c->mean, e);
      if (!rc) rc = want_rgb(cJSON_GetObjectItemCaseSensitive(pp, "std"), "preprocess_cfg.std", c->std, e);
    }
  } else {
    rc = parse_model_cfg(root, c, e);
  }
  cJSON_Delete(root);
  return rc ? rc : cl_clip_config_check(c, e);
}

int cl_clip_config_load(const char *path, cl_clip_config *c, cl_error *e) {
  char *text = NULL;
  size_t len = 0;
  int rc = cl_read_file(path, &text, &len, e); /* its errors name the path */
  if (rc) return rc;
  rc = cl_clip_config_parse(text, c, e);
  free(text);
  if (rc) cl_err_wrap(e, "%s", path);
  return rc;
}

/* The shortest decimal that reads back as the same float, as a double (so cJSON prints it
 * short: 0.48145466, not 0.48145467042922974). */
static double short_float(float f) {
  char buf[32];
  for (int digits = 6; digits < 10; digits++) {
    snprintf(buf, sizeof buf, "%.*g", digits, (double)f);
    if (strtof(buf, NULL) == f) break;
  }
  return strtod(buf, NULL);
}

char *cl_clip_config_to_json(const cl_clip_config *c) {
  cJSON *root = cJSON_CreateObject(), *mc = cJSON_AddObjectToObject(root, "model_cfg");
  cJSON_AddNumberToObject(mc, "embed_dim", c->embed_dim);
  cJSON_AddBoolToObject(mc, "quick_gelu", c->quick_gelu);
  if (c->nonscalar_logit_scale) cJSON_AddTrueToObject(mc, "nonscalar_logit_scale");
  cJSON *v = cJSON_AddObjectToObject(mc, "vision_cfg"), *t = cJSON_AddObjectToObject(mc, "text_cfg");
  cJSON_AddNumberToObject(v, "image_size", c->vision.image_size);
  cJSON_AddNumberToObject(v, "patch_size", c->vision.patch_size);
  cJSON_AddNumberToObject(v, "width", c->vision.width);
  cJSON_AddNumberToObject(v, "layers", c->vision.layers);
  cJSON_AddNumberToObject(v, "head_width", c->vision.head_width);
  cJSON_AddNumberToObject(v, "mlp_ratio", c->vision.mlp_ratio);
  cJSON_AddNumberToObject(t, "context_length", c->text.context_length);
  cJSON_AddNumberToObject(t, "vocab_size", c->text.vocab_size);
  cJSON_AddNumberToObject(t, "width", c->text.width);
  cJSON_AddNumberToObject(t, "heads", c->text.heads);
  cJSON_AddNumberToObject(t, "layers", c->text.layers);
  cJSON_AddNumberToObject(t, "mlp_ratio", c->text.mlp_ratio);
  cJSON *pp = cJSON_AddObjectToObject(root, "preprocess_cfg");
  const double mean[3] = {short_float(c->mean[0]), short_float(c->mean[1]), short_float(c->mean[2])};
  const double std[3] = {short_float(c->std[0]), short_float(c->std[1]), short_float(c->std[2])};
  cJSON_AddItemToObject(pp, "mean", cJSON_CreateDoubleArray(mean, 3));
  cJSON_AddItemToObject(pp, "std", cJSON_CreateDoubleArray(std, 3));
  char *s = cJSON_Print(root);
  cJSON_Delete(root);
  return s ? s : cl_strdup("{}");
}
