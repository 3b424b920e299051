/* cl_predict: the chunked product against a naive double-precision softmax, over more labels
 * than one chunk, with float16 labels and a subset of columns; top-k order and ties; grouped
 * sums against a direct loop (min_prob respected, groups in order of first label). */
#include <math.h>
#include <stdlib.h>

#include "cl_test.h"
#include "eval/cl_predict.h"

static void naive(const float *img, int n, int D, const float *lab, int64_t stride, const int *idx, int K,
                  float scale, double *out) {
  for (int i = 0; i < n; i++) {
    double nr = 0;
    for (int d = 0; d < D; d++) nr += (double)img[i * D + d] * img[i * D + d];
    nr = sqrt(nr);
    double m = -1e300, s = 0;
    for (int j = 0; j < K; j++) {
      double v = 0;
      for (int d = 0; d < D; d++) v += img[i * D + d] / nr * lab[(size_t)d * stride + (idx ? idx[j] : j)];
      out[(size_t)i * K + j] = scale * v;
      if (scale * v > m) m = scale * v;
    }
    for (int j = 0; j < K; j++) s += (out[(size_t)i * K + j] = exp(out[(size_t)i * K + j] - m));
    for (int j = 0; j < K; j++) out[(size_t)i * K + j] /= s;
  }
}

static double max_rel(const float *a, const double *b, size_t n) {
  double w = 0;
  for (size_t i = 0; i < n; i++) {
    double r = fabs(a[i] - b[i]) / (fabs(b[i]) > 1e-30 ? fabs(b[i]) : 1e-30);
    if (b[i] > 1e-12 && r > w) w = r;
  }
  return w;
}

int main(void) {
  cl_error e = {0};
  const int D = 24, N = 10001, n = 3; /* three chunks, the last partial */
  float *lab = cl_test_rnd((size_t)D * N), *img = cl_test_rnd((size_t)n * D);
  float *p = malloc((size_t)n * N * sizeof *p);
  double *want = malloc((size_t)n * N * sizeof *want);
  cl_labels L = {.data = lab, .dtype = CL_F32, .D = D, .stride = N, .K = N};
  CHECK_OK(cl_predict_probs(img, n, &L, 20.0f, p, &e), e);
  naive(img, n, D, lab, N, NULL, N, 20.0f, want);
  CHECK_MSG(max_rel(p, want, (size_t)n * N) < 1e-4, "f32: rel err %g", max_rel(p, want, (size_t)n * N));
  double tot = 0;
  for (int j = 0; j < N; j++) tot += p[j];
  CHECK(fabs(tot - 1) < 1e-5);

  /* float16 labels and a subset of columns (every third, 3334 of them, then 5000 in a row) */
  uint16_t *h = malloc((size_t)D * N * sizeof *h);
  float *hf = malloc((size_t)D * N * sizeof *hf);
  for (size_t i = 0; i < (size_t)D * N; i++) hf[i] = cl_half_to_float(h[i] = cl_float_to_half(lab[i]));
  int *idx = malloc((size_t)N * sizeof *idx), K = 0;
  for (int j = 0; j < N; j += 3) idx[K++] = j;
  for (int j = 5000; j < 10000; j++) idx[K++] = j;
  L = (cl_labels){.data = h, .dtype = CL_F16, .D = D, .stride = N, .idx = idx, .K = K};
  CHECK_OK(cl_predict_probs(img, n, &L, 20.0f, p, &e), e);
  naive(img, n, D, hf, N, idx, K, 20.0f, want);
  CHECK_MSG(max_rel(p, want, (size_t)n * K) < 1e-4, "f16 subset: rel err %g", max_rel(p, want, (size_t)n * K));

  /* top-k: highest first, ties to the lower index */
  const float v[8] = {0.1f, 0.5f, 0.2f, 0.5f, 0.05f, 0.9f, 0.2f, 0.0f};
  int top[8];
  cl_predict_topk(v, 8, 5, top);
  const int want_top[5] = {5, 1, 3, 2, 6};
  for (int i = 0; i < 5; i++) CHECK_EQ_INT(top[i], want_top[i]);
  cl_predict_topk(v, 8, 8, top);
  CHECK(top[7] == 7 && top[6] == 4);

  /* grouped: labels 0..7 in groups; p <= min_prob left out; ties to the group met first */
  const float q[8] = {0.3f, 1e-10f, 0.1f, 0.2f, 0.2f, 0.1f, 0.1f, 0.0f};
  const int32_t gid[8] = {2, 0, 1, 3, 1, 3, 4, 0};
  float acc[5] = {0}, sum[5];
  int g[5], first[5];
  int m = cl_predict_group_topk(q, 8, gid, 5, 1e-9f, 5, acc, g, sum, first);
  /* sums: g2 0.3 (label 0), g1 0.3 (label 2), g3 0.3 (label 3), g4 0.1; g0 only below min_prob */
  CHECK_EQ_INT(m, 4);
  CHECK(g[0] == 2 && first[0] == 0);
  CHECK(g[3] == 4 && first[3] == 6 && fabsf(sum[3] - 0.1f) < 1e-7f);
  CHECK(fabsf(sum[0] - 0.3f) < 1e-6f && fabsf(sum[1] - 0.3f) < 1e-6f && fabsf(sum[2] - 0.3f) < 1e-6f);
  int zero = 1;
  for (int i = 0; i < 5; i++) zero &= acc[i] == 0.0f;
  CHECK(zero);
  m = cl_predict_group_topk(q, 8, gid, 5, -1.0f, 2, acc, g, sum, first); /* bins: every label counts */
  CHECK_EQ_INT(m, 2);
  free(lab), free(img), free(p), free(want), free(h), free(hf), free(idx);
  return cl_test_done("test_predict");
}
