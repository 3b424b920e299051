/* cl_ops_cpu: the CPU backend. On CPUs with AVX-512 the GEMMs, activations, LayerNorm and
 * attention run on clade's own kernels (cl_cpu_x512.c: bias, activation and residual fused
 * into the GEMM epilogue, tiles balanced dynamically over the OpenMP threads); elsewhere, or
 * with CLADE_CPU_KERNELS=blas, GEMMs go through CBLAS (OpenBLAS) and the other kernels are
 * flat loops. OpenMP is the only thread pool. OpenBLAS is set to one thread and each of its
 * GEMMs is split into row or column blocks, one single-threaded BLAS call per OpenMP thread:
 * two pools (OpenBLAS's pthreads and OpenMP's spinning workers) on the same cores fight
 * for them, which measured up to 10x slower on small models. Everything is plain fp32:
 * no fast-math; the vector exp/erf are within about 1 ulp of expf/erff, so results match
 * PyTorch's to rounding. */
#include <cblas.h>
#include <malloc.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cl_cpu_simd.h"
#include "cl_ops_cpu_impl.h"
#include "tensor/cl_backends.h"

/* below this many elements a parallel region costs more than it saves */
#define PAR_MIN 32768

float *cl_cpu_workspace(cl_cpu *c, size_t n, cl_error *e) {
  if (n <= c->ws_cap) return c->ws;
  free(c->ws);
  c->ws = NULL;
  c->ws_cap = 0;
  void *p = NULL;
  if (posix_memalign(&p, 64, n * sizeof(float)) != 0) {
    cl_err(e, CL_ENOMEM, "cpu backend: cannot allocate a %zu MB workspace", n * 4 >> 20);
    return NULL;
  }
  c->ws = p;
  c->ws_cap = n;
  return c->ws;
}

/* --- memory: buffers are host memory, 64-byte aligned for the SIMD kernels --- */

static int cpu_alloc(cl_backend *be, size_t nbytes, void **out, cl_error *e) {
  (void)be;
  void *p = NULL;
  if (posix_memalign(&p, 64, nbytes ? nbytes : 64) != 0)
    return cl_err(e, CL_ENOMEM, "cpu backend: cannot allocate %zu bytes", nbytes);
  *out = p;
  return CL_OK;
}

/* Forgets the prepacked weights inside p (a later allocation may reuse the addresses). */
static void cpu_free(cl_backend *be, void *p) {
  cl_cpu *c = be->impl;
  if (p && c->npacked) {
    const uintptr_t lo = (uintptr_t)p, hi = lo + malloc_usable_size(p);
    int j = 0;
    for (int i = 0; i < c->npacked; i++)
      if ((uintptr_t)c->packed[i].w < lo || (uintptr_t)c->packed[i].w >= hi) c->packed[j++] = c->packed[i];
    c->npacked = j;
  }
  free(p);
}

static int cpu_copy(cl_backend *be, void *dst, const void *src, size_t nbytes, cl_error *e) {
  (void)be, (void)e;
  if (dst != src && nbytes) memcpy(dst, src, nbytes);
  return CL_OK;
}

static int cpu_sync(cl_backend *be, cl_error *e) {
  (void)be, (void)e;
  return CL_OK;
}

static void cpu_destroy(cl_backend *be) {
  cl_cpu *c = be->impl;
  if (!c) return;
  free(c->ws);
  free(c->packed);
  free(c);
}

/* --- element-wise --- */

static inline float gelu(float x) { return 0.5f * x * (1.0f + erff(x * (float)M_SQRT1_2)); }
static inline float quickgelu(float x) { return x * (1.0f / (1.0f + expf(-1.702f * x))); }

static void act_inplace(float *x, size_t n, cl_act act) {
  if (act != CL_ACT_NONE && cl_cpu_avx512()) {
    const size_t chunk = 16384, nchunks = (n + chunk - 1) / chunk;
#pragma omp parallel for if (n > PAR_MIN)
    for (size_t c = 0; c < nchunks; c++)
      cl_cpu_act_x512(x + c * chunk, n - c * chunk < chunk ? n - c * chunk : chunk, act);
    return;
  }
  if (act == CL_ACT_GELU) {
#pragma omp parallel for if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++) x[i] = gelu(x[i]);
  } else if (act == CL_ACT_QUICKGELU) {
#pragma omp parallel for if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++) x[i] = quickgelu(x[i]);
  }
}

static int check_act(cl_act act, cl_error *e) {
  if (act != CL_ACT_NONE && act != CL_ACT_GELU && act != CL_ACT_QUICKGELU)
    return cl_err(e, CL_EINVAL, "cpu backend: unknown activation %d", (int)act);
  return CL_OK;
}

static int cpu_activate(cl_backend *be, float *x, size_t n, cl_act act, cl_error *e) {
  (void)be;
  if (check_act(act, e)) return CL_EINVAL;
  act_inplace(x, n, act);
  return CL_OK;
}

static int cpu_add(cl_backend *be, float *y, const float *x, size_t n, cl_error *e) {
  (void)be, (void)e;
#pragma omp parallel for if (n > PAR_MIN)
  for (size_t i = 0; i < n; i++) y[i] += x[i];
  return CL_OK;
}

/* --- GEMMs --- */

void cl_cpu_sgemm(int transb, int m, int n, int k, const float *a, const float *b, float beta,
                  float *c) {
  const int ldb = transb ? k : n;
  const CBLAS_TRANSPOSE tb = transb ? CblasTrans : CblasNoTrans;
  int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (nt > 1 && (double)m * n * k > 4e6) {
    /* split the longer side: big batches by rows (each thread streams all of b), single
     * images or pooled rows by columns (each thread reads its slice of the weights) */
    const int by_rows = m >= n, ext = by_rows ? m : n, unit = by_rows ? 4 : 16;
    const int units = (ext + unit - 1) / unit, blocks = units < nt ? units : nt;
    if (blocks > 1) {
#pragma omp parallel for num_threads(blocks) schedule(static)
      for (int t = 0; t < blocks; t++) {
        int s = units * t / blocks * unit, e = units * (t + 1) / blocks * unit;
        if (e > ext) e = ext;
        if (e <= s) continue;
        if (by_rows)
          cblas_sgemm(CblasRowMajor, CblasNoTrans, tb, e - s, n, k, 1.0f, a + (size_t)s * k, k, b,
                      ldb, beta, c + (size_t)s * n, n);
        else
          cblas_sgemm(CblasRowMajor, CblasNoTrans, tb, m, e - s, k, 1.0f, a, k,
                      b + (transb ? (size_t)s * k : (size_t)s), ldb, beta, c + s, n);
      }
      return;
    }
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, tb, m, n, k, 1.0f, a, k, b, ldb, beta, c, n);
}

/* c[m,n] = act(a[m,k] op(b) + bias (+ c when accumulate)) with the AVX-512 GEMM, on all the
 * OpenMP threads unless already inside a parallel region or too small to pay for one. */
static void gemm_x512(int transb, int m, int n, int k, const float *a, const float *b, float *c,
                      const float *bias, cl_act act, int accumulate) {
  const int ldb = transb ? k : n;
  const int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (nt > 1 && (double)m * n * k > 4e6)
    cl_cpu_gemm_x512_mt(transb, m, n, k, a, k, b, ldb, c, n, bias, act, accumulate, nt);
  else
    cl_cpu_gemm_x512(transb, m, n, k, a, k, b, ldb, c, n, bias, act, accumulate);
}

static int dims_ok(const char *op, int m, int k, int n, cl_error *e) {
  if (m < 0 || k <= 0 || n <= 0)
    return cl_err(e, CL_EINVAL, "cpu backend: %s with bad dims m=%d k=%d n=%d", op, m, k, n);
  return CL_OK;
}

/* --- prepacked weights --- */

static const cl_cpu_packed *find_packed(const cl_cpu *c, const float *w) {
  int lo = 0, hi = c->npacked;
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    if (c->packed[mid].w == w) return &c->packed[mid];
    if ((uintptr_t)c->packed[mid].w < (uintptr_t)w) lo = mid + 1;
    else hi = mid;
  }
  return NULL;
}

/* Gives the pages wholly inside [p + used, p + size) back to the kernel: a bf16 weight fills
 * only the first half of its fp32 buffer. The range stays mapped (reads as zeros). */
static void release_tail(void *p, size_t used, size_t size) {
  const uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
  const uintptr_t lo = ((uintptr_t)p + used + pg - 1) & ~(pg - 1), hi = ((uintptr_t)p + size) & ~(pg - 1);
  if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

/* With the AVX-512 GEMM, a weight [n,k] with n a multiple of 32 is rewritten in place into
 * the panels every GEMM would otherwise cut from it on each call: packing once at load
 * costs no memory and saves a strided transpose of the weights per call (a large share of
 * the time at batch 1, where each weight meets only ~200 rows). The sums are the same, in
 * the same order: outputs are bit-identical to the unpacked path. */
static int cpu_prepare_linear(cl_backend *be, float *w, int n, int k, cl_error *e) {
  cl_cpu *c = be->impl;
  if (n <= 0 || k <= 0) return cl_err(e, CL_EINVAL, "cpu backend: prepare_linear of [%d,%d]", n, k);
  if (!cl_cpu_avx512() || n % CL_CPU_PANEL) return CL_OK; /* used as it is */
  const cl_cpu_packed *have = find_packed(c, w);
  if (have) {
    if (have->n != n || have->k != k)
      return cl_err(e, CL_EINVAL, "cpu backend: weight prepared as [%d,%d], prepared again as [%d,%d]",
                    have->n, have->k, n, k);
    return CL_OK;
  }
  if (c->npacked == c->packed_cap) {
    int cap = c->packed_cap ? 2 * c->packed_cap : 64;
    cl_cpu_packed *p = realloc(c->packed, (size_t)cap * sizeof *p);
    if (!p) return cl_err(e, CL_ENOMEM, "cpu backend: out of memory");
    c->packed = p, c->packed_cap = cap;
  }
  const size_t nk = (size_t)n * k;
  const int bf16 = be->precision == CL_PREC_BF16;
  float *tmp = malloc(nk * sizeof *tmp);
  if (!tmp) return cl_err(e, CL_ENOMEM, "cpu backend: cannot allocate %zu MB to pack a weight", nk * 4 >> 20);
  memcpy(tmp, w, nk * sizeof *tmp);
  if (bf16) {
    cl_cpu_pack_b_bf16_x512(tmp, n, k, (uint32_t *)w);
    release_tail(w, (size_t)n * ((k + 1) / 2) * 4, nk * 4);
  } else {
    cl_cpu_pack_b_x512(tmp, n, k, w);
  }
  free(tmp);
  int i = c->npacked;
  while (i > 0 && (uintptr_t)c->packed[i - 1].w > (uintptr_t)w) c->packed[i] = c->packed[i - 1], i--;
  c->packed[i] = (cl_cpu_packed){w, n, k, bf16};
  c->npacked++;
  return CL_OK;
}

static int cpu_linear(cl_backend *be, float *y, const float *x, const float *w, const float *b,
                      int m, int k, int n, cl_act act, int accumulate, cl_error *e) {
  const cl_cpu *c = be->impl;
  if (dims_ok("linear", m, k, n, e) || check_act(act, e)) return CL_EINVAL;
  const cl_cpu_packed *pw = c->npacked ? find_packed(c, w) : NULL;
  if (pw && (pw->n != n || pw->k != k))
    return cl_err(e, CL_EINVAL, "cpu backend: linear [%d,%d] with a weight prepared as [%d,%d]", n, k, pw->n,
                  pw->k);
  if (m == 0) return CL_OK;
  if (pw && pw->bf16) {
    cl_cpu_gemm_bf16_x512(m, n, k, x, k, (const uint32_t *)w, y, n, b, act, accumulate,
                          omp_in_parallel() ? 1 : omp_get_max_threads());
    return CL_OK;
  }
  if (cl_cpu_avx512()) { /* bias, activation and residual fused into the GEMM's epilogue */
    gemm_x512(pw ? CL_CPU_B_PACKED : 1, m, n, k, x, w, y, b, act, accumulate);
    return CL_OK;
  }
  float beta = accumulate ? 1.0f : 0.0f;
  if (b) { /* seed y with the bias and let the GEMM add to it, as torch's addmm does */
#pragma omp parallel for if ((size_t)m * n > PAR_MIN)
    for (int i = 0; i < m; i++) {
      float *yi = y + (size_t)i * n;
      if (accumulate)
        for (int j = 0; j < n; j++) yi[j] += b[j];
      else
        memcpy(yi, b, (size_t)n * sizeof(float));
    }
    beta = 1.0f;
  }
  cl_cpu_sgemm(1, m, n, k, x, w, beta, y);
  act_inplace(y, (size_t)m * n, act);
  return CL_OK;
}

static int cpu_matmul(cl_backend *be, float *y, const float *x, const float *p, int m, int k,
                      int n, cl_error *e) {
  (void)be;
  if (dims_ok("matmul", m, k, n, e)) return CL_EINVAL;
  if (m == 0) return CL_OK;
  if (cl_cpu_avx512()) gemm_x512(0, m, n, k, x, p, y, NULL, CL_ACT_NONE, 0);
  else cl_cpu_sgemm(0, m, n, k, x, p, 0.0f, y);
  return CL_OK;
}

/* --- rows --- */

static int cpu_layernorm(cl_backend *be, float *y, const float *x, const float *g,
                         const float *b, int m, int n, float eps, cl_error *e) {
  (void)be;
  if (m < 0 || n <= 0) return cl_err(e, CL_EINVAL, "cpu backend: layernorm of [%d,%d]", m, n);
  if (cl_cpu_avx512()) {
#pragma omp parallel for schedule(dynamic, 16) if ((size_t)m * n > PAR_MIN)
    for (int i = 0; i < m; i++) cl_cpu_layernorm_x512(y + (size_t)i * n, x + (size_t)i * n, g, b, n, eps);
    return CL_OK;
  }
#pragma omp parallel for if ((size_t)m * n > PAR_MIN)
  for (int i = 0; i < m; i++) {
    const float *xi = x + (size_t)i * n;
    float *yi = y + (size_t)i * n;
    /* two passes in double: the mean and the biased variance to full fp32 accuracy */
    double s = 0;
    for (int j = 0; j < n; j++) s += xi[j];
    double mean = s / n, v = 0;
    for (int j = 0; j < n; j++) {
      double d = xi[j] - mean;
      v += d * d;
    }
    float rstd = (float)(1.0 / sqrt(v / n + eps)), meanf = (float)mean;
    for (int j = 0; j < n; j++) yi[j] = (xi[j] - meanf) * rstd * g[j] + b[j];
  }
  return CL_OK;
}

static int cpu_gather_rows(cl_backend *be, float *y, const float *table, int table_rows,
                           const int32_t *idx, int n, int width, int accumulate, cl_error *e) {
  (void)be;
  for (int i = 0; i < n; i++)
    if (idx[i] < 0 || idx[i] >= table_rows)
      return cl_err(e, CL_EINVAL, "cpu backend: gather index %d (item %d) outside [0,%d)",
                    idx[i], i, table_rows);
#pragma omp parallel for if ((size_t)n * width > PAR_MIN)
  for (int i = 0; i < n; i++) {
    const float *src = table + (size_t)idx[i] * width;
    float *dst = y + (size_t)i * width;
    if (accumulate)
      for (int j = 0; j < width; j++) dst[j] += src[j];
    else
      memcpy(dst, src, (size_t)width * sizeof(float));
  }
  return CL_OK;
}

/* --- ViT stem --- */

void cl_cpu_im2col(float *cols, const float *pixels, int n, int channels, int image, int patch, int cls_rows) {
  const int g = image / patch, per = g * g + (cls_rows ? 1 : 0), kk = channels * patch * patch;
  const size_t rows = (size_t)n * per;
#pragma omp parallel for
  for (size_t row = 0; row < rows; row++) {
    float *dst = cols + row * kk;
    const int i = (int)(row / per), r = (int)(row % per) - (cls_rows ? 1 : 0);
    if (r < 0) {
      memset(dst, 0, (size_t)kk * sizeof(float));
      continue;
    }
    const int py = r / g, px = r % g;
    for (int ch = 0; ch < channels; ch++)
      for (int ky = 0; ky < patch; ky++) {
        const float *src = pixels + (((size_t)i * channels + ch) * image + (size_t)py * patch + ky) * image
                           + (size_t)px * patch;
        memcpy(dst + (ch * patch + ky) * patch, src, (size_t)patch * sizeof(float));
      }
  }
}

static int cpu_patch_embed(cl_backend *be, float *x, const float *pixels, const float *w,
                           const float *cls, const float *pos, int n, int channels, int image,
                           int patch, int width, cl_error *e) {
  cl_cpu *c = be->impl;
  if (n < 0 || channels <= 0 || patch <= 0 || image < patch || width <= 0)
    return cl_err(e, CL_EINVAL, "cpu backend: patch_embed n=%d channels=%d image=%d patch=%d",
                  n, channels, image, patch);
  if (n == 0) return CL_OK;
  const int g = image / patch, seq = 1 + g * g, kk = channels * patch * patch;
  const size_t rows = (size_t)n * seq;
  float *cols = cl_cpu_workspace(c, rows * kk, e);
  if (!cols) return CL_ENOMEM;
  cl_cpu_im2col(cols, pixels, n, channels, image, patch, 1);
  if (cl_cpu_avx512()) gemm_x512(1, (int)rows, width, kk, cols, w, x, NULL, CL_ACT_NONE, 0);
  else cl_cpu_sgemm(1, (int)rows, width, kk, cols, w, 0.0f, x);
  /* torch: cat([cls + 0, conv]) + pos */
#pragma omp parallel for
  for (size_t row = 0; row < rows; row++) {
    int r = (int)(row % seq);
    float *xr = x + row * width;
    const float *pr = pos + (size_t)r * width;
    if (r == 0)
      for (int j = 0; j < width; j++) xr[j] = cls[j] + pr[j];
    else
      for (int j = 0; j < width; j++) xr[j] += pr[j];
  }
  return CL_OK;
}

/* The OPENBLAS_CORETYPE to force when OpenBLAS fell back to generic kernels, else NULL. */
static const char *blas_coretype(void) {
  static const char *const generic[] = {"Prescott", "Core2", "Penryn", "Dunnington", "Nehalem",
                                        "Katmai", "Coppermine", "Northwood", "Banias", NULL};
  const char *core = openblas_get_corename(), *set = getenv("OPENBLAS_CORETYPE");
  if (!core || (set && *set)) return NULL;
  int fallback = 0;
  for (int i = 0; generic[i]; i++) fallback |= strcmp(core, generic[i]) == 0;
  if (!fallback) return NULL;
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
    return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
  return NULL;
}

int cl_backend_cpu_tune_env(void) {
  int changed = 0;
  const char *core = blas_coretype();
  if (core) changed |= setenv("OPENBLAS_CORETYPE", core, 1) == 0;
  if (!getenv("OMP_WAIT_POLICY") && !getenv("GOMP_SPINCOUNT"))
    changed |= setenv("GOMP_SPINCOUNT", "20000", 1) == 0;
  return changed;
}

int cl_backend_cpu_offers(cl_precision p) { return p == CL_PREC_FP32 || (p == CL_PREC_BF16 && cl_cpu_bf16()); }

/* fp32, or bf16 GEMMs where the CPU has AVX512_BF16; chosen before any weight is packed */
static int cpu_set_precision(cl_backend *be, cl_precision p, cl_error *e) {
  const cl_cpu *c = be->impl;
  if (p == be->precision) return CL_OK;
  if (p != CL_PREC_FP32 && p != CL_PREC_BF16)
    return cl_err(e, CL_EUNSUP, "precision %s: the cpu backend computes in fp32, or bf16 on CPUs with AVX512_BF16",
                  cl_precision_name(p));
  if (!cl_backend_cpu_offers(p))
    return cl_err(e, CL_EUNSUP, "precision %s: this CPU lacks AVX512_BF16 (or CLADE_CPU_KERNELS=blas is set); use fp32",
                  cl_precision_name(p));
  if (c->npacked)
    return cl_err(e, CL_EINVAL, "cpu backend: precision %s asked after %d weights were prepared in %s",
                  cl_precision_name(p), c->npacked, cl_precision_name(be->precision));
  be->precision = p;
  return CL_OK;
}

void cl_backend_cpu_describe(char *buf, size_t n) {
  char model[200];
  cl_cpu_model_name(model, sizeof model);
  if (cl_cpu_avx512())
    snprintf(buf, n, "%.100s, %d threads, AVX-512 kernels", model, omp_get_max_threads());
  else
    snprintf(buf, n, "%.100s, %d threads, OpenBLAS %.20s", model, omp_get_max_threads(), openblas_get_corename());
}

static int cpu_probe(char *why, size_t n) {
  (void)why, (void)n;
  return 1;
}

static const char *cpu_lacks(cl_precision p) {
  return p == CL_PREC_BF16 ? "this CPU lacks AVX512_BF16 (or CLADE_CPU_KERNELS=blas is set)" : NULL;
}

/* The registry's entry (tensor/cl_backends.h). */
const cl_backend_desc cl_backend_cpu_desc = {.name = "cpu", .title = "the CPU", .probe = cpu_probe,
                                             .offers = cl_backend_cpu_offers, .lacks = cpu_lacks,
                                             .describe = cl_backend_cpu_describe, .create = cl_backend_cpu_create};

int cl_backend_cpu_create(cl_backend **out, cl_error *e) {
  cl_cpu *c = calloc(1, sizeof *c);
  if (!c) return cl_err(e, CL_ENOMEM, "cpu backend: out of memory");
  openblas_set_num_threads(1); /* OpenMP owns the threads, see the top of this file */
  cl_backend *be = &c->be;
  be->name = "cpu";
  be->impl = c;
  be->host_memory = 1;
  be->precision = CL_PREC_FP32;
  be->set_precision = cpu_set_precision;
  cl_backend_cpu_describe(be->device, sizeof be->device);
  be->alloc = cpu_alloc;
  be->free = cpu_free;
  be->upload = cpu_copy;
  be->download = cpu_copy;
  be->sync = cpu_sync;
  be->destroy = cpu_destroy;
  be->prepare_linear = cpu_prepare_linear;
  be->linear = cpu_linear;
  be->matmul = cpu_matmul;
  be->layernorm = cpu_layernorm;
  be->activate = cpu_activate;
  be->add = cpu_add;
  be->gather_rows = cpu_gather_rows;
  be->attention = cl_cpu_attention;
  be->patch_embed = cpu_patch_embed;
  cl_cpu_grad_register(be);
  *out = be;
  return CL_OK;
}
