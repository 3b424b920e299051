/* cl_stats: the statistics a leaderboard needs over one stored run. Every top-k accuracy whose
 * per-example outcomes are stored (top-1: predictions.correct; top-k: predictions.hit <= k)
 * and give the stored value gets a 95% bootstrap interval (cl_bootstrap: over the examples; for the aggregate of
 * several trials, over trials and then examples), the trial rows one over their examples;
 * so does every retrieval metric (micro_top<k>, macro_top<k>) whose per-query outcomes
 * (predictions.hit: the first retrieved key of the query's label; the query's label as its
 * class) give the stored value: resampled over the queries, macro recomputed per resample over
 * the classes the resample holds (cl_boot_retrieval). Per comparable group (dataset,
 * protocol, shots and retrieval axes: the entries are the (experiment, model, text type)
 * cells of the run) the entries not significantly worse than the best are marked tied per
 * metric (one-sided paired bootstrap test, Holm-corrected, biobench's method). Paired needs
 * the same examples: a group whose entries were scored on different examples gets no test.
 * Top-k of runs stored before schema 8 and retrieval metrics stored before schema 9 keep no
 * per-example outcome to resample: no interval (a retrieval cell says why, cl_stats_note).
 * cl_stats_get keeps what it computed in the results database (cl_store intervals) and reads
 * it back while the settings match.
 * Owns: the computed cells (cl_stats_free). */
#ifndef CL_STATS_H
#define CL_STATS_H
#include <stdint.h>

#include "store/cl_store.h"

typedef enum { CL_CI_NONE = 0, CL_CI_BOOTSTRAP = 1 } cl_ci_method;

typedef struct cl_stats_opts {
  cl_ci_method method;
  int resamples;  /* B, default CL_STATS_RESAMPLES */
  uint64_t seed;  /* Python's random.seed(seed) for every cell (paired within a group) */
} cl_stats_opts;

#define CL_STATS_RESAMPLES 1000

/* The tie status of an aggregate cell. */
enum { CL_TIE_UNTESTED = 0, CL_TIE_BEST, CL_TIE_TIED, CL_TIE_WORSE };

typedef struct cl_stats_cell {
  int64_t eval_id;
  int trial;       /* -1: the aggregate */
  char metric[32]; /* top<k>, micro_top<k>, macro_top<k> */
  int k;           /* its k */
  int has_ci;      /* 0: no interval; note says why */
  char note[96];
  double lo, hi; /* the 95% interval */
  int tie;       /* aggregate cells: CL_TIE_*; trial cells: CL_TIE_UNTESTED */
  double p;      /* the test's raw p-value against the best (1 for the best); NAN untested */
  int group_size; /* entries tested together */
} cl_stats_cell;

typedef struct cl_stats cl_stats;

/* "none" or "bootstrap" into *m; -1 for anything else. */
int cl_stats_parse_method(const char *s, cl_ci_method *m);
/* Computes every cell of run_id (nothing with CL_CI_NONE: *out is then an empty table). */
int cl_stats_compute(cl_store *s, int64_t run_id, const cl_stats_opts *o, cl_stats **out, cl_error *e);
/* The cells of run_id as stored for these settings when the run has not grown since; else
 * computed, then stored when the database is writable (a failure to store is only a warning,
 * cl_stats_warning). */
int cl_stats_get(cl_store *s, int64_t run_id, const cl_stats_opts *o, cl_stats **out, cl_error *e);
/* Computes and stores the run's cells for o (the end of `clade run`). */
int cl_stats_store(cl_store *s, int64_t run_id, const cl_stats_opts *o, cl_error *e);
/* Whether cl_stats_get read the cells back from the database; a warning from storing them. */
int cl_stats_reused(const cl_stats *st);
const char *cl_stats_warning(const cl_stats *st);
/* k of a metric "top<k>" (top1, top3, top5, ...), 0 for any other. */
int cl_stats_topk(const char *metric);
/* k of a retrieval metric "micro_top<k>" or "macro_top<k>" (*macro set), 0 for any other. */
int cl_stats_retrieval_k(const char *metric, int *macro);
/* The interval cell of (eval_id, trial, metric), or NULL. */
const cl_stats_cell *cl_stats_find(const cl_stats *st, int64_t eval_id, int trial, const char *metric);
/* Why (eval_id, trial, metric) has no interval, or NULL. */
const char *cl_stats_note(const cl_stats *st, int64_t eval_id, int trial, const char *metric);
/* "best", "tied", "worse", or "" (untested). */
const char *cl_stats_tie_name(int tie);
/* One sentence saying how the intervals and ties were made (for tables and pages); retrieval:
 * the run has retrieval cells (how their resamples are drawn is said too). */
char *cl_stats_describe(const cl_stats_opts *o, int retrieval);
void cl_stats_free(cl_stats *st);

#endif
