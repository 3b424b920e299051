/* cl_store_merge: shard runs (`clade run --shard I/N`) and folding them into one merged run
 * (`clade merge`). Column lists are read from the schema, never written out here, so the
 * columns and evaluation tables later migrations add are merged too. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cl_store_priv.h"

#define NOW_ISO "strftime('%Y-%m-%dT%H:%M:%fZ','now')"

static int prep(cl_store *s, const char *sql, sqlite3_stmt **st, cl_error *e) {
  if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK) {
    *st = NULL;
    return cl_store_dberr(s, e, "preparing %.60s", sql);
  }
  return CL_OK;
}

static const char *col_text(sqlite3_stmt *st, int i) { return (const char *)sqlite3_column_text(st, i); }

static void bind_opt_text(sqlite3_stmt *st, int i, const char *v) {
  if (v) sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
  else sqlite3_bind_null(st, i);
}

/* ---- recording a shard ---- */

int cl_store_run_set_plan(cl_store *s, int64_t run_id, const char *plan, const char *plan_hash, int64_t plan_jobs,
                          cl_error *e) {
  sqlite3_stmt *st;
  int rc = prep(s, "SELECT plan_hash, shard_index, shard_count FROM runs WHERE id = ?1", &st, e);
  if (rc) return rc;
  sqlite3_bind_int64(st, 1, run_id);
  if (sqlite3_step(st) != SQLITE_ROW) {
    sqlite3_finalize(st);
    return cl_err(e, CL_EINVAL, "%s: recording the plan of run %lld: no such run", s->path, (long long)run_id);
  }
  const char *old = col_text(st, 0);
  if (old && strcmp(old, plan_hash) != 0) {
    rc = cl_err(e, CL_EINVAL,
                "%s: run %lld is shard %d/%d of plan %.12s, but the file now plans %.12s (its models, datasets "
                "or manifests changed): finish it as it was, or run the new plan into another --db",
                s->path, (long long)run_id, sqlite3_column_int(st, 1), sqlite3_column_int(st, 2), old, plan_hash);
    sqlite3_finalize(st);
    return rc;
  }
  sqlite3_finalize(st);
  if ((rc = prep(s, "UPDATE runs SET plan_hash = ?2, plan_jobs = ?3, plan = ?4 WHERE id = ?1", &st, e))) return rc;
  sqlite3_bind_int64(st, 1, run_id);
  sqlite3_bind_text(st, 2, plan_hash, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 3, plan_jobs);
  sqlite3_bind_text(st, 4, plan, -1, SQLITE_TRANSIENT);
  if (sqlite3_step(st) != SQLITE_DONE) rc = cl_store_dberr(s, e, "recording the plan of run %lld", (long long)run_id);
  sqlite3_finalize(st);
  return rc;
}

int cl_store_eval_set_job(cl_store *s, int64_t eval_id, const char *job, cl_error *e) {
  if (!s->eval_open || s->eval_id != eval_id)
    return cl_err(e, CL_EINVAL, "%s: setting the job of eval %lld: it is not the open evaluation", s->path,
                  (long long)eval_id);
  sqlite3_stmt *st;
  int rc = prep(s, "UPDATE evaluations SET job = ?2 WHERE id = ?1", &st, e);
  if (rc) return s->eval_failed = 1, rc;
  sqlite3_bind_int64(st, 1, eval_id);
  sqlite3_bind_text(st, 2, job, -1, SQLITE_TRANSIENT);
  if (sqlite3_step(st) != SQLITE_DONE) {
    rc = cl_store_dberr(s, e, "setting the job of eval %lld", (long long)eval_id);
    s->eval_failed = 1;
  }
  sqlite3_finalize(st);
  return rc;
}

int cl_store_run_set_slurm(cl_store *s, int64_t run_id, const char *slurm_job, cl_error *e) {
  sqlite3_stmt *st;
  int rc = prep(s, "UPDATE runs SET slurm_job = ?2 WHERE id = ?1", &st, e);
  if (rc) return rc;
  sqlite3_bind_int64(st, 1, run_id);
  bind_opt_text(st, 2, slurm_job);
  if (sqlite3_step(st) != SQLITE_DONE) rc = cl_store_dberr(s, e, "recording the Slurm job of run %lld", (long long)run_id);
  sqlite3_finalize(st);
  return rc;
}

int cl_store_shard_state(cl_store *s, cl_shard_state *out, cl_error *e) {
  memset(out, 0, sizeof *out);
  sqlite3_stmt *st;
  int rc = prep(s, "SELECT id, shard_index, shard_count, status, plan_jobs, plan_hash, slurm_job,"
                   " (SELECT count(*) FROM jobs j WHERE j.run_id = runs.id AND j.status = 'done')"
                   " FROM runs WHERE shard_index IS NOT NULL ORDER BY id DESC LIMIT 1", &st, e);
  if (rc) return rc;
  if (sqlite3_step(st) == SQLITE_ROW) {
    out->run_id = sqlite3_column_int64(st, 0);
    out->index = sqlite3_column_int(st, 1);
    out->count = sqlite3_column_int(st, 2);
    snprintf(out->status, sizeof out->status, "%s", col_text(st, 3) ? col_text(st, 3) : "");
    out->plan_jobs = sqlite3_column_type(st, 4) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 4);
    snprintf(out->plan_hash, sizeof out->plan_hash, "%s", col_text(st, 5) ? col_text(st, 5) : "");
    snprintf(out->slurm_job, sizeof out->slurm_job, "%s", col_text(st, 6) ? col_text(st, 6) : "");
    out->jobs_done = sqlite3_column_int64(st, 7);
  }
  sqlite3_finalize(st);
  return CL_OK;
}

void cl_merge_report_free(cl_merge_report *r) {
  if (!r) return;
  free(r->incomplete);
  free(r->rerun);
  free(r->file);
  r->incomplete = r->rerun = r->file = NULL;
}

/* ---- columns from the schema ---- */

typedef struct {
  int n;
  char **v;
} names;

static void names_free(names *c) {
  for (int i = 0; i < c->n; i++) free(c->v[i]);
  free(c->v);
  c->n = 0;
  c->v = NULL;
}

static void names_add(names *c, const char *s) {
  c->v = realloc(c->v, (size_t)(c->n + 1) * sizeof *c->v);
  if (!c->v) abort();
  c->v[c->n++] = cl_strdup(s);
}

static int names_has(const names *c, const char *s) {
  for (int i = 0; i < c->n; i++)
    if (strcmp(c->v[i], s) == 0) return 1;
  return 0;
}

static int table_columns(cl_store *s, const char *table, names *out, cl_error *e) {
  char *sql = sqlite3_mprintf("PRAGMA table_info(\"%w\")", table);
  sqlite3_stmt *st;
  int rc = prep(s, sql, &st, e);
  sqlite3_free(sql);
  if (rc) return rc;
  while (sqlite3_step(st) == SQLITE_ROW) names_add(out, col_text(st, 1));
  sqlite3_finalize(st);
  return CL_OK;
}

/* The columns of table in both databases (in the target's order), less those in skip. */
static int common_columns(cl_store *dst, cl_store *src, const char *table, const char *const *skip, names *out,
                          cl_error *e) {
  names a = {0}, b = {0};
  int rc = table_columns(dst, table, &a, e);
  if (rc == CL_OK) rc = table_columns(src, table, &b, e);
  for (int i = 0; rc == CL_OK && i < a.n; i++) {
    int skipped = 0;
    for (const char *const *k = skip; k && *k; k++) skipped |= strcmp(*k, a.v[i]) == 0;
    if (!skipped && names_has(&b, a.v[i])) names_add(out, a.v[i]);
  }
  names_free(&a);
  names_free(&b);
  return rc;
}

/* pre "c1", "c2", ... (quoted; pre only when there is a column). */
static void append_cols(sqlite3_str *q, const names *c, const char *pre) {
  for (int i = 0; i < c->n; i++) sqlite3_str_appendf(q, "%s\"%w\"", i ? ", " : pre, c->v[i]);
}

/* The text (sqlite3_free it); an empty one is "", not NULL. */
static char *finish(sqlite3_str *q) {
  if (sqlite3_str_errcode(q) == SQLITE_NOMEM) abort();
  char *s = sqlite3_str_finish(q);
  if (!s && !(s = sqlite3_mprintf("%s", ""))) abort();
  return s;
}

/* Binds the current row's columns of src into dst, from parameter `first` on. */
static void bind_row(sqlite3_stmt *dst, int first, sqlite3_stmt *src, int ncols) {
  for (int i = 0; i < ncols; i++) sqlite3_bind_value(dst, first + i, sqlite3_column_value(src, i));
}

static int same_value(sqlite3_stmt *a, sqlite3_stmt *b, int i) {
  int t = sqlite3_column_type(a, i);
  if (t != sqlite3_column_type(b, i)) return 0;
  switch (t) {
  case SQLITE_NULL: return 1;
  case SQLITE_INTEGER: return sqlite3_column_int64(a, i) == sqlite3_column_int64(b, i);
  case SQLITE_FLOAT: return sqlite3_column_double(a, i) == sqlite3_column_double(b, i);
  default: {
    const void *pa = sqlite3_column_blob(a, i), *pb = sqlite3_column_blob(b, i);
    int na = sqlite3_column_bytes(a, i), nb = sqlite3_column_bytes(b, i);
    return na == nb && (na == 0 || memcmp(pa, pb, (size_t)na) == 0);
  }
  }
}

/* ---- the merge ---- */

/* One shard run found in a source database. */
typedef struct {
  cl_store *db;
  const char *path;
  int64_t run_id;
  int index;
  char status[16];
  char *plan_hash, *file_hash, *backend, *precision, *decode, *file;
  int count;
} shard_run;

typedef struct {
  cl_store *t;        /* target */
  int64_t merged;     /* the merged run id */
  names children;     /* tables referencing evaluations */
  names child_fk;     /* their column that does */
  cl_merge_report *r;
} merger;

static int find_children(merger *m, cl_error *e) {
  sqlite3_stmt *st;
  int rc = prep(m->t, "SELECT m.name, f.\"from\" FROM sqlite_schema m, pragma_foreign_key_list(m.name) f"
                      " WHERE m.type = 'table' AND f.\"table\" = 'evaluations' ORDER BY m.name", &st, e);
  if (rc) return rc;
  while (sqlite3_step(st) == SQLITE_ROW) {
    names_add(&m->children, col_text(st, 0));
    names_add(&m->child_fk, col_text(st, 1));
  }
  sqlite3_finalize(st);
  return CL_OK;
}

/* "experiment 'e', model 'm', dataset 'd', zero_shot, text type 't', 0 shots" of the evaluation
 * row at the current position of st (columns named as in the schema). */
static char *cell_name(sqlite3_stmt *st, const names *cols) {
  const char *f[6] = {"experiment", "model", "dataset", "protocol", "text_type", "shots"};
  const char *v[6] = {"?", "?", "?", "?", "", "0"};
  for (int k = 0; k < 6; k++)
    for (int i = 0; i < cols->n; i++)
      if (strcmp(cols->v[i], f[k]) == 0 && col_text(st, i)) v[k] = col_text(st, i);
  return cl_asprintf("experiment '%s', model '%s', dataset '%s', protocol %s%s%s%s, %s shots", v[0], v[1], v[2], v[3],
                     *v[4] ? ", text type '" : "", v[4], *v[4] ? "'" : "", v[5]);
}

/* Are the rows of table (fk = eval) the same multiset in both? */
static int same_children(merger *m, cl_store *src, const char *table, const char *fk, int64_t src_eval,
                         int64_t dst_eval, int *same, cl_error *e) {
  const char *skip[2] = {fk, NULL};
  names c = {0};
  int rc = common_columns(m->t, src, table, skip, &c, e);
  if (rc) return rc;
  *same = 1;
  if (c.n == 0) {
    names_free(&c);
    return CL_OK;
  }
  sqlite3_str *q = sqlite3_str_new(NULL);
  sqlite3_str_appendf(q, "SELECT ");
  append_cols(q, &c, "");
  sqlite3_str_appendf(q, " FROM \"%w\" WHERE \"%w\" = ?1 ORDER BY ", table, fk);
  append_cols(q, &c, "");
  char *sql = finish(q);
  sqlite3_stmt *a = NULL, *b = NULL;
  if ((rc = prep(m->t, sql, &a, e)) == CL_OK && (rc = prep(src, sql, &b, e)) == CL_OK) {
    sqlite3_bind_int64(a, 1, dst_eval);
    sqlite3_bind_int64(b, 1, src_eval);
    for (;;) {
      int ra = sqlite3_step(a), rb = sqlite3_step(b);
      if (ra != rb) {
        *same = 0;
        break;
      }
      if (ra != SQLITE_ROW) break;
      for (int i = 0; i < c.n && *same; i++) *same = same_value(a, b, i);
      if (!*same) break;
    }
  }
  sqlite3_finalize(a);
  sqlite3_finalize(b);
  sqlite3_free(sql);
  names_free(&c);
  return rc;
}

/* The rows of table in src whose column `where` is key, copied into the target with every
 * column both have but `where` and `set`, and `set` (when given) = val. With last_id, one row
 * must be there and *last_id is its id in the target. */
static int copy_rows(merger *m, cl_store *src, const char *table, const char *where, int64_t key, const char *set,
                     int64_t val, int64_t *last_id, cl_error *e) {
  const char *const skip[] = {where, set, NULL};
  names c = {0};
  int rc = common_columns(m->t, src, table, skip, &c, e);
  if (rc) return rc;
  sqlite3_str *q = sqlite3_str_new(NULL);
  sqlite3_str_appendf(q, "SELECT ");
  append_cols(q, &c, "");
  if (c.n == 0) sqlite3_str_appendf(q, "1");
  sqlite3_str_appendf(q, " FROM \"%w\" WHERE \"%w\" = ?1 ORDER BY rowid", table, where);
  char *sel = finish(q);
  const int first = set ? 2 : 1; /* where the copied columns' parameters begin */
  q = sqlite3_str_new(NULL);
  sqlite3_str_appendf(q, "INSERT INTO \"%w\"(", table);
  if (set) sqlite3_str_appendf(q, "\"%w\"", set);
  append_cols(q, &c, set ? ", " : "");
  sqlite3_str_appendf(q, ") VALUES (");
  for (int i = 1; i < first + c.n; i++) sqlite3_str_appendf(q, "%s?%d", i > 1 ? ", " : "", i);
  sqlite3_str_appendf(q, ")");
  char *ins = finish(q);
  sqlite3_stmt *a = NULL, *b = NULL;
  if ((rc = prep(src, sel, &a, e)) == CL_OK && (rc = prep(m->t, ins, &b, e)) == CL_OK) {
    sqlite3_bind_int64(a, 1, key);
    int step, n = 0;
    while (rc == CL_OK && (step = sqlite3_step(a)) == SQLITE_ROW) {
      if (set) sqlite3_bind_int64(b, 1, val);
      bind_row(b, first, a, c.n);
      if (sqlite3_step(b) != SQLITE_DONE)
        rc = cl_store_dberr(m->t, e, "merging %s (%s %lld) from %s", table, where, (long long)key, src->path);
      else if (last_id) *last_id = (int64_t)sqlite3_last_insert_rowid(m->t->db);
      sqlite3_reset(b);
      n++;
    }
    if (rc == CL_OK && (step != SQLITE_DONE || (last_id && n == 0)))
      rc = cl_store_dberr(src, e, "reading %s (%s %lld)", table, where, (long long)key);
  }
  sqlite3_finalize(a);
  sqlite3_finalize(b);
  sqlite3_free(sel);
  sqlite3_free(ins);
  names_free(&c);
  return rc;
}

/* Columns of an evaluation that are its outcome, compared when the same cell is merged twice;
 * created_at is neither outcome nor identity; every other column names the cell. */
static int is_outcome(const char *col) { return !strcmp(col, "model_hash") || !strcmp(col, "n_examples"); }
static int is_identity(const char *col) {
  /* config_hash: the plan's hash covers the file that configures the model; rows merged
   * before schema 11 have none */
  return !is_outcome(col) && strcmp(col, "created_at") != 0 && strcmp(col, "config_hash") != 0;
}

/* The statements that merge one shard run's evaluations. */
typedef struct {
  names c; /* evaluations columns in both (not id, run_id) */
  sqlite3_stmt *sel, *find, *ins;
} eval_stmts;

static void eval_stmts_free(eval_stmts *x) {
  sqlite3_finalize(x->sel);
  sqlite3_finalize(x->find);
  sqlite3_finalize(x->ins);
  names_free(&x->c);
  memset(x, 0, sizeof *x);
}

static int eval_stmts_prepare(merger *m, const shard_run *sr, eval_stmts *x, cl_error *e) {
  static const char *const skip[] = {"id", "run_id", NULL};
  int rc = common_columns(m->t, sr->db, "evaluations", skip, &x->c, e);
  if (rc) return rc;
  const names *c = &x->c;
  /* select from the shard; find in the merged run by the cell columns; insert */
  sqlite3_str *q = sqlite3_str_new(NULL);
  sqlite3_str_appendf(q, "SELECT ");
  append_cols(q, c, "");
  sqlite3_str_appendf(q, " FROM evaluations WHERE id = ?1");
  char *sel = finish(q);
  q = sqlite3_str_new(NULL);
  sqlite3_str_appendf(q, "SELECT id");
  for (int i = 0; i < c->n; i++)
    if (is_outcome(c->v[i])) sqlite3_str_appendf(q, ", \"%w\" IS ?%d", c->v[i], i + 2);
  sqlite3_str_appendf(q, " FROM evaluations WHERE run_id = ?1");
  for (int i = 0; i < c->n; i++)
    if (is_identity(c->v[i])) sqlite3_str_appendf(q, " AND \"%w\" IS ?%d", c->v[i], i + 2);
  char *find = finish(q);
  q = sqlite3_str_new(NULL);
  sqlite3_str_appendf(q, "INSERT INTO evaluations(run_id");
  append_cols(q, c, ", ");
  sqlite3_str_appendf(q, ") VALUES (?1");
  for (int i = 0; i < c->n; i++) sqlite3_str_appendf(q, ", ?%d", i + 2);
  sqlite3_str_appendf(q, ")");
  char *ins = finish(q);
  if ((rc = prep(sr->db, sel, &x->sel, e)) == CL_OK && (rc = prep(m->t, find, &x->find, e)) == CL_OK)
    rc = prep(m->t, ins, &x->ins, e);
  sqlite3_free(sel);
  sqlite3_free(find);
  sqlite3_free(ins);
  return rc;
}

/* One evaluation of a shard run into the merged run: skipped when already there with the
 * same rows, an error naming it when there with other rows, else copied with its rows. */
static int merge_evaluation(merger *m, const shard_run *sr, eval_stmts *x, int64_t src_eval, cl_error *e) {
  const names *c = &x->c;
  sqlite3_bind_int64(x->sel, 1, src_eval);
  if (sqlite3_step(x->sel) != SQLITE_ROW) {
    sqlite3_reset(x->sel);
    return cl_store_dberr(sr->db, e, "reading evaluation %lld", (long long)src_eval);
  }
  int rc = CL_OK;
  sqlite3_bind_int64(x->find, 1, m->merged);
  bind_row(x->find, 2, x->sel, c->n);
  int64_t dst_eval = 0;
  int same = 1;
  if (sqlite3_step(x->find) == SQLITE_ROW) {
    dst_eval = sqlite3_column_int64(x->find, 0);
    for (int i = 1; i < sqlite3_column_count(x->find); i++) same &= sqlite3_column_int(x->find, i);
  }
  sqlite3_reset(x->find);
  if (dst_eval) {
    for (int k = 0; rc == CL_OK && same && k < m->children.n; k++)
      rc = same_children(m, sr->db, m->children.v[k], m->child_fk.v[k], src_eval, dst_eval, &same, e);
    if (rc == CL_OK && !same) {
      char *cell = cell_name(x->sel, c);
      rc = cl_err(e, CL_EINVAL,
                  "%s: run %lld (shard %d) records %s with other values than merged run %lld of %s already "
                  "holds (from another shard or an earlier merge): the job was computed twice differently; "
                  "nothing was merged",
                  sr->path, (long long)sr->run_id, sr->index, cell, (long long)m->merged, m->t->path);
      free(cell);
    }
    if (rc == CL_OK) m->r->evaluations_same++;
    sqlite3_reset(x->sel);
    return rc;
  }
  sqlite3_bind_int64(x->ins, 1, m->merged);
  bind_row(x->ins, 2, x->sel, c->n);
  if (sqlite3_step(x->ins) != SQLITE_DONE) {
    char *cell = cell_name(x->sel, c);
    rc = cl_store_dberr(m->t, e, "merging %s from %s (shard %d)", cell, sr->path, sr->index);
    free(cell);
  }
  sqlite3_reset(x->ins);
  sqlite3_reset(x->sel);
  dst_eval = (int64_t)sqlite3_last_insert_rowid(m->t->db);
  for (int k = 0; rc == CL_OK && k < m->children.n; k++)
    rc = copy_rows(m, sr->db, m->children.v[k], m->child_fk.v[k], src_eval, m->child_fk.v[k], dst_eval, NULL, e);
  if (rc == CL_OK) m->r->evaluations_added++;
  return rc;
}

/* An evaluation to merge, placed by its job's line in the plan (run order). */
typedef struct {
  int64_t pos, src_eval;
  int run;
} eval_ref;

static int cmp_ref(const void *a, const void *b) {
  const eval_ref *x = a, *y = b;
  if (x->pos != y->pos) return x->pos < y->pos ? -1 : 1;
  if (x->run != y->run) return x->run < y->run ? -1 : 1;
  return (x->src_eval > y->src_eval) - (x->src_eval < y->src_eval);
}

typedef struct {
  const char *key;
  size_t len;
  int64_t line;
} plan_key;

static int cmp_key(const void *a, const void *b) {
  const plan_key *x = a, *y = b;
  size_t n = x->len < y->len ? x->len : y->len;
  int c = memcmp(x->key, y->key, n);
  return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* The plan's job keys ("key<TAB>cost" lines) sorted for lookup; they point into plan. */
static plan_key *plan_keys(const char *plan, size_t *n) {
  size_t cap = 16;
  *n = 0;
  plan_key *k = cl_xmalloc(cap * sizeof *k);
  for (const char *p = plan; p && *p;) {
    const char *nl = strchr(p, '\n'), *end = nl ? nl : p + strlen(p);
    const char *tab = memchr(p, '\t', (size_t)(end - p));
    if (*n == cap && !(k = realloc(k, (cap *= 2) * sizeof *k))) abort();
    k[*n] = (plan_key){p, (size_t)((tab ? tab : end) - p), (int64_t)*n};
    (*n)++;
    p = nl ? nl + 1 : end;
  }
  qsort(k, *n, sizeof *k, cmp_key);
  return k;
}

/* Every planned shard run's evaluations, in the plan's run order (then shard, then id), so
 * that shards merged together read like one run. */
static int merge_all_evaluations(merger *m, shard_run *runs, int nruns, const char *plan, cl_error *e) {
  size_t nkeys;
  plan_key *keys = plan_keys(plan, &nkeys);
  eval_ref *refs = NULL;
  size_t nrefs = 0, cap = 0;
  int rc = CL_OK;
  for (int r = 0; rc == CL_OK && r < nruns; r++) {
    if (!runs[r].plan_hash) continue; /* killed before planning: nothing stored */
    sqlite3_stmt *st;
    if ((rc = prep(runs[r].db, "SELECT id, job FROM evaluations WHERE run_id = ?1 ORDER BY id", &st, e))) break;
    sqlite3_bind_int64(st, 1, runs[r].run_id);
    while (sqlite3_step(st) == SQLITE_ROW) {
      if (nrefs == cap && !(refs = realloc(refs, (cap = cap ? 2 * cap : 256) * sizeof *refs))) abort();
      plan_key want = {col_text(st, 1), col_text(st, 1) ? (size_t)sqlite3_column_bytes(st, 1) : 0, 0};
      const plan_key *hit = want.key ? bsearch(&want, keys, nkeys, sizeof *keys, cmp_key) : NULL;
      refs[nrefs++] = (eval_ref){hit ? hit->line : INT64_MAX, sqlite3_column_int64(st, 0), r};
    }
    sqlite3_finalize(st);
  }
  if (refs) qsort(refs, nrefs, sizeof *refs, cmp_ref);
  eval_stmts *x = cl_xcalloc((size_t)(nruns > 0 ? nruns : 1), sizeof *x);
  for (size_t i = 0; rc == CL_OK && i < nrefs; i++) {
    int r = refs[i].run;
    if (!x[r].sel) rc = eval_stmts_prepare(m, &runs[r], &x[r], e);
    if (rc == CL_OK) rc = merge_evaluation(m, &runs[r], &x[r], refs[i].src_eval, e);
  }
  for (int r = 0; r < nruns; r++) eval_stmts_free(&x[r]);
  free(x);
  free(refs);
  free(keys);
  return rc;
}

/* The training jobs of a shard run (train_jobs, train_steps) into the merged run, one record
 * per trained model: a model is cached by content under trained/<content key>, so shards that
 * trained it each (or took it from a shared cache and recorded it from the folder) hold the
 * same key and weights (model_hash, which links the evaluations). A complete record already
 * merged with the same key and weights is kept; a complete one replaces an unfinished one of
 * its key; an unfinished one is kept only while no record of its key got further. */
static int merge_trainings(merger *m, const shard_run *sr, cl_error *e) {
  sqlite3_stmt *a = NULL, *have = NULL, *drop = NULL;
  int rc = prep(sr->db, "SELECT id, content_key, status = 'complete', model_hash, steps_done FROM train_jobs"
                        " WHERE run_id = ?1 ORDER BY id", &a, e);
  if (rc == CL_OK)
    rc = prep(m->t, "SELECT count(*) FROM train_jobs WHERE run_id = ?1 AND content_key = ?2 AND (CASE WHEN ?3"
                    " THEN status = 'complete' AND model_hash IS ?4"
                    " ELSE status = 'complete' OR steps_done >= ?5 END)", &have, e);
  if (rc == CL_OK)
    rc = prep(m->t, "DELETE FROM train_jobs WHERE run_id = ?1 AND content_key = ?2 AND status != 'complete'", &drop, e);
  if (rc == CL_OK) sqlite3_bind_int64(a, 1, sr->run_id);
  int step = SQLITE_DONE;
  while (rc == CL_OK && (step = sqlite3_step(a)) == SQLITE_ROW) {
    int64_t src_id = sqlite3_column_int64(a, 0), dst_id = 0;
    sqlite3_bind_int64(have, 1, m->merged);
    for (int i = 2; i <= 5; i++) sqlite3_bind_value(have, i, sqlite3_column_value(a, i - 1));
    int64_t found = sqlite3_step(have) == SQLITE_ROW ? sqlite3_column_int64(have, 0) : -1;
    sqlite3_reset(have);
    if (found < 0) {
      rc = cl_store_dberr(m->t, e, "looking up the merged training jobs");
      break;
    }
    if (found) {
      m->r->trainings_same++;
      continue;
    }
    /* what it supersedes: unfinished records of its key (their steps go with them) */
    sqlite3_bind_int64(drop, 1, m->merged);
    sqlite3_bind_value(drop, 2, sqlite3_column_value(a, 1));
    if (sqlite3_step(drop) != SQLITE_DONE) rc = cl_store_dberr(m->t, e, "replacing an unfinished training job");
    sqlite3_reset(drop);
    if (rc == CL_OK) rc = copy_rows(m, sr->db, "train_jobs", "id", src_id, "run_id", m->merged, &dst_id, e);
    if (rc == CL_OK) rc = copy_rows(m, sr->db, "train_steps", "train_id", src_id, "train_id", dst_id, NULL, e);
    if (rc == CL_OK) m->r->trainings_added++;
  }
  if (rc == CL_OK && step != SQLITE_DONE) rc = cl_store_dberr(sr->db, e, "reading the training jobs of run %lld", (long long)sr->run_id);
  sqlite3_finalize(a);
  sqlite3_finalize(have);
  sqlite3_finalize(drop);
  return rc;
}

/* The shard's done jobs, and a run_shards row saying how far it had got. */
static int merge_jobs_and_record(merger *m, const shard_run *sr, cl_error *e) {
  sqlite3_stmt *a = NULL, *b = NULL;
  int rc = prep(sr->db, "SELECT job FROM jobs WHERE run_id = ?1 AND status = 'done' ORDER BY job", &a, e);
  if (rc == CL_OK) rc = prep(m->t, "INSERT OR REPLACE INTO jobs(run_id, job, status) VALUES (?1, ?2, 'done')", &b, e);
  if (rc == CL_OK) {
    sqlite3_bind_int64(a, 1, sr->run_id);
    int64_t done = 0;
    while (rc == CL_OK && sqlite3_step(a) == SQLITE_ROW) {
      sqlite3_bind_int64(b, 1, m->merged);
      sqlite3_bind_value(b, 2, sqlite3_column_value(a, 0));
      if (sqlite3_step(b) != SQLITE_DONE) rc = cl_store_dberr(m->t, e, "merging the jobs of %s", sr->path);
      sqlite3_reset(b);
      done++;
    }
    sqlite3_finalize(a);
    sqlite3_finalize(b);
    a = b = NULL;
    if (rc == CL_OK)
      rc = prep(sr->db, "SELECT plan_jobs, host, slurm_job, wall_seconds, images_encoded, texts_encoded,"
                        " images_cached, texts_cached FROM runs WHERE id = ?1", &a, e);
    if (rc == CL_OK)
      rc = prep(m->t, "INSERT OR REPLACE INTO run_shards(run_id, shard_index, source, source_run, status, jobs_done,"
                      " plan_jobs, host, slurm_job, wall_seconds, images_encoded, texts_encoded, images_cached,"
                      " texts_cached, merged_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,"
                      " ?14, " NOW_ISO ")", &b, e);
    if (rc == CL_OK) {
      sqlite3_bind_int64(a, 1, sr->run_id);
      if (sqlite3_step(a) != SQLITE_ROW) rc = cl_store_dberr(sr->db, e, "reading run %lld", (long long)sr->run_id);
    }
    if (rc == CL_OK) {
      sqlite3_bind_int64(b, 1, m->merged);
      sqlite3_bind_int(b, 2, sr->index);
      /* the file, however it was named: merging it again by another path replaces its row */
      char real[PATH_MAX];
      sqlite3_bind_text(b, 3, realpath(sr->path, real) ? real : sr->path, -1, SQLITE_TRANSIENT);
      sqlite3_bind_int64(b, 4, sr->run_id);
      sqlite3_bind_text(b, 5, sr->status, -1, SQLITE_TRANSIENT);
      sqlite3_bind_int64(b, 6, done);
      bind_row(b, 7, a, 8);
      if (sqlite3_step(b) != SQLITE_DONE) rc = cl_store_dberr(m->t, e, "recording shard %d of %s", sr->index, sr->path);
    }
  }
  sqlite3_finalize(a);
  sqlite3_finalize(b);
  return rc;
}

/* The merged run of the plan in the target, made from the first shard run's record when new. */
static int merged_run(merger *m, const shard_run *sr, cl_error *e) {
  sqlite3_stmt *st;
  int rc = prep(m->t, "SELECT id FROM runs WHERE plan_hash = ?1 AND shard_count = ?2 AND shard_index IS NULL"
                      " AND file_hash IS ?3 AND backend IS ?4 AND precision IS ?5 AND decode IS ?6"
                      " ORDER BY id DESC LIMIT 1", &st, e);
  if (rc) return rc;
  sqlite3_bind_text(st, 1, sr->plan_hash, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int(st, 2, sr->count);
  bind_opt_text(st, 3, sr->file_hash);
  bind_opt_text(st, 4, sr->backend);
  bind_opt_text(st, 5, sr->precision);
  bind_opt_text(st, 6, sr->decode);
  m->merged = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_finalize(st);
  if (m->merged) return CL_OK;
  if ((rc = copy_rows(m, sr->db, "runs", "id", sr->run_id, NULL, 0, &m->merged, e))) return rc;
  /* a run of its own: not a shard, no process, not on a Slurm job */
  if ((rc = prep(m->t, "UPDATE runs SET shard_index = NULL, pid = NULL, slurm_job = NULL, plan_jobs = NULL,"
                       " status = 'running', ended_at = NULL, stats_json = NULL WHERE id = ?1", &st, e)))
    return rc;
  sqlite3_bind_int64(st, 1, m->merged);
  if (sqlite3_step(st) != SQLITE_DONE) rc = cl_store_dberr(m->t, e, "creating the merged run");
  sqlite3_finalize(st);
  return rc;
}

/* Per shard index 0..count-1 of merged run, the best of its merged shard runs (complete
 * first, then most jobs done): *incomplete "1 (interrupted, 1 of 2 jobs, shards/1.db), 2
 * (missing)" (NULL when every shard is complete) and *rerun "1,2", both malloc'd. */
static int describe_shards(cl_store *t, int64_t run, int count, char **incomplete, char **rerun, cl_error *e) {
  *incomplete = *rerun = NULL;
  sqlite3_stmt *st;
  int rc = prep(t, "SELECT status, jobs_done, plan_jobs, source FROM run_shards WHERE run_id = ?1 AND"
                   " shard_index = ?2 ORDER BY status = 'complete' DESC, jobs_done DESC, merged_at DESC LIMIT 1",
                &st, e);
  if (rc) return rc;
  sqlite3_str *inc = sqlite3_str_new(NULL), *re = sqlite3_str_new(NULL);
  int missing = 0;
  for (int i = 0; i < count; i++) {
    sqlite3_bind_int64(st, 1, run);
    sqlite3_bind_int(st, 2, i);
    if (sqlite3_step(st) != SQLITE_ROW) {
      sqlite3_str_appendf(inc, "%s%d (missing)", missing ? ", " : "", i);
      sqlite3_str_appendf(re, "%s%d", missing++ ? "," : "", i);
    } else if (strcmp(col_text(st, 0), "complete") != 0) {
      if (sqlite3_column_type(st, 2) == SQLITE_NULL)
        sqlite3_str_appendf(inc, "%s%d (%s before planning, %s)", missing ? ", " : "", i, col_text(st, 0),
                            col_text(st, 3));
      else
        sqlite3_str_appendf(inc, "%s%d (%s, %lld of %lld jobs, %s)", missing ? ", " : "", i, col_text(st, 0),
                            (long long)sqlite3_column_int64(st, 1), (long long)sqlite3_column_int64(st, 2),
                            col_text(st, 3));
      sqlite3_str_appendf(re, "%s%d", missing++ ? "," : "", i);
    }
    sqlite3_reset(st);
  }
  sqlite3_finalize(st);
  char *a = finish(inc), *b = finish(re);
  if (missing) *incomplete = cl_strdup(a);
  *rerun = cl_strdup(b);
  sqlite3_free(a);
  sqlite3_free(b);
  return CL_OK;
}

int cl_store_merged_shards(cl_store *s, int64_t run_id, char **incomplete, char **rerun, cl_error *e) {
  *incomplete = *rerun = NULL;
  sqlite3_stmt *st;
  int rc = prep(s, "SELECT shard_count FROM runs WHERE id = ?1 AND shard_index IS NULL AND shard_count > 0", &st, e);
  if (rc) return rc;
  sqlite3_bind_int64(st, 1, run_id);
  int count = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
  sqlite3_finalize(st);
  if (!count) return cl_err(e, CL_EINVAL, "%s: run %lld is not a merged run", s->path, (long long)run_id);
  return describe_shards(s, run_id, count, incomplete, rerun, e);
}

/* Status, counters and the report from the run_shards rows of the merged run. */
static int finish_merged(merger *m, cl_error *e) {
  cl_merge_report *r = m->r;
  sqlite3_stmt *st;
  int rc = prep(m->t, "UPDATE runs SET images_encoded = s.ie, texts_encoded = s.te, images_cached = s.ic,"
                      " texts_cached = s.tc, wall_seconds = s.w"
                      " FROM (SELECT sum(images_encoded) ie, sum(texts_encoded) te, sum(images_cached) ic,"
                      " sum(texts_cached) tc, max(wall_seconds) w FROM run_shards WHERE run_id = ?1) s"
                      " WHERE runs.id = ?1", &st, e);
  if (rc) return rc;
  sqlite3_bind_int64(st, 1, m->merged);
  if (sqlite3_step(st) != SQLITE_DONE) rc = cl_store_dberr(m->t, e, "summing the shards of run %lld", (long long)m->merged);
  sqlite3_finalize(st);
  if (rc) return rc;
  if ((rc = describe_shards(m->t, m->merged, r->shard_count, &r->incomplete, &r->rerun, e))) return rc;
  r->complete = r->incomplete == NULL;
  if ((rc = prep(m->t, "UPDATE runs SET status = ?2, ended_at = " NOW_ISO " WHERE id = ?1", &st, e))) return rc;
  sqlite3_bind_int64(st, 1, m->merged);
  sqlite3_bind_text(st, 2, r->complete ? "complete" : "incomplete", -1, SQLITE_STATIC);
  if (sqlite3_step(st) != SQLITE_DONE) rc = cl_store_dberr(m->t, e, "ending the merged run %lld", (long long)m->merged);
  sqlite3_finalize(st);
  return rc;
}

static void shard_run_free(shard_run *sr) {
  free(sr->plan_hash);
  free(sr->file_hash);
  free(sr->backend);
  free(sr->precision);
  free(sr->decode);
  free(sr->file);
}

static char *dup_col(sqlite3_stmt *st, int i) { return col_text(st, i) ? cl_strdup(col_text(st, i)) : NULL; }

static int same_str(const char *a, const char *b) { return (!a && !b) || (a && b && strcmp(a, b) == 0); }

/* The shard runs of one source database, checked against the plan of the first one seen. */
static int read_shard_runs(cl_store *db, const char *path, shard_run **runs, int *nruns, cl_error *e) {
  sqlite3_stmt *st;
  int rc = prep(db, "SELECT id, shard_index, shard_count, status, plan_hash, file_hash, backend, precision, decode,"
                    " file FROM runs WHERE shard_index IS NOT NULL ORDER BY id", &st, e);
  if (rc) return rc;
  int found = 0;
  while (rc == CL_OK && sqlite3_step(st) == SQLITE_ROW) {
    shard_run sr = {.db = db, .path = path, .run_id = sqlite3_column_int64(st, 0), .index = sqlite3_column_int(st, 1),
                    .count = sqlite3_column_int(st, 2), .plan_hash = dup_col(st, 4), .file_hash = dup_col(st, 5),
                    .backend = dup_col(st, 6), .precision = dup_col(st, 7), .decode = dup_col(st, 8),
                    .file = dup_col(st, 9)};
    snprintf(sr.status, sizeof sr.status, "%s", col_text(st, 3));
    found++;
    const shard_run *f = *nruns ? &(*runs)[0] : NULL;
    for (int i = 0; f && !f->plan_hash && i < *nruns; i++)
      if ((*runs)[i].plan_hash) f = &(*runs)[i];
    if (f && sr.plan_hash && f->plan_hash) {
      const char *what = sr.count != f->count ? "a different shard count"
                         : strcmp(sr.plan_hash, f->plan_hash) ? "a different plan"
                         : !same_str(sr.file_hash, f->file_hash) ? "a different experiment file content"
                         : !same_str(sr.backend, f->backend) || !same_str(sr.precision, f->precision) ||
                                   !same_str(sr.decode, f->decode)
                             ? "another backend, precision or decoding"
                             : NULL;
      if (what)
        rc = cl_err(e, CL_EINVAL,
                    "%s: run %lld is shard %d/%d of plan %.12s (%s, %s/%s) and %s: %s holds shard %d/%d of plan "
                    "%.12s (%s, %s/%s): refusing to merge them",
                    path, (long long)sr.run_id, sr.index, sr.count, sr.plan_hash, sr.file ? sr.file : "?",
                    sr.backend ? sr.backend : "-", sr.precision ? sr.precision : "-", what, f->path, f->index,
                    f->count, f->plan_hash, f->file ? f->file : "?", f->backend ? f->backend : "-",
                    f->precision ? f->precision : "-");
    } else if (f && sr.count != f->count) {
      rc = cl_err(e, CL_EINVAL, "%s: run %lld is shard %d/%d, but %s holds shard %d/%d: refusing to merge them", path,
                  (long long)sr.run_id, sr.index, sr.count, f->path, f->index, f->count);
    }
    if (rc == CL_OK && sr.index >= sr.count)
      rc = cl_err(e, CL_EINVAL, "%s: run %lld: shard %d/%d is out of range", path, (long long)sr.run_id, sr.index,
                  sr.count);
    if (rc) {
      shard_run_free(&sr);
      break;
    }
    *runs = realloc(*runs, (size_t)(*nruns + 1) * sizeof **runs);
    if (!*runs) abort();
    (*runs)[(*nruns)++] = sr;
  }
  sqlite3_finalize(st);
  if (rc == CL_OK && !found)
    rc = cl_err(e, CL_EINVAL, "%s: no shard run in this database (shards are made by `clade run FILE --shard I/N`)",
                path);
  return rc;
}

int cl_store_merge(cl_store *t, const char *const *paths, int n, cl_merge_report *r, cl_error *e) {
  memset(r, 0, sizeof *r);
  merger m = {.t = t, .r = r};
  cl_store **dbs = cl_xcalloc((size_t)(n > 0 ? n : 1), sizeof *dbs);
  shard_run *runs = NULL;
  int nruns = 0, rc = CL_OK;
  char treal[PATH_MAX];
  int have_treal = realpath(t->path, treal) != NULL;
  for (int i = 0; rc == CL_OK && i < n; i++) {
    struct stat sb;
    if (stat(paths[i], &sb) != 0 && errno == ENOENT) continue; /* a missing shard */
    char real[PATH_MAX];
    if (have_treal && realpath(paths[i], real) && strcmp(real, treal) == 0) {
      rc = cl_err(e, CL_EINVAL, "%s: the merge target is also given as a shard", paths[i]);
      break;
    }
    if ((rc = cl_store_open_existing(paths[i], &dbs[i], e)) == CL_OK)
      rc = read_shard_runs(dbs[i], paths[i], &runs, &nruns, e);
  }
  if (rc == CL_OK && nruns == 0)
    rc = cl_err(e, CL_EINVAL, "none of the %d shard databases given exists (nothing to merge into %s)", n, t->path);
  const shard_run *plan = NULL;
  for (int i = 0; i < nruns && !plan; i++)
    if (runs[i].plan_hash) plan = &runs[i];
  if (rc == CL_OK && !plan)
    rc = cl_err(e, CL_EINVAL, "no shard given got as far as planning its jobs (%s run %lld is %s): rerun the shards",
                runs[0].path, (long long)runs[0].run_id, runs[0].status);
  if (rc == CL_OK) rc = find_children(&m, e);
  if (rc == CL_OK && sqlite3_exec(t->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
    rc = cl_store_dberr(t, e, "starting the merge");
  int in_txn = rc == CL_OK;
  if (rc == CL_OK) {
    r->shard_count = plan->count;
    r->file = cl_strdup(plan->file ? plan->file : "");
    rc = merged_run(&m, plan, e);
  }
  char *plan_text = NULL;
  if (rc == CL_OK) {
    sqlite3_stmt *st;
    if ((rc = prep(plan->db, "SELECT plan FROM runs WHERE id = ?1", &st, e)) == CL_OK) {
      sqlite3_bind_int64(st, 1, plan->run_id);
      if (sqlite3_step(st) == SQLITE_ROW && col_text(st, 0)) plan_text = cl_strdup(col_text(st, 0));
      sqlite3_finalize(st);
    }
  }
  if (rc == CL_OK) rc = merge_all_evaluations(&m, runs, nruns, plan_text ? plan_text : "", e);
  free(plan_text);
  /* a run killed before planning has no jobs to merge, but counts as its shard begun */
  for (int i = 0; rc == CL_OK && i < nruns; i++) rc = merge_jobs_and_record(&m, &runs[i], e);
  for (int i = 0; rc == CL_OK && i < nruns; i++) rc = merge_trainings(&m, &runs[i], e);
  if (rc == CL_OK) rc = finish_merged(&m, e);
  r->run_id = m.merged;
  if (in_txn) {
    if (rc == CL_OK && sqlite3_exec(t->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
      rc = cl_store_dberr(t, e, "committing the merge");
    if (rc != CL_OK) sqlite3_exec(t->db, "ROLLBACK", NULL, NULL, NULL);
  }
  for (int i = 0; i < nruns; i++) shard_run_free(&runs[i]);
  free(runs);
  for (int i = 0; i < n; i++) cl_store_close(dbs[i]);
  free(dbs);
  names_free(&m.children);
  names_free(&m.child_fk);
  if (rc != CL_OK) cl_merge_report_free(r);
  return rc;
}
