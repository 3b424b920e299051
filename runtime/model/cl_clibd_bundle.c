/* cl_clibd_bundle: a CLIBD checkpoint opened as an encoder — its towers (cl_clibd_towers.c)
 * keyed by modality, its cache identity (the checkpoint's hash and cl_clibd_identity). */
#include <stdio.h>
#include <string.h>

#include "model/cl_clibd.h"
#include "model/cl_encoder.h"
#include "sched/cl_cache.h"

int cl_clibd_bundle_is(const cl_encoder_spec *spec) {
  char ckpt[4096], cfg[4096];
  if (spec->random || !spec->path) return 0;
  if (cl_clibd_resolve(spec->path, spec->config, ckpt, sizeof ckpt, cfg, sizeof cfg, NULL) != CL_OK) return 0;
  return cl_clibd_config_is(cfg);
}

static void close_bundle(void *b) { cl_clibd_close(b); }
static const char *absent(const void *b, const char *modality) { return cl_clibd_absent(b, modality); }

int cl_clibd_bundle_open(const cl_encoder_spec *spec, cl_encoder *enc, cl_error *e) {
  if (spec->gelu) return cl_err(e, CL_EINVAL, "%s: gelu: a CLIBD model's activations are fixed by its config", spec->path);
  if (enc->decode != CL_IMG_DECODE_FULL)
    return cl_err(e, CL_EUNSUP, "%s: decode %s: CLIBD's image transform decodes every pixel (full)", spec->path,
                  cl_img_decode_name(enc->decode));
  int rc = cl_encoder_backend(spec->backend, spec->precision, &enc->be, enc->backend_name, enc->precision,
                              spec->quiet, e);
  if (rc) return rc;
  cl_clibd *b = NULL;
  if ((rc = cl_clibd_open(spec->path, spec->config, 0, enc->be, spec->quiet, &b, e))) return rc;
  enc->model = b;
  enc->free_model = close_bundle;
  enc->absent = absent;
  enc->logit_scale = b->logit_scale;
  snprintf(enc->checkpoint, sizeof enc->checkpoint, "%s", b->checkpoint);
  rc = spec->hash_file ? spec->hash_file(spec->hash_ud, enc->checkpoint, enc->hash, e)
                       : cl_hash_file(enc->checkpoint, enc->hash, e);
  if (rc) return rc;
  int n = cl_clibd_towers(b, enc->towers, CL_MODALITY_MAX, e);
  if (n < 0) return -n;
  enc->ntowers = n;
  /* the cache identity: the checkpoint's content and what else decides the embeddings */
  char ident[2048], key[2600];
  cl_clibd_identity(b, ident, sizeof ident);
  if ((rc = cl_hash_buf(ident, strlen(ident), enc->config_hash, e))) return rc;
  int len = snprintf(key, sizeof key, "%s|clibd|ckpt=%s|%s|backend=%s|precision=%s", CL_ENCODER_VERSION, enc->hash,
                     ident, enc->backend_name, enc->precision);
  return cl_hash_buf(key, (size_t)(len < (int)sizeof key ? len : (int)sizeof key - 1), enc->model_key, e);
}
