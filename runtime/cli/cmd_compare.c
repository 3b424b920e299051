/* clade compare: the regression gate. Two runs (ids or git revisions), cell by cell, each
 * difference tested against noise (see report/cl_compare.h). Data on stdout; exit 0 when
 * nothing regressed significantly, 1 when something did, 2 on a tool error or bad usage
 * (then one line on stderr). */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cl_cli.h"
#include "report/cl_compare.h"
#include "report/cl_stats.h"

/* "--name VALUE" or "--name=VALUE": the value, else NULL (and *i is left alone). */
static const char *opt_value(int argc, char **argv, int *i, const char *name, int *bad) {
  const char *v = NULL;
  const int k = cl_cli_option("compare", argc, argv, i, &name, 1, &v);
  if (k == -2) *bad = 1;
  return k == 0 ? v : NULL;
}

static int parse_prob(const char *name, const char *v, double lo_excl, double *out) {
  char *end;
  errno = 0;
  double d = strtod(v, &end);
  if (errno || end == v || *end || !isfinite(d) || d < 0 || d > 1 || d <= lo_excl) {
    cl_cli_fail("compare: %s: '%s' is not a number in %s1]", name, v,
                lo_excl < 0 ? "[0, " : "(0, ");
    return 2;
  }
  *out = d;
  return 0;
}

int cl_cmd_compare(int argc, char **argv) {
  const char *db = CL_STORE_DEFAULT_PATH, *format = "table", *sides[2] = {NULL, NULL};
  cl_compare_opts o = {.min_delta = CL_COMPARE_MIN_DELTA, .alpha = CL_COMPARE_ALPHA, .metric = NULL};
  int nsides = 0;
  cl_stats_opts ci;
  cl_cli_ci_defaults(&ci);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v;
    int bad = 0;
    const int took = cl_cli_ci_option("compare", argc, argv, &i, &ci);
    if (took < 0) return cl_cli_usage("compare");
    if (took) continue;
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      char *hv[] = {"help", "compare"};
      return cl_cmd_help(2, hv);
    }
    if ((v = opt_value(argc, argv, &i, "--db", &bad))) {
      if (!*v) {
        cl_cli_fail("compare: --db needs a path");
        return cl_cli_usage("compare");
      }
      db = v;
    } else if ((v = opt_value(argc, argv, &i, "--min-delta", &bad))) {
      if (parse_prob("--min-delta", v, -1, &o.min_delta)) return cl_cli_usage("compare");
    } else if ((v = opt_value(argc, argv, &i, "--alpha", &bad))) {
      if (parse_prob("--alpha", v, 0, &o.alpha)) return cl_cli_usage("compare");
    } else if ((v = opt_value(argc, argv, &i, "--metric", &bad))) {
      if (!*v) {
        cl_cli_fail("compare: --metric needs a metric name (top1, micro_top1, macro_top5, ...)");
        return cl_cli_usage("compare");
      }
      o.metric = v;
    } else if ((v = opt_value(argc, argv, &i, "--format", &bad))) {
      if (strcmp(v, "table") && strcmp(v, "markdown") && strcmp(v, "json")) {
        cl_cli_fail("compare: unknown format '%s' (table, markdown or json)", v);
        return cl_cli_usage("compare");
      }
      format = v;
    } else if (bad) {
      return cl_cli_usage("compare");
    } else if (a[0] == '-' && a[1]) {
      cl_cli_fail("compare: unknown option '%s'", a);
      return cl_cli_usage("compare");
    } else if (nsides < 2) {
      sides[nsides++] = a;
    } else {
      cl_cli_fail("compare: unexpected argument '%s' (give BASE and HEAD only)", a);
      return cl_cli_usage("compare");
    }
  }
  if (nsides != 2) {
    cl_cli_fail("compare: needs BASE and HEAD (run ids or git revisions)");
    return cl_cli_usage("compare");
  }

  o.resamples = ci.resamples, o.seed = ci.seed; /* a macro metric's paired bootstrap */
  cl_store *s = NULL;
  cl_error e = {0};
  if (cl_store_open_existing(db, &s, &e) != CL_OK) {
    cl_cli_fail("compare: %s", e.msg);
    return 2;
  }
  cl_compare_side side[2];
  static const char *const which[2] = {"base", "head"};
  for (int k = 0; k < 2; k++) {
    if (cl_compare_resolve(s, sides[k], &side[k], &e) != CL_OK) {
      cl_cli_fail("compare: %s: %s", which[k], e.msg);
      cl_store_close(s);
      return 2;
    }
    /* an unfinished run still compares what it finished; say so */
    if (strcmp(side[k].status, "complete") != 0)
      fprintf(stderr, "clade: warning: compare: %s run %lld is %s: comparing the evaluations it "
              "finished\n", which[k], (long long)side[k].run_id, side[k].status);
  }
  /* deltas between precisions, backends or decodings are not regressions of the code: say so */
  char how[2][64];
  for (int k = 0; k < 2; k++) cl_cli_run_how(side[k].backend, side[k].precision, side[k].decode, how[k], sizeof how[k]);
  if (strcmp(how[0], how[1]))
    fprintf(stderr, "clade: warning: compare: base run %lld computed on %s, head run %lld on %s: the deltas "
            "include that change\n", (long long)side[0].run_id, how[0], (long long)side[1].run_id, how[1]);
  cl_compare_result r;
  if (cl_compare_runs(s, &side[0], &side[1], &o, &r, &e) != CL_OK) {
    cl_cli_fail("compare: %s", e.msg);
    cl_store_close(s);
    return 2;
  }
  if (cl_compare_intervals(s, &r, &ci, &e) != CL_OK) {
    cl_cli_fail("compare: %s", e.msg);
    cl_compare_free(&r);
    cl_store_close(s);
    return 2;
  }
  cl_store_close(s);
  if (r.duplicates)
    fprintf(stderr, "clade: warning: compare: %d cell%s appear more than once in a run "
            "(different parameters): matched in evaluation order\n", r.duplicates,
            r.duplicates == 1 ? "" : "s");
  int wrc = cl_compare_write(stdout, &r, format);
  int regressed = r.count[CL_COMPARE_REGRESSED], untested = r.count[CL_COMPARE_UNTESTED];
  /* a drop the gate could not test does not fail it: say so where CI logs show it */
  if (untested)
    fprintf(stderr, "clade: warning: compare: %d cell%s moved by min-delta or more but could not "
            "be tested (no stored predictions or trials, or a missing value)\n", untested,
            untested == 1 ? "" : "s");
  cl_compare_free(&r);
  if (wrc != 0 || fflush(stdout) != 0 || ferror(stdout)) {
    cl_cli_fail("compare: writing to stdout: %s", wrc ? "out of memory" : strerror(errno));
    return 2;
  }
  if (regressed) {
    fprintf(stderr, "clade: compare: %d cell%s regressed significantly\n", regressed,
            regressed == 1 ? "" : "s");
    return 1;
  }
  return 0;
}
