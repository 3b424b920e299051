/* cl_cuda_kernels: the CUDA backend's own element-wise and row kernels: bias + activation,
 * LayerNorm, residual add, row gathers, and the ViT stem's im2col and class/position add.
 * Plain fp32 with the same formulas as the CPU backend (ops/cpu/cl_ops_cpu.c): erff for
 * the exact GELU, expf for QuickGELU, 1/sqrtf for LayerNorm (no fast-math intrinsics). */
#include <math.h>

#include "cl_cuda_kernels.h"
#include "cl_ops.h"

#define THREADS 256
#define FULL_MASK 0xffffffffu

/* Blocks for a grid-stride loop over n items: enough to fill any GPU, never more than
 * there are items. */
static unsigned grid_for(size_t n) {
  size_t b = (n + THREADS - 1) / THREADS;
  return b > 65536 ? 65536u : (unsigned)b;
}

__device__ __forceinline__ float act_apply(float x, int act) {
  if (act == CL_ACT_GELU) return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
  if (act == CL_ACT_QUICKGELU) return x * (1.0f / (1.0f + expf(-1.702f * x)));
  return x;
}

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(FULL_MASK, v, o);
  return v;
}

/* The sum of v over the block (blockDim.x a multiple of 32), returned to every thread.
 * red holds one partial per warp; the first barrier keeps a previous call's readers
 * from seeing this call's partials. */
__device__ float block_sum(float v, float *red) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nw = blockDim.x / 32;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) red[warp] = v;
  __syncthreads();
  return warp_sum(lane < nw ? red[lane] : 0.0f);
}

/* --- element-wise --- */

__global__ void bias_act_kernel(float *y, const float *b, size_t total, int ncols, int act) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total;
       i += (size_t)gridDim.x * blockDim.x) {
    float v = y[i];
    if (b) v += b[i % ncols];
    y[i] = act_apply(v, act);
  }
}

extern "C" cudaError_t cl_cuda_bias_act(float *y, const float *b, size_t total, int ncols, int act,
                                        cudaStream_t s) {
  bias_act_kernel<<<grid_for(total), THREADS, 0, s>>>(y, b, total, ncols, act);
  return cudaGetLastError();
}

__global__ void add_kernel(float *y, const float *x, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    y[i] += x[i];
}

extern "C" cudaError_t cl_cuda_add(float *y, const float *x, size_t n, cudaStream_t s) {
  add_kernel<<<grid_for(n), THREADS, 0, s>>>(y, x, n);
  return cudaGetLastError();
}

/* --- rows --- */

/* One block per row, two passes over the row (mean, then the biased variance of the
 * centred values): as accurate as the CPU's double sums to fp32 rounding. */
__global__ void layernorm_kernel(float *y, const float *x, const float *g, const float *b, int n,
                                 float eps) {
  __shared__ float red[32];
  const float *xr = x + (size_t)blockIdx.x * n;
  float *yr = y + (size_t)blockIdx.x * n;
  float s = 0.0f;
  for (int j = threadIdx.x; j < n; j += blockDim.x) s += xr[j];
  const float mean = block_sum(s, red) / n;
  float v = 0.0f;
  for (int j = threadIdx.x; j < n; j += blockDim.x) {
    float d = xr[j] - mean;
    v += d * d;
  }
  const float rstd = 1.0f / sqrtf(block_sum(v, red) / n + eps);
  /* each thread rewrites only the elements it read, after both reductions: y == x is fine */
  for (int j = threadIdx.x; j < n; j += blockDim.x) yr[j] = (xr[j] - mean) * rstd * g[j] + b[j];
}

extern "C" cudaError_t cl_cuda_layernorm(float *y, const float *x, const float *g, const float *b,
                                         int m, int n, float eps, cudaStream_t s) {
  int threads = n >= THREADS ? THREADS : (n + 31) / 32 * 32;
  layernorm_kernel<<<m, threads, 0, s>>>(y, x, g, b, n, eps);
  return cudaGetLastError();
}

__global__ void gather_rows_kernel(float *y, const float *table, const int32_t *idx, int width,
                                   int accumulate) {
  const float *src = table + (size_t)idx[blockIdx.x] * width;
  float *dst = y + (size_t)blockIdx.x * width;
  for (int j = threadIdx.x; j < width; j += blockDim.x) dst[j] = accumulate ? dst[j] + src[j] : src[j];
}

extern "C" cudaError_t cl_cuda_gather_rows(float *y, const float *table, const int32_t *idx, int n,
                                           int width, int accumulate, cudaStream_t s) {
  int threads = width >= THREADS ? THREADS : (width + 31) / 32 * 32;
  gather_rows_kernel<<<n, threads, 0, s>>>(y, table, idx, width, accumulate);
  return cudaGetLastError();
}

/* --- ViT stem --- */

/* One thread per element of cols: consecutive threads read consecutive kx, so loads of
 * a patch row are coalesced. */
__global__ void im2col_kernel(float *cols, const float *pixels, size_t total, int channels,
                              int image, int patch, int g) {
  const int kk = channels * patch * patch, seq = 1 + g * g;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total;
       i += (size_t)gridDim.x * blockDim.x) {
    const size_t row = i / kk;
    const int col = (int)(i % kk), img = (int)(row / seq), r = (int)(row % seq);
    float v = 0.0f;
    if (r > 0) {
      const int py = (r - 1) / g, px = (r - 1) % g;
      const int ch = col / (patch * patch), ky = (col / patch) % patch, kx = col % patch;
      v = pixels[(((size_t)img * channels + ch) * image + (size_t)py * patch + ky) * image +
                 (size_t)px * patch + kx];
    }
    cols[i] = v;
  }
}

extern "C" cudaError_t cl_cuda_im2col(float *cols, const float *pixels, int n, int channels, int image,
                                      int patch, cudaStream_t s) {
  const int g = image / patch;
  const size_t total = (size_t)n * (1 + g * g) * channels * patch * patch;
  im2col_kernel<<<grid_for(total), THREADS, 0, s>>>(cols, pixels, total, channels, image, patch, g);
  return cudaGetLastError();
}

/* torch: cat([cls + 0, conv]) + pos; the GEMM left row 0 of each image at 0. */
__global__ void cls_pos_kernel(float *x, const float *cls, const float *pos, size_t total, int seq,
                               int width) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total;
       i += (size_t)gridDim.x * blockDim.x) {
    const int j = (int)(i % width), r = (int)((i / width) % seq);
    x[i] = r == 0 ? cls[j] + pos[j] : x[i] + pos[(size_t)r * width + j];
  }
}

extern "C" cudaError_t cl_cuda_cls_pos(float *x, const float *cls, const float *pos, int n, int seq,
                                       int width, cudaStream_t s) {
  const size_t total = (size_t)n * seq * width;
  cls_pos_kernel<<<grid_for(total), THREADS, 0, s>>>(x, cls, pos, total, seq, width);
  return cudaGetLastError();
}
