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

/* Entry i of an I64 tensor, an F64 scalar: read by memcpy, since a safetensors file aligns
 * its tensors only to their start offsets (an I64 may sit at a 4-byte boundary). */
static inline int64_t cl_test_i64(const cl_tensor *t, int64_t i) {
  int64_t v;
  memcpy(&v, (const char *)t->data + i * 8, 8);
  return v;
}
static inline double cl_test_f64(const cl_tensor *t) {
  double v;
  memcpy(&v, t->data, 8);
  return v;
}
static inline float cl_test_f32(const cl_tensor *t) {
  float v;
  memcpy(&v, t->data, 4);
  return v;
}

/* ../shared/fixtures/<rel>, in a buffer reused by the next call. */
static inline const char *cl_test_fix(const char *rel) {
  static char buf[4096];
  return cl_test_fixture(buf, sizeof buf, rel);
}

#endif
