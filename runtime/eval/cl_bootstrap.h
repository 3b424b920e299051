/* cl_bootstrap: bootstrap statistics of accuracies from per-example outcomes, as biobench's
 * report computes them (our own code): percentile confidence intervals from resampled
 * accuracies (examples, and trials first where there are several), and the one-sided paired
 * test of every entry against the best, Holm-corrected, that marks entries tied with it.
 * Draws are CPython's random.Random(seed)._randbelow(n) (cl_pyrandom), so a few lines of
 * Python reproduce every resample (tests/unit/bootstrap_reference.py).
 * Owns: nothing (pure functions over caller's arrays). */
#ifndef CL_BOOTSTRAP_H
#define CL_BOOTSTRAP_H
#include <stdint.h>

#include "core/cl_core.h"

/* The 95% interval's level, and the test's significance level. */
#define CL_BOOT_LEVEL 0.95
#define CL_BOOT_ALPHA 0.05

/* Outcomes of one accuracy: ntrials >= 1 trials, trial t with trial_n[t] >= 1 examples;
 * correct holds sum(trial_n) values 0/1, trial after trial. */
typedef struct cl_boot_outcomes {
  int ntrials;
  const int *trial_n;
  const uint8_t *correct;
} cl_boot_outcomes;

/* The point estimate: the accuracy of one trial, or the mean over trials of each trial's
 * accuracy (few_shot's aggregate). */
double cl_boot_point(const cl_boot_outcomes *o);

/* B resampled accuracies into acc[B], from a generator seeded once with seed (Python's
 * random.seed(seed)); resample after resample:
 *   one trial:  n draws _randbelow(n) of its examples; the accuracy of the draw;
 *   T > 1:      T draws _randbelow(T) of trials; then, for each drawn trial in order, its
 *               n_t draws _randbelow(n_t); the mean of the drawn trials' accuracies.
 * Outcome sets of the same shape draw the same indices: resamples are paired. */
int cl_boot_resample(const cl_boot_outcomes *o, int B, uint64_t seed, double *acc, cl_error *e);
/* The same for nx outcome sets of o's shape at once (xs[m]: sum(trial_n) values 0/1; o's own
 * correct is not read), each resample drawn once for all: acc[m * B + b] is what
 * cl_boot_resample gives outcome set m (top-1, top-3 and top-5 of one evaluation). */
int cl_boot_resample_multi(const cl_boot_outcomes *o, int nx, const uint8_t *const *xs, int B, uint64_t seed,
                           double *acc, cl_error *e);

/* A retrieval cell's per-query outcomes (CLIBD's metrics, eval/cl_retrieval): n queries,
 * query i of class cls[i] (0 <= cls[i] < ncls), the first retrieved key of its class at
 * position hit[i] (1-based; 0: none of the retrieved keys). */
typedef struct cl_boot_queries {
  int n, ncls;
  const int *cls, *hit;
} cl_boot_queries;

/* CLIBD's micro and macro top-k of the queries idx[0..m) (idx NULL: all n in order), for each
 * ks[j] (j < nk) into micro[j], macro[j]: micro = the share with 1 <= hit <= k; macro = that
 * share per class present among those queries, summed in order of first appearance, over
 * the number of classes present (cl_retrieval_accuracy's order of summation). Classes absent
 * from the queries do not count. */
void cl_boot_retrieval_point(const cl_boot_queries *q, const int *idx, int m, const int *ks, int nk, double *micro,
                             double *macro);

/* B resamples of the queries drawn as cl_boot_resample draws one trial's examples (n draws
 * _randbelow(n) per resample, from a generator seeded once with seed: the same indices as
 * any one-trial outcome set of n examples), each scored by cl_boot_retrieval_point over the
 * drawn queries in drawn order: micro[b * nk + j], macro[b * nk + j]. A class no draw of a
 * resample picked is absent from it: its macro is the mean over the classes it holds. */
int cl_boot_retrieval(const cl_boot_queries *q, const int *ks, int nk, int B, uint64_t seed, double *micro,
                      double *macro, cl_error *e);

/* numpy.percentile(x, q) (q in [0, 100], linear interpolation, numpy's own lerp); sorts x. */
double cl_boot_percentile(double *x, int n, double q);

/* The two-sided (1 - level) percentile interval of acc[B] (sorted in place). */
void cl_boot_interval(double *acc, int B, double level, double *lo, double *hi);

/* Holm's step-down over m p-values at alpha, as statsmodels' multipletests(method="holm"):
 * reject[i] = 1 for the hypotheses rejected. */
void cl_boot_holm(const double *p, int m, double alpha, int *reject);

/* Ties with the best of m entries whose paired resamples are s[j][0..B): best = the largest
 * mean resampled accuracy (the first on equality); p[j] = the share of resamples where
 * s[j] >= s[best] (one-sided: j not worse than the best); tied[j] = Holm does not reject at
 * alpha (the best is always tied). Returns best. */
int cl_boot_ties(const double *const *s, int m, int B, double alpha, int *tied, double *p);

#endif
