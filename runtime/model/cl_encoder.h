/* cl_encoder: a model as a bundle of towers keyed by modality (open_clip CLIP: image + text),
 * ready to use — model spec resolution (hub folder, checkpoint file, built-in config name),
 * the backend, the weights, the tokenizer and the image preprocessing. The scheduler
 * (sched/cl_sched.h) embeds items of any modality through cl_encoder_tower().
 * Owns: everything it loads; one encoder is used by one thread at a time. */
#ifndef CL_ENCODER_H
#define CL_ENCODER_H
#include <stdint.h>

#include "image/cl_image.h"
#include "model/cl_clip.h"
#include "model/cl_modality.h"
#include "text/cl_tokenizer.h"

typedef struct cl_encoder_spec {
  const char *path;      /* hub folder, .safetensors/.bin/.pt file */
  const char *config;    /* JSON file or built-in name; NULL: the folder's open_clip_config.json */
  const char *gelu;      /* NULL (config decides), "exact" or "quick" */
  const char *backend;   /* "cpu", "cuda", "auto" (NULL = auto) */
  const char *precision; /* "fp32", "tf32", "bf16", "fp16" (NULL = fp32); the CPU: fp32 only */
  const char *decode;    /* image decoding: "full" (NULL, open_clip's) or "draft" (opt-in fast) */
  int quiet;
  /* Content hash of the checkpoint; NULL hashes the file here. The embedding cache passes
   * its memo (path + size + mtime) so a large checkpoint is hashed once. */
  int (*hash_file)(void *ud, const char *path, char out[41], cl_error *e);
  void *hash_ud;
  /* Random weights (cl_clip_random) of the built-in `config` with this seed instead of a
   * checkpoint (path unused): benchmarks and tests of full-size models. */
  int random;
  uint64_t seed;
  /* Wraps the backend before any weight loads (clade bench --profile); the wrapper then owns
   * and destroys it. */
  int (*wrap_backend)(void *ud, cl_backend *be, cl_backend **out, cl_error *e);
  void *wrap_ud;
} cl_encoder_spec;

typedef struct cl_encoder {
  cl_backend *be;
  cl_clip *clip;
  cl_tok *tok;
  cl_clip_config cfg;
  char checkpoint[4096];
  char hash[41];        /* content hash of the checkpoint file (git blob SHA-1) */
  char backend_name[16];
  char precision[16];
  cl_img_decode decode; /* how image files are decoded before preprocessing */
  cl_tower towers[CL_MODALITY_MAX];
  int ntowers;
  float logit_scale;     /* the stored log (scores use exp) */
  const char *kind;      /* the model kind that opened it: "open_clip", "clibd" */
  void *model;           /* a bundle's own model (CLIBD's), freed by free_model */
  void (*free_model)(void *model);
  /* Why the model has no tower of a modality (e.g. the first missing key), or NULL; may be NULL. */
  const char *(*absent)(const void *model, const char *modality);
  /* the embedding cache's identity of this model: checkpoint hash, config, preprocessing,
   * backend, precision and CL_ENCODER_VERSION, hashed (set by the bundle's constructor) */
  char model_key[41];
  /* what beside the checkpoint decides the outputs (the resolved config: architecture,
   * activation, preprocessing), hashed: two models of one checkpoint with another `gelu`
   * differ here, recorded beside hash as an evaluation's provenance (set by the bundle) */
  char config_hash[41];
  /* checkpoint keys the model left unused (BioCLIP 2's visual.continual_proj), warned about
   * on stderr as it loaded; "" when none */
  char unused_keys[512];
} cl_encoder;

int cl_encoder_open(const cl_encoder_spec *spec, cl_encoder **out, cl_error *e);
/* What cl_encoder_open resolves before loading anything: the checkpoint file of spec->path
 * (a hub folder's, or the file itself) and the config (spec->config, else the
 * open_clip_config.json beside it; spec->gelu applied). */
int cl_encoder_locate(const cl_encoder_spec *spec, char *checkpoint, size_t n, cl_clip_config *cfg, cl_error *e);
void cl_encoder_close(cl_encoder *enc);

/* The tower for a modality name; NULL (and e filled, naming the tower, why it is absent where
 * the bundle knows, e.g. its first missing key, and the towers it has) when the model has none. */
cl_tower *cl_encoder_tower(cl_encoder *enc, const char *modality, cl_error *e);
/* Bundles: fill enc->towers and enc->model_key from a loaded model. open_clip CLIP: image
 * and text towers over enc->clip, enc->tok, enc->cfg and enc->decode. */
int cl_clip_bundle(cl_encoder *enc, cl_error *e);
/* CLIBD (cl_clibd_bundle.c): a spec whose config says "format": "clibd" opens its image, dna
 * and text towers (those the checkpoint has). */
int cl_clibd_bundle_is(const cl_encoder_spec *spec);
int cl_clibd_bundle_open(const cl_encoder_spec *spec, cl_encoder *enc, cl_error *e);

/* Items are embedded through the pipeline in sched/cl_sched.h (cl_sched_embed). */
/* Tokenise and encode n texts into out [n, embed_dim]; ids_out [n, context] if non-NULL. */
int cl_encoder_texts(cl_encoder *enc, const char *const *texts, int n, float *out, int32_t *ids_out,
                     cl_error *e);
/* Opens the backend for `want` (a registered name, or NULL / "auto": the first whose probe
 * succeeds; tensor/cl_backends.h) in `precision` (NULL = fp32), set before any weight is
 * prepared; its name and the precision's canonical name go to name and prec. Unless quiet,
 * says on stderr what auto passed over ("no GPU found: running on the CPU"). */
int cl_encoder_backend(const char *want, const char *precision, cl_backend **out, char name[16], char prec[16],
                       int quiet, cl_error *e);
/* What `backend` and `precision` will run on, without loading anything: the backend's name,
 * the device as results record it (the CPU model and kernels, or the GPU's name), and what
 * auto passed over in note ("" when nothing). Fails, saying why, where they cannot run here
 * (cuda without a GPU, tf32/fp16 on the CPU, bf16 without AVX512_BF16), so a run is refused
 * before it is recorded. */
int cl_encoder_resolve(const char *backend, const char *precision, char name[16], char *device, size_t n, char *note,
                       size_t nn, cl_error *e);

#endif
