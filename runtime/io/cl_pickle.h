/* cl_pickle: a restricted pickle reader for PyTorch checkpoints (prefix cl_pt_).
 * Owns: the value tree of one data.pkl. It understands only the opcodes torch.save emits for
 * state dicts and training checkpoints, and only the globals that rebuild tensors; anything else
 * is refused with the byte offset, and nothing is ever executed. Tensors come out as references
 * to storages by key ("<folder>/data/<key>" in the zip), which cl_torchzip reads. */
#ifndef CL_PICKLE_H
#define CL_PICKLE_H
#include <stddef.h>
#include <stdint.h>

#include "../tensor/cl_tensor.h"

typedef enum {
  CL_PT_NONE, CL_PT_BOOL, CL_PT_INT, CL_PT_FLOAT, CL_PT_STR, CL_PT_BYTES,
  CL_PT_TUPLE, CL_PT_LIST, CL_PT_DICT,
  CL_PT_GLOBAL,  /* one of the allowed callables/classes (see cl_pt_global) */
  CL_PT_STORAGE, /* a persistent id ('storage', <type>, key, location, numel) */
  CL_PT_TENSOR   /* the result of _rebuild_tensor_v2 / _rebuild_parameter */
} cl_pt_kind;

typedef enum {
  CL_PT_G_ORDEREDDICT, CL_PT_G_REBUILD_TENSOR_V2, CL_PT_G_REBUILD_PARAMETER,
  CL_PT_G_REBUILD_PARAMETER_WITH_STATE, CL_PT_G_STORAGE
} cl_pt_global;

typedef struct cl_pt_value cl_pt_value;
struct cl_pt_value {
  cl_pt_kind kind;
  union {
    int b;                                   /* BOOL */
    struct { int64_t v; int big; double approx; } i; /* INT: big = does not fit int64 */
    double f;                                /* FLOAT */
    struct { char *s; size_t n; } str;       /* STR (UTF-8), BYTES; s is NUL-terminated */
    struct { cl_pt_value **v; size_t n, cap; } seq; /* TUPLE, LIST; DICT: v[2k] key, v[2k+1] value */
    struct { cl_pt_global g; cl_dtype dtype; } glob; /* dtype for CL_PT_G_STORAGE */
    struct { cl_dtype dtype; char *key; int64_t numel; } storage;
    struct {
      const cl_pt_value *storage;
      int64_t offset; /* in elements */
      int ndim;
      int64_t size[CL_MAXDIM], stride[CL_MAXDIM];
    } tensor;
  } u;
};

/* One parsed pickle; every value lives until cl_pt_free (values may be shared through the memo). */
typedef struct cl_pt_pickle {
  cl_pt_value *root;
  cl_pt_value **all;
  size_t nall, capall;
} cl_pt_pickle;

/* Run the restricted VM over data[0..len). Errors read "<what> (offset N)", e.g. "pickle global
 * 'os system' not allowed (offset 2)"; callers prefix the file. On error p
 * is left empty (nothing to free, though cl_pt_free is harmless). */
int cl_pt_parse(const unsigned char *data, size_t len, cl_pt_pickle *p, cl_error *e);
void cl_pt_free(cl_pt_pickle *p);

/* The value of a string key in a DICT (the last one if repeated), or NULL. */
const cl_pt_value *cl_pt_dict_get(const cl_pt_value *dict, const char *key);
const char *cl_pt_kind_name(cl_pt_kind k);
/* 1 when the tensor's strides are the row-major ones (size-1 dims may have any stride). */
int cl_pt_tensor_contiguous(const cl_pt_value *t);

#endif
