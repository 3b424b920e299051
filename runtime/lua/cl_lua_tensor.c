/* cl_lua_tensor: the small dense-matrix API protocols are written with (clade.tensor).
 * Matrices are 2-D, row-major, float64: evaluation math is cheap next to the encoders, and
 * double keeps near-ties (nearest centroid, cosine top-k) from flipping on rounding. GEMMs
 * go through CBLAS, the ridge solve through LAPACKE. */
#include <cblas.h>
#include <lapacke.h>
#include <lauxlib.h>
#include <lua.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "cl_lua.h"
#include "eval/cl_retrieval.h"

#define MT "clade.tensor"

/* Each side is at most INT_MAX (what BLAS and LAPACK index with) and the bytes must fit:
 * shapes come from experiment files, so new(2^62, 4) or new(2^32, 2^32) must not wrap. */
cl_lmat *cl_lmat_new(lua_State *L, int64_t r, int64_t c) {
  /* (luaL_error knows %I for lua_Integer, not %lld) */
  if (r < 0 || c < 0) luaL_error(L, "tensor: negative shape [%I,%I]", (lua_Integer)r, (lua_Integer)c);
  size_t nb = 0;
  if (r > INT_MAX || c > INT_MAX || cl_shape_bytes(2, (int64_t[]){r, c}, sizeof(double), &nb) != 0 ||
      nb > SIZE_MAX - sizeof(cl_lmat))
    luaL_error(L, "tensor: shape [%I,%I] is too large (at most %d per side, and its 8 x rows x columns bytes must fit in memory)",
               (lua_Integer)r, (lua_Integer)c, INT_MAX);
  cl_lmat *m = lua_newuserdatauv(L, sizeof(cl_lmat) + nb, 0);
  m->r = r;
  m->c = c;
  m->d = (double *)(m + 1);
  memset(m->d, 0, nb);
  luaL_setmetatable(L, MT);
  return m;
}

cl_lmat *cl_lmat_check(lua_State *L, int idx) { return luaL_checkudata(L, idx, MT); }

static int t_new(lua_State *L) {
  int64_t r = luaL_checkinteger(L, 1), c = luaL_checkinteger(L, 2);
  double v = luaL_optnumber(L, 3, 0);
  cl_lmat *m = cl_lmat_new(L, r, c);
  for (int64_t i = 0; i < r * c; i++) m->d[i] = v;
  return 1;
}

/* tensor.from{{1,2},{3,4}} or tensor.from{1,2,3} (one row) */
static int t_from(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer r = luaL_len(L, 1);
  if (r == 0) { cl_lmat_new(L, 0, 0); return 1; }
  lua_geti(L, 1, 1);
  int nested = lua_istable(L, -1);
  lua_Integer c = nested ? luaL_len(L, -1) : r;
  lua_pop(L, 1);
  if (!nested) {
    cl_lmat *m = cl_lmat_new(L, 1, c);
    for (lua_Integer j = 0; j < c; j++) {
      lua_geti(L, 1, j + 1);
      m->d[j] = luaL_checknumber(L, -1);
      lua_pop(L, 1);
    }
    return 1;
  }
  cl_lmat *m = cl_lmat_new(L, r, c);
  for (lua_Integer i = 0; i < r; i++) {
    lua_geti(L, 1, i + 1);
    if (!lua_istable(L, -1) || luaL_len(L, -1) != c) return luaL_error(L, "tensor.from: row %d has not %d values", (int)i + 1, (int)c);
    for (lua_Integer j = 0; j < c; j++) {
      lua_geti(L, -1, j + 1);
      m->d[i * c + j] = luaL_checknumber(L, -1);
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  return 1;
}

static int t_shape(lua_State *L) {
  cl_lmat *m = cl_lmat_check(L, 1);
  lua_pushinteger(L, m->r);
  lua_pushinteger(L, m->c);
  return 2;
}

static int64_t idx(lua_State *L, int arg, int64_t n, const char *what) {
  lua_Integer i = luaL_checkinteger(L, arg);
  if (i < 1 || i > n) luaL_error(L, "tensor: %s index %d out of range 1..%d", what, (int)i, (int)n);
  return i - 1;
}

static int t_get(lua_State *L) {
  cl_lmat *m = cl_lmat_check(L, 1);
  int64_t i = idx(L, 2, m->r, "row"), j = idx(L, 3, m->c, "column");
  lua_pushnumber(L, m->d[i * m->c + j]);
  return 1;
}

static int t_set(lua_State *L) {
  cl_lmat *m = cl_lmat_check(L, 1);
  int64_t i = idx(L, 2, m->r, "row"), j = idx(L, 3, m->c, "column");
  m->d[i * m->c + j] = luaL_checknumber(L, 4);
  return 0;
}

static int t_clone(lua_State *L) {
  cl_lmat *m = cl_lmat_check(L, 1);
  cl_lmat *o = cl_lmat_new(L, m->r, m->c);
  memcpy(o->d, m->d, (size_t)(m->r * m->c) * sizeof(double));
  return 1;
}

/* t:rows{i1, i2, ...} gathers rows (1-based) into a new matrix. */
static int t_rows(lua_State *L) {
  cl_lmat *m = cl_lmat_check(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_Integer n = luaL_len(L, 2);
  cl_lmat *o = cl_lmat_new(L, n, m->c);
  for (lua_Integer k = 0; k < n; k++) {
    lua_geti(L, 2, k + 1);
    lua_Integer i = lua_tointeger(L, -1);
    lua_pop(L, 1);
    if (i < 1 || i > m->r) return luaL_error(L, "tensor:rows: index %d out of range 1..%d", (int)i, (int)m->r);
    memcpy(o->d + k * m->c, m->d + (i - 1) * m->c, (size_t)m->c * sizeof(double));
  }
  return 1;
}

/* a:matmul(b [, transpose_b]) = a @ b  or  a @ bᵀ */
static int t_matmul(lua_State *L) {
  cl_lmat *a = cl_lmat_check(L, 1), *b = cl_lmat_check(L, 2);
  int tb = lua_toboolean(L, 3);
  int64_t k2 = tb ? b->c : b->r, n = tb ? b->r : b->c;
  if (a->c != k2) return luaL_error(L, "tensor:matmul: [%d,%d] @ [%d,%d]%s: inner sizes differ", (int)a->r, (int)a->c, (int)b->r, (int)b->c, tb ? "ᵀ" : "");
  cl_lmat *o = cl_lmat_new(L, a->r, n);
  if (a->r && n && a->c)
    cblas_dgemm(CblasRowMajor, CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)a->r, (int)n, (int)a->c, 1.0,
                a->d, (int)a->c, b->d, (int)b->c, 0.0, o->d, (int)n);
  return 1;
}

static int t_normalize(lua_State *L) {
  cl_lmat *m = cl_lmat_check(L, 1);
  cl_lmat *o = cl_lmat_new(L, m->r, m->c);
  for (int64_t i = 0; i < m->r; i++) {
    double s = 0;
    for (int64_t j = 0; j < m->c; j++) s += m->d[i * m->c + j] * m->d[i * m->c + j];
    double inv = s > 0 ? 1.0 / sqrt(s) : 0;
    for (int64_t j = 0; j < m->c; j++) o->d[i * m->c + j] = m->d[i * m->c + j] * inv;
  }
  return 1;
}

/* column means over rows: [r,c] -> [1,c] */
static int t_mean(lua_State *L) {
  cl_lmat *m = cl_lmat_check(L, 1);
  if (m->r == 0) return luaL_error(L, "tensor:mean: no rows");
  cl_lmat *o = cl_lmat_new(L, 1, m->c);
  for (int64_t i = 0; i < m->r; i++)
    for (int64_t j = 0; j < m->c; j++) o->d[j] += m->d[i * m->c + j];
  for (int64_t j = 0; j < m->c; j++) o->d[j] /= (double)m->r;
  return 1;
}

/* t:block_mean(k): means of consecutive blocks of k rows: [r,c] -> [r/k,c] (template averaging) */
static int t_block_mean(lua_State *L) {
  cl_lmat *m = cl_lmat_check(L, 1);
  lua_Integer k = luaL_checkinteger(L, 2);
  if (k < 1 || m->r % k != 0) return luaL_error(L, "tensor:block_mean: %d rows do not split into blocks of %d", (int)m->r, (int)k);
  cl_lmat *o = cl_lmat_new(L, m->r / k, m->c);
  for (int64_t i = 0; i < m->r; i++)
    for (int64_t j = 0; j < m->c; j++) o->d[(i / k) * m->c + j] += m->d[i * m->c + j];
  for (int64_t i = 0; i < o->r * o->c; i++) o->d[i] /= (double)k;
  return 1;
}

/* elementwise a op b; b may be [1,c] (broadcast over rows) or a number */
static int binop(lua_State *L, int op) {
  cl_lmat *a = cl_lmat_check(L, 1);
  cl_lmat *o = cl_lmat_new(L, a->r, a->c);
  if (lua_isnumber(L, 2)) {
    double s = lua_tonumber(L, 2);
    for (int64_t i = 0; i < a->r * a->c; i++)
      o->d[i] = op == 0 ? a->d[i] + s : op == 1 ? a->d[i] - s : a->d[i] * s;
    return 1;
  }
  cl_lmat *b = cl_lmat_check(L, 2);
  int bc = b->r == 1 && a->r != 1;
  if (b->c != a->c || (!bc && b->r != a->r))
    return luaL_error(L, "tensor: shapes [%d,%d] and [%d,%d] do not broadcast", (int)a->r, (int)a->c, (int)b->r, (int)b->c);
  for (int64_t i = 0; i < a->r; i++)
    for (int64_t j = 0; j < a->c; j++) {
      double x = a->d[i * a->c + j], y = b->d[(bc ? 0 : i) * a->c + j];
      o->d[i * a->c + j] = op == 0 ? x + y : op == 1 ? x - y : x * y;
    }
  return 1;
}
static int t_add(lua_State *L) { return binop(L, 0); }
static int t_sub(lua_State *L) { return binop(L, 1); }
static int t_mul(lua_State *L) { return binop(L, 2); }

/* Euclidean distances between rows: [r_a, r_b] */
static int t_cdist(lua_State *L) {
  cl_lmat *a = cl_lmat_check(L, 1), *b = cl_lmat_check(L, 2);
  if (a->c != b->c) return luaL_error(L, "tensor:cdist: widths %d and %d differ", (int)a->c, (int)b->c);
  cl_lmat *o = cl_lmat_new(L, a->r, b->r);
  for (int64_t i = 0; i < a->r; i++)
    for (int64_t k = 0; k < b->r; k++) {
      double s = 0;
      for (int64_t j = 0; j < a->c; j++) {
        double d = a->d[i * a->c + j] - b->d[k * b->c + j];
        s += d * d;
      }
      o->d[i * b->r + k] = sqrt(s);
    }
  return 1;
}

/* per-row arg-extreme, 1-based; ties go to the lowest index (as numpy/torch argmax) */
static int argext(lua_State *L, int want_max) {
  cl_lmat *m = cl_lmat_check(L, 1);
  lua_createtable(L, (int)m->r, 0);
  for (int64_t i = 0; i < m->r; i++) {
    int64_t best = 0;
    for (int64_t j = 1; j < m->c; j++) {
      double v = m->d[i * m->c + j], bv = m->d[i * m->c + best];
      if (want_max ? v > bv : v < bv) best = j;
    }
    lua_pushinteger(L, best + 1);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}
static int t_argmax(lua_State *L) { return argext(L, 1); }
static int t_argmin(lua_State *L) { return argext(L, 0); }

/* t:topk(k): per row, the k column indices (1-based) of the largest values, best first */
static int t_topk(lua_State *L) {
  cl_lmat *m = cl_lmat_check(L, 1);
  lua_Integer k = luaL_checkinteger(L, 2);
  if (k < 0) return luaL_error(L, "tensor:topk: k = %I is negative", (lua_Integer)k);
  if (k > m->c) k = m->c;
  int64_t *best = lua_newuserdatauv(L, (size_t)(k > 0 ? k : 1) * sizeof(int64_t), 0);
  lua_createtable(L, (int)m->r, 0);
  for (int64_t i = 0; i < m->r; i++) {
    const double *row = m->d + i * m->c;
    int n = 0;
    for (int64_t j = 0; k > 0 && j < m->c; j++) { /* insertion into a sorted list of k: stable for ties */
      if (n == k && row[j] <= row[best[n - 1]]) continue;
      int p = n < k ? n++ : (int)k - 1;
      while (p > 0 && row[best[p - 1]] < row[j]) { best[p] = best[p - 1]; p--; }
      best[p] = j;
    }
    lua_createtable(L, n, 0);
    for (int q = 0; q < n; q++) {
      lua_pushinteger(L, best[q] + 1);
      lua_rawseti(L, -2, q + 1);
    }
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* q:cosine_topk(keys, k): per row of q, the k rows of keys (1-based) of highest cosine
 * similarity, best first; equal similarities keep the lower key first (cl_retrieval_topk). */
static int t_cosine_topk(lua_State *L) {
  cl_lmat *q = cl_lmat_check(L, 1), *keys = cl_lmat_check(L, 2);
  lua_Integer k = luaL_checkinteger(L, 3);
  if (q->c != keys->c)
    return luaL_error(L, "cosine_topk: queries are %I wide but keys %I", (lua_Integer)q->c, (lua_Integer)keys->c);
  if (k < 1 || k > 1000000) return luaL_error(L, "cosine_topk: k = %I outside 1..1000000", k);
  if (k > keys->r) k = keys->r;
  if (k == 0 || q->r == 0 || q->c == 0) {
    lua_createtable(L, (int)q->r, 0);
    for (int64_t i = 0; i < q->r; i++) {
      lua_newtable(L);
      lua_rawseti(L, -2, i + 1);
    }
    return 1;
  }
  int64_t *best = lua_newuserdatauv(L, (size_t)q->r * (size_t)k * sizeof *best, 0);
  cl_error e;
  if (cl_retrieval_topk(q->d, q->r, keys->d, keys->r, q->c, (int)k, best, &e) != CL_OK)
    return luaL_error(L, "cosine_topk: %s", e.msg);
  lua_createtable(L, (int)q->r, 0);
  for (int64_t i = 0; i < q->r; i++) {
    lua_createtable(L, (int)k, 0);
    for (lua_Integer p = 0; p < k && best[i * k + p] >= 0; p++) {
      lua_pushinteger(L, best[i * k + p] + 1);
      lua_rawseti(L, -2, p + 1);
    }
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* tensor.cat{a, b, ...}: stack rows */
static int t_cat(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer n = luaL_len(L, 1);
  int64_t rows = 0, c = -1;
  for (lua_Integer k = 1; k <= n; k++) {
    lua_geti(L, 1, k);
    cl_lmat *m = cl_lmat_check(L, -1);
    if (c >= 0 && m->c != c) return luaL_error(L, "tensor.cat: widths %d and %d differ", (int)c, (int)m->c);
    c = m->c;
    rows += m->r;
    lua_pop(L, 1);
  }
  cl_lmat *o = cl_lmat_new(L, rows, c < 0 ? 0 : c);
  int64_t at = 0;
  for (lua_Integer k = 1; k <= n; k++) {
    lua_geti(L, 1, k);
    cl_lmat *m = lua_touserdata(L, -1);
    memcpy(o->d + at * o->c, m->d, (size_t)(m->r * m->c) * sizeof(double));
    at += m->r;
    lua_pop(L, 1);
  }
  return 1;
}

/* tensor.ridge(X [n,d], Y [n,k], lambda): W [d,k] = (XᵀX + λI)⁻¹ XᵀY by Cholesky (LAPACK dposv). */
static int t_ridge(lua_State *L) {
  cl_lmat *x = cl_lmat_check(L, 1), *y = cl_lmat_check(L, 2);
  double lam = luaL_checknumber(L, 3);
  if (x->r != y->r) return luaL_error(L, "tensor.ridge: X has %d rows, Y %d", (int)x->r, (int)y->r);
  int64_t d = x->c, k = y->c;
  cl_lmat *a = cl_lmat_new(L, d, d);
  cl_lmat *w = cl_lmat_new(L, d, k);
  cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)d, (int)d, (int)x->r, 1.0, x->d, (int)d, x->d, (int)d, 0.0, a->d, (int)d);
  for (int64_t i = 0; i < d; i++) a->d[i * d + i] += lam;
  cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)d, (int)k, (int)x->r, 1.0, x->d, (int)d, y->d, (int)k, 0.0, w->d, (int)k);
  lapack_int info = LAPACKE_dposv(LAPACK_ROW_MAJOR, 'U', (lapack_int)d, (lapack_int)k, a->d, (lapack_int)d, w->d, (lapack_int)k);
  if (info != 0) return luaL_error(L, "tensor.ridge: LAPACK dposv failed (info %d): increase lambda", (int)info);
  return 1; /* w is on top */
}

static int t_totable(lua_State *L) {
  cl_lmat *m = cl_lmat_check(L, 1);
  lua_createtable(L, (int)m->r, 0);
  for (int64_t i = 0; i < m->r; i++) {
    lua_createtable(L, (int)m->c, 0);
    for (int64_t j = 0; j < m->c; j++) {
      lua_pushnumber(L, m->d[i * m->c + j]);
      lua_rawseti(L, -2, j + 1);
    }
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int t_tostring(lua_State *L) {
  cl_lmat *m = cl_lmat_check(L, 1);
  lua_pushfstring(L, "tensor[%d,%d]", (int)m->r, (int)m->c);
  return 1;
}

static const luaL_Reg methods[] = {
  {"shape", t_shape}, {"get", t_get}, {"set", t_set}, {"clone", t_clone}, {"rows", t_rows},
  {"matmul", t_matmul}, {"normalize", t_normalize}, {"mean", t_mean}, {"block_mean", t_block_mean}, {"add", t_add},
  {"sub", t_sub}, {"mul", t_mul}, {"cdist", t_cdist}, {"argmax", t_argmax}, {"argmin", t_argmin},
  {"topk", t_topk}, {"cosine_topk", t_cosine_topk}, {"totable", t_totable}, {NULL, NULL}};

static const luaL_Reg funcs[] = {{"new", t_new}, {"from", t_from}, {"cat", t_cat}, {"ridge", t_ridge}, {NULL, NULL}};

int cl_lua_open_tensor(lua_State *L) {
  if (luaL_newmetatable(L, MT)) {
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, t_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  return 1;
}
