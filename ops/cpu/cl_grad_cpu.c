/* cl_grad_cpu: the CPU backend's backward kernels and optimizer (ops/cl_ops.h, "backward").
 * One function per forward op. GEMMs go through single-threaded OpenBLAS calls, one block of
 * rows per OpenMP thread (as cl_cpu_sgemm does for the forward); reductions over rows (bias,
 * LayerNorm and embedding gradients) are split by columns so that no two threads write the
 * same entry and the sums run in a fixed order: results do not depend on the thread count. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

#include "cl_cpu_simd.h"
#include "cl_ops_cpu_impl.h"

#define PAR_MIN 32768

/* c[m,n] += a[k,m]^T b[k,n] (weight gradients: a = dy or x over k tokens), split by rows of c. */
static void gemm_tn_acc(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float *c, int ldc) {
  const int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
  const int blocks = (double)m * n * k > 4e6 && nt > 1 ? (m / 8 < nt ? (m / 8 > 1 ? m / 8 : 1) : nt) : 1;
#pragma omp parallel for num_threads(blocks) schedule(static) if (blocks > 1)
  for (int t = 0; t < blocks; t++) {
    int s = (int)((long)m * t / blocks), e = (int)((long)m * (t + 1) / blocks);
    if (e > s)
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, e - s, n, k, 1.0f, a + s, lda, b, ldb, 1.0f,
                  c + (size_t)s * ldc, ldc);
  }
}

/* c[m,n] (+)= a[m,k] op(b), op(b) = b [k,n] or b^T with b [n,k]; split by rows of c. */
static void gemm_nx(int transb, int m, int n, int k, const float *a, const float *b, float *c, int accumulate) {
  const int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
  const int ldb = transb ? k : n;
  const int blocks = (double)m * n * k > 4e6 && nt > 1 ? (m / 8 < nt ? (m / 8 > 1 ? m / 8 : 1) : nt) : 1;
#pragma omp parallel for num_threads(blocks) schedule(static) if (blocks > 1)
  for (int t = 0; t < blocks; t++) {
    int s = (int)((long)m * t / blocks), e = (int)((long)m * (t + 1) / blocks);
    if (e > s)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, transb ? CblasTrans : CblasNoTrans, e - s, n, k, 1.0f,
                  a + (size_t)s * k, k, b, ldb, accumulate ? 1.0f : 0.0f, c + (size_t)s * n, n);
  }
}

/* out[j] += sum_i x[i,j] over m rows of n columns, by column blocks. */
static void colsum_acc(float *out, const float *x, int m, int n) {
#pragma omp parallel for schedule(static) if ((size_t)m * n > PAR_MIN)
  for (int j0 = 0; j0 < n; j0 += 64) {
    const int j1 = j0 + 64 < n ? j0 + 64 : n;
    double acc[64] = {0};
    for (int i = 0; i < m; i++) {
      const float *xi = x + (size_t)i * n;
      for (int j = j0; j < j1; j++) acc[j - j0] += xi[j];
    }
    for (int j = j0; j < j1; j++) out[j] += (float)acc[j - j0];
  }
}

static int bad_dims(const char *op, int m, int k, int n, cl_error *e) {
  if (m < 0 || k <= 0 || n <= 0)
    return cl_err(e, CL_EINVAL, "cpu backend: %s with bad dims m=%d k=%d n=%d", op, m, k, n);
  return CL_OK;
}

static int cpu_linear_backward(cl_backend *be, float *dx, float *dw, float *db, const float *dy, const float *x,
                               const float *w, int m, int k, int n, int accumulate, cl_error *e) {
  (void)be;
  if (bad_dims("linear_backward", m, k, n, e)) return CL_EINVAL;
  if (m == 0) return CL_OK;
  if (dx) gemm_nx(0, m, k, n, dy, w, dx, accumulate);
  if (dw) gemm_tn_acc(n, k, m, dy, n, x, k, dw, k);
  if (db) colsum_acc(db, dy, m, n);
  return CL_OK;
}

static int cpu_matmul_backward(cl_backend *be, float *dx, float *dp, const float *dy, const float *x, const float *p,
                               int m, int k, int n, int accumulate, cl_error *e) {
  (void)be;
  if (bad_dims("matmul_backward", m, k, n, e)) return CL_EINVAL;
  if (m == 0) return CL_OK;
  if (dx) gemm_nx(1, m, k, n, dy, p, dx, accumulate);
  if (dp) gemm_tn_acc(k, n, m, x, k, dy, n, dp, n);
  return CL_OK;
}

/* mean and 1/std of row x[n] exactly as the forward computes them (two passes in double). */
static void row_stats(const float *x, int n, float eps, float *mean, float *rstd) {
  double s = 0, v = 0;
  for (int j = 0; j < n; j++) s += x[j];
  const double mu = s / n;
  for (int j = 0; j < n; j++) v += (x[j] - mu) * (x[j] - mu);
  *mean = (float)mu;
  *rstd = (float)(1.0 / sqrt(v / n + eps));
}

static int cpu_layernorm_backward(cl_backend *be, float *dx, float *dg, float *db, const float *dy, const float *x,
                                  const float *g, int m, int n, float eps, int accumulate, cl_error *e) {
  cl_cpu *c = be->impl;
  if (m < 0 || n <= 0) return cl_err(e, CL_EINVAL, "cpu backend: layernorm_backward of [%d,%d]", m, n);
  if (m == 0) return CL_OK;
  float *st = cl_cpu_workspace(c, 2 * (size_t)m, e);
  if (!st) return CL_ENOMEM;
#pragma omp parallel for schedule(static) if ((size_t)m * n > PAR_MIN)
  for (int i = 0; i < m; i++) {
    const float *xi = x + (size_t)i * n, *dyi = dy + (size_t)i * n;
    row_stats(xi, n, eps, &st[2 * i], &st[2 * i + 1]);
    if (!dx) continue;
    const float mu = st[2 * i], rs = st[2 * i + 1];
    /* dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = dy * g */
    double s1 = 0, s2 = 0;
    for (int j = 0; j < n; j++) {
      const double dh = (double)dyi[j] * g[j], xh = ((double)xi[j] - mu) * rs;
      s1 += dh, s2 += dh * xh;
    }
    const float m1 = (float)(s1 / n), m2 = (float)(s2 / n);
    float *dxi = dx + (size_t)i * n;
    for (int j = 0; j < n; j++) {
      const float xh = (xi[j] - mu) * rs, v = rs * (dyi[j] * g[j] - m1 - xh * m2);
      dxi[j] = accumulate ? dxi[j] + v : v;
    }
  }
  if (dg || db) {
#pragma omp parallel for schedule(static) if ((size_t)m * n > PAR_MIN)
    for (int j0 = 0; j0 < n; j0 += 32) {
      const int j1 = j0 + 32 < n ? j0 + 32 : n;
      double ag[32] = {0}, ab[32] = {0};
      for (int i = 0; i < m; i++) {
        const float *xi = x + (size_t)i * n, *dyi = dy + (size_t)i * n;
        const float mu = st[2 * i], rs = st[2 * i + 1];
        for (int j = j0; j < j1; j++) ag[j - j0] += (double)dyi[j] * ((xi[j] - mu) * rs), ab[j - j0] += dyi[j];
      }
      for (int j = j0; j < j1; j++) {
        if (dg) dg[j] += (float)ag[j - j0];
        if (db) db[j] += (float)ab[j - j0];
      }
    }
  }
  return CL_OK;
}

static inline float gelu_grad(float x) {
  /* d/dx 0.5 x (1 + erf(x/sqrt2)) = 0.5 (1 + erf(x/sqrt2)) + x exp(-x^2/2) / sqrt(2 pi) */
  return 0.5f * (1.0f + erff(x * (float)M_SQRT1_2)) + x * expf(-0.5f * x * x) * 0.3989422804014327f;
}
static inline float quickgelu_grad(float x) {
  const float s = 1.0f / (1.0f + expf(-1.702f * x));
  return s + 1.702f * x * s * (1.0f - s);
}

static int cpu_activate_backward(cl_backend *be, float *dx, const float *dy, const float *x, size_t n, cl_act act,
                                 cl_error *e) {
  (void)be;
  if ((act == CL_ACT_GELU || act == CL_ACT_QUICKGELU) && cl_cpu_avx512()) {
    const size_t chunk = 16384, nchunks = (n + chunk - 1) / chunk;
#pragma omp parallel for if (n > PAR_MIN)
    for (size_t c = 0; c < nchunks; c++)
      cl_cpu_act_grad_x512(dx + c * chunk, dy + c * chunk, x + c * chunk, n - c * chunk < chunk ? n - c * chunk : chunk,
                           act);
  } else if (act == CL_ACT_GELU) {
#pragma omp parallel for if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++) dx[i] = dy[i] * gelu_grad(x[i]);
  } else if (act == CL_ACT_QUICKGELU) {
#pragma omp parallel for if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++) dx[i] = dy[i] * quickgelu_grad(x[i]);
  } else if (act == CL_ACT_NONE) {
    if (dx != dy) memmove(dx, dy, n * sizeof *dx);
  } else {
    return cl_err(e, CL_EINVAL, "cpu backend: unknown activation %d", (int)act);
  }
  return CL_OK;
}

static int cpu_scatter_add_rows(cl_backend *be, float *dtable, int table_rows, const int32_t *idx, const float *dy,
                                int n, int width, cl_error *e) {
  (void)be;
  if (n < 0 || width <= 0) return cl_err(e, CL_EINVAL, "cpu backend: scatter_add_rows n=%d width=%d", n, width);
  for (int i = 0; i < n; i++)
    if (idx[i] < 0 || idx[i] >= table_rows)
      return cl_err(e, CL_EINVAL, "cpu backend: scatter index %d (item %d) outside [0,%d)", idx[i], i, table_rows);
  /* by column blocks: every thread walks all rows in order, so sums are deterministic */
#pragma omp parallel for schedule(static) if ((size_t)n * width > PAR_MIN)
  for (int j0 = 0; j0 < width; j0 += 16) {
    const int j1 = j0 + 16 < width ? j0 + 16 : width;
    for (int i = 0; i < n; i++) {
      float *dst = dtable + (size_t)idx[i] * width;
      const float *src = dy + (size_t)i * width;
      for (int j = j0; j < j1; j++) dst[j] += src[j];
    }
  }
  return CL_OK;
}

/* One head of one sequence of length len (row stride 3w in qkv/dqkv, w in dout): recompute
 * P = softmax(q k^T * scale) (causal: keys j > i get 0), then
 * dV = P^T dO, dP = dO V^T, dS = P (dP - rowsum(dP P)), dQ = dS K scale, dK = dS^T (q scale). */
static void attn_head_backward(float *dqkv, const float *dout, const float *qkv, int len, int w, int dh, int h,
                               int causal, float scale, float *scratch) {
  const int ld = 3 * w;
  float *q = scratch, *p = q + (size_t)len * dh, *dp = p + (size_t)len * len;
  const float *k = qkv + w + (size_t)h * dh, *v = qkv + 2 * (size_t)w + (size_t)h * dh, *go = dout + (size_t)h * dh;
  float *dq = dqkv + (size_t)h * dh, *dk = dq + w, *dv = dq + 2 * (size_t)w;
  for (int i = 0; i < len; i++)
    for (int d = 0; d < dh; d++) q[(size_t)i * dh + d] = qkv[(size_t)i * ld + (size_t)h * dh + d] * scale;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, len, len, dh, 1.0f, q, dh, k, ld, 0.0f, p, len);
  cl_cpu_softmax_rows(p, len, causal);
  /* dV = P^T dO */
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, len, dh, len, 1.0f, p, len, go, w, 0.0f, dv, ld);
  /* dP = dO V^T, then dS in place */
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, len, len, dh, 1.0f, go, w, v, ld, 0.0f, dp, len);
  for (int i = 0; i < len; i++) {
    float *pi = p + (size_t)i * len, *dpi = dp + (size_t)i * len;
    const int nj = causal ? i + 1 : len;
    double s = 0;
    for (int j = 0; j < nj; j++) s += (double)dpi[j] * pi[j];
    const float sf = (float)s;
    for (int j = 0; j < nj; j++) dpi[j] = pi[j] * (dpi[j] - sf);
    for (int j = nj; j < len; j++) dpi[j] = 0.0f;
  }
  /* dQ = dS K * scale; dK = dS^T (q * scale) */
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, len, dh, len, scale, dp, len, k, ld, 0.0f, dq, ld);
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, len, dh, len, 1.0f, dp, len, q, dh, 0.0f, dk, ld);
}

static int cpu_attention_backward(cl_backend *be, float *dqkv, const float *dout, const float *qkv,
                                  const int32_t *seq_off, int nseq, int width, int heads, int causal, cl_error *e) {
  cl_cpu *c = be->impl;
  if (nseq < 0 || width <= 0 || heads <= 0 || width % heads)
    return cl_err(e, CL_EINVAL, "cpu backend: attention_backward with width %d, %d heads, %d sequences", width,
                  heads, nseq);
  if (nseq == 0) return CL_OK;
  if (seq_off[0] < 0) return cl_err(e, CL_EINVAL, "cpu backend: attention_backward seq_off[0] = %d", seq_off[0]);
  int lmax = 0;
  for (int s = 0; s < nseq; s++) {
    const int len = seq_off[s + 1] - seq_off[s];
    if (len <= 0) return cl_err(e, CL_EINVAL, "cpu backend: attention_backward sequence %d has length %d", s, len);
    if (len > lmax) lmax = len;
  }
  const int dh = width / heads;
  const float scale = (float)(1.0 / sqrt((double)dh));
  const size_t per = ((size_t)lmax * dh + 2 * (size_t)lmax * lmax + 15) & ~(size_t)15;
  float *ws = cl_cpu_workspace(c, per * omp_get_max_threads(), e);
  if (!ws) return CL_ENOMEM;
  const long tasks = (long)nseq * heads;
#pragma omp parallel for schedule(dynamic)
  for (long t = 0; t < tasks; t++) {
    const int s = (int)(t / heads), h = (int)(t % heads);
    const size_t r0 = (size_t)seq_off[s];
    attn_head_backward(dqkv + r0 * 3 * width, dout + r0 * width, qkv + r0 * 3 * width, seq_off[s + 1] - seq_off[s],
                       width, dh, h, causal, scale, ws + per * omp_get_thread_num());
  }
  return CL_OK;
}

static int cpu_patch_embed_backward(cl_backend *be, float *dw, float *dcls, float *dpos, const float *dx,
                                    const float *pixels, int n, int channels, int image, int patch, int width,
                                    cl_error *e) {
  cl_cpu *c = be->impl;
  if (n < 0 || channels <= 0 || patch <= 0 || image < patch || width <= 0)
    return cl_err(e, CL_EINVAL, "cpu backend: patch_embed_backward n=%d channels=%d image=%d patch=%d", n, channels,
                  image, patch);
  if (n == 0) return CL_OK;
  const int g = image / patch, seq = 1 + g * g, np = g * g, kk = channels * patch * patch;
  if (dw) {
    /* im2col of the patch rows only (no class rows): cols [n*np, kk]; dw += dx_patches^T cols */
    float *cols = cl_cpu_workspace(c, (size_t)n * np * kk, e);
    if (!cols) return CL_ENOMEM;
    cl_cpu_im2col(cols, pixels, n, channels, image, patch, 0);
    /* the patch rows of dx skip each image's class row: one GEMM per image, in image order */
    for (int i = 0; i < n; i++)
      gemm_tn_acc(width, kk, np, dx + ((size_t)i * seq + 1) * width, width, cols + (size_t)i * np * kk, kk, dw, kk);
  }
  if (dcls || dpos) {
#pragma omp parallel for schedule(static) if ((size_t)n * seq * width > PAR_MIN)
    for (int r = 0; r < seq; r++)
      for (int j = 0; j < width; j++) {
        double s = 0;
        for (int i = 0; i < n; i++) s += dx[((size_t)i * seq + r) * width + j];
        if (dpos) dpos[(size_t)r * width + j] += (float)s;
        if (r == 0 && dcls) dcls[j] += (float)s;
      }
  }
  return CL_OK;
}

static int cpu_sumsq(cl_backend *be, const float *x, size_t n, double *out, cl_error *e) {
  (void)be, (void)e;
  double s = 0;
#pragma omp parallel for reduction(+ : s) schedule(static) if (n > PAR_MIN)
  for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
  *out = s;
  return CL_OK;
}

static int cpu_scale(cl_backend *be, float *x, size_t n, float s, cl_error *e) {
  (void)be, (void)e;
#pragma omp parallel for if (n > PAR_MIN)
  for (size_t i = 0; i < n; i++) x[i] *= s;
  return CL_OK;
}

/* PyTorch 1.13 _single_tensor_adamw, entry by entry, in the same fp32 operations:
 * param.mul_(1 - lr*wd); exp_avg.mul_(b1).add_(grad, alpha=1-b1);
 * exp_avg_sq.mul_(b2).addcmul_(grad, grad, value=1-b2);
 * denom = (exp_avg_sq.sqrt() / bc2_sqrt).add_(eps); param.addcdiv_(exp_avg, denom, value=-step_size). */
static int cpu_adamw(cl_backend *be, float *p, const float *g, float *m, float *v, size_t n, const cl_adamw_args *a,
                     cl_error *e) {
  (void)be, (void)e;
  const cl_adamw_args s = *a;
#pragma omp parallel for if (n > PAR_MIN)
  for (size_t i = 0; i < n; i++) {
    float pi = p[i];
    if (s.decay != 1.0f) pi *= s.decay;
    const float mi = m[i] * s.beta1 + s.one_minus_beta1 * g[i];
    const float vi = v[i] * s.beta2 + s.one_minus_beta2 * g[i] * g[i];
    const float denom = sqrtf(vi) / s.bc2_sqrt + s.eps;
    m[i] = mi, v[i] = vi;
    p[i] = pi + -s.step_size * (mi / denom);
  }
  return CL_OK;
}

static int cpu_copy_mem(cl_backend *be, void *dst, const void *src, size_t nbytes, cl_error *e) {
  (void)be, (void)e;
  if (nbytes && dst != src) memcpy(dst, src, nbytes);
  return CL_OK;
}

static int cpu_zero(cl_backend *be, void *p, size_t nbytes, cl_error *e) {
  (void)be, (void)e;
  if (nbytes) memset(p, 0, nbytes);
  return CL_OK;
}

void cl_cpu_grad_register(cl_backend *be) {
  be->copy = cpu_copy_mem;
  be->zero = cpu_zero;
  be->linear_backward = cpu_linear_backward;
  be->matmul_backward = cpu_matmul_backward;
  be->layernorm_backward = cpu_layernorm_backward;
  be->activate_backward = cpu_activate_backward;
  be->scatter_add_rows = cpu_scatter_add_rows;
  be->attention_backward = cpu_attention_backward;
  be->patch_embed_backward = cpu_patch_embed_backward;
  be->sumsq = cpu_sumsq;
  be->scale = cpu_scale;
  be->adamw = cpu_adamw;
}
