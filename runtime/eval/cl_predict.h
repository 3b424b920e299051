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
/* The k largest of p[0..K) (k <= K), highest first, ties to the lower index, into idx; p read
 * once, blocks that cannot enter skipped on their maximum. */
void cl_predict_topk(const float *p, int K, int k, int *idx);
/* The softmax of p[0..K) in place, m its maximum: exponentials summed in double, then scaled by
 * the inverse of the sum. */
void cl_predict_softmax(float *p, int K, float m);

/* Scratch for the grouped ranking, sized for ngroups groups: made once by the caller, one per
 * thread, and left clean by every call. */
typedef struct cl_predict_groups {
  int ngroups;
  float *acc, *sums;
  unsigned char *seen;
  int *met, *first, *order;
} cl_predict_groups;
int cl_predict_groups_init(cl_predict_groups *w, int ngroups, cl_error *e);
void cl_predict_groups_free(cl_predict_groups *w);
/* pybioclip's grouped ranking: sums (float32, in label order) of the p[j] > min_prob of each
 * group gid[j] (0 <= gid < w->ngroups); the k largest groups, highest first, ties to the group
 * met first; for each, its sum and the first label met in it. Only the labels above min_prob
 * are visited. Returns how many groups were written (<= k). */
int cl_predict_group_topk(cl_predict_groups *w, const float *p, int K, const int32_t *gid, float min_prob, int k,
                          int *group_out, float *sum_out, int *label_out);

#endif
