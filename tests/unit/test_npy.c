/* cl_npy: the writer produces np.save's exact bytes (headers below copied from NumPy 1.24's
 * np.save output), the reader maps them back, and every file it does not understand is
 * refused with an error naming the file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cl_test.h"
#include "io/cl_npy.h"

static char dir[] = "/tmp/cl_npy_XXXXXX";

static const char *tpath(const char *name) {
  static char buf[256];
  snprintf(buf, sizeof buf, "%s/%s", dir, name);
  return buf;
}

static void write_raw(const char *name, const char *hdr, size_t hlen_field_override, int version,
                      const void *data, size_t nd) {
  FILE *f = fopen(tpath(name), "wb");
  size_t hl = strlen(hdr);
  size_t field = hlen_field_override ? hlen_field_override : hl;
  unsigned char pre[12] = {0x93, 'N', 'U', 'M', 'P', 'Y', (unsigned char)version, 0,
                           (unsigned char)field, (unsigned char)(field >> 8), (unsigned char)(field >> 16),
                           (unsigned char)(field >> 24)};
  fwrite(pre, 1, version == 1 ? 10 : 12, f);
  fwrite(hdr, 1, hl, f);
  if (nd) fwrite(data, 1, nd, f);
  fclose(f);
}

/* A header padded so the data starts at byte 64 (version 1: 10 + 54). */
static const char *pad54(const char *dict) {
  static char buf[128];
  snprintf(buf, sizeof buf, "%-53s\n", dict);
  return buf;
}

static void expect_refused(const char *name, const char *why) {
  cl_npy a;
  cl_error e = {0};
  int rc = cl_npy_open(tpath(name), &a, &e);
  CHECK_MSG(rc != CL_OK, "%s was accepted", name);
  CHECK_MSG(strstr(e.msg, tpath(name)) != NULL, "error does not name the file: %s", e.msg);
  CHECK_MSG(strstr(e.msg, why) != NULL, "error for %s lacks '%s': %s", name, why, e.msg);
  CHECK(a.map_addr == NULL);
}

int main(void) {
  if (!mkdtemp(dir)) return 1;
  cl_error e = {0};

  /* writer: np.save's bytes for float32 (2, 3) and float16 (5,) and int64 () */
  float v[6] = {1, -2, 3.5f, 4, 5e-8f, -6e7f};
  cl_tensor t = {.dtype = CL_F32, .ndim = 2, .shape = {2, 3}, .data = v};
  CHECK_OK(cl_npy_save(tpath("a.npy"), &t, &e), e);
  char *buf;
  size_t len;
  CHECK_OK(cl_read_file(tpath("a.npy"), &buf, &len, &e), e);
  char expect[129];
  snprintf(expect, sizeof expect, "\x93NUMPY\x01%cv%c%-117s\n", 0, 0,
           "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }");
  CHECK_EQ_INT(len, 128 + sizeof v);
  CHECK(memcmp(buf, expect, 128) == 0);
  CHECK(memcmp(buf + 128, v, sizeof v) == 0);
  free(buf);
  uint16_t h[5] = {0x3c00, 0, 0x8000, 0x7bff, 1};
  t = (cl_tensor){.dtype = CL_F16, .ndim = 1, .shape = {5}, .data = h};
  CHECK_OK(cl_npy_save(tpath("h.npy"), &t, &e), e);
  CHECK_OK(cl_read_file(tpath("h.npy"), &buf, &len, &e), e);
  snprintf(expect, sizeof expect, "\x93NUMPY\x01%cv%c%-117s\n", 0, 0,
           "{'descr': '<f2', 'fortran_order': False, 'shape': (5,), }");
  CHECK(len == 138 && memcmp(buf, expect, 128) == 0);
  free(buf);
  int64_t s = -7;
  t = (cl_tensor){.dtype = CL_I64, .ndim = 0, .data = &s};
  CHECK_OK(cl_npy_save(tpath("s.npy"), &t, &e), e);
  t = (cl_tensor){.dtype = CL_BF16, .ndim = 1, .shape = {5}, .data = h};
  CHECK(cl_npy_save(tpath("b.npy"), &t, &e) == CL_EUNSUP);

  /* reader: round trips */
  cl_npy a;
  CHECK_OK(cl_npy_open(tpath("a.npy"), &a, &e), e);
  CHECK(a.t.dtype == CL_F32 && a.t.ndim == 2 && a.t.shape[0] == 2 && a.t.shape[1] == 3);
  CHECK(memcmp(a.t.data, v, sizeof v) == 0);
  CHECK((const char *)a.t.data == (const char *)a.map_addr + 128); /* mapped, not copied */
  cl_npy_close(&a);
  CHECK_OK(cl_npy_open(tpath("h.npy"), &a, &e), e);
  CHECK(a.t.dtype == CL_F16 && a.t.ndim == 1 && a.t.shape[0] == 5 && memcmp(a.t.data, h, sizeof h) == 0);
  cl_npy_close(&a);
  CHECK_OK(cl_npy_open(tpath("s.npy"), &a, &e), e);
  CHECK(a.t.dtype == CL_I64 && a.t.ndim == 0 && *(int64_t *)a.t.data == -7);
  cl_npy_close(&a);
  /* version 2.0 and 3.0 headers, double quotes, no trailing comma, '|u1' and '<u1' spellings */
  unsigned char bytes[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  char hdr2[128];
  snprintf(hdr2, sizeof hdr2, "%-51s\n", "{\"descr\": \"|u1\", \"fortran_order\": False, \"shape\": (2,4)}");
  write_raw("v2.npy", hdr2, 0, 2, bytes, 8);
  CHECK_OK(cl_npy_open(tpath("v2.npy"), &a, &e), e);
  CHECK(a.t.dtype == CL_U8 && a.t.ndim == 2 && a.t.shape[1] == 4 && ((unsigned char *)a.t.data)[7] == 8);
  cl_npy_close(&a);
  write_raw("v3.npy", pad54("{'descr': '<u1', 'fortran_order': False, 'shape': (8,), }"), 0, 3, bytes, 8);
  /* version 3 has a 4-byte length, so 54 header bytes start at 12: data at 66, fine for bytes */
  CHECK_OK(cl_npy_open(tpath("v3.npy"), &a, &e), e);
  CHECK(a.t.dtype == CL_U8 && a.t.shape[0] == 8);
  cl_npy_close(&a);

  /* refusals, each naming the file */
  float z[8] = {0};
  write_raw("be.npy", pad54("{'descr': '>f4', 'fortran_order': False, 'shape': (4,), }"), 0, 1, z, 16);
  expect_refused("be.npy", "'>f4' is not read");
  write_raw("obj.npy", pad54("{'descr': '|O', 'fortran_order': False, 'shape': (4,), }"), 0, 1, z, 16);
  expect_refused("obj.npy", "'|O' is not read");
  write_raw("rec.npy", pad54("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (4,), }"), 0, 1, z, 16);
  expect_refused("rec.npy", "structured");
  write_raw("fo.npy", pad54("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }"), 0, 1, z, 16);
  expect_refused("fo.npy", "Fortran order");
  write_raw("trunc.npy", pad54("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }"), 0, 1, z, 12);
  expect_refused("trunc.npy", "(truncated)");
  write_raw("long.npy", pad54("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }"), 0, 1, z, 20);
  expect_refused("long.npy", "needs 16 data bytes, the file has 20");
  write_raw("hover.npy", pad54("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }"), 60000, 1, z, 16);
  expect_refused("hover.npy", "runs past the end");
  write_raw("key.npy", pad54("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), 'x': 1}"), 0, 1, z, 16);
  expect_refused("key.npy", "unknown key 'x'");
  write_raw("noshape.npy", pad54("{'descr': '<f4', 'fortran_order': False}"), 0, 1, z, 16);
  expect_refused("noshape.npy", "lacks 'shape'");
  write_raw("big.npy", pad54("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904,), }"), 0, 1,
            z, 16);
  expect_refused("big.npy", "too large");
  write_raw("ovf.npy", pad54("{'descr': '<f8', 'fortran_order': False, 'shape': (3037000500, 3037000500), }"), 0, 1,
            z, 16);
  expect_refused("ovf.npy", "overflows");
  write_raw("neg.npy", pad54("{'descr': '<f4', 'fortran_order': False, 'shape': (-4,), }"), 0, 1, z, 16);
  expect_refused("neg.npy", "other than integers");
  write_raw("v9.npy", pad54("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }"), 0, 9, z, 16);
  expect_refused("v9.npy", "version 9.0");
  write_raw("unal.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), } \n", 0, 1, z, 16);
  expect_refused("unal.npy", "not aligned");
  FILE *f = fopen(tpath("magic.npy"), "wb");
  fputs("PK\x03\x04 this is not numpy at all", f);
  fclose(f);
  expect_refused("magic.npy", "magic");
  f = fopen(tpath("short.npy"), "wb");
  fputs("\x93NUMPY", f);
  fclose(f);
  expect_refused("short.npy", "truncated");
  cl_npy_close(&a); /* closing a closed array is harmless */

  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  return cl_test_done("test_npy");
}
