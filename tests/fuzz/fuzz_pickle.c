/* libFuzzer: the restricted pickle VM on its own (data.pkl bytes), then the questions the
 * checkpoint reader asks of what it returns. */
#include "fuzz_util.h"
#include "io/cl_pickle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  cl_pt_pickle p;
  cl_error e;
  if (cl_pt_parse(data, size, &p, &e) != CL_OK) return 0;
  for (size_t i = 0; i < p.nall; i++)
    if (p.all[i]->kind == CL_PT_TENSOR) (void)cl_pt_tensor_contiguous(p.all[i]);
  (void)cl_pt_dict_get(p.root, "state_dict");
  cl_pt_free(&p);
  return 0;
}
