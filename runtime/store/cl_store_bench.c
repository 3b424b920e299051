/* cl_store_bench: speed measurements in the results database (table bench, migration 3).
 * Rows are rare (tens per benchmark run), so statements are prepared per call. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cl_store_priv.h"

#define NOW_ISO "strftime('%Y-%m-%dT%H:%M:%fZ','now')"

static void bind_text(sqlite3_stmt *st, int i, const char *v) {
  if (v) sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
  else sqlite3_bind_null(st, i);
}

static void bind_real(sqlite3_stmt *st, int i, double v, int present) {
  if (present && isfinite(v)) sqlite3_bind_double(st, i, v);
  else sqlite3_bind_null(st, i);
}

int cl_store_bench_add(cl_store *s, int64_t run_id, const cl_bench_row *r, cl_error *e) {
  if (!r || !r->name || !*r->name || !r->unit)
    return cl_err(e, CL_EINVAL, "%s: inserting a benchmark measure of run %lld: no name or unit", s->path,
                  (long long)run_id);
  if (s->eval_open)
    return cl_err(e, CL_EINVAL, "%s: inserting benchmark measure %s while evaluation %lld is open", s->path,
                  r->name, (long long)s->eval_id);
  static const char sql[] =
      "INSERT INTO bench(run_id, name, batch, value, unit, value_min, value_max, reps, n, peak_fraction,"
      " model, model_hash, threads, params_json, created_at)"
      " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, " NOW_ISO ")";
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
    sqlite3_finalize(st);
    return cl_store_dberr(s, e, "preparing the insert of benchmark measure %s", r->name);
  }
  sqlite3_bind_int64(st, 1, run_id);
  bind_text(st, 2, r->name);
  if (r->batch > 0) sqlite3_bind_int(st, 3, r->batch);
  else sqlite3_bind_null(st, 3);
  bind_real(st, 4, r->value, 1);
  bind_text(st, 5, r->unit);
  bind_real(st, 6, r->value_min, r->reps > 0);
  bind_real(st, 7, r->value_max, r->reps > 0);
  if (r->reps > 0) sqlite3_bind_int(st, 8, r->reps);
  else sqlite3_bind_null(st, 8);
  if (r->n > 0) sqlite3_bind_int64(st, 9, r->n);
  else sqlite3_bind_null(st, 9);
  bind_real(st, 10, r->peak_fraction, r->peak_fraction >= 0);
  bind_text(st, 11, r->model);
  bind_text(st, 12, r->model_hash);
  if (r->threads > 0) sqlite3_bind_int(st, 13, r->threads);
  else sqlite3_bind_null(st, 13);
  bind_text(st, 14, r->params_json);
  int rc = sqlite3_step(st) == SQLITE_DONE
               ? CL_OK
               : cl_store_dberr(s, e, "inserting benchmark measure %s (batch %d) of run %lld", r->name, r->batch,
                                (long long)run_id);
  sqlite3_finalize(st);
  return rc;
}

int cl_store_each_bench(cl_store *s, int64_t run_id, cl_store_bench_fn fn, void *ud, cl_error *e) {
  static const char sql[] =
      "SELECT run_id, name, batch, value, unit, value_min, value_max, reps, n, peak_fraction, model,"
      " model_hash, threads, params_json FROM bench WHERE ?1 = 0 OR run_id = ?1 ORDER BY run_id, rowid";
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
    sqlite3_finalize(st);
    return cl_store_dberr(s, e, "preparing to read benchmark measures");
  }
  sqlite3_bind_int64(st, 1, run_id);
  int src, cb = 0;
  while (!cb && (src = sqlite3_step(st)) == SQLITE_ROW) {
    const int null_value = sqlite3_column_type(st, 3) == SQLITE_NULL;
    cl_bench_row r = {
        .name = (const char *)sqlite3_column_text(st, 1),
        .batch = sqlite3_column_int(st, 2),
        .value = null_value ? NAN : sqlite3_column_double(st, 3),
        .unit = (const char *)sqlite3_column_text(st, 4),
        .value_min = sqlite3_column_type(st, 5) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 5),
        .value_max = sqlite3_column_type(st, 6) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 6),
        .reps = sqlite3_column_int(st, 7),
        .n = sqlite3_column_int64(st, 8),
        .peak_fraction = sqlite3_column_type(st, 9) == SQLITE_NULL ? -1 : sqlite3_column_double(st, 9),
        .model = (const char *)sqlite3_column_text(st, 10),
        .model_hash = (const char *)sqlite3_column_text(st, 11),
        .threads = sqlite3_column_int(st, 12),
        .params_json = (const char *)sqlite3_column_text(st, 13),
    };
    cb = fn(sqlite3_column_int64(st, 0), &r, ud, e);
  }
  int rc = cb;
  if (!rc && src != SQLITE_DONE) rc = cl_store_dberr(s, e, "reading benchmark measures");
  sqlite3_finalize(st);
  return rc;
}
