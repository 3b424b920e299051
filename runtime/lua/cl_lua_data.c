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
#include "io/cl_safetensors.h"
#include "store/cl_store.h"

static void setstr(lua_State *L, const char *k, const char *v) {
  if (!v) return;
  lua_pushstring(L, v);
  lua_setfield(L, -2, k);
}

/* core.manifest(path) -> { classes = {{label, kingdom, ..., common_name}}, rows = {{filepath, class, line}},
 *                           filepaths = {...}, labels = {...}, has_taxonomy, has_common } */
static int l_manifest(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  cl_manifest m;
  cl_error e;
  if (cl_manifest_load(path, &m, &e) != CL_OK) return luaL_error(L, "%s", e.msg);
  lua_createtable(L, 0, 6);
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
  cl_manifest_free(&m);
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

/* core.load_features(path, n_rows) -> tensor [N,D], content hash of the file.
 * The file holds `image_embeddings` [N,D] in manifest order. */
static int l_load_features(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lua_Integer want = luaL_optinteger(L, 2, -1);
  cl_tmap m;
  cl_error e;
  if (cl_st_load(path, &m, &e) != CL_OK) return luaL_error(L, "%s", e.msg);
  const cl_tensor *t = cl_tmap_get(&m, "image_embeddings");
  if (!t || t->ndim != 2) {
    cl_tmap_free(&m);
    return luaL_error(L, "%s: needs a 2-D tensor 'image_embeddings' [N,D]", path);
  }
  if (want >= 0 && t->shape[0] != want) {
    lua_Integer n = t->shape[0];
    cl_tmap_free(&m);
    return luaL_error(L, "%s: image_embeddings has %I rows but the manifest lists %I images", path, n, want);
  }
  if (t->shape[0] > INT_MAX || t->shape[1] > INT_MAX) { /* cl_lmat_new's limit, said before it longjmps */
    lua_Integer r = t->shape[0], c = t->shape[1];
    cl_tmap_free(&m);
    return luaL_error(L, "%s: image_embeddings [%I,%I] is too large", path, r, c);
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

/* core.emit_line(s): one line of data on stdout. */
static int l_emit_line(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  fwrite(s, 1, n, stdout);
  fputc('\n', stdout);
  return 0;
}

void cl_lua_register_data(lua_State *L) {
  static const luaL_Reg fns[] = {{"manifest", l_manifest}, {"join", l_join}, {"check_image", l_check_image},
                                 {"load_features", l_load_features}, {"emit_line", l_emit_line}, {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
}
