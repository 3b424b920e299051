/* cl_test_tensor: fixture helpers for tests that read safetensors references. */
#ifndef CL_TEST_TENSOR_H
#define CL_TEST_TENSOR_H
#include "cl_test.h"
#include "io/cl_safetensors.h"
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

/* A float tensor as malloc'd F32 (any float dtype); a conversion error ends the test. */
static inline float *cl_test_f32_of(const cl_tensor *t) {
  float *p = cl_xmalloc((size_t)cl_tensor_numel(t) * sizeof *p);
  cl_error e = {0};
  if (cl_to_f32(t->dtype, t->data, p, cl_tensor_numel(t), &e)) {
    fprintf(stderr, "%s\n", e.msg);
    exit(1);
  }
  return p;
}

/* Token ids (I64 or I32) as malloc'd int32. */
static inline int32_t *cl_test_ids_of(const cl_tensor *t) {
  int64_t n = cl_tensor_numel(t);
  int32_t *p = cl_xmalloc((size_t)(n > 0 ? n : 1) * sizeof *p);
  for (int64_t i = 0; i < n; i++)
    p[i] = t->dtype == CL_I64 ? (int32_t)cl_test_i64(t, i) : ((const int32_t *)t->data)[i];
  return p;
}

/* The tiny open_clip model's fixtures: its weights, preprocess.safetensors' pixels [ni, 3,
 * 224, 224], open_clip's outputs (outs[0] QuickGELU, outs[1] GELU) and their token ids
 * [nt, 77]. A missing fixture ends the test. */
typedef struct cl_test_tiny {
  cl_tmap w, pp, outs[2];
  const float *pixels;
  int32_t *ids;
  int ni, nt;
} cl_test_tiny;

static inline void cl_test_tiny_load(cl_test_tiny *t) {
  cl_error e = {0};
  if (cl_st_load(cl_test_fix("tiny.safetensors"), &t->w, &e) ||
      cl_st_load(cl_test_fix("preprocess.safetensors"), &t->pp, &e) ||
      cl_st_load(cl_test_fix("tiny_outputs.safetensors"), &t->outs[0], &e) ||
      cl_st_load(cl_test_fix("tiny_gelu_outputs.safetensors"), &t->outs[1], &e)) {
    fprintf(stderr, "cannot load the fixtures: %s\n", e.msg);
    exit(1);
  }
  const cl_tensor *pv = cl_test_need(&t->pp, "pixel_values"), *idt = cl_test_need(&t->outs[0], "input_ids");
  t->ni = (int)pv->shape[0], t->nt = (int)idt->shape[0];
  CHECK(pv->dtype == CL_F32 && pv->ndim == 4 && pv->shape[1] == 3 && pv->shape[2] == 224);
  CHECK(idt->ndim == 2 && idt->shape[1] == 77);
  t->pixels = pv->data;
  t->ids = cl_test_ids_of(idt);
}

static inline void cl_test_tiny_free(cl_test_tiny *t) {
  free(t->ids);
  cl_tmap_free(&t->w), cl_tmap_free(&t->pp), cl_tmap_free(&t->outs[0]), cl_tmap_free(&t->outs[1]);
}

#endif
