/* cl_pyrandom: CPython's `random` module, reproduced exactly for the few draws BioCLIP's
 * evaluation makes (random.seed(int), random.shuffle). Owns: the MT19937 state.
 * Hand-written because the support sets must equal BioCLIP's to the last index, and no C
 * library reproduces CPython's seeding (init_by_array over the int's 32-bit words) and
 * _randbelow (getrandbits with rejection). */
#ifndef CL_PYRANDOM_H
#define CL_PYRANDOM_H
#include <stdint.h>

typedef struct cl_pyrand {
  uint32_t mt[624];
  int mti;
} cl_pyrand;

/* random.seed(n) for a Python int n (the sign is dropped, as CPython does). */
void cl_pyrand_seed(cl_pyrand *r, int64_t n);
uint32_t cl_pyrand_u32(cl_pyrand *r);
/* random.getrandbits(k), 0 < k <= 32. */
uint32_t cl_pyrand_bits(cl_pyrand *r, int k);
/* random._randbelow(n), n >= 1. */
uint32_t cl_pyrand_below(cl_pyrand *r, uint32_t n);
/* random.random(): 53-bit float in [0, 1). */
double cl_pyrand_random(cl_pyrand *r);
/* random.shuffle(x) on an array of n ints, in place. */
void cl_pyrand_shuffle(cl_pyrand *r, int *x, int n);

#endif
