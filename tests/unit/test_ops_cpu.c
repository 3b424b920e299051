/* The CPU backend's kernels against naive double-precision loops: linear (bias, accumulate,
 * both activations), matmul, layernorm in place, packed varlen attention (causal or not),
 * the ViT patch embedding, gathers, and their argument checks. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cl_ops.h"
#include "cl_test.h"


static double act_ref(double x, cl_act a) {
  if (a == CL_ACT_GELU) return 0.5 * x * (1 + erf(x / sqrt(2.0)));
  if (a == CL_ACT_QUICKGELU) return x / (1 + exp(-1.702 * x));
  return x;
}

static double relerr_d(const float *a, const double *b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; i++) num += (a[i] - b[i]) * (a[i] - b[i]), den += b[i] * b[i];
  return sqrt(num) / (den > 0 ? sqrt(den) : 1e-30);
}

static void test_linear(cl_backend *be) {
  const int m = 37, k = 70, n = 53;
  cl_error err = {0};
  float *x = cl_test_rnd((size_t)m * k), *w = cl_test_rnd((size_t)n * k), *b = cl_test_rnd(n), *y = cl_test_rnd((size_t)m * n);
  double *ref = cl_xmalloc((size_t)m * n * sizeof *ref);
  for (int a = 0; a < 3; a++)
    for (int acc = 0; acc < 2; acc++) {
      if (acc && a) continue;
      for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
          double s = b[j];
          for (int q = 0; q < k; q++) s += (double)x[i * k + q] * w[j * k + q];
          ref[i * n + j] = acc ? y[i * n + j] + s : act_ref(s, (cl_act)a);
        }
      CHECK_OK(be->linear(be, y, x, w, b, m, k, n, (cl_act)a, acc, &err), err);
      double r = relerr_d(y, ref, (size_t)m * n);
      CHECK_MSG(r < 1e-6, "linear act=%d accumulate=%d: rel err %g", a, acc, r);
    }
  /* no bias, plain matmul */
  float *p = cl_test_rnd((size_t)k * n);
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) {
      double s = 0;
      for (int q = 0; q < k; q++) s += (double)x[i * k + q] * w[j * k + q];
      ref[i * n + j] = s;
    }
  CHECK_OK(be->linear(be, y, x, w, NULL, m, k, n, CL_ACT_NONE, 0, &err), err);
  CHECK(relerr_d(y, ref, (size_t)m * n) < 1e-6);
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) {
      double s = 0;
      for (int q = 0; q < k; q++) s += (double)x[i * k + q] * p[q * n + j];
      ref[i * n + j] = s;
    }
  CHECK_OK(be->matmul(be, y, x, p, m, k, n, &err), err);
  CHECK(relerr_d(y, ref, (size_t)m * n) < 1e-6);
  CHECK(be->linear(be, y, x, w, b, m, 0, n, CL_ACT_NONE, 0, &err) == CL_EINVAL);
  CHECK(be->linear(be, y, x, w, b, m, k, n, (cl_act)7, 0, &err) == CL_EINVAL);
  free(x), free(w), free(b), free(y), free(ref), free(p);
}

static void test_layernorm(cl_backend *be) {
  const int m = 9, n = 300;
  cl_error err = {0};
  float *x = cl_test_rnd((size_t)m * n), *g = cl_test_rnd(n), *b = cl_test_rnd(n);
  double *ref = cl_xmalloc((size_t)m * n * sizeof *ref);
  for (int i = 0; i < m * n; i++) x[i] = x[i] * 3 + 5; /* an offset mean */
  for (int i = 0; i < m; i++) {
    double mean = 0, var = 0;
    for (int j = 0; j < n; j++) mean += x[i * n + j];
    mean /= n;
    for (int j = 0; j < n; j++) var += (x[i * n + j] - mean) * (x[i * n + j] - mean);
    var /= n;
    for (int j = 0; j < n; j++) ref[i * n + j] = (x[i * n + j] - mean) / sqrt(var + 1e-5) * g[j] + b[j];
  }
  CHECK_OK(be->layernorm(be, x, x, g, b, m, n, 1e-5f, &err), err);
  double r = relerr_d(x, ref, (size_t)m * n);
  CHECK_MSG(r < 1e-6, "layernorm rel err %g", r);
  free(x), free(g), free(b), free(ref);
}

static void test_attention(cl_backend *be) {
  const int32_t off[4] = {0, 5, 6, 15}; /* lengths 5, 1, 9 */
  const int rows = 15, W = 12, H = 3, dh = W / H;
  cl_error err = {0};
  float *qkv = cl_test_rnd((size_t)rows * 3 * W), *out = cl_test_rnd((size_t)rows * W);
  double *ref = cl_xmalloc((size_t)rows * W * sizeof *ref);
  for (int causal = 0; causal < 2; causal++) {
    for (int s = 0; s < 3; s++)
      for (int h = 0; h < H; h++)
        for (int i = off[s]; i < off[s + 1]; i++) {
          double sc[16], mx = -1e300, sum = 0;
          int jn = causal ? i + 1 : off[s + 1];
          for (int j = off[s]; j < jn; j++) {
            double d = 0;
            for (int c = 0; c < dh; c++) d += (double)qkv[i * 3 * W + h * dh + c] * qkv[j * 3 * W + W + h * dh + c];
            sc[j - off[s]] = d / sqrt(dh);
            if (sc[j - off[s]] > mx) mx = sc[j - off[s]];
          }
          for (int j = off[s]; j < jn; j++) sum += sc[j - off[s]] = exp(sc[j - off[s]] - mx);
          for (int c = 0; c < dh; c++) {
            double o = 0;
            for (int j = off[s]; j < jn; j++) o += sc[j - off[s]] / sum * qkv[j * 3 * W + 2 * W + h * dh + c];
            ref[i * W + h * dh + c] = o;
          }
        }
    CHECK_OK(be->attention(be, out, qkv, off, 3, W, H, causal, &err), err);
    double r = relerr_d(out, ref, (size_t)rows * W);
    CHECK_MSG(r < 1e-6, "attention causal=%d: rel err %g", causal, r);
  }
  const int32_t bad[3] = {0, 4, 4};
  CHECK(be->attention(be, out, qkv, bad, 2, W, H, 0, &err) == CL_EINVAL);
  CHECK(be->attention(be, out, qkv, off, 3, W, 5, 0, &err) == CL_EINVAL);
  free(qkv), free(out), free(ref);
}

static void test_patch_embed(cl_backend *be) {
  const int n = 2, C = 3, I = 12, P = 4, W = 5, g = I / P, S = 1 + g * g;
  cl_error err = {0};
  float *px = cl_test_rnd((size_t)n * C * I * I), *w = cl_test_rnd((size_t)W * C * P * P), *cls = cl_test_rnd(W), *pos = cl_test_rnd((size_t)S * W);
  float *x = cl_test_rnd((size_t)n * S * W);
  double *ref = cl_xmalloc((size_t)n * S * W * sizeof *ref);
  for (int i = 0; i < n; i++)
    for (int r = 0; r < S; r++)
      for (int o = 0; o < W; o++) {
        double s = 0;
        if (r == 0) s = cls[o];
        else {
          int py = (r - 1) / g, pxx = (r - 1) % g;
          for (int c = 0; c < C; c++)
            for (int ky = 0; ky < P; ky++)
              for (int kx = 0; kx < P; kx++)
                s += (double)w[((o * C + c) * P + ky) * P + kx] *
                     px[((i * C + c) * I + py * P + ky) * I + pxx * P + kx];
        }
        ref[(i * S + r) * W + o] = s + pos[r * W + o];
      }
  CHECK_OK(be->patch_embed(be, x, px, w, cls, pos, n, C, I, P, W, &err), err);
  double r = relerr_d(x, ref, (size_t)n * S * W);
  CHECK_MSG(r < 1e-6, "patch_embed rel err %g", r);
  free(px), free(w), free(cls), free(pos), free(x), free(ref);
}

static void test_small(cl_backend *be) {
  cl_error err = {0};
  float table[6] = {1, 2, 3, 4, 5, 6}, y[6] = {0}, z[2] = {10, 20};
  int32_t idx[3] = {2, 0, 1};
  CHECK_OK(be->gather_rows(be, y, table, 3, idx, 3, 2, 0, &err), err);
  CHECK(y[0] == 5 && y[1] == 6 && y[2] == 1 && y[5] == 4);
  CHECK_OK(be->gather_rows(be, y, table, 3, idx, 1, 2, 1, &err), err);
  CHECK(y[0] == 10 && y[1] == 12 && y[2] == 1);
  idx[1] = 3;
  CHECK(be->gather_rows(be, y, table, 3, idx, 3, 2, 0, &err) == CL_EINVAL);
  CHECK(strstr(err.msg, "gather index 3") != NULL);
  CHECK_OK(be->add(be, z, table, 2, &err), err);
  CHECK(z[0] == 11 && z[1] == 22);
  float a[3] = {-1, 0, 2};
  CHECK_OK(be->activate(be, a, 3, CL_ACT_GELU, &err), err);
  CHECK(fabs(a[0] - act_ref(-1, CL_ACT_GELU)) < 1e-7 && a[1] == 0 && fabs(a[2] - act_ref(2, CL_ACT_GELU)) < 1e-6);
  void *p = NULL;
  CHECK_OK(be->alloc(be, 100, &p, &err), err);
  CHECK_OK(be->upload(be, p, table, sizeof table, &err), err);
  CHECK_OK(be->download(be, y, p, sizeof table, &err), err);
  CHECK(memcmp(y, table, sizeof table) == 0);
  be->free(be, p);
  CHECK_OK(be->sync(be, &err), err);
}

/* prepare_linear may rewrite a weight into the backend's own layout: linear() with it gives
 * the same bits as with the original weight (same sums in the same order), on shapes that
 * take the threaded GEMM and the single-threaded one, with and without bias/act/accumulate;
 * n not a multiple of 32 stays unpacked; a freed and reallocated block is not mistaken
 * for the packed one; a prepared weight used with other dims is refused. */
static void test_prepare_linear(cl_backend *be) {
  cl_error err = {0};
  if (!be->prepare_linear) return;
  const int shapes[4][3] = {{197, 768, 96}, {9, 64, 32}, {300, 100, 70}, {1, 3072, 64}}; /* m, k, n */
  int npacked = 0;
  for (int s = 0; s < 4; s++) {
    const int m = shapes[s][0], k = shapes[s][1], n = shapes[s][2];
    float *x = cl_test_rnd((size_t)m * k), *w0 = cl_test_rnd((size_t)n * k), *b = cl_test_rnd(n);
    float *y0 = cl_test_rnd((size_t)m * n), *y1 = cl_xmalloc((size_t)m * n * sizeof *y1);
    float *w = NULL;
    CHECK_OK(be->alloc(be, (size_t)n * k * sizeof *w, (void **)&w, &err), err);
    memcpy(w, w0, (size_t)n * k * sizeof *w);
    CHECK_OK(be->prepare_linear(be, w, n, k, &err), err);
    CHECK_OK(be->prepare_linear(be, w, n, k, &err), err); /* twice is once */
    /* packed only with the AVX-512 kernels (not under CLADE_CPU_KERNELS=blas) */
    const int packed = memcmp(w, w0, (size_t)n * k * sizeof *w) != 0;
    CHECK(!packed || n % 32 == 0);
    npacked += packed;
    for (int v = 0; v < 3; v++) {
      const cl_act act = v == 1 ? CL_ACT_GELU : CL_ACT_NONE;
      const int acc = v == 2;
      const float *bias = v == 0 ? NULL : b;
      memcpy(y1, y0, (size_t)m * n * sizeof *y1);
      CHECK_OK(be->linear(be, y0, x, w0, bias, m, k, n, act, acc, &err), err);
      CHECK_OK(be->linear(be, y1, x, w, bias, m, k, n, act, acc, &err), err);
      CHECK_MSG(!memcmp(y0, y1, (size_t)m * n * sizeof *y1), "prepared weight [%d,%d], m=%d, variant %d: outputs differ",
                n, k, m, v);
    }
    if (packed) CHECK(be->linear(be, y1, x, w, b, m, k / 2, n, CL_ACT_NONE, 0, &err) == CL_EINVAL);
    be->free(be, w);
    /* the same size again (likely the same address): a plain weight now */
    CHECK_OK(be->alloc(be, (size_t)n * k * sizeof *w, (void **)&w, &err), err);
    memcpy(w, w0, (size_t)n * k * sizeof *w);
    memcpy(y1, y0, (size_t)m * n * sizeof *y1);
    CHECK_OK(be->linear(be, y0, x, w0, b, m, k, n, CL_ACT_NONE, 0, &err), err);
    CHECK_OK(be->linear(be, y1, x, w, b, m, k, n, CL_ACT_NONE, 0, &err), err);
    CHECK(!memcmp(y0, y1, (size_t)m * n * sizeof *y1));
    be->free(be, w);
    free(x), free(w0), free(b), free(y0), free(y1);
  }
  const char *kern = getenv("CLADE_CPU_KERNELS");
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && !(kern && !strcmp(kern, "blas"))) CHECK_EQ_INT(npacked, 3);
}

/* bf16 of x (nearest, ties to even), as a float: the spec of what the bf16 GEMM multiplies */
static double bf16(float x) {
  uint32_t u;
  memcpy(&u, &x, 4);
  u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
  memcpy(&x, &u, 4);
  return x;
}

/* bf16 precision (CPUs with AVX512_BF16): linear() on prepared weights against double sums
 * of the bf16-rounded inputs (so only fp32 summation differs), with bias, GELU and
 * accumulate, k odd and over several k blocks; its distance from fp32 printed and bounded
 * (2^-9 rounding per input); other precisions refused, and no change once weights are in. */
static void test_bf16(void) {
  cl_backend *be = NULL;
  cl_error err = {0};
  CHECK_OK(cl_backend_cpu_create(&be, &err), err);
  CHECK(be->set_precision(be, CL_PREC_FP16, &err) == CL_EUNSUP && strstr(err.msg, "fp16"));
  if (!cl_backend_cpu_offers(CL_PREC_BF16)) {
    CHECK(be->set_precision(be, CL_PREC_BF16, &err) == CL_EUNSUP && strstr(err.msg, "AVX512_BF16"));
    printf("test_ops_cpu: bf16 skipped: this CPU lacks AVX512_BF16 (or CLADE_CPU_KERNELS=blas)\n");
    cl_backend_destroy(be);
    return;
  }
  CHECK_OK(be->set_precision(be, CL_PREC_BF16, &err), err);
  const int shapes[4][3] = {{197, 768, 96}, {9, 64, 32}, {13, 77, 64}, {300, 1101, 64}}; /* m, k, n */
  for (int s = 0; s < 4; s++) {
    const int m = shapes[s][0], k = shapes[s][1], n = shapes[s][2];
    float *x = cl_test_rnd((size_t)m * k), *w0 = cl_test_rnd((size_t)n * k), *b = cl_test_rnd(n), *y0 = cl_test_rnd((size_t)m * n);
    float *y = cl_xmalloc((size_t)m * n * sizeof *y), *w = NULL;
    double *ref = cl_xmalloc((size_t)m * n * sizeof *ref);
    CHECK_OK(be->alloc(be, (size_t)n * k * sizeof *w, (void **)&w, &err), err);
    memcpy(w, w0, (size_t)n * k * sizeof *w);
    CHECK_OK(be->prepare_linear(be, w, n, k, &err), err);
    for (int v = 0; v < 3; v++) {
      const cl_act act = v == 1 ? CL_ACT_GELU : CL_ACT_NONE;
      const int acc = v == 2;
      for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
          double sum = v ? b[j] : 0;
          for (int p = 0; p < k; p++) sum += bf16(x[(size_t)i * k + p]) * bf16(w0[(size_t)j * k + p]);
          ref[(size_t)i * n + j] = act_ref(sum, act) + (acc ? y0[(size_t)i * n + j] : 0);
        }
      memcpy(y, y0, (size_t)m * n * sizeof *y);
      CHECK_OK(be->linear(be, y, x, w, v ? b : NULL, m, k, n, act, acc, &err), err);
      const double e = relerr_d(y, ref, (size_t)m * n);
      CHECK_MSG(e < 1e-6, "bf16 linear [%d,%d] m=%d variant %d: %.3g from the bf16 reference", n, k, m, v, e);
    }
    /* against fp32 inputs: the rounding shows (so bf16 did run) and stays bounded */
    for (int i = 0; i < m; i++)
      for (int j = 0; j < n; j++) {
        double sum = 0;
        for (int p = 0; p < k; p++) sum += (double)x[(size_t)i * k + p] * w0[(size_t)j * k + p];
        ref[(size_t)i * n + j] = sum;
      }
    CHECK_OK(be->linear(be, y, x, w, NULL, m, k, n, CL_ACT_NONE, 0, &err), err);
    const double e32 = relerr_d(y, ref, (size_t)m * n);
    printf("test_ops_cpu: bf16 linear [%d,%d] m=%d: relative error %.2e against fp32\n", n, k, m, e32);
    CHECK(e32 > 1e-5 && e32 < 1e-2);
    if (s == 0) CHECK(be->set_precision(be, CL_PREC_FP32, &err) == CL_EINVAL && strstr(err.msg, "prepared"));
    be->free(be, w);
    free(x), free(w0), free(b), free(y0), free(y), free(ref);
  }
  /* every weight freed: the precision may change again */
  CHECK_OK(be->set_precision(be, CL_PREC_FP32, &err), err);
  cl_backend_destroy(be);
}

int main(void) {
  cl_backend *be = NULL;
  cl_error err = {0};
  CHECK_OK(cl_backend_cpu_create(&be, &err), err);
  if (!be) return cl_test_done("test_ops_cpu");
  test_linear(be);
  test_prepare_linear(be);
  test_bf16();
  test_layernorm(be);
  test_attention(be);
  test_patch_embed(be);
  test_small(be);
  cl_backend_destroy(be);
  return cl_test_done("test_ops_cpu");
}
