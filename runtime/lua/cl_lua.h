/* cl_lua: the embedded Lua 5.4 that experiment files run in, and the C side of its API.
 * Owns: the sandboxed lua_State, the `clade.core` module (tensors, manifests, models,
 * Python-exact shuffles, the results store hooks) and the run context Lua reports into. */
#ifndef CL_LUA_H
#define CL_LUA_H
#include <lua.h>
#include <stdint.h>

#include "core/cl_core.h"
#include "sched/cl_sched.h"

struct cl_store;

/* A dense row-major float64 matrix: the userdata behind clade.tensor. */
typedef struct cl_lmat {
  int64_t r, c;
  double *d;
} cl_lmat;

cl_lmat *cl_lmat_new(lua_State *L, int64_t r, int64_t c);
cl_lmat *cl_lmat_check(lua_State *L, int idx);
int cl_lua_open_tensor(lua_State *L);

/* What a run needs from its caller: where results go and how models run. */
typedef struct cl_lua_run {
  struct cl_store *store; /* NULL: evaluate without storing (e.g. `clade check`) */
  int64_t run_id;
  const char *backend;   /* "cpu" | "cuda" */
  const char *precision; /* "fp32" ... */
  const char *decode;    /* "full" | "draft": how image files are decoded */
  int quiet;
  cl_progress_mode progress;
  cl_cache *cache;       /* NULL: no embedding cache */
  cl_sched_stats stats;  /* counters and timings for the run record */
  volatile int *interrupted; /* set by the caller's SIGINT handler; NULL: never */
  int shard_index, shard_count; /* run only shard I of N of the plan; count 0: every job */
  size_t lua_memory;   /* cap on the Lua state's bytes (clade run --lua-memory); 0: half of RAM */
  int64_t lua_budget;  /* Lua instructions per evaluation (--lua-budget); 0: CL_LUA_EVAL_BUDGET */
  int strict;          /* data warnings (duplicate rows, classes short of shots) are errors */
} cl_lua_run;

typedef struct cl_lua cl_lua;

/* A fresh state: clade's modules in the trusted globals, and the experiment environment
 * (lua/clade/sandbox.lua: exactly what docs/lua-api.md lists) whose `require` reaches only
 * "clade", "clade.suites" and modules under `script_dir`. Memory is capped at
 * run->lua_memory; Lua instructions are budgeted (cl_lua_sandbox.h). */
int cl_lua_new(cl_lua **out, const char *script_dir, cl_lua_run *run, cl_error *e);
void cl_lua_free(cl_lua *c);
lua_State *cl_lua_state(cl_lua *c);
/* Load and run `path` in the experiment environment (chunk name "@path"), within the
 * declarations' instruction budget. */
int cl_lua_dofile(cl_lua *c, const char *path, cl_error *e);
/* Call the trusted require(module)[fn](args...) where args are strings, within the
 * per-evaluation budget; errors carry file:line. If ret
 * is non-NULL it receives the function's integer result (0 when it returns none). */
int cl_lua_call(cl_lua *c, const char *module, const char *fn, int nargs, const char **args, int *ret,
                cl_error *e);

/* Registers the model bindings (cl_lua_model.c) into the table at the top of the stack. */
void cl_lua_register_models(lua_State *L);
/* Registers data bindings (manifests, images, features) (cl_lua_data.c). */
void cl_lua_register_data(lua_State *L);
/* Registers the store bindings (cl_lua_store.c). */
void cl_lua_register_store(lua_State *L);
/* Registers core.train, one training job (cl_lua_train.c). */
void cl_lua_register_train(lua_State *L);
cl_lua_run *cl_lua_get_run(lua_State *L);

#endif
