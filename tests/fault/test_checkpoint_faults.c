/* Bad checkpoints, built in a temp dir at test time: each must give an error that names the file
 * and the problem, and nothing may crash (CI runs this once under ASan/UBSan). Covers foreign
 * pickle globals (os.system, builtins.eval via STACK_GLOBAL), a truncated .bin, a zip without
 * data.pkl, bad memo indices, stack underflow, absurd lengths, views past their storage, missing
 * or short storage entries, big-endian files, random bytes; then every prefix of the real
 * fixture pickle and a few thousand random mutations of it through the pickle VM. */
#include <stdint.h>
#include <unistd.h>

#include "cl_test.h"
#include "io/cl_ckpt.h"
#include "io/cl_pickle.h"
#include "unit/ckpt_testutil.h"

static char tmpdir[64];

/* Load path and expect failure with a message containing the path and every given fragment. */
static void expect_fail(const char *path, int code, const char *what1, const char *what2) {
  cl_tmap m;
  cl_error err = {0};
  int rc = cl_ckpt_load(path, &m, &err);
  CHECK_MSG(rc != 0, "%s loaded (%d tensors) but should have failed with '%s'", path, m.n, what1);
  if (rc == 0) {
    cl_tmap_free(&m);
    return;
  }
  CHECK_MSG(m.n == 0 && m.nblocks == 0, "%s: map not left empty on error", path);
  if (code) CHECK_MSG(rc == code, "%s: code %d (%s), want %d: %s", path, rc, cl_strcode(rc), code, err.msg);
  CHECK_MSG(strstr(err.msg, path) != NULL, "message does not name the file: %s", err.msg);
  CHECK_MSG(strstr(err.msg, what1) != NULL, "message lacks '%s': %s", what1, err.msg);
  if (what2) CHECK_MSG(strstr(err.msg, what2) != NULL, "message lacks '%s': %s", what2, err.msg);
  printf("  ok: %s\n", err.msg);
}

static void tmp(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", tmpdir, name); }

/* A checkpoint whose data.pkl is p, plus data/0 holding 6 floats. */
static void write_pkl_zip(const char *path, const pk *p, const char *extra_name, const void *extra, size_t extra_n) {
  static const float data0[6] = {0, 1, 2, 3, 4, 5};
  ckpt_entry ents[3] = {{"x/data.pkl", p->b, p->n}, {"x/data/0", data0, sizeof data0}, {extra_name, extra, extra_n}};
  CHECK(ckpt_write_zip(path, ents, extra_name ? 3 : 2) == 0);
}

static void write_file(const char *path, const void *d, size_t n) {
  FILE *f = fopen(path, "wb");
  CHECK(f && fwrite(d, 1, n, f) == n);
  if (f) fclose(f);
}

/* {'w': tensor} around one tensor call with the given size/stride/offset on a 6-float storage. */
static void one_tensor(pk *p, long numel, long offset, int nd, const long *size, const long *stride) {
  pk_proto(p, 2);
  pk_op(p, '}');
  pk_str(p, "w");
  pk_tensor(p, "FloatStorage", "0", numel, offset, nd, size, stride);
  pk_op(p, 's');
  pk_op(p, '.');
}

static void test_foreign_globals(void) {
  char path[128];
  /* the classic: os.system('echo pwned') via GLOBAL + REDUCE, protocol 2 */
  pk p = {0};
  pk_proto(&p, 2);
  pk_global(&p, "os", "system");
  pk_str(&p, "touch /tmp/cl_ckpt_pwned");
  pk_op(&p, 0x85);
  pk_op(&p, 'R');
  pk_op(&p, '.');
  tmp(path, sizeof path, "evil.pt");
  write_pkl_zip(path, &p, NULL, NULL, 0);
  expect_fail(path, CL_EUNSUP, "pickle global 'os system' not allowed", "(offset 2)");
  CHECK_MSG(access("/tmp/cl_ckpt_pwned", F_OK) != 0, "the pickle ran a command");
  free(p.b);

  /* builtins.eval through STACK_GLOBAL after a valid tensor (protocol 4) */
  p = (pk){0};
  pk_proto(&p, 4);
  pk_op(&p, '}');
  pk_str(&p, "w");
  pk_tensor(&p, "FloatStorage", "0", 6, 0, 1, (long[]){6}, (long[]){1});
  pk_op(&p, 's');
  pk_str_(&p, "builtins", 1);
  pk_str_(&p, "eval", 1);
  size_t at = p.n;
  pk_op(&p, 0x93);
  pk_str(&p, "1+1");
  pk_op(&p, 0x85);
  pk_op(&p, 'R');
  pk_op(&p, '.');
  tmp(path, sizeof path, "evil4.pt");
  write_pkl_zip(path, &p, NULL, NULL, 0);
  char off[32];
  snprintf(off, sizeof off, "(offset %zu)", at);
  expect_fail(path, CL_EUNSUP, "pickle global 'builtins eval' not allowed", off);
  free(p.b);

  /* numpy scalars (common in some training checkpoints) are refused too */
  p = (pk){0};
  pk_proto(&p, 2);
  pk_global(&p, "numpy.core.multiarray", "scalar");
  pk_op(&p, '.');
  tmp(path, sizeof path, "numpy.pt");
  write_pkl_zip(path, &p, NULL, NULL, 0);
  expect_fail(path, CL_EUNSUP, "pickle global 'numpy.core.multiarray scalar' not allowed", NULL);
  free(p.b);

  /* an allowed global used in a way torch never does: calling a storage class */
  p = (pk){0};
  pk_proto(&p, 2);
  pk_global(&p, "torch", "FloatStorage");
  pk_op(&p, ')');
  pk_op(&p, 'R');
  pk_op(&p, '.');
  tmp(path, sizeof path, "callstorage.pt");
  write_pkl_zip(path, &p, NULL, NULL, 0);
  expect_fail(path, CL_EUNSUP, "storage class", "x/data.pkl");
  free(p.b);
}

static void test_malformed_pickles(void) {
  char path[128];
  pk p = {0};
  /* BINGET of a memo slot never filled */
  pk_proto(&p, 2);
  pk_op(&p, '}');
  pk_op(&p, 'q'); pk_op(&p, 0);
  pk_op(&p, 'h'); pk_op(&p, 7);
  pk_op(&p, '.');
  tmp(path, sizeof path, "memo.pt");
  write_pkl_zip(path, &p, NULL, NULL, 0);
  expect_fail(path, CL_EFORMAT, "bad memo index 7", "(offset 5)");
  free(p.b);

  /* LONG_BINGET far out of range, and LONG_BINPUT of an absurd index */
  p = (pk){0};
  pk_proto(&p, 2);
  pk_op(&p, 'j'); pk_u32(&p, 0xffffffffu);
  pk_op(&p, '.');
  tmp(path, sizeof path, "memo2.pt");
  write_pkl_zip(path, &p, NULL, NULL, 0);
  expect_fail(path, CL_EFORMAT, "bad memo index 4294967295", NULL);
  free(p.b);
  p = (pk){0};
  pk_proto(&p, 2);
  pk_op(&p, '}');
  pk_op(&p, 'r'); pk_u32(&p, 0x7fffffffu);
  pk_op(&p, '.');
  tmp(path, sizeof path, "memo3.pt");
  write_pkl_zip(path, &p, NULL, NULL, 0);
  expect_fail(path, CL_EFORMAT, "memo index 2147483647 out of range", NULL);
  free(p.b);

  /* stack underflow: SETITEM on an empty stack; STOP with nothing; TUPLE3 of two */
  const char *under[] = {"\x80\x02s.", "\x80\x02.", "\x80\x02KK\x87.", "\x80\x02}(K\x01u.", "\x80\x02(R."};
  for (size_t i = 0; i < sizeof under / sizeof *under; i++) {
    p = (pk){0};
    pk_raw(&p, under[i], strlen(under[i]));
    tmp(path, sizeof path, "under.pt");
    write_pkl_zip(path, &p, NULL, NULL, 0);
    expect_fail(path, CL_EFORMAT, "x/data.pkl", i == 3 ? "odd number" : "stack underflow");
    free(p.b);
  }
  /* no MARK for TUPLE; unknown opcode; no STOP; protocol 6 */
  const char *misc[][2] = {{"\x80\x02K\x01t.", "no MARK"},
                           {"\x80\x02K\x01\x8f.", "unsupported pickle opcode 0x8f"},
                           {"\x80\x02S'x'\n.", "unsupported pickle opcode 0x53 ('S')"},
                           {"\x80\x02}", "no STOP"},
                           {"\x80\x06}.", "pickle protocol 6"},
                           {"\x80\x02" "cos\nsys", "truncated"}};
  for (size_t i = 0; i < sizeof misc / sizeof *misc; i++) {
    p = (pk){0};
    pk_raw(&p, misc[i][0], strlen(misc[i][0]));
    tmp(path, sizeof path, "misc.pt");
    write_pkl_zip(path, &p, NULL, NULL, 0);
    expect_fail(path, 0, misc[i][1], "x/data.pkl");
    free(p.b);
  }
  /* absurd lengths: BINUNICODE of 4 GB, BINUNICODE8 of 2^63, LONG4 of 2 GB, FRAME of 2^60 */
  const char *lens[] = {"\x80\x02X\xf0\xff\xff\xff" "abc", "\x80\x04\x8d\x00\x00\x00\x00\x00\x00\x00\x80" "abc",
                        "\x80\x02\x8b\x00\x00\x00\x80" "ab", "\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x10}."};
  size_t lens_n[] = {10, 14, 9, 13};
  for (size_t i = 0; i < sizeof lens / sizeof *lens; i++) {
    p = (pk){0};
    pk_raw(&p, lens[i], lens_n[i]);
    tmp(path, sizeof path, "len.pt");
    write_pkl_zip(path, &p, NULL, NULL, 0);
    expect_fail(path, CL_EFORMAT, "truncated", "(offset 2)");
    free(p.b);
  }
}

static void test_bad_tensors(void) {
  char path[128];
  pk p = {0};
  /* a view reaching past its 6-element storage */
  one_tensor(&p, 6, 2, 2, (long[]){2, 3}, (long[]){3, 1});
  tmp(path, sizeof path, "past.pt");
  write_pkl_zip(path, &p, NULL, NULL, 0);
  expect_fail(path, CL_EFORMAT, "reaches element 7 of storage '0' of 6 elements", NULL);
  free(p.b);
  /* a storage claiming more elements than its entry holds */
  p = (pk){0};
  one_tensor(&p, 600, 0, 1, (long[]){600}, (long[]){1});
  tmp(path, sizeof path, "short.pt");
  write_pkl_zip(path, &p, NULL, NULL, 0);
  expect_fail(path, CL_EFORMAT, "storage entry 'x/data/0' has 24 bytes, needs 2400", "tensor 'w'");
  free(p.b);
  /* an overlapping (stride 0) view bigger than its storage */
  p = (pk){0};
  one_tensor(&p, 6, 0, 2, (long[]){1000, 6}, (long[]){0, 1});
  tmp(path, sizeof path, "expand.pt");
  write_pkl_zip(path, &p, NULL, NULL, 0);
  expect_fail(path, CL_EUNSUP, "overlapping strides", NULL);
  free(p.b);
  /* size overflow */
  p = (pk){0};
  one_tensor(&p, 6, 0, 3, (long[]){1L << 30, 1L << 30, 1L << 30}, (long[]){1, 1, 1});
  tmp(path, sizeof path, "ovf.pt");
  write_pkl_zip(path, &p, NULL, NULL, 0);
  expect_fail(path, CL_EFORMAT, "overflow", NULL);
  free(p.b);
  /* a missing storage entry */
  p = (pk){0};
  pk_proto(&p, 2);
  pk_op(&p, '}');
  pk_str(&p, "w");
  pk_tensor(&p, "FloatStorage", "9", 1, 0, 0, NULL, NULL);
  pk_op(&p, 's');
  pk_op(&p, '.');
  tmp(path, sizeof path, "missing.pt");
  write_pkl_zip(path, &p, NULL, NULL, 0);
  expect_fail(path, CL_EFORMAT, "storage entry 'x/data/9' is missing", NULL);
  free(p.b);
  /* a storage key that tries to leave the folder */
  p = (pk){0};
  pk_proto(&p, 2);
  pk_op(&p, '}');
  pk_str(&p, "w");
  pk_tensor(&p, "FloatStorage", "../../etc/passwd", 1, 0, 0, NULL, NULL);
  pk_op(&p, 's');
  pk_op(&p, '.');
  tmp(path, sizeof path, "key.pt");
  write_pkl_zip(path, &p, NULL, NULL, 0);
  expect_fail(path, CL_EFORMAT, "bad storage key", NULL);
  free(p.b);
  /* a non-tensor value in the state dict; a list as the root */
  p = (pk){0};
  pk_raw(&p, "\x80\x02}X\x01\x00\x00\x00wK\x05s.", 13);
  tmp(path, sizeof path, "nontensor.pt");
  write_pkl_zip(path, &p, NULL, NULL, 0);
  expect_fail(path, CL_EUNSUP, "key 'w' is a int, not a tensor", NULL);
  free(p.b);
  p = (pk){0};
  pk_raw(&p, "\x80\x02].", 4);
  tmp(path, sizeof path, "list.pt");
  write_pkl_zip(path, &p, NULL, NULL, 0);
  expect_fail(path, CL_EFORMAT, "holds a list, not a dict", NULL);
  free(p.b);
  /* big-endian */
  p = (pk){0};
  one_tensor(&p, 6, 0, 1, (long[]){6}, (long[]){1});
  tmp(path, sizeof path, "big.pt");
  write_pkl_zip(path, &p, "x/byteorder", "big", 3);
  expect_fail(path, CL_EUNSUP, "big-endian", NULL);
  /* ... while "little" loads fine (so the cases above fail for their own reason) */
  tmp(path, sizeof path, "little.pt");
  write_pkl_zip(path, &p, "x/byteorder", "little", 6);
  cl_tmap m;
  cl_error err = {0};
  CHECK_OK(cl_ckpt_load(path, &m, &err), err);
  CHECK_EQ_INT(m.n, 1);
  cl_tmap_free(&m);
  /* two top folders with a data.pkl */
  tmp(path, sizeof path, "two.pt");
  write_pkl_zip(path, &p, "y/data.pkl", p.b, p.n);
  expect_fail(path, CL_EFORMAT, "several top folders", NULL);
  free(p.b);
}

static void test_containers(const char *fixture) {
  char path[128];
  /* a truncated .bin: the first 1000 bytes of the fixture */
  char *buf = NULL;
  size_t n = 0;
  cl_error err = {0};
  CHECK_OK(cl_read_file(fixture, &buf, &n, &err), err);
  tmp(path, sizeof path, "truncated.bin");
  write_file(path, buf, n < 1000 ? n : 1000);
  expect_fail(path, CL_EFORMAT, "zip", NULL);
  /* ... and cut just before the end of the central directory */
  tmp(path, sizeof path, "truncated2.bin");
  write_file(path, buf, n - 30);
  expect_fail(path, 0, "zip", NULL);
  free(buf);
  /* a zip without data.pkl */
  ckpt_entry ents[] = {{"x/version", "3\n", 2}, {"x/data/0", "abcd", 4}};
  tmp(path, sizeof path, "nopkl.pt");
  CHECK(ckpt_write_zip(path, ents, 2) == 0);
  expect_fail(path, CL_EFORMAT, "without a <folder>/data.pkl", NULL);
  /* data.pkl deeper than one folder does not count */
  ckpt_entry deep[] = {{"a/b/data.pkl", "\x80\x02}.", 4}};
  tmp(path, sizeof path, "deep.pt");
  CHECK(ckpt_write_zip(path, deep, 1) == 0);
  expect_fail(path, CL_EFORMAT, "without a <folder>/data.pkl", NULL);
  /* random bytes, an empty file, a short file, a legacy pickle, a missing file */
  unsigned char rnd[4096];
  uint64_t s = 0x9e3779b97f4a7c15ull;
  for (size_t i = 0; i < sizeof rnd; i++) {
    s ^= s << 13; s ^= s >> 7; s ^= s << 17;
    rnd[i] = (unsigned char)s;
  }
  rnd[0] = 0x17; /* not P, not a pickle */
  rnd[8] = 'x';  /* not a safetensors header */
  tmp(path, sizeof path, "random.bin");
  write_file(path, rnd, sizeof rnd);
  expect_fail(path, CL_EFORMAT, "not a checkpoint", NULL);
  tmp(path, sizeof path, "empty.bin");
  write_file(path, "", 0);
  expect_fail(path, CL_EFORMAT, "not a checkpoint", NULL);
  tmp(path, sizeof path, "pk.bin");
  write_file(path, "PK\x03\x04", 4);
  expect_fail(path, CL_EFORMAT, "zip", NULL);
  tmp(path, sizeof path, "legacy.pt");
  write_file(path, "\x80\x02\x8a\x0a" "abcdefghijkl", 16);
  expect_fail(path, CL_EUNSUP, "legacy", NULL);
  tmp(path, sizeof path, "does_not_exist.pt");
  expect_fail(path, CL_EIO, "cannot open", NULL);
  /* a safetensors-looking file with a lying header length goes to the safetensors reader */
  tmp(path, sizeof path, "st.bin");
  write_file(path, "\xff\x00\x00\x00\x00\x00\x00\x00{\"a\":1}", 15);
  expect_fail(path, CL_EFORMAT, "header length", NULL);
}

/* Every prefix of the real pickle must fail cleanly; random byte mutations must never crash and
 * either parse or fail with an offset. */
static void test_fuzz(const char *fixture) {
  size_t n = 0;
  unsigned char *pkl = ckpt_read_entry(fixture, "open_clip_pytorch_model/data.pkl", &n);
  CHECK_MSG(pkl != NULL, "cannot read data.pkl from %s", fixture);
  if (!pkl) return;
  cl_pt_pickle p;
  cl_error err = {0};
  CHECK_OK(cl_pt_parse(pkl, n, &p, &err), err);
  cl_pt_free(&p);
  int bad = 0;
  for (size_t k = 0; k < n; k++) {
    if (cl_pt_parse(pkl, k, &p, &err) == 0) {
      cl_pt_free(&p);
      bad++;
    } else if (!strstr(err.msg, "(offset ")) {
      bad++;
    }
  }
  CHECK_MSG(bad == 0, "%d prefixes of data.pkl parsed or failed without an offset (last: %s)", bad, err.msg);
  unsigned char *mut = malloc(n);
  uint64_t s = 12345;
  int parsed = 0;
  bad = 0;
  for (int it = 0; it < 3000; it++) {
    memcpy(mut, pkl, n);
    int flips = 1 + it % 4;
    for (int f = 0; f < flips; f++) {
      s ^= s << 13; s ^= s >> 7; s ^= s << 17;
      mut[(s >> 8) % n] = (unsigned char)s;
    }
    if (cl_pt_parse(mut, n, &p, &err) == 0) {
      parsed++;
      cl_pt_free(&p);
    } else if (!strstr(err.msg, "(offset ")) {
      bad++;
    }
  }
  CHECK_MSG(bad == 0, "%d mutations failed without an offset", bad);
  printf("  fuzz: %zu prefixes rejected, %d of 3000 mutations still parse\n", n, parsed);
  free(mut);
  free(pkl);
}

int main(void) {
  char fixture[1024];
  cl_test_fixture(fixture, sizeof fixture, "tiny-hub/open_clip_pytorch_model.bin");
  if (access(fixture, R_OK) != 0) {
    fprintf(stderr, "skip: fixture %s not found\n", fixture);
    return CL_TEST_SKIP;
  }
  snprintf(tmpdir, sizeof tmpdir, "/tmp/cl_ckpt_faultXXXXXX");
  if (!mkdtemp(tmpdir)) {
    fprintf(stderr, "cannot make a temp dir\n");
    return 1;
  }
  test_foreign_globals();
  test_malformed_pickles();
  test_bad_tensors();
  test_containers(fixture);
  test_fuzz(fixture);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", tmpdir);
  return cl_test_done("test_checkpoint_faults");
}
