/* clade export: a run's per-example predictions with where their embeddings came from, as one
 * CSV for pandas (RFC 4180 through libcsv). Data to stdout or --out FILE (atomically); one
 * error line to stderr. Exit 0, 1 on a runtime error, 2 on usage. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cl_cli.h"
#include "store/cl_store.h"

/* The run's provenance (one row) and each evaluation's checkpoint hash. */
typedef struct export_ctx {
  FILE *out;
  char *backend, *device, *precision, *decode, *version, *commit, *started;
  int dirty;
  struct {
    int64_t id;
    char *hash, *config; /* model_hash, config_hash */
  } *ev;
  int nev, cap;
  int64_t rows;
} export_ctx;

static char *dup0(const char *s) { return cl_strdup(s ? s : ""); }

static int run_row(const cl_run_row *r, void *ud, cl_error *e) {
  (void)e;
  export_ctx *c = ud;
  c->backend = dup0(r->backend), c->device = dup0(r->device), c->precision = dup0(r->precision);
  c->decode = dup0(r->decode), c->version = dup0(r->clade_version), c->commit = dup0(r->git_commit);
  c->started = dup0(r->started_at);
  c->dirty = r->git_dirty;
  return CL_OK;
}

static int result_row(const cl_result_row *r, void *ud, cl_error *e) {
  export_ctx *c = ud;
  if (c->nev && c->ev[c->nev - 1].id == r->eval_id) return CL_OK;
  if (c->nev == c->cap) {
    c->cap = c->cap ? 2 * c->cap : 64;
    void *nv = realloc(c->ev, (size_t)c->cap * sizeof *c->ev);
    if (!nv) return cl_err(e, CL_ENOMEM, "out of memory");
    c->ev = nv;
  }
  c->ev[c->nev].id = r->eval_id;
  c->ev[c->nev].hash = dup0(r->model_hash);
  c->ev[c->nev].config = dup0(r->config_hash);
  c->nev++;
  return CL_OK;
}

/* The model and config hashes of an evaluation ("" when unknown). */
static const char *hash_of(const export_ctx *c, int64_t eval_id, int config) {
  for (int i = 0; i < c->nev; i++)
    if (c->ev[i].id == eval_id) return config ? c->ev[i].config : c->ev[i].hash;
  return "";
}

static int pred_row(const cl_prediction_row *r, void *ud, cl_error *e) {
  (void)e;
  export_ctx *c = ud;
  FILE *f = c->out;
  fprintf(f, "%lld,%lld,", (long long)r->run_id, (long long)r->eval_id);
  const char *a[] = {r->experiment, r->model, r->dataset, r->protocol, r->text_type};
  for (int i = 0; i < 5; i++) cl_cli_csv_field(f, a[i]), fputc(',', f);
  fprintf(f, "%d,", r->shots);
  if (r->trial >= 0) fprintf(f, "%d", r->trial);
  fprintf(f, ",%d,", r->example);
  const char *b[] = {r->filepath, r->label, r->prediction};
  for (int i = 0; i < 3; i++) cl_cli_csv_field(f, b[i]), fputc(',', f);
  fprintf(f, "%d,", r->correct ? 1 : 0);
  if (r->hit) fprintf(f, "%d", r->hit);
  fputc(',', f);
  const char *x[] = {r->query, r->key, r->split, r->rank, r->retrieved, hash_of(c, r->eval_id, 0), c->backend,
                     c->device, c->precision, c->decode, c->version, c->commit};
  for (int i = 0; i < 12; i++) cl_cli_csv_field(f, x[i]), fputc(',', f);
  if (c->dirty >= 0) fprintf(f, "%d", c->dirty);
  fputc(',', f);
  cl_cli_csv_field(f, c->started);
  fputc(',', f);
  cl_cli_csv_field(f, hash_of(c, r->eval_id, 1));
  fputc('\n', f);
  c->rows++;
  return CL_OK;
}

static int export_run(cl_store *s, int64_t run, FILE *f, int64_t *rows, cl_error *e) {
  export_ctx c = {.out = f, .dirty = -1};
  int rc = cl_store_each_run(s, run, run_row, &c, e);
  if (rc == CL_OK) rc = cl_store_each_result(s, run, result_row, &c, e);
  if (rc == CL_OK) {
    fputs("run,eval,experiment,model,dataset,protocol,text_type,shots,trial,example,filepath,label,prediction,"
          "correct,hit,query,key,split,rank,retrieved,model_hash,backend,device,precision,decode,clade_version,"
          "git_commit,git_dirty,run_started,config_hash\n",
          f);
    rc = cl_store_each_prediction(s, run, pred_row, &c, e);
  }
  *rows = c.rows;
  free(c.backend), free(c.device), free(c.precision), free(c.decode), free(c.version), free(c.commit);
  free(c.started);
  for (int i = 0; i < c.nev; i++) free(c.ev[i].hash), free(c.ev[i].config);
  free(c.ev);
  return rc;
}

int cl_cli_db_out_run(const char *cmd, int argc, char **argv, int *i, const char **db, const char **out,
                      int64_t *run) {
  const char *a = argv[*i], *v = NULL;
  static const char *const names[] = {"--db", "--out", "--run"};
  const int which = cl_cli_option(cmd, argc, argv, i, names, 3, &v);
  if (which == -2) return cl_cli_usage(cmd);
  if (which < 0) {
    cl_cli_fail("%s: unknown %s '%s'", cmd, a[0] == '-' ? "option" : "argument", a);
    return cl_cli_usage(cmd);
  }
  if (which < 2 && !*v) {
    cl_cli_fail("%s: %s needs a path", cmd, names[which]);
    return cl_cli_usage(cmd);
  }
  if (which == 0) *db = v;
  else if (which == 1) *out = v;
  else {
    char *end;
    errno = 0;
    long long id = strtoll(v, &end, 10);
    if (errno || end == v || *end || id <= 0) {
      cl_cli_fail("%s: --run: '%s' is not a positive integer", cmd, v);
      return cl_cli_usage(cmd);
    }
    *run = id;
  }
  return 0;
}

int cl_cmd_export(int argc, char **argv) {
  const char *db = CL_STORE_DEFAULT_PATH, *out = NULL;
  int64_t run = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      char *hv[] = {"help", "export"};
      return cl_cmd_help(2, hv);
    }
    int rc = cl_cli_db_out_run("export", argc, argv, &i, &db, &out, &run);
    if (rc) return rc;
  }
  cl_store *s = NULL;
  cl_error e = {0};
  if (cl_store_open_existing(db, &s, &e) != CL_OK) {
    cl_cli_fail("export: %s", e.msg);
    return 1;
  }
  int rc = run ? cl_store_check_run(s, run, &e) : cl_store_latest_run(s, &run, &e);
  char *tmp = out ? cl_asprintf("%s.tmp.%ld", out, (long)getpid()) : NULL;
  FILE *f = stdout;
  if (rc == CL_OK && tmp && !(f = fopen(tmp, "w")))
    rc = cl_err(&e, CL_EIO, "writing %s (through %s): %s", out, tmp, strerror(errno));
  int64_t rows = 0;
  if (rc == CL_OK) rc = export_run(s, run, f, &rows, &e);
  if (rc == CL_OK && (fflush(f) != 0 || ferror(f)))
    rc = cl_err(&e, CL_EIO, "%s: writing: %s", tmp ? tmp : "stdout", strerror(errno));
  if (f && f != stdout && fclose(f) != 0 && rc == CL_OK) rc = cl_err(&e, CL_EIO, "%s: closing: %s", tmp, strerror(errno));
  if (rc == CL_OK && tmp && rename(tmp, out) != 0)
    rc = cl_err(&e, CL_EIO, "renaming %s to %s: %s", tmp, out, strerror(errno));
  if (rc != CL_OK && tmp) unlink(tmp);
  free(tmp);
  cl_store_close(s);
  if (rc != CL_OK) {
    cl_cli_fail("export: %s", e.msg);
    return 1;
  }
  if (out) fprintf(stderr, "clade: %lld predictions of run %lld written to %s\n", (long long)rows, (long long)run, out);
  return 0;
}
