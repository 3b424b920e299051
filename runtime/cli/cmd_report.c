/* clade report: one self-contained HTML page about a run (see report/cl_report.h). Nothing
 * on stdout; the path written and any error on stderr. Exit 0, 1 on a runtime error, 2 on
 * usage. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cl_cli.h"
#include "report/cl_report.h"
#include "report/cl_stats.h"

/* The default run: the latest with evaluations (a `clade bench` run has none to show). */
static int latest_with_results(const cl_run_row *r, void *ud, cl_error *e) {
  (void)e;
  if (r->n_evaluations > 0) *(int64_t *)ud = r->id;
  return 0;
}

int cl_cmd_report(int argc, char **argv) {
  const char *db = CL_STORE_DEFAULT_PATH, *out = NULL;
  int64_t run = 0;
  cl_stats_opts ci;
  cl_cli_ci_defaults(&ci);
  for (int i = 1; i < argc; i++) {
    int took = cl_cli_ci_option("report", argc, argv, &i, &ci);
    if (took < 0) return cl_cli_usage("report");
    if (took) continue;
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      char *hv[] = {"help", "report"};
      return cl_cmd_help(2, hv);
    }
    int bad = cl_cli_db_out_run("report", argc, argv, &i, &db, &out, &run);
    if (bad) return bad;
  }
  if (!out) {
    cl_cli_fail("report: --out FILE.html is required");
    return cl_cli_usage("report");
  }
  cl_store *s = NULL;
  cl_error e = {0};
  if (cl_store_open_existing(db, &s, &e) != CL_OK) {
    cl_cli_fail("report: %s", e.msg);
    return 1;
  }
  int rc;
  if (run) {
    rc = cl_store_check_run(s, run, &e);
  } else {
    rc = cl_store_each_run(s, 0, latest_with_results, &run, &e);
    if (rc == CL_OK && !run) rc = cl_store_latest_run(s, &run, &e); /* none has results */
  }
  if (rc == CL_OK) rc = cl_report_write_file(s, run, &ci, out, &e);
  cl_store_close(s);
  if (rc != CL_OK) {
    cl_cli_fail("report: %s", e.msg);
    return 1;
  }
  fprintf(stderr, "clade: report of run %lld written to %s\n", (long long)run, out);
  return 0;
}
