/* open_clip's training transform (open_clip 2.32 transform.image_transform(is_train=True) with
 * its default AugmentationCfg): torchvision RandomResizedCrop(size, scale=(0.9, 1.0),
 * ratio=(3/4, 4/3), BICUBIC) on the decoded PIL image in its own mode, then convert('RGB'),
 * ToTensor, Normalize as in evaluation. The crop box is drawn by torchvision 0.14's
 * get_params algorithm from clade's own seeded generator (cl_pyrand) instead of torch's, so a
 * box is a function of the generator's seed and can be recorded and redrawn. */
#include <math.h>
#include <string.h>

#include "cl_image.h"

/* torch.empty(1).uniform_(a, b).item(): a float32 value, promoted back to double. */
static double uniform_f32(cl_pyrand *r, double a, double b) {
  return (double)(float)(a + (b - a) * cl_pyrand_random(r));
}

int cl_img_random_resized_crop_box(int width, int height, const cl_img_rrc *p, cl_pyrand *r,
                                   cl_img_box *box, cl_error *e) {
  static const cl_img_rrc dflt = CL_IMG_RRC_OPENCLIP;
  if (!p) p = &dflt;
  if (width < 1 || height < 1)
    return cl_err(e, CL_EINVAL, "random resized crop of a %dx%d image", width, height);
  if (!(p->scale[0] > 0 && p->scale[0] <= p->scale[1] && p->scale[1] <= 1e6) ||
      !(p->ratio[0] > 0 && p->ratio[0] <= p->ratio[1] && p->ratio[1] < 1e6))
    return cl_err(e, CL_EINVAL, "random resized crop: scale (%g, %g) and ratio (%g, %g) must be positive ranges",
                  p->scale[0], p->scale[1], p->ratio[0], p->ratio[1]);
  const double area = (double)height * (double)width;
  /* torch.log(torch.tensor(ratio)) in float32 */
  const double lr0 = (double)logf((float)p->ratio[0]), lr1 = (double)logf((float)p->ratio[1]);
  for (int attempt = 0; attempt < 10; attempt++) {
    double target = area * uniform_f32(r, p->scale[0], p->scale[1]);
    double aspect = (double)expf((float)uniform_f32(r, lr0, lr1));
    /* int(round(x)): Python rounds halves to even, as nearbyint does in the default mode */
    double dw = nearbyint(sqrt(target * aspect)), dh = nearbyint(sqrt(target / aspect));
    if (dw > 0 && dw <= width && dh > 0 && dh <= height) {
      int w = (int)dw, h = (int)dh;
      box->top = (int)cl_pyrand_below(r, (uint32_t)(height - h) + 1);
      box->left = (int)cl_pyrand_below(r, (uint32_t)(width - w) + 1);
      box->width = w;
      box->height = h;
      return CL_OK;
    }
  }
  /* the central fallback: the largest crop of the ratio range's nearest end */
  const double in_ratio = (double)width / (double)height;
  int w = width, h = height;
  if (in_ratio < p->ratio[0]) h = (int)nearbyint(w / p->ratio[0]);
  else if (in_ratio > p->ratio[1]) w = (int)nearbyint(h * p->ratio[1]);
  box->width = w;
  box->height = h;
  box->top = (height - h) / 2;
  box->left = (width - w) / 2;
  return CL_OK;
}

int cl_img_crop(const cl_img *in, const cl_img_box *box, cl_img *out, cl_error *e) {
  if (!in || !in->data || !box || box->width < 1 || box->height < 1)
    return cl_err(e, CL_EINVAL, "bad crop %dx%d", box ? box->width : 0, box ? box->height : 0);
  int rc = cl_img_alloc(out, box->width, box->height, in->mode, e);
  if (rc != CL_OK) return rc;
  out->palette_size = in->palette_size;
  memcpy(out->palette, in->palette, sizeof out->palette);
  const int bpp = cl_img_pixel_bytes(in), ow = box->width, ox = box->left, oy = box->top;
  memset(out->data, 0, (size_t)ow * box->height * bpp);
  /* the part of the box inside the image; PIL fills the rest with zeros */
  const long xa = ox < 0 ? -(long)ox : 0, xb = (long)in->width - ox < ow ? (long)in->width - ox : ow;
  for (int j = 0; j < box->height; j++) {
    long sy = (long)j + oy;
    if (sy < 0 || sy >= in->height || xb <= xa) continue;
    memcpy(out->data + ((size_t)j * ow + xa) * bpp, in->data + ((size_t)sy * in->width + xa + ox) * bpp,
           (size_t)(xb - xa) * bpp);
  }
  return CL_OK;
}

int cl_img_random_resized_crop(const cl_img *in, const cl_img_box *box, int size, cl_img *out, cl_error *e) {
  if (size < 1) return cl_err(e, CL_EINVAL, "bad random resized crop size %d", size);
  cl_img crop;
  int rc = cl_img_crop(in, box, &crop, e);
  if (rc != CL_OK) return rc;
  rc = cl_img_resize(&crop, size, size, out, e);
  cl_img_free(&crop);
  return rc;
}

int cl_img_train_preprocess_file(const char *path, int size, const cl_img_rrc *p, cl_pyrand *r,
                                 const float mean[3], const float std[3], float *chw_out, cl_img_box *box_out,
                                 cl_error *e) {
  cl_img im, crop, rgb;
  cl_img_box box;
  int rc = cl_img_decode_file(path, &im, e);
  if (rc != CL_OK) return rc;
  if (r) rc = cl_img_random_resized_crop_box(im.width, im.height, p, r, &box, e);
  else if (box_out) box = *box_out;
  else rc = cl_err(e, CL_EINVAL, "no generator and no box");
  if (rc == CL_OK) rc = cl_img_random_resized_crop(&im, &box, size, &crop, e);
  cl_img_free(&im);
  if (rc != CL_OK) return cl_err_wrap(e, "%s: random resized crop", path);
  rc = cl_img_to_rgb(&crop, &rgb, e);
  cl_img_free(&crop);
  if (rc != CL_OK) return cl_err_wrap(e, "%s", path);
  cl_img_normalize(&rgb, mean, std, chw_out);
  cl_img_free(&rgb);
  if (box_out) *box_out = box;
  return CL_OK;
}
