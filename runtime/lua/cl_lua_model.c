/* cl_lua_model: encoders for Lua. core.open_model{path, config, gelu, precision} returns a
 * handle with :embed(modality, items) (a tensor of raw embeddings; :embed_images(paths) and
 * :embed_texts(texts) are its image and text forms), :modalities() and :hash(). The handle
 * owns its cl_encoder and frees it when collected. */
#include <lauxlib.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cl_lua.h"
#include "model/cl_encoder.h"

#define MT "clade.model"

typedef struct {
  cl_encoder *enc;
} handle;

static cl_encoder *check(lua_State *L) {
  handle *h = luaL_checkudata(L, 1, MT);
  if (!h->enc) luaL_error(L, "model handle is closed");
  return h->enc;
}

static const char *field(lua_State *L, const char *k) {
  lua_getfield(L, 1, k);
  const char *s = lua_tostring(L, -1);
  lua_pop(L, 1);
  return s;
}

static int l_open_model(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  cl_lua_run *run = cl_lua_get_run(L);
  cl_encoder_spec spec = {.path = field(L, "path"), .config = field(L, "config"), .gelu = field(L, "gelu"),
                          .precision = field(L, "precision"), .backend = run ? run->backend : NULL,
                          .decode = run ? run->decode : NULL,
                          .quiet = run ? run->quiet : 0};
  const char *name = field(L, "name");
  /* one precision per run, the one recorded with it (clade run --precision, fp32 by default):
   * a model that asks for another is an error, not a silent mix */
  if (run && run->precision) {
    if (spec.precision && strcmp(spec.precision, run->precision))
      return luaL_error(L, "model '%s': precision = \"%s\", but this run computes in %s (clade run --precision %s)",
                        name ? name : "?", spec.precision, run->precision, spec.precision);
    spec.precision = run->precision;
  }
  if (run && run->cache) {
    spec.hash_file = (int (*)(void *, const char *, char *, cl_error *))cl_cache_file_hash;
    spec.hash_ud = run->cache;
  }
  handle *h = lua_newuserdatauv(L, sizeof *h, 0);
  h->enc = NULL;
  luaL_setmetatable(L, MT);
  cl_error e;
  if (cl_encoder_open(&spec, &h->enc, &e) != CL_OK)
    return luaL_error(L, "model '%s': %s", name ? name : "?", e.msg);
  return 1;
}

/* a Lua list of strings as a C array that lives on the Lua stack (as userdata) */
static const char **string_list(lua_State *L, int idx, lua_Integer *n) {
  luaL_checktype(L, idx, LUA_TTABLE);
  *n = luaL_len(L, idx);
  const char **v = lua_newuserdatauv(L, (size_t)(*n > 0 ? *n : 1) * sizeof(char *), 0);
  for (lua_Integer i = 0; i < *n; i++) {
    lua_geti(L, idx, i + 1);
    v[i] = lua_tostring(L, -1);
    if (!v[i]) luaL_error(L, "entry %d is not a string", (int)i + 1);
    lua_pop(L, 1); /* the table keeps the string alive */
  }
  return v;
}

static int to_tensor(lua_State *L, const float *f, lua_Integer n, int d) {
  cl_lmat *m = cl_lmat_new(L, n, d);
  for (int64_t i = 0; i < n * d; i++) m->d[i] = f[i];
  return 1;
}

/* the items of handle:embed(modality, items [, label]) at stack index idx -> tensor [n, D] of
 * raw embeddings, through the run's cache */
static int embed(lua_State *L, const char *modality, int idx) {
  cl_encoder *enc = check(L);
  cl_error e;
  const cl_tower *t = cl_encoder_tower(enc, modality, &e);
  if (!t) return luaL_error(L, "%s", e.msg);
  lua_Integer n;
  const char **items = string_list(L, idx, &n);
  if (n > INT_MAX / (t->dim > 0 ? t->dim : 1)) return luaL_error(L, "embed: %lld items is too many", (long long)n);
  int D = t->dim;
  float *out = cl_xmalloc((size_t)(n > 0 ? n : 1) * D * sizeof(float));
  cl_lua_run *run = cl_lua_get_run(L);
  cl_sched_stats scratch = {0};
  cl_sched_opts o = {.cache = run ? run->cache : NULL, .label = luaL_optstring(L, idx + 1, ""),
                     .progress = run ? (run->quiet ? CL_PROGRESS_OFF : run->progress) : CL_PROGRESS_OFF};
  if (cl_sched_embed(enc, modality, &o, items, (int)n, out, run ? &run->stats : &scratch, &e) != CL_OK) {
    free(out);
    return luaL_error(L, "%s", e.msg);
  }
  to_tensor(L, out, n, D);
  free(out);
  return 1;
}

static int l_embed(lua_State *L) { return embed(L, luaL_checkstring(L, 2), 3); }
static int l_embed_images(lua_State *L) { return embed(L, "image", 2); }
static int l_embed_texts(lua_State *L) { return embed(L, "text", 2); }

/* handle:modalities() -> the modality names it has towers for, in registry order */
static int l_modalities(lua_State *L) {
  cl_encoder *enc = check(L);
  lua_createtable(L, enc->ntowers, 0);
  for (int i = 0; i < enc->ntowers; i++) {
    lua_pushstring(L, enc->towers[i].mod->name);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int l_hash(lua_State *L) {
  lua_pushstring(L, check(L)->hash);
  return 1;
}

static int l_config_hash(lua_State *L) {
  lua_pushstring(L, check(L)->config_hash);
  return 1;
}

static int l_logit_scale(lua_State *L) {
  lua_pushnumber(L, check(L)->logit_scale);
  return 1;
}

static int l_gc(lua_State *L) {
  handle *h = luaL_checkudata(L, 1, MT);
  cl_encoder_close(h->enc);
  h->enc = NULL;
  return 0;
}

void cl_lua_register_models(lua_State *L) {
  if (luaL_newmetatable(L, MT)) {
    static const luaL_Reg m[] = {{"embed", l_embed}, {"embed_images", l_embed_images}, {"embed_texts", l_embed_texts},
                                 {"modalities", l_modalities},
                                 {"hash", l_hash}, {"config_hash", l_config_hash},
                                 {"logit_scale", l_logit_scale}, {NULL, NULL}};
    luaL_newlib(L, m);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, l_open_model);
  lua_setfield(L, -2, "open_model");
}
