/* libFuzzer: a .npy file (magic, version, header dict, data length) through cl_npy_open;
 * every array it accepts must lie inside the file and convert to F32. */
#include <string.h>

#include "fuzz_util.h"
#include "io/cl_npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  cl_npy a;
  cl_error e;
  if (cl_npy_open(fuzz_file(data, size), &a, &e) != CL_OK) return 0;
  const char *lo = a.map_addr, *hi = lo + a.map_len;
  size_t nb = cl_tensor_nbytes(&a.t);
  if ((const char *)a.t.data < lo || nb > (size_t)(hi - (const char *)a.t.data)) abort();
  int64_t n = cl_tensor_numel(&a.t);
  if (n <= 4096) {
    float out[4096];
    cl_to_f32(a.t.dtype, a.t.data, out, n, &e);
  }
  cl_npy_close(&a);
  return 0;
}
