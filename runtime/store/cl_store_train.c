/* cl_store_train: training jobs and their steps in the results database (schema 7), and
 * reading them back with the evaluations of the trained models. Statements are prepared per
 * call: a training writes a few rows per checkpoint. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cl_store_priv.h"

#define NOW_ISO "strftime('%Y-%m-%dT%H:%M:%fZ','now')"

static void bind_text(sqlite3_stmt *st, int i, const char *v) {
  if (v) sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
  else sqlite3_bind_null(st, i);
}

static const char *col_text(sqlite3_stmt *st, int i) { return (const char *)sqlite3_column_text(st, i); }

static double col_real(sqlite3_stmt *st, int i, double none) {
  return sqlite3_column_type(st, i) == SQLITE_NULL ? none : sqlite3_column_double(st, i);
}

static int prepare(cl_store *s, const char *sql, sqlite3_stmt **st, const char *what, cl_error *e) {
  if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK) {
    cl_store_dberr(s, e, "preparing %s", what);
    sqlite3_finalize(*st);
    *st = NULL;
    return CL_EDB;
  }
  return CL_OK;
}

static int not_in_eval(cl_store *s, const char *what, cl_error *e) {
  if (!s->eval_open) return CL_OK;
  return cl_err(e, CL_EINVAL, "%s: %s while evaluation %lld is open", s->path, what, (long long)s->eval_id);
}

int cl_store_train_begin(cl_store *s, const cl_train_job_info *ti, int64_t *train_id, cl_error *e) {
  if (!ti || !ti->name || !ti->content_key || !ti->parent || !ti->spec_json || !ti->mixture_json)
    return cl_err(e, CL_EINVAL, "%s: recording a training job: name, content key, parent, spec and mixture needed",
                  s->path);
  int rc = not_in_eval(s, "recording a training job", e);
  if (rc) return rc;
  sqlite3_stmt *st = NULL;
  /* the unfinished job of this run and content: a resumed training goes on in its row */
  if ((rc = prepare(s,
                    "SELECT id FROM train_jobs WHERE content_key = ?1 AND status != 'complete'"
                    " AND coalesce(run_id, 0) = ?2 ORDER BY id DESC LIMIT 1",
                    &st, "looking up an unfinished training job", e)))
    return rc;
  bind_text(st, 1, ti->content_key);
  sqlite3_bind_int64(st, 2, ti->run_id);
  int src = sqlite3_step(st);
  if (src == SQLITE_ROW) {
    *train_id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if ((rc = prepare(s, "UPDATE train_jobs SET status = 'running', ended_at = NULL, wall_seconds = NULL WHERE id = ?1",
                      &st, "resuming a training job", e)))
      return rc;
    sqlite3_bind_int64(st, 1, *train_id);
    rc = sqlite3_step(st) == SQLITE_DONE ? CL_OK : cl_store_dberr(s, e, "resuming training job %s", ti->name);
    sqlite3_finalize(st);
    return rc;
  }
  sqlite3_finalize(st);
  if (src != SQLITE_DONE) return cl_store_dberr(s, e, "looking up an unfinished training job");
  if ((rc = prepare(s,
                    "INSERT INTO train_jobs(run_id, name, content_key, parent, parent_hash, out_dir, spec_json,"
                    " mixture_json, data_json, n_examples, steps, clade_version, started_at, status)"
                    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, " NOW_ISO ", 'running')",
                    &st, "recording a training job", e)))
    return rc;
  if (ti->run_id > 0) sqlite3_bind_int64(st, 1, ti->run_id);
  else sqlite3_bind_null(st, 1);
  bind_text(st, 2, ti->name);
  bind_text(st, 3, ti->content_key);
  bind_text(st, 4, ti->parent);
  bind_text(st, 5, ti->parent_hash);
  bind_text(st, 6, ti->out_dir);
  bind_text(st, 7, ti->spec_json);
  bind_text(st, 8, ti->mixture_json);
  bind_text(st, 9, ti->data_json);
  sqlite3_bind_int64(st, 10, ti->n_examples);
  sqlite3_bind_int64(st, 11, ti->steps);
  bind_text(st, 12, CLADE_VERSION);
  rc = sqlite3_step(st) == SQLITE_DONE ? CL_OK : cl_store_dberr(s, e, "recording training job %s", ti->name);
  sqlite3_finalize(st);
  if (!rc) *train_id = sqlite3_last_insert_rowid(s->db);
  return rc;
}

int cl_store_train_steps(cl_store *s, int64_t train_id, const cl_train_step_row *rows, int n, cl_error *e) {
  int rc = not_in_eval(s, "recording training steps", e);
  if (rc || n <= 0) return rc;
  if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
    return cl_store_dberr(s, e, "recording the steps of training job %lld", (long long)train_id);
  sqlite3_stmt *st = NULL;
  rc = prepare(s,
               "INSERT OR REPLACE INTO train_steps(train_id, step, epoch, loss, lr, grad_norm, text_type, draws)"
               " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
               &st, "recording training steps", e);
  int64_t last = -1;
  for (int i = 0; i < n && !rc; i++) {
    const cl_train_step_row *r = &rows[i];
    sqlite3_bind_int64(st, 1, train_id);
    sqlite3_bind_int64(st, 2, r->step);
    sqlite3_bind_int(st, 3, r->epoch);
    if (isfinite(r->loss)) sqlite3_bind_double(st, 4, r->loss);
    else sqlite3_bind_null(st, 4);
    sqlite3_bind_double(st, 5, r->lr);
    if (r->grad_norm >= 0) sqlite3_bind_double(st, 6, r->grad_norm);
    else sqlite3_bind_null(st, 6);
    bind_text(st, 7, r->text_type ? r->text_type : "");
    bind_text(st, 8, r->draws_json);
    if (sqlite3_step(st) != SQLITE_DONE)
      rc = cl_store_dberr(s, e, "recording step %lld of training job %lld", (long long)r->step, (long long)train_id);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (r->step > last) last = r->step;
  }
  sqlite3_finalize(st);
  st = NULL;
  if (!rc && !(rc = prepare(s, "UPDATE train_jobs SET steps_done = max(steps_done, ?2) WHERE id = ?1", &st,
                            "counting training steps", e))) {
    sqlite3_bind_int64(st, 1, train_id);
    sqlite3_bind_int64(st, 2, last + 1);
    if (sqlite3_step(st) != SQLITE_DONE) rc = cl_store_dberr(s, e, "counting the steps of training job %lld",
                                                             (long long)train_id);
    sqlite3_finalize(st);
  }
  if (!rc && sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
    rc = cl_store_dberr(s, e, "committing the steps of training job %lld", (long long)train_id);
  if (rc) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
  return rc;
}

int cl_store_train_find(cl_store *s, const char *content_key, int64_t *train_id, cl_error *e) {
  sqlite3_stmt *st = NULL;
  *train_id = 0;
  int rc = prepare(s, "SELECT max(id) FROM train_jobs WHERE content_key = ?1 AND status = 'complete'", &st,
                   "looking up a training job", e);
  if (rc) return rc;
  bind_text(st, 1, content_key);
  if (sqlite3_step(st) == SQLITE_ROW) *train_id = sqlite3_column_int64(st, 0);
  else rc = cl_store_dberr(s, e, "looking up the training job of %s", content_key);
  sqlite3_finalize(st);
  return rc;
}

int cl_store_train_end(cl_store *s, int64_t train_id, const char *status, const char *model_hash, cl_error *e) {
  if (!status || (strcmp(status, "complete") && strcmp(status, "interrupted") && strcmp(status, "failed")))
    return cl_err(e, CL_EINVAL, "%s: training job %lld: status %s is not complete, interrupted or failed", s->path,
                  (long long)train_id, status ? status : "(none)");
  sqlite3_stmt *st = NULL;
  int rc = prepare(s,
                   "UPDATE train_jobs SET status = ?2, model_hash = coalesce(?3, model_hash), ended_at = " NOW_ISO ","
                   " wall_seconds = (julianday('now') - julianday(started_at)) * 86400.0 WHERE id = ?1",
                   &st, "ending a training job", e);
  if (rc) return rc;
  sqlite3_bind_int64(st, 1, train_id);
  bind_text(st, 2, status);
  bind_text(st, 3, model_hash);
  rc = sqlite3_step(st) == SQLITE_DONE ? CL_OK
                                        : cl_store_dberr(s, e, "ending training job %lld", (long long)train_id);
  sqlite3_finalize(st);
  return rc;
}

int cl_store_train_key_info(cl_store *s, const char *content_key, cl_train_key_info *ki, cl_error *e) {
  memset(ki, 0, sizeof *ki);
  sqlite3_stmt *st = NULL;
  int rc = prepare(s,
                   "SELECT j.id, coalesce(j.run_id, 0), j.name, j.status, j.steps, j.steps_done,"
                   " (SELECT coalesce(k.run_id, 0) FROM train_jobs k LEFT JOIN runs rk ON rk.id = k.run_id"
                   "   WHERE k.name = j.name AND k.content_key != j.content_key AND k.status = 'complete'"
                   "   AND k.id > j.id AND rk.file IS (SELECT file FROM runs WHERE id = j.run_id)"
                   "   ORDER BY k.id DESC LIMIT 1)"
                   " FROM train_jobs j WHERE j.content_key = ?1 ORDER BY j.id DESC LIMIT 1",
                   &st, "looking up a training's content key", e);
  if (rc) return rc;
  bind_text(st, 1, content_key);
  int src = sqlite3_step(st);
  if (src == SQLITE_ROW) {
    ki->id = sqlite3_column_int64(st, 0);
    ki->run_id = sqlite3_column_int64(st, 1);
    snprintf(ki->name, sizeof ki->name, "%s", col_text(st, 2) ? col_text(st, 2) : "");
    snprintf(ki->status, sizeof ki->status, "%s", col_text(st, 3) ? col_text(st, 3) : "");
    ki->steps = sqlite3_column_int64(st, 4);
    ki->steps_done = sqlite3_column_int64(st, 5);
    ki->superseded_run = sqlite3_column_int64(st, 6);
  } else if (src != SQLITE_DONE) {
    rc = cl_store_dberr(s, e, "looking up the training of %s", content_key);
  }
  sqlite3_finalize(st);
  return rc;
}

int cl_store_each_train_job(cl_store *s, int64_t run_id, cl_store_train_job_fn fn, void *ud, cl_error *e) {
  sqlite3_stmt *st = NULL;
  int rc = prepare(s,
                   "SELECT j.id, coalesce(j.run_id, 0), j.name, j.content_key, j.parent, j.parent_hash, j.model_hash,"
                   " j.out_dir, j.spec_json, j.mixture_json, j.data_json, j.n_examples, j.steps, j.steps_done,"
                   " j.status, j.clade_version, j.started_at, j.ended_at, j.wall_seconds,"
                   " (SELECT loss FROM train_steps t WHERE t.train_id = j.id ORDER BY step DESC LIMIT 1)"
                   " FROM train_jobs j WHERE ?1 = 0 OR j.run_id = ?1 ORDER BY j.id",
                   &st, "listing training jobs", e);
  if (rc) return rc;
  sqlite3_bind_int64(st, 1, run_id);
  int src, cb = 0;
  while (!cb && (src = sqlite3_step(st)) == SQLITE_ROW) {
    cl_train_job_row r = {
        .id = sqlite3_column_int64(st, 0), .run_id = sqlite3_column_int64(st, 1), .name = col_text(st, 2),
        .content_key = col_text(st, 3), .parent = col_text(st, 4), .parent_hash = col_text(st, 5),
        .model_hash = col_text(st, 6), .out_dir = col_text(st, 7), .spec_json = col_text(st, 8),
        .mixture_json = col_text(st, 9), .data_json = col_text(st, 10), .n_examples = sqlite3_column_int64(st, 11),
        .steps = sqlite3_column_int64(st, 12), .steps_done = sqlite3_column_int64(st, 13),
        .status = col_text(st, 14), .clade_version = col_text(st, 15), .started_at = col_text(st, 16),
        .ended_at = col_text(st, 17), .wall_seconds = col_real(st, 18, 0),
        .has_wall = sqlite3_column_type(st, 18) != SQLITE_NULL, .last_loss = col_real(st, 19, NAN),
    };
    cb = fn(&r, ud, e);
  }
  rc = cb;
  if (!rc && src != SQLITE_DONE) rc = cl_store_dberr(s, e, "listing training jobs");
  sqlite3_finalize(st);
  return rc;
}

int cl_store_each_train_step(cl_store *s, int64_t train_id, cl_store_train_step_fn fn, void *ud, cl_error *e) {
  sqlite3_stmt *st = NULL;
  int rc = prepare(s,
                   "SELECT step, epoch, loss, lr, grad_norm, text_type, draws FROM train_steps WHERE train_id = ?1"
                   " ORDER BY step",
                   &st, "reading training steps", e);
  if (rc) return rc;
  sqlite3_bind_int64(st, 1, train_id);
  int src, cb = 0;
  while (!cb && (src = sqlite3_step(st)) == SQLITE_ROW) {
    cl_train_step_row r = {
        .step = sqlite3_column_int64(st, 0), .epoch = sqlite3_column_int(st, 1), .loss = col_real(st, 2, NAN),
        .lr = col_real(st, 3, NAN), .grad_norm = col_real(st, 4, -1), .text_type = col_text(st, 5),
        .draws_json = col_text(st, 6),
    };
    cb = fn(&r, ud, e);
  }
  rc = cb;
  if (!rc && src != SQLITE_DONE) rc = cl_store_dberr(s, e, "reading the steps of training job %lld", (long long)train_id);
  sqlite3_finalize(st);
  return rc;
}

int cl_store_each_train_eval(cl_store *s, int64_t run_id, const char *metric, cl_store_train_eval_fn fn, void *ud,
                             cl_error *e) {
  int rc = cl_store_check_run(s, run_id, e);
  if (rc) return rc;
  sqlite3_stmt *st = NULL;
  if ((rc = prepare(s,
                    "SELECT j.id, v.id, j.name, j.mixture_json, j.spec_json, v.experiment, v.model, v.dataset,"
                    " v.protocol, v.text_type, v.shots, r.value, r.rowid IS NOT NULL"
                    " FROM evaluations v"
                    " JOIN train_jobs j ON j.id = (SELECT max(id) FROM train_jobs"
                    "   WHERE model_hash = v.model_hash AND status = 'complete')"
                    " LEFT JOIN results r ON r.eval_id = v.id AND r.trial IS NULL AND r.metric = ?2"
                    " WHERE v.run_id = ?1 ORDER BY v.id",
                    &st, "reading the evaluations of trained models", e)))
    return rc;
  sqlite3_bind_int64(st, 1, run_id);
  bind_text(st, 2, metric ? metric : "top1");
  int src, cb = 0;
  while (!cb && (src = sqlite3_step(st)) == SQLITE_ROW) {
    cl_train_eval_row r = {
        .train_id = sqlite3_column_int64(st, 0), .eval_id = sqlite3_column_int64(st, 1),
        .train_name = col_text(st, 2), .mixture_json = col_text(st, 3), .spec_json = col_text(st, 4),
        .experiment = col_text(st, 5), .model = col_text(st, 6), .dataset = col_text(st, 7),
        .protocol = col_text(st, 8), .text_type = col_text(st, 9), .shots = sqlite3_column_int(st, 10),
        .has_value = sqlite3_column_int(st, 12) && sqlite3_column_type(st, 11) != SQLITE_NULL,
    };
    r.value = r.has_value ? sqlite3_column_double(st, 11) : NAN;
    cb = fn(&r, ud, e);
  }
  rc = cb;
  if (!rc && src != SQLITE_DONE) rc = cl_store_dberr(s, e, "reading the evaluations of trained models");
  sqlite3_finalize(st);
  return rc;
}
