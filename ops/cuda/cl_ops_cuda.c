/* cl_ops_cuda: the CUDA backend (the cl_backend vtable of ops/cl_ops.h).
 * Owns: the device buffers it hands out (cudaMalloc), one non-blocking stream every call
 * queues on, the cuBLAS handle bound to it, and workspaces grown on demand and reused:
 * im2col columns on the device, gather indices and attention offsets (pinned host staging
 * plus device copies).
 * GEMMs are cuBLAS sgemm in true fp32: the handle's math mode is CUBLAS_DEFAULT_MATH,
 * which never uses TF32 for fp32 (cl_backend_cuda_set_tf32 opts in). Row-major matrices
 * are handed to column-major cuBLAS as their transposes: row-major y[m,n] is column-major
 * y^T [n,m], so y = x w^T is computed as y^T = w x^T. Bias and activation run as one
 * kernel after the GEMM (cuBLASLt's fused GELU is the tanh approximation, not erf).
 * Every CUDA and cuBLAS call is checked; an error names the call, the file and the line. */
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cl_cuda.h"
#include "cl_cuda_kernels.h"

/* Host index arrays reach the GPU through a pinned staging buffer: the copy reads it
 * asynchronously, so it is rewritten only once the event after its last copy has fired
 * (in the model's call pattern that copy finished long before). */
typedef struct cl_cuda_staged {
  int32_t *host; /* pinned */
  size_t host_cap; /* bytes */
  int32_t *dev;
  size_t dev_cap;
  cudaEvent_t copied;
  int pending; /* a copy from host was queued after the last wait */
} cl_cuda_staged;

typedef struct cl_cuda {
  cl_backend be; /* first, so a cl_backend * is a cl_cuda * */
  int device;
  char device_name[256];
  cudaStream_t stream;
  cublasHandle_t blas;
  float *cols;      /* device: im2col columns */
  size_t cols_cap;  /* bytes */
  cl_cuda_staged idx; /* gather indices */
  cl_cuda_staged off; /* attention offsets; off.host holds the last ones (off_n of them) */
  int off_n;          /* so the same offsets (every layer) upload once */
  int debug_sync; /* CLADE_CUDA_SYNC=1: wait after every op, so a kernel fault names its op */
} cl_cuda;

/* cl_err's behaviour, kept here so this library needs nothing from clade_rt. */
static int fail(cl_error *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(cl_error *e, int code, const char *fmt, ...) {
  if (e) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    e->code = code;
  }
  return code;
}

/* On failure the runtime's last-error slot is cleared too, so a later launch check does not
 * report this (already reported) error again; sticky errors stay whatever we do. */
#define CU_CHECK(call)                                                                     \
  do {                                                                                     \
    cudaError_t _st = (call);                                                              \
    if (_st != cudaSuccess) {                                                              \
      cudaGetLastError();                                                                  \
      return fail(e, _st == cudaErrorMemoryAllocation ? CL_ENOMEM : CL_EDEVICE,            \
                  "cuda backend: %s failed: %s (%s) at %s:%d", #call, cudaGetErrorName(_st), \
                  cudaGetErrorString(_st), __FILE__, __LINE__);                            \
    }                                                                                      \
  } while (0)

#define BLAS_CHECK(call)                                                                   \
  do {                                                                                     \
    cublasStatus_t _st = (call);                                                           \
    if (_st != CUBLAS_STATUS_SUCCESS)                                                      \
      return fail(e, CL_EDEVICE, "cuda backend: %s failed: %s at %s:%d", #call,            \
                  cublasGetStatusString(_st), __FILE__, __LINE__);                         \
  } while (0)

/* Grows a device buffer to at least need bytes (contents not kept). Queued kernels may
 * still read the old one, so the stream drains before it is freed. */
static int grow(cl_cuda *c, void **p, size_t *cap, size_t need, cl_error *e) {
  if (need <= *cap) return CL_OK;
  CU_CHECK(cudaStreamSynchronize(c->stream));
  CU_CHECK(cudaFree(*p));
  *p = NULL;
  *cap = 0;
  need += need / 4; /* some headroom: chunks of varying size reuse the buffer */
  CU_CHECK(cudaMalloc(p, need));
  *cap = need;
  return CL_OK;
}

/* The end of every compute op: with CLADE_CUDA_SYNC set, wait for it and name it if the
 * GPU reports an error (otherwise a fault surfaces at the next sync or download). */
static int done(cl_cuda *c, const char *op, cl_error *e) {
  if (!c->debug_sync) return CL_OK;
  cudaError_t st = cudaStreamSynchronize(c->stream);
  if (st == cudaSuccess) st = cudaGetLastError();
  if (st != cudaSuccess)
    return fail(e, CL_EDEVICE, "cuda backend: %s failed on the GPU: %s (%s)", op, cudaGetErrorName(st),
                cudaGetErrorString(st));
  return CL_OK;
}

/* Queues a copy of n host ints to st->dev (both buffers grown as needed); the caller may
 * reuse src at once. */
static int upload_ints(cl_cuda *c, cl_cuda_staged *st, const int32_t *src, size_t n, cl_error *e) {
  const size_t nb = n * sizeof *src;
  if (st->pending) CU_CHECK(cudaEventSynchronize(st->copied));
  st->pending = 0;
  if (nb > st->host_cap) {
    CU_CHECK(cudaFreeHost(st->host));
    st->host = NULL;
    st->host_cap = 0;
    CU_CHECK(cudaMallocHost((void **)&st->host, nb + nb / 4));
    st->host_cap = nb + nb / 4;
  }
  int rc = grow(c, (void **)&st->dev, &st->dev_cap, nb, e);
  if (rc) return rc;
  memcpy(st->host, src, nb);
  CU_CHECK(cudaMemcpyAsync(st->dev, st->host, nb, cudaMemcpyHostToDevice, c->stream));
  CU_CHECK(cudaEventRecord(st->copied, c->stream));
  st->pending = 1;
  return CL_OK;
}

static void staged_free(cl_cuda_staged *st) {
  if (st->copied) {
    cudaEventSynchronize(st->copied);
    cudaEventDestroy(st->copied);
  }
  cudaFreeHost(st->host);
  cudaFree(st->dev);
}

/* --- memory --- */

static int cuda_alloc(cl_backend *be, size_t nbytes, void **out, cl_error *e) {
  (void)be;
  *out = NULL;
  CU_CHECK(cudaMalloc(out, nbytes ? nbytes : 256));
  return CL_OK;
}

static void cuda_free(cl_backend *be, void *p) {
  cl_cuda *c = (cl_cuda *)be;
  if (!p) return;
  /* kernels queued earlier may still use p; errors surface at the next sync */
  cudaStreamSynchronize(c->stream);
  cudaFree(p);
}

/* Both directions wait for the copy: the caller may reuse or free its host buffer as soon
 * as upload returns (even a pinned one), and reads its result right after download. */
static int cuda_upload(cl_backend *be, void *dst, const void *src, size_t nbytes, cl_error *e) {
  cl_cuda *c = (cl_cuda *)be;
  if (!nbytes) return CL_OK;
  CU_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyHostToDevice, c->stream));
  CU_CHECK(cudaStreamSynchronize(c->stream));
  return CL_OK;
}

static int cuda_download(cl_backend *be, void *dst, const void *src, size_t nbytes, cl_error *e) {
  cl_cuda *c = (cl_cuda *)be;
  if (!nbytes) return CL_OK;
  CU_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToHost, c->stream));
  CU_CHECK(cudaStreamSynchronize(c->stream));
  return CL_OK;
}

static int cuda_sync(cl_backend *be, cl_error *e) {
  cl_cuda *c = (cl_cuda *)be;
  CU_CHECK(cudaStreamSynchronize(c->stream));
  CU_CHECK(cudaGetLastError());
  return CL_OK;
}

static void cuda_destroy(cl_backend *be) {
  cl_cuda *c = (cl_cuda *)be;
  if (!c) return;
  if (c->stream) cudaStreamSynchronize(c->stream);
  cudaFree(c->cols);
  staged_free(&c->idx);
  staged_free(&c->off);
  if (c->blas) cublasDestroy(c->blas);
  if (c->stream) cudaStreamDestroy(c->stream);
  free(c);
}

/* --- element-wise --- */

static int check_act(cl_act act, cl_error *e) {
  if (act != CL_ACT_NONE && act != CL_ACT_GELU && act != CL_ACT_QUICKGELU)
    return fail(e, CL_EINVAL, "cuda backend: unknown activation %d", (int)act);
  return CL_OK;
}

static int cuda_activate(cl_backend *be, float *x, size_t n, cl_act act, cl_error *e) {
  cl_cuda *c = (cl_cuda *)be;
  if (check_act(act, e)) return CL_EINVAL;
  if (n == 0 || act == CL_ACT_NONE) return CL_OK;
  CU_CHECK(cl_cuda_bias_act(x, NULL, n, 1, (int)act, c->stream));
  return done(c, "activate", e);
}

static int cuda_add(cl_backend *be, float *y, const float *x, size_t n, cl_error *e) {
  cl_cuda *c = (cl_cuda *)be;
  if (n == 0) return CL_OK;
  CU_CHECK(cl_cuda_add(y, x, n, c->stream));
  return done(c, "add", e);
}

/* --- GEMMs --- */

static int dims_ok(const char *op, int m, int k, int n, cl_error *e) {
  if (m < 0 || k <= 0 || n <= 0)
    return fail(e, CL_EINVAL, "cuda backend: %s with bad dims m=%d k=%d n=%d", op, m, k, n);
  return CL_OK;
}

static int cuda_linear(cl_backend *be, float *y, const float *x, const float *w, const float *b,
                       int m, int k, int n, cl_act act, int accumulate, cl_error *e) {
  cl_cuda *c = (cl_cuda *)be;
  if (dims_ok("linear", m, k, n, e) || check_act(act, e)) return CL_EINVAL;
  if (m == 0) return CL_OK;
  const float one = 1.0f, beta = accumulate ? 1.0f : 0.0f;
  /* y^T [n,m] = w [n,k] . x^T [k,m]; w row-major [n,k] is column-major [k,n], op T */
  BLAS_CHECK(cublasSgemm(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, &one, w, k, x, k, &beta, y, n));
  if (b || act != CL_ACT_NONE) CU_CHECK(cl_cuda_bias_act(y, b, (size_t)m * n, n, (int)act, c->stream));
  return done(c, "linear", e);
}

static int cuda_matmul(cl_backend *be, float *y, const float *x, const float *p, int m, int k, int n,
                       cl_error *e) {
  cl_cuda *c = (cl_cuda *)be;
  if (dims_ok("matmul", m, k, n, e)) return CL_EINVAL;
  if (m == 0) return CL_OK;
  const float one = 1.0f, zero = 0.0f;
  /* y^T [n,m] = p^T [n,k] . x^T [k,m]; p row-major [k,n] is column-major p^T [n,k] */
  BLAS_CHECK(cublasSgemm(c->blas, CUBLAS_OP_N, CUBLAS_OP_N, n, m, k, &one, p, n, x, k, &zero, y, n));
  return done(c, "matmul", e);
}

/* --- rows --- */

static int cuda_layernorm(cl_backend *be, float *y, const float *x, const float *g, const float *b,
                          int m, int n, float eps, cl_error *e) {
  cl_cuda *c = (cl_cuda *)be;
  if (m < 0 || n <= 0) return fail(e, CL_EINVAL, "cuda backend: layernorm of [%d,%d]", m, n);
  if (m == 0) return CL_OK;
  CU_CHECK(cl_cuda_layernorm(y, x, g, b, m, n, eps, c->stream));
  return done(c, "layernorm", e);
}

static int cuda_gather_rows(cl_backend *be, float *y, const float *table, int table_rows,
                            const int32_t *idx, int n, int width, int accumulate, cl_error *e) {
  cl_cuda *c = (cl_cuda *)be;
  if (n < 0 || width <= 0) return fail(e, CL_EINVAL, "cuda backend: gather_rows of %d rows of %d", n, width);
  for (int i = 0; i < n; i++)
    if (idx[i] < 0 || idx[i] >= table_rows)
      return fail(e, CL_EINVAL, "cuda backend: gather index %d (item %d) outside [0,%d)", idx[i], i,
                  table_rows);
  if (n == 0) return CL_OK;
  int rc = upload_ints(c, &c->idx, idx, (size_t)n, e);
  if (rc) return rc;
  CU_CHECK(cl_cuda_gather_rows(y, table, c->idx.dev, n, width, accumulate, c->stream));
  return done(c, "gather_rows", e);
}

/* --- attention --- */

static int cuda_attention(cl_backend *be, float *out, const float *qkv, const int32_t *seq_off, int nseq,
                          int width, int heads, int causal, cl_error *e) {
  cl_cuda *c = (cl_cuda *)be;
  if (nseq < 0 || width <= 0 || heads <= 0 || width % heads || heads > 65535)
    return fail(e, CL_EINVAL, "cuda backend: attention with width %d, %d heads, %d sequences", width,
                heads, nseq);
  if (nseq == 0) return CL_OK;
  if (width / heads > CL_CUDA_ATTN_MAX_DH)
    return fail(e, CL_EUNSUP, "cuda backend: attention head width %d (at most %d)", width / heads,
                CL_CUDA_ATTN_MAX_DH);
  if (seq_off[0] < 0) return fail(e, CL_EINVAL, "cuda backend: attention seq_off[0] = %d", seq_off[0]);
  int lmax = 0;
  for (int s = 0; s < nseq; s++) {
    int len = seq_off[s + 1] - seq_off[s];
    if (len <= 0) return fail(e, CL_EINVAL, "cuda backend: attention sequence %d has length %d", s, len);
    if (len > lmax) lmax = len;
  }
  if ((long long)nseq * ((lmax + CL_CUDA_ATTN_QROWS - 1) / CL_CUDA_ATTN_QROWS) > 0x7fffffffLL)
    return fail(e, CL_EUNSUP, "cuda backend: attention over %d sequences of up to %d rows", nseq, lmax);
  const int n = nseq + 1;
  if (n != c->off_n || memcmp(c->off.host, seq_off, (size_t)n * sizeof *seq_off)) {
    c->off_n = 0; /* off.host is about to change */
    int rc = upload_ints(c, &c->off, seq_off, (size_t)n, e);
    if (rc) return rc;
    c->off_n = n;
  }
  CU_CHECK(cl_cuda_attention(out, qkv, c->off.dev, nseq, lmax, width, heads, causal, c->stream));
  return done(c, "attention", e);
}

/* --- ViT stem --- */

static int cuda_patch_embed(cl_backend *be, float *x, const float *pixels, const float *w, const float *cls,
                            const float *pos, int n, int channels, int image, int patch, int width,
                            cl_error *e) {
  cl_cuda *c = (cl_cuda *)be;
  if (n < 0 || channels <= 0 || patch <= 0 || image < patch || width <= 0)
    return fail(e, CL_EINVAL, "cuda backend: patch_embed n=%d channels=%d image=%d patch=%d", n, channels,
                image, patch);
  if (n == 0) return CL_OK;
  const int g = image / patch, seq = 1 + g * g, kk = channels * patch * patch;
  const size_t rows = (size_t)n * seq;
  if (rows > 0x7fffffff) return fail(e, CL_EUNSUP, "cuda backend: patch_embed of %zu tokens", rows);
  int rc = grow(c, (void **)&c->cols, &c->cols_cap, rows * kk * sizeof(float), e);
  if (rc) return rc;
  CU_CHECK(cl_cuda_im2col(c->cols, pixels, n, channels, image, patch, c->stream));
  /* x [rows, width] = cols [rows, kk] . w [width, kk]^T, as in linear */
  const float one = 1.0f, zero = 0.0f;
  BLAS_CHECK(cublasSgemm(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, width, (int)rows, kk, &one, w, kk, c->cols, kk,
                         &zero, x, width));
  CU_CHECK(cl_cuda_cls_pos(x, cls, pos, n, seq, width, c->stream));
  return done(c, "patch_embed", e);
}

/* --- construction --- */

static int create(cl_cuda *c, cl_error *e) {
  struct cudaDeviceProp prop;
  CU_CHECK(cudaGetDevice(&c->device));
  CU_CHECK(cudaGetDeviceProperties(&prop, c->device));
  snprintf(c->device_name, sizeof c->device_name, "%s", prop.name);
  const char *dbg = getenv("CLADE_CUDA_SYNC");
  c->debug_sync = dbg && *dbg && strcmp(dbg, "0") != 0;
  CU_CHECK(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
  CU_CHECK(cudaEventCreateWithFlags(&c->idx.copied, cudaEventDisableTiming));
  CU_CHECK(cudaEventCreateWithFlags(&c->off.copied, cudaEventDisableTiming));
  BLAS_CHECK(cublasCreate(&c->blas));
  BLAS_CHECK(cublasSetStream(c->blas, c->stream));
  BLAS_CHECK(cublasSetMathMode(c->blas, CUBLAS_DEFAULT_MATH));
  return CL_OK;
}

int cl_backend_cuda_create(cl_backend **out, cl_error *e) {
  *out = NULL;
  cl_cuda *c = calloc(1, sizeof *c);
  if (!c) return fail(e, CL_ENOMEM, "cuda backend: out of memory");
  if (create(c, e)) {
    cudaGetLastError(); /* "no device" and the like are not sticky: leave the runtime clean */
    cuda_destroy(&c->be);
    return CL_EDEVICE;
  }
  cl_backend *be = &c->be;
  be->name = "cuda";
  be->host_memory = 0;
  be->alloc = cuda_alloc;
  be->free = cuda_free;
  be->upload = cuda_upload;
  be->download = cuda_download;
  be->sync = cuda_sync;
  be->destroy = cuda_destroy;
  be->linear = cuda_linear;
  be->matmul = cuda_matmul;
  be->layernorm = cuda_layernorm;
  be->activate = cuda_activate;
  be->add = cuda_add;
  be->gather_rows = cuda_gather_rows;
  be->attention = cuda_attention;
  be->patch_embed = cuda_patch_embed;
  *out = be;
  return CL_OK;
}

int cl_backend_cuda_set_tf32(cl_backend *be, int on, cl_error *e) {
  if (!be || strcmp(be->name, "cuda") != 0)
    return fail(e, CL_EINVAL, "cl_backend_cuda_set_tf32: not a CUDA backend");
  cl_cuda *c = (cl_cuda *)be;
  BLAS_CHECK(cublasSetMathMode(c->blas, on ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  return CL_OK;
}

const char *cl_backend_cuda_device_name(const cl_backend *be) {
  return be && !strcmp(be->name, "cuda") ? ((const cl_cuda *)be)->device_name : "";
}
