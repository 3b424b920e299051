/* cl_bootstrap: percentile intervals and the paired test against the best (see the header). */
#include "cl_bootstrap.h"

#include <math.h>
#include <stdlib.h>

#include "eval/cl_pyrandom.h"

double cl_boot_point(const cl_boot_outcomes *o) {
  double sum = 0;
  const uint8_t *c = o->correct;
  for (int t = 0; t < o->ntrials; t++) {
    int64_t right = 0;
    for (int i = 0; i < o->trial_n[t]; i++) right += c[i];
    sum += (double)right / o->trial_n[t];
    c += o->trial_n[t];
  }
  return sum / o->ntrials;
}

int cl_boot_resample(const cl_boot_outcomes *o, int B, uint64_t seed, double *acc, cl_error *e) {
  const uint8_t *x = o->correct;
  return cl_boot_resample_multi(o, 1, &x, B, seed, acc, e);
}

int cl_boot_resample_multi(const cl_boot_outcomes *o, int nx, const uint8_t *const *xs, int B, uint64_t seed,
                           double *acc, cl_error *e) {
  const int T = o->ntrials;
  if (T < 1 || B < 1 || nx < 1)
    return cl_err(e, CL_EINVAL, "bootstrap: %d trials, %d outcome sets, %d resamples", T, nx, B);
  int64_t *start = malloc((size_t)T * sizeof *start), *right = malloc((size_t)nx * sizeof *right);
  int *pick = malloc((size_t)T * sizeof *pick);
  double *sum = malloc((size_t)nx * sizeof *sum);
  if (!start || !pick || !right || !sum) {
    free(start), free(pick), free(right), free(sum);
    return cl_err(e, CL_ENOMEM, "bootstrap: out of memory");
  }
  int64_t off = 0;
  int rc = CL_OK;
  for (int t = 0; t < T && rc == CL_OK; t++) {
    if (o->trial_n[t] < 1) rc = cl_err(e, CL_EINVAL, "bootstrap: trial %d has no examples", t);
    start[t] = off;
    off += o->trial_n[t] > 0 ? o->trial_n[t] : 0;
  }
  cl_pyrand r;
  cl_pyrand_seed(&r, (int64_t)(seed & INT64_MAX));
  for (int b = 0; b < B && rc == CL_OK; b++) {
    for (int t = 0; t < T; t++) pick[t] = T > 1 ? (int)cl_pyrand_below(&r, (uint32_t)T) : 0;
    for (int m = 0; m < nx; m++) sum[m] = 0;
    for (int t = 0; t < T; t++) {
      const int n = o->trial_n[pick[t]];
      const int64_t s0 = start[pick[t]];
      for (int m = 0; m < nx; m++) right[m] = 0;
      for (int i = 0; i < n; i++) {
        const int64_t at = s0 + cl_pyrand_below(&r, (uint32_t)n);
        for (int m = 0; m < nx; m++) right[m] += xs[m][at];
      }
      for (int m = 0; m < nx; m++) sum[m] += (double)right[m] / n;
    }
    for (int m = 0; m < nx; m++) acc[(size_t)m * B + b] = sum[m] / T;
  }
  free(start), free(pick), free(right), free(sum);
  return rc;
}

/* Scratch of the retrieval scores: per class its count and hits at each k, and the order
 * of first appearance (only the classes touched are reset). */
typedef struct rscratch {
  int64_t *count, *hits; /* [ncls], [ncls * nk] */
  int *order, norder;
} rscratch;

static void retrieval_score(const cl_boot_queries *q, const int *idx, int m, const int *ks, int nk, rscratch *w,
                            double *micro, double *macro) {
  for (int j = 0; j < nk; j++) micro[j] = 0;
  w->norder = 0;
  for (int t = 0; t < m; t++) {
    const int i = idx ? idx[t] : t, c = q->cls[i], h = q->hit[i];
    if (w->count[c]++ == 0) w->order[w->norder++] = c;
    for (int j = 0; j < nk; j++) {
      const int in = h >= 1 && h <= ks[j];
      micro[j] += in;
      w->hits[(size_t)c * nk + j] += in;
    }
  }
  for (int j = 0; j < nk; j++) {
    micro[j] = micro[j] * 1.0 / (double)m;
    double sum = 0;
    for (int o = 0; o < w->norder; o++) {
      const int c = w->order[o];
      sum = sum + (double)w->hits[(size_t)c * nk + j] * 1.0 / (double)w->count[c];
    }
    macro[j] = sum / w->norder;
  }
  for (int o = 0; o < w->norder; o++) { /* reset what this draw touched */
    const int c = w->order[o];
    w->count[c] = 0;
    for (int j = 0; j < nk; j++) w->hits[(size_t)c * nk + j] = 0;
  }
}

static int rscratch_init(rscratch *w, int ncls, int nk) {
  w->count = calloc((size_t)ncls, sizeof *w->count);
  w->hits = calloc((size_t)ncls * (size_t)nk, sizeof *w->hits);
  w->order = malloc((size_t)ncls * sizeof *w->order);
  return w->count && w->hits && w->order;
}

static void rscratch_free(rscratch *w) { free(w->count), free(w->hits), free(w->order); }

void cl_boot_retrieval_point(const cl_boot_queries *q, const int *idx, int m, const int *ks, int nk, double *micro,
                             double *macro) {
  rscratch w = {0};
  if (!rscratch_init(&w, q->ncls > 0 ? q->ncls : 1, nk > 0 ? nk : 1)) abort();
  retrieval_score(q, idx, m, ks, nk, &w, micro, macro);
  rscratch_free(&w);
}

int cl_boot_retrieval(const cl_boot_queries *q, const int *ks, int nk, int B, uint64_t seed, double *micro,
                      double *macro, cl_error *e) {
  if (q->n < 1 || q->ncls < 1 || nk < 1 || B < 1)
    return cl_err(e, CL_EINVAL, "bootstrap: %d queries of %d classes, %d metrics, %d resamples", q->n, q->ncls, nk,
                  B);
  for (int i = 0; i < q->n; i++)
    if (q->cls[i] < 0 || q->cls[i] >= q->ncls || q->hit[i] < 0)
      return cl_err(e, CL_EINVAL, "bootstrap: query %d has class %d of %d, hit %d", i, q->cls[i], q->ncls, q->hit[i]);
  rscratch w = {0};
  int *idx = malloc((size_t)q->n * sizeof *idx);
  if (!idx || !rscratch_init(&w, q->ncls, nk)) {
    free(idx);
    rscratch_free(&w);
    return cl_err(e, CL_ENOMEM, "bootstrap: out of memory");
  }
  cl_pyrand r;
  cl_pyrand_seed(&r, (int64_t)(seed & INT64_MAX));
  for (int b = 0; b < B; b++) {
    for (int t = 0; t < q->n; t++) idx[t] = (int)cl_pyrand_below(&r, (uint32_t)q->n);
    retrieval_score(q, idx, q->n, ks, nk, &w, micro + (size_t)b * nk, macro + (size_t)b * nk);
  }
  free(idx);
  rscratch_free(&w);
  return CL_OK;
}

static int cmp_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

double cl_boot_percentile(double *x, int n, double q) {
  qsort(x, (size_t)n, sizeof *x, cmp_double);
  if (n == 1) return x[0];
  /* numpy: virtual index (n - 1) * q/100, gamma its fraction, and _lerp(a, b, gamma) =
   * a + (b - a) * gamma, computed as b - (b - a) * (1 - gamma) where gamma >= 0.5 */
  volatile double h = (q / 100) * (n - 1); /* rounded here: no fused multiply-add below */
  double lo = floor(h);
  if (lo > n - 1) lo = n - 1;
  if (lo < 0) lo = 0;
  const int i = (int)lo, j = i + 1 < n ? i + 1 : i;
  const double g = h - lo, a = x[i], b = x[j], d = b - a;
  volatile double dg = g >= 0.5 ? d * (1 - g) : d * g;
  return g >= 0.5 ? b - dg : a + dg;
}

void cl_boot_interval(double *acc, int B, double level, double *lo, double *hi) {
  volatile double pct = 100 * level;     /* rounded apart (95 exactly): no fused multiply-add */
  const double q = (100 - pct) / 2;      /* 2.5 for 0.95 */
  *lo = cl_boot_percentile(acc, B, q);
  *hi = cl_boot_percentile(acc, B, 100 - q);
}

void cl_boot_holm(const double *p, int m, double alpha, int *reject) {
  int *order = malloc((size_t)(m > 0 ? m : 1) * sizeof *order);
  if (!order) abort();
  for (int i = 0; i < m; i++) order[i] = i, reject[i] = 0;
  for (int i = 1; i < m; i++) /* stable insertion sort by p (m is a handful of models) */
    for (int k = i; k > 0 && p[order[k]] < p[order[k - 1]]; k--) {
      int t = order[k];
      order[k] = order[k - 1], order[k - 1] = t;
    }
  /* reject the i-th smallest while p_(i) <= alpha / (m - i), stop at the first that is not */
  for (int i = 0; i < m && p[order[i]] <= alpha / (m - i); i++) reject[order[i]] = 1;
  free(order);
}

int cl_boot_ties(const double *const *s, int m, int B, double alpha, int *tied, double *p) {
  int best = 0;
  double best_mean = -INFINITY;
  for (int j = 0; j < m; j++) {
    double sum = 0;
    for (int b = 0; b < B; b++) sum += s[j][b];
    if (sum / B > best_mean) best_mean = sum / B, best = j;
  }
  for (int j = 0; j < m; j++) {
    int ge = 0;
    for (int b = 0; b < B; b++) ge += s[j][b] >= s[best][b];
    p[j] = (double)ge / B;
  }
  cl_boot_holm(p, m, alpha, tied);
  for (int j = 0; j < m; j++) tied[j] = !tied[j];
  return best;
}
