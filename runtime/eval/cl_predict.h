/* cl_predict: the vectorised scoring behind clade predict, as pybioclip computes it:
 * probabilities = softmax(exp(logit_scale) * normalize(image) @ labels) over a label matrix
 * (the Tree of Life's [D, N] text embeddings, memory-mapped, float32 or float16, or a subset of
 * its columns; or custom labels' template-averaged embeddings), top-k labels, and the sums of
 * label probabilities above min_prob per group (ranks above species) with their top-k.
 * Owns: the chunked matrix product (no copy of the whole label matrix) and the selections. */
#ifndef CL_PREDICT_H
#define CL_PREDICT_H
#include <stdint.h>

#include "tensor/cl_tensor.h"

/* Label j (0 <= j < K) is column idx[j] (or j when idx is NULL) of the row-major [D, stride]
 * matrix data of dtype CL_F32 or CL_F16. */
typedef struct cl_labels {
  const void *data;
  cl_dtype dtype;
  int D;
  int64_t stride;
  const int *idx;
  int K;
} cl_labels;

/* probs [n, K]: softmax over the K labels of scale * (img_i / ||img_i||) . label_j. img is
 * [n, D], left unchanged. */
int cl_predict_probs(const float *img, int n, const cl_labels *L, float scale, float *probs, cl_error *e);
/* The k largest of p[0..K) (k <= K), highest first, ties to the lower index, into idx. */
void cl_predict_topk(const float *p, int K, int k, int *idx);
/* pybioclip's grouped ranking: sums (float32, in label order) of the p[j] > min_prob of each
 * group gid[j] (0 <= gid < ngroups); the k largest groups, highest first, ties to the group met
 * first; for each, its sum and the first label met in it. acc: ngroups floats, zero on entry and
 * on return. Returns how many groups were written (<= k). */
int cl_predict_group_topk(const float *p, int K, const int32_t *gid, int ngroups, float min_prob, int k, float *acc,
                          int *group_out, float *sum_out, int *label_out);

#endif
