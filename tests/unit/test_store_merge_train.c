/* clade merge keeps the training record: two shards that both trained (or recorded from a
 * shared cache) the same model give one train_jobs row with its steps in the merged run, a
 * model only one shard trained is there too, the trained model's evaluations from every shard
 * are linked to its job, merging again adds nothing, and a complete training merged later
 * replaces an unfinished one of the same content key (its steps with it). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "cl_test.h"
#include "store/cl_store.h"

typedef cl_test_seen seen;

static int job_fn(const cl_train_job_row *r, void *ud, cl_error *e) {
  (void)e;
  cl_test_seen_add(ud, "%s|%s|%s|%lld/%lld|%s|%.2f;", r->name, r->content_key, r->status, (long long)r->steps_done,
                   (long long)r->steps, r->model_hash ? r->model_hash : "-", r->last_loss);
  return 0;
}

static int step_count(const cl_train_step_row *r, void *ud, cl_error *e) {
  (void)r, (void)e;
  ++*(int *)ud;
  return 0;
}

static int eval_fn(const cl_train_eval_row *r, void *ud, cl_error *e) {
  (void)e;
  cl_test_seen_add(ud, "%s|%s|%.2f;", r->train_name, r->text_type, r->value);
  return 0;
}

static void train(cl_store *s, int64_t run, const char *name, const char *key, int steps, int done,
                  const char *status, const char *hash) {
  cl_error err = {0};
  cl_train_job_info ti = {.run_id = run, .name = name, .content_key = key, .parent = "base", .parent_hash = "P",
                          .out_dir = "trained/x", .spec_json = "{}", .mixture_json = "[]", .n_examples = 8,
                          .steps = steps};
  int64_t tid = 0;
  CHECK_OK(cl_store_train_begin(s, &ti, &tid, &err), err);
  for (int i = 0; i < done; i++) {
    cl_train_step_row r = {.step = i, .epoch = 0, .loss = 3.0 - i, .lr = 1e-4, .grad_norm = -1, .text_type = "common"};
    CHECK_OK(cl_store_train_steps(s, tid, &r, 1, &err), err);
  }
  CHECK_OK(cl_store_train_end(s, tid, status, hash, &err), err);
}

static void eval(cl_store *s, int64_t run, const char *job, const char *model, const char *hash, const char *tt,
                 double v) {
  cl_error err = {0};
  cl_eval_info ei = {.experiment = "x", .model = model, .model_hash = hash, .dataset = "d", .protocol = "zero_shot",
                     .text_type = tt, .n_examples = 10};
  int64_t id = 0;
  CHECK_OK(cl_store_eval_begin(s, run, &ei, &id, &err), err);
  CHECK_OK(cl_store_eval_set_job(s, id, job, &err), err);
  CHECK_OK(cl_store_add_result(s, id, -1, "top1", v, &err), err);
  CHECK_OK(cl_store_eval_commit(s, id, &err), err);
}

/* A shard database: shard index of 2, its evaluation, and the trainings fn records. */
static void shard(const char *path, const char *exp, int index, void (*fn)(cl_store *, int64_t)) {
  cl_error err = {0};
  cl_store *s = NULL;
  CHECK_OK(cl_store_open(path, &s, &err), err);
  cl_run_info ri = {.file = exp, .file_hash = "F", .backend = "cpu", .precision = "fp32", .shard_index = index,
                    .shard_count = 2};
  int64_t run = 0;
  int resumed = 0, live = 0;
  CHECK_OK(cl_store_begin_or_resume(s, &ri, &run, &resumed, &live, &err), err);
  CHECK_OK(cl_store_run_set_plan(s, run, "job-common\t1\njob-sci\t1\n", "PLAN", 1, &err), err);
  fn(s, run);
  eval(s, run, index ? "job-sci" : "job-common", "taxo", "H1", index ? "scientific" : "common", 0.25 + index);
  CHECK_OK(cl_store_run_end(s, run, "complete", &err), err);
  cl_store_close(s);
}

/* shard 0 trained taxo; shard 1 recorded it from the cache and was interrupted training mix */
static void trained0(cl_store *s, int64_t run) { train(s, run, "taxo", "K1", 4, 4, "complete", "H1"); }
static void trained1(cl_store *s, int64_t run) {
  train(s, run, "taxo", "K1", 4, 4, "complete", "H1");
  train(s, run, "mix", "K2", 4, 2, "interrupted", NULL);
}
/* shard 1 rerun elsewhere: mix finished */
static void trained1b(cl_store *s, int64_t run) {
  train(s, run, "taxo", "K1", 4, 4, "complete", "H1");
  train(s, run, "mix", "K2", 4, 4, "complete", "H2");
}

static void merge(cl_store *t, const char *a, const char *b, int64_t added, int64_t same) {
  cl_error err = {0};
  cl_merge_report r;
  const char *paths[2] = {a, b};
  CHECK_OK(cl_store_merge(t, paths, 2, &r, &err), err);
  CHECK_EQ_INT(r.trainings_added, added);
  CHECK_EQ_INT(r.trainings_same, same);
  CHECK(r.complete);
  cl_merge_report_free(&r);
}

static seen jobs_of(cl_store *t, int64_t run) {
  cl_error err = {0};
  seen js = {0};
  CHECK_OK(cl_store_each_train_job(t, run, job_fn, &js, &err), err);
  return js;
}

int main(void) {
  cl_error err = {0};
  char tmp[64] = "/tmp/cl_test_merge_trainXXXXXX";
  if (!mkdtemp(tmp)) return 1;
  char s0[128], s1[128], s1b[128], m[128], exp[128];
  snprintf(s0, sizeof s0, "%s/s0.db", tmp);
  snprintf(s1, sizeof s1, "%s/s1.db", tmp);
  snprintf(s1b, sizeof s1b, "%s/s1b.db", tmp);
  snprintf(m, sizeof m, "%s/m.db", tmp);
  snprintf(exp, sizeof exp, "%s/x.lua", tmp);
  FILE *f = fopen(exp, "w");
  fputs("-- an experiment\n", f);
  fclose(f);
  shard(s0, exp, 0, trained0);
  shard(s1, exp, 1, trained1);
  shard(s1b, exp, 1, trained1b);

  cl_store *t = NULL;
  CHECK_OK(cl_store_open(m, &t, &err), err);
  merge(t, s0, s1, 2, 1); /* taxo once (shard 1's record of it is the same model), mix */
  seen js = jobs_of(t, 1);
  CHECK_STR(js.text, "taxo|K1|complete|4/4|H1|0.00;mix|K2|interrupted|2/4|-|2.00;");
  /* the trained model's evaluations of both shards are linked to its job */
  seen es = {0};
  CHECK_OK(cl_store_each_train_eval(t, 1, "top1", eval_fn, &es, &err), err);
  CHECK_STR(es.text, "taxo|common|0.25;taxo|scientific|1.25;");
  merge(t, s0, s1, 0, 3); /* again: nothing */
  js = jobs_of(t, 1);
  CHECK_EQ_INT(js.n, 2);

  /* shard 1 rerun where mix finished: its complete record replaces the interrupted one */
  merge(t, s0, s1b, 1, 2);
  js = jobs_of(t, 1);
  CHECK_STR(js.text, "taxo|K1|complete|4/4|H1|0.00;mix|K2|complete|4/4|H2|0.00;");
  /* every step once: taxo's 4 and mix's 4 (none of the interrupted record's left over) */
  sqlite3 *db = NULL;
  CHECK(sqlite3_open_v2(m, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
  sqlite3_stmt *st = NULL;
  CHECK(sqlite3_prepare_v2(db, "SELECT count(*), count(DISTINCT train_id) FROM train_steps", -1, &st, NULL) ==
        SQLITE_OK);
  CHECK(sqlite3_step(st) == SQLITE_ROW);
  CHECK_EQ_INT(sqlite3_column_int(st, 0), 8);
  CHECK_EQ_INT(sqlite3_column_int(st, 1), 2);
  sqlite3_finalize(st);
  sqlite3_close(db);
  int n = 0;
  CHECK_OK(cl_store_each_train_step(t, 1, step_count, &n, &err), err);
  CHECK_EQ_INT(n, 4);
  /* the earlier, interrupted shard 1 merged once more adds nothing: mix got further */
  merge(t, s0, s1, 0, 3);
  CHECK_EQ_INT(jobs_of(t, 1).n, 2);
  cl_store_close(t);

  char cmd[192];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
  if (!cl_test_failures && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
  return cl_test_done("test_store_merge_train");
}
