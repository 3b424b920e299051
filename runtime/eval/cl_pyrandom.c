/* cl_pyrandom: MT19937 as in CPython's _randommodule.c. */
#include "cl_pyrandom.h"

static void init_genrand(cl_pyrand *r, uint32_t s) {
  r->mt[0] = s;
  for (int i = 1; i < 624; i++)
    r->mt[i] = 1812433253u * (r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) + (uint32_t)i;
  r->mti = 624;
}

static void init_by_array(cl_pyrand *r, const uint32_t *key, int len) {
  init_genrand(r, 19650218u);
  int i = 1, j = 0;
  for (int k = 624 > len ? 624 : len; k; k--) {
    r->mt[i] = (r->mt[i] ^ ((r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) * 1664525u)) + key[j] + (uint32_t)j;
    i++;
    j++;
    if (i >= 624) { r->mt[0] = r->mt[623]; i = 1; }
    if (j >= len) j = 0;
  }
  for (int k = 623; k; k--) {
    r->mt[i] = (r->mt[i] ^ ((r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) * 1566083941u)) - (uint32_t)i;
    i++;
    if (i >= 624) { r->mt[0] = r->mt[623]; i = 1; }
  }
  r->mt[0] = 0x80000000u;
}

void cl_pyrand_seed(cl_pyrand *r, int64_t n) {
  /* CPython: abs(n) split into 32-bit words, least significant first; 0 gives one word. */
  uint64_t a = n < 0 ? (uint64_t)(-(n + 1)) + 1 : (uint64_t)n;
  uint32_t key[2] = {(uint32_t)a, (uint32_t)(a >> 32)};
  init_by_array(r, key, key[1] ? 2 : 1);
}

uint32_t cl_pyrand_u32(cl_pyrand *r) {
  static const uint32_t mag01[2] = {0, 0x9908b0dfu};
  uint32_t y;
  if (r->mti >= 624) {
    int kk;
    for (kk = 0; kk < 624 - 397; kk++) {
      y = (r->mt[kk] & 0x80000000u) | (r->mt[kk + 1] & 0x7fffffffu);
      r->mt[kk] = r->mt[kk + 397] ^ (y >> 1) ^ mag01[y & 1];
    }
    for (; kk < 623; kk++) {
      y = (r->mt[kk] & 0x80000000u) | (r->mt[kk + 1] & 0x7fffffffu);
      r->mt[kk] = r->mt[kk + (397 - 624)] ^ (y >> 1) ^ mag01[y & 1];
    }
    y = (r->mt[623] & 0x80000000u) | (r->mt[0] & 0x7fffffffu);
    r->mt[623] = r->mt[396] ^ (y >> 1) ^ mag01[y & 1];
    r->mti = 0;
  }
  y = r->mt[r->mti++];
  y ^= y >> 11;
  y ^= (y << 7) & 0x9d2c5680u;
  y ^= (y << 15) & 0xefc60000u;
  y ^= y >> 18;
  return y;
}

uint32_t cl_pyrand_bits(cl_pyrand *r, int k) { return cl_pyrand_u32(r) >> (32 - k); }

uint32_t cl_pyrand_below(cl_pyrand *r, uint32_t n) {
  int k = 0;
  while (k < 32 && (n >> k)) k++; /* n.bit_length() */
  uint32_t v = cl_pyrand_bits(r, k);
  while (v >= n) v = cl_pyrand_bits(r, k);
  return v;
}

double cl_pyrand_random(cl_pyrand *r) {
  uint32_t a = cl_pyrand_u32(r) >> 5, b = cl_pyrand_u32(r) >> 6;
  return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0);
}

void cl_pyrand_shuffle(cl_pyrand *r, int *x, int n) {
  for (int i = n - 1; i > 0; i--) {
    int j = (int)cl_pyrand_below(r, (uint32_t)i + 1);
    int t = x[i];
    x[i] = x[j];
    x[j] = t;
  }
}
