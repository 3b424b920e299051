/* Tensor basics and the safetensors round trip, including error paths. */
#include <stdint.h>
#include <unistd.h>

#include "cl_test.h"
#include "io/cl_safetensors.h"

int main(void) {
  /* half conversions: exact values, subnormals, infinities, round-to-even */
  CHECK(cl_half_to_float(0x3c00) == 1.0f);
  CHECK(cl_half_to_float(0xc000) == -2.0f);
  CHECK(cl_half_to_float(0x0001) == 5.9604644775390625e-08f);
  CHECK(isinf(cl_half_to_float(0x7c00)));
  CHECK(cl_bf16_to_float(0x3f80) == 1.0f);
  for (uint32_t h = 0; h < 0x7c00; h++) /* every finite positive half survives a round trip */
    if (cl_float_to_half(cl_half_to_float((uint16_t)h)) != h) {
      CHECK_MSG(0, "half 0x%04x does not round-trip", h);
      break;
    }

  cl_tmap m;
  cl_error err = {0};
  cl_tmap_init(&m);
  float a[6] = {1, 2, 3, 4, 5, 6};
  int64_t sh[2] = {2, 3};
  cl_tmap_put_copy(&m, "a", CL_F32, 2, sh, a);
  int32_t ids[3] = {49406, 320, 49407};
  int64_t sh1[1] = {3};
  cl_tmap_put_copy(&m, "ids", CL_I32, 1, sh1, ids);
  float s = 2.5f;
  cl_tmap_put_copy(&m, "scalar", CL_F32, 0, NULL, &s);
  char path[] = "/tmp/cl_test_tensorXXXXXX";
  int fd = mkstemp(path);
  close(fd);
  CHECK_OK(cl_st_save(path, &m, "{\"k\":\"v\"}", &err), err);
  cl_tmap_free(&m);

  cl_tmap r;
  CHECK_OK(cl_st_load(path, &r, &err), err);
  const cl_tensor *t = cl_tmap_get(&r, "a");
  CHECK(t && t->dtype == CL_F32 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3);
  CHECK(t && ((float *)t->data)[5] == 6.0f);
  t = cl_tmap_get(&r, "ids");
  CHECK(t && t->dtype == CL_I32 && ((int32_t *)t->data)[2] == 49407);
  t = cl_tmap_get(&r, "scalar");
  CHECK(t && t->ndim == 0 && *(float *)t->data == 2.5f);
  CHECK(r.metadata_json && strstr(r.metadata_json, "\"k\""));
  cl_tmap_free(&r);

  /* a truncated file must be refused with its name in the message */
  CHECK(truncate(path, 60) == 0);
  int rc = cl_st_load(path, &r, &err);
  CHECK(rc != 0);
  CHECK_MSG(strstr(err.msg, path) != NULL, "message lacks the path: %s", err.msg);
  CHECK(cl_st_load("/nonexistent/x.safetensors", &r, &err) == CL_EIO);
  unlink(path);
  return cl_test_done("test_tensor");
}
