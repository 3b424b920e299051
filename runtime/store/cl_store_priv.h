/* cl_store_priv: the store handle's layout, shared by the store's own .c files only. */
#ifndef CL_STORE_PRIV_H
#define CL_STORE_PRIV_H
#include <sqlite3.h>

#include "cl_store.h"

/* Write statements, prepared once per handle (SQLITE_PREPARE_PERSISTENT). */
enum {
  CL_ST_BEGIN,
  CL_ST_COMMIT,
  CL_ST_ROLLBACK,
  CL_ST_RUN_INSERT,
  CL_ST_RUN_END,
  CL_ST_RUN_STATS,
  CL_ST_EVAL_INSERT,
  CL_ST_RESULT_INSERT,
  CL_ST_PRED_INSERT,
  CL_ST_SUPPORT_INSERT,
  CL_ST_COUNT
};

struct cl_store {
  sqlite3 *db;
  char *path;
  sqlite3_stmt *st[CL_ST_COUNT];
  int eval_open;   /* a transaction holds evaluation eval_id */
  int eval_failed; /* an insert into it failed: commit must roll back */
  int64_t eval_id;
  int64_t run_begun; /* the run this handle began, for a monotonic wall time */
  double run_t0;
  char *warning;
  int readonly; /* opened read-only (cl_store_open_existing of a file we may not write) */
};

/* "<path>: <what>: <sqlite3_errmsg>" into e; returns CL_EDB. */
int cl_store_dberr(cl_store *s, cl_error *e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void cl_store_warn(cl_store *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
