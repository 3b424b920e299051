/* cl_tensor: the host tensor type and the named-tensor map that checkpoints load into.
 * Owns: dtype conversion (F16/BF16/F64 -> F32), tensor maps and their backing memory. */
#ifndef CL_TENSOR_H
#define CL_TENSOR_H
#include <stddef.h>
#include <stdint.h>

#include "../core/cl_core.h"

typedef enum { CL_F32, CL_F16, CL_BF16, CL_F64, CL_I32, CL_I64, CL_U8, CL_I8, CL_I16, CL_BOOL } cl_dtype;

#define CL_MAXDIM 8

/* A view on memory it may or may not own; maps own the memory of their tensors. */
typedef struct cl_tensor {
  cl_dtype dtype;
  int ndim;
  int64_t shape[CL_MAXDIM];
  void *data;
} cl_tensor;

size_t cl_dtype_size(cl_dtype t);
const char *cl_dtype_name(cl_dtype t);         /* safetensors spelling: "F32", "BF16", ... */
int cl_dtype_parse(const char *s, cl_dtype *out); /* 0 on success */
int64_t cl_tensor_numel(const cl_tensor *t);
size_t cl_tensor_nbytes(const cl_tensor *t);
/* "[3,224,224]" into buf. */
const char *cl_shape_str(const cl_tensor *t, char *buf, size_t n);
int cl_shape_eq(const cl_tensor *t, int ndim, const int64_t *shape);

float cl_half_to_float(uint16_t h);
float cl_bf16_to_float(uint16_t h);
uint16_t cl_float_to_half(float f);
/* Convert n elements of any float/int dtype to F32. */
int cl_to_f32(cl_dtype dt, const void *src, float *dst, int64_t n, cl_error *e);

/* An ordered name -> tensor map. Tensors point into blocks the map owns. */
typedef struct cl_tmap_entry {
  char *name;
  cl_tensor t;
} cl_tmap_entry;

typedef struct cl_tmap {
  cl_tmap_entry *v;
  int n, cap;
  void **blocks;   /* malloc'd memory to free */
  int nblocks, capblocks;
  void *map_addr;  /* an mmap to unmap, or NULL */
  size_t map_len;
  char *metadata_json; /* safetensors __metadata__ as JSON text, or NULL */
} cl_tmap;

void cl_tmap_init(cl_tmap *m);
void cl_tmap_free(cl_tmap *m);
/* Adds a tensor whose data already lives in memory owned by the map (or outside it). */
void cl_tmap_put(cl_tmap *m, const char *name, cl_tensor t);
/* Copies data into a new block owned by the map. */
cl_tensor *cl_tmap_put_copy(cl_tmap *m, const char *name, cl_dtype dt, int ndim,
                            const int64_t *shape, const void *data);
void *cl_tmap_own(cl_tmap *m, void *block); /* take ownership of a malloc'd block */
const cl_tensor *cl_tmap_get(const cl_tmap *m, const char *name);

#endif
