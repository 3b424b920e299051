/* cl_lua_data: manifests, image checks and precomputed features for Lua. */
#include <lauxlib.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cl_lua.h"
#include "image/cl_image.h"
#include "io/cl_manifest.h"
#include "eval/cl_retrieval.h"
#include "io/cl_safetensors.h"
#include "model/cl_modality.h"
#include "store/cl_store.h"

static void setstr(lua_State *L, const char *k, const char *v) {
  if (!v) return;
  lua_pushstring(L, v);
  lua_setfield(L, -2, k);
}

#define MANIFEST_MT "clade.manifest"

/* The parsed manifest stays in C: data:column(name) builds one column's Lua list on demand. */
static cl_manifest *check_manifest(lua_State *L) { return luaL_checkudata(L, 1, MANIFEST_MT); }

/* data:column(name) -> { value per row, manifest order } or nil when there is no such column */
static int l_manifest_column(lua_State *L) {
  const cl_manifest *m = check_manifest(L);
  int col = cl_manifest_column(m, luaL_checkstring(L, 2));
  if (col < 0) {
    lua_pushnil(L);
    return 1;
  }
  lua_createtable(L, m->n_rows, 0);
  for (int i = 0; i < m->n_rows; i++) {
    lua_pushstring(L, cl_manifest_cell(m, i, col));
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int l_manifest_gc(lua_State *L) {
  cl_manifest_free(check_manifest(L));
  return 0;
}

/* core.manifest(path) -> { classes = {{label, kingdom, ..., common_name}}, rows = {{filepath, class, line}},
 *                           filepaths = {...}, labels = {...}, has_taxonomy, has_common,
 *                           columns = {header names}, data = manifest userdata (:column(name)) } */
static int l_manifest(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  cl_manifest *mp = lua_newuserdatauv(L, sizeof *mp, 0);
  memset(mp, 0, sizeof *mp);
  luaL_setmetatable(L, MANIFEST_MT);
  int ud = lua_gettop(L);
  cl_error e;
  if (cl_manifest_load(path, mp, &e) != CL_OK) return luaL_error(L, "%s", e.msg);
  const cl_manifest m = *mp; /* a view; the userdata owns it */
  lua_createtable(L, 0, 8);
  lua_pushvalue(L, ud);
  lua_setfield(L, -2, "data");
  lua_createtable(L, m.n_cols, 0);
  for (int i = 0; i < m.n_cols; i++) {
    lua_pushstring(L, m.col_names[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "columns");
  lua_createtable(L, m.n_classes, 0);
  for (int i = 0; i < m.n_classes; i++) {
    const cl_manifest_class *c = &m.classes[i];
    lua_createtable(L, 0, 10);
    setstr(L, "label", c->label);
    setstr(L, "kingdom", c->kingdom);
    setstr(L, "phylum", c->phylum);
    setstr(L, "cls", c->cls);
    setstr(L, "order", c->order);
    setstr(L, "family", c->family);
    setstr(L, "genus", c->genus);
    setstr(L, "species", c->species);
    setstr(L, "common_name", c->common_name);
    lua_pushinteger(L, c->n_images);
    lua_setfield(L, -2, "n_images");
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "classes");
  lua_createtable(L, m.n_classes, 0);
  for (int i = 0; i < m.n_classes; i++) {
    lua_pushstring(L, m.classes[i].label);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "labels");
  lua_createtable(L, m.n_rows, 0);
  lua_createtable(L, m.n_rows, 0);
  for (int i = 0; i < m.n_rows; i++) {
    lua_createtable(L, 0, 2);
    lua_pushstring(L, m.rows[i].filepath);
    lua_pushvalue(L, -1);
    lua_rawseti(L, -4, i + 1); /* filepaths[i] */
    lua_setfield(L, -2, "filepath");
    lua_pushinteger(L, m.rows[i].cls + 1);
    lua_setfield(L, -2, "class");
    lua_pushinteger(L, m.rows[i].line);
    lua_setfield(L, -2, "line");
    lua_rawseti(L, -3, i + 1);
  }
  lua_setfield(L, -3, "filepaths");
  lua_setfield(L, -2, "rows");
  lua_pushboolean(L, m.has_taxonomy);
  lua_setfield(L, -2, "has_taxonomy");
  lua_pushboolean(L, m.has_common);
  lua_setfield(L, -2, "has_common");
  setstr(L, "path", path);
  return 1;
}

/* core.join(root, rel): rel unless absolute, else root/rel */
static int l_join(lua_State *L) {
  const char *a = luaL_checkstring(L, 1), *b = luaL_checkstring(L, 2);
  if (b[0] == '/') lua_pushstring(L, b);
  else lua_pushfstring(L, "%s/%s", a, b);
  return 1;
}

/* core.check_image(path) -> "ok" | "missing" | "unreadable", why */
static int l_check_image(lua_State *L) {
  const char *p = luaL_checkstring(L, 1);
  struct stat st;
  if (stat(p, &st) != 0) {
    lua_pushstring(L, "missing");
    return 1;
  }
  cl_img im;
  cl_error e;
  if (cl_img_decode_file(p, &im, &e) != CL_OK) {
    lua_pushstring(L, "unreadable");
    lua_pushstring(L, e.msg);
    return 2;
  }
  cl_img_free(&im);
  lua_pushstring(L, "ok");
  return 1;
}

/* core.load_features(path, n_rows[, name]) -> tensor [N,D], content hash of the file.
 * The file holds `name` (default `image_embeddings`, e.g. `dna_embeddings`) [N,D] in
 * manifest order. */
static int l_load_features(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lua_Integer want = luaL_optinteger(L, 2, -1);
  const char *name = luaL_optstring(L, 3, "image_embeddings");
  cl_tmap m;
  cl_error e;
  if (cl_st_load(path, &m, &e) != CL_OK) return luaL_error(L, "%s", e.msg);
  const cl_tensor *t = cl_tmap_get(&m, name);
  if (!t || t->ndim != 2) {
    cl_tmap_free(&m);
    return luaL_error(L, "%s: needs a 2-D tensor '%s' [N,D]", path, name);
  }
  if (want >= 0 && t->shape[0] != want) {
    lua_Integer n = t->shape[0];
    cl_tmap_free(&m);
    return luaL_error(L, "%s: %s has %I rows but the manifest lists %I %s", path, name, n, want,
                      strcmp(name, "image_embeddings") ? "rows" : "images");
  }
  if (t->shape[0] > INT_MAX || t->shape[1] > INT_MAX) { /* cl_lmat_new's limit, said before it longjmps */
    lua_Integer r = t->shape[0], c = t->shape[1];
    cl_tmap_free(&m);
    return luaL_error(L, "%s: %s [%I,%I] is too large", path, name, r, c);
  }
  cl_lmat *o = cl_lmat_new(L, t->shape[0], t->shape[1]);
  int64_t n = t->shape[0] * t->shape[1];
  float *tmp = cl_xmalloc((size_t)n * sizeof(float));
  int rc = cl_to_f32(t->dtype, t->data, tmp, n, &e);
  for (int64_t i = 0; rc == CL_OK && i < n; i++) o->d[i] = tmp[i];
  free(tmp);
  cl_tmap_free(&m);
  if (rc != CL_OK) return luaL_error(L, "%s: %s", path, e.msg);
  char hash[41]; /* the file's bytes are its identity */
  if (cl_hash_file(path, hash, &e) != CL_OK) return luaL_error(L, "%s", e.msg);
  lua_pushstring(L, hash);
  return 2;
}

/* Label strings -> ids of one shared space, through the interning table at `ids`. */
static int *label_ids(lua_State *L, int list, int ids, lua_Integer n, int *next) {
  int *out = cl_xmalloc((size_t)(n ? n : 1) * sizeof *out);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_geti(L, list, i);
    if (!lua_isstring(L, -1)) {
      free(out);
      luaL_error(L, "retrieval_accuracy: label %I is not a string", i);
    }
    lua_pushvalue(L, -1);
    if (lua_rawget(L, ids) == LUA_TNUMBER) {
      out[i - 1] = (int)lua_tointeger(L, -1);
      lua_pop(L, 2);
    } else {
      lua_pop(L, 1);
      out[i - 1] = (*next)++;
      lua_pushinteger(L, out[i - 1]);
      lua_rawset(L, ids); /* pops the label and the id */
    }
  }
  return out;
}

/* core.retrieval_accuracy(query_labels, key_labels, topk, k) -> micro, macro: CLIBD's top-k
 * micro and macro accuracy of one rank (labels are strings, one per query / key; topk is
 * cosine_topk's answer, 1-based key indices per query). */
static int l_retrieval_accuracy(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_Integer k = luaL_checkinteger(L, 4);
  lua_Integer nq = luaL_len(L, 1), nk = luaL_len(L, 2);
  if (luaL_len(L, 3) != nq)
    return luaL_error(L, "retrieval_accuracy: %I queries but %I retrieved lists", nq, luaL_len(L, 3));
  if (k < 1 || k > 1000000) return luaL_error(L, "retrieval_accuracy: k = %I outside 1..1000000", k);
  if (nq > INT_MAX || nk > INT_MAX) return luaL_error(L, "retrieval_accuracy: too many queries or keys");
  lua_newtable(L);
  int ids = lua_gettop(L), next = 0;
  int *ql = label_ids(L, 1, ids, nq, &next), *kl = label_ids(L, 2, ids, nk, &next);
  int64_t *top = cl_xmalloc((size_t)(nq ? nq : 1) * (size_t)k * sizeof *top);
  const char *bad = NULL;
  for (lua_Integer i = 1; i <= nq && !bad; i++) {
    lua_geti(L, 3, i);
    for (lua_Integer p = 1; p <= k; p++) {
      lua_geti(L, -1, p);
      lua_Integer j = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : 0;
      if (!lua_isnil(L, -1) && (j < 1 || j > nk)) bad = "a retrieved key index outside the keys";
      top[(i - 1) * k + p - 1] = lua_isnil(L, -1) ? -1 : j - 1;
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  double micro = 0, macro = 0;
  cl_error e = {0};
  int rc = bad ? CL_EINVAL
               : cl_retrieval_accuracy(ql, nq, kl, nk, top, (int)k, (int)k, next ? next : 1, &micro, &macro, &e);
  free(ql), free(kl), free(top);
  if (bad) return luaL_error(L, "retrieval_accuracy: %s", bad);
  if (rc != CL_OK) return luaL_error(L, "%s", e.msg);
  lua_pushnumber(L, micro);
  lua_pushnumber(L, macro);
  return 2;
}

/* core.modality_column(name) -> the manifest column a modality's items come from (nil when it
 * has none, like text); an unknown modality is an error naming the registered ones. */
static int l_modality_column(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  const cl_modality *m = cl_modality_find(name);
  if (!m) {
    char known[256];
    return luaL_error(L, "modality '%s' is not registered (known: %s)", name, cl_modality_list(known, sizeof known));
  }
  if (m->column) lua_pushstring(L, m->column);
  else lua_pushnil(L);
  return 1;
}

/* core.emit_line(s): one line of data on stdout. */
static int l_emit_line(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  fwrite(s, 1, n, stdout);
  fputc('\n', stdout);
  return 0;
}

void cl_lua_register_data(lua_State *L) {
  if (luaL_newmetatable(L, MANIFEST_MT)) {
    static const luaL_Reg m[] = {{"column", l_manifest_column}, {NULL, NULL}};
    luaL_newlib(L, m);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_manifest_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, l_manifest_gc);
    lua_setfield(L, -2, "__close");
  }
  lua_pop(L, 1);
  static const luaL_Reg fns[] = {{"manifest", l_manifest}, {"join", l_join}, {"check_image", l_check_image},
                                 {"load_features", l_load_features}, {"emit_line", l_emit_line},
                                 {"retrieval_accuracy", l_retrieval_accuracy},
                                 {"modality_column", l_modality_column}, {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
}
