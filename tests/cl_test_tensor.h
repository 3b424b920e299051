/* cl_test_tensor: fixture helpers for tests that read safetensors references. */
#ifndef CL_TEST_TENSOR_H
#define CL_TEST_TENSOR_H
#include "cl_test.h"
#include "tensor/cl_tensor.h"

/* The tensor key of a fixture map; a missing key ends the test (the fixture is wrong). */
static inline const cl_tensor *cl_test_need(const cl_tmap *m, const char *key) {
  const cl_tensor *t = cl_tmap_get(m, key);
  if (!t) {
    fprintf(stderr, "fixture lacks %s\n", key);
    exit(1);
  }
  return t;
}

/* ../shared/fixtures/<rel>, in a buffer reused by the next call. */
static inline const char *cl_test_fix(const char *rel) {
  static char buf[4096];
  return cl_test_fixture(buf, sizeof buf, rel);
}

#endif
