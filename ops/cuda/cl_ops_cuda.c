/* cl_ops_cuda: the CUDA backend (the cl_backend vtable of ops/cl_ops.h).
 * Owns: the device buffers it hands out (cudaMalloc, with their sizes), one non-blocking
 * stream every call queues on, the cuBLAS and cuBLASLt handles bound to it, two pinned
 * upload chunks, the bf16/fp16 copies of prepared weights, and workspaces grown on demand
 * and reused: im2col columns, converted activations, gather indices and attention offsets
 * (pinned host staging plus device copies).
 * Precision (set_precision, before the weights are prepared):
 * - fp32 (default): cuBLAS sgemm with CUBLAS_DEFAULT_MATH, which never uses TF32.
 * - tf32: the same sgemms with CUBLAS_TF32_TENSOR_OP_MATH.
 * - bf16/fp16: prepare_linear keeps a bf16/fp16 copy of each nn.Linear weight; linear()
 *   converts x into a workspace and runs cublasLtMatmul with fp32 accumulation (compute type
 *   CUBLAS_COMPUTE_32F, never 16F) and fp32 output, the bias in the BIAS epilogue. Weights
 *   never prepared, and shapes cuBLASLt has no algorithm for, run the fp32 sgemm. Attention
 *   uses cuDNN's fused SDPA (cl_cudnn_sdpa.c) when CLADE_CUDNN_SDPA=1 and all sequences
 *   have one length; each new shape's first result is checked against the fp32 kernel.
 * Row-major matrices are handed to column-major cuBLAS as their transposes: row-major
 * y[m,n] is column-major y^T [n,m], so y = x w^T is computed as y^T = w x^T. Bias and
 * activation run as one kernel after the GEMM (cuBLASLt's fused GELU is the tanh
 * approximation, not erf).
 * Every CUDA, cuBLAS and cuBLASLt call is checked; an error names the call, file and line. */
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cl_cuda.h"
#include "cl_cuda_kernels.h"
#include "cl_cudnn_sdpa.h"
#include "tensor/cl_backends.h"

#define STAGE_BYTES ((size_t)8 << 20)   /* one pinned upload chunk (there are two) */
#define LT_WORKSPACE ((size_t)32 << 20) /* cuBLASLt workspace, as NVIDIA suggests for Hopper */
#define LT_PLANS 64                     /* cached GEMM shapes (texts vary m per chunk) */
#define SDPA_TOL 2e-2                   /* cuDNN vs fp32 kernel, ||diff|| / ||ref|| */

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

/* One of the two pinned chunks uploads go through (double buffering: filling one waits only
 * for the copy out of the other's previous use). */
typedef struct cl_cuda_stage {
  void *host; /* STAGE_BYTES, pinned */
  cudaEvent_t copied;
  int pending;
} cl_cuda_stage;

/* A prepared nn.Linear weight, keyed by the pointer the model passes to linear(). */
typedef struct cl_cuda_weight {
  const float *w;
  int n, k;
  void *lowp; /* bf16/fp16 copy [n,k] in those modes, NULL in fp32/tf32 */
} cl_cuda_weight;

typedef struct cl_cuda_alloc {
  void *p;
  size_t n;
} cl_cuda_alloc;

/* A cuBLASLt GEMM shape: descriptors and the heuristic's algorithm, queried once. */
typedef struct cl_lt_plan {
  int m, n, k, bf16, bias;   /* bias: the BIAS epilogue adds b */
  uint32_t align_y, align_b; /* pointer alignments the algorithm was chosen for */
  int ok;                    /* 0: no algorithm (the fp32 sgemm runs instead) */
  unsigned long long used;   /* last use; 0 = empty slot */
  cublasLtMatmulDesc_t desc;
  cublasLtMatrixLayout_t a, b, c; /* c is also D's layout (in place) */
  cublasLtMatmulAlgo_t algo;
} cl_lt_plan;

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
  /* uploads */
  cl_cuda_stage stage[2];
  int stage_next;
  int stage_off; /* no pinned memory to be had: synchronous uploads as before */
  /* allocations (sorted by address), so that free() can drop the copies of weights in them */
  cl_cuda_alloc *allocs;
  size_t nallocs, allocs_cap;
  /* prepared weights (sorted by w) */
  cl_cuda_weight *wts;
  int nwts, wts_cap;
  /* bf16/fp16 GEMMs */
  cublasLtHandle_t lt;
  void *lt_ws;
  cl_lt_plan lt_plans[LT_PLANS];
  unsigned long long lt_tick;
  int lt_noalgo;     /* shapes without a cuBLASLt algorithm (they ran the fp32 sgemm) */
  char lt_why[160];
  void *xh;          /* activations converted for a GEMM */
  size_t xh_cap;
  /* cuDNN attention */
  int sdpa_want;     /* CLADE_CUDNN_SDPA=1 */
  cl_sdpa *sdpa;
  char sdpa_why[256]; /* why there is no cuDNN handle */
  double sdpa_rel;   /* the largest difference a verified plan showed */
  void *qkvh, *oh;   /* attention input and output in bf16/fp16 */
  size_t qkvh_cap, oh_cap;
  float *chk;        /* a new plan's result in fp32, for the check */
  size_t chk_cap;
  double *sums;      /* device: the check's two sums of squares */
  char info[768];
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

/* cuBLAS and cuBLASLt share the status type. */
#define BLAS_CHECK(call)                                                                   \
  do {                                                                                     \
    cublasStatus_t _st = (call);                                                           \
    if (_st != CUBLAS_STATUS_SUCCESS)                                                      \
      return fail(e, _st == CUBLAS_STATUS_ALLOC_FAILED ? CL_ENOMEM : CL_EDEVICE,           \
                  "cuda backend: %s failed: %s at %s:%d", #call, cublasGetStatusString(_st), \
                  __FILE__, __LINE__);                                                     \
  } while (0)

static int is_lowp(cl_precision p) { return p == CL_PREC_BF16 || p == CL_PREC_FP16; }
/* What prepared weights are stored as: 0 fp32 (fp32, tf32), 1 bf16, 2 fp16. */
static int storage_kind(cl_precision p) { return p == CL_PREC_BF16 ? 1 : p == CL_PREC_FP16 ? 2 : 0; }

/* The largest power of two (up to 256) that divides the address. */
static uint32_t ptr_align(const void *p) {
  const uintptr_t a = (uintptr_t)p;
  uint32_t al = 256;
  while (al > 1 && (a & (al - 1))) al >>= 1;
  return al;
}

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

/* --- bookkeeping: allocations and prepared weights, both sorted by address --- */

static size_t alloc_lower(const cl_cuda *c, const void *p) {
  size_t lo = 0, hi = c->nallocs;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if ((uintptr_t)c->allocs[mid].p < (uintptr_t)p) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

static int alloc_note(cl_cuda *c, void *p, size_t n) {
  if (c->nallocs == c->allocs_cap) {
    size_t cap = c->allocs_cap ? 2 * c->allocs_cap : 64;
    cl_cuda_alloc *a = realloc(c->allocs, cap * sizeof *a);
    if (!a) return -1;
    c->allocs = a, c->allocs_cap = cap;
  }
  size_t i = alloc_lower(c, p);
  memmove(&c->allocs[i + 1], &c->allocs[i], (c->nallocs - i) * sizeof *c->allocs);
  c->allocs[i] = (cl_cuda_alloc){p, n};
  c->nallocs++;
  return 0;
}

/* Forgets p; returns its size (0 when it was not ours). */
static size_t alloc_forget(cl_cuda *c, const void *p) {
  size_t i = alloc_lower(c, p);
  if (i == c->nallocs || c->allocs[i].p != p) return 0;
  size_t n = c->allocs[i].n;
  memmove(&c->allocs[i], &c->allocs[i + 1], (c->nallocs - i - 1) * sizeof *c->allocs);
  c->nallocs--;
  return n;
}

static int wt_lower(const cl_cuda *c, const void *w) {
  int lo = 0, hi = c->nwts;
  while (lo < hi) {
    int mid = lo + (hi - lo) / 2;
    if ((uintptr_t)c->wts[mid].w < (uintptr_t)w) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

static const cl_cuda_weight *wt_find(const cl_cuda *c, const float *w) {
  int i = wt_lower(c, w);
  return i < c->nwts && c->wts[i].w == w ? &c->wts[i] : NULL;
}

/* Forgets the weights inside [p, p + n) and frees their copies (the memory is going away,
 * and a later allocation at the same address must not find a stale copy). The stream has
 * been drained by the caller. */
static void wt_drop_range(cl_cuda *c, const void *p, size_t n) {
  int i = wt_lower(c, p), j = i;
  while (j < c->nwts && (uintptr_t)c->wts[j].w < (uintptr_t)p + n) cudaFree(c->wts[j++].lowp);
  if (j == i) return;
  memmove(&c->wts[i], &c->wts[j], (size_t)(c->nwts - j) * sizeof *c->wts);
  c->nwts -= j - i;
}

/* --- memory --- */

static int cuda_alloc(cl_backend *be, size_t nbytes, void **out, cl_error *e) {
  cl_cuda *c = (cl_cuda *)be;
  *out = NULL;
  CU_CHECK(cudaMalloc(out, nbytes ? nbytes : 256));
  if (alloc_note(c, *out, nbytes ? nbytes : 256)) {
    cudaFree(*out);
    *out = NULL;
    return fail(e, CL_ENOMEM, "cuda backend: out of host memory recording an allocation");
  }
  return CL_OK;
}

static void cuda_free(cl_backend *be, void *p) {
  cl_cuda *c = (cl_cuda *)be;
  if (!p) return;
  /* kernels queued earlier may still use p; errors surface at the next sync */
  cudaStreamSynchronize(c->stream);
  size_t n = alloc_forget(c, p);
  wt_drop_range(c, p, n ? n : 1);
  cudaFree(p);
}

/* Through the two pinned chunks: memcpy into one, queue its copy, record its event, and go
 * on with the other, so the caller may reuse or free src (even a pinned one) as soon as
 * this returns while the last chunk is still in flight; the next upload waits only for the
 * older chunk's copy. Without pinned memory, a plain copy and a wait. */
static int cuda_upload(cl_backend *be, void *dst, const void *src, size_t nbytes, cl_error *e) {
  cl_cuda *c = (cl_cuda *)be;
  if (!nbytes) return CL_OK;
  if (!c->stage_off && !c->stage[0].host) {
    for (int i = 0; i < 2 && !c->stage_off; i++)
      if (cudaMallocHost(&c->stage[i].host, STAGE_BYTES) != cudaSuccess) {
        cudaGetLastError();
        c->stage[i].host = NULL;
        c->stage_off = 1;
      }
    if (c->stage_off) {
      cudaFreeHost(c->stage[0].host);
      c->stage[0].host = NULL;
    }
  }
  if (c->stage_off) {
    CU_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyHostToDevice, c->stream));
    CU_CHECK(cudaStreamSynchronize(c->stream));
    return CL_OK;
  }
  for (size_t off = 0; off < nbytes;) {
    const size_t len = nbytes - off < STAGE_BYTES ? nbytes - off : STAGE_BYTES;
    cl_cuda_stage *st = &c->stage[c->stage_next];
    c->stage_next ^= 1;
    if (st->pending) CU_CHECK(cudaEventSynchronize(st->copied));
    st->pending = 0;
    memcpy(st->host, (const char *)src + off, len);
    CU_CHECK(cudaMemcpyAsync((char *)dst + off, st->host, len, cudaMemcpyHostToDevice, c->stream));
    CU_CHECK(cudaEventRecord(st->copied, c->stream));
    st->pending = 1;
    off += len;
  }
  return done(c, "upload", e);
}

/* Waits for the copy: the caller reads its result right after download. */
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

static void lt_plan_free(cl_lt_plan *p) {
  if (p->desc) cublasLtMatmulDescDestroy(p->desc);
  if (p->a) cublasLtMatrixLayoutDestroy(p->a);
  if (p->b) cublasLtMatrixLayoutDestroy(p->b);
  if (p->c) cublasLtMatrixLayoutDestroy(p->c);
  memset(p, 0, sizeof *p);
}

static void cuda_destroy(cl_backend *be) {
  cl_cuda *c = (cl_cuda *)be;
  if (!c) return;
  if (c->stream) cudaStreamSynchronize(c->stream);
  cl_sdpa_destroy(c->sdpa);
  for (int i = 0; i < LT_PLANS; i++) lt_plan_free(&c->lt_plans[i]);
  if (c->lt) cublasLtDestroy(c->lt);
  for (int i = 0; i < c->nwts; i++) cudaFree(c->wts[i].lowp);
  free(c->wts);
  free(c->allocs);
  cudaFree(c->lt_ws);
  cudaFree(c->xh);
  cudaFree(c->qkvh);
  cudaFree(c->oh);
  cudaFree(c->chk);
  cudaFree(c->sums);
  cudaFree(c->cols);
  staged_free(&c->idx);
  staged_free(&c->off);
  for (int i = 0; i < 2; i++) {
    if (c->stage[i].copied) {
      cudaEventSynchronize(c->stage[i].copied);
      cudaEventDestroy(c->stage[i].copied);
    }
    cudaFreeHost(c->stage[i].host);
  }
  if (c->blas) cublasDestroy(c->blas);
  if (c->stream) cudaStreamDestroy(c->stream);
  free(c);
}

/* --- setup --- */

static int cuda_set_precision(cl_backend *be, cl_precision p, cl_error *e) {
  cl_cuda *c = (cl_cuda *)be;
  if ((int)p < (int)CL_PREC_FP32 || (int)p > (int)CL_PREC_FP16)
    return fail(e, CL_EUNSUP, "cuda backend: unknown precision %d (it offers fp32, tf32, bf16, fp16)", (int)p);
  if (c->nwts > 0 && storage_kind(p) != storage_kind(be->precision))
    return fail(e, CL_EINVAL,
                "cuda backend: set_precision(%s) while %d weights are prepared for %s: choose the "
                "precision before loading the model",
                cl_precision_name(p), c->nwts, cl_precision_name(be->precision));
  BLAS_CHECK(cublasSetMathMode(c->blas, p == CL_PREC_TF32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  if (is_lowp(p)) {
    if (!c->lt) BLAS_CHECK(cublasLtCreate(&c->lt));
    if (!c->lt_ws) CU_CHECK(cudaMalloc(&c->lt_ws, LT_WORKSPACE));
    /* no cuDNN is not an error: attention then runs the fp32 kernel (the reason is kept) */
    if (c->sdpa_want && !c->sdpa && !c->sdpa_why[0])
      c->sdpa = cl_sdpa_create(c->stream, c->sdpa_why, sizeof c->sdpa_why);
  }
  be->precision = p;
  return CL_OK;
}

/* fp32/tf32: only remembered (the GEMM reads w itself). bf16/fp16: a converted copy. */
static int cuda_prepare_linear(cl_backend *be, float *w, int n, int k, cl_error *e) {
  cl_cuda *c = (cl_cuda *)be;
  if (!w || n <= 0 || k <= 0)
    return fail(e, CL_EINVAL, "cuda backend: prepare_linear of a [%d,%d] weight at %p", n, k, (void *)w);
  int i = wt_lower(c, w);
  if (i == c->nwts || c->wts[i].w != w) {
    if (c->nwts == c->wts_cap) {
      int cap = c->wts_cap ? 2 * c->wts_cap : 256;
      cl_cuda_weight *a = realloc(c->wts, (size_t)cap * sizeof *a);
      if (!a) return fail(e, CL_ENOMEM, "cuda backend: out of host memory preparing weights");
      c->wts = a, c->wts_cap = cap;
    }
    memmove(&c->wts[i + 1], &c->wts[i], (size_t)(c->nwts - i) * sizeof *c->wts);
    c->wts[i] = (cl_cuda_weight){w, n, k, NULL};
    c->nwts++;
  }
  cl_cuda_weight *wt = &c->wts[i];
  if (wt->lowp && (wt->n != n || wt->k != k)) { /* prepared again with another shape */
    CU_CHECK(cudaStreamSynchronize(c->stream));
    CU_CHECK(cudaFree(wt->lowp));
    wt->lowp = NULL;
  }
  wt->n = n, wt->k = k;
  if (!is_lowp(be->precision)) return CL_OK;
  const size_t cnt = (size_t)n * k;
  if (!wt->lowp) CU_CHECK(cudaMalloc(&wt->lowp, cnt * 2));
  /* same stream as the upload that filled w, so it converts the uploaded values */
  CU_CHECK(cl_cuda_to_lowp(wt->lowp, w, cnt, be->precision == CL_PREC_BF16, c->stream));
  return done(c, "prepare_linear", e);
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

/* The cached cuBLASLt plan for y^T [n,m] = w [n,k] . x^T [k,m] with bf16/fp16 inputs and fp32
 * C = D = y; *out is NULL when cuBLASLt has no algorithm for it (remembered, with the
 * reason). The algorithm depends on pointer alignments, so they are part of the key. */
static int lt_plan(cl_cuda *c, int m, int n, int k, int bf16, int bias, const float *y, const float *b,
                   cl_lt_plan **out, cl_error *e) {
  const uint32_t ay = ptr_align(y), ab = bias ? ptr_align(b) : 0;
  cl_lt_plan *p = NULL;
  *out = NULL;
  for (int i = 0; i < LT_PLANS; i++) {
    cl_lt_plan *q = &c->lt_plans[i];
    if (q->used && q->m == m && q->n == n && q->k == k && q->bf16 == bf16 && q->bias == bias &&
        q->align_y == ay && q->align_b == ab) {
      q->used = ++c->lt_tick;
      *out = q->ok ? q : NULL;
      return CL_OK;
    }
    if (!p || q->used < p->used) p = q; /* an empty slot, or the least recently used */
  }
  lt_plan_free(p); /* leaves p->used = 0 until it is complete */
  const cudaDataType_t dt = bf16 ? CUDA_R_16BF : CUDA_R_16F;
  const cublasOperation_t opT = CUBLAS_OP_T, opN = CUBLAS_OP_N;
  BLAS_CHECK(cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  BLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &opT, sizeof opT));
  BLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &opN, sizeof opN));
  if (bias) { /* fp32 bias of D's row count n, D's type by default */
    const uint32_t epi = CUBLASLT_EPILOGUE_BIAS;
    BLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
    BLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &b, sizeof b));
  }
  /* w row-major [n,k] is column-major k x n (op T); x row-major [m,k] is column-major k x m */
  BLAS_CHECK(cublasLtMatrixLayoutCreate(&p->a, dt, (uint64_t)k, (uint64_t)n, k));
  BLAS_CHECK(cublasLtMatrixLayoutCreate(&p->b, dt, (uint64_t)k, (uint64_t)m, k));
  BLAS_CHECK(cublasLtMatrixLayoutCreate(&p->c, CUDA_R_32F, (uint64_t)n, (uint64_t)m, n));
  cublasLtMatmulPreference_t pref = NULL;
  BLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  const uint64_t wsz = LT_WORKSPACE;
  const uint32_t a256 = 256; /* A and B are our own cudaMalloc buffers */
  const char *call = "cublasLtMatmulPreferenceSetAttribute(CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES)";
  cublasStatus_t st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsz, sizeof wsz);
  if (st == CUBLAS_STATUS_SUCCESS) {
    call = "cublasLtMatmulPreferenceSetAttribute(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_*)";
    st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &a256, sizeof a256);
  }
  if (st == CUBLAS_STATUS_SUCCESS)
    st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &a256, sizeof a256);
  if (st == CUBLAS_STATUS_SUCCESS)
    st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &ay, sizeof ay);
  if (st == CUBLAS_STATUS_SUCCESS)
    st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &ay, sizeof ay);
  if (st != CUBLAS_STATUS_SUCCESS) {
    cublasLtMatmulPreferenceDestroy(pref);
    return fail(e, CL_EDEVICE, "cuda backend: %s failed: %s at %s:%d", call, cublasGetStatusString(st),
                __FILE__, __LINE__);
  }
  cublasLtMatmulHeuristicResult_t res;
  int nres = 0;
  memset(&res, 0, sizeof res);
  st = cublasLtMatmulAlgoGetHeuristic(c->lt, p->desc, p->a, p->b, p->c, p->c, pref, 1, &res, &nres);
  cublasLtMatmulPreferenceDestroy(pref);
  p->m = m, p->n = n, p->k = k, p->bf16 = bf16, p->bias = bias, p->align_y = ay, p->align_b = ab;
  p->ok = st == CUBLAS_STATUS_SUCCESS && nres > 0 && res.state == CUBLAS_STATUS_SUCCESS && res.workspaceSize <= LT_WORKSPACE;
  if (p->ok) {
    p->algo = res.algo;
  } else { /* not an error: this shape runs the fp32 sgemm */
    c->lt_noalgo++;
    snprintf(c->lt_why, sizeof c->lt_why, "m=%d n=%d k=%d: cublasLtMatmulAlgoGetHeuristic: %s, %d results", m, n,
             k, cublasGetStatusString(st), nres);
  }
  p->used = ++c->lt_tick;
  *out = p->ok ? p : NULL;
  return CL_OK;
}

/* linear() on a prepared weight in bf16/fp16 mode; *ran = 0 when cuBLASLt has no algorithm. */
static int linear_lowp(cl_cuda *c, float *y, const float *x, const cl_cuda_weight *wt, const float *b, int m,
                       int k, int n, cl_act act, int accumulate, int *ran, cl_error *e) {
  const int bf16 = c->be.precision == CL_PREC_BF16;
  /* the epilogue takes the bias only when nothing comes between (our GELU is after it) and
   * the vector is 16-byte aligned (cuBLASLt kernels load it in vectors) */
  const int bias = b && act == CL_ACT_NONE && ptr_align(b) >= 16;
  cl_lt_plan *p = NULL;
  *ran = 0;
  int rc = lt_plan(c, m, n, k, bf16, bias, y, b, &p, e);
  if (rc || !p) return rc;
  rc = grow(c, &c->xh, &c->xh_cap, (size_t)m * k * 2, e);
  if (rc) return rc;
  CU_CHECK(cl_cuda_to_lowp(c->xh, x, (size_t)m * k, bf16, c->stream));
  if (bias) BLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &b, sizeof b));
  const float one = 1.0f, beta = accumulate ? 1.0f : 0.0f; /* fp32 scale type */
  BLAS_CHECK(cublasLtMatmul(c->lt, p->desc, &one, wt->lowp, p->a, c->xh, p->b, &beta, y, p->c, y, p->c, &p->algo,
                            c->lt_ws, LT_WORKSPACE, c->stream));
  if ((b && !bias) || act != CL_ACT_NONE)
    CU_CHECK(cl_cuda_bias_act(y, bias ? NULL : b, (size_t)m * n, n, (int)act, c->stream));
  *ran = 1;
  return CL_OK;
}

static int cuda_linear(cl_backend *be, float *y, const float *x, const float *w, const float *b,
                       int m, int k, int n, cl_act act, int accumulate, cl_error *e) {
  cl_cuda *c = (cl_cuda *)be;
  if (dims_ok("linear", m, k, n, e) || check_act(act, e)) return CL_EINVAL;
  if (m == 0) return CL_OK;
  if (is_lowp(be->precision)) {
    const cl_cuda_weight *wt = wt_find(c, w);
    if (wt && wt->lowp && wt->n == n && wt->k == k) {
      int ran = 0, rc = linear_lowp(c, y, x, wt, b, m, k, n, act, accumulate, &ran, e);
      if (rc) return rc;
      if (ran) return done(c, "linear", e);
    }
  }
  const float one = 1.0f, beta = accumulate ? 1.0f : 0.0f;
  /* y^T [n,m] = w [n,k] . x^T [k,m]; w row-major [n,k] is column-major [k,n], op T */
  BLAS_CHECK(cublasSgemm(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, &one, w, k, x, k, &beta, y, n));
  if (b || act != CL_ACT_NONE) CU_CHECK(cl_cuda_bias_act(y, b, (size_t)m * n, n, (int)act, c->stream));
  return done(c, "linear", e);
}

/* The final projection: fp32 in every mode (one small GEMM per batch). */
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

/* cuDNN's fused attention for sequences of one length (bf16/fp16 mode, CLADE_CUDNN_SDPA=1).
 * *ran = 0 leaves the work to the fp32 kernel: lengths differ, head width unsupported, or
 * cuDNN refused the shape. A shape's first cuDNN result is compared with the fp32 kernel's
 * (which is what out then holds) and the plan is used from then on only if they agree to
 * SDPA_TOL: a graph cuDNN accepts but computes differently is never used silently. */
static int attention_cudnn(cl_cuda *c, float *out, const float *qkv, const int32_t *seq_off,
                           const int32_t *off_dev, int nseq, int lmax, int width, int heads, int causal,
                           int *ran, cl_error *e) {
  const int dh = width / heads, len = seq_off[1] - seq_off[0];
  *ran = 0;
  for (int s = 1; s < nseq; s++)
    if (seq_off[s + 1] - seq_off[s] != len) return CL_OK;
  /* 16-byte aligned head rows and widths cuDNN's flash engines take on every GPU */
  if (dh % 8 || dh > 128 || width % 8) return CL_OK;
  const int bf16 = c->be.precision == CL_PREC_BF16;
  cl_sdpa_plan *p = cl_sdpa_get(c->sdpa, nseq, len, heads, dh, causal, bf16);
  if (!p || p->state == CL_SDPA_REFUSED) return CL_OK;
  const size_t rows = (size_t)nseq * len, first = (size_t)seq_off[0], nout = rows * width;
  int rc = grow(c, &c->qkvh, &c->qkvh_cap, nout * 3 * 2, e);
  if (!rc) rc = grow(c, &c->oh, &c->oh_cap, nout * 2, e);
  if (rc) return rc;
  CU_CHECK(cl_cuda_to_lowp(c->qkvh, qkv + first * 3 * width, nout * 3, bf16, c->stream));
  if (cl_sdpa_run(c->sdpa, p, c->oh, c->qkvh)) return CL_OK; /* refused now (reason kept) */
  if (p->state == CL_SDPA_VERIFIED) {
    CU_CHECK(cl_cuda_from_lowp(out + first * width, c->oh, nout, bf16, c->stream));
    *ran = 1;
    return CL_OK;
  }
  rc = grow(c, (void **)&c->chk, &c->chk_cap, nout * sizeof(float), e);
  if (rc) return rc;
  if (!c->sums) CU_CHECK(cudaMalloc((void **)&c->sums, 2 * sizeof(double)));
  CU_CHECK(cl_cuda_from_lowp(c->chk, c->oh, nout, bf16, c->stream));
  CU_CHECK(cl_cuda_attention(out, qkv, off_dev, nseq, lmax, width, heads, causal, c->stream));
  CU_CHECK(cudaMemsetAsync(c->sums, 0, 2 * sizeof(double), c->stream));
  CU_CHECK(cl_cuda_diff_norms(c->chk, out + first * width, nout, c->sums, c->stream));
  double h[2] = {0, 0};
  CU_CHECK(cudaMemcpyAsync(h, c->sums, sizeof h, cudaMemcpyDeviceToHost, c->stream));
  CU_CHECK(cudaStreamSynchronize(c->stream));
  const double rel = h[1] > 0 ? sqrt(h[0] / h[1]) : (h[0] > 0 ? INFINITY : 0.0);
  if (rel <= SDPA_TOL) {
    p->state = CL_SDPA_VERIFIED;
    if (rel > c->sdpa_rel) c->sdpa_rel = rel;
  } else {
    char why[200];
    snprintf(why, sizeof why,
             "nseq=%d len=%d heads=%d dh=%d causal=%d: first result differs from the fp32 kernel by %.3g "
             "(relative, tolerance %.0e)",
             nseq, len, heads, dh, causal, rel, SDPA_TOL);
    cl_sdpa_reject(c->sdpa, p, why);
  }
  *ran = 1; /* out holds the fp32 kernel's result either way */
  return CL_OK;
}

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
  if (c->sdpa && is_lowp(be->precision)) {
    int ran = 0, rc = attention_cudnn(c, out, qkv, seq_off, c->off.dev, nseq, lmax, width, heads, causal, &ran, e);
    if (rc) return rc;
    if (ran) return done(c, "attention", e);
  }
  CU_CHECK(cl_cuda_attention(out, qkv, c->off.dev, nseq, lmax, width, heads, causal, c->stream));
  return done(c, "attention", e);
}

/* --- ViT stem --- */

/* im2col + one fp32 GEMM in every mode: the conv weight is never prepared (the model prepares
 * only nn.Linear weights), and the stem is a small part of the work. */
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
  snprintf(c->be.device, sizeof c->be.device, "%.120s (sm_%d%d)", prop.name, prop.major, prop.minor);
  const char *dbg = getenv("CLADE_CUDA_SYNC");
  c->debug_sync = dbg && *dbg && strcmp(dbg, "0") != 0;
  const char *sdpa = getenv("CLADE_CUDNN_SDPA");
  c->sdpa_want = sdpa && *sdpa && strcmp(sdpa, "0") != 0;
  CU_CHECK(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
  CU_CHECK(cudaEventCreateWithFlags(&c->idx.copied, cudaEventDisableTiming));
  CU_CHECK(cudaEventCreateWithFlags(&c->off.copied, cudaEventDisableTiming));
  CU_CHECK(cudaEventCreateWithFlags(&c->stage[0].copied, cudaEventDisableTiming));
  CU_CHECK(cudaEventCreateWithFlags(&c->stage[1].copied, cudaEventDisableTiming));
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
  be->precision = CL_PREC_FP32;
  be->set_precision = cuda_set_precision;
  be->prepare_linear = cuda_prepare_linear;
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

static int cuda_probe(char *why, size_t n) {
  if (cl_cuda_device_count() > 0) return 1;
  snprintf(why, n, "no GPU found");
  return 0;
}

static int cuda_offers(cl_precision p) { return p >= CL_PREC_FP32 && p < CL_PREC_COUNT; }

static void cuda_describe(char *buf, size_t n) {
  if (cl_cuda_device_name(0, buf, n)) snprintf(buf, n, "unknown GPU");
}

/* The registry's entry (tensor/cl_backends.h). */
const cl_backend_desc cl_backend_cuda_desc = {.name = "cuda", .title = "the GPU", .probe = cuda_probe,
                                              .offers = cuda_offers, .describe = cuda_describe,
                                              .create = cl_backend_cuda_create};

int cl_backend_cuda_set_tf32(cl_backend *be, int on, cl_error *e) {
  if (!be || be->set_precision != cuda_set_precision)
    return fail(e, CL_EINVAL, "cl_backend_cuda_set_tf32: not a CUDA backend");
  return cuda_set_precision(be, on ? CL_PREC_TF32 : CL_PREC_FP32, e);
}

const char *cl_backend_cuda_device_name(const cl_backend *be) {
  return be && !strcmp(be->name, "cuda") ? ((const cl_cuda *)be)->device_name : "";
}

const char *cl_backend_cuda_path_info(cl_backend *be) {
  if (!be || strcmp(be->name, "cuda") != 0) return "";
  cl_cuda *c = (cl_cuda *)be;
  const char *prec = cl_precision_name(be->precision);
  size_t k = 0, n = sizeof c->info;
  if (!is_lowp(be->precision)) {
    snprintf(c->info, n, "%s: cuBLAS sgemm%s, fp32 attention kernel", prec,
             be->precision == CL_PREC_TF32 ? " with TF32 tensor cores" : " (TF32 off)");
    return c->info;
  }
  int nlow = 0;
  for (int i = 0; i < c->nwts; i++) nlow += c->wts[i].lowp != NULL;
  k += (size_t)snprintf(c->info + k, n - k, "%s: %d linear weights in %s, cuBLASLt with fp32 accumulation", prec,
                        nlow, prec);
  if (c->lt_noalgo && k < n)
    k += (size_t)snprintf(c->info + k, n - k, " (%d shapes without an algorithm ran fp32 sgemm; last %s)",
                          c->lt_noalgo, c->lt_why);
  if (k >= n) return c->info;
  if (!c->sdpa_want) {
    snprintf(c->info + k, n - k, "; attention: fp32 kernel (cuDNN SDPA off; CLADE_CUDNN_SDPA=1 enables it)");
  } else if (!c->sdpa) {
    snprintf(c->info + k, n - k, "; attention: fp32 kernel (no cuDNN: %s)", c->sdpa_why);
  } else {
    int ok = 0, refused = 0;
    const char *why = "";
    cl_sdpa_counts(c->sdpa, &ok, &refused, &why);
    snprintf(c->info + k, n - k,
             "; attention: cuDNN SDPA for %d shapes (max rel diff %.2g vs fp32), fp32 kernel for %d refused%s%s "
             "and for unequal lengths",
             ok, c->sdpa_rel, refused, why[0] ? ": " : "", why);
  }
  return c->info;
}
