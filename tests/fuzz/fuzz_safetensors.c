/* libFuzzer: a safetensors file (header JSON, shapes, offsets) through cl_st_load; every
 * tensor it accepts must lie inside the file and convert to F32. */
#include <string.h>

#include "fuzz_util.h"
#include "io/cl_safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  cl_tmap m;
  cl_error e;
  if (cl_st_load(fuzz_file(data, size), &m, &e) != CL_OK) return 0;
  const char *lo = m.map_addr, *hi = lo + m.map_len;
  for (int i = 0; i < m.n; i++) {
    const cl_tensor *t = &m.v[i].t;
    size_t nb = cl_tensor_nbytes(t);
    if ((const char *)t->data < lo || nb > (size_t)(hi - (const char *)t->data)) abort();
    int64_t n = cl_tensor_numel(t);
    if (n <= 4096) {
      float out[4096];
      cl_to_f32(t->dtype, t->data, out, n, &e);
    }
  }
  cl_tmap_free(&m);
  return 0;
}
