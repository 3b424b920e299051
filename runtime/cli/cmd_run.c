/* clade run | check | classes: experiment files through the Lua runner. */
#define _GNU_SOURCE
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cl_cli.h"
#include "lua/cl_lua.h"
#include "store/cl_store.h"

typedef struct {
  const char *file, *db, *backend, *dataset, *text_type, *precision;
  int quiet;
} run_args;

static int parse(int argc, char **argv, run_args *a, const char *cmd) {
  memset(a, 0, sizeof *a);
  a->db = "results/clade.db";
  for (int i = 1; i < argc; i++) {
    const char *s = argv[i];
    const char **slot = !strcmp(s, "--db") ? &a->db : !strcmp(s, "--backend") ? &a->backend
                      : !strcmp(s, "--dataset") ? &a->dataset : !strcmp(s, "--text-type") ? &a->text_type
                      : !strcmp(s, "--precision") ? &a->precision : NULL;
    if (slot) {
      if (i + 1 >= argc) {
        cl_cli_fail("%s: %s needs a value", cmd, s);
        return 2;
      }
      *slot = argv[++i];
    } else if (!strcmp(s, "--quiet") || !strcmp(s, "-q")) {
      a->quiet = 1;
    } else if (s[0] == '-') {
      cl_cli_fail("%s: unknown option %s", cmd, s);
      return cl_cli_usage(cmd);
    } else if (!a->file) {
      a->file = s;
    } else {
      cl_cli_fail("%s: one experiment file at a time (got %s and %s)", cmd, a->file, s);
      return 2;
    }
  }
  if (!a->file) {
    cl_cli_fail("%s: no experiment file", cmd);
    return cl_cli_usage(cmd);
  }
  return 0;
}

/* Load the experiment file into a fresh sandbox. */
static int load(const run_args *a, cl_lua_run *run, cl_lua **out) {
  char abs[PATH_MAX];
  if (!realpath(a->file, abs)) {
    cl_cli_fail("%s: no such experiment file", a->file);
    return 1;
  }
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", abs);
  char *slash = strrchr(dir, '/');
  if (slash) *slash = 0;
  cl_error e;
  if (cl_lua_new(out, dir, run, &e) != CL_OK || cl_lua_dofile(*out, a->file, &e) != CL_OK) {
    cl_cli_fail("%s", e.msg);
    cl_lua_free(*out);
    *out = NULL;
    return 1;
  }
  return 0;
}

int cl_cmd_run(int argc, char **argv) {
  run_args a;
  int rc = parse(argc, argv, &a, "run");
  if (rc) return rc;
  cl_lua_run run = {.backend = a.backend ? a.backend : "auto", .precision = a.precision ? a.precision : "fp32",
                    .quiet = a.quiet};
  cl_lua *lua = NULL;
  if (load(&a, &run, &lua)) return 1; /* a broken file records no run */
  cl_error e;
  cl_store *st;
  if (cl_store_open(a.db, &st, &e) != CL_OK) {
    cl_cli_fail("%s", e.msg);
    cl_lua_free(lua);
    return 1;
  }
  cl_run_info ri = {.file = a.file, .backend = run.backend, .precision = run.precision};
  if (cl_store_run_begin(st, &ri, &run.run_id, &e) != CL_OK) {
    cl_cli_fail("%s", e.msg);
    cl_store_close(st);
    cl_lua_free(lua);
    return 1;
  }
  run.store = st;
  if (!a.quiet) fprintf(stderr, "clade: run %lld of %s into %s\n", (long long)run.run_id, a.file, a.db);
  int ok = cl_lua_call(lua, "clade.runner", "run", 0, NULL, NULL, &e) == CL_OK;
  if (!ok) cl_cli_fail("%s", e.msg);
  cl_run_stats stats = {.images_encoded = run.images_encoded, .texts_encoded = run.texts_encoded};
  cl_error e2;
  if (cl_store_run_set_stats(st, run.run_id, &stats, &e2) != CL_OK) cl_cli_fail("%s", e2.msg);
  if (cl_store_run_end(st, run.run_id, ok ? "complete" : "failed", &e2) != CL_OK) {
    cl_cli_fail("%s", e2.msg);
    ok = 0;
  }
  if (!a.quiet && ok) fprintf(stderr, "clade: run %lld complete (`clade results --run %lld`)\n",
                              (long long)run.run_id, (long long)run.run_id);
  cl_lua_free(lua);
  cl_store_close(st);
  return ok ? 0 : 1;
}

int cl_cmd_check(int argc, char **argv) {
  run_args a;
  int rc = parse(argc, argv, &a, "check");
  if (rc) return rc;
  cl_lua_run run = {.quiet = a.quiet};
  cl_lua *lua;
  if (load(&a, &run, &lua)) return 1;
  cl_error e;
  int bad = 0;
  rc = cl_lua_call(lua, "clade.runner", "check", 0, NULL, &bad, &e);
  if (rc != CL_OK) cl_cli_fail("%s", e.msg);
  cl_lua_free(lua);
  return rc != CL_OK || bad ? 1 : 0;
}

int cl_cmd_classes(int argc, char **argv) {
  run_args a;
  int rc = parse(argc, argv, &a, "classes");
  if (rc) return rc;
  if (!a.dataset || !a.text_type) {
    cl_cli_fail("classes: --dataset NAME and --text-type TYPE are required");
    return cl_cli_usage("classes");
  }
  cl_lua_run run = {.quiet = 1};
  cl_lua *lua;
  if (load(&a, &run, &lua)) return 1;
  cl_error e;
  const char *args[2] = {a.dataset, a.text_type};
  rc = cl_lua_call(lua, "clade.runner", "classes", 2, args, NULL, &e);
  if (rc != CL_OK) cl_cli_fail("%s", e.msg);
  cl_lua_free(lua);
  return rc != CL_OK;
}
