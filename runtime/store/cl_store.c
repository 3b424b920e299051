/* cl_store: opening the results database, its schema and migrations, and every write. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cl_store_priv.h"

#define NOW_ISO "strftime('%Y-%m-%dT%H:%M:%fZ','now')"

/* MIGRATIONS[v] takes a database from user_version v to v+1. Never edit a shipped entry:
 * append one (ALTER TABLE, new tables, data moves) and bump CL_STORE_SCHEMA_VERSION. */
static const char *const MIGRATIONS[] = {
    /* 0 -> 1: the initial schema. */
    "CREATE TABLE runs("
    "  id INTEGER PRIMARY KEY,"
    "  file TEXT NOT NULL,"
    "  file_hash TEXT,"
    "  git_commit TEXT,"
    "  git_branch TEXT,"
    "  git_dirty INTEGER CHECK (git_dirty IN (0, 1)),"
    "  clade_version TEXT NOT NULL,"
    "  backend TEXT,"
    "  device TEXT,"
    "  precision TEXT,"
    "  host TEXT,"
    "  pid INTEGER,"
    "  started_at TEXT NOT NULL,"
    "  ended_at TEXT,"
    "  status TEXT NOT NULL DEFAULT 'running'"
    "    CHECK (status IN ('running', 'complete', 'interrupted', 'failed')),"
    "  wall_seconds REAL,"
    "  images_encoded INTEGER NOT NULL DEFAULT 0,"
    "  texts_encoded INTEGER NOT NULL DEFAULT 0,"
    "  images_cached INTEGER NOT NULL DEFAULT 0,"
    "  texts_cached INTEGER NOT NULL DEFAULT 0,"
    "  stats_json TEXT"
    ");"
    /* compare: the latest complete run at a commit; resume: the unfinished run of a content */
    "CREATE INDEX runs_commit ON runs(git_commit, status, id);"
    "CREATE INDEX runs_content ON runs(file_hash, status, id);"
    "CREATE TABLE evaluations("
    "  id INTEGER PRIMARY KEY,"
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
    "  experiment TEXT NOT NULL,"
    "  model TEXT NOT NULL,"
    "  model_hash TEXT,"
    "  dataset TEXT NOT NULL,"
    "  protocol TEXT NOT NULL,"
    "  text_type TEXT NOT NULL DEFAULT '',"
    "  shots INTEGER NOT NULL DEFAULT 0 CHECK (shots >= 0),"
    "  params_json TEXT,"
    "  n_examples INTEGER,"
    "  created_at TEXT NOT NULL"
    ");"
    "CREATE INDEX evaluations_run ON evaluations(run_id, id);"
    /* compare matches cells across runs by these */
    "CREATE INDEX evaluations_cell ON evaluations(experiment, model, dataset, protocol,"
    "  text_type, shots);"
    "CREATE TABLE results("
    "  eval_id INTEGER NOT NULL REFERENCES evaluations(id) ON DELETE CASCADE,"
    "  trial INTEGER CHECK (trial IS NULL OR trial >= 0)," /* NULL: the aggregate */
    "  metric TEXT NOT NULL,"
    "  value REAL" /* NULL: NaN */
    ");"
    "CREATE UNIQUE INDEX results_key ON results(eval_id, coalesce(trial, -1), metric);"
    "CREATE TABLE predictions("
    "  eval_id INTEGER NOT NULL REFERENCES evaluations(id) ON DELETE CASCADE,"
    "  trial INTEGER CHECK (trial IS NULL OR trial >= 0),"
    "  example INTEGER NOT NULL CHECK (example >= 0),"
    "  filepath TEXT NOT NULL,"
    "  label TEXT NOT NULL,"
    "  prediction TEXT NOT NULL,"
    "  correct INTEGER NOT NULL CHECK (correct IN (0, 1))"
    ");"
    "CREATE UNIQUE INDEX predictions_key ON predictions(eval_id, coalesce(trial, -1), example);"
    "CREATE TABLE support("
    "  eval_id INTEGER NOT NULL REFERENCES evaluations(id) ON DELETE CASCADE,"
    "  trial INTEGER NOT NULL CHECK (trial >= 0),"
    "  class TEXT NOT NULL,"
    "  filepath TEXT NOT NULL"
    ");"
    "CREATE INDEX support_eval ON support(eval_id, trial);",
    /* 1 -> 2: jobs and claims (resume, several processes on one run), and one row per cell
     * of a run so a resumed or shared run never duplicates an evaluation. */
    "CREATE TABLE jobs("
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
    "  job TEXT NOT NULL,"
    "  status TEXT NOT NULL CHECK (status IN ('claimed', 'done')),"
    "  host TEXT,"
    "  pid INTEGER,"
    "  lease_until REAL,"
    "  PRIMARY KEY (run_id, job)"
    ");"
    "CREATE UNIQUE INDEX evaluations_run_cell ON evaluations(run_id, experiment, model, dataset,"
    "  protocol, text_type, shots, coalesce(params_json, ''));",
    /* 2 -> 3: speed measurements (`clade bench`), one row per measure of a run, so that speed
     * regressions are tracked with the same provenance as accuracy. value is the median over
     * reps; value_min/value_max the spread; peak_fraction the share of the machine's measured
     * fp32 GEMM peak (NULL when not a compute measure). */
    "CREATE TABLE bench("
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
    "  name TEXT NOT NULL,"
    "  batch INTEGER CHECK (batch IS NULL OR batch > 0),"
    "  value REAL,"
    "  unit TEXT NOT NULL,"
    "  value_min REAL,"
    "  value_max REAL,"
    "  reps INTEGER,"
    "  n INTEGER,"
    "  peak_fraction REAL,"
    "  model TEXT,"
    "  model_hash TEXT,"
    "  threads INTEGER,"
    "  params_json TEXT,"
    "  created_at TEXT NOT NULL"
    ");"
    "CREATE INDEX bench_run ON bench(run_id);"
    "CREATE INDEX bench_measure ON bench(name, batch, model_hash);",
    /* 3 -> 4: how a run decoded its images: 'full' (open_clip's, every run before this) or
     * 'draft' (the opt-in fast mode, PIL's Image.draft), part of a run's provenance. */
    "ALTER TABLE runs ADD COLUMN decode TEXT NOT NULL DEFAULT 'full' CHECK (decode IN ('full', 'draft'));",
    /* 4 -> 5: shards (`clade run --shard I/N`, `clade merge`, `clade slurm`). A shard run keeps
     * its place I/N, the hash of the plan it is a part of and how many of the plan's jobs are
     * its own; a merged run has shard_count N and no shard_index. slurm_job: the Slurm job
     * ("ARRAYJOB_TASK" in an array) that last worked on the run. evaluations.job and runs.plan
     * let a merge put the shards' evaluations back in run order. run_shards: which shard runs
     * a merged run folds in, and how far each had got when merged. */
    "ALTER TABLE runs ADD COLUMN shard_index INTEGER CHECK (shard_index IS NULL OR shard_index >= 0);"
    "ALTER TABLE runs ADD COLUMN shard_count INTEGER CHECK (shard_count IS NULL OR shard_count > 0);"
    "ALTER TABLE runs ADD COLUMN plan_hash TEXT;"
    "ALTER TABLE runs ADD COLUMN plan_jobs INTEGER;"
    "ALTER TABLE runs ADD COLUMN slurm_job TEXT;"
    "ALTER TABLE runs ADD COLUMN plan TEXT;" /* the job keys of the plan, one a line, in run order */
    "ALTER TABLE evaluations ADD COLUMN job TEXT;" /* the key of the job that stored it */
    "CREATE INDEX runs_plan ON runs(plan_hash, shard_count, shard_index);"
    "CREATE TABLE run_shards("
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
    "  shard_index INTEGER NOT NULL CHECK (shard_index >= 0),"
    "  source TEXT NOT NULL,"       /* the shard database as given to clade merge */
    "  source_run INTEGER NOT NULL," /* the shard's run id there */
    "  status TEXT NOT NULL,"
    "  jobs_done INTEGER NOT NULL,"
    "  plan_jobs INTEGER,"
    "  host TEXT,"
    "  slurm_job TEXT,"
    "  wall_seconds REAL,"
    "  images_encoded INTEGER NOT NULL DEFAULT 0,"
    "  texts_encoded INTEGER NOT NULL DEFAULT 0,"
    "  images_cached INTEGER NOT NULL DEFAULT 0,"
    "  texts_cached INTEGER NOT NULL DEFAULT 0,"
    "  merged_at TEXT NOT NULL,"
    "  PRIMARY KEY (run_id, shard_index, source, source_run)"
    ");",
    /* 5 -> 6: generic cell axes for retrieval (CLIBD): query and key modality, the query split
     * and the taxonomic rank ('' for every earlier, classification cell), part of a cell's
     * identity; a retrieval's predictions keep the retrieved key rows (a JSON array). */
    "ALTER TABLE evaluations ADD COLUMN query TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE evaluations ADD COLUMN key TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE evaluations ADD COLUMN split TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE evaluations ADD COLUMN rank TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE predictions ADD COLUMN retrieved TEXT;"
    "DROP INDEX evaluations_cell;"
    "CREATE INDEX evaluations_cell ON evaluations(experiment, model, dataset, protocol,"
    "  text_type, shots, query, key, split, rank);"
    "DROP INDEX evaluations_run_cell;"
    "CREATE UNIQUE INDEX evaluations_run_cell ON evaluations(run_id, experiment, model, dataset,"
    "  protocol, text_type, shots, query, key, split, rank, coalesce(params_json, ''));",
    /* 6 -> 7: training jobs (`train "name" { ... }`, issue 14): one row per training of a
     * model, with its provenance and hyperparameters; one row per optimizer step with its
     * loss, learning rate and the text types (and templates) drawn. The trained weights'
     * content hash is the model_hash the trained model's evaluations carry (the link). */
    "CREATE TABLE train_jobs("
    "  id INTEGER PRIMARY KEY,"
    "  run_id INTEGER REFERENCES runs(id) ON DELETE CASCADE," /* the run that trained it */
    "  name TEXT NOT NULL,"        /* the declaration's name: what experiments call the model */
    "  content_key TEXT NOT NULL," /* what the trained weights are cached under */
    "  parent TEXT NOT NULL,"      /* from = \"model\" */
    "  parent_hash TEXT,"          /* the parent checkpoint's content hash */
    "  model_hash TEXT,"           /* the trained checkpoint's content hash, once complete */
    "  out_dir TEXT,"              /* the open_clip hub folder of the trained weights */
    "  spec_json TEXT NOT NULL,"   /* every hyperparameter, the seed, draw, templates, augment */
    "  mixture_json TEXT NOT NULL," /* [{\"type\": name, \"weight\": w}, ...] */
    "  data_json TEXT,"            /* [{\"dataset\": name, \"split\": s, \"examples\": n}, ...] */
    "  n_examples INTEGER NOT NULL CHECK (n_examples >= 0),"
    "  steps INTEGER NOT NULL CHECK (steps >= 0),"
    "  steps_done INTEGER NOT NULL DEFAULT 0,"
    "  status TEXT NOT NULL DEFAULT 'running'"
    "    CHECK (status IN ('running', 'complete', 'interrupted', 'failed')),"
    "  clade_version TEXT NOT NULL,"
    "  started_at TEXT NOT NULL,"
    "  ended_at TEXT,"
    "  wall_seconds REAL"
    ");"
    "CREATE INDEX train_jobs_run ON train_jobs(run_id, id);"
    "CREATE INDEX train_jobs_key ON train_jobs(content_key, status);"
    "CREATE INDEX train_jobs_model ON train_jobs(model_hash);"
    "CREATE TABLE train_steps("
    "  train_id INTEGER NOT NULL REFERENCES train_jobs(id) ON DELETE CASCADE,"
    "  step INTEGER NOT NULL CHECK (step >= 0)," /* 0-based */
    "  epoch INTEGER NOT NULL CHECK (epoch >= 0),"
    "  loss REAL,"      /* before the step's update */
    "  lr REAL,"        /* cosine_lr at the step */
    "  grad_norm REAL," /* before clipping; NULL without clipping */
    "  text_type TEXT NOT NULL DEFAULT ''," /* the batch's type (draw = \"batch\"); '' per example */
    "  draws TEXT,"     /* JSON {\"types\": [...], \"templates\": [...]}: per example of the batch */
    "  PRIMARY KEY (train_id, step)"
    ");"
    "CREATE INDEX evaluations_model_hash ON evaluations(model_hash);",
    /* 7 -> 8: where the true label ranked among a prediction's ranked classes (1-based; NULL
     * beyond those kept or unknown: every earlier row), so top-k outcomes are per example
     * too and every top-k accuracy can carry a bootstrap interval. */
    "ALTER TABLE predictions ADD COLUMN hit INTEGER CHECK (hit IS NULL OR hit >= 1);",
    /* 8 -> 9: computed confidence intervals, kept for reuse: one row per cell (evaluation,
     * trial, metric) and settings (method, level, resamples, seed), with the cell's tie with
     * the best of its group; run_evals: the run's evaluations when computed (a run that has
     * grown since has new groups: its rows are stale). Derived data, tied to the run (not to
     * evaluations, so clade merge leaves them: a merged run computes its own). From this
     * version on a retrieval's predictions keep hit too: the position of the first retrieved
     * key of the query's label (NULL: none of them), so its metrics have per-query outcomes. */
    "CREATE TABLE intervals("
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
    "  eval_id INTEGER NOT NULL,"
    "  trial INTEGER CHECK (trial IS NULL OR trial >= 0)," /* NULL: the aggregate */
    "  metric TEXT NOT NULL,"
    "  method TEXT NOT NULL,"  /* 'bootstrap' */
    "  level REAL NOT NULL,"   /* 0.95 */
    "  resamples INTEGER NOT NULL CHECK (resamples >= 1),"
    "  seed INTEGER NOT NULL CHECK (seed >= 0),"
    "  lo REAL,"              /* NULL (with hi): the cell has no interval, note says why */
    "  hi REAL,"
    "  note TEXT NOT NULL DEFAULT '',"
    "  tie TEXT NOT NULL DEFAULT '' CHECK (tie IN ('', 'best', 'tied', 'worse')),"
    "  p REAL,"                /* the test's p-value against the best; NULL untested */
    "  group_size INTEGER NOT NULL DEFAULT 0,"
    "  run_evals INTEGER NOT NULL,"
    "  created_at TEXT NOT NULL"
    ");"
    "CREATE UNIQUE INDEX intervals_key ON intervals(run_id, method, level, resamples, seed, eval_id,"
    "  coalesce(trial, -1), metric);",
    /* 9 -> 10: a merged run (`clade merge`) with a shard missing or unfinished is 'incomplete',
     * not 'interrupted' (which reads like a crash). SQLite cannot change a CHECK in place, so
     * runs is rebuilt as its ALTER TABLE page says (foreign keys off while migrating, see
     * migrate()): same columns, rows and ids; merged runs recorded 'interrupted' become
     * 'incomplete'. */
    "CREATE TABLE runs_new("
    "  id INTEGER PRIMARY KEY,"
    "  file TEXT NOT NULL,"
    "  file_hash TEXT,"
    "  git_commit TEXT,"
    "  git_branch TEXT,"
    "  git_dirty INTEGER CHECK (git_dirty IN (0, 1)),"
    "  clade_version TEXT NOT NULL,"
    "  backend TEXT,"
    "  device TEXT,"
    "  precision TEXT,"
    "  host TEXT,"
    "  pid INTEGER,"
    "  started_at TEXT NOT NULL,"
    "  ended_at TEXT,"
    "  status TEXT NOT NULL DEFAULT 'running'"
    "    CHECK (status IN ('running', 'complete', 'interrupted', 'failed', 'incomplete')),"
    "  wall_seconds REAL,"
    "  images_encoded INTEGER NOT NULL DEFAULT 0,"
    "  texts_encoded INTEGER NOT NULL DEFAULT 0,"
    "  images_cached INTEGER NOT NULL DEFAULT 0,"
    "  texts_cached INTEGER NOT NULL DEFAULT 0,"
    "  stats_json TEXT,"
    "  decode TEXT NOT NULL DEFAULT 'full' CHECK (decode IN ('full', 'draft')),"
    "  shard_index INTEGER CHECK (shard_index IS NULL OR shard_index >= 0),"
    "  shard_count INTEGER CHECK (shard_count IS NULL OR shard_count > 0),"
    "  plan_hash TEXT,"
    "  plan_jobs INTEGER,"
    "  slurm_job TEXT,"
    "  plan TEXT"
    ");"
    "INSERT INTO runs_new SELECT id, file, file_hash, git_commit, git_branch, git_dirty, clade_version, backend,"
    "  device, precision, host, pid, started_at, ended_at, CASE WHEN status = 'interrupted' AND"
    "  shard_index IS NULL AND shard_count IS NOT NULL THEN 'incomplete' ELSE status END, wall_seconds,"
    "  images_encoded, texts_encoded, images_cached, texts_cached, stats_json, decode, shard_index,"
    "  shard_count, plan_hash, plan_jobs, slurm_job, plan FROM runs;"
    "DROP TABLE runs;"
    "ALTER TABLE runs_new RENAME TO runs;"
    "CREATE INDEX runs_commit ON runs(git_commit, status, id);"
    "CREATE INDEX runs_content ON runs(file_hash, status, id);"
    "CREATE INDEX runs_plan ON runs(plan_hash, shard_count, shard_index);",
    /* 10 -> 11: model_hash is the checkpoint's content only; two models of one checkpoint
     * with another config (e.g. `gelu`) compute other outputs. config_hash: the hash of the
     * resolved config beside it (NULL in every earlier row and for precomputed features). */
    "ALTER TABLE evaluations ADD COLUMN config_hash TEXT;",
};
_Static_assert(sizeof MIGRATIONS / sizeof *MIGRATIONS == CL_STORE_SCHEMA_VERSION,
               "one migration per schema version");

static const char *const SQL[CL_ST_COUNT] = {
    [CL_ST_BEGIN] = "BEGIN IMMEDIATE", /* take the write lock now: no deadlock on upgrade */
    [CL_ST_COMMIT] = "COMMIT",
    [CL_ST_ROLLBACK] = "ROLLBACK",
    [CL_ST_RUN_INSERT] =
        "INSERT INTO runs(file, file_hash, git_commit, git_branch, git_dirty, clade_version,"
        " backend, device, precision, host, pid, decode, started_at, status)"
        " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, " NOW_ISO ", 'running')",
    [CL_ST_RUN_END] =
        "UPDATE runs SET status = ?2,"
        " ended_at = CASE WHEN ?2 = 'running' THEN NULL ELSE " NOW_ISO " END,"
        " wall_seconds = CASE WHEN ?2 = 'running' THEN NULL"
        "   ELSE coalesce(?3, (julianday('now') - julianday(started_at)) * 86400.0) END"
        " WHERE id = ?1",
    [CL_ST_RUN_STATS] = "UPDATE runs SET images_encoded = ?2, texts_encoded = ?3,"
                        " images_cached = ?4, texts_cached = ?5, stats_json = ?6 WHERE id = ?1",
    [CL_ST_EVAL_INSERT] =
        "INSERT INTO evaluations(run_id, experiment, model, model_hash, dataset, protocol,"
        " text_type, shots, params_json, n_examples, query, key, split, rank, config_hash, created_at)"
        " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, " NOW_ISO ")",
    [CL_ST_RESULT_INSERT] = "INSERT INTO results(eval_id, trial, metric, value)"
                            " VALUES(?1, ?2, ?3, ?4)",
    [CL_ST_PRED_INSERT] = "INSERT INTO predictions(eval_id, trial, example, filepath, label,"
                          " prediction, correct, retrieved, hit) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [CL_ST_SUPPORT_INSERT] = "INSERT INTO support(eval_id, trial, class, filepath)"
                             " VALUES(?1, ?2, ?3, ?4)",
};

int cl_store_dberr(cl_store *s, cl_error *e, const char *fmt, ...) {
  char what[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  return cl_err(e, CL_EDB, "%s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
}

void cl_store_warn(cl_store *s, const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  free(s->warning);
  s->warning = cl_strdup(buf);
}

const char *cl_store_warning(const cl_store *s) { return s ? s->warning : NULL; }
void cl_store_clear_warning(cl_store *s) {
  if (!s) return;
  free(s->warning);
  s->warning = NULL;
}
const char *cl_store_path(const cl_store *s) { return s->path; }

static double mono_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* A cached statement, reset and unbound, ready to bind. */
static sqlite3_stmt *stmt(cl_store *s, int id, const char *what, cl_error *e) {
  if (!s->st[id] &&
      sqlite3_prepare_v3(s->db, SQL[id], -1, SQLITE_PREPARE_PERSISTENT, &s->st[id], NULL) !=
          SQLITE_OK) {
    cl_store_dberr(s, e, "preparing the statement for %s", what);
    s->st[id] = NULL;
    return NULL;
  }
  return s->st[id];
}

/* Step a write statement to completion; the statement is reset either way. The message is
 * formatted only on failure (hot path: one call per prediction). */
static int step_done(cl_store *s, sqlite3_stmt *st, cl_error *e, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int step_done(cl_store *s, sqlite3_stmt *st, cl_error *e, const char *fmt, ...) {
  int rc = sqlite3_step(st);
  if (rc != SQLITE_DONE) {
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    cl_store_dberr(s, e, "%s", what); /* errmsg before reset, which may change it */
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return CL_EDB;
  }
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return CL_OK;
}

static int exec_st(cl_store *s, int id, const char *what, cl_error *e) {
  sqlite3_stmt *st = stmt(s, id, what, e);
  return st ? step_done(s, st, e, "%s", what) : CL_EDB;
}

static int pragma_int(cl_store *s, const char *sql, int *v, cl_error *e) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
  if (rc == SQLITE_OK) rc = sqlite3_step(st);
  if (rc != SQLITE_ROW) {
    cl_store_dberr(s, e, "running %s", sql);
    sqlite3_finalize(st);
    return CL_EDB;
  }
  *v = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  return CL_OK;
}

int cl_store_schema_version(cl_store *s, int *version, cl_error *e) {
  return pragma_int(s, "PRAGMA user_version", version, e);
}

/* The parent directories of path, like mkdir -p. */
static int make_parents(const char *path, cl_error *e) {
  const char *slash = strrchr(path, '/');
  if (!slash || slash == path) return CL_OK;
  char *dir = cl_asprintf("%.*s", (int)(slash - path), path);
  int rc = cl_mkdirs(dir, e);
  free(dir);
  return rc ? cl_err_wrap(e, "%s", path) : CL_OK;
}

/* Is the schema one this build can use? Sets *uv. */
static int check_identity(cl_store *s, int create, int *uv, cl_error *e) {
  int app = 0, rc;
  if ((rc = pragma_int(s, "PRAGMA application_id", &app, e)) ||
      (rc = pragma_int(s, "PRAGMA user_version", uv, e)))
    return rc;
  if ((app != 0 && app != CL_STORE_APP_ID) || (app == 0 && *uv != 0))
    return cl_err(e, CL_EDB, "%s: not a clade results database (application_id 0x%x)", s->path,
                  (unsigned)app);
  if (*uv > CL_STORE_SCHEMA_VERSION)
    return cl_err(e, CL_EDB,
                  "%s: schema version %d is newer than this clade's (%d): upgrade clade",
                  s->path, *uv, CL_STORE_SCHEMA_VERSION);
  if (*uv == 0 && !create)
    return cl_err(e, CL_EDB, "%s: not a clade results database (no clade schema)", s->path);
  return CL_OK;
}

/* Apply the migrations from the on-disk version up, in one write transaction so that a second
 * process opening the same new file waits and then sees the finished schema. */
static int migrate(cl_store *s, int create, int writable, cl_error *e) {
  int uv, rc;
  if ((rc = check_identity(s, create, &uv, e))) return rc;
  if (uv == CL_STORE_SCHEMA_VERSION) return CL_OK;
  if (!writable)
    return cl_err(e, CL_EDB, "%s: schema version %d needs migrating to %d but the file is read-only",
                  s->path, uv, CL_STORE_SCHEMA_VERSION);
  /* A migration may rebuild a table others reference (SQLite's generalized ALTER TABLE): with
   * foreign keys on, dropping the old table would delete every row referencing it. The pragma
   * is a no-op inside a transaction, so it goes off before and back on after; a rebuild keeps
   * every row and id, so no reference is left dangling. */
  if (sqlite3_exec(s->db, "PRAGMA foreign_keys = OFF", NULL, NULL, NULL) != SQLITE_OK)
    return cl_store_dberr(s, e, "disabling foreign keys for the schema migration");
  if ((rc = exec_st(s, CL_ST_BEGIN, "starting the schema migration", e))) goto fk_on;
  if ((rc = check_identity(s, create, &uv, e))) goto fail;
  if (uv == 0) {
    int ntables = 0;
    if ((rc = pragma_int(s, "SELECT count(*) FROM sqlite_schema", &ntables, e))) goto fail;
    if (ntables > 0) {
      rc = cl_err(e, CL_EDB, "%s: a SQLite database with other tables, not clade's: refusing to "
                  "add the clade schema", s->path);
      goto fail;
    }
  }
  for (int v = uv; v < CL_STORE_SCHEMA_VERSION; v++)
    if (sqlite3_exec(s->db, MIGRATIONS[v], NULL, NULL, NULL) != SQLITE_OK) {
      rc = cl_store_dberr(s, e, "migrating the schema from version %d to %d", v, v + 1);
      goto fail;
    }
  char sql[128];
  snprintf(sql, sizeof sql, "PRAGMA user_version = %d; PRAGMA application_id = %d;",
           CL_STORE_SCHEMA_VERSION, CL_STORE_APP_ID);
  if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
    rc = cl_store_dberr(s, e, "setting the schema version");
    goto fail;
  }
  if ((rc = exec_st(s, CL_ST_COMMIT, "committing the schema migration", e))) goto fail;
  goto fk_on;
fail:
  exec_st(s, CL_ST_ROLLBACK, "rolling back the schema migration", NULL);
fk_on:
  if (sqlite3_exec(s->db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL) != SQLITE_OK && rc == CL_OK)
    rc = cl_store_dberr(s, e, "enabling foreign keys");
  return rc;
}

/* Whether the directory holding path is writable (SQLite makes the -wal and -shm there). */
static int dir_writable(const char *path) {
  char *dir = cl_strdup(path);
  char *slash = strrchr(dir, '/');
  if (!slash) snprintf(dir, strlen(dir) + 1, ".");
  else if (slash == dir) slash[1] = 0;
  else *slash = 0;
  int ok = access(dir, W_OK) == 0;
  free(dir);
  return ok;
}

/* "file:<path>?immutable=1", the path %-escaped where a URI needs it. */
static char *immutable_uri(const char *path) {
  size_t n = strlen(path);
  char *u = cl_xmalloc(3 * n + 32), *q = u;
  q += sprintf(q, "file:");
  for (const unsigned char *p = (const unsigned char *)path; *p; p++)
    q += (*p == '%' || *p == '?' || *p == '#' || *p < 0x20 || *p >= 0x7f) ? sprintf(q, "%%%02X", *p)
                                                                            : sprintf(q, "%c", *p);
  sprintf(q, "?immutable=1");
  return u;
}

static int open_impl(const char *path, int create, cl_store **out, cl_error *e) {
  *out = NULL;
  if (!path || !*path) return cl_err(e, CL_EINVAL, "no database path given");
  int memory = strcmp(path, ":memory:") == 0;
  int writable = 1, immutable = 0;
  if (!memory) {
    struct stat sb;
    if (stat(path, &sb) != 0) {
      if (errno != ENOENT || !create)
        return cl_err(e, CL_EIO, "%s: %s", path,
                      errno == ENOENT ? "no such database (nothing was recorded there)"
                                      : strerror(errno));
      int rc = make_parents(path, e);
      if (rc) return rc;
    } else if (!S_ISREG(sb.st_mode)) {
      return cl_err(e, CL_EIO, "%s: not a regular file", path);
    } else if (access(path, W_OK) != 0) {
      if (create) return cl_err(e, CL_EIO, "%s: not writable: %s", path, strerror(errno));
      writable = 0;
    } else if (!dir_writable(path)) {
      if (create)
        return cl_err(e, CL_EIO, "%s: its directory is not writable (SQLite keeps the database's -wal "
                      "and -shm files beside it)", path);
      writable = 0;
    }
    /* Read-only: with no -wal beside it, no writer can be at work (it would need one there),
     * and a WAL database there can only be read as immutable (no -shm can be made). With a
     * -wal, SQLite reads it through a read-only -shm. */
    if (!writable) {
      char *wal = cl_xmalloc(strlen(path) + 5);
      sprintf(wal, "%s-wal", path);
      struct stat ws;
      immutable = stat(wal, &ws) != 0 || ws.st_size == 0;
      free(wal);
    }
  }
  cl_store *s = cl_xcalloc(1, sizeof *s);
  s->path = cl_strdup(path);
  s->readonly = !writable;
  /* A handle serves one thread at a time: no per-call mutex. */
  int flags = (writable ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY) | SQLITE_OPEN_NOMUTEX;
  if (create) flags |= SQLITE_OPEN_CREATE;
  char *uri = immutable ? immutable_uri(path) : NULL;
  int orc = sqlite3_open_v2(uri ? uri : path, &s->db, flags | (uri ? SQLITE_OPEN_URI : 0), NULL);
  free(uri);
  if (orc != SQLITE_OK) {
    int rc = s->db ? cl_store_dberr(s, e, "opening")
                   : cl_err(e, CL_ENOMEM, "%s: opening: out of memory", path);
    cl_store_close(s);
    return rc;
  }
  /* Two processes may share the file: wait for the other's transaction rather than fail. */
  sqlite3_busy_timeout(s->db, 30000);
  /* An evaluation's transaction (~100k prediction rows) fits in cache: no mid-way spills. */
  sqlite3_exec(s->db, "PRAGMA cache_size = -65536", NULL, NULL, NULL);
  int rc = CL_OK;
  if (sqlite3_exec(s->db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL) != SQLITE_OK) {
    rc = cl_store_dberr(s, e, "enabling foreign keys");
    goto fail;
  }
  if (create && !memory) {
    /* WAL (persistent in the file, so readers need not set it, and must not write to a file
     * that may not be ours): readers never block the writer, and a commit is one append.
     * Synchronous stays FULL (the default): one fsync per evaluation is cheap and survives
     * power loss too. */
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
      rc = cl_store_dberr(s, e, "switching to WAL mode");
      sqlite3_finalize(st);
      goto fail;
    }
    const char *mode = (const char *)sqlite3_column_text(st, 0);
    if (!mode || strcmp(mode, "wal") != 0)
      cl_store_warn(s, "%s: WAL mode unavailable (journal mode %s)", path, mode ? mode : "?");
    sqlite3_finalize(st);
  }
  if ((rc = migrate(s, create, writable, e))) goto fail;
  *out = s;
  return CL_OK;
fail:
  cl_store_close(s);
  return rc;
}

int cl_store_open(const char *path, cl_store **out, cl_error *e) {
  return open_impl(path, 1, out, e);
}

int cl_store_open_existing(const char *path, cl_store **out, cl_error *e) {
  return open_impl(path, 0, out, e);
}

void cl_store_close(cl_store *s) {
  if (!s) return;
  if (s->eval_open) cl_store_eval_abort(s);
  for (int i = 0; i < CL_ST_COUNT; i++) sqlite3_finalize(s->st[i]);
  if (s->db) sqlite3_close(s->db);
  free(s->warning);
  free(s->path);
  free(s);
}

/* ---- runs ---- */

static void bind_text(sqlite3_stmt *st, int i, const char *v) {
  if (v) sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
  else sqlite3_bind_null(st, i);
}

int cl_store_run_begin(cl_store *s, const cl_run_info *ri, int64_t *run_id, cl_error *e) {
  if (!ri || !ri->file || !*ri->file)
    return cl_err(e, CL_EINVAL, "%s: beginning a run: no experiment file given", s->path);
  if (s->eval_open)
    return cl_err(e, CL_EINVAL, "%s: beginning a run while evaluation %lld is open", s->path,
                  (long long)s->eval_id);
  char hash[41];
  const char *file_hash = ri->file_hash;
  if (!file_hash && cl_hash_file(ri->file, hash, NULL) == CL_OK) file_hash = hash;

  cl_git_info gi;
  cl_error ge = {0};
  if (cl_store_git_info(ri->file, &gi, &ge) != CL_OK) {
    /* Provenance is a record, not a precondition: a repository libgit2 cannot read (owner
     * check, unknown extension) must not stop the run. Say so instead. */
    cl_store_warn(s, "git provenance not recorded: %s", ge.msg);
    memset(&gi, 0, sizeof gi);
  }
  char host[256] = "";
  if (gethostname(host, sizeof host - 1) != 0) host[0] = 0;

  sqlite3_stmt *st = stmt(s, CL_ST_RUN_INSERT, "inserting a run", e);
  if (!st) return CL_EDB;
  bind_text(st, 1, ri->file);
  bind_text(st, 2, file_hash);
  bind_text(st, 3, gi.in_repo && gi.commit[0] ? gi.commit : NULL);
  bind_text(st, 4, gi.in_repo && gi.branch[0] ? gi.branch : NULL);
  if (gi.in_repo && gi.dirty >= 0) sqlite3_bind_int(st, 5, gi.dirty);
  else sqlite3_bind_null(st, 5);
  bind_text(st, 6, CLADE_VERSION);
  bind_text(st, 7, ri->backend);
  bind_text(st, 8, ri->device);
  bind_text(st, 9, ri->precision);
  bind_text(st, 10, host[0] ? host : NULL);
  sqlite3_bind_int64(st, 11, (sqlite3_int64)getpid());
  bind_text(st, 12, ri->decode ? ri->decode : "full");
  int rc = step_done(s, st, e, "inserting the run of %s", ri->file);
  if (rc) return rc;
  *run_id = (int64_t)sqlite3_last_insert_rowid(s->db);
  s->run_begun = *run_id;
  s->run_t0 = mono_now();
  return CL_OK;
}

int cl_store_run_end(cl_store *s, int64_t run_id, const char *status, cl_error *e) {
  static const char *const ok[] = {"running", "complete", "interrupted", "failed"};
  int valid = 0;
  for (size_t i = 0; status && i < sizeof ok / sizeof *ok; i++) valid |= strcmp(status, ok[i]) == 0;
  if (!valid)
    return cl_err(e, CL_EINVAL, "%s: ending run %lld: bad status '%s' (complete, interrupted, "
                  "failed or running)", s->path, (long long)run_id, status ? status : "(null)");
  if (s->eval_open)
    return cl_err(e, CL_EINVAL, "%s: ending run %lld while evaluation %lld is open", s->path,
                  (long long)run_id, (long long)s->eval_id);
  sqlite3_stmt *st = stmt(s, CL_ST_RUN_END, "ending a run", e);
  if (!st) return CL_EDB;
  sqlite3_bind_int64(st, 1, run_id);
  bind_text(st, 2, status);
  if (s->run_begun == run_id) sqlite3_bind_double(st, 3, mono_now() - s->run_t0);
  else sqlite3_bind_null(st, 3);
  int rc = step_done(s, st, e, "ending run %lld as %s", (long long)run_id, status);
  if (rc) return rc;
  if (sqlite3_changes(s->db) != 1)
    return cl_err(e, CL_EINVAL, "%s: ending run %lld: no such run", s->path, (long long)run_id);
  return CL_OK;
}

int cl_store_run_set_stats(cl_store *s, int64_t run_id, const cl_run_stats *rs, cl_error *e) {
  if (s->eval_open)
    return cl_err(e, CL_EINVAL, "%s: setting stats of run %lld while evaluation %lld is open",
                  s->path, (long long)run_id, (long long)s->eval_id);
  sqlite3_stmt *st = stmt(s, CL_ST_RUN_STATS, "setting run stats", e);
  if (!st) return CL_EDB;
  sqlite3_bind_int64(st, 1, run_id);
  sqlite3_bind_int64(st, 2, rs->images_encoded);
  sqlite3_bind_int64(st, 3, rs->texts_encoded);
  sqlite3_bind_int64(st, 4, rs->images_cached);
  sqlite3_bind_int64(st, 5, rs->texts_cached);
  bind_text(st, 6, rs->stats_json);
  int rc = step_done(s, st, e, "setting the stats of run %lld", (long long)run_id);
  if (rc) return rc;
  if (sqlite3_changes(s->db) != 1)
    return cl_err(e, CL_EINVAL, "%s: setting the stats of run %lld: no such run", s->path,
                  (long long)run_id);
  return CL_OK;
}

/* ---- evaluations ---- */

int cl_store_eval_begin(cl_store *s, int64_t run_id, const cl_eval_info *ei, int64_t *eval_id,
                        cl_error *e) {
  if (s->eval_open)
    return cl_err(e, CL_EINVAL, "%s: beginning an evaluation while evaluation %lld is open "
                  "(commit or abort it first)", s->path, (long long)s->eval_id);
  const char *missing = !ei ? "info" : !ei->experiment ? "experiment" : !ei->model ? "model"
                        : !ei->dataset ? "dataset" : !ei->protocol ? "protocol" : NULL;
  if (missing)
    return cl_err(e, CL_EINVAL, "%s: beginning an evaluation of run %lld: no %s given", s->path,
                  (long long)run_id, missing);
  if (ei->shots < 0)
    return cl_err(e, CL_EINVAL, "%s: evaluation of %s on %s: shots %d < 0", s->path, ei->model,
                  ei->dataset, ei->shots);
  char what[1024];
  snprintf(what, sizeof what, "beginning the evaluation of %s on %s (%s) in run %lld", ei->model,
           ei->dataset, ei->protocol, (long long)run_id);
  int rc = exec_st(s, CL_ST_BEGIN, what, e);
  if (rc) return rc;
  sqlite3_stmt *st = stmt(s, CL_ST_EVAL_INSERT, what, e);
  if (!st) {
    exec_st(s, CL_ST_ROLLBACK, "rolling back", NULL);
    return CL_EDB;
  }
  sqlite3_bind_int64(st, 1, run_id);
  bind_text(st, 2, ei->experiment);
  bind_text(st, 3, ei->model);
  bind_text(st, 4, ei->model_hash);
  bind_text(st, 5, ei->dataset);
  bind_text(st, 6, ei->protocol);
  bind_text(st, 7, ei->text_type ? ei->text_type : "");
  sqlite3_bind_int(st, 8, ei->shots);
  bind_text(st, 9, ei->params_json);
  sqlite3_bind_int(st, 10, ei->n_examples);
  bind_text(st, 11, ei->query ? ei->query : "");
  bind_text(st, 12, ei->key ? ei->key : "");
  bind_text(st, 13, ei->split ? ei->split : "");
  bind_text(st, 14, ei->rank ? ei->rank : "");
  bind_text(st, 15, ei->config_hash);
  if ((rc = step_done(s, st, e, "%s", what))) {
    exec_st(s, CL_ST_ROLLBACK, "rolling back", NULL);
    return rc;
  }
  *eval_id = (int64_t)sqlite3_last_insert_rowid(s->db);
  s->eval_open = 1;
  s->eval_failed = 0;
  s->eval_id = *eval_id;
  return CL_OK;
}

static int check_open(cl_store *s, int64_t eval_id, const char *what, cl_error *e) {
  if (!s->eval_open)
    return cl_err(e, CL_EINVAL, "%s: %s for eval %lld: no evaluation is open", s->path, what,
                  (long long)eval_id);
  if (s->eval_id != eval_id)
    return cl_err(e, CL_EINVAL, "%s: %s for eval %lld: the open evaluation is %lld", s->path,
                  what, (long long)eval_id, (long long)s->eval_id);
  return CL_OK;
}

static void bind_trial(sqlite3_stmt *st, int i, int trial) {
  if (trial < 0) sqlite3_bind_null(st, i);
  else sqlite3_bind_int(st, i, trial);
}

/* Inserting into the open evaluation: a failure poisons it (commit rolls back). */
#define ADD_DONE(s, st, e, ...)                                                                \
  do {                                                                                       \
    int rc_ = step_done(s, st, e, __VA_ARGS__);                                              \
    if (rc_) s->eval_failed = 1;                                                             \
    return rc_;                                                                              \
  } while (0)

int cl_store_add_result(cl_store *s, int64_t eval_id, int trial, const char *metric,
                        double value, cl_error *e) {
  int rc = check_open(s, eval_id, "inserting result", e);
  if (rc) return rc;
  if (!metric || !*metric || trial < -1) {
    s->eval_failed = 1;
    return cl_err(e, CL_EINVAL, "%s: inserting result for eval %lld: %s", s->path,
                  (long long)eval_id, trial < -1 ? "trial < -1" : "no metric name");
  }
  sqlite3_stmt *st = stmt(s, CL_ST_RESULT_INSERT, "inserting results", e);
  if (!st) return s->eval_failed = 1, CL_EDB;
  sqlite3_bind_int64(st, 1, eval_id);
  bind_trial(st, 2, trial);
  bind_text(st, 3, metric);
  sqlite3_bind_double(st, 4, value); /* SQLite stores NaN as NULL */
  char tr[16] = "all";
  if (trial >= 0) snprintf(tr, sizeof tr, "%d", trial);
  ADD_DONE(s, st, e, "inserting result %.64s (trial %s) for eval %lld", metric, tr,
           (long long)eval_id);
}

static int add_prediction(cl_store *s, int64_t eval_id, int trial, int example, const char *filepath,
                          const char *label, const char *prediction, const char *retrieved, int hit,
                          cl_error *e) {
  int rc = check_open(s, eval_id, "inserting prediction", e);
  if (rc) return rc;
  if (!filepath || !label || !prediction || trial < -1 || example < 0 || hit < 0) {
    s->eval_failed = 1;
    return cl_err(e, CL_EINVAL, "%s: inserting prediction %d (trial %d) for eval %lld: %s",
                  s->path, example, trial, (long long)eval_id,
                  trial < -1 || example < 0 || hit < 0 ? "negative index" : "missing filepath or label");
  }
  sqlite3_stmt *st = stmt(s, CL_ST_PRED_INSERT, "inserting predictions", e);
  if (!st) return s->eval_failed = 1, CL_EDB;
  sqlite3_bind_int64(st, 1, eval_id);
  bind_trial(st, 2, trial);
  sqlite3_bind_int(st, 3, example);
  bind_text(st, 4, filepath);
  bind_text(st, 5, label);
  bind_text(st, 6, prediction);
  sqlite3_bind_int(st, 7, strcmp(label, prediction) == 0);
  bind_text(st, 8, retrieved);
  if (hit > 0) sqlite3_bind_int(st, 9, hit);
  else sqlite3_bind_null(st, 9);
  ADD_DONE(s, st, e, "inserting prediction %d (trial %d) for eval %lld", example, trial,
           (long long)eval_id);
}

int cl_store_add_prediction(cl_store *s, int64_t eval_id, int trial, int example,
                            const char *filepath, const char *label, const char *prediction,
                            cl_error *e) {
  return add_prediction(s, eval_id, trial, example, filepath, label, prediction, NULL, 0, e);
}

int cl_store_add_prediction_hit(cl_store *s, int64_t eval_id, int trial, int example, const char *filepath,
                                const char *label, const char *prediction, int hit, cl_error *e) {
  return add_prediction(s, eval_id, trial, example, filepath, label, prediction, NULL, hit, e);
}

int cl_store_add_retrieval(cl_store *s, int64_t eval_id, int trial, int example, const char *filepath,
                           const char *label, const char *prediction, const char *retrieved_json, int hit,
                           cl_error *e) {
  if (!retrieved_json) {
    s->eval_failed = 1;
    return cl_err(e, CL_EINVAL, "%s: inserting retrieval %d for eval %lld: no retrieved keys", s->path,
                  example, (long long)eval_id);
  }
  return add_prediction(s, eval_id, trial, example, filepath, label, prediction, retrieved_json, hit, e);
}

int cl_store_metric_is_fraction(const char *m) {
  if (strncmp(m, "micro_", 6) == 0 || strncmp(m, "macro_", 6) == 0) m += 6;
  return (strncmp(m, "top", 3) == 0 && m[3] >= '0' && m[3] <= '9') || strncmp(m, "acc", 3) == 0;
}

char *cl_store_axes_text(const char *query, const char *key, const char *split, const char *rank) {
  const char *q = query ? query : "", *k = key ? key : "", *sp = split ? split : "", *r = rank ? rank : "";
  if (!*q && !*k && !*sp && !*r) return cl_strdup("");
  return cl_asprintf("%s->%s%s%s%s%s", q, k, *sp ? " " : "", sp, *r ? " " : "", r);
}

int cl_store_add_support(cl_store *s, int64_t eval_id, int trial, const char *cls,
                         const char *filepath, cl_error *e) {
  int rc = check_open(s, eval_id, "inserting support", e);
  if (rc) return rc;
  if (!cls || !filepath || trial < 0) {
    s->eval_failed = 1;
    return cl_err(e, CL_EINVAL, "%s: inserting support (trial %d) for eval %lld: %s", s->path,
                  trial, (long long)eval_id, trial < 0 ? "trial < 0" : "missing class or filepath");
  }
  sqlite3_stmt *st = stmt(s, CL_ST_SUPPORT_INSERT, "inserting supports", e);
  if (!st) return s->eval_failed = 1, CL_EDB;
  sqlite3_bind_int64(st, 1, eval_id);
  sqlite3_bind_int(st, 2, trial);
  bind_text(st, 3, cls);
  bind_text(st, 4, filepath);
  ADD_DONE(s, st, e, "inserting support (trial %d) for eval %lld", trial, (long long)eval_id);
}

int cl_store_eval_commit(cl_store *s, int64_t eval_id, cl_error *e) {
  int rc = check_open(s, eval_id, "committing", e);
  if (rc) return rc;
  if (s->eval_failed) {
    cl_store_eval_abort(s);
    return cl_err(e, CL_EDB, "%s: eval %lld rolled back, not committed: an insert into it failed",
                  s->path, (long long)eval_id);
  }
  char what[64];
  snprintf(what, sizeof what, "committing eval %lld", (long long)eval_id);
  if ((rc = exec_st(s, CL_ST_COMMIT, what, e))) {
    cl_store_eval_abort(s);
    return rc;
  }
  s->eval_open = 0;
  return CL_OK;
}

void cl_store_eval_abort(cl_store *s) {
  if (!s || !s->eval_open) return;
  /* A failed COMMIT may already have ended the transaction; ROLLBACK then fails harmlessly. */
  if (!sqlite3_get_autocommit(s->db)) exec_st(s, CL_ST_ROLLBACK, "rolling back", NULL);
  s->eval_open = 0;
  s->eval_failed = 0;
}
