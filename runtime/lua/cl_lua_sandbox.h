/* cl_lua_sandbox: what keeps experiment code inside its box.
 * Owns: the memory cap (an allocator counting every byte of the state), the instruction
 * budget (a count hook; a first Ctrl-C shortens it to a grace), the experiment environment's
 * C pieces (pcall/xpcall/coroutine.resume that cannot swallow a limit, `load` into the
 * experiment environment, text only) and the searchers of the experiment's `require`
 * (clade's public modules, then the experiment's own folder; clade's internals refused). */
#ifndef CL_LUA_SANDBOX_H
#define CL_LUA_SANDBOX_H
#include <lua.h>
#include <stddef.h>
#include <stdint.h>

/* Lua instructions the declarations of a file may run (an endless loop at the top level
 * stops within seconds), and the default per evaluation (clade run --lua-budget N). */
#define CL_LUA_DECL_BUDGET 200000000LL
#define CL_LUA_EVAL_BUDGET 10000000000LL
/* after a first Ctrl-C, the evaluation in flight may run this many more instructions */
#define CL_LUA_GRACE_BUDGET 200000000LL

typedef struct cl_lua_limits {
  size_t used, cap;      /* bytes held by the state, and the most it may hold */
  int mem_hit;           /* an allocation was refused at the cap */
  int64_t left, budget;  /* instructions left in this phase, and the phase's budget */
  int fatal;             /* a budget ran out: every hook tick raises again */
  int grace;             /* Ctrl-C seen: the budget is cut to CL_LUA_GRACE_BUDGET */
  volatile int *interrupted;
  char phase[320];       /* "the declarations of F" / "experiment 'x' (...)", for messages */
} cl_lua_limits;

/* The allocator of a state whose `ud` is a cl_lua_limits. */
void *cl_lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize);
/* Point the state at its limits and install the count hook (threads inherit both). */
void cl_lua_limits_attach(lua_State *L, cl_lua_limits *lim);
cl_lua_limits *cl_lua_limits_of(lua_State *L);
/* Start a phase: `n` instructions under the name `phase` (clears a spent budget when
 * `fresh`, as a new call from C does; the runner's per-evaluation reset does not). */
void cl_lua_budget(lua_State *L, int64_t n, const char *phase, int fresh);
/* Half of physical memory: the default cap. */
size_t cl_lua_default_memory(void);

/* The sandbox's C functions (pcall, xpcall, resume, load, require) into the table on top. */
void cl_lua_register_sandbox(lua_State *L);
/* Give the standard `require` its searchers (public modules, then `script_dir`) and hide
 * the standard libraries from it; call once the libraries are open. */
void cl_lua_sandbox_searchers(lua_State *L);
/* Load `path` as text into the experiment environment; pushes the chunk or an error. */
int cl_lua_sandbox_loadfile(lua_State *L, const char *path);

#endif
