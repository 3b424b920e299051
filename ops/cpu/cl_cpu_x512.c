/* cl_cpu_x512: the CPU backend's AVX-512 kernels (see cl_cpu_simd.h). Compiled for
 * x86-64-v3 like the rest of clade; the functions here carry their own target attribute
 * and run only after cl_cpu_avx512() has checked the CPU.
 *
 * GEMM: GotoBLAS/BLIS blocking with a 12x32 micro-kernel (24 zmm accumulators, broadcasts of
 * A against two vectors of B). For each kc block, op(B) is packed in panels of 32 columns
 * (weights [n,k] are transposed 16x16 at a time) and A in [kc][12] micro-panels, then the
 * micro-kernel runs over tiles of micro-panels x panels (one thread: in order; a team: tiles
 * handed out dynamically). Partial sums live in C between kc blocks; the last block applies
 * the epilogue in registers: + C (accumulate, or earlier blocks), + bias, activation.
 * Everything is fp32 with FMA; only the summation order differs from OpenBLAS's. */
#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cl_cpu_simd.h"

#define X512 __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")))
#define X512I static inline __attribute__((always_inline, target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")))

enum { MR = 12, NR = 32, KC = 256, MC = 192, NB = 16 };
_Static_assert(NR == CL_CPU_PANEL, "prepacked panels are the micro-kernel's");

static int have_avx512;
static pthread_once_t avx512_once = PTHREAD_ONCE_INIT;
static void check_avx512(void) {
  const char *k = getenv("CLADE_CPU_KERNELS");
  __builtin_cpu_init();
  have_avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                !(k && !strcmp(k, "blas"));
}

int cl_cpu_avx512(void) {
  pthread_once(&avx512_once, check_avx512);
  return have_avx512;
}

/* ---------------- vector math ---------------- */

/* expf to about 1 ulp (Cephes' polynomial, 2^n by scalef). Inputs are clamped to
 * [-87, 88.37]: below -87 the result would be (nearly) subnormal, which costs a microcode
 * assist per lane on Intel cores; callers that need exact zeros there mask them. */
X512I __m512 exp512(__m512 x) {
  x = _mm512_min_ps(x, _mm512_set1_ps(88.3762626647949f));
  x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
  __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r);
  p = _mm512_add_ps(p, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

/* erff to within 1 ulp (N. Juffa's minimax approximations): an odd polynomial below
 * |x| = 0.9277, 1 - exp(poly) above; both computed, blended by lane. */
X512I __m512 erf512(__m512 a) {
  const __m512 t = _mm512_abs_ps(a), s = _mm512_mul_ps(a, a);
  __m512 r = _mm512_fmadd_ps(_mm512_set1_ps(-1.72853470e-5f), t, _mm512_set1_ps(3.83197126e-4f));
  __m512 u = _mm512_fmadd_ps(_mm512_set1_ps(-3.88396438e-3f), t, _mm512_set1_ps(2.42546219e-2f));
  r = _mm512_fmadd_ps(r, s, u);
  r = _mm512_fmadd_ps(r, t, _mm512_set1_ps(-1.06777877e-1f));
  r = _mm512_fmadd_ps(r, t, _mm512_set1_ps(-6.34846687e-1f));
  r = _mm512_fmadd_ps(r, t, _mm512_set1_ps(-1.28717512e-1f));
  r = _mm512_fmadd_ps(r, t, _mm512_sub_ps(_mm512_setzero_ps(), t));
  __m512 big = _mm512_sub_ps(_mm512_set1_ps(1.0f), exp512(r));
  /* copysign */
  big = _mm512_or_ps(big, _mm512_and_ps(a, _mm512_set1_ps(-0.0f)));
  __m512 q = _mm512_set1_ps(-5.96761703e-4f);
  q = _mm512_fmadd_ps(q, s, _mm512_set1_ps(4.99119423e-3f));
  q = _mm512_fmadd_ps(q, s, _mm512_set1_ps(-2.67681349e-2f));
  q = _mm512_fmadd_ps(q, s, _mm512_set1_ps(1.12819925e-1f));
  q = _mm512_fmadd_ps(q, s, _mm512_set1_ps(-3.76125336e-1f));
  q = _mm512_fmadd_ps(q, s, _mm512_set1_ps(1.28379166e-1f));
  q = _mm512_fmadd_ps(q, a, a);
  __mmask16 m = _mm512_cmp_ps_mask(t, _mm512_set1_ps(0.927734375f), _CMP_GT_OQ);
  return _mm512_mask_blend_ps(m, q, big);
}

/* exact GELU 0.5 x (1 + erf(x / sqrt 2)), as the scalar path and PyTorch compute it */
X512I __m512 gelu512(__m512 x) {
  __m512 e = erf512(_mm512_mul_ps(x, _mm512_set1_ps((float)M_SQRT1_2)));
  return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), x), _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

/* x * sigmoid(1.702 x); below x = -51 the sigmoid is subnormal or 0 in fp32: 0 there (the
 * scalar path's expf overflows to inf and gives the same -0) */
X512I __m512 quickgelu512(__m512 x) {
  __m512 e = exp512(_mm512_mul_ps(x, _mm512_set1_ps(-1.702f)));
  __m512 sig = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_add_ps(_mm512_set1_ps(1.0f), e));
  sig = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, _mm512_set1_ps(-51.0f), _CMP_GE_OQ), sig);
  return _mm512_mul_ps(x, sig);
}

X512I __m512 act512(__m512 x, cl_act act) {
  return act == CL_ACT_GELU ? gelu512(x) : act == CL_ACT_QUICKGELU ? quickgelu512(x) : x;
}

X512 void cl_cpu_act_x512(float *x, size_t n, cl_act act) {
  if (act != CL_ACT_GELU && act != CL_ACT_QUICKGELU) return;
  size_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, act512(_mm512_loadu_ps(x + i), act));
  if (i < n) {
    __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(x + i, m, act512(_mm512_maskz_loadu_ps(m, x + i), act));
  }
}

/* The activations' derivatives: GELU 0.5 (1 + erf(x/sqrt2)) + x exp(-x^2/2) / sqrt(2 pi);
 * QuickGELU s + 1.702 x s (1 - s) with s = sigmoid(1.702 x), 0 below x = -51 as the forward. */
X512I __m512 act_grad512(__m512 x, cl_act act) {
  if (act == CL_ACT_GELU) {
    const __m512 e = erf512(_mm512_mul_ps(x, _mm512_set1_ps((float)M_SQRT1_2)));
    const __m512 g = exp512(_mm512_mul_ps(_mm512_set1_ps(-0.5f), _mm512_mul_ps(x, x)));
    return _mm512_fmadd_ps(_mm512_mul_ps(x, g), _mm512_set1_ps(0.3989422804014327f),
                           _mm512_mul_ps(_mm512_set1_ps(0.5f), _mm512_add_ps(_mm512_set1_ps(1.0f), e)));
  }
  const __m512 e = exp512(_mm512_mul_ps(x, _mm512_set1_ps(-1.702f)));
  __m512 s = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_add_ps(_mm512_set1_ps(1.0f), e));
  s = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, _mm512_set1_ps(-51.0f), _CMP_GE_OQ), s);
  const __m512 t = _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(1.702f), x), _mm512_sub_ps(_mm512_set1_ps(1.0f), s));
  return _mm512_fmadd_ps(s, t, s);
}

X512 void cl_cpu_act_grad_x512(float *dx, const float *dy, const float *x, size_t n, cl_act act) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(dx + i, _mm512_mul_ps(_mm512_loadu_ps(dy + i), act_grad512(_mm512_loadu_ps(x + i), act)));
  if (i < n) {
    __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(dx + i, m,
                          _mm512_mul_ps(_mm512_maskz_loadu_ps(m, dy + i), act_grad512(_mm512_maskz_loadu_ps(m, x + i), act)));
  }
}

/* A softmax's exponentials: x[i] = exp(x[i] - m) (0 below -87, where expf is subnormal), their
 * sum in double lanes. */
X512 double cl_cpu_expsum_x512(float *x, size_t n, float m) {
  const __m512 mv = _mm512_set1_ps(m), lo = _mm512_set1_ps(-87.0f);
  __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
  size_t i = 0;
  for (; i < n; i += 16) {
    const __mmask16 k = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
    const __m512 v = _mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), mv);
    const __m512 e = _mm512_maskz_mov_ps(k & _mm512_cmp_ps_mask(v, lo, _CMP_GE_OQ), exp512(v));
    _mm512_mask_storeu_ps(x + i, k, e);
    s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
    s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1))));
  }
  return _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
}

/* One LayerNorm row: sums in double lanes (as the scalar path), the rest in fp32. */
X512 void cl_cpu_layernorm_x512(float *y, const float *x, const float *g, const float *b, int n, float eps) {
  __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
  int j = 0;
  for (; j + 16 <= n; j += 16) {
    const __m512 v = _mm512_loadu_ps(x + j);
    s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
    s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))));
  }
  double sum = _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
  for (; j < n; j++) sum += x[j];
  const double mean = sum / n;
  const __m512d mv = _mm512_set1_pd(mean);
  s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
  for (j = 0; j + 16 <= n; j += 16) {
    const __m512 v = _mm512_loadu_ps(x + j);
    const __m512d d0 = _mm512_sub_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(v)), mv);
    const __m512d d1 =
        _mm512_sub_pd(_mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))), mv);
    s0 = _mm512_fmadd_pd(d0, d0, s0);
    s1 = _mm512_fmadd_pd(d1, d1, s1);
  }
  double var = _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
  for (; j < n; j++) var += (x[j] - mean) * (x[j] - mean);
  const float rstd = (float)(1.0 / sqrt(var / n + eps)), meanf = (float)mean;
  const __m512 mf = _mm512_set1_ps(meanf), rs = _mm512_set1_ps(rstd);
  for (j = 0; j + 16 <= n; j += 16) {
    const __m512 t = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(x + j), mf), rs);
    _mm512_storeu_ps(y + j, _mm512_add_ps(_mm512_mul_ps(t, _mm512_loadu_ps(g + j)), _mm512_loadu_ps(b + j)));
  }
  for (; j < n; j++) y[j] = (x[j] - meanf) * rstd * g[j] + b[j];
}

/* ---------------- 16x16 transpose ---------------- */

X512I void tr16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; i++) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; i++) {
    __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
    __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
    r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
    r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
  }
  for (int i = 0; i < 4; i++) {
    t[i] = _mm512_shuffle_f32x4(r[i], r[4 + i], 0x88);
    t[4 + i] = _mm512_shuffle_f32x4(r[i], r[4 + i], 0xdd);
    t[8 + i] = _mm512_shuffle_f32x4(r[8 + i], r[12 + i], 0x88);
    t[12 + i] = _mm512_shuffle_f32x4(r[8 + i], r[12 + i], 0xdd);
  }
  for (int i = 0; i < 4; i++) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0x88);
    r[8 + i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0xdd);
    r[4 + i] = _mm512_shuffle_f32x4(t[4 + i], t[12 + i], 0x88);
    r[12 + i] = _mm512_shuffle_f32x4(t[4 + i], t[12 + i], 0xdd);
  }
}

static inline __mmask16 lanes(int n) { return n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n > 0 ? n : 0)) - 1); }

/* ---------------- packing ---------------- */

/* One B panel, kc x 32 floats, [p][jj]: columns j0 .. j0+nr of op(B), rows p0 .. p0+kc of the
 * k dimension; columns past nr are zero. transb: op(B)[p][j] = b[j*ldb + p]. */
X512 static void pack_b(int transb, const float *b, int ldb, int j0, int nr, int p0, int kc, float *dst) {
  if (!transb) {
    const __mmask16 m0 = lanes(nr), m1 = lanes(nr - 16);
    for (int p = 0; p < kc; p++) {
      const float *s = b + (size_t)(p0 + p) * ldb + j0;
      _mm512_store_ps(dst + p * NR, _mm512_maskz_loadu_ps(m0, s));
      _mm512_store_ps(dst + p * NR + 16, _mm512_maskz_loadu_ps(m1, s + 16));
    }
    return;
  }
  for (int h = 0; h < 2; h++) { /* 16 columns of op(B) = 16 rows of b at a time */
    const int rows = nr - 16 * h;
    if (rows <= 0) {
      for (int p = 0; p < kc; p++) _mm512_store_ps(dst + p * NR + 16 * h, _mm512_setzero_ps());
      continue;
    }
    const float *src[16];
    for (int r = 0; r < 16; r++) src[r] = r < rows ? b + (size_t)(j0 + 16 * h + r) * ldb + p0 : NULL;
    int p = 0;
    for (; p + 16 <= kc; p += 16) {
      __m512 v[16];
      for (int r = 0; r < 16; r++) v[r] = src[r] ? _mm512_loadu_ps(src[r] + p) : _mm512_setzero_ps();
      tr16(v);
      for (int q = 0; q < 16; q++) _mm512_store_ps(dst + (p + q) * NR + 16 * h, v[q]);
    }
    if (p < kc) {
      const __mmask16 m = lanes(kc - p);
      __m512 v[16];
      for (int r = 0; r < 16; r++) v[r] = src[r] ? _mm512_maskz_loadu_ps(m, src[r] + p) : _mm512_setzero_ps();
      tr16(v);
      for (int q = 0; p + q < kc; q++) _mm512_store_ps(dst + (p + q) * NR + 16 * h, v[q]);
    }
  }
}

/* One A micro-panel, kc x 12 floats, [p][r]: rows i0 .. i0+mr of a (zero past mr), columns
 * p0 .. p0+kc. 16 columns at a time through a 16x16 transpose (4 rows zero). */
X512 static void pack_a(const float *a, int lda, int mr, int kc, float *dst) {
  int p = 0;
  for (; p + 16 <= kc; p += 16) {
    __m512 v[16];
    for (int r = 0; r < 16; r++) v[r] = r < mr ? _mm512_loadu_ps(a + (size_t)r * lda + p) : _mm512_setzero_ps();
    tr16(v);
    /* overlapping stores: each writes 16 floats, the next one overwrites the last 4 */
    for (int q = 0; q < 15; q++) _mm512_storeu_ps(dst + (p + q) * MR, v[q]);
    _mm512_mask_storeu_ps(dst + (p + 15) * MR, 0x0fff, v[15]);
  }
  if (p < kc) {
    const __mmask16 m = lanes(kc - p);
    __m512 v[16];
    for (int r = 0; r < 16; r++)
      v[r] = r < mr ? _mm512_maskz_loadu_ps(m, a + (size_t)r * lda + p) : _mm512_setzero_ps();
    tr16(v);
    for (int q = 0; p + q < kc; q++) _mm512_mask_storeu_ps(dst + (p + q) * MR, 0x0fff, v[q]);
  }
}

/* ---------------- micro-kernel ---------------- */

/* The epilogue: c[mr, nr] (row stride ldc) = the tile's sums (c0: columns 0-15, c1: 16-31),
 * plus the current c when load_c; when last, plus bias, then act. */
X512I void tile_store(const __m512 c0[MR], const __m512 c1[MR], float *c, int ldc, int mr, int nr, int load_c,
                      int last, const float *bias, cl_act act) {
  const __mmask16 m0 = lanes(nr), m1 = lanes(nr - 16);
  __m512 bias0 = _mm512_setzero_ps(), bias1 = _mm512_setzero_ps();
  if (last && bias) bias0 = _mm512_maskz_loadu_ps(m0, bias), bias1 = _mm512_maskz_loadu_ps(m1, bias + 16);
#pragma GCC unroll 12
  for (int r = 0; r < MR; r++) {
    if (r >= mr) break;
    float *cr = c + (size_t)r * ldc;
    __m512 v0 = c0[r], v1 = c1[r];
    if (load_c) v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, cr)), v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, cr + 16));
    if (last) {
      v0 = act512(_mm512_add_ps(v0, bias0), act);
      v1 = act512(_mm512_add_ps(v1, bias1), act);
    }
    _mm512_mask_storeu_ps(cr, m0, v0);
    _mm512_mask_storeu_ps(cr + 16, m1, v1);
  }
}

/* c[mr, nr] (row stride ldc) = epilogue(ap [kc][12] x bp [kc][32]). load_c: add the current
 * c; last: then add bias and apply act. */
X512 static void kernel(int kc, const float *restrict ap, const float *restrict bp, float *c, int ldc, int mr,
                        int nr, int load_c, int last, const float *bias, cl_act act) {
  __m512 c0[MR], c1[MR];
#pragma GCC unroll 12
  for (int r = 0; r < MR; r++) c0[r] = _mm512_setzero_ps(), c1[r] = _mm512_setzero_ps();
  for (int r = 0; r < mr; r++) { /* the C tile is read or written at the end: fetch it now */
    _mm_prefetch((const char *)(c + (size_t)r * ldc), _MM_HINT_T0);
    _mm_prefetch((const char *)(c + (size_t)r * ldc + 16), _MM_HINT_T0);
  }
  for (int p = 0; p < kc; p++) {
    const __m512 b0 = _mm512_load_ps(bp), b1 = _mm512_load_ps(bp + 16);
    _mm_prefetch((const char *)(bp + 8 * NR), _MM_HINT_T0);
    _mm_prefetch((const char *)(bp + 8 * NR + 16), _MM_HINT_T0);
#pragma GCC unroll 12
    for (int r = 0; r < MR; r++) {
      const __m512 av = _mm512_set1_ps(ap[r]);
      c0[r] = _mm512_fmadd_ps(av, b0, c0[r]);
      c1[r] = _mm512_fmadd_ps(av, b1, c1[r]);
    }
    ap += MR;
    bp += NR;
  }
  tile_store(c0, c1, c, ldc, mr, nr, load_c, last, bias, act);
}

/* ---------------- per-thread packing buffers ---------------- */

typedef struct tbuf {
  float *a, *b;
  size_t acap, bcap; /* floats */
} tbuf;

static pthread_key_t tkey;
static pthread_once_t tonce = PTHREAD_ONCE_INIT;

static void tbuf_free(void *p) {
  tbuf *t = p;
  if (!t) return;
  free(t->a), free(t->b), free(t);
}
static void tkey_make(void) { pthread_key_create(&tkey, tbuf_free); }

static float *grow(float **p, size_t *cap, size_t n) {
  if (n <= *cap) return *p;
  free(*p);
  *p = NULL, *cap = 0;
  void *q = NULL;
  if (posix_memalign(&q, 64, n * sizeof(float)) != 0) return NULL;
  *p = q, *cap = n;
  return *p;
}

static tbuf *thread_bufs(void) {
  pthread_once(&tonce, tkey_make);
  tbuf *t = pthread_getspecific(tkey);
  if (!t) {
    t = calloc(1, sizeof *t);
    if (!t) abort();
    pthread_setspecific(tkey, t);
  }
  return t;
}

/* ---------------- the GEMM ---------------- */

X512 void cl_cpu_pack_b_x512(const float *w, int n, int k, float *dst) {
#pragma omp parallel for schedule(dynamic)
  for (int q = 0; q < n / NR; q++) pack_b(1, w, k, q * NR, NR, 0, k, dst + (size_t)q * k * NR);
}

/* Panel q of op(B) for the kc block starting at pc: in the caller's prepacked panels
 * ([npan][k][32]: the block is a contiguous slice of the panel) or in the packing buffer. */
static inline const float *b_panel(int transb, const float *b, int k, const float *bp, int q, int pc, int kc) {
  return transb == CL_CPU_B_PACKED ? b + (size_t)q * k * NR + (size_t)pc * NR : bp + (size_t)q * kc * NR;
}

X512 void cl_cpu_gemm_x512(int transb, int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                           float *c, int ldc, const float *bias, cl_act act, int accumulate) {
  if (m <= 0 || n <= 0) return;
  tbuf *t = thread_bufs();
  const int npan = (n + NR - 1) / NR, npad = npan * NR, packed = transb == CL_CPU_B_PACKED;
  float *bp = packed ? NULL : grow(&t->b, &t->bcap, (size_t)KC * npad), *ap = grow(&t->a, &t->acap, (size_t)MC * KC);
  if ((!packed && !bp) || !ap) abort();
  for (int pc = 0; pc < k; pc += KC) {
    const int kc = k - pc < KC ? k - pc : KC, first = pc == 0, last = pc + kc == k;
    /* this kc block of op(B): npan panels of kc x 32 floats */
    for (int q = 0; q < npan && !packed; q++)
      pack_b(transb, b, ldb, q * NR, n - q * NR < NR ? n - q * NR : NR, pc, kc, bp + (size_t)q * kc * NR);
    for (int ic = 0; ic < m; ic += MC) {
      const int mc = m - ic < MC ? m - ic : MC, nmp = (mc + MR - 1) / MR;
      for (int s = 0; s < nmp; s++)
        pack_a(a + (size_t)(ic + s * MR) * lda + pc, lda, mc - s * MR < MR ? mc - s * MR : MR, kc, ap + (size_t)s * kc * MR);
      /* blocks of NB panels (kc x 512 floats, in L2); in a block, each A micro-panel (in L1)
       * meets every panel, so C is swept along rows */
      for (int q0 = 0; q0 < npan; q0 += NB)
        for (int s = 0; s < nmp; s++) {
          const int mr = mc - s * MR < MR ? mc - s * MR : MR;
          for (int q = q0; q < npan && q < q0 + NB; q++)
            kernel(kc, ap + (size_t)s * kc * MR, b_panel(transb, b, k, bp, q, pc, kc),
                   c + (size_t)(ic + s * MR) * ldc + q * NR,
                   ldc, mr, n - q * NR < NR ? n - q * NR : NR, !first || accumulate, last, bias ? bias + q * NR : NULL,
                   act);
        }
    }
  }
}

/* Tiles of mb micro-panels x nb panels for a team of nt: at most 192 rows x 512 columns,
 * and at least 4 tiles per thread when the problem allows it (fewer rows first, then 128
 * columns). Returns the number of tiles; cg: column groups. */
static int tile_shape(int nmp, int npan, int nt, int *mbp, int *nbp, int *cgp) {
  int nb = NB, mb = MC / MR;
  int cg = (npan + nb - 1) / nb, rb = (nmp + mb - 1) / mb;
  if (rb * cg < 4 * nt) {
    int want_rb = (4 * nt + cg - 1) / cg;
    if (want_rb > nmp) want_rb = nmp;
    mb = (nmp + want_rb - 1) / want_rb;
    rb = (nmp + mb - 1) / mb;
    if (rb * cg < 4 * nt && nb > 4) {
      nb = 4;
      cg = (npan + nb - 1) / nb;
    }
  }
  *mbp = mb, *nbp = nb, *cgp = cg;
  return rb * cg;
}

/* Tile t of tile_shape's: micro-panels [s0, s1), panels [q0, q1). */
static inline void tile_span(int t, int cg, int mb, int nb, int nmp, int npan, int *s0, int *s1, int *q0, int *q1) {
  *s0 = t / cg * mb, *q0 = t % cg * nb;
  *s1 = *s0 + mb < nmp ? *s0 + mb : nmp, *q1 = *q0 + nb < npan ? *q0 + nb : npan;
}

/* The same over a team of nt OpenMP threads, balanced dynamically so that a thread slowed
 * by a busy core (parallel tests, other jobs) takes less of the work: per kc block, the
 * team packs all of op(B) and all of A into shared buffers, then takes tiles of up to 16
 * micro-panels x 16 panels (192 rows x 512 columns) from a shared counter. Packing is done
 * once per call, whatever the split. */
X512 void cl_cpu_gemm_x512_mt(int transb, int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                              float *c, int ldc, const float *bias, cl_act act, int accumulate, int nt) {
  if (m <= 0 || n <= 0) return;
  tbuf *t = thread_bufs(); /* the caller's buffers, shared with its team */
  const int npan = (n + NR - 1) / NR, npad = npan * NR, nmp = (m + MR - 1) / MR, packed = transb == CL_CPU_B_PACKED;
  const int npack = packed ? 0 : npan; /* B panels to pack per kc block */
  float *bp = packed ? NULL : grow(&t->b, &t->bcap, (size_t)KC * npad), *ap = grow(&t->a, &t->acap, (size_t)nmp * MR * KC);
  if ((!packed && !bp) || !ap) abort();
  int mb, nb, cg;
  const int tiles = tile_shape(nmp, npan, nt, &mb, &nb, &cg);
#pragma omp parallel num_threads(nt)
  for (int pc = 0; pc < k; pc += KC) {
    const int kc = k - pc < KC ? k - pc : KC, first = pc == 0, last = pc + kc == k;
#pragma omp for schedule(dynamic, 2)
    for (int i = 0; i < npack + nmp; i++) {
      if (i < npack)
        pack_b(transb, b, ldb, i * NR, n - i * NR < NR ? n - i * NR : NR, pc, kc, bp + (size_t)i * kc * NR);
      else
        pack_a(a + (size_t)(i - npack) * MR * lda + pc, lda, m - (i - npack) * MR < MR ? m - (i - npack) * MR : MR,
               kc, ap + (size_t)(i - npack) * kc * MR);
    }
    /* (the barrier above: every panel is packed) */
#pragma omp for schedule(dynamic)
    for (int tile = 0; tile < tiles; tile++) {
      int s0, s1, q0, q1;
      tile_span(tile, cg, mb, nb, nmp, npan, &s0, &s1, &q0, &q1);
      for (int s = s0; s < s1; s++) {
        const int mr = m - s * MR < MR ? m - s * MR : MR;
        for (int q = q0; q < q1; q++)
          kernel(kc, ap + (size_t)s * kc * MR, b_panel(transb, b, k, bp, q, pc, kc),
                 c + (size_t)s * MR * ldc + q * NR, ldc, mr,
                 n - q * NR < NR ? n - q * NR : NR, !first || accumulate, last, bias ? bias + q * NR : NULL, act);
      }
    }
    /* (and this one: nobody still reads the buffers the next block overwrites) */
  }
}

/* ---------------- bf16 GEMM (AVX512_BF16) ----------------
 * The same blocking with vdpbf16ps: each 32-bit lane holds a pair of bf16 values, k and k+1
 * (the lower half is k), and one instruction adds both products to an fp32 accumulator, so
 * a step covers two k. Weights are packed once as [n/32][k/2][32] pairs, A per kc block as
 * [kc/2][12] pairs; inputs are rounded to nearest even, sums and the epilogue stay fp32. */

#define XBF __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx512bf16,avx2,fma")))
enum { KCB = 2 * KC }; /* k per block: 256 pairs, the same bytes as the fp32 blocks */

static int have_bf16;
static pthread_once_t bf16_once = PTHREAD_ONCE_INIT;
static void check_bf16(void) { have_bf16 = cl_cpu_avx512() && __builtin_cpu_supports("avx512bf16"); }

int cl_cpu_bf16(void) {
  pthread_once(&bf16_once, check_bf16);
  return have_bf16;
}

/* bf16 of each lane (round to nearest even) in the upper 16 bits; inf stays inf, a NaN whose
 * payload is only in the low 16 bits becomes inf (weights and activations are finite) */
X512I __m512i bf16_hi(__m512 x) {
  __m512i u = _mm512_castps_si512(x);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  u = _mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff)));
  return _mm512_and_si512(u, _mm512_set1_epi32((int)0xffff0000u));
}

/* lanes of pairs: bf16(lo) | bf16(hi) << 16 */
X512I __m512i bf16_pair(__m512 lo, __m512 hi) {
  return _mm512_or_si512(_mm512_srli_epi32(bf16_hi(lo), 16), bf16_hi(hi));
}

/* Panel q of cl_cpu_pack_b_bf16_x512. A function of its own (not inlined) so that the OpenMP
 * region calling it holds no AVX-512 values: clang outlines that region without this target
 * attribute and refuses AVX-512 code in it. */
__attribute__((noinline, target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")))
static void pack_b_bf16_panel(const float *w, int k, int q, float *tmp, uint32_t *dst) {
  const int kp = (k + 1) / 2;
  pack_b(1, w, k, q * NR, NR, 0, k, tmp); /* [k][32] fp32 */
  uint32_t *d = dst + (size_t)q * kp * NR;
  for (int p = 0; p < kp; p++)
    for (int h = 0; h < NR; h += 16) {
      const __m512 lo = _mm512_load_ps(tmp + (size_t)2 * p * NR + h);
      const __m512 hi = 2 * p + 1 < k ? _mm512_load_ps(tmp + (size_t)(2 * p + 1) * NR + h) : _mm512_setzero_ps();
      _mm512_store_si512(d + (size_t)p * NR + h, bf16_pair(lo, hi));
    }
}

X512 void cl_cpu_pack_b_bf16_x512(const float *w, int n, int k, uint32_t *dst) {
#pragma omp parallel
  {
    float *tmp = NULL;
    if (posix_memalign((void **)&tmp, 64, (size_t)k * NR * sizeof *tmp) != 0) abort();
#pragma omp for schedule(dynamic)
    for (int q = 0; q < n / NR; q++) pack_b_bf16_panel(w, k, q, tmp, dst);
    free(tmp);
  }
}

/* One A micro-panel as pairs, (kc+1)/2 x 12: the fp32 micro-panel, then rows 2p and 2p+1
 * rounded and paired. */
X512 static void pack_a_bf16(const float *a, int lda, int mr, int kc, uint32_t *dst) {
  float tmp[KCB * MR + 16] __attribute__((aligned(64)));
  pack_a(a, lda, mr, kc, tmp);
  for (int p = 0; 2 * p < kc; p++) {
    const __m512 lo = _mm512_maskz_loadu_ps(0x0fff, tmp + 2 * p * MR);
    const __m512 hi = 2 * p + 1 < kc ? _mm512_maskz_loadu_ps(0x0fff, tmp + (2 * p + 1) * MR) : _mm512_setzero_ps();
    _mm512_mask_storeu_epi32(dst + p * MR, 0x0fff, bf16_pair(lo, hi));
  }
}

XBF static void kernel_bf16(int kp, const uint32_t *restrict ap, const uint32_t *restrict bp, float *c, int ldc,
                            int mr, int nr, int load_c, int last, const float *bias, cl_act act) {
  __m512 c0[MR], c1[MR];
#pragma GCC unroll 12
  for (int r = 0; r < MR; r++) c0[r] = _mm512_setzero_ps(), c1[r] = _mm512_setzero_ps();
  for (int r = 0; r < mr; r++) {
    _mm_prefetch((const char *)(c + (size_t)r * ldc), _MM_HINT_T0);
    _mm_prefetch((const char *)(c + (size_t)r * ldc + 16), _MM_HINT_T0);
  }
  for (int p = 0; p < kp; p++) {
    const __m512bh b0 = (__m512bh)_mm512_load_si512(bp), b1 = (__m512bh)_mm512_load_si512(bp + 16);
    _mm_prefetch((const char *)(bp + 8 * NR), _MM_HINT_T0);
    _mm_prefetch((const char *)(bp + 8 * NR + 16), _MM_HINT_T0);
#pragma GCC unroll 12
    for (int r = 0; r < MR; r++) {
      const __m512bh av = (__m512bh)_mm512_set1_epi32((int)ap[r]);
      c0[r] = _mm512_dpbf16_ps(c0[r], av, b0);
      c1[r] = _mm512_dpbf16_ps(c1[r], av, b1);
    }
    ap += MR;
    bp += NR;
  }
  tile_store(c0, c1, c, ldc, mr, nr, load_c, last, bias, act);
}

XBF void cl_cpu_gemm_bf16_x512(int m, int n, int k, const float *a, int lda, const uint32_t *b, float *c, int ldc,
                               const float *bias, cl_act act, int accumulate, int nt) {
  if (m <= 0 || n <= 0) return;
  tbuf *t = thread_bufs();
  const int npan = n / NR, nmp = (m + MR - 1) / MR, kp = (k + 1) / 2;
  uint32_t *ap = (uint32_t *)grow(&t->a, &t->acap, (size_t)nmp * MR * (KCB / 2));
  if (!ap) abort();
  int mb, nb, cg;
  const int tiles = tile_shape(nmp, npan, nt, &mb, &nb, &cg);
#pragma omp parallel num_threads(nt) if (nt > 1)
  for (int pc = 0; pc < k; pc += KCB) {
    const int kc = k - pc < KCB ? k - pc : KCB, kcp = (kc + 1) / 2, first = pc == 0, last = pc + kc == k;
#pragma omp for schedule(dynamic, 2)
    for (int s = 0; s < nmp; s++)
      pack_a_bf16(a + (size_t)s * MR * lda + pc, lda, m - s * MR < MR ? m - s * MR : MR, kc,
                  ap + (size_t)s * kcp * MR);
#pragma omp for schedule(dynamic)
    for (int tile = 0; tile < tiles; tile++) {
      int s0, s1, q0, q1;
      tile_span(tile, cg, mb, nb, nmp, npan, &s0, &s1, &q0, &q1);
      for (int s = s0; s < s1; s++) {
        const int mr = m - s * MR < MR ? m - s * MR : MR;
        for (int q = q0; q < q1; q++)
          kernel_bf16(kcp, ap + (size_t)s * kcp * MR, b + (size_t)q * kp * NR + (size_t)(pc / 2) * NR,
                      c + (size_t)s * MR * ldc + q * NR, ldc, mr, NR, !first || accumulate, last,
                      bias ? bias + q * NR : NULL, act);
      }
    }
  }
}

/* ---------------- attention ---------------- */

size_t cl_cpu_attn_x512_scratch(int len, int dh) {
  const size_t lp = ((size_t)len + 31) & ~(size_t)31, rows = ((size_t)len + MR - 1) / MR * MR;
  return (size_t)dh * lp + rows * lp + (size_t)dh * MR + (size_t)len * dh + 16;
}

/* scores s[r][j] = q_r . k_j for 12 rows (qp [dh][12], already scaled) against keys
 * j0 .. j0+32 of kt [dh][lp] */
X512I void scores12(const float *qp, int dh, const float *kt, int lp, int j0, float *s) {
  __m512 c0[MR], c1[MR];
#pragma GCC unroll 12
  for (int r = 0; r < MR; r++) c0[r] = _mm512_setzero_ps(), c1[r] = _mm512_setzero_ps();
  for (int d = 0; d < dh; d++) {
    const __m512 k0 = _mm512_load_ps(kt + (size_t)d * lp + j0), k1 = _mm512_load_ps(kt + (size_t)d * lp + j0 + 16);
#pragma GCC unroll 12
    for (int r = 0; r < MR; r++) {
      const __m512 qv = _mm512_set1_ps(qp[d * MR + r]);
      c0[r] = _mm512_fmadd_ps(qv, k0, c0[r]);
      c1[r] = _mm512_fmadd_ps(qv, k1, c1[r]);
    }
  }
#pragma GCC unroll 12
  for (int r = 0; r < MR; r++) {
    _mm512_store_ps(s + (size_t)r * lp + j0, c0[r]);
    _mm512_store_ps(s + (size_t)r * lp + j0 + 16, c1[r]);
  }
}

/* exp(x) for x <= 0, exactly 0 below -87 (where expf is subnormal or 0: its products in
 * p v would be subnormal too, and slow) */
X512I __m512 softexp(__m512 x) {
  return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.0f), _CMP_GE_OQ), exp512(x));
}

/* out rows r0 .. r0+rows (<= 6) = p [rows][lp] x v [nj][dh], NV vectors of 16 per row */
#define PV_ROWS 6
X512I void pv_rows(float *out, int ldo, const float *p, int lp, const float *v, int ldq, int nj, int rows, int nv) {
  __m512 acc[PV_ROWS][4];
#pragma GCC unroll 6
  for (int r = 0; r < PV_ROWS; r++)
#pragma GCC unroll 4
    for (int u = 0; u < 4; u++) acc[r][u] = _mm512_setzero_ps();
  for (int j = 0; j < nj; j++) {
    const float *vj = v + (size_t)j * ldq;
    __m512 vv[4];
#pragma GCC unroll 4
    for (int u = 0; u < 4; u++) vv[u] = u < nv ? _mm512_loadu_ps(vj + 16 * u) : _mm512_setzero_ps();
#pragma GCC unroll 6
    for (int r = 0; r < PV_ROWS; r++) {
      const __m512 pr = _mm512_set1_ps(p[(size_t)r * lp + j]);
#pragma GCC unroll 4
      for (int u = 0; u < 4; u++) acc[r][u] = _mm512_fmadd_ps(pr, vv[u], acc[r][u]);
    }
  }
  for (int r = 0; r < rows; r++)
    for (int u = 0; u < nv; u++) _mm512_storeu_ps(out + (size_t)r * ldo + 16 * u, acc[r][u]);
}

X512 void cl_cpu_attn_x512(float *out, int ldo, const float *q, const float *k, const float *v, int ldq, int len,
                           int dh, int causal, float scale, float *scratch) {
  const int lp = (len + 31) & ~31, nv = dh / 16;
  const int rows_pad = (len + MR - 1) / MR * MR;
  /* kt [dh][lp]; s [rows][lp]; qp [dh][12]: a block of queries, scaled (torch scales q
   * before q k^T); vp [len][dh] */
  float *kt = scratch, *s = kt + (size_t)dh * lp, *qp = s + (size_t)rows_pad * lp, *vp = qp + (size_t)dh * MR;
  /* v packed: every block of 6 rows reads all of it, and in place its rows lie 3 widths
   * apart (one page each: TLB misses, no hardware prefetch); contiguous, +15-25% here */
  for (int j = 0; j < len; j++)
    for (int d0 = 0; d0 < dh; d0 += 16)
      _mm512_storeu_ps(vp + (size_t)j * dh + d0, _mm512_loadu_ps(v + (size_t)j * ldq + d0));
  /* k^T, zero past len */
  for (int j0 = 0; j0 < lp; j0 += 16)
    for (int d0 = 0; d0 < dh; d0 += 16) {
      __m512 t[16];
      for (int r = 0; r < 16; r++)
        t[r] = j0 + r < len ? _mm512_loadu_ps(k + (size_t)(j0 + r) * ldq + d0) : _mm512_setzero_ps();
      tr16(t);
      for (int d = 0; d < 16; d++) _mm512_store_ps(kt + (size_t)(d0 + d) * lp + j0, t[d]);
    }
  const __m512 sc = _mm512_set1_ps(scale);
  for (int i0 = 0; i0 < len; i0 += MR) {
    for (int d0 = 0; d0 < dh; d0 += 16) { /* qp[d][r] = q[i0 + r][d] * scale */
      __m512 t[16];
      for (int r = 0; r < 16; r++)
        t[r] = r < MR && i0 + r < len ? _mm512_mul_ps(_mm512_loadu_ps(q + (size_t)(i0 + r) * ldq + d0), sc)
                                      : _mm512_setzero_ps();
      tr16(t);
      for (int d = 0; d < 16; d++) _mm512_mask_storeu_ps(qp + (d0 + d) * MR, 0x0fff, t[d]);
    }
    const int last_row = i0 + MR - 1 < len - 1 ? i0 + MR - 1 : len - 1;
    const int jend = causal ? last_row + 1 : len; /* keys any row of the block sees */
    float *sb = s + (size_t)i0 * lp;
    for (int j0 = 0; j0 < jend; j0 += 32) scores12(qp, dh, kt, lp, j0, sb);
    /* row softmax; masked and padding keys get exactly 0 */
    for (int r = 0; r < MR && i0 + r < len; r++) {
      float *sr = sb + (size_t)r * lp;
      const int nj = causal ? i0 + r + 1 : len;
      __m512 mx = _mm512_set1_ps(-INFINITY);
      int j = 0;
      for (; j + 16 <= nj; j += 16) mx = _mm512_max_ps(mx, _mm512_load_ps(sr + j));
      if (j < nj) mx = _mm512_max_ps(mx, _mm512_mask_load_ps(_mm512_set1_ps(-INFINITY), lanes(nj - j), sr + j));
      const __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
      __m512 sum = _mm512_setzero_ps();
      for (j = 0; j + 16 <= nj; j += 16) {
        __m512 e = softexp(_mm512_sub_ps(_mm512_load_ps(sr + j), m));
        _mm512_store_ps(sr + j, e);
        sum = _mm512_add_ps(sum, e);
      }
      if (j < nj) {
        const __mmask16 mk = lanes(nj - j);
        __m512 e = _mm512_maskz_mov_ps(mk, softexp(_mm512_sub_ps(_mm512_load_ps(sr + j), m)));
        _mm512_store_ps(sr + j, e);
        sum = _mm512_add_ps(sum, e);
        j += 16;
      }
      for (; j < lp; j += 16) _mm512_store_ps(sr + j, _mm512_setzero_ps());
      const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
      for (j = 0; j < nj; j += 16) _mm512_store_ps(sr + j, _mm512_mul_ps(_mm512_load_ps(sr + j), inv));
    }
    for (int r0 = i0; r0 < i0 + MR && r0 < len; r0 += PV_ROWS) {
      const int rows = len - r0 < PV_ROWS ? len - r0 : PV_ROWS;
      const int nj = causal ? r0 + rows : len;
      pv_rows(out + (size_t)r0 * ldo, ldo, s + (size_t)r0 * lp, lp, vp, dh, nj, rows, nv);
    }
  }
}
