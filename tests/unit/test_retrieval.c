/* cl_retrieval: exact cosine top-k with ties to the lower key index, and CLIBD's micro and
 * macro top-k accuracy on a case worked by hand (the fixture parity is
 * tests/parity/test_retrieval_clibd.sh). */
#include "cl_test.h"
#include "eval/cl_retrieval.h"

static void test_topk(void) {
  /* keys 0 and 2 are the same direction (2 is longer), key 3 is their negative, key 1 is
   * orthogonal; key 4 is zero (scores 0, like key 1) */
  const double keys[] = {1, 0, 0, 1, 3, 0, -2, 0, 0, 0};
  const double q[] = {2, 0, 0, 5, 0, 0};
  int64_t out[3 * 4];
  cl_error e = {0};
  CHECK_OK(cl_retrieval_topk(q, 3, keys, 5, 2, 4, out, &e), e);
  const int64_t want[] = {0, 2, 1, 4, /* ties: 0 before 2, 1 before 4 */
                          1, 0, 2, 3, /* 0, 2, 3 and 4 tie at 0: by index */
                          0, 1, 2, 3 /* a zero query scores 0 everywhere: key order */};
  for (int i = 0; i < 12; i++) CHECK_MSG(out[i] == want[i], "out[%d] = %lld, want %lld", i, (long long)out[i], (long long)want[i]);
  /* k beyond the keys: -1 past the end */
  int64_t few[2 * 3];
  CHECK_OK(cl_retrieval_topk(q, 2, keys, 2, 2, 3, few, &e), e);
  CHECK(few[0] == 0 && few[1] == 1 && few[2] == -1 && few[3] == 1 && few[4] == 0 && few[5] == -1);
  CHECK(cl_retrieval_topk(q, 1, keys, 1, 0, 1, few, &e) == CL_EINVAL);
}

static void test_accuracy(void) {
  /* labels: 0 = A, 1 = B, 2 = C; queries A A B C; keys A B B C */
  const int ql[] = {0, 0, 1, 2}, kl[] = {0, 1, 1, 3};
  const int64_t top[] = {1, 0, 2, /* A: hit at 2 */
                         0, 1, 2, /* A: hit at 1 */
                         3, 0, 1, /* B: hit at 3 */
                         2, 1, 0 /* C: never (key 3 is label 3) */};
  double micro, macro;
  cl_error e = {0};
  CHECK_OK(cl_retrieval_accuracy(ql, 4, kl, 4, top, 3, 1, 4, &micro, &macro, &e), e);
  CHECK(micro == 1.0 / 4 && macro == (0.5 + 0 + 0) / 3);
  CHECK_OK(cl_retrieval_accuracy(ql, 4, kl, 4, top, 3, 2, 4, &micro, &macro, &e), e);
  CHECK(micro == 2.0 / 4 && macro == (1.0 + 0 + 0) / 3);
  CHECK_OK(cl_retrieval_accuracy(ql, 4, kl, 4, top, 3, 3, 4, &micro, &macro, &e), e);
  CHECK(micro == 3.0 / 4 && macro == (1.0 + 1.0 + 0) / 3);
  CHECK(cl_retrieval_accuracy(ql, 0, kl, 4, top, 3, 1, 4, &micro, &macro, &e) == CL_EINVAL);
  CHECK(cl_retrieval_accuracy(ql, 4, kl, 4, top, 3, 4, 4, &micro, &macro, &e) == CL_EINVAL);
  const int64_t bad[] = {7, 0, 0};
  CHECK(cl_retrieval_accuracy(ql, 1, kl, 4, bad, 3, 1, 4, &micro, &macro, &e) == CL_EINVAL);
}

int main(void) {
  test_topk();
  test_accuracy();
  return cl_test_done("test_retrieval");
}
