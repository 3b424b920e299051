/* The restricted pickle VM and the torch zip reader on hand-built checkpoints: strided views,
 * storage offsets, shared storages, 0-d and empty tensors, every storage dtype we map,
 * _rebuild_parameter, OrderedDict + BUILD(_metadata), protocol 4 opcodes (FRAME,
 * SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL, LONG1), a training checkpoint with `module.` keys,
 * and big/negative LONG integers. The fixtures never exercise these (all their tensors are
 * contiguous at offset 0). */
#include <stdint.h>
#include <unistd.h>

#include "cl_test.h"
#include "io/cl_ckpt.h"
#include "io/cl_pickle.h"
#include "unit/ckpt_testutil.h"

static char tmpdir[64];

static void path_in(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", tmpdir, name); }

/* Storages shared by the checkpoints below. */
static float f32[6] = {0, 1, 2, 3, 4, 5};
static uint16_t bf16[4] = {0x3f80, 0x4000, 0x4040, 0xbf80}; /* 1 2 3 -1 */
static int64_t i64[3] = {-7, 1LL << 40, 42};
static uint16_t f16[2] = {0x3c00, 0xc000};
static double f64[2] = {0.25, -1e300};
static uint8_t u8[3] = {1, 0, 1};

static void add_key(pk *p, const char *prefix, const char *name) {
  char k[128];
  snprintf(k, sizeof k, "%s%s", prefix, name);
  pk_str(p, k);
}

/* The state dict's SETITEMS body: MARK key tensor ... SETITEMS (the dict is on the stack). */
static void state_items(pk *p, const char *prefix) {
  pk_op(p, '(');
  add_key(p, prefix, "w");
  pk_tensor(p, "FloatStorage", "0", 6, 0, 2, (long[]){2, 3}, (long[]){3, 1});
  add_key(p, prefix, "wt"); /* the transpose of w: a non-contiguous view of the same storage */
  pk_tensor(p, "FloatStorage", "0", 6, 0, 2, (long[]){3, 2}, (long[]){1, 3});
  add_key(p, prefix, "o"); /* offset view */
  pk_tensor(p, "FloatStorage", "0", 6, 2, 1, (long[]){2}, (long[]){1});
  add_key(p, prefix, "s"); /* 0-d at offset 5 */
  pk_tensor(p, "FloatStorage", "0", 6, 5, 0, NULL, NULL);
  add_key(p, prefix, "step"); /* every other element */
  pk_tensor(p, "FloatStorage", "0", 6, 0, 1, (long[]){3}, (long[]){2});
  add_key(p, prefix, "unit"); /* size-1 dims with odd strides are still contiguous */
  pk_tensor(p, "FloatStorage", "0", 6, 1, 3, (long[]){1, 2, 1}, (long[]){99, 1, 7});
  add_key(p, prefix, "p"); /* an nn.Parameter */
  pk_global(p, "torch._utils", "_rebuild_parameter");
  pk_op(p, '(');
  pk_tensor(p, "BFloat16Storage", "1", 4, 0, 2, (long[]){2, 2}, (long[]){2, 1});
  pk_op(p, 0x88);
  pk_global(p, "collections", "OrderedDict");
  pk_op(p, ')');
  pk_op(p, 'R');
  pk_op(p, 't');
  pk_op(p, 'R');
  add_key(p, prefix, "i");
  pk_tensor(p, "LongStorage", "2", 3, 0, 1, (long[]){3}, (long[]){1});
  add_key(p, prefix, "h");
  pk_tensor(p, "HalfStorage", "3", 2, 0, 1, (long[]){2}, (long[]){1});
  add_key(p, prefix, "d");
  pk_tensor(p, "DoubleStorage", "4", 2, 1, 1, (long[]){1}, (long[]){1});
  add_key(p, prefix, "b");
  pk_tensor(p, "BoolStorage", "5", 3, 0, 1, (long[]){3}, (long[]){1});
  add_key(p, prefix, "empty");
  pk_tensor(p, "FloatStorage", "6", 0, 0, 2, (long[]){0, 3}, (long[]){3, 1});
  pk_op(p, 'u');
}

static int write_ckpt(const char *path, const char *folder, const pk *p) {
  char n[8][64];
  const char *names[] = {"data.pkl", "data/0", "data/1", "data/2", "data/3", "data/4", "data/5", "data/6"};
  for (int i = 0; i < 8; i++) snprintf(n[i], sizeof n[i], "%s/%s", folder, names[i]);
  ckpt_entry ents[] = {
    {n[0], p->b, p->n}, {n[1], f32, sizeof f32}, {n[2], bf16, sizeof bf16}, {n[3], i64, sizeof i64},
    {n[4], f16, sizeof f16}, {n[5], f64, sizeof f64}, {n[6], u8, sizeof u8}, {n[7], "", 0},
  };
  return ckpt_write_zip(path, ents, 8);
}

static void check_f32(const cl_tmap *m, const char *name, int ndim, const int64_t *shape, const float *want) {
  const cl_tensor *t = cl_tmap_get(m, name);
  CHECK_MSG(t != NULL, "missing tensor '%s'", name);
  if (!t) return;
  CHECK_MSG(t->dtype == CL_F32 && cl_shape_eq(t, ndim, shape), "'%s': %s", name, cl_dtype_name(t->dtype));
  int64_t n = cl_tensor_numel(t);
  for (int64_t i = 0; i < n; i++)
    CHECK_MSG(((const float *)t->data)[i] == want[i], "'%s'[%lld] = %g, want %g", name, (long long)i,
              ((const float *)t->data)[i], want[i]);
}

static void check_state(const cl_tmap *m) {
  CHECK_EQ_INT(m->n, 12);
  check_f32(m, "w", 2, (int64_t[]){2, 3}, (float[]){0, 1, 2, 3, 4, 5});
  check_f32(m, "wt", 2, (int64_t[]){3, 2}, (float[]){0, 3, 1, 4, 2, 5});
  check_f32(m, "o", 1, (int64_t[]){2}, (float[]){2, 3});
  check_f32(m, "s", 0, NULL, (float[]){5});
  check_f32(m, "step", 1, (int64_t[]){3}, (float[]){0, 2, 4});
  check_f32(m, "unit", 3, (int64_t[]){1, 2, 1}, (float[]){1, 2});
  const cl_tensor *t = cl_tmap_get(m, "p");
  CHECK(t && t->dtype == CL_BF16 && cl_shape_eq(t, 2, (int64_t[]){2, 2}) && memcmp(t->data, bf16, 8) == 0);
  t = cl_tmap_get(m, "i");
  CHECK(t && t->dtype == CL_I64 && cl_shape_eq(t, 1, (int64_t[]){3}) && memcmp(t->data, i64, 24) == 0);
  t = cl_tmap_get(m, "h");
  CHECK(t && t->dtype == CL_F16 && memcmp(t->data, f16, 4) == 0);
  t = cl_tmap_get(m, "d");
  CHECK(t && t->dtype == CL_F64 && t->ndim == 1 && ((const double *)t->data)[0] == -1e300);
  t = cl_tmap_get(m, "b");
  CHECK(t && t->dtype == CL_BOOL && memcmp(t->data, u8, 3) == 0);
  t = cl_tmap_get(m, "empty");
  CHECK(t && t->dtype == CL_F32 && cl_shape_eq(t, 2, (int64_t[]){0, 3}) && cl_tensor_nbytes(t) == 0);
}

/* torch.save(model.state_dict()) as protocol 2: an OrderedDict with a _metadata attribute. */
static void test_state_dict(void) {
  pk p = {0};
  pk_proto(&p, 2);
  pk_global(&p, "collections", "OrderedDict");
  pk_op(&p, ')');
  pk_op(&p, 'R');
  pk_op(&p, 'q'); pk_op(&p, 0); /* BINPUT 0 */
  state_items(&p, "");
  /* BUILD with {'_metadata': OrderedDict()} */
  pk_op(&p, '}');
  pk_str(&p, "_metadata");
  pk_op(&p, 'h'); pk_op(&p, 0); /* BINGET 0: any dict will do for the ignored state */
  pk_op(&p, 's');
  pk_op(&p, 'b');
  pk_op(&p, '.');
  char path[128];
  path_in(path, sizeof path, "sd.pt");
  CHECK(write_ckpt(path, "archive", &p) == 0);
  cl_tmap m;
  cl_error err = {0};
  CHECK_OK(cl_ckpt_load(path, &m, &err), err);
  check_state(&m);
  cl_tmap_free(&m);
  free(p.b);
}

/* An open_clip training checkpoint in protocol 4 with `module.` keys and other entries. */
static void test_training_ckpt(void) {
  pk p = {0};
  pk_proto(&p, 4);
  pk_op(&p, 0x95); /* FRAME with some length; it is only a hint */
  for (int i = 0; i < 8; i++) pk_op(&p, i == 0 ? 16 : 0);
  pk_op(&p, '}');
  pk_op(&p, 0x94); /* MEMOIZE -> 0 */
  pk_op(&p, '(');
  pk_str_(&p, "epoch", 1);
  pk_op(&p, 0x8a); pk_op(&p, 9); /* LONG1 of 9 bytes = 2^64 (does not fit int64; fine when unused) */
  for (int i = 0; i < 8; i++) pk_op(&p, 0);
  pk_op(&p, 1);
  pk_str_(&p, "name", 1);
  pk_str_(&p, "tiny", 1);
  pk_str_(&p, "lr", 1);
  pk_op(&p, 'G');
  pk_raw(&p, "\x3f\xb9\x99\x99\x99\x99\x99\x9a", 8); /* 0.1 */
  pk_str_(&p, "scaler", 1);
  pk_op(&p, 'N');
  pk_str_(&p, "blob", 1);
  pk_op(&p, 'C'); pk_op(&p, 3); pk_raw(&p, "abc", 3);
  pk_str_(&p, "state_dict", 1);
  /* the state dict built with NEWOBJ OrderedDict via STACK_GLOBAL */
  pk_str_(&p, "collections", 1);
  pk_str_(&p, "OrderedDict", 1);
  pk_op(&p, 0x93);
  pk_op(&p, 0x94); /* MEMOIZE -> 1 */
  pk_op(&p, ')');
  pk_op(&p, 0x81);
  state_items(&p, "module.");
  pk_op(&p, 'u');
  pk_op(&p, '.');
  char path[128];
  path_in(path, sizeof path, "epoch_1.pt");
  CHECK(write_ckpt(path, "epoch_1", &p) == 0);
  cl_tmap m;
  cl_error err = {0};
  CHECK_OK(cl_ckpt_load(path, &m, &err), err);
  check_state(&m);
  CHECK(cl_tmap_get(&m, "module.w") == NULL);
  cl_tmap_free(&m);
  free(p.b);
}

/* Integers: BININT sign, LONG1 negative/short, LONG4 long; values round-trip exactly. */
static void test_ints(void) {
  pk p = {0};
  pk_proto(&p, 2);
  pk_op(&p, '(');
  pk_op(&p, 'J'); pk_u32(&p, 0xfffffffeu);              /* -2 */
  pk_op(&p, 0x8a); pk_op(&p, 1); pk_op(&p, 0xff);        /* -1 */
  pk_op(&p, 0x8a); pk_op(&p, 0);                         /* 0 */
  pk_op(&p, 0x8a); pk_op(&p, 8); pk_raw(&p, "\xff\xff\xff\xff\xff\xff\xff\x7f", 8); /* INT64_MAX */
  pk_op(&p, 0x8a); pk_op(&p, 9); pk_raw(&p, "\x00\x00\x00\x00\x00\x00\x00\x80\xff", 9); /* INT64_MIN */
  pk_op(&p, 0x8b); pk_u32(&p, 9); pk_raw(&p, "\x00\x00\x00\x00\x00\x00\x00\x80\x00", 9); /* 2^63: big */
  pk_op(&p, 'M'); pk_op(&p, 0x34); pk_op(&p, 0x12);       /* 0x1234 */
  pk_op(&p, 'l');
  pk_op(&p, '.');
  cl_pt_pickle pp;
  cl_error err = {0};
  CHECK_OK(cl_pt_parse(p.b, p.n, &pp, &err), err);
  if (pp.root && pp.root->kind == CL_PT_LIST && pp.root->u.seq.n == 7) {
    cl_pt_value **v = pp.root->u.seq.v;
    CHECK_EQ_INT(v[0]->u.i.v, -2);
    CHECK_EQ_INT(v[1]->u.i.v, -1);
    CHECK_EQ_INT(v[2]->u.i.v, 0);
    CHECK(v[3]->u.i.v == INT64_MAX && !v[3]->u.i.big);
    CHECK(v[4]->u.i.v == INT64_MIN && !v[4]->u.i.big);
    CHECK(v[5]->u.i.big && v[5]->u.i.approx == 9223372036854775808.0);
    CHECK_EQ_INT(v[6]->u.i.v, 0x1234);
  } else {
    CHECK_MSG(0, "root is not a list of 7");
  }
  cl_pt_free(&pp);
  free(p.b);
}

int main(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/cl_ckpt_unitXXXXXX");
  if (!mkdtemp(tmpdir)) {
    fprintf(stderr, "cannot make a temp dir\n");
    return 1;
  }
  test_state_dict();
  test_training_ckpt();
  test_ints();
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", tmpdir);
  return cl_test_done("test_checkpoint_pickle");
}
