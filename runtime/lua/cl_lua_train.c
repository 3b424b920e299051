/* cl_lua_train: core.train{...} runs one training job of a `train "name" { ... }` declaration
 * (cl_train_job) and records it (cl_store_train_*). The trained model is cached by content
 * beside the results database (trained/<key>/, an open_clip hub folder): the key hashes
 * clade's version, the parent checkpoint, its config, every hyperparameter, the mixture,
 * templates, seed and draw mode, and every example (image content and names). A second
 * process wanting the same model waits on trained/<key>.lock and then finds it cached. */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cl_lua.h"
#include "model/cl_encoder.h"
#include "sched/cl_cache.h"
#include "store/cl_store.h"
#include "train/cl_train_job.h"

/* t.k as a number (or def when absent); a non-number is an error naming the field */
static double num_field(lua_State *L, int t, const char *k, double def) {
  lua_getfield(L, t, k);
  double v = def;
  if (!lua_isnil(L, -1)) {
    if (!lua_isnumber(L, -1)) luaL_error(L, "train: %s must be a number", k);
    v = lua_tonumber(L, -1);
  }
  lua_pop(L, 1);
  return v;
}

static const char *str_field(lua_State *L, int t, const char *k) {
  lua_getfield(L, t, k);
  const char *s = lua_tostring(L, -1); /* the table keeps it alive */
  lua_pop(L, 1);
  return s;
}

/* t.k as a C array of the list's strings (living in a userdata left on the stack) */
static const char **str_list(lua_State *L, int t, const char *k, int *n) {
  lua_getfield(L, t, k);
  int idx = lua_gettop(L);
  lua_Integer len = lua_istable(L, idx) ? luaL_len(L, idx) : 0;
  if (len < 0 || len > 100000000) luaL_error(L, "train: %s: too many entries", k);
  const char **v = lua_newuserdatauv(L, (size_t)(len ? len : 1) * sizeof(char *), 0);
  for (lua_Integer i = 0; i < len; i++) {
    lua_geti(L, idx, i + 1);
    v[i] = lua_tostring(L, -1);
    if (!v[i]) luaL_error(L, "train: %s[%d] is not a string", k, (int)i + 1);
    lua_pop(L, 1);
  }
  lua_remove(L, idx); /* the list stays referenced by t */
  *n = (int)len;
  return v;
}

/* ---- progress and records ---- */
typedef struct ctx {
  cl_lua_run *run;
  const char *name;
  int64_t train_id;
  cl_train_step_row *rows; /* steps since the last state */
  char **draws;
  int nrows, cap;
  const char *const *types;
  cl_progress prog;
  char label[256];
} ctx;

/* the progress line: steps done this time, the label carrying the step and the loss */
static void progress(ctx *c, const cl_train_step_info *s) {
  if (s->step < c->prog.cached) return; /* a resumed job's steps recorded again */
  snprintf(c->label, sizeof c->label, "train %s (step %lld of %lld, loss %.4f)", c->name, (long long)s->step + 1,
           (long long)s->steps, s->loss);
  c->prog.done = s->step + 1 - c->prog.cached;
  cl_progress_show(&c->prog, s->step + 1 == s->steps);
}

static int on_step(void *ud, const cl_train_step_info *s, cl_error *e) {
  (void)e;
  ctx *c = ud;
  progress(c, s);
  if (c->nrows == c->cap) {
    c->cap = c->cap ? 2 * c->cap : 64;
    c->rows = realloc(c->rows, (size_t)c->cap * sizeof *c->rows);
    c->draws = realloc(c->draws, (size_t)c->cap * sizeof *c->draws);
    if (!c->rows || !c->draws) return cl_err(e, CL_ENOMEM, "out of memory recording training steps");
  }
  /* {"rows": [...], "types": [...], "templates": [...]}: per example of the batch; types
   * index the job's mixture */
  cJSON *o = cJSON_CreateObject();
  cJSON_AddItemToObject(o, "rows", cJSON_CreateIntArray(s->rows, s->batch));
  cJSON_AddItemToObject(o, "types", cJSON_CreateIntArray(s->types, s->batch));
  cJSON_AddItemToObject(o, "templates", cJSON_CreateIntArray(s->templates, s->batch));
  c->draws[c->nrows] = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  int same = 1;
  for (int b = 1; b < s->batch; b++) same &= s->types[b] == s->types[0];
  c->rows[c->nrows] = (cl_train_step_row){.step = s->step, .epoch = s->epoch, .loss = s->loss, .lr = s->lr,
                                            .grad_norm = s->grad_norm, .text_type = same ? c->types[s->types[0]] : "",
                                            .draws_json = c->draws[c->nrows]};
  c->nrows++;
  return CL_OK;
}

static void drop_rows(ctx *c) {
  for (int i = 0; i < c->nrows; i++) free(c->draws[i]);
  c->nrows = 0;
}

/* A state is on disk: the steps it holds go to the database. */
static int on_state(void *ud, int64_t done, cl_error *e) {
  (void)done;
  ctx *c = ud;
  int rc = c->run && c->run->store ? cl_store_train_steps(c->run->store, c->train_id, c->rows, c->nrows, e) : CL_OK;
  drop_rows(c);
  return rc;
}

/* Records every step of the history in dir (a state or trained folder). */
static int record_history(ctx *c, const char *dir, int64_t steps, int nb, cl_error *e) {
  cl_train_history hist;
  CL_TRY(cl_train_history_load(dir, &hist, e));
  int rc = CL_OK;
  for (int64_t s = 0; !rc && s < hist.steps; s++) {
    cl_train_step_info info;
    cl_train_history_step(&hist, s, steps, nb, &info);
    rc = on_step(c, &info, e);
  }
  if (!rc) rc = on_state(c, hist.steps, e);
  cl_train_history_free(&hist);
  return rc;
}

static int hash_path(cl_lua_run *run, const char *path, char out[41], cl_error *e) {
  if (run && run->cache) return cl_cache_file_hash(run->cache, path, out, e);
  return cl_hash_file(path, out, e);
}

/* The content key: clade's version, the parent, its config, the spec and every example. */
static int content_key(cl_lua_run *run, const char *parent_hash, const cl_clip_config *cfg, const char *spec,
                       const cl_train_data *d, int ntypes, char key[41], cl_error *e) {
  char *cj = cl_clip_config_to_json(cfg), *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f) {
    free(cj);
    return cl_err(e, CL_ENOMEM, "out of memory hashing a training job");
  }
  /* every part NUL-terminated, so no two lists of parts give the same bytes */
  const char *head[5] = {"clade train job v1", CLADE_VERSION, parent_hash, cj, spec};
  for (int k = 0; k < 5; k++) fwrite(head[k], 1, strlen(head[k]) + 1, f);
  free(cj);
  int rc = CL_OK;
  for (int i = 0; i < d->n && !rc; i++) {
    char h[41];
    if ((rc = hash_path(run, d->images[i], h, e))) break;
    fwrite(h, 1, 41, f);
    for (int t = 0; t < ntypes; t++) fwrite(d->names[(size_t)i * ntypes + t], 1, strlen(d->names[(size_t)i * ntypes + t]) + 1, f);
  }
  fclose(f);
  if (!rc) rc = cl_hash_buf(buf, len, key, e);
  free(buf);
  return rc;
}

static int make_dir(const char *dir, cl_error *e) {
  if (mkdir(dir, 0777) == 0 || errno == EEXIST) return CL_OK;
  return cl_err(e, CL_EIO, "%s: cannot create (%s)", dir, strerror(errno));
}

/* core.train{name, where, parent = {path, config, gelu}, images, names, types, weights,
 * templates, epochs, batch_size, lr, weight_decay, warmup, seed, freeze, projections_only,
 * clip_grad, augment, draw, save_every, data = {{dataset, split, examples}}, parent_name}
 * -> path, model hash, trained (false when taken from the cache). The runner checked every
 * field (clade.runner's train_set, clade's train declaration) before the run began. */
static int l_train(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  cl_lua_run *run = cl_lua_get_run(L);
  const char *name = str_field(L, 1, "name"), *where = str_field(L, 1, "where");
  if (!name) return luaL_error(L, "train: no name");
  if (!where) where = "?";
  if (!run || !run->store) return luaL_error(L, "%s: train '%s': training needs a results database", where, name);
  cl_train_job_spec sp = {0};
  cl_train_data d = {0};
  int nnames = 0, nw = 0;
  d.images = str_list(L, 1, "images", &d.n);
  d.names = str_list(L, 1, "names", &nnames);
  sp.types = str_list(L, 1, "types", &sp.ntypes);
  sp.templates = str_list(L, 1, "templates", &sp.ntemplates);
  sp.freeze = str_list(L, 1, "freeze", &sp.nfreeze);
  lua_getfield(L, 1, "weights");
  const int wt = lua_gettop(L);
  nw = lua_istable(L, wt) ? (int)luaL_len(L, wt) : 0;
  double *weights = lua_newuserdatauv(L, (size_t)(nw ? nw : 1) * sizeof(double), 0);
  for (int i = 0; i < nw; i++) {
    lua_geti(L, wt, i + 1);
    weights[i] = lua_tonumber(L, -1);
    lua_pop(L, 1);
  }
  sp.weights = weights;
  if (nw != sp.ntypes || (size_t)nnames != (size_t)d.n * sp.ntypes)
    return luaL_error(L, "%s: train '%s': %d weights for %d types, %d names for %d examples", where, name, nw,
                      sp.ntypes, nnames, d.n);
  sp.epochs = (int)num_field(L, 1, "epochs", 1), sp.batch_size = (int)num_field(L, 1, "batch_size", 0);
  sp.warmup = (int)num_field(L, 1, "warmup", 0), sp.seed = (int)num_field(L, 1, "seed", 0);
  sp.lr = num_field(L, 1, "lr", 5e-4), sp.weight_decay = num_field(L, 1, "weight_decay", 0.2);
  sp.clip_grad = num_field(L, 1, "clip_grad", 0), sp.beta1 = 0.9, sp.beta2 = 0.98, sp.eps = 1e-6;
  sp.save_every = (int)num_field(L, 1, "save_every", 0);
  lua_getfield(L, 1, "augment");
  sp.augment = lua_isnil(L, -1) || lua_toboolean(L, -1);
  lua_getfield(L, 1, "projections_only");
  sp.projections_only = lua_toboolean(L, -1);
  lua_pop(L, 2);
  const char *draw = str_field(L, 1, "draw");
  sp.draw_example = draw && !strcmp(draw, "example");
  const char *parent_name = str_field(L, 1, "parent_name");
  /* data = {{dataset, split, examples}, ...}, recorded as JSON */
  cJSON *dj = cJSON_CreateArray();
  lua_getfield(L, 1, "data");
  for (lua_Integer i = 1, n = lua_istable(L, -1) ? luaL_len(L, -1) : 0; i <= n; i++) {
    lua_geti(L, -1, i);
    cJSON *o = cJSON_CreateObject();
    const char *ds = str_field(L, lua_gettop(L), "dataset"), *split = str_field(L, lua_gettop(L), "split");
    cJSON_AddStringToObject(o, "dataset", ds ? ds : "");
    cJSON_AddStringToObject(o, "split", split ? split : "");
    cJSON_AddNumberToObject(o, "examples", num_field(L, lua_gettop(L), "examples", 0));
    cJSON_AddItemToArray(dj, o);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  char *data_json = cJSON_PrintUnformatted(dj);
  cJSON_Delete(dj);
  lua_pushstring(L, data_json ? data_json : "[]"); /* kept on the stack: no leak when an error unwinds */
  free(data_json);
  data_json = (char *)lua_tostring(L, -1);

  lua_getfield(L, 1, "parent");
  const int pt = lua_gettop(L);
  cl_encoder_spec pspec = {.path = lua_istable(L, pt) ? str_field(L, pt, "path") : NULL,
                           .config = lua_istable(L, pt) ? str_field(L, pt, "config") : NULL,
                           .gelu = lua_istable(L, pt) ? str_field(L, pt, "gelu") : NULL};
  cl_error e = {0};
  char ckpt[4096], phash[41], key[41];
  cl_clip_config cfg;
  int64_t steps = 0;
  if (!pspec.path) return luaL_error(L, "%s: train '%s': the parent model has no path", where, name);
  if (cl_encoder_locate(&pspec, ckpt, sizeof ckpt, &cfg, &e) || hash_path(run, ckpt, phash, &e) ||
      cl_train_job_steps(&sp, d.n, &steps, &e))
    return luaL_error(L, "%s: train '%s': %s", where, name, e.msg);
  char *spec = cl_train_job_spec_json(&sp);
  int rc = content_key(run, phash, &cfg, spec, &d, sp.ntypes, key, &e);
  /* trained/<key> beside the results database */
  const char *db = cl_store_path(run->store);
  const char *slash = strrchr(db, '/');
  char *root = slash ? cl_asprintf("%.*s/trained", (int)(slash - db), db) : cl_strdup("trained");
  char *out = cl_asprintf("%s/%s", root, key), *work = cl_asprintf("%s/%s.partial", root, key);
  char *lockp = cl_asprintf("%s/%s.lock", root, key), *weights_path = cl_asprintf("%s/open_clip_model.safetensors", out);
  int lock = -1, trained = 0;
  char mhash[41] = "";
  if (!rc) rc = make_dir(root, &e);
  if (!rc && (lock = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0666)) < 0)
    rc = cl_err(&e, CL_EIO, "%s: cannot open (%s)", lockp, strerror(errno));
  if (!rc && flock(lock, LOCK_EX)) rc = cl_err(&e, CL_EIO, "%s: cannot lock (%s)", lockp, strerror(errno));
  const int cached = !rc && access(weights_path, F_OK) == 0;
  int64_t have = 0; /* a complete record of this model in this database */
  if (cached) rc = hash_path(run, weights_path, mhash, &e);
  if (cached && !rc) rc = cl_store_train_find(run->store, key, &have, &e);
  if (!rc && !have) { /* train (or resume), or record the cached model's training from its folder */
    cJSON *mix = cJSON_CreateArray();
    for (int t = 0; t < sp.ntypes; t++) {
      cJSON *o = cJSON_CreateObject();
      cJSON_AddStringToObject(o, "type", sp.types[t]);
      cJSON_AddNumberToObject(o, "weight", sp.weights[t]);
      cJSON_AddItemToArray(mix, o);
    }
    char *mixj = cJSON_PrintUnformatted(mix);
    cJSON_Delete(mix);
    cl_train_job_info ti = {.run_id = run->run_id, .name = name, .content_key = key,
                            .parent = parent_name ? parent_name : pspec.path, .parent_hash = phash, .out_dir = out,
                            .spec_json = spec, .mixture_json = mixj, .data_json = data_json, .n_examples = d.n,
                            .steps = steps};
    ctx c = {.run = run, .name = name, .types = sp.types};
    /* steps before a resumed job's start count as cached */
    char st[64];
    cl_error se;
    int64_t from = 0;
    if (cl_train_state_latest(work, st, sizeof st, &se) == CL_OK && st[0]) from = strtoll(st + 6, NULL, 10);
    snprintf(c.label, sizeof c.label, "train %s", name);
    cl_progress_init(&c.prog, run->quiet || cached ? CL_PROGRESS_OFF : run->progress, c.label, "training steps",
                     steps - from, from);
    rc = cl_store_train_begin(run->store, &ti, &c.train_id, &e);
    free(mixj);
    cl_train_job_hooks h = {.ud = &c, .on_step = on_step, .on_state = on_state, .interrupted = run->interrupted};
    cl_train_job_result res = {0};
    if (!rc && cached) { /* the steps as the trained folder keeps them */
      rc = record_history(&c, out, steps, d.n / sp.batch_size, &e);
      if (!rc) rc = cl_store_train_end(run->store, c.train_id, "complete", mhash, &e);
    } else if (!rc) {
      /* a resumed job: every step of its state, recorded (a kill may have come between the
       * state and its records) */
      if (from) {
        char *dir = cl_asprintf("%s/%s", work, st);
        rc = record_history(&c, dir, steps, d.n / sp.batch_size, &e);
        free(dir);
      }
      /* the job starts where its state says; progress counts from there */
      if (!rc) rc = cl_train_job_run(&cfg, ckpt, &d, &sp, work, out, &h, &res, &e);
      if (!rc && res.resumed_from && !run->quiet)
        fprintf(stderr, "clade: train %s: resumed from step %lld of %lld\n", name, (long long)res.resumed_from,
                (long long)steps);
      if (!rc && !res.stopped) rc = cl_hash_file(weights_path, mhash, &e);
      cl_error e2;
      const char *status = rc ? "failed" : res.stopped ? "interrupted" : "complete";
      if (cl_store_train_end(run->store, c.train_id, status, rc || res.stopped ? NULL : mhash, &e2) && !rc)
        rc = (e = e2).code;
      trained = 1;
    }
    drop_rows(&c);
    free(c.rows), free(c.draws);
    if (!rc && res.stopped) {
      free(spec), free(root), free(out), free(work), free(lockp), free(weights_path);
      close(lock);
      lua_pushliteral(L, "interrupted"); /* no location: cmd_run knows this one */
      return lua_error(L);
    }
  }
  if (lock >= 0) close(lock); /* releases the lock */
  free(spec), free(root), free(work), free(lockp), free(weights_path);
  if (rc) {
    free(out);
    return luaL_error(L, "%s: train '%s': %s", where, name, e.msg);
  }
  lua_pushstring(L, out);
  free(out);
  lua_pushstring(L, mhash);
  lua_pushboolean(L, trained);
  return 3;
}

void cl_lua_register_train(lua_State *L) {
  static const luaL_Reg fns[] = {{"train", l_train}, {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
}
