/* cl_modality: the modality registry and the tower interface. A modality (image, text, dna)
 * is one descriptor: its name, the manifest column its items come from, how an item is
 * keyed in the embedding cache (its file's content, or the item itself) and whether reading
 * one item is costly enough for the thread pool. A tower is one modality's encoder inside a
 * model (models are bundles of towers keyed by modality, see cl_encoder.h): it reads one
 * item into its encoder input (file -> pixels; string -> tokens; sequence -> k-mer ids) and
 * encodes a batch of inputs. The scheduler and the cache work on (modality, items) only.
 * Owns: the list of registered modalities. A new modality is one descriptor in the list
 * (cl_modality.c) plus the towers that read and encode it. */
#ifndef CL_MODALITY_H
#define CL_MODALITY_H
#include <stddef.h>

#include "core/cl_core.h"

#define CL_MODALITY_MAX 8

typedef enum {
  CL_KEY_ITEM, /* the item itself (a text, a sequence) */
  CL_KEY_FILE  /* the content hash of the file the item names (an image path) */
} cl_key_by;

typedef struct cl_modality {
  const char *name;    /* "image": Lua's m:embed("image", items), cache kinds, stats */
  const char *plural;  /* "images": progress lines and run stats (images_encoded) */
  const char *column;  /* manifest column its items come from by default, or NULL */
  cl_key_by key_by;    /* what keys an item's embedding in the cache */
  int parallel_read;   /* 1: read items on the thread pool (tower->read is thread-safe) */
} cl_modality;

/* The registered modalities, in order (index i is stable within a build). */
int cl_modality_count(void);
const cl_modality *cl_modality_at(int i);
int cl_modality_index(const cl_modality *m);
/* NULL when no modality has that name. */
const cl_modality *cl_modality_find(const char *name);
/* "image, text, dna" into buf (for errors). */
const char *cl_modality_list(char *buf, size_t n);

typedef struct cl_tower cl_tower;
struct cl_tower {
  const cl_modality *mod;
  int dim;            /* embedding width */
  int batch;          /* items per encode call */
  size_t input_bytes; /* one item's encoder input */
  int ntokens;        /* the input starts with this many int32 token ids (texts, barcodes); 0: it does not */
  void *ctx;          /* the model state the functions below use */
  /* Read one item (a file path, a text, a sequence) into its encoder input. */
  int (*read)(const cl_tower *t, const char *item, void *input, cl_error *e);
  /* Encode n inputs (n <= batch) into out [n, dim]. */
  int (*encode)(const cl_tower *t, const void *inputs, int n, float *out, cl_error *e);
  /* The cache kind of its embeddings; NULL: the modality's name. A tower whose reading has
   * variants (draft image decoding) names each, so they are cached apart. */
  const char *(*cache_kind)(const cl_tower *t);
};

static inline const char *cl_tower_cache_kind(const cl_tower *t) {
  return t->cache_kind ? t->cache_kind(t) : t->mod->name;
}

#endif
