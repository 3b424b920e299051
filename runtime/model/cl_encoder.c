/* cl_encoder: resolve, load and run an encoder. */
#include "cl_encoder.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/cl_ckpt.h"
#include "model/cl_clip_random.h"
#include "store/cl_store.h"
#include "tensor/cl_backends.h"

#define TRYE(x)            \
  do {                     \
    int _rc = (x);         \
    if (_rc) return _rc;   \
  } while (0)

static int is_dir(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* In a hub folder: open_clip_model.safetensors, then open_clip_pytorch_model.bin, then the
 * only *.safetensors / *.bin / *.pt file. */
static int find_checkpoint(const char *dir, char *out, size_t n, cl_error *e) {
  static const char *names[] = {"open_clip_model.safetensors", "open_clip_pytorch_model.bin", NULL};
  if (!out || !n) return cl_err(e, CL_EINVAL, "%s: no room for the checkpoint's path", dir);
  for (const char **p = names; *p; p++) {
    snprintf(out, n, "%s/%s", dir, *p);
    if (is_file(out)) return CL_OK;
  }
  DIR *d = opendir(dir);
  if (!d) return cl_err(e, CL_EIO, "%s: cannot open folder", dir);
  int found = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    const char *dot = strrchr(de->d_name, '.');
    if (dot && (!strcmp(dot, ".safetensors") || !strcmp(dot, ".bin") || !strcmp(dot, ".pt"))) {
      if (found++) break;
      snprintf(out, n, "%s/%s", dir, de->d_name);
    }
  }
  closedir(d);
  if (found == 1) return CL_OK;
  return cl_err(e, CL_EIO, "%s: %s", dir,
                found ? "several checkpoint files; name one with path = \".../file\""
                      : "no checkpoint (open_clip_model.safetensors or open_clip_pytorch_model.bin)");
}

int cl_encoder_backend(const char *want, const char *precision, cl_backend **out, char name[16], char prec[16],
                       int quiet, cl_error *e) {
  const cl_backend_desc *d;
  cl_precision p;
  char note[256];
  *out = NULL;
  TRYE(cl_backends_choose(want, precision, &d, &p, note, sizeof note, e));
  if (!quiet && note[0]) fprintf(stderr, "clade: %s\n", note);
  TRYE(d->create(out, e));
  snprintf(name, 16, "%s", d->name);
  /* before the weights: a backend converts them once, in this precision, as they load */
  int rc = p != CL_PREC_FP32 ? (*out)->set_precision(*out, p, e) : CL_OK;
  if (rc) {
    cl_backend_destroy(*out);
    *out = NULL;
    return rc;
  }
  snprintf(prec, 16, "%s", cl_precision_name(p));
  return CL_OK;
}

int cl_encoder_resolve(const char *backend, const char *precision, char name[16], char *device, size_t n, char *note,
                       size_t nn, cl_error *e) {
  const cl_backend_desc *d;
  TRYE(cl_backends_choose(backend, precision, &d, NULL, note, nn, e));
  snprintf(name, 16, "%s", d->name);
  d->describe(device, n);
  return CL_OK;
}

/* spec->gelu over the config's activation. */
static int gelu_option(const cl_encoder_spec *spec, cl_clip_config *cfg, cl_error *e) {
  if (!spec->gelu) return CL_OK;
  if (!strcmp(spec->gelu, "exact")) cfg->quick_gelu = 0;
  else if (!strcmp(spec->gelu, "quick")) cfg->quick_gelu = 1;
  else return cl_err(e, CL_EINVAL, "gelu = \"%s\": choose \"exact\" or \"quick\"", spec->gelu);
  return CL_OK;
}

int cl_encoder_locate(const cl_encoder_spec *spec, char *checkpoint, size_t n, cl_clip_config *cfg, cl_error *e) {
  const char *path = spec->path;
  char cfgpath[4200] = "";
  if (!path) return cl_err(e, CL_EINVAL, "model: no path given");
  if (is_dir(path)) {
    TRYE(find_checkpoint(path, checkpoint, n, e));
    snprintf(cfgpath, sizeof cfgpath, "%s/open_clip_config.json", path);
  } else if (is_file(path)) {
    snprintf(checkpoint, n, "%s", path);
    const char *slash = strrchr(path, '/');
    snprintf(cfgpath, sizeof cfgpath, "%.*s/open_clip_config.json", slash ? (int)(slash - path) : 1,
             slash ? path : ".");
  } else {
    return cl_err(e, CL_EIO, "%s: no such model file or folder", path);
  }
  if (spec->config) {
    if (is_file(spec->config)) TRYE(cl_clip_config_load(spec->config, cfg, e));
    else if (cl_clip_config_builtin(spec->config, cfg, e) != CL_OK)
      return cl_err(e, CL_EIO, "config %s: neither a file nor a built-in name (ViT-B-16, ViT-B-16-quickgelu, ViT-L-14)",
                    spec->config);
  } else if (is_file(cfgpath)) {
    TRYE(cl_clip_config_load(cfgpath, cfg, e));
  } else {
    return cl_err(e, CL_EINVAL, "%s: no open_clip_config.json beside the checkpoint; give a config", path);
  }
  return gelu_option(spec, cfg, e);
}

/* The weights: the checkpoint's, or random ones (with an identity hash of what made them). */
static int load_weights(const cl_encoder_spec *spec, cl_encoder *enc, cl_error *e) {
  if (spec->random) {
    char ident[160];
    int len = snprintf(ident, sizeof ident, "clade random weights v1 %s quick=%d seed=%llu", spec->config,
                       enc->cfg.quick_gelu, (unsigned long long)spec->seed);
    TRYE(cl_hash_buf(ident, (size_t)len, enc->hash, e));
    return cl_clip_random_load(&enc->cfg, spec->seed, enc->be, &enc->clip, e);
  }
  cl_tmap w;
  TRYE(cl_ckpt_load(enc->checkpoint, &w, e));
  char *unused = NULL;
  int rc = cl_clip_load_unused(&enc->cfg, &w, enc->be, &enc->clip, &unused, e);
  cl_tmap_free(&w);
  if (rc) return cl_err_wrap(e, "%s", enc->checkpoint), rc;
  if (unused) { /* open_clip's model has no parameter for them (its strict load refuses them) */
    fprintf(stderr, "clade: warning: %s: keys not used by the model (training-only?): %s\n", enc->checkpoint,
            unused);
    snprintf(enc->unused_keys, sizeof enc->unused_keys, "%s", unused);
    free(unused);
  }
  return spec->hash_file ? spec->hash_file(spec->hash_ud, enc->checkpoint, enc->hash, e)
                         : cl_hash_file(enc->checkpoint, enc->hash, e);
}

/* open_clip CLIP: a checkpoint and its open_clip config, or random weights. */
static int open_clip_open(const cl_encoder_spec *spec, cl_encoder *enc, cl_error *e);

/* The model kinds, in order: the first whose `is` accepts the spec opens it (NULL: any). */
static const struct {
  const char *name;
  int (*is)(const cl_encoder_spec *spec);
  int (*open)(const cl_encoder_spec *spec, cl_encoder *enc, cl_error *e);
} kinds[] = {{"clibd", cl_clibd_bundle_is, cl_clibd_bundle_open}, {"open_clip", NULL, open_clip_open}};

int cl_encoder_open(const cl_encoder_spec *spec, cl_encoder **out, cl_error *e) {
  cl_encoder *enc = cl_xcalloc(1, sizeof *enc);
  int rc = CL_OK;
  if (cl_img_decode_parse(spec->decode, &enc->decode)) {
    rc = cl_err(e, CL_EINVAL, "decode \"%s\": choose full or draft", spec->decode);
  } else {
    size_t k = 0;
    while (kinds[k].is && !kinds[k].is(spec)) k++;
    enc->kind = kinds[k].name;
    rc = kinds[k].open(spec, enc, e);
  }
  if (rc) {
    cl_encoder_close(enc);
    enc = NULL;
  }
  *out = enc;
  return rc;
}

static int open_clip_open(const cl_encoder_spec *spec, cl_encoder *enc, cl_error *e) {
  int rc = CL_OK;
  if (spec->random) {
    if (!spec->config) return cl_err(e, CL_EINVAL, "random weights: no built-in config named");
    snprintf(enc->checkpoint, sizeof enc->checkpoint, "random:%s:seed=%llu", spec->config,
             (unsigned long long)spec->seed);
    rc = cl_clip_config_builtin(spec->config, &enc->cfg, e);
    if (!rc) rc = gelu_option(spec, &enc->cfg, e);
  } else {
    rc = cl_encoder_locate(spec, enc->checkpoint, sizeof enc->checkpoint, &enc->cfg, e);
  }
  if (rc) return rc;
  if ((rc = cl_encoder_backend(spec->backend, spec->precision, &enc->be, enc->backend_name, enc->precision,
                               spec->quiet, e)))
    return rc;
  if (spec->wrap_backend) { /* the wrapper owns the backend from here */
    cl_backend *w;
    if ((rc = spec->wrap_backend(spec->wrap_ud, enc->be, &w, e))) return rc;
    enc->be = w;
  }
  if ((rc = load_weights(spec, enc, e))) return rc;
  if ((rc = cl_tok_load(NULL, &enc->tok, e))) return rc;
  if ((rc = cl_clip_bundle(enc, e))) return rc;
  enc->logit_scale = cl_clip_logit_scale(enc->clip);
  return CL_OK;
}

cl_tower *cl_encoder_tower(cl_encoder *enc, const char *modality, cl_error *e) {
  for (int i = 0; i < enc->ntowers; i++)
    if (!strcmp(enc->towers[i].mod->name, modality)) return &enc->towers[i];
  char have[256] = "";
  for (int i = 0, off = 0; i < enc->ntowers && off < (int)sizeof have; i++)
    off += snprintf(have + off, sizeof have - off, "%s%s", i ? ", " : "", enc->towers[i].mod->name);
  char known[256];
  if (!cl_modality_find(modality))
    cl_err(e, CL_EINVAL, "modality '%s' is not registered (known: %s)", modality, cl_modality_list(known, sizeof known));
  else if (enc->absent && enc->absent(enc->model, modality))
    cl_err(e, CL_EINVAL, "%s: the model has no %s tower: %s (it has %s)", enc->checkpoint, modality,
           enc->absent(enc->model, modality), have);
  else
    cl_err(e, CL_EINVAL, "%s: the model has no %s tower (it has %s)", enc->checkpoint, modality, have);
  return NULL;
}

void cl_encoder_close(cl_encoder *enc) {
  if (!enc) return;
  if (enc->free_model) enc->free_model(enc->model);
  cl_clip_free(enc->clip);
  cl_backend_destroy(enc->be);
  cl_tok_free(enc->tok);
  free(enc);
}

int cl_encoder_texts(cl_encoder *enc, const char *const *texts, int n, float *out, int32_t *ids_out,
                     cl_error *e) {
  if (!enc->clip || !enc->tok) return cl_err(e, CL_EUNSUP, "%s: not an open_clip CLIP model", enc->checkpoint);
  int C = enc->cfg.text.context_length;
  int32_t *ids = cl_xmalloc((size_t)(n > 0 ? n : 1) * C * sizeof(int32_t));
  int rc = CL_OK;
  for (int i = 0; i < n && rc == CL_OK; i++)
    if (cl_tok_encode(enc->tok, texts[i], ids + (size_t)i * C, C, e) < 0) rc = e ? e->code : CL_EINVAL;
  for (int start = 0; start < n && rc == CL_OK; start += 256) {
    int nb = n - start < 256 ? n - start : 256;
    rc = cl_clip_encode_texts(enc->clip, ids + (size_t)start * C, nb, out + (size_t)start * enc->cfg.embed_dim, e);
  }
  if (rc == CL_OK && ids_out) memcpy(ids_out, ids, (size_t)n * C * sizeof(int32_t));
  free(ids);
  return rc;
}
