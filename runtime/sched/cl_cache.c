/* cl_cache: embeddings by content in SQLite. */
#include "cl_cache.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <zlib.h>

#include "store/cl_store.h"

struct cl_cache {
  sqlite3 *db;
  char path[4096];
  sqlite3_stmt *get_file, *put_file, *get_vec, *put_vec, *touch;
  int off;      /* a failed read turned the cache off for the rest of this process */
  int readonly; /* a failed write: serve what is there, store nothing more */
};

/* MIGRATIONS[v] takes a cache from user_version v to v+1 (as the results database's do).
 * 0 -> 1: a CRC-32 of each entry (its key and vector), so a corrupt vector is never served.
 * A cache from before has user_version 0 and the tables without crc: its rows keep a NULL crc
 * and count as misses, re-encoded (and so checksummed) when next asked for. */
static const char *const MIGRATIONS[] = {
    "CREATE TABLE IF NOT EXISTS files(path TEXT PRIMARY KEY, size INTEGER NOT NULL,"
    "  mtime_ns INTEGER NOT NULL, hash TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS embeddings(model_key TEXT NOT NULL, kind TEXT NOT NULL,"
    "  item_key TEXT NOT NULL, dim INTEGER NOT NULL, vec BLOB NOT NULL, created_at REAL NOT NULL,"
    "  used_at REAL NOT NULL, PRIMARY KEY(model_key, kind, item_key)) WITHOUT ROWID;"
    "ALTER TABLE embeddings ADD COLUMN crc INTEGER;",
};
#define CACHE_VERSION ((int)(sizeof MIGRATIONS / sizeof *MIGRATIONS))

/* A hit refreshes used_at (what prune goes by) only when it is older than this: a cached run
 * repeated within the hour writes nothing. */
#define TOUCH_AFTER_S 3600.0

static int dberr(cl_cache *c, cl_error *e, const char *what) {
  return cl_err(e, CL_EDB, "%s: %s: %s", c->path, what, sqlite3_errmsg(c->db));
}

/* The cache is optional: a failure says so once and the process goes on without it (a failed
 * write: without writing to it). */
static void give_up(cl_cache *c, int writing, const char *what) {
  if (!c->off && !c->readonly)
    fprintf(stderr, "clade: warning: %s: %s: %s; going on without %s the embedding cache\n", c->path, what,
            sqlite3_errmsg(c->db), writing ? "writing to" : "reading");
  if (writing) c->readonly = 1;
  else c->off = 1;
  if (!sqlite3_get_autocommit(c->db)) sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* CRC-32 (zlib) of an entry: its key, then its vector. */
static int64_t entry_crc(const char *model_key, const char *kind, const char *item_key, const float *v, int dim) {
  uLong z = crc32(0L, Z_NULL, 0);
  const char *parts[3] = {model_key, kind, item_key};
  for (int i = 0; i < 3; i++) z = crc32(z, (const Bytef *)parts[i], (uInt)strlen(parts[i]) + 1);
  z = crc32(z, (const Bytef *)v, (uInt)((size_t)dim * sizeof(float)));
  return (int64_t)z;
}

char *cl_cache_path_for(const char *results_db, char *buf, size_t n) {
  const char *slash = strrchr(results_db, '/');
  if (slash) snprintf(buf, n, "%.*s/cache.db", (int)(slash - results_db), results_db);
  else snprintf(buf, n, "cache.db");
  return buf;
}

/* Brings the schema to CACHE_VERSION in one write transaction. */
static int migrate(cl_cache *c, cl_error *e) {
  sqlite3_stmt *st = NULL;
  int uv = -1;
  if (sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) return dberr(c, e, "opening");
  if (sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
    uv = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  int rc = CL_OK;
  if (uv < 0) rc = dberr(c, e, "reading the schema version");
  else if (uv > CACHE_VERSION)
    rc = cl_err(e, CL_EDB, "%s: cache schema version %d is newer than this clade's (%d)", c->path, uv, CACHE_VERSION);
  for (int v = uv; rc == CL_OK && v < CACHE_VERSION; v++)
    if (sqlite3_exec(c->db, MIGRATIONS[v], NULL, NULL, NULL) != SQLITE_OK) rc = dberr(c, e, "migrating the schema");
  if (rc == CL_OK && uv < CACHE_VERSION) {
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", CACHE_VERSION);
    if (sqlite3_exec(c->db, sql, NULL, NULL, NULL) != SQLITE_OK) rc = dberr(c, e, "setting the schema version");
  }
  if (rc == CL_OK && sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) rc = dberr(c, e, "migrating the schema");
  if (rc && !sqlite3_get_autocommit(c->db)) sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
  return rc;
}

/* Opens and readies the cache; *damaged is set when the file is not a (sound) database. */
static int open_once(cl_cache *c, int *damaged, cl_error *e) {
  *damaged = 0;
  if (sqlite3_open_v2(c->path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK)
    return cl_err(e, CL_EDB, "%s: cannot open the embedding cache: %s", c->path,
                  c->db ? sqlite3_errmsg(c->db) : "out of memory");
  sqlite3_busy_timeout(c->db, 30000);
  int rc = CL_OK;
  if (sqlite3_exec(c->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL, NULL) != SQLITE_OK)
    rc = dberr(c, e, "opening");
  else rc = migrate(c, e);
  if (rc) {
    int x = sqlite3_errcode(c->db);
    *damaged = x == SQLITE_NOTADB || x == SQLITE_CORRUPT;
    return rc;
  }
  struct {
    sqlite3_stmt **st;
    const char *sql;
  } stmts[] = {
    {&c->get_file, "SELECT size, mtime_ns, hash FROM files WHERE path = ?1"},
    {&c->put_file, "INSERT OR REPLACE INTO files(path, size, mtime_ns, hash) VALUES (?1, ?2, ?3, ?4)"},
    {&c->get_vec, "SELECT dim, vec, crc, used_at FROM embeddings WHERE model_key = ?1 AND kind = ?2 AND item_key = ?3"},
    {&c->put_vec, "INSERT OR REPLACE INTO embeddings(model_key, kind, item_key, dim, vec, created_at, used_at, crc)"
                  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7)"},
    {&c->touch, "UPDATE embeddings SET used_at = ?4 WHERE model_key = ?1 AND kind = ?2 AND item_key = ?3"},
  };
  for (size_t i = 0; rc == CL_OK && i < sizeof stmts / sizeof *stmts; i++)
    if (sqlite3_prepare_v2(c->db, stmts[i].sql, -1, stmts[i].st, NULL) != SQLITE_OK) {
      rc = dberr(c, e, "preparing a statement");
      *damaged = sqlite3_errcode(c->db) == SQLITE_CORRUPT;
    }
  return rc;
}

static void close_db(cl_cache *c) {
  sqlite3_stmt **sts[] = {&c->get_file, &c->put_file, &c->get_vec, &c->put_vec, &c->touch};
  for (size_t i = 0; i < sizeof sts / sizeof *sts; i++) {
    sqlite3_finalize(*sts[i]);
    *sts[i] = NULL;
  }
  sqlite3_close(c->db);
  c->db = NULL;
}

int cl_cache_open(const char *path, cl_cache **out, cl_error *e) {
  cl_cache *c = cl_xcalloc(1, sizeof *c);
  snprintf(c->path, sizeof c->path, "%s", path);
  int damaged = 0, rc = open_once(c, &damaged, e);
  if (rc && damaged) {
    /* not a database, or a damaged one: keep it aside for a look, and start a new cache */
    close_db(c);
    char aside[4200], from[4200], to[4300];
    snprintf(aside, sizeof aside, "%s.damaged-%lld", path, (long long)time(NULL));
    const char *sfx[] = {"", "-wal", "-shm"};
    int moved = 1;
    for (int i = 0; i < 3; i++) {
      snprintf(from, sizeof from, "%s%s", path, sfx[i]);
      snprintf(to, sizeof to, "%s%s", aside, sfx[i]);
      if (rename(from, to) != 0 && errno != ENOENT) moved = 0;
    }
    if (moved) {
      fprintf(stderr, "clade: warning: %s: %s; moved it to %s and starting a new embedding cache\n", path,
              e->msg, aside);
      rc = open_once(c, &damaged, e);
    }
  }
  if (rc) {
    cl_cache_close(c);
    return rc;
  }
  *out = c;
  return CL_OK;
}

void cl_cache_close(cl_cache *c) {
  if (!c) return;
  close_db(c);
  free(c);
}

int cl_cache_on(const cl_cache *c) { return c && !c->off; }

int cl_cache_file_hash(cl_cache *c, const char *path, char out[41], cl_error *e) {
  if (c->off) return cl_hash_file(path, out, e);
  struct stat st;
  if (stat(path, &st) != 0) return cl_err(e, CL_EIO, "%s: no such file", path);
  int64_t mt = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
  sqlite3_reset(c->get_file);
  sqlite3_bind_text(c->get_file, 1, path, -1, SQLITE_TRANSIENT);
  int step = sqlite3_step(c->get_file);
  if (step == SQLITE_ROW && sqlite3_column_int64(c->get_file, 0) == (int64_t)st.st_size &&
      sqlite3_column_int64(c->get_file, 1) == mt) {
    snprintf(out, 41, "%s", (const char *)sqlite3_column_text(c->get_file, 2));
    sqlite3_reset(c->get_file);
    return CL_OK;
  }
  sqlite3_reset(c->get_file);
  if (step != SQLITE_ROW && step != SQLITE_DONE) give_up(c, 0, "reading a file hash");
  int rc = cl_hash_file(path, out, e);
  if (rc || c->off || c->readonly) return rc;
  sqlite3_reset(c->put_file);
  sqlite3_bind_text(c->put_file, 1, path, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(c->put_file, 2, (int64_t)st.st_size);
  sqlite3_bind_int64(c->put_file, 3, mt);
  sqlite3_bind_text(c->put_file, 4, out, -1, SQLITE_TRANSIENT);
  if (sqlite3_step(c->put_file) != SQLITE_DONE) give_up(c, 1, "remembering a file hash");
  sqlite3_reset(c->put_file);
  return CL_OK;
}

static void bind_key(sqlite3_stmt *st, const char *model_key, const char *kind, const char *item_key) {
  sqlite3_reset(st);
  sqlite3_bind_text(st, 1, model_key, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, item_key, -1, SQLITE_STATIC);
}

/* Refreshes used_at of the listed entries, in one write transaction. */
static void touch(cl_cache *c, const char *model_key, const char *kind, const char *const *keys, const int *idx,
                  int n, double t) {
  if (n == 0 || c->off || c->readonly) return;
  if (sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
    give_up(c, 1, "marking embeddings used");
    return;
  }
  for (int i = 0; i < n; i++) {
    bind_key(c->touch, model_key, kind, keys[idx[i]]);
    sqlite3_bind_double(c->touch, 4, t);
    if (sqlite3_step(c->touch) != SQLITE_DONE) {
      sqlite3_reset(c->touch);
      give_up(c, 1, "marking embeddings used");
      return;
    }
  }
  sqlite3_reset(c->touch);
  if (sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) give_up(c, 1, "marking embeddings used");
}

int cl_cache_get(cl_cache *c, const char *model_key, const char *kind, const char *const *keys, int n,
                 int dim, float *out, uint8_t *hit, cl_error *e) {
  (void)e;
  memset(hit, 0, (size_t)(n > 0 ? n : 0));
  if (c->off || n <= 0) return CL_OK;
  double t = now_s();
  int *stale = cl_xmalloc((size_t)n * sizeof(int));
  int nstale = 0, bad = 0, failed = 0;
  if (sqlite3_exec(c->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) failed = 1;
  for (int i = 0; i < n && !failed; i++) {
    bind_key(c->get_vec, model_key, kind, keys[i]);
    int step = sqlite3_step(c->get_vec);
    if (step == SQLITE_DONE) continue;
    if (step != SQLITE_ROW) {
      failed = 1;
      break;
    }
    if (sqlite3_column_int(c->get_vec, 0) != dim || sqlite3_column_bytes(c->get_vec, 1) != dim * (int)sizeof(float) ||
        sqlite3_column_type(c->get_vec, 2) == SQLITE_NULL) /* a wrong size, or from before checksums */
      continue;
    float *v = out + (size_t)i * dim;
    memcpy(v, sqlite3_column_blob(c->get_vec, 1), (size_t)dim * sizeof(float));
    if (sqlite3_column_int64(c->get_vec, 2) != entry_crc(model_key, kind, keys[i], v, dim)) {
      bad++;
      continue;
    }
    hit[i] = 1;
    if (sqlite3_column_double(c->get_vec, 3) < t - TOUCH_AFTER_S) stale[nstale++] = i;
  }
  sqlite3_reset(c->get_vec);
  if (failed || sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
    give_up(c, 0, "reading embeddings");
    memset(hit, 0, (size_t)n);
  } else {
    if (bad)
      fprintf(stderr, "clade: warning: %s: %d cached %s embedding%s failed %s checksum (a corrupt entry): "
              "encoding %s again\n", c->path, bad, kind, bad == 1 ? "" : "s", bad == 1 ? "its" : "their",
              bad == 1 ? "it" : "them");
    touch(c, model_key, kind, keys, stale, nstale, t);
  }
  free(stale);
  return CL_OK;
}

int cl_cache_put(cl_cache *c, const char *model_key, const char *kind, const char *const *keys, int n,
                 int dim, const float *vecs, cl_error *e) {
  (void)e;
  if (c->off || c->readonly || n <= 0) return CL_OK;
  double t = now_s();
  if (sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
    give_up(c, 1, "storing embeddings");
    return CL_OK;
  }
  for (int i = 0; i < n; i++) {
    const float *v = vecs + (size_t)i * dim;
    bind_key(c->put_vec, model_key, kind, keys[i]);
    sqlite3_bind_int(c->put_vec, 4, dim);
    sqlite3_bind_blob(c->put_vec, 5, v, dim * (int)sizeof(float), SQLITE_STATIC);
    sqlite3_bind_double(c->put_vec, 6, t);
    sqlite3_bind_int64(c->put_vec, 7, entry_crc(model_key, kind, keys[i], v, dim));
    if (sqlite3_step(c->put_vec) != SQLITE_DONE) {
      sqlite3_reset(c->put_vec);
      give_up(c, 1, "storing embeddings");
      return CL_OK;
    }
  }
  sqlite3_reset(c->put_vec);
  if (sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) give_up(c, 1, "storing embeddings");
  return CL_OK;
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

int cl_cache_merge(cl_cache *c, const char *src, int64_t *added, cl_error *e) {
  *added = 0;
  struct stat sb;
  if (stat(src, &sb) != 0) return cl_err(e, CL_EIO, "%s: no such embedding cache", src);
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(c->db, "ATTACH ?1 AS src", -1, &st, NULL) != SQLITE_OK) return dberr(c, e, "preparing ATTACH");
  sqlite3_bind_text(st, 1, src, -1, SQLITE_TRANSIENT);
  int rc = sqlite3_step(st) == SQLITE_DONE ? CL_OK : cl_err(e, CL_EDB, "%s: cannot open: %s", src, sqlite3_errmsg(c->db));
  sqlite3_finalize(st);
  if (rc) return rc;
  /* every table of this cache that the other has too, with the columns both have */
  rc = sqlite3_prepare_v2(c->db,
                          "SELECT t.name, (SELECT group_concat('\"' || replace(m.name, '\"', '\"\"') || '\"', ', ')"
                          " FROM pragma_table_info(t.name, 'main') m JOIN pragma_table_info(t.name, 'src') s"
                          " USING (name)) FROM main.sqlite_schema t WHERE t.type = 'table'"
                          " AND t.name NOT LIKE 'sqlite_%' AND t.name IN (SELECT name FROM src.sqlite_schema)",
                          -1, &st, NULL) == SQLITE_OK ? CL_OK : dberr(c, e, "listing the cache's tables");
  int has_embeddings = 0;
  if (rc == CL_OK && sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
    rc = dberr(c, e, "starting the merge");
  while (rc == CL_OK && sqlite3_step(st) == SQLITE_ROW) {
    const char *table = (const char *)sqlite3_column_text(st, 0), *cols = (const char *)sqlite3_column_text(st, 1);
    if (!cols) continue;
    has_embeddings |= strcmp(table, "embeddings") == 0;
    /* keyed by content: a row this cache has already is the same embedding, kept as is */
    char *sql = sqlite3_mprintf("INSERT OR IGNORE INTO main.\"%w\"(%s) SELECT %s FROM src.\"%w\"", table, cols, cols,
                                table);
    if (sqlite3_exec(c->db, sql, NULL, NULL, NULL) != SQLITE_OK) rc = cl_err(e, CL_EDB, "%s: merging %s from %s: %s",
                                                                             c->path, table, src, sqlite3_errmsg(c->db));
    else if (!strcmp(table, "embeddings")) *added += sqlite3_changes(c->db);
    sqlite3_free(sql);
  }
  sqlite3_finalize(st);
  if (rc == CL_OK && !has_embeddings) rc = cl_err(e, CL_EINVAL, "%s: not an embedding cache (no embeddings table)", src);
  if (rc == CL_OK && sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) rc = dberr(c, e, "committing the merge");
  if (rc != CL_OK && !sqlite3_get_autocommit(c->db)) sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
  sqlite3_exec(c->db, "DETACH src", NULL, NULL, NULL);
  return rc;
}
