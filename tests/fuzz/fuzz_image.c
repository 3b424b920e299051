/* libFuzzer: JPEG/PNG bytes through the decode path open_clip's preprocessing takes: decode
 * (full, or draft when the input's length is odd, so that image files seed it as they are), resize + center crop, RGB, normalise. The
 * crop size is small so that large images fail or pass fast, never the size of the pixels. */
#include <stdlib.h>

#include "fuzz_util.h"
#include "image/cl_image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int draft = size & 1 ? 16 : 0;
  cl_img im, crop, rgb;
  cl_error e;
  if (cl_img_decode_mem_draft(data, size, "fuzz", draft, &im, &e) != CL_OK) return 0;
  /* PIL's decompression-bomb limit lets 178M pixels through: keep each run short */
  if ((long long)im.width * im.height <= 4096 * 4096 && cl_img_resize_crop(&im, 16, &crop, &e) == CL_OK) {
    if (cl_img_to_rgb(&crop, &rgb, &e) == CL_OK) {
      float chw[3 * 16 * 16];
      cl_img_normalize(&rgb, NULL, NULL, chw);
      cl_img_free(&rgb);
    }
    cl_img_free(&crop);
  }
  cl_img_free(&im);
  return 0;
}
