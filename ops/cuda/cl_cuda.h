/* cl_cuda: the CUDA backend's entry points that the rest of clade may call without
 * including any CUDA header. Owns: device discovery, library version reporting and the
 * constructor of the CUDA cl_backend (ops/cl_ops.h). */
#ifndef CL_CUDA_H
#define CL_CUDA_H
#include <stddef.h>

#include "cl_ops.h"

/* Append "name version" lines for the CUDA runtime, driver, cuBLAS and cuDNN, and the
 * devices found ("no GPU found" when none) into buf. */
void cl_cuda_versions(char *buf, size_t n);
/* Number of usable CUDA devices (0 when no driver or no GPU). */
int cl_cuda_device_count(void);
/* "NVIDIA H100 80GB HBM3 (sm_90)" for device i, as the backend fills be->device; -1 when
 * there is no such device. */
int cl_cuda_device_name(int i, char *buf, size_t n);

/* The CUDA backend on the current device (device 0 unless the caller chose another):
 * device memory, one stream, cuBLAS GEMMs in true fp32 (TF32 off), own kernels for the
 * rest; be->device names the GPU ("NVIDIA H100 80GB HBM3 (sm_90)"). be->set_precision
 * offers fp32, tf32, bf16 and fp16 (ops/cl_ops.h). In bf16/fp16 mode attention may use
 * cuDNN's fused SDPA: only with CLADE_CUDNN_SDPA=1 in the environment when the backend is
 * created, as it could not be tested where it was written. CL_EDEVICE, with the failing
 * call named, when there is no usable GPU. */
int cl_backend_cuda_create(cl_backend **out, cl_error *e);
/* Let fp32 GEMMs use TF32 tensor cores (on = 1) or not (0, the default): set_precision with
 * CL_PREC_TF32 or CL_PREC_FP32. be must be a CUDA backend. */
int cl_backend_cuda_set_tf32(cl_backend *be, int on, cl_error *e);
/* The device's name ("NVIDIA H100 80GB HBM3"), for recording where results came from. */
const char *cl_backend_cuda_device_name(const cl_backend *be);
/* One line on what the GEMMs and attention run on in the current precision, with any
 * fallbacks and their reasons (cuBLASLt shapes without an algorithm, cuDNN SDPA shapes
 * refused), for logs and benchmark provenance. Valid until the next call. */
const char *cl_backend_cuda_path_info(cl_backend *be);

#endif
