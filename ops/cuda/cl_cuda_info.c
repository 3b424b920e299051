/* cl_cuda_info: versions and devices, through the runtime API only (works with no GPU). */
#include "cl_cuda.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>
#include <stdio.h>

static void ver(int v, int *maj, int *min) {
  *maj = v / 1000;
  *min = (v % 1000) / 10;
}

int cl_cuda_device_count(void) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError(); /* clear the sticky "no device" error */
    return 0;
  }
  return n;
}

int cl_cuda_device_name(int i, char *buf, size_t n) {
  struct cudaDeviceProp p;
  if (cudaGetDeviceProperties(&p, i) != cudaSuccess) {
    cudaGetLastError();
    return -1;
  }
  snprintf(buf, n, "%.120s (sm_%d%d)", p.name, p.major, p.minor);
  return 0;
}

void cl_cuda_versions(char *buf, size_t n) {
  size_t k = 0;
  int rt = 0, drv = 0, a, b;
  cudaRuntimeGetVersion(&rt);
  ver(rt, &a, &b);
  k += (size_t)snprintf(buf + k, n - k, "  CUDA runtime   %d.%d\n", a, b);
  if (cudaDriverGetVersion(&drv) == cudaSuccess && drv > 0) {
    ver(drv, &a, &b);
    k += (size_t)snprintf(buf + k, n - k, "  CUDA driver    %d.%d\n", a, b);
  } else {
    k += (size_t)snprintf(buf + k, n - k, "  CUDA driver    none installed\n");
  }
  int cmaj = 0, cmin = 0, cpat = 0;
  cublasGetProperty(MAJOR_VERSION, &cmaj);
  cublasGetProperty(MINOR_VERSION, &cmin);
  cublasGetProperty(PATCH_LEVEL, &cpat);
  k += (size_t)snprintf(buf + k, n - k, "  cuBLAS         %d.%d.%d\n", cmaj, cmin, cpat);
  size_t dv = cudnnGetVersion();
  k += (size_t)snprintf(buf + k, n - k, "  cuDNN          %zu.%zu.%zu\n", dv / 10000, (dv % 10000) / 100, dv % 100);
  int nd = cl_cuda_device_count();
  if (nd == 0) {
    k += (size_t)snprintf(buf + k, n - k, "  GPU            no GPU found\n");
  }
  for (int i = 0; i < nd && k < n; i++) {
    struct cudaDeviceProp p;
    if (cudaGetDeviceProperties(&p, i) == cudaSuccess)
      k += (size_t)snprintf(buf + k, n - k, "  GPU %d          %s (sm_%d%d, %.1f GiB)\n", i, p.name, p.major,
                            p.minor, (double)p.totalGlobalMem / (1u << 30));
  }
}
