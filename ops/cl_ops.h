/* cl_ops: the backend interface every model runs on, a vtable of batch-level kernels.
 * Owns: the cl_backend contract. A backend owns its buffers (which may be device memory:
 * never dereference them on the host unless host_memory is set), its workspace and its
 * threads. Model code calls only these entry points and never a BLAS directly.
 *
 * Conventions: every matrix is row-major and densely packed; m, k, n are row/inner/column
 * counts; "rows" are tokens. Index arrays (idx, seq_off) are HOST arrays: they are small and
 * the CPU needs them anyway; a device backend copies them into its workspace.
 * Every compute entry may run asynchronously; errors surface through its return code or at
 * the next download/sync. A backend is used by one thread at a time. */
#ifndef CL_OPS_H
#define CL_OPS_H
#include <stddef.h>
#include <stdint.h>

#include "core/cl_core.h"

typedef enum {
  CL_ACT_NONE = 0,
  CL_ACT_GELU,      /* exact: 0.5 x (1 + erf(x / sqrt 2)) */
  CL_ACT_QUICKGELU  /* x * sigmoid(1.702 x) */
} cl_act;

/* What GEMM (and attention) inputs are rounded to; accumulation is fp32 in every mode (never
 * fp16 accumulation). fp32 is the default and the only mode recorded results should come
 * from unless the user asks; the others trade accuracy for speed on tensor cores. */
typedef enum {
  CL_PREC_FP32 = 0, /* true fp32 (on CUDA: TF32 off) */
  CL_PREC_TF32,     /* fp32 storage, GEMM inputs rounded to TF32 (CUDA tensor cores) */
  CL_PREC_BF16,     /* bf16 weights and GEMM (CUDA: and attention) inputs, fp32 sums and outputs */
  CL_PREC_FP16      /* fp16 likewise */
} cl_precision;
#define CL_PREC_COUNT 4

static inline const char *cl_precision_name(cl_precision p) {
  return p == CL_PREC_TF32 ? "tf32" : p == CL_PREC_BF16 ? "bf16" : p == CL_PREC_FP16 ? "fp16" : "fp32";
}
/* "fp32", "tf32", "bf16", "fp16" -> 0 and *out; anything else -> -1. */
static inline int cl_precision_parse(const char *s, cl_precision *out) {
  static const char *names[] = {"fp32", "tf32", "bf16", "fp16"};
  for (int i = 0; s && i < 4; i++) {
    const char *a = s, *b = names[i];
    while (*a && *a == *b) a++, b++;
    if (!*a && !*b) return *out = (cl_precision)i, 0;
  }
  return -1;
}

/* The fp32 scalars of one AdamW step, computed once in double as PyTorch does and rounded:
 * decay = 1 - lr*weight_decay (1 outside the decay group), beta1, 1-beta1, beta2, 1-beta2,
 * step_size = lr / (1 - beta1^t), bc2_sqrt = sqrt(1 - beta2^t), eps. */
typedef struct cl_adamw_args {
  float decay, beta1, one_minus_beta1, beta2, one_minus_beta2, step_size, bc2_sqrt, eps;
} cl_adamw_args;

typedef struct cl_backend cl_backend;
struct cl_backend {
  const char *name;  /* "cpu", "cuda" */
  int host_memory;   /* 1: alloc returns plain host memory, so callers may write it directly */
  void *impl;        /* the backend's own state (workspace, handles); kernels reach it only
                        through this, so a wrapper may copy the vtable and override entries */
  cl_precision precision; /* set by set_precision; CL_PREC_FP32 at creation */
  char device[160];       /* what computes, for provenance: "NVIDIA H100 80GB HBM3",
                             "cpu: Intel Xeon ..., 2 threads, OpenBLAS SkylakeX" */

  /* --- setup (optional entries: NULL means "not needed" / "fp32 only") --- */
  /* Choose the precision before any weight is prepared. CL_EUNSUP, saying what the
   * backend offers, when it lacks p. */
  int (*set_precision)(cl_backend *be, cl_precision p, cl_error *e);
  /* Called by the model once for each nn.Linear weight w [n,k] (already uploaded), before
   * any linear() with it. The backend may rewrite w in place into its own layout of the same
   * size (the CPU packs GEMM panels) or keep a converted copy (bf16 on a GPU); from then on
   * w is valid only as linear()'s w argument with the same n and k. linear() also accepts
   * weights never prepared (tests, one-off GEMMs). */
  int (*prepare_linear)(cl_backend *be, float *w, int n, int k, cl_error *e);

  /* --- memory --- */
  int (*alloc)(cl_backend *be, size_t nbytes, void **out, cl_error *e);
  void (*free)(cl_backend *be, void *p); /* NULL is fine */
  int (*upload)(cl_backend *be, void *dst, const void *src_host, size_t nbytes, cl_error *e);
  int (*download)(cl_backend *be, void *dst_host, const void *src, size_t nbytes, cl_error *e);
  /* Wait for all queued work; reports any error a queued kernel hit. */
  int (*sync)(cl_backend *be, cl_error *e);
  void (*destroy)(cl_backend *be); /* frees the workspace and the backend itself */

  /* --- compute --- */
  /* nn.Linear: y[m,n] (+)= x[m,k] w[n,k]^T + b[n] (b may be NULL), then act. With
   * accumulate the result is added to y (residual connections; use act NONE then). */
  int (*linear)(cl_backend *be, float *y, const float *x, const float *w, const float *b,
                int m, int k, int n, cl_act act, int accumulate, cl_error *e);
  /* y[m,n] = x[m,k] p[k,n] (open_clip's `x @ proj`). */
  int (*matmul)(cl_backend *be, float *y, const float *x, const float *p, int m, int k, int n,
                cl_error *e);
  /* Row-wise LayerNorm of x[m,n] with biased variance; y may equal x. */
  int (*layernorm)(cl_backend *be, float *y, const float *x, const float *g, const float *b,
                   int m, int n, float eps, cl_error *e);
  /* x[n] = act(x[n]) in place. */
  int (*activate)(cl_backend *be, float *x, size_t n, cl_act act, cl_error *e);
  /* y[n] += x[n]. */
  int (*add)(cl_backend *be, float *y, const float *x, size_t n, cl_error *e);
  /* y[i,:] (+)= table[idx[i],:] for i < n; table has table_rows rows of width floats.
   * Token embeddings, positional embeddings, pooling a token per sequence. */
  int (*gather_rows)(cl_backend *be, float *y, const float *table, int table_rows,
                     const int32_t *idx, int n, int width, int accumulate, cl_error *e);
  /* Multi-head self-attention over packed sequences: sequence s holds rows
   * [seq_off[s], seq_off[s+1]) of qkv [rows, 3*width] (q | k | v, heads of width/heads
   * columns each) and of out [rows, width]. Per head softmax(q k^T / sqrt(dh)) v, with keys
   * j > i masked when causal. out must not overlap qkv. */
  int (*attention)(cl_backend *be, float *out, const float *qkv, const int32_t *seq_off, int nseq,
                   int width, int heads, int causal, cl_error *e);
  /* ViT stem: pixels [n,channels,image,image] -> x [n, 1+g*g, width] with g = image/patch:
   * row 0 of each image = cls + pos[0]; row 1+(py*g+px) = conv(patch, w [width,channels,
   * patch,patch], no bias) + pos[1+...]. Done as im2col + one GEMM over the batch. */
  int (*patch_embed)(cl_backend *be, float *x, const float *pixels, const float *w,
                     const float *cls, const float *pos, int n, int channels, int image,
                     int patch, int width, cl_error *e);

  /* --- backward (training; NULL where a backend has no training kernels) ---
   * One entry per forward op above. Parameter gradients (dw, db, dg, dp, dcls, dpos, dtable)
   * are always ADDED to (the trainer zeroes them once per step); an input gradient dx is
   * written, or added when accumulate is set (residual streams). A NULL gradient pointer
   * skips that gradient's work. Weights are plain row-major here, never prepared. */
  /* linear (act NONE): dx[m,k] (+)= dy[m,n] w[n,k]; dw[n,k] += dy^T x; db[n] += column sums of dy. */
  int (*linear_backward)(cl_backend *be, float *dx, float *dw, float *db, const float *dy, const float *x,
                         const float *w, int m, int k, int n, int accumulate, cl_error *e);
  /* matmul: dx[m,k] (+)= dy[m,n] p[k,n]^T; dp[k,n] += x^T dy. */
  int (*matmul_backward)(cl_backend *be, float *dx, float *dp, const float *dy, const float *x, const float *p,
                         int m, int k, int n, int accumulate, cl_error *e);
  /* layernorm: the statistics are recomputed from the input x; dx (+)= d/dx, dg += sum dy*xhat,
   * db += sum dy. dx must not overlap dy or x. */
  int (*layernorm_backward)(cl_backend *be, float *dx, float *dg, float *db, const float *dy, const float *x,
                            const float *g, int m, int n, float eps, int accumulate, cl_error *e);
  /* dx[i] = dy[i] * act'(x[i]), x the activation's input; dx may equal dy. */
  int (*activate_backward)(cl_backend *be, float *dx, const float *dy, const float *x, size_t n, cl_act act,
                           cl_error *e);
  /* gather_rows backward: dtable[idx[i],:] += dy[i,:] for i < n (repeated indices add up). */
  int (*scatter_add_rows)(cl_backend *be, float *dtable, int table_rows, const int32_t *idx, const float *dy,
                          int n, int width, cl_error *e);
  /* attention backward: dqkv [rows, 3*width] (written) from dout [rows, width] and the forward's
   * qkv; the probabilities are recomputed. Same packing and masking as attention(). */
  int (*attention_backward)(cl_backend *be, float *dqkv, const float *dout, const float *qkv,
                            const int32_t *seq_off, int nseq, int width, int heads, int causal, cl_error *e);
  /* patch_embed backward from dx [n, 1+g*g, width]: dw [width,channels,patch,patch] += the conv's
   * weight gradient, dcls[width] += the sum of every image's row 0, dpos [1+g*g, width] += the
   * sum over images (no pixel gradient). */
  int (*patch_embed_backward)(cl_backend *be, float *dw, float *dcls, float *dpos, const float *dx,
                              const float *pixels, int n, int channels, int image, int patch, int width,
                              cl_error *e);

  /* dst[n] = src[n] (bytes, backend memory, no overlap); p[n] = 0 (bytes). */
  int (*copy)(cl_backend *be, void *dst, const void *src, size_t nbytes, cl_error *e);
  int (*zero)(cl_backend *be, void *p, size_t nbytes, cl_error *e);

  /* --- optimizer (training) --- */
  /* *out (host) = sum of x[i]^2 over n entries, accumulated in double. */
  int (*sumsq)(cl_backend *be, const float *x, size_t n, double *out, cl_error *e);
  /* x[n] *= s. */
  int (*scale)(cl_backend *be, float *x, size_t n, float s, cl_error *e);
  /* One AdamW step of n entries exactly as PyTorch 1.13's single-tensor AdamW (see
   * cl_adamw_args): p *= decay; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
   * p -= step_size * m / (sqrt(v) / bc2_sqrt + eps). */
  int (*adamw)(cl_backend *be, float *p, const float *g, float *m, float *v, size_t n,
               const struct cl_adamw_args *a, cl_error *e);
};

/* The CPU backend: OpenBLAS GEMMs, OpenMP threads for everything else. OpenMP is its one
 * thread pool, so creating it sets OpenBLAS to a single thread for the whole process (each
 * GEMM is split across OpenMP threads instead). */
int cl_backend_cpu_create(cl_backend **out, cl_error *e);
/* 1 when the CPU backend can compute in p here: fp32 always, bf16 where the CPU has
 * AVX512_BF16 (bf16 GEMM inputs with fp32 sums; attention, LayerNorm and the rest in fp32). */
int cl_backend_cpu_offers(cl_precision p);
/* What the CPU backend computes on, as it will fill be->device: "Intel(R) Xeon(R) ...,
 * 2 threads, AVX-512 kernels" (or "OpenBLAS <core>" where those do not run). */
void cl_backend_cpu_describe(char *buf, size_t n);
/* Settings that OpenBLAS and libgomp read only when they load, so they must be in the
 * environment at process start:
 * - OPENBLAS_CORETYPE, when OpenBLAS fell back to generic SSE3 kernels ("Prescott") on a CPU
 *   newer than itself (Debian 12's 0.3.21 on Sapphire/Emerald Rapids): GEMMs 3-4x slower.
 *   Chosen from the CPU's features (forcing a core type the CPU lacks would crash).
 * - GOMP_SPINCOUNT=20000 (about 0.3 ms of spinning), unless OMP_WAIT_POLICY or
 *   GOMP_SPINCOUNT is set. libgomp's default spins for milliseconds after each parallel region
 *   and, when cores are shared (parallel tests, other jobs), takes them from the thread doing
 *   the work: measured up to 10x slower. Not spinning at all (OMP_WAIT_POLICY=PASSIVE) puts
 *   the workers to sleep at every barrier of every GEMM: measured 12-16% fewer images/s at
 *   batch 1. A short spin bridges the gaps inside a forward pass and sleeps between them.
 * Sets what is missing and returns 1 when it set anything, so that main can re-exec itself:
 *   if (cl_backend_cpu_tune_env()) execv("/proc/self/exe", argv);  */
int cl_backend_cpu_tune_env(void);

static inline void cl_backend_destroy(cl_backend *be) {
  if (be) be->destroy(be);
}

#endif
