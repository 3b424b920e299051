/* cl_npy: read (mmap) and write NumPy .npy files (format versions 1.0, 2.0, 3.0).
 * Owns: header parsing and validation; an opened array points into the file's mmap, never a
 * copy. Reads only what it understands: little-endian (or single-byte) f4, f2, f8, i1, i2, i4,
 * i8, u1, b1 in C order; refuses big-endian, structured or object dtypes, fortran_order True,
 * a header that overflows the file, and data shorter or longer than the shape says. */
#ifndef CL_NPY_H
#define CL_NPY_H
#include "../tensor/cl_tensor.h"

typedef struct cl_npy {
  cl_tensor t;    /* t.data points into the map */
  void *map_addr; /* the mmap to unmap (NULL for an empty array) */
  size_t map_len;
} cl_npy;

/* Memory-map path and validate its header; *out is zeroed on failure. Errors name the file. */
int cl_npy_open(const char *path, cl_npy *out, cl_error *e);
void cl_npy_close(cl_npy *a);
/* Write t (C order, its dtype; bf16 is refused: NumPy has no such dtype) as a version 1.0
 * file byte for byte as np.save writes it (the data 64-byte aligned). */
int cl_npy_save(const char *path, const cl_tensor *t, cl_error *e);
/* The version 1.0 header np.save writes for t's dtype and shape (t->data unused) into out:
 * its length (a multiple of 64), or 0 when NumPy has no such dtype or it does not fit in cap. */
size_t cl_npy_header(const cl_tensor *t, unsigned char *out, size_t cap);

#endif
