/* cl_wset: the parameters a model expects from a state dict, checked, converted to F32 and
 * placed in one backend allocation, for the towers that load from Hugging Face / timm /
 * CLIBD key names (BERT, timm ViT). A parameter is either read from a key (with its exact
 * shape) or derived at load (a fused qkv, a LoRA-merged weight) by a fix-up that runs on the
 * host copy before the upload; keys read only to derive others stay on the host.
 * Owns: the list, the host staging copy during load, and the check of a key prefix's
 * leftovers (keys under the prefix that the model does not use: an error, unless tolerated,
 * then listed for the log). */
#ifndef CL_WEIGHTS_H
#define CL_WEIGHTS_H
#include <stddef.h>
#include <stdint.h>

#include "cl_ops.h"
#include "core/cl_core.h"
#include "tensor/cl_tensor.h"

enum { CL_W_DEVICE = 0, CL_W_HOST = 1 }; /* where a parameter lives after load */

typedef struct cl_wparam {
  char *name;        /* the key, or NULL for a derived parameter */
  int ndim;
  int64_t shape[4];
  const float **slot; /* receives the backend pointer (device parameters), may be NULL */
  int host;           /* CL_W_HOST: read for a fix-up, not uploaded */
  const cl_tensor *t;
  size_t off;         /* floats into the staging buffer */
} cl_wparam;

typedef struct cl_wset {
  cl_wparam *v;
  int n, cap;
  float *host;        /* staging (valid during the fix-up) */
  size_t ndevice;     /* floats uploaded: the device parameters come first in staging */
} cl_wset;

/* Adds a parameter; returns its index. name NULL: derived (filled by the fix-up). */
int cl_wset_add(cl_wset *s, const float **slot, int host, int ndim, const int64_t *shape, const char *name);
/* The same with the name printed from fmt. */
int cl_wset_addf(cl_wset *s, const float **slot, int host, int ndim, const int64_t *shape, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* During the fix-up: the host copy of parameter i (F32, its shape row-major). */
float *cl_wset_host(const cl_wset *s, int i);
void cl_wset_free(cl_wset *s);

/* Checks every keyed parameter against m (missing key, shape, float dtype: the first problem
 * in list order, by key name). Then every key of m starting with one of the prefixes
 * (NULL-terminated list) must be a parameter or match one of the tolerated suffixes
 * (NULL-terminated, e.g. ".position_ids", "pooler."; a suffix matches anywhere after the prefix);
 * tolerated ones are appended to *ignored (a malloc'd ", "-separated list; may be NULL). */
int cl_wset_check(cl_wset *s, const cl_tmap *m, const char *const *prefixes, const char *const *tolerated,
                  char **ignored, cl_error *e);
/* Converts into staging, runs fixup(ud, s) (may be NULL), allocates *weights on the backend,
 * uploads the device parameters, fills their slots and prepares none (the model calls
 * prepare_linear for its linear weights). Call after cl_wset_check. */
int cl_wset_load(cl_wset *s, cl_backend *be, int (*fixup)(void *ud, cl_wset *s, cl_error *e), void *ud,
                 float **weights, cl_error *e);

/* The reused activation memory of a model: one backend allocation carved into buffers (each
 * 64-byte aligned), grown when a batch needs more, and a host index array for the backend's
 * index arguments. */
typedef struct cl_arena {
  float *base;
  size_t cap; /* floats */
  int32_t *idx;
  size_t idx_cap;
} cl_arena;
/* Carves n buffers of sizes[i] floats: *bufs[i] (backend memory). */
int cl_arena_carve(cl_arena *a, cl_backend *be, int n, const size_t *sizes, float **const *bufs, cl_error *e);
/* A host int32 array of at least n entries (NULL with e set when out of memory). */
int32_t *cl_arena_idx(cl_arena *a, size_t n, cl_error *e);
void cl_arena_free(cl_arena *a, cl_backend *be);

/* W[n,k] += B[n,r] A[r,k] (a LoRA pair merged into its base weight), on host floats. */
void cl_wset_lora_merge(float *w, const float *b, const float *a, int n, int k, int r);

#endif
