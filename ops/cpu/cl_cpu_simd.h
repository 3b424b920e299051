/* cl_cpu_simd: the CPU backend's AVX-512 kernels (not a public header): a GEMM with the
 * bias, activation and residual add fused into its epilogue, vector exp/erf activations and
 * the attention kernel. Each is used only when cl_cpu_avx512() says the CPU has AVX-512
 * (F, DQ, BW, VL); the backend falls back to OpenBLAS and scalar loops otherwise.
 * Accuracy: plain fp32 with FMA, expf and erff to about 1 ulp, so results stay within
 * rounding of PyTorch's. */
#ifndef CL_CPU_SIMD_H
#define CL_CPU_SIMD_H
#include <stddef.h>
#include <stdint.h>

#include "cl_ops.h"

/* 1 when the AVX-512 kernels can run here (checked once), unless CLADE_CPU_KERNELS=blas
 * (the OpenBLAS + scalar path, for comparisons). */
int cl_cpu_avx512(void);

/* C[m,n] = act(A[m,k] op(B) + bias (+ C when accumulate)); op(B) = B^T with B [n,k] (transb 1)
 * or B [k,n] (transb 0), or B^T prepacked by cl_cpu_pack_b_x512 (transb CL_CPU_B_PACKED, ldb
 * unused); leading dimensions lda/ldb/ldc in floats; bias [n] or NULL. Runs on the calling
 * thread only. */
#define CL_CPU_B_PACKED 2
/* Packs a weight w [n,k] (n a multiple of CL_CPU_PANEL) into the GEMM's panel layout
 * [n/32][k][32] (the same n*k floats; dst must not overlap w): each GEMM then reads its
 * weights as contiguous streams instead of transposing them again on every call. */
#define CL_CPU_PANEL 32
void cl_cpu_pack_b_x512(const float *w, int n, int k, float *dst);
void cl_cpu_gemm_x512(int transb, int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                      float *c, int ldc, const float *bias, cl_act act, int accumulate);
/* The same on a team of nt OpenMP threads (call it outside a parallel region). */
void cl_cpu_gemm_x512_mt(int transb, int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                         float *c, int ldc, const float *bias, cl_act act, int accumulate, int nt);
/* bf16 GEMMs (AVX512_BF16's vdpbf16ps): inputs rounded to bf16, fp32 sums and epilogue.
 * cl_cpu_bf16: 1 when they can run here (AVX-512 kernels on and AVX512_BF16). */
int cl_cpu_bf16(void);
/* Packs w [n,k] (n a multiple of 32) into [n/32][(k+1)/2][32] pairs of bf16 (k even in the
 * low half, k odd zero-padded): n * ((k+1)/2) words, half the bytes of w. */
void cl_cpu_pack_b_bf16_x512(const float *w, int n, int k, uint32_t *dst);
/* C[m,n] = act(A[m,k] B^T + bias (+ C when accumulate)) with B packed by the above, on nt
 * OpenMP threads (1 inside a parallel region). */
void cl_cpu_gemm_bf16_x512(int m, int n, int k, const float *a, int lda, const uint32_t *b, float *c, int ldc,
                           const float *bias, cl_act act, int accumulate, int nt);
/* x[i] = act(x[i]) for i < n, on the calling thread. */
void cl_cpu_act_x512(float *x, size_t n, cl_act act);
/* dx[i] = dy[i] * act'(x[i]) for GELU or QuickGELU, on the calling thread (dx may equal dy). */
void cl_cpu_act_grad_x512(float *dx, const float *dy, const float *x, size_t n, cl_act act);
/* A softmax's exponentials in place: x[i] = exp(x[i] - m) for i < n (0 where x[i] - m < -87,
 * where expf is subnormal or 0); returns their sum, accumulated in double. Calling thread. */
double cl_cpu_expsum_x512(float *x, size_t n, float m);
/* One row of LayerNorm (biased variance), y may equal x. */
void cl_cpu_layernorm_x512(float *y, const float *x, const float *g, const float *b, int n, float eps);
/* One head of one sequence: out[i, :dh] (row stride ldo) = softmax(q k^T * scale) v over
 * len rows of q, k, v (row stride ldq each), keys j > i masked when causal. scratch: at least
 * cl_cpu_attn_x512_scratch(len, dh) floats, 64-byte aligned. */
size_t cl_cpu_attn_x512_scratch(int len, int dh);
void cl_cpu_attn_x512(float *out, int ldo, const float *q, const float *k, const float *v, int ldq, int len,
                      int dh, int causal, float scale, float *scratch);

#endif
