/* cl_bootstrap's exact properties (the numbers themselves are checked against a Python
 * reference in tests/parity/test_ci_reference.sh): degenerate outcomes give degenerate
 * intervals, the same seed the same resamples, equal shapes paired draws, numpy's
 * percentile on known inputs, and Holm's step-down on textbook p-values. */
#include "cl_test.h"
#include "eval/cl_bootstrap.h"

int main(void) {
  cl_error e = {0};
  enum { B = 500 };
  double a[B], b[B], lo, hi;
  uint8_t ones[20], zeros[20], mixed[20];
  for (int i = 0; i < 20; i++) ones[i] = 1, zeros[i] = 0, mixed[i] = i % 3 == 0;
  int n = 20;
  cl_boot_outcomes o = {.ntrials = 1, .trial_n = &n, .correct = ones};
  CHECK_OK(cl_boot_resample(&o, B, 3, a, &e), e);
  cl_boot_interval(a, B, CL_BOOT_LEVEL, &lo, &hi);
  CHECK(lo == 1 && hi == 1 && cl_boot_point(&o) == 1);
  o.correct = zeros;
  CHECK_OK(cl_boot_resample(&o, B, 3, a, &e), e);
  cl_boot_interval(a, B, CL_BOOT_LEVEL, &lo, &hi);
  CHECK(lo == 0 && hi == 0);

  /* same seed, same resamples; another seed, others; the point inside the interval */
  o.correct = mixed;
  CHECK_OK(cl_boot_resample(&o, B, 3, a, &e), e);
  CHECK_OK(cl_boot_resample(&o, B, 3, b, &e), e);
  CHECK(memcmp(a, b, sizeof a) == 0);
  CHECK_OK(cl_boot_resample(&o, B, 4, b, &e), e);
  CHECK(memcmp(a, b, sizeof a) != 0);
  cl_boot_interval(a, B, CL_BOOT_LEVEL, &lo, &hi);
  CHECK_MSG(lo < 7 / 20.0 && 7 / 20.0 < hi && hi - lo < 0.6, "[%g, %g]", lo, hi);

  /* trials: with every trial all correct the interval is [1, 1]; an empty trial is refused */
  int tn[3] = {20, 20, 20};
  uint8_t all[60];
  memset(all, 1, sizeof all);
  cl_boot_outcomes ot = {.ntrials = 3, .trial_n = tn, .correct = all};
  CHECK_OK(cl_boot_resample(&ot, B, 1, a, &e), e);
  cl_boot_interval(a, B, CL_BOOT_LEVEL, &lo, &hi);
  CHECK(lo == 1 && hi == 1);
  tn[1] = 0;
  CHECK(cl_boot_resample(&ot, B, 1, a, &e) == CL_EINVAL && strstr(e.msg, "trial 1"));

  /* numpy.percentile([1, 2, 3, 4], q): 25 -> 1.75, 50 -> 2.5, 97.5 -> 3.925; one value: it */
  double x[4] = {4, 1, 3, 2}, one = 0.25;
  CHECK(cl_boot_percentile(x, 4, 25) == 1.75);
  CHECK(cl_boot_percentile(x, 4, 50) == 2.5);
  CHECK_MSG(fabs(cl_boot_percentile(x, 4, 97.5) - 3.925) < 1e-15, "%.17g", cl_boot_percentile(x, 4, 97.5));
  CHECK(cl_boot_percentile(&one, 1, 2.5) == 0.25);

  /* Holm at 0.05: p = (0.01, 0.04, 0.03, 0.005): sorted 0.005 <= 0.0125, 0.01 <= 0.0167,
   * 0.03 > 0.025 stops: the first two rejected (statsmodels agrees) */
  double p[4] = {0.01, 0.04, 0.03, 0.005};
  int rej[4];
  cl_boot_holm(p, 4, 0.05, rej);
  CHECK(rej[0] == 1 && rej[1] == 0 && rej[2] == 0 && rej[3] == 1);
  double peq[2] = {0.025, 0.025}; /* equal to the threshold: rejected, both */
  cl_boot_holm(peq, 2, 0.05, rej);
  CHECK(rej[0] == 1 && rej[1] == 1);

  /* ties: identical resamples are tied with the best (p = 1); a uniformly lower one is worse */
  double s0[B], s1[B], s2[B];
  for (int i = 0; i < B; i++) s0[i] = 0.5 + 0.001 * (i % 7), s1[i] = s0[i], s2[i] = s0[i] - 0.1;
  const double *s[3] = {s2, s0, s1};
  int tied[3];
  double pv[3];
  int best = cl_boot_ties(s, 3, B, CL_BOOT_ALPHA, tied, pv);
  CHECK(best == 1 && tied[1] && tied[2] && !tied[0] && pv[2] == 1 && pv[0] == 0);

  /* retrieval: the queries are drawn as a one-trial outcome set is (micro equals the top-k
   * accuracy resampled by cl_boot_resample, draw for draw); macro averages the classes a
   * resample holds: queries of class 1 all miss, class 0 all hit, so a resample is 1/2 when
   * it drew both classes and 1 or 0 when it drew one (absent classes do not count as 0) */
  {
    enum { N = 6, R = 400 };
    const int cls[N] = {0, 1, 0, 0, 1, 0}, hit[N] = {1, 0, 2, 3, 0, 1}, ks[2] = {1, 3};
    cl_boot_queries q = {.n = N, .ncls = 2, .cls = cls, .hit = hit};
    double mi[R * 2], ma[R * 2], acc[R], pmi[2], pma[2];
    cl_boot_retrieval_point(&q, NULL, N, ks, 2, pmi, pma);
    CHECK(pmi[0] == 2 / 6.0 && pmi[1] == 4 / 6.0 && pma[0] == (2 / 4.0 + 0) / 2 && pma[1] == 0.5);
    CHECK_OK(cl_boot_retrieval(&q, ks, 2, R, 7, mi, ma, &e), e);
    for (int j = 0; j < 2; j++) {
      uint8_t c[N];
      for (int i = 0; i < N; i++) c[i] = hit[i] >= 1 && hit[i] <= ks[j];
      int tn = N;
      cl_boot_outcomes o1 = {.ntrials = 1, .trial_n = &tn, .correct = c};
      CHECK_OK(cl_boot_resample(&o1, R, 7, acc, &e), e);
      int same = 1;
      for (int b = 0; b < R; b++) same &= mi[b * 2 + j] == acc[b];
      CHECK_MSG(same, "micro_top%d is not the one-trial resample", ks[j]);
    }
    int half = 0, one = 0, zero = 0;
    for (int b = 0; b < R; b++) {
      double m = ma[b * 2 + 1];
      half += m == 0.5, one += m == 1, zero += m == 0;
    }
    CHECK_MSG(half + one + zero == R && half > R / 2 && one > 0, "macro_top3: %d at 1/2, %d at 1, %d at 0", half, one,
              zero);
    int bad[N] = {0, 2, 0, 0, 1, 0};
    q.cls = bad;
    CHECK(cl_boot_retrieval(&q, ks, 2, R, 7, mi, ma, &e) == CL_EINVAL && strstr(e.msg, "class 2 of 2"));
  }
  return cl_test_done("test_bootstrap");
}
