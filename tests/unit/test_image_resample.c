/* Unit: the optimised resampler (SIMD, crop windows, only the rows the vertical pass needs)
 * against a plain, loop-for-loop port of Pillow 9.4's ImagingResampleInner, on random
 * images of many shapes and every mode; and PIL's decoded modes for PNG flavours the
 * fixtures lack (16-bit, low bit depths, gray+alpha, palette + tRNS, interlaced). */
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif
#include <spng.h>
#include <stdint.h>

#include "cl_test.h"
#include "image/cl_image.h"

/* ---- reference: Pillow's Resample.c, unoptimised ---- */

static double ref_bicubic(double x) {
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((-0.5 + 2.0) * x - (-0.5 + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * -0.5;
  return 0.0;
}

static int ref_coeffs(int in_size, int out_size, int **bounds, double **kk) {
  double scale = (double)in_size / out_size, fs = scale < 1.0 ? 1.0 : scale, support = 2.0 * fs;
  int ksize = (int)ceil(support) * 2 + 1;
  *kk = calloc((size_t)out_size * ksize, sizeof(double));
  *bounds = malloc(sizeof(int) * 2 * out_size);
  for (int xx = 0; xx < out_size; xx++) {
    double center = (xx + 0.5) * scale, ww = 0.0, ss = 1.0 / fs;
    int xmin = (int)(center - support + 0.5), xmax;
    if (xmin < 0) xmin = 0;
    xmax = (int)(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double *k = *kk + (size_t)xx * ksize;
    for (int x = 0; x < xmax; x++) ww += k[x] = ref_bicubic((x + xmin - center + 0.5) * ss);
    for (int x = 0; x < xmax; x++)
      if (ww != 0.0) k[x] /= ww;
    (*bounds)[2 * xx] = xmin;
    (*bounds)[2 * xx + 1] = xmax;
  }
  return ksize;
}

static int32_t *ref_fixed(const double *kk, size_t n) {
  int32_t *k = malloc(sizeof(int32_t) * n);
  for (size_t i = 0; i < n; i++)
    k[i] = kk[i] < 0 ? (int)(-0.5 + kk[i] * (1 << 22)) : (int)(0.5 + kk[i] * (1 << 22));
  return k;
}

static uint8_t ref_clip8(int v) {
  v >>= 22;
  return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* Whole-image bicubic resize of C interleaved uint8 channels. */
static uint8_t *ref_resize_u8(const uint8_t *src, int iw, int ih, int C, int W, int H) {
  int *bh, *bv;
  double *kh, *kv;
  int ksh = ref_coeffs(iw, W, &bh, &kh), ksv = ref_coeffs(ih, H, &bv, &kv);
  int32_t *ih32 = ref_fixed(kh, (size_t)W * ksh), *iv32 = ref_fixed(kv, (size_t)H * ksv);
  int y0 = bv[0], y1 = bv[2 * H - 2] + bv[2 * H - 1];
  const uint8_t *mid = src;
  uint8_t *tmp = NULL;
  int mw = iw, moff = 0;
  if (W != iw) {
    tmp = malloc((size_t)W * (y1 - y0) * C);
    for (int y = y0; y < y1; y++)
      for (int xx = 0; xx < W; xx++)
        for (int c = 0; c < C; c++) {
          int ss = 1 << 21;
          for (int x = 0; x < bh[2 * xx + 1]; x++)
            ss += src[((size_t)y * iw + bh[2 * xx] + x) * C + c] * ih32[xx * ksh + x];
          tmp[((size_t)(y - y0) * W + xx) * C + c] = ref_clip8(ss);
        }
    mid = tmp, mw = W, moff = y0;
  }
  uint8_t *out = malloc((size_t)W * H * C);
  if (H != ih) {
    for (int yy = 0; yy < H; yy++)
      for (int x = 0; x < mw * C; x++) {
        int ss = 1 << 21;
        for (int y = 0; y < bv[2 * yy + 1]; y++)
          ss += mid[(size_t)(bv[2 * yy] + y - moff) * mw * C + x] * iv32[yy * ksv + y];
        out[(size_t)yy * mw * C + x] = ref_clip8(ss);
      }
  } else {
    memcpy(out, mid + (size_t)(0 - moff) * mw * C, (size_t)W * H * C);
  }
  free(tmp), free(bh), free(bv), free(kh), free(kv), free(ih32), free(iv32);
  return out;
}

static int32_t ref_round_up(double f) { return (int32_t)(f >= 0.0 ? f + 0.5F : f - 0.5F); }

static int32_t *ref_resize_i32(const int32_t *src, int iw, int ih, int W, int H) {
  int *bh, *bv;
  double *kh, *kv;
  int ksh = ref_coeffs(iw, W, &bh, &kh), ksv = ref_coeffs(ih, H, &bv, &kv);
  int32_t *tmp = malloc(sizeof(int32_t) * (size_t)W * ih), *out = malloc(sizeof(int32_t) * (size_t)W * H);
  for (int y = 0; y < ih; y++)
    for (int xx = 0; xx < W; xx++) {
      double ss = 0.0;
      for (int x = 0; x < bh[2 * xx + 1]; x++) ss += src[(size_t)y * iw + bh[2 * xx] + x] * kh[xx * ksh + x];
      tmp[(size_t)y * W + xx] = W != iw ? ref_round_up(ss) : src[(size_t)y * iw + xx];
    }
  for (int yy = 0; yy < H; yy++)
    for (int x = 0; x < W; x++) {
      double ss = 0.0;
      for (int y = 0; y < bv[2 * yy + 1]; y++) ss += tmp[(size_t)(bv[2 * yy] + y) * W + x] * kv[yy * ksv + y];
      out[(size_t)yy * W + x] = H != ih ? ref_round_up(ss) : tmp[(size_t)yy * W + x];
    }
  free(tmp), free(bh), free(bv), free(kh), free(kv);
  return out;
}

static uint32_t rng = 2463534242u;
static uint32_t rnd(void) {
  rng ^= rng << 13, rng ^= rng >> 17, rng ^= rng << 5;
  return rng;
}

/* Random content: noise (hits the clipping), flat areas and edges. */
static void fill(uint8_t *p, size_t n, int style) {
  for (size_t i = 0; i < n; i++)
    p[i] = style == 0 ? (uint8_t)rnd() : style == 1 ? (uint8_t)((i / 7) % 3 ? 255 : 0) : (uint8_t)(i * 31 / n * 8);
}

static const cl_img_mode MODES[] = {CL_IMG_L, CL_IMG_LA, CL_IMG_RGB, CL_IMG_RGBA, CL_IMG_CMYK};

static void check_resample(void) {
  int sizes[][2] = {{640, 480}, {97, 131}, {224, 300}, {225, 225}, {1, 40}, {60, 1}, {3, 3},
                    {1000, 230}, {17, 300}, {448, 448}, {299, 224}, {224, 299}, {2, 1}};
  int ns = (int)(sizeof sizes / sizeof *sizes), fails = 0;
  for (int si = 0; si < ns; si++)
    for (size_t mi = 0; mi < sizeof MODES / sizeof *MODES; mi++) {
      cl_error e = {0};
      cl_img im;
      int iw = sizes[si][0], ih = sizes[si][1];
      if (cl_img_alloc(&im, iw, ih, MODES[mi], &e)) continue;
      int C = im.channels;
      fill(im.data, (size_t)iw * ih * C, (si + (int)mi) % 3);
      /* 224-shorter-side, plus odd targets that resize one axis only or upscale */
      int targets[4][2];
      cl_img_resized_dims(iw, ih, 224, &targets[0][0], &targets[0][1]);
      targets[1][0] = iw, targets[1][1] = 1 + (int)(rnd() % 300);
      targets[2][0] = 1 + (int)(rnd() % 300), targets[2][1] = ih;
      targets[3][0] = 1 + (int)(rnd() % 600), targets[3][1] = 1 + (int)(rnd() % 600);
      for (int ti = 0; ti < 4; ti++) {
        int W = targets[ti][0], H = targets[ti][1];
        cl_img out = {0};
        int rc = cl_img_resize(&im, W, H, &out, &e);
        CHECK_OK(rc, e);
        if (rc) continue;
        /* premultiplied for LA / RGBA, as PIL */
        uint8_t *srcp = malloc((size_t)iw * ih * C);
        memcpy(srcp, im.data, (size_t)iw * ih * C);
        int alpha = MODES[mi] == CL_IMG_LA || MODES[mi] == CL_IMG_RGBA;
        int same = W == iw && H == ih;
        if (alpha && !same)
          for (size_t p = 0; p < (size_t)iw * ih; p++)
            for (int c = 0; c < C - 1; c++) {
              unsigned t = srcp[p * C + c] * srcp[p * C + C - 1] + 128;
              srcp[p * C + c] = (uint8_t)(((t >> 8) + t) >> 8);
            }
        uint8_t *ref = same ? srcp : ref_resize_u8(srcp, iw, ih, C, W, H);
        if (alpha && !same)
          for (size_t p = 0; p < (size_t)W * H; p++) {
            unsigned a = ref[p * C + C - 1];
            if (a && a != 255)
              for (int c = 0; c < C - 1; c++) {
                unsigned v = 255u * ref[p * C + c] / a;
                ref[p * C + c] = (uint8_t)(v > 255 ? 255 : v);
              }
          }
        size_t n = (size_t)W * H * C, bad = 0, at = 0;
        for (size_t i = 0; i < n; i++)
          if (out.data[i] != ref[i] && !bad++) at = i;
        CHECK_MSG(bad == 0, "%s %dx%d -> %dx%d: %zu bytes differ, first %zu: %d vs %d",
                  cl_img_mode_name(MODES[mi]), iw, ih, W, H, bad, at, out.data[at], ref[at]);
        fails += bad != 0;
        if (ref != srcp) free(ref);
        free(srcp);
        cl_img_free(&out);
      }
      /* the fused window equals resize then crop */
      cl_img a = {0}, b = {0}, c = {0};
      CHECK_OK(cl_img_resize_shorter(&im, 224, &a, &e), e);
      CHECK_OK(cl_img_center_crop(&a, 224, &b, &e), e);
      CHECK_OK(cl_img_resize_crop(&im, 224, &c, &e), e);
      if (b.data && c.data)
        CHECK_MSG(memcmp(b.data, c.data, (size_t)224 * 224 * C) == 0, "%s %dx%d: fused crop differs",
                  cl_img_mode_name(MODES[mi]), iw, ih);
      cl_img_free(&a), cl_img_free(&b), cl_img_free(&c), cl_img_free(&im);
    }
  printf("resample: %d mode x size combinations, %d mismatching\n",
         ns * (int)(sizeof MODES / sizeof *MODES), fails);
}

static void check_modes_i_p(void) {
  cl_error e = {0};
  /* mode I: double weights, ROUND_UP after each pass */
  cl_img im;
  CHECK_OK(cl_img_alloc(&im, 301, 207, CL_IMG_I, &e), e);
  int32_t *p = (int32_t *)(void *)im.data;
  for (int i = 0; i < 301 * 207; i++) p[i] = (int32_t)(rnd() % 65536);
  int W, H;
  cl_img_resized_dims(301, 207, 224, &W, &H);
  cl_img out = {0}, win = {0}, rgb = {0};
  CHECK_OK(cl_img_resize(&im, W, H, &out, &e), e);
  int32_t *ref = ref_resize_i32(p, 301, 207, W, H);
  CHECK(out.data && memcmp(out.data, ref, sizeof(int32_t) * W * H) == 0);
  free(ref);
  CHECK_OK(cl_img_resize_crop(&im, 224, &win, &e), e);
  cl_img cr = {0};
  CHECK_OK(cl_img_center_crop(&out, 224, &cr, &e), e);
  CHECK(win.data && cr.data && memcmp(win.data, cr.data, sizeof(int32_t) * 224 * 224) == 0);
  CHECK_OK(cl_img_to_rgb(&cr, &rgb, &e), e); /* i2rgb clips: 16-bit values mostly -> 255 */
  if (rgb.data) {
    const int32_t *q = (const int32_t *)(const void *)cr.data;
    int ok = 1;
    for (int i = 0; i < 224 * 224; i++) {
      int v = q[i] < 0 ? 0 : q[i] > 255 ? 255 : q[i];
      ok &= rgb.data[3 * i] == v && rgb.data[3 * i + 1] == v && rgb.data[3 * i + 2] == v;
    }
    CHECK(ok);
  }
  cl_img_free(&im), cl_img_free(&out), cl_img_free(&win), cl_img_free(&cr), cl_img_free(&rgb);

  /* mode P: NEAREST with Pillow's accumulated coordinates; the palette travels along */
  CHECK_OK(cl_img_alloc(&im, 350, 250, CL_IMG_P, &e), e);
  for (int i = 0; i < 350 * 250; i++) im.data[i] = (uint8_t)(i % 350 * 7 + i / 350);
  for (int i = 0; i < 256; i++) im.palette[4 * i] = (uint8_t)i, im.palette[4 * i + 1] = (uint8_t)(255 - i);
  im.palette_size = 256;
  cl_img_resized_dims(350, 250, 224, &W, &H);
  CHECK_OK(cl_img_resize(&im, W, H, &out, &e), e);
  if (out.data) {
    int ok = out.mode == CL_IMG_P && memcmp(out.palette, im.palette, sizeof im.palette) == 0;
    double a0 = 350.0 / W, a4 = 250.0 / H, yo = a4 * 0.5;
    for (int y = 0; y < H; y++, yo += a4) {
      double xo = a0 * 0.5;
      for (int x = 0; x < W; x++, xo += a0) ok &= out.data[y * W + x] == im.data[(int)yo * 350 + (int)xo];
    }
    CHECK_MSG(ok, "P nearest resize differs from Pillow's rule");
  }
  CHECK_OK(cl_img_resize_crop(&im, 224, &win, &e), e);
  CHECK_OK(cl_img_center_crop(&out, 224, &cr, &e), e);
  CHECK(win.data && cr.data && memcmp(win.data, cr.data, 224 * 224) == 0);
  cl_img_free(&im), cl_img_free(&out), cl_img_free(&win), cl_img_free(&cr);
}

static void check_crop_pad(void) {
  /* torchvision pads a smaller image with zeros: left (size-w)//2, then crops the rest */
  cl_error e = {0};
  cl_img im, out = {0};
  CHECK_OK(cl_img_alloc(&im, 5, 9, CL_IMG_L, &e), e);
  for (int i = 0; i < 45; i++) im.data[i] = (uint8_t)(i + 1);
  CHECK_OK(cl_img_center_crop(&im, 8, &out, &e), e);
  if (out.data) {
    /* width 5 -> pad left 1, right 2; height 9 -> top = round(0.5) = 0 */
    CHECK_EQ_INT(out.data[0], 0);
    CHECK_EQ_INT(out.data[1], 1);
    CHECK_EQ_INT(out.data[5], 5);
    CHECK_EQ_INT(out.data[6], 0);
    CHECK_EQ_INT(out.data[7 * 8 + 1], 36);
  }
  cl_img_free(&im), cl_img_free(&out);
}

/* ---- PNG flavours ---- */

static void *png_encode(int w, int h, int depth, int ct, int interlace, const void *img, size_t n,
                        const struct spng_plte *plte, const struct spng_trns *trns, size_t *len) {
  spng_ctx *ctx = spng_ctx_new(SPNG_CTX_ENCODER);
  spng_set_option(ctx, SPNG_ENCODE_TO_BUFFER, 1);
  struct spng_ihdr ih = {(uint32_t)w, (uint32_t)h, (uint8_t)depth, (uint8_t)ct, 0, 0, (uint8_t)interlace};
  spng_set_ihdr(ctx, &ih);
  if (plte) spng_set_plte(ctx, (struct spng_plte *)plte);
  if (trns) spng_set_trns(ctx, (struct spng_trns *)trns);
  int err = spng_encode_image(ctx, img, n, SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE);
  void *buf = err ? NULL : spng_get_png_buffer(ctx, len, &err);
  if (err) fprintf(stderr, "spng encode: %s\n", spng_strerror(err));
  spng_ctx_free(ctx);
  return buf;
}

static void check_png_modes(void) {
  cl_error e = {0};
  cl_img im = {0};
  size_t len;
  void *png;
  enum { W = 13, H = 5 };
  /* 16-bit samples, given to the encoder host-endian */
  uint16_t s16[W * H * 4];
  for (int i = 0; i < W * H * 4; i++) s16[i] = (uint16_t)(i * 1031 + 7);

  png = png_encode(W, H, 16, 0, 0, s16, sizeof(uint16_t) * W * H, NULL, NULL, &len);
  CHECK_OK(cl_img_decode_mem(png, len, "g16.png", &im, &e), e);
  if (im.data) {
    CHECK_EQ_INT(im.mode, CL_IMG_I);
    int ok = 1;
    for (int i = 0; i < W * H; i++) ok &= ((int32_t *)(void *)im.data)[i] == s16[i];
    CHECK_MSG(ok, "16-bit gray -> mode I with the full value");
  }
  cl_img_free(&im), free(png);

  png = png_encode(W, H, 16, 2, 0, s16, sizeof(uint16_t) * W * H * 3, NULL, NULL, &len);
  CHECK_OK(cl_img_decode_mem(png, len, "rgb16.png", &im, &e), e);
  if (im.data) {
    CHECK_EQ_INT(im.mode, CL_IMG_RGB);
    int ok = 1;
    for (int i = 0; i < W * H * 3; i++) ok &= im.data[i] == s16[i] >> 8;
    CHECK_MSG(ok, "16-bit RGB -> high bytes");
  }
  cl_img_free(&im), free(png);

  png = png_encode(W, H, 16, 4, 0, s16, sizeof(uint16_t) * W * H * 2, NULL, NULL, &len);
  CHECK_OK(cl_img_decode_mem(png, len, "ga16.png", &im, &e), e);
  if (im.data) {
    CHECK_EQ_INT(im.mode, CL_IMG_RGBA);
    int ok = 1;
    for (int i = 0; i < W * H; i++)
      ok &= im.data[4 * i] == s16[2 * i] >> 8 && im.data[4 * i + 2] == s16[2 * i] >> 8 &&
            im.data[4 * i + 3] == s16[2 * i + 1] >> 8;
    CHECK_MSG(ok, "16-bit gray+alpha -> RGBA (L,L,L,A) high bytes");
  }
  cl_img_free(&im), free(png);

  uint8_t s8[W * H * 4];
  for (int i = 0; i < W * H * 4; i++) s8[i] = (uint8_t)(i * 37 + 11);
  png = png_encode(W, H, 8, 4, 0, s8, (size_t)W * H * 2, NULL, NULL, &len);
  CHECK_OK(cl_img_decode_mem(png, len, "ga8.png", &im, &e), e);
  if (im.data) {
    CHECK_EQ_INT(im.mode, CL_IMG_LA);
    CHECK(memcmp(im.data, s8, (size_t)W * H * 2) == 0);
    cl_img rgb = {0};
    CHECK_OK(cl_img_to_rgb(&im, &rgb, &e), e);
    if (rgb.data) CHECK(rgb.data[3 * 4 + 1] == s8[2 * 4]);
    cl_img_free(&rgb);
  }
  cl_img_free(&im), free(png);

  /* interlaced RGB decodes to the same pixels */
  void *a = png_encode(W, H, 8, 2, 0, s8, (size_t)W * H * 3, NULL, NULL, &len);
  size_t len2;
  void *b = png_encode(W, H, 8, 2, 1, s8, (size_t)W * H * 3, NULL, NULL, &len2);
  cl_img ia = {0}, ib = {0};
  CHECK_OK(cl_img_decode_mem(a, len, "rgb.png", &ia, &e), e);
  CHECK_OK(cl_img_decode_mem(b, len2, "rgb_adam7.png", &ib, &e), e);
  CHECK(ia.data && ib.data && memcmp(ia.data, s8, (size_t)W * H * 3) == 0 &&
        memcmp(ib.data, s8, (size_t)W * H * 3) == 0);
  cl_img_free(&ia), cl_img_free(&ib), free(a), free(b);

  /* low bit depths: gray scaled like PIL's unpackers, mode 1 as 0/255, indices as is */
  for (int depth = 1; depth <= 4; depth *= 2)
    for (int ct = 0; ct <= 3; ct += 3) {
      int per = 8 / depth, rowb = (W * depth + 7) / 8;
      uint8_t packed[H * 8] = {0}, vals[W * H];
      for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
          int v = (int)(rnd() % (1u << depth));
          vals[y * W + x] = (uint8_t)v;
          packed[y * rowb + x / per] |= (uint8_t)(v << (8 - depth * (x % per + 1)));
        }
      struct spng_plte plte = {.n_entries = 1u << depth};
      for (unsigned i = 0; i < plte.n_entries; i++)
        plte.entries[i].red = (uint8_t)(10 * i), plte.entries[i].green = (uint8_t)(20 * i),
        plte.entries[i].blue = (uint8_t)(30 * i);
      struct spng_trns trns = {.n_type3_entries = 2, .type3_alpha = {0, 128}};
      png = png_encode(W, H, depth, ct, depth != 4 /* Adam7 too */, packed, (size_t)rowb * H,
                       ct == 3 ? &plte : NULL, ct == 3 ? &trns : NULL, &len);
      char name[32];
      snprintf(name, sizeof name, "ct%d_d%d.png", ct, depth);
      CHECK_OK(cl_img_decode_mem(png, len, name, &im, &e), e);
      if (im.data) {
        int scale = ct == 3 ? 1 : depth == 1 ? 255 : depth == 2 ? 0x55 : 0x11, ok = 1;
        for (int i = 0; i < W * H; i++) ok &= im.data[i] == vals[i] * scale;
        CHECK_MSG(ok, "%s: samples", name);
        CHECK_EQ_INT(im.mode, ct == 3 ? CL_IMG_P : depth == 1 ? CL_IMG_1 : CL_IMG_L);
        if (ct == 3) {
          CHECK_EQ_INT(im.palette_size, 1 << depth);
          CHECK_EQ_INT(im.palette[4 * 1 + 2], 30);
          CHECK_EQ_INT(im.palette[4 * 1 + 3], 128);
          CHECK_EQ_INT(im.palette[4 * 0 + 3], 0);
          CHECK_EQ_INT(im.palette[4 * 255 + 3], 255);
        }
      }
      cl_img_free(&im), free(png);
    }
}

int main(void) {
  check_resample();
  check_modes_i_p();
  check_crop_pad();
  check_png_modes();
  return cl_test_done("test_image_resample");
}
