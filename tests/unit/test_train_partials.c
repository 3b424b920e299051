/* Unfinished trainings' work folders (trained/<key>.partial beside a results database): found
 * with their size and whether a live job holds their lock; the database tells a stale one
 * (its declaration changed: the same name from the same file trained since under another key)
 * from a resumable one; `clade log` lists each with the command that removes it, none for one
 * being trained, and removes nothing. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cl_test.h"
#include "store/cl_store.h"
#include "train/cl_train_job.h"

static void put(const char *path, size_t n) {
  FILE *f = fopen(path, "w");
  CHECK(f != NULL);
  for (size_t i = 0; f && i < n; i++) fputc('x', f);
  if (f) fclose(f);
}

static void train(cl_store *s, int64_t run, const char *name, const char *key, int done, const char *status,
                  const char *hash) {
  cl_error err = {0};
  cl_train_job_info ti = {.run_id = run, .name = name, .content_key = key, .parent = "base", .spec_json = "{}",
                          .mixture_json = "[]", .n_examples = 8, .steps = 4};
  int64_t tid = 0;
  CHECK_OK(cl_store_train_begin(s, &ti, &tid, &err), err);
  for (int i = 0; i < done; i++) {
    cl_train_step_row r = {.step = i, .loss = 1, .lr = 1e-4, .grad_norm = -1, .text_type = "common"};
    CHECK_OK(cl_store_train_steps(s, tid, &r, 1, &err), err);
  }
  CHECK_OK(cl_store_train_end(s, tid, status, hash, &err), err);
}

int main(void) {
  cl_error err = {0};
  char tmp[64] = "/tmp/cl_test_partialsXXXXXX";
  if (!mkdtemp(tmp)) return 1;
  char p[512], db[256], root[256];
  snprintf(db, sizeof db, "%s/r.db", tmp);
  snprintf(root, sizeof root, "%s/trained", tmp);
  snprintf(p, sizeof p, "%s/x.lua", tmp);
  put(p, 3);

  /* run 1 trained 'taxo' under key aaaa (interrupted); the file changed and run 2 trained
   * 'taxo' under key bbbb, and began 'mix' (cccc, interrupted) */
  cl_store *s = NULL;
  CHECK_OK(cl_store_open(db, &s, &err), err);
  cl_run_info ri = {.file = p, .backend = "cpu", .precision = "fp32"};
  int64_t r1 = 0, r2 = 0;
  CHECK_OK(cl_store_run_begin(s, &ri, &r1, &err), err);
  train(s, r1, "taxo", "aaaa0000aaaa0000", 2, "interrupted", NULL);
  CHECK_OK(cl_store_run_end(s, r1, "interrupted", &err), err);
  CHECK_OK(cl_store_run_begin(s, &ri, &r2, &err), err);
  train(s, r2, "taxo", "bbbb0000bbbb0000", 4, "complete", "H");
  train(s, r2, "mix", "cccc0000cccc0000", 1, "interrupted", NULL);
  CHECK_OK(cl_store_run_end(s, r2, "interrupted", &err), err);

  /* no trained/ yet: none */
  cl_train_partial *pa = NULL;
  int n = -1;
  CHECK_OK(cl_train_partials(root, &pa, &n, &err), err);
  CHECK_EQ_INT(n, 0);
  cl_train_partials_free(pa, n);

  CHECK(mkdir(root, 0777) == 0);
  snprintf(p, sizeof p, "%s/aaaa0000aaaa0000.partial", root);
  CHECK(mkdir(p, 0777) == 0);
  snprintf(p, sizeof p, "%s/aaaa0000aaaa0000.partial/state-2", root);
  CHECK(mkdir(p, 0777) == 0);
  snprintf(p, sizeof p, "%s/aaaa0000aaaa0000.partial/state-2/w", root);
  put(p, 1500);
  snprintf(p, sizeof p, "%s/aaaa0000aaaa0000.partial/state", root);
  put(p, 7);
  snprintf(p, sizeof p, "%s/aaaa0000aaaa0000.lock", root);
  put(p, 0);
  snprintf(p, sizeof p, "%s/cccc0000cccc0000.partial", root);
  CHECK(mkdir(p, 0777) == 0);
  snprintf(p, sizeof p, "%s/cccc0000cccc0000.partial/state", root);
  put(p, 10);
  snprintf(p, sizeof p, "%s/9999.partial", root); /* no record here; a job holds its lock */
  CHECK(mkdir(p, 0777) == 0);
  snprintf(p, sizeof p, "%s/9999.lock", root);
  int held = open(p, O_RDWR | O_CREAT, 0666);
  CHECK(held >= 0 && flock(held, LOCK_EX) == 0);
  snprintf(p, sizeof p, "%s/bbbb0000bbbb0000", root); /* a trained model: not a work folder */
  CHECK(mkdir(p, 0777) == 0);
  snprintf(p, sizeof p, "%s/file.partial", root); /* not a folder */
  put(p, 1);

  CHECK_OK(cl_train_partials(root, &pa, &n, &err), err);
  CHECK_EQ_INT(n, 3);
  if (n == 3) {
    CHECK_STR(pa[0].key, "9999");
    CHECK_STR(pa[1].key, "aaaa0000aaaa0000");
    CHECK_STR(pa[2].key, "cccc0000cccc0000");
    CHECK_EQ_INT(pa[1].bytes, 1507);
    CHECK_EQ_INT(pa[2].bytes, 10);
    CHECK(pa[0].in_use && !pa[1].in_use && !pa[2].in_use);
  }
  cl_train_partials_free(pa, n);
  snprintf(p, sizeof p, "%s/cccc0000cccc0000.lock", root); /* the probe never creates a lock */
  CHECK(access(p, F_OK) != 0);

  cl_train_key_info ki;
  CHECK_OK(cl_store_train_key_info(s, "aaaa0000aaaa0000", &ki, &err), err);
  CHECK(ki.id > 0 && ki.run_id == r1 && ki.superseded_run == r2 && ki.steps_done == 2);
  CHECK_STR(ki.name, "taxo");
  CHECK_STR(ki.status, "interrupted");
  CHECK_OK(cl_store_train_key_info(s, "cccc0000cccc0000", &ki, &err), err);
  CHECK(ki.id > 0 && ki.superseded_run == 0);
  CHECK_OK(cl_store_train_key_info(s, "9999", &ki, &err), err);
  CHECK(ki.id == 0);
  cl_store_close(s);

  const char *clade = getenv("CLADE");
  if (clade && *clade) {
    char cmd[1024], out[8192] = {0}, want[1024];
    snprintf(cmd, sizeof cmd, "'%s' log --db '%s'", clade, db);
    FILE *f = popen(cmd, "r");
    size_t got = fread(out, 1, sizeof out - 1, f);
    out[got] = 0;
    CHECK_EQ_INT(pclose(f), 0);
    snprintf(want, sizeof want, "\nunfinished trainings in %s (", root);
    CHECK_MSG(strstr(out, want), "%s", out);
    CHECK_MSG(strstr(out, "\n  aaaa0000aaaa.partial  1.5 kB  train 'taxo' (run 1, interrupted, 2 of 4 steps): stale, "
                          "its declaration changed and 'taxo' was trained since (run 2)\n"),
              "%s", out);
    snprintf(want, sizeof want, "\n    remove: rm -rf '%s/aaaa0000aaaa0000.partial'\n", root);
    CHECK_MSG(strstr(out, want), "%s", out);
    CHECK_MSG(strstr(out, "\n  cccc0000cccc.partial  10 B  train 'mix' (run 2, interrupted, 1 of 4 steps)\n"), "%s",
              out);
    CHECK_MSG(strstr(out, "\n  9999.partial  0 B  no training of it in this database: being trained now\n"), "%s",
              out);
    snprintf(want, sizeof want, "rm -rf '%s/9999", root);
    CHECK_MSG(!strstr(out, want), "%s", out);
    /* nothing removed */
    snprintf(p, sizeof p, "%s/aaaa0000aaaa0000.partial/state", root);
    CHECK(access(p, F_OK) == 0);
    /* json lists runs only */
    snprintf(cmd, sizeof cmd, "'%s' log --db '%s' --format json", clade, db);
    f = popen(cmd, "r");
    got = fread(out, 1, sizeof out - 1, f);
    out[got] = 0;
    CHECK_EQ_INT(pclose(f), 0);
    CHECK_MSG(out[0] == '[' && !strstr(out, "unfinished trainings"), "%s", out);
  }
  close(held);
  char cmd[192];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
  if (!cl_test_failures && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
  return cl_test_done("test_train_partials");
}
