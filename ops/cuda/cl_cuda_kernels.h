/* cl_cuda_kernels: launchers for the CUDA backend's own kernels (not a public header).
 * Owns: nothing; each launcher queues one kernel on stream and returns the launch status
 * (cudaGetLastError), so the caller can name the kernel in its error. Sizes are validated
 * by the caller (ops/cuda/cl_ops_cuda.c); every size here is > 0. Plain C interface so
 * that the vtable glue can stay a .c file. */
#ifndef CL_CUDA_KERNELS_H
#define CL_CUDA_KERNELS_H
#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Head widths the attention kernel handles (each lane owns up to 4 output columns), and
 * the query rows one of its blocks takes (a sequence of L rows is ceil(L/16) blocks). */
#define CL_CUDA_ATTN_MAX_DH 128
#define CL_CUDA_ATTN_QROWS 16

/* y[i] = act(y[i] + b[i % ncols]) for i < total; b may be NULL (then ncols is unused);
 * act is a cl_act value. Bias + activation after a GEMM, and `activate` itself. */
cudaError_t cl_cuda_bias_act(float *y, const float *b, size_t total, int ncols, int act,
                             cudaStream_t s);
/* y[i,:] = LayerNorm(x[i,:]) * g + b for i < m; y may equal x. */
cudaError_t cl_cuda_layernorm(float *y, const float *x, const float *g, const float *b, int m,
                              int n, float eps, cudaStream_t s);
/* y[i] += x[i]. */
cudaError_t cl_cuda_add(float *y, const float *x, size_t n, cudaStream_t s);
/* y[i,:] (+)= table[idx[i],:], idx a device array of n valid row indices. */
cudaError_t cl_cuda_gather_rows(float *y, const float *table, const int32_t *idx, int n,
                                int width, int accumulate, cudaStream_t s);
/* cols[n*seq, channels*patch*patch]: one row per token of each image, row 0 (the class
 * token's) zero, columns in (c, ky, kx) order; seq = 1 + (image/patch)^2. */
cudaError_t cl_cuda_im2col(float *cols, const float *pixels, int n, int channels, int image,
                           int patch, cudaStream_t s);
/* x[n*seq, width]: row 0 of each image = cls + pos[0], other rows += pos[r]. */
cudaError_t cl_cuda_cls_pos(float *x, const float *cls, const float *pos, int n, int seq,
                            int width, cudaStream_t s);
/* Multi-head attention over packed sequences (ops/cl_ops.h); seq_off is a device array of
 * nseq + 1 offsets, lmax the longest sequence, dh = width / heads <= CL_CUDA_ATTN_MAX_DH. */
cudaError_t cl_cuda_attention(float *out, const float *qkv, const int32_t *seq_off, int nseq,
                              int lmax, int width, int heads, int causal, cudaStream_t s);

/* --- bf16/fp16 modes (cl_cuda_lowp.cu) --- */
/* dst[i] = src[i] rounded to nearest even: bf16 when bf16 is set, else fp16. */
cudaError_t cl_cuda_to_lowp(void *dst, const float *src, size_t n, int bf16, cudaStream_t s);
/* dst[i] = (float)src[i], src bf16 when bf16 is set, else fp16. */
cudaError_t cl_cuda_from_lowp(float *dst, const void *src, size_t n, int bf16, cudaStream_t s);
/* sums[0] += sum (a[i] - ref[i])^2, sums[1] += sum ref[i]^2 (sums: device, zeroed by the caller). */
cudaError_t cl_cuda_diff_norms(const float *a, const float *ref, size_t n, double *sums, cudaStream_t s);

#ifdef __cplusplus
}
#endif
#endif
