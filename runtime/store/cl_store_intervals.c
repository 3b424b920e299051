/* cl_store_intervals: computed confidence intervals kept in the results database (schema 9),
 * written once per run and settings and read back while the run has not grown. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cl_store_priv.h"

int cl_store_writable(const cl_store *s) { return s && !s->readonly; }

static int prep(cl_store *s, const char *sql, sqlite3_stmt **st, const char *what, cl_error *e) {
  if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) == SQLITE_OK) return CL_OK;
  sqlite3_finalize(*st);
  *st = NULL;
  return cl_store_dberr(s, e, "preparing %s", what);
}

int cl_store_run_evals(cl_store *s, int64_t run_id, int64_t *n, cl_error *e) {
  sqlite3_stmt *st;
  int rc = prep(s, "SELECT count(*) FROM evaluations WHERE run_id = ?1", &st, "counting evaluations", e);
  if (rc) return rc;
  sqlite3_bind_int64(st, 1, run_id);
  if (sqlite3_step(st) != SQLITE_ROW) rc = cl_store_dberr(s, e, "counting the evaluations of run %lld", (long long)run_id);
  else *n = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return rc;
}

static void bind_key(sqlite3_stmt *st, int64_t run_id, const cl_interval_key *k) {
  sqlite3_bind_int64(st, 1, run_id);
  sqlite3_bind_text(st, 2, k->method, -1, SQLITE_STATIC);
  sqlite3_bind_double(st, 3, k->level);
  sqlite3_bind_int(st, 4, k->resamples);
  sqlite3_bind_int64(st, 5, k->seed);
}

static int exec(cl_store *s, const char *sql, const char *what, cl_error *e) {
  if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) == SQLITE_OK) return CL_OK;
  return cl_store_dberr(s, e, "%s", what);
}

int cl_store_intervals_put(cl_store *s, int64_t run_id, const cl_interval_key *k, int64_t run_evals,
                           const cl_interval_row *rows, int n, cl_error *e) {
  if (s->eval_open)
    return cl_err(e, CL_EINVAL, "%s: storing intervals while evaluation %lld is open", s->path, (long long)s->eval_id);
  if (!k->method || k->resamples < 1 || k->seed < 0)
    return cl_err(e, CL_EINVAL, "%s: storing intervals: bad settings", s->path);
  int rc = exec(s, "BEGIN IMMEDIATE", "storing intervals", e);
  if (rc) return rc;
  sqlite3_stmt *del = NULL, *ins = NULL;
  rc = prep(s,
            "DELETE FROM intervals WHERE run_id = ?1 AND method = ?2 AND level = ?3 AND resamples = ?4"
            " AND seed = ?5",
            &del, "replacing intervals", e);
  if (!rc)
    rc = prep(s,
              "INSERT INTO intervals(run_id, method, level, resamples, seed, eval_id, trial, metric, lo, hi,"
              " tie, p, group_size, run_evals, note, created_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10,"
              " ?11, ?12, ?13, ?14, ?15, strftime('%Y-%m-%dT%H:%M:%fZ','now'))",
              &ins, "storing intervals", e);
  if (!rc) {
    bind_key(del, run_id, k);
    if (sqlite3_step(del) != SQLITE_DONE) rc = cl_store_dberr(s, e, "replacing the intervals of run %lld", (long long)run_id);
  }
  for (int i = 0; i < n && !rc; i++) {
    const cl_interval_row *r = &rows[i];
    sqlite3_reset(ins);
    sqlite3_clear_bindings(ins);
    bind_key(ins, run_id, k);
    sqlite3_bind_int64(ins, 6, r->eval_id);
    if (r->trial >= 0) sqlite3_bind_int(ins, 7, r->trial);
    sqlite3_bind_text(ins, 8, r->metric, -1, SQLITE_STATIC);
    if (r->has_ci) {
      sqlite3_bind_double(ins, 9, r->lo);
      sqlite3_bind_double(ins, 10, r->hi);
    }
    sqlite3_bind_text(ins, 11, r->tie ? r->tie : "", -1, SQLITE_STATIC);
    if (r->p == r->p) sqlite3_bind_double(ins, 12, r->p); /* NaN: untested, NULL */
    sqlite3_bind_int(ins, 13, r->group_size);
    sqlite3_bind_int64(ins, 14, run_evals);
    sqlite3_bind_text(ins, 15, r->note ? r->note : "", -1, SQLITE_STATIC);
    if (sqlite3_step(ins) != SQLITE_DONE)
      rc = cl_store_dberr(s, e, "storing the interval of eval %lld %s", (long long)r->eval_id, r->metric);
  }
  sqlite3_finalize(del);
  sqlite3_finalize(ins);
  if (!rc) rc = exec(s, "COMMIT", "committing intervals", e);
  if (rc && !sqlite3_get_autocommit(s->db)) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
  return rc;
}

int cl_store_intervals_get(cl_store *s, int64_t run_id, const cl_interval_key *k, cl_store_interval_fn fn, void *ud,
                           int *found, cl_error *e) {
  *found = 0;
  sqlite3_stmt *st;
  int rc = prep(s,
                "SELECT eval_id, trial, metric, lo, hi, tie, p, group_size, note FROM intervals WHERE run_id = ?1"
                " AND method = ?2 AND level = ?3 AND resamples = ?4 AND seed = ?5"
                " AND run_evals = (SELECT count(*) FROM evaluations WHERE run_id = ?1) ORDER BY rowid",
                &st, "reading intervals", e);
  if (rc) return rc;
  bind_key(st, run_id, k);
  int src;
  while (!rc && (src = sqlite3_step(st)) == SQLITE_ROW) {
    cl_interval_row r = {
        .eval_id = sqlite3_column_int64(st, 0),
        .trial = sqlite3_column_type(st, 1) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 1),
        .metric = (const char *)sqlite3_column_text(st, 2),
        .lo = sqlite3_column_double(st, 3),
        .hi = sqlite3_column_double(st, 4),
        .tie = (const char *)sqlite3_column_text(st, 5),
        .p = sqlite3_column_type(st, 6) == SQLITE_NULL ? (double)NAN : sqlite3_column_double(st, 6),
        .group_size = sqlite3_column_int(st, 7),
        .note = (const char *)sqlite3_column_text(st, 8),
        .has_ci = sqlite3_column_type(st, 3) != SQLITE_NULL && sqlite3_column_type(st, 4) != SQLITE_NULL,
    };
    *found = 1;
    rc = fn(&r, ud, e);
  }
  if (!rc && src != SQLITE_DONE) rc = cl_store_dberr(s, e, "reading the intervals of run %lld", (long long)run_id);
  sqlite3_finalize(st);
  return rc;
}
