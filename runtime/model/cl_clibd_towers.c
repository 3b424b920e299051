/* cl_clibd_towers: a CLIBD bundle as towers of the modality registry (model/cl_modality.h):
 * image (file -> CLIBD's eval transform -> ViT), text (string -> WordPiece ids and mask ->
 * BERT-small, mean, proj) and dna (sequence -> BarcodeBERT k-mer ids -> softmax-mean pooling),
 * each only where the bundle loaded the tower and the modality is registered. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/cl_clibd.h"
#include "model/cl_modality.h"
#include "text/cl_dna.h"

static int image_read(const cl_tower *t, const char *path, void *input, cl_error *e) {
  return cl_clibd_image_preprocess_file(t->ctx, path, input, e);
}

static int image_encode(const cl_tower *t, const void *pixels, int n, float *out, cl_error *e) {
  return cl_clibd_image_encode(t->ctx, pixels, n, out, NULL, e);
}

/* A text's input: ids [L] then mask [L]. */
static int text_read(const cl_tower *t, const char *text, void *input, cl_error *e) {
  return cl_clibd_text_tokenize(t->ctx, text, input, (int32_t *)input + cl_clibd_text_length(t->ctx), e);
}

static int text_encode(const cl_tower *t, const void *inputs, int n, float *out, cl_error *e) {
  const size_t L = (size_t)cl_clibd_text_length(t->ctx);
  const int32_t *in = inputs;
  int32_t *ids = cl_xmalloc((size_t)(n ? n : 1) * L * sizeof *ids), *mask = cl_xmalloc((size_t)(n ? n : 1) * L * sizeof *mask);
  for (int i = 0; i < n; i++) {
    memcpy(ids + i * L, in + 2 * i * L, L * sizeof *ids);
    memcpy(mask + i * L, in + (2 * i + 1) * L, L * sizeof *mask);
  }
  int rc = cl_clibd_text_encode_ids(t->ctx, ids, mask, n, out, NULL, e);
  free(ids);
  free(mask);
  return rc;
}

static int dna_read(const cl_tower *t, const char *seq, void *ids, cl_error *e) {
  return cl_dna_encode(cl_clibd_dna_tokenizer(t->ctx), seq, strlen(seq), ids, e);
}

static int dna_encode(const cl_tower *t, const void *ids, int n, float *out, cl_error *e) {
  return cl_clibd_dna_encode_ids(t->ctx, ids, n, out, NULL, e);
}

int cl_clibd_towers(cl_clibd *b, cl_tower *towers, int max, cl_error *e) {
  const cl_modality *im = cl_modality_find("image"), *tx = cl_modality_find("text"), *dn = cl_modality_find("dna");
  int n = 0;
  if (b->image && im && n < max) {
    const int S = cl_clibd_image_size(b->image);
    towers[n++] = (cl_tower){.mod = im, .dim = cl_clibd_image_dim(b->image), .batch = 32,
                             .input_bytes = (size_t)3 * S * S * sizeof(float), .ctx = b->image, .read = image_read,
                             .encode = image_encode};
  }
  if (b->text && tx && n < max)
    towers[n++] = (cl_tower){.mod = tx, .dim = cl_clibd_text_dim(b->text), .batch = 256,
                             .input_bytes = 2 * (size_t)cl_clibd_text_length(b->text) * sizeof(int32_t),
                             .ntokens = cl_clibd_text_length(b->text),
                             .ctx = b->text, .read = text_read, .encode = text_encode};
  if (b->dna && dn && n < max)
    towers[n++] = (cl_tower){.mod = dn, .dim = cl_clibd_dna_dim(b->dna), .batch = 64,
                             .input_bytes = (size_t)cl_clibd_dna_ntokens(b->dna) * sizeof(int32_t),
                             .ntokens = cl_clibd_dna_ntokens(b->dna), .ctx = b->dna,
                             .read = dna_read, .encode = dna_encode};
  if (!n) return -cl_err(e, CL_EINVAL, "%s: no tower of this CLIBD model has a registered modality", b->checkpoint);
  return n;
}
