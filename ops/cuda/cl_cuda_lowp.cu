/* cl_cuda_lowp: conversions between fp32 and the 16-bit types the bf16/fp16 modes feed to
 * tensor cores, and the norms that compare a low-precision result with the fp32 one.
 * Rounding is to nearest even (__float2bfloat16_rn, __float2half_rn), as torch's .to(bf16). */
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "cl_cuda_kernels.h"

#define THREADS 256

static unsigned grid_for(size_t n) {
  size_t b = (n + THREADS - 1) / THREADS;
  return b > 65536 ? 65536u : (unsigned)b;
}

__device__ __forceinline__ void store_lowp(__nv_bfloat16 *d, float x) { *d = __float2bfloat16_rn(x); }
__device__ __forceinline__ void store_lowp(__half *d, float x) { *d = __float2half_rn(x); }
__device__ __forceinline__ float load_lowp(const __nv_bfloat16 *s) { return __bfloat162float(*s); }
__device__ __forceinline__ float load_lowp(const __half *s) { return __half2float(*s); }

template <typename T>
__global__ void to_lowp_kernel(T *dst, const float *src, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    store_lowp(dst + i, src[i]);
}

template <typename T>
__global__ void from_lowp_kernel(float *dst, const T *src, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    dst[i] = load_lowp(src + i);
}

extern "C" cudaError_t cl_cuda_to_lowp(void *dst, const float *src, size_t n, int bf16, cudaStream_t s) {
  if (bf16)
    to_lowp_kernel<<<grid_for(n), THREADS, 0, s>>>((__nv_bfloat16 *)dst, src, n);
  else
    to_lowp_kernel<<<grid_for(n), THREADS, 0, s>>>((__half *)dst, src, n);
  return cudaGetLastError();
}

extern "C" cudaError_t cl_cuda_from_lowp(float *dst, const void *src, size_t n, int bf16, cudaStream_t s) {
  if (bf16)
    from_lowp_kernel<<<grid_for(n), THREADS, 0, s>>>(dst, (const __nv_bfloat16 *)src, n);
  else
    from_lowp_kernel<<<grid_for(n), THREADS, 0, s>>>(dst, (const __half *)src, n);
  return cudaGetLastError();
}

/* sums[0] += sum (a - ref)^2, sums[1] += sum ref^2, in double: one partial per block, then
 * one atomic per block. Only for the one-off checks, so simplicity over speed. */
__global__ void diff_norms_kernel(const float *a, const float *ref, size_t n, double *sums) {
  __shared__ double red[2][THREADS];
  double d2 = 0, r2 = 0;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    const double d = (double)a[i] - ref[i];
    d2 += d * d;
    r2 += (double)ref[i] * ref[i];
  }
  red[0][threadIdx.x] = d2, red[1][threadIdx.x] = r2;
  __syncthreads();
  for (int o = THREADS / 2; o > 0; o >>= 1) {
    if ((int)threadIdx.x < o) {
      red[0][threadIdx.x] += red[0][threadIdx.x + o];
      red[1][threadIdx.x] += red[1][threadIdx.x + o];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    atomicAdd(&sums[0], red[0][0]);
    atomicAdd(&sums[1], red[1][0]);
  }
}

extern "C" cudaError_t cl_cuda_diff_norms(const float *a, const float *ref, size_t n, double *sums,
                                          cudaStream_t s) {
  diff_norms_kernel<<<grid_for(n), THREADS, 0, s>>>(a, ref, n, sums);
  return cudaGetLastError();
}
