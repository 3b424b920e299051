/* cl_predict: chunks of label columns are multiplied straight from the map when they are
 * contiguous float32, else gathered (and converted from float16, 8 at a time with F16C) into
 * a scratch block per thread small enough to stay in L2 for the product; the chunks are shared out over the OpenMP threads, one single-threaded OpenBLAS
 * call each (the CPU backend keeps OpenBLAS at one thread), and each row's maximum is taken
 * chunk by chunk while the chunk is in cache. Then one pass of exponentials (the CPU backend's
 * vector exp where the CPU has AVX-512, expf otherwise) and one of scaling per image. The
 * selections read each probability once, skipping blocks of labels that cannot enter the top
 * k or hold nothing above min_prob. */
#include "cl_predict.h"

#include <cblas.h>
#ifdef __F16C__
#include <immintrin.h>
#endif
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cl_cpu_simd.h"

#define CHUNK 4096 /* label columns per product, straight from the map */
#define GCHUNK 512 /* gathered or converted: a block of D x 512 floats stays in L2 for the product */
#define BLOCK 64 /* labels per block the selections skip at once */

static float max_of(const float *p, int n) {
  float m = p[0];
  for (int j = 1; j < n; j++) m = p[j] > m ? p[j] : m;
  return m;
}

/* float16 to float32 (exact either way): F16C where the build targets it (x86-64-v3) */
static void halves_to_floats(const uint16_t *h, float *f, int n) {
  int j = 0;
#ifdef __F16C__
  for (; j + 8 <= n; j += 8) _mm256_storeu_ps(f + j, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + j))));
#endif
  for (; j < n; j++) f[j] = cl_half_to_float(h[j]);
}

void cl_predict_softmax(float *p, int K, float m) {
  double s = 0;
  if (cl_cpu_avx512()) {
    s = cl_cpu_expsum_x512(p, (size_t)K, m);
  } else {
    for (int j = 0; j < K; j++) s += (p[j] = expf(p[j] - m));
  }
  const float inv = (float)(1.0 / s);
  for (int j = 0; j < K; j++) p[j] *= inv;
}

int cl_predict_probs(const float *img, int n, const cl_labels *L, float scale, float *probs, cl_error *e) {
  const int D = L->D, K = L->K, nt = omp_get_max_threads();
  if (n <= 0 || K <= 0) return n < 0 || K < 0 ? cl_err(e, CL_EINVAL, "predict: %d images, %d labels", n, K) : CL_OK;
  if (L->dtype != CL_F32 && L->dtype != CL_F16)
    return cl_err(e, CL_EUNSUP, "predict: labels of dtype %s", cl_dtype_name(L->dtype));
  const int gather = L->dtype != CL_F32 || L->idx, cs = gather ? GCHUNK : CHUNK, nchunks = (K + cs - 1) / cs;
  float *x = malloc((size_t)n * D * sizeof *x);
  float *blk = gather ? malloc((size_t)nt * D * cs * sizeof *blk) : NULL;
  float *mx = malloc((size_t)nt * n * sizeof *mx);
  if (!x || (gather && !blk) || !mx) {
    free(x), free(blk), free(mx);
    return cl_err(e, CL_ENOMEM, "predict: out of memory");
  }
  for (int i = 0; i < n; i++) { /* F.normalize: x / max(||x||, 1e-12) */
    double s = 0;
    for (int d = 0; d < D; d++) s += (double)img[(size_t)i * D + d] * img[(size_t)i * D + d];
    float nr = (float)sqrt(s);
    if (nr < 1e-12f) nr = 1e-12f;
    for (int d = 0; d < D; d++) x[(size_t)i * D + d] = img[(size_t)i * D + d] / nr;
  }
  for (size_t i = 0; i < (size_t)nt * n; i++) mx[i] = -INFINITY;
  /* chunks over the OpenMP threads, one single-threaded OpenBLAS call each (the CPU backend sets
   * OpenBLAS to one thread: OpenMP owns the cores); each thread keeps its row maxima */
#pragma omp parallel num_threads(nt)
  {
    const int tid = omp_get_thread_num();
    float *mine = mx + (size_t)tid * n, *tb = gather ? blk + (size_t)tid * D * cs : NULL;
#pragma omp for schedule(dynamic)
    for (int c = 0; c < nchunks; c++) {
      const int c0 = c * cs, cw = K - c0 < cs ? K - c0 : cs;
      const float *B = (const float *)L->data + c0;
      int64_t ldb = L->stride;
      if (gather && !L->idx) { /* float16 columns in a row: converted 8 at a time */
        for (int d = 0; d < D; d++)
          halves_to_floats((const uint16_t *)L->data + (size_t)d * (size_t)L->stride + c0, tb + (size_t)d * cw, cw);
        B = tb, ldb = cw;
      } else if (gather) {
        for (int d = 0; d < D; d++)
          for (int j = 0; j < cw; j++) {
            const size_t at = (size_t)d * (size_t)L->stride + (size_t)L->idx[c0 + j];
            tb[(size_t)d * cw + j] = L->dtype == CL_F32 ? ((const float *)L->data)[at]
                                                        : cl_half_to_float(((const uint16_t *)L->data)[at]);
          }
        B = tb, ldb = cw;
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, cw, D, scale, x, D, B, (int)ldb, 0.0f, probs + c0, K);
      for (int i = 0; i < n; i++) { /* the row maxima while the chunk is in cache */
        const float m = max_of(probs + (size_t)i * K + c0, cw);
        mine[i] = m > mine[i] ? m : mine[i];
      }
    }
  }
  for (int t = 1; t < nt; t++)
    for (int i = 0; i < n; i++) mx[i] = mx[(size_t)t * n + i] > mx[i] ? mx[(size_t)t * n + i] : mx[i];
#pragma omp parallel for schedule(static)
  for (int i = 0; i < n; i++) cl_predict_softmax(probs + (size_t)i * K, K, mx[i]);
  free(x), free(blk), free(mx);
  return CL_OK;
}

/* a before b in the ranking: higher value, then lower index */
static int above(float va, int ia, float vb, int ib) { return va > vb || (va == vb && ia < ib); }

static void insert(const float *p, int j, int k, int *idx, int *m) {
  if (*m == k && !above(p[j], j, p[idx[*m - 1]], idx[*m - 1])) return;
  int at = *m < k ? (*m)++ : k - 1;
  while (at > 0 && above(p[j], j, p[idx[at - 1]], idx[at - 1])) {
    idx[at] = idx[at - 1];
    at--;
  }
  idx[at] = j;
}

void cl_predict_topk(const float *p, int K, int k, int *idx) {
  if (k <= 0) return;
  if (k > 256) { /* many: insertion would be k x K; a stable order by (value, index) */
    int *all = malloc((size_t)K * sizeof *all);
    if (all) {
      for (int j = 0; j < K; j++) all[j] = j;
      /* qsort has no context argument in C11: a merge sort of the indices */
      int *tmp = malloc((size_t)K * sizeof *tmp);
      if (tmp) {
        for (int w = 1; w < K; w *= 2) {
          for (int lo = 0; lo < K; lo += 2 * w) {
            int mid = lo + w < K ? lo + w : K, hi = lo + 2 * w < K ? lo + 2 * w : K, a = lo, b = mid, o = lo;
            while (a < mid && b < hi) tmp[o++] = above(p[all[b]], all[b], p[all[a]], all[a]) ? all[b++] : all[a++];
            while (a < mid) tmp[o++] = all[a++];
            while (b < hi) tmp[o++] = all[b++];
          }
          int *t = all;
          all = tmp;
          tmp = t;
        }
        memcpy(idx, all, (size_t)k * sizeof *idx);
        free(tmp), free(all);
        return;
      }
      free(all);
    }
  }
  int m = 0; /* idx[0..m) sorted; insert each candidate that beats the last */
  int j = 0;
  for (; j < K && m < k; j++) insert(p, j, k, idx, &m);
  for (; j + BLOCK <= K; j += BLOCK) { /* a block whose largest does not beat the last is skipped whole */
    const float last = p[idx[k - 1]];
    if (max_of(p + j, BLOCK) <= last) continue; /* an equal value loses: every kept index is lower */
    for (int t = j; t < j + BLOCK; t++) insert(p, t, k, idx, &m);
  }
  for (; j < K; j++) insert(p, j, k, idx, &m);
}

int cl_predict_groups_init(cl_predict_groups *w, int ngroups, cl_error *e) {
  memset(w, 0, sizeof *w);
  const size_t g = (size_t)(ngroups > 0 ? ngroups : 1);
  w->ngroups = ngroups;
  w->acc = calloc(g, sizeof *w->acc);
  w->seen = calloc(g, 1);
  w->met = malloc(g * sizeof *w->met);
  w->first = malloc(g * sizeof *w->first);
  w->sums = malloc(g * sizeof *w->sums);
  w->order = malloc(g * sizeof *w->order);
  if (!w->acc || !w->seen || !w->met || !w->first || !w->sums || !w->order) {
    cl_predict_groups_free(w);
    return cl_err(e, CL_ENOMEM, "predict: out of memory for %d groups", ngroups);
  }
  return CL_OK;
}

void cl_predict_groups_free(cl_predict_groups *w) {
  free(w->acc), free(w->seen), free(w->met), free(w->first), free(w->sums), free(w->order);
  memset(w, 0, sizeof *w);
}

static inline void add_label(cl_predict_groups *w, const float *p, const int32_t *gid, int j, int *nmet) {
  const int g = gid[j];
  if (!w->seen[g]) w->seen[g] = 1, w->first[*nmet] = j, w->met[(*nmet)++] = g;
  w->acc[g] += p[j];
}

int cl_predict_group_topk(cl_predict_groups *w, const float *p, int K, const int32_t *gid, float min_prob, int k,
                          int *group_out, float *sum_out, int *label_out) {
  int nmet = 0; /* groups in order of first label */
  int j = 0;
  for (; j + BLOCK <= K; j += BLOCK) { /* only the labels above min_prob, a block with none skipped whole */
    if (!(max_of(p + j, BLOCK) > min_prob)) continue;
    for (int t = j; t < j + BLOCK; t++)
      if (p[t] > min_prob) add_label(w, p, gid, t, &nmet);
  }
  for (; j < K; j++)
    if (p[j] > min_prob) add_label(w, p, gid, j, &nmet);
  /* the top k of the met groups by sum, ties to the earlier met */
  for (int i = 0; i < nmet; i++) w->sums[i] = w->acc[w->met[i]];
  const int kk = k < nmet ? k : nmet;
  cl_predict_topk(w->sums, nmet, kk, w->order);
  for (int i = 0; i < kk; i++) {
    group_out[i] = w->met[w->order[i]];
    sum_out[i] = w->sums[w->order[i]];
    label_out[i] = w->first[w->order[i]];
  }
  for (int i = 0; i < nmet; i++) w->acc[w->met[i]] = 0.0f, w->seen[w->met[i]] = 0;
  return kk;
}
