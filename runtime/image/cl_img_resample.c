/* cl_img resampling: a port of Pillow 9.4's Image.resize for the modes Image.open gives.
 * Hand-written because no library reproduces Pillow's bytes: separable antialiased bicubic
 * (a = -0.5, support scaled by the downscale factor), weights normalised in double and
 * rounded to 22-bit fixed point, horizontal pass first, each pass rounding and clipping to
 * uint8 (Resample.c); NEAREST for P and 1 (Geometry.c's ImagingScaleAffine); LA/RGBA
 * resized premultiplied (Image.resize via La/RGBa, Convert.c's integer formulas); mode I
 * through the double-precision 32bpc path.
 * Every output pixel depends only on its own weights, so a window of the output (the
 * center crop) can be computed alone with identical bytes. */

/* Pillow is built without FMA: contracting a*b+c here would change coefficient rounding. */
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "cl_image.h"

#define PRECISION_BITS (32 - 8 - 2)
#define HALF (1 << (PRECISION_BITS - 1))

static inline double bicubic(double x) {
  const double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

static inline uint8_t clip8(int v) {
  v >>= PRECISION_BITS; /* arithmetic shift, as Pillow's lookup index */
  return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* One axis's weights for outputs [o0, o0+n) of an in_size -> out_size resize. */
typedef struct {
  int ksize;
  int kstride;  /* ksize rounded up to 8, zero-padded, for 8-wide loads */
  int *bounds;  /* per output: first input index, number of taps */
  double *kd;   /* n * ksize normalised weights */
  int32_t *ki;  /* the same in fixed point */
} rs_axis;

static void rs_axis_free(rs_axis *a) {
  free(a->bounds);
  free(a->kd);
  free(a->ki);
}

/* Pillow's precompute_coeffs with box (0, in_size), then normalize_coeffs_8bpc. */
static int rs_axis_init(rs_axis *a, int in_size, int out_size, int o0, int n, cl_error *e) {
  memset(a, 0, sizeof *a);
  double scale = (double)(float)in_size / out_size, filterscale = scale;
  if (filterscale < 1.0) filterscale = 1.0;
  double support = 2.0 * filterscale;
  a->ksize = (int)ceil(support) * 2 + 1;
  a->kstride = (a->ksize + 7) & ~7;
  a->bounds = malloc(sizeof(int) * 2 * (size_t)n);
  a->kd = calloc((size_t)n * a->ksize, sizeof(double));
  a->ki = calloc((size_t)n * a->kstride, sizeof(int32_t));
  if (!a->bounds || !a->kd || !a->ki) {
    rs_axis_free(a);
    return cl_err(e, CL_ENOMEM, "out of memory for resampling weights");
  }
  double ss = 1.0 / filterscale;
  for (int i = 0; i < n; i++) {
    int xx = o0 + i;
    double center = (xx + 0.5) * scale, ww = 0.0;
    int xmin = (int)(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = (int)(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double *k = a->kd + (size_t)i * a->ksize;
    for (int x = 0; x < xmax; x++) {
      double w = bicubic(((double)(x + xmin) - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (int x = 0; x < xmax; x++)
      if (ww != 0.0) k[x] /= ww;
    int32_t *ki = a->ki + (size_t)i * a->kstride;
    for (int x = 0; x < a->ksize; x++)
      ki[x] = k[x] < 0 ? (int32_t)(-0.5 + k[x] * (1 << PRECISION_BITS))
                       : (int32_t)(0.5 + k[x] * (1 << PRECISION_BITS));
    a->bounds[2 * i] = xmin;
    a->bounds[2 * i + 1] = xmax;
  }
  return CL_OK;
}

/* Horizontal pass over one row, C channels interleaved. */
static inline __attribute__((always_inline)) void hrow_u8(const uint8_t *in, uint8_t *out,
                                                          const rs_axis *a, int n, const int C) {
  for (int x = 0; x < n; x++) {
    const int xmin = a->bounds[2 * x], cnt = a->bounds[2 * x + 1];
    const int32_t *k = a->ki + (size_t)x * a->kstride;
    const uint8_t *p = in + (size_t)xmin * C;
    int s[4] = {HALF, HALF, HALF, HALF};
    for (int t = 0; t < cnt; t++)
      for (int c = 0; c < C; c++) s[c] += p[t * C + c] * k[t];
    for (int c = 0; c < C; c++) out[x * C + c] = clip8(s[c]);
  }
}

#if defined(__AVX2__)
/* The same sums with AVX2. Integer addition is exact and no partial sum can overflow
 * (|sum| < 256 * 1.3 * 2^22), so the grouping of the taps does not change a byte. Loads
 * never pass `end`, the end of the source buffer: pixels too near it take the scalar path. */
static inline __m128i clip8x4(__m128i s) {
  s = _mm_srai_epi32(_mm_add_epi32(s, _mm_set1_epi32(HALF)), PRECISION_BITS);
  return _mm_packus_epi16(_mm_packs_epi32(s, s), s); /* clamps to 0..255 */
}

static void hrow_u8_c34(const uint8_t *in, const uint8_t *end, uint8_t *out, const rs_axis *a,
                        int n, const int C) {
  const __m256i pairsel = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1);
  const __m128i sh3 = _mm_setr_epi8(0, 1, 2, -1, 3, 4, 5, -1, -1, -1, -1, -1, -1, -1, -1, -1);
  for (int x = 0; x < n; x++) {
    const int xmin = a->bounds[2 * x], cnt = a->bounds[2 * x + 1];
    const int32_t *k = a->ki + (size_t)x * a->kstride;
    const uint8_t *p = in + (size_t)xmin * C;
    if (p + (size_t)cnt * C + 4 > end) { /* near the end: scalar */
      int s[4] = {HALF, HALF, HALF, HALF};
      for (int t = 0; t < cnt; t++)
        for (int c = 0; c < C; c++) s[c] += p[t * C + c] * k[t];
      for (int c = 0; c < C; c++) out[x * C + c] = clip8(s[c]);
      continue;
    }
    __m256i acc = _mm256_setzero_si256();
    int t = 0;
    for (; t + 1 < cnt; t += 2) {
      __m128i px = _mm_loadl_epi64((const __m128i *)(const void *)(p + (size_t)t * C));
      if (C == 3) px = _mm_shuffle_epi8(px, sh3);
      __m256i kk = _mm256_permutevar8x32_epi32(
          _mm256_castsi128_si256(_mm_loadl_epi64((const __m128i *)(const void *)(k + t))), pairsel);
      acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(px), kk));
    }
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    if (t < cnt) {
      int32_t v;
      memcpy(&v, p + (size_t)t * C, 4);
      s = _mm_add_epi32(s, _mm_mullo_epi32(_mm_cvtepu8_epi32(_mm_cvtsi32_si128(v)),
                                           _mm_set1_epi32(k[t])));
    }
    int32_t r = _mm_cvtsi128_si32(clip8x4(s));
    memcpy(out + (size_t)x * C, &r, (size_t)C); /* lane 3 of a C=3 pixel is dropped */
  }
}

static void hrow_u8_c1(const uint8_t *in, const uint8_t *end, uint8_t *out, const rs_axis *a,
                       int n) {
  for (int x = 0; x < n; x++) {
    const int xmin = a->bounds[2 * x], cnt = a->bounds[2 * x + 1];
    const int32_t *k = a->ki + (size_t)x * a->kstride;
    const uint8_t *p = in + xmin;
    const int cnt8 = (cnt + 7) & ~7; /* weights past cnt are 0 up to kstride */
    if (p + cnt8 > end) {
      int s = HALF;
      for (int t = 0; t < cnt; t++) s += p[t] * k[t];
      out[x] = clip8(s);
      continue;
    }
    __m256i acc = _mm256_setzero_si256();
    for (int t = 0; t < cnt8; t += 8) {
      __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(p + t)));
      acc = _mm256_add_epi32(
          acc, _mm256_mullo_epi32(v, _mm256_loadu_si256((const __m256i *)(const void *)(k + t))));
    }
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    out[x] = clip8(_mm_cvtsi128_si32(s) + HALF);
  }
}
#endif

static void hrow_u8_any(const uint8_t *in, const uint8_t *end, uint8_t *out, const rs_axis *a,
                        int n, int C) {
#if defined(__AVX2__)
  if (C == 1) return hrow_u8_c1(in, end, out, a, n);
  if (C == 3) return hrow_u8_c34(in, end, out, a, n, 3);
  if (C == 4) return hrow_u8_c34(in, end, out, a, n, 4);
#else
  (void)end;
#endif
  switch (C) {
    case 1: hrow_u8(in, out, a, n, 1); break;
    case 2: hrow_u8(in, out, a, n, 2); break;
    case 3: hrow_u8(in, out, a, n, 3); break;
    default: hrow_u8(in, out, a, n, 4); break;
  }
}

/* The window [x0,x0+ow) x [y0,y0+oh) of Pillow's bicubic resize of src (iw x ih, C uint8
 * channels) to W x H, into dst (ow*C bytes a row). */
static int resample_u8(const uint8_t *src, int iw, int ih, int C, int W, int H, int x0, int y0,
                       int ow, int oh, uint8_t *dst, cl_error *e) {
  int need_h = W != iw, need_v = H != ih, rc = CL_OK;
  rs_axis ax = {0}, ay = {0};
  uint8_t *tmp = NULL;
  int32_t *acc = NULL;
  int rfirst = y0, rlast = y0 + oh;
  const uint8_t *src_end = src + (size_t)iw * ih * C;
  if (need_v) {
    if ((rc = rs_axis_init(&ay, ih, H, y0, oh, e)) != CL_OK) return rc;
    rfirst = ay.bounds[0];
    rlast = ay.bounds[2 * (oh - 1)] + ay.bounds[2 * (oh - 1) + 1];
  }
  /* mid: the rows the vertical pass reads; row r lives at mid + (r - mid_r0) * mid_stride. */
  const uint8_t *mid;
  size_t mid_stride;
  int mid_r0;
  if (need_h) {
    if ((rc = rs_axis_init(&ax, iw, W, x0, ow, e)) != CL_OK) goto done;
    mid_stride = (size_t)ow * C;
    tmp = malloc(mid_stride * (size_t)(rlast - rfirst));
    if (!tmp) {
      rc = cl_err(e, CL_ENOMEM, "out of memory resizing a %dx%d image", iw, ih);
      goto done;
    }
    for (int r = rfirst; r < rlast; r++)
      hrow_u8_any(src + (size_t)r * iw * C, src_end, tmp + (size_t)(r - rfirst) * mid_stride, &ax,
                  ow, C);
    mid = tmp;
    mid_r0 = rfirst;
  } else {
    mid = src + (size_t)x0 * C;
    mid_stride = (size_t)iw * C;
    mid_r0 = 0;
  }
  const size_t rowlen = (size_t)ow * C;
  if (need_v) {
    acc = malloc(sizeof(int32_t) * rowlen);
    if (!acc) {
      rc = cl_err(e, CL_ENOMEM, "out of memory resizing a %dx%d image", iw, ih);
      goto done;
    }
    for (int j = 0; j < oh; j++) {
      const int ymin = ay.bounds[2 * j], cnt = ay.bounds[2 * j + 1];
      const int32_t *k = ay.ki + (size_t)j * ay.kstride;
      const uint8_t *rows0 = mid + (size_t)(ymin - mid_r0) * mid_stride;
      uint8_t *d = dst + (size_t)j * rowlen;
      size_t i0 = 0;
#if defined(__AVX2__)
      /* 16 samples at a time, all taps in registers. */
      for (; i0 + 16 <= rowlen; i0 += 16) {
        __m256i a0 = _mm256_set1_epi32(HALF), a1 = a0;
        const uint8_t *r = rows0 + i0;
        for (int t = 0; t < cnt; t++, r += mid_stride) {
          __m128i v = _mm_loadu_si128((const __m128i *)(const void *)r);
          __m256i kt = _mm256_set1_epi32(k[t]);
          a0 = _mm256_add_epi32(a0, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(v), kt));
          a1 = _mm256_add_epi32(a1, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(_mm_srli_si128(v, 8)), kt));
        }
        a0 = _mm256_srai_epi32(a0, PRECISION_BITS);
        a1 = _mm256_srai_epi32(a1, PRECISION_BITS);
        __m256i w = _mm256_permute4x64_epi64(_mm256_packs_epi32(a0, a1), 0xD8);
        __m128i b = _mm_packus_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
        _mm_storeu_si128((__m128i *)(void *)(d + i0), b);
      }
#endif
      if (i0 == rowlen) continue;
      for (size_t i = i0; i < rowlen; i++) acc[i] = HALF;
      /* Integer sums are exact, so summing row by row equals Pillow's per-pixel order. */
      for (int t = 0; t < cnt; t++) {
        const uint8_t *row = rows0 + (size_t)t * mid_stride;
        const int32_t kt = k[t];
        for (size_t i = i0; i < rowlen; i++) acc[i] += row[i] * kt;
      }
      for (size_t i = i0; i < rowlen; i++) d[i] = clip8(acc[i]);
    }
  } else {
    for (int j = 0; j < oh; j++)
      memcpy(dst + (size_t)j * rowlen, mid + (size_t)(y0 + j - mid_r0) * mid_stride, rowlen);
  }
done:
  free(tmp);
  free(acc);
  rs_axis_free(&ax);
  rs_axis_free(&ay);
  return rc;
}

/* Pillow's ROUND_UP for the 32bpc path. */
static inline int32_t round_up(double f) { return (int32_t)(f >= 0.0 ? f + 0.5F : f - 0.5F); }

/* Mode I: the same two passes with double weights and rounding to int32 after each. */
static int resample_i32(const int32_t *src, int iw, int ih, int W, int H, int x0, int y0, int ow,
                        int oh, int32_t *dst, cl_error *e) {
  int need_h = W != iw, need_v = H != ih, rc = CL_OK;
  rs_axis ax = {0}, ay = {0};
  int32_t *tmp = NULL;
  double *acc = NULL;
  int rfirst = y0, rlast = y0 + oh;
  if (need_v) {
    if ((rc = rs_axis_init(&ay, ih, H, y0, oh, e)) != CL_OK) return rc;
    rfirst = ay.bounds[0];
    rlast = ay.bounds[2 * (oh - 1)] + ay.bounds[2 * (oh - 1) + 1];
  }
  const int32_t *mid;
  size_t mid_stride;
  int mid_r0;
  if (need_h) {
    if ((rc = rs_axis_init(&ax, iw, W, x0, ow, e)) != CL_OK) goto done;
    tmp = malloc(sizeof(int32_t) * (size_t)ow * (size_t)(rlast - rfirst));
    if (!tmp) {
      rc = cl_err(e, CL_ENOMEM, "out of memory resizing a %dx%d image", iw, ih);
      goto done;
    }
    for (int r = rfirst; r < rlast; r++) {
      const int32_t *in = src + (size_t)r * iw;
      int32_t *out = tmp + (size_t)(r - rfirst) * ow;
      for (int x = 0; x < ow; x++) {
        const int xmin = ax.bounds[2 * x], cnt = ax.bounds[2 * x + 1];
        const double *k = ax.kd + (size_t)x * ax.ksize;
        double ss = 0.0;
        for (int t = 0; t < cnt; t++) ss += in[xmin + t] * k[t];
        out[x] = round_up(ss);
      }
    }
    mid = tmp;
    mid_stride = (size_t)ow;
    mid_r0 = rfirst;
  } else {
    mid = src + x0;
    mid_stride = (size_t)iw;
    mid_r0 = 0;
  }
  if (need_v) {
    acc = malloc(sizeof(double) * (size_t)ow);
    if (!acc) {
      rc = cl_err(e, CL_ENOMEM, "out of memory resizing a %dx%d image", iw, ih);
      goto done;
    }
    for (int j = 0; j < oh; j++) {
      const int ymin = ay.bounds[2 * j], cnt = ay.bounds[2 * j + 1];
      const double *k = ay.kd + (size_t)j * ay.ksize;
      for (int i = 0; i < ow; i++) acc[i] = 0.0;
      /* Same addition order per pixel as Pillow (taps in order from 0.0). */
      for (int t = 0; t < cnt; t++) {
        const int32_t *row = mid + (size_t)(ymin + t - mid_r0) * mid_stride;
        for (int i = 0; i < ow; i++) acc[i] += row[i] * k[t];
      }
      for (int i = 0; i < ow; i++) dst[(size_t)j * ow + i] = round_up(acc[i]);
    }
  } else {
    for (int j = 0; j < oh; j++)
      memcpy(dst + (size_t)j * ow, mid + (size_t)(y0 + j - mid_r0) * mid_stride,
             sizeof(int32_t) * (size_t)ow);
  }
done:
  free(tmp);
  free(acc);
  rs_axis_free(&ax);
  rs_axis_free(&ay);
  return rc;
}

/* Pillow's NEAREST resize (_resize -> ImagingScaleAffine): source coordinates accumulated
 * by repeated addition from the first pixel's center, so the table starts at 0 even for a
 * window. Pixels mapping outside the source stay 0 (its fill). */
static int resample_nearest(const uint8_t *src, int iw, int ih, int bpp, int W, int H, int x0,
                            int y0, int ow, int oh, uint8_t *dst, cl_error *e) {
  int *xin = malloc(sizeof(int) * (size_t)ow);
  if (!xin) return cl_err(e, CL_ENOMEM, "out of memory resizing a %dx%d image", iw, ih);
  double a0 = (double)(float)iw / W, a4 = (double)(float)ih / H;
  double xo = 0.0 + a0 * 0.5;
  for (int x = 0; x < x0 + ow; x++) {
    int xi = xo < 0.0 ? -1 : (int)xo;
    if (x >= x0) xin[x - x0] = xi >= 0 && xi < iw ? xi : -1;
    xo += a0;
  }
  double yo = 0.0 + a4 * 0.5;
  for (int y = 0; y < y0 + oh; y++) {
    int yi = yo < 0.0 ? -1 : (int)yo;
    yo += a4;
    if (y < y0) continue;
    uint8_t *d = dst + (size_t)(y - y0) * ow * bpp;
    memset(d, 0, (size_t)ow * bpp);
    if (yi < 0 || yi >= ih) continue;
    const uint8_t *s = src + (size_t)yi * iw * bpp;
    for (int x = 0; x < ow; x++)
      if (xin[x] >= 0) memcpy(d + (size_t)x * bpp, s + (size_t)xin[x] * bpp, (size_t)bpp);
  }
  free(xin);
  return CL_OK;
}

/* MULDIV255 of Pillow's ImagingUtils.h: a*b/255 rounded, in integers. */
static inline unsigned muldiv255(unsigned a, unsigned b) {
  unsigned t = a * b + 128;
  return ((t >> 8) + t) >> 8;
}

/* RGBA -> RGBa / LA -> La (Convert.c), alpha the last channel. */
static void premultiply(const uint8_t *in, uint8_t *out, size_t npix, int C) {
  for (size_t i = 0; i < npix; i++, in += C, out += C) {
    unsigned a = in[C - 1];
    for (int c = 0; c < C - 1; c++) out[c] = (uint8_t)muldiv255(in[c], a);
    out[C - 1] = (uint8_t)a;
  }
}

/* RGBa -> RGBA / La -> LA: alpha 0 or 255 keeps the value, else CLIP8(255 * v / alpha). */
static void unpremultiply(uint8_t *p, size_t npix, int C) {
  for (size_t i = 0; i < npix; i++, p += C) {
    unsigned a = p[C - 1];
    if (a == 0 || a == 255) continue;
    for (int c = 0; c < C - 1; c++) {
      unsigned v = 255u * p[c] / a;
      p[c] = (uint8_t)(v > 255 ? 255 : v);
    }
  }
}

/* The window [x0,x0+ow) x [y0,y0+oh) of PIL's in.resize((W, H), BICUBIC) into out. */
static int resize_window(const cl_img *in, int W, int H, int x0, int y0, int ow, int oh,
                         cl_img *out, cl_error *e) {
  if (!in || !in->data || W < 1 || H < 1 || ow < 1 || oh < 1 || x0 < 0 || y0 < 0 ||
      x0 + ow > W || y0 + oh > H)
    return cl_err(e, CL_EINVAL, "bad resize request %dx%d (window %d,%d %dx%d)", W, H, x0, y0,
                  ow, oh);
  int rc = cl_img_alloc(out, ow, oh, in->mode, e);
  if (rc != CL_OK) return rc;
  out->palette_size = in->palette_size;
  memcpy(out->palette, in->palette, sizeof out->palette);
  const int bpp = cl_img_pixel_bytes(in), C = in->channels;
  const int iw = in->width, ih = in->height;
  if (W == iw && H == ih) {
    /* Pillow returns a copy: no resampling, no premultiplication round trip. */
    for (int j = 0; j < oh; j++)
      memcpy(out->data + (size_t)j * ow * bpp, in->data + ((size_t)(y0 + j) * iw + x0) * bpp,
             (size_t)ow * bpp);
    return CL_OK;
  }
  switch (in->mode) {
    case CL_IMG_P:
    case CL_IMG_1:
      rc = resample_nearest(in->data, iw, ih, bpp, W, H, x0, y0, ow, oh, out->data, e);
      break;
    case CL_IMG_I:
      rc = resample_i32((const int32_t *)(const void *)in->data, iw, ih, W, H, x0, y0, ow, oh,
                        (int32_t *)(void *)out->data, e);
      break;
    case CL_IMG_LA:
    case CL_IMG_RGBA: {
      size_t npix = (size_t)iw * ih;
      uint8_t *pm = malloc(npix * C);
      if (!pm) {
        rc = cl_err(e, CL_ENOMEM, "out of memory resizing a %dx%d image", iw, ih);
        break;
      }
      premultiply(in->data, pm, npix, C);
      rc = resample_u8(pm, iw, ih, C, W, H, x0, y0, ow, oh, out->data, e);
      free(pm);
      if (rc == CL_OK) unpremultiply(out->data, (size_t)ow * oh, C);
      break;
    }
    default:
      rc = resample_u8(in->data, iw, ih, C, W, H, x0, y0, ow, oh, out->data, e);
      break;
  }
  if (rc != CL_OK) cl_img_free(out);
  return rc;
}

void cl_img_resized_dims(int w, int h, int size, int *out_w, int *out_h) {
  /* torchvision: int(size * long / short), Python's true division in double. */
  int s = w <= h ? w : h, l = w <= h ? h : w;
  /* saturated, not undefined, past INT_MAX (a 1 x 10^8 image); resized_too_large refuses those */
  const double d = (double)((long long)size * l) / (double)s;
  int nl = d < (double)INT_MAX ? (int)d : INT_MAX;
  if (w <= h) {
    *out_w = size;
    *out_h = nl;
  } else {
    *out_w = nl;
    *out_h = size;
  }
}

int cl_img_resize(const cl_img *in, int w, int h, cl_img *out, cl_error *e) {
  return resize_window(in, w, h, 0, 0, w, h, out, e);
}

/* The long side of a shorter-side resize must fit an int: a 1 x 10^8 strip to 224 does not. */
static int resized_too_large(const cl_img *in, int size, int w, int h, cl_error *e) {
  if (w < INT_MAX && h < INT_MAX) return CL_OK;
  return cl_err(e, CL_EUNSUP, "a %dx%d image resized to %d on its shorter side is too large", in->width,
                in->height, size);
}

int cl_img_resize_shorter(const cl_img *in, int size, cl_img *out, cl_error *e) {
  if (!in || size < 1) return cl_err(e, CL_EINVAL, "bad resize size %d", size);
  int w, h;
  cl_img_resized_dims(in->width, in->height, size, &w, &h);
  if (resized_too_large(in, size, w, h, e)) return CL_EUNSUP;
  return resize_window(in, w, h, 0, 0, w, h, out, e);
}

/* Python's int(round(d / 2.0)) for d >= 0: halves go to the even neighbour. */
static int half_even(int d) {
  int q = d / 2;
  return (d % 2 == 0 || q % 2 == 0) ? q : q + 1;
}

int cl_img_center_offset(int n, int size) {
  /* torchvision pads a too-small side with zeros ((size-n)//2 on the left/top) first. */
  return n >= size ? half_even(n - size) : -((size - n) / 2);
}

int cl_img_center_crop(const cl_img *in, int size, cl_img *out, cl_error *e) {
  if (!in || !in->data || size < 1) return cl_err(e, CL_EINVAL, "bad center crop size %d", size);
  cl_img_box box = {cl_img_center_offset(in->width, size), cl_img_center_offset(in->height, size), size, size};
  return cl_img_crop(in, &box, out, e);
}

int cl_img_resize_crop(const cl_img *in, int size, cl_img *out, cl_error *e) {
  if (!in || size < 1) return cl_err(e, CL_EINVAL, "bad resize size %d", size);
  int w, h;
  cl_img_resized_dims(in->width, in->height, size, &w, &h);
  if (resized_too_large(in, size, w, h, e)) return CL_EUNSUP;
  if (w < size || h < size) { /* cannot happen for a shorter-side resize; kept general */
    cl_img tmp;
    int rc = resize_window(in, w, h, 0, 0, w, h, &tmp, e);
    if (rc != CL_OK) return rc;
    rc = cl_img_center_crop(&tmp, size, out, e);
    cl_img_free(&tmp);
    return rc;
  }
  return resize_window(in, w, h, half_even(w - size), half_even(h - size), size, size, out, e);
}
