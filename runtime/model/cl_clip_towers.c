/* cl_clip_towers: open_clip CLIP as a bundle of two towers — image (file -> decoded,
 * PIL-exact resized, normalised pixels) and text (string -> CLIP BPE ids). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/cl_encoder.h"
#include "sched/cl_cache.h"
#include "store/cl_store.h"

static int image_read(const cl_tower *t, const char *path, void *input, cl_error *e) {
  const cl_encoder *enc = t->ctx;
  return cl_img_preprocess_file_decode(path, enc->cfg.vision.image_size, enc->decode, enc->cfg.mean, enc->cfg.std,
                                       input, e);
}

static int image_encode(const cl_tower *t, const void *pixels, int n, float *out, cl_error *e) {
  const cl_encoder *enc = t->ctx;
  return cl_clip_encode_images(enc->clip, pixels, n, out, e);
}

/* draft decoding changes the pixels, not the texts */
static const char *image_kind(const cl_tower *t) {
  const cl_encoder *enc = t->ctx;
  return enc->decode == CL_IMG_DECODE_DRAFT ? "image-draft" : "image";
}

static int text_read(const cl_tower *t, const char *text, void *ids, cl_error *e) {
  const cl_encoder *enc = t->ctx;
  if (cl_tok_encode(enc->tok, text, ids, enc->cfg.text.context_length, e) < 0) return e && e->code ? e->code : CL_EINVAL;
  return CL_OK;
}

static int text_encode(const cl_tower *t, const void *ids, int n, float *out, cl_error *e) {
  const cl_encoder *enc = t->ctx;
  return cl_clip_encode_texts(enc->clip, ids, n, out, e);
}

/* The cache identity: unchanged from the first wave, so existing caches stay valid. */
static void model_key(const cl_encoder *enc, char out[41]) {
  const cl_clip_config *c = &enc->cfg;
  char buf[1024];
  int n = snprintf(buf, sizeof buf,
                   "%s|ckpt=%s|embed=%d|v=%d,%d,%d,%d,%d,%.6f|t=%d,%d,%d,%d,%d,%.6f|quick=%d|"
                   "pre=pil-bicubic,%d,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g|backend=%s|precision=%s",
                   CL_ENCODER_VERSION, enc->hash, c->embed_dim, c->vision.image_size, c->vision.patch_size,
                   c->vision.width, c->vision.layers, c->vision.head_width, c->vision.mlp_ratio,
                   c->text.context_length, c->text.vocab_size, c->text.width, c->text.heads, c->text.layers,
                   c->text.mlp_ratio, c->quick_gelu, c->vision.image_size, c->mean[0], c->mean[1], c->mean[2],
                   c->std[0], c->std[1], c->std[2], enc->backend_name, enc->precision);
  if (cl_hash_buf(buf, (size_t)n, out, NULL) != CL_OK) snprintf(out, 41, "unhashable");
}

int cl_clip_bundle(cl_encoder *enc, cl_error *e) {
  const cl_modality *im = cl_modality_find("image"), *tx = cl_modality_find("text");
  if (!im || !tx) return cl_err(e, CL_EINVAL, "the image and text modalities are not registered");
  int S = enc->cfg.vision.image_size, D = enc->cfg.embed_dim;
  enc->towers[0] = (cl_tower){.mod = im, .dim = D, .batch = 32, .input_bytes = (size_t)3 * S * S * sizeof(float),
                              .ctx = enc, .read = image_read, .encode = image_encode, .cache_kind = image_kind};
  enc->towers[1] = (cl_tower){.mod = tx, .dim = D, .batch = 256,
                              .input_bytes = (size_t)enc->cfg.text.context_length * sizeof(int32_t),
                              .ntokens = enc->cfg.text.context_length, .ctx = enc,
                              .read = text_read, .encode = text_encode};
  enc->ntowers = 2;
  model_key(enc, enc->model_key);
  char *cj = cl_clip_config_to_json(&enc->cfg); /* as the hub folder's open_clip_config.json */
  int rc = cl_hash_buf(cj, strlen(cj), enc->config_hash, e);
  free(cj);
  return rc;
}
