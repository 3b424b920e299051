/* Sizes that come from input never wrap (issue 18, items 1 and 2): clade.tensor shapes from
 * an experiment file, safetensors shapes and offsets, pickle tensor sizes, image sizes. Each
 * case here was accepted (or undefined) before the checks: a wrapped byte count sized a
 * buffer that later reads and writes ran past. */
#include <lauxlib.h>
#include <lualib.h>
#include <stdint.h>
#include <unistd.h>

#include "ckpt_testutil.h"
#include "cl_test.h"
#include "image/cl_image.h"
#include "io/cl_pickle.h"
#include "io/cl_safetensors.h"
#include "lua/cl_lua.h"

static void test_helpers(void) {
  size_t n = 0;
  CHECK(cl_mul_size(3, 5, &n) == 0 && n == 15);
  CHECK(cl_mul_size(SIZE_MAX / 2 + 1, 2, &n) != 0);
  CHECK(cl_shape_bytes(2, (int64_t[]){2, 3}, 4, &n) == 0 && n == 24);
  CHECK(cl_shape_bytes(0, NULL, 8, &n) == 0 && n == 8);
  CHECK(cl_shape_bytes(2, (int64_t[]){48, 1LL << 58}, 4, &n) != 0); /* 3 * 2^64: wraps to 0 */
  CHECK(cl_shape_bytes(2, (int64_t[]){1LL << 62, 4}, 8, &n) != 0);
  CHECK(cl_shape_bytes(2, (int64_t[]){1LL << 32, 1LL << 32}, 1, &n) != 0);
  CHECK(cl_shape_bytes(1, (int64_t[]){-1}, 4, &n) != 0);
  /* a zero dimension does not hide an overflowing product of the others (their strides) */
  CHECK(cl_shape_bytes(3, (int64_t[]){0, 1LL << 40, 1LL << 40}, 4, &n) != 0);
  CHECK(cl_shape_bytes(3, (int64_t[]){0, 1LL << 20, 1LL << 20}, 4, &n) == 0 && n == 0);
}

/* Runs chunk with clade.tensor as T; returns the error message ("" when it ran). */
static const char *lua_run(lua_State *L, const char *chunk) {
  lua_settop(L, 0);
  if (luaL_loadstring(L, chunk) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK) return lua_tostring(L, -1);
  return "";
}

static void test_lua_tensor(void) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  cl_lua_open_tensor(L);
  lua_setglobal(L, "T");
  static const char *const too_large[] = {
    "return T.new(2^62, 4)", "return T.new(2^32, 2^32)", "return T.new(2^31, 1)",
    "return T.new(2^62, 4):set(1, 1, 1)", "return T.new(2^32, 2^32):get(2^31, 2^31)",
    "return T.from(setmetatable({}, {__len = function() return 2^61 end}))",
    "return T.cat{T.new(2^30, 0), T.new(2^30, 0), T.new(2^30, 0)}",
  };
  for (size_t i = 0; i < sizeof too_large / sizeof *too_large; i++) {
    const char *m = lua_run(L, too_large[i]);
    CHECK_MSG(strstr(m, "is too large"), "%s: got \"%s\"", too_large[i], m);
  }
  CHECK_STR(lua_run(L, "return T.new(-1, 2)"), "[string \"return T.new(-1, 2)\"]:1: tensor: negative shape [-1,2]");
  /* topk(0) read and wrote best[-1]; topk(-1) best[-2] */
  CHECK_STR(lua_run(L, "local t = T.new(2, 3, 1):topk(0); assert(#t == 2 and #t[1] == 0 and #t[2] == 0)"), "");
  const char *m = lua_run(L, "return T.new(2, 3):topk(-1)");
  CHECK_MSG(strstr(m, "tensor:topk: k = -1 is negative"), "topk(-1): \"%s\"", m);
  /* what still works: ordinary shapes, and empty ones */
  CHECK_STR(lua_run(L, "local t = T.new(3, 4, 2); t:set(3, 4, 5); assert(t:get(3, 4) == 5 and t:get(1, 1) == 2)"), "");
  CHECK_STR(lua_run(L, "local r, c = T.new(0, 5):shape(); assert(r == 0 and c == 5)"), "");
  lua_close(L);
}

static char tmpdir[64];

/* A safetensors file of one header and n zero data bytes. */
static void write_st(const char *path, const char *header, size_t n) {
  FILE *f = fopen(path, "wb");
  uint64_t hl = strlen(header);
  unsigned char lb[8];
  for (int i = 0; i < 8; i++) lb[i] = (unsigned char)(hl >> (8 * i));
  fwrite(lb, 1, 8, f);
  fwrite(header, 1, hl, f);
  for (size_t i = 0; i < n; i++) fputc(0, f);
  fclose(f);
}

static void st_rejects(const char *header, size_t n, const char *want) {
  char path[128];
  snprintf(path, sizeof path, "%s/x.safetensors", tmpdir);
  write_st(path, header, n);
  cl_tmap m;
  cl_error e = {0};
  int rc = cl_st_load(path, &m, &e);
  CHECK_MSG(rc != CL_OK && strstr(e.msg, want), "%s: rc %d, \"%s\", wanted \"%s\"", header, rc, e.msg, want);
  if (rc == CL_OK) cl_tmap_free(&m);
}

static void test_safetensors(void) {
  /* the byte count of F32 [48, 2^58] wraps to 0, matching offsets [0,0] */
  st_rejects("{\"image_embeddings\":{\"dtype\":\"F32\",\"shape\":[48,288230376151711744],\"data_offsets\":[0,0]}}", 0,
             "tensor 'image_embeddings': F32 [48,288230376151711744] is too large");
  st_rejects("{\"w\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296,0],\"data_offsets\":[0,0]}}", 0,
             "tensor 'w': F64 [4294967296,4294967296,0] is too large");
  /* values a cast to int64 makes undefined or wrong */
  st_rejects("{\"image_embeddings\":{\"dtype\":\"F32\",\"shape\":[1e30,4],\"data_offsets\":[0,16]}}", 16,
             "tensor 'image_embeddings': shape dimension 0 is 1e+30, not an integer");
  st_rejects("{\"x\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8,
             "tensor 'x': shape dimension 0 is 2.5");
  st_rejects("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[\"0\",8]}}", 8,
             "tensor 'x': data_offsets is not a pair of integers");
  st_rejects("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0.5,8.5]}}", 9,
             "tensor 'x': data_offsets is not a pair of integers");
  /* the well-formed neighbour still loads */
  char path[128];
  snprintf(path, sizeof path, "%s/ok.safetensors", tmpdir);
  write_st(path, "{\"image_embeddings\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", 16);
  cl_tmap m;
  cl_error e = {0};
  CHECK_OK(cl_st_load(path, &m, &e), e);
  CHECK(cl_tmap_get(&m, "image_embeddings") != NULL);
  cl_tmap_free(&m);
}

static void test_pickle(void) {
  /* size (0, 2^40, 2^40): zero elements, so the view check passed, but the row-major strides
   * (cl_pt_tensor_contiguous) overflowed int64 */
  pk p = {0};
  pk_proto(&p, 2);
  pk_tensor(&p, "FloatStorage", "0", 0, 0, 3, (long[]){0, 1L << 40, 1L << 40}, (long[]){1, 1, 1});
  pk_op(&p, '.');
  cl_pt_pickle pp;
  cl_error e = {0};
  int rc = cl_pt_parse(p.b, p.n, &pp, &e);
  CHECK_MSG(rc != CL_OK && strstr(e.msg, "tensor of storage '0': size/stride overflow"), "rc %d: %s", rc, e.msg);
  if (rc == CL_OK) cl_pt_free(&pp);
  free(p.b);
}

static void test_image(void) {
  /* a 1 x 10^8 gray strip resized to 224 on its short side is 224 x 2.24e10: past int */
  cl_img strip, out;
  cl_error e = {0};
  CHECK_OK(cl_img_alloc(&strip, 1, 100000000, CL_IMG_L, &e), e);
  int rc = cl_img_resize_crop(&strip, 224, &out, &e);
  CHECK_MSG(rc != CL_OK && strstr(e.msg, "a 1x100000000 image resized to 224 on its shorter side is too large"),
            "rc %d: %s", rc, e.msg);
  if (rc == CL_OK) cl_img_free(&out);
  cl_img_free(&strip);
  rc = cl_img_alloc(&out, 2147483647, 2147483647, CL_IMG_RGBA, &e);
  CHECK_MSG(rc != CL_OK && strstr(e.msg, "image size 2147483647x2147483647 RGBA is too large"), "rc %d: %s", rc,
            e.msg);
  if (rc == CL_OK) cl_img_free(&out);
}

int main(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/cl_test_sizeXXXXXX");
  if (!mkdtemp(tmpdir)) return 1;
  test_helpers();
  test_lua_tensor();
  test_safetensors();
  test_pickle();
  test_image();
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
  if (system(cmd) != 0) return 1;
  return cl_test_done("test_size_overflow");
}
