/* libFuzzer: a PyTorch zip checkpoint (the zip directory, byteorder, data.pkl through the
 * restricted pickle VM, storages and strided views) through cl_ckpt_load, which also sends
 * safetensors-looking input to cl_st_load. */
#include "fuzz_util.h"
#include "io/cl_ckpt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  cl_tmap m;
  cl_error e;
  if (cl_ckpt_load(fuzz_file(data, size), &m, &e) != CL_OK) return 0;
  volatile unsigned char sink = 0;
  for (int i = 0; i < m.n; i++) { /* every byte of every tensor must be readable */
    const unsigned char *p = m.v[i].t.data;
    size_t nb = cl_tensor_nbytes(&m.v[i].t);
    for (size_t k = 0; k < nb; k++) sink ^= p[k];
  }
  (void)sink;
  cl_tmap_free(&m);
  return 0;
}
