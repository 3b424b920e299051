/* cl_store_query: reading runs, results, predictions and supports back. Read statements are
 * prepared per call (reads are rare) so a callback may itself query the store. */
#include <stdio.h>
#include <string.h>

#include "cl_store_priv.h"

static const char *col_text(sqlite3_stmt *st, int i) {
  return (const char *)sqlite3_column_text(st, i);
}

static int prepare(cl_store *s, const char *sql, sqlite3_stmt **st, const char *what,
                   cl_error *e) {
  if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK) {
    cl_store_dberr(s, e, "preparing %s", what);
    sqlite3_finalize(*st);
    *st = NULL;
    return CL_EDB;
  }
  return CL_OK;
}

/* After the row loop: SQLITE_DONE is success, anything else an error naming `what`. */
static int finish(cl_store *s, sqlite3_stmt *st, int step_rc, int cb_rc, const char *what,
                  cl_error *e) {
  int rc = cb_rc;
  if (!rc && step_rc != SQLITE_DONE) rc = cl_store_dberr(s, e, "%s", what);
  sqlite3_finalize(st);
  return rc;
}

int cl_store_latest_run(cl_store *s, int64_t *run_id, cl_error *e) {
  sqlite3_stmt *st;
  int rc = prepare(s, "SELECT max(id) FROM runs", &st, "finding the latest run", e);
  if (rc) return rc;
  int src = sqlite3_step(st);
  if (src != SQLITE_ROW) return finish(s, st, src, 0, "finding the latest run", e);
  int none = sqlite3_column_type(st, 0) == SQLITE_NULL;
  *run_id = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  if (none) return cl_err(e, CL_EINVAL, "%s: no runs recorded yet", s->path);
  return CL_OK;
}

int cl_store_check_run(cl_store *s, int64_t run_id, cl_error *e) {
  sqlite3_stmt *st;
  int rc = prepare(s, "SELECT 1 FROM runs WHERE id = ?1", &st, "looking up a run", e);
  if (rc) return rc;
  sqlite3_bind_int64(st, 1, run_id);
  int src = sqlite3_step(st);
  if (src == SQLITE_ROW) {
    sqlite3_finalize(st);
    return CL_OK;
  }
  if (src != SQLITE_DONE) return finish(s, st, src, 0, "looking up a run", e);
  sqlite3_finalize(st);
  return cl_err(e, CL_EINVAL, "%s: no run %lld", s->path, (long long)run_id);
}

int cl_store_each_run(cl_store *s, int64_t run_id, cl_store_run_fn fn, void *ud, cl_error *e) {
  if (run_id) {
    int rc = cl_store_check_run(s, run_id, e);
    if (rc) return rc;
  }
  static const char sql[] =
      "SELECT r.id, r.file, r.file_hash, r.git_commit, r.git_branch, r.git_dirty,"
      " r.clade_version, r.backend, r.device, r.precision, r.host, r.pid, r.started_at,"
      " r.ended_at, r.status, r.wall_seconds, r.images_encoded, r.texts_encoded,"
      " r.images_cached, r.texts_cached, r.stats_json,"
      " (SELECT count(*) FROM evaluations v WHERE v.run_id = r.id), r.decode,"
      " r.shard_index, r.shard_count, r.plan_hash, r.slurm_job"
      " FROM runs r WHERE ?1 = 0 OR r.id = ?1 ORDER BY r.id";
  sqlite3_stmt *st;
  int rc = prepare(s, sql, &st, "reading runs", e);
  if (rc) return rc;
  sqlite3_bind_int64(st, 1, run_id);
  int src, cb = 0;
  while (!cb && (src = sqlite3_step(st)) == SQLITE_ROW) {
    cl_run_row r = {
        .id = sqlite3_column_int64(st, 0),
        .file = col_text(st, 1),
        .file_hash = col_text(st, 2),
        .git_commit = col_text(st, 3),
        .git_branch = col_text(st, 4),
        .git_dirty = sqlite3_column_type(st, 5) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 5),
        .clade_version = col_text(st, 6),
        .backend = col_text(st, 7),
        .device = col_text(st, 8),
        .precision = col_text(st, 9),
        .host = col_text(st, 10),
        .pid = sqlite3_column_int64(st, 11),
        .started_at = col_text(st, 12),
        .ended_at = col_text(st, 13),
        .status = col_text(st, 14),
        .wall_seconds = sqlite3_column_double(st, 15),
        .has_wall = sqlite3_column_type(st, 15) != SQLITE_NULL,
        .images_encoded = sqlite3_column_int64(st, 16),
        .texts_encoded = sqlite3_column_int64(st, 17),
        .images_cached = sqlite3_column_int64(st, 18),
        .texts_cached = sqlite3_column_int64(st, 19),
        .stats_json = col_text(st, 20),
        .n_evaluations = sqlite3_column_int64(st, 21),
        .decode = col_text(st, 22),
        .shard_index = sqlite3_column_type(st, 23) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 23),
        .shard_count = sqlite3_column_int(st, 24),
        .plan_hash = col_text(st, 25),
        .slurm_job = col_text(st, 26),
    };
    cb = fn(&r, ud, e);
  }
  return finish(s, st, cb ? SQLITE_DONE : src, cb, "reading runs", e);
}

/* The aggregate (trial NULL, stored under -1 in the unique keys) sorts before trials 0..n-1:
 * the same order as those indices, so large reads need no sort. */
int cl_store_each_result(cl_store *s, int64_t run_id, cl_store_result_fn fn, void *ud,
                         cl_error *e) {
  int rc = cl_store_check_run(s, run_id, e);
  if (rc) return rc;
  static const char sql[] =
      "SELECT v.run_id, v.id, v.experiment, v.model, v.model_hash, v.dataset, v.protocol,"
      " v.text_type, v.shots, r.trial, r.metric, r.value, v.n_examples, v.query, v.key, v.split, v.rank,"
      " v.config_hash FROM evaluations v JOIN results r ON r.eval_id = v.id WHERE v.run_id = ?1"
      " ORDER BY v.id, coalesce(r.trial, -1), r.metric";
  sqlite3_stmt *st;
  char what[96];
  snprintf(what, sizeof what, "reading the results of run %lld", (long long)run_id);
  if ((rc = prepare(s, sql, &st, what, e))) return rc;
  sqlite3_bind_int64(st, 1, run_id);
  int src, cb = 0;
  while (!cb && (src = sqlite3_step(st)) == SQLITE_ROW) {
    cl_result_row r = {
        .run_id = sqlite3_column_int64(st, 0),
        .eval_id = sqlite3_column_int64(st, 1),
        .experiment = col_text(st, 2),
        .model = col_text(st, 3),
        .model_hash = col_text(st, 4),
        .dataset = col_text(st, 5),
        .protocol = col_text(st, 6),
        .text_type = col_text(st, 7),
        .shots = sqlite3_column_int(st, 8),
        .trial = sqlite3_column_type(st, 9) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 9),
        .metric = col_text(st, 10),
        .value = sqlite3_column_double(st, 11),
        .has_value = sqlite3_column_type(st, 11) != SQLITE_NULL,
        .n_examples = sqlite3_column_int64(st, 12),
        .query = col_text(st, 13),
        .key = col_text(st, 14),
        .split = col_text(st, 15),
        .rank = col_text(st, 16),
        .config_hash = col_text(st, 17),
    };
    cb = fn(&r, ud, e);
  }
  return finish(s, st, cb ? SQLITE_DONE : src, cb, what, e);
}

int cl_store_each_prediction(cl_store *s, int64_t run_id, cl_store_prediction_fn fn, void *ud,
                             cl_error *e) {
  int rc = cl_store_check_run(s, run_id, e);
  if (rc) return rc;
  static const char sql[] =
      "SELECT v.run_id, v.id, v.experiment, v.model, v.dataset, v.protocol, v.text_type,"
      " v.shots, p.trial, p.example, p.filepath, p.label, p.prediction, p.correct,"
      " v.query, v.key, v.split, v.rank, p.retrieved, p.hit"
      " FROM evaluations v JOIN predictions p ON p.eval_id = v.id WHERE v.run_id = ?1"
      " ORDER BY v.id, coalesce(p.trial, -1), p.example";
  sqlite3_stmt *st;
  char what[96];
  snprintf(what, sizeof what, "reading the predictions of run %lld", (long long)run_id);
  if ((rc = prepare(s, sql, &st, what, e))) return rc;
  sqlite3_bind_int64(st, 1, run_id);
  int src, cb = 0;
  while (!cb && (src = sqlite3_step(st)) == SQLITE_ROW) {
    cl_prediction_row r = {
        .run_id = sqlite3_column_int64(st, 0),
        .eval_id = sqlite3_column_int64(st, 1),
        .experiment = col_text(st, 2),
        .model = col_text(st, 3),
        .dataset = col_text(st, 4),
        .protocol = col_text(st, 5),
        .text_type = col_text(st, 6),
        .shots = sqlite3_column_int(st, 7),
        .trial = sqlite3_column_type(st, 8) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 8),
        .example = sqlite3_column_int(st, 9),
        .filepath = col_text(st, 10),
        .label = col_text(st, 11),
        .prediction = col_text(st, 12),
        .correct = sqlite3_column_int(st, 13),
        .query = col_text(st, 14),
        .key = col_text(st, 15),
        .split = col_text(st, 16),
        .rank = col_text(st, 17),
        .retrieved = col_text(st, 18),
        .hit = sqlite3_column_type(st, 19) == SQLITE_NULL ? 0 : sqlite3_column_int(st, 19),
    };
    cb = fn(&r, ud, e);
  }
  return finish(s, st, cb ? SQLITE_DONE : src, cb, what, e);
}

int cl_store_each_support(cl_store *s, int64_t eval_id, cl_store_support_fn fn, void *ud,
                          cl_error *e) {
  static const char sql[] = "SELECT eval_id, trial, class, filepath FROM support"
                            " WHERE eval_id = ?1 ORDER BY trial, rowid";
  sqlite3_stmt *st;
  char what[96];
  snprintf(what, sizeof what, "reading the supports of eval %lld", (long long)eval_id);
  int rc = prepare(s, sql, &st, what, e);
  if (rc) return rc;
  sqlite3_bind_int64(st, 1, eval_id);
  int src, cb = 0;
  while (!cb && (src = sqlite3_step(st)) == SQLITE_ROW) {
    cl_support_row r = {
        .eval_id = sqlite3_column_int64(st, 0),
        .trial = sqlite3_column_int(st, 1),
        .cls = col_text(st, 2),
        .filepath = col_text(st, 3),
    };
    cb = fn(&r, ud, e);
  }
  return finish(s, st, cb ? SQLITE_DONE : src, cb, what, e);
}
