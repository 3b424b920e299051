/* cl_predict: chunks of label columns are multiplied straight from the map when they are
 * contiguous float32, else gathered (and converted from float16) into a small scratch block. */
#include "cl_predict.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK 4096

int cl_predict_probs(const float *img, int n, const cl_labels *L, float scale, float *probs, cl_error *e) {
  const int D = L->D, K = L->K;
  if (n <= 0 || K <= 0) return n < 0 || K < 0 ? cl_err(e, CL_EINVAL, "predict: %d images, %d labels", n, K) : CL_OK;
  if (L->dtype != CL_F32 && L->dtype != CL_F16)
    return cl_err(e, CL_EUNSUP, "predict: labels of dtype %s", cl_dtype_name(L->dtype));
  float *x = malloc((size_t)n * D * sizeof *x);
  float *blk = malloc((size_t)D * CHUNK * sizeof *blk);
  if (!x || !blk) {
    free(x), free(blk);
    return cl_err(e, CL_ENOMEM, "predict: out of memory");
  }
  for (int i = 0; i < n; i++) { /* F.normalize: x / max(||x||, 1e-12) */
    double s = 0;
    for (int d = 0; d < D; d++) s += (double)img[(size_t)i * D + d] * img[(size_t)i * D + d];
    float nr = (float)sqrt(s);
    if (nr < 1e-12f) nr = 1e-12f;
    for (int d = 0; d < D; d++) x[(size_t)i * D + d] = img[(size_t)i * D + d] / nr;
  }
  for (int c0 = 0; c0 < K; c0 += CHUNK) {
    const int cw = K - c0 < CHUNK ? K - c0 : CHUNK;
    const float *B = blk;
    int64_t ldb = cw;
    if (L->dtype == CL_F32 && !L->idx) {
      B = (const float *)L->data + c0;
      ldb = L->stride;
    } else {
#pragma omp parallel for schedule(static)
      for (int d = 0; d < D; d++) {
        for (int j = 0; j < cw; j++) {
          const int64_t col = L->idx ? L->idx[c0 + j] : c0 + j;
          const size_t at = (size_t)d * (size_t)L->stride + (size_t)col;
          blk[(size_t)d * cw + j] = L->dtype == CL_F32 ? ((const float *)L->data)[at]
                                                       : cl_half_to_float(((const uint16_t *)L->data)[at]);
        }
      }
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, cw, D, scale, x, D, B, (int)ldb, 0.0f, probs + c0, K);
  }
  free(x), free(blk);
#pragma omp parallel for schedule(static)
  for (int i = 0; i < n; i++) {
    float *p = probs + (size_t)i * K, m = p[0];
    for (int j = 1; j < K; j++) m = p[j] > m ? p[j] : m;
    double s = 0;
    for (int j = 0; j < K; j++) s += (p[j] = expf(p[j] - m));
    const float inv = (float)(1.0 / s);
    for (int j = 0; j < K; j++) p[j] *= inv;
  }
  return CL_OK;
}

/* a before b in the ranking: higher value, then lower index */
static int above(float va, int ia, float vb, int ib) { return va > vb || (va == vb && ia < ib); }

void cl_predict_topk(const float *p, int K, int k, int *idx) {
  if (k <= 0) return;
  int m = 0; /* idx[0..m) sorted; insert each candidate that beats the last */
  for (int j = 0; j < K; j++) {
    if (m == k && !above(p[j], j, p[idx[m - 1]], idx[m - 1])) continue;
    int at = m < k ? m++ : k - 1;
    while (at > 0 && above(p[j], j, p[idx[at - 1]], idx[at - 1])) {
      idx[at] = idx[at - 1];
      at--;
    }
    idx[at] = j;
  }
}

int cl_predict_group_topk(const float *p, int K, const int32_t *gid, int ngroups, float min_prob, int k, float *acc,
                          int *group_out, float *sum_out, int *label_out) {
  int *met = malloc((size_t)(K ? K : 1) * sizeof *met), nmet = 0; /* groups in order of first label */
  int *first = malloc((size_t)(K ? K : 1) * sizeof *first);
  unsigned char *seen = calloc((size_t)(ngroups ? ngroups : 1), 1);
  if (!met || !first || !seen) abort();
  for (int j = 0; j < K; j++) {
    if (!(p[j] > min_prob)) continue;
    const int g = gid[j];
    if (!seen[g]) seen[g] = 1, first[nmet] = j, met[nmet++] = g;
    acc[g] += p[j];
  }
  /* the top k of the met groups by sum, ties to the earlier met */
  float *sums = malloc((size_t)(nmet ? nmet : 1) * sizeof *sums);
  int *order = malloc((size_t)(k > 0 ? k : 1) * sizeof *order);
  if (!sums || !order) abort();
  for (int i = 0; i < nmet; i++) sums[i] = acc[met[i]];
  const int kk = k < nmet ? k : nmet;
  cl_predict_topk(sums, nmet, kk, order);
  for (int i = 0; i < kk; i++) {
    group_out[i] = met[order[i]];
    sum_out[i] = sums[order[i]];
    label_out[i] = first[order[i]];
  }
  for (int i = 0; i < nmet; i++) acc[met[i]] = 0.0f;
  free(met), free(first), free(sums), free(order), free(seen);
  return kk;
}
