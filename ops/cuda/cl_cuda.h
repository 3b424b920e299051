/* cl_cuda: the CUDA backend's entry points that the rest of clade may call without
 * including any CUDA header. Owns: device discovery and library version reporting. */
#ifndef CL_CUDA_H
#define CL_CUDA_H
#include <stddef.h>

/* Append "name version" lines for the CUDA runtime, driver, cuBLAS and cuDNN, and the
 * devices found ("no GPU found" when none) into buf. */
void cl_cuda_versions(char *buf, size_t n);
/* Number of usable CUDA devices (0 when no driver or no GPU). */
int cl_cuda_device_count(void);

#endif
