/* cl_img conversion and the whole of open_clip's preprocess_val: Resize(224, BICUBIC) ->
 * CenterCrop(224) -> convert('RGB') -> ToTensor -> Normalize, in that order (the resize
 * and crop run in the image's own mode; see BIOCLIP.md, Preprocessing). */
#include <stdlib.h>
#include <string.h>

#include "cl_image.h"

/* MULDIV255 of Pillow's ImagingUtils.h. */
static inline int muldiv255(int a, int b) {
  int t = a * b + 128;
  return ((t >> 8) + t) >> 8;
}

static inline uint8_t clip8(int v) { return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v); }

int cl_img_to_rgb(const cl_img *in, cl_img *out, cl_error *e) {
  if (!in || !in->data) return cl_err(e, CL_EINVAL, "to_rgb: no image");
  int rc = cl_img_alloc(out, in->width, in->height, CL_IMG_RGB, e);
  if (rc != CL_OK) return rc;
  const size_t n = (size_t)in->width * in->height;
  const uint8_t *s = in->data;
  uint8_t *d = out->data;
  switch (in->mode) {
    case CL_IMG_RGB: memcpy(d, s, n * 3); break;
    case CL_IMG_L:
    case CL_IMG_1: /* mode 1 holds 0 / 255 already (bit2rgb: non-zero -> 255) */
      for (size_t i = 0; i < n; i++) {
        uint8_t v = in->mode == CL_IMG_1 && s[i] ? 255 : s[i];
        d[3 * i] = d[3 * i + 1] = d[3 * i + 2] = v;
      }
      break;
    case CL_IMG_LA:
      for (size_t i = 0; i < n; i++) d[3 * i] = d[3 * i + 1] = d[3 * i + 2] = s[2 * i];
      break;
    case CL_IMG_RGBA: /* alpha dropped, not composited (rgba2rgb) */
      for (size_t i = 0; i < n; i++) memcpy(d + 3 * i, s + 4 * i, 3);
      break;
    case CL_IMG_CMYK: /* cmyk2rgb: nk - c*nk/255 with nk = 255 - k */
      for (size_t i = 0; i < n; i++) {
        int nk = 255 - s[4 * i + 3];
        for (int c = 0; c < 3; c++) d[3 * i + c] = clip8(nk - muldiv255(s[4 * i + c], nk));
      }
      break;
    case CL_IMG_P:
      for (size_t i = 0; i < n; i++) memcpy(d + 3 * i, in->palette + 4 * (size_t)s[i], 3);
      break;
    case CL_IMG_I: { /* i2rgb clips to 0..255 */
      const int32_t *p = (const int32_t *)(const void *)s;
      for (size_t i = 0; i < n; i++) d[3 * i] = d[3 * i + 1] = d[3 * i + 2] = clip8(p[i]);
      break;
    }
  }
  return CL_OK;
}

void cl_img_normalize(const cl_img *rgb, const float mean[3], const float std[3], float *chw) {
  static const float dmean[3] = CL_IMG_OPENAI_MEAN, dstd[3] = CL_IMG_OPENAI_STD;
  if (!mean) mean = dmean;
  if (!std) std = dstd;
  const size_t n = (size_t)rgb->width * rgb->height;
  for (int c = 0; c < 3; c++) {
    const float m = mean[c], s = std[c];
    const uint8_t *p = rgb->data + c;
    float *o = chw + (size_t)c * n;
    /* torch: u8 -> float, .div(255), .sub_(mean), .div_(std): three rounded float32 ops. */
    for (size_t i = 0; i < n; i++) o[i] = ((float)p[3 * i] / 255.0f - m) / s;
  }
}

/* The rest of preprocess_val on a decoded image (freed here). */
static int resize_crop_normalize(cl_img *im, const char *name, int size, const float mean[3], const float std[3],
                                 float *chw_out, cl_error *e) {
  cl_img crop, rgb;
  int rc = cl_img_resize_crop(im, size, &crop, e);
  cl_img_free(im);
  if (rc != CL_OK) return cl_err_wrap(e, "%s: resize", name ? name : "(memory)");
  rc = cl_img_to_rgb(&crop, &rgb, e);
  cl_img_free(&crop);
  if (rc != CL_OK) return cl_err_wrap(e, "%s", name ? name : "(memory)");
  cl_img_normalize(&rgb, mean, std, chw_out);
  cl_img_free(&rgb);
  return CL_OK;
}

int cl_img_preprocess_mem(const void *buf, size_t len, const char *name, int size,
                          const float mean[3], const float std[3], float *chw_out, cl_error *e) {
  cl_img im;
  int rc = cl_img_decode_mem(buf, len, name, &im, e);
  return rc != CL_OK ? rc : resize_crop_normalize(&im, name, size, mean, std, chw_out, e);
}

int cl_img_preprocess_file(const char *path, int size, const float mean[3], const float std[3],
                           float *chw_out, cl_error *e) {
  return cl_img_preprocess_file_decode(path, size, CL_IMG_DECODE_FULL, mean, std, chw_out, e);
}

int cl_img_preprocess_file_decode(const char *path, int size, cl_img_decode decode, const float mean[3],
                                  const float std[3], float *chw_out, cl_error *e) {
  cl_img im;
  int rc = cl_img_decode_file_draft(path, decode == CL_IMG_DECODE_DRAFT ? size : 0, &im, e);
  return rc != CL_OK ? rc : resize_crop_normalize(&im, path, size, mean, std, chw_out, e);
}

const char *cl_img_decode_name(cl_img_decode d) { return d == CL_IMG_DECODE_DRAFT ? "draft" : "full"; }

int cl_img_decode_parse(const char *s, cl_img_decode *out) {
  if (!s || !strcmp(s, "full")) *out = CL_IMG_DECODE_FULL;
  else if (!strcmp(s, "draft")) *out = CL_IMG_DECODE_DRAFT;
  else return -1;
  return 0;
}
