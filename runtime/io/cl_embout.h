/* cl_embout: an [n, D] float32 embedding matrix written to a file whose format follows its
 * extension (or an explicit format): safetensors (the tensor under its name, with metadata),
 * .npy (the bare array, np.load-able), or CSV (one row per item: the item, then D values,
 * for pandas). Written beside and renamed into place, so a failed write leaves no half file.
 * Owns: the format registry (names and extensions). */
#ifndef CL_EMBOUT_H
#define CL_EMBOUT_H
#include "../core/cl_core.h"

typedef enum { CL_EMBOUT_SAFETENSORS, CL_EMBOUT_NPY, CL_EMBOUT_CSV } cl_embout_fmt;

/* format NULL: by path's extension (.safetensors/.st, .npy, .csv; others safetensors);
 * else "safetensors", "npy" or "csv". -1 (e filled) for an unknown format name. */
int cl_embout_format(const char *path, const char *format, cl_embout_fmt *out, cl_error *e);
const char *cl_embout_name(cl_embout_fmt f);

/* Write emb [n, D]; items[i] names row i (the CSV's first column, headed item_col; the
 * safetensors metadata's "items" as a JSON array). meta_json: extra safetensors metadata
 * (a JSON object of strings) or NULL. */
int cl_embout_write(const char *path, cl_embout_fmt f, const char *tensor_name, const float *emb, int n, int D,
                    const char *item_col, const char *const *items, const char *meta_json, cl_error *e);

#endif
