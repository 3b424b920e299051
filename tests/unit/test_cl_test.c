/* cl_test_done itself: a test that ran no check fails, as does one with a failed check. */
#include "cl_test.h"

int main(void) {
  int none = cl_test_done("no checks"); /* nothing has been checked yet */
  CHECK_EQ_INT(none, 1);
  int passing = cl_test_done("one passed check");
  CHECK_EQ_INT(passing, 0);
  cl_test_failures++; /* as a failed CHECK leaves it */
  int failing = cl_test_done("one failed check");
  cl_test_failures--;
  CHECK_EQ_INT(failing, 1);
  return cl_test_done("test_cl_test");
}
