/* libFuzzer: a dataset manifest (CSV through libcsv, columns, classes, line numbers). */
#include <string.h>

#include "fuzz_util.h"
#include "io/cl_manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  cl_manifest m;
  cl_error e;
  if (cl_manifest_load(fuzz_file(data, size), &m, &e) != CL_OK) return 0;
  for (int i = 0; i < m.n_rows; i++)
    if (m.rows[i].cls < 0 || m.rows[i].cls >= m.n_classes || !m.rows[i].filepath) abort();
  if (m.n_classes) (void)cl_manifest_find_class(&m, m.classes[m.n_classes - 1].label);
  cl_manifest_free(&m);
  return 0;
}
