/* cl_cache: embeddings by content in SQLite. */
#include "cl_cache.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "store/cl_store.h"

struct cl_cache {
  sqlite3 *db;
  char path[4096];
  sqlite3_stmt *get_file, *put_file, *get_vec, *put_vec, *touch;
};

static const char *SCHEMA =
    "CREATE TABLE IF NOT EXISTS files(path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,"
    "  hash TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS embeddings(model_key TEXT NOT NULL, kind TEXT NOT NULL, item_key TEXT NOT NULL,"
    "  dim INTEGER NOT NULL, vec BLOB NOT NULL, created_at REAL NOT NULL, used_at REAL NOT NULL,"
    "  PRIMARY KEY(model_key, kind, item_key)) WITHOUT ROWID;";

static int dberr(cl_cache *c, cl_error *e, const char *what) {
  return cl_err(e, CL_EDB, "%s: %s: %s", c->path, what, sqlite3_errmsg(c->db));
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

char *cl_cache_path_for(const char *results_db, char *buf, size_t n) {
  const char *slash = strrchr(results_db, '/');
  if (slash) snprintf(buf, n, "%.*s/cache.db", (int)(slash - results_db), results_db);
  else snprintf(buf, n, "cache.db");
  return buf;
}

int cl_cache_open(const char *path, cl_cache **out, cl_error *e) {
  cl_cache *c = cl_xcalloc(1, sizeof *c);
  snprintf(c->path, sizeof c->path, "%s", path);
  if (sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
    int rc = cl_err(e, CL_EDB, "%s: cannot open the embedding cache: %s", path,
                    c->db ? sqlite3_errmsg(c->db) : "out of memory");
    cl_cache_close(c);
    return rc;
  }
  sqlite3_busy_timeout(c->db, 30000);
  int rc = CL_OK;
  if (sqlite3_exec(c->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL, NULL) != SQLITE_OK ||
      sqlite3_exec(c->db, SCHEMA, NULL, NULL, NULL) != SQLITE_OK)
    rc = dberr(c, e, "creating the schema");
  struct {
    sqlite3_stmt **st;
    const char *sql;
  } stmts[] = {
    {&c->get_file, "SELECT size, mtime_ns, hash FROM files WHERE path = ?1"},
    {&c->put_file, "INSERT OR REPLACE INTO files(path, size, mtime_ns, hash) VALUES (?1, ?2, ?3, ?4)"},
    {&c->get_vec, "SELECT dim, vec FROM embeddings WHERE model_key = ?1 AND kind = ?2 AND item_key = ?3"},
    {&c->put_vec, "INSERT OR REPLACE INTO embeddings(model_key, kind, item_key, dim, vec, created_at, used_at)"
                  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)"},
    {&c->touch, "UPDATE embeddings SET used_at = ?4 WHERE model_key = ?1 AND kind = ?2 AND item_key = ?3"},
  };
  for (size_t i = 0; rc == CL_OK && i < sizeof stmts / sizeof *stmts; i++)
    if (sqlite3_prepare_v2(c->db, stmts[i].sql, -1, stmts[i].st, NULL) != SQLITE_OK)
      rc = dberr(c, e, "preparing a statement");
  if (rc) {
    cl_cache_close(c);
    return rc;
  }
  *out = c;
  return CL_OK;
}

void cl_cache_close(cl_cache *c) {
  if (!c) return;
  sqlite3_finalize(c->get_file);
  sqlite3_finalize(c->put_file);
  sqlite3_finalize(c->get_vec);
  sqlite3_finalize(c->put_vec);
  sqlite3_finalize(c->touch);
  sqlite3_close(c->db);
  free(c);
}

int cl_cache_file_hash(cl_cache *c, const char *path, char out[41], cl_error *e) {
  struct stat st;
  if (stat(path, &st) != 0) return cl_err(e, CL_EIO, "%s: no such file", path);
  int64_t mt = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
  sqlite3_reset(c->get_file);
  sqlite3_bind_text(c->get_file, 1, path, -1, SQLITE_TRANSIENT);
  if (sqlite3_step(c->get_file) == SQLITE_ROW && sqlite3_column_int64(c->get_file, 0) == (int64_t)st.st_size &&
      sqlite3_column_int64(c->get_file, 1) == mt) {
    snprintf(out, 41, "%s", (const char *)sqlite3_column_text(c->get_file, 2));
    sqlite3_reset(c->get_file);
    return CL_OK;
  }
  sqlite3_reset(c->get_file);
  int rc = cl_store_hash_file(path, out, e);
  if (rc) return rc;
  sqlite3_reset(c->put_file);
  sqlite3_bind_text(c->put_file, 1, path, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(c->put_file, 2, (int64_t)st.st_size);
  sqlite3_bind_int64(c->put_file, 3, mt);
  sqlite3_bind_text(c->put_file, 4, out, -1, SQLITE_TRANSIENT);
  if (sqlite3_step(c->put_file) != SQLITE_DONE) rc = dberr(c, e, "remembering a file hash");
  sqlite3_reset(c->put_file);
  return rc;
}

int cl_cache_get(cl_cache *c, const char *model_key, const char *kind, const char *const *keys, int n,
                 int dim, float *out, uint8_t *hit, cl_error *e) {
  double t = now_s();
  if (sqlite3_exec(c->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) return dberr(c, e, "reading embeddings");
  for (int i = 0; i < n; i++) {
    hit[i] = 0;
    sqlite3_reset(c->get_vec);
    sqlite3_bind_text(c->get_vec, 1, model_key, -1, SQLITE_STATIC);
    sqlite3_bind_text(c->get_vec, 2, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(c->get_vec, 3, keys[i], -1, SQLITE_STATIC);
    if (sqlite3_step(c->get_vec) == SQLITE_ROW && sqlite3_column_int(c->get_vec, 0) == dim &&
        sqlite3_column_bytes(c->get_vec, 1) == dim * (int)sizeof(float)) {
      memcpy(out + (size_t)i * dim, sqlite3_column_blob(c->get_vec, 1), (size_t)dim * sizeof(float));
      hit[i] = 1;
      sqlite3_reset(c->touch);
      sqlite3_bind_text(c->touch, 1, model_key, -1, SQLITE_STATIC);
      sqlite3_bind_text(c->touch, 2, kind, -1, SQLITE_STATIC);
      sqlite3_bind_text(c->touch, 3, keys[i], -1, SQLITE_STATIC);
      sqlite3_bind_double(c->touch, 4, t);
      sqlite3_step(c->touch);
    }
  }
  sqlite3_reset(c->get_vec);
  sqlite3_reset(c->touch);
  if (sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
    sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    return dberr(c, e, "reading embeddings");
  }
  return CL_OK;
}

int cl_cache_put(cl_cache *c, const char *model_key, const char *kind, const char *const *keys, int n,
                 int dim, const float *vecs, cl_error *e) {
  double t = now_s();
  if (sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) return dberr(c, e, "storing embeddings");
  int rc = CL_OK;
  for (int i = 0; i < n && rc == CL_OK; i++) {
    sqlite3_reset(c->put_vec);
    sqlite3_bind_text(c->put_vec, 1, model_key, -1, SQLITE_STATIC);
    sqlite3_bind_text(c->put_vec, 2, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(c->put_vec, 3, keys[i], -1, SQLITE_STATIC);
    sqlite3_bind_int(c->put_vec, 4, dim);
    sqlite3_bind_blob(c->put_vec, 5, vecs + (size_t)i * dim, dim * (int)sizeof(float), SQLITE_STATIC);
    sqlite3_bind_double(c->put_vec, 6, t);
    if (sqlite3_step(c->put_vec) != SQLITE_DONE) rc = dberr(c, e, "storing an embedding");
  }
  sqlite3_reset(c->put_vec);
  if (rc == CL_OK && sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) rc = dberr(c, e, "storing embeddings");
  if (rc) sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
  return rc;
}

static int64_t count(cl_cache *c, const char *sql) {
  sqlite3_stmt *st;
  int64_t v = 0;
  if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
    v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

int cl_cache_stats_get(cl_cache *c, cl_cache_stats *st, cl_error *e) {
  (void)e;
  st->models = count(c, "SELECT COUNT(DISTINCT model_key) FROM embeddings");
  st->images = count(c, "SELECT COUNT(*) FROM embeddings WHERE kind LIKE 'image%'");
  st->texts = count(c, "SELECT COUNT(*) FROM embeddings WHERE kind = 'text'");
  st->bytes = count(c, "SELECT COALESCE(SUM(LENGTH(vec)), 0) FROM embeddings");
  st->files = count(c, "SELECT COUNT(*) FROM files");
  return CL_OK;
}

int cl_cache_prune(cl_cache *c, double days, int64_t *removed_embeddings, int64_t *removed_files, cl_error *e) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(c->db, "DELETE FROM embeddings WHERE used_at <= ?1", -1, &st, NULL) != SQLITE_OK)
    return dberr(c, e, "pruning");
  sqlite3_bind_double(st, 1, days > 0 ? now_s() - days * 86400.0 : now_s() + 1);
  int ok = sqlite3_step(st) == SQLITE_DONE;
  sqlite3_finalize(st);
  if (!ok) return dberr(c, e, "pruning embeddings");
  *removed_embeddings = sqlite3_changes(c->db);
  /* file hashes of files that are gone */
  *removed_files = 0;
  if (sqlite3_prepare_v2(c->db, "SELECT path FROM files", -1, &st, NULL) != SQLITE_OK) return dberr(c, e, "pruning");
  sqlite3_stmt *del;
  sqlite3_prepare_v2(c->db, "DELETE FROM files WHERE path = ?1", -1, &del, NULL);
  while (sqlite3_step(st) == SQLITE_ROW) {
    struct stat sb;
    const char *p = (const char *)sqlite3_column_text(st, 0);
    if (stat(p, &sb) != 0) {
      sqlite3_reset(del);
      sqlite3_bind_text(del, 1, p, -1, SQLITE_TRANSIENT);
      if (sqlite3_step(del) == SQLITE_DONE) (*removed_files)++;
    }
  }
  sqlite3_finalize(del);
  sqlite3_finalize(st);
  sqlite3_exec(c->db, "VACUUM", NULL, NULL, NULL);
  return CL_OK;
}
