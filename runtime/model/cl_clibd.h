/* cl_clibd: CLIBD (BIOSCAN-CLIP) checkpoints and their three towers, as bioscan-ml/clibd at
 * 7d73f80 computes them (shared/CLIBD.md): image = timm ViT with its LoRA merged and its head;
 * DNA = BarcodeBERT (BertForMaskedLM, CLIBD's replaced decoder) over get_sequence_pipeline ids,
 * no attention mask, softmax over the decoder outputs, mean over all positions; text =
 * BERT-small over WordPiece ids padded to max_length with the attention mask, mean of the last
 * hidden states over all positions, then `proj`. Embeddings are raw (SimpleCLIP normalises).
 * A checkpoint is CLIBD's best.pth (a bare SimpleCLIP state dict; the pre-April-2025 key names
 * `lora_vit`/`lora_barcode_bert`/`lora_bert` are mapped as update_checkpoint_param_names does)
 * plus a config.json in the format of shared/fixtures/clibd/config.json ("format": "clibd").
 * Each tower is opened, used and freed on its own (for the model registry); cl_clibd_open
 * opens the bundle. Owns: CLIBD configs, the towers, the key renaming. */
#ifndef CL_CLIBD_H
#define CL_CLIBD_H
#include <stdint.h>

#include "cl_bert.h"
#include "cl_ops.h"
#include "cl_vit.h"
#include "text/cl_dna.h"

enum { CL_CLIBD_IMAGE = 1, CL_CLIBD_DNA = 2, CL_CLIBD_TEXT = 4, CL_CLIBD_ALL = 7 };

typedef struct cl_clibd_config {
  int towers; /* which sections the config has (CL_CLIBD_* bits) */
  int output_dim;
  cl_vit_config image;
  int image_out, image_resize, image_crop; /* head rows; CLIBD's Resize(256), CenterCrop(224) */
  cl_bert_config dna_bert;
  cl_dna_cfg dna;
  int dna_out;
  cl_bert_config text_bert;
  char vocab_file[4096]; /* resolved against the config's folder */
  int text_lower, text_strip_accents, text_max_length, text_out;
} cl_clibd_config;

/* 1 when the JSON file at path says "format": "clibd" (0 when it is not readable JSON). */
int cl_clibd_config_is(const char *path);
/* Parses a CLIBD config.json; a bad or unsupported value is an error naming path: key. */
int cl_clibd_config_load(const char *path, cl_clibd_config *c, cl_error *e);

/* CLIBD's update_checkpoint_param_names on a loaded state dict, in place: the substrings
 * lora_vit -> base_image_encoder, lora_barcode_bert -> base_dna_encoder, lora_bert ->
 * base_language_encoder. Returns how many keys were renamed. */
int cl_clibd_rename_keys(cl_tmap *w);

/* --- towers: each loads from a (renamed) state dict; ignored: keys it tolerates, for the log --- */

typedef struct cl_clibd_image cl_clibd_image;
int cl_clibd_image_open(const cl_clibd_config *c, const cl_tmap *w, cl_backend *be, cl_clibd_image **out,
                        char **ignored, cl_error *e);
void cl_clibd_image_free(cl_clibd_image *t);
int cl_clibd_image_dim(const cl_clibd_image *t);
int cl_clibd_image_size(const cl_clibd_image *t); /* pixels per side the tower takes (224) */
/* CLIBD's eval transform of one file into chw [3, size, size]. */
int cl_clibd_image_preprocess_file(const cl_clibd_image *t, const char *path, float *chw, cl_error *e);
/* pixels [n, 3, size, size] -> out [n, dim] raw; pre_logits [n, W] when non-NULL. */
int cl_clibd_image_encode(cl_clibd_image *t, const float *pixels, int n, float *out, float *pre_logits, cl_error *e);
/* Files -> out [n, dim]: preprocess, encode in batches. */
int cl_clibd_image_encode_files(cl_clibd_image *t, const char *const *paths, int n, float *out, cl_error *e);

typedef struct cl_clibd_dna cl_clibd_dna;
int cl_clibd_dna_open(const cl_clibd_config *c, const cl_tmap *w, cl_backend *be, cl_clibd_dna **out, char **ignored,
                      cl_error *e);
void cl_clibd_dna_free(cl_clibd_dna *t);
int cl_clibd_dna_dim(const cl_clibd_dna *t);
int cl_clibd_dna_ntokens(const cl_clibd_dna *t); /* 133 */
const cl_dna_cfg *cl_clibd_dna_tokenizer(const cl_clibd_dna *t);
/* ids [n, ntokens] -> out [n, dim] raw (each row sums to 1); logits [n, ntokens, dim] too
 * when non-NULL. */
int cl_clibd_dna_encode_ids(cl_clibd_dna *t, const int32_t *ids, int n, float *out, float *logits, cl_error *e);
/* Sequences (NUL-terminated UTF-8) -> out [n, dim]; ids_out [n, ntokens] when non-NULL. */
int cl_clibd_dna_encode(cl_clibd_dna *t, const char *const *seqs, int n, float *out, int32_t *ids_out, cl_error *e);

typedef struct cl_clibd_text cl_clibd_text;
int cl_clibd_text_open(const cl_clibd_config *c, const cl_tmap *w, cl_backend *be, cl_clibd_text **out,
                       char **ignored, cl_error *e);
void cl_clibd_text_free(cl_clibd_text *t);
int cl_clibd_text_dim(const cl_clibd_text *t);
int cl_clibd_text_length(const cl_clibd_text *t); /* max_length (20) */
/* Texts -> out [n, dim] raw; ids_out and mask_out [n, length] when non-NULL; hidden
 * [n, length, H] (the last hidden states) when non-NULL. */
int cl_clibd_text_encode(cl_clibd_text *t, const char *const *texts, int n, float *out, int32_t *ids_out,
                         int32_t *mask_out, float *hidden, cl_error *e);

/* One text into ids and attention mask [length]. */
int cl_clibd_text_tokenize(const cl_clibd_text *t, const char *text, int32_t *ids, int32_t *mask, cl_error *e);
/* ids and mask [n, length] -> out [n, dim]; hidden [n, length, H] when non-NULL. */
int cl_clibd_text_encode_ids(cl_clibd_text *t, const int32_t *ids, const int32_t *mask, int n, float *out,
                             float *hidden, cl_error *e);
const char *cl_clibd_text_vocab_hash(const cl_clibd_text *t); /* content hash of vocab.txt */

/* --- the bundle --- */

typedef struct cl_clibd {
  cl_clibd_config cfg;
  cl_clibd_image *image; /* NULL where the checkpoint has no such tower and it was not needed */
  cl_clibd_dna *dna;
  cl_clibd_text *text;
  float logit_scale;
  char checkpoint[4096];
  char *absent[3]; /* why a tower (image, dna, text) is not loaded: its first missing key, or the config */
} cl_clibd;

/* path: a folder (best.pth, or model.safetensors where there is no best.pth, + config.json
 * in it) or a checkpoint file (config NULL: the
 * config.json beside it). needs: the towers that must be there (CL_CLIBD_* bits); the others
 * load when the checkpoint and config have them. A needed tower the checkpoint lacks is an
 * error naming the tower and its first missing key; a key no tower uses is an error; keys real
 * files carry and no tower uses (position_ids, pooler.*, cls.predictions.bias, logit_scale,
 * the keys of a tower not loaded) are listed on stderr unless quiet. be outlives the bundle. */
int cl_clibd_open(const char *path, const char *config, int needs, cl_backend *be, int quiet, cl_clibd **out,
                  cl_error *e);
void cl_clibd_close(cl_clibd *b);
/* Why the bundle has no tower of this modality ("missing key ..."), or NULL. */
const char *cl_clibd_absent(const cl_clibd *b, const char *modality);
/* What, besides the checkpoint's content, decides the bundle's embeddings (dims, eps, token
 * settings, transform, the vocabulary's hash), as one line for a cache key. */
void cl_clibd_identity(const cl_clibd *b, char *buf, size_t n);

/* The bundle as towers of the modality registry (cl_modality.h), in cl_clibd_towers.c: one
 * per loaded tower whose modality is registered (image, text, dna), into towers[0..max).
 * Returns how many (>= 1), or a negated CL_E* code when none. A text tower's input is its ids
 * then its mask ([2, max_length] int32); a dna tower's its k-mer ids. */
struct cl_tower;
int cl_clibd_towers(cl_clibd *b, struct cl_tower *towers, int max, cl_error *e);
/* Where the checkpoint and config of path are (as cl_clibd_open resolves them). */
int cl_clibd_resolve(const char *path, const char *config, char *ckpt, size_t nckpt, char *cfg, size_t ncfg,
                     cl_error *e);

#endif
