/* cl_test: a tiny test helper. Checks print what they compared when they fail; a test
 * returns CL_TEST_SKIP (77, CTest's SKIP_RETURN_CODE) with a message when it cannot run. */
#ifndef CL_TEST_H
#define CL_TEST_H
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CL_TEST_SKIP 77

static int cl_test_failures = 0;
static int cl_test_checks = 0;

#define CHECK(cond)                                                                        \
  do {                                                                                     \
    cl_test_checks++;                                                                      \
    if (!(cond)) {                                                                         \
      cl_test_failures++;                                                                  \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);             \
    }                                                                                      \
  } while (0)

#define CHECK_MSG(cond, ...)                                                               \
  do {                                                                                     \
    cl_test_checks++;                                                                      \
    if (!(cond)) {                                                                         \
      cl_test_failures++;                                                                  \
      fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);             \
      fprintf(stderr, __VA_ARGS__);                                                        \
      fputc('\n', stderr);                                                                 \
    }                                                                                      \
  } while (0)

#define CHECK_EQ_INT(a, b)                                                                 \
  do {                                                                                     \
    long long _a = (long long)(a), _b = (long long)(b);                                    \
    CHECK_MSG(_a == _b, "%s = %lld, expected %s = %lld", #a, _a, #b, _b);                  \
  } while (0)

#define CHECK_STR(a, b)                                                                    \
  do {                                                                                     \
    const char *_a = (a), *_b = (b);                                                       \
    CHECK_MSG(_a && _b && strcmp(_a, _b) == 0, "\"%s\" != \"%s\"", _a ? _a : "(null)",     \
              _b ? _b : "(null)");                                                         \
  } while (0)

/* An error code check that shows the error message. */
#define CHECK_OK(rc, err)                                                                  \
  do {                                                                                     \
    int _rc = (rc);                                                                        \
    CHECK_MSG(_rc == 0, "%s returned %d: %s", #rc, _rc, (err).msg);                        \
  } while (0)

/* ||a-b|| / ||b|| over n floats. */
static inline double cl_test_relerr(const float *a, const float *b, long n) {
  double num = 0, den = 0;
  for (long i = 0; i < n; i++) {
    double d = (double)a[i] - (double)b[i];
    num += d * d;
    den += (double)b[i] * (double)b[i];
  }
  return sqrt(num) / (den > 0 ? sqrt(den) : 1e-30);
}

/* The largest cl_test_relerr over n rows of d floats (NaN wins). */
static inline double cl_test_max_relerr(const float *a, const float *b, int n, int d) {
  double worst = 0;
  for (int i = 0; i < n; i++) {
    double r = cl_test_relerr(a + (size_t)i * d, b + (size_t)i * d, d);
    if (r > worst || r != r) worst = r;
  }
  return worst;
}

/* Deterministic test data: xorshift64, uniform in [-1, 1). */
static uint64_t cl_test_rng = 88172645463325252ull;
static inline float cl_test_frand(void) {
  cl_test_rng ^= cl_test_rng << 13, cl_test_rng ^= cl_test_rng >> 7, cl_test_rng ^= cl_test_rng << 17;
  return (float)((cl_test_rng >> 11) * (1.0 / 9007199254740992.0) * 2 - 1);
}
static inline float *cl_test_rnd(size_t n) {
  float *p = (float *)malloc((n ? n : 1) * sizeof *p);
  if (!p) abort();
  for (size_t i = 0; i < n; i++) p[i] = cl_test_frand();
  return p;
}

/* Directory of ../shared/fixtures (CLADE_FIXTURES overrides). */
static inline const char *cl_test_fixtures(void) {
  const char *e = getenv("CLADE_FIXTURES");
  return e && *e ? e : CLADE_TEST_FIXTURES;
}

static inline char *cl_test_fixture(char *buf, size_t n, const char *rel) {
  snprintf(buf, n, "%s/%s", cl_test_fixtures(), rel);
  return buf;
}

/* The verdict: fails when a check failed, and when none ran at all (a test that checked
 * nothing proves nothing: return CL_TEST_SKIP with the reason instead). */
/* What callbacks saw, appended as text to compare whole, and how many calls. */
typedef struct cl_test_seen {
  char text[4096];
  int n;
} cl_test_seen;
static inline void cl_test_seen_add(cl_test_seen *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void cl_test_seen_add(cl_test_seen *s, const char *fmt, ...) {
  size_t k = strlen(s->text);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->text + k, sizeof s->text - k, fmt, ap);
  va_end(ap);
  s->n++;
}

static inline int cl_test_done(const char *name) {
  if (cl_test_checks == 0) {
    fprintf(stderr, "%s: no check ran\n", name);
    return 1;
  }
  if (cl_test_failures) {
    fprintf(stderr, "%s: %d of %d checks failed\n", name, cl_test_failures, cl_test_checks);
    return 1;
  }
  printf("%s: %d checks passed\n", name, cl_test_checks);
  return 0;
}

#endif
