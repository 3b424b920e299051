/* cl_retrieval: exact cosine top-k with the lower key index first among ties, and CLIBD's
 * retrieval accuracies. */
#include "cl_retrieval.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Copies of the rows, each divided by its L2 norm. */
static double *normalized(const double *x, int64_t n, int64_t d) {
  double *o = cl_xmalloc((size_t)n * (size_t)d * sizeof *o);
  for (int64_t i = 0; i < n; i++) {
    const double *r = x + i * d;
    double s = 0;
    for (int64_t j = 0; j < d; j++) s += r[j] * r[j];
    double inv = s > 0 ? 1.0 / sqrt(s) : 0.0;
    for (int64_t j = 0; j < d; j++) o[i * d + j] = r[j] * inv;
  }
  return o;
}

/* One dot product in a fixed order: eight running sums (vectorisable without reassociating
 * anything), then the tail, then the sums pairwise. */
static double dot(const double *a, const double *b, int64_t d) {
  double acc[8] = {0};
  int64_t j = 0;
  for (; j + 8 <= d; j += 8)
    for (int l = 0; l < 8; l++) acc[l] += a[j + l] * b[j + l];
  for (int l = 0; j < d; j++, l++) acc[l] += a[j] * b[j];
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

int cl_retrieval_topk(const double *q, int64_t nq, const double *keys, int64_t nk, int64_t d, int k,
                      int64_t *out, cl_error *e) {
  if (nq < 0 || nk < 0 || d <= 0 || k <= 0)
    return cl_err(e, CL_EINVAL, "retrieval: bad sizes (%lld queries, %lld keys, width %lld, k %d)",
                  (long long)nq, (long long)nk, (long long)d, k);
  if ((nq && (uint64_t)nq > SIZE_MAX / sizeof(double) / (uint64_t)d) ||
      (nk && (uint64_t)nk > SIZE_MAX / sizeof(double) / (uint64_t)d))
    return cl_err(e, CL_EINVAL, "retrieval: %lld x %lld features overflow", (long long)(nq > nk ? nq : nk),
                  (long long)d);
  double *qn = normalized(q, nq, d), *kn = normalized(keys, nk, d);
  double *score = cl_xmalloc((size_t)k * sizeof *score);
  for (int64_t i = 0; i < nq; i++) {
    int64_t *best = out + i * k;
    int n = 0;
    for (int64_t j = 0; j < nk; j++) {
      double s = dot(qn + i * d, kn + j * d, d);
      /* insertion into the sorted best list; an equal score stays behind (lower index first) */
      if (n == k && !(s > score[n - 1])) continue;
      int p = n < k ? n++ : k - 1;
      while (p > 0 && score[p - 1] < s) {
        best[p] = best[p - 1];
        score[p] = score[p - 1];
        p--;
      }
      best[p] = j;
      score[p] = s;
    }
    for (int p = n; p < k; p++) best[p] = -1;
  }
  free(score);
  free(qn);
  free(kn);
  return CL_OK;
}

int cl_retrieval_accuracy(const int *query_label, int64_t nq, const int *key_label, int64_t nk,
                          const int64_t *topk, int kmax, int k, int n_labels, double *micro,
                          double *macro, cl_error *e) {
  if (nq <= 0) return cl_err(e, CL_EINVAL, "retrieval accuracy: no queries");
  if (k <= 0 || k > kmax) return cl_err(e, CL_EINVAL, "retrieval accuracy: k %d outside 1..%d", k, kmax);
  if (n_labels <= 0) return cl_err(e, CL_EINVAL, "retrieval accuracy: no labels");
  int64_t *count = cl_xcalloc((size_t)n_labels, sizeof *count), *hit = cl_xcalloc((size_t)n_labels, sizeof *hit);
  int *order = cl_xmalloc((size_t)n_labels * sizeof *order);
  int n_order = 0;
  int64_t right = 0;
  int rc = CL_OK;
  for (int64_t i = 0; i < nq && rc == CL_OK; i++) {
    int y = query_label[i];
    if (y < 0 || y >= n_labels) {
      rc = cl_err(e, CL_EINVAL, "retrieval accuracy: query %lld has label id %d outside 0..%d", (long long)i, y,
                  n_labels - 1);
      break;
    }
    if (count[y]++ == 0) order[n_order++] = y;
    int found = 0;
    for (int p = 0; p < k && !found; p++) {
      int64_t j = topk[i * kmax + p];
      if (j < 0) break;
      if (j >= nk) {
        rc = cl_err(e, CL_EINVAL, "retrieval accuracy: query %lld retrieved key %lld of %lld", (long long)i,
                    (long long)j, (long long)nk);
        break;
      }
      found = key_label[j] == y;
    }
    right += found;
    hit[y] += found;
  }
  if (rc == CL_OK) {
    *micro = (double)right * 1.0 / (double)nq;
    double sum = 0;
    for (int c = 0; c < n_order; c++) sum = sum + (double)hit[order[c]] * 1.0 / (double)count[order[c]];
    *macro = sum / n_order;
  }
  free(count);
  free(hit);
  free(order);
  return rc;
}
