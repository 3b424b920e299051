/* cl_store_jobs: resume and claims. Every step is one short write transaction, so two
 * processes never both take a job, and a kill -9 leaves at most one claim to reap. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cl_store_priv.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void my_host(char *h, size_t n) {
  if (gethostname(h, n - 1) != 0) h[0] = 0;
  h[n - 1] = 0;
}

/* Is (host, pid) a process that still exists? Other hosts: unknown, so trust the lease. */
static int holder_alive(const char *host, int64_t pid, double lease_until) {
  char me[256];
  my_host(me, sizeof me);
  if (host && strcmp(host, me) == 0) {
    if (pid == (int64_t)getpid()) return 1;
    return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
  }
  return lease_until > now_s();
}

static int prep(cl_store *s, const char *sql, sqlite3_stmt **st, cl_error *e) {
  if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK) return cl_store_dberr(s, e, "preparing %.40s", sql);
  return CL_OK;
}

static int begin(cl_store *s, cl_error *e) {
  if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) return cl_store_dberr(s, e, "starting a claim");
  return CL_OK;
}

static int commit(cl_store *s, int rc, cl_error *e) {
  if (rc == CL_OK && sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) rc = cl_store_dberr(s, e, "committing a claim");
  if (rc != CL_OK) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
  return rc;
}

int cl_store_find_unfinished(cl_store *s, const cl_run_info *ri, int64_t *run_id, int *live, cl_error *e) {
  *run_id = 0;
  *live = 0;
  sqlite3_stmt *st;
  /* the same content computed the same way: a run resumed on another backend or precision
   * would record results it did not compute ("IS": NULL matches NULL) */
  /* and the same shard (NULL for a whole run; a merged run, shard_count without an index, is
   * never resumed) */
  int rc = prep(s, "SELECT id, host, pid, status FROM runs WHERE file_hash = ?1 AND backend IS ?2 AND precision IS ?3"
                   " AND decode = ?4 AND shard_index IS ?5 AND shard_count IS ?6"
                   " AND status IN ('running', 'interrupted', 'failed') AND NOT EXISTS (SELECT 1"
                   " FROM runs r2 WHERE r2.file_hash = ?1 AND r2.backend IS ?2 AND r2.precision IS ?3"
                   " AND r2.decode = ?4 AND r2.shard_index IS ?5 AND r2.shard_count IS ?6"
                   " AND r2.id > runs.id AND r2.status = 'complete') ORDER BY id DESC LIMIT 1",
                &st, e);
  if (rc) return rc;
  sqlite3_bind_text(st, 1, ri->file_hash, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 2, ri->backend, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 3, ri->precision, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 4, ri->decode ? ri->decode : "full", -1, SQLITE_TRANSIENT);
  if (ri->shard_count > 0) {
    sqlite3_bind_int(st, 5, ri->shard_index);
    sqlite3_bind_int(st, 6, ri->shard_count);
  }
  if (sqlite3_step(st) == SQLITE_ROW) {
    *run_id = sqlite3_column_int64(st, 0);
    const char *host = (const char *)sqlite3_column_text(st, 1);
    int64_t pid = sqlite3_column_int64(st, 2);
    const char *status = (const char *)sqlite3_column_text(st, 3);
    if (status && strcmp(status, "running") == 0) {
      /* the run's own process, or any live claim holder, keeps it alive */
      *live = holder_alive(host, pid, 0);
      if (!*live) {
        sqlite3_stmt *q;
        if (prep(s, "SELECT host, pid, lease_until FROM jobs WHERE run_id = ?1 AND status = 'claimed'", &q, e) == CL_OK) {
          sqlite3_bind_int64(q, 1, *run_id);
          while (!*live && sqlite3_step(q) == SQLITE_ROW)
            *live = holder_alive((const char *)sqlite3_column_text(q, 0), sqlite3_column_int64(q, 1),
                                 sqlite3_column_double(q, 2));
          sqlite3_finalize(q);
        }
      }
    }
  }
  sqlite3_finalize(st);
  return CL_OK;
}

int cl_store_run_adopt(cl_store *s, int64_t run_id, int take_over, cl_error *e) {
  sqlite3_stmt *st;
  const char *sql = take_over ? "UPDATE runs SET status = 'running', ended_at = NULL, host = ?2, pid = ?3 WHERE id = ?1"
                              : "UPDATE runs SET status = 'running' WHERE id = ?1 AND status <> 'complete'";
  int rc = prep(s, sql, &st, e);
  if (rc) return rc;
  char host[256];
  my_host(host, sizeof host);
  sqlite3_bind_int64(st, 1, run_id);
  if (take_over) {
    sqlite3_bind_text(st, 2, host, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, (int64_t)getpid());
  }
  if (sqlite3_step(st) != SQLITE_DONE) rc = cl_store_dberr(s, e, "resuming run %lld", (long long)run_id);
  sqlite3_finalize(st);
  return rc;
}

int cl_store_job_claim(cl_store *s, int64_t run_id, const char *job, int *state, cl_error *e) {
  int rc = begin(s, e);
  if (rc) return rc;
  sqlite3_stmt *st = NULL;
  char host[256];
  my_host(host, sizeof host);
  *state = 1;
  if ((rc = prep(s, "SELECT status, host, pid, lease_until FROM jobs WHERE run_id = ?1 AND job = ?2", &st, e)))
    return commit(s, rc, e);
  sqlite3_bind_int64(st, 1, run_id);
  sqlite3_bind_text(st, 2, job, -1, SQLITE_TRANSIENT);
  int found = sqlite3_step(st) == SQLITE_ROW;
  if (found) {
    const char *status = (const char *)sqlite3_column_text(st, 0);
    if (strcmp(status, "done") == 0) *state = 0;
    else if (holder_alive((const char *)sqlite3_column_text(st, 1), sqlite3_column_int64(st, 2),
                          sqlite3_column_double(st, 3)) &&
             sqlite3_column_int64(st, 2) != (int64_t)getpid())
      *state = -1;
  }
  sqlite3_finalize(st);
  if (*state == 1) {
    if ((rc = prep(s, "INSERT OR REPLACE INTO jobs(run_id, job, status, host, pid, lease_until)"
                      " VALUES (?1, ?2, 'claimed', ?3, ?4, ?5)", &st, e)) == CL_OK) {
      sqlite3_bind_int64(st, 1, run_id);
      sqlite3_bind_text(st, 2, job, -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(st, 3, host, -1, SQLITE_TRANSIENT);
      sqlite3_bind_int64(st, 4, (int64_t)getpid());
      sqlite3_bind_double(st, 5, now_s() + CL_STORE_LEASE_SECONDS);
      if (sqlite3_step(st) != SQLITE_DONE) rc = cl_store_dberr(s, e, "claiming job %s of run %lld", job, (long long)run_id);
      sqlite3_finalize(st);
    }
  }
  return commit(s, rc, e);
}

static int exec1(cl_store *s, const char *sql, int64_t run_id, const char *job, const char *what, cl_error *e) {
  sqlite3_stmt *st;
  int rc = prep(s, sql, &st, e);
  if (rc) return rc;
  sqlite3_bind_int64(st, 1, run_id);
  if (job) sqlite3_bind_text(st, 2, job, -1, SQLITE_TRANSIENT);
  else sqlite3_bind_int64(st, 2, (int64_t)getpid());
  if (sqlite3_step(st) != SQLITE_DONE) rc = cl_store_dberr(s, e, "%s (run %lld)", what, (long long)run_id);
  sqlite3_finalize(st);
  return rc;
}

int cl_store_job_done(cl_store *s, int64_t run_id, const char *job, cl_error *e) {
  return exec1(s, "UPDATE jobs SET status = 'done', lease_until = NULL WHERE run_id = ?1 AND job = ?2", run_id, job,
               "marking a job done", e);
}

int cl_store_jobs_release(cl_store *s, int64_t run_id, cl_error *e) {
  return exec1(s, "DELETE FROM jobs WHERE run_id = ?1 AND status = 'claimed' AND pid = ?2", run_id, NULL,
               "releasing claims", e);
}

int cl_store_jobs_done(cl_store *s, int64_t run_id, int64_t *n, cl_error *e) {
  sqlite3_stmt *st;
  int rc = prep(s, "SELECT COUNT(*) FROM jobs WHERE run_id = ?1 AND status = 'done'", &st, e);
  if (rc) return rc;
  sqlite3_bind_int64(st, 1, run_id);
  *n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_finalize(st);
  return CL_OK;
}

int cl_store_eval_exists(cl_store *s, int64_t run_id, const cl_eval_info *ei, int *exists, cl_error *e) {
  sqlite3_stmt *st;
  int rc = prep(s, "SELECT 1 FROM evaluations WHERE run_id = ?1 AND experiment = ?2 AND model = ?3 AND dataset = ?4"
                   " AND protocol = ?5 AND text_type = ?6 AND shots = ?7 AND coalesce(params_json, '') = ?8"
                   " AND query = ?9 AND key = ?10 AND split = ?11 AND rank = ?12", &st, e);
  if (rc) return rc;
  sqlite3_bind_int64(st, 1, run_id);
  sqlite3_bind_text(st, 2, ei->experiment, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 3, ei->model, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 4, ei->dataset, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 5, ei->protocol, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 6, ei->text_type ? ei->text_type : "", -1, SQLITE_TRANSIENT);
  sqlite3_bind_int(st, 7, ei->shots);
  sqlite3_bind_text(st, 8, ei->params_json ? ei->params_json : "", -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 9, ei->query ? ei->query : "", -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 10, ei->key ? ei->key : "", -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 11, ei->split ? ei->split : "", -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 12, ei->rank ? ei->rank : "", -1, SQLITE_TRANSIENT);
  *exists = sqlite3_step(st) == SQLITE_ROW;
  sqlite3_finalize(st);
  return CL_OK;
}

int cl_store_run_add_stats(cl_store *s, int64_t run_id, const cl_run_stats *rs, cl_error *e) {
  sqlite3_stmt *st;
  int rc = prep(s, "UPDATE runs SET images_encoded = images_encoded + ?2, texts_encoded = texts_encoded + ?3,"
                   " images_cached = images_cached + ?4, texts_cached = texts_cached + ?5,"
                   " stats_json = coalesce(?6, stats_json) WHERE id = ?1", &st, e);
  if (rc) return rc;
  sqlite3_bind_int64(st, 1, run_id);
  sqlite3_bind_int64(st, 2, rs->images_encoded);
  sqlite3_bind_int64(st, 3, rs->texts_encoded);
  sqlite3_bind_int64(st, 4, rs->images_cached);
  sqlite3_bind_int64(st, 5, rs->texts_cached);
  if (rs->stats_json) sqlite3_bind_text(st, 6, rs->stats_json, -1, SQLITE_TRANSIENT);
  if (sqlite3_step(st) != SQLITE_DONE) rc = cl_store_dberr(s, e, "adding the stats of run %lld", (long long)run_id);
  sqlite3_finalize(st);
  return rc;
}

int cl_store_begin_or_resume(cl_store *s, const cl_run_info *ri, int64_t *run_id, int *resumed, int *live,
                             cl_error *e) {
  /* one write transaction, so two processes starting together share a run */
  int rc = begin(s, e);
  if (rc) return rc;
  *resumed = 0;
  rc = cl_store_find_unfinished(s, ri, run_id, live, e);
  if (rc == CL_OK && *run_id) {
    *resumed = 1;
    rc = cl_store_run_adopt(s, *run_id, !*live, e);
  } else if (rc == CL_OK) {
    rc = cl_store_run_begin(s, ri, run_id, e);
    if (rc == CL_OK && ri->shard_count > 0) {
      sqlite3_stmt *st;
      if ((rc = prep(s, "UPDATE runs SET shard_index = ?2, shard_count = ?3 WHERE id = ?1", &st, e)) == CL_OK) {
        sqlite3_bind_int64(st, 1, *run_id);
        sqlite3_bind_int(st, 2, ri->shard_index);
        sqlite3_bind_int(st, 3, ri->shard_count);
        if (sqlite3_step(st) != SQLITE_DONE) rc = cl_store_dberr(s, e, "recording run %lld as shard %d/%d",
                                                                 (long long)*run_id, ri->shard_index, ri->shard_count);
        sqlite3_finalize(st);
      }
    }
  }
  return commit(s, rc, e);
}
