/* cl_predict: the chunked product against a naive double-precision softmax, over more labels
 * than one chunk, with float16 labels (all columns, and a subset); the softmax alone (vector exp
 * where the CPU has AVX-512) against double precision over a wide range of logits; top-k
 * order and ties, and against a brute-force ranking on random data with many ties (small k,
 * whose blocks are skipped, and large k, sorted); grouped sums against a direct loop (min_prob
 * respected, groups in order of first label) and against a brute-force reference. */
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

/* logits spread over [-120, 30]: exponentials from 1 down past expf's subnormals */
static void softmax_vs_double(void) {
  const int K = 100003;
  float *p = malloc((size_t)K * sizeof *p), m = -1e30f;
  double *ref = malloc((size_t)K * sizeof *ref), s = 0;
  for (int j = 0; j < K; j++) {
    p[j] = 75.0f * cl_test_frand() - 45.0f;
    m = p[j] > m ? p[j] : m;
  }
  /* of the float32 differences, as expf(p - m) and torch's softmax take them */
  for (int j = 0; j < K; j++) s += (ref[j] = exp((double)(float)(p[j] - m)));
  for (int j = 0; j < K; j++) ref[j] /= s;
  cl_predict_softmax(p, K, m);
  double worst = 0, tot = 0;
  for (int j = 0; j < K; j++) {
    tot += p[j];
    if (ref[j] > 1e-30) { /* relative where representable in float32 without subnormals */
      double r = fabs(p[j] - ref[j]) / ref[j];
      worst = r > worst ? r : worst;
    } else {
      CHECK(p[j] <= 1e-30f);
    }
  }
  CHECK_MSG(worst < 1e-6, "softmax: rel err %g against double", worst);
  CHECK(fabs(tot - 1) < 1e-5);
  free(p), free(ref);
}

/* brute force: the rank of j is how many labels are above it */
static void topk_vs_brute(void) {
  const int K = 5000;
  float *p = malloc((size_t)K * sizeof *p);
  int *idx = malloc((size_t)K * sizeof *idx);
  for (int round = 0; round < 3; round++) {
    for (int j = 0; j < K; j++) /* few distinct values: many ties */
      p[j] = round == 2 ? (float)(j % 7 == 0) : (float)(int)(8 * (cl_test_frand() + 1)) / 16.0f;
    const int ks[] = {1, 5, 64, 300, K};
    for (size_t t = 0; t < sizeof ks / sizeof *ks; t++) {
      const int k = ks[t];
      cl_predict_topk(p, K, k, idx);
      int bad = 0;
      for (int i = 0; i < k; i++) {
        int before = 0, j = idx[i];
        for (int q = 0; q < K; q++) before += p[q] > p[j] || (p[q] == p[j] && q < j);
        bad += before != i;
      }
      CHECK_MSG(!bad, "top-%d: %d of %d ranks differ from brute force", k, bad, k);
    }
  }
  free(p), free(idx);
}

static void groups_vs_brute(void) {
  cl_error e = {0};
  const int K = 3000, G = 97, k = 10;
  float *p = malloc((size_t)K * sizeof *p), sum[10], acc[97];
  int32_t *gid = malloc((size_t)K * sizeof *gid);
  int g[10], first[10], fi[97];
  cl_predict_groups w;
  CHECK_OK(cl_predict_groups_init(&w, G, &e), e);
  for (int round = 0; round < 4; round++) {
    for (int j = 0; j < K; j++) {
      gid[j] = (int32_t)((cl_test_frand() + 1) * 0.5 * G) % G;
      const float u = cl_test_frand();
      /* whole blocks at zero (skipped), values at min_prob, and ties in the sums */
      p[j] = (j / 64) % 3 == 1 ? 0.0f : u < -0.5f ? 1e-9f : (float)(int)(4 * (u + 1)) / 1024.0f;
    }
    const float min_prob = round == 3 ? -1.0f : 1e-9f;
    for (int q = 0; q < G; q++) acc[q] = 0, fi[q] = -1;
    for (int j = 0; j < K; j++)
      if (p[j] > min_prob) {
        acc[gid[j]] += p[j];
        if (fi[gid[j]] < 0) fi[gid[j]] = j;
      }
    const int m = cl_predict_group_topk(&w, p, K, gid, min_prob, k, g, sum, first);
    int met = 0, bad = 0;
    for (int q = 0; q < G; q++) met += fi[q] >= 0;
    CHECK_EQ_INT(m, met < k ? met : k);
    for (int i = 0; i < m; i++) { /* rank i: groups above it by sum, then met first */
      int before = 0, q = g[i];
      for (int o = 0; o < G; o++)
        before += fi[o] >= 0 && (acc[o] > acc[q] || (acc[o] == acc[q] && fi[o] < fi[q]));
      bad += before != i || sum[i] != acc[q] || first[i] != fi[q];
    }
    CHECK_MSG(!bad, "groups round %d: %d of %d rows differ from brute force", round, bad, m);
  }
  cl_predict_groups_free(&w);
  free(p), free(gid);
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

  /* float16 labels, every column (converted 8 at a time, 10001 = a partial block and tail) */
  L = (cl_labels){.data = h, .dtype = CL_F16, .D = D, .stride = N, .K = N};
  CHECK_OK(cl_predict_probs(img, n, &L, 20.0f, p, &e), e);
  naive(img, n, D, hf, N, NULL, N, 20.0f, want);
  CHECK_MSG(max_rel(p, want, (size_t)n * N) < 1e-4, "f16: rel err %g", max_rel(p, want, (size_t)n * N));

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
  cl_predict_groups w;
  CHECK_OK(cl_predict_groups_init(&w, 5, &e), e);
  float sum[5];
  int g[5], first[5];
  int m = cl_predict_group_topk(&w, q, 8, gid, 1e-9f, 5, g, sum, first);
  /* sums: g2 0.3 (label 0), g1 0.3 (label 2), g3 0.3 (label 3), g4 0.1; g0 only below min_prob */
  CHECK_EQ_INT(m, 4);
  CHECK(g[0] == 2 && first[0] == 0);
  CHECK(g[3] == 4 && first[3] == 6 && fabsf(sum[3] - 0.1f) < 1e-7f);
  CHECK(fabsf(sum[0] - 0.3f) < 1e-6f && fabsf(sum[1] - 0.3f) < 1e-6f && fabsf(sum[2] - 0.3f) < 1e-6f);
  int zero = 1;
  for (int i = 0; i < 5; i++) zero &= w.acc[i] == 0.0f && !w.seen[i];
  CHECK(zero);
  m = cl_predict_group_topk(&w, q, 8, gid, -1.0f, 2, g, sum, first); /* bins: every label counts */
  CHECK_EQ_INT(m, 2);
  cl_predict_groups_free(&w);
  free(lab), free(img), free(p), free(want), free(h), free(hf), free(idx);

  softmax_vs_double();
  topk_vs_brute();
  groups_vs_brute();
  return cl_test_done("test_predict");
}
