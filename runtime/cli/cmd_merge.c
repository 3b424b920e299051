/* clade merge: shard databases (`clade run --shard I/N`) folded into one run of a target. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cl_cli.h"
#include "store/cl_store.h"

int cl_cmd_merge(int argc, char **argv) {
  const char *into = NULL;
  const char **srcs = calloc((size_t)argc, sizeof *srcs);
  int n = 0, quiet = 0;
  if (!srcs) return 1;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--into")) {
      if (i + 1 >= argc) {
        cl_cli_fail("merge: --into needs a path");
        free(srcs);
        return 2;
      }
      into = argv[++i];
    } else if (!strcmp(argv[i], "--quiet") || !strcmp(argv[i], "-q")) {
      quiet = 1;
    } else if (argv[i][0] == '-') {
      cl_cli_fail("merge: unknown option %s", argv[i]);
      free(srcs);
      return cl_cli_usage("merge");
    } else {
      srcs[n++] = argv[i];
    }
  }
  if (!into || n == 0) {
    cl_cli_fail("merge: %s", !into ? "--into PATH is required" : "no shard database given");
    free(srcs);
    return cl_cli_usage("merge");
  }
  cl_store *t = NULL;
  cl_error e;
  cl_merge_report r;
  int rc = cl_store_open(into, &t, &e);
  if (rc == CL_OK) rc = cl_store_merge(t, srcs, n, &r, &e);
  cl_store_close(t);
  free(srcs);
  if (rc != CL_OK) {
    cl_cli_fail("%s", e.msg);
    return 1;
  }
  printf("run\t%lld\nstatus\t%s\nshards\t%d\nadded\t%lld\nalready_merged\t%lld\nrerun\t%s\n"
         "trainings_added\t%lld\ntrainings_already_merged\t%lld\n",
         (long long)r.run_id, r.complete ? "complete" : "incomplete", r.shard_count, (long long)r.evaluations_added,
         (long long)r.evaluations_same, r.rerun, (long long)r.trainings_added, (long long)r.trainings_same);
  if (!r.complete)
    fprintf(stderr,
            "clade: merged run %lld of %s is incomplete: shards %s. Rerun each with\n"
            "  clade run %s --shard I/%d --db <its database>\nthen merge again.\n",
            (long long)r.run_id, into, r.incomplete, r.file, r.shard_count);
  else if (!quiet)
    fprintf(stderr, "clade: merged run %lld of %s is complete: %d shards, %lld evaluations added, %lld already there\n",
            (long long)r.run_id, into, r.shard_count, (long long)r.evaluations_added, (long long)r.evaluations_same);
  int code = r.complete ? 0 : 3;
  cl_merge_report_free(&r);
  return code;
}
