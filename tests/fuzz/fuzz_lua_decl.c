/* libFuzzer: an experiment file's declarations, loaded the way `clade run` and `clade check`
 * load them (cl_lua_new, then cl_lua_dofile in the sandbox, with no run attached). The
 * harness bounds what an input may spend (instructions and Lua memory), so that a loop or a
 * growing table is an ordinary Lua error here, not a timeout or an out-of-memory report. */
#include <lauxlib.h>
#include <stdlib.h>

#include "fuzz_util.h"
#include "lua/cl_lua.h"

#define FUZZ_LUA_MEMORY (64u << 20)
#define FUZZ_LUA_STEPS 2000000

typedef struct cap {
  lua_Alloc f;
  void *ud;
  size_t used;
} cap;

static void *capped(void *ud, void *p, size_t osize, size_t nsize) {
  cap *c = ud;
  size_t old = p ? osize : 0;
  if (nsize > old && c->used + (nsize - old) > FUZZ_LUA_MEMORY) return NULL;
  void *q = c->f(c->ud, p, osize, nsize);
  if (q || nsize == 0) c->used = c->used - old + nsize;
  return q;
}

static void steps(lua_State *L, lua_Debug *ar) {
  (void)ar;
  luaL_error(L, "fuzz: instruction budget spent");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  cl_lua *c = NULL;
  cl_error e;
  if (cl_lua_new(&c, "/nonexistent", NULL, &e) != CL_OK) abort(); /* no input involved yet */
  lua_State *L = cl_lua_state(c);
  static cap k;
  k.f = lua_getallocf(L, &k.ud);
  k.used = 0;
  lua_gc(L, LUA_GCCOLLECT);
  k.used = (size_t)lua_gc(L, LUA_GCCOUNT) * 1024 + (size_t)lua_gc(L, LUA_GCCOUNTB);
  lua_setallocf(L, capped, &k);
  lua_sethook(L, steps, LUA_MASKCOUNT, FUZZ_LUA_STEPS);
  (void)cl_lua_dofile(c, fuzz_file(data, size), &e);
  lua_setallocf(L, k.f, k.ud);
  cl_lua_free(c);
  return 0;
}
