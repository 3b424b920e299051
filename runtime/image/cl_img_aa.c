/* cl_img_aa: PyTorch's antialiased bilinear resize of float tensors
 * (aten/src/ATen/native/cpu/UpSampleKernel.cpp, _upsample_bilinear2d_aa, as torch 1.13 runs it)
 * and CLIBD's evaluation transform built on it (see cl_image.h).
 * Per output index i along a side: scale = (float)in / out; support = (scale >= 1 ? scale : 1)
 * (bilinear's half width 1, stretched when shrinking); center = scale * (i + 0.5); taps
 * xmin = max((int64)(center - support + 0.5), 0) .. min((int64)(center + support + 0.5), in);
 * weight of tap j = triangle((j + xmin - center + 0.5) * invscale), normalised by their float
 * sum. Width first, then height. Pillow's uint8 resampler (cl_img_resample.c) is a different
 * algorithm.
 * The sum: torch's loop is `out = t0 * w0; for (j = 1; j < n; j++) out += tj * wj`, and its
 * compiled kernel runs the j loop vectorised four iterations at a time (rounded products added
 * in order, GCC's in-order reduction) with the last n - 1 mod 4 iterations in the scalar
 * epilogue, where a*b+c is contracted to an FMA. So: t0 * w0, then while four or more taps
 * remain four rounded products added one by one, then the rest fused. Found against torch
 * 1.13's outputs by which products are fused: with every product fused (this file's former
 * sum) 37% of the 1024x768 fixture image's values were 1-2 ulp off (its 5- and 6-tap kernels;
 * up to 4 taps, every product is in the epilogue); with this sum all six fixture images are
 * bit-exact (shared/fixtures/clibd image_pixels), and so were random rows resized with 2 to 41
 * taps. The rest of the file is compiled without contraction, so only fmaf fuses. */
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cl_image.h"

typedef struct taps {
  int64_t *xmin, *xsize;
  float *w; /* [out, ksize] */
  int ksize;
} taps;

static float triangle(float x) {
  if (x < 0.0f) x = -x;
  return x < 1.0f ? 1.0f - x : 0.0f;
}

/* The weights of outputs [o0, o0 + n) of a side resized from in to out. */
static int make_taps(int in, int out, int o0, int n, taps *t, cl_error *e) {
  const float scale = (float)in / (float)out;
  const float support = scale >= 1.0f ? (float)((2 * 0.5) * scale) : (float)(2 * 0.5);
  const float invscale = scale >= 1.0f ? (float)(1.0 / scale) : 1.0f;
  t->ksize = (int)ceilf(support) * 2 + 1;
  t->xmin = malloc((size_t)n * sizeof *t->xmin);
  t->xsize = malloc((size_t)n * sizeof *t->xsize);
  t->w = calloc((size_t)n * t->ksize, sizeof *t->w);
  if (!t->xmin || !t->xsize || !t->w) return cl_err(e, CL_ENOMEM, "out of memory (resize weights)");
  for (int k = 0; k < n; k++) {
    const int64_t i = o0 + k;
    const float center = (float)(scale * (i + 0.5));
    int64_t xmin = (int64_t)(center - support + 0.5), xmax = (int64_t)(center + support + 0.5);
    if (xmin < 0) xmin = 0;
    if (xmax > in) xmax = in;
    const int64_t xsize = xmax - xmin;
    float *w = t->w + (size_t)k * t->ksize, total = 0.0f;
    for (int64_t j = 0; j < xsize && j < t->ksize; j++) {
      w[j] = triangle((float)(((float)(j + xmin) - center + 0.5) * invscale));
      total += w[j];
    }
    for (int64_t j = 0; j < xsize && j < t->ksize; j++)
      if (total != 0.0f) w[j] /= total;
    t->xmin[k] = xmin;
    t->xsize[k] = xsize < t->ksize ? xsize : t->ksize;
  }
  return CL_OK;
}

static void free_taps(taps *t) {
  free(t->xmin);
  free(t->xsize);
  free(t->w);
}

/* torch's sum of the taps (see the top): s0 w0, blocks of four rounded products added in
 * order, then the remaining (fewer than four) products fused. */
static float apply(const float *src, ptrdiff_t stride, const taps *t, int k) {
  const float *s = src + t->xmin[k] * stride, *w = t->w + (size_t)k * t->ksize;
  const int64_t n = t->xsize[k];
  float acc = s[0] * w[0];
  int64_t j = 1;
  for (; n - j >= 4; j += 4)
    for (int64_t q = j; q < j + 4; q++) {
      const float p = s[q * stride] * w[q];
      acc = acc + p;
    }
  for (; j < n; j++) acc = fmaf(s[j * stride], w[j], acc);
  return acc;
}

int cl_img_resize_aa_plane(const float *in, int in_h, int in_w, int out_h, int out_w, int y0, int nh, int x0,
                           int nw, float *out, cl_error *e) {
  if (in_h < 1 || in_w < 1 || out_h < 1 || out_w < 1 || y0 < 0 || x0 < 0 || nh < 1 || nw < 1 || y0 + nh > out_h ||
      x0 + nw > out_w)
    return cl_err(e, CL_EINVAL, "resize %dx%d -> %dx%d: bad window", in_w, in_h, out_w, out_h);
  taps tx = {0}, ty = {0};
  float *mid = malloc((size_t)in_h * nw * sizeof *mid); /* width pass, all input rows */
  int rc = mid ? CL_OK : cl_err(e, CL_ENOMEM, "out of memory (resize %dx%d)", in_w, in_h);
  if (!rc) rc = make_taps(in_w, out_w, x0, nw, &tx, e);
  if (!rc) rc = make_taps(in_h, out_h, y0, nh, &ty, e);
  if (!rc) {
    for (int y = 0; y < in_h; y++)
      for (int k = 0; k < nw; k++) mid[(size_t)y * nw + k] = apply(in + (size_t)y * in_w, 1, &tx, k);
    for (int k = 0; k < nh; k++)
      for (int x = 0; x < nw; x++) out[(size_t)k * nw + x] = apply(mid + x, nw, &ty, k);
  }
  free_taps(&tx);
  free_taps(&ty);
  free(mid);
  return rc;
}

/* ToTensor (after convert('RGB')) then the antialiased float resize of the whole image to
 * ow x oh, keeping the size x size window at (x0, y0): three planes into chw_out. */
static int totensor_resize_aa(const cl_img *im, int ow, int oh, int x0, int y0, int size, float *chw_out,
                              cl_error *e) {
  cl_img rgb = {0};
  const cl_img *src = im;
  int rc = CL_OK;
  if (im->mode != CL_IMG_RGB) {
    if ((rc = cl_img_to_rgb(im, &rgb, e))) return rc;
    src = &rgb;
  }
  const int w = src->width, h = src->height;
  float *plane = malloc((size_t)w * h * sizeof *plane);
  if (!plane) rc = cl_err(e, CL_ENOMEM, "out of memory (%dx%d image)", w, h);
  for (int c = 0; c < 3 && !rc; c++) {
    for (size_t i = 0; i < (size_t)w * h; i++) plane[i] = (float)src->data[i * 3 + c] / 255.0f;
    rc = cl_img_resize_aa_plane(plane, h, w, oh, ow, y0, size, x0, size, chw_out + (size_t)c * size * size, e);
  }
  free(plane);
  cl_img_free(&rgb);
  return rc;
}

int cl_img_clibd_preprocess(const cl_img *im, int resize, int crop, float *chw_out, cl_error *e) {
  if (resize < 1 || crop < 1 || crop > resize)
    return cl_err(e, CL_EINVAL, "image transform: resize %d, crop %d", resize, crop);
  int ow, oh;
  cl_img_resized_dims(im->width, im->height, resize, &ow, &oh);
  return totensor_resize_aa(im, ow, oh, cl_img_center_offset(ow, crop), cl_img_center_offset(oh, crop), crop,
                            chw_out, e);
}

int cl_img_clibd_preprocess_file(const char *path, int resize, int crop, float *chw_out, cl_error *e) {
  cl_img im = {0};
  int rc = cl_img_decode_file(path, &im, e);
  if (!rc && (rc = cl_img_clibd_preprocess(&im, resize, crop, chw_out, e))) cl_err_wrap(e, "%s", path);
  cl_img_free(&im);
  return rc;
}

int cl_img_squash_preprocess(const cl_img *im, int size, const float mean[3], const float std[3], float *chw_out,
                             cl_error *e) {
  if (size < 1) return cl_err(e, CL_EINVAL, "image transform: size %d", size);
  static const float omean[3] = CL_IMG_OPENAI_MEAN, ostd[3] = CL_IMG_OPENAI_STD;
  if (!mean) mean = omean;
  if (!std) std = ostd;
  int rc = totensor_resize_aa(im, size, size, 0, 0, size, chw_out, e);
  const size_t plane = (size_t)size * size;
  for (int c = 0; c < 3 && !rc; c++) /* Normalize: sub_(mean).div_(std) in float32 */
    for (size_t i = 0; i < plane; i++) chw_out[c * plane + i] = (chw_out[c * plane + i] - mean[c]) / std[c];
  return rc;
}

int cl_img_squash_preprocess_file(const char *path, int size, const float mean[3], const float std[3],
                                  float *chw_out, cl_error *e) {
  cl_img im = {0};
  int rc = cl_img_decode_file(path, &im, e);
  if (!rc && (rc = cl_img_squash_preprocess(&im, size, mean, std, chw_out, e))) cl_err_wrap(e, "%s", path);
  cl_img_free(&im);
  return rc;
}
