/* cl_safetensors: read (mmap) and write safetensors files.
 * Owns: header validation; loaded tensors point into the map's mmap. */
#ifndef CL_SAFETENSORS_H
#define CL_SAFETENSORS_H
#include "../tensor/cl_tensor.h"

/* Load every tensor of path into m (initialised here). Checks the header length, JSON,
 * dtypes, that offsets lie in the file and match shape x dtype. */
int cl_st_load(const char *path, cl_tmap *m, cl_error *e);
/* Write all tensors of m (in order) with optional metadata (a JSON object text or NULL). */
int cl_st_save(const char *path, const cl_tmap *m, const char *metadata_json, cl_error *e);

#endif
