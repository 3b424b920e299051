/* cl_lua_sandbox: memory cap, instruction budget, and the experiment environment's C side.
 * Experiment code runs with its own _ENV (lua/clade/sandbox.lua builds it); nothing it can
 * reach leads back to the trusted globals, clade.core or the runner. */
#include "cl_lua_sandbox.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HOOK_STEP 10000 /* instructions between two looks at the budget */
#define ENV_KEY "clade.env"
#define PUBLIC_KEY "clade.public"
#define REQUIRE_KEY "clade.require"
#define DIR_KEY "clade.script_dir"

void *cl_lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  cl_lua_limits *m = ud;
  size_t old = ptr ? osize : 0;
  if (nsize == 0) {
    free(ptr);
    m->used -= old;
    return NULL;
  }
  if (nsize > old && (nsize - old > m->cap || m->used > m->cap - (nsize - old))) {
    m->mem_hit = 1;
    return NULL;
  }
  void *p = realloc(ptr, nsize);
  if (p) m->used = m->used - old + nsize;
  return p;
}

cl_lua_limits *cl_lua_limits_of(lua_State *L) { return *(cl_lua_limits **)lua_getextraspace(L); }

size_t cl_lua_default_memory(void) {
  long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || psize <= 0) return (size_t)4 << 30;
  return (size_t)pages / 2 * (size_t)psize;
}

static void count_hook(lua_State *L, lua_Debug *ar) {
  cl_lua_limits *m = cl_lua_limits_of(L);
  if (m->interrupted && *m->interrupted && !m->grace) {
    m->grace = 1;
    if (m->left > CL_LUA_GRACE_BUDGET) m->left = CL_LUA_GRACE_BUDGET;
  }
  if ((m->left -= HOOK_STEP) > 0) return;
  m->left = 0;
  m->fatal = 1; /* from now on every tick raises, so a pcall cannot outlast the budget */
  lua_getinfo(L, "Sl", ar);
  if (m->grace)
    lua_pushfstring(L, "%s:%d: interrupted: %s ran %I more Lua instructions after Ctrl-C without finishing",
                    ar->short_src, ar->currentline, m->phase, (lua_Integer)CL_LUA_GRACE_BUDGET);
  else
    lua_pushfstring(L, "%s:%d: %s ran past %s budget of %I Lua instructions%s", ar->short_src, ar->currentline,
                    m->phase, strncmp(m->phase, "the declarations", 16) ? "its" : "their", (lua_Integer)m->budget,
                    strncmp(m->phase, "the declarations", 16) ? " (clade run --lua-budget N)" : " (an endless loop?)");
  lua_error(L);
}

void cl_lua_limits_attach(lua_State *L, cl_lua_limits *lim) {
  *(cl_lua_limits **)lua_getextraspace(L) = lim;
  lua_sethook(L, count_hook, LUA_MASKCOUNT, HOOK_STEP);
}

void cl_lua_budget(lua_State *L, int64_t n, const char *phase, int fresh) {
  cl_lua_limits *m = cl_lua_limits_of(L);
  if (fresh) m->fatal = 0;
  if (m->fatal) return;
  m->budget = n;
  m->left = m->grace && n > CL_LUA_GRACE_BUDGET ? CL_LUA_GRACE_BUDGET : n;
  snprintf(m->phase, sizeof m->phase, "%s", phase);
}

/* A limit that ran out (budget, memory, Ctrl-C's grace) goes through every pcall. */
static int is_fatal(lua_State *L, int status) {
  cl_lua_limits *m = cl_lua_limits_of(L);
  if (status == LUA_ERRMEM || m->fatal) return 1;
  const char *s = lua_tostring(L, -1);
  return m->mem_hit && s && !strcmp(s, "not enough memory");
}

static int finish_pcall(lua_State *L, int status, lua_KContext extra) {
  if (status != LUA_OK && status != LUA_YIELD) {
    if (is_fatal(L, status)) return lua_error(L);
    lua_pushboolean(L, 0);
    lua_pushvalue(L, -2);
    return 2;
  }
  return lua_gettop(L) - (int)extra;
}

/* pcall and xpcall as Lua's base library has them, but a spent limit is raised again. */
static int s_pcall(lua_State *L) {
  luaL_checkany(L, 1);
  lua_pushboolean(L, 1);
  lua_insert(L, 1);
  return finish_pcall(L, lua_pcallk(L, lua_gettop(L) - 2, LUA_MULTRET, 0, 0, finish_pcall), 0);
}

static int s_xpcall(lua_State *L) {
  int n = lua_gettop(L);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_pushboolean(L, 1);
  lua_pushvalue(L, 1);
  lua_rotate(L, 3, 2);
  return finish_pcall(L, lua_pcallk(L, n - 2, LUA_MULTRET, 2, 2, finish_pcall), 2);
}

/* coroutine.resume: the standard one (upvalue 1); an error from a spent limit is raised. */
static int s_resume(lua_State *L) {
  int n = lua_gettop(L);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, n, LUA_MULTRET);
  if (!lua_toboolean(L, 1) && lua_gettop(L) >= 2) {
    lua_settop(L, 2);
    if (is_fatal(L, LUA_ERRRUN)) return lua_error(L);
  }
  return lua_gettop(L);
}

/* load(chunk [, name [, mode [, env]]]): text only, into the experiment environment unless
 * an env is given (never the trusted globals). */
static int s_load(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  const char *name = luaL_optstring(L, 2, "=(load)");
  if (luaL_loadbufferx(L, s, len, name, "t") != LUA_OK) {
    luaL_pushfail(L);
    lua_insert(L, -2);
    return 2;
  }
  if (!lua_isnone(L, 4)) lua_pushvalue(L, 4);
  else lua_getfield(L, LUA_REGISTRYINDEX, ENV_KEY);
  if (!lua_setupvalue(L, -2, 1)) lua_pop(L, 1);
  return 1;
}

void cl_lua_register_sandbox(lua_State *L) {
  lua_newtable(L);
  lua_pushcfunction(L, s_pcall);
  lua_setfield(L, -2, "pcall");
  lua_pushcfunction(L, s_xpcall);
  lua_setfield(L, -2, "xpcall");
  lua_pushcfunction(L, s_load);
  lua_setfield(L, -2, "load");
  lua_getglobal(L, "coroutine");
  lua_getfield(L, -1, "resume");
  lua_pushcclosure(L, s_resume, 1);
  lua_setfield(L, -3, "resume");
  lua_pop(L, 1);
  lua_getfield(L, LUA_REGISTRYINDEX, REQUIRE_KEY);
  lua_setfield(L, -2, "require");
  lua_setfield(L, -2, "sandbox");
}

/* searcher 1: "clade" and the public clade.* modules (registry PUBLIC_KEY: name -> loader);
 * clade's other modules are its internals and are refused outright. */
static int search_clade(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  if (strcmp(name, "clade") && strncmp(name, "clade.", 6)) return 0;
  lua_getfield(L, LUA_REGISTRYINDEX, PUBLIC_KEY);
  lua_getfield(L, -1, name);
  if (lua_isfunction(L, -1)) {
    lua_pushstring(L, ":clade:");
    return 2;
  }
  luaL_where(L, 2);
  return luaL_error(L, "%smodule '%s' is internal to clade: experiment files may require \"clade\", "
                       "\"clade.suites\", \"clade.protocols.common\" and modules of their own folder "
                       "(see docs/lua-api.md)",
                    lua_tostring(L, -1), name);
}

static int file_exists(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* searcher 2: a module of the experiment's own folder, "a.b" = <dir>/a/b.lua. Names are
 * words joined by dots, so nothing outside the folder can be named. */
static int search_folder(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  size_t n = strlen(name);
  int ok = n > 0 && n < 256 && name[0] != '.' && name[n - 1] != '.' && !strstr(name, "..");
  for (size_t i = 0; ok && i < n; i++)
    ok = (name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' && name[i] <= 'Z') ||
         (name[i] >= '0' && name[i] <= '9') || name[i] == '_' || name[i] == '.' || name[i] == '-';
  if (!ok) {
    lua_pushstring(L, "module names are words (letters, digits, _ and -) joined by dots");
    return 1;
  }
  lua_getfield(L, LUA_REGISTRYINDEX, DIR_KEY);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, lua_tostring(L, -2));
  luaL_addchar(&b, '/');
  for (size_t i = 0; i < n; i++) luaL_addchar(&b, name[i] == '.' ? '/' : name[i]);
  luaL_addstring(&b, ".lua");
  luaL_pushresult(&b);
  const char *path = lua_tostring(L, -1);
  if (!file_exists(path)) {
    lua_pushfstring(L, "no file '%s' (the experiment's folder)", path);
    return 1;
  }
  if (cl_lua_sandbox_loadfile(L, path) != LUA_OK)
    return luaL_error(L, "error loading module '%s' from file '%s':\n\t%s", name, path, lua_tostring(L, -1));
  lua_pushvalue(L, -2);
  return 2;
}

int cl_lua_sandbox_loadfile(lua_State *L, const char *path) {
  int rc = luaL_loadfilex(L, path, "t");
  if (rc != LUA_OK) return rc;
  lua_getfield(L, LUA_REGISTRYINDEX, ENV_KEY);
  if (!lua_setupvalue(L, -2, 1)) lua_pop(L, 1);
  return LUA_OK;
}

void cl_lua_sandbox_searchers(lua_State *L) {
  luaL_requiref(L, LUA_LOADLIBNAME, luaopen_package, 0);
  lua_getglobal(L, "require"); /* the standard require, bound to this package table */
  lua_setfield(L, LUA_REGISTRYINDEX, REQUIRE_KEY);
  lua_createtable(L, 2, 0);
  lua_pushcfunction(L, search_clade);
  lua_rawseti(L, -2, 1);
  lua_pushcfunction(L, search_folder);
  lua_rawseti(L, -2, 2);
  lua_setfield(L, -2, "searchers");
  lua_pushstring(L, "");
  lua_setfield(L, -2, "path");
  lua_pushstring(L, "");
  lua_setfield(L, -2, "cpath");
  lua_pushnil(L);
  lua_setfield(L, -2, "loadlib");
  lua_pop(L, 1);
  /* the opened libraries (and _G) must not come back through require's loaded table */
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_pushnil(L);
    lua_settable(L, -4);
  }
  lua_pop(L, 1);
}
