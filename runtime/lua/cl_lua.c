/* cl_lua: the state experiment files run in. Two worlds share it: clade's own modules
 * (lua/clade/ files) run with the state's globals and a private `require` that reaches
 * clade.core, the C internals (held in the registry); experiment files and their modules
 * run in the environment lua/clade/sandbox.lua builds (docs/lua-api.md, nothing else), with
 * the standard `require` limited to clade's public modules and the file's own folder. No
 * os, io, debug, bytecode or file reading of their own. Limits: cl_lua_sandbox.c. */
#define _GNU_SOURCE
#include "cl_lua.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cl_lua_sandbox.h"
#include "eval/cl_pyrandom.h"

struct cl_lua {
  lua_State *L;
  char script_dir[4096];
  char file[4096]; /* the experiment file, for messages */
  cl_lua_run *run;
  cl_lua_limits lim;
};

#define RUN_KEY "clade.run"
#define LOADED_KEY "clade.loaded"

cl_lua_run *cl_lua_get_run(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, RUN_KEY);
  cl_lua_run *r = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return r;
}

static int file_exists(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* print goes to stderr: stdout carries only data. */
static int l_print(lua_State *L) {
  int n = lua_gettop(L);
  for (int i = 1; i <= n; i++) {
    size_t len;
    const char *s = luaL_tolstring(L, i, &len);
    if (i > 1) fputc('\t', stderr);
    fwrite(s, 1, len, stderr);
    lua_pop(L, 1);
  }
  fputc('\n', stderr);
  return 0;
}

/* The trusted world's require(name): clade's own modules from <resources>/lua, kept in a
 * registry table apart from the standard require's (experiment code cannot reach them). */
static int l_require(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  lua_getfield(L, LUA_REGISTRYINDEX, LOADED_KEY);
  lua_getfield(L, -1, name);
  if (!lua_isnil(L, -1)) return 1;
  lua_pop(L, 1);
  char rel[512];
  snprintf(rel, sizeof rel, "%s", name);
  for (char *p = rel; *p; p++)
    if (*p == '.') *p = '/';
  char cands[2][4600];
  snprintf(cands[0], sizeof cands[0], "%s/lua/%s.lua", cl_resource_dir(), rel);
  snprintf(cands[1], sizeof cands[1], "%s/lua/%s/init.lua", cl_resource_dir(), rel);
  const char *found = NULL;
  for (int i = 0; i < 2 && !found; i++)
    if (file_exists(cands[i])) found = cands[i];
  if (!found) return luaL_error(L, "module '%s' not found (looked in %s)", name, cands[0]);
  if (luaL_loadfilex(L, found, "t") != LUA_OK) return lua_error(L);
  lua_pushstring(L, name);
  lua_call(L, 1, 1);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_pushboolean(L, 1);
  }
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, name); /* loaded[name] = result */
  return 1;
}

/* core.caller_file(level): the source file of the function `level` frames up. */
static int l_caller_file(lua_State *L) {
  int level = (int)luaL_optinteger(L, 1, 2);
  lua_Debug ar;
  for (; lua_getstack(L, level, &ar); level++) {
    lua_getinfo(L, "Sl", &ar);
    if (ar.source[0] == '@') {
      lua_pushstring(L, ar.source + 1);
      lua_pushinteger(L, ar.currentline);
      return 2;
    }
  }
  lua_pushnil(L);
  return 1;
}

/* core.getenv(name): only CLADE_* variables are visible to experiments. */
static int l_getenv(lua_State *L) {
  const char *n = luaL_checkstring(L, 1);
  if (strncmp(n, "CLADE_", 6) != 0) return luaL_error(L, "getenv: only CLADE_* variables are visible, not %s", n);
  const char *v = getenv(n);
  if (v) lua_pushstring(L, v);
  else lua_pushnil(L);
  return 1;
}

/* core.resource(rel): absolute path of a shipped resource. */
static int l_resource(lua_State *L) {
  char buf[4600];
  lua_pushstring(L, cl_resource_path(buf, sizeof buf, luaL_checkstring(L, 1)));
  return 1;
}

/* core.read_lines(path): the lines of a text file (templates), without newlines. */
static int l_read_lines(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  char *buf;
  size_t len;
  cl_error e;
  if (cl_read_file(path, &buf, &len, &e) != CL_OK) return luaL_error(L, "%s", e.msg);
  lua_newtable(L);
  int n = 0;
  char *p = buf, *end = buf + len;
  while (p < end) {
    char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
    if (l && p[l - 1] == '\r') l--;
    lua_pushlstring(L, p, l);
    lua_rawseti(L, -2, ++n);
    p = nl ? nl + 1 : end;
  }
  free(buf);
  return 1;
}

/* core.abspath(p): p against the current folder (paths given on the command line or in
 * CLADE_* variables are relative to where clade runs, not to the experiment file). */
static int l_abspath(lua_State *L) {
  const char *p = luaL_checkstring(L, 1);
  if (p[0] == '/') {
    lua_pushstring(L, p);
    return 1;
  }
  char cwd[4096];
  if (!getcwd(cwd, sizeof cwd)) return luaL_error(L, "abspath: cannot read the current folder");
  lua_pushfstring(L, "%s/%s", cwd, p);
  return 1;
}

static int l_file_exists(lua_State *L) {
  lua_pushboolean(L, file_exists(luaL_checkstring(L, 1)));
  return 1;
}

/* core.notice(msg): a line on stderr unless the run is quiet. */
static int l_notice(lua_State *L) {
  const char *m = luaL_checkstring(L, 1);
  cl_lua_run *r = cl_lua_get_run(L);
  if (!r || !r->quiet) fprintf(stderr, "clade: %s\n", m);
  return 0;
}

/* Python's random, for BioCLIP's samplers: core.pyrandom(seed) -> rng with rng:shuffle(t). */
static int r_shuffle(lua_State *L) {
  cl_pyrand *r = luaL_checkudata(L, 1, "clade.pyrandom");
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_Integer n = luaL_len(L, 2);
  for (lua_Integer i = n - 1; i > 0; i--) { /* random.shuffle, element by element */
    lua_Integer j = (lua_Integer)cl_pyrand_below(r, (uint32_t)i + 1);
    lua_geti(L, 2, i + 1);
    lua_geti(L, 2, j + 1);
    lua_seti(L, 2, i + 1);
    lua_seti(L, 2, j + 1);
  }
  return 0;
}

static int r_random(lua_State *L) {
  cl_pyrand *r = luaL_checkudata(L, 1, "clade.pyrandom");
  lua_pushnumber(L, cl_pyrand_random(r));
  return 1;
}

static int l_pyrandom(lua_State *L) {
  lua_Integer seed = luaL_checkinteger(L, 1);
  cl_pyrand *r = lua_newuserdatauv(L, sizeof *r, 0);
  cl_pyrand_seed(r, seed);
  luaL_setmetatable(L, "clade.pyrandom");
  return 1;
}

/* core.evaluation_budget(label): the runner starts an evaluation's instruction budget. */
static int l_evaluation_budget(lua_State *L) {
  cl_lua_run *r = cl_lua_get_run(L);
  cl_lua_budget(L, r && r->lua_budget > 0 ? r->lua_budget : CL_LUA_EVAL_BUDGET, luaL_checkstring(L, 1), 0);
  return 0;
}

/* core.warn(msg): "clade: warning: msg" on stderr; under --strict, an error instead. */
static int l_warn(lua_State *L) {
  const char *m = luaL_checkstring(L, 1);
  cl_lua_run *r = cl_lua_get_run(L);
  if (r && r->strict) {
    lua_pushfstring(L, "%s (an error under --strict)", m);
    return lua_error(L);
  }
  fprintf(stderr, "clade: warning: %s\n", m);
  return 0;
}

/* core.limit_spent(): a budget or the memory cap ran out (such errors pass through as they are) */
static int l_limit_spent(lua_State *L) {
  cl_lua_limits *m = cl_lua_limits_of(L);
  lua_pushboolean(L, m->fatal || m->mem_hit);
  return 1;
}

/* Userdata metatables are clade's: experiment code cannot fetch or change them. */
static void seal_metatable(lua_State *L, const char *name) {
  if (luaL_getmetatable(L, name) == LUA_TTABLE) {
    lua_pushstring(L, name);
    lua_setfield(L, -2, "__metatable");
  }
  lua_pop(L, 1);
}

static int open_core(lua_State *L) {
  static const luaL_Reg fns[] = {{"caller_file", l_caller_file}, {"getenv", l_getenv}, {"resource", l_resource},
                                 {"read_lines", l_read_lines}, {"file_exists", l_file_exists}, {"abspath", l_abspath}, {"notice", l_notice},
                                 {"pyrandom", l_pyrandom}, {"evaluation_budget", l_evaluation_budget}, {"warn", l_warn},
                                 {"limit_spent", l_limit_spent}, {NULL, NULL}};
  luaL_newlib(L, fns);
  if (luaL_newmetatable(L, "clade.pyrandom")) {
    lua_newtable(L);
    lua_pushcfunction(L, r_shuffle);
    lua_setfield(L, -2, "shuffle");
    lua_pushcfunction(L, r_random);
    lua_setfield(L, -2, "random");
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  cl_lua_open_tensor(L);
  lua_setfield(L, -2, "tensor");
  cl_lua_register_data(L);
  cl_lua_register_models(L);
  cl_lua_register_store(L);
  cl_lua_register_train(L);
  cl_lua_register_sandbox(L);
  static const char *sealed[] = {"clade.pyrandom", "clade.tensor", "clade.model", NULL};
  for (const char **m = sealed; *m; m++) seal_metatable(L, *m);
  return 1;
}

static int panic(lua_State *L) {
  fprintf(stderr, "clade: Lua panic: %s\n", lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
  return 0;
}

static void warn_off(void *ud, const char *msg, int tocont) {
  (void)ud, (void)msg, (void)tocont;
}

/* A failed call's message: the error, or the memory cap it ran into. */
static int lua_fail(cl_lua *c, int status, cl_error *e) {
  lua_State *L = c->L;
  const char *m = lua_tostring(L, -1);
  if (status == LUA_ERRMEM || (c->lim.mem_hit && m && strstr(m, "not enough memory")))
    cl_err(e, CL_ELUA, "%s: the Lua memory limit of %zu bytes was reached (clade run --lua-memory SIZE)",
           c->file[0] ? c->file : "clade", c->lim.cap);
  else
    cl_err(e, CL_ELUA, "%s", m ? m : "(error object is not a string)");
  lua_pop(L, 1);
  return CL_ELUA;
}

int cl_lua_new(cl_lua **out, const char *script_dir, cl_lua_run *run, cl_error *e) {
  cl_lua *c = cl_xcalloc(1, sizeof *c);
  c->lim.cap = run && run->lua_memory ? run->lua_memory : cl_lua_default_memory();
  c->lim.interrupted = run ? run->interrupted : NULL;
  c->L = lua_newstate(cl_lua_alloc, &c->lim);
  if (!c->L) {
    free(c);
    return cl_err(e, CL_ENOMEM, "cannot create a Lua state");
  }
  lua_State *L = c->L;
  lua_atpanic(L, panic);
  lua_setwarnf(L, warn_off, NULL);
  cl_lua_limits_attach(L, &c->lim);
  cl_lua_budget(L, CL_LUA_DECL_BUDGET, "loading clade's Lua library", 1);
  snprintf(c->script_dir, sizeof c->script_dir, "%s", script_dir ? script_dir : ".");
  c->run = run;
  static const luaL_Reg libs[] = {{LUA_GNAME, luaopen_base}, {LUA_STRLIBNAME, luaopen_string},
                                  {LUA_TABLIBNAME, luaopen_table}, {LUA_MATHLIBNAME, luaopen_math},
                                  {LUA_UTF8LIBNAME, luaopen_utf8}, {LUA_COLIBNAME, luaopen_coroutine},
                                  {NULL, NULL}};
  for (const luaL_Reg *l = libs; l->func; l++) {
    luaL_requiref(L, l->name, l->func, 1);
    lua_pop(L, 1);
  }
  cl_lua_sandbox_searchers(L);
  /* the trusted globals: no file or bytecode loading; print goes to stderr */
  static const char *drop[] = {"dofile", "loadfile", NULL};
  for (const char **d = drop; *d; d++) {
    lua_pushnil(L);
    lua_setglobal(L, *d);
  }
  lua_pushcfunction(L, l_print);
  lua_setglobal(L, "print");
  lua_pushcfunction(L, l_require);
  lua_setglobal(L, "require");
  /* strings' metatable (its __index is the trusted string table) is not for experiments */
  lua_pushliteral(L, "");
  lua_getmetatable(L, -1);
  lua_pushliteral(L, "string");
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 2);
  lua_pushlightuserdata(L, run);
  lua_setfield(L, LUA_REGISTRYINDEX, RUN_KEY);
  lua_pushstring(L, c->script_dir);
  lua_setfield(L, LUA_REGISTRYINDEX, "clade.script_dir");
  lua_newtable(L);
  lua_pushcfunction(L, open_core); /* not luaL_requiref: the standard loaded table never holds it */
  lua_call(L, 0, 1);
  lua_setfield(L, -2, "clade.core");
  lua_setfield(L, LUA_REGISTRYINDEX, LOADED_KEY);
  *out = c;
  /* the DSL (lua/clade/init.lua) and the experiment environment (lua/clade/sandbox.lua):
   * { env = the globals experiment files see, modules = public name -> loader } */
  const char *boot = "return require 'clade.sandbox'";
  if (luaL_loadbufferx(L, boot, strlen(boot), "=clade", "t") != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK) {
    cl_err(e, CL_ELUA, "loading clade's Lua library: %s", lua_tostring(L, -1));
    cl_lua_free(c);
    *out = NULL;
    return CL_ELUA;
  }
  lua_getfield(L, -1, "env");
  lua_setfield(L, LUA_REGISTRYINDEX, "clade.env");
  lua_getfield(L, -1, "modules");
  lua_setfield(L, LUA_REGISTRYINDEX, "clade.public");
  lua_pop(L, 1);
  return CL_OK;
}

void cl_lua_free(cl_lua *c) {
  if (!c) return;
  c->lim.fatal = 1, c->lim.left = 0; /* an experiment's finalizer gets no time at close */
  lua_close(c->L);
  free(c);
}

lua_State *cl_lua_state(cl_lua *c) { return c->L; }

int cl_lua_dofile(cl_lua *c, const char *path, cl_error *e) {
  lua_State *L = c->L;
  if (!file_exists(path)) return cl_err(e, CL_EIO, "%s: no such experiment file", path);
  snprintf(c->file, sizeof c->file, "%s", path);
  char phase[300];
  snprintf(phase, sizeof phase, "the declarations of %s", path);
  cl_lua_budget(L, CL_LUA_DECL_BUDGET, phase, 1);
  int rc = cl_lua_sandbox_loadfile(L, path);
  if (rc == LUA_OK) rc = lua_pcall(L, 0, 0, 0);
  return rc == LUA_OK ? CL_OK : lua_fail(c, rc, e);
}

int cl_lua_call(cl_lua *c, const char *module, const char *fn, int nargs, const char **args, int *ret,
                cl_error *e) {
  lua_State *L = c->L;
  cl_lua_run *r = c->run;
  cl_lua_budget(L, r && r->lua_budget > 0 ? r->lua_budget : CL_LUA_EVAL_BUDGET, fn, 1);
  lua_getglobal(L, "require");
  lua_pushstring(L, module);
  int rc = lua_pcall(L, 1, 1, 0);
  if (rc != LUA_OK) return lua_fail(c, rc, e);
  lua_getfield(L, -1, fn);
  lua_remove(L, -2);
  for (int i = 0; i < nargs; i++) lua_pushstring(L, args[i]);
  rc = lua_pcall(L, nargs, 1, 0);
  if (rc != LUA_OK) return lua_fail(c, rc, e);
  if (ret) *ret = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  return CL_OK;
}
