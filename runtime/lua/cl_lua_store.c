/* cl_lua_store: core.store_eval{...} writes one finished evaluation in one transaction.
 * Class indices and example numbers from Lua become labels and manifest file paths here. */
#include <cjson/cJSON.h>
#include <lauxlib.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cl_lua.h"
#include "store/cl_store.h"

static const char *opt_str(lua_State *L, int t, const char *k) {
  lua_getfield(L, t, k);
  const char *s = lua_tostring(L, -1); /* stays alive: the table holds the string */
  lua_pop(L, 1);
  return s;
}

static lua_Integer opt_int(lua_State *L, int t, const char *k, lua_Integer d) {
  lua_getfield(L, t, k);
  lua_Integer v = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : lua_isnumber(L, -1) ? (lua_Integer)lua_tonumber(L, -1) : d;
  lua_pop(L, 1);
  return v;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* A Lua value (numbers, strings, booleans, tables) as JSON, keys sorted for stable bytes. */
static cJSON *to_json(lua_State *L, int idx, int depth) {
  idx = lua_absindex(L, idx);
  switch (lua_type(L, idx)) {
  case LUA_TNUMBER: return cJSON_CreateNumber(lua_tonumber(L, idx));
  case LUA_TSTRING: return cJSON_CreateString(lua_tostring(L, idx));
  case LUA_TBOOLEAN: return cJSON_CreateBool(lua_toboolean(L, idx));
  case LUA_TTABLE: {
    if (depth > 8) return cJSON_CreateNull();
    lua_Integer n = luaL_len(L, idx);
    if (n > 0) {
      cJSON *a = cJSON_CreateArray();
      for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, idx, i);
        cJSON_AddItemToArray(a, to_json(L, -1, depth + 1));
        lua_pop(L, 1);
      }
      return a;
    }
    /* keys sorted, so the same parameters always give the same bytes */
    int nk = 0, cap = 16;
    const char **keys = malloc((size_t)cap * sizeof *keys);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
      if (lua_type(L, -2) == LUA_TSTRING) {
        if (nk == cap) keys = realloc(keys, (size_t)(cap *= 2) * sizeof *keys);
        keys[nk++] = lua_tostring(L, -2); /* the table keeps the key alive */
      }
      lua_pop(L, 1);
    }
    qsort(keys, (size_t)nk, sizeof *keys, cmp_str);
    cJSON *o = cJSON_CreateObject();
    for (int i = 0; i < nk; i++) {
      lua_getfield(L, idx, keys[i]);
      cJSON_AddItemToObject(o, keys[i], to_json(L, -1, depth + 1));
      lua_pop(L, 1);
    }
    free(keys);
    return o;
  }
  default: return cJSON_CreateNull();
  }
}

/* labels[i] of the table at `t`.field, 1-based */
static const char *nth(lua_State *L, int t, const char *field, lua_Integer i) {
  lua_getfield(L, t, field);
  lua_geti(L, -1, i);
  const char *s = lua_tostring(L, -1);
  lua_pop(L, 2);
  return s ? s : "";
}

/* One retrieval prediction: query row ex (1-based), the retrieved key rows (1-based) in the
 * table at rv; labels come from row_labels (one per manifest row: the cell's rank), the rows
 * are stored 0-based, with hit: where the first key of the query's label was retrieved. */
static int retrieval_prediction(lua_State *L, cl_store *s, int64_t eid, int trial, lua_Integer ex, int rv,
                                cl_error *e) {
  lua_Integer n = luaL_len(L, rv);
  cJSON *a = cJSON_CreateArray();
  lua_Integer top = 0;
  const char *label = nth(L, 1, "row_labels", ex);
  int hit = 0;
  for (lua_Integer i = 1; i <= n; i++) {
    lua_geti(L, rv, i);
    lua_Integer row = lua_tointeger(L, -1);
    lua_pop(L, 1);
    if (i == 1) top = row;
    if (!hit && i <= INT_MAX && strcmp(nth(L, 1, "row_labels", row), label) == 0) hit = (int)i;
    cJSON_AddItemToArray(a, cJSON_CreateNumber((double)(row - 1)));
  }
  char *json = cJSON_PrintUnformatted(a);
  cJSON_Delete(a);
  const char *plabel = n ? nth(L, 1, "row_labels", top) : "";
  int rc = cl_store_add_retrieval(s, eid, trial, (int)ex - 1, nth(L, 1, "filepaths", ex), label, plabel, json, hit, e);
  free(json);
  return rc;
}

static int fail(lua_State *L, cl_store *s, cl_error *e) {
  cl_store_eval_abort(s);
  return luaL_error(L, "storing results: %s", e->msg);
}

static int l_store_eval(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  cl_lua_run *run = cl_lua_get_run(L);
  if (!run || !run->store) return 0; /* evaluating without a database */
  cl_store *s = run->store;
  lua_getfield(L, 1, "params");
  cJSON *pj = to_json(L, -1, 0);
  lua_pop(L, 1);
  char *params = cJSON_PrintUnformatted(pj);
  cJSON_Delete(pj);
  cl_eval_info ei = {
    .experiment = opt_str(L, 1, "experiment"), .model = opt_str(L, 1, "model"),
    .model_hash = opt_str(L, 1, "model_hash"), .config_hash = opt_str(L, 1, "config_hash"), .dataset = opt_str(L, 1, "dataset"),
    .protocol = opt_str(L, 1, "protocol"), .text_type = opt_str(L, 1, "text_type"),
    .shots = (int)opt_int(L, 1, "shots", 0), .params_json = params,
    .n_examples = (int)opt_int(L, 1, "n_examples", 0),
    .query = opt_str(L, 1, "query"), .key = opt_str(L, 1, "key"), .split = opt_str(L, 1, "split"),
    .rank = opt_str(L, 1, "rank"),
  };
  int64_t eid;
  cl_error e;
  int exists = 0;
  if (cl_store_eval_exists(s, run->run_id, &ei, &exists, &e) != CL_OK) {
    free(params);
    return luaL_error(L, "storing results: %s", e.msg);
  }
  if (exists) { /* stored before a crash cut this job short: keep that row, add none */
    free(params);
    return 0;
  }
  int rc = cl_store_eval_begin(s, run->run_id, &ei, &eid, &e);
  free(params);
  if (rc != CL_OK) return luaL_error(L, "storing results: %s", e.msg);
  const char *job = opt_str(L, 1, "job");
  if (job && cl_store_eval_set_job(s, eid, job, &e) != CL_OK) return fail(L, s, &e);

  lua_getfield(L, 1, "results");
  int rt = lua_gettop(L);
  for (lua_Integer i = 1, n = lua_istable(L, rt) ? luaL_len(L, rt) : 0; i <= n; i++) {
    lua_geti(L, rt, i);
    int r = lua_gettop(L);
    int trial = (int)opt_int(L, r, "trial", -1);
    lua_getfield(L, r, "value");
    double v = lua_tonumber(L, -1);
    lua_pop(L, 1);
    if (cl_store_add_result(s, eid, trial, opt_str(L, r, "metric"), v, &e) != CL_OK) return fail(L, s, &e);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);

  lua_getfield(L, 1, "predictions");
  int pt = lua_gettop(L);
  for (lua_Integer i = 1, n = lua_istable(L, pt) ? luaL_len(L, pt) : 0; i <= n; i++) {
    lua_geti(L, pt, i);
    int r = lua_gettop(L);
    int trial = (int)opt_int(L, r, "trial", -1);
    lua_Integer ex = opt_int(L, r, "example", 0), pred = opt_int(L, r, "prediction", 0);
    lua_getfield(L, r, "retrieved");
    if (lua_istable(L, -1)) { /* a retrieval: rows joined to row_labels (the rank's column) */
      int rv = lua_gettop(L);
      if (retrieval_prediction(L, s, eid, trial, ex, rv, &e) != CL_OK) return fail(L, s, &e);
      lua_pop(L, 2);
      continue;
    }
    lua_pop(L, 1);
    lua_getfield(L, 1, "truth");
    lua_geti(L, -1, ex);
    lua_Integer truth = lua_tointeger(L, -1);
    lua_pop(L, 2);
    const char *fp = nth(L, 1, "filepaths", ex), *label = nth(L, 1, "labels", truth),
               *plabel = nth(L, 1, "labels", pred);
    lua_Integer hit = opt_int(L, r, "hit", 0);
    if (hit < 0 || hit > INT_MAX) {
      cl_err(&e, CL_EINVAL, "emit: prediction %lld: hit %lld is not a rank (>= 1)", (long long)i, (long long)hit);
      return fail(L, s, &e);
    }
    if (cl_store_add_prediction_hit(s, eid, trial, (int)ex - 1, fp, label, plabel, (int)hit, &e) != CL_OK)
      return fail(L, s, &e);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);

  lua_getfield(L, 1, "support");
  int st = lua_gettop(L);
  for (lua_Integer i = 1, n = lua_istable(L, st) ? luaL_len(L, st) : 0; i <= n; i++) {
    lua_geti(L, st, i);
    int r = lua_gettop(L);
    int trial = (int)opt_int(L, r, "trial", 0);
    lua_Integer c = opt_int(L, r, "class", 0), ex = opt_int(L, r, "example", 0);
    if (cl_store_add_support(s, eid, trial, nth(L, 1, "labels", c), nth(L, 1, "filepaths", ex), &e) != CL_OK)
      return fail(L, s, &e);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  if (cl_store_eval_commit(s, eid, &e) != CL_OK) return fail(L, s, &e);
  return 0;
}

/* core.claim(job) -> 1 do it, 0 done already, -1 another process holds it. Without a
 * database every job is ours. */
static int l_claim(lua_State *L) {
  const char *job = luaL_checkstring(L, 1);
  cl_lua_run *run = cl_lua_get_run(L);
  int state = 1;
  cl_error e;
  if (run && run->store && cl_store_job_claim(run->store, run->run_id, job, &state, &e) != CL_OK)
    return luaL_error(L, "%s", e.msg);
  lua_pushinteger(L, state);
  return 1;
}

static int l_job_done(lua_State *L) {
  const char *job = luaL_checkstring(L, 1);
  cl_lua_run *run = cl_lua_get_run(L);
  cl_error e;
  if (run && run->store && cl_store_job_done(run->store, run->run_id, job, &e) != CL_OK)
    return luaL_error(L, "%s", e.msg);
  return 0;
}

/* core.shard() -> I, N when the run is shard I of N, nothing otherwise. */
static int l_shard(lua_State *L) {
  cl_lua_run *run = cl_lua_get_run(L);
  if (!run || run->shard_count <= 0) return 0;
  lua_pushinteger(L, run->shard_index);
  lua_pushinteger(L, run->shard_count);
  return 2;
}

/* core.record_plan(text, jobs): the shard's plan (its canonical text, hashed here) and how
 * many of its jobs are this shard's, into the run record. */
static int l_record_plan(lua_State *L) {
  size_t n;
  const char *text = luaL_checklstring(L, 1, &n);
  lua_Integer jobs = luaL_checkinteger(L, 2);
  cl_lua_run *run = cl_lua_get_run(L);
  char hash[41];
  cl_error e;
  if (cl_hash_buf(text, n, hash, &e) != CL_OK) return luaL_error(L, "%s", e.msg);
  if (run && run->store && cl_store_run_set_plan(run->store, run->run_id, text, hash, jobs, &e) != CL_OK)
    return luaL_error(L, "%s", e.msg);
  lua_pushstring(L, hash);
  return 1;
}

/* core.check_interrupt(): raise when Ctrl-C asked the run to stop (between evaluations, so
 * nothing half-written is left). */
static int l_check_interrupt(lua_State *L) {
  cl_lua_run *run = cl_lua_get_run(L);
  if (run && run->interrupted && *run->interrupted) {
    lua_pushliteral(L, "interrupted"); /* no location: cmd_run knows this one */
    return lua_error(L);
  }
  return 0;
}

void cl_lua_register_store(lua_State *L) {
  static const luaL_Reg fns[] = {{"store_eval", l_store_eval}, {"claim", l_claim}, {"job_done", l_job_done},
                                 {"shard", l_shard}, {"record_plan", l_record_plan},
                                 {"check_interrupt", l_check_interrupt}, {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
}
