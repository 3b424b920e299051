/* Intervals kept in the results database (schema 9): rows written for one run and settings read
 * back equal (a cell without an interval with its reason too), other settings and a run that
 * has grown since find none, writing the same settings again replaces the rows. */
#define _GNU_SOURCE
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cl_test.h"
#include "store/cl_store.h"

typedef struct got {
  cl_interval_row r[8];
  char metric[8][32], tie[8][16], note[8][96];
  int n;
} got;

static int on_row(const cl_interval_row *r, void *ud, cl_error *e) {
  (void)e;
  got *g = ud;
  if (g->n == 8) return CL_OK;
  g->r[g->n] = *r;
  snprintf(g->metric[g->n], 32, "%s", r->metric);
  snprintf(g->tie[g->n], 16, "%s", r->tie);
  snprintf(g->note[g->n], 96, "%s", r->note);
  g->n++;
  return CL_OK;
}

static int64_t add_eval(cl_store *s, int64_t run, const char *model, cl_error *e) {
  cl_eval_info ei = {.experiment = "x", .model = model, .dataset = "d", .protocol = "retrieval", .n_examples = 3,
                     .query = "image", .key = "dna", .split = "test_seen", .rank = "species"};
  int64_t id = 0;
  if (cl_store_eval_begin(s, run, &ei, &id, e) || cl_store_add_result(s, id, -1, "micro_top1", 0.5, e) ||
      cl_store_eval_commit(s, id, e))
    return 0;
  return id;
}

int main(void) {
  char dir[] = "/tmp/clade_intervals_XXXXXX", db[128];
  if (!mkdtemp(dir)) return 1;
  snprintf(db, sizeof db, "%s/r.db", dir);
  cl_store *s = NULL;
  cl_error e = {0};
  CHECK_OK(cl_store_open(db, &s, &e), e);
  int64_t run = 0, n = 0;
  cl_run_info ri = {.file = db, .backend = "cpu", .precision = "fp32"};
  CHECK_OK(cl_store_run_begin(s, &ri, &run, &e), e);
  int64_t a = add_eval(s, run, "m1", &e), b = add_eval(s, run, "m2", &e);
  CHECK(a > 0 && b > 0);
  CHECK_OK(cl_store_run_evals(s, run, &n, &e), e);
  CHECK_EQ_INT(n, 2);
  CHECK(cl_store_writable(s));

  const cl_interval_key k = {.method = "bootstrap", .level = 0.95, .resamples = 1000, .seed = 7};
  const cl_interval_row rows[3] = {
      {.eval_id = a, .trial = -1, .metric = "micro_top1", .has_ci = 1, .lo = 0.1 + 0.2, .hi = 2.0 / 3, .tie = "best",
       .p = 1, .group_size = 2, .note = ""},
      {.eval_id = b, .trial = -1, .metric = "micro_top1", .has_ci = 1, .lo = 0.25, .hi = 0.75, .tie = "worse",
       .p = 0.001, .group_size = 2, .note = ""},
      {.eval_id = b, .trial = 0, .metric = "macro_top1", .has_ci = 0, .tie = "", .p = NAN,
       .note = "no interval: recorded before schema 9 (no per-query outcomes)"},
  };
  CHECK_OK(cl_store_intervals_put(s, run, &k, n, rows, 3, &e), e);
  got g = {0};
  int found = 0;
  CHECK_OK(cl_store_intervals_get(s, run, &k, on_row, &g, &found, &e), e);
  CHECK(found && g.n == 3);
  for (int i = 0; i < g.n && i < 3; i++) {
    const cl_interval_row *w = &rows[i], *r = &g.r[i];
    CHECK_MSG(r->eval_id == w->eval_id && r->trial == w->trial && !strcmp(g.metric[i], w->metric) &&
                  r->has_ci == w->has_ci && (!w->has_ci || (r->lo == w->lo && r->hi == w->hi)) &&
                  !strcmp(g.tie[i], w->tie) && r->group_size == w->group_size && !strcmp(g.note[i], w->note) &&
                  (isnan(w->p) ? isnan(r->p) : r->p == w->p),
              "row %d read back differently", i);
  }
  /* other settings: nothing */
  cl_interval_key other = k;
  other.seed = 8;
  g.n = 0;
  CHECK_OK(cl_store_intervals_get(s, run, &other, on_row, &g, &found, &e), e);
  CHECK(!found && g.n == 0);
  other = k, other.resamples = 999;
  CHECK_OK(cl_store_intervals_get(s, run, &other, on_row, &g, &found, &e), e);
  CHECK(!found);
  /* the same settings again: replaced, not added */
  CHECK_OK(cl_store_intervals_put(s, run, &k, n, rows, 1, &e), e);
  CHECK_OK(cl_store_intervals_get(s, run, &k, on_row, &g, &found, &e), e);
  CHECK(found && g.n == 1);
  /* the run grows: its rows are stale */
  CHECK(add_eval(s, run, "m3", &e) > 0);
  g.n = 0;
  CHECK_OK(cl_store_intervals_get(s, run, &k, on_row, &g, &found, &e), e);
  CHECK(!found && g.n == 0);
  /* bad settings are refused */
  other = k, other.seed = -1;
  CHECK(cl_store_intervals_put(s, run, &other, n, rows, 1, &e) == CL_EINVAL);
  cl_store_close(s);
  unlink(db);
  char side[160];
  snprintf(side, sizeof side, "%s-wal", db), unlink(side);
  snprintf(side, sizeof side, "%s-shm", db), unlink(side);
  rmdir(dir);
  return cl_test_done("test_store_intervals");
}
