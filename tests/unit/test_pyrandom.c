/* CPython's random.seed/shuffle/random/getrandbits reproduced. Expected values were printed
 * by CPython 3.11 (random.seed(s); random.shuffle(list(range(n))) ...). */
#include "cl_test.h"
#include "eval/cl_pyrandom.h"

static void check_seq(const int *got, const int *want, int n, const char *what) {
  for (int i = 0; i < n; i++)
    if (got[i] != want[i]) {
      CHECK_MSG(0, "%s: index %d: got %d, want %d", what, i, got[i], want[i]);
      return;
    }
  cl_test_checks++;
}

int main(void) {
  cl_pyrand r;
  int x[25];
  for (int i = 0; i < 10; i++) x[i] = i;
  cl_pyrand_seed(&r, 0);
  cl_pyrand_shuffle(&r, x, 10);
  check_seq(x, (int[]){7, 8, 1, 5, 3, 4, 2, 0, 9, 6}, 10, "seed 0");

  for (int i = 0; i < 25; i++) x[i] = i;
  cl_pyrand_seed(&r, 3);
  cl_pyrand_shuffle(&r, x, 25);
  check_seq(x, (int[]){6, 16, 22, 14, 1, 5, 20, 10, 9, 13, 24, 12, 3, 8, 21, 23, 0, 2, 15, 19, 11, 4, 17, 18, 7},
            25, "seed 3, first shuffle");
  cl_pyrand_shuffle(&r, x, 25); /* shuffles are cumulative, in place */
  check_seq(x, (int[]){11, 23, 12, 2, 14, 18, 19, 9, 24, 20, 7, 10, 1, 21, 8, 17, 13, 16, 15, 5, 22, 4, 6, 3, 0},
            25, "seed 3, second shuffle");

  cl_pyrand_seed(&r, (1LL << 40) + 5); /* two 32-bit key words */
  double v = cl_pyrand_random(&r);
  CHECK_MSG(v == 0.5043802970418443, "random() = %.17g", v);
  CHECK_EQ_INT(cl_pyrand_bits(&r, 7), 34);

  for (int i = 0; i < 5; i++) x[i] = i;
  cl_pyrand_seed(&r, -7); /* the sign is dropped */
  cl_pyrand_shuffle(&r, x, 5);
  check_seq(x, (int[]){4, 0, 3, 1, 2}, 5, "seed -7");
  return cl_test_done("test_pyrandom");
}
