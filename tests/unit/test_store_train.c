/* Training records (schema 7): a training job and its steps written and read back, a resumed
 * training goes on in its row and replaces the steps it redoes, the trained model's
 * evaluations are found through the trained checkpoint's hash (also from a later run that
 * took the model from the cache), and `clade log` lists the jobs (when CLADE names the
 * binary). */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cl_test.h"
#include "store/cl_store.h"

typedef cl_test_seen seen;

static int job_fn(const cl_train_job_row *r, void *ud, cl_error *e) {
  (void)e;
  cl_test_seen_add(ud, "%s|%s|%s|%lld/%lld|%s|%.3f;", r->name, r->parent, r->status, (long long)r->steps_done,
                   (long long)r->steps, r->model_hash ? r->model_hash : "-", r->last_loss);
  return 0;
}

static int step_fn(const cl_train_step_row *r, void *ud, cl_error *e) {
  (void)e;
  cl_test_seen_add(ud, "%lld:%d:%.2f:%g:%s:%s;", (long long)r->step, r->epoch, r->loss, r->lr, r->text_type,
                   r->draws_json ? r->draws_json : "-");
  return 0;
}

static int eval_fn(const cl_train_eval_row *r, void *ud, cl_error *e) {
  (void)e;
  cl_test_seen_add(ud, "%s|%s|%s|%.2f;", r->train_name, r->model, r->text_type, r->value);
  return 0;
}

static int64_t add_eval(cl_store *s, int64_t run, const char *model, const char *hash, const char *tt, double v) {
  cl_error err = {0};
  cl_eval_info ei = {.experiment = "ablation", .model = model, .model_hash = hash, .dataset = "test",
                     .protocol = "zero_shot", .text_type = tt, .n_examples = 10};
  int64_t id = 0;
  CHECK_OK(cl_store_eval_begin(s, run, &ei, &id, &err), err);
  CHECK_OK(cl_store_add_result(s, id, -1, "top1", v, &err), err);
  CHECK_OK(cl_store_eval_commit(s, id, &err), err);
  return id;
}

int main(void) {
  cl_error err = {0};
  char tmp[64] = "/tmp/cl_test_store_trainXXXXXX";
  if (!mkdtemp(tmp)) return 1;
  char db[128], exp[128];
  snprintf(db, sizeof db, "%s/r.db", tmp);
  snprintf(exp, sizeof exp, "%s/x.lua", tmp);
  FILE *f = fopen(exp, "w");
  fputs("-- an experiment\n", f);
  fclose(f);

  cl_store *s = NULL;
  CHECK_OK(cl_store_open(db, &s, &err), err);
  int v = 0;
  CHECK_OK(cl_store_schema_version(s, &v, &err), err);
  CHECK_EQ_INT(v, CL_STORE_SCHEMA_VERSION); /* the training tables are there from schema 7 on */
  CHECK(v >= 7);
  int64_t run = 0;
  cl_run_info ri = {.file = exp, .backend = "cpu", .precision = "fp32"};
  CHECK_OK(cl_store_run_begin(s, &ri, &run, &err), err);

  cl_train_job_info ti = {.run_id = run, .name = "taxo", .content_key = "k1", .parent = "base", .parent_hash = "p",
                          .out_dir = "/x/k1", .spec_json = "{\"epochs\":2}",
                          .mixture_json = "[{\"type\":\"taxonomic\",\"weight\":1}]",
                          .data_json = "[{\"dataset\":\"d\",\"split\":\"train\",\"examples\":8}]", .n_examples = 8,
                          .steps = 4};
  int64_t tid = 0, tid2 = 0;
  CHECK_OK(cl_store_train_begin(s, &ti, &tid, &err), err);
  cl_train_step_row rows[3] = {
      {.step = 0, .epoch = 0, .loss = 2.5, .lr = 1e-4, .grad_norm = -1, .text_type = "taxonomic"},
      {.step = 1, .epoch = 0, .loss = 2.25, .lr = 2e-4, .grad_norm = 1.5, .text_type = "taxonomic"},
      {.step = 2, .epoch = 1, .loss = 9, .lr = 3e-4, .grad_norm = -1, .text_type = "",
       .draws_json = "{\"types\":[0,1]}"},
  };
  CHECK_OK(cl_store_train_steps(s, tid, rows, 3, &err), err);
  CHECK_OK(cl_store_train_end(s, tid, "interrupted", NULL, &err), err);
  /* the rerun of the same content in the same run goes on in the same row */
  CHECK_OK(cl_store_train_begin(s, &ti, &tid2, &err), err);
  CHECK_EQ_INT((int)tid2, (int)tid);
  rows[2].loss = 2.0; /* the redone step replaces the one recorded before the interruption */
  cl_train_step_row last = {.step = 3, .epoch = 1, .loss = 1.75, .lr = 0, .grad_norm = -1, .text_type = "common"};
  CHECK_OK(cl_store_train_steps(s, tid, &rows[2], 1, &err), err);
  CHECK_OK(cl_store_train_steps(s, tid, &last, 1, &err), err);
  CHECK_OK(cl_store_train_end(s, tid, "complete", "HASH", &err), err);
  CHECK(cl_store_train_end(s, tid, "done", NULL, &err) == CL_EINVAL);

  seen js = {0}, ss = {0}, es = {0};
  CHECK_OK(cl_store_each_train_job(s, run, job_fn, &js, &err), err);
  CHECK_STR(js.text, "taxo|base|complete|4/4|HASH|1.750;");
  CHECK_OK(cl_store_each_train_step(s, tid, step_fn, &ss, &err), err);
  CHECK_STR(ss.text, "0:0:2.50:0.0001:taxonomic:-;1:0:2.25:0.0002:taxonomic:-;2:1:2.00:0.0003::{\"types\":[0,1]};"
                     "3:1:1.75:0:common:-;");

  /* evaluations of the trained model (by its checkpoint hash), not of others */
  add_eval(s, run, "taxo", "HASH", "common", 0.25);
  add_eval(s, run, "taxo", "HASH", "taxonomic", 0.75);
  add_eval(s, run, "base", "OTHER", "common", 0.5);
  CHECK_OK(cl_store_each_train_eval(s, run, "top1", eval_fn, &es, &err), err);
  CHECK_STR(es.text, "taxo|taxo|common|0.25;taxo|taxo|taxonomic|0.75;");
  CHECK_OK(cl_store_run_end(s, run, "complete", &err), err);

  /* a later run that took the trained model from the cache: no new job, still linked */
  int64_t run2 = 0;
  CHECK_OK(cl_store_run_begin(s, &ri, &run2, &err), err);
  add_eval(s, run2, "taxo", "HASH", "scientific", 0.5);
  memset(&es, 0, sizeof es);
  CHECK_OK(cl_store_each_train_eval(s, run2, "top1", eval_fn, &es, &err), err);
  CHECK_STR(es.text, "taxo|taxo|scientific|0.50;");
  memset(&js, 0, sizeof js);
  CHECK_OK(cl_store_each_train_job(s, run2, job_fn, &js, &err), err);
  CHECK_EQ_INT(js.n, 0);
  CHECK_OK(cl_store_run_end(s, run2, "complete", &err), err);
  CHECK(cl_store_each_train_eval(s, 99, "top1", eval_fn, &es, &err) == CL_EINVAL);
  cl_store_close(s);

  const char *clade = getenv("CLADE");
  if (clade && *clade) {
    char cmd[1024], out[4096] = {0};
    snprintf(cmd, sizeof cmd, "'%s' log --db '%s'", clade, db);
    FILE *p = popen(cmd, "r");
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    CHECK_EQ_INT(pclose(p), 0);
    CHECK_MSG(strstr(out, "  train 'taxo' from base") && strstr(out, "complete") && strstr(out, "4/4 steps") &&
                  strstr(out, "loss 1.7500"),
              "%s", out);
    snprintf(cmd, sizeof cmd, "'%s' log --db '%s' --format json", clade, db);
    p = popen(cmd, "r");
    n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    CHECK_EQ_INT(pclose(p), 0);
    CHECK_MSG(strstr(out, "\"training\":[{\"id\":1,\"name\":\"taxo\",\"parent\":\"base\"") &&
                  strstr(out, "\"spec\":{\"epochs\":2}") && strstr(out, "\"training\":[]"),
              "%s", out);
    /* -n 1 keeps the last run only */
    snprintf(cmd, sizeof cmd, "'%s' log --db '%s' -n 1", clade, db);
    p = popen(cmd, "r");
    n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    pclose(p);
    CHECK_MSG(out[0] == '2' && !strstr(out, "train '"), "%s", out);
  }
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
  if (!cl_test_failures && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
  return cl_test_done("test_store_train");
}
