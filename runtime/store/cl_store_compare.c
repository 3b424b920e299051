/* cl_store_compare: read-only queries behind `clade compare` and `clade report`: a git
 * revision to a commit (libgit2), a commit to its latest complete run, a run's cells with one
 * metric's aggregate, and an evaluation's predictions in pairing order. */
#define _GNU_SOURCE
#include <git2.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cl_store_priv.h"

static const char *git_msg(void) {
  const git_error *ge = git_error_last();
  return ge && ge->message ? ge->message : "unknown libgit2 error";
}

int cl_store_resolve_commit(const char *dir, const char *rev, char out[41], cl_error *e) {
  out[0] = 0;
  if (!rev || !*rev) return cl_err(e, CL_EINVAL, "no git revision given");
  char cwd[PATH_MAX];
  if (!dir) dir = getcwd(cwd, sizeof cwd) ? cwd : ".";
  if (git_libgit2_init() < 0) return cl_err(e, CL_EINVAL, "initialising libgit2: %s", git_msg());
  git_repository *repo = NULL;
  git_object *obj = NULL, *commit = NULL;
  int rc = CL_OK, grc = git_repository_open_ext(&repo, dir, 0, NULL);
  if (grc == GIT_ENOTFOUND) {
    rc = cl_err(e, CL_EINVAL, "%s is not inside a git repository (needed to resolve '%s')", dir,
                rev);
  } else if (grc != 0) {
    rc = cl_err(e, CL_EINVAL, "opening the git repository at %s: %s", dir, git_msg());
  } else if (git_revparse_single(&obj, repo, rev) != 0) {
    const char *wd = git_repository_workdir(repo);
    rc = cl_err(e, CL_EINVAL, "git revision '%s' does not resolve in %s: %s", rev,
                wd ? wd : git_repository_path(repo), git_msg());
  } else if (git_object_peel(&commit, obj, GIT_OBJECT_COMMIT) != 0) {
    /* a tree or blob name ("HEAD:file") is a revision but names no commit */
    rc = cl_err(e, CL_EINVAL, "git revision '%s' is not a commit: %s", rev, git_msg());
  } else {
    git_oid_tostr(out, 41, git_object_id(commit));
  }
  git_object_free(commit);
  git_object_free(obj);
  git_repository_free(repo);
  git_libgit2_shutdown();
  return rc;
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

static int finish(cl_store *s, sqlite3_stmt *st, int step_rc, int cb_rc, const char *what,
                  cl_error *e) {
  int rc = cb_rc;
  if (!rc && step_rc != SQLITE_DONE) rc = cl_store_dberr(s, e, "%s", what);
  sqlite3_finalize(st);
  return rc;
}

static const char *col_text(sqlite3_stmt *st, int i) {
  return (const char *)sqlite3_column_text(st, i);
}

int cl_store_latest_complete_at(cl_store *s, const char *commit, int64_t *run_id, cl_error *e) {
  *run_id = 0;
  sqlite3_stmt *st;
  /* runs_commit (git_commit, status, id) finds the candidates; a run without evaluations (a
   * `clade bench` run, an experiment file that declared nothing) has no cell to compare */
  int rc = prepare(s, "SELECT max(id) FROM runs r WHERE git_commit = ?1 AND status = 'complete'"
                   " AND EXISTS (SELECT 1 FROM evaluations v WHERE v.run_id = r.id)",
                   &st, "finding the run of a commit", e);
  if (rc) return rc;
  sqlite3_bind_text(st, 1, commit, -1, SQLITE_TRANSIENT);
  int src = sqlite3_step(st);
  if (src != SQLITE_ROW) return finish(s, st, src, 0, "finding the run of a commit", e);
  int none = sqlite3_column_type(st, 0) == SQLITE_NULL;
  *run_id = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  if (!none) return CL_OK;
  /* say whether runs exist there but none qualifies (unfinished, or no results): a different fix */
  if ((rc = prepare(s, "SELECT count(*) FROM runs WHERE git_commit = ?1", &st,
                    "counting the runs of a commit", e)))
    return rc;
  sqlite3_bind_text(st, 1, commit, -1, SQLITE_TRANSIENT);
  long long n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_finalize(st);
  if (n)
    return cl_err(e, CL_EINVAL, "%s: no complete run with results at commit %.12s (%lld unfinished "
                  "or without evaluations)", s->path, commit, n);
  return cl_err(e, CL_EINVAL, "%s: no run recorded at commit %.12s", s->path, commit);
}

int cl_store_each_cell(cl_store *s, int64_t run_id, const char *metric, cl_store_cell_fn fn,
                       void *ud, cl_error *e) {
  int rc = cl_store_check_run(s, run_id, e);
  if (rc) return rc;
  /* Correlated subqueries: each is one lookup in results_key / predictions_key. */
  static const char sql[] =
      "SELECT v.run_id, v.id, v.experiment, v.model, v.dataset, v.protocol, v.text_type,"
      " v.shots, v.n_examples,"
      " (SELECT value FROM results r WHERE r.eval_id = v.id AND coalesce(r.trial, -1) = -1"
      "   AND r.metric = ?2),"
      " (SELECT count(*) FROM results r WHERE r.eval_id = v.id AND coalesce(r.trial, -1) = -1"
      "   AND r.metric = ?2 AND r.value IS NOT NULL),"
      " (SELECT value FROM results r WHERE r.eval_id = v.id AND coalesce(r.trial, -1) = -1"
      "   AND r.metric = ?2 || '_std'),"
      " (SELECT count(*) FROM results r WHERE r.eval_id = v.id AND coalesce(r.trial, -1) = -1"
      "   AND r.metric = ?2 || '_std' AND r.value IS NOT NULL),"
      " (SELECT count(*) FROM results r WHERE r.eval_id = v.id AND coalesce(r.trial, -1) >= 0"
      "   AND r.metric = ?2),"
      " (SELECT count(*) FROM predictions p WHERE p.eval_id = v.id),"
      " v.query, v.key, v.split, v.rank"
      " FROM evaluations v WHERE v.run_id = ?1 ORDER BY v.id";
  sqlite3_stmt *st;
  char what[128];
  snprintf(what, sizeof what, "reading the cells of run %lld", (long long)run_id);
  if ((rc = prepare(s, sql, &st, what, e))) return rc;
  sqlite3_bind_int64(st, 1, run_id);
  sqlite3_bind_text(st, 2, metric, -1, SQLITE_TRANSIENT);
  int src, cb = 0;
  while (!cb && (src = sqlite3_step(st)) == SQLITE_ROW) {
    const char *tt = col_text(st, 6);
    cl_cell_row r = {
        .run_id = sqlite3_column_int64(st, 0),
        .eval_id = sqlite3_column_int64(st, 1),
        .experiment = col_text(st, 2),
        .model = col_text(st, 3),
        .dataset = col_text(st, 4),
        .protocol = col_text(st, 5),
        .text_type = tt ? tt : "",
        .shots = sqlite3_column_int(st, 7),
        .n_examples = sqlite3_column_int64(st, 8),
        .value = sqlite3_column_double(st, 9),
        .has_value = sqlite3_column_int(st, 10) > 0,
        .std = sqlite3_column_double(st, 11),
        .has_std = sqlite3_column_int(st, 12) > 0,
        .n_trials = sqlite3_column_int64(st, 13),
        .n_predictions = sqlite3_column_int64(st, 14),
        .query = col_text(st, 15),
        .key = col_text(st, 16),
        .split = col_text(st, 17),
        .rank = col_text(st, 18),
    };
    cb = fn(&r, ud, e);
  }
  return finish(s, st, cb ? SQLITE_DONE : src, cb, what, e);
}

int cl_store_each_correct(cl_store *s, int64_t eval_id, cl_store_correct_fn fn, void *ud,
                          cl_error *e) {
  /* BINARY collation compares bytes like strcmp, so the caller's merge agrees with it */
  static const char sql[] =
      "SELECT coalesce(trial, -1), filepath, correct, coalesce(hit, 0), label FROM predictions WHERE eval_id = ?1"
      " ORDER BY coalesce(trial, -1), filepath, example";
  sqlite3_stmt *st;
  char what[96];
  snprintf(what, sizeof what, "reading the predictions of eval %lld", (long long)eval_id);
  int rc = prepare(s, sql, &st, what, e);
  if (rc) return rc;
  sqlite3_bind_int64(st, 1, eval_id);
  int src, cb = 0;
  while (!cb && (src = sqlite3_step(st)) == SQLITE_ROW) {
    cl_correct_row r = {
        .trial = sqlite3_column_int(st, 0),
        .filepath = col_text(st, 1),
        .correct = sqlite3_column_int(st, 2),
        .hit = sqlite3_column_int(st, 3),
        .label = col_text(st, 4),
    };
    cb = fn(&r, ud, e);
  }
  return finish(s, st, cb ? SQLITE_DONE : src, cb, what, e);
}
