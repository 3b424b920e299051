/* cl_compare: the regression gate behind `clade compare`.
 * Owns: resolving a side (run id or git revision) to a run, matching the cells of two runs
 * by (experiment, model, dataset, protocol, text type, shots), the paired tests that decide
 * whether a difference is noise, and the table / markdown / JSON renderings.
 *
 * Statistics. Zero-shot: exact McNemar on per-example correctness paired by file path
 * (b = right in base only, c = right in head only; two-sided p = min(1, 2 P[X <= min(b,c)]),
 * X ~ Bin(b + c, 1/2)). Protocols with trials: the same test on the discordant pairs pooled
 * over all trials, paired by (trial, file path); without stored predictions, a paired t-test
 * on the per-trial accuracies matched by trial index; with neither, 'untested'. Top-1
 * (top1, micro_top1) pairs predictions.correct; top-k (top<k>, micro_top<k>, k > 1) pairs
 * predictions.hit <= k, when the stored hits give the stored value (not so before schema 8,
 * 9 for retrieval). A class-averaged metric (macro_top<k>) is not a per-example outcome:
 * it gets a two-sided paired bootstrap instead (the paired queries resampled, the same draws
 * for both sides, macro recomputed per resample as cl_boot_retrieval does; p from the share
 * of resampled differences on either side of 0). */
#ifndef CL_COMPARE_H
#define CL_COMPARE_H
#include <stdint.h>
#include <stdio.h>

#include "store/cl_store.h"

#define CL_COMPARE_MIN_DELTA 0.005 /* 0.5 accuracy points */
#define CL_COMPARE_ALPHA 0.05

typedef struct cl_compare_opts {
  double min_delta; /* |delta| below this is 'same' whatever the test says */
  double alpha;     /* a test rejects when p < alpha */
  const char *metric; /* the aggregate compared; NULL: each cell's headline metric (top1;
                       * micro_top1 for a retrieval cell) */
  int resamples;      /* the paired bootstrap of a macro metric (0: CL_STATS_RESAMPLES) */
  uint64_t seed;
} cl_compare_opts;

/* One side of the comparison, as resolved. */
typedef struct cl_compare_side {
  int64_t run_id;
  char commit[41];   /* the run's git commit, "" when unknown */
  int dirty;         /* -1 unknown */
  char status[16];
  char file[512];
  char spec[128];    /* what the user gave */
  int from_rev;      /* 1: spec was a git revision */
  char backend[16], precision[16], decode[8]; /* how it computed ("" unknown) */
} cl_compare_side;

enum {
  CL_COMPARE_SAME,      /* inside min-delta, or the test does not reject */
  CL_COMPARE_REGRESSED, /* delta <= -min_delta and the test rejects */
  CL_COMPARE_IMPROVED,  /* delta >= min_delta and the test rejects */
  CL_COMPARE_UNTESTED,  /* |delta| >= min_delta but no test could run (or a value is missing) */
  CL_COMPARE_ADDED,     /* only in head */
  CL_COMPARE_REMOVED,   /* only in base */
  CL_COMPARE_NVERDICTS
};

typedef struct cl_compare_row {
  char *experiment, *model, *dataset, *protocol, *text_type;
  int shots;
  char *query, *key, *split, *rank; /* retrieval axes; "" for a classification cell */
  int has_base, has_head; /* the metric's aggregate on that side */
  double base, head, delta;
  int has_p;
  double p;
  const char *metric; /* the metric compared in this row */
  const char *test;   /* "mcnemar", "paired_bootstrap", "paired_t" or "none" */
  int64_t n_pairs;    /* examples (mcnemar, paired_bootstrap) or trials (paired_t) paired */
  int64_t b, c;       /* mcnemar: right in base only, right in head only */
  int verdict;
  int64_t base_eval, head_eval; /* the evaluations compared (0: none on that side) */
  int has_base_ci, has_head_ci; /* the metric's 95% interval on that side (cl_compare_intervals) */
  double base_lo, base_hi, head_lo, head_hi;
} cl_compare_row;

typedef struct cl_compare_result {
  cl_compare_side base, head;
  cl_compare_opts opts;
  cl_compare_row *rows; /* base's evaluation order, then cells only head has */
  size_t n;
  int count[CL_COMPARE_NVERDICTS];
  int duplicates; /* cells a run holds more than once (matched in evaluation order) */
  int ci_resamples; /* the intervals' settings (cl_compare_intervals); 0: none */
  uint64_t ci_seed;
} cl_compare_result;

/* spec: all digits = a run id (must exist); otherwise a git revision resolved from the current
 * directory's repository to the latest complete run at that commit. The error names the side. */
int cl_compare_resolve(cl_store *s, const char *spec, cl_compare_side *side, cl_error *e);
int cl_compare_runs(cl_store *s, const cl_compare_side *base, const cl_compare_side *head,
                    const cl_compare_opts *o, cl_compare_result *out, cl_error *e);
/* The compared metric's 95% bootstrap interval of every row's base and head (report/cl_stats:
 * reused from the database when kept for these settings, else computed and kept); nothing
 * with CL_CI_NONE. */
struct cl_stats_opts;
int cl_compare_intervals(cl_store *s, cl_compare_result *r, const struct cl_stats_opts *o, cl_error *e);
void cl_compare_free(cl_compare_result *r);

/* format: "table", "markdown" or "json". Returns 0, or -1 on an unknown format. */
int cl_compare_write(FILE *f, const cl_compare_result *r, const char *format);

const char *cl_compare_verdict_name(int verdict);
/* Exact two-sided McNemar p from the discordant counts; 1 when b + c = 0. */
double cl_compare_mcnemar_p(int64_t b, int64_t c);
/* Two-sided paired t-test p of y - x over n pairs; NaN when n < 2. Identical non-zero
 * differences (zero variance) give 0, all-zero differences give 1. */
double cl_compare_paired_t_p(const double *x, const double *y, int n);

#endif
