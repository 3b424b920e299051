/* cl_ops_cpu_impl: what the CPU backend's source files share (not a public header).
 * Owns: the CPU backend struct and its workspace, grown on demand and reused. */
#ifndef CL_OPS_CPU_IMPL_H
#define CL_OPS_CPU_IMPL_H
#include "cl_ops.h"

/* A weight that prepare_linear rewrote in place into the GEMM's panel layout: fp32 panels,
 * or pairs of bf16 (in the first half of the buffer) when the precision is bf16. */
typedef struct cl_cpu_packed {
  const float *w;
  int n, k;
  int bf16;
} cl_cpu_packed;

typedef struct cl_cpu {
  cl_backend be; /* be.impl points back here */
  float *ws;     /* workspace: im2col columns, attention scratch */
  size_t ws_cap; /* in floats */
  cl_cpu_packed *packed; /* sorted by w, so linear() finds its weight by binary search */
  int npacked, packed_cap;
} cl_cpu;

/* The workspace with room for n floats (contents not kept when it grows). */
float *cl_cpu_workspace(cl_cpu *c, size_t n, cl_error *e);

/* c[m,n] = a[m,k] op(b) + beta c, op(b) = b^T with b [n,k] (transb) or b [k,n]; dense
 * row-major. Splits across the OpenMP threads unless called inside a parallel region. */
void cl_cpu_sgemm(int transb, int m, int n, int k, const float *a, const float *b, float beta,
                  float *c);

int cl_cpu_attention(cl_backend *be, float *out, const float *qkv, const int32_t *seq_off,
                     int nseq, int width, int heads, int causal, cl_error *e);

/* im2col for the ViT stem: one row of channels*patch*patch pixels per patch, columns in
 * conv1.weight's (c, ky, kx) order, images one after another; with cls_rows each image starts
 * with a zero row (its class token), so one GEMM writes the whole [n, 1+g*g, width] block. */
void cl_cpu_im2col(float *cols, const float *pixels, int n, int channels, int image, int patch, int cls_rows);

/* Row-wise softmax of p [len, len] in place; causal: keys j > i get probability exactly 0. */
void cl_cpu_softmax_rows(float *p, int len, int causal);

/* Fills the backward and optimizer entries (cl_grad_cpu.c). */
void cl_cpu_grad_register(cl_backend *be);

#endif
